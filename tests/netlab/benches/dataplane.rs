//! `cargo xtask bench dataplane`: skiff's eBPF service load balancer beside kube-proxy-shaped
//! iptables and nftables rule sets, measured in the same run on the same lab (root only).
//!
//! The lab (`skiff_netlab::ServiceLab`): a client pod, a node that routes pod traffic (where
//! kube-proxy's rules sit, in PREROUTING as for pod traffic), and 11 backend pod addresses
//! serving a TCP echo. N services (ClusterIPs from 10.96.0.10, port 80) x 10 endpoints each.
//! skiff: the socket-level LB attached to the client's cgroup, programmed by `MapSync` in a
//! separate agent process. For each mechanism and N:
//! - new connections/s (connect, one 32-byte request and its echo, close; `CLIENTS` threads in
//!   one client process for `SECONDS`), cycling over every ClusterIP, and p50/p99 latency;
//! - the same straight to the backend pods with all N services loaded (a non-service address);
//! - the time to program all N services from nothing, and to apply one endpoint change;
//! - the memory of the agent (or the loader command) and of the kernel's state;
//! - skiff only: the per-packet cost of its tc and XDP programs (BPF_PROG_TEST_RUN, many
//!   repeats per call on a flow that stays on the DNAT path, the best of several calls) beside
//!   an empty program of each kind timed the same way, and Katran's published rate.
//!
//! The baseline is connecting straight to the pods in a lab with no service at all. The client
//! process runs on CPU 0 and the servers on CPU 1. IPVS is not in this kernel: not measured.
//!
//! Environment: `SKIFF_BENCH_SECONDS` (connection test length, default 5, in 10 alternating rounds),
//! `SKIFF_BENCH_CLIENTS` (default 8), `SKIFF_BENCH_SERVICES` (default `100,1000,10000,100000`),
//! `SKIFF_BENCH_ANCHOR_MAX` (largest N for iptables/nftables, default 10000),
//! `SKIFF_BENCH_NFT_BUDGET` (seconds an nftables load may be predicted to take, default 240),
//! `SKIFF_BENCH_ONLY=per-packet` (only the per-packet figures, no lab; written to
//! `dataplane-per-packet.json` beside the output),
//! `SKIFF_BENCH_OUT` (default `target/bench/dataplane.json`).

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use skiff_netlab::kubeproxy::{self, IptablesSync, ServicePort};
use skiff_netlab::serve::TcpServer;
use skiff_netlab::topology::CLUSTER_CIDR;
use skiff_netlab::{Cgroup, Guarded, ServiceLab, process};

/// Endpoints per service (and backend pods serving them).
const ENDPOINTS: usize = 10;
/// The service port and the pods' port.
const SERVICE_PORT: u16 = 80;
const POD_PORT: u16 = 8080;
const SERVICE_CIDR: &str = "10.96.0.0/12";
const FIRST_CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// The role a re-executed bench binary plays.
const ROLE_ENV: &str = "SKIFF_DATAPLANE_ROLE";
/// skiff's second change figure: purging the removed endpoint's flow state.
const PURGE: &str = "stale flow state purge";
const CLIENT_CPU: usize = 0;
const SERVER_CPU: usize = 1;

fn main() -> anyhow::Result<()> {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("client") => client::main(),
        Ok("agent") => agent::main(),
        _ => driver(),
    }
}

/// The services of a run: service `i` has ClusterIP `FIRST_CLUSTER_IP + i` and the pods
/// 10.244.0.10-19 as endpoints.
fn services(n: usize) -> Vec<ServicePort> {
    (0..n)
        .map(|i| ServicePort {
            namespace: "bench".into(),
            name: format!("svc-{i}"),
            port_name: "http".into(),
            cluster_ip: nth(FIRST_CLUSTER_IP, i),
            port: SERVICE_PORT,
            endpoints: (0..ENDPOINTS)
                .map(|e| SocketAddrV4::new(pod(e), POD_PORT))
                .collect(),
        })
        .collect()
}

/// The one endpoint change: service `n / 2` swaps its first endpoint for the spare pod.
fn changed(services: &[ServicePort]) -> (Vec<ServicePort>, usize) {
    let k = services.len() / 2;
    let mut after = services.to_vec();
    after[k].endpoints[0] = SocketAddrV4::new(pod(ENDPOINTS), POD_PORT);
    (after, k)
}

fn pod(i: usize) -> Ipv4Addr {
    nth(Ipv4Addr::new(10, 244, 0, 10), i)
}

fn nth(first: Ipv4Addr, i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(first) + i as u32)
}

/// What the client process is asked to do: connections to `count` addresses from `first`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Load {
    first: Ipv4Addr,
    count: usize,
    port: u16,
    threads: usize,
    millis: u64,
}

/// What one connection test gave.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Rate {
    connections: u64,
    errors: u64,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    first_error: Option<String>,
}

impl Rate {
    fn per_sec(&self) -> f64 {
        self.connections as f64 / self.secs
    }

    /// Rounds of one test as one figure: counts add up; the percentiles are the rounds' mean
    /// (an approximation: the rounds have the same length and load).
    fn merge(rounds: &[Rate]) -> Rate {
        let n = rounds.len().max(1) as f64;
        Rate {
            connections: rounds.iter().map(|r| r.connections).sum(),
            errors: rounds.iter().map(|r| r.errors).sum(),
            secs: rounds.iter().map(|r| r.secs).sum(),
            p50_ms: rounds.iter().map(|r| r.p50_ms).sum::<f64>() / n,
            p99_ms: rounds.iter().map(|r| r.p99_ms).sum::<f64>() / n,
            first_error: rounds.iter().find_map(|r| r.first_error.clone()),
        }
    }
}

/// The load generator, run as its own process so it can sit in the lab's client namespace and
/// in the cgroup the socket-level LB is attached to from its first socket on.
mod client {
    use super::*;

    pub fn main() -> anyhow::Result<()> {
        let stdin = std::io::stdin();
        let mut stdout = std::io::stdout();
        for line in stdin.lock().lines() {
            let load: Load = serde_json::from_str(&line?)?;
            writeln!(stdout, "{}", serde_json::to_string(&run(&load))?)?;
            stdout.flush()?;
        }
        Ok(())
    }

    fn run(load: &Load) -> Rate {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(load.millis);
        let results: Vec<(Vec<u32>, u64, Option<String>)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..load.threads)
                .map(|t| s.spawn(move || worker(load, t, deadline)))
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let secs = started.elapsed().as_secs_f64();
        let mut samples: Vec<u32> = Vec::new();
        let mut rate = Rate {
            secs,
            ..Rate::default()
        };
        for (s, errors, first) in results {
            samples.extend(s);
            rate.errors += errors;
            rate.first_error = rate.first_error.or(first);
        }
        samples.sort_unstable();
        rate.connections = samples.len() as u64;
        let pct = |p: f64| {
            if samples.is_empty() {
                return 0.0;
            }
            let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
            f64::from(samples[i]) / 1e3
        };
        rate.p50_ms = pct(0.50);
        rate.p99_ms = pct(0.99);
        rate
    }

    /// One client thread: connection after connection until the deadline, each to the next
    /// address (threads start apart, so together they cycle over all of them).
    fn worker(load: &Load, t: usize, deadline: Instant) -> (Vec<u32>, u64, Option<String>) {
        let request = [b'x'; 32];
        let mut response = [0u8; 32];
        let mut samples = Vec::with_capacity(1 << 16);
        let (mut errors, mut first_error) = (0, None);
        let mut i = t * load.count / load.threads.max(1);
        while Instant::now() < deadline {
            let to = SocketAddr::from((nth(load.first, i % load.count), load.port));
            i += 1;
            let began = Instant::now();
            let mut exchange = || -> std::io::Result<()> {
                let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(Duration::from_secs(2)))?;
                std::io::Write::write_all(&mut stream, &request)?;
                std::io::Read::read_exact(&mut stream, &mut response)?;
                Ok(())
            };
            match exchange() {
                Ok(()) => samples.push(began.elapsed().as_micros() as u32),
                Err(err) => {
                    errors += 1;
                    first_error.get_or_insert_with(|| format!("{to}: {err}"));
                }
            }
        }
        (samples, errors, first_error)
    }
}

/// The skiff node agent's part, as its own process so its memory is its own: it attaches the
/// socket-level LB to the client cgroup and programs the maps with `MapSync`. Pins stay when
/// it exits; the driver removes them.
mod agent {
    use super::*;
    use skiff_ebpf::PinDir;
    use skiff_ebpf::lb::{self, LbMaps, Sizes, SocketLb};
    use skiff_ebpf::packet_lb;
    use skiff_proxy::model::{Backend, Desired, Frontend, FrontendSpec, proto};
    use skiff_proxy::sync::MapSync;

    /// A command from the driver.
    #[derive(Serialize, Deserialize)]
    pub enum Ask {
        /// Attach to `cgroup` with maps pinned in `pins`, and program `n` services.
        Program {
            n: usize,
            pins: PathBuf,
            cgroup: PathBuf,
        },
        /// Apply the one endpoint change.
        Change,
    }

    /// What the agent measured.
    #[derive(Serialize, Deserialize)]
    pub struct Told {
        pub took_ms: f64,
        pub rss_kib: u64,
        pub kernel_kib: u64,
        pub kernel_services_kib: u64,
        pub errors: Vec<String>,
        /// Per-packet figures of the tc and XDP paths, measured with the N services programmed.
        #[serde(default)]
        pub per_packet: Vec<PerPacket>,
        /// Change only: the part of `took_ms` spent purging the removed endpoint's flow state
        /// (after the maps already route new connections to the new endpoints).
        #[serde(default)]
        pub purge_ms: f64,
    }

    fn desired(services: &[ServicePort]) -> Desired {
        let mut desired = Desired::default();
        for service in services {
            let mut backends: Vec<Backend> = service
                .endpoints
                .iter()
                .map(|e| Backend {
                    address: *e.ip(),
                    port: e.port(),
                    proto: proto::TCP,
                    remote: false,
                })
                .collect();
            backends.sort();
            desired.frontends.insert(
                Frontend {
                    address: service.cluster_ip,
                    port: service.port,
                    proto: proto::TCP,
                },
                FrontendSpec {
                    service: service.port_name(),
                    flags: 0,
                    affinity_timeout: 0,
                    backends,
                    terminating: Default::default(),
                    source_ranges: Vec::new(),
                },
            );
        }
        desired
    }

    pub fn main() -> anyhow::Result<()> {
        let mut stdout = std::io::stdout();
        let mut state: Option<(SocketLb, MapSync, Vec<ServicePort>)> = None;
        for line in std::io::stdin().lock().lines() {
            let told = match serde_json::from_str(&line?)? {
                Ask::Program { n, pins, cgroup } => {
                    let pins = PinDir::new(pins);
                    pins.ensure()?;
                    // The frontend map sized for N, as an operator sizes it with
                    // `skiff agent --lb-frontend-entries`: its lookups touch fewer cold pages
                    // than in a table sized for the largest cluster.
                    let defaults = Sizes::default();
                    let sizes = Sizes {
                        services: (n * (ENDPOINTS + 1) + 1024) as u32,
                        service_ids: defaults.service_ids.max(2 * n as u32),
                        ..defaults
                    };
                    let lb = SocketLb::attach(&pins, &cgroup, &sizes)?;
                    let mut sync = MapSync::new(LbMaps::open(&pins)?);
                    let all = services(n);
                    let wanted = desired(&all);
                    let began = Instant::now();
                    let stats = sync.apply(&wanted);
                    let took = began.elapsed();
                    let mut answer = told(took, stats.errors);
                    answer.per_packet = per_packet(&pins, &sizes, &mut sync)?;
                    state = Some((lb, sync, all));
                    answer
                }
                Ask::Change => {
                    let (_, sync, all) = state.as_mut().context("change before program")?;
                    let (after, k) = changed(all);
                    // What the proxy does on an EndpointSlice event: recompute that Service's
                    // frontends and apply them (O(changed), whatever N is).
                    let wanted = desired(&after[k..=k]);
                    let began = Instant::now();
                    let stats =
                        sync.apply_changes(wanted.frontends.iter().map(|(f, s)| (*f, Some(s))));
                    let took = began.elapsed();
                    anyhow::ensure!(stats.frontends_written == 1, "one frontend changes");
                    let mut answer = told(took.saturating_sub(stats.purge), stats.errors);
                    answer.purge_ms = stats.purge.as_secs_f64() * 1e3;
                    answer
                }
            };
            writeln!(stdout, "{}", serde_json::to_string(&told)?)?;
            stdout.flush()?;
        }
        Ok(())
    }

    /// The pair of services the per-packet figures are timed on: each one's only endpoint is
    /// the other's frontend (addresses far above the N services' ClusterIPs).
    ///
    /// Why a pair: BPF_PROG_TEST_RUN runs every repeat on the same buffer (tc: the same skb),
    /// as the previous repeat left it (`bpf_test_run` in the kernel's net/bpf/test_run.c), so a
    /// flow DNATed to a pod is a miss from the second repeat on. XDP's live-frames mode
    /// (`BPF_F_TEST_XDP_LIVE_FRAMES`) is no way out: it restores only the data pointers when it
    /// recycles a page, not the bytes (Documentation/bpf/bpf_prog_run.rst), it hands XDP_PASS
    /// frames to the stack inside the timed loop, and tc has no such mode. Here each DNAT turns
    /// the packet into the other service's established flow, so every repeat takes the whole
    /// path of a flow to a pod: frontend lookup among the N services, conntrack hit, backend
    /// lookup, address and port rewrite with both checksums, accounting, FIB lookup. After an
    /// even number of repeats the packet is back as sent, which [`check_pair`] verifies.
    fn pair() -> [ServicePort; 2] {
        let ends = [
            SocketAddrV4::new(Ipv4Addr::new(10, 111, 255, 1), SERVICE_PORT),
            SocketAddrV4::new(Ipv4Addr::new(10, 111, 255, 2), POD_PORT),
        ];
        std::array::from_fn(|i| ServicePort {
            namespace: "bench".into(),
            name: format!("ping-pong-{i}"),
            port_name: "http".into(),
            cluster_ip: *ends[i].ip(),
            port: ends[i].port(),
            endpoints: vec![ends[1 - i]],
        })
    }

    /// Repeats per BPF_PROG_TEST_RUN call (even: see [`pair`]), and calls per figure.
    pub const PACKET_REPEAT: u32 = 100_000;
    pub const PACKET_ROUNDS: usize = 31;

    /// One per-packet figure over [`PACKET_ROUNDS`] calls: the best call's mean, and the
    /// median call's.
    ///
    /// The best, as timeit advises: on this 2-CPU VM other processes (builds, other tests) slow
    /// calls down, never speed them up, and the kernel's timer only leaves out the time the
    /// loop is scheduled out, not the caches it finds cold after. Measured with the empty tc
    /// program under a load average of 5, the best of 31 calls stayed at 25-26 ns from run to
    /// run while the median moved between 26 and 32 ns (SCHED_FIFO did not steady it either).
    #[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
    pub struct Figure {
        pub ns: f64,
        pub median: f64,
    }

    impl Figure {
        fn of(mut rounds: Vec<f64>) -> Figure {
            let median = median(&mut rounds);
            Figure {
                ns: rounds[0],
                median,
            }
        }
    }

    /// A path's figures with the N services programmed.
    #[derive(Clone, Debug, Serialize, Deserialize)]
    pub struct PerPacket {
        /// "tc" or "XDP".
        pub path: String,
        /// An established flow of [`pair`]: conntrack hit and DNAT.
        pub hit: Figure,
        /// The same program on a packet to an address that is no service.
        pub miss: Figure,
        /// The empty program of the same kind, timed the same way.
        pub empty: Figure,
    }

    /// Per-packet cost of the tc and XDP programs and of the empty programs, with the maps as
    /// programmed plus [`pair`] (removed again afterwards).
    fn per_packet(
        pins: &PinDir,
        sizes: &Sizes,
        sync: &mut MapSync,
    ) -> anyhow::Result<Vec<PerPacket>> {
        let pair = desired(&pair());
        let added = sync.apply_changes(pair.frontends.iter().map(|(f, s)| (*f, Some(s))));
        anyhow::ensure!(added.errors.is_empty(), "the pair: {:?}", added.errors);
        let measured = time_paths(pins, sizes);
        let removed = sync.apply_changes(pair.frontends.keys().map(|f| (*f, None)));
        anyhow::ensure!(removed.errors.is_empty(), "the pair: {:?}", removed.errors);
        measured
    }

    fn time_paths(pins: &PinDir, sizes: &Sizes) -> anyhow::Result<Vec<PerPacket>> {
        use packet_lb::programs;
        let [first, _] = pair();
        let hit = syn(first.cluster_ip.octets(), first.port);
        let miss = syn([10, 244, 0, 200], SERVICE_PORT);
        let maps = LbMaps::open(pins)?;
        let empty = packet_lb::load_empty()?;
        let paths = [
            (
                "tc",
                packet_lb::load_tc(pins, sizes)?,
                programs::TC_INGRESS,
                programs::EMPTY_TC,
            ),
            (
                "XDP",
                packet_lb::load_xdp(pins, sizes)?,
                programs::XDP,
                programs::EMPTY_XDP,
            ),
        ];
        for (path, object, program, _) in &paths {
            check_pair(&maps, object, program, &hit).with_context(|| format!("{path} path"))?;
        }
        // Rounds interleave every figure, so a drift of the machine's speed lands on all alike.
        let mut rounds = vec![[Vec::new(), Vec::new(), Vec::new()]; paths.len()];
        for _ in 0..PACKET_ROUNDS {
            for ((_, object, program, anchor), samples) in paths.iter().zip(&mut rounds) {
                let runs = [
                    (object, *program, &hit),
                    (object, *program, &miss),
                    (&empty, *anchor, &hit),
                ];
                for ((object, program, packet), samples) in runs.into_iter().zip(samples) {
                    samples.push(packet_lb::ns_per_packet(
                        object,
                        program,
                        packet,
                        PACKET_REPEAT,
                    )?);
                }
            }
        }
        Ok(paths
            .iter()
            .zip(rounds)
            .map(|((path, ..), [hit, miss, empty])| PerPacket {
                path: (*path).to_owned(),
                hit: Figure::of(hit),
                miss: Figure::of(miss),
                empty: Figure::of(empty),
            })
            .collect())
    }

    /// Establishes both flows of the pair (the first two repeats create their conntrack
    /// entries) and checks that every repeat of a call is translated: the translated counter
    /// grows by the repeats, and the packet comes back as sent.
    fn check_pair(
        maps: &LbMaps,
        object: &skiff_ebpf::libbpf_rs::Object,
        program: &str,
        packet: &[u8],
    ) -> anyhow::Result<()> {
        let index = lb::STAT_NAMES
            .iter()
            .position(|s| *s == "pkt_translated")
            .context("a pkt_translated counter")? as u32;
        let translated = || lb::percpu_sum(&maps.stats, &index);
        packet_lb::run(object, program, packet, 2)?;
        let before = translated()?;
        let repeat = 1000;
        let out = packet_lb::run(object, program, packet, repeat)?;
        let count = translated()? - before;
        anyhow::ensure!(
            count == u64::from(repeat),
            "{count} of {repeat} repeats translated"
        );
        anyhow::ensure!(
            out.packet == packet,
            "after {repeat} repeats the packet is not back as sent"
        );
        Ok(())
    }

    /// An Ethernet + IPv4 + TCP SYN from the client pod to `to:port`, checksums right.
    fn syn(to: [u8; 4], port: u16) -> Vec<u8> {
        let from = skiff_netlab::topology::CLIENT_ADDRESS.octets();
        let mut p = vec![0u8; 54];
        p[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        p[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut p[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&from);
        ip[16..20].copy_from_slice(&to);
        let sum = checksum(&[&p[14..34]]);
        p[24..26].copy_from_slice(&sum.to_be_bytes());
        let tcp = &mut p[34..54];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&port.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x02;
        tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&from);
        pseudo[4..8].copy_from_slice(&to);
        pseudo[9] = 6;
        pseudo[10..12].copy_from_slice(&20u16.to_be_bytes());
        let sum = checksum(&[&pseudo, &p[34..54]]);
        p[50..52].copy_from_slice(&sum.to_be_bytes());
        p
    }

    /// The Internet checksum over `parts` (each of even length).
    fn checksum(parts: &[&[u8]]) -> u16 {
        let mut sum: u32 = parts
            .iter()
            .flat_map(|part| part.chunks(2))
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn told(took: Duration, errors: Vec<String>) -> Told {
        let (kernel_kib, kernel_services_kib) = maps_memlock_kib();
        Told {
            took_ms: took.as_secs_f64() * 1e3,
            rss_kib: status_kib("VmRSS:"),
            kernel_kib,
            kernel_services_kib,
            errors,
            per_packet: Vec::new(),
            purge_ms: 0.0,
        }
    }

    fn status_kib(field: &str) -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// The kernel memory of the BPF maps this process holds (`memlock` in fdinfo: the
    /// kernel's own accounting of each map), each map counted once: all of them, and those
    /// that grow with the services (not the preallocated LRU tables of flows and sockets).
    fn maps_memlock_kib() -> (u64, u64) {
        const LRU_HASH: u64 = 9;
        const LRU_PERCPU_HASH: u64 = 10;
        let mut seen = std::collections::HashMap::new();
        for entry in std::fs::read_dir("/proc/self/fdinfo")
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            if let (Some(id), Some(bytes), Some(kind)) =
                (field("map_id:"), field("memlock:"), field("map_type:"))
            {
                seen.insert(id, (bytes, kind));
            }
        }
        let all = seen.values().map(|(b, _)| b).sum::<u64>();
        let services = seen
            .values()
            .filter(|(_, k)| *k != LRU_HASH && *k != LRU_PERCPU_HASH)
            .map(|(b, _)| b)
            .sum::<u64>();
        (all / 1024, services / 1024)
    }
}

/// A lab with its pods serving and a client process in the test cgroup.
struct Bed {
    client: Worker,
    _servers: TcpServer,
    lab: ServiceLab,
}

impl Bed {
    fn create(cgroup: &Cgroup, settings: &Settings) -> anyhow::Result<Bed> {
        let lab = ServiceLab::create(ENDPOINTS + 1)?;
        let servers = TcpServer::start(
            &lab.pods,
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, POD_PORT)),
            settings.clients,
            Some(SERVER_CPU),
        )?;
        let mut command = Command::new(std::env::current_exe()?);
        command.env(ROLE_ENV, "client");
        lab.client.enter_in(&mut command)?;
        cgroup.enter_in(&mut command)?;
        process::pin_in(&mut command, CLIENT_CPU);
        let client = Worker::spawn(&mut command)?;
        Ok(Bed {
            client,
            _servers: servers,
            lab,
        })
    }

    /// New connections to `count` addresses from `first`.
    fn load(
        &mut self,
        first: Ipv4Addr,
        count: usize,
        port: u16,
        s: &Settings,
    ) -> anyhow::Result<Rate> {
        let rate: Rate = self.client.ask(&Load {
            first,
            count,
            port,
            threads: s.clients,
            millis: (s.seconds * 1e3) as u64,
        })?;
        if rate.connections == 0 {
            bail!("no connection succeeded: {:?}", rate.first_error);
        }
        Ok(rate)
    }

    fn via_services(&mut self, n: usize, s: &Settings) -> anyhow::Result<Rate> {
        self.load(FIRST_CLUSTER_IP, n, SERVICE_PORT, s)
    }

    fn straight_to_pods(&mut self, s: &Settings) -> anyhow::Result<Rate> {
        self.load(pod(0), ENDPOINTS, POD_PORT, s)
    }
}

/// A re-executed bench binary answering one JSON line per JSON line.
struct Worker {
    process: Guarded,
}

impl Worker {
    fn spawn(command: &mut Command) -> anyhow::Result<Worker> {
        Ok(Worker {
            process: Guarded::spawn(command)?,
        })
    }

    fn ask<Q: Serialize, A: for<'de> Deserialize<'de>>(
        &mut self,
        question: &Q,
    ) -> anyhow::Result<A> {
        let (stdin, stdout) = self.process.pipes();
        writeln!(stdin, "{}", serde_json::to_string(question)?)?;
        stdin.flush()?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.is_empty() {
            bail!("the worker process {} exited", self.process.pid());
        }
        Ok(serde_json::from_str(&line)?)
    }
}

/// What programming a mechanism cost.
struct Programmed {
    took: Duration,
    /// The agent's RSS, or the loader command's peak RSS, KiB.
    user_kib: u64,
    /// The kernel state's memory, KiB (approximate for netfilter).
    kernel_kib: u64,
    /// The part of it that grows with services (skiff: without the preallocated LRU maps).
    kernel_services_kib: u64,
    /// skiff only: the per-packet figures of its tc and XDP paths.
    per_packet: Vec<agent::PerPacket>,
}

impl Programmed {
    /// A netfilter load by a command; `before` is [`kernel_kib`] before it ran.
    fn loaded(timed: &process::Timed, before: u64) -> Programmed {
        let kernel = kernel_kib().saturating_sub(before);
        Programmed {
            took: timed.elapsed,
            user_kib: timed.max_rss_kib,
            kernel_kib: kernel,
            kernel_services_kib: kernel,
            per_packet: Vec::new(),
        }
    }
}

/// One way of load balancing services, programmed into a bed.
trait Mechanism {
    fn name(&self) -> &'static str;
    /// The largest N this mechanism is measured at.
    fn max_services(&self) -> usize;
    /// Programs `services` from nothing.
    fn program(&mut self, bed: &Bed, services: &[ServicePort]) -> anyhow::Result<Programmed>;
    /// Applies the one endpoint change (`after[k]` differs from `before[k]`); one or more
    /// ways of doing it, named.
    fn change(
        &mut self,
        bed: &Bed,
        before: &[ServicePort],
        after: &[ServicePort],
        k: usize,
    ) -> anyhow::Result<Vec<(&'static str, Duration)>>;
    /// Removes what `program` created (also on drop, where that matters).
    fn clear(&mut self, bed: &Bed) -> anyhow::Result<()>;
}

/// skiff: the agent process attaches the socket LB to the client cgroup and runs `MapSync`.
struct Skiff {
    cgroup: PathBuf,
    pins: Option<skiff_ebpf::PinGuard>,
    agent: Option<Worker>,
}

impl Skiff {
    /// Starts the agent and has it program `services` (the lab is not needed for that).
    fn start(&mut self, services: &[ServicePort]) -> anyhow::Result<Programmed> {
        let pins = skiff_ebpf::PinGuard(skiff_ebpf::PinDir::new(format!(
            "/sys/fs/bpf/skiff-bench-{}",
            std::process::id()
        )));
        let mut command = Command::new(std::env::current_exe()?);
        command.env(ROLE_ENV, "agent");
        process::pin_in(&mut command, CLIENT_CPU);
        let mut agent = Worker::spawn(&mut command)?;
        let told: agent::Told = agent.ask(&agent::Ask::Program {
            n: services.len(),
            pins: pins.0.path().to_owned(),
            cgroup: self.cgroup.clone(),
        })?;
        self.pins = Some(pins);
        self.agent = Some(agent);
        if !told.errors.is_empty() {
            bail!(
                "MapSync::apply: {:?}",
                &told.errors[..told.errors.len().min(3)]
            );
        }
        Ok(Programmed {
            took: Duration::from_secs_f64(told.took_ms / 1e3),
            user_kib: told.rss_kib,
            kernel_kib: told.kernel_kib,
            kernel_services_kib: told.kernel_services_kib,
            per_packet: told.per_packet,
        })
    }

    /// Stops the agent and removes its pins.
    fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(agent) = self.agent.take() {
            agent.process.finish(Duration::from_secs(5))?;
        }
        self.pins = None;
        Ok(())
    }
}

impl Mechanism for Skiff {
    fn name(&self) -> &'static str {
        "skiff"
    }

    fn max_services(&self) -> usize {
        usize::MAX
    }

    fn program(&mut self, _bed: &Bed, services: &[ServicePort]) -> anyhow::Result<Programmed> {
        self.start(services)
    }

    fn change(
        &mut self,
        _bed: &Bed,
        _before: &[ServicePort],
        _after: &[ServicePort],
        _k: usize,
    ) -> anyhow::Result<Vec<(&'static str, Duration)>> {
        let agent = self.agent.as_mut().context("no agent")?;
        let told: agent::Told = agent.ask(&agent::Ask::Change)?;
        if !told.errors.is_empty() {
            bail!("MapSync::apply: {:?}", told.errors);
        }
        Ok(vec![
            (
                "MapSync::apply",
                Duration::from_secs_f64(told.took_ms / 1e3),
            ),
            (PURGE, Duration::from_secs_f64(told.purge_ms / 1e3)),
        ])
    }

    fn clear(&mut self, _bed: &Bed) -> anyhow::Result<()> {
        self.stop()
    }
}

/// kube-proxy's iptables mode: its rules in the node's `filter` and `nat` tables.
struct Iptables {
    max: usize,
}

impl Iptables {
    fn restore(bed: &Bed, text: &str, noflush: bool) -> anyhow::Result<process::Timed> {
        let mut command = bed.lab.node.command("iptables-restore")?;
        if noflush {
            command.arg("--noflush");
        }
        Ok(process::timed(&mut command, text.as_bytes())?)
    }
}

impl Mechanism for Iptables {
    fn name(&self) -> &'static str {
        "iptables"
    }

    fn max_services(&self) -> usize {
        self.max
    }

    fn program(&mut self, bed: &Bed, services: &[ServicePort]) -> anyhow::Result<Programmed> {
        let text = kubeproxy::iptables_restore(services, CLUSTER_CIDR, IptablesSync::Full);
        let before = kernel_kib();
        let timed = Self::restore(bed, &text, false)?;
        Ok(Programmed::loaded(&timed, before))
    }

    fn change(
        &mut self,
        bed: &Bed,
        before: &[ServicePort],
        after: &[ServicePort],
        k: usize,
    ) -> anyhow::Result<Vec<(&'static str, Duration)>> {
        let removed = [before[k].endpoints[0]];
        let partial = kubeproxy::iptables_restore(
            after,
            CLUSTER_CIDR,
            IptablesSync::Changed {
                service: &after[k],
                removed: &removed,
            },
        );
        let partial = Self::restore(bed, &partial, true)?.elapsed;
        let full = kubeproxy::iptables_restore(after, CLUSTER_CIDR, IptablesSync::Full);
        let full = Self::restore(bed, &full, false)?.elapsed;
        Ok(vec![
            (
                "partial sync: iptables-restore --noflush (kube-proxy 1.28+)",
                partial,
            ),
            ("full resync: iptables-restore of both tables", full),
        ])
    }

    fn clear(&mut self, bed: &Bed) -> anyhow::Result<()> {
        // Emptied here rather than by the namespace's deferred cleanup, whose kernel work would
        // overlap the next measurement.
        Self::restore(bed, "*filter\nCOMMIT\n*nat\nCOMMIT\n", false)?;
        Ok(())
    }
}

/// kube-proxy's nftables mode: its `ip kube-proxy` table in the node.
struct Nftables {
    max: usize,
}

impl Nftables {
    fn nft(bed: &Bed, text: &str) -> anyhow::Result<process::Timed> {
        let mut command = bed.lab.node.command("nft")?;
        command.args(["-f", "-"]);
        Ok(process::timed(&mut command, text.as_bytes())?)
    }
}

impl Mechanism for Nftables {
    fn name(&self) -> &'static str {
        "nftables"
    }

    fn max_services(&self) -> usize {
        self.max
    }

    fn program(&mut self, bed: &Bed, services: &[ServicePort]) -> anyhow::Result<Programmed> {
        let text = kubeproxy::nft_ruleset(services, CLUSTER_CIDR, SERVICE_CIDR);
        let before = kernel_kib();
        let timed = Self::nft(bed, &text)?;
        Ok(Programmed::loaded(&timed, before))
    }

    fn change(
        &mut self,
        bed: &Bed,
        before: &[ServicePort],
        after: &[ServicePort],
        k: usize,
    ) -> anyhow::Result<Vec<(&'static str, Duration)>> {
        let text = kubeproxy::nft_endpoints_changed(&before[k], &after[k], CLUSTER_CIDR);
        Ok(vec![(
            "incremental nft -f transaction",
            Self::nft(bed, &text)?.elapsed,
        )])
    }

    fn clear(&mut self, bed: &Bed) -> anyhow::Result<()> {
        Self::nft(bed, &format!("delete table {}\n", kubeproxy::NFT_TABLE))?;
        Ok(())
    }
}

/// Unreclaimable slab plus vmalloc, KiB: where netfilter keeps rules. Machine-wide, so only
/// an approximation of what one load added.
fn kernel_kib() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    field("SUnreclaim:") + field("VmallocUsed:")
}

/// Everything measured for one mechanism at one N.
struct Measured {
    program: Programmed,
    changes: Vec<(&'static str, Duration)>,
    via_service: Rate,
    non_service: Rate,
    /// The median over the rounds of (rate via a ClusterIP / rate straight to the pods) of the
    /// round's two back-to-back tests: a burst of noise spoils one pair, not the figure.
    rate_ratio: f64,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The one measurement sequence every mechanism goes through.
fn measure(
    mechanism: &mut dyn Mechanism,
    n: usize,
    cgroup: &Cgroup,
    s: &Settings,
) -> anyhow::Result<Measured> {
    let before = services(n);
    let (after, k) = changed(&before);
    let mut bed = Bed::create(cgroup, s)?;
    let result = (|| {
        let program = mechanism.program(&bed, &before)?;
        let changes = mechanism.change(&bed, &before, &after, k)?;
        // The two connection tests take turns, so a drift of the machine's speed (these VMs
        // are noisy) lands on both alike.
        let round = Settings {
            seconds: s.seconds / ROUNDS as f64,
            sizes: Vec::new(),
            ..*s
        };
        let (mut via, mut non) = (Vec::new(), Vec::new());
        for round_no in 0..ROUNDS {
            // Each pair runs in both orders in turn, so neither test always follows the other.
            if round_no % 2 == 0 {
                via.push(bed.via_services(n, &round)?);
                non.push(bed.straight_to_pods(&round)?);
            } else {
                non.push(bed.straight_to_pods(&round)?);
                via.push(bed.via_services(n, &round)?);
            }
        }
        let mut ratios: Vec<f64> = via
            .iter()
            .zip(&non)
            .map(|(v, d)| v.per_sec() / d.per_sec())
            .collect();
        let (via_service, non_service) = (Rate::merge(&via), Rate::merge(&non));
        Ok(Measured {
            program,
            changes,
            via_service,
            non_service,
            rate_ratio: median(&mut ratios),
        })
    })();
    let cleared = mechanism.clear(&bed);
    result.and_then(|m| cleared.map(|()| m))
}

/// Turns each connection test is split into (see [`measure`]).
const ROUNDS: usize = 10;

struct Settings {
    seconds: f64,
    clients: usize,
    sizes: Vec<usize>,
    anchor_max: usize,
    nft_budget: f64,
    /// `SKIFF_BENCH_ONLY=per-packet`: only the per-packet figures (see [`per_packet_only`]).
    per_packet_only: bool,
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        Ok(Settings {
            seconds: var("SKIFF_BENCH_SECONDS", "5").parse()?,
            clients: var("SKIFF_BENCH_CLIENTS", "8").parse()?,
            sizes: var("SKIFF_BENCH_SERVICES", "100,1000,10000,100000")
                .split(',')
                .map(|n| n.trim().replace('_', "").parse())
                .collect::<Result<_, _>>()?,
            anchor_max: var("SKIFF_BENCH_ANCHOR_MAX", "10000").parse()?,
            nft_budget: var("SKIFF_BENCH_NFT_BUDGET", "240").parse()?,
            per_packet_only: match var("SKIFF_BENCH_ONLY", "").as_str() {
                "" => false,
                "per-packet" => true,
                other => bail!("SKIFF_BENCH_ONLY={other:?}: the one part is \"per-packet\""),
            },
        })
    }
}

/// One printed and recorded figure: skiff's and its anchors'.
struct Row {
    metric: String,
    unit: &'static str,
    higher_is_better: bool,
    ours: Option<f64>,
    /// (anchor name, figure)
    anchors: Vec<(String, Option<f64>)>,
    /// Per-packet figures: the median of the calls whose best is `ours`.
    median: Option<f64>,
}

const ANCHOR_BASELINE: &str = "no service (straight to the pods, no rules)";
const ANCHOR_IPTABLES: &str = "kube-proxy iptables mode rules (iptables-restore, same lab)";
const ANCHOR_NFTABLES: &str = "kube-proxy nftables mode rules (nft -f, same lab)";

fn driver() -> anyhow::Result<()> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the dataplane benchmark needs root (namespaces, cgroups, BPF)");
    }
    let s = Settings::from_env()?;
    let version = |program: &str, arg: &str| {
        Command::new(program)
            .arg(arg)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|_| format!("{program}: not found"))
    };
    println!(
        "dataplane: kernel {}, {}, {}",
        version("uname", "-r"),
        version("iptables-restore", "--version"),
        version("nft", "--version")
    );
    let ipvs = Path::new("/proc/net/ip_vs").exists() || Path::new("/sys/module/ip_vs").exists();
    println!(
        "IPVS: {}",
        if ipvs {
            "present, but kube-proxy's IPVS mode is not measured"
        } else {
            "not in this kernel, so kube-proxy's IPVS mode is not measured"
        }
    );
    println!(
        "{} client threads (CPU {CLIENT_CPU}) x {} s per connection test; servers on CPU {SERVER_CPU}; \
         {ENDPOINTS} endpoints per service; ClusterIP connections cycle over all N services",
        s.clients, s.seconds
    );

    let cgroup = Cgroup::create("client")?;
    if s.per_packet_only {
        return per_packet_only(&cgroup, &s);
    }
    let baseline = {
        let mut bed = Bed::create(&cgroup, &s)?;
        bed.straight_to_pods(&s)?
    };
    println!(
        "baseline (no service): {:.0} conn/s, p50 {:.2} ms, p99 {:.2} ms",
        baseline.per_sec(),
        baseline.p50_ms,
        baseline.p99_ms
    );

    let mut mechanisms: Vec<Box<dyn Mechanism>> = vec![
        Box::new(Skiff {
            cgroup: cgroup.path().to_owned(),
            pins: None,
            agent: None,
        }),
        Box::new(Iptables { max: s.anchor_max }),
        Box::new(Nftables { max: s.anchor_max }),
    ];
    let mut rows = Vec::new();
    let mut nft_seconds_per_service: Option<f64> = None;
    for &n in &s.sizes {
        let mut results: Vec<(&'static str, anyhow::Result<Measured>)> = Vec::new();
        for mechanism in &mut mechanisms {
            let name = mechanism.name();
            if n > mechanism.max_services() {
                continue;
            }
            if name == "nftables"
                && let Some(per) = nft_seconds_per_service
                && per * n as f64 > s.nft_budget
            {
                println!(
                    "nftables at {n} services skipped: predicted {:.0} s to load, over the {:.0} s budget (SKIFF_BENCH_NFT_BUDGET)",
                    per * n as f64,
                    s.nft_budget
                );
                continue;
            }
            eprintln!("measuring {name} with {n} services");
            let began = Instant::now();
            let measured = measure(mechanism.as_mut(), n, &cgroup, &s);
            if name == "nftables"
                && let Ok(m) = &measured
            {
                // nft's load time grows faster than N: predict with some margin.
                nft_seconds_per_service = Some(m.program.took.as_secs_f64() / n as f64 * 2.0);
            }
            eprintln!("  done in {:.1} s", began.elapsed().as_secs_f64());
            if let Err(err) = &measured {
                println!("{name} at {n} services failed: {err:#}");
            }
            results.push((name, measured));
        }
        rows.extend(rows_for(n, &results, &baseline));
    }
    let flat = flatness_rows(&rows);
    rows.extend(flat);
    print_per_packet(&rows);
    print_rows(&rows);
    write_json(&rows, None)?;
    Ok(())
}

/// `SKIFF_BENCH_ONLY=per-packet`: for each N, the agent programs the services and times the
/// programs; no lab, no connection test, no netfilter. For iterating on the per-packet figures;
/// written to `dataplane-per-packet.json` beside the full run's results.
fn per_packet_only(cgroup: &Cgroup, s: &Settings) -> anyhow::Result<()> {
    let mut skiff = Skiff {
        cgroup: cgroup.path().to_owned(),
        pins: None,
        agent: None,
    };
    let mut rows = Vec::new();
    for &n in &s.sizes {
        eprintln!("measuring skiff's per-packet cost with {n} services");
        let programmed = skiff.start(&services(n));
        skiff.stop()?;
        rows.extend(per_packet_rows(n, &programmed?.per_packet));
    }
    let flat = flatness_rows(&rows);
    rows.extend(flat);
    print_per_packet(&rows);
    print_rows(&rows);
    write_json(&rows, Some("dataplane-per-packet.json"))
}

/// The rows of one N: skiff's figure beside each anchor's.
fn rows_for(
    n: usize,
    results: &[(&'static str, anyhow::Result<Measured>)],
    baseline: &Rate,
) -> Vec<Row> {
    let get = |name: &str| {
        results
            .iter()
            .find(|(m, _)| *m == name)
            .and_then(|(_, r)| r.as_ref().ok())
    };
    let skiff = get("skiff");
    let anchors = |f: &dyn Fn(&Measured) -> f64, with_baseline: Option<f64>| {
        let mut list = Vec::new();
        if let Some(b) = with_baseline {
            list.push((ANCHOR_BASELINE.to_owned(), Some(b)));
        }
        for (name, anchor) in [("iptables", ANCHOR_IPTABLES), ("nftables", ANCHOR_NFTABLES)] {
            if results.iter().any(|(m, _)| *m == name) {
                list.push((anchor.to_owned(), get(name).map(f)));
            }
        }
        list
    };
    let row = |metric: String, unit, higher, f: &dyn Fn(&Measured) -> f64, base: Option<f64>| Row {
        median: None,
        metric,
        unit,
        higher_is_better: higher,
        ours: skiff.map(f),
        anchors: anchors(f, base),
    };
    let mut rows = vec![
        row(
            format!("{n} services: new connections via a ClusterIP"),
            "conn/s",
            true,
            &|m| m.via_service.per_sec(),
            Some(baseline.per_sec()),
        ),
        row(
            format!("{n} services: latency via a ClusterIP, p50"),
            "ms",
            false,
            &|m| m.via_service.p50_ms,
            Some(baseline.p50_ms),
        ),
        row(
            format!("{n} services: latency via a ClusterIP, p99"),
            "ms",
            false,
            &|m| m.via_service.p99_ms,
            Some(baseline.p99_ms),
        ),
        row(
            format!(
                "{n} services: ClusterIP rate / straight-to-pod rate, median of {ROUNDS} alternating pairs (goal >= 0.95)"
            ),
            "x",
            true,
            &|m| m.rate_ratio,
            None,
        ),
        row(
            format!("{n} services: new connections to a non-service address"),
            "conn/s",
            true,
            &|m| m.non_service.per_sec(),
            Some(baseline.per_sec()),
        ),
        row(
            format!("{n} services: latency to a non-service address, p99"),
            "ms",
            false,
            &|m| m.non_service.p99_ms,
            Some(baseline.p99_ms),
        ),
        row(
            format!("{n} services: program all from nothing"),
            "s",
            false,
            &|m| m.program.took.as_secs_f64(),
            None,
        ),
    ];
    if let Some(m) = skiff {
        rows.extend(per_packet_rows(n, &m.program.per_packet));
    }
    // One change row per way an anchor applies it; skiff's one figure is beside each.
    let change_ways: Vec<&'static str> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .flat_map(|m| m.changes.iter().map(|(way, _)| *way))
        .filter(|way| *way != "MapSync::apply" && *way != PURGE)
        .collect();
    let skiff_change = skiff
        .and_then(|m| m.changes.first())
        .map(|c| c.1.as_secs_f64() * 1e3);
    for way in change_ways {
        let anchor = results.iter().find_map(|(name, r)| {
            let m = r.as_ref().ok()?;
            let (_, took) = m.changes.iter().find(|(w, _)| *w == way)?;
            Some((*name, took.as_secs_f64() * 1e3))
        });
        if let Some((name, took)) = anchor {
            rows.push(Row {
                median: None,
                metric: format!("{n} services: one endpoint change (anchor: {way})"),
                unit: "ms",
                higher_is_better: false,
                ours: skiff_change,
                anchors: vec![(
                    if name == "iptables" {
                        ANCHOR_IPTABLES
                    } else {
                        ANCHOR_NFTABLES
                    }
                    .to_owned(),
                    Some(took),
                )],
            });
        }
    }
    if let Some((_, purge)) = skiff.and_then(|m| m.changes.iter().find(|(w, _)| *w == PURGE)) {
        rows.push(Row {
            median: None,
            metric: format!(
                "{n} services: then purging the removed endpoint's conntrack/SNAT/affinity state"
            ),
            unit: "ms",
            higher_is_better: false,
            ours: Some(purge.as_secs_f64() * 1e3),
            anchors: Vec::new(),
        });
    }
    if !results.iter().any(|(m, _)| *m != "skiff") {
        rows.push(Row {
            median: None,
            metric: format!("{n} services: one endpoint change"),
            unit: "ms",
            higher_is_better: false,
            ours: skiff_change,
            anchors: Vec::new(),
        });
    }
    rows.push(row(
        format!("{n} services: agent RSS (anchors: loader command's peak RSS)"),
        "MiB",
        false,
        &|m| m.program.user_kib as f64 / 1024.0,
        None,
    ));
    rows.push(row(
        format!("{n} services: kernel memory (skiff: maps' memlock; anchors: slab+vmalloc growth, approx.)"),
        "MiB",
        false,
        &|m| m.program.kernel_kib as f64 / 1024.0,
        None,
    ));
    rows.push(row(
        format!(
            "{n} services: kernel memory that grows with services (skiff: without LRU flow tables)"
        ),
        "MiB",
        false,
        &|m| m.program.kernel_services_kib as f64 / 1024.0,
        None,
    ));
    rows
}

/// Katran's published forwarding rate (XDP in driver mode, one core): Høiland-Jørgensen et
/// al., "The eXpress Data Path: Fast Programmable Packet Processing in the Operating System
/// Kernel", CoNEXT 2018, Table 2 (load balancer performance, Katran, 1 core: 5.2 Mpps). It is
/// a whole forwarding path (driver RX, program, IPIP encapsulation, TX), so it bounds what a
/// program alone may cost rather than matching the test-run figure exactly.
const KATRAN_MPPS: f64 = 5.2;
const ANCHOR_KATRAN: &str = "Katran, XDP driver mode, 1 core: 5.2 Mpps = 192 ns per packet (XDP paper, CoNEXT 2018, Table 2)";

/// The per-packet rows of one N (BPF_PROG_TEST_RUN: netfilter has no counterpart): an
/// established flow's DNAT beside the empty program of the same kind timed the same way, the
/// same program on a packet to a non-service address, and the DNAT less the empty program,
/// which is the program's own share. The XDP figures stand beside Katran's published rate.
fn per_packet_rows(n: usize, figures: &[agent::PerPacket]) -> Vec<Row> {
    let mut rows = Vec::new();
    for p in figures {
        let path = &p.path;
        let empty = (
            format!("empty {path} program, timed the same way"),
            Some(p.empty.ns),
        );
        let katran = (path == "XDP").then(|| (ANCHOR_KATRAN.to_owned(), Some(1e3 / KATRAN_MPPS)));
        let row = |metric: String, figure: f64, median: Option<f64>, anchors: Vec<_>| Row {
            metric: format!("{n} services: {metric}"),
            unit: "ns",
            higher_is_better: false,
            ours: Some(figure),
            anchors,
            median,
        };
        rows.push(row(
            format!("per-packet cost, skiff {path} path, established flow to a ClusterIP (DNAT)"),
            p.hit.ns,
            Some(p.hit.median),
            [
                Some(empty.clone()),
                Some((
                    format!("the same {path} program on a packet to a non-service address"),
                    Some(p.miss.ns),
                )),
                katran.clone(),
            ]
            .into_iter()
            .flatten()
            .collect(),
        ));
        rows.push(row(
            format!("per-packet cost, skiff {path} path, packet to a non-service address"),
            p.miss.ns,
            Some(p.miss.median),
            vec![empty],
        ));
        rows.push(row(
            format!("per-packet cost less the empty program, skiff {path} path (DNAT)"),
            p.hit.ns - p.empty.ns,
            None,
            katran.into_iter().collect(),
        ));
    }
    rows
}

/// The goal's flatness figures: skiff's per-packet and per-connection cost at the largest N
/// measured against the smallest (goal: at most 1.2x); the per-packet ones also less the
/// empty program measured beside them, which takes the test harness's share out.
fn flatness_rows(rows: &[Row]) -> Vec<Row> {
    let series = |suffix: &str| -> Vec<(usize, f64)> {
        rows.iter()
            .filter_map(|r| {
                let (n, rest) = r.metric.split_once(" services: ")?;
                (rest == suffix).then_some((n.parse().ok()?, r.ours?))
            })
            .collect()
    };
    let mut out = Vec::new();
    for (what, suffix, per_item) in [
        (
            "per-packet cost, tc",
            "per-packet cost, skiff tc path, established flow to a ClusterIP (DNAT)",
            false,
        ),
        (
            "per-packet cost, XDP",
            "per-packet cost, skiff XDP path, established flow to a ClusterIP (DNAT)",
            false,
        ),
        (
            "per-packet cost less the empty program, tc",
            "per-packet cost less the empty program, skiff tc path (DNAT)",
            false,
        ),
        (
            "per-packet cost less the empty program, XDP",
            "per-packet cost less the empty program, skiff XDP path (DNAT)",
            false,
        ),
        (
            "per-connection cost (1 / rate via a ClusterIP)",
            "new connections via a ClusterIP",
            true,
        ),
    ] {
        let points = series(suffix);
        let (Some(first), Some(last)) = (
            points.iter().min_by_key(|p| p.0),
            points.iter().max_by_key(|p| p.0),
        ) else {
            continue;
        };
        let cost = |v: f64| if per_item { 1.0 / v } else { v };
        out.push(Row {
            median: None,
            metric: format!(
                "growth of skiff's {what} from {} to {} services (goal <= 1.2)",
                first.0, last.0
            ),
            unit: "x",
            higher_is_better: false,
            ours: Some(cost(last.1) / cost(first.1)),
            anchors: Vec::new(),
        });
    }
    out
}

fn fmt(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// The per-packet rows with the median call and every anchor.
fn print_per_packet(rows: &[Row]) {
    use agent::{PACKET_REPEAT, PACKET_ROUNDS};
    println!(
        "\nper-packet cost: BPF_PROG_TEST_RUN, the kernel's mean over {PACKET_REPEAT} repeats per \
         call; the best of {PACKET_ROUNDS} calls (and the median call)"
    );
    for row in rows.iter().filter(|r| r.unit == "ns") {
        let median = match (row.median, row.ours) {
            (Some(m), Some(best)) => format!(
                " (median {}, {:+.0}%)",
                fmt(Some(m)),
                (m / best - 1.0) * 100.0
            ),
            _ => String::new(),
        };
        println!("{:<92} {:>7} ns{median}", row.metric, fmt(row.ours));
        for (name, value) in &row.anchors {
            println!("    beside: {:<80} {:>7} ns", name, fmt(*value));
        }
    }
}

fn print_rows(rows: &[Row]) {
    println!(
        "\n{:<96} {:>10} {:>10} {:>10} {:>10}  unit",
        "metric", "skiff", "no-svc", "iptables", "nftables"
    );
    for row in rows {
        let anchor = |name: &str| {
            row.anchors
                .iter()
                .find(|(a, _)| a == name)
                .and_then(|(_, v)| *v)
        };
        println!(
            "{:<96} {:>10} {:>10} {:>10} {:>10}  {}",
            row.metric,
            fmt(row.ours),
            fmt(anchor(ANCHOR_BASELINE)),
            fmt(anchor(ANCHOR_IPTABLES)),
            fmt(anchor(ANCHOR_NFTABLES)),
            row.unit
        );
    }
    println!(
        "\n'-': not measured (anchors only up to SKIFF_BENCH_ANCHOR_MAX services; nftables also \
         within SKIFF_BENCH_NFT_BUDGET). iptables uses the system's iptables-restore; its first \
         load is a plain restore (kube-proxy's own --noflush restore is slower on the nft backend)."
    );
}

/// Writes the rows to `SKIFF_BENCH_OUT`, or to `file_name` in its directory (a partial run's
/// results beside the full ones, not over them).
fn write_json(rows: &[Row], file_name: Option<&str>) -> anyhow::Result<()> {
    let mut metrics = Vec::new();
    for row in rows {
        let Some(ours) = row.ours else { continue };
        let better = if row.higher_is_better {
            "higher"
        } else {
            "lower"
        };
        let none = [("none at this size".to_owned(), None)];
        let anchors = if row.anchors.is_empty() {
            &none[..]
        } else {
            &row.anchors[..]
        };
        for (name, anchor) in anchors {
            let mut metric = serde_json::json!({
                "name": row.metric, "ours": ours, "anchor": anchor,
                "anchor_name": name, "unit": row.unit, "better": better,
            });
            if let Some(median) = row.median {
                metric["median"] = median.into();
            }
            metrics.push(metric);
        }
    }
    let out = std::env::var("SKIFF_BENCH_OUT").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/bench/dataplane.json"
        )
        .to_owned()
    });
    let mut out = PathBuf::from(out);
    if let Some(name) = file_name {
        out.set_file_name(name);
    }
    std::fs::create_dir_all(out.parent().context("output has a directory")?)?;
    let doc = serde_json::json!({ "area": "dataplane", "metrics": metrics });
    std::fs::write(&out, serde_json::to_string_pretty(&doc)?)?;
    println!("\nwrote {}", out.display());
    Ok(())
}
