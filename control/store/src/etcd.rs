//! The etcd v3 backend, for control planes that outgrow one machine.
//!
//! Keys live under a configurable prefix, so several clusters (or test cases) can share one
//! etcd. Revisions and compaction are etcd's own and therefore shared by everything in that
//! etcd: a revision still grows by one per write, but other users' writes count too.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, DeleteOptions, EventType, GetOptions,
    PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};

use crate::{
    EventKind, GetResponse, KeyValue, Limits, RangeRequest, RangeResponse, Result, Revision, Store,
    StoreError, WatchEvent, WatchRequest, WatchStream,
};

/// How to reach etcd.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Client URLs, e.g. `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// Prepended to every key; the store sees and returns keys without it.
    pub prefix: String,
    /// Key and value size limits (checked before a request is sent).
    pub limits: Limits,
}

impl EtcdConfig {
    /// One endpoint, keys under `prefix`.
    pub fn new(endpoint: impl Into<String>, prefix: impl Into<String>) -> Self {
        EtcdConfig {
            endpoints: vec![endpoint.into()],
            prefix: prefix.into(),
            limits: Limits::default(),
        }
    }
}

/// The etcd backend.
pub struct EtcdStore {
    client: Client,
    prefix: String,
    limits: Limits,
}

/// Message fragments etcd's gRPC errors carry (etcd `rpctypes`), the only way to tell them apart.
const ERR_COMPACTED: &str = "required revision has been compacted";
const ERR_FUTURE: &str = "required revision is a future revision";

fn etcd_error(err: etcd_client::Error) -> StoreError {
    StoreError::Etcd(err.to_string())
}

impl EtcdStore {
    /// Connects to etcd.
    pub async fn connect(config: EtcdConfig) -> Result<EtcdStore> {
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(etcd_error)?;
        Ok(EtcdStore {
            client,
            prefix: config.prefix,
            limits: config.limits,
        })
    }

    fn full(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    fn key_value(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue> {
        let key = kv
            .key_str()
            .map_err(|_| StoreError::Corrupt("etcd key is not UTF-8".into()))?;
        let key = key.strip_prefix(self.prefix.as_str()).unwrap_or(key);
        Ok(KeyValue {
            key: key.to_owned(),
            value: Bytes::copy_from_slice(kv.value()),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
        })
    }

    /// Maps an error from a read or compaction at `requested` to the store's error.
    async fn revision_error(&self, err: etcd_client::Error, requested: Revision) -> StoreError {
        let message = err.to_string();
        if message.contains(ERR_COMPACTED) {
            // etcd does not say how far it compacted.
            return StoreError::Compacted {
                requested,
                compact_revision: 0,
            };
        }
        if message.contains(ERR_FUTURE) {
            return match self.current_revision().await {
                Ok(current) => StoreError::FutureRevision { requested, current },
                Err(err) => err,
            };
        }
        StoreError::Etcd(message)
    }

    async fn lease(&self, ttl: Option<Duration>) -> Result<PutOptions> {
        let Some(ttl) = ttl else {
            return Ok(PutOptions::new());
        };
        // etcd leases count whole seconds; round up so a key never expires early.
        let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let lease = self
            .client
            .clone()
            .lease_grant(seconds as i64, None)
            .await
            .map_err(etcd_error)?;
        Ok(PutOptions::new().with_lease(lease.id()))
    }

    /// Runs a transaction whose else branch reads `key`; returns the header revision on
    /// success, or the key as it is now on failure.
    async fn guarded(
        &self,
        key: &str,
        compare: Compare,
        then: TxnOp,
    ) -> Result<std::result::Result<(Revision, Vec<TxnOpResponse>), Option<KeyValue>>> {
        let full = self.full(key);
        let txn = Txn::new()
            .when([compare])
            .and_then([then])
            .or_else([TxnOp::get(full, None)]);
        let response = self.client.clone().txn(txn).await.map_err(etcd_error)?;
        let revision = response.header().map_or(0, |h| h.revision());
        let ops = response.op_responses();
        if response.succeeded() {
            return Ok(Ok((revision, ops)));
        }
        let current = match ops.first() {
            Some(TxnOpResponse::Get(get)) => get.kvs().first().map(|kv| self.key_value(kv)),
            _ => None,
        };
        Ok(Err(current.transpose()?))
    }

    async fn put_if(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        compare: Compare,
    ) -> Result<std::result::Result<Revision, Option<KeyValue>>> {
        let options = self.lease(ttl).await?;
        let put = TxnOp::put(self.full(key), value.to_vec(), Some(options));
        Ok(self
            .guarded(key, compare, put)
            .await?
            .map(|(revision, _)| revision))
    }
}

fn conflict(key: &str, expected: Revision, current: Option<KeyValue>) -> StoreError {
    match current {
        Some(current) => StoreError::Conflict {
            key: key.to_owned(),
            expected,
            current: Box::new(current),
        },
        None => StoreError::NotFound {
            key: key.to_owned(),
        },
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn current_revision(&self) -> Result<Revision> {
        let options = GetOptions::new().with_count_only();
        let response = self
            .client
            .clone()
            .get(self.prefix.clone(), Some(options))
            .await
            .map_err(etcd_error)?;
        Ok(response.header().map_or(0, |h| h.revision()))
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<GetResponse> {
        self.limits.check_key(key)?;
        let request = RangeRequest {
            start: key.to_owned(),
            end: format!("{key}\0"),
            limit: 1,
            revision,
        };
        let range = self.range(request).await?;
        Ok(GetResponse {
            kv: range.kvs.into_iter().next(),
            revision: range.revision,
        })
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResponse> {
        self.limits.check_range(&request)?;
        let mut options = GetOptions::new()
            .with_range(self.full(&request.end))
            .with_limit(request.limit as i64);
        let at = request.revision.filter(|&r| r > 0);
        if let Some(revision) = at {
            options = options.with_revision(revision);
        }
        let response = match self
            .client
            .clone()
            .get(self.full(&request.start), Some(options))
            .await
        {
            Ok(response) => response,
            Err(err) => return Err(self.revision_error(err, at.unwrap_or(0)).await),
        };
        let kvs = response
            .kvs()
            .iter()
            .map(|kv| self.key_value(kv))
            .collect::<Result<_>>()?;
        Ok(RangeResponse {
            kvs,
            revision: at.unwrap_or_else(|| response.header().map_or(0, |h| h.revision())),
            more: response.more(),
        })
    }

    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<Revision> {
        self.limits.check_write(key, &value, ttl)?;
        let absent = Compare::create_revision(self.full(key), CompareOp::Equal, 0);
        self.put_if(key, value, ttl, absent)
            .await?
            .map_err(|_| StoreError::AlreadyExists {
                key: key.to_owned(),
            })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
        ttl: Option<Duration>,
    ) -> Result<Revision> {
        self.limits.check_write(key, &value, ttl)?;
        let unchanged =
            Compare::mod_revision(self.full(key), CompareOp::Equal, expected_mod_revision);
        self.put_if(key, value, ttl, unchanged)
            .await?
            .map_err(|current| conflict(key, expected_mod_revision, current))
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(Revision, KeyValue)> {
        self.limits.check_key(key)?;
        let full = self.full(key);
        // Without an expected revision the guard is only "the key exists".
        let compare = match expected_mod_revision {
            Some(expected) => Compare::mod_revision(full.clone(), CompareOp::Equal, expected),
            None => Compare::create_revision(full.clone(), CompareOp::Greater, 0),
        };
        let delete = TxnOp::delete(full, Some(DeleteOptions::new().with_prev_key()));
        match self.guarded(key, compare, delete).await? {
            Ok((revision, ops)) => {
                let prev = match ops.first() {
                    Some(TxnOpResponse::Delete(d)) => d.prev_kvs().first().cloned(),
                    _ => None,
                };
                let prev = prev.ok_or_else(|| StoreError::NotFound {
                    key: key.to_owned(),
                })?;
                Ok((revision, self.key_value(&prev)?))
            }
            Err(current) => Err(conflict(key, expected_mod_revision.unwrap_or(0), current)),
        }
    }

    async fn watch(&self, request: WatchRequest) -> Result<WatchStream> {
        self.limits.check_watch(&request)?;
        let current = self.current_revision().await?;
        if request.after_revision > current {
            return Err(StoreError::FutureRevision {
                requested: request.after_revision,
                current,
            });
        }
        let start = request.after_revision + 1;
        // etcd accepts a watch on compacted history and cancels it right after; a read at the
        // start revision has the same precondition and fails up front, as the contract asks.
        // (A compaction racing this check still ends the stream with `Compacted`.)
        if start <= current {
            let probe = RangeRequest {
                start: request.start.clone(),
                end: format!("{}\0", request.start),
                limit: 1,
                revision: Some(start),
            };
            self.range(probe).await?;
        }
        let options = WatchOptions::new()
            .with_range(self.full(&request.end))
            .with_start_revision(start)
            .with_prev_key();
        let stream = self
            .client
            .clone()
            .watch(self.full(&request.start), Some(options))
            .await
            .map_err(etcd_error)?;
        let decoder = EtcdStore {
            client: self.client.clone(),
            prefix: self.prefix.clone(),
            limits: self.limits,
        };
        let state = (stream, VecDeque::new(), decoder, start, false);
        let events = futures::stream::unfold(state, |mut state| async move {
            let (stream, pending, decoder, start, done) = &mut state;
            loop {
                if let Some(event) = pending.pop_front() {
                    return Some((event, state));
                }
                if *done {
                    return None;
                }
                match stream.message().await {
                    Ok(Some(response)) => {
                        if response.canceled() {
                            *done = true;
                            pending.push_back(Err(if response.compact_revision() > 0 {
                                StoreError::Compacted {
                                    requested: *start,
                                    compact_revision: response.compact_revision(),
                                }
                            } else {
                                StoreError::Etcd(format!(
                                    "watch canceled: {}",
                                    response.cancel_reason()
                                ))
                            }));
                        }
                        for event in response.events() {
                            pending.push_back(decoder.watch_event(event));
                        }
                    }
                    Ok(None) => {
                        *done = true;
                        pending.push_back(Err(StoreError::Etcd("watch stream ended".into())));
                    }
                    Err(err) => {
                        *done = true;
                        pending.push_back(Err(etcd_error(err)));
                    }
                }
            }
        });
        Ok(WatchStream::new(events))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let options = CompactionOptions::new().with_physical();
        match self.client.clone().compact(revision, Some(options)).await {
            Ok(_) => Ok(()),
            // Compacting to a revision already compacted is a no-op, as in the embedded store.
            Err(err) => match self.revision_error(err, revision).await {
                StoreError::Compacted { .. } => Ok(()),
                other => Err(other),
            },
        }
    }
}

impl EtcdStore {
    fn watch_event(&self, event: &etcd_client::Event) -> Result<WatchEvent> {
        let kv = event
            .kv()
            .ok_or_else(|| StoreError::Etcd("watch event without a key".into()))?;
        let prev = event.prev_kv().map(|kv| self.key_value(kv)).transpose()?;
        let mut kv = self.key_value(kv)?;
        let kind = match event.event_type() {
            EventType::Put => EventKind::Put,
            EventType::Delete => {
                kv.value = Bytes::new();
                kv.create_revision = 0;
                kv.version = 0;
                EventKind::Delete
            }
        };
        Ok(WatchEvent { kind, kv, prev })
    }
}
