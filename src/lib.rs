//! fluxgate: reconciliation windows for Flux CD, enforced at admission.
//!
//! This package is the shells around the pure core, `fluxgate_core` (cron, windows, the
//! decision, the audit record and its review, lint, rendering): they read files, flags, the
//! cluster and the clock, serve HTTP, write the audit log, and hand the core what it needs.
//!
//! - [`cli`]: the subcommands; `serve` wires the rest together.
//! - [`server`]: TLS, the router, limits.
//! - [`metrics`]: every metric, and the window series read at scrape time.
//! - [`audit_log`]: where audit lines go: sinks and group commit.
//! - [`windows`]: the windows in force: read from files, held to one gate, kept in one store.
//! - [`cluster`]: the windows and Flux owners watched in the cluster, window status, catch-up
//!   reconciles and Events.
//! - [`certs`]: the CA and serving certificates `fluxgate certs` issues.
//! - [`clock`]: the wall clock, injected wherever the time is read.

#![forbid(unsafe_code)]

pub mod audit_log;
pub mod certs;
pub mod cli;
pub mod clock;
pub mod cluster;
pub(crate) mod files;
pub mod metrics;
pub mod server;
pub mod windows;
