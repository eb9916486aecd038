//! A fake Kubernetes API server for what fluxgate's cluster shell does: list and watch
//! collections, server-side apply of `/status`, JSON merge patches, and Events (create, patch,
//! 409 on a name taken). It speaks the API's shapes (lists with `resourceVersion`, watch events
//! as JSON lines, `Status` errors) and, like the real one, a patch that changes nothing bumps no
//! `resourceVersion` and sends no watch event.
//!
//! Where the real API server refuses, so does the fake: an Event name that is no DNS
//! subdomain, a change of an Event's `note` (immutable), a patch whose `resourceVersion`
//! precondition no longer holds (409).
//!
//! ReconciliationFreezes go through a validating webhook, as the real API server sends them to
//! fluxgate's (`with_webhook`): the CREATE or DELETE becomes an AdmissionReview shaped as the
//! recorded one (`tests/fixtures/admission/flux-create-reconciliationwindow.json`), with the
//! user the bearer token names, and a denial is the API server's 403 with the webhook's
//! message. A created object gets a `uid` and `creationTimestamp` first, as the real API
//! server gives them before validating admission runs.
//!
//! Served in memory (`client()`: a kube `Client` whose transport is the router, so tests can
//! pause time) or on a socket (`serve()`, for the binary).

#![allow(dead_code)]

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// One write the fake received.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
    /// The object changed (a no-op patch does not).
    pub changed: bool,
}

impl Call {
    pub fn field_manager(&self) -> Option<&str> {
        self.query
            .split('&')
            .find_map(|p| p.strip_prefix("fieldManager="))
    }
}

#[derive(Default)]
struct Store {
    /// `group/version/plural` → (namespace, name) → object.
    collections: BTreeMap<String, BTreeMap<(String, String), Value>>,
    watchers: Vec<(String, mpsc::UnboundedSender<Value>)>,
    /// Every watch event sent, with the `resourceVersion` it was sent at: a watch from a
    /// list's `resourceVersion` is sent what happened since, as the real API server does.
    history: Vec<(u64, String, Value)>,
    resource_version: u64,
    calls: Vec<Call>,
    /// Collections the caller has no RBAC to read: every GET of them is the API server's 403.
    forbidden: std::collections::BTreeSet<String>,
}

#[derive(Clone, Default)]
pub struct Fake {
    store: Arc<Mutex<Store>>,
    /// Notified after every write.
    pub wrote: Arc<Notify>,
    /// fluxgate's `/validate`, called for every ReconciliationFreeze CREATE and DELETE.
    webhook: Arc<Mutex<Option<Router>>>,
}

/// `kind` of the objects of a collection, for list responses.
fn list_kind(plural: &str) -> &'static str {
    match plural {
        "reconciliationwindows" => "ReconciliationWindowList",
        "reconciliationfreezes" => "ReconciliationFreezeList",
        "kustomizations" => "KustomizationList",
        "helmreleases" => "HelmReleaseList",
        "events" => "EventList",
        "configmaps" => "ConfigMapList",
        _ => "List",
    }
}

/// The collection path and (namespace, name) of an object.
fn locate(object: &Value) -> (String, (String, String)) {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let plural = match object["kind"].as_str().unwrap_or_default() {
        "ReconciliationWindow" => "reconciliationwindows",
        "ReconciliationFreeze" => "reconciliationfreezes",
        "Kustomization" => "kustomizations",
        "HelmRelease" => "helmreleases",
        "Event" => "events",
        "ConfigMap" => "configmaps",
        other => panic!("the fake does not know kind {other}"),
    };
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (format!("{api_version}/{plural}"), (namespace, name))
}

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            let map = target.as_object_mut().unwrap();
            for (key, value) in fields {
                if value.is_null() {
                    map.remove(key);
                } else {
                    merge(map.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// What Kubernetes accepts as most objects' names.
fn is_dns_subdomain(name: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && alnum(bytes[0])
                && alnum(bytes[bytes.len() - 1])
                && bytes.iter().all(|&b| alnum(b) || b == b'-')
        })
}

fn status(code: u16, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

/// The API server's answer to a request RBAC does not allow, byte for byte the shape
/// kube-apiserver writes (`metav1.Status` with `details.kind` the resource), e.g. `configmaps
/// is forbidden: User "system:serviceaccount:fluxgate-system:fluxgate" cannot list resource
/// "configmaps" in API group "" in the namespace "fluxgate-system"`.
fn rbac_forbidden(
    user: &str,
    verb: &str,
    group_version: &str,
    plural: &str,
    namespace: &str,
) -> Response {
    let group = group_version.rsplit_once('/').map_or("", |(g, _)| g);
    let scope = if namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace \"{namespace}\"")
    };
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!(
            "{plural} is forbidden: User \"{user}\" cannot {verb} resource \"{plural}\" in API \
             group \"{group}\" {scope}"
        ),
        "reason": "Forbidden",
        "details": {"kind": plural},
        "code": 403,
    });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// The AdmissionReview the API server sends for a ReconciliationFreeze `operation` by `user`.
fn freeze_review(
    operation: &str,
    user: &str,
    field_manager: Option<&str>,
    object: &Value,
    old: &Value,
) -> Value {
    let mut review: Value = serde_json::from_str(include_str!(
        "../fixtures/admission/flux-create-reconciliationwindow.json"
    ))
    .unwrap();
    let request = &mut review["request"];
    for key in ["kind", "requestKind"] {
        request[key]["kind"] = json!("ReconciliationFreeze");
    }
    for key in ["resource", "requestResource"] {
        request[key]["resource"] = json!("reconciliationfreezes");
    }
    let name = if object.is_null() { old } else { object }["metadata"]["name"].clone();
    request["uid"] = json!(format!(
        "review-{operation}-{}",
        name.as_str().unwrap_or_default()
    ));
    request["name"] = name;
    request["operation"] = json!(operation);
    request["userInfo"] = json!({"username": user, "groups": ["system:authenticated"]});
    request["options"] = match operation {
        "DELETE" => json!({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions"}),
        _ => {
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": field_manager})
        }
    };
    request["object"] = object.clone();
    request["oldObject"] = old.clone();
    review
}

impl Fake {
    /// Sends every ReconciliationFreeze CREATE and DELETE to `webhook` (fluxgate's router) first.
    pub fn with_webhook(&self, webhook: Router) {
        *self.webhook.lock().unwrap() = Some(webhook);
    }

    /// What the webhook says of a freeze change: `None` admits (or no webhook).
    async fn admit(&self, review: Value) -> Option<Response> {
        use tower::ServiceExt;
        let webhook = self.webhook.lock().unwrap().clone()?;
        let request = axum::http::Request::post("/validate")
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&review).unwrap()))
            .unwrap();
        let response = webhook.oneshot(request).await.unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let answer: Value = match serde_json::from_slice(&bytes) {
            Ok(answer) => answer,
            Err(_) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                return Some(status(
                    500,
                    "InternalError",
                    format!("failed calling webhook: {text}"),
                ));
            }
        };
        if answer["response"]["allowed"] == true {
            return None;
        }
        let message = answer["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default();
        Some(status(
            403,
            "Forbidden",
            format!("admission webhook \"windows.fluxgate.io\" denied the request: {message}"),
        ))
    }

    /// Refuses every read (get, list, watch) of `collection` (`v1/configmaps`) as the API
    /// server does without RBAC for it: 403 Forbidden, its Status naming the user and verb.
    pub fn forbid(&self, collection: &str) {
        self.store
            .lock()
            .unwrap()
            .forbidden
            .insert(collection.to_owned());
    }

    /// Adds (or replaces) an object, as if created by someone else; watchers see it.
    pub fn put(&self, mut object: Value) {
        let (collection, key) = locate(&object);
        let mut store = self.store.lock().unwrap();
        store.resource_version += 1;
        let rv = store.resource_version.to_string();
        object["metadata"]["resourceVersion"] = json!(rv);
        let existed = store
            .collections
            .entry(collection.clone())
            .or_default()
            .insert(key, object.clone())
            .is_some();
        let kind = if existed { "MODIFIED" } else { "ADDED" };
        Self::broadcast(&mut store, &collection, kind, &object);
    }

    /// Removes an object, as the API server's TTL does with Events; watchers see it.
    pub fn delete(&self, collection: &str, namespace: &str, name: &str) {
        let mut store = self.store.lock().unwrap();
        let key = (namespace.to_owned(), name.to_owned());
        let removed = store
            .collections
            .get_mut(collection)
            .and_then(|c| c.remove(&key));
        if let Some(mut object) = removed {
            store.resource_version += 1;
            object["metadata"]["resourceVersion"] = json!(store.resource_version.to_string());
            Fake::broadcast(&mut store, collection, "DELETED", &object);
        }
    }

    /// The object as the API holds it now.
    pub fn get(&self, collection: &str, namespace: &str, name: &str) -> Option<Value> {
        let store = self.store.lock().unwrap();
        store
            .collections
            .get(collection)?
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Every object of a collection.
    pub fn all(&self, collection: &str) -> Vec<Value> {
        let store = self.store.lock().unwrap();
        store
            .collections
            .get(collection)
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How many watches of `collection` are open (a watch opened from a list's
    /// `resourceVersion` is first sent what happened since the list, as the real API server
    /// does, so a test need not wait for the watches before it changes objects).
    pub fn watching(&self, collection: &str) -> usize {
        let store = self.store.lock().unwrap();
        store
            .watchers
            .iter()
            .filter(|(c, tx)| c == collection && !tx.is_closed())
            .count()
    }

    /// The writes received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.store.lock().unwrap().calls.clone()
    }

    /// Writes whose path contains `part`.
    pub fn calls_to(&self, part: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path.contains(part))
            .collect()
    }

    fn broadcast(store: &mut Store, collection: &str, kind: &str, object: &Value) {
        let event = json!({"type": kind, "object": object});
        let rv = store.resource_version;
        store
            .history
            .push((rv, collection.to_owned(), event.clone()));
        store
            .watchers
            .retain(|(c, tx)| c != collection || tx.send(event.clone()).is_ok());
    }

    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// A kube client whose transport is the router itself: no socket, so time can be paused.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
    }

    /// Serves on a loopback socket; returns its URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = self.router();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }
}

async fn handle(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if method == Method::GET
        && let Some(discovery) = discovery(&segments)
    {
        return axum::Json(discovery).into_response();
    }
    // `fieldSelector=metadata.name=NAME` (kubectl wait), the only selector served.
    let only: Option<String> = query.split('&').find_map(|p| {
        p.strip_prefix("fieldSelector=metadata.name%3D")
            .or_else(|| p.strip_prefix("fieldSelector=metadata.name="))
            .map(str::to_owned)
    });
    // /apis/{group}/{version}/… or /api/v1/…
    let (group_version, rest) = match segments.as_slice() {
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest.to_vec()),
        ["api", version, rest @ ..] => ((*version).to_owned(), rest.to_vec()),
        _ => return status(404, "NotFound", format!("{path} not found")),
    };
    let (namespace, rest) = match rest.as_slice() {
        ["namespaces", ns, rest @ ..] => ((*ns).to_owned(), rest.to_vec()),
        _ => (String::new(), rest),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return status(404, "NotFound", format!("{path} not found")),
    };
    let collection = format!("{group_version}/{plural}");
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if method == Method::GET && fake.store.lock().unwrap().forbidden.contains(&collection) {
        let watch = query
            .split('&')
            .any(|p| p == "watch=true" || p == "watch=1");
        let verb = match name {
            Some(_) => "get",
            None if watch => "watch",
            None => "list",
        };
        return rbac_forbidden(&user(&headers), verb, &group_version, plural, &namespace);
    }
    let parsed: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return status(400, "BadRequest", format!("not JSON: {e}")),
        }
    };

    match (method.clone(), name) {
        (Method::GET, None)
            if query
                .split('&')
                .any(|p| p == "watch=true" || p == "watch=1") =>
        {
            let (tx, rx) = mpsc::unbounded_channel::<Value>();
            let mut store = fake.store.lock().unwrap();
            let initial = query.split('&').any(|p| p == "sendInitialEvents=true");
            // A watch list (client-go's WatchListClient, which kubectl 1.32's `wait` uses):
            // the objects there now as ADDED events, then the bookmark that ends them, as
            // kube-apiserver sends them; then what happens from here on.
            if initial {
                let existing = store.collections.get(&collection).into_iter().flatten();
                for ((ns, n), object) in existing {
                    if (namespace.is_empty() || *ns == namespace)
                        && only.as_ref().is_none_or(|only| n == only)
                    {
                        let _ = tx.send(json!({"type": "ADDED", "object": object}));
                    }
                }
                let _ = tx.send(json!({"type": "BOOKMARK", "object": {
                    "apiVersion": group_version,
                    "kind": list_kind(plural).trim_end_matches("List"),
                    "metadata": {
                        "resourceVersion": store.resource_version.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }}));
            }
            // A watch from a resourceVersion (a list's, as kube's watcher sends it) is first
            // sent what happened since; "0" or none means "from now".
            let since = query
                .split('&')
                .find_map(|p| p.strip_prefix("resourceVersion="))
                .and_then(|rv| rv.parse::<u64>().ok())
                .filter(|rv| *rv > 0);
            if let Some(since) = since.filter(|_| !initial) {
                let missed = store
                    .history
                    .iter()
                    .filter(|(rv, c, _)| *rv > since && *c == collection);
                for (_, _, event) in missed {
                    let _ = tx.send(event.clone());
                }
            }
            store.watchers.push((collection, tx));
            drop(store);
            let stream = futures_util::stream::unfold((rx, only), |(mut rx, only)| async move {
                let event = loop {
                    let event = rx.recv().await?;
                    if event["type"] == "BOOKMARK"
                        || only
                            .as_ref()
                            .is_none_or(|n| event["object"]["metadata"]["name"] == **n)
                    {
                        break event;
                    }
                };
                let mut line = serde_json::to_vec(&event).unwrap();
                line.push(b'\n');
                Some((Ok::<_, std::io::Error>(line), (rx, only)))
            });
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        (Method::GET, None) => {
            let store = fake.store.lock().unwrap();
            let items: Vec<Value> = store
                .collections
                .get(&collection)
                .map(|c| {
                    c.iter()
                        .filter(|((ns, _), _)| namespace.is_empty() || *ns == namespace)
                        .filter(|((_, n), _)| only.as_ref().is_none_or(|only| n == only))
                        .map(|(_, o)| o.clone())
                        .collect()
                })
                .unwrap_or_default();
            axum::Json(json!({
                "apiVersion": group_version,
                "kind": list_kind(plural),
                "metadata": {"resourceVersion": store.resource_version.to_string()},
                "items": items,
            }))
            .into_response()
        }
        (Method::GET, Some(name)) => match fake.get(&collection, &namespace, name) {
            Some(object) => axum::Json(object).into_response(),
            None => status(404, "NotFound", format!("{plural} {name:?} not found")),
        },
        (Method::POST, None) => {
            let mut object = parsed.clone();
            object["metadata"]["namespace"] = json!(namespace);
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if plural == "reconciliationfreezes" {
                object["metadata"]["uid"] = json!(format!("uid-{name}"));
                object["metadata"]["creationTimestamp"] =
                    json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
                let field_manager = query
                    .split('&')
                    .find_map(|p| p.strip_prefix("fieldManager="));
                let review = freeze_review(
                    "CREATE",
                    &user(&headers),
                    field_manager,
                    &object,
                    &Value::Null,
                );
                if let Some(denied) = fake.admit(review).await {
                    return denied;
                }
            }
            if plural == "events" && !is_dns_subdomain(&name) {
                return status(
                    422,
                    "Invalid",
                    format!("Event {name:?}: metadata.name: must be a DNS subdomain"),
                );
            }
            let mut store = fake.store.lock().unwrap();
            let exists = store
                .collections
                .get(&collection)
                .is_some_and(|c| c.contains_key(&(namespace.clone(), name.clone())));
            store.calls.push(Call {
                method: "POST".into(),
                path: path.clone(),
                query,
                content_type,
                body: parsed,
                changed: !exists,
            });
            if exists {
                drop(store);
                fake.wrote.notify_waiters();
                return status(
                    409,
                    "AlreadyExists",
                    format!("{plural} {name:?} already exists"),
                );
            }
            store.resource_version += 1;
            object["metadata"]["resourceVersion"] = json!(store.resource_version.to_string());
            store
                .collections
                .entry(collection.clone())
                .or_default()
                .insert((namespace, name), object.clone());
            Fake::broadcast(&mut store, &collection, "ADDED", &object);
            drop(store);
            fake.wrote.notify_waiters();
            (StatusCode::CREATED, axum::Json(object)).into_response()
        }
        (Method::PATCH, Some(name)) => {
            let mut store = fake.store.lock().unwrap();
            let key = (namespace.clone(), name.to_owned());
            let Some(current) = store
                .collections
                .get(&collection)
                .and_then(|c| c.get(&key))
                .cloned()
            else {
                drop(store);
                return status(404, "NotFound", format!("{plural} {name:?} not found"));
            };
            let precondition = parsed["metadata"]["resourceVersion"].as_str();
            if precondition
                .is_some_and(|rv| Some(rv) != current["metadata"]["resourceVersion"].as_str())
            {
                drop(store);
                return status(
                    409,
                    "Conflict",
                    format!("{plural} {name:?}: the object has been modified"),
                );
            }
            let mut updated = current.clone();
            match (subresource, content_type.as_str()) {
                // Server-side apply of the status: the fields given replace fluxgate's.
                (Some("status"), "application/apply-patch+yaml") => {
                    updated["status"] = parsed["status"].clone();
                }
                (None, "application/merge-patch+json") => merge(&mut updated, &parsed),
                (sub, kind) => {
                    drop(store);
                    return status(
                        415,
                        "UnsupportedMediaType",
                        format!("the fake does not take {kind} patches of {sub:?}"),
                    );
                }
            }
            if plural == "events" && updated["note"] != current["note"] {
                drop(store);
                return status(
                    422,
                    "Invalid",
                    format!("Event {name:?}: note: field is immutable"),
                );
            }
            let changed = updated != current;
            store.calls.push(Call {
                method: "PATCH".into(),
                path: path.clone(),
                query,
                content_type,
                body: parsed,
                changed,
            });
            if changed {
                store.resource_version += 1;
                updated["metadata"]["resourceVersion"] = json!(store.resource_version.to_string());
                store
                    .collections
                    .get_mut(&collection)
                    .unwrap()
                    .insert(key, updated.clone());
                Fake::broadcast(&mut store, &collection, "MODIFIED", &updated);
            }
            drop(store);
            fake.wrote.notify_waiters();
            axum::Json(updated).into_response()
        }
        (Method::DELETE, Some(name)) => {
            let Some(current) = fake.get(&collection, &namespace, name) else {
                return status(404, "NotFound", format!("{plural} {name:?} not found"));
            };
            if plural == "reconciliationfreezes" {
                let review = freeze_review("DELETE", &user(&headers), None, &Value::Null, &current);
                if let Some(denied) = fake.admit(review).await {
                    return denied;
                }
            }
            fake.store.lock().unwrap().calls.push(Call {
                method: "DELETE".into(),
                path: path.clone(),
                query,
                content_type,
                body: parsed,
                changed: true,
            });
            fake.delete(&collection, &namespace, name);
            fake.wrote.notify_waiters();
            axum::Json(current).into_response()
        }
        _ => status(405, "MethodNotAllowed", format!("{method} {path}")),
    }
}

/// The discovery documents of what the fake serves (kubectl maps `rwin` to its resource with
/// them): `/api`, `/api/v1`, `/apis` and `/apis/GROUP/VERSION`.
fn discovery(segments: &[&str]) -> Option<Value> {
    let resource = |name: &str, kind: &str, namespaced: bool, short: &[&str]| {
        json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
            "shortNames": short,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
    };
    let groups: [(&str, &str, Vec<Value>); 5] = [
        (
            "fluxgate.io",
            "v1alpha1",
            vec![
                resource(
                    "reconciliationwindows",
                    "ReconciliationWindow",
                    false,
                    &["rwin"],
                ),
                resource(
                    "reconciliationwindows/status",
                    "ReconciliationWindow",
                    false,
                    &[],
                ),
                resource("reconciliationfreezes", "ReconciliationFreeze", false, &[]),
            ],
        ),
        (
            "kustomize.toolkit.fluxcd.io",
            "v1",
            vec![resource("kustomizations", "Kustomization", true, &["ks"])],
        ),
        (
            "helm.toolkit.fluxcd.io",
            "v2",
            vec![resource("helmreleases", "HelmRelease", true, &["hr"])],
        ),
        (
            "events.k8s.io",
            "v1",
            vec![resource("events", "Event", true, &["ev"])],
        ),
        (
            "",
            "v1",
            vec![
                resource("configmaps", "ConfigMap", true, &["cm"]),
                resource("events", "Event", true, &["ev"]),
            ],
        ),
    ];
    let list = |group: &str, version: &str, resources: &[Value]| {
        let group_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": resources})
    };
    match segments {
        ["api"] => Some(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": []})),
        ["apis"] => Some(
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups
            .iter()
            .filter(|(group, _, _)| !group.is_empty())
            .map(|(group, version, _)| {
                let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
                json!({"name": group, "versions": [gv], "preferredVersion": gv})
            })
            .collect::<Vec<_>>()}),
        ),
        ["api", "v1"] => groups
            .iter()
            .find(|(group, _, _)| group.is_empty())
            .map(|(group, version, resources)| list(group, version, resources)),
        ["apis", group, version] => groups
            .iter()
            .find(|(g, v, _)| g == group && v == version)
            .map(|(group, version, resources)| list(group, version, resources)),
        _ => None,
    }
}

/// A kubeconfig for the fake served at `url`, as `user` (the fake takes the bearer token for
/// the user name); the file goes with the value. The binary finds it through `KUBECONFIG`.
pub struct Kubeconfig(pub std::path::PathBuf);

impl Kubeconfig {
    pub fn new(url: &str, user: &str) -> Self {
        // KUBECONFIG is a `:`-separated list: no `:` of the user name in the path.
        let tag: String = user
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let dir = std::env::temp_dir().join(format!(
            "fluxgate-kubeconfig-{}-{tag}-{}",
            std::process::id(),
            url.rsplit(':').next().unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
                 clusters: [{{name: fake, cluster: {{server: \"{url}\"}}}}]\n\
                 contexts: [{{name: fake, context: {{cluster: fake, user: me}}}}]\n\
                 users: [{{name: me, user: {{token: \"{user}\"}}}}]\n"
            ),
        )
        .unwrap();
        Kubeconfig(path)
    }
}

impl Drop for Kubeconfig {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

/// The user a request is made as: its bearer token (a kubeconfig's `token:`), or `admin`.
fn user(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("admin")
        .to_owned()
}
