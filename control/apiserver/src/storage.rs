//! Objects in the store: one key per object (`/registry/<group>/<plural>/[<namespace>/]<name>`),
//! kube-apiserver's JSON of the object as value (Go's field order, so reads serve the stored bytes
//! as they are), and `metadata.resourceVersion` taken from the key's mod revision rather than
//! stored (as Kubernetes' etcd3 storage does), so it can never disagree with the store.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use skiff_protobuf::json;
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

/// The object stored in `kv`, with its resourceVersion, in its [`canonical`] form.
pub fn decode(kv: &KeyValue) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    if !is_go_encoded(&kv.value) {
        obj = canonical(&obj);
    }
    meta::set_resource_version(&mut obj, kv.mod_revision);
    Ok(obj)
}

/// Whether stored bytes are [`encode`]'s: Go's order starts with `kind`. An older skiff stored
/// serde_json's sorted keys, which start with `apiVersion`.
fn is_go_encoded(stored: &[u8]) -> bool {
    stored.starts_with(br#"{"kind":"#)
}

/// An object as the store holds it and kube-apiserver serves it: Go's encoding of the Go type,
/// read back. Keys the Go type lacks are gone, and fields Go always writes are present (a
/// container's `"resources":{}`, a Service's `"status":{"loadBalancer":{}}`), as in the Go struct
/// kube-apiserver decodes every object into. A request's object is brought to this form before
/// it is compared with the stored one, so a write that changes nothing stays a no-op and a
/// generation only counts real changes.
pub fn canonical(obj: &Value) -> Value {
    let mut out = Vec::with_capacity(1024);
    json::write_object(&mut out, obj);
    serde_json::from_slice(&out).expect("the encoder writes JSON")
}

/// The object stored in `kv` as kube-apiserver serves it, with its resourceVersion: the bytes,
/// and the value when it had to be decoded for them.
///
/// What [`encode`] stored is already the Go encoding, so the resourceVersion (never stored) is
/// spliced into it where `ObjectMeta` declares it, without decoding. Objects stored by an older
/// skiff have serde_json's sorted keys instead (a built-in object's then start with
/// `{"apiVersion"`, never with Go's `{"kind"`), as do custom ones: those are decoded and encoded
/// again.
pub fn served(kv: &KeyValue) -> ApiResult<(Vec<u8>, Option<Value>)> {
    if is_go_encoded(&kv.value)
        && let Some(json) = json::with_resource_version(&kv.value, &kv.mod_revision.to_string())
    {
        return Ok((json, None));
    }
    let obj = decode(kv)?;
    let mut json = Vec::with_capacity(kv.value.len() + 32);
    json::write_object(&mut json, &obj);
    Ok((json, Some(obj)))
}

/// The stored form of an object: kube-apiserver's JSON of it (Go's field order, so that lists and
/// watches serve the stored bytes as they are), without `resourceVersion` (the store's revision
/// is), with `kind` and `apiVersion` set as the storage codec sets them.
fn encode(info: &ResourceInfo, obj: &Value) -> Bytes {
    let ready = obj.get("kind").is_some()
        && obj.get("apiVersion").is_some()
        && obj["metadata"].get("resourceVersion").is_none();
    if ready {
        // What a write path hands over (its canonical form) needs no copy.
        let mut out = Vec::with_capacity(1024);
        json::write_object(&mut out, obj);
        return Bytes::from(out);
    }
    let mut obj = obj.clone();
    meta::set(&mut obj, "resourceVersion", None);
    if let Some(map) = obj.as_object_mut() {
        for (key, value) in [
            ("kind", info.kind.to_owned()),
            ("apiVersion", info.api_version()),
        ] {
            map.entry(key).or_insert(Value::String(value));
        }
    }
    let mut out = Vec::with_capacity(1024);
    json::write_object(&mut out, &obj);
    Bytes::from(out)
}

/// An object just written, as a value and as served.
pub struct Written {
    /// The object with its resourceVersion.
    pub object: Value,
    /// Its response body as kube-apiserver writes it (with the trailing newline); `None` when
    /// the resourceVersion could not be spliced in.
    pub served: Option<Vec<u8>>,
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
        obj: Value,
    ) -> ApiResult<Value> {
        Ok(self.create_served(info, ns, name, obj).await?.object)
    }

    /// [`Storage::create`], also answering the bytes kube-apiserver serves for the new object
    /// (the stored ones with the resourceVersion spliced in), so the response need not encode
    /// it a second time.
    pub async fn create_served(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
    ) -> ApiResult<Written> {
        let stored = encode(info, &obj);
        let revision = self
            .store
            .create(&info.key(ns, name), stored.clone(), self.ttl(info))
            .await
            .map_err(|e| ApiError::from_store(e, subject(info, name)))?;
        meta::set_resource_version(&mut obj, revision);
        let served = json::with_resource_version(&stored, &revision.to_string()).map(|mut body| {
            body.push(b'\n');
            body
        });
        Ok(Written {
            object: obj,
            served,
        })
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
            .update(
                &info.key(ns, name),
                encode(info, &obj),
                expected,
                self.ttl(info),
            )
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
    fn stored_objects_are_served_in_go_order_whatever_wrote_them() {
        let registry = crate::registry::builtin();
        let info = registry
            .lookup("", "v1", "configmaps")
            .unwrap()
            .info()
            .clone();
        let object = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "c", "namespace": "default", "uid": "u", "resourceVersion": "7",
                "creationTimestamp": "2026-01-02T03:04:05Z", "labels": {"a": "b"},
            },
            "data": {"k": "<v>", "metadata": "{}"},
            "unknown": true,
        });
        let want = r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c","namespace":"default","uid":"u","resourceVersion":"42","creationTimestamp":"2026-01-02T03:04:05Z","labels":{"a":"b"}},"data":{"k":"\u003cv\u003e","metadata":"{}"}}"#;
        let mut older = object.clone();
        meta::set(&mut older, "resourceVersion", None);
        // (what is stored, whether serving it needs a decode)
        let cases = [
            (encode(&info, &object), false),
            // An older skiff stored serde_json's sorted keys.
            (Bytes::from(serde_json::to_vec(&older).unwrap()), true),
            // The kind and apiVersion are the resource's when the object lacks them.
            (
                encode(
                    &info,
                    &json!({"metadata": object["metadata"], "data": object["data"]}),
                ),
                false,
            ),
        ];
        for (stored, decodes) in cases {
            let kv = KeyValue {
                key: "/registry/core/configmaps/default/c".into(),
                value: stored.clone(),
                create_revision: 40,
                mod_revision: 42,
                version: 2,
            };
            let (json, value) = served(&kv).unwrap();
            assert_eq!(String::from_utf8(json).unwrap(), want, "{stored:?}");
            assert_eq!(value.is_some(), decodes, "{stored:?}");
            assert_eq!(
                decode(&kv).unwrap(),
                serde_json::from_str::<Value>(want).unwrap()
            );
        }
        assert!(
            !encode(&info, &object)
                .windows(15)
                .any(|w| w == b"resourceVersion")
        );
    }

    /// Stored bytes are spliced into lists and watches as they are only when they are Go's
    /// encoding, which needs the kind's Go type.
    #[test]
    fn every_built_in_kind_and_its_list_have_a_go_type() {
        for kind in crate::registry::builtin().all() {
            let info = kind.info();
            // kube-aggregator's APIService is not among the Go types the schema is generated from.
            if info.group == "apiregistration.k8s.io" {
                continue;
            }
            for kind in [info.kind.to_owned(), info.list_kind()] {
                assert!(
                    json::GoType::of_kind(&info.api_version(), &kind).is_some(),
                    "{} {kind}",
                    info.api_version()
                );
            }
        }
    }

    #[test]
    fn the_canonical_form_is_what_go_writes() {
        // A Service without status gets the zero status Go writes; a container its resources.
        let service =
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "extra": 1});
        assert_eq!(
            canonical(&service),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}, "status": {"loadBalancer": {}}})
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {"containers": [{"name": "c"}]}});
        let canonical_pod = canonical(&pod);
        assert_eq!(
            canonical_pod["spec"]["containers"][0]["resources"],
            json!({})
        );
        // Once canonical, always canonical.
        assert_eq!(canonical(&canonical_pod), canonical_pod);
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
