//! `ReconciliationWindow`: the object as committed to Git, and the validated model.
//!
//! There is one definition of "valid": [`Window::from_object`]. The YAML loader, the admission
//! check of ReconciliationWindow objects and every later consumer go through it, so they can
//! never disagree. Errors name the window and the field (`spec.schedules[1].close`), because
//! the person reading them is looking at a YAML file in Git.

mod set;
mod state;

pub use set::{Document, WindowSet, WindowSetError, parse_documents};
pub use state::{WindowState, evaluate, evaluate_without_overrides};

use crate::cron::Cron;
use crate::duration::parse_duration;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// API group of fluxgate's objects.
pub const GROUP: &str = "fluxgate.io";
/// The only served version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of a ReconciliationWindow.
pub const API_VERSION: &str = "fluxgate.io/v1alpha1";
/// `kind` of a ReconciliationWindow.
pub const KIND: &str = "ReconciliationWindow";

// The CRD's schema is derived from these types, so the YAML loader, the admission check and the
// cluster API agree on the shape. Unknown fields are errors: a misspelt `timezone:` must not
// silently mean UTC. Doc comments become `kubectl explain` text: write them for users.

/// When Flux may change the objects governed by this window: open while any schedule is open,
/// closed during freezes.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[kube(
    group = "fluxgate.io",
    version = "v1alpha1",
    kind = "ReconciliationWindow",
    shortname = "rwin",
    doc = "A reconciliation window: when Flux may change objects labelled fluxgate.io/mode: rw",
    printcolumn = r#"{"name":"Time Zone","type":"string","jsonPath":".spec.timeZone"}"#,
    printcolumn = r#"{"name":"Description","type":"string","jsonPath":".spec.description"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WindowSpec {
    /// What this window is for, shown by `fluxgate status` and `kubectl get rwin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// IANA time zone the schedules are evaluated in (e.g. Europe/Berlin); UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The window is open while any schedule is open.
    #[serde(default)]
    pub schedules: Vec<ScheduleSpec>,
    /// Periods during which the window is closed whatever the schedules say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freezes: Vec<FreezeSpec>,
    /// Periods during which the window is open whatever the schedules and (soft) freezes say:
    /// a planned or emergency release of everything the window governs, from Git. Each is at
    /// most `--max-override` long (default 24h); remove it once it has passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<OverrideSpec>,
}

/// Either `open` + `close`, or `start` + `duration`. Crons use the five-field syntax of
/// Kubernetes CronJob (minute hour day-of-month month day-of-week), in `timeZone`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Cron: the window opens at each fire (e.g. "0 8 * * MON").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<String>,
    /// Cron: the window closes at each fire (e.g. "0 17 * * THU").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<String>,
    /// Cron: the window opens at each fire for `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// How long the window stays open after each `start` fire, in elapsed time (e.g. 2h, 90m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// A period during which the window is closed, whatever the schedules say: [start, end).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FreezeSpec {
    /// RFC 3339 instant the freeze begins (e.g. 2026-12-20T00:00:00+01:00).
    pub start: String,
    /// RFC 3339 instant the freeze ends; after start.
    pub end: String,
    /// Shown in denials and `fluxgate status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A period during which the window is open whatever the schedules say: [start, end).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideSpec {
    /// RFC 3339 instant the override begins (e.g. 2026-12-22T18:00:00+01:00).
    pub start: String,
    /// RFC 3339 instant the override ends; after start, at most --max-override later.
    pub end: String,
    /// Why the window is opened (required): shown in admission warnings, Events and the audit
    /// log.
    pub reason: String,
}

/// A validated window.
#[derive(Debug)]
pub struct Window {
    name: String,
    description: Option<String>,
    time_zone: Tz,
    schedules: Vec<Schedule>,
    freezes: Vec<Freeze>,
    overrides: Vec<Override>,
    /// The state last computed, valid until its next transition.
    cache: arc_swap::ArcSwapOption<state::Cached>,
}

/// One way of opening a window.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// Open from each `open` fire until the next `close` fire.
    OpenClose { open: Cron, close: Cron },
    /// Open for `duration` (elapsed time) after each `start` fire.
    StartDuration { start: Cron, duration: Duration },
}

/// A period during which the window is closed.
#[derive(Clone, Debug, PartialEq)]
pub struct Freeze {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: Option<String>,
}

/// A period during which the window is open whatever the schedules say.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: String,
}

/// Why a window is invalid: names the window and the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("ReconciliationWindow {window:?}: {field}: {message}")]
pub struct WindowError {
    pub window: String,
    pub field: String,
    pub message: String,
}

// === impl Window ===

impl Window {
    /// Validates an object: the one definition of a valid window.
    pub fn from_object(object: &ReconciliationWindow) -> Result<Self, WindowError> {
        let name = object.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(WindowError {
                window: name,
                field: "metadata.name".into(),
                message: "a window needs a name".into(),
            });
        }
        Self::from_spec(&name, &object.spec)
    }

    /// Validates a spec under a name.
    pub fn from_spec(name: &str, spec: &WindowSpec) -> Result<Self, WindowError> {
        let error = |field: String, message: String| WindowError {
            window: name.to_owned(),
            field,
            message,
        };
        let time_zone = match spec.time_zone.as_deref() {
            None => Tz::UTC,
            Some(text) => text.parse::<Tz>().map_err(|_| {
                error(
                    "spec.timeZone".into(),
                    format!("{text:?} is not an IANA time zone name (e.g. Europe/Berlin, UTC)"),
                )
            })?,
        };
        if spec.schedules.is_empty() {
            return Err(error(
                "spec.schedules".into(),
                "at least one schedule is required (open/close or start/duration)".into(),
            ));
        }
        let cron = |field: String, text: &str| {
            Cron::parse(text).map_err(|e| error(field, format!("{text:?}: {e}")))
        };
        let mut schedules = Vec::with_capacity(spec.schedules.len());
        for (i, s) in spec.schedules.iter().enumerate() {
            let at = |field: &str| format!("spec.schedules[{i}]{field}");
            let schedule = match (&s.open, &s.close, &s.start, &s.duration) {
                (Some(open), Some(close), None, None) => Schedule::OpenClose {
                    open: cron(at(".open"), open)?,
                    close: cron(at(".close"), close)?,
                },
                (None, None, Some(start), Some(duration)) => Schedule::StartDuration {
                    start: cron(at(".start"), start)?,
                    duration: parse_duration(duration)
                        .map_err(|e| e.to_string())
                        .and_then(|d| {
                            // Longer runs cannot be evaluated: the state walks look ten years
                            // ahead, and `9999999999h` panicked past chrono's range (found
                            // triaging fuzz/fuzz_targets/windows_yaml.rs inputs).
                            let most = Duration::days(crate::cron::SEARCH_HORIZON_DAYS);
                            if d > most {
                                return Err(format!(
                                    "{duration:?} is longer than the {}h (ten years) fluxgate \
                                     looks ahead",
                                    most.num_hours()
                                ));
                            }
                            Ok(d)
                        })
                        .map_err(|message| error(at(".duration"), message))?,
                },
                (None, Some(_), None, None) => {
                    return Err(error(at(".close"), "close without open".into()));
                }
                (Some(_), None, None, None) => {
                    return Err(error(at(".open"), "open without close".into()));
                }
                (None, None, Some(_), None) => {
                    return Err(error(at(".start"), "start without duration".into()));
                }
                (None, None, None, Some(_)) => {
                    return Err(error(at(".duration"), "duration without start".into()));
                }
                (None, None, None, None) => {
                    return Err(error(
                        at(""),
                        "empty schedule: give open and close, or start and duration".into(),
                    ));
                }
                _ => {
                    return Err(error(
                        at(""),
                        "give either open and close, or start and duration, not both".into(),
                    ));
                }
            };
            schedules.push(schedule);
        }
        let mut freezes = Vec::with_capacity(spec.freezes.len());
        for (i, f) in spec.freezes.iter().enumerate() {
            let (start, end) = span(&format!("spec.freezes[{i}]"), &f.start, &f.end)
                .map_err(|(field, message)| error(field, message))?;
            freezes.push(Freeze {
                start,
                end,
                reason: f.reason.clone(),
            });
        }
        let mut overrides = Vec::with_capacity(spec.overrides.len());
        for (i, o) in spec.overrides.iter().enumerate() {
            let at = format!("spec.overrides[{i}]");
            let (start, end) =
                span(&at, &o.start, &o.end).map_err(|(field, message)| error(field, message))?;
            if o.reason.trim().is_empty() {
                return Err(error(
                    format!("{at}.reason"),
                    "say why the window is opened (it is shown in warnings, Events and the \
                     audit log)"
                        .into(),
                ));
            }
            overrides.push(Override {
                start,
                end,
                reason: o.reason.trim().to_owned(),
            });
        }
        Ok(Window {
            name: name.to_owned(),
            description: spec.description.clone(),
            time_zone,
            schedules,
            freezes,
            overrides,
            cache: Default::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    pub fn freezes(&self) -> &[Freeze] {
        &self.freezes
    }

    pub fn overrides(&self) -> &[Override] {
        &self.overrides
    }

    /// The state at `now`, computed at most once per state: the result is cached until the
    /// next transition, so deciding a request costs an atomic load, not a cron search.
    pub fn state_at(&self, now: DateTime<Utc>) -> Arc<WindowState> {
        if let Some(cached) = self.cache.load().as_ref()
            && cached.covers(now)
        {
            return cached.state.clone();
        }
        let cached = state::Cached::compute(self, now);
        let state = cached.state.clone();
        self.cache.store(Some(Arc::new(cached)));
        state
    }
}

/// A `[start, end)` period of a freeze or an override (`at` is its field path): both instants
/// parsed, end after start. The error is (field, message).
fn span(
    at: &str,
    start: &str,
    end: &str,
) -> Result<(DateTime<Utc>, DateTime<Utc>), (String, String)> {
    let instant = |field: &str, text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                (
                    format!("{at}.{field}"),
                    format!("{text:?} is not an RFC 3339 time ({e})"),
                )
            })
    };
    let from = instant("start", start)?;
    let until = instant("end", end)?;
    if until <= from {
        return Err((
            format!("{at}.end"),
            format!("{end:?} is not after start {start:?}"),
        ));
    }
    Ok((from, until))
}

// === impl Override ===

impl Override {
    /// An override covers `[start, end)`.
    pub fn covers(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    pub fn length(&self) -> Duration {
        self.end - self.start
    }
}

#[cfg(test)]
pub(crate) mod tests;
