//! A fake of Flux's notification-controller event receiver, for `serve --notification-url`.
//!
//! It reads each request as notification-controller does (`internal/server/event_server.go`
//! and `event_handlers.go`): the body decoded as fluxcd/pkg's `event/v1beta1` `Event`, its
//! metadata kept only under the involved object's API group, then rate-limited on the key
//! notification-controller computes (name, namespace, kind, message, `revision`, `token`):
//! a duplicate within the interval is answered 429, anything else 202.
//!
//! Where notification-controller would take an event and silently do nothing with it, the fake
//! refuses it with 400 so that a test fails: fields missing or of the wrong type (Flux's
//! recorder never sends them), unknown fields (a misspelt field is lost on the real one), an
//! involved object that is no Flux kind an `Alert` can select, a metadata key outside the
//! object's group (dropped by `combineEventMetadata`), a severity other than info or error
//! (Flux keeps trace events off the wire), a message over 39,000 characters.

#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The kinds an `Alert`'s `eventSources` may name (notification.toolkit.fluxcd.io/v1beta3), with
/// their API groups.
pub const FLUX_KINDS: [(&str, &str); 12] = [
    ("Bucket", "source.toolkit.fluxcd.io"),
    ("GitRepository", "source.toolkit.fluxcd.io"),
    ("HelmChart", "source.toolkit.fluxcd.io"),
    ("HelmRepository", "source.toolkit.fluxcd.io"),
    ("OCIRepository", "source.toolkit.fluxcd.io"),
    ("ExternalArtifact", "source.toolkit.fluxcd.io"),
    ("ArtifactGenerator", "source.extensions.fluxcd.io"),
    ("Kustomization", "kustomize.toolkit.fluxcd.io"),
    ("HelmRelease", "helm.toolkit.fluxcd.io"),
    ("ImageRepository", "image.toolkit.fluxcd.io"),
    ("ImagePolicy", "image.toolkit.fluxcd.io"),
    ("ImageUpdateAutomation", "image.toolkit.fluxcd.io"),
];

/// notification-controller's `--rate-limit-interval` default.
pub const RATE_LIMIT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// `corev1.ObjectReference`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ObjectReference {
    kind: String,
    namespace: String,
    name: String,
    #[serde(default)]
    uid: Option<String>,
    api_version: String,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    field_path: Option<String>,
}

/// fluxcd/pkg `apis/event/v1beta1.Event`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Event {
    involved_object: ObjectReference,
    severity: String,
    timestamp: String,
    message: String,
    reason: String,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    reporting_controller: String,
    #[serde(default)]
    reporting_instance: Option<String>,
}

/// One request received.
#[derive(Clone, Debug)]
pub struct Post {
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub body: Value,
    /// 202 (taken), 429 (a duplicate in the rate-limit interval) or 400 (refused).
    pub status: u16,
    /// Why it was refused.
    pub error: Option<String>,
    /// When it arrived.
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Default)]
struct Inner {
    posts: Vec<Post>,
    limited: HashMap<String, Instant>,
}

#[derive(Clone, Default)]
pub struct FakeNotificationController {
    inner: Arc<Mutex<Inner>>,
}

impl FakeNotificationController {
    /// Serves on a loopback socket; returns the URL to give `--notification-url`.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let app = self.router();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    pub fn router(&self) -> Router {
        Router::new().fallback(receive).with_state(self.clone())
    }

    /// Every request, in order.
    pub fn posts(&self) -> Vec<Post> {
        self.inner.lock().unwrap().posts.clone()
    }

    /// The events taken (202), in order.
    pub fn accepted(&self) -> Vec<Value> {
        self.posts()
            .into_iter()
            .filter(|p| p.status == 202)
            .map(|p| p.body)
            .collect()
    }
}

/// What notification-controller refuses or would silently lose, as an error.
fn check(method: &Method, content_type: &str, body: &[u8]) -> Result<Event, String> {
    if method != Method::POST {
        return Err(format!("{method}: Flux posts events"));
    }
    if content_type != "application/json" {
        return Err(format!(
            "content type {content_type:?}: Flux sends application/json"
        ));
    }
    let event: Event = serde_json::from_slice(body).map_err(|e| format!("not an Event: {e}"))?;
    let object = &event.involved_object;
    for (field, value) in [
        ("involvedObject.kind", &object.kind),
        ("involvedObject.name", &object.name),
        ("involvedObject.namespace", &object.namespace),
        ("reason", &event.reason),
        ("message", &event.message),
        ("reportingController", &event.reporting_controller),
    ] {
        if value.is_empty() {
            return Err(format!("{field} is empty"));
        }
    }
    let Some((_, group)) = FLUX_KINDS.iter().find(|(kind, _)| *kind == object.kind) else {
        return Err(format!(
            "involvedObject.kind {:?} is no kind an Alert can select",
            object.kind
        ));
    };
    let object_group = object.api_version.split_once('/').map(|(g, _)| g);
    if object_group != Some(group) {
        return Err(format!(
            "involvedObject.apiVersion {:?} is not of {group}",
            object.api_version
        ));
    }
    if !["info", "error"].contains(&event.severity.as_str()) {
        return Err(format!("severity {:?}", event.severity));
    }
    // metav1.Time: RFC 3339, as Go's time.Parse(time.RFC3339) reads it.
    chrono::DateTime::parse_from_rfc3339(&event.timestamp)
        .map_err(|e| format!("timestamp {:?}: {e}", event.timestamp))?;
    if event.message.chars().count() > 39_000 {
        return Err("message longer than 39000 characters".into());
    }
    for key in event.metadata.iter().flatten().map(|(k, _)| k) {
        if !key.starts_with(&format!("{group}/")) {
            return Err(format!(
                "metadata key {key:?} is not under {group}/: dropped"
            ));
        }
    }
    Ok(event)
}

/// notification-controller's `eventKeyFunc`, on the metadata it keeps.
fn rate_limit_key(event: &Event) -> String {
    let group = event.involved_object.api_version.split('/').next().unwrap();
    let meta = |key: &str| {
        event
            .metadata
            .as_ref()
            .and_then(|m| m.get(&format!("{group}/{key}")))
            .cloned()
    };
    let object = &event.involved_object;
    let mut parts = vec![
        "event".to_owned(),
        format!("name={}", object.name),
        format!("namespace={}", object.namespace),
        format!("kind={}", object.kind),
        format!("message={}", event.message),
    ];
    if let Some(revision) = meta("revision") {
        parts.push(format!("revision={revision}"));
    }
    if let Some(token) = meta("token") {
        parts.push(format!("token={token}"));
    }
    parts.join("/")
}

async fn receive(
    State(fake): State<FakeNotificationController>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let checked = check(&method, &content_type, &body);
    let mut inner = fake.inner.lock().unwrap();
    let (status, error) = match checked {
        Err(error) => (StatusCode::BAD_REQUEST, Some(error)),
        Ok(event) => {
            let key = rate_limit_key(&event);
            let now = Instant::now();
            match inner.limited.get(&key) {
                Some(at) if now.duration_since(*at) < RATE_LIMIT_INTERVAL => {
                    (StatusCode::TOO_MANY_REQUESTS, None)
                }
                _ => {
                    inner.limited.insert(key, now);
                    (StatusCode::ACCEPTED, None)
                }
            }
        }
    };
    inner.posts.push(Post {
        method: method.to_string(),
        path: uri.path().to_owned(),
        content_type,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status: status.as_u16(),
        error,
        at: chrono::Utc::now(),
    });
    status
}
