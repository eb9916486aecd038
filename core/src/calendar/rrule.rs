//! RRULE (RFC 5545 3.3.10, 3.8.5.3): the rule parts fluxgate reads, and the expansion of a rule
//! into local start times.
//!
//! Expansion happens in local time, with no zone: instances keep DTSTART's time of day on the
//! clock, and the caller turns each into an instant in the event's zone. That is what RFC 5545
//! asks, and it keeps DST out of this file altogether (the cause of the open DST bugs of the
//! `rrule` crate, #109 and #115).
//!
//! The method is python-dateutil's, which RFC 5545 describes: step through the periods of FREQ
//! (every INTERVAL-th year, month, week or day from DTSTART's), take the days of each period
//! that every BYxxx part admits (BYDAY ordinals count within the month, or within the year for
//! a yearly rule without BYMONTH), keep BYSETPOS's picks among them, and stop at COUNT or UNTIL.

use super::lines::shorten;
use super::values::{When, parse_date, parse_date_time};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Weekday};

/// A parsed RRULE.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Rule {
    freq: Freq,
    interval: u32,
    pub(super) count: Option<u32>,
    pub(super) until: Option<When>,
    /// Bit `m` for month `m` (1–12).
    by_month: u16,
    /// Day numbers of the month, 1–31 or -31–-1.
    by_month_day: Vec<i8>,
    /// Weekdays, each with its ordinal (`-1MO`: the last Monday) or none (every one).
    by_day: Vec<(Option<i16>, Weekday)>,
    by_set_pos: Vec<i16>,
    week_start: Weekday,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Freq {
    Yearly,
    Monthly,
    Weekly,
    Daily,
}

/// The start times of a rule.
#[derive(Debug, PartialEq)]
pub(super) struct Expansion {
    pub(super) starts: Vec<NaiveDateTime>,
    /// Whether the rule goes on past the last day asked for.
    pub(super) truncated: bool,
}

/// Why expansion stopped short.
#[derive(Debug, PartialEq)]
pub(super) enum ExpandError {
    /// DTSTART is not the rule's first instance: RFC 5545 leaves such a set undefined, and
    /// implementations disagree on it (some add DTSTART, some count it against COUNT).
    Unsynchronised { first: NaiveDateTime },
    /// The work budget ran out.
    Budget,
}

/// The rule parts fluxgate expands, for messages.
const SUPPORTED: &str = "FREQ (YEARLY, MONTHLY, WEEKLY, DAILY), INTERVAL, COUNT, UNTIL, BYMONTH, \
                         BYMONTHDAY, BYDAY, BYSETPOS and WKST";

impl Rule {
    /// Parses an RRULE value. Every part the expansion does not implement is an error, never
    /// skipped: a skipped BYHOUR would move a freeze, not shrink it.
    pub(super) fn parse(text: &str) -> Result<Rule, String> {
        let mut freq = None;
        let mut rule = Rule {
            freq: Freq::Daily,
            interval: 1,
            count: None,
            until: None,
            by_month: 0,
            by_month_day: Vec::new(),
            by_day: Vec::new(),
            by_set_pos: Vec::new(),
            week_start: Weekday::Mon,
        };
        let mut seen: Vec<String> = Vec::new();
        for part in text.trim().split(';').filter(|p| !p.is_empty()) {
            let Some((name, value)) = part.split_once('=') else {
                return Err(format!("RRULE part {:?} has no '='", shorten(part)));
            };
            let name = name.trim().to_ascii_uppercase();
            if seen.contains(&name) {
                return Err(format!("RRULE gives {name} twice"));
            }
            seen.push(name.clone());
            let bad = |what: &str| format!("RRULE {name}={:?}: {what}", shorten(value));
            let list = || value.split(',').map(str::trim);
            match name.as_str() {
                "FREQ" => {
                    freq = Some(match value.trim().to_ascii_uppercase().as_str() {
                        "YEARLY" => Freq::Yearly,
                        "MONTHLY" => Freq::Monthly,
                        "WEEKLY" => Freq::Weekly,
                        "DAILY" => Freq::Daily,
                        "HOURLY" | "MINUTELY" | "SECONDLY" => {
                            return Err(bad(
                                "is not supported: a freeze repeats yearly, monthly, weekly or \
                                 daily (for more, write one event per run)",
                            ));
                        }
                        _ => return Err(bad("is not a frequency")),
                    })
                }
                "INTERVAL" => {
                    rule.interval = number(value, 1, 10_000)
                        .ok_or_else(|| bad("not a whole number from 1 to 10000"))?;
                }
                "COUNT" => {
                    rule.count = Some(
                        number(value, 1, u32::MAX)
                            .ok_or_else(|| bad("not a whole number of at least 1"))?,
                    );
                }
                "UNTIL" => {
                    let value = value.trim();
                    rule.until = Some(if value.len() == 8 {
                        When::Date(parse_date(value).ok_or_else(|| bad("not a date"))?)
                    } else if let Some(local) = value.strip_suffix(['Z', 'z']) {
                        When::Utc(parse_date_time(local).ok_or_else(|| bad("not a date-time"))?)
                    } else {
                        When::Floating(parse_date_time(value).ok_or_else(|| {
                            bad("not a date (YYYYMMDD) or date-time (YYYYMMDDTHHMMSSZ)")
                        })?)
                    });
                }
                "BYMONTH" => {
                    for v in list() {
                        let m = number(v, 1, 12).ok_or_else(|| bad("months are 1 to 12"))?;
                        rule.by_month |= 1 << m;
                    }
                }
                "BYMONTHDAY" => {
                    for v in list() {
                        let d =
                            signed(v, 31).ok_or_else(|| bad("days are 1 to 31 or -31 to -1"))?;
                        rule.by_month_day.push(d as i8);
                    }
                }
                "BYDAY" => {
                    for v in list() {
                        rule.by_day.push(by_day(v).ok_or_else(|| {
                            bad(
                                "days are MO, TU, WE, TH, FR, SA, SU, each with an optional \
                                 ordinal (1MO, -1FR)",
                            )
                        })?);
                    }
                }
                "BYSETPOS" => {
                    for v in list() {
                        rule.by_set_pos.push(
                            signed(v, 366)
                                .ok_or_else(|| bad("positions are 1 to 366 or -366 to -1"))?,
                        );
                    }
                }
                "WKST" => {
                    rule.week_start =
                        weekday(value.trim()).ok_or_else(|| bad("not a weekday (MO … SU)"))?;
                }
                "BYSECOND" | "BYMINUTE" | "BYHOUR" | "BYYEARDAY" | "BYWEEKNO" => {
                    return Err(format!(
                        "RRULE part {name} is not supported (fluxgate expands {SUPPORTED})"
                    ));
                }
                _ => {
                    return Err(format!(
                        "RRULE part {:?} is not an RRULE part fluxgate knows (it expands \
                         {SUPPORTED})",
                        shorten(&name)
                    ));
                }
            }
        }
        rule.freq = freq.ok_or("RRULE has no FREQ (e.g. FREQ=YEARLY)")?;
        if rule.count.is_some() && rule.until.is_some() {
            return Err("RRULE gives both COUNT and UNTIL: give one".into());
        }
        if rule.by_day.iter().any(|(n, _)| n.is_some())
            && !matches!(rule.freq, Freq::Monthly | Freq::Yearly)
        {
            return Err(
                "RRULE: BYDAY ordinals (1MO, -1FR) count within a month or a year, so they need \
                 FREQ=MONTHLY or FREQ=YEARLY"
                    .into(),
            );
        }
        if rule.freq == Freq::Weekly && !rule.by_month_day.is_empty() {
            return Err("RRULE: BYMONTHDAY cannot be used with FREQ=WEEKLY (RFC 5545)".into());
        }
        if rule
            .by_day
            .iter()
            .any(|(n, _)| n.is_some_and(|n| n.abs() > 5))
            && (rule.freq == Freq::Monthly || rule.by_month != 0)
        {
            return Err("RRULE: a BYDAY ordinal within a month is 1 to 5 or -5 to -1".into());
        }
        if !rule.by_set_pos.is_empty()
            && rule.by_month_day.is_empty()
            && rule.by_day.is_empty()
            && rule.by_month == 0
        {
            return Err(
                "RRULE: BYSETPOS picks among the days another BYxxx part gives (RFC 5545), and \
                 there is none"
                    .into(),
            );
        }
        Ok(rule)
    }

    /// The local start times of the rule from `start` (DTSTART, which must be the first), in
    /// order, while `within(t)` holds (UNTIL) and up to `last_day`, at most COUNT of them.
    /// `budget` counts the days looked at, so that no rule can keep the parser busy.
    pub(super) fn expand(
        &self,
        start: NaiveDateTime,
        within: &dyn Fn(NaiveDateTime) -> bool,
        last_day: NaiveDate,
        budget: &mut u64,
    ) -> Result<Expansion, ExpandError> {
        let first = start.date();
        let time = start.time();
        // RFC 5545's defaults: without day parts, a rule repeats DTSTART's day (and month).
        let mut by_month = self.by_month;
        let mut by_month_day = self.by_month_day.clone();
        let mut by_day = self.by_day.clone();
        if by_month_day.is_empty() && by_day.is_empty() {
            match self.freq {
                Freq::Yearly => {
                    if by_month == 0 {
                        by_month = 1 << first.month();
                    }
                    by_month_day.push(first.day() as i8);
                }
                Freq::Monthly => by_month_day.push(first.day() as i8),
                Freq::Weekly => by_day.push((None, first.weekday())),
                Freq::Daily => {}
            }
        }
        let filter = Filter {
            by_month_day: &by_month_day,
            by_day: &by_day,
            // A yearly rule's ordinals count in the year unless BYMONTH narrows it to months.
            ordinal_in_year: self.freq == Freq::Yearly && self.by_month == 0,
        };
        let mut out = Vec::new();
        let mut candidates = Vec::new();
        let done = |starts, truncated| Ok(Expansion { starts, truncated });
        for k in 0u64.. {
            let Some((from, days)) = self.period(first, k) else {
                break;
            };
            if from > last_day {
                return done(out, true);
            }
            candidates.clear();
            let end = from + Duration::days(i64::from(days));
            let mut day = from;
            while day < end {
                *budget = budget.checked_sub(1).ok_or(ExpandError::Budget)?;
                if by_month != 0 && by_month & (1 << day.month()) == 0 {
                    // A month the rule does not want: on to the next (a yearly rule looks at
                    // its months only, not at 365 days).
                    day += Duration::days(i64::from(days_in_month(day) - day.day0()));
                    continue;
                }
                if filter.admits(day) {
                    candidates.push(day);
                }
                day += Duration::days(1);
            }
            if !self.by_set_pos.is_empty() {
                let n = candidates.len() as i64;
                let mut picked: Vec<NaiveDate> = self
                    .by_set_pos
                    .iter()
                    .filter_map(|&p| {
                        let i = if p > 0 {
                            i64::from(p) - 1
                        } else {
                            n + i64::from(p)
                        };
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| candidates.get(i).copied())
                    })
                    .collect();
                picked.sort_unstable();
                picked.dedup();
                candidates = picked;
            }
            for &day in &candidates {
                let t = day.and_time(time);
                if t < start {
                    continue;
                }
                if out.is_empty() && t != start {
                    return Err(ExpandError::Unsynchronised { first: t });
                }
                if day > last_day {
                    return done(out, true);
                }
                if !within(t) {
                    return done(out, false);
                }
                out.push(t);
                if self.count.is_some_and(|c| out.len() as u64 >= u64::from(c)) {
                    return done(out, false);
                }
            }
        }
        done(out, false)
    }

    /// The first day and the length in days of period `k` (0 is DTSTART's), `None` past
    /// chrono's range.
    fn period(&self, first: NaiveDate, k: u64) -> Option<(NaiveDate, u32)> {
        let step = i64::try_from(k.checked_mul(u64::from(self.interval))?).ok()?;
        match self.freq {
            Freq::Yearly => {
                let year = i64::from(first.year()).checked_add(step)?;
                let from = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, 1, 1)?;
                Some((from, if from.leap_year() { 366 } else { 365 }))
            }
            Freq::Monthly => {
                let index = i64::from(first.year()) * 12 + i64::from(first.month0()) + step;
                let from = NaiveDate::from_ymd_opt(
                    i32::try_from(index.div_euclid(12)).ok()?,
                    u32::try_from(index.rem_euclid(12)).ok()? + 1,
                    1,
                )?;
                Some((from, days_in_month(from)))
            }
            Freq::Weekly => {
                let back = (7 + first.weekday().num_days_from_monday()
                    - self.week_start.num_days_from_monday())
                    % 7;
                let week = first.checked_sub_signed(Duration::days(i64::from(back)))?;
                let from = week.checked_add_signed(Duration::try_weeks(step)?)?;
                Some((from, 7))
            }
            Freq::Daily => Some((first.checked_add_signed(Duration::try_days(step)?)?, 1)),
        }
    }
}

/// The day parts of a rule, after RFC 5545's defaults.
struct Filter<'a> {
    by_month_day: &'a [i8],
    by_day: &'a [(Option<i16>, Weekday)],
    ordinal_in_year: bool,
}

impl Filter<'_> {
    /// Whether `day` (already in one of the months) passes the day-of-month and weekday parts:
    /// both must admit it when both are given (FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13).
    fn admits(&self, day: NaiveDate) -> bool {
        let month_days = days_in_month(day) as i32;
        let d = day.day() as i32;
        if !self.by_month_day.is_empty()
            && !self
                .by_month_day
                .iter()
                .any(|&m| i32::from(m) == d || i32::from(m) == d - month_days - 1)
        {
            return false;
        }
        if self.by_day.is_empty() {
            return true;
        }
        let weekday = day.weekday();
        let (index, length) = if self.ordinal_in_year {
            let length = if day.leap_year() { 366 } else { 365 };
            (day.ordinal0() as i32, length)
        } else {
            (d - 1, month_days)
        };
        let forward = index / 7 + 1;
        let backward = -((length - 1 - index) / 7 + 1);
        self.by_day.iter().any(|&(n, w)| {
            w == weekday && n.is_none_or(|n| i32::from(n) == forward || i32::from(n) == backward)
        })
    }
}

fn days_in_month(day: NaiveDate) -> u32 {
    let (y, m) = (day.year(), day.month());
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    next.and_then(|n| n.pred_opt())
        .map_or(31, |last| last.day())
}

fn number(text: &str, min: u32, max: u32) -> Option<u32> {
    let text = text.trim().strip_prefix('+').unwrap_or(text.trim());
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>()
        .ok()
        .filter(|n| (u64::from(min)..=u64::from(max)).contains(n))
        .map(|n| n as u32)
}

/// 1..=max or -max..=-1.
fn signed(text: &str, max: u32) -> Option<i16> {
    let (negative, digits) = match text.trim().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.trim()),
    };
    let n = i16::try_from(number(digits, 1, max)?).ok()?;
    Some(if negative { -n } else { n })
}

fn by_day(text: &str) -> Option<(Option<i16>, Weekday)> {
    let text = text.trim();
    let split = text.len().checked_sub(2)?;
    let (ordinal, day) = (text.get(..split)?, text.get(split..)?);
    let ordinal = if ordinal.is_empty() {
        None
    } else {
        Some(signed(ordinal, 53)?)
    };
    Some((ordinal, weekday(day)?))
}

fn weekday(text: &str) -> Option<Weekday> {
    Some(match text.to_ascii_uppercase().as_str() {
        "MO" => Weekday::Mon,
        "TU" => Weekday::Tue,
        "WE" => Weekday::Wed,
        "TH" => Weekday::Thu,
        "FR" => Weekday::Fri,
        "SA" => Weekday::Sat,
        "SU" => Weekday::Sun,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(rule: &str, start: &str, n: usize) -> Vec<String> {
        let rule = Rule::parse(rule).unwrap();
        let start = parse_date(start).unwrap().and_time(chrono::NaiveTime::MIN);
        let last = NaiveDate::from_ymd_opt(2100, 1, 1).unwrap();
        let mut budget = 10_000_000;
        rule.expand(start, &|_| true, last, &mut budget)
            .unwrap()
            .starts
            .into_iter()
            .take(n)
            .map(|t| t.date().format("%Y-%m-%d").to_string())
            .collect()
    }

    #[test]
    fn last_monday_of_may() {
        assert_eq!(
            dates("FREQ=YEARLY;BYDAY=-1MO;BYMONTH=5", "20260525", 3),
            ["2026-05-25", "2027-05-31", "2028-05-29"]
        );
    }

    #[test]
    fn last_weekday_of_the_month_by_setpos() {
        assert_eq!(
            dates(
                "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
                "20260130",
                4
            ),
            ["2026-01-30", "2026-02-27", "2026-03-31", "2026-04-30"]
        );
    }

    #[test]
    fn the_31st_skips_short_months() {
        assert_eq!(
            dates("FREQ=MONTHLY;COUNT=4", "20260131", 10),
            ["2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31"]
        );
    }

    #[test]
    fn leap_day_yearly() {
        assert_eq!(
            dates("FREQ=YEARLY;COUNT=2", "20240229", 10),
            ["2024-02-29", "2028-02-29"]
        );
    }

    #[test]
    fn twentieth_monday_of_the_year() {
        assert_eq!(
            dates("FREQ=YEARLY;BYDAY=20MO", "20260518", 2),
            ["2026-05-18", "2027-05-17"]
        );
    }

    #[test]
    fn an_unsynchronised_dtstart_is_refused() {
        let rule = Rule::parse("FREQ=MONTHLY;BYDAY=-1FR").unwrap();
        let start = parse_date("20260101")
            .unwrap()
            .and_time(chrono::NaiveTime::MIN);
        let mut budget = 1_000_000;
        let last = NaiveDate::from_ymd_opt(2100, 1, 1).unwrap();
        assert!(matches!(
            rule.expand(start, &|_| true, last, &mut budget),
            Err(ExpandError::Unsynchronised { .. })
        ));
    }

    #[test]
    fn parts_not_expanded_are_errors() {
        for rule in [
            "FREQ=HOURLY",
            "FREQ=DAILY;BYHOUR=9",
            "FREQ=YEARLY;BYWEEKNO=1",
            "FREQ=DAILY;X-FOO=1",
            "FREQ=WEEKLY;BYDAY=1MO",
            "FREQ=WEEKLY;BYMONTHDAY=1",
            "FREQ=DAILY;COUNT=1;UNTIL=20260101",
            "FREQ=DAILY;FREQ=DAILY",
            "INTERVAL=2",
            "FREQ=DAILY;BYSETPOS=1",
            "FREQ=MONTHLY;BYDAY=6MO",
            "FREQ=DAILY;INTERVAL=0",
            "FREQ=DAILY;COUNT=-1",
            "FREQ=DAILY;BYMONTH=13",
        ] {
            assert!(Rule::parse(rule).is_err(), "{rule}");
        }
    }
}
