//! fluxgate: reconciliation windows for Flux CD, enforced at admission.
//!
//! The pure core ([`cron`], [`duration`], [`window`], [`policy`], [`review`]) decides; it does
//! no I/O and reads no clock; so do [`lint`] and [`report`] (the checks of `fluxgate lint` and
//! the audit-log summary of `fluxgate audit`). The shells ([`load`], [`server`], [`audit`],
//! [`cli`]) read files, flags and the clock and hand the core what it needs.

#![forbid(unsafe_code)]

pub mod audit;
pub mod certs;
pub mod cli;
pub mod cluster;
pub mod cron;
pub mod duration;
pub mod flux;
pub mod lint;
pub mod load;
pub mod naming;
pub mod object;
pub mod policy;
pub mod report;
pub mod review;
pub mod server;
pub mod window;
