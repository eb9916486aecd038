//! The webhook configuration sends exactly what the policy needs, evaluated as the API server
//! does: rules, selectors, and the matchConditions' CEL with the `cel` crate.
//!
//! Rendering uses `kubectl kustomize` (offline): see tests/common/deploy.rs for what happens
//! without it.

mod common;

use common::deploy::*;
use common::{deployed_policy, documents};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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

/// Whether the API server sends `request` to `webhook`: rules (no subresources here),
/// namespaceSelector (namespace labels as the API server sets them), objectSelector (the new
/// object for CREATE, the old one for DELETE, either for UPDATE), then matchConditions (the
/// webhook's, compiled once by [`match_conditions`]).
fn api_server_sends(
    webhook: &Value,
    conditions: &[(String, cel::Program)],
    request: &Value,
) -> Result<bool, String> {
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
    conditions_hold(conditions, request)
}

/// Whether fluxgate's answer to `request` depends on fluxgate: anything but "not Flux" and
/// "not governed", which it admits whatever the windows.
fn policy_needs(request: &Value, policy: &fluxgate_core::policy::Policy) -> bool {
    use fluxgate_core::policy::Reason;
    let review =
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
    let body = serde_json::to_vec(&review).unwrap();
    // The embedded windows, parsed once: this runs for thousands of requests.
    static WINDOWS: std::sync::OnceLock<fluxgate_core::window::WindowSet> =
        std::sync::OnceLock::new();
    let windows = WINDOWS.get_or_init(|| fluxgate::windows::load_windows(&[]).unwrap());
    let reviewed = fluxgate_core::admission::review(
        &body,
        windows,
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
    let (rw_conditions, _) = match_conditions(rw);
    let (windows_conditions, _) = match_conditions(windows);
    let mut sent = BTreeMap::new();
    for (name, request) in recorded_reviews() {
        let to_rw = api_server_sends(rw, &rw_conditions, &request)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let to_windows = api_server_sends(windows, &windows_conditions, &request)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
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
    static RECORDED: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let mut request = RECORDED
        .get_or_init(|| {
            let text = std::fs::read_to_string(path(
                "tests/fixtures/admission/flux-dryrun-image-bump-deployment.json",
            ))
            .unwrap();
            serde_json::from_str::<Value>(&text).unwrap()["request"].take()
        })
        .clone();
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
        let (conditions, literals) = match_conditions(rw);

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
                            let sends = api_server_sends(rw, &conditions, &request)
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
