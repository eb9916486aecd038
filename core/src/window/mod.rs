//! `ReconciliationWindow`: the object as committed to Git, and the validated model.
//!
//! There is one definition of "valid": [`Window::from_object`]. The YAML loader, the admission
//! check of ReconciliationWindow objects and every later consumer go through it, so they can
//! never disagree. Errors name the window and the field (`spec.schedules[1].close`), because
//! the person reading them is looking at a YAML file in Git.

mod set;
mod state;

pub use set::{
    Document, EMBEDDED_ORIGIN, EMBEDDED_WINDOWS, WindowSet, WindowSetError, parse_documents,
};
pub(crate) use state::evaluate_without_overrides;
pub use state::{ActiveFreeze, CalendarOpening, FreezeEvent, WindowState, evaluate};

use crate::calendar::Calendar;
use crate::cron::Cron;
use crate::duration::parse_duration;
use chrono::{
    DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// API group of fluxgate's objects.
pub(crate) const GROUP: &str = "fluxgate.io";
/// The only served version.
pub(crate) const VERSION: &str = "v1alpha1";
/// `apiVersion` of a ReconciliationWindow.
pub const API_VERSION: &str = "fluxgate.io/v1alpha1";
/// `kind` of a ReconciliationWindow.
pub const KIND: &str = "ReconciliationWindow";

/// Whether an object of `kind` in `apiVersion` is a ReconciliationWindow, of any version (an
/// unserved version is for the caller to refuse): the one answer the loader, the webhook and
/// lint share.
pub(crate) fn is_window_type(api_version: &str, kind: &str) -> bool {
    kind == KIND && crate::naming::api_group(api_version) == GROUP
}

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
    status = "WindowStatus",
    printcolumn = r#"{"name":"Open","type":"boolean","jsonPath":".status.open"}"#,
    printcolumn = r#"{"name":"Next","type":"string","jsonPath":".status.next","description":"When the window next opens or closes"}"#,
    printcolumn = r#"{"name":"Time Zone","type":"string","jsonPath":".spec.timeZone"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Frozen","type":"boolean","jsonPath":".status.frozen","priority":1}"#,
    printcolumn = r#"{"name":"Freeze","type":"string","jsonPath":".status.freezeReason","description":"The reason of the freeze in force (a calendar event's SUMMARY)","priority":1}"#,
    printcolumn = r#"{"name":"Calendar","type":"string","jsonPath":".status.freezeCalendar","description":"The calendar whose event froze the window","priority":1}"#,
    printcolumn = r#"{"name":"Waiting","type":"integer","jsonPath":".status.waitingOwners","description":"Flux owners whose change this window denied","priority":1}"#,
    printcolumn = r#"{"name":"Description","type":"string","jsonPath":".spec.description","priority":1}"#
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
    #[serde(default, deserialize_with = "null_is_empty")]
    pub schedules: Vec<ScheduleSpec>,
    /// Periods during which the window is closed whatever the schedules say.
    #[serde(
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub freezes: Vec<FreezeSpec>,
    /// Periods during which the window is open whatever the schedules and (soft) freezes say:
    /// a planned or emergency release of everything the window governs, from Git. Each is at
    /// most `--max-override` long (default 24h); remove it once it has passed.
    #[serde(
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub overrides: Vec<OverrideSpec>,
    /// Enforce (the default) denies Flux's changes while the window is closed; Warn admits them
    /// with a warning ("would be denied: …") and an audit record saying so, to roll a window out
    /// without breaking anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement>,
    /// iCalendar (RFC 5545) calendars: each VEVENT is a freeze (SUMMARY is its reason), or with
    /// `mode: allow` a period during which the window is open. Each gives exactly one source:
    /// `ics` (inline), `configMapRef` (a key of a ConfigMap in fluxgate's namespace) or, for
    /// windows files only, `path` (relative to the file).
    #[serde(
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub calendars: Vec<CalendarSpec>,
}

/// An iCalendar calendar of freezes (or of open periods).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendarSpec {
    /// What denials, `fluxgate status` and the status call the calendar (e.g. holidays.ics).
    pub name: String,
    /// freeze (the default): each event closes the window. allow: each event opens it, as a
    /// schedule does (freezes still close it), e.g. a maintenance weekend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CalendarMode>,
    /// The calendar itself (BEGIN:VCALENDAR …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ics: Option<String>,
    /// A key of a ConfigMap in fluxgate's namespace holding the calendar, e.g. one made by a
    /// kustomize configMapGenerator from a committed holidays.ics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ConfigMapKeyRef>,
    /// Windows files only (`--windows`): a calendar file, relative to the windows file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// false: the calendar's freezes are hard, refusing bypass annotations and overrides too.
    /// Default true. Freeze mode only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_bypass: Option<bool>,
}

/// What a calendar's events do to the window.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CalendarMode {
    /// Each event is a freeze.
    #[default]
    Freeze,
    /// Each event opens the window, as a schedule does.
    Allow,
}

/// A key of a ConfigMap in fluxgate's namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapKeyRef {
    /// The ConfigMap's name.
    pub name: String,
    /// The key holding the calendar (in data or binaryData).
    pub key: String,
}

/// Where a calendar's data is, when it is not in the spec: the shell reads it (the core does
/// no I/O) and hands it over with the window ([`Document::with_calendar`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CalendarSource {
    ConfigMap {
        name: String,
        key: String,
    },
    /// As written in the spec: relative to the windows file.
    Path(String),
}

impl CalendarSpec {
    /// Where the data is when it is not inline; `None` for `ics` (or a spec naming no source or
    /// several, which validation refuses).
    pub fn external_source(&self) -> Option<CalendarSource> {
        match (&self.ics, &self.config_map_ref, &self.path) {
            (None, Some(r), None) => Some(CalendarSource::ConfigMap {
                name: r.name.clone(),
                key: r.key.clone(),
            }),
            (None, None, Some(path)) => Some(CalendarSource::Path(path.clone())),
            _ => None,
        }
    }
}

/// A list given as `freezes:` with every item commented out, which YAML reads as null: no items,
/// as the API server reads it (it drops nulls) and as fluxgate's windows files always have.
fn null_is_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// What a closed window does to Flux's changes.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
pub enum Enforcement {
    /// Deny them.
    #[default]
    Enforce,
    /// Admit them with a warning, and audit what would have been denied.
    Warn,
}

impl Enforcement {
    /// As the audit log writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Enforce => "enforce",
            Enforcement::Warn => "warn",
        }
    }
}

/// The window as fluxgate sees it, written by `fluxgate serve --windows-from-cluster`.
///
/// Every value derives from the window and the instant (and the Flux owners in the cluster), so
/// every replica writes the same content with the same field manager: they never fight, and no
/// leader is needed. Written at each transition and on each change of the object.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowStatus {
    /// Flux may change the window's objects now.
    #[serde(default)]
    pub open: bool,
    /// Closed by a freeze, whatever the schedules say.
    #[serde(default)]
    pub frozen: bool,
    /// The reason of the freeze in force (for a calendar's event, its SUMMARY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze_reason: Option<String>,
    /// The calendar (`spec.calendars[].name`) whose event froze the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze_calendar: Option<String>,
    /// The UID of that event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze_event: Option<String>,
    /// When the current state began (RFC 3339, in the window's time zone); absent when it
    /// began before the search horizon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// When the state changes next (RFC 3339, in the window's time zone); absent when it never
    /// changes within the search horizon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The `metadata.generation` fluxgate has in force, which this status describes. Equal to
    /// `metadata.generation` once fluxgate decides with this version of the window; absent while
    /// fluxgate refuses the cluster's version (condition `Ready` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// How many Flux Kustomizations and HelmReleases wait for this window: their last attempt
    /// was denied because it was closed, and they have not been reconciled since.
    #[serde(default)]
    pub waiting_owners: i64,
    /// `Ready`: "True" once fluxgate has this generation of the window in force, "False"
    /// (reason `Refused`) while it refuses it, with why. `kubectl wait --for=condition=Ready`
    /// and Flux's health checks read it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<WindowCondition>,
}

/// A condition of a window's status, as Kubernetes conventions shape it, without
/// `lastTransitionTime`: every replica must write identical content, and each would stamp its
/// own instant.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowCondition {
    /// `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// "True" or "False".
    pub status: String,
    /// `InForce` or `Refused`.
    pub reason: String,
    /// What fluxgate does with this generation of the window, and for `Refused`, why.
    pub message: String,
    /// The `metadata.generation` the condition is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The type of the condition [`WindowStatus`] carries.
pub const READY: &str = "Ready";

impl WindowStatus {
    /// The status of `window` in `state`.
    pub fn of(
        window: &Window,
        state: &WindowState,
        observed_generation: Option<i64>,
        waiting_owners: i64,
    ) -> Self {
        let instant = |t| crate::naming::local_time(t, window.time_zone());
        let event = state.freeze.as_ref().and_then(|f| f.event.as_ref());
        WindowStatus {
            open: state.open,
            frozen: state.freeze.is_some(),
            freeze_reason: state.freeze.as_ref().and_then(|f| f.reason.clone()),
            freeze_calendar: event.map(|e| e.calendar.clone()),
            freeze_event: event.map(|e| e.uid.clone()),
            since: state.since.map(instant),
            next: state.next.map(instant),
            observed_generation,
            waiting_owners,
            conditions: observed_generation
                .map(|generation| WindowCondition {
                    type_: READY.to_owned(),
                    status: "True".to_owned(),
                    reason: "InForce".to_owned(),
                    message: format!("fluxgate has generation {generation} of the window in force"),
                    observed_generation: Some(generation),
                })
                .into_iter()
                .collect(),
        }
    }

    /// The status of a window whose `generation` in the cluster fluxgate refuses, for `why`:
    /// `self` (the state of the version still in force, if any, or the default) without
    /// `observedGeneration`, and `Ready` "False", so that nothing reads it as current.
    pub fn refused(self, generation: Option<i64>, why: &str) -> Self {
        WindowStatus {
            observed_generation: None,
            conditions: vec![WindowCondition {
                type_: READY.to_owned(),
                status: "False".to_owned(),
                reason: "Refused".to_owned(),
                message: why.to_owned(),
                observed_generation: generation,
            }],
            ..self
        }
    }
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

/// A period during which the window is closed, whatever the schedules say: either `start` and
/// `end` ([start, end)), or `schedule` and `duration` (recurring: from each fire, for that long).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FreezeSpec {
    /// When the freeze begins: RFC 3339 (2026-12-24T00:00:00+01:00), a local time in timeZone
    /// (2026-12-24T00:00:00) or a date, meaning its midnight in timeZone (2026-12-24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) start: Option<String>,
    /// When the freeze ends, after start; the same forms as start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) end: Option<String>,
    /// Cron, in timeZone: a recurring freeze begins at each fire (e.g. "0 15 * * FRI").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) schedule: Option<String>,
    /// How long each recurring freeze lasts, in elapsed time (e.g. 65h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) duration: Option<String>,
    /// Shown in denials and `fluxgate status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// false: a hard freeze, during which bypass annotations and overrides are refused too.
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) allow_bypass: Option<bool>,
}

/// A period during which the window is open whatever the schedules say: [start, end).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideSpec {
    /// When the override begins: RFC 3339 (2026-12-22T18:00:00+01:00), a local time in
    /// timeZone (2026-12-22T18:00:00) or a date, meaning its midnight in timeZone.
    pub(crate) start: String,
    /// When the override ends, after start and at most --max-override later; the same forms.
    pub(crate) end: String,
    /// Why the window is opened (required): shown in admission warnings, Events and the audit
    /// log.
    pub(crate) reason: String,
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
    enforcement: Enforcement,
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
    /// Open during each event of a calendar (`mode: allow`).
    Calendar(Arc<Calendar>),
}

/// A period during which the window is closed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Freeze {
    pub(crate) times: FreezeTimes,
    pub(crate) reason: Option<String>,
    /// False for a hard freeze: bypasses and overrides are refused during it.
    pub(crate) allow_bypass: bool,
}

/// When a freeze is in force.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FreezeTimes {
    /// Once, on `[start, end)`.
    Once {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// From each fire of `schedule` for `duration`: a start/duration schedule, frozen where
    /// that would be open.
    Recurring(Schedule),
    /// During each event of a calendar; the event's SUMMARY is the reason.
    Calendar(Arc<Calendar>),
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
    pub(crate) window: String,
    pub(crate) field: String,
    pub(crate) message: String,
    /// For an inline calendar's error (`field` is its `ics`): the calendar's line (1-based) of
    /// the first problem, which a windows file's error turns into the file's own line.
    pub(crate) ics_line: Option<usize>,
}

// === impl Window ===

impl Window {
    /// Validates an object: the one definition of a valid window. Calendars from a ConfigMap or
    /// a file are checked for their shape only, since their data is not in the object: the
    /// admission check of a window object has only the object. Decisions use windows built by
    /// [`Window::from_document`], which has the data.
    pub fn from_object(object: &ReconciliationWindow) -> Result<Self, WindowError> {
        let name = object.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(WindowError {
                window: name,
                field: "metadata.name".into(),
                message: "a window needs a name".into(),
                ics_line: None,
            });
        }
        Self::from_spec(&name, &object.spec, Externals::Unchecked)
    }

    /// Validates a document with the data of its calendars that are not inline, as the shell
    /// read them: what the window sets that decide are built from.
    pub fn from_document(document: &Document) -> Result<Self, WindowError> {
        let name = document.object.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Self::from_object(&document.object);
        }
        let externals = Externals::Given(document.calendar_data());
        Self::from_spec(&name, &document.object.spec, externals)
    }

    /// Validates a spec under a name: the zone first (the freezes' and overrides' local times
    /// are read in it), then the schedules, freezes and overrides, each in order, so the error
    /// names the first field that is wrong.
    pub(crate) fn from_spec(
        name: &str,
        spec: &WindowSpec,
        externals: Externals<'_>,
    ) -> Result<Self, WindowError> {
        let error = |(field, message): FieldError| WindowError {
            window: name.to_owned(),
            field,
            message,
            ics_line: None,
        };
        let time_zone = time_zone(spec.time_zone.as_deref()).map_err(error)?;
        let mut schedules = schedules(&spec.schedules).map_err(error)?;
        let mut freezes = freezes(time_zone, &spec.freezes).map_err(error)?;
        for (i, calendar) in spec.calendars.iter().enumerate() {
            let parsed = calendar_part(time_zone, i, calendar, &externals).map_err(
                |(field, message, ics_line)| WindowError {
                    ics_line,
                    ..error((field, message))
                },
            )?;
            let Some(parsed) = parsed else {
                continue;
            };
            match calendar.mode.unwrap_or_default() {
                CalendarMode::Freeze => freezes.push(Freeze {
                    times: FreezeTimes::Calendar(parsed),
                    reason: None,
                    allow_bypass: calendar.allow_bypass.unwrap_or(true),
                }),
                CalendarMode::Allow => schedules.push(Schedule::Calendar(parsed)),
            }
        }
        check_calendar_names(&spec.calendars).map_err(error)?;
        Ok(Window {
            name: name.to_owned(),
            description: spec.description.clone(),
            time_zone,
            schedules,
            freezes,
            overrides: overrides(time_zone, &spec.overrides).map_err(error)?,
            enforcement: spec.enforcement.unwrap_or_default(),
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

    pub(crate) fn overrides(&self) -> &[Override] {
        &self.overrides
    }

    pub fn enforcement(&self) -> Enforcement {
        self.enforcement
    }

    /// What is valid but probably not meant, as (field, message): crons restricting both day
    /// fields, which match a day when *either* does.
    pub fn warnings(&self) -> Vec<(String, String)> {
        let mut crons: Vec<(String, &Cron)> = Vec::new();
        for (i, schedule) in self.schedules.iter().enumerate() {
            match schedule {
                Schedule::OpenClose { open, close } => {
                    crons.push((format!("spec.schedules[{i}].open"), open));
                    crons.push((format!("spec.schedules[{i}].close"), close));
                }
                Schedule::StartDuration { start, .. } => {
                    crons.push((format!("spec.schedules[{i}].start"), start));
                }
                Schedule::Calendar(_) => {}
            }
        }
        for (i, freeze) in self.freezes.iter().enumerate() {
            if let FreezeTimes::Recurring(Schedule::StartDuration { start, .. }) = &freeze.times {
                crons.push((format!("spec.freezes[{i}].schedule"), start));
            }
        }
        crons
            .into_iter()
            .filter(|(_, cron)| cron.days_either())
            .map(|(field, cron)| {
                let fields: Vec<&str> = cron.as_str().split_whitespace().collect();
                let (dom, dow) = (fields.get(2).unwrap_or(&""), fields.get(4).unwrap_or(&""));
                let message = format!(
                    "{:?} restricts both day-of-month ({dom}) and day-of-week ({dow}), so it \
                     fires on a day that matches EITHER (as in Kubernetes CronJob), not both; for \
                     \"the first Sunday of the month\" write day-of-month * and day-of-week \
                     SUN#1 (e.g. \"0 2 * * SUN#1\")",
                    cron.as_str()
                );
                (field, message)
            })
            .collect()
    }

    /// Whether the window can never open again after `now` (within the ten-year search
    /// horizon): such a window denies every change for good, which is never what its author
    /// meant. A search that gave up early is not "never". Through the cache: a server checks
    /// this at start and then warms the same state (issue 21: heavy windows were evaluated
    /// twice before it listened).
    pub(crate) fn never_opens(&self, now: DateTime<Utc>) -> bool {
        let state = self.state_at(now);
        !state.open && state.next.is_none() && state.searched_until.is_none()
    }

    /// The state at `now`, computed at most once per state: the result is cached until the
    /// next transition, so deciding a request costs an atomic load, not a cron search.
    pub fn state_at(&self, now: DateTime<Utc>) -> Arc<WindowState> {
        self.cached(now).state.clone()
    }

    /// Until when the state at `now` holds as cached: its next transition, or sooner where
    /// what it names changes (a freeze, an override, an allow calendar's event). Whoever keeps
    /// the states warm wakes then, so no request after such an edge computes one itself.
    pub fn state_holds_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.cached(now).until()
    }

    /// The cached state covering `now`, computed and cached first when there is none.
    fn cached(&self, now: DateTime<Utc>) -> Arc<state::Cached> {
        if let Some(cached) = self.cache.load_full()
            && cached.covers(now)
        {
            return cached;
        }
        let cached = Arc::new(state::Cached::compute(self, now));
        self.cache.store(Some(cached.clone()));
        cached
    }
}

// === validating a spec ===

/// Why a field of a spec is invalid: (field path, message); [`Window::from_spec`] adds the
/// window's name.
type FieldError = (String, String);

/// `spec.timeZone`: an IANA name, UTC when absent.
fn time_zone(text: Option<&str>) -> Result<Tz, FieldError> {
    let Some(text) = text else { return Ok(Tz::UTC) };
    text.parse::<Tz>()
        .map_err(|_| ("spec.timeZone".into(), not_a_time_zone(text)))
}

/// Why `text` is no time zone: the one message of `spec.timeZone` and `status --tz`.
pub(crate) fn not_a_time_zone(text: &str) -> String {
    format!("{text:?} is not an IANA time zone name (e.g. Europe/Berlin, UTC)")
}

/// A cron field; the error quotes the text, as the cron's own message does not.
fn cron(field: String, text: &str) -> Result<Cron, FieldError> {
    Cron::parse(text).map_err(|e| (field, format!("{text:?}: {e}")))
}

/// `spec.schedules`: at least one, since a window without one never opens.
fn schedules(specs: &[ScheduleSpec]) -> Result<Vec<Schedule>, FieldError> {
    if specs.is_empty() {
        return Err((
            "spec.schedules".into(),
            "at least one schedule is required (open/close or start/duration)".into(),
        ));
    }
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| schedule(&format!("spec.schedules[{i}]"), s))
        .collect()
}

/// One schedule: open with close, or start with duration. A half or a mix gets a message
/// that says which field to add, since that is the common slip.
fn schedule(at: &str, s: &ScheduleSpec) -> Result<Schedule, FieldError> {
    let field = |name: &str| format!("{at}{name}");
    let fail = |name: &str, message: &str| Err((field(name), message.to_owned()));
    match (&s.open, &s.close, &s.start, &s.duration) {
        (Some(open), Some(close), None, None) => {
            let (open, close) = (cron(field(".open"), open)?, cron(field(".close"), close)?);
            if open.same_fires(&close) {
                return Err((
                    field(".close"),
                    format!(
                        "{:?} fires exactly when open {:?} does, so the window closes the \
                         instant it opens and is never open: give close another time (e.g. \
                         open \"0 8 * * MON\", close \"0 17 * * FRI\")",
                        close.as_str(),
                        open.as_str()
                    ),
                ));
            }
            Ok(Schedule::OpenClose { open, close })
        }
        (None, None, Some(start), Some(duration)) => Ok(Schedule::StartDuration {
            start: cron(field(".start"), start)?,
            duration: run_length(duration).map_err(|message| (field(".duration"), message))?,
        }),
        (None, Some(_), None, None) => fail(
            ".close",
            "close without open: add open (the cron the window opens at)",
        ),
        (Some(_), None, None, None) => fail(
            ".open",
            "open without close: add close (the cron the window closes at), or use start with \
             duration",
        ),
        (None, None, Some(_), None) => fail(
            ".start",
            "start without duration: add duration (how long, e.g. 2h)",
        ),
        (None, None, None, Some(_)) => fail(
            ".duration",
            "duration without start: add start (the cron it opens at)",
        ),
        (None, None, None, None) => fail(
            "",
            "empty schedule: give open and close, or start and duration",
        ),
        _ => fail(
            "",
            "open goes with close, start with duration: give either open and close (open: \
             \"0 8 * * MON\", close: \"0 17 * * FRI\") or start and duration (start: \
             \"0 22 * * *\", duration: 2h), not a mix",
        ),
    }
}

/// `spec.freezes`: each a one-off period (start/end, read in `tz`) or a recurring one
/// (schedule/duration); bypasses pass unless `allowBypass: false`.
fn freezes(tz: Tz, specs: &[FreezeSpec]) -> Result<Vec<Freeze>, FieldError> {
    let freeze = |(i, f): (usize, &FreezeSpec)| {
        let at = format!("spec.freezes[{i}]");
        let times = match (&f.start, &f.end, &f.schedule, &f.duration) {
            (Some(start), Some(end), None, None) => {
                let (start, end) = span(tz, &at, start, end)?;
                FreezeTimes::Once { start, end }
            }
            (None, None, Some(schedule), Some(duration)) => {
                FreezeTimes::Recurring(Schedule::StartDuration {
                    start: cron(format!("{at}.schedule"), schedule)?,
                    duration: run_length(duration)
                        .map_err(|message| (format!("{at}.duration"), message))?,
                })
            }
            _ => {
                return Err((
                    at,
                    "give either start and end (a one-off freeze), or schedule and duration \
                     (a recurring one, e.g. schedule: \"0 15 * * FRI\", duration: 65h)"
                        .into(),
                ));
            }
        };
        Ok(Freeze {
            times,
            reason: f.reason.clone(),
            allow_bypass: f.allow_bypass.unwrap_or(true),
        })
    };
    specs.iter().enumerate().map(freeze).collect()
}

/// The largest calendar read, in bytes: a ConfigMap holds at most 1 MiB, and a 20-year holiday
/// calendar is about 50 KiB. Past it, parsing and expanding would take memory and time in
/// proportion, on every load.
pub const MAX_CALENDAR_BYTES: usize = 1024 * 1024;

/// What the shell read of calendars that are not inline: by index in `spec.calendars`, the
/// data or why there is none.
pub type CalendarData = std::collections::BTreeMap<usize, Result<Arc<[u8]>, String>>;

/// The data of a spec's calendars that are not inline.
pub(crate) enum Externals<'a> {
    /// Not at hand (an object in an admission request): such calendars are checked for their
    /// shape only and are not part of the window built.
    Unchecked,
    /// As read by the shell; a calendar missing from it is an error.
    Given(&'a CalendarData),
}

/// `spec.calendars[i]`: exactly one source, then the calendar parsed and expanded in the
/// window's zone. `None` when its data is not at hand ([`Externals::Unchecked`]). An error
/// in an inline calendar carries the calendar's line of its first problem.
fn calendar_part(
    tz: Tz,
    i: usize,
    spec: &CalendarSpec,
    externals: &Externals<'_>,
) -> Result<Option<Arc<Calendar>>, (String, String, Option<usize>)> {
    calendar_source(i, spec, externals)
        .map_err(|(field, message)| (field, message, None))?
        .map(|(field, bytes)| {
            let calendar = Calendar::parse(&spec.name, &bytes, tz).map_err(|errors| {
                let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
                let line = spec.ics.as_ref().and(errors.first()).map(|e| e.line);
                (field, texts.join("; "), line)
            })?;
            Ok(Arc::new(calendar))
        })
        .transpose()
}

/// A calendar's data, and the field it is in (`spec.calendars[0].ics`).
type CalendarBytes = (String, Arc<[u8]>);

/// `spec.calendars[i]`'s data, checked for one source and its size; `None` when it is not at
/// hand.
fn calendar_source(
    i: usize,
    spec: &CalendarSpec,
    externals: &Externals<'_>,
) -> Result<Option<CalendarBytes>, FieldError> {
    let at = format!("spec.calendars[{i}]");
    if spec.name.trim().is_empty() {
        return Err((
            format!("{at}.name"),
            "a calendar needs a name (denials and status show it, e.g. holidays.ics)".into(),
        ));
    }
    if spec.mode == Some(CalendarMode::Allow) && spec.allow_bypass.is_some() {
        return Err((
            format!("{at}.allowBypass"),
            "allowBypass is for calendars of freezes; a calendar with mode: allow opens the \
             window"
                .into(),
        ));
    }
    let sources = [
        spec.ics.is_some(),
        spec.config_map_ref.is_some(),
        spec.path.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err((
            at,
            "give exactly one source: ics (the calendar inline), configMapRef (name and key of \
             a ConfigMap in fluxgate's namespace) or path (a file beside the windows file)"
                .into(),
        ));
    }
    let (field, bytes): (String, Arc<[u8]>) = match (&spec.ics, externals) {
        (Some(ics), _) => (format!("{at}.ics"), Arc::from(ics.as_bytes())),
        (None, Externals::Unchecked) => return Ok(None),
        (None, Externals::Given(data)) => {
            let field = if spec.path.is_some() {
                format!("{at}.path")
            } else {
                format!("{at}.configMapRef")
            };
            match data.get(&i) {
                Some(Ok(bytes)) => (field, bytes.clone()),
                Some(Err(message)) => return Err((field, message.clone())),
                None => return Err((field, "the calendar was not read".into())),
            }
        }
    };
    if bytes.len() > MAX_CALENDAR_BYTES {
        return Err((
            field,
            format!(
                "calendar {:?} is {} bytes, more than the {MAX_CALENDAR_BYTES} (1 MiB) a \
                 calendar may have: keep the years that matter, or split it into several \
                 calendars",
                spec.name,
                bytes.len()
            ),
        ));
    }
    Ok(Some((field, bytes)))
}

/// Calendar names are what denials and status show: each may appear once.
fn check_calendar_names(specs: &[CalendarSpec]) -> Result<(), FieldError> {
    for (i, spec) in specs.iter().enumerate() {
        if let Some(first) = specs[..i].iter().position(|s| s.name == spec.name) {
            return Err((
                format!("spec.calendars[{i}].name"),
                format!(
                    "{:?} is the name of spec.calendars[{first}] already: give each calendar \
                     its own name",
                    spec.name
                ),
            ));
        }
    }
    Ok(())
}

/// `spec.overrides`: each a period (read in `tz`) with a reason, which the warnings, Events
/// and audit log show.
fn overrides(tz: Tz, specs: &[OverrideSpec]) -> Result<Vec<Override>, FieldError> {
    let override_ = |(i, o): (usize, &OverrideSpec)| {
        let at = format!("spec.overrides[{i}]");
        let (start, end) = span(tz, &at, &o.start, &o.end)?;
        if o.reason.trim().is_empty() {
            return Err((
                format!("{at}.reason"),
                "say why the window is opened (it is shown in warnings, Events and the audit \
                 log)"
                    .into(),
            ));
        }
        Ok(Override {
            start,
            end,
            reason: o.reason.trim().to_owned(),
        })
    };
    specs.iter().enumerate().map(override_).collect()
}

/// The duration of a start/duration schedule or a recurring freeze.
fn run_length(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text).map_err(|e| e.to_string())?;
    // Longer runs cannot be evaluated: the state walks look ten years ahead, and
    // `9999999999h` panicked past chrono's range (found triaging
    // fuzz/fuzz_targets/windows_yaml.rs inputs).
    let most = Duration::days(crate::cron::SEARCH_HORIZON_DAYS);
    if d > most {
        return Err(format!(
            "{text:?} is longer than the {}h (ten years) fluxgate looks ahead",
            most.num_hours()
        ));
    }
    Ok(d)
}

/// A `[start, end)` period of a freeze or an override (`at` is its field path): both times
/// parsed (see [`parse_time`]), end after start. The error is (field, message).
fn span(
    tz: Tz,
    at: &str,
    start: &str,
    end: &str,
) -> Result<(DateTime<Utc>, DateTime<Utc>), FieldError> {
    let from = parse_time(tz, start).map_err(|m| (format!("{at}.start"), m))?;
    let until = parse_time(tz, end).map_err(|m| (format!("{at}.end"), m))?;
    if until <= from {
        return Err((
            format!("{at}.end"),
            format!("{end:?} is not after start {start:?}"),
        ));
    }
    Ok((from, until))
}

/// A time as people write it in a freeze or an override: RFC 3339 with an offset, a local time
/// without one (read in the window's zone), or a date (its midnight in the zone). Local times
/// follow the cron's DST rules: one skipped by a gap means the first instant after the gap, one
/// that occurs twice its first occurrence; so `2026-03-29T02:30:00` in Berlin is 03:00 CEST.
pub(crate) fn parse_time(tz: Tz, text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_time(NaiveTime::MIN))
        })
        .map_err(|_| {
            format!(
                "{text:?} is not a time: write RFC 3339 (2026-12-24T00:00:00+01:00), a local \
                 time in timeZone (2026-12-24T00:00:00) or a date for its midnight (2026-12-24)"
            )
        })?;
    // Gaps begin and end on whole minutes: from the minute, the cron's rule finds the gap's end
    // exactly (seconds past it would otherwise carry over).
    let local = match tz.from_local_datetime(&local) {
        LocalResult::None => local.with_second(0).unwrap_or(local),
        _ => local,
    };
    crate::cron::resolve(tz, local).ok_or_else(|| {
        format!(
            "{text:?} does not exist in {} (a gap of more than two days)",
            tz.name()
        )
    })
}

// === impl Override ===

impl Override {
    /// An override covers `[start, end)`.
    pub(crate) fn covers(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    pub(crate) fn length(&self) -> Duration {
        self.end - self.start
    }
}

#[cfg(test)]
pub(crate) mod tests;
