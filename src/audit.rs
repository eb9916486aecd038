//! The audit log: exactly one JSON line per decision, for people to review.
//!
//! [`write_line`] serialises the record of a decision from the request and the decision (pure);
//! [`AuditRecord`] is that record read back (`fluxgate audit`); an [`AuditSink`] writes lines.
//! Sinks write whole lines with a single `write_all` under a lock, so lines never interleave;
//! [`GroupCommit`] gathers the lines of concurrent requests into one write and answers each
//! request once its line is written: a record is on its way to disk before the API server
//! hears the answer. Application logs go elsewhere (stderr), never here.

use crate::object::Object;
use crate::policy::{Decision, Reason, Subject, WindowVerdict, field_manager};
use crate::window::Enforcement;
use chrono::{DateTime, SecondsFormat, Utc};
use kube::core::admission::{AdmissionRequest, Operation};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// One decision, as a JSON line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub time: DateTime<Utc>,
    pub uid: String,
    /// `allow` or `deny`.
    pub decision: String,
    pub reason: Reason,
    pub message: String,
    pub dry_run: bool,
    pub operation: String,
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub field_manager: Option<String>,
    pub group: String,
    pub version: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    /// `fluxgate.io/mode` of the object (new, else old), when labelled.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub windows: Vec<AuditWindow>,
    /// The Flux Kustomization or HelmRelease that applied the change.
    #[serde(default)]
    pub owner: Option<AuditOwner>,
    #[serde(default)]
    pub bypass: Option<AuditBypass>,
    /// `warn` when admitted only because the closed windows are in Warn mode (`reason` is then
    /// what it would have been denied with); absent when enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<String>,
    /// Server time spent on the request, in seconds.
    pub duration_seconds: f64,
}

/// A window involved in a decision and its state then.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditWindow {
    pub name: String,
    /// False when no window has that name (`unknown-window`).
    pub exists: bool,
    #[serde(default)]
    pub open: bool,
    #[serde(default)]
    pub frozen: bool,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    /// The override that held the window open, when one did.
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub override_: Option<AuditOverride>,
}

/// A `spec.overrides` entry that opened a window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditOverride {
    pub reason: String,
    pub start: String,
    pub end: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditOwner {
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditBypass {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    /// Whether the bypass admitted the change (false: it was invalid).
    pub valid: bool,
}

// === the line written ===

/// Appends the audit line of one decision to `out`, newline included: an [`AuditRecord`] as
/// JSON, written straight from the request and the decision (a record is written for every
/// request, so its cost is on the request path: see [`crate::json_out`]). Same fields, names,
/// order and bytes as `AuditRecord`'s serde form: a test reads lines back as `AuditRecord`s
/// and writes them again, byte for byte.
pub fn write_line(
    out: &mut Vec<u8>,
    request: &AdmissionRequest<Object>,
    decision: &Decision,
    time: DateTime<Utc>,
    duration_seconds: f64,
) {
    use crate::json_out::{Object as Json, array, bool, opt_string, string};
    let Subject { mode, owner, .. } = &decision.subject;
    let mut line = Json::new(out);
    // chrono's serde form of a `DateTime` is its `Debug` form.
    let _ = write!(line.key("time"), "\"{time:?}\"");
    string(line.key("uid"), &request.uid);
    string(
        line.key("decision"),
        if decision.allowed { "allow" } else { "deny" },
    );
    string(line.key("reason"), decision.reason.as_str());
    string(line.key("message"), &decision.message);
    bool(line.key("dryRun"), request.dry_run);
    string(line.key("operation"), operation_name(&request.operation));
    let user = &request.user_info;
    string(
        line.key("user"),
        user.username.as_deref().unwrap_or_default(),
    );
    let groups = user.groups.as_deref().unwrap_or_default();
    array(line.key("groups"), groups, |out, group| string(out, group));
    opt_string(line.key("fieldManager"), field_manager(request));
    string(line.key("group"), &request.kind.group);
    string(line.key("version"), &request.kind.version);
    string(line.key("kind"), &request.kind.kind);
    opt_string(line.key("namespace"), request.namespace.as_deref());
    string(line.key("name"), &request.name);
    opt_string(line.key("mode"), mode.as_deref());
    array(line.key("windows"), &decision.windows, write_window);
    match owner {
        Some(owner) => {
            let mut json = Json::new(line.key("owner"));
            string(json.key("kind"), owner.kind);
            opt_string(json.key("namespace"), owner.namespace.as_deref());
            string(json.key("name"), &owner.name);
            json.end();
        }
        None => opt_string(line.key("owner"), None),
    }
    match &decision.bypass {
        Some(bypass) => {
            let mut json = Json::new(line.key("bypass"));
            opt_string(json.key("reason"), bypass.reason.as_deref());
            opt_string(json.key("until"), bypass.until.as_deref());
            bool(json.key("valid"), decision.reason == Reason::Bypass);
            json.end();
        }
        None => opt_string(line.key("bypass"), None),
    }
    if decision.enforcement == Enforcement::Warn {
        string(line.key("enforcement"), Enforcement::Warn.as_str());
    }
    // serde_json's own number formatting, so the bytes match; writing a float cannot fail.
    let _ = serde_json::to_writer(line.key("durationSeconds"), &duration_seconds);
    line.end();
    out.push(b'\n');
}

/// One [`AuditWindow`].
fn write_window(out: &mut Vec<u8>, verdict: &WindowVerdict) {
    use crate::json_out::{Object as Json, bool, opt_string, string};
    let mut json = Json::new(out);
    string(json.key("name"), &verdict.name);
    bool(json.key("exists"), verdict.known.is_some());
    match &verdict.known {
        Some(known) => {
            let state = &known.state;
            bool(json.key("open"), state.open);
            bool(json.key("frozen"), state.freeze.is_some());
            let instant = |t: Option<DateTime<Utc>>| {
                t.map(|t| {
                    t.with_timezone(&known.time_zone)
                        .to_rfc3339_opts(SecondsFormat::Secs, true)
                })
            };
            opt_string(json.key("since"), instant(state.since).as_deref());
            opt_string(json.key("next"), instant(state.next).as_deref());
            string(json.key("timeZone"), known.time_zone.name());
            if let Some(o) = &state.opened_by {
                let mut json = Json::new(json.key("override"));
                string(json.key("reason"), &o.reason);
                string(
                    json.key("start"),
                    &instant(Some(o.start)).unwrap_or_default(),
                );
                string(json.key("end"), &instant(Some(o.end)).unwrap_or_default());
                json.end();
            }
        }
        None => {
            bool(json.key("open"), false);
            bool(json.key("frozen"), false);
            opt_string(json.key("since"), None);
            opt_string(json.key("next"), None);
            opt_string(json.key("timeZone"), None);
        }
    }
    json.end();
}

// === impl AuditRecord ===

impl AuditRecord {
    /// The record as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_else(|e| {
            // Serialising plain strings and numbers cannot fail; if it ever does, the line
            // still records that a decision happened.
            format!("{{\"uid\":{:?},\"error\":{:?}}}", self.uid, e.to_string()).into_bytes()
        });
        line.push(b'\n');
        line
    }
}

pub fn operation_name(operation: &Operation) -> &'static str {
    match operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

// === sinks ===

/// Where audit records go.
pub trait AuditSink: Send + Sync {
    /// Writes whole [`write_line`] lines (one or more, as one write) and flushes them.
    fn write(&self, lines: &[u8]) -> std::io::Result<()>;
    /// Reopens the destination (after log rotation); a no-op where that means nothing.
    fn reopen(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Group commit: the lines of requests decided at about the same time go to the sink in one
/// write, and each request still answers only once its line is written.
///
/// The first request to queue a line into an empty batch leads it: it yields once, so the other
/// requests ready to run add their lines, then writes the batch and wakes them. Under load one
/// write then carries many lines (a write to a file costs more than deciding a request, see
/// BENCHMARKS.md); alone, a request writes its own line after one yield.
pub struct GroupCommit {
    sink: Arc<dyn AuditSink>,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// The lines of the open batch.
    lines: Vec<u8>,
    batch: Arc<Batch>,
    /// Whether a request leads the open batch (it will write it).
    has_leader: bool,
}

/// One write's outcome, awaited by every request whose line it carries.
#[derive(Default)]
struct Batch {
    result: OnceLock<Result<(), (std::io::ErrorKind, String)>>,
    written: tokio::sync::Notify,
}

/// Writes the batch it leads when dropped, whether or not the leading request is still
/// awaited (a client that hangs up must not strand the lines of the others). The open batch is
/// its own until then: only a leader's drop opens the next one.
struct Leader<'a> {
    log: &'a GroupCommit,
}

impl GroupCommit {
    pub fn new(sink: Arc<dyn AuditSink>) -> Self {
        GroupCommit {
            sink,
            queue: Mutex::default(),
        }
    }

    /// Queues one line, which `write` appends to the batch (see [`write_line`]), now; the
    /// future it returns resolves once the line is written (or the write failed).
    ///
    /// The line is serialised straight into the batch: a separate buffer per line would be
    /// one more allocation per request, and one above the size glibc serves from its
    /// per-thread cache. Queueing before the first poll lets a request free its decision
    /// before it waits: held across the wait by every request in flight, those allocations
    /// interleave and stop being served from that cache too (BENCHMARKS.md).
    pub fn append(
        &self,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> impl Future<Output = std::io::Result<()>> + '_ {
        let (batch, leader) = {
            let mut queue = self.lock();
            let line = Partial::start(&mut queue.lines);
            write(line.lines);
            line.finish();
            let leads = !std::mem::replace(&mut queue.has_leader, true);
            (queue.batch.clone(), leads.then(|| Leader { log: self }))
        };
        async move {
            if let Some(leader) = leader {
                tokio::task::yield_now().await;
                drop(leader);
            }
            batch.wait().await
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A line being written into the batch. Should its writer panic halfway (it cannot, but the
/// log must not depend on that), the half line is cut back out when this drops, so that the
/// lines after it stay whole: the queue's lock recovers from the poisoning.
struct Partial<'a> {
    lines: &'a mut Vec<u8>,
    start: usize,
    finished: bool,
}

impl<'a> Partial<'a> {
    fn start(lines: &'a mut Vec<u8>) -> Self {
        let start = lines.len();
        Partial {
            lines,
            start,
            finished: false,
        }
    }

    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Partial<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.lines.truncate(self.start);
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let (batch, mut lines) = {
            let mut queue = self.log.lock();
            queue.has_leader = false;
            (
                std::mem::take(&mut queue.batch),
                std::mem::take(&mut queue.lines),
            )
        };
        let result = self
            .log
            .sink
            .write(&lines)
            .map_err(|e| (e.kind(), e.to_string()));
        // The buffer serves the next batch unless that one has already started its own: a
        // batch of many lines would otherwise grow a new one from nothing.
        lines.clear();
        let mut queue = self.log.lock();
        if queue.lines.capacity() == 0 {
            queue.lines = lines;
        }
        drop(queue);
        // Each batch has one leader, so its result is set once and this cannot fail.
        let _ = batch.result.set(result);
        batch.written.notify_waiters();
    }
}

impl Batch {
    async fn wait(&self) -> std::io::Result<()> {
        loop {
            let written = self.written.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            if let Some(result) = self.result.get() {
                return result
                    .clone()
                    .map_err(|(kind, message)| std::io::Error::new(kind, message));
            }
            written.await;
        }
    }
}

/// Standard output: the default, for `kubectl logs` and cluster log collectors.
pub struct StdoutSink;

impl AuditSink for StdoutSink {
    fn write(&self, lines: &[u8]) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(lines)?;
        out.flush()
    }
}

/// A file opened for append, reopened on SIGHUP so logrotate's move-and-signal works.
pub struct FileSink {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl FileSink {
    pub fn open(path: PathBuf) -> std::io::Result<Self> {
        let file = Self::open_append(&path)?;
        Ok(FileSink {
            path,
            file: Mutex::new(file),
        })
    }

    fn open_append(path: &std::path::Path) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl AuditSink for FileSink {
    fn write(&self, lines: &[u8]) -> std::io::Result<()> {
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(lines)?;
        file.flush()
    }

    fn reopen(&self) -> std::io::Result<()> {
        let fresh = Self::open_append(&self.path)?;
        *self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }
}

/// Keeps records in memory, read back from the lines written: for tests, and for anyone
/// embedding the router.
#[derive(Default)]
pub struct MemorySink {
    records: Mutex<Vec<AuditRecord>>,
}

impl MemorySink {
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl AuditSink for MemorySink {
    fn write(&self, lines: &[u8]) -> std::io::Result<()> {
        let records = serde_json::Deserializer::from_slice(lines)
            .into_iter::<AuditRecord>()
            .collect::<Result<Vec<_>, _>>()?;
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(records);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::review::review;
    use serde_json::{Value, json};
    use std::future::Future;

    const CLOSED: &str = "2026-11-27T12:00:00Z";

    fn line_of(review_json: &Value) -> (Vec<u8>, AuditRecord) {
        let body = serde_json::to_vec(review_json).unwrap();
        let windows = crate::load::load_windows(&[]).unwrap();
        let now = DateTime::parse_from_rfc3339(CLOSED).unwrap().to_utc();
        let reviewed = review(&body, &windows, &Policy::default(), now).unwrap();
        let mut line = Vec::new();
        write_line(
            &mut line,
            &reviewed.request,
            &reviewed.decision,
            now,
            0.000123,
        );
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let record: AuditRecord = serde_json::from_slice(&line).unwrap();
        // Field for field what `AuditRecord` reads and writes: same names, order and nulls.
        assert_eq!(
            String::from_utf8(record.to_line()).unwrap(),
            String::from_utf8(line.clone()).unwrap()
        );
        (line, record)
    }

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/admission/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn a_denial_records_the_window_the_owner_and_the_actor() {
        let (_, record) = line_of(&fixture("flux-dryrun-image-bump-deployment.json"));
        assert_eq!(
            (record.decision.as_str(), record.reason),
            ("deny", Reason::WindowClosed)
        );
        assert_eq!(record.operation, "UPDATE");
        assert!(record.dry_run);
        assert_eq!(
            record.field_manager.as_deref(),
            Some("kustomize-controller")
        );
        assert_eq!(
            (record.kind.as_str(), record.name.as_str()),
            ("Deployment", "nginx")
        );
        assert_eq!(record.mode.as_deref(), Some("rw"));
        let window = &record.windows[0];
        assert_eq!(window.name, "business-hours");
        assert!(window.exists && !window.open && !window.frozen);
        assert_eq!(window.time_zone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(window.next.as_deref(), Some("2026-11-30T08:00:00+01:00"));
        assert_eq!(record.owner.as_ref().unwrap().kind, "Kustomization");
        assert!(record.bypass.is_none());
        assert_eq!(record.duration_seconds, 0.000123);
    }

    #[test]
    fn a_bypass_and_an_unknown_window_are_recorded() {
        let mut review_json = fixture("flux-dryrun-image-bump-deployment.json");
        let annotations = &mut review_json["request"]["object"]["metadata"]["annotations"];
        annotations["fluxgate.io/bypass-reason"] = json!("INC-1234 \"hotfix\"\nline two");
        annotations["fluxgate.io/bypass-until"] = json!("2026-11-27T18:00:00Z");
        let (_, record) = line_of(&review_json);
        assert_eq!(record.reason, Reason::Bypass);
        let bypass = record.bypass.unwrap();
        assert!(bypass.valid);
        assert_eq!(
            bypass.reason.as_deref(),
            Some("INC-1234 \"hotfix\"\nline two")
        );

        for object in ["object", "oldObject"] {
            review_json["request"][object]["metadata"]["labels"]["fluxgate.io/window"] =
                json!("no-such-window");
        }
        let (_, record) = line_of(&review_json);
        assert_eq!(record.windows.len(), 1);
        assert!(!record.windows[0].exists);
        assert_eq!(record.windows[0].since, None);
    }

    /// Records each write it is given; fails every write when `fail` is set.
    #[derive(Default)]
    struct Writes {
        writes: Mutex<Vec<Vec<u8>>>,
        fail: bool,
    }

    impl AuditSink for Writes {
        fn write(&self, lines: &[u8]) -> std::io::Result<()> {
            if self.fail {
                return Err(std::io::Error::other("disk full"));
            }
            self.writes.lock().unwrap().push(lines.to_vec());
            Ok(())
        }
    }

    impl Writes {
        fn lines(&self) -> Vec<String> {
            let writes = self.writes.lock().unwrap();
            writes
                .iter()
                .flat_map(|w| {
                    String::from_utf8(w.clone())
                        .unwrap()
                        .lines()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect()
        }
    }

    #[tokio::test]
    async fn concurrent_lines_share_writes_and_each_waits_for_its_own() {
        let sink = Arc::new(Writes::default());
        let log = Arc::new(GroupCommit::new(sink.clone()));
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let (log, sink) = (log.clone(), sink.clone());
                tokio::spawn(async move {
                    let line = format!("line {i}\n");
                    log.append(|out| out.extend_from_slice(line.as_bytes()))
                        .await
                        .unwrap();
                    // Answered only once written.
                    assert!(sink.lines().contains(&format!("line {i}")));
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let mut lines = sink.lines();
        lines.sort();
        let mut expected: Vec<String> = (0..50).map(|i| format!("line {i}")).collect();
        expected.sort();
        assert_eq!(lines, expected, "every line exactly once");
        let writes = sink.writes.lock().unwrap().len();
        assert!(writes < 50, "{writes} writes for 50 lines");
    }

    #[tokio::test]
    async fn a_failed_write_fails_every_line_it_carried() {
        let log = Arc::new(GroupCommit::new(Arc::new(Writes {
            fail: true,
            ..Writes::default()
        })));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let log = log.clone();
                tokio::spawn(async move { log.append(|out| out.extend_from_slice(b"x\n")).await })
            })
            .collect();
        for task in tasks {
            let error = task.await.unwrap().unwrap_err();
            assert_eq!(error.to_string(), "disk full");
        }
    }

    #[test]
    fn a_writer_that_panics_halfway_leaves_no_half_line() {
        let sink = Arc::new(Writes::default());
        let log = GroupCommit::new(sink.clone());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(log.append(|out| {
                out.extend_from_slice(b"half a li");
                panic!("a bug in a writer");
            }));
        }));
        assert!(panicked.is_err());
        drop(log.append(|out| out.extend_from_slice(b"whole\n")));
        assert_eq!(sink.lines(), ["whole"]);
    }

    #[test]
    fn a_line_is_queued_when_appended_not_when_first_awaited() {
        let sink = Arc::new(Writes::default());
        let log = GroupCommit::new(sink.clone());
        let leader = log.append(|out| out.extend_from_slice(b"leader\n"));
        let follower = log.append(|out| out.extend_from_slice(b"follower\n"));
        drop(leader); // never polled: the server frees the decision before awaiting
        assert_eq!(sink.lines(), ["leader", "follower"]);
        drop(follower);
    }

    #[tokio::test]
    async fn a_leader_that_goes_away_still_writes_the_batch() {
        let sink = Arc::new(Writes::default());
        let log = GroupCommit::new(sink.clone());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut leader = Box::pin(log.append(|out| out.extend_from_slice(b"leader\n")));
        assert!(
            leader.as_mut().poll(&mut cx).is_pending(),
            "the leader yields"
        );
        let mut follower = Box::pin(log.append(|out| out.extend_from_slice(b"follower\n")));
        assert!(
            follower.as_mut().poll(&mut cx).is_pending(),
            "the follower waits"
        );
        drop(leader); // the client hung up
        assert_eq!(sink.lines(), ["leader", "follower"]);
        assert!(matches!(
            follower.as_mut().poll(&mut cx),
            std::task::Poll::Ready(Ok(()))
        ));
    }

    #[test]
    fn a_person_is_recorded_with_groups() {
        let (_, record) = line_of(&fixture("human-patch-deployment.json"));
        assert_eq!(record.reason, Reason::NotFlux);
        assert!(!record.user.is_empty());
        assert!(!record.groups.is_empty());
    }
}
