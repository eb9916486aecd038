//! Property tests of the admission decision, through `fluxgate_core::admission::review` (the exact
//! request path of the server and of `fluxgate review`).
//!
//! Requests are built by mutating a real AdmissionReview recorded from an API server
//! (`tests/fixtures/admission/flux-dryrun-image-bump-deployment.json`) with generated
//! operations, mode and window labels on the old and new objects, bypass annotations, actors,
//! dry-run and the instant (any minute of 2026–2028), and decided on the example windows
//! (`deploy/examples/windows.yaml`, plus monthly overrides). The expectations are computed independently, from the
//! windows' `state_at` and `Bypass::validate`, on a separate copy of the windows (its own state
//! cache). A failure prints the generated case (proptest shrinks it first) and the decision.
//!
//! The last tests replay the inputs the fuzz targets (`fuzz/`) found, from
//! `tests/fixtures/fuzz-regressions/<target>/`.

use chrono::{
    DateTime, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, SecondsFormat,
    TimeZone, Utc,
};
use fluxgate_core::admission::{Reviewed, review};
use fluxgate_core::cron::Cron;
use fluxgate_core::policy::{
    BYPASS_REASON_ANNOTATION, BYPASS_UNTIL_ANNOTATION, Bypass, MODE_LABEL, Policy, Reason,
    WINDOW_LABEL,
};
use fluxgate_core::window::{WindowSet, evaluate};
use kube::core::DynamicObject;
use kube::core::admission::AdmissionReview;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

const BUMP: &str = include_str!("fixtures/admission/flux-dryrun-image-bump-deployment.json");
const EXAMPLE_WINDOWS: &str = include_str!("../deploy/examples/windows.yaml");
const FIXTURES: [&str; 7] = [
    include_str!("fixtures/admission/flux-create-configmap-rt.json"),
    include_str!("fixtures/admission/flux-create-deployment-rw.json"),
    include_str!("fixtures/admission/flux-create-reconciliationwindow.json"),
    include_str!("fixtures/admission/flux-dryrun-image-bump-deployment.json"),
    include_str!("fixtures/admission/flux-dryrun-unchanged-deployment.json"),
    include_str!("fixtures/admission/flux-prune-deployment.json"),
    include_str!("fixtures/admission/human-patch-deployment.json"),
];
const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/fuzz-regressions"
);

/// Cases per property: enough to cover every combination of the small enums many times over,
/// few enough that the file runs in a few seconds.
const CASES: u32 = 256;

fn config() -> Config {
    Config {
        cases: CASES,
        // Failures are printed (shrunk); a regression worth keeping becomes a named test.
        failure_persistence: None,
        ..Config::default()
    }
}

/// The example windows, business-hours with an override on the 1st of every month of
/// 2026–2028 (from 12:00 UTC for 12 hours), so that generated instants hit some.
fn windows_yaml() -> String {
    let mut overrides = String::from("  overrides:\n");
    for year in 2026..=2028 {
        for month in 1..=12 {
            overrides.push_str(&format!(
                "    - start: \"{year}-{month:02}-01T12:00:00Z\"\n      end: \"{year}-{month:02}-02T00:00:00Z\"\n      reason: release {year}-{month:02}\n"
            ));
        }
    }
    let freeze = "      reason: Year-end change freeze\n";
    EXAMPLE_WINDOWS.replacen(freeze, &format!("{freeze}{overrides}"), 1)
}

/// The windows the decisions are made with.
fn windows() -> &'static WindowSet {
    static WINDOWS: OnceLock<WindowSet> = OnceLock::new();
    WINDOWS.get_or_init(|| WindowSet::from_yaml("examples", &windows_yaml()).unwrap())
}

/// The same windows with their own state cache, for the expectations.
fn model_windows() -> &'static WindowSet {
    static WINDOWS: OnceLock<WindowSet> = OnceLock::new();
    WINDOWS.get_or_init(|| WindowSet::from_yaml("examples", &windows_yaml()).unwrap())
}

fn base_review() -> &'static Value {
    static BASE: OnceLock<Value> = OnceLock::new();
    BASE.get_or_init(|| serde_json::from_str(BUMP).unwrap())
}

// === generated cases ===

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Create,
    Update,
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Rw,
    Rt,
    Absent,
    /// `RW`: neither rw nor rt, which a Flux change must not get through with.
    Invalid,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Labels {
    mode: Mode,
    /// `fluxgate.io/window`, absent when `None`.
    window: Option<&'static str>,
}

/// The bypass annotations of one object, relative to the instant of the decision.
#[derive(Clone, Debug, PartialEq, Eq)]
enum BypassKind {
    Absent,
    /// Expires `minutes` after now (1 minute to 24 hours: valid).
    Ahead {
        minutes: i64,
        reason: &'static str,
        offset_hours: i32,
    },
    /// Expired `minutes` before now (0: expires exactly now, which is expired too).
    Expired {
        minutes: i64,
        offset_hours: i32,
    },
    /// More than `--max-bypass` (24h) ahead.
    TooFar {
        minutes: i64,
    },
    /// `bypass-until` that is not RFC 3339.
    Malformed(&'static str),
    /// A reason without `bypass-until`.
    NoUntil,
}

#[derive(Clone, Debug)]
struct Case {
    op: Op,
    /// UPDATE only: the new object equals the old one but for bookkeeping (a no-op).
    unchanged: bool,
    old: Labels,
    new: Labels,
    old_bypass: BypassKind,
    new_bypass: BypassKind,
    user: &'static str,
    field_manager: Option<&'static str>,
    dry_run: bool,
    now: DateTime<Utc>,
    uid: String,
}

const WINDOW_NAMES: [&str; 5] = ["business-hours", "default", "nightly", "no-such-window", ""];
const USERS: [&str; 4] = [
    "system:serviceaccount:flux-system:kustomize-controller",
    "system:serviceaccount:flux-system:helm-controller",
    "system:serviceaccount:flux-system:source-controller",
    "admin",
];
const FIELD_MANAGERS: [&str; 4] = [
    "kustomize-controller",
    "helm-controller",
    "kubectl-patch",
    "flux",
];
/// Minutes from 2026-01-01T00:00Z to 2029-01-01T00:00Z.
const MINUTES_2026_2028: i64 = (365 + 365 + 366) * 24 * 60;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![Just(Op::Create), Just(Op::Update), Just(Op::Delete)]
}

fn labels() -> impl Strategy<Value = Labels> {
    let mode = prop_oneof![
        4 => Just(Mode::Rw),
        2 => Just(Mode::Rt),
        2 => Just(Mode::Absent),
        1 => Just(Mode::Invalid),
    ];
    let window = prop_oneof![
        1 => Just(None),
        4 => prop::sample::select(&WINDOW_NAMES[..]).prop_map(Some),
    ];
    (mode, window).prop_map(|(mode, window)| Labels { mode, window })
}

fn rw_labels() -> impl Strategy<Value = Labels> {
    labels().prop_map(|labels| Labels {
        mode: Mode::Rw,
        ..labels
    })
}

fn bypass() -> impl Strategy<Value = BypassKind> {
    prop_oneof![
        4 => Just(BypassKind::Absent),
        3 => (1i64..=24 * 60, prop::sample::select(&["hotfix CVE-2026-1234", " ", ""][..]), -12i32..=14)
            .prop_map(|(minutes, reason, offset_hours)| BypassKind::Ahead { minutes, reason, offset_hours }),
        1 => (0i64..=3 * 24 * 60, -12i32..=14)
            .prop_map(|(minutes, offset_hours)| BypassKind::Expired { minutes, offset_hours }),
        1 => (1i64..=3 * 24 * 60).prop_map(|minutes| BypassKind::TooFar { minutes }),
        1 => prop::sample::select(&["tomorrow", "", "2026-13-01T00:00:00Z", "2026-11-27 18:00:00", "1e9"][..])
            .prop_map(BypassKind::Malformed),
        1 => Just(BypassKind::NoUntil),
    ]
}

/// Any minute of 2026–2028, one case in four during the example year-end freeze (2026-12-20
/// to 2027-01-04 in Berlin) and the days around it, which uniform minutes would rarely hit.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let minute = |from: DateTime<Utc>, minutes: i64| {
        (0..minutes).prop_map(move |m| from + Duration::minutes(m))
    };
    prop_oneof![
        3 => minute(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(), MINUTES_2026_2028),
        1 => minute(Utc.with_ymd_and_hms(2026, 12, 15, 0, 0, 0).unwrap(), 25 * 24 * 60),
    ]
}

fn case_with(labels: fn() -> BoxedStrategy<Labels>) -> impl Strategy<Value = Case> {
    (
        (op(), prop::bool::weighted(0.3), labels(), labels()),
        (bypass(), bypass()),
        (
            prop::sample::select(&USERS[..]),
            prop::option::of(prop::sample::select(&FIELD_MANAGERS[..])),
            any::<bool>(),
        ),
        instant(),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}",
    )
        .prop_map(
            |(
                (op, unchanged, old, new),
                (old_bypass, new_bypass),
                (user, field_manager, dry_run),
                now,
                uid,
            )| {
                let unchanged = unchanged && op == Op::Update;
                // A no-op UPDATE carries the same labels and annotations on both objects.
                let (new, new_bypass) = if unchanged {
                    (old.clone(), old_bypass.clone())
                } else {
                    (new, new_bypass)
                };
                Case {
                    op,
                    unchanged,
                    old,
                    new,
                    old_bypass,
                    new_bypass,
                    user,
                    field_manager,
                    dry_run,
                    now,
                    uid,
                }
            },
        )
}

fn any_case() -> impl Strategy<Value = Case> {
    case_with(|| labels().boxed())
}

/// UPDATEs whose old and new objects are both rw.
fn rw_update() -> impl Strategy<Value = Case> {
    case_with(|| rw_labels().boxed()).prop_map(|case| Case {
        op: Op::Update,
        ..case
    })
}

// === building the request ===

impl BypassKind {
    /// `(bypass-reason, bypass-until)` as they appear on the object.
    fn annotations(&self, now: DateTime<Utc>) -> (Option<String>, Option<String>) {
        let at = |t: DateTime<Utc>, offset_hours: i32| {
            let offset = FixedOffset::east_opt(offset_hours * 3600).unwrap();
            t.with_timezone(&offset)
                .to_rfc3339_opts(SecondsFormat::Secs, true)
        };
        let reason = Some("emergency".to_owned());
        match self {
            BypassKind::Absent => (None, None),
            BypassKind::Ahead {
                minutes,
                reason,
                offset_hours,
            } => (
                Some((*reason).to_owned()),
                Some(at(now + Duration::minutes(*minutes), *offset_hours)),
            ),
            BypassKind::Expired {
                minutes,
                offset_hours,
            } => (
                reason,
                Some(at(now - Duration::minutes(*minutes), *offset_hours)),
            ),
            BypassKind::TooFar { minutes } => (
                reason,
                Some(at(
                    now + Duration::hours(24) + Duration::minutes(*minutes),
                    0,
                )),
            ),
            BypassKind::Malformed(text) => (reason, Some((*text).to_owned())),
            BypassKind::NoUntil => (reason, None),
        }
    }
}

fn set_entry(meta: &mut Value, map: &str, key: &str, value: Option<String>) {
    if !meta[map].is_object() {
        meta[map] = json!({});
    }
    let entries = meta[map].as_object_mut().unwrap();
    match value {
        Some(value) => entries.insert(key.to_owned(), Value::String(value)),
        None => entries.remove(key),
    };
}

fn dress(object: &mut Value, labels: &Labels, bypass: &BypassKind, now: DateTime<Utc>) {
    let meta = &mut object["metadata"];
    let mode = match labels.mode {
        Mode::Rw => Some("rw"),
        Mode::Rt => Some("rt"),
        Mode::Absent => None,
        Mode::Invalid => Some("RW"),
    };
    set_entry(meta, "labels", MODE_LABEL, mode.map(str::to_owned));
    set_entry(
        meta,
        "labels",
        WINDOW_LABEL,
        labels.window.map(str::to_owned),
    );
    let (reason, until) = bypass.annotations(now);
    set_entry(meta, "annotations", BYPASS_REASON_ANNOTATION, reason);
    set_entry(meta, "annotations", BYPASS_UNTIL_ANNOTATION, until);
}

impl Case {
    fn request(&self) -> Value {
        let mut review = base_review().clone();
        let request = &mut review["request"];
        let mut old = request["oldObject"].clone();
        let mut new = if self.unchanged {
            // The same object, with the bookkeeping the API server changes on its own.
            let mut new = old.clone();
            new["metadata"]["resourceVersion"] = json!("4242");
            new["metadata"]["generation"] = json!(7);
            new["metadata"]["managedFields"] = json!([]);
            new["status"] = json!({"observedGeneration": 7});
            new
        } else {
            request["object"].clone()
        };
        dress(&mut old, &self.old, &self.old_bypass, self.now);
        dress(&mut new, &self.new, &self.new_bypass, self.now);
        let (operation, object, old_object, options_kind) = match self.op {
            Op::Create => ("CREATE", new, Value::Null, "CreateOptions"),
            Op::Update => ("UPDATE", new, old, "UpdateOptions"),
            Op::Delete => ("DELETE", Value::Null, old, "DeleteOptions"),
        };
        request["operation"] = json!(operation);
        request["object"] = object;
        request["oldObject"] = old_object;
        request["uid"] = json!(self.uid);
        request["userInfo"]["username"] = json!(self.user);
        request["dryRun"] = json!(self.dry_run);
        let mut options = json!({"kind": options_kind, "apiVersion": "meta.k8s.io/v1"});
        if let Some(manager) = self.field_manager {
            options["fieldManager"] = json!(manager);
        }
        if self.dry_run {
            options["dryRun"] = json!(["All"]);
        }
        request["options"] = options;
        review
    }

    fn review(&self) -> Reviewed {
        let body = serde_json::to_vec(&self.request()).unwrap();
        review(&body, windows(), &Policy::default(), self.now).expect("a well-formed review")
    }

    fn is_flux(&self) -> bool {
        let policy = Policy::default();
        // A DELETE by a service account of the Flux owner's namespace is a tenant's prune (the
        // fixture's owner is the Kustomization flux-system/apps-rw).
        let tenant_prune =
            self.op == Op::Delete && self.user.starts_with("system:serviceaccount:flux-system:");
        policy.flux_users.iter().any(|u| u == self.user)
            || tenant_prune
            || self
                .field_manager
                .is_some_and(|m| policy.flux_field_managers.iter().any(|f| f == m))
    }

    /// The labels of the objects the request carries: CREATE the new, DELETE the old.
    fn present(&self) -> Vec<&Labels> {
        match self.op {
            Op::Create => vec![&self.new],
            Op::Update => vec![&self.old, &self.new],
            Op::Delete => vec![&self.old],
        }
    }

    /// The governing windows, or `None` when a label makes the request unjudgeable.
    fn governing(&self) -> Option<BTreeSet<&'static str>> {
        let mut names = BTreeSet::new();
        for labels in self.present() {
            match (labels.mode, labels.window) {
                (Mode::Rt | Mode::Absent, _) => {}
                (Mode::Invalid, _) | (Mode::Rw, Some("")) => return None,
                (Mode::Rw, None) => {
                    names.insert(Policy::DEFAULT_WINDOW);
                }
                (Mode::Rw, Some(name)) => {
                    names.insert(name);
                }
            }
        }
        Some(names)
    }

    /// Whether the object being written (the old one for DELETE) has a valid bypass.
    fn valid_bypass(&self) -> bool {
        let kind = if self.op == Op::Delete {
            &self.old_bypass
        } else {
            &self.new_bypass
        };
        let (reason, until) = kind.annotations(self.now);
        let bypass = Bypass { reason, until };
        bypass
            .validate(self.now, Policy::default().max_bypass)
            .is_ok()
    }
}

/// What a test prints about a decision when it fails.
fn summary(reviewed: &Reviewed) -> String {
    let d = &reviewed.decision;
    format!(
        "allowed={} reason={} message={:?}",
        d.allowed, d.reason, d.message
    )
}

// === the properties ===

proptest! {
    #![proptest_config(config())]

    /// (a) A Flux change is never admitted while a governing window is closed (or unknown)
    /// and the object has no valid bypass, except as a no-op, which takes an UPDATE that
    /// changes nothing but bookkeeping.
    #[test]
    fn closed_window_without_valid_bypass_denies(case in any_case()) {
        let reviewed = case.review();
        let d = &reviewed.decision;
        let why = summary(&reviewed);
        if !case.is_flux() {
            prop_assert!(d.allowed, "{why}");
            prop_assert_eq!(d.reason, Reason::NotFlux, "{}", why);
            return Ok(());
        }
        let Some(names) = case.governing() else {
            prop_assert!(!d.allowed, "an invalid label must deny: {why}");
            prop_assert_eq!(d.reason, Reason::InvalidRequest, "{}", why);
            return Ok(());
        };
        if names.is_empty() {
            prop_assert!(d.allowed, "{why}");
            prop_assert_eq!(d.reason, Reason::NotGoverned, "{}", why);
            return Ok(());
        }
        if case.unchanged {
            prop_assert!(d.allowed, "an unchanged object must pass: {why}");
            prop_assert_eq!(d.reason, Reason::NoOp, "{}", why);
            return Ok(());
        }
        prop_assert_ne!(d.reason, Reason::NoOp, "a real change is not a no-op: {}", why);
        let model = model_windows();
        let unknown = names.iter().any(|n| model.get(n).is_none());
        let closed = names
            .iter()
            .filter_map(|n| model.get(n))
            .any(|w| !w.state_at(case.now).open);
        if unknown || (closed && !case.valid_bypass()) {
            prop_assert!(!d.allowed, "unknown={unknown} closed={closed}: {why}");
        }
        if unknown {
            prop_assert_eq!(d.reason, Reason::UnknownWindow, "{}", why);
        }
    }

    /// (a') The converse: a Flux change whose governing windows are all known and open is
    /// admitted, bypass or not.
    #[test]
    fn open_windows_admit(case in any_case()) {
        let Some(names) = case.governing() else { return Ok(()) };
        let model = model_windows();
        let all_open = names
            .iter()
            .all(|n| model.get(n).is_some_and(|w| w.state_at(case.now).open));
        if case.is_flux() && !names.is_empty() && all_open {
            let reviewed = case.review();
            prop_assert!(reviewed.decision.allowed, "{}", summary(&reviewed));
        }
    }

    /// (b) A dry-run gets the same answer as the real request.
    #[test]
    fn dry_run_gets_the_real_answer(case in any_case()) {
        let dry = Case { dry_run: true, ..case.clone() }.review();
        let real = Case { dry_run: false, ..case }.review();
        prop_assert_eq!(dry.decision.allowed, real.decision.allowed);
        prop_assert_eq!(dry.decision.reason, real.decision.reason);
        prop_assert_eq!(&dry.decision.message, &real.decision.message);
        prop_assert_eq!(&dry.decision.warnings, &real.decision.warnings);
        let annotations = |r: &Reviewed| {
            serde_json::to_value(r.response()).unwrap()["response"]["auditAnnotations"].clone()
        };
        prop_assert_eq!(annotations(&dry), annotations(&real));
    }

    /// (c) The governing windows of an UPDATE are those of both objects: swapping the labels
    /// of old and new (both rw) cannot turn a denial into an admission, nor the reverse.
    #[test]
    fn old_and_new_labels_are_symmetric(case in rw_update()) {
        let swapped = Case { old: case.new.clone(), new: case.old.clone(), ..case.clone() };
        let there = case.review();
        let back = swapped.review();
        prop_assert_eq!(
            there.decision.allowed,
            back.decision.allowed,
            "{} vs swapped {}",
            summary(&there),
            summary(&back)
        );
        prop_assert_eq!(there.decision.reason, back.decision.reason);
    }

    /// (d) The response echoes the uid; a denial has code 403 and reason Forbidden; every
    /// response has the decision and reason audit annotations.
    #[test]
    fn response_echoes_uid_and_denials_are_forbidden(case in any_case()) {
        let reviewed = case.review();
        check_response(&reviewed, Some(&case.uid))?;
    }

    /// (e) No mutation of a recorded AdmissionReview makes `review` panic; whatever it
    /// answers is a well-formed response.
    #[test]
    fn review_never_panics_on_mutated_json(
        fixture in prop::sample::select(&FIXTURES[..]),
        mutations in prop::collection::vec(mutation(), 1..6),
        now in instant(),
    ) {
        let mut value: Value = serde_json::from_str(fixture).unwrap();
        for m in &mutations {
            m.apply(&mut value);
        }
        let body = serde_json::to_vec(&value).unwrap();
        if let Ok(reviewed) = review(&body, windows(), &Policy::default(), now) {
            check_response(&reviewed, None)?;
        }
    }
}

fn check_response(reviewed: &Reviewed, uid: Option<&str>) -> Result<(), TestCaseError> {
    let json = serde_json::to_value(reviewed.response()).unwrap();
    // What the server sends is what `kube`'s own AdmissionReview type reads.
    let wire = reviewed.response_json().unwrap();
    let kube_review: AdmissionReview<DynamicObject> = serde_json::from_slice(&wire).unwrap();
    prop_assert_eq!(&kube_review.types, &reviewed.request.types);
    let kube_response = kube_review.response.unwrap();
    prop_assert_eq!(&kube_response.uid, &reviewed.request.uid);
    prop_assert_eq!(kube_response.allowed, reviewed.decision.allowed);
    prop_assert_eq!(&kube_response.result.message, &reviewed.decision.message);
    let warnings = Some(&reviewed.decision.warnings).filter(|w| !w.is_empty());
    prop_assert_eq!(kube_response.warnings.as_ref(), warnings);
    prop_assert_eq!(
        kube_response
            .audit_annotations
            .get("reason")
            .map(String::as_str),
        Some(reviewed.decision.reason.as_str())
    );
    prop_assert_eq!(
        serde_json::to_value(&kube_response).unwrap(),
        json["response"].clone()
    );
    let response = &json["response"];
    let request_uid = reviewed.request.uid.as_str();
    prop_assert_eq!(response["uid"].as_str(), Some(request_uid), "{}", json);
    if let Some(uid) = uid {
        prop_assert_eq!(request_uid, uid);
    }
    let allowed = reviewed.decision.allowed;
    prop_assert_eq!(response["allowed"].as_bool(), Some(allowed), "{}", json);
    if !allowed {
        prop_assert_eq!(response["status"]["code"].as_u64(), Some(403), "{}", json);
        prop_assert_eq!(
            response["status"]["reason"].as_str(),
            Some("Forbidden"),
            "{}",
            json
        );
    }
    let annotations = &response["auditAnnotations"];
    prop_assert_eq!(
        annotations["decision"].as_str(),
        Some(if allowed { "allow" } else { "deny" }),
        "{}",
        json
    );
    prop_assert_eq!(
        annotations["reason"].as_str(),
        Some(reviewed.decision.reason.as_str()),
        "{}",
        json
    );
    Ok(())
}

// === JSON mutations ===

/// Replace (or remove) the value at a path chosen by indices into objects and arrays.
#[derive(Clone, Debug)]
struct Mutation {
    path: Vec<Index>,
    /// `None` removes the key (when the target sits in an object).
    value: Option<Value>,
}

impl Mutation {
    fn apply(&self, root: &mut Value) {
        let Some((last, path)) = self.path.split_last() else {
            if let Some(value) = &self.value {
                *root = value.clone();
            }
            return;
        };
        let mut current = root;
        for index in path {
            let slot = match &*current {
                Value::Object(map) if !map.is_empty() => index.index(map.len()),
                Value::Array(items) if !items.is_empty() => index.index(items.len()),
                _ => break,
            };
            current = match current {
                Value::Object(map) => map.values_mut().nth(slot).unwrap(),
                Value::Array(items) => &mut items[slot],
                _ => unreachable!(),
            };
        }
        match (current, &self.value) {
            (Value::Object(map), value) if !map.is_empty() => {
                let key = map.keys().nth(last.index(map.len())).unwrap().clone();
                match value {
                    Some(value) => map.insert(key, value.clone()),
                    None => map.remove(&key),
                };
            }
            (Value::Array(items), Some(value)) if !items.is_empty() => {
                let i = last.index(items.len());
                items[i] = value.clone();
            }
            (current, Some(value)) => *current = value.clone(),
            (_, None) => {}
        }
    }
}

const INTERESTING: [&str; 24] = [
    "rw",
    "rt",
    "RW",
    "",
    "business-hours",
    "default",
    "nightly",
    "CREATE",
    "UPDATE",
    "DELETE",
    "CONNECT",
    "admission.k8s.io/v1",
    "admission.k8s.io/v1beta1",
    "fluxgate.io",
    "v1alpha1",
    "ReconciliationWindow",
    "kustomize-controller",
    "system:serviceaccount:flux-system:kustomize-controller",
    "2026-11-27T18:00:00Z",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00+14:00",
    "0 8 * * MON",
    "fluxgate.io/mode",
    "\u{0}\u{202e}\u{1F600}",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(&INTERESTING[..]).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(&INTERESTING[..]).prop_map(str::to_owned),
                    "[a-zA-Z]{0,8}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        prop::collection::vec(any::<Index>(), 0..8),
        prop::option::weighted(0.85, json_value()),
    )
        .prop_map(|(path, value)| Mutation { path, value })
}

// === hand-written checks of the generators ===

/// The generators reach every decision the properties are about; if a refactoring of the
/// fixture or the windows made one unreachable, the properties would hold vacuously.
#[test]
fn generated_cases_reach_every_reason() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = any_case();
    let mut seen = BTreeSet::new();
    for _ in 0..2000 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        seen.insert(case.review().decision.reason);
    }
    // Every reason but those of ReconciliationWindow and ReconciliationFreeze objects, which
    // these cases never are.
    let expected = Reason::ALL.into_iter().filter(|r| {
        !matches!(
            r,
            Reason::ValidWindow
                | Reason::InvalidWindow
                | Reason::ValidFreeze
                | Reason::InvalidFreeze
        )
    });
    for reason in expected {
        assert!(seen.contains(&reason), "{reason} never generated: {seen:?}");
    }
}

// === open/close pairs across DST, against a naive model ===

/// One window of one open/close pair in `zone`, named `pair`.
fn pair_window(zone: &str, open: &str, close: &str) -> WindowSet {
    let yaml = format!(
        "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  name: \
         pair\nspec:\n  timeZone: {zone}\n  schedules:\n    - open: \"{open}\"\n      close: \
         \"{close}\"\n"
    );
    WindowSet::from_yaml("pair.yaml", &yaml).unwrap()
}

/// Issue 21, exactly: in Berlin on 2026-03-29 the 02:30 close is skipped to 03:00 CEST, the
/// instant of the open. `fluxgate review` (this path) denied until the next day's 03:00.
#[test]
fn a_close_skipped_by_a_dst_gap_does_not_deny_the_day_after_it() {
    let windows = pair_window("Europe/Berlin", "0 3 * * *", "30 2 * * *");
    let mut request = base_review().clone();
    for object in ["object", "oldObject"] {
        request["request"][object]["metadata"]["labels"][WINDOW_LABEL] = json!("pair");
    }
    let body = serde_json::to_vec(&request).unwrap();
    let now = utc("2026-03-29T12:00:00Z");
    let reviewed = review(&body, &windows, &Policy::default(), now).unwrap();
    assert!(reviewed.decision.allowed, "{}", summary(&reviewed));
    assert_eq!(reviewed.decision.reason, Reason::WindowOpen);
}

/// The DST rules stated naively: each wall-clock minute of `[from, to]` that `cron` matches,
/// with the instant it fires at (the first occurrence of a repeated minute; for a skipped one,
/// the first minute after it that exists). No search, no skipping: every minute is looked at.
fn naive_fires(
    cron: &Cron,
    tz: chrono_tz::Tz,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Vec<(DateTime<Utc>, NaiveDateTime)> {
    let mut fires = Vec::new();
    let mut wall = from;
    while wall <= to {
        if cron.matches(wall) {
            let mut exists = wall;
            let at = loop {
                match tz.from_local_datetime(&exists) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => break t,
                    LocalResult::None => exists += Duration::minutes(1),
                }
            };
            fires.push((at.to_utc(), wall));
        }
        wall += Duration::minutes(1);
    }
    fires
}

/// An open/close pair by its definition, from every fire of the days around `t`: the state
/// after each instant is that of the last fire at or before it, fires on one instant taken in
/// wall-clock order and a close after an open at the same wall-clock minute. Returns whether
/// the pair is open at `t`, and the instants around `t` where the state changes.
struct NaivePair {
    /// (instant, open after it), one per instant where the state changes, in order.
    changes: Vec<(DateTime<Utc>, bool)>,
}

impl NaivePair {
    fn new(
        tz: chrono_tz::Tz,
        open: &Cron,
        close: &Cron,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Self {
        // (instant, wall-clock time, is a close): sorted, a close after an open at one minute.
        let mut fires: Vec<(DateTime<Utc>, NaiveDateTime, bool)> = naive_fires(open, tz, from, to)
            .into_iter()
            .map(|(at, wall)| (at, wall, false))
            .chain(
                naive_fires(close, tz, from, to)
                    .into_iter()
                    .map(|(at, wall)| (at, wall, true)),
            )
            .collect();
        fires.sort();
        let mut changes: Vec<(DateTime<Utc>, bool)> = Vec::new();
        let mut state = None;
        for (i, &(at, _, is_close)) in fires.iter().enumerate() {
            // The state after an instant is that of its last fire.
            if fires.get(i + 1).is_some_and(|next| next.0 == at) {
                continue;
            }
            let open = !is_close;
            if state != Some(open) {
                changes.push((at, open));
                state = Some(open);
            }
        }
        NaivePair { changes }
    }

    /// Open at `t`, since when and until when (`None`: not within the fires looked at).
    fn at(&self, t: DateTime<Utc>) -> (bool, Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let i = self.changes.partition_point(|(at, _)| *at <= t);
        assert!(i > 0, "the model starts too late for {t}");
        let (since, open) = self.changes[i - 1];
        // The first change is where the model's fires begin, not a real one.
        let since = (i > 1).then_some(since);
        (open, since, self.changes.get(i).map(|(at, _)| *at))
    }
}

/// DST changes around which the pairs are tested: (zone, the local date of the change).
const DST_CHANGES: [(&str, &str); 9] = [
    ("Europe/Berlin", "2026-03-29"),
    ("Europe/Berlin", "2026-10-25"),
    ("America/New_York", "2026-03-08"),
    ("America/New_York", "2026-11-01"),
    ("Australia/Lord_Howe", "2026-10-04"),
    ("Australia/Lord_Howe", "2026-04-05"),
    ("Pacific/Apia", "2011-12-30"),
    ("Pacific/Apia", "2011-09-24"),
    ("UTC", "2026-03-29"),
];

/// Crons whose fires fall into the gaps and folds above, or just around them, so that opens
/// and closes land on one instant in every order.
const DST_CRONS: [&str; 16] = [
    "30 2 * * *",
    "0 3 * * *",
    "0 2 * * *",
    "15 2 * * *",
    "45 2 * * *",
    "30 1 * * *",
    "59 1 * * *",
    "0 1 * * *",
    "0 8 * * *",
    "0 7 * * *",
    "30 3 * * SUN",
    "*/20 2 * * *",
    "0 12 * * *",
    "30 23 * * *",
    "0 0 * * *",
    "10 2,3 * * SAT,SUN",
];

proptest! {
    #![proptest_config(config())]

    /// Every open/close pair of the crons above, in the days around a DST change, has the
    /// state, `since` and `next` of the naive model (issue 21: a close skipped by a gap to the
    /// instant of the open after it swallowed that opening).
    #[test]
    fn open_close_pairs_across_dst_agree_with_the_naive_model(
        (zone, date) in prop::sample::select(&DST_CHANGES[..]),
        open in prop::sample::select(&DST_CRONS[..]),
        close in prop::sample::select(&DST_CRONS[..]),
        minute in -36i64 * 60..36 * 60,
    ) {
        prop_assume!(open != close);
        let tz: chrono_tz::Tz = zone.parse().unwrap();
        let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        let t = tz
            .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .unwrap_or_else(|| tz.from_utc_datetime(&day.and_hms_opt(12, 0, 0).unwrap()))
            .to_utc()
            + Duration::minutes(minute);
        // Every cron above fires at least once a week: eight days either side hold the last
        // fire of each kind before `t` and the next change after it.
        let model = NaivePair::new(
            tz,
            &Cron::parse(open).unwrap(),
            &Cron::parse(close).unwrap(),
            (day - Duration::days(8)).and_hms_opt(0, 0, 0).unwrap(),
            (day + Duration::days(8)).and_hms_opt(0, 0, 0).unwrap(),
        );
        let (want_open, want_since, want_next) = model.at(t);
        let windows = pair_window(zone, open, close);
        let state = evaluate(windows.get("pair").unwrap(), t);
        prop_assert_eq!(state.open, want_open, "{} {:?}/{:?} at {}", zone, open, close, t);
        // Past the model's span its `since` and `next` are unknown, not absent.
        if let Some(since) = want_since {
            prop_assert_eq!(state.since, Some(since), "{} {:?}/{:?} at {}", zone, open, close, t);
        }
        if let Some(next) = want_next {
            prop_assert_eq!(state.next, Some(next), "{} {:?}/{:?} at {}", zone, open, close, t);
        }
    }
}

// === start/duration runs that merge, against a naive model ===

/// Start/duration schedules by their definition: the run `[fire, fire + duration)` of every
/// fire of every schedule from the wall-clock minutes of `[from, to]`, merged where runs overlap
/// or abut into the periods the window is open.
struct NaiveStarts {
    /// The open periods, in order.
    periods: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl NaiveStarts {
    fn new(
        tz: chrono_tz::Tz,
        schedules: &[(Cron, Duration)],
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Self {
        let mut runs: Vec<(DateTime<Utc>, DateTime<Utc>)> = schedules
            .iter()
            .flat_map(|(cron, duration)| {
                naive_fires(cron, tz, from, to)
                    .into_iter()
                    .map(move |(at, _)| (at, at + *duration))
            })
            .collect();
        runs.sort();
        let mut periods: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        for (start, end) in runs {
            match periods.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => periods.push((start, end)),
            }
        }
        NaiveStarts { periods }
    }

    /// Open at `t`, since when and until when (`None`: not within the runs looked at).
    fn at(&self, t: DateTime<Utc>) -> (bool, Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let i = self.periods.partition_point(|(start, _)| *start <= t);
        let last = self.periods.len();
        match i.checked_sub(1).map(|j| (j, self.periods[j])) {
            // The first period may have begun before the first minute looked at, and the last
            // end after the last.
            Some((j, (start, end))) if t < end => (
                true,
                (j > 0).then_some(start),
                (j + 1 < last).then_some(end),
            ),
            Some((_, (_, end))) => (false, Some(end), self.periods.get(i).map(|p| p.0)),
            None => (false, None, self.periods.first().map(|p| p.0)),
        }
    }
}

/// Start/duration schedules whose runs merge (issue 21, item 9): two one-minute schedules on
/// alternate minutes or hours, every minute of some hours, runs of mixed lengths, runs shorter
/// than a minute (which leave a second between them), and runs longer than a fold.
const MERGING_STARTS: [&[(&str, &str)]; 8] = [
    &[("0-58/2 * * * *", "1m"), ("1-59/2 * * * *", "1m")],
    &[("0-58/2 0-5 * * *", "1m"), ("1-59/2 0-5 * * *", "1m")],
    &[("* 0,2 * * *", "1m"), ("* 1,3 * * *", "1m")],
    &[("* 1-4 * * *", "1m")],
    &[
        ("*/3 1-3 * * *", "2m"),
        ("1-59/3 1-3 * * *", "1m"),
        ("2-59/3 0-2 * * *", "90s"),
    ],
    &[("0-58/2 0-5 * * *", "1m"), ("1-59/2 0-5 * * *", "90m")],
    &[("0-58/2 1-3 * * *", "1m"), ("1-59/2 1-3 * * *", "59s")],
    &[
        ("0-29 1-3 * * *", "1m"),
        ("30-59 1-3 * * *", "1m"),
        ("45 0 * * *", "75m"),
    ],
];

/// Every window of [`MERGING_STARTS`], in the days around a gap and a fold in Berlin and Lord
/// Howe (half an hour there) and in UTC, has the state, `since` and `next` of the naive model,
/// at instants every half hour or so over two days and every 90 seconds around the change.
#[test]
fn merging_start_duration_runs_agree_with_the_naive_model() {
    let changes = [
        ("Europe/Berlin", "2026-03-29"),
        ("Europe/Berlin", "2026-10-25"),
        ("Australia/Lord_Howe", "2026-10-04"),
        ("Australia/Lord_Howe", "2026-04-05"),
        ("UTC", "2026-03-29"),
    ];
    let mut checked = 0;
    for (zone, date) in changes {
        let tz: chrono_tz::Tz = zone.parse().unwrap();
        let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        let midnight = tz
            .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .to_utc();
        // Every 37 minutes and some seconds over two days, and every 90 seconds from 1:00 to
        // 4:00, where the clocks change.
        let instants: Vec<DateTime<Utc>> = (0..)
            .map(|i| midnight - Duration::hours(12) + Duration::seconds(i * (37 * 60 + 7)))
            .take_while(|t| *t < midnight + Duration::hours(36))
            .chain((0..120).map(|i| midnight + Duration::minutes(60) + Duration::seconds(i * 90)))
            .collect();
        for schedules in MERGING_STARTS {
            let parsed: Vec<(Cron, Duration)> = schedules
                .iter()
                .map(|(cron, duration)| {
                    let duration = fluxgate_core::duration::parse_duration(duration).unwrap();
                    (Cron::parse(cron).unwrap(), duration)
                })
                .collect();
            let model = NaiveStarts::new(
                tz,
                &parsed,
                (day - Duration::days(3)).and_hms_opt(0, 0, 0).unwrap(),
                (day + Duration::days(3)).and_hms_opt(0, 0, 0).unwrap(),
            );
            let yaml = format!(
                "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  \
                 name: starts\nspec:\n  timeZone: {zone}\n  schedules:\n{}",
                schedules
                    .iter()
                    .map(|(cron, duration)| {
                        format!("    - start: \"{cron}\"\n      duration: {duration}\n")
                    })
                    .collect::<String>()
            );
            let windows = WindowSet::from_yaml("starts.yaml", &yaml).unwrap();
            let window = windows.get("starts").unwrap();
            for &t in &instants {
                let (want_open, want_since, want_next) = model.at(t);
                let state = evaluate(window, t);
                let case = format!("{zone} {schedules:?} at {t}");
                assert_eq!(state.open, want_open, "{case}");
                // Past the model's span its `since` and `next` are unknown, not absent.
                if want_since.is_some() {
                    assert_eq!(state.since, want_since, "since, {case}");
                }
                if want_next.is_some() {
                    assert_eq!(state.next, want_next, "next, {case}");
                }
                checked += 1;
            }
        }
    }
    println!("{checked} instants checked against the naive model");
}

// === inputs found by the fuzz targets ===

fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(REGRESSIONS).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// `windows_yaml`: each input parses (or is rejected) in bounded time and memory, and every
/// window it defines evaluates.
#[test]
fn fuzz_regressions_windows_yaml() {
    for (name, bytes) in regressions("windows_yaml") {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let Ok(set) = WindowSet::from_yaml(&name, text) else {
            continue;
        };
        for window in set.iter() {
            for t in ["2026-11-26T12:00:00Z", "2027-10-31T01:30:00Z"].map(utc) {
                let state = evaluate(window, t);
                assert!(state.since.is_none_or(|s| s <= t), "{name}: {state:?}");
                assert!(state.next.is_none_or(|n| n > t), "{name}: {state:?}");
            }
        }
    }
}

/// The OOM the windows_yaml target found: after a YAML syntax error serde_yaml's document
/// iterator repeats the error forever, and `parse_documents` collected it.
#[test]
fn yaml_syntax_error_is_an_error_not_an_endless_stream() {
    let text = std::str::from_utf8(
        &std::fs::read(format!(
            "{REGRESSIONS}/windows_yaml/oom-unterminated-quote.yaml"
        ))
        .unwrap(),
    )
    .unwrap()
    .to_owned();
    let err = WindowSet::from_yaml("w.yaml", &text)
        .unwrap_err()
        .to_string();
    // The quote opens on line 8, column 14.
    assert_eq!(
        err,
        "w.yaml:8: not valid YAML: unclosed quote at line 8, column 14"
    );
    // In the second document, the line is the file's.
    let two = format!("{}---\n{text}", EXAMPLE_WINDOWS);
    let err = WindowSet::from_yaml("w.yaml", &two)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "w.yaml:48: not valid YAML: unclosed quote at line 48, column 14"
    );
}

/// A duration past chrono's range (`9999999999h`, 1.1 million years) passed validation and
/// then panicked evaluating the window (`DateTime + TimeDelta` overflowed): durations are
/// now at most the ten years the state walks look ahead.
#[test]
fn duration_longer_than_the_horizon_is_invalid() {
    let path = format!("{REGRESSIONS}/windows_yaml/panic-huge-duration.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let err = WindowSet::from_yaml("w.yaml", &text)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spec.schedules[0].duration: \"9999999999h\" is longer than the 87840h"),
        "{err}"
    );
    let ten_years = text.replace("9999999999h", "87840h");
    let set = WindowSet::from_yaml("w.yaml", &ten_years).unwrap();
    for window in set.iter() {
        let state = evaluate(window, utc("2026-11-26T12:00:00Z"));
        assert!(state.open, "{state:?}");
    }
}

/// Finding F1 of the windows_yaml target (fuzz/README.md): a window whose state walk gives up
/// at its step limit reports no `next`, and its state is then cached for the whole search
/// horizon although it does change (a DST fold closes "start every minute for 2 minutes" for
/// an hour, since a repeated wall-clock minute fires once). `state_at` then disagrees with a
/// fresh evaluation. Since merged runs are crossed by whole stretches of minutes (issue 21,
/// item 9), the walk no longer gives up here: `next` is where the fold leaves the repeated hour
/// without a fire.
#[test]
fn cached_state_agrees_with_fresh_evaluation_after_a_walk_gives_up() {
    let text = "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  \
                name: always\nspec:\n  timeZone: Europe/Berlin\n  schedules:\n    - start: \
                \"* * * * *\"\n      duration: 2m\n";
    let set = WindowSet::from_yaml("w.yaml", text).unwrap();
    let window = set.get("always").unwrap();
    let before = window.state_at(utc("2026-11-26T12:00:00Z"));
    // 02:59 CEST (00:59 UTC) is the last fire before the repeated hour; 03:00 CET the next.
    assert!(before.open, "{before:?}");
    assert_eq!(before.next, Some(utc("2027-10-31T01:01:00Z")));
    let fold = utc("2027-10-31T01:30:00Z");
    assert!(!evaluate(window, fold).open);
    assert_eq!(*window.state_at(fold), evaluate(window, fold));
}

/// Finding F5 of the windows_yaml target (fuzz/README.md): the `since` walk stopped after
/// MAX_STEPS part changes. In this window (always open from 2026-01-31T13:00Z to
/// 2026-12-31T13:00Z while its parts change several times a day) a fresh evaluation on
/// 2026-11-26 gave up and reported no `since`, although the run began well within the
/// ten-year horizon; a state cached on 2026-03-29, nearer the run's start, had it. So
/// `fluxgate status` showed a `since` or not depending on when the cache was filled. Fixed:
/// walking back through an open state jumps to where the open schedules' runs began.
#[test]
fn since_is_found_deep_inside_a_long_run() {
    let path = format!("{REGRESSIONS}/windows_yaml/since-walk-gives-up.yaml");
    let set = WindowSet::from_yaml("w.yaml", &std::fs::read_to_string(path).unwrap()).unwrap();
    let window = set.get("overlap").unwrap();
    let early = window.state_at(utc("2026-03-29T00:59:59Z"));
    let t = utc("2026-11-26T12:00:00Z");
    assert_eq!(*window.state_at(t), *early);
    assert_eq!(evaluate(window, t), *early);
}

/// Finding F2 of the windows_yaml target (fuzz/README.md): an open/close schedule whose open
/// fires all coincide with close fires never opens, and each `next_change` of it walks
/// MAX_STEPS (5000) open fires; `next` and `since` ask every schedule again at each of their
/// up to 5000 steps, so next to schedules that change every minute without changing the
/// effective state, one evaluation costs 25 million cron searches (minutes of CPU). The fuzzer
/// found a milder form (`slow-never-opening-pair.yaml`, ~25 ms per evaluation unoptimised);
/// this is the worst case built from it (the open fires are a subset of the close fires; an
/// identical pair is refused at validation now).
#[test]
fn never_opening_pair_evaluates_quickly() {
    let text = "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  \
                name: worst\nspec:\n  schedules:\n    - start: \"0-58/2 * * * *\"\n      \
                duration: 1m\n    - start: \"1-59/2 * * * *\"\n      duration: 1m\n    - \
                open: \"*/2 * * * *\"\n      close: \"* * * * *\"\n";
    evaluates_within(text, "worst", std::time::Duration::from_secs(10));
}

/// Finding F2 in a realistic form: "open all day, every day" (a daily start lasting 24h,
/// whose runs abut, in UTC) next to a weekly schedule. The always-open schedule's
/// `next_change` merged runs for MAX_STEPS (5000) days, and `next` asked it again at each of
/// the other schedule's ~1000 changes within the ten-year horizon: 14.7 s unoptimised here.
#[test]
fn always_open_schedule_evaluates_quickly() {
    let text = "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  \
                name: daily\nspec:\n  timeZone: UTC\n  schedules:\n    - start: \
                \"0 0 * * *\"\n      duration: 24h\n    - open: \"0 8 * * MON\"\n      \
                close: \"0 17 * * THU\"\n";
    evaluates_within(text, "daily", std::time::Duration::from_secs(2));
}

fn evaluates_within(text: &str, name: &'static str, limit: std::time::Duration) {
    let set = WindowSet::from_yaml("w.yaml", text).unwrap();
    let t = utc("2026-11-26T12:00:30Z");
    let (tx, rx) = std::sync::mpsc::channel();
    // On a thread, so that the test fails after `limit` instead of hanging.
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let state = evaluate(set.get(name).unwrap(), t);
        let _ = tx.send((state, started.elapsed()));
    });
    let result = rx.recv_timeout(limit);
    assert!(result.is_ok(), "window {name:?}: no state after {limit:?}");
}

/// `cron`: each input parses (or is rejected) and searches without panicking.
#[test]
fn fuzz_regressions_cron() {
    for (name, bytes) in regressions("cron") {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let Ok(cron) = Cron::parse(text) else {
            continue;
        };
        let t = utc("2026-10-25T01:00:00Z");
        for tz in [chrono_tz::UTC, chrono_tz::Europe::Berlin] {
            assert!(cron.next_after(tz, t).is_none_or(|n| n > t), "{name}");
            assert!(
                cron.prev_at_or_before(tz, t).is_none_or(|p| p <= t),
                "{name}"
            );
        }
    }
}

/// The panic the cron target found: a step larger than the field (`2/4294967295`, which
/// robfig/cron accepts) overflowed `u32` (a panic in debug builds, in release a wrapped value
/// that added hours 0 and 1 to a schedule meant for 2 only).
#[test]
fn cron_step_past_the_end_means_the_start_alone() {
    let text =
        std::fs::read_to_string(format!("{REGRESSIONS}/cron/overflow-huge-step.txt")).unwrap();
    let cron = Cron::parse(&text).unwrap();
    let mut t = utc("2026-11-26T00:00:00Z");
    for _ in 0..20 {
        t = cron.next_after(chrono_tz::UTC, t).unwrap();
        assert_eq!(t.format("%H %a").to_string(), "02 Sun", "{t}");
    }
}

/// `review`: each input (4 bytes of instant, then the body) is reviewed without panicking.
#[test]
fn fuzz_regressions_review() {
    for (name, bytes) in regressions("review") {
        let Some((prefix, body)) = bytes.split_first_chunk::<4>() else {
            continue;
        };
        let seconds = u32::from_le_bytes(*prefix) % (6 * 366 * 24 * 3600);
        let now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
            + Duration::seconds(i64::from(seconds));
        if let Ok(reviewed) = review(body, windows(), &Policy::default(), now) {
            check_response(&reviewed, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
