//! The cluster shell: ReconciliationWindow objects watched through the API, and Events.
//!
//! Nothing here is on a decision's path: the watch publishes window sets into the server's
//! state, and Events are queued and sent in the background.

pub mod events;
pub mod index;
pub mod watch;
