//! Object metadata on JSON values: the fields every kind shares (`metadata.*`), read and set
//! without knowing the kind.

use std::collections::BTreeMap;

use rand::Rng;
use serde_json::{Map, Value};
use skiff_store::Revision;

/// The current time as Kubernetes writes timestamps (RFC 3339, whole seconds, UTC).
pub fn now() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .expect("the current second is a valid timestamp")
        .to_string()
}

/// A random (version 4) UUID.
pub fn new_uid() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The random suffix appended to `generateName` (Kubernetes' alphabet: no vowels, no lookalikes).
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `metadata` as a mutable map, created if missing.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj["metadata"].is_object() {
        obj["metadata"] = Value::Object(Map::new());
    }
    obj["metadata"].as_object_mut().expect("just ensured")
}

/// A string field of `metadata`.
pub fn get<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// Sets (or with `None` removes) a field of `metadata`.
pub fn set(obj: &mut Value, field: &str, value: Option<Value>) {
    let meta = metadata_mut(obj);
    match value {
        Some(value) => {
            meta.insert(field.to_owned(), value);
        }
        None => {
            meta.remove(field);
        }
    }
}

/// `metadata.name`.
pub fn name(obj: &Value) -> Option<&str> {
    get(obj, "name").filter(|n| !n.is_empty())
}

/// `metadata.namespace`.
pub fn namespace(obj: &Value) -> Option<&str> {
    get(obj, "namespace").filter(|n| !n.is_empty())
}

/// `metadata.labels`.
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.finalizers`.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.resourceVersion` as a revision.
pub fn resource_version(obj: &Value) -> Option<Revision> {
    get(obj, "resourceVersion").and_then(|rv| rv.parse().ok())
}

/// Sets `metadata.resourceVersion`.
pub fn set_resource_version(obj: &mut Value, revision: Revision) {
    set(
        obj,
        "resourceVersion",
        Some(Value::String(revision.to_string())),
    );
}

/// Whether `metadata.deletionTimestamp` is set (the object is being deleted).
pub fn is_deleting(obj: &Value) -> bool {
    get(obj, "deletionTimestamp").is_some()
}

/// The object without metadata and status: what `metadata.generation` counts changes of.
pub fn spec_part(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(map) = obj.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uids_are_version_4_and_distinct() {
        let a = new_uid();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(a, new_uid());
    }

    #[test]
    fn timestamps_are_whole_seconds_utc() {
        let t = now();
        assert!(t.ends_with('Z') && !t.contains('.'), "{t}");
        assert_eq!(t.len(), "2026-01-01T00:00:00Z".len());
    }

    #[test]
    fn metadata_accessors() {
        let mut obj =
            json!({"metadata": {"name": "a", "labels": {"app": "web"}, "resourceVersion": "12"}});
        assert_eq!(name(&obj), Some("a"));
        assert_eq!(labels(&obj)["app"], "web");
        assert_eq!(resource_version(&obj), Some(12));
        set_resource_version(&mut obj, 13);
        assert_eq!(resource_version(&obj), Some(13));
        assert!(!is_deleting(&obj));
        assert_eq!(name_suffix().len(), 5);
    }
}
