//! Every decision step and reason code, on the AdmissionReviews recorded from a real API server
//! (`tests/fixtures/admission/`), mutated where a case needs it.

use super::*;
use crate::admission::review;
use crate::admission::review as review_fn;
use crate::window::WindowSet;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

const DEPLOYMENT_CREATE: &str =
    include_str!("../../../tests/fixtures/admission/flux-create-deployment-rw.json");
const DEPLOYMENT_BUMP: &str =
    include_str!("../../../tests/fixtures/admission/flux-dryrun-image-bump-deployment.json");
const DEPLOYMENT_UNCHANGED: &str =
    include_str!("../../../tests/fixtures/admission/flux-dryrun-unchanged-deployment.json");
const DEPLOYMENT_PRUNE: &str =
    include_str!("../../../tests/fixtures/admission/flux-prune-deployment.json");
const HUMAN_PATCH: &str =
    include_str!("../../../tests/fixtures/admission/human-patch-deployment.json");
const CONFIGMAP_RT: &str =
    include_str!("../../../tests/fixtures/admission/flux-create-configmap-rt.json");
const WINDOW_CREATE: &str =
    include_str!("../../../tests/fixtures/admission/flux-create-reconciliationwindow.json");

/// Thursday 13:00 in Berlin: business-hours is open (until 17:00).
const OPEN: &str = "2026-11-26T12:00:00Z";
/// Friday 13:00 in Berlin: business-hours is closed until Monday 08:00.
const CLOSED: &str = "2026-11-27T12:00:00Z";
/// Tuesday 2026-12-22: the schedule is open but the year-end freeze is on.
const FROZEN: &str = "2026-12-22T10:00:00Z";

fn at(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
}

fn windows() -> WindowSet {
    crate::window::WindowSet::embedded().unwrap()
}

/// An AdmissionReview fixture, mutated.
struct Review(Value);

impl Review {
    fn of(fixture: &str) -> Self {
        Review(serde_json::from_str(fixture).unwrap())
    }
    fn request(&mut self) -> &mut Value {
        &mut self.0["request"]
    }
    fn with(mut self, f: impl FnOnce(&mut Value)) -> Self {
        f(self.request());
        self
    }
    /// Sets (or with `None` removes) a label on object and/or oldObject.
    fn label(self, which: &[&str], key: &str, value: Option<&str>) -> Self {
        self.meta_entry(which, "labels", key, value)
    }
    fn annotation(self, which: &[&str], key: &str, value: Option<&str>) -> Self {
        self.meta_entry(which, "annotations", key, value)
    }
    fn meta_entry(mut self, which: &[&str], map: &str, key: &str, value: Option<&str>) -> Self {
        for object in which {
            let meta = &mut self.request()[*object]["metadata"];
            if meta[map].is_null() {
                meta[map] = json!({});
            }
            let entries = meta[map].as_object_mut().unwrap();
            match value {
                Some(v) => entries.insert(key.to_owned(), json!(v)),
                None => entries.remove(key),
            };
        }
        self
    }
    fn decide_at(&self, t: &str) -> Decision {
        self.decide_with(&windows(), &Policy::default(), t)
    }
    /// The response review as JSON.
    fn respond_at(&self, t: &str) -> Value {
        let body = serde_json::to_vec(&self.0).unwrap();
        let reviewed = review(&body, &windows(), &Policy::default(), at(t)).unwrap();
        serde_json::to_value(reviewed.response()).unwrap()
    }
    fn decide_with(&self, windows: &WindowSet, policy: &Policy, t: &str) -> Decision {
        let body = serde_json::to_vec(&self.0).unwrap();
        review(&body, windows, policy, at(t)).unwrap().decision
    }
}

fn assert_decision(decision: &Decision, allowed: bool, reason: Reason) {
    assert_eq!(
        (decision.allowed, decision.reason),
        (allowed, reason),
        "message: {}",
        decision.message
    );
    // The metrics create their zero series with the decision `Reason::allows` gives; a Warn
    // window admits what the reason would deny.
    let allowed_by_reason =
        decision.reason.allows() || decision.enforcement == crate::window::Enforcement::Warn;
    assert_eq!(
        allowed_by_reason, decision.allowed,
        "Reason::allows disagrees with decide for {}",
        decision.reason
    );
}

// === step 1: ReconciliationWindow objects ===

#[test]
fn valid_window_object_is_admitted_from_any_actor() {
    let d = Review::of(WINDOW_CREATE).decide_at(CLOSED);
    assert_decision(&d, true, Reason::ValidWindow);
    let d = Review::of(WINDOW_CREATE)
        .with(|r| r["userInfo"]["username"] = json!("admin"))
        .decide_at(CLOSED);
    assert_decision(&d, true, Reason::ValidWindow);
}

#[test]
fn invalid_window_object_is_denied_naming_the_field() {
    let d = Review::of(WINDOW_CREATE)
        .with(|r| r["object"]["spec"]["schedules"][0]["close"] = json!("0 17 * * THURSDAY"))
        .decide_at(CLOSED);
    assert_decision(&d, false, Reason::InvalidWindow);
    assert!(d.message.contains("business-hours"), "{}", d.message);
    assert!(
        d.message.contains("spec.schedules[0].close"),
        "{}",
        d.message
    );

    let d = Review::of(WINDOW_CREATE)
        .with(|r| r["object"]["spec"]["timeZone"] = json!("Europe/Berln"))
        .with(|r| r["userInfo"]["username"] = json!("admin"))
        .decide_at(CLOSED);
    assert_decision(&d, false, Reason::InvalidWindow);
    assert!(d.message.contains("spec.timeZone"), "{}", d.message);

    let d = Review::of(WINDOW_CREATE)
        .with(|r| r["object"]["spec"]["timezone"] = json!("Europe/Berlin"))
        .decide_at(CLOSED);
    assert_decision(&d, false, Reason::InvalidWindow);
    assert!(
        d.message.contains("unknown field `timezone`"),
        "{}",
        d.message
    );
}

#[test]
fn deleting_a_window_is_admitted() {
    let d = Review::of(WINDOW_CREATE)
        .with(|r| {
            r["operation"] = json!("DELETE");
            r["oldObject"] = r["object"].take();
        })
        .decide_at(CLOSED);
    assert_decision(&d, true, Reason::ValidWindow);
}

// === step 2: who is Flux ===

#[test]
fn a_person_is_admitted_while_the_window_is_closed() {
    let d = Review::of(HUMAN_PATCH).decide_at(CLOSED);
    assert_decision(&d, true, Reason::NotFlux);
}

#[test]
fn flux_is_recognised_by_field_manager() {
    let d = Review::of(HUMAN_PATCH)
        .with(|r| r["options"]["fieldManager"] = json!("kustomize-controller"))
        .decide_at(CLOSED);
    assert_decision(&d, false, Reason::WindowClosed);
}

#[test]
fn flux_is_recognised_by_configured_group() {
    let tenant = Review::of(HUMAN_PATCH).with(|r| {
        r["userInfo"]["username"] = json!("system:serviceaccount:team-a:flux");
        r["userInfo"]["groups"] =
            json!(["system:serviceaccounts", "system:serviceaccounts:team-a"]);
    });
    assert_decision(&tenant.decide_at(CLOSED), true, Reason::NotFlux);
    let policy = Policy {
        flux_groups: vec!["system:serviceaccounts:team-a".into()],
        ..Policy::default()
    };
    assert_decision(
        &tenant.decide_with(&windows(), &policy, CLOSED),
        false,
        Reason::WindowClosed,
    );
}

#[test]
fn configured_flux_users_replace_the_defaults() {
    let policy = Policy {
        flux_users: vec!["system:serviceaccount:gitops:applier".into()],
        flux_field_managers: vec!["applier".into()],
        ..Policy::default()
    };
    let flux = Review::of(DEPLOYMENT_BUMP);
    assert_decision(
        &flux.decide_with(&windows(), &policy, CLOSED),
        true,
        Reason::NotFlux,
    );
    let applier =
        flux.with(|r| r["userInfo"]["username"] = json!("system:serviceaccount:gitops:applier"));
    assert_decision(
        &applier.decide_with(&windows(), &policy, CLOSED),
        false,
        Reason::WindowClosed,
    );
}

// === step 3: governing windows ===

#[test]
fn real_time_objects_are_admitted_while_closed() {
    let d = Review::of(CONFIGMAP_RT).decide_at(CLOSED);
    assert_decision(&d, true, Reason::NotGoverned);
    let unlabelled = Review::of(CONFIGMAP_RT).label(&["object"], MODE_LABEL, None);
    assert_decision(&unlabelled.decide_at(CLOSED), true, Reason::NotGoverned);
}

#[test]
fn removing_the_rw_label_is_a_change_to_an_rw_object() {
    let d = Review::of(DEPLOYMENT_BUMP)
        .label(&["object"], MODE_LABEL, Some("rt"))
        .decide_at(CLOSED);
    assert_decision(&d, false, Reason::WindowClosed);
    let d = Review::of(DEPLOYMENT_BUMP)
        .label(&["object"], MODE_LABEL, None)
        .label(&["object"], WINDOW_LABEL, None)
        .decide_at(CLOSED);
    assert_decision(&d, false, Reason::WindowClosed);
    assert_eq!(d.windows.len(), 1);
    assert_eq!(d.windows[0].name, "business-hours");
}

#[test]
fn adding_the_rw_label_is_governed_by_the_new_window() {
    let d = Review::of(DEPLOYMENT_BUMP)
        .label(&["oldObject"], MODE_LABEL, None)
        .decide_at(CLOSED);
    assert_decision(&d, false, Reason::WindowClosed);
}

#[test]
fn moving_to_another_window_needs_both_open() {
    // nightly is closed at 13:00 Thursday, business-hours open.
    let moved = Review::of(DEPLOYMENT_BUMP).label(&["object"], WINDOW_LABEL, Some("nightly"));
    let d = moved.decide_at(OPEN);
    assert_decision(&d, false, Reason::WindowClosed);
    let names: Vec<&str> = d.windows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["business-hours", "nightly"]);
    assert!(
        d.message.starts_with(
            "Deployment nginx/nginx is governed by reconciliation windows \"business-hours\", \
             open until 2026-11-26T17:00:00+01:00 (Europe/Berlin) and \"nightly\", closed until \
             2026-11-26T22:00:00+01:00 (Europe/Berlin); "
        ),
        "{}",
        d.message
    );
    // Thursday 22:30 Berlin: nightly open, business-hours closed since 17:00.
    assert_decision(
        &moved.decide_at("2026-11-26T21:30:00Z"),
        false,
        Reason::WindowClosed,
    );
    // Monday 22:30 Berlin: both open.
    assert_decision(
        &moved.decide_at("2026-11-30T21:30:00Z"),
        true,
        Reason::WindowOpen,
    );
    // Moving back is the same change seen from the other side.
    let back = Review::of(DEPLOYMENT_BUMP).label(&["oldObject"], WINDOW_LABEL, Some("nightly"));
    assert_decision(&back.decide_at(OPEN), false, Reason::WindowClosed);
}

#[test]
fn rw_without_window_label_uses_the_default_window() {
    let review = Review::of(DEPLOYMENT_BUMP).label(&["object", "oldObject"], WINDOW_LABEL, None);
    // `default` is open on working days 09:00-17:00 UTC.
    let d = review.decide_at("2026-11-27T10:00:00Z");
    assert_decision(&d, true, Reason::WindowOpen);
    assert_eq!(d.windows[0].name, "default");
    assert_decision(
        &review.decide_at("2026-11-27T18:00:00Z"),
        false,
        Reason::WindowClosed,
    );
    let policy = Policy {
        default_window: "nightly".into(),
        ..Policy::default()
    };
    let d = review.decide_with(&windows(), &policy, "2026-11-27T10:00:00Z");
    assert_decision(&d, false, Reason::WindowClosed);
    assert_eq!(d.windows[0].name, "nightly");
}

#[test]
fn a_mode_that_is_neither_rw_nor_rt_is_an_invalid_request() {
    let d = Review::of(DEPLOYMENT_BUMP)
        .label(&["object"], MODE_LABEL, Some("RW"))
        .decide_at(OPEN);
    assert_decision(&d, false, Reason::InvalidRequest);
    assert!(
        d.message.contains("label fluxgate.io/mode is \"RW\""),
        "{}",
        d.message
    );
}

#[test]
fn an_update_without_old_object_is_an_invalid_request() {
    let d = Review::of(DEPLOYMENT_BUMP)
        .with(|r| r["oldObject"] = Value::Null)
        .decide_at(OPEN);
    assert_decision(&d, false, Reason::InvalidRequest);
    assert!(d.message.contains("request.oldObject"), "{}", d.message);
}

// === step 4: no-op ===

#[test]
fn unchanged_update_is_a_no_op_even_when_closed() {
    let d = Review::of(DEPLOYMENT_UNCHANGED).decide_at(CLOSED);
    assert_decision(&d, true, Reason::NoOp);
}

#[test]
fn bookkeeping_differences_are_still_a_no_op() {
    let d = Review::of(DEPLOYMENT_UNCHANGED)
        .with(|r| {
            let new = &mut r["object"];
            new["metadata"]["resourceVersion"] = json!("999");
            new["metadata"]["generation"] = json!(7);
            new["metadata"]["uid"] = json!("another-uid");
            new["metadata"]["creationTimestamp"] = json!("2020-01-01T00:00:00Z");
            new["metadata"]["managedFields"][0]["time"] = json!("2026-11-27T00:00:00Z");
            new["metadata"]["managedFields"]
                .as_array_mut()
                .unwrap()
                .push(
                    json!({"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1"}),
                );
            new["status"] = json!({"replicas": 2, "readyReplicas": 2});
        })
        .annotation(
            &["object"],
            "kubectl.kubernetes.io/last-applied-configuration",
            Some("{}"),
        )
        .decide_at(CLOSED);
    assert_decision(&d, true, Reason::NoOp);
}

#[test]
fn a_changed_label_or_annotation_is_not_a_no_op() {
    let d = Review::of(DEPLOYMENT_UNCHANGED)
        .label(&["object"], "team", Some("web"))
        .decide_at(CLOSED);
    assert_decision(&d, false, Reason::WindowClosed);
    let d = Review::of(DEPLOYMENT_UNCHANGED)
        .annotation(&["object"], "placeholder", Some("y"))
        .decide_at(CLOSED);
    assert_decision(&d, false, Reason::WindowClosed);
}

#[test]
fn image_bump_is_not_a_no_op() {
    assert_decision(
        &Review::of(DEPLOYMENT_BUMP).decide_at(CLOSED),
        false,
        Reason::WindowClosed,
    );
}

// === step 5: unknown windows ===

#[test]
fn a_window_name_that_matches_nothing_denies() {
    let d = Review::of(DEPLOYMENT_CREATE)
        .label(&["object"], WINDOW_LABEL, Some("busines-hours"))
        .decide_at(OPEN);
    assert_decision(&d, false, Reason::UnknownWindow);
    assert!(d.message.contains("\"busines-hours\""), "{}", d.message);
    assert!(
        d.message
            .contains("known windows: business-hours, default, nightly"),
        "{}",
        d.message
    );
}

// === step 6: open ===

#[test]
fn flux_change_is_admitted_while_the_window_is_open() {
    for fixture in [DEPLOYMENT_CREATE, DEPLOYMENT_BUMP, DEPLOYMENT_PRUNE] {
        let d = Review::of(fixture).decide_at(OPEN);
        assert_decision(&d, true, Reason::WindowOpen);
    }
}

#[test]
fn window_opens_exactly_at_the_open_instant_and_closes_at_the_close_instant() {
    let review = Review::of(DEPLOYMENT_BUMP);
    assert_decision(
        &review.decide_at("2026-11-30T06:59:59Z"),
        false,
        Reason::WindowClosed,
    );
    assert_decision(
        &review.decide_at("2026-11-30T07:00:00Z"),
        true,
        Reason::WindowOpen,
    );
    assert_decision(
        &review.decide_at("2026-12-03T15:59:59Z"),
        true,
        Reason::WindowOpen,
    );
    assert_decision(
        &review.decide_at("2026-12-03T16:00:00Z"),
        false,
        Reason::WindowClosed,
    );
}

// === step 6: overrides ===

/// The example windows, business-hours with an override on Friday 2026-11-27 from 12:00 to
/// 16:00 Berlin (`hours` long when given).
fn windows_with_override(hours: i64) -> WindowSet {
    let end = at("2026-11-27T11:00:00Z") + chrono::Duration::hours(hours);
    let text = crate::window::EMBEDDED_WINDOWS.replacen(
        "      reason: Year-end change freeze\n",
        &format!(
            "      reason: Year-end change freeze\n  overrides:\n    - start: \"2026-11-27T12:00:00+01:00\"\n      end: \"{}\"\n      reason: CHG-4711 release 2.3\n",
            end.to_rfc3339()
        ),
        1,
    );
    WindowSet::from_yaml("windows.yaml", &text).unwrap()
}

#[test]
fn an_override_admits_with_its_reason_in_warning_message_and_audit_annotations() {
    let windows = windows_with_override(4);
    let review = Review::of(DEPLOYMENT_BUMP);
    let d = review.decide_with(&windows, &Policy::default(), CLOSED);
    assert_decision(&d, true, Reason::Override);
    assert!(d.message.contains("CHG-4711 release 2.3"), "{}", d.message);
    assert_eq!(
        d.warnings,
        [
            "fluxgate: reconciliation window \"business-hours\" is opened by an override until \
             2026-11-27T16:00:00+01:00 (Europe/Berlin): CHG-4711 release 2.3"
        ]
    );
    let body = serde_json::to_vec(&review.0).unwrap();
    let reviewed = review_fn(&body, &windows, &Policy::default(), at(CLOSED)).unwrap();
    let json = serde_json::to_value(reviewed.response()).unwrap();
    assert_eq!(
        json["response"]["auditAnnotations"],
        json!({
            "decision": "allow",
            "reason": "override",
            "window": "business-hours",
            "override-reason": "CHG-4711 release 2.3",
        })
    );
    // After the override: closed as before.
    let d = review.decide_with(&windows, &Policy::default(), "2026-11-27T15:00:00Z");
    assert_decision(&d, false, Reason::WindowClosed);
}

#[test]
fn an_override_longer_than_max_override_opens_nothing_and_says_why() {
    let windows = windows_with_override(30);
    let d = Review::of(DEPLOYMENT_BUMP).decide_with(&windows, &Policy::default(), CLOSED);
    assert_decision(&d, false, Reason::WindowClosed);
    assert!(
        d.message
            .contains("override (CHG-4711 release 2.3) is ignored: at 30h"),
        "{}",
        d.message
    );
    let policy = Policy {
        max_override: chrono::Duration::hours(48),
        ..Policy::default()
    };
    let d = Review::of(DEPLOYMENT_BUMP).decide_with(&windows, &policy, CLOSED);
    assert_decision(&d, true, Reason::Override);
}

#[test]
fn a_window_object_with_a_too_long_override_is_denied_at_admission() {
    let review = Review::of(WINDOW_CREATE).with(|r| {
        r["object"]["spec"]["overrides"] = json!([{
            "start": "2026-11-27T00:00:00Z",
            "end": "2026-11-29T00:00:00Z",
            "reason": "weekend release"
        }])
    });
    let d = review.decide_at(CLOSED);
    assert_decision(&d, false, Reason::InvalidWindow);
    assert!(
        d.message
            .contains("spec.overrides[0]: 48h long, more than --max-override 24h"),
        "{}",
        d.message
    );
    let policy = Policy {
        max_override: chrono::Duration::hours(72),
        ..Policy::default()
    };
    assert_decision(
        &review.decide_with(&windows(), &policy, CLOSED),
        true,
        Reason::ValidWindow,
    );
}

// === hard freezes ===

/// The example windows with the year-end freeze made hard, and an override during it.
fn windows_with_hard_freeze() -> WindowSet {
    let text = crate::window::EMBEDDED_WINDOWS.replacen(
        "      reason: Year-end change freeze\n",
        "      reason: Year-end change freeze\n      allowBypass: false\n  overrides:\n    - start: 2026-12-22T09:00:00\n      end: 2026-12-22T13:00:00\n      reason: outage fix\n",
        1,
    );
    WindowSet::from_yaml("windows.yaml", &text).unwrap()
}

#[test]
fn a_hard_freeze_refuses_bypasses_and_overrides_and_says_so() {
    let windows = windows_with_hard_freeze();
    let policy = Policy::default();
    let d = with_bypass(
        DEPLOYMENT_BUMP,
        "object",
        Some("outage"),
        Some("2026-12-22T12:00:00+01:00"),
    )
    .decide_with(&windows, &policy, FROZEN);
    assert_decision(&d, false, Reason::Frozen);
    assert!(
        d.message.contains(
            "window \"business-hours\" is in a hard freeze (allowBypass: false): bypass \
             annotations and overrides are refused until it ends"
        ),
        "{}",
        d.message
    );
    assert!(
        d.message.contains(
            "hard-frozen (Year-end change freeze) and closed until 2027-01-04T08:00:00+01:00"
        ),
        "{}",
        d.message
    );
    assert!(
        d.message
            .contains("its override (outage fix) is refused during a hard freeze"),
        "{}",
        d.message
    );
    assert!(
        !d.message.contains("to ship an emergency change now"),
        "{}",
        d.message
    );
    assert!(d.bypass.is_some(), "the refused bypass is recorded");
    // Without a bypass: the same denial, no bypass hint.
    let d = Review::of(DEPLOYMENT_BUMP).decide_with(&windows, &policy, FROZEN);
    assert_decision(&d, false, Reason::Frozen);
    assert!(d.message.contains("hard freeze"), "{}", d.message);
}

#[test]
fn a_soft_freeze_lets_an_override_open_the_window() {
    let text = crate::window::EMBEDDED_WINDOWS.replacen(
        "      reason: Year-end change freeze\n",
        "      reason: Year-end change freeze\n  overrides:\n    - start: 2026-12-22T09:00:00\n      end: 2026-12-22T13:00:00\n      reason: outage fix\n",
        1,
    );
    let windows = WindowSet::from_yaml("windows.yaml", &text).unwrap();
    let d = Review::of(DEPLOYMENT_BUMP).decide_with(&windows, &Policy::default(), FROZEN);
    assert_decision(&d, true, Reason::Override);
}

#[test]
fn a_window_object_that_never_opens_is_denied_at_admission() {
    // Frozen for more than the ten years fluxgate looks ahead.
    let d = Review::of(WINDOW_CREATE)
        .with(|r| {
            r["object"]["spec"]["freezes"] = json!([{
                "start": "2026-01-01",
                "end": "2040-01-01",
                "reason": "forever"
            }])
        })
        .decide_at(CLOSED);
    assert_decision(&d, false, Reason::InvalidWindow);
    assert!(
        d.message
            .contains("the window never opens within the ten years"),
        "{}",
        d.message
    );
}

// === multi-tenant prunes ===

/// The recorded prune, as a tenant's Kustomization `team-a/apps` acting as its service account.
fn tenant_prune(user: &str, owner_namespace: &str) -> Review {
    Review::of(DEPLOYMENT_PRUNE)
        .with(|r| {
            r["userInfo"]["username"] = json!(user);
            r["userInfo"]["groups"] = json!(["system:serviceaccounts", "system:authenticated"]);
        })
        .label(
            &["oldObject"],
            "kustomize.toolkit.fluxcd.io/name",
            Some("apps"),
        )
        .label(
            &["oldObject"],
            "kustomize.toolkit.fluxcd.io/namespace",
            Some(owner_namespace),
        )
}

#[test]
fn a_tenant_prune_is_governed_and_other_deletes_are_not() {
    let d =
        tenant_prune("system:serviceaccount:team-a:team-a-reconciler", "team-a").decide_at(CLOSED);
    assert_decision(&d, false, Reason::WindowClosed);
    // The garbage collector and the namespace controller cascade: admitted.
    for user in [
        "system:serviceaccount:kube-system:generic-garbage-collector",
        "system:serviceaccount:kube-system:namespace-controller",
        "jane@example.com",
        // A service account of another namespace than the owner's.
        "system:serviceaccount:team-b:team-b-reconciler",
    ] {
        let d = tenant_prune(user, "team-a").decide_at(CLOSED);
        assert_decision(&d, true, Reason::NotFlux);
    }
    // Only DELETE: an update by the tenant's account needs its group or field manager.
    let d = Review::of(HUMAN_PATCH)
        .with(|r| {
            r["userInfo"]["username"] = json!("system:serviceaccount:team-a:team-a-reconciler")
        })
        .label(
            &["object", "oldObject"],
            "kustomize.toolkit.fluxcd.io/namespace",
            Some("team-a"),
        )
        .label(
            &["object", "oldObject"],
            "kustomize.toolkit.fluxcd.io/name",
            Some("apps"),
        )
        .decide_at(CLOSED);
    assert_ne!(d.reason, Reason::WindowClosed, "{}", d.message);
    // --tenant-prunes=false turns the rule off.
    let policy = Policy {
        tenant_prunes: false,
        ..Policy::default()
    };
    let d = tenant_prune("system:serviceaccount:team-a:team-a-reconciler", "team-a").decide_with(
        &windows(),
        &policy,
        CLOSED,
    );
    assert_decision(&d, true, Reason::NotFlux);
}

// === warn mode ===

/// The example windows with business-hours in Warn mode.
fn windows_warn() -> WindowSet {
    let text = crate::window::EMBEDDED_WINDOWS.replacen(
        "  timeZone: Europe/Berlin\n",
        "  timeZone: Europe/Berlin\n  enforcement: Warn\n",
        1,
    );
    WindowSet::from_yaml("windows.yaml", &text).unwrap()
}

#[test]
fn a_warn_window_admits_what_it_would_deny_and_says_so() {
    let windows = windows_warn();
    let review = Review::of(DEPLOYMENT_BUMP);
    let d = review.decide_with(&windows, &Policy::default(), CLOSED);
    assert_decision(&d, true, Reason::WindowClosed);
    assert_eq!(d.enforcement, crate::window::Enforcement::Warn);
    assert_eq!(d.warnings.len(), 1);
    assert!(
        d.warnings[0].starts_with(
            "fluxgate: would be denied: Deployment nginx/nginx is governed by reconciliation \
             window \"business-hours\", closed until 2026-11-30T08:00:00+01:00"
        ),
        "{:?}",
        d.warnings
    );
    let body = serde_json::to_vec(&review.0).unwrap();
    let reviewed = review_fn(&body, &windows, &Policy::default(), at(CLOSED)).unwrap();
    let json = serde_json::to_value(reviewed.response()).unwrap();
    assert_eq!(json["response"]["allowed"], true);
    assert_eq!(
        json["response"]["auditAnnotations"],
        json!({
            "decision": "allow",
            "reason": "window-closed",
            "window": "business-hours",
            "enforcement": "warn",
        })
    );
    // Frozen and invalid bypasses warn too.
    let d = review.decide_with(&windows, &Policy::default(), FROZEN);
    assert_decision(&d, true, Reason::Frozen);
    let d = with_bypass(DEPLOYMENT_BUMP, "object", Some("x"), Some("soon")).decide_with(
        &windows,
        &Policy::default(),
        CLOSED,
    );
    assert_decision(&d, true, Reason::InvalidBypass);
    // Open: an ordinary admission, no warning.
    let d = review.decide_with(&windows, &Policy::default(), OPEN);
    assert_decision(&d, true, Reason::WindowOpen);
    assert_eq!(d.enforcement, crate::window::Enforcement::Enforce);
    assert!(d.warnings.is_empty());
}

#[test]
fn an_enforced_closed_window_still_denies_next_to_a_warn_one() {
    let windows = windows_warn();
    // Moving from business-hours (Warn, closed all Friday) to default (Enforce, open 09:00 to
    // 17:00 UTC on working days). At 18:00 UTC both are closed: the enforced one denies.
    let review = Review::of(DEPLOYMENT_BUMP).label(&["object"], WINDOW_LABEL, Some("default"));
    let d = review.decide_with(&windows, &Policy::default(), "2026-11-27T18:00:00Z");
    assert_decision(&d, false, Reason::WindowClosed);
    assert_eq!(d.enforcement, crate::window::Enforcement::Enforce);
    // At 13:00 UTC default is open and business-hours closed in Warn mode: admitted, warned.
    let d = review.decide_with(&windows, &Policy::default(), CLOSED);
    assert_decision(&d, true, Reason::WindowClosed);
    // An unknown window is never Warn: it denies.
    let d = Review::of(DEPLOYMENT_BUMP)
        .label(&["object"], WINDOW_LABEL, Some("nope"))
        .decide_with(&windows, &Policy::default(), CLOSED);
    assert_decision(&d, false, Reason::UnknownWindow);
}

// === step 7: bypass ===

fn with_bypass(fixture: &str, which: &str, reason: Option<&str>, until: Option<&str>) -> Review {
    Review::of(fixture)
        .annotation(&[which], BYPASS_REASON_ANNOTATION, reason)
        .annotation(&[which], BYPASS_UNTIL_ANNOTATION, until)
}

#[test]
fn a_valid_bypass_admits_loudly() {
    let review = with_bypass(
        DEPLOYMENT_BUMP,
        "object",
        Some("CVE-2026-1234 hotfix"),
        Some("2026-11-27T20:00:00Z"),
    );
    let d = review.decide_at(CLOSED);
    assert_decision(&d, true, Reason::Bypass);
    assert_eq!(d.warnings.len(), 1);
    assert!(
        d.warnings[0].contains("CVE-2026-1234 hotfix"),
        "{:?}",
        d.warnings
    );
    let json = review.respond_at(CLOSED);
    assert_eq!(
        json["response"]["auditAnnotations"],
        json!({
            "decision": "allow",
            "reason": "bypass",
            "window": "business-hours",
            "bypass-reason": "CVE-2026-1234 hotfix",
            "bypass-until": "2026-11-27T20:00:00Z",
        })
    );
    assert_eq!(json["response"]["status"]["status"], "Success");
    assert_eq!(json["response"]["warnings"], json!(d.warnings));
}

#[test]
fn a_bypass_also_admits_through_a_freeze() {
    let d = with_bypass(
        DEPLOYMENT_BUMP,
        "object",
        Some("outage"),
        Some("2026-12-22T12:00:00+01:00"),
    )
    .decide_at(FROZEN);
    assert_decision(&d, true, Reason::Bypass);
}

#[test]
fn a_prune_uses_the_bypass_of_the_old_object() {
    let d = Review::of(DEPLOYMENT_PRUNE).decide_at(CLOSED);
    assert_decision(&d, false, Reason::WindowClosed);
    let d = with_bypass(
        DEPLOYMENT_PRUNE,
        "oldObject",
        Some("remove broken app"),
        Some("2026-11-27T20:00:00Z"),
    )
    .decide_at(CLOSED);
    assert_decision(&d, true, Reason::Bypass);
}

#[test]
fn invalid_bypasses_deny_and_say_what_is_wrong() {
    let cases = [
        (
            None,
            Some("2026-11-27T20:00:00Z"),
            "bypass-reason is missing or empty",
        ),
        (
            Some("  "),
            Some("2026-11-27T20:00:00Z"),
            "bypass-reason is missing or empty",
        ),
        (Some("hotfix"), None, "bypass-until is missing"),
        (
            Some("hotfix"),
            Some("tomorrow"),
            "\"tomorrow\" is not an RFC 3339 time",
        ),
        (Some("hotfix"), Some("2026-11-27T11:00:00Z"), "has expired"),
        (Some("hotfix"), Some("2026-11-27T12:00:00Z"), "has expired"),
        (
            Some("hotfix"),
            Some("2026-11-28T12:00:01Z"),
            "is more than 24h ahead",
        ),
    ];
    for (reason, until, want) in cases {
        let d = with_bypass(DEPLOYMENT_BUMP, "object", reason, until).decide_at(CLOSED);
        assert_decision(&d, false, Reason::InvalidBypass);
        assert!(
            d.message.contains(want),
            "{reason:?} {until:?}: {}",
            d.message
        );
        assert!(
            d.message.contains("closed until 2026-11-30T08:00:00+01:00"),
            "{}",
            d.message
        );
    }
    // Exactly max-bypass ahead is allowed.
    let d = with_bypass(
        DEPLOYMENT_BUMP,
        "object",
        Some("hotfix"),
        Some("2026-11-28T12:00:00Z"),
    )
    .decide_at(CLOSED);
    assert_decision(&d, true, Reason::Bypass);
}

#[test]
fn max_bypass_is_configurable() {
    let policy = Policy {
        max_bypass: chrono::Duration::hours(2),
        ..Policy::default()
    };
    let review = with_bypass(
        DEPLOYMENT_BUMP,
        "object",
        Some("hotfix"),
        Some("2026-11-27T15:00:00Z"),
    );
    let d = review.decide_with(&windows(), &policy, CLOSED);
    assert_decision(&d, false, Reason::InvalidBypass);
    assert!(d.message.contains("more than 2h ahead"), "{}", d.message);
}

// === step 8: deny ===

#[test]
fn closed_window_denial_names_object_window_reopening_and_bypass() {
    let d = Review::of(DEPLOYMENT_BUMP).decide_at(CLOSED);
    assert_decision(&d, false, Reason::WindowClosed);
    assert_eq!(
        d.message,
        "Deployment nginx/nginx is governed by reconciliation window \"business-hours\", \
         closed until 2026-11-30T08:00:00+01:00 (Europe/Berlin); to ship an emergency change \
         now, set the annotations fluxgate.io/bypass-reason (why) and fluxgate.io/bypass-until \
         (RFC 3339, at most 24h ahead) in Git"
    );
}

#[test]
fn frozen_window_denial_names_the_freeze() {
    let d = Review::of(DEPLOYMENT_BUMP).decide_at(FROZEN);
    assert_decision(&d, false, Reason::Frozen);
    assert!(
        d.message.contains(
            "\"business-hours\", frozen (Year-end change freeze) and closed until \
             2027-01-04T08:00:00+01:00 (Europe/Berlin)"
        ),
        "{}",
        d.message
    );
}

#[test]
fn dry_run_gets_the_same_answer_as_the_real_request() {
    let dry = Review::of(DEPLOYMENT_BUMP);
    let real = Review::of(DEPLOYMENT_BUMP).with(|r| {
        r["dryRun"] = json!(false);
        r["options"].as_object_mut().unwrap().remove("dryRun");
    });
    for t in [OPEN, CLOSED, FROZEN] {
        let (d, r) = (dry.decide_at(t), real.decide_at(t));
        assert_eq!(
            (d.allowed, d.reason, &d.message),
            (r.allowed, r.reason, &r.message)
        );
    }
}

// === the response ===

#[test]
fn denial_response_is_403_forbidden_with_audit_annotations_and_uid() {
    let body = serde_json::to_vec(&Review::of(DEPLOYMENT_BUMP).0).unwrap();
    let reviewed = review(&body, &windows(), &Policy::default(), at(CLOSED)).unwrap();
    let json = serde_json::to_value(reviewed.response()).unwrap();
    assert_eq!(json["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(json["kind"], "AdmissionReview");
    let response = &json["response"];
    assert_eq!(response["uid"], "382e71b4-420a-484a-9200-d062f988c348");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(response["status"]["reason"], "Forbidden");
    assert_eq!(response["status"]["status"], "Failure");
    assert_eq!(
        response["auditAnnotations"],
        json!({"decision": "deny", "reason": "window-closed", "window": "business-hours"})
    );
    assert!(response.get("warnings").is_none());
}

#[test]
fn every_reason_serialises_as_in_the_specification() {
    let names: Vec<String> = Reason::ALL
        .iter()
        .map(|r| {
            serde_json::to_value(r)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let as_str: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(names, as_str);
    assert_eq!(
        as_str,
        [
            "not-flux",
            "not-governed",
            "no-op",
            "window-open",
            "bypass",
            "window-closed",
            "frozen",
            "unknown-window",
            "invalid-bypass",
            "invalid-request",
            "valid-window",
            "invalid-window",
            "override",
            "valid-freeze",
            "invalid-freeze"
        ]
    );
}

#[test]
fn reviews_that_are_not_v1_or_have_no_request_are_errors() {
    let policy = Policy::default();
    let err = review(b"{", &windows(), &policy, at(OPEN)).unwrap_err();
    assert!(
        err.to_string().starts_with("not an AdmissionReview"),
        "{err}"
    );
    let mut v1beta1 = Review::of(DEPLOYMENT_BUMP).0;
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let err = review(
        &serde_json::to_vec(&v1beta1).unwrap(),
        &windows(),
        &policy,
        at(OPEN),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("admission.k8s.io/v1beta1"),
        "{err}"
    );
    let no_request = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
    let err = review(
        &serde_json::to_vec(&no_request).unwrap(),
        &windows(),
        &policy,
        at(OPEN),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "AdmissionReview has no request");
}
