//! Objects in the store: one key per object (`/registry/<group>/<plural>/[<namespace>/]<name>`),
//! the canonical JSON as value, and `metadata.resourceVersion` taken from the key's mod revision
//! rather than stored (as Kubernetes' etcd3 storage does), so it can never disagree with the store.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use skiff_store::{KeyValue, RangeRequest, Revision, Store, StoreError};

use crate::error::{ApiError, ApiResult, Subject};
use crate::meta;
use crate::registry::ResourceInfo;

/// Object persistence for every resource.
#[derive(Clone)]
pub struct Storage {
    /// The cluster store; only the apiserver holds it.
    pub store: Arc<dyn Store>,
    /// How long an Event lives after its last write (Kubernetes' `--event-ttl`).
    pub event_ttl: Duration,
}

/// Kubernetes' default `--event-ttl`.
pub const EVENT_TTL: Duration = Duration::from_secs(3600);

/// Names one object for errors.
pub fn subject<'a>(info: &'a ResourceInfo, name: &'a str) -> Subject<'a> {
    Subject {
        group: info.group,
        resource: info.plural,
        name,
    }
}

/// The object stored in `kv`, with its resourceVersion.
pub fn decode(kv: &KeyValue) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    meta::set_resource_version(&mut obj, kv.mod_revision);
    Ok(obj)
}

/// The stored JSON of an object with `"resourceVersion":"<revision>"` added at the front of its
/// top-level `metadata`, without decoding it; `None` if there is no such object to add it to.
/// (Stored objects never carry a resourceVersion: see [`encode`].)
pub fn with_resource_version(stored: &[u8], revision: skiff_store::Revision) -> Option<Vec<u8>> {
    let at = top_level_metadata(stored)?;
    let field = format!("\"resourceVersion\":\"{revision}\"");
    let rest = &stored[at..];
    let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let mut out = Vec::with_capacity(stored.len() + field.len() + 1);
    out.extend_from_slice(&stored[..at]);
    out.extend_from_slice(field.as_bytes());
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// The offset just after the `{` that opens the value of the top-level `"metadata"` key.
fn top_level_metadata(json: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                // A string: find its end, honouring escapes.
                let start = i + 1;
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                let string = json.get(start..i)?;
                i += 1;
                if depth == 1 && string == b"metadata" {
                    // A key at the top level: expect `:` then `{`.
                    let mut j = i;
                    while json.get(j)?.is_ascii_whitespace() {
                        j += 1;
                    }
                    if json[j] != b':' {
                        continue;
                    }
                    j += 1;
                    while json.get(j)?.is_ascii_whitespace() {
                        j += 1;
                    }
                    return (json[j] == b'{').then_some(j + 1);
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            _ => {}
        }
        i += 1;
    }
    None
}

fn encode(obj: &Value) -> Bytes {
    let mut obj = obj.clone();
    meta::set(&mut obj, "resourceVersion", None);
    Bytes::from(serde_json::to_vec(&obj).expect("JSON values always serialize"))
}

/// Where a paginated list continues: the revision of its first page and the next key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continue {
    /// The revision every page is read at.
    pub revision: Revision,
    /// The first key of the next page.
    pub start: String,
}

impl Continue {
    /// The opaque token clients pass back as `?continue=`.
    pub fn encode(&self) -> String {
        let raw = json!({ "v": "meta.k8s.io/v1", "rv": self.revision, "start": self.start });
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.to_string())
    }

    /// Parses a token, checking it belongs to `prefix`.
    pub fn decode(token: &str, prefix: &str) -> ApiResult<Continue> {
        let bad = || ApiError::bad_request(format!("invalid continue token {token:?}"));
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| bad())?;
        let value: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
        let revision = value["rv"].as_i64().ok_or_else(bad)?;
        let start = value["start"].as_str().ok_or_else(bad)?;
        if !start.starts_with(prefix) {
            return Err(bad());
        }
        Ok(Continue {
            revision,
            start: start.to_owned(),
        })
    }
}

/// One page read from the store.
pub struct Page {
    /// Objects in key order.
    pub items: Vec<Value>,
    /// The revision the page was read at.
    pub revision: Revision,
    /// Where the next page starts, if anything remains.
    pub next: Option<Continue>,
}

impl Storage {
    /// The store over `store`, with Kubernetes' defaults.
    pub fn new(store: Arc<dyn Store>) -> Storage {
        Storage {
            store,
            event_ttl: EVENT_TTL,
        }
    }

    /// The TTL of an object of `info`'s resource: Events (core and events.k8s.io) expire
    /// `event_ttl` after their last write, everything else stays.
    pub fn ttl(&self, info: &ResourceInfo) -> Option<Duration> {
        (info.plural == "events" && matches!(info.group, "" | "events.k8s.io"))
            .then_some(self.event_ttl)
    }

    /// Reads one object.
    pub async fn get(&self, info: &ResourceInfo, ns: Option<&str>, name: &str) -> ApiResult<Value> {
        let got = self
            .store
            .get(&info.key(ns, name), None)
            .await
            .map_err(|e| ApiError::from_store(e, subject(info, name)))?;
        match got.kv {
            Some(kv) => decode(&kv),
            None => Err(ApiError::not_found(subject(info, name))),
        }
    }

    /// Stores a new object; returns it with its resourceVersion.
    pub async fn create(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
    ) -> ApiResult<Value> {
        let revision = self
            .store
            .create(&info.key(ns, name), encode(&obj), self.ttl(info))
            .await
            .map_err(|e| ApiError::from_store(e, subject(info, name)))?;
        meta::set_resource_version(&mut obj, revision);
        Ok(obj)
    }

    /// Replaces an object if it is still at `expected`.
    pub async fn update(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        expected: Revision,
    ) -> ApiResult<Value> {
        let revision = self
            .store
            .update(&info.key(ns, name), encode(&obj), expected, self.ttl(info))
            .await
            .map_err(|e| ApiError::from_store(e, subject(info, name)))?;
        meta::set_resource_version(&mut obj, revision);
        Ok(obj)
    }

    /// Removes an object if it is still at `expected`; returns it as it was, with the
    /// deletion's revision as resourceVersion (what a DELETED watch event carries).
    pub async fn delete(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        expected: Revision,
    ) -> ApiResult<Value> {
        let (revision, prev) = self
            .store
            .delete(&info.key(ns, name), Some(expected))
            .await
            .map_err(|e| ApiError::from_store(e, subject(info, name)))?;
        let mut obj = decode(&prev)?;
        meta::set_resource_version(&mut obj, revision);
        Ok(obj)
    }

    /// Reads up to `limit` objects (0: all) under `prefix`, from `from` (a continuation) or the
    /// start, at `revision` (or the current one).
    pub async fn page(
        &self,
        prefix: &str,
        limit: usize,
        from: Option<&Continue>,
        revision: Option<Revision>,
    ) -> ApiResult<Page> {
        let request = RangeRequest {
            start: from.map_or_else(|| prefix.to_owned(), |c| c.start.clone()),
            end: skiff_store::prefix_end(prefix),
            limit,
            revision: from.map(|c| c.revision).or(revision),
        };
        let page = self.store.range(request.clone()).await.map_err(|e| match e {
            StoreError::Compacted { .. } => ApiError::gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ),
            other => ApiError::from_store(other, Subject { group: "", resource: "", name: "" }),
        })?;
        let next = page.continuation(&request).map(|next| Continue {
            revision: page.revision,
            start: next.start,
        });
        let items = page.kvs.iter().map(decode).collect::<ApiResult<_>>()?;
        Ok(Page {
            items,
            revision: page.revision,
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events expire after their TTL (from the last write); other objects stay.
    #[tokio::test]
    async fn events_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = skiff_store::EmbeddedStore::open(skiff_store::EmbeddedConfig::new(
            dir.path().join("store"),
        ))
        .unwrap();
        let storage = Storage {
            store: Arc::new(store),
            event_ttl: Duration::from_secs(2),
        };
        let registry = crate::registry::builtin();
        let info = |group: &str, plural: &str| {
            registry.lookup(group, "v1", plural).unwrap().info().clone()
        };
        let (events, new_events, config_maps) = (
            info("", "events"),
            info("events.k8s.io", "events"),
            info("", "configmaps"),
        );
        assert_eq!(storage.ttl(&events), Some(Duration::from_secs(2)));
        assert_eq!(storage.ttl(&new_events), Some(Duration::from_secs(2)));
        assert_eq!(storage.ttl(&config_maps), None);
        let object = json!({"metadata": {"name": "e", "namespace": "default"}});
        let created = storage
            .create(&events, Some("default"), "e", object.clone())
            .await
            .unwrap();
        storage
            .create(&config_maps, Some("default"), "c", object.clone())
            .await
            .unwrap();
        // An update renews the TTL.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let revision = meta::resource_version(&created).unwrap();
        storage
            .update(&events, Some("default"), "e", object, revision)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(storage.get(&events, Some("default"), "e").await.is_ok());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while storage.get(&events, Some("default"), "e").await.is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "the event never expired"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            storage
                .get(&config_maps, Some("default"), "c")
                .await
                .is_ok()
        );
    }

    #[test]
    fn resource_versions_are_spliced_into_the_top_level_metadata() {
        let cases = [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"metadata": "{x}"}}),
            json!({"apiVersion": "v1", "data": {"k\"metadata\"": {"metadata": {}}}, "metadata": {}}),
            json!({"a": [{"metadata": {"deep": true}}], "metadata": {"name": "b", "labels": {"x": "y"}}}),
        ];
        for case in cases {
            let stored = serde_json::to_vec(&case).unwrap();
            let spliced = with_resource_version(&stored, 42).unwrap();
            let value: Value = serde_json::from_slice(&spliced).unwrap();
            let mut expected = case.clone();
            expected["metadata"]["resourceVersion"] = json!("42");
            assert_eq!(value, expected);
        }
        assert!(with_resource_version(br#"{"metadata": 5}"#, 1).is_none());
        assert!(with_resource_version(br#"{"spec": {"metadata": {}}}"#, 1).is_none());
        assert!(with_resource_version(b"[1,2", 1).is_none());
    }

    #[test]
    fn continue_tokens_round_trip_and_stay_in_their_prefix() {
        let token = Continue {
            revision: 42,
            start: "/registry/core/pods/default/web-1\0".into(),
        };
        let encoded = token.encode();
        assert_eq!(
            Continue::decode(&encoded, "/registry/core/pods/").unwrap(),
            token
        );
        assert!(Continue::decode(&encoded, "/registry/core/secrets/").is_err());
        assert!(Continue::decode("not base64!", "/").is_err());
    }
}
