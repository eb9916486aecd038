//! Noticing that files changed: windows and TLS certificates reload without restart.
//!
//! Polls file *contents* rather than using inotify. Kubernetes updates Secret and ConfigMap
//! volumes by swapping a `..data` symlink to a new directory: the watched files themselves never
//! change, so inotify on them misses the update, while re-reading the path through the symlinks
//! sees it. Reading a handful of small files every couple of seconds costs nothing measurable.

use crate::load::{LoadError, Snapshot};
use std::time::Duration;

/// Calls `read` every `interval`; when the snapshot differs from the last one seen, calls
/// `apply` with it. A failed read or apply is retried only when the contents change again,
/// so a broken file is reported once, not every tick. Runs until the task is dropped.
pub async fn watch<R, A>(interval: Duration, initial: Option<Snapshot>, read: R, mut apply: A)
where
    R: Fn() -> Result<Snapshot, LoadError>,
    A: FnMut(&Snapshot),
{
    let mut last = initial;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match read() {
            Ok(snapshot) => {
                if last.as_ref() != Some(&snapshot) {
                    apply(&snapshot);
                    last = Some(snapshot);
                }
            }
            Err(error) => {
                tracing::debug!(%error, "cannot read watched files; will retry");
            }
        }
    }
}
