//! The built-in resources skiff serves: one line per kind, naming its k8s-openapi type, its
//! strategy, short names, categories and subresources. Adding a kind is adding a line here (and
//! a strategy if it needs more than the generic behaviour).

use std::sync::Arc;

use k8s_openapi::api::admissionregistration::v1 as admissionregistration;
use k8s_openapi::api::{
    apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
    certificates::v1 as certificates, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, events::v1 as events, networking::v1 as networking,
    policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;

use super::Subresource::{
    Approval, Attach, Binding, EphemeralContainers, Exec, Log, PortForward, Proxy, Scale, Status,
};
use super::strategies::*;
use super::{Registry, Typed};

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

/// Registers `$ty` served with `$strategy`.
macro_rules! register {
    ($registry:ident, $ty:ty, $strategy:expr, $short:expr, $categories:expr, $subresources:expr) => {
        $registry.register(Arc::new(Typed::<$ty, _>::new(
            $strategy,
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
    register!(r, core::Namespace, Namespaces, &["ns"], NONE, &[Status]);
    register!(
        r,
        core::Pod,
        Pods,
        &["po"],
        ALL,
        &[
            Status,
            Binding,
            Log,
            Exec,
            Attach,
            PortForward,
            EphemeralContainers
        ]
    );
    register!(r, core::Service, Services, &["svc"], ALL, &[Status]);
    register!(r, core::Endpoints, Endpoints, &["ep"], NONE, &[]);
    register!(r, core::Node, Nodes, &["no"], NONE, &[Status, Proxy]);
    register!(r, core::ConfigMap, ConfigMaps, &["cm"], NONE, &[]);
    register!(r, core::Secret, Secrets, NONE, NONE, &[]);
    register!(r, core::ServiceAccount, ServiceAccounts, &["sa"], NONE, &[]);
    register!(
        r,
        core::PersistentVolume,
        PersistentVolumes,
        &["pv"],
        NONE,
        &[Status]
    );
    register!(
        r,
        core::PersistentVolumeClaim,
        PersistentVolumeClaims,
        &["pvc"],
        NONE,
        &[Status]
    );
    register!(r, core::Event, Events, &["ev"], NONE, &[]);
    register!(r, core::LimitRange, LimitRanges, &["limits"], NONE, &[]);
    register!(
        r,
        core::ResourceQuota,
        ResourceQuotas,
        &["quota"],
        NONE,
        &[Status]
    );
    register!(
        r,
        core::ReplicationController,
        ReplicationControllers,
        &["rc"],
        ALL,
        &[Status, Scale]
    );
    // apps/v1
    register!(
        r,
        apps::Deployment,
        Deployments,
        &["deploy"],
        ALL,
        &[Status, Scale]
    );
    register!(
        r,
        apps::ReplicaSet,
        ReplicaSets,
        &["rs"],
        ALL,
        &[Status, Scale]
    );
    register!(
        r,
        apps::StatefulSet,
        StatefulSets,
        &["sts"],
        ALL,
        &[Status, Scale]
    );
    register!(r, apps::DaemonSet, DaemonSets, &["ds"], ALL, &[Status]);
    register!(
        r,
        apps::ControllerRevision,
        ControllerRevisions,
        NONE,
        NONE,
        &[]
    );
    // batch/v1
    register!(r, batch::Job, Jobs, NONE, ALL, &[Status]);
    register!(r, batch::CronJob, CronJobs, &["cj"], ALL, &[Status]);
    // discovery.k8s.io/v1, coordination.k8s.io/v1
    register!(r, discovery::EndpointSlice, EndpointSlices, NONE, NONE, &[]);
    register!(r, coordination::Lease, Leases, NONE, NONE, &[]);
    // events.k8s.io/v1: the newer Event API (same objects as core/v1 events in Kubernetes).
    register!(r, events::Event, Generic, &["ev"], NONE, &[]);
    // rbac.authorization.k8s.io/v1
    register!(r, rbac::Role, Roles, NONE, NONE, &[]);
    register!(r, rbac::ClusterRole, Roles, NONE, NONE, &[]);
    register!(r, rbac::RoleBinding, Bindings, NONE, NONE, &[]);
    register!(r, rbac::ClusterRoleBinding, Bindings, NONE, NONE, &[]);
    // storage.k8s.io/v1, networking.k8s.io/v1
    register!(r, storage::StorageClass, StorageClasses, &["sc"], NONE, &[]);
    register!(r, networking::Ingress, Ingresses, &["ing"], NONE, &[Status]);
    register!(r, networking::IngressClass, IngressClasses, NONE, NONE, &[]);
    register!(
        r,
        networking::NetworkPolicy,
        NetworkPolicies,
        &["netpol"],
        NONE,
        &[]
    );
    // admissionregistration.k8s.io/v1: stored and validated; calling them is admission's job.
    register!(
        r,
        admissionregistration::ValidatingWebhookConfiguration,
        ValidatingWebhookConfigurations,
        NONE,
        &["api-extensions"],
        &[]
    );
    register!(
        r,
        admissionregistration::MutatingWebhookConfiguration,
        MutatingWebhookConfigurations,
        NONE,
        &["api-extensions"],
        &[]
    );
    // autoscaling/v2, policy/v1, scheduling.k8s.io/v1
    register!(
        r,
        autoscaling::HorizontalPodAutoscaler,
        HorizontalPodAutoscalers,
        &["hpa"],
        ALL,
        &[Status]
    );
    register!(
        r,
        policy::PodDisruptionBudget,
        PodDisruptionBudgets,
        &["pdb"],
        NONE,
        &[Status]
    );
    register!(
        r,
        scheduling::PriorityClass,
        PriorityClasses,
        &["pc"],
        NONE,
        &[]
    );
    // certificates.k8s.io/v1, apiregistration.k8s.io/v1
    register!(
        r,
        certificates::CertificateSigningRequest,
        CertificateSigningRequests,
        &["csr"],
        NONE,
        &[Status, Approval]
    );
    register!(
        r,
        apiregistration::APIService,
        APIServices,
        NONE,
        NONE,
        &[Status]
    );
    r
}
