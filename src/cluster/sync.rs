//! Keeping the cluster in step with the windows, off the request path: each
//! ReconciliationWindow's `status`, and (with `--reconcile-on-open`) a reconcile request to every
//! Flux owner a window denied, as soon as that window opens.
//!
//! Level-triggered: every pass compares what the cluster holds with what the windows say at this
//! instant and writes only the difference, so a restart, a second replica or a missed wake-up
//! costs nothing but one comparison. A pass runs when the windows or the owners change, at each
//! window's next transition, and at least once a minute (a clock that jumps, a windows file
//! reloaded). The values written derive from the windows and the instant alone, so replicas
//! write identical content: the API server sees the second write as a no-op.
//!
//! A status is written only from what this replica has in force: `observedGeneration` and
//! condition `Ready` "True" name the generation in force, so Flux's health check and `kubectl
//! wait` (deploy/README.md, "Install order") see a window as current only once it is; a window
//! whose version in the cluster the gate refuses gets `Ready` "False" with why, never a status
//! that looks current.

use super::events::{EventPublisher, Notice};
use super::notifications::{Notifications, landing};
use super::owners::{Owners, api_resource};
use super::watch::ObservedWindows;
use crate::clock::Clock;
use crate::metrics::SyncCounters;
use crate::windows::store::WindowStore;
use chrono::{DateTime, Utc};
use fluxgate_core::flux::{FIELD_MANAGER, Owner, OwnerKind, catch_up};
use fluxgate_core::window::{API_VERSION, KIND, ReconciliationWindow, WindowSet, WindowStatus};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The field manager of the status: one for every replica, so they share the fields.
pub(crate) const STATUS_FIELD_MANAGER: &str = "fluxgate";
/// A pass runs at least this often.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// After a failed write, the next pass comes this soon.
const RETRY: Duration = Duration::from_secs(5);
/// Wake this long after a transition: the clock then reads past it here, and on the other
/// replicas too, whose clocks may lag this one's a little (NTP keeps nodes within milliseconds;
/// a second is a wide margin). Flux's attempt must meet an open window on whichever replica
/// the API server calls.
const MARGIN: Duration = Duration::from_secs(1);
/// Another replica's status that is this close ahead of our own clock describes the state we
/// are about to reach: it is not written back (clocks a little apart must not fight at every
/// transition).
const SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(5);
/// At start, the first status waits this long at most for every kind of Flux owner to be listed,
/// so that it carries the waiting count rather than a zero corrected a moment later. A kind
/// whose CRD is missing (no helm-controller) never lists; the status goes out without it.
const OWNERS_GRACE: Duration = Duration::from_secs(10);

/// What to keep in step.
pub struct ClusterSync {
    pub client: Client,
    /// The windows in force, whose states the passes write and act on.
    pub windows: Arc<WindowStore>,
    pub clock: Clock,
    pub counters: SyncCounters,
    /// Events on the owners asked to reconcile.
    pub events: Option<EventPublisher>,
    /// Landing notices to notification-controller for the owners asked to reconcile.
    pub notices: Option<Notifications>,
    /// Write ReconciliationWindow status (needs the windows from the cluster).
    pub write_status: bool,
    /// Ask Flux owners to reconcile when the window that denied them opens.
    pub reconcile_on_open: bool,
}

/// The statuses this process wrote that the cluster did not show yet, so a pass does not repeat
/// them while the watch catches up; forgotten as soon as the cluster shows anything else. Window
/// → (status written, the status the cluster showed then). (Reconcile requests need no such
/// memory: each carries the owner's `resourceVersion`, so a repeat is refused by the API.)
type Written = HashMap<String, (WindowStatus, Option<WindowStatus>)>;

/// The status this process last wrote for each window, and when. Another writer that puts a
/// different status back (a replica of another revision during a rollout, with other flags or
/// another version, that decides otherwise about the window) is answered at most once per
/// [`MAX_WAIT`], not at once: answering at once, each replica undoes the other's write as soon
/// as it sees it, without end.
type LastWrites = HashMap<String, (WindowStatus, DateTime<Utc>)>;

impl ClusterSync {
    /// Runs until the task is dropped.
    pub async fn run(
        self,
        mut windows: watch::Receiver<ObservedWindows>,
        mut owners: watch::Receiver<Owners>,
    ) {
        let mut written = Written::default();
        let mut last_writes = LastWrites::default();
        let started = tokio::time::Instant::now();
        loop {
            let now = self.clock.now();
            // What the watch observed first, then the set: the watch puts a set in force before
            // it tells what it observed, so the set is at least as new as what is observed, and
            // a window observed in force is in it.
            let observed = windows.borrow_and_update().clone();
            let set = self.windows.load_full();
            // Past a transition a window's state is computed anew, which for some windows takes
            // thousands of cron steps: on a blocking thread, so the passes below read the cache.
            let warming = set.clone();
            if let Err(error) = tokio::task::spawn_blocking(move || warming.warm(now)).await {
                tracing::error!(%error, "computing the windows' states failed");
            }
            let all: Vec<Owner> = owners
                .borrow_and_update()
                .values()
                .flat_map(|owners| owners.values().cloned().collect::<Vec<_>>())
                .collect();
            let mut failed = false;
            let listed = owners.borrow().len() == OwnerKind::ALL.len();
            let grace = OWNERS_GRACE.saturating_sub(started.elapsed());
            if self.write_status
                && (listed || grace.is_zero())
                && let Some(observed) = &observed
            {
                failed |= !self
                    .write_statuses(&set, observed, &all, now, &mut written, &mut last_writes)
                    .await;
            }
            if self.reconcile_on_open {
                failed |= !self.request_reconciles(&set, &all, now).await;
            }
            let mut wait = next_pass(&set, now, failed);
            if !listed && !grace.is_zero() {
                wait = wait.min(grace);
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = changed(&mut windows) => {}
                _ = changed(&mut owners) => {}
            }
        }
    }

    /// Writes every status that differs from the cluster's; false when a write failed.
    async fn write_statuses(
        &self,
        set: &WindowSet,
        observed: &std::collections::BTreeMap<String, super::index::Observed>,
        owners: &[Owner],
        now: DateTime<Utc>,
        written: &mut Written,
        last_writes: &mut LastWrites,
    ) -> bool {
        let api: Api<ReconciliationWindow> = Api::all(self.client.clone());
        let params = PatchParams::apply(STATUS_FIELD_MANAGER).force();
        written.retain(|name, _| observed.contains_key(name));
        last_writes.retain(|name, _| observed.contains_key(name));
        let mut ok = true;
        for (name, seen) in observed {
            let waiting = owners.iter().filter(|o| o.waits_for(name)).count() as i64;
            // A window whose version in the cluster is refused gets a status that says so (the
            // state of the version still in force, if any), never one that looks current.
            let (desired, next) = match (set.get(name), &seen.refused) {
                (Some(window), refused) => {
                    let state = window.state_at(now);
                    let status = WindowStatus::of(window, &state, seen.generation, waiting);
                    let status = match refused {
                        Some((generation, why)) => status.refused(*generation, why),
                        None => status,
                    };
                    (status, state.next)
                }
                (None, Some((generation, why))) => {
                    let status = WindowStatus {
                        waiting_owners: waiting,
                        ..Default::default()
                    };
                    (status.refused(*generation, why), None)
                }
                (None, None) => continue,
            };
            if seen.status.as_ref() == Some(&desired) {
                written.remove(name);
                continue;
            }
            if let (Some(seen), Some(next)) = (&seen.status, next)
                && seen.since == desired.next
                && next - now <= SKEW
            {
                // Written by a replica that is already past the transition we are about to
                // pass: ours would only undo it for a moment.
                continue;
            }
            let pending = (desired.clone(), seen.status.clone());
            if written.get(name) == Some(&pending) {
                continue;
            }
            // Written a moment ago, and someone else has written another status since.
            if seen.status.is_some()
                && let Some((last, at)) = last_writes.get(name)
                && *last == desired
                && (now - *at).to_std().is_ok_and(|ago| ago < MAX_WAIT)
            {
                tracing::warn!(window = %name, "another writer keeps putting another status on the window (a replica with other flags or another version?); writing it again in a minute");
                continue;
            }
            let patch = serde_json::json!({
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {"name": name},
                "status": desired,
            });
            match api.patch_status(name, &params, &Patch::Apply(&patch)).await {
                Ok(_) => {
                    self.counters.status_writes.record(true);
                    tracing::debug!(window = %name, open = desired.open, next = ?desired.next, "window status written");
                    written.insert(name.clone(), pending);
                    last_writes.insert(name.clone(), (desired.clone(), now));
                }
                Err(error) => {
                    ok = false;
                    self.counters.status_writes.record(false);
                    tracing::warn!(%error, window = %name, "cannot write the window's status; retrying");
                }
            }
        }
        ok
    }

    /// Asks every owner whose windows are now open to reconcile; false when a request failed.
    async fn request_reconciles(
        &self,
        set: &WindowSet,
        owners: &[Owner],
        now: DateTime<Utc>,
    ) -> bool {
        let mut ok = true;
        for owner in owners {
            let Some(value) = catch_up(owner, set, now) else {
                continue;
            };
            match self.request_reconcile(owner, &value).await {
                // The owner changed since it was read: another replica asked first, or Flux
                // wrote its status. The next pass sees the new version and decides again.
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    tracing::debug!(owner = %owner.display(), "owner changed since read; deciding again");
                }
                Ok(asked) => {
                    self.record_reconcile_request(owner.kind, true);
                    tracing::info!(owner = %owner.display(), windows = ?owner.denied_by, requested_at = %value, "window opened: asked Flux to reconcile the change it denied");
                    self.notify(owner, &asked, &value, set, now);
                }
                Err(error) => {
                    ok = false;
                    self.record_reconcile_request(owner.kind, false);
                    tracing::warn!(%error, owner = %owner.display(), "cannot ask Flux to reconcile; retrying");
                }
            }
        }
        ok
    }

    fn record_reconcile_request(&self, kind: OwnerKind, ok: bool) {
        if let Some(counters) = self.counters.reconcile_requests.get(&kind) {
            counters.record(ok);
        }
    }

    /// The owner as the request left it.
    async fn request_reconcile(
        &self,
        owner: &Owner,
        value: &str,
    ) -> Result<DynamicObject, kube::Error> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            &owner.namespace,
            &api_resource(owner.kind),
        );
        let annotations: serde_json::Map<String, serde_json::Value> = owner
            .kind
            .request_annotations()
            .iter()
            .map(|a| ((*a).to_owned(), value.into()))
            .collect();
        // With the version it was decided on: of two replicas asking at once, one succeeds and
        // the other gets a conflict, so one request is counted, logged and told in an Event.
        let patch = serde_json::json!({"metadata": {
            "resourceVersion": owner.resource_version,
            "annotations": annotations,
        }});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..Default::default()
        };
        api.patch(&owner.name, &params, &Patch::Merge(&patch)).await
    }

    /// An Event on the owner, and a landing notice, naming the window that opened. Only the
    /// replica whose request succeeded gets here: one of each.
    fn notify(
        &self,
        owner: &Owner,
        asked: &DynamicObject,
        value: &str,
        set: &WindowSet,
        now: DateTime<Utc>,
    ) {
        if self.events.is_none() && self.notices.is_none() {
            return;
        }
        let windows: Vec<String> = owner.denied_by.iter().map(|w| format!("{w:?}")).collect();
        // The value is the opening instant; say it in the window's own time zone.
        let zone = owner.denied_by.iter().find_map(|name| set.get(name));
        let opened = match (DateTime::parse_from_rfc3339(value), zone) {
            (Ok(t), Some(window)) => t
                .with_timezone(&window.time_zone())
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            _ => value.to_owned(),
        };
        let note = format!(
            "reconciliation window {} opened at {opened}: asked {} to reconcile the change \
             fluxgate denied while it was closed ({}={value})",
            windows.join(" and "),
            owner.display(),
            owner.kind.request_annotations().join(", "),
        );
        if let Some(notices) = &self.notices {
            notices.send(landing(owner, asked, value, &note, now));
        }
        let Some(events) = &self.events else { return };
        events.send(Notice {
            warning: false,
            reason: "ReconcileRequested",
            action: "Reconcile",
            note,
            regarding: owner.reference(),
            related: owner.denied_by.iter().next().map(|w| ObjectReference {
                api_version: Some(API_VERSION.to_owned()),
                kind: Some(KIND.to_owned()),
                name: Some(w.clone()),
                ..Default::default()
            }),
            series: None,
            series_until: None,
            at: now,
        });
    }
}

/// How long until the next pass: just past the earliest transition, at most [`MAX_WAIT`].
fn next_pass(set: &WindowSet, now: DateTime<Utc>, failed: bool) -> Duration {
    // Not only transitions: a state also ends where what it names changes (a freeze starting
    // while closed, an allow calendar's next event), and the pass recomputes it off the
    // request path.
    let next = set.iter().map(|w| w.state_holds_until(now)).min();
    let until_next = next
        .and_then(|t| (t - now).to_std().ok())
        .map_or(MAX_WAIT, |d| d + MARGIN);
    let wait = until_next.min(MAX_WAIT);
    if failed { wait.min(RETRY) } else { wait }
}

/// Resolves when the value changes; never, once its sender is gone.
async fn changed<T>(rx: &mut watch::Receiver<T>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluxgate_core::window::parse_documents;

    /// A freeze that starts while the window is closed changes no transition: the pass still
    /// comes right after it (and recomputes the state off the request path), not a minute later.
    #[test]
    fn the_next_pass_comes_when_a_freeze_starts_while_closed() {
        let yaml = r#"
apiVersion: fluxgate.io/v1alpha1
kind: ReconciliationWindow
metadata:
  name: business-hours
spec:
  timeZone: UTC
  schedules:
    - open: "0 8 * * MON"
      close: "0 17 * * THU"
  freezes:
    - start: "2026-11-27T10:00:00Z"
      end: "2026-11-27T12:00:00Z"
      reason: Release rehearsal
"#;
        let documents = parse_documents("windows.yaml", yaml).unwrap();
        let set = WindowSet::from_documents(&documents).unwrap();
        let now: DateTime<Utc> = "2026-11-27T09:59:30Z".parse().unwrap();
        assert_eq!(
            next_pass(&set, now, false),
            Duration::from_secs(30) + MARGIN
        );
    }
}
