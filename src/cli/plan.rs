//! `fluxgate plan`: when each change between two renders (a pull request's base and head)
//! lands, before the merge.
//!
//! Glue only: reads the inputs and the windows (the head's, `--windows` files, or the
//! cluster's), holds the windows to the webhook's gate, passes the clock's `now` to
//! [`fluxgate_core::plan::plan`], prints, and turns `--fail-on` into the exit code.

use super::{AtArg, CommonArgs};
use crate::windows::Gate;
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use fluxgate_core::plan::{Input, parse_input, plan, render};
use fluxgate_core::window::{Document, parse_documents};
use std::collections::BTreeSet;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

// Its own -o: plan also writes Markdown.
#[derive(Debug, Args)]
#[command(mut_arg("at", |a| a.help("Plan as of this instant (RFC 3339) instead of now")))]
pub(crate) struct PlanArgs {
    /// The rendered manifests before the change (kubectl kustomize / flux build output): a
    /// file, a folder of them, or `-` for standard input (repeatable). Each file is one Flux
    /// owner, named after the file (apps-rw.yaml: apps-rw), unless its objects carry Flux's
    /// owner labels.
    #[arg(long, value_delimiter = ',', value_name = "PATH", required = true)]
    base: Vec<PathBuf>,
    /// The rendered manifests after the change; the same forms as --base. Its
    /// ReconciliationWindows are the windows planned with, as the change will have them.
    #[arg(long, value_delimiter = ',', value_name = "PATH", required = true)]
    head: Vec<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
    /// Plan with the cluster's ReconciliationWindows (through the kubeconfig) instead of
    /// --windows files; the head's windows take the place of live ones of the same name.
    #[arg(
        long,
        env = "FLUXGATE_WINDOWS_FROM_CLUSTER",
        conflicts_with = "windows"
    )]
    windows_from_cluster: bool,
    /// With --windows-from-cluster: fluxgate's namespace, whose ConfigMaps hold the calendars
    /// that windows name by configMapRef.
    #[arg(
        long,
        env = "FLUXGATE_NAMESPACE",
        default_value = "fluxgate-system",
        value_name = "NS"
    )]
    namespace: String,
    #[command(flatten)]
    at: AtArg,
    /// Output format: a table, a Markdown pull-request comment, or JSON (docs/plan.md).
    #[arg(short = 'o', long = "output", env = "FLUXGATE_OUTPUT", value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Exit 1 when any change is blocked (can never land), or waiting (waits or is blocked).
    #[arg(long, env = "FLUXGATE_FAIL_ON", value_enum, default_value_t = FailOn::Never)]
    fail_on: FailOn,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Table,
    Markdown,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FailOn {
    Never,
    Blocked,
    Waiting,
}

/// One input file's text, and where it came from.
struct Source {
    origin: String,
    owner: String,
    text: String,
}

pub(crate) fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let now = args.at.clock().now();
    anyhow::ensure!(
        args.base
            .iter()
            .chain(&args.head)
            .filter(|p| p.as_os_str() == "-")
            .count()
            <= 1,
        "standard input (-) can be read only once: give --base or --head as files"
    );
    let base_sources = read_sources("--base", &args.base)?;
    let head_sources = read_sources("--head", &args.head)?;
    let base = parse(&base_sources)?;
    let head = parse(&head_sources)?;
    let windows = windows(&args, &head_sources, now)?;
    if windows.is_empty() {
        eprintln!(
            "fluxgate: no ReconciliationWindow in the head or --windows: every rw change is \
             planned as unknown-window"
        );
    }
    let planned = plan(&base, &head, &windows, &args.common.policy(), now)?;
    let text = match args.output {
        Format::Table => render::table(&planned),
        Format::Markdown => render::markdown(&planned),
        Format::Json => {
            serde_json::to_string_pretty(&render::json(&planned)).context("cannot write JSON")?
                + "\n"
        }
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write stdout")?;
    let fail = match args.fail_on {
        FailOn::Never => false,
        FailOn::Blocked => planned.blocked(),
        FailOn::Waiting => planned.waiting(),
    };
    Ok(if fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn parse(sources: &[Source]) -> anyhow::Result<Vec<Input>> {
    sources
        .iter()
        .map(|s| Ok(parse_input(&s.origin, &s.owner, &s.text)?))
        .collect()
}

/// The files `paths` stand for (a folder: its `*.yaml` and `*.yml` files, recursively, in
/// path order), read as one version; `-`: standard input.
fn read_sources(flag: &str, paths: &[PathBuf]) -> anyhow::Result<Vec<Source>> {
    let mut sources = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            anyhow::ensure!(
                !std::io::stdin().is_terminal(),
                "{flag} -: nothing piped in (e.g. kubectl kustomize apps | fluxgate plan \
                 {flag} - …)"
            );
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read <stdin>")?;
            sources.push(Source {
                origin: "<stdin>".into(),
                owner: "<stdin>".into(),
                text,
            });
            continue;
        }
        let files = crate::windows::read::yaml_files(path)
            .map_err(crate::windows::ReadError::from)
            .with_context(|| format!("cannot read {flag} {}", path.display()))?;
        anyhow::ensure!(
            !files.is_empty(),
            "{flag} {}: no *.yaml or *.yml file in it: render each Flux owner's manifests into \
             one (kubectl kustomize <path> > {}/<owner>.yaml)",
            path.display(),
            path.display()
        );
        let snapshot = crate::files::read_files(&files)
            .map_err(crate::windows::ReadError::from)
            .with_context(|| format!("cannot read {flag} {}", path.display()))?;
        for file in snapshot {
            let origin = file.path.display().to_string();
            let text = String::from_utf8(file.bytes)
                .map_err(|e| anyhow::anyhow!("{origin}: not UTF-8 text: {e}"))?;
            sources.push(Source {
                owner: owner_name(&file.path),
                origin,
                text,
            });
        }
    }
    Ok(sources)
}

/// `apps-rw.yaml` → `apps-rw`.
fn owner_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The windows planned with: the head's, and those of `--windows` or of the cluster (the
/// head's replacing live ones of the same name), through the webhook's gate. A head window the
/// gate refuses stays out (the plan shows its own change as never landing, and what it governs
/// as unknown-window), and so does a live one (with a warning, as `status --from-cluster`
/// says it); any other problem is an error.
fn windows(
    args: &PlanArgs,
    head: &[Source],
    now: DateTime<Utc>,
) -> anyhow::Result<fluxgate_core::window::WindowSet> {
    let mut documents: Vec<Document> = Vec::new();
    for source in head {
        documents.extend(
            parse_documents(&source.origin, &source.text)
                .with_context(|| format!("cannot read the windows of {}", source.origin))?,
        );
    }
    let from_head: BTreeSet<String> = documents
        .iter()
        .filter_map(|d| d.object.metadata.name.clone())
        .collect();
    if args.windows_from_cluster {
        let (live, freezes) = super::status::cluster_window_documents(now, &args.namespace)?;
        // The cluster's stop-the-line freezes cover the head's windows too, as the webhook
        // adds them to every window they name once the change is merged.
        for document in &mut documents {
            document.object =
                crate::cluster::index::with_freezes(document.object.clone(), &freezes);
        }
        documents.extend(live.into_iter().filter(|d| {
            d.object
                .metadata
                .name
                .as_ref()
                .is_none_or(|n| !from_head.contains(n))
        }));
    } else if !args.common.window_paths().is_empty() {
        let paths = args.common.window_paths();
        let snapshot = crate::windows::read::read_windows(paths)
            .map_err(crate::windows::ReadError::from)
            .context("cannot load windows")?;
        let (found, errors) = crate::windows::read::documents(paths, &snapshot);
        if !errors.is_empty() {
            let error = fluxgate_core::window::WindowSetError::from_list(errors);
            return Err(anyhow::Error::from(error).context("cannot load windows"));
        }
        documents.extend(found);
    }
    let gate: Gate = args.common.gate();
    let checked = gate.check(&documents, now);
    // In the cluster each window is its own unit, as for the webhook's watch: one the gate
    // refuses is not in force, and what it governs is planned as unknown-window.
    let mut fatal = Vec::new();
    for problem in &checked.problems {
        match &problem.window {
            Some(w) if from_head.contains(w) => {}
            Some(_) if args.windows_from_cluster => {
                eprintln!("fluxgate: warning: not in force: {}", problem.text);
            }
            _ => fatal.push(problem),
        }
    }
    if !fatal.is_empty() {
        let text: Vec<&str> = fatal.iter().map(|p| p.text.as_str()).collect();
        anyhow::bail!("cannot use the windows: {}", text.join("; "));
    }
    Ok(checked.set)
}
