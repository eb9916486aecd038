//! Windows files read while someone writes them: the poll of `serve` (the file watch's check and
//! the reload behind it) racing a writer, bounded in count and time. What is put in force must
//! always be one whole version of the files, never a moment of a write.

use super::read::read_windows;
use super::store::{ReloadCounters, WindowStore};
use super::{Gate, reload};
use crate::files::Watcher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A scratch folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("fluxgate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn window(name: &str, description: &str, tail: &str) -> String {
    format!(
        "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  name: {name}\n\
         spec:\n  description: {description}\n  schedules:\n    - start: \"0 8 * * *\"\n      \
         duration: 1h\n{tail}"
    )
}

/// A freeze from 2000 to 2200: the window is closed whatever the schedule says.
const FREEZE: &str = "  freezes:\n    - start: \"2000-01-01T00:00:00Z\"\n      end: \
                      \"2200-01-01T00:00:00Z\"\n      reason: year-end\n";

/// What the poll did, and what it saw in force after each check.
#[derive(Default)]
struct Seen {
    polls: AtomicUsize,
    applied: AtomicUsize,
    /// Sets put in force that no version of the files holds.
    wrong: Mutex<Vec<String>>,
}

/// Runs the watch's check on this thread until `done`, then once more with the files at rest;
/// after each check, `judge` says what is wrong with the set in force (`None`: nothing).
fn poll(
    paths: Vec<PathBuf>,
    store: Arc<WindowStore>,
    done: &AtomicBool,
    seen: &Seen,
    judge: impl Fn(&fluxgate_core::window::WindowSet) -> Option<String>,
) {
    let now = chrono::Utc::now();
    let read_paths = paths.clone();
    let reload_store = store.clone();
    let applied = &seen.applied;
    let failures = store.clone();
    let mut watcher = Watcher::new(
        read_windows(&paths).ok(),
        move || read_windows(&read_paths),
        move |snapshot| {
            applied.fetch_add(1, Ordering::Relaxed);
            reload(&reload_store, &paths, snapshot, now);
        },
        move |error| failures.refuse(&super::ReadError::from(error)),
    );
    let mut last_round = false;
    loop {
        last_round |= done.load(Ordering::Acquire);
        watcher.check();
        seen.polls.fetch_add(1, Ordering::Relaxed);
        if let Some(wrong) = judge(&store.load()) {
            seen.wrong.lock().unwrap().push(wrong);
        }
        if last_round {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn store(counters: &ReloadCounters, paths: &[PathBuf]) -> Arc<WindowStore> {
    let store = WindowStore::loading(Gate::default(), counters.clone());
    let snapshot = read_windows(paths).unwrap();
    let now = chrono::Utc::now();
    let windows = Gate::default().check_files(paths, &snapshot, now).unwrap();
    store.put_in_force(windows, now, super::store::Load::Start);
    Arc::new(store)
}

/// Issue 21, item 1: a windows file rewritten in place (truncate, write, a pause, write) is
/// first empty, then a valid prefix of the new file without the freeze both versions hold.
/// Neither is ever put in force, nor counted as a refused reload.
#[test]
fn a_file_rewritten_in_place_is_never_taken_half_written() {
    let dir = Scratch::new("in-place");
    let file = dir.0.join("windows.yaml");
    let head = |n: usize| window("business-hours", &format!("version {n}"), "");
    std::fs::write(&file, head(0) + FREEZE).unwrap();
    let paths = vec![file.clone()];
    let counters = ReloadCounters::default();
    let store = store(&counters, &paths);
    let (done, seen) = (AtomicBool::new(false), Seen::default());
    const REWRITES: usize = 40;
    let started = Instant::now();
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            use std::io::Write;
            for n in 1..=REWRITES {
                let mut out = std::fs::File::create(&file).unwrap(); // truncates
                out.write_all(head(n).as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(n as u64 % 4));
                out.write_all(FREEZE.as_bytes()).unwrap();
                drop(out);
                // Some versions last long enough to be taken, some are rewritten at once.
                let hold = [0, 30, 250][n % 3];
                std::thread::sleep(Duration::from_millis(hold));
            }
            done.store(true, Ordering::Release);
        });
        poll(paths.clone(), store.clone(), &done, &seen, |set| {
            let window = set.get("business-hours")?;
            let frozen = window.state_at(chrono::Utc::now()).freeze.is_some();
            (!frozen).then(|| format!("{:?} without its freeze", window.description()))
        });
        writer.join().unwrap();
    });
    let wrong = seen.wrong.lock().unwrap();
    println!(
        "in-place rewrites: {REWRITES} rewrites in {:?}, {} polls, {} versions put in force, \
         {} refused, {} partial sets in force",
        started.elapsed(),
        seen.polls.load(Ordering::Relaxed),
        seen.applied.load(Ordering::Relaxed),
        counters.reloads.failure.get(),
        wrong.len()
    );
    assert!(wrong.is_empty(), "partial sets in force: {wrong:?}");
    // A write in progress is no failed reload: only a writer starved longer than the settle
    // time (a loaded CI machine) leaves an empty file that long, and that read is refused, the
    // last good set staying; before the settled read, 392 of these were refused in one run.
    assert!(
        counters.reloads.failure.get() <= (REWRITES / 10) as u64,
        "a write in progress is no failed reload: {} refused",
        counters.reloads.failure.get()
    );
    let last = store.load();
    assert_eq!(
        last.get("business-hours").unwrap().description(),
        Some(format!("version {REWRITES}").as_str()),
        "the last version is in force once the writer stops"
    );
}

/// A ConfigMap volume as the kubelet's AtomicWriter updates it: each version's files in a
/// timestamped folder, the `..data` symlink swapped to it by a rename. `a.yaml`, `b.yaml`, …
/// are symlinks through `..data`, made once. (The kubelet then removes the old folder, which
/// no reader sees but through `..data`; here the folders stay, so that a few versions can be
/// swapped back and forth as fast as renames go.)
struct Volume<'a>(&'a Path);

impl Volume<'_> {
    /// Writes the files of a version into their folder, not yet visible.
    fn write(&self, version: usize, files: &[(String, String)]) {
        let folder = self.folder(version);
        std::fs::create_dir(&folder).unwrap();
        for (name, text) in files {
            std::fs::write(folder.join(name), text).unwrap();
        }
        for (name, _) in files {
            let link = self.0.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(format!("..data/{name}"), &link).unwrap();
            }
        }
    }

    /// Makes a written version the one the volume shows, as one rename.
    fn swap(&self, version: usize) {
        let tmp = self.0.join("..data_tmp");
        std::os::unix::fs::symlink(self.folder(version).file_name().unwrap(), &tmp).unwrap();
        std::fs::rename(&tmp, self.0.join("..data")).unwrap();
    }

    fn folder(&self, version: usize) -> PathBuf {
        let stamp = format!(
            "..2026_12_06_10_{:02}_{:02}",
            version / 60 % 60,
            version % 60
        );
        self.0.join(format!("{stamp}.{}", 4_000_000 + version))
    }
}

/// Issue 21, item 2: a ConfigMap volume read while the kubelet swaps it. Version `n` holds
/// window `a-n` in a.yaml, `b-n` in b.yaml, and so on: a read with `a-n` and `b-m` is a mix of
/// two versions. The reader the file watch polls with, in a tight loop against swaps as fast as
/// renames go, never returns one. Two versions swapped back and forth, as no kubelet does, is
/// the hardest case: every file can be back at the stamp it was read at by the time it is
/// checked, so only reading one version folder ([`crate::files`]) keeps a read whole.
#[test]
fn a_configmap_swapped_while_read_is_never_read_as_a_mix() {
    let dir = Scratch::new("configmap");
    const FILES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
    let files = |n: usize| FILES.map(|f| (format!("{f}.yaml"), window(&format!("{f}-{n}"), f, "")));
    let volume = Volume(&dir.0);
    const VERSIONS: usize = 2;
    for n in 0..VERSIONS {
        volume.write(n, &files(n));
    }
    volume.swap(0);
    let paths = vec![dir.0.clone()];
    let done = AtomicBool::new(false);
    let (swaps, reads, changing, mixed) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        Mutex::new(Vec::new()),
    );
    const ROUNDS: usize = 5;
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut n = 0;
            for _ in 0..ROUNDS {
                // A burst of swaps, then a version that lasts.
                let burst = Instant::now();
                while burst.elapsed() < Duration::from_millis(200) {
                    n += 1;
                    volume.swap(n % VERSIONS);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            swaps.store(n, Ordering::Relaxed);
            done.store(true, Ordering::Release);
        });
        while !done.load(Ordering::Acquire) {
            match read_windows(&paths) {
                Ok(snapshot) => {
                    reads.fetch_add(1, Ordering::Relaxed);
                    // The version each file holds, from its window's name: `name: a-3`.
                    let versions: Vec<&str> = snapshot
                        .iter()
                        .map(|file| std::str::from_utf8(&file.bytes).unwrap())
                        .filter_map(|text| text.split("name: ").nth(1)?.lines().next()?.get(2..))
                        .collect();
                    if versions.len() != FILES.len() || versions.iter().any(|v| *v != versions[0]) {
                        mixed.lock().unwrap().push(format!("{versions:?}"));
                    }
                }
                Err(crate::files::FileError::Changing { .. }) => {
                    changing.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => panic!("{error}"),
            }
        }
    });
    let mixed = mixed.into_inner().unwrap();
    println!(
        "ConfigMap swaps: {} swaps in {:?}; {} reads of one version, {} found it still \
         changing, {} mixes",
        swaps.load(Ordering::Relaxed),
        started.elapsed(),
        reads.load(Ordering::Relaxed),
        changing.load(Ordering::Relaxed),
        mixed.len()
    );
    assert!(
        mixed.is_empty(),
        "mixed reads: {:?}",
        &mixed[..mixed.len().min(5)]
    );
    assert!(reads.load(Ordering::Relaxed) > 0);
}

/// Issue 21, item 7: a reload to a set without the `--default-window` is refused like an
/// invalid one (counted, `config_valid` 0), and the last good set, default window included,
/// stays in force.
#[test]
fn a_reload_without_the_default_window_is_refused() {
    let dir = Scratch::new("default-window");
    let file = dir.0.join("windows.yaml");
    let both = [window("main", "m", ""), window("other", "o", "")].join("---\n");
    std::fs::write(&file, &both).unwrap();
    let paths = vec![file.clone()];
    let counters = ReloadCounters::default();
    let policy = fluxgate_core::policy::Policy {
        default_window: "main".into(),
        ..Default::default()
    };
    let gate = Gate::new(policy, true);
    let store = WindowStore::loading(gate, counters.clone());
    let now = chrono::Utc::now();
    reload(&store, &paths, &read_windows(&paths).unwrap(), now);
    assert_eq!(counters.reloads.success.get(), 1);

    std::fs::write(&file, window("other", "o", "")).unwrap();
    reload(&store, &paths, &read_windows(&paths).unwrap(), now);
    assert_eq!(
        (counters.reloads.failure.get(), counters.valid.get()),
        (1, 0)
    );
    assert!(
        store.load().get("main").is_some(),
        "the last good set stays"
    );
}
