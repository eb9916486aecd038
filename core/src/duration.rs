//! Durations as Kubernetes and Flux write them (`2h`, `90m`, `1h30m`, `45s`).
//!
//! A subset of Go's `time.ParseDuration`: whole numbers with the units `h`, `m`, `s` and `ms`,
//! which is what `spec.schedules[].duration`, `--max-bypass` and the server's timeouts need.
//! Days are deliberately not a unit (a day is not always 24 hours across DST); write `24h`.
//!
//! Not `kube::core::Duration`, kube-rs's `metav1.Duration`: its parser (kube-core 5) multiplies
//! `f64`s into a `std::time::Duration`, so an overlong value (`99999999999999999999h`) panics,
//! and a window file must never panic the loader or the webhook. It also accepts what Go
//! refuses (the empty string, `-`, `1h0`, `+-5s`, `--5s`) and takes fractions through binary
//! floats where Go is exact. Guarding that needs a tokenizer of our own in front of it, which
//! is all this module is.

use chrono::Duration;

/// Why a duration was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

/// Parses a positive duration such as `2h` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let total = parse_duration_or_zero(text)?;
    if total.is_zero() {
        return Err(DurationError(format!(
            "{:?} is zero: a duration must be positive",
            text.trim()
        )));
    }
    Ok(total)
}

/// Parses a duration that may be zero (`0s`: "no delay").
pub fn parse_duration_or_zero(text: &str) -> Result<Duration, DurationError> {
    parse_exact(text).map_err(|error| match suggestion(text.trim()) {
        Some(fix) => DurationError(format!("{:?} is not a duration: write {fix}", text.trim())),
        None => error,
    })
}

/// What a person probably meant by a duration written in words (`2 hours`, `1 hour 30
/// minutes`, `90 mins`): the same in fluxgate's units, when that parses.
fn suggestion(text: &str) -> Option<String> {
    let mut fixed = String::new();
    for word in text.split_whitespace() {
        let digits = word.chars().take_while(char::is_ascii_digit).count();
        let (number, unit) = word.split_at(digits);
        let unit = match unit.to_ascii_lowercase().as_str() {
            "" => "",
            "h" | "hr" | "hrs" | "hour" | "hours" => "h",
            "m" | "min" | "mins" | "minute" | "minutes" => "m",
            "s" | "sec" | "secs" | "second" | "seconds" => "s",
            "ms" => "ms",
            _ => return None,
        };
        fixed.push_str(number);
        fixed.push_str(unit);
    }
    (fixed != text && parse_exact(&fixed).is_ok()).then_some(fixed)
}

fn parse_exact(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError("empty duration: write e.g. 2h or 90m".into()));
    }
    if trimmed.starts_with('-') {
        return Err(DurationError(format!(
            "{trimmed:?} is negative: a duration must be positive"
        )));
    }
    let mut total = Duration::zero();
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError(format!(
                "{trimmed:?} is not a duration: write whole numbers with h, m or s, e.g. 1h30m"
            )));
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.chars().take_while(char::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let value: i64 = number
            .parse()
            .map_err(|_| DurationError(format!("{trimmed:?}: {number} is too large")))?;
        let part = match unit {
            "h" => Duration::try_hours(value),
            "ms" => Duration::try_milliseconds(value),
            "m" => Duration::try_minutes(value),
            "s" => Duration::try_seconds(value),
            "" => {
                return Err(DurationError(format!(
                    "{trimmed:?} has no unit after {number}: use h, m, s or ms"
                )));
            }
            "d" => {
                return Err(DurationError(format!(
                    "{trimmed:?}: days are not a unit (a day is not always 24h): write hours, e.g. 24h"
                )));
            }
            other => {
                return Err(DurationError(format!(
                    "{trimmed:?} has unknown unit {other:?}: use h, m, s or ms"
                )));
            }
        };
        total = part
            .and_then(|part| total.checked_add(&part))
            .ok_or_else(|| DurationError(format!("{trimmed:?} is too large")))?;
        rest = tail;
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it (`1h30m`, `24h`, `45s`), straight
/// into the text that holds it (every denial message names the bypass limit).
pub(crate) fn format_duration(duration: Duration) -> DurationText {
    DurationText(duration)
}

/// See [`format_duration`].
pub(crate) struct DurationText(Duration);

impl std::fmt::Display for DurationText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.0.num_seconds();
        let (hours, minutes, seconds) = (total / 3600, (total % 3600) / 60, total % 60);
        if hours != 0 {
            write!(f, "{hours}h")?;
        }
        if minutes != 0 {
            write!(f, "{minutes}m")?;
        }
        if seconds != 0 || (hours == 0 && minutes == 0) {
            write!(f, "{seconds}s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kubernetes_style_durations() {
        assert_eq!(parse_duration("2h"), Ok(Duration::hours(2)));
        assert_eq!(parse_duration("90m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("45s"), Ok(Duration::seconds(45)));
        assert_eq!(parse_duration(" 24h "), Ok(Duration::hours(24)));
        assert_eq!(parse_duration("1s500ms"), Ok(Duration::milliseconds(1500)));
        assert_eq!(parse_duration_or_zero("0s"), Ok(Duration::zero()));
    }

    #[test]
    fn rejects_what_is_not_a_positive_duration() {
        for (text, want) in [
            ("0h", "is zero"),
            ("0s", "is zero"),
            ("-1h", "negative"),
            ("", "empty"),
            ("1d", "days are not a unit"),
            ("2", "no unit"),
            ("1.5h", "no unit"),
            ("h", "not a duration"),
            ("2 hours", "\"2 hours\" is not a duration: write 2h"),
            ("1 hour 30 minutes", "write 1h30m"),
            ("90 mins", "write 90m"),
            ("2 fortnights", "has no unit after 2"),
            ("2x", "unknown unit"),
            ("99999999999999999999h", "too large"),
        ] {
            let err = parse_duration(text).expect_err(text).to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn format_round_trips() {
        for text in ["2h", "1h30m", "45s", "24h", "1h0m5s"] {
            let parsed = parse_duration(text).unwrap();
            assert_eq!(
                parse_duration(&format_duration(parsed).to_string()),
                Ok(parsed)
            );
        }
        assert_eq!(format_duration(Duration::minutes(90)).to_string(), "1h30m");
    }
}
