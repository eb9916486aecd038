//! `fluxgate plan`: when each change of a pull request will land, before the merge.
//!
//! The base and the head are rendered manifests, one input per Flux owner. Objects are matched
//! by API group, kind, namespace and name: only in the head is a create, only in the base a
//! delete (Flux's prune), in both but different (by the webhook's own no-op comparison) an
//! update. Each change is put to [`decide`] as the AdmissionRequest Flux would send, at `now`
//! and, while its windows are closed, again at each instant one of them opens, until every
//! governing window is open: so the plan can never say other than what the webhook will.
//!
//! Pure: the inputs are text, the windows a [`WindowSet`], the instant an argument. Rendering
//! for people is [`render`].

pub mod render;
#[cfg(test)]
mod tests;

use crate::lint::{Manifest, ManifestError, fix_for, mixed_owner, parse_manifests};
use crate::object::Object;
use crate::policy::{Decision, Policy, Reason, decide};
use crate::window::{ActiveFreeze, Enforcement, WindowSet};
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use kube::core::admission::{AdmissionRequest, Operation};
use kube::core::{GroupVersionKind, GroupVersionResource};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How many openings the search for a landing instant visits: each hop moves to where the last
/// of the closed windows opens, so hops beyond a handful mean windows that keep closing each
/// other (one open only while another is frozen); past this the change is `never`, saying the
/// search stopped.
const MAX_HOPS: usize = 64;

/// One input: the rendered manifests of one Flux owner.
#[derive(Clone, Debug)]
pub struct Input {
    /// The owner of its objects that carry no Flux owner labels (what `kustomize build` renders):
    /// the input's file name without extension (`apps-rw.yaml` → `apps-rw`).
    pub owner: String,
    objects: Vec<Parsed>,
}

/// An object of an input: as lint reads it, and as the webhook would receive it.
#[derive(Clone, Debug)]
struct Parsed {
    manifest: Manifest,
    object: Object,
}

/// What keeps a plan from being made: input that is not Kubernetes objects, or one object
/// given twice.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{at}: {object} is not a Kubernetes object the webhook can read: {message}")]
    Object {
        at: String,
        object: String,
        message: String,
    },
    #[error(
        "{object} is in the {side} twice, at {first} and at {second}: Flux would apply it from \
         two places; keep one"
    )]
    Duplicate {
        side: &'static str,
        object: String,
        first: String,
        second: String,
    },
}

/// Create, update or delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }
}

/// When a change lands.
#[derive(Clone, Debug, PartialEq)]
pub enum Landing {
    /// Real-time, not governed, or every governing window open.
    Now,
    /// Admitted now only because the closed windows are in Warn mode.
    NowWarn,
    /// Admitted now by a valid emergency bypass, which expires then.
    Bypass { until: DateTime<Utc> },
    /// When every governing window is open: `zone` is that of the window opening last.
    At {
        at: DateTime<Utc>,
        zone: Tz,
        /// The windows closed now that it waits for.
        waits_for: Vec<String>,
        /// The freezes it waits through, window by window: a calendar's event, a
        /// stop-the-line freeze, a window's own freeze.
        frozen_by: Vec<Frozen>,
    },
    /// Never without a change to Git: an unknown window, an invalid bypass or label, an invalid
    /// window object, or no opening within the search horizon.
    Never,
}

impl Landing {
    /// How late, for the owner's landing (the latest of its objects').
    fn rank(&self) -> (u8, Option<DateTime<Utc>>) {
        match self {
            Landing::Now => (0, None),
            Landing::NowWarn => (1, None),
            Landing::Bypass { .. } => (2, None),
            Landing::At { at, .. } => (3, Some(*at)),
            Landing::Never => (4, None),
        }
    }

    /// `now`, `now (warn)`, `bypass until …`, `at …` (RFC 3339 in the window's zone), `never`.
    pub fn text(&self) -> String {
        match self {
            Landing::Now => "now".into(),
            Landing::NowWarn => "now (warn)".into(),
            Landing::Bypass { until } => {
                format!(
                    "bypass until {}",
                    until.to_rfc3339_opts(SecondsFormat::Secs, true)
                )
            }
            Landing::At { at, zone, .. } => format!("at {}", crate::naming::local_time(*at, *zone)),
            Landing::Never => "never".into(),
        }
    }

    pub fn waits(&self) -> bool {
        matches!(self, Landing::At { .. } | Landing::Never)
    }
}

/// A freeze a change that waits waits through: in force now, or where the window would
/// otherwise open before the change lands.
#[derive(Clone, Debug, PartialEq)]
pub struct Frozen {
    pub window: String,
    /// The window's time zone, to say the freeze's instants in.
    pub zone: Tz,
    pub freeze: ActiveFreeze,
}

/// One change and when it lands.
#[derive(Clone, Debug)]
pub struct Change {
    /// `Deployment nginx/nginx`.
    pub object: String,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub change: ChangeKind,
    /// `fluxgate.io/mode` of the new object (the old one for a delete), `rt` when absent.
    pub mode: String,
    /// The windows that govern it: of the old and the new labels, as the webhook decides.
    pub windows: Vec<String>,
    pub landing: Landing,
    /// The webhook's reason now.
    pub reason: Reason,
    /// The webhook's message now: why it is admitted or denied.
    pub message: String,
    /// For a change that never lands: what to change.
    pub fix: Option<String>,
    /// `file:line` of the object in the head (the base for a delete).
    pub at: String,
}

/// The changes one Flux owner applies, and when they land.
#[derive(Clone, Debug)]
pub struct Owner {
    /// `Kustomization flux-system/apps-rw` from Flux's labels, else the input's name.
    pub name: String,
    /// lint's mixed-owner message when the owner applies rw and rt objects together (in the
    /// head): one waiting rw object holds its rt objects back too.
    pub mixed: Option<String>,
    /// The latest landing of its changes: Flux applies the owner's objects as a whole.
    pub landing: Landing,
    pub changes: Vec<Change>,
}

/// The plan of a pull request at an instant.
#[derive(Clone, Debug)]
pub struct Plan {
    pub now: DateTime<Utc>,
    /// Owners in input order (the head's first), each with at least one change.
    pub owners: Vec<Owner>,
    /// Objects in both base and head that do not change.
    pub unchanged: usize,
}

// === parsing ===

/// The objects of one input's text (multi-document YAML, `List`s flattened). `origin` names
/// the file in messages; `owner` is the Flux owner of objects without owner labels.
pub fn parse_input(origin: &str, owner: &str, text: &str) -> Result<Input, PlanError> {
    let objects = parse_manifests(origin, text)?
        .into_iter()
        .map(|manifest| {
            let object = to_object(&manifest).map_err(|message| PlanError::Object {
                at: manifest.at(),
                object: manifest.display(),
                message,
            })?;
            Ok(Parsed { manifest, object })
        })
        .collect::<Result<_, PlanError>>()?;
    Ok(Input {
        owner: owner.to_owned(),
        objects,
    })
}

/// The object as the API server would put it in a review: JSON, read by the webhook's reader
/// (which keeps every field but `metadata` as raw JSON text, so it reads text, not a value).
fn to_object(m: &Manifest) -> Result<Object, String> {
    serde_json::from_str(&m.value.to_string()).map_err(|e| e.to_string())
}

impl Input {
    /// How many objects it holds.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

// === planning ===

/// What matches an object in the base with one in the head.
type Key = (String, String, Option<String>, String);

fn key(m: &Manifest) -> Key {
    (
        m.group().to_owned(),
        m.kind.clone(),
        m.namespace.clone(),
        m.name.clone(),
    )
}

/// An object and the input it is in.
struct Placed<'a> {
    input: usize,
    parsed: &'a Parsed,
}

fn index<'a>(
    side: &'static str,
    inputs: &'a [Input],
) -> Result<BTreeMap<Key, Placed<'a>>, PlanError> {
    let mut map: BTreeMap<Key, Placed<'a>> = BTreeMap::new();
    for (input, i) in inputs.iter().enumerate() {
        for parsed in &i.objects {
            let k = key(&parsed.manifest);
            if let Some(first) = map.get(&k) {
                return Err(PlanError::Duplicate {
                    side,
                    object: parsed.manifest.display(),
                    first: first.parsed.manifest.at(),
                    second: parsed.manifest.at(),
                });
            }
            map.insert(k, Placed { input, parsed });
        }
    }
    Ok(map)
}

/// The plan of going from `base` to `head` at `now`, with `windows` (the head's, and those
/// given) and the webhook's `policy`.
pub fn plan(
    base: &[Input],
    head: &[Input],
    windows: &WindowSet,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Plan, PlanError> {
    let old = index("base", base)?;
    let new = index("head", head)?;
    let known: BTreeSet<String> = windows.names().map(str::to_owned).collect();
    let mut searches: HashMap<BTreeSet<String>, Search> = HashMap::new();
    // Owners by name, in order of first appearance: the head's inputs, then the base's.
    let mut owners: Vec<(String, Vec<&Manifest>, Vec<Change>)> = Vec::new();
    let owner_index =
        |name: String, owners: &mut Vec<(String, Vec<&Manifest>, Vec<Change>)>| match owners
            .iter()
            .position(|(n, _, _)| *n == name)
        {
            Some(i) => i,
            None => {
                owners.push((name, Vec::new(), Vec::new()));
                owners.len() - 1
            }
        };
    let owner_of = |m: &Manifest, inputs: &[Input], input: usize| {
        m.owner().unwrap_or_else(|| inputs[input].owner.clone())
    };
    // The head's objects, in input order, make the owners (for mixed-owner) and the creates
    // and updates.
    let mut unchanged = 0;
    let mut pending: Vec<(usize, AdmissionRequest<Object>, ChangeKind, &Manifest)> = Vec::new();
    for (input_i, input) in head.iter().enumerate() {
        for p in &input.objects {
            let m = &p.manifest;
            let i = owner_index(owner_of(m, head, input_i), &mut owners);
            owners[i].1.push(m);
            let before = old.get(&key(m));
            let (kind, old_object) = match before {
                None => (ChangeKind::Create, None),
                Some(b) if crate::policy::unchanged(&b.parsed.object, &p.object) => {
                    unchanged += 1;
                    continue;
                }
                Some(b) => (ChangeKind::Update, Some(b.parsed.object.clone())),
            };
            let request = request(m, kind, old_object, Some(p.object.clone()), policy);
            pending.push((i, request, kind, m));
        }
    }
    for (k, b) in &old {
        if new.contains_key(k) {
            continue;
        }
        let m = &b.parsed.manifest;
        let i = owner_index(owner_of(m, base, b.input), &mut owners);
        let request = request(
            m,
            ChangeKind::Delete,
            Some(b.parsed.object.clone()),
            None,
            policy,
        );
        pending.push((i, request, ChangeKind::Delete, m));
    }
    // Every decision at `now` first: the windows' cached states serve them all before any
    // search moves them to a later instant.
    let decided: Vec<Decision> = pending
        .iter()
        .map(|(_, request, _, _)| decide(request, windows, policy, now))
        .collect();
    for ((owner, request, kind, m), decision) in pending.into_iter().zip(decided) {
        let change = change(
            &request,
            kind,
            m,
            decision,
            windows,
            policy,
            now,
            &known,
            &mut searches,
        );
        owners[owner].2.push(change);
    }
    let owners = owners
        .into_iter()
        .filter(|(_, _, changes)| !changes.is_empty())
        .map(|(name, objects, changes)| {
            let landing = changes
                .iter()
                .map(|c| &c.landing)
                .max_by_key(|l| l.rank())
                .cloned()
                .unwrap_or(Landing::Now);
            Owner {
                mixed: mixed_owner(name.clone(), &objects).map(|f| f.message),
                name,
                landing,
                changes,
            }
        })
        .collect();
    Ok(Plan {
        now,
        owners,
        unchanged,
    })
}

/// The AdmissionRequest Flux's kustomize-controller sends for the change: a server-side apply
/// (CREATE or UPDATE with its field manager) or a prune (DELETE as its service account).
fn request(
    m: &Manifest,
    kind: ChangeKind,
    old_object: Option<Object>,
    object: Option<Object>,
    policy: &Policy,
) -> AdmissionRequest<Object> {
    let (group, version) = match m.api_version.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), m.api_version.clone()),
    };
    let operation = match kind {
        ChangeKind::Create => Operation::Create,
        ChangeKind::Update => Operation::Update,
        ChangeKind::Delete => Operation::Delete,
    };
    let options = (kind != ChangeKind::Delete)
        .then(|| policy.flux_field_managers.first())
        .flatten()
        .map(|manager| {
            k8s_openapi::apimachinery::pkg::runtime::RawExtension(
                serde_json::json!({ "fieldManager": manager }),
            )
        });
    AdmissionRequest {
        types: Default::default(),
        uid: String::new(),
        kind: GroupVersionKind::gvk(&group, &version, &m.kind),
        // The webhook never reads the resource; the kind stands in for its plural.
        resource: GroupVersionResource::gvr(&group, &version, &m.kind.to_lowercase()),
        sub_resource: None,
        request_kind: None,
        request_resource: None,
        request_sub_resource: None,
        name: m.name.clone(),
        namespace: m.namespace.clone(),
        operation,
        user_info: k8s_openapi::api::authentication::v1::UserInfo {
            username: policy.flux_users.first().cloned(),
            ..Default::default()
        },
        object,
        old_object,
        dry_run: false,
        options,
    }
}

/// One change: the decision now, and when it lands.
#[allow(clippy::too_many_arguments)]
fn change(
    request: &AdmissionRequest<Object>,
    kind: ChangeKind,
    m: &Manifest,
    decision: Decision,
    windows: &WindowSet,
    policy: &Policy,
    now: DateTime<Utc>,
    known: &BTreeSet<String>,
    searches: &mut HashMap<BTreeSet<String>, Search>,
) -> Change {
    let names: Vec<String> = decision.windows.iter().map(|w| w.name.clone()).collect();
    let never = |reason: Reason| fix_for(reason, m, known, policy, now);
    let (landing, fix, message) = match decision.reason {
        _ if decision.allowed && decision.enforcement == Enforcement::Warn => {
            (Landing::NowWarn, None, decision.message.clone())
        }
        Reason::Bypass if decision.allowed => {
            let until = decision
                .bypass
                .as_ref()
                .and_then(|b| b.validate(now, policy.max_bypass).ok());
            match until {
                Some(until) => (Landing::Bypass { until }, None, decision.message.clone()),
                None => (Landing::Now, None, decision.message.clone()),
            }
        }
        _ if decision.allowed => (Landing::Now, None, decision.message.clone()),
        Reason::WindowClosed | Reason::Frozen => {
            // Without bypass annotations, when a change lands depends only on its windows:
            // searched once for each set of names.
            let search = if decision.bypass.is_none() {
                let key: BTreeSet<String> = names.iter().cloned().collect();
                searches
                    .entry(key)
                    .or_insert_with(|| search(request, windows, policy, now))
                    .clone()
            } else {
                search(request, windows, policy, now)
            };
            match search {
                Search::Opens { at, zone } => {
                    let waits_for: Vec<String> = decision
                        .windows
                        .iter()
                        .filter(|w| w.known.as_ref().is_some_and(|k| !k.state.open))
                        .map(|w| w.name.clone())
                        .collect();
                    let frozen_by = waits_for
                        .iter()
                        .filter_map(|name| windows.get(name))
                        .flat_map(|w| {
                            w.freezes_until(now, at).into_iter().map(|freeze| Frozen {
                                window: w.name().to_owned(),
                                zone: w.time_zone(),
                                freeze,
                            })
                        })
                        .collect();
                    (
                        Landing::At {
                            at,
                            zone,
                            waits_for,
                            frozen_by,
                        },
                        None,
                        decision.message.clone(),
                    )
                }
                Search::Never(why) => (
                    Landing::Never,
                    Some(
                        "check the schedules, freezes and overrides of the windows it names \
                         (fluxgate status --week shows them)"
                            .to_owned(),
                    ),
                    format!("{}; {why}", decision.message),
                ),
            }
        }
        reason => (
            Landing::Never,
            never(reason).or_else(|| Some(generic_fix(reason))),
            decision.message.clone(),
        ),
    };
    Change {
        object: m.display(),
        api_version: m.api_version.clone(),
        kind: m.kind.clone(),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        change: kind,
        mode: decision.subject.mode.clone().unwrap_or_else(|| "rt".into()),
        windows: names,
        landing,
        reason: decision.reason,
        message,
        fix,
        at: m.at(),
    }
}

/// What to do when lint has no fix of its own for the reason (a window only the old object
/// names, removed by the change).
fn generic_fix(reason: Reason) -> String {
    match reason {
        Reason::UnknownWindow => "keep the ReconciliationWindow the object's labels name (old \
                                  or new) until this change has landed, or pass it with --windows"
            .into(),
        _ => "correct what the message names".into(),
    }
}

/// When every governing window of a change is open.
#[derive(Clone, Debug)]
enum Search {
    Opens { at: DateTime<Utc>, zone: Tz },
    Never(String),
}

/// Decides `request` at each instant where the last of its closed windows opens, until the
/// webhook admits it: overrides, freezes and `--max-override` count as the webhook counts them.
fn search(
    request: &AdmissionRequest<Object>,
    windows: &WindowSet,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Search {
    let mut t = now;
    let mut zone = Tz::UTC;
    for _ in 0..MAX_HOPS {
        let decision = decide(request, windows, policy, t);
        if decision.allowed {
            return Search::Opens { at: t, zone };
        }
        if !matches!(decision.reason, Reason::WindowClosed | Reason::Frozen) {
            return Search::Never(format!(
                "at {} it would be denied: {}",
                t.to_rfc3339_opts(SecondsFormat::Secs, true),
                decision.reason
            ));
        }
        let mut latest: Option<(DateTime<Utc>, Tz)> = None;
        for verdict in &decision.windows {
            let Some(known) = verdict.known.as_ref().filter(|k| !k.state.open) else {
                continue;
            };
            let Some(next) = known.state.next else {
                return Search::Never(format!(
                    "window {:?} does not open again within the ten years fluxgate looks ahead",
                    verdict.name
                ));
            };
            if latest.is_none_or(|(at, _)| next > at) {
                latest = Some((next, known.time_zone));
            }
        }
        let Some((next, next_zone)) = latest.filter(|(next, _)| *next > t) else {
            return Search::Never("its windows never open together".into());
        };
        t = next;
        zone = next_zone;
    }
    Search::Never(format!(
        "no instant found where every window it names is open ({MAX_HOPS} openings searched)"
    ))
}

// === impl Plan ===

impl Plan {
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.owners.iter().flat_map(|o| o.changes.iter())
    }

    /// Whether any change can never land (`--fail-on blocked`).
    pub fn blocked(&self) -> bool {
        self.changes().any(|c| c.landing == Landing::Never)
    }

    /// Whether any change waits, or never lands (`--fail-on waiting`).
    pub fn waiting(&self) -> bool {
        self.changes().any(|c| c.landing.waits())
    }
}
