//! Reads ReconciliationWindow YAML from files and folders into a [`WindowSet`].
//!
//! A folder is read recursively (hidden entries such as `.git` skipped), its `*.yaml` and
//! `*.yml` files in path order, like a GitOps repository's `infra/reconciliation-windows/`.
//! A file named explicitly is read whatever its extension.

use crate::window::{WindowSet, WindowSetError, parse_documents};
use std::path::{Path, PathBuf};

/// The example windows built into the binary (`deploy/examples/windows.yaml`).
pub const EMBEDDED_WINDOWS: &str = include_str!("../deploy/examples/windows.yaml");
/// Where the embedded windows say they came from in messages.
pub const EMBEDDED_ORIGIN: &str = "<embedded deploy/examples/windows.yaml>";

/// Why windows could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] WindowSetError),
    #[error("no ReconciliationWindow found in {0}")]
    Empty(String),
    #[error(
        "{path} is {size} bytes, more than the {MAX_FILE_BYTES} (4 MiB) a windows or \
         certificate file may have: split the windows into several files"
    )]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{path} is not a regular file (a FIFO, socket or device); give a file or a folder")]
    NotAFile { path: PathBuf },
}

/// The largest windows or certificate file read. A real one is a few KiB; the cap keeps a
/// mistaken path (a log, a disk image) from stalling a reload and filling memory.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The contents of a set of files at one moment: what a configuration was read from, and what
/// the server's reload compares to notice a change.
pub type Snapshot = Vec<(PathBuf, Vec<u8>)>;

/// Loads the windows of `paths`, or the embedded examples when `paths` is empty.
pub fn load_windows(paths: &[PathBuf]) -> Result<WindowSet, LoadError> {
    if paths.is_empty() {
        return Ok(WindowSet::from_yaml(EMBEDDED_ORIGIN, EMBEDDED_WINDOWS)?);
    }
    windows_from_snapshot(paths, &read_windows(paths)?)
}

/// Reads every window file of `paths`.
pub fn read_windows(paths: &[PathBuf]) -> Result<Snapshot, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        files.extend(yaml_files(path)?);
    }
    read_files(&files)
}

/// Reads `files` in order, each a regular file of at most [`MAX_FILE_BYTES`]: a FIFO would
/// block the reader until someone writes to it.
pub fn read_files(files: &[PathBuf]) -> Result<Snapshot, LoadError> {
    files
        .iter()
        .map(|file| Ok((file.clone(), read_file(file)?)))
        .collect()
}

fn read_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    let io = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(LoadError::NotAFile {
            path: path.to_owned(),
        });
    }
    let too_large = |size| LoadError::TooLarge {
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

/// Parses and validates the windows of a snapshot of `paths`.
pub fn windows_from_snapshot(
    paths: &[PathBuf],
    snapshot: &Snapshot,
) -> Result<WindowSet, LoadError> {
    let mut documents = Vec::new();
    // Every file is read, and every problem reported together (`file:line` each).
    let mut errors = Vec::new();
    for (file, bytes) in snapshot {
        let text = std::str::from_utf8(bytes).map_err(|e| LoadError::Io {
            path: file.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        match parse_documents(&file.display().to_string(), text) {
            Ok(found) => documents.extend(found),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() && documents.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(LoadError::Empty(names.join(", ")));
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
pub fn yaml_files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
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
            .map_err(|source| LoadError::Io {
                path: child.clone(),
                source,
            })?
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
    fn an_oversized_file_or_a_fifo_is_refused_without_reading_it() {
        let dir = std::env::temp_dir().join(format!("fluxgate-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.yaml");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_FILE_BYTES + 1).unwrap(); // sparse: no 4 MiB written
        let error = read_files(std::slice::from_ref(&big)).unwrap_err();
        assert!(matches!(error, LoadError::TooLarge { size, .. } if size == MAX_FILE_BYTES + 1));
        assert!(
            error.to_string().contains("more than the 4194304 (4 MiB)"),
            "{error}"
        );
        let fifo = dir.join("fifo.yaml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // Opening a FIFO blocks until a writer comes: this must return at once.
            let error = read_files(std::slice::from_ref(&fifo)).unwrap_err();
            assert!(matches!(error, LoadError::NotAFile { .. }), "{error}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
