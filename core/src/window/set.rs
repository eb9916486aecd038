//! The set of windows in force, built from multi-document YAML text.
//!
//! Building is all-or-nothing: one bad window makes the whole set an error (listing every bad
//! window, each at `file:line`), so a caller can keep its last good set instead of running
//! with a partial one. Reading files is the caller's
//! business (the `fluxgate` package's `windows::read`); this module only sees text and where it came from.

use super::{API_VERSION, KIND, ReconciliationWindow, Window, WindowError};
use std::collections::BTreeMap;

/// The example windows built into `fluxgate` (`deploy/examples/windows.yaml`).
pub const EMBEDDED_WINDOWS: &str = include_str!("../../../deploy/examples/windows.yaml");
/// Where the embedded windows say they came from in messages.
pub const EMBEDDED_ORIGIN: &str = "<embedded deploy/examples/windows.yaml>";

/// A ReconciliationWindow found in a YAML stream, with where it came from.
#[derive(Clone, Debug)]
pub struct Document {
    /// `path` or `path#3` (the document index, from 1, when a file holds several).
    pub origin: String,
    pub object: ReconciliationWindow,
}

/// Why a set of windows could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WindowSetError {
    #[error("{origin}: not valid YAML: {message}")]
    Yaml { origin: String, message: String },
    #[error("{origin}: {message}")]
    Object { origin: String, message: String },
    #[error("{origin}: {error}")]
    Window { origin: String, error: WindowError },
    #[error("ReconciliationWindow {name:?} is defined twice: in {first} and in {second}")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
    /// Several of the above, in input order: every invalid window is reported at once.
    #[error("{} invalid windows:{}", .0.len(), list(.0))]
    Many(Vec<WindowSetError>),
}

fn list(errors: &[WindowSetError]) -> String {
    errors.iter().map(|e| format!("\n  {e}")).collect()
}

impl WindowSetError {
    /// `Ok` when there are no errors, the error when there is one, `Many` otherwise (nested
    /// lists flattened).
    pub(crate) fn all(errors: Vec<WindowSetError>) -> Result<(), WindowSetError> {
        if errors.is_empty() {
            return Ok(());
        }
        Err(Self::from_list(errors))
    }

    /// One error for a (non-empty) list: itself when alone, else `Many`, nested lists flattened.
    pub fn from_list(errors: Vec<WindowSetError>) -> WindowSetError {
        let mut flat: Vec<WindowSetError> = Vec::with_capacity(errors.len());
        for error in errors {
            match error {
                WindowSetError::Many(inner) => flat.extend(inner),
                other => flat.push(other),
            }
        }
        if flat.len() == 1 {
            return flat.remove(0);
        }
        WindowSetError::Many(flat)
    }
}

/// Windows by name.
#[derive(Debug, Default)]
pub struct WindowSet {
    windows: BTreeMap<String, Window>,
}

/// Finds the ReconciliationWindow documents in a multi-document YAML stream; other kinds are
/// skipped (a GitOps folder also holds `kustomization.yaml` and friends). Each document is
/// parsed on its own, so one that is broken does not hide the others: every problem is
/// reported, each as `origin:line`.
pub fn parse_documents(origin: &str, text: &str) -> Result<Vec<Document>, WindowSetError> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (start, chunk) in split_documents(text) {
        let origin = format!("{origin}:{}", content_line(start, &chunk));
        match parse_document(origin, start, &chunk) {
            Ok(Some(document)) => found.push(document),
            Ok(None) => {}
            Err(error) => errors.push(error),
        }
    }
    WindowSetError::all(errors)?;
    Ok(found)
}

/// One document of a stream starting at line `start`: `None` when it is not a window.
fn parse_document(
    origin: String,
    start: usize,
    chunk: &str,
) -> Result<Option<Document>, WindowSetError> {
    let value: serde_yaml::Value =
        serde_yaml::from_str(chunk).map_err(|e| WindowSetError::Yaml {
            origin: origin.clone(),
            message: relocate(&e.to_string(), start),
        })?;
    if !is_window(&value) {
        return Ok(None);
    }
    let api_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if api_version != API_VERSION {
        let message = format!("{KIND} apiVersion {api_version:?} is not served: use {API_VERSION}");
        return Err(WindowSetError::Object { origin, message });
    }
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_owned();
    let object: ReconciliationWindow =
        serde_yaml::from_value(value).map_err(|e| WindowSetError::Object {
            origin: origin.clone(),
            message: format!("{KIND} {name:?}: {e}"),
        })?;
    Ok(Some(Document { origin, object }))
}

/// Splits at `---` lines, keeping each document's first line number (1-based). Splitting
/// here rather than in the YAML parser is what lets findings name a line.
pub(crate) fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut documents = Vec::new();
    let mut start = 1;
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let marker =
            line.starts_with("---") && line[3..].chars().next().is_none_or(char::is_whitespace);
        if marker && !current.trim().is_empty() {
            documents.push((start, std::mem::take(&mut current)));
        }
        if marker {
            current.clear();
            start = i + 1;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        documents.push((start, current));
    }
    documents
}

/// A YAML error message with its "at line N" made relative to the file, not the document.
pub(crate) fn relocate(message: &str, start: usize) -> String {
    const AT: &str = " at line ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(AT) {
        out.push_str(&rest[..i + AT.len()]);
        rest = &rest[i + AT.len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(start + n.saturating_sub(1)).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// The first line of a document that holds content (not `---`, a comment or blank).
pub(crate) fn content_line(start: usize, chunk: &str) -> usize {
    chunk
        .lines()
        .position(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && !t.starts_with("---")
        })
        .map_or(start, |i| start + i)
}

fn is_window(value: &serde_yaml::Value) -> bool {
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).unwrap_or("");
    super::is_window_type(text("apiVersion"), text("kind"))
}

// === impl WindowSet ===

impl WindowSet {
    /// Validates every document and rejects duplicate names.
    pub fn from_documents(documents: &[Document]) -> Result<Self, WindowSetError> {
        let mut windows = Vec::with_capacity(documents.len());
        let mut errors = Vec::new();
        for document in documents {
            match Window::from_object(&document.object) {
                Ok(window) => windows.push((document.origin.clone(), window)),
                Err(error) => errors.push(WindowSetError::Window {
                    origin: document.origin.clone(),
                    error,
                }),
            }
        }
        let (set, duplicates) = Self::from_windows(windows);
        errors.extend(duplicates);
        WindowSetError::all(errors)?;
        Ok(set)
    }

    /// The set of windows already validated, each with its origin, and an error for each name
    /// met again (the first stays): for a caller that checks more than [`Window::from_object`]
    /// before a window may join a set.
    pub fn from_windows(
        windows: impl IntoIterator<Item = (String, Window)>,
    ) -> (Self, Vec<WindowSetError>) {
        let mut set = BTreeMap::new();
        let mut origins: BTreeMap<String, String> = BTreeMap::new();
        let mut duplicates = Vec::new();
        for (origin, window) in windows {
            if let Some(first) = origins.get(window.name()) {
                duplicates.push(WindowSetError::Duplicate {
                    name: window.name().to_owned(),
                    first: first.clone(),
                    second: origin,
                });
                continue;
            }
            origins.insert(window.name().to_owned(), origin);
            set.insert(window.name().to_owned(), window);
        }
        (WindowSet { windows: set }, duplicates)
    }

    /// The example windows built into `fluxgate` ([`EMBEDDED_WINDOWS`]), which it serves when
    /// given no windows, and which the examples and tests decide against.
    pub fn embedded() -> Result<Self, WindowSetError> {
        Self::from_yaml(EMBEDDED_ORIGIN, EMBEDDED_WINDOWS)
    }

    /// Parses and validates one YAML stream.
    pub fn from_yaml(origin: &str, text: &str) -> Result<Self, WindowSetError> {
        Self::from_documents(&parse_documents(origin, text)?)
    }

    pub fn get(&self, name: &str) -> Option<&Window> {
        self.windows.get(name)
    }

    /// Windows in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Window> {
        self.windows.values()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.windows.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Computes (and caches) every window's state at `now`. Slow for some windows (thousands of
    /// cron steps): call it off the async workers, before the set is published, so that the
    /// first decisions and scrape find the states cached.
    pub fn warm(&self, now: chrono::DateTime<chrono::Utc>) {
        for window in self.iter() {
            window.state_at(now);
        }
    }
}
