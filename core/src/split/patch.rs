//! Which objects a patch, a `replicas` entry or a component may change, so that it goes with
//! them. The reading errs towards "more objects": a selector it cannot evaluate exactly (a
//! regular expression, a label selector) counts as matching every object of its other fields, so
//! a patch is never put on one side while it also reaches the other.

use super::objects::{Object, Side};
use super::yaml;
use crate::yaml::split_documents;
use serde_json::Value;
use std::collections::BTreeSet;

/// A kind or name to match: exactly, or anything.
#[derive(Clone, Debug, PartialEq)]
enum Pattern {
    Exact(String),
    Any,
}

/// What one patch may aim at.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Selector {
    kinds: Vec<Pattern>,
    name: Pattern,
}

/// The kinds a `replicas` entry changes.
const REPLICA_KINDS: [&str; 4] = [
    "Deployment",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
];

// === impl Pattern ===

impl Pattern {
    /// A target field: kustomize reads it as an anchored regular expression, which is the text
    /// itself when it has no special characters.
    fn regex(text: Option<&str>) -> Pattern {
        match text {
            Some(t) if !t.is_empty() && !t.contains(|c: char| "\\.^$*+?()[]{}|".contains(c)) => {
                Pattern::Exact(t.to_owned())
            }
            _ => Pattern::Any,
        }
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Pattern::Exact(t) => t == text,
            Pattern::Any => true,
        }
    }
}

// === impl Selector ===

impl Selector {
    /// A `target:` (group, version, namespace and the label and annotation selectors are left
    /// out, which only widens it).
    pub(crate) fn target(target: &Value) -> Selector {
        let field = |key: &str| target.get(key).and_then(Value::as_str);
        Selector {
            kinds: vec![Pattern::regex(field("kind"))],
            name: Pattern::regex(field("name")),
        }
    }

    /// A `replicas:` entry.
    pub(crate) fn replicas(entry: &Value) -> Selector {
        Selector {
            kinds: REPLICA_KINDS
                .iter()
                .map(|k| Pattern::Exact((*k).to_owned()))
                .collect(),
            name: entry
                .get("name")
                .and_then(Value::as_str)
                .map_or(Pattern::Any, |n| Pattern::Exact(n.to_owned())),
        }
    }

    /// The objects named by a strategic-merge patch without `target:` (each document names
    /// one by kind and name).
    pub(crate) fn strategic_merge(text: &str) -> Result<Vec<Selector>, String> {
        let mut selectors = Vec::new();
        for (_, chunk) in split_documents(text) {
            let value = yaml::parse(&chunk).map_err(|e| format!("not valid YAML: {e}"))?;
            if value.is_null() {
                continue;
            }
            let kind = value.get("kind").and_then(Value::as_str);
            let name = value.pointer("/metadata/name").and_then(Value::as_str);
            let (Some(kind), Some(name)) = (kind, name) else {
                return Err("a patch without target: that names no kind and metadata.name".into());
            };
            selectors.push(Selector {
                kinds: vec![Pattern::Exact(kind.to_owned())],
                name: Pattern::Exact(name.to_owned()),
            });
        }
        Ok(selectors)
    }

    pub(crate) fn matches(&self, object: &Object) -> bool {
        self.kinds.iter().any(|k| k.matches(&object.kind)) && self.name.matches(&object.name)
    }
}

/// The sides of the objects some selectors reach; `unknown` adds rt, for a folder that also
/// builds objects split cannot see (they stay on the rt side).
pub(crate) fn sides_reached<'a>(
    selectors: &[Selector],
    objects: impl IntoIterator<Item = &'a Object>,
    unknown: bool,
) -> BTreeSet<Side> {
    let mut sides: BTreeSet<Side> = objects
        .into_iter()
        .filter(|o| selectors.iter().any(|s| s.matches(o)))
        .map(|o| o.side)
        .collect();
    if unknown && !selectors.is_empty() {
        sides.insert(Side::Rt);
    }
    sides
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(kind: &str, name: &str, side: Side) -> Object {
        Object {
            kind: kind.into(),
            name: name.into(),
            display: format!("{kind} {name}"),
            side,
            why: String::new(),
        }
    }

    #[test]
    fn targets_match_kind_and_name_or_anything_they_cannot_read() {
        let objects = [
            object("Deployment", "web", Side::Rw),
            object("ConfigMap", "web", Side::Rt),
            object("Deployment", "db", Side::Rt),
        ];
        let reached = |target: Value| sides_reached(&[Selector::target(&target)], &objects, false);
        assert_eq!(
            reached(json!({"kind": "Deployment", "name": "web"})),
            BTreeSet::from([Side::Rw])
        );
        assert_eq!(
            reached(json!({"kind": "Deployment"})),
            BTreeSet::from([Side::Rt, Side::Rw])
        );
        assert_eq!(
            reached(json!({"kind": "Deployment", "name": "w.*"})),
            BTreeSet::from([Side::Rt, Side::Rw]),
            "a regular expression reaches every Deployment"
        );
        assert_eq!(
            reached(json!({"kind": "Secret"})),
            BTreeSet::new(),
            "nothing"
        );
        assert_eq!(
            reached(json!({"labelSelector": "app=web", "kind": "ConfigMap"})),
            BTreeSet::from([Side::Rt])
        );
        assert_eq!(
            sides_reached(
                &[Selector::target(&json!({"kind": "Secret"}))],
                &objects,
                true
            ),
            BTreeSet::from([Side::Rt]),
            "objects split cannot see are rt"
        );
    }

    #[test]
    fn strategic_merge_patches_and_replicas_name_their_objects() {
        let objects = [
            object("Deployment", "web", Side::Rw),
            object("StatefulSet", "db", Side::Rt),
        ];
        let smp = Selector::strategic_merge(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n",
        )
        .unwrap();
        assert_eq!(
            sides_reached(&smp, &objects, false),
            BTreeSet::from([Side::Rw])
        );
        let replicas = [Selector::replicas(&json!({"name": "db", "count": 2}))];
        assert_eq!(
            sides_reached(&replicas, &objects, false),
            BTreeSet::from([Side::Rt])
        );
        assert!(Selector::strategic_merge("- op: add\n  path: /x\n").is_err());
    }
}
