//! `fluxgate split`: reads the YAML below the current folder, prints the plan of
//! [`fluxgate_core::split::plan`], and with `--write` applies it.
//!
//! Glue only: which files to read, where the Git repository's root is (Flux reads `spec.path`
//! from it), and applying the plan all or nothing as far as the file system allows: every
//! precondition is checked before the first write, new files are written before old ones are
//! deleted.

use anyhow::{Context, bail, ensure};
use clap::Args;
use fluxgate_core::split::{Action, Plan, Request, plan};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

/// No environment twins: split rewrites a repository once, at a person's request, and a
/// variable left in a shell must not change what it moves.
#[derive(Debug, Args)]
pub(crate) struct SplitArgs {
    /// App folders to split (each into <app>/<app>-rt and <app>/<app>-rw), below the current
    /// folder.
    #[arg(value_name = "APP_DIR", required = true)]
    apps: Vec<PathBuf>,
    /// Kinds whose objects are rw (besides objects labelled fluxgate.io/mode: rw), e.g.
    /// Deployment,Service.
    #[arg(long = "rw", value_delimiter = ',', value_name = "KIND")]
    rw_kinds: Vec<String>,
    /// The window of the rw objects (the label fluxgate.io/window); without it, rw objects keep
    /// the window they are labelled with, or are governed by the default window.
    #[arg(long, value_name = "NAME")]
    window: Option<String>,
    /// A cluster folder (repeatable) whose Flux Kustomizations and entry points are split too
    /// (apps → apps-rt, apps-rw).
    #[arg(long, value_delimiter = ',', value_name = "DIR")]
    clusters: Vec<PathBuf>,
    /// Apply the plan. Without it, split prints the plan and changes nothing.
    #[arg(long)]
    write: bool,
}

pub(crate) fn run(args: SplitArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let folder = |given: &PathBuf| -> anyhow::Result<String> {
        let relative = below(&cwd, given)?;
        ensure!(
            cwd.join(&relative).is_dir(),
            "{} is not a folder",
            given.display()
        );
        Ok(relative)
    };
    let (root_note, repo_prefix) = repository_prefix(&cwd);
    let request = Request {
        apps: args
            .apps
            .iter()
            .map(folder)
            .collect::<anyhow::Result<_>>()?,
        rw_kinds: args
            .rw_kinds
            .iter()
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .collect(),
        window: args.window.clone(),
        clusters: args
            .clusters
            .iter()
            .map(folder)
            .collect::<anyhow::Result<_>>()?,
        repo_prefix,
    };
    let files = read_tree(&cwd)?;
    let mut plan = plan(&files, &request);
    if !request.clusters.is_empty()
        && let Some(note) = root_note
    {
        plan.notes.push(note);
    }
    let mut out = std::io::stdout().lock();
    out.write_all(render(&plan).as_bytes())
        .context("cannot write stdout")?;
    let count = plan.changes().count();
    if !plan.refusals.is_empty() {
        writeln!(
            out,
            "nothing written: split refuses what it cannot move safely (above)"
        )
        .context("cannot write stdout")?;
        return Ok(ExitCode::from(1));
    }
    if count == 0 {
        writeln!(out, "nothing to change").context("cannot write stdout")?;
    } else if args.write {
        apply(&cwd, &files, &plan)?;
        writeln!(out, "wrote {count} changes").context("cannot write stdout")?;
    } else {
        writeln!(
            out,
            "dry run: nothing written; run again with --write to apply these {count} changes"
        )
        .context("cannot write stdout")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `given` as a `/`-separated path relative to `cwd`, which it must lie below.
fn below(cwd: &Path, given: &Path) -> anyhow::Result<String> {
    let absolute = if given.is_absolute() {
        given.to_path_buf()
    } else {
        cwd.join(given)
    };
    let mut parts: Vec<String> = Vec::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                parts.pop();
            }
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
        }
    }
    let normalized: PathBuf = std::iter::once(PathBuf::from("/"))
        .chain(parts.iter().map(PathBuf::from))
        .collect();
    let relative = normalized.strip_prefix(cwd).map_err(|_| {
        anyhow::anyhow!(
            "{} is not below the current folder: run fluxgate split in the repository (or the \
             folder of it that holds the apps and clusters)",
            given.display()
        )
    })?;
    Ok(relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/"))
}

/// Where `cwd` lies in its Git repository (the nearest folder above holding `.git`), since Flux
/// reads `spec.path` from the repository's root; with no repository, `cwd` is taken for the
/// root, and the note says so.
fn repository_prefix(cwd: &Path) -> (Option<String>, String) {
    for root in cwd.ancestors() {
        if root.join(".git").exists() {
            let prefix = cwd
                .strip_prefix(root)
                .map(|p| {
                    p.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_default();
            return (None, prefix);
        }
    }
    let note = format!(
        "no Git repository around {}: Flux spec.paths are read from this folder",
        cwd.display()
    );
    (Some(note), String::new())
}

/// Every YAML and JSON file below `cwd` (JSON for patches; and every file named
/// `Kustomization`), hidden entries and symbolic links left out, keyed by its `/`-separated path
/// relative to `cwd`.
fn read_tree(cwd: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![(cwd.to_path_buf(), String::new())];
    while let Some((dir, relative)) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let child = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot read {}", path.display()))?;
            if kind.is_dir() {
                stack.push((path, child));
            } else if kind.is_file()
                && ([".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e))
                    || name == "Kustomization")
            {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                files.insert(child, text);
            }
        }
    }
    Ok(files)
}

/// The plan as people read it.
fn render(plan: &Plan) -> String {
    let mut out = String::new();
    for section in &plan.sections {
        out.push_str(&section.title);
        out.push('\n');
        for change in &section.changes {
            let (verb, what) = match &change.action {
                Action::Move { from, to } => ("move", format!("{from} → {to}")),
                Action::Create { path, .. } => ("create", path.clone()),
                Action::Edit { path, .. } => ("edit", path.clone()),
                Action::Delete { path } => ("delete", path.clone()),
            };
            out.push_str(&format!("  {verb:<7} {what}\n          {}\n", change.why));
        }
    }
    if !plan.notes.is_empty() {
        out.push_str("notes\n");
        for note in &plan.notes {
            out.push_str(&format!("  - {note}\n"));
        }
    }
    if !plan.refusals.is_empty() {
        out.push_str("refused\n");
        for refusal in &plan.refusals {
            out.push_str(&format!("  {}: {}\n", refusal.subject, refusal.reason));
        }
    }
    out
}

/// Applies the plan: checks that every file is as it was read and every new path is free, then
/// writes new and edited files, then deletes.
fn apply(cwd: &Path, read: &BTreeMap<String, String>, plan: &Plan) -> anyhow::Result<()> {
    let unchanged = |path: &str| -> anyhow::Result<()> {
        let now = std::fs::read_to_string(cwd.join(path))
            .with_context(|| format!("cannot read {path}"))?;
        ensure!(
            read.get(path) == Some(&now),
            "{path} changed while split ran: nothing written; run it again"
        );
        Ok(())
    };
    let free = |path: &str| -> anyhow::Result<()> {
        ensure!(
            !cwd.join(path).exists(),
            "{path} exists already: nothing written"
        );
        Ok(())
    };
    for change in plan.changes() {
        match &change.action {
            Action::Move { from, to } => {
                unchanged(from)?;
                free(to)?;
            }
            Action::Create { path, .. } => free(path)?,
            Action::Edit { path, .. } | Action::Delete { path } => unchanged(path)?,
        }
    }
    let step = |action: &Action| -> anyhow::Result<()> {
        let parent_of = |path: &str| -> anyhow::Result<()> {
            if let Some(parent) = cwd.join(path).parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            Ok(())
        };
        match action {
            Action::Move { from, to } => {
                parent_of(to)?;
                std::fs::rename(cwd.join(from), cwd.join(to))
                    .with_context(|| format!("cannot move {from} to {to}"))
            }
            Action::Create { path, text } => {
                parent_of(path)?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(cwd.join(path))
                    .with_context(|| format!("cannot create {path}"))?;
                file.write_all(text.as_bytes())
                    .with_context(|| format!("cannot write {path}"))
            }
            Action::Edit { path, text } => {
                std::fs::write(cwd.join(path), text).with_context(|| format!("cannot write {path}"))
            }
            Action::Delete { path } => std::fs::remove_file(cwd.join(path))
                .with_context(|| format!("cannot delete {path}")),
        }
    };
    let (deletes, writes): (Vec<_>, Vec<_>) = plan
        .changes()
        .partition(|c| matches!(c.action, Action::Delete { .. }));
    let total = deletes.len() + writes.len();
    for (done, change) in writes.into_iter().chain(deletes).enumerate() {
        if let Err(error) = step(&change.action) {
            bail!("{error:#} (after {done} of {total} changes: see git status)");
        }
    }
    Ok(())
}
