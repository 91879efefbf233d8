//! The per-packet service load balancer: `c/lb_tc.bpf.c` on tcx links and `c/lb_xdp.bpf.c` on
//! XDP links, sharing the maps of [`crate::lb`].
//!
//! [`PacketLb::attach_tc`] puts the DNAT program on an interface's ingress (which also SNATs
//! flows to backends on other nodes and translates their replies back) and the reverse NAT
//! on its egress; [`PacketLb::attach_tc_reply`] puts the reverse NAT on the ingress of a pod's
//! host-side veth; [`PacketLb::attach_xdp`] puts the DNAT before the stack. Links are pinned
//! under the [`PinDir`] with the interface index in their names, so a restarted agent switches
//! them to its new programs in place. [`load_tc`], [`load_xdp`] and [`run`] load the programs
//! without attaching them and run them on a packet (`BPF_PROG_TEST_RUN`), for tests and
//! benchmarks; [`load_empty`] loads an empty program of each kind (`c/bench_empty.bpf.c`),
//! the benchmarks' anchor for what the test harness itself costs.

use std::net::SocketAddrV4;
use std::ptr::NonNull;

use libbpf_rs::{AsRawLibbpf, Link, Object, ObjectBuilder, ProgramMut, libbpf_sys};

use crate::lb::{Sizes, be_addr, be_port};
use crate::object::{self, PinDir};
use crate::{Context, Result};

static LB_TC_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lb_tc.bpf.o"));
static LB_XDP_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lb_xdp.bpf.o"));
static BENCH_EMPTY_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench_empty.bpf.o"));

/// The programs' names.
pub mod programs {
    /// tcx ingress of a node interface (or a pod veth): DNAT of service traffic.
    pub const TC_INGRESS: &str = "lb4_tc_ingress";
    /// tcx egress of a node interface: reverse NAT of backend replies.
    pub const TC_EGRESS: &str = "lb4_tc_egress";
    /// tcx ingress of a pod's host-side veth: reverse NAT of a local backend's replies.
    pub const TC_REPLY: &str = "lb4_tc_reply";
    /// XDP: DNAT before the stack.
    pub const XDP: &str = "lb4_xdp";
    /// [`super::load_empty`]: XDP returning `XDP_PASS` and nothing else.
    pub const EMPTY_XDP: &str = "empty_xdp";
    /// [`super::load_empty`]: tcx ingress returning `TC_ACT_OK` and nothing else.
    pub const EMPTY_TC: &str = "empty_tc";
}

pub use crate::verdict;

/// Per-packet load balancing attached to one interface; the links stay pinned when this is
/// dropped (see [`PacketLb::detach`]).
pub struct PacketLb {
    _links: Vec<Link>,
}

/// Loads the tc programs against the maps under `pins` (created or adopted), unattached.
pub fn load_tc(pins: &PinDir, sizes: &Sizes) -> Result<Object> {
    object::load(LB_TC_OBJECT, pins, &|name| sizes.for_map(name))
}

/// Loads the XDP program against the maps under `pins` (created or adopted), unattached.
pub fn load_xdp(pins: &PinDir, sizes: &Sizes) -> Result<Object> {
    object::load(LB_XDP_OBJECT, pins, &|name| sizes.for_map(name))
}

/// Loads the empty programs ([`programs::EMPTY_XDP`], [`programs::EMPTY_TC`]): no maps, never
/// attached, timed beside the real ones.
pub fn load_empty() -> Result<Object> {
    ObjectBuilder::default()
        .open_memory(BENCH_EMPTY_OBJECT)
        .and_then(|open| open.load())
        .context(|| "loading the empty programs".into())
}

/// libbpf-rs 0.27 has no tcx attach: libbpf's own, on the program's attach type (its section
/// says ingress or egress).
fn attach_tcx(prog: &ProgramMut<'_>, ifindex: u32) -> libbpf_rs::Result<Link> {
    let opts = libbpf_sys::bpf_tcx_opts {
        sz: size_of::<libbpf_sys::bpf_tcx_opts>() as _,
        ..Default::default()
    };
    // SAFETY: a loaded program and options of the size libbpf expects; libbpf returns NULL
    // with errno set on failure, else a link we own.
    let ptr = unsafe {
        libbpf_sys::bpf_program__attach_tcx(prog.as_libbpf_object().as_ptr(), ifindex as i32, &opts)
    };
    match NonNull::new(ptr) {
        // SAFETY: a valid link pointer from libbpf, owned from here on.
        Some(ptr) => Ok(unsafe { Link::from_ptr(ptr) }),
        None => Err(std::io::Error::last_os_error().into()),
    }
}

impl PacketLb {
    /// Loads the tc programs (creating or adopting the maps under `pins`) and attaches DNAT
    /// to `ifindex`'s tcx ingress and reverse NAT to its tcx egress, or switches the links
    /// already pinned for that interface to the new programs.
    pub fn attach_tc(pins: &PinDir, ifindex: u32, sizes: &Sizes) -> Result<PacketLb> {
        Self::attach_tcx_programs(
            pins,
            ifindex,
            sizes,
            &[programs::TC_INGRESS, programs::TC_EGRESS],
        )
    }

    /// Attaches the reverse NAT to `ifindex`'s tcx ingress: a pod's host-side veth, where a
    /// local backend's replies enter the host.
    pub fn attach_tc_reply(pins: &PinDir, ifindex: u32, sizes: &Sizes) -> Result<PacketLb> {
        Self::attach_tcx_programs(pins, ifindex, sizes, &[programs::TC_REPLY])
    }

    fn attach_tcx_programs(
        pins: &PinDir,
        ifindex: u32,
        sizes: &Sizes,
        names: &[&str],
    ) -> Result<PacketLb> {
        let object = load_tc(pins, sizes)?;
        let mut links = Vec::new();
        for name in names {
            let prog = object::program(&object, name).expect("lb_tc.bpf.c defines it");
            links.push(object::attach_pinned(
                pins,
                &object::interface_link(name, ifindex),
                &prog,
                |p| attach_tcx(p, ifindex),
            )?);
        }
        Ok(PacketLb { _links: links })
    }

    /// Loads the XDP program and attaches it to `ifindex` (native mode where the driver has
    /// it, generic otherwise), or switches the link already pinned there.
    pub fn attach_xdp(pins: &PinDir, ifindex: u32, sizes: &Sizes) -> Result<PacketLb> {
        let object = load_xdp(pins, sizes)?;
        let prog = object::program(&object, programs::XDP).expect("lb_xdp.bpf.c defines it");
        let link = object::attach_pinned(
            pins,
            &object::interface_link(programs::XDP, ifindex),
            &prog,
            |p| p.attach_xdp(ifindex as i32),
        )?;
        Ok(PacketLb { _links: vec![link] })
    }

    /// Detaches every per-packet program from `ifindex`: removes the pinned links (a link
    /// whose interface is gone is removed too).
    pub fn detach(pins: &PinDir, ifindex: u32) -> Result<()> {
        object::unpin_interface_links(
            pins,
            ifindex,
            &[
                programs::TC_INGRESS,
                programs::TC_EGRESS,
                programs::TC_REPLY,
                programs::XDP,
            ],
        )
    }
}

pub use crate::object::RunOutput;

/// Runs `program` of `object` on `packet` `repeat` times (see [`object::test_run`]).
pub fn run(object: &Object, program: &str, packet: &[u8], repeat: u32) -> Result<RunOutput> {
    object::test_run(object, program, packet, repeat, None)
}

/// Nanoseconds per packet of `program` on `packet` over `repeat` runs: the kernel's mean (whole
/// nanoseconds), its loop and timer included. Time many repeats in one call: a single run is
/// dominated by the call's own setup and timer reads. A rewriting program sees its own output
/// from the second repetition on (a DNAT of a flow to a pod turns into a miss), so the packet
/// must be one the program maps back onto its own path (see the dataplane benchmark's
/// ping-pong pair of services).
pub fn ns_per_packet(object: &Object, program: &str, packet: &[u8], repeat: u32) -> Result<f64> {
    let output = run(object, program, packet, repeat)?;
    Ok(output.per_packet.as_nanos() as f64)
}

fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// The index in a service's Maglev table that the flow `client -> frontend` (as it arrives,
/// before any translation) uses: `lb4_flow_hash` of `c/include/lb_packet.h`, modulo
/// [`crate::lb::MAGLEV_SIZE`].
pub fn maglev_index(client: SocketAddrV4, frontend: SocketAddrV4, proto: u8) -> usize {
    flow_hash(client, frontend, proto) as usize % crate::lb::MAGLEV_SIZE
}

/// `lb4_flow_hash` of `c/include/lb_packet.h`.
fn flow_hash(client: SocketAddrV4, frontend: SocketAddrV4, proto: u8) -> u32 {
    let ports = (u32::from(be_port(client.port())) << 16) | u32::from(be_port(frontend.port()));
    let mut h = 0x9e37_79b9u32;
    h = mix(h ^ be_addr(*client.ip()));
    h = mix(h ^ be_addr(*frontend.ip()));
    h = mix(h ^ ports);
    h = mix(h ^ u32::from(proto));
    h
}

/// The SNAT ports the flow `client -> frontend` (as it arrives) tries, in order
/// (`lb4_snat_candidate` of `c/include/lb_packet.h`).
pub fn snat_ports(
    client: SocketAddrV4,
    frontend: SocketAddrV4,
    proto: u8,
) -> [u16; crate::lb::snat::PROBES] {
    use crate::lb::snat::{PORT_MAX, PORT_MIN};
    let h = flow_hash(client, frontend, proto);
    let count = u32::from(PORT_MAX - PORT_MIN) + 1;
    std::array::from_fn(|i| PORT_MIN + (mix(h.wrapping_add(i as u32)) % count) as u16)
}
