//! The aggregates of an audit review: counts by decision and reason, by window, by Flux owner,
//! the most denied objects, and every bypass. Memory grows with the number of distinct
//! windows, owners and denied objects, and with the number of bypasses, never with the number
//! of records.

use crate::audit::{AuditDecision, AuditOverride, AuditRecord};
use crate::policy::Reason;
use chrono::{DateTime, Utc};
use kube::core::admission::Operation;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Allowed and denied decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub allow: u64,
    pub deny: u64,
}

impl Counts {
    fn add(&mut self, record: &AuditRecord) {
        if record.decision == AuditDecision::Deny {
            self.deny += 1;
        } else {
            self.allow += 1;
        }
    }
}

/// Decisions of one kind (`allow` or `deny`) and their reasons.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DecisionCounts {
    pub total: u64,
    /// In the order of the specification's reasons.
    pub reasons: BTreeMap<Reason, u64>,
}

/// An object that was denied, how often, and the latest denial.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeniedObject {
    /// `Kind namespace/name`.
    pub object: String,
    pub denials: u64,
    pub last_time: DateTime<Utc>,
    pub last_reason: Reason,
    pub(crate) last_message: String,
}

/// One decision that consulted a bypass, valid or not: what an auditor asks for.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BypassEntry {
    pub time: DateTime<Utc>,
    pub(crate) uid: String,
    /// `Kind namespace/name`.
    pub object: String,
    /// Who made the change (the user of the request).
    pub actor: String,
    /// `fluxgate.io/bypass-reason`.
    pub reason: Option<String>,
    /// `fluxgate.io/bypass-until`, as written.
    pub until: Option<String>,
    /// True when the bypass admitted the change; false when it was invalid and the change denied.
    pub valid: bool,
    pub(crate) decision: AuditDecision,
    pub(crate) decision_reason: Reason,
    pub windows: Vec<String>,
    /// The Flux Kustomization or HelmRelease, `Kind namespace/name`.
    pub owner: Option<String>,
    pub(crate) operation: Operation,
    pub dry_run: bool,
}

/// One `spec.overrides` entry and the decisions it admitted: what an auditor asks for. Every
/// change made under an override carries it, so they are counted, not listed one by one.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverrideEntry {
    pub window: String,
    pub start: String,
    /// When the override ends (its expiry).
    pub end: String,
    pub reason: String,
    /// Decisions it admitted (dry-runs included).
    pub decisions: u64,
    pub first_time: DateTime<Utc>,
    pub last_time: DateTime<Utc>,
}

/// Running aggregates over the matching records.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    matched: u64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    by_decision: BTreeMap<String, DecisionCounts>,
    by_window: BTreeMap<String, Counts>,
    by_owner: BTreeMap<String, Counts>,
    denied: HashMap<String, DeniedObject>,
    bypasses: Vec<BypassEntry>,
    overrides: Vec<OverrideEntry>,
}

/// The aggregates, finished: what the table and `-o json` print after the records.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryReport {
    pub matched: u64,
    /// The earliest and latest matching records.
    pub first_time: Option<DateTime<Utc>>,
    pub last_time: Option<DateTime<Utc>>,
    /// `allow` / `deny` → total and by reason.
    pub by_decision: BTreeMap<String, DecisionCounts>,
    pub by_window: BTreeMap<String, Counts>,
    /// By Flux owner (`Kind namespace/name`); records without one (people, other tools) are
    /// not counted here.
    pub by_owner: BTreeMap<String, Counts>,
    /// The most denied objects, most denials first.
    pub top_denied: Vec<DeniedObject>,
    /// Every decision that consulted a bypass, in log order.
    pub bypasses: Vec<BypassEntry>,
    /// Every override that opened a window, in order of first use.
    pub overrides: Vec<OverrideEntry>,
}

/// `Kind namespace/name`, or `Kind name` for cluster-scoped objects.
pub fn object_display(record: &AuditRecord) -> String {
    crate::naming::object(&record.kind, record.namespace.as_deref(), &record.name)
}

/// `Kind namespace/name` of the record's Flux owner.
pub(crate) fn owner_display(record: &AuditRecord) -> Option<String> {
    let owner = record.owner.as_ref()?;
    Some(crate::naming::object(
        &owner.kind,
        owner.namespace.as_deref(),
        &owner.name,
    ))
}

// === impl Summary ===

impl Summary {
    /// Counts one matching record.
    pub(crate) fn add(&mut self, record: &AuditRecord) {
        self.matched += 1;
        self.first = Some(self.first.map_or(record.time, |t| t.min(record.time)));
        self.last = Some(self.last.map_or(record.time, |t| t.max(record.time)));
        let decision = self
            .by_decision
            .entry(record.decision.to_string())
            .or_default();
        decision.total += 1;
        *decision.reasons.entry(record.reason).or_default() += 1;
        for window in &record.windows {
            self.by_window
                .entry(window.name.clone())
                .or_default()
                .add(record);
        }
        if let Some(owner) = owner_display(record) {
            self.by_owner.entry(owner).or_default().add(record);
        }
        if record.decision == AuditDecision::Deny {
            let object = object_display(record);
            let entry = self
                .denied
                .entry(object.clone())
                .or_insert_with(|| DeniedObject {
                    object,
                    denials: 0,
                    last_time: record.time,
                    last_reason: record.reason,
                    last_message: String::new(),
                });
            entry.denials += 1;
            if record.time >= entry.last_time {
                entry.last_time = record.time;
                entry.last_reason = record.reason;
                entry.last_message.clone_from(&record.message);
            }
        }
        for window in &record.windows {
            if let Some(o) = &window.override_ {
                self.add_override(record.time, &window.name, o);
            }
        }
        if let Some(bypass) = &record.bypass {
            self.bypasses.push(BypassEntry {
                time: record.time,
                uid: record.uid.clone(),
                object: object_display(record),
                actor: record.user.clone(),
                reason: bypass.reason.clone(),
                until: bypass.until.clone(),
                valid: bypass.valid,
                decision: record.decision,
                decision_reason: record.reason,
                windows: record.windows.iter().map(|w| w.name.clone()).collect(),
                owner: owner_display(record),
                operation: record.operation.clone(),
                dry_run: record.dry_run,
            });
        }
    }

    fn add_override(&mut self, time: DateTime<Utc>, window: &str, o: &AuditOverride) {
        // Overrides are few (each is written in Git by hand): a scan is fine.
        let found = self.overrides.iter_mut().find(|e| {
            e.window == window && e.start == o.start && e.end == o.end && e.reason == o.reason
        });
        match found {
            Some(entry) => {
                entry.decisions += 1;
                entry.first_time = entry.first_time.min(time);
                entry.last_time = entry.last_time.max(time);
            }
            None => self.overrides.push(OverrideEntry {
                window: window.to_owned(),
                start: o.start.clone(),
                end: o.end.clone(),
                reason: o.reason.clone(),
                decisions: 1,
                first_time: time,
                last_time: time,
            }),
        }
    }

    /// The report, with the `top` most denied objects.
    pub(crate) fn finish(self, top: usize) -> SummaryReport {
        let mut denied: Vec<DeniedObject> = self.denied.into_values().collect();
        denied.sort_by(|a, b| {
            b.denials
                .cmp(&a.denials)
                .then_with(|| a.object.cmp(&b.object))
        });
        denied.truncate(top);
        SummaryReport {
            matched: self.matched,
            first_time: self.first,
            last_time: self.last,
            by_decision: self.by_decision,
            by_window: self.by_window,
            by_owner: self.by_owner,
            top_denied: denied,
            bypasses: self.bypasses,
            overrides: self.overrides,
        }
    }
}
