//! The core (`v1`) group, one module per resource.

mod configmaps;
mod endpoints;
mod events;
mod limitranges;
mod namespaces;
mod nodes;
mod persistentvolumeclaims;
mod persistentvolumes;
mod pods;
mod replicationcontrollers;
mod resourcequotas;
mod secrets;
mod serviceaccounts;
mod services;

pub use configmaps::ConfigMaps;
pub use endpoints::Endpoints;
pub use events::Events;
pub use limitranges::LimitRanges;
pub use namespaces::Namespaces;
pub use nodes::Nodes;
pub use persistentvolumeclaims::PersistentVolumeClaims;
pub use persistentvolumes::PersistentVolumes;
pub use pods::{Pods, default_pod_spec};
pub use replicationcontrollers::ReplicationControllers;
pub use resourcequotas::ResourceQuotas;
pub use secrets::Secrets;
pub use serviceaccounts::ServiceAccounts;
pub use services::Services;
