//! Reads ReconciliationWindow YAML from files and folders into a [`WindowSet`].
//!
//! A folder is read recursively (hidden entries such as `.git` skipped), its `*.yaml` and
//! `*.yml` files in path order, like a GitOps repository's `infra/reconciliation-windows/`.
//! A file named explicitly is read whatever its extension.

use crate::files::{FileError, Snapshot, read_files};
use fluxgate_core::window::{WindowSet, WindowSetError, parse_documents};
use std::path::{Path, PathBuf};

pub use fluxgate_core::window::EMBEDDED_WINDOWS;

/// Why windows could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WindowFilesError {
    #[error("{}{}", .0, advice(.0))]
    File(#[from] FileError),
    #[error(transparent)]
    Invalid(#[from] WindowSetError),
    #[error("no ReconciliationWindow found in {0}")]
    Empty(String),
}

/// What to do about a windows file that cannot be read (an unreadable one: the OS error says).
fn advice(error: &FileError) -> &'static str {
    match error {
        FileError::Io { .. } => "",
        FileError::TooLarge { .. } => ": split the windows into several files",
        FileError::NotAFile { .. } => "; give a file or a folder",
    }
}

/// Loads the windows of `paths`, or the embedded examples when `paths` is empty.
pub fn load_windows(paths: &[PathBuf]) -> Result<WindowSet, WindowFilesError> {
    if paths.is_empty() {
        return Ok(WindowSet::embedded()?);
    }
    windows_from_snapshot(paths, &read_windows(paths)?)
}

/// Reads every window file of `paths`.
pub(crate) fn read_windows(paths: &[PathBuf]) -> Result<Snapshot, WindowFilesError> {
    let mut files = Vec::new();
    for path in paths {
        files.extend(yaml_files(path)?);
    }
    Ok(read_files(&files)?)
}

/// Parses and validates the windows of a snapshot of `paths`.
pub(crate) fn windows_from_snapshot(
    paths: &[PathBuf],
    snapshot: &Snapshot,
) -> Result<WindowSet, WindowFilesError> {
    let mut documents = Vec::new();
    // Every file is read, and every problem reported together (`file:line` each).
    let mut errors = Vec::new();
    for (file, bytes) in snapshot {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            FileError::io(
                file,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        match parse_documents(&file.display().to_string(), text) {
            Ok(found) => documents.extend(found),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() && documents.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(WindowFilesError::Empty(names.join(", ")));
    }
    match WindowSet::from_documents(&documents) {
        Ok(set) if errors.is_empty() => Ok(set),
        Ok(_) => Err(WindowSetError::from_list(errors).into()),
        Err(error) => {
            errors.push(error);
            Err(WindowSetError::from_list(errors).into())
        }
    }
}

/// The files a path stands for.
fn yaml_files(path: &Path) -> Result<Vec<PathBuf>, FileError> {
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
        let fifo = dir.join("fifo.yaml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
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
