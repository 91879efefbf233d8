//! Test harness for the store: opens either backend behind `dyn Store`, and runs a real etcd
//! (Debian's `etcd-server`) on loopback for the etcd backend.
//!
//! `cargo xtask test` starts one etcd for the whole run and passes its URL in `SKIFF_TEST_ETCD`.
//! Without it (a plain `cargo test`), the harness starts its own etcd once per test process; that
//! etcd is killed when the process exits (`PR_SET_PDEATHSIG`), and its data lives under the
//! target directory.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn spawn_etcd() -> String {
    let client = free_port();
    let peer = free_port();
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    remove_stale_data_dirs(&tmp);
    let dir = tmp.join(format!("etcd-{}", std::process::id()));
    let endpoint = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let mut command = Command::new("etcd");
    command
        .args(["--name", "skiff-test", "--data-dir"])
        .arg(&dir)
        .args([
            "--listen-client-urls",
            &endpoint,
            "--advertise-client-urls",
            &endpoint,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .arg(format!("--initial-cluster=skiff-test={peer_url}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill etcd when the thread
    // that spawned it ends, which is the parked thread below, i.e. when this process exits.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let child = command.spawn();
        let ok = child.is_ok();
        tx.send(child.map(|_| ())).unwrap();
        if ok {
            loop {
                std::thread::park();
            }
        }
    });
    rx.recv()
        .unwrap()
        .expect("start etcd (install it with `cargo xtask setup`)");
    wait_until_serving(client);
    endpoint
}

/// Deletes the data directories of etcds started by test processes that have exited.
fn remove_stale_data_dirs(tmp: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix("etcd-"));
        if pid.is_some_and(|pid| !std::path::Path::new("/proc").join(pid).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn wait_until_serving(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if health_check(port).is_ok_and(|body| body.contains("\"health\":\"true\"")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("etcd did not become healthy on port {port}");
}

/// `GET /health` over a plain socket (etcd answers HTTP/1.1 on its client port).
fn health_check(port: u16) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}
