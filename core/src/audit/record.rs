//! The record of one decision: what `fluxgate serve` writes as one JSON line per decision and
//! `fluxgate audit` reads back. [`AuditRecord::of`] builds it from the request and the decision,
//! and [`AuditRecord::write_line`] writes it: serde, one line, cut to [`MAX_LINE_BYTES`].

use crate::naming::local_time;
use crate::object::Object;
use crate::policy::{Decision, Reason, Subject, WindowVerdict, field_manager};
use crate::window::Enforcement;
use chrono::{DateTime, Utc};
use kube::core::admission::{AdmissionRequest, Operation};
use serde::{Deserialize, Serialize};

/// One decision, as a JSON line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub time: DateTime<Utc>,
    pub uid: String,
    pub decision: AuditDecision,
    pub reason: Reason,
    pub(crate) message: String,
    pub dry_run: bool,
    pub operation: Operation,
    pub user: String,
    #[serde(default)]
    pub(crate) groups: Vec<String>,
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
    pub(crate) bypass: Option<AuditBypass>,
    /// `warn` when admitted only because the closed windows are in Warn mode (`reason` is then
    /// what it would have been denied with); absent when enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<String>,
    /// Server time spent on the request, in seconds.
    pub duration_seconds: f64,
    /// Who sent the AdmissionReview: the subject of its verified client certificate
    /// (`--client-ca`), else `unverified <peer address>`. Empty in lines from before it existed.
    #[serde(default)]
    pub(crate) caller: String,
}

/// A window involved in a decision and its state then.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditWindow {
    pub name: String,
    /// False when no window has that name (`unknown-window`).
    pub(crate) exists: bool,
    #[serde(default)]
    pub open: bool,
    #[serde(default)]
    pub(crate) frozen: bool,
    #[serde(default)]
    pub(crate) since: Option<String>,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub(crate) time_zone: Option<String>,
    /// The override that held the window open, when one did.
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub(crate) override_: Option<AuditOverride>,
}

/// A `spec.overrides` entry that opened a window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuditOverride {
    pub(crate) reason: String,
    pub(crate) start: String,
    pub(crate) end: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditOwner {
    pub kind: String,
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuditBypass {
    #[serde(default)]
    pub(crate) reason: Option<String>,
    #[serde(default)]
    pub(crate) until: Option<String>,
    /// Whether the bypass admitted the change (false: it was invalid).
    pub(crate) valid: bool,
}

// === the record of a decision ===

/// Whether the change was admitted: `allow` or `deny`, as the record spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditDecision {
    Allow,
    Deny,
}

impl AuditDecision {
    pub fn of(allowed: bool) -> AuditDecision {
        if allowed {
            AuditDecision::Allow
        } else {
            AuditDecision::Deny
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuditDecision::Allow => "allow",
            AuditDecision::Deny => "deny",
        }
    }
}

impl std::fmt::Display for AuditDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest line written, newline included: what `fluxgate audit` reads.
pub const MAX_LINE_BYTES: usize = super::review::MAX_LINE_BYTES;
/// Past [`MAX_LINE_BYTES`], strings are cut to this many bytes and lists to [`CUT_ITEMS`]
/// entries, each with a marker. Even escaped six times over, the ~80 strings left fit well
/// within the bound.
const CUT_BYTES: usize = 1024;
const CUT_ITEMS: usize = 32;

impl AuditRecord {
    /// The record of `decision` on `request`, decided at `time` in `duration_seconds`, for the
    /// `caller` that sent it.
    pub(crate) fn of(
        request: &AdmissionRequest<Object>,
        decision: &Decision,
        caller: &str,
        time: DateTime<Utc>,
        duration_seconds: f64,
    ) -> AuditRecord {
        let Subject { mode, owner, .. } = &decision.subject;
        let user = &request.user_info;
        AuditRecord {
            time,
            uid: request.uid.clone(),
            decision: AuditDecision::of(decision.allowed),
            reason: decision.reason,
            message: decision.message.clone(),
            dry_run: request.dry_run,
            operation: request.operation.clone(),
            user: user.username.clone().unwrap_or_default(),
            groups: user.groups.clone().unwrap_or_default(),
            field_manager: field_manager(request).map(str::to_owned),
            group: request.kind.group.clone(),
            version: request.kind.version.clone(),
            kind: request.kind.kind.clone(),
            namespace: request.namespace.clone(),
            name: request.name.clone(),
            mode: mode.clone(),
            windows: decision.windows.iter().map(AuditWindow::of).collect(),
            owner: owner.as_ref().map(|o| AuditOwner {
                kind: o.kind.kind().to_owned(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
            }),
            bypass: decision.bypass.as_ref().map(|b| AuditBypass {
                reason: b.reason.clone(),
                until: b.until.clone(),
                valid: decision.reason == Reason::Bypass,
            }),
            enforcement: (decision.enforcement == Enforcement::Warn)
                .then(|| Enforcement::Warn.as_str().to_owned()),
            duration_seconds,
            caller: caller.to_owned(),
        }
    }

    /// Appends the record to `out` as one JSON line, newline included. A line longer than
    /// [`MAX_LINE_BYTES`] (only a forged or absurd request has one: the fields are names and a
    /// message) is written with its long fields cut and marked, so it stays one record
    /// `fluxgate audit` can read.
    pub(crate) fn write_line(mut self, out: &mut Vec<u8>) {
        let start = out.len();
        self.write_json(out);
        if out.len() - start > MAX_LINE_BYTES {
            out.truncate(start);
            self.cut();
            self.write_json(out);
        }
    }

    /// The record as one line, newline included.
    #[cfg(test)]
    pub(crate) fn to_line(&self) -> Vec<u8> {
        let mut line = Vec::with_capacity(1024);
        self.write_json(&mut line);
        line
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        let start = out.len();
        if let Err(e) = serde_json::to_writer(&mut *out, self) {
            out.truncate(start);
            // Serialising strings, numbers and a timestamp into memory cannot fail; if it
            // ever does, the line still records that a decision happened.
            let error = serde_json::json!({ "uid": self.uid, "error": e.to_string() });
            out.extend_from_slice(error.to_string().as_bytes());
        }
        out.push(b'\n');
    }

    /// Cuts every string to [`CUT_BYTES`] and every list to [`CUT_ITEMS`] entries, marked.
    fn cut(&mut self) {
        let strings = [
            &mut self.uid,
            &mut self.message,
            &mut self.user,
            &mut self.group,
            &mut self.version,
            &mut self.kind,
            &mut self.name,
            &mut self.caller,
        ];
        let optional = [&mut self.field_manager, &mut self.namespace, &mut self.mode];
        let owner = self.owner.iter_mut().flat_map(|o| {
            let AuditOwner {
                name, namespace, ..
            } = o;
            std::iter::once(name).chain(namespace)
        });
        let bypass = self
            .bypass
            .iter_mut()
            .flat_map(|b| b.reason.iter_mut().chain(&mut b.until));
        strings
            .into_iter()
            .chain(optional.into_iter().flatten())
            .chain(owner)
            .chain(bypass)
            .chain(&mut self.groups)
            .chain(self.windows.iter_mut().flat_map(|w| {
                let AuditWindow {
                    name, override_, ..
                } = w;
                std::iter::once(name).chain(override_.iter_mut().map(|o| &mut o.reason))
            }))
            .for_each(cut_string);
        let more = self.groups.len().saturating_sub(CUT_ITEMS);
        if more > 0 {
            self.groups.truncate(CUT_ITEMS);
            self.groups
                .push(format!("...[cut by fluxgate: {more} more]"));
        }
        self.windows.truncate(CUT_ITEMS);
    }
}

/// `text` cut to its first [`CUT_BYTES`] and a marker, when longer.
fn cut_string(text: &mut String) {
    if text.len() <= CUT_BYTES {
        return;
    }
    let mut end = CUT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let more = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("...[cut by fluxgate: {more} more bytes]"));
}

impl AuditWindow {
    fn of(verdict: &WindowVerdict) -> AuditWindow {
        let Some(known) = &verdict.known else {
            return AuditWindow {
                name: verdict.name.clone(),
                exists: false,
                open: false,
                frozen: false,
                since: None,
                next: None,
                time_zone: None,
                override_: None,
            };
        };
        let state = &known.state;
        let instant = |t| local_time(t, known.time_zone);
        AuditWindow {
            name: verdict.name.clone(),
            exists: true,
            open: state.open,
            frozen: state.freeze.is_some(),
            since: state.since.map(instant),
            next: state.next.map(instant),
            time_zone: Some(known.time_zone.name().to_owned()),
            override_: state.opened_by.as_ref().map(|o| AuditOverride {
                reason: o.reason.clone(),
                start: instant(o.start),
                end: instant(o.end),
            }),
        }
    }
}

/// Appends the audit line of one decision to `out`: `AuditRecord::of`, then
/// `AuditRecord::write_line`.
pub fn write_line(
    out: &mut Vec<u8>,
    request: &AdmissionRequest<Object>,
    decision: &Decision,
    caller: &str,
    time: DateTime<Utc>,
    duration_seconds: f64,
) {
    AuditRecord::of(request, decision, caller, time, duration_seconds).write_line(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::review;
    use crate::policy::Policy;
    use serde_json::{Value, json};

    const CLOSED: &str = "2026-11-27T12:00:00Z";

    fn line_of(review_json: &Value) -> (Vec<u8>, AuditRecord) {
        let body = serde_json::to_vec(review_json).unwrap();
        let windows = crate::window::WindowSet::embedded().unwrap();
        let now = DateTime::parse_from_rfc3339(CLOSED).unwrap().to_utc();
        let reviewed = review(&body, &windows, &Policy::default(), now).unwrap();
        let mut line = Vec::new();
        write_line(
            &mut line,
            &reviewed.request,
            &reviewed.decision,
            "CN=kube-apiserver",
            now,
            0.000123,
        );
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let record: AuditRecord = serde_json::from_slice(&line).unwrap();
        // Field for field what `AuditRecord` reads and writes: same names, order and nulls.
        assert_eq!(
            String::from_utf8(record.to_line()).unwrap(),
            String::from_utf8(line.clone()).unwrap()
        );
        (line, record)
    }

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/admission/{name}",
            concat!(env!("CARGO_MANIFEST_DIR"), "/..")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }
    /// The bytes of a line, as `fluxgate audit`, log pipelines and people's scripts read them:
    /// field names, order and nulls. (Lines read back and written again are equal whatever the
    /// serde attributes say; this holds the attributes themselves.)
    #[test]
    fn a_denial_line_is_written_as_recorded() {
        let (line, _) = line_of(&fixture("flux-dryrun-image-bump-deployment.json"));
        let expected = include_str!("../../../tests/fixtures/audit/image-bump-denied.jsonl");
        if std::env::var_os("FLUXGATE_WRITE_GOLDEN").is_some() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/fixtures/audit/image-bump-denied.jsonl"
            );
            std::fs::write(path, &line).unwrap();
        }
        assert_eq!(String::from_utf8(line).unwrap(), expected);
    }

    #[test]
    fn a_denial_records_the_window_the_owner_and_the_actor() {
        let (_, record) = line_of(&fixture("flux-dryrun-image-bump-deployment.json"));
        assert_eq!(
            (record.decision, record.reason),
            (AuditDecision::Deny, Reason::WindowClosed)
        );
        assert_eq!(record.operation, Operation::Update);
        assert!(record.dry_run);
        assert_eq!(
            record.field_manager.as_deref(),
            Some("kustomize-controller")
        );
        assert_eq!(
            (record.kind.as_str(), record.name.as_str()),
            ("Deployment", "nginx")
        );
        assert_eq!(record.mode.as_deref(), Some("rw"));
        let window = &record.windows[0];
        assert_eq!(window.name, "business-hours");
        assert!(window.exists && !window.open && !window.frozen);
        assert_eq!(window.time_zone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(window.next.as_deref(), Some("2026-11-30T08:00:00+01:00"));
        assert_eq!(record.owner.as_ref().unwrap().kind, "Kustomization");
        assert!(record.bypass.is_none());
        assert_eq!(record.duration_seconds, 0.000123);
    }

    #[test]
    fn a_bypass_and_an_unknown_window_are_recorded() {
        let mut review_json = fixture("flux-dryrun-image-bump-deployment.json");
        let annotations = &mut review_json["request"]["object"]["metadata"]["annotations"];
        annotations["fluxgate.io/bypass-reason"] = json!("INC-1234 \"hotfix\"\nline two");
        annotations["fluxgate.io/bypass-until"] = json!("2026-11-27T18:00:00Z");
        let (_, record) = line_of(&review_json);
        assert_eq!(record.reason, Reason::Bypass);
        let bypass = record.bypass.unwrap();
        assert!(bypass.valid);
        assert_eq!(
            bypass.reason.as_deref(),
            Some("INC-1234 \"hotfix\"\nline two")
        );

        for object in ["object", "oldObject"] {
            review_json["request"][object]["metadata"]["labels"]["fluxgate.io/window"] =
                json!("no-such-window");
        }
        let (_, record) = line_of(&review_json);
        assert_eq!(record.windows.len(), 1);
        assert!(!record.windows[0].exists);
        assert_eq!(record.windows[0].since, None);
    }

    /// An override's reason has no length limit of its own (a window file may hold 4 MiB): a
    /// window opened by a huge one once made every decision's line too long to review.
    #[test]
    fn a_huge_override_reason_is_cut_too() {
        let reason = "r\"".repeat(700 * 1024); // 1.4 MiB, twice that escaped
        let text = crate::window::EMBEDDED_WINDOWS.replacen(
            "      reason: Year-end change freeze\n",
            &format!(
                "      reason: Year-end change freeze\n  overrides:\n    - start: \"2026-11-27T12:00:00+01:00\"\n      end: \"2026-11-27T15:00:00Z\"\n      reason: '{reason}'\n"
            ),
            1,
        );
        let windows = crate::window::WindowSet::from_yaml("windows.yaml", &text).unwrap();
        let body = serde_json::to_vec(&fixture("flux-dryrun-image-bump-deployment.json")).unwrap();
        let now = DateTime::parse_from_rfc3339(CLOSED).unwrap().to_utc();
        let reviewed = review(&body, &windows, &Policy::default(), now).unwrap();
        assert_eq!(reviewed.decision.reason, Reason::Override);
        let mut line = Vec::new();
        write_line(
            &mut line,
            &reviewed.request,
            &reviewed.decision,
            "x",
            now,
            0.1,
        );
        assert!(line.len() <= MAX_LINE_BYTES, "{} bytes", line.len());
        let record: AuditRecord = serde_json::from_slice(&line).unwrap();
        let cut = &record.windows[0].override_.as_ref().unwrap().reason;
        assert!(cut.ends_with("more bytes]"), "{}", &cut[cut.len() - 60..]);
    }

    #[test]
    fn an_oversized_forged_request_is_cut_into_one_readable_line() {
        let mut review_json = fixture("human-patch-deployment.json");
        let huge = "x\"".repeat(3 * 1024 * 1024); // 6 MiB, twice that escaped
        review_json["request"]["name"] = json!(huge);
        review_json["request"]["userInfo"]["username"] = json!(huge);
        review_json["request"]["userInfo"]["groups"] =
            json!((0..5000).map(|i| format!("group-{i}")).collect::<Vec<_>>());
        let body = serde_json::to_vec(&review_json).unwrap();
        let windows = crate::window::WindowSet::embedded().unwrap();
        let now = DateTime::parse_from_rfc3339(CLOSED).unwrap().to_utc();
        let reviewed = review(&body, &windows, &Policy::default(), now).unwrap();
        let mut line = b"previous line\n".to_vec();
        write_line(
            &mut line,
            &reviewed.request,
            &reviewed.decision,
            "unverified 10.0.0.9:1234",
            now,
            0.1,
        );
        let line = &line[b"previous line\n".len()..];
        assert!(line.len() <= MAX_LINE_BYTES, "{} bytes", line.len());
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let record: AuditRecord = serde_json::from_slice(line).unwrap();
        assert!(record.name.starts_with("x\"x\""));
        assert!(
            record
                .name
                .ends_with("...[cut by fluxgate: 6290432 more bytes]"),
            "{}",
            &record.name[1000..]
        );
        assert_eq!(record.groups.len(), CUT_ITEMS + 1);
        assert_eq!(
            record.groups.last().unwrap(),
            "...[cut by fluxgate: 4968 more]"
        );
        assert_eq!(record.caller, "unverified 10.0.0.9:1234");
        assert_eq!(record.reason, Reason::NotFlux);
    }

    #[test]
    fn a_person_is_recorded_with_groups() {
        let (_, record) = line_of(&fixture("human-patch-deployment.json"));
        assert_eq!(record.reason, Reason::NotFlux);
        assert!(!record.user.is_empty());
        assert!(!record.groups.is_empty());
    }
}
