//! The kubelet's outgoing HTTP: httpGet probes and lifecycle hooks ([`crate::probe`]) and the
//! static-pod URL source ([`crate::static_pods`]). hyper's HTTP/1.1 over a fresh connection per
//! request (Kubernetes' prober disables keep-alives), written only from parts the `http` crate
//! validated: a URI path and header names and values without CR/LF or other control bytes, so
//! nothing from a pod spec is ever written to the wire raw. Bodies are read up to a limit and
//! no further; redirects are followed as Go's `http.Client` follows them (301, 302, 303, 307,
//! 308 with a Location, at most [`MAX_REQUESTS`] requests), optionally only to the same host.

use std::fmt;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Bytes};
use hyper_util::rt::TokioIo;

/// Requests one fetch makes at most, redirects included (Go's `http.Client`, and Kubernetes'
/// `RedirectChecker`: "stopped after 10 redirects").
pub const MAX_REQUESTS: usize = 10;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not an `http://` or `https://` URL this client can request.
    #[error("{0}")]
    Url(String),
    /// The TCP connection failed.
    #[error("dial tcp {address}: {source}")]
    Dial {
        address: String,
        source: std::io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {address}: {source}")]
    Tls {
        address: String,
        source: std::io::Error,
    },
    /// HTTPS where the policy allows only HTTP.
    #[error("{0}: HTTPS is not allowed here")]
    HttpsRefused(Url),
    /// The exchange itself (a malformed answer, a connection closed early).
    #[error("{url}: {source}")]
    Http { url: Url, source: hyper::Error },
    /// Redirected more than [`MAX_REQUESTS`] allows.
    #[error("{0}: stopped after {MAX_REQUESTS} redirects")]
    TooManyRedirects(Url),
    /// The whole exchange took longer than the policy's timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// `http` or `https`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// An absolute URL, checked: a host that makes a valid authority, an origin-form path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// A DNS name or an IP address (IPv6 without brackets): what is dialled.
    pub host: String,
    pub port: u16,
    /// The request target (`/path?query`).
    pub path: PathAndQuery,
}

impl Url {
    /// The URL of `scheme://host:port` + `path`, or why it is none (a host that is not a name
    /// or an address, a path that is not a URI path: spaces, CR/LF and other control bytes).
    pub fn new(scheme: Scheme, host: &str, port: u16, path: &str) -> Result<Url, Error> {
        let url = Url {
            scheme,
            host: host.to_owned(),
            port,
            path: PathAndQuery::from_static("/"),
        };
        let authority = url.authority();
        if host.is_empty() || host.contains(['@', '/', '[', ']']) {
            return Err(Error::Url(format!("invalid host {host:?}")));
        }
        Authority::try_from(authority.as_str())
            .map_err(|_| Error::Url(format!("invalid host {host:?}")))?;
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('/') => p.to_owned(),
            // Go's URL puts a host and a relative path together with a `/`.
            p => format!("/{p}"),
        };
        let path = PathAndQuery::try_from(path.as_str())
            .map_err(|_| Error::Url(format!("{path:?} is not a valid URI path")))?;
        Ok(Url { path, ..url })
    }

    /// Parses an absolute `http://` or `https://` URL (no user info).
    pub fn parse(url: &str) -> Result<Url, Error> {
        let bad = || Error::Url(format!("{url:?} is not an http:// or https:// URL"));
        let uri = Uri::try_from(url).map_err(|_| bad())?;
        let scheme = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            Some(other) => {
                return Err(Error::Url(format!("unsupported protocol scheme {other:?}")));
            }
            None => return Err(bad()),
        };
        let authority = uri.authority().ok_or_else(bad)?;
        if authority.as_str().contains('@') {
            return Err(bad());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(scheme.default_port());
        let path = uri.path_and_query().map_or("/", PathAndQuery::as_str);
        Url::new(scheme, host, port, path)
    }

    /// `host:port`, an IPv6 address in brackets: the default Host header.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A Location header resolved against this URL (RFC 3986 §5.2, as Go's `URL.Parse`); the
    /// fragment is dropped (it is never sent).
    fn join(&self, location: &str) -> Result<Url, Error> {
        let location = location.split('#').next().unwrap_or_default();
        if has_scheme(location) {
            return Url::parse(location);
        }
        if location.starts_with("//") {
            return Url::parse(&format!("{}:{location}", self.scheme.name()));
        }
        let base = self.path.path();
        let target = if location.is_empty() {
            self.path.as_str().to_owned()
        } else if location.starts_with('?') {
            format!("{base}{location}")
        } else if location.starts_with('/') {
            location.to_owned()
        } else {
            let directory = &base[..base.rfind('/').map_or(0, |at| at + 1)];
            format!("{directory}{location}")
        };
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target.as_str(), None),
        };
        let mut resolved = remove_dot_segments(path);
        if let Some(query) = query {
            resolved = format!("{resolved}?{query}");
        }
        Url::new(self.scheme, &self.host, self.port, &resolved)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.name(),
            self.authority(),
            self.path
        )
    }
}

/// Whether a URI reference starts with a scheme (`letter *(letter / digit / + / - / .) :`).
fn has_scheme(reference: &str) -> bool {
    let Some((scheme, _)) = reference.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// RFC 3986 §5.2.4 on an absolute path: `.` and `..` segments resolved.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    out.pop();
                }
                // A trailing dot segment still names a directory.
                if last {
                    out.push("");
                }
            }
            segment => out.push(segment),
        }
    }
    format!("/{}", out.join("/"))
}

/// Which redirects are followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redirects {
    /// Only to the first URL's host name (any port or scheme): Kubernetes' probes and hooks
    /// (`followNonLocalRedirects` false). A redirect elsewhere is returned as the answer.
    SameHost,
    /// To any host: Go's default, which the static-pod URL source uses.
    AnyHost,
}

/// What an HTTPS URL gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    /// TLS accepting any certificate (handshake signatures still checked): Kubernetes' prober
    /// and hook client (`InsecureSkipVerify`), since pods serve self-signed certificates.
    AnyCertificate,
    /// No HTTPS (a source whose answers must be trusted, while the kubelet has no trust store).
    Refused,
}

/// How a fetch is made and its answer read.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Bounds the whole fetch: connects, TLS, redirects and the body.
    pub timeout: Option<Duration>,
    /// Body bytes read at most; what is beyond is left unread.
    pub body_limit: usize,
    pub redirects: Redirects,
    pub tls: Tls,
}

/// The final answer of a fetch.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    /// At most the policy's `body_limit` bytes.
    pub body: Bytes,
    /// The body reached the limit before its end (as Kubernetes' `ReadAtMost`, a body of
    /// exactly the limit counts).
    pub truncated: bool,
    /// Who answered (after redirects).
    pub url: Url,
}

/// GETs `url` with `headers` (a `Host` among them sets the Host header; `Connection: close`
/// is added) under `policy`.
pub async fn get(url: Url, headers: HeaderMap, policy: &Policy) -> Result<Response, Error> {
    let fetch = fetch(url, headers, policy);
    match policy.timeout {
        Some(timeout) => tokio::time::timeout(timeout, fetch)
            .await
            .map_err(|_| Error::Timeout(timeout))?,
        None => fetch.await,
    }
}

async fn fetch(mut url: Url, mut headers: HeaderMap, policy: &Policy) -> Result<Response, Error> {
    // Go's `req.Host`: the first Host given, unless empty.
    let mut host = headers
        .get(header::HOST)
        .filter(|value| !value.is_empty())
        .cloned();
    headers.remove(header::HOST);
    headers
        .entry(header::CONNECTION)
        .or_insert(HeaderValue::from_static("close"));
    let first_host = url.host.clone();
    let mut requests = 0;
    loop {
        let (mut answer, _connection) = exchange(&url, &headers, host.as_ref(), policy.tls).await?;
        requests += 1;
        let location = answer
            .headers()
            .get(header::LOCATION)
            .filter(|_| is_redirect(answer.status()))
            .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
        if let Some(location) = location {
            let next = url.join(&location)?;
            if policy.redirects == Redirects::AnyHost || next.host == first_host {
                if requests >= MAX_REQUESTS {
                    return Err(Error::TooManyRedirects(next));
                }
                // Go keeps a Host given across relative redirects only.
                if has_scheme(&location) || location.starts_with("//") {
                    host = None;
                }
                url = next;
                continue;
            }
        }
        let (body, truncated) = read_limited(answer.body_mut(), policy.body_limit)
            .await
            .map_err(|source| Error::Http {
                url: url.clone(),
                source,
            })?;
        return Ok(Response {
            status: answer.status(),
            body,
            truncated,
            url,
        });
    }
}

/// The statuses Go's client follows for a GET.
fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Aborts the connection's task when dropped: once the answer is read (or given up on), the
/// connection is not read any further.
struct Connection(tokio::task::JoinHandle<()>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One request on a new connection: the answer, its body still to read from the connection.
async fn exchange(
    url: &Url,
    headers: &HeaderMap,
    host: Option<&HeaderValue>,
    tls: Tls,
) -> Result<(http::Response<hyper::body::Incoming>, Connection), Error> {
    if url.scheme == Scheme::Https && tls == Tls::Refused {
        return Err(Error::HttpsRefused(url.clone()));
    }
    let address = url.authority();
    let stream = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|source| Error::Dial {
            address: address.clone(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let host = match host {
        Some(host) => host.clone(),
        // `Url::new` checked that the authority is valid.
        None => HeaderValue::try_from(address.as_str())
            .map_err(|_| Error::Url(format!("invalid host {:?}", url.host)))?,
    };
    let mut request = http::Request::new(Empty::<Bytes>::new());
    *request.uri_mut() = Uri::from(url.path.clone());
    request.headers_mut().insert(header::HOST, host);
    for (name, value) in headers {
        request.headers_mut().append(name, value.clone());
    }
    match url.scheme {
        Scheme::Http => send(stream, request, url).await,
        Scheme::Https => {
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|_| Error::Url(format!("invalid host {:?}", url.host)))?;
            let stream = skiff_unverified_tls::connector()
                .connect(name, stream)
                .await
                .map_err(|source| Error::Tls { address, source })?;
            send(stream, request, url).await
        }
    }
}

async fn send<S>(
    stream: S,
    request: http::Request<Empty<Bytes>>,
    url: &Url,
) -> Result<(http::Response<hyper::body::Incoming>, Connection), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let failed = |source| Error::Http {
        url: url.clone(),
        source,
    };
    // Header names as Go writes them (`X-Custom`), for servers that care.
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(failed)?;
    let connection = Connection(tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "probe connection");
        }
    }));
    let answer = sender.send_request(request).await.map_err(failed)?;
    Ok((answer, connection))
}

/// At most `limit` bytes of `body`, and whether it went on (Kubernetes' `ReadAtMost`: the limit
/// reached before the end). Nothing past the frame that reaches the limit is read.
pub async fn read_limited<B>(body: &mut B, limit: usize) -> Result<(Bytes, bool), B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(frame) = body.frame().await else {
            return Ok((out.into(), false));
        };
        if let Ok(data) = frame?.into_data() {
            let room = limit - out.len();
            if data.len() > room {
                out.extend_from_slice(&data[..room]);
                return Ok((out.into(), true));
            }
            out.extend_from_slice(&data);
        }
    }
    let ended = body.is_end_stream();
    Ok((out.into(), !ended))
}

/// A local HTTP(S) server for tests: it records each request's head and answers from a
/// closure.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    /// How a connection is answered.
    pub enum Reply {
        /// These bytes, then the connection is closed.
        Close(Vec<u8>),
        /// These bytes, then the connection is held open (a body that never ends).
        Hold(Vec<u8>),
    }

    /// An HTTP/1.1 answer with `Content-Length` (unless given) and `body`.
    pub fn answer(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {status} Whatever\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        out
    }

    type Answer = dyn Fn(&str) -> Reply + Send + Sync;

    pub struct TestServer {
        pub port: u16,
        requests: Arc<Mutex<Vec<String>>>,
        connections: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl TestServer {
        /// Serves on 127.0.0.1 (over TLS with `tls`), answering each request head with `reply`.
        pub async fn start(
            tls: Option<Arc<rustls::ServerConfig>>,
            reply: impl Fn(&str) -> Reply + Send + Sync + 'static,
        ) -> TestServer {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let requests = Arc::new(Mutex::new(Vec::new()));
            let connections = Arc::new(AtomicUsize::new(0));
            let reply: Arc<Answer> = Arc::new(reply);
            let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
            let (seen, count) = (requests.clone(), connections.clone());
            let task = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    count.fetch_add(1, Ordering::SeqCst);
                    let (seen, reply, acceptor) = (seen.clone(), reply.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        match acceptor {
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    handle(stream, &seen, &*reply).await;
                                }
                            }
                            None => handle(stream, &seen, &*reply).await,
                        }
                    });
                }
            });
            TestServer {
                port,
                requests,
                connections,
                task,
            }
        }

        /// The request heads received so far.
        pub fn requests(&self) -> Vec<String> {
            self.requests.lock().unwrap().clone()
        }

        /// The connections accepted so far.
        pub fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
        mut stream: S,
        seen: &Mutex<Vec<String>>,
        reply: &Answer,
    ) {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        seen.lock().unwrap().push(head.clone());
        match reply(&head) {
            Reply::Close(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
            }
            Reply::Hold(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.flush().await;
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Reply, TestServer, answer};
    use super::*;
    use std::sync::Arc;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn urls_are_checked_and_printed() {
        let u = url("http://10.0.0.5:8080/healthz?full=1");
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (Scheme::Http, "10.0.0.5", 8080)
        );
        assert_eq!(u.path.as_str(), "/healthz?full=1");
        assert_eq!(url("https://[fd00::1]/").authority(), "[fd00::1]:443");
        assert_eq!(
            url("http://web.example").to_string(),
            "http://web.example:80/"
        );
        assert_eq!(url("http://h:1/p#frag").path.as_str(), "/p");
        for bad in [
            "ftp://h/",
            "h:80/",
            "/path",
            "http://user:pass@h/",
            "http://h/a b",
            "http://h/a\r\nX: y",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Url::new(Scheme::Http, "::1", 80, "ready")
                .unwrap()
                .to_string(),
            "http://[::1]:80/ready"
        );
        assert!(Url::new(Scheme::Http, "h\r\nX: y", 80, "/").is_err());
        assert!(Url::new(Scheme::Http, "h", 80, "/a\nb").is_err());
        assert!(Url::new(Scheme::Http, "h", 80, "/a b").is_err());
    }

    #[test]
    fn locations_resolve_against_the_request() {
        let base = url("http://10.0.0.5:8080/a/b/c?q=1");
        let join = |l: &str| base.join(l).unwrap().to_string();
        assert_eq!(join("/x"), "http://10.0.0.5:8080/x");
        assert_eq!(join("d"), "http://10.0.0.5:8080/a/b/d");
        assert_eq!(join("../d?z"), "http://10.0.0.5:8080/a/d?z");
        assert_eq!(join("./"), "http://10.0.0.5:8080/a/b/");
        assert_eq!(join("../../../../d"), "http://10.0.0.5:8080/d");
        assert_eq!(join("?r=2"), "http://10.0.0.5:8080/a/b/c?r=2");
        assert_eq!(join(""), "http://10.0.0.5:8080/a/b/c?q=1");
        assert_eq!(join("#top"), "http://10.0.0.5:8080/a/b/c?q=1");
        assert_eq!(join("//other:81/y"), "http://other:81/y");
        assert_eq!(join("https://10.0.0.5/z"), "https://10.0.0.5:443/z");
        assert!(base.join("/a b").is_err());
    }

    /// A body of 1 KiB frames that counts the frames taken from it.
    fn counted(
        frames: usize,
    ) -> (
        impl Body<Data = Bytes, Error = std::io::Error> + Unpin,
        Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use futures::StreamExt;
        use std::sync::atomic::Ordering;
        let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = taken.clone();
        let stream = futures::stream::iter(0..frames).map(move |_| {
            count.fetch_add(1, Ordering::SeqCst);
            Ok(hyper::body::Frame::data(Bytes::from(vec![b'x'; 1024])))
        });
        (http_body_util::StreamBody::new(stream), taken)
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_the_limit_and_no_further() {
        // 1 MiB offered: 10 KiB read, and not a frame more.
        let (mut body, taken) = counted(1024);
        let (read, truncated) = read_limited(&mut body, 10 * 1024).await.unwrap();
        assert_eq!(read.len(), 10 * 1024);
        assert!(truncated);
        assert_eq!(taken.load(std::sync::atomic::Ordering::SeqCst), 10);
        // The limit inside a frame, the body ending with it: still more than the limit.
        let (mut body, _) = counted(3);
        let (read, truncated) = read_limited(&mut body, 2 * 1024 + 1).await.unwrap();
        assert_eq!((read.len(), truncated), (2 * 1024 + 1, true));
        // A shorter body is read to its end.
        let (mut body, _) = counted(3);
        let (read, truncated) = read_limited(&mut body, 10 * 1024).await.unwrap();
        assert_eq!((read.len(), truncated), (3 * 1024, false));
    }

    fn policy(redirects: Redirects, tls: Tls) -> Policy {
        Policy {
            timeout: Some(Duration::from_secs(5)),
            body_limit: 1024,
            redirects,
            tls,
        }
    }

    #[tokio::test]
    async fn redirects_follow_the_policy() {
        let server = TestServer::start(None, |head| {
            let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
            match path.as_str() {
                "/loop" => Reply::Close(answer(302, &[("Location", "/loop")], b"")),
                "/away" => Reply::Close(answer(
                    301,
                    &[("Location", "http://localhost:1/elsewhere")],
                    b"moved",
                )),
                _ => Reply::Close(answer(200, &[], path.as_bytes())),
            }
        })
        .await;
        let base = format!("http://127.0.0.1:{}", server.port);
        let same = policy(Redirects::SameHost, Tls::Refused);

        let err = get(url(&format!("{base}/loop")), HeaderMap::new(), &same)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("stopped after 10 redirects"),
            "{err}"
        );
        assert_eq!(server.requests().len(), MAX_REQUESTS);

        // Another host: not followed, the redirect is the answer.
        let answer = get(url(&format!("{base}/away")), HeaderMap::new(), &same)
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(&answer.body[..], b"moved");
        assert_eq!(server.requests().len(), MAX_REQUESTS + 1);

        // Any host: followed (to a port nothing listens on).
        let any = policy(Redirects::AnyHost, Tls::Refused);
        let err = get(url(&format!("{base}/away")), HeaderMap::new(), &any)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Dial { .. }), "{err}");
    }

    #[tokio::test]
    async fn https_is_refused_when_the_policy_says_so() {
        let server = TestServer::start(None, |_| {
            Reply::Close(answer(302, &[("Location", "https://127.0.0.1:1/")], b""))
        })
        .await;
        let start = url(&format!("http://127.0.0.1:{}/", server.port));
        let err = get(
            start,
            HeaderMap::new(),
            &policy(Redirects::AnyHost, Tls::Refused),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::HttpsRefused(_)), "{err}");
    }
}
