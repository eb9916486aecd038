//! A kustomization file as `fluxgate split` reads and rewrites it: which of its fields may be
//! copied to both sides, which are lists whose items go to one side, which make a split unsafe;
//! and the text of each side, derived line by line from the original.

use super::path;
use super::yaml::{self, Text};
use crate::policy::{MODE_LABEL, WINDOW_LABEL};
use crate::yaml::split_documents;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The file names kustomize reads, in its order of preference.
pub(crate) const FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The lists whose items are sorted to one side (or both).
pub(crate) const SIDED: [&str; 6] = [
    "resources",
    "components",
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "replicas",
];

/// Fields that apply to every object alike: each side keeps them as they are.
const COPIED: [&str; 11] = [
    "apiVersion",
    "kind",
    "metadata",
    "namespace",
    "commonLabels",
    "commonAnnotations",
    "labels",
    "images",
    "buildMetadata",
    "sortOptions",
    "generatorOptions",
];

/// Fields that tie objects together by name, generate objects, or run code: split apart, the
/// two sides would not render what the whole did.
fn refused_field(key: &str) -> Option<&'static str> {
    Some(match key {
        "configMapGenerator" | "secretGenerator" | "generators" => {
            "generators: the names they generate carry a content hash that kustomize writes into \
             the objects referring to them only within one kustomization"
        }
        "helmCharts" | "helmGlobals" | "helmChartInflationGenerator" => {
            "Helm charts inflated by kustomize: their objects are not in Git to be moved (gate \
             a HelmRelease instead)"
        }
        "namePrefix" | "nameSuffix" => {
            "namePrefix/nameSuffix: kustomize renames the references between objects only \
             within one kustomization"
        }
        "replacements" | "vars" => {
            "replacements/vars: they copy values between objects, which may end up on \
             different sides"
        }
        "transformers" | "validators" => "transformer and validator plugins",
        "crds" | "configurations" | "openapi" => {
            "crds/configurations/openapi: they change how kustomize reads references"
        }
        "bases" => "bases (deprecated): list them under resources first",
        _ => return None,
    })
}

/// One kustomization file.
#[derive(Clone, Debug)]
pub(crate) struct Kustomization {
    /// Its folder.
    pub(crate) dir: String,
    /// Its path.
    pub(crate) file: String,
    pub(crate) text: Text,
    pub(crate) value: Value,
}

/// Where one item of a sided list goes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Item {
    /// As written.
    Keep(usize),
    /// With its scalar (a path) replaced; the same item twice writes its comments once.
    Rewrite(usize, String),
    /// A new path.
    New(String),
}

/// The `labels:` entry a side of an app gets.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SideLabels {
    pub(crate) pairs: BTreeMap<String, String>,
    /// The comment written above it.
    pub(crate) comment: String,
}

// === impl Kustomization ===

impl Kustomization {
    /// Whether `dir` has a kustomization (without reading it).
    pub(crate) fn exists(files: &BTreeMap<String, String>, dir: &str) -> bool {
        FILE_NAMES
            .iter()
            .any(|name| files.contains_key(&path::child(dir, name)))
    }

    /// The kustomization of `dir`, if it has one.
    pub(crate) fn find(
        files: &BTreeMap<String, String>,
        dir: &str,
    ) -> Option<Result<Self, String>> {
        FILE_NAMES.iter().find_map(|name| {
            let file = path::child(dir, name);
            files.get(&file).map(|text| Self::read(dir, &file, text))
        })
    }

    fn read(dir: &str, file: &str, text: &str) -> Result<Self, String> {
        let value = yaml::parse(text).map_err(|e| format!("{file}: not valid YAML: {e}"))?;
        let value = match value {
            Value::Null => json!({}),
            Value::Object(_) => value,
            _ => return Err(format!("{file}: not a kustomization (a YAML mapping)")),
        };
        let documents = split_documents(text)
            .iter()
            .filter(|(_, chunk)| yaml::parse(chunk).is_ok_and(|v| !v.is_null()))
            .count();
        if documents > 1 {
            return Err(format!("{file}: more than one YAML document"));
        }
        Ok(Kustomization {
            dir: dir.to_owned(),
            file: file.to_owned(),
            text: Text::new(text),
            value,
        })
    }

    /// The items of a list field (empty when absent).
    pub(crate) fn list(&self, key: &str) -> Vec<Value> {
        self.value
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// The items of a list of paths (`resources`, `components`), as written.
    pub(crate) fn references(&self, key: &str) -> Result<Vec<String>, String> {
        self.list(key)
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(format!("{}: {key} item {other} is not a path", self.file)),
            })
            .collect()
    }

    /// The items of a list of paths, each read from the kustomization's folder.
    pub(crate) fn targets(&self, key: &str) -> Vec<String> {
        self.references(key)
            .unwrap_or_default()
            .iter()
            .map(|r| path::join(&self.dir, r))
            .collect()
    }

    /// Refuses the fields a split cannot carry over: what makes objects depend on being built
    /// together, fields it does not know, and fluxgate labels set for the whole folder.
    pub(crate) fn check_fields(&self) -> Result<(), String> {
        let Value::Object(map) = &self.value else {
            return Ok(());
        };
        for (key, value) in map {
            if let Some(reason) = refused_field(key) {
                return Err(format!("{} uses {reason}", self.file));
            }
            if !COPIED.contains(&key.as_str()) && !SIDED.contains(&key.as_str()) {
                return Err(format!(
                    "{}: fluxgate split does not know the field {key:?}, so not which side it \
                     belongs to",
                    self.file
                ));
            }
            if SIDED.contains(&key.as_str()) && !value.is_array() && !value.is_null() {
                return Err(format!("{}: {key} is not a list", self.file));
            }
        }
        if let Some(key) = self.sets_fluxgate_labels() {
            return Err(format!(
                "{} sets {key} for every object it builds: it is one side already (or set by \
                 hand); split the folder that holds both sides' objects",
                self.file
            ));
        }
        Ok(())
    }

    /// A fluxgate label this kustomization sets on everything it builds.
    fn sets_fluxgate_labels(&self) -> Option<&'static str> {
        let has = |pairs: Option<&Value>| -> Option<&'static str> {
            let pairs = pairs?.as_object()?;
            [MODE_LABEL, WINDOW_LABEL]
                .into_iter()
                .find(|key| pairs.contains_key(*key))
        };
        has(self.value.get("commonLabels")).or_else(|| {
            self.list("labels")
                .iter()
                .find_map(|entry| has(entry.get("pairs")))
        })
    }

    /// The text of one side: the original with each list of `lists` made of its items (a list
    /// left empty loses its key and the comments above it, a list it did not have is appended)
    /// and `labels` appended, checked by reading it back.
    pub(crate) fn rewrite(
        &self,
        lists: &BTreeMap<&str, Vec<Item>>,
        labels: Option<&SideLabels>,
    ) -> Result<String, String> {
        let mut text = self.text.clone();
        let mut expected = self.value.clone();
        // Bottom-up, so the lines of the keys still to edit do not move.
        let mut keys: Vec<(&str, usize)> = lists
            .keys()
            .filter_map(|key| text.top_key(key).map(|at| (*key, at)))
            .collect();
        keys.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
        for (key, at) in keys {
            let items = &lists[key];
            let lines = list_lines(&text, at, key, items, &self.list(key))
                .map_err(|e| format!("{}: {key}: {e}", self.file))?;
            let start = if items.is_empty() {
                text.block_start(at)
            } else {
                at
            };
            let end = text.value_end(at);
            text.lines.splice(start..end, lines);
        }
        for (key, items) in lists {
            if text.top_key(key).is_none() && !items.is_empty() {
                text.lines.push(format!("{key}:"));
                let at = text.lines.len() - 1;
                let lines = list_lines(&text, at, key, items, &[])
                    .map_err(|e| format!("{}: {key}: {e}", self.file))?;
                text.lines.truncate(at);
                text.lines.extend(lines);
            }
            let original = self.list(key);
            let map = expected
                .as_object_mut()
                .expect("a kustomization is a mapping");
            if items.is_empty() {
                map.remove(*key);
            } else {
                let values = items
                    .iter()
                    .map(|item| match item {
                        Item::Keep(i) => original[*i].clone(),
                        Item::Rewrite(_, new) | Item::New(new) => Value::String(new.clone()),
                    })
                    .collect();
                map.insert((*key).to_owned(), Value::Array(values));
            }
        }
        if let Some(labels) = labels {
            append_labels(&mut text, &mut expected, labels)
                .map_err(|e| format!("{}: labels: {e}", self.file))?;
        }
        let rendered = text.render();
        yaml::verify(&rendered, &expected).map_err(|e| {
            format!(
                "{}: cannot rewrite it line by line ({e}); write it in block style",
                self.file
            )
        })?;
        Ok(rendered)
    }
}

/// The lines of the list at line `at` holding `items`: the kept items' own lines (comments
/// included), or, for a flow-style list of paths, a block list written afresh.
fn list_lines(
    text: &Text,
    at: usize,
    key: &str,
    items: &[Item],
    original: &[Value],
) -> Result<Vec<String>, String> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut lines = vec![text.lines[at].clone()];
    let spans = match text.items(at) {
        Some(spans) => spans,
        None if original.is_empty() && !text.is_inline(at) => Vec::new(),
        None => {
            // A flow list (`resources: [a.yaml, b.yaml]`): paths are the tool's to write.
            lines[0] = format!("{key}:");
            for item in items {
                let value = match item {
                    Item::Keep(i) => original[*i]
                        .as_str()
                        .ok_or("a flow-style list of objects")?
                        .to_owned(),
                    Item::Rewrite(_, new) | Item::New(new) => new.clone(),
                };
                lines.push(format!("  - {}", yaml::scalar(&value)));
            }
            return Ok(lines);
        }
    };
    if spans.len() != original.len() {
        return Err("its items could not be told apart line by line".into());
    }
    let pad = " ".repeat(text.item_indent(at));
    let mut written = Vec::new();
    for item in items {
        match item {
            Item::Keep(i) => lines.extend(text.slice(spans[*i]).lines),
            Item::Rewrite(i, new) => {
                let mut own = text.slice(spans[*i]);
                let dash = own
                    .lines
                    .iter()
                    .position(|l| l.trim_start().starts_with('-'))
                    .ok_or("an item without a dash")?;
                own.set_scalar(dash, new)?;
                let skip = if written.contains(i) { dash } else { 0 };
                lines.extend(own.lines.into_iter().skip(skip));
                written.push(*i);
            }
            Item::New(new) => lines.push(format!("{pad}- {}", yaml::scalar(new))),
        }
    }
    Ok(lines)
}

/// Appends the side's `labels:` entry, to the existing list or as a new key at the end.
fn append_labels(text: &mut Text, expected: &mut Value, labels: &SideLabels) -> Result<(), String> {
    let entry_lines = |indent: usize| {
        let pad = " ".repeat(indent);
        let mut lines = vec![format!("{pad}- pairs:")];
        for (key, value) in &labels.pairs {
            lines.push(format!("{pad}    {key}: {}", yaml::scalar(value)));
        }
        // Selectors are immutable (a Deployment's) or would stop matching (a Service's), and
        // pods are created by controllers, not Flux: neither gets the labels.
        lines.push(format!("{pad}  includeSelectors: false"));
        lines.push(format!("{pad}  includeTemplates: false"));
        lines
    };
    let entry = json!({
        "pairs": labels.pairs,
        "includeSelectors": false,
        "includeTemplates": false,
    });
    let map = expected
        .as_object_mut()
        .expect("a kustomization is a mapping");
    match text.top_key("labels") {
        Some(at) => {
            if text.items(at).is_none() {
                return Err("write the existing labels: as a block list".into());
            }
            let indent = text.item_indent(at);
            let end = text.value_end(at);
            text.lines.splice(end..end, entry_lines(indent));
            map.get_mut("labels")
                .and_then(Value::as_array_mut)
                .ok_or("labels: is not a list")?
                .push(entry);
        }
        None => {
            for line in labels.comment.lines() {
                text.lines.push(format!("# {line}").trim_end().to_owned());
            }
            text.lines.push("labels:".to_owned());
            text.lines.extend(entry_lines(2));
            map.insert("labels".to_owned(), Value::Array(vec![entry]));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kustomization(text: &str) -> Kustomization {
        Kustomization::read("apps/x", "apps/x/kustomization.yaml", text).unwrap()
    }

    fn labels() -> SideLabels {
        SideLabels {
            pairs: BTreeMap::from([
                (MODE_LABEL.to_owned(), "rw".to_owned()),
                (WINDOW_LABEL.to_owned(), "business-hours".to_owned()),
            ]),
            comment: "the rw part".into(),
        }
    }

    #[test]
    fn a_side_keeps_its_items_comments_and_gets_labels() {
        let k = kustomization(
            "# app x\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources:\n  - a.yaml # first\n  # the second\n  - b.yaml\n\
             # patches for b\npatches:\n  - path: p.yaml\n",
        );
        let lists = BTreeMap::from([("resources", vec![Item::Keep(1)]), ("patches", vec![])]);
        let text = k.rewrite(&lists, Some(&labels())).unwrap();
        assert_eq!(
            text,
            "# app x\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources:\n  # the second\n  - b.yaml\n# the rw part\nlabels:\n  - pairs:\n      \
             fluxgate.io/mode: rw\n      fluxgate.io/window: business-hours\n    \
             includeSelectors: false\n    includeTemplates: false\n"
        );
    }

    #[test]
    fn rewritten_paths_and_flow_lists() {
        let k = kustomization("resources: [../../apps/a, b.yaml]\nnamespace: x\n");
        let lists = BTreeMap::from([(
            "resources",
            vec![
                Item::Rewrite(0, "../../../apps/a/a-rt".into()),
                Item::Keep(1),
            ],
        )]);
        assert_eq!(
            k.rewrite(&lists, None).unwrap(),
            "resources:\n  - ../../../apps/a/a-rt\n  - b.yaml\nnamespace: x\n"
        );
        let k = kustomization("resources:\n- '../a'   # the app\n");
        let lists = BTreeMap::from([("resources", vec![Item::Rewrite(0, "../../a/a-rw".into())])]);
        assert_eq!(
            k.rewrite(&lists, None).unwrap(),
            "resources:\n- '../../a/a-rw'   # the app\n"
        );
    }

    #[test]
    fn existing_labels_get_one_more_entry() {
        let k = kustomization("labels:\n- pairs:\n    team: web\n");
        let text = k.rewrite(&BTreeMap::new(), Some(&labels())).unwrap();
        assert!(
            text.starts_with(
                "labels:\n- pairs:\n    team: web\n- pairs:\n    fluxgate.io/mode: rw\n"
            ),
            "{text}"
        );
        let flow = kustomization("labels: [{pairs: {team: web}}]\n");
        assert!(flow.rewrite(&BTreeMap::new(), Some(&labels())).is_err());
    }

    #[test]
    fn fields_that_cannot_be_split_are_named() {
        for (text, says) in [
            ("configMapGenerator:\n- name: x\n", "generators"),
            ("helmCharts:\n- name: x\n", "Helm charts"),
            ("namePrefix: a-\n", "namePrefix"),
            ("surprise: 1\n", "\"surprise\""),
            (
                "labels:\n- pairs:\n    fluxgate.io/mode: rw\n",
                "sets fluxgate.io/mode for every object",
            ),
            (
                "commonLabels:\n  fluxgate.io/window: w\n",
                "fluxgate.io/window",
            ),
        ] {
            let error = kustomization(text).check_fields().unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
        assert!(
            kustomization("resources: [a.yaml]\nimages: []\n")
                .check_fields()
                .is_ok()
        );
    }
}
