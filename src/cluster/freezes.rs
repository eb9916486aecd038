//! ReconciliationFreeze objects watched through the API: on-call's stop-the-line freezes.
//!
//! The watch only follows what the cluster holds ([`watch_freezes`]); the window watch
//! ([`super::watch`]) holds each freeze to [`StopTheLine::from_object`] at every check and adds
//! the valid ones to the windows they cover, so a freeze is in force exactly where the windows
//! are. A freeze that fails the check (written while the webhook was not called, or too long
//! for this replica's `--max-freeze`) freezes nothing, and is logged at every check.
//!
//! Until the first complete list the windows are not put in force: a replica that starts during
//! an incident must not admit, for a moment, what the freeze stops.
//!
//! Who created a freeze is what the API server told the webhook (userInfo of the CREATE), not
//! a field its author could write: the replica that admitted the CREATE remembers the user by
//! the object's uid ([`Creators::record`], told of every trusted decision) and writes
//! `status.createdBy` through the status subresource once its watch sees the object. Only
//! fluxgate may write that status (deploy/base/rbac.yaml). If that replica stops in between,
//! the status stays without it; the audit record of the CREATE names the user either way.

use super::sync::STATUS_FIELD_MANAGER;
use chrono::{DateTime, Duration, Utc};
use fluxgate_core::freeze::{API_VERSION, KIND, ReconciliationFreeze, StopTheLine};
use fluxgate_core::object::Object;
use fluxgate_core::policy::{Decision, Reason};
use futures_util::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::core::admission::{AdmissionRequest, Operation};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// A creator not written within this long is forgotten: the object was never persisted (a
/// later webhook or the API server refused it), or another replica's watch is the one that
/// lives on.
const CREATOR_TTL: Duration = Duration::minutes(10);

/// The users whose ReconciliationFreeze CREATE this replica admitted, by the object's uid,
/// until their freeze's status says so.
#[derive(Clone, Debug, Default)]
pub struct Creators(Arc<Mutex<HashMap<String, Creator>>>);

/// A user, and when the webhook admitted their CREATE.
type Creator = (String, DateTime<Utc>);

impl Creators {
    /// Remembers the user of an admitted CREATE of a freeze (other decisions are ignored). Told
    /// of every decision of a trusted caller by the server (wired in `cli/serve.rs`). Must not
    /// wait: it runs on the request path.
    pub fn record(
        &self,
        request: &AdmissionRequest<Object>,
        decision: &Decision,
        now: DateTime<Utc>,
    ) {
        if !decision.allowed
            || decision.reason != Reason::ValidFreeze
            || request.operation != Operation::Create
        {
            return;
        }
        // The API server gives the object its uid before validating admission runs.
        let Some(uid) = request.object.as_ref().and_then(|o| o.metadata.uid.clone()) else {
            return;
        };
        let user = request
            .user_info
            .username
            .clone()
            .unwrap_or_else(|| "<anonymous>".into());
        let Ok(mut creators) = self.0.lock() else {
            return;
        };
        creators.retain(|_, (_, at)| now - *at < CREATOR_TTL);
        creators.insert(uid, (user, now));
    }

    /// The creator to write on `object`, when this replica admitted it and its status does not
    /// say so yet.
    fn to_write(&self, object: &ReconciliationFreeze) -> Option<String> {
        let written = object.status.as_ref().and_then(|s| s.created_by.as_ref());
        let uid = object.metadata.uid.as_ref()?;
        let creators = self.0.lock().ok()?;
        let (user, _) = creators.get(uid)?;
        (written != Some(user)).then(|| user.clone())
    }

    fn forget(&self, object: &ReconciliationFreeze) {
        if let (Some(uid), Ok(mut creators)) = (&object.metadata.uid, self.0.lock()) {
            creators.remove(uid);
        }
    }
}

/// Writes `status.createdBy` of `object`, when this replica knows it.
async fn write_creator(
    api: &Api<ReconciliationFreeze>,
    creators: &Creators,
    object: &ReconciliationFreeze,
) {
    let Some(user) = creators.to_write(object) else {
        return;
    };
    let name = name_of(object);
    let patch = serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name},
        "status": {"createdBy": user},
    });
    let params = PatchParams::apply(STATUS_FIELD_MANAGER).force();
    match api
        .patch_status(&name, &params, &Patch::Apply(&patch))
        .await
    {
        Ok(_) => {
            creators.forget(object);
            tracing::info!(freeze = %name, created_by = %user, "ReconciliationFreeze: creator recorded");
        }
        // Kept: the next event of the object tries again.
        Err(error) => {
            tracing::warn!(%error, freeze = %name, "cannot record who created the freeze")
        }
    }
}

/// The cluster's freezes by name; `None` until the first complete list.
pub type FreezeObjects = Option<Arc<BTreeMap<String, ReconciliationFreeze>>>;

/// A channel that says "listed, none": for a window watch without freezes (tests, tools).
pub fn no_freezes() -> watch::Receiver<FreezeObjects> {
    watch::channel(Some(Arc::default())).1
}

/// Watches ReconciliationFreeze objects until the task is dropped (errors are retried with
/// backoff), sending the whole set at every change, and records the creators this replica
/// admitted.
pub async fn watch_freezes(
    client: Client,
    freezes: watch::Sender<FreezeObjects>,
    creators: Creators,
) {
    let api: Api<ReconciliationFreeze> = Api::all(client);
    let writer = api.clone();
    let mut objects = BTreeMap::new();
    let mut relist: Option<BTreeMap<String, ReconciliationFreeze>> = None;
    let mut synced = false;
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        if let Ok(Event::Apply(object) | Event::InitApply(object)) = &event {
            write_creator(&writer, &creators, object).await;
        }
        let changed = match event {
            Ok(Event::Init) => {
                relist = Some(BTreeMap::new());
                false
            }
            Ok(Event::InitApply(object)) => {
                relist
                    .get_or_insert_with(BTreeMap::new)
                    .insert(name_of(&object), object);
                false
            }
            Ok(Event::InitDone) => {
                if let Some(listed) = relist.take() {
                    objects = listed;
                }
                synced = true;
                true
            }
            Ok(Event::Apply(object)) => {
                let name = name_of(&object);
                // Labels count: a freeze labelled by Flux is refused.
                let changed = objects.get(&name).is_none_or(|o| {
                    o.spec != object.spec || o.metadata.labels != object.metadata.labels
                });
                objects.insert(name, object);
                changed
            }
            Ok(Event::Delete(object)) => objects.remove(&name_of(&object)).is_some(),
            Err(error) => {
                tracing::warn!(%error, "watching ReconciliationFreezes failed; retrying, the last freezes seen stay in force");
                false
            }
        };
        if changed && synced {
            freezes.send_replace(Some(Arc::new(objects.clone())));
        }
    }
}

/// The freezes of `objects` that are valid under `max` (`--max-freeze`), and why each other one
/// freezes nothing. One that is over stays a freeze part that no longer covers any instant: it
/// stops applying at its end, deleted or not, whatever instant a decision is made at.
pub(crate) fn valid_freezes<'a>(
    objects: impl IntoIterator<Item = &'a ReconciliationFreeze>,
    max: Duration,
    now: DateTime<Utc>,
) -> (Vec<StopTheLine>, Vec<String>) {
    let mut valid = Vec::new();
    let mut refused = Vec::new();
    for object in objects {
        match StopTheLine::from_object(object, max, now) {
            Ok(freeze) => valid.push(freeze),
            Err(error) => refused.push(format!("{error}; it freezes nothing")),
        }
    }
    (valid, refused)
}

fn name_of(object: &ReconciliationFreeze) -> String {
    object.metadata.name.clone().unwrap_or_default()
}
