//! The manifests under `deploy/` build, their windows load and pass validation, and every
//! Kubernetes object they render matches its API schema; the committed CRD is what the code
//! generates.
//!
//! Rendering uses `kubectl kustomize` (offline): see tests/common/deploy.rs for what happens
//! without it.

mod common;

use common::deploy::*;
use common::documents;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

// === building ===

#[test]
fn every_kustomization_under_deploy_builds() {
    let Some(rendered) = render_every_kustomization() else {
        return;
    };
    let dirs: Vec<&PathBuf> = rendered.iter().map(|(dir, _)| dir).collect();
    assert!(
        dirs.len() >= 8,
        "expected the base, the overlay and the example: {dirs:?}"
    );
    for (dir, yaml) in &rendered {
        assert!(
            !documents(yaml).is_empty(),
            "{} renders nothing",
            dir.display()
        );
    }
}

#[test]
fn the_committed_crd_is_what_fluxgate_crd_prints() {
    let output = fluxgate(&["crd"], b"");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed = std::fs::read(path("deploy/crds/crd.yaml")).unwrap();
    assert!(
        output.stdout == committed,
        "deploy/crds/crd.yaml differs from what the Rust types generate: regenerate it with \
         `cargo run -- crd > deploy/crds/crd.yaml` and commit the result"
    );
}

// === windows ===

#[test]
fn every_window_file_under_deploy_loads() {
    let mut files = Vec::new();
    yaml_files(&path("deploy"), &mut files);
    let mut with_windows = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let windows_in_file = documents(&text)
            .iter()
            .filter(|o| o["kind"] == "ReconciliationWindow")
            .count();
        if windows_in_file == 0 {
            continue;
        }
        with_windows += 1;
        let windows = fluxgate::windows::load_windows(std::slice::from_ref(file))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(windows.len(), windows_in_file, "{}", file.display());
    }
    assert!(
        with_windows >= 2,
        "the example windows and the GitOps example's"
    );

    // Whole folders, as `--windows` reads them (non-window documents ignored).
    for folder in [GITOPS, GITOPS_WINDOWS, "deploy/examples/windows.yaml"] {
        fluxgate::windows::load_windows(&[path(folder)])
            .unwrap_or_else(|e| panic!("{folder}: {e}"));
    }
    let gitops = fluxgate::windows::load_windows(&[path(GITOPS)]).unwrap();
    assert_eq!(gitops.names().collect::<Vec<_>>(), ["business-hours"]);
}

#[test]
fn fluxgate_status_reads_the_gitops_windows() {
    for folder in [GITOPS, GITOPS_WINDOWS] {
        let output = fluxgate(
            &["status", "--windows", folder, "--at", CLOSED, "-o", "json"],
            b"",
        );
        assert!(
            output.status.success(),
            "fluxgate status --windows {folder}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let status: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            status,
            json!([{
                "name": "business-hours",
                "open": false,
                "since": "2026-11-26T17:00:00+01:00",
                "next": "2026-11-30T08:00:00+01:00",
                "timeZone": "Europe/Berlin",
                "frozen": false,
                "enforcement": "Enforce",
            }]),
            "Monday 08:00 to Thursday 17:00, Berlin time"
        );
    }
}

#[test]
fn every_rendered_window_passes_validation() {
    let Some(rendered) = render_every_kustomization() else {
        return;
    };
    let mut rendered_windows = 0;
    for (dir, yaml) in &rendered {
        let count = documents(yaml)
            .iter()
            .filter(|o| o["kind"] == "ReconciliationWindow")
            .count();
        if count == 0 {
            continue;
        }
        rendered_windows += count;
        let windows = fluxgate_core::window::WindowSet::from_yaml(&dir.display().to_string(), yaml)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert_eq!(windows.len(), count, "{}", dir.display());
    }
    assert!(
        rendered_windows > 0,
        "the GitOps example renders its windows"
    );
}

// === schema ===

/// `object` deserialized into its k8s-openapi type and serialized back: a misspelt or unknown
/// field (which kubectl would reject, or worse, drop) does not come back.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(object: &Value) -> Value {
    let typed: T = serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("{}: {e}", describe(object)));
    serde_json::to_value(typed).unwrap()
}

const CA_BUNDLE_PLACEHOLDER: &str = "REPLACE_ME_WITH_THE_caBundle_PRINTED_BY_fluxgate_certs";

/// The base's caBundle placeholder is not base64 on purpose, so that an unpatched base fails to
/// apply: check that it does, then stand in a valid value.
fn patch_placeholder_ca_bundles(configuration: &mut Value) {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    let placeholders = configuration["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["clientConfig"]["caBundle"] == CA_BUNDLE_PLACEHOLDER)
        .count();
    if placeholders == 0 {
        return;
    }
    assert!(
        serde_json::from_value::<ValidatingWebhookConfiguration>(configuration.clone()).is_err(),
        "the caBundle placeholder must not decode"
    );
    for webhook in configuration["webhooks"].as_array_mut().unwrap() {
        if webhook["clientConfig"]["caBundle"] == CA_BUNDLE_PLACEHOLDER {
            webhook["clientConfig"]["caBundle"] = json!("Cg==");
        }
    }
}

#[test]
fn every_rendered_kubernetes_object_matches_its_api_schema() {
    use k8s_openapi::api::{admissionregistration, apps, core, policy, rbac};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
    let Some(rendered) = render_every_kustomization() else {
        return;
    };
    let mut checked = BTreeSet::new();
    for (dir, yaml) in &rendered {
        for mut object in documents(yaml) {
            let kind = object["kind"].as_str().unwrap().to_string();
            if kind == "ValidatingWebhookConfiguration" {
                patch_placeholder_ca_bundles(&mut object);
            }
            let again = match (object["apiVersion"].as_str().unwrap(), kind.as_str()) {
                ("v1", "Namespace") => round_trip::<core::v1::Namespace>(&object),
                ("v1", "ServiceAccount") => round_trip::<core::v1::ServiceAccount>(&object),
                ("v1", "Service") => round_trip::<core::v1::Service>(&object),
                ("v1", "ConfigMap") => round_trip::<core::v1::ConfigMap>(&object),
                ("v1", "ResourceQuota") => round_trip::<core::v1::ResourceQuota>(&object),
                ("apps/v1", "Deployment") => round_trip::<apps::v1::Deployment>(&object),
                ("policy/v1", "PodDisruptionBudget") => {
                    round_trip::<policy::v1::PodDisruptionBudget>(&object)
                }
                ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                    round_trip::<rbac::v1::ClusterRole>(&object)
                }
                ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                    round_trip::<rbac::v1::ClusterRoleBinding>(&object)
                }
                ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
                    round_trip::<admissionregistration::v1::ValidatingWebhookConfiguration>(&object)
                }
                ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                    round_trip::<apiextensions::v1::CustomResourceDefinition>(&object)
                }
                ("networking.k8s.io/v1", "NetworkPolicy") => {
                    round_trip::<k8s_openapi::api::networking::v1::NetworkPolicy>(&object)
                }
                // cert-manager, Flux, fluxgate and Prometheus Operator kinds: checked by the
                // tests above and below.
                (api_version, _) => {
                    assert!(
                        [
                            "cert-manager.io/v1",
                            "fluxgate.io/v1alpha1",
                            "monitoring.coreos.com/v1",
                        ]
                        .contains(&api_version),
                        "{} ({api_version}) has no schema check",
                        describe(&object)
                    );
                    continue;
                }
            };
            assert_eq!(again, object, "{} in {}", describe(&object), dir.display());
            checked.insert(kind);
        }
    }
    assert!(checked.len() >= 10, "{checked:?}");
}
