//! Where audit lines go: exactly one line per decision, for people to review.
//!
//! An [`AuditSink`] writes whole lines under a lock, so lines never interleave, and a write
//! that stops partway never leaves the next line on the same row; `GroupCommit` hands the
//! lines of concurrent requests to a writer thread of its own, which writes them as one batch,
//! and answers each request once its line is written: a record is on its way to disk before
//! the API server hears the answer, and a sink that blocks (a stalled stdout reader, a FIFO)
//! blocks that thread, never the async workers. Application logs go elsewhere (stderr). The
//! lines themselves are `fluxgate_core::audit::AuditRecord`s.

use fluxgate_core::audit::AuditRecord;
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Where audit records go.
pub trait AuditSink: Send + Sync {
    /// Writes whole [`AuditRecord::write_line`] lines (one or more, as one write) and flushes them. May block:
    /// it runs on `GroupCommit`'s writer thread. A write that fails partway must leave the
    /// destination so that the next write starts on a fresh row (see `write_lines`), and say
    /// how much of `lines` stays written ([`Failed::kept`]): those whole lines are records.
    fn write(&self, lines: &[u8]) -> Result<(), Failed>;
    /// Reopens the destination (after log rotation); a no-op where that means nothing.
    fn reopen(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A write that failed, and how much of it stays written.
#[derive(Debug)]
pub struct Failed {
    pub error: std::io::Error,
    /// The first bytes of the lines that stay written: 0 where the failed write was undone,
    /// more where it cannot be (a pipe). Each whole line among them is a record, and its
    /// request is answered as written.
    pub kept: usize,
}

impl From<std::io::Error> for Failed {
    /// Nothing of the write stays.
    fn from(error: std::io::Error) -> Self {
        Failed { error, kept: 0 }
    }
}

/// Lines queued at most, in bytes, while the sink is slow: past this, lines are refused
/// (and their requests answered with an error) rather than held in memory.
pub(crate) const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// How long a write may take before the sink counts as stuck, unless set otherwise.
pub(crate) const DEFAULT_STALL_BOUND: Duration = Duration::from_secs(2);

/// Group commit on a writer thread: the lines of requests decided while the previous write ran
/// go to the sink in one write, and each request still answers only once its line is written.
///
/// The sink's write runs on a thread of its own, so a sink that blocks (a full pipe whose
/// reader stalled, a FIFO nobody reads) holds that thread and the queue, never an async
/// worker: probes and metrics keep answering. The queue is bounded ([`MAX_QUEUED_BYTES`]),
/// and once a write has taken longer than the stall bound, new lines are refused at once
/// ([`Unavailable`]) and `/readyz` says not ready, so the API server fails closed fast and its
/// traffic moves to another replica. A request that gives up waiting takes its line back if
/// the writer has not taken it yet ([`Queued::cancel`]); once taken, the line is in a write
/// whose outcome alone answers the request, so nothing answered with an error is written,
/// early or late. A write that fails partway and cannot be undone reports the whole lines it
/// kept ([`Failed::kept`]): their requests are answered as written.
pub(crate) struct GroupCommit {
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
    result: OnceLock<Result<(), BatchFailed>>,
    written: tokio::sync::Notify,
}

/// Why a batch's write failed, and the lines it wrote all the same (their ids).
#[derive(Clone)]
struct BatchFailed {
    kind: std::io::ErrorKind,
    message: String,
    kept: Vec<u64>,
}

/// Why a line was not even queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unavailable {
    #[error("the audit log has not taken a write for {0:?}")]
    Stuck(Duration),
    #[error("the audit log is behind by {0} bytes of records")]
    Full(usize),
}

/// A line in the queue; [`Queued::wait`] resolves once it is written. Dropping it leaves the
/// line queued: a client that hangs up does not take back a decision that was made.
pub(crate) struct Queued {
    shared: Arc<Shared>,
    batch: Arc<Batch>,
    id: u64,
}

impl GroupCommit {
    pub(crate) fn new(sink: Arc<dyn AuditSink>) -> Self {
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
    pub(crate) fn with_stall_bound(mut self, bound: Duration) -> Self {
        self.stall_bound = bound;
        self
    }

    pub(crate) fn stall_bound(&self) -> Duration {
        self.stall_bound
    }

    /// Queues one line, which `write` appends to the batch (see [`AuditRecord::write_line`]), now; refused
    /// when the sink is stuck or too far behind.
    ///
    /// The line is serialised straight into the batch: a separate buffer per line would be
    /// one more allocation per request (BENCHMARKS.md).
    pub(crate) fn append(&self, write: impl FnOnce(&mut Vec<u8>)) -> Result<Queued, Unavailable> {
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
        let first = queue.entries.len() == 1;
        let queued = Queued {
            shared: self.shared.clone(),
            batch: queue.batch.clone(),
            id,
        };
        // Woken after the lock is let go, so the writer does not wake only to wait for it.
        drop(queue);
        if first {
            self.shared.work.notify_one();
        }
        Ok(queued)
    }

    /// How long the write in progress has taken, when that is past the stall bound.
    pub(crate) fn stalled(&self) -> Option<Duration> {
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
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock()
    }

    /// The writer thread: takes the whole open batch, writes it, tells its requests.
    fn run(&self) {
        let (mut lines, mut entries) = (Vec::new(), Vec::new());
        loop {
            let batch = {
                let mut queue = self.lock();
                while queue.entries.is_empty() && !queue.closed {
                    self.work.wait(&mut queue);
                    // Woken by the first line of a batch: let the requests being decided on
                    // this core add theirs before taking it, or each write carries one line.
                    // On one core that was 27,000 context switches a second at 8,200 requests/s,
                    // and is 5,800 at 10,600 (BENCHMARKS.md). With nothing else ready to run,
                    // this returns at once.
                    drop(queue);
                    std::thread::yield_now();
                    queue = self.lock();
                }
                if queue.entries.is_empty() {
                    return;
                }
                std::mem::swap(&mut queue.lines, &mut lines);
                std::mem::swap(&mut queue.entries, &mut entries);
                queue.writing_since = Some(Instant::now());
                std::mem::take(&mut queue.batch)
            };
            let result = self.sink.write(&lines).map_err(|failed| {
                // The lines wholly inside what stays written are records: so are their answers.
                let ends = entries.iter().skip(1).map(|e| e.1).chain([lines.len()]);
                let kept = entries
                    .iter()
                    .zip(ends)
                    .take_while(|(_, end)| *end <= failed.kept)
                    .map(|((id, _), _)| *id)
                    .collect();
                BatchFailed {
                    kind: failed.error.kind(),
                    message: failed.error.to_string(),
                    kept,
                }
            });
            self.lock().writing_since = None;
            // The buffers serve a later batch; one that grew large under a stall is let go.
            lines.clear();
            lines.shrink_to(1024 * 1024);
            entries.clear();
            // Each batch is written once, so its result is set once and this cannot fail.
            let _ = batch.result.set(result);
            batch.written.notify_waiters();
        }
    }
}

impl Queued {
    /// Resolves once the line is written, or its write failed.
    pub(crate) async fn wait(&self) -> std::io::Result<()> {
        self.batch.wait(self.id).await
    }

    /// Takes the line back out of the queue if the writer has not taken it yet: `true` when
    /// it will never be written.
    pub(crate) fn cancel(&self) -> bool {
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
/// lines after it stay whole (the queue's lock does not poison, so they are still taken).
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
    /// The outcome for line `id`: written when the write succeeded or kept it whole.
    async fn wait(&self, id: u64) -> std::io::Result<()> {
        loop {
            let written = self.written.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            match self.result.get() {
                Some(Ok(())) => return Ok(()),
                Some(Err(failed)) if failed.kept.contains(&id) => return Ok(()),
                Some(Err(failed)) => {
                    return Err(std::io::Error::new(failed.kind, failed.message.clone()));
                }
                None => written.await,
            }
        }
    }
}

/// Writes `lines` to `out` and flushes, never leaving a torn row behind: `torn` remembers that
/// an earlier write stopped partway through a line (a full disk), and this write then starts
/// with a newline, so the fragment stays a row of its own and the records after it stay whole.
/// Where the destination can be cut back (`rewind`, a regular file), a failed write is undone
/// instead, and no fragment remains at all; where it cannot, the failure says how much of
/// `lines` stays written.
fn write_lines<W: Write>(
    out: &mut W,
    torn: &mut bool,
    lines: &[u8],
    rewind: impl FnOnce(&mut W) -> std::io::Result<()>,
) -> Result<(), Failed> {
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
    let Err(error) = result else {
        return Ok(());
    };
    if written > 0 && rewind(out).is_err() {
        *torn = lines[written - 1] != b'\n';
        return Err(Failed {
            error,
            kept: written,
        });
    }
    Err(error.into())
}

/// Standard output: the default, for `kubectl logs` and cluster log collectors.
#[derive(Default)]
pub(crate) struct StdoutSink {
    torn: Mutex<bool>,
}

impl AuditSink for StdoutSink {
    fn write(&self, lines: &[u8]) -> Result<(), Failed> {
        let mut torn = self.torn.lock();
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
}

impl AuditSink for FileSink {
    fn write(&self, lines: &[u8]) -> Result<(), Failed> {
        let mut guard = self.file.lock();
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
        *self.file.lock() = (fresh, false);
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
        self.records.lock().clone()
    }
}

impl AuditSink for MemorySink {
    fn write(&self, lines: &[u8]) -> Result<(), Failed> {
        let records = serde_json::Deserializer::from_slice(lines)
            .into_iter::<AuditRecord>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(std::io::Error::from)?;
        self.records.lock().extend(records);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Records each write it is given; fails every write when `fail` is set, and every write
    /// after the first when `pipe_breaks` is (a pipe whose reader went away partway: the
    /// write's first line and 3 bytes got out); each write takes `delay`, and waits while
    /// `gate` is closed (a stalled reader).
    #[derive(Default)]
    struct Writes {
        writes: Mutex<Vec<Vec<u8>>>,
        fail: bool,
        pipe_breaks: bool,
        delay: Duration,
        gate: Mutex<bool>,
        opened: Condvar,
    }

    impl AuditSink for Writes {
        fn write(&self, lines: &[u8]) -> Result<(), Failed> {
            let mut closed = self.gate.lock();
            while *closed {
                self.opened.wait(&mut closed);
            }
            drop(closed);
            std::thread::sleep(self.delay);
            if self.fail {
                return Err(std::io::Error::other("disk full").into());
            }
            let mut writes = self.writes.lock();
            if self.pipe_breaks && !writes.is_empty() {
                let first = lines.iter().position(|&b| b == b'\n').unwrap() + 1;
                return Err(Failed {
                    error: std::io::ErrorKind::BrokenPipe.into(),
                    kept: first + 3,
                });
            }
            writes.push(lines.to_vec());
            Ok(())
        }
    }

    impl Writes {
        fn lines(&self) -> Vec<String> {
            let writes = self.writes.lock();
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
            *self.gate.lock() = closed;
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
        let writes = sink.writes.lock().len();
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
        let log = GroupCommit::new(sink.clone()).with_stall_bound(Duration::from_millis(50));
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

    /// Issue 21 (6): a batch whose write stops partway where it cannot be undone (a pipe) still
    /// wrote its first whole lines: those requests are answered as written, the others with
    /// the error, so no request answered with an error has a record.
    #[tokio::test]
    async fn a_write_that_fails_partway_answers_the_whole_lines_it_kept_as_written() {
        let sink = Arc::new(Writes {
            pipe_breaks: true,
            ..Writes::default()
        });
        sink.set_gate(true);
        let log = GroupCommit::new(sink.clone());
        let first = log.append(text("first\n")).unwrap();
        while log.shared.lock().writing_since.is_none() {
            tokio::task::yield_now().await;
        }
        // Queued while the first write runs: one batch, of which the pipe takes "kept\nhal".
        let batch: Vec<_> = ["kept\n", "half\n", "lost\n"]
            .map(|line| log.append(text(line)).unwrap())
            .into();
        sink.set_gate(false);
        first.wait().await.unwrap();
        let mut outcomes = Vec::new();
        for line in &batch {
            outcomes.push(line.wait().await.is_ok());
        }
        assert_eq!(outcomes, [true, false, false]);
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
}
