//! The admission request path, bytes in, response out: exactly what `POST /validate` and
//! `fluxgate review` run (`fluxgate_core::admission::review`), on the embedded example windows.
//!
//! Input layout: the first 4 bytes choose the instant (little-endian seconds from
//! 2025-01-01T00:00:00Z, modulo six years, so open, closed and frozen states of every example
//! window are reachable), the rest is the request body. Corpus files are a 4-byte prefix
//! followed by an AdmissionReview JSON.
//!
//! When the body is reviewed, the response the server sends must be JSON, echo the request uid,
//! carry `auditAnnotations` `decision` and `reason` that agree with the decision, and a denial
//! must have `status.code` 403 and `status.reason` `Forbidden`; the audit line must be one line
//! of at most `MAX_LINE_BYTES` that reads back as the record of that decision.

#![no_main]

use chrono::{DateTime, Duration, TimeZone, Utc};
use fluxgate_core::audit;
use fluxgate_core::policy::Policy;
use fluxgate_core::window::WindowSet;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const SPAN_SECONDS: u32 = 6 * 366 * 24 * 3600;

fn windows() -> &'static WindowSet {
    static WINDOWS: OnceLock<WindowSet> = OnceLock::new();
    WINDOWS
        .get_or_init(|| fluxgate_core::window::WindowSet::embedded().expect("embedded windows load"))
}

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(Policy::default)
}

fn instant(prefix: [u8; 4]) -> DateTime<Utc> {
    let base = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    base + Duration::seconds(i64::from(u32::from_le_bytes(prefix) % SPAN_SECONDS))
}

fuzz_target!(|data: &[u8]| {
    let Some((prefix, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let now = instant(*prefix);
    let Ok(reviewed) = fluxgate_core::admission::review(body, windows(), policy(), now) else {
        return;
    };
    let decision = &reviewed.decision;
    let wire = reviewed.response_json().expect("the response serialises");
    let json: serde_json::Value = serde_json::from_slice(&wire).expect("the response is JSON");
    let response = &json["response"];
    assert_eq!(
        response["uid"].as_str(),
        Some(reviewed.request.uid.as_str()),
        "uid echoed: {json}"
    );
    assert_eq!(
        response["allowed"].as_bool(),
        Some(decision.allowed),
        "{json}"
    );
    let annotations = &response["auditAnnotations"];
    let want = if decision.allowed { "allow" } else { "deny" };
    assert_eq!(annotations["decision"].as_str(), Some(want), "{json}");
    assert_eq!(
        annotations["reason"].as_str(),
        Some(decision.reason.as_str()),
        "{json}"
    );
    if !decision.allowed {
        assert_eq!(response["status"]["code"].as_u64(), Some(403), "{json}");
        assert_eq!(
            response["status"]["reason"].as_str(),
            Some("Forbidden"),
            "{json}"
        );
        assert!(
            response["status"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "a denial says why: {json}"
        );
    }
    assert_eq!(
        json["apiVersion"].as_str(),
        Some("admission.k8s.io/v1"),
        "{json}"
    );
    let mut line = Vec::new();
    audit::write_line(&mut line, &reviewed.request, decision, "fuzz", now, 0.0);
    assert!(line.len() <= audit::MAX_LINE_BYTES, "{} bytes", line.len());
    assert_eq!(line.iter().position(|&b| b == b'\n'), Some(line.len() - 1));
    let record: audit::AuditRecord =
        serde_json::from_slice(&line).expect("the audit line reads back");
    assert_eq!(record.decision, audit::AuditDecision::of(decision.allowed));
    assert_eq!(record.reason, decision.reason);
});
