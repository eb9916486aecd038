//! The ReconciliationWindow objects seen in the cluster: plain synchronous state with `apply`
//! and `delete`, fed by the watch and tested by applying objects, no API server needed.
//!
//! Each object is validated as it arrives (the one validation path, [`Window::from_object`]); an
//! invalid version never replaces the last good version of that window, and an invalid new
//! window stays absent (objects naming it are denied as unknown, which fails closed). This is
//! the file loader's "keep the last good set" at the granularity the API gives us: one bad
//! object cannot freeze every other window's updates, nor make the webhook unready.
//!
//! A relist (`Init` … `InitDone`) is buffered and replaces the state only when complete, so a
//! half-listed cluster never becomes the window set.

use fluxgate_core::window::{Document, ReconciliationWindow, Window, WindowError, WindowStatus};
use std::collections::BTreeMap;

/// What the cluster holds of a window beyond its spec: what the status writer compares with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub(crate) generation: Option<i64>,
    pub(crate) status: Option<WindowStatus>,
}

#[derive(Debug, Default)]
pub(crate) struct WindowIndex {
    objects: BTreeMap<String, ReconciliationWindow>,
    /// Objects of a relist in progress.
    relist: Option<BTreeMap<String, ReconciliationWindow>>,
    /// True once a complete list has been seen.
    synced: bool,
}

impl WindowIndex {
    /// A relist begins.
    pub(crate) fn begin_relist(&mut self) {
        self.relist = Some(BTreeMap::new());
    }

    /// An object of a relist in progress; an invalid one keeps its last good version.
    pub(crate) fn relisted(&mut self, object: ReconciliationWindow) -> Result<(), WindowError> {
        let name = name_of(&object);
        let checked = Window::from_object(&object).map(|_| object);
        let relist = self.relist.get_or_insert_with(BTreeMap::new);
        match checked {
            Ok(object) => {
                relist.insert(name, object);
                Ok(())
            }
            Err(error) => {
                if let Some(good) = self.objects.get(&name) {
                    relist.insert(name, good.clone());
                }
                Err(error)
            }
        }
    }

    /// The relist is complete: it replaces what was known.
    pub(crate) fn end_relist(&mut self) {
        if let Some(objects) = self.relist.take() {
            self.objects = objects;
        }
        self.synced = true;
    }

    /// An object was added or changed; an invalid version is rejected and the last good one
    /// stays. True when the spec changed, so the window set must be rebuilt: a status write
    /// changes only what [`WindowIndex::observed`] reports.
    pub(crate) fn apply(&mut self, object: ReconciliationWindow) -> Result<bool, WindowError> {
        let name = name_of(&object);
        let Some(known) = self.objects.get_mut(&name) else {
            Window::from_object(&object)?;
            self.objects.insert(name, object);
            return Ok(true);
        };
        if known.spec == object.spec {
            // Keep the validated spec; take the new generation and status.
            known.metadata = object.metadata;
            known.status = object.status;
            return Ok(false);
        }
        Window::from_object(&object)?;
        *known = object;
        Ok(true)
    }

    pub(crate) fn delete(&mut self, object: &ReconciliationWindow) {
        self.objects.remove(&name_of(object));
    }

    pub(crate) fn is_synced(&self) -> bool {
        self.synced
    }

    /// Generation and status of every window in force, by name.
    pub(crate) fn observed(&self) -> BTreeMap<String, Observed> {
        self.objects
            .iter()
            .map(|(name, object)| {
                let observed = Observed {
                    generation: object.metadata.generation,
                    status: object.status.clone(),
                };
                (name.clone(), observed)
            })
            .collect()
    }

    /// The objects in force, as documents of the window set.
    pub(crate) fn documents(&self) -> Vec<Document> {
        self.objects.values().cloned().map(document).collect()
    }

    /// The window set of the objects in force (all validated on arrival), as the watch
    /// publishes it.
    #[cfg(test)]
    fn build(
        &self,
    ) -> Result<fluxgate_core::window::WindowSet, fluxgate_core::window::WindowSetError> {
        fluxgate_core::window::WindowSet::from_documents(&self.documents())
    }
}

/// A window read from the API, as a document of a window set: its origin names the object.
pub(crate) fn document(object: ReconciliationWindow) -> Document {
    let origin = format!("cluster ReconciliationWindow/{}", name_of(&object));
    Document::new(origin, object)
}

fn name_of(object: &ReconciliationWindow) -> String {
    object.metadata.name.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluxgate_core::window::{ScheduleSpec, WindowSpec};

    fn window(name: &str, start: &str) -> ReconciliationWindow {
        ReconciliationWindow::new(
            name,
            WindowSpec {
                schedules: vec![ScheduleSpec {
                    start: Some(start.into()),
                    duration: Some("1h".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
    }

    fn names(index: &WindowIndex) -> Vec<String> {
        index.build().unwrap().names().map(str::to_owned).collect()
    }

    #[test]
    fn apply_and_delete() {
        let mut index = WindowIndex::default();
        assert!(index.apply(window("a", "0 1 * * *")).unwrap());
        assert!(index.apply(window("b", "0 2 * * *")).unwrap());
        assert!(index.apply(window("a", "0 3 * * *")).unwrap());
        assert_eq!(names(&index), ["a", "b"]);
        index.delete(&window("a", "0 3 * * *"));
        assert_eq!(names(&index), ["b"]);
    }

    #[test]
    fn a_status_write_changes_what_is_observed_not_the_windows() {
        let mut index = WindowIndex::default();
        let mut a = window("a", "0 1 * * *");
        a.metadata.generation = Some(1);
        assert!(index.apply(a.clone()).unwrap());
        assert_eq!(index.observed()["a"].status, None);
        a.status = Some(WindowStatus {
            open: true,
            ..Default::default()
        });
        assert!(!index.apply(a.clone()).unwrap(), "status only");
        assert_eq!(index.observed()["a"].status, a.status);
        assert_eq!(index.observed()["a"].generation, Some(1));
    }

    #[test]
    fn a_relist_replaces_state_only_when_done() {
        let mut index = WindowIndex::default();
        index.apply(window("old", "0 1 * * *")).unwrap();
        index.begin_relist();
        index.relisted(window("new", "0 1 * * *")).unwrap();
        assert_eq!(names(&index), ["old"], "half a relist changes nothing");
        assert!(!index.is_synced());
        index.end_relist();
        assert!(index.is_synced());
        assert_eq!(names(&index), ["new"]);
    }

    #[test]
    fn an_invalid_version_keeps_the_last_good_one() {
        let mut index = WindowIndex::default();
        index.apply(window("a", "0 1 * * *")).unwrap();
        let error = index
            .apply(window("a", "0 25 * * *"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"a\": spec.schedules[0].start"), "{error}");
        let set = index.build().unwrap();
        let schedules = set.get("a").unwrap().schedules();
        assert!(
            matches!(&schedules[0], fluxgate_core::window::Schedule::StartDuration { start, .. } if start.as_str() == "0 1 * * *")
        );
        // A new invalid window stays absent.
        assert!(index.apply(window("b", "not cron")).is_err());
        assert_eq!(names(&index), ["a"]);
        // The same holds across a relist.
        index.begin_relist();
        assert!(index.relisted(window("a", "0 99 * * *")).is_err());
        index.end_relist();
        assert_eq!(names(&index), ["a"]);
    }
}
