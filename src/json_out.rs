//! JSON written by hand, for the two texts written on every request: the AdmissionReview sent
//! back and the audit line.
//!
//! serde_json escapes strings one byte at a time, and these two texts are mostly strings (the
//! denial message alone is written twice): that was the largest cost fluxgate added to a
//! request (BENCHMARKS.md). [`string`] finds the bytes that need escaping eight at a time and
//! copies the runs between them. Each text written here has a serde twin (`AuditRecord`,
//! `ResponseReview`), and tests hold the two to the same bytes.

use crate::json_text::quote_backslash_or_control;

/// Writes `s` as a JSON string, escaped exactly as serde_json escapes it: `"`, `\` and the
/// control characters, with the short forms where JSON has them and lowercase `\u00xx` else.
pub fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(found) = bytes.get(start..).and_then(quote_backslash_or_control) {
        let at = start + found;
        out.extend_from_slice(&bytes[start..at]);
        escape(out, bytes[at]);
        start = at + 1;
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
    out.push(b'"');
}

/// A string, or `null`.
pub fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

pub fn bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

fn escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

/// A JSON object being written: `{`, then each [`Object::key`] and its value, then
/// [`Object::end`].
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Writes the separator and `"key":`; the caller writes the value into what it returns.
    /// Keys are names chosen here, never input, so they are written as they are.
    pub fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        debug_assert!(
            quote_backslash_or_control(key.as_bytes()).is_none(),
            "{key}"
        );
        if !std::mem::take(&mut self.empty) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// A JSON array: `write` writes each item.
pub fn array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn written(s: &str) -> String {
        let mut out = Vec::new();
        string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_as_serde_json_does() {
        for s in [
            "",
            "plain",
            "window \"business-hours\" closed",
            "back\\slash",
            "tab\there, newline\n, cr\r, bs\u{8}, ff\u{c}, nul\u{0}, us\u{1f}, del\u{7f}",
            "ünïcödé ✓ and / stays",
            "\"\"\"\"\"\"\"\"\"",
            "exactly8",
            "1234567\"",
        ] {
            assert_eq!(written(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn objects_and_arrays() {
        let mut out = Vec::new();
        let mut object = Object::new(&mut out);
        string(object.key("a"), "x");
        bool(object.key("b"), true);
        opt_string(object.key("c"), None);
        array(object.key("d"), ["p", "q"], string);
        array(object.key("e"), [""; 0], string);
        object.end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":"x","b":true,"c":null,"d":["p","q"],"e":[]}"#
        );
        let mut out = Vec::new();
        Object::new(&mut out).end();
        assert_eq!(out, b"{}");
    }

    proptest! {
        #[test]
        fn any_string_is_written_as_serde_json_writes_it(s in any::<String>()) {
            prop_assert_eq!(written(&s), serde_json::to_string(&s).unwrap());
        }

        #[test]
        fn ascii_with_escapes_anywhere_is_written_as_serde_json_writes_it(
            s in "[a-z\"\\\\\u{0}-\u{1f}\u{7f}]{0,40}"
        ) {
            prop_assert_eq!(written(&s), serde_json::to_string(&s).unwrap());
        }
    }
}
