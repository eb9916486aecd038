//! RFC 5545 3.1: content lines, unfolded, split into name, parameters and value, and grouped
//! into components (`BEGIN:`/`END:`), each remembering the line it began on.
//!
//! Unfolding works on bytes, before UTF-8 is decoded: RFC 5545 lets a fold fall inside a
//! multi-octet character, and such a file is still valid once unfolded.

/// One unfolded content line.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Line {
    /// 1-based number of the physical line it begins on.
    pub(super) number: usize,
    /// Upper-cased (names are case-insensitive).
    pub(super) name: String,
    pub(super) params: Vec<Param>,
    pub(super) value: String,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Param {
    /// Upper-cased.
    pub(super) name: String,
    /// Without their quotes.
    pub(super) values: Vec<String>,
}

/// A `BEGIN:NAME` … `END:NAME` block.
#[derive(Debug, Default)]
pub(super) struct Component {
    /// Upper-cased.
    pub(super) name: String,
    /// The line of its `BEGIN`.
    pub(super) line: usize,
    /// Its own properties, in order; a line that does not parse is kept as its error, so the
    /// component that holds it can name its UID in the message.
    pub(super) properties: Vec<Result<Line, (usize, String)>>,
    pub(super) children: Vec<Component>,
}

impl Line {
    /// The values of parameter `name` (upper case), if given.
    pub(super) fn param(&self, name: &str) -> Option<&[String]> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.values.as_slice())
    }

    /// The single value of parameter `name`, if given.
    pub(super) fn param_value(&self, name: &str) -> Option<&str> {
        self.param(name).and_then(|v| v.first()).map(String::as_str)
    }
}

/// How deep components may nest: iCalendar needs three; the bound keeps a hostile file from
/// building a tree too deep to drop without running out of stack.
const MAX_DEPTH: usize = 8;

/// The top-level components of `text` (normally one VCALENDAR), or the errors that prevent
/// reading its structure, as (line, message).
pub(super) fn components(text: &[u8]) -> Result<Vec<Component>, Vec<(usize, String)>> {
    let mut errors = Vec::new();
    let mut stack: Vec<Component> = Vec::new();
    let mut top = Vec::new();
    for (number, bytes) in unfold(text) {
        let line = match std::str::from_utf8(&bytes) {
            Ok(text) => parse_line(number, text),
            Err(e) => Err((
                number,
                format!(
                    "not UTF-8 (byte {} of the line): iCalendar text is UTF-8",
                    e.valid_up_to() + 1
                ),
            )),
        };
        match line {
            Ok(line) if line.name == "BEGIN" && stack.len() >= MAX_DEPTH => {
                errors.push((
                    number,
                    format!(
                        "components nested more than {MAX_DEPTH} deep (VCALENDAR > VEVENT > \
                         VALARM is three)"
                    ),
                ));
                return Err(errors);
            }
            Ok(line) if line.name == "BEGIN" => stack.push(Component {
                name: line.value.trim().to_ascii_uppercase(),
                line: number,
                ..Component::default()
            }),
            Ok(line) if line.name == "END" => {
                let name = line.value.trim().to_ascii_uppercase();
                match stack.pop() {
                    Some(component) if component.name == name => match stack.last_mut() {
                        Some(parent) => parent.children.push(component),
                        None => top.push(component),
                    },
                    Some(component) => {
                        errors.push((
                            number,
                            format!(
                                "END:{name} closes BEGIN:{} of line {}: the components are not \
                                 nested properly",
                                component.name, component.line
                            ),
                        ));
                        return Err(errors);
                    }
                    None => {
                        errors.push((number, format!("END:{name} without a BEGIN:{name}")));
                        return Err(errors);
                    }
                }
            }
            line => match stack.last_mut() {
                Some(component) => component.properties.push(line),
                None => errors.push(match line {
                    Ok(line) => (
                        number,
                        format!(
                            "{} outside BEGIN:VCALENDAR … END:VCALENDAR: an iCalendar file is \
                             one or more VCALENDAR blocks",
                            line.name
                        ),
                    ),
                    Err(e) => e,
                }),
            },
        }
    }
    if let Some(open) = stack.first() {
        errors.push((
            open.line,
            format!(
                "BEGIN:{} is never closed (END:{} is missing: is the file cut short?)",
                open.name, open.name
            ),
        ));
    }
    if top.is_empty() && errors.is_empty() {
        errors.push((1, "no BEGIN:VCALENDAR: this is not iCalendar data".into()));
    }
    if errors.is_empty() {
        Ok(top)
    } else {
        Err(errors)
    }
}

/// The logical lines of `text` with the number of the physical line each begins on: CRLF or
/// LF ends a line, and a line beginning with a space or tab continues the previous one (that
/// one character removed). Blank lines are skipped (many files end with one).
fn unfold(text: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let mut lines: Vec<(usize, Vec<u8>)> = Vec::new();
    for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        match raw.first() {
            Some(b' ' | b'\t') if !lines.is_empty() => {
                if let Some((_, last)) = lines.last_mut() {
                    last.extend_from_slice(&raw[1..]);
                }
            }
            _ if raw.iter().all(u8::is_ascii_whitespace) => {}
            _ => lines.push((i + 1, raw.to_vec())),
        }
    }
    lines
}

/// `name *(";" param) ":" value` (RFC 5545 3.1).
fn parse_line(number: usize, text: &str) -> Result<Line, (usize, String)> {
    let fail = |message: String| Err((number, message));
    let name_end = text.find([';', ':']).unwrap_or(text.len());
    let name = &text[..name_end];
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return fail(format!(
            "{:?} is not a content line (NAME;PARAM=VALUE:VALUE)",
            shorten(text)
        ));
    }
    let mut params = Vec::new();
    let mut rest = &text[name_end..];
    while let Some(after) = rest.strip_prefix(';') {
        let Some(eq) = after.find('=') else {
            return fail(format!(
                "parameter {:?} of {name} has no '='",
                shorten(after)
            ));
        };
        let param_name = &after[..eq];
        if param_name.is_empty()
            || !param_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return fail(format!("{name} has a parameter without a name"));
        }
        let mut values = Vec::new();
        let mut tail = &after[eq + 1..];
        loop {
            let (value, next) = if let Some(quoted) = tail.strip_prefix('"') {
                let Some(close) = quoted.find('"') else {
                    return fail(format!(
                        "parameter {param_name} of {name} opens a quote it never closes"
                    ));
                };
                (&quoted[..close], &quoted[close + 1..])
            } else {
                let end = tail.find([',', ';', ':']).unwrap_or(tail.len());
                (&tail[..end], &tail[end..])
            };
            values.push(value.to_owned());
            match next.strip_prefix(',') {
                Some(more) => tail = more,
                None => {
                    tail = next;
                    break;
                }
            }
        }
        params.push(Param {
            name: param_name.to_ascii_uppercase(),
            values,
        });
        rest = tail;
    }
    let Some(value) = rest.strip_prefix(':') else {
        return fail(format!("{name} has no ':' before its value"));
    };
    Ok(Line {
        number,
        name: name.to_ascii_uppercase(),
        params,
        value: value.to_owned(),
    })
}

/// RFC 5545 3.3.11: a TEXT value with its escapes (`\\`, `\;`, `\,`, `\n`) undone.
pub(super) fn unescape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The start of a long text, for messages.
pub(super) fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_undone_on_bytes_even_inside_a_character() {
        // "ü" is C3 BC: a fold between the two octets must give it back whole.
        let text =
            b"BEGIN:VCALENDAR\r\nSUMMARY:Fr\xC3\r\n \xBChling\r\n\tferien\r\nEND:VCALENDAR\r\n";
        let top = components(text).unwrap();
        let summary = top[0].properties[0].as_ref().unwrap();
        assert_eq!(summary.value, "Frühlingferien");
        assert_eq!(summary.number, 2);
    }

    #[test]
    fn parameters_quoted_and_listed() {
        let line = parse_line(
            7,
            "DTSTART;TZID=\"Europe/Berlin\";X-A=1,\"b;c:d\":20260101T000000",
        )
        .unwrap();
        assert_eq!(line.name, "DTSTART");
        assert_eq!(line.param_value("TZID"), Some("Europe/Berlin"));
        assert_eq!(
            line.param("X-A").unwrap(),
            ["1".to_owned(), "b;c:d".to_owned()]
        );
        assert_eq!(line.value, "20260101T000000");
    }

    #[test]
    fn text_escapes() {
        assert_eq!(unescape_text(r"a\, b\; c\\d\ne"), "a, b; c\\d\ne");
    }

    #[test]
    fn structure_errors_name_the_line() {
        let err = components(b"BEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VCALENDAR\n").unwrap_err();
        assert_eq!(err[0].0, 3, "{err:?}");
        let err = components(b"BEGIN:VCALENDAR\nBEGIN:VEVENT\n").unwrap_err();
        assert_eq!(err[0].0, 1, "{err:?}");
        assert!(err[0].1.contains("never closed"), "{err:?}");
        let err = components(b"").unwrap_err();
        assert!(err[0].1.contains("no BEGIN:VCALENDAR"), "{err:?}");
        let deep = "BEGIN:X\n".repeat(100_000) + &"END:X\n".repeat(100_000);
        let err = components(deep.as_bytes()).unwrap_err();
        assert_eq!(err[0].0, MAX_DEPTH + 1, "{err:?}");
    }
}
