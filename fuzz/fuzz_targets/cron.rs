//! Cron text in: `Cron::parse` must never panic, and every expression it accepts must search
//! correctly in any time zone, across DST gaps and folds.
//!
//! For each accepted expression, time zone (UTC, Europe/Berlin, America/New_York and
//! Australia/Lord_Howe, whose DST shift is 30 minutes) and instant `t` (around each zone's DST
//! changes, plus one derived from the input): `next_after(t) > t`, `prev_at_or_before(t) <= t`,
//! no fire lies strictly between them and `t`, every fire is on a whole minute whose local
//! time matches the expression (or ends a DST gap that swallowed a matching minute, and a
//! repeated wall-clock time fires at its first occurrence only), and the inclusive/exclusive
//! variants agree.

#![no_main]

use chrono::{DateTime, Duration, LocalResult, TimeZone, Utc};
use chrono_tz::Tz;
use fluxgate_core::cron::Cron;
use libfuzzer_sys::fuzz_target;

const ZONES: [Tz; 4] = [
    Tz::UTC,
    Tz::Europe__Berlin,
    Tz::America__New_York,
    Tz::Australia__Lord_Howe,
];

/// DST changes of 2026 (UTC): Berlin spring/fall, New York spring/fall, Lord Howe fall/spring.
const CHANGES: [&str; 6] = [
    "2026-03-29T01:00:00Z",
    "2026-10-25T01:00:00Z",
    "2026-03-08T07:00:00Z",
    "2026-11-01T06:00:00Z",
    "2026-04-04T15:00:00Z",
    "2026-10-03T15:30:00Z",
];

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// An instant in 2020–2035 chosen by the input, so the fuzzer varies it with the text.
fn derived(data: &[u8]) -> DateTime<Utc> {
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    let span = 15 * 366 * 24 * 3600;
    Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap()
        + Duration::seconds((hash % span) as i64)
        + Duration::nanoseconds((hash >> 40) as i64 % 1_000_000_000)
}

/// A fire must be a whole minute at the first occurrence of a matching wall-clock time, or the
/// end of a DST gap that swallowed one.
fn check_fire(cron: &Cron, tz: Tz, fire: DateTime<Utc>, context: &str) {
    assert_eq!(
        fire.timestamp() % 60,
        0,
        "{context}: {fire} is not a whole minute"
    );
    assert_eq!(
        fire.timestamp_subsec_nanos(),
        0,
        "{context}: {fire} has nanoseconds"
    );
    let local = fire.with_timezone(&tz).naive_local();
    if let LocalResult::Ambiguous(first, _) = tz.from_local_datetime(&local) {
        assert_eq!(
            first.with_timezone(&Utc),
            fire,
            "{context}: {local} fired at its second occurrence"
        );
    }
    if cron.matches(local) {
        return;
    }
    // Not a match itself: the minutes just before it must be a gap holding a match.
    let mut probe = local - Duration::minutes(1);
    let mut in_gap = false;
    while let LocalResult::None = tz.from_local_datetime(&probe) {
        in_gap = true;
        if cron.matches(probe) {
            return;
        }
        probe -= Duration::minutes(1);
    }
    panic!("{context}: fire {fire} (local {local}) does not match (after a gap: {in_gap})");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cron) = Cron::parse(text) else {
        return;
    };
    assert_eq!(
        Cron::parse(cron.as_str()).as_ref(),
        Ok(&cron),
        "re-parsing {:?}",
        cron.as_str()
    );
    let mut instants = vec![derived(data)];
    for change in CHANGES.map(utc) {
        instants.extend([
            change - Duration::minutes(31),
            change,
            change + Duration::seconds(1),
            change + Duration::minutes(59),
        ]);
    }
    for tz in ZONES {
        for &t in &instants {
            let context = format!("{:?} in {tz} at {t}", cron.as_str());
            let next = cron.next_after(tz, t);
            if let Some(next) = next {
                assert!(next > t, "{context}: next {next}");
                check_fire(&cron, tz, next, &context);
                let before = cron.prev_before(tz, next);
                assert!(
                    before.is_none_or(|b| b <= t),
                    "{context}: a fire at {before:?} lies between t and next {next}"
                );
            }
            let prev = cron.prev_at_or_before(tz, t);
            if let Some(prev) = prev {
                assert!(prev <= t, "{context}: prev {prev}");
                check_fire(&cron, tz, prev, &context);
                let after = cron.next_after(tz, prev);
                assert!(
                    after.is_none_or(|a| a > t),
                    "{context}: a fire at {after:?} lies between prev {prev} and t"
                );
            }
            let at_or_after = cron.next_at_or_after(tz, t);
            if prev == Some(t) {
                assert_eq!(at_or_after, Some(t), "{context}: t is a fire");
            } else {
                assert_eq!(at_or_after, next, "{context}: t is not a fire");
            }
        }
    }
});
