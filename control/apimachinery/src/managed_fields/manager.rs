//! Field ownership (`metadata.managedFields`) and the two ways an object changes, after
//! Kubernetes' `fieldmanager` (`k8s.io/apimachinery/pkg/util/managedfields/internal`) on top
//! of structured-merge-diff's `merge.Updater`:
//!
//! - [`FieldManager::apply`] (server-side apply): the configuration is merged into the live
//!   object; the applier owns exactly the fields it applied; fields it applied before and no
//!   longer applies are removed unless someone else owns them; changing a field another
//!   manager owns is a [`Conflicts`] error unless forced, which moves ownership.
//! - [`FieldManager::update`] (every other write: create, PUT, PATCH): the fields the write
//!   changed become the writer's (an `Update` entry), every other manager loses them, and
//!   removed fields leave every set.
//!
//! Kubernetes composes its field manager from layers; this module runs the same layers in the
//! same order: the version check, kubectl's client-side-apply migration
//! (`last-applied-configuration`, both ways), `before-first-apply` for objects that have no
//! `managedFields` yet, the cap of ten `Update` entries (`ancient-changes`), manager
//! identifiers, entry times, and stripping the fields no one owns (`metadata.name`, ...).
//!
//! Every version of an object is taken to have the same fields: skiff serves each resource at
//! one version, so no conversion happens between a manager's version and the request's.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value};

use super::fieldpath::{FieldsV1Error, Path, Set};
use super::schema::Schema;
use super::typed::{Comparison, Duplicates, Typed, ValidationErrors};
use super::value::{self, go_json, go_quote, write_go_json_string};

/// The manager that owns an object's fields from before it was first applied to.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// The manager the oldest `Update` entries are merged into beyond
/// [`DEFAULT_MAX_UPDATE_MANAGERS`].
pub const ANCIENT_CHANGES: &str = "ancient-changes";

/// How many `Update` entries an object keeps before the oldest are merged.
pub const DEFAULT_MAX_UPDATE_MANAGERS: usize = 10;

/// kubectl's client-side apply annotation.
pub const LAST_APPLIED_CONFIG_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The `StatusCause` type of an apply conflict.
pub const CAUSE_TYPE_FIELD_MANAGER_CONFLICT: &str = "FieldManagerConflict";

/// The manager whose applies migrate client-side apply's annotation.
const KUBECTL: &str = "kubectl";

/// The name an update runs under before its fields are merged into the writer's entry.
const CURRENT_OPERATION: &str = "current-operation";

/// Kubernetes' limit on the total size of an object's annotations.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// The fields no manager owns.
fn strip_set() -> &'static Set {
    static SET: std::sync::OnceLock<Set> = std::sync::OnceLock::new();
    SET.get_or_init(strip_set_paths)
}

fn strip_set_paths() -> Set {
    let mut set = Set::new();
    for path in [
        &["apiVersion"][..],
        &["kind"],
        &["metadata"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "creationTimestamp"],
        &["metadata", "selfLink"],
        &["metadata", "uid"],
        &["metadata", "clusterName"],
        &["metadata", "generation"],
        &["metadata", "managedFields"],
        &["metadata", "resourceVersion"],
    ] {
        set.insert(&Path::fields(path).0);
    }
    set
}

/// How a manager last changed its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write.
    Update,
}

impl Operation {
    /// `Apply` or `Update`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// Who (a field manager name).
    pub manager: String,
    /// How.
    pub operation: Operation,
    /// The version the fields are described in.
    pub api_version: String,
    /// When the entry last changed the object (seconds).
    pub time: Option<Timestamp>,
    /// The fields (`fieldsV1`; `fieldsType` is always `FieldsV1`).
    pub fields: Set,
    /// The subresource written through (empty for the main resource).
    pub subresource: String,
}

/// Why `metadata.managedFields` does not decode, with Kubernetes' messages where it has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagedFieldsError {
    /// `managedFields` is not a list.
    #[error("metadata.managedFields must be a list of entries, got {got}")]
    NotAList {
        /// The JSON type found.
        got: &'static str,
    },
    /// An entry is not an object, or one of its fields has the wrong JSON type.
    #[error("managed fields entry {index}: {reason}")]
    Malformed {
        /// The entry's index.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// `operation` is neither `Apply` nor `Update`.
    #[error("operation must be `Apply` or `Update`")]
    Operation {
        /// The entry's index.
        index: usize,
        /// The operation found.
        operation: String,
    },
    /// `apiVersion` is empty.
    #[error("apiVersion must not be empty")]
    ApiVersion {
        /// The entry's index.
        index: usize,
    },
    /// `fieldsType` is missing.
    #[error("missing fieldsType in managed fields entry {index}")]
    MissingFieldsType {
        /// The entry's index.
        index: usize,
    },
    /// `fieldsType` is not `FieldsV1`.
    #[error("invalid fieldsType {fields_type:?} in managed fields entry {index}")]
    FieldsType {
        /// The entry's index.
        index: usize,
        /// The type found.
        fields_type: String,
    },
    /// `fieldsV1` does not decode.
    #[error(
        "error decoding versioned set from managed fields entry {index} ({manager:?}): error decoding set: {source}"
    )]
    FieldsV1 {
        /// The entry's index.
        index: usize,
        /// The entry's manager.
        manager: String,
        /// Why.
        source: FieldsV1Error,
    },
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A manager's identity as Kubernetes keys it: the JSON of the entry without its fields, time
/// and (for appliers, so that each apply is the same manager) API version.
fn identifier(manager: &str, operation: Operation, api_version: &str, subresource: &str) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut field = |name: &str, v: &str| {
        if v.is_empty() {
            return;
        }
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        write_go_json_string(&mut out, name);
        out.push(':');
        write_go_json_string(&mut out, v);
    };
    field("manager", manager);
    field("operation", operation.as_str());
    if operation == Operation::Update {
        field("apiVersion", api_version);
    }
    field("subresource", subresource);
    out.push('}');
    out
}

/// The parts of an identifier.
struct Identity {
    manager: String,
    operation: Option<Operation>,
    api_version: String,
    subresource: String,
}

fn parse_identifier(id: &str) -> Option<Identity> {
    let v: Value = serde_json::from_str(id).ok()?;
    let get = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Some(Identity {
        operation: match get("operation").as_str() {
            "Apply" => Some(Operation::Apply),
            "Update" => Some(Operation::Update),
            _ => None,
        },
        manager: get("manager"),
        api_version: get("apiVersion"),
        subresource: get("subresource"),
    })
}

impl ManagedFieldsEntry {
    /// The identifier Kubernetes keys this entry's manager by (entries with the same one are
    /// the same manager).
    pub fn identifier(&self) -> String {
        identifier(
            &self.manager,
            self.operation,
            &self.api_version,
            &self.subresource,
        )
    }

    /// Decodes entry `index` of `managedFields`, with the checks Kubernetes' decoding makes.
    pub fn from_value(index: usize, v: &Value) -> Result<Self, ManagedFieldsError> {
        let malformed = |reason: String| ManagedFieldsError::Malformed { index, reason };
        let Value::Object(entry) = v else {
            return Err(malformed(format!(
                "expected an object, got {}",
                json_type(v)
            )));
        };
        let string = |name: &str| match entry.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(malformed(format!(
                "{name} must be a string, got {}",
                json_type(other)
            ))),
        };
        let (manager, operation, api_version) = (
            string("manager")?,
            string("operation")?,
            string("apiVersion")?,
        );
        let (fields_type, subresource) = (string("fieldsType")?, string("subresource")?);
        let time = match entry.get("time") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(
                t.parse::<Timestamp>()
                    .map_err(|_| malformed(format!("time {t:?} is not an RFC 3339 time")))?,
            ),
            Some(other) => {
                return Err(malformed(format!(
                    "time must be a string, got {}",
                    json_type(other)
                )));
            }
        };
        let operation = match operation.as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return Err(ManagedFieldsError::Operation { index, operation }),
        };
        if api_version.is_empty() {
            return Err(ManagedFieldsError::ApiVersion { index });
        }
        match fields_type.as_str() {
            "FieldsV1" => {}
            "" => return Err(ManagedFieldsError::MissingFieldsType { index }),
            _ => return Err(ManagedFieldsError::FieldsType { index, fields_type }),
        }
        let fields =
            Set::from_value(entry.get("fieldsV1").unwrap_or(&Value::Null)).map_err(|source| {
                ManagedFieldsError::FieldsV1 {
                    index,
                    manager: manager.clone(),
                    source,
                }
            })?;
        Ok(ManagedFieldsEntry {
            manager,
            operation,
            api_version,
            time,
            fields,
            subresource,
        })
    }

    /// The entry as Kubernetes writes it (empty strings and a missing time omitted).
    pub fn to_value(&self) -> Value {
        let mut entry = Map::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                entry.insert(k.to_string(), Value::String(v.to_string()));
            }
        };
        put("manager", &self.manager);
        put("operation", self.operation.as_str());
        put("apiVersion", &self.api_version);
        if let Some(t) = self.time {
            put("time", &format_time(t));
        }
        put("fieldsType", "FieldsV1");
        put("subresource", &self.subresource);
        entry.insert("fieldsV1".into(), self.fields.to_value());
        Value::Object(entry)
    }
}

/// Decodes `metadata.managedFields` (absent or `null`: no entries).
pub fn decode_managed_fields(
    managed_fields: Option<&Value>,
) -> Result<Vec<ManagedFieldsEntry>, ManagedFieldsError> {
    match managed_fields {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(entries)) => entries
            .iter()
            .enumerate()
            .map(|(i, e)| ManagedFieldsEntry::from_value(i, e))
            .collect(),
        Some(other) => Err(ManagedFieldsError::NotAList {
            got: json_type(other),
        }),
    }
}

/// Encodes entries as `metadata.managedFields`.
pub fn encode_managed_fields(entries: &[ManagedFieldsEntry]) -> Value {
    Value::Array(entries.iter().map(ManagedFieldsEntry::to_value).collect())
}

/// A manager's fields, as smd's `VersionedSet`.
#[derive(Debug, Clone)]
struct VersionedSet {
    set: Set,
    api_version: String,
    applied: bool,
}

/// Every manager's fields keyed by identifier, with the entries' times.
#[derive(Debug, Clone, Default)]
struct Managed {
    fields: BTreeMap<String, VersionedSet>,
    times: BTreeMap<String, Option<Timestamp>>,
}

impl Managed {
    fn from_entries(entries: Vec<ManagedFieldsEntry>) -> Self {
        let mut managed = Managed::default();
        // A later entry of the same manager replaces an earlier one, as in Kubernetes.
        for entry in entries {
            let id = entry.identifier();
            managed.times.insert(id.clone(), entry.time);
            managed.fields.insert(
                id,
                VersionedSet {
                    set: entry.fields,
                    api_version: entry.api_version,
                    applied: entry.operation == Operation::Apply,
                },
            );
        }
        managed
    }

    /// The entries, ordered as Kubernetes orders them: appliers first, then by time, manager,
    /// version and subresource.
    fn into_entries(self) -> Vec<ManagedFieldsEntry> {
        let times = self.times;
        let mut entries: Vec<ManagedFieldsEntry> = self
            .fields
            .into_iter()
            .filter_map(|(id, vs)| {
                let identity = parse_identifier(&id)?;
                Some(ManagedFieldsEntry {
                    manager: identity.manager,
                    operation: if vs.applied {
                        Operation::Apply
                    } else {
                        identity.operation.unwrap_or(Operation::Update)
                    },
                    time: times.get(&id).copied().flatten(),
                    api_version: vs.api_version,
                    fields: vs.set,
                    subresource: identity.subresource,
                })
            })
            .collect();
        let seconds = |e: &ManagedFieldsEntry| e.time.map_or(0, |t| t.as_second());
        entries.sort_by(|p, q| {
            p.operation
                .as_str()
                .cmp(q.operation.as_str())
                .then(seconds(p).cmp(&seconds(q)))
                .then_with(|| p.manager.cmp(&q.manager))
                .then_with(|| p.api_version.cmp(&q.api_version))
                .then_with(|| p.subresource.cmp(&q.subresource))
        });
        entries
    }
}

/// A field another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The owner's identifier (see [`ManagedFieldsEntry::identifier`]).
    pub manager: String,
    /// The field.
    pub path: Path,
}

/// The conflicts of an apply, by manager identifier and then in field order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct Conflicts(pub Vec<Conflict>);

/// How Kubernetes names a manager in a conflict: `"name"`, `"name" with subresource "status"`,
/// and ` using apps/v1` for an `Update` entry.
pub fn print_manager(identifier: &str) -> String {
    let mut out = String::new();
    let Some(identity) = parse_identifier(identifier) else {
        go_quote(&mut out, identifier);
        return out;
    };
    go_quote(&mut out, &identity.manager);
    if !identity.subresource.is_empty() {
        out.push_str(" with subresource ");
        go_quote(&mut out, &identity.subresource);
    }
    if identity.operation == Some(Operation::Update) {
        out.push_str(" using ");
        out.push_str(&identity.api_version);
    }
    out
}

impl Conflicts {
    fn from_managers(conflicts: &BTreeMap<String, Set>) -> Self {
        Conflicts(
            conflicts
                .iter()
                .flat_map(|(manager, set)| {
                    set.paths().into_iter().map(|path| Conflict {
                        manager: manager.clone(),
                        path,
                    })
                })
                .collect(),
        )
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The conflicts whose fields are not in `allowed`.
    fn without(&self, allowed: &Set) -> Conflicts {
        Conflicts(
            self.0
                .iter()
                .filter(|c| !allowed.has(&c.path.0))
                .cloned()
                .collect(),
        )
    }

    /// Kubernetes' message: `Apply failed with 1 conflict: conflict with "mgr" using apps/v1:
    /// .spec.replicas`, or for several, one `conflicts with` paragraph per manager.
    pub fn message(&self) -> String {
        if let [one] = self.0.as_slice() {
            return format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                print_manager(&one.manager),
                one.path
            );
        }
        let mut by_manager: BTreeMap<&str, Vec<&Path>> = BTreeMap::new();
        for c in &self.0 {
            by_manager.entry(&c.manager).or_default().push(&c.path);
        }
        let mut lines = Vec::new();
        for (manager, paths) in by_manager {
            lines.push(format!("conflicts with {}:", print_manager(manager)));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            self.0.len(),
            lines.join("\n")
        )
    }

    /// One `FieldManagerConflict` cause per conflict.
    pub fn causes(&self) -> Vec<StatusCause> {
        self.0
            .iter()
            .map(|c| StatusCause {
                reason: Some(CAUSE_TYPE_FIELD_MANAGER_CONFLICT.into()),
                message: Some(format!("conflict with {}", print_manager(&c.manager))),
                field: Some(c.path.to_string()),
            })
            .collect()
    }

    /// The `409 Conflict` Status Kubernetes answers with.
    pub fn to_status(&self) -> Status {
        Status {
            code: Some(409),
            reason: Some("Conflict".into()),
            status: Some("Failure".into()),
            message: Some(self.message()),
            details: Some(StatusDetails {
                causes: Some(self.causes()),
                ..StatusDetails::default()
            }),
            ..Status::default()
        }
    }
}

/// Why an apply fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The configuration's `apiVersion` and `kind` are not the resource's (400).
    #[error("invalid object type: {0}")]
    InvalidObjectType(String),
    /// The configuration sets `metadata.managedFields` (400).
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsInConfig,
    /// The live object's `managedFields` do not decode (500).
    #[error("failed to decode managed fields: {0}")]
    LiveManagedFields(ManagedFieldsError),
    /// The configuration does not fit the type (500 in Kubernetes, whose message this is).
    #[error("failed to create typed patch object ({object}): {errors}")]
    TypedConfig {
        /// `namespace/name; group/version, Kind=kind`.
        object: String,
        /// Why.
        errors: ValidationErrors,
    },
    /// The live object does not fit the type (500).
    #[error("failed to create typed live object ({object}): {errors}")]
    TypedLive {
        /// `namespace/name; group/version, Kind=kind`.
        object: String,
        /// Why.
        errors: ValidationErrors,
    },
    /// The live object's fields could not be given to `before-first-apply` (500).
    #[error("failed to create manager for existing fields: {0}")]
    BeforeFirstApply(UpdateError),
    /// The apply would change fields other managers own (409).
    #[error(transparent)]
    Conflicts(Conflicts),
}

impl ApplyError {
    /// The HTTP status Kubernetes answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            ApplyError::InvalidObjectType(_) | ApplyError::ManagedFieldsInConfig => 400,
            ApplyError::Conflicts(_) => 409,
            _ => 500,
        }
    }
}

/// Why the managed fields of an update cannot be computed (Kubernetes then keeps the live
/// object's, see [`FieldManager::update_no_errors`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The new object does not fit the type.
    #[error("failed to convert new object ({object}) to smd typed: {errors}")]
    TypedNew {
        /// `namespace/name; group/version, Kind=kind`.
        object: String,
        /// Why.
        errors: ValidationErrors,
    },
    /// The live object does not fit the type.
    #[error("failed to convert live object ({object}) to smd typed: {errors}")]
    TypedLive {
        /// `namespace/name; group/version, Kind=kind`.
        object: String,
        /// Why.
        errors: ValidationErrors,
    },
}

/// `group/version, Kind=kind`, as Go prints a `GroupVersionKind`.
fn gvk_string(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}, Kind={kind}")
}

fn metadata(v: &Value) -> Option<&Map<String, Value>> {
    v.get("metadata").and_then(Value::as_object)
}

fn meta_str<'v>(v: &'v Value, field: &str) -> &'v str {
    metadata(v)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    v
}

fn set_managed_fields(v: &mut Value, entries: &[ManagedFieldsEntry]) {
    let Some(object) = v.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        return;
    }
    let meta = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert("managedFields".into(), encode_managed_fields(entries));
    }
}

/// Whether a client's `managedFields` ask for them to be reset: an empty list, or one entry
/// with nothing set.
fn is_reset(managed_fields: Option<&Value>) -> bool {
    match managed_fields {
        Some(Value::Array(entries)) => match entries.as_slice() {
            [] => true,
            [Value::Object(entry)] => entry
                .values()
                .all(|v| v.is_null() || v.as_str() == Some("")),
            _ => false,
        },
        _ => false,
    }
}

/// The field manager of one resource (and subresource) at its served version.
pub struct FieldManager<'s> {
    schema: &'s dyn Schema,
    api_version: String,
    kind: String,
    subresource: String,
    new_object: Value,
    max_update_managers: usize,
    reset_fields: Set,
}

impl<'s> FieldManager<'s> {
    /// The field manager of `kind` objects served as `api_version`, written through
    /// `subresource` (empty for the main resource).
    pub fn new(schema: &'s dyn Schema, api_version: &str, kind: &str, subresource: &str) -> Self {
        FieldManager {
            schema,
            api_version: api_version.into(),
            kind: kind.into(),
            subresource: subresource.into(),
            new_object: Value::Object(Map::new()),
            max_update_managers: DEFAULT_MAX_UPDATE_MANAGERS,
            reset_fields: Set::new(),
        }
    }

    /// The fields this resource's writes cannot change, because its strategy resets them
    /// (Kubernetes' `ResetFieldsStrategy`: the status for the main resource, the spec for
    /// `/status`). No one gains or loses them through this manager, an apply that sets them
    /// does not own them, and changing them is never a conflict (smd's `IgnoreFilter`). A
    /// member stands for everything below it.
    pub fn with_reset_fields(mut self, reset: Set) -> Self {
        self.reset_fields = reset;
        self
    }

    /// `changed` without the reset fields.
    fn filter_reset(&self, changed: Comparison) -> Comparison {
        if self.reset_fields.is_empty() {
            return changed;
        }
        Comparison {
            added: changed.added.recursive_difference(&self.reset_fields),
            modified: changed.modified.recursive_difference(&self.reset_fields),
            removed: changed.removed.recursive_difference(&self.reset_fields),
        }
    }

    /// The object a create starts from (what Kubernetes' `ObjectCreater.New` gives for the
    /// kind; `{}` unless set). Fields it has are not "added" by the create.
    pub fn with_new_object(mut self, object: Value) -> Self {
        self.new_object = object;
        self
    }

    /// How many `Update` entries to keep (default [`DEFAULT_MAX_UPDATE_MANAGERS`]).
    pub fn with_max_update_managers(mut self, max: usize) -> Self {
        self.max_update_managers = max;
        self
    }

    fn typed(&self) -> Typed<'s> {
        Typed::root(self.schema, &self.api_version, &self.kind)
    }

    /// `namespace/name; group/version, Kind=kind` of `v`, for error messages.
    fn describe(&self, v: &Value) -> String {
        format!(
            "{}/{}; {}",
            meta_str(v, "namespace"),
            meta_str(v, "name"),
            gvk_string(&self.api_version, &self.kind)
        )
    }

    fn identifier(&self, manager: &str, operation: Operation) -> String {
        let manager = if manager.is_empty() {
            "unknown"
        } else {
            manager
        };
        identifier(manager, operation, &self.api_version, &self.subresource)
    }

    /// Server-side apply of `config` by `manager` to `live` (`None`: the apply creates the
    /// object). Returns the new object with its new `managedFields`; when the apply changes
    /// nothing, the live object (with the applier's ownership recorded).
    pub fn apply(
        &self,
        live: Option<&Value>,
        config: &Value,
        manager: &str,
        force: bool,
        now: Timestamp,
    ) -> Result<Value, ApplyError> {
        let api_version = config
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
        if api_version != self.api_version || kind != self.kind {
            return Err(ApplyError::InvalidObjectType(gvk_string(api_version, kind)));
        }
        let live = live.unwrap_or(&self.new_object);
        let managed = Managed::from_entries(
            decode_managed_fields(metadata(live).and_then(|m| m.get("managedFields")))
                .map_err(ApplyError::LiveManagedFields)?,
        );
        let (mut object, managed) =
            match self.apply_tracked(live, config, &managed, manager, force, now) {
                // kubectl moving from client-side to server-side apply: the fields its
                // last-applied configuration still describes are its own, so taking them from
                // the client-side entries is no conflict.
                Err(ApplyError::Conflicts(conflicts)) if manager == KUBECTL => {
                    let Some(allowed) = self.allowed_conflicts_from_last_applied(live) else {
                        return Err(ApplyError::Conflicts(conflicts));
                    };
                    let remaining = conflicts.without(&allowed);
                    if !remaining.is_empty() {
                        return Err(ApplyError::Conflicts(remaining));
                    }
                    self.apply_tracked(live, config, &managed, manager, true, now)?
                }
                result => result?,
            };
        if manager == KUBECTL {
            update_last_applied(&mut object, config);
        }
        set_managed_fields(&mut object, &managed.into_entries());
        Ok(object)
    }

    /// The fields of `live` that its `last-applied-configuration` annotation sets to the
    /// values they have (kubectl's client-side apply owned them); `None` when there is no
    /// usable annotation.
    pub fn last_applied_fields(&self, live: &Value) -> Option<Set> {
        self.allowed_conflicts_from_last_applied(live)
    }

    fn allowed_conflicts_from_last_applied(&self, live: &Value) -> Option<Set> {
        let text = metadata(live)?
            .get("annotations")?
            .get(LAST_APPLIED_CONFIG_ANNOTATION)?
            .as_str()
            .filter(|t| !t.is_empty())?;
        let last: Value = serde_json::from_str(text).ok()?;
        if last.get("apiVersion").and_then(Value::as_str) != Some(&self.api_version) {
            return None;
        }
        let typed = self.typed();
        let live = without_managed_fields(live);
        typed.validate(&live, Duplicates::Allow).ok()?;
        let set = typed.to_field_set(&last, Duplicates::Reject).ok()?;
        let changed = typed.compare(&last, &live);
        Some(
            set.difference(&changed.modified)
                .difference(&changed.added)
                .difference(&changed.removed),
        )
    }

    /// The apply below kubectl's migration: `before-first-apply`, identifiers, times, the
    /// stripped fields and smd's apply.
    fn apply_tracked(
        &self,
        live: &Value,
        config: &Value,
        managed: &Managed,
        manager: &str,
        force: bool,
        now: Timestamp,
    ) -> Result<(Value, Managed), ApplyError> {
        let mut managed = managed.clone();
        if managed.fields.is_empty() {
            // Whatever the object already holds belongs to someone: a manager that stands
            // for every write before the first apply.
            managed = self
                .update_tracked(&self.new_object, live, managed, BEFORE_FIRST_APPLY, now)
                .map_err(ApplyError::BeforeFirstApply)?;
        }
        let id = self.identifier(manager, Operation::Apply);
        let (object, mut managed) = self.structured_apply(live, config, managed, &id, force)?;
        strip_fields(&mut managed, &id);
        let object = match object {
            Some(object) => {
                managed.times.insert(id, Some(now));
                object
            }
            None => without_managed_fields(live),
        };
        Ok((object, managed))
    }

    /// smd's `Updater.Apply`: the merged object (`None` when it equals the live one) and the
    /// managers after it.
    fn structured_apply(
        &self,
        live: &Value,
        config: &Value,
        mut managed: Managed,
        id: &str,
        force: bool,
    ) -> Result<(Option<Value>, Managed), ApplyError> {
        if metadata(config)
            .and_then(|m| m.get("managedFields"))
            .is_some_and(|v| !v.is_null())
        {
            return Err(ApplyError::ManagedFieldsInConfig);
        }
        let typed = self.typed();
        let set = typed
            .to_field_set(config, Duplicates::Reject)
            .map_err(|errors| ApplyError::TypedConfig {
                object: self.describe(config),
                errors,
            })?
            .recursive_difference(&self.reset_fields);
        let live = without_managed_fields(live);
        typed
            .validate(&live, Duplicates::Allow)
            .map_err(|errors| ApplyError::TypedLive {
                object: self.describe(&live),
                errors,
            })?;
        let merged = typed.merge(&live, config);
        let last = managed.fields.get(id).cloned();
        managed.fields.insert(
            id.to_string(),
            VersionedSet {
                set,
                api_version: self.api_version.clone(),
                applied: true,
            },
        );
        let merged = prune(&typed, merged, &managed, id, last.as_ref());
        let changed = self.filter_reset(typed.compare(&live, &merged));
        let managed =
            update_managers(managed, &changed, id, force).map_err(ApplyError::Conflicts)?;
        let object = (!value::equals(&live, &merged)).then(|| typed.drop_null_fields(&merged));
        Ok((object, managed))
    }

    /// A non-apply write by `manager` from `live` (`None`: a create) to `new`: `new` with its
    /// `managedFields`. The client's own `managedFields` on `new` are used when they decode
    /// and are not empty (an empty list resets them); otherwise the live object's are kept.
    pub fn update(
        &self,
        live: Option<&Value>,
        new: &Value,
        manager: &str,
        now: Timestamp,
    ) -> Result<Value, UpdateError> {
        self.update_owned(live, new.clone(), manager, now)
            .map_err(|(err, _)| err)
    }

    /// [`FieldManager::update`] of an object the caller hands over (no copy of it is made);
    /// on failure it comes back beside the error.
    fn update_owned(
        &self,
        live: Option<&Value>,
        mut new: Value,
        manager: &str,
        now: Timestamp,
    ) -> Result<Value, (UpdateError, Value)> {
        let live = live.unwrap_or(&self.new_object);
        let managed = self.decode_live_or_new(live, &new);
        if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        // An object that exists without managedFields keeps none until it is applied to;
        // a create starts tracking.
        let tracked = !managed.fields.is_empty() || meta_str(live, "uid").is_empty();
        let managed = if tracked {
            match self.update_tracked(live, &new, managed, manager, now) {
                Ok(managed) => managed,
                Err(err) => return Err((err, new)),
            }
        } else {
            managed
        };
        set_managed_fields(&mut new, &managed.into_entries());
        Ok(new)
    }

    /// [`FieldManager::update`] as Kubernetes' handlers call it: when the managed fields cannot
    /// be computed, `new` keeps the live object's `managedFields`.
    pub fn update_no_errors(
        &self,
        live: Option<&Value>,
        new: Value,
        manager: &str,
        now: Timestamp,
    ) -> Value {
        self.update_owned(live, new, manager, now)
            .unwrap_or_else(|(_, mut object)| {
                // `object` comes back without its managedFields: the live ones stay.
                let kept = live.and_then(|l| metadata(l)?.get("managedFields").cloned());
                if let (Some(kept), Some(meta)) = (
                    kept,
                    object.get_mut("metadata").and_then(Value::as_object_mut),
                ) {
                    meta.insert("managedFields".into(), kept);
                }
                object
            })
    }

    fn decode_live_or_new(&self, live: &Value, new: &Value) -> Managed {
        let decode = |v: &Value| {
            decode_managed_fields(metadata(v).and_then(|m| m.get("managedFields")))
                .map(Managed::from_entries)
        };
        let from_live = || decode(live).unwrap_or_default();
        // A subresource write cannot set managedFields.
        if !self.subresource.is_empty() {
            return from_live();
        }
        let requested = metadata(new).and_then(|m| m.get("managedFields"));
        if is_reset(requested) {
            return Managed::default();
        }
        match decode(new) {
            Ok(managed) if !managed.fields.is_empty() => managed,
            _ => from_live(),
        }
    }

    /// The update below the skip of untracked objects: smd's update under a temporary name,
    /// then merged into `manager`'s entry with the time, and the cap on entries.
    fn update_tracked(
        &self,
        live: &Value,
        new: &Value,
        managed: Managed,
        manager: &str,
        now: Timestamp,
    ) -> Result<Managed, UpdateError> {
        let id = self.identifier(manager, Operation::Update);
        let mut managed = self.structured_update(live, new, managed)?;
        strip_fields(&mut managed, CURRENT_OPERATION);
        // The write took fields only if it changed something; then the entry gets them and
        // the time.
        if let Some(mut merged) = managed.fields.remove(CURRENT_OPERATION) {
            if let Some(previous) = managed.fields.remove(&id) {
                merged.set.absorb(previous.set);
            }
            managed.fields.insert(id.clone(), merged);
            managed.times.insert(id, Some(now));
        }
        cap_update_managers(&mut managed, self.max_update_managers);
        Ok(managed)
    }

    /// smd's `Updater.Update` for the temporary manager.
    fn structured_update(
        &self,
        live: &Value,
        new: &Value,
        managed: Managed,
    ) -> Result<Managed, UpdateError> {
        let typed = self.typed();
        let live = without_managed_fields(live);
        typed
            .validate(new, Duplicates::Allow)
            .map_err(|errors| UpdateError::TypedNew {
                object: self.describe(new),
                errors,
            })?;
        typed
            .validate(&live, Duplicates::Allow)
            .map_err(|errors| UpdateError::TypedLive {
                object: self.describe(&live),
                errors,
            })?;
        let changed = self.filter_reset(typed.compare(&live, new));
        let Ok(mut managed) = update_managers(managed, &changed, CURRENT_OPERATION, true) else {
            unreachable!("a forced update has no conflicts");
        };
        let previous = managed
            .fields
            .remove(CURRENT_OPERATION)
            .map(|vs| vs.set)
            .unwrap_or_default();
        let mut set = previous;
        set.absorb(changed.modified);
        set.absorb(changed.added);
        set.subtract(&changed.removed);
        if !set.is_empty() {
            managed.fields.insert(
                CURRENT_OPERATION.into(),
                VersionedSet {
                    set,
                    api_version: self.api_version.clone(),
                    applied: false,
                },
            );
        }
        Ok(managed)
    }
}

/// smd's `prune`: removes what `applier` applied last time (`last`) and no longer applies,
/// unless another manager owns it, and only what it owned.
fn prune(
    typed: &Typed<'_>,
    merged: Value,
    managed: &Managed,
    applier: &str,
    last: Option<&VersionedSet>,
) -> Value {
    let Some(last) = last.filter(|l| !l.set.is_empty()) else {
        return merged;
    };
    // The configuration still applies everything it applied last time (the usual re-apply):
    // nothing is left to remove, so the walks below would only find that out.
    if let Some(applied) = managed.fields.get(applier)
        && last.set.difference(&applied.set).is_empty()
    {
        return merged;
    }
    let named = |s: &Set| typed.ensure_named_fields_are_members(s);
    let fields_of = |v: &Value| typed.to_field_set(v, Duplicates::Allow).unwrap_or_default();
    let last_set = named(&last.set);
    let pruned = typed.remove_items(&merged, &last_set);

    // Add back what any manager (the applier's new configuration included) owns.
    let owned = managed
        .fields
        .values()
        .fold(Set::new(), |all, vs| all.union(&vs.set));
    let merged_set = named(&fields_of(&merged));
    let keep = named(&fields_of(&pruned)).union(&named(&owned));
    let pruned = typed.remove_items(&merged, &merged_set.difference(&keep));

    // Remove only what the applier owned: fields no one owned stay.
    let pruned_set = named(&fields_of(&pruned));
    typed.remove_items(
        &merged,
        &merged_set.difference(&pruned_set).intersection(&last_set),
    )
}

/// smd's `update`: other managers lose the fields that changed (or, unless forced, the write
/// fails with them as conflicts) and every removed field; empty managers go.
fn update_managers(
    mut managed: Managed,
    changed: &super::typed::Comparison,
    workflow: &str,
    force: bool,
) -> Result<Managed, Conflicts> {
    let touched = changed.modified.union(&changed.added);
    let conflicts: BTreeMap<String, Set> = managed
        .fields
        .iter()
        .filter(|(m, _)| m.as_str() != workflow)
        .map(|(m, vs)| (m.clone(), vs.set.intersection(&touched)))
        .filter(|(_, set)| !set.is_empty())
        .collect();
    if !force && !conflicts.is_empty() {
        return Err(Conflicts::from_managers(&conflicts));
    }
    for (manager, vs) in managed.fields.iter_mut() {
        if manager == workflow {
            continue;
        }
        if let Some(conflict) = conflicts.get(manager) {
            vs.set.subtract(conflict);
        }
        vs.set.subtract(&changed.removed);
    }
    managed.fields.retain(|_, vs| !vs.set.is_empty());
    Ok(managed)
}

/// Removes the fields no one owns from `manager`'s set (dropping it when nothing is left).
fn strip_fields(managed: &mut Managed, manager: &str) {
    if let Some(vs) = managed.fields.get_mut(manager) {
        vs.set.subtract(strip_set());
        if vs.set.is_empty() {
            managed.fields.remove(manager);
        }
    }
}

/// Merges the oldest `Update` entries into one `ancient-changes` entry per version until at
/// most `max` remain.
fn cap_update_managers(managed: &mut Managed, max: usize) {
    let mut updaters: Vec<String> = managed
        .fields
        .iter()
        .filter(|(_, vs)| !vs.applied)
        .map(|(id, _)| id.clone())
        .collect();
    if updaters.len() <= max {
        return;
    }
    let seconds = |id: &String| {
        managed
            .times
            .get(id)
            .copied()
            .flatten()
            .map_or(0, |t| t.as_second())
    };
    updaters.sort_by(|a, b| seconds(a).cmp(&seconds(b)).then_with(|| a.cmp(b)));
    let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
    let mut length = updaters.len();
    for manager in updaters {
        if length <= max {
            break;
        }
        let Some(vs) = managed.fields.get(&manager).cloned() else {
            continue;
        };
        let time = managed.times.get(&manager).copied().flatten();
        let bucket = identifier(ANCIENT_CHANGES, Operation::Update, &vs.api_version, "");
        match first_of_version.get(&vs.api_version) {
            Some(first) => {
                if !managed.fields.contains_key(&bucket)
                    && let Some(first_set) = managed.fields.remove(first)
                {
                    managed.fields.insert(bucket.clone(), first_set);
                }
                let bucket_set = managed
                    .fields
                    .get(&bucket)
                    .map(|b| b.set.clone())
                    .unwrap_or_default();
                managed.fields.insert(
                    bucket.clone(),
                    VersionedSet {
                        set: vs.set.union(&bucket_set),
                        ..vs.clone()
                    },
                );
                if manager != bucket {
                    managed.fields.remove(&manager);
                }
                length -= 1;
                managed.times.insert(bucket, time);
            }
            None => {
                first_of_version.insert(vs.api_version.clone(), manager);
            }
        }
    }
}

/// kubectl's `last-applied-configuration`, kept up to date by its server-side applies when
/// the object has one: the applied configuration without the annotation, as Go encodes it.
fn update_last_applied(object: &mut Value, config: &Value) {
    let has = metadata(object)
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LAST_APPLIED_CONFIG_ANNOTATION))
        .and_then(Value::as_str)
        .is_some_and(|v| !v.is_empty());
    if !has {
        return;
    }
    let mut last = config.clone();
    if let Some(annotations) = last
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED_CONFIG_ANNOTATION);
    }
    let text = go_json(&last) + "\n";
    let Some(annotations) = object
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    annotations.insert(LAST_APPLIED_CONFIG_ANNOTATION.into(), Value::String(text));
    let size: usize = annotations
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    // Too large an annotation is dropped rather than failing the apply.
    if size > TOTAL_ANNOTATION_SIZE_LIMIT {
        annotations.remove(LAST_APPLIED_CONFIG_ANNOTATION);
    }
}
