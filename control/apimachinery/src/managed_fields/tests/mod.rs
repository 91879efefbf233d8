//! Table tests of server-side apply, on a small hand-written schema shaped like Kubernetes'
//! Deployment and ConfigMap (the generated tables are tested with the types they describe).

mod fieldpath;
mod manager;
mod typed;

use super::schema::{Atom, ListKind, Schema};

static SCALAR: Atom = Atom::Scalar;
static UNTYPED: Atom = Atom::Untyped;
static CONTAINER: Atom = Atom::Struct {
    name: "Container",
    atomic: false,
};
static PORT: Atom = Atom::Struct {
    name: "ContainerPort",
    atomic: false,
};
static ENV: Atom = Atom::Struct {
    name: "EnvVar",
    atomic: false,
};
static OWNER: Atom = Atom::Struct {
    name: "OwnerReference",
    atomic: true,
};

const fn strukt(name: &'static str) -> Atom {
    Atom::Struct {
        name,
        atomic: false,
    }
}

const STRING_MAP: Atom = Atom::Map {
    values: &SCALAR,
    atomic: false,
};

/// Deployment (`apps/v1`) and ConfigMap (`v1`), with the list and map kinds apply cares about:
/// containers (keyed by `name`), ports (keyed by `containerPort` and `protocol`), finalizers
/// (a set), args (atomic), selector (an atomic struct), nodeSelector (an atomic map), labels
/// (a granular map) and `extra` (untyped).
pub(super) struct TestSchema;

impl Schema for TestSchema {
    fn field(&self, name: &str, field: &str) -> Option<Atom> {
        Some(match (name, field) {
            ("Deployment" | "ConfigMap", "apiVersion" | "kind") => Atom::Scalar,
            ("Deployment" | "ConfigMap" | "PodTemplateSpec", "metadata") => strukt("ObjectMeta"),
            ("Deployment", "spec") => strukt("DeploymentSpec"),
            ("Deployment", "status") => strukt("DeploymentStatus"),
            ("ConfigMap", "data") => STRING_MAP,
            (
                "ObjectMeta",
                "name" | "namespace" | "uid" | "resourceVersion" | "generation"
                | "creationTimestamp",
            ) => Atom::Scalar,
            ("ObjectMeta", "labels" | "annotations") => STRING_MAP,
            ("ObjectMeta", "finalizers") => Atom::List {
                items: &SCALAR,
                kind: ListKind::Set,
            },
            ("ObjectMeta", "ownerReferences") => Atom::List {
                items: &OWNER,
                kind: ListKind::Map(&["uid"]),
            },
            ("ObjectMeta", "managedFields") => Atom::List {
                items: &UNTYPED,
                kind: ListKind::Atomic,
            },
            ("OwnerReference", "uid" | "name" | "kind") => Atom::Scalar,
            ("DeploymentSpec", "replicas" | "paused") => Atom::Scalar,
            ("DeploymentSpec", "selector") => Atom::Struct {
                name: "LabelSelector",
                atomic: true,
            },
            ("DeploymentSpec", "template") => strukt("PodTemplateSpec"),
            ("DeploymentSpec", "extra") => Atom::Untyped,
            ("DeploymentStatus", "replicas") => Atom::Scalar,
            ("LabelSelector", "matchLabels") => STRING_MAP,
            ("PodTemplateSpec", "spec") => strukt("PodSpec"),
            ("PodSpec", "containers") => Atom::List {
                items: &CONTAINER,
                kind: ListKind::Map(&["name"]),
            },
            ("PodSpec", "nodeSelector") => Atom::Map {
                values: &SCALAR,
                atomic: true,
            },
            ("Container", "name" | "image") => Atom::Scalar,
            ("Container", "args") => Atom::List {
                items: &SCALAR,
                kind: ListKind::Atomic,
            },
            ("Container", "ports") => Atom::List {
                items: &PORT,
                kind: ListKind::Map(&["containerPort", "protocol"]),
            },
            ("Container", "env") => Atom::List {
                items: &ENV,
                kind: ListKind::Map(&["name"]),
            },
            ("ContainerPort", "containerPort" | "protocol" | "name") => Atom::Scalar,
            ("EnvVar", "name" | "value") => Atom::Scalar,
            _ => return None,
        })
    }

    fn root(&self, api_version: &str, kind: &str) -> Option<Atom> {
        match (api_version, kind) {
            ("apps/v1", "Deployment") => Some(strukt("Deployment")),
            ("v1", "ConfigMap") => Some(strukt("ConfigMap")),
            _ => None,
        }
    }

    fn key_default(&self, name: &str, field: &str) -> Option<&'static str> {
        (name, field)
            .eq(&("ContainerPort", "protocol"))
            .then_some("TCP")
    }
}

/// The root type of a Deployment in [`TestSchema`].
pub(super) fn deployment() -> super::typed::Typed<'static> {
    super::typed::Typed::root(&TestSchema, "apps/v1", "Deployment")
}
