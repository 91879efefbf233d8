//! The types of every built-in kind skiff serves, for server-side apply: [`BuiltinSchema`]
//! answers [`Schema`] from a table generated from kubectl's Go API types
//! (`builtin_table.rs`; `tools/gen_builtin_schema.py` and `tools/README.md` say how).
//!
//! Types are named as Kubernetes' OpenAPI names them (`io.k8s.api.core.v1.PodSpec`,
//! `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`), which is also what Kubernetes' own
//! managed-fields type converter calls them. Besides what field ownership needs, every field
//! carries its `patchStrategy` / `patchMergeKey` struct tags ([`PatchMeta`]): a strategic merge
//! patch follows those tags, which can differ from the list markers server-side apply follows
//! (container ports merge by `containerPort` alone, but are owned by `containerPort` and
//! `protocol`). [`BuiltinSchema`] therefore also implements [`PatchSchema`], rooted at the
//! same type names.

use super::builtin_table::{self, KEY_DEFAULTS, ROOTS, TYPES};
use super::schema::{Atom, Schema};
use crate::patch::{FieldInfo, ListStrategy, PatchSchema};

/// The Kubernetes version whose API types the table describes (kubectl's).
pub const KUBERNETES_VERSION: &str = builtin_table::KUBERNETES_VERSION;

/// One struct type of the table.
#[derive(Debug)]
pub struct TypeDef {
    /// The OpenAPI name (`io.k8s.api.core.v1.Container`).
    pub name: &'static str,
    /// The fields by JSON name, sorted; embedded Go structs are flattened into their parent,
    /// as in JSON.
    pub fields: &'static [Field],
}

/// One field of a [`TypeDef`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The JSON name.
    pub name: &'static str,
    /// Its type for field ownership.
    pub atom: Atom,
    /// Its strategic-merge-patch tags.
    pub patch: PatchMeta,
}

/// A field's `patchStrategy` and `patchMergeKey` struct tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchMeta {
    /// `patchStrategy` includes `merge`.
    pub merge: bool,
    /// `patchStrategy` includes `retainKeys`.
    pub retain_keys: bool,
    /// `patchMergeKey`.
    pub merge_key: Option<&'static str>,
}

/// A field without patch tags.
pub const NO_PATCH: PatchMeta = PatchMeta {
    merge: false,
    retain_keys: false,
    merge_key: None,
};

/// A [`Field`]; short, because the generated table calls it for every field.
pub(super) const fn field(name: &'static str, atom: Atom, patch: PatchMeta) -> Field {
    Field { name, atom, patch }
}

/// The built-in kinds' schema.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinSchema;

impl BuiltinSchema {
    /// Every struct type, sorted by name.
    pub fn types() -> &'static [TypeDef] {
        TYPES
    }

    /// Every served kind as `(apiVersion, kind, type name)`, sorted.
    pub fn roots() -> &'static [(&'static str, &'static str, &'static str)] {
        ROOTS
    }

    /// The struct type named `name`.
    pub fn type_def(name: &str) -> Option<&'static TypeDef> {
        // Hashed rather than searched: the names share long prefixes (`io.k8s.api.core.v1.`),
        // which makes every comparison of a binary search slow, and every field of every
        // write is looked up here.
        static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&'static str, usize>> =
            std::sync::OnceLock::new();
        let by_name =
            BY_NAME.get_or_init(|| TYPES.iter().enumerate().map(|(i, t)| (t.name, i)).collect());
        by_name.get(name).map(|&i| &TYPES[i])
    }

    /// Field `field` of the struct type named `type_name`.
    pub fn field_def(type_name: &str, field: &str) -> Option<&'static Field> {
        let fields = Self::type_def(type_name)?.fields;
        fields
            .binary_search_by(|f| f.name.cmp(field))
            .ok()
            .map(|i| &fields[i])
    }

    /// The type name of the top-level object of `kind` in `api_version`.
    pub fn root_type(api_version: &str, kind: &str) -> Option<&'static str> {
        ROOTS
            .binary_search_by(|(v, k, _)| (*v, *k).cmp(&(api_version, kind)))
            .ok()
            .map(|i| ROOTS[i].2)
    }

    /// Every list map key with a default as `(type name, field, default)`, sorted.
    pub fn key_defaults() -> &'static [(&'static str, &'static str, &'static str)] {
        KEY_DEFAULTS
    }
}

impl Schema for BuiltinSchema {
    fn field(&self, name: &str, field: &str) -> Option<Atom> {
        Self::field_def(name, field).map(|f| f.atom)
    }

    fn root(&self, api_version: &str, kind: &str) -> Option<Atom> {
        Self::root_type(api_version, kind).map(|name| Atom::Struct {
            name,
            atomic: false,
        })
    }

    fn key_default(&self, name: &str, field: &str) -> Option<&'static str> {
        KEY_DEFAULTS
            .binary_search_by(|(t, f, _)| (*t, *f).cmp(&(name, field)))
            .ok()
            .map(|i| KEY_DEFAULTS[i].2)
    }
}

/// The strategic merge patch's view: the struct tags only, as Kubernetes' `strategicpatch`
/// reads them from the Go types. Roots are [`BuiltinSchema::root_type`]'s names.
impl PatchSchema for BuiltinSchema {
    fn field(&self, type_name: &str, field: &str) -> Option<FieldInfo> {
        let f = Self::field_def(type_name, field)?;
        match f.atom {
            Atom::Struct { name, .. } => Some(FieldInfo::object(name)),
            Atom::List { items, .. } => {
                let list = match f.patch {
                    PatchMeta {
                        merge: true,
                        merge_key: Some(key),
                        ..
                    } => ListStrategy::MergeByKey(key),
                    PatchMeta { merge: true, .. } => ListStrategy::MergePrimitives,
                    _ => ListStrategy::Replace,
                };
                let type_name = match items {
                    Atom::Struct { name, .. } => Some(*name),
                    _ => None,
                };
                Some(FieldInfo {
                    type_name,
                    list: Some(list),
                })
            }
            // Maps merge key by key without a schema; scalars have no inside.
            Atom::Map { .. } | Atom::Scalar | Atom::Untyped => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::managed_fields::schema::ListKind;
    use crate::patch;

    /// The type at `path` below the root of `kind`: field names, `[]` for a list's items and
    /// `{}` for a map's values.
    fn at(api_version: &str, kind: &str, path: &str) -> Atom {
        let mut atom = Schema::root(&BuiltinSchema, api_version, kind)
            .unwrap_or_else(|| panic!("no root for {api_version} {kind}"));
        for step in path.split('.') {
            atom = match (step, atom) {
                ("[]", Atom::List { items, .. }) => *items,
                ("{}", Atom::Map { values, .. }) => *values,
                (field, Atom::Struct { name, .. }) => Schema::field(&BuiltinSchema, name, field)
                    .unwrap_or_else(|| panic!("{kind} {path}: {name} has no field {field}")),
                (step, other) => panic!("{kind} {path}: cannot take {step} of {other:?}"),
            };
        }
        atom
    }

    fn list_kind(atom: Atom) -> ListKind {
        match atom {
            Atom::List { kind, .. } => kind,
            other => panic!("not a list: {other:?}"),
        }
    }

    fn struct_of(name: &'static str, atomic: bool) -> Atom {
        Atom::Struct { name, atomic }
    }

    const POD: (&str, &str) = ("v1", "Pod");
    const DEPLOYMENT: (&str, &str) = ("apps/v1", "Deployment");
    const SERVICE: (&str, &str) = ("v1", "Service");

    /// List kinds as Kubernetes declares them (its types.go markers, as its OpenAPI and
    /// client-go's applyconfigurations schema carry them).
    #[test]
    fn lists_are_identified_as_in_kubernetes() {
        let cases: &[((&str, &str), &str, ListKind)] = &[
            (POD, "spec.containers", ListKind::Map(&["name"])),
            (POD, "spec.initContainers", ListKind::Map(&["name"])),
            (
                POD,
                "spec.containers.[].ports",
                ListKind::Map(&["containerPort", "protocol"]),
            ),
            (
                POD,
                "spec.ephemeralContainers.[].ports",
                ListKind::Map(&["containerPort", "protocol"]),
            ),
            (
                DEPLOYMENT,
                "spec.template.spec.containers.[].env",
                ListKind::Map(&["name"]),
            ),
            (
                POD,
                "spec.containers.[].volumeMounts",
                ListKind::Map(&["mountPath"]),
            ),
            (POD, "spec.containers.[].command", ListKind::Atomic),
            (POD, "spec.volumes", ListKind::Map(&["name"])),
            (POD, "spec.tolerations", ListKind::Atomic),
            (POD, "spec.readinessGates", ListKind::Atomic),
            (
                POD,
                "spec.topologySpreadConstraints",
                ListKind::Map(&["topologyKey", "whenUnsatisfiable"]),
            ),
            (POD, "status.conditions", ListKind::Map(&["type"])),
            (POD, "status.podIPs", ListKind::Map(&["ip"])),
            // patchMergeKey=ip, but +listType=atomic.
            (POD, "status.hostIPs", ListKind::Atomic),
            (POD, "status.containerStatuses", ListKind::Atomic),
            (SERVICE, "spec.ports", ListKind::Map(&["port", "protocol"])),
            (SERVICE, "spec.clusterIPs", ListKind::Atomic),
            (POD, "metadata.finalizers", ListKind::Set),
            (POD, "metadata.ownerReferences", ListKind::Map(&["uid"])),
            (POD, "metadata.managedFields", ListKind::Atomic),
            (
                POD,
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
                ListKind::Atomic,
            ),
            (
                DEPLOYMENT,
                "spec.selector.matchExpressions",
                ListKind::Atomic,
            ),
            (DEPLOYMENT, "status.conditions", ListKind::Map(&["type"])),
            // patchMergeKey=type, but +listType=atomic.
            (("batch/v1", "Job"), "status.conditions", ListKind::Atomic),
            (
                ("batch/v1", "Job"),
                "status.uncountedTerminatedPods.succeeded",
                ListKind::Set,
            ),
            (
                ("apps/v1", "StatefulSet"),
                "spec.volumeClaimTemplates",
                ListKind::Atomic,
            ),
            (("v1", "Node"), "spec.podCIDRs", ListKind::Set),
            (("v1", "Node"), "spec.taints", ListKind::Atomic),
            (("v1", "Node"), "status.addresses", ListKind::Map(&["type"])),
            (("v1", "Endpoints"), "subsets", ListKind::Atomic),
            (
                ("discovery.k8s.io/v1", "EndpointSlice"),
                "endpoints.[].addresses",
                ListKind::Set,
            ),
            (
                ("rbac.authorization.k8s.io/v1", "RoleBinding"),
                "subjects",
                ListKind::Atomic,
            ),
            (
                ("v1", "ServiceAccount"),
                "secrets",
                ListKind::Map(&["name"]),
            ),
            (
                ("v1", "ServiceAccount"),
                "imagePullSecrets",
                ListKind::Atomic,
            ),
            (
                ("certificates.k8s.io/v1", "CertificateSigningRequest"),
                "status.conditions",
                ListKind::Map(&["type"]),
            ),
        ];
        for ((api_version, kind), path, want) in cases {
            assert_eq!(
                list_kind(at(api_version, kind, path)),
                *want,
                "{kind} {path}"
            );
        }
    }

    #[test]
    fn maps_are_granular_unless_marked_atomic() {
        let cases: &[((&str, &str), &str, bool)] = &[
            (POD, "metadata.labels", false),
            (POD, "metadata.annotations", false),
            (SERVICE, "spec.selector", true),
            (POD, "spec.nodeSelector", true),
            (("v1", "ReplicationController"), "spec.selector", true),
            (DEPLOYMENT, "spec.selector.matchLabels", false),
            (POD, "spec.containers.[].resources.limits", false),
            (("v1", "ConfigMap"), "data", false),
        ];
        for ((api_version, kind), path, want) in cases {
            match at(api_version, kind, path) {
                Atom::Map { atomic, .. } => assert_eq!(atomic, *want, "{kind} {path}"),
                other => panic!("{kind} {path}: not a map: {other:?}"),
            }
        }
    }

    #[test]
    fn structs_marked_atomic_are_owned_whole() {
        let cases: &[((&str, &str), &str, Atom)] = &[
            (
                DEPLOYMENT,
                "spec.selector",
                struct_of("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", true),
            ),
            (
                POD,
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution",
                struct_of("io.k8s.api.core.v1.NodeSelector", true),
            ),
            (
                POD,
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.[]",
                struct_of("io.k8s.api.core.v1.NodeSelectorTerm", true),
            ),
            (
                POD,
                "metadata.ownerReferences.[]",
                struct_of("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference", true),
            ),
            (
                POD,
                "spec.containers.[].env.[].valueFrom.secretKeyRef",
                struct_of("io.k8s.api.core.v1.SecretKeySelector", true),
            ),
            (
                POD,
                "spec.imagePullSecrets.[]",
                struct_of("io.k8s.api.core.v1.LocalObjectReference", true),
            ),
            (
                ("v1", "Event"),
                "involvedObject",
                struct_of("io.k8s.api.core.v1.ObjectReference", true),
            ),
            // +structType=granular on the field overrides the type's marker.
            (
                ("v1", "PersistentVolume"),
                "spec.claimRef",
                struct_of("io.k8s.api.core.v1.ObjectReference", false),
            ),
            (
                ("rbac.authorization.k8s.io/v1", "RoleBinding"),
                "roleRef",
                struct_of("io.k8s.api.rbac.v1.RoleRef", true),
            ),
            (POD, "spec", struct_of("io.k8s.api.core.v1.PodSpec", false)),
            (
                POD,
                "spec.containers.[]",
                struct_of("io.k8s.api.core.v1.Container", false),
            ),
        ];
        for ((api_version, kind), path, want) in cases {
            assert_eq!(at(api_version, kind, path), *want, "{kind} {path}");
        }
    }

    #[test]
    fn special_types_are_scalars_or_untyped() {
        let cases: &[((&str, &str), &str, Atom)] = &[
            (POD, "metadata.creationTimestamp", Atom::Scalar),
            (POD, "spec.containers.[].resources.limits.{}", Atom::Scalar),
            (SERVICE, "spec.ports.[].targetPort", Atom::Scalar),
            (
                ("coordination.k8s.io/v1", "Lease"),
                "spec.renewTime",
                Atom::Scalar,
            ),
            (POD, "metadata.managedFields.[].fieldsV1", Atom::Scalar),
            (("v1", "Secret"), "data.{}", Atom::Scalar),
            (("apps/v1", "ControllerRevision"), "data", Atom::Untyped),
        ];
        for ((api_version, kind), path, want) in cases {
            assert_eq!(at(api_version, kind, path), *want, "{kind} {path}");
        }
    }

    #[test]
    fn unknown_kinds_types_and_fields_are_none() {
        assert_eq!(BuiltinSchema.root("v1", "Deployment"), None);
        assert_eq!(BuiltinSchema.root("example.com/v1", "Widget"), None);
        assert_eq!(
            Schema::field(&BuiltinSchema, "io.k8s.api.core.v1.PodSpec", "noSuchField"),
            None
        );
        assert_eq!(Schema::field(&BuiltinSchema, "Widget", "spec"), None);
    }

    /// Kinds the apiserver registers (its `kinds.rs`, read here as text so that a kind added
    /// there without regenerating the table fails this test).
    fn registered_kinds() -> Vec<(String, String)> {
        let src = include_str!("../../../apiserver/src/registry/kinds.rs");
        // Every `use k8s_openapi::...;` import: the braced `api::{...}` list and single ones
        // (`api::admissionregistration::v1 as ...`, `kube_aggregator::...::v1 as ...`).
        let uses: Vec<&str> = src
            .split("use k8s_openapi::")
            .skip(1)
            .map(|rest| &rest[..rest.find(';').expect("end of the import")])
            .collect();
        let version_of = |alias: &str| {
            uses.iter()
                .flat_map(|u| u.split([',', '{', '}']))
                .map(str::trim)
                .find_map(|item| {
                    let (path, name) = item.split_once(" as ")?;
                    (name.trim() == alias).then(|| path.rsplit("::").next().unwrap().to_owned())
                })
                .unwrap_or_else(|| panic!("kinds.rs: no import named {alias}"))
        };
        let mut kinds = Vec::new();
        for chunk in src.split("register!(").skip(1) {
            let Some(ty) = chunk.split(',').nth(1).map(str::trim) else {
                continue;
            };
            let Some((alias, kind)) = ty.split_once("::") else {
                continue;
            };
            kinds.push((version_of(alias), kind.to_owned()));
        }
        assert!(kinds.len() > 30, "kinds.rs parsed to only {kinds:?}");
        kinds
    }

    #[test]
    fn every_served_kind_has_a_root() {
        for (version, kind) in registered_kinds() {
            let found = BuiltinSchema::roots().iter().any(|(v, k, _)| {
                *k == kind && (*v == version || v.ends_with(&format!("/{version}")))
            });
            assert!(found, "no root for {kind} ({version}) of kinds.rs");
        }
        for kind in patch::BuiltinSchema::KINDS {
            assert!(
                BuiltinSchema::roots().iter().any(|(_, k, _)| k == kind),
                "no root for {kind} of patch.rs"
            );
        }
        for (api_version, kind, name) in BuiltinSchema::roots() {
            for field in ["apiVersion", "kind", "metadata"] {
                assert!(
                    BuiltinSchema::field_def(name, field).is_some(),
                    "{api_version} {kind} has no {field}"
                );
            }
        }
    }

    /// Calls `visit` with every struct type name inside `atom`.
    fn struct_names(atom: &Atom, visit: &mut impl FnMut(&'static str)) {
        match atom {
            Atom::Struct { name, .. } => visit(name),
            Atom::List { items, .. } => struct_names(items, visit),
            Atom::Map { values, .. } => struct_names(values, visit),
            Atom::Scalar | Atom::Untyped => {}
        }
    }

    #[test]
    fn every_named_type_is_defined_and_reachable_from_a_root() {
        for t in BuiltinSchema::types() {
            for f in t.fields {
                struct_names(&f.atom, &mut |name| {
                    assert!(
                        BuiltinSchema::type_def(name).is_some(),
                        "{}.{} names undefined type {name}",
                        t.name,
                        f.name
                    );
                });
            }
        }
        // Walk from the roots with a visited set: recursive types (a type reaching itself)
        // terminate, and every type resolves on the way.
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = BuiltinSchema::roots().iter().map(|r| r.2).collect();
        while let Some(name) = stack.pop() {
            if !seen.insert(name) {
                continue;
            }
            let t = BuiltinSchema::type_def(name).unwrap_or_else(|| panic!("{name} unresolved"));
            for f in t.fields {
                struct_names(&f.atom, &mut |n| stack.push(n));
            }
        }
        let all: BTreeSet<&str> = BuiltinSchema::types().iter().map(|t| t.name).collect();
        assert_eq!(seen, all, "types no served kind reaches");
    }

    #[test]
    fn tables_are_sorted_for_binary_search() {
        for pair in BuiltinSchema::types().windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} !< {}",
                pair[0].name,
                pair[1].name
            );
        }
        for t in BuiltinSchema::types() {
            for pair in t.fields.windows(2) {
                assert!(
                    pair[0].name < pair[1].name,
                    "{}: {} !< {}",
                    t.name,
                    pair[0].name,
                    pair[1].name
                );
            }
        }
        for pair in BuiltinSchema::roots().windows(2) {
            assert!((pair[0].0, pair[0].1) < (pair[1].0, pair[1].1), "{pair:?}");
        }
    }

    #[test]
    fn list_map_keys_are_scalar_fields_and_sets_hold_scalars() {
        for t in BuiltinSchema::types() {
            for f in t.fields {
                let Atom::List { items, kind } = f.atom else {
                    continue;
                };
                match kind {
                    ListKind::Map(keys) => {
                        let Atom::Struct { name, .. } = items else {
                            panic!("{}.{}: a list map of {items:?}", t.name, f.name);
                        };
                        for key in keys {
                            assert_eq!(
                                Schema::field(&BuiltinSchema, name, key),
                                Some(Atom::Scalar),
                                "{}.{}: key {key}",
                                t.name,
                                f.name
                            );
                        }
                    }
                    ListKind::Set => {
                        assert_eq!(*items, Atom::Scalar, "{}.{}", t.name, f.name)
                    }
                    ListKind::Atomic => {}
                }
            }
        }
    }

    /// Strategic merge patch keeps to the struct tags where server-side apply follows list
    /// markers.
    #[test]
    fn patch_schema_follows_struct_tags() {
        let container = "io.k8s.api.core.v1.Container";
        let ports = PatchSchema::field(&BuiltinSchema, container, "ports").unwrap();
        assert_eq!(ports.list, Some(ListStrategy::MergeByKey("containerPort")));
        assert_eq!(ports.type_name, Some("io.k8s.api.core.v1.ContainerPort"));
        let pod_status = "io.k8s.api.core.v1.PodStatus";
        let host_ips = PatchSchema::field(&BuiltinSchema, pod_status, "hostIPs").unwrap();
        assert_eq!(host_ips.list, Some(ListStrategy::MergeByKey("ip")));
        let meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
        let finalizers = PatchSchema::field(&BuiltinSchema, meta, "finalizers").unwrap();
        assert_eq!(finalizers.list, Some(ListStrategy::MergePrimitives));
        let pod_spec = "io.k8s.api.core.v1.PodSpec";
        let tolerations = PatchSchema::field(&BuiltinSchema, pod_spec, "tolerations").unwrap();
        assert_eq!(tolerations.list, Some(ListStrategy::Replace));
        let volumes = BuiltinSchema::field_def(pod_spec, "volumes").unwrap();
        assert_eq!(
            volumes.patch,
            PatchMeta {
                merge: true,
                retain_keys: true,
                merge_key: Some("name")
            }
        );
        assert_eq!(PatchSchema::field(&BuiltinSchema, meta, "labels"), None);
        // The patch follows the same types: merged by key through this schema.
        let doc = serde_json::json!({"spec": {"containers": [
            {"name": "a", "image": "x", "ports": [{"containerPort": 80, "protocol": "TCP"}]}
        ]}});
        let p = serde_json::json!({"spec": {"containers": [
            {"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}
        ]}});
        let root = BuiltinSchema::root_type("v1", "Pod").unwrap();
        let out = patch::strategic_merge_patch(&doc, &p, &BuiltinSchema, root).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            serde_json::json!([{"name": "a", "image": "x", "ports": [
                {"containerPort": 80, "protocol": "TCP", "name": "http"}
            ]}])
        );
    }

    /// What walking every kind patch.rs knows, field by field, finds: patch.rs's answers
    /// against the struct tags' (`mismatches`), and lists the tags merge that patch.rs does not
    /// know (`gaps`, including those below a field patch.rs gives no type for).
    struct PatchComparison {
        compared: usize,
        mismatches: Vec<String>,
        gaps: BTreeSet<String>,
    }

    fn compare_with_patch_rs() -> PatchComparison {
        let mut out = PatchComparison {
            compared: 0,
            mismatches: Vec::new(),
            gaps: BTreeSet::new(),
        };
        for (api_version, kind, root) in BuiltinSchema::roots() {
            // patch.rs names roots by kind; the core and events.k8s.io Events share one.
            if !patch::BuiltinSchema::knows(kind) || (*kind == "Event" && *api_version != "v1") {
                continue;
            }
            let mut seen = BTreeSet::new();
            // (my type, patch.rs's type for it if its table reaches it, path)
            let mut stack: Vec<(&str, Option<&str>, String)> =
                vec![(root, Some(kind), kind.to_string())];
            while let Some((mine, theirs, path)) = stack.pop() {
                if !seen.insert((mine, theirs)) {
                    continue;
                }
                for f in BuiltinSchema::type_def(mine).unwrap().fields {
                    let here = format!("{path}.{}", f.name);
                    let me = PatchSchema::field(&BuiltinSchema, mine, f.name);
                    let them =
                        theirs.and_then(|t| PatchSchema::field(&patch::BuiltinSchema, t, f.name));
                    let my_list = me.and_then(|m| m.list);
                    match them {
                        Some(them) => {
                            out.compared += 1;
                            // patch.rs leaves `list` unset for lists it replaces.
                            let is_list = matches!(f.atom, Atom::List { .. });
                            let their_list = them.list.or(is_list.then_some(ListStrategy::Replace));
                            if their_list != my_list {
                                out.mismatches.push(format!(
                                    "{here} ({}.{}): patch.rs {their_list:?}, struct tags {my_list:?}",
                                    theirs.unwrap(),
                                    f.name
                                ));
                            }
                        }
                        None => {
                            if let Some(
                                list
                                @ (ListStrategy::MergeByKey(_) | ListStrategy::MergePrimitives),
                            ) = my_list
                            {
                                out.gaps.insert(format!("{mine}.{}: {list:?}", f.name));
                            }
                        }
                    }
                    // Only what the patch merges has an inside that matters: objects, and
                    // the items of lists merged by key (a replaced list is taken whole).
                    let merged_inside = match my_list {
                        None => true,
                        Some(list) => matches!(list, ListStrategy::MergeByKey(_)),
                    };
                    if let Some(my_type) = me.and_then(|m| m.type_name).filter(|_| merged_inside) {
                        let their_type = them.and_then(|t| t.type_name);
                        stack.push((my_type, their_type, here));
                    }
                }
            }
        }
        out.mismatches.sort();
        out.mismatches.dedup();
        out
    }

    /// Where patch.rs's hand-written merge-key table says something about a field, it must say
    /// what the Go types' struct tags say.
    #[test]
    fn patch_rs_table_agrees_with_the_struct_tags() {
        let found = compare_with_patch_rs();
        assert!(
            found.compared > 300,
            "only {} entries compared",
            found.compared
        );
        assert_eq!(
            found.mismatches,
            Vec::<String>::new(),
            "patch.rs vs the Go struct tags"
        );
    }

    /// Lists the struct tags merge but patch.rs's table does not know, so that its strategic
    /// merge patch replaces them. Each is a patch.rs bug; remove its line here when patch.rs
    /// learns it.
    #[test]
    fn patch_rs_table_misses_only_these_merge_lists() {
        const KNOWN_GAPS: &[&str] = &[
            // JobSpec.scheduling is not in patch.rs.
            "io.k8s.api.batch.v1.JobSchedulingConfiguration.resourceClaims: MergeByKey(\"name\")",
            // PodStatus.nodeAllocatableResourceClaimStatuses is not in patch.rs.
            "io.k8s.api.core.v1.NodeAllocatableResourceClaimStatus.mapping: MergeByKey(\"name\")",
            "io.k8s.api.core.v1.NodeAllocatableResourceClaimStatus.overhead: MergeByKey(\"name\")",
            "io.k8s.api.core.v1.PodSpec.evictionResponders: MergeByKey(\"name\")",
            "io.k8s.api.core.v1.PodStatus.nodeAllocatableResourceClaimStatuses: MergeByKey(\"resourceClaimName\")",
            // PersistentVolumeClaimStatus.healthStatus is not in patch.rs.
            "io.k8s.api.core.v1.VolumeHealthStatus.healthConditions: MergeByKey(\"status\")",
            // Under PodSpec.volumes[].ephemeral.volumeClaimTemplate.metadata, which patch.rs
            // does not reach (it knows no Volume type).
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta.finalizers: MergePrimitives",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta.ownerReferences: MergeByKey(\"uid\")",
        ];
        let found = compare_with_patch_rs();
        let gaps: Vec<&str> = found.gaps.iter().map(String::as_str).collect();
        assert_eq!(gaps, KNOWN_GAPS);
    }

    /// Kubernetes' OpenAPI gives a default to two list map keys only, both `+default="TCP"`:
    /// every other key an item omits is an error.
    #[test]
    fn only_port_protocols_have_key_defaults() {
        let mut with_default = Vec::new();
        for t in BuiltinSchema::types() {
            for f in t.fields {
                let Atom::List {
                    items: Atom::Struct { name, .. },
                    kind: ListKind::Map(keys),
                } = f.atom
                else {
                    continue;
                };
                for key in keys {
                    if let Some(d) = Schema::key_default(&BuiltinSchema, name, key) {
                        with_default.push((*name, *key, d));
                    }
                }
            }
        }
        with_default.sort();
        with_default.dedup();
        assert_eq!(
            with_default,
            [
                ("io.k8s.api.core.v1.ContainerPort", "protocol", "TCP"),
                ("io.k8s.api.core.v1.ServicePort", "protocol", "TCP"),
            ]
        );
        assert_eq!(BuiltinSchema::key_defaults(), with_default.as_slice());
        // An applied Service whose port omits the protocol is owned under the defaulted key.
        let typed = crate::managed_fields::typed::Typed::root(&BuiltinSchema, "v1", "Service");
        let config = serde_json::json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
        let set = typed
            .to_field_set(&config, crate::managed_fields::typed::Duplicates::Reject)
            .unwrap();
        assert_eq!(
            set.to_json(),
            r#"{"f:spec":{"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{},"f:targetPort":{}}}}}"#
        );
        // A key without a default is still required.
        let config = serde_json::json!({"spec": {"ports": [{"protocol": "UDP"}]}});
        let err = typed
            .to_field_set(&config, crate::managed_fields::typed::Duplicates::Reject)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(r#"omits key field "port" (and doesn't have default value)"#),
            "{err}"
        );
    }
}
