//! The windows in force: read from files, held to one gate, and kept in one store. (Windows
//! from the cluster are watched by [`crate::cluster::watch`], through the same gate and store.)
//!
//! - [`read`]: files and folders → one version of their contents → window documents.
//! - [`gate`]: what every window set is held to, whatever its source, every problem at once.
//! - [`store`]: the set in force; every load counted, every refusal logged.
//!
//! Windows files (a ConfigMap volume is files too) are one unit of change: a version with any
//! problem is refused whole and the last good set stays. A version is taken only once it has
//! settled ([`crate::files::settled`]), so a file being written in place is never taken half
//! written, and a folder is read as one version, so a ConfigMap swapped during a read is never
//! taken as a mix of two.

pub(crate) mod gate;
pub(crate) mod read;
pub(crate) mod store;

pub use fluxgate_core::window::EMBEDDED_WINDOWS;
pub(crate) use gate::{Gate, Refused};
pub use read::{ReadError, load_windows};
pub use store::WindowStore;

use crate::clock::Clock;
use crate::files::{FileError, Snapshot, settled};
use anyhow::Context;
use chrono::{DateTime, Utc};
use fluxgate_core::window::WindowSet;
use read::read_windows;
use std::path::PathBuf;
use std::sync::Arc;
use store::Load;

/// Puts in force the windows of a (settled) snapshot of `paths`, or refuses them, the last good
/// set staying. Blocking: the states of the new set are computed before it goes in.
pub(crate) fn reload(
    store: &WindowStore,
    paths: &[PathBuf],
    snapshot: &Snapshot,
    now: DateTime<Utc>,
) {
    match store.gate().check_files(paths, snapshot, now) {
        Ok(windows) => {
            let count = windows.len();
            store.publish(windows, now);
            tracing::info!(windows = count, "windows reloaded");
        }
        Err(refused) => store.refuse(&refused),
    }
}

/// The windows of `paths` (the embedded examples when empty) held to `gate` at `now`, for a
/// command that decides once (`review`): read as one version, but not waited for.
pub(crate) fn load_checked(
    paths: &[PathBuf],
    gate: &Gate,
    now: DateTime<Utc>,
) -> anyhow::Result<WindowSet> {
    let checked = if paths.is_empty() {
        gate.check_embedded(now)
    } else {
        let snapshot = read_windows(paths)
            .map_err(ReadError::from)
            .context("cannot load windows")?;
        gate.check_files(paths, &snapshot, now)
    };
    checked.context("cannot use the windows")
}

/// Loads the first windows of a server reading files (the embedded examples when `paths` is
/// empty) and puts them in force; the server answers `/healthz` meanwhile and is not ready.
/// Files still being written are waited for, however long: a server is not ready with no
/// windows, and one that exits would be restarted into the same wait. Anything else wrong is an
/// error, and the server stops: there is no last good set to keep. Returns the snapshot read,
/// for the watch to compare with.
pub(crate) async fn load_at_start(
    store: Arc<WindowStore>,
    paths: Vec<PathBuf>,
    clock: Clock,
) -> anyhow::Result<Option<Snapshot>> {
    let snapshot = if paths.is_empty() {
        None
    } else {
        Some(read_settled(paths.clone()).await?)
    };
    let first = snapshot.clone();
    let count = tokio::task::spawn_blocking(move || {
        let now = clock.now();
        let windows = match &first {
            Some(snapshot) => store.gate().check_files(&paths, snapshot, now),
            None => store.gate().check_embedded(now),
        }?;
        let count = windows.len();
        store.put_in_force(windows, now, Load::Start);
        Ok::<_, Refused>(count)
    })
    .await
    .context("loading the windows failed")?
    .context("cannot use the windows")?;
    tracing::info!(windows = count, "windows loaded");
    Ok(snapshot)
}

/// The windows files of `paths` once they have settled, on blocking threads.
async fn read_settled(paths: Vec<PathBuf>) -> anyhow::Result<Snapshot> {
    let mut waited = false;
    loop {
        let paths = paths.clone();
        let read = tokio::task::spawn_blocking(move || {
            let read = || read_windows(&paths);
            settled(&read, read())
        })
        .await
        .context("reading the windows failed")?;
        match read {
            Ok(snapshot) => return Ok(snapshot),
            Err(error @ FileError::Changing { .. }) if !waited => {
                let error = ReadError::from(error);
                tracing::warn!(%error, "the windows files are still being written; waiting for them to settle");
                waited = true;
            }
            Err(FileError::Changing { .. }) => {}
            Err(error) => return Err(ReadError::from(error)).context("cannot load windows"),
        }
    }
}

#[cfg(test)]
mod tests;
