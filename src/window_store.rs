//! The window set in force, and the one way a new set is put in force: from the windows files
//! (`serve --windows`) or from the cluster (`serve --windows-from-cluster`).
//!
//! Decisions and `/metrics` read whatever set was last published; a publish swaps the set whole,
//! so a decision sees the old set or the new one, never a mix. A set is published with its
//! states already computed ([`WindowSet::warm`]): some windows take thousands of cron steps, and
//! the first decisions and scrape after a reload then find them cached, on no async worker.

use arc_swap::{ArcSwap, Guard};
use chrono::{DateTime, Utc};
use fluxgate_core::window::{WindowSet, WindowSetError};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
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
pub(crate) struct ReloadOutcomes {
    pub(crate) reloads: ResultCounters,
    /// 1 while the last load succeeded, 0 after one was rejected.
    pub(crate) valid: Gauge,
}

/// Why a set built for the store was not published; the last good one stays in force.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    #[error(transparent)]
    Invalid(#[from] WindowSetError),
    #[error("building the window set failed: {0}")]
    Failed(#[from] tokio::task::JoinError),
}

/// The window set in force, shared by the server, the file watch and the cluster watch.
pub struct WindowStore {
    current: ArcSwap<WindowSet>,
    /// False until the windows are known (a cluster watch has listed them once).
    ready: AtomicBool,
    outcomes: ReloadOutcomes,
}

impl WindowStore {
    /// A store holding `windows`, ready.
    pub(crate) fn new(windows: WindowSet, outcomes: ReloadOutcomes) -> Self {
        WindowStore {
            current: ArcSwap::from_pointee(windows),
            ready: AtomicBool::new(true),
            outcomes,
        }
    }

    /// Empties the store, not ready until the next publish: for windows that come from the
    /// cluster, unknown until first listed (every rw change is denied as unknown-window).
    pub fn reset(&self) {
        self.current.store(Default::default());
        self.ready.store(false, Ordering::Release);
    }

    /// The set in force.
    pub fn load(&self) -> Guard<Arc<WindowSet>> {
        self.current.load()
    }

    /// The set in force, to hold across awaits.
    pub(crate) fn load_full(&self) -> Arc<WindowSet> {
        self.current.load_full()
    }

    /// Whether the windows are known: false only between [`WindowStore::reset`] and the next
    /// publish.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Computes the states of `windows` at `now`, puts them in force and counts a successful
    /// load. Slow for some windows: call it on a blocking thread (the file watch runs on one).
    /// True when this made the store ready.
    pub(crate) fn publish(&self, windows: WindowSet, now: DateTime<Utc>) -> bool {
        windows.warm(now);
        self.swap_in(windows)
    }

    /// Builds a set with `build` and computes its states on a blocking thread, then puts it in
    /// force; a set that cannot be built is counted as a rejected load. True when this made the
    /// store ready.
    pub(crate) async fn build_and_publish(
        &self,
        now: DateTime<Utc>,
        build: impl FnOnce() -> Result<WindowSet, WindowSetError> + Send + 'static,
    ) -> Result<bool, PublishError> {
        let built = tokio::task::spawn_blocking(move || {
            let windows = build()?;
            windows.warm(now);
            Ok::<_, WindowSetError>(windows)
        })
        .await;
        match built {
            Ok(Ok(windows)) => Ok(self.swap_in(windows)),
            Ok(Err(error)) => {
                self.reject();
                Err(error.into())
            }
            Err(error) => {
                self.reject();
                Err(error.into())
            }
        }
    }

    /// Counts a load that was refused (unreadable files, invalid windows): the last good set
    /// stays in force, and `fluxgate_config_valid` says 0 until a load succeeds.
    pub(crate) fn reject(&self) {
        self.outcomes.reloads.record(false);
        self.outcomes.valid.set(0);
    }

    fn swap_in(&self, windows: WindowSet) -> bool {
        self.current.store(Arc::new(windows));
        self.outcomes.reloads.record(true);
        self.outcomes.valid.set(1);
        !self.ready.swap(true, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded() -> WindowSet {
        crate::window_files::load_windows(&[]).unwrap()
    }

    #[tokio::test]
    async fn a_reset_store_is_ready_after_its_first_publish_and_counts_every_load() {
        let outcomes = ReloadOutcomes::default();
        let store = WindowStore::new(embedded(), outcomes.clone());
        assert!(store.is_ready());
        store.reset();
        assert!(!store.is_ready());
        assert!(store.load().is_empty());

        let now = Utc::now();
        let invalid = store
            .build_and_publish(now, || {
                let text =
                    crate::window_files::EMBEDDED_WINDOWS.replace("0 8 * * MON", "0 25 * * *");
                WindowSet::from_yaml("windows.yaml", &text)
            })
            .await;
        assert!(
            matches!(invalid, Err(PublishError::Invalid(_))),
            "{invalid:?}"
        );
        assert!(!store.is_ready());
        assert_eq!(
            (outcomes.reloads.failure.get(), outcomes.valid.get()),
            (1, 0)
        );

        let first = store.build_and_publish(now, || Ok(embedded())).await;
        assert!(first.unwrap(), "the first publish makes the store ready");
        assert!(store.is_ready());
        assert_eq!(store.load().len(), embedded().len());
        assert!(!store.publish(embedded(), now), "already ready");
        assert_eq!(
            (outcomes.reloads.success.get(), outcomes.valid.get()),
            (2, 1)
        );
    }
}
