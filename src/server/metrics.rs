//! Prometheus metrics, served as text on the plain-HTTP metrics port.

use crate::audit::operation_name;
use crate::object::Object;
use crate::policy::Decision;
use crate::window::WindowSet;
use chrono::{DateTime, Utc};
use kube::core::admission::AdmissionRequest;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    decision: &'static str,
    reason: &'static str,
    operation: &'static str,
    dry_run: bool,
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
    windows_loaded: Gauge,
    bypasses: Family<WindowLabels, Counter>,
    window_reloads: Family<ResultLabels, Counter>,
    tls_reloads: Family<ResultLabels, Counter>,
    audit_errors: Counter,
    events: Family<ResultLabels, Counter>,
    tls_expiry: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("fluxgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "AdmissionReviews decided, by decision, reason, operation and dry-run",
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
        let windows_loaded = Gauge::default();
        registry.register(
            "windows_loaded",
            "ReconciliationWindows in force",
            windows_loaded.clone(),
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
        Metrics {
            tls_expiry,
            events,
            registry,
            requests,
            rejected,
            duration,
            window_open,
            windows_loaded,
            bypasses,
            window_reloads,
            tls_reloads,
            audit_errors,
        }
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
            .get_or_create(&RequestLabels {
                decision: if decision.allowed { "allow" } else { "deny" },
                reason: decision.reason.as_str(),
                operation: operation_name(&request.operation),
                dry_run: request.dry_run,
            })
            .inc();
        self.duration.observe(seconds);
        if count_bypass && decision.reason == crate::policy::Reason::Bypass {
            for window in &decision.windows {
                self.bypasses
                    .get_or_create(&WindowLabels {
                        window: window.name.clone(),
                    })
                    .inc();
            }
        }
    }

    pub fn record_rejected(&self, code: u16) {
        self.rejected.get_or_create(&StatusLabels { code }).inc();
    }

    pub fn record_window_reload(&self, ok: bool) {
        self.window_reloads.get_or_create(&result(ok)).inc();
    }

    pub fn record_tls_reload(&self, ok: bool) {
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

    /// The serving certificate in use expires at `unix_seconds`.
    pub fn set_tls_expiry(&self, unix_seconds: i64) {
        self.tls_expiry.set(unix_seconds);
    }

    pub fn record_audit_error(&self) {
        self.audit_errors.inc();
    }

    /// The text exposition, with window gauges evaluated at `now`.
    pub fn encode(&self, windows: &WindowSet, now: DateTime<Utc>) -> String {
        // Windows come and go with reloads: rebuild the gauges so removed ones disappear.
        self.window_open.clear();
        for window in windows.iter() {
            let open = window.is_open_at(now);
            self.window_open
                .get_or_create(&WindowLabels {
                    window: window.name().to_owned(),
                })
                .set(i64::from(open));
        }
        self.windows_loaded.set(windows.len() as i64);
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot encode metrics");
        }
        text
    }
}

fn result(ok: bool) -> ResultLabels {
    ResultLabels {
        result: if ok { "success" } else { "failure" },
    }
}
