//! The embedded store's single writer thread and its group commit.
//!
//! Every write request goes through one channel to this thread. It takes all requests waiting
//! (up to a bound), decides each against the state plus the effects of the requests before it in
//! the same group, appends the whole group to the WAL with one `fdatasync`, and only then makes
//! it visible to readers and watchers and acknowledges it. So a reader never sees a write that a
//! crash could still lose, and N concurrent writers share one disk flush.
//!
//! The same thread deletes keys whose TTL ran out and compacts history beyond the configured
//! window, so those are ordinary logged writes with revisions and watch events.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::mvcc::{Mutation, State, VersionData, key_value};
use super::wal::Wal;
use super::watch::Hub;
use crate::{KeyValue, Result, Revision, StoreError};

/// Most requests one group commit takes.
const MAX_GROUP: usize = 1024;
/// Most value bytes one group commit takes, so one WAL record stays modest.
const MAX_GROUP_BYTES: usize = 16 << 20;
/// How long the writer sleeps when idle; bounds how late a TTL expiry is noticed.
const IDLE_TICK: Duration = Duration::from_millis(200);
/// Most expired keys deleted per group.
const MAX_EXPIRIES: usize = 1024;

pub(crate) enum Op {
    Create {
        key: Arc<str>,
        value: Bytes,
        ttl: Option<Duration>,
    },
    Update {
        key: Arc<str>,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    },
    Delete {
        key: Arc<str>,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
}

impl Op {
    fn value_len(&self) -> usize {
        match self {
            Op::Create { value, .. } | Op::Update { value, .. } => value.len(),
            _ => 0,
        }
    }
}

pub(crate) enum Outcome {
    Written(Revision),
    Deleted(Revision, KeyValue),
    Compacted,
}

pub(crate) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Outcome>>,
}

pub(crate) struct Writer {
    pub state: Arc<RwLock<State>>,
    pub hub: Arc<Hub>,
    pub wal: Wal,
    /// Revisions of history kept for watches; 0 keeps everything until `compact` is called.
    pub history_window: i64,
    /// Set once a WAL append fails: what is on disk is then unknown, so no further write is
    /// accepted until the store is reopened and recovers.
    pub failed: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn expiry(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|t| now_ms().saturating_add(t.as_millis() as u64))
}

/// Decides one group's requests in order, as if each were applied before the next.
struct Planner<'a> {
    state: &'a State,
    /// Keys written earlier in this group: their newest version (`None`: deleted).
    pending: HashMap<Arc<str>, Option<(Revision, Arc<VersionData>)>>,
    revision: Revision,
    mutations: Vec<Mutation>,
}

impl<'a> Planner<'a> {
    fn new(state: &'a State) -> Self {
        Planner {
            state,
            pending: HashMap::new(),
            revision: state.revision,
            mutations: Vec::new(),
        }
    }

    fn current(&self, key: &str) -> Option<(Revision, Arc<VersionData>)> {
        match self.pending.get(key) {
            Some(pending) => pending.clone(),
            None => self.state.latest(key).map(|(r, d)| (r, d.clone())),
        }
    }

    fn put(&mut self, key: Arc<str>, data: VersionData) -> Revision {
        self.revision += 1;
        let data = Arc::new(data);
        self.pending
            .insert(key.clone(), Some((self.revision, data.clone())));
        self.mutations.push(Mutation::Put {
            revision: self.revision,
            key,
            data,
        });
        self.revision
    }

    fn delete(&mut self, key: Arc<str>) -> Revision {
        self.revision += 1;
        self.pending.insert(key.clone(), None);
        self.mutations.push(Mutation::Delete {
            revision: self.revision,
            key,
        });
        self.revision
    }

    /// The current version if its mod revision is `expected` (when given).
    fn expect(
        &self,
        key: &Arc<str>,
        expected: Option<Revision>,
    ) -> Result<(Revision, Arc<VersionData>)> {
        let (mod_revision, data) = self.current(key).ok_or_else(|| StoreError::NotFound {
            key: key.to_string(),
        })?;
        match expected {
            Some(expected) if expected != mod_revision => Err(StoreError::Conflict {
                key: key.to_string(),
                expected,
                current: Box::new(key_value(key, mod_revision, &data)),
            }),
            _ => Ok((mod_revision, data)),
        }
    }

    fn plan(&mut self, op: Op) -> Result<Outcome> {
        match op {
            Op::Create { key, value, ttl } => {
                if self.current(&key).is_some() {
                    return Err(StoreError::AlreadyExists {
                        key: key.to_string(),
                    });
                }
                let data = VersionData {
                    value,
                    create_revision: self.revision + 1,
                    version: 1,
                    expires_at_ms: expiry(ttl),
                };
                Ok(Outcome::Written(self.put(key, data)))
            }
            Op::Update {
                key,
                value,
                expected,
                ttl,
            } => {
                let (_, old) = self.expect(&key, Some(expected))?;
                let data = VersionData {
                    value,
                    create_revision: old.create_revision,
                    version: old.version + 1,
                    expires_at_ms: expiry(ttl),
                };
                Ok(Outcome::Written(self.put(key, data)))
            }
            Op::Delete { key, expected } => {
                let (mod_revision, old) = self.expect(&key, expected)?;
                let prev = key_value(&key, mod_revision, &old);
                Ok(Outcome::Deleted(self.delete(key), prev))
            }
            Op::Compact { revision } => {
                if revision > self.revision {
                    return Err(StoreError::FutureRevision {
                        requested: revision,
                        current: self.revision,
                    });
                }
                self.mutations.push(Mutation::Compact { revision });
                Ok(Outcome::Compacted)
            }
        }
    }

    /// Deletes keys whose TTL has passed and were not rewritten since.
    fn expire(&mut self, now: u64) {
        let due: Vec<_> = self
            .state
            .expiries()
            .take_while(|(at, _)| *at <= now)
            .take(MAX_EXPIRIES)
            .cloned()
            .collect();
        for (at, key) in due {
            let still_due = self
                .current(&key)
                .is_some_and(|(_, d)| d.expires_at_ms == Some(at));
            if still_due {
                self.delete(key);
            }
        }
    }
}

impl Writer {
    /// Runs until every request sender is gone, then ends all watches.
    pub fn run(mut self, requests: Receiver<Request>) {
        loop {
            let first = match requests.recv_timeout(IDLE_TICK) {
                Ok(request) => Some(request),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut group: Vec<Request> = first.into_iter().collect();
            let mut bytes = group.iter().map(|r| r.op.value_len()).sum::<usize>();
            while group.len() < MAX_GROUP && bytes < MAX_GROUP_BYTES {
                let Ok(request) = requests.try_recv() else {
                    break;
                };
                bytes += request.op.value_len();
                group.push(request);
            }
            self.commit(group);
        }
        self.hub.close();
    }

    fn commit(&mut self, group: Vec<Request>) {
        if let Some(reason) = &self.failed {
            for request in group {
                let _ = request
                    .reply
                    .send(Err(StoreError::Io(std::io::Error::other(format!(
                        "store stopped accepting writes after a failed log write: {reason}"
                    )))));
            }
            return;
        }
        let (mutations, mut replies) = {
            let state = self.state.read().unwrap();
            let mut planner = Planner::new(&state);
            planner.expire(now_ms());
            let replies: Vec<_> = group
                .into_iter()
                .map(|r| (planner.plan(r.op), r.reply))
                .collect();
            if self.history_window > 0
                && planner.revision - state.compact_revision > self.history_window * 5 / 4
            {
                let revision = planner.revision - self.history_window;
                planner.mutations.push(Mutation::Compact { revision });
            }
            (planner.mutations, replies)
        };
        if mutations.is_empty() {
            Self::reply(replies);
            return;
        }
        if let Err(err) = self.wal.append(&mutations) {
            tracing::error!(error = %err, "store log write failed; refusing further writes");
            self.failed = Some(err.to_string());
            for (outcome, _) in &mut replies {
                if outcome.is_ok() {
                    *outcome = Err(StoreError::Io(std::io::Error::other(err.to_string())));
                }
            }
            Self::reply(replies);
            return;
        }
        let (revision, events) = {
            let mut state = self.state.write().unwrap();
            let mut events = Vec::with_capacity(mutations.len());
            for mutation in &mutations {
                let wrote = state
                    .apply(mutation)
                    .expect("planned mutations continue the revision sequence");
                // Built at once: a compaction later in the same group may drop this revision.
                if wrote {
                    events.push(state.event_at(state.revision));
                }
            }
            (state.revision, events)
        };
        self.hub.publish(revision, Arc::new(events));
        Self::reply(replies);
        if self.wal.is_full() {
            let state = self.state.read().unwrap();
            if let Err(err) = self.wal.checkpoint_in_background(&state) {
                tracing::warn!(error = %err, "store checkpoint failed; the log keeps growing");
            }
        }
    }

    fn reply(replies: Vec<(Result<Outcome>, oneshot::Sender<Result<Outcome>>)>) {
        for (outcome, reply) in replies {
            let _ = reply.send(outcome);
        }
    }
}
