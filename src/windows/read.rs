//! Reading ReconciliationWindow YAML from files and folders: which files the paths stand for,
//! one version of them ([`crate::files`]), and the window documents they hold.
//!
//! A folder is read recursively (hidden entries such as `.git`, and a mounted ConfigMap's
//! `..data` and `..2026_12_06_…` folders, skipped), its `*.yaml` and `*.yml` files in path order,
//! like a GitOps repository's `infra/reconciliation-windows/`. A file named explicitly is read
//! whatever its extension.

use crate::files::{FileError, MAX_FILE_BYTES, Snapshot, read_consistent};
use fluxgate_core::window::{
    Document, MAX_CALENDAR_BYTES, WindowSet, WindowSetError, parse_documents,
};
use std::path::{Path, PathBuf};

/// Why windows could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}{}", .0, advice(.0))]
    File(#[from] FileError),
    #[error(transparent)]
    Invalid(#[from] WindowSetError),
}

/// What to do about a windows file that cannot be read (an unreadable one: the OS error says).
fn advice(error: &FileError) -> &'static str {
    match error {
        FileError::Io { .. } => "",
        FileError::TooLarge { .. } => ": split the windows into several files",
        FileError::NotAFile { .. } => "; give a file or a folder",
        FileError::Changing { .. } => {
            "; write a new version to another file of the same file system and rename it into \
             place, which no reader sees half-written"
        }
    }
}

/// Loads the windows of `paths`, or the embedded examples when `paths` is empty: for the
/// commands that show or check windows (`status`, `lint`), which put nothing in force. What
/// `serve` and `review` decide with passes [`super::gate::Gate`] too.
pub fn load_windows(paths: &[PathBuf]) -> Result<WindowSet, ReadError> {
    if paths.is_empty() {
        return Ok(WindowSet::embedded()?);
    }
    let (documents, errors) = documents(paths, &read_windows(paths)?);
    match WindowSet::from_documents(&documents) {
        Ok(set) if errors.is_empty() => Ok(set),
        Ok(_) => Err(WindowSetError::from_list(errors).into()),
        Err(error) => {
            let mut errors = errors;
            errors.push(error);
            Err(WindowSetError::from_list(errors).into())
        }
    }
}

/// Reads every window file of `paths`, and the calendar files their windows name
/// (`spec.calendars[].path`), as one version: the calendars are read with the windows files
/// they were found in, and again if those now name others. Calendar files come last.
pub(crate) fn read_windows(paths: &[PathBuf]) -> Result<Snapshot, FileError> {
    let windows_files = || {
        let mut files = Vec::new();
        for path in paths {
            files.extend(yaml_files(path)?);
        }
        Ok(files)
    };
    let mut snapshot = read_consistent(windows_files)?;
    let mut named = calendar_files(&snapshot);
    for _ in 0..3 {
        if named.is_empty() {
            return Ok(snapshot);
        }
        let list = || {
            let mut files = windows_files()?;
            // A calendar missing, or too large to read, is the window's error (which names it
            // and says what to do about a calendar), not the read's.
            let more: Vec<PathBuf> = named
                .iter()
                .filter(|c| !files.contains(c) && too_large(c).is_some_and(|large| !large))
                .cloned()
                .collect();
            files.extend(more);
            Ok(files)
        };
        snapshot = read_consistent(list)?;
        let now_named = calendar_files(&snapshot);
        if now_named == named {
            return Ok(snapshot);
        }
        named = now_named;
    }
    Err(FileError::Changing {
        paths: named,
        waited: std::time::Duration::ZERO,
        reads: 3,
    })
}

/// The calendar files that the windows of `snapshot` name, resolved against the directory of
/// the windows file naming each, in order, without repeats.
fn calendar_files(snapshot: &Snapshot) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for file in snapshot {
        let Ok(text) = std::str::from_utf8(&file.bytes) else {
            continue;
        };
        // Most windows files name no calendar: not worth a second parse.
        if !text.contains("calendars") {
            continue;
        }
        let origin = file.path.display().to_string();
        for document in parse_documents(&origin, text).unwrap_or_default() {
            for calendar in &document.object.spec.calendars {
                if let Some(path) = &calendar.path {
                    let path = beside(&file.path, path);
                    if !files.contains(&path) {
                        files.push(path);
                    }
                }
            }
        }
    }
    files
}

/// `path` as written in the windows file `file`: relative to the file's directory.
fn beside(file: &Path, path: &str) -> PathBuf {
    file.parent().unwrap_or(Path::new("")).join(path)
}

/// The window documents of a snapshot of `paths`, and every problem met reading them (each at
/// `file:line`). An empty file is a problem, not an empty set of windows: it is what a file
/// being rewritten in place looks like, and taking it would drop its windows.
pub(crate) fn documents(
    paths: &[PathBuf],
    snapshot: &Snapshot,
) -> (Vec<Document>, Vec<WindowSetError>) {
    let mut documents: Vec<Document> = Vec::new();
    let mut errors = Vec::new();
    // The calendar files named so far: read as calendars, not as windows (they come last).
    let mut calendars: Vec<PathBuf> = Vec::new();
    for file in snapshot {
        if calendars.contains(&file.path) {
            continue;
        }
        let origin = file.path.display().to_string();
        let text = match std::str::from_utf8(&file.bytes) {
            Ok(text) => text,
            Err(error) => {
                let message = format!("not UTF-8 text: {error}");
                errors.push(WindowSetError::Object { origin, message });
                continue;
            }
        };
        if text.trim().is_empty() {
            let message = "the file is empty: give it its windows, or delete it".to_owned();
            errors.push(WindowSetError::Object { origin, message });
            continue;
        }
        match parse_documents(&origin, text) {
            Ok(found) => {
                for document in &found {
                    for calendar in &document.object.spec.calendars {
                        if let Some(path) = &calendar.path {
                            calendars.push(beside(&file.path, path));
                        }
                    }
                }
                documents.extend(found);
            }
            Err(error) => errors.push(error),
        }
    }
    for document in &mut documents {
        attach_calendar_files(document, snapshot);
    }
    if errors.is_empty() && documents.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let message = "no ReconciliationWindow found".to_owned();
        let origin = names.join(", ");
        errors.push(WindowSetError::Object { origin, message });
    }
    (documents, errors)
}

/// Hands `document` the calendar files its windows name (`path:`), from `snapshot`.
fn attach_calendar_files(document: &mut Document, snapshot: &Snapshot) {
    let Some(file) = document.file().map(PathBuf::from) else {
        return;
    };
    let named: Vec<(usize, PathBuf)> = document
        .object
        .spec
        .calendars
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, beside(&file, c.path.as_deref()?))))
        .collect();
    for (i, path) in named {
        let data = match snapshot.iter().find(|copy| copy.path == path) {
            Some(copy) => Ok(std::sync::Arc::from(copy.bytes.as_slice())),
            None if too_large(&path) == Some(true) => Err(format!(
                "{} is {} bytes, more than the {MAX_CALENDAR_BYTES} (1 MiB) a calendar may \
                 have: keep the years that matter, or split it into several calendars",
                path.display(),
                std::fs::metadata(&path).map_or(0, |m| m.len()),
            )),
            None => Err(format!(
                "cannot read {}: no such file (a path is relative to the windows file, {})",
                path.display(),
                file.display()
            )),
        };
        document.set_calendar(i, data);
    }
}

/// Whether the calendar file `path` is more than a file may have ([`MAX_FILE_BYTES`]): such
/// a file is not read at all. `None` when it does not exist (or cannot be looked at).
fn too_large(path: &Path) -> Option<bool> {
    std::fs::metadata(path)
        .ok()
        .map(|meta| meta.len() > MAX_FILE_BYTES)
}

/// The files a path stands for.
pub(crate) fn yaml_files(path: &Path) -> Result<Vec<PathBuf>, FileError> {
    let io = |source| FileError::io(path, source);
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .map_err(io)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let child = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        if std::fs::metadata(&child)
            .map_err(|source| FileError::io(&child, source))?
            .is_dir()
        {
            files.extend(yaml_files(&child)?);
        } else if matches!(
            child.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(child);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_windows_file_that_cannot_be_read_says_what_to_do() {
        let dir =
            std::env::temp_dir().join(format!("fluxgate-window-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.yaml");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(crate::files::MAX_FILE_BYTES + 1).unwrap(); // sparse
        let error = load_windows(std::slice::from_ref(&dir)).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{} is 4194305 bytes, more than the 4194304 (4 MiB) a file may have: split the \
                 windows into several files",
                big.display()
            )
        );
        std::fs::remove_file(&big).unwrap();
        // A calendar file that large is the window's problem, with a calendar's advice.
        let windows = dir.join("windows.yaml");
        std::fs::write(
            &windows,
            "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  name: \
             w\nspec:\n  schedules:\n    - open: \"0 8 * * MON\"\n      close: \"0 17 * * \
             THU\"\n  calendars:\n    - name: holidays.ics\n      path: holidays.ics\n",
        )
        .unwrap();
        let calendar = dir.join("holidays.ics");
        let file = std::fs::File::create(&calendar).unwrap();
        file.set_len(crate::files::MAX_FILE_BYTES + 1).unwrap(); // sparse
        let error = load_windows(std::slice::from_ref(&dir))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "{}:11: ReconciliationWindow \"w\": spec.calendars[0].path: {} is 4194305 \
                 bytes, more than the 1048576 (1 MiB) a calendar may have: keep the years that \
                 matter, or split it into several calendars",
                windows.display(),
                calendar.display()
            )
        );
        std::fs::remove_file(&windows).unwrap();
        std::fs::remove_file(&calendar).unwrap();
        let fifo = dir.join("fifo.yaml");
        if crate::files::mkfifo(&fifo) {
            let error = load_windows(std::slice::from_ref(&fifo)).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "{} is not a regular file (a FIFO, socket or device); give a file or a folder",
                    fifo.display()
                )
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
