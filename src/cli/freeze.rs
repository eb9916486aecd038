//! `fluxgate freeze start|list|end`: on-call's stop-the-line freeze, as ReconciliationFreeze
//! objects written through the kubeconfig (as kubectl does), with no Git commit.
//!
//! The command only writes the object: the webhook decides whether it may exist (reason,
//! `--max-freeze`, never from Flux) and audits who wrote it, and every fluxgate replica's
//! watch puts it in force. What the command checks first is the core's own check, so a
//! mistake is said before anything is sent.

use super::AtArg;
use anyhow::Context;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use clap::{ArgGroup, Args, Subcommand};
use fluxgate_core::duration::parse_duration;
use fluxgate_core::freeze::{ReconciliationFreeze, ReconciliationFreezeSpec, StopTheLine};
use fluxgate_core::render::table;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use std::process::ExitCode;

#[derive(Debug, Args)]
#[command(mut_arg("at", |a| a.global(true).help("Act as of this instant (RFC 3339) instead of now")))]
pub(crate) struct FreezeArgs {
    #[command(subcommand)]
    command: FreezeCommand,
    #[command(flatten)]
    at: AtArg,
}

#[derive(Debug, Subcommand)]
enum FreezeCommand {
    /// Stop the line now: freeze the windows named (or all) for a while.
    Start(StartArgs),
    /// Show the cluster's freezes, in force or not.
    List,
    /// End a freeze now (deletes it); the one in force when NAME is not given.
    End {
        /// The ReconciliationFreeze to end.
        name: Option<String>,
    },
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("covers").required(true).args(["windows", "all"])))]
struct StartArgs {
    /// Why the line is stopped, e.g. the incident (shown in every denial).
    #[arg(long)]
    reason: String,
    /// How long the freeze lasts (e.g. 2h, 30m); at most the webhook's --max-freeze.
    #[arg(long = "for", value_parser = parse_duration, value_name = "DURATION")]
    duration: Duration,
    /// A window to freeze (repeatable).
    #[arg(long = "window", value_name = "NAME")]
    windows: Vec<String>,
    /// Freeze every window.
    #[arg(long)]
    all: bool,
    /// Let bypass annotations and window overrides through (a soft freeze).
    #[arg(long)]
    allow_bypass: bool,
    /// The object's name; from the reason and the start when absent.
    #[arg(long)]
    name: Option<String>,
}

pub(crate) fn run(args: FreezeArgs) -> anyhow::Result<ExitCode> {
    let now = args.at.clock().now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("cannot reach the Kubernetes API (kubeconfig or in-cluster config)")?;
        let api: Api<ReconciliationFreeze> = Api::all(client);
        let text = match args.command {
            FreezeCommand::Start(start) => self::start(&api, start, now).await?,
            FreezeCommand::List => list(&api, now).await?,
            FreezeCommand::End { name } => end(&api, name, now).await?,
        };
        print!("{text}");
        Ok(ExitCode::SUCCESS)
    })
}

async fn start(
    api: &Api<ReconciliationFreeze>,
    args: StartArgs,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let name = args.name.unwrap_or_else(|| default_name(&args.reason, now));
    let spec = ReconciliationFreezeSpec {
        reason: args.reason,
        start: Some(rfc3339(now)),
        end: rfc3339(now + args.duration),
        windows: args.windows,
        all: args.all,
        allow_bypass: args.allow_bypass,
    };
    let object = ReconciliationFreeze::new(&name, spec);
    // The webhook bounds the length with its own --max-freeze; everything else is said here.
    let freeze = StopTheLine::from_object(&object, args.duration, now)?;
    api.create(&PostParams::default(), &object)
        .await
        .map_err(api_error)
        .with_context(|| format!("cannot create ReconciliationFreeze {name}"))?;
    Ok(format!(
        "ReconciliationFreeze {name} in force: {} frozen until {} ({})\n",
        covered(&freeze),
        rfc3339(freeze.end),
        freeze.reason
    ))
}

async fn list(api: &Api<ReconciliationFreeze>, now: DateTime<Utc>) -> anyhow::Result<String> {
    let objects = api
        .list(&ListParams::default())
        .await
        .map_err(api_error)
        .context("cannot list ReconciliationFreezes")?;
    if objects.items.is_empty() {
        return Ok("no ReconciliationFreezes\n".to_owned());
    }
    let mut rows = vec![table::header(&[
        "NAME",
        "STATE",
        "REASON",
        "WINDOWS",
        "START",
        "END",
        "CREATED BY",
    ])];
    for object in &objects.items {
        let name = object.metadata.name.clone().unwrap_or_default();
        let created_by = object
            .status
            .as_ref()
            .and_then(|s| s.created_by.clone())
            .unwrap_or_else(|| "-".into());
        // The check the webhook and the watch make, but for the length: the webhook's
        // --max-freeze is not known here.
        let row = match StopTheLine::from_object(object, Duration::MAX, now) {
            Ok(f) => vec![
                name,
                state(&f, now).into(),
                f.reason.clone(),
                covered(&f),
                rfc3339(f.start),
                rfc3339(f.end),
                created_by,
            ],
            Err(error) => vec![
                name,
                "invalid".into(),
                error.to_string(),
                String::new(),
                String::new(),
                String::new(),
                created_by,
            ],
        };
        rows.push(row);
    }
    Ok(table::text(&rows, &[], ""))
}

async fn end(
    api: &Api<ReconciliationFreeze>,
    name: Option<String>,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let name = match name {
        Some(name) => name,
        None => {
            let objects = api
                .list(&ListParams::default())
                .await
                .map_err(api_error)
                .context("cannot list ReconciliationFreezes")?;
            let in_force: Vec<String> = objects
                .items
                .iter()
                .filter_map(|o| StopTheLine::from_object(o, Duration::MAX, now).ok())
                .filter(|f| f.in_force(now))
                .map(|f| f.name)
                .collect();
            match in_force.as_slice() {
                [one] => one.clone(),
                [] => anyhow::bail!("no ReconciliationFreeze is in force: nothing to end"),
                many => anyhow::bail!(
                    "{} ReconciliationFreezes are in force ({}): name the one to end",
                    many.len(),
                    many.join(", ")
                ),
            }
        }
    };
    api.delete(&name, &DeleteParams::default())
        .await
        .map_err(api_error)
        .with_context(|| format!("cannot end ReconciliationFreeze {name}"))?;
    Ok(format!(
        "ReconciliationFreeze {name} ended: its windows follow their schedules again, and Flux \
         is asked to retry what it denied where they are open\n"
    ))
}

/// The API server's own words for a refusal (the webhook's denial, RBAC's forbidden), without
/// kube's wrapping; other errors as they are.
fn api_error(error: kube::Error) -> anyhow::Error {
    match error {
        kube::Error::Api(status) => anyhow::anyhow!("{}", status.message),
        other => other.into(),
    }
}

/// `inc-4711-20261207-091500`: the reason as a DNS label, and the start.
fn default_name(reason: &str, now: DateTime<Utc>) -> String {
    let mut slug = String::new();
    for c in reason.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(40);
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "freeze" } else { slug };
    format!("{slug}-{}", now.format("%Y%m%d-%H%M%S"))
}

fn covered(freeze: &StopTheLine) -> String {
    match &freeze.windows {
        None => "all windows".into(),
        Some(names) => names.join(", "),
    }
}

fn state(freeze: &StopTheLine, now: DateTime<Utc>) -> &'static str {
    if freeze.in_force(now) {
        "in force"
    } else if now < freeze.start {
        "not yet"
    } else {
        "over"
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_dns_labels_from_the_reason_and_the_start() {
        let now = "2026-12-07T09:15:00Z".parse().unwrap();
        assert_eq!(default_name("INC-4711", now), "inc-4711-20261207-091500");
        assert_eq!(
            default_name("  DB down: rollback!! ", now),
            "db-down-rollback-20261207-091500"
        );
        assert_eq!(default_name("Störung", now), "st-rung-20261207-091500");
        assert_eq!(default_name("!!!", now), "freeze-20261207-091500");
    }
}
