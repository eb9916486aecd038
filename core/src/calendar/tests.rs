//! Hand-written cases: errors, the choices where programs differ (tested against the
//! published calendars and Python's expansion in `tests/ics_reference.rs`), and the lookups.

use super::*;
use chrono::{Duration, TimeZone};
use chrono_tz::{America::New_York, Europe::Berlin, Pacific::Auckland};
use proptest::prelude::*;

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// A calendar of `events` (each the inside of a VEVENT), for a window in `zone`.
fn calendar_in(zone: Tz, events: &[&str]) -> Result<Calendar, Vec<CalendarError>> {
    let mut text = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n");
    for event in events {
        text.push_str("BEGIN:VEVENT\r\n");
        for line in event.lines() {
            text.push_str(line.trim());
            text.push_str("\r\n");
        }
        text.push_str("END:VEVENT\r\n");
    }
    text.push_str("END:VCALENDAR\r\n");
    Calendar::parse("test", text, zone)
}

fn calendar(events: &[&str]) -> Calendar {
    calendar_in(Berlin, events).unwrap_or_else(|errors| panic!("{errors:#?}"))
}

/// The errors of a calendar that must not parse.
fn errors(events: &[&str]) -> Vec<CalendarError> {
    match calendar_in(Berlin, events) {
        Ok(c) => panic!("parsed: {:?}", c.occurrences()),
        Err(errors) => errors,
    }
}

/// The one error of a calendar, which must mention `needle`.
fn error(events: &[&str], needle: &str) -> CalendarError {
    let errors = errors(events);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].to_string().contains(needle),
        "{needle:?} not in {}",
        errors[0]
    );
    errors[0].clone()
}

fn spans(calendar: &Calendar) -> Vec<(String, String)> {
    calendar
        .occurrences()
        .iter()
        .map(|o| (o.start.to_rfc3339(), o.end.to_rfc3339()))
        .collect()
}

fn span(start: &str, end: &str) -> (String, String) {
    (utc(start).to_rfc3339(), utc(end).to_rfc3339())
}

// === errors ===

#[test]
fn an_unsupported_property_is_an_error_naming_the_uid_and_the_line() {
    let e = error(
        &["UID:release-freeze\nDTSTART;VALUE=DATE:20261224\nGEOFENCE:1;2"],
        "GEOFENCE",
    );
    // Line 1 BEGIN:VCALENDAR, 2 VERSION, 3 PRODID, 4 BEGIN:VEVENT, 5 UID, 6 DTSTART, 7.
    assert_eq!(e.line, 7);
    assert_eq!(e.uid.as_deref(), Some("release-freeze"));
    assert_eq!(e.calendar, "test");
    assert!(
        e.to_string()
            .starts_with("calendar \"test\", line 7 (event \"release-freeze\"): property GEOFENCE"),
        "{e}"
    );
}

#[test]
fn an_unsupported_rule_part_is_an_error_not_skipped() {
    let e = error(
        &["UID:a\nDTSTART:20260105T090000\nDTEND:20260105T100000\nRRULE:FREQ=WEEKLY;BYHOUR=9,15"],
        "BYHOUR is not supported",
    );
    assert_eq!((e.line, e.uid.as_deref()), (8, Some("a")));
    for (rule, needle) in [
        ("FREQ=HOURLY", "HOURLY"),
        ("FREQ=YEARLY;BYWEEKNO=20", "BYWEEKNO"),
        ("FREQ=YEARLY;BYYEARDAY=100", "BYYEARDAY"),
        ("FREQ=DAILY;BYMINUTE=30", "BYMINUTE"),
        ("FREQ=DAILY;X-NAME=1", "X-NAME"),
    ] {
        error(
            &[&format!(
                "UID:a\nDTSTART:20260105T090000\nDTEND:20260105T100000\nRRULE:{rule}"
            )],
            needle,
        );
    }
}

#[test]
fn what_could_change_when_an_event_is_is_refused() {
    let day = "UID:a\nDTSTART;VALUE=DATE:20260105";
    error(&[&format!("{day}\nEXRULE:FREQ=WEEKLY")], "EXRULE");
    error(
        &[&format!("{day}\nRDATE;VALUE=PERIOD:20260110T000000Z/PT1H")],
        "PERIOD",
    );
    error(
        &[&format!("{day}\nDTEND;VALUE=DATE:20260106\nDURATION:P1D")],
        "both",
    );
    error(&[&format!("{day}\nDTSTART;VALUE=DATE:20260107")], "twice");
    error(&[&format!("{day}\nSTATUS:POSTPONED")], "POSTPONED");
    error(
        &[
            "UID:a\nDTSTART;VALUE=DATE:20260105\nRRULE:FREQ=WEEKLY;COUNT=3",
            "UID:a\nRECURRENCE-ID;RANGE=THISANDFUTURE;VALUE=DATE:20260112\nDTSTART;VALUE=DATE:20260113",
        ],
        "THISANDFUTURE",
    );
    error(
        &["UID:a\nDTSTART;VALUE=DATE-TIME:20260105"],
        "not a date-time",
    );
    error(
        &[
            "UID:a\nDTSTART;VALUE=DATE:20260105\nRRULE:FREQ=WEEKLY;COUNT=3",
            "UID:a\nRECURRENCE-ID;VALUE=DATE:20260112\nDTSTART;VALUE=DATE:20260113\n\
             EXDATE;VALUE=DATE:20260119",
        ],
        "cannot have RRULE, RDATE or EXDATE",
    );
    let e = error(
        &[&format!("{day}\nBEGIN:VTODO\nEND:VTODO")],
        "VTODO inside a VEVENT",
    );
    assert_eq!(e.uid.as_deref(), Some("a"));
}

#[test]
fn harmless_and_x_properties_are_accepted() {
    let mut event = String::from(
        "UID:a\nSUMMARY;LANGUAGE=de;ALTREP=\"cid:x\":Feiertag\nDTSTART;VALUE=DATE:20260105",
    );
    for name in event::IGNORED {
        event.push_str(&format!(
            "\n{name};X-PARAM=1:anything at all; even 20260101"
        ));
    }
    event.push_str("\nX-APPLE-UNIVERSAL-ID:1\nX-MOZ-GENERATION:9\nSTATUS:CONFIRMED");
    event.push_str("\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT15M\nEND:VALARM");
    let c = calendar(&[&event]);
    assert_eq!(c.occurrences().len(), 1);
    assert_eq!(c.occurrences()[0].summary.as_deref(), Some("Feiertag"));
}

#[test]
fn a_time_zone_must_be_an_iana_zone() {
    let text = "BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:W. Europe Standard Time\nBEGIN:STANDARD\n\
                DTSTART:16010101T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nEND:STANDARD\n\
                END:VTIMEZONE\nBEGIN:VEVENT\nUID:a\n\
                DTSTART;TZID=W. Europe Standard Time:20260105T090000\n\
                DTEND;TZID=W. Europe Standard Time:20260105T100000\nEND:VEVENT\nEND:VCALENDAR\n";
    let errors = Calendar::parse("outlook", text, Berlin).unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_eq!((errors[0].line, errors[0].uid.as_deref()), (3, None));
    assert!(
        errors[0]
            .message
            .starts_with("VTIMEZONE: TZID \"W. Europe Standard Time\" is not an IANA time zone")
    );
    assert_eq!((errors[1].line, errors[1].uid.as_deref()), (12, Some("a")));
    // A TZID with a date: all-day events are the window's days.
    error(
        &["UID:a\nDTSTART;TZID=Europe/Paris;VALUE=DATE:20260105"],
        "cannot have a TZID",
    );
}

#[test]
fn a_vtimezone_is_checked_not_read_the_zone_database_decides() {
    // Offsets that are not Berlin's: ignored, Berlin's are used.
    let text = "BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:Europe/Berlin\nBEGIN:STANDARD\n\
                DTSTART:19700101T000000\nTZOFFSETFROM:+0500\nTZOFFSETTO:+0500\nEND:STANDARD\n\
                END:VTIMEZONE\nBEGIN:VEVENT\nUID:a\nDTSTART;TZID=Europe/Berlin:20260705T090000\n\
                DTEND;TZID=Europe/Berlin:20260705T100000\nEND:VEVENT\nEND:VCALENDAR\n";
    let c = Calendar::parse("t", text, New_York).unwrap();
    assert_eq!(
        spans(&c),
        [span("2026-07-05T07:00:00Z", "2026-07-05T08:00:00Z")]
    );
}

#[test]
fn events_that_last_no_time_or_end_first_are_errors() {
    error(&["UID:a\nDTSTART:20260105T090000"], "lasts no time");
    error(
        &["UID:a\nDTSTART:20260105T090000\nDTEND:20260105T090000"],
        "lasts no time",
    );
    error(
        &["UID:a\nDTSTART:20260105T090000\nDURATION:PT0S"],
        "lasts no time",
    );
    error(
        &["UID:a\nDTSTART:20260105T090000\nDTEND:20260105T080000"],
        "before DTSTART",
    );
    error(
        &["UID:a\nDTSTART;VALUE=DATE:20260105\nDTEND:20260106T000000"],
        "same kind",
    );
    error(
        &["UID:a\nDTSTART;VALUE=DATE:20260105\nDURATION:PT12H"],
        "whole days",
    );
    error(
        &["UID:a\nDTSTART;VALUE=DATE:20260105\nDURATION:-P1D"],
        "negative",
    );
}

#[test]
fn every_event_needs_its_own_uid() {
    let e = error(&["DTSTART;VALUE=DATE:20260105"], "no UID");
    assert_eq!((e.line, e.uid), (4, None));
    let e = error(
        &[
            "UID:a\nDTSTART;VALUE=DATE:20260105",
            "UID:a\nDTSTART;VALUE=DATE:20260107",
        ],
        "line 4 has this UID already",
    );
    assert_eq!(e.line, 8);
    error(&["UID:a"], "no DTSTART");
}

#[test]
fn a_dtstart_that_is_not_an_instance_of_its_rule_is_an_error() {
    // 2026-01-01 is a Thursday, not the last Friday of January: Python adds it as an extra
    // instance, RFC 5545 leaves it undefined.
    let e = error(
        &["UID:a\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=3"],
        "not an instance of this RRULE (its first from DTSTART on is 2026-01-30",
    );
    assert_eq!(e.line, 7);
    error(
        &["UID:a\nDTSTART;VALUE=DATE:20260201\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"],
        "no instance",
    );
}

#[test]
fn until_must_be_of_dtstarts_kind() {
    error(
        &["UID:a\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=DAILY;UNTIL=20260102T230000Z"],
        "UNTIL is a UTC date-time but DTSTART is a date",
    );
    error(
        &[
            "UID:a\nDTSTART;TZID=America/New_York:20260101T100000\nDURATION:PT1H\n\
             RRULE:FREQ=DAILY;UNTIL=20260103T100000",
        ],
        "UNTIL is a floating date-time (no zone) but DTSTART is a date-time with a zone",
    );
    error(
        &["UID:a\nDTSTART:20260101T100000\nDURATION:PT1H\nRRULE:FREQ=DAILY;UNTIL=20260103"],
        "UNTIL is a date",
    );
    error(
        &["UID:a\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=DAILY;COUNT=3\nEXDATE:20260102T000000Z"],
        "EXDATE is a UTC date-time but the event's DTSTART is a date",
    );
}

#[test]
fn every_error_is_reported_at_once_sorted_by_line() {
    let errors = errors(&[
        "UID:a\nDTSTART;VALUE=DATE:20260101\nFOO:1",
        "UID:b\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=SECONDLY",
        "UID:c\nDTSTART:nonsense",
    ]);
    let lines: Vec<(usize, Option<&str>)> =
        errors.iter().map(|e| (e.line, e.uid.as_deref())).collect();
    assert_eq!(lines, [(7, Some("a")), (12, Some("b")), (16, Some("c"))]);
}

#[test]
fn errors_are_capped() {
    let event: String = (0..200).map(|i| format!("BAD-{i}:x\n")).collect();
    let errors = errors(&[&format!("UID:a\nDTSTART;VALUE=DATE:20260101\n{event}")]);
    assert_eq!(errors.len(), MAX_ERRORS);
    assert_eq!(errors[MAX_ERRORS - 1].message, "… and 151 more errors");
}

#[test]
fn the_structure_and_calendar_properties_are_checked() {
    let parse = |text: &str| Calendar::parse("t", text, Berlin).unwrap_err();
    let e = parse("BEGIN:VCALENDAR\nCALSCALE:JULIAN\nEND:VCALENDAR\n");
    assert!(e[0].message.contains("JULIAN"), "{e:?}");
    let e = parse("BEGIN:VCALENDAR\nBEGIN:VTODO\nUID:a\nEND:VTODO\nEND:VCALENDAR\n");
    assert!(e[0].message.contains("VTODO is not supported"), "{e:?}");
    let e = parse("BEGIN:VCALENDAR\nFOO:1\nEND:VCALENDAR\n");
    assert!(e[0].message.contains("FOO"), "{e:?}");
    let e = parse("SUMMARY:x\n");
    assert!(e[0].message.contains("outside BEGIN:VCALENDAR"), "{e:?}");
    let e = parse("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\n");
    assert!(e[0].message.contains("never closed"), "{e:?}");
    // X- components, BOM, LF line ends and blank lines are fine.
    let ok = Calendar::parse(
        "t",
        "\u{feff}BEGIN:VCALENDAR\n\nX-WR-CALNAME:x\nBEGIN:X-THING\nFOO:1\nEND:X-THING\nEND:VCALENDAR\n\n",
        Berlin,
    )
    .unwrap();
    assert!(ok.occurrences().is_empty());
}

// === when events are ===

#[test]
fn a_date_is_a_whole_day_in_the_windows_zone() {
    let event = "UID:a\nDTSTART;VALUE=DATE:20261224";
    let day = |zone| spans(&calendar_in(zone, &[event]).unwrap());
    assert_eq!(
        day(Berlin),
        [span("2026-12-23T23:00:00Z", "2026-12-24T23:00:00Z")]
    );
    assert_eq!(
        day(Auckland),
        [span("2026-12-23T11:00:00Z", "2026-12-24T11:00:00Z")]
    );
    assert_eq!(
        day(New_York),
        [span("2026-12-24T05:00:00Z", "2026-12-25T05:00:00Z")]
    );
    // The day of a DST change is 23 hours long.
    let c = calendar(&["UID:a\nDTSTART;VALUE=DATE:20260329\nDURATION:P1D"]);
    assert_eq!(
        spans(&c),
        [span("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z")]
    );
}

#[test]
fn floating_times_are_in_the_windows_zone_zoned_and_utc_times_are_not() {
    let events = [
        "UID:floating\nDTSTART:20260705T090000\nDTEND:20260705T100000",
        "UID:zoned\nDTSTART;TZID=Asia/Tokyo:20260705T090000\nDTEND;TZID=Asia/Tokyo:20260705T100000",
        "UID:utc\nDTSTART:20260705T090000Z\nDTEND:20260705T100000Z",
    ];
    let starts = |zone| -> Vec<(String, String)> {
        calendar_in(zone, &events)
            .unwrap()
            .occurrences()
            .iter()
            .map(|o| (o.uid.to_string(), o.start.to_rfc3339()))
            .collect()
    };
    let mut berlin = starts(Berlin);
    berlin.sort();
    assert_eq!(
        berlin,
        [
            ("floating".into(), "2026-07-05T07:00:00+00:00".into()),
            ("utc".into(), "2026-07-05T09:00:00+00:00".into()),
            ("zoned".into(), "2026-07-05T00:00:00+00:00".into()),
        ]
    );
    let mut york = starts(New_York);
    york.sort();
    assert_eq!(
        york[0],
        ("floating".into(), "2026-07-05T13:00:00+00:00".into())
    );
    assert_eq!(york[1..], berlin[1..]);
}

#[test]
fn dtend_keeps_the_clock_and_duration_hours_are_elapsed_across_dst() {
    // 22:00–06:00 nightly: the night of the spring change is 7 hours, ending 06:00 CEST.
    let c = calendar(&["UID:a\nDTSTART;TZID=Europe/Berlin:20260327T220000\n\
         DTEND;TZID=Europe/Berlin:20260328T060000\nRRULE:FREQ=DAILY;COUNT=3"]);
    assert_eq!(
        spans(&c),
        [
            span("2026-03-27T21:00:00Z", "2026-03-28T05:00:00Z"),
            span("2026-03-28T21:00:00Z", "2026-03-29T04:00:00Z"),
            span("2026-03-29T20:00:00Z", "2026-03-30T04:00:00Z"),
        ]
    );
    // PT8H is eight hours whatever the clock does (RFC 5545 3.3.6), so 07:00 CEST; Python
    // (recurring-ical-events) adds it on the clock and says 06:00. P1D is a day on the clock.
    let c = calendar(&[
        "UID:a\nDTSTART;TZID=Europe/Berlin:20260328T220000\nDURATION:PT8H",
        "UID:b\nDTSTART;TZID=Europe/Berlin:20260328T120000\nDURATION:P1D",
        "UID:c\nDTSTART;TZID=Europe/Berlin:20260328T000000\nDURATION:P1DT12H",
    ]);
    let by_uid = |uid: &str| {
        let o = c.occurrences().iter().find(|o| &*o.uid == uid).unwrap();
        (o.start.to_rfc3339(), o.end.to_rfc3339())
    };
    assert_eq!(
        by_uid("a"),
        span("2026-03-28T21:00:00Z", "2026-03-29T05:00:00Z")
    );
    assert_eq!(
        by_uid("b"),
        span("2026-03-28T11:00:00Z", "2026-03-29T10:00:00Z")
    );
    // P1DT12H: a day on the clock to 00:00 CET, then 12 hours: 13:00 CEST.
    assert_eq!(
        by_uid("c"),
        span("2026-03-27T23:00:00Z", "2026-03-29T11:00:00Z")
    );
    // A DTEND in another zone than DTSTART keeps the exact length instead.
    let c = calendar(&[
        "UID:a\nDTSTART;TZID=Europe/Berlin:20260327T220000\nDTEND:20260328T050000Z\n\
         RRULE:FREQ=DAILY;COUNT=2",
    ]);
    assert_eq!(
        spans(&c)[1],
        span("2026-03-28T21:00:00Z", "2026-03-29T05:00:00Z")
    );
}

#[test]
fn an_instance_squeezed_to_nothing_by_a_gap_is_never_in_force() {
    // 02:30–03:00 on the spring change: 02:30 reads as 03:30 CEST, after 03:00.
    let c = calendar(&["UID:a\nDTSTART;TZID=Europe/Berlin:20260322T023000\n\
         DTEND;TZID=Europe/Berlin:20260322T030000\nRRULE:FREQ=WEEKLY;COUNT=2"]);
    let squeezed = &c.occurrences()[1];
    assert_eq!(squeezed.start, squeezed.end);
    assert_eq!(c.at(squeezed.start), None);
    assert_eq!(c.next_edge_after(utc("2026-03-23T00:00:00Z")), None);
}

#[test]
fn cancelled_events_and_instances_are_left_out() {
    let c = calendar(&[
        "UID:a\nDTSTART;VALUE=DATE:20260105\nRRULE:FREQ=WEEKLY;COUNT=3",
        "UID:a\nRECURRENCE-ID;VALUE=DATE:20260112\nDTSTART;VALUE=DATE:20260112\nSTATUS:CANCELLED",
        "UID:b\nDTSTART;VALUE=DATE:20260106\nSTATUS:CANCELLED",
    ]);
    let days: Vec<String> = c
        .occurrences()
        .iter()
        .map(|o| {
            o.start
                .with_timezone(&Berlin)
                .format("%m-%d %a")
                .to_string()
        })
        .collect();
    assert_eq!(days, ["01-05 Mon", "01-19 Mon"]);
}

#[test]
fn an_override_moves_its_instance_and_says_its_own_summary() {
    let c = calendar(&[
        "UID:gf\nSUMMARY:Good Friday\nDTSTART;VALUE=DATE:20260402\nDTEND;VALUE=DATE:20260403\n\
         RRULE:FREQ=YEARLY;UNTIL=20270430",
        "UID:gf\nSUMMARY:Good Friday (moved)\nRECURRENCE-ID;VALUE=DATE:20270402\n\
         DTSTART;VALUE=DATE:20270326\nDTEND;VALUE=DATE:20270327",
    ]);
    let got: Vec<(String, Option<&str>)> = c
        .occurrences()
        .iter()
        .map(|o| (o.start.to_rfc3339(), o.summary.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("2026-04-01T22:00:00+00:00".into(), Some("Good Friday")),
            (
                "2027-03-25T23:00:00+00:00".into(),
                Some("Good Friday (moved)")
            ),
        ]
    );
    error(
        &[
            "UID:gf\nDTSTART;VALUE=DATE:20260402\nRRULE:FREQ=YEARLY;COUNT=2",
            "UID:gf\nRECURRENCE-ID;VALUE=DATE:20270402\nDTSTART;VALUE=DATE:20270326",
            "UID:gf\nRECURRENCE-ID;VALUE=DATE:20270402\nDTSTART;VALUE=DATE:20270327",
        ],
        "already overridden by the VEVENT at line",
    );
}

#[test]
fn rules_without_an_end_are_expanded_until_2100_and_say_so() {
    let c = calendar(&["UID:a\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY"]);
    assert_eq!(c.expanded_until(), Some(utc("2100-01-01T00:00:00Z")));
    // 2026..=2099 (New Year's Day 2100 begins in Berlin before 2100 begins in UTC).
    assert_eq!(c.occurrences().len(), 75);
    let c = calendar(&["UID:a\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;COUNT=9"]);
    assert_eq!(c.expanded_until(), None);
    let c = calendar(&["UID:a\nDTSTART;VALUE=DATE:21050101"]);
    assert_eq!(c.expanded_until(), Some(utc("2100-01-01T00:00:00Z")));
    assert!(c.occurrences().is_empty());
}

#[test]
fn a_calendar_too_big_to_expand_is_an_error() {
    let e = error(
        &["UID:a\nDTSTART:18000101T000000Z\nDTEND:18000101T010000Z\nRRULE:FREQ=DAILY"],
        "more than 100000 occurrences",
    );
    assert_eq!(e.uid.as_deref(), Some("a"));
    let rules: Vec<String> = (0..20)
        .map(|i| {
            format!(
                "UID:{i}\nDTSTART;VALUE=DATE:10000101\nRRULE:FREQ=DAILY;BYMONTHDAY=-31,31;BYMONTH=2"
            )
        })
        .collect();
    let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
    let errors = errors(&rules);
    // The rules before the budget ran out have no instance; the one it ran out on says so,
    // and the rest are not expanded.
    let budget: Vec<_> = errors
        .iter()
        .filter(|e| e.message.contains("take too long to expand"))
        .collect();
    assert_eq!(budget.len(), 1, "{errors:#?}");
    assert!(errors.len() < 20, "{errors:#?}");
}

// === lookups ===

/// Berlin days: a long freeze 1–14 March with a shorter one on 1–2 March and one day inside,
/// another right after (15–16), and one on the 20th.
fn overlapping() -> Calendar {
    calendar(&[
        "UID:long\nSUMMARY:Long\nDTSTART;VALUE=DATE:20270301\nDTEND;VALUE=DATE:20270315",
        "UID:same-start\nDTSTART;VALUE=DATE:20270301\nDTEND;VALUE=DATE:20270303",
        "UID:inside\nDTSTART;VALUE=DATE:20270305",
        "UID:after\nDTSTART;VALUE=DATE:20270315\nDTEND;VALUE=DATE:20270317",
        "UID:later\nDTSTART;VALUE=DATE:20270320",
    ])
}

/// Midnight starting `day` of March 2027 in Berlin.
fn march(day: u32) -> DateTime<Utc> {
    Berlin
        .with_ymd_and_hms(2027, 3, day, 0, 0, 0)
        .unwrap()
        .to_utc()
}

#[test]
fn at_reports_the_occurrence_that_began_first_then_the_longest() {
    let c = overlapping();
    let uid = |t| c.at(t).map(|o| o.uid.to_string());
    assert_eq!(uid(march(1) - Duration::seconds(1)), None);
    assert_eq!(uid(march(1)).as_deref(), Some("long"));
    assert_eq!(uid(march(5)).as_deref(), Some("long"));
    assert_eq!(
        uid(march(15) - Duration::seconds(1)).as_deref(),
        Some("long")
    );
    assert_eq!(uid(march(15)).as_deref(), Some("after"));
    assert_eq!(uid(march(18)), None);
    assert_eq!(uid(march(20)).as_deref(), Some("later"));
    assert_eq!(c.at(march(1)).unwrap().summary.as_deref(), Some("Long"));
}

#[test]
fn edges_are_every_start_and_end() {
    let c = overlapping();
    assert_eq!(
        c.next_edge_after(march(1) - Duration::days(30)),
        Some(march(1))
    );
    assert_eq!(c.next_edge_after(march(1)), Some(march(3)));
    assert_eq!(c.next_edge_after(march(3)), Some(march(5)));
    assert_eq!(c.next_edge_after(march(5)), Some(march(6)));
    assert_eq!(c.next_edge_after(march(6)), Some(march(15)));
    assert_eq!(c.next_edge_after(march(21)), None);
    assert_eq!(
        c.last_edge_at_or_before(march(1) - Duration::seconds(1)),
        None
    );
    assert_eq!(c.last_edge_at_or_before(march(1)), Some(march(1)));
    assert_eq!(c.last_edge_at_or_before(march(4)), Some(march(3)));
    assert_eq!(c.last_edge_at_or_before(march(30)), Some(march(21)));
}

#[test]
fn runs_merge_overlapping_and_abutting_occurrences() {
    let c = overlapping();
    let run = |in_force, since, until| Run {
        in_force,
        since,
        until,
    };
    assert_eq!(
        c.run_at(march(1) - Duration::days(1)),
        run(false, None, Some(march(1)))
    );
    assert_eq!(
        c.run_at(march(1)),
        run(true, Some(march(1)), Some(march(17)))
    );
    assert_eq!(
        c.run_at(march(16)),
        run(true, Some(march(1)), Some(march(17)))
    );
    assert_eq!(
        c.run_at(march(17)),
        run(false, Some(march(17)), Some(march(20)))
    );
    assert_eq!(
        c.run_at(march(20)),
        run(true, Some(march(20)), Some(march(21)))
    );
    assert_eq!(c.run_at(march(25)), run(false, Some(march(21)), None));
    let empty = calendar(&[]);
    assert_eq!(empty.run_at(march(1)), run(false, None, None));
    assert_eq!(empty.at(march(1)), None);
    assert_eq!(empty.next_edge_after(march(1)), None);
}

// === never panics ===

/// Lines that reach every part of the parser, with values from a small vocabulary so that the
/// combinations are mostly meaningful.
fn ical_line() -> impl Strategy<Value = String> {
    let names = prop::sample::select(vec![
        "BEGIN",
        "END",
        "UID",
        "SUMMARY",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "RECURRENCE-ID",
        "STATUS",
        "TZID",
        "X-FOO",
        "DTSTAMP",
        "CALSCALE",
    ]);
    let params = prop::sample::select(vec![
        "",
        ";VALUE=DATE",
        ";VALUE=DATE-TIME",
        ";TZID=Europe/Berlin",
        ";TZID=Pacific/Auckland",
        ";TZID=\"Nowhere\"",
        ";RANGE=THISANDFUTURE",
        ";VALUE=PERIOD",
        ";X=\"a:b\"",
    ]);
    let values = prop::sample::select(vec![
        "VCALENDAR",
        "VEVENT",
        "VTIMEZONE",
        "VALARM",
        "20260329",
        "20260329T023000",
        "20261025T023000Z",
        "00000101T000000",
        "99991231T235959",
        "20260229",
        "P1D",
        "PT1H",
        "P99999W",
        "-PT1H",
        "FREQ=DAILY",
        "FREQ=DAILY;INTERVAL=10000",
        "FREQ=YEARLY;BYDAY=-53MO,53SU",
        "FREQ=MONTHLY;BYDAY=-1FR;BYSETPOS=-366,366",
        "FREQ=WEEKLY;WKST=SU;BYDAY=MO,SU;COUNT=4294967295",
        "FREQ=YEARLY;UNTIL=99991231",
        "FREQ=MONTHLY;BYMONTHDAY=-31,31;UNTIL=20300101T000000Z",
        "CANCELLED",
        "20260101,20260102T000000Z",
        "x",
        "",
    ]);
    prop_oneof![
        (names, params, values).prop_map(|(n, p, v)| format!("{n}{p}:{v}")),
        "[ -~]{0,40}",
        Just(" folded".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Calendar::parse("fuzz", &bytes, Berlin);
    }

    #[test]
    fn parsing_calendar_like_text_never_panics(
        lines in prop::collection::vec(ical_line(), 0..30),
        t in -5_000_000_000i64..5_000_000_000,
    ) {
        let text = format!(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:p\r\n{}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            lines.join("\r\n")
        );
        if let Ok(calendar) = Calendar::parse("fuzz", &text, Auckland) {
            let t = DateTime::from_timestamp(t, 0).unwrap();
            let _ = calendar.at(t);
            let _ = calendar.next_edge_after(t);
            let _ = calendar.last_edge_at_or_before(t);
            let run = calendar.run_at(t);
            prop_assert_eq!(run.in_force, calendar.at(t).is_some());
        }
    }
}
