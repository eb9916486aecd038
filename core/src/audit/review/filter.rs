//! Which audit records a review is about: time range, decision, reason, window, object, actor,
//! Flux owner, and whether dry-runs count.
//!
//! Pure: relative times (`--since 24h`) are resolved against an instant the caller passes in.

pub use crate::audit::AuditDecision;
use crate::audit::AuditRecord;
use crate::duration::parse_duration;
use crate::policy::Reason;
use crate::window::Enforcement;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// `--since` / `--until` as given: a duration before now, or an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSpec {
    /// `24h`: that long before now.
    Ago(Duration),
    /// `2026-11-27T12:00:00Z`.
    At(DateTime<Utc>),
}

impl TimeSpec {
    /// Parses a duration (`24h`, `90m`, and here also days: `7d`, `1d12h`) or an RFC 3339
    /// instant. Days are 24 hours: a review range does not need DST precision, unlike a
    /// window's duration (which is why `parse_duration` itself has no days).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Ok(TimeSpec::At(t.with_timezone(&Utc)));
        }
        let digits = text.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && text[digits..].starts_with('d') {
            let days: i64 = text[..digits]
                .parse()
                .ok()
                .filter(|d| *d <= 100_000)
                .ok_or_else(|| format!("{text:?}: too many days"))?;
            let rest = &text[digits + 1..];
            let rest = if rest.is_empty() {
                Duration::zero()
            } else {
                crate::duration::parse_duration_or_zero(rest)
                    .map_err(|e| format!("{text:?} is not a duration ({e})"))?
            };
            return Ok(TimeSpec::Ago(Duration::days(days) + rest));
        }
        parse_duration(text).map(TimeSpec::Ago).map_err(|e| {
            format!("{text:?} is neither a duration (e.g. 24h, 90m) nor an RFC 3339 time ({e})")
        })
    }

    /// The instant meant, `now` being the moment the review runs.
    pub fn resolve(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            TimeSpec::Ago(d) => now - d,
            TimeSpec::At(t) => t,
        }
    }
}

/// What to keep. Within one field the values are alternatives (any may match); fields combine
/// (all must match). Text values match exactly, except that `*` matches any run of characters;
/// `kinds` ignore case.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Records at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Records before this instant.
    pub until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<AuditDecision>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
    /// Any window involved in the decision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// `NAME`, `NAMESPACE/NAME` or `KIND/NAMESPACE/NAME` of the Flux Kustomization or HelmRelease.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
    /// `warn`: decisions admitted only because their closed windows are in Warn mode;
    /// `enforce`: all others.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub enforcements: Vec<Enforcement>,
    /// Flux dry-runs every object at every interval: the dry-runs it *admits* (drift checks) are
    /// noise and left out unless this is set. Denied dry-runs and bypasses are always kept:
    /// kustomize-controller stops a stage at its first failed dry-run, so a Flux change that
    /// fluxgate denies is normally seen only as a dry-run.
    pub include_dry_run: bool,
}

/// What a filter makes of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Match,
    /// Would match, but it is an admitted dry-run (not a bypass) and those are left out.
    HiddenDryRun,
    NoMatch,
}

impl Filter {
    pub(crate) fn check(&self, record: &AuditRecord) -> Verdict {
        if !self.matches_ignoring_dry_run(record) {
            Verdict::NoMatch
        } else if !self.include_dry_run && is_drift_check(record) {
            Verdict::HiddenDryRun
        } else {
            Verdict::Match
        }
    }

    fn matches_ignoring_dry_run(&self, r: &AuditRecord) -> bool {
        let any = |patterns: &[String], value: &str| {
            patterns.is_empty() || patterns.iter().any(|p| glob(p, value))
        };
        self.since.is_none_or(|since| r.time >= since)
            && self.until.is_none_or(|until| r.time < until)
            && (self.decisions.is_empty() || self.decisions.contains(&r.decision))
            && (self.reasons.is_empty() || self.reasons.contains(&r.reason))
            && (self.windows.is_empty() || r.windows.iter().any(|w| any(&self.windows, &w.name)))
            && any(&self.namespaces, r.namespace.as_deref().unwrap_or(""))
            && any(&self.names, &r.name)
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k.eq_ignore_ascii_case(&r.kind)))
            && any(&self.users, &r.user)
            && (self.owners.is_empty() || self.owners.iter().any(|o| owner_matches(o, r)))
            && (self.enforcements.is_empty()
                || self
                    .enforcements
                    .iter()
                    .any(|e| e.as_str() == enforcement(r)))
    }
}

/// An admitted dry-run that used no bypass and that Warn mode did not admit (it would have
/// been denied): what Flux sends at every interval to detect drift.
fn is_drift_check(record: &AuditRecord) -> bool {
    record.dry_run
        && record.decision == AuditDecision::Allow
        && record.bypass.is_none()
        && record.enforcement.is_none()
}

/// `warn` or `enforce`, as `--enforcement` spells it.
pub(crate) fn enforcement(record: &AuditRecord) -> &str {
    record
        .enforcement
        .as_deref()
        .unwrap_or(Enforcement::Enforce.as_str())
}

/// `NAME`, `NAMESPACE/NAME` or `KIND/NAMESPACE/NAME` against the record's Flux owner.
fn owner_matches(pattern: &str, record: &AuditRecord) -> bool {
    let Some(owner) = &record.owner else {
        return false;
    };
    let namespace = owner.namespace.as_deref().unwrap_or("");
    let parts: Vec<&str> = pattern.split('/').collect();
    match parts.as_slice() {
        [name] => glob(name, &owner.name),
        [ns, name] => glob(ns, namespace) && glob(name, &owner.name),
        [kind, ns, name] => {
            kind.eq_ignore_ascii_case(&owner.kind) && glob(ns, namespace) && glob(name, &owner.name)
        }
        _ => false,
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (even none).
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // The classic linear backtracking matcher: remember the last star and retry from there.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}
