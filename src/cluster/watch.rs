//! Keeping the window set in step with the cluster's ReconciliationWindow objects.
//!
//! The watch (kube's reflector-style watcher with its default backoff) survives watch errors
//! and API server restarts by relisting. Decisions never wait on it: they read whatever set was
//! last put in force. Until the first complete list, the server is not ready. Every change is
//! held to the gate windows files pass, object by object ([`super::index`]).

use super::index::{Observed, WindowIndex};
use crate::clock::Clock;
use crate::windows::WindowStore;
use crate::windows::gate::Refused;
use crate::windows::store::Load;
use fluxgate_core::window::ReconciliationWindow;
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
/// being dropped: errors are retried with backoff), and puts their set in force in `store` at
/// every change. `observed`, when given, follows what the cluster holds of each window (see
/// [`crate::cluster::sync`]). `clock` is what the windows are checked and computed at.
pub async fn watch_windows(
    client: Client,
    store: Arc<WindowStore>,
    observed: Option<watch::Sender<ObservedWindows>>,
    clock: Clock,
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
                index.relisted(object);
                false
            }
            Ok(Event::InitDone) => {
                index.end_relist();
                true
            }
            Ok(Event::Apply(object)) => index.apply(object),
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
            publish(&store, &mut index, &clock).await;
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

/// Holds the cluster's objects to the gate and computes the states of the set on a blocking
/// thread (some windows take thousands of cron steps), then puts it in force.
async fn publish(store: &Arc<WindowStore>, index: &mut WindowIndex, clock: &Clock) {
    let candidate = index.candidate();
    let checking = store.clone();
    let now = clock.now();
    let checked = tokio::task::spawn_blocking(move || {
        let in_force = candidate.check(checking.gate(), now);
        let count = in_force.set.len();
        let problems = Refused(in_force.problems);
        let load = if problems.0.is_empty() {
            Load::Reload
        } else {
            Load::InPart(&problems)
        };
        let first = checking.put_in_force(in_force.set, now, load);
        (in_force.versions, first, count)
    })
    .await;
    match checked {
        Ok((versions, first, count)) => {
            index.put_in_force(versions);
            if first {
                tracing::info!(
                    windows = count,
                    "ReconciliationWindows synced from the cluster"
                );
            }
        }
        Err(error) => store.refuse(&format!("checking the windows failed: {error}")),
    }
}
