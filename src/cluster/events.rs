//! Kubernetes Events (events.k8s.io) for admitted bypasses and for denials, so `kubectl describe`
//! on the object says what fluxgate did.
//!
//! Which decisions produce an Event is decided here, purely ([`event_for`]); publishing happens
//! on a background task fed by a bounded queue, so an Event never delays or changes a decision:
//! when the API is slow the queue fills and further Events are dropped and counted.

use crate::object::Object;
use crate::policy::{Decision, Reason};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::core::admission::{AdmissionRequest, Operation};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

/// Events waiting to be published at most; beyond that they are dropped (and counted).
const QUEUE: usize = 1024;
/// The Events API caps `note` at 1 kB.
const MAX_NOTE_BYTES: usize = 1024;

/// The Event a decision deserves, if any: every admitted bypass, and every denial of a real
/// (not dry-run) request.
pub fn event_for(
    request: &AdmissionRequest<Object>,
    decision: &Decision,
) -> Option<(Event, ObjectReference)> {
    let (reason, action) = match decision.reason {
        Reason::Bypass => ("EmergencyBypass", "Admit"),
        Reason::Override => ("ReconciliationWindowOverride", "Admit"),
        _ if decision.allowed || request.dry_run => return None,
        Reason::WindowClosed => ("ReconciliationWindowClosed", "Deny"),
        Reason::Frozen => ("ReconciliationWindowFrozen", "Deny"),
        Reason::UnknownWindow => ("UnknownReconciliationWindow", "Deny"),
        Reason::InvalidBypass => ("InvalidBypass", "Deny"),
        Reason::InvalidWindow => ("InvalidReconciliationWindow", "Deny"),
        _ => ("Denied", "Deny"),
    };
    let event = Event {
        type_: EventType::Warning,
        reason: reason.to_owned(),
        note: Some(truncate(&decision.message, MAX_NOTE_BYTES)),
        action: action.to_owned(),
        secondary: None,
    };
    Some((event, reference(request)))
}

/// The object a request is about.
fn reference(request: &AdmissionRequest<Object>) -> ObjectReference {
    let object = if request.operation == Operation::Delete {
        request.old_object.as_ref()
    } else {
        request.object.as_ref().or(request.old_object.as_ref())
    };
    let api_version = if request.kind.group.is_empty() {
        request.kind.version.clone()
    } else {
        format!("{}/{}", request.kind.group, request.kind.version)
    };
    ObjectReference {
        api_version: Some(api_version),
        kind: Some(request.kind.kind.clone()),
        name: Some(request.name.clone()).filter(|n| !n.is_empty()),
        namespace: request.namespace.clone().filter(|n| !n.is_empty()),
        uid: object.and_then(|o| o.metadata.uid.clone()),
        resource_version: None,
        field_path: None,
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Publishes Events in the background.
#[derive(Clone)]
pub struct EventPublisher {
    queue: mpsc::Sender<(Event, ObjectReference)>,
    dropped: Counter,
}

impl EventPublisher {
    /// Starts the publishing task. `published` / `failed` / `dropped` count outcomes.
    pub fn spawn(client: Client, reporter: Reporter, outcomes: EventOutcomes) -> Self {
        let (queue, mut pending) = mpsc::channel::<(Event, ObjectReference)>(QUEUE);
        let EventOutcomes {
            published,
            failed,
            dropped,
        } = outcomes;
        tokio::spawn(async move {
            let recorder = Recorder::new(client, reporter);
            while let Some((event, reference)) = pending.recv().await {
                match recorder.publish(&event, &reference).await {
                    Ok(()) => {
                        published.inc();
                    }
                    Err(error) => {
                        failed.inc();
                        tracing::warn!(%error, reason = %event.reason, object = ?reference.name, "cannot publish Event");
                    }
                }
            }
        });
        EventPublisher { queue, dropped }
    }

    /// Queues the Event of a decision, if it deserves one; never waits.
    pub fn notify(&self, request: &AdmissionRequest<Object>, decision: &Decision) {
        if let Some(event) = event_for(request, decision)
            && self.queue.try_send(event).is_err()
        {
            self.dropped.inc();
            tracing::warn!(uid = %request.uid, "Event queue full; dropping the Event");
        }
    }
}

/// Counters for what became of Events.
pub struct EventOutcomes {
    pub published: Counter,
    pub failed: Counter,
    pub dropped: Counter,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::review::review;
    use chrono::DateTime;
    use serde_json::json;

    fn decide(mutate: impl FnOnce(&mut serde_json::Value)) -> (AdmissionRequest<Object>, Decision) {
        let mut body: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/admission/flux-dryrun-image-bump-deployment.json"
        ))
        .unwrap();
        mutate(&mut body["request"]);
        let windows = crate::load::load_windows(&[]).unwrap();
        // Friday: business-hours closed.
        let now = DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .unwrap()
            .to_utc();
        let reviewed = review(
            &serde_json::to_vec(&body).unwrap(),
            &windows,
            &Policy::default(),
            now,
        )
        .unwrap();
        (reviewed.request, reviewed.decision)
    }

    #[test]
    fn dry_run_denials_make_no_event_but_real_ones_do() {
        let (request, decision) = decide(|_| {});
        assert!(!decision.allowed);
        assert!(event_for(&request, &decision).is_none(), "dry-run");
        let (request, decision) = decide(|r| r["dryRun"] = json!(false));
        let (event, reference) = event_for(&request, &decision).unwrap();
        assert_eq!(event.reason, "ReconciliationWindowClosed");
        assert_eq!(event.type_, EventType::Warning);
        assert!(
            event
                .note
                .unwrap()
                .contains("closed until 2026-11-30T08:00:00+01:00")
        );
        assert_eq!(reference.api_version.as_deref(), Some("apps/v1"));
        assert_eq!(reference.kind.as_deref(), Some("Deployment"));
        assert_eq!(reference.namespace.as_deref(), Some("nginx"));
        assert_eq!(reference.name.as_deref(), Some("nginx"));
        assert_eq!(
            reference.uid.as_deref(),
            Some("6de94019-aabb-4665-bb65-aafc69320ece")
        );
    }

    #[test]
    fn a_bypass_makes_an_event_even_in_dry_run() {
        let (request, decision) = decide(|r| {
            r["object"]["metadata"]["annotations"]["fluxgate.io/bypass-reason"] = json!("CVE fix");
            r["object"]["metadata"]["annotations"]["fluxgate.io/bypass-until"] =
                json!("2026-11-27T20:00:00Z");
        });
        assert_eq!(decision.reason, Reason::Bypass);
        let (event, _) = event_for(&request, &decision).unwrap();
        assert_eq!(event.reason, "EmergencyBypass");
        assert_eq!(event.action, "Admit");
    }

    #[test]
    fn admissions_make_no_event() {
        let (request, decision) = decide(|r| {
            r["userInfo"]["username"] = json!("admin");
            r["options"]["fieldManager"] = json!("kubectl");
        });
        assert!(decision.allowed);
        assert!(event_for(&request, &decision).is_none());
    }

    #[test]
    fn notes_are_cut_at_one_kilobyte_on_a_char_boundary() {
        let long = "é".repeat(1000);
        let cut = truncate(&long, MAX_NOTE_BYTES);
        assert!(cut.len() <= MAX_NOTE_BYTES);
        assert!(cut.ends_with("..."));
    }
}
