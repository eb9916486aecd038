//! Flux's Kustomizations and HelmReleases as the cluster holds them, reduced to what the
//! catch-up needs ([`fluxgate_core::flux::Owner`]): which windows denied them, and whether they are Ready.
//!
//! One watch per kind. A kind whose CRD is not installed (no helm-controller) simply never
//! lists: the other kind works on, and the watch retries with backoff.

use fluxgate_core::flux::{Owner, OwnerKind};
use futures_util::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// `(namespace, name)` of an owner.
pub(crate) type OwnerKey = (String, String);

/// The owners of each kind that has been listed completely.
pub(crate) type Owners = BTreeMap<OwnerKind, Arc<BTreeMap<OwnerKey, Owner>>>;

/// The API resource of a Flux kind.
pub(crate) fn api_resource(kind: OwnerKind) -> ApiResource {
    ApiResource {
        group: kind.group().to_owned(),
        version: kind.version().to_owned(),
        api_version: kind.api_version(),
        kind: kind.kind().to_owned(),
        plural: kind.plural().to_owned(),
    }
}

fn key(object: &DynamicObject) -> OwnerKey {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// The owner as it is now, with the denial of its last attempt while Flux makes the next one.
fn read(kind: OwnerKind, object: &DynamicObject, known: &BTreeMap<OwnerKey, Owner>) -> Owner {
    let mut owner = Owner::from_object(kind, object);
    if let Some(previous) = known.get(&key(object)) {
        owner.carry_over(previous);
    }
    owner
}

/// Watches one kind until the task is dropped, publishing every complete view into `owners`.
pub async fn watch_owners(client: Client, kind: OwnerKind, owners: watch::Sender<Owners>) {
    let api: Api<DynamicObject> = Api::all_with(client, &api_resource(kind));
    let mut known: BTreeMap<OwnerKey, Owner> = BTreeMap::new();
    let mut relist: Option<BTreeMap<OwnerKey, Owner>> = None;
    let mut synced = false;
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();

    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => {
                relist = Some(BTreeMap::new());
                continue;
            }
            Ok(Event::InitApply(object)) => {
                let owner = read(kind, &object, &known);
                relist
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key(&object), owner);
                continue;
            }
            Ok(Event::InitDone) => {
                known = relist.take().unwrap_or_default();
                if !synced {
                    tracing::info!(%kind, count = known.len(), "Flux owners listed");
                }
                synced = true;
            }
            Ok(Event::Apply(object)) => {
                let owner = read(kind, &object, &known);
                known.insert(key(&object), owner);
            }
            Ok(Event::Delete(object)) => {
                known.remove(&key(&object));
            }
            Err(error) => {
                tracing::warn!(%error, %kind, "watching Flux owners failed; retrying");
                continue;
            }
        }
        if synced {
            let view = Arc::new(known.clone());
            owners.send_if_modified(|all| {
                let modified = all.get(&kind) != Some(&view);
                all.insert(kind, view);
                modified
            });
        }
    }
}
