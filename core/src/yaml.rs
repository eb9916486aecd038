//! YAML in: the one parser (serde-saphyr), the limits it parses under, and the lines people
//! need in errors.
//!
//! Windows files and `fluxgate lint`'s input are split into documents here
//! ([`split_documents`]) and each document is parsed on its own, so that one broken document
//! does not hide the others. Every line this module reports is the file's, not the document's:
//! the parser is told how many lines come before the document.

use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned};
use std::fmt;

/// How every document is parsed.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // Errors are one line (`file:line: …`): no source excerpt.
        with_snippet: false,
        // An alias bomb ("billion laughs": nine anchors, each nine aliases of the one before,
        // a billion nodes from 400 bytes) is refused after this many replayed events, in
        // milliseconds; the default (a million) takes a quarter of a second in a release
        // build. Manifests and windows rarely use aliases at all.
        alias_limits: serde_saphyr::alias_limits! { max_total_replayed_events: 10_000 },
        // `.nan` or `.inf` in an untyped value (some object's field, in a windows folder or a
        // lint input) stays text rather than failing the document, as serde_yaml read it.
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::AsString,
        // Plain scalars read as YAML 1.2's core schema reads them, as serde_yaml did and Flux's
        // kustomize does: `yes`, `on` and `n` are text, not booleans (a label `team: yes` stays
        // "yes"; `allowBypass: no` is refused, not read as false), and so are `0755` and
        // `1_000`, not numbers.
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
    }
}

/// A document as `T`. `first_line` is the line of the file the document starts on, so that the
/// error's lines are the file's.
pub(crate) fn from_str<T: DeserializeOwned>(text: &str, first_line: usize) -> Result<T, YamlError> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|error| YamlError {
        error,
        before: first_line.saturating_sub(1),
    })
}

/// A document that is not valid YAML, or not of the type asked for.
#[derive(Debug)]
pub(crate) struct YamlError {
    error: serde_saphyr::Error,
    /// Lines of the file before the document.
    before: usize,
}

impl YamlError {
    /// Where the parser puts the error in the file: (line, column), 1-based.
    pub(crate) fn at(&self) -> Option<(usize, usize)> {
        let location = self.error.location()?;
        let line = usize::try_from(location.line()).ok()?;
        let column = usize::try_from(location.column()).ok()?;
        Some((self.before + line, column))
    }

    pub(crate) fn line(&self) -> Option<usize> {
        self.at().map(|(line, _)| line)
    }

    /// What is wrong, without where (the caller says where). Control characters, which a
    /// message may quote from the input, are escaped: the message is one line of a log.
    pub(crate) fn message(&self) -> String {
        let formatter = serde_saphyr::DefaultMessageFormatter;
        let mut message = String::new();
        for c in formatter
            .format_message(self.error.without_snippet())
            .chars()
        {
            if c.is_control() {
                message.extend(c.escape_debug());
            } else {
                message.push(c);
            }
        }
        message
    }
}

/// The message with where it is in the file: `… at line 12, column 7` (and, for an alias,
/// where it was defined and used).
impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = serde_saphyr::render_options! {
            snippets: serde_saphyr::SnippetMode::Off,
            line_offset: self.before as u64,
        };
        self.error.render_to(f, options)
    }
}

// === documents ===

/// Splits at `---` lines, keeping each document's first line number (1-based). Splitting
/// here rather than in the YAML parser is what lets one broken document leave the others
/// readable.
pub(crate) fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut documents = Vec::new();
    let mut start = 1;
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let marker =
            line.starts_with("---") && line[3..].chars().next().is_none_or(char::is_whitespace);
        if marker && !current.trim().is_empty() {
            documents.push((start, std::mem::take(&mut current)));
        }
        if marker {
            current.clear();
            start = i + 1;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        documents.push((start, current));
    }
    documents
}

/// The first line of a document that holds content (not `---`, a comment or blank).
pub(crate) fn content_line(start: usize, chunk: &str) -> usize {
    chunk
        .lines()
        .position(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && !t.starts_with("---")
        })
        .map_or(start, |i| start + i)
}

// === fields ===

/// Where each field of a YAML document is, by its path as the window model names fields
/// (`spec.schedules[0].open`): so that an error about a field, found after parsing (a bad cron,
/// an unknown zone), names the field's own line rather than the document's.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Fields(Vec<Field>);

#[derive(Clone, Debug, PartialEq)]
struct Field {
    path: String,
    /// Where its key is (for an item of a sequence: the item): (line, column) in the file.
    key: (usize, usize),
    /// Where its value starts, which is where the parser's type errors point.
    value: (usize, usize),
}

impl Fields {
    /// The fields of a document that starts on line `first_line` of its file.
    pub(crate) fn of(text: &str, first_line: usize) -> Result<Self, YamlError> {
        let root: Spanned<Node> = from_str(text, first_line)?;
        let mut fields = Vec::new();
        flatten(&root.value, "", first_line.saturating_sub(1), &mut fields);
        Ok(Fields(fields))
    }

    /// The line of `path`, or of the closest enclosing field the document has (a missing field
    /// is reported where it belongs).
    pub(crate) fn line(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(field) = self.0.iter().find(|f| f.path == path) {
                return Some(field.key.0);
            }
            path = &path[..path.rfind(['.', '['])?];
        }
    }

    /// The line of `path` itself, when the document has it.
    pub(crate) fn exact_line(&self, path: &str) -> Option<usize> {
        self.0.iter().find(|f| f.path == path).map(|f| f.key.0)
    }

    /// The field a parser error at `at` is about: the innermost field whose value starts there
    /// (a value of the wrong type), or the mapping that holds the key there (an unknown field).
    /// `None` for the document itself.
    pub(crate) fn at(&self, at: (usize, usize)) -> Option<&str> {
        let innermost = self.0.iter().rev().find(|f| f.value == at);
        innermost
            .map(|f| f.path.as_str())
            .or_else(|| {
                let key = self.0.iter().find(|f| f.key == at)?;
                Some(&key.path[..key.path.rfind(['.', '[']).unwrap_or(0)])
            })
            .filter(|path| !path.is_empty())
    }
}

fn flatten(node: &Node, path: &str, before: usize, fields: &mut Vec<Field>) {
    let at = |l: &serde_saphyr::Location| {
        let number = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        (before.saturating_add(number(l.line())), number(l.column()))
    };
    let mut push = |path: String, key: (usize, usize), value: &Spanned<Node>| {
        fields.push(Field {
            path: path.clone(),
            key,
            value: at(&value.referenced),
        });
        flatten(&value.value, &path, before, fields);
    };
    match node {
        Node::Map(entries) => {
            for (key, value) in entries {
                let name = key.value.0.as_deref().unwrap_or("?");
                let path = if path.is_empty() {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                };
                push(path, at(&key.referenced), value);
            }
        }
        Node::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                push(format!("{path}[{i}]"), at(&item.referenced), item);
            }
        }
        Node::Leaf => {}
    }
}

/// Any YAML node, with where each of its children is.
enum Node {
    Map(Vec<(Spanned<Key>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Leaf,
}

/// A mapping key as text; `None` for a key that is itself a collection. Read as any value, so
/// that no key fails the document: `y:` or `on:` comes out as `true` (YAML 1.1 booleans), which
/// never names a window's field.
struct Key(Option<String>);

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML node")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Node::Map(entries))
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E>(self, key: &str) -> Result<Key, E> {
                Ok(Key(Some(key.to_owned())))
            }
            fn visit_bool<E>(self, key: bool) -> Result<Key, E> {
                Ok(Key(Some(key.to_string())))
            }
            fn visit_i64<E>(self, key: i64) -> Result<Key, E> {
                Ok(Key(Some(key.to_string())))
            }
            fn visit_u64<E>(self, key: u64) -> Result<Key, E> {
                Ok(Key(Some(key.to_string())))
            }
            fn visit_i128<E>(self, key: i128) -> Result<Key, E> {
                Ok(Key(Some(key.to_string())))
            }
            fn visit_u128<E>(self, key: u128) -> Result<Key, E> {
                Ok(Key(Some(key.to_string())))
            }
            fn visit_f64<E>(self, key: f64) -> Result<Key, E> {
                Ok(Key(Some(key.to_string())))
            }
            fn visit_unit<E>(self) -> Result<Key, E> {
                Ok(Key(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Key, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Key(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Key(None))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document that starts on line 5 of its file, as the second of a stream.
    const DOCUMENT: &str = r#"---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata: {name: w}
spec:
  schedules:
    - open: "0 8 * * MON"
      close: [1]
  timezone: UTC
"#;

    #[test]
    fn fields_give_the_file_line_of_a_field_or_of_where_it_belongs() {
        let fields = Fields::of(DOCUMENT, 5).unwrap();
        let line = |path| fields.line(path);
        assert_eq!(line("apiVersion"), Some(6));
        assert_eq!(line("metadata.name"), Some(8));
        assert_eq!(line("spec.schedules[0]"), Some(11));
        assert_eq!(line("spec.schedules[0].close"), Some(12));
        // Missing: the line of the closest enclosing field.
        assert_eq!(line("spec.schedules[3].start"), Some(10));
        assert_eq!(line("spec.freezes"), Some(9));
        assert_eq!(line("status.open"), None);
    }

    #[test]
    fn a_type_error_or_an_unknown_key_names_the_field_it_is_in() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Schedule {
            open: String,
            close: String,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Spec {
            schedules: Vec<Schedule>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Object {
            spec: Spec,
        }
        let fields = Fields::of(DOCUMENT, 5).unwrap();
        let error = from_str::<Object>(DOCUMENT, 5).unwrap_err();
        assert_eq!(error.at(), Some((12, 14)), "{error}");
        assert_eq!(fields.at((12, 14)), Some("spec.schedules[0].close"));
        assert_eq!(
            error.to_string(),
            "expected string scalar at line 12, column 14"
        );
        assert_eq!(error.message(), "expected string scalar");
        // An unknown key is about the mapping it is in, first or not.
        assert_eq!(fields.at((13, 3)), Some("spec"));
        assert_eq!(fields.at((10, 3)), Some("spec"));
        assert_eq!(fields.at((11, 7)), Some("spec.schedules[0]"));
        // The document itself is no field.
        assert_eq!(fields.at((6, 1)), None);
    }

    /// YAML 1.2's core schema, as serde_yaml read untyped values: what lint reads of labels and
    /// `fluxgate split` of its edits.
    #[test]
    fn plain_scalars_read_as_yaml_1_2() {
        let value: serde_json::Value = from_str(
            "[yes, no, on, off, y, n, True, false, 0755, 1_000, 10, 0x1F, 1.5, .inf, ~]",
            1,
        )
        .unwrap();
        assert_eq!(
            value,
            serde_json::json!([
                "yes", "no", "on", "off", "y", "n", true, false, "0755", "1_000", 10, 31, 1.5,
                ".inf", null
            ])
        );
    }

    #[test]
    fn a_message_quoting_a_control_character_stays_one_line() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Nothing {}
        let error = from_str::<Nothing>("\"time\\nzone\": UTC\n", 1).unwrap_err();
        assert_eq!(error.message().lines().count(), 1, "{}", error.message());
        assert!(
            error.message().contains("time\\nzone"),
            "{}",
            error.message()
        );
        assert_eq!(error.to_string().lines().count(), 1, "{error}");
    }
}
