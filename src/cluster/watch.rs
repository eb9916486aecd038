//! Keeping the window set in step with the cluster's ReconciliationWindow objects.
//!
//! The watch (kube's reflector-style watcher with its default backoff) survives watch errors
//! and API server restarts by relisting. Decisions never wait on it: they read whatever set was
//! last published. Until the first complete list, the server is not ready.

use super::index::{Observed, WindowIndex};
use crate::window_store::{PublishError, WindowStore};
use fluxgate_core::window::{ReconciliationWindow, WindowSet};
use futures_util::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// Generation and status of each window in the cluster, for the status writer; `None` until the
/// first complete list.
pub(crate) type ObservedWindows = Option<Arc<BTreeMap<String, Observed>>>;

/// Watches ReconciliationWindow objects until the stream ends (it does not, short of the task
/// being dropped: errors are retried with backoff), and publishes their set into `store` at
/// every change. `observed`, when given, follows what the cluster holds of each window (see
/// [`crate::cluster::sync`]).
pub async fn watch_windows(
    client: Client,
    store: Arc<WindowStore>,
    observed: Option<watch::Sender<ObservedWindows>>,
) {
    let api: Api<ReconciliationWindow> = Api::all(client);
    let mut index = WindowIndex::default();
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        let changed = match event {
            Ok(Event::Init) => {
                index.begin_relist();
                false
            }
            Ok(Event::InitApply(object)) => {
                report(&store, index.relisted(object));
                false
            }
            Ok(Event::InitDone) => {
                index.end_relist();
                true
            }
            Ok(Event::Apply(object)) => match index.apply(object) {
                Ok(changed) => changed,
                Err(error) => {
                    report(&store, Err(error));
                    false
                }
            },
            Ok(Event::Delete(object)) => {
                index.delete(&object);
                true
            }
            Err(error) => {
                tracing::warn!(%error, "watching ReconciliationWindows failed; retrying, the last good windows stay in force");
                false
            }
        };
        if changed && index.is_synced() {
            publish(&store, &index).await;
        }
        if let Some(observed) = &observed
            && index.is_synced()
        {
            let now = Some(Arc::new(index.observed()));
            observed.send_if_modified(|seen| {
                let modified = *seen != now;
                *seen = now;
                modified
            });
        }
    }
}

fn report(store: &WindowStore, checked: Result<(), fluxgate_core::window::WindowError>) {
    if let Err(error) = checked {
        store.reject();
        tracing::error!(%error, "invalid ReconciliationWindow in the cluster; keeping its last good version");
    }
}

/// Builds the set and computes its states on a blocking thread (some windows take thousands of
/// cron steps), then swaps it in.
async fn publish(store: &WindowStore, index: &WindowIndex) {
    let documents = index.documents();
    let built = store
        .build_and_publish(chrono::Utc::now(), move || {
            WindowSet::from_documents(&documents)
        })
        .await;
    match built {
        Ok(true) => {
            let count = store.load().len();
            tracing::info!(
                windows = count,
                "ReconciliationWindows synced from the cluster"
            );
        }
        Ok(false) => {}
        Err(PublishError::Invalid(error)) => {
            tracing::error!(%error, "cannot build the window set; keeping the last good one");
        }
        Err(error @ PublishError::Failed(_)) => {
            tracing::error!(%error, "keeping the last good window set");
        }
    }
}
