//! The REST operations of a group-version, described once and rendered both as OpenAPI 3.0
//! and as Swagger 2.0.

use serde_json::{Map, Value, json};

use crate::schema::{V2_PREFIX, V3_PREFIX, encode_pointer_token};

/// Media types of JSON request and response bodies.
const JSON: &[&str] = &["application/json"];
/// Media types of list responses: a list, or a stream of watch events with `watch=true`.
const LIST_MEDIA: &[&str] = &["application/json", "application/json;stream=watch"];
/// Media types a PATCH body may have, one per patch strategy.
const PATCH_MEDIA: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// Well-known definition names the operations refer to.
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
/// `meta/v1 Status`, returned by deletes.
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
/// `meta/v1 Patch`, the body of every PATCH.
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
/// `meta/v1 APIResourceList`, returned by group-version discovery.
pub const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
/// `autoscaling/v1 Scale`, the body of `/scale` subresources.
pub const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// A group, version and kind, as the `x-kubernetes-group-version-kind` extension spells them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn new(group: &str, version: &str, kind: &str) -> Gvk {
        Gvk {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    pub fn to_value(&self) -> Value {
        json!({ "group": self.group, "version": self.version, "kind": self.kind })
    }
}

/// What the operations of one served resource need to know.
pub struct ResourceOps<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub plural: &'a str,
    pub namespaced: bool,
    pub status: bool,
    pub scale: bool,
    /// Definition name of the kind's schema.
    pub schema: &'a str,
    /// Definition name of the list kind's schema.
    pub list_schema: &'a str,
}

#[derive(Clone, Copy)]
enum Type {
    String,
    Integer,
    Boolean,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Integer => "integer",
            Type::Boolean => "boolean",
        }
    }
}

struct Param {
    name: &'static str,
    path: bool,
    ty: Type,
    description: String,
}

impl Param {
    fn path(name: &'static str, description: String) -> Param {
        Param {
            name,
            path: true,
            ty: Type::String,
            description,
        }
    }

    fn query(name: &'static str) -> Param {
        let (ty, description) = query_param(name);
        Param {
            name,
            path: false,
            ty,
            description: description.into(),
        }
    }

    fn v3(&self) -> Value {
        let mut param = json!({
            "name": self.name,
            "in": if self.path { "path" } else { "query" },
            "description": self.description,
            "schema": { "type": self.ty.name() },
        });
        if self.path {
            param["required"] = Value::Bool(true);
        }
        param
    }

    fn v2(&self) -> Value {
        let mut param = json!({
            "name": self.name,
            "in": if self.path { "path" } else { "query" },
            "description": self.description,
            "type": self.ty.name(),
        });
        if self.path {
            param["required"] = Value::Bool(true);
        }
        param
    }
}

/// The type and description of every query parameter the operations use.
fn query_param(name: &str) -> (Type, &'static str) {
    match name {
        "pretty" => (
            Type::String,
            "If 'true', the response body is indented for reading by people.",
        ),
        "dryRun" => (
            Type::String,
            "When set, the request goes through every stage (admission, validation, defaulting) \
             but nothing is persisted. The only accepted value is 'All'.",
        ),
        "fieldManager" => (
            Type::String,
            "The name of the actor making this change, recorded in metadata.managedFields. At \
             most 128 printable characters. Required for apply patches, optional otherwise.",
        ),
        "fieldValidation" => (
            Type::String,
            "What the server does with fields of the request body it does not know, or that \
             appear twice: 'Ignore' drops them silently, 'Warn' drops them and adds one warning \
             header per field (the default), 'Strict' rejects the request, naming them.",
        ),
        "force" => (
            Type::Boolean,
            "Apply patches only: take over fields that other managers own instead of failing \
             with a conflict. Must be unset for the other patch types.",
        ),
        "gracePeriodSeconds" => (
            Type::Integer,
            "How many seconds the object gets before it is removed; a non-negative integer. \
             Zero removes it at once; unset uses the default of the kind.",
        ),
        "orphanDependents" => (
            Type::Boolean,
            "Deprecated in favour of propagationPolicy. If true, dependents are orphaned \
             rather than garbage collected.",
        ),
        "propagationPolicy" => (
            Type::String,
            "How the garbage collector treats the dependents of the deleted object: 'Orphan', \
             'Background' (the object goes first, dependents after) or 'Foreground' (dependents \
             go first).",
        ),
        "ignoreStoreReadErrorWithClusterBreakingPotential" => (
            Type::Boolean,
            "Removes the object even when it cannot be read back from storage (for instance \
             because it no longer decodes). Skips finalizers and admission: only for repairs.",
        ),
        "allowWatchBookmarks" => (
            Type::Boolean,
            "Asks for BOOKMARK events in a watch, which carry only a resourceVersion. The server \
             may send none. Ignored when not watching.",
        ),
        "continue" => (
            Type::String,
            "The continue token of the previous page of a paginated list; the next page is \
             returned. The other parameters must match those of the first request.",
        ),
        "fieldSelector" => (
            Type::String,
            "Only objects whose fields match this selector are returned. Empty selects all.",
        ),
        "labelSelector" => (
            Type::String,
            "Only objects whose labels match this selector are returned. Empty selects all.",
        ),
        "limit" => (
            Type::Integer,
            "The largest number of objects to return. When more exist, the list metadata \
             carries a continue token for the next page.",
        ),
        "resourceVersion" => (
            Type::String,
            "Which resource version the list or watch starts from; how it is matched is set \
             by resourceVersionMatch.",
        ),
        "resourceVersionMatch" => (
            Type::String,
            "How resourceVersion is matched when listing: 'Exact' or 'NotOlderThan'.",
        ),
        "sendInitialEvents" => (
            Type::Boolean,
            "With watch=true: the watch begins with ADDED events for the objects that exist, \
             then a bookmark marking the end of that initial state.",
        ),
        "timeoutSeconds" => (
            Type::Integer,
            "Ends the list or watch call after this many seconds, whatever it is doing.",
        ),
        "watch" => (
            Type::Boolean,
            "Streams add, update and delete notifications for the selected objects instead of \
             returning a list.",
        ),
        _ => (Type::String, ""),
    }
}

const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_PARAMS: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
];
const DELETE_COLLECTION_PARAMS: &[&str] = &[
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];

struct Body {
    schema: String,
    media: &'static [&'static str],
    required: bool,
}

struct Response {
    code: &'static str,
    description: &'static str,
    schema: Option<String>,
}

impl Response {
    fn with(code: &'static str, description: &'static str, schema: &str) -> Response {
        Response {
            code,
            description,
            schema: Some(schema.into()),
        }
    }

    fn unauthorized() -> Response {
        Response {
            code: "401",
            description: "Unauthorized",
            schema: None,
        }
    }
}

struct Operation {
    method: &'static str,
    id: String,
    description: String,
    action: Option<&'static str>,
    gvk: Option<Gvk>,
    params: Vec<Param>,
    body: Option<Body>,
    responses: Vec<Response>,
    produces: &'static [&'static str],
}

/// One path and its operations.
pub struct PathItem {
    /// The URL path, with `{namespace}` and `{name}` placeholders.
    pub path: String,
    params: Vec<Param>,
    ops: Vec<Operation>,
}

/// `rbac.authorization.k8s.io` → `RbacAuthorization`, `` → `Core`, `example.com` → `ExampleCom`:
/// the group as it appears in operation ids.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed
        .split(['.', '-'])
        .map(capitalize)
        .collect::<Vec<_>>()
        .concat()
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The tag of a group-version's operations: `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
pub fn tag(group: &str, version: &str) -> String {
    let camel = group_camel(group);
    let mut chars = camel.chars();
    let lower: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{lower}_{version}")
}

/// The URL prefix of a group-version: `/api/v1` or `/apis/<group>/<version>`.
pub fn group_version_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// The discovery path of a group-version's resource list.
pub fn discovery_item(group: &str, version: &str) -> PathItem {
    let prefix = group_version_prefix(group, version);
    let id = format!(
        "get{}{}APIResources",
        group_camel(group),
        capitalize(version)
    );
    PathItem {
        path: format!("{prefix}/"),
        params: Vec::new(),
        ops: vec![Operation {
            method: "get",
            id,
            description: "Lists the resources this group-version serves.".into(),
            action: None,
            gvk: None,
            params: Vec::new(),
            body: None,
            responses: vec![
                Response::with("200", "OK", API_RESOURCE_LIST),
                Response::unauthorized(),
            ],
            produces: JSON,
        }],
    }
}

/// Every path of one resource: its collection (and the all-namespaces collection when it is
/// namespaced), each object, and the subresources it has.
pub fn resource_items(r: &ResourceOps<'_>) -> Vec<PathItem> {
    let prefix = group_version_prefix(r.group, r.version);
    let gv = format!("{}{}", group_camel(r.group), capitalize(r.version));
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let id = |verb: &str, suffix: &str| format!("{verb}{gv}{scope}{}{suffix}", r.kind);
    let gvk = Gvk::new(r.group, r.version, r.kind);
    let kind = r.kind;
    let (collection, common) = if r.namespaced {
        (
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural),
            vec![Param::path(
                "namespace",
                "The namespace of the objects.".into(),
            )],
        )
    } else {
        (format!("{prefix}/{}", r.plural), Vec::new())
    };
    let object = format!("{collection}/{{name}}");
    let with_pretty = |mut params: Vec<Param>| {
        params.push(Param::query("pretty"));
        params
    };
    let object_params = |what: &str| {
        let mut params = vec![Param::path("name", format!("The name of the {what}."))];
        params.extend(
            common
                .iter()
                .map(|p| Param::path(p.name, p.description.clone())),
        );
        with_pretty(params)
    };
    let query = |names: &[&'static str]| names.iter().map(|n| Param::query(n)).collect();

    let mut items = Vec::new();
    let list = Operation {
        method: "get",
        id: id("list", ""),
        description: format!("Lists {kind} objects, or watches them for changes."),
        action: Some("list"),
        gvk: Some(gvk.clone()),
        params: query(LIST_PARAMS),
        body: None,
        responses: vec![
            Response::with("200", "OK", r.list_schema),
            Response::unauthorized(),
        ],
        produces: LIST_MEDIA,
    };
    let create = Operation {
        method: "post",
        id: id("create", ""),
        description: format!("Creates a {kind}."),
        action: Some("post"),
        gvk: Some(gvk.clone()),
        params: query(WRITE_PARAMS),
        body: Some(Body {
            schema: r.schema.into(),
            media: JSON,
            required: true,
        }),
        responses: vec![
            Response::with("200", "OK", r.schema),
            Response::with("201", "Created", r.schema),
            Response::with("202", "Accepted", r.schema),
            Response::unauthorized(),
        ],
        produces: JSON,
    };
    let delete_collection = Operation {
        method: "delete",
        id: id("deleteCollection", ""),
        description: format!("Deletes every selected {kind}."),
        action: Some("deletecollection"),
        gvk: Some(gvk.clone()),
        params: query(DELETE_COLLECTION_PARAMS),
        body: Some(Body {
            schema: DELETE_OPTIONS.into(),
            media: JSON,
            required: false,
        }),
        responses: vec![
            Response::with("200", "OK", STATUS),
            Response::unauthorized(),
        ],
        produces: JSON,
    };
    items.push(PathItem {
        path: collection.clone(),
        params: with_pretty(
            common
                .iter()
                .map(|p| Param::path(p.name, p.description.clone()))
                .collect(),
        ),
        ops: vec![list, create, delete_collection],
    });

    if r.namespaced {
        let gv_id = format!("list{gv}{}ForAllNamespaces", r.kind);
        items.push(PathItem {
            path: format!("{prefix}/{}", r.plural),
            params: with_pretty(Vec::new()),
            ops: vec![Operation {
                method: "get",
                id: gv_id,
                description: format!("Lists {kind} objects of every namespace, or watches them."),
                action: Some("list"),
                gvk: Some(gvk.clone()),
                params: query(LIST_PARAMS),
                body: None,
                responses: vec![
                    Response::with("200", "OK", r.list_schema),
                    Response::unauthorized(),
                ],
                produces: LIST_MEDIA,
            }],
        });
    }

    // read/replace/patch of the object itself and of its subresources.
    let read_write = |suffix: &str, what: &str, schema: &str, gvk: &Gvk| {
        vec![
            Operation {
                method: "get",
                id: id("read", suffix),
                description: format!("Reads the {what}."),
                action: Some("get"),
                gvk: Some(gvk.clone()),
                params: Vec::new(),
                body: None,
                responses: vec![
                    Response::with("200", "OK", schema),
                    Response::unauthorized(),
                ],
                produces: JSON,
            },
            Operation {
                method: "put",
                id: id("replace", suffix),
                description: format!("Replaces the {what}."),
                action: Some("put"),
                gvk: Some(gvk.clone()),
                params: query(WRITE_PARAMS),
                body: Some(Body {
                    schema: schema.into(),
                    media: JSON,
                    required: true,
                }),
                responses: vec![
                    Response::with("200", "OK", schema),
                    Response::with("201", "Created", schema),
                    Response::unauthorized(),
                ],
                produces: JSON,
            },
            Operation {
                method: "patch",
                id: id("patch", suffix),
                description: format!("Partially updates the {what}."),
                action: Some("patch"),
                gvk: Some(gvk.clone()),
                params: query(PATCH_PARAMS),
                body: Some(Body {
                    schema: PATCH.into(),
                    media: PATCH_MEDIA,
                    required: true,
                }),
                responses: vec![
                    Response::with("200", "OK", schema),
                    Response::with("201", "Created", schema),
                    Response::unauthorized(),
                ],
                produces: JSON,
            },
        ]
    };

    let mut ops = read_write("", &format!("{kind} with the given name"), r.schema, &gvk);
    ops.push(Operation {
        method: "delete",
        id: id("delete", ""),
        description: format!("Deletes the {kind} with the given name."),
        action: Some("delete"),
        gvk: Some(gvk.clone()),
        params: query(DELETE_PARAMS),
        body: Some(Body {
            schema: DELETE_OPTIONS.into(),
            media: JSON,
            required: false,
        }),
        responses: vec![
            Response::with("200", "OK", STATUS),
            Response::with("202", "Accepted", STATUS),
            Response::unauthorized(),
        ],
        produces: JSON,
    });
    items.push(PathItem {
        path: object.clone(),
        params: object_params(kind),
        ops,
    });

    if r.status {
        items.push(PathItem {
            path: format!("{object}/status"),
            params: object_params(kind),
            ops: read_write("Status", &format!("status of the {kind}"), r.schema, &gvk),
        });
    }
    if r.scale {
        let scale_gvk = Gvk::new("autoscaling", "v1", "Scale");
        items.push(PathItem {
            path: format!("{object}/scale"),
            params: object_params("Scale"),
            ops: read_write("Scale", &format!("scale of the {kind}"), SCALE, &scale_gvk),
        });
    }
    items
}

fn schema_ref(prefix: &str, name: &str) -> Value {
    json!({ "$ref": format!("{prefix}{}", encode_pointer_token(name)) })
}

impl Operation {
    fn extensions(&self, op: &mut Map<String, Value>) {
        if let Some(action) = self.action {
            op.insert("x-kubernetes-action".into(), action.into());
        }
        if let Some(gvk) = &self.gvk {
            op.insert("x-kubernetes-group-version-kind".into(), gvk.to_value());
        }
    }

    fn v3(&self, tag: &str) -> Value {
        let mut op = Map::new();
        op.insert("tags".into(), json!([tag]));
        op.insert("description".into(), self.description.clone().into());
        op.insert("operationId".into(), self.id.clone().into());
        if !self.params.is_empty() {
            op.insert(
                "parameters".into(),
                self.params.iter().map(Param::v3).collect(),
            );
        }
        if let Some(body) = &self.body {
            let content: Map<String, Value> = body
                .media
                .iter()
                .map(|m| {
                    (
                        (*m).to_string(),
                        json!({ "schema": schema_ref(V3_PREFIX, &body.schema) }),
                    )
                })
                .collect();
            op.insert(
                "requestBody".into(),
                json!({ "content": content, "required": body.required }),
            );
        }
        let responses: Map<String, Value> = self
            .responses
            .iter()
            .map(|resp| {
                let mut value = json!({ "description": resp.description });
                if let Some(schema) = &resp.schema {
                    let content: Map<String, Value> = self
                        .produces
                        .iter()
                        .map(|m| {
                            (
                                (*m).to_string(),
                                json!({ "schema": schema_ref(V3_PREFIX, schema) }),
                            )
                        })
                        .collect();
                    value["content"] = Value::Object(content);
                }
                (resp.code.to_string(), value)
            })
            .collect();
        op.insert("responses".into(), Value::Object(responses));
        self.extensions(&mut op);
        Value::Object(op)
    }

    fn v2(&self, tag: &str) -> Value {
        let mut op = Map::new();
        op.insert("tags".into(), json!([tag]));
        op.insert("description".into(), self.description.clone().into());
        op.insert("operationId".into(), self.id.clone().into());
        if let Some(body) = &self.body {
            op.insert("consumes".into(), json!(body.media));
        }
        op.insert("produces".into(), json!(self.produces));
        op.insert("schemes".into(), json!(["https"]));
        let mut params: Vec<Value> = Vec::new();
        if let Some(body) = &self.body {
            params.push(json!({
                "name": "body",
                "in": "body",
                "required": body.required,
                "schema": schema_ref(V2_PREFIX, &body.schema),
            }));
        }
        params.extend(self.params.iter().map(Param::v2));
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        let responses: Map<String, Value> = self
            .responses
            .iter()
            .map(|resp| {
                let mut value = json!({ "description": resp.description });
                if let Some(schema) = &resp.schema {
                    value["schema"] = schema_ref(V2_PREFIX, schema);
                }
                (resp.code.to_string(), value)
            })
            .collect();
        op.insert("responses".into(), Value::Object(responses));
        self.extensions(&mut op);
        Value::Object(op)
    }
}

impl PathItem {
    /// The OpenAPI 3.0 path item.
    pub fn v3(&self, tag_of: &str) -> Value {
        let mut item = Map::new();
        for op in &self.ops {
            item.insert(op.method.into(), op.v3(tag_of));
        }
        if !self.params.is_empty() {
            item.insert(
                "parameters".into(),
                self.params.iter().map(Param::v3).collect(),
            );
        }
        Value::Object(item)
    }

    /// The Swagger 2.0 path item.
    pub fn v2(&self, tag_of: &str) -> Value {
        let mut item = Map::new();
        for op in &self.ops {
            item.insert(op.method.into(), op.v2(tag_of));
        }
        if !self.params.is_empty() {
            item.insert(
                "parameters".into(),
                self.params.iter().map(Param::v2).collect(),
            );
        }
        Value::Object(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kubernetes_conventions() {
        assert_eq!(group_camel(""), "Core");
        assert_eq!(group_camel("apps"), "Apps");
        assert_eq!(
            group_camel("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(group_camel("stable.example.com"), "StableExampleCom");
        assert_eq!(
            tag("rbac.authorization.k8s.io", "v1"),
            "rbacAuthorization_v1"
        );
        assert_eq!(tag("", "v1"), "core_v1");
        assert_eq!(group_version_prefix("", "v1"), "/api/v1");
        assert_eq!(group_version_prefix("apps", "v1"), "/apis/apps/v1");
    }

    #[test]
    fn every_query_parameter_has_a_description() {
        for list in [
            LIST_PARAMS,
            WRITE_PARAMS,
            PATCH_PARAMS,
            DELETE_PARAMS,
            DELETE_COLLECTION_PARAMS,
            &["pretty"],
        ] {
            for name in list {
                assert!(!query_param(name).1.is_empty(), "{name}");
            }
        }
    }
}
