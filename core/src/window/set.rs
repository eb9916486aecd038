//! The set of windows in force, built from multi-document YAML text.
//!
//! Building is all-or-nothing: one bad window makes the whole set an error (listing every bad
//! window, each at `file:line`), so a caller can keep its last good set instead of running
//! with a partial one. Reading files is the caller's
//! business (the `fluxgate` package's `windows::read`); this module only sees text and where it came from.

use super::{API_VERSION, CalendarData, KIND, ReconciliationWindow, Window, WindowError};
use crate::yaml::{self, Fields, YamlError, content_line, split_documents};
use std::collections::BTreeMap;

/// The example windows built into `fluxgate` (`deploy/examples/windows.yaml`).
pub const EMBEDDED_WINDOWS: &str = include_str!("../../../deploy/examples/windows.yaml");
/// Where the embedded windows say they came from in messages.
pub const EMBEDDED_ORIGIN: &str = "<embedded deploy/examples/windows.yaml>";

/// A ReconciliationWindow found in a YAML stream, with where it came from.
#[derive(Clone, Debug)]
pub struct Document {
    /// `path:line` (the line the document's content starts on), or what names an object read
    /// from the cluster.
    pub origin: String,
    pub object: ReconciliationWindow,
    /// For a document read from a file: where, and its text, in which an invalid field's own
    /// line is looked up (only then: most windows are valid).
    source: Option<Source>,
    /// The data of its calendars that are not inline, as the shell read it.
    calendars: CalendarData,
}

/// A document's text and where it is.
#[derive(Clone, Debug)]
struct Source {
    file: String,
    /// The line of the file the text starts on.
    start: usize,
    text: String,
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
/// reported, each as `origin:line`, the line of the field it is about when there is one.
pub fn parse_documents(origin: &str, text: &str) -> Result<Vec<Document>, WindowSetError> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (start, chunk) in split_documents(text) {
        match parse_document(origin, start, &chunk) {
            Ok(Some(document)) => found.push(document),
            Ok(None) => {}
            Err(error) => errors.push(error),
        }
    }
    WindowSetError::all(errors)?;
    Ok(found)
}

/// One document of `file`, starting at line `start`: `None` when it is not a window.
fn parse_document(
    file: &str,
    start: usize,
    chunk: &str,
) -> Result<Option<Document>, WindowSetError> {
    let origin = format!("{file}:{}", content_line(start, chunk));
    let at = |line: Option<usize>| line.map_or_else(|| origin.clone(), |l| format!("{file}:{l}"));
    let not_yaml = |e: YamlError| WindowSetError::Yaml {
        origin: at(e.line()),
        message: e.to_string(),
    };
    let value: serde_json::Value = yaml::from_str(chunk, start).map_err(not_yaml)?;
    if !is_window(&value) {
        return Ok(None);
    }
    let source = Source {
        file: file.to_owned(),
        start,
        text: chunk.to_owned(),
    };
    let api_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if api_version != API_VERSION {
        let message = format!("{KIND} apiVersion {api_version:?} is not served: use {API_VERSION}");
        let origin = source.origin_of("apiVersion").unwrap_or(origin);
        return Err(WindowSetError::Object { origin, message });
    }
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("");
    let object: ReconciliationWindow = yaml::from_str(chunk, start).map_err(|e| {
        let field = e
            .at()
            .and_then(|place| source.fields().at(place).map(str::to_owned));
        let message = match field {
            Some(field) => format!("{KIND} {name:?}: {field}: {}", e.message()),
            None => format!("{KIND} {name:?}: {}", e.message()),
        };
        WindowSetError::Object {
            origin: at(e.line()),
            message,
        }
    })?;
    Ok(Some(Document {
        origin,
        object,
        source: Some(source),
        calendars: CalendarData::new(),
    }))
}

fn is_window(value: &serde_json::Value) -> bool {
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).unwrap_or("");
    super::is_window_type(text("apiVersion"), text("kind"))
}

// === impl Document ===

impl Document {
    /// A window that was not read from a file (an object of the cluster), named by `origin`.
    pub fn new(origin: String, object: ReconciliationWindow) -> Self {
        Document {
            origin,
            object,
            source: None,
            calendars: CalendarData::new(),
        }
    }

    /// The file the document was read from, if it was.
    pub fn file(&self) -> Option<&str> {
        self.source.as_ref().map(|s| s.file.as_str())
    }

    /// Hands over the data of `spec.calendars[index]` (a ConfigMap's key, a file), or why it
    /// could not be read.
    pub fn set_calendar(&mut self, index: usize, data: Result<std::sync::Arc<[u8]>, String>) {
        self.calendars.insert(index, data);
    }

    pub(crate) fn calendar_data(&self) -> &CalendarData {
        &self.calendars
    }

    /// Where `error` is: `file:line` of the field it is about, or of the document; for an
    /// inline calendar's error, of the calendar's offending line in the file.
    pub fn origin_of_error(&self, error: &WindowError) -> String {
        let in_block = self
            .source
            .as_ref()
            .zip(error.ics_line)
            .and_then(|(source, line)| source.origin_in_block(&error.field, line));
        in_block.unwrap_or_else(|| self.origin_of(&error.field))
    }

    /// Where `field` (`spec.schedules[0].open`) is: `file:line` of the field, or of the
    /// closest enclosing one the document has; the document's origin when not from a file.
    fn origin_of(&self, field: &str) -> String {
        self.source
            .as_ref()
            .and_then(|source| source.origin_of(field))
            .unwrap_or_else(|| self.origin.clone())
    }
}

impl Source {
    /// Where each field is. The text parsed once already, so this fails only past a limit:
    /// then no field has a line, and errors name the document's.
    fn fields(&self) -> Fields {
        Fields::of(&self.text, self.start).unwrap_or_default()
    }

    /// `file:line` of line `line` (1-based) of the text of `field` when it is a literal block
    /// (`ics: |`), whose lines are the file's, one for one; `None` for any other style (a
    /// quoted or folded string spans lines otherwise).
    fn origin_in_block(&self, field: &str, line: usize) -> Option<String> {
        let key = self.fields().exact_line(field)?;
        let text = self.text.lines().nth(key.checked_sub(self.start)?)?;
        let (_, value) = text.split_once(':')?;
        value
            .trim_start()
            .starts_with('|')
            .then(|| format!("{}:{}", self.file, key + line))
    }

    /// `file:line` of `field`, or of the closest enclosing field.
    fn origin_of(&self, field: &str) -> Option<String> {
        let line = self.fields().line(field)?;
        Some(format!("{}:{line}", self.file))
    }
}

// === impl WindowSet ===

impl WindowSet {
    /// Validates every document and rejects duplicate names.
    pub fn from_documents(documents: &[Document]) -> Result<Self, WindowSetError> {
        let mut windows = Vec::with_capacity(documents.len());
        let mut errors = Vec::new();
        for document in documents {
            match Window::from_document(document) {
                Ok(window) => windows.push((document.origin.clone(), window)),
                Err(error) => errors.push(WindowSetError::Window {
                    origin: document.origin_of_error(&error),
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
