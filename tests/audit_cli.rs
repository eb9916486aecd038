//! `fluxgate audit` over an audit log written by the real server: the router of
//! `fluxgate::server` with a file sink and a fixed clock decides the recorded AdmissionReviews
//! (and copies of them carrying bypass annotations); the built binary then reviews the file.

mod common;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Utc};
use fluxgate::audit_log::FileSink;
use fluxgate::clock::Clock;
use fluxgate::server::{AppState, Limits, Settings, router};
use fluxgate::windows::load_windows;
use fluxgate_core::policy::Policy;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::ServiceExt;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Friday 13:00 in Berlin: business-hours closed until Monday 08:00.
fn friday() -> DateTime<Utc> {
    at("2026-11-27T12:00:00Z")
}

/// Monday 10:00 in Berlin: business-hours open.
fn monday() -> DateTime<Utc> {
    at("2026-11-30T09:00:00Z")
}

fn at(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read(format!("{FIXTURES}/admission/{name}")).unwrap();
    serde_json::from_slice(&text).unwrap()
}

/// A fixture with a new uid and changes to its request.
fn mutated(name: &str, uid: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut review = fixture(name);
    review["request"]["uid"] = json!(uid);
    change(&mut review["request"]);
    review
}

fn annotate(request: &mut Value, reason: Option<&str>, until: &str) {
    let annotations = &mut request["object"]["metadata"]["annotations"];
    if let Some(reason) = reason {
        annotations["fluxgate.io/bypass-reason"] = json!(reason);
    }
    annotations["fluxgate.io/bypass-until"] = json!(until);
}

/// A scratch folder removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("fluxgate-audit-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Posts `reviews` to the real router, deciding at `clock`, its audit sink appending to `log`.
async fn decide(log: &Path, clock: fn() -> DateTime<Utc>, reviews: &[Value]) {
    decide_with(log, load_windows(&[]).unwrap(), clock, reviews).await
}

/// [`decide`] with other windows.
async fn decide_with(
    log: &Path,
    windows: fluxgate_core::window::WindowSet,
    clock: fn() -> DateTime<Utc>,
    reviews: &[Value],
) {
    let sink = Arc::new(FileSink::open(log.to_owned()).unwrap());
    let state = AppState::new(Settings {
        clock: Clock::from_fn(clock),
        ..Settings::new(windows, Policy::default(), sink)
    });
    let limits = Limits {
        request_timeout: std::time::Duration::from_secs(5),
        max_concurrent_requests: 4,
    };
    let app = router(Arc::new(state), &limits);
    for review in reviews {
        let request = Request::post("/validate")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(review).unwrap()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        to_bytes(response.into_body(), usize::MAX).await.unwrap();
    }
}

const BYPASS_REASON: &str = "CVE-2026-1234: nginx hotfix, approved by on-call";

/// The audit log of a Friday (closed) and a Monday (open), 13 decisions:
///
/// | line | what | decision | dry-run |
/// |---|---|---|---|
/// | 1 | Flux dry-runs the image bump | deny window-closed | yes |
/// | 2 | Flux dry-runs the unchanged Deployment | allow no-op | yes |
/// | 3 | Flux creates the rt ConfigMap (apps-rt) | allow not-governed | |
/// | 4 | admin patches the Deployment | allow not-flux | |
/// | 5 | Flux prunes the Deployment | deny window-closed | |
/// | 6 | Flux creates a ReconciliationWindow (infra) | allow valid-window | |
/// | 7 | Flux creates the rw Deployment | deny window-closed | |
/// | 8 | … with a valid bypass | allow bypass | |
/// | 9 | … its dry-run | allow bypass | yes |
/// | 10 | … with an expired bypass, no reason | deny invalid-bypass | |
/// | 11 | … naming window "busines-hours" | deny unknown-window | |
/// | 12 | Monday: the image bump dry-run | allow window-open | yes |
/// | 13 | Monday: Flux creates the rw Deployment | allow window-open | |
async fn write_log(log: &Path) {
    let create = "flux-create-deployment-rw.json";
    let friday_reviews = vec![
        fixture("flux-dryrun-image-bump-deployment.json"),
        fixture("flux-dryrun-unchanged-deployment.json"),
        fixture("flux-create-configmap-rt.json"),
        fixture("human-patch-deployment.json"),
        fixture("flux-prune-deployment.json"),
        fixture("flux-create-reconciliationwindow.json"),
        fixture(create),
        mutated(create, "bypass-valid", |r| {
            annotate(r, Some(BYPASS_REASON), "2026-11-27T14:00:00Z")
        }),
        mutated(create, "bypass-valid-dry-run", |r| {
            annotate(r, Some(BYPASS_REASON), "2026-11-27T14:00:00Z");
            r["dryRun"] = json!(true);
            r["options"]["dryRun"] = json!(["All"]);
        }),
        mutated(create, "bypass-expired", |r| {
            annotate(r, None, "2026-11-27T11:00:00Z")
        }),
        mutated(create, "typo-window", |r| {
            r["object"]["metadata"]["labels"]["fluxgate.io/window"] = json!("busines-hours");
        }),
    ];
    decide(log, friday, &friday_reviews).await;
    let monday_reviews = vec![
        mutated(
            "flux-dryrun-image-bump-deployment.json",
            "monday-bump",
            |_| {},
        ),
        mutated(create, "monday-create", |_| {}),
    ];
    decide(log, monday, &monday_reviews).await;
}

fn fluxgate(args: &[&str], stdin: &[u8]) -> Output {
    let args: Vec<&str> = std::iter::once("audit")
        .chain(args.iter().copied())
        .collect();
    common::run_fluxgate(&args, stdin, &[])
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}; stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn audit_json(log: &Path, args: &[&str]) -> Value {
    let mut all = vec![log.to_str().unwrap(), "-o", "json"];
    all.extend(args);
    let text = stdout(&fluxgate(&all, b""));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn uids(report: &Value) -> Vec<&str> {
    report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uid"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn summary_of_a_server_log_counts_every_decision_and_lists_every_bypass() {
    let dir = Scratch::new("summary");
    let log = dir.path("audit.log");
    write_log(&log).await;

    let report = audit_json(&log, &[]);
    let stats = &report["stats"];
    assert_eq!(stats["records"], 13);
    // Only Flux's two admitted dry-runs (drift checks) are left out: its denied dry-run of the
    // image bump, the one record of that denied change, and the dry-run bypass are shown.
    assert_eq!(stats["matched"], 11);
    assert_eq!(stats["hiddenDryRuns"], 2);
    assert_eq!(stats["unparseableLines"], 0);
    assert_eq!(report["records"].as_array().unwrap().len(), 11);
    assert_eq!(report["filter"]["includeDryRun"], false);
    assert_eq!(report["inputs"], json!([log.to_str().unwrap()]));

    let summary = &report["summary"];
    assert_eq!(
        summary["byDecision"],
        json!({
            "allow": {"total": 6, "reasons": {"not-flux": 1, "not-governed": 1, "window-open": 1,
                                               "bypass": 2, "valid-window": 1}},
            "deny": {"total": 5, "reasons": {"window-closed": 3, "unknown-window": 1,
                                              "invalid-bypass": 1}},
        })
    );
    assert_eq!(
        summary["byWindow"],
        json!({
            "business-hours": {"allow": 3, "deny": 4},
            "busines-hours": {"allow": 0, "deny": 1},
        })
    );
    assert_eq!(
        summary["byOwner"],
        json!({
            "Kustomization flux-system/apps-rw": {"allow": 4, "deny": 5},
            "Kustomization flux-system/apps-rt": {"allow": 1, "deny": 0},
            "Kustomization flux-system/infra": {"allow": 1, "deny": 0},
        })
    );
    assert_eq!(summary["topDenied"][0]["object"], "Deployment nginx/nginx");
    assert_eq!(summary["topDenied"][0]["denials"], 5);
    assert_eq!(summary["firstTime"], "2026-11-27T12:00:00Z");
    assert_eq!(summary["lastTime"], "2026-11-30T09:00:00Z");

    let bypasses = summary["bypasses"].as_array().unwrap();
    assert_eq!(
        bypasses.len(),
        3,
        "every bypass, the dry-run one too: {bypasses:?}"
    );
    assert_eq!(
        bypasses[0],
        json!({
            "time": "2026-11-27T12:00:00Z",
            "uid": "bypass-valid",
            "object": "Deployment nginx/nginx",
            "actor": "system:serviceaccount:flux-system:kustomize-controller",
            "reason": BYPASS_REASON,
            "until": "2026-11-27T14:00:00Z",
            "valid": true,
            "decision": "allow",
            "decisionReason": "bypass",
            "windows": ["business-hours"],
            "owner": "Kustomization flux-system/apps-rw",
            "operation": "CREATE",
            "dryRun": false,
        })
    );
    assert_eq!(bypasses[1]["uid"], "bypass-valid-dry-run");
    assert_eq!(bypasses[1]["dryRun"], true);
    assert_eq!(bypasses[2]["uid"], "bypass-expired");
    assert_eq!(bypasses[2]["valid"], false);
    assert_eq!(bypasses[2]["reason"], Value::Null);
    assert_eq!(bypasses[2]["decisionReason"], "invalid-bypass");

    // With dry-runs: every record, and the dry-run bypass too.
    let report = audit_json(&log, &["--include-dry-run"]);
    assert_eq!(report["stats"]["matched"], 13);
    assert_eq!(report["summary"]["bypasses"].as_array().unwrap().len(), 3);

    // The table says the same for people.
    let table = stdout(&fluxgate(&[log.to_str().unwrap()], b""));
    assert!(
        table.contains("admitted dry-runs left out (--include-dry-run shows them); denials and bypasses always shown"),
        "{table}"
    );
    assert!(
        table.contains("SUMMARY: 11 of 13 audit records match"),
        "{table}"
    );
    assert!(
        table.contains("2 matching admitted dry-run records left out"),
        "{table}"
    );
    assert!(
        table.contains("window-closed 3, unknown-window 1, invalid-bypass 1"),
        "{table}"
    );
    assert!(table.contains("BYPASSES: 3"), "{table}");
    let bypass_line = table
        .lines()
        .find(|l| l.contains(BYPASS_REASON))
        .unwrap_or_else(|| panic!("{table}"));
    for part in [
        "2026-11-27T12:00:00Z",
        "Deployment nginx/nginx",
        "system:serviceaccount:flux-system:kustomize-controller",
        "admitted",
        "2026-11-27T14:00:00Z",
        "business-hours",
    ] {
        assert!(bypass_line.contains(part), "{part} in {bypass_line}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.contains("invalid, denied") && l.contains("2026-11-27T11:00:00Z")),
        "{table}"
    );
    assert!(table.contains("UNPARSEABLE LINES: 0"), "{table}");
    // One row per matching decision under the header.
    let rows = table.lines().filter(|l| l.starts_with("2026-")).count();
    assert_eq!(rows, 11, "{table}");
}

#[tokio::test]
async fn filters_combine() {
    let dir = Scratch::new("filters");
    let log = dir.path("audit.log");
    write_log(&log).await;
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "--decision",
                "deny",
                "--kind",
                "deployment",
                "--reason",
                "window-closed",
            ],
            // The denied dry-run (382e…) is Flux's only record of its denied image bump.
            &[
                "382e71b4-420a-484a-9200-d062f988c348",
                "522beb71-cf5f-4b32-956e-d0db73f45da6",
                "ddcfed04-1c85-4ebd-bd0b-a30e71d19817",
            ],
        ),
        (
            &[
                "--decision=deny",
                "--reason=window-closed",
                "--include-dry-run",
                "--until",
                "2026-11-27T12:00:01Z",
            ],
            &[
                "382e71b4-420a-484a-9200-d062f988c348",
                "522beb71-cf5f-4b32-956e-d0db73f45da6",
                "ddcfed04-1c85-4ebd-bd0b-a30e71d19817",
            ],
        ),
        (
            &["--since", "2026-11-30T00:00:00Z", "--include-dry-run"],
            &["monday-bump", "monday-create"],
        ),
        // Relative to --at: the last 24 hours before Monday 10:00 UTC.
        (
            &["--since", "24h", "--at", "2026-11-30T10:00:00Z"],
            &["monday-create"],
        ),
        (
            &["--owner", "flux-system/apps-rw", "--decision", "allow"],
            &[
                "db7d965d-4469-4ebb-99b3-0c7cfbbcbdf5",
                "bypass-valid",
                "bypass-valid-dry-run",
                "monday-create",
            ],
        ),
        (
            &["--owner", "apps-rt"],
            &["2d776973-8236-4126-85d8-5834ab427e72"],
        ),
        (
            &["--user", "admin"],
            &["db7d965d-4469-4ebb-99b3-0c7cfbbcbdf5"],
        ),
        (
            &[
                "--user",
                "*:kustomize-controller",
                "--reason",
                "bypass,invalid-bypass",
            ],
            &["bypass-valid", "bypass-valid-dry-run", "bypass-expired"],
        ),
        (&["--window", "busines-hours"], &["typo-window"]),
        (
            &[
                "--namespace",
                "nginx",
                "--name",
                "nginx",
                "--reason",
                "not-governed",
            ],
            &[],
        ),
        (
            &["--kind", "ReconciliationWindow"],
            &["73b16d0d-b90f-4618-8f8a-700ce7c3f47e"],
        ),
    ];
    for (args, expected) in cases {
        let report = audit_json(&log, args);
        assert_eq!(uids(&report), *expected, "{args:?}");
        assert_eq!(report["stats"]["matched"], expected.len(), "{args:?}");
    }

    // --limit keeps the last N rows; the summary still counts everything.
    let report = audit_json(&log, &["--limit", "2"]);
    assert_eq!(uids(&report), ["typo-window", "monday-create"]);
    assert_eq!(report["summary"]["matched"], 11);
    let table = stdout(&fluxgate(&[log.to_str().unwrap(), "--limit", "0"], b""));
    assert!(!table.contains("DECISION  REASON"), "{table}");
    assert!(table.contains("(the last 0 shown)"), "{table}");

    // Environment twins.
    let out = Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args(["audit", log.to_str().unwrap(), "-o", "json"])
        .env("FLUXGATE_AUDIT_REASON", "unknown-window")
        .output()
        .unwrap();
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(uids(&report), ["typo-window"]);
}

#[tokio::test]
async fn malformed_lines_are_reported_by_number_per_input() {
    let dir = Scratch::new("malformed");
    let log = dir.path("audit.log");
    write_log(&log).await;
    {
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(b"garbage\n{\"uid\": 1}\n\n").unwrap();
        file.write_all(b"2026-11-30T09:00:01.5Z  INFO fluxgate::server: reloaded windows\n")
            .unwrap();
        file.write_all(b"{\"decision\": \"allow\", \"truncated\n")
            .unwrap();
    }
    // A second input on stdin: two good records and a bad line in the middle.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut stdin: Vec<u8> = Vec::new();
    let mut lines = text.lines();
    stdin.extend(format!("{}\n", lines.next().unwrap()).bytes());
    stdin.extend(b"not json either\n");
    stdin.extend(format!("{}\n", lines.nth(2).unwrap()).bytes());

    let out = fluxgate(
        &[
            log.to_str().unwrap(),
            "-",
            "-o",
            "json",
            "--include-dry-run",
        ],
        &stdin,
    );
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["stats"]["records"], 15);
    assert_eq!(report["stats"]["unparseableLines"], 4);
    assert_eq!(report["stats"]["appLogLines"], 1);
    assert_eq!(report["stats"]["blankLines"], 1);
    let log_name = log.to_str().unwrap();
    assert_eq!(
        report["unparseable"],
        json!([
            {"source": log_name, "count": 3, "lines": [
                {"line": 14, "error": "not JSON: expected value at line 1 column 1"},
                {"line": 15, "error": "not an audit record: invalid type: integer `1`, expected a string at line 1 column 9"},
                {"line": 18, "error": "not an audit record: EOF while parsing a string at line 1 column 32"},
            ]},
            {"source": "<stdin>", "count": 1, "lines": [
                {"line": 2, "error": "not JSON: expected ident at line 1 column 2"},
            ]},
        ])
    );
    assert_eq!(report["appLogLines"][0]["lines"][0]["line"], 17);

    let table = stdout(&fluxgate(&[log_name, "-"], &stdin));
    assert!(table.contains("UNPARSEABLE LINES: 4"), "{table}");
    assert!(table.contains(&format!("  {log_name}: 3 lines")), "{table}");
    assert!(table.contains("    line 14: not JSON"), "{table}");
    assert!(
        table.contains("    line 18: not an audit record"),
        "{table}"
    );
    assert!(
        table.contains("  <stdin>: 1 line\n    line 2: not JSON"),
        "{table}"
    );
    assert!(
        table.contains(&format!("  {log_name}: 1 line: 17")),
        "{table}"
    );
}

#[test]
fn kubectl_logs_with_application_lines_are_read_from_stdin() {
    // `kubectl logs` interleaves fluxgate's stderr (application logs) with the audit lines.
    let input = std::fs::read(format!("{FIXTURES}/audit/kubectl-logs.txt")).unwrap();
    let report: Value = serde_json::from_str(&stdout(&fluxgate(&["-o", "json"], &input))).unwrap();
    assert_eq!(report["inputs"], json!(["<stdin>"]));
    assert_eq!(report["stats"]["unparseableLines"], 0, "{report}");
    assert!(
        report["stats"]["appLogLines"].as_u64().unwrap() >= 2,
        "{report}"
    );
    assert!(
        report["stats"]["records"].as_u64().unwrap() >= 10,
        "{report}"
    );
    assert_eq!(report["summary"]["bypasses"][0]["reason"], BYPASS_REASON);
}

#[test]
fn unreadable_input_and_bad_flags_exit_2() {
    let out = fluxgate(&["/nonexistent/audit.log"], b"");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read /nonexistent/audit.log"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    for args in [
        &["--since", "yesterday"][..],
        &["--reason", "closed"],
        &["--decision", "maybe"],
        &["-", "-"],
    ] {
        let out = fluxgate(args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = fluxgate(&["--reason", "closed"], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("one of: not-flux, not-governed"),
        "{stderr}"
    );
}

/// The example windows, with business-hours opened by an override on Friday 12:00–16:00.
fn windows_with_override() -> fluxgate_core::window::WindowSet {
    let text = fluxgate::windows::EMBEDDED_WINDOWS.replacen(
        "      reason: Year-end change freeze\n",
        "      reason: Year-end change freeze\n  overrides:\n    - start: 2026-11-27T12:00:00+01:00\n      end: 2026-11-27T16:00:00+01:00\n      reason: CHG-4711 release 2.3\n",
        1,
    );
    fluxgate_core::window::WindowSet::from_yaml("windows.yaml", &text).unwrap()
}

#[tokio::test]
async fn overrides_are_listed_with_their_reason_and_end_and_selected_by_reason() {
    let scratch = Scratch::new("overrides");
    let log = scratch.path("audit.log");
    let reviews = [
        mutated("flux-dryrun-image-bump-deployment.json", "o-1", |_| {}),
        mutated("flux-dryrun-image-bump-deployment.json", "o-2", |r| {
            r["dryRun"] = json!(false)
        }),
        mutated("flux-prune-deployment.json", "o-3", |_| {}),
    ];
    decide_with(&log, windows_with_override(), friday, &reviews).await;
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(log_text.lines().count(), 3);
    for line in log_text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["reason"], "override", "{line}");
        assert_eq!(
            record["windows"][0]["override"],
            json!({
                "reason": "CHG-4711 release 2.3",
                "start": "2026-11-27T12:00:00+01:00",
                "end": "2026-11-27T16:00:00+01:00"
            })
        );
    }

    let table = stdout(&fluxgate(&[log.to_str().unwrap()], b""));
    assert!(table.contains("OVERRIDES: 1"), "{table}");
    let row = table
        .lines()
        .find(|l| l.contains("CHG-4711 release 2.3"))
        .unwrap_or_else(|| panic!("{table}"));
    // Two decisions: the admitted dry-run is left out by default, as with every admitted one.
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..4],
        [
            "business-hours",
            "2026-11-27T12:00:00+01:00",
            "2026-11-27T16:00:00+01:00",
            "2"
        ],
        "{row}"
    );

    let report = audit_json(&log, &["--reason", "override", "--include-dry-run"]);
    assert_eq!(uids(&report), ["o-1", "o-2", "o-3"]);
    assert_eq!(report["summary"]["overrides"][0]["decisions"], 3);
    assert_eq!(
        report["summary"]["overrides"][0]["reason"],
        "CHG-4711 release 2.3"
    );
}

#[tokio::test]
async fn warn_mode_records_are_admitted_say_warn_and_are_selected_by_enforcement() {
    let scratch = Scratch::new("warn");
    let log = scratch.path("audit.log");
    let text = fluxgate::windows::EMBEDDED_WINDOWS.replacen(
        "  timeZone: Europe/Berlin\n",
        "  timeZone: Europe/Berlin\n  enforcement: Warn\n",
        1,
    );
    let windows = fluxgate_core::window::WindowSet::from_yaml("windows.yaml", &text).unwrap();
    let reviews = [
        // business-hours (Warn) closed: admitted, would deny.
        mutated("flux-dryrun-image-bump-deployment.json", "w-1", |_| {}),
        // The same object in the default window (Enforce, open on Friday 13:00 UTC).
        mutated("flux-dryrun-image-bump-deployment.json", "w-2", |r| {
            r["object"]["metadata"]["labels"]["fluxgate.io/window"] = json!("default");
            r["oldObject"]["metadata"]["labels"]["fluxgate.io/window"] = json!("default");
        }),
    ];
    decide_with(&log, windows, friday, &reviews).await;
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        (
            &lines[0]["decision"],
            &lines[0]["reason"],
            &lines[0]["enforcement"]
        ),
        (&json!("allow"), &json!("window-closed"), &json!("warn"))
    );
    assert!(lines[1].get("enforcement").is_none(), "{}", lines[1]);

    // The would-be denial is shown even though it is an admitted dry-run.
    let report = audit_json(&log, &["--enforcement", "warn"]);
    assert_eq!(uids(&report), ["w-1"]);
    let report = audit_json(&log, &["--enforcement", "enforce", "--include-dry-run"]);
    assert_eq!(uids(&report), ["w-2"]);
    let table = stdout(&fluxgate(
        &[log.to_str().unwrap(), "--enforcement", "warn"],
        b"",
    ));
    assert!(table.contains("enforcement warn"), "{table}");
    assert!(table.contains("allow/warn  window-closed"), "{table}");
}

#[test]
fn since_accepts_days() {
    let out = fluxgate(
        &[
            &format!("{FIXTURES}/audit/kubectl-logs.txt"),
            "--since",
            "7d",
            "--at",
            "2026-11-28T00:00:00Z",
        ],
        b"",
    );
    let table = stdout(&out);
    assert!(table.contains("since 2026-11-21T00:00:00Z"), "{table}");
}

/// What `fluxgate audit`'s table shows that is not a line end: every control character in it.
fn controls(text: &str) -> (usize, usize, usize, usize) {
    let count = |c: char| text.matches(c).count();
    let all = text
        .chars()
        .filter(|&c| c != '\n' && fluxgate_core::render::escape::needs_escape(c))
        .count();
    (all, count('\u{1b}'), count('\0'), count('\r'))
}

/// Issue 21 (5): names, users, owners, windows and bypass reasons come from the request (a
/// caller without a client certificate chooses all of them). A newline there once printed a
/// second row, a fake "allow bypass Deployment prod/payments", and `ESC[8m` hid what followed.
/// Every section shows them escaped: one row per record, no control character but line ends.
#[tokio::test]
async fn control_characters_from_records_are_shown_escaped_in_every_section() {
    let dir = Scratch::new("controls");
    let log = dir.path("audit.log");
    let fake_row = "2026-11-27T12:00:00Z  allow     bypass           CREATE        business-hours    Deployment prod/payments";
    let create = "flux-create-deployment-rw.json";
    let reviews = [
        mutated(create, "newline-name", |r| {
            r["name"] = json!(format!("nginx\n{fake_row}"));
            annotate(
                r,
                Some("hotfix\u{1b}[8m, approved by nobody\r\0"),
                "2026-11-27T14:00:00Z",
            );
        }),
        mutated(create, "nul-namespace", |r| {
            r["namespace"] = json!("\0\0prod\u{9b}2J");
            r["userInfo"]["username"] = json!(format!("admin\r{fake_row}"));
            let labels = &mut r["object"]["metadata"]["labels"];
            labels["kustomize.toolkit.fluxcd.io/name"] = json!("apps\u{1b}[2J\u{202e}");
            labels["fluxgate.io/window"] = json!("busines\nhours\u{1b}[8m");
        }),
    ];
    decide(&log, friday, &reviews).await;
    {
        // A line whose parse error quotes it: serde's "unknown variant `…`".
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(b"{\"time\":\"2026-11-27T12:00:00Z\",\"uid\":\"x\",\"decision\":\"\\u001b[8mallow\\r\"}\n")
            .unwrap();
    }
    let out = fluxgate(&[log.to_str().unwrap()], b"");
    let table = stdout(&out);
    let (all, esc, nul, cr) = controls(&table);
    println!(
        "control characters in the report: {all} ({esc} ESC, {nul} NUL, {cr} CR), {} lines",
        table.lines().count()
    );
    assert_eq!(all, 0, "{table:?}");
    // One row each, and the fake one nowhere at the start of a line.
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("2026-")).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows[0].contains(r"Deployment nginx/nginx\n2026-11-27T12:00:00Z  allow"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains(r"Deployment \0\0prod\u{9b}2J/nginx"),
        "{}",
        rows[1]
    );
    assert!(
        rows[1].ends_with(&format!(r"admin\r{fake_row}")),
        "{}",
        rows[1]
    );
    assert!(table.contains("BYPASSES: 1\n"), "{table}");
    assert!(
        table.contains(r"hotfix\u{1b}[8m, approved by nobody\r\0"),
        "{table}"
    );
    assert!(
        table.contains(r"Kustomization flux-system/apps\u{1b}[2J\u{202e}"),
        "{table}"
    );
    assert!(table.contains(r"busines\nhours\u{1b}[8m"), "{table}");
    assert!(
        table.contains(r"unknown variant `\u{1b}[8mallow\r`"),
        "{table}"
    );
    // The JSON report holds the values themselves.
    let report = audit_json(&log, &[]);
    assert_eq!(
        report["summary"]["bypasses"][0]["reason"],
        "hotfix\u{1b}[8m, approved by nobody\r\0"
    );
}

/// Issue 21 (10): `fluxgate audit` of a file fluxgate is appending to stops at its last
/// newline. The half record after it is reported as left unread, not as unparseable, and the
/// next review counts it once it is whole.
#[tokio::test]
async fn a_half_written_last_line_is_left_for_the_next_review() {
    let dir = Scratch::new("partial");
    let log = dir.path("audit.log");
    write_log(&log).await;
    let whole = std::fs::read(&log).unwrap();
    let last_start = whole[..whole.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    std::fs::write(&log, &whole[..last_start + 200]).unwrap();

    let report = audit_json(&log, &["--include-dry-run"]);
    assert_eq!(report["stats"]["records"], 12);
    assert_eq!(report["stats"]["unparseableLines"], 0);
    assert_eq!(
        report["partialLastLines"],
        json!([{"source": log.to_str().unwrap(), "line": 13, "bytes": 200}])
    );
    let table = stdout(&fluxgate(&[log.to_str().unwrap()], b""));
    assert!(
        table.contains("line 13 has no newline yet (200 bytes; a file being written): left unread"),
        "{table}"
    );
    assert!(table.contains("UNPARSEABLE LINES: 0"), "{table}");

    std::fs::write(&log, &whole).unwrap();
    let report = audit_json(&log, &["--include-dry-run"]);
    assert_eq!(report["stats"]["records"], 13);
    assert_eq!(report["partialLastLines"], json!([]));
}

/// `fluxgate audit` on a file that holds no audit record (here the windows YAML) is an error,
/// not an empty report with exit 0: an auditor who gave the wrong file must learn it.
#[test]
fn a_file_without_one_audit_record_is_an_error() {
    let windows = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples/windows.yaml");
    let out = fluxgate(&[windows], b"");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("fluxgate: no audit record in {windows}: ")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // An empty log is not an error: nothing was decided yet.
    let out = fluxgate(&["-"], b"");
    assert_eq!(out.status.code(), Some(0));
}
