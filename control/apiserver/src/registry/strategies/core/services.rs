//! Services: defaults, validation of the spec, the TYPE / CLUSTER-IP / EXTERNAL-IP / PORT(S)
//! columns, and DNS-1035 names. A service's ClusterIP and NodePort allocation needs storage: the
//! strategy only says that services allocate, the handlers claim from `crate::allocator`.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use skiff_apimachinery::validation;
use skiff_apimachinery::validation::{FieldError, FieldPath, is_valid_port_num};

use crate::registry::strategies::load_balancer_addresses;
use crate::registry::strategies::{col, or_none};
use crate::registry::{Column, NameRule, Strategy};

/// Services.
pub struct Services;

const SERVICE_TYPES: [&str; 4] = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
const PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];

const SERVICE_COLUMNS: &[Column] = &[
    col("Type", 0, "The type of the service."),
    col("Cluster-IP", 0, "The cluster IP of the service."),
    col("External-IP", 0, "The external IPs of the service."),
    col("Port(s)", 0, "The ports the service exposes."),
    col("Selector", 1, "The label selector of the service's pods."),
];

impl Strategy<Service> for Services {
    /// Kubernetes' `ReturnDeletedObject`.
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn name_rule(&self) -> NameRule {
        validation::is_dns1035_label
    }

    fn allocates(&self) -> bool {
        true
    }

    fn default(&self, svc: &mut Service) {
        let spec = svc.spec.get_or_insert_with(Default::default);
        let kind = spec.type_.get_or_insert_with(|| "ClusterIP".into()).clone();
        spec.session_affinity.get_or_insert_with(|| "None".into());
        if kind != "ExternalName" {
            spec.internal_traffic_policy
                .get_or_insert_with(|| "Cluster".into());
        }
        if kind == "NodePort" || kind == "LoadBalancer" {
            spec.external_traffic_policy
                .get_or_insert_with(|| "Cluster".into());
        }
        if kind == "LoadBalancer" {
            spec.allocate_load_balancer_node_ports.get_or_insert(true);
        }
        for port in spec.ports.iter_mut().flatten() {
            port.protocol.get_or_insert_with(|| "TCP".into());
            port.target_port.get_or_insert(IntOrString::Int(port.port));
        }
    }

    fn validate(&self, svc: &Service) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let spec = svc.spec.clone().unwrap_or_default();
        let path = FieldPath::new("spec");
        let kind = spec.type_.clone().unwrap_or_default();
        if !SERVICE_TYPES.contains(&kind.as_str()) {
            errors.push(FieldError::not_supported(
                path.child("type"),
                kind.clone(),
                &SERVICE_TYPES,
            ));
        }
        let ports = spec.ports.clone().unwrap_or_default();
        if ports.is_empty() && kind != "ExternalName" && spec.cluster_ip.as_deref() != Some("None")
        {
            errors.push(FieldError::required(path.child("ports"), ""));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, port) in ports.iter().enumerate() {
            let at = path.child("ports").index(i);
            let name = port.name.clone().unwrap_or_default();
            if ports.len() > 1 && name.is_empty() {
                errors.push(FieldError::required(at.child("name"), ""));
            } else if !name.is_empty() && !names.insert(name.clone()) {
                errors.push(FieldError::duplicate(at.child("name"), name));
            }
            for problem in is_valid_port_num(i64::from(port.port)) {
                errors.push(FieldError::invalid(at.child("port"), port.port, problem));
            }
            let protocol = port.protocol.clone().unwrap_or_default();
            if !PROTOCOLS.contains(&protocol.as_str()) {
                errors.push(FieldError::not_supported(
                    at.child("protocol"),
                    protocol,
                    &PROTOCOLS,
                ));
            }
        }
        // One NodePort may serve several entries of different protocols (a port's TCP and
        // UDP), never two of the same protocol.
        let mut node_ports = std::collections::BTreeSet::new();
        for (i, port) in ports.iter().enumerate() {
            let Some(node_port) = port.node_port.filter(|&p| p != 0) else {
                continue;
            };
            if !node_ports.insert((node_port, port.protocol.clone().unwrap_or_default())) {
                let at = path.child("ports").index(i).child("nodePort");
                errors.push(FieldError::duplicate(at, node_port));
            }
        }
        if kind == "ExternalName" && spec.external_name.as_deref().unwrap_or("").is_empty() {
            errors.push(FieldError::required(path.child("externalName"), ""));
        }
        errors
    }

    fn columns(&self) -> &'static [Column] {
        SERVICE_COLUMNS
    }

    fn cells(&self, svc: &Service) -> Vec<Value> {
        let spec = svc.spec.clone().unwrap_or_default();
        let kind = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
        let mut external: Vec<String> = spec.external_ips.clone().unwrap_or_default();
        let lb_ingress = load_balancer_addresses!(svc.status);
        let external = match kind.as_str() {
            "ExternalName" => spec.external_name.clone().unwrap_or_default(),
            "LoadBalancer" if lb_ingress.is_empty() && external.is_empty() => "<pending>".into(),
            "LoadBalancer" => {
                external.extend(lb_ingress);
                external.join(",")
            }
            _ => external.join(","),
        };
        let ports: Vec<String> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| {
                let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
                match p.node_port {
                    Some(node_port) => format!("{}:{node_port}/{protocol}", p.port),
                    None => format!("{}/{protocol}", p.port),
                }
            })
            .collect();
        let selector = spec
            .selector
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        vec![
            json!(kind),
            or_none(spec.cluster_ip.clone().unwrap_or_default()),
            or_none(external),
            or_none(ports.join(",")),
            or_none(selector),
        ]
    }
}
