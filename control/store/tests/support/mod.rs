//! Test harness for the store: opens either backend behind `dyn Store`, and runs a real etcd
//! (Debian's `etcd-server`) on loopback for the etcd backend.
//!
//! `cargo xtask test` starts one etcd for the whole run and passes its URL in `SKIFF_TEST_ETCD`.
//! Without it (a plain `cargo test`), the harness starts its own etcd once per test process; that
//! etcd is killed when the process exits, and its data lives under the target directory.
#![allow(dead_code)]

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

/// The URL of the etcd the tests use (see `skiff_testenv::shared_etcd`).
pub fn etcd_endpoint() -> String {
    skiff_testenv::shared_etcd(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")))
}
