//! `fluxgate certs`: a CA and serving certificate for the webhook Service, and the `caBundle`.
//!
//! For clusters without cert-manager. The files go into a Secret
//! (`kubectl create secret tls fluxgate-tls …`); the CA goes into the webhook configuration.
//! Keys are written owner-readable only and never belong in Git.

use crate::certs::{Ca, generate_ca, issue, service_names};
use crate::clock::Clock;
use anyhow::{Context, bail};
use base64::Engine as _;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

// The environment twins carry a CERTS_ infix: a pod's environment may well hold
// FLUXGATE_NAMESPACE-like variables meant for something else.
#[derive(Debug, Args)]
pub(crate) struct CertsArgs {
    /// The webhook's Service name.
    #[arg(long, env = "FLUXGATE_CERTS_SERVICE", default_value = "fluxgate")]
    service: String,
    /// The webhook's namespace.
    #[arg(
        long,
        env = "FLUXGATE_CERTS_NAMESPACE",
        default_value = "fluxgate-system"
    )]
    namespace: String,
    /// Extra DNS names for the serving certificate (repeatable).
    #[arg(
        long = "dns-name",
        env = "FLUXGATE_CERTS_DNS_NAME",
        value_delimiter = ','
    )]
    dns_names: Vec<String>,
    /// Folder to write ca.crt, ca.key, tls.crt and tls.key into (created if missing).
    #[arg(long, env = "FLUXGATE_CERTS_OUT", default_value = "certs")]
    out: PathBuf,
    /// Rotate the serving certificate: replace tls.crt and tls.key, signed by the CA already in
    /// the folder (ca.crt, ca.key), so the caBundle stays as it is. Without a CA there, a new
    /// one is made.
    #[arg(long, env = "FLUXGATE_CERTS_FORCE")]
    force: bool,
    /// Rotate the CA too (with --force): a new ca.crt and ca.key, so the caBundle changes.
    #[arg(long, env = "FLUXGATE_CERTS_ROTATE_CA", requires = "force")]
    rotate_ca: bool,
}

pub(crate) fn run(args: CertsArgs) -> anyhow::Result<ExitCode> {
    let mut names = service_names(&args.service, &args.namespace);
    names.extend(args.dns_names.iter().cloned());
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let path = |name: &str| args.out.join(name);
    for name in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        if path(name).exists() && !args.force {
            bail!(
                "{} exists: pass --force to re-issue the serving certificate with the same CA \
                 (add --rotate-ca for a new CA)",
                path(name).display()
            );
        }
    }
    let existing = (path("ca.crt").exists() && path("ca.key").exists() && !args.rotate_ca)
        .then(|| -> anyhow::Result<Ca> {
            let read = |name: &str| {
                std::fs::read_to_string(path(name))
                    .with_context(|| format!("cannot read {}", path(name).display()))
            };
            Ok(Ca {
                pem: read("ca.crt")?,
                key_pem: read("ca.key")?,
            })
        })
        .transpose()?;
    let kept_ca = existing.is_some();
    let now = Clock::system().now();
    let ca = match existing {
        Some(ca) => ca,
        None => generate_ca(now).context("cannot generate a CA")?,
    };
    let generated = issue(&names, &ca, now).with_context(|| {
        format!(
            "cannot sign with {} (pass --rotate-ca for a new CA)",
            path("ca.key").display()
        )
    })?;
    if !kept_ca {
        write_file(&path("ca.crt"), ca.pem.as_bytes(), 0o644)?;
        write_file(&path("ca.key"), ca.key_pem.as_bytes(), 0o600)?;
    }
    write_file(&path("tls.crt"), generated.cert_pem.as_bytes(), 0o644)?;
    write_file(&path("tls.key"), generated.key_pem.as_bytes(), 0o600)?;
    let out = args.out.display();
    let what = if kept_ca {
        format!(
            "Re-issued {out}/tls.crt and {out}/tls.key with the existing CA {out}/ca.crt (the caBundle is unchanged)"
        )
    } else {
        format!(
            "Wrote a new CA ({out}/ca.crt, {out}/ca.key; ten years) and {out}/tls.crt, {out}/tls.key (one year)"
        )
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{what} for {}.\n\n\
         caBundle (base64 of ca.crt), for the ValidatingWebhookConfiguration:\n{}\n\n\
         Next:\n  kubectl -n {ns} create secret tls fluxgate-tls --cert {out}/tls.crt --key {out}/tls.key\n  \
         patch caBundle into deploy/base/webhook.yaml (see deploy/README.md); never commit tls.key or ca.key.",
        names.join(", "),
        base64::engine::general_purpose::STANDARD.encode(ca.pem.as_bytes()),
        ns = args.namespace,
    )
    .context("cannot write stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(data)
        .with_context(|| format!("cannot write {}", path.display()))
}
