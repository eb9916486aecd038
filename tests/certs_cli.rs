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
    // The line after the caBundle heading decodes to ca.crt, byte for byte.
    use base64::Engine as _;
    let bundle = stdout
        .lines()
        .skip_while(|line| !line.contains("caBundle"))
        .nth(1)
        .unwrap_or_else(|| panic!("no caBundle printed:\n{stdout}"));
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(bundle.trim())
            .unwrap(),
        ca,
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

fn certs(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args(["certs", "--out"])
        .arg(out)
        .args(extra)
        .env_remove("FLUXGATE_NAMESPACE")
        .output()
        .unwrap()
}

#[tokio::test]
async fn force_rotates_the_serving_certificate_with_the_same_ca_and_rotate_ca_makes_a_new_one() {
    let dir = Scratch::new("certs-rotate");
    let out = dir.path("certs");
    assert!(certs(&out, &[]).status.success());
    let read = |name: &str| std::fs::read(out.join(name)).unwrap();
    let (ca, ca_key, leaf) = (read("ca.crt"), read("ca.key"), read("tls.crt"));
    let mode = std::fs::metadata(out.join("ca.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the CA key is owner-only");

    // FLUXGATE_CERTS_FORCE is --force's twin; the generic FLUXGATE_NAMESPACE is not read.
    let output = Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args(["certs", "--out"])
        .arg(&out)
        .env("FLUXGATE_CERTS_FORCE", "true")
        .env("FLUXGATE_NAMESPACE", "something-else")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("the caBundle is unchanged"), "{stdout}");
    assert!(stdout.contains("fluxgate.fluxgate-system.svc"), "{stdout}");
    assert_eq!((read("ca.crt"), read("ca.key")), (ca.clone(), ca_key));
    assert_ne!(read("tls.crt"), leaf, "a new serving certificate");

    // The new serving certificate verifies against the CA the webhook already trusts.
    std::fs::write(dir.path("ca.pem"), &ca).unwrap();
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
    assert!(
        connect_as(server.addr, &dir.path("ca.pem"), "localhost")
            .await
            .is_ok()
    );

    // --rotate-ca: a new CA, so a new caBundle.
    let output = certs(&out, &["--force", "--rotate-ca"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_ne!(read("ca.crt"), ca);
    // --rotate-ca without --force is refused.
    assert_eq!(certs(&out, &["--rotate-ca"]).status.code(), Some(2));
}
