//! One AdmissionReview in, one AdmissionReview out: the code path shared by `POST /validate`
//! and `fluxgate review`, so the two can never answer differently.

use crate::object::Object;
use crate::policy::{Decision, Policy, ResponseReview, decide, response};
use crate::window::WindowSet;
use chrono::{DateTime, Utc};
use kube::core::admission::AdmissionRequest;

/// The only AdmissionReview version the API server sends us (the webhook asks for v1).
pub(crate) const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";

/// Why a body is not an AdmissionReview we can answer.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("not an AdmissionReview: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not an AdmissionReview: the body is not UTF-8 JSON: {0}")]
    Utf8(#[from] std::str::Utf8Error),
    #[error("AdmissionReview apiVersion {0:?} is not supported: send {ADMISSION_API_VERSION}")]
    Version(String),
    #[error("AdmissionReview has no request")]
    NoRequest,
}

/// A reviewed request: the request and the decision, from which the response is written.
#[derive(Debug)]
pub struct Reviewed {
    pub request: AdmissionRequest<Object>,
    pub decision: Decision,
}

impl Reviewed {
    /// The response review to send back.
    pub fn response(&self) -> ResponseReview<'_> {
        response(&self.request, &self.decision)
    }

    /// The response review as the server sends it: compact JSON.
    pub fn response_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&self.response())
    }
}

/// The AdmissionReview envelope, parsed in one pass. `kube`'s `AdmissionReview` flattens its
/// `TypeMeta`, which makes serde buffer the whole review (objects included) in an
/// intermediate tree and parse it a second time: half the cost of a decision.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    request: Option<AdmissionRequest<Object>>,
}

/// Parses the request of an AdmissionReview (admission.k8s.io/v1).
pub fn parse_request(body: &[u8]) -> Result<AdmissionRequest<Object>, ReviewError> {
    // UTF-8 is checked once for the whole body: serde_json's `from_str` then skips the per-string
    // check `from_slice` does, which is a fifth of the parse.
    let envelope: Envelope = serde_json::from_str(std::str::from_utf8(body)?)?;
    if envelope.api_version != ADMISSION_API_VERSION {
        return Err(ReviewError::Version(envelope.api_version));
    }
    let mut request = envelope.request.ok_or(ReviewError::NoRequest)?;
    request.types = kube::core::TypeMeta {
        api_version: envelope.api_version,
        kind: envelope.kind,
    };
    Ok(request)
}

/// Parses an AdmissionReview (admission.k8s.io/v1) and decides it at `now`.
pub fn review(
    body: &[u8],
    windows: &WindowSet,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Reviewed, ReviewError> {
    let request = parse_request(body)?;
    let decision = decide(&request, windows, policy, now);
    Ok(Reviewed { request, decision })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_utf8_is_named_as_such() {
        let err = parse_request(b"{\"apiVersion\": \"admission.k8s.io/v1\xff\"}").unwrap_err();
        assert!(matches!(err, ReviewError::Utf8(_)), "{err}");
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
}
