//! The HTTPS admission server: a thin shell around [`crate::review`].
//!
//! [`router`] builds the whole HTTP surface from an [`AppState`] so tests can drive it without
//! a socket; [`listen`] puts it behind rustls on a real socket with the timeouts and limits a
//! webhook on the API server's write path needs.

mod idle;
pub mod listen;
pub mod metrics;
pub mod tls;
pub mod watch;

use crate::audit::{self, AuditSink, GroupCommit};
use crate::policy::Policy;
use crate::review::review;
use crate::window::WindowSet;
use arc_swap::ArcSwap;
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use metrics::Metrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tls::PeerIdentity;

/// The largest AdmissionReview accepted: it carries both object and oldObject, and etcd
/// objects go up to ~1.5 MiB each (plus JSON overhead); 7 MiB is what controller-runtime allows.
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;

/// Everything a request needs; shared by all connections.
pub struct AppState {
    /// Swapped whole on reload: a decision sees the old set or the new one, never a mix.
    pub windows: ArcSwap<WindowSet>,
    pub policy: Policy,
    /// The audit sink, behind group commit.
    pub audit: GroupCommit,
    pub metrics: Metrics,
    /// False until the TLS listener is up, and again once shutdown begins.
    pub ready: AtomicBool,
    /// False until the windows are known (a cluster watch has listed them once).
    pub windows_ready: AtomicBool,
    /// `/validate` only answers clients with a certificate from `--client-ca` (the API server).
    pub require_client_cert: bool,
    /// Events for bypasses and denials, when the server talks to the cluster.
    pub events: Option<crate::cluster::events::EventPublisher>,
    /// The clock: `Utc::now` in production, fixed in tests.
    pub clock: fn() -> DateTime<Utc>,
}

impl AppState {
    pub fn new(windows: WindowSet, policy: Policy, audit: Arc<dyn AuditSink>) -> Self {
        AppState {
            windows: ArcSwap::from_pointee(windows),
            policy,
            audit: GroupCommit::new(audit),
            metrics: Metrics::default(),
            ready: AtomicBool::new(false),
            windows_ready: AtomicBool::new(true),
            require_client_cert: false,
            events: None,
            clock: Utc::now,
        }
    }
}

/// Limits of the request path; see the `serve` flags for the reasoning behind the defaults.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Per request, body included; below the webhook's `timeoutSeconds`.
    pub request_timeout: Duration,
    /// Requests decided at once; more wait (within the request timeout).
    pub max_concurrent_requests: usize,
}

/// The webhook's HTTP surface: `POST /validate`, `GET /healthz`, `GET /readyz`.
pub fn router(state: Arc<AppState>, limits: &Limits) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .with_state(state)
}

/// The metrics port: `GET /metrics` in Prometheus text format.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn validate(
    State(state): State<Arc<AppState>>,
    identity: Option<Extension<PeerIdentity>>,
    DeclaresJson(declares_json): DeclaresJson,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    if state.require_client_cert && !identity.is_some_and(|Extension(id)| id.verified_client) {
        let message = "a client certificate signed by --client-ca is required".to_owned();
        return reject(&state, StatusCode::UNAUTHORIZED, message);
    }
    if !declares_json {
        return reject(
            &state,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type must be application/json".into(),
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let message = match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => {
                    format!("AdmissionReview larger than {MAX_BODY_BYTES} bytes")
                }
                _ => rejection.body_text(),
            };
            return reject(&state, rejection.status(), message);
        }
    };
    let now = (state.clock)();
    let windows = state.windows.load();
    let mut reviewed = match review(&body, &windows, &state.policy, now) {
        Ok(reviewed) => reviewed,
        Err(error) => return reject(&state, StatusCode::BAD_REQUEST, error.to_string()),
    };
    let json = reviewed.response_json();
    let seconds = started.elapsed().as_secs_f64();
    let written = state.audit.append(|out| {
        audit::write_line(out, &reviewed.request, &reviewed.decision, now, seconds);
    });
    state
        .metrics
        .record_decision(&reviewed.request, &reviewed.decision, seconds);
    if let Some(events) = &state.events {
        events.notify(&reviewed.request, &reviewed.decision);
    }
    // Only the answer and the uid wait for the audit write; see `GroupCommit::append`.
    let uid = std::mem::take(&mut reviewed.request.uid);
    drop((reviewed, body, windows));
    if let Err(error) = written.await {
        state.metrics.record_audit_error();
        tracing::error!(%error, %uid, "cannot write audit record");
    }
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// Whether the request's content type is JSON, read in place: axum's `HeaderMap` extractor
/// would copy every header of every request.
struct DeclaresJson(bool);

impl<S: Sync> axum::extract::FromRequestParts<S> for DeclaresJson {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(DeclaresJson(is_json(&parts.headers)))
    }
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// A request refused before any decision: a JSON error with a one-line reason.
fn reject(state: &AppState, status: StatusCode, message: String) -> Response {
    state.metrics.record_rejected(status.as_u16());
    // `error`, not `message`: JSON logs flatten fields next to the event's own message.
    tracing::warn!(status = status.as_u16(), error = %message, "rejected request to /validate");
    let body = serde_json::json!({ "error": message });
    (status, axum::Json(body)).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::Acquire) && state.windows_ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let text = state.metrics.encode(&state.windows.load(), (state.clock)());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
