//! What Flux's own objects say about fluxgate, and what to ask of them when a window opens.
//!
//! kustomize-controller and helm-controller write a denied change into their object's status:
//! the `Ready` condition (and for a HelmRelease also `Released`/`Remediated`) carries the API
//! server's text, `admission webhook "…" denied the request: <fluxgate's message>`. That text
//! names the windows that were closed, so the cluster itself records which Flux owners wait for
//! which window, across restarts of fluxgate and for every replica alike: nothing here keeps a
//! memory of its own. [`catch_up`] turns an owner and the windows into the one annotation value
//! that asks Flux to try again; it is derived from the opening instant, so every replica computes
//! the same value and Flux reconciles once.
//!
//! Pure: no I/O, no clock (time is passed in).

use crate::window::WindowSet;
use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::DynamicObject;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// Flux's "reconcile now" annotation: a new value makes the controller reconcile at once.
pub(crate) const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
/// HelmRelease only: with the same value as [`REQUESTED_AT`], resets the failure counters, so a
/// release that is `Stalled` (`RetriesExceeded`) tries again (`flux reconcile hr --reset`).
pub(crate) const RESET_AT: &str = "reconcile.fluxcd.io/resetAt";
/// The field manager the `flux` CLI patches these annotations with. kustomize-controller leaves
/// fields of this manager alone when it applies a Kustomization that Flux itself manages, so the
/// annotation is not reverted as drift.
pub const FIELD_MANAGER: &str = "flux-client-side-apply";

/// The Flux objects that apply changes fluxgate may deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OwnerKind {
    Kustomization,
    HelmRelease,
}

impl OwnerKind {
    pub const ALL: [OwnerKind; 2] = [OwnerKind::Kustomization, OwnerKind::HelmRelease];

    pub fn kind(self) -> &'static str {
        match self {
            OwnerKind::Kustomization => "Kustomization",
            OwnerKind::HelmRelease => "HelmRelease",
        }
    }

    pub fn group(self) -> &'static str {
        match self {
            OwnerKind::Kustomization => "kustomize.toolkit.fluxcd.io",
            OwnerKind::HelmRelease => "helm.toolkit.fluxcd.io",
        }
    }

    /// The version Flux serves and stores today (Kustomization v1 since Flux 2.0, HelmRelease
    /// v2 since Flux 2.3).
    pub fn version(self) -> &'static str {
        match self {
            OwnerKind::Kustomization => "v1",
            OwnerKind::HelmRelease => "v2",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            OwnerKind::Kustomization => "kustomizations",
            OwnerKind::HelmRelease => "helmreleases",
        }
    }

    pub fn api_version(self) -> String {
        format!("{}/{}", self.group(), self.version())
    }

    /// The annotations that ask for a reconcile, all with the same value.
    pub fn request_annotations(self) -> &'static [&'static str] {
        match self {
            OwnerKind::Kustomization => &[REQUESTED_AT],
            OwnerKind::HelmRelease => &[REQUESTED_AT, RESET_AT],
        }
    }

    /// The kind of a manifest with this `apiVersion` and `kind`, if it is a Flux owner (any
    /// version of the group counts: Flux still serves older ones).
    pub fn of(api_version: &str, kind: &str) -> Option<Self> {
        let group = crate::naming::api_group(api_version);
        OwnerKind::ALL
            .into_iter()
            .find(|k| k.kind() == kind && k.group() == group)
    }

    /// The labels Flux sets on everything this kind applies: the owner's name and namespace.
    fn owner_labels(self) -> [&'static str; 2] {
        match self {
            OwnerKind::Kustomization => [
                "kustomize.toolkit.fluxcd.io/name",
                "kustomize.toolkit.fluxcd.io/namespace",
            ],
            OwnerKind::HelmRelease => [
                "helm.toolkit.fluxcd.io/name",
                "helm.toolkit.fluxcd.io/namespace",
            ],
        }
    }

    /// The object `namespace/name` of this kind, as an Event refers to it.
    fn reference(self, namespace: Option<String>, name: String) -> ObjectReference {
        ObjectReference {
            api_version: Some(self.api_version()),
            kind: Some(self.kind().to_owned()),
            namespace,
            name: Some(name),
            ..Default::default()
        }
    }
}

impl std::fmt::Display for OwnerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

/// The Flux object that applied a change, from the labels Flux puts on everything it applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FluxOwner {
    pub kind: OwnerKind,
    pub namespace: Option<String>,
    pub name: String,
}

impl FluxOwner {
    /// The owner named by the labels Flux sets on what it applies, if any.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<Self> {
        OwnerKind::ALL.into_iter().find_map(|kind| {
            let [name, namespace] = kind.owner_labels();
            Some(FluxOwner {
                kind,
                name: labels.get(name)?.clone(),
                namespace: labels.get(namespace).filter(|ns| !ns.is_empty()).cloned(),
            })
        })
    }

    /// The owner, as the Event about a change it applied relates it.
    pub fn reference(&self) -> ObjectReference {
        self.kind
            .reference(self.namespace.clone(), self.name.clone())
    }
}

impl std::fmt::Display for FluxOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = crate::naming::object(self.kind.kind(), self.namespace.as_deref(), &self.name);
        f.write_str(&text)
    }
}

/// What fluxgate needs to know of one Kustomization or HelmRelease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub kind: OwnerKind,
    pub namespace: String,
    pub name: String,
    /// `Ready` is `True`: whatever old text other conditions hold, nothing waits.
    pub(crate) ready: bool,
    /// `Ready` is `Unknown`: Flux is reconciling it right now (kustomize-controller marks every
    /// attempt so before it starts, wiping the last denial's text until the attempt ends).
    pub(crate) reconciling: bool,
    /// `spec.suspend`: Flux does not act on it, so neither do we.
    pub(crate) suspended: bool,
    /// The windows a fluxgate denial in its conditions names as closed.
    pub denied_by: BTreeSet<String>,
    /// When Flux recorded that denial: the latest `lastTransitionTime` of the conditions that
    /// carry it.
    pub(crate) denied_at: Option<DateTime<Utc>>,
    /// The current `reconcile.fluxcd.io/requestedAt`.
    pub(crate) requested_at: Option<String>,
    /// `metadata.resourceVersion`: the request is made only against the version it was
    /// decided on, so that of two replicas one asks and the other stands down.
    pub resource_version: Option<String>,
}

#[derive(Deserialize, Default)]
struct Status {
    #[serde(default)]
    conditions: Vec<Condition>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Condition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    last_transition_time: Option<DateTime<Utc>>,
}

impl Owner {
    /// Reads a Kustomization or HelmRelease as the API serves it.
    pub fn from_object(kind: OwnerKind, object: &DynamicObject) -> Self {
        // A status this version of fluxgate cannot read is treated as "nothing known": the
        // owner is never touched, which is what Flux would do without fluxgate.
        let status: Status = object
            .data
            .get("status")
            .and_then(|s| Status::deserialize(s).ok())
            .unwrap_or_default();
        let ready_is = |value: &str| {
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == value)
        };
        let mut denied_by = BTreeSet::new();
        let mut denied_at = None;
        for condition in status.conditions.iter().filter(|c| c.status != "True") {
            let windows = denied_windows(&condition.message);
            if !windows.is_empty() {
                denied_by.extend(windows);
                denied_at = denied_at.max(condition.last_transition_time);
            }
        }
        let suspended = object
            .data
            .get("spec")
            .and_then(|s| s.get("suspend"))
            .and_then(|s| s.as_bool())
            .unwrap_or(false);
        Owner {
            kind,
            namespace: object.metadata.namespace.clone().unwrap_or_default(),
            name: object.metadata.name.clone().unwrap_or_default(),
            ready: ready_is("True"),
            reconciling: ready_is("Unknown"),
            suspended,
            denied_by,
            denied_at,
            resource_version: object.metadata.resource_version.clone(),
            requested_at: object
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REQUESTED_AT))
                .cloned(),
        }
    }

    /// While Flux reconciles, the denial of the attempt before still stands: what waited for a
    /// window still waits until the attempt ends (without this, the count of waiting owners
    /// would dip at every retry of every denied owner).
    pub fn carry_over(&mut self, previous: &Owner) {
        if self.reconciling && self.denied_by.is_empty() {
            self.denied_by = previous.denied_by.clone();
            self.denied_at = previous.denied_at;
        }
    }

    /// The owner, as the Event about a reconcile asked of it refers to it.
    pub fn reference(&self) -> ObjectReference {
        self.kind
            .reference(Some(self.namespace.clone()), self.name.clone())
    }

    /// `Kustomization flux-system/apps-rw`.
    pub fn display(&self) -> String {
        crate::naming::object(self.kind.kind(), Some(&self.namespace), &self.name)
    }

    /// Waiting for `window`: denied by it and not reconciled successfully since.
    pub fn waits_for(&self, window: &str) -> bool {
        !self.ready && !self.suspended && self.denied_by.contains(window)
    }
}

/// The text fluxgate puts before the windows of a denial (see `policy::decide`).
const GOVERNED_BY: [&str; 2] = [
    "is governed by reconciliation windows ",
    "is governed by reconciliation window ",
];
/// What fluxgate writes after the windows of a denial.
const WINDOWS_END: [&str; 3] = [
    "; to ship an emergency change now",
    "; the emergency bypass is invalid",
    "; admitted by emergency bypass",
];

/// A ReconciliationWindow name: a DNS subdomain (lowercase letters, digits, `-`, `.`).
fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// What the API server puts before a webhook's denial message.
const DENIED: &str = "denied the request: ";

/// The windows that fluxgate's denials inside `message` name as closed or frozen.
///
/// Flux quotes the API server's error, and may join several objects' errors into one message;
/// every fluxgate denial in it counts. Window names are Kubernetes object names, so they never
/// hold a quote, and fluxgate writes them quoted: `"business-hours", closed until …` or
/// `"business-hours", frozen (…) and closed until …`.
pub(crate) fn denied_windows(message: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in message.match_indices(DENIED) {
        let denial = &message[at + DENIED.len()..];
        // The denial ends where the next one begins.
        let denial = denial.find(DENIED).map_or(denial, |end| &denial[..end]);
        let Some(windows) = GOVERNED_BY
            .iter()
            .find_map(|marker| denial.find(marker).map(|i| &denial[i + marker.len()..]))
        else {
            continue;
        };
        // `"a", closed until … and "b", frozen (reason) and closed until …; to ship …`. A freeze
        // reason is free text: the windows end where fluxgate's advice begins, and only a
        // quoted Kubernetes name followed by its state counts as a window.
        let end = WINDOWS_END
            .iter()
            .filter_map(|marker| windows.find(marker))
            .min()
            .unwrap_or(windows.len());
        let windows = &windows[..end];
        for state in ["\", closed", "\", frozen"] {
            for (at, _) in windows.match_indices(state) {
                let Some(open) = windows[..at].rfind('"') else {
                    continue;
                };
                let name = &windows[open + 1..at];
                if is_object_name(name) {
                    found.insert(name.to_owned());
                }
            }
        }
    }
    found
}

/// The `requestedAt` value that asks `owner` to try again now, if it should: it waits for
/// windows that are all open at `now`, is not being reconciled already, and has not been asked
/// for this value yet.
///
/// The value is the latest opening instant of those windows, so it is the same in every
/// replica and across restarts: asking twice changes nothing, and Flux reconciles once. An
/// owner that also waits for a closed (or unknown) window is left alone until that one opens.
/// A denial Flux recorded *after* the opening (a replica whose clock or windows lagged, a freeze
/// removed from the spec) asks again, with the instant of that denial: still the cluster's
/// value, the same for every replica, and bounded by Flux's own attempts.
pub fn catch_up(owner: &Owner, windows: &WindowSet, now: DateTime<Utc>) -> Option<String> {
    if owner.ready || owner.reconciling || owner.suspended || owner.denied_by.is_empty() {
        return None;
    }
    let mut opened: Option<DateTime<Utc>> = None;
    for name in &owner.denied_by {
        let state = windows.get(name)?.state_at(now);
        if !state.open {
            return None;
        }
        // An open window with no known opening has been open beyond the search horizon:
        // the denial cannot have been its doing.
        let since = state.since?;
        opened = Some(opened.map_or(since, |t| t.max(since)));
    }
    let at = opened?.max(owner.denied_at.unwrap_or(DateTime::<Utc>::MIN_UTC));
    let value = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    (owner.requested_at.as_deref() != Some(value.as_str())).then_some(value)
}

#[cfg(test)]
mod tests;
