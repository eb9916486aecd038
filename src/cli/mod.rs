//! The command line: flags (with `FLUXGATE_…` environment twins) → a validated [`Config`] →
//! the subcommand. Exit codes are decided here and only here.
//!
//! Exit 0: the command did its job (whatever the admission decision). Exit 1: `lint` found
//! errors, `split` refused to move something, or `plan --fail-on` found a change blocked or
//! waiting. Exit 2: bad flags, or input or windows that
//! cannot be read, with a one-line error on stderr.

mod audit;
mod certs;
mod crd;
mod freeze;
mod lint;
mod plan;
mod review;
mod serve;
mod split;
mod status;

use crate::clock::Clock;
use crate::windows::{Gate, load_windows};
use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use fluxgate_core::duration::parse_duration;
use fluxgate_core::policy::Policy;
use fluxgate_core::render::escape::escape;
use fluxgate_core::window::WindowSet;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "fluxgate",
    version,
    about = "Reconciliation windows for Flux CD, enforced at admission"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a CA and serving certificate for the webhook Service, and print the caBundle.
    Certs(certs::CertsArgs),
    /// Print the CustomResourceDefinitions, ReconciliationWindow and ReconciliationFreeze (YAML).
    Crd(crd::CrdArgs),
    /// Decide one AdmissionReview (admission.k8s.io/v1) from FILE or stdin; print the response.
    Review(review::ReviewArgs),
    /// Serve the admission webhook over HTTPS (and metrics over HTTP).
    Serve(Box<serve::ServeArgs>),
    /// Show every window: open or closed, since when, and the next transition.
    Status(status::StatusArgs),
    /// Filter and summarise the JSON audit log: decisions, reasons, windows, owners, bypasses.
    Audit(Box<audit::AuditArgs>),
    /// Check rendered manifests (kustomize build output) for rw/rt mistakes and bad bypasses.
    Lint(lint::LintArgs),
    /// When each change between two renders (a pull request's base and head) lands: now, at
    /// the opening of its windows, by bypass, or never, and why.
    Plan(Box<plan::PlanArgs>),
    /// Stop the line: declare, list and end ReconciliationFreezes (through the kubeconfig).
    Freeze(freeze::FreezeArgs),
    /// Split app folders into <app>-rt and <app>-rw (and the cluster's entry points into
    /// apps-rt and apps-rw); prints the plan, applies it with --write.
    Split(split::SplitArgs),
}

/// `--windows`: shared by every command that reads windows.
#[derive(Debug, Args)]
pub(crate) struct WindowArgs {
    /// A ReconciliationWindow YAML file or a folder of them (repeatable); the embedded example
    /// windows when absent.
    #[arg(
        long = "windows",
        env = "FLUXGATE_WINDOWS",
        value_delimiter = ',',
        value_name = "PATH"
    )]
    windows: Vec<PathBuf>,
}

impl WindowArgs {
    /// The windows, and whether they are the embedded examples.
    pub(crate) fn load(&self) -> anyhow::Result<(WindowSet, bool)> {
        let windows = load_windows(&self.windows).context("cannot load windows")?;
        Ok((windows, self.windows.is_empty()))
    }
}

/// Flags shared by the commands that decide (serve, review, lint): the windows and the policy.
#[derive(Debug, Args)]
pub struct CommonArgs {
    #[command(flatten)]
    windows: WindowArgs,
    /// The window of rw objects without a fluxgate.io/window label [default: default]. Naming
    /// a window that does not exist is an error at start.
    #[arg(long, env = "FLUXGATE_DEFAULT_WINDOW", value_name = "NAME")]
    default_window: Option<String>,
    /// A user name that is Flux (repeatable; replaces the defaults) [default:
    /// system:serviceaccount:flux-system:kustomize-controller,
    /// system:serviceaccount:flux-system:helm-controller].
    #[arg(
        long = "flux-user",
        env = "FLUXGATE_FLUX_USER",
        value_delimiter = ',',
        value_name = "U"
    )]
    flux_users: Vec<String>,
    /// A group whose members are Flux (repeatable) [default: none]. For tenants whose
    /// Kustomizations set serviceAccountName, add the tenant's group, e.g.
    /// system:serviceaccounts:team-a.
    #[arg(
        long = "flux-group",
        env = "FLUXGATE_FLUX_GROUP",
        value_delimiter = ',',
        value_name = "G"
    )]
    flux_groups: Vec<String>,
    /// A field manager that is Flux (repeatable; replaces the defaults) [default:
    /// kustomize-controller, helm-controller].
    #[arg(
        long = "flux-field-manager",
        env = "FLUXGATE_FLUX_FIELD_MANAGER",
        value_delimiter = ',',
        value_name = "M"
    )]
    flux_field_managers: Vec<String>,
    /// How far ahead fluxgate.io/bypass-until may be.
    #[arg(long, env = "FLUXGATE_MAX_BYPASS", default_value = "24h", value_parser = parse_duration, value_name = "DURATION")]
    max_bypass: Duration,
    /// How long one spec.overrides entry of a window may be (a longer one is refused at
    /// admission and opens nothing).
    #[arg(long, env = "FLUXGATE_MAX_OVERRIDE", default_value = "24h", value_parser = parse_duration, value_name = "DURATION")]
    max_override: Duration,
    /// Treat a DELETE by a service account of the namespace a Flux owner label names (a
    /// tenant's prune: Flux acting as its serviceAccountName) as Flux's.
    #[arg(long, env = "FLUXGATE_TENANT_PRUNES", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    tenant_prunes: bool,
}

/// What `lint` runs on, validated before anything runs.
pub struct Config {
    pub(crate) windows: WindowSet,
    pub policy: Policy,
    /// True when no `--windows` was given and the embedded examples are in force.
    pub(crate) embedded: bool,
}

impl CommonArgs {
    /// The `--windows` paths as given (empty: the embedded examples).
    pub(crate) fn window_paths(&self) -> &[PathBuf] {
        &self.windows.windows
    }

    /// The policy of the flags.
    pub(crate) fn policy(&self) -> Policy {
        let defaults = Policy::default();
        let or_default = |given: Vec<String>, default: Vec<String>| {
            if given.is_empty() { default } else { given }
        };
        Policy {
            flux_users: or_default(self.flux_users.clone(), defaults.flux_users),
            flux_groups: self.flux_groups.clone(),
            flux_field_managers: or_default(
                self.flux_field_managers.clone(),
                defaults.flux_field_managers,
            ),
            default_window: self
                .default_window
                .clone()
                .unwrap_or_else(|| Policy::DEFAULT_WINDOW.to_owned()),
            max_bypass: self.max_bypass,
            max_override: self.max_override,
            tenant_prunes: self.tenant_prunes,
            max_freeze: defaults.max_freeze,
        }
    }

    /// What the windows decided with are held to: the policy, and `--default-window` when given.
    pub(crate) fn gate(&self) -> Gate {
        Gate::new(self.policy(), self.default_window.is_some())
    }

    /// Turns flags into a validated configuration, reading the windows.
    pub fn to_config(&self) -> anyhow::Result<Config> {
        let (windows, embedded) = self.windows.load()?;
        Ok(Config {
            windows,
            policy: self.policy(),
            embedded,
        })
    }
}

/// `--at`, shared by the commands that evaluate at an instant; each says in its own help what
/// it evaluates (`#[command(mut_arg("at", …))]` beside its `#[command(flatten)]`).
#[derive(Debug, Args)]
pub(crate) struct AtArg {
    #[arg(long, env = "FLUXGATE_AT", value_parser = parse_instant, value_name = "T")]
    at: Option<DateTime<Utc>>,
}

impl AtArg {
    /// The clock the command reads: fixed at `--at`, else the system's.
    pub(crate) fn clock(&self) -> Clock {
        self.at.map_or_else(Clock::system, Clock::fixed)
    }
}

/// `-o`/`--output`, shared by the commands that print a table or JSON.
#[derive(Debug, Args)]
pub(crate) struct OutputArg {
    /// Output format.
    #[arg(short = 'o', long = "output", env = "FLUXGATE_OUTPUT", value_enum, default_value_t = Format::Table)]
    pub(crate) output: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
}

/// `--at`: an RFC 3339 instant.
fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            // A local time without an offset is the usual slip: say what to add.
            let local = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"));
            match local {
                Ok(_) => format!(
                    "{text:?} has no offset: add Z or an offset, e.g. {text}Z (UTC) or {text}+01:00"
                ),
                Err(_) => format!(
                    "{text:?} is not an RFC 3339 time ({e}); write e.g. 2026-11-28T12:00:00Z"
                ),
            }
        })
}

/// An error and its causes, `: `-separated, each cause left out when the text before already
/// says it: error types that print their source themselves (`cannot read x: No such file or
/// directory`) would otherwise print it twice.
fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// A flag error as the one line on stderr that every error of fluxgate is (exit 2); help and
/// version go where clap sends them.
fn flag_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        error.exit();
    }
    let text = error.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("fluxgate: {first} (see --help)");
    ExitCode::from(2)
}

/// Runs the command line; the binary's `main`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return flag_error(error),
    };
    let result = match cli.command {
        Command::Certs(args) => certs::run(args),
        Command::Crd(args) => crd::run(args),
        Command::Review(args) => review::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Status(args) => status::run(args),
        Command::Audit(args) => audit::run(*args),
        Command::Lint(args) => lint::run(args),
        Command::Split(args) => split::run(args),
        Command::Plan(args) => plan::run(*args),
        Command::Freeze(args) => freeze::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // An error quotes names and values from files and requests: each of its lines is
            // escaped, so none can recolour the terminal or hide what follows.
            let text = error_text(&error);
            let lines: Vec<_> = text.split('\n').map(escape).collect();
            eprintln!("fluxgate: {}", lines.join("\n"));
            ExitCode::from(2)
        }
    }
}
