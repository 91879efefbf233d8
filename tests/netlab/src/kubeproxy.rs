//! Rule sets shaped like the ones kube-proxy writes, for N services, to measure skiff's load
//! balancer against: the iptables mode's `iptables-restore` input and the nftables mode's
//! `nft -f` transactions (table `ip kube-proxy`). Written from kube-proxy's documented rule
//! layout; chain names use a hash of the same length as kube-proxy's (not its SHA-256, which
//! changes nothing for the kernel).
//!
//! TCP ClusterIP services only: what a service costs is its ClusterIP rules and one chain per
//! endpoint; NodePort, firewall and affinity rules are left out (a service without them gets
//! none in kube-proxy either).

use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddrV4};

/// One port of one service, with its endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// The namespace.
    pub namespace: String,
    /// The service name.
    pub name: String,
    /// The port's name.
    pub port_name: String,
    /// The ClusterIP.
    pub cluster_ip: Ipv4Addr,
    /// The service port (TCP).
    pub port: u16,
    /// The ready endpoints.
    pub endpoints: Vec<SocketAddrV4>,
}

impl ServicePort {
    /// kube-proxy's `ServicePortName` string: `namespace/name:port`.
    pub fn port_name(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.name, self.port_name)
    }

    fn svc_chain(&self) -> String {
        format!("KUBE-SVC-{}", hash(&format!("{}tcp", self.port_name()), 16))
    }

    fn sep_chain(&self, endpoint: &SocketAddrV4) -> String {
        format!(
            "KUBE-SEP-{}",
            hash(&format!("{}tcp{endpoint}", self.port_name()), 16)
        )
    }

    fn nft_base(&self) -> String {
        format!("{}/{}/tcp/{}", self.namespace, self.name, self.port_name)
    }

    fn nft_service_chain(&self) -> String {
        format!("service-{}-{}", hash(&self.nft_base(), 8), self.nft_base())
    }

    fn nft_endpoint_chain(&self, endpoint: &SocketAddrV4) -> String {
        let base = format!("{}__{}/{}", self.nft_base(), endpoint.ip(), endpoint.port());
        format!("endpoint-{}-{base}", hash(&base, 8))
    }
}

/// Which part of the iptables rules a restore writes.
#[derive(Clone, Copy, Debug)]
pub enum IptablesSync<'a> {
    /// Everything, replacing the `filter` and `nat` tables (`iptables-restore` without
    /// `--noflush`: kube-proxy's first sync, and what a full resync amounts to).
    Full,
    /// kube-proxy's partial sync (v1.28+, for `iptables-restore --noflush`): its fixed chains
    /// and `KUBE-SERVICES` again, the chains of the changed service, and `-X` for the
    /// endpoint chains it no longer uses.
    Changed {
        /// The service as it is now.
        service: &'a ServicePort,
        /// Endpoints it had before and no longer has.
        removed: &'a [SocketAddrV4],
    },
}

const MASQ_MARK: &str = "0x4000/0x4000";

/// `iptables-restore` input for `services` (pods are in `cluster_cidr`).
pub fn iptables_restore(
    services: &[ServicePort],
    cluster_cidr: &str,
    sync: IptablesSync,
) -> String {
    let mut out = String::with_capacity(services.len() * 3000 + 4096);
    let full = matches!(sync, IptablesSync::Full);
    let written: Vec<&ServicePort> = match sync {
        IptablesSync::Full => services.iter().collect(),
        IptablesSync::Changed { service, .. } => vec![service],
    };

    out.push_str("*filter\n");
    if full {
        for chain in ["INPUT", "FORWARD", "OUTPUT"] {
            let _ = writeln!(out, ":{chain} ACCEPT [0:0]");
        }
    }
    for chain in [
        "KUBE-NODEPORTS",
        "KUBE-SERVICES",
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-FORWARD",
        "KUBE-PROXY-FIREWALL",
    ] {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    if full {
        let new = "-m conntrack --ctstate NEW";
        out.push_str(&format!(
            "-A INPUT {new} -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n\
             -A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS\n\
             -A INPUT {new} -m comment --comment \"kubernetes externally visible service portals\" -j KUBE-EXTERNAL-SERVICES\n\
             -A FORWARD {new} -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n\
             -A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n\
             -A FORWARD {new} -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
             -A FORWARD {new} -m comment --comment \"kubernetes externally visible service portals\" -j KUBE-EXTERNAL-SERVICES\n\
             -A OUTPUT {new} -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n\
             -A OUTPUT {new} -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
        ));
    }
    let _ = write!(
        out,
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n\
         -A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark {MASQ_MARK} -j ACCEPT\n\
         -A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         COMMIT\n"
    );

    out.push_str("*nat\n");
    if full {
        for chain in ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"] {
            let _ = writeln!(out, ":{chain} ACCEPT [0:0]");
        }
    }
    for chain in [
        "KUBE-SERVICES",
        "KUBE-NODEPORTS",
        "KUBE-POSTROUTING",
        "KUBE-MARK-MASQ",
    ] {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    for service in &written {
        let _ = writeln!(out, ":{} - [0:0]", service.svc_chain());
        for endpoint in &service.endpoints {
            let _ = writeln!(out, ":{} - [0:0]", service.sep_chain(endpoint));
        }
    }
    // A stale chain is declared (which flushes it) before its `-X`, as kube-proxy does.
    if let IptablesSync::Changed { service, removed } = sync {
        for endpoint in removed {
            let _ = writeln!(out, ":{} - [0:0]", service.sep_chain(endpoint));
        }
    }
    if full {
        out.push_str(
            "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
             -A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
             -A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n",
        );
    }
    let _ = write!(
        out,
        "-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK} -j RETURN\n\
         -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n\
         -A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n\
         -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n"
    );
    // KUBE-SERVICES is written whole in both modes: kube-proxy rewrites it on every sync.
    for service in services {
        let _ = writeln!(
            out,
            "-A KUBE-SERVICES -m comment --comment \"{} cluster IP\" -m tcp -p tcp -d {}/32 --dport {} -j {}",
            service.port_name(),
            service.cluster_ip,
            service.port,
            service.svc_chain()
        );
    }
    out.push_str(
        "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n",
    );
    for service in &written {
        let name = service.port_name();
        let svc = service.svc_chain();
        let _ = writeln!(
            out,
            "-A {svc} -m comment --comment \"{name} cluster IP\" -m tcp -p tcp -d {}/32 --dport {} ! -s {cluster_cidr} -j KUBE-MARK-MASQ",
            service.cluster_ip, service.port
        );
        let n = service.endpoints.len();
        for (i, endpoint) in service.endpoints.iter().enumerate() {
            // Each endpoint takes 1/(remaining) of what reaches it: uniform overall.
            let statistic = if i + 1 < n {
                format!(
                    " -m statistic --mode random --probability {:.10}",
                    1.0 / (n - i) as f64
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "-A {svc} -m comment --comment \"{name} -> {endpoint}\"{statistic} -j {}",
                service.sep_chain(endpoint)
            );
        }
        for endpoint in &service.endpoints {
            let sep = service.sep_chain(endpoint);
            let _ = write!(
                out,
                "-A {sep} -m comment --comment {name} -s {}/32 -j KUBE-MARK-MASQ\n\
                 -A {sep} -m comment --comment {name} -m tcp -p tcp -j DNAT --to-destination {endpoint}\n",
                endpoint.ip()
            );
        }
    }
    if let IptablesSync::Changed { service, removed } = sync {
        for endpoint in removed {
            let _ = writeln!(out, "-X {}", service.sep_chain(endpoint));
        }
    }
    out.push_str("COMMIT\n");
    out
}

/// The nftables table kube-proxy owns.
pub const NFT_TABLE: &str = "ip kube-proxy";

/// An `nft -f` transaction creating kube-proxy's table with `services`, from nothing.
pub fn nft_ruleset(services: &[ServicePort], cluster_cidr: &str, service_cidr: &str) -> String {
    let t = NFT_TABLE;
    let mut out = String::with_capacity(services.len() * 3500 + 4096);
    let _ = write!(
        out,
        "add table {t} {{ comment \"rules for kube-proxy\" ; }}\n\
         add chain {t} mark-for-masquerade\n\
         add rule {t} mark-for-masquerade mark set mark or 0x4000\n\
         add chain {t} masquerading\n\
         add rule {t} masquerading mark and 0x4000 == 0 return\n\
         add rule {t} masquerading mark set mark xor 0x4000\n\
         add rule {t} masquerading masquerade fully-random\n\
         add set {t} cluster-ips {{ type ipv4_addr ; comment \"Active ClusterIPs\" ; }}\n\
         add chain {t} cluster-ips-check\n\
         add rule {t} cluster-ips-check ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"\n\
         add rule {t} cluster-ips-check ip daddr {service_cidr} drop comment \"Drop traffic to unallocated ClusterIPs\"\n\
         add map {t} no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }}\n\
         add chain {t} service-endpoints-check\n\
         add rule {t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services\n\
         add chain {t} filter-forward {{ type filter hook forward priority -110 ; }}\n\
         add rule {t} filter-forward ct state new jump service-endpoints-check\n\
         add rule {t} filter-forward ct state new jump cluster-ips-check\n\
         add chain {t} filter-output {{ type filter hook output priority -110 ; }}\n\
         add rule {t} filter-output ct state new jump service-endpoints-check\n\
         add rule {t} filter-output ct state new jump cluster-ips-check\n\
         add map {t} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }}\n\
         add map {t} service-nodeports {{ type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ; }}\n\
         add chain {t} services\n\
         add rule {t} services ip daddr . meta l4proto . th dport vmap @service-ips\n\
         add rule {t} services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports\n\
         add chain {t} nat-prerouting {{ type nat hook prerouting priority -100 ; }}\n\
         add rule {t} nat-prerouting jump services\n\
         add chain {t} nat-output {{ type nat hook output priority -100 ; }}\n\
         add rule {t} nat-output jump services\n\
         add chain {t} nat-postrouting {{ type nat hook postrouting priority 100 ; }}\n\
         add rule {t} nat-postrouting jump masquerading\n"
    );
    for service in services {
        nft_service(&mut out, service, cluster_cidr, &service.endpoints);
        let _ = write!(
            out,
            "add element {t} service-ips {{ {} . tcp . {} : goto {} }}\n\
             add element {t} cluster-ips {{ {} }}\n",
            service.cluster_ip,
            service.port,
            service.nft_service_chain(),
            service.cluster_ip
        );
    }
    out
}

/// The incremental `nft -f` transaction kube-proxy's nftables mode sends when one service's
/// endpoints change from `before` to `after`: new endpoint chains, the service chain flushed
/// and rewritten, the endpoint chains no longer used deleted.
pub fn nft_endpoints_changed(
    before: &ServicePort,
    after: &ServicePort,
    cluster_cidr: &str,
) -> String {
    let mut out = String::new();
    let added: Vec<SocketAddrV4> = after
        .endpoints
        .iter()
        .filter(|e| !before.endpoints.contains(e))
        .copied()
        .collect();
    let _ = writeln!(out, "flush chain {NFT_TABLE} {}", after.nft_service_chain());
    nft_service(&mut out, after, cluster_cidr, &added);
    for endpoint in before
        .endpoints
        .iter()
        .filter(|e| !after.endpoints.contains(e))
    {
        let _ = writeln!(
            out,
            "delete chain {NFT_TABLE} {}",
            before.nft_endpoint_chain(endpoint)
        );
    }
    out
}

/// Writes the chains of `endpoints` (created and flushed) and the service chain's rules.
fn nft_service(
    out: &mut String,
    service: &ServicePort,
    cluster_cidr: &str,
    endpoints: &[SocketAddrV4],
) {
    let t = NFT_TABLE;
    for endpoint in endpoints {
        let chain = service.nft_endpoint_chain(endpoint);
        let _ = write!(
            out,
            "add chain {t} {chain}\n\
             flush chain {t} {chain}\n\
             add rule {t} {chain} ip saddr {} jump mark-for-masquerade\n\
             add rule {t} {chain} meta l4proto tcp dnat to {endpoint}\n",
            endpoint.ip()
        );
    }
    let chain = service.nft_service_chain();
    let targets: Vec<String> = service
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{i} : goto {}", service.nft_endpoint_chain(e)))
        .collect();
    let _ = write!(
        out,
        "add chain {t} {chain}\n\
         add rule {t} {chain} ip daddr {} tcp dport {} ip saddr != {cluster_cidr} jump mark-for-masquerade\n\
         add rule {t} {chain} numgen random mod {} vmap {{ {} }}\n",
        service.cluster_ip,
        service.port,
        service.endpoints.len(),
        targets.join(", ")
    );
}

/// A kube-proxy-like chain name hash: `len` base32 characters of a 128-bit FNV-1a pair.
fn hash(input: &str, len: usize) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let fnv = |seed: u64| {
        input.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let mut bits =
        (u128::from(fnv(0xcbf2_9ce4_8422_2325)) << 64) | u128::from(fnv(0x8422_2325_cbf2_9ce4));
    (0..len.min(25))
        .map(|_| {
            let c = ALPHABET[(bits & 31) as usize] as char;
            bits >>= 5;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(i: u8) -> ServicePort {
        ServicePort {
            namespace: "bench".into(),
            name: format!("svc-{i}"),
            port_name: "http".into(),
            cluster_ip: Ipv4Addr::new(10, 96, 0, i),
            port: 80,
            endpoints: (0..3)
                .map(|e| SocketAddrV4::new(Ipv4Addr::new(10, 244, 0, 10 + e), 8080))
                .collect(),
        }
    }

    #[test]
    fn iptables_shape() {
        let text = iptables_restore(
            &[service(1), service(2)],
            "10.244.0.0/16",
            IptablesSync::Full,
        );
        let svc = service(1).svc_chain();
        assert!(svc.starts_with("KUBE-SVC-") && svc.len() == 25);
        assert!(text.contains(&format!("-d 10.96.0.1/32 --dport 80 -j {svc}\n")));
        assert!(text.contains("--probability 0.3333333333 -j KUBE-SEP-"));
        assert!(text.contains("--probability 0.5000000000 -j KUBE-SEP-"));
        assert!(text.contains("-j DNAT --to-destination 10.244.0.12:8080\n"));
        // Per service: 1 KUBE-SERVICES rule, 1 + 3 KUBE-SVC rules, 2 per endpoint.
        assert_eq!(text.matches("-A KUBE-SEP-").count(), 12);
        assert_eq!(text.matches("COMMIT").count(), 2);
    }

    #[test]
    fn iptables_partial_rewrites_one_service() {
        let mut after = service(2);
        let removed = [after.endpoints[0]];
        after.endpoints[0] = SocketAddrV4::new(Ipv4Addr::new(10, 244, 0, 99), 8080);
        let all = [service(1), after.clone()];
        let text = iptables_restore(
            &all,
            "10.244.0.0/16",
            IptablesSync::Changed {
                service: &after,
                removed: &removed,
            },
        );
        assert!(!text.contains(&service(1).svc_chain().replace("KUBE-SVC", "-A KUBE-SVC")));
        assert!(text.contains(&format!("-X {}", service(2).sep_chain(&removed[0]))));
        assert!(text.contains("--to-destination 10.244.0.99:8080"));
        assert_eq!(text.matches("-A KUBE-SERVICES -m comment").count(), 3);
    }

    #[test]
    fn nft_shape() {
        let text = nft_ruleset(&[service(1)], "10.244.0.0/16", "10.96.0.0/12");
        let chain = service(1).nft_service_chain();
        assert!(chain.starts_with("service-") && chain.ends_with("-bench/svc-1/tcp/http"));
        assert!(text.contains(&format!(
            "add element ip kube-proxy service-ips {{ 10.96.0.1 . tcp . 80 : goto {chain} }}"
        )));
        assert!(text.contains("numgen random mod 3 vmap { 0 : goto endpoint-"));
        assert!(text.contains("meta l4proto tcp dnat to 10.244.0.11:8080\n"));
        let mut after = service(1);
        after.endpoints[1] = SocketAddrV4::new(Ipv4Addr::new(10, 244, 0, 99), 8080);
        let change = nft_endpoints_changed(&service(1), &after, "10.244.0.0/16");
        assert!(change.starts_with(&format!("flush chain ip kube-proxy {chain}\n")));
        assert!(change.contains("dnat to 10.244.0.99:8080"));
        assert_eq!(change.matches("delete chain").count(), 1);
        assert_eq!(
            change.matches("add chain ip kube-proxy endpoint-").count(),
            1
        );
    }
}
