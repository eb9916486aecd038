//! From events to occurrences: a recurring event's rule, RDATEs, EXDATEs and overrides
//! (RECURRENCE-ID), each instance given its span.
//!
//! Instances are found in the event's local time and then placed: in its TZID, in UTC, or, for
//! dates and floating times, in the window's zone. Every instance lasts what the first one
//! lasts, measured as RFC 5545 3.3.6 measures a DURATION (days on the calendar, hours on the
//! clock) or, for DTEND, on the clock of DTSTART's zone: a 22:00–06:00 event stays 22:00–06:00
//! across a DST change, as calendar programs show it (RFC 5545 3.8.5.3 would keep its exact
//! length, 06:00 becoming 05:00 or 07:00; Python's recurring-ical-events does as we do).

use super::event::{End, Event};
use super::rrule::{ExpandError, Rule};
use super::values::{When, Zone};
use super::{Occurrence, Problem};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};

/// At most this many occurrences in a calendar: a daily rule from 1970 to 2100 is about 47,500;
/// the bound keeps a hostile calendar from taking the process's memory.
pub(super) const MAX_OCCURRENCES: usize = 100_000;

/// At most this many days examined by all the rules of a calendar together (a few tens of
/// milliseconds): a yearly holiday rule costs 366 a year, a 20-year holiday calendar a few
/// hundred thousand.
pub(super) const MAX_DAYS_EXAMINED: u64 = 5_000_000;

pub(super) struct Expander {
    window: Tz,
    /// Occurrences that start at or after it are not kept.
    bound: DateTime<Utc>,
    /// The last local day rules are expanded to: past the bound in every zone.
    last_day: NaiveDate,
    budget: u64,
    /// Whether anything was left out for starting at or after the bound.
    pub(super) truncated: bool,
    /// Whether the budget or the occurrence limit stopped it: what is left is not expanded
    /// (each would fail the same way).
    pub(super) gave_up: bool,
    pub(super) out: Vec<Occurrence>,
}

impl Expander {
    pub(super) fn new(window: Tz, bound: DateTime<Utc>) -> Self {
        Expander {
            window,
            bound,
            last_day: bound.date_naive() + Duration::days(2),
            budget: MAX_DAYS_EXAMINED,
            truncated: false,
            gave_up: false,
            out: Vec::new(),
        }
    }

    /// Adds the occurrences of `master` and its `overrides`.
    pub(super) fn series(&mut self, master: &Event, overrides: &[&Event]) -> Result<(), Problem> {
        let zone = master.start.zone();
        let start = master.start.local();
        let mut starts = match &master.rule {
            Some((line, rule)) => self.rule(master, rule, *line)?,
            None => vec![start],
        };
        for (line, rdate) in &master.rdates {
            starts.push(self.local_in(zone, rdate, *line, "RDATE")?);
        }
        starts.sort_unstable();
        starts.dedup();
        // Instances are told apart by their local time, or their instant when they have a
        // zone (so an EXDATE in another zone than DTSTART's still finds its instance).
        let window = self.window;
        let key = |local: NaiveDateTime| match zone {
            Zone::Utc | Zone::Tz(_) => zone.instant(local, window).naive_utc(),
            Zone::Dates | Zone::Floating => local,
        };
        let mut excluded = BTreeSet::new();
        for (line, exdate) in &master.exdates {
            excluded.insert(key(self.local_in(zone, exdate, *line, "EXDATE")?));
        }
        let mut moved: BTreeMap<NaiveDateTime, &Event> = BTreeMap::new();
        for o in overrides {
            let Some((line, id)) = &o.recurrence_id else {
                continue;
            };
            let k = key(self.local_in(zone, id, *line, "RECURRENCE-ID")?);
            if let Some(earlier) = moved.insert(k, o) {
                return Err(Problem::new(
                    *line,
                    format!(
                        "this instance is already overridden by the VEVENT at line {}: give \
                         each instance one override",
                        earlier.line
                    ),
                ));
            }
        }
        for local in starts {
            let k = key(local);
            if excluded.contains(&k) {
                continue;
            }
            if let Some(o) = moved.remove(&k) {
                self.single(o)?;
            } else if !master.cancelled {
                let (from, until) = self.span(master, local);
                self.push(from, until, master)?;
            }
        }
        // An override of an instance the rule does not have is still an event of the calendar,
        // as calendar programs show it (RFC 5545 lets RECURRENCE-ID name any instance).
        for (k, o) in moved {
            if !excluded.contains(&k) {
                self.single(o)?;
            }
        }
        Ok(())
    }

    /// Adds a single event: one without RRULE and RDATE, or an override.
    pub(super) fn single(&mut self, event: &Event) -> Result<(), Problem> {
        if event.cancelled {
            return Ok(());
        }
        if event.start.local().date() > self.last_day {
            self.truncated = true;
            return Ok(());
        }
        let (from, until) = self.span(event, event.start.local());
        self.push(from, until, event)
    }

    /// The local starts of `master`'s rule.
    fn rule(
        &mut self,
        master: &Event,
        rule: &Rule,
        line: usize,
    ) -> Result<Vec<NaiveDateTime>, Problem> {
        let zone = master.start.zone();
        let start = master.start.local();
        let within = self.until(rule, zone, line)?;
        let expansion = rule
            .expand(start, &*within, self.last_day, &mut self.budget)
            .map_err(|e| match e {
                ExpandError::Unsynchronised { first } => Problem::new(
                    line,
                    format!(
                        "DTSTART ({start}) is not an instance of this RRULE (its first from \
                         DTSTART on is {first}): RFC 5545 leaves such a set undefined and \
                         calendar programs disagree on it; set DTSTART to the rule's first \
                         instance"
                    ),
                ),
                ExpandError::Budget => {
                    self.gave_up = true;
                    Problem::new(
                        line,
                        format!(
                            "the calendar's rules take too long to expand (more than \
                         {MAX_DAYS_EXAMINED} days examined up to {}): give daily rules from long \
                         ago an end (COUNT or UNTIL) or a later DTSTART",
                            self.bound.format("%Y-%m-%d")
                        ),
                    )
                }
            })?;
        if expansion.starts.is_empty() && start.date() <= self.last_day {
            return Err(Problem::new(
                line,
                "this RRULE has no instance from DTSTART on (an UNTIL before DTSTART, or a day \
                 that never comes such as BYMONTH=2;BYMONTHDAY=30)"
                    .into(),
            ));
        }
        self.truncated |= expansion.truncated;
        Ok(expansion.starts)
    }

    /// Whether a local start is within the rule's UNTIL. UNTIL must be of DTSTART's kind (RFC
    /// 5545 3.3.10): a date for dates, a floating time for floating times, UTC for zoned times.
    /// Programs read the other mixes differently (Python's icalendar reads a floating UNTIL of
    /// a zoned event as UTC), so they are errors rather than a guess.
    #[allow(clippy::type_complexity)]
    fn until(
        &self,
        rule: &Rule,
        zone: Zone,
        line: usize,
    ) -> Result<Box<dyn Fn(NaiveDateTime) -> bool>, Problem> {
        let window = self.window;
        let mismatch = |until: &When, want: &str| {
            Problem::new(
                line,
                format!(
                    "UNTIL is {} but DTSTART is {}: RFC 5545 3.3.10 asks for UNTIL as {want}",
                    until.kind(),
                    match zone {
                        Zone::Dates => "a date",
                        Zone::Floating => "a floating date-time",
                        Zone::Utc | Zone::Tz(_) => "a date-time with a zone",
                    }
                ),
            )
        };
        Ok(match (rule.until, zone) {
            (None, _) => Box::new(|_| true),
            (Some(When::Date(last)), Zone::Dates) => Box::new(move |t| t.date() <= last),
            (Some(When::Floating(last)), Zone::Floating) => Box::new(move |t| t <= last),
            (Some(When::Utc(last)), Zone::Utc | Zone::Tz(_)) => {
                let last = last.and_utc();
                Box::new(move |t| zone.instant(t, window) <= last)
            }
            (Some(until), Zone::Dates) => return Err(mismatch(&until, "a date (UNTIL=20301231)")),
            (Some(until), Zone::Floating) => {
                return Err(mismatch(
                    &until,
                    "a date-time without Z (UNTIL=20301231T235959)",
                ));
            }
            (Some(until), Zone::Utc | Zone::Tz(_)) => {
                return Err(mismatch(&until, "a UTC date-time (UNTIL=20301231T225959Z)"));
            }
        })
    }

    /// An RDATE, EXDATE or RECURRENCE-ID as a local time in the event's zone; it must be of
    /// DTSTART's kind.
    fn local_in(
        &self,
        zone: Zone,
        value: &When,
        line: usize,
        property: &str,
    ) -> Result<NaiveDateTime, Problem> {
        match (zone, value) {
            (Zone::Dates, When::Date(_)) | (Zone::Floating, When::Floating(_)) => Ok(value.local()),
            (Zone::Utc | Zone::Tz(_), When::Utc(_) | When::Zoned(..)) => {
                Ok(zone.local(value.instant(self.window), self.window))
            }
            _ => Err(Problem::new(
                line,
                format!(
                    "{property} is {} but the event's DTSTART is {}: give it as DTSTART is",
                    value.kind(),
                    match zone {
                        Zone::Dates => "a date",
                        Zone::Floating => "a floating date-time (no zone)",
                        Zone::Utc | Zone::Tz(_) => "a date-time with a zone (Z or TZID)",
                    }
                ),
            )),
        }
    }

    /// The span of `event`'s instance starting at local time `local` (in its DTSTART's zone).
    fn span(&self, event: &Event, local: NaiveDateTime) -> (DateTime<Utc>, DateTime<Utc>) {
        let window = self.window;
        let zone = event.start.zone();
        let from = zone.instant(local, window);
        let until = match &event.end {
            End::OneDay => zone.instant(add(local, Duration::days(1)), window),
            End::At(end) if end.zone() == zone => {
                zone.instant(add(local, end.local() - event.start.local()), window)
            }
            End::At(end) => from + (end.instant(window) - event.start.instant(window)),
            End::After(length) => {
                zone.instant(add(local, Duration::days(length.days)), window)
                    + Duration::seconds(length.seconds)
            }
        };
        // A DTEND kept on the clock can fall before its start when the start is in a DST gap
        // (02:30–03:00 in a 02:00→03:00 gap): such an instance lasts no time.
        (from, until.max(from))
    }

    fn push(
        &mut self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        event: &Event,
    ) -> Result<(), Problem> {
        if start >= self.bound {
            self.truncated = true;
            return Ok(());
        }
        if self.out.len() >= MAX_OCCURRENCES {
            self.gave_up = true;
            return Err(Problem::new(
                event.line,
                format!(
                    "the calendar has more than {MAX_OCCURRENCES} occurrences before {}: give \
                     its long rules an end (COUNT or UNTIL)",
                    self.bound.format("%Y-%m-%d")
                ),
            ));
        }
        self.out.push(Occurrence {
            start,
            end,
            summary: event.summary.clone(),
            uid: event.uid.clone(),
            line: event.line,
        });
        Ok(())
    }
}

/// `local + d`, saturating (dates here are years 0–9999, far inside chrono's range).
fn add(local: NaiveDateTime, d: Duration) -> NaiveDateTime {
    local.checked_add_signed(d).unwrap_or(NaiveDateTime::MAX)
}
