//! The GitOps example (`deploy/examples/gitops`): its rw and rt apps are labelled as fluxgate
//! needs and are gated by the example windows; its Flux Kustomizations point at real paths in a
//! safe order, nothing that installs fluxgate is gated by it, and `fluxgate lint` finds nothing
//! in what each applies.
//!
//! Rendering uses `kubectl kustomize` (offline): see tests/common/deploy.rs for what happens
//! without it.

mod common;

use common::deploy::*;
use common::{documents, kubectl_available, try_kustomize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

// === the GitOps example's labels ===

#[test]
fn nginx_rw_objects_are_rw_but_their_pods_and_selectors_are_not() {
    let Some(objects) = render(&format!("{GITOPS}/apps/nginx/nginx-rw")) else {
        return;
    };
    assert_eq!(objects.len(), 2, "the Deployment and the Service");
    for object in &objects {
        let labels = labels(object);
        assert_eq!(
            labels.get("fluxgate.io/mode").map(String::as_str),
            Some("rw"),
            "{}",
            describe(object)
        );
        assert_eq!(
            labels.get("fluxgate.io/window").map(String::as_str),
            Some("business-hours"),
            "{}",
            describe(object)
        );
    }
    let deployment = find(&objects, "Deployment", "nginx");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.14.2"
    );
    // Pods are created by the ReplicaSet controller, not Flux: an rw label on them would send
    // every pod creation through the webhook, which fails closed.
    let template_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(
        *template_labels,
        json!({"app": "nginx"}),
        "the pod template must stay unlabelled"
    );
    // Selectors are immutable (Deployment) or must keep matching the pods (Service).
    assert_eq!(
        deployment["spec"]["selector"],
        json!({"matchLabels": {"app": "nginx"}})
    );
    let service = find(&objects, "Service", "nginx");
    assert_eq!(service["spec"]["selector"], json!({"app": "nginx"}));
}

#[test]
fn nginx_rt_objects_are_never_rw() {
    let Some(objects) = render(&format!("{GITOPS}/apps/nginx/nginx-rt")) else {
        return;
    };
    find(&objects, "ConfigMap", "nginx-conf");
    find(&objects, "Namespace", "nginx");
    for object in &objects {
        assert_ne!(
            labels(object).get("fluxgate.io/mode").map(String::as_str),
            Some("rw"),
            "{}",
            describe(object)
        );
    }
    // The Deployment mounts this ConfigMap.
    let rw = render(&format!("{GITOPS}/apps/nginx/nginx-rw")).unwrap();
    let volumes = &find(&rw, "Deployment", "nginx")["spec"]["template"]["spec"]["volumes"];
    assert_eq!(volumes[0]["configMap"]["name"], "nginx-conf");
}

/// An AdmissionReview of Flux creating `object` (a dry-run, as Flux's first step is).
fn flux_create(object: &Value) -> Vec<u8> {
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap();
    let kind_ref = json!({"group": group, "version": version, "kind": kind});
    let plural = format!("{}s", kind.to_lowercase());
    let resource = json!({"group": group, "version": version, "resource": plural});
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-000000000001",
            "kind": kind_ref, "requestKind": kind_ref,
            "resource": resource, "requestResource": resource,
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:flux-system:kustomize-controller",
                "groups": [
                    "system:serviceaccounts",
                    "system:serviceaccounts:flux-system",
                    "system:authenticated",
                ],
            },
            "object": object,
            "oldObject": null,
            "dryRun": true,
            "options": {
                "kind": "CreateOptions",
                "apiVersion": "meta.k8s.io/v1",
                "dryRun": ["All"],
                "fieldManager": "kustomize-controller",
            },
        },
    });
    serde_json::to_vec(&review).unwrap()
}

fn review(object: &Value, at: &str) -> Value {
    let output = fluxgate(
        &["review", "--windows", GITOPS_WINDOWS, "--at", at],
        &flux_create(object),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Value>(&output.stdout).unwrap()["response"].clone()
}

#[test]
fn fluxgate_gates_the_rendered_apps_with_the_example_windows() {
    let (Some(rw), Some(rt)) = (
        render(&format!("{CLUSTER}/apps/apps-rw")),
        render(&format!("{CLUSTER}/apps/apps-rt")),
    ) else {
        return;
    };
    for object in &rw {
        let open = review(object, OPEN);
        assert_eq!(
            open["allowed"],
            true,
            "{} while open: {open}",
            describe(object)
        );
        assert_eq!(
            open["auditAnnotations"]["reason"],
            "window-open",
            "{}",
            describe(object)
        );
        let closed = review(object, CLOSED);
        assert_eq!(
            closed["allowed"],
            false,
            "{} while closed: {closed}",
            describe(object)
        );
        assert_eq!(closed["auditAnnotations"]["reason"], "window-closed");
        let message = closed["status"]["message"].as_str().unwrap();
        assert!(
            message.contains(
                "is governed by reconciliation window \"business-hours\", closed until \
                 2026-11-30T08:00:00+01:00 (Europe/Berlin)"
            ),
            "{message}"
        );
    }
    for object in &rt {
        let closed = review(object, CLOSED);
        assert_eq!(
            closed["allowed"],
            true,
            "{} is rt: {closed}",
            describe(object)
        );
        assert_eq!(closed["auditAnnotations"]["reason"], "not-governed");
    }
}

// === Flux ===

fn flux_kustomizations() -> BTreeMap<String, Value> {
    let mut files = Vec::new();
    yaml_files(&path(&format!("{CLUSTER}/flux")), &mut files);
    files
        .iter()
        .flat_map(|f| documents(&std::fs::read_to_string(f).unwrap()))
        .filter(|o| o["kind"] == "Kustomization")
        .map(|o| (o["metadata"]["name"].as_str().unwrap().to_string(), o))
        .collect()
}

fn depends_on(kustomization: &Value) -> Vec<String> {
    kustomization["spec"]["dependsOn"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|d| d["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Every Kustomization `name` depends on, directly or not.
fn dependencies(all: &BTreeMap<String, Value>, name: &str, seen: &mut BTreeSet<String>) {
    for dependency in depends_on(&all[name]) {
        assert!(
            all.contains_key(&dependency),
            "{name} depends on unknown {dependency}"
        );
        assert_ne!(dependency, name, "{name} depends on itself");
        if seen.insert(dependency.clone()) {
            dependencies(all, &dependency, seen);
        }
    }
}

#[test]
fn the_flux_kustomizations_point_at_real_paths_in_a_safe_order() {
    let all = flux_kustomizations();
    let names: Vec<_> = all.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["apps-rt", "apps-rw", "infra", "reconciliation-windows"]
    );
    for (name, kustomization) in &all {
        assert_eq!(
            kustomization["apiVersion"], "kustomize.toolkit.fluxcd.io/v1",
            "{name}"
        );
        assert_eq!(kustomization["spec"]["prune"], true, "{name}");
        // Flux resolves spec.path from the root of the Git repository: this one.
        let relative = kustomization["spec"]["path"].as_str().unwrap();
        let dir = path(relative.strip_prefix("./").expect("path starts with ./"));
        assert!(
            dir.join("kustomization.yaml").is_file(),
            "{name}: {relative} has no kustomization.yaml"
        );
        let mut seen = BTreeSet::new();
        dependencies(&all, name, &mut seen);
        assert!(
            !seen.contains(name),
            "{name} depends on itself through {seen:?}"
        );
    }
    assert_eq!(
        all["infra"]["spec"]["wait"], true,
        "apps wait until the webhook answers"
    );
    let mut rw = BTreeSet::new();
    dependencies(&all, "apps-rw", &mut rw);
    for needed in ["infra", "reconciliation-windows", "apps-rt"] {
        assert!(
            rw.contains(needed),
            "apps-rw must wait for {needed}: rw objects applied first would be ungated"
        );
    }
    assert!(
        depends_on(&all["apps-rt"]).is_empty(),
        "rt changes never wait for fluxgate"
    );
}

#[test]
fn nothing_that_installs_fluxgate_is_gated_by_fluxgate() {
    // Flux dry-runs a Kustomization as a whole: an object gated by fluxgate inside the
    // Kustomization that installs it would block the repair of a broken fluxgate.
    let infra = &flux_kustomizations()["infra"];
    let relative = infra["spec"]["path"]
        .as_str()
        .unwrap()
        .strip_prefix("./")
        .unwrap()
        .to_string();
    let Some(objects) = render(&relative) else {
        return;
    };
    find(&objects, "Deployment", "fluxgate");
    for object in &objects {
        assert_ne!(
            object["kind"], "ReconciliationWindow",
            "windows belong to another Kustomization"
        );
        assert_ne!(
            labels(object).get("fluxgate.io/mode").map(String::as_str),
            Some("rw"),
            "{}",
            describe(object)
        );
    }
}

#[test]
fn fluxgate_lint_finds_nothing_in_what_each_flux_kustomization_applies() {
    if !kubectl_available() {
        eprintln!("skipping: kubectl not found");
        return;
    }
    for (name, kustomization) in flux_kustomizations() {
        let relative = kustomization["spec"]["path"].as_str().unwrap();
        let yaml = try_kustomize(&path(relative.strip_prefix("./").unwrap())).unwrap();
        let output = fluxgate(
            &["lint", "--windows", GITOPS_WINDOWS, "--at", CLOSED],
            yaml.as_bytes(),
        );
        assert!(
            output.status.success(),
            "fluxgate lint on {name} ({relative}):\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
