//! The threat model of RELIABILITY.md, one test per path: each attempt to get a change past a
//! closed window is either denied or a documented, audited, bounded path.

use chrono::{DateTime, Utc};
use fluxgate::windows::load_windows;
use fluxgate_core::admission::review;
use fluxgate_core::policy::{Decision, Policy, Reason};
use fluxgate_core::window::WindowSet;
use serde_json::{Value, json};

const BUMP: &str = include_str!("fixtures/admission/flux-dryrun-image-bump-deployment.json");
const HUMAN: &str = include_str!("fixtures/admission/human-patch-deployment.json");

/// Friday: business-hours closed until Monday 08:00.
fn friday() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
        .unwrap()
        .to_utc()
}

fn decide_with(
    fixture: &str,
    windows: &WindowSet,
    policy: &Policy,
    mutate: impl FnOnce(&mut Value),
) -> Decision {
    let mut review_json: Value = serde_json::from_str(fixture).unwrap();
    mutate(&mut review_json["request"]);
    review(
        &serde_json::to_vec(&review_json).unwrap(),
        windows,
        policy,
        friday(),
    )
    .unwrap()
    .decision
}

fn decide(fixture: &str, mutate: impl FnOnce(&mut Value)) -> Decision {
    decide_with(
        fixture,
        &load_windows(&[]).unwrap(),
        &Policy::default(),
        mutate,
    )
}

fn embedded_without(name: &str) -> WindowSet {
    let text = fluxgate::windows::EMBEDDED_WINDOWS;
    let documents: Vec<_> = fluxgate_core::window::parse_documents("embedded", text)
        .unwrap()
        .into_iter()
        .filter(|d| d.object.metadata.name.as_deref() != Some(name))
        .collect();
    WindowSet::from_documents(&documents).unwrap()
}

#[test]
fn impersonating_flux_only_subjects_you_to_windows() {
    // `kubectl --as=system:serviceaccount:flux-system:kustomize-controller`: the API server
    // sends the impersonated user; it is treated as Flux, which is the restrictive direction.
    let d = decide(HUMAN, |r| {
        r["userInfo"]["username"] = json!("system:serviceaccount:flux-system:kustomize-controller")
    });
    assert_eq!((d.allowed, d.reason), (false, Reason::WindowClosed));
}

#[test]
fn spoofing_flux_field_manager_only_subjects_you_to_windows() {
    let d = decide(HUMAN, |r| {
        r["options"]["fieldManager"] = json!("kustomize-controller")
    });
    assert_eq!((d.allowed, d.reason), (false, Reason::WindowClosed));
}

#[test]
fn flux_cannot_shed_its_identity_by_choosing_another_field_manager() {
    // The user name alone identifies Flux, whatever field manager it sends.
    let d = decide(BUMP, |r| r["options"]["fieldManager"] = json!("kubectl"));
    assert_eq!((d.allowed, d.reason), (false, Reason::WindowClosed));
}

#[test]
fn tenant_service_accounts_need_flux_group_configuration() {
    // Multi-tenant Flux impersonates tenant service accounts. Unconfigured, they are not Flux:
    // a documented misconfiguration, visible in the audit log as `not-flux` from a
    // system:serviceaccount user.
    let tenant = |r: &mut Value| {
        r["userInfo"]["username"] = json!("system:serviceaccount:team-a:reconciler");
        r["userInfo"]["groups"] =
            json!(["system:serviceaccounts", "system:serviceaccounts:team-a"]);
        r["options"]["fieldManager"] = json!("kustomize-controller-team-a");
    };
    assert_eq!(decide(BUMP, tenant).reason, Reason::NotFlux);
    let policy = Policy {
        flux_groups: vec!["system:serviceaccounts:team-a".into()],
        ..Policy::default()
    };
    let d = decide_with(BUMP, &load_windows(&[]).unwrap(), &policy, tenant);
    assert_eq!((d.allowed, d.reason), (false, Reason::WindowClosed));
}

#[test]
fn relabelling_to_real_time_in_git_is_held_by_the_old_window() {
    let d = decide(BUMP, |r| {
        r["object"]["metadata"]["labels"]["fluxgate.io/mode"] = json!("rt")
    });
    assert_eq!((d.allowed, d.reason), (false, Reason::WindowClosed));
}

#[test]
fn moving_to_an_open_window_is_held_by_the_closed_one() {
    // `default` is open on Friday 12:00 UTC; the object leaves closed business-hours.
    let d = decide(BUMP, |r| {
        r["object"]["metadata"]["labels"]["fluxgate.io/window"] = json!("default")
    });
    assert_eq!((d.allowed, d.reason), (false, Reason::WindowClosed));
}

#[test]
fn deleting_or_renaming_a_window_denies_its_objects() {
    let windows = embedded_without("business-hours");
    let d = decide_with(BUMP, &windows, &Policy::default(), |_| {});
    assert_eq!((d.allowed, d.reason), (false, Reason::UnknownWindow));
    // The same object while its window exists but is open would be admitted: the denial is
    // the window's absence, not its schedule.
    let d = decide_with(BUMP, &windows, &Policy::default(), |r| {
        r["object"]["metadata"]["labels"]["fluxgate.io/window"] = json!("default");
        r["oldObject"]["metadata"]["labels"]["fluxgate.io/window"] = json!("default");
    });
    assert_eq!((d.allowed, d.reason), (true, Reason::WindowOpen));
}

#[test]
fn a_typo_in_the_mode_label_does_not_turn_enforcement_off() {
    let d = decide(BUMP, |r| {
        r["object"]["metadata"]["labels"]["fluxgate.io/mode"] = json!("read-write")
    });
    assert_eq!((d.allowed, d.reason), (false, Reason::InvalidRequest));
}

#[test]
fn a_bypass_is_bounded_in_time_and_needs_a_reason() {
    let bypass = |reason: &str, until: &str| {
        let (reason, until) = (reason.to_owned(), until.to_owned());
        move |r: &mut Value| {
            r["object"]["metadata"]["annotations"]["fluxgate.io/bypass-reason"] = json!(reason);
            r["object"]["metadata"]["annotations"]["fluxgate.io/bypass-until"] = json!(until);
        }
    };
    assert_eq!(
        decide(BUMP, bypass("", "2026-11-27T20:00:00Z")).reason,
        Reason::InvalidBypass
    );
    assert_eq!(
        decide(BUMP, bypass("hotfix", "2099-01-01T00:00:00Z")).reason,
        Reason::InvalidBypass
    );
    assert_eq!(
        decide(BUMP, bypass("hotfix", "2026-11-27T11:59:00Z")).reason,
        Reason::InvalidBypass
    );
    let d = decide(BUMP, bypass("hotfix", "2026-11-27T20:00:00Z"));
    assert_eq!((d.allowed, d.reason), (true, Reason::Bypass));
    assert!(!d.warnings.is_empty(), "a bypass is loud");
    assert!(d.bypass.is_some(), "and recorded for the audit log");
}

#[test]
fn a_status_only_difference_is_a_no_op_by_design() {
    // Status is observed state, not desired state: a change confined to it passes. Objects
    // whose CRD has no status subresource are the only ones where Flux could write it.
    let unchanged = include_str!("fixtures/admission/flux-dryrun-unchanged-deployment.json");
    let d = decide(unchanged, |r| {
        r["object"]["status"] = json!({"replicas": 99})
    });
    assert_eq!((d.allowed, d.reason), (true, Reason::NoOp));
    // Anything else that differs is a change.
    let d = decide(unchanged, |r| {
        r["object"]["metadata"]["finalizers"] = json!(["x"])
    });
    assert_eq!((d.allowed, d.reason), (false, Reason::WindowClosed));
}
