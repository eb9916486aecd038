//! Notices to Flux's notification-controller (`serve --notification-url`), so that the `Alert`s a
//! team already has for its Kustomizations and HelmReleases tell its chat that a change waits
//! for a window, and when it lands, with no new resource.
//!
//! Each notice is the event Flux's own controllers post (fluxcd/pkg `runtime/events`): its
//! `involvedObject` is the Flux owner of the object decided on, its metadata keys carry the
//! owner's API group (notification-controller drops any other), and `token` makes each notice
//! unique for the controller's rate limiter.
//!
//! - **Waiting** (`ReconciliationWindowClosed`, `…Frozen`; info): a Flux change denied because
//!   a window is closed; one per owner, closed period and freeze (what the Events dedup on).
//! - **Landing** (`ReconcileRequested`; info): the reconcile asked at the opening.
//! - **Bypass** and **override used** (`EmergencyBypass`, `ReconciliationWindowOverride`; info),
//!   and an override refused as too long (`InvalidReconciliationWindowOverride`; error).
//! - **Blocked** (`UnknownReconciliationWindow`, `InvalidBypass`, …; error).
//!
//! Delivery is off the request path: a bounded queue, a task that posts with retries and
//! backoff, and counters (`fluxgate_notifications_total`) for what was sent, what failed and
//! what was dropped because the queue was full. A dead notification-controller costs the
//! webhook nothing.
//!
//! Replicas send one notice per event. A landing notice goes from the replica whose reconcile
//! request succeeded: that request carries the owner's `resourceVersion`, so one replica wins.
//! Every other notice is claimed the same way before it is sent: its token is added to the
//! owner's `fluxgate.io/notified` annotation by a merge patch that carries the owner's
//! `resourceVersion`. The replica whose patch succeeds sends; one that finds the token already
//! there (another replica, or this one before a restart) does not.

use super::events::{Reporter, event_for, fnv1a, periods};
use super::owners::api_resource;
use crate::metrics::EventCounters;
use chrono::{DateTime, SecondsFormat, Utc};
use fluxgate_core::flux::{FIELD_MANAGER, OwnerKind};
use fluxgate_core::object::Object;
use fluxgate_core::policy::{Decision, Reason};
use hyper::Uri;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::admission::AdmissionRequest;
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;
use tokio::sync::mpsc;

/// The owner annotation that holds the tokens of the latest notices sent about it.
pub const NOTIFIED_ANNOTATION: &str = "fluxgate.io/notified";
/// Tokens kept in the annotation: a few closed periods and bypasses of one owner.
const TOKENS_KEPT: usize = 8;
/// Notices waiting to be sent at most; beyond that they are dropped (and counted).
const QUEUE: usize = 256;
/// Tokens this process remembers having handled, so Flux's retries cost no API call.
const REMEMBERED: usize = 4096;
/// Tries of one post: the first, then after 1, 2, 4 and 8 seconds.
const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The deadline of one post, as Flux's own event recorder has.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// notification-controller refuses longer messages (`+kubebuilder:validation:MaxLength`).
const MAX_MESSAGE_CHARS: usize = 39_000;

/// Flux's event API (`event.toolkit.fluxcd.io/v1beta1` `Event`), as its controllers post it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FluxEvent {
    pub involved_object: ObjectReference,
    /// `info` or `error` (Flux never posts `trace`).
    pub severity: String,
    /// RFC 3339 in seconds, as `metav1.Time` writes it.
    pub timestamp: String,
    pub message: String,
    pub reason: String,
    /// Keys prefixed with the involved object's API group.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    pub reporting_controller: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

/// One notice to send.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Notice {
    pub(crate) event: FluxEvent,
    /// The same in every replica for the same event: what replicas and retries dedup on.
    pub(crate) token: String,
    /// Sent only once claimed on the owner; a landing notice was claimed by its request.
    pub(crate) claim: bool,
    pub(crate) kind: OwnerKind,
}

/// The notice a decision deserves, if any: a denial, bypass or override of an object a Flux
/// Kustomization or HelmRelease applied. Anything else has no Flux object to report on.
pub(crate) fn notice_for(
    request: &AdmissionRequest<Object>,
    decision: &Decision,
    at: DateTime<Utc>,
) -> Option<Notice> {
    let owner = decision.subject.owner.as_ref()?;
    let kind = owner.kind;
    // Flux's recorder refuses an object without a namespace; its owner labels always name one.
    let namespace = owner.namespace.as_deref()?;
    let event = event_for(request, decision, at)?;
    let refused_override = decision.windows.iter().any(|verdict| {
        verdict
            .known
            .as_ref()
            .is_some_and(|known| known.ignored_override().is_some())
    });
    let (reason, severity) = match decision.reason {
        _ if refused_override && !decision.allowed => {
            ("InvalidReconciliationWindowOverride", "error")
        }
        Reason::WindowClosed | Reason::Frozen | Reason::Bypass | Reason::Override => {
            (event.reason, "info")
        }
        _ => (event.reason, "error"),
    };
    let (periods, opens) = periods(decision);
    let owner_key = format!("{kind}|{namespace}|{}", owner.name);
    // One per owner and closed period; a bypass once per object and bypass (Flux's dry-run and
    // apply of it are one story).
    let key = match (&decision.reason, &decision.bypass) {
        (Reason::Bypass, Some(bypass)) => format!(
            "{reason}|{owner_key}|{}|{}|{}",
            decision.subject.display,
            bypass.until.as_deref().unwrap_or_default(),
            bypass.reason.as_deref().unwrap_or_default(),
        ),
        _ => format!("{reason}|{owner_key}{periods}"),
    };
    let token = format!("{:016x}", fnv1a(key.as_bytes()));
    let mut metadata = vec![
        ("token", token.clone()),
        ("object", decision.subject.display.clone()),
    ];
    let windows: Vec<&str> = decision.windows.iter().map(|w| w.name.as_str()).collect();
    if !windows.is_empty() {
        metadata.push(("windows", windows.join(",")));
    }
    // What froze the windows closed now: a calendar's event, a stop-the-line freeze (its
    // incident and object), a window's freeze; for an Alert's chat message at a glance.
    let mut frozen_by: Vec<String> = Vec::new();
    for verdict in &decision.windows {
        let Some(freeze) = verdict
            .known
            .as_ref()
            .filter(|k| !k.state.open)
            .and_then(|k| k.state.freeze.as_ref())
        else {
            continue;
        };
        let name = freeze.name();
        if !frozen_by.contains(&name) {
            frozen_by.push(name);
        }
    }
    if !decision.allowed && !frozen_by.is_empty() {
        metadata.push(("frozenBy", frozen_by.join("; ")));
    }
    if !decision.allowed
        && let Some(opens) = opens
    {
        metadata.push(("opens", opens.to_rfc3339_opts(SecondsFormat::Secs, true)));
    }
    if let Some(bypass) = &decision.bypass {
        if let Some(until) = &bypass.until {
            metadata.push(("bypassUntil", until.clone()));
        }
        if let Some(why) = &bypass.reason {
            metadata.push(("bypassReason", why.clone()));
        }
    }
    Some(Notice {
        event: flux_event(
            owner.reference(),
            kind,
            severity,
            reason,
            &decision.message,
            metadata,
            at,
        ),
        token,
        claim: true,
        kind,
    })
}

/// The landing notice: `owner` was asked to reconcile (`requested_at`) because its windows
/// opened, which left it as `asked`. Sent by the replica whose request succeeded, so claimed
/// already.
pub(crate) fn landing(
    owner: &fluxgate_core::flux::Owner,
    asked: &DynamicObject,
    requested_at: &str,
    message: &str,
    at: DateTime<Utc>,
) -> Notice {
    let kind = owner.kind;
    let key = format!(
        "ReconcileRequested|{kind}|{}|{}|{requested_at}",
        owner.namespace, owner.name
    );
    let token = format!("{:016x}", fnv1a(key.as_bytes()));
    let windows: Vec<&str> = owner.denied_by.iter().map(String::as_str).collect();
    let metadata = vec![
        ("token", token.clone()),
        ("windows", windows.join(",")),
        ("requestedAt", requested_at.to_owned()),
    ];
    let involved = ObjectReference {
        api_version: Some(kind.api_version()),
        kind: Some(kind.kind().to_owned()),
        namespace: Some(owner.namespace.clone()),
        name: Some(owner.name.clone()),
        uid: asked.metadata.uid.clone(),
        resource_version: asked.metadata.resource_version.clone(),
        field_path: None,
    };
    Notice {
        event: flux_event(
            involved,
            kind,
            "info",
            "ReconcileRequested",
            message,
            metadata,
            at,
        ),
        token,
        claim: false,
        kind,
    }
}

fn flux_event(
    involved_object: ObjectReference,
    kind: OwnerKind,
    severity: &str,
    reason: &str,
    message: &str,
    metadata: Vec<(&str, String)>,
    at: DateTime<Utc>,
) -> FluxEvent {
    let group = kind.group();
    FluxEvent {
        involved_object,
        severity: severity.to_owned(),
        timestamp: at.to_rfc3339_opts(SecondsFormat::Secs, true),
        message: message.chars().take(MAX_MESSAGE_CHARS).collect(),
        reason: reason.to_owned(),
        metadata: metadata
            .into_iter()
            .map(|(key, value)| (format!("{group}/{key}"), value))
            .collect(),
        // Set by the sender.
        reporting_controller: String::new(),
        reporting_instance: String::new(),
    }
}

/// `http://host[:port]/path`: notification-controller's event receiver serves plain HTTP
/// inside the cluster (`http://notification-controller.flux-system.svc.cluster.local./`).
pub fn parse_url(text: &str) -> Result<Uri, String> {
    let uri: Uri = text
        .parse()
        .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some() => Ok(uri),
        Some("http") => Err(format!("{text:?} names no host")),
        _ => Err(format!(
            "{text:?}: only http:// is supported (notification-controller's event receiver \
             serves plain HTTP, e.g. http://notification-controller.flux-system.svc.cluster.local./)"
        )),
    }
}

/// Sends notices in the background.
#[derive(Clone)]
pub struct Notifications {
    queue: mpsc::Sender<Notice>,
    dropped: Counter,
}

impl Notifications {
    /// Starts the sending task. `published` counts notices notification-controller took,
    /// `failed` those it refused or that could not be sent or claimed, `dropped` those the full
    /// queue turned away.
    pub fn spawn(client: Client, url: Uri, reporter: Reporter, counters: EventCounters) -> Self {
        let (queue, pending) = mpsc::channel::<Notice>(QUEUE);
        let dropped = counters.dropped.clone();
        tokio::spawn(run(client, url, reporter, counters, pending));
        Notifications { queue, dropped }
    }

    /// Queues the notice of a decision made at `at`, if it deserves one; never waits.
    pub(crate) fn notify(
        &self,
        request: &AdmissionRequest<Object>,
        decision: &Decision,
        at: DateTime<Utc>,
    ) {
        if let Some(notice) = notice_for(request, decision, at) {
            self.send(notice);
        }
    }

    /// Queues a notice; never waits.
    pub(crate) fn send(&self, notice: Notice) {
        if self.queue.try_send(notice).is_err() {
            self.dropped.inc();
            tracing::warn!("notification queue full; dropping the notice");
        }
    }
}

/// Tokens handled lately, oldest first out.
#[derive(Default)]
struct Remembered {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Remembered {
    fn contains(&self, token: &str) -> bool {
        self.set.contains(token)
    }

    fn insert(&mut self, token: &str) {
        if self.set.insert(token.to_owned()) {
            self.order.push_back(token.to_owned());
        }
        while self.order.len() > REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
    }
}

async fn run(
    client: Client,
    url: Uri,
    reporter: Reporter,
    counters: EventCounters,
    mut pending: mpsc::Receiver<Notice>,
) {
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<axum::body::Body>();
    let mut remembered = Remembered::default();
    while let Some(mut notice) = pending.recv().await {
        if remembered.contains(&notice.token) {
            continue;
        }
        let involved = notice.event.involved_object.clone();
        let owner = format!(
            "{} {}/{}",
            involved.kind.as_deref().unwrap_or_default(),
            involved.namespace.as_deref().unwrap_or_default(),
            involved.name.as_deref().unwrap_or_default()
        );
        if notice.claim {
            match claim(&client, &notice).await {
                Ok(Some(claimed)) => {
                    notice.event.involved_object.uid = claimed.metadata.uid;
                    notice.event.involved_object.resource_version =
                        claimed.metadata.resource_version;
                }
                Ok(None) => {
                    tracing::debug!(%owner, reason = notice.event.reason, "notice already sent");
                    remembered.insert(&notice.token);
                    continue;
                }
                Err(error) => {
                    // Not remembered: Flux's next retry of the change tries again.
                    counters.failed.inc();
                    tracing::warn!(%error, %owner, reason = notice.event.reason, "cannot claim the notice on the Flux owner; not sending it");
                    continue;
                }
            }
        }
        remembered.insert(&notice.token);
        notice.event.reporting_controller = reporter.controller.clone();
        notice.event.reporting_instance = reporter.instance.clone();
        match deliver(&http, &url, &notice.event).await {
            Ok(()) => {
                counters.published.inc();
                tracing::debug!(%owner, reason = notice.event.reason, "notice sent");
            }
            Err(error) => {
                counters.failed.inc();
                tracing::warn!(%error, %owner, reason = notice.event.reason, "cannot send the notice to notification-controller");
            }
        }
    }
}

/// Adds the notice's token to its owner's [`NOTIFIED_ANNOTATION`], against the version read:
/// `Some(owner)` when this process did, `None` when the token is there already.
async fn claim(client: &Client, notice: &Notice) -> Result<Option<DynamicObject>, kube::Error> {
    let involved = &notice.event.involved_object;
    let namespace = involved.namespace.as_deref().unwrap_or_default();
    let name = involved.name.as_deref().unwrap_or_default();
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &api_resource(notice.kind));
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..Default::default()
    };
    let mut last = None;
    // Three tries: a lost race means another replica claimed, or Flux wrote, at that moment.
    for _ in 0..3 {
        let owner = api.get(name).await?;
        let notified = owner
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(NOTIFIED_ANNOTATION));
        let Some(tokens) = with_token(notified.map(String::as_str), &notice.token) else {
            return Ok(None);
        };
        let patch = serde_json::json!({"metadata": {
            "resourceVersion": owner.metadata.resource_version,
            "annotations": {NOTIFIED_ANNOTATION: tokens},
        }});
        match api.patch(name, &params, &Patch::Merge(&patch)).await {
            Ok(owner) => return Ok(Some(owner)),
            Err(kube::Error::Api(status)) if status.code == 409 => last = Some(status),
            Err(error) => return Err(error),
        }
    }
    Err(kube::Error::Api(last.unwrap_or_default()))
}

/// The annotation's value with `token` added (the oldest beyond [`TOKENS_KEPT`] dropped), or
/// `None` when it holds the token already.
fn with_token(notified: Option<&str>, token: &str) -> Option<String> {
    let tokens: Vec<&str> = notified
        .unwrap_or_default()
        .split(',')
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.contains(&token) {
        return None;
    }
    let mut kept = tokens[tokens.len().saturating_sub(TOKENS_KEPT - 1)..].to_vec();
    kept.push(token);
    Some(kept.join(","))
}

/// Why a notice was not delivered.
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("notification-controller answered {0}")]
    Refused(hyper::StatusCode),
    #[error("{0}")]
    Failed(String),
}

/// Posts the event, retrying connection errors, time-outs and 5xx answers with backoff, as
/// Flux's recorder does. 429 is notification-controller's rate limit on an event it already
/// has: delivered, as Flux takes it.
async fn deliver(
    http: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        axum::body::Body,
    >,
    url: &Uri,
    event: &FluxEvent,
) -> Result<(), DeliveryError> {
    let body = serde_json::to_vec(event).map_err(|e| DeliveryError::Failed(e.to_string()))?;
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let request = hyper::Request::post(url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body.clone()))
            .map_err(|e| DeliveryError::Failed(e.to_string()))?;
        let outcome = match tokio::time::timeout(POST_TIMEOUT, http.request(request)).await {
            Ok(Ok(response)) => {
                let status = response.status();
                match status.as_u16() {
                    200..=299 | 429 => return Ok(()),
                    500..=599 => DeliveryError::Refused(status),
                    _ => return Err(DeliveryError::Refused(status)),
                }
            }
            Ok(Err(error)) => DeliveryError::Failed(format!("cannot post to {url}: {error}")),
            Err(_) => DeliveryError::Failed(format!("no answer from {url} in {POST_TIMEOUT:?}")),
        };
        if attempt >= ATTEMPTS {
            return Err(outcome);
        }
        tracing::debug!(error = %outcome, attempt, "posting the notice failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff *= 2;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluxgate_core::admission::review;
    use fluxgate_core::policy::Policy;
    use fluxgate_core::window::WindowSet;
    use serde_json::json;

    const BUMP: &str =
        include_str!("../../tests/fixtures/admission/flux-dryrun-image-bump-deployment.json");

    fn utc(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().to_utc()
    }

    /// The seed's image bump, changed by `mutate`, decided at `at` under `windows`.
    fn notice_with(
        windows: &WindowSet,
        at: &str,
        mutate: impl FnOnce(&mut serde_json::Value),
    ) -> Option<Notice> {
        let mut body: serde_json::Value = serde_json::from_str(BUMP).unwrap();
        mutate(&mut body["request"]);
        let now = utc(at);
        let body = serde_json::to_vec(&body).unwrap();
        let reviewed = review(&body, windows, &Policy::default(), now).unwrap();
        notice_for(&reviewed.request, &reviewed.decision, now)
    }

    fn notice_at(at: &str, mutate: impl FnOnce(&mut serde_json::Value)) -> Option<Notice> {
        notice_with(&WindowSet::embedded().unwrap(), at, mutate)
    }

    const FRIDAY: &str = "2026-11-27T12:00:00Z";

    #[test]
    fn a_denied_flux_dry_run_is_a_waiting_notice_on_its_kustomization() {
        let mut notice = notice_at(FRIDAY, |_| {}).expect("a notice");
        assert!(notice.claim, "claimed on the owner before it is sent");
        notice.event.reporting_controller = "fluxgate".into();
        notice.event.reporting_instance = "fluxgate-7d9c5b6f4-x2x9q".into();
        // The recorded example: what notification-controller receives (docs/notifications.md).
        let recorded: FluxEvent = serde_json::from_str(include_str!(
            "../../tests/fixtures/notification/waiting-apps-rw.json"
        ))
        .unwrap();
        let mut expected = recorded.clone();
        // Filled in from the owner when the notice is claimed.
        expected.involved_object.uid = None;
        expected.involved_object.resource_version = None;
        assert_eq!(notice.event, expected);
        assert!(
            recorded.involved_object.uid.is_some(),
            "the recorded event names the owner's uid"
        );
    }

    #[test]
    fn the_reconcile_at_the_opening_is_a_landing_notice_on_the_owner_asked() {
        let mut asked: DynamicObject = serde_json::from_str(include_str!(
            "../../tests/fixtures/flux/kustomization-apps-rw-denied.json"
        ))
        .unwrap();
        let owner = fluxgate_core::flux::Owner::from_object(OwnerKind::Kustomization, &asked);
        asked.metadata.resource_version = Some("48230".into());
        let recorded: FluxEvent = serde_json::from_str(include_str!(
            "../../tests/fixtures/notification/landing-apps-rw.json"
        ))
        .unwrap();
        // The message is the reconcile Event's note (`sync`), checked in tests/notifications.rs.
        let mut notice = landing(
            &owner,
            &asked,
            "2026-11-30T07:00:00Z",
            &recorded.message,
            utc("2026-11-30T07:00:01Z"),
        );
        assert!(!notice.claim, "claimed by the reconcile request itself");
        notice.event.reporting_controller = "fluxgate".into();
        notice.event.reporting_instance = "fluxgate-7d9c5b6f4-x2x9q".into();
        assert_eq!(notice.event, recorded);
    }

    #[test]
    fn flux_retries_in_one_closed_period_are_one_notice_and_the_next_period_another() {
        let token = |at: &str, dry_run: bool| {
            notice_at(at, |r| r["dryRun"] = json!(dry_run))
                .unwrap()
                .token
        };
        let friday = token(FRIDAY, true);
        assert_eq!(friday, token("2026-11-28T09:30:00Z", true));
        assert_eq!(friday, token("2026-11-27T12:10:00Z", false));
        assert_ne!(friday, token("2026-12-04T12:00:00Z", true));
        // Another object of the same owner, denied in the same period: the same notice.
        let other = notice_at(FRIDAY, |r| {
            r["name"] = json!("web");
            r["object"]["metadata"]["name"] = json!("web");
        })
        .unwrap();
        assert_eq!(other.token, friday);
    }

    #[test]
    fn bypasses_are_info_once_per_bypass_and_invalid_ones_are_errors() {
        let bypass = |until: &'static str| {
            move |r: &mut serde_json::Value| {
                let annotations = &mut r["object"]["metadata"]["annotations"];
                annotations["fluxgate.io/bypass-reason"] = json!("CVE-2026-1234");
                annotations["fluxgate.io/bypass-until"] = json!(until);
            }
        };
        let used = notice_at(FRIDAY, bypass("2026-11-27T20:00:00Z")).unwrap();
        assert_eq!(
            (used.event.reason.as_str(), used.event.severity.as_str()),
            ("EmergencyBypass", "info")
        );
        assert_eq!(
            used.event.metadata["kustomize.toolkit.fluxcd.io/bypassUntil"],
            "2026-11-27T20:00:00Z"
        );
        assert_eq!(
            used.event.metadata["kustomize.toolkit.fluxcd.io/bypassReason"],
            "CVE-2026-1234"
        );
        // Flux's dry-run and its apply of the same bypass: one notice.
        let applied = notice_at("2026-11-27T12:00:05Z", |r| {
            bypass("2026-11-27T20:00:00Z")(r);
            r["dryRun"] = json!(false);
        })
        .unwrap();
        assert_eq!(applied.token, used.token);
        // Expired: blocked.
        let invalid = notice_at(FRIDAY, bypass("2026-11-27T11:00:00Z")).unwrap();
        assert_eq!(
            (
                invalid.event.reason.as_str(),
                invalid.event.severity.as_str()
            ),
            ("InvalidBypass", "error")
        );
    }

    #[test]
    fn an_unknown_window_blocks_with_an_error() {
        let notice = notice_at(FRIDAY, |r| {
            r["object"]["metadata"]["labels"]["fluxgate.io/window"] = json!("busines-hours");
        })
        .unwrap();
        assert_eq!(
            (notice.event.reason.as_str(), notice.event.severity.as_str()),
            ("UnknownReconciliationWindow", "error")
        );
        assert!(notice.event.message.contains("busines-hours"));
    }

    #[test]
    fn an_override_is_info_and_one_longer_than_allowed_is_an_error() {
        let with_override = |end: &str| {
            let text = crate::windows::EMBEDDED_WINDOWS.replacen(
                "      reason: Year-end change freeze\n",
                &format!(
                    "      reason: Year-end change freeze\n  overrides:\n    - start: \"2026-11-27T12:00:00+01:00\"\n      end: \"{end}\"\n      reason: CHG-4711 release 2.3\n"
                ),
                1,
            );
            WindowSet::from_yaml("windows.yaml", &text).unwrap()
        };
        let used = notice_with(&with_override("2026-11-27T15:00:00Z"), FRIDAY, |_| {}).unwrap();
        assert_eq!(
            (used.event.reason.as_str(), used.event.severity.as_str()),
            ("ReconciliationWindowOverride", "info")
        );
        assert!(
            used.event.message.contains("CHG-4711"),
            "{}",
            used.event.message
        );
        // Three days: longer than --max-override (24 h), so ignored and the change denied.
        let refused = notice_with(&with_override("2026-11-30T11:00:00Z"), FRIDAY, |_| {}).unwrap();
        assert_eq!(
            (
                refused.event.reason.as_str(),
                refused.event.severity.as_str()
            ),
            ("InvalidReconciliationWindowOverride", "error")
        );
    }

    #[test]
    fn changes_without_a_flux_owner_or_admitted_plainly_make_no_notice() {
        // A person's change: admitted, no notice.
        assert!(
            notice_at(FRIDAY, |r| {
                r["userInfo"]["username"] = json!("admin");
                r["options"]["fieldManager"] = json!("kubectl");
            })
            .is_none()
        );
        // Monday: the window is open.
        assert!(notice_at("2026-11-30T09:00:00Z", |_| {}).is_none());
        // Denied, but no Flux owner to report on.
        assert!(
            notice_at(FRIDAY, |r| {
                for object in ["object", "oldObject"] {
                    let labels = r[object]["metadata"]["labels"].as_object_mut().unwrap();
                    labels.retain(|k, _| !k.starts_with("kustomize.toolkit.fluxcd.io/"));
                }
            })
            .is_none()
        );
    }

    #[test]
    fn the_owner_keeps_the_latest_tokens_and_a_token_there_is_not_sent_again() {
        assert_eq!(with_token(None, "a").as_deref(), Some("a"));
        assert_eq!(with_token(Some("a"), "b").as_deref(), Some("a,b"));
        assert_eq!(with_token(Some("a,b"), "a"), None);
        let full = "1,2,3,4,5,6,7,8";
        assert_eq!(
            with_token(Some(full), "9").as_deref(),
            Some("2,3,4,5,6,7,8,9")
        );
        assert_eq!(with_token(Some(full), "8"), None);
    }

    #[test]
    fn a_helmrelease_change_is_reported_on_the_helmrelease_in_its_group() {
        let notice = notice_at(FRIDAY, |r| {
            for object in ["object", "oldObject"] {
                let labels = r[object]["metadata"]["labels"].as_object_mut().unwrap();
                labels.retain(|k, _| !k.starts_with("kustomize.toolkit.fluxcd.io/"));
                labels.insert("helm.toolkit.fluxcd.io/name".into(), json!("nginx"));
                labels.insert("helm.toolkit.fluxcd.io/namespace".into(), json!("nginx"));
            }
            r["userInfo"]["username"] = json!("system:serviceaccount:flux-system:helm-controller");
        })
        .unwrap();
        let involved = &notice.event.involved_object;
        assert_eq!(
            (
                involved.api_version.as_deref(),
                involved.kind.as_deref(),
                involved.namespace.as_deref(),
                involved.name.as_deref()
            ),
            (
                Some("helm.toolkit.fluxcd.io/v2"),
                Some("HelmRelease"),
                Some("nginx"),
                Some("nginx")
            )
        );
        assert!(
            notice
                .event
                .metadata
                .keys()
                .all(|k| k.starts_with("helm.toolkit.fluxcd.io/")),
            "{:?}",
            notice.event.metadata
        );
    }

    #[test]
    fn only_plain_http_urls_are_taken() {
        let url = "http://notification-controller.flux-system.svc.cluster.local./";
        assert_eq!(
            parse_url(url).unwrap().host(),
            Some("notification-controller.flux-system.svc.cluster.local.")
        );
        let https = parse_url("https://nc.example/").unwrap_err();
        assert!(https.contains("only http://"), "{https}");
        assert!(parse_url("not a url").is_err());
    }
}
