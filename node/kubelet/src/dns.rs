//! The pod's DNS: the `DNSConfig` RunPodSandbox writes into the sandbox's /etc/resolv.conf,
//! from the pod's dnsPolicy and dnsConfig, the node's cluster DNS and its own resolv.conf, with
//! the kubelet's rules and limits.

use std::net::IpAddr;
use std::path::Path;

use k8s_openapi::api::core::v1::{Pod, PodDNSConfig};
use skiff_cri::v1;

use crate::Config;
use crate::runtime;

/// At most this many nameservers (what the C resolver reads).
pub const MAX_NAMESERVERS: usize = 3;
/// At most this many search domains.
pub const MAX_SEARCHES: usize = 32;
/// The search line's length limit.
pub const MAX_SEARCH_CHARS: usize = 2048;
/// A search domain longer than this (a DNS subdomain's limit) is dropped.
const MAX_SEARCH_LEN: usize = 253;

/// Where a pod's resolver configuration comes from (Kubernetes' pod DNS types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The cluster's DNS service (ClusterFirst, ClusterFirstWithHostNet).
    Cluster,
    /// The node's resolv.conf (Default; ClusterFirst for hostNetwork pods).
    Host,
    /// Only the pod's dnsConfig (None).
    None,
}

fn source(pod: &Pod) -> Source {
    let policy = pod.spec.as_ref().and_then(|s| s.dns_policy.as_deref());
    match policy.unwrap_or("ClusterFirst") {
        "None" => Source::None,
        "Default" => Source::Host,
        "ClusterFirstWithHostNet" => Source::Cluster,
        // ClusterFirst: a hostNetwork pod uses the node's DNS.
        _ if runtime::host_network(pod) => Source::Host,
        _ => Source::Cluster,
    }
}

/// A resolv.conf's nameservers, search domains and options (the last `search` line wins,
/// `options` lines add up), as the kubelet parses the node's.
pub fn parse_resolv_conf(text: &str) -> v1::DnsConfig {
    let mut out = v1::DnsConfig::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => out.servers.extend(fields.next().map(str::to_owned)),
            Some("search") => {
                out.searches = fields
                    .filter(|s| *s != ".")
                    .map(|s| s.trim_end_matches('.').to_owned())
                    .collect();
            }
            Some("options") => out.options.extend(fields.map(str::to_owned)),
            _ => {}
        }
    }
    out
}

/// The node's resolver configuration: `resolv_conf` parsed (`None`: no file, which makes the
/// node's own resolver, on loopback, the server, as the kubelet does for `--resolv-conf=""`).
fn host_config(resolv_conf: Option<&Path>) -> v1::DnsConfig {
    let Some(path) = resolv_conf else {
        return v1::DnsConfig {
            servers: vec!["127.0.0.1".to_owned()],
            searches: vec![".".to_owned()],
            options: Vec::new(),
        };
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse_resolv_conf(&text),
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "cannot read the node's resolv.conf; pods using it get no DNS settings from it");
            v1::DnsConfig::default()
        }
    }
}

/// The sandbox's DNS config for `pod`, from the pod's dnsPolicy and dnsConfig and the node's
/// `host` configuration (its resolv.conf, parsed).
fn compute(pod: &Pod, config: &Config, host: v1::DnsConfig) -> v1::DnsConfig {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut dns = match source(pod) {
        Source::None => v1::DnsConfig::default(),
        Source::Cluster if !config.cluster_dns.is_empty() => v1::DnsConfig {
            servers: config.cluster_dns.iter().map(IpAddr::to_string).collect(),
            searches: cluster_searches(namespace, &config.cluster_domain, host.searches),
            options: vec!["ndots:5".to_owned()],
        },
        Source::Cluster => {
            // Kubernetes reports MissingClusterDNS and falls back to the node's DNS.
            tracing::warn!(pod = ?pod.metadata.name, %namespace, reason = "MissingClusterDNS", "pod wants ClusterFirst DNS but no cluster DNS is configured; using the node's resolv.conf");
            host
        }
        Source::Host => host,
    };
    if let Some(extra) = pod.spec.as_ref().and_then(|s| s.dns_config.as_ref()) {
        merge(&mut dns, extra);
    }
    fit_limits(&mut dns);
    dns
}

/// `<ns>.svc.<domain> svc.<domain> <domain>`, then the node's own search domains.
fn cluster_searches(namespace: &str, domain: &str, host: Vec<String>) -> Vec<String> {
    let domain = domain.trim_matches('.');
    let mut searches = Vec::new();
    if !domain.is_empty() {
        searches = vec![
            format!("{namespace}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.to_owned(),
        ];
    }
    searches.extend(host);
    dedup(searches)
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The pod's dnsConfig added: nameservers and searches appended (without duplicates), options
/// set by name (the pod's value wins; an option without a value is just its name).
fn merge(dns: &mut v1::DnsConfig, extra: &PodDNSConfig) {
    let servers = std::mem::take(&mut dns.servers);
    dns.servers = dedup(
        servers
            .into_iter()
            .chain(extra.nameservers.iter().flatten().cloned())
            .collect(),
    );
    let searches = std::mem::take(&mut dns.searches);
    dns.searches = dedup(
        searches
            .into_iter()
            .chain(extra.searches.iter().flatten().cloned())
            .collect(),
    );
    let mut options: Vec<(String, Option<String>)> = dns
        .options
        .iter()
        .map(|o| match o.split_once(':') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (o.clone(), None),
        })
        .collect();
    for option in extra.options.iter().flatten() {
        let Some(name) = option.name.clone() else {
            continue;
        };
        let value = option.value.clone().filter(|v| !v.is_empty());
        match options.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) => existing.1 = value,
            None => options.push((name, value)),
        }
    }
    dns.options = options
        .into_iter()
        .map(|(name, value)| match value {
            Some(value) => format!("{name}:{value}"),
            None => name,
        })
        .collect();
}

/// Kubernetes' limits: 3 nameservers; 32 search domains, none over 253 characters, the line at
/// most 2048 characters (domains dropped from the end). What goes is logged.
fn fit_limits(dns: &mut v1::DnsConfig) {
    if dns.servers.len() > MAX_NAMESERVERS {
        tracing::warn!(dropped = ?&dns.servers[MAX_NAMESERVERS..], "nameserver limits exceeded; some were omitted");
        dns.servers.truncate(MAX_NAMESERVERS);
    }
    let before = dns.searches.len();
    dns.searches.truncate(MAX_SEARCHES);
    dns.searches.retain(|s| s.len() <= MAX_SEARCH_LEN);
    while dns.searches.join(" ").len() > MAX_SEARCH_CHARS {
        dns.searches.pop();
    }
    if dns.searches.len() < before {
        tracing::warn!(kept = ?dns.searches, "search line limits exceeded; some search domains were omitted");
    }
}

/// The RunPodSandbox DNS config for `pod` on this node.
pub fn sandbox_dns(pod: &Pod, config: &Config) -> v1::DnsConfig {
    // The node's file is read only when the pod's DNS draws on it.
    let host = match source(pod) {
        Source::None => v1::DnsConfig::default(),
        _ => host_config(config.resolv_conf.as_deref()),
    };
    compute(pod, config, host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c", "image": "busybox"}]);
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "team-a", "uid": "u1"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn config(cluster_dns: &[&str]) -> Config {
        let mut config = Config::new("n1");
        config.cluster_dns = cluster_dns.iter().map(|ip| ip.parse().unwrap()).collect();
        config
    }

    fn host() -> v1::DnsConfig {
        parse_resolv_conf(
            "# generated\nnameserver 192.0.2.53\nnameserver 192.0.2.54 ; second\nsearch old.example\nsearch corp.example. lab.example\noptions rotate\noptions timeout:2 edns0\n",
        )
    }

    #[test]
    fn parses_a_resolv_conf_like_the_kubelet() {
        let host = host();
        assert_eq!(host.servers, ["192.0.2.53", "192.0.2.54"]);
        assert_eq!(host.searches, ["corp.example", "lab.example"]);
        assert_eq!(host.options, ["rotate", "timeout:2", "edns0"]);
    }

    #[test]
    fn cluster_first_uses_the_cluster_dns_and_search_path() {
        let dns = compute(&pod(json!({})), &config(&["10.96.0.10"]), host());
        assert_eq!(dns.servers, ["10.96.0.10"]);
        assert_eq!(
            dns.searches,
            [
                "team-a.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example",
                "lab.example"
            ]
        );
        assert_eq!(dns.options, ["ndots:5"]);
        let mut custom = config(&["10.96.0.10", "10.96.0.11"]);
        custom.cluster_domain = "k8s.example".into();
        let dns = compute(
            &pod(json!({"dnsPolicy": "ClusterFirst"})),
            &custom,
            v1::DnsConfig::default(),
        );
        assert_eq!(dns.servers, ["10.96.0.10", "10.96.0.11"]);
        assert_eq!(
            dns.searches,
            ["team-a.svc.k8s.example", "svc.k8s.example", "k8s.example"]
        );
    }

    #[test]
    fn cluster_first_without_cluster_dns_falls_back_to_the_node() {
        let dns = compute(&pod(json!({})), &config(&[]), host());
        assert_eq!(dns, host());
    }

    #[test]
    fn host_network_pods_use_the_node_unless_they_ask_for_cluster_dns() {
        let cluster = config(&["10.96.0.10"]);
        let dns = compute(&pod(json!({"hostNetwork": true})), &cluster, host());
        assert_eq!(dns, host());
        let dns = compute(
            &pod(json!({"hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"})),
            &cluster,
            host(),
        );
        assert_eq!(dns.servers, ["10.96.0.10"]);
        assert_eq!(dns.options, ["ndots:5"]);
        // ClusterFirstWithHostNet on a pod network pod is plain ClusterFirst.
        let dns = compute(
            &pod(json!({"dnsPolicy": "ClusterFirstWithHostNet"})),
            &cluster,
            host(),
        );
        assert_eq!(dns.servers, ["10.96.0.10"]);
    }

    #[test]
    fn default_uses_the_node_and_merges_dns_config() {
        let spec = json!({
            "dnsPolicy": "Default",
            "dnsConfig": {
                "nameservers": ["192.0.2.53", "198.51.100.1"],
                "searches": ["extra.example", "corp.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "timeout", "value": "5"}, {"name": "single-request"}],
            },
        });
        let dns = compute(&pod(spec), &config(&["10.96.0.10"]), host());
        assert_eq!(dns.servers, ["192.0.2.53", "192.0.2.54", "198.51.100.1"]);
        assert_eq!(
            dns.searches,
            ["corp.example", "lab.example", "extra.example"]
        );
        assert_eq!(
            dns.options,
            ["rotate", "timeout:5", "edns0", "ndots:2", "single-request"]
        );
    }

    #[test]
    fn none_takes_only_the_pods_dns_config() {
        let spec = json!({
            "dnsPolicy": "None",
            "dnsConfig": {"nameservers": ["1.2.3.4"], "searches": ["a.example"], "options": [{"name": "ndots", "value": "1"}]},
        });
        let dns = compute(&pod(spec), &config(&["10.96.0.10"]), host());
        assert_eq!(dns.servers, ["1.2.3.4"]);
        assert_eq!(dns.searches, ["a.example"]);
        assert_eq!(dns.options, ["ndots:1"]);
        // The pod's ndots overrides ClusterFirst's.
        let spec = json!({"dnsConfig": {"options": [{"name": "ndots", "value": "1"}]}});
        let dns = compute(&pod(spec), &config(&["10.96.0.10"]), host());
        assert_eq!(dns.options, ["ndots:1"]);
    }

    #[test]
    fn limits_cut_nameservers_and_searches() {
        let many: Vec<String> = (0..40).map(|i| format!("d{i}.example")).collect();
        let long = "x".repeat(254);
        let searches: Vec<String> = std::iter::once(long).chain(many.clone()).collect();
        let spec = json!({
            "dnsPolicy": "None",
            "dnsConfig": {
                "nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"],
                "searches": searches,
            },
        });
        let dns = compute(&pod(spec), &config(&[]), v1::DnsConfig::default());
        assert_eq!(dns.servers, ["1.1.1.1", "2.2.2.2", "3.3.3.3"]);
        // 32 kept, then the over-long one dropped.
        assert_eq!(dns.searches, many[..31]);
        let wide: Vec<String> = (0..20).map(|i| format!("{i:0>200}")).collect();
        let spec = json!({"dnsPolicy": "None", "dnsConfig": {"searches": wide}});
        let dns = compute(&pod(spec), &config(&[]), v1::DnsConfig::default());
        assert!(dns.searches.join(" ").len() <= MAX_SEARCH_CHARS);
        assert_eq!(dns.searches.len(), 10, "{:?}", dns.searches.len());
    }

    #[test]
    fn no_resolv_conf_means_the_local_resolver() {
        let dns = host_config(None);
        assert_eq!(dns.servers, ["127.0.0.1"]);
        assert_eq!(dns.searches, ["."]);
    }
}
