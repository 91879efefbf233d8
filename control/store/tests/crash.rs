//! Crash safety of the embedded store: a child process writes and acknowledges as fast as it
//! can and is killed with SIGKILL at a random moment, several rounds over the same directory.
//! After every kill, each acknowledged write must be present, and the revision history must
//! run without holes or duplicates.
//!
//! The child is this same test binary, re-run on the ignored `crash_child` test with the data
//! directory in `SKIFF_CRASH_DIR`; it prints `ack <key> <revision> <value>` per acknowledged write.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rand::Rng;
use skiff_store::{EmbeddedConfig, EmbeddedStore, Revision, Store, WatchRequest};

const ROUNDS: usize = 8;
const WRITERS: usize = 16;

fn config(dir: &std::path::Path) -> EmbeddedConfig {
    let mut config = EmbeddedConfig::new(dir);
    // Keep all history so every acknowledged revision can be checked; small segments so
    // kills also land in the middle of snapshot checkpoints.
    config.history_window = 0;
    config.segment_bytes = 256 << 10;
    config
}

#[derive(Debug)]
struct Ack {
    key: String,
    revision: Revision,
    value: String,
}

#[test]
#[ignore = "the child process of acknowledged_writes_survive_sigkill"]
fn crash_child() {
    let dir = std::env::var("SKIFF_CRASH_DIR").expect("run by the crash test");
    let round: usize = std::env::var("SKIFF_CRASH_ROUND").unwrap().parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let store = Arc::new(EmbeddedStore::open(config(dir.as_ref())).unwrap());
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                // Each writer creates keys and updates each a few times, forever.
                for n in 0.. {
                    let key = format!("/crash/{round}/{w}/{n}");
                    let mut rev = 0;
                    for step in 0..3 {
                        let value = format!("{key}#{step}");
                        let bytes = Bytes::from(value.clone());
                        rev = match step {
                            0 => store.create(&key, bytes, None).await,
                            _ => store.update(&key, bytes, rev, None).await,
                        }
                        .unwrap();
                        println!("ack {key} {rev} {value}");
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// Runs one child until it is killed after `run_for`; returns the acknowledgements it printed.
fn run_child(dir: &std::path::Path, round: usize, run_for: Duration) -> Vec<Ack> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SKIFF_CRASH_DIR", dir)
        .env("SKIFF_CRASH_ROUND", round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut fields = line.split(' ');
            if fields.next() != Some("ack") {
                continue;
            }
            let ack = Ack {
                key: fields.next().unwrap().to_owned(),
                revision: fields.next().unwrap().parse().unwrap(),
                value: fields.next().unwrap().to_owned(),
            };
            if tx.send(ack).is_err() {
                break;
            }
        }
    });
    // Wait for the first acknowledgement so the kill lands while writes are flowing.
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("child writes");
    std::thread::sleep(run_for);
    // Child::kill is SIGKILL to the child's PID: no chance to flush or clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    std::iter::once(first).chain(rx.try_iter()).collect()
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut total_acks = 0;
    for round in 0..ROUNDS {
        let run_for = Duration::from_millis(rng.random_range(20..400));
        let acks = run_child(dir.path(), round, run_for);
        total_acks += acks.len();

        let store = EmbeddedStore::open(config(dir.path())).unwrap();
        for ack in &acks {
            let kv = store
                .get(&ack.key, Some(ack.revision))
                .await
                .unwrap()
                .kv
                .unwrap_or_else(|| panic!("round {round}: acknowledged {ack:?} is lost"));
            assert_eq!(
                (kv.mod_revision, kv.value),
                (ack.revision, Bytes::from(ack.value.clone()))
            );
        }
        // The whole history: one event per revision, from the first write to the last.
        let current = store.current_revision().await.unwrap();
        let mut watch = store.watch(WatchRequest::prefix("/", 0)).await.unwrap();
        let mut revisions = BTreeSet::new();
        let mut expected = 2;
        while expected <= current {
            let event = watch.next().await.unwrap().unwrap();
            assert_eq!(
                event.revision(),
                expected,
                "round {round}: hole or duplicate in history"
            );
            revisions.insert(event.revision());
            expected += 1;
        }
        assert!(acks.iter().all(|a| revisions.contains(&a.revision)));
    }
    // Sanity: the rounds actually wrote under load.
    assert!(
        total_acks > ROUNDS * 10,
        "only {total_acks} acknowledged writes"
    );
}
