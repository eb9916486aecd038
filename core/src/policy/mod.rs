//! The admission decision: why a change was admitted or denied, in one place.
//!
//! [`decide`] takes one AdmissionRequest, the windows, the [`Policy`] and the instant, and
//! returns a [`Decision`]; [`response`] turns it into the AdmissionReview the API server reads.
//! Nothing here does I/O or reads a clock, so the HTTP server, `fluxgate review` and the tests
//! all get the same answer for the same input.

mod bypass;
mod decide;
mod noop;
mod response;

pub use bypass::Bypass;
pub(crate) use decide::Subject;
pub use decide::{decide, field_manager, window_problem};
pub(crate) use noop::unchanged;
pub use response::{ResponseReview, response};

use crate::window::{Enforcement, Override, WindowState};
use chrono::Duration;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `fluxgate.io/mode`: `rw` (governed by a window) or `rt` (real time, the default).
pub const MODE_LABEL: &str = "fluxgate.io/mode";
/// `fluxgate.io/window`: which window governs an rw object.
pub const WINDOW_LABEL: &str = "fluxgate.io/window";
/// `fluxgate.io/bypass-reason`: why an emergency change cannot wait.
pub const BYPASS_REASON_ANNOTATION: &str = "fluxgate.io/bypass-reason";
/// `fluxgate.io/bypass-until`: RFC 3339 expiry of the bypass.
pub const BYPASS_UNTIL_ANNOTATION: &str = "fluxgate.io/bypass-until";

/// What `fluxgate.io/mode` makes of an object: the one reading of the label, shared by the
/// webhook and `fluxgate lint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Absent or `rt`: real time, always admitted.
    Rt,
    /// `rw`: governed by a window.
    Rw,
    /// Anything else (`RW`, `""`, `read-write`): denied, so that a typo cannot turn enforcement
    /// off.
    Invalid,
}

impl Mode {
    /// The mode of a label value (`None`: no label).
    pub(crate) fn of(value: Option<&str>) -> Mode {
        match value {
            None | Some("rt") => Mode::Rt,
            Some("rw") => Mode::Rw,
            Some(_) => Mode::Invalid,
        }
    }
}

/// What the decision needs to know beyond the windows; built once from flags.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// User names that are Flux.
    pub flux_users: Vec<String>,
    /// Groups whose members are Flux (multi-tenant impersonation).
    pub flux_groups: Vec<String>,
    /// `options.fieldManager` values that are Flux.
    pub flux_field_managers: Vec<String>,
    /// The window of rw objects without `fluxgate.io/window`.
    pub default_window: String,
    /// How far ahead `fluxgate.io/bypass-until` may be.
    pub max_bypass: Duration,
    /// How long one `spec.overrides` entry may be; a longer one does not open its window.
    pub max_override: Duration,
    /// Whether a DELETE by a service account of the namespace that a Flux owner label names
    /// (a tenant's Kustomization or HelmRelease pruning as its `serviceAccountName`) is Flux.
    pub tenant_prunes: bool,
}

impl Policy {
    pub(crate) const DEFAULT_FLUX_USERS: [&'static str; 2] = [
        "system:serviceaccount:flux-system:kustomize-controller",
        "system:serviceaccount:flux-system:helm-controller",
    ];
    pub(crate) const DEFAULT_FLUX_FIELD_MANAGERS: [&'static str; 2] =
        ["kustomize-controller", "helm-controller"];
    pub const DEFAULT_WINDOW: &'static str = "default";
    pub(crate) const DEFAULT_MAX_BYPASS_HOURS: i64 = 24;
    pub(crate) const DEFAULT_MAX_OVERRIDE_HOURS: i64 = 24;
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            flux_users: Self::DEFAULT_FLUX_USERS.map(String::from).to_vec(),
            flux_groups: Vec::new(),
            flux_field_managers: Self::DEFAULT_FLUX_FIELD_MANAGERS.map(String::from).to_vec(),
            default_window: Self::DEFAULT_WINDOW.to_owned(),
            max_bypass: Duration::hours(Self::DEFAULT_MAX_BYPASS_HOURS),
            max_override: Duration::hours(Self::DEFAULT_MAX_OVERRIDE_HOURS),
            tenant_prunes: true,
        }
    }
}

/// The machine-readable reason of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    NotFlux,
    NotGoverned,
    NoOp,
    WindowOpen,
    Bypass,
    WindowClosed,
    Frozen,
    UnknownWindow,
    InvalidBypass,
    InvalidRequest,
    ValidWindow,
    InvalidWindow,
    Override,
}

impl Reason {
    pub const ALL: [Reason; 13] = [
        Reason::NotFlux,
        Reason::NotGoverned,
        Reason::NoOp,
        Reason::WindowOpen,
        Reason::Bypass,
        Reason::WindowClosed,
        Reason::Frozen,
        Reason::UnknownWindow,
        Reason::InvalidBypass,
        Reason::InvalidRequest,
        Reason::ValidWindow,
        Reason::InvalidWindow,
        Reason::Override,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotFlux => "not-flux",
            Reason::NotGoverned => "not-governed",
            Reason::NoOp => "no-op",
            Reason::WindowOpen => "window-open",
            Reason::Bypass => "bypass",
            Reason::WindowClosed => "window-closed",
            Reason::Frozen => "frozen",
            Reason::UnknownWindow => "unknown-window",
            Reason::InvalidBypass => "invalid-bypass",
            Reason::InvalidRequest => "invalid-request",
            Reason::ValidWindow => "valid-window",
            Reason::InvalidWindow => "invalid-window",
            Reason::Override => "override",
        }
    }
}

impl Reason {
    /// Whether a decision with this reason admits the change: the metrics create their series
    /// at 0 with the decision each reason comes with.
    pub fn allows(self) -> bool {
        match self {
            Reason::NotFlux
            | Reason::NotGoverned
            | Reason::NoOp
            | Reason::WindowOpen
            | Reason::Bypass
            | Reason::ValidWindow
            | Reason::Override => true,
            Reason::WindowClosed
            | Reason::Frozen
            | Reason::UnknownWindow
            | Reason::InvalidBypass
            | Reason::InvalidRequest
            | Reason::InvalidWindow => false,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A window involved in a decision, with its state then (`None` when no such window exists).
#[derive(Clone, Debug, PartialEq)]
pub struct WindowVerdict {
    pub name: String,
    pub known: Option<KnownWindow>,
}

/// A window that exists, and its state at the decision's instant.
#[derive(Clone, Debug, PartialEq)]
pub struct KnownWindow {
    pub(crate) time_zone: Tz,
    pub state: Arc<WindowState>,
    /// An override that would have opened the window but is longer than `--max-override`:
    /// `state` is then the state without overrides.
    pub(crate) ignored_override: Option<Override>,
    pub(crate) enforcement: Enforcement,
}

impl KnownWindow {
    /// An override that would have opened the window but was refused as longer than
    /// `--max-override`: notices report it as an error, not as a plain wait.
    pub fn ignored_override(&self) -> Option<&Override> {
        self.ignored_override.as_ref()
    }
}

/// The decision on one AdmissionRequest.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    /// For people: the denial message the API server relays, or why it was admitted.
    pub message: String,
    /// What the request was about.
    pub subject: Subject,
    /// Every window involved, in name order.
    pub windows: Vec<WindowVerdict>,
    /// The bypass annotations, when they were consulted (valid or not).
    pub bypass: Option<Bypass>,
    /// Warnings for the client (`kubectl` and Flux print them).
    pub warnings: Vec<String>,
    /// `Warn` when the change was admitted only because every closed window involved is in
    /// Warn mode: `reason` is then the reason it would have been denied with.
    pub(crate) enforcement: Enforcement,
}

#[cfg(test)]
mod tests;
