//! The one gate every window set passes before it is put in force, wherever it comes from:
//! files, a folder, a ConfigMap volume, or the cluster's objects.
//!
//! [`Gate::check`] holds each window to what admission holds a window object to (valid, no
//! override longer than `--max-override`, opens again: [`window_problem`]) and the set to what
//! only a whole set can show (a name defined twice, an explicit `--default-window` that names
//! no window), and reports every problem at once. What a problem costs depends on the unit of
//! change, which the caller knows: files are refused whole ([`Checked::into_result`]); in the
//! cluster each object is its own unit (`crate::cluster::index`).

use super::read::documents;
use crate::files::Snapshot;
use chrono::{DateTime, Utc};
use fluxgate_core::policy::{Policy, window_problem};
use fluxgate_core::window::{Document, Window, WindowSet, WindowSetError};
use std::path::PathBuf;

/// What a window set is held to: the policy's bounds, and whether the default window must
/// exist.
#[derive(Clone, Debug, Default)]
pub struct Gate {
    pub(crate) policy: Policy,
    /// `--default-window` was given, so a set without it is refused: every rw object without a
    /// fluxgate.io/window label would be denied, silently for whoever set the flag. The built-in
    /// `default` may be absent (every rw object then names its window); that is only worth a
    /// warning.
    pub(crate) default_window_required: bool,
}

/// One reason a window set, or one window of it, cannot be put in force as given.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Problem {
    /// The window this keeps out of the set, when it is about one window.
    pub(crate) window: Option<String>,
    /// What is wrong and how to fix it, naming the file and line or the object.
    pub(crate) text: String,
}

/// The windows of a candidate set that passed, and every problem.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) set: WindowSet,
    pub(crate) problems: Vec<Problem>,
}

/// Why windows were not put in force (or not all of them): every problem found, at once.
#[derive(Debug, PartialEq)]
pub struct Refused(pub(crate) Vec<Problem>);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [one] => f.write_str(&one.text),
            all => {
                write!(f, "{} problems:", all.len())?;
                all.iter().try_for_each(|p| write!(f, "\n  {}", p.text))
            }
        }
    }
}

impl std::error::Error for Refused {}

impl Checked {
    /// The set when nothing was wrong: for windows that are one unit of change (files), a set
    /// with any problem is refused whole.
    pub(crate) fn into_result(self) -> Result<WindowSet, Refused> {
        if self.problems.is_empty() {
            Ok(self.set)
        } else {
            Err(Refused(self.problems))
        }
    }
}

// === impl Gate ===

impl Gate {
    pub(crate) fn new(policy: Policy, default_window_required: bool) -> Self {
        Gate {
            policy,
            default_window_required,
        }
    }

    /// The windows of `documents` that pass, and every problem: of each window, names defined
    /// twice (the first stays), the default window. `now`: whether a window opens again is
    /// judged from then.
    pub(crate) fn check(&self, documents: &[Document], now: DateTime<Utc>) -> Checked {
        let mut problems = Vec::new();
        let mut windows = Vec::with_capacity(documents.len());
        for document in documents {
            // An invalid field is reported on its own line; a window that is valid but not
            // allowed, at the document.
            let checked = match Window::from_document(document) {
                Ok(window) => self
                    .allow(window, now)
                    .map_err(|text| format!("{}: {text}", document.origin)),
                Err(error) => Err(format!("{}: {error}", document.origin_of_error(&error))),
            };
            match checked {
                Ok(window) => windows.push((document.origin.clone(), window)),
                Err(text) => problems.push(Problem {
                    window: document.object.metadata.name.clone(),
                    text,
                }),
            }
        }
        let (set, duplicates) = WindowSet::from_windows(windows);
        for duplicate in duplicates {
            problems.extend(problems_of(duplicate));
        }
        problems.extend(self.default_window_problem(&set));
        Checked { set, problems }
    }

    /// The windows of a snapshot of `paths`, or every problem, of reading and of the gate.
    pub(crate) fn check_files(
        &self,
        paths: &[PathBuf],
        snapshot: &Snapshot,
        now: DateTime<Utc>,
    ) -> Result<WindowSet, Refused> {
        let (documents, errors) = documents(paths, snapshot);
        let mut checked = self.check(&documents, now);
        let read: Vec<Problem> = errors.into_iter().flat_map(problems_of).collect();
        checked.problems.splice(0..0, read);
        checked.into_result()
    }

    /// The example windows built in, which `serve` and `review` use without `--windows`.
    pub(crate) fn check_embedded(&self, now: DateTime<Utc>) -> Result<WindowSet, Refused> {
        use fluxgate_core::window::{EMBEDDED_ORIGIN, EMBEDDED_WINDOWS, parse_documents};
        let documents = parse_documents(EMBEDDED_ORIGIN, EMBEDDED_WINDOWS)
            .map_err(|error| Refused(problems_of(error)))?;
        self.check(&documents, now).into_result()
    }

    /// A valid window, unless the policy refuses it (an override too long, never opening).
    fn allow(&self, window: Window, now: DateTime<Utc>) -> Result<Window, String> {
        match window_problem(&window, &self.policy, now) {
            Some(problem) => Err(problem),
            None => Ok(window),
        }
    }

    /// Whether `set` lacks the default window that `--default-window` requires.
    pub(crate) fn lacks_default_window(&self, set: &WindowSet) -> bool {
        self.default_window_required && set.get(&self.policy.default_window).is_none()
    }

    fn default_window_problem(&self, set: &WindowSet) -> Option<Problem> {
        let name = &self.policy.default_window;
        if set.get(name).is_some() {
            return None;
        }
        if !self.default_window_required {
            tracing::warn!(
                window = %name,
                "no window is named {name:?}: rw objects without a fluxgate.io/window label \
                 will be denied as unknown-window"
            );
            return None;
        }
        let known: Vec<&str> = set.names().collect();
        let text = format!(
            "--default-window {name:?} names no window (known: {}): every rw object without a \
             fluxgate.io/window label would be denied; add a ReconciliationWindow named {name:?} \
             or pass --default-window with one of the known names",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
        Some(Problem { window: None, text })
    }
}

/// The problems of a loader's error, one per window or file (its list flattened).
fn problems_of(error: WindowSetError) -> Vec<Problem> {
    match error {
        WindowSetError::Many(errors) => errors.into_iter().flat_map(problems_of).collect(),
        error => vec![Problem {
            window: None,
            text: error.to_string(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluxgate_core::window::parse_documents;

    fn now() -> DateTime<Utc> {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }

    fn window(name: &str, extra: &str) -> String {
        format!(
            "---\napiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  \
             name: {name}\nspec:\n  schedules:\n    - start: \"0 8 * * *\"\n      duration: 1h\n{extra}"
        )
    }

    fn check(gate: &Gate, text: &str) -> Checked {
        gate.check(&parse_documents("w.yaml", text).unwrap(), now())
    }

    #[test]
    fn every_problem_of_a_set_is_reported_at_once() {
        let gate = Gate::new(
            Policy {
                default_window: "main".into(),
                ..Policy::default()
            },
            true,
        );
        let long = "  overrides:\n    - start: 2026-11-27T00:00:00Z\n      end: 2026-11-29T00:00:00Z\n      reason: weekend\n";
        let text = [
            window("ok", ""),
            window("long", long),
            window("bad", "").replace("0 8 * * *", "0 25 * * *"),
            window("ok", ""),
        ]
        .concat();
        let checked = check(&gate, &text);
        assert_eq!(checked.set.names().collect::<Vec<_>>(), ["ok"]);
        let texts: Vec<&str> = checked.problems.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts.len(), 4, "{texts:#?}");
        assert!(
            texts[0].starts_with("w.yaml:11: ReconciliationWindow \"long\": spec.overrides[0]: 48h long, more than --max-override 24h"),
            "{}",
            texts[0]
        );
        assert!(
            texts[1]
                .starts_with("w.yaml:30: ReconciliationWindow \"bad\": spec.schedules[0].start"),
            "{}",
            texts[1]
        );
        assert!(texts[2].contains("\"ok\" is defined twice"), "{}", texts[2]);
        assert!(
            texts[3].starts_with("--default-window \"main\" names no window (known: ok)"),
            "{}",
            texts[3]
        );
        let windows: Vec<Option<&str>> = checked
            .problems
            .iter()
            .map(|p| p.window.as_deref())
            .collect();
        assert_eq!(windows, [Some("long"), Some("bad"), None, None]);
        let refused = checked.into_result().unwrap_err().to_string();
        assert!(
            refused.starts_with("4 problems:\n  w.yaml:11: "),
            "{refused}"
        );
    }

    #[test]
    fn the_built_in_default_window_may_be_absent() {
        let checked = check(&Gate::default(), &window("ok", ""));
        assert!(checked.problems.is_empty(), "{:?}", checked.problems);
        assert!(!Gate::default().lacks_default_window(&checked.set));
        let required = Gate::new(Policy::default(), true);
        assert!(required.lacks_default_window(&checked.set));
        assert_eq!(check(&required, &window("ok", "")).problems.len(), 1);
    }
}
