//! A VEVENT's properties, read and checked one by one: which fluxgate uses, which it accepts and
//! ignores, and which it refuses.
//!
//! Used: UID, SUMMARY, DTSTART, DTEND, DURATION, RRULE, RDATE, EXDATE, RECURRENCE-ID, STATUS.
//! Accepted and ignored, because they say nothing about when the event is (see [`IGNORED`]):
//! bookkeeping (DTSTAMP, CREATED, LAST-MODIFIED, SEQUENCE), description (DESCRIPTION, LOCATION,
//! CATEGORIES, COMMENT, URL, ...), people (ORGANIZER, ATTENDEE, CONTACT), display (CLASS,
//! TRANSP, PRIORITY, COLOR), every `X-` property and VALARM reminders. Anything else is an
//! error naming the event and the line: EXRULE, for one, removes instances, and skipping it
//! would freeze days the calendar does not mean.

use super::Problem;
use super::lines::{Component, Line, shorten, unescape_text};
use super::rrule::Rule;
use super::values::{Length, When, list_item, parse_duration, when};
use chrono_tz::Tz;
use std::sync::Arc;

/// Properties of a VEVENT that do not bear on when it is, accepted and not read (RFC 5545 3.6.1
/// and RFC 7986's COLOR, IMAGE, CONFERENCE).
pub(super) const IGNORED: &[&str] = &[
    "DTSTAMP",
    "CREATED",
    "LAST-MODIFIED",
    "SEQUENCE",
    "CLASS",
    "TRANSP",
    "PRIORITY",
    "CATEGORIES",
    "DESCRIPTION",
    "LOCATION",
    "GEO",
    "URL",
    "COMMENT",
    "CONTACT",
    "ORGANIZER",
    "ATTENDEE",
    "RESOURCES",
    "ATTACH",
    "RELATED-TO",
    "REQUEST-STATUS",
    "COLOR",
    "IMAGE",
    "CONFERENCE",
];

/// One VEVENT, checked.
#[derive(Debug)]
pub(super) struct Event {
    /// The line of its BEGIN:VEVENT.
    pub(super) line: usize,
    pub(super) uid: Arc<str>,
    pub(super) summary: Option<Arc<str>>,
    pub(super) start: When,
    pub(super) end: End,
    pub(super) rule: Option<(usize, Rule)>,
    pub(super) rdates: Vec<(usize, When)>,
    pub(super) exdates: Vec<(usize, When)>,
    pub(super) recurrence_id: Option<(usize, When)>,
    /// STATUS:CANCELLED: the event (or this instance, in an override) does not take place.
    pub(super) cancelled: bool,
}

/// How an event's end is given.
#[derive(Debug)]
pub(super) enum End {
    /// DTEND.
    At(When),
    /// DURATION.
    After(Length),
    /// Neither: an all-day event lasts its day (RFC 5545 3.6.1).
    OneDay,
}

/// Reads a VEVENT; every problem found, with the event's UID once known.
pub(super) fn read(
    component: &Component,
    window: Tz,
) -> Result<Event, (Option<Arc<str>>, Vec<Problem>)> {
    let mut problems = Vec::new();
    let mut uid = None;
    let mut summary = None;
    let mut start = None;
    let mut dtend = None;
    let mut duration = None;
    let mut rule = None;
    let mut rdates = Vec::new();
    let mut exdates = Vec::new();
    let mut recurrence_id = None;
    let mut cancelled = false;
    for property in &component.properties {
        let line = match property {
            Ok(line) => line,
            Err((number, message)) => {
                problems.push(Problem::new(*number, message.clone()));
                continue;
            }
        };
        let mut fail = |message: String| problems.push(Problem::new(line.number, message));
        match line.name.as_str() {
            "UID" => once(&mut uid, line, unescape_text(line.value.trim()), &mut fail),
            "SUMMARY" => once(&mut summary, line, unescape_text(&line.value), &mut fail),
            "DTSTART" | "DTEND" | "RECURRENCE-ID" => {
                if line.name == "RECURRENCE-ID"
                    && let Some(range) = line.param_value("RANGE")
                {
                    fail(format!(
                        "RECURRENCE-ID;RANGE={range} (an override of this and all later \
                         instances) is not supported: give each moved instance its own override, \
                         or split the event in two"
                    ));
                    continue;
                }
                match when(line) {
                    Ok(value) => {
                        let slot = match line.name.as_str() {
                            "DTSTART" => &mut start,
                            "DTEND" => &mut dtend,
                            _ => &mut recurrence_id,
                        };
                        once(slot, line, (line.number, value), &mut fail);
                    }
                    Err(message) => fail(message),
                }
            }
            "DURATION" => match parse_duration(&line.value) {
                Ok(length) => once(&mut duration, line, (line.number, length), &mut fail),
                Err(message) => fail(message),
            },
            "RRULE" => match Rule::parse(&line.value) {
                Ok(parsed) => once(&mut rule, line, (line.number, parsed), &mut fail),
                Err(message) => fail(message),
            },
            "RDATE" | "EXDATE" => match date_list(line) {
                Ok(values) => {
                    let list = if line.name == "RDATE" {
                        &mut rdates
                    } else {
                        &mut exdates
                    };
                    list.extend(values.into_iter().map(|v| (line.number, v)));
                }
                Err(message) => fail(message),
            },
            "STATUS" => match line.value.trim().to_ascii_uppercase().as_str() {
                "CANCELLED" => cancelled = true,
                "CONFIRMED" | "TENTATIVE" => {}
                other => fail(format!(
                    "STATUS:{} is not an event status (TENTATIVE, CONFIRMED, CANCELLED)",
                    shorten(other)
                )),
            },
            "EXRULE" => fail(
                "EXRULE is not supported (RFC 5545 deprecated it): list the instances to skip \
                 with EXDATE"
                    .into(),
            ),
            name if name.starts_with("X-") || IGNORED.contains(&name) => {}
            name => fail(format!(
                "property {name} is not supported in a VEVENT: fluxgate reads UID, SUMMARY, \
                 DTSTART, DTEND, DURATION, RRULE, RDATE, EXDATE, RECURRENCE-ID and STATUS, \
                 ignores X- properties and {}, and refuses the rest rather than guess what \
                 they change",
                IGNORED.join(", ")
            )),
        }
    }
    for child in &component.children {
        if child.name != "VALARM" && !child.name.starts_with("X-") {
            problems.push(Problem::new(
                child.line,
                format!(
                    "a {} inside a VEVENT is not supported (only VALARM, which is ignored)",
                    child.name
                ),
            ));
        }
    }
    let uid: Option<Arc<str>> = uid.map(|u: String| Arc::from(u.as_str()));
    if uid.is_none() {
        problems.push(Problem::new(
            component.line,
            "the VEVENT has no UID: give it one (RFC 5545 requires it, and overrides find their \
             event by it)"
                .into(),
        ));
    }
    let Some((start_line, start)) = start else {
        // A DTSTART that did not parse has said so already.
        if component
            .properties
            .iter()
            .flatten()
            .any(|line| line.name == "DTSTART")
        {
            return Err((uid, problems));
        }
        problems.push(Problem::new(
            component.line,
            "the VEVENT has no DTSTART: say when it begins (DTSTART;VALUE=DATE:20261224 for a \
             whole day)"
                .into(),
        ));
        return Err((uid, problems));
    };
    let end = match (dtend, duration) {
        (Some(_), Some((line, _))) => {
            problems.push(Problem::new(
                line,
                "DTEND and DURATION both given: give one".into(),
            ));
            End::OneDay
        }
        (Some((line, end)), None) => {
            if let Err(message) = check_end(&start, &end, window) {
                problems.push(Problem::new(line, message));
            }
            End::At(end)
        }
        (None, Some((line, length))) => {
            if start.is_date() && length.seconds % 86_400 != 0 {
                problems.push(Problem::new(
                    line,
                    "an all-day event (DTSTART a date) lasts whole days: write its DURATION in \
                     days or weeks (P1D, P2W)"
                        .into(),
                ));
            } else if length.days == 0 && length.seconds == 0 {
                problems.push(Problem::new(line, zero_length()));
            }
            End::After(length)
        }
        (None, None) if start.is_date() => End::OneDay,
        (None, None) => {
            problems.push(Problem::new(start_line, zero_length()));
            End::OneDay
        }
    };
    if let Some((id_line, _)) = recurrence_id {
        // An override is one instance: it has no recurrence of its own.
        let lines = rule.iter().map(|(line, _)| *line);
        let lines = lines.chain(rdates.iter().chain(&exdates).map(|(line, _)| *line));
        if let Some(line) = lines.min() {
            problems.push(Problem::new(
                line,
                format!(
                    "an override (RECURRENCE-ID, line {id_line}) is one instance: it cannot have \
                     RRULE, RDATE or EXDATE (give them to the event it overrides)"
                ),
            ));
        }
    }
    match uid {
        Some(uid) if problems.is_empty() => Ok(Event {
            line: component.line,
            uid,
            summary: summary.map(|s: String| Arc::from(s.as_str())),
            start,
            end,
            rule,
            rdates,
            exdates,
            recurrence_id,
            cancelled,
        }),
        uid => Err((uid, problems)),
    }
}

/// Stores the value of a property that may appear once.
fn once<T>(slot: &mut Option<T>, line: &Line, value: T, fail: &mut impl FnMut(String)) {
    if slot.is_some() {
        fail(format!("{} is given twice in one VEVENT", line.name));
    } else {
        *slot = Some(value);
    }
}

/// DTEND after DTSTART, and of its kind: a date with a date, a date-time with a date-time.
fn check_end(start: &When, end: &When, window: Tz) -> Result<(), String> {
    if start.is_date() != end.is_date() {
        return Err(format!(
            "DTEND is {} but DTSTART is {}: RFC 5545 asks for the same kind",
            end.kind(),
            start.kind()
        ));
    }
    let (start, end) = (start.instant(window), end.instant(window));
    if end <= start {
        return Err(if end == start {
            zero_length()
        } else {
            "DTEND is before DTSTART".into()
        });
    }
    Ok(())
}

fn zero_length() -> String {
    "the event lasts no time (a date-time DTSTART without DTEND or DURATION ends as it starts, \
     RFC 5545 3.6.1), so it would freeze nothing: give it a DTEND after DTSTART or a DURATION"
        .into()
}

/// The values of an RDATE or EXDATE: a comma-separated list of dates or date-times, in its
/// TZID if it has one. PERIOD values are refused.
fn date_list(line: &Line) -> Result<Vec<When>, String> {
    let date = match line
        .param_value("VALUE")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("DATE") => Some(true),
        Some("DATE-TIME") => Some(false),
        None => None,
        Some("PERIOD") => {
            return Err(format!(
                "{}: VALUE=PERIOD is not supported: give the instance's start (its length is \
                 the event's), or write the period as an event of its own",
                line.name
            ));
        }
        Some(other) => {
            return Err(format!(
                "{}: VALUE={other} is not supported (only DATE and DATE-TIME)",
                line.name
            ));
        }
    };
    line.value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            list_item(
                v,
                line.param_value("TZID"),
                date.unwrap_or(v.len() == 8),
                &line.name,
            )
        })
        .collect()
}
