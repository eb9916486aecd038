//! The planner on the seed's commit (rendered by `kubectl kustomize`, `tests/fixtures/plan/`)
//! and on small inputs, one landing kind at a time.

use super::*;
use crate::window::WindowSet;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/plan/seed");

fn at(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
}

/// Saturday 2026-11-28 12:00 in Berlin: business-hours is closed until Monday 08:00.
const SATURDAY: &str = "2026-11-28T12:00:00+01:00";

fn seed(side: &str) -> Vec<Input> {
    ["apps-rt", "apps-rw", "reconciliation-windows"]
        .iter()
        .map(|owner| {
            let path = format!("{SEED}/{side}/{owner}.yaml");
            let text = std::fs::read_to_string(&path).unwrap();
            parse_input(&path, owner, &text).unwrap()
        })
        .collect()
}

fn seed_windows() -> WindowSet {
    let path = format!("{SEED}/head/reconciliation-windows.yaml");
    WindowSet::from_yaml(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn input(owner: &str, yaml: &str) -> Input {
    parse_input(&format!("{owner}.yaml"), owner, yaml).unwrap()
}

/// `(object, change, landing)` of every change, owner by owner.
fn landings(plan: &Plan) -> Vec<(String, &'static str, String)> {
    plan.changes()
        .map(|c| (c.object.clone(), c.change.as_str(), c.landing.text()))
        .collect()
}

fn object(kind: &str, name: &str, labels: &[&str], annotations: &[&str], data: &str) -> String {
    let block = |title: &str, lines: &[&str]| {
        if lines.is_empty() {
            String::new()
        } else {
            let body: String = lines.iter().map(|l| format!("    {l}\n")).collect();
            format!("  {title}:\n{body}")
        }
    };
    format!(
        "---\napiVersion: v1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: app\n{}{}data:\n  value: {data:?}\n",
        block("labels", labels),
        block("annotations", annotations)
    )
}

const RW: &str = "fluxgate.io/mode: rw";
const BH: &str = "fluxgate.io/window: business-hours";

fn plan_at(base: &[Input], head: &[Input], windows: &WindowSet, t: &str) -> Plan {
    plan(base, head, windows, &Policy::default(), at(t)).unwrap()
}

// === the seed's commit ===

#[test]
fn seed_commit_on_a_saturday_configmap_now_deployment_monday_0800() {
    let plan = plan_at(&seed("base"), &seed("head"), &seed_windows(), SATURDAY);
    assert_eq!(
        landings(&plan),
        [
            (
                "ConfigMap nginx/nginx-conf".to_owned(),
                "update",
                "now".to_owned()
            ),
            (
                "Deployment nginx/nginx".to_owned(),
                "update",
                "at 2026-11-30T08:00:00+01:00".to_owned()
            ),
        ]
    );
    let owners: Vec<(&str, String, bool)> = plan
        .owners
        .iter()
        .map(|o| (o.name.as_str(), o.landing.text(), o.landing.waits()))
        .collect();
    assert_eq!(
        owners,
        [
            ("apps-rt", "now".to_owned(), false),
            ("apps-rw", "at 2026-11-30T08:00:00+01:00".to_owned(), true)
        ]
    );
    // The Namespace, the Service and the window do not change.
    assert_eq!(plan.unchanged, 3);
    assert!(plan.waiting() && !plan.blocked());
    assert_eq!(
        render::summary(&plan),
        "1 change lands now; 1 waits for business-hours until Mon 30 Nov 08:00 CET (in 1 d 20 h)"
    );
}

#[test]
fn seed_commit_while_the_window_is_open_lands_now_and_in_the_freeze_after_it() {
    let plan = plan_at(
        &seed("base"),
        &seed("head"),
        &seed_windows(),
        "2026-11-30T09:00:00+01:00",
    );
    assert!(plan.changes().all(|c| c.landing == Landing::Now));
    // In the year-end freeze (20 Dec to 4 Jan): the first Monday 08:00 after it.
    let plan = plan_at(
        &seed("base"),
        &seed("head"),
        &seed_windows(),
        "2026-12-22T10:00:00+01:00",
    );
    let deployment = plan.changes().find(|c| c.kind == "Deployment").unwrap();
    assert_eq!(deployment.landing.text(), "at 2027-01-04T08:00:00+01:00");
    assert_eq!(deployment.reason, Reason::Frozen);
}

// === creates, deletes, no-ops ===

#[test]
fn creates_deletes_and_updates_are_matched_by_group_kind_namespace_and_name() {
    let base = [input(
        "app",
        &[
            object("ConfigMap", "kept", &[RW, BH], &[], "1"),
            object("ConfigMap", "gone", &[RW, BH], &[], "1"),
            object("Secret", "same-name", &[], &[], "1"),
        ]
        .concat(),
    )];
    let head = [input(
        "app",
        &[
            object("ConfigMap", "kept", &[RW, BH], &[], "2"),
            object("ConfigMap", "new", &[], &[], "1"),
            // Another kind of the same name is another object.
            object("ConfigMap", "same-name", &[], &[], "1"),
        ]
        .concat(),
    )];
    let windows = WindowSet::embedded().unwrap();
    let plan = plan_at(&base, &head, &windows, SATURDAY);
    let found: Vec<(String, &str, String)> = landings(&plan);
    assert_eq!(
        found,
        [
            (
                "ConfigMap app/kept".into(),
                "update",
                "at 2026-11-30T08:00:00+01:00".into()
            ),
            ("ConfigMap app/new".into(), "create", "now".into()),
            ("ConfigMap app/same-name".into(), "create", "now".into()),
            // Flux's prune of an rw object waits for its window too.
            (
                "ConfigMap app/gone".into(),
                "delete",
                "at 2026-11-30T08:00:00+01:00".into()
            ),
            ("Secret app/same-name".into(), "delete", "now".into()),
        ]
    );
}

#[test]
fn bookkeeping_is_no_change_as_for_the_webhook() {
    let base = object("ConfigMap", "a", &[RW, BH], &[], "1")
        + "status:\n  x: 1\n"
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: app\n  labels:\n    fluxgate.io/mode: rw\n  resourceVersion: \"1\"\ndata: {v: 1.0}\n";
    let head = object("ConfigMap", "a", &[RW, BH], &[], "1")
        + "status:\n  x: 2\n"
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: app\n  labels:\n    fluxgate.io/mode: rw\n  resourceVersion: \"2\"\ndata: {v: 1.00}\n";
    let plan = plan_at(
        &[input("app", &base)],
        &[input("app", &head)],
        &WindowSet::embedded().unwrap(),
        SATURDAY,
    );
    assert!(plan.owners.is_empty(), "{:?}", landings(&plan));
    assert_eq!(plan.unchanged, 2);
    assert_eq!(render::summary(&plan), "no changes");
    assert_eq!(render::table(&plan), "no changes\n");
}

#[test]
fn an_object_given_twice_is_an_error_naming_both_places() {
    let text = object("ConfigMap", "a", &[], &[], "1");
    let error = plan(
        &[],
        &[input("one", &text), input("two", &text)],
        &WindowSet::default(),
        &Policy::default(),
        at(SATURDAY),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "ConfigMap app/a is in the head twice, at one.yaml:2 and at two.yaml:2: Flux would apply \
         it from two places; keep one"
    );
}

// === never, bypass, warn ===

#[test]
fn an_unknown_window_never_lands_and_says_the_fix_lint_gives() {
    let head = [input(
        "app",
        &object(
            "ConfigMap",
            "a",
            &[RW, "fluxgate.io/window: busines-hours"],
            &[],
            "1",
        ),
    )];
    let plan = plan_at(&[], &head, &WindowSet::embedded().unwrap(), SATURDAY);
    let change = plan.changes().next().unwrap();
    assert_eq!(change.landing, Landing::Never);
    assert_eq!(change.reason, Reason::UnknownWindow);
    assert!(
        change.message.contains("\"busines-hours\""),
        "{}",
        change.message
    );
    assert_eq!(
        change.fix.as_deref(),
        Some(
            "correct the label, or add a ReconciliationWindow named \"busines-hours\" (and pass \
             it with --windows)"
        )
    );
    assert!(plan.blocked());
    assert_eq!(render::summary(&plan), "1 change is blocked");
}

#[test]
fn a_valid_bypass_lands_now_until_its_expiry_and_an_invalid_one_never() {
    let valid = [
        "fluxgate.io/bypass-reason: CVE fix",
        "fluxgate.io/bypass-until: \"2026-11-28T18:00:00+01:00\"",
    ];
    let expired = [
        "fluxgate.io/bypass-reason: CVE fix",
        "fluxgate.io/bypass-until: \"2026-11-27T18:00:00+01:00\"",
    ];
    let head = [input(
        "app",
        &[
            object("ConfigMap", "a", &[RW, BH], &valid, "1"),
            object("ConfigMap", "b", &[RW, BH], &expired, "1"),
        ]
        .concat(),
    )];
    let plan = plan_at(&[], &head, &WindowSet::embedded().unwrap(), SATURDAY);
    assert_eq!(
        landings(&plan),
        [
            (
                "ConfigMap app/a".into(),
                "create",
                "bypass until 2026-11-28T17:00:00Z".into()
            ),
            ("ConfigMap app/b".into(), "create", "never".into()),
        ]
    );
    let b = plan.changes().nth(1).unwrap();
    assert_eq!(b.reason, Reason::InvalidBypass);
    assert!(
        b.fix
            .as_deref()
            .unwrap()
            .starts_with("remove the bypass annotations")
    );
    assert_eq!(
        render::summary(&plan),
        "1 change lands now (1 by bypass); 1 is blocked"
    );
}

const TWO_WINDOWS: &str = "
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata: {name: weekdays}
spec:
  timeZone: Europe/Berlin
  schedules: [{open: '0 8 * * MON', close: '0 17 * * FRI'}]
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata: {name: tuesday-noon}
spec:
  timeZone: America/New_York
  schedules: [{start: '0 12 * * TUE', duration: 1h}]
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata: {name: trial}
spec:
  enforcement: Warn
  schedules: [{start: '0 3 * * *', duration: 1h}]
";

#[test]
fn a_warn_window_lands_now_with_a_warning() {
    let windows = WindowSet::from_yaml("w.yaml", TWO_WINDOWS).unwrap();
    let head = [input(
        "app",
        &object(
            "ConfigMap",
            "a",
            &[RW, "fluxgate.io/window: trial"],
            &[],
            "1",
        ),
    )];
    let plan = plan_at(&[], &head, &windows, SATURDAY);
    assert_eq!(plan.changes().next().unwrap().landing, Landing::NowWarn);
    assert!(!plan.waiting());
}

#[test]
fn a_change_whose_old_and_new_windows_differ_waits_until_both_are_open() {
    let windows = WindowSet::from_yaml("w.yaml", TWO_WINDOWS).unwrap();
    let base = [input(
        "app",
        &object(
            "ConfigMap",
            "a",
            &[RW, "fluxgate.io/window: weekdays"],
            &[],
            "1",
        ),
    )];
    let head = [input(
        "app",
        &object(
            "ConfigMap",
            "a",
            &[RW, "fluxgate.io/window: tuesday-noon"],
            &[],
            "1",
        ),
    )];
    let plan = plan_at(&base, &head, &windows, SATURDAY);
    let change = plan.changes().next().unwrap();
    assert_eq!(change.windows, ["tuesday-noon", "weekdays"]);
    // Tuesday 12:00 in New York (18:00 in Berlin, inside weekdays): in tuesday-noon's zone,
    // which opens last.
    assert_eq!(change.landing.text(), "at 2026-12-01T12:00:00-05:00");
    let Landing::At { waits_for, .. } = &change.landing else {
        unreachable!()
    };
    assert_eq!(waits_for, &["tuesday-noon", "weekdays"]);
}

#[test]
fn a_pr_that_changes_a_window_is_planned_with_the_new_window() {
    // The head moves business-hours' opening to Sunday 20:00: planned with that.
    let head_windows = std::fs::read_to_string(format!("{SEED}/head/reconciliation-windows.yaml"))
        .unwrap()
        .replace("0 8 * * MON", "0 20 * * SUN");
    let windows = WindowSet::from_yaml("head.yaml", &head_windows).unwrap();
    let plan = plan_at(&seed("base"), &seed("head"), &windows, SATURDAY);
    let deployment = plan.changes().find(|c| c.kind == "Deployment").unwrap();
    assert_eq!(deployment.landing.text(), "at 2026-11-29T20:00:00+01:00");
}

// === owners ===

#[test]
fn an_owner_mixing_rw_and_rt_lands_with_its_latest_object_and_says_mixed_owner() {
    let head = [input(
        "app",
        &[
            object("ConfigMap", "rt", &[], &[], "2"),
            object("ConfigMap", "rw", &[RW, BH], &[], "2"),
        ]
        .concat(),
    )];
    let base = [input(
        "app",
        &[
            object("ConfigMap", "rt", &[], &[], "1"),
            object("ConfigMap", "rw", &[RW, BH], &[], "1"),
        ]
        .concat(),
    )];
    let plan = plan_at(&base, &head, &WindowSet::embedded().unwrap(), SATURDAY);
    let owner = &plan.owners[0];
    assert_eq!(owner.name, "app");
    assert_eq!(owner.landing.text(), "at 2026-11-30T08:00:00+01:00");
    let mixed = owner.mixed.as_deref().unwrap();
    assert!(
        mixed.starts_with("applies 1 rw and 1 rt objects together"),
        "{mixed}"
    );
}

#[test]
fn flux_owner_labels_name_the_owner_over_the_input() {
    let head = [input(
        "rendered",
        &object(
            "ConfigMap",
            "a",
            &[
                "kustomize.toolkit.fluxcd.io/name: apps",
                "kustomize.toolkit.fluxcd.io/namespace: flux-system",
            ],
            &[],
            "1",
        ),
    )];
    let plan = plan_at(&[], &head, &WindowSet::default(), SATURDAY);
    assert_eq!(plan.owners[0].name, "Kustomization flux-system/apps");
}

#[test]
fn markdown_escapes_what_the_manifests_say() {
    let head = [input(
        "app|x",
        &object(
            "ConfigMap",
            "a",
            &[RW, BH],
            &[
                "fluxgate.io/bypass-reason: \"| injected | row |\"",
                "fluxgate.io/bypass-until: nope",
            ],
            "1",
        ),
    )];
    let plan = plan_at(&[], &head, &WindowSet::embedded().unwrap(), SATURDAY);
    let text = render::markdown(&plan);
    assert!(text.contains("#### app\\|x: blocked"), "{text}");
    assert!(!text.contains("| injected |"), "{text}");
}

const HOPS: &str = "
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata: {name: mornings}
spec:
  schedules: [{start: '0 7 * * *', duration: 2h}]
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata: {name: early-week}
spec:
  schedules:
    - {start: '0 10 * * MON', duration: 1h}
    - {start: '0 8 * * TUE', duration: 90m}
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata: {name: saturdays}
spec:
  schedules: [{start: '0 12 * * SAT', duration: 1h}]
";

/// A change between two rw objects' windows (old and new label): `(name, landing)`.
fn moved(from: &str, to: &str, windows: &str) -> Change {
    let windows = WindowSet::from_yaml("w.yaml", windows).unwrap();
    let label = |w: &str| format!("fluxgate.io/window: {w}");
    let base = [input(
        "app",
        &object("ConfigMap", "a", &[RW, &label(from)], &[], "1"),
    )];
    let head = [input(
        "app",
        &object("ConfigMap", "a", &[RW, &label(to)], &[], "1"),
    )];
    let plan = plan_at(&base, &head, &windows, "2026-11-28T00:00:00Z");
    plan.changes().next().unwrap().clone()
}

#[test]
fn the_landing_is_the_first_instant_every_window_is_open_however_many_openings_it_takes() {
    // Sunday 07:00 mornings opens, early-week is closed; Monday 10:00 early-week opens,
    // mornings is closed; Tuesday 07:00 mornings, early-week still closed; Tuesday 08:00 both.
    let change = moved("mornings", "early-week", HOPS);
    assert_eq!(change.landing.text(), "at 2026-12-01T08:00:00Z");
}

#[test]
fn windows_that_are_never_open_together_never_land() {
    let change = moved("early-week", "saturdays", HOPS);
    assert_eq!(change.landing, Landing::Never);
    assert!(
        change
            .message
            .contains("no instant found where every window it names is open"),
        "{}",
        change.message
    );
    assert!(
        change
            .fix
            .as_deref()
            .unwrap()
            .contains("fluxgate status --week")
    );
}
