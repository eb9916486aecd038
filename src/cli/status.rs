//! `fluxgate status`: every window, open or closed, since when, next transition.

use super::{CommonArgs, parse_instant, week};
use crate::window::{Window, WindowState};
use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Evaluate as of this instant (RFC 3339) instead of now.
    #[arg(long, env = "FLUXGATE_AT", value_parser = parse_instant, value_name = "T")]
    at: Option<DateTime<Utc>>,
    /// Output format.
    #[arg(short = 'o', long = "output", env = "FLUXGATE_OUTPUT", value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Show the week from today 00:00, hour by hour, instead of the table.
    #[arg(long, env = "FLUXGATE_WEEK", conflicts_with = "output")]
    week: bool,
    /// Time zone of the week view (IANA name); each window's own when absent.
    #[arg(long, env = "FLUXGATE_TZ", value_parser = week::parse_tz, value_name = "ZONE", requires = "week")]
    tz: Option<chrono_tz::Tz>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Table,
    Json,
}

/// One window in `-o json`; instants in RFC 3339, in the window's time zone.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusJson {
    name: String,
    open: bool,
    since: Option<String>,
    next: Option<String>,
    time_zone: String,
}

pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let config = args.common.to_config()?;
    let now = args.at.unwrap_or_else(Utc::now);
    if args.week {
        if config.embedded {
            eprintln!("fluxgate: no --windows given: showing the embedded example windows");
        }
        let text = week::render(&config.windows, now, args.tz);
        write!(std::io::stdout().lock(), "{text}").context("cannot write stdout")?;
        return Ok(ExitCode::SUCCESS);
    }
    let states: Vec<(&Window, std::sync::Arc<WindowState>)> = config
        .windows
        .iter()
        .map(|w| (w, w.state_at(now)))
        .collect();
    let mut out = std::io::stdout().lock();
    match args.output {
        Format::Json => {
            let rows: Vec<StatusJson> = states
                .iter()
                .map(|(w, s)| {
                    let instant = |t: Option<DateTime<Utc>>| {
                        t.map(|t| {
                            t.with_timezone(&w.time_zone())
                                .to_rfc3339_opts(SecondsFormat::Secs, true)
                        })
                    };
                    StatusJson {
                        name: w.name().to_owned(),
                        open: s.open,
                        since: instant(s.since),
                        next: instant(s.next),
                        time_zone: w.time_zone().name().to_owned(),
                    }
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &rows).context("cannot write stdout")?;
            writeln!(out).context("cannot write stdout")?;
        }
        Format::Table => {
            if config.embedded {
                eprintln!("fluxgate: no --windows given: showing the embedded example windows");
            }
            write!(out, "{}", table(&states)).context("cannot write stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table(states: &[(&Window, std::sync::Arc<WindowState>)]) -> String {
    let header = [
        "WINDOW",
        "STATE",
        "SINCE",
        "NEXT CHANGE",
        "TIME ZONE",
        "DESCRIPTION",
    ]
    .map(String::from);
    let mut rows = vec![header];
    for (window, state) in states {
        let tz = window.time_zone();
        let when = |t: Option<DateTime<Utc>>| match t {
            Some(t) => t
                .with_timezone(&tz)
                .format("%a %Y-%m-%d %H:%M %Z")
                .to_string(),
            None => "-".to_owned(),
        };
        let label = match (state.open, &state.freeze) {
            (true, _) if state.opened_by.is_some() => {
                let reason = state.opened_by.as_ref().map_or("", |o| o.reason.as_str());
                format!("open (override: {reason})")
            }
            (true, _) => "open".to_owned(),
            (false, Some(f)) => {
                let frozen = if f.allow_bypass {
                    "frozen"
                } else {
                    "hard-frozen"
                };
                match &f.reason {
                    Some(reason) => format!("{frozen} ({reason})"),
                    None => frozen.to_owned(),
                }
            }
            (false, None) => "closed".to_owned(),
        };
        rows.push([
            window.name().to_owned(),
            label,
            when(state.since),
            when(state.next),
            tz.name().to_owned(),
            window.description().unwrap_or("").to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}
