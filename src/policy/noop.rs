//! Is an UPDATE a no-op? Flux server-side dry-runs every object at every interval; an
//! unchanged object must pass quietly even while its window is closed.
//!
//! Compares old and new field by field without cloning either (they can be tens of KiB):
//! bookkeeping the API server or a controller changes on its own is ignored.

use super::json_eq::same_json;
use crate::object::{Object, StringMap};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Written by `kubectl apply` (client-side); it mirrors the object, so it is not a change of its own.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// True when `new` equals `old` ignoring `metadata.resourceVersion`, `generation`,
/// `managedFields`, `uid`, `creationTimestamp`, the last-applied annotation and `status`.
pub fn unchanged(old: &Object, new: &Object) -> bool {
    // `spec` first: it is where a change usually is, and a change there is found early.
    (&old.api_version, &old.kind) == (&new.api_version, &new.kind)
        && same_data(&old.data, &new.data)
        && same_metadata(&old.metadata, &new.metadata)
        && same_map(old.labels.as_ref(), new.labels.as_ref())
        && same_annotations(old.annotations.as_ref(), new.annotations.as_ref())
}

fn same_metadata(old: &ObjectMeta, new: &ObjectMeta) -> bool {
    // Destructured in full so that a field added to ObjectMeta is a compile error here, not a
    // change that slips through unnoticed.
    let ObjectMeta {
        // Object keeps these two outside ObjectMeta: compared by `unchanged`.
        annotations: _,
        creation_timestamp: _,
        deletion_grace_period_seconds,
        deletion_timestamp,
        finalizers,
        generate_name,
        generation: _,
        labels: _,
        managed_fields: _,
        name,
        namespace,
        owner_references,
        resource_version: _,
        self_link: _,
        uid: _,
    } = old;
    *deletion_grace_period_seconds == new.deletion_grace_period_seconds
        && *deletion_timestamp == new.deletion_timestamp
        && *finalizers == new.finalizers
        && *generate_name == new.generate_name
        && *name == new.name
        && *namespace == new.namespace
        && *owner_references == new.owner_references
}

/// Maps that are absent and maps that are empty mean the same to the API server.
fn same_map(old: Option<&StringMap>, new: Option<&StringMap>) -> bool {
    entries(old).eq(entries(new))
}

fn same_annotations(old: Option<&StringMap>, new: Option<&StringMap>) -> bool {
    let relevant = |(k, _): &(&str, &str)| *k != LAST_APPLIED;
    entries(old)
        .filter(relevant)
        .eq(entries(new).filter(relevant))
}

fn entries(map: Option<&StringMap>) -> impl Iterator<Item = (&str, &str)> {
    map.into_iter().flat_map(StringMap::iter)
}

/// Same top-level fields but `status`, compared as text first: the API server encodes object
/// and oldObject alike, so equal objects have equal text; differing texts go to [`same_json`].
fn same_data(old: &BTreeMap<String, Box<RawValue>>, new: &BTreeMap<String, Box<RawValue>>) -> bool {
    let relevant =
        |m: &BTreeMap<String, Box<RawValue>>| m.keys().filter(|k| k.as_str() != "status").count();
    relevant(old) == relevant(new)
        && old
            .iter()
            .filter(|(k, _)| k.as_str() != "status")
            .all(|(k, v)| {
                new.get(k)
                    .is_some_and(|n| v.get() == n.get() || same_json(v.get(), n.get()))
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(text: &str) -> Object {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn the_same_value_written_differently_is_unchanged() {
        let old =
            object(r#"{"kind":"ConfigMap","metadata":{"name":"a"},"data":{"x":"1","y":"2"}}"#);
        let new =
            object(r#"{"kind":"ConfigMap","metadata":{"name":"a"},"data":{ "y": "2", "x": "1" }}"#);
        assert!(unchanged(&old, &new));
        let changed =
            object(r#"{"kind":"ConfigMap","metadata":{"name":"a"},"data":{"x":"1","y":"3"}}"#);
        assert!(!unchanged(&old, &changed));
        let extra = object(
            r#"{"kind":"ConfigMap","metadata":{"name":"a"},"data":{"x":"1","y":"2"},"binaryData":{}}"#,
        );
        assert!(!unchanged(&old, &extra));
    }

    /// Both were once called unchanged: floats parsed without correct rounding, and a duplicate
    /// key counted as a second field.
    #[test]
    fn a_float_change_or_a_duplicate_key_is_a_change() {
        let spec = |spec: &str| {
            object(&format!(
                r#"{{"kind":"X","metadata":{{"name":"a"}},"spec":{spec}}}"#
            ))
        };
        let old = spec(r#"{"ratio":943.6266835439236}"#);
        assert!(!unchanged(&old, &spec(r#"{"ratio":943.6266835439237}"#)));
        assert!(unchanged(&old, &spec(r#"{"ratio":943.62668354392360}"#)));
        let old = spec(r#"{"a":1,"b":1}"#);
        assert!(!unchanged(&old, &spec(r#"{"a":1,"a":1}"#)));
    }

    #[test]
    fn status_and_bookkeeping_are_ignored() {
        let old = object(
            r#"{"metadata":{"name":"a","resourceVersion":"1","generation":1,"managedFields":[{"manager":"x"}]},"spec":{"r":1},"status":{"ready":1}}"#,
        );
        let new = object(
            r#"{"metadata":{"name":"a","resourceVersion":"2","generation":2},"spec":{"r":1},"status":{"ready":2}}"#,
        );
        assert!(unchanged(&old, &new));
    }
}
