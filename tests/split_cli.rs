//! `fluxgate split` run as the built binary in copies of GitOps trees
//! (`tests/fixtures/split/`): the seed example before its split becomes the committed
//! `deploy/examples/gitops`; repositories shaped like Flux's flux2-kustomize-helm-example (a base
//! and overlays) and flux2-multi-tenancy split with their overlays and clusters; what split
//! refuses leaves the tree untouched. Renders use `kubectl kustomize` (`common::try_kustomize`:
//! skipped without kubectl, except in CI, where it fails).

mod common;

use common::{Scratch, documents, kubectl_available, kustomization_dirs, sh, try_kustomize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The commands docs/reference.md shows for split, as written there (`readme_shows_what_the_tests_run`
/// keeps the two the same); each runs in a test below.
const SEED_PLAN: &str = "fluxgate split apps/nginx --rw Deployment,Service --window business-hours --clusters clusters/cluster-1";
const SEED_WRITE: &str = "fluxgate split apps/nginx --rw Deployment,Service --window business-hours --clusters clusters/cluster-1 --write";
const SEED_LINT: &str = "kubectl kustomize clusters/cluster-1/apps/apps-rw | fluxgate lint --windows clusters/cluster-1/infra/reconciliation-windows";
const HELM_WRITE: &str = "fluxgate split apps/base/podinfo --rw HelmRelease --window business-hours --clusters clusters/staging,clusters/production --write";
const README_COMMANDS: [&str; 4] = [SEED_PLAN, SEED_WRITE, SEED_LINT, HELM_WRITE];

const TENANTS_WRITE: &str = "fluxgate split tenants/base/dev-team --rw GitRepository,Kustomization --window nightly --clusters clusters/staging,clusters/production --write";

fn fixture(name: &str) -> PathBuf {
    Path::new(ROOT).join("tests/fixtures/split").join(name)
}

/// Copies the tree `from` to `to` (every file; `README.md` of a fixture left out).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.file_name() != "README.md" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every file below `dir` (hidden folders left out) and its text, by relative path.
fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let relative = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(relative, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn succeeds(dir: &Path, line: &str) -> String {
    let output = sh(dir, line);
    assert!(
        output.status.success(),
        "{line}: {:?}\n{}{}",
        output.status,
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

/// A copy of a fixture in a scratch Git repository (a `.git` folder marks its root); returns
/// the scratch and the folder to run split in.
fn repository(fixture_name: &str, below_root: &str) -> (Scratch, PathBuf) {
    let scratch = Scratch::new(&format!("split-{fixture_name}"));
    std::fs::create_dir_all(scratch.path(".git")).unwrap();
    let dir = scratch.0.join(below_root);
    copy_tree(&fixture(fixture_name), &dir);
    (scratch, dir)
}

/// The seed's before tree where it lives in the fluxgate repository, beside the deploy/ folders
/// its fluxgate install refers to; split runs in `deploy/examples/gitops`.
fn seed_before() -> (Scratch, PathBuf) {
    let (scratch, dir) = repository("gitops-before", "deploy/examples/gitops");
    for folder in ["base", "crds", "overlays", "components"] {
        copy_tree(
            &Path::new(ROOT).join("deploy").join(folder),
            &scratch.0.join("deploy").join(folder),
        );
    }
    (scratch, dir)
}

fn yaml(text: &str) -> Vec<Value> {
    documents(text)
}

/// The rendered objects of `dir`, or None without kubectl.
fn render(dir: &Path) -> Option<Vec<Value>> {
    try_kustomize(dir).map(|text| yaml(&text))
}

fn key(object: &Value) -> String {
    format!(
        "{} {} {}/{}",
        object["apiVersion"].as_str().unwrap_or_default(),
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["namespace"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// Checks that the rt and rw renders hold exactly the objects of `before`, each unchanged but
/// for the labels its side adds.
fn same_objects_but_labels(before: &[Value], rt: &[Value], rw: &[Value], window: &str) {
    let mut expected: BTreeMap<String, &Value> = BTreeMap::new();
    for object in before {
        assert!(
            expected.insert(key(object), object).is_none(),
            "{} twice before",
            key(object)
        );
    }
    let mut seen = 0;
    for (objects, labels) in [
        (rt, json!({"fluxgate.io/mode": "rt"})),
        (
            rw,
            json!({"fluxgate.io/mode": "rw", "fluxgate.io/window": window}),
        ),
    ] {
        for object in objects {
            let original = expected
                .remove(&key(object))
                .unwrap_or_else(|| panic!("{} is new, or on both sides", key(object)));
            let mut labelled = original.clone();
            let metadata = labelled["metadata"].as_object_mut().unwrap();
            let own = metadata.entry("labels").or_insert_with(|| json!({}));
            for (k, v) in labels.as_object().unwrap() {
                own[k] = v.clone();
            }
            assert_eq!(*object, labelled, "{}", key(object));
            seen += 1;
        }
    }
    assert!(
        expected.is_empty(),
        "lost: {:?}",
        expected.keys().collect::<Vec<_>>()
    );
    assert_eq!(seen, before.len());
}

/// `fluxgate lint` of a render: clean (no finding at all).
fn lints_clean(dir: &Path, folder: &str, windows: &str) {
    let line = format!("kubectl kustomize {folder} | fluxgate lint -o json {windows}");
    let output = sh(dir, &line);
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{line}: {e}: {}", String::from_utf8_lossy(&output.stderr)));
    assert!(output.status.success(), "{line}: {report}");
    assert_eq!(report["findings"], json!([]), "{line}");
}

// === the seed ===

#[test]
fn the_seed_before_tree_becomes_the_committed_after_tree() {
    let (_scratch, dir) = seed_before();
    let before = read_tree(&dir);

    let plan = succeeds(&dir, SEED_PLAN);
    assert_eq!(read_tree(&dir), before, "the plan alone changes nothing");
    // The lines README.md shows.
    for line in [
        "apps/nginx: 2 rt objects → nginx-rt, 2 rw objects → nginx-rw",
        "  move    apps/nginx/deployment.yaml → apps/nginx/nginx-rw/deployment.yaml",
        "          rw: Deployment nginx/nginx (--rw Deployment)",
        "clusters/cluster-1/apps: the entry point of Flux Kustomization apps → apps-rt, apps-rw",
        "  create  clusters/cluster-1/flux/apps-rw.yaml",
        "          Flux Kustomization apps-rw: applies \
         ./deploy/examples/gitops/clusters/cluster-1/apps/apps-rw, after reconciliation-windows \
         and apps-rt",
        "dry run: nothing written; run again with --write to apply these 13 changes",
    ] {
        assert!(plan.contains(&format!("{line}\n")), "{line}\n{plan}");
    }

    let written = succeeds(&dir, SEED_WRITE);
    assert!(written.ends_with("wrote 13 changes\n"), "{written}");
    let after = read_tree(&dir);
    let seed = read_tree(&Path::new(ROOT).join("deploy/examples/gitops"));
    let without_readme = |tree: &BTreeMap<String, String>| -> Vec<String> {
        tree.keys()
            .filter(|p| !p.ends_with("README.md"))
            .cloned()
            .collect()
    };
    assert_eq!(
        without_readme(&after),
        without_readme(&seed),
        "the seed's files, no more"
    );

    // Objects moved as text: every comment is where it was.
    for (from, to) in [
        ("namespace.yaml", "nginx-rt/namespace.yaml"),
        ("configmap.yaml", "nginx-rt/configmap.yaml"),
        ("deployment.yaml", "nginx-rw/deployment.yaml"),
        ("service.yaml", "nginx-rw/service.yaml"),
    ] {
        assert_eq!(
            after[&format!("apps/nginx/{to}")],
            before[&format!("apps/nginx/{from}")]
        );
    }
    assert!(
        after["apps/nginx/nginx-rw/kustomization.yaml"].contains(
            "  - deployment.yaml   # the image bump waits for business-hours once split\n"
        )
    );

    // Every file reads as the seed's: objects, kustomizations and Flux Kustomizations alike,
    // except one value the seed chose by hand.
    for (path, text) in &after {
        let mut ours = yaml(text);
        let theirs = yaml(&seed[path]);
        if path == "clusters/cluster-1/flux/apps-rw.yaml" {
            // split keeps the original's retryInterval on both halves; the seed retries the rw
            // half less often (2m) on purpose.
            assert_eq!(ours[0]["spec"]["retryInterval"], "1m");
            ours[0]["spec"]["retryInterval"] = json!("2m");
        }
        assert_eq!(ours, theirs, "{path}");
    }

    let again = succeeds(&dir, SEED_WRITE);
    assert_eq!(again, "nothing to change\n");
    assert_eq!(read_tree(&dir), after, "a second run changes nothing");
}

#[test]
fn the_seed_split_renders_the_same_objects_and_lints_clean() {
    if !kubectl_available() {
        return eprintln!("skipping: kubectl not found");
    }
    let (_scratch, dir) = seed_before();
    let before = render(&dir.join("clusters/cluster-1/apps")).unwrap();
    assert_eq!(before.len(), 4);
    succeeds(&dir, SEED_WRITE);

    // Every kustomization of the tree renders, and as the committed seed's does.
    let mut folders = Vec::new();
    kustomization_dirs(&dir, &mut folders);
    assert_eq!(folders.len(), 6, "{folders:?}");
    let seed = Path::new(ROOT).join("deploy/examples/gitops");
    for folder in &folders {
        let relative = folder.strip_prefix(&dir).unwrap();
        assert_eq!(
            render(folder),
            render(&seed.join(relative)),
            "{}",
            relative.display()
        );
    }

    let rt = render(&dir.join("clusters/cluster-1/apps/apps-rt")).unwrap();
    let rw = render(&dir.join("clusters/cluster-1/apps/apps-rw")).unwrap();
    same_objects_but_labels(&before, &rt, &rw, "business-hours");

    let lint = sh(&dir, SEED_LINT);
    assert!(lint.status.success(), "{SEED_LINT}: {}", stdout(&lint));
    assert!(
        stdout(&lint).ends_with(": no problems\n"),
        "{}",
        stdout(&lint)
    );
    let windows = "--windows clusters/cluster-1/infra/reconciliation-windows";
    for folder in [
        "apps/nginx/nginx-rt",
        "apps/nginx/nginx-rw",
        "clusters/cluster-1/apps/apps-rt",
        "clusters/cluster-1/apps/apps-rw",
    ] {
        lints_clean(&dir, folder, windows);
    }
}

/// Copied without the repository around it, the seed's Flux paths (`./deploy/examples/gitops/…`)
/// name folders that are not there: split says so rather than split the entry point under a
/// Flux Kustomization it cannot rewrite.
#[test]
fn outside_its_repository_the_seed_is_refused_with_the_reason() {
    let (_scratch, dir) = repository("gitops-before", "");
    std::fs::remove_dir(dir.join(".git")).ok();
    let before = read_tree(&dir);
    let output = sh(&dir, SEED_WRITE);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains(
            "clusters/cluster-1/flux/apps.yaml: Flux Kustomization apps applies \
             ./deploy/examples/gitops/clusters/cluster-1/apps, which looks like \
             clusters/cluster-1/apps but does not lie where split runs"
        ),
        "{}",
        stdout(&output)
    );
    assert_eq!(read_tree(&dir), before);
}

// === a base and its overlays (flux2-kustomize-helm-example) ===

#[test]
fn a_base_splits_and_its_overlays_and_clusters_follow() {
    let (_scratch, dir) = repository("helm-example", "");
    let before: Vec<Option<Vec<Value>>> = ["apps/staging", "apps/production"]
        .map(|o| render(&dir.join(o)))
        .into();
    let written = succeeds(&dir, HELM_WRITE);
    assert!(
        written
            .contains("apps/base/podinfo: 2 rt objects → podinfo-rt, 1 rw objects → podinfo-rw\n"),
        "{written}"
    );
    let after = read_tree(&dir);
    for env in ["staging", "production"] {
        let rw = &after[&format!("apps/{env}/apps-rw/kustomization.yaml")];
        assert!(
            rw.contains("resources:\n  - ../../base/podinfo/podinfo-rw\npatches:\n  - path: podinfo-values.yaml\n"),
            "{rw}"
        );
        assert!(after.contains_key(&format!("apps/{env}/apps-rw/podinfo-values.yaml")));
        assert_eq!(
            after[&format!("apps/{env}/apps-rt/kustomization.yaml")],
            format!(
                "# podinfo in {env}: the base, with the {env} values.\napiVersion: \
                 kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: podinfo\n\
                 resources:\n  - ../../base/podinfo/podinfo-rt\n"
            )
        );
        let flux = yaml(&after[&format!("clusters/{env}/apps-rw.yaml")]);
        assert_eq!(
            flux[0]["spec"]["dependsOn"],
            json!([{"name": "infra-configs"}, {"name": "reconciliation-windows"}, {"name": "apps-rt"}])
        );
        assert_eq!(flux[0]["spec"]["path"], format!("./apps/{env}/apps-rw"));
        let flux = yaml(&after[&format!("clusters/{env}/apps-rt.yaml")]);
        assert_eq!(
            flux[0]["spec"]["dependsOn"],
            json!([{"name": "infra-configs"}])
        );
    }
    assert_eq!(succeeds(&dir, HELM_WRITE), "nothing to change\n");

    for (env, before) in ["staging", "production"].into_iter().zip(before) {
        let Some(before) = before else { return };
        let rt = render(&dir.join(format!("apps/{env}/apps-rt"))).unwrap();
        let rw = render(&dir.join(format!("apps/{env}/apps-rw"))).unwrap();
        same_objects_but_labels(&before, &rt, &rw, "business-hours");
        for side in ["apps-rt", "apps-rw"] {
            lints_clean(
                &dir,
                &format!("apps/{env}/{side}"),
                "--windows infrastructure/windows",
            );
        }
    }
}

#[test]
fn an_overlay_outside_the_named_clusters_keeps_rendering_and_is_named_as_mixed() {
    let (_scratch, dir) = repository("helm-example", "");
    let before = render(&dir.join("apps/production"));
    let line = "fluxgate split apps/base/podinfo --rw HelmRelease --window business-hours --clusters clusters/staging --write";
    let written = succeeds(&dir, line);
    assert!(
        written.contains(
            "apps/production/kustomization.yaml now lists both sides of apps/base/podinfo: it \
             renders the same objects"
        ),
        "{written}"
    );
    let after = read_tree(&dir);
    assert!(
        after["apps/production/kustomization.yaml"].contains(
            "resources:\n  - ../base/podinfo/podinfo-rt\n  - ../base/podinfo/podinfo-rw\n"
        )
    );
    assert!(
        after.contains_key("clusters/production/apps.yaml"),
        "not split: not named"
    );
    let Some(before) = before else { return };
    let rendered = render(&dir.join("apps/production")).unwrap();
    let (rw, rt): (Vec<Value>, Vec<Value>) = rendered
        .into_iter()
        .partition(|o| o["metadata"]["labels"]["fluxgate.io/mode"] == "rw");
    same_objects_but_labels(&before, &rt, &rw, "business-hours");
    // What the note warns about.
    let lint = sh(
        &dir,
        "kubectl kustomize apps/production | fluxgate lint --windows infrastructure/windows",
    );
    assert_eq!(lint.status.code(), Some(1));
    assert!(
        stdout(&lint).contains("error[mixed-owner]"),
        "{}",
        stdout(&lint)
    );
}

// === tenants (flux2-multi-tenancy) ===

#[test]
fn a_tenant_splits_with_the_patches_of_its_overlays() {
    let (_scratch, dir) = repository("multi-tenancy", "");
    let before: Vec<Option<Vec<Value>>> = ["tenants/staging", "tenants/production"]
        .map(|o| render(&dir.join(o)))
        .into();
    succeeds(&dir, TENANTS_WRITE);
    let after = read_tree(&dir);
    assert_eq!(
        after["tenants/base/dev-team/dev-team-rw/sync.yaml"],
        std::fs::read_to_string(fixture("multi-tenancy/tenants/base/dev-team/sync.yaml")).unwrap()
    );
    assert!(after["tenants/staging/tenants-rw/kustomization.yaml"].contains("      - op: add\n"));
    assert!(!after["tenants/staging/tenants-rt/kustomization.yaml"].contains("patches"));
    assert!(after.contains_key("tenants/production/tenants-rw/dev-team-patch.yaml"));
    let flux = yaml(&after["clusters/production/tenants-rw.yaml"]);
    assert_eq!(
        flux[0]["spec"]["dependsOn"],
        json!([{"name": "policies"}, {"name": "windows"}, {"name": "tenants-rt"}])
    );
    assert_eq!(succeeds(&dir, TENANTS_WRITE), "nothing to change\n");

    for (env, before) in ["staging", "production"].into_iter().zip(before) {
        let Some(before) = before else { return };
        let rt = render(&dir.join(format!("tenants/{env}/tenants-rt"))).unwrap();
        let rw = render(&dir.join(format!("tenants/{env}/tenants-rw"))).unwrap();
        same_objects_but_labels(&before, &rt, &rw, "nightly");
        for side in ["tenants-rt", "tenants-rw"] {
            lints_clean(
                &dir,
                &format!("tenants/{env}/{side}"),
                "--windows infrastructure/windows",
            );
        }
    }
}

// === refusals ===

#[test]
fn what_split_refuses_leaves_the_tree_untouched() {
    let (_scratch, dir) = repository("refused", "");
    let before = read_tree(&dir);
    let line = "fluxgate split apps/web apps/generated apps/remote apps/chart apps/both --rw Deployment --write";
    let output = sh(&dir, line);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let out = stdout(&output);
    for reason in [
        "apps/generated: apps/generated/kustomization.yaml uses generators",
        "apps/remote: apps/remote/kustomization.yaml lists the remote base https://github.com/example/platform//apps/web?ref=v1.2.0",
        "apps/chart: apps/chart/kustomization.yaml uses Helm charts inflated by kustomize",
        "apps/both: apps/both/kustomization.yaml: patches[0] (target {\"name\":\"web\"}) may change objects on both sides",
    ] {
        assert!(out.contains(reason), "{reason}\n{out}");
    }
    assert!(
        out.ends_with("nothing written: split refuses what it cannot move safely (above)\n"),
        "{out}"
    );
    assert_eq!(
        read_tree(&dir),
        before,
        "nothing written, apps/web included"
    );

    let alone = succeeds(&dir, "fluxgate split apps/web --rw Deployment --write");
    assert!(alone.ends_with("wrote 6 changes\n"), "{alone}");
}

#[test]
fn bad_flags_and_folders_exit_2() {
    let (_scratch, dir) = repository("refused", "");
    for (line, says) in [
        (
            "fluxgate split apps/missing --rw Deployment",
            "apps/missing is not a folder",
        ),
        (
            "fluxgate split ../elsewhere --rw Deployment",
            "is not below the current folder",
        ),
        (
            "fluxgate split apps/web --clusters nowhere",
            "nowhere is not a folder",
        ),
    ] {
        let output = sh(&dir, line);
        assert_eq!(output.status.code(), Some(2), "{line}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{line}: {stderr}");
    }
}

// === README ===

/// Every command docs/reference.md shows for split runs, as written, in a test above.
#[test]
fn readme_shows_what_the_tests_run() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("docs/reference.md")).unwrap();
    let section = readme
        .split("\n### Split an app into rt and rw\n")
        .nth(1)
        .expect("docs/reference.md has the section")
        .split("\n## ")
        .next()
        .unwrap();
    let shown: Vec<&str> = section
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("fluxgate ") || l.starts_with("kubectl "))
        .map(|l| l.split(" #").next().unwrap().trim_end())
        .collect();
    assert_eq!(shown, README_COMMANDS);
}
