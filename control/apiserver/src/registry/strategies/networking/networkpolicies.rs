//! NetworkPolicies: defaults (TCP ports, policy types from the rules), validation as
//! `ValidateNetworkPolicy` (ports, peers, IP blocks, selectors, policy types) and the
//! POD-SELECTOR column.

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use skiff_apimachinery::validation::{
    FieldError, FieldPath, cidr_is_strict_subset, is_valid_cidr, is_valid_port_name,
    is_valid_port_num, validate_label_selector,
};

use crate::registry::strategies::{col, selector_text};
use crate::registry::{Column, Strategy};

/// NetworkPolicies.
pub struct NetworkPolicies;

impl Strategy<NetworkPolicy> for NetworkPolicies {
    fn generation(&self) -> crate::registry::Generation {
        crate::registry::Generation::SPEC
    }

    /// `SetDefaults_NetworkPolicyPort` and `SetDefaults_NetworkPolicy`.
    fn default(&self, np: &mut NetworkPolicy) {
        let spec = np.spec.get_or_insert_with(Default::default);
        let ports = spec
            .ingress
            .iter_mut()
            .flatten()
            .flat_map(|r| r.ports.iter_mut().flatten())
            .chain(
                spec.egress
                    .iter_mut()
                    .flatten()
                    .flat_map(|r| r.ports.iter_mut().flatten()),
            );
        for port in ports {
            port.protocol.get_or_insert_with(|| "TCP".into());
        }
        if spec.policy_types.as_ref().is_none_or(|t| t.is_empty()) {
            let mut types = vec!["Ingress".to_owned()];
            if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                types.push("Egress".into());
            }
            spec.policy_types = Some(types);
        }
    }

    fn validate(&self, np: &NetworkPolicy) -> Vec<FieldError> {
        validate_spec(&np.spec.clone().unwrap_or_default(), &[])
    }

    fn validate_update(&self, new: &NetworkPolicy, old: &NetworkPolicy) -> Vec<FieldError> {
        // CIDRs already stored stay acceptable even if today's rules refuse them.
        let mut existing = Vec::new();
        let spec = old.spec.clone().unwrap_or_default();
        let peers = spec
            .ingress
            .iter()
            .flatten()
            .flat_map(|r| r.from.iter().flatten())
            .chain(
                spec.egress
                    .iter()
                    .flatten()
                    .flat_map(|r| r.to.iter().flatten()),
            );
        for block in peers.filter_map(|p| p.ip_block.as_ref()) {
            existing.push(block.cidr.clone());
            existing.extend(block.except.iter().flatten().cloned());
        }
        validate_spec(&new.spec.clone().unwrap_or_default(), &existing)
    }

    fn columns(&self) -> &'static [Column] {
        const { &[col("Pod-Selector", 0, "The pods the policy applies to.")] }
    }

    fn cells(&self, np: &NetworkPolicy) -> Vec<Value> {
        vec![selector_text(
            np.spec.as_ref().and_then(|s| s.pod_selector.as_ref()),
        )]
    }
}

/// `ValidateNetworkPolicySpec`; `existing` are CIDRs accepted without a check.
fn validate_spec(spec: &NetworkPolicySpec, existing: &[String]) -> Vec<FieldError> {
    let path = FieldPath::new("spec");
    let mut errors = Vec::new();
    if let Some(selector) = &spec.pod_selector {
        errors.extend(validate_label_selector(
            selector,
            &path.child("podSelector"),
        ));
    }
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let at = path.child("ingress").index(i);
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            errors.extend(validate_port(port, &at.child("ports").index(j)));
        }
        for (j, peer) in rule.from.iter().flatten().enumerate() {
            errors.extend(validate_peer(peer, existing, &at.child("from").index(j)));
        }
    }
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let at = path.child("egress").index(i);
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            errors.extend(validate_port(port, &at.child("ports").index(j)));
        }
        for (j, peer) in rule.to.iter().flatten().enumerate() {
            errors.extend(validate_peer(peer, existing, &at.child("to").index(j)));
        }
    }
    let types = spec.policy_types.as_deref().unwrap_or_default();
    let types_path = path.child("policyTypes");
    if types.len() > 2 {
        let quoted: Vec<String> = types.iter().map(|t| format!("{t:?}")).collect();
        let rendered = format!("&[]networking.PolicyType{{{}}}", quoted.join(", "));
        errors.push(FieldError::invalid_rendered(
            &types_path,
            &rendered,
            "may not specify more than two policyTypes",
        ));
        return errors;
    }
    for (i, t) in types.iter().enumerate() {
        if t != "Ingress" && t != "Egress" {
            errors.push(FieldError::not_supported(
                types_path.index(i),
                t.as_str(),
                &["Ingress", "Egress"],
            ));
        }
    }
    errors
}

/// `ValidateNetworkPolicyPort`: a protocol Kubernetes knows, a port by number (with an optional
/// range end) or by name.
fn validate_port(port: &NetworkPolicyPort, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(protocol) = &port.protocol
        && !["TCP", "UDP", "SCTP"].contains(&protocol.as_str())
    {
        errors.push(FieldError::not_supported(
            path.child("protocol"),
            protocol.as_str(),
            &["TCP", "UDP", "SCTP"],
        ));
    }
    let end_path = path.child("endPort");
    match (&port.port, port.end_port) {
        (Some(IntOrString::Int(number)), end) => {
            for msg in is_valid_port_num(i64::from(*number)) {
                errors.push(FieldError::invalid(path.child("port"), *number, msg));
            }
            if let Some(end) = end {
                if end < *number {
                    errors.push(FieldError::invalid(
                        &end_path,
                        end,
                        "must be greater than or equal to `port`",
                    ));
                }
                for msg in is_valid_port_num(i64::from(end)) {
                    errors.push(FieldError::invalid(&end_path, end, msg));
                }
            }
        }
        (Some(IntOrString::String(name)), end) => {
            if let Some(end) = end {
                errors.push(FieldError::invalid(
                    &end_path,
                    end,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for msg in is_valid_port_name(name) {
                errors.push(FieldError::invalid(path.child("port"), name.as_str(), msg));
            }
        }
        (None, Some(end)) => errors.push(FieldError::invalid(
            &end_path,
            end,
            "may not be specified when `port` is not specified",
        )),
        (None, None) => {}
    }
    errors
}

/// `ValidateNetworkPolicyPeer`: at least one selector or an IP block, and an IP block alone.
fn validate_peer(
    peer: &NetworkPolicyPeer,
    existing: &[String],
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut peers = 0;
    if let Some(selector) = &peer.pod_selector {
        peers += 1;
        errors.extend(validate_label_selector(
            selector,
            &path.child("podSelector"),
        ));
    }
    if let Some(selector) = &peer.namespace_selector {
        peers += 1;
        errors.extend(validate_label_selector(
            selector,
            &path.child("namespaceSelector"),
        ));
    }
    if let Some(block) = &peer.ip_block {
        peers += 1;
        errors.extend(validate_ip_block(block, existing, &path.child("ipBlock")));
    }
    if peers == 0 {
        errors.push(FieldError::required(path, "must specify a peer"));
    } else if peers > 1 && peer.ip_block.is_some() {
        errors.push(FieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
    errors
}

/// `ValidateIPBlock`: a CIDR, and exceptions strictly inside it.
fn validate_ip_block(block: &IPBlock, existing: &[String], path: &FieldPath) -> Vec<FieldError> {
    let cidr_path = path.child("cidr");
    if block.cidr.is_empty() {
        return vec![FieldError::required(&cidr_path, "")];
    }
    let check = |value: &str, at: &FieldPath| -> Vec<FieldError> {
        if existing.iter().any(|e| e == value) {
            return Vec::new();
        }
        is_valid_cidr(value)
            .into_iter()
            .map(|msg| FieldError::invalid(at, value, msg))
            .collect()
    };
    let mut errors = check(&block.cidr, &cidr_path);
    // A CIDR that does not parse at all leaves nothing to compare the exceptions with.
    if cidr_is_strict_subset(&block.cidr, &block.cidr).is_none() {
        return errors;
    }
    for (i, except) in block.except.iter().flatten().enumerate() {
        let at = path.child("except").index(i);
        errors.extend(check(except, &at));
        if cidr_is_strict_subset(except, &block.cidr) == Some(false) {
            errors.push(FieldError::invalid(
                &at,
                except.as_str(),
                "must be a strict subset of `cidr`",
            ));
        }
    }
    errors
}
