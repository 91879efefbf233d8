//! The store's one error type, shared by every backend so callers (the apiserver) map errors to
//! Kubernetes `Status` codes without knowing which backend answered.

use crate::{KeyValue, Revision};

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `create` found the key already present.
    #[error("key {key:?} already exists")]
    AlreadyExists {
        /// The key that was to be created.
        key: String,
    },
    /// `update` or `delete` named a key that does not exist (or no longer does).
    #[error("key {key:?} not found")]
    NotFound {
        /// The missing key.
        key: String,
    },
    /// A compare-and-swap failed: the key's mod revision is not the expected one. `current` is
    /// the value that won, so a caller can retry without another read.
    #[error("key {key:?} was modified: expected mod revision {expected}, found {}", current.mod_revision)]
    Conflict {
        /// The contended key.
        key: String,
        /// The mod revision the caller expected.
        expected: Revision,
        /// The key as it is now.
        current: Box<KeyValue>,
    },
    /// A read or watch asked for history that compaction has already discarded.
    #[error("revision {requested} has been compacted (oldest retained: {compact_revision})")]
    Compacted {
        /// The revision that was asked for.
        requested: Revision,
        /// The oldest revision still readable.
        compact_revision: Revision,
    },
    /// A read or watch asked for a revision the store has not reached yet.
    #[error("revision {requested} is in the future (current: {current})")]
    FutureRevision {
        /// The revision that was asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// The key is empty; no object is stored under the empty key.
    #[error("empty key")]
    EmptyKey,
    /// The key is longer than the configured limit.
    #[error("key of {len} bytes exceeds the limit of {max}")]
    KeyTooLarge {
        /// The key's length in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The value is larger than the configured limit.
    #[error("value of {len} bytes exceeds the limit of {max}")]
    ValueTooLarge {
        /// The value's length in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A range or watch whose end sorts before its start.
    #[error("invalid range: end {end:?} sorts before start {start:?}")]
    InvalidRange {
        /// The range's start key.
        start: String,
        /// The range's end key.
        end: String,
    },
    /// A TTL of zero or one too long to represent.
    #[error("invalid TTL {0:?}")]
    InvalidTtl(std::time::Duration),
    /// The store was shut down while the operation was in flight.
    #[error("store is closed")]
    Closed,
    /// The embedded store's files could not be read or written.
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The embedded store's files hold something the store did not write.
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    /// The etcd backend failed in a way that has no better variant (connection, server error).
    #[error("etcd: {0}")]
    Etcd(String),
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
