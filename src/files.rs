//! Files the server reads and re-reads while it runs (windows, certificates), as snapshots.
//!
//! A [`Snapshot`] is the contents of a set of files as one version: what a configuration was
//! read from, and what [`watch`] compares to notice a change. Only regular files of at most
//! [`MAX_FILE_BYTES`] are read, so a mistaken path cannot stall a reload or fill memory.
//!
//! Files are read while others write them, so a read is never trusted as it comes:
//! - [`read_consistent`] reads every file, then checks that nothing it read changed meanwhile
//!   (the listing, and each file's device, inode, size, mtime and ctime through its path), and
//!   reads again if something did. Kubernetes updates a Secret or ConfigMap volume by swapping a
//!   `..data` symlink to a new folder: every file of such a volume is opened inside the folder
//!   the link named when the read began ([`Volumes`]), so a read never takes files of two
//!   versions, even from a link swapped back and forth.
//! - [`settled`] takes a change only once two reads [`SETTLE_PAUSE`] apart agree (contents and
//!   stamps). A file rewritten in place (an editor's truncate-then-write) is first empty, then a
//!   prefix of the new file that can look complete; neither lasts that long.
//!
//! [`watch`] polls file *contents* rather than using inotify: with the `..data` swap the watched
//! files themselves never change, so inotify on them misses the update, while re-reading the
//! path through the symlinks sees it. Reading a handful of small files every couple of seconds
//! costs nothing measurable.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest file read. A windows or certificate file is a few KiB; the cap keeps a mistaken
/// path (a log, a disk image) from stalling a reload and filling memory.
pub(crate) const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// How long a changed file must stay the same before it is taken. A program writing a file in
/// place issues its writes within microseconds of each other (an editor, `cat >`, a template
/// tool); a tenth of a second is far beyond that, and short next to the 2 s poll.
pub(crate) const SETTLE_PAUSE: Duration = Duration::from_millis(100);

/// Reads of a change before it counts as still being written: 1 s at [`SETTLE_PAUSE`].
const SETTLE_READS: u32 = 10;

/// Attempts at one consistent read, and the pause between them: a kubelet swap or a rename
/// takes microseconds, so a few quick retries always find one version.
const CONSISTENT_TRIES: u32 = 5;
const RETRY_PAUSE: Duration = Duration::from_millis(5);

/// One file as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileCopy {
    /// The path it was read through (symlinks not resolved, so errors name what was given).
    pub(crate) path: PathBuf,
    pub(crate) bytes: Vec<u8>,
    stamp: Stamp,
}

/// What tells one version of a file from another without reading it. The ctime catches an
/// in-place write that puts the mtime back (`touch -r`, `cp -p`); device and inode, a path that
/// now leads to another file (a rename into place, a `..data` swap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The files of one version of a configuration, in the order they were named or listed.
pub(crate) type Snapshot = Vec<FileCopy>;

/// Whether two snapshots hold the same files with the same contents (whatever their stamps: a
/// `touch`, or a kubelet swap to identical contents, is no change).
pub(crate) fn same_contents(a: &Snapshot, b: &Snapshot) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.path == b.path && a.bytes == b.bytes)
}

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
    /// Every read found something else: a file still being written, or swapped again and again.
    #[error("{} kept changing for {waited:?} ({reads} reads): not read until it stays the same for {SETTLE_PAUSE:?}", names(.paths))]
    Changing {
        paths: Vec<PathBuf>,
        waited: Duration,
        reads: u32,
    },
}

fn names(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "the files".to_owned();
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

impl FileError {
    /// A failed read or listing of `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        FileError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// A file that went away between listing and reading: what a swap or a rename looks like
    /// from the reader, so worth a second read.
    fn is_not_found(&self) -> bool {
        matches!(self, FileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Reads `files` in order as one version (see [`read_consistent`]), each a regular file of at
/// most [`MAX_FILE_BYTES`]: a FIFO would block the reader until someone writes to it.
pub(crate) fn read_files(files: &[PathBuf]) -> Result<Snapshot, FileError> {
    read_consistent(|| Ok(files.to_vec()))
}

/// Lists the files with `list`, reads them all, then lists and stats them again: when anything
/// differs (a file swapped, rewritten, added or gone meanwhile), reads again, a few times at
/// most. What comes back is one version of every file, never files of two versions.
pub(crate) fn read_consistent(
    list: impl Fn() -> Result<Vec<PathBuf>, FileError>,
) -> Result<Snapshot, FileError> {
    let mut changed = Vec::new();
    for attempt in 1..=CONSISTENT_TRIES {
        if attempt > 1 {
            std::thread::sleep(RETRY_PAUSE);
        }
        let files = list()?;
        let mut volumes = Volumes::default();
        let copies = match files.iter().map(|f| read_file(f, &mut volumes)).collect() {
            Ok(copies) => copies,
            Err(error) if error.is_not_found() && attempt < CONSISTENT_TRIES => continue,
            Err(error) => return Err(error),
        };
        changed = changed_since(&files, &copies, &list()?);
        if changed.is_empty() {
            return Ok(copies);
        }
    }
    Err(FileError::Changing {
        paths: changed,
        waited: RETRY_PAUSE * (CONSISTENT_TRIES - 1),
        reads: CONSISTENT_TRIES,
    })
}

/// The files that are not, or no longer, what was read: gone, new, or at another stamp.
fn changed_since(files: &[PathBuf], copies: &Snapshot, listed: &[PathBuf]) -> Vec<PathBuf> {
    let mut changed: Vec<PathBuf> = listed
        .iter()
        .filter(|path| !files.contains(path))
        .chain(files.iter().filter(|path| !listed.contains(path)))
        .cloned()
        .collect();
    for copy in copies {
        let now = std::fs::metadata(&copy.path).map(|meta| Stamp::of(&meta));
        if now.ok() != Some(copy.stamp) {
            changed.push(copy.path.clone());
        }
    }
    changed
}

/// The Kubernetes volumes (ConfigMap, Secret, projected) met in one read, each pinned to the
/// version its `..data` symlink named when first met.
///
/// The kubelet writes each version of such a volume into a new hidden folder, never changed
/// afterwards, and publishes it by renaming `..data` to point at it; the visible names are
/// symlinks through `..data`. Every file of one read is opened inside the folder `..data` named
/// when the read met the volume, so one read is one version by construction, however often the
/// link swaps meanwhile. The check after the read ([`changed_since`]) then only decides
/// whether a newer version is worth a second read. Checking stamps alone is not enough: a link
/// swapped back and forth between version folders (or an inode reused with the same size and
/// timestamps) can show every file at the stamp it was read at, though they were read from two
/// versions.
#[derive(Default)]
struct Volumes(std::collections::HashMap<PathBuf, Option<PathBuf>>);

impl Volumes {
    /// Where to open `path`: inside its volume's pinned version folder when it is a name the
    /// kubelet publishes through `..data`, else `path` itself.
    fn pinned(&mut self, path: &Path) -> PathBuf {
        for volume in path.ancestors().skip(1) {
            let Ok(inside) = path.strip_prefix(volume) else {
                continue;
            };
            let version = self
                .0
                .entry(volume.to_owned())
                .or_insert_with(|| std::fs::read_link(volume.join(DATA_LINK)).ok());
            let Some(version) = version else {
                continue;
            };
            // Only names published through the link: `name -> ..data/name`.
            let Some(first) = inside.components().next() else {
                continue;
            };
            let published = std::fs::read_link(volume.join(first))
                .is_ok_and(|target| target.starts_with(DATA_LINK));
            if published {
                return volume.join(version.as_path()).join(inside);
            }
        }
        path.to_owned()
    }
}

/// The symlink through which the kubelet publishes a volume's current version.
const DATA_LINK: &str = "..data";

fn read_file(path: &Path, volumes: &mut Volumes) -> Result<FileCopy, FileError> {
    use std::io::Read;
    let io = |source| FileError::io(path, source);
    let pinned = volumes.pinned(path);
    let meta = std::fs::metadata(&pinned).map_err(io)?;
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
    let mut file = std::fs::File::open(&pinned).map_err(io)?;
    // The stamp of what was opened, before it is read: the path may lead elsewhere by now, and
    // a write during the read leaves the file at another stamp, which the check after the read
    // sees.
    let opened = file.metadata().map_err(io)?;
    if !opened.is_file() {
        return Err(FileError::NotAFile {
            path: path.to_owned(),
        });
    }
    // The file may have grown since: read one byte past the cap to tell.
    let mut bytes = Vec::with_capacity(opened.len().min(MAX_FILE_BYTES) as usize);
    (&mut file)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(FileCopy {
        path: path.to_owned(),
        bytes,
        stamp: Stamp::of(&opened),
    })
}

/// Reads with `read` until two reads [`SETTLE_PAUSE`] apart agree, starting from `first` (a
/// read already made), at most [`SETTLE_READS`] times; then the change counts as still being
/// written ([`FileError::Changing`]). Errors settle too: one that a second read no longer
/// meets (a file missing for the moment of a non-atomic replace) was part of the change.
/// Blocks for [`SETTLE_PAUSE`] at least: call it on a blocking thread.
pub(crate) fn settled(
    read: &impl Fn() -> Result<Snapshot, FileError>,
    first: Result<Snapshot, FileError>,
) -> Result<Snapshot, FileError> {
    let mut last = first;
    let mut changing = Vec::new();
    for _ in 1..SETTLE_READS {
        std::thread::sleep(SETTLE_PAUSE);
        let next = read();
        let same = match (&last, &next) {
            (Ok(a), Ok(b)) => a == b,
            (_, Err(FileError::Changing { .. })) => false,
            (Err(a), Err(b)) => a.to_string() == b.to_string(),
            _ => false,
        };
        if same {
            return next;
        }
        changing = match (&last, &next) {
            (Ok(a), Ok(b)) => differing(a, b),
            (Ok(one), Err(_)) | (Err(_), Ok(one)) => one.iter().map(|c| c.path.clone()).collect(),
            (Err(_), Err(_)) => Vec::new(),
        };
        last = next;
    }
    Err(FileError::Changing {
        paths: changing,
        waited: SETTLE_PAUSE * (SETTLE_READS - 1),
        reads: SETTLE_READS,
    })
}

/// The files that differ between two snapshots, in either.
fn differing(a: &Snapshot, b: &Snapshot) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for copy in a.iter().chain(b) {
        let twin = |other: &Snapshot| other.iter().find(|c| c.path == copy.path).cloned();
        let same = twin(a) == twin(b);
        if !same && !paths.contains(&copy.path) {
            paths.push(copy.path.clone());
        }
    }
    paths
}

/// Calls `read` every `interval`; when the snapshot's contents differ from the last one seen,
/// waits for them to settle ([`settled`]) and calls `apply` with them. A failed read goes to
/// `failed` (to log and count, saying what to do about it for what the files are for) once per
/// distinct error, not every tick; a failed apply is
/// retried only when the contents change again, so a broken file is reported once. Reading,
/// comparing and applying (parsing windows, certificates) run on a blocking thread: a slow
/// disk, a large file or a FIFO never holds an async worker. Runs until the task is dropped.
pub(crate) async fn watch<R, A, F>(
    interval: Duration,
    initial: Option<Snapshot>,
    read: R,
    apply: A,
    failed: F,
) where
    R: Fn() -> Result<Snapshot, FileError> + Send + 'static,
    A: FnMut(&Snapshot) + Send + 'static,
    F: FnMut(FileError) + Send + 'static,
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

/// One poll's state: what was last applied, and the last error reported.
pub(crate) struct Watcher<R, A, F> {
    pub(crate) last: Option<Snapshot>,
    last_error: Option<String>,
    read: R,
    apply: A,
    failed: F,
}

impl<R, A, F> Watcher<R, A, F>
where
    R: Fn() -> Result<Snapshot, FileError>,
    A: FnMut(&Snapshot),
    F: FnMut(FileError),
{
    #[cfg(test)]
    pub(crate) fn new(initial: Option<Snapshot>, read: R, apply: A, failed: F) -> Self {
        Watcher {
            last: initial,
            last_error: None,
            read,
            apply,
            failed,
        }
    }

    /// One poll: blocks for [`SETTLE_PAUSE`] or more when something changed. After a failed
    /// read, contents that read again are applied even when they are the last ones applied:
    /// what they hold is in force again, which `apply` counts and reports.
    pub(crate) fn check(&mut self) {
        let first = (self.read)();
        let recovering = self.last_error.is_some();
        let unchanged = |snapshot: &Snapshot, last: &Option<Snapshot>| {
            !recovering
                && last
                    .as_ref()
                    .is_some_and(|last| same_contents(snapshot, last))
        };
        match &first {
            Ok(snapshot) if unchanged(snapshot, &self.last) => return,
            Err(error) if self.last_error.as_ref() == Some(&error.to_string()) => return,
            _ => {}
        }
        match settled(&self.read, first) {
            Ok(snapshot) => {
                self.last_error = None;
                if unchanged(&snapshot, &self.last) {
                    return;
                }
                (self.apply)(&snapshot);
                self.last = Some(snapshot);
            }
            Err(error) => {
                let message = error.to_string();
                if self.last_error.as_ref() != Some(&message) {
                    (self.failed)(error);
                    self.last_error = Some(message);
                }
            }
        }
    }
}

/// Makes a FIFO at `path`, for the tests of what refuses one; false when `mkfifo` is not
/// installed, and the FIFO case is skipped. In CI (`CI` set) a missing mkfifo fails the test
/// instead, as tests/common's `tool_available` does for kubectl: a skipped case must not pass
/// for a checked one.
#[cfg(test)]
pub(crate) fn mkfifo(path: &Path) -> bool {
    match std::process::Command::new("mkfifo").arg(path).status() {
        Ok(status) => {
            assert!(status.success(), "mkfifo {}: {status}", path.display());
            true
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "mkfifo not found, and CI is set: it comes with coreutils"
            );
            eprintln!("skipping the FIFO case: mkfifo not found");
            false
        }
        Err(error) => panic!("mkfifo {}: {error}", path.display()),
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
        if mkfifo(&fifo) {
            // Opening a FIFO blocks until a writer comes: this must return at once.
            let error = read_files(std::slice::from_ref(&fifo)).unwrap_err();
            assert!(matches!(error, FileError::NotAFile { .. }), "{error}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The mechanism behind `windows::tests::a_configmap_swapped_while_read_is_never_read_as_a_mix`,
    /// without its timing: once a read has met a kubelet volume, its other files come from the
    /// same version folder though `..data` now names another, and files outside a volume, or
    /// not published through `..data`, are read as named.
    #[test]
    fn the_files_of_one_read_come_from_the_version_its_volume_named_first() {
        let dir = std::env::temp_dir().join(format!("fluxgate-volume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for version in ["..v1", "..v2"] {
            std::fs::create_dir_all(dir.join(version)).unwrap();
            for name in ["a.yaml", "b.yaml"] {
                std::fs::write(dir.join(version).join(name), format!("{version} {name}")).unwrap();
            }
        }
        let link = |target: &str, name: &str| {
            let tmp = dir.join(format!("{name}.tmp"));
            std::os::unix::fs::symlink(target, &tmp).unwrap();
            std::fs::rename(&tmp, dir.join(name)).unwrap();
        };
        link("..v1", "..data");
        link("..data/a.yaml", "a.yaml");
        link("..data/b.yaml", "b.yaml");
        std::fs::write(dir.join("plain.yaml"), "plain").unwrap();
        let mut volumes = Volumes::default();
        let a = read_file(&dir.join("a.yaml"), &mut volumes).unwrap();
        link("..v2", "..data");
        let b = read_file(&dir.join("b.yaml"), &mut volumes).unwrap();
        let plain = read_file(&dir.join("plain.yaml"), &mut volumes).unwrap();
        assert_eq!(a.bytes, b"..v1 a.yaml");
        assert_eq!(
            b.bytes, b"..v1 b.yaml",
            "b read from the version a was read from"
        );
        assert_eq!(b.path, dir.join("b.yaml"), "named as given");
        assert_eq!(plain.bytes, b"plain");
        // The next read meets the new version, and the check after the first read saw the swap.
        let fresh = read_file(&dir.join("b.yaml"), &mut Volumes::default()).unwrap();
        assert_eq!(fresh.bytes, b"..v2 b.yaml");
        let files = [dir.join("a.yaml"), dir.join("b.yaml")];
        assert_eq!(changed_since(&files, &vec![a, b], &files), files);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A projected volume's item at a nested path (`items: [{path: tls/tls.crt}]`) is published
    /// through its top folder (`tls -> ..data/tls`): it is pinned like a top-level name, and a
    /// name given inside the version folder, or through `..data` itself, is read as given.
    #[test]
    fn a_nested_item_of_a_projected_volume_is_pinned_too() {
        let dir = std::env::temp_dir().join(format!("fluxgate-projected-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for version in ["..v1", "..v2"] {
            std::fs::create_dir_all(dir.join(version).join("tls")).unwrap();
            for name in ["tls.crt", "tls.key"] {
                let file = dir.join(version).join("tls").join(name);
                std::fs::write(file, format!("{version} {name}")).unwrap();
            }
        }
        let link = |target: &str, name: &str| {
            let tmp = dir.join(format!("{name}.tmp"));
            std::os::unix::fs::symlink(target, &tmp).unwrap();
            std::fs::rename(&tmp, dir.join(name)).unwrap();
        };
        link("..v1", "..data");
        link("..data/tls", "tls");
        let mut volumes = Volumes::default();
        let crt = read_file(&dir.join("tls/tls.crt"), &mut volumes).unwrap();
        link("..v2", "..data");
        let key = read_file(&dir.join("tls/tls.key"), &mut volumes).unwrap();
        assert_eq!(crt.bytes, b"..v1 tls.crt");
        assert_eq!(
            key.bytes, b"..v1 tls.key",
            "the key of the certificate's version"
        );
        let through = read_file(&dir.join("..data/tls/tls.key"), &mut Volumes::default());
        assert_eq!(through.unwrap().bytes, b"..v2 tls.key");
        let inside = read_file(&dir.join("..v1/tls/tls.key"), &mut Volumes::default());
        assert_eq!(inside.unwrap().bytes, b"..v1 tls.key");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A file rewritten faster than it settles is reported as still changing, once, after a
    /// bounded wait; nothing is applied. The file changes between every two reads (written by
    /// the read itself, so no writer thread starved on a loaded machine can let it settle).
    #[test]
    fn a_file_that_never_settles_is_reported_once_as_changing() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let dir = std::env::temp_dir().join(format!("fluxgate-settle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("windows.yaml");
        std::fs::write(&file, "0").unwrap();
        let files = [file.clone()];
        let churning = AtomicBool::new(true);
        let writes = AtomicUsize::new(0);
        let read = || {
            if churning.load(Ordering::Relaxed) {
                let n = writes.fetch_add(1, Ordering::Relaxed) + 1;
                std::fs::write(&file, n.to_string()).unwrap();
            }
            read_files(&files)
        };
        let (mut applied, mut failed) = (0, Vec::new());
        let started = std::time::Instant::now();
        let initial = read_files(&files).ok();
        let mut watcher = Watcher::new(
            initial,
            read,
            |_: &Snapshot| applied += 1,
            |error| failed.push(error.to_string()),
        );
        watcher.check();
        watcher.check();
        // Back where it was: what is in force is what is configured again, and said so.
        churning.store(false, Ordering::Relaxed);
        std::fs::write(&file, "0").unwrap();
        watcher.check();
        watcher.check();
        drop(watcher);
        assert_eq!(applied, 1, "applied again after the failure, once");
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(
            failed[0].ends_with(
                "kept changing for 900ms (10 reads): not read until it stays the same for 100ms"
            ),
            "{failed:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "bounded");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
