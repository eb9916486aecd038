//! The audit log: exactly one JSON line per decision, for people to review.
//!
//! [`write_line`] serialises the record of a decision from the request and the decision (pure);
//! [`AuditRecord`] is that record read back (`fluxgate audit`); an [`AuditSink`] writes lines.
//! Sinks write whole lines under a lock, so lines never interleave, and a write that stops
//! partway never leaves the next line on the same row; [`GroupCommit`] hands the lines of
//! concurrent requests to a writer thread of its own, which writes them as one batch, and
//! answers each request once its line is written: a record is on its way to disk before the
//! API server hears the answer, and a sink that blocks (a stalled stdout reader, a FIFO)
//! blocks that thread, never the async workers. Application logs go elsewhere (stderr).

use crate::object::Object;
use crate::policy::{Decision, Reason, Subject, WindowVerdict, field_manager};
use crate::window::Enforcement;
use chrono::{DateTime, SecondsFormat, Utc};
use kube::core::admission::{AdmissionRequest, Operation};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One decision, as a JSON line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub time: DateTime<Utc>,
    pub uid: String,
    pub decision: Outcome,
    pub reason: Reason,
    pub message: String,
    pub dry_run: bool,
    pub operation: Operation,
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
    /// Who sent the AdmissionReview: the subject of its verified client certificate
    /// (`--client-ca`), else `unverified <peer address>`. Empty in lines from before it existed.
    #[serde(default)]
    pub caller: String,
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

// === the record of a decision ===

/// Whether the change was admitted: `allow` or `deny`, as the record spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allow,
    Deny,
}

impl Outcome {
    pub fn of(allowed: bool) -> Outcome {
        if allowed {
            Outcome::Allow
        } else {
            Outcome::Deny
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest line written, newline included: what `fluxgate audit` reads.
pub const MAX_LINE_BYTES: usize = crate::report::MAX_LINE_BYTES;
/// Past [`MAX_LINE_BYTES`], strings are cut to this many bytes and lists to [`CUT_ITEMS`]
/// entries, each with a marker. Even escaped six times over, the ~80 strings left fit well
/// within the bound.
const CUT_BYTES: usize = 1024;
const CUT_ITEMS: usize = 32;

impl AuditRecord {
    /// The record of `decision` on `request`, decided at `time` in `duration_seconds`, for the
    /// `caller` that sent it.
    pub fn of(
        request: &AdmissionRequest<Object>,
        decision: &Decision,
        caller: &str,
        time: DateTime<Utc>,
        duration_seconds: f64,
    ) -> AuditRecord {
        let Subject { mode, owner, .. } = &decision.subject;
        let user = &request.user_info;
        AuditRecord {
            time,
            uid: request.uid.clone(),
            decision: Outcome::of(decision.allowed),
            reason: decision.reason,
            message: decision.message.clone(),
            dry_run: request.dry_run,
            operation: request.operation.clone(),
            user: user.username.clone().unwrap_or_default(),
            groups: user.groups.clone().unwrap_or_default(),
            field_manager: field_manager(request).map(str::to_owned),
            group: request.kind.group.clone(),
            version: request.kind.version.clone(),
            kind: request.kind.kind.clone(),
            namespace: request.namespace.clone(),
            name: request.name.clone(),
            mode: mode.clone(),
            windows: decision.windows.iter().map(AuditWindow::of).collect(),
            owner: owner.as_ref().map(|o| AuditOwner {
                kind: o.kind.to_owned(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
            }),
            bypass: decision.bypass.as_ref().map(|b| AuditBypass {
                reason: b.reason.clone(),
                until: b.until.clone(),
                valid: decision.reason == Reason::Bypass,
            }),
            enforcement: (decision.enforcement == Enforcement::Warn)
                .then(|| Enforcement::Warn.as_str().to_owned()),
            duration_seconds,
            caller: caller.to_owned(),
        }
    }

    /// Appends the record to `out` as one JSON line, newline included. A line longer than
    /// [`MAX_LINE_BYTES`] (only a forged or absurd request has one: the fields are names and a
    /// message) is written with its long fields cut and marked, so it stays one record
    /// `fluxgate audit` can read.
    pub fn write_line(mut self, out: &mut Vec<u8>) {
        let start = out.len();
        self.write_json(out);
        if out.len() - start > MAX_LINE_BYTES {
            out.truncate(start);
            self.cut();
            self.write_json(out);
        }
    }

    /// The record as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = Vec::with_capacity(1024);
        self.write_json(&mut line);
        line
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        if let Err(e) = serde_json::to_writer(&mut *out, self) {
            // Serialising strings, numbers and a timestamp into memory cannot fail; if it
            // ever does, the line still records that a decision happened.
            let error = serde_json::json!({ "uid": self.uid, "error": e.to_string() });
            out.extend_from_slice(error.to_string().as_bytes());
        }
        out.push(b'\n');
    }

    /// Cuts every string to [`CUT_BYTES`] and every list to [`CUT_ITEMS`] entries, marked.
    fn cut(&mut self) {
        let strings = [
            &mut self.uid,
            &mut self.message,
            &mut self.user,
            &mut self.group,
            &mut self.version,
            &mut self.kind,
            &mut self.name,
            &mut self.caller,
        ];
        let optional = [&mut self.field_manager, &mut self.namespace, &mut self.mode];
        let owner = self.owner.iter_mut().flat_map(|o| {
            let AuditOwner {
                name, namespace, ..
            } = o;
            std::iter::once(name).chain(namespace)
        });
        let bypass = self
            .bypass
            .iter_mut()
            .flat_map(|b| b.reason.iter_mut().chain(&mut b.until));
        strings
            .into_iter()
            .chain(optional.into_iter().flatten())
            .chain(owner)
            .chain(bypass)
            .chain(&mut self.groups)
            .chain(self.windows.iter_mut().map(|w| &mut w.name))
            .for_each(cut_string);
        let more = self.groups.len().saturating_sub(CUT_ITEMS);
        if more > 0 {
            self.groups.truncate(CUT_ITEMS);
            self.groups
                .push(format!("...[cut by fluxgate: {more} more]"));
        }
        self.windows.truncate(CUT_ITEMS);
    }
}

/// `text` cut to its first [`CUT_BYTES`] and a marker, when longer.
fn cut_string(text: &mut String) {
    if text.len() <= CUT_BYTES {
        return;
    }
    let mut end = CUT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let more = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("...[cut by fluxgate: {more} more bytes]"));
}

impl AuditWindow {
    fn of(verdict: &WindowVerdict) -> AuditWindow {
        let Some(known) = &verdict.known else {
            return AuditWindow {
                name: verdict.name.clone(),
                exists: false,
                open: false,
                frozen: false,
                since: None,
                next: None,
                time_zone: None,
                override_: None,
            };
        };
        let state = &known.state;
        let instant = |t: DateTime<Utc>| {
            t.with_timezone(&known.time_zone)
                .to_rfc3339_opts(SecondsFormat::Secs, true)
        };
        AuditWindow {
            name: verdict.name.clone(),
            exists: true,
            open: state.open,
            frozen: state.freeze.is_some(),
            since: state.since.map(instant),
            next: state.next.map(instant),
            time_zone: Some(known.time_zone.name().to_owned()),
            override_: state.opened_by.as_ref().map(|o| AuditOverride {
                reason: o.reason.clone(),
                start: instant(o.start),
                end: instant(o.end),
            }),
        }
    }
}

/// Appends the audit line of one decision to `out`: [`AuditRecord::of`], then
/// [`AuditRecord::write_line`].
pub fn write_line(
    out: &mut Vec<u8>,
    request: &AdmissionRequest<Object>,
    decision: &Decision,
    caller: &str,
    time: DateTime<Utc>,
    duration_seconds: f64,
) {
    AuditRecord::of(request, decision, caller, time, duration_seconds).write_line(out);
}

// === sinks ===

/// Where audit records go.
pub trait AuditSink: Send + Sync {
    /// Writes whole [`write_line`] lines (one or more, as one write) and flushes them. May block:
    /// it runs on [`GroupCommit`]'s writer thread. A write that fails partway must leave the
    /// destination so that the next write starts on a fresh row (see [`write_lines`]).
    fn write(&self, lines: &[u8]) -> std::io::Result<()>;
    /// Reopens the destination (after log rotation); a no-op where that means nothing.
    fn reopen(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lines queued at most, in bytes, while the sink is slow: past this, lines are refused
/// (and their requests answered with an error) rather than held in memory.
pub const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// How long a write may take before the sink counts as stuck, unless set otherwise.
pub const DEFAULT_STALL_BOUND: Duration = Duration::from_secs(2);

/// Group commit on a writer thread: the lines of requests decided while the previous write ran
/// go to the sink in one write, and each request still answers only once its line is written.
///
/// The sink's write runs on a thread of its own, so a sink that blocks (a full pipe whose
/// reader stalled, a FIFO nobody reads) holds that thread and the queue, never an async
/// worker: probes and metrics keep answering. The queue is bounded ([`MAX_QUEUED_BYTES`]),
/// and once a write has taken longer than the stall bound, new lines are refused at once
/// ([`Unavailable`]) and `/readyz` says not ready, so the API server fails closed fast and its
/// traffic moves to another replica. A request that gives up waiting takes its line back if
/// the writer has not taken it yet ([`Queued::cancel`]): nothing unanswered is written later.
pub struct GroupCommit {
    shared: Arc<Shared>,
    stall_bound: Duration,
}

struct Shared {
    sink: Arc<dyn AuditSink>,
    queue: Mutex<Queue>,
    /// Signalled when the queue gets its first line, and on close.
    work: Condvar,
}

#[derive(Default)]
struct Queue {
    /// The lines of the open batch.
    lines: Vec<u8>,
    /// Each line of the open batch: its id and where it starts in `lines`.
    entries: Vec<(u64, usize)>,
    next_id: u64,
    batch: Arc<Batch>,
    /// When the write in progress began.
    writing_since: Option<Instant>,
    closed: bool,
}

/// One write's outcome, awaited by every request whose line it carries.
#[derive(Default)]
struct Batch {
    result: OnceLock<Result<(), (std::io::ErrorKind, String)>>,
    written: tokio::sync::Notify,
}

/// Why a line was not even queued.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("the audit log has not taken a write for {0:?}")]
    Stuck(Duration),
    #[error("the audit log is behind by {0} bytes of records")]
    Full(usize),
}

/// A line in the queue; [`Queued::wait`] resolves once it is written. Dropping it leaves the
/// line queued: a client that hangs up does not take back a decision that was made.
pub struct Queued {
    shared: Arc<Shared>,
    batch: Arc<Batch>,
    id: u64,
}

impl GroupCommit {
    pub fn new(sink: Arc<dyn AuditSink>) -> Self {
        let shared = Arc::new(Shared {
            sink,
            queue: Mutex::default(),
            work: Condvar::new(),
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run())
            .expect("cannot start the audit writer thread");
        GroupCommit {
            shared,
            stall_bound: DEFAULT_STALL_BOUND,
        }
    }

    /// How long a write may take before the sink counts as stuck (see [`Self::stalled`]).
    pub fn set_stall_bound(&mut self, bound: Duration) {
        self.stall_bound = bound;
    }

    pub fn stall_bound(&self) -> Duration {
        self.stall_bound
    }

    /// Queues one line, which `write` appends to the batch (see [`write_line`]), now; refused
    /// when the sink is stuck or too far behind.
    ///
    /// The line is serialised straight into the batch: a separate buffer per line would be
    /// one more allocation per request (BENCHMARKS.md).
    pub fn append(&self, write: impl FnOnce(&mut Vec<u8>)) -> Result<Queued, Unavailable> {
        let mut queue = self.shared.lock();
        if let Some(stuck) = queue.stuck_for(self.stall_bound) {
            return Err(Unavailable::Stuck(stuck));
        }
        if queue.lines.len() >= MAX_QUEUED_BYTES {
            return Err(Unavailable::Full(queue.lines.len()));
        }
        let start = queue.lines.len();
        let line = Partial::start(&mut queue.lines);
        write(line.lines);
        line.finish();
        let id = queue.next_id;
        queue.next_id += 1;
        queue.entries.push((id, start));
        if queue.entries.len() == 1 {
            self.shared.work.notify_one();
        }
        Ok(Queued {
            shared: self.shared.clone(),
            batch: queue.batch.clone(),
            id,
        })
    }

    /// How long the write in progress has taken, when that is past the stall bound.
    pub fn stalled(&self) -> Option<Duration> {
        self.shared.lock().stuck_for(self.stall_bound)
    }
}

impl Drop for GroupCommit {
    /// The writer thread writes what is queued, then ends.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_one();
    }
}

impl Queue {
    fn stuck_for(&self, bound: Duration) -> Option<Duration> {
        self.writing_since
            .map(|since| since.elapsed())
            .filter(|took| *took > bound)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The writer thread: takes the whole open batch, writes it, tells its requests.
    fn run(&self) {
        let mut lines = Vec::new();
        loop {
            let batch = {
                let mut queue = self.lock();
                while queue.entries.is_empty() && !queue.closed {
                    queue = self
                        .work
                        .wait(queue)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                if queue.entries.is_empty() {
                    return;
                }
                std::mem::swap(&mut queue.lines, &mut lines);
                queue.entries.clear();
                queue.writing_since = Some(Instant::now());
                std::mem::take(&mut queue.batch)
            };
            let result = self
                .sink
                .write(&lines)
                .map_err(|e| (e.kind(), e.to_string()));
            self.lock().writing_since = None;
            // The buffer serves a later batch; one that grew large under a stall is let go.
            lines.clear();
            lines.shrink_to(1024 * 1024);
            // Each batch is written once, so its result is set once and this cannot fail.
            let _ = batch.result.set(result);
            batch.written.notify_waiters();
        }
    }
}

impl Queued {
    /// Resolves once the line is written, or its write failed.
    pub async fn wait(&self) -> std::io::Result<()> {
        self.batch.wait().await
    }

    /// Takes the line back out of the queue if the writer has not taken it yet: `true` when
    /// it will never be written.
    pub fn cancel(&self) -> bool {
        let mut queue = self.shared.lock();
        if !Arc::ptr_eq(&queue.batch, &self.batch) {
            return false;
        }
        let Some(i) = queue.entries.iter().position(|(id, _)| *id == self.id) else {
            return false;
        };
        let start = queue.entries[i].1;
        let end = queue.entries.get(i + 1).map_or(queue.lines.len(), |e| e.1);
        queue.lines.drain(start..end);
        queue.entries.remove(i);
        for entry in &mut queue.entries[i..] {
            entry.1 -= end - start;
        }
        true
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

/// Writes `lines` to `out` and flushes, never leaving a torn row behind: `torn` remembers that
/// an earlier write stopped partway through a line (a full disk), and this write then starts
/// with a newline, so the fragment stays a row of its own and the records after it stay whole.
/// Where the destination can be cut back (`rewind`, a regular file), a failed write is undone
/// instead, and no fragment remains at all.
fn write_lines<W: Write>(
    out: &mut W,
    torn: &mut bool,
    lines: &[u8],
    rewind: impl FnOnce(&mut W) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if *torn {
        out.write_all(b"\n")?;
        *torn = false;
    }
    let mut written = 0;
    let result = loop {
        if written == lines.len() {
            break out.flush();
        }
        match out.write(&lines[written..]) {
            Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    if result.is_err() && written > 0 && rewind(out).is_err() {
        *torn = lines[written - 1] != b'\n';
    }
    result
}

/// Standard output: the default, for `kubectl logs` and cluster log collectors.
#[derive(Default)]
pub struct StdoutSink {
    torn: Mutex<bool>,
}

impl AuditSink for StdoutSink {
    fn write(&self, lines: &[u8]) -> std::io::Result<()> {
        let mut torn = self.torn.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = std::io::stdout().lock();
        // A pipe cannot be cut back.
        write_lines(&mut out, &mut torn, lines, |_| {
            Err(std::io::ErrorKind::Unsupported.into())
        })
    }
}

/// A file opened for append, reopened on SIGHUP so logrotate's move-and-signal works.
pub struct FileSink {
    path: PathBuf,
    file: Mutex<(std::fs::File, bool)>,
}

impl FileSink {
    pub fn open(path: PathBuf) -> std::io::Result<Self> {
        let file = Self::open_append(&path)?;
        Ok(FileSink {
            path,
            file: Mutex::new((file, false)),
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
        let mut guard = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (file, torn) = &mut *guard;
        // Where the file ended: a write that fails partway (a full disk) is cut back to it.
        let meta = file.metadata()?;
        let (regular, before) = (meta.is_file(), meta.len());
        write_lines(file, torn, lines, |file| {
            if !regular {
                return Err(std::io::ErrorKind::Unsupported.into());
            }
            file.set_len(before)
        })
    }

    fn reopen(&self) -> std::io::Result<()> {
        let fresh = Self::open_append(&self.path)?;
        *self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = (fresh, false);
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
            "CN=kube-apiserver",
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
            (record.decision, record.reason),
            (Outcome::Deny, Reason::WindowClosed)
        );
        assert_eq!(record.operation, Operation::Update);
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

    /// Records each write it is given; fails every write when `fail` is set; each write
    /// takes `delay`, and waits while `gate` is closed (a stalled reader).
    #[derive(Default)]
    struct Writes {
        writes: Mutex<Vec<Vec<u8>>>,
        fail: bool,
        delay: Duration,
        gate: Mutex<bool>,
        opened: Condvar,
    }

    impl AuditSink for Writes {
        fn write(&self, lines: &[u8]) -> std::io::Result<()> {
            let mut closed = self.gate.lock().unwrap();
            while *closed {
                closed = self.opened.wait(closed).unwrap();
            }
            drop(closed);
            std::thread::sleep(self.delay);
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

        fn set_gate(&self, closed: bool) {
            *self.gate.lock().unwrap() = closed;
            self.opened.notify_all();
        }
    }

    fn text(line: &'static str) -> impl FnOnce(&mut Vec<u8>) {
        move |out| out.extend_from_slice(line.as_bytes())
    }

    #[tokio::test]
    async fn concurrent_lines_share_writes_and_each_waits_for_its_own() {
        let sink = Arc::new(Writes {
            delay: Duration::from_millis(2),
            ..Writes::default()
        });
        let log = Arc::new(GroupCommit::new(sink.clone()));
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let (log, sink) = (log.clone(), sink.clone());
                tokio::spawn(async move {
                    let line = format!("line {i}\n");
                    log.append(|out| out.extend_from_slice(line.as_bytes()))
                        .unwrap()
                        .wait()
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
                tokio::spawn(async move { log.append(text("x\n")).unwrap().wait().await })
            })
            .collect();
        for task in tasks {
            let error = task.await.unwrap().unwrap_err();
            assert_eq!(error.to_string(), "disk full");
        }
    }

    #[tokio::test]
    async fn a_writer_that_panics_halfway_leaves_no_half_line() {
        let sink = Arc::new(Writes::default());
        let log = GroupCommit::new(sink.clone());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(log.append(|out| {
                out.extend_from_slice(b"half a li");
                panic!("a bug in a writer");
            }));
        }));
        assert!(panicked.is_err());
        log.append(text("whole\n")).unwrap().wait().await.unwrap();
        assert_eq!(sink.lines(), ["whole"]);
    }

    #[tokio::test]
    async fn a_line_whose_request_went_away_is_still_written() {
        let sink = Arc::new(Writes::default());
        let log = GroupCommit::new(sink.clone());
        drop(log.append(text("gone\n")).unwrap()); // the client hung up
        log.append(text("next\n")).unwrap().wait().await.unwrap();
        assert_eq!(sink.lines(), ["gone", "next"]);
    }

    /// A sink that blocks (a stalled stdout reader) blocks only the writer thread: lines
    /// queue, then are refused; a request that gives up takes its line back; once the sink
    /// drains, what was queued is written once and new lines flow again.
    #[tokio::test]
    async fn a_stuck_sink_refuses_lines_and_resumes_losing_and_doubling_none() {
        let sink = Arc::new(Writes::default());
        sink.set_gate(true);
        let mut log = GroupCommit::new(sink.clone());
        log.set_stall_bound(Duration::from_millis(50));
        let first = log.append(text("first\n")).unwrap();
        // The writer takes `first` and blocks in the sink.
        while log.shared.lock().writing_since.is_none() {
            tokio::task::yield_now().await;
        }
        let given_up = log.append(text("given up\n")).unwrap();
        let kept = log.append(text("kept\n")).unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(100), first.wait())
                .await
                .is_err(),
            "the write is stuck"
        );
        assert!(log.stalled().is_some());
        assert!(matches!(
            log.append(text("refused\n")),
            Err(Unavailable::Stuck(_))
        ));
        assert!(given_up.cancel(), "not taken by the writer yet");
        assert!(!first.cancel(), "already in the stuck write");
        sink.set_gate(false);
        first.wait().await.unwrap();
        kept.wait().await.unwrap();
        assert!(log.stalled().is_none());
        log.append(text("after\n")).unwrap().wait().await.unwrap();
        assert_eq!(sink.lines(), ["first", "kept", "after"]);
    }

    /// Accepts `room` bytes, then fails every write with ENOSPC, as a full disk does.
    struct FullDisk {
        out: Vec<u8>,
        room: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.room);
            if n == 0 {
                return Err(std::io::Error::from_raw_os_error(28));
            }
            self.room -= n;
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_that_stops_partway_leaves_no_line_glued_to_it() {
        let mut disk = FullDisk {
            out: Vec::new(),
            room: 20,
        };
        let mut torn = false;
        let cannot_rewind = |_: &mut FullDisk| Err(std::io::ErrorKind::Unsupported.into());
        write_lines(
            &mut disk,
            &mut torn,
            b"{\"uid\":\"1\"}\n{\"uid\":\"2\"}\n",
            cannot_rewind,
        )
        .unwrap_err();
        assert!(torn);
        disk.room = 1000; // space again
        write_lines(&mut disk, &mut torn, b"{\"uid\":\"3\"}\n", cannot_rewind).unwrap();
        let text = String::from_utf8(disk.out.clone()).unwrap();
        assert_eq!(text, "{\"uid\":\"1\"}\n{\"uid\":\"\n{\"uid\":\"3\"}\n");
        // The fragment is a row of its own; every record after it parses.
        assert!(serde_json::from_str::<Value>(text.lines().last().unwrap()).is_ok());

        // Where the file can be cut back, the failed write leaves nothing at all.
        let mut disk = FullDisk {
            out: b"{\"uid\":\"0\"}\n".to_vec(),
            room: 5,
        };
        let mut torn = false;
        let rewind = |disk: &mut FullDisk| {
            disk.out.truncate(12);
            Ok(())
        };
        write_lines(&mut disk, &mut torn, b"{\"uid\":\"1\"}\n", rewind).unwrap_err();
        assert_eq!(disk.out, b"{\"uid\":\"0\"}\n");
        assert!(!torn);
    }

    #[test]
    fn an_oversized_forged_request_is_cut_into_one_readable_line() {
        let mut review_json = fixture("human-patch-deployment.json");
        let huge = "x\"".repeat(3 * 1024 * 1024); // 6 MiB, twice that escaped
        review_json["request"]["name"] = json!(huge);
        review_json["request"]["userInfo"]["username"] = json!(huge);
        review_json["request"]["userInfo"]["groups"] =
            json!((0..5000).map(|i| format!("group-{i}")).collect::<Vec<_>>());
        let body = serde_json::to_vec(&review_json).unwrap();
        let windows = crate::load::load_windows(&[]).unwrap();
        let now = DateTime::parse_from_rfc3339(CLOSED).unwrap().to_utc();
        let reviewed = review(&body, &windows, &Policy::default(), now).unwrap();
        let mut line = b"previous line\n".to_vec();
        write_line(
            &mut line,
            &reviewed.request,
            &reviewed.decision,
            "unverified 10.0.0.9:1234",
            now,
            0.1,
        );
        let line = &line[b"previous line\n".len()..];
        assert!(line.len() <= MAX_LINE_BYTES, "{} bytes", line.len());
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let record: AuditRecord = serde_json::from_slice(line).unwrap();
        assert!(record.name.starts_with("x\"x\""));
        assert!(
            record
                .name
                .ends_with("...[cut by fluxgate: 6290432 more bytes]"),
            "{}",
            &record.name[1000..]
        );
        assert_eq!(record.groups.len(), CUT_ITEMS + 1);
        assert_eq!(
            record.groups.last().unwrap(),
            "...[cut by fluxgate: 4968 more]"
        );
        assert_eq!(record.caller, "unverified 10.0.0.9:1234");
        assert_eq!(record.reason, Reason::NotFlux);
    }

    #[test]
    fn a_person_is_recorded_with_groups() {
        let (_, record) = line_of(&fixture("human-patch-deployment.json"));
        assert_eq!(record.reason, Reason::NotFlux);
        assert!(!record.user.is_empty());
        assert!(!record.groups.is_empty());
    }
}
