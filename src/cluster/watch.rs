//! Keeping the window set in step with the cluster's ReconciliationWindow objects.
//!
//! The watch (kube's reflector-style watcher with its default backoff) survives watch errors
//! and API server restarts by relisting. Decisions never wait on it: they read whatever set was
//! last put in force. Until the first complete list, the server is not ready. Every change is
//! held to the gate windows files pass, object by object ([`super::index`]).

use super::freezes::{FreezeObjects, no_freezes};
use super::index::{Observed, WindowIndex};
use crate::clock::Clock;
use crate::metrics::StopTheLineFreezes;
use crate::windows::WindowStore;
use crate::windows::gate::Refused;
use crate::windows::store::Load;
use fluxgate_core::window::ReconciliationWindow;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
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
    watch_windows_and_freezes(client, store, observed, no_freezes(), None, clock).await
}

/// [`watch_windows`], with the stop-the-line freezes `freezes` follows
/// ([`super::freezes::watch_freezes`]) added to the windows they cover. No set is put in force
/// before the freezes are listed too; at each change of the freezes the set is checked again,
/// and `observed` is told, so the status writer and the catch-up at an opening run at once.
pub async fn watch_windows_and_freezes(
    client: Client,
    store: Arc<WindowStore>,
    observed: Option<watch::Sender<ObservedWindows>>,
    mut freezes: watch::Receiver<FreezeObjects>,
    gauge: Option<StopTheLineFreezes>,
    clock: Clock,
) {
    let namespace = client.default_namespace().to_owned();
    let api: Api<ReconciliationWindow> = Api::all(client.clone());
    let config_maps: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let mut index = WindowIndex::watching_config_maps(&namespace);
    let windows = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .map(|event| Change::Window(Box::new(event)));
    // The ConfigMaps of fluxgate's namespace: calendars by configMapRef.
    let config_map_reads = config_maps.clone();
    let config_maps = watcher::watcher(config_maps, watcher::Config::default())
        .default_backoff()
        .map(|event| Change::ConfigMap(Box::new(event)));
    let mut events = futures_util::stream::select(windows, config_maps).boxed();
    let mut freezes_listed = false;
    loop {
        let event = tokio::select! {
            event = events.next() => match event {
                Some(event) => event,
                None => return,
            },
            Ok(()) = freezes.changed() => {
                let Some(listed) = freezes.borrow_and_update().clone() else { continue };
                index.set_freezes(listed);
                freezes_listed = true;
                if index.is_synced() {
                    publish(&store, &mut index, gauge.as_ref(), &clock).await;
                    // What the check made of each window (refused or in force) may have
                    // changed with the freezes: told afresh, and the status writer woken.
                    if let Some(observed) = &observed {
                        let now = Some(Arc::new(index.observed()));
                        observed.send_modify(|seen| *seen = now);
                    }
                }
                continue;
            }
        };
        if !freezes_listed && let Some(listed) = freezes.borrow_and_update().clone() {
            index.set_freezes(listed);
            freezes_listed = true;
        }
        let changed = match event {
            Change::Window(event) => apply_window(&mut index, *event),
            Change::ConfigMap(event) => apply_config_map(&mut index, *event, &namespace),
        };
        if changed && index.is_synced() && freezes_listed {
            read_missing_config_maps(&config_map_reads, &mut index).await;
            publish(&store, &mut index, gauge.as_ref(), &clock).await;
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

/// Reads the ConfigMaps that windows name and the ConfigMap watch has not delivered yet, so a
/// window applied with its calendar's ConfigMap is not refused (and its status not `Ready`
/// "False", which fails Flux's health check at once) for the moment between the two watches.
/// One that is not there, or cannot be read, stays missing: the check says so.
async fn read_missing_config_maps(api: &Api<ConfigMap>, index: &mut WindowIndex) {
    for name in index.missing_config_maps() {
        match api.get_opt(&name).await {
            Ok(Some(object)) => {
                index.apply_config_map(object);
            }
            Ok(None) => {}
            Err(error) => {
                let error = super::index::api_error_text(&error);
                tracing::debug!(%error, config_map = %name, "cannot read a calendar's ConfigMap; the watch may deliver it");
            }
        }
    }
}

/// An event of either watch (boxed: the two differ in size).
enum Change {
    Window(Box<Result<Event<ReconciliationWindow>, watcher::Error>>),
    ConfigMap(Box<Result<Event<ConfigMap>, watcher::Error>>),
}

/// True when the set must be checked again.
fn apply_window(
    index: &mut WindowIndex,
    event: Result<Event<ReconciliationWindow>, watcher::Error>,
) -> bool {
    match event {
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
    }
}

/// What the API server said to a watch, as [`super::index::api_error_text`] says it.
fn watch_error_text(error: &watcher::Error) -> String {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => super::index::api_error_text(e),
        watcher::Error::WatchError(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// True when a window names the ConfigMap that changed. The first complete list counts as a
/// change: the windows waited for it.
fn apply_config_map(
    index: &mut WindowIndex,
    event: Result<Event<ConfigMap>, watcher::Error>,
    namespace: &str,
) -> bool {
    match event {
        Ok(Event::Init) => {
            index.begin_config_map_relist();
            false
        }
        Ok(Event::InitApply(object)) => {
            index.config_map_relisted(object);
            false
        }
        Ok(Event::InitDone) => {
            let first = !index.is_synced();
            index.end_config_map_relist() || first
        }
        Ok(Event::Apply(object)) => index.apply_config_map(object),
        Ok(Event::Delete(object)) => index.delete_config_map(&object),
        Err(error) => {
            let error = watch_error_text(&error);
            tracing::warn!(%error, %namespace, "watching the ConfigMaps of calendars failed; retrying, the last good windows stay in force");
            // Windows naming no ConfigMap do not wait for them.
            index.config_maps_unavailable(error)
        }
    }
}

/// Holds the cluster's objects to the gate and computes the states of the set on a blocking
/// thread (some windows take thousands of cron steps), then puts it in force.
async fn publish(
    store: &Arc<WindowStore>,
    index: &mut WindowIndex,
    gauge: Option<&StopTheLineFreezes>,
    clock: &Clock,
) {
    let candidate = index.candidate();
    let checking = store.clone();
    let now = clock.now();
    let checked = tokio::task::spawn_blocking(move || {
        let in_force = candidate.check(checking.gate(), now);
        let count = in_force.set.len();
        for refused in &in_force.refused_freezes {
            tracing::error!(error = %refused, "a ReconciliationFreeze is not in force");
        }
        let problems = Refused(in_force.problems);
        let load = if problems.0.is_empty() {
            Load::Reload
        } else {
            Load::InPart(&problems)
        };
        let first = checking.put_in_force(in_force.set, now, load);
        (in_force.versions, in_force.freezes, first, count, problems)
    })
    .await;
    match checked {
        Ok((versions, freezes, first, count, problems)) => {
            index.put_in_force(versions);
            index.set_refused(&problems.0);
            if let Some(gauge) = gauge {
                gauge.set(freezes);
            }
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
