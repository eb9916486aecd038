//! The ReconciliationWindow objects seen in the cluster: plain synchronous state with `apply`
//! and `delete`, fed by the watch and tested by applying objects, no API server needed.
//!
//! Every version of an object passes the gate windows files pass ([`Gate::check`]: valid, no
//! override longer than `--max-override`, opens again), with one difference: in the cluster
//! each object is its own unit of change, where a windows file or folder is one unit. A
//! version the gate refuses leaves the last good version of that window in force, and a new
//! window refused stays absent (objects naming it are denied as unknown-window, which fails
//! closed). So one bad object (written while the webhook was not called, or under another
//! `--max-override`) holds back no other window's change, such as another team's emergency
//! override, and never makes the webhook unready. The load counts as failed
//! (`fluxgate_window_reloads_total{result="failure"}`, `fluxgate_config_valid` 0) and every
//! problem is logged, at every load for as long as the cluster holds a refused version.
//!
//! `--default-window` with the cluster: a set without that window is still put in force,
//! counted as failed and logged. Readiness cannot wait for the window: the webhook validates
//! every ReconciliationWindow write with failurePolicy Fail, so a webhook not ready (no
//! endpoints) until the default window exists would refuse the write that creates it. Once the
//! default window was in force, deleting it is a refused change like an invalid version: its
//! last version stays in force until it is created again or fluxgate restarts.
//!
//! A relist (`Init` … `InitDone`) is buffered and replaces the state only when complete, so a
//! half-listed cluster never becomes the window set.

use super::freezes::valid_freezes;
use crate::windows::gate::{Gate, Problem};
use chrono::{DateTime, Utc};
use fluxgate_core::freeze::{ReconciliationFreeze, StopTheLine};
use fluxgate_core::window::{
    CalendarSource, Document, ReconciliationWindow, WindowSet, WindowStatus,
};
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the cluster holds of a window beyond its spec: what the status writer compares with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The generation in force; `None` while the cluster's is refused.
    pub(crate) generation: Option<i64>,
    pub(crate) status: Option<WindowStatus>,
    /// Why the gate refuses the cluster's version (its generation and the problems), so the
    /// status says so instead of looking current.
    pub(crate) refused: Option<(Option<i64>, String)>,
}

type Objects = BTreeMap<String, ReconciliationWindow>;

/// The ConfigMaps of fluxgate's namespace, by name: each key of `data` and `binaryData` with its
/// bytes.
type ConfigMaps = BTreeMap<String, BTreeMap<String, Arc<[u8]>>>;

/// The versions in force, by name, each with the calendar data it was checked with: a
/// ConfigMap changed for the worse leaves the window as it was.
type Versions = BTreeMap<String, Document>;

#[derive(Debug, Default)]
pub(crate) struct WindowIndex {
    /// Each object as the cluster holds it, by name.
    objects: Objects,
    /// The version of each window in force: the last one the gate passed.
    in_force: Versions,
    /// The windows whose version in the cluster the gate refused at the last check: the
    /// generation refused, and the problems.
    refused: BTreeMap<String, (Option<i64>, String)>,
    /// Objects of a relist in progress.
    relist: Option<Objects>,
    /// True once a complete list has been seen.
    synced: bool,
    /// The cluster's ReconciliationFreezes, added to the windows they cover at each check.
    freezes: Arc<BTreeMap<String, ReconciliationFreeze>>,
    /// fluxgate's namespace, where `configMapRef`s are looked up.
    namespace: String,
    config_maps: ConfigMaps,
    /// ConfigMaps of a relist in progress.
    config_map_relist: Option<ConfigMaps>,
    /// True while the ConfigMaps are watched and not yet listed completely: the windows, some
    /// of which may name one, wait for them.
    config_maps_pending: bool,
    /// Why the ConfigMaps could not be listed (no RBAC for them, say), until they are: windows
    /// naming one are refused with it, the others do not wait.
    config_map_error: Option<String>,
}

/// What the gate decides on: the cluster's objects and the versions in force, taken out of the
/// index to be checked on a blocking thread (whether a window opens again can take thousands of
/// cron steps).
#[derive(Debug)]
pub(crate) struct Candidate {
    objects: Objects,
    in_force: Versions,
    freezes: Arc<BTreeMap<String, ReconciliationFreeze>>,
    namespace: String,
    config_maps: ConfigMaps,
    config_map_error: Option<String>,
}

/// What to put in force.
#[derive(Debug)]
pub(crate) struct InForce {
    pub(crate) set: WindowSet,
    /// The version of each window of `set`.
    pub(crate) versions: Versions,
    /// Why some object is not in force as the cluster holds it; empty when all are.
    pub(crate) problems: Vec<Problem>,
    /// The stop-the-line freezes added to the windows.
    pub(crate) freezes: Vec<StopTheLine>,
    /// Why each other ReconciliationFreeze freezes nothing.
    pub(crate) refused_freezes: Vec<String>,
}

impl WindowIndex {
    /// A relist begins.
    pub(crate) fn begin_relist(&mut self) {
        self.relist = Some(BTreeMap::new());
    }

    /// An object of a relist in progress.
    pub(crate) fn relisted(&mut self, object: ReconciliationWindow) {
        let relist = self.relist.get_or_insert_with(BTreeMap::new);
        relist.insert(name_of(&object), object);
    }

    /// The relist is complete: it replaces what was known.
    pub(crate) fn end_relist(&mut self) {
        if let Some(objects) = self.relist.take() {
            self.objects = objects;
        }
        self.synced = true;
    }

    /// An object was added or changed. True when its spec (or generation: the status says which
    /// one is in force) changed, so the set must be checked again: a status write changes only
    /// what [`WindowIndex::observed`] reports.
    pub(crate) fn apply(&mut self, object: ReconciliationWindow) -> bool {
        let name = name_of(&object);
        let changed = self.objects.get(&name).is_none_or(|known| {
            known.spec != object.spec || known.metadata.generation != object.metadata.generation
        });
        self.objects.insert(name, object);
        changed
    }

    pub(crate) fn delete(&mut self, object: &ReconciliationWindow) {
        self.objects.remove(&name_of(object));
    }

    /// The cluster's freezes changed.
    pub(crate) fn set_freezes(&mut self, freezes: Arc<BTreeMap<String, ReconciliationFreeze>>) {
        self.freezes = freezes;
    }

    pub(crate) fn is_synced(&self) -> bool {
        self.synced && !self.config_maps_pending
    }

    /// An index whose `configMapRef`s name ConfigMaps of `namespace`, fluxgate's own.
    pub(crate) fn in_namespace(namespace: &str) -> Self {
        WindowIndex {
            namespace: namespace.to_owned(),
            ..Default::default()
        }
    }

    /// An index for a watch of the windows and of the ConfigMaps of `namespace`: not synced
    /// until both are listed.
    pub(crate) fn watching_config_maps(namespace: &str) -> Self {
        WindowIndex {
            config_maps_pending: true,
            ..Self::in_namespace(namespace)
        }
    }

    /// A relist of the ConfigMaps begins.
    pub(crate) fn begin_config_map_relist(&mut self) {
        self.config_map_relist = Some(BTreeMap::new());
    }

    /// A ConfigMap of a relist in progress.
    pub(crate) fn config_map_relisted(&mut self, object: ConfigMap) {
        let relist = self.config_map_relist.get_or_insert_with(BTreeMap::new);
        let (name, data) = config_map_data(object);
        relist.insert(name, data);
    }

    /// The relist of the ConfigMaps is complete. True when a window names a ConfigMap that
    /// changed.
    pub(crate) fn end_config_map_relist(&mut self) -> bool {
        self.config_maps_pending = false;
        self.config_map_error = None;
        let Some(relisted) = self.config_map_relist.take() else {
            return false;
        };
        let before = std::mem::replace(&mut self.config_maps, relisted);
        let changed = |name: &String| before.get(name) != self.config_maps.get(name);
        let names: Vec<String> = before
            .keys()
            .chain(self.config_maps.keys())
            .filter(|name| changed(name))
            .cloned()
            .collect();
        names.iter().any(|name| self.names_config_map(name))
    }

    /// The ConfigMaps cannot be listed. True when this changes what windows naming one see.
    pub(crate) fn config_maps_unavailable(&mut self, error: String) -> bool {
        if !self.config_maps_pending && self.config_map_error.is_none() {
            // Listed before: what was listed stays, as the windows do.
            return false;
        }
        self.config_maps_pending = false;
        self.config_map_error.replace(error).is_none()
    }

    /// A ConfigMap was added or changed. True when a window names it and its data changed, so
    /// the set must be checked again.
    pub(crate) fn apply_config_map(&mut self, object: ConfigMap) -> bool {
        let (name, data) = config_map_data(object);
        if self.config_maps.get(&name) == Some(&data) {
            return false;
        }
        self.config_maps.insert(name.clone(), data);
        self.names_config_map(&name)
    }

    /// A ConfigMap was deleted. True when a window names it.
    pub(crate) fn delete_config_map(&mut self, object: &ConfigMap) -> bool {
        let name = object.metadata.name.clone().unwrap_or_default();
        self.config_maps.remove(&name).is_some() && self.names_config_map(&name)
    }

    /// The ConfigMaps that windows of the cluster name and the listed ConfigMaps lack. Flux
    /// applies a calendar's ConfigMap with its window, and the two watches deliver them in
    /// either order: one not here yet may be on its way, which a read of it settles.
    pub(crate) fn missing_config_maps(&self) -> Vec<String> {
        if self.config_maps_pending || self.config_map_error.is_some() {
            return Vec::new();
        }
        let mut missing: Vec<String> = Vec::new();
        for name in self.objects.values().flat_map(config_maps_named) {
            if !self.config_maps.contains_key(&name) && !missing.contains(&name) {
                missing.push(name);
            }
        }
        missing
    }

    /// Whether a window of the cluster, or in force, takes a calendar from ConfigMap `name`.
    fn names_config_map(&self, name: &str) -> bool {
        let names = |object: &ReconciliationWindow| config_maps_named(object).any(|n| n == name);
        self.objects.values().any(names) || self.in_force.values().any(|d| names(&d.object))
    }

    /// `objects` as documents, with the data of the ConfigMaps their calendars name.
    pub(crate) fn documents_of(&self, objects: Vec<ReconciliationWindow>) -> Vec<Document> {
        objects
            .into_iter()
            .map(|object| document(object, &self.listed()))
            .collect()
    }

    fn listed(&self) -> Listed<'_> {
        Listed {
            namespace: &self.namespace,
            config_maps: &self.config_maps,
            error: self.config_map_error.as_deref(),
        }
    }

    /// The objects of the cluster and the versions in force, to check.
    pub(crate) fn candidate(&self) -> Candidate {
        Candidate {
            objects: self.objects.clone(),
            in_force: self.in_force.clone(),
            freezes: self.freezes.clone(),
            namespace: self.namespace.clone(),
            config_maps: self.config_maps.clone(),
            config_map_error: self.config_map_error.clone(),
        }
    }

    /// The versions a checked candidate put in force.
    pub(crate) fn put_in_force(&mut self, versions: Versions) {
        self.in_force = versions;
    }

    /// The problems of the check that chose the versions in force: those about a window the
    /// cluster holds are about its version there (the candidate was taken from this index, which
    /// has not changed since).
    pub(crate) fn set_refused(&mut self, problems: &[Problem]) {
        let mut refused: BTreeMap<String, (Option<i64>, String)> = BTreeMap::new();
        for problem in problems {
            let Some(name) = &problem.window else {
                continue;
            };
            let Some(object) = self.objects.get(name) else {
                continue;
            };
            let generation = object.metadata.generation;
            refused
                .entry(name.clone())
                .and_modify(|(_, text)| {
                    text.push('\n');
                    text.push_str(&problem.text);
                })
                .or_insert_with(|| (generation, problem.text.clone()));
        }
        self.refused = refused;
    }

    /// Generation and status of every window the cluster holds that was checked, by name: the
    /// generation of the version in force (a refused one was not taken in), or none and why
    /// when the cluster's version is refused; the status the cluster shows.
    pub(crate) fn observed(&self) -> BTreeMap<String, Observed> {
        self.objects
            .iter()
            .filter_map(|(name, object)| {
                let refused = self
                    .refused
                    .get(name)
                    .filter(|(generation, _)| *generation == object.metadata.generation)
                    .cloned();
                let generation = match (&refused, self.in_force.get(name)) {
                    (Some(_), _) => None,
                    (None, Some(in_force)) => in_force.object.metadata.generation,
                    (None, None) => return None,
                };
                let observed = Observed {
                    generation,
                    status: object.status.clone(),
                    refused,
                };
                Some((name.clone(), observed))
            })
            .collect()
    }
}

// === impl Candidate ===

impl Candidate {
    /// Holds the cluster's objects to `gate` at `now`, each object on its own: a refused
    /// version is replaced by the one in force, if any, and a deleted default window stays.
    pub(crate) fn check(self, gate: &Gate, now: DateTime<Utc>) -> InForce {
        let Candidate {
            objects,
            in_force,
            freezes,
            namespace,
            config_maps,
            config_map_error,
        } = self;
        let (freezes, refused_freezes) =
            valid_freezes(freezes.values(), gate.policy.max_freeze, now);
        let config_maps = Listed {
            namespace: &namespace,
            config_maps: &config_maps,
            error: config_map_error.as_deref(),
        };
        // Versions are kept as the cluster holds them; the freezes in force now are added to
        // each check, so a freeze that ends or is deleted never lingers in a kept version.
        let documents = |versions: &Versions| frozen(versions, &freezes);
        let current: Versions = objects
            .into_iter()
            .map(|(name, object)| (name, document(object, &config_maps)))
            .collect();
        let first = gate.check(&documents(&current), now);
        if first.problems.is_empty() {
            return InForce {
                set: first.set,
                versions: current,
                problems: Vec::new(),
                freezes,
                refused_freezes,
            };
        }
        let objects = current;
        let default = &gate.policy.default_window;
        let default_deleted = gate.lacks_default_window(&first.set)
            && !objects.contains_key(default)
            && in_force.contains_key(default);
        let mut chosen = objects;
        for name in first.problems.iter().filter_map(|p| p.window.as_ref()) {
            match in_force.get(name) {
                Some(good) => chosen.insert(name.clone(), good.clone()),
                None => chosen.remove(name),
            };
        }
        if default_deleted {
            chosen.insert(default.clone(), in_force[default].clone());
        }
        let second = gate.check(&documents(&chosen), now);
        let mut problems = first.problems;
        // A version in force that the gate refuses now (it never opens again after all) goes
        // too; the default window still missing was said already.
        for problem in second.problems {
            if let Some(name) = &problem.window {
                chosen.remove(name);
                problems.push(problem);
            }
        }
        for problem in &mut problems {
            match &problem.window {
                Some(name) if second.set.get(name).is_some() => {
                    problem
                        .text
                        .push_str("; the last good version stays in force");
                }
                Some(_) => problem.text.push_str("; not in force"),
                None if default_deleted => {
                    problem.text = format!(
                        "ReconciliationWindow {default:?} is --default-window and was deleted: \
                         its last version stays in force until it is created again or \
                         fluxgate restarts with another --default-window"
                    );
                }
                None => {}
            }
        }
        problems.dedup_by(|a, b| a.text == b.text);
        InForce {
            set: second.set,
            versions: chosen,
            problems,
            freezes,
            refused_freezes,
        }
    }
}

/// The windows as documents, each with the stop-the-line freezes that cover it: one more
/// freeze part each, so the window's state, status and every decision see them.
fn frozen(versions: &Versions, freezes: &[StopTheLine]) -> Vec<Document> {
    versions
        .values()
        .map(|document| {
            let mut document = document.clone();
            document.object = with_freezes(document.object, freezes);
            document
        })
        .collect()
}

/// `object` with the freezes of `freezes` that cover it.
pub(crate) fn with_freezes(
    mut object: ReconciliationWindow,
    freezes: &[StopTheLine],
) -> ReconciliationWindow {
    let name = name_of(&object);
    for freeze in freezes {
        freeze.apply(&name, &mut object.spec);
    }
    object
}

/// The ConfigMaps of fluxgate's namespace as listed, or why they could not be.
pub(crate) struct Listed<'a> {
    namespace: &'a str,
    config_maps: &'a ConfigMaps,
    error: Option<&'a str>,
}

/// A window read from the API, as a document of a window set: its origin names the object, and
/// it carries the data of the ConfigMap keys its calendars name.
pub(crate) fn document(object: ReconciliationWindow, listed: &Listed<'_>) -> Document {
    let origin = format!("cluster ReconciliationWindow/{}", name_of(&object));
    let sources: Vec<(usize, CalendarSource)> = object
        .spec
        .calendars
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, c.external_source()?)))
        .collect();
    let mut document = Document::new(origin, object);
    let namespace = listed.namespace;
    for (i, source) in sources {
        let data = match source {
            CalendarSource::ConfigMap { name, key } => match listed.config_maps.get(&name) {
                None => Err(match listed.error {
                    Some(error) => format!(
                        "ConfigMap {namespace}/{name} cannot be read: the ConfigMaps of \
                         {namespace} could not be listed ({error}); grant get, list and watch \
                         on configmaps in {namespace} to the user named there (the Role and \
                         RoleBinding fluxgate-calendars of deploy/base/rbac.yaml, for \
                         fluxgate's service account)"
                    ),
                    None => format!(
                        "ConfigMap {namespace}/{name} not found (calendars are read from \
                         fluxgate's namespace, {namespace})"
                    ),
                }),
                Some(keys) => keys.get(&key).cloned().ok_or_else(|| {
                    let known: Vec<&str> = keys.keys().map(String::as_str).collect();
                    format!(
                        "ConfigMap {namespace}/{name} has no key {key:?} (its keys: {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    )
                }),
            },
            CalendarSource::Path(_) => Err(
                "path is for windows files (--windows); in the cluster give the calendar \
                 inline (ics) or in a ConfigMap (configMapRef)"
                    .to_owned(),
            ),
        };
        document.set_calendar(i, data);
    }
    document
}

/// The ConfigMaps whose keys `object`'s calendars are read from (`configMapRef`).
pub(crate) fn config_maps_named(
    object: &ReconciliationWindow,
) -> impl Iterator<Item = String> + '_ {
    object
        .spec
        .calendars
        .iter()
        .filter_map(|calendar| match calendar.external_source() {
            Some(CalendarSource::ConfigMap { name, .. }) => Some(name),
            _ => None,
        })
}

/// What the API server said, without kube's dump of its Status: `configmaps is forbidden:
/// User "…" cannot list resource "configmaps" in API group "" in the namespace "…"`.
pub(crate) fn api_error_text(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// A ConfigMap's name and the bytes of each key.
fn config_map_data(object: ConfigMap) -> (String, BTreeMap<String, Arc<[u8]>>) {
    let name = object.metadata.name.unwrap_or_default();
    let mut keys: BTreeMap<String, Arc<[u8]>> = BTreeMap::new();
    for (key, bytes) in object.binary_data.unwrap_or_default() {
        keys.insert(key, Arc::from(bytes.0));
    }
    for (key, text) in object.data.unwrap_or_default() {
        keys.insert(key, Arc::from(text.into_bytes()));
    }
    (name, keys)
}

fn name_of(object: &ReconciliationWindow) -> String {
    object.metadata.name.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluxgate_core::policy::Policy;
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

    /// `window` with one override of `hours`.
    fn with_override(name: &str, hours: i64) -> ReconciliationWindow {
        let mut object = window(name, "0 1 * * *");
        let end = now() + chrono::Duration::hours(hours);
        object.spec.overrides = serde_json::from_value(serde_json::json!([
            {"start": now().to_rfc3339(), "end": end.to_rfc3339(), "reason": "release"}
        ]))
        .unwrap();
        object
    }

    fn now() -> DateTime<Utc> {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }

    /// Checks the index as the watch does, and puts the result in force.
    fn check(index: &mut WindowIndex, gate: &Gate) -> (Vec<String>, Vec<String>) {
        let in_force = index.candidate().check(gate, now());
        index.put_in_force(in_force.versions);
        index.set_refused(&in_force.problems);
        let names = in_force.set.names().map(str::to_owned).collect();
        let problems = in_force.problems.into_iter().map(|p| p.text).collect();
        (names, problems)
    }

    fn names(index: &mut WindowIndex) -> Vec<String> {
        check(index, &Gate::default()).0
    }

    #[test]
    fn apply_and_delete() {
        let mut index = WindowIndex::default();
        assert!(index.apply(window("a", "0 1 * * *")));
        assert!(index.apply(window("b", "0 2 * * *")));
        assert!(index.apply(window("a", "0 3 * * *")));
        assert_eq!(names(&mut index), ["a", "b"]);
        index.delete(&window("a", "0 3 * * *"));
        assert_eq!(names(&mut index), ["b"]);
    }

    #[test]
    fn a_status_write_changes_what_is_observed_not_the_windows() {
        let mut index = WindowIndex::default();
        let mut a = window("a", "0 1 * * *");
        a.metadata.generation = Some(1);
        assert!(index.apply(a.clone()));
        names(&mut index);
        assert_eq!(index.observed()["a"].status, None);
        a.status = Some(WindowStatus {
            open: true,
            ..Default::default()
        });
        assert!(!index.apply(a.clone()), "status only");
        assert_eq!(index.observed()["a"].status, a.status);
        assert_eq!(index.observed()["a"].generation, Some(1));
    }

    #[test]
    fn a_relist_replaces_state_only_when_done() {
        let mut index = WindowIndex::default();
        index.apply(window("old", "0 1 * * *"));
        index.begin_relist();
        index.relisted(window("new", "0 1 * * *"));
        assert_eq!(names(&mut index), ["old"], "half a relist changes nothing");
        assert!(!index.is_synced());
        index.end_relist();
        assert!(index.is_synced());
        assert_eq!(names(&mut index), ["new"]);
    }

    #[test]
    fn an_invalid_version_keeps_the_last_good_one() {
        let mut index = WindowIndex::default();
        let mut a = window("a", "0 1 * * *");
        a.metadata.generation = Some(1);
        index.apply(a);
        assert_eq!(names(&mut index), ["a"]);
        let mut bad = window("a", "0 25 * * *");
        bad.metadata.generation = Some(2);
        index.apply(bad);
        let (set, problems) = check(&mut index, &Gate::default());
        assert_eq!(set, ["a"]);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with(
                "cluster ReconciliationWindow/a: ReconciliationWindow \"a\": spec.schedules[0].start"
            ),
            "{problems:?}"
        );
        assert!(
            problems[0].ends_with("; the last good version stays in force"),
            "{problems:?}"
        );
        let in_force = index.candidate().in_force;
        let Some(fluxgate_core::window::ScheduleSpec { start, .. }) =
            in_force["a"].object.spec.schedules.first()
        else {
            panic!("no schedule")
        };
        assert_eq!(start.as_deref(), Some("0 1 * * *"));
        let observed = &index.observed()["a"];
        assert_eq!(
            observed.generation, None,
            "generation 1 stays in force, but the cluster's, 2, is not: nothing may read the \
             status as current"
        );
        let (refused, why) = observed.refused.as_ref().expect("why 2 is refused");
        assert_eq!(*refused, Some(2));
        assert_eq!(why, &problems[0]);
        // A new invalid window stays absent, and the others still change.
        let mut b = window("b", "not cron");
        b.metadata.generation = Some(1);
        index.apply(b);
        index.apply(window("c", "0 4 * * *"));
        let (set, problems) = check(&mut index, &Gate::default());
        assert_eq!(set, ["a", "c"]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[1].ends_with("; not in force"), "{problems:?}");
        let observed = index.observed();
        assert_eq!(observed["b"].generation, None, "never in force");
        assert_eq!(observed["b"].refused, Some((Some(1), problems[1].clone())));
        assert_eq!(observed["c"].refused, None);
        // Its next generation, not checked yet, is not said to be refused: the refusal names
        // the generation it is about.
        let mut b2 = window("b", "0 6 * * *");
        b2.metadata.generation = Some(2);
        index.objects.insert("b".into(), b2);
        assert!(!index.observed().contains_key("b"), "not checked yet");
        // The same holds across a relist.
        index.begin_relist();
        index.relisted(window("a", "0 99 * * *"));
        index.end_relist();
        assert_eq!(names(&mut index), ["a"]);
        // Fixed: in force as the cluster holds it, no problem left.
        index.apply(window("a", "0 5 * * *"));
        assert_eq!(
            check(&mut index, &Gate::default()),
            (vec!["a".into()], vec![])
        );
    }

    #[test]
    fn an_override_longer_than_max_override_is_refused_as_from_a_file() {
        let mut index = WindowIndex::default();
        index.apply(with_override("a", 2));
        index.apply(with_override("b", 48));
        let (set, problems) = check(&mut index, &Gate::default());
        assert_eq!(set, ["a"]);
        assert_eq!(
            problems,
            [
                "cluster ReconciliationWindow/b: ReconciliationWindow \"b\": spec.overrides[0]: 48h \
              long, more than --max-override 24h: end it at most 24h after its start; not in force"
            ]
        );
        // A good version in force keeps its place when the next one is too long.
        index.apply(with_override("a", 30));
        let (set, problems) = check(&mut index, &Gate::default());
        assert_eq!(set, ["a"]);
        assert_eq!(problems.len(), 2);
        assert!(
            index.candidate().in_force["a"].object.spec.overrides.len() == 1,
            "the 2h override"
        );
    }

    #[test]
    fn the_default_window_is_never_waited_for_and_its_deletion_is_refused() {
        let gate = Gate::new(
            Policy {
                default_window: "main".into(),
                ..Policy::default()
            },
            true,
        );
        let mut index = WindowIndex::default();
        index.apply(window("a", "0 1 * * *"));
        // Not there yet: the rest is in force (so the webhook is ready to admit its creation).
        let (set, problems) = check(&mut index, &gate);
        assert_eq!(set, ["a"]);
        assert!(
            problems[0].starts_with("--default-window \"main\" names no window (known: a)"),
            "{problems:?}"
        );
        index.apply(window("main", "0 2 * * *"));
        assert_eq!(
            check(&mut index, &gate),
            (vec!["a".into(), "main".into()], vec![])
        );
        // Deleted: its last version stays, and other changes still apply.
        index.delete(&window("main", "0 2 * * *"));
        index.apply(window("b", "0 3 * * *"));
        let (set, problems) = check(&mut index, &gate);
        assert_eq!(set, ["a", "b", "main"]);
        assert_eq!(
            problems,
            [
                "ReconciliationWindow \"main\" is --default-window and was deleted: its last version \
              stays in force until it is created again or fluxgate restarts with another \
              --default-window"
            ]
        );
        assert!(
            !index.observed().contains_key("main"),
            "no status for an object that is gone"
        );
        index.apply(window("main", "0 4 * * *"));
        assert_eq!(check(&mut index, &gate).1, Vec::<String>::new());
    }

    fn freeze(
        name: &str,
        spec: serde_json::Value,
        labels: serde_json::Value,
    ) -> ReconciliationFreeze {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "fluxgate.io/v1alpha1", "kind": "ReconciliationFreeze",
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_freeze_freezes_the_windows_it_covers_and_a_flux_one_nothing() {
        let mut index = WindowIndex::default();
        // Open all day, every day.
        let mut always = window("a", "0 0 * * *");
        always.spec.schedules[0].duration = Some("24h".into());
        let mut b = always.clone();
        b.metadata.name = Some("b".into());
        index.apply(always);
        index.apply(b);
        let end = (now() + chrono::Duration::hours(1)).to_rfc3339();
        let freezes = [
            freeze(
                "inc-1",
                serde_json::json!({"reason": "INC-1", "end": end, "windows": ["a"]}),
                serde_json::json!({}),
            ),
            freeze(
                "from-git",
                serde_json::json!({"reason": "from Git", "end": end, "all": true}),
                serde_json::json!({"kustomize.toolkit.fluxcd.io/name": "infra"}),
            ),
        ];
        index.set_freezes(Arc::new(
            freezes
                .into_iter()
                .map(|f| (f.metadata.name.clone().unwrap(), f))
                .collect(),
        ));
        let in_force = index.candidate().check(&Gate::default(), now());
        assert_eq!(in_force.freezes.len(), 1);
        assert_eq!(in_force.refused_freezes.len(), 1);
        assert!(
            in_force.refused_freezes[0].starts_with("ReconciliationFreeze \"from-git\": metadata.labels: applied by Flux (Kustomization infra)")
                && in_force.refused_freezes[0].ends_with("; it freezes nothing"),
            "{:?}",
            in_force.refused_freezes
        );
        let a = in_force.set.get("a").unwrap().state_at(now());
        assert!(!a.open);
        assert_eq!(
            a.freeze.as_ref().unwrap().reason.as_deref(),
            Some("stop the line: INC-1, ReconciliationFreeze inc-1")
        );
        assert!(
            in_force.set.get("b").unwrap().state_at(now()).open,
            "not covered"
        );
        // The versions in force are the cluster's, without the freeze: a status write or a
        // change of the freeze is not a change of the window.
        assert!(in_force.versions["a"].object.spec.freezes.is_empty());
    }
}
