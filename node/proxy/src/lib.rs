//! skiff's service proxy: kube-proxy's job, done with eBPF.
//!
//! It watches Services and EndpointSlices (through the API, with kube-rs), computes the
//! desired load-balancer state for this node ([`model`]), and applies the difference to the
//! pinned BPF maps ([`sync`]). The programs themselves live in `skiff-ebpf`.

pub mod maglev;
pub mod metrics;
pub mod model;
pub mod ownership;
pub mod proxy;
pub mod sync;
