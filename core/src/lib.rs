//! fluxgate's pure core: everything that decides, checks or renders, with no I/O, no clock and
//! no async runtime. The `fluxgate` package around it reads files, flags, the cluster and the
//! clock, serves HTTP and writes the audit log, and hands this crate what it needs.
//!
//! - [`cron`], [`duration`] and [`window`]: schedules, freezes and overrides, and the state of a
//!   window at an instant.
//! - [`admission`] and [`policy`]: one AdmissionReview in, one out; why a change was admitted or
//!   denied is [`policy::decide`], top to bottom.
//! - [`audit`]: the record of each decision, and the review of an audit log (`fluxgate audit`).
//! - [`lint`]: `fluxgate lint`'s checks of rendered manifests, with the webhook's own rules.
//! - [`flux`]: what Flux's Kustomizations and HelmReleases say about a denial, and when to ask
//!   them to reconcile again.
//! - [`plan`]: `fluxgate plan`'s landing time of every change of a pull request.
//! - [`render`]: text tables and the week view.
//! - [`split`]: `fluxgate split`'s plan for moving an app's objects into rt and rw folders.
//! - [`object`] and [`naming`]: the objects of a review, and how they are named in messages.

#![forbid(unsafe_code)]

pub mod admission;
pub mod audit;
pub mod calendar;
pub mod cron;
pub mod duration;
pub mod flux;
pub mod lint;
pub mod naming;
pub mod object;
pub mod plan;
pub mod policy;
pub mod render;
pub mod split;
pub mod window;
mod yaml;
