//! The emergency bypass: `fluxgate.io/bypass-reason` + `fluxgate.io/bypass-until`.
//!
//! A bypass is bounded on purpose: a human reason, an expiry in the future and no more than
//! `--max-bypass` ahead, so a forgotten annotation cannot disable a window for good.

use super::{BYPASS_REASON_ANNOTATION, BYPASS_UNTIL_ANNOTATION};
use crate::duration::format_duration;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use std::collections::BTreeMap;

/// The bypass annotations as found on an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bypass {
    pub reason: Option<String>,
    pub until: Option<String>,
}

/// Why a bypass is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BypassError(String);

impl Bypass {
    /// The bypass annotations of an object, or `None` when it has neither.
    pub(crate) fn from_annotations(annotations: &BTreeMap<String, String>) -> Option<Self> {
        let reason = annotations.get(BYPASS_REASON_ANNOTATION).cloned();
        let until = annotations.get(BYPASS_UNTIL_ANNOTATION).cloned();
        (reason.is_some() || until.is_some()).then_some(Bypass { reason, until })
    }

    /// Checks the bypass at `now`; on success returns its expiry.
    pub fn validate(
        &self,
        now: DateTime<Utc>,
        max_ahead: Duration,
    ) -> Result<DateTime<Utc>, BypassError> {
        if self.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(BypassError(format!(
                "annotation {BYPASS_REASON_ANNOTATION} is missing or empty: say why this change \
                 cannot wait"
            )));
        }
        let Some(text) = self.until.as_deref() else {
            return Err(BypassError(format!(
                "annotation {BYPASS_UNTIL_ANNOTATION} is missing: give an RFC 3339 expiry at \
                 most {} ahead",
                format_duration(max_ahead)
            )));
        };
        let until = DateTime::parse_from_rfc3339(text.trim())
            .map_err(|_| {
                BypassError(format!(
                    "annotation {BYPASS_UNTIL_ANNOTATION} {text:?} is not an RFC 3339 time \
                     (e.g. 2026-11-27T18:00:00Z)"
                ))
            })?
            .with_timezone(&Utc);
        if until <= now {
            return Err(BypassError(format!(
                "annotation {BYPASS_UNTIL_ANNOTATION} {text:?} has expired (now is {})",
                now.to_rfc3339_opts(SecondsFormat::Secs, true)
            )));
        }
        if until > now + max_ahead {
            return Err(BypassError(format!(
                "annotation {BYPASS_UNTIL_ANNOTATION} {text:?} is more than {} ahead (the \
                 latest allowed now is {})",
                format_duration(max_ahead),
                (now + max_ahead).to_rfc3339_opts(SecondsFormat::Secs, true)
            )));
        }
        Ok(until)
    }
}
