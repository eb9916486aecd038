//! Is an UPDATE a no-op? Flux server-side dry-runs every object at every interval; an
//! unchanged object must pass quietly even while its window is closed.
//!
//! Compares old and new field by field: bookkeeping the API server or a controller changes on
//! its own is ignored.

use crate::object::Object;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Written by `kubectl apply` (client-side); it mirrors the object, so it is not a change of its own.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// True when `new` equals `old` ignoring `metadata.resourceVersion`, `generation`,
/// `managedFields`, `uid`, `creationTimestamp`, the last-applied annotation and `status`.
pub(crate) fn unchanged(old: &Object, new: &Object) -> bool {
    // `spec` first: it is where a change usually is, and a change there is found early.
    (&old.api_version, &old.kind) == (&new.api_version, &new.kind)
        && same_data(&old.data, &new.data)
        && same_metadata(&old.metadata, &new.metadata)
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
    *deletion_grace_period_seconds == new.deletion_grace_period_seconds
        && *deletion_timestamp == new.deletion_timestamp
        && *finalizers == new.finalizers
        && *generate_name == new.generate_name
        && *name == new.name
        && *namespace == new.namespace
        && *owner_references == new.owner_references
        && entries(labels.as_ref()).eq(entries(new.labels.as_ref()))
        && same_annotations(annotations.as_ref(), new.annotations.as_ref())
}

fn same_annotations(old: Option<&Labels>, new: Option<&Labels>) -> bool {
    let relevant = |(k, _): &(&String, &String)| *k != LAST_APPLIED;
    entries(old)
        .filter(relevant)
        .eq(entries(new).filter(relevant))
}

type Labels = BTreeMap<String, String>;

/// Maps that are absent and maps that are empty mean the same to the API server.
fn entries(map: Option<&Labels>) -> impl Iterator<Item = (&String, &String)> {
    map.into_iter().flatten()
}

/// Same top-level fields but `status`.
fn same_data(old: &BTreeMap<String, Box<RawValue>>, new: &BTreeMap<String, Box<RawValue>>) -> bool {
    let relevant =
        |m: &BTreeMap<String, Box<RawValue>>| m.keys().filter(|k| *k != "status").count();
    relevant(old) == relevant(new)
        && old
            .iter()
            .filter(|(k, _)| *k != "status")
            .all(|(k, v)| new.get(k).is_some_and(|n| same_json(v.get(), n.get())))
}

/// Whether two JSON texts hold the same `serde_json::Value` (numbers read correctly rounded,
/// strings decoded, the last of duplicate keys winning, as Go reads them). The API server
/// encodes object and oldObject alike, so equal values almost always have equal texts; texts
/// that differ are almost always a change, which [`surely_changed`] tells without parsing;
/// the rest are parsed and compared.
fn same_json(old: &str, new: &str) -> bool {
    if old == new {
        return true;
    }
    if surely_changed(old.as_bytes(), new.as_bytes()) {
        return false;
    }
    let parse = |text: &str| serde_json::from_str::<Value>(text).ok();
    // A text serde_json accepted once parses again; `None == None` never counts as the same.
    matches!((parse(old), parse(new)), (Some(a), Some(b)) if a == b)
}

/// Whether two JSON texts that differ surely hold different values, told from where they first
/// differ, `p`: the bytes before it are the same, so both texts are at the same place in the
/// same structure there. They differ if `p` is inside a string *value* (not a key: another key
/// order may be the same object) without an escape in either, or at a bracket, comma or
/// literal away from any number and whitespace. `false` means "not sure" (a key, an escape,
/// whitespace, a number: `1.0` is `1.00`), and the values are compared. A duplicate key, which
/// the API server never sends, can make this say "changed" where Go would say "same": it errs
/// towards a change, which the window then decides, never towards a no-op.
///
/// It pays for itself: a review of the recorded Deployment UPDATE (an image bump) costs 237
/// thousand instructions with it and 370 thousand without, when both specs are parsed into
/// `Value`s: 17.6 against 29.6 µs, or 34,000 reviews per second, under the 40,000 goal
/// (BENCHMARKS.md).
fn surely_changed(old: &[u8], new: &[u8]) -> bool {
    let p = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let (Some(&x), Some(&y)) = (old.get(p), new.get(p)) else {
        return false;
    };
    // Whether `p` is inside a string, and whether that string has an escape before `p`.
    let (mut in_string, mut escaped, mut i) = (false, false, 0);
    while let Some(at) = old[i..p].iter().position(quote_or_backslash).map(|n| i + n) {
        if old[at] == b'\\' {
            escaped = true;
            i = at + 2;
        } else {
            in_string = !in_string;
            escaped = false;
            i = at + 1;
        }
        if i > p {
            return false;
        }
    }
    if escaped {
        return false;
    }
    if in_string {
        return ends_as_a_value(old, p) && ends_as_a_value(new, p);
    }
    let number_or_space = |b: u8| b"-+.0123456789eE \t\n\r".contains(&b);
    let before = p.checked_sub(1).map(|q| old[q]);
    !number_or_space(x) && !number_or_space(y) && !before.is_some_and(number_or_space)
}

fn quote_or_backslash(b: &u8) -> bool {
    *b == b'"' || *b == b'\\'
}

/// The string around `p` ends with no escape from `p` on, and no `:` follows it: a value.
fn ends_as_a_value(text: &[u8], p: usize) -> bool {
    let Some(end) = text[p..].iter().position(quote_or_backslash) else {
        return false;
    };
    let next = text[p + end + 1..].iter().find(|b| !b" \t\n\r".contains(b));
    text[p + end] == b'"' && next != Some(&b':')
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

    #[test]
    fn a_changed_string_value_is_told_without_parsing_and_a_key_is_not() {
        // Inside a value: surely a change.
        assert!(surely_changed(
            br#"{"image":"nginx:1.27"}"#,
            br#"{"image":"nginx:1.28"}"#
        ));
        // Inside a key: maybe another key order, so not sure.
        assert!(!surely_changed(
            br#"{"ab":1,"ac":2}"#,
            br#"{"ac":2,"ab":1}"#
        ));
        // An escape may spell the same string.
        assert!(!surely_changed(br#"["\u00e9"]"#, "[\"\u{e9}\"]".as_bytes()));
        assert!(!surely_changed(br#"["\u00e9"]"#, br#"["\u00E9"]"#));
        // Whitespace and numbers are for the values to decide.
        assert!(!surely_changed(br#"[1.0]"#, br#"[1.00]"#));
        assert!(!surely_changed(br#"{"a": 1}"#, br#"{"a":1}"#));
        assert!(same_json(
            r#"["\u00e9", 1.0, {"b": 2, "a": 1}]"#,
            r#"["é",1.00,{"a":1,"b":2}]"#
        ));
    }

    fn value_eq(old: &str, new: &str) -> bool {
        serde_json::from_str::<Value>(old).unwrap() == serde_json::from_str::<Value>(new).unwrap()
    }

    #[test]
    fn agrees_with_value_equality() {
        let cases = [
            (
                r#"{"a":[1,2,{"b":null}],"c":"x"}"#,
                r#"{ "c" : "x", "a" : [1, 2, {"b": null}] }"#,
            ),
            (r#"{"a":[1,2]}"#, r#"{"a":[1,2,3]}"#),
            (r#"{"a":[1,2,3]}"#, r#"{"a":[1,2]}"#),
            (r#"{"a":1}"#, r#"{"a":1.0}"#),
            (r#"{"a":1.0}"#, r#"{"a":1.00}"#),
            (r#"{"a":"\u00e9"}"#, r#"{"a":"\u00E9"}"#),
            (r#"{"a":"x\"y"}"#, r#"{"a":"x\"z"}"#),
            (r#"{"a":"x","b":1}"#, r#"{"a":"y","b":1}"#),
            (r#"{"a":"x","b":1}"#, r#"{"b":1,"a":"x"}"#),
            (r#"{"ab":1,"a":2}"#, r#"{"a":2,"ab":1}"#),
            (r#"{"a":"x" ,"b":1}"#, r#"{"a":"x","b":1}"#),
            (r#"{"a":true}"#, r#"{"a":null}"#),
            (r#"{"a":[1]}"#, r#"{"a":{"b":1}}"#),
            (r#"{"a":{}}"#, r#"{"a":{ }}"#),
            (r#"{"a":12}"#, r#"{"a":13}"#),
            (r#"{"a":1e2}"#, r#"{"a":100.0}"#),
            (r#"{"a":-1}"#, r#"{"a":-1}"#),
            (r#"{"a":"é\u00e9"}"#, r#"{"a":"éé"}"#),
            (r#"{"a":"\"\\"}"#, r#"{"a":"\u0022\u005c"}"#),
            (r#"{"a\n":1}"#, r#"{"a\u000a":1}"#),
            (r#"{"a":{}}"#, r#"{"a":{"b":1}}"#),
            (r#"{"a":{"b":1}}"#, r#"{"a":{}}"#),
            (r#"{"a":{"b":1},"c":2}"#, r#"{"c":2,"a":{"b":1}}"#),
            (r#"{"a":{"b":1},"c":2}"#, r#"{"c":2,"a":{"b":2}}"#),
            (r#"{"a":{"b":1,"c":2}}"#, r#"{"a":{"c":2,"b":1}}"#),
            (r#"{"a":true}"#, r#"{"a":false}"#),
            (r#"{"a":null}"#, r#"{"a":"null"}"#),
            (r#"[]"#, r#"{}"#),
            (r#"[{"a":1},{"b":2}]"#, r#"[{"b":2},{"a":1}]"#),
            (r#""x""#, r#""x""#),
            (r#"0"#, r#"-0"#),
        ];
        for (old, new) in cases {
            let expected = value_eq(old, new);
            assert_eq!(same_json(old, new), expected, "{old} vs {new}");
            assert_eq!(same_json(new, old), expected, "{new} vs {old}");
        }
    }

    /// Number pairs and Python's verdict (`tools/gen-float-pairs.py`): Python's `json` reads
    /// floats correctly rounded, as Go does.
    #[test]
    fn floats_compare_as_a_correctly_rounding_reader_reads_them() {
        #[derive(serde::Deserialize)]
        struct Fixture {
            cases: Vec<(String, String, bool)>,
        }
        let text = include_str!("../../../tests/fixtures/float-pairs.json");
        let fixture: Fixture = serde_json::from_str(text).unwrap();
        assert!(fixture.cases.len() > 1000);
        for (a, b, same) in fixture.cases {
            for (old, new) in [
                (format!(r#"{{"x":{a}}}"#), format!(r#"{{"x":{b}}}"#)),
                // Another key order: the `Value` comparison.
                (
                    format!(r#"{{"y":1,"x":{a}}}"#),
                    format!(r#"{{"x":{b},"y":1}}"#),
                ),
            ] {
                assert_eq!(same_json(&old, &new), same, "{old} vs {new}");
                assert_eq!(same_json(&new, &old), same, "{new} vs {old}");
            }
        }
    }

    /// Go (and so the API server) keeps the last of duplicate keys.
    #[test]
    fn duplicate_keys_are_read_last_wins() {
        for (old, new, same) in [
            (r#"{"a":1,"b":1}"#, r#"{"a":1,"a":1}"#, false),
            (r#"{"a":1,"a":1}"#, r#"{"a":1,"b":1}"#, false),
            (r#"{"a":1}"#, r#"{"a":1,"a":2}"#, false),
            (r#"{"b":1,"a":1}"#, r#"{"a":1,"b":1,"a":1}"#, true),
            (r#"{"b":1,"a":1}"#, r#"{"a":1,"b":1,"a":2}"#, false),
            (r#"{"s":{"a":1,"b":1}}"#, r#"{"s":{"b":1,"b":1}}"#, false),
        ] {
            assert_eq!(same_json(old, new), same, "{old} vs {new}");
            assert_eq!(same_json(new, old), same, "{new} vs {old}");
        }
        // Go reads each pair alike, and so do `Value`s.
        for (old, new) in [
            (r#"{"a":1}"#, r#"{"a":2,"a":1}"#),
            (r#"{"b":1,"a":1}"#, r#"{"a":2,"b":1,"a":1}"#),
        ] {
            assert!(same_json(old, new), "{old} vs {new}");
        }
        // Where the texts first part inside a string value, the fast path calls it a change
        // before a later duplicate could repeat the old value: it errs towards a change.
        assert!(!same_json(r#"{"a":"x","a":"y"}"#, r#"{"a":"z","a":"y"}"#));
    }

    /// A JSON value from a small alphabet, so that two of them are often equal or nearly so.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..3).prop_map(Value::from),
            prop_oneof![Just(0.5), Just(1.0), Just(943.6266835439236)].prop_map(Value::from),
            "[ab\"\\\\é]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[ab]{1,2}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Rewrites `value`'s text as another encoder might: objects' keys in reverse order,
    /// non-ASCII characters escaped, and with `spaces`, spaces around every token.
    fn respelled(value: &Value, spaces: bool) -> String {
        let sp = if spaces { " " } else { "" };
        match value {
            Value::Object(map) => {
                let members: Vec<String> = map
                    .iter()
                    .rev()
                    .map(|(k, v)| {
                        let key = respelled(&Value::from(k.as_str()), spaces);
                        format!("{key}{sp}:{sp}{}", respelled(v, spaces))
                    })
                    .collect();
                format!("{{{sp}{}{sp}}}", members.join(&format!("{sp},{sp}")))
            }
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(|v| respelled(v, spaces)).collect();
                format!("[{sp}{}{sp}]", items.join(&format!("{sp},{sp}")))
            }
            Value::String(text) => serde_json::to_string(text).unwrap().replace('é', "\\u00e9"),
            other => other.to_string(),
        }
    }

    use proptest::prelude::*;

    proptest! {
        /// The fast path never decides against `Value` equality, however the texts are spelled.
        #[test]
        fn texts_are_the_same_exactly_when_their_values_are(a in value(), other in value(), same in any::<bool>(), spelling in 0..3) {
            let b = if same { a.clone() } else { other };
            let old = a.to_string();
            let new = match spelling {
                0 => b.to_string(),
                1 => respelled(&b, false),
                _ => respelled(&b, true),
            };
            prop_assert_eq!(same_json(&old, &new), a == b, "{} vs {}", old, new);
        }
    }
}
