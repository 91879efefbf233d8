//! The generic registry: one description per resource and one typed strategy per kind, so every
//! resource is served by the same handlers (as Kubernetes' `genericregistry.Store` does).
//!
//! - [`ResourceInfo`]: what discovery shows (group, version, plural, scope, verbs, short names).
//! - [`Strategy`]: the small per-kind hooks (defaulting, validation, field labels, printing),
//!   written against the k8s-openapi type of the kind.
//! - [`Kind`]: the object-safe face of a typed strategy that the handlers use, on JSON values.

mod kinds;
mod strategies;
mod typed;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use skiff_apimachinery::validation::{self, FieldError};

pub use kinds::builtin;
pub use typed::{Typed, without_managed_fields};

/// A subresource a resource supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// `/status`: writes only the status, the main resource ignores status.
    Status,
    /// `/scale`: an `autoscaling/v1 Scale` view of `spec.replicas`.
    Scale,
    /// `/binding` (pods): assigns a node.
    Binding,
    /// `/log` (pods): read from the pod's kubelet.
    Log,
    /// `/exec` (pods): an upgraded connection forwarded to the pod's kubelet.
    Exec,
    /// `/attach` (pods): likewise.
    Attach,
    /// `/portforward` (pods): likewise.
    PortForward,
    /// `/proxy/<path>` (nodes): the node's kubelet API (`/stats/summary`, `/pods`, …).
    Proxy,
    /// `/ephemeralcontainers` (pods): writes only `spec.ephemeralContainers` (`kubectl debug`).
    EphemeralContainers,
    /// `/approval` (certificate signing requests): writes only the conditions (Approved,
    /// Denied), which nothing else may change.
    Approval,
}

impl Subresource {
    /// The URL segment.
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Log => "log",
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
            Subresource::PortForward => "portforward",
            Subresource::Proxy => "proxy",
            Subresource::EphemeralContainers => "ephemeralcontainers",
            Subresource::Approval => "approval",
        }
    }
}

/// Everything discovery says about a resource, plus its storage key prefix.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group; "" for core.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Kind of one object.
    pub kind: &'static str,
    /// Lower-case plural, the URL segment.
    pub plural: &'static str,
    /// Lower-case singular.
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`po`, `deploy`, ...).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Subresources served.
    pub subresources: &'static [Subresource],
}

impl ResourceInfo {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The list kind (`PodList`).
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether the resource has a status subresource (and so a spec/status split).
    pub fn has(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// The store key prefix of all objects of this resource.
    pub fn key_prefix(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// The store key prefix of one namespace's objects (or all, for `None`).
    pub fn namespace_prefix(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{}{ns}/", self.key_prefix()),
            None => self.key_prefix(),
        }
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{name}", self.namespace_prefix(namespace))
    }
}

/// One column of server-side printing (`kubectl get`'s Table format).
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header, as kubectl shows it (`READY`).
    pub name: &'static str,
    /// OpenAPI type of the cells: `string`, `integer`, `date`.
    pub type_: &'static str,
    /// 0 for the default view, 1 for `-o wide` only.
    pub priority: u8,
    /// What the column means.
    pub description: &'static str,
}

/// How a kind keeps `metadata.generation`, as its Kubernetes strategy does: `PrepareForCreate`
/// sets 1 and `PrepareForUpdate` bumps it on the changes the kind counts. Every update keeps
/// the stored value whatever the client sent (Kubernetes' `BeforeUpdate`), and a deletion that
/// only starts bumps a generation that is set (`BeforeDelete`, `markAsDeleting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// The server neither sets nor bumps it (config maps, secrets, services, nodes, …).
    Untracked,
    /// 1 on create; one more on each update that changes anything outside `metadata` and
    /// `status` (the spec), or one of the `metadata` fields listed (a Deployment's
    /// annotations, an EndpointSlice's labels).
    Tracked {
        /// `metadata` fields whose changes count too.
        metadata: &'static [&'static str],
    },
}

impl Generation {
    /// Tracked, counting changes of the spec only (most workloads).
    pub const SPEC: Generation = Generation::Tracked { metadata: &[] };

    /// Whether an update from `old` to `new` bumps the generation.
    pub fn bumped(self, new: &Value, old: &Value) -> bool {
        let Generation::Tracked { metadata } = self else {
            return false;
        };
        let counted =
            |obj: &Value, field: &str| obj["metadata"].get(field).filter(|v| !v.is_null()).cloned();
        crate::meta::spec_part(new) != crate::meta::spec_part(old)
            || metadata
                .iter()
                .any(|field| counted(new, field) != counted(old, field))
    }
}

/// The per-kind hooks, on the kind's k8s-openapi type. All have defaults.
pub trait Strategy<K>: Send + Sync + 'static {
    /// Converts the request's object into the stored form before anything else sees it, as
    /// Kubernetes' conversion to the internal version does (a Secret's write-only
    /// `stringData` folded into `data`). Returns the top-level fields it consumed: the request
    /// may carry them although the stored form never does, so they are not unknown fields.
    fn convert(&self, _obj: &mut K) -> &'static [&'static str] {
        &[]
    }

    /// Fills defaults, as Kubernetes' defaulting functions do.
    fn default(&self, _obj: &mut K) {}

    /// Sets what the server decides for a new object, after its metadata (name, uid) is final
    /// and before validation (a pod's initial status, a job's generated selector).
    fn prepare_for_create(&self, _obj: &mut K) {}

    /// Validates an object beyond its metadata (which the registry checks for every kind).
    fn validate(&self, _obj: &K) -> Vec<FieldError> {
        Vec::new()
    }

    /// Validates an update; by default the same rules as create.
    fn validate_update(&self, new: &K, _old: &K) -> Vec<FieldError> {
        self.validate(new)
    }

    /// Resets what an update through `through` (`None`: the object itself) may not change, as
    /// Kubernetes' `PrepareForUpdate` of the strategy for that path (a CSR's spec is immutable,
    /// its approval conditions change only through `/approval`). Runs after the generic merge of
    /// the written part, before admission and validation.
    fn prepare_for_update(&self, _through: Option<Subresource>, _new: &mut K, _old: &K) {}

    /// Validates an update written through the subresource `sub`, which Kubernetes gives a
    /// strategy of its own (pods' `EphemeralContainersStrategy`); by default as any update.
    fn validate_subresource_update(&self, _sub: Subresource, new: &K, old: &K) -> Vec<FieldError> {
        self.validate_update(new, old)
    }

    /// The value of a field selector label this kind supports beyond `metadata.name` and
    /// `metadata.namespace` (e.g. `spec.nodeName` for pods); `None` if unsupported.
    fn field(&self, _obj: &K, _label: &str) -> Option<String> {
        None
    }

    /// The field selector labels `field` answers (so others are rejected up front).
    fn field_labels(&self) -> &'static [&'static str] {
        &[]
    }

    /// Printer columns after NAME (AGE is added last by the registry unless listed).
    fn columns(&self) -> &'static [Column] {
        &[]
    }

    /// The cells for `columns`, in order.
    fn cells(&self, _obj: &K) -> Vec<Value> {
        Vec::new()
    }

    /// Whether `columns` are the whole row, without NAME first and AGE (events print LAST
    /// SEEN first and their name as a wide column).
    fn whole_row(&self) -> bool {
        false
    }

    /// The rule names must pass (Kubernetes' `ValidateNameFunc`): DNS-1123 subdomains unless
    /// the kind says otherwise.
    fn name_rule(&self) -> NameRule {
        validation::is_dns1123_subdomain
    }

    /// Whether a creator may set the status of a kind with a status subresource; otherwise
    /// the status is the controllers' to write and a create drops it (a node's kubelet
    /// registers it with a status).
    fn creator_sets_status(&self) -> bool {
        false
    }

    /// Sets what the server decides for a new object on the request's JSON, before it is
    /// decoded: what this writes stays as the request spelled it (an explicit `null` too), and
    /// wrongly-typed fields are left for the decoder to reject.
    fn prepare_body_for_create(&self, _obj: &mut Value) {}

    /// Whether objects hold cluster-wide allocations (a service's ClusterIPs and NodePorts):
    /// claimed from the server's allocator on create and update, released when they go.
    fn allocates(&self) -> bool {
        false
    }

    /// Refuses to delete the object named `name` with a Forbidden message (the namespaces
    /// that always exist).
    fn validate_delete(&self, _name: &str) -> Result<(), String> {
        Ok(())
    }

    /// Seconds a deletion waits for whoever owns the object, given the grace period the
    /// request asks for (Kubernetes' `RESTGracefulDeleteStrategy`); 0 deletes at once.
    fn graceful_deletion_period(&self, _obj: &K, _requested: Option<i64>) -> i64 {
        0
    }

    /// Whether the object's own spec holds its deletion until a server-side finalizer has
    /// emptied it (a namespace's `spec.finalizers`).
    fn finalized_by_spec(&self, _obj: &K) -> bool {
        false
    }

    /// Changes an object that is marked for deletion rather than removed (a namespace turns
    /// `Terminating`).
    fn prepare_for_delete(&self, _obj: &mut K) {}

    /// Whether a delete that removes the object answers with the object rather than a
    /// Success Status (Kubernetes' `ReturnDeletedObject`: pods, services, namespaces, service
    /// accounts, persistent volumes and claims, storage classes).
    fn returns_deleted_object(&self) -> bool {
        false
    }

    /// How `metadata.generation` is kept (see [`Generation`]); untracked unless the kind's
    /// Kubernetes strategy sets it.
    fn generation(&self) -> Generation {
        Generation::Untracked
    }
}

/// A name rule: the problems with a name, none if valid.
pub type NameRule = fn(&str) -> Vec<String>;

/// A registered kind as the generic handlers see it: JSON in, JSON out.
pub trait Kind: Send + Sync {
    /// Discovery and storage facts.
    fn info(&self) -> &ResourceInfo;

    /// Decodes a request body into the kind's canonical form (fields the type does not know are
    /// dropped and reported, for fieldValidation), then applies defaults.
    fn decode(&self, obj: &Value) -> Result<Decoded, String>;

    /// [`decode`](Kind::decode) for a new object, in the same pass through the typed struct:
    /// defaults, [`Strategy::prepare_for_create`], then validation (into `Decoded::errors`).
    /// The server-owned metadata (name, uid) must already be set.
    fn decode_new(&self, obj: &Value) -> Result<Decoded, String>;

    /// Kind-specific validation of a new object.
    fn validate(&self, obj: &Value) -> Vec<FieldError>;

    /// Kind-specific validation of an update.
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError>;

    /// See [`Strategy::prepare_for_update`]; the object is left as it is unless the strategy
    /// changes it.
    fn prepare_for_update(&self, through: Option<Subresource>, new: &mut Value, old: &Value);

    /// Kind-specific validation of an update through the subresource `sub`.
    fn validate_subresource_update(
        &self,
        sub: Subresource,
        new: &Value,
        old: &Value,
    ) -> Vec<FieldError>;

    /// A field selector label's value; `None` if the kind does not support the label.
    fn field(&self, obj: &Value, label: &str) -> Option<String>;

    /// The field selector labels `field` supports beyond `metadata.name`/`metadata.namespace`.
    fn field_labels(&self) -> &'static [&'static str];

    /// Printer columns after NAME.
    fn columns(&self) -> &'static [Column];

    /// Cells for the columns.
    fn cells(&self, obj: &Value) -> Vec<Value>;

    /// Whether the columns are the whole row (no NAME and AGE added).
    fn whole_row(&self) -> bool;

    /// What the OpenAPI documents publish about this kind.
    fn openapi(&self) -> skiff_openapi::Resource;

    /// See [`Strategy::name_rule`].
    fn name_rule(&self) -> NameRule;

    /// See [`Strategy::creator_sets_status`].
    fn creator_sets_status(&self) -> bool;

    /// See [`Strategy::prepare_body_for_create`].
    fn prepare_body_for_create(&self, obj: &mut Value);

    /// See [`Strategy::allocates`].
    fn allocates(&self) -> bool;

    /// See [`Strategy::validate_delete`].
    fn validate_delete(&self, name: &str) -> Result<(), String>;

    /// See [`Strategy::graceful_deletion_period`].
    fn graceful_deletion_period(&self, obj: &Value, requested: Option<i64>) -> i64;

    /// See [`Strategy::finalized_by_spec`].
    fn finalized_by_spec(&self, obj: &Value) -> bool;

    /// See [`Strategy::prepare_for_delete`]; the object is left as it is unless the strategy
    /// changes it.
    fn prepare_for_delete(&self, obj: &mut Value);

    /// See [`Strategy::returns_deleted_object`].
    fn returns_deleted_object(&self) -> bool;

    /// See [`Strategy::generation`].
    fn generation(&self) -> Generation;
}

/// A decoded body.
pub struct Decoded {
    /// The object in canonical form, defaults applied.
    pub object: Value,
    /// JSON paths of fields the kind does not have.
    pub unknown_fields: Vec<String>,
    /// Kind-specific validation errors (only from [`Kind::decode_new`]).
    pub errors: Vec<FieldError>,
}

/// Every served resource, found by (group, version, plural) or (group, kind).
#[derive(Clone, Default)]
pub struct Registry {
    kinds: Vec<Arc<dyn Kind>>,
    by_path: BTreeMap<(String, String, String), usize>,
}

impl Registry {
    /// Adds a kind.
    pub fn register(&mut self, kind: Arc<dyn Kind>) {
        let info = kind.info();
        let key = (
            info.group.to_owned(),
            info.version.to_owned(),
            info.plural.to_owned(),
        );
        self.by_path.insert(key, self.kinds.len());
        self.kinds.push(kind);
    }

    /// The kind served at `/apis/<group>/<version>/<plural>`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<dyn Kind>> {
        let key = (group.to_owned(), version.to_owned(), plural.to_owned());
        self.by_path.get(&key).map(|&i| &self.kinds[i])
    }

    /// The kind of `apiVersion` + `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&Arc<dyn Kind>> {
        self.kinds
            .iter()
            .find(|k| k.info().kind == kind && k.info().api_version() == api_version)
    }

    /// All kinds, in registration order.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Kind>> {
        self.kinds.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generation_counts_what_each_kind_counts() {
        let base = json!({
            "metadata": { "name": "a", "labels": { "l": "1" }, "annotations": { "a": "1" } },
            "spec": { "replicas": 1 },
            "status": { "replicas": 0 },
        });
        let changed = |path: &[&str], value: Value| {
            let mut obj = base.clone();
            let mut at = &mut obj;
            for key in &path[..path.len() - 1] {
                at = &mut at[*key];
            }
            at[path[path.len() - 1]] = value;
            obj
        };
        let spec = changed(&["spec", "replicas"], json!(2));
        let status = changed(&["status", "replicas"], json!(1));
        let labels = changed(&["metadata", "labels", "l"], json!("2"));
        let annotations = changed(&["metadata", "annotations", "a"], json!("2"));
        let deployments = Generation::Tracked {
            metadata: &["annotations"],
        };
        let slices = Generation::Tracked {
            metadata: &["labels"],
        };
        let cases = [
            (Generation::Untracked, &spec, false),
            (Generation::SPEC, &spec, true),
            (Generation::SPEC, &status, false),
            (Generation::SPEC, &labels, false),
            (Generation::SPEC, &annotations, false),
            (Generation::SPEC, &base, false),
            (deployments, &annotations, true),
            (deployments, &labels, false),
            (slices, &labels, true),
            (slices, &status, false),
        ];
        for (i, (generation, new, bumped)) in cases.into_iter().enumerate() {
            assert_eq!(generation.bumped(new, &base), bumped, "case {i}");
        }
    }
}
