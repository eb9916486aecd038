//! `fluxgate lint`'s checks over rendered manifests (`kustomize build … | fluxgate lint`).
//!
//! [`parse_manifests`] turns multi-document YAML into [`Manifest`]s that remember where they
//! came from (file and line); [`lint`] checks them against the known windows and the
//! [`Policy`] at an instant, and returns [`Finding`]s, each naming the object and a one-line
//! fix. Pure: no files, no clock. The rules are the webhook's own: the bypass check is
//! [`Bypass::validate`], window objects go through [`parse_documents`] and
//! [`Window::from_object`], the labels are [`MODE_LABEL`] (read by `Mode::of`) and [`WINDOW_LABEL`].

use crate::duration::format_duration;
use crate::flux::{FluxOwner, OwnerKind};
use crate::policy::{
    BYPASS_REASON_ANNOTATION, BYPASS_UNTIL_ANNOTATION, Bypass, MODE_LABEL, Mode, Policy,
    WINDOW_LABEL, window_problem,
};
use crate::window::{Window, WindowSet, WindowSetError, parse_documents};
use crate::yaml::{self, content_line, split_documents};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// How many objects a mixed-owner finding names of each mode before "and N more".
const MAX_NAMED: usize = 3;

/// One Kubernetes object of the input.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The file, or `<stdin>`.
    pub(crate) origin: String,
    /// 1-based line where the document's content starts.
    pub(crate) line: usize,
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    /// The document's own text, for objects that are validated whole (ReconciliationWindow).
    text: String,
    /// The document as parsed: `fluxgate plan` compares and decides the whole object, and
    /// parsing the text again would double its cost.
    pub(crate) value: Value,
}

/// Input that is not a stream of Kubernetes objects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: {message}")]
pub struct ManifestError {
    pub(crate) origin: String,
    pub(crate) line: usize,
    pub(crate) message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// What lint found wrong with an object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// A stable name for the check, e.g. `unknown-window`.
    pub check: &'static str,
    /// `Kind namespace/name`, or the Flux owner for `mixed-owner`.
    pub object: String,
    /// `file:line`.
    pub at: String,
    pub message: String,
    /// One line saying what to change.
    pub fix: String,
}

/// Names of the checks, for documentation and tests.
pub(crate) mod check {
    pub(crate) const INVALID_MODE: &str = "invalid-mode";
    pub(crate) const UNKNOWN_WINDOW: &str = "unknown-window";
    pub(crate) const INVALID_BYPASS: &str = "invalid-bypass";
    pub(crate) const BYPASS_IN_PLACE: &str = "bypass-in-place";
    pub(crate) const BYPASS_NOT_RW: &str = "bypass-not-rw";
    pub(crate) const MIXED_OWNER: &str = "mixed-owner";
    pub(crate) const RW_EARLY_STAGE: &str = "rw-early-stage";
    pub(crate) const INVALID_WINDOW: &str = "invalid-window";
    pub(crate) const LABEL_AS_ANNOTATION: &str = "label-as-annotation";
    pub(crate) const WINDOW_NOT_RW: &str = "window-not-rw";
    pub(crate) const RW_IN_HELM_RELEASE: &str = "rw-in-helm-release";
    pub(crate) const EXPIRED_OVERRIDE: &str = "expired-override";
    pub(crate) const CRON_DAYS_EITHER: &str = "cron-days-either";
    pub(crate) const CASCADING_DELETE: &str = "cascading-delete";
}

// === parsing ===

/// The objects of a multi-document YAML stream; empty documents are skipped and `List`s
/// are flattened. A document that is not valid YAML or not an object is an error naming the
/// line.
pub fn parse_manifests(origin: &str, text: &str) -> Result<Vec<Manifest>, ManifestError> {
    let mut manifests = Vec::new();
    for (start, chunk) in split_documents(text) {
        let line = content_line(start, &chunk);
        let error = |line: usize, message: String| ManifestError {
            origin: origin.to_owned(),
            line,
            message,
        };
        let value: Value = yaml::from_str(&chunk, start).map_err(|e| {
            // The parser may point just past the document's end.
            let last = start + chunk.lines().count().saturating_sub(1);
            error(
                e.line().map_or(line, |l| l.min(last)),
                format!("not valid YAML: {e}"),
            )
        })?;
        if value.is_null() {
            continue;
        }
        if value.get("kind").and_then(|k| k.as_str()) == Some("List")
            && let Some(items) = value.get("items").and_then(|i| i.as_array())
        {
            for item in items {
                // JSON is YAML: the item's text, for the objects validated whole.
                let item_text = item.to_string();
                manifests.push(
                    manifest(origin, line, item.clone(), item_text).map_err(|m| error(line, m))?,
                );
            }
            continue;
        }
        manifests.push(manifest(origin, line, value, chunk).map_err(|m| error(line, m))?);
    }
    Ok(manifests)
}

fn manifest(origin: &str, line: usize, value: Value, text: String) -> Result<Manifest, String> {
    if !value.is_object() {
        return Err("not a Kubernetes object (a YAML mapping with apiVersion and kind)".into());
    }
    let text_of = |v: Option<&Value>| v.and_then(scalar);
    let kind = text_of(value.get("kind")).unwrap_or_default();
    if kind.is_empty() {
        return Err("not a Kubernetes object: no kind".into());
    }
    let metadata = value.get("metadata");
    let map = |key: &str| -> BTreeMap<String, String> {
        metadata
            .and_then(|m| m.get(key))
            .and_then(|m| m.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), scalar(v).unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Manifest {
        origin: origin.to_owned(),
        line,
        api_version: text_of(value.get("apiVersion")).unwrap_or_default(),
        kind,
        name: text_of(metadata.and_then(|m| m.get("name")))
            .or_else(|| {
                text_of(metadata.and_then(|m| m.get("generateName"))).map(|g| format!("{g}*"))
            })
            .unwrap_or_else(|| "<unnamed>".to_owned()),
        namespace: text_of(metadata.and_then(|m| m.get("namespace"))).filter(|n| !n.is_empty()),
        labels: map("labels"),
        annotations: map("annotations"),
        text,
        value,
    })
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

// === impl Manifest ===

impl Manifest {
    /// `Kind namespace/name`, or `Kind name` when cluster-scoped.
    pub(crate) fn display(&self) -> String {
        crate::naming::object(&self.kind, self.namespace.as_deref(), &self.name)
    }

    /// `file:line`.
    pub(crate) fn at(&self) -> String {
        format!("{}:{}", self.origin, self.line)
    }

    pub(crate) fn group(&self) -> &str {
        crate::naming::api_group(&self.api_version)
    }

    fn is_namespace(&self) -> bool {
        self.kind == "Namespace" && self.api_version == "v1"
    }

    fn is_window(&self) -> bool {
        crate::window::is_window_type(&self.api_version, &self.kind)
    }

    /// The Flux Kustomization or HelmRelease that applies it, `Kind namespace/name`.
    pub(crate) fn owner(&self) -> Option<String> {
        FluxOwner::from_labels(&self.labels).map(|owner| owner.to_string())
    }

    /// The webhook's own reading of the label.
    pub(crate) fn mode(&self) -> Mode {
        Mode::of(self.labels.get(MODE_LABEL).map(String::as_str))
    }

    fn finding(
        &self,
        severity: Severity,
        check: &'static str,
        message: String,
        fix: String,
    ) -> Finding {
        Finding {
            severity,
            check,
            object: self.display(),
            at: self.at(),
            message,
            fix,
        }
    }
}

// === checks ===

/// Checks `manifests` (of one or more inputs, in order) against `windows` plus the valid
/// ReconciliationWindows of the input itself, at `now`. Findings come in input order.
pub fn lint(
    manifests: &[Manifest],
    windows: &WindowSet,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut known: BTreeSet<String> = windows.names().map(str::to_owned).collect();
    let mut defined: BTreeMap<String, String> = BTreeMap::new();
    for m in manifests.iter().filter(|m| m.is_window()) {
        match validate_window(m, policy, now) {
            Ok(window) => {
                check_window(m, &window, now, &mut findings);
                let name = window.name().to_owned();
                if let Some(first) = defined.get(&name) {
                    findings.push(m.finding(
                        Severity::Error,
                        check::INVALID_WINDOW,
                        format!("ReconciliationWindow {name:?} is defined twice: first at {first}"),
                        "keep one definition of each window".into(),
                    ));
                } else {
                    defined.insert(name.clone(), m.at());
                }
                known.insert(name);
            }
            Err(message) => findings.push(m.finding(
                Severity::Error,
                check::INVALID_WINDOW,
                message,
                INVALID_WINDOW_FIX.into(),
            )),
        }
    }
    for m in manifests {
        check_object(m, &known, policy, now, &mut findings);
        check_helm_release_object(m, &mut findings);
    }
    check_owners(manifests, &mut findings);
    check_cascades(manifests, &mut findings);
    // Stable order: by input, then line; the per-object findings of one object stay in the
    // order they were found.
    let mut order: BTreeMap<String, usize> = BTreeMap::new();
    for (i, m) in manifests.iter().enumerate() {
        order.entry(m.at()).or_insert(i);
    }
    findings.sort_by_key(|f| order.get(&f.at).copied().unwrap_or(usize::MAX));
    findings
}

const INVALID_WINDOW_FIX: &str =
    "correct the field the message names; the webhook rejects this window as it is";

/// The fix lint gives for what the webhook denies `m` with (`reason`), when lint has one:
/// `fluxgate plan` shows it beside a change that can never land, so both say the same.
pub(crate) fn fix_for(
    reason: crate::policy::Reason,
    m: &Manifest,
    known: &BTreeSet<String>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Option<String> {
    use crate::policy::Reason;
    let finding = match reason {
        Reason::UnknownWindow => unknown_window(m, known, policy),
        Reason::InvalidBypass => {
            Bypass::from_annotations(&m.annotations).map(|b| bypass_state(m, &b, policy, now))
        }
        Reason::InvalidRequest if m.mode() == Mode::Invalid => Some(invalid_mode(m)),
        Reason::InvalidRequest => unknown_window(m, known, policy),
        Reason::InvalidWindow => return Some(INVALID_WINDOW_FIX.to_owned()),
        _ => None,
    };
    finding.map(|f| f.fix)
}

/// Validates a ReconciliationWindow document the way the loader and the webhook do.
fn validate_window(m: &Manifest, policy: &Policy, now: DateTime<Utc>) -> Result<Window, String> {
    // The finding names the object's line; the message is the error without its own.
    let documents = parse_documents(&m.origin, &m.text).map_err(|e| match e {
        WindowSetError::Object { message, .. } => message,
        other => other.to_string(),
    })?;
    let document = documents
        .first()
        .ok_or_else(|| format!("{}: not a ReconciliationWindow", m.at()))?;
    let window = Window::from_object(&document.object).map_err(|e| e.to_string())?;
    match window_problem(&window, policy, now) {
        Some(problem) => Err(problem),
        None => Ok(window),
    }
}

/// What is valid but worth a reminder in a window: crons whose day fields are ORed, overrides
/// that have passed.
fn check_window(m: &Manifest, window: &Window, now: DateTime<Utc>, findings: &mut Vec<Finding>) {
    for (field, message) in window.warnings() {
        findings.push(
            m.finding(
                Severity::Warning,
                check::CRON_DAYS_EITHER,
                format!("{field}: {message}"),
                "if you meant both, use * for day-of-month and W#N for the weekday; if you meant \
             either, nothing to change"
                    .into(),
            ),
        );
    }
    for (i, o) in window.overrides().iter().enumerate() {
        if o.end <= now {
            findings.push(m.finding(
                Severity::Warning,
                check::EXPIRED_OVERRIDE,
                format!(
                    "spec.overrides[{i}] ({}) ended at {}: it no longer opens the window",
                    o.reason,
                    o.end.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
                format!("remove spec.overrides[{i}] from Git"),
            ));
        }
    }
}

/// The checks of one object, in the order their findings are reported. An invalid mode ends
/// them (the webhook denies every change, so nothing else matters); an rt object is only
/// warned about the rw-only metadata it carries.
fn check_object(
    m: &Manifest,
    known: &BTreeSet<String>,
    policy: &Policy,
    now: DateTime<Utc>,
    findings: &mut Vec<Finding>,
) {
    findings.extend(labels_as_annotations(m));
    let bypass = Bypass::from_annotations(&m.annotations);
    match m.mode() {
        Mode::Invalid => findings.push(invalid_mode(m)),
        Mode::Rt => {
            findings.extend(window_not_rw(m));
            findings.extend(bypass.is_some().then(|| bypass_not_rw(m)));
        }
        Mode::Rw => {
            findings.extend(rw_early_stage(m));
            findings.extend(unknown_window(m, known, policy));
            findings.extend(bypass.map(|bypass| bypass_state(m, &bypass, policy, now)));
        }
    }
}

/// The mode and window labels written as annotations: the webhook reads labels only, so the
/// object is governed as if they were absent.
fn labels_as_annotations(m: &Manifest) -> impl Iterator<Item = Finding> + '_ {
    [MODE_LABEL, WINDOW_LABEL]
        .into_iter()
        .filter(|key| m.annotations.contains_key(*key) && !m.labels.contains_key(*key))
        .map(|key| {
            m.finding(
                Severity::Warning,
                check::LABEL_AS_ANNOTATION,
                format!("{key} is an annotation; fluxgate reads it only as a label"),
                format!("move {key} from metadata.annotations to metadata.labels"),
            )
        })
}

/// A mode label that is neither rw nor rt: the webhook denies every Flux change to the object.
fn invalid_mode(m: &Manifest) -> Finding {
    let value = m.labels.get(MODE_LABEL).cloned().unwrap_or_default();
    m.finding(
        Severity::Error,
        check::INVALID_MODE,
        format!(
            "label {MODE_LABEL} is {value:?}: the webhook denies every Flux change to it \
             (invalid-request)"
        ),
        format!("set {MODE_LABEL} to \"rw\" or \"rt\" (lower case)"),
    )
}

/// A window label on an object that is not rw: windows gate rw objects only, so the label
/// suggests a protection that is not there.
fn window_not_rw(m: &Manifest) -> Option<Finding> {
    m.labels.contains_key(WINDOW_LABEL).then(|| {
        m.finding(
            Severity::Warning,
            check::WINDOW_NOT_RW,
            format!(
                "label {WINDOW_LABEL} has no effect: the object is not labelled {MODE_LABEL}: rw"
            ),
            format!("add {MODE_LABEL}: rw, or remove {WINDOW_LABEL}"),
        )
    })
}

/// Bypass annotations on an object that is not rw: nothing is gated, so nothing is bypassed.
fn bypass_not_rw(m: &Manifest) -> Finding {
    m.finding(
        Severity::Warning,
        check::BYPASS_NOT_RW,
        "bypass annotations on an object that is not rw do nothing".into(),
        format!("remove {BYPASS_REASON_ANNOTATION} and {BYPASS_UNTIL_ANNOTATION}"),
    )
}

/// An rw Namespace or CRD: Flux applies those in a stage of their own, so one denial there
/// fails the whole Kustomization.
fn rw_early_stage(m: &Manifest) -> Option<Finding> {
    is_early_stage(m).then(|| {
        m.finding(
            Severity::Error,
            check::RW_EARLY_STAGE,
            format!(
                "{} is rw, but Flux applies Namespaces and CRDs in a stage before everything \
                 else: one denial there fails the whole Kustomization, every object in it",
                m.kind
            ),
            format!(
                "label it {MODE_LABEL}: rt (or drop the label) and move it to a Kustomization \
                 without rw objects"
            ),
        )
    })
}

/// The window that governs an rw object (its label, else the default) must exist: the webhook
/// denies every change to an object whose window it does not know.
fn unknown_window(m: &Manifest, known: &BTreeSet<String>, policy: &Policy) -> Option<Finding> {
    let (message, fix) = match m.labels.get(WINDOW_LABEL).map(String::as_str) {
        Some("") => (
            format!("label {WINDOW_LABEL} is empty: the webhook denies every Flux change to it"),
            format!("name a ReconciliationWindow in {WINDOW_LABEL}, or remove the label"),
        ),
        Some(name) if !known.contains(name) => (
            format!(
                "label {WINDOW_LABEL} names window {name:?}, which does not exist (known: {})",
                known_list(known)
            ),
            format!(
                "correct the label, or add a ReconciliationWindow named {name:?} (and pass it \
                 with --windows)"
            ),
        ),
        None if !known.contains(&policy.default_window) => (
            format!(
                "no {WINDOW_LABEL} label, so the default window {:?} governs it, which does not \
                 exist (known: {})",
                policy.default_window,
                known_list(known)
            ),
            format!(
                "set {WINDOW_LABEL}, or add a ReconciliationWindow named {:?}",
                policy.default_window
            ),
        ),
        _ => return None,
    };
    Some(m.finding(Severity::Error, check::UNKNOWN_WINDOW, message, fix))
}

/// A bypass committed to Git: valid, it is a reminder to remove it once the change is live;
/// invalid, the webhook refuses it (the same [`Bypass::validate`]).
fn bypass_state(m: &Manifest, bypass: &Bypass, policy: &Policy, now: DateTime<Utc>) -> Finding {
    match bypass.validate(now, policy.max_bypass) {
        Ok(until) => m.finding(
            Severity::Warning,
            check::BYPASS_IN_PLACE,
            format!(
                "emergency bypass in place until {} ({})",
                until.to_rfc3339_opts(SecondsFormat::Secs, true),
                bypass.reason.as_deref().unwrap_or_default().trim()
            ),
            format!(
                "once the change is live, remove {BYPASS_REASON_ANNOTATION} and \
                 {BYPASS_UNTIL_ANNOTATION} from Git"
            ),
        ),
        Err(problem) => m.finding(
            Severity::Error,
            check::INVALID_BYPASS,
            format!("invalid emergency bypass: {problem}"),
            format!(
                "remove the bypass annotations, or set a reason and an RFC 3339 expiry in the \
                 future at most {} ahead",
                format_duration(policy.max_bypass)
            ),
        ),
    }
}

/// rw objects that a HelmRelease applies: helm-controller upgrades object by object, so one
/// denied object fails the upgrade half-way, and after its retries the release is Stalled.
/// Gating the HelmRelease object itself stops the upgrade before it starts. In Git the chart's
/// objects are made rw by the HelmRelease (`spec.commonMetadata.labels`, or a post-renderer
/// patch); objects read back from the cluster carry helm-controller's owner labels.
fn check_helm_release_object(m: &Manifest, findings: &mut Vec<Finding>) {
    let fix = |release: &str| {
        format!(
            "label the HelmRelease {release} itself {MODE_LABEL}: rw (with its {WINDOW_LABEL}) \
             and leave the chart's objects unlabelled, so the upgrade is gated as a whole"
        )
    };
    let consequence = "a denial fails its Helm upgrade half-way, and the release stalls";
    if OwnerKind::of(&m.api_version, &m.kind) == Some(OwnerKind::HelmRelease) {
        let spec = yaml::from_str::<Value>(&m.text, 1)
            .ok()
            .and_then(|v| v.get("spec").cloned());
        let Some(spec) = spec else { return };
        let common = spec
            .get("commonMetadata")
            .and_then(|c| c.get("labels"))
            .and_then(|l| l.get(MODE_LABEL))
            .and_then(|v| v.as_str());
        let post_rendered = spec
            .get("postRenderers")
            .map(Value::to_string)
            // Strategic-merge patches name the label; JSON patches escape its `/` as `~1`.
            .is_some_and(|text| {
                text.contains(MODE_LABEL) || text.contains(&MODE_LABEL.replace('/', "~1"))
            });
        // Invalid counts too: the webhook governs (and denies) those objects as well.
        let how = if Mode::of(common) != Mode::Rt {
            "spec.commonMetadata.labels"
        } else if post_rendered {
            "a spec.postRenderers patch"
        } else {
            return;
        };
        findings.push(m.finding(
            Severity::Warning,
            check::RW_IN_HELM_RELEASE,
            format!("{how} sets {MODE_LABEL} on every object of the chart: {consequence}"),
            fix(&m.name),
        ));
        return;
    }
    let Some(owner) =
        FluxOwner::from_labels(&m.labels).filter(|o| o.kind == OwnerKind::HelmRelease)
    else {
        return;
    };
    if m.mode() != Mode::Rw {
        return;
    }
    findings.push(m.finding(
        Severity::Warning,
        check::RW_IN_HELM_RELEASE,
        format!("rw object applied by {owner}: {consequence}"),
        fix(&owner.name),
    ));
}

pub(crate) fn is_early_stage(m: &Manifest) -> bool {
    m.is_namespace()
        || (m.kind == "CustomResourceDefinition" && m.group() == "apiextensions.k8s.io")
}

fn known_list(known: &BTreeSet<String>) -> String {
    if known.is_empty() {
        "none".to_owned()
    } else {
        known
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One Flux Kustomization (or HelmRelease) that applies rw and rt objects together: Flux
/// dry-runs everything before applying anything, so one denied rw object holds back its rt
/// changes too. Objects without owner labels (plain `kustomize build`, which Flux labels only
/// when applying) are what one Flux Kustomization of that path applies: one group per input.
/// rw objects whose Namespace (in the input) Flux may prune apart from them: applied as rt, or
/// by another Kustomization. Pruning the Namespace makes the namespace controller delete the rw
/// object, and that delete is the controller's, not Flux's: fluxgate admits it, window or not.
fn check_cascades(manifests: &[Manifest], findings: &mut Vec<Finding>) {
    let applier = |m: &Manifest| {
        m.owner()
            .unwrap_or_else(|| format!("the Kustomization of {}", m.origin))
    };
    let namespaces: BTreeMap<&str, &Manifest> = manifests
        .iter()
        .filter(|m| m.is_namespace())
        .map(|m| (m.name.as_str(), m))
        .collect();
    for m in manifests.iter().filter(|m| m.mode() == Mode::Rw) {
        let Some(ns) = m.namespace.as_deref().and_then(|n| namespaces.get(n)) else {
            continue;
        };
        if ns
            .annotations
            .get(PRUNE_ANNOTATION)
            .is_some_and(|v| v == "disabled")
        {
            continue;
        }
        let how = if ns.mode() != Mode::Rw {
            format!("as rt by {}", applier(ns))
        } else if applier(ns) != applier(m) {
            format!("by {}", applier(ns))
        } else {
            continue;
        };
        findings.push(m.finding(
            Severity::Warning,
            check::CASCADING_DELETE,
            format!(
                "its Namespace {} is applied {how} ({}): if Flux prunes the Namespace, the \
                 namespace controller deletes this rw object with it, and fluxgate admits that \
                 whatever the window says (the delete is not Flux's)",
                ns.name,
                ns.at()
            ),
            format!(
                "annotate Namespace {} with {PRUNE_ANNOTATION}: disabled, so Flux never deletes \
                 it (delete it by hand when the app is retired)",
                ns.name
            ),
        ));
    }
}

/// Flux's per-object opt-out of garbage collection.
const PRUNE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/prune";

fn check_owners(manifests: &[Manifest], findings: &mut Vec<Finding>) {
    let mut groups: Vec<(String, Vec<&Manifest>)> = Vec::new();
    for m in manifests {
        let owner = m.owner().unwrap_or_else(|| {
            format!(
                "{} (objects without {} labels)",
                m.origin, "kustomize.toolkit.fluxcd.io/name"
            )
        });
        match groups.iter_mut().find(|(o, _)| *o == owner) {
            Some((_, objects)) => objects.push(m),
            None => groups.push((owner, vec![m])),
        }
    }
    for (owner, objects) in groups {
        findings.extend(mixed_owner(owner, &objects));
    }
}

/// The mixed-owner finding for the objects one Flux owner applies (`None` when they are all rw
/// or all rt): lint's, and `fluxgate plan`'s note on an owner.
pub(crate) fn mixed_owner(owner: String, objects: &[&Manifest]) -> Option<Finding> {
    let first = objects.first()?;
    let of_mode = |mode: Mode| -> Vec<&Manifest> {
        objects
            .iter()
            .copied()
            .filter(|m| m.mode() == mode)
            .collect()
    };
    let (rw, rt) = (of_mode(Mode::Rw), of_mode(Mode::Rt));
    if rw.is_empty() || rt.is_empty() {
        return None;
    }
    let names = |objects: &[&Manifest]| {
        let mut text: Vec<String> = objects
            .iter()
            .take(MAX_NAMED)
            .map(|m| m.display())
            .collect();
        if objects.len() > MAX_NAMED {
            text.push(format!("and {} more", objects.len() - MAX_NAMED));
        }
        text.join(", ")
    };
    Some(Finding {
        severity: Severity::Error,
        check: check::MIXED_OWNER,
        object: owner,
        at: first.at(),
        message: format!(
            "applies {} rw and {} rt objects together (rw: {}; rt: {}): one denied rw object \
             fails the whole apply, so the rt changes wait for the window too",
            rw.len(),
            rt.len(),
            names(&rw),
            names(&rt)
        ),
        fix: "split them: rt objects in <app>-rt, rw objects (labelled fluxgate.io/mode: rw) \
              in <app>-rw, each under its own Flux Kustomization"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Friday 2026-11-27 12:00 UTC.
    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn windows() -> WindowSet {
        crate::window::WindowSet::embedded().unwrap()
    }

    fn run(yaml: &str) -> Vec<Finding> {
        let manifests = parse_manifests("in.yaml", yaml).unwrap();
        lint(&manifests, &windows(), &Policy::default(), now())
    }

    fn checks(findings: &[Finding]) -> Vec<(&'static str, Severity, &str)> {
        findings
            .iter()
            .map(|f| (f.check, f.severity, f.object.as_str()))
            .collect()
    }

    /// An object with labels and annotations given as `key: value` YAML lines.
    fn object(kind: &str, name: &str, labels: &[&str], annotations: &[&str]) -> String {
        let block = |title: &str, lines: &[&str]| {
            if lines.is_empty() {
                String::new()
            } else {
                let body: String = lines.iter().map(|l| format!("    {l}\n")).collect();
                format!("  {title}:\n{body}")
            }
        };
        let api = if kind == "Deployment" {
            "apps/v1"
        } else {
            "v1"
        };
        format!(
            "---\napiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: nginx\n{}{}",
            block("labels", labels),
            block("annotations", annotations)
        )
    }

    const RW: &str = "fluxgate.io/mode: rw";
    const RT: &str = "fluxgate.io/mode: rt";
    const BH: &str = "fluxgate.io/window: business-hours";

    #[test]
    fn documents_keep_their_line_and_lists_are_flattened() {
        let yaml = "# rendered\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n\n---\n# c\napiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Secret\n    metadata: {name: b, namespace: x}\n";
        let manifests = parse_manifests("in.yaml", yaml).unwrap();
        let found: Vec<(String, usize)> = manifests.iter().map(|m| (m.display(), m.line)).collect();
        assert_eq!(
            found,
            vec![("ConfigMap a".to_owned(), 3), ("Secret x/b".to_owned(), 11)]
        );
    }

    #[test]
    fn invalid_yaml_and_non_objects_name_the_line() {
        let error = parse_manifests(
            "in.yaml",
            "apiVersion: v1\nkind: A\n---\nkind: B\n  bad: [\n",
        )
        .unwrap_err();
        assert_eq!(
            (error.origin.as_str(), error.line),
            ("in.yaml", 5),
            "{error}"
        );
        assert!(error.message.starts_with("not valid YAML"), "{error}");
        let error = parse_manifests("in.yaml", "a: 1\n---\n- x\n").unwrap_err();
        assert_eq!(error.line, 1, "{error}");
        assert!(error.to_string().contains("no kind"), "{error}");
    }

    /// An alias bomb in the input is refused after a bounded expansion, on its line.
    #[test]
    fn an_alias_bomb_is_refused_not_expanded() {
        let mut yaml = String::from(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
        );
        for i in 1..9 {
            let aliases = vec![format!("*a{}", i - 1); 9].join(", ");
            yaml.push_str(&format!("  a{i}: &a{i} [{aliases}]\n"));
        }
        let error = parse_manifests("in.yaml", &yaml).unwrap_err();
        assert!(
            error
                .message
                .starts_with("not valid YAML: alias replay limit exceeded"),
            "{error}"
        );
        assert!((5..=12).contains(&error.line), "{error}");
    }

    /// A window the parser refuses is reported at the object, and its message is the error
    /// alone, naming the field (it once read `w.yaml:1:1: ReconciliationWindow "a": unknown
    /// field …`, a second location inside the message).
    #[test]
    fn a_window_the_parser_refuses_names_the_field_once() {
        let yaml = "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata: {name: a}\nspec:\n  timezone: UTC\n  schedules: [{start: '0 1 * * *', duration: 1h}]\n";
        let manifests = parse_manifests("w.yaml", yaml).unwrap();
        let findings = lint(&manifests, &windows(), &Policy::default(), now());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].at, "w.yaml:1");
        assert_eq!(
            findings[0].message,
            "ReconciliationWindow \"a\": spec: unknown field `timezone`, expected one of \
             description, timeZone, schedules, freezes, overrides, enforcement"
        );
    }

    #[test]
    fn a_clean_rw_app_has_no_findings() {
        let yaml = [
            object("Deployment", "nginx", &[RW, BH], &[]),
            object("Service", "nginx", &[RW, BH], &[]),
        ]
        .concat();
        assert_eq!(run(&yaml), vec![]);
        // The default window exists in the embedded set.
        assert_eq!(run(&object("Service", "nginx", &[RW], &[])), vec![]);
    }

    #[test]
    fn mixing_rt_and_rw_under_one_owner_is_an_error_once_per_owner() {
        let owner = [
            "kustomize.toolkit.fluxcd.io/name: apps",
            "kustomize.toolkit.fluxcd.io/namespace: flux-system",
        ];
        let yaml = [
            object("Deployment", "nginx", &[RW, BH, owner[0], owner[1]], &[]),
            object("ConfigMap", "conf", &[RT, owner[0], owner[1]], &[]),
            object("Secret", "s", &[owner[0], owner[1]], &[]),
            // Another owner, rt only: fine.
            object(
                "ConfigMap",
                "other",
                &["kustomize.toolkit.fluxcd.io/name: infra"],
                &[],
            ),
        ]
        .concat();
        let findings = run(&yaml);
        assert_eq!(
            checks(&findings),
            vec![(
                check::MIXED_OWNER,
                Severity::Error,
                "Kustomization flux-system/apps"
            )]
        );
        let f = &findings[0];
        assert_eq!(f.at, "in.yaml:2");
        assert!(f.message.contains("1 rw and 2 rt"), "{}", f.message);
        assert!(
            f.message.contains("ConfigMap nginx/conf, Secret nginx/s"),
            "{}",
            f.message
        );
    }

    #[test]
    fn unlabelled_objects_of_one_input_are_one_owner() {
        let yaml = [
            object("Deployment", "nginx", &[RW, BH], &[]),
            object("ConfigMap", "conf", &[], &[]),
        ]
        .concat();
        let findings = run(&yaml);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].check, check::MIXED_OWNER);
        assert!(
            findings[0].object.starts_with("in.yaml (objects without"),
            "{:?}",
            findings[0]
        );
    }

    #[test]
    fn unknown_and_empty_windows_and_a_missing_default() {
        let yaml = [
            object(
                "Deployment",
                "typo",
                &[RW, "fluxgate.io/window: busines-hours"],
                &[],
            ),
            object("Deployment", "empty", &[RW, "fluxgate.io/window: ''"], &[]),
        ]
        .concat();
        let findings = run(&yaml);
        assert_eq!(
            checks(&findings),
            vec![
                (
                    check::UNKNOWN_WINDOW,
                    Severity::Error,
                    "Deployment nginx/typo"
                ),
                (
                    check::UNKNOWN_WINDOW,
                    Severity::Error,
                    "Deployment nginx/empty"
                ),
            ]
        );
        assert!(findings[0].message.contains("\"busines-hours\""));
        assert!(
            findings[0]
                .message
                .contains("known: business-hours, default, nightly")
        );
        let policy = Policy {
            default_window: "nope".into(),
            ..Policy::default()
        };
        let manifests = parse_manifests("in.yaml", &object("Service", "s", &[RW], &[])).unwrap();
        let findings = lint(&manifests, &windows(), &policy, now());
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].message.contains("default window \"nope\""),
            "{:?}",
            findings[0]
        );
    }

    #[test]
    fn rw_objects_of_a_helm_release_are_a_warning_that_points_at_the_release() {
        let helm = [
            "helm.toolkit.fluxcd.io/name: podinfo",
            "helm.toolkit.fluxcd.io/namespace: podinfo",
        ];
        let rw: Vec<&str> = helm
            .iter()
            .copied()
            .chain(["fluxgate.io/mode: rw"])
            .collect();
        let findings = run(&object("Deployment", "podinfo", &rw, &[]));
        assert_eq!(
            checks(&findings),
            vec![(
                check::RW_IN_HELM_RELEASE,
                Severity::Warning,
                "Deployment nginx/podinfo"
            )]
        );
        assert!(findings[0].message.contains("HelmRelease podinfo/podinfo"));
        assert!(
            findings[0]
                .fix
                .contains("label the HelmRelease podinfo itself")
        );
    }

    #[test]
    fn a_helm_release_that_makes_its_chart_rw_is_a_warning() {
        let release = |spec: &str| {
            format!(
                "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  \
                 name: podinfo\n  namespace: podinfo\nspec:\n  interval: 1h\n{spec}"
            )
        };
        let common = release("  commonMetadata:\n    labels:\n      fluxgate.io/mode: rw\n");
        let findings = run(&common);
        assert_eq!(
            checks(&findings),
            vec![(
                check::RW_IN_HELM_RELEASE,
                Severity::Warning,
                "HelmRelease podinfo/podinfo"
            )]
        );
        assert!(
            findings[0]
                .message
                .starts_with("spec.commonMetadata.labels")
        );
        assert!(
            findings[0]
                .fix
                .contains("label the HelmRelease podinfo itself")
        );
        // A post-renderer patch, strategic-merge style.
        let patched = release(
            "  postRenderers:\n    - kustomize:\n        patches:\n          - patch: |\n              \
             apiVersion: apps/v1\n              kind: Deployment\n              metadata:\n                \
             name: podinfo\n                labels:\n                  fluxgate.io/mode: rw\n",
        );
        let findings = run(&patched);
        assert!(
            findings[0]
                .message
                .starts_with("a spec.postRenderers patch"),
            "{findings:?}"
        );
        let json_patch = release(
            "  postRenderers:\n    - kustomize:\n        patches:\n          - patch: |\n              \
             - op: add\n                path: /metadata/labels/fluxgate.io~1mode\n                \
             value: rw\n",
        );
        assert_eq!(run(&json_patch).len(), 1);
        // Gated as a whole, as advised: no finding.
        let gated = release("  chart:\n    spec:\n      chart: podinfo\n").replace(
            "  namespace: podinfo\n",
            "  namespace: podinfo\n  labels:\n    fluxgate.io/mode: rw\n    \
             fluxgate.io/window: business-hours\n",
        );
        assert!(run(&gated).is_empty(), "{:?}", run(&gated));
    }

    #[test]
    fn bypasses_are_judged_by_the_webhook_rule() {
        let reason = "fluxgate.io/bypass-reason: CVE hotfix";
        let cases = [
            // Valid: a warning to remove it later.
            (
                vec![reason, "fluxgate.io/bypass-until: '2026-11-27T18:00:00Z'"],
                check::BYPASS_IN_PLACE,
                Severity::Warning,
                "until 2026-11-27T18:00:00Z (CVE hotfix)",
            ),
            (
                vec![reason, "fluxgate.io/bypass-until: '2026-11-26T18:00:00Z'"],
                check::INVALID_BYPASS,
                Severity::Error,
                "has expired",
            ),
            (
                vec![reason, "fluxgate.io/bypass-until: '2026-12-27T18:00:00Z'"],
                check::INVALID_BYPASS,
                Severity::Error,
                "more than 24h ahead",
            ),
            (
                vec![reason, "fluxgate.io/bypass-until: tomorrow"],
                check::INVALID_BYPASS,
                Severity::Error,
                "not an RFC 3339 time",
            ),
            (
                vec!["fluxgate.io/bypass-until: '2026-11-27T18:00:00Z'"],
                check::INVALID_BYPASS,
                Severity::Error,
                "bypass-reason is missing",
            ),
        ];
        for (annotations, check, severity, text) in cases {
            let findings = run(&object("Deployment", "nginx", &[RW, BH], &annotations));
            assert_eq!(findings.len(), 1, "{annotations:?}: {findings:?}");
            assert_eq!((findings[0].check, findings[0].severity), (check, severity));
            assert!(findings[0].message.contains(text), "{:?}", findings[0]);
        }
        let findings = run(&object("ConfigMap", "c", &[RT], &[reason]));
        assert_eq!(
            checks(&findings),
            vec![(check::BYPASS_NOT_RW, Severity::Warning, "ConfigMap nginx/c")]
        );
    }

    #[test]
    fn bad_modes_rw_namespaces_and_crds_and_misplaced_keys() {
        let crd = "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: x.example.com\n  labels:\n    fluxgate.io/mode: rw\n";
        let namespace = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: nginx\n  labels:\n    fluxgate.io/mode: rw\n";
        let yaml = [
            object("Deployment", "upper", &["fluxgate.io/mode: RW"], &[]),
            namespace.to_owned(),
            crd.to_owned(),
            object("ConfigMap", "anno", &[], &[RW]),
            object("ConfigMap", "win", &[BH], &[]),
        ]
        .concat();
        let findings = run(&yaml);
        assert_eq!(
            checks(&findings),
            vec![
                (
                    check::INVALID_MODE,
                    Severity::Error,
                    "Deployment nginx/upper"
                ),
                (
                    check::MIXED_OWNER,
                    Severity::Error,
                    "in.yaml (objects without kustomize.toolkit.fluxcd.io/name labels)"
                ),
                (check::RW_EARLY_STAGE, Severity::Error, "Namespace nginx"),
                (
                    check::RW_EARLY_STAGE,
                    Severity::Error,
                    "CustomResourceDefinition x.example.com"
                ),
                (
                    check::LABEL_AS_ANNOTATION,
                    Severity::Warning,
                    "ConfigMap nginx/anno"
                ),
                (
                    check::WINDOW_NOT_RW,
                    Severity::Warning,
                    "ConfigMap nginx/win"
                ),
            ]
        );
    }

    #[test]
    fn windows_in_the_input_are_validated_and_become_known() {
        let yaml = r#"
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: maintenance
spec:
  schedules:
    - start: "0 22 * * *"
      duration: 2h
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: broken
spec:
  schedules:
    - open: "0 8 * * MON"
      close: "0 17 * * THURSDAY"
---
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: maintenance
spec:
  schedules:
    - start: "0 1 * * *"
      duration: 1h
"#;
        let manifests = parse_manifests("w.yaml", yaml).unwrap();
        let rw = parse_manifests(
            "app.yaml",
            &object(
                "Deployment",
                "d",
                &[RW, "fluxgate.io/window: maintenance"],
                &[],
            ),
        )
        .unwrap();
        let all: Vec<Manifest> = manifests.into_iter().chain(rw).collect();
        let findings = lint(&all, &windows(), &Policy::default(), now());
        assert_eq!(
            checks(&findings),
            vec![
                (
                    check::INVALID_WINDOW,
                    Severity::Error,
                    "ReconciliationWindow broken"
                ),
                (
                    check::INVALID_WINDOW,
                    Severity::Error,
                    "ReconciliationWindow maintenance"
                ),
            ]
        );
        assert_eq!(findings[0].at, "w.yaml:11");
        assert!(
            findings[0]
                .message
                .starts_with("ReconciliationWindow \"broken\": spec.schedules[0].close"),
            "{}",
            findings[0].message
        );
        assert!(
            findings[1]
                .message
                .contains("defined twice: first at w.yaml:2"),
            "{:?}",
            findings[1]
        );
    }
}
