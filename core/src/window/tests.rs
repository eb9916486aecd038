//! Validation of window objects and evaluation of their state, by instant.

use super::*;
use chrono::DateTime;

pub(crate) fn utc(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
}

/// A window from the YAML of its `spec`, named `w`.
pub(crate) fn mk_window(spec_yaml: &str) -> Window {
    try_window(spec_yaml).unwrap()
}

fn try_window(spec_yaml: &str) -> Result<Window, String> {
    let indented: String = spec_yaml.lines().map(|l| format!("  {l}\n")).collect();
    let yaml = format!(
        "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  name: w\nspec:\n{indented}"
    );
    let mut documents = parse_documents("test.yaml", &yaml).map_err(|e| e.to_string())?;
    Window::from_object(&documents.remove(0).object).map_err(|e| e.to_string())
}

fn state(window: &Window, t: &str) -> (bool, Option<String>, Option<String>) {
    let s = evaluate(window, utc(t));
    let fmt = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
    (s.open, fmt(s.since), fmt(s.next))
}

fn some(t: &str) -> Option<String> {
    Some(utc(t).to_rfc3339())
}

const BUSINESS_HOURS: &str = r#"
timeZone: Europe/Berlin
schedules:
  - open: "0 8 * * MON"
    close: "0 17 * * THU"
freezes:
  - start: "2026-12-20T00:00:00+01:00"
    end: "2027-01-04T00:00:00+01:00"
    reason: Year-end change freeze
"#;

// === validation ===

#[test]
fn invalid_windows_name_the_window_and_the_field() {
    let cases = [
        (
            "schedules: []",
            "spec.schedules: at least one schedule is required",
        ),
        (
            "timeZone: Europe/Berln\nschedules: [{open: '0 8 * * 1', close: '0 9 * * 1'}]",
            "spec.timeZone: \"Europe/Berln\" is not an IANA time zone",
        ),
        (
            "timeZone: ''\nschedules: [{open: '0 8 * * 1', close: '0 9 * * 1'}]",
            "spec.timeZone",
        ),
        (
            "schedules: [{close: '0 9 * * 1'}]",
            "spec.schedules[0].close: close without open",
        ),
        (
            "schedules: [{open: '0 9 * * 1'}]",
            "spec.schedules[0].open: open without close",
        ),
        (
            "schedules: [{start: '0 9 * * 1'}]",
            "start without duration",
        ),
        (
            "schedules: [{start: '0 9 * * 1', duration: 0h}]",
            "spec.schedules[0].duration: \"0h\" is zero",
        ),
        (
            "schedules: [{start: '0 9 * * 1', duration: -1h}]",
            "spec.schedules[0].duration: \"-1h\" is negative",
        ),
        (
            "schedules: [{open: '0 9 * * 1', close: '0 9 * * 2', start: '0 1 * * *', duration: 1h}]",
            "open goes with close, start with duration",
        ),
        (
            "schedules: [{open: '0 0 30 2 *', close: '0 9 * * 1'}]",
            "spec.schedules[0].open: \"0 0 30 2 *\": this schedule can never fire",
        ),
        (
            "schedules: [{open: '0 8 * * 1', close: '0 17 * * THURSDAY'}]",
            "spec.schedules[0].close: \"0 17 * * THURSDAY\": day-of-week field",
        ),
        (
            "schedules: [{open: '0 8 * * 1', close: '0 9 * * 1'}, {start: '61 * * * *', duration: 1h}]",
            "spec.schedules[1].start",
        ),
        (
            "schedules: [{open: '0 8 * * 1', close: '0 9 * * 1'}]\nfreezes: [{start: '2026-12-20T00:00:00Z', end: '2026-12-20T00:00:00Z'}]",
            "spec.freezes[0].end: \"2026-12-20T00:00:00Z\" is not after start",
        ),
        (
            "schedules: [{open: '0 8 * * 1', close: '0 9 * * 1'}]\nfreezes: [{start: '24.12.2026', end: '2026-12-27'}]",
            "spec.freezes[0].start: \"24.12.2026\" is not a time: write RFC 3339 \
             (2026-12-24T00:00:00+01:00), a local time in timeZone (2026-12-24T00:00:00) or a \
             date for its midnight (2026-12-24)",
        ),
        (
            "schedules: [{open: '0 8 * * 1', close: '0 9 * * 1'}]\nfreezes: [{start: '2026-12-24', duration: 72h}]",
            "spec.freezes[0]: give either start and end (a one-off freeze), or schedule and duration",
        ),
        (
            "schedules: [{open: '0 8 * * 1', close: '0 9 * * 1'}]\nfreezes: [{schedule: '0 15 * * FRIDAY', duration: 65h}]",
            "spec.freezes[0].schedule: \"0 15 * * FRIDAY\"",
        ),
        (
            "schedules: [{open: '0 8 * * 1', close: '0 9 * * 1'}]\nfreezes: [{schedule: '0 15 * * FRI', duration: 0h}]",
            "spec.freezes[0].duration: \"0h\" is zero",
        ),
        (
            "timezone: UTC\nschedules: [{open: '0 8 * * 1', close: '0 9 * * 1'}]",
            "unknown field `timezone`",
        ),
    ];
    for (spec, want) in cases {
        let err = try_window(spec).expect_err(spec);
        assert!(err.contains("\"w\""), "{spec}: {err}");
        assert!(err.contains(want), "{spec}:\n  got  {err}\n  want {want}");
    }
}

/// Issue 23: an invalid window is reported on the line of the field that is wrong, not on the
/// line its document starts on (`windows.yaml:3:` for a bad cron on line 12).
#[test]
fn an_invalid_field_is_reported_on_its_own_line() {
    let yaml = r#"# Not a window: skipped, but its lines count.
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: bad-cron
spec:
  schedules:
    - open: "0 8 * * MONDAY"
      close: "0 17 * * FRI"
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: bad-zone
spec:
  description: A zone that does not exist.
  timeZone: Europe/Berln
  schedules: [{start: "0 1 * * *", duration: 1h}]
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: backwards-freeze
spec:
  schedules: [{start: "0 1 * * *", duration: 1h}]
  freezes:
    - reason: Year end
      start: 2026-12-24
      end: 2026-12-20
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: no-schedules
spec:
  description: A missing field is reported where it belongs.
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  labels: {team: platform}
spec:
  schedules: [{start: "0 1 * * *", duration: 1h}]
"#;
    let err = WindowSet::from_yaml("w.yaml", yaml)
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = err.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "5 invalid windows:",
            "w.yaml:12: ReconciliationWindow \"bad-cron\": spec.schedules[0].open: \"0 8 * * MONDAY\": \
             day-of-week field \"MONDAY\": \"MONDAY\" is not a name cron reads: write MON",
            "w.yaml:21: ReconciliationWindow \"bad-zone\": spec.timeZone: \"Europe/Berln\" is not an \
             IANA time zone name (e.g. Europe/Berlin, UTC)",
            "w.yaml:33: ReconciliationWindow \"backwards-freeze\": spec.freezes[0].end: \"2026-12-20\" \
             is not after start \"2026-12-24\"",
            "w.yaml:39: ReconciliationWindow \"no-schedules\": spec.schedules: at least one schedule \
             is required (open/close or start/duration)",
            "w.yaml:44: ReconciliationWindow \"\": metadata.name: a window needs a name",
        ]
    );
}

/// What the parser finds wrong (a value of the wrong type, an unknown field, YAML that does not
/// parse) is reported on its line too, naming the field it is in.
#[test]
fn a_field_the_parser_refuses_is_reported_on_its_own_line() {
    let yaml = r#"apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: list-for-a-cron
spec:
  schedules:
    - open: "0 8 * * MON"
      close: ["0 17 * * FRI"]
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: misspelt
spec:
  schedules: [{start: "0 1 * * *", duration: 1h}]
  timezone: Europe/Berlin
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: bad-enforcement
spec:
  enforcement: Audit
  schedules: [{start: "0 1 * * *", duration: 1h}]
---
# A comment first: the document's line is its first content.
apiVersion: fluxgate.io/v1
kind: ReconciliationWindow
metadata: {name: old}
spec: {}
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: unclosed-quote
spec:
  schedules: [{start: "0 1 * * *, duration: 1h}]
"#;
    let err = parse_documents("w.yaml", yaml).unwrap_err().to_string();
    let lines: Vec<&str> = err.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "5 invalid windows:",
            "w.yaml:8: ReconciliationWindow \"list-for-a-cron\": spec.schedules[0].close: expected \
             string scalar",
            "w.yaml:16: ReconciliationWindow \"misspelt\": spec: unknown field `timezone`, expected \
             one of description, timeZone, schedules, freezes, overrides, enforcement, calendars",
            "w.yaml:23: ReconciliationWindow \"bad-enforcement\": spec.enforcement: unknown variant \
             `Audit`, expected one of Enforce, Warn",
            "w.yaml:27: ReconciliationWindow apiVersion \"fluxgate.io/v1\" is not served: use \
             fluxgate.io/v1alpha1",
            "w.yaml:37: not valid YAML: unclosed quote at line 37, column 23",
        ]
    );
}

/// A list written with every item commented out is YAML null: no items, as the API server
/// reads it, not an error.
#[test]
fn a_list_with_every_item_commented_out_is_empty() {
    let w = mk_window(
        "schedules:\n  - start: '0 1 * * *'\n    duration: 1h\nfreezes:\n#  - start: 2026-12-24\n#    end: 2026-12-27\noverrides:\n",
    );
    assert!(w.freezes.is_empty() && w.overrides().is_empty());
    let err = try_window("schedules:\n#  - start: '0 1 * * *'\n").unwrap_err();
    assert!(
        err.contains("spec.schedules: at least one schedule is required"),
        "{err}"
    );
}

/// A billion laughs: nine anchors, each a list of nine aliases of the one before, expand to
/// a billion nodes from a few hundred bytes. The parser refuses it after a bounded number of
/// replayed events instead of expanding it until memory runs out, in a window and in any other
/// document of a windows file alike.
#[test]
fn an_alias_bomb_is_refused_not_expanded() {
    let mut bomb = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..9 {
        let aliases = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{aliases}]\n"));
    }
    let indented: String = bomb.lines().map(|l| format!("  {l}\n")).collect();
    let window = format!(
        "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata: {{name: w}}\nspec:\n{indented}"
    );
    let other =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\ndata:\n{indented}");
    for text in [window, other] {
        let err = WindowSet::from_yaml("w.yaml", &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(": not valid YAML: alias replay limit exceeded"),
            "{err}"
        );
    }
}

#[test]
fn duplicate_names_are_rejected_with_both_origins() {
    let doc = "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata: {name: a}\nspec: {schedules: [{start: '0 1 * * *', duration: 1h}]}\n";
    let err = WindowSet::from_yaml("w.yaml", &format!("{doc}---\n{doc}")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ReconciliationWindow \"a\" is defined twice: in w.yaml:1 and in w.yaml:6"
    );
}

#[test]
fn other_kinds_and_empty_documents_are_ignored() {
    let yaml = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata: {name: a}\nspec: {schedules: [{start: '0 1 * * *', duration: 1h}]}\n";
    let set = WindowSet::from_yaml("w.yaml", yaml).unwrap();
    assert_eq!(set.names().collect::<Vec<_>>(), ["a"]);
}

#[test]
fn unsupported_api_version_is_an_error() {
    let yaml = "apiVersion: fluxgate.io/v1\nkind: ReconciliationWindow\nmetadata: {name: a}\nspec: {schedules: [{start: '0 1 * * *', duration: 1h}]}\n";
    let err = WindowSet::from_yaml("w.yaml", yaml)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("apiVersion \"fluxgate.io/v1\" is not served"),
        "{err}"
    );
}

#[test]
fn time_zone_defaults_to_utc() {
    let w = mk_window("schedules: [{start: '0 8 * * *', duration: 1h}]");
    assert_eq!(w.time_zone(), Tz::UTC);
    assert!(state(&w, "2026-11-26T08:30:00Z").0);
}

// === open/close pairs ===

#[test]
fn business_hours_open_monday_0800_to_thursday_1700_berlin() {
    let w = mk_window(BUSINESS_HOURS);
    let mon_open = "2026-11-30T07:00:00Z";
    let thu_close = "2026-12-03T16:00:00Z";
    // Exactly at the open instant: open, since then.
    assert_eq!(state(&w, mon_open), (true, some(mon_open), some(thu_close)));
    // One second before: closed since the previous Thursday 17:00.
    assert_eq!(
        state(&w, "2026-11-30T06:59:59Z"),
        (false, some("2026-11-26T16:00:00Z"), some(mon_open))
    );
    // Exactly at the close instant: closed.
    assert_eq!(
        state(&w, thu_close),
        (false, some(thu_close), some("2026-12-07T07:00:00Z"))
    );
    assert!(state(&w, "2026-12-03T15:59:59Z").0);
}

#[test]
fn open_and_close_firing_together_stay_closed() {
    // Opens every day at 08:00 but closes every Monday 08:00: Monday stays closed.
    let w = mk_window("schedules: [{open: '0 8 * * *', close: '0 8 * * MON'}]");
    assert!(!state(&w, "2026-11-30T09:00:00Z").0);
    assert_eq!(
        state(&w, "2026-11-30T09:00:00Z"),
        (
            false,
            some("2026-11-30T08:00:00Z"),
            some("2026-12-01T08:00:00Z")
        )
    );
    // Open from Tuesday 08:00 straight through to the next Monday 08:00.
    assert_eq!(
        state(&w, "2026-12-04T12:00:00Z"),
        (
            true,
            some("2026-12-01T08:00:00Z"),
            some("2026-12-07T08:00:00Z")
        )
    );
}

// === start/duration ===

#[test]
fn start_duration_is_half_open() {
    let w = mk_window("timeZone: Europe/Berlin\nschedules: [{start: '0 22 * * *', duration: 2h}]");
    assert_eq!(
        state(&w, "2026-11-26T21:00:00Z"),
        (
            true,
            some("2026-11-26T21:00:00Z"),
            some("2026-11-26T23:00:00Z")
        )
    );
    assert_eq!(
        state(&w, "2026-11-26T23:00:00Z"),
        (
            false,
            some("2026-11-26T23:00:00Z"),
            some("2026-11-27T21:00:00Z")
        )
    );
}

#[test]
fn duration_is_elapsed_time_across_spring_forward_berlin() {
    // 01:00 CET + 3h on 2026-03-29 ends at 05:00 CEST (03:00 UTC), not 04:00 wall clock.
    let w = mk_window("timeZone: Europe/Berlin\nschedules: [{start: '0 1 * * *', duration: 3h}]");
    assert_eq!(
        state(&w, "2026-03-29T00:00:00Z"),
        (
            true,
            some("2026-03-29T00:00:00Z"),
            some("2026-03-29T03:00:00Z")
        )
    );
}

#[test]
fn window_opening_in_the_spring_gap_opens_when_the_gap_ends() {
    // 02:30 does not exist on 2026-03-29 in Berlin: opens at 03:00 CEST (01:00 UTC).
    let w =
        mk_window("timeZone: Europe/Berlin\nschedules: [{open: '30 2 * * *', close: '0 6 * * *'}]");
    assert!(!state(&w, "2026-03-29T00:59:59Z").0);
    assert_eq!(
        state(&w, "2026-03-29T01:00:00Z"),
        (
            true,
            some("2026-03-29T01:00:00Z"),
            some("2026-03-29T04:00:00Z")
        )
    );
}

#[test]
fn window_in_the_repeated_hour_opens_once_on_fall_back_berlin() {
    // 02:30 happens twice on 2026-10-25 in Berlin; the window opens at the first (00:30 UTC)
    // and closes at 02:45 CET (01:45 UTC) only once.
    let w = mk_window(
        "timeZone: Europe/Berlin\nschedules: [{open: '30 2 * * *', close: '45 2 * * *'}]",
    );
    assert_eq!(
        state(&w, "2026-10-25T00:30:00Z"),
        (
            true,
            some("2026-10-25T00:30:00Z"),
            some("2026-10-25T00:45:00Z")
        )
    );
    // During the second 02:30-02:45 it stays closed.
    assert!(!state(&w, "2026-10-25T01:35:00Z").0);
}

#[test]
fn dst_fall_back_new_york_keeps_elapsed_duration() {
    // 2026-11-01: 01:00 EDT (05:00 UTC) + 2h = 07:00 UTC, which is 02:00 EST.
    let w =
        mk_window("timeZone: America/New_York\nschedules: [{start: '0 1 * * *', duration: 2h}]");
    assert_eq!(
        state(&w, "2026-11-01T05:00:00Z"),
        (
            true,
            some("2026-11-01T05:00:00Z"),
            some("2026-11-01T07:00:00Z")
        )
    );
}

#[test]
fn dst_spring_forward_new_york_open_close() {
    // 2026-03-08 02:00 EST jumps to 03:00 EDT: an open at 02:15 opens at 07:00 UTC.
    let w = mk_window(
        "timeZone: America/New_York\nschedules: [{open: '15 2 * * *', close: '0 4 * * *'}]",
    );
    assert_eq!(
        state(&w, "2026-03-08T07:00:00Z"),
        (
            true,
            some("2026-03-08T07:00:00Z"),
            some("2026-03-08T08:00:00Z")
        )
    );
}

/// Issue 21: on 2026-03-29 02:30 does not exist in Berlin, so the close fires at the gap's end,
/// 03:00 CEST, the instant of the open after it. The window was closed from then until the next
/// day's 03:00: 24 hours closed by a close that precedes the opening on the wall clock.
#[test]
fn a_close_skipped_by_a_dst_gap_does_not_swallow_the_opening_after_it() {
    let w =
        mk_window("timeZone: Europe/Berlin\nschedules: [{open: '0 3 * * *', close: '30 2 * * *'}]");
    // Open since Saturday 03:00 CET, through the gap, until Monday 02:30 CEST.
    let open = (
        true,
        some("2026-03-28T02:00:00Z"),
        some("2026-03-30T00:30:00Z"),
    );
    assert_eq!(state(&w, "2026-03-29T12:00:00Z"), open);
    assert_eq!(state(&w, "2026-03-29T01:00:00Z"), open);
    assert_eq!(state(&w, "2026-03-29T00:59:59Z"), open);
    // Saturday and Monday as every day: closed from 02:30 to 03:00.
    assert_eq!(
        state(&w, "2026-03-28T01:45:00Z"),
        (
            false,
            some("2026-03-28T01:30:00Z"),
            some("2026-03-28T02:00:00Z")
        )
    );
    assert_eq!(
        state(&w, "2026-03-30T00:45:00Z"),
        (
            false,
            some("2026-03-30T00:30:00Z"),
            some("2026-03-30T01:00:00Z")
        )
    );
}

/// Fires that land on one instant keep the order of their wall-clock times: a close written
/// after the open still closes (the opening had no wall-clock time at all), and an open and a
/// close at the same wall-clock time stay closed, as on any other day.
#[test]
fn fires_skipped_into_one_instant_keep_their_wall_clock_order() {
    let gap_end = "2026-03-29T01:00:00Z";
    let w = mk_window(
        "timeZone: Europe/Berlin\nschedules: [{open: '15 2 * * *', close: '45 2 * * *'}]",
    );
    // Closed since Saturday's 02:45 CET: the opening at the gap's end lasts no time at all.
    assert_eq!(
        state(&w, gap_end),
        (
            false,
            some("2026-03-28T01:45:00Z"),
            some("2026-03-30T00:15:00Z")
        )
    );
    assert!(state(&w, "2026-03-28T01:30:00Z").0);
    let w = mk_window(
        "timeZone: Europe/Berlin\nschedules: [{open: '30 2 * * *', close: '30 2 * * SUN'}]",
    );
    assert_eq!(
        state(&w, gap_end),
        (false, some(gap_end), some("2026-03-30T00:30:00Z"))
    );
    assert!(!state(&w, "2026-03-22T01:35:00Z").0);
}

/// Lord Howe Island moves its clocks by 30 minutes: on 2026-10-04 02:00 becomes 02:30 (+11).
#[test]
fn a_close_in_lord_howes_half_hour_gap_does_not_swallow_the_opening() {
    let w = mk_window(
        "timeZone: Australia/Lord_Howe\nschedules: [{open: '30 2 * * *', close: '15 2 * * *'}]",
    );
    // Open since Saturday 02:30 (+10:30) until Monday 02:15 (+11).
    assert_eq!(
        state(&w, "2026-10-03T16:00:00Z"),
        (
            true,
            some("2026-10-02T16:00:00Z"),
            some("2026-10-04T15:15:00Z")
        )
    );
}

/// Samoa skipped 2011-12-30: from Thursday 23:59:59 (-10) to Saturday 00:00 (+14). Friday's
/// 07:00 close and 08:00 open both land on Saturday 00:00; the window stays open through it.
#[test]
fn a_close_on_apias_skipped_day_does_not_swallow_the_opening() {
    let w =
        mk_window("timeZone: Pacific/Apia\nschedules: [{open: '0 8 * * *', close: '0 7 * * *'}]");
    // Open since Thursday 08:00 (-10) until Saturday 07:00 (+14).
    let open = (
        true,
        some("2011-12-29T18:00:00Z"),
        some("2011-12-30T17:00:00Z"),
    );
    assert_eq!(state(&w, "2011-12-30T10:00:00Z"), open);
    assert_eq!(state(&w, "2011-12-30T12:00:00Z"), open);
}

// === overlapping schedules and freezes ===

#[test]
fn abutting_and_overlapping_schedules_merge() {
    let w = mk_window(
        "schedules:\n  - start: '0 22 * * *'\n    duration: 2h\n  - start: '0 0 * * *'\n    duration: 1h\n  - open: '30 0 * * *'\n    close: '0 2 * * *'",
    );
    // Open 22:00 → 00:00 → 01:00, overlapped by 00:30-02:00: one run 22:00 to 02:00.
    assert_eq!(
        state(&w, "2026-11-26T23:00:00Z"),
        (
            true,
            some("2026-11-26T22:00:00Z"),
            some("2026-11-27T02:00:00Z")
        )
    );
    assert_eq!(
        state(&w, "2026-11-27T03:00:00Z"),
        (
            false,
            some("2026-11-27T02:00:00Z"),
            some("2026-11-27T22:00:00Z")
        )
    );
}

#[test]
fn overlapping_starts_of_one_schedule_merge() {
    let w = mk_window("schedules: [{start: '0 */2 * * *', duration: 3h}]");
    assert_eq!(state(&w, "2026-11-26T05:00:00Z"), (true, None, None));
}

#[test]
fn freeze_closes_an_open_window_and_next_looks_past_it() {
    let w = mk_window(BUSINESS_HOURS);
    // Tuesday 2026-12-22: schedules open, frozen. Closed since Thursday 17:00 before the freeze
    // (the freeze began while the schedule was closed); opens on Monday 2027-01-04 08:00.
    let s = evaluate(&w, utc("2026-12-22T10:00:00Z"));
    assert!(!s.open);
    assert_eq!(
        s.freeze.as_ref().and_then(|f| f.reason.as_deref()),
        Some("Year-end change freeze")
    );
    assert_eq!(s.since, Some(utc("2026-12-17T16:00:00Z")));
    assert_eq!(s.next, Some(utc("2027-01-04T07:00:00Z")));
}

#[test]
fn freeze_ending_inside_an_open_schedule_opens_at_freeze_end() {
    let w = mk_window(
        "schedules: [{open: '0 8 * * MON', close: '0 17 * * FRI'}]\nfreezes: [{start: '2026-12-01T00:00:00Z', end: '2026-12-02T12:00:00Z'}]",
    );
    assert_eq!(
        state(&w, "2026-12-01T10:00:00Z"),
        (
            false,
            some("2026-12-01T00:00:00Z"),
            some("2026-12-02T12:00:00Z")
        )
    );
    assert_eq!(
        state(&w, "2026-12-02T12:00:00Z"),
        (
            true,
            some("2026-12-02T12:00:00Z"),
            some("2026-12-04T17:00:00Z")
        )
    );
    // Before the freeze, open since Monday and closing when the freeze starts.
    assert_eq!(
        state(&w, "2026-11-30T10:00:00Z"),
        (
            true,
            some("2026-11-30T08:00:00Z"),
            some("2026-12-01T00:00:00Z")
        )
    );
}

#[test]
fn a_window_whose_schedules_never_open_again_reports_no_next() {
    // Closed for good once frozen until 2200: no transition within the search horizon. The
    // freeze began while the schedule was closed, so it has been closed since 09:00 the day
    // before.
    let w = mk_window(
        "schedules: [{start: '0 8 * * *', duration: 1h}]\nfreezes: [{start: '2026-01-01T00:00:00Z', end: '2200-01-01T00:00:00Z'}]",
    );
    assert_eq!(
        state(&w, "2026-11-26T08:30:00Z"),
        (false, some("2025-12-31T09:00:00Z"), None)
    );
}

// === next does not vanish ===

#[test]
fn next_is_found_past_days_of_merged_minute_runs() {
    // A start every minute lasting 1h is open for good; a freeze in 4 days closes it. The walk
    // used to merge runs minute by minute and give up after 5000 (3.5 days), leaving no next.
    let w = mk_window(
        "schedules: [{start: '* * * * *', duration: 1h}]\n\
         freezes: [{start: '2026-11-30T12:00:00Z', end: '2026-11-30T13:00:00Z'}]",
    );
    let s = evaluate(&w, utc("2026-11-26T12:00:00Z"));
    assert!(s.open);
    assert_eq!(s.next, Some(utc("2026-11-30T12:00:00Z")));
    assert_eq!(s.searched_until, None);
    // And back: open since the freeze ended, not "unknown".
    let s = evaluate(&w, utc("2026-12-04T12:00:00Z"));
    assert_eq!(s.since, Some(utc("2026-11-30T13:00:00Z")));
}

/// Issue 21, item 9 (`alternate` in benches/support/heavy-windows.yaml): two one-minute
/// schedules on alternate minutes are open for good; a freeze in six months closes them. The
/// walk crossed their runs a minute per step and gave up after 5,000 (3.5 days) both ways.
#[test]
fn next_and_since_are_found_past_months_of_runs_on_alternate_minutes() {
    let w = mk_window(
        "schedules:\n  - start: '0-58/2 * * * *'\n    duration: 1m\n  - start: '1-59/2 * * * *'\n    duration: 1m\n\
         freezes: [{start: '2027-06-01T00:00:00Z', end: '2027-06-02T00:00:00Z'}]",
    );
    let s = evaluate(&w, utc("2026-11-26T12:00:30Z"));
    assert!(s.open);
    assert_eq!(s.next, Some(utc("2027-06-01T00:00:00Z")));
    assert_eq!(s.searched_until, None);
    // Open since before the horizon: no since.
    assert_eq!(s.since, None);
    let s = evaluate(&w, utc("2027-06-20T12:00:00Z"));
    assert_eq!(s.since, Some(utc("2027-06-02T00:00:00Z")));
}

#[test]
fn a_search_that_stops_says_where() {
    // Two open/close pairs taking turns every minute: always open, each pair changing every
    // minute, a freeze far ahead. The walk gives up at some instant and says so instead of
    // claiming "no change".
    let w = mk_window(
        "schedules:\n  - open: '0-58/2 * * * *'\n    close: '1-59/2 * * * *'\n  - open: '1-59/2 * * * *'\n    close: '0-58/2 * * * *'\n\
         freezes: [{start: '2027-06-01T00:00:00Z', end: '2027-06-02T00:00:00Z'}]",
    );
    let s = evaluate(&w, utc("2026-11-26T12:00:30Z"));
    assert!(s.open);
    match (s.next, s.searched_until) {
        (Some(next), None) => assert_eq!(next, utc("2027-06-01T00:00:00Z")),
        (None, Some(until)) => assert!(until > utc("2026-11-26T12:00:30Z")),
        other => panic!("next vanished without saying where the search stopped: {other:?}"),
    }
}

// === freezes people can write ===

/// A freeze's period as the state reports it at `t`.
fn freeze_at(window: &Window, t: &str) -> Option<(Option<String>, Option<String>, bool)> {
    let s = evaluate(window, utc(t));
    let fmt = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
    s.freeze.map(|f| (fmt(f.start), fmt(f.end), f.allow_bypass))
}

fn once(start: &str, end: &str) -> Option<(Option<String>, Option<String>, bool)> {
    Some((some(start), some(end), true))
}

#[test]
fn local_and_date_only_freeze_times_are_read_in_the_window_zone() {
    for (zone, start, end) in [
        (
            "Europe/Berlin",
            "2026-12-23T23:00:00Z",
            "2026-12-27T17:30:00Z",
        ),
        (
            "America/New_York",
            "2026-12-24T05:00:00Z",
            "2026-12-27T23:30:00Z",
        ),
    ] {
        let w = mk_window(&format!(
            "timeZone: {zone}\nschedules: [{{open: '0 8 * * *', close: '0 17 * * *'}}]\n\
             freezes: [{{start: '2026-12-24', end: '2026-12-27T18:30'}}]"
        ));
        assert_eq!(
            freeze_at(&w, "2026-12-25T12:00:00Z"),
            once(start, end),
            "{zone}"
        );
    }
}

#[test]
fn local_freeze_times_follow_the_dst_rules_in_both_zones() {
    // Spring forward: 02:30 does not exist; it means the gap's end (03:00 local). Fall back:
    // 01:30 (New York) / 02:30 (Berlin) occur twice; they mean the first occurrence.
    let cases = [
        (
            "Europe/Berlin",
            "2026-03-29T02:30:00",
            "2026-03-29T01:00:00Z",
            "2026-10-25T02:30:00",
            "2026-10-25T00:30:00Z",
        ),
        (
            "America/New_York",
            "2026-03-08T02:30:00",
            "2026-03-08T07:00:00Z",
            "2026-11-01T01:30:00",
            "2026-11-01T05:30:00Z",
        ),
    ];
    for (zone, gap, gap_utc, fold, fold_utc) in cases {
        let w = mk_window(&format!(
            "timeZone: {zone}\nschedules: [{{open: '0 8 * * *', close: '0 17 * * *'}}]\n\
             freezes: [{{start: '{gap}', end: '{fold}'}}]"
        ));
        assert_eq!(
            freeze_at(&w, "2026-06-01T12:00:00Z"),
            once(gap_utc, fold_utc),
            "{zone}"
        );
        // Seconds in a gap do not carry over past its end.
        let tz: Tz = zone.parse().unwrap();
        assert_eq!(
            parse_time(tz, &gap.replace(":30:00", ":30:15")),
            Ok(utc(gap_utc))
        );
    }
}

#[test]
fn a_recurring_freeze_closes_every_weekend() {
    // No changes Friday 15:00 to Monday 08:00 (65h), in both zones.
    for (zone, friday_utc, monday_utc) in [
        (
            "Europe/Berlin",
            "2026-11-27T14:00:00Z",
            "2026-11-30T07:00:00Z",
        ),
        (
            "America/New_York",
            "2026-11-27T20:00:00Z",
            "2026-11-30T13:00:00Z",
        ),
    ] {
        let w = mk_window(&format!(
            "timeZone: {zone}\nschedules: [{{open: '0 8 * * MON', close: '0 17 * * FRI'}}]\n\
             freezes: [{{schedule: '0 15 * * FRI', duration: 65h, reason: weekend}}]"
        ));
        let s = evaluate(&w, utc(friday_utc));
        assert!(!s.open, "{zone}");
        assert_eq!(s.since, Some(utc(friday_utc)), "{zone}");
        assert_eq!(s.next, Some(utc(monday_utc)), "{zone}");
        let freeze = s.freeze.unwrap();
        assert_eq!(freeze.reason.as_deref(), Some("weekend"));
        assert_eq!(
            (freeze.start, freeze.end),
            (Some(utc(friday_utc)), Some(utc(monday_utc)))
        );
        // Just before: open, closing at 15:00.
        let before = evaluate(&w, utc(friday_utc) - Duration::minutes(1));
        assert!(before.open && before.freeze.is_none());
        assert_eq!(before.next, Some(utc(friday_utc)));
    }
}

#[test]
fn a_recurring_freeze_lasts_its_elapsed_duration_across_dst_in_both_zones() {
    // Friday 15:00 before the autumn change + 65h elapsed: Monday 07:00 local, not 08:00
    // (the weekend has a 25-hour day).
    for (zone, friday_utc, end_utc) in [
        (
            "Europe/Berlin",
            "2026-10-23T13:00:00Z",
            "2026-10-26T06:00:00Z",
        ),
        (
            "America/New_York",
            "2026-10-30T19:00:00Z",
            "2026-11-02T12:00:00Z",
        ),
    ] {
        let w = mk_window(&format!(
            "timeZone: {zone}\nschedules: [{{open: '0 8 * * MON', close: '0 17 * * FRI'}}]\n\
             freezes: [{{schedule: '0 15 * * FRI', duration: 65h}}]"
        ));
        let s = evaluate(&w, utc(friday_utc) + Duration::hours(1));
        assert_eq!(s.since, Some(utc(friday_utc)), "{zone}");
        assert_eq!(s.freeze.unwrap().end, Some(utc(end_utc)), "{zone}");
    }
    // A recurring freeze starting in the spring gap starts at the gap's end.
    for (zone, day, gap_end) in [
        ("Europe/Berlin", "29", "2026-03-29T01:00:00Z"),
        ("America/New_York", "8", "2026-03-08T07:00:00Z"),
    ] {
        let w = mk_window(&format!(
            "timeZone: {zone}\nschedules: [{{start: '0 0 * * *', duration: 24h}}]\n\
             freezes: [{{schedule: '30 2 {day} 3 *', duration: 1h}}]"
        ));
        let s = evaluate(&w, utc(gap_end));
        assert!(!s.open, "{zone}");
        assert_eq!(s.since, Some(utc(gap_end)), "{zone}");
        assert_eq!(s.next, Some(utc(gap_end) + Duration::hours(1)), "{zone}");
    }
}

#[test]
fn a_yearly_freeze_from_cron() {
    let w = mk_window(
        "timeZone: Europe/Berlin\nschedules: [{start: '0 0 * * *', duration: 24h}]\n\
         freezes: [{schedule: '0 0 24 12 *', duration: 72h, reason: Christmas}]",
    );
    assert_eq!(
        state(&w, "2027-12-25T12:00:00Z"),
        (
            false,
            some("2027-12-23T23:00:00Z"),
            some("2027-12-26T23:00:00Z")
        )
    );
}

#[test]
fn a_hard_freeze_is_reported_as_such_and_overrides_do_not_open_it() {
    let w = mk_window(
        &format!(
            "{BUSINESS_HOURS}overrides: [{{start: '2026-12-22T09:00:00+01:00', end: \
         '2026-12-22T11:00:00+01:00', reason: outage fix}}]"
        )
        .replace(
            "reason: Year-end change freeze",
            "reason: Year-end change freeze\n    allowBypass: false",
        ),
    );
    let s = evaluate(&w, utc("2026-12-22T08:30:00Z"));
    assert!(!s.open);
    assert!(s.opened_by.is_none());
    assert!(!s.freeze.unwrap().allow_bypass);
    // Soft by default.
    let soft = mk_window(BUSINESS_HOURS);
    assert!(
        evaluate(&soft, utc("2026-12-22T08:30:00Z"))
            .freeze
            .unwrap()
            .allow_bypass
    );
}

// === overrides ===

/// business-hours with an override for a Friday-evening release.
const FRIDAY_RELEASE: &str = r#"
overrides:
  - start: "2026-11-27T18:00:00+01:00"
    end: "2026-11-27T22:00:00+01:00"
    reason: "CHG-4711 release 2.3"
"#;

#[test]
fn an_override_opens_a_closed_window_on_its_period() {
    let w = mk_window(&format!("{BUSINESS_HOURS}{FRIDAY_RELEASE}"));
    // Before: closed since Thursday 17:00, until the override starts.
    assert_eq!(
        state(&w, "2026-11-27T16:59:00Z"),
        (
            false,
            some("2026-11-26T16:00:00Z"),
            some("2026-11-27T17:00:00Z")
        )
    );
    // During: open by the override, which the state names.
    let s = evaluate(&w, utc("2026-11-27T17:00:00Z"));
    assert!(s.open);
    assert_eq!(s.since, Some(utc("2026-11-27T17:00:00Z")));
    assert_eq!(s.next, Some(utc("2026-11-27T21:00:00Z")));
    assert_eq!(s.opened_by.as_ref().unwrap().reason, "CHG-4711 release 2.3");
    // At its end: closed again until Monday 08:00.
    assert_eq!(
        state(&w, "2026-11-27T21:00:00Z"),
        (
            false,
            some("2026-11-27T21:00:00Z"),
            some("2026-11-30T07:00:00Z")
        )
    );
}

#[test]
fn an_override_while_the_schedules_are_open_changes_nothing() {
    // Thursday 10:00 to 18:00: open by the schedule until 17:00, not by the override.
    let w = mk_window(&format!(
        "{BUSINESS_HOURS}overrides: [{{start: '2026-11-26T10:00:00+01:00', end: \
         '2026-11-26T18:00:00+01:00', reason: r}}]"
    ));
    let s = evaluate(&w, utc("2026-11-26T10:00:00Z"));
    assert!(s.open && s.opened_by.is_none());
    assert_eq!(s.next, Some(utc("2026-11-26T17:00:00Z")));
    // After 17:00 the override alone holds it open, until 18:00: open since Monday 08:00.
    let s = evaluate(&w, utc("2026-11-26T16:30:00Z"));
    assert_eq!(s.opened_by.as_ref().map(|o| o.reason.as_str()), Some("r"));
    assert_eq!(s.since, Some(utc("2026-11-23T07:00:00Z")));
    assert_eq!(s.next, Some(utc("2026-11-26T17:00:00Z")));
}

#[test]
fn an_override_opens_a_window_during_a_soft_freeze() {
    let w = mk_window(&format!(
        "{BUSINESS_HOURS}overrides: [{{start: '2026-12-22T09:00:00+01:00', end: \
         '2026-12-22T11:00:00+01:00', reason: outage fix}}]"
    ));
    let s = evaluate(&w, utc("2026-12-22T08:30:00Z"));
    assert!(s.open);
    assert!(s.freeze.is_some());
    assert_eq!(s.next, Some(utc("2026-12-22T10:00:00Z")));
    // Closed again when it ends; the freeze still holds until 2027-01-04.
    assert_eq!(
        state(&w, "2026-12-22T10:00:00Z"),
        (
            false,
            some("2026-12-22T10:00:00Z"),
            some("2027-01-04T07:00:00Z")
        )
    );
}

#[test]
fn an_expired_override_is_harmless() {
    let w = mk_window(&format!(
        "{BUSINESS_HOURS}overrides: [{{start: '2026-01-02T09:00:00Z', end: \
         '2026-01-02T10:00:00Z', reason: old}}]"
    ));
    let plain = mk_window(BUSINESS_HOURS);
    for t in ["2026-11-27T12:00:00Z", "2026-11-26T12:00:00Z"] {
        assert_eq!(evaluate(&w, utc(t)), evaluate(&plain, utc(t)), "{t}");
    }
}

#[test]
fn invalid_overrides_name_the_field() {
    let cases = [
        (
            "overrides: [{start: '2026-11-27T18:00:00Z', end: '2026-11-27T17:00:00Z', reason: r}]",
            "spec.overrides[0].end: \"2026-11-27T17:00:00Z\" is not after start",
        ),
        (
            "overrides: [{start: '2026-11-27T18:00:00Z', end: '2026-11-27T19:00:00Z', reason: ' '}]",
            "spec.overrides[0].reason: say why",
        ),
        (
            "overrides: [{start: 'friday', end: '2026-11-27T19:00:00Z', reason: r}]",
            "spec.overrides[0].start: \"friday\"",
        ),
    ];
    for (overrides, want) in cases {
        let err = try_window(&format!("{BUSINESS_HOURS}{overrides}")).unwrap_err();
        assert!(err.contains(want), "{overrides}: {err}");
    }
    // The reason is required.
    let err = try_window(&format!(
        "{BUSINESS_HOURS}overrides: [{{start: '2026-11-27T18:00:00Z', end: '2026-11-27T19:00:00Z'}}]"
    ))
    .unwrap_err();
    assert!(err.contains("reason"), "{err}");
}

#[test]
fn the_cache_ends_when_an_override_starts_holding_the_window_open() {
    // Open by the schedule until 17:00, by the override after: the state itself does not
    // change at 17:00, but what holds it open does.
    let w = mk_window(&format!(
        "{BUSINESS_HOURS}overrides: [{{start: '2026-11-26T10:00:00+01:00', end: \
         '2026-11-26T18:00:00+01:00', reason: r}}]"
    ));
    assert!(w.state_at(utc("2026-11-26T15:00:00Z")).opened_by.is_none());
    assert!(w.state_at(utc("2026-11-26T16:30:00Z")).opened_by.is_some());
}

// === cache ===

#[test]
fn state_is_cached_until_the_next_transition() {
    let w = mk_window(BUSINESS_HOURS);
    let first = w.state_at(utc("2026-11-26T12:00:00Z"));
    let again = w.state_at(utc("2026-11-26T15:59:59Z"));
    assert!(
        Arc::ptr_eq(&first, &again),
        "recomputed inside the same state"
    );
    let after = w.state_at(utc("2026-11-26T16:00:00Z"));
    assert!(!Arc::ptr_eq(&first, &after));
    assert!(!after.open);
    // Going back in time (review --at) recomputes rather than reusing a later state.
    assert!(w.state_at(utc("2026-11-26T12:00:00Z")).open);
}

#[test]
fn cache_ends_at_freeze_edges_even_when_state_does_not_change() {
    // Closed Friday to Monday; a freeze starts on Saturday: frozen only from then on.
    let w = mk_window(
        "schedules: [{open: '0 8 * * MON', close: '0 17 * * FRI'}]\nfreezes: [{start: '2026-11-28T00:00:00Z', end: '2026-12-08T00:00:00Z', reason: audit}]",
    );
    assert!(w.state_at(utc("2026-11-27T18:00:00Z")).freeze.is_none());
    assert!(w.state_at(utc("2026-11-28T01:00:00Z")).freeze.is_some());
}

mod since_and_next {
    //! `since` and `next` against the definition, on generated windows: the state holds on
    //! `[since, next)` and differs just before `since` and at `next`.
    use super::*;
    use proptest::prelude::*;

    /// The effective state by definition: some schedule open and no freeze covering `t`, or
    /// an override covering it and no hard freeze.
    fn open_at(window: &Window, t: DateTime<Utc>) -> bool {
        let tz = window.time_zone;
        (window.schedules.iter().any(|s| s.open_at(tz, t))
            && !window.freezes.iter().any(|f| f.covers(tz, t)))
            || (window.overrides.iter().any(|o| o.covers(t))
                && !window
                    .freezes
                    .iter()
                    .any(|f| !f.allow_bypass && f.covers(tz, t)))
    }

    fn schedule() -> impl Strategy<Value = String> {
        let cron = prop::sample::select(vec![
            "0 8 * * MON",
            "0 17 * * THU",
            "*/22 1/3 * * *",
            "30 2 * * *",
            "0 0 1 * *",
            "@annually",
            "0 */6 * * *",
            "15 9 * * 1-5",
            "0 0 * * SUN",
        ]);
        let duration = prop::sample::select(vec!["33m", "1h34m", "6h", "24h", "49h"]);
        prop_oneof![
            (cron.clone(), cron.clone())
                .prop_filter("open equal to close is invalid", |(o, c)| o != c)
                .prop_map(|(o, c)| format!("  - open: \"{o}\"\n    close: \"{c}\"\n")),
            (cron, duration).prop_map(|(s, d)| format!("  - start: \"{s}\"\n    duration: {d}\n")),
        ]
    }

    fn window() -> impl Strategy<Value = Window> {
        let zone = prop::sample::select(vec!["UTC", "Europe/Berlin", "Australia/Lord_Howe"]);
        let once = (0i64..400, 1i64..30).prop_map(|(day, days)| {
            let start = utc("2026-01-01T00:00:00Z") + Duration::days(day);
            format!(
                "  - start: \"{}\"\n    end: \"{}\"\n",
                start.to_rfc3339(),
                (start + Duration::days(days)).to_rfc3339()
            )
        });
        let recurring = (
            prop::sample::select(vec![
                "0 15 * * FRI",
                "30 2 * * *",
                "0 0 24 12 *",
                "0 */6 * * *",
            ]),
            prop::sample::select(vec!["65h", "1h", "72h", "7h"]),
        )
            .prop_map(|(cron, duration)| {
                format!("  - schedule: \"{cron}\"\n    duration: {duration}\n")
            });
        let freeze = (prop_oneof![once, recurring], any::<bool>()).prop_map(|(freeze, hard)| {
            if hard {
                format!("{freeze}    allowBypass: false\n")
            } else {
                freeze
            }
        });
        let an_override = (0i64..800 * 24, 1i64..30).prop_map(|(hour, hours)| {
            let start = utc("2026-01-01T00:00:00Z") + Duration::hours(hour);
            format!(
                "  - start: \"{}\"\n    end: \"{}\"\n    reason: r\n",
                start.to_rfc3339(),
                (start + Duration::hours(hours)).to_rfc3339()
            )
        });
        (
            zone,
            prop::collection::vec(schedule(), 1..4),
            prop::collection::vec(freeze, 0..2),
            prop::collection::vec(an_override, 0..3),
        )
            .prop_map(|(zone, schedules, freezes, overrides)| {
                let mut spec = format!("timeZone: {zone}\nschedules:\n{}", schedules.concat());
                if !freezes.is_empty() {
                    spec.push_str(&format!("freezes:\n{}", freezes.concat()));
                }
                if !overrides.is_empty() {
                    spec.push_str(&format!("overrides:\n{}", overrides.concat()));
                }
                mk_window(&spec)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_state_holds_from_since_to_next(
            window in window(),
            minute in 0i64..(2 * 366 * 24 * 60),
            samples in prop::collection::vec(0.0f64..1.0, 24),
        ) {
            let t = utc("2026-01-01T00:00:00Z") + Duration::minutes(minute);
            let state = evaluate(&window, t);
            prop_assert_eq!(state.open, open_at(&window, t));
            let ns = Duration::nanoseconds(1);
            if let Some(since) = state.since {
                prop_assert!(since <= t);
                prop_assert_ne!(open_at(&window, since - ns), state.open, "just before since {}", since);
                let edges = window
                    .freezes
                    .iter()
                    .flat_map(|f| match f.times {
                        FreezeTimes::Once { start, end } => vec![start, end - ns],
                        FreezeTimes::Recurring(_) | FreezeTimes::Calendar(_) => Vec::new(),
                    })
                    .chain(window.overrides.iter().flat_map(|o| [o.start, o.end - ns]));
                let within = samples
                    .iter()
                    .map(|f| since + Duration::seconds(((t - since).num_seconds() as f64 * f) as i64))
                    .chain(edges.filter(|u| since <= *u && *u <= t));
                for u in within {
                    prop_assert_eq!(open_at(&window, u), state.open, "at {} in [since {}, {}]", u, since, t);
                }
            }
            if let Some(next) = state.next {
                prop_assert!(next > t);
                prop_assert_ne!(open_at(&window, next), state.open, "at next {}", next);
                for f in &samples {
                    let u = t + Duration::seconds(((next - t).num_seconds() as f64 * f) as i64);
                    prop_assert!(u >= next || open_at(&window, u) == state.open, "at {} in [{}, next {})", u, t, next);
                }
            }
        }
    }
}

/// Long runs are walked in one step, however often the parts change inside them: a year-long
/// freeze over schedules that change every 22 minutes (about 24,000 changes, more than a walk
/// visits), and a year-long open schedule next to them.
#[test]
fn since_is_found_at_the_start_of_long_runs_with_busy_parts() {
    let frozen = mk_window(
        "schedules:\n  - start: \"*/22 * * * *\"\n    duration: 11m\n\
         freezes:\n  - start: \"2026-01-01T00:00:00Z\"\n    end: \"2027-01-01T00:00:00Z\"\n",
    );
    let s = evaluate(&frozen, utc("2026-11-26T12:05:00Z"));
    assert!(!s.open);
    // Closed since the 23:44 run ended, just before the freeze began.
    assert_eq!(s.since, Some(utc("2025-12-31T23:55:00Z")));
    let open = mk_window(
        "schedules:\n  - start: \"*/22 * * * *\"\n    duration: 11m\n  \
         - open: \"0 0 1 1 *\"\n    close: \"0 0 31 12 *\"\n",
    );
    let s = evaluate(&open, utc("2026-11-26T12:15:00Z"));
    assert!(s.open);
    assert_eq!(s.since, Some(utc("2026-01-01T00:00:00Z")));
}

/// A freeze that starts while the window is closed changes no transition, but it changes what
/// the state says (frozen, and why): the state holds only until the freeze starts, so whoever
/// keeps states warm wakes then (src/cluster/sync.rs), not at Monday's opening.
#[test]
fn the_state_holds_until_a_freeze_starts_while_closed() {
    let window = mk_window(
        r#"
timeZone: UTC
schedules:
  - open: "0 8 * * MON"
    close: "0 17 * * THU"
freezes:
  - start: "2026-11-27T10:00:00Z"
    end: "2026-11-27T12:00:00Z"
    reason: Release rehearsal
"#,
    );
    let now = utc("2026-11-27T09:00:00Z");
    assert_eq!(window.state_at(now).next, Some(utc("2026-11-30T08:00:00Z")));
    assert_eq!(window.state_holds_until(now), utc("2026-11-27T10:00:00Z"));
    let frozen = utc("2026-11-27T10:00:00Z");
    assert!(window.state_at(frozen).freeze.is_some());
    assert_eq!(
        window.state_holds_until(frozen),
        utc("2026-11-27T12:00:00Z")
    );
}
