//! What the tests of `deploy/` share (tests/deploy_*.rs): where the manifests are, rendering
//! them with `kubectl kustomize` (offline), finding objects in what renders, and running the
//! fluxgate binary on them.
//!
//! Tests that render print "skipping: kubectl not found" and pass when kubectl is not on PATH,
//! except in CI (`CI` set), where they fail: `.ci/run` installs it (and promtool, which
//! tests/deploy_monitoring.rs needs likewise).

use super::{documents, kubectl_available, kustomization_dirs, try_kustomize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const GITOPS: &str = "deploy/examples/gitops";
pub const CLUSTER: &str = "deploy/examples/gitops/clusters/cluster-1";
pub const GITOPS_WINDOWS: &str =
    "deploy/examples/gitops/clusters/cluster-1/infra/reconciliation-windows";
/// Tuesday 10:00 in Berlin: business-hours open.
pub const OPEN: &str = "2026-11-24T09:00:00Z";
/// Friday 13:00 in Berlin: business-hours closed until Monday 08:00.
pub const CLOSED: &str = "2026-11-27T12:00:00Z";

pub fn path(relative: &str) -> PathBuf {
    Path::new(ROOT).join(relative)
}

/// The rendered objects of a kustomization, or None when kubectl is not installed.
pub fn render(relative: &str) -> Option<Vec<Value>> {
    try_kustomize(&path(relative)).map(|yaml| documents(&yaml))
}

/// Every kustomization under deploy/ and what `kubectl kustomize` renders of it, or None (after
/// saying so) when kubectl is not installed.
pub fn render_every_kustomization() -> Option<Vec<(PathBuf, String)>> {
    if !kubectl_available() {
        eprintln!("skipping: kubectl not found");
        return None;
    }
    let mut dirs = Vec::new();
    kustomization_dirs(&path("deploy"), &mut dirs);
    let rendered = dirs
        .into_iter()
        .map(|dir| {
            let yaml = try_kustomize(&dir).unwrap();
            (dir, yaml)
        })
        .collect();
    Some(rendered)
}

pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendered objects"))
}

pub fn describe(object: &Value) -> String {
    format!(
        "{} {}",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Every YAML file under `dir`, recursively.
pub fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            yaml_files(&entry, found);
        } else if entry.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(entry);
        }
    }
}

/// Runs the fluxgate binary with no FLUXGATE_* variables from the environment.
pub fn fluxgate(args: &[&str], stdin: &[u8]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fluxgate"));
    for (key, _) in std::env::vars() {
        if key.starts_with("FLUXGATE_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .args(args)
        .current_dir(ROOT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fluxgate");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

pub fn labels(object: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(object["metadata"]["labels"].clone()).unwrap_or_default()
}

/// A Kubernetes label selector (matchLabels, matchExpressions) on a set of labels.
pub fn selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    if selector.is_null() {
        return true;
    }
    let by_label = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    let by_expression = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let value = labels.get(e["key"].as_str().unwrap());
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().unwrap())
                .collect();
            match e["operator"].as_str().unwrap() {
                "In" => value.is_some_and(|v| values.contains(&v.as_str())),
                "NotIn" => value.is_none_or(|v| !values.contains(&v.as_str())),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                other => panic!("unknown selector operator {other}"),
            }
        });
    by_label && by_expression
}
