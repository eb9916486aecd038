//! Every metric fluxgate exports: registered here once, counted through the methods of
//! [`Metrics`] and the counter sets it hands out ([`EventCounters`], [`SyncCounters`],
//! [`ReloadCounters`]), and served as text on the plain-HTTP metrics port.
//!
//! The series a window has are its own five, read at scrape time from the set in force by a
//! [`Collector`]: open, frozen, next transition, bypasses and denials. Nothing else is labelled
//! by window, so 5,000 windows make 25,000 series, not the 180,000 a `window` label on the
//! decision counter made; decisions by window are in the audit log (`fluxgate audit`, BY WINDOW).
//! Each scrape builds its window series from the set it was handed, so two scrapes at once share
//! no state and a reload between them shows each the set it read.
//!
//! Every counter is exported from the start, at 0, for each label combination that can occur
//! (a window's from the first scrape that sees it loaded), so alerts and `rate()` see a series
//! before the first event. Label values are bounded whatever clients send: a `window` label is
//! a loaded window's name, never one read from an object, and Flux owners beyond `MAX_OWNERS`
//! are counted together as `OTHER_OWNERS`.

use crate::windows::store::{ReloadCounters, ResultCounters};
use chrono::{DateTime, Utc};
use fluxgate_core::flux::OwnerKind;
use fluxgate_core::naming::operation_name;
use fluxgate_core::object::Object;
use fluxgate_core::policy::{Decision, Reason};
use fluxgate_core::window::{WindowSet, WindowState};
use kube::core::admission::AdmissionRequest;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Metric, Registry};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Distinct Flux owners counted by name in `fluxgate_flux_denials_total`. Owners are
/// Kustomizations and HelmReleases, named by the labels Flux sets; a cluster has tens to
/// hundreds. Past this, denials count under [`OTHER_OWNERS`] so a flood of names cannot grow
/// the exposition without bound.
pub(crate) const MAX_OWNERS: usize = 500;
/// `owner_kind` of denials past [`MAX_OWNERS`] distinct owners.
pub(crate) const OTHER_OWNERS: &str = "_other";
/// `owner_kind` of denials of objects no Flux owner labels name.
pub(crate) const NO_OWNER: &str = "_none";

const PREFIX: &str = "fluxgate";
const OPERATIONS: [&str; 3] = ["CREATE", "UPDATE", "DELETE"];
/// Decisions take microseconds: buckets from 25µs up to 1s.
const DURATION_BUCKETS: [f64; 12] = [
    0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0,
];
/// The reasons of denials a window's state caused: counted in `fluxgate_window_denials_total`.
const WINDOW_DENIALS: [Reason; 3] = [Reason::WindowClosed, Reason::Frozen, Reason::InvalidBypass];

/// A metric's name (after `fluxgate_`, before `_total`) and help.
type Describe = (&'static str, &'static str);

const REQUESTS: Describe = (
    "admission_requests",
    "AdmissionReviews decided, by decision, reason, operation and dry-run",
);
const REJECTED: Describe = (
    "http_rejected_requests",
    "Requests to /validate refused before a decision (malformed, oversized, wrong type)",
);
const DURATION: Describe = (
    "admission_duration_seconds",
    "Server time spent on an AdmissionReview (parse, decide, respond, audit)",
);
const CONFIG_VALID: Describe = (
    "config_valid",
    "1 when the last load of the windows succeeded; 0 when it was rejected and the last good \
     set is still in force",
);
const OWNER_DENIALS: Describe = (
    "flux_denials",
    "Flux changes denied, by the Kustomization or HelmRelease that applied them",
);
const WINDOW_RELOADS: Describe = (
    "window_reloads",
    "Reloads of the windows files, by result (success, failure)",
);
const TLS_RELOADS: Describe = (
    "tls_reloads",
    "Reloads of the TLS certificate, by result (success, failure)",
);
const AUDIT_ERRORS: Describe = (
    "audit_write_errors",
    "Audit records that could not be written",
);
const EVENTS: Describe = (
    "events",
    "Kubernetes Events for bypasses and denials, by result (published, failed, dropped)",
);
const NOTIFICATIONS: Describe = (
    "notifications",
    "Notices to Flux's notification-controller, by result (published, failed, dropped)",
);
const TLS_EXPIRY: Describe = (
    "tls_certificate_expiry_timestamp_seconds",
    "When the serving certificate in use expires (notAfter), as a Unix time",
);
const RECONCILE_REQUESTS: Describe = (
    "reconcile_requests",
    "Reconciles asked of Flux owners when their window opened, by kind and result",
);
const STATUS_WRITES: Describe = (
    "window_status_writes",
    "Writes of ReconciliationWindow status, by result (success, failure)",
);
// The window collector's.
const WINDOW_OPEN: Describe = ("window_open", "1 when the window is open, 0 when closed");
const WINDOW_FROZEN: Describe = (
    "window_frozen",
    "1 while a freeze of the window is in force (the window is then closed), else 0",
);
const WINDOW_NEXT: Describe = (
    "window_next_transition_timestamp_seconds",
    "When the window next opens or closes (Unix time); absent when it never changes again",
);
const BYPASSES: Describe = (
    "bypasses",
    "Changes admitted by an emergency bypass, by window",
);
const WINDOW_DENIALS_TOTAL: Describe = (
    "window_denials",
    "Changes denied because the window was closed or frozen (window-closed, frozen, \
     invalid-bypass), by window",
);
const WINDOWS_LOADED: Describe = ("windows_loaded", "ReconciliationWindows in force");

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    decision: &'static str,
    reason: &'static str,
    operation: &'static str,
    dry_run: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindResultLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OwnerLabels {
    owner_kind: &'static str,
    owner_namespace: String,
    owner_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    code: u16,
}

/// The counters of one window, by its name: read by the window collector for the windows in
/// force only. Names are those of windows once loaded (never read from an object), so the map
/// is bounded by the windows a cluster has had.
#[derive(Clone, Debug, Default)]
struct WindowCounts {
    bypasses: Counter,
    denials: Counter,
}

/// Every metric fluxgate exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    rejected: Family<StatusLabels, Counter>,
    duration: Histogram,
    config_valid: Gauge,
    owner_denials: Family<OwnerLabels, Counter>,
    owners: AtomicUsize,
    window_counts: Family<String, WindowCounts>,
    window_reloads: Family<ResultLabels, Counter>,
    tls_reloads: Family<ResultLabels, Counter>,
    audit_errors: Counter,
    events: Family<ResultLabels, Counter>,
    notifications: Family<ResultLabels, Counter>,
    tls_expiry: Gauge,
    reconcile_requests: Family<KindResultLabels, Counter>,
    status_writes: Family<ResultLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let r = &mut registry;
        let metrics = Metrics {
            requests: registered(r, REQUESTS, Family::default()),
            rejected: registered(r, REJECTED, Family::default()),
            duration: registered(r, DURATION, Histogram::new(DURATION_BUCKETS)),
            // Valid until a load says otherwise: the first set was validated before serving.
            config_valid: registered(r, CONFIG_VALID, Gauge::default()),
            owner_denials: registered(r, OWNER_DENIALS, Family::default()),
            owners: AtomicUsize::new(0),
            window_counts: Family::default(),
            window_reloads: registered(r, WINDOW_RELOADS, Family::default()),
            tls_reloads: registered(r, TLS_RELOADS, Family::default()),
            audit_errors: registered(r, AUDIT_ERRORS, Counter::default()),
            events: registered(r, EVENTS, Family::default()),
            notifications: registered(r, NOTIFICATIONS, Family::default()),
            tls_expiry: registered(r, TLS_EXPIRY, Gauge::default()),
            reconcile_requests: registered(r, RECONCILE_REQUESTS, Family::default()),
            status_writes: registered(r, STATUS_WRITES, Family::default()),
            registry,
        };
        metrics.config_valid.set(1);
        metrics.create_fixed_series();
        metrics
    }
}

/// Registers `metric` as `name` with `help`, and hands it back for counting.
fn registered<M: Metric + Clone>(registry: &mut Registry, (name, help): Describe, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    pub fn record_decision(
        &self,
        request: &AdmissionRequest<Object>,
        decision: &Decision,
        seconds: f64,
        count_bypass: bool,
    ) {
        self.requests
            .get_or_create(&request_labels(
                decision.allowed,
                decision.reason,
                operation_name(&request.operation),
                request.dry_run,
            ))
            .inc();
        self.duration.observe(seconds);
        let bypassed = count_bypass && decision.reason == Reason::Bypass;
        let denied = !decision.allowed && WINDOW_DENIALS.contains(&decision.reason);
        for window in &decision.windows {
            // Only loaded windows: a name read from an object never becomes a key.
            let Some(known) = &window.known else { continue };
            if bypassed {
                self.window_counts
                    .get_or_create(&window.name)
                    .bypasses
                    .inc();
            } else if denied && !known.state.open {
                self.window_counts.get_or_create(&window.name).denials.inc();
            }
        }
        if !decision.allowed && decision.reason != Reason::InvalidWindow {
            self.record_owner_denial(decision);
        }
    }

    /// Counts a denied Flux change under its owner, or under [`OTHER_OWNERS`] past the cap.
    fn record_owner_denial(&self, decision: &Decision) {
        let labels = match &decision.subject.owner {
            Some(owner) => OwnerLabels {
                owner_kind: owner.kind.kind(),
                owner_namespace: owner.namespace.clone().unwrap_or_default(),
                owner_name: owner.name.clone(),
            },
            None => owner_labels(NO_OWNER),
        };
        if let Some(counter) = self.owner_denials.get(&labels) {
            counter.inc();
            return;
        }
        // A new owner. Racing requests may both count it: the cap is approximate, not exceeded
        // by more than the number of concurrent requests.
        let labels = if self.owners.fetch_add(1, Ordering::Relaxed) < MAX_OWNERS {
            labels
        } else {
            owner_labels(OTHER_OWNERS)
        };
        self.owner_denials.get_or_create(&labels).inc();
    }

    pub(crate) fn record_rejected(&self, code: u16) {
        self.rejected.get_or_create(&StatusLabels { code }).inc();
    }

    /// The counters a window store reports its loads to.
    pub(crate) fn window_reloads(&self) -> ReloadCounters {
        ReloadCounters {
            reloads: result_counters(&self.window_reloads),
            valid: self.config_valid.clone(),
        }
    }

    pub(crate) fn record_tls_reload(&self, ok: bool) {
        self.tls_reloads.get_or_create(&result(ok)).inc();
    }

    /// The counters an Event publisher reports to.
    pub fn event_counters(&self) -> EventCounters {
        let counter = |result| self.events.get_or_create_owned(&ResultLabels { result });
        EventCounters {
            published: counter("published"),
            failed: counter("failed"),
            dropped: counter("dropped"),
        }
    }

    /// The counters the notification sender reports to (`serve --notification-url`).
    pub fn notification_counters(&self) -> EventCounters {
        let counter = |result| {
            self.notifications
                .get_or_create_owned(&ResultLabels { result })
        };
        EventCounters {
            published: counter("published"),
            failed: counter("failed"),
            dropped: counter("dropped"),
        }
    }

    /// The counters the cluster sync reports its writes to.
    pub fn sync_counters(&self) -> SyncCounters {
        let requests = |kind: OwnerKind| {
            let counter = |ok| {
                let labels = KindResultLabels {
                    kind: kind.kind(),
                    result: result(ok).result,
                };
                self.reconcile_requests.get_or_create_owned(&labels)
            };
            ResultCounters {
                success: counter(true),
                failure: counter(false),
            }
        };
        SyncCounters {
            status_writes: result_counters(&self.status_writes),
            reconcile_requests: OwnerKind::ALL
                .into_iter()
                .map(|kind| (kind, requests(kind)))
                .collect(),
        }
    }

    /// The serving certificate in use expires at `unix_seconds`.
    pub(crate) fn set_tls_expiry(&self, unix_seconds: i64) {
        self.tls_expiry.set(unix_seconds);
    }

    pub(crate) fn record_audit_error(&self) {
        self.audit_errors.inc();
    }

    /// The text exposition, with the series of `windows` evaluated at `now`. Reads each
    /// window's cached state, which past a transition is computed anew (for some windows,
    /// thousands of cron steps): call it on a blocking thread.
    pub fn encode(&self, windows: &Arc<WindowSet>, now: DateTime<Utc>) -> String {
        // A registry of this scrape's own: the collector holds the set this scrape was handed.
        let mut scrape = Registry::with_prefix(PREFIX);
        scrape.register_collector(Box::new(WindowSeries {
            windows: windows.clone(),
            now,
            counts: self.window_counts.clone(),
        }));
        let mut text = String::new();
        let encoded = prometheus_client::encoding::text::encode_registry(&mut text, &self.registry)
            .and_then(|()| prometheus_client::encoding::text::encode(&mut text, &scrape));
        if let Err(error) = encoded {
            tracing::error!(%error, "cannot encode metrics");
        }
        text
    }

    /// The series that exist from the start: at 0 until their first event.
    fn create_fixed_series(&self) {
        for reason in Reason::ALL {
            for operation in OPERATIONS {
                // Only an UPDATE can change nothing.
                if reason == Reason::NoOp && operation != "UPDATE" {
                    continue;
                }
                for dry_run in [false, true] {
                    let labels = request_labels(reason.allows(), reason, operation, dry_run);
                    drop(self.requests.get_or_create(&labels));
                }
            }
        }
        for ok in [true, false] {
            drop(self.window_reloads.get_or_create(&result(ok)));
            drop(self.tls_reloads.get_or_create(&result(ok)));
            drop(self.status_writes.get_or_create(&result(ok)));
            for kind in OwnerKind::ALL {
                let labels = KindResultLabels {
                    kind: kind.kind(),
                    result: result(ok).result,
                };
                drop(self.reconcile_requests.get_or_create(&labels));
            }
        }
        for result in ["published", "failed", "dropped"] {
            drop(self.events.get_or_create(&ResultLabels { result }));
            drop(self.notifications.get_or_create(&ResultLabels { result }));
        }
        // The codes `validate` answers before a decision (see `server::reject`).
        for code in [400, 401, 413, 415] {
            drop(self.rejected.get_or_create(&StatusLabels { code }));
        }
        drop(self.owner_denials.get_or_create(&owner_labels(NO_OWNER)));
    }
}

/// The series of each window in a set, at one instant, read at scrape time: the state from the
/// window's cache, the counts from [`Metrics`]. A window that is gone has none.
#[derive(Debug)]
struct WindowSeries {
    windows: Arc<WindowSet>,
    now: DateTime<Utc>,
    counts: Family<String, WindowCounts>,
}

/// One window's values at a scrape.
struct Row<'a> {
    name: &'a str,
    state: Arc<WindowState>,
    bypasses: u64,
    denials: u64,
}

impl Collector for WindowSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows: Vec<Row> = self
            .windows
            .iter()
            .map(|window| {
                let counts = self.counts.get(&window.name().to_owned());
                let (bypasses, denials) =
                    counts.map_or((0, 0), |c| (c.bypasses.get(), c.denials.get()));
                Row {
                    name: window.name(),
                    state: window.state_at(self.now),
                    bypasses,
                    denials,
                }
            })
            .collect();
        let gauge = |value: i64| Some(ConstGauge::new(value));
        let e = &mut encoder;
        by_window(e, WINDOW_OPEN, &rows, |r| gauge(r.state.open.into()))?;
        by_window(e, WINDOW_FROZEN, &rows, |r| {
            gauge(r.state.freeze.is_some().into())
        })?;
        by_window(e, WINDOW_NEXT, &rows, |r| gauge(r.state.next?.timestamp()))?;
        by_window(e, BYPASSES, &rows, |r| Some(ConstCounter::new(r.bypasses)))?;
        by_window(e, WINDOW_DENIALS_TOTAL, &rows, |r| {
            Some(ConstCounter::new(r.denials))
        })?;
        let loaded = descriptor(e, WINDOWS_LOADED, MetricType::Gauge)?;
        ConstGauge::new(rows.len() as i64).encode(loaded)
    }
}

/// One metric with a series per window that has a value; no descriptor when none has, as the
/// registry leaves out an empty family.
fn by_window<M: EncodeMetric + TypedMetric>(
    encoder: &mut DescriptorEncoder,
    describe: Describe,
    rows: &[Row],
    value: impl Fn(&Row) -> Option<M>,
) -> Result<(), std::fmt::Error> {
    if rows.iter().all(|row| value(row).is_none()) {
        return Ok(());
    }
    let mut family = descriptor(encoder, describe, M::TYPE)?;
    for row in rows {
        if let Some(metric) = value(row) {
            metric.encode(family.encode_family(&[("window", row.name)])?)?;
        }
    }
    Ok(())
}

/// A metric's HELP and TYPE lines as [`Registry::register`] writes them, the help ending in a
/// full stop.
fn descriptor<'e>(
    encoder: &'e mut DescriptorEncoder,
    (name, help): Describe,
    metric_type: MetricType,
) -> Result<MetricEncoder<'e>, std::fmt::Error> {
    encoder.encode_descriptor(name, &format!("{help}."), None, metric_type)
}

fn request_labels(
    allowed: bool,
    reason: Reason,
    operation: &'static str,
    dry_run: bool,
) -> RequestLabels {
    RequestLabels {
        decision: if allowed { "allow" } else { "deny" },
        reason: reason.as_str(),
        operation,
        dry_run,
    }
}

fn owner_labels(kind: &'static str) -> OwnerLabels {
    OwnerLabels {
        owner_kind: kind,
        owner_namespace: String::new(),
        owner_name: String::new(),
    }
}

/// The `success` and `failure` counters of a family by result.
fn result_counters(family: &Family<ResultLabels, Counter>) -> ResultCounters {
    ResultCounters {
        success: family.get_or_create_owned(&result(true)),
        failure: family.get_or_create_owned(&result(false)),
    }
}

fn result(ok: bool) -> ResultLabels {
    ResultLabels {
        result: if ok { "success" } else { "failure" },
    }
}

/// Counters for what became of Events (`fluxgate_events_total`) or notices
/// (`fluxgate_notifications_total`), by result.
pub struct EventCounters {
    pub(crate) published: Counter,
    pub(crate) failed: Counter,
    pub(crate) dropped: Counter,
}

/// What the cluster sync's passes report to: `fluxgate_window_status_writes_total` and
/// `fluxgate_reconcile_requests_total` by kind.
#[derive(Clone, Debug, Default)]
pub struct SyncCounters {
    pub(crate) status_writes: ResultCounters,
    pub(crate) reconcile_requests: BTreeMap<OwnerKind, ResultCounters>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluxgate_core::admission::review;
    use fluxgate_core::policy::Policy;
    use serde_json::{Value, json};

    const BUMP: &str =
        include_str!("../tests/fixtures/admission/flux-dryrun-image-bump-deployment.json");

    /// Friday 13:00 in Berlin: business-hours closed.
    fn friday() -> DateTime<Utc> {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }

    fn windows() -> Arc<WindowSet> {
        Arc::new(WindowSet::embedded().unwrap())
    }

    /// Flux's image bump, with `edit` applied to the request, decided against `windows` and
    /// counted.
    fn decide_request(
        metrics: &Metrics,
        windows: &WindowSet,
        edit: impl Fn(&mut Value),
    ) -> Decision {
        let mut body: Value = serde_json::from_str(BUMP).unwrap();
        edit(&mut body["request"]);
        let body = serde_json::to_vec(&body).unwrap();
        let reviewed = review(&body, windows, &Policy::default(), friday()).unwrap();
        metrics.record_decision(&reviewed.request, &reviewed.decision, 0.0001, true);
        reviewed.decision
    }

    /// Flux's image bump, with `edit` applied to both object versions.
    fn decide_bump(metrics: &Metrics, edit: impl Fn(&mut Value)) -> Decision {
        decide_request(metrics, &windows(), |request| {
            edit(&mut request["object"]);
            edit(&mut request["oldObject"]);
        })
    }

    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
    }

    /// The samples of an exposition (every line that is not a comment).
    fn samples(text: &str) -> usize {
        text.lines().filter(|l| !l.starts_with('#')).count()
    }

    /// `n` windows, `w-0000` on, closed on Fridays at 13:00 in Berlin (see [`friday`]).
    fn many_windows(n: usize) -> Arc<WindowSet> {
        let yaml: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\n\
                     metadata:\n  name: w-{i:04}\nspec:\n  timeZone: Europe/Berlin\n  \
                     schedules:\n    - open: \"0 8 * * MON\"\n      close: \"0 17 * * THU\"\n"
                )
            })
            .collect();
        Arc::new(WindowSet::from_yaml("many.yaml", &yaml.join("---\n")).unwrap())
    }

    #[test]
    fn counters_exist_at_zero_before_any_event_for_every_loaded_window() {
        let text = Metrics::default().encode(&windows(), friday());
        for series in [
            r#"fluxgate_admission_requests_total{decision="deny",reason="window-closed",operation="UPDATE",dry_run="true"}"#,
            r#"fluxgate_admission_requests_total{decision="allow",reason="bypass",operation="DELETE",dry_run="false"}"#,
            r#"fluxgate_admission_requests_total{decision="allow",reason="not-flux",operation="CREATE",dry_run="false"}"#,
            r#"fluxgate_admission_requests_total{decision="deny",reason="unknown-window",operation="CREATE",dry_run="true"}"#,
            r#"fluxgate_admission_requests_total{decision="allow",reason="override",operation="UPDATE",dry_run="true"}"#,
            r#"fluxgate_bypasses_total{window="default"}"#,
            r#"fluxgate_window_denials_total{window="nightly"}"#,
            r#"fluxgate_window_reloads_total{result="failure"}"#,
            r#"fluxgate_tls_reloads_total{result="failure"}"#,
            r#"fluxgate_events_total{result="failed"}"#,
            r#"fluxgate_notifications_total{result="dropped"}"#,
            r#"fluxgate_http_rejected_requests_total{code="400"}"#,
            r#"fluxgate_reconcile_requests_total{kind="HelmRelease",result="failure"}"#,
            r#"fluxgate_window_status_writes_total{result="failure"}"#,
            "fluxgate_audit_write_errors_total",
        ] {
            assert_eq!(line(&text, series), Some("0"), "{series} in\n{text}");
        }
        assert_eq!(line(&text, "fluxgate_config_valid"), Some("1"));
        assert_eq!(line(&text, "fluxgate_windows_loaded"), Some("3"));
        // No-op is an UPDATE that changes nothing: no CREATE series for it.
        assert!(!text.contains(r#"reason="no-op",operation="CREATE""#));
        assert!(text.ends_with("# EOF\n"), "{text}");
        // The collector's help reads as the registry's does.
        for help in text.lines().filter(|l| l.starts_with("# HELP")) {
            assert!(help.ends_with('.'), "{help}");
        }
    }

    #[test]
    fn window_gauges_say_open_frozen_and_the_next_transition() {
        let text = Metrics::default().encode(&windows(), friday());
        assert_eq!(
            line(&text, r#"fluxgate_window_open{window="business-hours"}"#),
            Some("0")
        );
        assert_eq!(
            line(&text, r#"fluxgate_window_frozen{window="business-hours"}"#),
            Some("0")
        );
        // Closed until Monday 2026-11-30 08:00 in Berlin.
        let monday: DateTime<Utc> = "2026-11-30T07:00:00Z".parse().unwrap();
        assert_eq!(
            line(
                &text,
                r#"fluxgate_window_next_transition_timestamp_seconds{window="business-hours"}"#
            ),
            Some(monday.timestamp().to_string().as_str())
        );
    }

    #[test]
    fn a_window_named_by_an_object_is_a_label_only_when_it_is_loaded() {
        let metrics = Metrics::default();
        let denied = decide_bump(&metrics, |_| {});
        assert_eq!(denied.reason, Reason::WindowClosed);
        let typo = decide_bump(&metrics, |o| {
            o["metadata"]["labels"]["fluxgate.io/window"] = json!("busines-hours")
        });
        assert_eq!(typo.reason, Reason::UnknownWindow);
        let text = metrics.encode(&windows(), friday());
        let prefix = r#"fluxgate_admission_requests_total{decision="deny","#;
        let by_reason = |reason| {
            line(
                &text,
                &format!(r#"{prefix}reason="{reason}",operation="UPDATE",dry_run="true"}}"#),
            )
        };
        assert_eq!(by_reason("window-closed"), Some("1"));
        assert_eq!(by_reason("unknown-window"), Some("1"));
        assert_eq!(
            line(
                &text,
                r#"fluxgate_window_denials_total{window="business-hours"}"#
            ),
            Some("1")
        );
        assert!(!text.contains("busines-hours"), "{text}");
    }

    #[test]
    fn bypasses_and_denials_count_under_the_windows_that_decided() {
        let metrics = Metrics::default();
        let bypass = |o: &mut Value| {
            let annotations = &mut o["metadata"]["annotations"];
            annotations["fluxgate.io/bypass-reason"] = json!("INC-1: hotfix");
            annotations["fluxgate.io/bypass-until"] = json!("2026-11-27T13:00:00Z");
        };
        assert_eq!(decide_bump(&metrics, bypass).reason, Reason::Bypass);
        let open = |o: &mut Value| {
            o["metadata"]["labels"]["fluxgate.io/window"] = json!("default");
        };
        assert_eq!(decide_bump(&metrics, open).reason, Reason::WindowOpen);
        let text = metrics.encode(&windows(), friday());
        let count = |series: &str| line(&text, series).map(str::to_owned);
        let bh = r#"{window="business-hours"}"#;
        assert_eq!(
            count(&format!("fluxgate_bypasses_total{bh}")).as_deref(),
            Some("1")
        );
        // The bypass admitted the change: no denial; the open window denied nothing.
        assert_eq!(
            count(&format!("fluxgate_window_denials_total{bh}")).as_deref(),
            Some("0")
        );
        assert_eq!(
            count(r#"fluxgate_window_denials_total{window="default"}"#).as_deref(),
            Some("0")
        );
        // A window that is no longer loaded has no series; its count comes back with it.
        let others = Arc::new(
            WindowSet::from_yaml("w.yaml", &{
                let text = fluxgate_core::window::EMBEDDED_WINDOWS;
                text.replace("name: business-hours", "name: office-hours")
            })
            .unwrap(),
        );
        let text = metrics.encode(&others, friday());
        assert!(!text.contains("business-hours"), "{text}");
        assert!(
            metrics
                .encode(&windows(), friday())
                .contains(&format!("fluxgate_bypasses_total{bh} 1\n"))
        );
    }

    #[test]
    fn denials_count_per_flux_owner_up_to_a_bound() {
        let metrics = Metrics::default();
        decide_bump(&metrics, |_| {});
        decide_bump(&metrics, |_| {});
        let text = metrics.encode(&windows(), friday());
        assert_eq!(
            line(
                &text,
                r#"fluxgate_flux_denials_total{owner_kind="Kustomization",owner_namespace="flux-system",owner_name="apps-rw"}"#
            ),
            Some("2")
        );
        // A flood of owner names: the first MAX_OWNERS are kept, the rest counted together.
        for n in 0..MAX_OWNERS + 10 {
            decide_bump(&metrics, |o| {
                o["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = json!(format!("k{n}"))
            });
        }
        let text = metrics.encode(&windows(), friday());
        let owners = text
            .lines()
            .filter(|l| l.starts_with("fluxgate_flux_denials_total{"))
            .count();
        // MAX_OWNERS distinct owners (apps-rw among them), `_none`, and `_other`.
        assert_eq!(owners, MAX_OWNERS + 2);
        assert_eq!(
            line(
                &text,
                r#"fluxgate_flux_denials_total{owner_kind="_other",owner_namespace="",owner_name=""}"#
            ),
            Some("11")
        );
    }

    #[test]
    fn a_rejected_reload_marks_the_configuration_invalid_until_one_succeeds() {
        let metrics = Metrics::default();
        let store = crate::windows::store::WindowStore::new(
            WindowSet::embedded().unwrap(),
            metrics.window_reloads(),
        );
        store.reject();
        let text = metrics.encode(&windows(), friday());
        assert_eq!(line(&text, "fluxgate_config_valid"), Some("0"));
        store.publish(WindowSet::embedded().unwrap(), friday());
        let text = metrics.encode(&windows(), friday());
        assert_eq!(line(&text, "fluxgate_config_valid"), Some("1"));
    }

    /// Issue "Integrity", item 8: 36 series per window made 5,000 windows a 20.8 MB scrape.
    /// A window has five (open, frozen, next transition, bypasses, denials), however many
    /// decisions it made, and nothing else grows with the windows.
    #[test]
    fn each_window_adds_five_series_whatever_it_decided() {
        const WINDOWS: usize = 200;
        let metrics = Metrics::default();
        let none = samples(&metrics.encode(&Arc::new(WindowSet::default()), friday()));
        let many = many_windows(WINDOWS);
        // Every window denies and admits by bypass, dry-run or not.
        for window in many.names() {
            for dry_run in [false, true] {
                for bypass in [false, true] {
                    let decision = decide_request(&metrics, &many, |request| {
                        request["dryRun"] = json!(dry_run);
                        for object in ["object", "oldObject"] {
                            let metadata = &mut request[object]["metadata"];
                            metadata["labels"]["fluxgate.io/window"] = json!(window);
                            if bypass {
                                let annotations = &mut metadata["annotations"];
                                annotations["fluxgate.io/bypass-reason"] = json!("INC-1");
                                annotations["fluxgate.io/bypass-until"] =
                                    json!("2026-11-27T13:00:00Z");
                            }
                        }
                    });
                    let expected = if bypass {
                        Reason::Bypass
                    } else {
                        Reason::WindowClosed
                    };
                    assert_eq!(decision.reason, expected, "{decision:?}");
                }
            }
        }
        let text = metrics.encode(&many, friday());
        assert_eq!(
            line(&text, r#"fluxgate_bypasses_total{window="w-0007"}"#),
            Some("2")
        );
        assert_eq!(
            line(&text, r#"fluxgate_window_denials_total{window="w-0007"}"#),
            Some("2")
        );
        // The empty set's series, plus five per window, plus the one owner these denials name.
        assert_eq!(samples(&text), none + 5 * WINDOWS + 1, "{text}");
    }

    /// Scrapes at once each see every window's gauges: a scrape shares nothing it clears.
    #[test]
    fn concurrent_scrapes_each_see_every_window() {
        const WINDOWS: usize = 200;
        const SCRAPES: usize = 50;
        let windows = many_windows(WINDOWS);
        let metrics = Metrics::default();
        let short: Vec<usize> = std::thread::scope(|s| {
            let scrapers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        (0..SCRAPES)
                            .map(|_| {
                                let text = metrics.encode(&windows, friday());
                                text.lines()
                                    .filter(|l| l.starts_with("fluxgate_window_open{"))
                                    .count()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            scrapers
                .into_iter()
                .flat_map(|s| s.join().unwrap())
                .filter(|&seen| seen != WINDOWS)
                .collect()
        });
        println!(
            "{} scrapes in 2 threads, {} short",
            2 * SCRAPES,
            short.len()
        );
        assert!(short.is_empty(), "scrapes missing window gauges: {short:?}");
    }
}
