//! The load test's baseline: a bare axum + rustls server that parses the same AdmissionReview
//! (into the same types fluxgate uses, so parsing costs the same) and answers "allowed" — no
//! windows, no decision, no audit, no metrics, no limits. fluxgate's throughput divided by this
//! one's is the cost of everything fluxgate adds on top of TLS, HTTP and parsing (BENCHMARKS.md).
//!
//! `cargo run --release --example baseline -- 127.0.0.1:8444 /tmp/baseline-ca.pem`

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use kube::core::admission::AdmissionResponse;
use std::sync::Arc;

async fn validate(body: Bytes) -> axum::response::Response {
    // The same one-pass parse fluxgate uses, so the two servers pay the same for JSON.
    let Ok(request) = fluxgate_core::admission::parse_request(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let response = AdmissionResponse::from(&request).into_review();
    axum::Json(response).into_response()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8444".into());
    let ca_out = args.next().unwrap_or_else(|| "/tmp/baseline-ca.pem".into());
    let certs = fluxgate::certs::generate(&[], chrono::Utc::now())?;
    std::fs::write(&ca_out, &certs.ca_pem)?;
    let key =
        fluxgate::server::tls::certified_key(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes())?;
    let resolver = Arc::new(fluxgate::server::tls::CertResolver::new(key));
    let tls = fluxgate::server::tls::server_config(resolver, None)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = Router::new().route("/validate", post(validate));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("baseline listening on {addr}, CA in {ca_out}");
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = TowerToHyperService::new(app);
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
