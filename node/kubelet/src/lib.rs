//! skiff's kubelet: registers the Node and keeps its status and Lease fresh ([`node`]), and
//! runs the pods bound to it through the CRI ([`pods`] watches them, one [`worker`] per pod
//! syncs sandbox, images and containers level-triggered, [`status`] reports them, [`probe`]
//! checks them).
//!
//! Only the public Kubernetes API (kube-rs) and the CRI are used; every piece of state the
//! kubelet needs after a restart lives in CRI labels, so a restarted kubelet adopts what runs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use skiff_cri::Cri;

pub mod backoff;
pub mod cgroups;
pub mod configmap_secret;
pub mod dns;
pub mod downward_api;
pub mod env;
pub mod events;
pub mod hooks;
pub mod http_client;
pub mod images;
pub mod node;
pub mod pods;
pub mod probe;
pub mod pull_secrets;
pub mod quantity;
pub mod runtime;
pub mod security;
pub mod server;
pub mod static_pods;
pub mod stats;
pub mod status;
pub mod streaming;
pub mod tls;
pub mod volumes;
pub mod worker;

/// The kubelet version the Node reports.
pub const KUBELET_VERSION: &str = "v1.37.0-skiff";

/// The kubelet API's port unless told otherwise (Kubernetes' `ports.KubeletPort`).
pub const KUBELET_PORT: u16 = 10250;

/// The defaults of [`Config::new`] that a command line also offers as flags (`skiff agent`
/// takes its flags' defaults from here).
pub mod defaults {
    /// Where pod logs go (Kubernetes' `/var/log/pods`).
    pub const POD_LOG_ROOT: &str = "/var/log/pods";
    /// The kubelet's state directory (pods' volumes under `<root>/pods/<uid>/volumes`).
    pub const ROOT_DIR: &str = "/var/lib/skiff/kubelet";
    /// The cgroup parent of every pod.
    pub const CGROUP_PARENT: &str = "/kubepods";
    /// The cluster's DNS domain.
    pub const CLUSTER_DOMAIN: &str = "cluster.local";
    /// The node's resolver configuration.
    pub const RESOLV_CONF: &str = "/etc/resolv.conf";
}

/// How the kubelet runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Node's name (pods with this `spec.nodeName` are ours).
    pub node_name: String,
    /// The Node's addresses as `(type, address)`, e.g. `("InternalIP", "10.0.0.5")`; the
    /// first InternalIP is the pods' hostIP.
    pub addresses: Vec<(String, String)>,
    /// Pod logs go to `<root>/<namespace>_<name>_<uid>/<container>/<attempt>.log`.
    pub pod_log_root: PathBuf,
    /// The kubelet's state directory: pod volumes live under `<root>/pods/<uid>/volumes`.
    pub root_dir: PathBuf,
    /// The cgroup parent of every pod: a pod's cgroup is `<parent>/pod<uid>` (Guaranteed),
    /// `<parent>/burstable/pod<uid>` or `<parent>/besteffort/pod<uid>`.
    pub cgroup_parent: String,
    /// The cluster DNS servers ClusterFirst pods use (empty: they use the node's resolver).
    pub cluster_dns: Vec<IpAddr>,
    /// The cluster's DNS domain, for ClusterFirst pods' search path.
    pub cluster_domain: String,
    /// Unsafe sysctls pods may set besides the safe ones (names, or prefixes ending in `*`).
    pub allowed_unsafe_sysctls: Vec<String>,
    /// The node's resolver configuration, the base of Default pods' DNS (`None`: the node's
    /// own resolver on 127.0.0.1).
    pub resolv_conf: Option<PathBuf>,
    /// The filesystem whose size is the Node's ephemeral-storage capacity.
    pub ephemeral_storage_dir: PathBuf,
    /// The Node's pod capacity.
    pub max_pods: u32,
    /// How often each pod worker relists its containers from the CRI.
    pub relist_period: Duration,
    /// How often the Lease is renewed.
    pub lease_period: Duration,
    /// The first crash-loop back-off; it doubles per restart up to `backoff_max`.
    pub backoff_initial: Duration,
    /// The longest crash-loop back-off.
    pub backoff_max: Duration,
    /// Static pod sources (a manifest directory, a manifest URL), kept as mirror pods.
    pub static_pods: Vec<static_pods::Source>,
    /// The kubelet API's ([`server`]) address (Kubernetes' `address`). `None`: the node's
    /// InternalIP, the address the Node reports and the apiserver dials, rather than every
    /// address (the API runs commands in pods); loopback when the node has none.
    pub server_address: Option<IpAddr>,
    /// The kubelet API's port (Kubernetes' `port`); 0 picks a free one.
    pub server_port: u16,
    /// Where the kubelet API listens, once [`run`] bound it: its port is the one the Node's
    /// `status.daemonEndpoints` report.
    pub(crate) server_bind: SocketAddr,
    /// Where the kubelet's events go; [`run`] starts the writer (the default drops them).
    pub events: events::Recorder,
}

impl Config {
    /// Kubernetes' defaults for node `node_name`.
    pub fn new(node_name: &str) -> Config {
        Config {
            node_name: node_name.to_owned(),
            addresses: Vec::new(),
            pod_log_root: PathBuf::from(defaults::POD_LOG_ROOT),
            root_dir: PathBuf::from(defaults::ROOT_DIR),
            cgroup_parent: defaults::CGROUP_PARENT.to_owned(),
            cluster_dns: Vec::new(),
            allowed_unsafe_sysctls: Vec::new(),
            cluster_domain: defaults::CLUSTER_DOMAIN.to_owned(),
            resolv_conf: Some(PathBuf::from(defaults::RESOLV_CONF)),
            ephemeral_storage_dir: PathBuf::from("/var/lib"),
            max_pods: 110,
            relist_period: Duration::from_secs(1),
            lease_period: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            static_pods: Vec::new(),
            server_address: None,
            server_port: KUBELET_PORT,
            server_bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, KUBELET_PORT)),
            events: events::Recorder::default(),
        }
    }

    /// The pods' hostIP: the first InternalIP address.
    pub fn host_ip(&self) -> Option<IpAddr> {
        self.addresses
            .iter()
            .filter(|(kind, _)| kind == "InternalIP")
            .find_map(|(_, address)| address.parse().ok())
    }

    /// The kubelet API's address: `server_address`, else the InternalIP, else loopback.
    fn server_bind_ip(&self) -> IpAddr {
        self.server_address
            .or_else(|| self.host_ip())
            .unwrap_or_else(|| {
                tracing::warn!(
                    "the node has no InternalIP: the kubelet API listens on loopback only"
                );
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            })
    }
}

/// Runs the kubelet until `shutdown` completes: serves the kubelet API, registers the Node,
/// heartbeats, and syncs the node's pods. On shutdown the containers keep running (a restarted
/// kubelet adopts them).
pub async fn run(
    client: kube::Client,
    cri: Cri,
    mut config: Config,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Bound first, so the Node reports the port actually listened on.
    let bind = SocketAddr::new(config.server_bind_ip(), config.server_port);
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding the kubelet API to {bind}"))?;
    config.server_bind = listener.local_addr()?;
    tracing::info!(address = %config.server_bind, "serving the kubelet API");
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let known = pods::Known::default();
    let sources = server::Sources {
        pod_log_root: config.pod_log_root.clone(),
        pods: Some(known.clone()),
        stats: Some(Arc::new(stats::Collector::new(
            cri.clone(),
            &config.node_name,
        ))),
        streaming: Some(cri.clone()),
    };
    // A self-signed serving certificate for the node's names, as the kubelet makes without
    // --tls-cert-file.
    let names: Vec<String> = std::iter::once(config.node_name.clone())
        .chain(config.addresses.iter().map(|(_, address)| address.clone()))
        .collect();
    let certificate = tls::self_signed(&config.node_name, &names)?;
    let server = tokio::spawn(server::serve_tls(
        listener,
        tls::server_config(&certificate)?,
        sources,
        async move {
            let _ = server_stopped.await;
        },
    ));
    let (recorder, event_writer) = events::Recorder::start(client.clone(), &config.node_name);
    config.events = recorder;
    let config = Arc::new(config);
    if let Err(err) = node::register(&client, &cri, &config).await {
        server.abort();
        event_writer.abort();
        return Err(err);
    }
    config
        .events
        .node(&config.node_name)
        .normal("Starting", "Starting kubelet.");
    let heartbeat = tokio::spawn(node::heartbeat(client.clone(), cri.clone(), config.clone()));
    // Kubernetes checks static pod files every 20 s; a few seconds is friendlier to editing.
    let static_pods = (!config.static_pods.is_empty()).then(|| {
        tokio::spawn(static_pods::run(
            client.clone(),
            config.node_name.clone(),
            config.static_pods.clone(),
            Duration::from_secs(2),
        ))
    });
    let result = tokio::select! {
        result = pods::run(client, cri, config, known) => result,
        () = shutdown => Ok(()),
    };
    heartbeat.abort();
    let _ = stop_server.send(());
    server.abort();
    if let Some(static_pods) = static_pods {
        static_pods.abort();
    }
    event_writer.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelet_api_listens_on_the_internal_ip() {
        let mut config = Config::new("n1");
        assert_eq!(
            config.server_bind_ip(),
            Ipv4Addr::LOCALHOST,
            "no address yet"
        );
        config.addresses = vec![
            ("Hostname".into(), "n1".into()),
            ("InternalIP".into(), "10.0.0.5".into()),
        ];
        assert_eq!(config.server_bind_ip(), Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(config.server_port, 10250);
        config.server_address = Some(Ipv4Addr::UNSPECIFIED.into());
        assert_eq!(config.server_bind_ip(), Ipv4Addr::UNSPECIFIED, "asked for");
    }
}
