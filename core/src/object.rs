//! The objects inside an AdmissionReview: kube's `ObjectMeta`, and every other top-level field
//! kept as its raw JSON text.
//!
//! `kube`'s `DynamicObject` would parse `spec` into a `serde_json::Value` tree on every review,
//! and its `#[serde(flatten)]` fields make serde buffer the whole object and read it twice.
//! The no-op check compares the raw texts first and parses only the fields whose texts differ,
//! so [`Object`] keeps them raw. A raw value cannot be read through `#[serde(flatten)]`, hence
//! the small visitor below. `metadata.managedFields` is skipped unparsed: nothing here reads it,
//! and it is the largest part of most objects; parsing it into kube's entries and dropping them
//! costs the busy review 969 thousand instructions against 509 thousand skipped (BENCHMARKS.md). [`Object`] implements
//! `kube::Resource`, so `AdmissionRequest<Object>`, `ResourceExt` and `AdmissionResponse::from`
//! work as with `DynamicObject`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    ManagedFieldsEntry, ObjectMeta, OwnerReference, Time,
};
use kube::core::{ApiResource, DynamicResourceScope, Resource};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A Kubernetes object as sent in `request.object` / `request.oldObject`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Object {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<String>,
    pub metadata: ObjectMeta,
    /// Every other top-level field (`spec`, `data`, `status`, …), as raw JSON text.
    #[serde(flatten)]
    pub(crate) data: BTreeMap<String, Box<RawValue>>,
}

impl Resource for Object {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Object;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a Kubernetes object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                let mut object = Object::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "apiVersion" => object.api_version = map.next_value()?,
                        "kind" => object.kind = map.next_value()?,
                        "metadata" => {
                            if let Some(meta) = map.next_value::<Option<Metadata>>()? {
                                object.metadata = meta.0;
                            }
                        }
                        _ => {
                            let value = map.next_value()?;
                            object.data.insert(key, value);
                        }
                    }
                }
                Ok(object)
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// `ObjectMeta` read without `managedFields`: serde's remote derive mirrors kube's type field
/// for field (a field added to `ObjectMeta` is a compile error here), and a skipped field's key
/// is passed over unparsed.
#[derive(Deserialize)]
struct Metadata(#[serde(with = "MetadataWithoutManagedFields")] ObjectMeta);

#[derive(Deserialize)]
#[serde(remote = "ObjectMeta", rename_all = "camelCase")]
struct MetadataWithoutManagedFields {
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    #[serde(skip)]
    managed_fields: Option<Vec<ManagedFieldsEntry>>,
    name: Option<String>,
    namespace: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
    resource_version: Option<String>,
    self_link: Option<String>,
    uid: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;

    #[test]
    fn parses_what_the_api_server_sends_and_drops_managed_fields() {
        let review: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/admission/human-patch-deployment.json"
        ))
        .unwrap();
        let text = serde_json::to_string(&review["request"]["object"]).unwrap();
        let object: Object = serde_json::from_str(&text).unwrap();
        assert_eq!(object.api_version.as_deref(), Some("apps/v1"));
        assert_eq!(object.kind.as_deref(), Some("Deployment"));
        assert_eq!(object.name_any(), "nginx");
        assert_eq!(
            object.labels().get("fluxgate.io/mode").map(String::as_str),
            Some("rw")
        );
        let spec: serde_json::Value = serde_json::from_str(object.data["spec"].get()).unwrap();
        assert_eq!(spec["replicas"], 3);
        assert!(object.data.contains_key("status"));
        assert!(object.metadata.managed_fields.is_none());
        // Round trip: everything but managedFields survives.
        let mut expected = review["request"]["object"].clone();
        expected["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert_eq!(serde_json::to_value(&object).unwrap(), expected);
    }

    /// As Go reads them, and so the API server: the last of duplicate keys wins.
    #[test]
    fn a_duplicate_label_is_read_last_wins() {
        let object: Object = serde_json::from_str(
            r#"{"metadata":{"labels":{"fluxgate.io/mode":"rt","fluxgate.io/mode":"rw"}}}"#,
        )
        .unwrap();
        assert_eq!(object.labels()["fluxgate.io/mode"], "rw");
    }

    #[test]
    fn a_non_object_is_an_error() {
        assert!(serde_json::from_str::<Object>("[1, 2]").is_err());
        assert!(serde_json::from_str::<Object>("{\"metadata\": {\"labels\": 3}}").is_err());
    }
}
