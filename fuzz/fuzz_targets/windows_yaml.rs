//! Window YAML, text in: `WindowSet::from_yaml` must never panic, and every window it accepts
//! must be evaluable at any instant without panicking or hanging.
//!
//! For each accepted window and a few instants (ascending, so the state cache is hit as well
//! as missed): the cached state equals a fresh evaluation; `since <= t < next`; the state
//! really differs at `next` and really began at `since`; a freeze in force means closed.

#![no_main]

use chrono::{DateTime, Duration, Utc};
use fluxgate_core::window::{WindowSet, WindowState, evaluate};
use libfuzzer_sys::fuzz_target;

const INSTANTS: [&str; 5] = [
    "2026-03-29T00:59:59Z", // one second before Berlin springs forward
    "2026-11-26T12:00:00Z", // a Thursday
    "2026-11-26T12:30:00Z", // the same run, usually: the cache answers
    "2026-12-24T18:00:00Z", // inside the example freeze
    "2027-10-31T01:30:00Z", // Berlin falls back at 01:00Z
];

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(set) = WindowSet::from_yaml("fuzz", text) else {
        return;
    };
    for window in set.iter() {
        for t in INSTANTS.map(utc) {
            let cached = window.state_at(t);
            let fresh = evaluate(window, t);
            let name = window.name();
            // Where a walk that gave up stopped depends on where it started: the cached state
            // (computed earlier) may say another `searched_until`.
            let fresh_as_cached = WindowState {
                searched_until: cached.searched_until,
                ..fresh.clone()
            };
            if *cached != fresh_as_cached {
                // Finding F5 (fuzz/README.md), what is left of it: one start/duration
                // schedule whose own runs merge more than MAX_STEPS times (a start every
                // minute for days) is followed only that far back, so from deep inside such a
                // run `since` is unknown (None) where the cached state, computed nearer the
                // run's start, found it. Only that disagreement is tolerated.
                let since_gave_up = fresh.since.is_none()
                    && cached.open == fresh.open
                    && cached.next == fresh.next
                    && cached.freeze == fresh.freeze;
                assert!(
                    since_gave_up,
                    "{name}: cached state differs at {t}: {cached:?} != {fresh:?}"
                );
            }
            if let Some(since) = fresh.since {
                assert!(since <= t, "{name}: since {since} after {t}");
                let before = since - Duration::nanoseconds(1);
                assert_eq!(
                    evaluate(window, since).open,
                    fresh.open,
                    "{name} at {t}: state at since {since}"
                );
                assert_ne!(
                    evaluate(window, before).open,
                    fresh.open,
                    "{name} at {t}: state just before since {since}"
                );
            }
            if let Some(next) = fresh.next {
                assert!(t < next, "{name}: next {next} not after {t}");
                assert_ne!(
                    evaluate(window, next).open,
                    fresh.open,
                    "{name} at {t}: state at next {next}"
                );
            }
            if fresh.freeze.is_some() {
                // Only an override opens a (soft) freeze.
                assert!(
                    !fresh.open || fresh.opened_by.is_some(),
                    "{name}: open during a freeze at {t}"
                );
            }
        }
    }
});
