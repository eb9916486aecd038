//! The objects inside an AdmissionReview, parsed for what fluxgate needs and no more.
//!
//! `kube`'s `DynamicObject` would do, but it costs: `managedFields` (often a third of a
//! Deployment's JSON) is parsed into typed entries only to be ignored, `#[serde(flatten)]`
//! buffers every field before parsing it a second time, and `spec` becomes a tree of
//! allocations nobody reads unless the no-op check needs it. [`Object`] reads the map once,
//! keeps `metadata` without `managedFields`, and keeps every other field as its raw JSON text:
//! the no-op check compares texts first and parses only when they differ. Labels and
//! annotations, read on every review, are [`StringMap`]s rather than `BTreeMap`s.
//! It implements `kube::Resource`, so `AdmissionRequest<Object>` and `AdmissionResponse::from`
//! work as with `DynamicObject`.

mod string_map;

pub use string_map::StringMap;
use string_map::Text;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::core::{ApiResource, DynamicResourceScope, Resource};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A Kubernetes object as sent in `request.object` / `request.oldObject`.
#[derive(Clone, Debug, Default)]
pub struct Object {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    /// Everything but `managedFields`, `labels` and `annotations`, which are always `None`
    /// here: the first is dropped, the other two are [`Object::labels`] and
    /// [`Object::annotations`].
    pub metadata: ObjectMeta,
    /// `metadata.labels`.
    pub labels: Option<StringMap>,
    /// `metadata.annotations`.
    pub annotations: Option<StringMap>,
    /// Every other top-level field (`spec`, `data`, `status`, …), as raw JSON text.
    pub data: BTreeMap<String, Box<RawValue>>,
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

    /// Without labels and annotations: see [`Object::metadata`].
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// `ObjectMeta` as on the wire, with `managedFields` skipped unparsed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    #[serde(default)]
    annotations: Option<StringMap>,
    #[serde(default)]
    creation_timestamp: Option<Time>,
    #[serde(default)]
    deletion_grace_period_seconds: Option<i64>,
    #[serde(default)]
    deletion_timestamp: Option<Time>,
    #[serde(default)]
    finalizers: Option<Vec<String>>,
    #[serde(default)]
    generate_name: Option<String>,
    #[serde(default)]
    generation: Option<i64>,
    #[serde(default)]
    labels: Option<StringMap>,
    #[serde(default, rename = "managedFields")]
    _managed_fields: Option<IgnoredAny>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    owner_references: Option<Vec<OwnerReference>>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    self_link: Option<String>,
    #[serde(default)]
    uid: Option<String>,
}

impl WireMeta {
    /// The metadata, the labels and the annotations.
    fn split(self) -> (ObjectMeta, Option<StringMap>, Option<StringMap>) {
        let meta = ObjectMeta {
            annotations: None,
            creation_timestamp: self.creation_timestamp,
            deletion_grace_period_seconds: self.deletion_grace_period_seconds,
            deletion_timestamp: self.deletion_timestamp,
            finalizers: self.finalizers,
            generate_name: self.generate_name,
            generation: self.generation,
            labels: None,
            managed_fields: None,
            name: self.name,
            namespace: self.namespace,
            owner_references: self.owner_references,
            resource_version: self.resource_version,
            self_link: self.self_link,
            uid: self.uid,
        };
        (meta, self.labels, self.annotations)
    }
}

/// `metadata` as on the wire again: [`Object::metadata`] with the labels and annotations.
#[derive(Serialize)]
struct MetaOut<'a> {
    #[serde(flatten)]
    meta: &'a ObjectMeta,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<&'a StringMap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a StringMap>,
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
                while let Some(Text(key)) = map.next_key()? {
                    match key.as_ref() {
                        "apiVersion" => object.api_version = map.next_value()?,
                        "kind" => object.kind = map.next_value()?,
                        "metadata" => {
                            if let Some(meta) = map.next_value::<Option<WireMeta>>()? {
                                (object.metadata, object.labels, object.annotations) = meta.split();
                            }
                        }
                        _ => {
                            let value = map.next_value()?;
                            object.data.insert(key.into_owned(), value);
                        }
                    }
                }
                Ok(object)
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(api_version) = &self.api_version {
            map.serialize_entry("apiVersion", api_version)?;
        }
        if let Some(kind) = &self.kind {
            map.serialize_entry("kind", kind)?;
        }
        let metadata = MetaOut {
            meta: &self.metadata,
            labels: self.labels.as_ref(),
            annotations: self.annotations.as_ref(),
        };
        map.serialize_entry("metadata", &metadata)?;
        for (key, value) in &self.data {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(object.metadata.name.as_deref(), Some("nginx"));
        assert_eq!(
            object.labels.as_ref().unwrap().get("fluxgate.io/mode"),
            Some("rw")
        );
        assert!(object.metadata.managed_fields.is_none());
        let spec: serde_json::Value = serde_json::from_str(object.data["spec"].get()).unwrap();
        assert_eq!(spec["replicas"], 3);
        assert!(object.data.contains_key("status"));
        // Round trip: everything but managedFields survives.
        let mut expected = review["request"]["object"].clone();
        expected["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert_eq!(serde_json::to_value(&object).unwrap(), expected);
    }

    #[test]
    fn a_non_object_is_an_error() {
        assert!(serde_json::from_str::<Object>("[1, 2]").is_err());
        assert!(serde_json::from_str::<Object>("{\"metadata\": {\"labels\": 3}}").is_err());
    }
}
