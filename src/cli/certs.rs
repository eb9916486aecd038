//! `fluxgate certs`: a CA and serving certificate for the webhook Service, and the `caBundle`.
//!
//! For clusters without cert-manager. The files go into a Secret
//! (`kubectl create secret tls fluxgate-tls …`); the CA goes into the webhook configuration.
//! Keys are written owner-readable only and never belong in Git.

use crate::certs::{base64, generate, service_names};
use anyhow::{Context, bail};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// The webhook's Service name.
    #[arg(long, env = "FLUXGATE_SERVICE", default_value = "fluxgate")]
    service: String,
    /// The webhook's namespace.
    #[arg(long, env = "FLUXGATE_NAMESPACE", default_value = "fluxgate-system")]
    namespace: String,
    /// Extra DNS names for the serving certificate (repeatable).
    #[arg(long = "dns-name", env = "FLUXGATE_DNS_NAME", value_delimiter = ',')]
    dns_names: Vec<String>,
    /// Folder to write ca.crt, tls.crt and tls.key into (created if missing).
    #[arg(long, env = "FLUXGATE_CERTS_OUT", default_value = "certs")]
    out: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

pub fn run(args: CertsArgs) -> anyhow::Result<ExitCode> {
    let mut names = service_names(&args.service, &args.namespace);
    names.extend(args.dns_names.iter().cloned());
    let generated = generate(&names).context("cannot generate certificates")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let files = [
        ("ca.crt", &generated.ca_pem, 0o644),
        ("tls.crt", &generated.cert_pem, 0o644),
        ("tls.key", &generated.key_pem, 0o600),
    ];
    for (name, _, _) in &files {
        let path = args.out.join(name);
        if path.exists() && !args.force {
            bail!("{} exists: pass --force to replace it", path.display());
        }
    }
    for (name, pem, mode) in files {
        write_file(&args.out.join(name), pem.as_bytes(), mode)?;
    }
    let out = args.out.display();
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "Wrote {out}/ca.crt, {out}/tls.crt and {out}/tls.key for {}.\n\n\
         caBundle (base64 of ca.crt), for the ValidatingWebhookConfiguration:\n{}\n\n\
         Next:\n  kubectl -n {ns} create secret tls fluxgate-tls --cert {out}/tls.crt --key {out}/tls.key\n  \
         patch caBundle into deploy/base/webhook.yaml (see deploy/README.md); never commit tls.key.",
        names.join(", "),
        base64(generated.ca_pem.as_bytes()),
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
