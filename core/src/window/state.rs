//! Whether a window is open at an instant, since when, and until when.
//!
//! A window's effective state is "some schedule open and no freeze active, or an override
//! active". Each part (a schedule, a freeze or an override) changes state only at its own
//! instants, so the effective state can
//! only change at one of them: `next` walks forward from part change to part change until the
//! effective state differs, `since` walks backward the same way. This looks past freezes and
//! through schedules that overlap or abut without special cases. The start/duration schedules
//! are one part together ([`Starts`]): their runs merge into open periods whose ends are found
//! from the crons' fields, not run by run.
//!
//! DST: an open/close pair orders its fires by instant and, where DST puts several on one
//! instant (a gap fires every minute it skips at its end), by wall-clock time, so a close that a
//! gap moves onto the instant of the open written after it never swallows that opening; an open
//! and a close at one wall-clock time stay closed ([`crate::cron::Fire`]).
//!
//! Pure: the instant is always an argument.

use super::{Freeze, FreezeTimes, Override, Schedule, Window};
use crate::calendar::Calendar;
use crate::cron::{
    self, Cron, Fire, SEARCH_HORIZON_DAYS, ceil_minute, covered_since, covered_until, first_fold,
    fold_length, last_fold, resolve,
};
use chrono::{DateTime, Duration, Timelike, Utc};
use chrono_tz::Tz;
use std::sync::Arc;

/// How many part changes a walk visits before it gives up. Only degenerate windows get near
/// it (open/close pairs taking turns every minute are always open): they report no
/// `since`/`next` rather than spin.
const MAX_STEPS: usize = 5_000;

/// The effective state of a window at an instant.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowState {
    pub open: bool,
    /// When the current state began; `None` when it began before the search horizon.
    pub since: Option<DateTime<Utc>>,
    /// When the state changes next; `None` when it does not change within the search horizon,
    /// or when the search stopped early (see `searched_until`).
    pub next: Option<DateTime<Utc>>,
    /// When `next` is `None` because the search gave up before the horizon (a window whose parts
    /// change very often): the instant up to which the state is known not to change.
    pub searched_until: Option<DateTime<Utc>>,
    /// The freeze in force, if any (the window is then closed, unless an override opens a
    /// soft one).
    pub freeze: Option<ActiveFreeze>,
    /// The override that holds the window open when the schedules and freezes alone would
    /// close it; `None` when the window is closed or open by its schedules.
    pub opened_by: Option<Override>,
    /// The event of a `mode: allow` calendar in force while the window is open by its
    /// schedules: what `status` and decisions name as opening it.
    pub opened_by_event: Option<CalendarOpening>,
}

/// An event of an allow calendar, holding the window open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarOpening {
    /// `spec.calendars[].name`.
    pub calendar: String,
    /// The event's UID.
    pub uid: String,
    /// Its SUMMARY.
    pub summary: Option<String>,
    /// This occurrence's span.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl CalendarOpening {
    /// What opened the window, as decisions and `fluxgate status` say it, in the words a
    /// freeze's [`ActiveFreeze::describe`] uses: ` by calendar maintenance (Maintenance
    /// weekend)`.
    pub fn describe(&self) -> String {
        match &self.summary {
            Some(summary) => format!(" by calendar {} ({summary})", self.calendar),
            None => format!(" by calendar {} (event {})", self.calendar, self.uid),
        }
    }
}

/// A freeze in force at an instant: what `status` and denials say about it.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveFreeze {
    /// When this freeze (this occurrence, for a recurring one) began; `None` when beyond the
    /// search horizon.
    pub start: Option<DateTime<Utc>>,
    /// When it ends; `None` when beyond the search horizon.
    pub end: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    /// False for a hard freeze: bypasses and overrides are refused.
    pub allow_bypass: bool,
    /// For a freeze from a calendar, the event that froze the window.
    pub event: Option<FreezeEvent>,
}

/// The calendar event behind a freeze in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreezeEvent {
    /// `spec.calendars[].name`.
    pub calendar: String,
    /// The event's UID.
    pub uid: String,
}

impl ActiveFreeze {
    /// What froze the window, as denials and `fluxgate status` say it: `by calendar
    /// holidays.ics (Christmas Day)`, or the freeze's reason in parentheses; empty when it has
    /// none.
    pub fn describe(&self) -> String {
        match (&self.event, &self.reason) {
            (Some(e), Some(reason)) => format!(" by calendar {} ({reason})", e.calendar),
            (Some(e), None) => format!(" by calendar {} (event {})", e.calendar, e.uid),
            (None, Some(reason)) => format!(" ({reason})"),
            (None, None) => String::new(),
        }
    }

    /// The freeze in a few words, as `plan`'s summary lists what a change waits through:
    /// `Christmas Day (holidays.ics)`, or the freeze's reason (a stop-the-line freeze's names
    /// the incident and the object).
    pub fn name(&self) -> String {
        match (&self.event, &self.reason) {
            (Some(e), Some(reason)) => format!("{reason} ({})", e.calendar),
            (Some(e), None) => format!("event {} ({})", e.uid, e.calendar),
            (None, Some(reason)) => reason.clone(),
            (None, None) => "a freeze without a reason".into(),
        }
    }
}

/// Computes the state of `window` at `t` from scratch.
pub fn evaluate(window: &Window, t: DateTime<Utc>) -> WindowState {
    evaluate_with_reach(Evaluator::new(window), t).0
}

/// The state at `t` as if the window had no overrides: what a decision falls back on when an
/// override is longer than the policy allows.
pub(crate) fn evaluate_without_overrides(window: &Window, t: DateTime<Utc>) -> WindowState {
    evaluate_with_reach(Evaluator::with_overrides(window, &[]), t).0
}

/// The state at `t`, and the instant up to which it is known not to change: `next` when there
/// is one, else how far the walk looked (the horizon, or less when a walk gave up).
fn evaluate_with_reach(eval: Evaluator<'_>, t: DateTime<Utc>) -> (WindowState, DateTime<Utc>) {
    let open = eval.open_at(t);
    let (next, reach) = eval.next(t, open);
    let opened_by = if open && !eval.scheduled_open_at(t) {
        eval.overrides.iter().find(|o| o.covers(t)).cloned()
    } else {
        None
    };
    let horizon = t + Duration::days(SEARCH_HORIZON_DAYS);
    let state = WindowState {
        open,
        since: eval.since(t, open),
        next,
        searched_until: (next.is_none() && reach < horizon).then_some(reach),
        freeze: eval.active_freeze(t),
        opened_by_event: if open && opened_by.is_none() {
            eval.calendar_opening(t)
        } else {
            None
        },
        opened_by,
    };
    (state, reach)
}

/// A computed state and the interval of instants it holds for.
#[derive(Debug)]
pub(super) struct Cached {
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    pub(super) state: Arc<WindowState>,
}

impl Cached {
    pub(super) fn compute(window: &Window, t: DateTime<Utc>) -> Self {
        let (state, reach) = evaluate_with_reach(Evaluator::new(window), t);
        // The frozen/closed distinction can change without the effective state changing (a
        // freeze starting while the schedules are closed): end the cache at freeze edges too.
        let freeze_edge = window.next_freeze_edge(t, reach);
        // Likewise whether an override is what holds it open: that changes at override edges
        // and, while one is in force, whenever the schedules alone open or close.
        let override_edge = window
            .overrides
            .iter()
            .filter_map(|o| span_next_change(o.start, o.end, t))
            .min();
        let scheduled_edge = if window.overrides.iter().any(|o| o.covers(t)) {
            evaluate_without_overrides(window, t).next
        } else {
            None
        };
        // And which allow calendar's event holds it open: that changes at the calendar's
        // edges, also where one event follows another.
        let calendar_edge = window
            .schedules
            .iter()
            .filter_map(|s| match s {
                Schedule::Calendar(calendar) => calendar.next_edge_after(t),
                Schedule::OpenClose { .. } | Schedule::StartDuration { .. } => None,
            })
            .min();
        let until = [freeze_edge, override_edge, scheduled_edge, calendar_edge]
            .into_iter()
            .flatten()
            .fold(reach, DateTime::min);
        Cached {
            from: t,
            until,
            state: Arc::new(state),
        }
    }

    pub(super) fn until(&self) -> DateTime<Utc> {
        self.until
    }

    pub(super) fn covers(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && t < self.until
    }
}

struct Evaluator<'a> {
    window: &'a Window,
    /// The overrides that count (all of the window's, or none).
    overrides: &'a [Override],
    /// The schedules as the walk asks them: each open/close pair, then the start/duration
    /// schedules together.
    openers: Vec<Opener<'a>>,
}

impl<'a> Evaluator<'a> {
    fn new(window: &'a Window) -> Self {
        Self::with_overrides(window, &window.overrides)
    }

    fn with_overrides(window: &'a Window, overrides: &'a [Override]) -> Self {
        let mut openers = Vec::new();
        let mut runs = Vec::new();
        for schedule in &window.schedules {
            match schedule {
                Schedule::OpenClose { .. } | Schedule::Calendar(_) => {
                    openers.push(Opener::Pair(schedule))
                }
                Schedule::StartDuration { start, duration } => runs.push((start, *duration)),
            }
        }
        if !runs.is_empty() {
            openers.push(Opener::Starts(Starts::new(runs)));
        }
        Evaluator {
            window,
            overrides,
            openers,
        }
    }

    fn tz(&self) -> Tz {
        self.window.time_zone
    }

    fn open_at(&self, t: DateTime<Utc>) -> bool {
        self.scheduled_open_at(t)
            || (self.overrides.iter().any(|o| o.covers(t))
                && !self
                    .window
                    .freezes
                    .iter()
                    .any(|f| !f.allow_bypass && f.covers(self.tz(), t)))
    }

    /// Open by the schedules and freezes alone.
    fn scheduled_open_at(&self, t: DateTime<Utc>) -> bool {
        self.openers.iter().any(|o| o.open_at(self.tz(), t))
            && !self.window.freezes.iter().any(|f| f.covers(self.tz(), t))
    }

    /// The event of an allow calendar in force at `t`, the first calendar's first.
    fn calendar_opening(&self, t: DateTime<Utc>) -> Option<CalendarOpening> {
        self.window.schedules.iter().find_map(|s| match s {
            Schedule::Calendar(calendar) => {
                let occurrence = calendar.at(t)?;
                Some(CalendarOpening {
                    calendar: calendar.name().to_owned(),
                    uid: occurrence.uid.to_string(),
                    summary: occurrence.summary.as_deref().map(str::to_owned),
                    start: occurrence.start,
                    end: occurrence.end,
                })
            }
            Schedule::OpenClose { .. } | Schedule::StartDuration { .. } => None,
        })
    }

    /// The freeze in force at `t` (a hard one first: it decides what may pass).
    fn active_freeze(&self, t: DateTime<Utc>) -> Option<ActiveFreeze> {
        let tz = self.tz();
        let freeze = self
            .window
            .freezes
            .iter()
            .filter(|f| f.covers(tz, t))
            .min_by_key(|f| f.allow_bypass)?;
        let (start, end) = match &freeze.times {
            FreezeTimes::Once { start, end } => (Some(*start), Some(*end)),
            FreezeTimes::Calendar(calendar) => {
                let occurrence = calendar.at(t)?;
                return Some(ActiveFreeze {
                    start: Some(occurrence.start),
                    end: Some(occurrence.end),
                    reason: occurrence.summary.as_deref().map(str::to_owned),
                    allow_bypass: freeze.allow_bypass,
                    event: Some(FreezeEvent {
                        calendar: calendar.name().to_owned(),
                        uid: occurrence.uid.to_string(),
                    }),
                });
            }
            FreezeTimes::Recurring(schedule) => {
                let ahead = t + Duration::days(SEARCH_HORIZON_DAYS);
                let back = t - Duration::days(SEARCH_HORIZON_DAYS);
                let end = match schedule.next_change(tz, t, ahead) {
                    Next::At(end) => Some(end),
                    Next::Never | Next::NotBefore(_) | Next::Unknown(_) => None,
                };
                (schedule.run_start(tz, t, back).instant(), end)
            }
        };
        Some(ActiveFreeze {
            start,
            end,
            reason: freeze.reason.clone(),
            allow_bypass: freeze.allow_bypass,
            event: None,
        })
    }

    /// The next part change after `x`, for part `i` (schedules first, then freezes, then
    /// overrides).
    fn part_next(&self, i: usize, x: DateTime<Utc>, limit: DateTime<Utc>) -> Next {
        match self.part(i) {
            Part::Opener(opener) => opener.next_change(self.tz(), x, limit),
            Part::Freeze(freeze) => freeze.next_change(self.tz(), x, limit),
            Part::Override(o) => span_next_change(o.start, o.end, x).map_or(Next::Never, Next::At),
        }
    }

    fn part_run_start(&self, i: usize, x: DateTime<Utc>, limit: DateTime<Utc>) -> RunStart {
        match self.part(i) {
            Part::Opener(opener) => opener.run_start(self.tz(), x, limit),
            Part::Freeze(freeze) => freeze.run_start(self.tz(), x, limit),
            Part::Override(o) => span_run_start(o.start, o.end, x),
        }
    }

    fn part(&self, i: usize) -> Part<'_> {
        let window = self.window;
        if let Some(opener) = self.openers.get(i) {
            return Part::Opener(opener);
        }
        let i = i - self.openers.len();
        match window.freezes.get(i) {
            Some(freeze) => Part::Freeze(freeze),
            None => Part::Override(&self.overrides[i - window.freezes.len()]),
        }
    }

    fn parts(&self) -> usize {
        self.openers.len() + self.window.freezes.len() + self.overrides.len()
    }

    /// The next effective change after `t`, and how far the state is known: see
    /// [`evaluate_with_reach`]. A part's answer stays valid until the walk reaches it (its
    /// state is constant until its own next change), so each part is asked again only then:
    /// a walk costs one question per part change, not one per part per step.
    ///
    /// Two shortcuts keep windows built from merged one-minute runs cheap (issue 21: 1,000 of
    /// them took a minute to start). A schedule is asked no further than the next change of a
    /// freeze or override, since the walk stops there anyway and asks it again: a start every
    /// minute lasting 1h next to a weekend freeze walks a day of runs, not 5,000 hours. And
    /// while the schedules hold the window open, the walk steps to where the schedules open at
    /// `x` close, as [`Self::open_run_back`] does backwards, over every change of the others.
    fn next(&self, t: DateTime<Utc>, open: bool) -> (Option<DateTime<Utc>>, DateTime<Utc>) {
        let horizon = t + Duration::days(SEARCH_HORIZON_DAYS);
        let mut pending = vec![Next::Never; self.parts()];
        self.ask_next(&mut pending, t, horizon, |_| true);
        let mut x = t;
        for _ in 0..MAX_STEPS {
            // A part that gave up bounds what anyone can know.
            let known = pending
                .iter()
                .filter_map(|p| match p {
                    Next::Unknown(reached) => Some(*reached),
                    _ => None,
                })
                .fold(horizon, DateTime::min);
            let held = if open {
                self.held_open_until(&pending, x)
            } else {
                None
            };
            let y = held.or_else(|| pending.iter().filter_map(Next::instant).min());
            let Some(y) = y.filter(|y| *y <= known) else {
                return (None, known);
            };
            if self.open_at(y) != open {
                return (Some(y), y);
            }
            self.ask_next(&mut pending, y, horizon, |p| {
                p.instant().is_some_and(|z| z <= y)
            });
            x = y;
        }
        (None, x)
    }

    /// Asks the parts whose answer `stale` says is used up where they change next after `x`:
    /// the freezes and overrides up to `horizon`, then the schedules up to the first of those
    /// changes (an answer [`Next::NotBefore`] that one).
    fn ask_next(
        &self,
        pending: &mut [Next],
        x: DateTime<Utc>,
        horizon: DateTime<Utc>,
        stale: impl Fn(&Next) -> bool,
    ) {
        let schedules = self.openers.len();
        for (i, next) in pending.iter_mut().enumerate().skip(schedules) {
            if stale(next) {
                *next = self.part_next(i, x, horizon);
            }
        }
        let limit = pending[schedules..]
            .iter()
            .filter_map(Next::instant)
            .fold(horizon, DateTime::min);
        for (i, next) in pending.iter_mut().enumerate().take(schedules) {
            if stale(next) {
                *next = match self.part_next(i, x, limit) {
                    Next::Never if limit < horizon => Next::NotBefore(limit),
                    answer => answer,
                };
            }
        }
    }

    /// Where the window, open at `x` by its schedules with no freeze in force, can change
    /// next: where a freeze or override changes, or where the last of the schedules open at
    /// `x` closes, whichever comes first. `None` when no schedule holds it open.
    fn held_open_until(&self, pending: &[Next], x: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (schedules, rest) = pending.split_at(self.openers.len());
        // Only a schedule that changes after the first change of any part can hold the window
        // open past it; without one, the states are not worth asking (schedules that take
        // turns every minute: 23% of their evaluation).
        let soonest = pending.iter().filter_map(Next::instant).min()?;
        let later = |next: &Next| next.instant().is_none_or(|y| y > soonest);
        if !schedules.iter().any(later) || !self.scheduled_open_at(x) {
            return None;
        }
        let others = rest.iter().filter_map(Next::instant).min();
        let held = self
            .openers
            .iter()
            .zip(schedules)
            .filter(|(opener, _)| opener.open_at(self.tz(), x))
            .map(|(_, next)| match next {
                Next::At(y) | Next::NotBefore(y) | Next::Unknown(y) => *y,
                Next::Never => DateTime::<Utc>::MAX_UTC,
            })
            .max()?;
        Some(others.map_or(held, |others| others.min(held)))
    }

    /// When the current effective state began (`None`: before the horizon, or unknown). Parts
    /// are asked again only when the walk steps before their run, as in [`Self::next`], and
    /// schedules no further back than the latest change of a freeze or override, which bounds
    /// every step of the walk anyway (see [`RunStart::Before`]).
    fn since(&self, t: DateTime<Utc>, open: bool) -> Option<DateTime<Utc>> {
        let horizon = t - Duration::days(SEARCH_HORIZON_DAYS);
        let mut starts = vec![RunStart::Always; self.parts()];
        self.ask_run_start(&mut starts, t, horizon, |_| true);
        let mut x = t;
        for _ in 0..MAX_STEPS {
            let s = if open {
                self.open_run_back(&starts, x)?
            } else {
                self.closed_run_back(&starts, x)?
            };
            if s < horizon {
                return None;
            }
            let before = s - Duration::nanoseconds(1);
            if self.open_at(before) != open {
                return Some(s);
            }
            // Every part that changed at or after `s` is asked where its run before `s` began.
            self.ask_run_start(&mut starts, before, horizon, |start| match start {
                RunStart::At(r) | RunStart::Before(r) => *r >= s,
                RunStart::Always | RunStart::Unknown => false,
            });
            x = before;
        }
        None
    }

    /// Asks the parts whose answer `stale` says is used up where their run containing `x`
    /// began: the freezes and overrides back to `horizon`, then the schedules back to the
    /// latest of those changes.
    fn ask_run_start(
        &self,
        starts: &mut [RunStart],
        x: DateTime<Utc>,
        horizon: DateTime<Utc>,
        stale: impl Fn(&RunStart) -> bool,
    ) {
        let schedules = self.openers.len();
        for (i, start) in starts.iter_mut().enumerate().skip(schedules) {
            if stale(start) {
                *start = self.part_run_start(i, x, horizon);
            }
        }
        let limit = starts[schedules..]
            .iter()
            .filter_map(RunStart::instant)
            .fold(horizon, DateTime::max);
        for (i, start) in starts.iter_mut().enumerate().take(schedules) {
            if stale(start) {
                *start = match self.part_run_start(i, x, limit) {
                    // Past the horizon nothing is known; past a later limit, the part whose
                    // change set it decides.
                    RunStart::Before(_) if limit == horizon => RunStart::Unknown,
                    answer => answer,
                };
            }
        }
    }

    /// How far back from `x` (where the window is open) it stays open for certain: as long as
    /// one of the schedules open at `x` stays open, and after the last freeze ended. This jumps
    /// over every change of the other schedules at once, so a window kept open for months by
    /// one schedule while others change hourly is walked in one step, not thousands.
    fn open_run_back(&self, starts: &[RunStart], x: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (schedules, rest) = starts.split_at(self.openers.len());
        let (freezes, overrides) = rest.split_at(self.window.freezes.len());
        // The earliest run start among the open schedules; `None` when one has been open since
        // before anyone can tell.
        let mut covered_since: Option<Option<DateTime<Utc>>> = None;
        for (opener, start) in self.openers.iter().zip(schedules) {
            if opener.open_at(self.tz(), x) {
                let start = start.instant();
                covered_since = Some(covered_since.map_or(start, |c| c.min(start)));
            }
        }
        let last_freeze_end = freezes.iter().filter_map(RunStart::instant).max();
        // No open schedule (not open after all): step to the latest change, as when closed.
        let Some(covered_since) = covered_since else {
            return latest_start(starts);
        };
        // No override may change within the run either: one ending would not close the window
        // (the schedule holds it open) but one starting during a freeze would have opened it.
        let last_override_change = overrides.iter().filter_map(RunStart::instant).max();
        covered_since.max(last_freeze_end).max(last_override_change)
    }

    /// How far back from `x` (where the window is closed) it stays closed for certain: to the
    /// start of the freezes in force, if any, whatever the schedules did meanwhile (but not
    /// past an override's end); else to the latest change of any part.
    fn closed_run_back(&self, starts: &[RunStart], x: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let rest = &starts[self.openers.len()..];
        let (freezes, overrides) = rest.split_at(self.window.freezes.len());
        let last_override_change = overrides.iter().filter_map(RunStart::instant).max();
        let frozen_since = self
            .window
            .freezes
            .iter()
            .zip(freezes)
            .filter(|(freeze, _)| freeze.covers(self.tz(), x))
            .filter_map(|(_, start)| start.instant())
            .min()
            .map(|since| last_override_change.map_or(since, |c| since.max(c)));
        frozen_since.or_else(|| latest_start(starts))
    }
}

/// The latest change of any part; `None` when a part's run start is unknown.
fn latest_start(starts: &[RunStart]) -> Option<DateTime<Utc>> {
    let mut latest = None;
    for start in starts {
        match start {
            RunStart::At(s) => latest = latest.max(Some(*s)),
            // Earlier than the change of another part, which counts instead.
            RunStart::Always | RunStart::Before(_) => {}
            RunStart::Unknown => return None,
        }
    }
    latest
}

/// A part's next change after an instant.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Next {
    At(DateTime<Utc>),
    /// No change up to the search horizon.
    Never,
    /// No change up to this instant, where another part changes: the walk asks again there.
    NotBefore(DateTime<Utc>),
    /// The part's own walk gave up: constant at least up to this instant, unknown beyond.
    Unknown(DateTime<Utc>),
}

impl Next {
    /// Where the walk must look at this part again.
    fn instant(&self) -> Option<DateTime<Utc>> {
        match self {
            Next::At(t) | Next::NotBefore(t) => Some(*t),
            Next::Never | Next::Unknown(_) => None,
        }
    }
}

/// Where the constant run of one part containing an instant began.
#[derive(Clone, Copy, Debug, PartialEq)]
enum RunStart {
    At(DateTime<Utc>),
    /// The part has been in this state for as long as anyone can tell (a freeze not yet begun).
    Always,
    /// Before this instant, the limit it was asked with (a schedule's run reaching back past
    /// the latest change of a freeze or override, which then decides where the walk steps).
    Before(DateTime<Utc>),
    /// Past the search horizon or the step limit.
    Unknown,
}

impl RunStart {
    /// The instant the run began, when one is known.
    fn instant(&self) -> Option<DateTime<Utc>> {
        match self {
            RunStart::At(t) => Some(*t),
            RunStart::Always | RunStart::Before(_) | RunStart::Unknown => None,
        }
    }
}

impl From<Option<DateTime<Utc>>> for RunStart {
    fn from(t: Option<DateTime<Utc>>) -> Self {
        t.map_or(RunStart::Unknown, RunStart::At)
    }
}

// === impl Schedule ===

impl Schedule {
    /// Open/close: open when the latest open fire at or before `t` is later than the latest
    /// close fire (so open at the open instant, closed at the close instant). Fires that DST
    /// puts on one instant keep their wall-clock order ([`crate::cron::Fire`]): a close skipped
    /// by a gap to the instant of the open written after it closes nothing, and an open and a
    /// close at the same wall-clock time stay closed. Start/duration: open when the latest
    /// start fire `s` has `t < s + duration`; an earlier start cannot reach further since every
    /// run has the same length.
    pub(crate) fn open_at(&self, tz: Tz, t: DateTime<Utc>) -> bool {
        match self {
            Schedule::OpenClose { open, close } => match open.last_fire(tz, t) {
                None => false,
                Some(o) => close.last_fire(tz, t).is_none_or(|c| o > c),
            },
            Schedule::StartDuration { start, duration } => start
                .prev_at_or_before(tz, t)
                .is_some_and(|s| t < s + *duration),
            Schedule::Calendar(calendar) => calendar.run_at(t).in_force,
        }
    }

    /// The first instant after `t` at which this schedule's state differs from its state at
    /// `t`, looking no further than `limit`.
    fn next_change(&self, tz: Tz, t: DateTime<Utc>, limit: DateTime<Utc>) -> Next {
        match self {
            Schedule::OpenClose { open, close } => {
                // The next fire of the other kind changes the state, unless a fire of this
                // kind lands on the same instant after it on the wall clock (see `open_at`).
                let is_open = self.open_at(tz, t);
                let other = if is_open { close } else { open };
                let mut x = t;
                for _ in 0..MAX_STEPS {
                    let Some(y) = other.next_after(tz, x).filter(|y| *y <= limit) else {
                        return Next::Never;
                    };
                    if self.open_at(tz, y) != is_open {
                        return Next::At(y);
                    }
                    x = y;
                }
                Next::Unknown(x)
            }
            Schedule::StartDuration { start, duration } => {
                Starts::one(start, *duration).next_change(tz, t, limit)
            }
            // Events that overlap or abut open the window as one run.
            Schedule::Calendar(calendar) => {
                calendar_next(calendar, calendar.run_at(t).until, limit)
            }
        }
    }

    /// Where this schedule's current run (open or closed) containing `t` began, looking back no
    /// further than `limit`.
    fn run_start(&self, tz: Tz, t: DateTime<Utc>, limit: DateTime<Utc>) -> RunStart {
        match self {
            Schedule::OpenClose { open, close } => {
                let is_open = self.open_at(tz, t);
                // The latest fire of the other kind began the run: at its instant when the
                // state there is already this one (a fire of this kind landed on it later on
                // the wall clock), else at the first fire of this kind after it.
                let (this, other) = if is_open {
                    (open, close)
                } else {
                    (close, open)
                };
                match other.prev_at_or_before(tz, t) {
                    Some(y) if self.open_at(tz, y) == is_open => RunStart::At(y),
                    Some(y) => this.next_after(tz, y).into(),
                    None => RunStart::Unknown,
                }
            }
            Schedule::StartDuration { start, duration } => {
                Starts::one(start, *duration).run_start(tz, t, limit)
            }
            Schedule::Calendar(calendar) => calendar
                .run_at(t)
                .since
                .map_or(RunStart::Always, RunStart::At),
        }
    }
}

// === impl Opener ===

/// What opens a window, as the walk asks it: an open/close pair or an allow calendar (each on
/// its own), or the window's start/duration
/// schedules together.
enum Opener<'a> {
    Pair(&'a Schedule),
    Starts(Starts<'a>),
}

impl Opener<'_> {
    fn open_at(&self, tz: Tz, t: DateTime<Utc>) -> bool {
        match self {
            Opener::Pair(schedule) => schedule.open_at(tz, t),
            Opener::Starts(starts) => starts.open_at(tz, t),
        }
    }

    fn next_change(&self, tz: Tz, t: DateTime<Utc>, limit: DateTime<Utc>) -> Next {
        match self {
            Opener::Pair(schedule) => schedule.next_change(tz, t, limit),
            Opener::Starts(starts) => starts.next_change(tz, t, limit),
        }
    }

    fn run_start(&self, tz: Tz, t: DateTime<Utc>, limit: DateTime<Utc>) -> RunStart {
        match self {
            Opener::Pair(schedule) => schedule.run_start(tz, t, limit),
            Opener::Starts(starts) => starts.run_start(tz, t, limit),
        }
    }
}

// === impl Starts ===

/// Start/duration schedules taken together: open while a run of any of them is, so runs that
/// overlap or abut, of one schedule or of several, make one open period, whose ends are found
/// here rather than by the walk, part change by part change (issue 21: two one-minute schedules
/// on alternate minutes are one period that the walk crossed a minute per step).
struct Starts<'a> {
    /// Each schedule's cron and run length.
    runs: Vec<(&'a Cron, Duration)>,
    /// The crons of the runs that last a minute or more: when they start a run on every
    /// minute of a stretch between them, the window is open from its first minute to a minute
    /// after its last.
    minute_crons: Vec<&'a Cron>,
}

impl<'a> Starts<'a> {
    fn new(runs: Vec<(&'a Cron, Duration)>) -> Self {
        let mut minute_crons: Vec<&Cron> = runs
            .iter()
            .filter(|(_, duration)| *duration >= Duration::minutes(1))
            .map(|(start, _)| *start)
            .collect();
        // None when no two minutes in a row ever fire (`*/2`): no step looks for a stretch.
        if !cron::may_cover_two_minutes(&minute_crons) {
            minute_crons.clear();
        }
        Starts { runs, minute_crons }
    }

    fn one(start: &'a Cron, duration: Duration) -> Self {
        Self::new(vec![(start, duration)])
    }

    /// Open when some schedule's latest start `s` at or before `t` has `t < s + duration`: an
    /// earlier start cannot reach further, since each of its runs has the same length.
    fn open_at(&self, tz: Tz, t: DateTime<Utc>) -> bool {
        self.runs.iter().any(|(start, duration)| {
            start
                .prev_at_or_before(tz, t)
                .is_some_and(|s| t < s + *duration)
        })
    }

    /// The first instant after `t`, up to `limit`, at which the state differs from the one at
    /// `t`. Open: the runs covering `t` end at `end`, and each step moves `end` to the furthest
    /// end of a run started at or before it (the latest start of each schedule), or past a
    /// stretch of minutes that start runs one after the other ([`Self::stretch_end`]), until
    /// nothing reaches past it.
    fn next_change(&self, tz: Tz, t: DateTime<Utc>, limit: DateTime<Utc>) -> Next {
        let covering = self.runs.iter().filter_map(|(start, duration)| {
            let end = start.prev_at_or_before(tz, t)? + *duration;
            (t < end).then_some(end)
        });
        let Some(mut end) = covering.max() else {
            let first = self
                .runs
                .iter()
                .filter_map(|(start, _)| start.next_after(tz, t));
            return first
                .min()
                .filter(|y| *y <= limit)
                .map_or(Next::Never, Next::At);
        };
        for _ in 0..MAX_STEPS {
            if end > limit {
                return Next::Never;
            }
            // The furthest end of a run started at or before `end`, and the latest such start
            // of a run of a minute or more, where a stretch may begin.
            let mut furthest = None;
            let mut latest: Option<Fire> = None;
            for (start, duration) in &self.runs {
                let Some(fire) = start.last_fire(tz, end) else {
                    continue;
                };
                furthest = furthest.max(Some(fire.at + *duration));
                if *duration >= Duration::minutes(1) && latest.is_none_or(|l| l.wall < fire.wall) {
                    latest = Some(fire);
                }
            }
            let stretch = latest.and_then(|fire| self.stretch_end(tz, fire, limit));
            let reach = furthest.max(stretch).filter(|reach| *reach > end);
            match reach {
                Some(reach) => end = reach,
                None => return Next::At(end),
            }
        }
        Next::Unknown(end)
    }

    /// Where the run (open or closed) containing `t` began, looking back no further than
    /// `limit`: [`Self::next_change`] backwards.
    fn run_start(&self, tz: Tz, t: DateTime<Utc>, limit: DateTime<Utc>) -> RunStart {
        let mut last = Vec::with_capacity(self.runs.len());
        for (start, duration) in &self.runs {
            let Some(s) = start.prev_at_or_before(tz, t) else {
                continue;
            };
            last.push((s, *duration));
        }
        let covering = last.iter().filter(|(s, duration)| t < *s + *duration);
        let Some(mut begin) = covering.map(|(s, _)| *s).min() else {
            // Closed since the latest run ended; unknown if a schedule's last start is past
            // the horizon (its run may have ended later).
            if last.len() < self.runs.len() {
                return RunStart::Unknown;
            }
            return last
                .iter()
                .map(|(s, duration)| *s + *duration)
                .max()
                .map_or(RunStart::Unknown, RunStart::At);
        };
        for _ in 0..MAX_STEPS {
            if begin < limit {
                return RunStart::Before(limit);
            }
            // The earliest start of each schedule whose run reaches `begin`.
            let earliest = self.runs.iter().filter_map(|(start, duration)| {
                start
                    .next_at_or_after(tz, begin - *duration)
                    .filter(|s| *s < begin)
            });
            let reach = earliest
                .chain(self.stretch_start(tz, begin, limit))
                .min()
                .filter(|reach| *reach < begin);
            match reach {
                Some(reach) => begin = reach,
                None => return RunStart::At(begin),
            }
        }
        RunStart::Unknown
    }

    /// The instant of the last start in the stretch of minutes, each starting a run of a minute
    /// or more, that begins with `from` (the latest such start at or before the current end);
    /// `None` when it begins no stretch.
    ///
    /// DST: minutes that follow each other on the wall clock fire one after the other in time
    /// (a gap puts the minutes it skips on its end, with the minute that ends it), except
    /// across a fold, where the repeated minutes fire once, at their first occurrence: the
    /// stretch stops before the fold.
    fn stretch_end(&self, tz: Tz, from: Fire, limit: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.minute_crons.is_empty() {
            return None;
        }
        let wall_limit = limit.with_timezone(&tz).naive_local() + Duration::days(1);
        let mut last = covered_until(&self.minute_crons, from.wall, wall_limit);
        if last == from.wall {
            return None;
        }
        if let Some(fold) = first_fold(tz, from.at, resolve(tz, last)?) {
            let before_fold = (fold - Duration::seconds(1))
                .with_timezone(&tz)
                .naive_local();
            last = last.min(before_fold.with_second(0)?.with_nanosecond(0)?);
        }
        (last > from.wall).then(|| resolve(tz, last)).flatten()
    }

    /// The instant of the first start in the stretch of minutes, each starting a run of a
    /// minute or more, that ends with the start at `begin`: [`Self::stretch_end`] backwards,
    /// stopping after a fold.
    fn stretch_start(
        &self,
        tz: Tz,
        begin: DateTime<Utc>,
        limit: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let crons = &self.minute_crons;
        if crons.is_empty() {
            return None;
        }
        let wall = begin.with_timezone(&tz).naive_local();
        // Only a start at `begin` of its own wall-clock minute (not one a gap moved there).
        if !crons.iter().any(|cron| cron.matches(wall)) || resolve(tz, wall) != Some(begin) {
            return None;
        }
        let wall_limit = limit.with_timezone(&tz).naive_local() - Duration::days(1);
        let mut first = covered_since(crons, wall, wall_limit);
        if first == wall {
            return None;
        }
        if let Some(fold) = last_fold(tz, resolve(tz, first)?, begin) {
            // The first wall-clock minute after the repeated ones: those fire before the fold.
            let repeated_end = (fold + fold_length(tz, fold))
                .with_timezone(&tz)
                .naive_local();
            first = first.max(ceil_minute(repeated_end));
        }
        (first < wall).then(|| resolve(tz, first)).flatten()
    }
}

// === impl Freeze ===

impl Freeze {
    /// Whether the freeze is in force at `t`: on `[start, end)`, or within a recurring run.
    pub(crate) fn covers(&self, tz: Tz, t: DateTime<Utc>) -> bool {
        match &self.times {
            FreezeTimes::Once { start, end } => *start <= t && t < *end,
            FreezeTimes::Recurring(schedule) => schedule.open_at(tz, t),
            FreezeTimes::Calendar(calendar) => calendar.at(t).is_some(),
        }
    }

    /// A calendar's freeze changes at each edge of its events, not only where its runs begin
    /// and end: where one event follows another the window stays frozen, but by another event,
    /// which denials and the status name (and the cache must not outlive).
    fn next_change(&self, tz: Tz, t: DateTime<Utc>, limit: DateTime<Utc>) -> Next {
        match &self.times {
            FreezeTimes::Once { start, end } => {
                span_next_change(*start, *end, t).map_or(Next::Never, Next::At)
            }
            FreezeTimes::Recurring(schedule) => schedule.next_change(tz, t, limit),
            FreezeTimes::Calendar(calendar) => {
                calendar_next(calendar, calendar.next_edge_after(t), limit)
            }
        }
    }

    fn run_start(&self, tz: Tz, t: DateTime<Utc>, limit: DateTime<Utc>) -> RunStart {
        match &self.times {
            FreezeTimes::Once { start, end } => span_run_start(*start, *end, t),
            FreezeTimes::Recurring(schedule) => schedule.run_start(tz, t, limit),
            FreezeTimes::Calendar(calendar) => calendar
                .last_edge_at_or_before(t)
                .map_or(RunStart::Always, RunStart::At),
        }
    }
}

/// A calendar part's next change, `next` (from the calendar's lookups), up to `limit`. With no
/// change left in what was expanded, nothing is known past the end of the expansion.
fn calendar_next(calendar: &Calendar, next: Option<DateTime<Utc>>, limit: DateTime<Utc>) -> Next {
    match (next, calendar.expanded_until()) {
        (Some(y), _) if y <= limit => Next::At(y),
        (Some(_), _) => Next::Never,
        (None, Some(until)) if until <= limit => Next::Unknown(until),
        (None, _) => Next::Never,
    }
}

// === impl Window ===

impl Window {
    /// The first instant after `t` (up to `limit`) at which a freeze begins or ends: where
    /// "closed" and "frozen" can change places without the effective state changing.
    pub(crate) fn next_freeze_edge(
        &self,
        t: DateTime<Utc>,
        limit: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.freezes
            .iter()
            .filter_map(|f| match f.next_change(self.time_zone, t, limit) {
                Next::At(edge) => Some(edge),
                Next::Never | Next::NotBefore(_) | Next::Unknown(_) => None,
            })
            .min()
    }
}

impl Window {
    /// The freezes that keep the window closed from `from` until `until` (when a change that
    /// waits lands): the one in force at `from`, as a denial then names it, and each one in
    /// force where the schedules alone would open the window (a holiday on a Monday), in
    /// order, each once. What `plan` names for a change that waits.
    pub(crate) fn freezes_until(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<ActiveFreeze> {
        let eval = Evaluator::new(self);
        let tz = self.time_zone;
        let mut found: Vec<ActiveFreeze> = Vec::new();
        let note = |t: DateTime<Utc>, found: &mut Vec<ActiveFreeze>| {
            if let Some(freeze) = eval.active_freeze(t).filter(|f| !found.contains(f)) {
                found.push(freeze);
            }
        };
        if !eval.open_at(from) {
            note(from, &mut found);
        }
        let mut t = from;
        for _ in 0..MAX_STEPS {
            let opener = eval
                .openers
                .iter()
                .filter_map(|o| o.next_change(tz, t, until).instant())
                .min();
            let Some(next) = [self.next_freeze_edge(t, until), opener]
                .into_iter()
                .flatten()
                .filter(|next| *next > t && *next < until)
                .min()
            else {
                break;
            };
            t = next;
            if !eval.open_at(t) && eval.openers.iter().any(|o| o.open_at(tz, t)) {
                note(t, &mut found);
            }
        }
        found
    }
}

/// One part of a window's state.
enum Part<'a> {
    Opener(&'a Opener<'a>),
    Freeze(&'a Freeze),
    Override(&'a Override),
}

/// The next change after `t` of a part that is active on `[start, end)`.
fn span_next_change(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    t: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if t < start {
        Some(start)
    } else if t < end {
        Some(end)
    } else {
        None
    }
}

/// Where the run containing `t` of a part active on `[start, end)` began.
fn span_run_start(start: DateTime<Utc>, end: DateTime<Utc>, t: DateTime<Utc>) -> RunStart {
    if t < start {
        RunStart::Always
    } else if t < end {
        RunStart::At(start)
    } else {
        RunStart::At(end)
    }
}
