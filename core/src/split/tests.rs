//! The plan on small trees held in memory: what moves where, what is refused, and that a second
//! run plans nothing. `tests/split_cli.rs` renders real trees with kubectl.

use super::*;

fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect()
}

fn request(apps: &[&str], rw: &[&str], window: Option<&str>, clusters: &[&str]) -> Request {
    Request {
        apps: apps.iter().map(|s| s.to_string()).collect(),
        rw_kinds: rw.iter().map(|s| s.to_string()).collect(),
        window: window.map(str::to_owned),
        clusters: clusters.iter().map(|s| s.to_string()).collect(),
        repo_prefix: String::new(),
    }
}

/// The tree after the plan, as the shell would leave it.
fn apply(files: &BTreeMap<String, String>, plan: &Plan) -> BTreeMap<String, String> {
    assert!(plan.refusals.is_empty(), "{:?}", plan.refusals);
    plan.applied(files).unwrap()
}

/// Splits, applies, and checks that a second run plans nothing.
fn split(files: &BTreeMap<String, String>, request: &Request) -> (Plan, BTreeMap<String, String>) {
    let plan = plan(files, request);
    let after = apply(files, &plan);
    let again = super::plan(&after, request);
    assert_eq!(again.refusals, []);
    assert_eq!(
        again.changes().count(),
        0,
        "a second run changes something: {:#?}",
        again.sections
    );
    (plan, after)
}

fn refused(files: &BTreeMap<String, String>, request: &Request) -> String {
    let plan = plan(files, request);
    assert!(
        !plan.refusals.is_empty(),
        "not refused: {:#?}",
        plan.sections
    );
    plan.refusals
        .iter()
        .map(|r| format!("{}: {}", r.subject, r.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

const WEB: &str = "\
# The web app.
resources:
  - web.yaml
  - secret.yaml # by label
";

const WEB_OBJECTS: &str = "\
# Configuration first.
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1   # scaled by the patch
";

const SECRET: &str = "\
apiVersion: v1
kind: Secret
metadata:
  name: token
  labels:
    fluxgate.io/mode: rw
";

#[test]
fn an_app_splits_by_label_and_kind_and_cuts_a_mixed_file() {
    let files = tree(&[
        ("apps/web/kustomization.yaml", WEB),
        ("apps/web/web.yaml", WEB_OBJECTS),
        ("apps/web/secret.yaml", SECRET),
        ("apps/web/README.yaml.txt", "not YAML, not used"),
    ]);
    let (plan, after) = split(
        &files,
        &request(&["apps/web"], &["Deployment"], Some("nightly"), &[]),
    );
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        [
            "apps/web/README.yaml.txt",
            "apps/web/web-rt/kustomization.yaml",
            "apps/web/web-rt/web.yaml",
            "apps/web/web-rw/kustomization.yaml",
            "apps/web/web-rw/secret.yaml",
            "apps/web/web-rw/web.yaml",
        ]
    );
    assert_eq!(
        after["apps/web/web-rt/web.yaml"],
        "# Configuration first.\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n"
    );
    assert_eq!(
        after["apps/web/web-rw/web.yaml"],
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  \
         replicas: 1   # scaled by the patch\n"
    );
    assert_eq!(
        after["apps/web/web-rw/secret.yaml"], SECRET,
        "moved as it was"
    );
    assert_eq!(
        after["apps/web/web-rw/kustomization.yaml"],
        "# The web app.\nresources:\n  - web.yaml\n  - secret.yaml # by label\n\
         # fluxgate split: objects fluxgate admits from Flux only while window nightly is open.\n\
         # `labels:`, not `commonLabels:`: selectors and pod templates stay unlabelled (a \
         selector is\n# immutable, and pods are created by their controllers, not by Flux).\n\
         labels:\n  - pairs:\n      fluxgate.io/mode: rw\n      fluxgate.io/window: nightly\n    \
         includeSelectors: false\n    includeTemplates: false\n"
    );
    assert!(
        after["apps/web/web-rt/kustomization.yaml"]
            .starts_with("# The web app.\nresources:\n  - web.yaml\n# fluxgate split: real-time")
    );
    let whys: Vec<&str> = plan.changes().map(|c| c.why.as_str()).collect();
    assert!(
        whys.contains(&"rw: Secret token (labelled fluxgate.io/mode: rw)"),
        "{whys:?}"
    );
}

#[test]
fn patches_replicas_and_components_follow_the_objects_they_reach() {
    let files = tree(&[
        (
            "apps/web/kustomization.yaml",
            "resources:\n- web.yaml\npatches:\n- path: scale.yaml\n- target:\n    kind: ConfigMap\n  \
             patch: |\n    - op: add\n      path: /data/x\n      value: y\n- target:\n    kind: \
             CronJob\n  path: nothing.yaml\nreplicas:\n- name: web\n  count: 2\ncomponents:\n- \
             ../../components/probes\n",
        ),
        ("apps/web/web.yaml", WEB_OBJECTS),
        (
            "apps/web/scale.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n",
        ),
        (
            "apps/web/nothing.yaml",
            "- op: remove\n  path: /spec/suspend\n",
        ),
        (
            "components/probes/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n- target:\n    \
             kind: Deployment\n  patch: '[]'\n",
        ),
    ]);
    let (plan, after) = split(&files, &request(&["apps/web"], &["Deployment"], None, &[]));
    let rw = &after["apps/web/web-rw/kustomization.yaml"];
    let rt = &after["apps/web/web-rt/kustomization.yaml"];
    assert!(
        rw.starts_with(
            "resources:\n- web.yaml\npatches:\n- path: scale.yaml\n- target:\n    kind: CronJob\n  \
             path: nothing.yaml\nreplicas:\n- name: web\n  count: 2\ncomponents:\n- \
             ../../../components/probes\n"
        ),
        "{rw}"
    );
    assert!(
        rt.starts_with(
            "resources:\n- web.yaml\npatches:\n- target:\n    kind: ConfigMap\n  patch: |\n    - \
             op: add\n      path: /data/x\n      value: y\n- target:\n    kind: CronJob\n  path: \
             nothing.yaml\n# fluxgate split"
        ),
        "{rt}"
    );
    assert!(after.contains_key("apps/web/web-rw/scale.yaml"));
    assert!(
        after.contains_key("apps/web/web-rt/nothing.yaml")
            && after.contains_key("apps/web/web-rw/nothing.yaml")
    );
    assert!(
        plan.notes.iter().any(
            |n| n.contains("the patch nothing.yaml reaches no object here: both sides keep it")
        ),
        "{:?}",
        plan.notes
    );
}

#[test]
fn what_split_refuses_and_why() {
    let app = |kustomization: &str| {
        tree(&[
            ("apps/web/kustomization.yaml", kustomization),
            ("apps/web/web.yaml", WEB_OBJECTS),
            (
                "apps/web/ns.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n",
            ),
            (
                "apps/web/both.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  labels:\n    \
                 fluxgate.io/mode: rt\n",
            ),
            (
                "components/all/kustomization.yaml",
                "kind: Component\npatches:\n- target:\n    kind: Deployment\n  patch: '[]'\n",
            ),
            (
                "components/adds/kustomization.yaml",
                "kind: Component\nresources:\n- x.yaml\n",
            ),
            ("apps/web/sub/kustomization.yaml", "resources: []\n"),
        ])
    };
    let rw = request(&["apps/web"], &["Deployment"], None, &[]);
    for (kustomization, says) in [
        (
            "resources: [web.yaml]\nconfigMapGenerator:\n- name: x\n",
            "generators",
        ),
        (
            "resources: [web.yaml]\nhelmCharts:\n- name: x\n",
            "Helm charts",
        ),
        ("resources: [web.yaml]\nnamePrefix: a-\n", "namePrefix"),
        (
            "resources:\n- web.yaml\n- https://github.com/org/repo//base?ref=v1\n",
            "remote base",
        ),
        (
            "resources: [web.yaml, sub]\n",
            "split apps/web/sub on its own",
        ),
        (
            "resources: [web.yaml, ../base]\n",
            "neither a YAML file nor a folder",
        ),
        (
            "resources: [web.yaml, both.yaml]\npatches:\n- target:\n    kind: Deployment\n  patch: '[]'\n",
            "may change objects on both sides (rw: Deployment web; rt: the others)",
        ),
        (
            "resources: [web.yaml, both.yaml]\ncomponents: [../../components/all]\n",
            "component ../../components/all may change objects on both sides",
        ),
        (
            "resources: [web.yaml]\ncomponents: [../../components/adds]\n",
            "whose resources split does not sort",
        ),
        (
            "resources: [web.yaml]\npatches:\n- patch: |\n    kind: Secret\n    metadata:\n      name: gone\n",
            "names no object",
        ),
        (
            "resources: [web.yaml, ns.yaml]\nlabels:\n- pairs:\n    fluxgate.io/mode: rw\n",
            "sets fluxgate.io/mode for every object",
        ),
        (
            "resources: [web.yaml]\nsurprise: true\n",
            "does not know the field \"surprise\"",
        ),
    ] {
        let error = refused(&app(kustomization), &rw);
        assert!(error.contains(says), "{kustomization}\n→ {error}");
        assert!(error.starts_with("apps/web: "), "{error}");
    }
    let error = refused(
        &app("resources: [web.yaml]\n"),
        &request(&["apps/web"], &[], None, &[]),
    );
    assert!(error.contains("no object is rw"), "{error}");
    let error = refused(
        &app("resources: [ns.yaml]\n"),
        &request(&["apps/web"], &["Namespace"], None, &[]),
    );
    assert!(error.contains("Namespace web would be rw"), "{error}");
    let error = refused(
        &app("resources: [web.yaml]\n"),
        &request(&["apps/web"], &["Deployment"], Some("not ok!"), &[]),
    );
    assert!(
        error.starts_with("--window: \"not ok!\" is not a valid label value"),
        "{error}"
    );
    let error = refused(
        &app("resources: [web.yaml]\n"),
        &request(&["apps/nothing"], &[], None, &[]),
    );
    assert_eq!(error, "apps/nothing: no such folder (or no YAML in it)");
    let mut half = app("resources: [web.yaml]\n");
    half.insert(
        "apps/web/web-rw/kustomization.yaml".into(),
        "resources: []\n".into(),
    );
    assert!(refused(&half, &rw).contains("a split half done"));
    let mut taken = app("resources: [web.yaml]\n");
    taken.insert(
        "apps/web/web-rt/web.yaml".into(),
        "kind: ConfigMap\n".into(),
    );
    assert!(refused(&taken, &rw).contains("apps/web/web-rt/web.yaml exists already"));
}

/// The seed's shape: an app, a cluster entry point, and Flux Kustomizations in their own files.
fn cluster(apps: &[&str]) -> BTreeMap<String, String> {
    let mut files = tree(&[
        (
            "clusters/c/flux/apps.yaml",
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  \
             namespace: flux-system\nspec:\n  interval: 10m\n  path: ./clusters/c/apps\n  prune: true\n",
        ),
        (
            "clusters/c/flux/windows.yaml",
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: windows\n  \
             namespace: flux-system\nspec:\n  path: ./clusters/c/windows\n",
        ),
        (
            "clusters/c/windows/w.yaml",
            "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  name: nightly\n",
        ),
    ]);
    let mut resources = String::from("resources:\n");
    for app in apps {
        resources.push_str(&format!("  - ../../../apps/{app}\n"));
        files.insert(
            format!("apps/{app}/kustomization.yaml"),
            "resources:\n  - web.yaml\n".into(),
        );
        files.insert(format!("apps/{app}/web.yaml"), WEB_OBJECTS.into());
    }
    files.insert("clusters/c/apps/kustomization.yaml".into(), resources);
    files
}

#[test]
fn the_cluster_entry_point_and_its_flux_kustomization_split_too() {
    let files = cluster(&["a"]);
    let (plan, after) = split(
        &files,
        &request(
            &["apps/a"],
            &["Deployment"],
            Some("nightly"),
            &["clusters/c"],
        ),
    );
    assert_eq!(
        after["clusters/c/apps/apps-rt/kustomization.yaml"],
        "resources:\n  - ../../../../apps/a/a-rt\n"
    );
    assert_eq!(
        after["clusters/c/apps/apps-rw/kustomization.yaml"],
        "resources:\n  - ../../../../apps/a/a-rw\n"
    );
    assert!(!after.contains_key("clusters/c/flux/apps.yaml"));
    assert!(after["clusters/c/flux/apps-rt.yaml"].contains("  name: apps-rt\n"));
    assert!(!after["clusters/c/flux/apps-rt.yaml"].contains("dependsOn"));
    assert!(
        after["clusters/c/flux/apps-rw.yaml"].ends_with(
            "spec:\n  dependsOn:\n    # fluxgate split: after the windows (rw objects applied before \
             them would pass\n    # ungated) and after the rt half (the namespaces and configuration \
             rw objects use).\n    - name: windows\n    - name: apps-rt\n  interval: 10m\n  path: \
             ./clusters/c/apps/apps-rw\n  prune: true\n"
        ),
        "{}",
        after["clusters/c/flux/apps-rw.yaml"]
    );
    assert_eq!(plan.notes, Vec::<String>::new());
}

#[test]
fn an_entry_point_split_before_takes_the_next_app() {
    let files = cluster(&["a", "b"]);
    let (first, after) = split(
        &files,
        &request(&["apps/a"], &["Deployment"], None, &["clusters/c"]),
    );
    assert!(
        first
            .notes
            .iter()
            .any(|n| n.contains("../../../apps/b is not split: it goes to apps-rt")),
        "{:?}",
        first.notes
    );
    assert_eq!(
        after["clusters/c/apps/apps-rt/kustomization.yaml"],
        "resources:\n  - ../../../../apps/a/a-rt\n  - ../../../../apps/b\n"
    );
    let (second, after) = split(
        &after,
        &request(&["apps/b"], &["Deployment"], None, &["clusters/c"]),
    );
    assert_eq!(
        after["clusters/c/apps/apps-rt/kustomization.yaml"],
        "resources:\n  - ../../../../apps/a/a-rt\n  - ../../../../apps/b/b-rt\n"
    );
    assert_eq!(
        after["clusters/c/apps/apps-rw/kustomization.yaml"],
        "resources:\n  - ../../../../apps/a/a-rw\n  - ../../../../apps/b/b-rw\n"
    );
    assert_eq!(second.sections.len(), 2, "{:#?}", second.sections);
    // Both at once, again: nothing.
    let both = plan(
        &after,
        &request(
            &["apps/a", "apps/b"],
            &["Deployment"],
            None,
            &["clusters/c"],
        ),
    );
    assert_eq!(both.changes().count(), 0);
}

#[test]
fn without_clusters_other_kustomizations_list_both_sides_and_a_later_run_splits_them() {
    let files = cluster(&["a"]);
    let (plan, after) = split(&files, &request(&["apps/a"], &["Deployment"], None, &[]));
    assert_eq!(
        after["clusters/c/apps/kustomization.yaml"],
        "resources:\n  - ../../../apps/a/a-rt\n  - ../../../apps/a/a-rw\n"
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("now lists both sides of apps/a") && n.contains("mixed-owner")),
        "{:?}",
        plan.notes
    );
    let (_, after) = split(
        &after,
        &request(&["apps/a"], &["Deployment"], None, &["clusters/c"]),
    );
    assert_eq!(
        after["clusters/c/apps/apps-rw/kustomization.yaml"],
        "resources:\n  - ../../../../apps/a/a-rw\n"
    );
    assert!(after.contains_key("clusters/c/flux/apps-rw.yaml"));
}

#[test]
fn flux_files_of_several_documents_are_edited_in_place_and_dependents_wait_for_both_halves() {
    let mut files = cluster(&["a"]);
    let apps = files.remove("clusters/c/flux/apps.yaml").unwrap();
    let tests = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: \
                 tests\n  namespace: flux-system\nspec:\n  dependsOn:\n    - name: apps\n  path: \
                 ./tests\n";
    files.insert(
        "clusters/c/flux/all.yaml".into(),
        format!("{apps}---\n{tests}"),
    );
    files.insert(
        "clusters/c/kustomization.yaml".into(),
        "resources:\n- flux/all.yaml\n".into(),
    );
    let (_, after) = split(
        &files,
        &request(&["apps/a"], &["Deployment"], None, &["clusters/c"]),
    );
    let all = &after["clusters/c/flux/all.yaml"];
    let names: Vec<&str> = all
        .lines()
        .filter_map(|l| l.strip_prefix("  name: "))
        .collect();
    assert_eq!(names, ["apps-rt", "apps-rw", "tests"], "{all}");
    assert!(
        all.contains("  dependsOn:\n    - name: apps-rt\n    - name: apps-rw\n  path: ./tests\n"),
        "{all}"
    );
    assert_eq!(
        after["clusters/c/kustomization.yaml"],
        "resources:\n- flux/all.yaml\n"
    );
}

#[test]
fn a_kustomization_listing_a_flux_file_split_in_two_lists_both() {
    let mut files = cluster(&["a"]);
    files.insert(
        "clusters/c/flux/kustomization.yaml".into(),
        "resources:\n  - apps.yaml\n  - windows.yaml\n".into(),
    );
    let (_, after) = split(
        &files,
        &request(&["apps/a"], &["Deployment"], None, &["clusters/c"]),
    );
    assert_eq!(
        after["clusters/c/flux/kustomization.yaml"],
        "resources:\n  - apps-rt.yaml\n  - apps-rw.yaml\n  - windows.yaml\n"
    );
}

#[test]
fn a_flux_kustomization_of_the_app_folder_itself_is_split() {
    let mut files = cluster(&["a"]);
    files.insert(
        "clusters/c/flux/apps.yaml".into(),
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: a\n  \
         namespace: flux-system\nspec:\n  path: ./apps/a/\n"
            .into(),
    );
    let (_, after) = split(
        &files,
        &request(&["apps/a"], &["Deployment"], None, &["clusters/c"]),
    );
    assert!(after["clusters/c/flux/a-rt.yaml"].contains("  path: ./apps/a/a-rt\n"));
    assert!(after["clusters/c/flux/a-rw.yaml"].contains("  path: ./apps/a/a-rw\n"));
}

#[test]
fn flux_paths_are_read_from_the_repository_root() {
    let mut files = BTreeMap::new();
    for (path, text) in cluster(&["a"]) {
        files.insert(
            path,
            text.replace("path: ./clusters", "path: ./deploy/gitops/clusters"),
        );
    }
    let mut r = request(&["apps/a"], &["Deployment"], None, &["clusters/c"]);
    r.repo_prefix = "deploy/gitops".into();
    let (_, after) = split(&files, &r);
    assert!(
        after["clusters/c/flux/apps-rw.yaml"]
            .contains("path: ./deploy/gitops/clusters/c/apps/apps-rw\n")
    );
    // Run from elsewhere (no prefix), the Flux paths name nothing here, and the folder that
    // looks like the one they name is not split without them.
    let error = refused(
        &files,
        &request(&["apps/a"], &["Deployment"], None, &["clusters/c"]),
    );
    assert!(
        error.contains(
            "Flux Kustomization apps applies ./deploy/gitops/clusters/c/apps, which looks like \
             clusters/c/apps but does not lie where split runs"
        ),
        "{error}"
    );
}

#[test]
fn a_flux_folder_without_a_kustomization_is_refused() {
    let mut files = cluster(&["a"]);
    files.insert(
        "clusters/c/flux/apps.yaml".into(),
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: all\n  \
         namespace: flux-system\nspec:\n  path: ./apps\n"
            .into(),
    );
    let error = refused(
        &files,
        &request(&["apps/a"], &["Deployment"], None, &["clusters/c"]),
    );
    assert!(
        error.contains("applies apps without a kustomization"),
        "{error}"
    );
}

#[test]
fn notes_say_what_the_windows_lack() {
    let mut files = cluster(&["a"]);
    files.remove("clusters/c/windows/w.yaml");
    let plan = plan(
        &files,
        &request(
            &["apps/a"],
            &["Deployment"],
            Some("nightly"),
            &["clusters/c"],
        ),
    );
    let notes = plan.notes.join("\n");
    assert!(
        notes.contains("no Flux Kustomization in clusters/c applies ReconciliationWindow"),
        "{notes}"
    );
    assert!(
        notes.contains("no ReconciliationWindow named nightly"),
        "{notes}"
    );
    let plan = super::plan(
        &cluster(&["a"]),
        &request(&["apps/a"], &["Deployment", "StatefulSet"], None, &[]),
    );
    assert!(
        plan.notes
            .contains(&"--rw StatefulSet: no object of that kind in the apps split".to_owned()),
        "{:?}",
        plan.notes
    );
}

#[test]
fn flux_fields_that_may_reach_one_half_only_are_refused() {
    for (spec, says) in [
        ("  components:\n    - ../components/x\n", "spec.components"),
        (
            "  patches:\n    - patch: |\n        kind: Deployment\n",
            "without target",
        ),
    ] {
        let mut files = cluster(&["a"]);
        let apps = files["clusters/c/flux/apps.yaml"].replace("spec:\n", &format!("spec:\n{spec}"));
        files.insert("clusters/c/flux/apps.yaml".into(), apps);
        let error = refused(
            &files,
            &request(&["apps/a"], &["Deployment"], None, &["clusters/c"]),
        );
        assert!(error.contains(says), "{error}");
    }
    let mut files = cluster(&["a"]);
    let apps = files["clusters/c/flux/apps.yaml"].replace(
        "spec:\n",
        "spec:\n  patches:\n    - target:\n        kind: Deployment\n      patch: '[]'\n",
    );
    files.insert("clusters/c/flux/apps.yaml".into(), apps);
    let (_, after) = split(
        &files,
        &request(&["apps/a"], &["Deployment"], None, &["clusters/c"]),
    );
    assert!(after["clusters/c/flux/apps-rt.yaml"].contains("kind: Deployment"));
    assert!(after["clusters/c/flux/apps-rw.yaml"].contains("kind: Deployment"));
}

#[test]
fn an_entry_point_without_a_flux_kustomization_in_git_is_split_after_its_folder() {
    let mut files = cluster(&["a"]);
    files.remove("clusters/c/flux/apps.yaml");
    let (plan, after) = split(
        &files,
        &request(&["apps/a"], &["Deployment"], None, &["clusters/c"]),
    );
    assert_eq!(
        after["clusters/c/apps/apps-rw/kustomization.yaml"],
        "resources:\n  - ../../../../apps/a/a-rw\n"
    );
    assert!(
        plan.notes.iter().any(|n| n.starts_with(
            "no Flux Kustomization in clusters/c applies clusters/c/apps: point one named apps-rt"
        )),
        "{:?}",
        plan.notes
    );
}

#[test]
fn a_folder_listed_where_split_does_not_edit_is_refused_not_left_dangling() {
    // An entry point nested in another: clusters/c/apps lists ./team, which lists the app.
    let mut files = cluster(&[]);
    files.insert(
        "apps/a/kustomization.yaml".into(),
        "resources:\n  - web.yaml\n".into(),
    );
    files.insert("apps/a/web.yaml".into(), WEB_OBJECTS.into());
    files.insert(
        "clusters/c/apps/kustomization.yaml".into(),
        "resources:\n  - team\n".into(),
    );
    files.insert(
        "clusters/c/apps/team/kustomization.yaml".into(),
        "resources:\n  - ../../../../apps/a\n".into(),
    );
    // The nested folder is no entry point: it lists both sides, and the entry point above it
    // still lists it.
    let (plan, after) = split(
        &files,
        &request(&["apps/a"], &["Deployment"], None, &["clusters/c"]),
    );
    assert_eq!(
        after["clusters/c/apps/team/kustomization.yaml"],
        "resources:\n  - ../../../../apps/a/a-rt\n  - ../../../../apps/a/a-rw\n"
    );
    assert!(plan.notes.iter().any(|n| n.contains("mixed-owner")));
    // A file of the app listed from elsewhere would dangle: refused.
    let mut files = cluster(&["a"]);
    files.insert(
        "apps/other/kustomization.yaml".into(),
        "resources:\n  - ../a/web.yaml\n".into(),
    );
    let error = refused(
        &files,
        &request(&["apps/a"], &["Deployment"], None, &["clusters/c"]),
    );
    assert!(
        error.contains("apps/other/kustomization.yaml: its resources ../a/web.yaml would name"),
        "{error}"
    );
}

#[test]
fn a_json_patch_file_moves_with_its_side_and_a_missing_one_is_refused() {
    let kustomization =
        "resources:\n- web.yaml\npatches:\n- path: scale.json\n  target:\n    kind: Deployment\n";
    let mut files = tree(&[
        ("apps/web/kustomization.yaml", kustomization),
        ("apps/web/web.yaml", WEB_OBJECTS),
    ]);
    let rw = request(&["apps/web"], &["Deployment"], None, &[]);
    let error = refused(&files, &rw);
    assert!(
        error.contains("apps/web/scale.json, which is not here to move"),
        "{error}"
    );
    files.insert(
        "apps/web/scale.json".into(),
        r#"[{"op": "replace", "path": "/spec/replicas", "value": 3}]"#.into(),
    );
    let (_, after) = split(&files, &rw);
    assert!(after.contains_key("apps/web/web-rw/scale.json"));
    assert!(!after["apps/web/web-rt/kustomization.yaml"].contains("scale.json"));
}
