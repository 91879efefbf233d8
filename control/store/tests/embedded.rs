//! Behaviour only the embedded store has: recovery from its own files, automatic compaction,
//! the directory lock, and watchers that fall behind the writer.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use skiff_store::{
    EmbeddedConfig, EmbeddedStore, KeyValue, RangeRequest, Store, StoreError, WatchEvent,
    WatchRequest,
};

fn config(dir: &tempfile::TempDir) -> EmbeddedConfig {
    let mut config = EmbeddedConfig::new(dir.path());
    config.history_window = 0;
    config
}

fn value(i: usize) -> Bytes {
    Bytes::from(format!("value-{i}-{}", "x".repeat(i % 300)))
}

/// The current keys and the whole retained history (events after `after`).
async fn everything(s: &EmbeddedStore, after: i64) -> (Vec<KeyValue>, Vec<WatchEvent>) {
    let kvs = s.range(RangeRequest::prefix("/")).await.unwrap().kvs;
    let current = s.current_revision().await.unwrap();
    let mut watch = s.watch(WatchRequest::prefix("/", after)).await.unwrap();
    let mut events = Vec::new();
    while events
        .last()
        .is_none_or(|e: &WatchEvent| e.revision() < current)
    {
        events.push(watch.next().await.unwrap().unwrap());
    }
    (kvs, events)
}

#[tokio::test]
async fn reopening_recovers_state_and_history_across_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    // Small segments force many snapshot checkpoints during the run.
    config.segment_bytes = 16 << 10;
    let before = {
        let s = EmbeddedStore::open(config.clone()).unwrap();
        for i in 0..400 {
            let key = format!("/k/{}", i % 37);
            match s.get(&key, None).await.unwrap().kv {
                Some(kv) if i % 5 == 0 => {
                    s.delete(&key, Some(kv.mod_revision)).await.unwrap();
                }
                Some(kv) => {
                    s.update(&key, value(i), kv.mod_revision, None)
                        .await
                        .unwrap();
                }
                None => {
                    s.create(&key, value(i), None).await.unwrap();
                }
            }
        }
        s.compact(150).await.unwrap();
        let before = everything(&s, 149).await;
        assert_eq!(before.1.first().unwrap().revision(), 150);
        before
    };
    let snapshots = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("snap-")
        })
        .count();
    assert_eq!(snapshots, 1, "one snapshot is kept");
    let s = EmbeddedStore::open(config).unwrap();
    assert_eq!(everything(&s, 149).await, before);
    let err = s.get("/k/1", Some(149)).await.unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err}");
}

#[tokio::test]
async fn history_beyond_the_window_is_compacted_automatically() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.history_window = 100;
    let s = EmbeddedStore::open(config).unwrap();
    let mut rev = s.create("/k", value(0), None).await.unwrap();
    let first = rev;
    for i in 1..300 {
        rev = s.update("/k", value(i), rev, None).await.unwrap();
    }
    let err = s.get("/k", Some(first)).await.unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err}");
    // The last `history_window` revisions stay readable and watchable.
    assert_eq!(
        s.get("/k", Some(rev - 99))
            .await
            .unwrap()
            .kv
            .unwrap()
            .mod_revision,
        rev - 99
    );
    let mut watch = s.watch(WatchRequest::key("/k", rev - 100)).await.unwrap();
    let event = watch.next().await.unwrap().unwrap();
    assert_eq!(event.revision(), rev - 99);
}

#[tokio::test]
async fn a_directory_is_used_by_one_store_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(config(&dir)).unwrap();
    let err = EmbeddedStore::open(config(&dir)).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
    drop(s);
    EmbeddedStore::open(config(&dir)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_falls_behind_catches_up_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(config(&dir)).unwrap();
    let start = s.current_revision().await.unwrap();
    let mut watch = s.watch(WatchRequest::prefix("/", start)).await.unwrap();
    // Far more commits than the live and output buffers hold, none read meanwhile.
    const WRITES: i64 = 3000;
    for i in 0..WRITES {
        s.create(&format!("/k/{i}"), value(i as usize), None)
            .await
            .unwrap();
    }
    for expected in start + 1..=start + WRITES {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("event in time")
            .unwrap()
            .unwrap();
        assert_eq!(event.revision(), expected);
    }
    // And it is live again afterwards.
    let rev = s.create("/k/live", value(1), None).await.unwrap();
    assert_eq!(watch.next().await.unwrap().unwrap().revision(), rev);
}

#[tokio::test]
async fn ttl_expiry_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = EmbeddedStore::open(config(&dir)).unwrap();
        s.create("/events/e", value(1), Some(Duration::from_millis(300)))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let s = EmbeddedStore::open(config(&dir)).unwrap();
    let rev = s.current_revision().await.unwrap();
    let mut watch = s
        .watch(WatchRequest::prefix("/events/", rev))
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the expired key is deleted after reopening")
        .unwrap()
        .unwrap();
    assert_eq!(event.kv.key, "/events/e");
    assert!(s.get("/events/e", None).await.unwrap().kv.is_none());
}

#[tokio::test]
async fn dropping_the_store_ends_its_watches() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(config(&dir)).unwrap();
    let mut watch = s.watch(WatchRequest::prefix("/", 1)).await.unwrap();
    drop(s);
    let end = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the watch ends");
    assert!(matches!(end, Some(Err(StoreError::Closed))), "{end:?}");
}
