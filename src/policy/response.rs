//! A [`Decision`] as the API server reads it: an AdmissionResponse with `status`,
//! `auditAnnotations` and `warnings`.

use super::Decision;
use crate::object::Object;
use kube::core::Status;
use kube::core::admission::{AdmissionRequest, AdmissionResponse};
use std::collections::HashMap;

/// The AdmissionResponse for `decision`; a denial carries code 403, reason `Forbidden`.
pub fn response(request: &AdmissionRequest<Object>, decision: &Decision) -> AdmissionResponse {
    let mut response = AdmissionResponse::from(request);
    if decision.allowed {
        // The API server ignores status when allowed; `fluxgate review` readers do not.
        response.result = Status::success();
        response.result.message = decision.message.clone();
    } else {
        response.allowed = false;
        response.result = Status::failure(&decision.message, "Forbidden").with_code(403);
    }
    response.audit_annotations = audit_annotations(decision);
    if !decision.warnings.is_empty() {
        response.warnings = Some(decision.warnings.clone());
    }
    response
}

/// Plain keys: the API server prefixes them with the webhook's name in its audit log.
pub fn audit_annotations(decision: &Decision) -> HashMap<String, String> {
    // decision, reason, window, and the two bypass keys: never a rehash.
    let mut annotations = HashMap::with_capacity(5);
    annotations.insert(
        "decision".to_owned(),
        if decision.allowed { "allow" } else { "deny" }.to_owned(),
    );
    annotations.insert("reason".to_owned(), decision.reason.as_str().to_owned());
    if !decision.windows.is_empty() {
        let names: Vec<&str> = decision.windows.iter().map(|w| w.name.as_str()).collect();
        annotations.insert("window".to_owned(), names.join(","));
    }
    if let Some(bypass) = &decision.bypass {
        if let Some(reason) = &bypass.reason {
            annotations.insert("bypass-reason".to_owned(), reason.clone());
        }
        if let Some(until) = &bypass.until {
            annotations.insert("bypass-until".to_owned(), until.clone());
        }
    }
    annotations
}
