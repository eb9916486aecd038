//! The value types of the properties a freeze is made of: DATE, DATE-TIME (floating, UTC or
//! with a TZID), DURATION (RFC 5545 3.3.4, 3.3.5, 3.3.6), and how a local time becomes an
//! instant.

use super::lines::{Line, shorten};
use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A DATE or DATE-TIME value as written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum When {
    /// A whole day, in the window's zone.
    Date(NaiveDate),
    /// No zone: the window's.
    Floating(NaiveDateTime),
    /// `Z`.
    Utc(NaiveDateTime),
    /// `TZID=…`, an IANA zone.
    Zoned(NaiveDateTime, Tz),
}

/// The zone a recurrence is expanded in: instances keep their local time of day in it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Zone {
    /// All-day, in the window's zone.
    Dates,
    /// Floating: the window's zone.
    Floating,
    Utc,
    Tz(Tz),
}

impl When {
    pub(super) fn zone(&self) -> Zone {
        match self {
            When::Date(_) => Zone::Dates,
            When::Floating(_) => Zone::Floating,
            When::Utc(_) => Zone::Utc,
            When::Zoned(_, tz) => Zone::Tz(*tz),
        }
    }

    /// The local date and time as written (midnight for a date).
    pub(super) fn local(&self) -> NaiveDateTime {
        match self {
            When::Date(d) => d.and_time(NaiveTime::MIN),
            When::Floating(t) | When::Utc(t) | When::Zoned(t, _) => *t,
        }
    }

    /// The instant it names, floating times and dates read in `window` (a date: its first
    /// instant).
    pub(super) fn instant(&self, window: Tz) -> DateTime<Utc> {
        self.zone().instant(self.local(), window)
    }

    pub(super) fn is_date(&self) -> bool {
        matches!(self, When::Date(_))
    }

    /// What kind of value it is, for messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            When::Date(_) => "a date",
            When::Floating(_) => "a floating date-time (no zone)",
            When::Utc(_) => "a UTC date-time",
            When::Zoned(..) => "a date-time with a TZID",
        }
    }
}

impl Zone {
    /// The instant of local time `local` in this zone (the window's zone for dates and floating
    /// times).
    pub(super) fn instant(&self, local: NaiveDateTime, window: Tz) -> DateTime<Utc> {
        match self {
            Zone::Utc => local.and_utc(),
            Zone::Dates | Zone::Floating => resolve(window, local),
            Zone::Tz(tz) => resolve(*tz, local),
        }
    }

    /// The local time of `t` in this zone.
    pub(super) fn local(&self, t: DateTime<Utc>, window: Tz) -> NaiveDateTime {
        match self {
            Zone::Utc => t.naive_utc(),
            Zone::Dates | Zone::Floating => t.with_timezone(&window).naive_local(),
            Zone::Tz(tz) => t.with_timezone(tz).naive_local(),
        }
    }
}

/// RFC 5545 3.3.5: a local time that occurs twice means the first; one skipped by a gap is read
/// with the UTC offset before the gap (02:30 in a 02:00→03:00 gap is 03:30 after it), as
/// calendar applications and Python's zoneinfo (fold=0) do. This differs on purpose from the
/// freezes written in a window, which follow the cron's rule (the first minute after the gap):
/// here the calendar's own standard decides.
pub(super) fn resolve(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => {
            // The offset before the gap is the one of any local time shortly before it; gaps
            // are at most a day long (Samoa, 2011).
            let mut probe = local;
            for _ in 0..48 {
                probe -= Duration::hours(1);
                if let LocalResult::Single(t) | LocalResult::Ambiguous(_, t) =
                    tz.from_local_datetime(&probe)
                {
                    let offset = t.naive_local() - t.naive_utc();
                    return (local - offset).and_utc();
                }
            }
            // No zone has a gap this long; read it as UTC rather than fail.
            local.and_utc()
        }
    }
}

/// A DATE or DATE-TIME property value (DTSTART, DTEND, RECURRENCE-ID): `VALUE=DATE` or 8 digits
/// is a date (many files leave out `VALUE=DATE`; the value cannot be read any other way),
/// otherwise a date-time, in its `TZID` if it has one.
pub(super) fn when(line: &Line) -> Result<When, String> {
    let value = line.value.trim();
    match line
        .param_value("VALUE")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("DATE" | "DATE-TIME") => {}
        Some(other) => {
            return Err(format!(
                "{}: VALUE={other} is not supported here (only DATE and DATE-TIME)",
                line.name
            ));
        }
    }
    let date = match line.param_value("VALUE") {
        Some(kind) => kind.eq_ignore_ascii_case("DATE"),
        None => value.len() == 8,
    };
    list_item(value, line.param_value("TZID"), date, &line.name)
}

/// One DATE or DATE-TIME of a property value (`date` says which), in `tzid` if given.
pub(super) fn list_item(
    value: &str,
    tzid: Option<&str>,
    date: bool,
    property: &str,
) -> Result<When, String> {
    if date {
        if let Some(tzid) = tzid {
            return Err(format!(
                "{property}: a date (VALUE=DATE) cannot have a TZID ({tzid:?}): an all-day \
                 event is read in the window's time zone; remove TZID"
            ));
        }
        return parse_date(value)
            .map(When::Date)
            .ok_or_else(|| format!("{property}: {:?} is not a date (YYYYMMDD)", shorten(value)));
    }
    let not_a_date_time = || {
        format!(
            "{property}: {:?} is not a date-time (YYYYMMDDTHHMMSS, with Z for UTC)",
            shorten(value)
        )
    };
    let (local, utc) = match value.strip_suffix(['Z', 'z']) {
        Some(local) => (local, true),
        None => (value, false),
    };
    let local = parse_date_time(local).ok_or_else(not_a_date_time)?;
    match (tzid, utc) {
        (None, false) => Ok(When::Floating(local)),
        (None, true) => Ok(When::Utc(local)),
        (Some(tzid), false) => Ok(When::Zoned(local, time_zone(tzid)?)),
        (Some(tzid), true) => Err(format!(
            "{property}: {value:?} is UTC (Z) but also says TZID={tzid:?}: give one of them"
        )),
    }
}

/// A TZID: an IANA zone name. A VTIMEZONE's own rules are not read; the zone database decides,
/// so a TZID that is no IANA name (a Windows name, a `/vendor/…` path) is an error.
pub(super) fn time_zone(tzid: &str) -> Result<Tz, String> {
    tzid.trim().parse::<Tz>().map_err(|_| {
        format!(
            "TZID {:?} is not an IANA time zone (e.g. Europe/Berlin): fluxgate reads zones from \
             the IANA database, not from VTIMEZONE rules; name the zone by its IANA name",
            shorten(tzid)
        )
    })
}

/// `YYYYMMDD`.
pub(super) fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().ok();
    NaiveDate::from_ymd_opt(
        i32::try_from(number(0..4)?).ok()?,
        number(4..6)?,
        number(6..8)?,
    )
}

/// `YYYYMMDDTHHMMSS` (no zone). Second 60 (a leap second) is refused: chrono has none to give.
pub(super) fn parse_date_time(text: &str) -> Option<NaiveDateTime> {
    let (date, time) = text.split_once(['T', 't'])?;
    if time.len() != 6 || !time.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| time[range].parse::<u32>().ok();
    let time = NaiveTime::from_hms_opt(number(0..2)?, number(2..4)?, number(4..6)?)?;
    Some(parse_date(date)?.and_time(time))
}

/// A DURATION value: nominal days (weeks are seven) and exact seconds, as RFC 5545 3.3.6 has
/// them: a day follows the clock across a DST change, an hour does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Length {
    pub(super) days: i64,
    pub(super) seconds: i64,
}

/// The longest DURATION read: a freeze longer than a century is a typo, and the bound keeps the
/// arithmetic far inside chrono's range.
const MAX_DURATION_DAYS: i64 = 36_600;

/// `[+]P[nW][nD][T[nH][nM][nS]]`; negative durations are refused (an event ends after it
/// starts).
pub(super) fn parse_duration(text: &str) -> Result<Length, String> {
    let bad = || {
        format!(
            "DURATION {:?} is not a duration (e.g. P1D, PT8H, P1DT12H, P2W)",
            shorten(text)
        )
    };
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!(
            "DURATION {text:?} is negative: an event ends after it starts"
        ));
    }
    let body = text.strip_prefix('+').unwrap_or(text);
    let body = body.strip_prefix(['P', 'p']).ok_or_else(bad)?;
    let (mut days, mut seconds) = (0i64, 0i64);
    let mut in_time = false;
    let mut digits = String::new();
    let mut any = false;
    for c in body.chars() {
        match c.to_ascii_uppercase() {
            '0'..='9' => digits.push(c),
            'T' if !in_time && digits.is_empty() => in_time = true,
            unit @ ('W' | 'D' | 'H' | 'M' | 'S') => {
                let n: i64 = digits.parse().map_err(|_| bad())?;
                digits.clear();
                any = true;
                let n = n.min(MAX_DURATION_DAYS * 86_400 + 1);
                match (unit, in_time) {
                    ('W', false) => days += n.saturating_mul(7),
                    ('D', false) => days += n,
                    ('H', true) => seconds += n.saturating_mul(3600),
                    ('M', true) => seconds += n.saturating_mul(60),
                    ('S', true) => seconds += n,
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        }
    }
    if !any || !digits.is_empty() {
        return Err(bad());
    }
    if days.saturating_add(seconds / 86_400) > MAX_DURATION_DAYS {
        return Err(format!(
            "DURATION {text:?} is longer than {MAX_DURATION_DAYS} days"
        ));
    }
    Ok(Length { days, seconds })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Berlin;

    fn local(text: &str) -> NaiveDateTime {
        parse_date_time(text).unwrap()
    }

    #[test]
    fn gaps_take_the_offset_before_them_and_folds_the_first_time() {
        // 2026-03-29 02:30 does not exist in Berlin: read at +01:00, so 01:30Z (03:30 CEST).
        assert_eq!(
            resolve(Berlin, local("20260329T023000")).to_rfc3339(),
            "2026-03-29T01:30:00+00:00"
        );
        // 2026-10-25 02:30 happens twice: the first, at +02:00.
        assert_eq!(
            resolve(Berlin, local("20261025T023000")).to_rfc3339(),
            "2026-10-25T00:30:00+00:00"
        );
    }

    #[test]
    fn durations() {
        let d = |t| parse_duration(t);
        assert_eq!(
            d("P1D"),
            Ok(Length {
                days: 1,
                seconds: 0
            })
        );
        assert_eq!(
            d("P2W"),
            Ok(Length {
                days: 14,
                seconds: 0
            })
        );
        assert_eq!(
            d("P1DT2H30M5S"),
            Ok(Length {
                days: 1,
                seconds: 9005
            })
        );
        assert_eq!(
            d("PT8H"),
            Ok(Length {
                days: 0,
                seconds: 28_800
            })
        );
        for bad in [
            "",
            "P",
            "PT",
            "1D",
            "P1H",
            "PT1D",
            "P1",
            "-P1D",
            "P99999999999999999999D",
        ] {
            assert!(d(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dates_and_date_times() {
        assert_eq!(parse_date("20280229"), NaiveDate::from_ymd_opt(2028, 2, 29));
        assert_eq!(parse_date("20270229"), None);
        assert_eq!(parse_date_time("20260101T250000"), None);
        assert_eq!(parse_date_time("20261231T235960"), None);
        assert_eq!(parse_date("2026010"), None);
    }
}
