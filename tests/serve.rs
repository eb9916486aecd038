//! `fluxgate serve` end to end: the built binary on loopback, real TLS clients verifying the
//! generated (or given) CA, real files for windows, certificates and the audit log.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

fn with_window(fixture_name: &str, window: &str) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&fixture(fixture_name)).unwrap();
    for object in ["object", "oldObject"] {
        if review["request"][object].is_object() {
            review["request"][object]["metadata"]["labels"]["fluxgate.io/window"] = json!(window);
        }
    }
    serde_json::to_vec(&review).unwrap()
}

#[tokio::test]
async fn decisions_over_tls_with_one_audit_line_each_and_metrics() {
    let dir = Scratch::new("decisions");
    std::fs::write(dir.path("windows.yaml"), windows_yaml(true)).unwrap();
    let server = Server::start(
        &dir,
        &["--windows", dir.path("windows.yaml").to_str().unwrap()],
    )
    .await;

    let bump = fixture("flux-dryrun-image-bump-deployment.json");
    let allowed = server.validate(&bump).await;
    assert_eq!(allowed.status, 200);
    let response = &allowed.json()["response"];
    assert_eq!(response["uid"], "382e71b4-420a-484a-9200-d062f988c348");
    assert_eq!(response["allowed"], true);

    let denied = server
        .validate(&with_window(
            "flux-create-deployment-rw.json",
            "no-such-window",
        ))
        .await;
    let response = &denied.json()["response"];
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(response["auditAnnotations"]["reason"], "unknown-window");
    let create_uid = serde_json::from_slice::<Value>(&fixture("flux-create-deployment-rw.json"))
        .unwrap()["request"]["uid"]
        .clone();
    assert_eq!(response["uid"], create_uid);

    let human = server
        .validate(&fixture("human-patch-deployment.json"))
        .await;
    assert_eq!(
        human.json()["response"]["auditAnnotations"]["reason"],
        "not-flux"
    );

    let lines = server.audit_lines();
    assert_eq!(lines.len(), 3, "one audit line per decision");
    let reasons: Vec<&str> = lines
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["window-open", "unknown-window", "not-flux"]);
    assert_eq!(lines[1]["uid"], create_uid);

    let allow = "fluxgate_admission_requests_total{decision=\"allow\",reason=\"window-open\",operation=\"UPDATE\",dry_run=\"true\"}";
    assert_eq!(server.metric(allow).await, 1.0);
    let deny = "fluxgate_admission_requests_total{decision=\"deny\",reason=\"unknown-window\",operation=\"CREATE\",dry_run=\"false\"}";
    assert_eq!(server.metric(deny).await, 1.0);
    assert_eq!(
        server
            .metric("fluxgate_admission_duration_seconds_count")
            .await,
        3.0
    );
    assert_eq!(
        server
            .metric("fluxgate_window_open{window=\"business-hours\"}")
            .await,
        1.0
    );
    // The application log never leaks into the audit stream, and the audit file holds nothing else.
    assert!(
        std::fs::read_to_string(&server.audit_log)
            .unwrap()
            .lines()
            .all(|l| l.starts_with("{\"time\""))
    );
}

#[tokio::test]
async fn a_broken_windows_file_keeps_the_last_good_set() {
    let dir = Scratch::new("reload");
    let windows = dir.path("windows.yaml");
    std::fs::write(&windows, windows_yaml(true)).unwrap();
    let server = Server::start(&dir, &["--windows", windows.to_str().unwrap()]).await;
    let bump = fixture("flux-dryrun-image-bump-deployment.json");
    assert_eq!(
        server.validate(&bump).await.json()["response"]["allowed"],
        true
    );

    std::fs::write(
        &windows,
        windows_yaml(false).replace("* * * * *", "* * * *"),
    )
    .unwrap();
    let failure = "fluxgate_window_reloads_total{result=\"failure\"}";
    server
        .eventually("the reload failure", Duration::from_secs(10), || async {
            server.metric(failure).await == 1.0
        })
        .await;
    assert!(
        server
            .log()
            .contains("new windows rejected; keeping the last good set"),
        "{}",
        server.log()
    );
    assert!(
        server.log().contains("spec.schedules[0].start"),
        "the log names the field: {}",
        server.log()
    );
    assert_eq!(
        server.validate(&bump).await.json()["response"]["allowed"],
        true,
        "old set still in force"
    );

    std::fs::write(&windows, windows_yaml(false)).unwrap();
    let success = "fluxgate_window_reloads_total{result=\"success\"}";
    server
        .eventually("the reload", Duration::from_secs(10), || async {
            server.metric(success).await == 1.0
        })
        .await;
    let response = server.validate(&bump).await.json();
    assert_eq!(response["response"]["allowed"], false);
    assert_eq!(response["response"]["auditAnnotations"]["reason"], "frozen");
}

/// Lays out certificates the way the kubelet mounts a Secret: `tls.crt -> ..data/tls.crt`,
/// `..data -> ..<version>/`; an update swaps the `..data` symlink.
fn mount_secret(dir: &Scratch, version: &str, certs: &fluxgate::certs::GeneratedCerts) {
    let data = dir.path(&format!("..{version}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("tls.crt"), &certs.cert_pem).unwrap();
    std::fs::write(data.join("tls.key"), &certs.key_pem).unwrap();
    std::fs::write(dir.path(&format!("ca-{version}.pem")), &certs.ca_pem).unwrap();
    let tmp = dir.path("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.path("..data")).unwrap();
    for file in ["tls.crt", "tls.key"] {
        let link = dir.path(file);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{file}"), &link).unwrap();
        }
    }
}

#[tokio::test]
async fn certificates_swapped_through_a_symlink_are_served_on_the_next_handshake() {
    let dir = Scratch::new("certs");
    let first = fluxgate::certs::generate(&[], chrono::Utc::now()).unwrap();
    let second = fluxgate::certs::generate(&[], chrono::Utc::now()).unwrap();
    mount_secret(&dir, "v1", &first);
    // The harness waits for readiness with dir/ca.pem: point it at the first CA.
    std::fs::write(dir.path("ca.pem"), &first.ca_pem).unwrap();
    let (cert, key) = (dir.path("tls.crt"), dir.path("tls.key"));
    let server = Server::start(
        &dir,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
    .await;
    let (ca1, ca2) = (dir.path("ca-v1.pem"), dir.path("ca-v2.pem"));
    assert!(connect(server.addr, &ca1).await.is_ok());

    // A connection opened before the swap keeps working after it.
    let mut before = connect(server.addr, &ca1).await.unwrap();
    mount_secret(&dir, "v2", &second);
    server
        .eventually("the new certificate", Duration::from_secs(10), || async {
            connect(server.addr, &ca2).await.is_ok()
        })
        .await;
    assert!(
        connect(server.addr, &ca1).await.is_err(),
        "the old certificate is no longer served"
    );
    assert_eq!(
        server
            .metric("fluxgate_tls_reloads_total{result=\"success\"}")
            .await,
        1.0
    );
    before
        .write_all(&head("GET", "/healthz", "text/plain", 0))
        .await
        .unwrap();
    assert_eq!(read_response(&mut before).await.unwrap().status, 200);

    // A key that does not fit is rejected and the current certificate stays.
    let third = fluxgate::certs::generate(&[], chrono::Utc::now()).unwrap();
    let broken = fluxgate::certs::GeneratedCerts {
        key_pem: first.key_pem.clone(),
        ..third
    };
    mount_secret(&dir, "v3", &broken);
    let failure = "fluxgate_tls_reloads_total{result=\"failure\"}";
    server
        .eventually("the rejected reload", Duration::from_secs(10), || async {
            server.metric(failure).await == 1.0
        })
        .await;
    assert!(
        connect(server.addr, &ca2).await.is_ok(),
        "still serving the last good certificate"
    );
    let expiry = "fluxgate_tls_certificate_expiry_timestamp_seconds";
    let in_use = server.metric(expiry).await;
    assert!(in_use > chrono::Utc::now().timestamp() as f64, "{in_use}");

    // An expired certificate, and one not valid yet, are refused the same way: every client
    // would fail the handshake.
    for (version, from, to, why) in [
        (
            "v4",
            "2020-01-01T00:00:00Z",
            "2021-01-01T00:00:00Z",
            "expired",
        ),
        (
            "v5",
            "2100-01-01T00:00:00Z",
            "2101-01-01T00:00:00Z",
            "not valid before",
        ),
    ] {
        let refused = server.metric(failure).await;
        mount_secret(&dir, version, &certificate_valid(from, to));
        server
            .eventually(why, Duration::from_secs(10), || async {
                server.metric(failure).await == refused + 1.0
            })
            .await;
        assert!(server.log().contains(why), "{}", server.log());
        assert!(
            connect(server.addr, &ca2).await.is_ok(),
            "still the last good one"
        );
        assert_eq!(server.metric(expiry).await, in_use);
    }

    // Files gone (the Secret deleted): counted and logged, the certificate in use stays.
    std::fs::remove_file(dir.path("..data")).unwrap();
    server
        .eventually("the unreadable files", Duration::from_secs(10), || async {
            server.metric(failure).await == 4.0
        })
        .await;
    assert!(server.log().contains("cannot read the certificate files"));
    assert!(connect(server.addr, &ca2).await.is_ok());
}

/// A self-signed serving certificate for localhost valid from `from` to `to`.
fn certificate_valid(from: &str, to: &str) -> fluxgate::certs::GeneratedCerts {
    let instant = |t: &str| {
        let unix = chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp() as u64;
        rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(unix)
    };
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = instant(from);
    params.not_after = instant(to);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    fluxgate::certs::GeneratedCerts {
        ca_pem: cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

#[tokio::test]
async fn hostile_bodies_get_status_codes_and_the_server_keeps_serving() {
    let dir = Scratch::new("hostile");
    let server = Server::start(&dir, &[]).await;
    let oversized = vec![b'{'; 8 * 1024 * 1024];
    let response = server.post("application/json", &oversized).await;
    // The server may answer 413 and close before reading the whole body.
    if let Ok(response) = response {
        assert_eq!(response.status, 413);
    }
    let response = server.post("text/yaml", b"kind: x").await.unwrap();
    assert_eq!(response.status, 415);
    let response = server
        .post("application/json", b"\x00\xffnot json")
        .await
        .unwrap();
    assert_eq!(response.status, 400);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("not an AdmissionReview")
    );

    // Plain HTTP on the TLS port is refused without harm.
    let mut plain = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(&head("GET", "/healthz", "text/plain", 0))
        .await
        .unwrap();
    let _ = read_response(&mut plain).await;

    let ok = server
        .validate(&fixture("human-patch-deployment.json"))
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        server.audit_lines().len(),
        1,
        "only the decided request is audited"
    );
    assert_eq!(
        server
            .metric("fluxgate_http_rejected_requests_total{code=\"415\"}")
            .await,
        1.0
    );
    assert_eq!(
        server
            .metric("fluxgate_http_rejected_requests_total{code=\"400\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn sigterm_turns_readiness_off_and_drains_the_request_in_flight() {
    let dir = Scratch::new("sigterm");
    let mut server = Server::start(&dir, &["--shutdown-delay", "1s"]).await;
    let body = fixture("flux-dryrun-image-bump-deployment.json");
    let mut in_flight = connect(server.addr, &server.ca).await.unwrap();
    in_flight
        .write_all(&head("POST", "/validate", "application/json", body.len()))
        .await
        .unwrap();
    in_flight.write_all(&body[..body.len() / 2]).await.unwrap();
    in_flight.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    server.signal("TERM");
    server
        .eventually("readiness to go false", Duration::from_secs(5), || async {
            matches!(get(server.addr, &server.ca, "/readyz").await, Ok(r) if r.status == 503)
        })
        .await;
    in_flight.write_all(&body[body.len() / 2..]).await.unwrap();
    let response = read_response(&mut in_flight).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json()["response"]["uid"],
        "382e71b4-420a-484a-9200-d062f988c348"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not exit; stderr:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        server.log()
    );
    assert_eq!(
        server.audit_lines().len(),
        1,
        "the drained request was audited"
    );
}

#[tokio::test]
async fn sighup_reopens_the_audit_log_after_rotation() {
    let dir = Scratch::new("sighup");
    let server = Server::start(&dir, &[]).await;
    let human = fixture("human-patch-deployment.json");
    assert_eq!(server.validate(&human).await.status, 200);
    let rotated = dir.path("audit.log.1");
    std::fs::rename(&server.audit_log, &rotated).unwrap();
    server.signal("HUP");
    server
        .eventually(
            "the audit log to be reopened",
            Duration::from_secs(5),
            || async { server.log().contains("audit log reopened") },
        )
        .await;
    assert_eq!(server.validate(&human).await.status, 200);
    assert_eq!(
        std::fs::read_to_string(&rotated).unwrap().lines().count(),
        1
    );
    assert_eq!(
        server.audit_lines().len(),
        1,
        "the new file gets the new record"
    );
}

/// A CA and a client certificate it signed (clientAuth), as PEM: (ca, cert, key).
fn client_identity() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut client = CertificateParams::new(vec!["kube-apiserver".to_owned()]).unwrap();
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = client.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

async fn validate_as(server: &Server, identity: Option<(&str, &str)>) -> std::io::Result<Response> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let pem = std::fs::read(&server.ca).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(fluxgate::server::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(server.addr).await?;
    let mut stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    let body = fixture("human-patch-deployment.json");
    stream
        .write_all(&head("POST", "/validate", "application/json", body.len()))
        .await?;
    stream.write_all(&body).await?;
    read_response(&mut stream).await
}

#[tokio::test]
async fn client_ca_admits_only_the_api_servers_certificate_on_validate() {
    let dir = Scratch::new("client-ca");
    let (ca, cert, key) = client_identity();
    std::fs::write(dir.path("client-ca.pem"), &ca).unwrap();
    let server = Server::start(
        &dir,
        &["--client-ca", dir.path("client-ca.pem").to_str().unwrap()],
    )
    .await;

    let anonymous = validate_as(&server, None).await.unwrap();
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous.json()["error"]
            .as_str()
            .unwrap()
            .contains("client certificate")
    );

    let api_server = validate_as(&server, Some((&cert, &key))).await.unwrap();
    assert_eq!(api_server.status, 200);
    assert_eq!(api_server.json()["response"]["allowed"], true);

    let (_, other_cert, other_key) = client_identity();
    let stranger = validate_as(&server, Some((&other_cert, &other_key))).await;
    assert!(
        stranger.is_err() || stranger.unwrap().status != 200,
        "a certificate from another CA is refused"
    );

    // Probes present no certificate and still work.
    assert_eq!(
        get(server.addr, &server.ca, "/readyz")
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        server.audit_lines().len(),
        1,
        "only the authenticated request was decided"
    );
    // The record names the verified caller by its certificate's subject.
    let caller = server.audit_lines()[0]["caller"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(caller.contains("CN=rcgen"), "{caller}");
}

/// JSON application logs: one `message` key per line (the rejection's text is `error`), and no
/// ANSI colours when stderr is not a terminal (here a file), in either format.
#[tokio::test]
async fn logs_have_one_message_key_and_no_colours_off_a_terminal() {
    for format in ["json", "text"] {
        let dir = Scratch::new(&format!("logs-{format}"));
        let server = Server::start(&dir, &["--log-format", format]).await;
        let response = server.post("text/plain", b"not json").await.unwrap();
        assert!(response.status >= 400, "{}", response.status);
        server
            .eventually("the rejection logged", Duration::from_secs(5), || async {
                server.log().contains("rejected request to /validate")
            })
            .await;
        let log = server.log();
        assert!(
            !log.contains('\u{1b}'),
            "ANSI escape in {format} logs:\n{log}"
        );
        if format == "json" {
            for line in log.lines() {
                assert_eq!(line.matches("\"message\":").count(), 1, "{line}");
                let _: serde_json::Value = serde_json::from_str(line).unwrap();
            }
        }
    }
}

/// An audit record of the caller's choosing: an admitted bypass of Deployment prod/payments.
fn forged_record() -> String {
    let golden =
        std::fs::read_to_string(format!("{FIXTURES}/audit/image-bump-denied.jsonl")).unwrap();
    let mut record: Value = serde_json::from_str(&golden).unwrap();
    record["uid"] = json!("forged");
    record["decision"] = json!("allow");
    record["reason"] = json!("bypass");
    record["dryRun"] = json!(false);
    record["namespace"] = json!("prod");
    record["name"] = json!("payments");
    record["bypass"] =
        json!({"reason": "approved", "until": "2026-11-27T18:00:00Z", "valid": true});
    record.to_string()
}

/// Issue 21 (4): a review whose `operation` holds a newline, an audit record and a newline is
/// refused (400), and the parse error, which quotes the operation, is logged. However the
/// application log is written, each event stays one line, so `fluxgate audit` over the stream
/// `kubectl logs` shows (stdout and stderr merged) counts the one real decision and no
/// forged record. Before the fix, text logs wrote the newlines raw, and the forged "allow
/// bypass" was counted and listed under BYPASSES.
#[tokio::test]
async fn a_record_forged_into_the_application_log_is_not_counted() {
    let forged = forged_record();
    for format in ["text", "json"] {
        let dir = Scratch::new(&format!("forged-log-{format}"));
        let server = Server::start_merged(&dir, &["--log-format", format]).await;
        assert_eq!(
            server
                .validate(&fixture("human-patch-deployment.json"))
                .await
                .status,
            200
        );
        // In the operation, the review is refused and the parse error logged; in the uid, it
        // is decided and recorded, the forged text a JSON string inside the real record.
        for (field, status) in [("operation", 400), ("uid", 200)] {
            let mut review: Value =
                serde_json::from_slice(&fixture("human-patch-deployment.json")).unwrap();
            review["request"][field] = json!(format!("\n{forged}\n\u{1b}[8m\r"));
            let response = server.validate(&serde_json::to_vec(&review).unwrap()).await;
            assert_eq!(
                response.status,
                status,
                "{field}: {}",
                String::from_utf8_lossy(&response.body)
            );
        }
        server
            .eventually("the rejections logged", Duration::from_secs(5), || async {
                server.log().contains("rejected request to /validate")
            })
            .await;
        let log = server.log();
        for line in log.lines() {
            assert!(
                !line.contains(['\u{1b}', '\r']),
                "{format}: a control character in {line:?}"
            );
        }
        let merged = dir.path("merged.log");
        let out = run_fluxgate(&["audit", merged.to_str().unwrap(), "-o", "json"], b"", &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let stats = &report["stats"];
        println!("{format} logs, merged with the audit lines: {stats}");
        assert_eq!(stats["records"], 2, "{format}: {log}");
        assert_eq!(stats["unparseableLines"], 0, "{format}: {log}");
        assert_eq!(report["summary"]["bypasses"], json!([]), "{format}: {log}");
        assert!(
            stats["appLogLines"].as_u64().unwrap() >= 2,
            "{format}: {log}"
        );
    }
}

/// A reload is held to what admission refuses too: an override longer than --max-override
/// keeps the last good set (rather than being ignored decision by decision).
#[tokio::test]
async fn a_reload_with_a_too_long_override_keeps_the_last_good_set() {
    let dir = Scratch::new("reload-override");
    let windows = dir.path("windows.yaml");
    std::fs::write(&windows, windows_yaml(true)).unwrap();
    let server = Server::start(&dir, &["--windows", windows.to_str().unwrap()]).await;
    let long = format!(
        "{}  overrides:\n    - start: 2026-11-27T00:00:00Z\n      end: 2026-11-29T00:00:00Z\n      reason: weekend\n",
        windows_yaml(false)
    );
    std::fs::write(&windows, long).unwrap();
    let failure = "fluxgate_window_reloads_total{result=\"failure\"}";
    server
        .eventually("the reload failure", Duration::from_secs(10), || async {
            server.metric(failure).await == 1.0
        })
        .await;
    assert!(
        server.log().contains("more than --max-override 24h"),
        "{}",
        server.log()
    );
}

/// A review of `fixture_name` whose object names no window: governed by `--default-window`.
fn without_window(fixture_name: &str) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&fixture(fixture_name)).unwrap();
    for object in ["object", "oldObject"] {
        if let Some(labels) = review["request"][object]["metadata"]["labels"].as_object_mut() {
            labels.remove("fluxgate.io/window");
        }
    }
    serde_json::to_vec(&review).unwrap()
}

/// Issue 21, item 7: a reload to windows without the `--default-window` is refused like an
/// invalid one (counted, `config_valid` 0, logged); the last good set, default window included,
/// stays, so objects without a window label are not all denied as unknown-window.
#[tokio::test]
async fn a_reload_that_drops_the_default_window_is_refused() {
    let dir = Scratch::new("reload-default");
    let windows = dir.path("windows.yaml");
    let main = windows_yaml(true).replace("business-hours", "main");
    std::fs::write(&windows, format!("{}---\n{main}", windows_yaml(true))).unwrap();
    let args = [
        "--windows",
        windows.to_str().unwrap(),
        "--default-window",
        "main",
    ];
    let server = Server::start(&dir, &args).await;
    let unlabelled = without_window("flux-dryrun-image-bump-deployment.json");
    let reason = |response: &common::Response| {
        response.json()["response"]["auditAnnotations"]["reason"].clone()
    };
    assert_eq!(reason(&server.validate(&unlabelled).await), "window-open");

    // Written elsewhere and renamed into place, as the README says to.
    let tmp = dir.path("windows.yaml.tmp");
    std::fs::write(&tmp, windows_yaml(true)).unwrap();
    std::fs::rename(&tmp, &windows).unwrap();
    let failure = "fluxgate_window_reloads_total{result=\"failure\"}";
    server
        .eventually("the reload failure", Duration::from_secs(10), || async {
            server.metric(failure).await == 1.0
        })
        .await;
    assert_eq!(server.metric("fluxgate_config_valid").await, 0.0);
    assert!(
        server
            .log()
            .contains("names no window (known: business-hours)"),
        "{}",
        server.log()
    );
    assert_eq!(reason(&server.validate(&unlabelled).await), "window-open");
}

/// Issue 21, item 9: `/healthz` answers while the windows load, so a liveness probe never kills
/// a loading pod, and `/readyz` is 503 until they are in force. The load is made slow by a
/// windows file rewritten in place every 10 ms (always whole: same length, a counter changing),
/// which the server waits to settle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_the_windows_load_and_readyz_waits_for_them() {
    use std::io::{Seek, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = Scratch::new("loading");
    let windows = dir.path("windows.yaml");
    let version = |n: u32| format!("# rewrite {n:08}\n{}", windows_yaml(true));
    std::fs::write(&windows, version(0)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (windows, stop) = (windows.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&windows)
                .unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let mut n = 0;
            while !stop.load(Ordering::Acquire) && std::time::Instant::now() < deadline {
                n += 1;
                file.rewind().unwrap();
                file.write_all(version(n).as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
            n
        })
    };
    let server = Server::spawn(&dir, &["--windows", windows.to_str().unwrap()]);
    let started = std::time::Instant::now();
    let mut healthy = None;
    while healthy.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "/healthz never answered; stderr:\n{}",
            server.log()
        );
        if server.ca.exists()
            && let Ok(response) = get(server.addr, &server.ca, "/healthz").await
        {
            healthy = Some(response.status);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(healthy, Some(200));
    let answered = started.elapsed();
    let ready = get(server.addr, &server.ca, "/readyz").await.unwrap();
    assert_eq!(ready.status, 503, "ready before the windows were in force");
    assert_eq!(
        get(server.addr, &server.ca, "/healthz")
            .await
            .unwrap()
            .status,
        200
    );
    server
        .eventually("the wait logged", Duration::from_secs(10), || async {
            server.log().contains("still being written")
        })
        .await;
    stop.store(true, Ordering::Release);
    let rewrites = writer.join().unwrap();
    let stopped = std::time::Instant::now();
    server.wait_ready().await;
    println!(
        "healthz while loading: 200 {answered:?} after start, /readyz 503; {rewrites} rewrites \
         in place held the load; ready {:?} after they stopped",
        stopped.elapsed()
    );
}
