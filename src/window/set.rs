//! The set of windows in force, built from multi-document YAML text.
//!
//! Building is all-or-nothing: one bad window makes the whole set an error, so a caller can
//! keep its last good set instead of running with a partial one. Reading files is the caller's
//! business (see `crate::load`); this module only sees text and where it came from.

use super::{API_VERSION, GROUP, KIND, ReconciliationWindow, Window, WindowError};
use serde::Deserialize;
use std::collections::BTreeMap;

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
}

/// Windows by name.
#[derive(Debug, Default)]
pub struct WindowSet {
    windows: BTreeMap<String, Window>,
}

/// Finds the ReconciliationWindow documents in a multi-document YAML stream; other kinds are
/// skipped (a GitOps folder also holds `kustomization.yaml` and friends).
pub fn parse_documents(origin: &str, text: &str) -> Result<Vec<Document>, WindowSetError> {
    let mut found = Vec::new();
    // Stop at the first error: after a syntax error (an unterminated quote) serde_yaml's
    // document iterator yields that error forever, so collecting it never ends (found by
    // fuzz/fuzz_targets/windows_yaml.rs: an OOM).
    let mut stream = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(document);
        let failed = value.is_err();
        stream.push(value);
        if failed {
            break;
        }
    }
    let several = stream.len() > 1;
    for (index, value) in stream.into_iter().enumerate() {
        let origin = if several {
            format!("{origin}#{}", index + 1)
        } else {
            origin.to_owned()
        };
        let value = value.map_err(|e| WindowSetError::Yaml {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        if !is_window(&value) {
            continue;
        }
        let api_version = value
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if api_version != API_VERSION {
            let message =
                format!("{KIND} apiVersion {api_version:?} is not served: use {API_VERSION}");
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
        found.push(Document { origin, object });
    }
    Ok(found)
}

fn is_window(value: &serde_yaml::Value) -> bool {
    let kind = value.get("kind").and_then(|k| k.as_str());
    let api_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let group = api_version.split_once('/').map_or("", |(group, _)| group);
    kind == Some(KIND) && group == GROUP
}

// === impl WindowSet ===

impl WindowSet {
    /// Validates every document and rejects duplicate names.
    pub fn from_documents(documents: &[Document]) -> Result<Self, WindowSetError> {
        let mut windows = BTreeMap::new();
        let mut origins: BTreeMap<String, &str> = BTreeMap::new();
        for document in documents {
            let window =
                Window::from_object(&document.object).map_err(|error| WindowSetError::Window {
                    origin: document.origin.clone(),
                    error,
                })?;
            if let Some(first) = origins.get(window.name()) {
                return Err(WindowSetError::Duplicate {
                    name: window.name().to_owned(),
                    first: (*first).to_owned(),
                    second: document.origin.clone(),
                });
            }
            origins.insert(window.name().to_owned(), &document.origin);
            windows.insert(window.name().to_owned(), window);
        }
        Ok(WindowSet { windows })
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
