//! How fluxgate names a Kubernetes object to people: `Kind namespace/name`, or `Kind name` when
//! cluster-scoped. Denials, lint findings, Events and the audit report all say it this way, so
//! one object reads the same everywhere. Operations and instants too are named here, once.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use kube::core::admission::Operation;

/// `Deployment nginx/nginx`, `ReconciliationWindow business-hours`.
pub(crate) fn object(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace.filter(|ns| !ns.is_empty()) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// An instant as people read it in denials, the audit line, window status and `status -o
/// json`: RFC 3339 to the second, in the window's time zone (`2026-11-30T08:00:00+01:00`).
pub fn local_time(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An admission operation as the API server spells it (`CREATE`), as a `&'static str` for
/// metric labels and the audit line: kube's serde spelling allocates a `String`.
pub fn operation_name(operation: &Operation) -> &'static str {
    match operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// The API group of an `apiVersion`: `apps/v1` → `apps`, `v1` → the core group `""`.
pub(crate) fn api_group(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_cluster_scoped_and_empty_namespaces() {
        assert_eq!(
            object("Deployment", Some("nginx"), "nginx"),
            "Deployment nginx/nginx"
        );
        assert_eq!(
            object("ReconciliationWindow", None, "business-hours"),
            "ReconciliationWindow business-hours"
        );
        // The API server sends "" for cluster-scoped objects.
        assert_eq!(object("Namespace", Some(""), "nginx"), "Namespace nginx");
        assert_eq!(api_group("apps/v1"), "apps");
        assert_eq!(api_group("v1"), "");
        assert_eq!(api_group("fluxgate.io/v1alpha1"), "fluxgate.io");
    }

    #[test]
    fn operations_are_named_as_the_api_server_sends_them() {
        use Operation::*;
        for operation in [Create, Update, Delete, Connect] {
            let sent = serde_json::to_value(&operation).unwrap();
            assert_eq!(sent, operation_name(&operation), "{operation:?}");
        }
    }
}
