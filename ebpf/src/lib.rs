//! skiff's BPF programs (C, under `c/`) and their loader.
//!
//! Every program object is compiled by `build.rs`; its skeleton supplies the map key and value
//! types (`lb::types`), so map layouts are defined once, in `c/include/`. Maps and links are
//! pinned under a bpffs directory ([`PinDir`]): the dataplane keeps running while the agent is
//! away, and a new agent adopts it (see [`object`]).

pub mod lb;
pub mod net;
pub mod object;
pub mod packet_lb;
pub mod plain;

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
