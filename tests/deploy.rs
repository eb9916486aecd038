//! The manifests under `deploy/`: they build, they match the code, and they keep fluxgate's
//! safety promises (webhook scope, labels, RBAC, Flux ordering); the webhook configuration sends
//! exactly what the policy needs, evaluated as the API server does (selectors, and the
//! matchConditions' CEL with the `cel` crate); the monitoring component's alerts pass promtool
//! and its dashboard queries what a running server exports.
//!
//! Rendering uses `kubectl kustomize` (offline), the alert checks `promtool`. Tests that need
//! them print "skipping: … not found" and pass when they are not on PATH, except in CI (`CI`
//! set), where they fail: `.ci/run` installs both.

mod common;

use common::{
    anchor, deployed_policy, documents, kubectl_available, kustomization_dirs, tool_available,
    try_kustomize,
};

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const GITOPS: &str = "deploy/examples/gitops";
const CLUSTER: &str = "deploy/examples/gitops/clusters/cluster-1";
const GITOPS_WINDOWS: &str =
    "deploy/examples/gitops/clusters/cluster-1/infra/reconciliation-windows";
/// Tuesday 10:00 in Berlin: business-hours open.
const OPEN: &str = "2026-11-24T09:00:00Z";
/// Friday 13:00 in Berlin: business-hours closed until Monday 08:00.
const CLOSED: &str = "2026-11-27T12:00:00Z";

fn path(relative: &str) -> PathBuf {
    Path::new(ROOT).join(relative)
}

/// The rendered objects of a kustomization, or None when kubectl is not installed.
fn render(relative: &str) -> Option<Vec<Value>> {
    try_kustomize(&path(relative)).map(|yaml| documents(&yaml))
}

/// Every kustomization under deploy/ and what `kubectl kustomize` renders of it, or None (after
/// saying so) when kubectl is not installed.
fn render_every_kustomization() -> Option<Vec<(PathBuf, String)>> {
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

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendered objects"))
}

fn describe(object: &Value) -> String {
    format!(
        "{} {}",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Every YAML file under `dir`, recursively.
fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
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
fn fluxgate(args: &[&str], stdin: &[u8]) -> Output {
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

fn labels(object: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(object["metadata"]["labels"].clone()).unwrap_or_default()
}

// === building ===

#[test]
fn every_kustomization_under_deploy_builds() {
    let Some(rendered) = render_every_kustomization() else {
        return;
    };
    let dirs: Vec<&PathBuf> = rendered.iter().map(|(dir, _)| dir).collect();
    assert!(
        dirs.len() >= 8,
        "expected the base, the overlay and the example: {dirs:?}"
    );
    for (dir, yaml) in &rendered {
        assert!(
            !documents(yaml).is_empty(),
            "{} renders nothing",
            dir.display()
        );
    }
}

#[test]
fn the_committed_crd_is_what_fluxgate_crd_prints() {
    let output = fluxgate(&["crd"], b"");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed = std::fs::read(path("deploy/crds/crd.yaml")).unwrap();
    assert!(
        output.stdout == committed,
        "deploy/crds/crd.yaml differs from what the Rust types generate: regenerate it with \
         `cargo run -- crd > deploy/crds/crd.yaml` and commit the result"
    );
}

// === windows ===

#[test]
fn every_window_file_under_deploy_loads() {
    let mut files = Vec::new();
    yaml_files(&path("deploy"), &mut files);
    let mut with_windows = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let windows_in_file = documents(&text)
            .iter()
            .filter(|o| o["kind"] == "ReconciliationWindow")
            .count();
        if windows_in_file == 0 {
            continue;
        }
        with_windows += 1;
        let windows = fluxgate::windows::load_windows(std::slice::from_ref(file))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(windows.len(), windows_in_file, "{}", file.display());
    }
    assert!(
        with_windows >= 2,
        "the example windows and the GitOps example's"
    );

    // Whole folders, as `--windows` reads them (non-window documents ignored).
    for folder in [GITOPS, GITOPS_WINDOWS, "deploy/examples/windows.yaml"] {
        fluxgate::windows::load_windows(&[path(folder)])
            .unwrap_or_else(|e| panic!("{folder}: {e}"));
    }
    let gitops = fluxgate::windows::load_windows(&[path(GITOPS)]).unwrap();
    assert_eq!(gitops.names().collect::<Vec<_>>(), ["business-hours"]);
}

#[test]
fn fluxgate_status_reads_the_gitops_windows() {
    for folder in [GITOPS, GITOPS_WINDOWS] {
        let output = fluxgate(
            &["status", "--windows", folder, "--at", CLOSED, "-o", "json"],
            b"",
        );
        assert!(
            output.status.success(),
            "fluxgate status --windows {folder}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let status: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            status,
            json!([{
                "name": "business-hours",
                "open": false,
                "since": "2026-11-26T17:00:00+01:00",
                "next": "2026-11-30T08:00:00+01:00",
                "timeZone": "Europe/Berlin",
                "frozen": false,
                "enforcement": "Enforce",
            }]),
            "Monday 08:00 to Thursday 17:00, Berlin time"
        );
    }
}

#[test]
fn every_rendered_window_passes_validation() {
    let Some(rendered) = render_every_kustomization() else {
        return;
    };
    let mut rendered_windows = 0;
    for (dir, yaml) in &rendered {
        let count = documents(yaml)
            .iter()
            .filter(|o| o["kind"] == "ReconciliationWindow")
            .count();
        if count == 0 {
            continue;
        }
        rendered_windows += count;
        let windows = fluxgate_core::window::WindowSet::from_yaml(&dir.display().to_string(), yaml)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert_eq!(windows.len(), count, "{}", dir.display());
    }
    assert!(
        rendered_windows > 0,
        "the GitOps example renders its windows"
    );
}

// === the GitOps example's labels ===

#[test]
fn nginx_rw_objects_are_rw_but_their_pods_and_selectors_are_not() {
    let Some(objects) = render(&format!("{GITOPS}/apps/nginx/nginx-rw")) else {
        return;
    };
    assert_eq!(objects.len(), 2, "the Deployment and the Service");
    for object in &objects {
        let labels = labels(object);
        assert_eq!(
            labels.get("fluxgate.io/mode").map(String::as_str),
            Some("rw"),
            "{}",
            describe(object)
        );
        assert_eq!(
            labels.get("fluxgate.io/window").map(String::as_str),
            Some("business-hours"),
            "{}",
            describe(object)
        );
    }
    let deployment = find(&objects, "Deployment", "nginx");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.14.2"
    );
    // Pods are created by the ReplicaSet controller, not Flux: an rw label on them would send
    // every pod creation through the webhook, which fails closed.
    let template_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(
        *template_labels,
        json!({"app": "nginx"}),
        "the pod template must stay unlabelled"
    );
    // Selectors are immutable (Deployment) or must keep matching the pods (Service).
    assert_eq!(
        deployment["spec"]["selector"],
        json!({"matchLabels": {"app": "nginx"}})
    );
    let service = find(&objects, "Service", "nginx");
    assert_eq!(service["spec"]["selector"], json!({"app": "nginx"}));
}

#[test]
fn nginx_rt_objects_are_never_rw() {
    let Some(objects) = render(&format!("{GITOPS}/apps/nginx/nginx-rt")) else {
        return;
    };
    find(&objects, "ConfigMap", "nginx-conf");
    find(&objects, "Namespace", "nginx");
    for object in &objects {
        assert_ne!(
            labels(object).get("fluxgate.io/mode").map(String::as_str),
            Some("rw"),
            "{}",
            describe(object)
        );
    }
    // The Deployment mounts this ConfigMap.
    let rw = render(&format!("{GITOPS}/apps/nginx/nginx-rw")).unwrap();
    let volumes = &find(&rw, "Deployment", "nginx")["spec"]["template"]["spec"]["volumes"];
    assert_eq!(volumes[0]["configMap"]["name"], "nginx-conf");
}

/// An AdmissionReview of Flux creating `object` (a dry-run, as Flux's first step is).
fn flux_create(object: &Value) -> Vec<u8> {
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap();
    let kind_ref = json!({"group": group, "version": version, "kind": kind});
    let plural = format!("{}s", kind.to_lowercase());
    let resource = json!({"group": group, "version": version, "resource": plural});
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-000000000001",
            "kind": kind_ref, "requestKind": kind_ref,
            "resource": resource, "requestResource": resource,
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:flux-system:kustomize-controller",
                "groups": [
                    "system:serviceaccounts",
                    "system:serviceaccounts:flux-system",
                    "system:authenticated",
                ],
            },
            "object": object,
            "oldObject": null,
            "dryRun": true,
            "options": {
                "kind": "CreateOptions",
                "apiVersion": "meta.k8s.io/v1",
                "dryRun": ["All"],
                "fieldManager": "kustomize-controller",
            },
        },
    });
    serde_json::to_vec(&review).unwrap()
}

fn review(object: &Value, at: &str) -> Value {
    let output = fluxgate(
        &["review", "--windows", GITOPS_WINDOWS, "--at", at],
        &flux_create(object),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Value>(&output.stdout).unwrap()["response"].clone()
}

#[test]
fn fluxgate_gates_the_rendered_apps_with_the_example_windows() {
    let (Some(rw), Some(rt)) = (
        render(&format!("{CLUSTER}/apps/apps-rw")),
        render(&format!("{CLUSTER}/apps/apps-rt")),
    ) else {
        return;
    };
    for object in &rw {
        let open = review(object, OPEN);
        assert_eq!(
            open["allowed"],
            true,
            "{} while open: {open}",
            describe(object)
        );
        assert_eq!(
            open["auditAnnotations"]["reason"],
            "window-open",
            "{}",
            describe(object)
        );
        let closed = review(object, CLOSED);
        assert_eq!(
            closed["allowed"],
            false,
            "{} while closed: {closed}",
            describe(object)
        );
        assert_eq!(closed["auditAnnotations"]["reason"], "window-closed");
        let message = closed["status"]["message"].as_str().unwrap();
        assert!(
            message.contains(
                "is governed by reconciliation window \"business-hours\", closed until \
                 2026-11-30T08:00:00+01:00 (Europe/Berlin)"
            ),
            "{message}"
        );
    }
    for object in &rt {
        let closed = review(object, CLOSED);
        assert_eq!(
            closed["allowed"],
            true,
            "{} is rt: {closed}",
            describe(object)
        );
        assert_eq!(closed["auditAnnotations"]["reason"], "not-governed");
    }
}

// === the base ===

#[test]
fn the_webhook_gates_only_rw_objects_and_windows_and_fails_closed() {
    let Some(objects) = render("deploy/base") else {
        return;
    };
    let configuration = find(&objects, "ValidatingWebhookConfiguration", "fluxgate");
    let webhooks = configuration["webhooks"].as_array().unwrap();
    let names: Vec<_> = webhooks
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rw.fluxgate.io", "windows.fluxgate.io"]);
    for webhook in webhooks {
        let name = &webhook["name"];
        assert_eq!(webhook["failurePolicy"], "Fail", "{name}");
        assert_eq!(webhook["sideEffects"], "None", "{name}");
        assert_eq!(webhook["matchPolicy"], "Equivalent", "{name}");
        assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]), "{name}");
        // Above fluxgate's own --request-timeout (5s), within the API server's 30s maximum.
        let timeout = webhook["timeoutSeconds"].as_u64().unwrap();
        assert!(
            (6..=30).contains(&timeout),
            "{name}: timeoutSeconds {timeout}"
        );
        assert_eq!(
            webhook["clientConfig"]["service"],
            json!({
                "name": "fluxgate",
                "namespace": "fluxgate-system",
                "path": "/validate",
                "port": 443,
            }),
            "{name}"
        );
        assert!(
            webhook["clientConfig"]["caBundle"].is_string(),
            "{name}: the placeholder to patch"
        );
    }

    let rw = &webhooks[0];
    assert_eq!(
        rw["rules"],
        json!([{
            "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"],
            "operations": ["CREATE", "UPDATE", "DELETE"], "scope": "*",
        }]),
        "every resource, no subresources"
    );
    assert_eq!(
        rw["objectSelector"],
        json!({"matchExpressions": [
            {"key": "fluxgate.io/mode", "operator": "Exists"},
            {"key": "fluxgate.io/mode", "operator": "NotIn", "values": ["rt"]},
        ]}),
        "every mode but rt, typos included"
    );
    let expressions = rw["namespaceSelector"]["matchExpressions"]
        .as_array()
        .unwrap();
    let exclusion = expressions
        .iter()
        .find(|e| e["key"] == "kubernetes.io/metadata.name" && e["operator"] == "NotIn")
        .expect("a namespace exclusion");
    let excluded: BTreeSet<&str> = exclusion["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        excluded.contains("kube-system") && excluded.contains("fluxgate-system"),
        "{excluded:?}"
    );

    let windows = &webhooks[1];
    assert_eq!(
        windows["rules"],
        json!([{
            "apiGroups": ["fluxgate.io"], "apiVersions": ["v1alpha1"],
            "resources": ["reconciliationwindows"], "operations": ["CREATE", "UPDATE"],
            "scope": "Cluster",
        }])
    );
    assert!(
        windows["objectSelector"].is_null() && windows["matchConditions"].is_null(),
        "every window is validated, whoever writes it"
    );
}

#[test]
fn the_deployment_is_highly_available_hardened_and_its_flags_parse() {
    let Some(objects) = render("deploy/base") else {
        return;
    };
    let deployment = find(&objects, "Deployment", "fluxgate");
    assert_eq!(deployment["metadata"]["namespace"], "fluxgate-system");
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert!(!pod["affinity"]["podAntiAffinity"].is_null());
    // Longer than --shutdown-delay (5s) + --drain-timeout (20s).
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() > 25);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );

    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.example.com/fluxgate:0.1.0");
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "https", "scheme": "HTTPS"})
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "https", "scheme": "HTTPS"})
    );
    assert_eq!(container["resources"]["limits"]["memory"], "128Mi");

    // The flags are real flags of `fluxgate serve` (clap rejects an unknown one before --help).
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for flag in [
        "--windows-from-cluster",
        "--events",
        "--log-format=json",
        "--addr=0.0.0.0:8443",
    ] {
        assert!(args.contains(&flag), "{flag} in {args:?}");
    }
    let mut serve = vec!["serve"];
    serve.extend(&args);
    serve.push("--help");
    let output = fluxgate(&serve, b"");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The certificate flags point into the mounted Secret fluxgate-tls.
    let mount = &container["volumeMounts"][0];
    let dir = mount["mountPath"].as_str().unwrap();
    assert!(
        args.contains(&format!("--tls-cert={dir}/tls.crt").as_str()),
        "{args:?}"
    );
    assert!(
        args.contains(&format!("--tls-key={dir}/tls.key").as_str()),
        "{args:?}"
    );
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(volume["secret"]["secretName"], "fluxgate-tls");

    let pdb = find(&objects, "PodDisruptionBudget", "fluxgate");
    assert_eq!(pdb["spec"]["selector"], deployment["spec"]["selector"]);
    let service = find(&objects, "Service", "fluxgate");
    let ports = service["spec"]["ports"].as_array().unwrap();
    assert!(ports.contains(
        &json!({"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"})
    ));
    assert!(ports.contains(
        &json!({"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"})
    ));
}

#[test]
fn rbac_is_least_privilege() {
    let Some(objects) = render("deploy/base") else {
        return;
    };
    let role = find(&objects, "ClusterRole", "fluxgate");
    assert_eq!(
        role["rules"],
        json!([
            {
                "apiGroups": ["fluxgate.io"],
                "resources": ["reconciliationwindows"],
                "verbs": ["get", "list", "watch"],
            },
            {
                "apiGroups": ["fluxgate.io"],
                "resources": ["reconciliationwindows/status"],
                "verbs": ["patch"],
            },
            {
                "apiGroups": ["kustomize.toolkit.fluxcd.io"],
                "resources": ["kustomizations"],
                "verbs": ["get", "list", "watch", "patch"],
            },
            {
                "apiGroups": ["helm.toolkit.fluxcd.io"],
                "resources": ["helmreleases"],
                "verbs": ["get", "list", "watch", "patch"],
            },
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ])
    );
    let binding = find(&objects, "ClusterRoleBinding", "fluxgate");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "fluxgate", "namespace": "fluxgate-system"}])
    );
    // Calendars by configMapRef: the ConfigMaps of fluxgate's own namespace, read only.
    let calendars = find(&objects, "Role", "fluxgate-calendars");
    assert_eq!(calendars["metadata"]["namespace"], "fluxgate-system");
    assert_eq!(
        calendars["rules"],
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}])
    );
    let binding = find(&objects, "RoleBinding", "fluxgate-calendars");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "fluxgate", "namespace": "fluxgate-system"}])
    );
    let roles = objects
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
        .count();
    assert_eq!(roles, 2, "no other role");
}

#[test]
fn the_cert_manager_overlay_issues_the_mounted_secret_and_injects_its_ca() {
    let Some(objects) = render("deploy/overlays/cert-manager") else {
        return;
    };
    let certificate = find(&objects, "Certificate", "fluxgate");
    assert_eq!(
        certificate["spec"]["secretName"], "fluxgate-tls",
        "the Secret the Deployment mounts"
    );
    assert_eq!(
        certificate["spec"]["dnsNames"],
        json!([
            "fluxgate.fluxgate-system.svc",
            "fluxgate.fluxgate-system.svc.cluster.local"
        ])
    );
    let issuer = &certificate["spec"]["issuerRef"]["name"];
    let ca_issuer = find(&objects, "Issuer", issuer.as_str().unwrap());
    let ca = find(&objects, "Certificate", "fluxgate-ca");
    assert_eq!(ca["spec"]["isCA"], true);
    assert_eq!(
        ca_issuer["spec"]["ca"]["secretName"],
        ca["spec"]["secretName"]
    );

    let configuration = find(&objects, "ValidatingWebhookConfiguration", "fluxgate");
    assert_eq!(
        configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!(
            "{}/fluxgate",
            certificate["metadata"]["namespace"].as_str().unwrap()
        )
    );
    for webhook in configuration["webhooks"].as_array().unwrap() {
        // cainjector owns caBundle: a manifest value would be re-applied over the injected one.
        assert!(
            webhook["clientConfig"]["caBundle"].is_null(),
            "{}",
            webhook["name"]
        );
    }
}

// === Flux ===

fn flux_kustomizations() -> BTreeMap<String, Value> {
    let mut files = Vec::new();
    yaml_files(&path(&format!("{CLUSTER}/flux")), &mut files);
    files
        .iter()
        .flat_map(|f| documents(&std::fs::read_to_string(f).unwrap()))
        .filter(|o| o["kind"] == "Kustomization")
        .map(|o| (o["metadata"]["name"].as_str().unwrap().to_string(), o))
        .collect()
}

fn depends_on(kustomization: &Value) -> Vec<String> {
    kustomization["spec"]["dependsOn"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|d| d["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Every Kustomization `name` depends on, directly or not.
fn dependencies(all: &BTreeMap<String, Value>, name: &str, seen: &mut BTreeSet<String>) {
    for dependency in depends_on(&all[name]) {
        assert!(
            all.contains_key(&dependency),
            "{name} depends on unknown {dependency}"
        );
        assert_ne!(dependency, name, "{name} depends on itself");
        if seen.insert(dependency.clone()) {
            dependencies(all, &dependency, seen);
        }
    }
}

#[test]
fn the_flux_kustomizations_point_at_real_paths_in_a_safe_order() {
    let all = flux_kustomizations();
    let names: Vec<_> = all.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["apps-rt", "apps-rw", "infra", "reconciliation-windows"]
    );
    for (name, kustomization) in &all {
        assert_eq!(
            kustomization["apiVersion"], "kustomize.toolkit.fluxcd.io/v1",
            "{name}"
        );
        assert_eq!(kustomization["spec"]["prune"], true, "{name}");
        // Flux resolves spec.path from the root of the Git repository: this one.
        let relative = kustomization["spec"]["path"].as_str().unwrap();
        let dir = path(relative.strip_prefix("./").expect("path starts with ./"));
        assert!(
            dir.join("kustomization.yaml").is_file(),
            "{name}: {relative} has no kustomization.yaml"
        );
        let mut seen = BTreeSet::new();
        dependencies(&all, name, &mut seen);
        assert!(
            !seen.contains(name),
            "{name} depends on itself through {seen:?}"
        );
    }
    assert_eq!(
        all["infra"]["spec"]["wait"], true,
        "apps wait until the webhook answers"
    );
    let mut rw = BTreeSet::new();
    dependencies(&all, "apps-rw", &mut rw);
    for needed in ["infra", "reconciliation-windows", "apps-rt"] {
        assert!(
            rw.contains(needed),
            "apps-rw must wait for {needed}: rw objects applied first would be ungated"
        );
    }
    assert!(
        depends_on(&all["apps-rt"]).is_empty(),
        "rt changes never wait for fluxgate"
    );
}

#[test]
fn nothing_that_installs_fluxgate_is_gated_by_fluxgate() {
    // Flux dry-runs a Kustomization as a whole: an object gated by fluxgate inside the
    // Kustomization that installs it would block the repair of a broken fluxgate.
    let infra = &flux_kustomizations()["infra"];
    let relative = infra["spec"]["path"]
        .as_str()
        .unwrap()
        .strip_prefix("./")
        .unwrap()
        .to_string();
    let Some(objects) = render(&relative) else {
        return;
    };
    find(&objects, "Deployment", "fluxgate");
    for object in &objects {
        assert_ne!(
            object["kind"], "ReconciliationWindow",
            "windows belong to another Kustomization"
        );
        assert_ne!(
            labels(object).get("fluxgate.io/mode").map(String::as_str),
            Some("rw"),
            "{}",
            describe(object)
        );
    }
}

// === schema ===

/// `object` deserialized into its k8s-openapi type and serialized back: a misspelt or unknown
/// field (which kubectl would reject, or worse, drop) does not come back.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(object: &Value) -> Value {
    let typed: T = serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("{}: {e}", describe(object)));
    serde_json::to_value(typed).unwrap()
}

const CA_BUNDLE_PLACEHOLDER: &str = "REPLACE_ME_WITH_THE_caBundle_PRINTED_BY_fluxgate_certs";

/// The base's caBundle placeholder is not base64 on purpose, so that an unpatched base fails to
/// apply: check that it does, then stand in a valid value.
fn patch_placeholder_ca_bundles(configuration: &mut Value) {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    let placeholders = configuration["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["clientConfig"]["caBundle"] == CA_BUNDLE_PLACEHOLDER)
        .count();
    if placeholders == 0 {
        return;
    }
    assert!(
        serde_json::from_value::<ValidatingWebhookConfiguration>(configuration.clone()).is_err(),
        "the caBundle placeholder must not decode"
    );
    for webhook in configuration["webhooks"].as_array_mut().unwrap() {
        if webhook["clientConfig"]["caBundle"] == CA_BUNDLE_PLACEHOLDER {
            webhook["clientConfig"]["caBundle"] = json!("Cg==");
        }
    }
}

#[test]
fn every_rendered_kubernetes_object_matches_its_api_schema() {
    use k8s_openapi::api::{admissionregistration, apps, core, policy, rbac};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
    let Some(rendered) = render_every_kustomization() else {
        return;
    };
    let mut checked = BTreeSet::new();
    for (dir, yaml) in &rendered {
        for mut object in documents(yaml) {
            let kind = object["kind"].as_str().unwrap().to_string();
            if kind == "ValidatingWebhookConfiguration" {
                patch_placeholder_ca_bundles(&mut object);
            }
            let again = match (object["apiVersion"].as_str().unwrap(), kind.as_str()) {
                ("v1", "Namespace") => round_trip::<core::v1::Namespace>(&object),
                ("v1", "ServiceAccount") => round_trip::<core::v1::ServiceAccount>(&object),
                ("v1", "Service") => round_trip::<core::v1::Service>(&object),
                ("v1", "ConfigMap") => round_trip::<core::v1::ConfigMap>(&object),
                ("v1", "ResourceQuota") => round_trip::<core::v1::ResourceQuota>(&object),
                ("apps/v1", "Deployment") => round_trip::<apps::v1::Deployment>(&object),
                ("policy/v1", "PodDisruptionBudget") => {
                    round_trip::<policy::v1::PodDisruptionBudget>(&object)
                }
                ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                    round_trip::<rbac::v1::ClusterRole>(&object)
                }
                ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                    round_trip::<rbac::v1::ClusterRoleBinding>(&object)
                }
                ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<rbac::v1::Role>(&object),
                ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                    round_trip::<rbac::v1::RoleBinding>(&object)
                }
                ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
                    round_trip::<admissionregistration::v1::ValidatingWebhookConfiguration>(&object)
                }
                ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                    round_trip::<apiextensions::v1::CustomResourceDefinition>(&object)
                }
                ("networking.k8s.io/v1", "NetworkPolicy") => {
                    round_trip::<k8s_openapi::api::networking::v1::NetworkPolicy>(&object)
                }
                // cert-manager, Flux, fluxgate and Prometheus Operator kinds: checked by the
                // tests above and below.
                (api_version, _) => {
                    assert!(
                        [
                            "cert-manager.io/v1",
                            "fluxgate.io/v1alpha1",
                            "monitoring.coreos.com/v1",
                        ]
                        .contains(&api_version),
                        "{} ({api_version}) has no schema check",
                        describe(&object)
                    );
                    continue;
                }
            };
            assert_eq!(again, object, "{} in {}", describe(&object), dir.display());
            checked.insert(kind);
        }
    }
    assert!(checked.len() >= 10, "{checked:?}");
}

#[test]
fn fluxgate_lint_finds_nothing_in_what_each_flux_kustomization_applies() {
    if !kubectl_available() {
        eprintln!("skipping: kubectl not found");
        return;
    }
    for (name, kustomization) in flux_kustomizations() {
        let relative = kustomization["spec"]["path"].as_str().unwrap();
        let yaml = try_kustomize(&path(relative.strip_prefix("./").unwrap())).unwrap();
        let output = fluxgate(
            &["lint", "--windows", GITOPS_WINDOWS, "--at", CLOSED],
            yaml.as_bytes(),
        );
        assert!(
            output.status.success(),
            "fluxgate lint on {name} ({relative}):\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

// === the webhook's scope: what the API server sends ===
//
// The API server decides by itself which requests reach fluxgate: rules, namespaceSelector,
// objectSelector, then matchConditions (CEL). These tests evaluate the rendered configuration
// the way it does and compare what it would send with what fluxgate's policy needs: a request
// not sent is admitted without fluxgate, so it must be one fluxgate admits anyway (not Flux,
// or not governed); a request sent must be one whose answer depends on fluxgate.

/// The root variables the API server declares for a webhook's matchConditions.
const CEL_VARIABLES: [&str; 4] = ["object", "oldObject", "request", "authorizer"];
/// The fields of the `request` variable (admission.k8s.io/v1 AdmissionRequest without `uid`,
/// `object` and `oldObject`), as the API server declares its type; `options` is dynamic.
const REQUEST_FIELDS: [&str; 12] = [
    "kind",
    "resource",
    "subResource",
    "requestKind",
    "requestResource",
    "requestSubResource",
    "name",
    "namespace",
    "operation",
    "userInfo",
    "dryRun",
    "options",
];
const USER_INFO_FIELDS: [&str; 4] = ["username", "uid", "groups", "extra"];

/// The CEL environment: the standard library and macros, without the optional syntax
/// (`a.?b`), which the API servers this supports (1.28+) do not all accept.
fn cel_env() -> Arc<cel::Env> {
    Arc::new(cel::Env::stdlib().with_optional_support(false))
}

/// `a.b.c` as ["a", "b", "c"] (a `has()` test included), or None for anything else.
fn select_path(expr: &cel::IdedExpr) -> Option<Vec<&str>> {
    use cel::common::ast::Expr;
    match &expr.expr {
        Expr::Ident(name) => Some(vec![name.as_str()]),
        Expr::Select(select) => {
            let mut path = select_path(&select.operand)?;
            path.push(select.field.as_str());
            Some(path)
        }
        _ => None,
    }
}

/// What the API server's type check would reject that evaluation on a few requests might not
/// reach: unknown variables and unknown fields of `request`. Collects the string literals too.
fn check_declarations(
    expr: &cel::IdedExpr,
    bound: &mut Vec<String>,
    problems: &mut Vec<String>,
    literals: &mut BTreeSet<String>,
) {
    use cel::common::ast::{EntryExpr, Expr, LiteralValue};
    match &expr.expr {
        Expr::Ident(name) => {
            if !bound.contains(name) && !CEL_VARIABLES.contains(&name.as_str()) {
                problems.push(format!("unknown variable {name}"));
            }
        }
        Expr::Select(select) => {
            if let Some(path) = select_path(expr)
                && path[0] == "request"
                && !bound.iter().any(|b| b == "request")
            {
                let known = match path.as_slice() {
                    [_, field] => REQUEST_FIELDS.contains(field),
                    [_, "userInfo", field, ..] => USER_INFO_FIELDS.contains(field),
                    [_, "kind" | "requestKind", field] => {
                        ["group", "version", "kind"].contains(field)
                    }
                    [_, "resource" | "requestResource", field] => {
                        ["group", "version", "resource"].contains(field)
                    }
                    [_, "options", ..] => true,
                    _ => false,
                };
                if !known {
                    problems.push(format!("{} is not a field of request", path.join(".")));
                }
            }
            check_declarations(&select.operand, bound, problems, literals);
        }
        Expr::Call(call) => {
            for e in call.target.iter().map(|t| &**t).chain(&call.args) {
                check_declarations(e, bound, problems, literals);
            }
        }
        Expr::Comprehension(c) => {
            check_declarations(&c.iter_range, bound, problems, literals);
            let scope = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            for e in [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                check_declarations(e, bound, problems, literals);
            }
            bound.truncate(scope);
        }
        Expr::List(list) => {
            for e in &list.elements {
                check_declarations(e, bound, problems, literals);
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(entry) = &entry.expr {
                    check_declarations(&entry.key, bound, problems, literals);
                    check_declarations(&entry.value, bound, problems, literals);
                }
            }
        }
        Expr::Literal(LiteralValue::String(text)) => {
            literals.insert(text.inner().to_owned());
        }
        Expr::Literal(_) => {}
        Expr::Struct(_) | Expr::Unspecified => problems.push("a message literal".into()),
    }
}

/// A webhook's matchConditions, parsed and checked: (name, program) pairs, and every string
/// literal they hold.
fn match_conditions(webhook: &Value) -> (Vec<(String, cel::Program)>, BTreeSet<String>) {
    let env = cel_env();
    let mut programs = Vec::new();
    let mut literals = BTreeSet::new();
    for condition in webhook["matchConditions"].as_array().into_iter().flatten() {
        let name = condition["name"].as_str().unwrap().to_owned();
        let source = condition["expression"].as_str().unwrap();
        let program = env
            .compile(source)
            .unwrap_or_else(|e| panic!("matchCondition {name}: {e}\n{source}"));
        let mut problems = Vec::new();
        check_declarations(
            program.expression(),
            &mut Vec::new(),
            &mut problems,
            &mut literals,
        );
        assert!(problems.is_empty(), "matchCondition {name}: {problems:?}");
        programs.push((name, program));
    }
    (programs, literals)
}

/// All matchConditions on one AdmissionRequest, with the variables the API server binds:
/// Ok(false) when one is false, an error (which failurePolicy Fail turns into a refusal)
/// when one errs and none is false.
fn conditions_hold(conditions: &[(String, cel::Program)], request: &Value) -> Result<bool, String> {
    let mut bound = request.clone();
    let fields = bound.as_object_mut().unwrap();
    let object = fields.remove("object").unwrap_or(Value::Null);
    let old_object = fields.remove("oldObject").unwrap_or(Value::Null);
    fields.remove("uid");
    let mut context = cel::Context::with_env(cel_env());
    context.add_variable("request", &bound).unwrap();
    context.add_variable("object", &object).unwrap();
    context.add_variable("oldObject", &old_object).unwrap();
    let mut error = None;
    for (name, program) in conditions {
        match program.execute(&context) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => return Ok(false),
            Ok(other) => return Err(format!("{name} is {other:?}, not a bool")),
            Err(e) => error = Some(format!("{name}: {e}")),
        }
    }
    error.map_or(Ok(true), Err)
}

/// A Kubernetes label selector (matchLabels, matchExpressions) on a set of labels.
fn selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
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

/// Whether the API server sends `request` to `webhook`: rules (no subresources here),
/// namespaceSelector (namespace labels as the API server sets them), objectSelector (the new
/// object for CREATE, the old one for DELETE, either for UPDATE), then matchConditions.
fn api_server_sends(webhook: &Value, request: &Value) -> Result<bool, String> {
    let operation = request["operation"].as_str().unwrap();
    let kind = &request["kind"];
    let by_rule = webhook["rules"].as_array().unwrap().iter().any(|rule| {
        let has = |list: &str, value: &str| {
            rule[list]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v == "*" || v == value)
        };
        let resource = request["resource"]["resource"].as_str().unwrap();
        has("operations", operation)
            && has("apiGroups", kind["group"].as_str().unwrap())
            && has("apiVersions", kind["version"].as_str().unwrap())
            && has("resources", resource)
    });
    if !by_rule {
        return Ok(false);
    }
    if let Some(namespace) = request["namespace"].as_str().filter(|n| !n.is_empty()) {
        let labels = BTreeMap::from([(
            "kubernetes.io/metadata.name".to_owned(),
            namespace.to_owned(),
        )]);
        if !selector_matches(&webhook["namespaceSelector"], &labels) {
            return Ok(false);
        }
    }
    let objects: &[&str] = match operation {
        "CREATE" => &["object"],
        "DELETE" => &["oldObject"],
        _ => &["object", "oldObject"],
    };
    let by_object = objects
        .iter()
        .any(|o| selector_matches(&webhook["objectSelector"], &labels(&request[*o])));
    if !by_object {
        return Ok(false);
    }
    let (conditions, _) = match_conditions(webhook);
    conditions_hold(&conditions, request)
}

/// Whether fluxgate's answer to `request` depends on fluxgate: anything but "not Flux" and
/// "not governed", which it admits whatever the windows.
fn policy_needs(request: &Value, policy: &fluxgate_core::policy::Policy) -> bool {
    use fluxgate_core::policy::Reason;
    let review =
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
    let body = serde_json::to_vec(&review).unwrap();
    let windows = fluxgate::windows::load_windows(&[]).unwrap();
    let reviewed = fluxgate_core::admission::review(
        &body,
        &windows,
        policy,
        "2026-11-27T12:00:00Z".parse().unwrap(),
    )
    .unwrap_or_else(|e| panic!("{e}: {review}"));
    !matches!(
        reviewed.decision.reason,
        Reason::NotFlux | Reason::NotGoverned
    )
}

fn recorded_reviews() -> Vec<(String, Value)> {
    let mut reviews = Vec::new();
    for entry in std::fs::read_dir(path("tests/fixtures/admission")).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&file).unwrap();
            let review: Value = serde_json::from_str(&text).unwrap();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            reviews.push((name, review["request"].clone()));
        }
    }
    reviews.sort_by(|a, b| a.0.cmp(&b.0));
    reviews
}

fn webhook<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    find(objects, "ValidatingWebhookConfiguration", "fluxgate")["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .unwrap_or_else(|| panic!("no webhook {name}"))
}

#[test]
fn the_recorded_reviews_reach_fluxgate_exactly_when_its_answer_matters() {
    let Some(objects) = render("deploy/base") else {
        return;
    };
    let rw = webhook(&objects, "rw.fluxgate.io");
    let windows = webhook(&objects, "windows.fluxgate.io");
    let policy = deployed_policy(find(&objects, "Deployment", "fluxgate"));
    let mut sent = BTreeMap::new();
    for (name, request) in recorded_reviews() {
        let to_rw = api_server_sends(rw, &request).unwrap_or_else(|e| panic!("{name}: {e}"));
        let to_windows =
            api_server_sends(windows, &request).unwrap_or_else(|e| panic!("{name}: {e}"));
        let is_window = request["kind"]["kind"] == "ReconciliationWindow";
        if !is_window {
            assert_eq!(to_rw, policy_needs(&request, &policy), "{name}");
        }
        sent.insert(name, (to_rw, to_windows));
    }
    let expected = [
        ("flux-create-configmap-rt.json", (false, false)),
        ("flux-create-deployment-rw.json", (true, false)),
        ("flux-create-reconciliationwindow.json", (false, true)),
        ("flux-dryrun-image-bump-deployment.json", (true, false)),
        ("flux-dryrun-unchanged-deployment.json", (true, false)),
        ("flux-prune-deployment.json", (true, false)),
        // A person's patch of an rw object: admitted by policy, so never sent, and a fluxgate
        // outage cannot block it.
        ("human-patch-deployment.json", (false, false)),
    ];
    let expected: BTreeMap<String, (bool, bool)> = expected
        .into_iter()
        .map(|(n, s)| (n.to_owned(), s))
        .collect();
    assert_eq!(sent, expected, "(rw.fluxgate.io, windows.fluxgate.io)");
}

/// The fluxgate.io/mode label of the old and the new object (None: no label).
type ModeChange = (Option<&'static str>, Option<&'static str>);

/// A request like Flux's image bump, varied: `old`/`new` are the fluxgate.io/mode labels of
/// the object versions (None: no label; for CREATE only `new`, for DELETE only `old`).
fn varied_request(
    operation: &str,
    user: Option<&str>,
    groups: Option<&[&str]>,
    options: Option<Value>,
    old: Option<&str>,
    new: Option<&str>,
) -> Value {
    let text = std::fs::read_to_string(path(
        "tests/fixtures/admission/flux-dryrun-image-bump-deployment.json",
    ))
    .unwrap();
    let mut request = serde_json::from_str::<Value>(&text).unwrap()["request"].take();
    request["operation"] = json!(operation);
    match user {
        Some(user) => request["userInfo"]["username"] = json!(user),
        None => drop(
            request["userInfo"]
                .as_object_mut()
                .unwrap()
                .remove("username"),
        ),
    }
    match groups {
        Some(groups) => request["userInfo"]["groups"] = json!(groups),
        None => drop(
            request["userInfo"]
                .as_object_mut()
                .unwrap()
                .remove("groups"),
        ),
    }
    match options {
        Some(options) => request["options"] = options,
        None => drop(request.as_object_mut().unwrap().remove("options")),
    }
    for (key, mode) in [("oldObject", old), ("object", new)] {
        let labels = request[key]["metadata"]["labels"].as_object_mut().unwrap();
        match mode {
            Some(mode) => drop(labels.insert("fluxgate.io/mode".into(), json!(mode))),
            None => drop(labels.remove("fluxgate.io/mode")),
        }
    }
    match operation {
        "CREATE" => request["oldObject"] = Value::Null,
        "DELETE" => request["object"] = Value::Null,
        _ => {}
    }
    request
}

/// Every overlay and example that installs fluxgate: the webhook sends exactly what the
/// policy of its Deployment needs, for every combination of actor, operation and label.
#[test]
fn every_installed_webhook_sends_exactly_what_the_deployed_policy_needs() {
    let Some(rendered) = render_every_kustomization() else {
        return;
    };
    let mut checked = Vec::new();
    for (dir, yaml) in &rendered {
        let objects = documents(yaml);
        let has = |kind, name| {
            objects
                .iter()
                .any(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        };
        if !has("ValidatingWebhookConfiguration", "fluxgate") {
            continue;
        }
        assert!(
            has("Deployment", "fluxgate"),
            "{}: the webhook without the Deployment it must agree with",
            dir.display()
        );
        let rw = webhook(&objects, "rw.fluxgate.io");
        let policy = deployed_policy(find(&objects, "Deployment", "fluxgate"));
        let (_, literals) = match_conditions(rw);

        // Every user, group and field manager either side knows, and some neither does.
        let mut users: BTreeSet<String> = policy.flux_users.iter().cloned().collect();
        users.extend(literals.iter().filter(|l| l.contains(':')).cloned());
        // A service account of the Flux owner's namespace (the fixture's owner is in flux-system)
        // pruning is a tenant's prune; one of another namespace is not.
        users.extend([
            "admin".into(),
            "system:serviceaccount:team-z:default".into(),
            "system:serviceaccount:flux-system:tenant".into(),
        ]);
        let mut groups: BTreeSet<String> = policy.flux_groups.iter().cloned().collect();
        groups.extend(
            literals
                .iter()
                .filter(|l| l.starts_with("system:serviceaccounts"))
                .cloned(),
        );
        let mut managers: BTreeSet<String> = policy.flux_field_managers.iter().cloned().collect();
        managers.extend(literals.iter().filter(|l| !l.contains(':')).cloned());
        managers.extend(["kubectl-edit".into(), "before-first-apply".into()]);

        let mut group_sets: Vec<Vec<&str>> = vec![vec!["system:authenticated"]];
        for group in &groups {
            group_sets.push(vec![group.as_str(), "system:authenticated"]);
        }
        let labels: [(&str, &[ModeChange]); 3] = [
            (
                "CREATE",
                &[
                    (None, None),
                    (None, Some("rt")),
                    (None, Some("rw")),
                    (None, Some("RW")),
                    (None, Some("")),
                ],
            ),
            (
                "DELETE",
                &[
                    (None, None),
                    (Some("rt"), None),
                    (Some("rw"), None),
                    (Some("Rw"), None),
                ],
            ),
            (
                "UPDATE",
                &[
                    (None, None),
                    (Some("rt"), Some("rt")),
                    (Some("rw"), Some("rw")),
                    (Some("rw"), Some("rt")),
                    (Some("rt"), Some("rw")),
                    (None, Some("rw")),
                    (Some("rw"), None),
                    (Some("RW"), Some("RW")),
                ],
            ),
        ];
        let mut cases = 0;
        for (operation, modes) in labels {
            let kind = match operation {
                "CREATE" => "CreateOptions",
                "DELETE" => "DeleteOptions",
                _ => "UpdateOptions",
            };
            let mut option_sets: Vec<Value> = managers
                .iter()
                .map(|m| json!({"kind": kind, "apiVersion": "meta.k8s.io/v1", "fieldManager": m}))
                .collect();
            option_sets.push(json!({"kind": kind, "apiVersion": "meta.k8s.io/v1"}));
            for user in &users {
                for groups in &group_sets {
                    for options in &option_sets {
                        for (old, new) in modes {
                            let request = varied_request(
                                operation,
                                Some(user),
                                Some(groups),
                                Some(options.clone()),
                                *old,
                                *new,
                            );
                            let sends = api_server_sends(rw, &request)
                                .unwrap_or_else(|e| panic!("{}: {e}: {request}", dir.display()));
                            assert_eq!(
                                sends,
                                policy_needs(&request, &policy),
                                "{}: {operation} by {user} {groups:?} with {options} of an object \
                                 labelled {old:?} -> {new:?}: the webhook {} what the policy {}",
                                dir.display(),
                                if sends { "sends" } else { "does not send" },
                                if sends { "admits anyway" } else { "needs" },
                            );
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert!(cases > 300, "{cases}");
        checked.push(dir.strip_prefix(ROOT).unwrap().display().to_string());
    }
    assert!(
        checked.len() >= 3,
        "base, cert-manager, multi-tenant: {checked:?}"
    );
}

#[test]
fn the_match_conditions_never_err_whatever_the_request_lacks() {
    // An error counts as a failure under failurePolicy Fail: it would refuse the request
    // instead of skipping the webhook. The API server may give options as null (no options),
    // and a user without name or groups.
    let Some(objects) = render("deploy/base") else {
        return;
    };
    let (conditions, _) = match_conditions(webhook(&objects, "rw.fluxgate.io"));
    assert!(!conditions.is_empty());
    let flux = "system:serviceaccount:flux-system:kustomize-controller";
    for operation in ["CREATE", "UPDATE", "DELETE"] {
        for options in [
            None,
            Some(Value::Null),
            Some(json!({})),
            Some(json!({"fieldManager": "kubectl-edit"})),
        ] {
            for user in [None, Some("admin"), Some(flux)] {
                for groups in [None, Some(&[][..]), Some(&["system:masters"][..])] {
                    let request = varied_request(
                        operation,
                        user,
                        groups,
                        options.clone(),
                        Some("rw"),
                        Some("rw"),
                    );
                    let held = conditions_hold(&conditions, &request)
                        .unwrap_or_else(|e| panic!("{e}: {request}"));
                    assert_eq!(held, user == Some(flux), "{request}");
                }
            }
        }
    }
}

// === monitoring ===

const MONITORING: &str = "deploy/components/monitoring";

fn promtool_available() -> bool {
    let runs = tool_available("promtool", &["--version"], "Debian's prometheus package");
    if !runs {
        eprintln!("skipping: promtool not found");
    }
    runs
}

fn promtool(args: &[&str], dir: &Path) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The PrometheusRule's groups as a Prometheus rule file, and the rules in it.
fn alert_rules(objects: &[Value]) -> (String, Vec<Value>) {
    let rule = find(objects, "PrometheusRule", "fluxgate");
    let rules = rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect();
    (serde_saphyr::to_string(&rule["spec"]).unwrap(), rules)
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(path(&format!("{MONITORING}/dashboard.json"))).unwrap();
    serde_json::from_str(&text).expect("the dashboard is valid JSON")
}

/// Every PromQL query of the dashboard, with Grafana's variables replaced by values Prometheus
/// reads (`$__rate_interval` by a duration, `$job`/`$window` by regexes).
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let promql = expr
                .replace("$__rate_interval", "2m")
                .replace("$__range", "1h")
                .replace("$job", "fluxgate")
                .replace("$window", ".*");
            assert!(!promql.contains('$'), "an unknown variable in {expr}");
            queries.push((panel["title"].as_str().unwrap().to_owned(), promql));
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["definition"].as_str() {
            // label_values(metric{...}, label): Grafana's function; the selector is PromQL.
            let selector = query
                .strip_prefix("label_values(")
                .and_then(|q| q.rsplit_once(','))
                .map(|(selector, _)| selector.replace("$job", "fluxgate"))
                .unwrap_or_else(|| panic!("unexpected variable query {query}"));
            queries.push((format!("variable {}", variable["name"]), selector));
        }
    }
    queries
}

/// The metric names a PromQL expression reads (fluxgate's own only).
fn fluxgate_metrics(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("fluxgate_") {
        let before = rest[..at].chars().last();
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        // Not inside a label value or another word (e.g. "rw.fluxgate.io").
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            names.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// The sample names of a Prometheus text exposition.
fn exported_samples(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

#[test]
fn the_monitoring_component_scrapes_the_service_and_ships_the_dashboard() {
    let Some(objects) = render("deploy/examples/monitoring") else {
        return;
    };
    let service = find(&objects, "Service", "fluxgate");
    let monitor = find(&objects, "ServiceMonitor", "fluxgate");
    assert!(selector_matches(
        &monitor["spec"]["selector"],
        &labels(service)
    ));
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!([service["metadata"]["namespace"]])
    );
    let ports: Vec<&Value> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    for endpoint in monitor["spec"]["endpoints"].as_array().unwrap() {
        let port = ports
            .iter()
            .find(|p| p["name"] == endpoint["port"])
            .unwrap_or_else(|| panic!("no Service port {}", endpoint["port"]));
        assert_eq!(port["port"], 9090, "the plain-HTTP metrics port");
        assert_eq!(endpoint["path"], "/metrics");
        assert_eq!(endpoint["scheme"], "http");
    }
    // The Deployment serves metrics where the Service points.
    let container =
        &find(&objects, "Deployment", "fluxgate")["spec"]["template"]["spec"]["containers"][0];
    assert!(
        container["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--metrics-addr=0.0.0.0:9090"))
    );

    let configmap = find(&objects, "ConfigMap", "fluxgate-dashboard");
    assert_eq!(configmap["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped: Value =
        serde_json::from_str(configmap["data"]["fluxgate.json"].as_str().unwrap()).unwrap();
    assert_eq!(shipped, dashboard(), "the ConfigMap holds dashboard.json");
    for kind in ["ServiceMonitor", "PrometheusRule", "ConfigMap"] {
        let object = objects.iter().find(|o| o["kind"] == kind).unwrap();
        assert_eq!(object["metadata"]["namespace"], "fluxgate-system", "{kind}");
    }
}

#[test]
fn the_alert_rules_parse_and_fire_as_their_promtool_tests_say() {
    let Some(objects) = render(MONITORING) else {
        return;
    };
    if !promtool_available() {
        return;
    }
    let (rules_file, rules) = alert_rules(&objects);
    assert!(rules.len() >= 9, "{rules:?}");
    let dir = common::Scratch::new("promtool");
    std::fs::write(dir.path("rules.yaml"), rules_file).unwrap();
    std::fs::copy(
        path("tests/fixtures/monitoring/alerts.test.yaml"),
        dir.path("alerts.test.yaml"),
    )
    .unwrap();
    promtool(&["check", "rules", "rules.yaml"], &dir.0);
    promtool(&["test", "rules", "alerts.test.yaml"], &dir.0);

    // Every alert has a unit test.
    let tests =
        std::fs::read_to_string(path("tests/fixtures/monitoring/alerts.test.yaml")).unwrap();
    for rule in &rules {
        let alert = rule["alert"].as_str().unwrap();
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "{alert} has no case in tests/fixtures/monitoring/alerts.test.yaml"
        );
    }
}

#[test]
fn every_alert_has_a_runbook_in_the_deploy_readme() {
    let Some(objects) = render(MONITORING) else {
        return;
    };
    let readme = std::fs::read_to_string(path("deploy/README.md")).unwrap();
    let anchors: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("#### "))
        .map(anchor)
        .collect();
    for rule in alert_rules(&objects).1 {
        let alert = rule["alert"].as_str().unwrap();
        let runbook = rule["annotations"]["runbook"].as_str().unwrap_or_default();
        let target = runbook
            .strip_prefix("deploy/README.md#")
            .unwrap_or_else(|| panic!("{alert}: runbook {runbook:?}"));
        assert_eq!(
            target,
            alert.to_lowercase(),
            "{alert}: the runbook is named after it"
        );
        assert!(
            anchors.contains(target),
            "{alert}: deploy/README.md has no heading \"#### {alert}\""
        );
        for key in ["summary", "description"] {
            assert!(rule["annotations"][key].is_string(), "{alert}: no {key}");
        }
        assert!(
            rule["labels"]["severity"].is_string(),
            "{alert}: no severity"
        );
    }
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_query_only_what_a_running_server_exports() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "fluxgate");
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 14, "{queries:?}");
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{}: the data source variable",
                panel["title"]
            );
        }
    }

    let scratch = common::Scratch::new("dashboard");
    let windows = path(GITOPS_WINDOWS);
    let server = common::Server::start(&scratch, &["--windows", windows.to_str().unwrap()]).await;
    let text = common::plain_get(server.metrics_addr, "/metrics").await;
    let exported = exported_samples(&text);

    let mut read = BTreeSet::new();
    for (panel, query) in &queries {
        let names = fluxgate_metrics(query);
        assert!(
            !names.is_empty(),
            "{panel}: {query} reads no fluxgate metric"
        );
        for name in names {
            assert!(
                exported.contains(&name),
                "{panel}: {name} is not in /metrics:\n{text}"
            );
            read.insert(name);
        }
    }
    // What the issue asks the dashboard to show.
    for name in [
        "fluxgate_admission_requests_total",
        "fluxgate_flux_denials_total",
        "fluxgate_bypasses_total",
        "fluxgate_window_open",
        "fluxgate_admission_duration_seconds_bucket",
        "fluxgate_window_reloads_total",
    ] {
        assert!(read.contains(name), "the dashboard does not show {name}");
    }

    if let Some(objects) = render(MONITORING) {
        for rule in alert_rules(&objects).1 {
            for name in fluxgate_metrics(rule["expr"].as_str().unwrap()) {
                assert!(
                    exported.contains(&name),
                    "alert {}: {name} is not in /metrics",
                    rule["alert"]
                );
            }
        }
    }

    // The queries parse as PromQL: promtool checks them as recording rules.
    if promtool_available() {
        let rules: Vec<Value> = queries
            .iter()
            .enumerate()
            .map(|(i, (_, q))| json!({"record": format!("dashboard:query_{i}"), "expr": q}))
            .collect();
        let file = json!({"groups": [{"name": "dashboard", "rules": rules}]});
        std::fs::write(
            scratch.path("dashboard-rules.yaml"),
            serde_saphyr::to_string(&file).unwrap(),
        )
        .unwrap();
        promtool(&["check", "rules", "dashboard-rules.yaml"], &scratch.0);
    }
}

/// The NetworkPolicy overlay admits the webhook port and the metrics port of fluxgate's pods
/// only, and the base says it accepts unverified callers (it runs without --client-ca).
#[test]
fn the_network_policy_overlay_guards_both_ports_of_the_fluxgate_pods() {
    let Some(objects) = render("deploy/overlays/network-policy") else {
        return;
    };
    let policy = find(&objects, "NetworkPolicy", "fluxgate");
    let deployment = find(&objects, "Deployment", "fluxgate");
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let ports: Vec<u64> = policy["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["ports"][0]["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [8443, 9090]);
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    assert!(
        env.iter()
            .any(|e| e["name"] == "FLUXGATE_ACCEPT_UNVERIFIED_CALLERS" && e["value"] == "true")
    );
}
