//! `serve --windows-from-cluster`'s watch, against a local **fake API server** that speaks the
//! Kubernetes list/watch protocol for ReconciliationWindows (a real cluster is not available
//! here). Also Events, which the same fake receives.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Uri;
use axum::routing::{get, post};
use fluxgate::audit_log::MemorySink;
use fluxgate::clock::Clock;
use fluxgate::cluster::events::EventPublisher;
use fluxgate::cluster::watch::watch_windows;
use fluxgate::server::{AppState, Limits, Settings, router};
use fluxgate_core::policy::Policy;
use fluxgate_core::window::WindowSet;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tower::ServiceExt;

fn window(name: &str, rv: &str, start: &str) -> Value {
    json!({
        "apiVersion": "fluxgate.io/v1alpha1",
        "kind": "ReconciliationWindow",
        "metadata": {"name": name, "resourceVersion": rv, "uid": format!("uid-{name}")},
        "spec": {"schedules": [{"start": start, "duration": "2m"}]}
    })
}

/// The fake API server's state: the initial list, the watch event feed, and received Events.
struct Fake {
    list: Vec<Value>,
    watch: Mutex<Option<mpsc::UnboundedReceiver<Value>>>,
    events: Mutex<Vec<Value>>,
}

async fn windows(State(fake): State<Arc<Fake>>, uri: Uri) -> axum::response::Response {
    let watching = uri
        .query()
        .unwrap_or("")
        .split('&')
        .any(|p| p == "watch=true");
    if !watching {
        let list = json!({
            "apiVersion": "fluxgate.io/v1alpha1",
            "kind": "ReconciliationWindowList",
            "metadata": {"resourceVersion": "10"},
            "items": fake.list,
        });
        return axum::Json(list).into_response();
    }
    // The first watch gets the test's event feed; reconnects get a stream that stays open.
    let feed = fake.watch.lock().unwrap().take();
    let stream = async_stream(feed);
    axum::response::Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn async_stream(
    feed: Option<mpsc::UnboundedReceiver<Value>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::unfold(feed, |feed| async move {
        match feed {
            Some(mut rx) => {
                let event = rx.recv().await?;
                let mut line = serde_json::to_vec(&event).unwrap();
                line.push(b'\n');
                Some((Ok(line), Some(rx)))
            }
            None => {
                std::future::pending::<()>().await;
                None
            }
        }
    })
}

async fn create_event(
    State(fake): State<Arc<Fake>>,
    axum::Json(event): axum::Json<Value>,
) -> axum::response::Response {
    fake.events.lock().unwrap().push(event.clone());
    (axum::http::StatusCode::CREATED, axum::Json(event)).into_response()
}

use axum::response::IntoResponse;

async fn start_fake(
    list: Vec<Value>,
) -> (
    String,
    Arc<Fake>,
    mpsc::UnboundedSender<Value>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let fake = Arc::new(Fake {
        list,
        watch: Mutex::new(Some(rx)),
        events: Mutex::default(),
    });
    let app = Router::new()
        .route(
            "/apis/fluxgate.io/v1alpha1/reconciliationwindows",
            get(windows),
        )
        .route(
            "/apis/events.k8s.io/v1/namespaces/{namespace}/events",
            post(create_event),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, fake, tx, server)
}

fn client(url: &str) -> kube::Client {
    kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap()
}

fn state() -> Arc<AppState> {
    let state = AppState::new(Settings::new(
        WindowSet::default(),
        Policy::default(),
        Arc::new(MemorySink::default()),
    ));
    state.windows().reset();
    Arc::new(state)
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The window watch of `state`, against the fake at `url`.
fn watch(url: &str, state: &AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(watch_windows(
        client(url),
        state.windows().clone(),
        None,
        state.clock().clone(),
    ))
}

fn names(state: &AppState) -> Vec<String> {
    state.windows().load().names().map(str::to_owned).collect()
}

#[tokio::test]
async fn windows_follow_the_cluster_and_the_last_good_set_survives_the_api_going_away() {
    let (url, _fake, feed, server) = start_fake(vec![
        window("business-hours", "5", "0 8 * * *"),
        window("nightly", "6", "0 22 * * *"),
    ])
    .await;
    let state = state();
    assert!(!state.windows().is_ready());
    let watch = watch(&url, &state);

    eventually("the first list", || state.windows().is_ready()).await;
    assert_eq!(names(&state), ["business-hours", "nightly"]);

    feed.send(json!({"type": "ADDED", "object": window("weekend", "11", "0 0 * * SAT")}))
        .unwrap();
    eventually("the added window", || {
        names(&state).contains(&"weekend".to_owned())
    })
    .await;

    feed.send(json!({"type": "DELETED", "object": window("nightly", "12", "0 22 * * *")}))
        .unwrap();
    eventually("the deleted window", || {
        !names(&state).contains(&"nightly".to_owned())
    })
    .await;

    // An invalid version (written while the webhook was down) keeps the last good one.
    feed.send(json!({"type": "MODIFIED", "object": window("weekend", "13", "0 25 * * SAT")}))
        .unwrap();
    feed.send(json!({"type": "ADDED", "object": window("marker", "14", "0 1 * * *")}))
        .unwrap();
    eventually("the marker window", || {
        names(&state).contains(&"marker".to_owned())
    })
    .await;
    assert_eq!(names(&state), ["business-hours", "marker", "weekend"]);

    // The API server goes away: decisions keep using the last good set.
    server.abort();
    drop(feed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(names(&state), ["business-hours", "marker", "weekend"]);
    assert!(state.windows().is_ready());
    watch.abort();
}

/// The status of `GET /readyz`, as the kubelet's probe gets it.
async fn readyz(app: &axum::Router) -> axum::http::StatusCode {
    app.clone()
        .oneshot(
            axum::http::Request::get("/readyz")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn readiness_waits_for_the_first_complete_list() {
    let state = state();
    state.set_ready(true);
    let limits = Limits {
        request_timeout: Duration::from_secs(5),
        max_concurrent_requests: 4,
    };
    let app = router(state.clone(), &limits);
    let readyz = || readyz(&app);
    assert_eq!(readyz().await, 503);
    let (url, _fake, _feed, _server) =
        start_fake(vec![window("business-hours", "5", "0 8 * * *")]).await;
    let watch = watch(&url, &state);
    eventually("the first list", || state.windows().is_ready()).await;
    assert_eq!(readyz().await, 200);
    watch.abort();
}

/// A server state whose Events go to `url`, on Friday (business-hours closed), and its router.
fn events_app(url: &str) -> (Arc<AppState>, Router) {
    // The router is driven without a socket, so no caller is verified: accept them, as
    // `--accept-unverified-callers` does.
    events_app_accepting(url, true)
}

fn events_app_accepting(url: &str, accept_unverified: bool) -> (Arc<AppState>, Router) {
    let windows = fluxgate::windows::load_windows(&[]).unwrap();
    let settings = Settings::new(windows, Policy::default(), Arc::new(MemorySink::default()));
    let events = EventPublisher::spawn(
        client(url),
        "fluxgate".into(),
        settings.metrics.event_counters(),
    );
    let state = Arc::new(AppState::new(Settings {
        accept_unverified,
        clock: Clock::fixed(
            chrono::DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
                .unwrap()
                .to_utc(),
        ),
        events: Some(Arc::new(events)),
        ..settings
    }));
    let limits = Limits {
        request_timeout: Duration::from_secs(5),
        max_concurrent_requests: 4,
    };
    let app = router(state.clone(), &limits);
    (state, app)
}

/// Flux's real (not dry-run) image bump, denied on Friday.
async fn post_closed_real_update(app: &Router) -> axum::response::Response {
    let mut review: Value = serde_json::from_str(include_str!(
        "fixtures/admission/flux-dryrun-image-bump-deployment.json"
    ))
    .unwrap();
    review["request"]["dryRun"] = json!(false);
    let request = axum::http::Request::post("/validate")
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&review).unwrap()))
        .unwrap();
    app.clone().oneshot(request).await.unwrap()
}

#[tokio::test]
async fn denials_and_bypasses_become_events_without_changing_decisions() {
    let (url, fake, _feed, _server) = start_fake(vec![]).await;
    let (_state, app) = events_app(&url);

    let response = post_closed_real_update(&app).await;
    assert_eq!(response.status(), 200);
    eventually("the Event", || !fake.events.lock().unwrap().is_empty()).await;
    let event = fake.events.lock().unwrap()[0].clone();
    assert_eq!(event["reason"], "ReconciliationWindowClosed");
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["regarding"]["kind"], "Deployment");
    assert_eq!(event["regarding"]["namespace"], "nginx");
    assert_eq!(event["reportingController"], "fluxgate");
    assert!(event["note"].as_str().unwrap().contains("business-hours"));
}

/// A caller without a verified certificate (anyone who reaches the port, unless the operator
/// accepts them) gets its answer, but makes fluxgate publish nothing.
#[tokio::test]
async fn an_unverified_caller_publishes_no_event() {
    let (url, fake, _feed, _server) = start_fake(vec![]).await;
    let (state, app) = events_app_accepting(&url, false);
    let response = post_closed_real_update(&app).await;
    assert_eq!(response.status(), 200);
    // What the accepted caller's denial published within this time in the test above.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(fake.events.lock().unwrap().is_empty());
    let text = state
        .metrics()
        .encode(&state.windows().load(), state.clock().now());
    assert!(
        !text.contains("fluxgate_events_total{result=\"published\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn an_unreachable_events_api_never_changes_a_decision() {
    // Nothing listens on this port.
    let url = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (state, app) = events_app(&url);
    let response = post_closed_real_update(&app).await;
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let review: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(review["response"]["allowed"], false);
    assert_eq!(review["response"]["status"]["code"], 403);
    let metrics_text = state
        .metrics()
        .encode(&state.windows().load(), state.clock().now());
    let failed = "fluxgate_events_total{result=\"failed\"} 1";
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = metrics_text;
    while !text.lines().any(|l| l == failed) {
        assert!(
            Instant::now() < deadline,
            "no failed Event counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = state
            .metrics()
            .encode(&state.windows().load(), state.clock().now());
    }
}

/// A window that is closed but for one override from an hour ago, `hours` long.
fn overridden(name: &str, rv: &str, hours: i64) -> Value {
    let start = chrono::Utc::now() - chrono::Duration::hours(1);
    let end = start + chrono::Duration::hours(hours);
    let mut object = window(name, rv, "0 0 1 1 *");
    object["spec"]["overrides"] = json!([{
        "start": start.to_rfc3339(), "end": end.to_rfc3339(), "reason": "release"
    }]);
    object
}

/// One series of the state's metrics (`name{labels}`), if exported.
fn metric(state: &AppState, series: &str) -> Option<String> {
    let text = state
        .metrics()
        .encode(&state.windows().load(), chrono::Utc::now());
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
}

/// Issue 21, item 10: an override longer than `--max-override` is refused from the cluster as
/// from a file (counted, `config_valid` 0), rather than put in force and ignored decision by
/// decision. In the cluster each object is its own unit: a new window with one stays out, a
/// window that gains one keeps its last good version, and the other windows still change.
#[tokio::test]
async fn an_override_longer_than_max_override_is_refused_from_the_cluster_as_from_a_file() {
    let (url, _fake, feed, _server) = start_fake(vec![
        window("business-hours", "5", "0 8 * * *"),
        overridden("release", "6", 48),
    ])
    .await;
    let state = state();
    let watch = watch(&url, &state);
    eventually("the first list", || state.windows().is_ready()).await;
    assert_eq!(
        names(&state),
        ["business-hours"],
        "48h > --max-override 24h"
    );
    let failures = "fluxgate_window_reloads_total{result=\"failure\"}";
    assert_eq!(metric(&state, failures).as_deref(), Some("1"));
    assert_eq!(
        metric(&state, "fluxgate_config_valid").as_deref(),
        Some("0")
    );

    // Within the bound: in force, and open by its override.
    feed.send(json!({"type": "MODIFIED", "object": overridden("release", "11", 12)}))
        .unwrap();
    eventually("the 12h override", || {
        names(&state).contains(&"release".to_owned())
    })
    .await;
    let open = |state: &AppState| {
        let windows = state.windows().load();
        windows
            .get("release")
            .unwrap()
            .state_at(chrono::Utc::now())
            .open
    };
    assert!(open(&state));
    assert_eq!(
        metric(&state, "fluxgate_config_valid").as_deref(),
        Some("1")
    );

    // Stretched past the bound: the 12h version stays, while another window still changes.
    feed.send(json!({"type": "MODIFIED", "object": overridden("release", "12", 30)}))
        .unwrap();
    feed.send(json!({"type": "ADDED", "object": window("weekend", "13", "0 0 * * SAT")}))
        .unwrap();
    eventually("the added window", || {
        names(&state).contains(&"weekend".to_owned())
    })
    .await;
    assert!(open(&state), "the last good version, with its 12h override");
    assert_eq!(metric(&state, failures).as_deref(), Some("3"));
    assert_eq!(
        metric(&state, "fluxgate_config_valid").as_deref(),
        Some("0")
    );
    let end = state
        .windows()
        .load()
        .get("release")
        .unwrap()
        .state_at(chrono::Utc::now())
        .next;
    let override_end = chrono::Utc::now() + chrono::Duration::hours(11);
    assert!(
        end.is_some_and(|end| end <= override_end),
        "closes when the 12h override ends: {end:?}"
    );
    watch.abort();
}

/// POSTs an AdmissionReview to `/validate`; the response's `auditAnnotations.reason` and
/// `allowed`.
async fn validate(app: &Router, review: &Value) -> (String, bool) {
    let request = axum::http::Request::post("/validate")
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(review).unwrap()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    let response = &answer["response"];
    (
        response["auditAnnotations"]["reason"]
            .as_str()
            .unwrap()
            .to_string(),
        response["allowed"].as_bool().unwrap(),
    )
}

/// The install order of deploy/README.md against a cluster that has the CRD and no window yet,
/// with the installed server's policy (`tests/install.rs` checks that the rendered Deployment's
/// flags make `Policy::default()` and watch the cluster's windows):
///
/// 1. the webhook becomes ready on an empty first list, though the `--default-window` does not
///    exist: the windows webhook is `failurePolicy: Fail`, so a server waiting for windows would
///    refuse their creation, and nothing could ever be created (deadlock);
/// 2. creating a window, dry-run (Flux's first step) and real, is admitted with no window in
///    force;
/// 3. an rw object applied before its window exists is denied `unknown-window`, which is why the
///    labels come last; once the window is in force, it never is.
#[tokio::test]
async fn the_install_order_admits_windows_before_any_exists_and_then_their_rw_objects() {
    let state = state();
    let limits = Limits {
        request_timeout: Duration::from_secs(5),
        max_concurrent_requests: 4,
    };
    let app = router(state.clone(), &limits);
    let readyz = || readyz(&app);
    // The listener is up (serve sets it then); readiness now waits for the windows alone.
    state.set_ready(true);
    assert_eq!(Policy::default().default_window, "default");
    let (url, _fake, feed, _server) = start_fake(vec![]).await;
    let watch = watch(&url, &state);
    eventually("the first, empty, list", || state.windows().is_ready()).await;
    assert_eq!(
        readyz().await,
        200,
        "ready with zero windows and no default"
    );
    assert!(names(&state).is_empty());

    let window_review: Value = serde_json::from_str(include_str!(
        "fixtures/admission/flux-create-reconciliationwindow.json"
    ))
    .unwrap();
    for dry_run in [true, false] {
        let mut review = window_review.clone();
        review["request"]["dryRun"] = json!(dry_run);
        assert_eq!(
            validate(&app, &review).await,
            ("valid-window".to_string(), true),
            "creating business-hours, dryRun {dry_run}, before any window exists"
        );
    }

    let rw: Value = serde_json::from_str(include_str!(
        "fixtures/admission/flux-create-deployment-rw.json"
    ))
    .unwrap();
    assert_eq!(
        validate(&app, &rw).await,
        ("unknown-window".to_string(), false),
        "labelled before its window exists"
    );

    // The window the API server stored, as its watch delivers it.
    let mut stored = window_review["request"]["object"].clone();
    stored["metadata"]["resourceVersion"] = json!("11");
    stored["metadata"]["uid"] = json!("uid-business-hours");
    feed.send(json!({"type": "ADDED", "object": stored}))
        .unwrap();
    eventually("the window in force", || {
        names(&state) == ["business-hours"]
    })
    .await;
    let (reason, _) = validate(&app, &rw).await;
    assert!(
        reason == "window-open" || reason == "window-closed",
        "the rw object once its window exists: {reason}"
    );
    watch.abort();
}
