//! `fluxgate lint`: rendered manifests (files or stdin) → findings; exit 1 when any is an error.
//!
//! Glue only: reads the inputs and the windows, passes the clock's `now` to [`lint`], prints.

use super::{AtArg, CommonArgs, Format, OutputArg};
use anyhow::Context;
use clap::Args;
use fluxgate_core::lint::{Finding, Manifest, Severity, lint, parse_manifests};
use fluxgate_core::render::escape;
use serde::Serialize;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
#[command(mut_arg("at", |a| a.help("Check bypass expiries as of this instant (RFC 3339) instead of now")))]
pub(crate) struct LintArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Rendered manifests (multi-document YAML, e.g. kustomize build output); `-` or none:
    /// standard input. Each input is one Flux Kustomization's worth of objects.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    at: AtArg,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Serialize)]
struct LintJson<'a> {
    inputs: &'a [String],
    objects: usize,
    errors: usize,
    warnings: usize,
    findings: &'a [Finding],
}

pub(crate) fn run(args: LintArgs) -> anyhow::Result<ExitCode> {
    let config = args.common.to_config()?;
    let now = args.at.clock().now();
    let (names, manifests) = read_inputs(&args.files)?;
    if config.embedded {
        eprintln!(
            "fluxgate: no --windows given: checking window names against the embedded example \
             windows ({})",
            config.windows.names().collect::<Vec<_>>().join(", ")
        );
    }
    if manifests.is_empty() {
        // Most likely the render before the pipe failed (without `set -o pipefail`).
        eprintln!(
            "fluxgate: no Kubernetes objects in {}: did the render fail?",
            names.join(", ")
        );
    }
    let findings = lint(&manifests, &config.windows, &config.policy, now);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    let report = LintJson {
        inputs: &names,
        objects: manifests.len(),
        errors,
        warnings,
        findings: &findings,
    };
    let mut out = std::io::stdout().lock();
    match args.output.output {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report).context("cannot write stdout")?;
            writeln!(out).context("cannot write stdout")?;
        }
        Format::Table => out
            .write_all(table(&report).as_bytes())
            .context("cannot write stdout")?,
    }
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The findings, then a line that counts them.
fn table(report: &LintJson) -> String {
    let mut text = String::new();
    // Object names, file names and annotation values come from the manifests under review:
    // shown escaped, so none can print a finding of its own or hide one.
    for f in report.findings {
        text.push_str(&format!(
            "{}[{}] {} ({})\n  {}\n  fix: {}\n",
            f.severity.as_str(),
            f.check,
            escape(&f.object),
            escape(&f.at),
            escape(&f.message),
            escape(&f.fix)
        ));
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let verdict = if report.findings.is_empty() {
        "no problems".to_owned()
    } else {
        format!(
            "{}, {}",
            plural(report.errors, "error"),
            plural(report.warnings, "warning")
        )
    };
    if !report.findings.is_empty() {
        text.push('\n');
    }
    let names: Vec<_> = report.inputs.iter().map(|n| escape(n)).collect();
    text.push_str(&format!(
        "{} in {}: {verdict}\n",
        plural(report.objects, "object"),
        names.join(", ")
    ));
    text
}

/// Reads and parses every input; the first unreadable one is an error (exit 2).
fn read_inputs(files: &[PathBuf]) -> anyhow::Result<(Vec<String>, Vec<Manifest>)> {
    let stdin = PathBuf::from("-");
    let files = if files.is_empty() {
        std::slice::from_ref(&stdin)
    } else {
        files
    };
    anyhow::ensure!(
        files.iter().filter(|f| f.as_os_str() == "-").count() <= 1,
        "standard input (-) can be read only once"
    );
    let mut names = Vec::new();
    let mut manifests = Vec::new();
    for file in files {
        let (name, text) = if file.as_os_str() == "-" {
            anyhow::ensure!(
                !std::io::stdin().is_terminal(),
                "no manifests given: name files, or pipe them in (e.g. kustomize build \
                 apps/nginx/nginx-rw | fluxgate lint)"
            );
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read <stdin>")?;
            ("<stdin>".to_owned(), text)
        } else {
            if file.is_dir() {
                anyhow::bail!(
                    "{} is a folder: lint reads rendered manifests; render it first: \
                     kubectl kustomize {} | fluxgate lint -",
                    file.display(),
                    file.display()
                );
            }
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            (file.display().to_string(), text)
        };
        manifests.extend(parse_manifests(&name, &text)?);
        names.push(name);
    }
    Ok((names, manifests))
}
