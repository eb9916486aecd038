//! The recorded AdmissionReviews the benchmark and `examples/review_loop.rs` decide, and the
//! busy-cluster variant built from them.

use serde_json::{Value, json};

pub const BUMP: &str =
    include_str!("../../tests/fixtures/admission/flux-dryrun-image-bump-deployment.json");
pub const UNCHANGED: &str =
    include_str!("../../tests/fixtures/admission/flux-dryrun-unchanged-deployment.json");
pub const CONFIGMAP: &str =
    include_str!("../../tests/fixtures/admission/flux-create-configmap-rt.json");
pub const PRUNE: &str = include_str!("../../tests/fixtures/admission/flux-prune-deployment.json");

/// A Deployment UPDATE as a busy cluster sends it: several field managers (Flux, an HPA, a
/// rollout restart, kubectl), more labels and annotations: 17.7 KB (compact, as the API server sends it).
pub fn big(fixture: &str) -> Vec<u8> {
    let mut review: Value = serde_json::from_str(fixture).unwrap();
    for object in ["object", "oldObject"] {
        let meta = &mut review["request"][object]["metadata"];
        let entry = meta["managedFields"][0].clone();
        for (i, manager) in [
            "kube-controller-manager",
            "horizontal-pod-autoscaler",
            "kubectl-rollout",
            "kubectl-edit",
        ]
        .iter()
        .enumerate()
        {
            let mut extra = entry.clone();
            extra["manager"] = json!(manager);
            extra["operation"] = json!("Update");
            extra["time"] = json!(format!("2026-11-2{i}T10:00:00Z"));
            meta["managedFields"].as_array_mut().unwrap().push(extra);
        }
        for i in 0..20 {
            meta["labels"][format!("team.example.com/label-{i}")] = json!(format!("value-{i}"));
            meta["annotations"][format!("example.com/annotation-{i}")] = json!("x".repeat(80));
        }
    }
    serde_json::to_vec(&review).unwrap()
}
