//! The embedded store's in-memory multi-version state: every retained version of every key, and
//! a log of which key each revision wrote, so reads at past revisions and watch replay need no
//! disk access. Pure data structure: durability is the WAL's job (`wal.rs`), ordering the writer's.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::{EventKind, KeyValue, Result, Revision, StoreError, WatchEvent};

/// The revision of an empty store, as in etcd: the first write gets revision 2.
pub(crate) const INITIAL_REVISION: Revision = 1;

/// The contents of one live version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionData {
    pub value: Bytes,
    pub create_revision: Revision,
    pub version: i64,
    /// Wall-clock expiry in milliseconds since the Unix epoch, for keys written with a TTL.
    pub expires_at_ms: Option<u64>,
}

/// One version of a key: what it held from `mod_revision` on; `None` is a deletion (tombstone).
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub mod_revision: Revision,
    pub data: Option<Arc<VersionData>>,
}

/// One write as it is logged and applied. Put and Delete each take the next revision;
/// Compact takes none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mutation {
    Put {
        revision: Revision,
        key: Arc<str>,
        data: Arc<VersionData>,
    },
    Delete {
        revision: Revision,
        key: Arc<str>,
    },
    Compact {
        revision: Revision,
    },
}

#[derive(Debug)]
pub(crate) struct State {
    /// The revision of the last write.
    pub revision: Revision,
    /// Reads below this revision fail as compacted.
    pub compact_revision: Revision,
    /// Every retained version of each key, oldest first. Keys whose only versions were
    /// compacted away are removed.
    keys: BTreeMap<Arc<str>, Vec<Version>>,
    /// The key written at each revision from `log_start` to `revision`, in order.
    log: VecDeque<Arc<str>>,
    log_start: Revision,
    /// Keys with a TTL, by expiry.
    expiries: BTreeSet<(u64, Arc<str>)>,
}

impl Default for State {
    fn default() -> Self {
        State {
            revision: INITIAL_REVISION,
            compact_revision: INITIAL_REVISION,
            keys: BTreeMap::new(),
            log: VecDeque::new(),
            log_start: INITIAL_REVISION + 1,
            expiries: BTreeSet::new(),
        }
    }
}

/// The public view of one stored version of `key`.
pub(crate) fn key_value(key: &str, mod_revision: Revision, data: &VersionData) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: data.value.clone(),
        create_revision: data.create_revision,
        mod_revision,
        version: data.version,
    }
}

/// The version of a key visible at `revision`: the newest with `mod_revision <= revision`.
fn visible_at(versions: &[Version], revision: Revision) -> Option<&Version> {
    let idx = versions.partition_point(|v| v.mod_revision <= revision);
    idx.checked_sub(1).map(|i| &versions[i])
}

impl State {
    /// Checks that `revision` can be read and returns it (`None`: the current one).
    pub fn read_revision(&self, revision: Option<Revision>) -> Result<Revision> {
        let revision = match revision {
            Some(r) if r > 0 => r,
            _ => return Ok(self.revision),
        };
        if revision > self.revision {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        if revision < self.compact_revision {
            return Err(StoreError::Compacted {
                requested: revision,
                compact_revision: self.compact_revision,
            });
        }
        Ok(revision)
    }

    /// The live data of `key` at `revision` (already checked by `read_revision`).
    pub fn get(&self, key: &str, revision: Revision) -> Option<KeyValue> {
        let (key, versions) = self.keys.get_key_value(key)?;
        let version = visible_at(versions, revision)?;
        let data = version.data.as_ref()?;
        Some(key_value(key, version.mod_revision, data))
    }

    /// The newest version of `key`, if it is live (the writer's view).
    pub fn latest(&self, key: &str) -> Option<(Revision, &Arc<VersionData>)> {
        let version = self.keys.get(key)?.last()?;
        Some((version.mod_revision, version.data.as_ref()?))
    }

    /// Up to `limit` live keys in `[start, end)` at `revision` (0: no limit), and whether more remain.
    pub fn range(
        &self,
        start: &str,
        end: &str,
        revision: Revision,
        limit: usize,
    ) -> (Vec<KeyValue>, bool) {
        let mut kvs = Vec::new();
        let bounds = (Bound::Included(start), Bound::Excluded(end));
        for (key, versions) in self.keys.range::<str, _>(bounds) {
            let Some(version) = visible_at(versions, revision) else {
                continue;
            };
            let Some(data) = &version.data else {
                continue;
            };
            if limit != 0 && kvs.len() == limit {
                return (kvs, true);
            }
            kvs.push(key_value(key, version.mod_revision, data));
        }
        (kvs, false)
    }

    /// The revisions whose events are retained, oldest first.
    pub fn logged_revisions(&self) -> std::ops::RangeInclusive<Revision> {
        self.log_start..=self.revision
    }

    /// The key written at `revision`, which must be in the retained log.
    pub fn key_at(&self, revision: Revision) -> &Arc<str> {
        &self.log[(revision - self.log_start) as usize]
    }

    /// The event written at `revision`, which must be in the retained log.
    pub fn event_at(&self, revision: Revision) -> WatchEvent {
        let key = self.key_at(revision);
        let versions = &self.keys[key];
        let idx = versions
            .binary_search_by_key(&revision, |v| v.mod_revision)
            .expect("every logged revision has a retained version");
        let prev = idx
            .checked_sub(1)
            .and_then(|i| {
                let v = &versions[i];
                v.data.as_ref().map(|d| (v.mod_revision, d))
            })
            .map(|(rev, d)| key_value(key, rev, d));
        match &versions[idx].data {
            Some(data) => WatchEvent {
                kind: EventKind::Put,
                kv: key_value(key, revision, data),
                prev,
            },
            None => WatchEvent {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: key.to_string(),
                    value: Bytes::new(),
                    create_revision: 0,
                    mod_revision: revision,
                    version: 0,
                },
                prev,
            },
        }
    }

    /// Keys with a TTL, earliest expiry first.
    pub fn expiries(&self) -> impl Iterator<Item = &(u64, Arc<str>)> {
        self.expiries.iter()
    }

    /// Applies one mutation, which must continue the revision sequence. Returns whether it
    /// was a write (Put/Delete), i.e. produced an event at `self.revision`.
    pub fn apply(&mut self, mutation: &Mutation) -> Result<bool> {
        match mutation {
            Mutation::Put {
                revision,
                key,
                data,
            } => {
                self.advance(*revision)?;
                self.forget_expiry(key);
                if let Some(at) = data.expires_at_ms {
                    self.expiries.insert((at, key.clone()));
                }
                self.push_version(key, *revision, Some(data.clone()));
                Ok(true)
            }
            Mutation::Delete { revision, key } => {
                self.advance(*revision)?;
                self.forget_expiry(key);
                self.push_version(key, *revision, None);
                Ok(true)
            }
            Mutation::Compact { revision } => {
                self.compact(*revision);
                Ok(false)
            }
        }
    }

    fn advance(&mut self, revision: Revision) -> Result<()> {
        if revision != self.revision + 1 {
            return Err(StoreError::Corrupt(format!(
                "write at revision {revision} does not follow revision {}",
                self.revision
            )));
        }
        self.revision = revision;
        Ok(())
    }

    fn forget_expiry(&mut self, key: &Arc<str>) {
        if let Some((_, Some(old))) = self.latest(key).map(|(r, d)| (r, d.expires_at_ms)) {
            self.expiries.remove(&(old, key.clone()));
        }
    }

    fn push_version(&mut self, key: &Arc<str>, revision: Revision, data: Option<Arc<VersionData>>) {
        let version = Version {
            mod_revision: revision,
            data,
        };
        match self.keys.get_mut(key) {
            Some(versions) => versions.push(version),
            None => {
                self.keys.insert(key.clone(), vec![version]);
            }
        }
        self.log.push_back(key.clone());
    }

    /// Discards history below `revision`. For every write logged before it, the versions that
    /// write superseded go, and so does the write itself if it was a deletion: reads at or after
    /// `revision` see the same thing without them. The newest version at or below `revision`
    /// stays, so `get` at `revision` and the `prev` of later events still resolve.
    fn compact(&mut self, revision: Revision) {
        let revision = revision.min(self.revision);
        if revision <= self.compact_revision {
            return;
        }
        while self.log_start < revision {
            let Some(key) = self.log.pop_front() else {
                break;
            };
            let written = self.log_start;
            self.log_start += 1;
            let Some(versions) = self.keys.get_mut(&key) else {
                continue;
            };
            let idx = versions.partition_point(|v| v.mod_revision < written);
            versions.drain(..idx);
            if versions.first().is_some_and(|v| v.data.is_none()) {
                versions.remove(0);
            }
            if versions.is_empty() {
                self.keys.remove(&key);
            }
        }
        self.log_start = self.log_start.max(revision);
        self.compact_revision = revision;
    }

    /// Every retained version, key by key, for snapshots.
    pub fn versions(&self) -> impl ExactSizeIterator<Item = (&Arc<str>, &Vec<Version>)> {
        self.keys.iter()
    }

    /// Rebuilds a state from a snapshot's versions, deriving the log and TTL index.
    pub fn restore(
        revision: Revision,
        compact_revision: Revision,
        keys: BTreeMap<Arc<str>, Vec<Version>>,
    ) -> Result<State> {
        let log_start = compact_revision.max(INITIAL_REVISION + 1);
        let mut logged: Vec<(Revision, Arc<str>)> = Vec::new();
        let mut expiries = BTreeSet::new();
        for (key, versions) in &keys {
            for v in versions.iter().filter(|v| v.mod_revision >= log_start) {
                logged.push((v.mod_revision, key.clone()));
            }
            if let Some(at) = versions
                .last()
                .and_then(|v| v.data.as_ref())
                .and_then(|d| d.expires_at_ms)
            {
                expiries.insert((at, key.clone()));
            }
        }
        logged.sort_unstable_by_key(|(rev, _)| *rev);
        let contiguous = logged
            .iter()
            .enumerate()
            .all(|(i, (rev, _))| *rev == log_start + i as Revision);
        let expected_len = (revision - log_start + 1).max(0) as usize;
        if !contiguous || logged.len() != expected_len {
            return Err(StoreError::Corrupt(
                "snapshot history has holes or duplicate revisions".into(),
            ));
        }
        Ok(State {
            revision,
            compact_revision,
            keys,
            log: logged.into_iter().map(|(_, k)| k).collect(),
            log_start,
            expiries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(state: &mut State, key: &str, value: &str) -> Revision {
        let revision = state.revision + 1;
        let (create_revision, version) = match state.latest(key) {
            Some((_, d)) => (d.create_revision, d.version + 1),
            None => (revision, 1),
        };
        let data = Arc::new(VersionData {
            value: Bytes::from(value.to_owned()),
            create_revision,
            version,
            expires_at_ms: None,
        });
        state
            .apply(&Mutation::Put {
                revision,
                key: key.into(),
                data,
            })
            .unwrap();
        revision
    }

    fn delete(state: &mut State, key: &str) -> Revision {
        let revision = state.revision + 1;
        state
            .apply(&Mutation::Delete {
                revision,
                key: key.into(),
            })
            .unwrap();
        revision
    }

    fn value_at(state: &State, key: &str, revision: Revision) -> Option<String> {
        let kv = state.get(key, revision)?;
        Some(String::from_utf8(kv.value.to_vec()).unwrap())
    }

    #[test]
    fn reads_see_the_version_current_at_their_revision() {
        let mut s = State::default();
        let r1 = put(&mut s, "a", "1");
        let r2 = put(&mut s, "a", "2");
        let r3 = delete(&mut s, "a");
        assert_eq!(value_at(&s, "a", r1).as_deref(), Some("1"));
        assert_eq!(value_at(&s, "a", r2).as_deref(), Some("2"));
        assert_eq!(value_at(&s, "a", r3), None);
        assert_eq!(s.get("a", r2).unwrap().version, 2);
        assert_eq!(s.get("a", r2).unwrap().create_revision, r1);
    }

    #[test]
    fn compaction_keeps_what_later_reads_and_events_need() {
        let mut s = State::default();
        put(&mut s, "a", "1");
        let a2 = put(&mut s, "a", "2");
        put(&mut s, "b", "1");
        delete(&mut s, "b");
        let c = put(&mut s, "c", "1");
        let a3 = put(&mut s, "a", "3");
        s.apply(&Mutation::Compact { revision: c }).unwrap();
        assert!(matches!(
            s.read_revision(Some(c - 1)),
            Err(StoreError::Compacted { .. })
        ));
        assert_eq!(value_at(&s, "a", c).as_deref(), Some("2"));
        assert_eq!(value_at(&s, "b", c), None);
        // b's versions and tombstone are gone entirely; a keeps only the version c can see.
        assert_eq!(s.versions().count(), 2);
        let event = s.event_at(a3);
        assert_eq!(event.prev.unwrap().mod_revision, a2);
        assert_eq!(s.logged_revisions(), c..=a3);
    }

    #[test]
    fn restore_rebuilds_the_same_log() {
        let mut s = State::default();
        for i in 0..20 {
            put(&mut s, &format!("k{}", i % 3), &i.to_string());
            if i % 7 == 6 {
                delete(&mut s, "k1");
            }
        }
        s.apply(&Mutation::Compact { revision: 9 }).unwrap();
        let keys = s.versions().map(|(k, v)| (k.clone(), v.clone())).collect();
        let restored = State::restore(s.revision, s.compact_revision, keys).unwrap();
        for rev in s.logged_revisions() {
            assert_eq!(restored.event_at(rev), s.event_at(rev));
        }
        assert_eq!(
            restored.range("k", "l", s.revision, 0),
            s.range("k", "l", s.revision, 0)
        );
    }

    #[test]
    fn out_of_order_revisions_are_rejected() {
        let mut s = State::default();
        let err = s
            .apply(&Mutation::Delete {
                revision: 5,
                key: "a".into(),
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)));
    }
}
