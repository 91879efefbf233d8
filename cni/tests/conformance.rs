//! The real `skiff-cni` binary driven like a container runtime drives it (root): environment
//! and stdin in, JSON out, against network namespaces this test creates. Every lab has its
//! own "node" namespace (the plugin runs inside it), pin directory and data directory, all
//! removed by guards, failures included.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use skiff_ebpf::net::{Mode, NetConfig, NetMaps, PodNet};
use skiff_ebpf::{PinDir, PinGuard};
use skiff_netlab::NetNs;

const BIN: &str = env!("CARGO_BIN_EXE_skiff-cni");
const POD_CIDR: &str = "10.244.7.0/24";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: needs root");
    }
    root
}

/// A node: its namespace, pin directory and data directory.
struct Lab {
    pins: PinGuard,
    data: tempfile::TempDir,
    /// `podAttach`.
    attach: &'static str,
    // Dropped last: the namespace holds the veths whose links the pins refer to.
    node: NetNs,
}

/// One plugin run's outcome.
#[derive(Debug)]
struct Reply {
    ok: bool,
    json: Option<Value>,
    stderr: String,
}

impl Reply {
    fn code(&self) -> u64 {
        assert!(!self.ok, "expected an error, got {:?}", self.json);
        self.json.as_ref().expect("error JSON")["code"]
            .as_u64()
            .expect("code")
    }
}

impl Lab {
    fn new() -> Lab {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = format!(
            "/sys/fs/bpf/skiff-test-cni-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let pins = PinGuard(PinDir::new(dir));
        let node = NetNs::create("node").unwrap();
        Lab {
            pins,
            data: tempfile::tempdir().unwrap(),
            attach: "tc",
            node,
        }
    }

    fn conf(&self) -> Value {
        json!({
            "cniVersion": "1.1.0",
            "name": "skiff-test",
            "type": "skiff-cni",
            "podCIDR": POD_CIDR,
            "clusterCIDR": "10.244.0.0/16",
            "mtu": 1400,
            "bpfPinDir": self.pins.0.path(),
            "dataDir": self.data.path(),
            "podAttach": self.attach,
        })
    }

    /// Runs the plugin inside the node namespace with exactly `env` and `stdin`.
    fn run(&self, env: &[(&str, &str)], stdin: &[u8]) -> Reply {
        let mut command = self.node.command(BIN).unwrap();
        command
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let output = child.wait_with_output().unwrap();
        let json = (!output.stdout.is_empty()).then(|| {
            serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
                panic!(
                    "stdout is not JSON ({err}): {}",
                    String::from_utf8_lossy(&output.stdout)
                )
            })
        });
        Reply {
            ok: output.status.success(),
            json,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn cmd(&self, command: &str, id: &str, netns: &str, conf: &Value) -> Reply {
        let env = [
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", id),
            ("CNI_NETNS", netns),
            ("CNI_IFNAME", "eth0"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p",
            ),
            ("CNI_PATH", "/opt/cni/bin"),
        ];
        self.run(&env, conf.to_string().as_bytes())
    }

    fn add(&self, id: &str, sandbox: &NetNs) -> Ipv4Addr {
        let reply = self.cmd("ADD", id, &sandbox.path().to_string_lossy(), &self.conf());
        assert!(reply.ok, "ADD {id}: {reply:?}");
        let result = reply.json.unwrap();
        let address = result["ips"][0]["address"].as_str().unwrap();
        address.strip_suffix("/32").unwrap().parse().unwrap()
    }

    fn del(&self, id: &str, netns: &str) -> Reply {
        self.cmd("DEL", id, netns, &self.conf())
    }

    fn check(&self, id: &str, sandbox: &NetNs) -> Reply {
        self.cmd("CHECK", id, &sandbox.path().to_string_lossy(), &self.conf())
    }

    fn allocations(&self) -> usize {
        let dir = self.data.path().join("networks/skiff-test");
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().parse::<Ipv4Addr>().is_ok())
                    .count()
            })
            .unwrap_or(0)
    }

    fn host_link_exists(&self, id: &str) -> bool {
        let name = skiff_cni::plugin::host_veth_name(id, "eth0");
        self.node.ip(&["link", "show", "dev", &name]).is_ok()
    }

    fn maps(&self) -> NetMaps {
        NetMaps::open(&self.pins.0).unwrap()
    }
}

#[test]
fn add_check_del() {
    if !is_root() {
        return;
    }
    let lab = Lab::new();
    let pod = NetNs::create("pod").unwrap();
    let netns = pod.path().to_string_lossy().into_owned();
    let reply = lab.cmd("ADD", "c1", &netns, &lab.conf());
    assert!(reply.ok, "{reply:?}");
    let result = reply.json.unwrap();
    assert_eq!(result["cniVersion"], "1.1.0");
    assert_eq!(result["interfaces"][1]["name"], "eth0");
    assert_eq!(result["interfaces"][1]["sandbox"], netns.as_str());
    assert!(result["interfaces"][0].get("sandbox").is_none());
    assert_eq!(result["ips"][0]["interface"], 1);
    assert_eq!(result["ips"][0]["gateway"], "169.254.1.1");
    assert_eq!(result["routes"][0]["dst"], "0.0.0.0/0");
    let address: Ipv4Addr = result["ips"][0]["address"]
        .as_str()
        .unwrap()
        .strip_suffix("/32")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(address, Ipv4Addr::new(10, 244, 7, 1));

    // What the pod sees.
    let out = pod
        .run("ip", &["-4", "-o", "addr", "show", "dev", "eth0"])
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("10.244.7.1/32"), "{text}");
    let out = pod.run("ip", &["route"]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("default via 169.254.1.1 dev eth0"), "{text}");
    let out = pod.run("ip", &["link", "show", "dev", "eth0"]).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("mtu 1400"));
    let out = pod.run("ip", &["neigh", "show", "169.254.1.1"]).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("PERMANENT"));
    // The endpoint, keyed by the pod address, points at the host veth.
    let endpoint = lab.maps().endpoint(address).unwrap().expect("endpoint");
    assert_eq!(endpoint.identity, skiff_cni::plugin::identity("c1"));

    let reply = lab.check("c1", &pod);
    assert!(reply.ok, "CHECK: {reply:?}");
    // CHECK notices a broken pod.
    pod.ip(&["route", "del", "default"]).unwrap();
    assert!(!lab.check("c1", &pod).ok);

    for _ in 0..2 {
        let reply = lab.del("c1", &netns);
        assert!(reply.ok && reply.json.is_none(), "DEL: {reply:?}");
    }
    assert!(!lab.host_link_exists("c1"));
    assert!(pod.ip(&["link", "show", "dev", "eth0"]).is_err());
    assert_eq!(lab.allocations(), 0);
    assert!(lab.maps().endpoint(address).unwrap().is_none());
    assert_eq!(lab.check("c1", &pod).code(), 3);
}

#[test]
fn del_of_unknown_container_or_missing_netns_succeeds() {
    if !is_root() {
        return;
    }
    let lab = Lab::new();
    let reply = lab.del("never-added", "/var/run/netns/does-not-exist");
    assert!(reply.ok, "{reply:?}");
    let env = [
        ("CNI_COMMAND", "DEL"),
        ("CNI_CONTAINERID", "never-added"),
        ("CNI_IFNAME", "eth0"),
    ];
    let reply = lab.run(&env, lab.conf().to_string().as_bytes());
    assert!(reply.ok, "DEL without CNI_NETNS: {reply:?}");
    // The sandbox's namespace went away before DEL: the address is still released.
    let pod = NetNs::create("gone").unwrap();
    let netns = pod.path().to_string_lossy().into_owned();
    lab.add("c2", &pod);
    drop(pod);
    assert!(lab.del("c2", &netns).ok);
    assert_eq!(lab.allocations(), 0);
    assert!(!lab.host_link_exists("c2"));
}

#[test]
fn add_twice_keeps_one_address() {
    if !is_root() {
        return;
    }
    let lab = Lab::new();
    let pod = NetNs::create("pod").unwrap();
    let first = lab.add("c3", &pod);
    let second = lab.add("c3", &pod);
    assert_eq!(first, second);
    assert_eq!(lab.allocations(), 1);
    assert!(lab.check("c3", &pod).ok);
    assert!(lab.del("c3", &pod.path().to_string_lossy()).ok);
    assert_eq!(lab.allocations(), 0);
}

#[test]
fn failed_add_leaves_nothing_behind() {
    if !is_root() {
        return;
    }
    let lab = Lab::new();
    let pod = NetNs::create("pod").unwrap();
    // The sandbox already has an eth0: the veth cannot be created there.
    pod.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "other0",
    ])
    .unwrap();
    let reply = lab.cmd("ADD", "c4", &pod.path().to_string_lossy(), &lab.conf());
    assert!(!reply.ok, "{reply:?}");
    assert_eq!(lab.allocations(), 0);
    assert!(!lab.host_link_exists("c4"));
    // ADD into a namespace that does not exist.
    let reply = lab.cmd("ADD", "c5", "/var/run/netns/nope-nope", &lab.conf());
    assert_eq!(reply.code(), 3);
    assert_eq!(lab.allocations(), 0);
}

#[test]
fn concurrent_adds_get_distinct_addresses() {
    if !is_root() {
        return;
    }
    let lab = Lab::new();
    let pods: Vec<NetNs> = (0..20)
        .map(|i| NetNs::create(&format!("p{i}")).unwrap())
        .collect();
    let addresses: Vec<Ipv4Addr> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| {
                let lab = &lab;
                s.spawn(move || lab.add(&format!("conc{i}"), pod))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let unique: HashSet<_> = addresses.iter().collect();
    assert_eq!(unique.len(), 20, "{addresses:?}");
    assert_eq!(lab.allocations(), 20);
    assert_eq!(lab.maps().endpoints().unwrap().len(), 20);
    for (i, pod) in pods.iter().enumerate() {
        assert!(lab.check(&format!("conc{i}"), pod).ok);
        assert!(
            lab.del(&format!("conc{i}"), &pod.path().to_string_lossy())
                .ok
        );
    }
    assert_eq!(lab.allocations(), 0);
    assert!(lab.maps().endpoints().unwrap().is_empty());
}

#[test]
fn bad_config_and_env() {
    if !is_root() {
        return;
    }
    let lab = Lab::new();
    let pod = NetNs::create("pod").unwrap();
    let netns = pod.path().to_string_lossy().into_owned();
    let mut conf = lab.conf();
    conf.as_object_mut().unwrap().remove("podCIDR");
    assert_eq!(lab.cmd("ADD", "b1", &netns, &conf).code(), 7);
    let mut conf = lab.conf();
    conf["podCIDR"] = json!("10.244.7.0/40");
    assert_eq!(lab.cmd("ADD", "b1", &netns, &conf).code(), 7);
    conf["podCIDR"] = json!("10.244.7.5/24");
    assert_eq!(lab.cmd("ADD", "b1", &netns, &conf).code(), 7);
    let mut conf = lab.conf();
    conf["cniVersion"] = json!("0.2.0");
    let reply = lab.cmd("ADD", "b1", &netns, &conf);
    assert_eq!(reply.code(), 1);
    assert!(
        reply.json.unwrap()["msg"]
            .as_str()
            .unwrap()
            .contains("0.2.0")
    );
    let env = [
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "b1"),
        ("CNI_IFNAME", "eth0"),
    ];
    let reply = lab.run(&env, b"{\"cniVersion\": \"1.0.0\", ");
    assert_eq!(reply.code(), 4, "env is checked first");
    let env = [
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "b1"),
        ("CNI_NETNS", &netns),
        ("CNI_IFNAME", "eth0"),
    ];
    assert_eq!(lab.run(&env, b"{nope").code(), 6);
    let conf = lab.conf().to_string();
    assert_eq!(
        lab.run(&env[1..], conf.as_bytes()).code(),
        4,
        "no CNI_COMMAND"
    );
    let no_id = [env[0], env[2], env[3]];
    assert_eq!(
        lab.run(&no_id, conf.as_bytes()).code(),
        4,
        "no CNI_CONTAINERID"
    );
    let no_netns = [env[0], env[1], env[3]];
    assert_eq!(
        lab.run(&no_netns, conf.as_bytes()).code(),
        4,
        "no CNI_NETNS"
    );
    assert_eq!(lab.allocations(), 0);
}

#[test]
fn version_status_gc() {
    if !is_root() {
        return;
    }
    let lab = Lab::new();
    let reply = lab.run(&[("CNI_COMMAND", "VERSION")], br#"{"cniVersion":"1.0.0"}"#);
    assert!(reply.ok);
    let json = reply.json.unwrap();
    assert_eq!(json["cniVersion"], "1.0.0");
    let versions: Vec<&str> = json["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(versions, ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]);

    let conf = lab.conf().to_string();
    let reply = lab.run(&[("CNI_COMMAND", "STATUS")], conf.as_bytes());
    assert!(reply.ok && reply.json.is_none(), "{reply:?}");
    // A full podCIDR: not available.
    let mut tiny = lab.conf();
    tiny["podCIDR"] = json!("10.244.9.0/30");
    let pods: Vec<NetNs> = (0..2)
        .map(|i| NetNs::create(&format!("t{i}")).unwrap())
        .collect();
    for (i, pod) in pods.iter().enumerate() {
        let reply = lab.cmd(
            "ADD",
            &format!("tiny{i}"),
            &pod.path().to_string_lossy(),
            &tiny,
        );
        assert!(reply.ok, "{reply:?}");
    }
    let reply = lab.run(&[("CNI_COMMAND", "STATUS")], tiny.to_string().as_bytes());
    assert_eq!(reply.code(), 50);
    // An unwritable data directory.
    let mut unwritable = lab.conf();
    unwritable["dataDir"] = json!("/dev/null/skiff");
    let reply = lab.run(
        &[("CNI_COMMAND", "STATUS")],
        unwritable.to_string().as_bytes(),
    );
    assert_eq!(reply.code(), 50);

    // GC keeps tiny0 only.
    let mut gc = tiny.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "tiny0", "ifname": "eth0"}]);
    let reply = lab.run(&[("CNI_COMMAND", "GC")], gc.to_string().as_bytes());
    assert!(reply.ok, "{reply:?}");
    assert_eq!(lab.allocations(), 1);
    assert!(lab.host_link_exists("tiny0"));
    assert!(!lab.host_link_exists("tiny1"));
    assert!(
        lab.cmd("CHECK", "tiny0", &pods[0].path().to_string_lossy(), &tiny)
            .ok
    );
    assert_eq!(lab.maps().endpoints().unwrap().len(), 1);
    let reply = lab.run(&[("CNI_COMMAND", "STATUS")], tiny.to_string().as_bytes());
    assert!(reply.ok, "{reply:?}");
}

/// Serves one connection at a time: answers with the peer's address.
fn serve_peer_address(ns: &NetNs, address: Ipv4Addr) -> std::thread::JoinHandle<()> {
    let listener = ns
        .within(move || TcpListener::bind((address, 7070)))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let peer = stream.peer_addr().unwrap();
            let _ = stream.write_all(peer.ip().to_string().as_bytes());
        }
    })
}

fn peer_seen(ns: &NetNs, server: Ipv4Addr) -> String {
    ns.within(move || {
        let target = SocketAddr::from((server, 7070));
        let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))
            .unwrap_or_else(|err| panic!("connecting to {target}: {err}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    })
    .unwrap()
}

#[test]
fn pods_reach_each_other_and_the_node_reaches_both_tc() {
    pods_reach_each_other("tc");
}

#[test]
fn pods_reach_each_other_and_the_node_reaches_both_tcx() {
    pods_reach_each_other("tcx");
}

fn pods_reach_each_other(attach: &'static str) {
    if !is_root() {
        return;
    }
    let mut lab = Lab::new();
    lab.attach = attach;
    let node = &lab.node;
    node.sysctl("net.ipv4.ip_forward", "1").unwrap();
    for scope in ["all", "default"] {
        node.sysctl(&format!("net.ipv4.conf.{scope}.rp_filter"), "0")
            .unwrap();
    }
    // The node's own address (on a stand-in uplink: this kernel has no dummy links): its
    // source towards pods.
    node.ip(&["link", "add", "ul0", "type", "veth", "peer", "name", "ul0p"])
        .unwrap();
    node.ip(&["link", "set", "ul0p", "up"]).unwrap();
    node.ip(&["addr", "add", "192.168.77.1/24", "dev", "ul0"])
        .unwrap();
    node.ip(&["link", "set", "ul0", "up"]).unwrap();
    // What the node agent does before pods arrive.
    lab.pins.0.ensure().unwrap();
    lab.maps()
        .set_config(&NetConfig {
            cluster_cidr: (Ipv4Addr::new(10, 244, 0, 0), 16),
            pod_cidr: (Ipv4Addr::new(10, 244, 7, 0), 24),
            mode: Mode::Native,
        })
        .unwrap();
    PodNet::load_and_pin(&lab.pins.0).unwrap();

    let a = NetNs::create("a").unwrap();
    let b = NetNs::create("b").unwrap();
    let a_ip = lab.add("pod-a", &a);
    let b_ip = lab.add("pod-b", &b);
    // The routing program sits on each host veth's ingress, the way `podAttach` says.
    let host_a = skiff_cni::plugin::host_veth_name("pod-a", "eth0");
    let filters = node
        .run("tc", &["filter", "show", "dev", &host_a, "ingress"])
        .unwrap();
    let filters = String::from_utf8_lossy(&filters.stdout).into_owned();
    assert_eq!(
        filters.contains("net4_from_pod"),
        attach == "tc",
        "{filters}"
    );
    assert!(lab.check("pod-a", &a).ok);
    let _server_b = serve_peer_address(&b, b_ip);
    let _server_a = serve_peer_address(&a, a_ip);
    assert_eq!(
        peer_seen(&a, b_ip),
        a_ip.to_string(),
        "A -> B keeps A's address"
    );
    assert_eq!(peer_seen(&b, a_ip), b_ip.to_string(), "B -> A");
    assert_eq!(peer_seen(node, a_ip), "192.168.77.1", "node -> A");
    assert_eq!(peer_seen(node, b_ip), "192.168.77.1", "node -> B");
    let reply = lab.del("pod-a", &a.path().to_string_lossy());
    assert!(reply.ok, "{reply:?}: {}", reply.stderr);
}
