//! `fluxgate split`: the restructuring the rt/rw layout starts from, as a plan of moves, new
//! files, edits and deletions, computed from the files' texts alone (no I/O: the shell reads the
//! tree and applies the plan).
//!
//! - Each app folder `A` (`apps/nginx`) becomes `A/<name>-rt` and `A/<name>-rw`: objects
//!   labelled `fluxgate.io/mode: rw` and objects of the `--rw` kinds go to rw, the others to rt
//!   ([`objects`]); each side gets a kustomization derived from `A`'s, labelling its objects with
//!   `labels:` (never selectors); patches, `replicas` and components follow the objects they
//!   reach ([`patch`], [`folder`]).
//! - Each folder a Flux Kustomization of `--clusters` applies that lists `A` (the cluster's
//!   entry point, `clusters/c/apps`) becomes `<K>-rt` and `<K>-rw` after the Flux Kustomization
//!   `K`, which is itself split in two, `K-rw` after `K-rt` and after the windows ([`flux`]).
//!   Entry points split before (a pair `K-rt`/`K-rw`) take the new app's sides.
//! - Any other kustomization that lists `A` lists both sides instead, so it renders the same
//!   objects.
//!
//! What cannot be moved safely is refused with the reason, and then nothing is written: a patch
//! or component reaching both sides, generators, remote bases, Helm charts, name prefixes,
//! anything it does not know. Files are moved as text; kustomizations and Flux Kustomizations
//! are edited line by line and each edit is read back ([`yaml`]). A second run finds every app
//! split and every reference up to date, and plans nothing.

mod flux;
mod folder;
mod kustomization;
mod objects;
mod patch;
mod path;
mod yaml;

#[cfg(test)]
mod tests;

use crate::policy::{MODE_LABEL, WINDOW_LABEL};
use flux::{Flux, FluxKustomization, sub_path, window_names};
use folder::{Role, SplitApp, split_folder};
use kustomization::{FILE_NAMES, Item, Kustomization, SideLabels};
use objects::{ObjectFile, Rules, Side};
use std::collections::{BTreeMap, BTreeSet};

/// What to split, as the command line says it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// App folders, relative to where split runs.
    pub apps: Vec<String>,
    /// Kinds whose objects are rw (`--rw`), matched without regard to case.
    pub rw_kinds: Vec<String>,
    /// `--window`: the window rw objects get.
    pub window: Option<String>,
    /// `--clusters` folders, relative to where split runs.
    pub clusters: Vec<String>,
    /// Where split runs, relative to the root of its Git repository (`""` at the root): Flux
    /// reads `spec.path` from that root.
    pub repo_prefix: String,
}

/// What split would do, and what it refuses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub sections: Vec<Section>,
    /// When there is any, nothing may be written.
    pub refusals: Vec<Refusal>,
    /// What the plan leaves for a person to look at.
    pub notes: Vec<String>,
}

/// The changes for one folder or concern, under a title.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub title: String,
    pub changes: Vec<Change>,
}

/// One change to the tree, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub action: Action,
    pub why: String,
}

/// A change to one file. Paths are relative to where split runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The file, unchanged, at a new path.
    Move {
        from: String,
        to: String,
    },
    /// A new file.
    Create {
        path: String,
        text: String,
    },
    /// New text for an existing file.
    Edit {
        path: String,
        text: String,
    },
    Delete {
        path: String,
    },
}

/// Something split will not do, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// The app folder, cluster folder or file concerned.
    pub subject: String,
    pub reason: String,
}

// === impl Plan ===

impl Plan {
    /// Every change, in the order to apply them.
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.sections.iter().flat_map(|s| &s.changes)
    }

    /// The tree after the plan; an error names a change that does not fit the tree.
    pub(crate) fn applied(
        &self,
        files: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, String> {
        let mut after = files.clone();
        for change in self.changes() {
            match &change.action {
                Action::Move { from, to } => {
                    let text = after.remove(from).ok_or(format!("{from} is not there"))?;
                    if after.insert(to.clone(), text).is_some() {
                        return Err(format!("{to} is there already"));
                    }
                }
                Action::Create { path, text } => {
                    if after.insert(path.clone(), text.clone()).is_some() {
                        return Err(format!("{path} is there already"));
                    }
                }
                Action::Edit { path, text } => {
                    if after.insert(path.clone(), text.clone()).is_none() {
                        return Err(format!("{path} is not there"));
                    }
                }
                Action::Delete { path } => {
                    after.remove(path).ok_or(format!("{path} is not there"))?;
                }
            }
        }
        Ok(after)
    }

    fn refuse(&mut self, subject: &str, reason: String) {
        self.refusals.push(Refusal {
            subject: path::display(subject).to_owned(),
            reason,
        });
    }
}

impl Change {
    pub(crate) fn new(action: Action, why: String) -> Self {
        Change { action, why }
    }
}

/// Plans the split of `request.apps` over the tree `files` (path → text, every YAML file
/// under where split runs; paths relative to it).
pub fn plan(files: &BTreeMap<String, String>, request: &Request) -> Plan {
    let mut plan = Plan::default();
    let request = Request {
        apps: request.apps.iter().map(|a| path::normalize(a)).collect(),
        clusters: request
            .clusters
            .iter()
            .map(|c| path::normalize(c))
            .collect(),
        repo_prefix: path::normalize(&request.repo_prefix),
        ..request.clone()
    };
    if let Some(window) = &request.window
        && let Err(reason) = check_label_value(window)
    {
        plan.refuse("--window", reason);
        return plan;
    }
    let rules = Rules {
        rw_kinds: &request.rw_kinds,
        window: request.window.as_deref(),
    };
    let mut apps = Vec::new();
    let mut kinds_split = BTreeSet::new();
    for dir in &request.apps {
        match split_app(files, dir, &rules) {
            Ok((app, section, notes)) => {
                if section.is_some() {
                    kinds_split.extend(app.objects.iter().map(|o| o.kind.to_ascii_lowercase()));
                }
                apps.push(app);
                plan.sections.extend(section);
                plan.notes.extend(notes);
            }
            Err(reason) => plan.refuse(dir, reason),
        }
    }
    if !kinds_split.is_empty() {
        for kind in &request.rw_kinds {
            if !kinds_split.contains(&kind.to_ascii_lowercase()) {
                plan.notes.push(format!(
                    "--rw {kind}: no object of that kind in the apps split"
                ));
            }
        }
    }
    let flux = match Flux::read(files, &request.clusters, &request.repo_prefix) {
        Ok(flux) => flux,
        Err(reason) => {
            plan.refuse("--clusters", reason);
            Flux::default()
        }
    };
    let tree = Tree {
        files,
        flux: &flux,
        apps: &apps,
        request: &request,
        rules: &rules,
    };
    let mut handled = BTreeSet::new();
    let mut flux_edits = FluxEdits::default();
    split_entries(&tree, &mut handled, &mut flux_edits, &mut plan);
    update_pairs(&tree, &mut handled, &mut plan);
    update_references(&tree, &handled, &mut plan);
    flux_edits.finish(&tree, &mut plan);
    cluster_notes(&tree, &mut plan);
    if plan.refusals.is_empty() {
        check_result(&tree, &mut plan);
    }
    plan
}

/// What the steps after the apps' split read.
struct Tree<'a> {
    files: &'a BTreeMap<String, String>,
    flux: &'a Flux,
    apps: &'a [SplitApp],
    request: &'a Request,
    rules: &'a Rules<'a>,
}

/// A label value, as the API server checks it: at most 63 characters of `[A-Za-z0-9._-]`,
/// starting and ending with a letter or digit.
fn check_label_value(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a valid label value for {WINDOW_LABEL} (at most 63 letters, \
             digits, '-', '_' or '.', starting and ending with a letter or digit)"
        ))
    }
}

/// The `labels:` of an app's two sides.
fn side_labels(window: Option<&str>) -> [SideLabels; 2] {
    let rt = SideLabels {
        pairs: BTreeMap::from([(MODE_LABEL.to_owned(), "rt".to_owned())]),
        comment: "fluxgate split: real-time objects, applied as soon as they are merged. \
                  `labels:`, not\n`commonLabels:`: selectors and pod templates stay unlabelled."
            .into(),
    };
    let mut pairs = BTreeMap::from([(MODE_LABEL.to_owned(), "rw".to_owned())]);
    let when = match window {
        Some(window) => {
            pairs.insert(WINDOW_LABEL.to_owned(), window.to_owned());
            format!("window {window}")
        }
        None => "their window".to_owned(),
    };
    let rw = SideLabels {
        pairs,
        comment: format!(
            "fluxgate split: objects fluxgate admits from Flux only while {when} is open.\n\
             `labels:`, not `commonLabels:`: selectors and pod templates stay unlabelled (a \
             selector is\nimmutable, and pods are created by their controllers, not by Flux)."
        ),
    };
    [rt, rw]
}

/// Splits one app folder, or reads its sides when it is split already.
fn split_app(
    files: &BTreeMap<String, String>,
    dir: &str,
    rules: &Rules,
) -> Result<(SplitApp, Option<Section>, Vec<String>), String> {
    if dir.is_empty() || dir.starts_with("..") || dir.starts_with('/') {
        return Err("name an app folder below the folder split runs in".into());
    }
    let name = path::file_name(dir);
    let dirs = [
        path::child(dir, &format!("{name}-rt")),
        path::child(dir, &format!("{name}-rw")),
    ];
    let sides = [
        Kustomization::find(files, &dirs[0]),
        Kustomization::find(files, &dirs[1]),
    ];
    let split_before = sides.iter().any(Option::is_some);
    match Kustomization::find(files, dir) {
        Some(_) if split_before => Err(format!(
            "it holds a kustomization and {name}-rt/ or {name}-rw/ beside it: a split half \
             done, or a layout split does not know; finish it by hand"
        )),
        None if !split_before => {
            let has_files = files.keys().any(|f| path::is_within(f, dir));
            Err(if has_files {
                format!("no {} in it", FILE_NAMES[0])
            } else {
                "no such folder (or no YAML in it)".to_owned()
            })
        }
        None => Ok((split_before_app(files, dir, &dirs), None, Vec::new())),
        Some(k) => {
            let k = k?;
            let role = Role::App {
                labels: side_labels(rules.window),
            };
            let split = split_folder(files, &k, [&dirs[0], &dirs[1]], &role, rules)?;
            let count = |side: Side| split.objects.iter().filter(|o| o.side == side).count();
            let title = format!(
                "{dir}: {} rt objects → {name}-rt, {} rw objects → {name}-rw",
                count(Side::Rt),
                count(Side::Rw)
            );
            let app = SplitApp {
                dir: dir.to_owned(),
                rt: split.sides.contains(&Side::Rt).then(|| dirs[0].clone()),
                rw: split.sides.contains(&Side::Rw).then(|| dirs[1].clone()),
                objects: split.objects,
                complete: true,
            };
            let section = Section {
                title,
                changes: split.changes,
            };
            Ok((app, Some(section), split.notes))
        }
    }
}

/// An app split before: its sides, and the objects they list (for the patches of entry points).
fn split_before_app(files: &BTreeMap<String, String>, dir: &str, dirs: &[String; 2]) -> SplitApp {
    let mut app = SplitApp {
        dir: dir.to_owned(),
        rt: None,
        rw: None,
        objects: Vec::new(),
        complete: true,
    };
    // The folder says the side; labels and kinds were read when it was split.
    let permissive = Rules {
        rw_kinds: &[],
        window: None,
    };
    for (side, side_dir) in Side::BOTH.into_iter().zip(dirs) {
        let Some(found) = Kustomization::find(files, side_dir) else {
            continue;
        };
        match side {
            Side::Rt => app.rt = Some(side_dir.clone()),
            Side::Rw => app.rw = Some(side_dir.clone()),
        }
        let Ok(k) = found else {
            app.complete = false;
            continue;
        };
        for reference in k.references("resources").unwrap_or_default() {
            let file = path::join(&k.dir, &reference);
            match files
                .get(&file)
                .map(|t| ObjectFile::read(&file, t, &permissive))
            {
                Some(Ok(read)) => app.objects.extend(read.objects().cloned().map(|mut o| {
                    o.side = side;
                    o
                })),
                _ => app.complete = false,
            }
        }
    }
    app
}

/// The folders that may be a cluster's entry point: those the Flux Kustomizations of
/// `--clusters` apply (with them), and every kustomization folder below `--clusters` (for
/// Kustomizations created outside Git).
fn candidates<'a>(
    files: &BTreeMap<String, String>,
    flux: &'a Flux,
    clusters: &[String],
) -> BTreeMap<String, Vec<&'a FluxKustomization>> {
    let mut folders: BTreeMap<String, Vec<&FluxKustomization>> = BTreeMap::new();
    for k in &flux.kustomizations {
        if let Some(folder) = &k.folder {
            folders.entry(folder.clone()).or_default().push(k);
        }
    }
    for file in files.keys() {
        if FILE_NAMES.contains(&path::file_name(file))
            && clusters.iter().any(|c| path::is_within(file, c))
        {
            folders.entry(path::parent(file).to_owned()).or_default();
        }
    }
    folders
}

/// The two folders of an entry point split before (`…/apps-rt`, `…/apps-rw`), when `folder` is
/// one of them.
fn pair_of(files: &BTreeMap<String, String>, folder: &str) -> Option<[String; 2]> {
    let name = path::file_name(folder);
    let base = name
        .strip_suffix("-rt")
        .or_else(|| name.strip_suffix("-rw"))?;
    let pair = [
        path::child(path::parent(folder), &format!("{base}-rt")),
        path::child(path::parent(folder), &format!("{base}-rw")),
    ];
    pair.iter()
        .all(|f| Kustomization::exists(files, f))
        .then_some(pair)
}

/// Whether some kustomization lists `folder`.
fn is_listed(files: &BTreeMap<String, String>, folder: &str) -> bool {
    files.keys().any(|file| {
        FILE_NAMES.contains(&path::file_name(file))
            && Kustomization::find(files, path::parent(file)).is_some_and(|k| {
                k.is_ok_and(|k| {
                    k.references("resources")
                        .unwrap_or_default()
                        .iter()
                        .any(|r| path::join(&k.dir, r) == folder)
                })
            })
    })
}

/// Splits every entry point that lists an app (or its sides), and the Flux Kustomizations
/// that apply it; splits the Flux Kustomizations that apply an app folder itself.
fn split_entries(
    tree: &Tree,
    handled: &mut BTreeSet<String>,
    flux_edits: &mut FluxEdits,
    plan: &mut Plan,
) {
    let Tree {
        files,
        flux,
        apps,
        request,
        rules,
    } = *tree;
    for (folder, kustomizations) in candidates(files, flux, &request.clusters) {
        if let Some(app) = apps.iter().find(|a| a.dir == folder) {
            for k in kustomizations {
                // The Flux Kustomization applies the app folder itself.
                match (&app.rt, &app.rw) {
                    (Some(rt), Some(rw)) => {
                        let paths = [rt, rw].map(|d| sub_path(&k.path_text, path::file_name(d)));
                        flux_edits.split(k, paths);
                    }
                    _ => plan.refuse(
                        &k.file,
                        format!(
                            "Flux Kustomization {} applies {folder}, which has one side only: \
                             point it at that side by hand",
                            k.name
                        ),
                    ),
                }
            }
            continue;
        }
        let kustomization = match Kustomization::find(files, &folder) {
            Some(Ok(k)) => k,
            Some(Err(reason)) => {
                plan.notes.push(format!(
                    "{} cannot be read as a kustomization ({reason}): not split",
                    path::display(&folder)
                ));
                continue;
            }
            None => {
                let app = apps.iter().find(|a| path::is_within(&a.dir, &folder));
                if let (Some(app), Some(k)) = (app, kustomizations.first()) {
                    plan.refuse(
                        &k.file,
                        format!(
                            "Flux Kustomization {} applies {} without a kustomization, so Flux \
                             would apply both sides of {} together: give {} a {} listing what \
                             it applies, then run split again",
                            k.name,
                            path::display(&folder),
                            app.dir,
                            path::display(&folder),
                            FILE_NAMES[0]
                        ),
                    );
                }
                continue;
            }
        };
        let targets = kustomization.targets("resources");
        let lists = apps.iter().any(|a| targets.iter().any(|t| a.is_or_side(t)));
        if !lists || pair_of(files, &folder).is_some() {
            continue;
        }
        if kustomizations.is_empty() && is_listed(files, &folder) {
            // A part of an entry point, not one: whatever lists it lists both sides instead.
            continue;
        }
        if kustomizations.is_empty()
            && let Some(k) = flux.kustomizations.iter().find(|k| {
                let here = k
                    .folder
                    .as_ref()
                    .is_some_and(|f| files.keys().any(|p| path::is_within(p, f)));
                !here && path::normalize(&k.path_text).ends_with(&format!("/{folder}"))
            })
        {
            plan.refuse(
                &k.file,
                format!(
                    "Flux Kustomization {} applies {}, which looks like {folder} but does not lie \
                     where split runs, read from the root of the Git repository (the folder \
                     holding .git): run split in the repository",
                    k.name, k.path_text
                ),
            );
            continue;
        }
        let names: BTreeSet<&str> = kustomizations.iter().map(|k| k.name.as_str()).collect();
        let name = match names.len() {
            0 => path::file_name(&folder),
            1 => kustomizations[0].name.as_str(),
            _ => {
                plan.refuse(
                    &folder,
                    format!(
                        "Flux Kustomizations of different names apply it ({}): split cannot \
                         name its halves",
                        names.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                );
                continue;
            }
        };
        let dirs = [
            path::child(&folder, &format!("{name}-rt")),
            path::child(&folder, &format!("{name}-rw")),
        ];
        let role = Role::Entry { apps };
        match split_folder(files, &kustomization, [&dirs[0], &dirs[1]], &role, rules) {
            Ok(split) => {
                handled.insert(kustomization.file.clone());
                let applied_by = match kustomizations.is_empty() {
                    true => "no Flux Kustomization in Git".to_owned(),
                    false => format!("Flux Kustomization {name}"),
                };
                plan.sections.push(Section {
                    title: format!(
                        "{}: the entry point of {applied_by} → {name}-rt, {name}-rw",
                        path::display(&folder)
                    ),
                    changes: split.changes,
                });
                plan.notes.extend(split.notes);
                if kustomizations.is_empty() {
                    plan.notes.push(format!(
                        "no Flux Kustomization in {} applies {}: point one named {name}-rt at \
                         {} and one named {name}-rw at {} (dependsOn {name}-rt and the \
                         Kustomization of the windows), and delete the one that applied {}",
                        request.clusters.join(", "),
                        path::display(&folder),
                        dirs[0],
                        dirs[1],
                        path::display(&folder)
                    ));
                }
                for k in kustomizations {
                    let paths =
                        [&dirs[0], &dirs[1]].map(|d| sub_path(&k.path_text, path::file_name(d)));
                    flux_edits.split(k, paths);
                }
            }
            Err(reason) => plan.refuse(&folder, reason),
        }
    }
}

/// Entry points split before (`…/apps-rt`, `…/apps-rw`) that still list an app folder: the rt
/// one lists its rt side, the rw one its rw side.
fn update_pairs(tree: &Tree, handled: &mut BTreeSet<String>, plan: &mut Plan) {
    let Tree {
        files,
        flux,
        apps,
        request,
        ..
    } = *tree;
    let pairs: BTreeSet<[String; 2]> = candidates(files, flux, &request.clusters)
        .keys()
        .filter_map(|folder| pair_of(files, folder))
        .collect();
    for folders in pairs {
        let read: Vec<Kustomization> = folders
            .iter()
            .filter_map(|f| Kustomization::find(files, f).and_then(Result::ok))
            .collect();
        let [rt, rw] = read.as_slice() else { continue };
        let mut changes = Vec::new();
        for (side, k, other) in [(Side::Rt, rt, rw), (Side::Rw, rw, rt)] {
            let targets = k.targets("resources");
            let other_targets = other.targets("resources");
            let mut items: Vec<Item> = (0..targets.len()).map(Item::Keep).collect();
            let mut changed = false;
            for app in apps {
                let own_side = match side {
                    Side::Rt => &app.rt,
                    Side::Rw => &app.rw,
                };
                if !targets.contains(&app.dir) && !other_targets.contains(&app.dir) {
                    continue;
                }
                let listed_side = own_side.as_ref().is_some_and(|s| targets.contains(s));
                items.retain(|item| match item {
                    Item::Keep(i) => targets[*i] != app.dir,
                    _ => true,
                });
                if let Some(own_side) = own_side
                    && !listed_side
                {
                    items.push(Item::New(path::relative(&k.dir, own_side)));
                }
                changed = true;
            }
            if !changed {
                continue;
            }
            match k.rewrite(&BTreeMap::from([("resources", items)]), None) {
                Ok(text) => {
                    handled.insert(k.file.clone());
                    changes.push(Change::new(
                        Action::Edit {
                            path: k.file.clone(),
                            text,
                        },
                        format!("lists the {} sides of the apps", side.as_str()),
                    ));
                }
                Err(reason) => plan.refuse(&k.file, reason),
            }
        }
        if !changes.is_empty() {
            plan.sections.push(Section {
                title: format!(
                    "{} and {}: entry points split before",
                    folders[0], folders[1]
                ),
                changes,
            });
        }
    }
}

/// The last guard: in the tree the plan leaves, every file or kustomization folder that a
/// kustomization lists, or a Flux Kustomization of `--clusters` applies, and that was there
/// before, is there still. What the steps above do not fix (a folder listed from a place split
/// does not edit) is refused here rather than left dangling.
fn check_result(tree: &Tree, plan: &mut Plan) {
    let files = tree.files;
    let after = match plan.applied(files) {
        Ok(after) => after,
        Err(reason) => {
            plan.refuse(
                ".",
                format!("the plan does not fit the tree ({reason}): a bug in split"),
            );
            return;
        }
    };
    let was_there =
        |target: &str| files.contains_key(target) || Kustomization::exists(files, target);
    let is_there =
        |target: &str| after.contains_key(target) || Kustomization::exists(&after, target);
    let mut dangling = Vec::new();
    for file in after.keys() {
        if !FILE_NAMES.contains(&path::file_name(file)) {
            continue;
        }
        let Some(Ok(k)) = Kustomization::find(&after, path::parent(file)) else {
            continue;
        };
        for key in ["resources", "components"] {
            for reference in k.references(key).unwrap_or_default() {
                let target = path::join(&k.dir, &reference);
                if !path::is_remote(&reference) && was_there(&target) && !is_there(&target) {
                    dangling.push((k.file.clone(), format!("{key} {reference}")));
                }
            }
        }
    }
    if let Ok(flux) = Flux::read(&after, &tree.request.clusters, &tree.request.repo_prefix) {
        for k in &flux.kustomizations {
            if let Some(folder) = &k.folder
                && was_there(folder)
                && !is_there(folder)
            {
                dangling.push((
                    k.file.clone(),
                    format!("Flux Kustomization {} ({})", k.name, k.path_text),
                ));
            }
        }
    }
    for (file, what) in dangling {
        plan.refuse(
            &file,
            format!(
                "its {what} would name a folder or file that split moves: it lies where split \
                 does not edit (nested in another entry point, or applied from elsewhere); \
                 move that reference by hand, then run split again"
            ),
        );
    }
}

/// Any other kustomization that lists an app folder lists its sides instead, so it renders the
/// same objects (labelled).
fn update_references(tree: &Tree, handled: &BTreeSet<String>, plan: &mut Plan) {
    let Tree {
        files, flux, apps, ..
    } = *tree;
    let mut changes = Vec::new();
    for file in files.keys() {
        if !FILE_NAMES.contains(&path::file_name(file))
            || handled.contains(file)
            || apps.iter().any(|a| path::is_within(file, &a.dir))
        {
            continue;
        }
        let Some(Ok(k)) = Kustomization::find(files, path::parent(file)) else {
            continue;
        };
        if k.file != *file {
            continue;
        }
        let mut items = Vec::new();
        let mut listed = Vec::new();
        for (i, target) in k.targets("resources").iter().enumerate() {
            match apps.iter().find(|a| a.dir == *target) {
                Some(app) => {
                    listed.push(app.dir.as_str());
                    for side in [&app.rt, &app.rw].into_iter().flatten() {
                        items.push(Item::Rewrite(i, path::relative(&k.dir, side)));
                    }
                }
                None => items.push(Item::Keep(i)),
            }
        }
        if listed.is_empty() {
            continue;
        }
        let applied_by = flux
            .kustomizations
            .iter()
            .find(|f| f.folder.as_deref() == Some(k.dir.as_str()))
            .map(|f| format!("Flux Kustomization {} (in {})", f.name, f.file));
        plan.notes.push(format!(
            "{} now lists both sides of {}: it renders the same objects, but whatever applies \
             it{} applies rt and rw objects together (fluxgate lint: mixed-owner); split it \
             with --clusters naming the cluster folder of the Flux Kustomization that applies it",
            k.file,
            listed.join(", "),
            applied_by.map(|a| format!(" ({a})")).unwrap_or_default()
        ));
        match k.rewrite(&BTreeMap::from([("resources", items)]), None) {
            Ok(text) => changes.push(Change::new(
                Action::Edit {
                    path: k.file.clone(),
                    text,
                },
                format!("lists both sides of {}", listed.join(", ")),
            )),
            Err(reason) => plan.refuse(&k.file, reason),
        }
    }
    if !changes.is_empty() {
        plan.sections.push(Section {
            title: "other kustomizations that list the apps".into(),
            changes,
        });
    }
}

/// The Flux Kustomizations to split, gathered so that each file is written once.
#[derive(Default)]
struct FluxEdits {
    /// (file, document) → the new folders of the halves.
    splits: BTreeMap<(String, usize), [String; 2]>,
}

impl FluxEdits {
    fn split(&mut self, k: &FluxKustomization, paths: [String; 2]) {
        self.splits.insert((k.file.clone(), k.chunk), paths);
    }

    /// Writes the halves, renames the files that held one Kustomization alone, and makes the
    /// Kustomizations that depended on a split one depend on both halves.
    fn finish(self, tree: &Tree, plan: &mut Plan) {
        let Tree {
            files,
            flux,
            request,
            ..
        } = *tree;
        let clusters = &request.clusters;
        if self.splits.is_empty() {
            return;
        }
        // Dependencies are names within one cluster: each Kustomization waits for the windows
        // of its own cluster folder.
        let windows_of = |k: &FluxKustomization| -> Vec<(String, String)> {
            let cluster = clusters
                .iter()
                .filter(|c| path::is_within(&k.file, c))
                .max_by_key(|c| c.len())
                .map_or("", String::as_str);
            flux.window_appliers(files, cluster)
                .into_iter()
                .filter(|w| w.name != k.name)
                .map(|w| (w.name.clone(), w.namespace.clone()))
                .collect()
        };
        let split: Vec<&FluxKustomization> = flux
            .kustomizations
            .iter()
            .filter(|k| self.splits.contains_key(&(k.file.clone(), k.chunk)))
            .collect();
        let mut chunks: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut changes = Vec::new();
        let mut renamed: BTreeMap<String, [String; 2]> = BTreeMap::new();
        for k in &flux.kustomizations {
            let mut text = flux.files[&k.file].chunks[k.chunk].clone();
            for dependency in &split {
                let depends = k
                    .depends_on()
                    .iter()
                    .any(|(n, ns)| *n == dependency.name && *ns == dependency.namespace);
                if !depends {
                    continue;
                }
                if self.splits.contains_key(&(k.file.clone(), k.chunk)) {
                    plan.refuse(
                        &k.file,
                        format!(
                            "Flux Kustomization {} is split and depends on {}, which is split \
                             too: split them in two runs",
                            k.name, dependency.name
                        ),
                    );
                    continue;
                }
                let halves = [
                    format!("{}-rt", dependency.name),
                    format!("{}-rw", dependency.name),
                ];
                match k.replace_dependency(&text, &dependency.name, &halves) {
                    Ok(new) => {
                        text = new;
                        changes.push((
                            k.file.clone(),
                            format!("{} depends on {} and {}", k.name, halves[0], halves[1]),
                        ));
                    }
                    Err(reason) => plan.refuse(&k.file, reason),
                }
            }
            let entry = chunks
                .entry(k.file.clone())
                .or_insert_with(|| flux.files[&k.file].chunks.clone());
            entry[k.chunk] = text;
        }
        let mut section = Vec::new();
        for k in &split {
            for name in [format!("{}-rt", k.name), format!("{}-rw", k.name)] {
                if flux.named(&name, &k.namespace).is_some() {
                    plan.refuse(
                        &k.file,
                        format!("a Flux Kustomization {name} exists already: rename it first"),
                    );
                }
            }
            let paths = &self.splits[&(k.file.clone(), k.chunk)];
            let chunk = &chunks[&k.file][k.chunk];
            let windows = windows_of(k);
            let halves = match k.halves(chunk, [&paths[0], &paths[1]], &windows) {
                Ok(halves) => halves,
                Err(reason) => {
                    plan.refuse(&k.file, reason);
                    continue;
                }
            };
            let file = &flux.files[&k.file];
            let waits: Vec<&str> = windows
                .iter()
                .filter(|(_, ns)| *ns == k.namespace)
                .map(|(n, _)| n.as_str())
                .collect();
            let why_rw = format!(
                "applies {}, after {}",
                paths[1],
                waits
                    .iter()
                    .copied()
                    .chain([format!("{}-rt", k.name).as_str()])
                    .collect::<Vec<_>>()
                    .join(" and ")
            );
            if file.objects == 1 {
                let dir = path::parent(&k.file);
                let news = [
                    path::child(dir, &format!("{}-rt.yaml", k.name)),
                    path::child(dir, &format!("{}-rw.yaml", k.name)),
                ];
                for (new, (text, why)) in news.iter().zip([
                    (halves.rt, format!("applies {}", paths[0])),
                    (halves.rw, why_rw),
                ]) {
                    if files.contains_key(new) {
                        plan.refuse(new, format!("{new} exists already: move it out of the way"));
                    }
                    section.push(Change::new(
                        Action::Create {
                            path: new.clone(),
                            text,
                        },
                        format!(
                            "Flux Kustomization {}: {why}",
                            path::file_name(new).trim_end_matches(".yaml")
                        ),
                    ));
                }
                section.push(Change::new(
                    Action::Delete {
                        path: k.file.clone(),
                    },
                    format!("Flux Kustomization {}, split in two", k.name),
                ));
                renamed.insert(k.file.clone(), news);
                chunks.remove(&k.file);
            } else {
                let rw = if halves.rw.starts_with("---") {
                    halves.rw
                } else {
                    format!("---\n{}", halves.rw)
                };
                chunks.get_mut(&k.file).expect("read")[k.chunk] = format!("{}{rw}", halves.rt);
                changes.push((
                    k.file.clone(),
                    format!(
                        "Flux Kustomization {} becomes {}-rt and {}-rw ({why_rw})",
                        k.name, k.name, k.name
                    ),
                ));
            }
        }
        let mut edited: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (file, why) in changes {
            edited.entry(file).or_default().push(why);
        }
        for (file, whys) in edited {
            let Some(text) = chunks.get(&file) else {
                continue;
            };
            section.push(Change::new(
                Action::Edit {
                    path: file.clone(),
                    text: text.concat(),
                },
                whys.join("; "),
            ));
        }
        // Kustomizations that list a file split in two list both.
        for (file, news) in &renamed {
            for k_file in files
                .keys()
                .filter(|f| FILE_NAMES.contains(&path::file_name(f)))
            {
                let Some(Ok(k)) = Kustomization::find(files, path::parent(k_file)) else {
                    continue;
                };
                let references = k.references("resources").unwrap_or_default();
                if !references.iter().any(|r| path::join(&k.dir, r) == *file) {
                    continue;
                }
                let items: Vec<Item> = references
                    .iter()
                    .enumerate()
                    .flat_map(|(i, r)| {
                        if path::join(&k.dir, r) == *file {
                            news.iter()
                                .map(|n| Item::Rewrite(i, path::relative(&k.dir, n)))
                                .collect()
                        } else {
                            vec![Item::Keep(i)]
                        }
                    })
                    .collect();
                match k.rewrite(&BTreeMap::from([("resources", items)]), None) {
                    Ok(text) => section.push(Change::new(
                        Action::Edit {
                            path: k.file.clone(),
                            text,
                        },
                        format!("lists {} and {}", news[0], news[1]),
                    )),
                    Err(reason) => plan.refuse(&k.file, reason),
                }
            }
        }
        plan.sections.push(Section {
            title: "Flux Kustomizations".into(),
            changes: section,
        });
    }
}

/// Notes on what the clusters lack: the windows the rw objects need, a Flux Kustomization
/// applying each app.
fn cluster_notes(tree: &Tree, plan: &mut Plan) {
    let Tree {
        files,
        flux,
        apps,
        request,
        ..
    } = *tree;
    if !apps.iter().any(|a| a.rw.is_some()) {
        return;
    }
    for cluster in &request.clusters {
        if flux.window_appliers(files, cluster).is_empty() {
            plan.notes.push(format!(
                "no Flux Kustomization in {cluster} applies ReconciliationWindow objects: make \
                 the rw halves depend on the one that does, so that no rw object is applied \
                 before its window exists"
            ));
        }
    }
    if !request.clusters.is_empty() {
        // The folders the entry points reach: themselves and what they list.
        let mut reached = BTreeSet::new();
        for folder in candidates(files, flux, &request.clusters).into_keys() {
            if let Some(Ok(k)) = Kustomization::find(files, &folder) {
                let references = k.references("resources").unwrap_or_default();
                reached.extend(references.iter().map(|r| path::join(&folder, r)));
            }
            reached.insert(folder);
        }
        for app in apps {
            let folders = [Some(&app.dir), app.rt.as_ref(), app.rw.as_ref()];
            if !folders.into_iter().flatten().any(|f| reached.contains(f)) {
                plan.notes.push(format!(
                    "no Flux Kustomization in {} applies {} or a folder that lists it, and no \
                     kustomization there lists it, so no entry point was split for it \
                     (spec.path is read from the root of the Git repository: the folder \
                     holding .git)",
                    request.clusters.join(", "),
                    app.dir
                ));
            }
        }
    }
    if let Some(window) = &request.window
        && !files.values().any(|t| window_names(t).contains(window))
    {
        plan.notes.push(format!(
            "no ReconciliationWindow named {window} in this tree: fluxgate denies every Flux \
             change to an rw object that names a window it does not know"
        ));
    }
}
