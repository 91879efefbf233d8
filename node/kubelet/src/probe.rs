//! Container probes and the handler actions they share with lifecycle hooks (exec through CRI
//! ExecSync, tcpSocket, httpGet over HTTP or HTTPS to the pod IP, gRPC health, sleep), and the
//! per-container state that turns probe results into success/failure by thresholds.
//!
//! httpGet follows Kubernetes' prober (pkg/probe/http): the URL from the scheme, the host (the
//! pod IP by default), the port and the path, which must be a URI path; headers from
//! `httpHeaders`, checked (`Host` sets the host; `User-Agent: kube-probe/<major>.<minor>` or
//! `kube-lifecycle/...` and `Accept: */*` unless given); HTTPS without certificate
//! verification; redirects followed only to the same host, ten requests at most; 10 KiB of the
//! body read; 200 <= status < 400 passes, a 3xx (a redirect elsewhere) with a warning.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use k8s_openapi::api::core::v1::{
    Container, ExecAction, GRPCAction, HTTPGetAction, LifecycleHandler, Probe, SleepAction,
    TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use skiff_cri::Cri;

use crate::events::On;
use crate::http_client::{self, Policy, Redirects, Scheme, Tls, Url};

/// What the prober reads of an answer's body (Kubernetes' `maxRespBodyLength`); the rest is
/// left unread.
pub const MAX_BODY: usize = 10 * 1024;

/// Which probe of a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Restarts the container when it fails.
    Liveness,
    /// Gates the container's (and the pod's) readiness.
    Readiness,
    /// Holds the other two back until it succeeds once.
    Startup,
}

impl Kind {
    /// The container's probe of this kind.
    pub fn of(self, container: &Container) -> Option<&Probe> {
        match self {
            Kind::Liveness => container.liveness_probe.as_ref(),
            Kind::Readiness => container.readiness_probe.as_ref(),
            Kind::Startup => container.startup_probe.as_ref(),
        }
    }
}

/// One probe's running state for one container instance.
#[derive(Debug)]
pub struct State {
    /// The container instance probed (state resets when it changes).
    pub container_id: String,
    /// The current verdict (readiness and startup start false, liveness true).
    pub passing: bool,
    successes: i32,
    failures: i32,
    last_run: Option<Instant>,
}

impl State {
    /// Fresh state for a new container instance.
    pub fn new(kind: Kind, container_id: &str) -> State {
        State {
            container_id: container_id.to_owned(),
            passing: kind == Kind::Liveness,
            successes: 0,
            failures: 0,
            last_run: None,
        }
    }

    /// Whether the probe should run now, for a container running for `running_for`.
    pub fn due(&self, probe: &Probe, running_for: Duration) -> bool {
        let delay = Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        let period = Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64);
        running_for >= delay && self.last_run.is_none_or(|at| at.elapsed() >= period)
    }

    /// Folds in one result; returns whether the verdict changed.
    pub fn record(&mut self, probe: &Probe, ok: bool) -> bool {
        self.last_run = Some(Instant::now());
        let before = self.passing;
        if ok {
            self.failures = 0;
            self.successes += 1;
            if self.successes >= probe.success_threshold.unwrap_or(1).max(1) {
                self.passing = true;
            }
        } else {
            self.successes = 0;
            self.failures += 1;
            if self.failures >= probe.failure_threshold.unwrap_or(3).max(1) {
                self.passing = false;
            }
        }
        before != self.passing
    }
}

/// A running container's verdicts after its due probes ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdicts {
    /// Past its startup probe (or it has none).
    pub started: bool,
    /// Started and passing its readiness probe.
    pub ready: bool,
    /// Passing its liveness probe: when not, and started, the kubelet restarts it.
    pub live: bool,
}

/// The probes of one pod's containers (Kubernetes' prober manager, for one pod): their
/// states by container name and kind.
#[derive(Debug, Default)]
pub struct Manager {
    states: HashMap<(String, Kind), State>,
}

impl Manager {
    /// Runs `container`'s due probes against `target` (its latest instance, running for
    /// `running_for`), each failure an Unhealthy event in `events`. Liveness and readiness wait
    /// until the startup probe has passed.
    pub async fn run(
        &mut self,
        pod: &str,
        container: &Container,
        target: &Target<'_>,
        running_for: Duration,
        events: &On<'_>,
    ) -> Verdicts {
        let mut verdicts = HashMap::new();
        for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
            let Some(spec) = kind.of(container) else {
                verdicts.insert(kind, true);
                continue;
            };
            let key = (container.name.clone(), kind);
            let state = self
                .states
                .entry(key.clone())
                .or_insert_with(|| State::new(kind, target.container_id));
            if state.container_id != target.container_id {
                *state = State::new(kind, target.container_id);
            }
            let gated =
                kind != Kind::Startup && !verdicts.get(&Kind::Startup).copied().unwrap_or(true);
            if !gated && state.due(spec, running_for) {
                let result = run(spec, container, target).await;
                if let Err(why) = &result {
                    tracing::debug!(pod, container = %container.name, ?kind, %why, "probe failed");
                    events.unhealthy(&format!("{kind:?}"), why);
                }
                let state = self.states.get_mut(&key).expect("inserted above");
                if state.record(spec, result.is_ok()) {
                    tracing::info!(pod, container = %container.name, ?kind, passing = state.passing, "probe verdict changed");
                }
            }
            let passing = self.states.get(&key).is_some_and(|s| s.passing) && !gated;
            verdicts.insert(kind, passing);
        }
        let started = verdicts[&Kind::Startup];
        Verdicts {
            started,
            ready: started && verdicts[&Kind::Readiness],
            live: verdicts[&Kind::Liveness],
        }
    }

    /// Forgets the probes of `container` (it is being restarted).
    pub fn forget(&mut self, container: &str) {
        self.states.retain(|(name, _), _| name != container);
    }
}

/// Where a handler (probe or lifecycle hook) acts: the container, and the pod IP its
/// network handlers connect to unless they name a host.
pub struct Target<'a> {
    /// The CRI, for exec handlers.
    pub cri: &'a Cri,
    /// The container's CRI id.
    pub container_id: &'a str,
    /// The pod's IP (the node's for hostNetwork pods).
    pub pod_ip: Option<IpAddr>,
}

/// One handler's action, the part probes and lifecycle hooks share (Kubernetes' probe and
/// `LifecycleHandler` carry the same exec/httpGet/tcpSocket actions; hooks add sleep).
#[derive(Clone, Copy, Debug, Default)]
pub struct Handler<'a> {
    /// Run a command in the container (CRI ExecSync); success is exit code 0.
    pub exec: Option<&'a ExecAction>,
    /// An HTTP GET to the pod IP (or the action's host).
    pub http_get: Option<&'a HTTPGetAction>,
    /// A TCP connect to the pod IP (or the action's host).
    pub tcp_socket: Option<&'a TCPSocketAction>,
    /// Sleep in the kubelet (lifecycle hooks only).
    pub sleep: Option<&'a SleepAction>,
    /// A gRPC health check (`grpc.health.v1.Health/Check`) on the pod IP (probes only).
    pub grpc: Option<&'a GRPCAction>,
}

impl<'a> Handler<'a> {
    /// A probe's action.
    pub fn of_probe(probe: &'a Probe) -> Handler<'a> {
        Handler {
            exec: probe.exec.as_ref(),
            http_get: probe.http_get.as_ref(),
            tcp_socket: probe.tcp_socket.as_ref(),
            sleep: None,
            grpc: probe.grpc.as_ref(),
        }
    }

    /// A lifecycle hook's action.
    pub fn of_hook(hook: &'a LifecycleHandler) -> Handler<'a> {
        Handler {
            exec: hook.exec.as_ref(),
            http_get: hook.http_get.as_ref(),
            tcp_socket: hook.tcp_socket.as_ref(),
            sleep: hook.sleep.as_ref(),
            grpc: None,
        }
    }
}

/// How an httpGet action's answer is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpCheck {
    /// A probe (`User-Agent: kube-probe/...`): a status in 200..400 succeeds.
    Status,
    /// A lifecycle hook (`kube-lifecycle/...`): any answer succeeds (Kubernetes only fails
    /// hooks on transport errors).
    Answered,
}

/// Runs `handler` once against `target`; `Ok(())` is success, the error says why it failed.
/// `timeout` bounds exec commands and httpGet exchanges (`None`: no limit, as for postStart
/// hooks); callers bound the rest.
pub async fn run_handler(
    handler: Handler<'_>,
    container: &Container,
    target: &Target<'_>,
    timeout: Option<Duration>,
    check: HttpCheck,
) -> Result<(), String> {
    if let Some(exec) = handler.exec {
        let command = exec.command.clone().unwrap_or_default();
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        let answer = target
            .cri
            .exec_sync(target.container_id, &command, timeout.unwrap_or_default())
            .await
            .map_err(|e| e.to_string())?;
        return match answer.exit_code {
            0 => Ok(()),
            code => Err(format!(
                "command {:?} exited with {code}: {}{}",
                command,
                String::from_utf8_lossy(&answer.stdout),
                String::from_utf8_lossy(&answer.stderr)
            )),
        };
    }
    if let Some(http) = handler.http_get {
        return http_get(http, container, target.pod_ip, timeout, check).await;
    }
    if let Some(tcp) = handler.tcp_socket {
        let address = address(tcp.host.as_deref(), &tcp.port, container, target)?;
        tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| format!("dial tcp {address}: {e}"))?;
        return Ok(());
    }
    if let Some(grpc) = handler.grpc {
        let ip = target.pod_ip.ok_or("the pod has no IP yet")?;
        let port = u16::try_from(grpc.port).map_err(|_| format!("bad port {}", grpc.port))?;
        let service = grpc.service.clone().unwrap_or_default();
        return grpc_check(SocketAddr::new(ip, port), service).await;
    }
    if let Some(sleep) = handler.sleep {
        tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64)).await;
        return Ok(());
    }
    Err("the handler has no action this kubelet supports".to_owned())
}

/// Runs `probe` once; `Ok(())` is success, the error says why it failed.
pub async fn run(probe: &Probe, container: &Container, target: &Target<'_>) -> Result<(), String> {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    let attempt = run_handler(
        Handler::of_probe(probe),
        container,
        target,
        Some(timeout),
        HttpCheck::Status,
    );
    // ExecSync has its own timeout; the outer one also covers connects and slow servers.
    match tokio::time::timeout(timeout + Duration::from_millis(500), attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {timeout:?}")),
    }
}

fn address(
    host: Option<&str>,
    port: &IntOrString,
    container: &Container,
    target: &Target<'_>,
) -> Result<SocketAddr, String> {
    let port = resolve_port(port, container)?;
    let ip = match host {
        Some(host) if !host.is_empty() => host
            .parse()
            .map_err(|_| format!("probe host {host} is not an IP"))?,
        _ => target.pod_ip.ok_or("the pod has no IP yet")?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// A handler's port (Kubernetes' `ResolveContainerPort`): a number, or the name of one of the
/// container's ports (else a number written as a string).
fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(port) => *port,
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
            .or_else(|| name.parse().ok())
            .ok_or_else(|| format!("no container port named {name}"))?,
    };
    u16::try_from(number)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("invalid port number: {number}"))
}

/// `kube-<purpose>/<major>.<minor>`, the User-Agent Kubernetes' prober and hooks send.
fn user_agent(purpose: &str) -> String {
    let version = crate::KUBELET_VERSION.trim_start_matches('v');
    let mut parts = version.split(['.', '-']);
    let major = parts.next().unwrap_or_default();
    let minor = parts.next().unwrap_or_default();
    format!("kube-{purpose}/{major}.{minor}")
}

/// The request an httpGet action makes (Kubernetes' `NewRequestForHTTPGetAction`): its URL
/// and headers, or why there is none (an unknown scheme, a bad port, a path that is not a URI
/// path, a header name or value HTTP does not allow: refused rather than sent).
pub fn http_get_request(
    action: &HTTPGetAction,
    container: &Container,
    pod_ip: Option<IpAddr>,
    purpose: &str,
) -> Result<(Url, HeaderMap), String> {
    let scheme = action.scheme.as_deref().unwrap_or_default();
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "" | "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(format!("unsupported protocol scheme {scheme:?}")),
    };
    let host = match action.host.as_deref() {
        Some(host) if !host.is_empty() => host.to_owned(),
        _ => pod_ip.ok_or("the pod has no IP yet")?.to_string(),
    };
    let port = resolve_port(&action.port, container)?;
    let path = action.path.as_deref().unwrap_or_default();
    let url = Url::new(scheme, &host, port, path).map_err(|err| format!("httpGet: {err}"))?;
    let mut headers = HeaderMap::new();
    for h in action.http_headers.iter().flatten() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| format!("invalid HTTP header name {:?}", h.name))?;
        let value = HeaderValue::from_bytes(h.value.as_bytes())
            .map_err(|_| format!("invalid HTTP header value for {:?}", h.name))?;
        headers.append(name, value);
    }
    match headers.get(header::USER_AGENT) {
        None => {
            let agent = HeaderValue::try_from(user_agent(purpose)).map_err(|e| e.to_string())?;
            headers.insert(header::USER_AGENT, agent);
        }
        // Go sends no User-Agent for an empty one.
        Some(agent) if agent.is_empty() => {
            headers.remove(header::USER_AGENT);
        }
        Some(_) => {}
    }
    match headers.get(header::ACCEPT) {
        None => {
            headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        }
        // An Accept given empty means none (Kubernetes deletes it).
        Some(accept) if accept.is_empty() => {
            headers.remove(header::ACCEPT);
        }
        Some(_) => {}
    }
    Ok((url, headers))
}

/// Runs an httpGet action; for probes ([`HttpCheck::Status`]) the answer's status decides.
/// `timeout` bounds the whole exchange (redirects and body included).
pub async fn http_get(
    action: &HTTPGetAction,
    container: &Container,
    pod_ip: Option<IpAddr>,
    timeout: Option<Duration>,
    check: HttpCheck,
) -> Result<(), String> {
    let purpose = match check {
        HttpCheck::Status => "probe",
        HttpCheck::Answered => "lifecycle",
    };
    let (url, headers) = http_get_request(action, container, pod_ip, purpose)?;
    let policy = Policy {
        timeout,
        body_limit: MAX_BODY,
        redirects: Redirects::SameHost,
        tls: Tls::AnyCertificate,
    };
    let answer = http_client::get(url, headers, &policy)
        .await
        .map_err(|err| err.to_string())?;
    let code = answer.status.as_u16();
    match check {
        HttpCheck::Status if !(200..400).contains(&code) => {
            Err(format!("HTTP probe failed with statuscode: {code}"))
        }
        HttpCheck::Status if code >= 300 => {
            // Kubernetes' probe.Warning: a success, reported.
            tracing::warn!(url = %answer.url, code, "probe terminated redirects");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse` (its status enum as the number on the wire).
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// `grpc.health.v1.HealthCheckResponse.ServingStatus` names.
fn serving_status(status: i32) -> &'static str {
    match status {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

/// The standard gRPC health check over plain HTTP/2; success is SERVING.
async fn grpc_check(address: SocketAddr, service: String) -> Result<(), String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| e.to_string())?;
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("failed to connect service {address:?}: {e}"))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| e.to_string())?;
    let path = http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
    let request = tonic::Request::new(HealthCheckRequest { service });
    let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
    match grpc.unary(request, path, codec).await {
        Ok(answer) if answer.get_ref().status == 1 => Ok(()),
        Ok(answer) => Err(format!(
            "service unhealthy (responded with {:?})",
            serving_status(answer.get_ref().status)
        )),
        Err(status) => Err(format!(
            "rpc error: code = {:?} desc = {}",
            status.code(),
            status.message()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_client::testing::{Reply, TestServer, answer};
    use k8s_openapi::api::core::v1::HTTPHeader;

    const LOCALHOST: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    fn action(port: u16, path: &str, headers: &[(&str, &str)]) -> HTTPGetAction {
        HTTPGetAction {
            port: IntOrString::Int(port.into()),
            path: Some(path.to_owned()),
            http_headers: Some(
                headers
                    .iter()
                    .map(|(name, value)| HTTPHeader {
                        name: (*name).to_owned(),
                        value: (*value).to_owned(),
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    async fn probe(action: &HTTPGetAction) -> Result<(), String> {
        let container = Container::default();
        let timeout = Some(Duration::from_secs(2));
        http_get(action, &container, LOCALHOST, timeout, HttpCheck::Status).await
    }

    /// Answers `/<code>` with that status, anything else with 200.
    async fn by_path() -> TestServer {
        TestServer::start(None, |head| {
            let path = head.split(' ').nth(1).unwrap_or_default();
            let code = path.trim_start_matches('/').parse().unwrap_or(200);
            Reply::Close(answer(code, &[], b"ok"))
        })
        .await
    }

    #[tokio::test]
    async fn paths_and_headers_that_are_not_http_are_refused_before_any_connection() {
        let server = by_path().await;
        for (bad, headers, error) in [
            (
                "/healthz\r\nX-Injected: 1",
                &[][..],
                "is not a valid URI path",
            ),
            ("/health z", &[], "is not a valid URI path"),
            (
                "/healthz",
                &[("X-Check", "a\r\nX-Injected: 1")][..],
                "invalid HTTP header value",
            ),
            (
                "/healthz",
                &[("X Check", "a")][..],
                "invalid HTTP header name",
            ),
        ] {
            let err = probe(&action(server.port, bad, headers)).await.unwrap_err();
            assert!(err.contains(error), "{bad:?} {headers:?}: {err}");
        }
        assert_eq!(server.connections(), 0, "nothing reached the server");
        // A valid request does, and nothing else.
        probe(&action(server.port, "/healthz", &[("X-Check", "a")]))
            .await
            .unwrap();
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert!(!requests[0].contains("X-Injected"), "{}", requests[0]);
    }

    #[tokio::test]
    async fn requests_carry_kubernetes_headers() {
        let server = by_path().await;
        probe(&action(server.port, "ready?full=1", &[("X-Custom", "v")]))
            .await
            .unwrap();
        probe(&action(
            server.port,
            "/",
            &[
                ("Host", "web.example"),
                ("User-Agent", "mine"),
                ("Accept", ""),
            ],
        ))
        .await
        .unwrap();
        let requests = server.requests();
        let lines = |i: usize| -> Vec<String> { requests[i].lines().map(str::to_owned).collect() };
        let first = lines(0);
        assert_eq!(first[0], "GET /ready?full=1 HTTP/1.1");
        for line in [
            format!("Host: 127.0.0.1:{}", server.port),
            "User-Agent: kube-probe/1.37".to_owned(),
            "Accept: */*".to_owned(),
            "X-Custom: v".to_owned(),
        ] {
            assert!(first.contains(&line), "{line:?} in {first:?}");
        }
        let second = lines(1);
        assert!(
            second.contains(&"Host: web.example".to_owned()),
            "{second:?}"
        );
        assert!(
            second.contains(&"User-Agent: mine".to_owned()),
            "{second:?}"
        );
        assert!(
            !second.iter().any(|l| l.starts_with("Accept")),
            "{second:?}"
        );
    }

    #[tokio::test]
    async fn statuses_from_200_to_399_pass() {
        let server = by_path().await;
        for (code, passes) in [
            (200, true),
            (204, true),
            (399, true),
            (400, false),
            (500, false),
        ] {
            let result = probe(&action(server.port, &format!("/{code}"), &[])).await;
            assert_eq!(result.is_ok(), passes, "{code}: {result:?}");
        }
        let err = probe(&action(server.port, "/400", &[])).await.unwrap_err();
        assert_eq!(err, "HTTP probe failed with statuscode: 400");
    }

    #[tokio::test]
    async fn redirects_are_followed_on_the_same_host_only() {
        let server = TestServer::start(None, |head| {
            let path = head.split(' ').nth(1).unwrap_or_default();
            Reply::Close(match path {
                "/moved" => answer(302, &[("Location", "/broken")], b""),
                "/loop" => answer(307, &[("Location", "/loop")], b""),
                "/away" => answer(302, &[("Location", "http://localhost:1/broken")], b""),
                "/broken" => answer(500, &[], b""),
                _ => answer(200, &[], b""),
            })
        })
        .await;
        // Followed: the target's 500 decides, not the 302.
        let err = probe(&action(server.port, "/moved", &[]))
            .await
            .unwrap_err();
        assert!(err.contains("statuscode: 500"), "{err}");
        assert_eq!(server.requests().len(), 2);
        // A loop ends after ten requests, failing.
        let err = probe(&action(server.port, "/loop", &[])).await.unwrap_err();
        assert!(err.contains("stopped after 10 redirects"), "{err}");
        assert_eq!(server.requests().len(), 12);
        // Another host ("localhost" is not "127.0.0.1"): not followed, a success (a warning).
        probe(&action(server.port, "/away", &[])).await.unwrap();
        assert_eq!(server.requests().len(), 13);
    }

    #[tokio::test]
    async fn only_the_first_10_kib_of_a_body_is_read() {
        // 1 MiB announced, 20 KiB sent, then nothing: a prober reading the whole body would
        // wait for the rest until its timeout.
        let server = TestServer::start(None, |_| {
            let mut bytes = answer(200, &[("Content-Length", "1048576")], &[]);
            bytes.extend(vec![b'x'; 20 * 1024]);
            Reply::Hold(bytes)
        })
        .await;
        let started = std::time::Instant::now();
        probe(&action(server.port, "/", &[])).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn https_probes_accept_self_signed_certificates() {
        let cert = crate::tls::self_signed("pod", &["127.0.0.1".to_owned()]).unwrap();
        let config = crate::tls::server_config(&cert).unwrap();
        let server =
            TestServer::start(Some(config), |_| Reply::Close(answer(200, &[], b"ok"))).await;
        let mut https = action(server.port, "/healthz", &[]);
        https.scheme = Some("HTTPS".to_owned());
        probe(&https).await.unwrap();
        assert!(server.requests()[0].starts_with("GET /healthz HTTP/1.1"));
        // The same port over plain HTTP gets no HTTP answer.
        https.scheme = Some("HTTP".to_owned());
        assert!(probe(&https).await.is_err());
        https.scheme = Some("gopher".to_owned());
        let err = probe(&https).await.unwrap_err();
        assert!(err.contains("unsupported protocol scheme"), "{err}");
    }

    #[tokio::test]
    async fn a_slow_server_times_out() {
        let server = TestServer::start(None, |_| Reply::Hold(Vec::new())).await;
        let container = Container::default();
        let timeout = Some(Duration::from_millis(200));
        let err = http_get(
            &action(server.port, "/", &[]),
            &container,
            LOCALHOST,
            timeout,
            HttpCheck::Status,
        )
        .await
        .unwrap_err();
        assert!(err.contains("timed out"), "{err}");
    }

    #[tokio::test]
    async fn hooks_send_their_own_user_agent_and_accept_any_status() {
        let server = TestServer::start(None, |_| Reply::Close(answer(500, &[], b""))).await;
        let container = Container::default();
        let hook = action(server.port, "/stop", &[]);
        http_get(&hook, &container, LOCALHOST, None, HttpCheck::Answered)
            .await
            .unwrap();
        assert!(server.requests()[0].contains("User-Agent: kube-lifecycle/1.37"));
    }

    #[test]
    fn ports_resolve_by_name_or_number() {
        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "ports": [{"name": "http", "containerPort": 8080}],
        }))
        .unwrap();
        let port = |p: IntOrString| resolve_port(&p, &container);
        assert_eq!(port(IntOrString::String("http".into())), Ok(8080));
        assert_eq!(port(IntOrString::String("9090".into())), Ok(9090));
        assert!(port(IntOrString::String("grpc".into())).is_err());
        assert!(port(IntOrString::Int(0)).is_err());
        assert!(port(IntOrString::Int(70000)).is_err());
    }
}
