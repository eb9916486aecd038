//! Whether a window is open at an instant, since when, and until when.
//!
//! A window's effective state is "some schedule open and no freeze active". Each part (a
//! schedule or a freeze) changes state only at its own instants, so the effective state can
//! only change at one of them: `next` walks forward from part change to part change until the
//! effective state differs, `since` walks backward the same way. This looks past freezes and
//! through schedules that overlap or abut without special cases.
//!
//! Pure: the instant is always an argument.

use super::{Freeze, Schedule, Window};
use crate::cron::SEARCH_HORIZON_DAYS;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use std::sync::Arc;

/// How many part changes a walk visits before it gives up. Only degenerate windows get near
/// it (a start every minute lasting longer than a minute is always open): they report no
/// `since`/`next` rather than spin.
const MAX_STEPS: usize = 5_000;

/// The effective state of a window at an instant.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowState {
    pub open: bool,
    /// When the current state began; `None` when it began before the search horizon.
    pub since: Option<DateTime<Utc>>,
    /// When the state changes next; `None` when it does not change within the search horizon.
    pub next: Option<DateTime<Utc>>,
    /// The freeze in force, if any (the window is then closed).
    pub freeze: Option<Freeze>,
}

/// Computes the state of `window` at `t` from scratch.
pub fn evaluate(window: &Window, t: DateTime<Utc>) -> WindowState {
    let eval = Evaluator { window };
    let open = eval.open_at(t);
    WindowState {
        open,
        since: eval.since(t, open),
        next: eval.next(t, open),
        freeze: window.freezes.iter().find(|f| f.covers(t)).cloned(),
    }
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
        let state = evaluate(window, t);
        // The frozen/closed distinction can change without the effective state changing (a
        // freeze starting while the schedules are closed): end the cache at freeze edges too.
        let freeze_edge = window.freezes.iter().filter_map(|f| f.next_change(t)).min();
        let horizon = t + Duration::days(SEARCH_HORIZON_DAYS);
        let until = [state.next, freeze_edge]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(horizon);
        Cached {
            from: t,
            until,
            state: Arc::new(state),
        }
    }

    pub(super) fn covers(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && t < self.until
    }
}

struct Evaluator<'a> {
    window: &'a Window,
}

impl Evaluator<'_> {
    fn tz(&self) -> Tz {
        self.window.time_zone
    }

    fn open_at(&self, t: DateTime<Utc>) -> bool {
        self.window
            .schedules
            .iter()
            .any(|s| s.open_at(self.tz(), t))
            && !self.window.freezes.iter().any(|f| f.covers(t))
    }

    fn next(&self, t: DateTime<Utc>, open: bool) -> Option<DateTime<Utc>> {
        let horizon = t + Duration::days(SEARCH_HORIZON_DAYS);
        let mut x = t;
        for _ in 0..MAX_STEPS {
            let schedule_changes = self
                .window
                .schedules
                .iter()
                .filter_map(|s| s.next_change(self.tz(), x));
            let freeze_changes = self.window.freezes.iter().filter_map(|f| f.next_change(x));
            let y = schedule_changes.chain(freeze_changes).min()?;
            if y > horizon {
                return None;
            }
            if self.open_at(y) != open {
                return Some(y);
            }
            x = y;
        }
        None
    }

    fn since(&self, t: DateTime<Utc>, open: bool) -> Option<DateTime<Utc>> {
        let horizon = t - Duration::days(SEARCH_HORIZON_DAYS);
        let mut x = t;
        for _ in 0..MAX_STEPS {
            let schedule_starts = self
                .window
                .schedules
                .iter()
                .map(|s| s.run_start(self.tz(), x));
            let freeze_starts = self.window.freezes.iter().map(|f| f.run_start(x));
            let mut latest: Option<DateTime<Utc>> = None;
            for start in schedule_starts.chain(freeze_starts) {
                match start {
                    RunStart::At(s) => latest = latest.max(Some(s)),
                    RunStart::Always => {}
                    RunStart::Unknown => return None,
                }
            }
            let s = latest?;
            if s < horizon {
                return None;
            }
            let before = s - Duration::nanoseconds(1);
            if self.open_at(before) != open {
                return Some(s);
            }
            x = before;
        }
        None
    }
}

/// Where the constant run of one part containing an instant began.
enum RunStart {
    At(DateTime<Utc>),
    /// The part has been in this state for as long as anyone can tell (a freeze not yet begun).
    Always,
    /// Past the search horizon or the step limit.
    Unknown,
}

impl From<Option<DateTime<Utc>>> for RunStart {
    fn from(t: Option<DateTime<Utc>>) -> Self {
        t.map_or(RunStart::Unknown, RunStart::At)
    }
}

// === impl Schedule ===

impl Schedule {
    /// Open/close: open when the latest open fire at or before `t` is later than the latest
    /// close fire (so open at the open instant, closed at the close instant). Start/duration:
    /// open when the latest start fire `s` has `t < s + duration`; an earlier start cannot
    /// reach further since every run has the same length.
    pub fn open_at(&self, tz: Tz, t: DateTime<Utc>) -> bool {
        match self {
            Schedule::OpenClose { open, close } => match open.prev_at_or_before(tz, t) {
                None => false,
                Some(o) => close.prev_at_or_before(tz, t).is_none_or(|c| o > c),
            },
            Schedule::StartDuration { start, duration } => start
                .prev_at_or_before(tz, t)
                .is_some_and(|s| t < s + *duration),
        }
    }

    /// The first instant after `t` at which this schedule's state differs from its state at `t`.
    fn next_change(&self, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let is_open = self.open_at(tz, t);
        match self {
            Schedule::OpenClose { open, close } => {
                if is_open {
                    return close.next_after(tz, t);
                }
                // An open fire that coincides with a close fire leaves the schedule closed.
                let mut x = t;
                for _ in 0..MAX_STEPS {
                    let o = open.next_after(tz, x)?;
                    if close.prev_at_or_before(tz, o) != Some(o) {
                        return Some(o);
                    }
                    x = o;
                }
                None
            }
            Schedule::StartDuration { start, duration } => {
                if !is_open {
                    return start.next_after(tz, t);
                }
                // Runs that overlap or abut merge into one open period.
                let mut last = start.prev_at_or_before(tz, t)?;
                let mut end = last + *duration;
                for _ in 0..MAX_STEPS {
                    match start.next_after(tz, last) {
                        Some(s) if s <= end => {
                            end = end.max(s + *duration);
                            last = s;
                        }
                        _ => return Some(end),
                    }
                }
                None
            }
        }
    }

    /// Where this schedule's current run (open or closed) containing `t` began.
    fn run_start(&self, tz: Tz, t: DateTime<Utc>) -> RunStart {
        let is_open = self.open_at(tz, t);
        match self {
            Schedule::OpenClose { open, close } => {
                if is_open {
                    // Open since the first open fire after the latest close.
                    match close.prev_at_or_before(tz, t) {
                        Some(c) => open.next_after(tz, c).into(),
                        None => RunStart::Unknown,
                    }
                } else {
                    // Closed since the first close fire at or after the latest open.
                    match open.prev_at_or_before(tz, t) {
                        Some(o) => close.next_at_or_after(tz, o).into(),
                        None => RunStart::Unknown,
                    }
                }
            }
            Schedule::StartDuration { start, duration } => {
                let Some(last) = start.prev_at_or_before(tz, t) else {
                    return RunStart::Unknown;
                };
                if !is_open {
                    return RunStart::At(last + *duration);
                }
                let mut begin = last;
                for _ in 0..MAX_STEPS {
                    match start.prev_before(tz, begin) {
                        Some(s) if s + *duration >= begin => begin = s,
                        _ => return RunStart::At(begin),
                    }
                }
                RunStart::Unknown
            }
        }
    }
}

// === impl Freeze ===

impl Freeze {
    /// A freeze covers `[start, end)`.
    pub fn covers(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    fn next_change(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if t < self.start {
            Some(self.start)
        } else if t < self.end {
            Some(self.end)
        } else {
            None
        }
    }

    fn run_start(&self, t: DateTime<Utc>) -> RunStart {
        if t < self.start {
            RunStart::Always
        } else if t < self.end {
            RunStart::At(self.start)
        } else {
            RunStart::At(self.end)
        }
    }
}
