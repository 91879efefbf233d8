//! skiff's BPF programs (C, under `c/`) and their loader.
//!
//! Every program object is compiled by `build.rs`; its skeleton supplies the map key and value
//! types (`lb::types`), so map layouts are defined once, in `c/include/`. Maps and links are
//! pinned under a bpffs directory ([`PinDir`]): the dataplane keeps running while the agent is
//! away, and a new agent adopts it (see [`object`]).

/// `mod skel`: the skeleton `build.rs` generated for `c/<name>.bpf.c` (its `types` are the
/// maps' key and value structs), with the lints generated code does not meet turned off.
macro_rules! skeleton {
    ($name:literal) => {
        #[allow(
            clippy::all,
            missing_docs,
            dead_code,
            non_camel_case_types,
            unsafe_op_in_unsafe_fn,
            unused_imports
        )]
        mod skel {
            include!(concat!(env!("OUT_DIR"), "/", $name, ".skel.rs"));
        }
    };
}
pub(crate) use skeleton;

mod consts;
pub mod lb;
pub mod net;
pub mod object;
pub mod packet_lb;
pub mod plain;

/// The programs' return values (tc, tcx and XDP), as `BPF_PROG_TEST_RUN` reports them.
pub mod verdict {
    use crate::consts::{self as c, i32_of};

    /// tc: to the host stack, ending the tcx chain (`TCX_PASS`, `TC_ACT_OK`).
    pub const TC_OK: i32 = i32_of(c::TC_ACT_OK);
    /// tc: on to the next tcx program, then the stack (`TCX_NEXT`, `TC_ACT_UNSPEC`).
    pub const TC_NEXT: i32 = i32_of(c::TC_ACT_UNSPEC);
    /// tc: dropped.
    pub const TC_SHOT: i32 = i32_of(c::TC_ACT_SHOT);
    /// tc: redirected (to a pod, an interface the FIB names, the overlay device, or back out
    /// for a reject).
    pub const TC_REDIRECT: i32 = i32_of(c::TC_ACT_REDIRECT);
    /// XDP: dropped.
    pub const XDP_DROP: i32 = i32_of(c::XDP_DROP);
    /// XDP: to the stack.
    pub const XDP_PASS: i32 = i32_of(c::XDP_PASS);
    /// XDP: back out of the interface it came in on.
    pub const XDP_TX: i32 = i32_of(c::XDP_TX);
}

pub use libbpf_rs;
pub use object::{PinDir, PinGuard};

/// What can go wrong loading, attaching or programming BPF objects.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A libbpf call failed; `what` says which step.
    #[error("{what}: {source}")]
    Bpf {
        /// The step that failed.
        what: String,
        /// libbpf's error.
        source: libbpf_rs::Error,
    },
    /// A file system step (bpffs, cgroup) failed.
    #[error("{what}: {source}")]
    Io {
        /// The step that failed.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A map is full: the entry was not written, the rest of the dataplane is unaffected.
    #[error("map {map} is full")]
    MapFull {
        /// The map's name.
        map: &'static str,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, libbpf_rs::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Bpf {
            what: what(),
            source,
        })
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}
