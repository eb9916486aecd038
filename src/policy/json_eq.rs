//! Are two JSON texts the same value? The no-op check asks this of `spec` (or `data`, …) on every
//! UPDATE whose window is closed, so the common answers must be cheap.
//!
//! The API server encodes `object` and `oldObject` with the same encoder, so equal values almost
//! always have equal text, and a change shows up as the first token where the texts part. The
//! two texts are therefore walked token by token, side by side, with no tree built:
//!
//! - a difference in a *value* (a scalar, or where an array or object starts or ends) at the
//!   same path in both is a change, and the walk stops there;
//! - a difference in a *key* may be the same object written in another key order, which only a
//!   tree can tell, so the comparison falls back to [`same_tree`] (parse `old`, stream `new`
//!   against it) — correct for any encoding, and only paid for by unusual encoders.
//!
//! Equality is `serde_json::Value`'s: strings compare decoded, integers with integers and floats
//! with floats, floats correctly rounded (serde_json's `float_roundtrip`, so `943.6266835439236`
//! and `943.6266835439237` are two numbers, as for Go). An object with a duplicate key (which the
//! API server never sends) is read as Go reads it, and so Kubernetes: the last duplicate wins,
//! except that a value that differs where it is first read is a change even when a later
//! duplicate would repeat the old value. That errs towards "changed", which is checked against
//! the window, never towards calling a change a no-op.

use crate::json_text::{Token, Tokens, quote_or_backslash};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;

/// True when the JSON texts `old` and `new` hold the same value. Both must be one JSON value
/// each, as `serde_json::value::RawValue` holds: the walk trusts that grammar (for other text the
/// answer means nothing, but it is never a panic).
pub fn same_json(old: &str, new: &str) -> bool {
    match lockstep(old.as_bytes(), new.as_bytes()) {
        Walk::Same => true,
        Walk::Changed => false,
        Walk::KeysDiffer => same_tree(old, new),
    }
}

/// The outcome of walking two texts side by side.
#[derive(Debug, PartialEq)]
enum Walk {
    Same,
    Changed,
    /// The texts part at a key: maybe a change, maybe another key order.
    KeysDiffer,
}

/// Walks both texts token by token. The texts agree on every token before the current one, so
/// one stack of open containers describes where both walks are.
fn lockstep(old: &[u8], new: &[u8]) -> Walk {
    let (mut a, mut b) = (Tokens::new(old), Tokens::new(new));
    // Where the bytes first differ: a token that ends before it, with the byte after it, is
    // in both texts at the same place, so only `old` is tokenised up to there.
    let shared = common_prefix(old, new);
    if surely_changed_at(old, new, shared) {
        return Walk::Changed;
    }
    // The open containers, innermost in bit 0: 1 for an object, 0 for an array. Deeper text
    // than fits is left to the tree comparison.
    let (mut open, mut depth) = (0u64, 0u32);
    let mut expect_key = false;
    loop {
        let x = a.next_token();
        let in_shared = a.at < shared;
        let y = if in_shared {
            b.at = a.at;
            x
        } else {
            b.next_token()
        };
        if matches!(x, Token::Invalid | Token::End) || matches!(y, Token::Invalid | Token::End) {
            // Only a walk that ends where a value ends (below) is complete.
            return Walk::KeysDiffer;
        }
        if !in_shared && !same_token(x, y) {
            return if expect_key {
                Walk::KeysDiffer
            } else {
                Walk::Changed
            };
        }
        expect_key = false;
        match x {
            Token::Punct(open_char @ (b'{' | b'[')) => {
                if depth == u64::BITS {
                    return Walk::KeysDiffer;
                }
                open = open << 1 | u64::from(open_char == b'{');
                depth += 1;
                expect_key = open_char == b'{';
            }
            Token::Punct(b'}' | b']') => {
                open >>= 1;
                depth = depth.saturating_sub(1);
            }
            Token::Punct(b',') => expect_key = depth > 0 && open & 1 == 1,
            _ => {}
        }
        if depth == 0 && !matches!(x, Token::Punct(b':' | b',')) {
            // The top-level value is complete: both texts must end here.
            return match (a.next_token(), b.next_token()) {
                (Token::End, Token::End) => Walk::Same,
                _ => Walk::KeysDiffer,
            };
        }
    }
}

/// Whether texts that first differ at byte `p` surely hold different values, told from the
/// quotes before `p` alone (far cheaper than tokenising up to it): `p` is inside a string value
/// (not a key, no escape), or at a bracket or literal away from any number. `false` means "not
/// sure" (a key, an escape, whitespace, a number: `1.0` is `1.00`), and the walk decides.
fn surely_changed_at(old: &[u8], new: &[u8], p: usize) -> bool {
    let (Some(&x), Some(&y)) = (old.get(p), new.get(p)) else {
        return false;
    };
    // Where the string around `p` opened, if any, and whether it holds an escape before `p`.
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while let Some(found) = old.get(i..p).and_then(quote_or_backslash) {
        let at = i + found;
        if old[at] == b'\\' {
            escaped = true;
            i = at + 2;
        } else {
            in_string = !in_string;
            escaped = false;
            i = at + 1;
        }
    }
    if i > p || escaped {
        return false;
    }
    if in_string {
        // Unescaped strings are equal exactly when their bytes are; a key may be another order.
        return [old, new].into_iter().all(|text| ends_as_a_value(text, p));
    }
    let number_or_space = |b: u8| b"-+.0123456789eE \t\n\r".contains(&b);
    let before = p.checked_sub(1).map(|q| old[q]);
    !number_or_space(x) && !number_or_space(y) && !before.is_some_and(number_or_space)
}

/// The string around `p` ends without an escape, and no `:` follows it: a value, not a key.
fn ends_as_a_value(text: &[u8], p: usize) -> bool {
    let Some(end) = text.get(p..).and_then(quote_or_backslash).map(|n| p + n) else {
        return false;
    };
    let next = text
        .get(end + 1..)
        .unwrap_or_default()
        .iter()
        .find(|b| !b" \t\n\r".contains(b));
    text[end] == b'"' && next != Some(&b':')
}

/// The length of the longest common prefix of `a` and `b`.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    // Eight bytes at a time: the first differing byte is the lowest non-zero byte of the XOR.
    let (a_words, _) = a.as_chunks::<8>();
    let (b_words, _) = b.as_chunks::<8>();
    for (n, (x, y)) in a_words.iter().zip(b_words).enumerate() {
        let diff = u64::from_le_bytes(*x) ^ u64::from_le_bytes(*y);
        if diff != 0 {
            return n * 8 + diff.trailing_zeros() as usize / 8;
        }
    }
    let done = a_words.len().min(b_words.len()) * 8;
    done + a[done..]
        .iter()
        .zip(&b[done..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// Token equality as `serde_json::Value` sees it: strings decoded, numbers by value.
fn same_token(x: Token<'_>, y: Token<'_>) -> bool {
    match (x, y) {
        (Token::Str(a), Token::Str(b)) => {
            a.raw() == b.raw()
                || ((a.escaped || b.escaped) && a.decoded().is_some_and(|a| b.decoded() == Some(a)))
        }
        (Token::Scalar(a), Token::Scalar(b)) => a == b || same_number(a, b),
        _ => x == y,
    }
}

fn same_number(a: &[u8], b: &[u8]) -> bool {
    match (
        serde_json::from_slice::<serde_json::Number>(a),
        serde_json::from_slice::<serde_json::Number>(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Structural equality of two JSON texts: `old` becomes a tree, `new` is streamed against it
/// and the scan stops at the first difference (no second tree, no full scan of a changed field).
fn same_tree(old: &str, new: &str) -> bool {
    let Ok(old) = serde_json::from_str::<serde_json::Value>(old) else {
        return false;
    };
    let mut stream = serde_json::Deserializer::from_str(new);
    match Matches(&old).deserialize(&mut stream) {
        Ok(()) => stream.end().is_ok(),
        // A key seen twice: only the whole object, last duplicate winning, can tell.
        Err(error) if error.to_string().starts_with(DUPLICATE) => {
            serde_json::from_str::<serde_json::Value>(new).is_ok_and(|new| new == old)
        }
        Err(_) => false,
    }
}

/// Deserializes a value only if it equals the given one (as `serde_json::Value`'s `==` would
/// say); fails at the first difference.
struct Matches<'a>(&'a serde_json::Value);

const DIFFERS: &str = "differs";
/// The streamed object repeats a key: [`same_tree`] compares whole values instead.
const DUPLICATE: &str = "duplicate key";

impl<'de> DeserializeSeed<'de> for Matches<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Matches<'_> {
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

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
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
                    return match seq.next_element::<IgnoredAny>()? {
                        None => Ok(()),
                        Some(_) => Err(serde::de::Error::custom(DIFFERS)),
                    };
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let fields = self
            .0
            .as_object()
            .ok_or_else(|| serde::de::Error::custom(DIFFERS))?;
        // Keys seen, to notice a duplicate: `{"a":1,"a":1}` is `{"a":1}`, not two fields.
        let mut seen: Vec<Cow<'de, str>> = Vec::with_capacity(fields.len());
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if seen.contains(&key) {
                return Err(serde::de::Error::custom(DUPLICATE));
            }
            let expected = fields
                .get(key.as_ref())
                .ok_or_else(|| serde::de::Error::custom(DIFFERS))?;
            map.next_value_seed(Matches(expected))?;
            seen.push(key);
        }
        same(seen.len() == fields.len())
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
    use proptest::prelude::*;
    use serde_json::Value;

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
        let text = include_str!("../../tests/fixtures/float-pairs.json");
        let fixture: Fixture = serde_json::from_str(text).unwrap();
        assert!(fixture.cases.len() > 1000);
        for (a, b, same) in fixture.cases {
            for (old, new) in [
                (format!(r#"{{"x":{a}}}"#), format!(r#"{{"x":{b}}}"#)),
                // Another key order: the tree comparison.
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
        // Go reads each pair alike. Streamed, the first differing value is a change (see the
        // module's doc): checked against the window. Read as the tree, last-wins is exact.
        for (old, new) in [
            (r#"{"a":1}"#, r#"{"a":2,"a":1}"#),
            (r#"{"b":1,"a":1}"#, r#"{"a":2,"b":1,"a":1}"#),
        ] {
            assert!(!same_json(old, new), "{old} vs {new}");
        }
        assert!(same_json(r#"{"a":2,"b":1,"a":1}"#, r#"{"b":1,"a":1}"#));
    }

    #[test]
    fn a_changed_value_is_found_without_a_tree() {
        assert_eq!(
            lockstep(
                br#"{"spec":{"image":"nginx:1.25","replicas":3}}"#,
                br#"{"spec":{"image":"nginx:1.26","replicas":3}}"#
            ),
            Walk::Changed
        );
        assert_eq!(
            lockstep(br#"{"a":[1,2]}"#, br#"{"a":[1,2,3]}"#),
            Walk::Changed
        );
        assert_eq!(
            lockstep(br#"{"a":1,"b":2}"#, br#"{"b":2,"a":1}"#),
            Walk::KeysDiffer
        );
        // Told from the quotes alone: a string value, a literal, a bracket.
        for (old, new) in [
            (r#"{"a":{"k":"v1"},"b":2}"#, r#"{"a":{"k":"v2"},"b":2}"#),
            (r#"{"a":true}"#, r#"{"a":false}"#),
            (r#"{"a":[]}"#, r#"{"a":{}}"#),
        ] {
            let p = common_prefix(old.as_bytes(), new.as_bytes());
            assert!(
                surely_changed_at(old.as_bytes(), new.as_bytes(), p),
                "{old} vs {new}"
            );
        }
        // Not sure, for the walk: a key, an escape, a number, whitespace.
        for (old, new) in [
            (r#"{"a":1,"b":2}"#, r#"{"a":1,"c":2}"#),
            (r#"{"a":"\u00e9"}"#, r#"{"a":"\u00E9"}"#),
            (r#"{"a":"\u00e9x"}"#, r#"{"a":"\u00e9y"}"#),
            (r#"{"a":1.0}"#, r#"{"a":1.00}"#),
            (r#"{"a": 1}"#, r#"{"a":1}"#),
        ] {
            let p = common_prefix(old.as_bytes(), new.as_bytes());
            assert!(
                !surely_changed_at(old.as_bytes(), new.as_bytes(), p),
                "{old} vs {new}"
            );
        }
        // One more key, at the same place: another key set, so a change.
        assert_eq!(lockstep(br#"{"a":1}"#, br#"{"a":1,"b":2}"#), Walk::Changed);
        assert_eq!(
            lockstep(br#"{"a":1,"b":2}"#, br#"{"a":1,"c":2}"#),
            Walk::KeysDiffer
        );
    }

    #[test]
    fn text_deeper_than_the_walk_tracks_is_compared_as_trees() {
        let nested = |depth: usize, leaf: &str| {
            format!("{}{leaf}{}", r#"{"a":["#.repeat(depth), "]}".repeat(depth))
        };
        // 80 nested containers: more than the walk tracks (64), fewer than serde_json allows (128).
        let (old, same, changed) = (nested(40, "1"), nested(40, " 1 "), nested(40, "2"));
        assert_eq!(lockstep(old.as_bytes(), same.as_bytes()), Walk::KeysDiffer);
        assert!(same_json(&old, &same));
        assert!(!same_json(&old, &changed));
        let (old, same) = (nested(30, "1"), nested(30, " 1 "));
        assert_eq!(lockstep(old.as_bytes(), same.as_bytes()), Walk::Same);
    }

    #[test]
    fn common_prefix_is_the_length_both_share() {
        for (a, b, n) in [
            ("", "", 0),
            ("abc", "abd", 2),
            ("0123456789abcdef", "0123456789abcdeX", 15),
            ("0123456789", "0123456789abc", 10),
            ("01234567X", "01234567Y", 8),
        ] {
            assert_eq!(common_prefix(a.as_bytes(), b.as_bytes()), n, "{a} {b}");
            assert_eq!(common_prefix(b.as_bytes(), a.as_bytes()), n, "{b} {a}");
        }
    }

    #[test]
    fn a_shared_prefix_ends_mid_token() {
        // The texts part inside a number, a string, a literal and a key: the tokens there must
        // still be compared whole.
        let cases = [
            (r#"{"a":12,"b":1}"#, r#"{"a":123,"b":1}"#, false),
            (r#"{"a":12}"#, r#"{"a":12.0}"#, false),
            (r#"{"a":"xy"}"#, r#"{"a":"xyz"}"#, false),
            (r#"{"a":"x\u0079"}"#, r#"{"a":"xy"}"#, true),
            (r#"{"ab":1,"a":2}"#, r#"{"a":2,"ab":1}"#, true),
            (r#"[true]"#, r#"[true ]"#, true),
        ];
        for (old, new, same) in cases {
            assert_eq!(same_json(old, new), same, "{old} vs {new}");
            assert_eq!(same_json(new, old), same, "{new} vs {old}");
        }
    }

    #[test]
    fn unfinished_or_trailing_text_is_left_to_the_tree() {
        for text in [r#"{"a":"#, r#"{"a":"x"#, "", "{} {}", "[1,", "\"x\" 1"] {
            assert_ne!(
                lockstep(text.as_bytes(), text.as_bytes()),
                Walk::Same,
                "{text}"
            );
            assert!(!same_json(text, text), "{text}");
        }
    }

    /// JSON values without duplicate keys, the only kind an encoder of maps produces.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(Value::from),
            prop_oneof![Just(0.5f64), Just(1.0), Just(-2.0)].prop_map(Value::from),
            "[ab\"\\\\é\n]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[abc]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Writes `value` with keys in reverse order, `\u` escapes and spaces: the same value in
    /// another encoding.
    fn reencoded(value: &Value) -> String {
        match value {
            Value::Object(map) => {
                let fields: Vec<String> = map
                    .iter()
                    .rev()
                    .map(|(k, v)| format!("{} : {}", escaped(k), reencoded(v)))
                    .collect();
                format!("{{ {} }}", fields.join(" , "))
            }
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(reencoded).collect();
                format!("[ {} ]", items.join(", "))
            }
            Value::String(s) => escaped(s),
            other => other.to_string(),
        }
    }

    fn escaped(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            out.push_str(&format!("\\u{:04x}", c as u32));
        }
        out.push('"');
        out
    }

    fn collect_leaves<'v>(value: &'v mut Value, out: &mut Vec<&'v mut Value>) {
        match value {
            Value::Array(items) => items.iter_mut().for_each(|v| collect_leaves(v, out)),
            Value::Object(map) => map.values_mut().for_each(|v| collect_leaves(v, out)),
            leaf => out.push(leaf),
        }
    }

    proptest! {
        #[test]
        fn any_text_is_answered_without_a_panic(a in ".{0,40}", b in ".{0,40}") {
            let _ = same_json(&a, &b);
        }

        /// One leaf changed deep inside: the first difference is wherever that leaf is.
        #[test]
        fn one_changed_leaf_is_value_inequality(
            a in json(),
            leaf in json(),
            pick in any::<prop::sample::Index>(),
            reencode in any::<bool>(),
        ) {
            let mut b = a.clone();
            let mut leaves = Vec::new();
            collect_leaves(&mut b, &mut leaves);
            if !leaves.is_empty() {
                *leaves.swap_remove(pick.index(leaves.len())) = leaf;
            }
            let old = a.to_string();
            let new = if reencode { reencoded(&b) } else { b.to_string() };
            prop_assert_eq!(same_json(&old, &new), a == b, "{} vs {}", old, new);
        }

        #[test]
        fn same_json_is_value_equality(a in json(), b in json(), reencode in any::<bool>()) {
            let old = a.to_string();
            let new = if reencode { reencoded(&b) } else { b.to_string() };
            prop_assert_eq!(same_json(&old, &new), a == b, "{} vs {}", old, new);
            let again = if reencode { reencoded(&a) } else { a.to_string() };
            prop_assert!(same_json(&old, &again), "{} vs {}", old, again);
        }
    }
}
