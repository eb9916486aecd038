//! The idle timeout of a connection: a read or a write that stays pending this long fails with
//! `TimedOut`, which ends the connection.
//!
//! Each direction keeps one timer for the life of the connection and re-arms it lazily, only
//! when it fires early. `tokio-io-timeout`, which this replaces, moved its timer back to "now"
//! after every read that completed; each such move wakes the runtime's driver thread (an
//! eventfd write and a wake-up per request), which cost more CPU than anything else the server
//! adds to a request (BENCHMARKS.md). Here a completed read or write touches no timer at all.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `inner` with an idle timeout on reads and on writes.
pub(crate) struct IdleStream<S> {
    inner: S,
    timeout: Duration,
    read: Stall,
    write: Stall,
}

/// How long one direction has been waiting.
struct Stall {
    /// When the current wait began: the first `Pending` since the last completed operation.
    since: Option<Instant>,
    /// Fires at or before `since + timeout`; checked, and moved forward, only when it fires.
    timer: Pin<Box<Sleep>>,
}

impl<S> IdleStream<S> {
    pub(crate) fn new(inner: S, timeout: Duration) -> Self {
        let now = Instant::now();
        IdleStream {
            inner,
            timeout,
            read: Stall::new(now + timeout),
            write: Stall::new(now + timeout),
        }
    }
}

impl Stall {
    fn new(first_check: Instant) -> Self {
        Stall {
            since: None,
            timer: Box::pin(tokio::time::sleep_until(first_check)),
        }
    }

    /// Passes on `poll` of one operation in this direction: a completed one starts the next wait
    /// afresh, a pending one is held to the timeout.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        timeout: Duration,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.since = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                self.pending(cx, timeout)?;
                Poll::Pending
            }
        }
    }

    /// The operation is pending: `Err` once it has waited `timeout`, else makes sure this task
    /// is woken no later than that.
    fn pending(&mut self, cx: &mut Context<'_>, timeout: Duration) -> io::Result<()> {
        let since = *self.since.get_or_insert_with(Instant::now);
        let deadline = since + timeout;
        loop {
            // The timer is only ever set to a deadline, and deadlines only move forward: it fires
            // at or before this one, and is checked when it does.
            if self.timer.is_elapsed() {
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connection idle for {timeout:?}"),
                    ));
                }
                self.timer.as_mut().reset(deadline);
            }
            match self.timer.as_mut().poll(cx) {
                Poll::Pending => return Ok(()),
                // Fired between the check and the poll: check again.
                Poll::Ready(()) => continue,
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.read.watch(cx, this.timeout, poll)
    }
}

impl<S: AsyncWrite + Unpin> IdleStream<S> {
    /// Runs one write-side operation under the write timeout.
    fn poll_writing<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let poll = op(Pin::new(&mut self.inner), cx);
        self.write.watch(cx, self.timeout, poll)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_writing(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_writing(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_writing(cx, |inner, cx| inner.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_writing(cx, |inner, cx| inner.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    const TIMEOUT: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn a_read_that_waits_the_whole_timeout_fails() {
        let (_peer, stream) = duplex(64);
        let mut stream = IdleStream::new(stream, TIMEOUT);
        let started = Instant::now();
        let err = stream.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_keeps_talking_lives_past_the_timeout() {
        let (mut peer, stream) = duplex(64);
        let mut stream = IdleStream::new(stream, TIMEOUT);
        let started = Instant::now();
        // Five minutes of a byte every 40 s: each wait is shorter than the timeout.
        let talker = tokio::spawn(async move {
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_secs(40)).await;
                peer.write_all(b"x").await.unwrap();
            }
            peer
        });
        let mut buf = [0; 1];
        for _ in 0..8 {
            stream.read_exact(&mut buf).await.unwrap();
        }
        assert_eq!(started.elapsed(), Duration::from_secs(320));
        let _peer = talker.await.unwrap();
        // Then silence: the wait that follows is cut a full timeout after the last byte.
        let err = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(320) + TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_reads_fails() {
        let (_peer, stream) = duplex(16);
        let mut stream = IdleStream::new(stream, TIMEOUT);
        let started = Instant::now();
        let err = stream.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_is_cut_only_once_it_stops() {
        let (mut peer, stream) = duplex(16);
        let mut stream = IdleStream::new(stream, TIMEOUT);
        // The peer drains 16 bytes every 50 s: each of our waits is shorter than the timeout.
        let reader = tokio::spawn(async move {
            let mut buf = [0; 16];
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_secs(50)).await;
                peer.read_exact(&mut buf).await.unwrap();
            }
            peer
        });
        stream.write_all(&[0; 64]).await.unwrap();
        let _peer = reader.await.unwrap();
        let started = Instant::now();
        let err = stream.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), TIMEOUT);
    }
}
