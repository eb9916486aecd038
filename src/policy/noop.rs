//! Is an UPDATE a no-op? Flux server-side dry-runs every object at every interval; an
//! unchanged object must pass quietly even while its window is closed.
//!
//! Compares old and new field by field without cloning either (they can be tens of KiB):
//! bookkeeping the API server or a controller changes on its own is ignored.

use crate::object::Object;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Written by `kubectl apply` (client-side); it mirrors the object, so it is not a change of its own.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// True when `new` equals `old` ignoring `metadata.resourceVersion`, `generation`,
/// `managedFields`, `uid`, `creationTimestamp`, the last-applied annotation and `status`.
pub fn unchanged(old: &Object, new: &Object) -> bool {
    (&old.api_version, &old.kind) == (&new.api_version, &new.kind)
        && same_metadata(&old.metadata, &new.metadata)
        && same_data(&old.data, &new.data)
}

fn same_metadata(old: &ObjectMeta, new: &ObjectMeta) -> bool {
    // Destructured in full so that a field added to ObjectMeta is a compile error here, not a
    // change that slips through unnoticed.
    let ObjectMeta {
        annotations,
        creation_timestamp: _,
        deletion_grace_period_seconds,
        deletion_timestamp,
        finalizers,
        generate_name,
        generation: _,
        labels,
        managed_fields: _,
        name,
        namespace,
        owner_references,
        resource_version: _,
        self_link: _,
        uid: _,
    } = old;
    same_annotations(annotations.as_ref(), new.annotations.as_ref())
        && *deletion_grace_period_seconds == new.deletion_grace_period_seconds
        && *deletion_timestamp == new.deletion_timestamp
        && *finalizers == new.finalizers
        && *generate_name == new.generate_name
        && same_map(labels.as_ref(), new.labels.as_ref())
        && *name == new.name
        && *namespace == new.namespace
        && *owner_references == new.owner_references
}

/// Maps that are absent and maps that are empty mean the same to the API server.
fn same_map(
    old: Option<&BTreeMap<String, String>>,
    new: Option<&BTreeMap<String, String>>,
) -> bool {
    let empty = BTreeMap::new();
    old.unwrap_or(&empty) == new.unwrap_or(&empty)
}

fn same_annotations(
    old: Option<&BTreeMap<String, String>>,
    new: Option<&BTreeMap<String, String>>,
) -> bool {
    fn relevant(m: Option<&BTreeMap<String, String>>) -> impl Iterator<Item = (&String, &String)> {
        m.into_iter()
            .flatten()
            .filter(|(k, _)| k.as_str() != LAST_APPLIED)
    }
    relevant(old).eq(relevant(new))
}

/// Same top-level fields but `status`, compared as text first: the API server encodes object
/// and oldObject alike, so equal objects have equal text, and only differing texts are parsed
/// to tell a real change from a different encoding of the same value.
fn same_data(old: &BTreeMap<String, Box<RawValue>>, new: &BTreeMap<String, Box<RawValue>>) -> bool {
    let relevant =
        |m: &BTreeMap<String, Box<RawValue>>| m.keys().filter(|k| k.as_str() != "status").count();
    relevant(old) == relevant(new)
        && old
            .iter()
            .filter(|(k, _)| k.as_str() != "status")
            .all(|(k, v)| {
                new.get(k)
                    .is_some_and(|n| v.get() == n.get() || same_json(v, n))
            })
}

/// Structural equality of two JSON texts: `old` becomes a tree, `new` is streamed against it
/// and the scan stops at the first difference (no second tree, no full scan of a changed field).
fn same_json(old: &RawValue, new: &RawValue) -> bool {
    let Ok(old) = serde_json::from_str::<serde_json::Value>(old.get()) else {
        return false;
    };
    let mut new = serde_json::Deserializer::from_str(new.get());
    serde::de::DeserializeSeed::deserialize(Matches(&old), &mut new).is_ok() && new.end().is_ok()
}

/// Deserializes a value only if it equals the given one (as `serde_json::Value`'s `==` would
/// say); fails at the first difference.
struct Matches<'a>(&'a serde_json::Value);

const DIFFERS: &str = "differs";

impl<'de> serde::de::DeserializeSeed<'de> for Matches<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Matches<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    // Numbers compare as `serde_json::Value` does: integers with integers, floats with floats.
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        same(self.0.as_bool() == Some(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        same(self.0.as_i64() == Some(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        same(self.0.as_u64() == Some(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        same(self.0.is_f64() && self.0.as_f64() == Some(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        same(self.0.as_str() == Some(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        same(self.0.is_null())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let items = self
            .0
            .as_array()
            .ok_or_else(|| serde::de::Error::custom(DIFFERS))?;
        let mut expected = items.iter();
        loop {
            match expected.next() {
                Some(item) => {
                    if seq.next_element_seed(Matches(item))?.is_none() {
                        return Err(serde::de::Error::custom(DIFFERS));
                    }
                }
                None => {
                    return match seq.next_element::<serde::de::IgnoredAny>()? {
                        None => Ok(()),
                        Some(_) => Err(serde::de::Error::custom(DIFFERS)),
                    };
                }
            }
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let fields = self
            .0
            .as_object()
            .ok_or_else(|| serde::de::Error::custom(DIFFERS))?;
        let mut seen = 0;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let expected = fields
                .get(key.as_ref())
                .ok_or_else(|| serde::de::Error::custom(DIFFERS))?;
            map.next_value_seed(Matches(expected))?;
            seen += 1;
        }
        same(seen == fields.len())
    }
}

fn same<E: serde::de::Error>(equal: bool) -> Result<(), E> {
    if equal {
        Ok(())
    } else {
        Err(E::custom(DIFFERS))
    }
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

    #[test]
    fn structural_comparison_agrees_with_value_equality() {
        let cases = [
            (
                r#"{"a":[1,2,{"b":null}],"c":"x"}"#,
                r#"{ "c" : "x", "a" : [1, 2, {"b": null}] }"#,
            ),
            (r#"{"a":[1,2]}"#, r#"{"a":[1,2,3]}"#),
            (r#"{"a":[1,2,3]}"#, r#"{"a":[1,2]}"#),
            (r#"{"a":1}"#, r#"{"a":1.0}"#),
            (r#"{"a":-1}"#, r#"{"a":-1}"#),
            (r#"{"a":"é\u00e9"}"#, r#"{"a":"éé"}"#),
            (r#"{"a":{}}"#, r#"{"a":{"b":1}}"#),
            (r#"{"a":{"b":1}}"#, r#"{"a":{}}"#),
            (r#"{"a":true}"#, r#"{"a":false}"#),
            (r#"[]"#, r#"{}"#),
        ];
        for (old, new) in cases {
            let (old_raw, new_raw) = (
                RawValue::from_string(old.into()).unwrap(),
                RawValue::from_string(new.into()).unwrap(),
            );
            let expected = serde_json::from_str::<serde_json::Value>(old).unwrap()
                == serde_json::from_str::<serde_json::Value>(new).unwrap();
            assert_eq!(same_json(&old_raw, &new_raw), expected, "{old} vs {new}");
        }
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
