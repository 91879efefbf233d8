//! Pod networking in eBPF (the CNI's dataplane): `c/net_tc.bpf.c` and the pinned maps of
//! `c/include/net_*.h`.
//!
//! CONTRACT (filled in by the ebpf-net work; signatures are what `skiff-cni` and `skiff-net`
//! call):
//! - [`NetMaps`]: the pinned maps: endpoints (pod IPv4 → host-side veth ifindex, MACs, identity),
//!   the node's routing config, and the overlay's tunnel table (pod CIDR → node address).
//! - [`PodNet`]: attaches the routing programs through pinned tcx links: a pod's host-side veth
//!   (traffic from the pod), the node's uplink (traffic to local pods), the overlay device.

use std::ffi::CString;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use libbpf_rs::{MapHandle, Object, libbpf_sys};

use crate::consts;
use crate::lb::{addr_of, be_addr, entries, get, percpu_sum, put, remove};
use crate::object::{self, PinDir};
use crate::plain::Plain;
use crate::{Context, Error, Result};

crate::skeleton!("net_tc");

/// The map key and value types, generated from `c/include/net_structs.h`.
pub mod types {
    pub use super::skel::types::{net4_config, net4_endpoint, net4_tunnel, net4_tunnel_key};
}
use types::*;

// SAFETY: generated from C structs whose padding is spelled out as fields; all integers.
unsafe impl Plain for net4_endpoint {}
unsafe impl Plain for net4_config {}
unsafe impl Plain for net4_tunnel_key {}
unsafe impl Plain for net4_tunnel {}

/// The routing programs' object, compiled by `build.rs`.
static NET_TC_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/net_tc.bpf.o"));

/// The programs' names (also their pin names under `<pins>/progs/`).
pub mod programs {
    /// tcx ingress of a pod's host-side veth: the pod's traffic.
    pub const FROM_POD: &str = "net4_from_pod";
    /// tcx ingress of the uplink and the overlay device: traffic for local pods.
    pub const TO_POD: &str = "net4_to_pod";
    /// tcx egress of the overlay device: tunnel keys for what the host stack routes there.
    pub const TO_TUNNEL: &str = "net4_to_tunnel";
    /// All of them.
    pub const ALL: [&str; 3] = [FROM_POD, TO_POD, TO_TUNNEL];
}

/// The maps' names (pinned under the [`PinDir`] by these names).
pub mod maps {
    /// Pod address -> endpoint.
    pub const ENDPOINTS: &str = "net4_endpoints";
    /// Entry 0: the node's settings.
    pub const CONFIG: &str = "net4_config";
    /// Pod CIDR -> node address (LPM trie).
    pub const TUNNELS: &str = "net4_tunnels";
    /// Counters, per CPU.
    pub const STATS: &str = "net_stats";
}

pub use crate::verdict;

/// Counter indexes of `net_stats`: `enum net_stat`'s members (`c/include/net_consts.h`),
/// lower-cased without `NET_STAT_`.
pub const STAT_NAMES: [&str; consts::NET_STAT_NAMES.len()] = consts::NET_STAT_NAMES;

const MODE_NATIVE: u8 = consts::u8_of(consts::NET_MODE_NATIVE);
const MODE_OVERLAY: u8 = consts::u8_of(consts::NET_MODE_OVERLAY);

fn tunnel_key((address, prefix): (Ipv4Addr, u8)) -> net4_tunnel_key {
    let prefix = prefix.min(32);
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    net4_tunnel_key {
        prefixlen: u32::from(prefix),
        addr: be_addr(Ipv4Addr::from(u32::from(address) & mask)),
    }
}

/// A pod endpoint on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The pod's IPv4 address.
    pub address: Ipv4Addr,
    /// The host-side veth's ifindex (in the node's network namespace).
    pub ifindex: u32,
    /// The pod-side interface's MAC.
    pub pod_mac: [u8; 6],
    /// The host-side veth's MAC.
    pub host_mac: [u8; 6],
    /// Which sandbox owns it: a hash of the CNI container id (for CHECK/GC and debugging).
    pub identity: u64,
}

/// How pods on other nodes are reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Native routes to each node's podCIDR (FIB lookup + `bpf_redirect_neigh`).
    Native,
    /// Encapsulated through a collect-metadata VXLAN device.
    Overlay {
        /// The VXLAN device's ifindex.
        ifindex: u32,
        /// The VXLAN network identifier.
        vni: u32,
    },
}

/// The node's pod-network settings, read by the programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// The whole cluster's pod CIDR (address, prefix length).
    pub cluster_cidr: (Ipv4Addr, u8),
    /// This node's podCIDR.
    pub pod_cidr: (Ipv4Addr, u8),
    /// How pods on other nodes are reached.
    pub mode: Mode,
}

/// The pinned pod-network maps under a [`PinDir`].
#[derive(Debug)]
pub struct NetMaps {
    /// `net4_endpoints`.
    pub endpoints: MapHandle,
    /// `net4_config`.
    pub config: MapHandle,
    /// `net4_tunnels`.
    pub tunnels: MapHandle,
    /// `net_stats`.
    pub stats: MapHandle,
}

impl NetMaps {
    /// Opens the maps pinned under `pins`, creating (and pinning) them when missing.
    pub fn open(pins: &PinDir) -> Result<NetMaps> {
        let all = [maps::ENDPOINTS, maps::CONFIG, maps::TUNNELS, maps::STATS];
        if all.iter().any(|name| !pins.map(name).exists()) {
            // Two CNI ADDs may race to create them: the loser finds them pinned on retry.
            if let Err(err) = object::load_maps(NET_TC_OBJECT, pins)
                && all.iter().any(|name| !pins.map(name).exists())
            {
                return Err(err);
            }
        }
        let open = |name: &str| {
            let path = pins.map(name);
            MapHandle::from_pinned_path(&path).context(|| format!("opening {}", path.display()))
        };
        Ok(NetMaps {
            endpoints: open(maps::ENDPOINTS)?,
            config: open(maps::CONFIG)?,
            tunnels: open(maps::TUNNELS)?,
            stats: open(maps::STATS)?,
        })
    }

    /// Adds or replaces the endpoint at `endpoint.address`.
    pub fn put_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        let value = net4_endpoint {
            ifindex: endpoint.ifindex,
            pod_mac: endpoint.pod_mac,
            host_mac: endpoint.host_mac,
            identity: endpoint.identity,
            ..Default::default()
        };
        put(&self.endpoints, &be_addr(endpoint.address), &value)
    }

    /// Removes the endpoint at `address` (missing: not an error).
    pub fn remove_endpoint(&self, address: Ipv4Addr) -> Result<()> {
        remove(&self.endpoints, &be_addr(address))
    }

    /// The endpoint at `address`.
    pub fn endpoint(&self, address: Ipv4Addr) -> Result<Option<Endpoint>> {
        let value: Option<net4_endpoint> = get(&self.endpoints, &be_addr(address))?;
        Ok(value.map(|v| endpoint_of(address, &v)))
    }

    /// Every endpoint.
    pub fn endpoints(&self) -> Result<Vec<Endpoint>> {
        Ok(entries::<u32, net4_endpoint>(&self.endpoints)
            .iter()
            .map(|(key, value)| endpoint_of(addr_of(*key), value))
            .collect())
    }

    /// Writes the node's settings (the programs pass everything to the stack until then).
    pub fn set_config(&self, config: &NetConfig) -> Result<()> {
        let (mode, overlay_ifindex, vni) = match config.mode {
            Mode::Native => (MODE_NATIVE, 0, 0),
            Mode::Overlay { ifindex, vni } => (MODE_OVERLAY, ifindex, vni),
        };
        let value = net4_config {
            cluster_addr: be_addr(config.cluster_cidr.0),
            pod_addr: be_addr(config.pod_cidr.0),
            cluster_prefix: config.cluster_cidr.1,
            pod_prefix: config.pod_cidr.1,
            mode,
            overlay_ifindex,
            vni,
            ..Default::default()
        };
        put(&self.config, &0u32, &value)
    }

    /// The node's settings, `None` before [`NetMaps::set_config`].
    pub fn config(&self) -> Result<Option<NetConfig>> {
        let Some(value): Option<net4_config> = get(&self.config, &0u32)? else {
            return Ok(None);
        };
        let mode = match value.mode {
            MODE_NATIVE => Mode::Native,
            MODE_OVERLAY => Mode::Overlay {
                ifindex: value.overlay_ifindex,
                vni: value.vni,
            },
            _ => return Ok(None),
        };
        Ok(Some(NetConfig {
            cluster_cidr: (addr_of(value.cluster_addr), value.cluster_prefix),
            pod_cidr: (addr_of(value.pod_addr), value.pod_prefix),
            mode,
        }))
    }

    /// Overlay: pods in `pod_cidr` live on the node at `node`.
    pub fn put_tunnel(&self, pod_cidr: (Ipv4Addr, u8), node: Ipv4Addr) -> Result<()> {
        put(
            &self.tunnels,
            &tunnel_key(pod_cidr),
            &net4_tunnel {
                node: be_addr(node),
            },
        )
    }

    /// Removes the tunnel of `pod_cidr` (missing: not an error).
    pub fn remove_tunnel(&self, pod_cidr: (Ipv4Addr, u8)) -> Result<()> {
        remove(&self.tunnels, &tunnel_key(pod_cidr))
    }

    /// Every tunnel: (pod CIDR, node address).
    pub fn tunnels(&self) -> Result<Vec<((Ipv4Addr, u8), Ipv4Addr)>> {
        Ok(entries::<net4_tunnel_key, net4_tunnel>(&self.tunnels)
            .iter()
            .map(|(key, value)| {
                (
                    (addr_of(key.addr), key.prefixlen as u8),
                    addr_of(value.node),
                )
            })
            .collect())
    }

    /// The counters (summed over CPUs), named as [`STAT_NAMES`].
    pub fn stats(&self) -> Result<Vec<(&'static str, u64)>> {
        STAT_NAMES
            .iter()
            .enumerate()
            .map(|(i, name)| Ok((*name, percpu_sum(&self.stats, &(i as u32))?)))
            .collect()
    }

    /// One counter by name (see [`STAT_NAMES`]); 0 for an unknown name.
    pub fn stat(&self, name: &str) -> Result<u64> {
        match STAT_NAMES.iter().position(|n| *n == name) {
            Some(i) => percpu_sum(&self.stats, &(i as u32)),
            None => Ok(0),
        }
    }
}

fn endpoint_of(address: Ipv4Addr, value: &net4_endpoint) -> Endpoint {
    Endpoint {
        address,
        ifindex: value.ifindex,
        pod_mac: value.pod_mac,
        host_mac: value.host_mac,
        identity: value.identity,
    }
}

/// Attachment of the routing programs (links pinned under the [`PinDir`], named by ifindex).
pub struct PodNet;

fn prog_pin(pins: &PinDir, name: &str) -> PathBuf {
    pins.path().join("progs").join(name)
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL in a pin path")
}

fn os_err(what: impl FnOnce() -> String) -> Error {
    Error::Io {
        what: what(),
        source: std::io::Error::last_os_error(),
    }
}

/// The fd of the object pinned at `path`, `None` when nothing is pinned there.
fn obj_get(path: &Path) -> Result<Option<OwnedFd>> {
    let c = c_path(path);
    // SAFETY: a valid C string; a non-negative return is an fd we own.
    let fd = unsafe { libbpf_sys::bpf_obj_get(c.as_ptr()) };
    if fd < 0 {
        if std::io::Error::last_os_error().kind() == std::io::ErrorKind::NotFound {
            return Ok(None);
        }
        return Err(os_err(|| format!("opening {}", path.display())));
    }
    // SAFETY: a fresh fd from the kernel.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn link_update(link: &OwnedFd, prog: &OwnedFd) -> bool {
    // SAFETY: two valid fds; NULL options are allowed.
    let rc = unsafe {
        libbpf_sys::bpf_link_update(link.as_raw_fd(), prog.as_raw_fd(), std::ptr::null())
    };
    rc == 0
}

/// Creates a tcx link of the pinned program `name` on `ifindex` and pins it, or switches the
/// link pinned already to that program.
fn attach_pinned_prog(
    pins: &PinDir,
    name: &str,
    ifindex: u32,
    attach_type: libbpf_sys::bpf_attach_type,
) -> Result<()> {
    let prog = PodNet::pinned_program(pins, name)?;
    let path = pins.link(&object::interface_link(name, ifindex));
    if let Some(link) = obj_get(&path)? {
        if link_update(&link, &prog) {
            return Ok(());
        }
        // A stale pin (its interface gone, its ifindex reused): start over.
        drop(link);
        std::fs::remove_file(&path).context(|| format!("removing {}", path.display()))?;
    }
    // SAFETY: a valid program fd; NULL options (append to the interface's chain).
    let fd = unsafe {
        libbpf_sys::bpf_link_create(
            prog.as_raw_fd(),
            ifindex as i32,
            attach_type,
            std::ptr::null(),
        )
    };
    if fd < 0 {
        return Err(os_err(|| format!("attaching {name} to ifindex {ifindex}")));
    }
    // SAFETY: a fresh fd from the kernel.
    let link = unsafe { OwnedFd::from_raw_fd(fd) };
    let c = c_path(&path);
    // SAFETY: a valid link fd and C string.
    if unsafe { libbpf_sys::bpf_obj_pin(link.as_raw_fd(), c.as_ptr()) } != 0 {
        return Err(os_err(|| format!("pinning {}", path.display())));
    }
    Ok(())
}

/// `flock(LOCK_EX)` on the pin directory, held while programs are loaded and pinned there so
/// processes doing it at once (the agent, CNI plugin runs) do not trip over each other's pins;
/// released on drop (close).
struct PinLock {
    _dir: std::fs::File,
}

impl PinLock {
    fn take(pins: &PinDir) -> Result<PinLock> {
        let path = pins.path();
        std::fs::create_dir_all(path).context(|| format!("creating {}", path.display()))?;
        let dir = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
        loop {
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(PinLock { _dir: dir });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::Io {
                    what: format!("locking {}", path.display()),
                    source: err,
                });
            }
        }
    }
}

/// Loads the routing programs against the maps under `pins` (created or adopted), unattached:
/// for [`run`] and for [`PodNet::load_and_pin`].
pub fn load(pins: &PinDir) -> Result<Object> {
    object::load(NET_TC_OBJECT, pins, &|_| None)
}

impl PodNet {
    /// Whether the pod behind host veth `ifindex` is attached by a pinned tcx link (which
    /// [`PodNet::load_and_pin`] switches in place) rather than by a tc filter.
    pub fn pod_link_pinned(pins: &PinDir, ifindex: u32) -> bool {
        pins.link(&object::interface_link(programs::FROM_POD, ifindex))
            .exists()
    }

    /// The program `name` (see [`programs`]) pinned by [`PodNet::load_and_pin`], loaded and
    /// pinned first when nothing is: for attaching it elsewhere (a tc filter) without loading.
    pub fn pinned_program(pins: &PinDir, name: &str) -> Result<OwnedFd> {
        if let Some(fd) = obj_get(&prog_pin(pins, name))? {
            return Ok(fd);
        }
        {
            // Concurrent CNI ADDs on a fresh node all find nothing pinned: one loads, the
            // others wait for it and use what it pinned.
            let _lock = PinLock::take(pins)?;
            if obj_get(&prog_pin(pins, name))?.is_none() {
                PodNet::load_and_pin_locked(pins)?;
            }
        }
        obj_get(&prog_pin(pins, name))?.ok_or_else(|| Error::Io {
            what: format!(
                "program {name} is not pinned under {}",
                pins.path().display()
            ),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
    }

    /// tcx ingress of a pod's host-side veth: routes the pod's traffic. Uses the program
    /// pinned by [`PodNet::load_and_pin`] when there is one (cheap: no load, no verifier), else
    /// loads and pins it first.
    pub fn attach_pod(pins: &PinDir, ifindex: u32) -> Result<()> {
        attach_pinned_prog(
            pins,
            programs::FROM_POD,
            ifindex,
            libbpf_sys::BPF_TCX_INGRESS,
        )
    }

    /// Attaches the pinned pod program ([`PodNet::pinned_program`]) as a direct-action filter
    /// on the host veth's clsact ingress (replacing one that is there); it goes away with the
    /// veth. A tc filter rather than a tcx link: creating a tcx link waits for an RCU grace
    /// period (6-14 ms here, more than the rest of a CNI ADD), the filter costs well under a
    /// millisecond. It runs after any tcx program (the service LB's) on the same hook.
    pub fn attach_pod_filter(
        nl: &mut skiff_netlink::Netlink,
        pins: &PinDir,
        ifindex: u32,
    ) -> Result<()> {
        use std::os::fd::AsFd;
        let netlink = |err: skiff_netlink::Error| Error::Io {
            what: err.to_string(),
            source: std::io::Error::from_raw_os_error(err.errno),
        };
        let name = programs::FROM_POD;
        let prog = PodNet::pinned_program(pins, name)?;
        nl.add_clsact(ifindex).map_err(netlink)?;
        nl.attach_bpf_filter(
            ifindex,
            skiff_netlink::tc::Hook::Ingress,
            1,
            prog.as_fd(),
            name,
        )
        .map_err(netlink)
    }

    /// tcx ingress of the node's uplink: delivers traffic for local pods.
    pub fn attach_uplink(pins: &PinDir, ifindex: u32) -> Result<()> {
        attach_pinned_prog(pins, programs::TO_POD, ifindex, libbpf_sys::BPF_TCX_INGRESS)
    }

    /// tcx ingress of the overlay device (delivers decapsulated traffic for local pods) and
    /// its egress (sets the tunnel key of what the host stack routes into it).
    pub fn attach_tunnel(pins: &PinDir, ifindex: u32) -> Result<()> {
        attach_pinned_prog(pins, programs::TO_POD, ifindex, libbpf_sys::BPF_TCX_INGRESS)?;
        attach_pinned_prog(
            pins,
            programs::TO_TUNNEL,
            ifindex,
            libbpf_sys::BPF_TCX_EGRESS,
        )
    }

    /// Removes this module's pinned links for `ifindex` (detaching them when still attached).
    pub fn detach(pins: &PinDir, ifindex: u32) -> Result<()> {
        object::unpin_interface_links(pins, ifindex, &programs::ALL)
    }

    /// Loads the programs against the maps under `pins` and pins the programs themselves, so
    /// CNI ADDs only create links. Replaces programs pinned by an older agent, and switches
    /// the links already pinned to the new programs in place.
    pub fn load_and_pin(pins: &PinDir) -> Result<()> {
        let _lock = PinLock::take(pins)?;
        PodNet::load_and_pin_locked(pins)
    }

    fn load_and_pin_locked(pins: &PinDir) -> Result<()> {
        let object = load(pins)?;
        let dir = pins.path().join("progs");
        std::fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
        for name in programs::ALL {
            let mut prog = object::program(&object, name).expect("net_tc.bpf.c defines it");
            let path = prog_pin(pins, name);
            // Pin beside, then rename over: a concurrent attach_pod always finds a program.
            // (bpffs refuses names with dots.)
            let fresh = dir.join(format!("{name}_new"));
            let _ = std::fs::remove_file(&fresh);
            prog.pin(&fresh)
                .context(|| format!("pinning {}", fresh.display()))?;
            if let Err(err) = std::fs::rename(&fresh, &path) {
                // bpffs without rename: unlink and pin again.
                tracing::debug!("renaming {}: {err}", fresh.display());
                let _ = std::fs::remove_file(&fresh);
                let _ = std::fs::remove_file(&path);
                prog.pin(&path)
                    .context(|| format!("pinning {}", path.display()))?;
            }
            let Some(prog_fd) = obj_get(&path)? else {
                continue;
            };
            let prefix = format!("{name}-if");
            let links = pins.path().join("links");
            let Ok(dir) = std::fs::read_dir(&links) else {
                continue;
            };
            for entry in dir.flatten() {
                if !entry.file_name().to_string_lossy().starts_with(&prefix) {
                    continue;
                }
                if let Some(link) = obj_get(&entry.path())?
                    && !link_update(&link, &prog_fd)
                {
                    tracing::warn!("switching {} failed", entry.path().display());
                }
            }
        }
        Ok(())
    }
}

pub use crate::object::RunOutput;

/// Runs `program` of `object` once on `packet` as if it had arrived on `ingress_ifindex`
/// (what `skb->ingress_ifindex` reads), without any interface.
pub fn run(
    object: &Object,
    program: &str,
    packet: &[u8],
    ingress_ifindex: u32,
) -> Result<RunOutput> {
    // The leading fields of struct __sk_buff up to ifindex: test_run takes ingress_ifindex
    // (offset 36) as skb_iif and wants the rest zero.
    let mut ctx = [0u8; 44];
    ctx[36..40].copy_from_slice(&ingress_ifindex.to_ne_bytes());
    object::test_run(object, program, packet, 1, Some(&mut ctx))
}
