//! `serve --notification-url`: notices at a fake of Flux's notification-controller that checks
//! each request as the real one reads it, driven by the built binary against a fake API server
//! (a real dry-run denial over TLS, a real opening of a short window), with two replicas and a
//! restart between them.

mod common;
#[path = "common/fake_api.rs"]
mod fake_api;
#[path = "common/fake_notification_controller.rs"]
mod fake_notification_controller;

use chrono::{DateTime, SecondsFormat, Utc};
use common::{Scratch, Server};
use fake_api::Fake;
use fake_notification_controller::FakeNotificationController;
use fluxgate_core::window::parse_documents;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tower::ServiceExt;

const KUSTOMIZATIONS: &str = "kustomize.toolkit.fluxcd.io/v1/kustomizations";
const RECORDED: &str = include_str!("fixtures/notification/waiting-apps-rw.json");
const LANDING: &str = include_str!("fixtures/notification/landing-apps-rw.json");
const DRY_RUN: &str = include_str!("fixtures/admission/flux-dryrun-image-bump-deployment.json");

fn seconds(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The example windows, with `business-hours` closed now and opened by an override at `opens`
/// for an hour: a real opening a few seconds away.
fn put_windows(fake: &Fake, opens: DateTime<Utc>) {
    let yaml = include_str!("../deploy/examples/windows.yaml");
    for document in parse_documents("windows.yaml", yaml).unwrap() {
        let mut object = serde_json::to_value(&document.object).unwrap();
        let name = document.object.metadata.name.clone().unwrap();
        if name == "business-hours" {
            object["spec"] = json!({
                "description": "Closed but for the test's opening",
                "timeZone": "UTC",
                "schedules": [{"start": "0 0 1 1 *", "duration": "1m"}],
                "overrides": [{
                    "start": seconds(opens),
                    "end": seconds(opens + chrono::Duration::hours(1)),
                    "reason": "the test's opening",
                }],
            });
        }
        object["metadata"]["generation"] = json!(1);
        object["metadata"]["uid"] = json!(format!("uid-{name}"));
        fake.put(object);
    }
}

/// Kustomization apps-rw as kustomize-controller leaves it after the last applied revision.
fn ready_kustomization() -> Value {
    let path = format!(
        "{}/kustomization-apps-rw-denied.json",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/flux")
    );
    let mut object: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ready = &mut object["status"]["conditions"][0];
    ready["status"] = json!("True");
    ready["reason"] = json!("ReconciliationSucceeded");
    ready["message"] =
        json!("Applied revision: main@sha1:1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b");
    object
}

/// What kustomize-controller writes after a dry-run denied: the API server's text in Ready.
fn record_denial(fake: &Fake, message: &str) {
    let mut object = fake.get(KUSTOMIZATIONS, "flux-system", "apps-rw").unwrap();
    let ready = &mut object["status"]["conditions"][0];
    ready["status"] = json!("False");
    ready["reason"] = json!("ReconciliationFailed");
    ready["lastTransitionTime"] = json!(seconds(Utc::now()));
    ready["message"] = json!(format!(
        "Deployment/nginx/nginx dry-run failed (Forbidden): admission webhook \
         \"fluxgate.fluxgate.io\" denied the request: {message}"
    ));
    fake.put(object);
}

/// A replica: windows and owners from the fake API, notices to the fake controller.
async fn replica(kubeconfig: &str, notifications: &str, pod: &str) -> (Scratch, Server) {
    let dir = Scratch::new(&format!("notify-{pod}"));
    let args = [
        "--windows-from-cluster",
        "--reconcile-on-open",
        "--events",
        "--notification-url",
        notifications,
        // The test's client presents no certificate, as deploy/base's callers do.
        "--accept-unverified-callers",
    ];
    let env = [("KUBECONFIG", kubeconfig), ("POD_NAME", pod)];
    let server = Server::start_with_env(&dir, &args, &env).await;
    (dir, server)
}

/// Flux's dry-run of the seed's image bump, sent to `server`: denied.
async fn dry_run(server: &Server, attempt: &str) -> String {
    let mut review: Value = serde_json::from_str(DRY_RUN).unwrap();
    review["request"]["uid"] = json!(format!("dry-run-{attempt}"));
    let response = server.validate(&serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(response.status, 200, "{}", server.log());
    let answer = response.json();
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    answer["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn until(what: &str, timeout: Duration, check: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_seeds_commit_waits_once_and_lands_once_across_two_replicas_and_a_restart() {
    let api = Fake::default();
    // Far enough for three replicas to start and Flux to retry on each; a real opening.
    let started = Utc::now();
    let opens = DateTime::from_timestamp(started.timestamp() + 15, 0).unwrap();
    put_windows(&api, opens);
    api.put(ready_kustomization());
    let api_url = api.serve().await;
    let controller = FakeNotificationController::default();
    let controller_url = controller.serve().await;
    let kubeconfig = fake_api::Kubeconfig::new(&api_url, "me");
    let config = kubeconfig.0.to_str().unwrap().to_owned();

    let (_a_dir, a) = replica(&config, &controller_url, "fluxgate-a").await;
    let (_b_dir, b) = replica(&config, &controller_url, "fluxgate-b").await;

    // kustomize-controller's dry-run reaches replica A: denied, and one waiting notice.
    let message = dry_run(&a, "1").await;
    let denied = Utc::now();
    until("the waiting notice", Duration::from_secs(10), || {
        !controller.posts().is_empty()
    })
    .await;
    let posts = controller.posts();
    assert_eq!(
        (posts[0].method.as_str(), posts[0].path.as_str()),
        ("POST", "/")
    );
    assert_eq!(posts[0].content_type, "application/json");
    assert_eq!(posts[0].status, 202, "{:?}", posts[0].error);
    let waiting = &posts[0].body;
    // The shape of the recorded example; the values of this run.
    let recorded: Value = serde_json::from_str(RECORDED).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(waiting), keys(&recorded));
    assert_eq!(keys(&waiting["metadata"]), keys(&recorded["metadata"]));
    assert_eq!(
        keys(&waiting["involvedObject"]),
        keys(&recorded["involvedObject"])
    );
    for field in ["severity", "reason", "reportingController"] {
        assert_eq!(waiting[field], recorded[field], "{field}");
    }
    assert_eq!(waiting["reportingInstance"], "fluxgate-a");
    assert_eq!(waiting["message"], message.as_str());
    let owner = api.get(KUSTOMIZATIONS, "flux-system", "apps-rw").unwrap();
    assert_eq!(
        waiting["involvedObject"]["uid"], owner["metadata"]["uid"],
        "the Flux owner, read when the notice was claimed"
    );
    for field in ["apiVersion", "kind", "namespace", "name"] {
        assert_eq!(
            waiting["involvedObject"][field],
            recorded["involvedObject"][field]
        );
    }
    let metadata = &waiting["metadata"];
    assert_eq!(
        metadata["kustomize.toolkit.fluxcd.io/opens"],
        seconds(opens)
    );
    assert_eq!(
        metadata["kustomize.toolkit.fluxcd.io/windows"],
        "business-hours"
    );
    let token = metadata["kustomize.toolkit.fluxcd.io/token"]
        .as_str()
        .unwrap();
    assert_eq!(
        owner["metadata"]["annotations"]["fluxgate.io/notified"], token,
        "claimed on the owner"
    );

    // kustomize-controller records the denial, and retries on the other replica, and again.
    record_denial(&api, &message);
    dry_run(&b, "2").await;
    dry_run(&a, "3").await;
    // Replica A restarts (a rollout) and gets the next retry.
    drop(a);
    let (_c_dir, c) = replica(&config, &controller_url, "fluxgate-a2").await;
    dry_run(&c, "4").await;
    assert!(
        Utc::now() < opens,
        "the retries ran past the opening; the test's timing needs a later opening"
    );

    // The opening: one replica asks Flux to reconcile, and sends the landing notice.
    until("the landing notice", Duration::from_secs(40), || {
        controller.posts().len() >= 2
    })
    .await;
    // Time for a second replica's notice, had it sent one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let posts = controller.posts();
    let summary: Vec<(u16, String)> = posts
        .iter()
        .map(|p| {
            (
                p.status,
                p.body["reason"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (202, "ReconciliationWindowClosed".to_owned()),
            (202, "ReconcileRequested".to_owned())
        ],
        "{posts:#?}"
    );
    let landing = &posts[1].body;
    let recorded: Value = serde_json::from_str(LANDING).unwrap();
    assert_eq!(keys(landing), keys(&recorded));
    assert_eq!(keys(&landing["metadata"]), keys(&recorded["metadata"]));
    assert_eq!(
        keys(&landing["involvedObject"]),
        keys(&recorded["involvedObject"])
    );
    assert_eq!(landing["severity"], "info");
    for field in ["apiVersion", "kind", "namespace", "name"] {
        assert_eq!(
            landing["involvedObject"][field],
            recorded["involvedObject"][field]
        );
    }
    assert_eq!(
        landing["message"],
        format!(
            "reconciliation window \"business-hours\" opened at {opens}: asked Kustomization \
             flux-system/apps-rw to reconcile the change fluxgate denied while it was closed \
             (reconcile.fluxcd.io/requestedAt={opens})",
            opens = seconds(opens)
        )
    );
    assert_eq!(
        landing["metadata"]["kustomize.toolkit.fluxcd.io/requestedAt"],
        seconds(opens)
    );
    let owner = api.get(KUSTOMIZATIONS, "flux-system", "apps-rw").unwrap();
    assert_eq!(landing["involvedObject"]["uid"], owner["metadata"]["uid"]);
    assert_eq!(
        owner["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"],
        seconds(opens)
    );
    let sent: f64 = {
        let series = r#"fluxgate_notifications_total{result="published"}"#;
        b.metric(series).await + c.metric(series).await
    };
    assert_eq!(
        sent, 1.0,
        "the replicas still running sent the landing notice between them"
    );
    println!(
        "waiting notice {} ms after the denial; landing notice {} ms after the opening; \
         3 replicas, 4 dry-runs, {} posts",
        (posts[0].at - denied).num_milliseconds(),
        (posts[1].at - opens).num_milliseconds(),
        posts.len(),
    );
}

/// A notice posted straight to the fake, as `fluxgate` would send it.
async fn post_to(controller: &FakeNotificationController, body: &Value) -> u16 {
    let request = axum::http::Request::post("/")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    controller
        .router()
        .oneshot(request)
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_fake_controller_refuses_what_notification_controller_would_lose() {
    let controller = FakeNotificationController::default();
    let recorded: Value = serde_json::from_str(RECORDED).unwrap();
    assert_eq!(post_to(&controller, &recorded).await, 202);
    // The same event again within the rate-limit interval.
    assert_eq!(post_to(&controller, &recorded).await, 429);
    type Breaks = fn(&mut Value);
    let broken: [(&str, Breaks); 6] = [
        ("no Flux kind", |e| {
            e["involvedObject"]["kind"] = json!("Deployment")
        }),
        ("metadata outside the group", |e| {
            e["metadata"]["revision"] = json!("main@sha1:7d2c")
        }),
        ("no reporting controller", |e| {
            e.as_object_mut().unwrap().remove("reportingController");
        }),
        ("trace", |e| e["severity"] = json!("trace")),
        ("a misspelt field", |e| e["involvedObjects"] = json!({})),
        ("not a time", |e| e["timestamp"] = json!("Friday")),
    ];
    for (what, change) in broken {
        let mut event = recorded.clone();
        change(&mut event);
        assert_eq!(post_to(&controller, &event).await, 400, "{what}");
    }
}

/// A server deciding as on Friday (business-hours closed), with no TLS: callers accepted.
fn friday_settings() -> fluxgate::server::Settings {
    use fluxgate::audit_log::MemorySink;
    let windows = fluxgate::windows::load_windows(&[]).unwrap();
    let policy = fluxgate_core::policy::Policy::default();
    let friday = DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
        .unwrap()
        .to_utc();
    fluxgate::server::Settings {
        accept_unverified: true,
        clock: fluxgate::clock::Clock::fixed(friday),
        ..fluxgate::server::Settings::new(
            windows,
            policy,
            std::sync::Arc::new(MemorySink::default()),
        )
    }
}

/// Flux's retries of the seed's dry-run, `reviews` of them, each answered 200; how long they took.
async fn retries(state: std::sync::Arc<fluxgate::server::AppState>, reviews: usize) -> Duration {
    let limits = fluxgate::server::Limits {
        request_timeout: Duration::from_secs(5),
        max_concurrent_requests: 4,
    };
    let app = fluxgate::server::router(state, &limits);
    let started = Instant::now();
    for attempt in 0..reviews {
        let mut review: Value = serde_json::from_str(DRY_RUN).unwrap();
        review["request"]["uid"] = json!(format!("retry-{attempt}"));
        let request = axum::http::Request::post("/validate")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(serde_json::to_vec(&review).unwrap()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200, "review {attempt}");
    }
    started.elapsed()
}

#[tokio::test]
async fn a_dead_notification_controller_costs_the_webhook_nothing_and_drops_are_counted() {
    use fluxgate::cluster::notifications::{Notifications, parse_url};
    use fluxgate::server::{AppState, Settings};
    use std::sync::Arc;

    let api = Fake::default();
    api.put(ready_kustomization());
    // Nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = parse_url(&format!("http://{}/", dead.local_addr().unwrap())).unwrap();
    drop(dead);
    let reviews = 400;
    // The same retries without notices, for the figure printed.
    let without = retries(Arc::new(AppState::new(friday_settings())), reviews).await;
    let settings = friday_settings();
    let notices = Notifications::spawn(
        api.client(),
        url,
        "fluxgate".into(),
        settings.metrics.notification_counters(),
    );
    let state = Arc::new(AppState::new(Settings {
        notices: Some(Arc::new(notices)),
        ..settings
    }));
    // Far more than the queue holds, while the sender retries a dead address.
    let with = retries(state.clone(), reviews).await;
    let metric = |result: &str| -> u64 {
        let text = state
            .metrics()
            .encode(&state.windows().load(), state.clock().now());
        let series = format!("fluxgate_notifications_total{{result=\"{result}\"}}");
        text.lines()
            .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    let dropped = metric("dropped");
    assert!(dropped > 0, "the queue overflowed: {dropped} dropped");
    assert!(dropped < reviews as u64, "{dropped}");
    // The sender gives up after its retries: paused time runs through the backoff (paused only
    // now: the audit writer is a thread, whose waits paused time would cut short).
    tokio::time::pause();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while metric("failed") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the post never failed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric("published"), 0);
    println!(
        "{reviews} reviews answered in {with:?} while notification-controller was down \
         ({without:?} without notices); {dropped} notices dropped, 1 failed"
    );
}

/// The fenced blocks of `lang` in `text`, in order.
fn blocks<'a>(text: &'a str, lang: &str) -> Vec<&'a str> {
    let fence = format!("```{lang}\n");
    text.split(fence.as_str())
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect()
}

#[test]
fn docs_show_the_recorded_event_the_flag_and_an_alert_that_routes_it() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/notifications.md"
    ))
    .unwrap();
    // The sample is the recorded event.
    let json = blocks(&doc, "json");
    assert_eq!(json.len(), 1);
    let shown: Value = serde_json::from_str(json[0]).unwrap();
    let recorded: Value = serde_json::from_str(RECORDED).unwrap();
    assert_eq!(shown, recorded);

    // The flag as deploy/ would pass it, and its environment twin, are the binary's.
    let flag = doc
        .lines()
        .find_map(|l| l.trim().strip_prefix("- --notification-url="))
        .expect("the flag in a Deployment's args");
    assert_eq!(
        flag,
        "http://notification-controller.flux-system.svc.cluster.local./"
    );
    fluxgate::cluster::notifications::parse_url(flag).unwrap();
    let help = common::run_fluxgate(&["serve", "--help"], b"", &[]);
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("--notification-url <URL>"), "{help}");
    assert!(help.contains("[env: FLUXGATE_NOTIFICATION_URL=]"), "{help}");
    assert!(doc.contains("`FLUXGATE_NOTIFICATION_URL`"));

    // The Alert shown routes the recorded event to the Provider shown.
    let yaml = blocks(&doc, "yaml");
    let objects: Vec<Value> = yaml.iter().flat_map(|y| common::documents(y)).collect();
    let of_kind = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in the docs"))
    };
    let (alert, provider) = (of_kind("Alert"), of_kind("Provider"));
    for object in [alert, provider] {
        assert_eq!(
            object["apiVersion"],
            "notification.toolkit.fluxcd.io/v1beta3"
        );
    }
    assert_eq!(
        alert["spec"]["providerRef"]["name"],
        provider["metadata"]["name"]
    );
    assert_eq!(
        alert["metadata"]["namespace"],
        provider["metadata"]["namespace"]
    );
    let involved = &recorded["involvedObject"];
    // As notification-controller matches: kind and namespace (the Alert's by default), name or
    // "*", and any severity when the Alert's is info.
    assert_eq!(alert["spec"]["eventSeverity"], "info");
    let matches = alert["spec"]["eventSources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|source| {
            let namespace = source
                .get("namespace")
                .unwrap_or(&alert["metadata"]["namespace"]);
            source["kind"] == involved["kind"]
                && *namespace == involved["namespace"]
                && (source["name"] == "*" || source["name"] == involved["name"])
        });
    assert!(matches, "the Alert does not select {involved}");
}

#[test]
fn serve_refuses_a_notification_url_it_cannot_post_to() {
    let output = common::run_fluxgate(
        &[
            "serve",
            "--notification-url",
            "https://notification-controller/",
        ],
        b"",
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("only http:// is supported"),
        "names the fix: {stderr}"
    );
}

/// `business-hours` (Monday 08:00 to Thursday 17:00 in Berlin) frozen by Berlin's public
/// holidays, and by the stop-the-line freezes given, as the cluster watch adds them.
fn holiday_windows(
    freezes: &[fluxgate_core::freeze::StopTheLine],
) -> fluxgate_core::window::WindowSet {
    let yaml = "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  \
                name: business-hours\nspec:\n  timeZone: Europe/Berlin\n  schedules:\n    - \
                open: \"0 8 * * MON\"\n      close: \"0 17 * * THU\"\n  calendars:\n    - name: \
                holidays.ics\n      configMapRef: {name: holidays, key: holidays.ics}\n";
    let ics = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ics/de-be-public.ics"
    ))
    .unwrap();
    let mut documents = parse_documents("windows.yaml", yaml).unwrap();
    documents[0].set_calendar(0, Ok(ics.into()));
    for freeze in freezes {
        freeze.apply("business-hours", &mut documents[0].object.spec);
    }
    fluxgate_core::window::WindowSet::from_documents(&documents).unwrap()
}

/// Flux's dry-run of the seed's image bump on Good Friday 2027, decided by a replica holding
/// `windows` that publishes Events and notices through `notifiers`: the denial message.
async fn good_friday_dry_run(
    windows: fluxgate_core::window::WindowSet,
    notifiers: &(
        std::sync::Arc<dyn fluxgate::server::Notifier>,
        std::sync::Arc<dyn fluxgate::server::Notifier>,
    ),
    attempt: &str,
) -> String {
    use fluxgate::server::{AppState, Settings};
    let good_friday = DateTime::parse_from_rfc3339("2027-03-26T10:00:00Z")
        .unwrap()
        .to_utc();
    let state = std::sync::Arc::new(AppState::new(Settings {
        accept_unverified: true,
        clock: fluxgate::clock::Clock::fixed(good_friday),
        events: Some(notifiers.0.clone()),
        notices: Some(notifiers.1.clone()),
        ..Settings::new(
            windows,
            fluxgate_core::policy::Policy::default(),
            std::sync::Arc::new(fluxgate::audit_log::MemorySink::default()),
        )
    }));
    let limits = fluxgate::server::Limits {
        request_timeout: Duration::from_secs(5),
        max_concurrent_requests: 4,
    };
    let mut review: Value = serde_json::from_str(DRY_RUN).unwrap();
    review["request"]["uid"] = json!(format!("dry-run-{attempt}"));
    let request = axum::http::Request::post("/validate")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(serde_json::to_vec(&review).unwrap()))
        .unwrap();
    let response = fluxgate::server::router(state, &limits)
        .oneshot(request)
        .await
        .unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    answer["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A change denied on a holiday, and again once on-call stops the line during it: the Event
/// on the object (at the fake API server) and the waiting notice (at the fake
/// notification-controller) of each name what froze the window, the calendar's event, then the
/// incident and its ReconciliationFreeze. The freeze started during the holiday is news of its
/// own: an Event and a notice of its own, not one more count of the holiday's.
#[tokio::test]
async fn events_and_notices_name_the_holiday_and_the_stop_the_line_freeze() {
    use fluxgate::cluster::events::EventPublisher;
    use fluxgate::cluster::notifications::{Notifications, parse_url};
    use fluxgate::server::Notifier;
    use std::sync::Arc;

    let api = Fake::default();
    api.put(ready_kustomization());
    let controller = FakeNotificationController::default();
    let url = parse_url(&controller.serve().await).unwrap();
    let metrics = fluxgate::metrics::Metrics::default();
    let notifiers: (Arc<dyn Notifier>, Arc<dyn Notifier>) = (
        Arc::new(EventPublisher::spawn(
            api.client(),
            "fluxgate".into(),
            metrics.event_counters(),
        )),
        Arc::new(Notifications::spawn(
            api.client(),
            url,
            "fluxgate".into(),
            metrics.notification_counters(),
        )),
    );
    const EVENTS: &str = "events.k8s.io/v1/events";

    // Good Friday: the holiday.
    let holiday = "frozen by calendar holidays.ics (Karfreitag)";
    let message = good_friday_dry_run(holiday_windows(&[]), &notifiers, "holiday").await;
    assert!(message.contains(holiday), "{message}");
    until(
        "the holiday's Event and notice",
        Duration::from_secs(10),
        || api.all(EVENTS).len() == 1 && controller.accepted().len() == 1,
    )
    .await;
    let event = &api.all(EVENTS)[0];
    assert_eq!(event["reason"], "ReconciliationWindowFrozen", "{event}");
    assert!(event["note"].as_str().unwrap().contains(holiday), "{event}");
    let notice = &controller.accepted()[0];
    assert_eq!(notice["reason"], "ReconciliationWindowFrozen", "{notice}");
    assert!(
        notice["message"].as_str().unwrap().contains(holiday),
        "{notice}"
    );
    let metadata = &notice["metadata"];
    assert_eq!(
        metadata["kustomize.toolkit.fluxcd.io/frozenBy"], "Karfreitag (holidays.ics)",
        "{notice}"
    );

    // Flux's retry on the holiday is the same story: no new Event, no new notice.
    good_friday_dry_run(holiday_windows(&[]), &notifiers, "retry").await;
    until(
        "the retry counted in the Event's series",
        Duration::from_secs(10),
        || api.all(EVENTS)[0]["series"]["count"] == 2,
    )
    .await;

    // On-call stops the line during the holiday.
    let incident: fluxgate_core::freeze::ReconciliationFreeze = serde_json::from_value(json!({
        "apiVersion": "fluxgate.io/v1alpha1", "kind": "ReconciliationFreeze",
        "metadata": {"name": "inc-7"},
        "spec": {"reason": "INC-7", "start": "2027-03-26T09:00:00Z", "end": "2027-03-26T12:00:00Z", "all": true},
    }))
    .unwrap();
    let now = DateTime::parse_from_rfc3339("2027-03-26T10:00:00Z")
        .unwrap()
        .to_utc();
    let freeze = fluxgate_core::freeze::StopTheLine::from_object(
        &incident,
        chrono::Duration::hours(24),
        now,
    )
    .unwrap();
    let stopped = "hard-frozen (stop the line: INC-7, ReconciliationFreeze inc-7)";
    let message = good_friday_dry_run(holiday_windows(&[freeze]), &notifiers, "stopped").await;
    assert!(message.contains(stopped), "{message}");
    until(
        "the freeze's own Event and notice",
        Duration::from_secs(10),
        || api.all(EVENTS).len() == 2 && controller.accepted().len() == 2,
    )
    .await;
    let events = api.all(EVENTS);
    assert!(
        events
            .iter()
            .any(|e| e["note"].as_str().unwrap().contains(stopped)),
        "{events:#?}"
    );
    let notice = &controller.accepted()[1];
    assert!(
        notice["message"].as_str().unwrap().contains(stopped),
        "{notice}"
    );
    assert_eq!(
        notice["metadata"]["kustomize.toolkit.fluxcd.io/frozenBy"],
        "stop the line: INC-7, ReconciliationFreeze inc-7",
        "{notice}"
    );
}
