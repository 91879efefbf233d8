//! Durability for the embedded store: a write-ahead log of mutation groups plus snapshots.
//!
//! Layout of the data directory:
//! - `wal-<first revision>.log`: segments, preallocated so an append changes no file size and
//!   `fdatasync` writes only the data. Each group commit appends one framed record holding all
//!   of its mutations, so a group is on disk entirely or not at all.
//! - `snap-<revision>.bin`: the whole state at a revision, written to a temporary file, synced
//!   and renamed, so a snapshot is complete or absent.
//!
//! Recovery loads the newest snapshot, replays every segment's records after it, stops a segment
//! at the first torn record (it was never acknowledged), and then starts a new segment, so a
//! damaged tail is never written over.

use super::codec::{Decoder, Encoder, frame, unframe};
use super::mvcc::{Mutation, State, Version};
use crate::{Result, Revision, StoreError};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const TAG_PUT: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_COMPACT: u8 = 3;
const SNAPSHOT_MAGIC: &[u8; 8] = b"SKIFSNP1";

pub(crate) struct Wal {
    dir: PathBuf,
    file: File,
    offset: u64,
    segment_bytes: u64,
    /// The snapshot being written in the background, if any (see
    /// [`Wal::checkpoint_in_background`]).
    writing: Option<std::thread::JoinHandle<()>>,
}

fn segment_name(first_revision: Revision) -> String {
    format!("wal-{first_revision:020}.log")
}

fn snapshot_name(revision: Revision) -> String {
    format!("snap-{revision:020}.bin")
}

/// The files in `dir` named `<prefix><revision><suffix>`, by revision.
fn numbered_files(dir: &Path, prefix: &str, suffix: &str) -> Result<Vec<(Revision, PathBuf)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let number = name
            .strip_prefix(prefix)
            .and_then(|n| n.strip_suffix(suffix));
        if let Some(revision) = number.and_then(|n| n.parse().ok()) {
            files.push((revision, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn encode_mutations(mutations: &[Mutation]) -> Vec<u8> {
    let mut enc = Encoder::default();
    for m in mutations {
        match m {
            Mutation::Put {
                revision,
                key,
                data,
            } => {
                enc.u8(TAG_PUT);
                enc.i64(*revision);
                enc.bytes(key.as_bytes());
                enc.data(data);
            }
            Mutation::Delete { revision, key } => {
                enc.u8(TAG_DELETE);
                enc.i64(*revision);
                enc.bytes(key.as_bytes());
            }
            Mutation::Compact { revision } => {
                enc.u8(TAG_COMPACT);
                enc.i64(*revision);
            }
        }
    }
    frame(&enc.buf)
}

fn decode_mutations(payload: &[u8]) -> Result<Vec<Mutation>> {
    let mut dec = Decoder::new(payload);
    let mut out = Vec::new();
    while !dec.is_empty() {
        let tag = dec.u8()?;
        let revision = dec.i64()?;
        out.push(match tag {
            TAG_PUT => Mutation::Put {
                revision,
                key: dec.key()?,
                data: dec.data()?,
            },
            TAG_DELETE => Mutation::Delete {
                revision,
                key: dec.key()?,
            },
            TAG_COMPACT => Mutation::Compact { revision },
            other => return Err(StoreError::Corrupt(format!("unknown mutation tag {other}"))),
        });
    }
    Ok(out)
}

/// Applies one logged mutation during recovery, skipping what the snapshot already holds.
fn replay(state: &mut State, mutation: &Mutation) -> Result<()> {
    let already_applied = match mutation {
        Mutation::Put { revision, .. } | Mutation::Delete { revision, .. } => {
            *revision <= state.revision
        }
        Mutation::Compact { revision } => *revision <= state.compact_revision,
    };
    if !already_applied {
        state.apply(mutation)?;
    }
    Ok(())
}

/// What a snapshot holds: the state at `revision`, copied out of it (the values are shared, not
/// copied) so that it can be written while the store goes on.
struct Snapshot {
    revision: Revision,
    compact_revision: Revision,
    keys: Vec<(Arc<str>, Vec<Version>)>,
}

impl Snapshot {
    fn of(state: &State) -> Snapshot {
        Snapshot {
            revision: state.revision,
            compact_revision: state.compact_revision,
            keys: (state.versions())
                .map(|(key, versions)| (key.clone(), versions.clone()))
                .collect(),
        }
    }

    /// Writes the snapshot, then deletes the segments and snapshots it supersedes (every
    /// segment that starts at or before its revision ends there: see [`Wal::rotate`]).
    fn write(&self, dir: &Path) -> Result<()> {
        write_snapshot(dir, self)?;
        for (rev, path) in numbered_files(dir, "wal-", ".log")? {
            if rev <= self.revision {
                fs::remove_file(path)?;
            }
        }
        for (rev, path) in numbered_files(dir, "snap-", ".bin")? {
            if rev < self.revision {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }
}

fn write_snapshot(dir: &Path, state: &Snapshot) -> Result<()> {
    let mut enc = Encoder::default();
    enc.i64(state.revision);
    enc.i64(state.compact_revision);
    enc.u64(state.keys.len() as u64);
    for (key, versions) in &state.keys {
        enc.bytes(key.as_bytes());
        enc.u64(versions.len() as u64);
        for v in versions {
            enc.i64(v.mod_revision);
            match &v.data {
                Some(d) => {
                    enc.u8(1);
                    enc.data(d);
                }
                None => enc.u8(0),
            }
        }
    }
    let tmp = dir.join("snap.tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = File::create(&tmp)?;
    file.write_all(SNAPSHOT_MAGIC)?;
    file.write_all(&frame(&enc.buf))?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(snapshot_name(state.revision)))?;
    sync_dir(dir)?;
    Ok(())
}

fn read_snapshot(path: &Path) -> Result<State> {
    let mut raw = Vec::new();
    File::open(path)?.read_to_end(&mut raw)?;
    let corrupt = || StoreError::Corrupt(format!("snapshot {} is damaged", path.display()));
    let body = raw
        .strip_prefix(SNAPSHOT_MAGIC)
        .and_then(unframe)
        .ok_or_else(corrupt)?;
    let mut dec = Decoder::new(body);
    let revision = dec.i64()?;
    let compact_revision = dec.i64()?;
    let mut keys = BTreeMap::new();
    for _ in 0..dec.u64()? {
        let key = dec.key()?;
        let count = dec.u64()?;
        let mut versions = Vec::new();
        for _ in 0..count {
            let mod_revision = dec.i64()?;
            let data = match dec.u8()? {
                0 => None,
                _ => Some(dec.data()?),
            };
            versions.push(Version { mod_revision, data });
        }
        keys.insert(key, versions);
    }
    State::restore(revision, compact_revision, keys)
}

impl Wal {
    /// Opens the data directory: rebuilds the state from the newest snapshot and the log after
    /// it, then starts a fresh segment for new writes.
    pub fn recover(dir: &Path, segment_bytes: u64) -> Result<(State, Wal)> {
        fs::create_dir_all(dir)?;
        let mut state = match numbered_files(dir, "snap-", ".bin")?.last() {
            Some((_, path)) => read_snapshot(path)?,
            None => State::default(),
        };
        for (_, path) in numbered_files(dir, "wal-", ".log")? {
            let segment = fs::read(&path)?;
            let mut offset = 0;
            while let Some(payload) = unframe(&segment[offset..]) {
                offset += payload.len() + 8;
                for mutation in decode_mutations(payload)? {
                    replay(&mut state, &mutation)?;
                }
            }
        }
        let wal = Wal::create_segment(dir, state.revision + 1, segment_bytes)?;
        Ok((state, wal))
    }

    fn create_segment(dir: &Path, first_revision: Revision, segment_bytes: u64) -> Result<Wal> {
        let path = dir.join(segment_name(first_revision));
        // A segment for this revision can exist if the store was opened and closed without a
        // write; it holds no record past the recovered state, so it is safe to start it over.
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        file.set_len(segment_bytes)?;
        file.sync_all()?;
        sync_dir(dir)?;
        Ok(Wal {
            dir: dir.to_owned(),
            file,
            offset: 0,
            segment_bytes,
            writing: None,
        })
    }

    /// Appends one group of mutations and waits until it is on disk.
    pub fn append(&mut self, mutations: &[Mutation]) -> Result<()> {
        let record = encode_mutations(mutations);
        self.file.write_all_at(&record, self.offset)?;
        self.file.sync_data()?;
        self.offset += record.len() as u64;
        Ok(())
    }

    /// Whether the current segment is full and the log should be folded into a snapshot (and
    /// no snapshot is being written already: until it is, the segment grows past its size).
    pub fn is_full(&self) -> bool {
        self.offset >= self.segment_bytes && self.writing.as_ref().is_none_or(|w| w.is_finished())
    }

    /// Snapshots `state`, starts a new segment after it and deletes the files it supersedes.
    #[cfg(test)]
    pub fn checkpoint(&mut self, state: &State) -> Result<()> {
        self.rotate(state)?.write(&self.dir)
    }

    /// [`Wal::checkpoint`] without waiting for the snapshot: the new segment starts at once and
    /// the snapshot is written by a thread of its own, so writes do not stall while tens of
    /// megabytes go to disk. Until the snapshot is durable, the old segments and snapshot stay
    /// (recovery replays them, skipping what a newer snapshot holds); a failed snapshot leaves
    /// them for the next one.
    pub fn checkpoint_in_background(&mut self, state: &State) -> Result<()> {
        let snapshot = self.rotate(state)?;
        let dir = self.dir.clone();
        self.writing = Some(
            std::thread::Builder::new()
                .name("skiff-store-snap".into())
                .spawn(move || {
                    if let Err(err) = snapshot.write(&dir) {
                        tracing::warn!(error = %err, "store snapshot failed; the log keeps growing");
                    }
                })?,
        );
        Ok(())
    }

    /// Copies `state` out for a snapshot and starts the segment after it (the old segment's
    /// drop waits for an earlier snapshot, finished already when [`Wal::is_full`] said so).
    fn rotate(&mut self, state: &State) -> Result<Snapshot> {
        let snapshot = Snapshot::of(state);
        *self = Wal::create_segment(&self.dir, state.revision + 1, self.segment_bytes)?;
        Ok(snapshot)
    }

    fn finish_writing(&mut self) {
        if let Some(writing) = self.writing.take() {
            let _ = writing.join();
        }
    }
}

impl Drop for Wal {
    /// A store closed while its snapshot is written waits for it (its directory may be
    /// removed right after).
    fn drop(&mut self) {
        self.finish_writing();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::mvcc::VersionData;
    use bytes::Bytes;
    use std::sync::Arc;

    fn put(state: &State, key: &str, value: &str) -> Mutation {
        Mutation::Put {
            revision: state.revision + 1,
            key: Arc::from(key),
            data: Arc::new(VersionData {
                value: Bytes::from(value.to_owned()),
                create_revision: state.revision + 1,
                version: 1,
                expires_at_ms: Some(42),
            }),
        }
    }

    fn write(wal: &mut Wal, state: &mut State, batch: Vec<Mutation>) {
        wal.append(&batch).unwrap();
        for m in &batch {
            state.apply(m).unwrap();
        }
    }

    #[test]
    fn mutations_round_trip() {
        let state = State::default();
        let batch = vec![
            put(&state, "a", "1"),
            Mutation::Delete {
                revision: 3,
                key: "a".into(),
            },
            Mutation::Compact { revision: 2 },
        ];
        let framed = encode_mutations(&batch);
        assert_eq!(decode_mutations(unframe(&framed).unwrap()).unwrap(), batch);
    }

    #[test]
    fn recovery_replays_the_log_and_ignores_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut state, mut wal) = Wal::recover(dir.path(), 1 << 16).unwrap();
        for i in 0..10 {
            let m = put(&state, &format!("k{i}"), "v");
            write(&mut wal, &mut state, vec![m]);
        }
        // A torn record: the header promises more bytes than were written.
        let torn = encode_mutations(&[put(&state, "torn", "x")]);
        wal.file
            .write_all_at(&torn[..torn.len() - 3], wal.offset)
            .unwrap();
        drop(wal);
        let (recovered, _) = Wal::recover(dir.path(), 1 << 16).unwrap();
        assert_eq!(recovered.revision, state.revision);
        assert_eq!(recovered.range("k", "l", recovered.revision, 0).0.len(), 10);
        assert!(recovered.get("torn", recovered.revision).is_none());
    }

    /// Writes go on while the snapshot is written; whether it was finished or never written
    /// (a crash in between), recovery finds every write.
    #[test]
    fn background_checkpoints_lose_nothing() {
        for finished in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let (mut state, mut wal) = Wal::recover(dir.path(), 256).unwrap();
            for i in 0..50 {
                let m = put(&state, &format!("k{}", i % 7), &i.to_string());
                write(&mut wal, &mut state, vec![m]);
                if wal.is_full() {
                    if finished {
                        wal.checkpoint_in_background(&state).unwrap();
                    } else {
                        // The segment moves on; the snapshot never reaches the disk.
                        drop(wal.rotate(&state).unwrap());
                    }
                }
            }
            drop(wal);
            let snapshots = numbered_files(dir.path(), "snap-", ".bin").unwrap();
            assert_eq!(!snapshots.is_empty(), finished, "{snapshots:?}");
            let (recovered, _) = Wal::recover(dir.path(), 256).unwrap();
            assert_eq!(recovered.revision, state.revision);
            for rev in state.logged_revisions() {
                assert_eq!(
                    recovered.event_at(rev),
                    state.event_at(rev),
                    "finished: {finished}"
                );
            }
        }
    }

    #[test]
    fn checkpoint_replaces_old_segments_with_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (mut state, mut wal) = Wal::recover(dir.path(), 256).unwrap();
        for i in 0..50 {
            let m = put(&state, &format!("k{}", i % 5), &i.to_string());
            write(&mut wal, &mut state, vec![m]);
            if wal.is_full() {
                wal.checkpoint(&state).unwrap();
            }
        }
        write(
            &mut wal,
            &mut state,
            vec![Mutation::Compact { revision: 30 }],
        );
        drop(wal);
        let segments = numbered_files(dir.path(), "wal-", ".log").unwrap();
        assert!(
            segments.len() <= 2,
            "old segments are deleted: {segments:?}"
        );
        let (recovered, _) = Wal::recover(dir.path(), 256).unwrap();
        assert_eq!(recovered.revision, state.revision);
        assert_eq!(recovered.compact_revision, 30);
        for rev in state.logged_revisions() {
            assert_eq!(recovered.event_at(rev), state.event_at(rev));
        }
    }
}
