//! The monitoring component: its alerts pass promtool and their unit tests, each has a runbook,
//! and its dashboard queries only what a running server exports.
//!
//! Rendering uses `kubectl kustomize` (offline), the alert checks `promtool`: tests that need
//! them print "skipping: … not found" and pass when they are not on PATH, except in CI (`CI`
//! set), where they fail: `.ci/run` installs both.

mod common;

use common::deploy::*;
use common::{anchor, tool_available};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

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
