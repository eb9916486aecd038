//! Installing fluxgate from the docs alone: the release's install.yaml (`tools/render-install.sh`),
//! the remote-overlay recipe and the Flux install of deploy/README.md, rendered as a user (or
//! Flux) would render them; the recipes the READMEs show (the `kubectl logs -l` selectors, the
//! multi-tenant snippet) checked against the manifests they describe.
//!
//! Rendering uses `kubectl kustomize` (offline). Without kubectl these tests print "skipping" and
//! pass, except in CI (`CI` set), where they fail: `.ci/run` installs it.

mod common;
#[path = "common/flux_health.rs"]
mod flux_health;

use common::{deployed_policy, documents, kubectl_available, try_kustomize};
use flux_health::{
    WINDOW_KUSTOMIZATIONS, flux_health, kustomization_spec_schema, window_health_check,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FLUX_INSTALL: &str = "deploy/examples/flux-install";
const RELEASE_IMAGE: &str = "ghcr.io/acme/fluxgate:v9.8.7";

fn path(relative: &str) -> PathBuf {
    Path::new(ROOT).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// `kubectl kustomize DIR` as JSON values; only called once `kubectl_available()` said yes.
fn kustomize(dir: &Path) -> Vec<Value> {
    documents(&try_kustomize(dir).expect("kubectl is available"))
}

/// A throwaway kustomization inside the checkout (kustomize refuses absolute resource paths),
/// removed on drop.
struct Overlay(PathBuf);

impl Overlay {
    fn new(name: &str, kustomization: &Value) -> Overlay {
        let dir = path(&format!(
            "target/install-test-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // JSON is YAML: no YAML writer needed.
        std::fs::write(
            dir.join("kustomization.yaml"),
            serde_json::to_string_pretty(kustomization).unwrap(),
        )
        .unwrap();
        Overlay(dir)
    }
    fn render(&self) -> Vec<Value> {
        kustomize(&self.0)
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn describe(object: &Value) -> String {
    format!(
        "{} {}",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendered objects"))
}

/// Every container image in `objects`.
fn images(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .filter_map(|o| o["spec"]["template"]["spec"]["containers"].as_array())
        .flatten()
        .map(|c| c["image"].as_str().unwrap().to_string())
        .collect()
}

/// Objects by "Kind name", for comparing two renders.
fn by_name(objects: Vec<Value>) -> BTreeMap<String, Value> {
    objects.into_iter().map(|o| (describe(&o), o)).collect()
}

fn render_install(image: &str) -> std::process::Output {
    Command::new("bash")
        .arg(path("tools/render-install.sh"))
        .arg(image)
        .output()
        .expect("run tools/render-install.sh")
}

/// install.yaml as the release workflow renders it.
fn install_yaml() -> Vec<Value> {
    let output = render_install(RELEASE_IMAGE);
    assert!(
        output.status.success(),
        "tools/render-install.sh failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    documents(&String::from_utf8(output.stdout).unwrap())
}

/// The fenced code blocks of a Markdown file: (info string, body).
fn code_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match (&mut current, trimmed.strip_prefix("```")) {
            (None, Some(info)) => current = Some((info.trim().to_string(), String::new())),
            (Some(_), Some(_)) => blocks.push(current.take().unwrap()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

// === install.yaml ===

#[test]
fn install_yaml_is_the_cert_manager_overlay_with_the_release_image() {
    if !kubectl_available() {
        return;
    }
    let installed = install_yaml();
    assert_eq!(images(&installed), [RELEASE_IMAGE]);
    // Everything else is the overlay as committed: nothing added, nothing lost.
    let mut overlay = kustomize(&path("deploy/overlays/cert-manager"));
    for object in &mut overlay {
        if object["kind"] == "Deployment" {
            object["spec"]["template"]["spec"]["containers"][0]["image"] = RELEASE_IMAGE.into();
        }
    }
    assert_eq!(by_name(installed.clone()), by_name(overlay));
    // The CRDs come with it, so `kubectl apply -f install.yaml` is one step.
    for crd in [
        "reconciliationwindows.fluxgate.io",
        "reconciliationfreezes.fluxgate.io",
    ] {
        find(&installed, "CustomResourceDefinition", crd);
    }
    // Reproducible: the same input renders the same bytes.
    assert_eq!(
        render_install(RELEASE_IMAGE).stdout,
        render_install(RELEASE_IMAGE).stdout
    );
    // A digest pins it; the release workflow passes tag and digest.
    let digest = format!("{RELEASE_IMAGE}@sha256:{}", "ab".repeat(32));
    let pinned = render_install(&digest);
    assert!(pinned.status.success());
    assert_eq!(
        images(&documents(&String::from_utf8(pinned.stdout).unwrap())),
        [digest]
    );
    // An image with neither tag nor digest would install whatever `latest` is: refused.
    let untagged = render_install("ghcr.io/acme/fluxgate");
    assert_eq!(untagged.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&untagged.stderr).contains("neither a tag nor a digest"),
        "{}",
        String::from_utf8_lossy(&untagged.stderr)
    );
}

/// The remote-overlay recipe of deploy/README.md ("kubectl apply -k of a remote overlay"), with
/// its remote resource replaced by the same folder of this checkout: it renders install.yaml.
#[test]
fn the_remote_overlay_recipe_renders_what_install_yaml_installs() {
    if !kubectl_available() {
        return;
    }
    let readme = read("deploy/README.md");
    let blocks: Vec<_> = code_blocks(&readme)
        .into_iter()
        .filter(|(_, body)| body.contains("//deploy/overlays/cert-manager?ref="))
        .collect();
    assert_eq!(blocks.len(), 1, "deploy/README.md shows one remote overlay");
    let mut recipe = documents(&blocks[0].1).remove(0);
    let resources = recipe["resources"].as_array_mut().unwrap();
    assert_eq!(resources.len(), 1, "{resources:?}");
    let remote = resources[0].as_str().unwrap().to_string();
    assert!(
        remote.starts_with("https://github.com/OWNER/fluxgate//deploy/overlays/cert-manager?ref=v"),
        "{remote}"
    );
    resources[0] = "../../deploy/overlays/cert-manager".into();
    // The recipe names the release image by OWNER and tag; the test's release image stands in.
    let image = &mut recipe["images"][0];
    assert_eq!(image["name"], "registry.example.com/fluxgate");
    assert_eq!(image["newName"], "ghcr.io/OWNER/fluxgate");
    let tag = image["newTag"].as_str().unwrap().to_string();
    assert!(
        remote.ends_with(&format!("?ref={tag}")),
        "the image tag and the ref must be the same release: {remote}, {tag}"
    );
    image["newName"] = "ghcr.io/acme/fluxgate".into();
    image["newTag"] = "v9.8.7".into();
    let rendered = Overlay::new("remote", &recipe).render();
    assert_eq!(by_name(rendered), by_name(install_yaml()));
}

// === Flux ===

fn flux_objects() -> BTreeMap<String, Value> {
    let dir = path(&format!("{FLUX_INSTALL}/clusters/my-cluster/fluxgate"));
    let mut objects = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().path();
        assert!(
            !file.ends_with("kustomization.yaml"),
            "the flux-system Kustomization applies every file here; a kustomization.yaml would \
             have to list them"
        );
        for object in documents(&std::fs::read_to_string(&file).unwrap()) {
            objects.insert(describe(&object), object);
        }
    }
    objects
}

/// What Flux renders for a Kustomization: kustomize on its path (relative to the source's root,
/// here the layout of `root`), with its `images` and `patches` applied.
fn render_as_flux(kustomization: &Value, root: &str) -> Vec<Value> {
    let spec = &kustomization["spec"];
    let relative = spec["path"]
        .as_str()
        .unwrap()
        .strip_prefix("./")
        .expect("path starts with ./");
    let from_target = format!("../../{root}{relative}");
    let mut overlay = serde_json::json!({ "resources": [from_target] });
    if !spec["images"].is_null() {
        overlay["images"] = spec["images"].clone();
    }
    if !spec["patches"].is_null() {
        overlay["patches"] = spec["patches"].clone();
    }
    let name = kustomization["metadata"]["name"].as_str().unwrap();
    Overlay::new(name, &overlay).render()
}

#[test]
fn the_flux_install_applies_crds_then_fluxgate_then_windows_each_waiting() {
    if !kubectl_available() {
        return;
    }
    let objects = flux_objects();
    let names: Vec<&str> = objects.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "GitRepository fluxgate",
            "Kustomization fluxgate",
            "Kustomization fluxgate-crds",
            "Kustomization fluxgate-windows"
        ],
        "the GitRepository and the three Kustomizations"
    );
    let known: Vec<String> = kustomization_spec_schema()["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let source = objects
        .values()
        .find(|o| o["kind"] == "GitRepository")
        .expect("a GitRepository");
    assert_eq!(source["apiVersion"], "source.toolkit.fluxcd.io/v1");
    let tag = source["spec"]["ref"]["tag"].as_str().unwrap();
    let kustomization = |name: &str| -> &Value {
        let k = objects
            .values()
            .find(|o| o["kind"] == "Kustomization" && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no Kustomization {name}"));
        assert_eq!(k["apiVersion"], "kustomize.toolkit.fluxcd.io/v1", "{name}");
        for field in k["spec"].as_object().unwrap().keys() {
            assert!(
                known.contains(field),
                "{name}: spec.{field} is not a field of Flux's Kustomization"
            );
        }
        assert_eq!(
            k["spec"]["wait"], true,
            "{name} is Ready only once applied and ready"
        );
        k
    };
    let depends_on = |k: &Value| -> Vec<String> {
        k["spec"]["dependsOn"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|d| d["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let crds = kustomization("fluxgate-crds");
    let fluxgate = kustomization("fluxgate");
    let windows = kustomization("fluxgate-windows");
    assert!(depends_on(crds).is_empty());
    assert_eq!(depends_on(fluxgate), ["fluxgate-crds"]);
    assert_eq!(depends_on(windows), ["fluxgate"]);
    assert_eq!(
        crds["spec"]["prune"], false,
        "pruning the CRD would delete every window"
    );
    for k in [crds, fluxgate] {
        assert_eq!(k["spec"]["sourceRef"]["name"], "fluxgate");
    }
    assert_eq!(windows["spec"]["sourceRef"]["name"], "flux-system");

    // fluxgate-crds: exactly the CRDs.
    let crd_objects = render_as_flux(crds, "");
    let described: Vec<String> = crd_objects.iter().map(describe).collect();
    assert_eq!(
        described,
        [
            "CustomResourceDefinition reconciliationfreezes.fluxgate.io",
            "CustomResourceDefinition reconciliationwindows.fluxgate.io"
        ]
    );
    // fluxgate: install.yaml less the CRD, with the release's image (same tag as the source).
    let image = &fluxgate["spec"]["images"][0];
    assert_eq!(
        image["newTag"], tag,
        "the image and the source: one release"
    );
    let mut server = render_as_flux(fluxgate, "");
    assert_eq!(images(&server), [format!("ghcr.io/OWNER/fluxgate:{tag}")]);
    for object in &mut server {
        if object["kind"] == "Deployment" {
            object["spec"]["template"]["spec"]["containers"][0]["image"] = RELEASE_IMAGE.into();
        }
    }
    let mut expected = by_name(install_yaml());
    for crd in &described {
        expected.remove(crd);
    }
    assert_eq!(by_name(server), expected);
    // fluxgate-windows: only windows, from the user's repository (this example's layout).
    let window_objects = render_as_flux(windows, &format!("{FLUX_INSTALL}/"));
    assert!(!window_objects.is_empty());
    for object in &window_objects {
        assert_eq!(
            object["kind"],
            "ReconciliationWindow",
            "{}",
            describe(object)
        );
    }
}

// === recipes in the READMEs ===

/// The pod labels of the rendered base Deployment's template.
fn pod_labels() -> (String, BTreeMap<String, String>) {
    let base = kustomize(&path("deploy/base"));
    let deployment = find(&base, "Deployment", "fluxgate");
    (
        deployment["metadata"]["namespace"]
            .as_str()
            .unwrap()
            .to_string(),
        serde_json::from_value(deployment["spec"]["template"]["metadata"]["labels"].clone())
            .unwrap(),
    )
}

/// The value of `-l`/`--selector` (and of `-n`/`--namespace`) in a `kubectl logs` command line.
fn flag(words: &[&str], short: &str, long: &str) -> Option<String> {
    words.iter().enumerate().find_map(|(i, w)| {
        if *w == short || *w == long {
            words.get(i + 1).map(|v| v.to_string())
        } else {
            w.strip_prefix(&format!("{long}="))
                .or_else(|| w.strip_prefix(&format!("{short}=")))
                .map(str::to_string)
        }
    })
}

#[test]
fn every_kubectl_logs_selector_in_the_readmes_selects_fluxgates_pods() {
    if !kubectl_available() {
        return;
    }
    let (namespace, labels) = pod_labels();
    let mut checked = 0;
    let mut docs: Vec<String> = std::fs::read_dir(path("docs"))
        .unwrap()
        .map(|e| format!("docs/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".md"))
        .collect();
    docs.extend(["README.md".to_string(), "deploy/README.md".to_string()]);
    for readme in &docs {
        for line in read(readme).lines() {
            let Some(at) = line.find("kubectl ") else {
                continue;
            };
            let words: Vec<&str> = line[at..]
                .split('|')
                .next()
                .unwrap()
                .split_whitespace()
                .map(|w| w.trim_matches('`'))
                .collect();
            if !words.contains(&"logs") {
                continue;
            }
            let Some(selector) = flag(&words, "-l", "--selector") else {
                continue;
            };
            checked += 1;
            for term in selector.split(',') {
                let (key, value) = term
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{readme}: {line}: only key=value selectors"));
                assert_eq!(
                    labels.get(key).map(String::as_str),
                    Some(value),
                    "{readme}: `{line}` selects {term}, which fluxgate's pods ({labels:?}) do \
                     not carry: it would print nothing"
                );
            }
            assert_eq!(
                flag(&words, "-n", "--namespace").as_deref(),
                Some(namespace.as_str()),
                "{readme}: {line}"
            );
        }
    }
    assert!(
        checked >= 2,
        "the audit recipes of docs/reference.md and deploy/README.md"
    );
}

/// The JSON patches of the patch targeting `kind` in a kustomization.
fn json_patches(kustomization: &Value, kind: &str) -> Vec<Value> {
    let patch = kustomization["patches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["target"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no patch for {kind}"));
    documents(patch["patch"].as_str().unwrap())
        .remove(0)
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn the_readmes_multi_tenant_snippet_is_the_examples_patch() {
    let readme = read("deploy/README.md");
    let snippets: Vec<Value> = code_blocks(&readme)
        .into_iter()
        .filter(|(_, body)| body.contains("/webhooks/0/matchConditions/0/expression"))
        .map(|(_, body)| documents(&body).remove(0))
        .collect();
    assert_eq!(snippets.len(), 1, "one multi-tenant snippet");
    let example = documents(&read("deploy/examples/multi-tenant/kustomization.yaml")).remove(0);
    for kind in ["Deployment", "ValidatingWebhookConfiguration"] {
        assert_eq!(
            json_patches(&snippets[0], kind),
            json_patches(&example, kind),
            "deploy/README.md's multi-tenant {kind} patch differs from \
             deploy/examples/multi-tenant (which tests/deploy_webhook_scope.rs checks against the policy)"
        );
    }
}

// === no deadlock, no unknown-window ===

/// The steps of deploy/README.md's "Install order", by their bold lead.
fn install_order() -> Vec<String> {
    let readme = read("deploy/README.md");
    let section = readme
        .split("\n## Install order\n")
        .nth(1)
        .expect("deploy/README.md has an Install order")
        .split("\n## ")
        .next()
        .unwrap();
    section
        .lines()
        .filter_map(|line| {
            let (number, rest) = line.split_once(". **")?;
            number.parse::<u32>().ok()?;
            Some(rest.split_once("**")?.0.to_string())
        })
        .collect()
}

/// What keeps a correct install from deadlocking or denying an rw object as `unknown-window`,
/// checked on what each way installs (install.yaml and Flux's `fluxgate` Kustomization; the
/// remote overlay renders install.yaml, above):
///
/// - the server reads the cluster's windows (`--windows-from-cluster`, no `--windows`), so it
///   is ready on its first list, however empty (`tests/cluster_watch.rs`
///   `the_install_order_admits_windows_before_any_exists_and_then_their_rw_objects` runs that
///   order against this policy), and its readiness probe is what the Service's endpoints, and so
///   the windows webhook (`failurePolicy: Fail`), wait for;
/// - its flags make the policy that test runs with;
/// - the docs say CRD, webhook, windows, then labels; Flux's chain is the same
///   (`the_flux_install_applies_crds_then_fluxgate_then_windows_each_waiting`).
#[test]
fn a_correct_install_neither_deadlocks_nor_denies_an_rw_object_as_unknown_window() {
    assert_eq!(
        install_order(),
        [
            "The CRD",
            "The webhook and its server",
            "The windows.",
            "Label objects"
        ]
    );
    if !kubectl_available() {
        return;
    }
    let fluxgate = flux_objects()
        .remove("Kustomization fluxgate")
        .expect("the fluxgate Kustomization");
    for (way, objects) in [
        ("install.yaml", install_yaml()),
        (
            "Flux's fluxgate Kustomization",
            render_as_flux(&fluxgate, ""),
        ),
    ] {
        let deployment = find(&objects, "Deployment", "fluxgate");
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(args.contains(&"--windows-from-cluster"), "{way}: {args:?}");
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--windows=") || *a == "--windows"),
            "{way}: windows files as well: {args:?}"
        );
        assert_eq!(
            container["readinessProbe"]["httpGet"]["path"], "/readyz",
            "{way}"
        );
        assert_eq!(
            deployed_policy(deployment),
            fluxgate_core::policy::Policy::default(),
            "{way}: the policy tests/cluster_watch.rs runs the install order with"
        );
        let configuration = find(&objects, "ValidatingWebhookConfiguration", "fluxgate");
        let windows = configuration["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == "windows.fluxgate.io")
            .expect("the windows webhook");
        assert_eq!(windows["failurePolicy"], "Fail", "{way}");
        assert_eq!(
            windows["clientConfig"]["service"]["name"], "fluxgate",
            "{way}"
        );
        find(&objects, "Service", "fluxgate");
    }
}

// === Flux waits until fluxgate has the windows in force ===

/// The example window as the API server returns it at `generation`, with `status` (None: as
/// created, before fluxgate wrote any).
fn stored_window(generation: i64, status: Option<fluxgate_core::window::WindowStatus>) -> Value {
    let mut object = documents(&read(&format!(
        "{FLUX_INSTALL}/infrastructure/fluxgate-windows/business-hours.yaml"
    )))
    .remove(0);
    let metadata = &mut object["metadata"];
    metadata["generation"] = generation.into();
    metadata["uid"] = "0b6d3c6e-3a8e-4a51-9b0e-6c1f0e0d2a11".into();
    metadata["resourceVersion"] = "4711".into();
    metadata["creationTimestamp"] = "2026-11-27T12:00:00Z".into();
    if let Some(status) = status {
        object["status"] = serde_json::to_value(status).unwrap();
    }
    object
}

/// What fluxgate writes (`fluxgate_core::window::WindowStatus`, as `src/cluster/sync.rs` builds
/// it) for the example window: with `in_force` the generation it has in force, and `refused`
/// the cluster's generation it refuses, if any.
fn written_status(
    in_force: Option<i64>,
    refused: Option<i64>,
) -> fluxgate_core::window::WindowStatus {
    use fluxgate_core::window::{Window, WindowStatus, parse_documents};
    let file = format!("{FLUX_INSTALL}/infrastructure/fluxgate-windows/business-hours.yaml");
    let document = parse_documents(&file, &read(&file)).unwrap().remove(0);
    let window = Window::from_document(&document).unwrap();
    let now = "2026-11-27T12:00:00Z".parse().unwrap();
    let status = match in_force {
        Some(_) => WindowStatus::of(&window, &window.state_at(now), in_force, 0),
        None => WindowStatus::default(),
    };
    match refused {
        Some(generation) => status.refused(
            Some(generation),
            "cluster ReconciliationWindow/business-hours: spec.schedules[0].open: …; not in force",
        ),
        None => status,
    }
}

/// Issue 23: `wait: true` alone counts a window as ready once the API server stored it (kstatus
/// takes a custom resource without status as Current), before fluxgate's watch took it in, so
/// an rw object applied next could be denied `unknown-window`. The committed health checks,
/// evaluated as Flux does on what fluxgate writes, hold the Kustomization that applies windows
/// (and so every Kustomization that dependsOn it) until fluxgate has each one's generation in
/// force, and fail it at once when fluxgate refuses one.
#[test]
fn flux_counts_a_window_ready_only_once_fluxgate_has_its_generation_in_force() {
    for file in WINDOW_KUSTOMIZATIONS {
        let entry = window_health_check(file);
        let cases: [(&str, Value, Result<&str, ()>); 7] = [
            ("as created, no status yet", stored_window(1, None), Err(())),
            (
                "status of generation 1, generation 2 just applied",
                stored_window(2, Some(written_status(Some(1), None))),
                Ok("InProgress"),
            ),
            (
                "generation 2 in force",
                stored_window(2, Some(written_status(Some(2), None))),
                Ok("Current"),
            ),
            (
                "generation 1 refused, nothing in force",
                stored_window(1, Some(written_status(None, Some(1)))),
                Ok("Failed"),
            ),
            (
                "generation 2 refused, generation 1 stays in force",
                stored_window(2, Some(written_status(Some(1), Some(2)))),
                Ok("Failed"),
            ),
            (
                "generation 1 refused, generation 2 applied, not seen yet",
                stored_window(2, Some(written_status(None, Some(1)))),
                Ok("InProgress"),
            ),
            (
                "written by a fluxgate without the condition",
                {
                    let mut object = stored_window(2, Some(written_status(Some(2), None)));
                    object["status"]
                        .as_object_mut()
                        .unwrap()
                        .remove("conditions");
                    object
                },
                Err(()),
            ),
        ];
        for (case, object, expected) in cases {
            let verdict = flux_health(&entry, &object);
            match expected {
                Ok(expected) => assert_eq!(verdict, Ok(expected), "{file}: {case}"),
                Err(()) => assert!(
                    verdict.is_err(),
                    "{file}: {case}: Flux must wait (an evaluation error), not {verdict:?}"
                ),
            }
        }
    }
}
