//! Serving a router over TLS on a real socket, and draining it on shutdown.
//!
//! Each connection gets a bounded TLS handshake and a bounded header read, so a client that
//! connects and says nothing costs a file descriptor for seconds, not forever; the number of open
//! connections is capped, in all and per peer address, so that one peer (a hostile pod opening
//! idle sockets) cannot take the slots the API server needs. Once shutdown begins (`draining`),
//! every HTTP/1 response says `Connection: close`, so keep-alive clients move off while the
//! server still serves; when the delay ends the listener closes, connections finish the request
//! they are serving (HTTP/1 closes, HTTP/2 gets a GOAWAY), and the drain has a deadline.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::idle::IdleStream;
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

/// The connections open per peer address; a [`PeerSlot`] gives its slot back on drop.
#[derive(Default)]
struct Peers {
    open: Mutex<HashMap<IpAddr, usize>>,
}

struct PeerSlot {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    fn take(self: &Arc<Self>, ip: IpAddr, most: usize) -> Option<PeerSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_default();
        if *count >= most {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
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
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let peers = Arc::new(Peers::default());
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
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
        // The peer's slot first: a peer at its limit must not take one of the shared slots.
        let Some(peer_slot) = peers.take(peer.ip(), limits.max_connections_per_peer) else {
            tracing::warn!(%peer, max = limits.max_connections_per_peer, "too many connections from this address; closing");
            continue;
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "too many connections; closing");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        let handshake_timeout = limits.tls_handshake_timeout;
        let idle_timeout = limits.idle_timeout;
        let draining = draining.clone();
        tokio::spawn(async move {
            let _permit = (permit, peer_slot);
            // hyper's header timer only starts at a request's first byte: without this, a
            // client that completes TLS and then stays silent would hold a connection forever.
            let tcp = IdleStream::new(tcp, idle_timeout);
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
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
            // HTTP/2 has no `Connection` header: its clients get a GOAWAY when the delay ends.
            let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            let service = TowerToHyperService::new(
                app.map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
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
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("stopped accepting connections; draining in-flight requests");
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?limits.drain_timeout, "drain timed out; closing remaining connections");
    }
}
