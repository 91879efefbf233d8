//! `skiff agent`: the node agent: the eBPF service proxy (kube-proxy's job), the pod network (the
//! CNI's node-wide half) and, given a CRI endpoint, the kubelet; DNS joins it with its issue.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, FromArgMatches};
use futures::FutureExt;
use skiff_ebpf::PinDir;
use skiff_ebpf::lb::Sizes;
use skiff_net::Cidr;
use skiff_net::network::Mode;

/// The node agent's flags (named like kube-proxy's where they mean the same).
#[derive(Args, Clone, Debug)]
pub struct AgentArgs {
    /// Kubeconfig to reach the apiserver with.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// This node's name (default: the host name).
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// Addresses NodePorts answer on (default: 127.0.0.1 only).
    #[arg(long, value_delimiter = ',')]
    pub nodeport_addresses: Vec<Ipv4Addr>,
    /// The cgroup2 directory whose processes get the socket-level load balancer.
    #[arg(long, default_value = "/sys/fs/cgroup/unified")]
    pub cgroup_root: PathBuf,
    /// Where the dataplane's maps and links are pinned (under bpffs).
    #[arg(long, default_value = "/sys/fs/bpf/skiff")]
    pub bpf_pin_dir: PathBuf,
    /// The health server (`/healthz`, `/livez`).
    #[arg(long, default_value = "0.0.0.0:10256")]
    pub healthz_bind_address: SocketAddr,
    /// The metrics server (`/metrics`).
    #[arg(long, default_value = "127.0.0.1:10249")]
    pub metrics_bind_address: SocketAddr,
    /// Size of the load balancer's frontend map, created at the first start: one entry per
    /// (frontend, backend) plus one per frontend. Smaller tables are faster to look up.
    #[arg(long, default_value_t = Sizes::default().services)]
    pub lb_frontend_entries: u32,
    /// Interfaces that get the per-packet load balancer at tc (NodePort/ExternalIP/LoadBalancer
    /// traffic from outside the node), e.g. the node's uplink.
    #[arg(long, value_delimiter = ',')]
    pub packet_lb_interfaces: Vec<String>,
    /// Also attach the XDP program to those interfaces.
    #[arg(long)]
    pub xdp: bool,
    /// Remove the pinned dataplane (programs detach, maps go) and exit, like
    /// `kube-proxy --cleanup`.
    #[arg(long)]
    pub cleanup: bool,
    /// Run the pod network (CNI config, routes to other nodes' pods). `false` leaves pod
    /// networking to another plugin.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pod_network: bool,
    /// This node's pod CIDR, written into Node.spec.podCIDR when the Node has none (until a
    /// controller assigns them). The Node's own value wins.
    #[arg(long)]
    pub pod_cidr: Option<Cidr>,
    /// The whole cluster's pod CIDR: traffic to it is never masqueraded.
    #[arg(long, default_value = "10.244.0.0/16")]
    pub cluster_cidr: Cidr,
    /// How pods on other nodes are reached: `native` (routes to each node's podCIDR) or
    /// `overlay` (VXLAN).
    #[arg(long, default_value = "native")]
    pub pod_network_mode: Mode,
    /// Interfaces other nodes' pod traffic arrives on (they get the eBPF delivery program;
    /// without it the host stack delivers).
    #[arg(long, value_delimiter = ',')]
    pub pod_network_interfaces: Vec<String>,
    /// This node's address for other nodes (its InternalIP).
    #[arg(long)]
    pub node_ip: Option<Ipv4Addr>,
    /// The uplink's MTU (pods get it, less the VXLAN headers in overlay mode).
    #[arg(long, default_value_t = 1500)]
    pub mtu: u32,
    /// Where containerd reads CNI network configs.
    #[arg(long, default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: PathBuf,
    /// Where containerd looks for CNI plugins; `skiff-cni` is installed there from beside
    /// this binary.
    #[arg(long, default_value = "/opt/cni/bin")]
    pub cni_bin_dir: PathBuf,
    /// The CNI plugin's IP allocations.
    #[arg(long, default_value = "/var/lib/skiff/cni")]
    pub cni_data_dir: PathBuf,
    /// Masquerade pod traffic leaving the cluster (not to pods or nodes).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub masquerade: bool,
    /// BIG TCP: pods' IPv4 packets through the stack up to this many bytes (native mode, when
    /// every `--pod-network-interfaces` device takes them; Linux 6.3+). 0: off (64 KiB).
    #[arg(long, default_value_t = 196608)]
    pub pod_gso_max_size: u32,
    /// The CRI socket (e.g. containerd's `/run/containerd/containerd.sock`): with it, the
    /// agent also runs the kubelet (pods bound to this node run there); without, it does not.
    #[arg(long)]
    pub container_runtime_endpoint: Option<PathBuf>,
    /// Where pod logs go (`<root>/<namespace>_<name>_<uid>/<container>/<n>.log`).
    #[arg(long, default_value = skiff_kubelet::defaults::POD_LOG_ROOT)]
    pub pod_log_root: PathBuf,
    /// The cgroup parent of every pod.
    #[arg(long, default_value = skiff_kubelet::defaults::CGROUP_PARENT)]
    pub cgroup_parent: String,
    /// The kubelet's state: pods' volumes live under `<root>/pods/<uid>/volumes`.
    #[arg(long, default_value = skiff_kubelet::defaults::ROOT_DIR)]
    pub root_dir: PathBuf,
    /// A directory of static pod manifests (the kubelet's file source).
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// A URL serving a static pod manifest (the kubelet's HTTP source).
    #[arg(long)]
    pub manifest_url: Option<String>,
    /// The kubelet API (logs, exec, stats, which the apiserver reaches at the Node's InternalIP)
    /// as `IP:PORT`, or `IP` on port 10250: the kubelet's `--address` and `--port`. Default:
    /// `--node-ip` (loopback without one), not every address. Port 0 picks a free one,
    /// reported in the Node's status.
    #[arg(long, value_parser = kubelet_bind_address)]
    pub kubelet_bind_address: Option<SocketAddr>,
    /// The cluster DNS service's addresses (comma-separated) that ClusterFirst pods use;
    /// without any, those pods get the node's resolv.conf.
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<std::net::IpAddr>,
    /// The cluster's DNS domain (pods search `<ns>.svc.<domain>`, `svc.<domain>`, `<domain>`).
    #[arg(long, default_value = skiff_kubelet::defaults::CLUSTER_DOMAIN)]
    pub cluster_domain: String,
    /// The resolver configuration pods with dnsPolicy Default inherit; "" for none (they then
    /// use a resolver on the node's loopback).
    #[arg(long, default_value = skiff_kubelet::defaults::RESOLV_CONF)]
    pub resolv_conf: PathBuf,
    /// Unsafe sysctls (comma-separated names, or prefixes ending in `*`) pods may set besides
    /// the safe ones; a pod asking for any other is rejected (SysctlForbidden).
    #[arg(long, value_delimiter = ',')]
    pub allowed_unsafe_sysctls: Vec<String>,
}

impl AgentArgs {
    /// The agent of `skiff up`: this machine, the local API, servers on loopback.
    pub fn local(kubeconfig: PathBuf) -> AgentArgs {
        // The flags' own defaults (clap's, so they are written once), then what differs for
        // a developer's machine.
        let matches =
            AgentArgs::augment_args(clap::Command::new("agent")).get_matches_from(["agent"]);
        let mut args = AgentArgs::from_arg_matches(&matches).expect("the flags' defaults parse");
        args.kubeconfig = Some(kubeconfig);
        args.healthz_bind_address.set_ip(Ipv4Addr::LOCALHOST.into());
        // `skiff up` on a developer's machine leaves the host's networking alone until the
        // one-command cluster brings containerd along.
        args.pod_network = false;
        args.kubelet_bind_address = Some((Ipv4Addr::LOCALHOST, skiff_kubelet::KUBELET_PORT).into());
        args
    }
}

/// Runs the agent until `shutdown`. The dataplane stays pinned afterwards.
pub async fn run(
    args: AgentArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let pins = PinDir::new(&args.bpf_pin_dir);
    if args.cleanup {
        pins.remove()?;
        tracing::info!(pins = %args.bpf_pin_dir.display(), "dataplane removed");
        return Ok(());
    }
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    let client = kube::Client::try_from(config)?;
    let node_name = match args.hostname_override {
        Some(name) => name,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_lowercase())
            .unwrap_or_else(|_| "localhost".into()),
    };
    let shutdown = shutdown.shared();
    let network = args.pod_network.then(|| skiff_net::run::Config {
        node_name: node_name.clone(),
        node_address: args.node_ip,
        pod_cidr: args.pod_cidr,
        cluster_cidr: args.cluster_cidr,
        mode: args.pod_network_mode,
        uplinks: args.pod_network_interfaces.clone(),
        mtu: args.mtu,
        pins: pins.clone(),
        cni_conf_dir: args.cni_conf_dir.clone(),
        cni_bin_dir: Some(args.cni_bin_dir.clone()),
        cni_data_dir: args.cni_data_dir.clone(),
        masquerade: args.masquerade,
        gso_max_size: (args.pod_gso_max_size > 0).then_some(args.pod_gso_max_size),
    });
    let node_addresses = if args.nodeport_addresses.is_empty() {
        vec![Ipv4Addr::LOCALHOST]
    } else {
        args.nodeport_addresses
    };
    let config = skiff_proxy::proxy::Config {
        node_name: node_name.clone(),
        node_addresses,
        pins,
        cgroup: args.cgroup_root,
        sizes: Sizes {
            services: args.lb_frontend_entries,
            ..Sizes::default()
        },
        health_bind: args.healthz_bind_address,
        metrics_bind: args.metrics_bind_address,
        packet_interfaces: args.packet_lb_interfaces,
        xdp: args.xdp,
    };
    let kubelet = match &args.container_runtime_endpoint {
        Some(endpoint) => {
            let cri = skiff_cri::Cri::connect(endpoint)
                .await
                .with_context(|| format!("connecting to the CRI at {}", endpoint.display()))?;
            let mut config = skiff_kubelet::Config::new(&node_name);
            if let Some(ip) = args.node_ip {
                config.addresses = vec![
                    ("InternalIP".into(), ip.to_string()),
                    ("Hostname".into(), node_name.clone()),
                ];
            }
            config.pod_log_root = args.pod_log_root.clone();
            config.cgroup_parent = args.cgroup_parent.clone();
            config.root_dir = args.root_dir.clone();
            if let Some(bind) = args.kubelet_bind_address {
                config.server_address = Some(bind.ip());
                config.server_port = bind.port();
            }
            config.cluster_dns = args.cluster_dns.clone();
            config.cluster_domain = args.cluster_domain.clone();
            config.allowed_unsafe_sysctls = args.allowed_unsafe_sysctls.clone();
            config.resolv_conf =
                (!args.resolv_conf.as_os_str().is_empty()).then(|| args.resolv_conf.clone());
            use skiff_kubelet::static_pods::Source;
            config.static_pods = (args.pod_manifest_path.clone().map(Source::Dir).into_iter())
                .chain(args.manifest_url.clone().map(Source::Url))
                .collect();
            Some(skiff_kubelet::run(
                client.clone(),
                cri,
                config,
                shutdown.clone(),
            ))
        }
        None => None,
    };
    let network =
        network.map(|network| skiff_net::run::run(client.clone(), network, shutdown.clone()));
    let proxy = skiff_proxy::proxy::run(client, config, shutdown);
    // Each part runs until shutdown; the first to fail stops the agent.
    tokio::try_join!(proxy, optional(network), optional(kubelet))?;
    Ok(())
}

/// `--kubelet-bind-address`: `IP:PORT`, or an `IP` alone on the kubelet's port.
fn kubelet_bind_address(value: &str) -> Result<SocketAddr, String> {
    value
        .parse::<SocketAddr>()
        .or_else(|_| {
            let ip = value.parse::<std::net::IpAddr>()?;
            Ok(SocketAddr::new(ip, skiff_kubelet::KUBELET_PORT))
        })
        .map_err(|_: std::net::AddrParseError| format!("{value:?} is neither IP nor IP:PORT"))
}

/// A part of the agent that may be switched off: done at once when it is.
async fn optional(part: Option<impl Future<Output = anyhow::Result<()>>>) -> anyhow::Result<()> {
    match part {
        Some(part) => part.await,
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_bind_addresses_take_an_ip_with_or_without_a_port() {
        let parse = |v: &str| kubelet_bind_address(v).map(|a| a.to_string());
        assert_eq!(parse("10.0.0.5").as_deref(), Ok("10.0.0.5:10250"));
        assert_eq!(parse("0.0.0.0:0").as_deref(), Ok("0.0.0.0:0"));
        assert_eq!(parse("::1").as_deref(), Ok("[::1]:10250"));
        assert_eq!(parse("[::1]:10255").as_deref(), Ok("[::1]:10255"));
        assert!(parse("node-1:10250").is_err());
    }

    #[test]
    fn the_local_agent_keeps_the_flags_defaults_but_for_loopback_and_no_pod_network() {
        let local = AgentArgs::local("/k".into());
        let matches = AgentArgs::augment_args(clap::Command::new("agent")).get_matches_from([
            "agent",
            "--kubeconfig",
            "/k",
        ]);
        let flags = AgentArgs::from_arg_matches(&matches).unwrap();
        assert_eq!(
            local.kubeconfig.as_deref(),
            Some(std::path::Path::new("/k"))
        );
        assert_eq!(local.healthz_bind_address.to_string(), "127.0.0.1:10256");
        assert_eq!(flags.healthz_bind_address.to_string(), "0.0.0.0:10256");
        assert!(!local.pod_network && flags.pod_network);
        assert_eq!(
            local.kubelet_bind_address.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:10250")
        );
        assert_eq!(flags.kubelet_bind_address, None);
        // Everything else is the flags' default.
        let rest = |a: &AgentArgs| {
            let mut a = a.clone();
            a.healthz_bind_address = flags.healthz_bind_address;
            a.pod_network = true;
            a.kubelet_bind_address = None;
            format!("{a:?}")
        };
        assert_eq!(rest(&local), format!("{flags:?}"));
        // The kubelet's defaults are the flags' defaults.
        let kubelet = skiff_kubelet::Config::new("n");
        assert_eq!(local.root_dir, kubelet.root_dir);
        assert_eq!(local.pod_log_root, kubelet.pod_log_root);
        assert_eq!(local.cgroup_parent, kubelet.cgroup_parent);
        assert_eq!(local.cluster_domain, kubelet.cluster_domain);
        assert_eq!(Some(local.resolv_conf), kubelet.resolv_conf);
    }
}
