//! `fluxgate certs`: files a Secret can be made from, a caBundle the API server can use, and a
//! certificate the server really serves for the Service's names.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[tokio::test]
async fn certs_are_served_for_the_service_names_and_verify_against_the_printed_ca_bundle() {
    let dir = Scratch::new("certs-cli");
    let out = dir.path("certs");
    let output = Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args([
            "certs",
            "--service",
            "fluxgate",
            "--namespace",
            "fluxgate-system",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let ca = std::fs::read(out.join("ca.crt")).unwrap();
    assert!(
        stdout.contains(&fluxgate::certs::base64(&ca)),
        "caBundle printed:\n{stdout}"
    );
    let mode = std::fs::metadata(out.join("tls.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the key is owner-only");

    // Running again does not silently replace the files.
    let again = Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args(["certs", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("pass --force"));

    std::fs::copy(out.join("ca.crt"), dir.path("ca.pem")).unwrap();
    let (cert, key) = (out.join("tls.crt"), out.join("tls.key"));
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
    for name in [
        "fluxgate.fluxgate-system.svc",
        "fluxgate.fluxgate-system.svc.cluster.local",
        "localhost",
    ] {
        assert!(
            connect_as(server.addr, &out.join("ca.crt"), name)
                .await
                .is_ok(),
            "{name}"
        );
    }
    assert!(
        connect_as(server.addr, &out.join("ca.crt"), "other.example.com")
            .await
            .is_err()
    );
}
