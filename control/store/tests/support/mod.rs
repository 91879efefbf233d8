//! Test harness for the store: opens either backend behind `dyn Store`, and runs a real etcd
//! (Debian's `etcd-server`) on loopback for the etcd backend.
//!
//! `cargo xtask test` starts one etcd for the whole run and passes its URL in `SKIFF_TEST_ETCD`.
//! Without it (a plain `cargo test`), the harness starts its own etcd once per test process; that
//! etcd is killed when the process exits, and its data lives under the target directory.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use skiff_store::{EmbeddedConfig, EmbeddedStore, EtcdConfig, EtcdStore, Store};

/// One backend instance under test: reopening it gives a new handle on the same data.
pub enum Harness {
    Embedded { dir: tempfile::TempDir },
    Etcd { endpoint: String, prefix: String },
}

impl Harness {
    pub fn embedded() -> Harness {
        Harness::Embedded {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// An etcd-backed harness whose keys live under a prefix unique to `test`.
    pub fn etcd(test: &str) -> Harness {
        let nonce: u64 = rand::random();
        Harness::Etcd {
            endpoint: etcd_endpoint(),
            prefix: format!("/skiff-test/{test}-{nonce:x}"),
        }
    }

    /// Opens a new store handle on this harness's data. For the embedded store, any previous
    /// handle must have been dropped (it holds the directory lock).
    pub async fn open(&self) -> Box<dyn Store> {
        match self {
            Harness::Embedded { dir } => {
                let mut config = EmbeddedConfig::new(dir.path());
                // Tests compact explicitly; no background compaction under them.
                config.history_window = 0;
                Box::new(EmbeddedStore::open(config).expect("open embedded store"))
            }
            Harness::Etcd { endpoint, prefix } => Box::new(
                EtcdStore::connect(EtcdConfig::new(endpoint, prefix))
                    .await
                    .expect("connect to etcd"),
            ),
        }
    }
}

/// Serialises etcd-backed tests: they share one etcd, whose revision counter and compaction
/// are global, and several tests assert exact revision arithmetic.
pub async fn etcd_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The URL of the etcd the tests use, starting one if the environment names none.
pub fn etcd_endpoint() -> String {
    if let Ok(endpoint) = std::env::var("SKIFF_TEST_ETCD") {
        return endpoint;
    }
    static SPAWNED: OnceLock<String> = OnceLock::new();
    SPAWNED.get_or_init(spawn_etcd).clone()
}

/// Starts etcd from a thread that lives as long as the process, so the kernel stops etcd when
/// the test process exits (the guard's own drop never runs for a static).
fn spawn_etcd() -> String {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("etcd-{}", std::process::id()));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || match skiff_testenv::Etcd::start(&dir) {
        Ok(etcd) => {
            tx.send(Ok(etcd.endpoint().to_owned())).unwrap();
            loop {
                std::thread::park();
            }
        }
        Err(err) => tx.send(Err(err)).unwrap(),
    });
    rx.recv().unwrap().expect("start etcd for the tests")
}
