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
/// JSON, serialised straight from the request and the decision without an owned copy of each
/// string (a record is written for every request, so its cost is on the request path).
pub fn write_line(
    out: &mut Vec<u8>,
    request: &AdmissionRequest<Object>,
    decision: &Decision,
    time: DateTime<Utc>,
    duration_seconds: f64,
) {
    json_line(
        out,
        &RecordOut::new(request, decision, time, duration_seconds),
        &request.uid,
    );
}

/// Appends `record` to `out` as one JSON line, newline included.
fn json_line(out: &mut Vec<u8>, record: &impl Serialize, uid: &str) {
    let start = out.len();
    if let Err(error) = serde_json::to_writer(&mut *out, record) {
        // Serialising plain strings and numbers into memory cannot fail; if it ever does, the
        // line still records that a decision happened.
        out.truncate(start);
        let line = format!("{{\"uid\":{uid:?},\"error\":{:?}}}", error.to_string());
        out.extend_from_slice(line.as_bytes());
    }
    out.push(b'\n');
}

/// [`AuditRecord`] borrowed: the same fields, names and order (a test reads each line written
/// back as an `AuditRecord` and writes it again, byte for byte).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordOut<'a> {
    time: DateTime<Utc>,
    uid: &'a str,
    decision: &'static str,
    reason: Reason,
    message: &'a str,
    dry_run: bool,
    operation: &'static str,
    user: &'a str,
    groups: &'a [String],
    field_manager: Option<&'a str>,
    group: &'a str,
    version: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    mode: Option<&'a str>,
    windows: WindowsOut<'a>,
    owner: Option<OwnerOut<'a>>,
    bypass: Option<BypassOut<'a>>,
    duration_seconds: f64,
}

/// `windows`, each as an [`AuditWindow`].
struct WindowsOut<'a>(&'a [WindowVerdict]);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WindowOut<'a> {
    name: &'a str,
    exists: bool,
    open: bool,
    frozen: bool,
    since: Option<String>,
    next: Option<String>,
    time_zone: Option<&'static str>,
}

#[derive(Serialize)]
struct OwnerOut<'a> {
    kind: &'static str,
    namespace: Option<&'a str>,
    name: &'a str,
}

#[derive(Serialize)]
struct BypassOut<'a> {
    reason: Option<&'a str>,
    until: Option<&'a str>,
    valid: bool,
}

impl<'a> RecordOut<'a> {
    fn new(
        request: &'a AdmissionRequest<Object>,
        decision: &'a Decision,
        time: DateTime<Utc>,
        duration_seconds: f64,
    ) -> Self {
        let Subject { mode, owner, .. } = &decision.subject;
        RecordOut {
            time,
            uid: &request.uid,
            decision: if decision.allowed { "allow" } else { "deny" },
            reason: decision.reason,
            message: &decision.message,
            dry_run: request.dry_run,
            operation: operation_name(&request.operation),
            user: request.user_info.username.as_deref().unwrap_or_default(),
            groups: request.user_info.groups.as_deref().unwrap_or_default(),
            field_manager: field_manager(request),
            group: &request.kind.group,
            version: &request.kind.version,
            kind: &request.kind.kind,
            namespace: request.namespace.as_deref(),
            name: &request.name,
            mode: mode.as_deref(),
            windows: WindowsOut(&decision.windows),
            owner: owner.as_ref().map(|o| OwnerOut {
                kind: o.kind,
                namespace: o.namespace.as_deref(),
                name: &o.name,
            }),
            bypass: decision.bypass.as_ref().map(|b| BypassOut {
                reason: b.reason.as_deref(),
                until: b.until.as_deref(),
                valid: decision.reason == Reason::Bypass,
            }),
            duration_seconds,
        }
    }
}

impl Serialize for WindowsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let instant = |t: Option<DateTime<Utc>>, tz: chrono_tz::Tz| {
            t.map(|t| {
                t.with_timezone(&tz)
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
            })
        };
        serializer.collect_seq(self.0.iter().map(|w| match &w.known {
            Some(k) => WindowOut {
                name: &w.name,
                exists: true,
                open: k.state.open,
                frozen: k.state.freeze.is_some(),
                since: instant(k.state.since, k.time_zone),
                next: instant(k.state.next, k.time_zone),
                time_zone: Some(k.time_zone.name()),
            },
            None => WindowOut {
                name: &w.name,
                exists: false,
                open: false,
                frozen: false,
                since: None,
                next: None,
                time_zone: None,
            },
        }))
    }
}

// === impl AuditRecord ===

impl AuditRecord {
    /// The record as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = Vec::new();
        json_line(&mut line, self, &self.uid);
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
            write(&mut queue.lines);
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
