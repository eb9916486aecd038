//! Our iCalendar expansion against an independent one: Python's icalendar with
//! recurring-ical-events (PyPI).
//!
//! `tests/fixtures/ics-reference.json` holds the occurrences that Python found in each calendar
//! of `tests/fixtures/ics/` (four published holiday calendars and one written for what they do
//! not exercise) for windows in Europe/Berlin, America/New_York and Pacific/Auckland, from 2020
//! to 2035; `tools/gen-ics-reference.py` writes it and says where the two knowingly differ.
//! Here the occurrences are compared one by one, then every hour of 2026–2030 and every edge
//! (and the second before it) is asked what is in force, where the next and last edges are and
//! which run it is in, against answers worked out from Python's occurrences.
//!
//! A third, separate check: the Easter-dependent German holidays fall where the Gregorian
//! Easter computus puts them, on every day of 2026–2030, in every zone.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use fluxgate_core::calendar::{Calendar, Run};
use serde::Deserialize;
use std::path::Path;

const FIXTURE: &str = include_str!("fixtures/ics-reference.json");

#[derive(Deserialize)]
struct Fixture {
    icalendar_version: String,
    recurring_ical_events_version: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    calendar: String,
    zone: String,
    occurrences: Vec<Reference>,
}

/// (start, end, UID, SUMMARY), as Python expanded it.
type Reference = (DateTime<Utc>, DateTime<Utc>, String, Option<String>);

fn fixture() -> Fixture {
    serde_json::from_str(FIXTURE).expect("ics-reference.json parses")
}

fn parse(name: &str, zone: Tz) -> Calendar {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ics")
        .join(name);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Calendar::parse(name, text, zone).unwrap_or_else(|errors| {
        panic!(
            "{name} in {zone}: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// Collects mismatches so that one run reports all of them.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn assert_none(self, compared: usize, what: &str) {
        let Failures(failures) = self;
        assert!(
            failures.is_empty(),
            "{} of {compared} {what} differ from recurring-ical-events; the first ones:\n{}",
            failures.len(),
            failures
                .iter()
                .take(40)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        println!("{compared} {what} compared with recurring-ical-events");
    }
}

#[test]
fn the_fixture_covers_every_calendar_in_three_zones() {
    let fixture = fixture();
    assert!(!fixture.icalendar_version.is_empty());
    assert!(!fixture.recurring_ical_events_version.is_empty());
    assert_eq!(fixture.cases.len(), 5 * 3);
    for zone in ["Europe/Berlin", "America/New_York", "Pacific/Auckland"] {
        for calendar in [
            "de-be-public.ics",
            "de-by-ferien.ics",
            "UKHolidays-EnglandWales.ics",
            "AlbanianHolidays.ics",
            "fluxgate-rules.ics",
        ] {
            let case = fixture
                .cases
                .iter()
                .find(|c| c.calendar == calendar && c.zone == zone)
                .unwrap_or_else(|| panic!("{calendar} in {zone} is missing"));
            assert!(case.occurrences.len() >= 40, "{calendar} in {zone}");
        }
    }
}

/// Every occurrence starting in 2020–2035, with its span, UID and SUMMARY.
#[test]
fn occurrences_agree_with_recurring_ical_events() {
    let fixture = fixture();
    let mut failures = Failures::default();
    let mut compared = 0;
    for case in &fixture.cases {
        let zone: Tz = case.zone.parse().unwrap();
        let calendar = parse(&case.calendar, zone);
        let mut ours: Vec<Reference> = calendar
            .occurrences()
            .iter()
            .filter(|o| fixture.from <= o.start && o.start < fixture.to)
            .map(|o| {
                (
                    o.start,
                    o.end,
                    o.uid.to_string(),
                    o.summary.as_deref().map(str::to_owned),
                )
            })
            .collect();
        ours.sort();
        let mut theirs = case.occurrences.clone();
        theirs.sort();
        compared += theirs.len();
        for o in theirs.iter().filter(|o| !ours.contains(o)) {
            failures
                .0
                .push(format!("{} in {}: we miss {o:?}", case.calendar, case.zone));
        }
        for o in ours.iter().filter(|o| !theirs.contains(o)) {
            failures.0.push(format!(
                "{} in {}: we have {o:?}, which Python has not",
                case.calendar, case.zone
            ));
        }
    }
    failures.assert_none(compared, "occurrences");
}

/// What Python's occurrences say about an instant.
struct Expected {
    /// The occurrences with a span, sorted.
    spans: Vec<Reference>,
    edges: Vec<DateTime<Utc>>,
    longest: Duration,
}

impl Expected {
    fn new(occurrences: &[Reference]) -> Self {
        let mut spans: Vec<Reference> = occurrences.iter().filter(|o| o.0 < o.1).cloned().collect();
        spans.sort();
        let mut edges: Vec<DateTime<Utc>> = spans.iter().flat_map(|o| [o.0, o.1]).collect();
        edges.sort();
        edges.dedup();
        let longest = spans.iter().map(|o| o.1 - o.0).max().unwrap_or_default();
        Expected {
            spans,
            edges,
            longest,
        }
    }

    fn in_force(&self, t: DateTime<Utc>) -> impl Iterator<Item = &Reference> {
        let i = self.spans.partition_point(|o| o.0 <= t);
        self.spans[..i]
            .iter()
            .rev()
            .take_while(move |o| o.0 > t - self.longest - Duration::seconds(1))
            .filter(move |o| t < o.1)
    }

    /// The run from Python's occurrences, walking edge by edge (not as the calendar does,
    /// from merged runs): back to the last edge before which coverage was otherwise, and on to
    /// the first where it is.
    fn run(&self, t: DateTime<Utc>) -> Run {
        let covered = |x: DateTime<Utc>| self.in_force(x).next().is_some();
        let now = covered(t);
        let i = self.edges.partition_point(|e| *e <= t);
        let since = self.edges[..i]
            .iter()
            .rev()
            .find(|e| covered(**e - Duration::nanoseconds(1)) != now)
            .copied();
        let until = self.edges[i..]
            .iter()
            .find(|e| covered(**e) != now)
            .copied();
        Run {
            in_force: now,
            since,
            until,
        }
    }
}

/// Every hour of 2026–2030, and every edge and the second before it: the occurrence in force
/// (the one that began first, then the longest), the next and the last edge, and the run; for
/// one calendar in each zone (one test per calendar, so that they run side by side).
fn every_hour_and_every_edge_of_2026_to_2030(calendar: &str) {
    let fixture = fixture();
    let (from, to) = (utc("2026-01-01T00:00:00Z"), utc("2031-01-01T00:00:00Z"));
    let mut failures = Failures::default();
    let mut compared = 0;
    for case in fixture.cases.iter().filter(|c| c.calendar == calendar) {
        let zone: Tz = case.zone.parse().unwrap();
        let calendar = parse(&case.calendar, zone);
        let expected = Expected::new(&case.occurrences);
        let hours = (0..)
            .map(|h| from + Duration::hours(h))
            .take_while(|t| *t < to);
        let edges = expected
            .edges
            .iter()
            .filter(|e| from <= **e && **e < to)
            .flat_map(|e| [*e, *e - Duration::seconds(1)]);
        for t in hours.chain(edges) {
            compared += 1;
            let mut fail = |what: &str, want: String, got: String| {
                failures.0.push(format!(
                    "{} in {} at {t}: {what}: Python's occurrences say {want}, we say {got}",
                    case.calendar, case.zone
                ))
            };
            let in_force: Vec<&Reference> = expected.in_force(t).collect();
            let first = in_force
                .iter()
                .min_by_key(|o| (o.0, std::cmp::Reverse(o.1)));
            match (first, calendar.at(t)) {
                (None, None) => {}
                (Some(want), Some(got)) => {
                    let listed = in_force.iter().any(|o| {
                        (o.0, o.1, o.2.as_str(), o.3.as_deref())
                            == (got.start, got.end, &*got.uid, got.summary.as_deref())
                    });
                    if (want.0, want.1) != (got.start, got.end) || !listed {
                        fail("in force", format!("{want:?}"), format!("{got:?}"));
                    }
                }
                (want, got) => fail("in force", format!("{want:?}"), format!("{got:?}")),
            }
            let i = expected.edges.partition_point(|e| *e <= t);
            let next = expected.edges.get(i).copied();
            if calendar.next_edge_after(t) != next {
                fail(
                    "next edge",
                    format!("{next:?}"),
                    format!("{:?}", calendar.next_edge_after(t)),
                );
            }
            let last = i.checked_sub(1).map(|i| expected.edges[i]);
            if calendar.last_edge_at_or_before(t) != last {
                fail(
                    "last edge",
                    format!("{last:?}"),
                    format!("{:?}", calendar.last_edge_at_or_before(t)),
                );
            }
            let run = expected.run(t);
            if calendar.run_at(t) != run {
                fail(
                    "run",
                    format!("{run:?}"),
                    format!("{:?}", calendar.run_at(t)),
                );
            }
        }
    }
    assert!(compared > 3 * 43_824, "{calendar}: {compared} instants");
    failures.assert_none(compared, "instants");
}

#[test]
fn berlin_public_holidays_agree_every_hour_of_2026_to_2030() {
    every_hour_and_every_edge_of_2026_to_2030("de-be-public.ics");
}

#[test]
fn bavarian_school_holidays_agree_every_hour_of_2026_to_2030() {
    every_hour_and_every_edge_of_2026_to_2030("de-by-ferien.ics");
}

#[test]
fn english_bank_holidays_agree_every_hour_of_2026_to_2030() {
    every_hour_and_every_edge_of_2026_to_2030("UKHolidays-EnglandWales.ics");
}

#[test]
fn albanian_holidays_agree_every_hour_of_2026_to_2030() {
    every_hour_and_every_edge_of_2026_to_2030("AlbanianHolidays.ics");
}

#[test]
fn purpose_written_rules_agree_every_hour_of_2026_to_2030() {
    every_hour_and_every_edge_of_2026_to_2030("fluxgate-rules.ics");
}

/// Easter Sunday of `year` (Gregorian; the anonymous algorithm of Meeus, Jones and Butcher).
fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).unwrap()
}

/// The "done when": Berlin's Easter-dependent holidays, for every day of 2026–2030,
/// in a window east of UTC, one west, and one across the date line.
#[test]
fn berlin_easter_holidays_fall_where_easter_puts_them_every_day_of_2026_to_2030() {
    assert_eq!(easter(2026), NaiveDate::from_ymd_opt(2026, 4, 5).unwrap());
    assert_eq!(easter(2027), NaiveDate::from_ymd_opt(2027, 3, 28).unwrap());
    let holidays = [
        ("Karfreitag", -2),
        ("Ostermontag", 1),
        ("Christi Himmelfahrt", 39),
        ("Pfingstmontag", 50),
    ];
    let mut days = 0;
    for zone in [
        chrono_tz::Europe::Berlin,
        chrono_tz::America::New_York,
        chrono_tz::Pacific::Auckland,
    ] {
        let calendar = parse("de-be-public.ics", zone);
        let midnight = |d: NaiveDate| {
            zone.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
                .earliest()
                .unwrap()
                .to_utc()
        };
        let mut day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        while day.year() <= 2030 {
            let easter = easter(day.year());
            let want = holidays
                .iter()
                .find(|(_, offset)| easter + Duration::days(*offset) == day)
                .map(|(name, _)| *name);
            for t in [
                midnight(day),
                midnight(day) + Duration::hours(12),
                midnight(day.succ_opt().unwrap()) - Duration::seconds(1),
            ] {
                let got = calendar.at(t);
                let got_name = got.and_then(|o| o.summary.as_deref());
                let easter_named = got_name.filter(|n| holidays.iter().any(|(h, _)| h == n));
                assert_eq!(easter_named, want, "{day} at {t} in {zone}");
                if want.is_some() {
                    let o = got.unwrap();
                    assert_eq!(
                        (o.start, o.end),
                        (midnight(day), midnight(day.succ_opt().unwrap()))
                    );
                }
            }
            days += 1;
            day = day.succ_opt().unwrap();
        }
    }
    assert_eq!(days, 3 * 1826);
    println!("{days} days checked against the Easter computus");
}
