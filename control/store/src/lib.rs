//! The cluster store: the one place cluster state lives, and the only thing the apiserver talks to.
//!
//! The contract is etcd v3's, reduced to what Kubernetes needs (see [`Store`]): a cluster-wide
//! revision that grows by one per write, compare-and-swap writes guarded by a key's mod revision,
//! consistent ranges at one revision, watches that deliver every change after a revision exactly
//! once and in order, compaction of old history, and keys with a TTL.
//!
//! Two backends implement it: [`EmbeddedStore`] (the default: an in-process log-structured
//! engine, nothing else to run) and [`EtcdStore`] (real etcd, for control planes that outgrow one
//! machine). One conformance suite (`tests/conformance.rs`) runs unchanged against both.
#![deny(missing_docs)]

mod embedded;
mod error;
mod etcd;
mod limits;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use embedded::{EmbeddedConfig, EmbeddedStore};
pub use error::{Result, StoreError};
pub use etcd::{EtcdConfig, EtcdStore};
pub use limits::Limits;

/// A store revision. Every write increases the cluster-wide revision by exactly one; Kubernetes
/// exposes it as `metadata.resourceVersion`.
pub type Revision = i64;

/// One key as stored at some revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value; empty in the `kv` of a delete event.
    pub value: Bytes,
    /// The revision at which the key was (last) created.
    pub create_revision: Revision,
    /// The revision of the last write to the key (for a delete event: the deletion's revision).
    pub mod_revision: Revision,
    /// The number of writes since the key was created (1 right after creation).
    pub version: i64,
}

/// The answer to [`Store::get`].
#[derive(Debug, Clone)]
pub struct GetResponse {
    /// The key, if it existed at the revision read.
    pub kv: Option<KeyValue>,
    /// The revision the read was served at.
    pub revision: Revision,
}

/// A request for the keys in `[start, end)`, optionally at a past revision.
#[derive(Debug, Clone, Default)]
pub struct RangeRequest {
    /// First key of the range (inclusive).
    pub start: String,
    /// End of the range (exclusive). Must not sort before `start`.
    pub end: String,
    /// At most this many keys; 0 means no limit.
    pub limit: usize,
    /// Read as of this revision; `None` reads the current state.
    pub revision: Option<Revision>,
}

impl RangeRequest {
    /// All keys that start with `prefix`, at the current revision.
    pub fn prefix(prefix: &str) -> Self {
        RangeRequest {
            start: prefix.to_owned(),
            end: prefix_end(prefix),
            ..Default::default()
        }
    }

    /// The same range with a limit.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The same range read at a fixed revision.
    pub fn at_revision(mut self, revision: Revision) -> Self {
        self.revision = Some(revision);
        self
    }
}

/// The answer to [`Store::range`].
#[derive(Debug, Clone)]
pub struct RangeResponse {
    /// The keys found, in key order.
    pub kvs: Vec<KeyValue>,
    /// The revision the whole range was read at. Continue a paginated read at this revision so
    /// every page is consistent with the first.
    pub revision: Revision,
    /// Whether keys beyond the limit remain.
    pub more: bool,
}

impl RangeResponse {
    /// The request that reads the next page: the same range from just after the last key
    /// returned, at the same revision. `None` when nothing remains.
    pub fn continuation(&self, request: &RangeRequest) -> Option<RangeRequest> {
        let last = self.kvs.last().filter(|_| self.more)?;
        Some(RangeRequest {
            start: format!("{}\0", last.key),
            end: request.end.clone(),
            limit: request.limit,
            revision: Some(self.revision),
        })
    }
}

/// Which keys a watch follows and from where.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// First key of the watched range (inclusive).
    pub start: String,
    /// End of the watched range (exclusive).
    pub end: String,
    /// Deliver every change with a revision greater than this one.
    pub after_revision: Revision,
}

impl WatchRequest {
    /// Every change under `prefix` after `after_revision`.
    pub fn prefix(prefix: &str, after_revision: Revision) -> Self {
        WatchRequest {
            start: prefix.to_owned(),
            end: prefix_end(prefix),
            after_revision,
        }
    }

    /// Every change to exactly `key` after `after_revision`.
    pub fn key(key: &str, after_revision: Revision) -> Self {
        WatchRequest {
            start: key.to_owned(),
            end: format!("{key}\0"),
            after_revision,
        }
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        key >= self.start.as_str() && key < self.end.as_str()
    }
}

/// What a change did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted (explicitly or because its TTL ran out).
    Delete,
}

/// One change delivered by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// Put or delete.
    pub kind: EventKind,
    /// The key after the change. For a delete: the key, an empty value and the deletion's
    /// revision as `mod_revision`.
    pub kv: KeyValue,
    /// The key before the change; `None` when the change created it.
    pub prev: Option<KeyValue>,
}

impl WatchEvent {
    /// The revision of the write that caused this event.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A stream of watch events, in revision order, each exactly once. It ends with an error item
/// when the watch can no longer continue (for example [`StoreError::Compacted`] when the watcher
/// fell behind compaction); resume by watching again after the last revision received.
pub struct WatchStream {
    inner: Pin<Box<dyn Stream<Item = Result<WatchEvent>> + Send>>,
}

impl WatchStream {
    pub(crate) fn new(inner: impl Stream<Item = Result<WatchEvent>> + Send + 'static) -> Self {
        WatchStream {
            inner: Box::pin(inner),
        }
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The store contract the apiserver relies on. See the crate documentation for the model.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The revision of the last write.
    async fn current_revision(&self) -> Result<Revision>;

    /// One key, at the current revision or at a past one still within the retained history.
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<GetResponse>;

    /// The keys in a range, all as of one revision, at most `limit` of them.
    async fn range(&self, request: RangeRequest) -> Result<RangeResponse>;

    /// Creates `key`; fails with [`StoreError::AlreadyExists`] if it exists. With a TTL the key
    /// is deleted (with a delete event) once the TTL has passed. Returns the write's revision.
    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<Revision>;

    /// Replaces `key`'s value if its mod revision is still `expected_mod_revision`
    /// (compare-and-swap). Returns the write's revision.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
        ttl: Option<Duration>,
    ) -> Result<Revision>;

    /// Deletes `key`, if given only when its mod revision is still `expected_mod_revision`.
    /// Returns the deletion's revision and the key as it was before.
    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(Revision, KeyValue)>;

    /// Every change in a key range after a revision. A revision older than the retained history
    /// fails with [`StoreError::Compacted`], one newer than the current revision with
    /// [`StoreError::FutureRevision`].
    async fn watch(&self, request: WatchRequest) -> Result<WatchStream>;

    /// Discards history before `revision`: reads at revisions below it and watches that would
    /// start below it fail with [`StoreError::Compacted`] from then on.
    async fn compact(&self, revision: Revision) -> Result<()>;
}

/// The smallest key greater than every key starting with `prefix` (etcd's "range end").
/// The empty prefix has no such key; its range end is the maximal key `"\u{10ffff}"`.
pub fn prefix_end(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next code point after `last`, skipping the surrogate gap; U+10FFFF has none, so the
        // prefix is shortened and the one before it is bumped instead.
        let next = (last as u32 + 1..=0x10FFFF).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return chars.into_iter().collect();
        }
    }
    char::MAX.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bumps_the_last_character() {
        assert_eq!(prefix_end("/registry/pods/"), "/registry/pods0");
        assert_eq!(prefix_end("a"), "b");
        assert_eq!(prefix_end("a\u{10ffff}"), "b");
        assert_eq!(prefix_end("\u{d7ff}"), "\u{e000}");
        assert_eq!(prefix_end(""), "\u{10ffff}");
    }

    #[test]
    fn prefix_end_bounds_every_key_under_the_prefix() {
        let end = prefix_end("/registry/pods/");
        for key in [
            "/registry/pods/",
            "/registry/pods/ns/a",
            "/registry/pods/\u{10ffff}",
        ] {
            assert!(key < end.as_str(), "{key:?} must sort before {end:?}");
        }
        assert!("/registry/pods0" >= end.as_str());
    }

    #[test]
    fn continuation_resumes_after_the_last_key_at_the_same_revision() {
        let request = RangeRequest::prefix("/p/").with_limit(2);
        let kv = |key: &str| KeyValue {
            key: key.into(),
            value: Bytes::new(),
            create_revision: 1,
            mod_revision: 1,
            version: 1,
        };
        let page = RangeResponse {
            kvs: vec![kv("/p/a"), kv("/p/b")],
            revision: 7,
            more: true,
        };
        let next = page.continuation(&request).unwrap();
        assert_eq!(next.start, "/p/b\0");
        assert_eq!(next.end, request.end);
        assert_eq!(next.revision, Some(7));
        let last = RangeResponse {
            more: false,
            ..page
        };
        assert!(last.continuation(&request).is_none());
    }
}
