//! Noticing that files changed: windows and TLS certificates reload without restart.
//!
//! Polls file *contents* rather than using inotify. Kubernetes updates Secret and ConfigMap
//! volumes by swapping a `..data` symlink to a new directory: the watched files themselves never
//! change, so inotify on them misses the update, while re-reading the path through the symlinks
//! sees it. Reading a handful of small files every couple of seconds costs nothing measurable.

use crate::load::{LoadError, Snapshot};
use std::time::Duration;

/// Calls `read` every `interval`; when the snapshot differs from the last one seen, calls
/// `apply` with it. A failed read goes to `failed` (to log and count) once per distinct error,
/// not every tick; a failed apply is retried only when the contents change again, so a broken
/// file is reported once. Reading, comparing and applying (parsing windows, certificates) run
/// on a blocking thread: a slow disk, a large file or a FIFO never holds an async worker.
/// Runs until the task is dropped.
pub async fn watch<R, A, F>(
    interval: Duration,
    initial: Option<Snapshot>,
    read: R,
    apply: A,
    failed: F,
) where
    R: Fn() -> Result<Snapshot, LoadError> + Send + 'static,
    A: FnMut(&Snapshot) + Send + 'static,
    F: FnMut(&LoadError) + Send + 'static,
{
    let mut watcher = Watcher {
        last: initial,
        last_error: None,
        read,
        apply,
        failed,
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        watcher = match tokio::task::spawn_blocking(move || {
            watcher.check();
            watcher
        })
        .await
        {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::error!(%error, "the file watcher failed; files are no longer reloaded");
                return;
            }
        };
    }
}

struct Watcher<R, A, F> {
    last: Option<Snapshot>,
    last_error: Option<String>,
    read: R,
    apply: A,
    failed: F,
}

impl<R, A, F> Watcher<R, A, F>
where
    R: Fn() -> Result<Snapshot, LoadError>,
    A: FnMut(&Snapshot),
    F: FnMut(&LoadError),
{
    fn check(&mut self) {
        match (self.read)() {
            Ok(snapshot) => {
                self.last_error = None;
                if self.last.as_ref() != Some(&snapshot) {
                    (self.apply)(&snapshot);
                    self.last = Some(snapshot);
                }
            }
            Err(error) => {
                let message = error.to_string();
                if self.last_error.as_ref() != Some(&message) {
                    (self.failed)(&error);
                    self.last_error = Some(message);
                }
            }
        }
    }
}
