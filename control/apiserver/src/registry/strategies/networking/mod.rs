//! `networking.k8s.io/v1`, one module per resource.

mod ingressclasses;
mod ingresses;
mod networkpolicies;

pub use ingressclasses::IngressClasses;
pub use ingresses::Ingresses;
pub use networkpolicies::NetworkPolicies;
