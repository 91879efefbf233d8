//! The built-in resources skiff serves: one line per kind, naming its k8s-openapi type, its
//! strategy, short names, categories and subresources. Adding a kind is adding a line here (and
//! a strategy if it needs more than the generic behaviour).

use std::sync::Arc;

use k8s_openapi::api::{
    apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
    coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
    networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as scheduling, storage::v1 as storage,
};

use super::Subresource::{Binding, Log, Scale, Status};
use super::{Registry, Strategy, Typed};

/// The generic behaviour: no defaulting, validation or printing beyond what every kind gets.
pub struct Generic;

impl<K> Strategy<K> for Generic {}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

/// Registers `$ty` with the generic strategy.
macro_rules! register {
    ($registry:ident, $ty:ty, $short:expr, $categories:expr, $subresources:expr) => {
        $registry.register(Arc::new(Typed::<$ty, _>::new(
            Generic,
            $short,
            $categories,
            $subresources,
        )))
    };
}

/// Every built-in resource.
pub fn builtin() -> Registry {
    let mut r = Registry::default();
    // core/v1
    register!(r, core::Namespace, &["ns"], NONE, &[Status]);
    register!(r, core::Pod, &["po"], ALL, &[Status, Binding, Log]);
    register!(r, core::Service, &["svc"], ALL, &[Status]);
    register!(r, core::Endpoints, &["ep"], NONE, &[]);
    register!(r, core::Node, &["no"], NONE, &[Status]);
    register!(r, core::ConfigMap, &["cm"], NONE, &[]);
    register!(r, core::Secret, NONE, NONE, &[]);
    register!(r, core::ServiceAccount, &["sa"], NONE, &[]);
    register!(r, core::PersistentVolume, &["pv"], NONE, &[Status]);
    register!(r, core::PersistentVolumeClaim, &["pvc"], NONE, &[Status]);
    register!(r, core::Event, &["ev"], NONE, &[]);
    register!(r, core::LimitRange, &["limits"], NONE, &[]);
    register!(r, core::ResourceQuota, &["quota"], NONE, &[Status]);
    register!(
        r,
        core::ReplicationController,
        &["rc"],
        ALL,
        &[Status, Scale]
    );
    // apps/v1
    register!(r, apps::Deployment, &["deploy"], ALL, &[Status, Scale]);
    register!(r, apps::ReplicaSet, &["rs"], ALL, &[Status, Scale]);
    register!(r, apps::StatefulSet, &["sts"], ALL, &[Status, Scale]);
    register!(r, apps::DaemonSet, &["ds"], ALL, &[Status]);
    register!(r, apps::ControllerRevision, NONE, NONE, &[]);
    // batch/v1
    register!(r, batch::Job, NONE, ALL, &[Status]);
    register!(r, batch::CronJob, &["cj"], ALL, &[Status]);
    // discovery.k8s.io/v1, coordination.k8s.io/v1
    register!(r, discovery::EndpointSlice, NONE, NONE, &[]);
    register!(r, coordination::Lease, NONE, NONE, &[]);
    // rbac.authorization.k8s.io/v1
    register!(r, rbac::Role, NONE, NONE, &[]);
    register!(r, rbac::ClusterRole, NONE, NONE, &[]);
    register!(r, rbac::RoleBinding, NONE, NONE, &[]);
    register!(r, rbac::ClusterRoleBinding, NONE, NONE, &[]);
    // storage.k8s.io/v1, networking.k8s.io/v1
    register!(r, storage::StorageClass, &["sc"], NONE, &[]);
    register!(r, networking::Ingress, &["ing"], NONE, &[Status]);
    register!(r, networking::IngressClass, NONE, NONE, &[]);
    register!(r, networking::NetworkPolicy, &["netpol"], NONE, &[]);
    // autoscaling/v2, policy/v1, scheduling.k8s.io/v1
    register!(
        r,
        autoscaling::HorizontalPodAutoscaler,
        &["hpa"],
        ALL,
        &[Status]
    );
    register!(r, policy::PodDisruptionBudget, &["pdb"], NONE, &[Status]);
    register!(r, scheduling::PriorityClass, &["pc"], NONE, &[]);
    r
}
