//! The window set in force, and the only ways a set is put in force or refused.
//!
//! Decisions and `/metrics` read whatever set was last put in force; a swap replaces the set
//! whole, so a decision sees the old set or the new one, never a mix. A set is put in force
//! with its states already computed ([`WindowSet::warm`]): some windows take thousands of cron
//! steps, and the first decisions and scrape after a load then find them cached, on no async
//! worker. Every load is counted and every refusal logged here, whatever the source.

use super::gate::{Gate, Refused};
use arc_swap::{ArcSwap, Guard};
use chrono::{DateTime, Utc};
use fluxgate_core::window::WindowSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A pair of counters by result, `{result="success"}` and `{result="failure"}`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResultCounters {
    pub(crate) success: Counter,
    pub(crate) failure: Counter,
}

impl ResultCounters {
    pub(crate) fn record(&self, ok: bool) {
        if ok { &self.success } else { &self.failure }.inc();
    }
}

/// What loads report to: `fluxgate_window_reloads_total` and `fluxgate_config_valid`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReloadCounters {
    pub(crate) reloads: ResultCounters,
    /// 1 while what is configured is in force, 0 from a refused load until one succeeds.
    pub(crate) valid: Gauge,
}

/// How a set put in force was loaded.
pub(crate) enum Load<'a> {
    /// The first set of a server reading files: not a reload, so not counted.
    Start,
    /// A changed configuration, taken whole.
    Reload,
    /// A changed configuration taken in part: what `problems` name kept its last good version
    /// or stayed out (the cluster, where each object is a unit of change).
    InPart(&'a Refused),
}

/// The window set in force, shared by the server, the file watch and the cluster watch.
pub struct WindowStore {
    current: ArcSwap<WindowSet>,
    /// False until the windows are known (read at start, or listed once from the cluster).
    ready: AtomicBool,
    counters: ReloadCounters,
    /// What every set is held to before it is put in force.
    gate: Gate,
}

impl WindowStore {
    /// A store holding `windows`, ready, with the default policy's gate.
    pub(crate) fn new(windows: WindowSet, counters: ReloadCounters) -> Self {
        WindowStore {
            current: ArcSwap::from_pointee(windows),
            ready: AtomicBool::new(true),
            counters,
            gate: Gate::default(),
        }
    }

    /// An empty store, not ready until its first set is put in force: while the windows load,
    /// every rw change is denied as unknown-window and `/readyz` is 503.
    pub(crate) fn loading(gate: Gate, counters: ReloadCounters) -> Self {
        WindowStore {
            current: Default::default(),
            ready: AtomicBool::new(false),
            counters,
            gate,
        }
    }

    /// The same store with another gate.
    pub(crate) fn with_gate(self, gate: Gate) -> Self {
        WindowStore { gate, ..self }
    }

    /// Empties the store, not ready until the next set is put in force: for windows that come
    /// from the cluster, unknown until first listed.
    pub fn reset(&self) {
        self.current.store(Default::default());
        self.ready.store(false, Ordering::Release);
    }

    /// What sets are held to.
    pub(crate) fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The set in force.
    pub fn load(&self) -> Guard<Arc<WindowSet>> {
        self.current.load()
    }

    /// The set in force, to hold across awaits.
    pub(crate) fn load_full(&self) -> Arc<WindowSet> {
        self.current.load_full()
    }

    /// Whether the windows are known.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Computes the states of `windows` at `now`, puts them in force and counts the load as
    /// `load` says. Slow for some windows: call it on a blocking thread. True when this made the
    /// store ready.
    pub(crate) fn put_in_force(&self, windows: WindowSet, now: DateTime<Utc>, load: Load) -> bool {
        windows.warm(now);
        let count = windows.len();
        self.current.store(Arc::new(windows));
        match load {
            Load::Start => {}
            Load::Reload => {
                self.counters.reloads.record(true);
                self.counters.valid.set(1);
            }
            Load::InPart(problems) => {
                self.reject();
                tracing::error!(error = %problems, windows = count, "some windows are not in force as configured; the last good version of each stays");
            }
        }
        !self.ready.swap(true, Ordering::AcqRel)
    }

    /// [`WindowStore::put_in_force`] of a reloaded set.
    pub(crate) fn publish(&self, windows: WindowSet, now: DateTime<Utc>) -> bool {
        self.put_in_force(windows, now, Load::Reload)
    }

    /// Refuses a load (unreadable files, invalid windows): logged, counted, and the last good
    /// set stays in force; `fluxgate_config_valid` says 0 until a load succeeds.
    pub(crate) fn refuse(&self, error: &dyn Display) {
        self.reject();
        tracing::error!(%error, "new windows rejected; keeping the last good set");
    }

    /// Counts a refused load.
    pub(crate) fn reject(&self) {
        self.counters.reloads.record(false);
        self.counters.valid.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded() -> WindowSet {
        super::super::load_windows(&[]).unwrap()
    }

    #[test]
    fn a_loading_store_is_ready_after_its_first_set_and_counts_every_reload() {
        let counters = ReloadCounters::default();
        let store = WindowStore::loading(Gate::default(), counters.clone());
        assert!(!store.is_ready());
        assert!(store.load().is_empty());

        let now = Utc::now();
        store.refuse(&"broken");
        assert!(!store.is_ready(), "a refused set makes nothing ready");
        assert_eq!(
            (counters.reloads.failure.get(), counters.valid.get()),
            (1, 0)
        );
        assert!(store.put_in_force(embedded(), now, Load::Start));
        assert!(store.is_ready());
        assert_eq!(store.load().len(), embedded().len());
        assert_eq!(counters.reloads.success.get(), 0, "the start is no reload");
        assert!(!store.publish(embedded(), now), "already ready");
        assert_eq!(
            (counters.reloads.success.get(), counters.valid.get()),
            (1, 1)
        );
        let problems = Refused(vec![]);
        store.put_in_force(WindowSet::default(), now, Load::InPart(&problems));
        assert!(store.load().is_empty());
        assert_eq!(
            (counters.reloads.failure.get(), counters.valid.get()),
            (2, 0)
        );
    }
}
