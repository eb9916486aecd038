//! `fluxgate lint` run as the built binary on small rendered manifests
//! (`tests/fixtures/lint/`), and on the seed GitOps example rendered with `kubectl kustomize`.

mod common;

use serde_json::Value;
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Friday 2026-11-27 12:00 UTC: the bypass fixtures are written for this instant.
const AT: &str = "2026-11-27T12:00:00Z";

fn lint_fixture(name: &str) -> String {
    format!("{ROOT}/tests/fixtures/lint/{name}")
}

fn fluxgate(args: &[&str], stdin: &[u8]) -> Output {
    let args: Vec<&str> = std::iter::once("lint")
        .chain(args.iter().copied())
        .collect();
    common::run_fluxgate(&args, stdin, &[])
}

/// Lints fixture files as JSON at [`AT`]; returns the exit code and the report.
fn lint_json(files: &[&str], extra: &[&str]) -> (i32, Value) {
    let paths: Vec<String> = files.iter().map(|f| lint_fixture(f)).collect();
    let mut args: Vec<&str> = paths.iter().map(String::as_str).collect();
    args.extend(["--at", AT, "-o", "json"]);
    args.extend(extra);
    let out = fluxgate(&args, b"");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}; stdout: {}; stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), report)
}

/// `(severity, check, object, at)` of each finding, `at` without the fixture folder.
fn findings(report: &Value) -> Vec<(String, String, String, String)> {
    let folder = format!("{ROOT}/tests/fixtures/lint/");
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap().replace(&folder, "");
            (text("severity"), text("check"), text("object"), text("at"))
        })
        .collect()
}

fn finding(
    severity: &str,
    check: &str,
    object: &str,
    at: &str,
) -> (String, String, String, String) {
    (severity.into(), check.into(), object.into(), at.into())
}

#[test]
fn a_clean_render_passes() {
    let (code, report) = lint_json(&["clean.yaml"], &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["objects"], 2);
    assert_eq!(report["findings"], serde_json::json!([]));
    let out = fluxgate(&[&lint_fixture("clean.yaml"), "--at", AT], b"");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("clean.yaml: no problems"), "{text}");
}

#[test]
fn an_owner_mixing_rt_and_rw_fails() {
    let (code, report) = lint_json(&["mixed-owner.yaml"], &[]);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&report),
        [finding(
            "error",
            "mixed-owner",
            "Kustomization flux-system/apps",
            "mixed-owner.yaml:2"
        )]
    );
    let message = report["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("rw: Deployment nginx/nginx; rt: ConfigMap nginx/nginx-conf"),
        "{message}"
    );
}

#[test]
fn unknown_windows_fail_and_windows_flags_are_honoured() {
    let (code, report) = lint_json(&["unknown-window.yaml"], &[]);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&report),
        [finding(
            "error",
            "unknown-window",
            "Deployment nginx/nginx",
            "unknown-window.yaml:1"
        )]
    );
    // With the GitOps fixture windows (business-hours, weekend) there is no `default` window.
    let windows = format!("{ROOT}/tests/fixtures/windows/gitops/reconciliation-windows");
    let (code, report) = lint_json(&["unknown-window.yaml"], &["--windows", &windows]);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&report),
        [
            finding(
                "error",
                "unknown-window",
                "Deployment nginx/nginx",
                "unknown-window.yaml:1"
            ),
            finding(
                "error",
                "unknown-window",
                "Service nginx/nginx",
                "unknown-window.yaml:12"
            ),
        ]
    );
    assert!(
        report["findings"][1]["message"]
            .as_str()
            .unwrap()
            .contains("default window \"default\""),
        "{report}"
    );
    // ... unless the default window is one of them.
    let (_, report) = lint_json(
        &["unknown-window.yaml"],
        &["--windows", &windows, "--default-window", "weekend"],
    );
    assert_eq!(findings(&report).len(), 1, "{report}");
}

#[test]
fn bypasses_expired_too_far_or_malformed_fail_and_one_in_place_warns() {
    let (code, report) = lint_json(&["bypasses.yaml"], &[]);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&report),
        [
            finding(
                "warning",
                "bypass-in-place",
                "Deployment nginx/left-in-place",
                "bypasses.yaml:2"
            ),
            finding(
                "error",
                "invalid-bypass",
                "Deployment nginx/expired",
                "bypasses.yaml:14"
            ),
            finding(
                "error",
                "invalid-bypass",
                "Deployment nginx/too-far-ahead",
                "bypasses.yaml:26"
            ),
            finding(
                "error",
                "invalid-bypass",
                "Deployment nginx/malformed",
                "bypasses.yaml:38"
            ),
            finding(
                "error",
                "invalid-bypass",
                "Deployment nginx/no-reason",
                "bypasses.yaml:50"
            ),
        ]
    );
    let messages: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(messages[1].contains("has expired"), "{}", messages[1]);
    assert!(
        messages[2].contains("more than 24h ahead"),
        "{}",
        messages[2]
    );
    assert!(
        messages[3].contains("not an RFC 3339 time"),
        "{}",
        messages[3]
    );
    assert!(
        messages[4].contains("bypass-reason is missing"),
        "{}",
        messages[4]
    );
    assert_eq!(report["errors"], 4);
    assert_eq!(report["warnings"], 1);

    // --max-bypass is the webhook's: a month ahead is fine with --max-bypass 800h.
    let (_, report) = lint_json(&["bypasses.yaml"], &["--max-bypass", "800h"]);
    assert_eq!(
        report["findings"][2]["check"], "bypass-in-place",
        "{report}"
    );

    // Warnings alone exit 0.
    let (code, report) = lint_json(&["bypass-in-place.yaml"], &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["warnings"], 1);
    let fix = report["findings"][0]["fix"].as_str().unwrap();
    assert!(fix.contains("remove fluxgate.io/bypass-reason"), "{fix}");
}

#[test]
fn rw_namespaces_crds_and_bad_modes_fail() {
    let (code, report) = lint_json(&["rw-namespace-crd.yaml", "bad-mode.yaml"], &[]);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&report),
        [
            finding(
                "error",
                "rw-early-stage",
                "Namespace nginx",
                "rw-namespace-crd.yaml:2"
            ),
            finding(
                "error",
                "rw-early-stage",
                "CustomResourceDefinition widgets.example.com",
                "rw-namespace-crd.yaml:9"
            ),
            finding(
                "error",
                "invalid-mode",
                "Deployment nginx/nginx",
                "bad-mode.yaml:1"
            ),
        ]
    );
}

#[test]
fn windows_in_the_input_are_validated_and_known_to_every_input() {
    let (code, report) = lint_json(&["windows.yaml", "uses-window.yaml"], &[]);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&report),
        [finding(
            "error",
            "invalid-window",
            "ReconciliationWindow broken",
            "windows.yaml:12"
        )]
    );
    let message = report["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.timeZone: \"Europe/Berln\""),
        "{message}"
    );
    // Without windows.yaml, "maintenance" is unknown.
    let (_, report) = lint_json(&["uses-window.yaml"], &[]);
    assert_eq!(report["findings"][0]["check"], "unknown-window");
}

#[test]
fn table_output_names_object_place_and_fix() {
    let out = fluxgate(
        &["--at", AT],
        &std::fs::read(lint_fixture("mixed-owner.yaml")).unwrap(),
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("error[mixed-owner] Kustomization flux-system/apps (<stdin>:2)")
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("  applies 1 rw and 1 rt objects"),
        "{text}"
    );
    assert!(
        lines.next().unwrap().starts_with("  fix: split them"),
        "{text}"
    );
    assert!(
        text.ends_with("2 objects in <stdin>: 1 error, 0 warnings\n"),
        "{text}"
    );
}

#[test]
fn unreadable_input_exits_2_naming_file_and_line() {
    let out = fluxgate(&[&lint_fixture("invalid.yaml")], b"");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tests/fixtures/lint/invalid.yaml:10: not valid YAML"),
        "{stderr}"
    );
    let out = fluxgate(&["/nonexistent.yaml"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent.yaml"));
}

/// The seed example (`deploy/examples/gitops`): each app folder rendered the way Flux
/// renders it lints clean against the example windows.
#[test]
fn seed_gitops_example_lints_clean() {
    // Skipped without kubectl, except in CI, where that fails.
    if !common::kubectl_available() {
        println!("skipped: kubectl is not on PATH (needed for kubectl kustomize)");
        return;
    }
    let windows = format!("{ROOT}/deploy/examples/windows.yaml");
    // The app folders, and the cluster folders the Flux Kustomizations apps-rw and apps-rt
    // point at.
    for app in [
        "apps/nginx/nginx-rw",
        "apps/nginx/nginx-rt",
        "clusters/cluster-1/apps/apps-rw",
        "clusters/cluster-1/apps/apps-rt",
    ] {
        let folder = format!("{ROOT}/deploy/examples/gitops/{app}");
        let rendered = Command::new("kubectl")
            .args(["kustomize", &folder])
            .output()
            .unwrap();
        assert!(
            rendered.status.success(),
            "kubectl kustomize {folder}: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let out = fluxgate(&["--windows", &windows, "-o", "json"], &rendered.stdout);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{app}: {report}");
        assert_eq!(report["findings"], serde_json::json!([]), "{app}: {report}");
        assert!(report["objects"].as_u64().unwrap() >= 1, "{app}: {report}");
    }
}

#[test]
fn a_passed_override_is_a_reminder_and_a_too_long_one_an_error() {
    let (code, report) = lint_json(&["overrides.yaml"], &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        findings(&report),
        [
            finding(
                "warning",
                "expired-override",
                "ReconciliationWindow releases",
                "overrides.yaml:2"
            ),
            finding(
                "error",
                "invalid-window",
                "ReconciliationWindow weekend-release",
                "overrides.yaml:19"
            ),
        ]
    );
    let messages: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(
        messages[0].contains("spec.overrides[0] (CHG-4700 release 2.2) ended"),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("48h long, more than --max-override 24h"),
        "{messages:?}"
    );
    assert_eq!(
        report["findings"][1]["fix"],
        "correct the field the message names; the webhook rejects this window as it is"
    );
    // A larger --max-override admits the weekend.
    let (code, report) = lint_json(&["overrides.yaml"], &["--max-override", "48h"]);
    assert_eq!(code, 0, "{report}");
}

#[test]
fn day_fields_that_are_ored_are_a_warning_naming_the_fix() {
    let windows = format!("{ROOT}/tests/fixtures/windows/first-sunday.yaml");
    let out = fluxgate(&[&windows, "--at", AT, "-o", "json"], b"");
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report}");
    assert_eq!(findings[0]["check"], "cron-days-either");
    assert_eq!(findings[0]["object"], "ReconciliationWindow first-sunday");
    assert!(
        findings[0]["message"].as_str().unwrap().contains("SUN#1"),
        "{report}"
    );
}

#[test]
fn rw_objects_in_a_namespace_flux_may_prune_apart_are_a_warning() {
    let (code, report) = lint_json(&["cascading-delete.yaml"], &[]);
    assert_eq!(code, 0, "a warning: {report}");
    let cascades: Vec<_> = findings(&report)
        .into_iter()
        .filter(|f| f.1 == "cascading-delete")
        .collect();
    assert_eq!(
        cascades,
        [finding(
            "warning",
            "cascading-delete",
            "Deployment nginx/nginx",
            "cascading-delete.yaml:21"
        )]
    );
    let message = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "cascading-delete")
        .unwrap();
    assert!(
        message["message"]
            .as_str()
            .unwrap()
            .contains("Namespace nginx is applied as rt by Kustomization flux-system/apps-rt"),
        "{message}"
    );
    assert!(
        message["fix"]
            .as_str()
            .unwrap()
            .contains("kustomize.toolkit.fluxcd.io/prune: disabled"),
        "{message}"
    );
}
