//! The objects of a file, and which side each belongs to. Documents are kept as the text they
//! were written in (comments included); a file whose documents go to both sides is cut at its
//! `---` separators, never re-serialised.

use crate::lint::{Manifest, is_early_stage, parse_manifests};
use crate::policy::{MODE_LABEL, Mode, WINDOW_LABEL};
use crate::yaml::split_documents;
use std::collections::BTreeSet;

/// Where an object goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Side {
    Rt,
    Rw,
}

impl Side {
    pub(crate) const BOTH: [Side; 2] = [Side::Rt, Side::Rw];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Side::Rt => "rt",
            Side::Rw => "rw",
        }
    }
}

/// What decides an object's side.
#[derive(Clone, Debug)]
pub(crate) struct Rules<'a> {
    /// `--rw` kinds.
    pub(crate) rw_kinds: &'a [String],
    /// `--window`.
    pub(crate) window: Option<&'a str>,
}

/// One object and its side.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Object {
    pub(crate) kind: String,
    pub(crate) name: String,
    /// `Kind namespace/name`.
    pub(crate) display: String,
    pub(crate) side: Side,
    /// Why it is on that side, for the plan.
    pub(crate) why: String,
}

/// One YAML document of a file, as written.
#[derive(Clone, Debug)]
pub(crate) struct Document {
    text: String,
    /// Several for a `List`; none for a document of comments only.
    objects: Vec<Object>,
}

/// A file of objects.
#[derive(Clone, Debug)]
pub(crate) struct ObjectFile {
    documents: Vec<Document>,
}

// === impl Rules ===

impl Rules<'_> {
    /// An object's side: its own `fluxgate.io/mode` label, else its kind.
    fn side(&self, m: &Manifest) -> Result<(Side, String), String> {
        let label = m.labels.get(MODE_LABEL);
        let by_kind = self
            .rw_kinds
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&m.kind));
        let (side, why) = match (Mode::of(label.map(String::as_str)), label, by_kind) {
            (Mode::Invalid, Some(value), _) => {
                return Err(format!(
                    "{} is labelled {MODE_LABEL}: {value:?}, which is neither rw nor rt (the \
                     webhook denies it): fix the label first",
                    m.display()
                ));
            }
            (Mode::Rw, _, _) => (Side::Rw, format!("labelled {MODE_LABEL}: rw")),
            (_, Some(_), Some(kind)) => (
                Side::Rt,
                format!("labelled {MODE_LABEL}: rt, which wins over --rw {kind}"),
            ),
            (_, Some(_), None) => (Side::Rt, format!("labelled {MODE_LABEL}: rt")),
            (_, None, Some(kind)) => (Side::Rw, format!("--rw {kind}")),
            (_, None, None) => (Side::Rt, "not rw".to_owned()),
        };
        if side == Side::Rw {
            if is_early_stage(m) {
                return Err(format!(
                    "{} would be rw, but Flux applies Namespaces and CRDs in a stage before \
                     everything else, so one denial there would hold back the whole \
                     Kustomization: leave it rt",
                    m.display()
                ));
            }
            if let (Some(given), Some(own)) = (self.window, m.labels.get(WINDOW_LABEL))
                && given != own
            {
                return Err(format!(
                    "{} is labelled {WINDOW_LABEL}: {own}, and --window {given} would relabel \
                     it: run split with --window {own}, or change the label first",
                    m.display()
                ));
            }
        }
        Ok((side, why))
    }
}

// === impl ObjectFile ===

impl ObjectFile {
    /// The documents of `text` and the side of every object in them.
    pub(crate) fn read(path: &str, text: &str, rules: &Rules) -> Result<Self, String> {
        let mut documents: Vec<Document> = Vec::new();
        let mut pending = String::new();
        for (_, chunk) in split_documents(text) {
            let manifests = parse_manifests(path, &chunk).map_err(|e| e.to_string())?;
            if manifests.is_empty() {
                // Comments between documents travel with the document below them.
                pending.push_str(&chunk);
                continue;
            }
            let mut objects = Vec::with_capacity(manifests.len());
            for m in &manifests {
                let (side, why) = rules.side(m)?;
                objects.push(Object {
                    kind: m.kind.clone(),
                    name: m.name.clone(),
                    display: m.display(),
                    side,
                    why,
                });
            }
            if objects.iter().any(|o| o.side != objects[0].side) {
                return Err(format!(
                    "{path}: a List holds objects of both sides: write its items as separate \
                     documents"
                ));
            }
            documents.push(Document {
                text: std::mem::take(&mut pending) + &chunk,
                objects,
            });
        }
        match documents.last_mut() {
            Some(last) => last.text.push_str(&pending),
            None if !pending.is_empty() => documents.push(Document {
                text: pending,
                objects: Vec::new(),
            }),
            None => {}
        }
        Ok(ObjectFile { documents })
    }

    /// Every object of the file.
    pub(crate) fn objects(&self) -> impl Iterator<Item = &Object> {
        self.documents.iter().flat_map(|d| &d.objects)
    }

    /// The sides its objects go to; a file without objects goes with the rt side.
    pub(crate) fn sides(&self) -> BTreeSet<Side> {
        let sides: BTreeSet<Side> = self.objects().map(|o| o.side).collect();
        if sides.is_empty() {
            BTreeSet::from([Side::Rt])
        } else {
            sides
        }
    }

    /// The text of the file's documents of one side, in their order, joined by `---`.
    pub(crate) fn text_of(&self, side: Side) -> String {
        let mut out = String::new();
        for document in &self.documents {
            if document.objects.first().map(|o| o.side) != Some(side) {
                continue;
            }
            let starts_with_separator = document
                .text
                .lines()
                .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .is_some_and(|l| l.starts_with("---"));
            if !out.is_empty() && !starts_with_separator {
                out.push_str("---\n");
            }
            out.push_str(&document.text);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(rw: &[&str], window: Option<&'static str>) -> (Vec<String>, Option<&'static str>) {
        (rw.iter().map(|s| s.to_string()).collect(), window)
    }

    const MIXED: &str = "\
# the web part
apiVersion: v1
kind: ConfigMap
metadata:
  name: conf
---
# the workload
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # keep this
---
# trailing note
";

    #[test]
    fn documents_split_by_side_keep_their_comments() {
        let (kinds, window) = rules(&["deployment"], None);
        let rules = Rules {
            rw_kinds: &kinds,
            window,
        };
        let file = ObjectFile::read("x.yaml", MIXED, &rules).unwrap();
        assert_eq!(file.sides(), BTreeSet::from([Side::Rt, Side::Rw]));
        assert_eq!(
            file.text_of(Side::Rt),
            "# the web part\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: conf\n"
        );
        assert_eq!(
            file.text_of(Side::Rw),
            "---\n# the workload\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web   \
             # keep this\n---\n# trailing note\n"
        );
        let why: Vec<&str> = file.objects().map(|o| o.why.as_str()).collect();
        assert_eq!(why, ["not rw", "--rw deployment"]);
    }

    #[test]
    fn labels_decide_before_kinds_and_some_objects_cannot_be_rw() {
        let (kinds, window) = rules(&["Deployment", "Namespace"], Some("business-hours"));
        let rules = Rules {
            rw_kinds: &kinds,
            window,
        };
        let read = |text: &str| ObjectFile::read("x.yaml", text, &rules);
        let rt =
            read("kind: Deployment\nmetadata:\n  name: a\n  labels:\n    fluxgate.io/mode: rt\n")
                .unwrap();
        assert_eq!(rt.sides(), BTreeSet::from([Side::Rt]));
        let rw = read("kind: Secret\nmetadata:\n  name: a\n  labels:\n    fluxgate.io/mode: rw\n")
            .unwrap();
        assert_eq!(rw.sides(), BTreeSet::from([Side::Rw]));
        for (text, says) in [
            (
                "kind: Namespace\napiVersion: v1\nmetadata:\n  name: a\n",
                "Namespaces and CRDs",
            ),
            (
                "kind: Secret\nmetadata:\n  name: a\n  labels:\n    fluxgate.io/mode: RW\n",
                "neither rw nor rt",
            ),
            (
                "kind: Deployment\nmetadata:\n  name: a\n  labels:\n    fluxgate.io/window: nightly\n",
                "--window nightly",
            ),
            (
                "kind: List\nitems:\n- kind: Deployment\n  metadata: {name: a}\n- kind: Secret\n  metadata: {name: b}\n",
                "a List holds objects of both sides",
            ),
        ] {
            let error = read(text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
