//! Watches on the embedded store.
//!
//! Each watch is a task that first replays retained history from memory, then follows the live
//! batches the writer publishes after every commit. The hub hands out live channels together
//! with the revision they start after, under one lock with publication, so replay and live
//! delivery meet without a gap or an overlap. A watcher too slow for its bounded live channel
//! loses the channel (the writer never blocks on a watcher) and catches up from history again,
//! as etcd moves slow watchers to its "unsynced" group.

use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;

use super::mvcc::State;
use crate::{Result, Revision, StoreError, WatchEvent, WatchRequest, WatchStream};

/// Events of one commit, in revision order.
pub(crate) type Batch = Arc<Vec<WatchEvent>>;

/// How many commits a watcher may fall behind before it is switched to catching up from history.
const LIVE_BUFFER: usize = 256;
/// How many events a watcher hands to its consumer before waiting for it to read them.
const OUT_BUFFER: usize = 256;
/// How many events replay reads per hold of the state lock.
const REPLAY_CHUNK: i64 = 512;

struct Live {
    start: String,
    end: String,
    tx: mpsc::Sender<Batch>,
}

#[derive(Default)]
struct HubInner {
    committed: Revision,
    closed: bool,
    live: Vec<Live>,
}

/// Where the writer publishes commits and watchers subscribe.
#[derive(Default)]
pub(crate) struct Hub {
    inner: Mutex<HubInner>,
}

impl Hub {
    pub fn new(committed: Revision) -> Self {
        Hub {
            inner: Mutex::new(HubInner {
                committed,
                ..Default::default()
            }),
        }
    }

    /// Records a commit and offers its events to every live watcher whose range they touch.
    pub fn publish(&self, revision: Revision, batch: Batch) {
        let mut hub = self.inner.lock().unwrap();
        hub.committed = revision;
        if batch.is_empty() {
            return;
        }
        hub.live.retain(|w| {
            let touches = batch
                .iter()
                .any(|e| e.kv.key >= w.start && e.kv.key < w.end);
            // A full or closed channel drops the watcher from the live set; a slow one
            // re-subscribes after catching up from history.
            !touches || w.tx.try_send(batch.clone()).is_ok()
        });
    }

    /// Ends every watch: called when the store shuts down.
    pub fn close(&self) {
        let mut hub = self.inner.lock().unwrap();
        hub.closed = true;
        hub.live.clear();
    }

    fn subscribe(&self, request: &WatchRequest) -> Option<(Revision, mpsc::Receiver<Batch>)> {
        let mut hub = self.inner.lock().unwrap();
        if hub.closed {
            return None;
        }
        let (tx, rx) = mpsc::channel(LIVE_BUFFER);
        hub.live.push(Live {
            start: request.start.clone(),
            end: request.end.clone(),
            tx,
        });
        Some((hub.committed, rx))
    }
}

/// Starts a watch task and returns the stream it feeds. The caller has checked the request.
pub(crate) fn start(
    hub: Arc<Hub>,
    state: Arc<RwLock<State>>,
    request: WatchRequest,
) -> WatchStream {
    let (out, rx) = mpsc::channel(OUT_BUFFER);
    tokio::spawn(async move {
        let closed = out.clone();
        tokio::select! {
            result = run(&hub, &state, &request, &out) => {
                if let Err(err) = result {
                    let _ = out.send(Err(err)).await;
                }
            }
            // Stop as soon as the consumer drops the stream, even with nothing to deliver.
            _ = closed.closed() => {}
        }
    });
    WatchStream::new(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Delivers events until the consumer goes away (`Ok`) or the watch cannot go on (`Err`).
async fn run(
    hub: &Hub,
    state: &RwLock<State>,
    request: &WatchRequest,
    out: &mpsc::Sender<Result<WatchEvent>>,
) -> Result<()> {
    let mut next = request.after_revision + 1;
    loop {
        let Some((committed, mut live)) = hub.subscribe(request) else {
            return Err(StoreError::Closed);
        };
        while next <= committed {
            let upto = committed.min(next + REPLAY_CHUNK - 1);
            let events = replay(state, request, next, upto)?;
            for event in events {
                if out.send(Ok(event)).await.is_err() {
                    return Ok(());
                }
            }
            next = upto + 1;
        }
        // Live: every batch here is after `committed`; the channel closing means this watcher
        // fell behind and goes back to replay from `next`.
        while let Some(batch) = live.recv().await {
            for event in batch.iter() {
                let wanted = event.revision() >= next && request.contains(&event.kv.key);
                if wanted && out.send(Ok(event.clone())).await.is_err() {
                    return Ok(());
                }
            }
            if let Some(last) = batch.last() {
                next = next.max(last.revision() + 1);
            }
        }
    }
}

/// The events in `[from, to]` that touch the watched range, read from retained history.
fn replay(
    state: &RwLock<State>,
    request: &WatchRequest,
    from: Revision,
    to: Revision,
) -> Result<Vec<WatchEvent>> {
    let state = state.read().unwrap();
    if from < state.compact_revision {
        return Err(StoreError::Compacted {
            requested: from,
            compact_revision: state.compact_revision,
        });
    }
    let logged = state.logged_revisions();
    let from = from.max(*logged.start());
    Ok((from..=to)
        .filter(|&rev| request.contains(state.key_at(rev)))
        .map(|rev| state.event_at(rev))
        .collect())
}
