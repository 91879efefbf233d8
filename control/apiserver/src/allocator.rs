//! Service ClusterIP and NodePort allocation.
//!
//! Every allocated address and port is a key in the store (`/allocations/serviceips/<ip>`,
//! `/allocations/nodeports/<port>`), created with create-if-absent, so two services can never
//! get the same one even through concurrent apiservers, and the allocation survives restarts.
//! Allocation happens before the service is stored and is undone if storing fails; deleting a
//! service releases what it held.

use std::net::Ipv4Addr;
use std::sync::Arc;

use bytes::Bytes;
use rand::Rng;
use serde_json::{Value, json};
use skiff_apimachinery::validation::FieldError;
use skiff_store::{Store, StoreError};

use crate::error::{ApiError, ApiResult, Subject};
use crate::meta;

/// An IPv4 CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub network: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ip, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{s:?} is not an IPv4 CIDR"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("{s:?} has a bad prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(format!("{s:?}: the prefix length must be between 8 and 30"));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr {
            network: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        })
    }
}

impl Cidr {
    fn size(&self) -> u32 {
        1 << (32 - self.prefix)
    }

    /// Whether `ip` is a usable address of the range (not the network or broadcast address).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let offset = u32::from(ip).wrapping_sub(u32::from(self.network));
        offset > 0 && offset < self.size() - 1
    }

    /// The address `offset` into the range.
    pub fn nth(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + offset)
    }
}

/// Allocation settings.
#[derive(Debug, Clone)]
pub struct AllocatorConfig {
    /// Where ClusterIPs come from (Kubernetes' `--service-cluster-ip-range`).
    pub service_cidr: Cidr,
    /// NodePort range, inclusive (`--service-node-port-range`).
    pub node_ports: (u16, u16),
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            service_cidr: "10.96.0.0/12".parse().expect("valid CIDR"),
            node_ports: (30000, 32767),
        }
    }
}

/// Allocates and releases ClusterIPs and NodePorts.
pub struct Allocator {
    store: Arc<dyn Store>,
    config: AllocatorConfig,
}

const IP_PREFIX: &str = "/allocations/serviceips/";
const PORT_PREFIX: &str = "/allocations/nodeports/";
/// Random picks before concluding a range is full.
const ATTEMPTS: usize = 64;

fn invalid(svc: &Value, field: &str, value: Value, detail: &str) -> ApiError {
    let name = meta::name(svc).unwrap_or_default();
    ApiError::invalid(
        Subject {
            group: "",
            resource: "Service",
            name,
        },
        &[FieldError::invalid(field, value, detail)],
    )
}

impl Allocator {
    /// An allocator over `store`.
    pub fn new(store: Arc<dyn Store>, config: AllocatorConfig) -> Self {
        Allocator { store, config }
    }

    /// The first address of the service range: the `kubernetes` service's ClusterIP.
    pub fn api_service_ip(&self) -> Ipv4Addr {
        self.config.service_cidr.nth(1)
    }

    async fn claim(&self, key: &str, owner: &str) -> Result<bool, ApiError> {
        match self
            .store
            .create(key, Bytes::from(owner.to_owned()), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::AlreadyExists { .. }) => Ok(false),
            Err(err) => Err(ApiError::internal(err.to_string())),
        }
    }

    async fn release_key(&self, key: &str) {
        match self.store.delete(key, None).await {
            Ok(_) | Err(StoreError::NotFound { .. }) => {}
            Err(err) => tracing::warn!(key, error = %err, "could not release an allocation"),
        }
    }

    fn owner(svc: &Value) -> String {
        format!(
            "{}/{}",
            meta::namespace(svc).unwrap_or_default(),
            meta::name(svc).unwrap_or_default()
        )
    }

    /// Gives a new service (or an updated one, with `old`) its ClusterIP and NodePorts. Returns
    /// the keys newly claimed, so a failed write can [`undo`](Self::undo) them.
    pub async fn allocate(&self, svc: &mut Value, old: Option<&Value>) -> ApiResult<Vec<String>> {
        let mut claimed = Vec::new();
        let result = self.allocate_into(svc, old, &mut claimed).await;
        if result.is_err() {
            self.undo(&claimed).await;
        }
        result.map(|()| claimed)
    }

    async fn allocate_into(
        &self,
        svc: &mut Value,
        old: Option<&Value>,
        claimed: &mut Vec<String>,
    ) -> ApiResult<()> {
        let owner = Self::owner(svc);
        let kind = svc["spec"]["type"]
            .as_str()
            .unwrap_or("ClusterIP")
            .to_owned();
        if kind == "ExternalName" {
            return Ok(());
        }
        // ClusterIP: kept across updates; requested, "None" (headless) or allocated on create.
        let previous = old
            .and_then(|o| o["spec"]["clusterIP"].as_str())
            .map(str::to_owned);
        let requested = svc["spec"]["clusterIP"]
            .as_str()
            .filter(|ip| !ip.is_empty())
            .map(str::to_owned);
        let ip = match (previous, requested) {
            (Some(previous), Some(requested)) if previous != requested => {
                return Err(invalid(
                    svc,
                    "spec.clusterIPs[0]",
                    json!(requested),
                    "may not change once set",
                ));
            }
            (Some(previous), _) => previous,
            (None, Some(requested)) if requested == "None" => requested,
            (None, Some(requested)) => {
                let parsed: Ipv4Addr = requested.parse().map_err(|_| {
                    invalid(
                        svc,
                        "spec.clusterIPs[0]",
                        json!(requested),
                        "must be a valid IP address",
                    )
                })?;
                if !self.config.service_cidr.contains(parsed) {
                    let detail = format!(
                        "failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}/{}",
                        self.config.service_cidr.network, self.config.service_cidr.prefix
                    );
                    return Err(invalid(svc, "spec.clusterIPs", json!([requested]), &detail));
                }
                let key = format!("{IP_PREFIX}{requested}");
                if !self.claim(&key, &owner).await? {
                    let detail = format!(
                        "failed to allocate IP {requested}: provided IP is already allocated"
                    );
                    return Err(invalid(svc, "spec.clusterIPs", json!([requested]), &detail));
                }
                claimed.push(key);
                requested
            }
            (None, None) => {
                let ip = self.random_ip(&owner).await?;
                claimed.push(format!("{IP_PREFIX}{ip}"));
                ip.to_string()
            }
        };
        svc["spec"]["clusterIP"] = json!(ip);
        svc["spec"]["clusterIPs"] = json!([ip]);
        svc["spec"]["ipFamilies"] = json!(["IPv4"]);
        if svc["spec"]["ipFamilyPolicy"].is_null() {
            svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
        }
        if kind == "NodePort"
            || (kind == "LoadBalancer" && svc["spec"]["allocateLoadBalancerNodePorts"] != false)
        {
            self.allocate_node_ports(svc, old, &owner, claimed).await?;
        }
        Ok(())
    }

    async fn allocate_node_ports(
        &self,
        svc: &mut Value,
        old: Option<&Value>,
        owner: &str,
        claimed: &mut Vec<String>,
    ) -> ApiResult<()> {
        let held: Vec<i64> = old
            .and_then(|o| o["spec"]["ports"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|p| p["nodePort"].as_i64())
            .collect();
        let count = svc["spec"]["ports"].as_array().map_or(0, Vec::len);
        // As Kubernetes: entries of one service port number (its TCP and UDP, say) share one
        // NodePort; one of them may name it, and the others get it.
        let mut by_port: Vec<(i64, i64)> = Vec::new();
        for i in 0..count {
            let service_port = svc["spec"]["ports"][i]["port"].as_i64().unwrap_or(0);
            let shared = by_port
                .iter()
                .find(|(p, _)| *p == service_port)
                .map(|(_, np)| *np);
            let requested = svc["spec"]["ports"][i]["nodePort"].as_i64().or_else(|| {
                shared.or_else(|| {
                    // A later entry of the same port number may name the NodePort.
                    (svc["spec"]["ports"].as_array().into_iter().flatten())
                        .skip(i + 1)
                        .filter(|p| p["port"].as_i64() == Some(service_port))
                        .find_map(|p| p["nodePort"].as_i64())
                })
            });
            let port = match requested {
                Some(port) if held.contains(&port) || shared == Some(port) => port,
                Some(port) => {
                    let (low, high) = self.config.node_ports;
                    let field = format!("spec.ports[{i}].nodePort");
                    if port < i64::from(low) || port > i64::from(high) {
                        let detail = format!(
                            "provided port is not in the valid range. The range of valid ports is {low}-{high}"
                        );
                        return Err(invalid(svc, &field, json!(port), &detail));
                    }
                    let key = format!("{PORT_PREFIX}{port}");
                    if !self.claim(&key, owner).await? {
                        return Err(invalid(
                            svc,
                            &field,
                            json!(port),
                            "provided port is already allocated",
                        ));
                    }
                    claimed.push(key);
                    port
                }
                None => {
                    let port = self.random_port(owner).await?;
                    claimed.push(format!("{PORT_PREFIX}{port}"));
                    i64::from(port)
                }
            };
            svc["spec"]["ports"][i]["nodePort"] = json!(port);
            if shared.is_none() {
                by_port.push((service_port, port));
            }
        }
        Ok(())
    }

    async fn random_ip(&self, owner: &str) -> ApiResult<Ipv4Addr> {
        let cidr = self.config.service_cidr;
        for _ in 0..ATTEMPTS {
            // Offset 1 is reserved for the `kubernetes` service.
            let offset = rand::rng().random_range(2..cidr.size() - 1);
            let ip = cidr.nth(offset);
            if self.claim(&format!("{IP_PREFIX}{ip}"), owner).await? {
                return Ok(ip);
            }
        }
        Err(ApiError::internal(
            "failed to allocate a service IP: range is full",
        ))
    }

    async fn random_port(&self, owner: &str) -> ApiResult<u16> {
        let (low, high) = self.config.node_ports;
        for _ in 0..ATTEMPTS {
            let port = rand::rng().random_range(low..=high);
            if self.claim(&format!("{PORT_PREFIX}{port}"), owner).await? {
                return Ok(port);
            }
        }
        Err(ApiError::internal(
            "failed to allocate a node port: range is full",
        ))
    }

    /// Claims the `kubernetes` service's address (bootstrap).
    pub async fn reserve_api_service_ip(&self) -> ApiResult<()> {
        self.claim(
            &format!("{IP_PREFIX}{}", self.api_service_ip()),
            "default/kubernetes",
        )
        .await?;
        Ok(())
    }

    /// Releases keys claimed for a write that did not happen.
    pub async fn undo(&self, claimed: &[String]) {
        for key in claimed {
            self.release_key(key).await;
        }
    }

    /// Releases what `old` held and `new` (the same service, updated; `None` when deleted) no
    /// longer does.
    pub async fn release(&self, old: &Value, new: Option<&Value>) {
        let ip = old["spec"]["clusterIP"]
            .as_str()
            .filter(|ip| *ip != "None" && !ip.is_empty());
        let kept_ip = new.and_then(|n| n["spec"]["clusterIP"].as_str());
        if let Some(ip) = ip
            && kept_ip != Some(ip)
        {
            self.release_key(&format!("{IP_PREFIX}{ip}")).await;
        }
        let kept: Vec<i64> = new
            .and_then(|n| n["spec"]["ports"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|p| p["nodePort"].as_i64())
            .collect();
        for port in old["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["nodePort"].as_i64())
        {
            if !kept.contains(&port) {
                self.release_key(&format!("{PORT_PREFIX}{port}")).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_bound_their_addresses() {
        let cidr: Cidr = "10.96.0.0/12".parse().unwrap();
        assert_eq!(cidr.network, Ipv4Addr::new(10, 96, 0, 0));
        assert!(cidr.contains(Ipv4Addr::new(10, 96, 0, 1)));
        assert!(cidr.contains(Ipv4Addr::new(10, 111, 255, 254)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 96, 0, 0)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 111, 255, 255)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 112, 0, 1)));
        assert_eq!(
            "10.96.5.7/24".parse::<Cidr>().unwrap().network,
            Ipv4Addr::new(10, 96, 5, 0)
        );
        assert!("10.0.0.0/31".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }
}
