//! YAML for `fluxgate split`: [`parse`], the one place it reads YAML into values, and [`Text`],
//! line edits of block-style YAML that keep every comment and every line it does not touch.
//!
//! A user's files are never re-serialised: documents move as text, and a kustomization or Flux
//! Kustomization is edited line by line (a list item kept or dropped, one scalar replaced, a
//! block appended). Every edited text is parsed again and compared with the value the edit was
//! meant to produce ([`verify`]); a layout these edits do not understand is refused, never
//! guessed at.

use serde_json::Value;

/// A YAML document as a JSON value; `Null` for an empty one (only comments). The one call into
/// the YAML parser, so a change of parser touches this function alone.
pub(crate) fn parse(text: &str) -> Result<Value, String> {
    crate::yaml::from_str::<Value>(text, 1).map_err(|e| e.message())
}

/// Checks that `text` reads as `expected`: the guard behind every line edit.
pub(crate) fn verify(text: &str, expected: &Value) -> Result<(), String> {
    match parse(text) {
        Ok(value) if value == *expected => Ok(()),
        Ok(_) => Err("the edited text does not read as intended".into()),
        Err(e) => Err(format!("the edited text is not valid YAML ({e})")),
    }
}

/// A scalar as YAML text: plain when that reads back as the same string, double-quoted (JSON
/// syntax, which YAML reads) otherwise.
pub(crate) fn scalar(value: &str) -> String {
    let plain = !value.is_empty()
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-' | '_' | '~' | '+' | '=')
        })
        && !value.starts_with(['-', '~'])
        && !YAML_1_1_BOOLEANS.contains(&value)
        && parse(value).ok() == Some(Value::String(value.to_owned()));
    if plain {
        value.to_owned()
    } else {
        Value::String(value.to_owned()).to_string()
    }
}

/// Text to the core's parser (YAML 1.2), booleans to YAML 1.1 readers (go-yaml v2, which
/// kubectl's YAML reading still uses): quoted, so that every reader reads a string.
const YAML_1_1_BOOLEANS: [&str; 16] = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF",
];

/// The lines of one YAML document, to edit.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Text {
    pub(crate) lines: Vec<String>,
}

/// A line range `[start, end)`.
pub(crate) type Span = (usize, usize);

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#') && t != "---" && !t.starts_with("--- ")
}

/// The key of `key: …` (after the indentation and any `- `), when the line is one.
fn key_of(line: &str) -> Option<&str> {
    let body = line.trim_start_matches(' ');
    let body = body.strip_prefix("- ").unwrap_or(body).trim_start();
    let end = body.find(':')?;
    let rest = &body[end + 1..];
    let key = &body[..end];
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    (plain && (rest.is_empty() || rest.starts_with(' '))).then_some(key)
}

/// Where the scalar of a `key: value` or `- value` line is: its byte range, and the quote that
/// wraps it (`None` for plain). `None` when the value is not a one-line scalar.
fn scalar_at(line: &str) -> Option<(usize, usize)> {
    let body_start = indent(line);
    let body = &line[body_start..];
    let after = if let Some(key) = key_of(line) {
        let dash = if body.starts_with("- ") { 2 } else { 0 };
        let key_at = body_start + dash + body[dash..].find(key)?;
        key_at + key.len() + 1
    } else {
        body_start + body.strip_prefix("- ").map(|_| 2)?
    };
    let value_start = after + (line[after..].len() - line[after..].trim_start().len());
    let value = &line[value_start..];
    let len = match value.chars().next()? {
        quote @ ('"' | '\'') => {
            let mut escaped = false;
            let close = value[1..].char_indices().find(|&(_, c)| {
                let end = c == quote && !escaped;
                escaped = quote == '"' && c == '\\' && !escaped;
                end
            })?;
            close.0 + 2
        }
        '[' | '{' | '|' | '>' | '&' | '*' | '!' | '#' => return None,
        _ => value.find(" #").unwrap_or(value.len()),
    };
    let trimmed = value[..len].trim_end().len();
    Some((value_start, value_start + trimmed))
}

// === impl Text ===

impl Text {
    pub(crate) fn new(text: &str) -> Self {
        Text {
            lines: text.lines().map(str::to_owned).collect(),
        }
    }

    /// The text, each line ending in a newline.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// The line of the top-level key `key`.
    pub(crate) fn top_key(&self, key: &str) -> Option<usize> {
        self.lines
            .iter()
            .position(|l| indent(l) == 0 && !l.starts_with("- ") && key_of(l) == Some(key))
    }

    /// The line of `key` in the mapping that is the value of the key at line `parent`.
    pub(crate) fn child_key(&self, parent: usize, key: &str) -> Option<usize> {
        let end = self.value_end(parent);
        let first = (parent + 1..end).find(|&i| is_content(&self.lines[i]))?;
        let child_indent = indent(&self.lines[first]);
        (first..end).find(|&i| {
            let line = &self.lines[i];
            is_content(line)
                && indent(line) == child_indent
                && !line.trim_start().starts_with("- ")
                && key_of(line) == Some(key)
        })
    }

    /// One past the last line of the value of the key at line `at` (trailing comments and
    /// blank lines excluded: they belong to what follows).
    pub(crate) fn value_end(&self, at: usize) -> usize {
        let key_indent = indent(&self.lines[at]);
        let mut end = at + 1;
        for i in at + 1..self.lines.len() {
            let line = &self.lines[i];
            if !is_content(line) {
                continue;
            }
            let own = indent(line) > key_indent
                || (indent(line) == key_indent && line[key_indent..].starts_with("- "));
            if !own {
                break;
            }
            end = i + 1;
        }
        end
    }

    /// The first of the comment lines directly above line `at` (no blank line between), or `at`.
    pub(crate) fn block_start(&self, at: usize) -> usize {
        let mut start = at;
        while start > 0 && self.lines[start - 1].trim_start().starts_with('#') {
            start -= 1;
        }
        start
    }

    /// Whether the value of the key at line `at` is written on the key's line (a scalar or a
    /// flow collection) rather than in the block below it.
    pub(crate) fn is_inline(&self, at: usize) -> bool {
        let line = &self.lines[at];
        let Some(colon) = line.find(':') else {
            return false;
        };
        let rest = line[colon + 1..].trim();
        !rest.is_empty() && !rest.starts_with('#')
    }

    /// The items of the block sequence that is the value of the key at line `at`, each with
    /// the comment lines directly above it; `None` when the value is not a block sequence.
    pub(crate) fn items(&self, at: usize) -> Option<Vec<Span>> {
        if self.is_inline(at) {
            return None;
        }
        let end = self.value_end(at);
        let first = (at + 1..end).find(|&i| is_content(&self.lines[i]))?;
        let item_indent = indent(&self.lines[first]);
        let is_item = |i: usize| {
            let line = &self.lines[i];
            is_content(line)
                && indent(line) == item_indent
                && (line[item_indent..].starts_with("- ") || line.trim() == "-")
        };
        if !is_item(first) {
            return None;
        }
        let starts: Vec<usize> = (first..end).filter(|&i| is_item(i)).collect();
        let mut items = Vec::with_capacity(starts.len());
        for (n, &start) in starts.iter().enumerate() {
            let next = starts.get(n + 1).map_or(end, |&s| self.block_start(s));
            // Content lines of an item are indented deeper than its dash; anything else at
            // the item's indentation means this is not a plain block sequence.
            if (start + 1..next)
                .any(|i| is_content(&self.lines[i]) && indent(&self.lines[i]) <= item_indent)
            {
                return None;
            }
            let own_start = self.block_start(start).max(at + 1);
            items.push((own_start, next));
        }
        Some(items)
    }

    /// The indentation of the items of the sequence at line `at` (two deeper than the key when
    /// it has none yet).
    pub(crate) fn item_indent(&self, at: usize) -> usize {
        self.items(at)
            .and_then(|items| items.first().copied())
            .and_then(|(start, end)| {
                (start..end)
                    .find(|&i| is_content(&self.lines[i]))
                    .map(|i| indent(&self.lines[i]))
            })
            .unwrap_or(indent(&self.lines[at]) + 2)
    }

    /// Replaces the one-line scalar of the `key: value` or `- value` line `at`, keeping its
    /// quotes and any comment after it.
    pub(crate) fn set_scalar(&mut self, at: usize, value: &str) -> Result<(), String> {
        let line = &self.lines[at];
        let (start, end) =
            scalar_at(line).ok_or_else(|| format!("line {} holds no plain value", at + 1))?;
        let old = &line[start..end];
        let new = match old.chars().next() {
            Some('\'') if !value.contains('\'') => format!("'{value}'"),
            Some('"') => Value::String(value.to_owned()).to_string(),
            _ => scalar(value),
        };
        self.lines[at] = format!("{}{new}{}", &line[..start], &line[end..]);
        Ok(())
    }

    /// The lines of a span, as a new [`Text`].
    pub(crate) fn slice(&self, (start, end): Span) -> Text {
        Text {
            lines: self.lines[start..end].to_vec(),
        }
    }

    /// The line of `key` within a sequence item (its first line is `- key: …` or a later line at
    /// the item's content indentation).
    pub(crate) fn item_key(&self, (start, end): Span, key: &str) -> Option<usize> {
        let dash = (start..end).find(|&i| is_content(&self.lines[i]))?;
        let content_indent = indent(&self.lines[dash]) + 2;
        (dash..end).find(|&i| {
            let line = &self.lines[i];
            key_of(line) == Some(key)
                && (i == dash || (is_content(line) && indent(line) == content_indent))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KUSTOMIZATION: &str = "\
# The app.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: podinfo
resources:
  # the namespace first
  - namespace.yaml   # keep
  - 'release.yaml'

# Values for staging.
patches:
- path: values.yaml
  target:
    kind: HelmRelease
- patch: |
    - op: add
      path: /x
      value: 1
  target:
    kind: Deployment
";

    #[test]
    fn parse_reads_documents_and_empty_ones() {
        assert_eq!(parse("# only a comment\n"), Ok(Value::Null));
        assert_eq!(parse("a: [1, b]\n"), Ok(json!({"a": [1, "b"]})));
        assert!(parse("a: [\n").is_err());
    }

    #[test]
    fn keys_values_and_their_comments() {
        let text = Text::new(KUSTOMIZATION);
        assert_eq!(text.top_key("kind"), Some(2));
        assert_eq!(text.top_key("target"), None, "not at the top");
        let resources = text.top_key("resources").unwrap();
        assert_eq!(text.value_end(resources), 8);
        let patches = text.top_key("patches").unwrap();
        assert_eq!(text.block_start(patches), 9);
        assert_eq!(text.value_end(patches), KUSTOMIZATION.lines().count());
        assert_eq!(text.block_start(1), 0);
    }

    #[test]
    fn items_keep_their_comments_and_nested_lines() {
        let text = Text::new(KUSTOMIZATION);
        let resources = text.top_key("resources").unwrap();
        assert_eq!(text.items(resources), Some(vec![(5, 7), (7, 8)]));
        let patches = text.top_key("patches").unwrap();
        let items = text.items(patches).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(text.item_indent(patches), 0);
        assert_eq!(text.item_key(items[0], "path"), Some(items[0].0));
        assert_eq!(
            text.item_key(items[1], "path"),
            None,
            "the JSON patch's own path"
        );
        assert_eq!(
            text.items(text.top_key("namespace").unwrap()),
            None,
            "a scalar"
        );
        let flow = Text::new("resources: [a.yaml, b.yaml]\n");
        assert_eq!(flow.items(0), None);
    }

    #[test]
    fn set_scalar_keeps_quotes_and_comments() {
        let mut text = Text::new(KUSTOMIZATION);
        text.set_scalar(6, "../x.yaml").unwrap();
        text.set_scalar(7, "y.yaml").unwrap();
        assert_eq!(text.lines[6], "  - ../x.yaml   # keep");
        assert_eq!(text.lines[7], "  - 'y.yaml'");
        let mut flux = Text::new("metadata:\n  name: apps # the apps\n");
        let name = flux.child_key(0, "name").unwrap();
        flux.set_scalar(name, "apps-rt").unwrap();
        assert_eq!(flux.render(), "metadata:\n  name: apps-rt # the apps\n");
        assert!(Text::new("a: [x]\n").set_scalar(0, "y").is_err());
    }

    #[test]
    fn scalars_are_quoted_only_when_plain_would_read_otherwise() {
        assert_eq!(scalar("../../apps/nginx"), "../../apps/nginx");
        // A string in YAML 1.2 (the core's parser), a boolean to YAML 1.1 readers: quoted.
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("10"), "\"10\"");
        assert_eq!(scalar("a b"), "\"a b\"");
        assert_eq!(scalar("-x"), "\"-x\"");
    }

    #[test]
    fn verify_compares_the_reading() {
        assert!(verify("a: 1\n", &json!({"a": 1})).is_ok());
        assert!(verify("a: 2\n", &json!({"a": 1})).is_err());
        assert!(verify("a: [\n", &json!({"a": 1})).is_err());
    }
}
