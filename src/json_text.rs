//! Tokens of JSON text that serde_json has already checked, as a `RawValue` holds it.
//!
//! The no-op check reads such text a second time, walking `object` and `oldObject` side by
//! side. A second serde pass would check the grammar again and allocate; this tokenizer only
//! finds where tokens start and end (a string's end is a search for `"` or `\`). It trusts the
//! grammar: on text that is not JSON it returns [`Token::Invalid`] or tokens that mean nothing,
//! and never panics.
//!
//! (Indexing labels and annotations in place with it was tried: serde_json scanning them as a
//! raw value plus this pass cost more than serde_json parsing their strings directly.)

use std::borrow::Cow;

/// One JSON token, borrowed from the text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Token<'a> {
    /// One of `{ } [ ] : ,`.
    Punct(u8),
    Str(Str<'a>),
    /// A number or `true` / `false` / `null`, as written.
    Scalar(&'a [u8]),
    End,
    /// Not JSON.
    Invalid,
}

/// A string token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Str<'a> {
    /// The token with its quotes.
    pub quoted: &'a [u8],
    /// Whether it holds a `\` escape (else its value is the text between the quotes).
    pub escaped: bool,
}

impl<'a> Str<'a> {
    /// The text between the quotes, as written.
    pub fn raw(&self) -> &'a [u8] {
        self.quoted
            .get(1..self.quoted.len().saturating_sub(1))
            .unwrap_or_default()
    }

    /// The string's value: borrowed when it has no escape.
    pub fn decoded(&self) -> Option<Cow<'a, str>> {
        if self.escaped {
            serde_json::from_slice::<String>(self.quoted)
                .ok()
                .map(Cow::Owned)
        } else {
            std::str::from_utf8(self.raw()).ok().map(Cow::Borrowed)
        }
    }
}

/// Where the first `"` or `\` in `bytes` is.
pub fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    first_marked(bytes, |word| {
        bytes_equal(word, b'"') | bytes_equal(word, b'\\')
    })
}

/// Where the first byte a JSON string cannot hold as it is: `"`, `\` or a control character.
pub fn quote_backslash_or_control(bytes: &[u8]) -> Option<usize> {
    first_marked(bytes, |word| {
        bytes_equal(word, b'"')
            | bytes_equal(word, b'\\')
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGH)
    })
}

const ONES: u64 = u64::from_le_bytes([1; 8]);
const HIGH: u64 = u64::from_le_bytes([0x80; 8]);

/// The high bit of each byte of `word` that is `byte`. Only the lowest flag is exact (a borrow
/// can flag bytes above a match), which is the one [`first_marked`] reads.
fn bytes_equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Where the first byte `marks` flags is, eight bytes at a time: strings are most of the text.
/// `marks` reads eight bytes as a little-endian word and sets the high bit of those it flags.
fn first_marked(bytes: &[u8], marks: impl Fn(u64) -> u64) -> Option<usize> {
    let at = |n: usize, found: u64| n * 8 + found.trailing_zeros() as usize / 8;
    let (words, tail) = bytes.as_chunks::<8>();
    for (n, word) in words.iter().enumerate() {
        let found = marks(u64::from_le_bytes(*word));
        if found != 0 {
            return Some(at(n, found));
        }
    }
    // The tail as one more word, padded with spaces, which no caller flags.
    let mut last = [b' '; 8];
    last[..tail.len()].copy_from_slice(tail);
    let found = marks(u64::from_le_bytes(last));
    (found != 0).then(|| at(words.len(), found))
}

/// The tokens of one text, in order.
pub struct Tokens<'a> {
    text: &'a [u8],
    /// Where the next token (or the whitespace before it) starts.
    pub at: usize,
}

impl<'a> Tokens<'a> {
    pub fn new(text: &'a [u8]) -> Self {
        Tokens { text, at: 0 }
    }

    pub fn next_token(&mut self) -> Token<'a> {
        let text = self.text;
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = text.get(self.at) {
            self.at += 1;
        }
        let start = self.at;
        let Some(&first) = text.get(start) else {
            return Token::End;
        };
        match first {
            b'{' | b'}' | b'[' | b']' | b':' | b',' => {
                self.at += 1;
                Token::Punct(first)
            }
            b'"' => {
                let mut escaped = false;
                let mut i = start + 1;
                loop {
                    let Some(stop) = text.get(i..).and_then(quote_or_backslash) else {
                        return Token::Invalid;
                    };
                    i += stop;
                    if text[i] == b'"' {
                        break;
                    }
                    escaped = true;
                    i += 2;
                }
                self.at = i + 1;
                Token::Str(Str {
                    quoted: &text[start..=i],
                    escaped,
                })
            }
            _ => {
                let len = text[start..]
                    .iter()
                    .position(
                        |b| !matches!(b, b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'E'),
                    )
                    .unwrap_or(text.len() - start);
                if len == 0 {
                    return Token::Invalid;
                }
                self.at += len;
                Token::Scalar(&text[start..start + len])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(text: &str) -> Vec<Token<'_>> {
        let mut tokens = Tokens::new(text.as_bytes());
        let mut out = Vec::new();
        loop {
            match tokens.next_token() {
                Token::End => return out,
                Token::Invalid => {
                    out.push(Token::Invalid);
                    return out;
                }
                t => out.push(t),
            }
        }
    }

    #[test]
    fn splits_json_into_tokens() {
        let tokens = all(r#" {"a\"b": [1.5e3, true, null, "é"]} "#);
        let strings: Vec<_> = tokens
            .iter()
            .filter_map(|t| match t {
                Token::Str(s) => Some((s.decoded().unwrap().into_owned(), s.escaped)),
                _ => None,
            })
            .collect();
        assert_eq!(
            strings,
            [("a\"b".to_owned(), true), ("é".to_owned(), false)]
        );
        let scalars: Vec<_> = tokens
            .iter()
            .filter_map(|t| match t {
                Token::Scalar(s) => Some(std::str::from_utf8(s).unwrap()),
                _ => None,
            })
            .collect();
        assert_eq!(scalars, ["1.5e3", "true", "null"]);
        assert_eq!(tokens.len(), 13);
    }

    #[test]
    fn an_unterminated_string_is_invalid() {
        assert_eq!(all(r#"["abc"#).last(), Some(&Token::Invalid));
        assert_eq!(all(r#"["abc\"#).last(), Some(&Token::Invalid));
        assert_eq!(all("[#]").last(), Some(&Token::Invalid));
    }

    proptest! {
        #[test]
        fn finds_the_first_quote_backslash_or_control(bytes in prop::collection::vec(prop_oneof![Just(b'"'), Just(b'\\'), Just(b'a'), Just(0xe9u8), Just(0u8), Just(0x1fu8), Just(b' '), Just(0x80u8)], 0..40)) {
            prop_assert_eq!(
                quote_or_backslash(&bytes),
                bytes.iter().position(|&b| b == b'"' || b == b'\\')
            );
            prop_assert_eq!(
                quote_backslash_or_control(&bytes),
                bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            );
        }

        #[test]
        fn any_bytes_are_tokenised_without_a_panic(text in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut tokens = Tokens::new(&text);
            for _ in 0..=text.len() {
                if let Token::Str(s) = tokens.next_token() {
                    let _ = s.decoded();
                }
            }
        }
    }
}
