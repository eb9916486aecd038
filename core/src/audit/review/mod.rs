//! `fluxgate audit`'s core: a streaming filter and summary over JSON audit lines.
//!
//! [`Review`] reads lines one at a time (from any [`BufRead`]), classifies each (an audit
//! record, an application log line, a blank line, or something it cannot parse), hands the
//! matching records to the caller and keeps only aggregates. A multi-gigabyte log costs the
//! memory of its distinct windows, owners, denied objects and bypasses, not of its records.
//! Lines it cannot parse are counted and listed by number, never dropped silently.
//!
//! Only lines written as records count as records. Where the input says which stream a line
//! came from (a container runtime's log file, [`cri`]), only standard output's lines can be
//! records: whatever a standard error line holds is application log. Where it cannot tell
//! (`kubectl logs` merges the two), a line is a record by its shape, which the application log
//! never has: `fluxgate serve` writes each log event as one line beginning with its timestamp
//! (text, control characters escaped) or `{"timestamp":` (JSON). A line not yet ended by its
//! newline (a file still being written) is left unread and reported, not misread as damage.
//!
//! No clock, no files, no flags: the caller resolves `--since 24h` against its `now` and opens
//! the inputs.

mod cri;
mod filter;
mod summary;

use filter::Verdict;
pub use filter::{AuditDecision, Filter, TimeSpec};
use summary::Summary;
pub use summary::{
    BypassEntry, Counts, DecisionCounts, DeniedObject, OverrideEntry, SummaryReport, object_display,
};

use crate::audit::AuditRecord;
use serde::Serialize;
use std::io::BufRead;

/// How many line numbers are listed per input for each kind of skipped line; the count is
/// always complete.
pub(crate) const MAX_LISTED_LINES: usize = 20;

/// Longer lines are reported as unparseable without being held: an audit line is a few KiB
/// (the message is the longest field), so 1 MiB means the input is not an audit log.
pub(crate) const MAX_LINE_BYTES: usize = 1024 * 1024;

/// What one input line is.
#[derive(Debug)]
pub(crate) enum Line {
    Blank,
    Record(Box<AuditRecord>),
    /// fluxgate's own application log (stderr), which `kubectl logs` interleaves with the
    /// audit lines (stdout).
    AppLog,
    Unparseable(String),
}

/// Lines of one input that were skipped: how many, and the first few with why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SkippedLines {
    /// The file name, or `<stdin>`.
    pub source: String,
    pub count: u64,
    /// The first `MAX_LISTED_LINES`.
    pub lines: Vec<SkippedLine>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SkippedLine {
    /// 1-based line number in its input.
    pub line: u64,
    pub error: String,
}

/// Counts over every line read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub lines: u64,
    pub blank_lines: u64,
    /// Audit records parsed, matching or not.
    pub records: u64,
    pub(crate) matched: u64,
    /// Records that matched every other filter but were admitted dry-runs (left out by default).
    pub hidden_dry_runs: u64,
    pub app_log_lines: u64,
    pub unparseable_lines: u64,
}

/// Everything but the matching records themselves.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finished {
    pub filter: Filter,
    pub stats: Stats,
    pub summary: SummaryReport,
    /// Per input with any; each line with its parse error.
    pub unparseable: Vec<SkippedLines>,
    /// Per input with any; fluxgate's application logs mixed into the input.
    pub app_log_lines: Vec<SkippedLines>,
    /// Per input that ended inside a line: a file still being written. That line is read
    /// whole by the next review, so it is neither a record nor unparseable now.
    pub partial_last_lines: Vec<PartialLine>,
}

/// The last line of an input, not yet ended by its newline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartialLine {
    /// The file name, or `<stdin>`.
    pub source: String,
    /// 1-based line number in its input.
    pub line: u64,
    /// How much of it there was.
    pub bytes: u64,
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {origin} after line {line}: {error}")]
    Input {
        origin: String,
        line: u64,
        error: std::io::Error,
    },
    /// The caller's handler failed (writing the output).
    #[error(transparent)]
    Output(std::io::Error),
}

/// A review of audit logs in progress: fed line by line, it keeps aggregates and hands the
/// matching records on.
#[derive(Debug)]
pub struct Review {
    filter: Filter,
    top: usize,
    stats: Stats,
    summary: Summary,
    unparseable: Vec<SkippedLines>,
    app_logs: Vec<SkippedLines>,
    partial: Vec<PartialLine>,
}

// === impl Review ===

impl Review {
    /// A review keeping the records `filter` matches and the `top` most denied objects.
    pub fn new(filter: Filter, top: usize) -> Self {
        Review {
            filter,
            top,
            stats: Stats::default(),
            summary: Summary::default(),
            unparseable: Vec::new(),
            app_logs: Vec::new(),
            partial: Vec::new(),
        }
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Takes line `line_no` (from 1) of `source`; returns the record when it matches.
    #[cfg(test)]
    pub(crate) fn feed(&mut self, source: &str, line_no: u64, bytes: &[u8]) -> Option<AuditRecord> {
        self.take(source, line_no, classify(bytes))
    }

    /// Counts line `line_no` (from 1) of `source` as what it is; returns the record when it
    /// matches.
    fn take(&mut self, source: &str, line_no: u64, line: Line) -> Option<AuditRecord> {
        self.stats.lines += 1;
        match line {
            Line::Blank => {
                self.stats.blank_lines += 1;
                None
            }
            Line::AppLog => {
                self.stats.app_log_lines += 1;
                note(&mut self.app_logs, source, line_no, "application log line");
                None
            }
            Line::Unparseable(error) => {
                self.stats.unparseable_lines += 1;
                note(&mut self.unparseable, source, line_no, &error);
                None
            }
            Line::Record(record) => {
                self.stats.records += 1;
                match self.filter.check(&record) {
                    Verdict::Match => {
                        self.stats.matched += 1;
                        self.summary.add(&record);
                        Some(*record)
                    }
                    Verdict::HiddenDryRun => {
                        self.stats.hidden_dry_runs += 1;
                        None
                    }
                    Verdict::NoMatch => None,
                }
            }
        }
    }

    /// Reads `reader` to the end, one line at a time, calling `on_match` with each matching
    /// record in order. A container runtime's log file (its first line says so) is read by
    /// stream ([`cri`]); anything else line by line.
    pub fn read<R: BufRead>(
        &mut self,
        source: &str,
        mut reader: R,
        mut on_match: impl FnMut(AuditRecord) -> std::io::Result<()>,
    ) -> Result<(), ReadError> {
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        // Decided by the first line that is not blank.
        let mut runtime_log: Option<cri::Streams> = None;
        let mut decided = false;
        let mut partial = None;
        loop {
            let next =
                read_line_capped(&mut reader, &mut buf, MAX_LINE_BYTES).map_err(|error| {
                    ReadError::Input {
                        origin: source.to_owned(),
                        line: line_no,
                        error,
                    }
                })?;
            line_no += 1;
            let line = match next {
                None => break,
                Some(LineRead::Partial(bytes)) => {
                    partial = Some((line_no, bytes));
                    break;
                }
                Some(LineRead::TooLong) => {
                    let error = format!("line longer than {MAX_LINE_BYTES} bytes");
                    (line_no, Line::Unparseable(error))
                }
                Some(LineRead::Line) => {
                    if !decided && !buf.trim_ascii().is_empty() {
                        decided = true;
                        runtime_log = cri::Streams::detect(&buf);
                    }
                    match &mut runtime_log {
                        None => (line_no, classify(&buf)),
                        Some(streams) => match streams.take(line_no, &buf) {
                            Some(line) => line,
                            None => continue,
                        },
                    }
                }
            };
            if let Some(record) = self.take(source, line.0, line.1) {
                on_match(record).map_err(ReadError::Output)?;
            }
        }
        // Or a line the runtime split, whose last piece is not written yet.
        let unfinished = runtime_log.and_then(|streams| streams.unfinished());
        if let Some((line, bytes)) = unfinished.or(partial) {
            self.partial.push(PartialLine {
                source: source.to_owned(),
                line,
                bytes,
            });
        }
        Ok(())
    }

    pub fn finish(self) -> Finished {
        Finished {
            filter: self.filter,
            stats: self.stats,
            summary: self.summary.finish(self.top),
            unparseable: self.unparseable,
            app_log_lines: self.app_logs,
            partial_last_lines: self.partial,
        }
    }
}

fn note(list: &mut Vec<SkippedLines>, source: &str, line: u64, error: &str) {
    let entry = match list.iter().position(|s| s.source == source) {
        Some(i) => &mut list[i],
        None => {
            list.push(SkippedLines {
                source: source.to_owned(),
                count: 0,
                lines: Vec::new(),
            });
            let last = list.len() - 1;
            &mut list[last]
        }
    };
    entry.count += 1;
    if entry.lines.len() < MAX_LISTED_LINES {
        entry.lines.push(SkippedLine {
            line,
            error: error.to_owned(),
        });
    }
}

/// What kind of line `bytes` (without or with its newline) is.
pub(crate) fn classify(bytes: &[u8]) -> Line {
    let text = bytes.trim_ascii();
    if text.is_empty() {
        return Line::Blank;
    }
    let json = strip_prefixes(text);
    match serde_json::from_slice::<AuditRecord>(json) {
        Ok(record) => Line::Record(Box::new(record)),
        Err(error) => {
            if is_app_log(json) {
                Line::AppLog
            } else if std::str::from_utf8(text).is_err() {
                Line::Unparseable("not UTF-8 text".to_owned())
            } else if json.first() == Some(&b'{') {
                Line::Unparseable(format!("not an audit record: {error}"))
            } else {
                Line::Unparseable(format!("not JSON: {error}"))
            }
        }
    }
}

/// Drops what `kubectl logs --prefix` (`[pod/name/container] `) or `--timestamps`
/// (`2026-11-27T12:00:00.123Z `) put in front of a JSON line.
fn strip_prefixes(mut text: &[u8]) -> &[u8] {
    if text.starts_with(b"[pod/")
        && let Some(end) = text.windows(2).position(|w| w == b"] ")
    {
        text = text[end + 2..].trim_ascii_start();
    }
    if let Some(space) = text.iter().position(|&b| b == b' ')
        && let Ok(first) = std::str::from_utf8(&text[..space])
        && chrono::DateTime::parse_from_rfc3339(first).is_ok()
        && text[space..].trim_ascii_start().starts_with(b"{")
    {
        text = text[space..].trim_ascii_start();
    }
    text
}

/// fluxgate's application logs: `tracing` JSON (`{"timestamp":…,"level":…,"target":…}`, its
/// fields beside them) or text (`2026-11-27T12:00:00.123456Z  INFO target: message`, possibly
/// with ANSI colours).
fn is_app_log(text: &[u8]) -> bool {
    if text.first() == Some(&b'{') {
        return serde_json::from_slice::<serde_json::Value>(text).is_ok_and(|v| {
            ["timestamp", "level", "target"]
                .iter()
                .all(|key| v.get(key).is_some_and(serde_json::Value::is_string))
        });
    }
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let plain = strip_ansi(text);
    let mut words = plain.split_whitespace();
    let time_ok = words
        .next()
        .is_some_and(|w| chrono::DateTime::parse_from_rfc3339(w).is_ok());
    time_ok
        && words
            .next()
            .is_some_and(|w| matches!(w, "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR"))
}

/// Removes ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

enum LineRead {
    Line,
    TooLong,
    /// The input ended inside a line: this many bytes of it, no newline yet.
    Partial(u64),
}

/// Reads one line into `buf` (cleared first), newline included; a line longer than `cap`
/// is consumed without being kept. `None` at the end of the input.
fn read_line_capped<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Option<LineRead>> {
    buf.clear();
    let mut too_long = false;
    let mut read = 0u64;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok((read > 0).then_some(LineRead::Partial(read)));
        }
        let (len, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if buf.len() + len > cap {
                too_long = true;
                buf.clear();
                buf.shrink_to(64 * 1024);
            } else {
                buf.extend_from_slice(&available[..len]);
            }
        }
        read += len as u64;
        reader.consume(len);
        if done {
            return Ok(Some(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            }));
        }
    }
}

#[cfg(test)]
mod tests;
