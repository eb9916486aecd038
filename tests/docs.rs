//! The docs as a reader meets them: README.md, every file of docs/ and deploy/README.md.
//!
//! - Every relative link points at a file that exists, and its `#anchor` at a heading there.
//! - Every command line they show in a shell block (`fluxgate …`, `kubectl …`, `cargo …`,
//!   `flux …`, `kind …`) is either run here as written ([`RUN_HERE`], its output checked
//!   against the `# ` lines shown under it), run as written by another test or by `.ci/run`
//!   ([`RUN_ELSEWHERE`], whose file must hold it word for word), or listed in [`NOT_RUN`] with
//!   the reason (a real cluster, mostly). A doc that shows a command none of them names fails
//!   [`every_documented_command_is_run_or_listed`]: add it to one of the lists.
//!
//! `cargo run -- ARGS` runs the built fluxgate (`common::sh`), and so does `fluxgate ARGS`.

mod common;

use common::{Scratch, anchor, kubectl_available, sh, sh_command};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The programs whose command lines are checked.
const PROGRAMS: [&str; 5] = ["fluxgate", "kubectl", "cargo", "flux", "kind"];

/// Where a [`RUN_HERE`] command runs.
#[derive(Clone, Copy)]
enum Dir {
    /// The checkout: the command reads its files only.
    Root,
    /// A scratch folder the function prepares (the command writes there, or needs files the
    /// doc has the reader write first).
    Scratch(fn(&Path)),
}

/// How a [`RUN_HERE`] command is run and what it must do.
#[derive(Clone, Copy)]
enum Expect {
    /// Exits with this code; the `# ` lines under it in the doc are in its output.
    Exit(i32),
    /// A server: runs until stopped, its metrics port answering with the windows loaded.
    Serves,
}

struct Run {
    command: &'static str,
    dir: Dir,
    expect: Expect,
}

const fn here(command: &'static str, expect: Expect) -> Run {
    Run {
        command,
        dir: Dir::Root,
        expect,
    }
}

/// Commands this file runs as written.
const RUN_HERE: &[Run] = &[
    // README.md: plan
    here(
        "cargo run -- plan --base tests/fixtures/plan/seed/base --head tests/fixtures/plan/seed/head --at 2026-11-28T12:00:00+01:00",
        Expect::Exit(0),
    ),
    // docs/plan.md (tests/plan_cli.rs also checks the output it shows, line for line)
    here(
        "fluxgate plan --base tests/fixtures/plan/seed/base --head tests/fixtures/plan/seed/head --at 2026-11-28T12:00:00+01:00",
        Expect::Exit(0),
    ),
    here(
        "fluxgate plan --base tests/fixtures/plan/seed/base --head tests/fixtures/plan/seed/head --at 2026-11-28T12:00:00+01:00 -o markdown",
        Expect::Exit(0),
    ),
    here(
        "fluxgate plan --base tests/fixtures/plan/seed/base/apps-rw.yaml --head tests/fixtures/plan/seed/head/apps-rw.yaml --at 2026-11-28T12:00:00+01:00 --fail-on blocked",
        Expect::Exit(1),
    ),
    here(
        "fluxgate plan --base tests/fixtures/plan/seed/base --head tests/fixtures/plan/seed/head --at 2026-11-28T12:00:00+01:00 -o json",
        Expect::Exit(0),
    ),
    // README.md
    here("cargo run -- serve", Expect::Serves),
    here(
        "cargo run -- review --at 2026-11-28T12:00:00Z < tests/fixtures/admission/flux-dryrun-image-bump-deployment.json | grep message",
        Expect::Exit(0),
    ),
    here(
        "cargo run -- review --at 2026-11-28T12:00:00Z < tests/fixtures/admission/flux-create-configmap-rt.json | grep message",
        Expect::Exit(0),
    ),
    here(
        "cargo run -- review --at 2026-11-30T06:59:59Z < tests/fixtures/admission/flux-dryrun-image-bump-deployment.json | grep '\"allowed\"'",
        Expect::Exit(0),
    ),
    here(
        "cargo run -- review --at 2026-11-30T07:00:00Z < tests/fixtures/admission/flux-dryrun-image-bump-deployment.json | grep '\"allowed\"'",
        Expect::Exit(0),
    ),
    here(
        "cargo run -- status --windows deploy/examples/gitops/clusters/cluster-1/infra/reconciliation-windows --at 2026-11-28T12:00:00Z",
        Expect::Exit(0),
    ),
    here(
        "cargo run -- status --week --tz Europe/Berlin --at 2026-11-27T12:00:00Z",
        Expect::Exit(0),
    ),
    here(
        "cargo run -- lint --at 2026-11-27T12:00:00Z tests/fixtures/lint/mixed-owner.yaml",
        Expect::Exit(1),
    ),
    here(
        "kubectl kustomize deploy/examples/gitops/clusters/cluster-1/apps/apps-rw | cargo run -- lint --windows deploy/examples/gitops/clusters/cluster-1/infra/reconciliation-windows",
        Expect::Exit(0),
    ),
    // docs/reference.md
    here(
        "cargo run -- review --at 2026-11-27T12:00:00Z < tests/fixtures/admission/flux-dryrun-image-bump-deployment.json",
        Expect::Exit(0),
    ),
    here(
        "cargo run -- status --at 2026-12-22T10:00:00Z -o json",
        Expect::Exit(0),
    ),
    Run {
        command: "fluxgate audit audit.log* --decision deny --owner flux-system/apps-rw",
        dir: Dir::Scratch(audit_logs),
        expect: Expect::Exit(0),
    },
    Run {
        command: "fluxgate audit audit.log --reason bypass,invalid-bypass --since 2026-11-01T00:00:00Z -o json | jq .summary.bypasses",
        dir: Dir::Scratch(audit_logs),
        expect: Expect::Exit(0),
    },
    Run {
        command: "fluxgate audit audit.log --reason override -o json | jq .summary.overrides",
        dir: Dir::Scratch(audit_logs),
        expect: Expect::Exit(0),
    },
    here(
        "cargo run -- audit tests/fixtures/audit/kubectl-logs.txt --include-dry-run",
        Expect::Exit(0),
    ),
    here(
        "kubectl kustomize deploy/examples/gitops/apps/nginx/nginx-rt | cargo run -- lint -o json",
        Expect::Exit(0),
    ),
    here(
        "cargo run -- serve --ca-out /tmp/fluxgate-ca.pem 2>/dev/null",
        Expect::Serves,
    ),
    // docs/getting-started.md
    Run {
        command: "fluxgate status --windows deploy/examples/gitops/clusters/cluster-1/infra/reconciliation-windows",
        dir: Dir::Scratch(demo_window_open_all_day),
        expect: Expect::Exit(0),
    },
    Run {
        command: "fluxgate status --tz UTC --windows deploy/examples/gitops/clusters/cluster-1/infra/reconciliation-windows",
        dir: Dir::Scratch(demo_window_opening_soon),
        expect: Expect::Exit(0),
    },
    here(
        "kubectl kustomize deploy/examples/gitops/clusters/cluster-1/apps/apps-rw | fluxgate lint --windows deploy/examples/gitops/clusters/cluster-1/infra/reconciliation-windows",
        Expect::Exit(0),
    ),
    // docs/calendars.md
    Run {
        command: "fluxgate status --windows windows.yaml --at 2027-03-26T10:00:00Z",
        dir: Dir::Scratch(calendars_folder),
        expect: Expect::Exit(0),
    },
    Run {
        command: "fluxgate status --windows windows.yaml --at 2027-06-05T10:00:00Z",
        dir: Dir::Scratch(calendars_folder),
        expect: Expect::Exit(0),
    },
    Run {
        command: "fluxgate plan --base base --head head --windows windows.yaml --at 2027-03-26T10:00:00Z",
        dir: Dir::Scratch(calendars_folder),
        expect: Expect::Exit(0),
    },
    // deploy/README.md
    Run {
        command: "cargo run -- certs --service fluxgate --namespace fluxgate-system --out certs/",
        dir: Dir::Scratch(|_| {}),
        expect: Expect::Exit(0),
    },
];

/// docs/calendars.md's folder: its windows file, with Berlin's public holidays (a calendar
/// people publish, tests/fixtures/ics/) as the `holidays.ics` beside it, and the seed's image
/// bump rendered before and after (`base/`, `head/`) for `plan`.
fn calendars_folder(dir: &Path) {
    let doc = read("docs/calendars.md");
    let windows = doc
        .split("<!-- file: windows.yaml -->\n```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/calendars.md's windows.yaml");
    std::fs::write(dir.join("windows.yaml"), windows).unwrap();
    std::fs::copy(
        Path::new(ROOT).join("tests/fixtures/ics/de-be-public.ics"),
        dir.join("holidays.ics"),
    )
    .unwrap();
    for side in ["base", "head"] {
        std::fs::create_dir_all(dir.join(side)).unwrap();
        std::fs::copy(
            Path::new(ROOT).join(format!("tests/fixtures/plan/seed/{side}/apps-rw.yaml")),
            dir.join(side).join("apps-rw.yaml"),
        )
        .unwrap();
    }
}

const GETTING_STARTED: &str = "docs/getting-started.md";
const DEMO_WINDOW: &str =
    "deploy/examples/gitops/clusters/cluster-1/infra/reconciliation-windows/business-hours.yaml";

/// Writes the demo window of docs/getting-started.md whose block holds `marker` where the doc
/// has the reader write it.
fn write_demo_window(dir: &Path, marker: &str) {
    let blocks = code_blocks(&read(GETTING_STARTED));
    let block = blocks
        .iter()
        .find(|b| {
            b.info == "yaml"
                && b.lines.first().map(String::as_str) == Some(&format!("# {DEMO_WINDOW}"))
                && b.lines.iter().any(|l| l.contains(marker))
        })
        .unwrap_or_else(|| panic!("{GETTING_STARTED}: no window block with {marker:?}"));
    let file = dir.join(DEMO_WINDOW);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, block.lines.join("\n") + "\n").unwrap();
}

/// Step 3: the window open all day.
fn demo_window_open_all_day(dir: &Path) {
    write_demo_window(dir, "open all day");
}

/// Step 5: the window opening two minutes from now, its schedule written by the doc's own
/// `sed` line, run as written.
fn demo_window_opening_soon(dir: &Path) {
    write_demo_window(dir, "opens two minutes after the commit");
    let doc = read(GETTING_STARTED);
    let sed = doc
        .lines()
        .find(|l| l.starts_with("sed -i ") && l.ends_with(DEMO_WINDOW))
        .expect("the sed line that writes the schedule");
    let output = sh(dir, sed);
    assert!(output.status.success(), "{sed}: {output:?}");
    let written = std::fs::read_to_string(dir.join(DEMO_WINDOW)).unwrap();
    assert!(!written.contains("42 14 * * *"), "{sed} left:\n{written}");
}

/// An audit log and its rotated predecessor, for the `fluxgate audit audit.log…` recipes.
fn audit_logs(dir: &Path) {
    let log = Path::new(ROOT).join("tests/fixtures/audit/image-bump-denied.jsonl");
    std::fs::copy(&log, dir.join("audit.log")).unwrap();
    std::fs::copy(&log, dir.join("audit.log.1")).unwrap();
}

/// Commands another test (or `.ci/run`) runs as written: the command, and the file that holds
/// it word for word.
const RUN_ELSEWHERE: &[(&str, &str)] = &[
    // docs/stop-the-line.md: against the fake API server, through fluxgate's webhook.
    (
        "fluxgate freeze start --all --for 30m --reason INC-1",
        "tests/stop_the_line.rs",
    ),
    ("fluxgate freeze list", "tests/stop_the_line.rs"),
    (
        "fluxgate plan --windows-from-cluster --base tests/fixtures/plan/seed/base --head tests/fixtures/plan/seed/head",
        "tests/stop_the_line.rs",
    ),
    ("fluxgate freeze end", "tests/stop_the_line.rs"),
    (
        "fluxgate freeze start --window business-hours --for 2h --reason \"INC-4711 checkout errors\"",
        "tests/stop_the_line.rs",
    ),
    (
        "fluxgate freeze start --all --for 36h --reason INC-4711",
        "tests/stop_the_line.rs",
    ),
    ("cargo nextest run", ".ci/run"),
    // deploy/README.md: kubectl against the fake API server, with a fluxgate replica.
    (
        "kubectl wait rwin --all --for=condition=Ready --timeout=60s",
        "tests/flux_loop.rs",
    ),
    // deploy/README.md: the release binary that tools/image-contract.sh runs as the image.
    ("cargo build --release --locked --bin fluxgate", ".ci/run"),
    // docs/reference.md: split, in a copy of the seed's "before" tree and of a Helm layout.
    (
        "fluxgate split apps/nginx --rw Deployment,Service --window business-hours --clusters clusters/cluster-1",
        "tests/split_cli.rs",
    ),
    (
        "fluxgate split apps/nginx --rw Deployment,Service --window business-hours --clusters clusters/cluster-1 --write",
        "tests/split_cli.rs",
    ),
    (
        "kubectl kustomize clusters/cluster-1/apps/apps-rw | fluxgate lint --windows clusters/cluster-1/infra/reconciliation-windows",
        "tests/split_cli.rs",
    ),
    (
        "fluxgate split apps/base/podinfo --rw HelmRelease --window business-hours --clusters clusters/staging,clusters/production --write",
        "tests/split_cli.rs",
    ),
];

/// Commands no test runs, and why. Keep it short: a real cluster, or an install on the
/// reader's machine.
const NOT_RUN: &[(&str, &str)] = &[
    // deploy/README.md
    (
        "kubectl apply -f https://github.com/OWNER/fluxgate/releases/download/v0.1.0/install.yaml",
        CLUSTER,
    ),
    (
        "kubectl -n fluxgate-system rollout status deploy/fluxgate",
        CLUSTER,
    ),
    ("kubectl apply -f my-windows/", CLUSTER),
    ("kubectl apply -k my-cluster/fluxgate", CLUSTER),
    (
        "cargo install --path . --locked",
        "installs a release build into ~/.cargo/bin: the binary every test runs, built again \
         with optimisations for minutes",
    ),
    ("kubectl apply -k deploy/overlays/cert-manager", CLUSTER),
    ("kubectl create namespace fluxgate-system", CLUSTER),
    (
        "kubectl -n fluxgate-system create secret tls fluxgate-tls --cert certs/tls.crt --key certs/tls.key",
        CLUSTER,
    ),
    (
        "kubectl kustomize deploy/base | sed \"s|REPLACE_ME_WITH_THE_caBundle_PRINTED_BY_fluxgate_certs|${CA_BUNDLE}|\" | kubectl apply -f -",
        CLUSTER,
    ),
    // docs/getting-started.md
    ("kind create cluster --name fluxgate", CLUSTER),
    ("flux install", CLUSTER),
    (
        "kubectl apply -f https://github.com/cert-manager/cert-manager/releases/download/v1.16.2/cert-manager.yaml",
        CLUSTER,
    ),
    (
        "kubectl -n cert-manager rollout status deploy/cert-manager-webhook",
        CLUSTER,
    ),
    (
        "kind load docker-image registry.example.com/fluxgate:0.1.0 --name fluxgate",
        "loads an image built by docker into a kind cluster",
    ),
    (
        "flux create source git flux-system --url=https://github.com/YOU/fluxgate --branch=main --interval=1m",
        CLUSTER,
    ),
    (
        "flux create kustomization flux-system --source=GitRepository/flux-system --path=./deploy/examples/gitops/clusters/cluster-1/flux --prune=true --interval=1m",
        CLUSTER,
    ),
    ("flux get kustomizations --watch", CLUSTER),
    (
        "kubectl -n nginx get deployment nginx -o jsonpath='{..image}'",
        CLUSTER,
    ),
    ("kubectl get rwin", CLUSTER),
    ("flux reconcile source git flux-system", CLUSTER),
    (
        "kubectl -n nginx get configmap nginx-conf -o jsonpath='{.data.default\\.conf}' | grep Cache-Control",
        CLUSTER,
    ),
    ("flux get kustomizations apps-rw", CLUSTER),
    ("kubectl get rwin -o wide", CLUSTER),
    (
        "kubectl -n flux-system events --for kustomization/apps-rw",
        CLUSTER,
    ),
    ("kubectl -n nginx rollout status deploy/nginx", CLUSTER),
    (
        "kubectl logs -n fluxgate-system -l app.kubernetes.io/name=fluxgate --prefix=false --tail=-1 | fluxgate audit --window business-hours",
        "reads a running fluxgate's logs; tests/install.rs checks that its selector selects \
         fluxgate's pods",
    ),
    ("kind delete cluster --name fluxgate", CLUSTER),
    // docs/reference.md
    (
        "kubectl logs -n fluxgate-system -l app.kubernetes.io/name=fluxgate --prefix=false --tail=-1 | fluxgate audit --since 24h",
        "reads a running fluxgate's logs; tests/install.rs checks that its selector selects \
         fluxgate's pods",
    ),
];

/// The reason of the commands that act on a cluster: none runs here (no kind, no images).
const CLUSTER: &str = "acts on a real cluster";

// === reading the docs ===

/// README.md, every Markdown file of docs/ and deploy/README.md, relative to the root.
fn doc_files() -> Vec<String> {
    let mut files = vec!["README.md".to_string(), "deploy/README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(relative))
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// A fenced code block: its info string, the line its body starts on, its lines.
struct Block {
    info: String,
    line: usize,
    lines: Vec<String>,
}

fn code_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for (n, line) in markdown.lines().enumerate() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(info)) => {
                current = Some(Block {
                    info: info.trim().to_string(),
                    line: n + 2,
                    lines: Vec::new(),
                })
            }
            (Some(_), Some(_)) => blocks.push(current.take().unwrap()),
            (Some(block), None) => block.lines.push(line.to_string()),
            (None, None) => {}
        }
    }
    blocks
}

/// A command line shown in a doc, and the output shown under it (`# ` lines in a `sh` block,
/// the lines up to the next `$ ` in a `console` block).
#[derive(Debug)]
struct Shown {
    at: String,
    command: String,
    output: Vec<String>,
}

/// The program a shell line runs first, past `NAME=value` assignments.
fn program(line: &str) -> Option<&str> {
    line.split_whitespace().find(|word| {
        let assignment = word.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        !assignment
    })
}

/// `line` without its trailing `# comment` (a `#` after a space, outside quotes).
fn without_comment(line: &str) -> &str {
    let (mut single, mut double, mut previous) = (false, false, ' ');
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        previous = c;
    }
    line.trim_end()
}

/// Every command line of the shell blocks of `file`, continuation lines (`\`) joined by one
/// space, trailing comments dropped.
fn shown_commands(file: &str) -> Vec<Shown> {
    let mut shown: Vec<Shown> = Vec::new();
    for block in code_blocks(&read(file)) {
        let console = block.info == "console";
        if !(console || ["sh", "bash", "shell"].contains(&block.info.as_str())) {
            continue;
        }
        let mut lines = block.lines.iter().enumerate();
        let mut last: Option<usize> = None;
        while let Some((n, line)) = lines.next() {
            let text = line.trim();
            let command = if console {
                text.strip_prefix("$ ")
            } else if text.starts_with('#') {
                None
            } else {
                Some(text)
            };
            let Some(command) = command.filter(|c| !c.is_empty()) else {
                let output = if console {
                    Some(line.as_str())
                } else {
                    text.strip_prefix("# ").or(text.strip_prefix('#'))
                };
                if let (Some(i), Some(output)) = (last, output) {
                    shown[i].output.push(output.to_string());
                }
                continue;
            };
            let mut joined = command.to_string();
            while let Some(head) = joined.strip_suffix('\\') {
                let head = head.trim_end().to_string();
                let next = lines.next().map(|(_, l)| l.trim()).unwrap_or_default();
                joined = format!("{head} {next}");
            }
            let joined = without_comment(&joined).to_string();
            last = None;
            if program(&joined).is_some_and(|p| PROGRAMS.contains(&p)) {
                last = Some(shown.len());
                shown.push(Shown {
                    at: format!("{file}:{}", block.line + n),
                    command: joined,
                    output: Vec::new(),
                });
            }
        }
    }
    shown
}

fn all_shown() -> Vec<Shown> {
    doc_files().iter().flat_map(|f| shown_commands(f)).collect()
}

// === commands ===

#[test]
fn every_documented_command_is_run_or_listed() {
    let shown = all_shown();
    assert!(shown.len() > 20, "{shown:#?}");
    let listed: BTreeSet<&str> = RUN_HERE
        .iter()
        .map(|r| r.command)
        .chain(RUN_ELSEWHERE.iter().map(|(c, _)| *c))
        .chain(NOT_RUN.iter().map(|(c, _)| *c))
        .collect();
    let total = RUN_HERE.len() + RUN_ELSEWHERE.len() + NOT_RUN.len();
    assert_eq!(listed.len(), total, "a command is listed twice");
    let unlisted: Vec<String> = shown
        .iter()
        .filter(|s| !listed.contains(s.command.as_str()))
        .map(|s| format!("{}: {}", s.at, s.command))
        .collect();
    assert!(
        unlisted.is_empty(),
        "commands the docs show that no test runs and tests/docs.rs does not list \
         (run them in a test, as written, or list them in NOT_RUN with the reason):\n{}",
        unlisted.join("\n")
    );
    let commands: BTreeSet<&str> = shown.iter().map(|s| s.command.as_str()).collect();
    let stale: Vec<&&str> = listed.iter().filter(|c| !commands.contains(**c)).collect();
    assert!(
        stale.is_empty(),
        "listed in tests/docs.rs, shown in no doc: {stale:#?}"
    );
    for (command, file) in RUN_ELSEWHERE {
        assert!(
            read(file).contains(command),
            "{file} does not hold `{command}` as the docs write it"
        );
    }
    for (command, why) in NOT_RUN {
        assert!(!why.is_empty(), "{command}: say why it is not run");
    }
}

/// Whether every fragment of an output line shown in the doc (the parts between `…`, spaces
/// squeezed) is in `actual`.
fn shows(actual: &str, expected: &str) -> bool {
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let actual = squeeze(actual);
    expected
        .split('…')
        .map(squeeze)
        .filter(|f| !f.is_empty())
        .all(|fragment| actual.contains(&fragment))
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` over plain HTTP; None while nothing answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

/// Runs a server command as written (its ports moved to free ones through their environment
/// twins, so parallel tests never collide) until its metrics show the windows loaded.
fn serves(dir: &Path, run: &Run) {
    use std::os::unix::process::CommandExt;
    let (addr, metrics) = (free_port(), free_port());
    let mut child = sh_command(dir, run.command)
        .env("FLUXGATE_ADDR", format!("127.0.0.1:{addr}"))
        .env("FLUXGATE_METRICS_ADDR", format!("127.0.0.1:{metrics}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut last = None;
    // Only catches a hang: a debug build loads its windows in well under a second.
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("`{}` exited: {status}", run.command);
        }
        last = http_get(metrics, "/metrics");
        if last.as_deref().is_some_and(|m| {
            m.lines()
                .any(|l| l.starts_with("fluxgate_windows_loaded 3"))
        }) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", "--", &format!("-{pid}")])
        .status();
    child.wait().unwrap();
    assert!(
        last.as_deref()
            .is_some_and(|m| m.contains("fluxgate_windows_loaded 3")),
        "`{}`: no windows loaded on its metrics port: {last:?}",
        run.command
    );
}

#[test]
fn the_documented_commands_run_as_written() {
    let shown = all_shown();
    let mut outputs: BTreeMap<&str, Vec<&Shown>> = BTreeMap::new();
    for s in &shown {
        outputs.entry(s.command.as_str()).or_default().push(s);
    }
    let kubectl = kubectl_available();
    let mut ran = 0;
    for run in RUN_HERE {
        if run.command.contains("| jq ") {
            common::tool_available("jq", &["--version"], "Debian's jq");
        }
        if run.command.contains("kubectl ") && !kubectl {
            eprintln!("skipping (kubectl not found): {}", run.command);
            continue;
        }
        let scratch = Scratch::new("docs");
        let dir = match run.dir {
            Dir::Root => PathBuf::from(ROOT),
            Dir::Scratch(prepare) => {
                prepare(&scratch.0);
                scratch.0.clone()
            }
        };
        match run.expect {
            Expect::Serves => serves(&dir, run),
            Expect::Exit(code) => {
                let output = sh(&dir, run.command);
                let stdout = String::from_utf8_lossy(&output.stdout);
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert_eq!(
                    output.status.code(),
                    Some(code),
                    "`{}`\nstdout:\n{stdout}\nstderr:\n{stderr}",
                    run.command
                );
                for s in outputs.get(run.command).into_iter().flatten() {
                    for line in &s.output {
                        assert!(
                            shows(&format!("{stdout}{stderr}"), line),
                            "{}: `{}` does not print what the doc shows:\n  {line}\n\
                             it printed:\n{stdout}{stderr}",
                            s.at,
                            s.command
                        );
                    }
                }
            }
        }
        ran += 1;
    }
    println!("ran {ran} documented commands");
}

// === links ===

/// The anchors of a Markdown file's headings (a repeated one gets `-1`, `-2`, … as on GitHub).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut inside = false;
    let mut found = BTreeSet::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if inside || hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = anchor(&line[hashes..]);
        let count = seen.entry(base.clone()).or_default();
        found.insert(if *count == 0 {
            base
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    found
}

/// The targets of the inline links of `markdown` outside code (fenced blocks and code spans).
fn link_targets(markdown: &str) -> Vec<String> {
    let mut prose = String::new();
    let mut inside = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
            continue;
        }
        if inside {
            continue;
        }
        // Code spans dropped, the link syntax around them kept.
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                prose.push_str(part);
            }
        }
        prose.push('\n');
    }
    prose
        .match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &prose[at + 2..];
            let end = rest.find(')')?;
            Some(rest[..end].split_whitespace().next()?.to_string())
        })
        .collect()
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in doc_files() {
        let text = read(&file);
        let base = Path::new(&file).parent().unwrap();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                PathBuf::from(&file)
            } else {
                base.join(path)
            };
            let absolute = Path::new(ROOT).join(&resolved);
            if !absolute.exists() {
                broken.push(format!("{file}: ({target}): no {}", resolved.display()));
                continue;
            }
            if let Some(fragment) = fragment {
                let target_text = std::fs::read_to_string(&absolute).unwrap_or_default();
                if !anchors(&target_text).contains(fragment) {
                    broken.push(format!(
                        "{file}: ({target}): no heading #{fragment} in {}",
                        resolved.display()
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 30, "only {checked} links checked");
    println!("{checked} relative links resolve");
}

#[test]
fn the_link_checker_sees_what_github_renders() {
    assert_eq!(
        link_targets(
            "see [`a.md`](a.md#x) and [b\n c](../b.md), not `[c](c.md)`\n```\n[d](d)\n```\n"
        ),
        ["a.md#x", "../b.md"]
    );
    let headings = anchors("# One\n## `fluxgate status --week`\n## In Flux's loop\n# One\n");
    assert_eq!(
        headings,
        BTreeSet::from(
            ["one", "one-1", "fluxgate-status---week", "in-fluxs-loop"].map(String::from)
        )
    );
}
