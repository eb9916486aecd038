//! The manifests under `deploy/`: they build, they match the code, and they keep fluxgate's
//! safety promises (webhook scope, labels, RBAC, Flux ordering).
//!
//! Rendering uses `kubectl kustomize` (offline). Tests that need it print
//! "skipping: kubectl not found" and pass when it is not on PATH.

use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `kubectl kustomize <dir>`, or None (after saying so) when kubectl is not installed.
fn try_kustomize(dir: &Path) -> Option<String> {
    if !kubectl_available() {
        eprintln!("skipping: kubectl not found");
        return None;
    }
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl kustomize");
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).expect("kustomize output is UTF-8"))
}

/// The documents of a multi-document YAML stream, as JSON values (empty documents dropped).
fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).expect("valid YAML"))
        .filter(|value| !value.is_null())
        .collect()
}

/// The rendered objects of a kustomization, or None when kubectl is not installed.
fn render(relative: &str) -> Option<Vec<Value>> {
    try_kustomize(&path(relative)).map(|yaml| documents(&yaml))
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

/// Every directory under `dir` (recursively, hidden ones skipped) holding a kustomization.yaml.
fn kustomization_dirs(dir: &Path, found: &mut Vec<PathBuf>) {
    if dir.join("kustomization.yaml").is_file() {
        found.push(dir.to_path_buf());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for entry in entries {
        let hidden = entry
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if entry.is_dir() && !hidden {
            kustomization_dirs(&entry, found);
        }
    }
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
    if !kubectl_available() {
        eprintln!("skipping: kubectl not found");
        return;
    }
    let mut dirs = Vec::new();
    kustomization_dirs(&path("deploy"), &mut dirs);
    assert!(
        dirs.len() >= 8,
        "expected the base, the overlay and the example: {dirs:?}"
    );
    for dir in &dirs {
        let yaml = try_kustomize(dir).unwrap();
        assert!(
            !documents(&yaml).is_empty(),
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
    let committed = std::fs::read(path("deploy/base/crd.yaml")).unwrap();
    assert!(
        output.stdout == committed,
        "deploy/base/crd.yaml differs from what the Rust types generate: regenerate it with \
         `cargo run -- crd > deploy/base/crd.yaml` and commit the result"
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
        let windows = fluxgate::load::load_windows(std::slice::from_ref(file))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(windows.len(), windows_in_file, "{}", file.display());
    }
    assert!(
        with_windows >= 2,
        "the example windows and the GitOps example's"
    );

    // Whole folders, as `--windows` reads them (non-window documents ignored).
    for folder in [GITOPS, GITOPS_WINDOWS, "deploy/examples/windows.yaml"] {
        fluxgate::load::load_windows(&[path(folder)]).unwrap_or_else(|e| panic!("{folder}: {e}"));
    }
    let gitops = fluxgate::load::load_windows(&[path(GITOPS)]).unwrap();
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
    if !kubectl_available() {
        eprintln!("skipping: kubectl not found");
        return;
    }
    let mut dirs = Vec::new();
    kustomization_dirs(&path("deploy"), &mut dirs);
    let mut rendered_windows = 0;
    for dir in &dirs {
        let yaml = try_kustomize(dir).unwrap();
        let count = documents(&yaml)
            .iter()
            .filter(|o| o["kind"] == "ReconciliationWindow")
            .count();
        if count == 0 {
            continue;
        }
        rendered_windows += count;
        let windows = fluxgate::window::WindowSet::from_yaml(&dir.display().to_string(), &yaml)
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
            {"key": "fluxgate.io/mode", "operator": "In", "values": ["rw"]},
        ]})
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
        windows["objectSelector"].is_null(),
        "every window is validated"
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
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ])
    );
    let binding = find(&objects, "ClusterRoleBinding", "fluxgate");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "fluxgate", "namespace": "fluxgate-system"}])
    );
    let roles = objects
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
        .count();
    assert_eq!(roles, 1, "no other role");
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
    if !kubectl_available() {
        eprintln!("skipping: kubectl not found");
        return;
    }
    let mut dirs = Vec::new();
    kustomization_dirs(&path("deploy"), &mut dirs);
    let mut checked = BTreeSet::new();
    for dir in &dirs {
        for mut object in documents(&try_kustomize(dir).unwrap()) {
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
                ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
                    round_trip::<admissionregistration::v1::ValidatingWebhookConfiguration>(&object)
                }
                ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                    round_trip::<apiextensions::v1::CustomResourceDefinition>(&object)
                }
                // cert-manager, Flux and fluxgate kinds: checked by the tests above.
                (api_version, _) => {
                    assert!(
                        ["cert-manager.io/v1", "fluxgate.io/v1alpha1"].contains(&api_version),
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
