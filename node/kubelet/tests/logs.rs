//! The kubelet API's `containerLogs` over a pod log directory written by hand in the CRI
//! format: whole logs, tailLines, previous, timestamps, sinceTime, limitBytes, follow (lines
//! appended while streaming arrive, until the container restarts), and 404s for what is
//! unknown. No root needed.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Checks;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T1: &str = "2026-11-25T21:00:00.000000001Z";
const T2: &str = "2026-11-25T21:00:01.000000002Z";
const T3: &str = "2026-11-25T21:00:02.000000003Z";

fn write_log(path: &Path, records: &[(&str, &str, &str, &str)]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for (time, stream, tag, content) in records {
        writeln!(file, "{time} {stream} {tag} {content}").unwrap();
    }
}

/// One request over HTTP/1.0 (the body ends with the connection): status and body.
async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    common::http10_get(&mut stream, path).await
}

/// The kubelet API over a log root holding pod `default/web` (its container `app`: a first
/// attempt that died, the running second one) and `default/web-2`; stopped by `stop`.
struct LogServer {
    address: SocketAddr,
    /// The running container's log directory.
    container: std::path::PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl LogServer {
    async fn start() -> LogServer {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let container = root.join("default_web_1234-uid").join("app");
        write_log(
            &container.join("0.log"),
            &[
                (T1, "stdout", "F", "first run"),
                (T2, "stderr", "F", "it died"),
            ],
        );
        write_log(
            &container.join("1.log"),
            &[
                (T1, "stdout", "F", "one"),
                (T2, "stdout", "P", "tw"),
                (T2, "stdout", "F", "o"),
                (T3, "stderr", "F", "three"),
            ],
        );
        // Another pod whose name shares a prefix is not ours.
        write_log(
            &root.join("default_web-2_999").join("app").join("0.log"),
            &[(T1, "stdout", "F", "not mine")],
        );

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(skiff_kubelet::server::serve(
            listener,
            skiff_kubelet::server::Sources::logs(root.clone()),
            async {
                let _ = stopped.await;
            },
        ));
        LogServer {
            address,
            container,
            stop,
            server,
            _dir: dir,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(5), self.server)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

const LOGS: &str = "/containerLogs/default/web/app";

/// Requests and the whole answer they get: (what, path, status, body).
fn answers() -> Vec<(&'static str, String, u16, String)> {
    let logs = |query: &str| format!("{LOGS}{query}");
    vec![
        ("healthz", "/healthz".into(), 200, "ok".into()),
        ("the whole log", logs(""), 200, "one\ntwo\nthree\n".into()),
        (
            "tailLines",
            logs("?tailLines=2"),
            200,
            "two\nthree\n".into(),
        ),
        ("tailLines=0", logs("?tailLines=0"), 200, String::new()),
        (
            "previous",
            logs("?previous=true"),
            200,
            "first run\nit died\n".into(),
        ),
        (
            "timestamps",
            logs("?timestamps=true&tailLines=2"),
            200,
            format!("{T2} two\n{T3} three\n"),
        ),
        (
            "sinceTime",
            logs("?sinceTime=2026-11-25T21:00:01Z"),
            200,
            "two\nthree\n".into(),
        ),
        ("limitBytes", logs("?limitBytes=6"), 200, "one\ntw".into()),
        (
            "a pod whose name shares a prefix",
            "/containerLogs/default/web-2/app".into(),
            200,
            "not mine\n".into(),
        ),
    ]
}

/// Requests refused: (what, path, status, what the body mentions).
fn refusals() -> Vec<(&'static str, String, u16, &'static str)> {
    vec![
        (
            "an unknown pod",
            "/containerLogs/default/nope/app".into(),
            404,
            "default/nope",
        ),
        (
            "an unknown container",
            "/containerLogs/default/web/other".into(),
            404,
            "\"other\"",
        ),
        (
            "no previous attempt",
            "/containerLogs/default/web-2/app?previous=true".into(),
            404,
            "previous",
        ),
        ("a bad tailLines", format!("{LOGS}?tailLines=x"), 400, ""),
    ]
}

/// Each request its own check, all reported together.
#[tokio::test]
async fn container_logs_from_cri_files() {
    let server = LogServer::start().await;
    let mut checks = Checks::new();
    for (what, path, code, body) in answers() {
        let got = get(server.address, &path).await;
        checks.run(what, || assert_eq!(got, (code, body), "{path}"));
    }
    for (what, path, code, mentioned) in refusals() {
        let (got, body) = get(server.address, &path).await;
        checks.run(what, || {
            assert_eq!(got, code, "{path}: {body}");
            assert!(body.contains(mentioned), "{body}");
        });
    }
    server.stop().await;
    checks.finish();
}

/// follow: the existing tail, then lines as they are appended (a partial record only once its
/// line is complete in the file), until the container restarts.
#[tokio::test]
async fn following_a_log_streams_appended_lines() {
    let server = LogServer::start().await;
    let container = server.container.clone();
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream
        .write_all(format!("GET {LOGS}?follow=true&tailLines=1 HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut seen = String::new();
    let read_until = async |stream: &mut TcpStream, seen: &mut String, want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !seen.ends_with(want) {
            let mut buf = [0u8; 1024];
            let left = deadline.saturating_duration_since(Instant::now());
            let n = tokio::time::timeout(left, stream.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("never got {want:?}; got {seen:?}"))
                .unwrap();
            assert!(n > 0, "the stream ended early: {seen:?}");
            seen.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
    };
    read_until(&mut stream, &mut seen, "\r\n\r\nthree\n").await;
    write_log(
        &container.join("1.log"),
        &[(T3, "stdout", "F", "four"), (T3, "stdout", "P", "fi")],
    );
    read_until(&mut stream, &mut seen, "three\nfour\nfi").await;
    write_log(&container.join("1.log"), &[(T3, "stdout", "F", "ve")]);
    read_until(&mut stream, &mut seen, "three\nfour\nfive\n").await;
    // The container restarts: the followed attempt's stream ends.
    write_log(&container.join("2.log"), &[(T3, "stdout", "F", "again")]);
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .expect("the followed stream ends after a restart")
        .unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    drop(stream);
    server.stop().await;
}
