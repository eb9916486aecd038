//! Stop the line (issue 25): `fluxgate freeze start|list|end`, run as the built binary through a
//! kubeconfig, against the fake API server (`common/fake_api.rs`), which sends every
//! ReconciliationFreeze CREATE and DELETE to a fluxgate replica's webhook as the API server
//! does. The replica runs in this process: its window and freeze watches, status writer and
//! catch-up (`--reconcile-on-open`), and its router, to which the test posts Flux's dry-run.
//! Real time: the binary reads the wall clock.

#[path = "common/fake_api.rs"]
mod fake_api;

use chrono::{DateTime, Timelike, Utc};
use fake_api::{Fake, Kubeconfig};
use fluxgate::audit_log::MemorySink;
use fluxgate::clock::Clock;
use fluxgate::cluster::freezes::{Creators, watch_freezes};
use fluxgate::cluster::owners::watch_owners;
use fluxgate::cluster::sync::ClusterSync;
use fluxgate::cluster::watch::watch_windows_and_freezes;
use fluxgate::server::{AppState, Limits, Notifier, Settings, router};
use fluxgate_core::flux::OwnerKind;
use fluxgate_core::policy::Policy;
use fluxgate_core::window::WindowSet;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tower::ServiceExt;

const KUSTOMIZATIONS: &str = "kustomize.toolkit.fluxcd.io/v1/kustomizations";
const WINDOWS: &str = "fluxgate.io/v1alpha1/reconciliationwindows";
const FREEZES: &str = "fluxgate.io/v1alpha1/reconciliationfreezes";

/// Commands docs/stop-the-line.md shows, as written there
/// (`the_doc_shows_the_real_output_of_every_command` runs every command the doc shows).
const START: &str = "fluxgate freeze start --all --for 30m --reason INC-1";
const LIST: &str = "fluxgate freeze list";
const END: &str = "fluxgate freeze end";
const START_WINDOW: &str =
    r#"fluxgate freeze start --window business-hours --for 2h --reason "INC-4711 checkout errors""#;
const TOO_LONG: &str = "fluxgate freeze start --all --for 36h --reason INC-4711";
/// A pull request that changes `business-hours` itself, planned during the freeze: the
/// head's window is frozen as the live one is.
const PLAN: &str = "fluxgate plan --windows-from-cluster --base tests/fixtures/plan/seed/base --head tests/fixtures/plan/seed/head";

/// `business-hours`, open from an hour ago until two hours from now (UTC), every day: open
/// whenever the test runs, with an opening the catch-up can name.
fn put_window(fake: &Fake, now: DateTime<Utc>) {
    let hour = |h: i64| (i64::from(now.hour()) + h).rem_euclid(24);
    fake.put(json!({
        "apiVersion": "fluxgate.io/v1alpha1",
        "kind": "ReconciliationWindow",
        "metadata": {"name": "business-hours", "generation": 1, "uid": "uid-business-hours"},
        "spec": {"schedules": [{"open": format!("0 {} * * *", hour(-1)), "close": format!("0 {} * * *", hour(2))}]},
    }));
}

/// A fluxgate replica: watches, status writer and catch-up, and its router.
struct Replica {
    state: Arc<AppState>,
    audit: Arc<MemorySink>,
    app: axum::Router,
    tasks: Vec<JoinHandle<()>>,
    /// What the status writer waits for, said when a status never came.
    waits_for: Box<dyn Fn() -> String + Send + Sync>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn start_replica(fake: &Fake) -> Replica {
    start_replica_at(fake, Utc::now)
}

/// A replica whose webhook decides at `clock`.
fn start_replica_at(fake: &Fake, clock: fn() -> DateTime<Utc>) -> Replica {
    let audit = Arc::new(MemorySink::default());
    let creators = Creators::default();
    let state = AppState::new(Settings {
        clock: Clock::from_fn(clock),
        // The router is driven without TLS, so no caller is verified: accepted, as deploy/base
        // does.
        accept_unverified: true,
        events: Some(Arc::new(creators.clone()) as Arc<dyn Notifier>),
        ..Settings::new(WindowSet::default(), Policy::default(), audit.clone())
    });
    state.windows().reset();
    let state = Arc::new(state);
    let client = fake.client();
    let (observed_tx, observed) = tokio::sync::watch::channel(None);
    let (freezes_tx, freezes) = tokio::sync::watch::channel(None);
    let (owners_tx, owners) = tokio::sync::watch::channel(Default::default());
    let mut tasks = vec![
        tokio::spawn(watch_freezes(client.clone(), freezes_tx, creators)),
        tokio::spawn(watch_windows_and_freezes(
            client.clone(),
            state.windows().clone(),
            Some(observed_tx),
            freezes,
            Some(state.metrics().stop_the_line()),
            Clock::system(),
        )),
    ];
    for kind in OwnerKind::ALL {
        tasks.push(tokio::spawn(watch_owners(
            client.clone(),
            kind,
            owners_tx.clone(),
        )));
    }
    let clock = Clock::system();
    let sync = ClusterSync {
        client,
        windows: state.windows().clone(),
        counters: state.metrics().sync_counters(),
        clock,
        events: None,
        notices: None,
        write_status: true,
        reconcile_on_open: true,
    };
    let waits_for = {
        let (observed, owners) = (observed.clone(), owners.clone());
        Box::new(move || {
            format!(
                "owner kinds listed: {}, windows observed: {}",
                owners.borrow().len(),
                observed.borrow().is_some()
            )
        })
    };
    tasks.push(tokio::spawn(sync.run(observed, owners)));
    let limits = Limits {
        request_timeout: Duration::from_secs(5),
        max_concurrent_requests: 4,
    };
    let app = router(state.clone(), &limits);
    fake.with_webhook(app.clone());
    Replica {
        state,
        audit,
        app,
        tasks,
        waits_for,
    }
}

/// The fake API server holding `business-hours` (see [`put_window`]), served on a socket, and
/// a replica that has put it in force.
async fn cluster() -> (Fake, String, Replica) {
    let fake = Fake::default();
    put_window(&fake, Utc::now());
    let url = fake.serve().await;
    let replica = start_replica(&fake);
    until("the windows in force", || {
        replica.state.windows().is_ready()
    })
    .await;
    (fake, url, replica)
}

/// Runs a command line of the doc (`fluxgate …`, shell quoting with "") as the built binary.
async fn run(command: &str, kubeconfig: &Path, at: Option<&str>) -> std::process::Output {
    let words = split_words(command);
    assert_eq!(words[0], "fluxgate");
    let mut process = tokio::process::Command::new(env!("CARGO_BIN_EXE_fluxgate"));
    process
        .args(&words[1..])
        .env("KUBECONFIG", kubeconfig)
        .env_remove("FLUXGATE_AT");
    if let Some(at) = at {
        process.env("FLUXGATE_AT", at);
    }
    process.output().await.unwrap()
}

/// Words of a command line, "…" quoting one word.
fn split_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Posts Flux's dry-run of the image bump (the real review of tests/fixtures/admission) and
/// returns the response.
async fn flux_dry_run(app: &axum::Router, uid: &str) -> Value {
    let mut review: Value = serde_json::from_str(include_str!(
        "fixtures/admission/flux-dryrun-image-bump-deployment.json"
    ))
    .unwrap();
    review["request"]["uid"] = json!(uid);
    let request = axum::http::Request::post("/validate")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(serde_json::to_vec(&review).unwrap()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["response"].clone()
}

/// Posts dry-runs until one is answered as `allowed`, for at most `within`; returns the last
/// response and how long it took.
async fn dry_run_until(app: &axum::Router, allowed: bool, within: Duration) -> (Value, Duration) {
    let started = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let response = flux_dry_run(app, &format!("dry-run-{n}")).await;
        if response["allowed"] == allowed {
            return (response, started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "Flux's dry-run still answered {response} after {within:?} ({n} tries)"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for `check`, for 20 s at most: a bound that only catches a hang. A replica's first
/// window statuses may wait up to 10 s for the Flux owners to be listed (`OWNERS_GRACE`), which
/// on a loaded machine has taken that long; the bound must lie past it.
const HANG: Duration = Duration::from_secs(20);

async fn until(what: &str, check: impl Fn() -> bool) {
    until_explained(check, || what.to_owned()).await
}

/// [`until`], saying `explain()` (what was there at the deadline) when it times out.
async fn until_explained(check: impl Fn() -> bool, explain: impl Fn() -> String) {
    let deadline = Instant::now() + HANG;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            explain()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The Kustomization that applied the Deployment, with the denial in its Ready condition as
/// kustomize-controller writes it.
fn put_denied_kustomization(fake: &Fake, message: &str, at: DateTime<Utc>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/flux/kustomization-apps-rw-denied.json"
    );
    let mut object: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let condition = &mut object["status"]["conditions"][0];
    condition["message"] = json!(format!(
        "Deployment/nginx/nginx dry-run failed (Forbidden): admission webhook \
         \"rw.fluxgate.io\" denied the request: {message}"
    ));
    condition["lastTransitionTime"] = json!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    fake.put(object);
}

fn metric(replica: &Replica, series: &str) -> Option<String> {
    let text = replica
        .state
        .metrics()
        .encode(&replica.state.windows().load(), Utc::now());
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")).map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_from_on_call_stops_flux_within_a_second_and_its_end_lands_the_change() {
    let (fake, url, replica) = cluster().await;
    let kubeconfig = Kubeconfig::new(&url, "alice@example.com");

    // Open: Flux's change is admitted.
    let (_, _) = dry_run_until(&replica.app, true, Duration::from_secs(10)).await;

    // Stop the line.
    let started = stdout(&run(START, &kubeconfig.0, None).await);
    assert!(
        started.starts_with("ReconciliationFreeze inc-1-")
            && started.contains(" in force: all windows frozen until ")
            && started.ends_with(" (INC-1)\n"),
        "{started}"
    );
    let (denied, took) = dry_run_until(&replica.app, false, Duration::from_secs(1)).await;
    println!("Flux's next dry-run was denied {took:?} after `freeze start` returned");
    let message = denied["status"]["message"].as_str().unwrap();
    let freezes = fake.all(FREEZES);
    assert_eq!(freezes.len(), 1);
    let name = freezes[0]["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(
        message.contains(&format!(
            "\"business-hours\", hard-frozen (stop the line: INC-1, ReconciliationFreeze {name}) \
             and closed until "
        )),
        "{message}"
    );
    // Who made it, from the API server's request, in the status only fluxgate writes.
    until("status.createdBy", || {
        fake.get(FREEZES, "", &name).unwrap()["status"]["createdBy"] == "alice@example.com"
    })
    .await;
    // kubectl get rwin: the window's status says frozen, and by what.
    until_explained(
        || fake.get(WINDOWS, "", "business-hours").unwrap()["status"]["frozen"] == true,
        || {
            format!(
                "the window status: {:#?}\nstatus writes: {:#?}\n{}",
                fake.get(WINDOWS, "", "business-hours"),
                fake.calls_to("reconciliationwindows/business-hours/status"),
                (replica.waits_for)()
            )
        },
    )
    .await;
    let status = fake.get(WINDOWS, "", "business-hours").unwrap()["status"].clone();
    assert_eq!(status["open"], false);
    assert_eq!(
        status["freezeReason"],
        format!("stop the line: INC-1, ReconciliationFreeze {name}")
    );
    assert_eq!(
        metric(&replica, "fluxgate_stop_the_line_freezes").as_deref(),
        Some("1")
    );
    let listed = stdout(&run(LIST, &kubeconfig.0, None).await);
    assert!(
        listed.starts_with("NAME") && listed.contains(&name) && listed.contains("in force"),
        "{listed}"
    );
    assert!(listed.contains("alice@example.com"), "{listed}");

    // Flux records the denial, and waits.
    put_denied_kustomization(&fake, message, Utc::now());
    until("the owner waiting", || {
        fake.get(WINDOWS, "", "business-hours").unwrap()["status"]["waitingOwners"] == 1
    })
    .await;
    assert!(
        fake.get(KUSTOMIZATIONS, "flux-system", "apps-rw").unwrap()["metadata"]["annotations"]
            ["reconcile.fluxcd.io/requestedAt"]
            .is_null(),
        "nothing asked while frozen"
    );

    // End it: the change goes through, and the waiting Kustomization is asked to reconcile.
    let ended = stdout(&run(END, &kubeconfig.0, None).await);
    assert!(
        ended.starts_with(&format!("ReconciliationFreeze {name} ended: ")),
        "{ended}"
    );
    assert!(fake.all(FREEZES).is_empty());
    let (_, took) = dry_run_until(&replica.app, true, Duration::from_secs(1)).await;
    println!("Flux's next dry-run was admitted {took:?} after `freeze end` returned");
    until("the reconcile request", || {
        fake.get(KUSTOMIZATIONS, "flux-system", "apps-rw").unwrap()["metadata"]["annotations"]
            ["reconcile.fluxcd.io/requestedAt"]
            .is_string()
    })
    .await;
    assert_eq!(
        metric(&replica, "fluxgate_stop_the_line_freezes").as_deref(),
        Some("0")
    );
    let none = run(END, &kubeconfig.0, None).await;
    assert_eq!(none.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&none.stderr),
        "fluxgate: no ReconciliationFreeze is in force: nothing to end\n"
    );

    // The audit log: who started and ended it, and every denial naming it.
    let records: Vec<Value> = replica
        .audit
        .records()
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    let of = |reason: &str| -> Vec<&Value> {
        records.iter().filter(|r| r["reason"] == reason).collect()
    };
    let writes = of("valid-freeze");
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(
        (&writes[0]["operation"], &writes[0]["user"]),
        (&json!("CREATE"), &json!("alice@example.com"))
    );
    assert_eq!(
        (&writes[1]["operation"], &writes[1]["user"]),
        (&json!("DELETE"), &json!("alice@example.com"))
    );
    assert_eq!(
        writes[1]["message"],
        format!("ReconciliationFreeze {name}: ended by alice@example.com")
    );
    let denials = of("frozen");
    assert!(!denials.is_empty());
    for denial in denials {
        assert!(
            denial["message"].as_str().unwrap().contains(&format!(
                "stop the line: INC-1, ReconciliationFreeze {name}"
            )),
            "{denial}"
        );
    }
}

/// RELIABILITY: a freeze created by Flux itself is refused at admission, and one applied from
/// Git (Flux's labels) that got in while the webhook was not called freezes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_created_by_flux_is_refused_and_freezes_nothing() {
    let (fake, url, replica) = cluster().await;

    let flux = Kubeconfig::new(
        &url,
        "system:serviceaccount:flux-system:kustomize-controller",
    );
    let refused = run(START, &flux.0, None).await;
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(
            "system:serviceaccount:flux-system:kustomize-controller is Flux: a stop-the-line \
             freeze is declared and ended by people"
        ),
        "{stderr}"
    );
    assert!(fake.all(FREEZES).is_empty(), "never persisted");

    // Written behind the webhook's back, with Flux's labels: watched, refused, freezes nothing.
    let end = (Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();
    fake.put(json!({
        "apiVersion": "fluxgate.io/v1alpha1", "kind": "ReconciliationFreeze",
        "metadata": {"name": "from-git", "labels": {"kustomize.toolkit.fluxcd.io/name": "infra"}},
        "spec": {"reason": "reverted by nobody", "end": end, "all": true},
    }));
    // A marker freeze after it, for one window that does not exist: once the watch has it,
    // it has seen the labelled one too.
    fake.put(json!({
        "apiVersion": "fluxgate.io/v1alpha1", "kind": "ReconciliationFreeze",
        "metadata": {"name": "marker"},
        "spec": {"reason": "marker", "end": end, "windows": ["elsewhere"]},
    }));
    until("both freezes seen", || {
        metric(&replica, "fluxgate_stop_the_line_freezes").as_deref() == Some("1")
    })
    .await;
    let (admitted, _) = dry_run_until(&replica.app, true, Duration::from_secs(1)).await;
    assert_eq!(admitted["allowed"], true);
    // Nor can Flux lift a freeze people made.
    let alice = Kubeconfig::new(&url, "alice");
    stdout(&run(START, &alice.0, None).await);
    let name = fake
        .all(FREEZES)
        .into_iter()
        .find(|f| f["spec"]["reason"] == "INC-1")
        .unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let lift = run(&format!("fluxgate freeze end {name}"), &flux.0, None).await;
    assert_eq!(lift.status.code(), Some(2));
    assert!(fake.get(FREEZES, "", &name).is_some(), "still there");
}

/// RELIABILITY: a freeze with no reason, or longer than --max-freeze, is refused at admission
/// (the CLI says so before sending; the webhook refuses a hand-written one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_without_a_reason_or_too_long_is_refused() {
    let (fake, url, _replica) = cluster().await;
    let alice = Kubeconfig::new(&url, "alice");

    let too_long = run(TOO_LONG, &alice.0, None).await;
    assert_eq!(too_long.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&too_long.stderr);
    assert!(
        stderr.contains(
            "spec.end: 36h long, more than --max-freeze 24h: end it at most 24h after its start"
        ),
        "{stderr}"
    );
    let no_reason = run(
        "fluxgate freeze start --all --for 1h --reason \" \"",
        &alice.0,
        None,
    )
    .await;
    assert_eq!(no_reason.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&no_reason.stderr);
    assert!(
        stderr.contains("spec.reason: required: say why the line is stopped"),
        "{stderr}"
    );
    assert!(fake.all(FREEZES).is_empty());

    // kubectl apply of a hand-written one: the webhook refuses it.
    let client = fake.client();
    let api: kube::Api<fluxgate_core::freeze::ReconciliationFreeze> = kube::Api::all(client);
    let object: fluxgate_core::freeze::ReconciliationFreeze = serde_json::from_value(json!({
        "apiVersion": "fluxgate.io/v1alpha1", "kind": "ReconciliationFreeze",
        "metadata": {"name": "too-long"},
        "spec": {"reason": "INC-2", "start": Utc::now().to_rfc3339(),
                 "end": (Utc::now() + chrono::Duration::hours(48)).to_rfc3339(), "all": true},
    }))
    .unwrap();
    let error = api
        .create(&Default::default(), &object)
        .await
        .expect_err("refused");
    let text = error.to_string();
    assert!(
        text.contains("admission webhook \"windows.fluxgate.io\" denied the request")
            && text.contains("more than --max-freeze 24h"),
        "{text}"
    );
    assert!(fake.all(FREEZES).is_empty());
}

/// RELIABILITY: an expired freeze that nobody deleted stops applying at its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_freeze_not_deleted_stops_applying_at_its_end() {
    let (fake, url, replica) = cluster().await;
    let alice = Kubeconfig::new(&url, "alice");

    // Started 2s ago for 5s (the binary's clock set back): in force for 3 more seconds.
    let at = (Utc::now() - chrono::Duration::seconds(2)).to_rfc3339();
    stdout(
        &run(
            "fluxgate freeze start --all --for 5s --reason INC-3",
            &alice.0,
            Some(&at),
        )
        .await,
    );
    let (denied, _) = dry_run_until(&replica.app, false, Duration::from_secs(1)).await;
    assert!(
        denied["status"]["message"]
            .as_str()
            .unwrap()
            .contains("stop the line: INC-3"),
        "{denied}"
    );
    let freezes = fake.all(FREEZES);
    let end: DateTime<Utc> = freezes[0]["spec"]["end"].as_str().unwrap().parse().unwrap();
    // Admitted again once it is over (never before its end), with the object still there.
    let (_, took) = dry_run_until(&replica.app, true, Duration::from_secs(10)).await;
    let admitted_at = Utc::now();
    assert!(
        admitted_at >= end,
        "admitted at {admitted_at}, before its end {end} ({took:?})"
    );
    assert_eq!(fake.all(FREEZES).len(), 1, "nobody deleted it");
    assert_eq!(
        metric(&replica, "fluxgate_stop_the_line_freezes").as_deref(),
        Some("0")
    );
    let listed = stdout(&run(LIST, &alice.0, None).await);
    assert!(listed.contains(" over "), "{listed}");
    let none = run(END, &alice.0, None).await;
    assert_eq!(none.status.code(), Some(2), "nothing in force to end");
}

/// The instant the doc's commands are run at (`FLUXGATE_AT`): Tuesday 10:15 in Berlin, while
/// the example `business-hours` is open.
const DOC_AT: &str = "2026-12-08T09:15:00Z";

/// The replica of the doc decides at 10:20 in Berlin, five minutes into the freeze.
fn doc_clock() -> DateTime<Utc> {
    "2026-12-08T09:20:00Z".parse().unwrap()
}

/// The ```console blocks of a doc: each `$ ` line and the output below it.
fn console_steps(doc: &str) -> Vec<(String, String)> {
    let mut steps: Vec<(String, String)> = Vec::new();
    let mut in_console = false;
    for line in doc.lines() {
        if line.starts_with("```") {
            in_console = line == "```console";
            continue;
        }
        if !in_console {
            continue;
        }
        match line.strip_prefix("$ ") {
            Some(command) => steps.push((command.to_owned(), String::new())),
            None => {
                let (_, output) = steps.last_mut().expect("output before a command");
                output.push_str(line);
                output.push('\n');
            }
        }
    }
    steps
}

/// Every command of docs/stop-the-line.md, run as written in order at [`DOC_AT`] against the
/// example windows, prints what the doc shows; and the denial the doc quotes is the webhook's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doc_shows_the_real_output_of_every_command() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/stop-the-line.md"
    ))
    .unwrap();
    let steps = console_steps(&doc);
    let shown: Vec<&str> = steps.iter().map(|(c, _)| c.as_str()).collect();
    for command in [START, PLAN, LIST, END, START_WINDOW, TOO_LONG] {
        assert!(
            shown.contains(&command),
            "the doc shows `{command}`, as the tests run it"
        );
    }
    let fake = Fake::default();
    let yaml = include_str!("../deploy/examples/windows.yaml");
    for document in fluxgate_core::window::parse_documents("windows.yaml", yaml).unwrap() {
        let mut object = serde_json::to_value(&document.object).unwrap();
        object["metadata"]["generation"] = json!(1);
        fake.put(object);
    }
    let url = fake.serve().await;
    let replica = start_replica_at(&fake, doc_clock);
    until("the windows in force", || {
        replica.state.windows().is_ready()
    })
    .await;
    let kubeconfig = Kubeconfig::new(&url, "alice@example.com");

    let mut wrong = Vec::new();
    let mut denial = None;
    for (command, expected) in &steps {
        let output = run(command, &kubeconfig.0, Some(DOC_AT)).await;
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        if output.status.success() && command.starts_with("fluxgate freeze start") {
            until("every creator recorded", || {
                fake.all(FREEZES)
                    .iter()
                    .all(|f| f["status"]["createdBy"].is_string())
            })
            .await;
        }
        if command == START {
            let (denied, _) = dry_run_until(&replica.app, false, Duration::from_secs(1)).await;
            denial = denied["status"]["message"].as_str().map(str::to_owned);
        }
        if text != *expected {
            wrong.push(format!("$ {command}\n{text}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/stop-the-line.md shows other output; the commands print:\n\n{}",
        wrong.join("\n")
    );
    let denial = denial.expect("the doc starts a freeze with `{START}`");
    assert!(
        doc.contains(&denial),
        "docs/stop-the-line.md does not quote the denial:\n{denial}"
    );
}

/// A replica that starts during an incident puts no window in force before it has listed the
/// freezes too: for a moment it would admit what the freeze stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_window_is_in_force_before_the_freezes_are_listed() {
    let fake = Fake::default();
    put_window(&fake, Utc::now());
    let state = AppState::new(Settings::new(
        WindowSet::default(),
        Policy::default(),
        Arc::new(MemorySink::default()),
    ));
    state.windows().reset();
    let (freezes_tx, freezes) = tokio::sync::watch::channel(None);
    let watch = tokio::spawn(watch_windows_and_freezes(
        fake.client(),
        state.windows().clone(),
        None,
        freezes,
        None,
        Clock::system(),
    ));
    // The windows are listed at once; give the watch time to (wrongly) publish them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !state.windows().is_ready(),
        "ready before the freezes were listed"
    );
    let end = (Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();
    let frozen: fluxgate_core::freeze::ReconciliationFreeze = serde_json::from_value(json!({
        "apiVersion": "fluxgate.io/v1alpha1", "kind": "ReconciliationFreeze",
        "metadata": {"name": "inc-1"},
        "spec": {"reason": "INC-1", "end": end, "all": true},
    }))
    .unwrap();
    freezes_tx.send_replace(Some(Arc::new([("inc-1".to_owned(), frozen)].into())));
    until("the windows in force", || state.windows().is_ready()).await;
    let windows = state.windows().load();
    let business_hours = windows.get("business-hours").unwrap().state_at(Utc::now());
    assert!(!business_hours.open, "frozen from the first set in force");
    watch.abort();
}
