//! Serving a router over TLS on a real socket, and draining it on shutdown.
//!
//! Each connection gets a bounded TLS handshake and a bounded header read, so a client that
//! connects and says nothing costs a file descriptor for seconds, not forever; the number of open
//! connections is capped, in all and per peer address, so that one peer (a hostile pod opening
//! idle sockets) cannot take the slots the API server needs. Once shutdown begins (`draining`),
//! every HTTP/1 response says `Connection: close`, so keep-alive clients move off while the
//! server still serves; when the delay ends the connections the kernel has queued are taken
//! and the listener closes, connections finish the request they are serving (HTTP/1 closes,
//! HTTP/2 gets a GOAWAY) or, if they have not sent one yet, their first, and the drain has a
//! deadline.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tower::ServiceExt;

use super::idle::IdleStream;
use super::peer_limit::{Full, PeerLimit};
use super::tls::PeerIdentity;

/// Connection-level limits.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionLimits {
    pub(crate) tls_handshake_timeout: Duration,
    pub(crate) header_read_timeout: Duration,
    /// A connection that sends nothing (or reads nothing we write) this long is closed.
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
    /// Open connections from one IP address at most, TLS handshakes included.
    pub(crate) max_connections_per_peer: usize,
    /// How long in-flight requests get to finish after shutdown begins.
    pub(crate) drain_timeout: Duration,
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, then drains. From when
/// `draining` is set (shutdown began; the caller then waits out its delay before `shutdown`
/// completes), HTTP/1 responses carry `Connection: close`.
pub(crate) async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    limits: ConnectionLimits,
    draining: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop, stopped) = watch::channel(false);
    let connections = Connections::new(tls, app, &limits, draining, stopped);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        connections.serve(tcp, peer);
    }
    let queued = take_queued(listener, limits.max_connections);
    tracing::info!(
        queued = queued.len(),
        "stopped accepting connections; draining in-flight requests"
    );
    for (tcp, peer) in queued {
        connections.serve(tcp, peer);
    }
    drop(connections);
    stop.send_replace(true);
    if tokio::time::timeout(limits.drain_timeout, stop.closed())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?limits.drain_timeout, "drain timed out; closing remaining connections");
    }
}

/// Takes the connections the kernel has queued on `listener` (at most `most`), then closes it.
/// Their TCP handshake is done and their clients may have sent a request: closing the listener
/// over them would reset them unanswered. A connection queued between the last accept and the
/// close is still reset: that window is the time between two system calls.
fn take_queued(listener: TcpListener, most: usize) -> Vec<(TcpStream, SocketAddr)> {
    // Taken back from tokio: a plain accept on a non-blocking socket says `WouldBlock` when the
    // queue is empty, where tokio's waits for the reactor to say it is ready.
    let listener = match listener.into_std() {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%error, "cannot take the connections queued at shutdown; they are reset");
            return Vec::new();
        }
    };
    let mut taken = Vec::new();
    for _ in 0..most {
        match listener.accept() {
            Ok(accepted) => taken.push(accepted),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            // A client that gave up while queued, or a signal: the next may be fine.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot take the connections queued at shutdown; the rest are reset");
                break;
            }
        }
    }
    drop(listener);
    taken
        .into_iter()
        .filter_map(|(tcp, peer)| {
            // An accepted socket does not inherit the listener's non-blocking mode.
            let tcp = tcp
                .set_nonblocking(true)
                .and_then(|()| TcpStream::from_std(tcp));
            match tcp {
                Ok(tcp) => Some((tcp, peer)),
                Err(error) => {
                    tracing::warn!(%peer, %error, "cannot serve a connection queued at shutdown");
                    None
                }
            }
        })
        .collect()
}

/// What every connection is served with.
struct Connections {
    acceptor: TlsAcceptor,
    /// A builder per protocol, chosen by ALPN: hyper's detection of the protocol waits for the
    /// request's first bytes, and a graceful shutdown that begins before they come (the
    /// connections taken from the queue at shutdown, a TLS handshake that ends after the delay)
    /// closed the connection unanswered.
    http1: Arc<Builder<TokioExecutor>>,
    http2: Arc<Builder<TokioExecutor>>,
    app: Router,
    /// Open connections, in all and per peer address.
    open: PeerLimit,
    limits: ConnectionLimits,
    draining: Arc<AtomicBool>,
    /// Turns true when the delay ends: each connection (HTTP/1) finishes the request it serves,
    /// or gets a GOAWAY (HTTP/2). The drain lasts until every connection has let go of it.
    stop: watch::Receiver<bool>,
}

impl Connections {
    fn new(
        tls: Arc<ServerConfig>,
        app: Router,
        limits: &ConnectionLimits,
        draining: Arc<AtomicBool>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        builder.http2().timer(TokioTimer::new());
        Connections {
            acceptor: TlsAcceptor::from(tls),
            http1: Arc::new(builder.clone().http1_only()),
            http2: Arc::new(builder.http2_only()),
            app,
            open: PeerLimit::new(limits.max_connections, limits.max_connections_per_peer),
            limits: limits.clone(),
            draining,
            stop,
        }
    }

    /// Serves one accepted connection on a task of its own.
    fn serve(&self, tcp: TcpStream, peer: SocketAddr) {
        let slot = match self.open.try_take(peer.ip(), 1) {
            Ok(slot) => slot,
            Err(Full::Peer) => {
                tracing::warn!(%peer, max = self.limits.max_connections_per_peer, "too many connections from this address; closing");
                return;
            }
            Err(Full::All) => {
                tracing::warn!(%peer, max = self.limits.max_connections, "too many connections; closing");
                return;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = self.acceptor.clone();
        let (http1_builder, http2_builder) = (self.http1.clone(), self.http2.clone());
        let app = self.app.clone();
        let limits = self.limits.clone();
        let header_read_timeout = self.limits.header_read_timeout;
        let draining = self.draining.clone();
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Some((stream, identity)) = handshake(&acceptor, tcp, peer, &limits).await else {
                return;
            };
            // HTTP/2 has no `Connection` header: its clients get a GOAWAY when the delay ends.
            // Without ALPN a client speaks HTTP/1.1 (RFC 7301; HTTP/2 over TLS needs it).
            let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            let first_request = Arc::new(Notify::new());
            let request_seen = first_request.clone();
            let service = TowerToHyperService::new(
                app.map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request_seen.notify_one();
                    request.extensions_mut().insert(identity.clone());
                    request
                })
                .map_response(move |mut response: axum::response::Response| {
                    if !http2 && draining.load(Ordering::Acquire) {
                        response.headers_mut().insert(
                            hyper::header::CONNECTION,
                            hyper::header::HeaderValue::from_static("close"),
                        );
                    }
                    response
                }),
            );
            let builder = if http2 { http2_builder } else { http1_builder };
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            // hyper closes an HTTP/1 connection that has read nothing yet when told to shut
            // down: one taken from the queue at shutdown, or whose handshake ended as the delay
            // did, would be closed under its first request. So a connection hears of the
            // shutdown once its first request is in, or a header read timeout after its handshake.
            let told = async {
                let _ = tokio::time::timeout(header_read_timeout, first_request.notified()).await;
                // An error is a sender gone: shutting down all the same.
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            let ended = tokio::select! {
                ended = connection.as_mut() => Some(ended),
                () = told => None,
            };
            let ended = match ended {
                Some(ended) => ended,
                None => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

/// The TLS handshake of `tcp`, within its timeout, and who the peer is.
async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    limits: &ConnectionLimits,
) -> Option<(TlsStream<IdleStream<TcpStream>>, PeerIdentity)> {
    // hyper's header timer only starts at a request's first byte: without this, a client that
    // completes TLS and then stays silent would hold a connection forever.
    let tcp = IdleStream::new(tcp, limits.idle_timeout);
    let stream =
        match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return None;
            }
        };
    // rustls only completes a handshake with a certificate that chains to --client-ca.
    let identity = PeerIdentity {
        subject: stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| super::tls::subject(cert).into()),
        address: peer,
    };
    Some((stream, identity))
}
