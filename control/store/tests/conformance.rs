//! The store conformance suite: every case runs unchanged against the embedded store and against
//! real etcd, so the apiserver can rely on the `Store` contract whichever backend it is given.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use skiff_store::{
    EventKind, RangeRequest, Revision, Store, StoreError, WatchEvent, WatchRequest, WatchStream,
};
use support::Harness;

/// Generates `embedded::<case>` and `etcd::<case>` tests for every case function.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(&super::Harness::embedded()).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let _serial = super::support::etcd_lock().await;
                    super::$case(&super::Harness::etcd(stringify!($case))).await;
                }
            )*
        }
    };
}

conformance!(
    revision_grows_by_one_per_write,
    create_fails_when_the_key_exists,
    update_is_compare_and_swap,
    delete_is_guarded_and_returns_the_old_value,
    get_reads_past_revisions,
    range_pages_are_consistent_at_one_revision,
    concurrent_compare_and_swap_loses_no_update,
    watch_delivers_every_change_once_in_order_across_writers,
    watch_replays_history_and_reports_previous_values,
    watch_only_sees_its_range,
    watch_resumes_after_reconnect,
    compaction_discards_old_history,
    keys_with_a_ttl_expire_with_a_delete_event,
    bad_input_is_rejected_and_leaves_the_store_intact,
);

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

/// Receives the next event, failing the test if none arrives in time.
async fn next_event(watch: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
        Ok(Some(Ok(event))) => event,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

/// Asserts that no event arrives within a short wait.
async fn assert_quiet(watch: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), watch.next()).await {
        panic!("expected no event, got {item:?}");
    }
}

async fn revision_grows_by_one_per_write(h: &Harness) {
    let s = h.open().await;
    let r0 = s.current_revision().await.unwrap();
    let r1 = s.create("/a", b("1"), None).await.unwrap();
    assert_eq!(r1, r0 + 1);
    let r2 = s.update("/a", b("2"), r1, None).await.unwrap();
    assert_eq!(r2, r1 + 1);
    // Failed writes take no revision.
    assert!(s.create("/a", b("x"), None).await.is_err());
    assert!(s.update("/a", b("x"), r1, None).await.is_err());
    let (r3, _) = s.delete("/a", None).await.unwrap();
    assert_eq!(r3, r2 + 1);
    assert_eq!(s.current_revision().await.unwrap(), r3);

    let r4 = s.create("/a", b("again"), None).await.unwrap();
    let kv = s.get("/a", None).await.unwrap().kv.unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r4, r4, 1)
    );
    let r5 = s.update("/a", b("more"), r4, None).await.unwrap();
    let kv = s.get("/a", None).await.unwrap().kv.unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r4, r5, 2)
    );
}

async fn create_fails_when_the_key_exists(h: &Harness) {
    let s = h.open().await;
    s.create("/k", b("first"), None).await.unwrap();
    let err = s.create("/k", b("second"), None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists { ref key } if key == "/k"),
        "{err}"
    );
    assert_eq!(s.get("/k", None).await.unwrap().kv.unwrap().value, "first");
}

async fn update_is_compare_and_swap(h: &Harness) {
    let s = h.open().await;
    let r1 = s.create("/k", b("v1"), None).await.unwrap();
    let r2 = s.update("/k", b("v2"), r1, None).await.unwrap();
    // A writer still holding r1 loses, and learns what won.
    match s.update("/k", b("stale"), r1, None).await.unwrap_err() {
        StoreError::Conflict {
            expected, current, ..
        } => {
            assert_eq!(expected, r1);
            assert_eq!(current.mod_revision, r2);
            assert_eq!(current.value, "v2");
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(s.get("/k", None).await.unwrap().kv.unwrap().value, "v2");
    let err = s.update("/missing", b("v"), r1, None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

async fn delete_is_guarded_and_returns_the_old_value(h: &Harness) {
    let s = h.open().await;
    let r1 = s.create("/k", b("v1"), None).await.unwrap();
    let err = s.delete("/k", Some(r1 - 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let (rev, prev) = s.delete("/k", Some(r1)).await.unwrap();
    assert!(rev > r1);
    assert_eq!((prev.key.as_str(), prev.mod_revision), ("/k", r1));
    assert_eq!(prev.value, "v1");
    assert!(s.get("/k", None).await.unwrap().kv.is_none());
    let err = s.delete("/k", None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let err = s.delete("/k", Some(rev)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

async fn get_reads_past_revisions(h: &Harness) {
    let s = h.open().await;
    let r1 = s.create("/k", b("v1"), None).await.unwrap();
    let r2 = s.update("/k", b("v2"), r1, None).await.unwrap();
    let (r3, _) = s.delete("/k", None).await.unwrap();
    let at = |r| s.get("/k", Some(r));
    assert!(at(r1 - 1).await.unwrap().kv.is_none());
    assert_eq!(at(r1).await.unwrap().kv.unwrap().value, "v1");
    let read = at(r2).await.unwrap();
    assert_eq!((read.revision, read.kv.unwrap().value), (r2, b("v2")));
    assert!(at(r3).await.unwrap().kv.is_none());
    let current = s.get("/k", None).await.unwrap();
    assert!(current.kv.is_none());
    assert_eq!(current.revision, r3);
}

async fn range_pages_are_consistent_at_one_revision(h: &Harness) {
    let s = h.open().await;
    for i in 0..25 {
        s.create(&format!("/pods/p{i:02}"), b(&i.to_string()), None)
            .await
            .unwrap();
    }
    // Neighbours outside the prefix must not appear.
    s.create("/pod", b("x"), None).await.unwrap();
    s.create("/pods0", b("x"), None).await.unwrap();

    let first_request = RangeRequest::prefix("/pods/").with_limit(10);
    let first = s.range(first_request.clone()).await.unwrap();
    assert_eq!(first.kvs.len(), 10);
    assert!(first.more);
    // Writes between pages: the later pages must not see them.
    s.create("/pods/p99", b("late"), None).await.unwrap();
    s.delete("/pods/p20", None).await.unwrap();
    let p15 = s.get("/pods/p15", None).await.unwrap().kv.unwrap();
    s.update("/pods/p15", b("changed"), p15.mod_revision, None)
        .await
        .unwrap();

    let mut pages = vec![first.kvs.clone()];
    let mut request = first.continuation(&first_request);
    while let Some(next) = request {
        assert_eq!(next.revision, Some(first.revision));
        let page = s.range(next.clone()).await.unwrap();
        assert_eq!(page.revision, first.revision);
        pages.push(page.kvs.clone());
        request = page.continuation(&next);
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    let listed: Vec<(String, Bytes)> = pages
        .into_iter()
        .flatten()
        .map(|kv| (kv.key, kv.value))
        .collect();
    let expected: Vec<(String, Bytes)> = (0..25)
        .map(|i| (format!("/pods/p{i:02}"), b(&i.to_string())))
        .collect();
    assert_eq!(listed, expected);

    let now = s.range(RangeRequest::prefix("/pods/")).await.unwrap();
    assert!(!now.more);
    assert_eq!(now.kvs.len(), 25);
    assert!(now.kvs.iter().any(|kv| kv.key == "/pods/p99"));
    assert!(now.kvs.windows(2).all(|w| w[0].key < w[1].key));
}

async fn concurrent_compare_and_swap_loses_no_update(h: &Harness) {
    let s: Arc<dyn Store> = Arc::from(h.open().await);
    s.create("/counter", b("0"), None).await.unwrap();
    const TASKS: usize = 8;
    const INCREMENTS: usize = 25;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..INCREMENTS {
                let mut kv = s.get("/counter", None).await.unwrap().kv.unwrap();
                loop {
                    let n: usize = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    let next = b(&(n + 1).to_string());
                    match s.update("/counter", next, kv.mod_revision, None).await {
                        Ok(_) => break,
                        Err(StoreError::Conflict { current, .. }) => {
                            conflicts += 1;
                            kv = *current;
                        }
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    let kv = s.get("/counter", None).await.unwrap().kv.unwrap();
    assert_eq!(kv.value, (TASKS * INCREMENTS).to_string());
    assert_eq!(kv.version as usize, TASKS * INCREMENTS + 1);
    // With 8 racing writers some CAS must have lost at least once, or nothing was tested.
    assert!(conflicts > 0, "no conflict happened");
}

async fn watch_delivers_every_change_once_in_order_across_writers(h: &Harness) {
    let s: Arc<dyn Store> = Arc::from(h.open().await);
    let start = s.current_revision().await.unwrap();
    let mut watch = s.watch(WatchRequest::prefix("/w/", start)).await.unwrap();
    const WRITERS: usize = 8;
    const WRITES: usize = 40;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("/w/{w}");
            let mut rev = s.create(&key, b("0"), None).await.unwrap();
            for i in 1..WRITES {
                rev = s.update(&key, b(&i.to_string()), rev, None).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = WRITERS * WRITES;
    let mut last = start;
    let mut per_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for _ in 0..total {
        let event = next_event(&mut watch).await;
        // Nothing else writes to this store, so revisions are contiguous.
        assert_eq!(
            event.revision(),
            last + 1,
            "revisions in order, none missing"
        );
        last = event.revision();
        let value = String::from_utf8(event.kv.value.to_vec()).unwrap();
        per_key.entry(event.kv.key).or_default().push(value);
    }
    assert_quiet(&mut watch).await;
    assert_eq!(per_key.len(), WRITERS);
    let expected: Vec<String> = (0..WRITES).map(|i| i.to_string()).collect();
    for values in per_key.values() {
        assert_eq!(values, &expected);
    }
}

async fn watch_replays_history_and_reports_previous_values(h: &Harness) {
    let s = h.open().await;
    let r0 = s.current_revision().await.unwrap();
    let r1 = s.create("/h/a", b("1"), None).await.unwrap();
    let r2 = s.update("/h/a", b("2"), r1, None).await.unwrap();
    let (r3, _) = s.delete("/h/a", Some(r2)).await.unwrap();
    // Starting in the past replays what happened since.
    let mut watch = s.watch(WatchRequest::prefix("/h/", r0)).await.unwrap();
    let created = next_event(&mut watch).await;
    assert_eq!((created.kind, created.revision()), (EventKind::Put, r1));
    assert!(created.prev.is_none());
    let updated = next_event(&mut watch).await;
    assert_eq!((updated.kind, updated.revision()), (EventKind::Put, r2));
    assert_eq!(updated.kv.value, "2");
    assert_eq!(updated.prev.as_ref().unwrap().value, "1");
    let deleted = next_event(&mut watch).await;
    assert_eq!((deleted.kind, deleted.revision()), (EventKind::Delete, r3));
    assert_eq!(deleted.kv.key, "/h/a");
    let prev = deleted.prev.unwrap();
    assert_eq!((prev.value, prev.mod_revision), (b("2"), r2));
    // Starting from the middle skips what came before.
    let mut watch = s.watch(WatchRequest::prefix("/h/", r2)).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), r3);
    // Then the replayed watch continues live.
    let r4 = s.create("/h/b", b("live"), None).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), r4);
}

async fn watch_only_sees_its_range(h: &Harness) {
    let s = h.open().await;
    let r0 = s.current_revision().await.unwrap();
    let mut pods = s.watch(WatchRequest::prefix("/pods/", r0)).await.unwrap();
    let mut one = s.watch(WatchRequest::key("/pods/a", r0)).await.unwrap();
    s.create("/pod", b("no"), None).await.unwrap();
    s.create("/pods/a", b("yes"), None).await.unwrap();
    s.create("/pods/a/b", b("prefix only"), None).await.unwrap();
    s.create("/pods0", b("no"), None).await.unwrap();
    s.create("/services/a", b("no"), None).await.unwrap();
    let keys = [
        next_event(&mut pods).await.kv.key,
        next_event(&mut pods).await.kv.key,
    ];
    assert_eq!(keys, ["/pods/a", "/pods/a/b"]);
    assert_quiet(&mut pods).await;
    assert_eq!(next_event(&mut one).await.kv.key, "/pods/a");
    assert_quiet(&mut one).await;
}

async fn watch_resumes_after_reconnect(h: &Harness) {
    let s = h.open().await;
    let start = s.current_revision().await.unwrap();
    let mut watch = s.watch(WatchRequest::prefix("/r/", start)).await.unwrap();
    for i in 0..10 {
        s.create(&format!("/r/{i}"), b("v"), None).await.unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next_event(&mut watch).await.revision());
    }
    // The client goes away mid-stream; writes continue through another connection.
    drop(watch);
    drop(s);
    let s = h.open().await;
    for i in 10..15 {
        s.create(&format!("/r/{i}"), b("v"), None).await.unwrap();
    }
    drop(s);
    let s = h.open().await;
    let last = *seen.last().unwrap();
    let mut watch = s.watch(WatchRequest::prefix("/r/", last)).await.unwrap();
    for _ in 5..15 {
        seen.push(next_event(&mut watch).await.revision());
    }
    assert_quiet(&mut watch).await;
    let unique: HashSet<Revision> = seen.iter().copied().collect();
    assert_eq!(unique.len(), 15, "every change exactly once: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

async fn compaction_discards_old_history(h: &Harness) {
    let s = h.open().await;
    let r1 = s.create("/c/a", b("1"), None).await.unwrap();
    let r2 = s.update("/c/a", b("2"), r1, None).await.unwrap();
    let r3 = s.create("/c/b", b("1"), None).await.unwrap();
    let r4 = s.update("/c/a", b("3"), r2, None).await.unwrap();
    s.compact(r3).await.unwrap();

    let err = s.get("/c/a", Some(r2)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Compacted { requested, .. } if requested == r2),
        "{err}"
    );
    let err = s
        .range(RangeRequest::prefix("/c/").at_revision(r1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err}");
    let err = s
        .watch(WatchRequest::prefix("/c/", r1))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err}");

    // The compaction revision itself and later stay readable and watchable.
    assert_eq!(
        s.get("/c/a", Some(r3)).await.unwrap().kv.unwrap().value,
        "2"
    );
    let at_r3 = s
        .range(RangeRequest::prefix("/c/").at_revision(r3))
        .await
        .unwrap();
    assert_eq!(at_r3.kvs.len(), 2);
    let mut watch = s.watch(WatchRequest::prefix("/c/", r3)).await.unwrap();
    let event = next_event(&mut watch).await;
    assert_eq!(event.revision(), r4);
    assert_eq!(event.prev.unwrap().mod_revision, r2);
    // Compacting again to the same revision is harmless.
    s.compact(r3).await.unwrap();
    let err = s.compact(r4 + 100).await.unwrap_err();
    assert!(matches!(err, StoreError::FutureRevision { .. }), "{err}");
}

async fn keys_with_a_ttl_expire_with_a_delete_event(h: &Harness) {
    let s = h.open().await;
    let start = s.current_revision().await.unwrap();
    let mut watch = s
        .watch(WatchRequest::prefix("/events/", start))
        .await
        .unwrap();
    let created = s
        .create("/events/e1", b("event"), Some(Duration::from_secs(1)))
        .await
        .unwrap();
    s.create("/events/keep", b("no ttl"), None).await.unwrap();
    assert!(s.get("/events/e1", None).await.unwrap().kv.is_some());
    assert_eq!(next_event(&mut watch).await.revision(), created);
    next_event(&mut watch).await;

    // etcd's minimum lease is a couple of seconds; the embedded store expires within ~0.2 s.
    let deadline = Instant::now() + Duration::from_secs(15);
    let expired = loop {
        let event = tokio::time::timeout_at(deadline.into(), watch.next())
            .await
            .expect("the key expires")
            .unwrap()
            .unwrap();
        if event.kind == EventKind::Delete {
            break event;
        }
    };
    assert_eq!(expired.kv.key, "/events/e1");
    assert_eq!(expired.prev.unwrap().value, "event");
    assert!(s.get("/events/e1", None).await.unwrap().kv.is_none());
    assert!(s.get("/events/keep", None).await.unwrap().kv.is_some());
}

async fn bad_input_is_rejected_and_leaves_the_store_intact(h: &Harness) {
    let s = h.open().await;
    let rev = s.create("/ok", b("v"), None).await.unwrap();
    let huge_key = "/k".repeat(5000);
    let huge_value = Bytes::from(vec![b'x'; 2 << 20]);
    let inverted = RangeRequest {
        start: "/b".into(),
        end: "/a".into(),
        ..Default::default()
    };
    let errors = [
        s.create("", b("v"), None).await.unwrap_err(),
        s.get("", None).await.unwrap_err(),
        s.create(&huge_key, b("v"), None).await.unwrap_err(),
        s.create("/big", huge_value.clone(), None)
            .await
            .unwrap_err(),
        s.update("/ok", huge_value, rev, None).await.unwrap_err(),
        s.create("/ttl", b("v"), Some(Duration::ZERO))
            .await
            .unwrap_err(),
        s.range(inverted).await.unwrap_err(),
        s.watch(WatchRequest::prefix("/", rev + 1000))
            .await
            .map(|_| ())
            .unwrap_err(),
        s.get("/ok", Some(rev + 1000)).await.unwrap_err(),
    ];
    let kinds: Vec<&str> = errors
        .iter()
        .map(|e| match e {
            StoreError::EmptyKey => "empty",
            StoreError::KeyTooLarge { .. } => "key",
            StoreError::ValueTooLarge { .. } => "value",
            StoreError::InvalidTtl(_) => "ttl",
            StoreError::InvalidRange { .. } => "range",
            StoreError::FutureRevision { .. } => "future",
            other => panic!("untyped error for bad input: {other}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "empty", "empty", "key", "value", "value", "ttl", "range", "future", "future"
        ]
    );
    // Nothing changed.
    assert_eq!(s.current_revision().await.unwrap(), rev);
    assert_eq!(s.get("/ok", None).await.unwrap().kv.unwrap().value, "v");
}
