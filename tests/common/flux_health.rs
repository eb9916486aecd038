//! Flux's health check of ReconciliationWindows: the `healthCheckExprs` committed on the Flux
//! Kustomizations that apply windows, read from their files, and evaluated as kustomize-controller
//! evaluates them. Shared by tests/install.rs (on the statuses fluxgate writes) and
//! tests/flux_loop.rs (against a fake API server, as fluxgate writes them).

#![allow(dead_code)]

use serde_json::Value;

/// The Flux Kustomizations in deploy/ that apply ReconciliationWindows.
pub const WINDOW_KUSTOMIZATIONS: [&str; 2] = [
    "deploy/examples/flux-install/clusters/my-cluster/fluxgate/windows.yaml",
    "deploy/examples/gitops/clusters/cluster-1/flux/reconciliation-windows.yaml",
];

fn yaml(relative: &str) -> Vec<Value> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{relative}: {e}"));
    serde_saphyr::from_multiple(&text).expect("valid YAML")
}

/// Flux's verdict on one object under a Kustomization's `healthCheckExprs` entry, as
/// kustomize-controller reaches it (fluxcd/pkg `runtime/cel`, RFC 0009): "InProgress" while
/// `status.observedGeneration` exists and differs from `metadata.generation`; otherwise the
/// first of `inProgress`, `failed`, `current` that is true, "InProgress" when none is. The
/// expressions are parsed without declarations and see each top-level field of the object as a
/// variable, so a missing field is an evaluation error: `Err`, which Flux reports as status
/// Unknown and waits on until its timeout.
/// The schema of a Flux Kustomization's `spec` (v1) in the committed Flux CRD.
pub fn kustomization_spec_schema() -> Value {
    let crd =
        yaml("tests/fixtures/flux-crds/kustomize.toolkit.fluxcd.io_kustomizations.yaml").remove(0);
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1")
        .unwrap();
    version["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
}

pub fn flux_health(entry: &Value, object: &Value) -> Result<&'static str, String> {
    let observed = &object["status"]["observedGeneration"];
    if !observed.is_null() && *observed != object["metadata"]["generation"] {
        return Ok("InProgress");
    }
    let mut context = cel::Context::default();
    for (field, value) in object.as_object().unwrap() {
        context.add_variable(field.as_str(), value).unwrap();
    }
    for (key, verdict) in [
        ("inProgress", "InProgress"),
        ("failed", "Failed"),
        ("current", "Current"),
    ] {
        let Some(source) = entry[key].as_str() else {
            continue;
        };
        let program = cel::Program::compile(source).map_err(|e| format!("{key}: {e}"))?;
        match program.execute(&context) {
            Ok(cel::Value::Bool(true)) => return Ok(verdict),
            Ok(cel::Value::Bool(false)) => {}
            Ok(other) => return Err(format!("{key} is {other:?}, not a bool")),
            Err(e) => return Err(format!("{key}: {e}")),
        }
    }
    Ok("InProgress")
}

/// The `healthCheckExprs` entry for ReconciliationWindows of the Kustomization in `file`, its
/// fields checked against Flux's CRD.
pub fn window_health_check(file: &str) -> Value {
    let kustomization = yaml(file).remove(0);
    let spec = kustomization_spec_schema();
    let item = &spec["properties"]["healthCheckExprs"]["items"];
    let entries = kustomization["spec"]["healthCheckExprs"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no spec.healthCheckExprs"));
    assert_eq!(entries.len(), 1, "{file}");
    let entry = entries[0].clone();
    for field in entry.as_object().unwrap().keys() {
        assert!(
            item["properties"][field].is_object(),
            "{file}: healthCheckExprs[0].{field} is not a field of Flux's Kustomization"
        );
    }
    for required in item["required"].as_array().unwrap() {
        assert!(
            entry[required.as_str().unwrap()].is_string(),
            "{file}: healthCheckExprs[0] needs {required}"
        );
    }
    assert_eq!(
        entry["apiVersion"],
        fluxgate_core::window::API_VERSION,
        "{file}"
    );
    assert_eq!(entry["kind"], fluxgate_core::window::KIND, "{file}");
    assert_eq!(
        kustomization["spec"]["wait"], true,
        "{file}: health checks run with wait"
    );
    entry
}
