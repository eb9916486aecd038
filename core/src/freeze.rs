//! `ReconciliationFreeze`: a stop-the-line freeze that on-call declares during an incident,
//! without a Git commit, and that Flux does not own and so cannot revert.
//!
//! There is one definition of "valid": [`StopTheLine::from_object`]. The webhook holds every
//! CREATE and UPDATE to it, and the cluster watch holds every object it sees to it again (an
//! object written while the webhook was not called, or under another `--max-freeze`, freezes
//! nothing). A valid freeze becomes one more freeze part of each window it covers
//! ([`StopTheLine::apply`]), a hard one unless `allowBypass`, so every decision, `status`,
//! `kubectl get rwin` and the catch-up at the next opening see it as they see any freeze, and it
//! stops applying at its `end` whether or not anyone deletes it.

use crate::flux::FluxOwner;
use crate::window::{FreezeSpec, WindowSpec};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `kind` of a ReconciliationFreeze.
pub const KIND: &str = "ReconciliationFreeze";
/// `apiVersion` of a ReconciliationFreeze.
pub const API_VERSION: &str = crate::window::API_VERSION;

// Doc comments become `kubectl explain` text: write them for users.

/// A stop-the-line freeze: while in force, the windows it covers are closed to Flux, whatever
/// their schedules and overrides say. Made by people (`fluxgate freeze start`), never by Flux.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[kube(
    group = "fluxgate.io",
    version = "v1alpha1",
    kind = "ReconciliationFreeze",
    shortname = "rfrz",
    doc = "A stop-the-line freeze of reconciliation windows, declared by on-call without a Git commit",
    status = "ReconciliationFreezeStatus",
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".spec.reason"}"#,
    printcolumn = r#"{"name":"End","type":"string","jsonPath":".spec.end"}"#,
    printcolumn = r#"{"name":"All","type":"boolean","jsonPath":".spec.all"}"#,
    printcolumn = r#"{"name":"Windows","type":"string","jsonPath":".spec.windows"}"#,
    printcolumn = r#"{"name":"Created By","type":"string","jsonPath":".status.createdBy"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReconciliationFreezeSpec {
    /// Why the line is stopped, e.g. the incident ("INC-4711"); required. Shown in every
    /// denial, `fluxgate status`, `kubectl get rwin`, Events and the audit log.
    pub reason: String,
    /// When the freeze begins (RFC 3339); its creation when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// When the freeze ends (RFC 3339), after start and at most `--max-freeze` (default 24h)
    /// later. It stops applying then, even if nobody deletes it.
    pub end: String,
    /// The windows it freezes, by name; or set `all`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<String>,
    /// Freeze every window, those created later included.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// true lets bypass annotations and window overrides through; default false (a hard
    /// freeze).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_bypass: bool,
}

/// Who declared the freeze, as the API server told fluxgate's webhook: written by fluxgate
/// through the status subresource, which the on-call role cannot write.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationFreezeStatus {
    /// The user that created the freeze (AdmissionReview userInfo.username).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// A validated freeze.
#[derive(Clone, Debug, PartialEq)]
pub struct StopTheLine {
    pub name: String,
    pub reason: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The windows covered; `None`: all.
    pub windows: Option<Vec<String>>,
    pub allow_bypass: bool,
}

/// Why a freeze is refused: names the freeze and the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("ReconciliationFreeze {freeze:?}: {field}: {message}")]
pub struct FreezeError {
    pub freeze: String,
    pub field: String,
    pub message: String,
}

impl StopTheLine {
    /// Validates an object: the one definition of a valid freeze. `max` is `--max-freeze`;
    /// `now` stands for a creation time the object does not carry yet.
    pub fn from_object(
        object: &ReconciliationFreeze,
        max: Duration,
        now: DateTime<Utc>,
    ) -> Result<Self, FreezeError> {
        let name = object.metadata.name.clone().unwrap_or_default();
        let error = |field: &str, message: String| FreezeError {
            freeze: name.clone(),
            field: field.to_owned(),
            message,
        };
        if name.is_empty() {
            return Err(error("metadata.name", "a freeze needs a name".into()));
        }
        if let Some(owner) = object
            .metadata
            .labels
            .as_ref()
            .and_then(FluxOwner::from_labels)
        {
            return Err(error(
                "metadata.labels",
                format!(
                    "applied by Flux ({} {}): a stop-the-line freeze is declared by people, \
                     with `fluxgate freeze start`, never from Git",
                    owner.kind, owner.name
                ),
            ));
        }
        let spec = &object.spec;
        if spec.reason.trim().is_empty() {
            return Err(error(
                "spec.reason",
                "required: say why the line is stopped (e.g. the incident, INC-4711)".into(),
            ));
        }
        let time = |field: &str, text: &str| {
            DateTime::parse_from_rfc3339(text.trim())
                .map(|t| t.to_utc())
                .map_err(|e| {
                    error(
                        field,
                        format!("{text:?} is not RFC 3339 ({e}): write e.g. 2026-12-07T09:30:00Z"),
                    )
                })
        };
        let start = match &spec.start {
            Some(text) => time("spec.start", text)?,
            None => object
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
                .unwrap_or(now),
        };
        let end = time("spec.end", &spec.end)?;
        if end <= start {
            return Err(error(
                "spec.end",
                format!("{:?} is not after start {}", spec.end, rfc3339(start)),
            ));
        }
        if end - start > max {
            return Err(error(
                "spec.end",
                format!(
                    "{} long, more than --max-freeze {}: end it at most {} after its start, and \
                     start another if the incident lasts",
                    crate::duration::format_duration(end - start),
                    crate::duration::format_duration(max),
                    crate::duration::format_duration(max),
                ),
            ));
        }
        let windows = match (spec.all, spec.windows.as_slice()) {
            (true, []) => None,
            (false, []) => {
                return Err(error(
                    "spec.windows",
                    "name the windows it freezes, or set all: true".into(),
                ));
            }
            (true, _) => {
                return Err(error(
                    "spec.all",
                    "all: true and a list of windows: give one of them".into(),
                ));
            }
            (false, names) => Some(names.to_vec()),
        };
        Ok(StopTheLine {
            name,
            reason: spec.reason.trim().to_owned(),
            start,
            end,
            windows,
            allow_bypass: spec.allow_bypass,
        })
    }

    /// Whether it freezes the window `name`.
    pub fn covers(&self, name: &str) -> bool {
        self.windows
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }

    /// Whether it is in force at `t`: `[start, end)`.
    pub fn in_force(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// The reason every denial, status, Event and audit record shows: the incident and the
    /// object to look at (or delete).
    pub fn shown_reason(&self) -> String {
        format!(
            "stop the line: {}, ReconciliationFreeze {}",
            self.reason, self.name
        )
    }

    /// Adds this freeze to `spec` (the spec of window `name`) as one more freeze part, when it
    /// covers that window.
    pub fn apply(&self, name: &str, spec: &mut WindowSpec) {
        if !self.covers(name) {
            return;
        }
        spec.freezes.push(FreezeSpec {
            start: Some(rfc3339(self.start)),
            end: Some(rfc3339(self.end)),
            reason: Some(self.shown_reason()),
            allow_bypass: Some(self.allow_bypass),
            ..Default::default()
        });
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::{ReconciliationWindow, Window};

    fn now() -> DateTime<Utc> {
        "2026-12-07T09:00:00Z".parse().unwrap()
    }

    fn freeze(spec: serde_json::Value) -> ReconciliationFreeze {
        serde_json::from_value(serde_json::json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": "inc-1"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn check(spec: serde_json::Value) -> Result<StopTheLine, String> {
        StopTheLine::from_object(&freeze(spec), Duration::hours(24), now())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_valid_freeze_covers_its_windows_from_start_to_end() {
        let f = check(serde_json::json!({
            "reason": "INC-1", "start": "2026-12-07T09:00:00Z", "end": "2026-12-07T11:00:00+01:00",
            "windows": ["business-hours"],
        }))
        .unwrap();
        assert!(f.covers("business-hours") && !f.covers("nightly"));
        assert!(f.in_force(now()));
        assert!(
            !f.in_force("2026-12-07T10:00:00Z".parse().unwrap()),
            "ended"
        );
        assert!(!f.allow_bypass, "hard by default");
        let all = check(
            serde_json::json!({"reason": "INC-1", "end": "2026-12-07T10:00:00Z", "all": true}),
        )
        .unwrap();
        assert!(all.covers("anything"));
        assert_eq!(all.start, now(), "no start: from its creation");
    }

    #[test]
    fn refused_freezes_say_which_field_and_how_to_fix_it() {
        let cases = [
            (
                serde_json::json!({"reason": " ", "end": "2026-12-07T10:00:00Z", "all": true}),
                "ReconciliationFreeze \"inc-1\": spec.reason: required: say why the line is stopped (e.g. the incident, INC-4711)",
            ),
            (
                serde_json::json!({"reason": "INC-1", "end": "2026-12-09T10:00:00Z", "all": true}),
                "ReconciliationFreeze \"inc-1\": spec.end: 49h long, more than --max-freeze 24h: end it at most 24h after its start, and start another if the incident lasts",
            ),
            (
                serde_json::json!({"reason": "INC-1", "start": "2026-12-07T10:00:00Z", "end": "2026-12-07T10:00:00Z", "all": true}),
                "ReconciliationFreeze \"inc-1\": spec.end: \"2026-12-07T10:00:00Z\" is not after start 2026-12-07T10:00:00Z",
            ),
            (
                serde_json::json!({"reason": "INC-1", "end": "2026-12-07T10:00:00Z"}),
                "ReconciliationFreeze \"inc-1\": spec.windows: name the windows it freezes, or set all: true",
            ),
            (
                serde_json::json!({"reason": "INC-1", "end": "tomorrow", "all": true}),
                "ReconciliationFreeze \"inc-1\": spec.end: \"tomorrow\" is not RFC 3339 (premature end of input): write e.g. 2026-12-07T09:30:00Z",
            ),
        ];
        for (spec, message) in cases {
            assert_eq!(check(spec).unwrap_err(), message);
        }
    }

    #[test]
    fn a_freeze_applied_by_flux_is_refused() {
        let mut object = freeze(
            serde_json::json!({"reason": "INC-1", "end": "2026-12-07T10:00:00Z", "all": true}),
        );
        object.metadata.labels = Some(
            [(
                "kustomize.toolkit.fluxcd.io/name".to_owned(),
                "apps".to_owned(),
            )]
            .into(),
        );
        let error = StopTheLine::from_object(&object, Duration::hours(24), now()).unwrap_err();
        assert_eq!(error.field, "metadata.labels");
        assert!(
            error
                .message
                .starts_with("applied by Flux (Kustomization apps)"),
            "{error}"
        );
    }

    #[test]
    fn applied_to_a_window_it_is_a_hard_freeze_part_that_ends_by_itself() {
        let f = check(
            serde_json::json!({"reason": "INC-1", "end": "2026-12-07T10:00:00Z", "all": true}),
        )
        .unwrap();
        let mut object = ReconciliationWindow::new(
            "always",
            serde_json::from_value(
                serde_json::json!({"schedules": [{"open": "0 0 * * *", "close": "59 23 * * *"}]}),
            )
            .unwrap(),
        );
        f.apply("always", &mut object.spec);
        let window = Window::from_object(&object).unwrap();
        let frozen = window.state_at(now());
        assert!(!frozen.open);
        let active = frozen.freeze.as_ref().unwrap();
        assert_eq!(
            active.reason.as_deref(),
            Some("stop the line: INC-1, ReconciliationFreeze inc-1")
        );
        assert!(!active.allow_bypass);
        assert_eq!(frozen.next, Some("2026-12-07T10:00:00Z".parse().unwrap()));
        let after = window.state_at("2026-12-07T10:00:00Z".parse().unwrap());
        assert!(
            after.open && after.freeze.is_none(),
            "expired: no longer applies"
        );
    }

    // === admission ===

    use crate::policy::{Policy, Reason};
    use serde_json::{Value, json};

    /// The API server's real CREATE of a window by Flux (tests/fixtures/admission), made a
    /// CREATE of a freeze by `user` with `spec`, without Flux's labels.
    fn review(user: &str, spec: Value) -> Value {
        let mut review: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/admission/flux-create-reconciliationwindow.json"
        ))
        .unwrap();
        let request = &mut review["request"];
        for key in ["kind", "requestKind"] {
            request[key]["kind"] = json!(KIND);
        }
        for key in ["resource", "requestResource"] {
            request[key]["resource"] = json!("reconciliationfreezes");
        }
        request["name"] = json!("inc-1");
        request["userInfo"] =
            json!({"username": user, "groups": ["oncall", "system:authenticated"]});
        request["options"]["fieldManager"] = json!("fluxgate");
        let object = &mut request["object"];
        object["kind"] = json!(KIND);
        object["metadata"]["name"] = json!("inc-1");
        object["metadata"]["labels"] = json!({});
        object["metadata"]["managedFields"] = json!([]);
        object["spec"] = spec;
        review
    }

    fn decide_review(review: &Value, policy: &Policy) -> crate::policy::Decision {
        let request = crate::admission::review(
            &serde_json::to_vec(review).unwrap(),
            &crate::window::WindowSet::default(),
            policy,
            now(),
        )
        .unwrap();
        request.decision
    }

    fn valid_spec() -> Value {
        json!({"reason": "INC-1", "start": "2026-12-07T09:00:00Z", "end": "2026-12-07T09:30:00Z", "all": true})
    }

    #[test]
    fn a_person_may_start_a_freeze_and_the_decision_names_them() {
        let d = decide_review(
            &review("alice@example.com", valid_spec()),
            &Policy::default(),
        );
        assert!(d.allowed, "{}", d.message);
        assert_eq!(d.reason, Reason::ValidFreeze);
        assert_eq!(
            d.message,
            "ReconciliationFreeze \"inc-1\" (INC-1) is valid, by alice@example.com"
        );
    }

    #[test]
    fn a_freeze_from_flux_is_refused_by_user_service_account_field_manager_or_labels() {
        let policy = Policy::default();
        let flux_user = review(
            "system:serviceaccount:flux-system:kustomize-controller",
            valid_spec(),
        );
        let other_controller = review(
            "system:serviceaccount:flux-system:source-controller",
            valid_spec(),
        );
        let mut field_manager = review("alice", valid_spec());
        field_manager["request"]["options"]["fieldManager"] = json!("kustomize-controller");
        for (case, review) in [
            ("flux user", &flux_user),
            ("flux-system service account", &other_controller),
            ("Flux field manager", &field_manager),
        ] {
            let d = decide_review(review, &policy);
            assert!(!d.allowed, "{case}");
            assert_eq!(d.reason, Reason::InvalidFreeze, "{case}");
            assert!(
                d.message
                    .contains("is Flux: a stop-the-line freeze is declared and ended by people"),
                "{case}: {}",
                d.message
            );
        }
        // Flux's labels: applied from Git by Flux, whoever the request names.
        let mut labelled = review("alice", valid_spec());
        labelled["request"]["object"]["metadata"]["labels"] = json!({"kustomize.toolkit.fluxcd.io/name": "infra", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"});
        let d = decide_review(&labelled, &policy);
        assert!(!d.allowed);
        assert!(
            d.message
                .contains("metadata.labels: applied by Flux (Kustomization infra)"),
            "{}",
            d.message
        );
        // Nor may Flux end one.
        let mut delete = review(
            "system:serviceaccount:flux-system:kustomize-controller",
            valid_spec(),
        );
        delete["request"]["operation"] = json!("DELETE");
        delete["request"]["oldObject"] = delete["request"]["object"].clone();
        delete["request"]["object"] = Value::Null;
        assert!(!decide_review(&delete, &policy).allowed);
        delete["request"]["userInfo"]["username"] = json!("alice");
        let d = decide_review(&delete, &policy);
        assert!(
            d.allowed && d.message == "ReconciliationFreeze inc-1: ended by alice",
            "{}",
            d.message
        );
    }

    #[test]
    fn a_freeze_without_a_reason_or_longer_than_max_freeze_is_refused() {
        let policy = Policy::default();
        let mut spec = valid_spec();
        spec["reason"] = json!("");
        let d = decide_review(&review("alice", spec), &policy);
        assert!(!d.allowed);
        assert_eq!(
            d.message,
            "ReconciliationFreeze \"inc-1\": spec.reason: required: say why the line is stopped (e.g. the incident, INC-4711)"
        );
        let mut spec = valid_spec();
        spec["end"] = json!("2026-12-08T10:00:00Z");
        let too_long = review("alice", spec);
        let d = decide_review(&too_long, &policy);
        assert!(!d.allowed);
        assert!(
            d.message.contains("25h long, more than --max-freeze 24h"),
            "{}",
            d.message
        );
        let longer = Policy {
            max_freeze: Duration::hours(48),
            ..Policy::default()
        };
        assert!(
            decide_review(&too_long, &longer).allowed,
            "--max-freeze 48h"
        );
        // An unknown field is refused, as in a window: a misspelt `windws:` must not mean all.
        let mut spec = valid_spec();
        spec["windws"] = json!(["a"]);
        let d = decide_review(&review("alice", spec), &policy);
        assert!(
            !d.allowed && d.message.contains("unknown field `windws`"),
            "{}",
            d.message
        );
    }
}
