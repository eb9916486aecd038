//! `fluxgate review`: an AdmissionReview in a file or on stdin, the response on stdout, through the same
//! code path as the server, with the clock fixed at `--at`.

use super::{AtArg, CommonArgs};
use crate::windows::load_checked;
use anyhow::Context;
use clap::Args;
use fluxgate_core::admission::review;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
#[command(mut_arg("at", |a| a.help("Decide as of this instant (RFC 3339) instead of now")))]
pub(crate) struct ReviewArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    at: AtArg,
    /// The AdmissionReview JSON; `-` or none: standard input.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
}

pub(crate) fn run(args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let now = args.at.clock().now();
    let windows = load_checked(args.common.window_paths(), &args.common.gate(), now)?;
    let (input, name) = match args.file.as_deref().filter(|f| f.as_os_str() != "-") {
        Some(path) => {
            let input =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            (input, path.display().to_string())
        }
        None => {
            let mut input = Vec::new();
            std::io::stdin()
                .read_to_end(&mut input)
                .context("cannot read stdin")?;
            (input, "stdin".to_owned())
        }
    };
    let reviewed = review(&input, &windows, &args.common.policy(), now).context(name)?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &reviewed.response()).context("cannot write stdout")?;
    writeln!(out).context("cannot write stdout")?;
    Ok(ExitCode::SUCCESS)
}
