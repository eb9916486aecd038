//! The HTTP surface without a socket: the real `Router`, driven with `oneshot`, with an
//! in-memory audit sink and a fixed clock.

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Utc};
use fluxgate::audit_log::MemorySink;
use fluxgate::clock::Clock;
use fluxgate::server::{AppState, Limits, MAX_BODY_BYTES, Settings, metrics_router, router};
use fluxgate::windows::load_windows;
use fluxgate_core::policy::{Policy, Reason};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/admission");

/// Friday 13:00 in Berlin: business-hours closed.
fn friday() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn setup() -> (Arc<AppState>, Arc<MemorySink>, axum::Router) {
    let audit = Arc::new(MemorySink::default());
    let state = Arc::new(AppState::new(Settings {
        clock: Clock::fixed(friday()),
        ..Settings::new(load_windows(&[]).unwrap(), Policy::default(), audit.clone())
    }));
    let limits = Limits {
        request_timeout: Duration::from_secs(5),
        max_concurrent_requests: 16,
    };
    let app = router(state.clone(), &limits);
    (state, audit, app)
}

async fn post(app: &axum::Router, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let request = Request::post("/validate")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

#[tokio::test]
async fn decisions_echo_uid_and_write_one_audit_record_each() {
    let (_, audit, app) = setup();
    let cases = [
        (
            "flux-dryrun-image-bump-deployment.json",
            false,
            Reason::WindowClosed,
        ),
        ("flux-dryrun-unchanged-deployment.json", true, Reason::NoOp),
        ("flux-create-configmap-rt.json", true, Reason::NotGoverned),
        ("human-patch-deployment.json", true, Reason::NotFlux),
        ("flux-prune-deployment.json", false, Reason::WindowClosed),
        (
            "flux-create-reconciliationwindow.json",
            true,
            Reason::ValidWindow,
        ),
    ];
    for (name, allowed, reason) in cases {
        let body = fixture(name);
        let uid = serde_json::from_slice::<Value>(&body).unwrap()["request"]["uid"].clone();
        let (status, review) = post(&app, "application/json", body).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(review["response"]["uid"], uid, "{name}");
        assert_eq!(review["response"]["allowed"], allowed, "{name}");
        assert_eq!(
            review["response"]["auditAnnotations"]["reason"],
            reason.as_str(),
            "{name}"
        );
    }
    let records = audit.records();
    assert_eq!(records.len(), cases.len());
    for (record, (_, allowed, reason)) in records.iter().zip(cases) {
        assert_eq!(record.reason, reason);
        assert_eq!(
            record.decision,
            fluxgate_core::audit::AuditDecision::of(allowed)
        );
        assert_eq!(record.time, friday());
        assert!(record.duration_seconds > 0.0);
    }
    let bump = &records[0];
    assert_eq!(bump.uid, "382e71b4-420a-484a-9200-d062f988c348");
    assert!(bump.dry_run);
    assert_eq!(bump.operation, kube::core::admission::Operation::Update);
    assert_eq!(
        bump.user,
        "system:serviceaccount:flux-system:kustomize-controller"
    );
    assert_eq!(bump.field_manager.as_deref(), Some("kustomize-controller"));
    assert_eq!(
        (
            bump.group.as_str(),
            bump.version.as_str(),
            bump.kind.as_str()
        ),
        ("apps", "v1", "Deployment")
    );
    assert_eq!(
        (bump.namespace.as_deref(), bump.name.as_str()),
        (Some("nginx"), "nginx")
    );
    assert_eq!(bump.mode.as_deref(), Some("rw"));
    let owner = bump.owner.as_ref().unwrap();
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Kustomization", "apps-rw")
    );
    assert_eq!(bump.windows.len(), 1);
    assert_eq!(
        bump.windows[0].next.as_deref(),
        Some("2026-11-30T08:00:00+01:00")
    );
    assert!(!bump.windows[0].open);
    // The prune has no field manager.
    assert_eq!(records[4].field_manager, None);
}

#[tokio::test]
async fn metrics_count_decisions_by_reason() {
    let (state, _, app) = setup();
    for _ in 0..3 {
        post(
            &app,
            "application/json",
            fixture("flux-dryrun-image-bump-deployment.json"),
        )
        .await;
    }
    post(
        &app,
        "application/json",
        fixture("human-patch-deployment.json"),
    )
    .await;
    post(&app, "text/plain", fixture("human-patch-deployment.json")).await;
    let response = metrics_router(state)
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    let expect = [
        "fluxgate_admission_requests_total{decision=\"deny\",reason=\"window-closed\",operation=\"UPDATE\",dry_run=\"true\"} 3",
        "fluxgate_window_denials_total{window=\"business-hours\"} 3",
        "fluxgate_admission_requests_total{decision=\"allow\",reason=\"not-flux\",operation=\"UPDATE\",dry_run=\"false\"} 1",
        "fluxgate_admission_duration_seconds_count 4",
        "fluxgate_http_rejected_requests_total{code=\"415\"} 1",
        "fluxgate_window_open{window=\"business-hours\"} 0",
        "fluxgate_window_open{window=\"default\"} 1",
        "fluxgate_windows_loaded 3",
    ];
    for line in expect {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_no_audit_record() {
    let (_, audit, app) = setup();
    let (status, body) = post(&app, "text/plain", fixture("human-patch-deployment.json")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["error"], "content type must be application/json");

    let (status, body) = post(
        &app,
        "application/json",
        b"{\"apiVersion\": \"admission.k8s.io/v1\", garbage".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("not an AdmissionReview"),
        "{body}"
    );

    let (status, body) = post(&app, "application/json", vec![b' '; MAX_BODY_BYTES + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body["error"].as_str().unwrap().contains("larger than"),
        "{body}"
    );

    let (status, _) = post(
        &app,
        "application/json; charset=utf-8",
        fixture("human-patch-deployment.json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        audit.records().len(),
        1,
        "only the decided request is audited"
    );
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_decided() {
    let (_, _, app) = setup();
    // A ConfigMap with a large data blob: the biggest objects the API server stores are ~1.5 MiB,
    // and an UPDATE carries two of them.
    let mut review: Value =
        serde_json::from_slice(&fixture("flux-create-configmap-rt.json")).unwrap();
    review["request"]["object"]["data"]["blob"] =
        Value::String("x".repeat(MAX_BODY_BYTES - 10_000));
    let body = serde_json::to_vec(&review).unwrap();
    assert!(body.len() < MAX_BODY_BYTES);
    let (status, response) = post(&app, "application/json", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response["response"]["allowed"], true);
}

#[tokio::test]
async fn health_and_readiness() {
    let (state, _, app) = setup();
    let get = |path: &'static str| {
        let app = app.clone();
        async move {
            app.oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(get("/healthz").await, StatusCode::OK);
    assert_eq!(get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
    state.set_ready(true);
    assert_eq!(get("/readyz").await, StatusCode::OK);
    assert_eq!(get("/validate").await, StatusCode::METHOD_NOT_ALLOWED);
}
