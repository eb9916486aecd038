//! The audit log: exactly one JSON line per decision, for people to review.
//!
//! [`AuditRecord`] is built from the request and the decision (pure); an [`AuditSink`] writes it.
//! Sinks write each record with a single `write_all` of the whole line under a lock, so lines
//! never interleave, and flush before the response is sent: a record is on its way to disk
//! before the API server hears the answer. Application logs go elsewhere (stderr), never here.

use crate::object::Object;
use crate::policy::{Decision, Reason, Subject, field_manager};
use chrono::{DateTime, SecondsFormat, Utc};
use kube::core::admission::{AdmissionRequest, Operation};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// One decision, as a JSON line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub time: DateTime<Utc>,
    pub uid: String,
    /// `allow` or `deny`.
    pub decision: String,
    pub reason: Reason,
    pub message: String,
    pub dry_run: bool,
    pub operation: String,
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub field_manager: Option<String>,
    pub group: String,
    pub version: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    /// `fluxgate.io/mode` of the object (new, else old), when labelled.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub windows: Vec<AuditWindow>,
    /// The Flux Kustomization or HelmRelease that applied the change.
    #[serde(default)]
    pub owner: Option<AuditOwner>,
    #[serde(default)]
    pub bypass: Option<AuditBypass>,
    /// Server time spent on the request, in seconds.
    pub duration_seconds: f64,
}

/// A window involved in a decision and its state then.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditWindow {
    pub name: String,
    /// False when no window has that name (`unknown-window`).
    pub exists: bool,
    #[serde(default)]
    pub open: bool,
    #[serde(default)]
    pub frozen: bool,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditOwner {
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditBypass {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    /// Whether the bypass admitted the change (false: it was invalid).
    pub valid: bool,
}

// === impl AuditRecord ===

impl AuditRecord {
    pub fn new(
        request: &AdmissionRequest<Object>,
        decision: &Decision,
        time: DateTime<Utc>,
        duration_seconds: f64,
    ) -> Self {
        let Subject { mode, owner, .. } = &decision.subject;
        let instant = |t: Option<DateTime<Utc>>, tz: chrono_tz::Tz| {
            t.map(|t| {
                t.with_timezone(&tz)
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
            })
        };
        AuditRecord {
            time,
            uid: request.uid.clone(),
            decision: if decision.allowed { "allow" } else { "deny" }.to_owned(),
            reason: decision.reason,
            message: decision.message.clone(),
            dry_run: request.dry_run,
            operation: operation_name(&request.operation).to_owned(),
            user: request.user_info.username.clone().unwrap_or_default(),
            groups: request.user_info.groups.clone().unwrap_or_default(),
            field_manager: field_manager(request).map(str::to_owned),
            group: request.kind.group.clone(),
            version: request.kind.version.clone(),
            kind: request.kind.kind.clone(),
            namespace: request.namespace.clone(),
            name: request.name.clone(),
            mode: mode.clone(),
            windows: decision
                .windows
                .iter()
                .map(|w| match &w.known {
                    Some(k) => AuditWindow {
                        name: w.name.clone(),
                        exists: true,
                        open: k.state.open,
                        frozen: k.state.freeze.is_some(),
                        since: instant(k.state.since, k.time_zone),
                        next: instant(k.state.next, k.time_zone),
                        time_zone: Some(k.time_zone.name().to_owned()),
                    },
                    None => AuditWindow {
                        name: w.name.clone(),
                        exists: false,
                        open: false,
                        frozen: false,
                        since: None,
                        next: None,
                        time_zone: None,
                    },
                })
                .collect(),
            owner: owner.as_ref().map(|o| AuditOwner {
                kind: o.kind.to_owned(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
            }),
            bypass: decision.bypass.as_ref().map(|b| AuditBypass {
                reason: b.reason.clone(),
                until: b.until.clone(),
                valid: decision.reason == Reason::Bypass,
            }),
            duration_seconds,
        }
    }

    /// The record as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_else(|e| {
            // Serialising plain strings and numbers cannot fail; if it ever does, the line
            // still records that a decision happened.
            format!("{{\"uid\":{:?},\"error\":{:?}}}", self.uid, e.to_string()).into_bytes()
        });
        line.push(b'\n');
        line
    }
}

pub fn operation_name(operation: &Operation) -> &'static str {
    match operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

// === sinks ===

/// Where audit records go.
pub trait AuditSink: Send + Sync {
    /// Writes one record as one line and flushes it.
    fn write(&self, record: &AuditRecord) -> std::io::Result<()>;
    /// Reopens the destination (after log rotation); a no-op where that means nothing.
    fn reopen(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Standard output: the default, for `kubectl logs` and cluster log collectors.
pub struct StdoutSink;

impl AuditSink for StdoutSink {
    fn write(&self, record: &AuditRecord) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(&record.to_line())?;
        out.flush()
    }
}

/// A file opened for append, reopened on SIGHUP so logrotate's move-and-signal works.
pub struct FileSink {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl FileSink {
    pub fn open(path: PathBuf) -> std::io::Result<Self> {
        let file = Self::open_append(&path)?;
        Ok(FileSink {
            path,
            file: Mutex::new(file),
        })
    }

    fn open_append(path: &std::path::Path) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl AuditSink for FileSink {
    fn write(&self, record: &AuditRecord) -> std::io::Result<()> {
        let line = record.to_line();
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(&line)?;
        file.flush()
    }

    fn reopen(&self) -> std::io::Result<()> {
        let fresh = Self::open_append(&self.path)?;
        *self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }
}

/// Keeps records in memory: for tests, and for anyone embedding the router.
#[derive(Default)]
pub struct MemorySink {
    records: Mutex<Vec<AuditRecord>>,
}

impl MemorySink {
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl AuditSink for MemorySink {
    fn write(&self, record: &AuditRecord) -> std::io::Result<()> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(record.clone());
        Ok(())
    }
}
