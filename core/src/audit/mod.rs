//! The audit log's contents: the record of each decision ([`AuditRecord`], one JSON line) and
//! the review of a log ([`review`], `fluxgate audit`'s filter and summary).

mod record;
pub mod review;

pub(crate) use record::AuditOverride;
pub use record::{AuditDecision, AuditOwner, AuditRecord, AuditWindow, MAX_LINE_BYTES, write_line};
