//! Our cron dialect against an independent implementation: croniter (PyPI).
//!
//! `tests/fixtures/cron-reference.json` holds fire times that croniter computed in UTC for ~150
//! expressions from several start instants; `tools/gen-cron-reference.py` writes it. The tests
//! here ask `Cron::next_after` and the backward searches for the same instants.
//!
//! fluxgate follows Kubernetes, i.e. robfig/cron v3's standard parser, and where croniter
//! knowingly differs from robfig the generator leaves the expression out (the fixture lists
//! them under "excluded"). Those are covered by hand at the end of this file, with the robfig
//! rule that decides them.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::UTC;
use fluxgate_core::cron::Cron;
use serde::Deserialize;

const FIXTURE: &str = include_str!("fixtures/cron-reference.json");

#[derive(Deserialize)]
struct Fixture {
    croniter_version: String,
    generated: String,
    time_zone: String,
    excluded: std::collections::BTreeMap<String, String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    expr: String,
    runs: Vec<Run>,
}

/// croniter's answers from one start instant.
#[derive(Deserialize)]
struct Run {
    start: DateTime<Utc>,
    /// The first fires strictly after `start`, in order.
    next: Vec<DateTime<Utc>>,
    /// The last fires strictly before `start`, newest first.
    prev: Vec<DateTime<Utc>>,
}

fn fixture() -> Fixture {
    let fixture: Fixture = serde_json::from_str(FIXTURE).expect("cron-reference.json parses");
    assert_eq!(fixture.time_zone, "UTC");
    fixture
}

fn parse(expr: &str) -> Result<Cron, String> {
    Cron::parse(expr).map_err(|err| format!("{expr:?}: rejected by Cron::parse: {err}"))
}

fn show(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "None".to_owned(), |t| t.to_rfc3339())
}

/// Collects mismatches so that one run reports all of them, then fails with the first few.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(
        &mut self,
        expr: &str,
        start: DateTime<Utc>,
        what: String,
        want: DateTime<Utc>,
        got: Option<DateTime<Utc>>,
    ) {
        if got != Some(want) {
            self.0.push(format!(
                "{expr:?} from {}: {what}: croniter says {}, we say {}",
                start.to_rfc3339(),
                want.to_rfc3339(),
                show(got)
            ));
        }
    }

    fn assert_none(self, compared: usize) {
        let Failures(failures) = self;
        assert!(
            failures.is_empty(),
            "{} of {compared} comparisons with croniter failed; the first ones:\n{}",
            failures.len(),
            failures
                .iter()
                .take(40)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn the_fixture_is_broad() {
    let fixture = fixture();
    assert!(!fixture.croniter_version.is_empty());
    assert!(!fixture.generated.is_empty());
    assert!(
        fixture.cases.len() >= 150,
        "only {} expressions",
        fixture.cases.len()
    );
    for case in &fixture.cases {
        assert!(
            !fixture.excluded.contains_key(&case.expr),
            "{:?} is excluded",
            case.expr
        );
        assert!(!case.runs.is_empty(), "{:?} has no runs", case.expr);
        for run in &case.runs {
            assert_eq!(run.next.len(), 12, "{:?} from {}", case.expr, run.start);
            assert_eq!(run.prev.len(), 4, "{:?} from {}", case.expr, run.start);
        }
    }
    // Every excluded expression is one robfig accepts, and is covered by hand below.
    for expr in fixture.excluded.keys() {
        assert!(
            ROBFIG_SPECIFIC.iter().any(|case| case.expr == expr),
            "{expr:?} is excluded from the fixture but has no hand-written case"
        );
    }
}

/// Repeated `next_after` from each start gives croniter's fires, in order.
#[test]
fn next_after_agrees_with_croniter() {
    let fixture = fixture();
    let mut failures = Failures::default();
    let mut compared = 0;
    for case in &fixture.cases {
        let cron = match parse(&case.expr) {
            Ok(cron) => cron,
            Err(err) => {
                failures.0.push(err);
                continue;
            }
        };
        for run in &case.runs {
            let mut after = run.start;
            for (i, &want) in run.next.iter().enumerate() {
                let got = cron.next_after(UTC, after);
                compared += 1;
                failures.check(
                    &case.expr,
                    run.start,
                    format!("next fire #{}", i + 1),
                    want,
                    got,
                );
                // Go on from croniter's answer, so one miss is reported once.
                after = want;
            }
        }
    }
    failures.assert_none(compared);
}

/// `prev_at_or_before` walks back through the fires `next_after` was checked against, and
/// before the start through croniter's earlier fires.
#[test]
fn prev_at_or_before_walks_back_through_the_same_fires() {
    let fixture = fixture();
    let mut failures = Failures::default();
    let mut compared = 0;
    let tick = Duration::nanoseconds(1);
    for case in &fixture.cases {
        let Ok(cron) = parse(&case.expr) else {
            // Reported by next_after_agrees_with_croniter.
            continue;
        };
        for run in &case.runs {
            let expr = &case.expr;
            for &fire in run.next.iter().chain(&run.prev) {
                if !cron.matches(fire.naive_utc()) {
                    failures.0.push(format!(
                        "{expr:?} from {}: matches({}) is false",
                        run.start.to_rfc3339(),
                        fire.to_rfc3339()
                    ));
                }
                compared += 1;
            }
            for (i, &fire) in run.next.iter().enumerate().rev() {
                // Inclusive at a fire, and the previous fire just before it.
                let what = format!("prev_at_or_before(next fire #{})", i + 1);
                failures.check(
                    expr,
                    run.start,
                    what,
                    fire,
                    cron.prev_at_or_before(UTC, fire),
                );
                let what = format!("next_at_or_after(next fire #{})", i + 1);
                failures.check(
                    expr,
                    run.start,
                    what,
                    fire,
                    cron.next_at_or_after(UTC, fire),
                );
                if i > 0 {
                    let what = format!("prev_at_or_before(next fire #{} - 1ns)", i + 1);
                    let got = cron.prev_at_or_before(UTC, fire - tick);
                    failures.check(expr, run.start, what, run.next[i - 1], got);
                }
                compared += if i > 0 { 3 } else { 2 };
            }
            // Between the start and the first fire after it, the last fire is the start itself
            // (croniter's `next` is exclusive, so a start that is a fire is in neither list) or
            // croniter's first `prev`.
            let start_is_fire = run.start.timestamp_subsec_nanos() == 0
                && run.start.timestamp() % 60 == 0
                && cron.matches(run.start.naive_utc());
            let want = if start_is_fire {
                run.start
            } else {
                run.prev[0]
            };
            let got = cron.prev_at_or_before(UTC, run.next[0] - tick);
            failures.check(
                expr,
                run.start,
                "prev_at_or_before(next fire #1 - 1ns)".into(),
                want,
                got,
            );
            compared += 1;
            // Before the start: croniter's `prev`, newest first.
            let mut before = run.start;
            for (i, &want) in run.prev.iter().enumerate() {
                let got = cron.prev_before(UTC, before);
                failures.check(expr, run.start, format!("prev fire #{}", i + 1), want, got);
                let what = format!("prev_at_or_before(prev fire #{})", i + 1);
                failures.check(
                    expr,
                    run.start,
                    what,
                    want,
                    cron.prev_at_or_before(UTC, want),
                );
                compared += 2;
                before = want;
            }
        }
    }
    failures.assert_none(compared);
}

// === robfig-specific cases ===

/// An expression on which croniter and robfig/cron v3 disagree, with robfig's answer: the
/// first fires strictly after `START` (Thursday 2026-11-26, midnight UTC).
struct RobfigCase {
    expr: &'static str,
    next: &'static [&'static str],
    rule: &'static str,
}

const START: &str = "2026-11-26T00:00:00Z";

const ROBFIG_SPECIFIC: &[RobfigCase] = &[
    // robfig's getRange sets the star bit for `*` and `?` and clears it only when the step is
    // greater than 1, and dayMatches ANDs the day fields when either has its star bit: `*/1`
    // is unrestricted. croniter ORs these.
    RobfigCase {
        expr: "0 0 */1 * 1",
        next: &["2026-11-30", "2026-12-07", "2026-12-14", "2026-12-21"],
        rule: "`*/1` keeps the star bit: AND, so Mondays only",
    },
    RobfigCase {
        expr: "0 0 1 * */1",
        next: &["2026-12-01", "2027-01-01", "2027-02-01", "2027-03-01"],
        rule: "`*/1` keeps the star bit: AND, so the 1st only",
    },
    // A range that lists every value has no star bit, so with the other field restricted the
    // days are ORed. croniter turns it into `*` when the other field's text has a `*` in it.
    RobfigCase {
        expr: "0 0 1-31 * */2",
        next: &["2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"],
        rule: "no star bit on either day field: OR, and 1-31 matches every day",
    },
    RobfigCase {
        expr: "0 0 */2 * 0-6",
        next: &["2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"],
        rule: "no star bit on either day field: OR, and 0-6 matches every day",
    },
    // robfig reads `N-N` as N (getBits(N, N, step)); croniter reads it as the whole field.
    RobfigCase {
        expr: "5-5 * * * *",
        next: &["2026-11-26T00:05", "2026-11-26T01:05", "2026-11-26T02:05"],
        rule: "`5-5` is minute 5",
    },
    RobfigCase {
        expr: "0 3-3 * * *",
        next: &["2026-11-26T03:00", "2026-11-27T03:00", "2026-11-28T03:00"],
        rule: "`3-3` is hour 3",
    },
    RobfigCase {
        expr: "10-10/5 * * * *",
        next: &["2026-11-26T00:10", "2026-11-26T01:10", "2026-11-26T02:10"],
        rule: "`10-10/5` is minute 10",
    },
    RobfigCase {
        expr: "0 0 1 1-1/2 *",
        next: &["2027-01-01", "2028-01-01", "2029-01-01"],
        rule: "`1-1/2` is January",
    },
    RobfigCase {
        expr: "0 0 * * mon-mon",
        next: &["2026-11-30", "2026-12-07", "2026-12-14"],
        rule: "`mon-mon` is Monday",
    },
    // robfig accepts `?` in every field, as `*` (with the star bit); croniter only in the day
    // fields.
    RobfigCase {
        expr: "? * * * *",
        next: &["2026-11-26T00:01", "2026-11-26T00:02", "2026-11-26T00:03"],
        rule: "`?` is `*` in the minute field too",
    },
    RobfigCase {
        expr: "0 ? * * *",
        next: &["2026-11-26T01:00", "2026-11-26T02:00", "2026-11-26T03:00"],
        rule: "`?` is `*` in the hour field too",
    },
    RobfigCase {
        expr: "0 0 ?/2 * *",
        next: &["2026-11-27", "2026-11-29", "2026-12-01", "2026-12-03"],
        rule: "`?/2` is `*/2`: odd days",
    },
    RobfigCase {
        expr: "0 0 ?/2 * MON",
        next: &[
            "2026-11-27",
            "2026-11-29",
            "2026-11-30",
            "2026-12-01",
            "2026-12-03",
        ],
        rule: "`?/2` has no star bit (step > 1): OR with Mondays",
    },
];

/// `YYYY-MM-DD` (midnight) or `YYYY-MM-DDTHH:MM`, in UTC.
fn instant(text: &str) -> DateTime<Utc> {
    let full = match text.len() {
        10 => format!("{text}T00:00:00Z"),
        16 => format!("{text}:00Z"),
        _ => text.to_owned(),
    };
    DateTime::parse_from_rfc3339(&full)
        .unwrap_or_else(|err| panic!("{text:?}: {err}"))
        .with_timezone(&Utc)
}

#[test]
fn robfig_specific_fire_times() {
    let start = instant(START);
    for case in ROBFIG_SPECIFIC {
        let cron = parse(case.expr).unwrap_or_else(|err| panic!("{err} ({})", case.rule));
        let mut after = start;
        for want in case.next {
            let want = instant(want);
            let got = cron.next_after(UTC, after);
            assert_eq!(
                got,
                Some(want),
                "{:?} after {after}: want {want}, got {} ({})",
                case.expr,
                show(got),
                case.rule
            );
            assert_eq!(
                cron.prev_at_or_before(UTC, want),
                Some(want),
                "{:?}: prev_at_or_before({want}) ({})",
                case.expr,
                case.rule
            );
            after = want;
        }
    }
}

/// Syntax croniter accepts and robfig's standard parser (so Kubernetes) rejects.
#[test]
fn robfig_specific_rejections() {
    let cases = [
        // getRange: "beginning of range beyond end of range"; croniter wraps around.
        ("0 0 * * FRI-MON", "wrap-around day-of-week range"),
        ("0 0 1 nov-feb *", "wrap-around month range"),
        ("0 0 20-10 * *", "wrap-around day-of-month range"),
        // dow bounds are 0-6 in robfig. We accept 7 as Sunday, but `7/2` means `7-6/2`.
        ("0 0 * * 7/2", "day-of-week 7 with a step"),
        // Extensions of croniter (and Quartz) that robfig does not have.
        ("0 0 L * *", "L (last day of month)"),
        ("0 0 * * 5L", "L in day-of-week"),
        ("0 0 15W * *", "W (nearest weekday)"),
        ("H * * * *", "H (hashed)"),
        ("0 0 0 * * *", "six fields (seconds)"),
        ("0 0 0 * * * 2030", "seven fields (year)"),
        // parseDescriptor matches descriptors exactly; croniter lowercases them.
        ("@DAILY", "upper-case descriptor"),
        ("@Hourly", "mixed-case descriptor"),
    ];
    for (expr, what) in cases {
        assert!(
            Cron::parse(expr).is_err(),
            "{expr:?} ({what}) should be rejected, as robfig/cron v3 does"
        );
    }
    // The one extension on purpose: `W#N`, the Nth weekday of the month (Quartz, Fleet).
    // robfig refuses `#`, so no expression the API server accepts means anything else here.
    assert!(Cron::parse("0 0 * * 5#3").is_ok());
}
