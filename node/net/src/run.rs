//! The agent's pod-network component: podCIDR from the Node (or the flag), the node set up,
//! the CNI config written, the Node marked network-available, then every Node change applied
//! to the routes or tunnels (level-triggered: each pass recomputes from all Nodes).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use skiff_ebpf::PinDir;

use crate::Cidr;
use crate::cni_config::{self, PluginConfig};
use crate::network::{Mode, NodeNetwork, Setup, VXLAN_OVERHEAD};
use crate::node;

/// How the pod network runs on this node.
#[derive(Clone, Debug)]
pub struct Config {
    pub node_name: String,
    /// This node's address for other nodes (its InternalIP).
    pub node_address: Option<Ipv4Addr>,
    /// `--pod-cidr`: used when the Node has none yet.
    pub pod_cidr: Option<Cidr>,
    pub cluster_cidr: Cidr,
    pub mode: Mode,
    pub uplinks: Vec<String>,
    /// The uplink MTU; pods get it (minus the overlay's headers in overlay mode).
    pub mtu: u32,
    pub pins: PinDir,
    pub cni_conf_dir: PathBuf,
    /// Where to install the `skiff-cni` binary (from beside the running executable).
    pub cni_bin_dir: Option<PathBuf>,
    /// The plugin's IPAM state.
    pub cni_data_dir: PathBuf,
    pub masquerade: bool,
    /// BIG TCP for pods: the IPv4 GSO size wanted (native mode, as far as the uplinks take it).
    pub gso_max_size: Option<u32>,
}

/// Runs until `shutdown`. The network stays configured afterwards (pods keep working).
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let pod_cidr = loop {
        match node::ensure_pod_cidr(
            &client,
            &config.node_name,
            config.node_address,
            config.pod_cidr,
        )
        .await
        {
            Ok(Some(cidr)) => break cidr,
            Ok(None) => tracing::info!("waiting for this Node's podCIDR (or pass --pod-cidr)"),
            Err(err) => tracing::warn!(error = %err, "reading this Node's podCIDR"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = &mut shutdown => return Ok(()),
        }
    };
    let setup = Setup {
        pod_cidr,
        cluster_cidr: config.cluster_cidr,
        mode: config.mode,
        uplinks: config.uplinks.clone(),
        pins: config.pins.clone(),
        masquerade: config.masquerade,
        gso_max_size: config.gso_max_size,
    };
    let network = tokio::task::block_in_place(|| NodeNetwork::setup(setup))?;
    let gso_max_size = network.pod_gso_max_size();
    let network = std::sync::Arc::new(std::sync::Mutex::new(network));
    if let Some(bin_dir) = &config.cni_bin_dir {
        let beside = std::env::current_exe()?.with_file_name(cni_config::PLUGIN);
        if beside.exists() {
            cni_config::install_plugin(&beside, bin_dir)?;
        } else {
            tracing::warn!(path = %beside.display(), "no skiff-cni beside the agent to install");
        }
    }
    let mtu = match config.mode {
        Mode::Native => config.mtu,
        Mode::Overlay { .. } => config.mtu - VXLAN_OVERHEAD,
    };
    let path = cni_config::write(
        &config.cni_conf_dir,
        &PluginConfig {
            pod_cidr,
            cluster_cidr: config.cluster_cidr,
            mtu,
            gso_max_size,
            bpf_pin_dir: config.pins.path().to_path_buf(),
            data_dir: config.cni_data_dir.clone(),
        },
    )?;
    tracing::info!(%pod_cidr, conflist = %path.display(), "pod network ready");
    if let Err(err) = node::set_network_available(&client, &config.node_name).await {
        tracing::warn!(error = %err, "marking the Node's network available");
    }

    let nodes: Api<Node> = Api::all(client);
    // The Nodes as last listed and watched; a relist builds a fresh set and swaps it in.
    let mut known: BTreeMap<String, Node> = BTreeMap::new();
    let mut relisting: Option<BTreeMap<String, Node>> = None;
    let mut stream = std::pin::pin!(watcher::watcher(nodes, watcher::Config::default()));
    loop {
        let event = tokio::select! {
            event = stream.next() => event,
            _ = &mut shutdown => break,
        };
        let apply = match event {
            None => break,
            Some(Err(err)) => {
                tracing::warn!(error = %err, "watching Nodes");
                false
            }
            Some(Ok(Event::Init)) => {
                relisting = Some(BTreeMap::new());
                false
            }
            Some(Ok(Event::InitApply(node))) => {
                relisting
                    .get_or_insert_default()
                    .insert(node.name_any(), node);
                false
            }
            Some(Ok(Event::InitDone)) => {
                known = relisting.take().unwrap_or_default();
                true
            }
            Some(Ok(Event::Apply(node))) => {
                known.insert(node.name_any(), node);
                true
            }
            Some(Ok(Event::Delete(node))) => {
                known.remove(&node.name_any());
                true
            }
        };
        if apply {
            let peers = node::peers(known.values(), &config.node_name);
            let network = network.clone();
            let result =
                tokio::task::block_in_place(|| network.lock().unwrap().apply_peers(&peers));
            if let Err(err) = result {
                tracing::warn!(error = %err, "applying routes to other nodes");
            }
        }
    }
    tracing::info!("pod network component stopping; the network stays configured");
    Ok(())
}
