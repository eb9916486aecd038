//! iCalendar freezes: parsing and expanding a 20-year holiday calendar, and the lookups a
//! window's state walk makes on it (what is in force, the next and last edge, the run), which
//! are all a window pays for a calendar once its state is cached.
//!
//! `cargo bench --bench calendar` for the figures; `-- --test` runs each benchmark once.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Europe::Berlin;
use criterion::{Criterion, criterion_group, criterion_main};
use fluxgate_core::calendar::Calendar;
use fluxgate_core::window::WindowSet;
use std::hint::black_box;

const YEARS: i32 = 20;
const FIRST_YEAR: i32 = 2026;

/// Easter Sunday (Gregorian; Meeus, Jones and Butcher).
fn easter(year: i32) -> NaiveDate {
    let (a, b, c) = (year % 19, year / 100, year % 100);
    let (d, e, f) = (b / 4, b % 4, (b + 8) / 25);
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let n = h + l - 7 * m + 114;
    NaiveDate::from_ymd_opt(year, (n / 31) as u32, (n % 31 + 1) as u32).unwrap()
}

/// A German state's holidays for 20 years, as published calendars write them: yearly rules for
/// the fixed days, one event per year for each Easter-dependent day, and a week or more of
/// school holidays five times a year (all-day, in the window's zone).
fn holiday_calendar() -> String {
    let mut text = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\n");
    let mut event = |uid: String, summary: &str, body: String| {
        text.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:{uid}\r\nSUMMARY;LANGUAGE=de:{summary}\r\nDTSTAMP:20260101T000000Z\r\n\
             TRANSP:TRANSPARENT\r\n{body}END:VEVENT\r\n"
        ));
    };
    let date = |d: NaiveDate| d.format("%Y%m%d").to_string();
    for (month, day, name) in [
        (1, 1, "Neujahr"),
        (3, 8, "Internationaler Frauentag"),
        (5, 1, "Erster Mai"),
        (10, 3, "Tag der Deutschen Einheit"),
        (12, 25, "Erster Weihnachtstag"),
        (12, 26, "Zweiter Weihnachtstag"),
    ] {
        let first = NaiveDate::from_ymd_opt(FIRST_YEAR, month, day).unwrap();
        event(
            format!("fixed-{month}-{day}"),
            name,
            format!(
                "DTSTART;VALUE=DATE:{}\r\nRRULE:FREQ=YEARLY;COUNT={YEARS}\r\n",
                date(first)
            ),
        );
    }
    for year in FIRST_YEAR..FIRST_YEAR + YEARS {
        let sunday = easter(year);
        for (offset, name) in [
            (-2, "Karfreitag"),
            (1, "Ostermontag"),
            (39, "Christi Himmelfahrt"),
            (50, "Pfingstmontag"),
        ] {
            event(
                format!("easter-{year}-{offset}"),
                name,
                format!(
                    "DTSTART;VALUE=DATE:{}\r\n",
                    date(sunday + Duration::days(offset))
                ),
            );
        }
        for (month, day, days, name) in [
            (2, 16, 5, "Frühjahrsferien"),
            (sunday.month(), sunday.day(), 12, "Osterferien"),
            (8, 1, 45, "Sommerferien"),
            (11, 2, 5, "Herbstferien"),
            (12, 23, 14, "Weihnachtsferien"),
        ] {
            let from = NaiveDate::from_ymd_opt(year, month, day).unwrap();
            event(
                format!("school-{year}-{month}"),
                name,
                format!(
                    "DTSTART;VALUE=DATE:{}\r\nDTEND;VALUE=DATE:{}\r\n",
                    date(from),
                    date(from + Duration::days(days))
                ),
            );
        }
    }
    text.push_str("END:VCALENDAR\r\n");
    text
}

/// 1,000 instants spread over the 20 years (every 7.3 days, at changing times of day).
fn instants() -> Vec<DateTime<Utc>> {
    let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    (0..1000)
        .map(|i| start + Duration::minutes(i * 10_517))
        .collect()
}

fn bench_calendar(c: &mut Criterion) {
    let text = holiday_calendar();
    let calendar = Calendar::parse("holidays", &text, Berlin).unwrap();
    assert!(calendar.occurrences().len() >= 20 * 15);
    let instants = instants();
    let mut group = c.benchmark_group("calendar");
    group.bench_function("parse-20-years", |b| {
        b.iter(|| Calendar::parse("holidays", black_box(text.as_bytes()), Berlin).unwrap())
    });
    // A calendar with rules without an end, expanded to 2100 (Thunderbird's Albanian
    // holidays, from 2011).
    let albanian = include_str!("../tests/fixtures/ics/AlbanianHolidays.ics");
    group.bench_function("parse-unending-rules-to-2100", |b| {
        b.iter(|| Calendar::parse("albanian", black_box(albanian.as_bytes()), Berlin).unwrap())
    });
    // Per lookup: each iteration asks at 1,000 instants (criterion's time / 1,000).
    group.bench_function("at-x1000", |b| {
        b.iter(|| {
            for t in &instants {
                black_box(calendar.at(black_box(*t)));
            }
        })
    });
    group.bench_function("next-edge-x1000", |b| {
        b.iter(|| {
            for t in &instants {
                black_box(calendar.next_edge_after(black_box(*t)));
            }
        })
    });
    group.bench_function("run-at-x1000", |b| {
        b.iter(|| {
            for t in &instants {
                black_box(calendar.run_at(black_box(*t)));
            }
        })
    });
    // What a window's state computation would ask of one calendar freeze: in force (and
    // which), the run's start and end, and the next edge for the cache.
    group.bench_function("state-lookups-x1000", |b| {
        b.iter(|| {
            for t in &instants {
                let t = black_box(*t);
                black_box((
                    calendar.at(t),
                    calendar.run_at(t),
                    calendar.next_edge_after(t),
                ));
            }
        })
    });
    group.finish();
}

/// business-hours (Monday 08:00 to Thursday 17:00 in Berlin) frozen by the 20-year calendar,
/// inline, as a windows file gives it.
fn window_yaml(ics: &str) -> String {
    let indented: String = ics.lines().map(|l| format!("        {l}\n")).collect();
    format!(
        "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  name: \
         business-hours\nspec:\n  timeZone: Europe/Berlin\n  schedules:\n    - open: \"0 8 * * \
         MON\"\n      close: \"0 17 * * THU\"\n  calendars:\n    - name: holidays.ics\n      \
         ics: |\n{indented}"
    )
}

/// A window with the 20-year holiday calendar: starting (validating the window, parsing and
/// expanding the calendar, computing the first state, as a server does before it listens),
/// and deciding at steady state (the state cached, as for every request between transitions).
fn bench_window(c: &mut Criterion) {
    let yaml = window_yaml(&holiday_calendar());
    // Good Friday 2030, 10:00 in Berlin: frozen by the calendar.
    let now: DateTime<Utc> = "2030-04-19T08:00:00Z".parse().unwrap();
    let mut group = c.benchmark_group("calendar-window");
    group.bench_function("start", |b| {
        b.iter(|| {
            let set = WindowSet::from_yaml("w.yaml", black_box(&yaml)).unwrap();
            set.warm(now);
            set
        })
    });
    let set = WindowSet::from_yaml("w.yaml", &yaml).unwrap();
    let window = set.get("business-hours").unwrap();
    assert!(window.state_at(now).freeze.is_some());
    group.bench_function("decide-steady-state", |b| {
        b.iter(|| black_box(window.state_at(black_box(now))))
    });
    group.finish();
}

criterion_group!(benches, bench_calendar, bench_window);
criterion_main!(benches);
