//! Flux owners as kustomize-controller and helm-controller write them, against the example windows.

use super::*;
use serde_json::{Value, json};

fn utc(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().to_utc()
}

fn windows() -> WindowSet {
    crate::window::WindowSet::embedded().unwrap()
}

fn object(text: &str) -> DynamicObject {
    serde_json::from_str(text).unwrap()
}

fn kustomization() -> DynamicObject {
    object(include_str!(
        "../../../tests/fixtures/flux/kustomization-apps-rw-denied.json"
    ))
}

fn helm_release() -> DynamicObject {
    object(include_str!(
        "../../../tests/fixtures/flux/helmrelease-podinfo-stalled.json"
    ))
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

// === denied_windows ===

#[test]
fn the_real_api_servers_denial_names_its_frozen_window() {
    let status: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/apiserver/flux-dryrun-denied-status.json"
    ))
    .unwrap();
    let message = status["message"].as_str().unwrap();
    // As Flux wraps it into the Ready condition.
    let ready = format!("Deployment/capns/nginx dry-run failed (Forbidden): {message}");
    assert_eq!(denied_windows(&ready), names(&["business-hours"]));
}

#[test]
fn only_closed_windows_of_fluxgate_denials_count() {
    let cases: [(&str, &[&str]); 7] = [
        (
            "Deployment/a/b dry-run failed (Forbidden): admission webhook \"fluxgate.fluxgate.io\" \
             denied the request: Deployment a/b is governed by reconciliation windows \"a\", open \
             until 2026-11-30T08:00:00Z (UTC) and \"b\", closed until 2026-12-01T08:00:00Z (UTC); \
             to ship an emergency change now, …",
            &["b"],
        ),
        // Two objects denied in one message (Flux joins them).
        (
            "x dry-run failed: admission webhook \"w\" denied the request: Deployment a/b is \
             governed by reconciliation window \"a\", closed until T (UTC); to ship …\n\
             y dry-run failed: admission webhook \"w\" denied the request: Service a/c is governed \
             by reconciliation window \"c\", frozen (Year-end) and closed until T (UTC); to ship …",
            &["a", "c"],
        ),
        // A freeze reason is free text: a `;` or a lone quote in it hides no window.
        (
            "admission webhook \"w\" denied the request: Deployment a/b is governed by \
             reconciliation windows \"a\", frozen (year-end; 24\" of snow) and closed until T \
             (UTC) and \"b\", closed until T (UTC); to ship an emergency change now, …",
            &["a", "b"],
        ),
        // An invalid bypass still names the closed window: it waits for it too.
        (
            "admission webhook \"w\" denied the request: Deployment a/b is governed by \
             reconciliation window \"a\", closed with no change in sight; the emergency bypass \
             is invalid: expired",
            &["a"],
        ),
        // Another webhook's denial.
        (
            "admission webhook \"policy.example.com\" denied the request: reconciliation window \
             \"a\", closed until then",
            &[],
        ),
        // Not a denial at all.
        (
            "Applied revision: main@sha1:1a2b. Deployment a/b is governed by reconciliation \
             window \"a\", closed until T",
            &[],
        ),
        ("", &[]),
    ];
    for (message, expected) in cases {
        assert_eq!(denied_windows(message), names(expected), "{message}");
    }
}

// === Owner ===

#[test]
fn a_denied_kustomization_waits_for_its_window() {
    let owner = Owner::from_object(OwnerKind::Kustomization, &kustomization());
    assert_eq!(owner.display(), "Kustomization flux-system/apps-rw");
    assert!(!owner.ready);
    assert!(!owner.suspended);
    assert_eq!(owner.denied_by, names(&["business-hours"]));
    assert_eq!(owner.requested_at, None);
    assert!(owner.waits_for("business-hours"));
    assert!(!owner.waits_for("nightly"));
}

#[test]
fn a_stalled_helm_release_waits_for_its_window() {
    let owner = Owner::from_object(OwnerKind::HelmRelease, &helm_release());
    assert!(!owner.ready);
    assert_eq!(owner.denied_by, names(&["business-hours"]));
    assert_eq!(
        OwnerKind::HelmRelease.request_annotations(),
        [REQUESTED_AT, RESET_AT]
    );
}

#[test]
fn a_ready_owner_waits_for_nothing_whatever_old_text_it_holds() {
    let mut object = kustomization();
    object.data["status"]["conditions"][0]["status"] = json!("True");
    let owner = Owner::from_object(OwnerKind::Kustomization, &object);
    assert!(owner.ready);
    assert!(!owner.waits_for("business-hours"));
    let monday = utc("2026-11-30T07:00:00Z");
    assert_eq!(catch_up(&owner, &windows(), monday), None);
}

#[test]
fn an_owner_without_status_is_left_alone() {
    let mut object = kustomization();
    object.data.as_object_mut().unwrap().remove("status");
    let owner = Owner::from_object(OwnerKind::Kustomization, &object);
    assert!(owner.denied_by.is_empty());
    // A status of a shape this version cannot read is "nothing known", not an error.
    object.data["status"] = json!({"conditions": "garbage"});
    let owner = Owner::from_object(OwnerKind::Kustomization, &object);
    assert!(owner.denied_by.is_empty());
}

// === catch_up ===

#[test]
fn the_value_is_the_opening_instant_once_the_window_is_open() {
    let owner = Owner::from_object(OwnerKind::Kustomization, &kustomization());
    let windows = windows();
    // Friday: business-hours closed; nothing to ask.
    assert_eq!(
        catch_up(&owner, &windows, utc("2026-11-27T12:00:00Z")),
        None
    );
    // Monday 08:00 Berlin, the opening instant itself, and any time after it: the same value.
    for now in [
        "2026-11-30T07:00:00Z",
        "2026-11-30T07:00:03Z",
        "2026-12-02T15:00:00Z",
    ] {
        assert_eq!(
            catch_up(&owner, &windows, utc(now)).as_deref(),
            Some("2026-11-30T07:00:00Z"),
            "{now}"
        );
    }
    // Asked already (by this replica, another one, or before a restart): nothing more.
    let asked = Owner {
        requested_at: Some("2026-11-30T07:00:00Z".into()),
        ..owner.clone()
    };
    assert_eq!(
        catch_up(&asked, &windows, utc("2026-11-30T07:05:00Z")),
        None
    );
    // Asked for an earlier opening, or by a person with `flux reconcile`: asked again.
    let by_hand = Owner {
        requested_at: Some("2026-11-28T10:11:12.123456789Z".into()),
        ..owner
    };
    assert_eq!(
        catch_up(&by_hand, &windows, utc("2026-11-30T07:05:00Z")).as_deref(),
        Some("2026-11-30T07:00:00Z")
    );
}

#[test]
fn an_owner_that_waits_for_a_closed_or_unknown_window_too_is_left_alone() {
    let owner = Owner::from_object(OwnerKind::Kustomization, &kustomization());
    let windows = windows();
    // Monday 08:30 Berlin: business-hours open, nightly (22:00–24:00) closed.
    let now = utc("2026-11-30T07:30:00Z");
    let both = Owner {
        denied_by: names(&["business-hours", "nightly"]),
        ..owner.clone()
    };
    assert_eq!(catch_up(&both, &windows, now), None);
    let unknown = Owner {
        denied_by: names(&["business-hours", "deleted-window"]),
        ..owner.clone()
    };
    assert_eq!(catch_up(&unknown, &windows, now), None);
    // Both open (Monday 22:30 Berlin is past business-hours' opening): the later opening wins.
    let both_open = Owner {
        denied_by: names(&["business-hours", "nightly"]),
        ..owner.clone()
    };
    assert_eq!(
        catch_up(&both_open, &windows, utc("2026-11-30T21:30:00Z")).as_deref(),
        Some("2026-11-30T21:00:00Z")
    );
    let suspended = Owner {
        suspended: true,
        ..owner
    };
    assert_eq!(catch_up(&suspended, &windows, now), None);
}

#[test]
fn a_denial_recorded_after_the_opening_asks_again_once() {
    let windows = windows();
    let now = utc("2026-11-30T07:05:00Z");
    // Asked at the opening; Flux tried, and a replica whose clock lagged denied it again.
    let denied_again = Owner {
        requested_at: Some("2026-11-30T07:00:00Z".into()),
        denied_at: Some(utc("2026-11-30T07:00:01Z")),
        ..Owner::from_object(OwnerKind::Kustomization, &kustomization())
    };
    assert_eq!(
        catch_up(&denied_again, &windows, now).as_deref(),
        Some("2026-11-30T07:00:01Z")
    );
    // Asked for that denial already: nothing more until Flux records another.
    let asked = Owner {
        requested_at: Some("2026-11-30T07:00:01Z".into()),
        ..denied_again
    };
    assert_eq!(catch_up(&asked, &windows, now), None);
}

#[test]
fn while_flux_reconciles_nothing_is_asked_and_the_last_denial_still_counts() {
    let denied = Owner::from_object(OwnerKind::Kustomization, &kustomization());
    // kustomize-controller starts every attempt with Ready=Unknown, wiping the denial's text.
    let mut object = kustomization();
    object.data["status"]["conditions"][0] = json!({
        "type": "Ready", "status": "Unknown", "reason": "Progressing",
        "message": "Reconciliation in progress", "lastTransitionTime": "2026-11-28T10:00:00Z",
    });
    let mut reconciling = Owner::from_object(OwnerKind::Kustomization, &object);
    assert!(reconciling.reconciling);
    assert!(reconciling.denied_by.is_empty());
    reconciling.carry_over(&denied);
    assert!(reconciling.waits_for("business-hours"));
    assert_eq!(reconciling.denied_at, denied.denied_at);
    assert_eq!(
        catch_up(&reconciling, &windows(), utc("2026-11-30T07:00:00Z")),
        None,
        "Flux is at it already"
    );
    // A finished attempt stands on its own: Ready, nothing carried over.
    let mut ready = kustomization();
    ready.data["status"]["conditions"][0]["status"] = json!("True");
    let mut ready = Owner::from_object(OwnerKind::Kustomization, &ready);
    ready.carry_over(&denied);
    assert!(!ready.waits_for("business-hours"));
}

#[test]
fn only_flux_groups_make_owner_kinds() {
    use OwnerKind::*;
    assert_eq!(
        OwnerKind::of("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
        Some(Kustomization)
    );
    // Older served versions are Flux's objects too.
    assert_eq!(
        OwnerKind::of("helm.toolkit.fluxcd.io/v2beta2", "HelmRelease"),
        Some(HelmRelease)
    );
    // kustomize's own kustomization file, and kinds under the other kind's group, are not.
    assert_eq!(
        OwnerKind::of("kustomize.config.k8s.io/v1beta1", "Kustomization"),
        None
    );
    assert_eq!(
        OwnerKind::of("helm.toolkit.fluxcd.io/v2", "Kustomization"),
        None
    );
    assert_eq!(OwnerKind::of("Kustomization", "Kustomization"), None);
}

#[test]
fn the_owner_labels_name_the_owner_and_its_event_reference() {
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let owner = FluxOwner::from_labels(&labels(&[
        ("helm.toolkit.fluxcd.io/name", "podinfo"),
        ("helm.toolkit.fluxcd.io/namespace", "apps"),
    ]))
    .unwrap();
    assert_eq!(owner.kind, OwnerKind::HelmRelease);
    assert_eq!(owner.to_string(), "HelmRelease apps/podinfo");
    let reference = owner.reference();
    assert_eq!(
        (reference.api_version.as_deref(), reference.kind.as_deref()),
        (Some("helm.toolkit.fluxcd.io/v2"), Some("HelmRelease"))
    );
    // An empty namespace label is no namespace; a namespace alone names no owner.
    let owner = FluxOwner::from_labels(&labels(&[
        ("kustomize.toolkit.fluxcd.io/name", "apps-rw"),
        ("kustomize.toolkit.fluxcd.io/namespace", ""),
    ]))
    .unwrap();
    assert_eq!(owner.to_string(), "Kustomization apps-rw");
    assert_eq!(owner.reference().namespace, None);
    let namespace_only = labels(&[("kustomize.toolkit.fluxcd.io/namespace", "flux-system")]);
    assert_eq!(FluxOwner::from_labels(&namespace_only), None);
}
