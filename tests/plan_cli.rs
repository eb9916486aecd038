//! `fluxgate plan` run as the built binary: on the seed's commit (an image bump and an
//! nginx.conf change) rendered by `kubectl kustomize` from the GitOps example, and on the same
//! renders checked in (`tests/fixtures/plan/seed/`) so most tests need no kubectl; and
//! `docs/plan.md`, whose every output is what the binary prints.

mod common;

use common::Scratch;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BASE: &str = "tests/fixtures/plan/seed/base";
const HEAD: &str = "tests/fixtures/plan/seed/head";
/// Saturday 2026-11-28, noon in Berlin: business-hours is closed until Monday 08:00.
const SATURDAY: &str = "2026-11-28T12:00:00+01:00";

fn fluxgate(args: &[&str], stdin: &[u8]) -> Output {
    common::run_fluxgate(args, stdin, &[])
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn plan_json(base: &str, head: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["plan", "--base", base, "--head", head, "--at", SATURDAY];
    args.extend(["-o", "json"]);
    args.extend(extra);
    let out = fluxgate(&args, b"");
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&out), stderr(&out)));
    (out.status.code().unwrap(), json)
}

/// `(object, change, landing as the table says it)` of every change.
fn changes(plan: &Value) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for owner in plan["owners"].as_array().unwrap() {
        for c in owner["changes"].as_array().unwrap() {
            let landing = &c["landing"];
            let when = match landing["when"].as_str().unwrap() {
                "at" => format!("at {}", landing["at"].as_str().unwrap()),
                other => other.to_owned(),
            };
            found.push((
                c["object"].as_str().unwrap().to_owned(),
                c["change"].as_str().unwrap().to_owned(),
                when,
            ));
        }
    }
    found
}

/// `(owner, when, at)` of every owner.
fn owners(plan: &Value) -> Vec<(String, String, Option<String>)> {
    plan["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_owned(),
                o["landing"]["when"].as_str().unwrap().to_owned(),
                o["landing"]["at"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// What the done-when of issue 24 asks of the seed's commit planned on a Saturday.
fn assert_seed_plan(plan: &Value) {
    assert_eq!(
        changes(plan),
        [
            (
                "ConfigMap nginx/nginx-conf".into(),
                "update".into(),
                "now".into()
            ),
            (
                "Deployment nginx/nginx".into(),
                "update".into(),
                "at 2026-11-30T08:00:00+01:00".into()
            ),
        ]
    );
    assert_eq!(
        owners(plan),
        [
            ("apps-rt".into(), "now".into(), None),
            (
                "apps-rw".into(),
                "at".into(),
                Some("2026-11-30T08:00:00+01:00".into())
            ),
        ]
    );
    let deployment = &plan["owners"][1]["changes"][0]["landing"];
    assert_eq!(deployment["atUtc"], "2026-11-30T07:00:00Z");
    assert_eq!(deployment["timeZone"], "Europe/Berlin");
}

// === the seed's commit ===

#[test]
fn seed_commit_on_a_saturday_from_the_checked_in_renders() {
    let (code, plan) = plan_json(BASE, HEAD, &[]);
    assert_eq!(code, 0);
    assert_seed_plan(&plan);
    assert_eq!(plan["counts"]["unchanged"], 3);
}

/// The seed's commit, made to a copy of deploy/examples/gitops and rendered with `kubectl
/// kustomize` as the CI examples render it: the same plan, and the same renders as the
/// checked-in ones.
#[test]
fn seed_commit_rendered_by_kubectl_kustomize() {
    if !common::kubectl_available() {
        eprintln!("skipping: kubectl not found");
        return;
    }
    let scratch = Scratch::new("plan-kustomize");
    let example = Path::new(ROOT).join("deploy/examples/gitops");
    for side in ["base-tree", "head-tree"] {
        copy_tree(&example, &scratch.path(side));
    }
    let head_tree = scratch.path("head-tree");
    edit(
        &head_tree.join("apps/nginx/nginx-rw/deployment.yaml"),
        "image: nginx:1.14.2",
        "image: nginx:1.23.3",
    );
    edit(
        &head_tree.join("apps/nginx/nginx-rt/configmap.yaml"),
        "            index index.html;\n",
        "            index index.html;\n            add_header Cache-Control \"public, max-age=300\";\n",
    );
    // One render per Flux owner, named after it, as the CI examples list them.
    let owners = ci_owners();
    for (tree, out) in [("base-tree", "base"), ("head-tree", "head")] {
        std::fs::create_dir_all(scratch.path(out)).unwrap();
        for (owner, path) in &owners {
            let path = path.strip_prefix("deploy/examples/gitops/").unwrap();
            let rendered = common::try_kustomize(&scratch.path(tree).join(path)).unwrap();
            let file = format!("{owner}.yaml");
            std::fs::write(scratch.path(out).join(&file), &rendered).unwrap();
            let checked_in = std::fs::read_to_string(
                Path::new(ROOT).join(format!("tests/fixtures/plan/seed/{out}/{file}")),
            )
            .unwrap();
            assert_eq!(
                rendered, checked_in,
                "tests/fixtures/plan/seed/{out}/{file} is not what kubectl kustomize renders: \
                 render it again"
            );
        }
    }
    let base = scratch.path("base").display().to_string();
    let head = scratch.path("head").display().to_string();
    let (code, plan) = plan_json(&base, &head, &[]);
    assert_eq!(code, 0);
    assert_seed_plan(&plan);
    // The examples' own commands, in the folder they render into.
    std::fs::create_dir_all(scratch.path("plan")).unwrap();
    std::fs::rename(scratch.path("base"), scratch.path("plan/base")).unwrap();
    std::fs::rename(scratch.path("head"), scratch.path("plan/head")).unwrap();
    for example in CI_EXAMPLES {
        for command in ci_commands(example) {
            let args: Vec<&str> = command.split_whitespace().skip(1).collect();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_fluxgate"))
                .args(&args)
                .args(["--at", SATURDAY])
                .current_dir(&scratch.0)
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{example}: {command}: {}",
                stderr(&out)
            );
        }
    }
}

const CI_EXAMPLES: [&str; 2] = [
    "deploy/examples/ci/github-actions.yml",
    "deploy/examples/ci/gitlab-ci.yml",
];

/// The `name=path` owners the CI examples render (the same in both).
fn ci_owners() -> Vec<(String, String)> {
    let owners = |example: &str| -> Vec<(String, String)> {
        let text = std::fs::read_to_string(Path::new(ROOT).join(example)).unwrap();
        let yaml = &common::documents(&text)[0];
        let list = yaml["env"]["OWNERS"]
            .as_str()
            .or_else(|| yaml["fluxgate-plan"]["variables"]["OWNERS"].as_str())
            .unwrap_or_else(|| panic!("{example} sets OWNERS"));
        list.lines()
            .map(|l| {
                let (owner, path) = l.split_once('=').unwrap();
                (owner.to_owned(), path.to_owned())
            })
            .collect()
    };
    let github = owners(CI_EXAMPLES[0]);
    assert_eq!(
        github,
        owners(CI_EXAMPLES[1]),
        "the two CI examples render the same owners"
    );
    github
}

/// The `fluxgate plan` commands of a CI example, without their redirections.
fn ci_commands(example: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(example)).unwrap();
    let commands: Vec<String> = text
        .lines()
        .filter_map(|l| l.find("fluxgate plan --base").map(|at| &l[at..]))
        .map(|c| c.split(" >").next().unwrap().trim().to_owned())
        .collect();
    assert!(commands.len() >= 2, "{example}: {commands:?}");
    commands
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

// === inputs ===

#[test]
fn files_and_standard_input_are_inputs_too() {
    let head_rw = std::fs::read(format!("{HEAD}/apps-rw.yaml")).unwrap();
    let out = fluxgate(
        &[
            "plan",
            "--base",
            &format!("{BASE}/apps-rw.yaml"),
            "--head",
            "-",
            "--windows",
            &format!("{HEAD}/reconciliation-windows.yaml"),
            "--at",
            SATURDAY,
        ],
        &head_rw,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    // Unlabelled objects from standard input have no file to name their owner after.
    assert!(
        text.contains("<stdin>  Deployment nginx/nginx  update  rw    business-hours  at 2026-11-30T08:00:00+01:00"),
        "{text}"
    );
}

#[test]
fn unreadable_inputs_and_bad_yaml_are_errors_naming_the_file() {
    let out = fluxgate(&["plan", "--base", "no/such/dir", "--head", HEAD], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("fluxgate: cannot read --base no/such/dir"),
        "{}",
        stderr(&out)
    );
    let scratch = Scratch::new("plan-bad-yaml");
    std::fs::write(scratch.path("app.yaml"), "apiVersion: v1\nkind: [\n").unwrap();
    let bad = scratch.path("app.yaml").display().to_string();
    let out = fluxgate(&["plan", "--base", BASE, "--head", &bad], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("{bad}:2: not valid YAML")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_window_in_both_the_head_and_windows_files_is_an_error() {
    let out = fluxgate(
        &[
            "plan",
            "--base",
            BASE,
            "--head",
            HEAD,
            "--windows",
            &format!("{HEAD}/reconciliation-windows.yaml"),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("\"business-hours\" is defined twice"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_head_window_the_webhook_refuses_blocks_it_and_what_it_governs() {
    let scratch = Scratch::new("plan-bad-window");
    copy_tree(Path::new(ROOT).join(HEAD).as_path(), &scratch.0);
    // An override of 48h, more than --max-override's 24h.
    edit(
        &scratch.path("reconciliation-windows.yaml"),
        "  freezes:\n",
        "  overrides:\n  - start: \"2026-11-28T00:00:00+01:00\"\n    end: \"2026-11-30T00:00:00+01:00\"\n    reason: weekend release\n  freezes:\n",
    );
    let head = scratch.0.display().to_string();
    let (code, plan) = plan_json(BASE, &head, &["--fail-on", "blocked"]);
    assert_eq!(code, 1);
    let found = changes(&plan);
    assert!(
        found.contains(&(
            "ReconciliationWindow business-hours".into(),
            "update".into(),
            "never".into()
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            "Deployment nginx/nginx".into(),
            "update".into(),
            "never".into()
        )),
        "{found:?}"
    );
    let window = &plan["owners"][2]["changes"][0];
    assert_eq!(window["reason"], "invalid-window");
    assert!(
        window["message"]
            .as_str()
            .unwrap()
            .contains("more than --max-override 24h"),
        "{window}"
    );
}

// === --fail-on ===

#[test]
fn fail_on_blocked_and_waiting_set_the_exit_code() {
    for (fail_on, code) in [("never", 0), ("blocked", 0), ("waiting", 1)] {
        let (got, _) = plan_json(BASE, HEAD, &["--fail-on", fail_on]);
        assert_eq!(got, code, "--fail-on {fail_on}");
    }
    // On Monday at 09:00 nothing waits.
    let out = fluxgate(
        &[
            "plan",
            "--base",
            BASE,
            "--head",
            HEAD,
            "--at",
            "2026-11-30T09:00:00+01:00",
            "--fail-on",
            "waiting",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Without the windows, the Deployment's window is unknown: blocked.
    let (code, plan) = plan_json(
        &format!("{BASE}/apps-rw.yaml"),
        &format!("{HEAD}/apps-rw.yaml"),
        &["--fail-on", "blocked"],
    );
    assert_eq!(code, 1);
    assert_eq!(plan["counts"]["blocked"], 1);
    let change = &plan["owners"][0]["changes"][0];
    assert_eq!(change["reason"], "unknown-window");
    assert!(
        change["fix"]
            .as_str()
            .unwrap()
            .contains("add a ReconciliationWindow named \"business-hours\""),
        "{change}"
    );
}

// === docs/plan.md ===

/// Every ```console block of docs/plan.md is `$ fluxgate …` and what the binary prints for it,
/// run from the repository's root. `FLUXGATE_BLESS_DOCS=1` writes the outputs in instead.
#[test]
fn docs_show_what_the_binary_prints() {
    let path = Path::new(ROOT).join("docs/plan.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut rest = doc.as_str();
    let mut ran = 0;
    while let Some(start) = rest.find("```console\n") {
        let body_start = start + "```console\n".len();
        out.push_str(&rest[..body_start]);
        let end = body_start + rest[body_start..].find("```\n").expect("closed block");
        let block = &rest[body_start..end];
        let (command, shown) = block.split_once('\n').unwrap();
        let command = command
            .strip_prefix("$ ")
            .expect("a console block starts with $");
        let args: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(args[0], "fluxgate", "{command}");
        let output = fluxgate(&args[1..], b"");
        assert!(
            output.status.code().is_some_and(|c| c < 2),
            "{command}: {}",
            stderr(&output)
        );
        let printed = stdout(&output);
        if std::env::var_os("FLUXGATE_BLESS_DOCS").is_none() {
            assert_eq!(
                shown, printed,
                "docs/plan.md shows another output for {command}"
            );
        }
        out.push_str(command_line(command).as_str());
        out.push_str(&printed);
        rest = &rest[end..];
        ran += 1;
    }
    out.push_str(rest);
    assert!(ran >= 3, "docs/plan.md shows {ran} commands");
    if std::env::var_os("FLUXGATE_BLESS_DOCS").is_some() {
        std::fs::write(&path, out).unwrap();
    }
}

fn command_line(command: &str) -> String {
    format!("$ {command}\n")
}
