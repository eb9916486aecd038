//! The base that installs fluxgate and its overlays keep its safety promises: the webhook
//! gates only rw objects and windows and fails closed, the Deployment is highly available and
//! hardened, RBAC is least privilege, cert-manager issues the mounted Secret, and the
//! NetworkPolicy guards both ports.
//!
//! Rendering uses `kubectl kustomize` (offline): see tests/common/deploy.rs for what happens
//! without it.

mod common;

use common::deploy::*;
use serde_json::json;
use std::collections::BTreeSet;

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
