//! The cluster shell: ReconciliationWindow objects watched through the API, their status, the
//! Flux owners that wait for them, and Events.
//!
//! Nothing here is on a decision's path: the watch publishes window sets into the
//! [`crate::windows::store::WindowStore`] the server reads, [`sync`] writes status and asks Flux
//! to reconcile from a task of its own, and Events are queued and sent in the background.

pub mod events;
pub(crate) mod index;
pub mod notifications;
pub mod owners;
pub mod sync;
pub mod watch;
