//! Prometheus metrics, served as text on the plain-HTTP metrics port.
//!
//! Every counter is exported from the start, at 0, for each label combination that can occur
//! (windows as they are loaded), so alerts and `rate()` see a series before the first event.
//! Label values are bounded whatever clients send: a `window` label is a loaded window's name
//! or one of `NO_WINDOW`, `SEVERAL_WINDOWS`, `UNKNOWN_WINDOW` (never a name read from an
//! object), and Flux owners beyond `MAX_OWNERS` are counted together as `OTHER_OWNERS`.

use chrono::{DateTime, Utc};
use fluxgate_core::naming::operation_name;
use fluxgate_core::object::Object;
use fluxgate_core::policy::{Decision, Reason, WindowVerdict};
use fluxgate_core::window::WindowSet;
use kube::core::admission::AdmissionRequest;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `window` of a decision that involved no window (not Flux, not governed, window objects).
pub(crate) const NO_WINDOW: &str = "_none";
/// `window` of a decision that involved several (an object moved from one window to another).
pub(crate) const SEVERAL_WINDOWS: &str = "_several";
/// `window` of a decision about a window that does not exist (a typo in fluxgate.io/window):
/// the name comes from the object, so it must not become a label value.
pub(crate) const UNKNOWN_WINDOW: &str = "_unknown";
/// Distinct Flux owners counted by name in `fluxgate_flux_denials_total`. Owners are
/// Kustomizations and HelmReleases, named by the labels Flux sets; a cluster has tens to
/// hundreds. Past this, denials count under [`OTHER_OWNERS`] so a flood of names cannot grow
/// the exposition without bound.
pub(crate) const MAX_OWNERS: usize = 500;
/// `owner_kind` of denials past [`MAX_OWNERS`] distinct owners.
pub(crate) const OTHER_OWNERS: &str = "_other";
/// `owner_kind` of denials of objects no Flux owner labels name.
pub(crate) const NO_OWNER: &str = "_none";

const OPERATIONS: [&str; 3] = ["CREATE", "UPDATE", "DELETE"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    decision: &'static str,
    reason: &'static str,
    operation: &'static str,
    dry_run: bool,
    window: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabels {
    window: String,
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

/// Every metric fluxgate exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    rejected: Family<StatusLabels, Counter>,
    duration: Histogram,
    window_open: Family<WindowLabels, Gauge>,
    window_frozen: Family<WindowLabels, Gauge>,
    window_next: Family<WindowLabels, Gauge>,
    windows_loaded: Gauge,
    config_valid: Gauge,
    owner_denials: Family<OwnerLabels, Counter>,
    owners: AtomicUsize,
    bypasses: Family<WindowLabels, Counter>,
    window_reloads: Family<ResultLabels, Counter>,
    tls_reloads: Family<ResultLabels, Counter>,
    audit_errors: Counter,
    events: Family<ResultLabels, Counter>,
    reconcile_requests: Family<KindResultLabels, Counter>,
    status_writes: Family<ResultLabels, Counter>,
    tls_expiry: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("fluxgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "AdmissionReviews decided, by decision, reason, operation, dry-run and window",
            requests.clone(),
        );
        let rejected = Family::<StatusLabels, Counter>::default();
        registry.register(
            "http_rejected_requests",
            "Requests to /validate refused before a decision (malformed, oversized, wrong type)",
            rejected.clone(),
        );
        // Decisions take microseconds: buckets from 25µs up to 1s.
        let duration = Histogram::new([
            0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0,
        ]);
        registry.register(
            "admission_duration_seconds",
            "Server time spent on an AdmissionReview (parse, decide, respond, audit)",
            duration.clone(),
        );
        let window_open = Family::<WindowLabels, Gauge>::default();
        registry.register(
            "window_open",
            "1 when the window is open, 0 when closed",
            window_open.clone(),
        );
        let window_frozen = Family::<WindowLabels, Gauge>::default();
        registry.register(
            "window_frozen",
            "1 while a freeze of the window is in force (the window is then closed), else 0",
            window_frozen.clone(),
        );
        let window_next = Family::<WindowLabels, Gauge>::default();
        registry.register(
            "window_next_transition_timestamp_seconds",
            "When the window next opens or closes (Unix time); absent when it never changes again",
            window_next.clone(),
        );
        let windows_loaded = Gauge::default();
        registry.register(
            "windows_loaded",
            "ReconciliationWindows in force",
            windows_loaded.clone(),
        );
        // Valid until a load says otherwise: the first set was validated before serving began.
        let config_valid = Gauge::default();
        config_valid.set(1);
        registry.register(
            "config_valid",
            "1 when the last load of the windows succeeded; 0 when it was rejected and the last \
             good set is still in force",
            config_valid.clone(),
        );
        let owner_denials = Family::<OwnerLabels, Counter>::default();
        registry.register(
            "flux_denials",
            "Flux changes denied, by the Kustomization or HelmRelease that applied them",
            owner_denials.clone(),
        );
        let bypasses = Family::<WindowLabels, Counter>::default();
        registry.register(
            "bypasses",
            "Changes admitted by an emergency bypass, by window",
            bypasses.clone(),
        );
        let window_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "window_reloads",
            "Reloads of the windows files, by result (success, failure)",
            window_reloads.clone(),
        );
        let tls_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "tls_reloads",
            "Reloads of the TLS certificate, by result (success, failure)",
            tls_reloads.clone(),
        );
        let audit_errors = Counter::default();
        registry.register(
            "audit_write_errors",
            "Audit records that could not be written",
            audit_errors.clone(),
        );
        let events = Family::<ResultLabels, Counter>::default();
        registry.register(
            "events",
            "Kubernetes Events for bypasses and denials, by result (published, failed, dropped)",
            events.clone(),
        );
        let tls_expiry = Gauge::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the serving certificate in use expires (notAfter), as a Unix time",
            tls_expiry.clone(),
        );
        let reconcile_requests = Family::<KindResultLabels, Counter>::default();
        registry.register(
            "reconcile_requests",
            "Reconciles asked of Flux owners when their window opened, by kind and result",
            reconcile_requests.clone(),
        );
        // At 0 from the start, so that rate() and alerts work before the first opening.
        for kind in fluxgate_core::flux::OwnerKind::ALL {
            for ok in [true, false] {
                reconcile_requests
                    .get_or_create(&KindResultLabels {
                        kind: kind.kind(),
                        result: result(ok).result,
                    })
                    .inc_by(0);
            }
        }
        let status_writes = Family::<ResultLabels, Counter>::default();
        registry.register(
            "window_status_writes",
            "Writes of ReconciliationWindow status, by result (success, failure)",
            status_writes.clone(),
        );
        for ok in [true, false] {
            status_writes.get_or_create(&result(ok)).inc_by(0);
        }
        let metrics = Metrics {
            reconcile_requests,
            status_writes,
            tls_expiry,
            events,
            registry,
            requests,
            rejected,
            duration,
            window_open,
            window_frozen,
            window_next,
            windows_loaded,
            config_valid,
            owner_denials,
            owners: AtomicUsize::new(0),
            bypasses,
            window_reloads,
            tls_reloads,
            audit_errors,
        };
        metrics.create_fixed_series();
        metrics
    }
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
                window_label(&decision.windows),
            ))
            .inc();
        self.duration.observe(seconds);
        if count_bypass && decision.reason == Reason::Bypass {
            for window in &decision.windows {
                self.bypasses
                    .get_or_create(&WindowLabels {
                        window: window.name.clone(),
                    })
                    .inc();
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
                owner_kind: owner.kind,
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
    pub(crate) fn window_reloads(&self) -> crate::windows::store::ReloadOutcomes {
        crate::windows::store::ReloadOutcomes {
            reloads: result_counters(&self.window_reloads),
            valid: self.config_valid.clone(),
        }
    }

    pub(crate) fn record_tls_reload(&self, ok: bool) {
        self.tls_reloads.get_or_create(&result(ok)).inc();
    }

    /// The counters an Event publisher reports to.
    pub fn event_outcomes(&self) -> crate::cluster::events::EventOutcomes {
        let counter = |result| self.events.get_or_create(&ResultLabels { result }).clone();
        crate::cluster::events::EventOutcomes {
            published: counter("published"),
            failed: counter("failed"),
            dropped: counter("dropped"),
        }
    }

    /// The counters the cluster sync reports its writes to.
    pub fn sync_outcomes(&self) -> crate::cluster::sync::SyncOutcomes {
        let requests = |kind: fluxgate_core::flux::OwnerKind| {
            let counter = |ok| {
                let labels = KindResultLabels {
                    kind: kind.kind(),
                    result: result(ok).result,
                };
                self.reconcile_requests.get_or_create(&labels).clone()
            };
            crate::windows::store::ResultCounters {
                success: counter(true),
                failure: counter(false),
            }
        };
        crate::cluster::sync::SyncOutcomes {
            status_writes: result_counters(&self.status_writes),
            reconcile_requests: fluxgate_core::flux::OwnerKind::ALL
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

    /// The text exposition, with window gauges evaluated at `now`.
    pub fn encode(&self, windows: &WindowSet, now: DateTime<Utc>) -> String {
        // Windows come and go with reloads: rebuild the gauges so removed ones disappear.
        self.window_open.clear();
        self.window_frozen.clear();
        self.window_next.clear();
        for window in windows.iter() {
            let state = window.state_at(now);
            let labels = WindowLabels {
                window: window.name().to_owned(),
            };
            self.window_open
                .get_or_create(&labels)
                .set(i64::from(state.open));
            self.window_frozen
                .get_or_create(&labels)
                .set(i64::from(state.freeze.is_some()));
            if let Some(next) = state.next {
                self.window_next
                    .get_or_create(&labels)
                    .set(next.timestamp());
            }
            // The counters of a window exist at 0 from the first scrape after it is loaded.
            // Those of a removed window stay: counters do not go back.
            drop(self.bypasses.get_or_create(&labels));
            for reason in WINDOW_REASONS {
                self.create_request_series(reason, window.name());
            }
        }
        self.windows_loaded.set(windows.len() as i64);
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot encode metrics");
        }
        text
    }

    /// The series that exist whatever the windows: at 0 until their first event.
    fn create_fixed_series(&self) {
        for reason in [
            Reason::NotFlux,
            Reason::NotGoverned,
            Reason::InvalidRequest,
            Reason::ValidWindow,
            Reason::InvalidWindow,
        ] {
            self.create_request_series(reason, NO_WINDOW);
        }
        self.create_request_series(Reason::UnknownWindow, UNKNOWN_WINDOW);
        for reason in WINDOW_REASONS {
            self.create_request_series(reason, SEVERAL_WINDOWS);
        }
        for ok in [true, false] {
            drop(self.window_reloads.get_or_create(&result(ok)));
            drop(self.tls_reloads.get_or_create(&result(ok)));
        }
        for result in ["published", "failed", "dropped"] {
            drop(self.events.get_or_create(&ResultLabels { result }));
        }
        // The codes `validate` answers before a decision (see `server::reject`).
        for code in [400, 401, 413, 415] {
            drop(self.rejected.get_or_create(&StatusLabels { code }));
        }
        drop(self.owner_denials.get_or_create(&owner_labels(NO_OWNER)));
    }

    /// Every operation and dry-run value of one reason and window, at 0 if new.
    fn create_request_series(&self, reason: Reason, window: &str) {
        for operation in OPERATIONS {
            // Only an UPDATE can change nothing.
            if reason == Reason::NoOp && operation != "UPDATE" {
                continue;
            }
            for dry_run in [false, true] {
                drop(self.requests.get_or_create(&request_labels(
                    reason.allows(),
                    reason,
                    operation,
                    dry_run,
                    window.to_owned(),
                )));
            }
        }
    }
}

/// The reasons of decisions that involve a known window.
const WINDOW_REASONS: [Reason; 6] = [
    Reason::NoOp,
    Reason::WindowOpen,
    Reason::Bypass,
    Reason::WindowClosed,
    Reason::Frozen,
    Reason::InvalidBypass,
];

fn request_labels(
    allowed: bool,
    reason: Reason,
    operation: &'static str,
    dry_run: bool,
    window: String,
) -> RequestLabels {
    RequestLabels {
        decision: if allowed { "allow" } else { "deny" },
        reason: reason.as_str(),
        operation,
        dry_run,
        window,
    }
}

/// The `window` label of a decision: bounded by the loaded windows (see the module doc).
fn window_label(windows: &[WindowVerdict]) -> String {
    match windows {
        [] => NO_WINDOW.to_owned(),
        [one] if one.known.is_some() => one.name.clone(),
        [_] => UNKNOWN_WINDOW.to_owned(),
        _ => SEVERAL_WINDOWS.to_owned(),
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
fn result_counters(
    family: &Family<ResultLabels, Counter>,
) -> crate::windows::store::ResultCounters {
    crate::windows::store::ResultCounters {
        success: family.get_or_create(&result(true)).clone(),
        failure: family.get_or_create(&result(false)).clone(),
    }
}

fn result(ok: bool) -> ResultLabels {
    ResultLabels {
        result: if ok { "success" } else { "failure" },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluxgate_core::admission::review;
    use fluxgate_core::policy::Policy;
    use serde_json::{Value, json};

    const BUMP: &str =
        include_str!("../../tests/fixtures/admission/flux-dryrun-image-bump-deployment.json");

    /// Friday 13:00 in Berlin: business-hours closed.
    fn friday() -> DateTime<Utc> {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }

    fn windows() -> WindowSet {
        fluxgate_core::window::WindowSet::embedded().unwrap()
    }

    /// Flux's image bump, with `edit` applied to both object versions.
    fn decide_bump(metrics: &Metrics, edit: impl Fn(&mut Value)) -> Decision {
        let mut body: Value = serde_json::from_str(BUMP).unwrap();
        edit(&mut body["request"]["object"]);
        edit(&mut body["request"]["oldObject"]);
        let body = serde_json::to_vec(&body).unwrap();
        let reviewed = review(&body, &windows(), &Policy::default(), friday()).unwrap();
        metrics.record_decision(&reviewed.request, &reviewed.decision, 0.0001, true);
        reviewed.decision
    }

    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn counters_exist_at_zero_before_any_event_for_every_loaded_window() {
        let text = Metrics::default().encode(&windows(), friday());
        for series in [
            r#"fluxgate_admission_requests_total{decision="deny",reason="window-closed",operation="UPDATE",dry_run="true",window="business-hours"}"#,
            r#"fluxgate_admission_requests_total{decision="allow",reason="bypass",operation="DELETE",dry_run="false",window="nightly"}"#,
            r#"fluxgate_admission_requests_total{decision="allow",reason="not-flux",operation="CREATE",dry_run="false",window="_none"}"#,
            r#"fluxgate_admission_requests_total{decision="deny",reason="unknown-window",operation="CREATE",dry_run="true",window="_unknown"}"#,
            r#"fluxgate_admission_requests_total{decision="deny",reason="frozen",operation="UPDATE",dry_run="true",window="_several"}"#,
            r#"fluxgate_bypasses_total{window="default"}"#,
            r#"fluxgate_window_reloads_total{result="failure"}"#,
            r#"fluxgate_tls_reloads_total{result="failure"}"#,
            r#"fluxgate_events_total{result="failed"}"#,
            r#"fluxgate_http_rejected_requests_total{code="400"}"#,
            "fluxgate_audit_write_errors_total",
        ] {
            assert_eq!(line(&text, series), Some("0"), "{series} in\n{text}");
        }
        assert_eq!(line(&text, "fluxgate_config_valid"), Some("1"));
        // No-op is an UPDATE that changes nothing: no CREATE series for it.
        assert!(!text.contains(r#"reason="no-op",operation="CREATE""#));
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
        assert_eq!(
            line(
                &text,
                &format!(
                    r#"{prefix}reason="window-closed",operation="UPDATE",dry_run="true",window="business-hours"}}"#
                )
            ),
            Some("1")
        );
        assert_eq!(
            line(
                &text,
                &format!(
                    r#"{prefix}reason="unknown-window",operation="UPDATE",dry_run="true",window="_unknown"}}"#
                )
            ),
            Some("1")
        );
        assert!(!text.contains("busines-hours"), "{text}");
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
        let store = crate::windows::store::WindowStore::new(windows(), metrics.window_reloads());
        store.reject();
        let text = metrics.encode(&windows(), friday());
        assert_eq!(line(&text, "fluxgate_config_valid"), Some("0"));
        store.publish(windows(), friday());
        let text = metrics.encode(&windows(), friday());
        assert_eq!(line(&text, "fluxgate_config_valid"), Some("1"));
    }
}
