//! Container runtime log files, the CRI logging format the kubelet keeps under
//! `/var/log/pods/<namespace>_<pod>_<uid>/<container>/`: each line is
//! `<RFC 3339 time> <stdout|stderr> <P|F> <text>`, its stream written by the runtime, not by
//! the container. A line longer than the runtime's limit (16 KiB by default in containerd)
//! is split into `P` pieces, continued by the next line of the same stream, the last one `F`.
//!
//! Here the input says which lines were written as records: only standard output's can be.
//! A standard error line is fluxgate's application log whatever it holds, so not even the
//! text log of a version that wrote newlines raw can forge a record.

use super::{Line, MAX_LINE_BYTES, classify};

/// The state of one runtime log file: each stream's split line in progress.
#[derive(Debug)]
pub(super) struct Streams {
    /// Standard output's, then standard error's.
    pending: [Option<Pending>; 2],
}

/// The pieces of a split line so far.
#[derive(Debug)]
struct Pending {
    /// The line number of its first piece.
    line: u64,
    text: Vec<u8>,
    bytes: u64,
    too_long: bool,
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout = 0,
    Stderr = 1,
}

struct Piece<'a> {
    stream: Stream,
    /// `F`: the last (or only) piece of its line.
    full: bool,
    text: &'a [u8],
}

impl Streams {
    /// A runtime log file, when `first`, its first line that is not blank, is one.
    pub(super) fn detect(first: &[u8]) -> Option<Streams> {
        parse(first).map(|_| Streams {
            pending: [None, None],
        })
    }

    /// What `line` (number `line_no`) ends, with the number of the line it started on; `None`
    /// while a split line goes on.
    pub(super) fn take(&mut self, line_no: u64, line: &[u8]) -> Option<(u64, Line)> {
        if line.trim_ascii().is_empty() {
            return Some((line_no, Line::Blank));
        }
        let Some(piece) = parse(line) else {
            let error = "not a container runtime log line (`<time> <stdout|stderr> <P|F> <text>`), \
                         as the input's first line is";
            return Some((line_no, Line::Unparseable(error.to_owned())));
        };
        let slot = &mut self.pending[piece.stream as usize];
        if slot.is_none() && piece.full {
            return Some((line_no, piece.line(piece.text)));
        }
        let pending = slot.get_or_insert_with(|| Pending {
            line: line_no,
            text: Vec::new(),
            bytes: 0,
            too_long: false,
        });
        pending.bytes += piece.text.len() as u64;
        if pending.text.len() + piece.text.len() > MAX_LINE_BYTES {
            pending.too_long = true;
            pending.text = Vec::new();
        } else if !pending.too_long {
            pending.text.extend_from_slice(piece.text);
        }
        if !piece.full {
            return None;
        }
        let pending = slot.take()?;
        let line = if pending.too_long {
            Line::Unparseable(format!("line longer than {MAX_LINE_BYTES} bytes"))
        } else {
            piece.line(&pending.text)
        };
        Some((pending.line, line))
    }

    /// The first line still waiting for its last piece, and its bytes so far.
    pub(super) fn unfinished(self) -> Option<(u64, u64)> {
        self.pending
            .into_iter()
            .flatten()
            .map(|p| (p.line, p.bytes))
            .min()
    }
}

impl Piece<'_> {
    /// The line `text` is, by the stream it was written to.
    fn line(&self, text: &[u8]) -> Line {
        match self.stream {
            Stream::Stdout => classify(text),
            Stream::Stderr if text.trim_ascii().is_empty() => Line::Blank,
            Stream::Stderr => Line::AppLog,
        }
    }
}

fn parse(line: &[u8]) -> Option<Piece<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut parts = line.splitn(4, |&b| b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    chrono::DateTime::parse_from_rfc3339(time).ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    // Tags are `:`-separated; the first says whether the line goes on.
    let full = match parts.next()?.split(|&b| b == b':').next()? {
        b"F" => true,
        b"P" => false,
        _ => return None,
    };
    Some(Piece {
        stream,
        full,
        text: parts.next().unwrap_or_default(),
    })
}
