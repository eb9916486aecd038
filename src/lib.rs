//! fluxgate: reconciliation windows for Flux CD, enforced at admission.
//!
//! The pure core ([`cron`], [`duration`], [`window`], [`policy`], [`review`]) decides; it does
//! no I/O and reads no clock; so do [`lint`] and [`report`] (the checks of `fluxgate lint` and
//! the audit-log summary of `fluxgate audit`). The shells (`files`, [`window_files`],
//! [`window_store`], [`server`], [`audit`], [`cluster`], [`cli`]) read files, flags, the cluster
//! and the clock and hand the core what it needs.

#![forbid(unsafe_code)]

pub mod audit;
pub mod certs;
pub mod cli;
pub mod cluster;
pub mod cron;
pub mod duration;
pub(crate) mod files;
pub mod flux;
pub mod lint;
pub mod naming;
pub mod object;
pub mod policy;
pub mod report;
pub mod review;
pub mod server;
pub mod window;
pub mod window_files;
pub mod window_store;

/// The old name of [`window_files`], for the core's unit tests until the workspace split gives
/// the core the embedded example windows of its own.
#[cfg(test)]
use window_files as load;
