//! Labels and annotations: string-to-string maps read from every object of every review.
//!
//! A busy Deployment carries dozens of labels and annotations in both `object` and `oldObject`.
//! As `BTreeMap<String, String>` that is two allocations per entry, a third of parsing such a
//! review. A [`StringMap`] keeps every key and value in one buffer and the entries as spans
//! into it, sorted by key: a handful of allocations per map, whatever its size.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::ops::Range;

/// A map from string to string with the semantics of a `BTreeMap<String, String>`: iteration
/// in key order, and the last of duplicate keys wins.
#[derive(Clone, Default)]
pub struct StringMap {
    text: String,
    /// Sorted by key, keys unique.
    entries: Vec<Entry>,
}

#[derive(Clone, Debug)]
struct Entry {
    key: Range<usize>,
    value: Range<usize>,
}

impl StringMap {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .binary_search_by(|e| self.str(&e.key).cmp(key))
            .ok()
            .map(|i| self.str(&self.entries[i].value))
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (self.str(&e.key), self.str(&e.value)))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn str(&self, span: &Range<usize>) -> &str {
        // Spans are only ever made by `push` from `text`'s own boundaries.
        self.text.get(span.clone()).unwrap_or_default()
    }

    fn push(&mut self, key: &str, value: &str) {
        let key = self.append(key);
        let value = self.append(value);
        self.entries.push(Entry { key, value });
    }

    fn append(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(s);
        start..self.text.len()
    }

    /// Sorts the entries pushed so far by key, keeping the last of duplicates. The API server
    /// sends keys sorted and unique, which this checks in one pass.
    fn finish(mut self) -> Self {
        let text = &self.text;
        let key = |e: &Entry| &text[e.key.clone()];
        if !self.entries.is_sorted_by(|a, b| key(a) < key(b)) {
            // Stable, so duplicates stay in input order and the last one is kept.
            self.entries.sort_by(|a, b| key(a).cmp(key(b)));
            self.entries.dedup_by(|later, kept| {
                let same = key(later) == key(kept);
                if same {
                    kept.value = later.value.clone();
                }
                same
            });
        }
        self
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for StringMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = StringMap::default();
        for (k, v) in iter {
            map.push(k.as_ref(), v.as_ref());
        }
        map.finish()
    }
}

impl PartialEq for StringMap {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for StringMap {}

impl std::fmt::Debug for StringMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for StringMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;

        impl<'de> Visitor<'de> for MapVisitor {
            type Value = StringMap;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of strings to strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StringMap, A::Error> {
                // Room for the labels and annotations of a typical object without regrowing.
                let mut map = StringMap {
                    text: String::with_capacity(1024),
                    entries: Vec::with_capacity(access.size_hint().unwrap_or(16)),
                };
                while let Some(Text(key)) = access.next_key()? {
                    let Text(value) = access.next_value()?;
                    map.push(&key, &value);
                }
                Ok(map.finish())
            }
        }

        deserializer.deserialize_map(MapVisitor)
    }
}

/// A string borrowed from the input when it can be (no escapes), copied when it must be.
/// (`Cow<str>`'s own `Deserialize` always copies.)
pub(crate) struct Text<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn reads_json_as_a_btree_map_would() {
        let text = r#"{"b":"2","a":"1","a\u0041":"x\ny","c":"3","b":"last"}"#;
        let map: StringMap = serde_json::from_str(text).unwrap();
        let expected: BTreeMap<String, String> = serde_json::from_str(text).unwrap();
        assert_eq!(
            map.iter().collect::<Vec<_>>(),
            expected
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>()
        );
        assert_eq!(map.get("b"), Some("last"));
        assert_eq!(map.get("aA"), Some("x\ny"));
        assert_eq!(map.get("z"), None);
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
    }

    #[test]
    fn a_value_that_is_not_a_string_is_an_error() {
        let err = serde_json::from_str::<StringMap>(r#"{"a":"1","b":2}"#).unwrap_err();
        assert!(err.to_string().contains("expected a string"), "{err}");
        assert!(serde_json::from_str::<StringMap>(r#"["a"]"#).is_err());
    }

    proptest! {
        #[test]
        fn behaves_as_a_btree_map(entries in prop::collection::vec(("[a-d]{0,2}", "[xy\"é]{0,3}"), 0..12)) {
            let map: StringMap = entries.iter().cloned().collect();
            let expected: BTreeMap<String, String> = entries.into_iter().collect();
            prop_assert_eq!(map.len(), expected.len());
            prop_assert!(map.iter().eq(expected.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
            for (k, v) in &expected {
                prop_assert_eq!(map.get(k), Some(v.as_str()));
            }
        }
    }
}
