//! `cargo xtask bench podnet`: skiff's pod network (the `skiff-cni` plugin + `skiff-net`'s node
//! setup + the eBPF programs) beside Debian's reference `bridge` + `host-local` CNI plugins with
//! host-gw routes, on the same machine in the same run (root only).
//!
//! ```text
//!   node1 netns ── ul0 192.168.77.1/24 ═══ veth ═══ ul0 192.168.77.2/24 ── node2 netns
//!   podCIDR 10.244.1.0/24: pods A, B, ...            podCIDR 10.244.2.0/24: pod C
//! ```
//!
//! Each mechanism gets a fresh lab of its own (namespaces named `sk<pid>-...`, pins under
//! `/sys/fs/bpf/skiff-podnetbench-<pid>-...`, CNI data in a temporary directory, all removed by
//! guards, failures included). Both plugins run as real binaries inside the node's namespace
//! (entered with setns before exec, as a node's containerd would run them), with the pod's
//! namespace in `CNI_NETNS`. skiff's node half is `NodeNetwork::setup` + `apply_peers`; the
//! reference's is `ip_forward` and one route per other node (`podCIDR via nodeIP`).
//!
//! Figures, each beside the reference's:
//! - CNI ADD and DEL time (`SKIFF_BENCH_PODS` pods on node 1, one after another, alternating the
//!   mechanisms pod by pod), mean, p50 and p99;
//! - TCP throughput pod A → pod B (same node) and pod A → pod C (across nodes), one stream,
//!   once with cubic (Linux's default congestion control) and once with BBR (this machine's
//!   `net.ipv4.tcp_congestion_control`), set on the sender's socket; and four parallel streams
//!   on cubic. skiff's node setup asks for BIG TCP (`SKIFF_BENCH_GSO`, default 196608 bytes;
//!   `0`: off), as `skiff agent` does by default;
//! - TCP request/response on one connection (1 byte each way): transactions/s, p50/p99 latency;
//! - new TCP connections/s (connect, 1 byte each way, close), one client thread.
//!
//! Traffic tests alternate the mechanisms round by round; senders and receivers are threads
//! inside the pods' namespaces, the client pinned to CPU 0 and the server to CPU 1.
//!
//! Environment: `SKIFF_CNI_BIN` (the `skiff-cni` binary; `cargo xtask bench podnet` builds it),
//! `SKIFF_BENCH_SECONDS` (length of each traffic test per mechanism, default 10, in
//! `SKIFF_BENCH_ROUNDS` alternating rounds, default 10: one-second rounds, whose median ratio
//! holds within a few percent here; 4 rounds varied by 10-15%; the single-stream tests run
//! three times as many rounds, and their ratio is that of the mean rates), `SKIFF_BENCH_PODS` (default 20),
//! `SKIFF_BENCH_MODES` (skiff's modes: `native`, `overlay` or `native,overlay`, the default),
//! `SKIFF_BENCH_OUT` (default `target/bench/podnet.json`), `SKIFF_BENCH_TESTS` (only the traffic
//! tests all of whose words are given: `stream` (one), `streams` (four), `cubic`, `bbr`, `rr`,
//! `connect`, `same`, `across`; e.g. `stream,cubic,across`), `SKIFF_BENCH_TRACE=1` (print
//! every round's figure).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use skiff_ebpf::{PinDir, PinGuard};
use skiff_net::Cidr;
use skiff_net::network::{Mode, NodeNetwork, Setup};
use skiff_net::node::Peer;
use skiff_netlab::netns::{End, veth};
use skiff_netlab::{NetNs, pin_current_thread};

const CLIENT_CPU: usize = 0;
const SERVER_CPU: usize = 1;
const CLUSTER_CIDR: &str = "10.244.0.0/16";
const UNDERLAY_MTU: u32 = 1500;
/// How many more (and shorter) rounds the single-stream tests get than the others. On this
/// kind of VM a stream runs in one of two modes for its whole life, ~20 or ~50 Gbit/s (the
/// sender's ACKs handled in its own softirq, or on the other core while it holds the socket:
/// the sender's `TCPBacklogCoalesce` tells them apart), for every mechanism with 64 KiB GSO
/// packets alike (BIG TCP's streams were not); a mean over many streams is what compares.
const STREAM_ROUNDS_FACTOR: usize = 3;
/// The parallel-streams test's connections.
const PARALLEL_STREAMS: usize = 4;
const VXLAN_OVERHEAD: u32 = 50;
const REFERENCE_BIN_DIR: &str = "/usr/lib/cni";
const ANCHOR: &str = "Debian containernetworking-plugins bridge + host-local, host-gw routes";
/// How long a connect or a read may take before the test fails.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

fn node_address(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 77, n)
}

fn pod_cidr(n: u8) -> Cidr {
    Cidr::new(Ipv4Addr::new(10, 244, n, 0), 24)
}

/// The pod networks measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mechanism {
    Skiff(Mode),
    Reference,
}

impl Mechanism {
    fn label(self) -> &'static str {
        match self {
            Mechanism::Skiff(Mode::Native) => "skiff native",
            Mechanism::Skiff(Mode::Overlay { .. }) => "skiff overlay",
            Mechanism::Reference => "bridge+host-local",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Mechanism::Skiff(Mode::Native) => "native",
            Mechanism::Skiff(Mode::Overlay { .. }) => "overlay",
            Mechanism::Reference => "ref",
        }
    }
}

struct Settings {
    seconds: f64,
    rounds: usize,
    pods: usize,
    modes: Vec<Mode>,
    skiff_cni: PathBuf,
    /// Which traffic tests run (`SKIFF_BENCH_TESTS`: labels such as `stream`, `cubic`, `rr`,
    /// `connect`, `across`, `same`; a test runs when every given word matches it).
    tests: Vec<String>,
    /// BIG TCP for skiff's pods (`SKIFF_BENCH_GSO`, bytes; `0`: off).
    gso_max_size: Option<u32>,
    /// Print every round's figure (`SKIFF_BENCH_TRACE=1`), e.g. to see a stream's mode.
    trace: bool,
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let number = |name: &str, default: f64| -> anyhow::Result<f64> {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| *x > 0.0)
                    .with_context(|| format!("{name}={v:?} is not a positive number")),
                Err(_) => Ok(default),
            }
        };
        let modes = std::env::var("SKIFF_BENCH_MODES")
            .unwrap_or_else(|_| "native,overlay".into())
            .split(',')
            .filter(|m| !m.trim().is_empty())
            .map(|m| match m.trim() {
                "native" => Ok(Mode::Native),
                "overlay" => Ok(Mode::Overlay { vni: 1, port: 4789 }),
                other => bail!("SKIFF_BENCH_MODES: unknown mode {other:?} (native, overlay)"),
            })
            .collect::<anyhow::Result<Vec<Mode>>>()?;
        let skiff_cni = PathBuf::from(std::env::var("SKIFF_CNI_BIN").context(
            "SKIFF_CNI_BIN is not set: run `cargo xtask bench podnet`, which builds skiff-cni \
             and passes its path",
        )?);
        if !skiff_cni.is_file() {
            bail!(
                "SKIFF_CNI_BIN={} does not exist: build it with `cargo build --release -p skiff-cni`",
                skiff_cni.display()
            );
        }
        for plugin in ["bridge", "host-local"] {
            let path = Path::new(REFERENCE_BIN_DIR).join(plugin);
            if !path.is_file() {
                bail!(
                    "{} is missing: `cargo xtask setup` installs containernetworking-plugins",
                    path.display()
                );
            }
        }
        Ok(Settings {
            seconds: number("SKIFF_BENCH_SECONDS", 10.0)?,
            rounds: number("SKIFF_BENCH_ROUNDS", 10.0)? as usize,
            pods: (number("SKIFF_BENCH_PODS", 20.0)? as usize).max(2),
            modes,
            skiff_cni,
            gso_max_size: match std::env::var("SKIFF_BENCH_GSO") {
                Ok(v) if v == "0" => None,
                Ok(v) => Some(v.parse().context("SKIFF_BENCH_GSO")?),
                Err(_) => Some(196608),
            },
            tests: std::env::var("SKIFF_BENCH_TESTS")
                .unwrap_or_default()
                .split([',', ' '])
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect(),
            trace: std::env::var("SKIFF_BENCH_TRACE").is_ok_and(|v| v == "1"),
        })
    }
}

/// A pod: its namespace (CNI_NETNS), container id and the address its plugin gave it.
struct Pod {
    id: String,
    address: Ipv4Addr,
    ns: NetNs,
}

struct Node {
    ns: NetNs,
    pins: Option<PinDir>,
    /// The pods' GSO size (BIG TCP) skiff's node setup settled on.
    gso_max_size: Option<u32>,
}

/// One mechanism's lab. Field order is drop order: pods, nodes (namespaces), pins, CNI data.
struct Lab {
    mechanism: Mechanism,
    /// (node index, pod), in creation order.
    pods: Vec<(usize, Pod)>,
    nodes: Vec<Node>,
    _pins: Vec<PinGuard>,
    data: tempfile::TempDir,
    plugin: PathBuf,
    mtu: u32,
    next_id: usize,
    /// Node setup time (both nodes).
    setup: Duration,
}

/// What one plugin invocation took and answered.
struct Invocation {
    took: Duration,
    stdout: Vec<u8>,
}

impl Lab {
    fn create(mechanism: Mechanism, s: &Settings) -> anyhow::Result<Lab> {
        let node1 = NetNs::create(&format!("{}-node1", mechanism.short()))?;
        let node2 = NetNs::create(&format!("{}-node2", mechanism.short()))?;
        let a1 = format!("{}/24", node_address(1));
        let a2 = format!("{}/24", node_address(2));
        veth(
            End {
                ns: &node1,
                name: "ul0",
                addresses: &[&a1],
            },
            End {
                ns: &node2,
                name: "ul0",
                addresses: &[&a2],
            },
        )?;
        let (plugin, mtu) = match mechanism {
            Mechanism::Skiff(Mode::Native) => (s.skiff_cni.clone(), UNDERLAY_MTU),
            Mechanism::Skiff(Mode::Overlay { .. }) => {
                (s.skiff_cni.clone(), UNDERLAY_MTU - VXLAN_OVERHEAD)
            }
            Mechanism::Reference => (Path::new(REFERENCE_BIN_DIR).join("bridge"), UNDERLAY_MTU),
        };
        let mut lab = Lab {
            mechanism,
            pods: Vec::new(),
            nodes: vec![
                Node {
                    ns: node1,
                    pins: None,
                    gso_max_size: None,
                },
                Node {
                    ns: node2,
                    pins: None,
                    gso_max_size: None,
                },
            ],
            _pins: Vec::new(),
            data: tempfile::Builder::new()
                .prefix(&format!(
                    "skiff-podnetbench-{}-{}-",
                    std::process::id(),
                    mechanism.short()
                ))
                .tempdir()?,
            plugin,
            mtu,
            next_id: 0,
            setup: Duration::ZERO,
        };
        for n in 1..=2u8 {
            let other = 3 - n;
            let node = &mut lab.nodes[usize::from(n - 1)];
            let began = Instant::now();
            match mechanism {
                Mechanism::Skiff(mode) => {
                    let pins = PinDir::new(format!(
                        "/sys/fs/bpf/skiff-podnetbench-{}-{}-node{n}",
                        std::process::id(),
                        mechanism.short()
                    ));
                    lab._pins.push(PinGuard(pins.clone()));
                    node.pins = Some(pins.clone());
                    let setup = Setup {
                        pod_cidr: pod_cidr(n),
                        cluster_cidr: CLUSTER_CIDR.parse().map_err(anyhow::Error::msg)?,
                        mode,
                        uplinks: vec!["ul0".into()],
                        pins,
                        masquerade: false,
                        gso_max_size: s.gso_max_size,
                    };
                    let peer = Peer {
                        name: format!("node{other}"),
                        pod_cidr: pod_cidr(other),
                        address: node_address(other),
                    };
                    node.gso_max_size = node
                        .ns
                        .within(move || -> anyhow::Result<Option<u32>> {
                            let mut network =
                                NodeNetwork::setup(setup).context("NodeNetwork::setup")?;
                            network
                                .apply_peers(&[peer])
                                .context("NodeNetwork::apply_peers")?;
                            Ok(network.pod_gso_max_size())
                        })?
                        .with_context(|| format!("skiff node setup on node{n}"))?;
                }
                Mechanism::Reference => {
                    node.ns.sysctl("net.ipv4.ip_forward", "1")?;
                    node.ns.ip(&[
                        "route",
                        "add",
                        &pod_cidr(other).to_string(),
                        "via",
                        &node_address(other).to_string(),
                    ])?;
                }
            }
            lab.setup += began.elapsed();
        }
        Ok(lab)
    }

    fn config(&self, node: usize) -> Value {
        let cidr = pod_cidr(node as u8 + 1).to_string();
        let data = self.data.path().join(format!("node{}", node + 1));
        match self.mechanism {
            Mechanism::Skiff(_) => json!({
                "cniVersion": "1.1.0",
                "name": "skiff",
                "type": "skiff-cni",
                "podCIDR": cidr,
                "clusterCIDR": CLUSTER_CIDR,
                "mtu": self.mtu,
                "gsoMaxSize": self.nodes[node].gso_max_size,
                "bpfPinDir": self.nodes[node].pins.as_ref().map(|p| p.path().to_owned()),
                "dataDir": data,
            }),
            Mechanism::Reference => json!({
                "cniVersion": "1.0.0",
                "name": "ref",
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                // The pods' default route via the bridge (host-local alone gives only the
                // subnet's route, and the other node's pods would be unreachable).
                "isDefaultGateway": true,
                "ipMasq": false,
                "ipam": {"type": "host-local", "subnet": cidr, "dataDir": data},
            }),
        }
    }

    /// Runs the plugin inside node `node`'s namespace, as a runtime would.
    fn invoke(
        &self,
        node: usize,
        command: &str,
        id: &str,
        netns: &Path,
    ) -> anyhow::Result<Invocation> {
        let config = serde_json::to_vec(&self.config(node))?;
        let bin_dir = self.plugin.parent().context("the plugin has a directory")?;
        let mut cmd = Command::new(&self.plugin);
        cmd.env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", bin_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.nodes[node].ns.enter_in(&mut cmd)?;
        let began = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("running {}", self.plugin.display()))?;
        child.stdin.take().context("piped")?.write_all(&config)?;
        let output = child.wait_with_output()?;
        let took = began.elapsed();
        if !output.status.success() {
            bail!(
                "{} {command} for {id} on node{} failed ({}): stdout {} stderr {}",
                self.mechanism.label(),
                node + 1,
                output.status,
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(Invocation {
            took,
            stdout: output.stdout,
        })
    }

    /// Creates one pod on `node` (CNI ADD); returns the ADD's time.
    fn add_pod(&mut self, node: usize) -> anyhow::Result<Duration> {
        self.next_id += 1;
        let id = format!(
            "podnetbench{:04}{}{:x}",
            self.next_id,
            self.mechanism.short(),
            std::process::id()
        );
        let ns = NetNs::create(&format!("{}-pod{}", self.mechanism.short(), self.next_id))?;
        let added = self.invoke(node, "ADD", &id, &ns.path())?;
        let result: Value = serde_json::from_slice(&added.stdout).with_context(|| {
            format!(
                "ADD result is not JSON: {}",
                String::from_utf8_lossy(&added.stdout)
            )
        })?;
        let address = result["ips"][0]["address"]
            .as_str()
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse::<Ipv4Addr>().ok())
            .with_context(|| format!("ADD result without an IPv4 address: {result}"))?;
        self.pods.push((node, Pod { id, address, ns }));
        Ok(added.took)
    }

    /// Removes the most recent pod (CNI DEL, then its namespace); returns the DEL's time.
    fn del_pod(&mut self) -> anyhow::Result<Option<Duration>> {
        let Some((node, pod)) = self.pods.pop() else {
            return Ok(None);
        };
        let took = self.invoke(node, "DEL", &pod.id, &pod.ns.path())?.took;
        Ok(Some(took))
    }

    /// The first pod created on `node`, and the second.
    fn pod(&self, node: usize, nth: usize) -> &Pod {
        self.pods
            .iter()
            .filter(|(n, _)| *n == node)
            .nth(nth)
            .map(|(_, p)| p)
            .expect("the lab has its pods")
    }
}

/// A listener bound inside `ns` on an ephemeral port of `address`.
fn listen(ns: &NetNs, address: Ipv4Addr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = ns.within(move || TcpListener::bind((address, 0)))??;
    let at = listener.local_addr()?;
    Ok((listener, at))
}

/// Runs `server` on a thread pinned to the server CPU and `client` on a thread inside `from`
/// pinned to the client CPU; returns the client's result once both are done.
fn client_server<C: Send + 'static>(
    from: &NetNs,
    listener: TcpListener,
    server: impl FnOnce(TcpListener) -> std::io::Result<()> + Send + 'static,
    client: impl FnOnce() -> anyhow::Result<C> + Send + 'static,
) -> anyhow::Result<C> {
    let server = std::thread::spawn(move || {
        pin_current_thread(SERVER_CPU)?;
        server(listener)
    });
    let client = from.spawn(move || {
        pin_current_thread(CLIENT_CPU)?;
        client()
    })?;
    let result = client
        .join()
        .map_err(|_| anyhow::anyhow!("the client thread panicked"))?;
    let served = server
        .join()
        .map_err(|_| anyhow::anyhow!("the server thread panicked"))?;
    let result = result?;
    served.context("server")?;
    Ok(result)
}

/// Accepts one connection, failing after [`IO_TIMEOUT`] (a client that failed to connect must
/// not leave its server waiting forever).
fn accept(listener: &TcpListener) -> std::io::Result<TcpStream> {
    let mut poll = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the listener's open descriptor.
    let rc = unsafe { libc::poll(&mut poll, 1, IO_TIMEOUT.as_millis() as libc::c_int) };
    match rc {
        0 => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no connection arrived",
        )),
        n if n < 0 => Err(std::io::Error::last_os_error()),
        _ => {
            let (conn, _) = listener.accept()?;
            conn.set_nodelay(true)?;
            conn.set_read_timeout(Some(IO_TIMEOUT))?;
            Ok(conn)
        }
    }
}

fn connect(to: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&to, IO_TIMEOUT)
        .map_err(|err| std::io::Error::new(err.kind(), format!("connecting to {to}: {err}")))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// One measured traffic test of one round.
#[derive(Clone, Debug, Default)]
struct Sample {
    /// Bytes (stream) or transactions/connections (request/response, connect).
    count: u64,
    secs: f64,
    /// Per-transaction latency, ns.
    latencies: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Test {
    /// Parallel streams (how many), the senders using this congestion control
    /// (`TCP_CONGESTION`).
    Stream(&'static str, usize),
    RequestResponse,
    Connect,
}

impl Test {
    /// "one stream (cubic)", "4 streams (cubic)".
    fn streams_label(self) -> String {
        match self {
            Test::Stream(congestion, 1) => format!("one stream ({congestion})"),
            Test::Stream(congestion, n) => format!("{n} streams ({congestion})"),
            _ => String::new(),
        }
    }

    /// The words `SKIFF_BENCH_TESTS` picks this test (on this path) by.
    fn words(self, cross: bool) -> Vec<&'static str> {
        let mut words = match self {
            Test::Stream(congestion, 1) => vec!["stream", congestion],
            Test::Stream(congestion, _) => vec!["streams", congestion],
            Test::RequestResponse => vec!["rr"],
            Test::Connect => vec!["connect"],
        };
        words.push(if cross { "across" } else { "same" });
        words
    }
}

/// `streams` parallel TCP streams `from` → `to` for `secs`: bytes the receiver got, over the time
/// from the first write to the receiver's acknowledgement of the end. The client's and the
/// server's threads stay on their CPUs (threads inherit the namespace and the affinity).
fn stream(
    from: &NetNs,
    to_ns: &NetNs,
    to: Ipv4Addr,
    congestion: &'static str,
    streams: usize,
    secs: f64,
) -> anyhow::Result<Sample> {
    let (listener, at) = listen(to_ns, to)?;
    client_server(
        from,
        listener,
        move |listener| {
            let receivers = (0..streams)
                .map(|_| {
                    let mut conn = accept(&listener)?;
                    Ok(std::thread::spawn(move || -> std::io::Result<()> {
                        let mut buffer = vec![0u8; 256 * 1024];
                        let mut total: u64 = 0;
                        loop {
                            match conn.read(&mut buffer)? {
                                0 => break,
                                n => total += n as u64,
                            }
                        }
                        conn.write_all(&total.to_le_bytes())
                    }))
                })
                .collect::<std::io::Result<Vec<_>>>()?;
            for receiver in receivers {
                receiver
                    .join()
                    .map_err(|_| std::io::Error::other("a receiver panicked"))??;
            }
            Ok(())
        },
        move || {
            let began = Instant::now();
            let deadline = began + Duration::from_secs_f64(secs);
            let senders = (0..streams)
                .map(|_| {
                    let mut conn = connect(at)?;
                    set_congestion_control(&conn, congestion)?;
                    Ok(std::thread::spawn(move || -> std::io::Result<u64> {
                        let chunk = vec![0x5au8; 128 * 1024];
                        while Instant::now() < deadline {
                            conn.write_all(&chunk)?;
                        }
                        conn.shutdown(Shutdown::Write)?;
                        let mut got = [0u8; 8];
                        conn.read_exact(&mut got)?;
                        Ok(u64::from_le_bytes(got))
                    }))
                })
                .collect::<std::io::Result<Vec<_>>>()?;
            let mut count = 0;
            for sender in senders {
                count += sender
                    .join()
                    .map_err(|_| anyhow::anyhow!("a sender panicked"))??;
            }
            Ok(Sample {
                count,
                secs: began.elapsed().as_secs_f64(),
                latencies: Vec::new(),
            })
        },
    )
}

/// Picks the socket's congestion control (before any data is sent).
fn set_congestion_control(conn: &TcpStream, name: &str) -> std::io::Result<()> {
    // SAFETY: the option value is `name`'s bytes with their length; the descriptor is open.
    let rc = unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(std::io::Error::new(
            err.kind(),
            format!("TCP_CONGESTION {name}: {err}"),
        ));
    }
    Ok(())
}

/// 1-byte ping-pong on one connection for `secs`.
fn request_response(
    from: &NetNs,
    to_ns: &NetNs,
    to: Ipv4Addr,
    secs: f64,
) -> anyhow::Result<Sample> {
    let (listener, at) = listen(to_ns, to)?;
    client_server(
        from,
        listener,
        |listener| {
            let mut conn = accept(&listener)?;
            let mut byte = [0u8; 1];
            while conn.read(&mut byte)? == 1 {
                conn.write_all(&byte)?;
            }
            Ok(())
        },
        move || {
            let mut conn = connect(at)?;
            let mut latencies = Vec::with_capacity(1 << 18);
            let mut byte = [1u8; 1];
            let began = Instant::now();
            let deadline = began + Duration::from_secs_f64(secs);
            let mut now = began;
            while now < deadline {
                conn.write_all(&byte)?;
                conn.read_exact(&mut byte)?;
                let done = Instant::now();
                latencies.push((done - now).as_nanos().min(u128::from(u32::MAX)) as u32);
                now = done;
            }
            let secs = began.elapsed().as_secs_f64();
            conn.shutdown(Shutdown::Write)?;
            Ok(Sample {
                count: latencies.len() as u64,
                secs,
                latencies,
            })
        },
    )
}

/// Sets SO_LINGER {on, 0}: close sends a reset and leaves no TIME_WAIT behind, so a few
/// seconds of connections never run out of ephemeral ports.
fn reset_on_close(stream: &TcpStream) -> std::io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on an open socket with a correctly sized linger value.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// New connections for `secs`, one after another: connect, 1 byte each way, close.
fn connections(from: &NetNs, to_ns: &NetNs, to: Ipv4Addr, secs: f64) -> anyhow::Result<Sample> {
    let (listener, at) = listen(to_ns, to)?;
    client_server(
        from,
        listener,
        |listener| {
            loop {
                let mut conn = accept(&listener)?;
                let mut byte = [0u8; 1];
                conn.read_exact(&mut byte)?;
                if byte[0] == b'q' {
                    return Ok(());
                }
                conn.write_all(&byte)?;
            }
        },
        move || {
            let mut latencies = Vec::with_capacity(1 << 16);
            let began = Instant::now();
            let deadline = began + Duration::from_secs_f64(secs);
            let mut now = began;
            let mut byte = [b'x'; 1];
            while now < deadline {
                let mut conn = connect(at)?;
                conn.write_all(&byte)?;
                conn.read_exact(&mut byte)?;
                reset_on_close(&conn)?;
                drop(conn);
                let done = Instant::now();
                latencies.push((done - now).as_nanos().min(u128::from(u32::MAX)) as u32);
                now = done;
            }
            let secs = began.elapsed().as_secs_f64();
            connect(at)?.write_all(b"q")?;
            Ok(Sample {
                count: latencies.len() as u64,
                secs,
                latencies,
            })
        },
    )
}

/// Runs one test over one path of `lab`.
fn run_test(lab: &Lab, test: Test, cross: bool, secs: f64) -> anyhow::Result<Sample> {
    let a = lab.pod(0, 0);
    let b = if cross { lab.pod(1, 0) } else { lab.pod(0, 1) };
    match test {
        Test::Stream(congestion, streams) => {
            stream(&a.ns, &b.ns, b.address, congestion, streams, secs)
        }
        Test::RequestResponse => request_response(&a.ns, &b.ns, b.address, secs),
        Test::Connect => connections(&a.ns, &b.ns, b.address, secs),
    }
}

/// The rounds of one test and path, as one figure.
#[derive(Clone, Debug, Default)]
struct Merged {
    count: u64,
    secs: f64,
    latencies: Vec<u32>,
    /// Each round's rate (bytes, transactions or connections per second).
    per_round: Vec<f64>,
}

impl Merged {
    fn add(&mut self, sample: Sample) {
        self.per_round.push(sample.count as f64 / sample.secs);
        self.count += sample.count;
        self.secs += sample.secs;
        self.latencies.extend(sample.latencies);
    }

    fn rate(&self) -> f64 {
        self.count as f64 / self.secs
    }

    fn gbits(&self) -> f64 {
        self.count as f64 * 8.0 / self.secs / 1e9
    }

    /// Latency percentile, µs.
    fn latency_us(&mut self, p: f64) -> f64 {
        self.latencies.sort_unstable();
        percentile_of(&self.latencies, p) / 1e3
    }
}

/// The `p` percentile of sorted `values` (nearest rank).
fn percentile_of(values: &[u32], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let i = ((values.len() as f64 * p).ceil() as usize).clamp(1, values.len()) - 1;
    f64::from(values[i])
}

/// The median of sorted `values` (NaN when empty).
fn median(values: &[f64]) -> f64 {
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Durations → (mean, p50, p99) in ms.
fn summary_ms(times: &[Duration]) -> (f64, f64, f64) {
    let mut us: Vec<u32> = times.iter().map(|d| d.as_micros() as u32).collect();
    us.sort_unstable();
    let mean = us.iter().map(|v| f64::from(*v)).sum::<f64>() / us.len().max(1) as f64;
    (
        mean / 1e3,
        percentile_of(&us, 0.50) / 1e3,
        percentile_of(&us, 0.99) / 1e3,
    )
}

/// One line of the table: each mechanism's figure.
struct Row {
    metric: String,
    unit: &'static str,
    higher_is_better: bool,
    values: Vec<(Mechanism, Option<f64>)>,
}

impl Row {
    fn get(&self, mechanism: Mechanism) -> Option<f64> {
        self.values
            .iter()
            .find(|(m, _)| *m == mechanism)
            .and_then(|(_, v)| *v)
    }
}

fn main() -> anyhow::Result<()> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the podnet benchmark needs root (network namespaces, BPF)");
    }
    let s = Settings::from_env()?;
    clean_up_on_signal();
    let version = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|_| format!("{program}: not found"))
    };
    println!(
        "podnet: kernel {}, containernetworking-plugins {}, skiff-cni {}",
        version("uname", &["-r"]),
        version(
            "dpkg-query",
            &["-W", "-f", "${Version}", "containernetworking-plugins"]
        ),
        s.skiff_cni.display()
    );
    println!(
        "{} pods per mechanism on node 1 (+1 on node 2); traffic tests {:.1} s per mechanism in {} \
         alternating rounds; client on CPU {CLIENT_CPU}, server on CPU {SERVER_CPU}",
        s.pods, s.seconds, s.rounds
    );

    let mut mechanisms: Vec<Mechanism> = s.modes.iter().map(|m| Mechanism::Skiff(*m)).collect();
    mechanisms.push(Mechanism::Reference);

    // Fresh labs, one per mechanism, built side by side.
    let mut labs: Vec<Lab> = Vec::new();
    for &mechanism in &mechanisms {
        match Lab::create(mechanism, &s) {
            Ok(lab) => labs.push(lab),
            Err(err) => println!("{}: lab setup failed: {err:#}", mechanism.label()),
        }
    }

    // CNI ADD, pod by pod, alternating the mechanisms.
    let mut add_times: Vec<Vec<Duration>> = vec![Vec::new(); labs.len()];
    let mut failed: Vec<Option<String>> = vec![None; labs.len()];
    for i in 0..s.pods {
        for k in rotation(labs.len(), i) {
            if failed[k].is_some() {
                continue;
            }
            match labs[k].add_pod(0) {
                Ok(took) => add_times[k].push(took),
                Err(err) => failed[k] = Some(format!("ADD: {err:#}")),
            }
        }
    }
    for (k, lab) in labs.iter_mut().enumerate() {
        if failed[k].is_none()
            && let Err(err) = lab.add_pod(1)
        {
            failed[k] = Some(format!("ADD on node 2: {err:#}"));
        }
    }

    // Traffic, round by round, alternating.
    let tests = [
        (Test::Stream("cubic", 1), false),
        (Test::Stream("cubic", 1), true),
        (Test::Stream("bbr", 1), false),
        (Test::Stream("bbr", 1), true),
        (Test::Stream("cubic", PARALLEL_STREAMS), false),
        (Test::Stream("cubic", PARALLEL_STREAMS), true),
        (Test::RequestResponse, false),
        (Test::RequestResponse, true),
        (Test::Connect, false),
        (Test::Connect, true),
    ]
    .into_iter()
    .filter(|&(test, cross)| {
        let words = test.words(cross);
        s.tests.iter().all(|w| words.contains(&w.as_str()))
    })
    .collect::<Vec<_>>();
    // A single stream settles in one of two modes for its whole life (see
    // `STREAM_ROUNDS_FACTOR`), so the streams get many short rounds: each is one draw of the mode.
    let rounds_of = |test: Test| match test {
        Test::Stream(_, 1) => s.rounds * STREAM_ROUNDS_FACTOR,
        _ => s.rounds,
    };
    let mut merged: Vec<Vec<Merged>> = vec![vec![Merged::default(); tests.len()]; labs.len()];
    for (t, &(test, cross)) in tests.iter().enumerate() {
        eprintln!(
            "measuring {test:?} {}",
            if cross { "across nodes" } else { "same node" }
        );
        let rounds = rounds_of(test);
        let per_round = s.seconds / rounds as f64;
        for round in 0..rounds {
            for k in rotation(labs.len(), round) {
                if failed[k].is_some() {
                    continue;
                }
                match run_test(&labs[k], test, cross, per_round) {
                    Ok(sample) => {
                        if s.trace {
                            let rate = sample.count as f64 / sample.secs;
                            let (rate, unit) = match test {
                                Test::Stream(..) => (rate * 8.0 / 1e9, "Gbit/s"),
                                _ => (rate, "/s"),
                            };
                            eprintln!(
                                "  round {round:>3} {:<18} {rate:>10.1} {unit}",
                                labs[k].mechanism.label()
                            );
                        }
                        merged[k][t].add(sample)
                    }
                    Err(err) => {
                        failed[k] = Some(format!(
                            "{test:?} {}: {err:#}",
                            if cross { "across nodes" } else { "same node" }
                        ))
                    }
                }
            }
        }
    }

    // CNI DEL, newest pod first, alternating.
    let mut del_times: Vec<Vec<Duration>> = vec![Vec::new(); labs.len()];
    for i in 0..=s.pods {
        for k in rotation(labs.len(), i) {
            if failed[k].is_some() {
                continue;
            }
            match labs[k].del_pod() {
                Ok(Some(took)) => del_times[k].push(took),
                Ok(None) => {}
                Err(err) => failed[k] = Some(format!("DEL: {err:#}")),
            }
        }
    }
    for (k, lab) in labs.iter().enumerate() {
        if let Some(why) = &failed[k] {
            println!("{} failed: {why}", lab.mechanism.label());
        }
    }

    // The table.
    let ok = |k: usize| failed[k].is_none();
    let mut rows = Vec::new();
    let mut row = |metric: &str, unit, higher, f: &mut dyn FnMut(usize) -> Option<f64>| {
        rows.push(Row {
            metric: metric.to_owned(),
            unit,
            higher_is_better: higher,
            values: (0..labs.len()).map(|k| (labs[k].mechanism, f(k))).collect(),
        });
    };
    row("node setup (both nodes)", "ms", false, &mut |k| {
        Some(labs[k].setup.as_secs_f64() * 1e3)
    });
    for (what, times) in [("ADD", &add_times), ("DEL", &del_times)] {
        let n = times.iter().map(Vec::len).max().unwrap_or(0);
        for (stat, pick) in [("mean", 0), ("p50", 1), ("p99", 2)] {
            row(
                &format!("CNI {what} time, {stat} of {n} pods"),
                "ms",
                false,
                &mut |k| {
                    (ok(k) && !times[k].is_empty()).then(|| {
                        let (mean, p50, p99) = summary_ms(&times[k]);
                        [mean, p50, p99][pick]
                    })
                },
            );
        }
    }
    for (t, &(test, cross)) in tests.iter().enumerate() {
        let path = if cross { "across nodes" } else { "same node" };
        match test {
            Test::Stream(..) => row(
                &format!("TCP throughput, {}, {path}", test.streams_label()),
                "Gbit/s",
                true,
                &mut |k| ok(k).then(|| merged[k][t].gbits()),
            ),
            Test::RequestResponse => {
                row(
                    &format!("TCP request/response (1 byte), {path}"),
                    "trans/s",
                    true,
                    &mut |k| ok(k).then(|| merged[k][t].rate()),
                );
                for (stat, p) in [("p50", 0.50), ("p99", 0.99)] {
                    row(
                        &format!("TCP request/response latency {stat}, {path}"),
                        "us",
                        false,
                        &mut |k| ok(k).then(|| merged[k][t].clone().latency_us(p)),
                    );
                }
            }
            Test::Connect => row(
                &format!("new TCP connections (1 byte each way), {path}"),
                "conn/s",
                true,
                &mut |k| ok(k).then(|| merged[k][t].rate()),
            ),
        }
    }
    // The goal's comparisons, robust to the machine's other load: the median over rounds of
    // (this mechanism's rate / the reference's rate in the same round).
    if let Some(r) = labs
        .iter()
        .position(|l| l.mechanism == Mechanism::Reference)
        .filter(|r| ok(*r))
    {
        for (t, &(test, cross)) in tests.iter().enumerate() {
            let what = match test {
                Test::Stream(..) => &format!("throughput, {}", test.streams_label()),
                Test::RequestResponse => "request/response rate",
                Test::Connect => "new connections rate",
            };
            let path = if cross { "across nodes" } else { "same node" };
            // Throughput: the ratio of the mean rates (the per-round ratios of a bimodal
            // figure have no useful median); the others: the median of per-round ratios.
            if let Test::Stream(..) = test {
                row(
                    &format!(
                        "{what} / reference's, {path}, mean of {} rounds",
                        rounds_of(test)
                    ),
                    "x",
                    true,
                    &mut |k| (ok(k) && k != r).then(|| merged[k][t].rate() / merged[r][t].rate()),
                );
                continue;
            }
            row(
                &format!(
                    "{what} / reference's, {path}, median of {} rounds",
                    s.rounds
                ),
                "x",
                true,
                &mut |k| {
                    (ok(k) && k != r).then(|| {
                        let mut ratios: Vec<f64> = merged[k][t]
                            .per_round
                            .iter()
                            .zip(&merged[r][t].per_round)
                            .map(|(ours, reference)| ours / reference)
                            .collect();
                        ratios.sort_by(f64::total_cmp);
                        median(&ratios)
                    })
                },
            );
        }
    }
    print_rows(&rows, &mechanisms);
    write_json(&rows, &mechanisms)?;
    drop(labs);
    if failed.iter().any(Option::is_some) {
        bail!("some measurements failed (see above)");
    }
    Ok(())
}

/// On SIGINT or SIGTERM, when no guard's Drop runs, removes what this process created (its
/// namespaces `sk<pid>-*`, pin directories and CNI data directories) and exits. Called before
/// any other thread exists, so every later thread inherits the blocked signals and only the
/// watcher takes them (children get an empty mask from std's spawn).
fn clean_up_on_signal() {
    // SAFETY: a zeroed sigset_t is valid storage for sigemptyset; the mask change affects only
    // this (so far the only) thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        let mut signal = 0;
        // SAFETY: a valid, initialised set and an out parameter.
        if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
            return;
        }
        eprintln!("podnet: signal {signal}, removing the lab");
        let prefix = format!("sk{}-", std::process::id());
        let ours = format!("skiff-podnetbench-{}-", std::process::id());
        let entries = |dir: &str, prefix: &str| -> Vec<PathBuf> {
            std::fs::read_dir(dir)
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                        .map(|e| e.path())
                        .collect()
                })
                .unwrap_or_default()
        };
        for ns in entries("/var/run/netns", &prefix) {
            let name = ns.file_name().unwrap_or_default().to_owned();
            let _ = Command::new("ip")
                .arg("netns")
                .arg("del")
                .arg(name)
                .status();
        }
        for pins in entries("/sys/fs/bpf", &ours) {
            let _ = PinDir::new(pins).remove();
        }
        for data in entries(&std::env::temp_dir().to_string_lossy(), &ours) {
            let _ = std::fs::remove_dir_all(data);
        }
        std::process::exit(128 + signal);
    });
}

/// The lab indices in the order of round `i`: rotated by one each round.
fn rotation(n: usize, i: usize) -> Vec<usize> {
    (0..n).map(|k| (k + i) % n.max(1)).collect()
}

fn fmt(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v.is_nan() => "-".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

fn print_rows(rows: &[Row], mechanisms: &[Mechanism]) {
    print!("\n{:<72}", "metric");
    for m in mechanisms {
        print!(" {:>17}", m.label());
    }
    println!("  unit");
    for row in rows {
        print!("{:<72}", row.metric);
        for m in mechanisms {
            print!(" {:>17}", fmt(row.get(*m)));
        }
        println!("  {}", row.unit);
    }
    let reference = Mechanism::Reference;
    for m in mechanisms.iter().filter(|m| **m != reference) {
        let ratio = |metric: &str| {
            let row = rows.iter().find(|r| r.metric.starts_with(metric))?;
            Some(row.get(*m)? / row.get(reference)?)
        };
        let median = |metric: &str| rows.iter().find(|r| r.metric.starts_with(metric))?.get(*m);
        let both = |what: &str| {
            format!(
                "{} / {}",
                fmt(median(&format!("{what} / reference's, same node"))),
                fmt(median(&format!("{what} / reference's, across nodes")))
            )
        };
        println!(
            "{}: ADD mean {} of the reference's (goal <= 0.5); throughput: one stream {} \
             (cubic), {} (bbr), {PARALLEL_STREAMS} streams {}; request rate {} of the \
             reference's (same node / across; goal > 1)",
            m.label(),
            fmt(ratio("CNI ADD time, mean")),
            both("throughput, one stream (cubic)"),
            both("throughput, one stream (bbr)"),
            both(&format!("throughput, {PARALLEL_STREAMS} streams (cubic)")),
            both("request/response rate"),
        );
    }
    println!(
        "'-': not measured. The ratio rows compare the mechanisms round by round (the rounds \
         alternate), so load from outside the benchmark cancels out."
    );
}

fn write_json(rows: &[Row], mechanisms: &[Mechanism]) -> anyhow::Result<()> {
    let mut metrics = Vec::new();
    for row in rows {
        let anchor = row.get(Mechanism::Reference);
        for m in mechanisms.iter().filter(|m| **m != Mechanism::Reference) {
            let Some(ours) = row.get(*m).filter(|v| !v.is_nan()) else {
                continue;
            };
            let name = match m {
                Mechanism::Skiff(Mode::Native) => row.metric.clone(),
                _ => format!("{} ({})", row.metric, m.label()),
            };
            metrics.push(json!({
                "name": name,
                "ours": ours,
                "anchor": anchor.filter(|v| !v.is_nan()),
                "anchor_name": ANCHOR,
                "unit": row.unit,
                "better": if row.higher_is_better { "higher" } else { "lower" },
            }));
        }
    }
    let out = std::env::var("SKIFF_BENCH_OUT").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/bench/podnet.json"
        )
        .to_owned()
    });
    let out = PathBuf::from(out);
    std::fs::create_dir_all(out.parent().context("output has a directory")?)?;
    let doc = json!({ "area": "podnet", "metrics": metrics });
    std::fs::write(&out, serde_json::to_string_pretty(&doc)?)?;
    println!("\nwrote {}", out.display());
    Ok(())
}
