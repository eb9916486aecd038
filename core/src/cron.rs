//! The cron dialect of Kubernetes CronJob, evaluated in a time zone.
//!
//! Kubernetes parses `spec.schedule` with robfig/cron v3's standard parser: five fields
//! (minute hour day-of-month month day-of-week), names `JAN`…`DEC` and `SUN`…`SAT`, ranges,
//! lists, steps, `?` as `*`, and the descriptors `@yearly @annually @monthly @weekly @daily
//! @midnight @hourly`. When both day fields are restricted a day matches if *either* does; a
//! field counts as unrestricted only when it is `*` or `?` (so `*/2` restricts, as in robfig).
//! We also accept day-of-week `7` for Sunday, as every other cron does.
//!
//! This is our own small implementation rather than a translation to the `cron` crate: that
//! crate numbers days of the week from 1 = Sunday, wants 6–7 fields, and its behaviour across
//! DST changes is not the one fluxgate promises. Owning the ~300 lines lets the DST rules below
//! be exact and tested:
//!
//! - a wall-clock time skipped by a DST gap fires at the first instant after the gap;
//! - a wall-clock time that occurs twice (DST fold) fires once, at its first occurrence;
//! - fires that land on one instant (the minutes a gap skips, and the one that ends it) keep the
//!   order of their wall-clock times ([`Fire`]), which is how an open/close pair orders them.
//!
//! This module does no I/O and reads no clock: every search takes the instant it starts from.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;

/// How far a search looks before it gives up: ten years covers the longest real gap between two
/// fires of a valid schedule (`0 0 29 2 *`, eight years around 2100) with room to spare.
pub(crate) const SEARCH_HORIZON_DAYS: i64 = 3660;

/// A parsed five-field schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    source: String,
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days_of_month: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, 0 = Sunday.
    days_of_week: u8,
    dom_star: bool,
    dow_star: bool,
    /// `W#N` in day-of-week (the Nth weekday W of the month, as Quartz and Fleet write it):
    /// bit `W * 5 + N - 1`. Robfig and so Kubernetes refuse `#`, so no valid CronJob
    /// expression means anything else here.
    nth_weekdays: u64,
}

/// Why a cron expression was rejected. The message never repeats the expression: callers put
/// it next to the field that held it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(String);

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
/// Day-of-week allows 7 (Sunday again); it is folded onto 0 after parsing.
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// Days in each month of a leap year: the most a schedule can ever hope for.
const MAX_DAYS_IN_MONTH: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

// === impl Cron ===

impl Cron {
    /// Parses the Kubernetes CronJob dialect.
    pub fn parse(expr: &str) -> Result<Self, CronError> {
        let trimmed = expr.trim();
        let expanded = match trimmed {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with("@every") => {
                return Err(CronError(
                    "@every is not supported: use a start schedule with a duration".into(),
                ));
            }
            other if other.starts_with('@') => {
                return Err(CronError(format!(
                    "unknown descriptor {other:?}: expected one of @yearly, @annually, @monthly, \
                     @weekly, @daily, @midnight, @hourly"
                )));
            }
            other if other.starts_with("TZ=") || other.starts_with("CRON_TZ=") => {
                return Err(CronError(
                    "time zone prefixes are not supported: set spec.timeZone instead".into(),
                ));
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            )));
        }
        let (minutes, _) = parse_field(fields[0], &MINUTE)?;
        let (hours, _) = parse_field(fields[1], &HOUR)?;
        let (days_of_month, dom_star) = parse_field(fields[2], &DAY_OF_MONTH)?;
        let (months, _) = parse_field(fields[3], &MONTH)?;
        let (nth_weekdays, plain) = parse_nth_weekdays(fields[4])?;
        let (dow_bits, dow_star) = match plain {
            Some(plain) => parse_field(&plain, &DAY_OF_WEEK)?,
            None => (0, false),
        };
        // Fold 7 (Sunday) onto 0.
        let days_of_week = ((dow_bits | (dow_bits >> 7)) & 0x7f) as u8;
        let cron = Cron {
            source: trimmed.to_owned(),
            minutes,
            hours: hours as u32,
            days_of_month: days_of_month as u32,
            months: months as u16,
            days_of_week,
            dom_star,
            dow_star,
            nth_weekdays,
        };
        if !cron.can_fire() {
            return Err(CronError(
                "this schedule can never fire: no month has such a day".into(),
            ));
        }
        Ok(cron)
    }

    /// The expression as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Only a restricted day-of-month with an unrestricted day-of-week can exclude every day
    /// (`0 0 30 2 *`); a restricted day-of-week always matches some day of any month.
    fn can_fire(&self) -> bool {
        if !self.dow_star {
            return true;
        }
        (1..=12u32).any(|month| {
            self.months & (1 << month) != 0
                && (1..=MAX_DAYS_IN_MONTH[month as usize - 1])
                    .any(|day| self.days_of_month & (1 << day) != 0)
        })
    }

    /// Whether both day fields are restricted, so that a day matches when *either* does
    /// (`0 2 1-7 * SUN` fires on days 1 to 7 and on every Sunday): the rule of every standard
    /// cron, and a common surprise.
    pub(crate) fn days_either(&self) -> bool {
        !self.dom_star && !self.dow_star
    }

    /// Whether two schedules fire at exactly the same wall-clock minutes.
    pub(crate) fn same_fires(&self, other: &Cron) -> bool {
        Cron {
            source: String::new(),
            ..self.clone()
        } == Cron {
            source: String::new(),
            ..other.clone()
        }
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let weekday = date.weekday().num_days_from_sunday();
        let nth = (date.day() - 1) / 7;
        let dow = self.days_of_week & (1 << weekday) != 0
            || self.nth_weekdays & (1 << (weekday * 5 + nth)) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// Whether the month and day fields match `day`.
    fn day_fires(&self, day: NaiveDate) -> bool {
        self.months & (1 << day.month()) != 0 && self.day_matches(day)
    }

    /// Whether a wall-clock minute matches every field.
    pub fn matches(&self, t: NaiveDateTime) -> bool {
        self.months & (1 << t.month()) != 0
            && self.day_matches(t.date())
            && self.hours & (1 << t.hour()) != 0
            && self.minutes & (1 << t.minute()) != 0
    }

    /// The first matching wall-clock minute at or after `from` (rounded up to a whole minute),
    /// not later than `limit`.
    pub(crate) fn next_local(
        &self,
        from: NaiveDateTime,
        limit: NaiveDate,
    ) -> Option<NaiveDateTime> {
        let mut t = ceil_minute(from);
        loop {
            if t.date() > limit {
                return None;
            }
            if self.months & (1 << t.month()) == 0 {
                t = first_of_next_month(t.date())?.and_time(NaiveTime::MIN);
                continue;
            }
            if !self.day_matches(t.date()) {
                t = t.date().succ_opt()?.and_time(NaiveTime::MIN);
                continue;
            }
            match next_bit(self.hours as u64, t.hour()) {
                None => {
                    t = t.date().succ_opt()?.and_time(NaiveTime::MIN);
                    continue;
                }
                Some(h) if h != t.hour() => {
                    t = t.date().and_hms_opt(h, 0, 0)?;
                }
                Some(_) => {}
            }
            match next_bit(self.minutes, t.minute()) {
                Some(m) => return t.date().and_hms_opt(t.hour(), m, 0),
                None => {
                    // No minute left in this hour: try the next hour.
                    t = t.date().and_hms_opt(t.hour(), 0, 0)? + Duration::hours(1);
                }
            }
        }
    }

    /// The last matching wall-clock minute at or before `from` (rounded down to a whole
    /// minute), not earlier than `limit`.
    pub(crate) fn prev_local(
        &self,
        from: NaiveDateTime,
        limit: NaiveDate,
    ) -> Option<NaiveDateTime> {
        let mut t = floor_minute(from);
        loop {
            if t.date() < limit {
                return None;
            }
            if self.months & (1 << t.month()) == 0 {
                t = first_of_month(t.date()).and_time(NaiveTime::MIN) - Duration::minutes(1);
                continue;
            }
            if !self.day_matches(t.date()) {
                t = t.date().and_time(NaiveTime::MIN) - Duration::minutes(1);
                continue;
            }
            match prev_bit(self.hours as u64, t.hour()) {
                None => {
                    t = t.date().and_time(NaiveTime::MIN) - Duration::minutes(1);
                    continue;
                }
                Some(h) if h != t.hour() => {
                    t = t.date().and_hms_opt(h, 59, 0)?;
                }
                Some(_) => {}
            }
            match prev_bit(self.minutes, t.minute()) {
                Some(m) => return t.date().and_hms_opt(t.hour(), m, 0),
                None => {
                    t = t.date().and_hms_opt(t.hour(), 0, 0)? - Duration::minutes(1);
                }
            }
        }
    }

    /// The first fire strictly after `after`, within `SEARCH_HORIZON_DAYS`.
    pub fn next_after(&self, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&tz).naive_local();
        let limit = local.date() + Duration::days(SEARCH_HORIZON_DAYS);
        // Candidates before `local` map to instants at or before `after` (a gap maps forward
        // only onto its own end, which `after` is then past), so the search starts at `local`.
        let mut from = floor_minute(local);
        loop {
            let candidate = self.next_local(from, limit)?;
            let fire = resolve(tz, candidate)?;
            if fire > after {
                return Some(fire);
            }
            from = candidate + Duration::minutes(1);
        }
    }

    /// The first fire at or after `at`.
    pub fn next_at_or_after(&self, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_after(tz, at - Duration::nanoseconds(1))
    }

    /// The last fire at or before `at`, within `SEARCH_HORIZON_DAYS`.
    pub fn prev_at_or_before(&self, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.last_fire(tz, at).map(|fire| fire.at)
    }

    /// The last fire at or before `at`, with its wall-clock time: the latest wall-clock minute
    /// that fires at or before `at` (within `SEARCH_HORIZON_DAYS`).
    pub(crate) fn last_fire(&self, tz: Tz, at: DateTime<Utc>) -> Option<Fire> {
        let local = at.with_timezone(&tz).naive_local();
        let limit = local.date() - Duration::days(SEARCH_HORIZON_DAYS);
        // After a fold (clocks set back) wall-clock times later than `local` may still map, at
        // their first occurrence, to instants before `at`: start that much later.
        let fold = fold_within_a_day(tz, at);
        let mut from = local + fold;
        loop {
            let candidate = self.prev_local(from, limit)?;
            let fire = resolve(tz, candidate)?;
            if fire <= at {
                return Some(Fire {
                    at: fire,
                    wall: candidate,
                });
            }
            from = candidate - Duration::minutes(1);
        }
    }

    /// The last fire strictly before `before`.
    pub fn prev_before(&self, tz: Tz, before: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.prev_at_or_before(tz, before - Duration::nanoseconds(1))
    }
}

/// A fire: the instant, and the wall-clock minute that fires then.
///
/// The DST rules map wall-clock minutes to instants in order, but not one to one: every minute
/// a gap skips fires at the gap's end, together with the minute that ends it. Fires compare by
/// instant, then by wall-clock time, so those that land on one instant keep the order in which
/// they are written on the wall clock: a close at 02:30 skipped to 03:00 comes before an open at
/// 03:00, not with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Fire {
    pub(crate) at: DateTime<Utc>,
    pub(crate) wall: NaiveDateTime,
}

/// Minutes 0..=59 of an hour.
const ALL_MINUTES: u64 = (1 << 60) - 1;
/// Hours 0..=23 of a day.
const ALL_HOURS: u32 = (1 << 24) - 1;
/// Months 1..=12.
const ALL_MONTHS: u16 = ((1 << 13) - 1) & !1;

/// The last wall-clock minute `M` at or after `from` such that every minute of `[from, M]` is
/// matched by one of `crons`, but no later than `limit` (`from` itself when it matches none).
///
/// Schedules whose runs last at least a minute, firing on every minute of a stretch between
/// them, keep a window open through it (issue 21: two one-minute schedules on alternate minutes).
/// This finds such a stretch from the crons' fields, an hour or a day at a time, rather than
/// fire by fire.
pub(crate) fn covered_until(
    crons: &[&Cron],
    from: NaiveDateTime,
    limit: NaiveDateTime,
) -> NaiveDateTime {
    let from = floor_minute(from);
    if every_minute(crons) {
        return floor_minute(limit).max(from);
    }
    let mut hour = from - Duration::minutes(i64::from(from.minute()));
    let mut minute = from.minute();
    while hour <= limit {
        let day = hour.date();
        if minute == 0 && hour.hour() == 0 && whole_day(crons, day) {
            hour += Duration::days(1);
            continue;
        }
        let wanted = ALL_MINUTES & !((1u64 << minute) - 1);
        let missing = wanted & !hour_minutes(crons, day, hour.hour());
        if missing != 0 {
            let first = hour + Duration::minutes(i64::from(missing.trailing_zeros()));
            return (first - Duration::minutes(1)).max(from).min(limit);
        }
        hour += Duration::hours(1);
        minute = 0;
    }
    floor_minute(limit).max(from)
}

/// The first wall-clock minute `M` at or before `from` such that every minute of `[M, from]` is
/// matched by one of `crons`, but no earlier than `limit` (`from` itself when it matches none):
/// [`covered_until`] backwards.
pub(crate) fn covered_since(
    crons: &[&Cron],
    from: NaiveDateTime,
    limit: NaiveDateTime,
) -> NaiveDateTime {
    let from = floor_minute(from);
    if every_minute(crons) {
        return ceil_minute(limit).min(from);
    }
    let mut hour = from - Duration::minutes(i64::from(from.minute()));
    let mut minute = from.minute();
    while hour + Duration::minutes(59) >= limit {
        let day = hour.date();
        if minute == 59 && hour.hour() == 23 && whole_day(crons, day) {
            hour -= Duration::days(1);
            continue;
        }
        let wanted = (1u64 << (minute + 1)) - 1;
        let missing = wanted & !hour_minutes(crons, day, hour.hour());
        if missing != 0 {
            let last = hour + Duration::minutes(i64::from(63 - missing.leading_zeros()));
            return (last + Duration::minutes(1)).min(from).max(limit);
        }
        hour -= Duration::hours(1);
        minute = 59;
    }
    ceil_minute(limit).min(from)
}

/// Whether `crons` may match two minutes in a row (some cron's minute next to another's, or
/// minute 59 and 0): without that they never cover a stretch, and nobody needs to look for one.
pub(crate) fn may_cover_two_minutes(crons: &[&Cron]) -> bool {
    let minutes = crons.iter().fold(0, |minutes, c| minutes | c.minutes);
    minutes & (minutes >> 1) != 0 || (minutes & 1 != 0 && minutes & (1 << 59) != 0)
}

/// Whether `crons` match every minute of every day between them (`* * * * *`, or `0-58/2 * * * *`
/// with `1-59/2 * * * *`): no day needs to be looked at.
fn every_minute(crons: &[&Cron]) -> bool {
    crons
        .iter()
        .filter(|c| {
            c.hours == ALL_HOURS
                && c.dom_star
                && c.dow_star
                && c.months == ALL_MONTHS
                && c.nth_weekdays == 0
        })
        .fold(0, |minutes, c| minutes | c.minutes)
        == ALL_MINUTES
}

/// Whether the crons that match every hour of `day` match every minute between them: a day
/// passed over in one step.
fn whole_day(crons: &[&Cron], day: NaiveDate) -> bool {
    crons
        .iter()
        .filter(|c| c.hours == ALL_HOURS && c.day_fires(day))
        .fold(0, |minutes, c| minutes | c.minutes)
        == ALL_MINUTES
}

/// The minutes of `hour` on `day` that one of `crons` matches.
fn hour_minutes(crons: &[&Cron], day: NaiveDate, hour: u32) -> u64 {
    crons
        .iter()
        .filter(|c| c.hours & (1 << hour) != 0 && c.day_fires(day))
        .fold(0, |minutes, c| minutes | c.minutes)
}

impl std::fmt::Display for Cron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// Maps a wall-clock time to the instant it fires at, by the DST rules of this module.
pub(crate) fn resolve(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => {
            // In a gap: the first wall-clock minute that exists again is where the gap ends.
            // Real gaps are at most a day (Samoa, 2011); give up past two.
            let mut probe = local;
            for _ in 0..(2 * 24 * 60) {
                probe += Duration::minutes(1);
                match tz.from_local_datetime(&probe) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                        return Some(t.with_timezone(&Utc));
                    }
                    LocalResult::None => {}
                }
            }
            None
        }
    }
}

/// How much the UTC offset dropped during the day before `at` (zero when it did not).
fn fold_within_a_day(tz: Tz, at: DateTime<Utc>) -> Duration {
    let drop = offset(tz, at - Duration::days(1)) - offset(tz, at);
    Duration::seconds(drop.max(0))
}

/// The UTC offset at `t`, in seconds.
fn offset(tz: Tz, t: DateTime<Utc>) -> i64 {
    use chrono::Offset;
    i64::from(
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

/// How far apart [`first_fold`] and [`last_fold`] look at the offset: zones change it at most
/// once in that time (twice a year in practice), as [`fold_within_a_day`] assumes for a day.
const FOLD_PROBE: Duration = Duration::hours(12);

/// The first instant of `(from, to]` at which the UTC offset drops (clocks set back, so wall
/// -clock times repeat and fire once): where minutes that fire one after the other on the wall
/// clock stop firing one after the other in time.
pub(crate) fn first_fold(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (mut a, mut at_a) = (from, offset(tz, from));
    while a < to {
        let b = (a + FOLD_PROBE).min(to);
        let at_b = offset(tz, b);
        if at_b < at_a {
            return Some(offset_change(tz, a, b));
        }
        (a, at_a) = (b, at_b);
    }
    None
}

/// The last instant of `(from, to]` at which the UTC offset drops: [`first_fold`] backwards.
pub(crate) fn last_fold(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (mut b, mut at_b) = (to, offset(tz, to));
    while b > from {
        let a = (b - FOLD_PROBE).max(from);
        let at_a = offset(tz, a);
        if at_b < at_a {
            return Some(offset_change(tz, a, b));
        }
        (b, at_b) = (a, at_a);
    }
    None
}

/// The instant of `(a, b]` at which the offset changes from the one at `a` (it differs at `b`,
/// and changes once between): a whole second, as every change in the tz database is.
fn offset_change(tz: Tz, a: DateTime<Utc>, b: DateTime<Utc>) -> DateTime<Utc> {
    let second = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or(b);
    let before = offset(tz, a);
    let (mut low, mut high) = (a.timestamp(), b.timestamp() + 1);
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if offset(tz, second(mid)) == before {
            low = mid;
        } else {
            high = mid;
        }
    }
    second(high)
}

/// How much the offset drops at `fold`: how long the wall-clock times before it repeat.
pub(crate) fn fold_length(tz: Tz, fold: DateTime<Utc>) -> Duration {
    Duration::seconds(offset(tz, fold - Duration::seconds(1)) - offset(tz, fold))
}

/// Splits the `W#N` items off a day-of-week field: their bits, and the rest of the field
/// (`None` when nothing is left).
fn parse_nth_weekdays(text: &str) -> Result<(u64, Option<String>), CronError> {
    if !text.contains('#') {
        return Ok((0, Some(text.to_owned())));
    }
    let mut bits = 0u64;
    let mut rest = Vec::new();
    for part in text.split(',') {
        let Some((weekday, nth)) = part.split_once('#') else {
            rest.push(part);
            continue;
        };
        let error = |message: &str| field_error(&DAY_OF_WEEK, text, message);
        let weekday = parse_value(weekday, &DAY_OF_WEEK, text)? % 7;
        let nth: u32 = nth
            .parse()
            .ok()
            .filter(|n| (1..=5).contains(n))
            .ok_or_else(|| {
                error(&format!(
                    "{part:?}: after # give which week of the month, 1 to 5 (SUN#1: the first \
                     Sunday)"
                ))
            })?;
        bits |= 1 << (weekday * 5 + nth - 1);
    }
    Ok((bits, (!rest.is_empty()).then(|| rest.join(","))))
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<(u64, bool), CronError> {
    let mut bits = 0u64;
    let mut star = false;
    if text.is_empty() {
        return Err(field_error(spec, text, "empty field"));
    }
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| {
                    field_error(spec, text, &format!("step {step:?} is not a number"))
                })?;
                if step == 0 {
                    return Err(field_error(spec, text, "step must be a positive number"));
                }
                (range, Some(step))
            }
            None => (part, None),
        };
        let (start, end, is_star) = if range == "*" || range == "?" {
            (spec.min, spec.max_for_star(), true)
        } else {
            let (low, high) = match range.split_once('-') {
                Some((low, high)) => (low, Some(high)),
                None => (range, None),
            };
            let start = parse_value(low, spec, text)?;
            let end = match (high, step) {
                (Some(high), _) => parse_value(high, spec, text)?,
                // "N/step" means "N-max/step", as in robfig/cron.
                (None, Some(_)) => spec.max_for_star(),
                (None, None) => start,
            };
            if start > end {
                return Err(field_error(
                    spec,
                    text,
                    &format!("range {range:?} starts after it ends"),
                ));
            }
            (start, end, false)
        };
        let step = step.unwrap_or(1);
        // robfig/cron: only a bare `*` (or `*/1`) leaves a day field unrestricted.
        star |= is_star && step == 1;
        let mut value = start;
        while value <= end {
            bits |= 1 << value;
            // A step past the end (robfig accepts `2/4294967295`) must end the loop, not
            // overflow (found by fuzz/fuzz_targets/cron.rs).
            value = value.saturating_add(step);
        }
    }
    Ok((bits, star))
}

impl FieldSpec {
    /// `*` in day-of-week means 0–6; 7 is only an alias.
    fn max_for_star(&self) -> u32 {
        if self.name == DAY_OF_WEEK.name {
            6
        } else {
            self.max
        }
    }
}

fn parse_value(text: &str, spec: &FieldSpec, field: &str) -> Result<u32, CronError> {
    let lower = text.to_ascii_lowercase();
    if let Some(index) = spec.names.iter().position(|name| *name == lower) {
        return Ok(index as u32 + if spec.name == MONTH.name { 1 } else { 0 });
    }
    let value: u32 = text.parse().map_err(|_| {
        // `MONDAY`, `January`: the three-letter name is what cron reads.
        let short = lower.get(..3).filter(|short| {
            lower.len() > 3 && lower.is_char_boundary(3) && spec.names.contains(short)
        });
        let message = match short {
            Some(short) => format!(
                "{text:?} is not a name cron reads: write {}",
                short.to_ascii_uppercase()
            ),
            None if spec.names.is_empty() => format!("{text:?} is not a number"),
            None => format!("{text:?} is not a number or a name"),
        };
        field_error(spec, field, &message)
    })?;
    if value < spec.min || value > spec.max {
        return Err(field_error(
            spec,
            field,
            &format!("{value} is out of range {}-{}", spec.min, spec.max),
        ));
    }
    Ok(value)
}

fn field_error(spec: &FieldSpec, field: &str, message: &str) -> CronError {
    CronError(format!("{} field {field:?}: {message}", spec.name))
}

fn next_bit(bits: u64, from: u32) -> Option<u32> {
    let masked = bits & (!0u64).checked_shl(from).unwrap_or(0);
    (masked != 0).then(|| masked.trailing_zeros())
}

fn prev_bit(bits: u64, from: u32) -> Option<u32> {
    let masked = if from >= 63 {
        bits
    } else {
        bits & ((1u64 << (from + 1)) - 1)
    };
    (masked != 0).then(|| 63 - masked.leading_zeros())
}

fn floor_minute(t: NaiveDateTime) -> NaiveDateTime {
    t.date().and_hms_opt(t.hour(), t.minute(), 0).unwrap_or(t)
}

pub(crate) fn ceil_minute(t: NaiveDateTime) -> NaiveDateTime {
    let floor = floor_minute(t);
    if floor == t {
        t
    } else {
        floor + Duration::minutes(1)
    }
}

fn first_of_month(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    let (year, month) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Europe::Berlin, UTC};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, tz: Tz, after: &str) -> String {
        Cron::parse(expr)
            .unwrap()
            .next_after(tz, utc(after))
            .unwrap()
            .to_rfc3339()
    }

    fn prev(expr: &str, tz: Tz, at: &str) -> String {
        Cron::parse(expr)
            .unwrap()
            .prev_at_or_before(tz, utc(at))
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn day_of_week_numbers_follow_cronjob() {
        // 2026-11-30 is a Monday.
        assert_eq!(
            next("0 8 * * 1", UTC, "2026-11-26T00:00:00Z"),
            "2026-11-30T08:00:00+00:00"
        );
        assert_eq!(
            next("0 8 * * MON", UTC, "2026-11-26T00:00:00Z"),
            "2026-11-30T08:00:00+00:00"
        );
        assert_eq!(
            next("0 8 * * 0", UTC, "2026-11-26T00:00:00Z"),
            "2026-11-29T08:00:00+00:00"
        );
        assert_eq!(
            next("0 8 * * 7", UTC, "2026-11-26T00:00:00Z"),
            "2026-11-29T08:00:00+00:00"
        );
        assert_eq!(
            next("0 8 * * sun", UTC, "2026-11-26T00:00:00Z"),
            "2026-11-29T08:00:00+00:00"
        );
        assert_eq!(
            next("0 8 * * 5-7", UTC, "2026-11-28T09:00:00Z"),
            "2026-11-29T08:00:00+00:00"
        );
    }

    #[test]
    fn nth_weekday_is_the_first_sunday_of_the_month() {
        // The first Sundays after Thu 2026-11-26: 2026-12-06, 2027-01-03, 2027-02-07.
        let mut t = "2026-11-26T00:00:00Z".to_owned();
        for want in [
            "2026-12-06T02:00:00+00:00",
            "2027-01-03T02:00:00+00:00",
            "2027-02-07T02:00:00+00:00",
        ] {
            t = next("0 2 * * SUN#1", UTC, &t);
            assert_eq!(t, want);
        }
        // 0#1 and 7#1 are the same; lists mix with plain days (the last-but-one Friday
        // 2026-11-20 is the 3rd; Mondays too).
        assert!(
            Cron::parse("0 2 * * 0#1")
                .unwrap()
                .same_fires(&Cron::parse("0 2 * * 7#1").unwrap())
        );
        assert_eq!(
            next("0 2 * * FRI#3,MON", UTC, "2026-11-17T00:00:00Z"),
            "2026-11-20T02:00:00+00:00"
        );
        assert_eq!(
            next("0 2 * * FRI#3,MON", UTC, "2026-11-20T03:00:00Z"),
            "2026-11-23T02:00:00+00:00"
        );
        // The fifth Friday exists only in some months: January 2027 has one (29th).
        assert_eq!(
            next("0 2 * * 5#5", UTC, "2026-12-01T00:00:00Z"),
            "2027-01-29T02:00:00+00:00"
        );
        // Not an OR unless day-of-month is restricted too.
        assert!(!Cron::parse("0 2 * * SUN#1").unwrap().days_either());
        assert!(Cron::parse("0 2 1-7 * SUN").unwrap().days_either());
        assert!(!Cron::parse("0 2 1-7 * *").unwrap().days_either());
    }

    /// What robfig/cron v3 silently misreads is refused here (README: where fluxgate's cron
    /// differs), and what differs on purpose is accepted.
    #[test]
    fn differences_from_robfig_are_the_documented_ones() {
        for refused in [
            "0 *-3 * * *",
            "1,,2 * * * *",
            "0 0 * * 1,",
            "*/4294967296 * * * *",
            "0/18446744073709551616 * * * *",
        ] {
            assert!(Cron::parse(refused).is_err(), "{refused:?} must be refused");
        }
        for accepted in ["0 8 * * 7", "  @daily  ", "0 2 * * SUN#1"] {
            assert!(
                Cron::parse(accepted).is_ok(),
                "{accepted:?} must be accepted"
            );
        }
    }

    #[test]
    fn restricted_day_fields_are_ored() {
        // The 1st of the month or any Monday: after Thu 2026-11-26 comes Mon 2026-11-30, then
        // Tue 2026-12-01.
        assert_eq!(
            next("0 0 1 * MON", UTC, "2026-11-26T00:00:00Z"),
            "2026-11-30T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 1 * MON", UTC, "2026-11-30T00:00:00Z"),
            "2026-12-01T00:00:00+00:00"
        );
        // `*/2` restricts (robfig), so this is also an OR: odd days or Mondays.
        assert_eq!(
            next("0 0 */2 * 1", UTC, "2026-11-29T12:00:00Z"),
            "2026-11-30T00:00:00+00:00"
        );
        // With a bare `*` day-of-month, only the day-of-week counts.
        assert_eq!(
            next("0 0 * * 1", UTC, "2026-11-26T00:00:00Z"),
            "2026-11-30T00:00:00+00:00"
        );
    }

    #[test]
    fn descriptors_expand() {
        assert_eq!(
            next("@hourly", UTC, "2026-11-26T10:30:00Z"),
            "2026-11-26T11:00:00+00:00"
        );
        assert_eq!(
            next("@daily", UTC, "2026-11-26T10:30:00Z"),
            "2026-11-27T00:00:00+00:00"
        );
        assert_eq!(
            next("@weekly", UTC, "2026-11-26T10:30:00Z"),
            "2026-11-29T00:00:00+00:00"
        );
        assert_eq!(
            next("@monthly", UTC, "2026-11-26T10:30:00Z"),
            "2026-12-01T00:00:00+00:00"
        );
        assert_eq!(
            next("@yearly", UTC, "2026-11-26T10:30:00Z"),
            "2027-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn steps_ranges_and_lists() {
        assert_eq!(
            next("*/15 * * * *", UTC, "2026-11-26T10:31:00Z"),
            "2026-11-26T10:45:00+00:00"
        );
        assert_eq!(
            next("5/20 * * * *", UTC, "2026-11-26T10:46:00Z"),
            "2026-11-26T11:05:00+00:00"
        );
        assert_eq!(
            next("0 9-17/4 * * *", UTC, "2026-11-26T13:01:00Z"),
            "2026-11-26T17:00:00+00:00"
        );
        assert_eq!(
            next("0 0 1 jan,Jul *", UTC, "2026-11-26T00:00:00Z"),
            "2027-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn leap_day_fires_every_four_years() {
        assert_eq!(
            next("0 0 29 2 *", UTC, "2026-11-26T00:00:00Z"),
            "2028-02-29T00:00:00+00:00"
        );
        assert_eq!(
            prev("0 0 29 2 *", UTC, "2026-11-26T00:00:00Z"),
            "2024-02-29T00:00:00+00:00"
        );
    }

    #[test]
    fn invalid_expressions_are_explained() {
        let cases = [
            ("0 0 30 2 *", "can never fire"),
            ("0 0 31 4,6 *", "can never fire"),
            ("60 * * * *", "minute field \"60\": 60 is out of range 0-59"),
            ("0 24 * * *", "hour field"),
            (
                "0 0 0 * *",
                "day-of-month field \"0\": 0 is out of range 1-31",
            ),
            ("0 0 * 13 *", "month field"),
            (
                "0 0 * * 8",
                "day-of-week field \"8\": 8 is out of range 0-7",
            ),
            ("0 0 * * FRI-MON", "starts after it ends"),
            ("*/0 * * * *", "step must be a positive number"),
            ("0 8 * *", "expected 5 fields"),
            ("0 0 8 * * MON", "expected 5 fields"),
            ("@every 1h", "@every is not supported"),
            ("@fortnightly", "unknown descriptor"),
            ("TZ=Europe/Berlin 0 8 * * *", "set spec.timeZone"),
            (
                "0 8 * * MONDAY",
                "\"MONDAY\" is not a name cron reads: write MON",
            ),
            (
                "0 8 * JANUARY *",
                "\"JANUARY\" is not a name cron reads: write JAN",
            ),
            ("0 8 * * MOO", "\"MOO\" is not a number or a name"),
            (
                "0 8 * * SUN#6",
                "after # give which week of the month, 1 to 5",
            ),
            (
                "0 8 * * SUN#",
                "after # give which week of the month, 1 to 5",
            ),
            ("0 8 * * SUNDAY#1", "write SUN"),
            ("a * * * *", "minute field \"a\": \"a\" is not a number"),
            ("", "expected 5 fields"),
        ];
        for (expr, want) in cases {
            let err = Cron::parse(expr).expect_err(expr).to_string();
            assert!(
                err.contains(want),
                "{expr:?}: {err:?} does not contain {want:?}"
            );
        }
    }

    #[test]
    fn dst_spring_forward_berlin_fires_at_end_of_gap() {
        // 2026-03-29 02:00 CET jumps to 03:00 CEST (01:00 UTC): 02:30 does not exist.
        assert_eq!(
            next("30 2 * * *", Berlin, "2026-03-28T12:00:00Z"),
            "2026-03-29T01:00:00+00:00"
        );
        assert_eq!(
            next("30 2 * * *", Berlin, "2026-03-29T01:00:00Z"),
            "2026-03-30T00:30:00+00:00"
        );
        // A fire at the end of the gap is found by an inclusive search that starts there.
        let cron = Cron::parse("30 2 * * *").unwrap();
        assert_eq!(
            cron.next_at_or_after(Berlin, utc("2026-03-29T01:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        assert_eq!(
            cron.prev_at_or_before(Berlin, utc("2026-03-29T01:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn dst_fall_back_berlin_fires_once_at_first_occurrence() {
        // 2026-10-25 03:00 CEST falls back to 02:00 CET (01:00 UTC): 02:30 happens twice.
        assert_eq!(
            next("30 2 * * *", Berlin, "2026-10-24T12:00:00Z"),
            "2026-10-25T00:30:00+00:00"
        );
        assert_eq!(
            next("30 2 * * *", Berlin, "2026-10-25T00:30:00Z"),
            "2026-10-26T01:30:00+00:00"
        );
        // Hourly skips the repeated hour instead of firing twice.
        assert_eq!(
            next("0 * * * *", Berlin, "2026-10-25T00:30:00Z"),
            "2026-10-25T02:00:00+00:00"
        );
        // From inside the second 02:xx, the last 02:30 fire was the first occurrence.
        assert_eq!(
            prev("30 2 * * *", Berlin, "2026-10-25T01:45:00Z"),
            "2026-10-25T00:30:00+00:00"
        );
    }

    #[test]
    fn dst_spring_forward_new_york() {
        // 2026-03-08 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        assert_eq!(
            next("15 2 * * *", New_York, "2026-03-08T00:00:00Z"),
            "2026-03-08T07:00:00+00:00"
        );
        assert_eq!(
            next("0 3 * * *", New_York, "2026-03-08T00:00:00Z"),
            "2026-03-08T07:00:00+00:00"
        );
    }

    #[test]
    fn dst_fall_back_new_york() {
        // 2026-11-01 02:00 EDT falls back to 01:00 EST (06:00 UTC): 01:30 happens twice.
        assert_eq!(
            next("30 1 * * *", New_York, "2026-11-01T00:00:00Z"),
            "2026-11-01T05:30:00+00:00"
        );
        assert_eq!(
            next("30 1 * * *", New_York, "2026-11-01T05:30:00Z"),
            "2026-11-02T06:30:00+00:00"
        );
    }

    #[test]
    fn prev_is_inclusive_and_next_is_exclusive() {
        assert_eq!(
            prev("0 8 * * *", UTC, "2026-11-26T08:00:00Z"),
            "2026-11-26T08:00:00+00:00"
        );
        assert_eq!(
            next("0 8 * * *", UTC, "2026-11-26T08:00:00Z"),
            "2026-11-27T08:00:00+00:00"
        );
        let cron = Cron::parse("0 8 * * *").unwrap();
        assert_eq!(
            cron.prev_before(UTC, utc("2026-11-26T08:00:00Z")),
            Some(utc("2026-11-25T08:00:00Z"))
        );
    }

    /// The stretches of minutes that crons cover between them, found an hour or a day at a
    /// time, agree with a plain minute-by-minute scan, forwards and backwards.
    #[test]
    fn covered_stretches_agree_with_minute_scan() {
        let sets: [&[&str]; 6] = [
            &["0-58/2 * * * *", "1-59/2 * * * *"],
            &["* 0-22/2 * * *", "* 1-23/2 * * *"],
            &["* * * * 1-5", "0-29 * * * 0,6", "30-59 * * * 0,6"],
            &["* 8-17 * * MON-FRI", "*/2 * * * *"],
            &["* 23 * * *", "* 0-3 1 * *", "* * 2 * *"],
            &["0-29 * * * *", "31-59 * * * *"],
        ];
        let start = NaiveDate::from_ymd_opt(2026, 11, 27)
            .unwrap()
            .and_time(NaiveTime::MIN);
        let covered = |crons: &[Cron], t: NaiveDateTime| crons.iter().any(|c| c.matches(t));
        for set in sets {
            let crons: Vec<Cron> = set.iter().map(|e| Cron::parse(e).unwrap()).collect();
            let refs: Vec<&Cron> = crons.iter().collect();
            for offset in (0..10 * 24 * 60).step_by(97) {
                let from = start + Duration::minutes(offset);
                if !covered(&crons, from) {
                    continue;
                }
                let limit = from + Duration::days(3);
                let mut scan = from;
                while scan < limit && covered(&crons, scan + Duration::minutes(1)) {
                    scan += Duration::minutes(1);
                }
                assert_eq!(
                    covered_until(&refs, from, limit),
                    scan,
                    "{set:?} from {from}"
                );
                let limit = from - Duration::days(3);
                let mut scan = from;
                while scan > limit && covered(&crons, scan - Duration::minutes(1)) {
                    scan -= Duration::minutes(1);
                }
                assert_eq!(
                    covered_since(&refs, from, limit),
                    scan,
                    "{set:?} back from {from}"
                );
            }
        }
    }

    #[test]
    fn folds_are_found_to_the_second() {
        // Berlin sets clocks back at 01:00 UTC on 2026-10-25, Lord Howe half an hour at 15:00
        // UTC on 2026-04-04; spring gaps are no folds.
        let berlin = chrono_tz::Europe::Berlin;
        let from = utc("2026-10-20T00:00:00Z");
        let to = utc("2026-10-30T00:00:00Z");
        assert_eq!(
            first_fold(berlin, from, to),
            Some(utc("2026-10-25T01:00:00Z"))
        );
        assert_eq!(
            last_fold(berlin, from, to),
            Some(utc("2026-10-25T01:00:00Z"))
        );
        assert_eq!(
            fold_length(berlin, utc("2026-10-25T01:00:00Z")),
            Duration::hours(1)
        );
        let spring = (utc("2026-03-25T00:00:00Z"), utc("2026-04-05T00:00:00Z"));
        assert_eq!(first_fold(berlin, spring.0, spring.1), None);
        assert_eq!(last_fold(berlin, spring.0, spring.1), None);
        let lord_howe = chrono_tz::Australia::Lord_Howe;
        let fold = first_fold(
            lord_howe,
            utc("2026-04-01T00:00:00Z"),
            utc("2026-04-08T00:00:00Z"),
        );
        assert_eq!(fold, Some(utc("2026-04-04T15:00:00Z")));
        assert_eq!(fold_length(lord_howe, fold.unwrap()), Duration::minutes(30));
        // Two folds: the first and the last.
        let (a, b) = (utc("2025-10-01T00:00:00Z"), utc("2026-12-01T00:00:00Z"));
        assert_eq!(first_fold(berlin, a, b), Some(utc("2025-10-26T01:00:00Z")));
        assert_eq!(last_fold(berlin, a, b), Some(utc("2026-10-25T01:00:00Z")));
    }

    /// The field-jumping search must agree with a plain minute-by-minute scan.
    #[test]
    fn search_agrees_with_minute_scan() {
        let exprs = [
            "* * * * *",
            "*/7 3-5 * * *",
            "59 23 31 * *",
            "0 0 1,15 * 3",
            "30 */5 * feb-apr sat,sun",
            "0 12 */10 * 1-5",
        ];
        let start = NaiveDate::from_ymd_opt(2027, 1, 1)
            .unwrap()
            .and_time(NaiveTime::MIN);
        let limit = start.date() + Duration::days(SEARCH_HORIZON_DAYS);
        for expr in exprs {
            let cron = Cron::parse(expr).unwrap();
            let mut t = start;
            for _ in 0..50 {
                let found = cron.next_local(t, limit).unwrap();
                let mut scan = t;
                while !cron.matches(scan) {
                    scan += Duration::minutes(1);
                }
                assert_eq!(found, scan, "{expr} after {t}");
                assert_eq!(cron.prev_local(found, start.date()), Some(found));
                if found > t {
                    let before = cron.prev_local(found - Duration::minutes(1), start.date());
                    assert!(
                        before.is_none_or(|b| b < t),
                        "{expr}: prev of {found} was {before:?}"
                    );
                }
                t = found + Duration::minutes(1);
            }
        }
    }
}
