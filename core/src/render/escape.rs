//! Text from requests, records and manifests, made safe to show a person: every character
//! that could move the cursor, end a line, recolour or hide what follows, or reorder it on
//! screen is written as its Rust escape (`\n`, `\r`, `\0`, `\u{1b}`, `\u{202e}`).
//!
//! The one home of that rule: tables ([`super::table`] escapes every cell), the rest of
//! `fluxgate audit`'s, `lint`'s and `status`'s text for people, and the server's text
//! application log (`fluxgate serve`'s field formatter), so no object name, bypass reason or
//! parse error can print a second row, a forged log line, or hide the rest of a report.
//! Backslashes are left alone: the JSON outputs hold every value exactly, and an escaped
//! character only has to be seen, not read back.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` is written escaped: the control characters (C0, DEL and C1, which includes
/// the one-byte CSI `U+009B`), the line and paragraph separators some viewers break lines
/// at, and the bidirectional formatting characters that reorder text on screen ("Trojan
/// Source").
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line, paragraph separator
                | '\u{061c}' | '\u{200e}' | '\u{200f}' // Arabic letter, left-to-right, right-to-left marks
                | '\u{202a}'..='\u{202e}' // embeddings and overrides
                | '\u{2066}'..='\u{2069}' // isolates
        )
}

/// `text` with every character of [`needs_escape`] escaped; borrowed when there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = Escaping(String::with_capacity(text.len() + 16));
    // Writing into a String cannot fail.
    let _ = fmt::Write::write_str(&mut out, text);
    Cow::Owned(out.0)
}

/// A [`fmt::Write`] that escapes what passes through it, so formatted text (`{value:?}` of
/// a log field) is escaped without being collected first.
pub struct Escaping<W>(pub W);

impl<W: fmt::Write> fmt::Write for Escaping<W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
            self.0.write_str(&rest[..at])?;
            for escaped in c.escape_debug() {
                self.0.write_char(escaped)?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_separators_and_bidi_are_escaped_and_the_rest_kept() {
        assert_eq!(
            escape("a\nb\r\u{0}c\u{1b}[8md\u{7f}\u{9b}2J\t"),
            r"a\nb\r\0c\u{1b}[8md\u{7f}\u{9b}2J\t"
        );
        assert_eq!(
            escape("x\u{2028}y\u{202e}z\u{2066}"),
            r"x\u{2028}y\u{202e}z\u{2066}"
        );
        // Quotes, backslashes, accents, emoji and CJK are text, not controls.
        let plain = "größe \"q\" it's C:\\x 🚀 名前 e\u{301}";
        assert!(matches!(escape(plain), Cow::Borrowed(p) if p == plain));
    }

    #[test]
    fn formatted_text_is_escaped_as_it_is_written() {
        let mut out = Escaping(String::new());
        fmt::Write::write_fmt(&mut out, format_args!("{:?} {}", 1, "two\nlines")).unwrap();
        assert_eq!(out.0, r"1 two\nlines");
    }
}
