//! The load balancer's desired state, computed from Services and EndpointSlices the way
//! kube-proxy reads them: which frontends (ClusterIP, NodePort, ExternalIPs, LoadBalancer IPs)
//! exist and which backends each one may use on this node.
//!
//! Kubernetes semantics decided here, so the BPF programs stay uniform:
//! - traffic policy Local (internalTrafficPolicy for the ClusterIP, externalTrafficPolicy for
//!   NodePort/ExternalIP/LoadBalancer frontends) keeps only this node's endpoints, and an empty
//!   list then rejects, as Kubernetes does;
//! - terminating endpoints are used only while no serving endpoint is left;
//! - headless and ExternalName services have no frontend (DNS answers for them).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use skiff_ebpf::lb::flags;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Kubernetes' default ClientIP affinity timeout (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT: u32 = 10_800;

/// The most backends one frontend holds (the slot field is 16 bits; Maglev wants far fewer).
pub const MAX_BACKENDS: usize = 4095;

/// IP protocol numbers.
pub mod proto {
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// An address a service answers on. `address` 0.0.0.0 is a NodePort: every node address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frontend {
    /// The ClusterIP, ExternalIP or LoadBalancer IP; unspecified for a NodePort.
    pub address: Ipv4Addr,
    /// The port.
    pub port: u16,
    /// The IP protocol.
    pub proto: u8,
}

/// A backend address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Backend {
    /// The endpoint's address.
    pub address: Ipv4Addr,
    /// The target port.
    pub port: u16,
    /// The IP protocol.
    pub proto: u8,
    /// On another node: per-packet paths must SNAT traffic to it so replies come back here.
    pub remote: bool,
}

/// What one frontend does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontendSpec {
    /// `namespace/name:port` of the Service port, for logs and metrics.
    pub service: String,
    /// `flags::*` bits.
    pub flags: u8,
    /// Session affinity timeout in seconds (with `flags::AFFINITY`).
    pub affinity_timeout: u32,
    /// The backends, sorted; empty rejects.
    pub backends: Vec<Backend>,
    /// Terminating backends among `backends` (used because nothing else was left).
    pub terminating: BTreeSet<Backend>,
    /// loadBalancerSourceRanges (address, prefix length); empty allows everyone.
    pub source_ranges: Vec<(Ipv4Addr, u8)>,
}

/// The whole desired state of the node's load balancer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// Every frontend and what it does.
    pub frontends: BTreeMap<Frontend, FrontendSpec>,
    /// Things in the Services that the dataplane cannot express, for logs and metrics.
    pub skipped: Vec<String>,
}

/// What this node is, for traffic policies.
#[derive(Clone, Debug, Default)]
pub struct NodeView {
    /// The node's name (EndpointSlice `nodeName`).
    pub name: String,
}

/// One endpoint of a Service port, as the EndpointSlices give it.
#[derive(Clone, Copy, Debug)]
struct Endpoint {
    backend: Backend,
    serving: bool,
    terminating: bool,
    local: bool,
}

impl Desired {
    /// The desired state for `services` and their `slices`, as seen from `node`.
    pub fn compute(services: &[Service], slices: &[EndpointSlice], node: &NodeView) -> Desired {
        let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
        for slice in slices {
            let Some(name) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            else {
                continue;
            };
            let ns = slice.metadata.namespace.clone().unwrap_or_default();
            by_service
                .entry((ns, name.clone()))
                .or_default()
                .push(slice);
        }
        let mut desired = Desired::default();
        for service in services {
            let ns = service.metadata.namespace.clone().unwrap_or_default();
            let name = service.metadata.name.clone().unwrap_or_default();
            let slices = by_service
                .get(&(ns.clone(), name.clone()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            desired.add_service(&format!("{ns}/{name}"), service, slices, node);
        }
        desired
    }

    /// The frontends of one Service, given its EndpointSlices (what an incremental sync
    /// recomputes when that Service or one of its slices changes).
    pub fn for_service(service: &Service, slices: &[&EndpointSlice], node: &NodeView) -> Desired {
        let mut desired = Desired::default();
        let ns = service.metadata.namespace.as_deref().unwrap_or_default();
        let name = service.metadata.name.as_deref().unwrap_or_default();
        desired.add_service(&format!("{ns}/{name}"), service, slices, node);
        desired
    }

    fn add_service(
        &mut self,
        id: &str,
        service: &Service,
        slices: &[&EndpointSlice],
        node: &NodeView,
    ) {
        let Some(spec) = &service.spec else {
            return;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            return;
        }
        let cluster_ip = spec.cluster_ip.as_deref().unwrap_or("");
        let headless = cluster_ip == "None";
        let cluster_ip = match cluster_ip.parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) if cluster_ip.is_empty() || headless => None,
            Err(_) => {
                self.skipped
                    .push(format!("{id}: clusterIP {cluster_ip} is not IPv4"));
                None
            }
        };
        let affinity = spec.session_affinity.as_deref() == Some("ClientIP");
        let timeout = spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .map(|t| t.max(1) as u32)
            .unwrap_or(DEFAULT_AFFINITY_TIMEOUT);
        let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
        let external_local = spec.external_traffic_policy.as_deref() == Some("Local");
        let source_ranges = self.source_ranges(id, spec.load_balancer_source_ranges.as_deref());
        let mut external_ips: Vec<Ipv4Addr> = Vec::new();
        for ip in spec.external_ips.iter().flatten() {
            match ip.parse() {
                Ok(ip) => external_ips.push(ip),
                Err(_) => self
                    .skipped
                    .push(format!("{id}: externalIP {ip} is not IPv4")),
            }
        }
        let mut lb_ips: Vec<Ipv4Addr> = Vec::new();
        let ingress = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        for ingress in ingress.into_iter().flatten() {
            if let Some(ip) = ingress.ip.as_deref().and_then(|ip| ip.parse().ok()) {
                lb_ips.push(ip);
            }
        }
        for port in spec.ports.iter().flatten() {
            let Some(proto) = protocol(port) else {
                self.skipped.push(format!(
                    "{id}: port {} has an unsupported protocol",
                    port.port
                ));
                continue;
            };
            let Ok(service_port) = u16::try_from(port.port) else {
                self.skipped
                    .push(format!("{id}: port {} is out of range", port.port));
                continue;
            };
            if headless {
                continue;
            }
            let label = format!("{id}:{}", port.name.as_deref().unwrap_or(""));
            let endpoints = endpoints(port, proto, slices, node);
            let base = FrontendSpec {
                service: label.clone(),
                flags: if affinity { flags::AFFINITY } else { 0 },
                affinity_timeout: if affinity { timeout } else { 0 },
                backends: Vec::new(),
                terminating: BTreeSet::new(),
                source_ranges: Vec::new(),
            };
            let mut add = |address: Ipv4Addr, port: u16, extra: u8, local: bool, ranges: bool| {
                let mut spec = base.clone();
                spec.flags |= extra;
                // Local with endpoints elsewhere only drops; with none anywhere the frontend
                // rejects like any Service without endpoints.
                if local && endpoints.iter().any(|e| e.serving || e.terminating) {
                    spec.flags |= flags::LOCAL_ONLY;
                }
                if ranges && !source_ranges.is_empty() {
                    spec.flags |= flags::SOURCE_RANGES;
                    spec.source_ranges = source_ranges.clone();
                }
                let (backends, terminating, truncated) = choose(&endpoints, local);
                if truncated {
                    self.skipped.push(format!(
                        "{label}: more than {MAX_BACKENDS} backends; the rest are left out"
                    ));
                }
                spec.backends = backends;
                spec.terminating = terminating;
                self.frontends.insert(
                    Frontend {
                        address,
                        port,
                        proto,
                    },
                    spec,
                );
            };
            if let Some(ip) = cluster_ip {
                add(ip, service_port, 0, internal_local, false);
            }
            if let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok())
                && node_port != 0
            {
                add(
                    Ipv4Addr::UNSPECIFIED,
                    node_port,
                    flags::NODEPORT | flags::EXTERNAL | flags::MAGLEV,
                    external_local,
                    false,
                );
            }
            for ip in &external_ips {
                add(
                    *ip,
                    service_port,
                    flags::EXTERNAL | flags::MAGLEV,
                    external_local,
                    false,
                );
            }
            for ip in &lb_ips {
                add(
                    *ip,
                    service_port,
                    flags::EXTERNAL | flags::MAGLEV,
                    external_local,
                    true,
                );
            }
        }
    }

    fn source_ranges(&mut self, id: &str, ranges: Option<&[String]>) -> Vec<(Ipv4Addr, u8)> {
        let mut out = Vec::new();
        for range in ranges.into_iter().flatten() {
            let parsed = range.trim().split_once('/').and_then(|(a, l)| {
                let address: Ipv4Addr = a.parse().ok()?;
                let len: u8 = l.parse().ok().filter(|l| *l <= 32)?;
                Some((address, len))
            });
            match parsed {
                Some(r) => out.push(r),
                None => self.skipped.push(format!(
                    "{id}: loadBalancerSourceRange {range} is not an IPv4 CIDR"
                )),
            }
        }
        out
    }
}

fn protocol(port: &ServicePort) -> Option<u8> {
    match port.protocol.as_deref().unwrap_or("TCP") {
        "TCP" => Some(proto::TCP),
        "UDP" => Some(proto::UDP),
        "SCTP" => Some(proto::SCTP),
        _ => None,
    }
}

/// The endpoints of one Service port: slice ports match by name (and protocol).
fn endpoints(
    port: &ServicePort,
    proto: u8,
    slices: &[&EndpointSlice],
    node: &NodeView,
) -> Vec<Endpoint> {
    let name = port.name.as_deref().unwrap_or("");
    let mut out = Vec::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let Some(target) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == name
                && p.protocol.as_deref().unwrap_or("TCP")
                    == port.protocol.as_deref().unwrap_or("TCP")
        }) else {
            continue;
        };
        let Some(target_port) = target.port.and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for endpoint in slice.endpoints.iter().flatten() {
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(ready);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let local = endpoint.node_name.as_deref() == Some(node.name.as_str());
            for address in &endpoint.addresses {
                let Ok(address) = address.parse() else {
                    continue;
                };
                out.push(Endpoint {
                    backend: Backend {
                        address,
                        port: target_port,
                        proto,
                        remote: endpoint.node_name.is_some() && !local,
                    },
                    serving: serving && !terminating,
                    terminating: terminating && serving,
                    local,
                });
            }
        }
    }
    out
}

/// The backends a frontend uses: serving endpoints, else serving-but-terminating ones (so a
/// rolling update's last pods keep answering), within the traffic policy's scope.
fn choose(endpoints: &[Endpoint], local_only: bool) -> (Vec<Backend>, BTreeSet<Backend>, bool) {
    let scoped: Vec<&Endpoint> = endpoints
        .iter()
        .filter(|e| !local_only || e.local)
        .collect();
    let serving: BTreeSet<Backend> = scoped
        .iter()
        .filter(|e| e.serving)
        .map(|e| e.backend)
        .collect();
    let (set, terminating) = if serving.is_empty() {
        let t: BTreeSet<Backend> = scoped
            .iter()
            .filter(|e| e.terminating)
            .map(|e| e.backend)
            .collect();
        (t.clone(), t)
    } else {
        (serving, BTreeSet::new())
    };
    let truncated = set.len() > MAX_BACKENDS;
    let backends: Vec<Backend> = set.into_iter().take(MAX_BACKENDS).collect();
    (backends, terminating, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).unwrap()
    }

    fn web() -> Service {
        service(json!({
            "metadata": { "name": "web", "namespace": "default" },
            "spec": {
                "type": "NodePort", "clusterIP": "10.96.0.10",
                "ports": [{ "name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080 }],
            },
        }))
    }

    fn endpoints_of(eps: serde_json::Value) -> EndpointSlice {
        slice(json!({
            "metadata": { "name": "web-abc", "namespace": "default",
                          "labels": { "kubernetes.io/service-name": "web" } },
            "addressType": "IPv4",
            "ports": [{ "name": "http", "port": 8080, "protocol": "TCP" }],
            "endpoints": eps,
        }))
    }

    fn node() -> NodeView {
        NodeView { name: "n1".into() }
    }

    fn addrs(spec: &FrontendSpec) -> Vec<String> {
        spec.backends
            .iter()
            .map(|b| format!("{}:{}", b.address, b.port))
            .collect()
    }

    fn frontend(address: [u8; 4], port: u16) -> Frontend {
        Frontend {
            address: Ipv4Addr::from(address),
            port,
            proto: proto::TCP,
        }
    }

    #[test]
    fn cluster_ip_and_node_port_frontends_share_the_endpoints() {
        let slices = [endpoints_of(json!([
            { "addresses": ["10.244.1.5"], "nodeName": "n1" },
            { "addresses": ["10.244.2.7"], "nodeName": "n2", "conditions": { "ready": true } },
            { "addresses": ["10.244.2.8"], "nodeName": "n2", "conditions": { "ready": false } },
        ]))];
        let d = Desired::compute(&[web()], &slices, &node());
        assert_eq!(d.frontends.len(), 2, "{d:?}");
        let cip = &d.frontends[&frontend([10, 96, 0, 10], 80)];
        assert_eq!(addrs(cip), ["10.244.1.5:8080", "10.244.2.7:8080"]);
        assert_eq!(
            cip.backends.iter().map(|b| b.remote).collect::<Vec<_>>(),
            [false, true],
            "the endpoint on n2 is remote"
        );
        assert_eq!(cip.flags, 0);
        let np = &d.frontends[&frontend([0, 0, 0, 0], 30080)];
        assert_eq!(addrs(np), addrs(cip));
        assert_eq!(
            np.flags,
            flags::NODEPORT | flags::EXTERNAL | flags::MAGLEV,
            "NodePorts pick through Maglev"
        );
    }

    #[test]
    fn local_traffic_policy_keeps_this_nodes_endpoints_only() {
        let mut svc = web();
        let spec = svc.spec.as_mut().unwrap();
        spec.external_traffic_policy = Some("Local".into());
        let slices = [endpoints_of(json!([
            { "addresses": ["10.244.1.5"], "nodeName": "n2" },
        ]))];
        let d = Desired::compute(&[svc], &slices, &node());
        let np = &d.frontends[&frontend([0, 0, 0, 0], 30080)];
        assert!(np.backends.is_empty(), "no local endpoint: reject");
        assert_ne!(np.flags & flags::LOCAL_ONLY, 0);
        let cip = &d.frontends[&frontend([10, 96, 0, 10], 80)];
        assert_eq!(addrs(cip), ["10.244.1.5:8080"], "the ClusterIP is Cluster");
    }

    #[test]
    fn terminating_endpoints_only_when_nothing_serves() {
        let both = [endpoints_of(json!([
            { "addresses": ["10.244.1.5"], "conditions": { "ready": false, "serving": true, "terminating": true } },
            { "addresses": ["10.244.1.6"], "conditions": { "ready": true } },
        ]))];
        let d = Desired::compute(&[web()], &both, &node());
        let cip = &d.frontends[&frontend([10, 96, 0, 10], 80)];
        assert_eq!(addrs(cip), ["10.244.1.6:8080"]);
        let only_terminating = [endpoints_of(json!([
            { "addresses": ["10.244.1.5"], "conditions": { "ready": false, "serving": true, "terminating": true } },
            { "addresses": ["10.244.1.7"], "conditions": { "ready": false, "serving": false, "terminating": true } },
        ]))];
        let d = Desired::compute(&[web()], &only_terminating, &node());
        let cip = &d.frontends[&frontend([10, 96, 0, 10], 80)];
        assert_eq!(addrs(cip), ["10.244.1.5:8080"]);
        assert_eq!(cip.terminating.len(), 1);
    }

    #[test]
    fn affinity_external_ips_lb_ips_and_source_ranges() {
        let svc = service(json!({
            "metadata": { "name": "web", "namespace": "default" },
            "spec": {
                "type": "LoadBalancer", "clusterIP": "10.96.0.10",
                "externalIPs": ["192.0.2.10", "2001:db8::1"],
                "sessionAffinity": "ClientIP",
                "sessionAffinityConfig": { "clientIP": { "timeoutSeconds": 60 } },
                "loadBalancerSourceRanges": ["198.51.100.0/24", "bogus"],
                "ports": [{ "name": "http", "port": 80, "nodePort": 30080 }],
            },
            "status": { "loadBalancer": { "ingress": [{ "ip": "203.0.113.5" }] } },
        }));
        let d = Desired::compute(&[svc], &[], &node());
        assert_eq!(d.frontends.len(), 4, "{:?}", d.frontends.keys());
        for spec in d.frontends.values() {
            assert_eq!(spec.affinity_timeout, 60);
            assert_ne!(spec.flags & flags::AFFINITY, 0);
            assert!(spec.backends.is_empty());
        }
        let lb = &d.frontends[&frontend([203, 0, 113, 5], 80)];
        assert_eq!(
            lb.source_ranges,
            [(Ipv4Addr::new(198, 51, 100, 0), 24)],
            "source ranges apply to the LoadBalancer IP"
        );
        let ext = &d.frontends[&frontend([192, 0, 2, 10], 80)];
        assert!(ext.source_ranges.is_empty());
        assert_eq!(d.skipped.len(), 2, "{:?}", d.skipped);
    }

    #[test]
    fn headless_and_external_name_services_have_no_frontend() {
        let headless = service(json!({
            "metadata": { "name": "db", "namespace": "default" },
            "spec": { "clusterIP": "None", "ports": [{ "port": 5432 }] },
        }));
        let external = service(json!({
            "metadata": { "name": "ext", "namespace": "default" },
            "spec": { "type": "ExternalName", "externalName": "example.com" },
        }));
        let d = Desired::compute(&[headless, external], &[], &node());
        assert!(d.frontends.is_empty());
        assert!(d.skipped.is_empty());
    }

    #[test]
    fn slice_ports_match_by_name_and_protocol() {
        let svc = service(json!({
            "metadata": { "name": "dns", "namespace": "kube-system" },
            "spec": { "clusterIP": "10.96.0.53", "ports": [
                { "name": "dns", "port": 53, "protocol": "UDP" },
                { "name": "dns-tcp", "port": 53, "protocol": "TCP" },
            ]},
        }));
        let slices = [slice(json!({
            "metadata": { "name": "dns-1", "namespace": "kube-system",
                          "labels": { "kubernetes.io/service-name": "dns" } },
            "addressType": "IPv4",
            "ports": [
                { "name": "dns", "port": 1053, "protocol": "UDP" },
                { "name": "dns-tcp", "port": 2053, "protocol": "TCP" },
            ],
            "endpoints": [{ "addresses": ["10.244.0.9"] }],
        }))];
        let d = Desired::compute(&[svc], &slices, &node());
        let udp = &d.frontends[&Frontend {
            address: Ipv4Addr::new(10, 96, 0, 53),
            port: 53,
            proto: proto::UDP,
        }];
        assert_eq!(addrs(udp), ["10.244.0.9:1053"]);
        let tcp = &d.frontends[&frontend([10, 96, 0, 53], 53)];
        assert_eq!(addrs(tcp), ["10.244.0.9:2053"]);
    }
}
