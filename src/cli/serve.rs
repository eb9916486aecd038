//! `fluxgate serve`: flags → server. Wires the shells together; decides nothing itself.

use super::CommonArgs;
use crate::audit_log::{AuditSink, FileSink, StdoutSink};
use crate::certs;
use crate::clock::Clock;
use crate::cluster::events::EventPublisher;
use crate::cluster::freezes::{Creators, watch_freezes};
use crate::cluster::notifications::Notifications;
use crate::cluster::owners::watch_owners;
use crate::cluster::sync::ClusterSync;
use crate::cluster::watch::watch_windows_and_freezes;
use crate::files::{Snapshot, read_files, watch};
use crate::metrics::Metrics;
use crate::server::listen::{ConnectionLimits, serve_tls};
use crate::server::tls::{
    CertResolver, PemFileError, TlsError, certified_key, check_validity, read_pem_files,
    server_config,
};
use crate::server::{AppState, Limits, MAX_BODY_BYTES, Notifier, Settings, metrics_router, router};
use crate::windows::read::read_windows;
use crate::windows::{WindowStore, load_at_start};
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use rustls::ServerConfig;
use rustls::sign::CertifiedKey;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Watch ReconciliationWindow objects in the cluster instead of reading --windows files.
    #[arg(
        long,
        env = "FLUXGATE_WINDOWS_FROM_CLUSTER",
        conflicts_with = "windows"
    )]
    windows_from_cluster: bool,
    /// Publish Kubernetes Events for admitted bypasses and for denials (dry-runs included), one
    /// Event series per object and closed period.
    #[arg(long, env = "FLUXGATE_EVENTS")]
    events: bool,
    /// When a window opens, ask Flux to reconcile at once every Kustomization and HelmRelease
    /// that fluxgate denied for it (reconcile.fluxcd.io/requestedAt; HelmReleases also resetAt,
    /// so a Stalled release tries again).
    #[arg(long, env = "FLUXGATE_RECONCILE_ON_OPEN")]
    reconcile_on_open: bool,
    /// How long one ReconciliationFreeze (a stop-the-line freeze) may be: a longer one is
    /// refused at admission and freezes nothing.
    #[arg(long, env = "FLUXGATE_MAX_FREEZE", default_value = "24h", value_parser = fluxgate_core::duration::parse_duration, value_name = "DURATION")]
    max_freeze: chrono::Duration,
    /// Post Flux events to this notification-controller address (Flux's event API), so the
    /// Alerts for Kustomizations and HelmReleases say when a change waits for a window, when it
    /// lands (with --reconcile-on-open), and bypasses, overrides and blocked changes. E.g.
    /// http://notification-controller.flux-system.svc.cluster.local./ (docs/notifications.md).
    #[arg(long, env = "FLUXGATE_NOTIFICATION_URL", value_name = "URL", value_parser = crate::cluster::notifications::parse_url)]
    notification_url: Option<hyper::Uri>,
    /// HTTPS address of /validate, /healthz and /readyz.
    #[arg(long, env = "FLUXGATE_ADDR", default_value = "0.0.0.0:8443")]
    addr: SocketAddr,
    /// Plain-HTTP address of /metrics.
    #[arg(long, env = "FLUXGATE_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    metrics_addr: SocketAddr,
    /// PEM certificate chain (e.g. a cert-manager Secret's tls.crt); reloaded when it changes.
    #[arg(
        long,
        env = "FLUXGATE_TLS_CERT",
        requires = "tls_key",
        value_name = "PATH"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM private key (tls.key).
    #[arg(
        long,
        env = "FLUXGATE_TLS_KEY",
        requires = "tls_cert",
        value_name = "PATH"
    )]
    tls_key: Option<PathBuf>,
    /// Extra DNS name of the generated certificate (repeatable), e.g. fluxgate.fluxgate-system.svc.
    #[arg(
        long = "dns-name",
        env = "FLUXGATE_DNS_NAME",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    dns_names: Vec<String>,
    /// Require callers of /validate to present a certificate signed by this CA (PEM): the API
    /// server's client certificate from its AdmissionConfiguration. Probes need none.
    #[arg(long, env = "FLUXGATE_CLIENT_CA", value_name = "PATH")]
    client_ca: Option<PathBuf>,
    /// Let callers without a verified client certificate make fluxgate publish Events and count
    /// bypasses (their reviews are answered and audited either way, with their address). Needed
    /// without --client-ca; then keep the port reachable from the API server only (deploy/).
    #[arg(long, env = "FLUXGATE_ACCEPT_UNVERIFIED_CALLERS")]
    accept_unverified_callers: bool,
    /// Write the generated CA certificate (the caBundle) to this file.
    #[arg(
        long,
        env = "FLUXGATE_CA_OUT",
        value_name = "PATH",
        conflicts_with = "tls_cert"
    )]
    ca_out: Option<PathBuf>,
    /// Append audit records to this file (reopened on SIGHUP) instead of stdout.
    #[arg(long, env = "FLUXGATE_AUDIT_LOG", value_name = "PATH")]
    audit_log: Option<PathBuf>,
    /// Application log format (stderr).
    #[arg(long, env = "FLUXGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// How often windows and certificate files are checked for changes.
    #[arg(long, env = "FLUXGATE_WATCH_INTERVAL", default_value = "2s", value_parser = std_duration)]
    watch_interval: Duration,
    /// Per-request deadline; keep it below the webhook's timeoutSeconds (10s in deploy/).
    #[arg(long, env = "FLUXGATE_REQUEST_TIMEOUT", default_value = "5s", value_parser = std_duration)]
    request_timeout: Duration,
    /// Deadline for a client to finish the TLS handshake.
    #[arg(long, env = "FLUXGATE_TLS_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = std_duration)]
    tls_handshake_timeout: Duration,
    /// Deadline for a client to send request headers.
    #[arg(long, env = "FLUXGATE_HEADER_READ_TIMEOUT", default_value = "5s", value_parser = std_duration)]
    header_read_timeout: Duration,
    /// Close a connection idle this long (nothing read or written); longer than the request
    /// timeout. The API server simply reconnects.
    #[arg(long, env = "FLUXGATE_IDLE_TIMEOUT", default_value = "60s", value_parser = std_duration)]
    idle_timeout: Duration,
    /// Open connections at most; more are closed at once.
    #[arg(long, env = "FLUXGATE_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Open connections from one IP address at most (TLS handshakes included); a quarter of
    /// --max-connections when not given, so one peer cannot take every slot.
    #[arg(long, env = "FLUXGATE_MAX_CONNECTIONS_PER_PEER")]
    max_connections_per_peer: Option<usize>,
    /// Bytes of request bodies held at once across all connections, half of it at most from one
    /// IP address; a body waits (within the request timeout) for its share. At least 7340032
    /// (one largest body); see RELIABILITY.md.
    #[arg(long, env = "FLUXGATE_MAX_BODY_BYTES_IN_FLIGHT", default_value_t = crate::server::DEFAULT_BODY_BUDGET)]
    max_body_bytes_in_flight: usize,
    /// Requests decided at once; more wait within the request timeout.
    #[arg(long, env = "FLUXGATE_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    max_concurrent_requests: usize,
    /// After SIGTERM, keep serving (not ready) this long so endpoints stop routing here first.
    #[arg(long, env = "FLUXGATE_SHUTDOWN_DELAY", default_value = "5s", value_parser = std_duration)]
    shutdown_delay: Duration,
    /// Then give in-flight requests this long to finish.
    #[arg(long, env = "FLUXGATE_DRAIN_TIMEOUT", default_value = "20s", value_parser = std_duration)]
    drain_timeout: Duration,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn std_duration(text: &str) -> Result<Duration, String> {
    let d = fluxgate_core::duration::parse_duration_or_zero(text).map_err(|e| e.to_string())?;
    d.to_std().map_err(|e| e.to_string())
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

/// Application logs on stderr, one line per event in either format. `kubectl logs` merges
/// stderr into the audit lines on stdout, and a field's value may come from a request (a parse
/// error quotes it): a raw newline there would start a line of the caller's choosing, such as
/// a forged audit record. JSON logs escape it as JSON does; text logs escape every control
/// character with `fluxgate_core::render::escape`, in tracing-subscriber's own field-formatter
/// hook (its default formatter escapes terminal escapes in messages only, and newlines in
/// none). A panic is logged the same way instead of being printed raw by the default hook.
fn init_logging(format: LogFormat) {
    use fluxgate_core::render::escape::Escaping;
    use std::fmt::Write as _;
    use tracing_subscriber::field::MakeExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: not in `kubectl logs`, files or pipes.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // As the default text formatter writes fields (`message`, then `name=value`), escaped.
    let escaped_fields = tracing_subscriber::fmt::format::debug_fn(|out, field, value| {
        let name = field.name();
        if name != "message" {
            write!(out, "{}=", name.strip_prefix("r#").unwrap_or(name))?;
        }
        write!(Escaping(out), "{value:?}")
    })
    .delimited(" ");
    match format {
        LogFormat::Text => builder.fmt_fields(escaped_fields).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    std::panic::set_hook(Box::new(|panic| {
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        let backtrace = std::backtrace::Backtrace::capture();
        match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => {
                tracing::error!(thread, %panic, %backtrace, "thread panicked")
            }
            _ => tracing::error!(thread, %panic, "thread panicked"),
        }
    }));
}

/// The server, from flags to shutdown: the settings, the state, the reloaders, the metrics
/// server, the listener, and the shutdown.
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    check_flags(&args)?;
    let clock = Clock::system();
    let audit = audit_sink(&args)?;
    let client = cluster_client(&args).await?;
    let metrics = Metrics::default();
    let publisher = event_publisher(&args, client.as_ref(), &metrics);
    let notices = notifications(&args, client.as_ref(), &metrics);
    let senders = Senders {
        events: publisher,
        notices,
        // Who created each ReconciliationFreeze, as this replica admitted it (cluster::freezes).
        creators: Creators::default(),
    };
    let settings = settings(&args, metrics, audit.clone(), &senders, clock.clone());
    let state = Arc::new(AppState::new(settings));
    if let Some(client) = client {
        spawn_cluster_tasks(&args, client, &state, senders, &clock);
    }
    let tls = tls_config(&args, &state)?;
    spawn_audit_reopen(audit);

    let listener = bind(args.addr).await?;
    let metrics_server = MetricsServer::start(args.metrics_addr, state.clone()).await?;
    let app = router(state.clone(), &request_limits(&args));
    state.set_ready(true);
    tracing::info!(addr = %listener.local_addr()?, metrics = %args.metrics_addr, "serving");

    let draining = Arc::new(AtomicBool::new(false));
    let shutdown = shutdown(state.clone(), draining.clone(), args.shutdown_delay);
    let serving = serve_tls(
        listener,
        tls,
        app,
        connection_limits(&args),
        draining,
        shutdown,
    );
    tokio::select! {
        () = serving => {}
        Err(error) = windows_from_files(&args, state.clone(), clock) => return Err(error),
    }
    metrics_server.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// What the flags cannot say on their own: limits that contradict each other, and the warnings
/// of a setup that works but is probably not meant.
fn check_flags(args: &ServeArgs) -> anyhow::Result<()> {
    if args.idle_timeout <= args.request_timeout {
        anyhow::bail!(
            "--idle-timeout ({:?}) must be longer than --request-timeout ({:?}): a request in \
             progress would be cut",
            args.idle_timeout,
            args.request_timeout
        );
    }
    if args.max_body_bytes_in_flight < MAX_BODY_BYTES {
        anyhow::bail!(
            "--max-body-bytes-in-flight ({}) must be at least {MAX_BODY_BYTES}: the largest \
             AdmissionReview would never fit",
            args.max_body_bytes_in_flight
        );
    }
    if args.common.window_paths().is_empty() && !args.windows_from_cluster {
        tracing::warn!("no --windows given: serving the embedded example windows");
    }
    if args.client_ca.is_none() && !args.accept_unverified_callers {
        tracing::warn!(
            "no --client-ca: reviews from callers without a verified certificate are answered \
             and audited, but publish no Events and count no bypasses (--accept-unverified-callers)"
        );
    }
    Ok(())
}

/// The server's settings from the flags, with the pieces made from them.
fn settings(
    args: &ServeArgs,
    metrics: Metrics,
    audit: Arc<dyn AuditSink>,
    senders: &Senders,
    clock: Clock,
) -> Settings {
    Settings {
        // Not ready, and every rw change denied as unknown-window, until the first set is in
        // force: read from files once the listener answers /healthz, or listed from the cluster.
        windows: Arc::new(WindowStore::loading(gate(args), metrics.window_reloads())),
        policy: gate(args).policy,
        audit,
        // A decision waits at most this long for its audit record, and a sink stuck longer
        // makes the replica not ready: well inside the request timeout.
        audit_stall_bound: args.request_timeout / 2,
        metrics,
        require_client_cert: args.client_ca.is_some(),
        accept_unverified: args.accept_unverified_callers,
        body_bytes_in_flight: args.max_body_bytes_in_flight,
        events: notifiers(args, senders),
        notices: (senders.notices.clone()).map(|n| Arc::new(n) as Arc<dyn Notifier>),
        clock,
    }
}

/// What windows are held to: the policy's flags, and `--max-freeze`.
fn gate(args: &ServeArgs) -> crate::windows::Gate {
    let mut gate = args.common.gate();
    gate.policy.max_freeze = args.max_freeze;
    gate
}

/// Who the server tells of each decision: the Event publisher (`--events`), and the record of
/// who created each ReconciliationFreeze (with the windows from the cluster).
fn notifiers(args: &ServeArgs, senders: &Senders) -> Option<Arc<dyn Notifier>> {
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(publisher) = senders.events.clone().filter(|_| args.events) {
        notifiers.push(Arc::new(publisher));
    }
    if args.windows_from_cluster {
        notifiers.push(Arc::new(senders.creators.clone()));
    }
    match notifiers.len() {
        0 => None,
        1 => notifiers.pop(),
        _ => Some(Arc::new(Notifiers(notifiers))),
    }
}

/// Every notifier told of each decision, in order.
struct Notifiers(Vec<Arc<dyn Notifier>>);

impl Notifier for Notifiers {
    fn notify(
        &self,
        request: &kube::core::admission::AdmissionRequest<fluxgate_core::object::Object>,
        decision: &fluxgate_core::policy::Decision,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        for notifier in &self.0 {
            notifier.notify(request, decision, now);
        }
    }
}

fn request_limits(args: &ServeArgs) -> Limits {
    Limits {
        request_timeout: args.request_timeout,
        max_concurrent_requests: args.max_concurrent_requests,
    }
}

fn connection_limits(args: &ServeArgs) -> ConnectionLimits {
    ConnectionLimits {
        tls_handshake_timeout: args.tls_handshake_timeout,
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections,
        max_connections_per_peer: args
            .max_connections_per_peer
            .unwrap_or((args.max_connections / 4).max(1)),
        drain_timeout: args.drain_timeout,
    }
}

/// `--audit-log`, or stdout.
fn audit_sink(args: &ServeArgs) -> anyhow::Result<Arc<dyn AuditSink>> {
    Ok(match &args.audit_log {
        Some(path) => Arc::new(
            FileSink::open(path.clone())
                .with_context(|| format!("cannot open audit log {}", path.display()))?,
        ),
        None => Arc::new(StdoutSink::default()),
    })
}

/// A client of the Kubernetes API, when a flag needs one.
async fn cluster_client(args: &ServeArgs) -> anyhow::Result<Option<kube::Client>> {
    if !(args.windows_from_cluster
        || args.events
        || args.reconcile_on_open
        || args.notification_url.is_some())
    {
        return Ok(None);
    }
    let client = kube::Client::try_default()
        .await
        .context("cannot reach the Kubernetes API")?;
    Ok(Some(client))
}

/// The Event publisher, for `--events` and for the Events of `--reconcile-on-open`.
fn event_publisher(
    args: &ServeArgs,
    client: Option<&kube::Client>,
    metrics: &Metrics,
) -> Option<EventPublisher> {
    let client = client.filter(|_| args.events || args.reconcile_on_open)?;
    Some(EventPublisher::spawn(
        client.clone(),
        reporter(),
        metrics.event_counters(),
    ))
}

/// The notices to notification-controller, for `--notification-url`.
fn notifications(
    args: &ServeArgs,
    client: Option<&kube::Client>,
    metrics: &Metrics,
) -> Option<Notifications> {
    let (client, url) = (client?, args.notification_url.as_ref()?);
    if !args.reconcile_on_open {
        tracing::warn!(
            "--notification-url without --reconcile-on-open: no landing notices (the landing \
             notice is the reconcile fluxgate asks for when a window opens)"
        );
    }
    Some(Notifications::spawn(
        client.clone(),
        url.clone(),
        reporter(),
        metrics.notification_counters(),
    ))
}

/// Who reports Events and notices: `fluxgate`, and the pod.
fn reporter() -> crate::cluster::events::Reporter {
    crate::cluster::events::Reporter {
        controller: "fluxgate".into(),
        instance: std::env::var("POD_NAME").unwrap_or_else(|_| "fluxgate".into()),
    }
}

/// What tells the cluster of decisions and openings: Events, and notices to
/// notification-controller.
struct Senders {
    events: Option<EventPublisher>,
    notices: Option<Notifications>,
    creators: Creators,
}

/// The window watch, and what keeps the cluster in step: window status (with the windows from
/// the cluster) and the catch-up at each opening (with `--reconcile-on-open`).
fn spawn_cluster_tasks(
    args: &ServeArgs,
    client: kube::Client,
    state: &AppState,
    senders: Senders,
    clock: &Clock,
) {
    let (observed_tx, observed) = tokio::sync::watch::channel(None);
    if args.windows_from_cluster {
        let (freezes_tx, freezes) = tokio::sync::watch::channel(None);
        tokio::spawn(watch_freezes(client.clone(), freezes_tx, senders.creators));
        tokio::spawn(watch_windows_and_freezes(
            client.clone(),
            state.windows().clone(),
            Some(observed_tx),
            freezes,
            Some(state.metrics().stop_the_line()),
            clock.clone(),
        ));
    }
    if !args.windows_from_cluster && !args.reconcile_on_open {
        return;
    }
    // Owners are watched for the status's waiting count too.
    let (owners_tx, owners) = tokio::sync::watch::channel(Default::default());
    for kind in fluxgate_core::flux::OwnerKind::ALL {
        tokio::spawn(watch_owners(client.clone(), kind, owners_tx.clone()));
    }
    let sync = ClusterSync {
        client,
        windows: state.windows().clone(),
        counters: state.metrics().sync_counters(),
        clock: clock.clone(),
        events: senders.events.filter(|_| args.reconcile_on_open),
        notices: senders.notices.filter(|_| args.reconcile_on_open),
        write_status: args.windows_from_cluster,
        reconcile_on_open: args.reconcile_on_open,
    };
    tokio::spawn(sync.run(observed, owners));
}

/// The TLS configuration: the serving certificate (from `--tls-cert` and `--tls-key`, reloaded
/// as they change, or generated) and `--client-ca`.
fn tls_config(args: &ServeArgs, state: &Arc<AppState>) -> anyhow::Result<Arc<ServerConfig>> {
    let resolver = Arc::new(initial_certificate(args, state)?);
    let client_ca = match &args.client_ca {
        Some(path) => read_pem_files(std::slice::from_ref(path))?
            .pop()
            .map(|file| file.bytes),
        None => None,
    };
    let tls = server_config(resolver.clone(), client_ca.as_deref())
        .context("cannot configure TLS (--client-ca)")?;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let files = [cert.clone(), key.clone()];
        let initial = read_pem_files(&files).ok();
        let (state, failures) = (state.clone(), state.clone());
        tokio::spawn(watch(
            args.watch_interval,
            initial,
            move || read_files(&files),
            move |snapshot| reload_certificate(&state, &resolver, snapshot),
            move |error| {
                let error = PemFileError::from(error);
                failures.metrics().record_tls_reload(false);
                tracing::warn!(%error, "cannot read the certificate files; keeping the current certificate");
            },
        ));
    }
    Ok(tls)
}

/// A certificate and key that can be served at `now`, and when the certificate expires.
fn usable_key(
    cert: &[u8],
    key: &[u8],
    now: DateTime<Utc>,
) -> Result<(CertifiedKey, DateTime<Utc>), TlsError> {
    let key = certified_key(cert, key)?;
    let expiry = check_validity(&key, now)?;
    Ok((key, expiry))
}

fn initial_certificate(args: &ServeArgs, state: &AppState) -> anyhow::Result<CertResolver> {
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let files = read_pem_files(&[cert.clone(), key.clone()])?;
        let [cert_file, key_file] = files.as_slice() else {
            anyhow::bail!(
                "reading {} and {} gave {} files",
                cert.display(),
                key.display(),
                files.len()
            );
        };
        let (key, expiry) = usable_key(&cert_file.bytes, &key_file.bytes, state.clock().now())
            .with_context(|| format!("cannot use {} and {}", cert.display(), key.display()))?;
        state.metrics().set_tls_expiry(expiry.timestamp());
        tracing::info!(cert = %cert.display(), "serving certificate loaded");
        return Ok(CertResolver::new(key));
    }
    let now = state.clock().now();
    let generated =
        certs::generate(&args.dns_names, now).context("cannot generate a certificate")?;
    let (key, expiry) = usable_key(
        generated.cert_pem.as_bytes(),
        generated.key_pem.as_bytes(),
        now,
    )
    .context("cannot use the generated certificate")?;
    state.metrics().set_tls_expiry(expiry.timestamp());
    match &args.ca_out {
        Some(path) => {
            std::fs::write(path, &generated.ca_pem)
                .with_context(|| format!("cannot write the CA to {}", path.display()))?;
            tracing::warn!(ca = %path.display(), names = ?args.dns_names, "no --tls-cert: serving a generated self-signed certificate; its CA is in the file");
        }
        None => {
            tracing::warn!(names = ?args.dns_names, "no --tls-cert: serving a generated self-signed certificate (use --ca-out to get its CA)")
        }
    }
    Ok(CertResolver::new(key))
}

fn reload_certificate(state: &AppState, resolver: &CertResolver, snapshot: &Snapshot) {
    let [cert, key] = snapshot.as_slice() else {
        return;
    };
    let cert_path = &cert.path;
    match usable_key(&cert.bytes, &key.bytes, state.clock().now()) {
        Ok((key, expiry)) => {
            resolver.replace(key);
            state.metrics().set_tls_expiry(expiry.timestamp());
            state.metrics().record_tls_reload(true);
            tracing::info!(cert = %cert_path.display(), %expiry, "serving certificate reloaded");
        }
        Err(error) => {
            state.metrics().record_tls_reload(false);
            tracing::error!(%error, cert = %cert_path.display(), "new certificate rejected; keeping the current one");
        }
    }
}

async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// `/metrics` over plain HTTP, until stopped.
struct MetricsServer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    async fn start(addr: SocketAddr, state: Arc<AppState>) -> anyhow::Result<Self> {
        let listener = bind(addr).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = metrics_router(state);
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(%error, "metrics server failed");
            }
        });
        Ok(MetricsServer { stop, task })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Resolves once shutdown has begun (SIGTERM or SIGINT) and its delay is over. From the signal
/// on, the replica is not ready and `draining` is set, while it still serves during the delay.
async fn shutdown(state: Arc<AppState>, draining: Arc<AtomicBool>, delay: Duration) {
    terminated().await;
    draining.store(true, Ordering::Release);
    state.set_ready(false);
    tracing::info!(delay = ?delay, "shutting down: not ready; still serving during the delay, with Connection: close");
    tokio::time::sleep(delay).await;
}

/// Loads the windows files (or the embedded examples) once the listener is up, then watches
/// them; with the windows from the cluster, the cluster watch does this instead
/// ([`spawn_cluster_tasks`]). Ends only with an error: windows that cannot be used at start.
async fn windows_from_files(
    args: &ServeArgs,
    state: Arc<AppState>,
    clock: Clock,
) -> anyhow::Result<std::convert::Infallible> {
    if args.windows_from_cluster {
        return std::future::pending().await;
    }
    let paths = args.common.window_paths().to_vec();
    let store = state.windows().clone();
    let initial = load_at_start(store.clone(), paths.clone(), clock.clone()).await?;
    if !paths.is_empty() {
        let failures = store.clone();
        let read_paths = paths.clone();
        tokio::spawn(watch(
            args.watch_interval,
            initial,
            move || read_windows(&read_paths),
            move |snapshot| crate::windows::reload(&store, &paths, snapshot, clock.now()),
            move |error| failures.refuse(&crate::windows::ReadError::from(error)),
        ));
    }
    std::future::pending().await
}

fn spawn_audit_reopen(audit: Arc<dyn AuditSink>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: the audit log will not be reopened");
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            // Opening a file, and waiting for the sink's lock that the writer thread holds during
            // a write (which a stuck disk can make long), are blocking: off the async workers.
            let audit = audit.clone();
            match tokio::task::spawn_blocking(move || audit.reopen()).await {
                Ok(Ok(())) => tracing::info!("SIGHUP: audit log reopened"),
                Ok(Err(error)) => tracing::error!(%error, "SIGHUP: cannot reopen the audit log"),
                Err(error) => tracing::error!(%error, "SIGHUP: reopening the audit log failed"),
            }
        }
    });
}

/// SIGTERM (Kubernetes) or SIGINT (a terminal).
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The server tells the Event publisher of its decisions: here, where the two shells meet, so
/// that neither imports the other.
impl Notifier for EventPublisher {
    fn notify(
        &self,
        request: &kube::core::admission::AdmissionRequest<fluxgate_core::object::Object>,
        decision: &fluxgate_core::policy::Decision,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        EventPublisher::notify(self, request, decision, now);
    }
}

/// The server tells the notification sender of its decisions, as it tells the Event publisher.
impl Notifier for Notifications {
    fn notify(
        &self,
        request: &kube::core::admission::AdmissionRequest<fluxgate_core::object::Object>,
        decision: &fluxgate_core::policy::Decision,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        Notifications::notify(self, request, decision, now);
    }
}

/// The server tells who created each ReconciliationFreeze it admitted, as it tells Events.
impl Notifier for Creators {
    fn notify(
        &self,
        request: &kube::core::admission::AdmissionRequest<fluxgate_core::object::Object>,
        decision: &fluxgate_core::policy::Decision,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        self.record(request, decision, now);
    }
}
