//! Files the server reads and re-reads while it runs (windows, certificates), as snapshots.
//!
//! A [`Snapshot`] is the contents of a set of files at one moment: what a configuration was read
//! from, and what [`watch`] compares to notice a change. Only regular files of at most
//! [`MAX_FILE_BYTES`] are read, so a mistaken path cannot stall a reload or fill memory.
//!
//! [`watch`] polls file *contents* rather than using inotify. Kubernetes updates Secret and
//! ConfigMap volumes by swapping a `..data` symlink to a new directory: the watched files
//! themselves never change, so inotify on them misses the update, while re-reading the path
//! through the symlinks sees it. Reading a handful of small files every couple of seconds costs
//! nothing measurable.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest file read. A windows or certificate file is a few KiB; the cap keeps a mistaken
/// path (a log, a disk image) from stalling a reload and filling memory.
pub(crate) const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The contents of a set of files at one moment, in the order they were named.
pub(crate) type Snapshot = Vec<(PathBuf, Vec<u8>)>;

/// Why a file could not be read. Each names the file; what to do about it depends on what the
/// file is for, so the errors of windows and certificates add their own advice.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is {size} bytes, more than the {MAX_FILE_BYTES} (4 MiB) a file may have")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{path} is not a regular file (a FIFO, socket or device)")]
    NotAFile { path: PathBuf },
}

impl FileError {
    /// A failed read or listing of `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        FileError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Reads `files` in order, each a regular file of at most [`MAX_FILE_BYTES`]: a FIFO would
/// block the reader until someone writes to it.
pub(crate) fn read_files(files: &[PathBuf]) -> Result<Snapshot, FileError> {
    files
        .iter()
        .map(|file| Ok((file.clone(), read_file(file)?)))
        .collect()
}

fn read_file(path: &Path) -> Result<Vec<u8>, FileError> {
    use std::io::Read;
    let io = |source| FileError::io(path, source);
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile {
            path: path.to_owned(),
        });
    }
    let too_large = |size| FileError::TooLarge {
        path: path.to_owned(),
        size,
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(meta.len()));
    }
    // The file may have grown since: read one byte past the cap to tell.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Calls `read` every `interval`; when the snapshot differs from the last one seen, calls
/// `apply` with it. A failed read goes to `failed` (to log and count) once per distinct error,
/// not every tick; a failed apply is retried only when the contents change again, so a broken
/// file is reported once. Reading, comparing and applying (parsing windows, certificates) run
/// on a blocking thread: a slow disk, a large file or a FIFO never holds an async worker.
/// Runs until the task is dropped.
pub(crate) async fn watch<R, A, F, E>(
    interval: Duration,
    initial: Option<Snapshot>,
    read: R,
    apply: A,
    failed: F,
) where
    R: Fn() -> Result<Snapshot, E> + Send + 'static,
    A: FnMut(&Snapshot) + Send + 'static,
    F: FnMut(&E) + Send + 'static,
    E: std::fmt::Display + 'static,
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

impl<R, A, F, E> Watcher<R, A, F>
where
    R: Fn() -> Result<Snapshot, E>,
    A: FnMut(&Snapshot),
    F: FnMut(&E),
    E: std::fmt::Display,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_file_or_a_fifo_is_refused_without_reading_it() {
        let dir = std::env::temp_dir().join(format!("fluxgate-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.yaml");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_FILE_BYTES + 1).unwrap(); // sparse: no 4 MiB written
        let error = read_files(std::slice::from_ref(&big)).unwrap_err();
        assert!(matches!(error, FileError::TooLarge { size, .. } if size == MAX_FILE_BYTES + 1));
        assert!(
            error.to_string().contains("more than the 4194304 (4 MiB)"),
            "{error}"
        );
        let fifo = dir.join("fifo.yaml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // Opening a FIFO blocks until a writer comes: this must return at once.
            let error = read_files(std::slice::from_ref(&fifo)).unwrap_err();
            assert!(matches!(error, FileError::NotAFile { .. }), "{error}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
