//! Container probes and the handler actions they share with lifecycle hooks (exec through CRI
//! ExecSync, tcpSocket, httpGet over plain HTTP to the pod IP, sleep), and the per-container
//! state that turns probe results into success/failure by thresholds.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Container, ExecAction, GRPCAction, HTTPGetAction, LifecycleHandler, Probe, SleepAction,
    TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use skiff_cri::Cri;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    /// A probe: a status in 200..400 succeeds.
    Status,
    /// A lifecycle hook: any answer succeeds (Kubernetes only fails hooks on transport errors).
    Answered,
}

/// Runs `handler` once against `target`; `Ok(())` is success, the error says why it failed.
/// `timeout` bounds exec commands (`None`: no limit, as for hooks); callers bound the rest.
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
        if http.scheme.as_deref().is_some_and(|s| s != "HTTP") {
            return Err("only HTTP handlers are supported".to_owned());
        }
        let address = address(http.host.as_deref(), &http.port, container, target)?;
        let path = http.path.clone().unwrap_or_else(|| "/".to_owned());
        let headers: String = http
            .http_headers
            .iter()
            .flatten()
            .map(|h| format!("{}: {}\r\n", h.name, h.value))
            .collect();
        let code = http_get(address, &path, &headers).await?;
        return match check {
            HttpCheck::Status if !(200..400).contains(&code) => {
                Err(format!("HTTP probe failed with statuscode: {code}"))
            }
            _ => Ok(()),
        };
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
    let port = match port {
        IntOrString::Int(port) => *port,
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
            .ok_or_else(|| format!("no container port named {name}"))?,
    };
    let ip = match host {
        Some(host) if !host.is_empty() => host
            .parse()
            .map_err(|_| format!("probe host {host} is not an IP"))?,
        _ => target.pod_ip.ok_or("the pod has no IP yet")?,
    };
    let port = u16::try_from(port).map_err(|_| format!("bad port {port}"))?;
    Ok(SocketAddr::new(ip, port))
}

/// A plain HTTP/1.1 GET; returns the answer's status code.
async fn http_get(address: SocketAddr, path: &str, headers: &str) -> Result<u16, String> {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("dial tcp {address}: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: kube-probe/1.37\r\nAccept: */*\r\n{headers}Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    // Only the status line matters.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {:?}", line.lines().next()))
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
