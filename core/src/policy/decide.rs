//! The decision steps of the specification, in order. If you want to know why a change was
//! denied, read [`decide`] top to bottom.

use super::bypass::Bypass;
use super::noop::unchanged;
use super::{
    BYPASS_REASON_ANNOTATION, BYPASS_UNTIL_ANNOTATION, Decision, KnownWindow, MODE_LABEL, Mode,
    Policy, Reason, WINDOW_LABEL, WindowVerdict,
};
use crate::duration::format_duration;
use crate::flux::FluxOwner;
use crate::freeze::{ReconciliationFreeze, StopTheLine};
use crate::naming::local_time;
use crate::object::Object;
use crate::window::{self, Enforcement, ReconciliationWindow, Window, WindowSet};
use chrono::{DateTime, SecondsFormat, Utc};
use kube::core::admission::{AdmissionRequest, Operation};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::Arc;

/// What a request is about, for messages and the audit record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    /// `Deployment nginx/nginx`, `ReconciliationWindow business-hours`.
    pub display: String,
    /// `fluxgate.io/mode` of the new object, else of the old one.
    pub mode: Option<String>,
    /// The Flux Kustomization or HelmRelease that manages the object, as `kind namespace/name`.
    pub owner: Option<FluxOwner>,
}

/// Decides one AdmissionRequest at `now`.
pub fn decide(
    request: &AdmissionRequest<Object>,
    windows: &WindowSet,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Decision {
    let draft = Draft {
        subject: Subject::of(request),
    };

    // 1. ReconciliationWindow objects are validated, whoever sends them.
    if is_window_request(request) {
        return draft.validate_window(request, policy, now);
    }

    // 1b. ReconciliationFreezes too, and never from Flux.
    if is_freeze_request(request) {
        return draft.validate_freeze(request, policy, now);
    }

    // 2. Only Flux is held to windows.
    if !is_flux(request, policy) {
        let user = request.user_info.username.as_deref();
        let message = format!(
            "{} may change {}: not a Flux actor",
            user.unwrap_or("<anonymous>"),
            draft.subject.display
        );
        return draft.allow(Reason::NotFlux, message);
    }

    // 3. The windows of the old and the new object govern.
    let names = match governing_windows(request, policy) {
        Ok(names) => names,
        Err(problem) => {
            let message = format!("{}: {problem}", draft.subject.display);
            return draft.deny(Reason::InvalidRequest, message);
        }
    };
    if names.is_empty() {
        let message = format!(
            "{} is real-time (not labelled {MODE_LABEL}: rw): admitted",
            draft.subject.display
        );
        return draft.allow(Reason::NotGoverned, message);
    }
    let draft = draft.with_names(&names, windows, policy, now);

    // 4. An UPDATE that changes nothing is admitted quietly.
    if is_no_op(request) {
        let message = format!("{} is unchanged: admitted", draft.subject.display);
        return draft.allow(Reason::NoOp, message);
    }

    // 5. A window that does not exist denies: a typo must not disable enforcement.
    if let Some(message) = unknown_windows(&draft, windows) {
        return draft.deny(Reason::UnknownWindow, message);
    }

    // 6. All governing windows open, by their schedules or by an override: admit.
    if draft.windows.iter().all(is_open) {
        return admit_open(draft);
    }

    // 7. A bypass can admit the change, except during a hard freeze. 8. Otherwise deny.
    let decision = decide_closed(draft, bypass_of(request), policy, now);

    // 9. A denial by windows that only warn is admitted, saying what would have happened.
    warn_only(decision)
}

/// Step 3: the names of the windows governing the old and the new object (none: both are
/// real-time), or what makes them unknowable: a missing object, or a bad label.
fn governing_windows(
    request: &AdmissionRequest<Object>,
    policy: &Policy,
) -> Result<BTreeSet<String>, String> {
    let old = request.old_object.as_ref();
    let new = request.object.as_ref();
    let missing = match request.operation {
        Operation::Create | Operation::Update if new.is_none() => Some("object"),
        Operation::Update | Operation::Delete if old.is_none() => Some("oldObject"),
        _ => None,
    };
    if let Some(field) = missing {
        return Err(format!(
            "the {:?} request has no request.{field}, so its windows cannot be known",
            request.operation
        ));
    }
    let mut names = BTreeSet::new();
    for object in [old, new].into_iter().flatten() {
        names.extend(governing_window(object, policy)?);
    }
    Ok(names)
}

/// Step 4: an UPDATE whose new object equals the old one but for bookkeeping (Flux's periodic
/// dry-run of an object already in place).
fn is_no_op(request: &AdmissionRequest<Object>) -> bool {
    match (&request.operation, &request.old_object, &request.object) {
        (Operation::Update, Some(old), Some(new)) => unchanged(old, new),
        _ => false,
    }
}

/// Step 5: the denial message when a governing window does not exist, naming the known ones.
fn unknown_windows(draft: &DraftWithWindows, windows: &WindowSet) -> Option<String> {
    let unknown: Vec<&str> = draft
        .windows
        .iter()
        .filter(|w| w.known.is_none())
        .map(|w| w.name.as_str())
        .collect();
    if unknown.is_empty() {
        return None;
    }
    let known: Vec<&str> = windows.names().collect();
    Some(format!(
        "{} names reconciliation window {} (label {WINDOW_LABEL}, or --default-window), \
         which does not exist; known windows: {}",
        draft.subject.display,
        quote_list(&unknown),
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    ))
}

/// Step 7: the bypass annotations of the object being written (the old one for a DELETE,
/// which has no new one), when it has any.
fn bypass_of(request: &AdmissionRequest<Object>) -> Option<Bypass> {
    let target = if request.operation == Operation::Delete {
        request.old_object.as_ref()
    } else {
        request.object.as_ref()
    };
    Bypass::from_annotations(target?.metadata.annotations.as_ref()?)
}

/// Admits a denial when every closed window involved is in Warn mode: the reason stays the
/// one it would have been denied with, a warning quotes the denial, and `enforcement` says
/// Warn (the audit record's `"enforcement": "warn"`).
fn warn_only(mut decision: Decision) -> Decision {
    let warn = |w: &WindowVerdict| {
        w.known
            .as_ref()
            .is_some_and(|k| k.state.open || k.enforcement == Enforcement::Warn)
    };
    if decision.allowed || decision.windows.is_empty() || !decision.windows.iter().all(warn) {
        return decision;
    }
    decision.allowed = true;
    decision.enforcement = Enforcement::Warn;
    decision
        .warnings
        .push(format!("fluxgate: would be denied: {}", decision.message));
    decision.message = format!(
        "admitted because the closed windows are in Warn mode; would be denied: {}",
        decision.message
    );
    decision
}

/// Steps 7 and 8: some governing window is closed. A valid bypass admits, an invalid one
/// denies saying what is wrong, none denies with the bypass hint; during a hard freeze no
/// bypass admits and the denial says so.
fn decide_closed(
    draft: DraftWithWindows,
    bypass: Option<Bypass>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Decision {
    // The message grows from here in place: one allocation on every denial.
    let mut message = String::with_capacity(512);
    let _ = write!(
        message,
        "{} is governed by {}",
        draft.subject.display,
        WindowsText(&draft.windows)
    );
    let freezes = || {
        draft
            .windows
            .iter()
            .filter_map(|w| Some((&w.name, w.known.as_ref()?.state.freeze.as_ref()?)))
    };
    let frozen = freezes().next().is_some();
    if let Some((name, _)) = freezes().find(|(_, f)| !f.allow_bypass) {
        let _ = write!(
            message,
            "; window {name:?} is in a hard freeze (allowBypass: false): bypass annotations and \
             overrides are refused until it ends"
        );
        let mut decision = draft.deny(Reason::Frozen, message);
        decision.bypass = bypass;
        return decision;
    }
    let Some(bypass) = bypass else {
        let _ = write!(
            message,
            "; to ship an emergency change now, set the annotations \
             {BYPASS_REASON_ANNOTATION} (why) and {BYPASS_UNTIL_ANNOTATION} (RFC 3339, at most {} \
             ahead) in Git",
            format_duration(policy.max_bypass)
        );
        let reason = if frozen {
            Reason::Frozen
        } else {
            Reason::WindowClosed
        };
        return draft.deny(reason, message);
    };
    match bypass.validate(now, policy.max_bypass) {
        Ok(until) => {
            let until_text = until.to_rfc3339_opts(SecondsFormat::Secs, true);
            let warning = format!(
                "fluxgate: emergency bypass of a closed reconciliation window until {until_text}: {}",
                bypass.reason.as_deref().unwrap_or_default().trim()
            );
            let _ = write!(message, "; admitted by emergency bypass until {until_text}");
            let mut decision = draft.allow(Reason::Bypass, message);
            decision.warnings.push(warning);
            decision.bypass = Some(bypass);
            decision
        }
        Err(problem) => {
            let _ = write!(message, "; the emergency bypass is invalid: {problem}");
            let mut decision = draft.deny(Reason::InvalidBypass, message);
            decision.bypass = Some(bypass);
            decision
        }
    }
}

fn is_open(window: &WindowVerdict) -> bool {
    window.known.as_ref().is_some_and(|k| k.state.open)
}

/// Admits a change whose windows are all open: reason `override` (with a warning per
/// override) when an override is what holds one open.
fn admit_open(draft: DraftWithWindows) -> Decision {
    let warnings: Vec<String> = draft
        .windows
        .iter()
        .filter_map(|w| {
            let known = w.known.as_ref()?;
            let o = known.state.opened_by.as_ref()?;
            Some(format!(
                "fluxgate: reconciliation window {:?} is opened by an override until {} ({}): {}",
                w.name,
                local_time(o.end, known.time_zone),
                known.time_zone.name(),
                o.reason
            ))
        })
        .collect();
    let message = format!(
        "{} is governed by {}",
        draft.subject.display,
        WindowsText(&draft.windows)
    );
    if warnings.is_empty() {
        return draft.allow(Reason::WindowOpen, message);
    }
    let mut decision = draft.allow(Reason::Override, message);
    decision.warnings = warnings;
    decision
}

/// A [`Decision`] being drafted: what every decision on one request shares, its subject, and
/// from step 3 on its windows ([`DraftWithWindows`]).
struct Draft {
    subject: Subject,
}

struct DraftWithWindows {
    subject: Subject,
    windows: Vec<WindowVerdict>,
}

impl Draft {
    fn with_names(
        self,
        names: &BTreeSet<String>,
        windows: &WindowSet,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> DraftWithWindows {
        let windows = names
            .iter()
            .map(|name| WindowVerdict {
                name: name.clone(),
                known: windows.get(name).map(|w| known_window(w, policy, now)),
            })
            .collect();
        DraftWithWindows {
            subject: self.subject,
            windows,
        }
    }

    fn allow(self, reason: Reason, message: String) -> Decision {
        self.with_no_windows().allow(reason, message)
    }

    fn deny(self, reason: Reason, message: String) -> Decision {
        self.with_no_windows().deny(reason, message)
    }

    fn with_no_windows(self) -> DraftWithWindows {
        DraftWithWindows {
            subject: self.subject,
            windows: Vec::new(),
        }
    }

    fn validate_window(
        self,
        request: &AdmissionRequest<Object>,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Decision {
        // Deleting a window is always allowed: objects naming it are then denied as
        // unknown-window, which fails closed.
        let Some(object) = request
            .object
            .as_ref()
            .filter(|_| request.operation != Operation::Delete)
        else {
            let message = format!("{}: deleting a window is allowed", self.subject.display);
            return self.allow(Reason::ValidWindow, message);
        };
        if request.kind.version != window::VERSION {
            let message = format!(
                "{}: version {:?} is not served: use {}",
                self.subject.display,
                request.kind.version,
                window::API_VERSION
            );
            return self.deny(Reason::InvalidWindow, message);
        }
        let parsed = serde_json::to_value(object)
            .and_then(serde_json::from_value::<ReconciliationWindow>)
            .map_err(|e| format!("{}: {e}", self.subject.display))
            .and_then(|w| Window::from_object(&w).map_err(|e| e.to_string()));
        let checked =
            parsed.and_then(|window| window_problem(&window, policy, now).map_or(Ok(window), Err));
        match checked {
            Ok(window) => {
                let message = format!("ReconciliationWindow {:?} is valid", window.name());
                self.allow(Reason::ValidWindow, message)
            }
            Err(message) => self.deny(Reason::InvalidWindow, message),
        }
    }

    /// A ReconciliationFreeze written or deleted: refused from Flux (a freeze Flux could make
    /// or lift would be Flux deciding when Flux may change things), else held to
    /// [`StopTheLine::from_object`] under `--max-freeze`. Deleting one is how on-call ends it
    /// early: admitted, and audited with who did it.
    fn validate_freeze(
        self,
        request: &AdmissionRequest<Object>,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Decision {
        let user = request
            .user_info
            .username
            .as_deref()
            .unwrap_or("<anonymous>");
        if is_flux_controller(request, policy) {
            let message = format!(
                "{}: {user} is Flux: a stop-the-line freeze is declared and ended by people \
                 (fluxgate freeze start/end), never by Flux",
                self.subject.display
            );
            return self.deny(Reason::InvalidFreeze, message);
        }
        let Some(object) = request
            .object
            .as_ref()
            .filter(|_| request.operation != Operation::Delete)
        else {
            let message = format!("{}: ended by {user}", self.subject.display);
            return self.allow(Reason::ValidFreeze, message);
        };
        if request.kind.version != window::VERSION {
            let message = format!(
                "{}: version {:?} is not served: use {}",
                self.subject.display,
                request.kind.version,
                crate::freeze::API_VERSION
            );
            return self.deny(Reason::InvalidFreeze, message);
        }
        let checked = serde_json::to_value(object)
            .and_then(serde_json::from_value::<ReconciliationFreeze>)
            .map_err(|e| format!("{}: {e}", self.subject.display))
            .and_then(|f| {
                StopTheLine::from_object(&f, policy.max_freeze, now).map_err(|e| e.to_string())
            });
        match checked {
            Ok(freeze) => {
                let message = format!(
                    "ReconciliationFreeze {:?} ({}) is valid, by {user}",
                    freeze.name, freeze.reason
                );
                self.allow(Reason::ValidFreeze, message)
            }
            Err(message) => self.deny(Reason::InvalidFreeze, message),
        }
    }
}

impl DraftWithWindows {
    fn decision(self, allowed: bool, reason: Reason, message: String) -> Decision {
        Decision {
            allowed,
            reason,
            message,
            subject: self.subject,
            windows: self.windows,
            bypass: None,
            warnings: Vec::new(),
            enforcement: Enforcement::Enforce,
        }
    }

    fn allow(self, reason: Reason, message: String) -> Decision {
        self.decision(true, reason, message)
    }

    fn deny(self, reason: Reason, message: String) -> Decision {
        self.decision(false, reason, message)
    }
}

/// A window's state for a decision. An override longer than `--max-override` (one that never
/// passed the admission check, e.g. from a file) does not count: fail closed, and say so.
fn known_window(window: &Window, policy: &Policy, now: DateTime<Utc>) -> KnownWindow {
    let state = window.state_at(now);
    if state.freeze.as_ref().is_some_and(|f| !f.allow_bypass) {
        // An override in force does not open a hard freeze: name it in the denial.
        return KnownWindow {
            time_zone: window.time_zone(),
            ignored_override: window.overrides().iter().find(|o| o.covers(now)).cloned(),
            state,
            enforcement: window.enforcement(),
        };
    }
    match &state.opened_by {
        Some(o) if o.length() > policy.max_override => KnownWindow {
            time_zone: window.time_zone(),
            ignored_override: Some(o.clone()),
            state: Arc::new(window::evaluate_without_overrides(window, now)),
            enforcement: window.enforcement(),
        },
        _ => KnownWindow {
            time_zone: window.time_zone(),
            state,
            ignored_override: None,
            enforcement: window.enforcement(),
        },
    }
}

/// The first override of `window` longer than `--max-override`, as an error naming the field.
fn too_long_override(window: &Window, policy: &Policy) -> Option<String> {
    let (i, o) = window
        .overrides()
        .iter()
        .enumerate()
        .find(|(_, o)| o.length() > policy.max_override)?;
    Some(format!(
        "ReconciliationWindow {:?}: spec.overrides[{i}]: {} long, more than --max-override {}: \
         end it at most {} after its start",
        window.name(),
        format_duration(o.length()),
        format_duration(policy.max_override),
        format_duration(policy.max_override)
    ))
}

/// What the admission check refuses in a valid window ([`Window::from_object`]) for the
/// policy: an override longer than `--max-override`, a window that never opens again after
/// `now`. The one definition, for admission and for windows that did not come through it
/// (files, objects written while the policy was another), so none is refused by one and put in
/// force by the other.
pub fn window_problem(window: &Window, policy: &Policy, now: DateTime<Utc>) -> Option<String> {
    too_long_override(window, policy).or_else(|| never_opens(window, now))
}

/// An error when `window` will never open again after `now` (see [`Window::never_opens`]).
fn never_opens(window: &Window, now: DateTime<Utc>) -> Option<String> {
    window.never_opens(now).then(|| {
        format!(
            "ReconciliationWindow {:?}: spec: the window never opens within the ten years \
             fluxgate looks ahead (every schedule closed or frozen for good), so it would deny \
             every change: check the schedules and freezes",
            window.name()
        )
    })
}

fn is_freeze_request(request: &AdmissionRequest<Object>) -> bool {
    request.kind.group == window::GROUP && request.kind.kind == crate::freeze::KIND
}

/// Flux (see [`is_flux`]), or any service account of flux-system, where Flux's controllers run:
/// none of them may declare or lift a stop-the-line freeze.
fn is_flux_controller(request: &AdmissionRequest<Object>, policy: &Policy) -> bool {
    is_flux(request, policy)
        || request
            .user_info
            .username
            .as_deref()
            .is_some_and(|u| u.starts_with("system:serviceaccount:flux-system:"))
}

fn is_window_request(request: &AdmissionRequest<Object>) -> bool {
    // `request.kind` gives group and version apart.
    request.kind.group == window::GROUP && request.kind.kind == window::KIND
}

/// Flux by user name, by group (impersonated tenants), by field manager, or as a tenant's
/// prune.
fn is_flux(request: &AdmissionRequest<Object>, policy: &Policy) -> bool {
    if policy.tenant_prunes && is_tenant_prune(request) {
        return true;
    }
    let user = &request.user_info;
    if user
        .username
        .as_ref()
        .is_some_and(|u| policy.flux_users.contains(u))
    {
        return true;
    }
    if user
        .groups
        .iter()
        .flatten()
        .any(|g| policy.flux_groups.contains(g))
    {
        return true;
    }
    field_manager(request).is_some_and(|m| policy.flux_field_managers.iter().any(|f| f == m))
}

/// A Flux prune in a multi-tenant setup: a Kustomization (or HelmRelease) with
/// `serviceAccountName` acts as that service account, which lives in the Kustomization's own
/// namespace, and its DELETEs carry no field manager. So: a DELETE by
/// `system:serviceaccount:<ns>:<name>` of an object whose Flux owner labels name an owner in
/// `<ns>`. Requiring the owner's namespace keeps the garbage collector and the namespace
/// controller (service accounts of kube-system) and every other controller out: their
/// cascading deletes stay admitted, as they must for a namespace to finish terminating.
fn is_tenant_prune(request: &AdmissionRequest<Object>) -> bool {
    if request.operation != Operation::Delete {
        return false;
    }
    let Some(namespace) = request
        .user_info
        .username
        .as_deref()
        .and_then(|u| u.strip_prefix("system:serviceaccount:"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(namespace, _)| namespace)
    else {
        return false;
    };
    let owner = request
        .old_object
        .as_ref()
        .and_then(|o| FluxOwner::from_labels(o.metadata.labels.as_ref()?));
    owner.is_some_and(|o| o.namespace.as_deref() == Some(namespace))
}

/// `options.fieldManager` (CREATE and UPDATE, including PATCH turned into UPDATE).
pub fn field_manager(request: &AdmissionRequest<Object>) -> Option<&str> {
    request.options.as_ref()?.0.get("fieldManager")?.as_str()
}

/// The window governing one object version: `Ok(None)` when it is real-time.
fn governing_window(object: &Object, policy: &Policy) -> Result<Option<String>, String> {
    let labels = object.metadata.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    match Mode::of(label(MODE_LABEL)) {
        Mode::Rt => Ok(None),
        Mode::Rw => match label(WINDOW_LABEL) {
            None => Ok(Some(policy.default_window.clone())),
            Some("") => Err(format!(
                "label {WINDOW_LABEL} is empty: name a ReconciliationWindow"
            )),
            Some(name) => Ok(Some(name.to_owned())),
        },
        Mode::Invalid => Err(format!(
            "label {MODE_LABEL} is {:?}: expected \"rw\" or \"rt\"",
            label(MODE_LABEL).unwrap_or_default()
        )),
    }
}

/// `window "a", open until …` or `windows "a", closed until …, and "b", frozen …`; written
/// straight into the message (a denial message is built on every closed-window request).
struct WindowsText<'a>(&'a [WindowVerdict]);

impl std::fmt::Display for WindowsText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.len() == 1 {
            "reconciliation window "
        } else {
            "reconciliation windows "
        })?;
        for (i, verdict) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" and ")?;
            }
            write_window(f, verdict)?;
        }
        Ok(())
    }
}

fn write_window(f: &mut std::fmt::Formatter<'_>, verdict: &WindowVerdict) -> std::fmt::Result {
    let Some(known) = &verdict.known else {
        return write!(f, "{:?} (unknown)", verdict.name);
    };
    let state = &known.state;
    write!(f, "{:?}, ", verdict.name)?;
    match &state.freeze {
        _ if state.open => match (&state.opened_by, &state.opened_by_event) {
            (Some(o), _) => write!(f, "open by override ({}) ", o.reason)?,
            (None, Some(event)) => write!(f, "open{} ", event.describe())?,
            (None, None) => f.write_str("open ")?,
        },
        Some(freeze) => {
            let hard = if freeze.allow_bypass { "" } else { "hard-" };
            write!(f, "{hard}frozen{} and closed ", freeze.describe())?;
        }
        None => f.write_str("closed ")?,
    }
    match state.next {
        Some(t) => write!(
            f,
            "until {} ({})",
            local_time(t, known.time_zone),
            known.time_zone.name()
        ),
        None => match state.searched_until {
            Some(t) => write!(
                f,
                "with no change found up to {} ({}), where the search stopped",
                local_time(t, known.time_zone),
                known.time_zone.name()
            ),
            None => f.write_str("with no change in sight"),
        },
    }?;
    match &known.ignored_override {
        Some(o) if state.freeze.as_ref().is_some_and(|f| !f.allow_bypass) => write!(
            f,
            " (its override ({}) is refused during a hard freeze)",
            o.reason
        )?,
        Some(o) => write!(
            f,
            " (its override ({}) is ignored: at {} it is longer than --max-override allows)",
            o.reason,
            format_duration(o.length())
        )?,
        None => {}
    }
    Ok(())
}

fn quote_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// === impl Subject ===

impl Subject {
    fn of(request: &AdmissionRequest<Object>) -> Self {
        let new = request.object.as_ref();
        let old = request.old_object.as_ref();
        let name = if !request.name.is_empty() {
            request.name.clone()
        } else {
            // CREATE with generateName has no name yet.
            new.and_then(|o| o.metadata.generate_name.as_ref().map(|g| format!("{g}*")))
                .unwrap_or_else(|| "<unnamed>".to_owned())
        };
        let display =
            crate::naming::object(&request.kind.kind, request.namespace.as_deref(), &name);
        fn labels_of(o: Option<&Object>) -> Option<&BTreeMap<String, String>> {
            o.and_then(|o| o.metadata.labels.as_ref())
        }
        let mode = [new, old]
            .into_iter()
            .find_map(|o| labels_of(o)?.get(MODE_LABEL).cloned());
        let owner = [new, old]
            .into_iter()
            .find_map(|o| FluxOwner::from_labels(labels_of(o)?));
        Subject {
            display,
            mode,
            owner,
        }
    }
}
