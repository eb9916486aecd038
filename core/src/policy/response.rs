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
use crate::window::Enforcement;
use kube::core::admission::AdmissionRequest;
use serde::{Serialize, Serializer};
use std::borrow::Cow;

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
#[derive(Debug)]
struct AuditAnnotations<'a>(&'a Decision);

impl<'a> AuditAnnotations<'a> {
    /// `decision` and `reason` always; `window` when windows were involved; `override-reason`
    /// when an override opened one; `enforcement: warn` when admitted in Warn mode;
    /// `bypass-reason`
    /// and `bypass-until` when the bypass annotations were consulted. In this order.
    fn entries(&self) -> impl Iterator<Item = (&'static str, Cow<'a, str>)> {
        let decision = self.0;
        let bypass = decision.bypass.as_ref();
        let allowed = if decision.allowed { "allow" } else { "deny" };
        [
            Some(("decision", Cow::Borrowed(allowed))),
            Some(("reason", Cow::Borrowed(decision.reason.as_str()))),
            (!decision.windows.is_empty()).then(|| ("window", Cow::Owned(window_names(decision)))),
            override_reason(decision).map(|reason| ("override-reason", Cow::Borrowed(reason))),
            (decision.enforcement == Enforcement::Warn)
                .then(|| ("enforcement", Cow::Borrowed(Enforcement::Warn.as_str()))),
            bypass
                .and_then(|b| b.reason.as_deref())
                .map(|reason| ("bypass-reason", Cow::Borrowed(reason))),
            bypass
                .and_then(|b| b.until.as_deref())
                .map(|until| ("bypass-until", Cow::Borrowed(until))),
        ]
        .into_iter()
        .flatten()
    }
}

impl Serialize for AuditAnnotations<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.entries())
    }
}

/// The reason of the (first) override that held a window open.
fn override_reason(decision: &Decision) -> Option<&str> {
    decision.windows.iter().find_map(|w| {
        let state = &w.known.as_ref()?.state;
        state.opened_by.as_ref().map(|o| o.reason.as_str())
    })
}

/// The names of the windows involved, comma-separated.
fn window_names(decision: &Decision) -> String {
    let mut names = String::with_capacity(64);
    for (i, window) in decision.windows.iter().enumerate() {
        if i > 0 {
            names.push(',');
        }
        names.push_str(&window.name);
    }
    names
}
