//! Kubernetes Events (events.k8s.io/v1), so `kubectl describe` and `kubectl events` on an object
//! say what fluxgate did: every denial (dry-run included: kustomize-controller dry-runs a stage
//! first and stops at the first denial, so that is how a denied Flux change looks), every
//! admitted bypass, and every reconcile fluxgate asks of Flux when a window opens.
//!
//! Which decisions produce an Event is decided here, purely (`event_for`); publishing happens
//! on a background task fed by a bounded queue, so an Event never delays or changes a decision:
//! when the API is slow the queue fills and further Events are dropped and counted.
//!
//! Flux retries a denied change at every interval, for as long as the window is closed. Those
//! retries are one story, so they become one Event *series* (the Events API's `series.count` and
//! `lastObservedTime`), per object, reason and closed period, rather than one Event per retry.
//! kube's `Recorder` forgets a series after six minutes, shorter than Flux's intervals, so the
//! series are kept here, until the closed period they belong to ends. The Event's name is derived
//! from the series, so a second replica, or this one after a restart, continues the same Event.

use crate::metrics::EventCounters;
use chrono::{DateTime, SecondsFormat, Utc};
use fluxgate_core::flux::FluxOwner;
use fluxgate_core::object::Object;
use fluxgate_core::policy::{Decision, Reason};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::admission::{AdmissionRequest, Operation};
use prometheus_client::metrics::counter::Counter;
use std::collections::HashMap;
use tokio::sync::mpsc;

/// Events waiting to be published at most; beyond that they are dropped (and counted).
const QUEUE: usize = 1024;
/// The Events API caps `note` at 1 kB.
const MAX_NOTE_BYTES: usize = 1024;
/// Series remembered at most. Past it the oldest is forgotten: its next repeat starts, or (by
/// its derived name) continues, the same Event with a fresh count.
const MAX_SERIES: usize = 4096;

/// One Event to publish.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Notice {
    pub(crate) warning: bool,
    /// CamelCase, machine-readable: `ReconciliationWindowClosed`.
    pub(crate) reason: &'static str,
    /// What fluxgate did: `Deny`, `Admit`, `Reconcile`.
    pub(crate) action: &'static str,
    pub(crate) note: String,
    pub(crate) regarding: ObjectReference,
    /// The Flux owner of the object, or the window of a reconcile request.
    pub(crate) related: Option<ObjectReference>,
    /// Repeats with the same key are one series.
    pub(crate) series: Option<String>,
    /// The series ends here (the window opens): a repeat after it is a new story.
    pub(crate) series_until: Option<DateTime<Utc>>,
    /// When it happened: the decision's instant.
    pub(crate) at: DateTime<Utc>,
}

/// The Event a decision deserves, if any: every admitted bypass and every denial, dry-run or
/// not.
pub(crate) fn event_for(
    request: &AdmissionRequest<Object>,
    decision: &Decision,
    at: DateTime<Utc>,
) -> Option<Notice> {
    let (reason, action) = match decision.reason {
        Reason::Bypass => ("EmergencyBypass", "Admit"),
        Reason::Override => ("ReconciliationWindowOverride", "Admit"),
        _ if decision.allowed => return None,
        Reason::WindowClosed => ("ReconciliationWindowClosed", "Deny"),
        Reason::Frozen => ("ReconciliationWindowFrozen", "Deny"),
        Reason::UnknownWindow => ("UnknownReconciliationWindow", "Deny"),
        Reason::InvalidBypass => ("InvalidBypass", "Deny"),
        Reason::InvalidWindow => ("InvalidReconciliationWindow", "Deny"),
        _ => ("Denied", "Deny"),
    };
    let regarding = reference(request);
    let owner = decision.subject.owner.as_ref();
    let note = match owner {
        Some(owner) => format!("{}: {}", owner_text(owner), decision.message),
        None => decision.message.clone(),
    };
    // A closed period is identified by when each window's current state began.
    let mut series = format!(
        "{reason}|{}|{}|{}|{}|{}",
        regarding.api_version.as_deref().unwrap_or_default(),
        regarding.kind.as_deref().unwrap_or_default(),
        regarding.namespace.as_deref().unwrap_or_default(),
        regarding.name.as_deref().unwrap_or_default(),
        regarding.uid.as_deref().unwrap_or_default(),
    );
    let (periods, until) = periods(decision);
    series.push_str(&periods);
    // A bypass is admitted once per change that needs it: each is its own Event.
    let series = (decision.reason != Reason::Bypass).then_some(series);
    Some(Notice {
        warning: true,
        reason,
        action,
        note: truncate(&note, MAX_NOTE_BYTES),
        regarding,
        related: owner.map(FluxOwner::reference),
        series,
        series_until: until,
        at,
    })
}

/// The windows of a decision with the instant each one's current state began (`|name@since`
/// each), which tells one closed period from the next, and the freeze in force in each
/// (`#name@start`): a freeze that begins within a closed period (on-call stopping the line
/// during a holiday, the next holiday of a calendar) is news of its own, whose Event and notice
/// name it, not one more count of the last one's. Also when the last closed window opens.
/// Events and notifications dedup on it alike.
pub(crate) fn periods(decision: &Decision) -> (String, Option<DateTime<Utc>>) {
    let mut key = String::new();
    let mut until: Option<DateTime<Utc>> = None;
    for verdict in &decision.windows {
        key.push('|');
        key.push_str(&verdict.name);
        if let Some(known) = &verdict.known {
            if let Some(since) = known.state.since {
                key.push('@');
                key.push_str(&since.to_rfc3339_opts(SecondsFormat::Secs, true));
            }
            if let Some(freeze) = known.state.freeze.as_ref().filter(|_| !known.state.open) {
                key.push('#');
                key.push_str(&freeze.name());
                if let Some(start) = freeze.start {
                    key.push('@');
                    key.push_str(&start.to_rfc3339_opts(SecondsFormat::Secs, true));
                }
            }
            if !known.state.open
                && let Some(next) = known.state.next
            {
                until = Some(until.map_or(next, |u| u.max(next)));
            }
        }
    }
    (key, until)
}

/// `Flux Kustomization flux-system/apps-rw`.
fn owner_text(owner: &FluxOwner) -> String {
    format!("Flux {owner}")
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

/// The Event's name: `<object>.<hash>`, from the series when there is one, so that every
/// replica names a series' Event alike; otherwise from the instant, as kube's `Recorder` does.
/// Event names are DNS subdomains of at most 253 characters, while the object's name may be
/// anything its kind allows (`system:controller:…` ClusterRoles): it is folded to one.
fn event_name(notice: &Notice, now: DateTime<Utc>) -> String {
    let object: String = notice
        .regarding
        .name
        .as_deref()
        .unwrap_or_default()
        .chars()
        .take(200)
        .map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let object = object.trim_matches('-');
    let object = if object.is_empty() {
        "fluxgate"
    } else {
        object
    };
    let suffix = match &notice.series {
        Some(key) => fnv1a(key.as_bytes()),
        None => now.timestamp_nanos_opt().unwrap_or_default() as u64,
    };
    format!("{object}.{suffix:016x}")
}

fn micro_time(t: DateTime<Utc>) -> MicroTime {
    let micros = k8s_openapi::jiff::Timestamp::from_microsecond(t.timestamp_micros());
    MicroTime(micros.unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH))
}

/// FNV-1a: stable across processes and versions, unlike std's hasher.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A series this process has published: the Event exists, so a repeat counts on it.
struct Series {
    until: Option<DateTime<Utc>>,
    last: DateTime<Utc>,
}

/// Publishes Events in the background.
#[derive(Clone)]
pub struct EventPublisher {
    queue: mpsc::Sender<Notice>,
    dropped: Counter,
}

/// Who publishes: `reportingController` and `reportingInstance` (the pod).
#[derive(Clone, Debug)]
pub struct Reporter {
    pub(crate) controller: String,
    pub(crate) instance: String,
}

impl From<&str> for Reporter {
    fn from(controller: &str) -> Self {
        Reporter {
            controller: controller.to_owned(),
            instance: controller.to_owned(),
        }
    }
}

impl EventPublisher {
    /// Starts the publishing task. `published` / `failed` / `dropped` count outcomes.
    pub fn spawn(client: Client, reporter: Reporter, counters: EventCounters) -> Self {
        let (queue, mut pending) = mpsc::channel::<Notice>(QUEUE);
        let EventCounters {
            published,
            failed,
            dropped,
        } = counters;
        tokio::spawn(async move {
            let mut series: HashMap<String, Series> = HashMap::new();
            while let Some(notice) = pending.recv().await {
                match publish(&client, &reporter, &mut series, &notice).await {
                    Ok(()) => {
                        published.inc();
                    }
                    Err(error) => {
                        failed.inc();
                        tracing::warn!(%error, reason = notice.reason, object = ?notice.regarding.name, "cannot publish Event");
                    }
                }
            }
        });
        EventPublisher { queue, dropped }
    }

    /// Queues the Event of a decision made at `at`, if it deserves one; never waits.
    pub(crate) fn notify(
        &self,
        request: &AdmissionRequest<Object>,
        decision: &Decision,
        at: DateTime<Utc>,
    ) {
        if let Some(notice) = event_for(request, decision, at) {
            self.send(notice);
        }
    }

    /// Queues an Event; never waits.
    pub(crate) fn send(&self, notice: Notice) {
        if self.queue.try_send(notice).is_err() {
            self.dropped.inc();
            tracing::warn!("Event queue full; dropping the Event");
        }
    }
}

/// Creates the Event, or counts one more of its series.
async fn publish(
    client: &Client,
    reporter: &Reporter,
    series: &mut HashMap<String, Series>,
    notice: &Notice,
) -> Result<(), kube::Error> {
    let now = notice.at;
    series.retain(|_, s| s.until.is_none_or(|until| until > now));
    let namespace = notice
        .regarding
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let api: Api<K8sEvent> = Api::namespaced(client.clone(), &namespace);
    let name = event_name(notice, now);
    if let Some(key) = &notice.series
        && let Some(known) = series.get_mut(key)
    {
        match repeat(&api, &name, now).await {
            Ok(()) => {
                known.last = now;
                return Ok(());
            }
            // Events live an hour after their last write (the API server's --event-ttl): a
            // series quieter than that is gone, and starts again.
            Err(kube::Error::Api(status)) if status.code == 404 => {
                series.remove(key);
            }
            Err(error) => return Err(error),
        }
    }
    let event = K8sEvent {
        action: Some(notice.action.to_owned()),
        reason: Some(notice.reason.to_owned()),
        event_time: Some(micro_time(now)),
        regarding: Some(notice.regarding.clone()),
        related: notice.related.clone(),
        note: Some(notice.note.clone()),
        metadata: ObjectMeta {
            namespace: Some(namespace),
            name: Some(name.clone()),
            ..Default::default()
        },
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(reporter.instance.clone()),
        type_: Some(if notice.warning { "Warning" } else { "Normal" }.to_owned()),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &event).await {
        Ok(_) => {}
        // Another replica, or this one before a restart, began the series: continue it.
        Err(kube::Error::Api(status)) if status.code == 409 && notice.series.is_some() => {
            repeat(&api, &name, now).await?;
        }
        Err(error) => return Err(error),
    }
    if let Some(key) = &notice.series {
        if series.len() >= MAX_SERIES
            && let Some(oldest) = series
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(k, _)| k.clone())
        {
            series.remove(&oldest);
        }
        let until = notice.series_until;
        series.insert(key.clone(), Series { until, last: now });
    }
    Ok(())
}

/// One more occurrence of a series. The count is read from the Event and written against the
/// version read, so the replicas' repeats add up instead of overwriting each other; `note` is
/// left alone (the API server refuses to change it).
async fn repeat(api: &Api<K8sEvent>, name: &str, now: DateTime<Utc>) -> Result<(), kube::Error> {
    // Three tries: a lost race means another replica counted at that very moment.
    for _ in 0..3 {
        let event = api.get(name).await?;
        let count = event.series.as_ref().map_or(1, |s| s.count) + 1;
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": event.metadata.resource_version},
            "series": {"count": count, "lastObservedTime": micro_time(now)},
        });
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            other => return other.map(drop),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluxgate_core::admission::review;
    use fluxgate_core::policy::Policy;
    use fluxgate_core::window::WindowSet;
    use serde_json::json;

    fn decide_at(
        at: &str,
        mutate: impl FnOnce(&mut serde_json::Value),
    ) -> (AdmissionRequest<Object>, Decision) {
        let mut body: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/admission/flux-dryrun-image-bump-deployment.json"
        ))
        .unwrap();
        mutate(&mut body["request"]);
        let windows = fluxgate_core::window::WindowSet::embedded().unwrap();
        let now = DateTime::parse_from_rfc3339(at).unwrap().to_utc();
        let reviewed = review(
            &serde_json::to_vec(&body).unwrap(),
            &windows,
            &Policy::default(),
            now,
        )
        .unwrap();
        (reviewed.request, reviewed.decision)
    }

    /// On Friday: business-hours closed.
    fn decide(mutate: impl FnOnce(&mut serde_json::Value)) -> (AdmissionRequest<Object>, Decision) {
        decide_at("2026-11-27T12:00:00Z", mutate)
    }

    #[test]
    fn an_override_admission_has_an_event_with_the_reason() {
        // business-hours opened by a 4-hour override on Friday at 12:00 Berlin.
        let text = crate::windows::EMBEDDED_WINDOWS.replacen(
            "      reason: Year-end change freeze\n",
            "      reason: Year-end change freeze\n  overrides:\n    - start: \"2026-11-27T12:00:00+01:00\"\n      end: \"2026-11-27T15:00:00Z\"\n      reason: CHG-4711 release 2.3\n",
            1,
        );
        let windows = WindowSet::from_yaml("windows.yaml", &text).unwrap();
        let body =
            include_str!("../../tests/fixtures/admission/flux-dryrun-image-bump-deployment.json");
        let now = DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .unwrap()
            .to_utc();
        let reviewed = review(body.as_bytes(), &windows, &Policy::default(), now).unwrap();
        assert_eq!(reviewed.decision.reason, Reason::Override);
        let event = event_for(&reviewed.request, &reviewed.decision, now).expect("an Event");
        assert_eq!(event.reason, "ReconciliationWindowOverride");
        assert!(
            event.note.contains("CHG-4711 release 2.3"),
            "the note carries the override's reason"
        );
    }

    #[test]
    fn a_denied_flux_dry_run_makes_an_event_naming_window_opening_and_owner() {
        let (request, decision) = decide(|_| {});
        assert!(request.dry_run);
        assert!(!decision.allowed);
        let notice = event_for(&request, &decision, Utc::now()).unwrap();
        assert_eq!(notice.reason, "ReconciliationWindowClosed");
        assert!(notice.warning);
        assert!(
            notice.note.starts_with(
                "Flux Kustomization flux-system/apps-rw: Deployment nginx/nginx is governed by \
                 reconciliation window \"business-hours\", closed until 2026-11-30T08:00:00+01:00"
            ),
            "{}",
            notice.note
        );
        let reference = &notice.regarding;
        assert_eq!(reference.api_version.as_deref(), Some("apps/v1"));
        assert_eq!(reference.kind.as_deref(), Some("Deployment"));
        assert_eq!(reference.namespace.as_deref(), Some("nginx"));
        assert_eq!(reference.name.as_deref(), Some("nginx"));
        assert_eq!(
            reference.uid.as_deref(),
            Some("6de94019-aabb-4665-bb65-aafc69320ece")
        );
        let owner = notice.related.unwrap();
        assert_eq!(
            owner.api_version.as_deref(),
            Some("kustomize.toolkit.fluxcd.io/v1")
        );
        assert_eq!(owner.kind.as_deref(), Some("Kustomization"));
        assert_eq!(owner.namespace.as_deref(), Some("flux-system"));
        assert_eq!(owner.name.as_deref(), Some("apps-rw"));
        assert_eq!(
            notice.series_until,
            Some(
                DateTime::parse_from_rfc3339("2026-11-30T07:00:00Z")
                    .unwrap()
                    .to_utc()
            )
        );
    }

    #[test]
    fn retries_in_one_closed_period_are_one_series_and_the_next_period_another() {
        let key = |at: &str, dry_run: bool| {
            let (request, decision) = decide_at(at, |r| r["dryRun"] = json!(dry_run));
            event_for(&request, &decision, Utc::now())
                .unwrap()
                .series
                .unwrap()
        };
        // Flux's retries on Friday and on Saturday, dry-run or not: one series.
        let friday = key("2026-11-27T12:00:00Z", true);
        assert_eq!(friday, key("2026-11-28T09:30:00Z", true));
        assert_eq!(friday, key("2026-11-27T12:10:00Z", false));
        // The next week's closed period (from Thursday 17:00): another.
        assert_ne!(friday, key("2026-12-04T12:00:00Z", true));
    }

    #[test]
    fn a_bypass_makes_an_event_of_its_own_even_in_dry_run() {
        let (request, decision) = decide(|r| {
            r["object"]["metadata"]["annotations"]["fluxgate.io/bypass-reason"] = json!("CVE fix");
            r["object"]["metadata"]["annotations"]["fluxgate.io/bypass-until"] =
                json!("2026-11-27T20:00:00Z");
        });
        assert_eq!(decision.reason, Reason::Bypass);
        let notice = event_for(&request, &decision, Utc::now()).unwrap();
        assert_eq!(notice.reason, "EmergencyBypass");
        assert_eq!(notice.action, "Admit");
        assert_eq!(notice.series, None);
    }

    #[test]
    fn admissions_make_no_event() {
        let (request, decision) = decide(|r| {
            r["userInfo"]["username"] = json!("admin");
            r["options"]["fieldManager"] = json!("kubectl");
        });
        assert!(decision.allowed);
        assert!(event_for(&request, &decision, Utc::now()).is_none());
    }

    #[test]
    fn series_names_are_stable_and_valid() {
        let (request, decision) = decide(|_| {});
        let notice = event_for(&request, &decision, Utc::now()).unwrap();
        let now = Utc::now();
        let name = event_name(&notice, now);
        assert_eq!(name, event_name(&notice, now + chrono::Duration::hours(1)));
        assert!(name.starts_with("nginx."), "{name}");
        assert_eq!(name.len(), "nginx.".len() + 16);
        let long = Notice {
            regarding: ObjectReference {
                name: Some("x".repeat(253)),
                ..Default::default()
            },
            ..notice
        };
        assert!(event_name(&long, now).len() <= 253);
        // Whatever the object's name, the Event's is a DNS subdomain.
        for odd in ["system:controller:Foo", "-x-", ":::", "a.b_c"] {
            let notice = Notice {
                regarding: ObjectReference {
                    name: Some(odd.into()),
                    ..Default::default()
                },
                ..long.clone()
            };
            let name = event_name(&notice, now);
            let (object, suffix) = name.split_once('.').unwrap();
            assert!(
                object
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !object.starts_with('-')
                    && !object.ends_with('-')
                    && suffix.len() == 16,
                "{odd} → {name}"
            );
        }
    }

    #[test]
    fn notes_are_cut_at_one_kilobyte_on_a_char_boundary() {
        let long = "é".repeat(1000);
        let cut = truncate(&long, MAX_NOTE_BYTES);
        assert!(cut.len() <= MAX_NOTE_BYTES);
        assert!(cut.ends_with("..."));
    }
}
