//! iCalendar (RFC 5545) calendars as sets of spans: each VEVENT, with its recurrences, becomes
//! occurrences `[start, end)` with the event's SUMMARY and UID. Whether an occurrence freezes a
//! window or opens it is the window's business; this module only says when events are.
//!
//! Pure: [`Calendar::parse`] is given the text and the window's zone, and the lookups are given
//! the instant. The whole calendar is expanded once, at parse, into sorted occurrences and the
//! sorted instants where one starts or ends (its *edges*), so each lookup is a binary search.
//!
//! What is read, and how:
//! - `DTSTART` with `DTEND` or `DURATION`. DATE values are whole days in the window's zone; a
//!   DATE `DTSTART` alone is one day (RFC 5545 3.6.1). DATE-TIME values are in their `TZID` (an
//!   IANA name), in UTC with `Z`, or floating, in the window's zone. A local time in a DST gap
//!   takes the offset before the gap, one that occurs twice the first occurrence (RFC 5545
//!   3.3.5).
//! - `RRULE` with FREQ YEARLY, MONTHLY, WEEKLY or DAILY and INTERVAL, COUNT, UNTIL, BYMONTH,
//!   BYMONTHDAY, BYDAY (with ordinals such as `-1MO`), BYSETPOS and WKST ([`rrule`]); `RDATE`,
//!   `EXDATE`, and overrides of single instances (`RECURRENCE-ID`). How long each instance
//!   lasts: see [`expand`].
//! - `STATUS:CANCELLED` events, and instances whose override says so, are left out.
//! - `VTIMEZONE` blocks are checked to name an IANA zone and otherwise not read: the zone
//!   database decides offsets. A TZID that is no IANA name is an error naming it.
//! - Everything else that could change when an event is (BYHOUR, EXRULE, RANGE=THISANDFUTURE,
//!   PERIOD values, a VTODO, an unknown property) is an error naming the event's UID and the
//!   line, never skipped. Properties that cannot change it are accepted ([`event::IGNORED`]),
//!   and so is every `X-` property (`X-WR-TIMEZONE` too: floating times are in the window's
//!   zone, as the window says).
//!
//! Occurrences are known up to [`EXPANDED_UNTIL_YEAR`]: a rule without an end is expanded up to
//! then, and [`Calendar::expanded_until`] says so, so that a caller can tell "no more events"
//! from "not looked".

mod event;
mod expand;
mod lines;
mod rrule;
mod values;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Occurrences starting from the beginning of this year (UTC) on are not expanded. Fixed,
/// since the core has no clock: windows look ten years ahead, so this serves until about 2090.
pub const EXPANDED_UNTIL_YEAR: i32 = 2100;

/// At most this many errors are reported for one calendar; the last says how many more there
/// were.
const MAX_ERRORS: usize = 50;

/// A parsed and expanded calendar.
#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    name: String,
    /// Sorted by start, then the longest first, then order in the file.
    occurrences: Vec<Occurrence>,
    /// Every instant at which an occurrence starts or ends, sorted, without repeats.
    edges: Vec<DateTime<Utc>>,
    /// For each edge, the occurrence (index) reported as in force from it until the next edge.
    in_force: Vec<Option<u32>>,
    /// The union of the occurrences: maximal disjoint periods during which some event is in
    /// force, sorted.
    runs: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    expanded_until: Option<DateTime<Utc>>,
}

/// One occurrence of an event: `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occurrence {
    pub start: DateTime<Utc>,
    /// Equal to `start` only for an instance squeezed to nothing by a DST gap (which is never
    /// in force).
    pub end: DateTime<Utc>,
    /// SUMMARY, unescaped: a freeze's reason.
    pub summary: Option<Arc<str>>,
    pub uid: Arc<str>,
    /// The line of the VEVENT it comes from (its override's, for a moved instance).
    pub line: usize,
}

/// The run of time containing an instant during which the calendar's state (some event in
/// force, or none) does not change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Whether some event is in force.
    pub in_force: bool,
    /// Where the run began; `None` for the time before the first event.
    pub since: Option<DateTime<Utc>>,
    /// Where it ends; `None` after the last event (see [`Calendar::expanded_until`] for whether
    /// that is the end of the calendar or of what was expanded).
    pub until: Option<DateTime<Utc>>,
}

/// Why a calendar cannot be used: names the calendar, the line and, inside an event, its UID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "calendar {calendar:?}, line {line}{}: {message}",
    uid.as_ref().map(|u| format!(" (event {u:?})")).unwrap_or_default()
)]
pub struct CalendarError {
    pub calendar: String,
    /// 1-based, of the physical line where the offending content line begins.
    pub line: usize,
    pub uid: Option<String>,
    pub message: String,
}

/// A problem at a line, before the calendar and the event are named.
#[derive(Debug)]
struct Problem {
    line: usize,
    message: String,
}

impl Problem {
    fn new(line: usize, message: String) -> Self {
        Problem { line, message }
    }
}

// === impl Calendar ===

impl Calendar {
    /// Parses and expands `text` (UTF-8 iCalendar data; bytes, since a fold may split a
    /// character) for a window in `zone`: dates and floating times are read in it. `name` is
    /// what errors call the calendar. Every error found is returned, sorted by line (at most
    /// 50).
    pub fn parse(
        name: &str,
        text: impl AsRef<[u8]>,
        zone: Tz,
    ) -> Result<Calendar, Vec<CalendarError>> {
        let error = |uid: Option<&str>, p: Problem| CalendarError {
            calendar: name.to_owned(),
            line: p.line,
            uid: uid.map(str::to_owned),
            message: p.message,
        };
        let mut errors = Vec::new();
        let top = lines::components(text.as_ref()).map_err(|problems| {
            problems
                .into_iter()
                .map(|(line, message)| error(None, Problem::new(line, message)))
                .collect::<Vec<_>>()
        });
        let top = match top {
            Ok(top) => top,
            Err(errors) => return Err(capped(errors)),
        };
        let mut events = Vec::new();
        for calendar in &top {
            for p in check_calendar(calendar) {
                errors.push(error(None, p));
            }
            for child in calendar.children.iter().filter(|c| c.name == "VEVENT") {
                match event::read(child, zone) {
                    Ok(event) => events.push(event),
                    Err((uid, problems)) => {
                        errors.extend(problems.into_iter().map(|p| error(uid.as_deref(), p)));
                    }
                }
            }
        }
        // Each UID has one event, and any number of overrides of its instances.
        let mut masters: BTreeMap<Arc<str>, usize> = BTreeMap::new();
        for (i, event) in events.iter().enumerate() {
            if event.recurrence_id.is_some() {
                continue;
            }
            if let Some(&first) = masters.get(&event.uid) {
                let first_line = events[first].line;
                errors.push(error(
                    Some(&event.uid),
                    Problem::new(
                        event.line,
                        format!(
                            "the VEVENT at line {first_line} has this UID already: each event \
                             needs its own UID (an override of one instance says RECURRENCE-ID)"
                        ),
                    ),
                ));
            } else {
                masters.insert(event.uid.clone(), i);
            }
        }
        let bound = NaiveDate::from_ymd_opt(EXPANDED_UNTIL_YEAR, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut expander = expand::Expander::new(zone, bound);
        let mut overrides: BTreeMap<&str, Vec<&event::Event>> = BTreeMap::new();
        for event in events.iter().filter(|e| e.recurrence_id.is_some()) {
            if masters.contains_key(&event.uid) {
                overrides.entry(&event.uid).or_default().push(event);
            } else if let Err(p) = expander.single(event) {
                // An override whose event is not in the file: an event of its own.
                errors.push(error(Some(&event.uid), p));
            }
        }
        for (uid, &i) in &masters {
            if expander.gave_up {
                break;
            }
            let moved = overrides.get(&**uid).map_or(&[][..], Vec::as_slice);
            if let Err(p) = expander.series(&events[i], moved) {
                errors.push(error(Some(uid), p));
            }
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.line);
            return Err(capped(errors));
        }
        let expanded_until = expander.truncated.then_some(bound);
        Ok(Calendar::index(name, expander.out, expanded_until))
    }

    /// Sorts the occurrences and computes the edges, the occurrence in force between each two,
    /// and the runs.
    fn index(
        name: &str,
        mut occurrences: Vec<Occurrence>,
        expanded_until: Option<DateTime<Utc>>,
    ) -> Calendar {
        occurrences.sort_by(|a, b| {
            (a.start, b.end, a.line, &a.uid).cmp(&(b.start, a.end, b.line, &b.uid))
        });
        // Instances squeezed to nothing by a DST gap change nothing: no edges for them.
        let spans: Vec<u32> = (0..occurrences.len() as u32)
            .filter(|&i| occurrences[i as usize].start < occurrences[i as usize].end)
            .collect();
        let mut edges: Vec<DateTime<Utc>> = spans
            .iter()
            .flat_map(|&i| [occurrences[i as usize].start, occurrences[i as usize].end])
            .collect();
        edges.sort_unstable();
        edges.dedup();
        // A sweep over the edges: the occurrences in force, ordered as `occurrences` is, so the
        // first began earliest (and is the longest, the first in the file).
        let mut by_end = spans.clone();
        by_end.sort_by_key(|&i| occurrences[i as usize].end);
        let mut active = BTreeSet::new();
        let (mut next_start, mut next_end) = (0, 0);
        let mut in_force = Vec::with_capacity(edges.len());
        for &edge in &edges {
            while let Some(&i) = by_end.get(next_end)
                && occurrences[i as usize].end <= edge
            {
                active.remove(&i);
                next_end += 1;
            }
            while let Some(&i) = spans.get(next_start)
                && occurrences[i as usize].start <= edge
            {
                if occurrences[i as usize].end > edge {
                    active.insert(i);
                }
                next_start += 1;
            }
            in_force.push(active.first().copied());
        }
        let mut runs: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        for &i in &spans {
            let o = &occurrences[i as usize];
            match runs.last_mut() {
                Some(last) if o.start <= last.1 => last.1 = last.1.max(o.end),
                _ => runs.push((o.start, o.end)),
            }
        }
        Calendar {
            name: name.to_owned(),
            occurrences,
            edges,
            in_force,
            runs,
            expanded_until,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every occurrence, sorted by start.
    pub fn occurrences(&self) -> &[Occurrence] {
        &self.occurrences
    }

    /// `None` when the calendar was expanded completely; else the instant from which on
    /// occurrences were left out (the start of [`EXPANDED_UNTIL_YEAR`]): a rule without an end,
    /// or an event after it. Nothing is known past it.
    pub fn expanded_until(&self) -> Option<DateTime<Utc>> {
        self.expanded_until
    }

    /// The occurrence in force at `t` (`start <= t < end`). When several are, the one that
    /// began first (then the longest, then the first in the file): for a week of school
    /// holidays holding a public holiday, the holidays.
    pub fn at(&self, t: DateTime<Utc>) -> Option<&Occurrence> {
        let i = self.edges.partition_point(|e| *e <= t).checked_sub(1)?;
        let k = self.in_force[i]?;
        self.occurrences.get(k as usize)
    }

    /// The first instant after `t` at which an occurrence starts or ends: the next time
    /// [`Calendar::at`] may answer differently.
    pub fn next_edge_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let i = self.edges.partition_point(|e| *e <= t);
        self.edges.get(i).copied()
    }

    /// The last instant at or before `t` at which an occurrence started or ended: since when
    /// [`Calendar::at`] has answered as it does at `t`.
    pub fn last_edge_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let i = self.edges.partition_point(|e| *e <= t).checked_sub(1)?;
        self.edges.get(i).copied()
    }

    /// Whether some occurrence is in force at `t`, since when and until when: overlapping and
    /// abutting occurrences make one run.
    pub fn run_at(&self, t: DateTime<Utc>) -> Run {
        let j = self.runs.partition_point(|r| r.0 <= t);
        match j.checked_sub(1).map(|i| self.runs[i]) {
            Some((since, until)) if t < until => Run {
                in_force: true,
                since: Some(since),
                until: Some(until),
            },
            before => Run {
                in_force: false,
                since: before.map(|r| r.1),
                until: self.runs.get(j).map(|r| r.0),
            },
        }
    }
}

/// The VCALENDAR's own properties and its components other than VEVENT.
fn check_calendar(calendar: &lines::Component) -> Vec<Problem> {
    /// Calendar properties that say nothing about when events are (RFC 5545 3.7, RFC 7986).
    const ACCEPTED: &[&str] = &[
        "VERSION",
        "PRODID",
        "METHOD",
        "NAME",
        "DESCRIPTION",
        "URL",
        "UID",
        "LAST-MODIFIED",
        "REFRESH-INTERVAL",
        "SOURCE",
        "COLOR",
        "IMAGE",
    ];
    let mut problems = Vec::new();
    if calendar.name != "VCALENDAR" {
        problems.push(Problem::new(
            calendar.line,
            format!(
                "BEGIN:{} at the top level: an iCalendar file holds VCALENDAR blocks",
                calendar.name
            ),
        ));
        return problems;
    }
    for property in &calendar.properties {
        match property {
            Err((line, message)) => problems.push(Problem::new(*line, message.clone())),
            Ok(line) if line.name == "CALSCALE" => {
                if !line.value.trim().eq_ignore_ascii_case("GREGORIAN") {
                    problems.push(Problem::new(
                        line.number,
                        format!(
                            "CALSCALE:{} is not supported (only GREGORIAN)",
                            lines::shorten(&line.value)
                        ),
                    ));
                }
            }
            Ok(line) if line.name.starts_with("X-") || ACCEPTED.contains(&line.name.as_str()) => {}
            Ok(line) => problems.push(Problem::new(
                line.number,
                format!(
                    "calendar property {} is not supported (accepted: {}, CALSCALE:GREGORIAN and \
                     X- properties)",
                    line.name,
                    ACCEPTED.join(", ")
                ),
            )),
        }
    }
    for child in &calendar.children {
        match child.name.as_str() {
            "VEVENT" => {}
            "VTIMEZONE" => problems.extend(check_time_zone(child)),
            name if name.starts_with("X-") => {}
            name => problems.push(Problem::new(
                child.line,
                format!(
                    "a {name} is not supported: a calendar of freezes holds VEVENTs (and the \
                     VTIMEZONEs they name)"
                ),
            )),
        }
    }
    problems
}

/// A VTIMEZONE must be an IANA zone: its TZID is checked, its rules are not read.
fn check_time_zone(component: &lines::Component) -> Option<Problem> {
    let tzid = component
        .properties
        .iter()
        .flatten()
        .find(|line| line.name == "TZID");
    match tzid {
        None => Some(Problem::new(
            component.line,
            "the VTIMEZONE has no TZID".into(),
        )),
        Some(line) => values::time_zone(&line.value)
            .err()
            .map(|message| Problem::new(line.number, format!("VTIMEZONE: {message}"))),
    }
}

/// At most [`MAX_ERRORS`] errors, the last saying how many were left out.
fn capped(mut errors: Vec<CalendarError>) -> Vec<CalendarError> {
    if errors.len() > MAX_ERRORS {
        let more = errors.len() - (MAX_ERRORS - 1);
        errors.truncate(MAX_ERRORS - 1);
        let last = errors.last().cloned();
        if let Some(last) = last {
            errors.push(CalendarError {
                line: last.line,
                uid: None,
                message: format!("… and {more} more errors"),
                ..last
            });
        }
    }
    errors
}

#[cfg(test)]
mod tests;
