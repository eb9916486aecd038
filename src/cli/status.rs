//! `fluxgate status`: every window, open or closed, since when, next transition.

use super::{AtArg, Format, OutputArg, WindowArgs};
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use fluxgate_core::naming::local_time;
use fluxgate_core::render::week;
use fluxgate_core::window::{Window, WindowState};
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, Args)]
#[command(mut_arg("at", |a| a.help("Evaluate as of this instant (RFC 3339) instead of now")))]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    windows: WindowArgs,
    #[command(flatten)]
    at: AtArg,
    #[command(flatten)]
    output: OutputArg,
    /// Show the week from today 00:00, hour by hour, instead of the table.
    #[arg(long, env = "FLUXGATE_WEEK", conflicts_with = "output")]
    week: bool,
    /// Read the ReconciliationWindows of the cluster (through the kubeconfig, as kubectl does)
    /// instead of --windows files.
    #[arg(long, env = "FLUXGATE_FROM_CLUSTER", conflicts_with = "windows")]
    from_cluster: bool,
    /// Show every instant in this time zone (IANA name); each window's own when absent.
    #[arg(long, env = "FLUXGATE_TZ", value_parser = week::parse_tz, value_name = "ZONE")]
    tz: Option<chrono_tz::Tz>,
    /// With --from-cluster: fluxgate's namespace, whose ConfigMaps hold the calendars that
    /// windows name by configMapRef.
    #[arg(
        long,
        env = "FLUXGATE_NAMESPACE",
        default_value = "fluxgate-system",
        value_name = "NS"
    )]
    namespace: String,
}

/// The cluster's windows, validated as the webhook validates them, with the ConfigMaps their
/// calendars name (in `namespace`, fluxgate's) and the cluster's stop-the-line freezes added to
/// the windows they cover, as the webhook adds them.
fn cluster_windows(
    now: DateTime<Utc>,
    namespace: &str,
) -> anyhow::Result<fluxgate_core::window::WindowSet> {
    let (documents, _) = cluster_window_documents(now, namespace)?;
    // Through the gate the webhook's windows pass, with its default bounds: a window it keeps
    // out of force (an override longer than --max-override, one that never opens, a calendar
    // that cannot be read) is not shown as if it were enforced.
    let checked = crate::windows::Gate::default().check(&documents, now);
    for problem in &checked.problems {
        eprintln!("fluxgate: warning: not in force: {}", problem.text);
    }
    Ok(checked.set)
}

/// The cluster's ReconciliationWindows (through the kubeconfig, as kubectl reads it), as
/// documents for a window set: with the data of the ConfigMaps (of `namespace`) their calendars
/// name, and the cluster's stop-the-line freezes added to the windows they cover, as the
/// webhook adds them; and those freezes, for windows from elsewhere (`plan`'s head). `status
/// --from-cluster`, `plan --windows-from-cluster`.
pub(crate) fn cluster_window_documents(
    now: DateTime<Utc>,
    namespace: &str,
) -> anyhow::Result<(
    Vec<fluxgate_core::window::Document>,
    Vec<fluxgate_core::freeze::StopTheLine>,
)> {
    use fluxgate_core::freeze::ReconciliationFreeze;
    use fluxgate_core::policy::Policy;
    use fluxgate_core::window::ReconciliationWindow;
    use k8s_openapi::api::core::v1::ConfigMap;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (objects, freezes, config_maps) = runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("cannot reach the Kubernetes API (kubeconfig or in-cluster config)")?;
        let api: kube::Api<ReconciliationWindow> = kube::Api::all(client.clone());
        let windows = api
            .list(&Default::default())
            .await
            .context("cannot list ReconciliationWindows")?;
        let api: kube::Api<ReconciliationFreeze> = kube::Api::all(client.clone());
        let freezes = api
            .list(&Default::default())
            .await
            .context("cannot list ReconciliationFreezes (is deploy/crds applied?)")?;
        // Only when a window needs them: reading windows needs no access to ConfigMaps.
        let names_config_map = windows
            .items
            .iter()
            .any(|w| crate::cluster::index::config_maps_named(w).next().is_some());
        // Not listed (RBAC): the windows naming one are not in force, and say which ConfigMap
        // and what to grant; the others are shown.
        let mut config_maps = Ok(Vec::new());
        if names_config_map {
            let api: kube::Api<ConfigMap> = kube::Api::namespaced(client, namespace);
            config_maps = api
                .list(&Default::default())
                .await
                .map(|list| list.items)
                .map_err(|e| crate::cluster::index::api_error_text(&e));
        }
        anyhow::Ok((windows, freezes, config_maps))
    })?;
    let max = Policy::default().max_freeze;
    let (freezes, refused) = crate::cluster::freezes::valid_freezes(&freezes.items, max, now);
    for refused in refused {
        eprintln!("fluxgate: {refused}");
    }
    let mut index = crate::cluster::index::WindowIndex::in_namespace(namespace);
    match config_maps {
        Ok(config_maps) => {
            for config_map in config_maps {
                index.apply_config_map(config_map);
            }
        }
        Err(error) => {
            index = crate::cluster::index::WindowIndex::watching_config_maps(namespace);
            index.config_maps_unavailable(error);
        }
    }
    let objects = objects
        .items
        .into_iter()
        .map(|object| crate::cluster::index::with_freezes(object, &freezes))
        .collect();
    Ok((index.documents_of(objects), freezes))
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
    /// Whether a freeze is in force (the window is then closed, unless an override opens it).
    frozen: bool,
    /// The freeze in force: its reason, whether bypasses pass, and its period.
    #[serde(skip_serializing_if = "Option::is_none")]
    freeze: Option<FreezeJson>,
    /// The override holding the window open, if one is.
    #[serde(rename = "override", skip_serializing_if = "Option::is_none")]
    override_: Option<OverrideJson>,
    /// The event of a `mode: allow` calendar holding the window open, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    opening: Option<OpeningJson>,
    /// `Enforce` or `Warn`.
    enforcement: fluxgate_core::window::Enforcement,
    /// When `next` is null because the search stopped early: up to when the state is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    searched_until: Option<String>,
    /// Valid but probably not meant (crons whose day fields are ORed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FreezeJson {
    reason: Option<String>,
    allow_bypass: bool,
    start: Option<String>,
    end: Option<String>,
    /// The calendar whose event froze the window (`spec.calendars[].name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    calendar: Option<String>,
    /// That event's UID.
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<String>,
}

#[derive(Debug, Serialize)]
struct OpeningJson {
    /// `spec.calendars[].name`.
    calendar: String,
    /// The event's UID.
    event: String,
    /// Its SUMMARY.
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    start: String,
    end: String,
}

#[derive(Debug, Serialize)]
struct OverrideJson {
    reason: String,
    start: String,
    end: String,
}

pub(crate) fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let now = args.at.clock().now();
    let (windows, embedded) = if args.from_cluster {
        (cluster_windows(now, &args.namespace)?, false)
    } else {
        args.windows.load()?
    };
    if args.week {
        if embedded {
            eprintln!("fluxgate: no --windows given: showing the embedded example windows");
        }
        let text = week::render(&windows, now, args.tz);
        write!(std::io::stdout().lock(), "{text}").context("cannot write stdout")?;
        return Ok(ExitCode::SUCCESS);
    }
    let states: Vec<(&Window, std::sync::Arc<WindowState>)> =
        windows.iter().map(|w| (w, w.state_at(now))).collect();
    let mut out = std::io::stdout().lock();
    match args.output.output {
        Format::Json => {
            let rows: Vec<StatusJson> = states
                .iter()
                .map(|(w, s)| {
                    let zone = args.tz.unwrap_or(w.time_zone());
                    let instant = |t: Option<DateTime<Utc>>| t.map(|t| local_time(t, zone));
                    StatusJson {
                        name: w.name().to_owned(),
                        open: s.open,
                        since: instant(s.since),
                        next: instant(s.next),
                        time_zone: w.time_zone().name().to_owned(),
                        frozen: s.freeze.is_some(),
                        freeze: s.freeze.as_ref().map(|f| FreezeJson {
                            reason: f.reason.clone(),
                            allow_bypass: f.allow_bypass,
                            start: instant(f.start),
                            end: instant(f.end),
                            calendar: f.event.as_ref().map(|e| e.calendar.clone()),
                            event: f.event.as_ref().map(|e| e.uid.clone()),
                        }),
                        override_: s.opened_by.as_ref().map(|o| OverrideJson {
                            reason: o.reason.clone(),
                            start: instant(Some(o.start)).unwrap_or_default(),
                            end: instant(Some(o.end)).unwrap_or_default(),
                        }),
                        opening: s.opened_by_event.as_ref().map(|e| OpeningJson {
                            calendar: e.calendar.clone(),
                            event: e.uid.clone(),
                            summary: e.summary.clone(),
                            start: instant(Some(e.start)).unwrap_or_default(),
                            end: instant(Some(e.end)).unwrap_or_default(),
                        }),
                        enforcement: w.enforcement(),
                        searched_until: instant(s.searched_until),
                        warnings: w
                            .warnings()
                            .into_iter()
                            .map(|(field, message)| format!("{field}: {message}"))
                            .collect(),
                    }
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &rows).context("cannot write stdout")?;
            writeln!(out).context("cannot write stdout")?;
        }
        Format::Table => {
            if embedded {
                eprintln!("fluxgate: no --windows given: showing the embedded example windows");
            }
            write!(out, "{}", table(&states, args.tz)).context("cannot write stdout")?;
            for (window, _) in &states {
                for (field, message) in window.warnings() {
                    eprintln!(
                        "fluxgate: warning: window {:?}: {field}: {message}",
                        window.name()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The table; instants in `tz` when given, else in each window's zone (the TIME ZONE column
/// always names the window's own).
fn table(states: &[(&Window, std::sync::Arc<WindowState>)], tz: Option<chrono_tz::Tz>) -> String {
    let mut rows = vec![fluxgate_core::render::table::header(&[
        "WINDOW",
        "STATE",
        "SINCE",
        "NEXT CHANGE",
        "TIME ZONE",
        "DESCRIPTION",
    ])];
    for (window, state) in states {
        let zone = tz.unwrap_or(window.time_zone());
        let when = |t: Option<DateTime<Utc>>| match t {
            Some(t) => t
                .with_timezone(&zone)
                .format("%a %Y-%m-%d %H:%M %Z")
                .to_string(),
            None => "-".to_owned(),
        };
        let label = match (state.open, &state.freeze) {
            (true, _) if state.opened_by.is_some() => {
                let reason = state.opened_by.as_ref().map_or("", |o| o.reason.as_str());
                format!("open (override: {reason})")
            }
            (true, _) => match &state.opened_by_event {
                Some(event) => format!("open{}", event.describe()),
                None => "open".to_owned(),
            },
            (false, Some(f)) => {
                let frozen = if f.allow_bypass {
                    "frozen"
                } else {
                    "hard-frozen"
                };
                format!("{frozen}{}", f.describe())
            }
            (false, None) => "closed".to_owned(),
        };
        let next = match (state.next, state.searched_until) {
            (None, Some(until)) => format!("not before {} (search stopped)", when(Some(until))),
            (next, _) => when(next),
        };
        let label = match window.enforcement() {
            fluxgate_core::window::Enforcement::Warn => format!("{label}, warn only"),
            fluxgate_core::window::Enforcement::Enforce => label,
        };
        rows.push(vec![
            window.name().to_owned(),
            label,
            when(state.since),
            next,
            window.time_zone().name().to_owned(),
            window.description().unwrap_or("").to_owned(),
        ]);
    }
    fluxgate_core::render::table::text(&rows, &[], "")
}
