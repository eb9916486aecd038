//! Splitting one kustomization folder in two: an app folder (`apps/nginx` → `nginx-rt`,
//! `nginx-rw`, each labelled) or a cluster's entry point (`clusters/c/apps` → `apps-rt`,
//! `apps-rw`, whose resources are the sides of the apps). One function serves both, so a patch
//! is sorted the same way wherever it is written.

use super::kustomization::{Item, Kustomization, SideLabels};
use super::objects::{Object, ObjectFile, Rules, Side};
use super::patch::{Selector, sides_reached};
use super::{Action, Change, path};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// An app whose sides are known: split in this run, or before it.
#[derive(Clone, Debug)]
pub(crate) struct SplitApp {
    pub(crate) dir: String,
    /// The rt side's folder, when it has one.
    pub(crate) rt: Option<String>,
    pub(crate) rw: Option<String>,
    pub(crate) objects: Vec<Object>,
    /// False when its sides build objects split cannot list (folders of their own).
    pub(crate) complete: bool,
}

/// What kind of folder is split.
pub(crate) enum Role<'a> {
    /// An app folder: its objects are sorted by their labels and kinds, and each side is
    /// labelled.
    App { labels: [SideLabels; 2] },
    /// A cluster's entry point: its resources are apps, each side of each app goes to its side.
    Entry { apps: &'a [SplitApp] },
}

/// The plan for one folder.
#[derive(Debug)]
pub(crate) struct FolderSplit {
    pub(crate) changes: Vec<Change>,
    /// The folder's own objects, sorted.
    pub(crate) objects: Vec<Object>,
    /// The sides that get a folder.
    pub(crate) sides: BTreeSet<Side>,
    pub(crate) notes: Vec<String>,
}

/// Where the items of the sided lists and the files go.
#[derive(Default)]
struct Sorting {
    lists: [BTreeMap<&'static str, Vec<Item>>; 2],
    /// Files of the folder and the sides that need them.
    files: BTreeMap<String, BTreeSet<Side>>,
    /// Files of objects, read.
    object_files: BTreeMap<String, ObjectFile>,
    /// The folder also builds objects split cannot list.
    unknown: Vec<String>,
    notes: Vec<String>,
}

fn index(side: Side) -> usize {
    match side {
        Side::Rt => 0,
        Side::Rw => 1,
    }
}

// === impl Sorting ===

impl Sorting {
    fn put(&mut self, side: Side, key: &'static str, item: Item) {
        self.lists[index(side)].entry(key).or_default().push(item);
    }

    /// A file of the folder that goes with `sides`.
    fn take_file(
        &mut self,
        files: &BTreeMap<String, String>,
        k: &Kustomization,
        file: &str,
        sides: &BTreeSet<Side>,
    ) -> Result<(), String> {
        if !path::is_within(file, &k.dir) {
            return Err(format!(
                "{} uses {file}, which lies outside its folder: move it in first",
                k.file
            ));
        }
        if !files.contains_key(file) {
            return Err(format!(
                "{} uses {file}, which is not here to move (split reads YAML and JSON files)",
                k.file
            ));
        }
        self.files.entry(file.to_owned()).or_default().extend(sides);
        Ok(())
    }
}

/// Splits the folder of `k` into `dirs` (rt, rw).
pub(crate) fn split_folder(
    files: &BTreeMap<String, String>,
    k: &Kustomization,
    dirs: [&str; 2],
    role: &Role,
    rules: &Rules,
) -> Result<FolderSplit, String> {
    k.check_fields()?;
    let mut sorting = Sorting::default();
    // Every list the original has is written on both sides: kept items, or none (the key goes).
    for key in super::kustomization::SIDED {
        if k.value.get(key).is_some() {
            for lists in &mut sorting.lists {
                lists.insert(key, Vec::new());
            }
        }
    }
    sort_resources(files, k, dirs, role, rules, &mut sorting)?;
    let own: Vec<Object> = sorting
        .object_files
        .values()
        .flat_map(|f| f.objects().cloned())
        .collect();
    let mut known = own.clone();
    if let Role::Entry { apps } = role {
        for reference in k.references("resources")? {
            let target = path::join(&k.dir, &reference);
            if let Some(app) = apps.iter().find(|a| a.is_or_side(&target)) {
                known.extend(app.objects.iter().cloned());
                if !app.complete {
                    sorting.unknown.push(reference);
                }
            }
        }
    }
    let sides: BTreeSet<Side> = match role {
        Role::App { .. } => own.iter().map(|o| o.side).collect(),
        Role::Entry { .. } => Side::BOTH.into(),
    };
    if matches!(role, Role::App { .. }) && !sides.contains(&Side::Rw) {
        return Err(format!(
            "{}: no object is rw (labelled fluxgate.io/mode: rw, or of a --rw kind): nothing \
             to split; name the kinds to gate with --rw",
            path::display(&k.dir)
        ));
    }
    sort_patches(files, k, dirs, &known, &sides, &mut sorting)?;
    if matches!(role, Role::Entry { .. })
        && let Some(rw) = own.iter().find(|o| o.side == Side::Rw)
    {
        return Err(format!(
            "{} lists {} itself ({}): move it into an app folder and split that",
            k.file, rw.display, rw.why
        ));
    }

    let mut changes = Vec::new();
    for side in &sides {
        let dir = dirs[index(*side)];
        let labels = match role {
            Role::App { labels } => Some(&labels[index(*side)]),
            Role::Entry { .. } => None,
        };
        let text = k.rewrite(&sorting.lists[index(*side)], labels)?;
        let file = path::child(dir, "kustomization.yaml");
        let why = match role {
            Role::App { .. } => format!(
                "{} objects, labelled {}",
                side.as_str(),
                labels
                    .map(|l| {
                        l.pairs
                            .iter()
                            .map(|(k, v)| format!("{k}: {v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default()
            ),
            Role::Entry { .. } => format!("the {} sides of the apps", side.as_str()),
        };
        changes.push(Change::new(Action::Create { path: file, text }, why));
    }
    changes.extend(file_changes(files, k, dirs, &sides, &sorting));
    changes.push(Change::new(
        Action::Delete {
            path: k.file.clone(),
        },
        format!(
            "replaced by {}",
            sides
                .iter()
                .map(|s| path::file_name(dirs[index(*s)]))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    ));
    for change in &changes {
        if let Action::Create { path, .. } | Action::Move { to: path, .. } = &change.action
            && files.contains_key(path)
        {
            return Err(format!(
                "{path} exists already: move it out of the way first"
            ));
        }
    }
    for file in files.keys() {
        let taken = sorting.files.contains_key(file)
            || *file == k.file
            || dirs.iter().any(|d| path::is_within(file, d));
        if path::parent(file) == k.dir && !taken {
            sorting.notes.push(format!(
                "{file} is not used by {}: left where it is",
                k.file
            ));
        }
    }
    Ok(FolderSplit {
        changes,
        objects: own,
        sides,
        notes: sorting.notes,
    })
}

impl SplitApp {
    /// Whether `target` (a resolved resource) is the app folder or one of its sides.
    pub(crate) fn is_or_side(&self, target: &str) -> bool {
        target == self.dir
            || Some(target) == self.rt.as_deref()
            || Some(target) == self.rw.as_deref()
    }
}

/// Moves the folder's files to their sides; a file both sides need is cut (objects) or copied
/// (a patch).
fn file_changes(
    files: &BTreeMap<String, String>,
    k: &Kustomization,
    dirs: [&str; 2],
    sides: &BTreeSet<Side>,
    sorting: &Sorting,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for (file, file_sides) in &sorting.files {
        let file_sides: Vec<Side> = file_sides.intersection(sides).copied().collect();
        let relative = &file[k.dir.len() + usize::from(!k.dir.is_empty())..];
        let of = |side: Side| -> String {
            match sorting.object_files.get(file) {
                Some(objects) => {
                    let names: Vec<String> = objects
                        .objects()
                        .filter(|o| o.side == side)
                        .map(|o| format!("{} ({})", o.display, o.why))
                        .collect();
                    format!("{}: {}", side.as_str(), names.join(", "))
                }
                None => format!("{}: a patch", side.as_str()),
            }
        };
        match file_sides.as_slice() {
            [side] => changes.push(Change::new(
                Action::Move {
                    from: file.clone(),
                    to: path::child(dirs[index(*side)], relative),
                },
                of(*side),
            )),
            many => {
                for side in many {
                    let text = match sorting.object_files.get(file) {
                        Some(objects) => objects.text_of(*side),
                        None => files[file].clone(),
                    };
                    changes.push(Change::new(
                        Action::Create {
                            path: path::child(dirs[index(*side)], relative),
                            text,
                        },
                        match sorting.object_files.contains_key(file) {
                            true => format!("{} (cut out of {file})", of(*side)),
                            false => format!("{} (a copy of {file})", of(*side)),
                        },
                    ));
                }
                changes.push(Change::new(
                    Action::Delete { path: file.clone() },
                    "both sides have what they need of it".into(),
                ));
            }
        }
    }
    changes
}

/// Sorts `resources`: files of objects by their objects' sides, apps (of an entry) by side.
fn sort_resources(
    files: &BTreeMap<String, String>,
    k: &Kustomization,
    dirs: [&str; 2],
    role: &Role,
    rules: &Rules,
    sorting: &mut Sorting,
) -> Result<(), String> {
    for (i, reference) in k.references("resources")?.into_iter().enumerate() {
        let target = path::join(&k.dir, &reference);
        if path::is_remote(&reference) {
            match role {
                Role::App { .. } => {
                    return Err(format!(
                        "{} lists the remote base {reference}: its objects are not here to \
                         be sorted; vendor it, or split by hand",
                        k.file
                    ));
                }
                Role::Entry { .. } => {
                    sorting.put(Side::Rt, "resources", Item::Keep(i));
                    sorting.unknown.push(reference.clone());
                    sorting.notes.push(format!(
                        "{}: {reference} is remote, so not split: it goes to {} as it is",
                        k.file,
                        path::file_name(dirs[0])
                    ));
                    continue;
                }
            }
        }
        if let Some(text) = files.get(&target) {
            let file = ObjectFile::read(&target, text, rules)?;
            let sides = file.sides();
            for side in &sides {
                sorting.put(*side, "resources", Item::Keep(i));
            }
            sorting.take_file(files, k, &target, &sides)?;
            sorting.object_files.insert(target, file);
            continue;
        }
        let is_dir = files
            .keys()
            .any(|f| path::is_within(f, &target) && *f != target);
        if !is_dir {
            return Err(format!(
                "{} lists {reference}, which is neither a YAML file nor a folder of them here",
                k.file
            ));
        }
        let Role::Entry { apps } = role else {
            let hint = if path::is_within(&target, &k.dir) {
                format!("split {} on its own", path::display(&target))
            } else {
                format!(
                    "it is a base: split it (fluxgate split {}), and the overlays that list \
                     it follow",
                    path::display(&target)
                )
            };
            return Err(format!(
                "{} lists the folder {reference}, whose objects split does not sort: {hint}",
                k.file
            ));
        };
        match apps.iter().find(|a| a.is_or_side(&target)) {
            Some(app) => {
                for (side, app_side) in [(Side::Rt, &app.rt), (Side::Rw, &app.rw)] {
                    let Some(app_side) = app_side else { continue };
                    if target != app.dir && target != *app_side {
                        continue;
                    }
                    let new = path::relative(dirs[index(side)], app_side);
                    sorting.put(side, "resources", Item::Rewrite(i, new));
                }
            }
            None => {
                let new = path::relative(dirs[0], &target);
                sorting.put(Side::Rt, "resources", Item::Rewrite(i, new));
                sorting.unknown.push(reference.clone());
                sorting.notes.push(format!(
                    "{}: {reference} is not split: it goes to {} (split it too if it holds rw \
                     objects)",
                    k.file,
                    path::file_name(dirs[0])
                ));
            }
        }
    }
    Ok(())
}

/// Sorts patches, `replicas` and components by the sides of the objects they may reach.
fn sort_patches(
    files: &BTreeMap<String, String>,
    k: &Kustomization,
    dirs: [&str; 2],
    known: &[Object],
    sides: &BTreeSet<Side>,
    sorting: &mut Sorting,
) -> Result<(), String> {
    let unknown = !sorting.unknown.is_empty();
    let place = |sorting: &mut Sorting,
                 key: &'static str,
                 what: String,
                 reached: BTreeSet<Side>,
                 has_target: bool,
                 item: &dyn Fn(Side) -> Item|
     -> Result<BTreeSet<Side>, String> {
        let chosen: BTreeSet<Side> = match reached.len() {
            0 if has_target => {
                sorting.notes.push(format!(
                    "{}: {what} reaches no object here: both sides keep it",
                    k.file
                ));
                sides.clone()
            }
            0 => {
                return Err(format!(
                    "{}: {what} names no object the folder builds (kustomize would fail on it)",
                    k.file
                ));
            }
            1 => reached,
            _ => {
                let objects: Vec<&str> = known
                    .iter()
                    .filter(|o| o.side == Side::Rw)
                    .map(|o| o.display.as_str())
                    .take(3)
                    .collect();
                let unseen = if unknown {
                    format!(" or objects of {} (not split)", sorting.unknown.join(", "))
                } else {
                    String::new()
                };
                return Err(format!(
                    "{}: {what} may change objects on both sides (rw: {}; rt: the others{unseen}): \
                     write one patch per side with a target that names its objects, or move it \
                     by hand",
                    k.file,
                    objects.join(", ")
                ));
            }
        };
        for side in &chosen {
            sorting.put(*side, key, item(*side));
        }
        Ok(chosen)
    };
    let reached = |selectors: &[Selector]| sides_reached(selectors, known, unknown);

    for (i, patch) in k.list("patches").iter().enumerate() {
        let (selectors, file, has_target) = match patch.get("target") {
            Some(target) => (
                vec![Selector::target(target)],
                patch.get("path").and_then(Value::as_str),
                true,
            ),
            None => {
                let (body, file) = patch_body(files, k, patch)?;
                let selectors = Selector::strategic_merge(&body)
                    .map_err(|e| format!("{}: patches[{i}]: {e}", k.file))?;
                (selectors, file, false)
            }
        };
        let what = describe_patch(i, patch);
        let chosen = place(
            sorting,
            "patches",
            what,
            reached(&selectors),
            has_target,
            &|_| Item::Keep(i),
        )?;
        if let Some(file) = file {
            sorting.take_file(files, k, &path::join(&k.dir, file), &chosen)?;
        }
    }
    for (i, patch) in k.list("patchesStrategicMerge").iter().enumerate() {
        let Value::String(text) = patch else {
            return Err(format!(
                "{}: patchesStrategicMerge[{i}] is not text",
                k.file
            ));
        };
        let file = path::join(&k.dir, text);
        let (body, is_file) = match files.get(&file) {
            Some(body) => (body.clone(), true),
            None => (text.clone(), false),
        };
        let selectors = Selector::strategic_merge(&body)
            .map_err(|e| format!("{}: patchesStrategicMerge[{i}]: {e}", k.file))?;
        let what = format!("patchesStrategicMerge[{i}]");
        let chosen = place(
            sorting,
            "patchesStrategicMerge",
            what,
            reached(&selectors),
            false,
            &|_| Item::Keep(i),
        )?;
        if is_file {
            sorting.take_file(files, k, &file, &chosen)?;
        }
    }
    for (i, patch) in k.list("patchesJson6902").iter().enumerate() {
        let target = patch.get("target").cloned().unwrap_or(Value::Null);
        let what = format!("patchesJson6902[{i}]");
        let chosen = place(
            sorting,
            "patchesJson6902",
            what,
            reached(&[Selector::target(&target)]),
            true,
            &|_| Item::Keep(i),
        )?;
        if let Some(file) = patch.get("path").and_then(Value::as_str) {
            sorting.take_file(files, k, &path::join(&k.dir, file), &chosen)?;
        }
    }
    for (i, entry) in k.list("replicas").iter().enumerate() {
        let what = format!(
            "replicas entry {}",
            entry.get("name").and_then(Value::as_str).unwrap_or("?")
        );
        place(
            sorting,
            "replicas",
            what,
            reached(&[Selector::replicas(entry)]),
            false,
            &|_| Item::Keep(i),
        )?;
    }
    for (i, reference) in k.references("components")?.into_iter().enumerate() {
        let dir = path::join(&k.dir, &reference);
        let selectors = component_selectors(files, k, &reference, &dir)?;
        let what = format!("component {reference}");
        place(
            sorting,
            "components",
            what,
            reached(&selectors),
            true,
            &|side| Item::Rewrite(i, path::relative(dirs[index(side)], &dir)),
        )?;
    }
    Ok(())
}

/// The text of a patch without target (inline, or its file) and the file's reference.
fn patch_body<'a>(
    files: &BTreeMap<String, String>,
    k: &Kustomization,
    patch: &'a Value,
) -> Result<(String, Option<&'a str>), String> {
    if let Some(text) = patch.get("patch").and_then(Value::as_str) {
        return Ok((text.to_owned(), None));
    }
    let reference = patch
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{}: a patch with neither patch: nor path:", k.file))?;
    let file = path::join(&k.dir, reference);
    let body = files
        .get(&file)
        .ok_or_else(|| format!("{}: patch file {reference} is not here", k.file))?;
    Ok((body.clone(), Some(reference)))
}

fn describe_patch(i: usize, patch: &Value) -> String {
    match (
        patch.get("path").and_then(Value::as_str),
        patch.get("target"),
    ) {
        (Some(file), _) => format!("the patch {file}"),
        (None, Some(target)) => format!("patches[{i}] (target {target})"),
        (None, None) => format!("patches[{i}]"),
    }
}

/// What a component may change: its patches (a component that adds objects or does anything
/// else is refused: which side its objects belong to is not split's to guess).
fn component_selectors(
    files: &BTreeMap<String, String>,
    k: &Kustomization,
    reference: &str,
    dir: &str,
) -> Result<Vec<Selector>, String> {
    if path::is_remote(reference) {
        return Err(format!(
            "{} uses the remote component {reference}: split cannot see what it changes",
            k.file
        ));
    }
    let component = Kustomization::find(files, dir).ok_or_else(|| {
        format!(
            "{}: component {reference} has no kustomization here",
            k.file
        )
    })??;
    let Value::Object(map) = &component.value else {
        return Ok(Vec::new());
    };
    let mut selectors = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            "apiVersion" | "kind" | "metadata" => {}
            "patches" | "patchesJson6902" => {
                for patch in value.as_array().into_iter().flatten() {
                    match patch.get("target") {
                        Some(target) => selectors.push(Selector::target(target)),
                        None => {
                            let (body, _) = patch_body(files, &component, patch)?;
                            selectors.extend(
                                Selector::strategic_merge(&body)
                                    .map_err(|e| format!("{}: {e}", component.file))?,
                            );
                        }
                    }
                }
            }
            other => {
                return Err(format!(
                    "{} uses the component {reference}, whose {other} split does not sort \
                     (it sorts components that only patch): move it by hand",
                    k.file
                ));
            }
        }
    }
    Ok(selectors)
}
