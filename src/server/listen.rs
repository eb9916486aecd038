//! Serving a router over TLS on a real socket, and draining it on shutdown.
//!
//! Each connection gets a bounded TLS handshake and a bounded header read, so a client that
//! connects and says nothing costs a file descriptor for seconds, not forever; the number of open
//! connections is capped. On shutdown the listener closes, connections finish the request they
//! are serving (HTTP/1 gets `Connection: close`, HTTP/2 a GOAWAY), and the drain has a deadline.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::idle::IdleStream;
use super::tls::PeerIdentity;

/// Connection-level limits.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    pub tls_handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    /// A connection that sends nothing (or reads nothing we write) this long is closed.
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// How long in-flight requests get to finish after shutdown begins.
    pub drain_timeout: Duration,
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, then drains.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
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
        tokio::spawn(async move {
            let _permit = permit;
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
            let identity = PeerIdentity {
                verified_client: stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .is_some_and(|c| !c.is_empty()),
            };
            // Only a verified client is marked: an unmarked request is an unverified one, and
            // inserting an extension costs an allocation per request.
            let service = TowerToHyperService::new(app.map_request(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    if identity.verified_client {
                        request.extensions_mut().insert(identity);
                    }
                    request
                },
            ));
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
