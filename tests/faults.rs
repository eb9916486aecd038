//! Faults under load: while clients keep sending AdmissionReviews, certificates rotate, windows
//! reload (valid and invalid), the audit log becomes unwritable, and finally SIGTERM arrives.
//! Bounded: a few seconds of load from 8 clients on loopback. The counts are printed
//! (`-- --nocapture`) and recorded in RELIABILITY.md.

mod common;

use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const WINDOWS: usize = 30;

/// 30 windows, all open or all frozen; the load targets the last one, so a half-loaded set
/// would answer `unknown-window`.
fn windows(open: bool) -> String {
    let mut yaml = String::new();
    for i in 0..WINDOWS {
        let freeze = if open {
            String::new()
        } else {
            "  freezes: [{start: \"2000-01-01T00:00:00Z\", end: \"2035-01-01T00:00:00Z\"}]\n"
                .to_owned()
        };
        yaml.push_str(&format!(
            "---\napiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata: {{name: w{i}}}\nspec:\n  schedules: [{{start: \"* * * * *\", duration: 2m}}]\n{freeze}"
        ));
    }
    yaml
}

fn mount_certs(dir: &Scratch, version: &str, certs: &fluxgate::certs::GeneratedCerts) {
    let data = dir.path(&format!("..{version}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("tls.crt"), &certs.cert_pem).unwrap();
    std::fs::write(data.join("tls.key"), &certs.key_pem).unwrap();
    let tmp = dir.path("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.path("..data")).unwrap();
    for file in ["tls.crt", "tls.key"] {
        if std::fs::symlink_metadata(dir.path(file)).is_err() {
            std::os::unix::fs::symlink(format!("..data/{file}"), dir.path(file)).unwrap();
        }
    }
}

/// Writes by rename, as Kubernetes and editors do: readers never see half a file.
fn replace_file(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
    unrecorded: AtomicUsize,
    unknown_window: AtomicUsize,
}

/// 8 clients sending until `stop`; each request on a fresh TLS connection, trusting both CAs.
fn start_load(
    server: &Server,
    ca: std::path::PathBuf,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut review: Value =
        serde_json::from_slice(&fixture("flux-dryrun-image-bump-deployment.json")).unwrap();
    let last = format!("w{}", WINDOWS - 1);
    review["request"]["object"]["metadata"]["labels"]["fluxgate.io/window"] = json!(last);
    review["request"]["oldObject"]["metadata"]["labels"]["fluxgate.io/window"] = json!(last);
    let body = Arc::new(serde_json::to_vec(&review).unwrap());
    (0..8)
        .map(|_| {
            let (addr, ca, stop, tally, body) = (
                server.addr,
                ca.clone(),
                stop.clone(),
                tally.clone(),
                body.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match request(addr, &ca, "POST", "/validate", "application/json", &body).await {
                        Ok(r) if r.status == 200 => {
                            let reason = r.json()["response"]["auditAnnotations"]["reason"].clone();
                            if reason == "unknown-window" {
                                tally.unknown_window.fetch_add(1, Ordering::Relaxed);
                            }
                            assert!(
                                reason == "window-open"
                                    || reason == "frozen"
                                    || reason == "unknown-window",
                                "{reason}"
                            );
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        // The decision could not be recorded (the audit log is on a full
                        // disk): refused, so the API server fails closed.
                        Ok(r) if r.status == 503 => {
                            tally.unrecorded.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect()
}

fn audit_lines(dir: &Scratch) -> usize {
    ["audit.log", "audit.log.1"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.path(f))
                .map(|t| t.lines().count())
                .unwrap_or(0)
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_under_load_lose_no_request_and_no_audit_record() {
    let dir = Scratch::new("faults");
    let (first, second) = (
        fluxgate::certs::generate(&[], chrono::Utc::now()).unwrap(),
        fluxgate::certs::generate(&[], chrono::Utc::now()).unwrap(),
    );
    mount_certs(&dir, "v1", &first);
    std::fs::write(
        dir.path("ca.pem"),
        format!("{}{}", first.ca_pem, second.ca_pem),
    )
    .unwrap();
    let windows_file = dir.path("windows.yaml");
    std::fs::write(&windows_file, windows(true)).unwrap();
    let server = Server::start(
        &dir,
        &[
            "--tls-cert",
            dir.path("tls.crt").to_str().unwrap(),
            "--tls-key",
            dir.path("tls.key").to_str().unwrap(),
            "--windows",
            windows_file.to_str().unwrap(),
            "--shutdown-delay",
            "2s",
        ],
    )
    .await;

    // Phase 1: faults under load.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = start_load(&server, dir.path("ca.pem"), stop.clone(), tally.clone());
    // Each fault waits until the server has observed it (not a fixed sleep), so a slow CI
    // machine changes the timing but never the counts.
    let step = Duration::from_millis(300);
    let within = Duration::from_secs(20);
    let metric_reaches = |series: &'static str, value: f64| {
        let server = &server;
        move || async move { server.metric(series).await >= value }
    };
    tokio::time::sleep(step).await;
    mount_certs(&dir, "v2", &second);
    server
        .eventually(
            "the certificate reload",
            within,
            metric_reaches("fluxgate_tls_reloads_total{result=\"success\"}", 1.0),
        )
        .await;
    tokio::time::sleep(step).await;
    let reloaded = "fluxgate_window_reloads_total{result=\"success\"}";
    replace_file(&windows_file, &windows(false));
    server
        .eventually("the frozen windows", within, metric_reaches(reloaded, 1.0))
        .await;
    tokio::time::sleep(step).await;
    replace_file(
        &windows_file,
        &windows(true).replace("* * * * *", "61 * * * *"),
    );
    server
        .eventually(
            "the rejected windows",
            within,
            metric_reaches("fluxgate_window_reloads_total{result=\"failure\"}", 1.0),
        )
        .await;
    tokio::time::sleep(step).await;
    replace_file(&windows_file, &windows(true));
    server
        .eventually("the open windows", within, metric_reaches(reloaded, 2.0))
        .await;
    tokio::time::sleep(step).await;
    // The audit log fills the disk: writes fail until the next rotation.
    std::fs::rename(dir.path("audit.log"), dir.path("audit.log.1")).unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path("audit.log")).unwrap();
    server.signal("HUP");
    server
        .eventually(
            "failing audit writes",
            within,
            metric_reaches("fluxgate_audit_write_errors_total", 1.0),
        )
        .await;
    tokio::time::sleep(step).await;
    std::fs::remove_file(dir.path("audit.log")).unwrap();
    // Append to the rotated file again so every written record is counted in one place.
    std::fs::rename(dir.path("audit.log.1"), dir.path("audit.log")).unwrap();
    let reopened = server.log().matches("audit log reopened").count();
    server.signal("HUP");
    server
        .eventually("the audit log back", within, || async {
            server.log().matches("audit log reopened").count() > reopened
        })
        .await;
    tokio::time::sleep(step).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    let ok = tally.ok.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    let audit_errors = server.metric("fluxgate_audit_write_errors_total").await as usize;
    let written = audit_lines(&dir);
    let tls_reloads = server
        .metric("fluxgate_tls_reloads_total{result=\"success\"}")
        .await;
    let reload_ok = server
        .metric("fluxgate_window_reloads_total{result=\"success\"}")
        .await;
    let reload_failed = server
        .metric("fluxgate_window_reloads_total{result=\"failure\"}")
        .await;
    let unrecorded = tally.unrecorded.load(Ordering::Relaxed);
    println!(
        "phase 1: {ok} answered, {unrecorded} refused as unrecorded, {failed} failed, {} half-loaded decisions; \
         audit: {written} written + {audit_errors} write errors; \
         tls reloads {tls_reloads}, window reloads ok {reload_ok} / failed {reload_failed}",
        tally.unknown_window.load(Ordering::Relaxed)
    );
    assert!(ok > 100, "the load ran: {ok}");
    assert_eq!(
        failed,
        0,
        "no request failed during rotations and reloads; stderr:\n{}",
        server.log()
    );
    assert_eq!(
        tally.unknown_window.load(Ordering::Relaxed),
        0,
        "no decision saw a half-loaded set"
    );
    assert_eq!(written, ok, "every decision answered was audited");
    let counted = server.metric_sum("fluxgate_admission_requests_total").await as usize;
    assert_eq!(
        counted, ok,
        "the decisions counted are the decisions answered: none refused as unrecorded"
    );
    assert_eq!(
        unrecorded, audit_errors,
        "every decision that could not be audited was refused, and counted"
    );
    assert!(audit_errors > 0, "the unwritable period was exercised");
    assert_eq!(tls_reloads, 1.0);
    assert_eq!((reload_ok, reload_failed), (2.0, 1.0));

    // Phase 2: SIGTERM under load. Requests fail only once the server stops accepting.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let before = audit_lines(&dir);
    let clients = start_load(&server, dir.path("ca.pem"), stop.clone(), tally.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answered_before_term = tally.ok.load(Ordering::Relaxed);
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0);
    server.signal("TERM");
    let term_sent = Instant::now();
    // During the shutdown delay the server still answers.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let failed_during_delay = tally.failed.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let ok = tally.ok.load(Ordering::Relaxed);
    let refused = tally.failed.load(Ordering::Relaxed);
    let mut server = server;
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            term_sent.elapsed() < Duration::from_secs(15),
            "did not exit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let written = audit_lines(&dir) - before;
    println!(
        "phase 2: {answered_before_term} answered before SIGTERM, {ok} in all, {refused} refused after the listener closed \
         ({failed_during_delay} during the first 0.7s of the 2s delay); audit: {written} written; exit {status}"
    );
    assert_eq!(
        failed_during_delay, 0,
        "nothing is refused while the delay lets endpoints update"
    );
    assert!(status.success());
    assert_eq!(
        written, ok,
        "every answered request during shutdown was audited"
    );
}
