//! The Flux Kustomizations of the `--clusters` folders: which folder each applies (its
//! `spec.path`, relative to the root of the Git repository), and their texts split in two,
//! `<name>-rt` and `<name>-rw`, the rw one after the rt one and after the windows.

use super::path;
use super::yaml::{self, Text};
use crate::flux::OwnerKind;
use crate::window::is_window_type;
use crate::yaml::split_documents;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One Flux Kustomization of a `--clusters` folder.
#[derive(Clone, Debug)]
pub(crate) struct FluxKustomization {
    pub(crate) file: String,
    /// Its document among the file's [`FluxFile::chunks`].
    pub(crate) chunk: usize,
    pub(crate) name: String,
    pub(crate) namespace: String,
    /// `spec.path` as written.
    pub(crate) path_text: String,
    /// The folder it applies, relative to where split runs; `None` outside it.
    pub(crate) folder: Option<String>,
    pub(crate) value: Value,
}

/// A file holding Flux Kustomizations, cut into its documents.
#[derive(Clone, Debug)]
pub(crate) struct FluxFile {
    pub(crate) chunks: Vec<String>,
    /// How many documents hold an object (any kind).
    pub(crate) objects: usize,
}

/// The Flux Kustomizations found, and the files they are in.
#[derive(Clone, Debug, Default)]
pub(crate) struct Flux {
    pub(crate) kustomizations: Vec<FluxKustomization>,
    pub(crate) files: BTreeMap<String, FluxFile>,
}

/// The texts of the two halves of a Flux Kustomization.
pub(crate) struct Halves {
    pub(crate) rt: String,
    pub(crate) rw: String,
}

// === impl Flux ===

impl Flux {
    /// Every Flux Kustomization in a file under `clusters`. `repo_prefix` is where split runs,
    /// relative to the repository root that `spec.path` is relative to.
    pub(crate) fn read(
        files: &BTreeMap<String, String>,
        clusters: &[String],
        repo_prefix: &str,
    ) -> Result<Flux, String> {
        let mut flux = Flux::default();
        for (file, text) in files {
            if !clusters.iter().any(|c| path::is_within(file, c)) {
                continue;
            }
            let mut chunks = Vec::new();
            let mut objects = 0;
            for (n, (_, chunk)) in split_documents(text).into_iter().enumerate() {
                let value =
                    yaml::parse(&chunk).map_err(|e| format!("{file}: not valid YAML: {e}"))?;
                objects += usize::from(!value.is_null());
                if is_flux_kustomization(&value) {
                    let text = |pointer: &str| {
                        value
                            .pointer(pointer)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let path_text = text("/spec/path");
                    flux.kustomizations.push(FluxKustomization {
                        file: file.clone(),
                        chunk: n,
                        name: text("/metadata/name"),
                        namespace: text("/metadata/namespace"),
                        folder: resolve(&path_text, repo_prefix),
                        path_text,
                        value,
                    });
                }
                chunks.push(chunk);
            }
            if flux.kustomizations.iter().any(|k| k.file == *file) {
                flux.files
                    .insert(file.clone(), FluxFile { chunks, objects });
            }
        }
        Ok(flux)
    }

    pub(crate) fn named(&self, name: &str, namespace: &str) -> Option<&FluxKustomization> {
        self.kustomizations
            .iter()
            .find(|k| k.name == name && k.namespace == namespace)
    }

    /// The Kustomizations of the cluster folder `cluster` that apply ReconciliationWindows (a
    /// file under their folder holds one): the rw half waits for them, the rt half does not.
    pub(crate) fn window_appliers(
        &self,
        files: &BTreeMap<String, String>,
        cluster: &str,
    ) -> Vec<&FluxKustomization> {
        self.kustomizations
            .iter()
            .filter(|k| path::is_within(&k.file, cluster))
            .filter(|k| {
                k.folder.as_ref().is_some_and(|folder| {
                    files.iter().any(|(file, text)| {
                        path::is_within(file, folder) && !window_names(text).is_empty()
                    })
                })
            })
            .collect()
    }
}

/// The names of the ReconciliationWindows a file defines (documents that do not parse are
/// skipped: this only finds the windows).
pub(crate) fn window_names(text: &str) -> Vec<String> {
    if !text.contains("ReconciliationWindow") {
        return Vec::new();
    }
    split_documents(text)
        .into_iter()
        .filter_map(|(_, chunk)| yaml::parse(&chunk).ok())
        .filter(|v| {
            let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
            is_window_type(field("apiVersion"), field("kind"))
        })
        .filter_map(|v| {
            v.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

fn is_flux_kustomization(value: &Value) -> bool {
    let field = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or_default();
    OwnerKind::of(field("apiVersion"), field("kind")) == Some(OwnerKind::Kustomization)
}

/// A `spec.path` as a folder relative to where split runs.
fn resolve(path_text: &str, repo_prefix: &str) -> Option<String> {
    if path_text.trim_matches(['.', '/']).is_empty() {
        // The root of the repository: not an entry point split could put halves below.
        return None;
    }
    let full = path::normalize(path_text.trim_start_matches('/'));
    if full.starts_with("..") {
        return None;
    }
    if repo_prefix.is_empty() {
        return Some(full);
    }
    if full == repo_prefix {
        return Some(String::new());
    }
    full.strip_prefix(repo_prefix)?
        .strip_prefix('/')
        .map(str::to_owned)
}

/// `spec.path` of a half: the original's text with `/<sub>` after it.
pub(crate) fn sub_path(path_text: &str, sub: &str) -> String {
    format!("{}/{sub}", path_text.trim_end_matches('/'))
}

// === impl FluxKustomization ===

impl FluxKustomization {
    /// The names its `dependsOn` lists, with their namespaces (its own when absent).
    pub(crate) fn depends_on(&self) -> Vec<(String, String)> {
        self.value
            .pointer("/spec/dependsOn")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| {
                let name = d.get("name")?.as_str()?.to_owned();
                let namespace = d
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(&self.namespace)
                    .to_owned();
                Some((name, namespace))
            })
            .collect()
    }

    /// The two halves: renamed `<name>-rt`/`<name>-rw`, with `paths`; the rt half no longer
    /// waits for `windows` (rt objects never pass through fluxgate, so they must flow while it
    /// is down), the rw half waits for them and for the rt half.
    pub(crate) fn halves(
        &self,
        chunk: &str,
        paths: [&str; 2],
        windows: &[(String, String)],
    ) -> Result<Halves, String> {
        // What a Kustomization applies to all it builds must reach objects of both halves
        // alike; these may name objects of one half only.
        if self
            .value
            .pointer("/spec/components")
            .is_some_and(|c| c != &json!([]))
        {
            return Err(format!(
                "{}: Flux Kustomization {} has spec.components, which may change objects of \
                 either half: move them into the kustomizations first",
                self.file, self.name
            ));
        }
        let untargeted = self
            .value
            .pointer("/spec/patches")
            .and_then(Value::as_array)
            .is_some_and(|p| p.iter().any(|p| p.get("target").is_none()));
        if untargeted {
            return Err(format!(
                "{}: Flux Kustomization {} has a spec.patches entry without target, which \
                 fails on the half without its object: give it a target",
                self.file, self.name
            ));
        }
        let names = [format!("{}-rt", self.name), format!("{}-rw", self.name)];
        let is_window = |item: &Value| {
            let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
            let namespace = item
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or(&self.namespace);
            windows.iter().any(|(n, ns)| n == name && ns == namespace)
        };
        let original = self
            .value
            .pointer("/spec/dependsOn")
            .and_then(Value::as_array);
        let mut out = Vec::with_capacity(2);
        for (half, (name, path)) in names.iter().zip(paths).enumerate() {
            let mut text = Text::new(chunk);
            let mut expected = self.value.clone();
            // dependsOn first: the name and path lines may lie below it.
            let keep: Vec<usize>;
            let mut add: Vec<String> = Vec::new();
            if half == 0 {
                keep = (0..original.map_or(0, Vec::len))
                    .filter(|&i| !is_window(&original.unwrap()[i]))
                    .collect();
            } else {
                keep = (0..original.map_or(0, Vec::len)).collect();
                let listed = |n: &str| {
                    original
                        .into_iter()
                        .flatten()
                        .any(|d| d.get("name").and_then(Value::as_str) == Some(n))
                };
                add.extend(
                    windows
                        .iter()
                        .filter(|(n, ns)| *ns == self.namespace && !listed(n))
                        .map(|(n, _)| n.clone()),
                );
                add.push(names[0].clone());
            }
            edit_depends_on(&mut text, &keep, &add)?;
            let new: Vec<Value> = keep
                .iter()
                .map(|&i| original.expect("kept items exist")[i].clone())
                .chain(add.iter().map(|n| json!({ "name": n })))
                .collect();
            let spec = expected
                .get_mut("spec")
                .and_then(Value::as_object_mut)
                .ok_or("no spec")?;
            if new.is_empty() {
                spec.remove("dependsOn");
            } else {
                spec.insert("dependsOn".into(), Value::Array(new));
            }
            spec.insert("path".into(), Value::String(path.to_owned()));
            set_child(&mut text, "spec", "path", path)?;
            set_child(&mut text, "metadata", "name", name)?;
            expected["metadata"]["name"] = Value::String(name.clone());
            let rendered = text.render();
            yaml::verify(&rendered, &expected).map_err(|e| {
                format!(
                    "{}: Flux Kustomization {}: cannot rewrite it line by line ({e}); write it in \
                     block style",
                    self.file, self.name
                )
            })?;
            out.push(rendered);
        }
        let rw = out.pop().expect("two halves");
        let rt = out.pop().expect("two halves");
        Ok(Halves { rt, rw })
    }

    /// Its text with the `dependsOn` entry naming `old` replaced by entries naming each of
    /// `new`.
    pub(crate) fn replace_dependency(
        &self,
        chunk: &str,
        old: &str,
        new: &[String],
    ) -> Result<String, String> {
        let mut text = Text::new(chunk);
        let mut expected = self.value.clone();
        let spec = text.top_key("spec").ok_or("no spec")?;
        let at = text.child_key(spec, "dependsOn").ok_or("no dependsOn")?;
        let spans = text.items(at).ok_or("dependsOn is not a block list")?;
        let list = expected
            .pointer_mut("/spec/dependsOn")
            .and_then(Value::as_array_mut)
            .ok_or("dependsOn is not a list")?;
        let i = list
            .iter()
            .position(|d| d.get("name").and_then(Value::as_str) == Some(old))
            .ok_or("not listed")?;
        let item = list.remove(i);
        let mut lines = Vec::new();
        for (n, name) in new.iter().enumerate() {
            let mut copy = item.clone();
            copy["name"] = Value::String(name.clone());
            list.insert(i + n, copy);
            let mut own = text.slice(spans[i]);
            let at = own
                .item_key((0, own.lines.len()), "name")
                .ok_or("an entry without name")?;
            own.set_scalar(at, name)?;
            let dash = own
                .lines
                .iter()
                .position(|l| l.trim_start().starts_with('-'))
                .unwrap_or(0);
            lines.extend(own.lines.into_iter().skip(if n == 0 { 0 } else { dash }));
        }
        text.lines.splice(spans[i].0..spans[i].1, lines);
        let rendered = text.render();
        yaml::verify(&rendered, &expected).map_err(|e| format!("{}: {e}", self.file))?;
        Ok(rendered)
    }
}

fn set_child(text: &mut Text, parent: &str, key: &str, value: &str) -> Result<(), String> {
    let at = text
        .top_key(parent)
        .and_then(|p| text.child_key(p, key))
        .ok_or_else(|| format!("no {parent}.{key} line"))?;
    text.set_scalar(at, value)
}

/// Keeps the `dependsOn` entries `keep` (indexes) and appends one per name of `add`, with a
/// comment saying why; a list left empty loses its key.
fn edit_depends_on(text: &mut Text, keep: &[usize], add: &[String]) -> Result<(), String> {
    let spec = text.top_key("spec").ok_or("no spec")?;
    let existing = text.child_key(spec, "dependsOn");
    let spans = match existing {
        Some(at) => Some(text.items(at).ok_or("dependsOn is not a block list")?),
        None => None,
    };
    let count = spans.as_ref().map_or(0, Vec::len);
    if keep.len() == count && add.is_empty() {
        return Ok(());
    }
    // Said once, above what split adds.
    let comment = [
        "# fluxgate split: after the windows (rw objects applied before them would pass",
        "# ungated) and after the rt half (the namespaces and configuration rw objects use).",
    ];
    match (existing, spans) {
        (Some(at), Some(spans)) => {
            let indent = text.item_indent(at);
            let pad = " ".repeat(indent);
            let mut lines = vec![text.lines[at].clone()];
            for &i in keep {
                lines.extend(text.slice(spans[i]).lines);
            }
            if !add.is_empty() {
                lines.extend(comment.map(|c| format!("{pad}{c}")));
            }
            lines.extend(
                add.iter()
                    .map(|n| format!("{pad}- name: {}", yaml::scalar(n))),
            );
            let (start, end) = if lines.len() == 1 {
                (text.block_start(at), text.value_end(at))
            } else {
                (at, text.value_end(at))
            };
            if lines.len() == 1 {
                lines.clear();
            }
            text.lines.splice(start..end, lines);
        }
        _ => {
            if add.is_empty() {
                return Ok(());
            }
            let first = (spec + 1..text.value_end(spec))
                .find(|&i| {
                    let t = text.lines[i].trim();
                    !t.is_empty() && !t.starts_with('#')
                })
                .ok_or("an empty spec")?;
            let indent = text.lines[first].len() - text.lines[first].trim_start().len();
            let pad = " ".repeat(indent);
            let mut lines = vec![format!("{pad}dependsOn:")];
            lines.extend(comment.map(|c| format!("{pad}  {c}")));
            lines.extend(
                add.iter()
                    .map(|n| format!("{pad}  - name: {}", yaml::scalar(n))),
            );
            text.lines.splice(spec + 1..spec + 1, lines);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPS: &str = "\
# All apps.
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  dependsOn:
    - name: infra-configs
    - name: reconciliation-windows   # the windows
  interval: 10m
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./deploy/clusters/c/apps
  prune: true
";

    fn read(text: &str) -> Flux {
        let files = BTreeMap::from([("clusters/c/apps.yaml".to_owned(), text.to_owned())]);
        Flux::read(&files, &["clusters/c".to_owned()], "deploy").unwrap()
    }

    #[test]
    fn paths_are_read_from_the_repository_root() {
        assert_eq!(
            resolve("./deploy/clusters/c/apps", "deploy").as_deref(),
            Some("clusters/c/apps")
        );
        assert_eq!(
            resolve("./clusters/c/apps", "").as_deref(),
            Some("clusters/c/apps")
        );
        assert_eq!(resolve("./other/apps", "deploy"), None);
        assert_eq!(resolve("./deploy", "deploy").as_deref(), Some(""));
        assert_eq!(resolve("", ""), None, "the root");
        assert_eq!(resolve("./", ""), None, "the root");
        let flux = read(APPS);
        let apps = &flux.kustomizations[0];
        assert_eq!(
            (apps.name.as_str(), apps.folder.as_deref()),
            ("apps", Some("clusters/c/apps"))
        );
        assert_eq!(
            apps.depends_on(),
            [
                ("infra-configs".to_owned(), "flux-system".to_owned()),
                (
                    "reconciliation-windows".to_owned(),
                    "flux-system".to_owned()
                )
            ]
        );
    }

    #[test]
    fn halves_wait_for_the_windows_only_on_the_rw_side() {
        let flux = read(APPS);
        let apps = &flux.kustomizations[0];
        let windows = [(
            "reconciliation-windows".to_owned(),
            "flux-system".to_owned(),
        )];
        let halves = apps
            .halves(
                APPS,
                [
                    "./deploy/clusters/c/apps/apps-rt",
                    "./deploy/clusters/c/apps/apps-rw",
                ],
                &windows,
            )
            .unwrap();
        assert!(halves.rt.contains("  name: apps-rt\n"), "{}", halves.rt);
        assert!(
            halves
                .rt
                .contains("  dependsOn:\n    - name: infra-configs\n  interval"),
            "{}",
            halves.rt
        );
        assert!(
            halves
                .rt
                .contains("path: ./deploy/clusters/c/apps/apps-rt\n")
        );
        assert!(halves.rt.starts_with("# All apps.\n"));
        assert!(
            halves.rw.contains(
                "    - name: infra-configs\n    - name: reconciliation-windows   # the windows\n    \
                 # fluxgate split: after the windows (rw objects applied before them would pass\n    \
                 # ungated) and after the rt half (the namespaces and configuration rw objects \
                 use).\n    - name: apps-rt\n"
            ),
            "{}",
            halves.rw
        );
    }

    #[test]
    fn a_dependency_list_is_made_when_there_is_none_and_dropped_when_emptied() {
        let plain = APPS.replace(
            "  dependsOn:\n    - name: infra-configs\n    - name: reconciliation-windows   # the windows\n",
            "",
        );
        let flux = read(&plain);
        let apps = &flux.kustomizations[0];
        let windows = [(
            "reconciliation-windows".to_owned(),
            "flux-system".to_owned(),
        )];
        let halves = apps
            .halves(&plain, ["./a/apps-rt", "./a/apps-rw"], &windows)
            .unwrap();
        assert!(!halves.rt.contains("dependsOn"));
        assert!(
            halves
                .rw
                .contains("spec:\n  dependsOn:\n    # fluxgate split:"),
            "{}",
            halves.rw
        );
        assert!(
            halves
                .rw
                .contains("    - name: reconciliation-windows\n    - name: apps-rt\n  interval")
        );
        let only_windows = APPS.replace("    - name: infra-configs\n", "");
        let flux = read(&only_windows);
        let halves = flux.kustomizations[0]
            .halves(&only_windows, ["./a/apps-rt", "./a/apps-rw"], &windows)
            .unwrap();
        assert!(!halves.rt.contains("dependsOn"), "{}", halves.rt);
    }

    #[test]
    fn a_dependent_waits_for_both_halves() {
        let text = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  \
                    name: tests\n  namespace: flux-system\nspec:\n  dependsOn:\n    # the apps first\n    \
                    - name: apps\n      namespace: flux-system\n  path: ./tests\n";
        let flux = read(text);
        let replaced = flux.kustomizations[0]
            .replace_dependency(text, "apps", &["apps-rt".into(), "apps-rw".into()])
            .unwrap();
        assert!(
            replaced.contains(
                "    # the apps first\n    - name: apps-rt\n      namespace: flux-system\n    - name: \
                 apps-rw\n      namespace: flux-system\n"
            ),
            "{replaced}"
        );
    }
}
