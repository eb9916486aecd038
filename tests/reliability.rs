//! Issue 14's attacks on the running binary, on loopback, each bounded in count and time: a
//! stalled audit reader, a FIFO or an oversized windows file, one peer hoarding connections,
//! forged reviews, expired certificates, keep-alive clients during shutdown, many large
//! bodies at once, an audit log that fills up. Figures for each are in RELIABILITY.md.

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The human-patch review with its own uid.
fn review_with_uid(uid: &str) -> Vec<u8> {
    let mut review: Value =
        serde_json::from_slice(&fixture("human-patch-deployment.json")).unwrap();
    review["request"]["uid"] = json!(uid);
    serde_json::to_vec(&review).unwrap()
}

/// A request that must be answered within `within`; `None` when it was not.
async fn answered_within(
    within: Duration,
    request: impl std::future::Future<Output = std::io::Result<Response>>,
) -> Option<Response> {
    tokio::time::timeout(within, request).await.ok()?.ok()
}

/// An audit log whose reader stops (a FIFO, as a log collector under pressure stops reading
/// stdout): probes and metrics keep answering, /validate answers 503 within the request
/// timeout and /readyz turns 503; once the reader drains, service resumes and every answered
/// decision is in the log exactly once. The one request whose line was inside the write that
/// stalled waits for that write and is answered 200 once it ends: answering it 503 (as before
/// issue 21) left a record of a request answered with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_audit_reader_blocks_nothing_and_loses_no_line() {
    let dir = Scratch::new("stalled-audit");
    let fifo = dir.path("audit.log");
    mkfifo(&fifo);
    // The reader opens the FIFO (the server's open waits for it) and reads nothing until told.
    let draining = Arc::new(AtomicBool::new(false));
    let reader = {
        let (fifo, draining) = (fifo.clone(), draining.clone());
        std::thread::spawn(move || {
            let mut file = std::fs::File::open(fifo).unwrap();
            while !draining.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let mut all = Vec::new();
            file.read_to_end(&mut all).unwrap();
            all
        })
    };
    let mut server = Server::start(&dir, &["--request-timeout", "2s"]).await;

    // Until the pipe's buffer (64 KiB) is full, decisions are written and answered.
    let mut answered = Vec::new();
    let mut refused = 0;
    let mut in_stuck_write = None;
    for i in 0..1000 {
        let uid = format!("uid-{i}");
        let (addr, ca, body) = (server.addr, server.ca.clone(), review_with_uid(&uid));
        let mut call = tokio::spawn(async move {
            request(addr, &ca, "POST", "/validate", "application/json", &body).await
        });
        let response = match tokio::time::timeout(Duration::from_secs(3), &mut call).await {
            Ok(response) => response.unwrap().unwrap(),
            Err(_) => {
                assert!(
                    in_stuck_write.is_none(),
                    "/validate answers within the request timeout, written or not, but for \
                     the request whose line is in the stuck write"
                );
                in_stuck_write = Some((uid, call));
                continue;
            }
        };
        match response.status {
            200 => answered.push(uid),
            503 => {
                assert!(
                    String::from_utf8_lossy(&response.body)
                        .contains("cannot write the audit record"),
                    "{}",
                    String::from_utf8_lossy(&response.body)
                );
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
            other => panic!("status {other}"),
        }
    }
    assert_eq!(refused, 3, "the pipe filled up");
    assert!(
        answered.len() > 10,
        "{} answered before the pipe filled",
        answered.len()
    );
    // Everything else keeps answering at once; readiness goes away.
    let started = Instant::now();
    let health = answered_within(
        Duration::from_secs(1),
        get(server.addr, &server.ca, "/healthz"),
    )
    .await;
    assert_eq!(health.map(|r| r.status), Some(200));
    let metrics = tokio::time::timeout(
        Duration::from_secs(1),
        plain_get(server.metrics_addr, "/metrics"),
    )
    .await;
    assert!(
        metrics
            .unwrap()
            .contains("fluxgate_audit_write_errors_total 3")
    );
    println!(
        "healthz and metrics with the audit log stuck: {:?}",
        started.elapsed()
    );
    let ready = answered_within(
        Duration::from_secs(1),
        get(server.addr, &server.ca, "/readyz"),
    )
    .await;
    assert_eq!(ready.map(|r| r.status), Some(503));

    // The reader drains: service resumes.
    draining.store(true, Ordering::Release);
    let drained = Instant::now();
    server
        .eventually("readiness back", Duration::from_secs(10), || async {
            matches!(get(server.addr, &server.ca, "/readyz").await, Ok(r) if r.status == 200)
        })
        .await;
    let recovered = drained.elapsed();
    let (uid, call) = in_stuck_write.expect("one request's line was in the write that stalled");
    let response = tokio::time::timeout(Duration::from_secs(5), call).await;
    assert_eq!(response.unwrap().unwrap().unwrap().status, 200, "{uid}");
    answered.push(uid);
    let peak = server.peak_rss_mib();
    for i in 0..5 {
        let uid = format!("after-{i}");
        assert_eq!(server.validate(&review_with_uid(&uid)).await.status, 200);
        answered.push(uid);
    }
    let _ = server.child.kill();
    let _ = server.child.wait();
    let written = String::from_utf8(reader.join().unwrap()).unwrap();
    let mut uids = Vec::new();
    for line in written.lines() {
        let record: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        uids.push(record["uid"].as_str().unwrap().to_owned());
    }
    for uid in &answered {
        assert_eq!(
            uids.iter().filter(|u| *u == uid).count(),
            1,
            "{uid} written once"
        );
    }
    let mut unique = uids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), uids.len(), "no line doubled");
    // Lines of refused requests are never written.
    assert_eq!(uids.len(), answered.len(), "records == answers of 200");
    println!(
        "stalled audit: {} answered (1 once the stalled write ended, 5 after), {refused} refused \
         with 503, {} lines written, ready again {recovered:?} after the reader drained, peak \
         RSS {peak} MiB",
        answered.len(),
        uids.len()
    );
}

/// A FIFO and a 5 MiB file in the windows folder: refused with a clear error and counted, and
/// nothing else waits for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_or_an_oversized_windows_file_is_refused_and_blocks_nothing() {
    let dir = Scratch::new("windows-files");
    let folder = dir.path("windows");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("business-hours.yaml"), windows_yaml(true)).unwrap();
    let server = Server::start(&dir, &["--windows", folder.to_str().unwrap()]).await;
    let failures = "fluxgate_window_reloads_total{result=\"failure\"}";

    mkfifo(&folder.join("more.yaml"));
    // A few polls later, with the FIFO unread: everything still answers (a read of the FIFO
    // on an async worker would hold it until someone writes to it).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = answered_within(
        Duration::from_secs(1),
        get(server.addr, &server.ca, "/healthz"),
    )
    .await;
    assert_eq!(
        health.map(|r| r.status),
        Some(200),
        "/healthz with a FIFO in the windows folder"
    );
    let validated = answered_within(
        Duration::from_secs(1),
        server.validate_owned(fixture("human-patch-deployment.json")),
    )
    .await;
    assert_eq!(
        validated.map(|r| r.status),
        Some(200),
        "/validate with a FIFO in the windows folder"
    );
    server
        .eventually("the FIFO refused", Duration::from_secs(10), || async {
            let metric = tokio::time::timeout(Duration::from_secs(1), server.metric(failures));
            metric.await.expect("/metrics answers") == 1.0
        })
        .await;
    assert!(
        server.log().contains("is not a regular file"),
        "{}",
        server.log()
    );
    let body = fixture("human-patch-deployment.json");
    assert_eq!(server.validate(&body).await.status, 200);

    std::fs::remove_file(folder.join("more.yaml")).unwrap();
    // 100 MB (sparse: nothing is written to disk).
    let big = std::fs::File::create(folder.join("more.yaml")).unwrap();
    big.set_len(100_000_000).unwrap();
    let appeared = Instant::now();
    server
        .eventually(
            "the large file refused",
            Duration::from_secs(10),
            || async {
                let metric = tokio::time::timeout(Duration::from_secs(1), server.metric(failures));
                metric.await.expect("/metrics answers") == 2.0
            },
        )
        .await;
    assert!(
        server.log().contains("more than the 4194304 (4 MiB)"),
        "{}",
        server.log()
    );
    let refused_after = appeared.elapsed();
    let started = Instant::now();
    let validated = answered_within(Duration::from_secs(1), server.validate_owned(body)).await;
    assert_eq!(validated.map(|r| r.status), Some(200));
    println!(
        "windows files: FIFO and 100 MB file refused (the latter {refused_after:?} after it \
         appeared, polling every 100ms); /validate then {:?}; peak RSS {} MiB",
        started.elapsed(),
        server.peak_rss_mib()
    );
    assert_eq!(
        server
            .metric("fluxgate_window_reloads_total{result=\"success\"}")
            .await,
        0.0,
        "the last good set stays"
    );
}

/// A TCP connection from `source` (another loopback address: Linux routes all of 127/8).
async fn connect_from(server: SocketAddr, source: &str) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{source}:0").parse().unwrap())?;
    socket.connect(server).await
}

/// One peer re-opening idle sockets as fast as the server closes them cannot take the
/// connections the API server needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_hoarding_connections_does_not_starve_the_api_server() {
    let dir = Scratch::new("per-peer");
    let server = Server::start(
        &dir,
        &["--max-connections", "64", "--tls-handshake-timeout", "1s"],
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = {
        let (addr, stop) = (server.addr, stop.clone());
        tokio::spawn(async move {
            let mut held = Vec::new();
            let mut opened = 0;
            while !stop.load(Ordering::Relaxed) {
                while held.len() < 64 {
                    match connect_from(addr, "127.0.0.2").await {
                        Ok(stream) => {
                            held.push(stream);
                            opened += 1;
                        }
                        Err(_) => break,
                    }
                }
                // Keep those still open (a read that waits); drop those the server closed.
                let mut open = Vec::new();
                for mut stream in held.drain(..) {
                    let mut byte = [0u8; 1];
                    let read = stream.read(&mut byte);
                    if tokio::time::timeout(Duration::from_millis(1), read)
                        .await
                        .is_err()
                    {
                        open.push(stream);
                    }
                }
                held = open;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            opened
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = fixture("human-patch-deployment.json");
    let mut ok = 0;
    for _ in 0..20 {
        if matches!(server.post("application/json", &body).await, Ok(r) if r.status == 200) {
            ok += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let opened = attacker.await.unwrap();
    println!(
        "per-peer: the good client got {ok}/20 answers while the attacker opened {opened} \
         sockets; peak RSS {} MiB",
        server.peak_rss_mib()
    );
    assert_eq!(ok, 20, "stderr:\n{}", server.log());
    assert!(
        server
            .log()
            .contains("too many connections from this address")
    );
}

/// One peer holding large bodies open (all but their end) cannot take the whole body budget:
/// the API server's reviews are still read and answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_holding_large_bodies_does_not_starve_the_api_server() {
    let dir = Scratch::new("held-bodies");
    let server = Server::start(&dir, &["--request-timeout", "3s"]).await;
    // Six declared 7 MiB bodies (42 MiB) would take the whole 32 MiB budget and queue the
    // rest behind them.
    let mut held = Vec::new();
    for _ in 0..6 {
        let tcp = connect_from(server.addr, "127.0.0.2").await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut stream = connector(&server.ca).connect(name, tcp).await.unwrap();
        let length = 7 * 1024 * 1024;
        stream
            .write_all(&head("POST", "/validate", "application/json", length))
            .await
            .unwrap();
        // A little of the body: more could fill the socket buffers of the bodies that wait.
        stream.write_all(&[b' '; 16 * 1024]).await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = fixture("human-patch-deployment.json");
    let mut latencies = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let response = server.validate(&body).await;
        // Queued behind the held bodies, it would wait until their request timeout (3 s)
        // frees their shares.
        assert_eq!(response.status, 200, "stderr:\n{}", server.log());
        let latency = started.elapsed();
        assert!(
            latency < Duration::from_secs(1),
            "the API server's review waited {latency:?} behind the held bodies"
        );
        latencies.push(latency);
    }
    println!(
        "held bodies: 6 x 7 MiB held open by one peer; the API server's 5 reviews answered in \
         {latencies:?}; peak RSS {} MiB",
        server.peak_rss_mib()
    );
    drop(held);
}

fn bypass_review() -> Vec<u8> {
    let mut review: Value =
        serde_json::from_slice(&fixture("flux-dryrun-image-bump-deployment.json")).unwrap();
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let annotations = &mut review["request"]["object"]["metadata"]["annotations"];
    annotations["fluxgate.io/bypass-reason"] = json!("INC-1 forged");
    annotations["fluxgate.io/bypass-until"] = json!(until);
    serde_json::to_vec(&review).unwrap()
}

/// Without --client-ca, anyone who reaches the port can send a made-up bypass: it is answered
/// and audited with the caller's address, but counts no bypass (and publishes no Event) unless
/// the operator accepts unverified callers.
#[tokio::test]
async fn a_forged_bypass_moves_no_metric_unless_unverified_callers_are_accepted() {
    for (accept, expected) in [(false, 0.0), (true, 1.0)] {
        let dir = Scratch::new("forged");
        std::fs::write(dir.path("windows.yaml"), windows_yaml(false)).unwrap();
        let windows = dir.path("windows.yaml");
        let mut args = vec!["--windows", windows.to_str().unwrap()];
        if accept {
            args.push("--accept-unverified-callers");
        }
        let server = Server::start(&dir, &args).await;
        let response = server.validate(&bypass_review()).await;
        assert_eq!(response.status, 200);
        assert_eq!(
            response.json()["response"]["auditAnnotations"]["reason"],
            "bypass"
        );
        let record = &server.audit_lines()[0];
        assert_eq!(record["reason"], "bypass");
        let caller = record["caller"].as_str().unwrap();
        assert!(caller.starts_with("unverified 127.0.0.1:"), "{caller}");
        assert_eq!(
            server
                .metric("fluxgate_bypasses_total{window=\"business-hours\"}")
                .await,
            expected,
            "accept unverified callers: {accept}"
        );
    }
}

/// Reads one HTTP/1.1 response (headers and a Content-Length body) from a keep-alive
/// connection: (status, lowercase headers, body).
async fn read_one<S: AsyncReadExt + Unpin>(stream: &mut S) -> (u16, String, Vec<u8>) {
    try_read_one(stream).await.unwrap()
}

/// As [`read_one`], with what failed.
async fn try_read_one<S: AsyncReadExt + Unpin>(
    stream: &mut S,
) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).unwrap().to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok((status, head, body))
}

fn keep_alive_request(body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// During the shutdown delay, requests on connections opened before SIGTERM are answered,
/// with `Connection: close`, so clients move to a new connection before the server stops.
#[tokio::test]
async fn keep_alive_requests_during_the_shutdown_delay_are_answered_with_connection_close() {
    let dir = Scratch::new("keep-alive");
    let server = Server::start(&dir, &["--shutdown-delay", "2s"]).await;
    let body = fixture("human-patch-deployment.json");
    let mut connections = Vec::new();
    for _ in 0..16 {
        let mut stream = connect(server.addr, &server.ca).await.unwrap();
        stream.write_all(&keep_alive_request(&body)).await.unwrap();
        let (status, head, _) = read_one(&mut stream).await;
        assert_eq!(status, 200);
        assert!(!head.contains("connection: close"), "{head}");
        connections.push(stream);
    }
    server.signal("TERM");
    // Shutdown has begun once readiness is off (the close signal is set before it).
    server
        .eventually("readiness to go false", Duration::from_secs(5), || async {
            matches!(get(server.addr, &server.ca, "/readyz").await, Ok(r) if r.status == 503)
        })
        .await;
    let mut answered = 0;
    for stream in &mut connections {
        stream.write_all(&keep_alive_request(&body)).await.unwrap();
        let (status, head, body) = read_one(stream).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(head.contains("connection: close"), "{head}");
        // And the server closes it.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest)).await;
        assert!(rest.is_empty());
        answered += 1;
    }
    println!(
        "keep-alive drain: {answered}/16 requests on open connections answered, with \
         Connection: close"
    );
    assert_eq!(
        server.audit_lines().len(),
        32,
        "every answered request was audited"
    );
}

/// HTTP/2 has no `Connection: close`: when the delay ends its clients get a GOAWAY, the request
/// in flight on the connection then is answered, and the connection takes no new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_get_a_goaway_when_the_delay_ends_and_the_request_in_flight_is_answered() {
    let delay = Duration::from_secs(1);
    let dir = Scratch::new("h2-goaway");
    let mut server = Server::start(&dir, &["--shutdown-delay", "1s"]).await;
    let body = fixture("human-patch-deployment.json");
    let mut client = http2_client(server.addr, &server.ca).await.unwrap();
    let first = http2_validate(&mut client, body.clone()).await.unwrap();
    assert_eq!(first.status, 200);
    // A request whose body is half sent when the delay ends.
    let (half, rest) = body.split_at(body.len() / 2);
    let (more, chunks) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
    more.send(half.to_vec()).await.unwrap();
    let chunks = futures_util::stream::unfold(chunks, |mut chunks| async move {
        let chunk = chunks.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), chunks))
    });
    let request = hyper::Request::post("https://localhost/validate")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(axum::body::Body::from_stream(chunks))
        .unwrap();
    let in_flight = tokio::spawn(client.send_request(request));
    server.signal("TERM");
    let term_sent = Instant::now();
    server
        .eventually("readiness to go false", delay, || async {
            matches!(get(server.addr, &server.ca, "/readyz").await, Ok(r) if r.status == 503)
        })
        .await;
    tokio::time::sleep(delay + Duration::from_millis(300) - term_sent.elapsed()).await;
    more.send(rest.to_vec()).await.unwrap();
    drop(more);
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    // After the GOAWAY the connection takes no new request.
    let refused = http2_validate(&mut client, body.clone()).await;
    assert!(
        refused.is_err(),
        "a new stream after the GOAWAY: {:?}",
        refused.map(|r| r.status)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    assert_eq!(server.audit_lines().len(), 2, "both answers were audited");
    println!(
        "HTTP/2 through shutdown: the request in flight at the delay's end answered 200, then \
         the connection refused a new stream: {}",
        refused.err().unwrap_or_default()
    );
}

/// Connections that finished the TCP handshake but were not accepted yet when the shutdown
/// delay ends are answered (HTTP/1 with `Connection: close`), not reset by the listener's
/// close: the kernel's accept queue is part of what is in flight. The server is stopped
/// (SIGSTOP) during the delay while they connect, so the kernel queues every one of them; it
/// resumes with the delay over and the queue full, and its accept loop takes one or two of them
/// (it picks at random between a ready accept and the ready end of the delay) before it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_queued_in_the_accept_backlog_at_shutdown_are_answered() {
    const QUEUED: usize = 24;
    let delay = Duration::from_secs(2);
    let dir = Scratch::new("backlog");
    let mut server = Server::start(&dir, &["--shutdown-delay", "2s"]).await;
    server.signal("TERM");
    let term_sent = Instant::now();
    server
        .eventually("readiness to go false", delay / 2, || async {
            matches!(get(server.addr, &server.ca, "/readyz").await, Ok(r) if r.status == 503)
        })
        .await;
    let body = fixture("human-patch-deployment.json");
    server.signal("STOP");
    let mut clients = Vec::new();
    for n in 0..QUEUED {
        // The kernel completes the handshake of a stopped process's listener and queues it.
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (ca, body) = (server.ca.clone(), body.clone());
        clients.push(tokio::spawn(async move {
            let answer = async {
                if n % 3 == 2 {
                    let mut client = http2_client_on(tcp, &ca)
                        .await
                        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
                    let response = http2_validate(&mut client, body).await?;
                    return Ok((response.status, "HTTP/2".to_owned()));
                }
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let mut stream = connector(&ca)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                stream
                    .write_all(&keep_alive_request(&body))
                    .await
                    .map_err(|e| format!("request: {e}"))?;
                let (status, head, _) = try_read_one(&mut stream)
                    .await
                    .map_err(|e| format!("response: {e}"))?;
                Ok::<_, String>((status, head))
            };
            tokio::time::timeout(Duration::from_secs(20), answer)
                .await
                .unwrap_or_else(|_| Err("no answer within 20 s".to_owned()))
        }));
    }
    assert!(
        term_sent.elapsed() < delay,
        "the clients connected after the delay"
    );
    tokio::time::sleep(delay + Duration::from_millis(500) - term_sent.elapsed()).await;
    server.signal("CONT");
    let mut answered = 0;
    let mut failures = Vec::new();
    for client in clients {
        match client.await {
            Ok(Ok((200, head))) => {
                assert!(
                    head == "HTTP/2" || head.contains("connection: close"),
                    "{head}"
                );
                answered += 1;
            }
            Ok(Ok((status, _))) => failures.push(format!("status {status}")),
            Ok(Err(error)) => failures.push(error),
            Err(panicked) => failures.push(format!("{panicked}")),
        }
    }
    // The server logs how many it took from the queue after its accept loop stopped.
    let log = server.log();
    let taken_at_shutdown = log
        .lines()
        .find_map(|l| l.split("queued=").nth(1))
        .unwrap_or("?");
    println!(
        "accept backlog at the end of the delay: {answered}/{QUEUED} queued connections \
         answered, {taken_at_shutdown} of them taken from the queue after the accept loop stopped"
    );
    assert!(
        failures.is_empty(),
        "{} of {QUEUED} queued connections got no answer: {failures:?}; stderr:\n{}",
        failures.len(),
        server.log()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        server.audit_lines().len(),
        QUEUED,
        "every answer was audited"
    );
}

/// Keep-alive clients through SIGTERM and the end of the shutdown delay: every request sent on
/// a connection that the server accepted, or that the kernel queued for it, is answered. The
/// only failures are connections refused once the listener has closed. A race by nature: one
/// run of about 1.5 s; the counts are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_load_through_shutdown_loses_no_request() {
    const CLIENTS: usize = 8;
    let dir = Scratch::new("keep-alive-load");
    let mut server = Server::start(&dir, &["--shutdown-delay", "1s"]).await;
    let body = Arc::new(fixture("human-patch-deployment.json"));
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let lost = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (addr, ca, body) = (server.addr, server.ca.clone(), body.clone());
            let (stop, answered, refused, lost) = (
                stop.clone(),
                answered.clone(),
                refused.clone(),
                lost.clone(),
            );
            tokio::spawn(async move {
                let tls = connector(&ca);
                let lose = |what: String| lost.lock().unwrap().push(what);
                while !stop.load(Ordering::Relaxed) {
                    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
                        // The listener has closed: nothing was sent, the client may retry.
                        refused.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                    let mut stream = match tls.connect(name, tcp).await {
                        Ok(stream) => stream,
                        Err(error) => {
                            lose(format!("TLS handshake: {error}"));
                            continue;
                        }
                    };
                    while !stop.load(Ordering::Relaxed) {
                        let sent = stream.write_all(&keep_alive_request(&body)).await;
                        match sent.map(|()| try_read_one(&mut stream)) {
                            Ok(read) => match read.await {
                                Ok((200, head, _)) => {
                                    answered.fetch_add(1, Ordering::Relaxed);
                                    if head.contains("connection: close") {
                                        break;
                                    }
                                }
                                Ok((status, _, _)) => {
                                    lose(format!("status {status}"));
                                    break;
                                }
                                Err(error) => {
                                    lose(format!("response: {error}"));
                                    break;
                                }
                            },
                            Err(error) => {
                                lose(format!("request: {error}"));
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_term = answered.load(Ordering::Relaxed);
    server.signal("TERM");
    // Until the listener has closed, and a little past it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while refused.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "the listener never closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lost = lost.lock().unwrap().clone();
    println!(
        "keep-alive load through shutdown: {} answered ({before_term} before SIGTERM), {} lost, \
         {} connections refused after the listener closed",
        answered.load(Ordering::Relaxed),
        lost.len(),
        refused.load(Ordering::Relaxed)
    );
    assert!(lost.is_empty(), "requests without an answer: {lost:?}");
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        server.audit_lines().len(),
        answered.load(Ordering::Relaxed),
        "every answer was audited"
    );
}

/// Several bodies larger than the budget allows at once are read in turn, not refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_beyond_the_budget_wait_for_their_turn() {
    let dir = Scratch::new("budget");
    let server = Server::start(&dir, &["--max-body-bytes-in-flight", "7340032"]).await;
    // A human patch with a 3 MiB annotation: two of them do not fit in the budget together.
    let mut review: Value =
        serde_json::from_slice(&fixture("human-patch-deployment.json")).unwrap();
    review["request"]["object"]["metadata"]["annotations"]["big"] = json!("x".repeat(3 << 20));
    let body = Arc::new(serde_json::to_vec(&review).unwrap());
    let requests: Vec<_> = (0..4)
        .map(|_| {
            let (addr, ca, body) = (server.addr, server.ca.clone(), body.clone());
            tokio::spawn(async move {
                request(addr, &ca, "POST", "/validate", "application/json", &body)
                    .await
                    .unwrap()
                    .status
            })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
    let dir = Scratch::new("budget-flag");
    let refused = run_fluxgate(
        &["serve", "--max-body-bytes-in-flight", "1000000"],
        b"",
        &[],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("must be at least 7340032"));
    drop(dir);
}

/// The budget holds across connections: while one peer holds open a body that takes the whole
/// budget, another peer's review is not read beside it but waits for its turn, and is answered
/// once the held body goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_held_open_keeps_other_bodies_waiting_for_the_budget() {
    let dir = Scratch::new("budget-held");
    let server = Server::start(
        &dir,
        &[
            "--max-body-bytes-in-flight",
            "7340032",
            "--request-timeout",
            "10s",
        ],
    )
    .await;
    let tcp = connect_from(server.addr, "127.0.0.2").await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut holder = connector(&server.ca).connect(name, tcp).await.unwrap();
    holder
        .write_all(&head("POST", "/validate", "application/json", 7 << 20))
        .await
        .unwrap();
    holder.write_all(&[b' '; 16 * 1024]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (addr, ca) = (server.addr, server.ca.clone());
    let waiting = tokio::spawn(async move {
        let body = fixture("human-patch-deployment.json");
        request(addr, &ca, "POST", "/validate", "application/json", &body)
            .await
            .unwrap()
            .status
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !waiting.is_finished(),
        "a review was read and answered while another body held the whole budget"
    );
    drop(holder);
    let status = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("answered once the held body went")
        .unwrap();
    assert_eq!(status, 200);
}

/// An audit log that runs out of room partway through a line (a full disk; here the file-size
/// limit, `RLIMIT_FSIZE`, with `SIGXFSZ` ignored as the shell leaves it, so the write stops
/// short and then fails with `EFBIG`): the failed write is cut back out of the file, so every
/// row of it is a whole record, one for each decision answered.
#[tokio::test]
async fn an_audit_log_that_fills_up_holds_only_whole_lines() {
    let dir = Scratch::new("audit-full");
    let prlimit = [
        "sh",
        "-c",
        "trap '' XFSZ; exec prlimit --fsize=16384 \"$@\"",
        "sh",
    ];
    let server = Server::start_under(&dir, &prlimit, &[]).await;
    let (mut answered, mut refused) = (0, 0);
    for i in 0..100 {
        let response = server.validate(&review_with_uid(&format!("uid-{i}"))).await;
        match response.status {
            200 => answered += 1,
            503 => refused += 1,
            other => panic!("status {other}"),
        }
        if refused == 3 {
            break;
        }
    }
    assert_eq!(refused, 3, "the audit log filled up");
    assert!(answered > 5, "{answered} answered before it filled up");
    let text = std::fs::read_to_string(&server.audit_log).unwrap();
    assert!(
        text.ends_with('\n'),
        "a torn last row: {:?}",
        text.lines().last()
    );
    for row in text.lines() {
        assert!(
            serde_json::from_str::<Value>(row).is_ok(),
            "torn row: {row}"
        );
    }
    assert_eq!(
        text.lines().count(),
        answered,
        "one record per decision answered"
    );
}

/// An audit sink whose writes take `delay` (a busy disk, a slow log collector) and wait while
/// `gate` is closed (a log reader that stopped); it says when a write has begun, and keeps the
/// uids of the records written.
#[derive(Default)]
struct TestSink {
    delay: Duration,
    gate: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
    writing: AtomicBool,
    uids: std::sync::Mutex<Vec<String>>,
}

impl fluxgate::audit_log::AuditSink for TestSink {
    fn write(&self, lines: &[u8]) -> Result<(), fluxgate::audit_log::Failed> {
        self.writing.store(true, Ordering::Release);
        let mut closed = self.gate.lock().unwrap();
        while *closed {
            closed = self.opened.wait(closed).unwrap();
        }
        std::thread::sleep(self.delay);
        let mut uids = self.uids.lock().unwrap();
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let record: Value = serde_json::from_slice(line).unwrap();
            uids.push(record["uid"].as_str().unwrap().to_owned());
        }
        Ok(())
    }
}

/// Issue 21 (6): requests whose bodies end around the request timeout, decided and queued for
/// the audit log just before it, while the writer takes 20 ms a write. Answered equals written:
/// a record for each answer of 200 and for nothing else. Before the fix the timeout layer
/// answered 408 after the line was queued, and the writer wrote it all the same (the issue
/// counted 14 records for 12 answers of 200 with `--request-timeout 1s`).
///
/// In process (the real router, `oneshot`), so the write can be made slow enough for the race
/// to happen in every run; bounded: 3 runs of 100 requests, ~1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_racing_the_request_timeout_match_the_records_written() {
    use axum::body::{Body, Bytes};
    use futures_util::StreamExt;
    use tower::ServiceExt;
    const RUNS: usize = 3;
    const REQUESTS: usize = 100;
    let timeout = Duration::from_millis(200);
    let sink = Arc::new(TestSink {
        delay: Duration::from_millis(20),
        ..TestSink::default()
    });
    let state = fluxgate::server::AppState::new(fluxgate::server::Settings::new(
        fluxgate::windows::load_windows(&[]).unwrap(),
        fluxgate_core::policy::Policy::default(),
        sink.clone(),
    ));
    let limits = fluxgate::server::Limits {
        request_timeout: timeout,
        max_concurrent_requests: 256,
    };
    let app = fluxgate::server::router(Arc::new(state), &limits);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut answered = Vec::new();
    for run in 0..RUNS {
        let tasks: Vec<_> = (0..REQUESTS)
            .map(|i| {
                let uid = format!("run-{run}-{i}");
                let body = review_with_uid(&uid);
                // The last byte arrives between 150 and 250 ms: around the deadline.
                let last = Duration::from_micros(150_000 + (i as u64 * 100_000) / REQUESTS as u64);
                let (head, tail) = body.split_at(body.len() - 1);
                let (head, tail) = (Bytes::copy_from_slice(head), Bytes::copy_from_slice(tail));
                let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(head)]).chain(
                    futures_util::stream::once(async move {
                        tokio::time::sleep(last).await;
                        Ok(tail)
                    }),
                );
                let request = axum::http::Request::post("/validate")
                    .header("content-type", "application/json")
                    .header("content-length", body.len())
                    .body(Body::from_stream(chunks))
                    .unwrap();
                let app = app.clone();
                tokio::spawn(async move {
                    let response = app.oneshot(request).await.unwrap();
                    (uid, response.status().as_u16())
                })
            })
            .collect();
        for task in tasks {
            let (uid, status) = task.await.unwrap();
            *statuses.entry(status).or_default() += 1;
            if status == 200 {
                answered.push(uid);
            }
        }
    }
    // Lines of requests answered otherwise, had they been queued, would be written by now.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut written = sink.uids.lock().unwrap().clone();
    println!(
        "{} requests in {RUNS} runs racing a {timeout:?} request timeout (writes take 20 ms): \
         answers by status {statuses:?}, {} records written",
        RUNS * REQUESTS,
        written.len()
    );
    assert!(
        statuses.get(&200).is_some_and(|&n| n > 0) && statuses.get(&408).is_some_and(|&n| n > 0),
        "the bodies did not end around the deadline: {statuses:?}"
    );
    assert_eq!(written.len(), answered.len(), "records == answers of 200");
    answered.sort();
    written.sort();
    assert_eq!(
        written, answered,
        "the records are those of the answers of 200"
    );
}

/// A request whose record is inside a write that stalls waits for that write (its answer is
/// the write's), but holds none of the `--max-concurrent-requests` slots meanwhile: here the
/// only one. The next review is decided and answered within its time, and the probes answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_for_a_stalled_write_holds_no_slot() {
    use axum::body::Body;
    use tower::ServiceExt;
    let sink = Arc::new(TestSink::default());
    *sink.gate.lock().unwrap() = true;
    let state = fluxgate::server::AppState::new(fluxgate::server::Settings::new(
        fluxgate::windows::load_windows(&[]).unwrap(),
        fluxgate_core::policy::Policy::default(),
        sink.clone(),
    ));
    let limits = fluxgate::server::Limits {
        request_timeout: Duration::from_millis(300),
        max_concurrent_requests: 1,
    };
    let app = fluxgate::server::router(Arc::new(state), &limits);
    let review = |uid: &str| {
        axum::http::Request::post("/validate")
            .header("content-type", "application/json")
            .body(Body::from(review_with_uid(uid)))
            .unwrap()
    };
    let first = tokio::spawn(app.clone().oneshot(review("in-the-stalled-write")));
    while !sink.writing.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A generous bound: it only tells a hang from an answer.
    let within = Duration::from_secs(5);
    let next = tokio::time::timeout(within, app.clone().oneshot(review("next")))
        .await
        .expect("the next review is answered, not queued behind the stalled write")
        .unwrap();
    // Its line could not be written in its time: taken back, answered 408.
    assert_eq!(next.status(), 408);
    let probe = axum::http::Request::get("/healthz")
        .body(Body::empty())
        .unwrap();
    let health = tokio::time::timeout(within, app.clone().oneshot(probe)).await;
    assert_eq!(health.unwrap().unwrap().status(), 200);
    assert!(
        !first.is_finished(),
        "answered before its record was written"
    );

    *sink.gate.lock().unwrap() = false;
    sink.opened.notify_all();
    let first = tokio::time::timeout(within, first)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(*sink.uids.lock().unwrap(), ["in-the-stalled-write"]);
}
