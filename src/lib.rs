//! fluxgate: reconciliation windows for Flux CD, enforced at admission.
//!
//! The pure core ([`cron`], [`duration`], [`window`], [`policy`], [`review`]) decides; it does
//! no I/O and reads no clock. The shells ([`load`], [`server`], [`audit`], [`cli`]) read files, flags and the clock
//! and hand the core what it needs.

#![forbid(unsafe_code)]

pub mod audit;
pub mod certs;
pub mod cli;
pub mod cluster;
pub mod cron;
pub mod duration;
pub mod load;
pub mod policy;
pub mod review;
pub mod server;
pub mod window;
