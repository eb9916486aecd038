//! The HTTPS admission server: a thin shell around [`fluxgate_core::admission`].
//!
//! [`router`] builds the whole HTTP surface from an [`AppState`] so tests can drive it without
//! a socket; `listen` puts it behind rustls on a real socket with the timeouts and limits a
//! webhook on the API server's write path needs.

mod idle;
pub(crate) mod listen;
mod peer_limit;
pub mod tls;

use crate::audit_log::{AuditSink, DEFAULT_STALL_BOUND, GroupCommit, Queued};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::windows::store::WindowStore;
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use fluxgate_core::admission::review;
use fluxgate_core::audit;
use fluxgate_core::object::Object;
use fluxgate_core::policy::{Decision, Policy};
use fluxgate_core::window::WindowSet;
use kube::core::admission::AdmissionRequest;
use peer_limit::{PeerLimit, Share};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tls::PeerIdentity;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The largest AdmissionReview accepted: it carries both object and oldObject, and etcd
/// objects go up to ~1.5 MiB each (plus JSON overhead); 7 MiB is what controller-runtime allows.
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;

/// Request-body bytes held at once across all connections, unless set otherwise
/// (`--max-body-bytes-in-flight`); see RELIABILITY.md for what it keeps memory at.
pub(crate) const DEFAULT_BODY_BUDGET: usize = 32 * 1024 * 1024;

/// What the server is built from: the flags' values, and the pieces `serve` (or a test) made
/// for it. [`Settings::new`] gives a test's defaults; `serve` fills in every field.
pub struct Settings {
    /// The windows in force, published into by the file and cluster watches.
    pub windows: Arc<WindowStore>,
    pub policy: Policy,
    pub audit: Arc<dyn AuditSink>,
    /// How long a decision waits for its audit record, and a write may take before the sink
    /// counts as stuck and the replica not ready.
    pub audit_stall_bound: Duration,
    /// Where every metric is; `windows` reports its loads to the same.
    pub metrics: Metrics,
    /// `/validate` only answers clients with a certificate from `--client-ca` (the API server).
    pub require_client_cert: bool,
    /// Whether a caller without a verified client certificate may make fluxgate publish Events
    /// and count bypasses (`--accept-unverified-callers`). Its decisions are answered and
    /// audited either way, with the caller's address.
    pub accept_unverified: bool,
    /// Bytes of request bodies held at once (`--max-body-bytes-in-flight`).
    pub body_bytes_in_flight: usize,
    /// Events for bypasses and denials, when the server talks to the cluster.
    pub events: Option<Arc<dyn Notifier>>,
    /// Notices to Flux's notification-controller (`serve --notification-url`).
    pub notices: Option<Arc<dyn Notifier>>,
    pub clock: Clock,
}

impl Settings {
    /// `windows` in force (held to `policy`'s gate), the system clock, and every limit at its
    /// default.
    pub fn new(windows: WindowSet, policy: Policy, audit: Arc<dyn AuditSink>) -> Self {
        let metrics = Metrics::default();
        let gate = crate::windows::Gate::new(policy.clone(), false);
        Settings {
            windows: Arc::new(WindowStore::new(windows, metrics.window_reloads()).with_gate(gate)),
            policy,
            audit,
            audit_stall_bound: DEFAULT_STALL_BOUND,
            metrics,
            require_client_cert: false,
            accept_unverified: false,
            body_bytes_in_flight: DEFAULT_BODY_BUDGET,
            events: None,
            notices: None,
            clock: Clock::system(),
        }
    }
}

/// Everything a request needs; shared by all connections.
pub struct AppState {
    windows: Arc<WindowStore>,
    policy: Policy,
    /// The audit sink, behind group commit.
    audit: GroupCommit,
    metrics: Metrics,
    /// False until the TLS listener is up, and again once shutdown begins.
    ready: AtomicBool,
    require_client_cert: bool,
    accept_unverified: bool,
    /// Bytes of request bodies that may be held at once: a body waits for its share before it
    /// is read, so many large bodies at once cannot push memory past the pod's limit.
    body_budget: PeerLimit,
    events: Option<Arc<dyn Notifier>>,
    notices: Option<Arc<dyn Notifier>>,
    clock: Clock,
}

impl AppState {
    /// Not ready until [`AppState::set_ready`].
    pub fn new(settings: Settings) -> Self {
        AppState {
            windows: settings.windows,
            policy: settings.policy,
            audit: GroupCommit::new(settings.audit).with_stall_bound(settings.audit_stall_bound),
            metrics: settings.metrics,
            ready: AtomicBool::new(false),
            require_client_cert: settings.require_client_cert,
            accept_unverified: settings.accept_unverified,
            body_budget: body_budget(settings.body_bytes_in_flight),
            events: settings.events,
            notices: settings.notices,
            clock: settings.clock,
        }
    }

    /// The windows in force.
    pub fn windows(&self) -> &Arc<WindowStore> {
        &self.windows
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Ready once the TLS listener is up; not ready again once shutdown begins.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}

/// What is told of each decision a trusted caller's request made, besides its answer and its
/// audit record: the cluster's Event publisher (`serve --events`). A trait, so that the server
/// knows nothing of the cluster shell; `serve` puts the two together.
pub trait Notifier: Send + Sync {
    /// Must not wait: it runs on the request path.
    fn notify(&self, request: &AdmissionRequest<Object>, decision: &Decision, now: DateTime<Utc>);
}

/// Limits of the request path; see the `serve` flags for the reasoning behind the defaults.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Per request, body included, until its decision is queued for the audit log
    /// ([`request_limits`]); below the webhook's `timeoutSeconds`.
    pub request_timeout: Duration,
    /// Requests decided at once; more wait (within the request timeout).
    pub max_concurrent_requests: usize,
}

/// The webhook's HTTP surface: `POST /validate`, `GET /healthz`, `GET /readyz`.
pub fn router(state: Arc<AppState>, limits: &Limits) -> Router {
    let in_flight = Arc::new(InFlightLimits {
        timeout: limits.request_timeout,
        slots: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
    });
    Router::new()
        .route("/validate", post(validate))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            in_flight,
            request_limits,
        ))
        .with_state(state)
}

/// `--request-timeout` and `--max-concurrent-requests`.
struct InFlightLimits {
    timeout: Duration,
    slots: Arc<Semaphore>,
}

/// The request timeout and the concurrency limit, as long as the answer is still theirs to
/// give. A request waits for one of the slots within its time, and is answered 408 when it is
/// not decided in time. Once its decision is queued for the audit log ([`InFlight::commit`]),
/// only the audit write answers it (`validate`), and its slot goes to the next request: a
/// timeout that cut it then, as a plain timeout layer does, answered 408 while the writer
/// thread wrote the record all the same (issue 21: 14 records for 12 answers of 200), and a
/// write that stalls must not hold the slots of the requests that wait for it.
async fn request_limits(
    State(limits): State<Arc<InFlightLimits>>,
    mut request: Request,
    next: Next,
) -> Response {
    let deadline = tokio::time::Instant::now() + limits.timeout;
    let slot = limits.slots.clone().acquire_owned();
    let Ok(Ok(slot)) = tokio::time::timeout_at(deadline, slot).await else {
        return timed_out();
    };
    let in_flight = InFlight(Arc::new(InFlightState {
        deadline,
        slot: parking_lot::Mutex::new(Some(slot)),
        committed: AtomicBool::new(false),
    }));
    request.extensions_mut().insert(in_flight.clone());
    let response = next.run(request);
    tokio::pin!(response);
    match tokio::time::timeout_at(deadline, &mut response).await {
        Ok(response) => response,
        Err(_) if in_flight.committed() => response.await,
        Err(_) => timed_out(),
    }
}

fn timed_out() -> Response {
    StatusCode::REQUEST_TIMEOUT.into_response()
}

/// A request in flight: its deadline, its slot, and whether its answer is committed to the
/// audit write.
#[derive(Clone)]
struct InFlight(Arc<InFlightState>);

struct InFlightState {
    deadline: tokio::time::Instant,
    slot: parking_lot::Mutex<Option<OwnedSemaphorePermit>>,
    committed: AtomicBool,
}

impl InFlight {
    /// The decision is queued: from now on the request timeout does not cut the request, and
    /// its slot is free for the next one.
    fn commit(&self) {
        self.0.committed.store(true, Ordering::Release);
        self.0.slot.lock().take();
    }

    fn committed(&self) -> bool {
        self.0.committed.load(Ordering::Acquire)
    }

    /// What is left of the request's time.
    fn left(&self) -> Duration {
        self.0
            .deadline
            .saturating_duration_since(tokio::time::Instant::now())
    }
}

/// The metrics port: `GET /metrics` in Prometheus text format.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn validate(
    State(state): State<Arc<AppState>>,
    Extension(in_flight): Extension<InFlight>,
    identity: Option<Extension<PeerIdentity>>,
    DeclaresJson(declares_json): DeclaresJson,
    body: Result<Budgeted, (StatusCode, String)>,
) -> Response {
    let started = Instant::now();
    let identity = identity.map(|Extension(id)| id);
    let verified = identity.as_ref().is_some_and(PeerIdentity::verified);
    if let Some(refused) = refused_caller_or_type(&state, verified, declares_json) {
        return refused;
    }
    let body = match body {
        Ok(body) => body,
        Err((status, message)) => return reject(&state, status, message),
    };
    let now = state.clock.now();
    let windows = state.windows.load();
    let mut reviewed = match review(&body.bytes, &windows, &state.policy, now) {
        Ok(reviewed) => reviewed,
        Err(error) => return reject(&state, StatusCode::BAD_REQUEST, error.to_string()),
    };
    let json = match reviewed.response_json() {
        Ok(json) => json,
        Err(error) => {
            let message = format!("cannot write the AdmissionReview response: {error}");
            return reject(&state, StatusCode::INTERNAL_SERVER_ERROR, message);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let caller = match &identity {
        Some(identity) => identity.caller(),
        None => "unverified (no peer address)".to_owned(),
    };
    let queued = state.audit.append(|out| {
        audit::write_line(
            out,
            &reviewed.request,
            &reviewed.decision,
            &caller,
            now,
            seconds,
        );
    });
    let uid = std::mem::take(&mut reviewed.request.uid);
    let queued = match queued {
        Ok(queued) => queued,
        Err(unavailable) => return unrecorded(&state, &uid, &unavailable.to_string()),
    };
    in_flight.commit();
    // The body's share of the budget goes back now; the decision waits for its audit write.
    drop((body, windows));
    if let Err(answer) = recorded(&state, &in_flight, queued, &uid).await {
        return answer;
    }
    // Counted and told only once it stands: a decision answered with an error (its record
    // could not be written) moves no metric and sends no Event or notice. Anyone who reaches
    // the port can send a made-up review: only the API server's (or an accepted) caller may
    // make fluxgate publish Events or count a bypass.
    let trusted = verified || state.accept_unverified;
    state
        .metrics
        .record_decision(&reviewed.request, &reviewed.decision, seconds, trusted);
    let notifiers = state.events.iter().chain(&state.notices);
    for notifier in notifiers.filter(|_| trusted) {
        notifier.notify(&reviewed.request, &reviewed.decision, now);
    }
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// A request refused before its review is read: a caller without the certificate
/// `--client-ca` requires, or a body that is not declared JSON.
fn refused_caller_or_type(
    state: &AppState,
    verified: bool,
    declares_json: bool,
) -> Option<Response> {
    if state.require_client_cert && !verified {
        let message = "a client certificate signed by --client-ca is required".to_owned();
        return Some(reject(state, StatusCode::UNAUTHORIZED, message));
    }
    let message = "content type must be application/json";
    (!declares_json).then(|| reject(state, StatusCode::UNSUPPORTED_MEDIA_TYPE, message.into()))
}

/// Waits for a decision's audit record: the request is answered as the record goes, 200 once
/// it is written, an error only while it can never be (a decision that cannot be recorded does
/// not stand; the API server fails closed). A line the writer has not taken within the stall
/// bound, or by the request's deadline, is taken back. A line it has taken is in a write that
/// may still succeed, so only that write's outcome may answer, however long it takes (a stuck
/// write holds one batch of requests; later ones are refused at once, `Unavailable::Stuck`).
async fn recorded(
    state: &AppState,
    in_flight: &InFlight,
    queued: Queued,
    uid: &str,
) -> Result<(), Response> {
    let stall = state.audit.stall_bound();
    let left = in_flight.left();
    let written = match tokio::time::timeout(stall.min(left), queued.wait()).await {
        Ok(written) => written,
        Err(_) => match queued.cancel() {
            true if left < stall => return Err(timed_out()),
            true => Err(std::io::Error::other(format!(
                "the audit log did not take the record within {stall:?}; it will not be written"
            ))),
            false => queued.wait().await,
        },
    };
    written.map_err(|error| unrecorded(state, uid, &error.to_string()))
}

/// The answer when the audit record of a decision cannot be written: 503, counted.
fn unrecorded(state: &AppState, uid: &str, error: &str) -> Response {
    state.metrics.record_audit_error();
    tracing::error!(%error, %uid, "cannot write audit record; answering with an error");
    let message = format!(
        "cannot write the audit record of this review ({error}); not answering without one"
    );
    reject(state, StatusCode::SERVICE_UNAVAILABLE, message)
}

/// The bytes of request bodies held at once, `bytes` in all: one peer (a pod holding large
/// bodies open) may hold at most half, and at least one largest body, so the API server always
/// has the rest.
fn body_budget(bytes: usize) -> PeerLimit {
    PeerLimit::new(bytes, (bytes / 2).max(MAX_BODY_BYTES))
}

/// An AdmissionReview's body, read once its bytes fit in [`AppState::body_budget`]; the share
/// goes back when this drops. A body of unknown length (chunked) is charged the maximum.
struct Budgeted {
    bytes: Bytes,
    _share: Share,
}

impl FromRequest<Arc<AppState>> for Budgeted {
    type Rejection = (StatusCode, String);

    async fn from_request(
        request: Request,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        use futures_util::StreamExt;
        let too_large = || {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("AdmissionReview larger than {MAX_BODY_BYTES} bytes"),
            )
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            discard(request.into_body().into_data_stream());
            return Err(too_large());
        }
        let charge = declared.map_or(MAX_BODY_BYTES, |n| n as usize).max(1);
        // Waits for its share (within the request timeout): a burst of large bodies is read
        // a few at a time instead of all at once.
        let peer = request
            .extensions()
            .get::<PeerIdentity>()
            .map(|identity| identity.address.ip());
        let share = state
            .body_budget
            .take(peer, charge as u32)
            .await
            .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "shutting down".to_owned()))?;
        let mut body = request.into_body().into_data_stream();
        let mut bytes = Vec::with_capacity(declared.map_or(64 * 1024, |n| n as usize));
        while let Some(data) = body.next().await {
            let data = data.map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                )
            })?;
            if bytes.len() + data.len() > MAX_BODY_BYTES {
                discard(body);
                return Err(too_large());
            }
            bytes.extend_from_slice(&data);
        }
        Ok(Budgeted {
            bytes: Bytes::from(bytes),
            _share: share,
        })
    }
}

/// How much of a refused body is read and thrown away after its 413 (twice the limit: a 9 MiB
/// body is read whole), and for how long (a request's default timeout).
const DISCARD_BYTES: usize = 2 * MAX_BODY_BYTES;
const DISCARD_TIME: Duration = Duration::from_secs(5);

/// Reads what is left of a body refused as too large and drops it, on a task of its own so the
/// 413 goes out at once. Left unread, the body cost the client its answer: HTTP/1 closed the
/// connection with data unread, which the kernel answers with a reset that a client still
/// sending (curl, Python's http.client) reports instead of the 413; HTTP/2 reset the stream,
/// which curl reports instead of the response before it. Past either bound the body is
/// dropped, as before.
fn discard(mut body: axum::body::BodyDataStream) {
    use futures_util::StreamExt;
    tokio::spawn(async move {
        let mut left = DISCARD_BYTES;
        let read = async {
            while let Some(Ok(data)) = body.next().await {
                left = left.saturating_sub(data.len());
                if left == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DISCARD_TIME, read).await;
    });
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

/// Not ready before start, from shutdown on, until the windows are known, and while the audit
/// log is stuck: a replica that cannot record decisions should get no traffic.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if let Some(stuck) = state.audit.stalled() {
        let text = format!("not ready: the audit log has not taken a write for {stuck:?}\n");
        return (StatusCode::SERVICE_UNAVAILABLE, text).into_response();
    }
    if state.ready.load(Ordering::Acquire) && state.windows.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

/// Encoded on a blocking thread: evaluating a window whose cached state has run out can walk
/// thousands of schedule changes, which must not hold an async worker.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let encoded = tokio::task::spawn_blocking(move || {
        state
            .metrics
            .encode(&state.windows.load(), state.clock.now())
    })
    .await;
    let Ok(text) = encoded else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response();
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
