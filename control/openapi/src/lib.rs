//! The OpenAPI documents of skiff's apiserver: `/openapi/v2` (Swagger 2.0) and `/openapi/v3`
//! (OpenAPI 3.0, one document per group-version plus a root that lists them).
//!
//! kubectl reads them for two things:
//!
//! - `kubectl apply`/`create`/`replace` check whether the server validates fields itself: they
//!   look, in the v3 document of the object's group-version, for a PATCH operation carrying the
//!   object's `x-kubernetes-group-version-kind` and a `fieldValidation` query parameter.
//! - `kubectl explain` finds a kind's schema by the `x-kubernetes-group-version-kind` extension
//!   on the component schemas and prints it, following references.
//!
//! The documents follow the layout Kubernetes publishes: schemas named like
//! `io.k8s.api.apps.v1.Deployment`, the usual collection, object, `/status` and `/scale` paths
//! with `x-kubernetes-action` and `x-kubernetes-group-version-kind` on every operation, and the
//! standard query parameters. Schemas come from k8s-openapi's `schemars` support (see
//! [`Resource::of`]) and are translated from JSON Schema into the OpenAPI dialects.
//!
//! Everything is built once by [`OpenApi::new`]; the accessors only borrow. Serving them:
//!
//! | request | body | `Content-Type` |
//! | --- | --- | --- |
//! | `GET /openapi/v3` | [`OpenApi::v3_root_document`] | `application/json` |
//! | `GET /openapi/v3/<path>?hash=…` | [`OpenApi::v3_document`]`(path)`, 404 if `None` | `application/json` |
//! | `GET /openapi/v2`, `Accept` containing [`V2_PROTOBUF_MEDIA_TYPE`] | [`OpenApi::v2_protobuf`] | `application/octet-stream` |
//! | `GET /openapi/v2` otherwise | [`OpenApi::v2_document`] | `application/json` |
//!
//! The `hash` query parameter only makes URLs change when documents do; the document is the same
//! whatever its value. [`Document::hash`] can serve as an ETag. (kubectl rejects the protobuf
//! media type itself as a `Content-Type`, hence `application/octet-stream`.)

#![deny(missing_docs)]

mod paths;
mod proto;
mod schema;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

pub use schemars::{JsonSchema, Schema, SchemaGenerator};

use paths::{Gvk, PathItem, ResourceOps};

/// The media type of [`OpenApi::v2_protobuf`], which kubectl and client-go send in `Accept`
/// when they fetch `/openapi/v2`.
pub const V2_PROTOBUF_MEDIA_TYPE: &str = proto::MEDIA_TYPE;

/// The title of every document's `info`.
const TITLE: &str = "Kubernetes";

/// One served resource: where it lives, what it supports and how to get its schema.
#[derive(Clone, Copy, Debug)]
pub struct Resource {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version, such as `v1`.
    pub version: &'static str,
    /// Kind of one object, such as `Deployment`. The list kind is this plus `List`.
    pub kind: &'static str,
    /// Lower-case plural: the URL segment of the collection.
    pub plural: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Whether the resource has a `/status` subresource (same schema as the kind).
    pub status: bool,
    /// Whether the resource has a `/scale` subresource (an `autoscaling/v1 Scale`).
    pub scale: bool,
    /// Adds the kind's schema (and everything it references) to the generator and returns a
    /// reference to it, as [`SchemaGenerator::subschema_for`] does. An inline schema is accepted
    /// too and gets a Kubernetes-style name.
    pub schema: fn(&mut SchemaGenerator) -> Schema,
}

/// Whether a k8s-openapi scope marker is namespaced, for [`Resource::of`].
pub trait Scope {
    /// True for namespaced resources.
    const NAMESPACED: bool;
}

impl Scope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scope for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

impl Resource {
    /// Describes the k8s-openapi type `K` from its constants (group, version, kind, plural and
    /// scope), with its schema from `K`'s `JsonSchema` implementation.
    pub fn of<K>(status: bool, scale: bool) -> Resource
    where
        K: k8s_openapi::Resource + JsonSchema,
        K::Scope: Scope,
    {
        Resource {
            group: K::GROUP,
            version: K::VERSION,
            kind: K::KIND,
            plural: K::URL_PATH_SEGMENT,
            namespaced: <K::Scope as Scope>::NAMESPACED,
            status,
            scale,
            schema: SchemaGenerator::subschema_for::<K>,
        }
    }

    /// The group-version as the v3 root names it: `api/v1` or `apis/<group>/<version>`.
    pub fn group_version_path(&self) -> String {
        group_version_path(self.group, self.version)
    }
}

fn group_version_path(group: &str, version: &str) -> String {
    paths::group_version_prefix(group, version)
        .trim_start_matches('/')
        .to_string()
}

/// A built document: its JSON value, its serialized bytes and a hash of those bytes.
#[derive(Debug, Clone)]
pub struct Document {
    value: Value,
    json: Vec<u8>,
    hash: String,
}

impl Document {
    fn new(value: Value) -> Document {
        let json = serde_json::to_vec(&value).expect("a JSON value always serializes");
        let hash = hash_hex(&json);
        Document { value, json, hash }
    }

    /// The document as a JSON value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The document serialized as compact JSON, ready to be a response body.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// A hash of [`Document::json`] (32 upper-case hex digits), usable as an ETag.
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// 128-bit FNV-1a of `bytes` in upper-case hex: stable across builds, good enough to tell
/// documents apart in URLs and ETags (not a cryptographic hash).
fn hash_hex(bytes: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let hash = bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME));
    format!("{hash:032X}")
}

/// The OpenAPI documents for a set of resources, built once.
#[derive(Debug, Clone)]
pub struct OpenApi {
    v2: Document,
    v2_protobuf: Vec<u8>,
    v3_root: Document,
    v3: BTreeMap<String, Document>,
}

impl OpenApi {
    /// Builds every document for `resources`, with `info.version` `unversioned`.
    pub fn new(resources: &[Resource]) -> OpenApi {
        OpenApi::with_version(resources, "unversioned")
    }

    /// Builds every document for `resources`; `version` goes into each document's `info`.
    pub fn with_version(resources: &[Resource], version: &str) -> OpenApi {
        build(resources, version)
    }

    /// `GET /openapi/v2`: the Swagger 2.0 document of every resource.
    pub fn v2(&self) -> &Value {
        self.v2.value()
    }

    /// `GET /openapi/v3`: `{"paths": {"<group-version path>": {"serverRelativeURL": ...}}}`.
    pub fn v3_root(&self) -> &Value {
        self.v3_root.value()
    }

    /// `GET /openapi/v3/<path>`: the OpenAPI 3.0 document of one group-version, by the path the
    /// root lists (`api/v1`, `apis/apps/v1`; a leading `/` is ignored).
    pub fn v3_group_version(&self, path: &str) -> Option<&Value> {
        self.v3_document(path).map(Document::value)
    }

    /// The Swagger 2.0 document with its bytes and hash.
    pub fn v2_document(&self) -> &Document {
        &self.v2
    }

    /// `GET /openapi/v2` with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
    /// ([`V2_PROTOBUF_MEDIA_TYPE`]): the Swagger 2.0 document as the gnostic `openapi.v2.Document`
    /// protocol-buffer message. This, not the JSON form, is what kubectl and client-go read; its
    /// ETag can be the JSON document's hash.
    pub fn v2_protobuf(&self) -> &[u8] {
        &self.v2_protobuf
    }

    /// The v3 root with its bytes and hash.
    pub fn v3_root_document(&self) -> &Document {
        &self.v3_root
    }

    /// The v3 document of one group-version with its bytes and hash; the hash is the one in the
    /// root's `serverRelativeURL`.
    pub fn v3_document(&self, path: &str) -> Option<&Document> {
        self.v3.get(path.trim_start_matches('/'))
    }

    /// The group-version paths that have a v3 document, sorted.
    pub fn v3_paths(&self) -> impl Iterator<Item = &str> {
        self.v3.keys().map(String::as_str)
    }
}

/// A served resource with the definition names of its kind and list kind.
struct Named<'a> {
    resource: &'a Resource,
    schema: String,
    list_schema: String,
}

impl Named<'_> {
    fn ops(&self) -> ResourceOps<'_> {
        let r = self.resource;
        ResourceOps {
            group: r.group,
            version: r.version,
            kind: r.kind,
            plural: r.plural,
            namespaced: r.namespaced,
            status: r.status,
            scale: r.scale,
            schema: &self.schema,
            list_schema: &self.list_schema,
        }
    }
}

/// Builds every document.
fn build(resources: &[Resource], version: &str) -> OpenApi {
    let (definitions, named) = definitions(resources);

    // Paths per group-version.
    let mut groups: BTreeMap<(String, String), Vec<PathItem>> = BTreeMap::new();
    for n in &named {
        let r = n.resource;
        let items = groups
            .entry((r.group.to_string(), r.version.to_string()))
            .or_insert_with(|| vec![paths::discovery_item(r.group, r.version)]);
        items.extend(paths::resource_items(&n.ops()));
    }

    let info = json!({ "title": TITLE, "version": version });
    let mut v2_paths = Map::new();
    let mut v3 = BTreeMap::new();
    for ((group, version), items) in &groups {
        let tag = paths::tag(group, version);
        let mut v3_paths = Map::new();
        for item in items {
            v3_paths.insert(item.path.clone(), item.v3(&tag));
            v2_paths.insert(item.path.clone(), item.v2(&tag));
        }
        let v3_paths = Value::Object(v3_paths);
        let mut roots = BTreeSet::new();
        schema::referenced_names(&v3_paths, &mut roots);
        let schemas: Map<String, Value> = schema::closure(roots, &definitions)
            .into_iter()
            .filter_map(|name| definitions.get(&name).map(|s| (name, s.clone())))
            .collect();
        let document = json!({
            "openapi": "3.0.0",
            "info": info,
            "paths": v3_paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": security_schemes(),
            },
            "security": [{ "BearerToken": [] }],
        });
        v3.insert(group_version_path(group, version), Document::new(document));
    }

    let v3_root = Document::new(json!({
        "paths": v3
            .iter()
            .map(|(path, doc)| {
                (
                    path.clone(),
                    json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash()) }),
                )
            })
            .collect::<Map<String, Value>>(),
    }));

    let v2 = Document::new(json!({
        "swagger": "2.0",
        "info": info,
        "paths": v2_paths,
        "definitions": v2_definitions(&definitions),
        "securityDefinitions": security_schemes(),
        "security": [{ "BearerToken": [] }],
    }));

    let v2_protobuf = proto::document(v2.value());
    OpenApi {
        v2,
        v2_protobuf,
        v3_root,
        v3,
    }
}

fn security_schemes() -> Value {
    json!({
        "BearerToken": {
            "type": "apiKey",
            "description": "A bearer token in the Authorization header.",
            "name": "authorization",
            "in": "header",
        },
    })
}

/// Generates every schema the documents need, in canonical (OpenAPI 3.0) form, and names the
/// kind and list kind of each resource.
fn definitions(resources: &[Resource]) -> (Map<String, Value>, Vec<Named<'_>>) {
    let mut generator = SchemaSettings::openapi3()
        .with(|s| {
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator();
    use k8s_openapi::api::autoscaling::v1::Scale;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
    for add in [
        SchemaGenerator::subschema_for::<meta::DeleteOptions>,
        SchemaGenerator::subschema_for::<meta::Status>,
        SchemaGenerator::subschema_for::<meta::Patch>,
        SchemaGenerator::subschema_for::<meta::APIResourceList>,
        SchemaGenerator::subschema_for::<meta::ListMeta>,
    ] {
        add(&mut generator);
    }
    if resources.iter().any(|r| r.scale) {
        generator.subschema_for::<Scale>();
    }

    let mut inline: Vec<(String, Value)> = Vec::new();
    let mut kind_names = Vec::with_capacity(resources.len());
    for r in resources {
        let schema = (r.schema)(&mut generator);
        let reference = schema.get("$ref").and_then(Value::as_str);
        let name = match reference.and_then(schema::ref_name) {
            Some(name) if schema.as_object().is_some_and(|o| o.len() == 1) => name,
            _ => {
                let name = fallback_name(r.group, r.version, r.kind);
                inline.push((name.clone(), schema.to_value()));
                name
            }
        };
        kind_names.push(name);
    }

    let mut raw = generator.take_definitions(false);
    for (name, schema) in inline {
        raw.entry(name).or_insert(schema);
    }
    let mut definitions = Map::new();
    let mut hoisted = Map::new();
    for (name, mut schema) in raw {
        schema::canonicalize(&mut schema, &mut hoisted);
        definitions.insert(name, schema);
    }
    for (name, schema) in hoisted {
        definitions.entry(name).or_insert(schema);
    }

    let mut named = Vec::with_capacity(resources.len());
    let mut group_versions = BTreeSet::new();
    for (r, schema_name) in resources.iter().zip(kind_names) {
        group_versions.insert((r.group, r.version));
        add_gvk(
            &mut definitions,
            &schema_name,
            Gvk::new(r.group, r.version, r.kind),
        );
        let list_kind = format!("{}List", r.kind);
        let list_schema = match schema_name.rsplit_once('.') {
            Some((package, _)) => format!("{package}.{list_kind}"),
            None => list_kind.clone(),
        };
        definitions
            .entry(list_schema.clone())
            .or_insert_with(|| list_definition(r.kind, &schema_name));
        add_gvk(
            &mut definitions,
            &list_schema,
            Gvk::new(r.group, r.version, &list_kind),
        );
        named.push(Named {
            resource: r,
            schema: schema_name,
            list_schema,
        });
    }
    if resources.iter().any(|r| r.scale) {
        add_gvk(
            &mut definitions,
            paths::SCALE,
            Gvk::new("autoscaling", "v1", "Scale"),
        );
    }
    add_gvk(
        &mut definitions,
        paths::STATUS,
        Gvk::new("", "v1", "Status"),
    );
    // DeleteOptions is accepted as the body of deletes in every group-version.
    add_gvk(
        &mut definitions,
        paths::DELETE_OPTIONS,
        Gvk::new("", "v1", "DeleteOptions"),
    );
    for (group, version) in group_versions {
        add_gvk(
            &mut definitions,
            paths::DELETE_OPTIONS,
            Gvk::new(group, version, "DeleteOptions"),
        );
    }
    describe_int_or_string(&mut definitions);
    let kinds: BTreeSet<&str> = named.iter().map(|n| n.schema.as_str()).collect();
    unrequire_defaulted(&mut definitions, &kinds);
    annotate_patch_strategies(&mut definitions);
    (definitions, named)
}

/// Adds `gvk` to the `x-kubernetes-group-version-kind` list of the named definition.
fn add_gvk(definitions: &mut Map<String, Value>, name: &str, gvk: Gvk) {
    let Some(Value::Object(schema)) = definitions.get_mut(name) else {
        return;
    };
    let list = schema
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = list {
        let value = gvk.to_value();
        if !list.contains(&value) {
            list.push(value);
        }
    }
}

/// The definition name of `IntOrString`.
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";

/// k8s-openapi marks `IntOrString` only with `x-kubernetes-int-or-string`; Kubernetes also gives
/// it the format `int-or-string`. (No `type` in v3: clients then show the schema's name,
/// `IntOrString`, as the field's type; v2 gets `type: string` in [`v2_definitions`].)
fn describe_int_or_string(definitions: &mut Map<String, Value>) {
    if let Some(Value::Object(schema)) = definitions.get_mut(INT_OR_STRING)
        && !schema.contains_key("format")
    {
        schema.insert("format".into(), "int-or-string".into());
    }
}

/// k8s-openapi lists `metadata` among the required fields of every object, and `spec` among
/// those of the workload kinds: their Rust fields are not optional, though a missing one
/// deserializes to the default. Kubernetes' schemas require neither, and `kubectl explain` would
/// print them as `-required-`, so they are dropped: `metadata` wherever it is object or list
/// metadata, `spec` from the served kinds (`kinds`).
fn unrequire_defaulted(definitions: &mut Map<String, Value>, kinds: &BTreeSet<&str>) {
    const METAS: &[&str] = &[
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
    ];
    for (name, schema) in definitions.iter_mut() {
        let metadata = schema.pointer("/properties/metadata").is_some_and(|m| {
            let mut names = BTreeSet::new();
            schema::referenced_names(m, &mut names);
            names.iter().any(|n| METAS.contains(&n.as_str()))
        });
        let kind = kinds.contains(name.as_str());
        let Some(object) = schema.as_object_mut() else {
            continue;
        };
        if let Some(Value::Array(required)) = object.get_mut("required") {
            required.retain(|field| !(metadata && field == "metadata" || kind && field == "spec"));
            if required.is_empty() {
                object.remove("required");
            }
        }
    }
}

/// Marks list fields with the strategic-merge-patch metadata of the built-in types
/// (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`, and the list types). kubectl
/// computes `kubectl apply` patches from these: without them every list is atomic, and applying
/// an unchanged manifest would replace a Deployment's containers with their undefaulted form.
/// The table is the one the apiserver merges patches with, so both sides agree.
fn annotate_patch_strategies(definitions: &mut Map<String, Value>) {
    use skiff_apimachinery::patch::{BuiltinSchema, ListStrategy, PatchSchema};
    for (name, schema) in definitions.iter_mut() {
        let type_name = name.rsplit('.').next().unwrap_or(name);
        let Some(Value::Object(properties)) = schema.get_mut("properties") else {
            continue;
        };
        for (field, property) in properties.iter_mut() {
            let Some(list) = BuiltinSchema
                .field(type_name, field)
                .and_then(|info| info.list)
            else {
                continue;
            };
            let Some(property) = property.as_object_mut() else {
                continue;
            };
            match list {
                ListStrategy::MergeByKey(key) => {
                    property.insert("x-kubernetes-patch-strategy".into(), "merge".into());
                    property.insert("x-kubernetes-patch-merge-key".into(), key.into());
                }
                ListStrategy::MergePrimitives => {
                    property.insert("x-kubernetes-patch-strategy".into(), "merge".into());
                    property.insert("x-kubernetes-list-type".into(), "set".into());
                }
                ListStrategy::Replace => {}
            }
        }
    }
}

/// The Swagger 2.0 definitions: each canonical one translated, and `IntOrString` typed as
/// a string of format `int-or-string`, which is how v2 clients recognise it.
fn v2_definitions(definitions: &Map<String, Value>) -> Map<String, Value> {
    let mut out: Map<String, Value> = definitions
        .iter()
        .map(|(name, s)| (name.clone(), schema::to_v2(s)))
        .collect();
    if let Some(Value::Object(schema)) = out.get_mut(INT_OR_STRING) {
        schema.entry("type").or_insert_with(|| "string".into());
    }
    out
}

/// The schema of `<kind>List`, whose items are `kind_schema`.
fn list_definition(kind: &str, kind_schema: &str) -> Value {
    let reference = |name: &str| json!({ "$ref": format!("{}{}", schema::V3_PREFIX, schema::encode_pointer_token(name)) });
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "The group and version of the schema this object is written in, such as `v1` or `apps/v1`.",
                "type": "string",
            },
            "items": {
                "description": format!("The {kind} objects."),
                "type": "array",
                "items": reference(kind_schema),
            },
            "kind": {
                "description": "The kind of this object, in CamelCase, such as `PodList`.",
                "type": "string",
            },
            "metadata": {
                "allOf": [reference("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")],
                "description": "List metadata: the resource version of the list and, when paginated, the continue token.",
            },
        },
        "required": ["items"],
    })
}

/// A Kubernetes-style name for a kind whose schema came inline: `io.k8s.api.<group>.<version>.
/// <Kind>` for Kubernetes groups, the reversed domain otherwise.
fn fallback_name(group: &str, version: &str, kind: &str) -> String {
    if group.is_empty() {
        return format!("io.k8s.api.core.{version}.{kind}");
    }
    if let Some(short) = group.strip_suffix(".k8s.io") {
        let first = short.split('.').next().unwrap_or(short);
        return format!("io.k8s.api.{first}.{version}.{kind}");
    }
    if !group.contains('.') {
        return format!("io.k8s.api.{group}.{version}.{kind}");
    }
    let reversed: Vec<&str> = group.rsplit('.').collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

#[cfg(test)]
mod tests;
