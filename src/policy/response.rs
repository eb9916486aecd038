//! A [`Decision`] as the API server reads it: an AdmissionReview (admission.k8s.io/v1) whose
//! response carries `status`, `auditAnnotations` and `warnings`.
//!
//! [`response`] borrows the request and the decision and serialises straight from them: the
//! AdmissionReview is written for every request, and building `kube`'s owned
//! `AdmissionResponse` first copied a dozen strings into a hash map and out again. What it
//! writes is exactly what `kube::core::admission::AdmissionReview` reads (a property test
//! reads every response back through it).

use super::Decision;
use crate::object::Object;
use kube::core::admission::AdmissionRequest;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// The AdmissionReview answering `request` with `decision`; a denial carries code 403,
/// reason `Forbidden`.
pub fn response<'a>(
    request: &'a AdmissionRequest<Object>,
    decision: &'a Decision,
) -> ResponseReview<'a> {
    ResponseReview {
        api_version: &request.types.api_version,
        kind: &request.types.kind,
        response: ResponseOut {
            uid: &request.uid,
            allowed: decision.allowed,
            // The API server ignores status when allowed; `fluxgate review` readers do not.
            status: if decision.allowed {
                StatusOut {
                    status: "Success",
                    code: None,
                    message: &decision.message,
                    reason: None,
                }
            } else {
                StatusOut {
                    status: "Failure",
                    code: Some(403),
                    message: &decision.message,
                    reason: Some("Forbidden"),
                }
            },
            audit_annotations: AuditAnnotations(decision),
            warnings: &decision.warnings,
        },
    }
}

/// An AdmissionReview with its response, in the field order of `kube`'s.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseReview<'a> {
    api_version: &'a str,
    kind: &'a str,
    response: ResponseOut<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    status: StatusOut<'a>,
    audit_annotations: AuditAnnotations<'a>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

/// A `metav1.Status`.
#[derive(Debug, Serialize)]
struct StatusOut<'a> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// Plain keys: the API server prefixes them with the webhook's name in its audit log.
/// `decision` and `reason` always; `window` when windows were involved; `bypass-reason` and
/// `bypass-until` when the bypass annotations were consulted.
#[derive(Debug)]
struct AuditAnnotations<'a>(&'a Decision);

impl Serialize for AuditAnnotations<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let decision = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("decision", if decision.allowed { "allow" } else { "deny" })?;
        map.serialize_entry("reason", decision.reason.as_str())?;
        if !decision.windows.is_empty() {
            map.serialize_entry("window", &WindowNames(decision))?;
        }
        if let Some(bypass) = &decision.bypass {
            if let Some(reason) = &bypass.reason {
                map.serialize_entry("bypass-reason", reason)?;
            }
            if let Some(until) = &bypass.until {
                map.serialize_entry("bypass-until", until)?;
            }
        }
        map.end()
    }
}

/// The names of the windows involved, comma-separated, written without joining them first.
struct WindowNames<'a>(&'a Decision);

impl std::fmt::Display for WindowNames<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, window) in self.0.windows.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&window.name)?;
        }
        Ok(())
    }
}

impl Serialize for WindowNames<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
