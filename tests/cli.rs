//! `fluxgate review` and `fluxgate status`, run as the built binary the way a user runs them.

mod common;

use serde_json::{Value, json};
use std::process::Output;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
/// Friday 13:00 in Berlin: business-hours closed until Monday 08:00.
const CLOSED: &str = "2026-11-27T12:00:00Z";

fn fluxgate(args: &[&str], stdin: &[u8]) -> Output {
    fluxgate_env(args, stdin, &[])
}

fn fluxgate_env(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    common::run_fluxgate(args, stdin, env)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/admission/{name}")).unwrap()
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn review_denies_flux_image_bump_while_closed_and_exits_zero() {
    let out = fluxgate(
        &["review", "--at", CLOSED],
        &fixture("flux-dryrun-image-bump-deployment.json"),
    );
    let review = stdout_json(&out);
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    let response = &review["response"];
    assert_eq!(response["uid"], "382e71b4-420a-484a-9200-d062f988c348");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(response["status"]["reason"], "Forbidden");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Deployment nginx/nginx is governed by reconciliation window \"business-hours\", closed until 2026-11-30T08:00:00+01:00 (Europe/Berlin)"),
        "{message}"
    );
    assert_eq!(response["auditAnnotations"]["reason"], "window-closed");
}

#[test]
fn review_admits_the_same_request_while_open() {
    let out = fluxgate(
        &["review", "--at", "2026-11-30T07:00:00Z"],
        &fixture("flux-dryrun-image-bump-deployment.json"),
    );
    let response = &stdout_json(&out)["response"];
    assert_eq!(response["allowed"], true);
    assert_eq!(
        response["auditAnnotations"],
        json!({"decision": "allow", "reason": "window-open", "window": "business-hours"})
    );
}

#[test]
fn review_reads_windows_from_a_gitops_folder() {
    let folder = format!("{FIXTURES}/windows/gitops");
    // Saturday in New York: the weekend window is open, business-hours closed.
    let mut bump: Value =
        serde_json::from_slice(&fixture("flux-dryrun-image-bump-deployment.json")).unwrap();
    bump["request"]["object"]["metadata"]["labels"]["fluxgate.io/window"] = json!("weekend");
    bump["request"]["oldObject"]["metadata"]["labels"]["fluxgate.io/window"] = json!("weekend");
    let body = serde_json::to_vec(&bump).unwrap();
    let out = fluxgate(
        &[
            "review",
            "--windows",
            &folder,
            "--at",
            "2026-11-28T15:00:00Z",
        ],
        &body,
    );
    assert_eq!(
        stdout_json(&out)["response"]["auditAnnotations"]["reason"],
        "window-open"
    );
    // The embedded `nightly` window is not in that folder.
    bump["request"]["object"]["metadata"]["labels"]["fluxgate.io/window"] = json!("nightly");
    let body = serde_json::to_vec(&bump).unwrap();
    let out = fluxgate(
        &[
            "review",
            "--windows",
            &folder,
            "--at",
            "2026-11-28T15:00:00Z",
        ],
        &body,
    );
    let response = &stdout_json(&out)["response"];
    assert_eq!(response["auditAnnotations"]["reason"], "unknown-window");
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("known windows: business-hours, weekend")
    );
}

#[test]
fn review_takes_flags_from_environment_twins() {
    let body = fixture("flux-dryrun-image-bump-deployment.json");
    let out = fluxgate_env(&["review"], &body, &[("FLUXGATE_AT", CLOSED)]);
    assert_eq!(
        stdout_json(&out)["response"]["auditAnnotations"]["reason"],
        "window-closed"
    );
    // Flux is whoever the environment says.
    let out = fluxgate_env(
        &["review"],
        &body,
        &[
            ("FLUXGATE_AT", CLOSED),
            ("FLUXGATE_FLUX_USER", "someone-else"),
            ("FLUXGATE_FLUX_FIELD_MANAGER", "other"),
        ],
    );
    assert_eq!(
        stdout_json(&out)["response"]["auditAnnotations"]["reason"],
        "not-flux"
    );
}

#[test]
fn review_of_garbage_exits_2_with_one_line() {
    let out = fluxgate(&["review"], b"{\"kind\": ");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("fluxgate: stdin: not an AdmissionReview"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// The example of an invalid window in docs/decision.md is what fluxgate says of
/// `tests/fixtures/windows/broken/windows.yaml`, word for word. Issue 23: it said the line its
/// document starts on (`windows.yaml:10:`), where the docs promise the field's (18).
#[test]
fn review_with_invalid_windows_exits_2_naming_the_field() {
    let broken = format!("{FIXTURES}/windows/broken/windows.yaml");
    let out = fluxgate(
        &["review", "--windows", &broken],
        &fixture("flux-dryrun-image-bump-deployment.json"),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/decision.md")).unwrap();
    let example = readme
        .split_once("- **Invalid windows**")
        .and_then(|(_, rest)| rest.split_once("for example `"))
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(example, _)| example.split_whitespace().collect::<Vec<_>>().join(" "))
        .expect("docs/decision.md's example of an invalid window");
    assert!(
        example.starts_with(
            "windows.yaml:18: ReconciliationWindow \"business-hours\": spec.schedules[0].close"
        ),
        "{example}"
    );
    assert!(
        err.contains(&example),
        "docs/decision.md's example\n  {example}\nis not what fluxgate says:\n  {err}"
    );
}

#[test]
fn review_with_missing_windows_path_exits_2() {
    let out = fluxgate(&["review", "--windows", "/nonexistent/windows"], b"{}");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read /nonexistent/windows"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_at_is_a_usage_error() {
    let out = fluxgate(&["status", "--at", "yesterday"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("\"yesterday\" is not an RFC 3339 time"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn status_json_lists_every_window_with_since_and_next() {
    let out = fluxgate(&["status", "--at", CLOSED, "-o", "json"], b"");
    assert_eq!(
        stdout_json(&out),
        json!([
            {"name": "business-hours", "open": false, "since": "2026-11-26T17:00:00+01:00",
             "next": "2026-11-30T08:00:00+01:00", "timeZone": "Europe/Berlin",
             "frozen": false, "enforcement": "Enforce"},
            {"name": "default", "open": true, "since": "2026-11-27T09:00:00Z",
             "next": "2026-11-27T17:00:00Z", "timeZone": "UTC",
             "frozen": false, "enforcement": "Enforce"},
            {"name": "nightly", "open": false, "since": "2026-11-27T00:00:00+01:00",
             "next": "2026-11-27T22:00:00+01:00", "timeZone": "Europe/Berlin",
             "frozen": false, "enforcement": "Enforce"},
        ])
    );
}

#[test]
fn status_json_with_windows_folder_and_env() {
    let folder = format!("{FIXTURES}/windows/gitops");
    let out = fluxgate_env(
        &["status", "-o", "json"],
        b"",
        &[("FLUXGATE_WINDOWS", &folder), ("FLUXGATE_AT", CLOSED)],
    );
    let names: Vec<String> = stdout_json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["business-hours", "weekend"]);
}

#[test]
fn status_table_is_readable() {
    let out = fluxgate(&["status", "--at", "2026-12-22T10:00:00Z"], b"");
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("WINDOW"), "{table}");
    let business = lines
        .iter()
        .find(|l| l.starts_with("business-hours"))
        .unwrap();
    assert!(
        business.contains("frozen (Year-end change freeze)"),
        "{table}"
    );
    assert!(business.contains("Mon 2027-01-04 08:00 CET"), "{table}");
    assert!(stderr_contains_embedded_note(&out.stderr));
}

fn stderr_contains_embedded_note(stderr: &[u8]) -> bool {
    String::from_utf8_lossy(stderr).contains("embedded example windows")
}

#[test]
fn every_invalid_window_is_reported_at_once_with_file_line_and_fix() {
    let folder = format!("{FIXTURES}/windows/mistakes");
    let out = fluxgate(&["status", "--windows", &folder], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out).replace(&format!("{folder}/"), "");
    assert!(err.contains("4 invalid windows:"), "{err}");
    for want in [
        "a.yaml:8: ReconciliationWindow \"words\": spec.schedules[0].start: \"0 22 * * MONDAY\": \
         day-of-week field \"MONDAY\": \"MONDAY\" is not a name cron reads: write MON",
        "a.yaml:17: ReconciliationWindow \"mixed-pair\": spec.schedules[0]: open goes with close, \
         start with duration",
        "b.yaml:8: ReconciliationWindow \"never-open\": spec.schedules[0].close: \"0 8 * * MON\" \
         fires exactly when open \"0 8 * * 1\" does",
        "b.yaml:19: ReconciliationWindow \"freeze-date\": spec.freezes[0].start: \"24.12.2026\" is \
         not a time: write RFC 3339 (2026-12-24T00:00:00+01:00), a local time in timeZone \
         (2026-12-24T00:00:00) or a date for its midnight (2026-12-24)",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    // The duration is checked once the cron is fixed: "2 hours" gets its fix too.
    let text = std::fs::read_to_string(format!("{folder}/a.yaml"))
        .unwrap()
        .replace("MONDAY", "MON");
    let scratch = std::env::temp_dir().join(format!("fluxgate-words-{}.yaml", std::process::id()));
    std::fs::write(&scratch, text).unwrap();
    let out = fluxgate(&["status", "--windows", scratch.to_str().unwrap()], b"");
    let _ = std::fs::remove_file(&scratch);
    assert!(
        stderr(&out)
            .contains("spec.schedules[0].duration: \"2 hours\" is not a duration: write 2h"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_default_window_that_names_no_window_is_an_error_at_start() {
    let out = fluxgate(
        &["review", "--default-window", "defualt"],
        &fixture("flux-dryrun-image-bump-deployment.json"),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(
            "--default-window \"defualt\" names no window (known: business-hours, default, nightly)"
        ),
        "{err}"
    );
    // The listener is up before the windows load (so /healthz answers meanwhile): any port.
    let out = fluxgate_env(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        b"",
        &[("FLUXGATE_DEFAULT_WINDOW", "defualt")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("names no window"), "{}", stderr(&out));
}

#[test]
fn status_warns_about_day_fields_that_are_ored_and_shows_the_fix() {
    let windows = format!("{FIXTURES}/windows/first-sunday.yaml");
    let out = fluxgate(&["status", "--windows", &windows, "--at", CLOSED], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.matches("warning").count(),
        1,
        "only the 1-7 + SUN one: {err}"
    );
    assert!(
        err.contains(
            "window \"first-sunday\": spec.schedules[0].start: \"0 2 1-7 * SUN\" restricts both \
             day-of-month (1-7) and day-of-week (SUN), so it fires on a day that matches EITHER"
        ),
        "{err}"
    );
    assert!(err.contains("SUN#1"), "{err}");
    let json = stdout_json(&fluxgate(
        &[
            "status",
            "--windows",
            &windows,
            "--at",
            CLOSED,
            "-o",
            "json",
        ],
        b"",
    ));
    assert!(
        json[0]["warnings"][0].as_str().unwrap().contains("EITHER"),
        "{json}"
    );
    assert!(json[1].get("warnings").is_none(), "{json}");
    // The fixed one opens on the first Sunday only: 2026-12-06 02:00 Berlin.
    assert_eq!(json[1]["next"], "2026-12-06T02:00:00+01:00");
    // The ORed one opens on every Sunday too: Sunday 2026-11-29, not only on days 1 to 7.
    assert_eq!(json[0]["next"], "2026-11-29T02:00:00+01:00");
}

#[test]
fn status_json_carries_frozen_and_the_freeze() {
    let out = fluxgate(
        &["status", "--at", "2026-12-22T10:00:00Z", "-o", "json"],
        b"",
    );
    let json = stdout_json(&out);
    let business = &json[0];
    assert_eq!(business["name"], "business-hours");
    assert_eq!(business["frozen"], true);
    assert_eq!(
        business["freeze"],
        json!({
            "reason": "Year-end change freeze",
            "allowBypass": true,
            "start": "2026-12-20T00:00:00+01:00",
            "end": "2027-01-04T00:00:00+01:00"
        })
    );
    assert_eq!(json[1]["frozen"], false);
}

#[test]
fn review_reads_a_file_argument_like_lint_and_audit() {
    let file = format!("{FIXTURES}/admission/flux-dryrun-image-bump-deployment.json");
    let out = fluxgate(&["review", "--at", CLOSED, &file], b"");
    let response = stdout_json(&out);
    assert_eq!(response["response"]["allowed"], false);
    // `-` is standard input.
    let out = fluxgate(
        &["review", "--at", CLOSED, "-"],
        &fixture("flux-dryrun-image-bump-deployment.json"),
    );
    assert_eq!(stdout_json(&out)["response"]["allowed"], false);
}

#[test]
fn a_missing_file_prints_its_cause_once() {
    let out = fluxgate(&["review", "/nonexistent/review.json"], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(
        err.trim(),
        "fluxgate: cannot read /nonexistent/review.json: No such file or directory (os error 2)"
    );
    let out = fluxgate(&["status", "--windows", "/nonexistent/windows"], b"");
    let err = stderr(&out);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// A file name in a windows folder is chosen by whoever commits to it: the error that names the
/// file shows its control characters escaped, so it cannot hide the rest of the message.
#[test]
fn an_error_naming_a_file_escapes_its_control_characters() {
    let dir = common::Scratch::new("error-escape");
    std::fs::write(dir.0.join("\u{1b}[8mhidden.yaml"), "spec: [unclosed\n").unwrap();
    let out = fluxgate(&["status", "--windows", dir.0.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(!err.contains('\u{1b}'), "a raw escape on stderr: {err:?}");
    assert!(err.contains("\\u{1b}[8mhidden.yaml"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn tz_applies_to_the_table_and_json_too() {
    let out = fluxgate(
        &[
            "status",
            "--at",
            CLOSED,
            "--tz",
            "America/New_York",
            "-o",
            "json",
        ],
        b"",
    );
    let json = stdout_json(&out);
    // business-hours opens Monday 08:00 Berlin: 02:00 in New York. Its own zone is still named.
    assert_eq!(json[0]["next"], "2026-11-30T02:00:00-05:00");
    assert_eq!(json[0]["timeZone"], "Europe/Berlin");
    let out = fluxgate(&["status", "--at", CLOSED, "--tz", "America/New_York"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Mon 2026-11-30 02:00 EST"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn status_help_lists_only_flags_that_do_something_there() {
    let out = fluxgate(&["status", "--help"], b"");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--windows", "--at", "--output", "--week", "--tz"] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
    for flag in [
        "--flux-user",
        "--max-bypass",
        "--default-window",
        "--max-override",
    ] {
        assert!(
            !help.contains(flag),
            "{flag} does nothing in status:\n{help}"
        );
    }
    // The decide commands show the Flux defaults.
    let out = fluxgate(&["serve", "--help"], b"");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("system:serviceaccount:flux-system:kustomize-controller"),
        "{help}"
    );
    assert!(help.contains("[default: kustomize-controller"), "{help}");
}

#[test]
fn a_search_that_stops_is_said_in_status_and_in_the_denial() {
    let windows = format!("{FIXTURES}/windows/busy.yaml");
    let json = stdout_json(&fluxgate(
        &[
            "status",
            "--windows",
            &windows,
            "--at",
            CLOSED,
            "-o",
            "json",
        ],
        b"",
    ));
    assert_eq!(json[0]["next"], Value::Null);
    let until = json[0]["searchedUntil"].as_str().expect("searchedUntil");
    assert!(until > "2026-11-27T13:00:00+01:00", "{until}");
    let table = fluxgate(&["status", "--windows", &windows, "--at", CLOSED], b"");
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("(search stopped)"),
        "{}",
        String::from_utf8_lossy(&table.stdout)
    );
    let mut review: Value =
        serde_json::from_slice(&fixture("flux-dryrun-image-bump-deployment.json")).unwrap();
    for object in ["object", "oldObject"] {
        review["request"][object]["metadata"]["labels"]["fluxgate.io/window"] = json!("busy");
    }
    let out = fluxgate(
        &[
            "review",
            "--windows",
            &windows,
            "--at",
            CLOSED,
            "--default-window",
            "busy",
        ],
        &serde_json::to_vec(&review).unwrap(),
    );
    let message = stdout_json(&out)["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("frozen (month-long freeze)"), "{message}");
    assert!(
        message.contains(&format!(
            "with no change found up to {until} (Europe/Berlin), where the search stopped"
        )),
        "{message}"
    );
}

#[test]
fn windows_from_files_are_refused_as_admission_would_refuse_them() {
    let windows = format!("{FIXTURES}/windows/refused-for-policy.yaml");
    let out = fluxgate(
        &["review", "--windows", &windows, "--at", CLOSED],
        &fixture("flux-dryrun-image-bump-deployment.json"),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("ReconciliationWindow \"default\": spec.overrides[0]: 48h long, more than --max-override 24h"),
        "{err}"
    );
    assert!(
        err.contains("ReconciliationWindow \"never\": spec: the window never opens"),
        "{err}"
    );
    let out = fluxgate(
        &[
            "serve",
            "--windows",
            &windows,
            "--max-override",
            "48h",
            "--addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(!err.contains("--max-override"), "{err}");
    assert!(err.contains("never opens"), "{err}");
}

/// A newcomer's `--at` without an offset is told what to add, on the one line every error is.
#[test]
fn an_instant_without_an_offset_is_told_to_add_z_or_an_offset() {
    let out = fluxgate(&["status", "--at", "2026-11-28T12:00:00"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "fluxgate: invalid value '2026-11-28T12:00:00' for '--at <T>': \"2026-11-28T12:00:00\" \
         has no offset: add Z or an offset, e.g. 2026-11-28T12:00:00Z (UTC) or \
         2026-11-28T12:00:00+01:00 (see --help)\n"
    );
}

/// Flag errors are one line on stderr, as docs/reference.md promises (clap prints five by default).
#[test]
fn a_flag_error_is_one_line() {
    for args in [
        &["status", "--bogus"][..],
        &["review", "--max-bypass", "soon"],
        &["lint", "-o", "xml"],
    ] {
        let out = fluxgate(args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let text = stderr(&out);
        assert_eq!(text.lines().count(), 1, "{args:?}: {text}");
        assert!(text.starts_with("fluxgate: "), "{args:?}: {text}");
        assert!(text.ends_with(" (see --help)\n"), "{args:?}: {text}");
    }
    // Help is not an error: it goes to stdout, exit 0.
    let help = fluxgate(&["status", "--help"], b"");
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--at"));
}

/// `lint DIR` says how to render the folder instead of "Is a directory".
#[test]
fn lint_of_a_folder_says_to_render_it_first() {
    let dir = format!("{FIXTURES}/lint");
    let out = fluxgate(&["lint", &dir], b"");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "fluxgate: {dir} is a folder: lint reads rendered manifests; render it first: \
             kubectl kustomize {dir} | fluxgate lint -\n"
        )
    );
}
