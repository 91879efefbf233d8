use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::{
    apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
    coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
    networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as scheduling, storage::v1 as storage,
};
use serde_json::{Value, json};

use super::*;

/// The resources skiff serves today (35 kinds).
fn builtin() -> Vec<Resource> {
    vec![
        Resource::of::<core::Namespace>(true, false),
        Resource::of::<core::Pod>(true, false),
        Resource::of::<core::Service>(true, false),
        Resource::of::<core::Endpoints>(false, false),
        Resource::of::<core::Node>(true, false),
        Resource::of::<core::ConfigMap>(false, false),
        Resource::of::<core::Secret>(false, false),
        Resource::of::<core::ServiceAccount>(false, false),
        Resource::of::<core::PersistentVolume>(true, false),
        Resource::of::<core::PersistentVolumeClaim>(true, false),
        Resource::of::<core::Event>(false, false),
        Resource::of::<core::LimitRange>(false, false),
        Resource::of::<core::ResourceQuota>(true, false),
        Resource::of::<core::ReplicationController>(true, true),
        Resource::of::<apps::Deployment>(true, true),
        Resource::of::<apps::ReplicaSet>(true, true),
        Resource::of::<apps::StatefulSet>(true, true),
        Resource::of::<apps::DaemonSet>(true, false),
        Resource::of::<apps::ControllerRevision>(false, false),
        Resource::of::<batch::Job>(true, false),
        Resource::of::<batch::CronJob>(true, false),
        Resource::of::<discovery::EndpointSlice>(false, false),
        Resource::of::<coordination::Lease>(false, false),
        Resource::of::<rbac::Role>(false, false),
        Resource::of::<rbac::ClusterRole>(false, false),
        Resource::of::<rbac::RoleBinding>(false, false),
        Resource::of::<rbac::ClusterRoleBinding>(false, false),
        Resource::of::<storage::StorageClass>(false, false),
        Resource::of::<networking::Ingress>(true, false),
        Resource::of::<networking::IngressClass>(false, false),
        Resource::of::<networking::NetworkPolicy>(false, false),
        Resource::of::<autoscaling::HorizontalPodAutoscaler>(true, false),
        Resource::of::<policy::PodDisruptionBudget>(true, false),
        Resource::of::<scheduling::PriorityClass>(false, false),
        Resource::of::<k8s_openapi::api::events::v1::Event>(false, false),
    ]
}

fn openapi() -> &'static OpenApi {
    static DOCS: OnceLock<OpenApi> = OnceLock::new();
    DOCS.get_or_init(|| OpenApi::new(&builtin()))
}

fn apps_v1() -> &'static Value {
    openapi()
        .v3_group_version("apis/apps/v1")
        .expect("apps/v1 has a document")
}

/// Follows a local reference (`#/...`) inside `doc`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// The schema a property schema stands for: itself, or what its `$ref` (bare or as the only
/// member of `allOf`) points at.
fn deref<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let reference = schema.get("$ref").or_else(|| {
        schema
            .get("allOf")
            .and_then(|all| all.get(0))
            .and_then(|first| first.get("$ref"))
    });
    match reference.and_then(Value::as_str) {
        Some(reference) => {
            let target = resolve(doc, reference).unwrap_or_else(|| panic!("{reference}"));
            deref(doc, target)
        }
        None => schema,
    }
}

/// Every `$ref` in `value` that does not resolve in `doc`.
fn dangling(doc: &Value, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, sub) in object {
                if key == "$ref" {
                    let reference = sub.as_str().unwrap_or_default();
                    if resolve(doc, reference).is_none() {
                        out.push(reference.to_string());
                    }
                } else {
                    dangling(doc, sub, out);
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|sub| dangling(doc, sub, out)),
        _ => {}
    }
}

fn assert_refs_resolve(name: &str, doc: &Value) {
    let mut out = Vec::new();
    dangling(doc, doc, &mut out);
    assert!(out.is_empty(), "{name}: dangling references {out:?}");
}

/// Finds a key anywhere in `value`; returns the JSON path of the first hit.
fn find_key(value: &Value, key: &str, path: &str) -> Option<String> {
    match value {
        Value::Object(object) => object.iter().find_map(|(k, sub)| {
            if k == key {
                Some(format!("{path}/{k}"))
            } else {
                find_key(sub, key, &format!("{path}/{k}"))
            }
        }),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .find_map(|(i, sub)| find_key(sub, key, &format!("{path}/{i}"))),
        _ => None,
    }
}

fn gvk_list(schema: &Value) -> &Vec<Value> {
    schema["x-kubernetes-group-version-kind"]
        .as_array()
        .expect("a GVK list")
}

#[test]
fn deployment_patch_declares_field_validation() {
    let doc = apps_v1();
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({ "group": "apps", "version": "v1", "kind": "Deployment" })
    );
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
    let params = patch["parameters"].as_array().expect("parameters");
    let field_validation = params
        .iter()
        .find(|p| p["name"] == "fieldValidation")
        .expect("fieldValidation parameter");
    assert_eq!(field_validation["in"], "query");
    assert_eq!(field_validation["schema"]["type"], "string");
    for name in ["dryRun", "fieldManager", "force"] {
        assert!(params.iter().any(|p| p["name"] == name), "{name}");
    }
    let content = patch["requestBody"]["content"].as_object().expect("body");
    for media in [
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ] {
        let schema = &content[media]["schema"]["$ref"];
        assert_eq!(
            schema, "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
            "{media}"
        );
    }
    assert_eq!(
        patch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
}

#[test]
fn deployment_paths_have_the_usual_operations() {
    let paths = &apps_v1()["paths"];
    let collection = &paths["/apis/apps/v1/namespaces/{namespace}/deployments"];
    assert_eq!(collection["get"]["x-kubernetes-action"], "list");
    assert_eq!(collection["post"]["x-kubernetes-action"], "post");
    assert_eq!(
        collection["delete"]["x-kubernetes-action"],
        "deletecollection"
    );
    assert_eq!(
        collection["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentList"
    );
    let all = &paths["/apis/apps/v1/deployments"]["get"];
    assert_eq!(all["operationId"], "listAppsV1DeploymentForAllNamespaces");
    let object = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    for (method, action) in [
        ("get", "get"),
        ("put", "put"),
        ("patch", "patch"),
        ("delete", "delete"),
    ] {
        assert_eq!(object[method]["x-kubernetes-action"], action, "{method}");
    }
    let path_params: Vec<&Value> = object["parameters"]
        .as_array()
        .expect("path parameters")
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(path_params, ["name", "namespace", "pretty"]);

    let status = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"];
    assert_eq!(
        status["patch"]["operationId"],
        "patchAppsV1NamespacedDeploymentStatus"
    );
    assert_eq!(
        status["put"]["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    let scale = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"],
        json!({ "group": "autoscaling", "version": "v1", "kind": "Scale" })
    );
    assert_eq!(
        scale["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"
    );
    // DaemonSets have no scale subresource.
    assert!(
        paths
            .get("/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}/scale")
            .is_none()
    );
    assert!(paths.get("/apis/apps/v1/").is_some());
}

#[test]
fn cluster_scoped_and_core_paths() {
    let core = openapi().v3_group_version("api/v1").expect("core/v1");
    let node = &core["paths"]["/api/v1/nodes/{name}"];
    assert_eq!(node["patch"]["operationId"], "patchCoreV1Node");
    assert!(
        node["patch"]["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "fieldValidation"))
    );
    assert!(
        core["paths"]
            .get("/api/v1/namespaces/{namespace}/nodes")
            .is_none()
    );
    assert!(
        core["paths"]
            .get("/api/v1/namespaces/{namespace}/pods/{name}/status")
            .is_some()
    );
    let rbac = openapi()
        .v3_group_version("/apis/rbac.authorization.k8s.io/v1")
        .expect("rbac");
    assert_eq!(
        rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles"]["get"]["operationId"],
        "listRbacAuthorizationV1ClusterRole"
    );
}

#[test]
fn deployment_schema_explains_spec_strategy() {
    let doc = apps_v1();
    let deployment = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        gvk_list(deployment),
        &vec![json!({ "group": "apps", "version": "v1", "kind": "Deployment" })]
    );
    assert!(
        deployment["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    let spec_field = &deployment["properties"]["spec"];
    assert!(
        spec_field["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    let spec = deref(doc, spec_field);
    let strategy_field = &spec["properties"]["strategy"];
    assert_eq!(
        strategy_field["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"
    );
    let strategy = deref(doc, strategy_field);
    assert!(
        strategy["description"]
            .as_str()
            .is_some_and(|d| d.contains("replace existing pods"))
    );
    assert_eq!(strategy["type"], "object");
    assert_eq!(strategy["properties"]["type"]["type"], "string");
    let rolling = deref(doc, &strategy["properties"]["rollingUpdate"]);
    let max_surge = deref(doc, &rolling["properties"]["maxSurge"]);
    assert_eq!(max_surge["format"], "int-or-string");
    assert_eq!(max_surge["x-kubernetes-int-or-string"], true);
    // What kubectl shows as the type of maxSurge is then the schema's name, IntOrString.
    assert!(max_surge.get("type").is_none());
}

#[test]
fn only_truly_required_fields_are_required() {
    let schemas = &apps_v1()["components"]["schemas"];
    assert_eq!(
        schemas["io.k8s.api.apps.v1.DeploymentSpec"]["required"],
        json!(["selector", "template"])
    );
    let deployment = &schemas["io.k8s.api.apps.v1.Deployment"]["required"];
    assert!(
        deployment
            .as_array()
            .is_none_or(|r| !r.contains(&json!("metadata")))
    );
    let status = &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Status"];
    assert!(status.get("required").is_none());
    let core = openapi().v3_group_version("api/v1").expect("core");
    let config_map = &core["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"];
    assert!(config_map.get("required").is_none());
    let event = &core["components"]["schemas"]["io.k8s.api.core.v1.Event"];
    assert_eq!(event["required"], json!(["involvedObject"]));
    let container = &core["components"]["schemas"]["io.k8s.api.core.v1.Container"];
    assert_eq!(container["required"], json!(["name"]));
}

#[test]
fn list_and_meta_kinds_are_published() {
    let schemas = &apps_v1()["components"]["schemas"];
    let list = &schemas["io.k8s.api.apps.v1.DeploymentList"];
    assert_eq!(
        gvk_list(list),
        &vec![json!({ "group": "apps", "version": "v1", "kind": "DeploymentList" })]
    );
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
    for name in [
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
        "io.k8s.api.autoscaling.v1.Scale",
        "io.k8s.api.core.v1.PodTemplateSpec",
    ] {
        assert!(schemas.get(name).is_some(), "{name}");
    }
    let delete_options = gvk_list(&schemas["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]);
    assert!(
        delete_options
            .contains(&json!({ "group": "apps", "version": "v1", "kind": "DeleteOptions" }))
    );
    assert_eq!(
        gvk_list(&schemas["io.k8s.api.autoscaling.v1.Scale"]),
        &vec![json!({ "group": "autoscaling", "version": "v1", "kind": "Scale" })]
    );
    // A group-version's document holds only what its paths need.
    assert!(schemas.get("io.k8s.api.core.v1.Node").is_none());
    assert!(schemas.get("io.k8s.api.batch.v1.Job").is_none());
}

#[test]
fn every_reference_resolves() {
    let docs = openapi();
    assert_refs_resolve("v2", docs.v2());
    let mut count = 0;
    for path in docs.v3_paths() {
        assert_refs_resolve(path, docs.v3_group_version(path).expect("listed"));
        count += 1;
    }
    assert_eq!(count, 12, "{:?}", docs.v3_paths().collect::<Vec<_>>());
}

#[test]
fn documents_use_only_their_dialect() {
    let docs = openapi();
    for path in docs.v3_paths() {
        let doc = docs.v3_group_version(path).expect("listed");
        assert_eq!(doc["openapi"], "3.0.0");
        for key in ["$defs", "definitions", "const", "$schema", "examples"] {
            assert_eq!(find_key(&doc["components"], key, ""), None, "{path}: {key}");
        }
        let mut refs = Vec::new();
        collect_refs(doc, &mut refs);
        assert!(
            refs.iter().all(|r| r.starts_with("#/components/schemas/")),
            "{path}"
        );
    }
    let v2 = docs.v2();
    assert_eq!(v2["swagger"], "2.0");
    for key in [
        "nullable",
        "oneOf",
        "anyOf",
        "allOf",
        "components",
        "requestBody",
    ] {
        assert_eq!(find_key(v2, key, ""), None, "v2: {key}");
    }
    let mut refs = Vec::new();
    collect_refs(v2, &mut refs);
    assert!(refs.iter().all(|r| r.starts_with("#/definitions/")));
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, sub) in object {
                match sub {
                    Value::String(s) if key == "$ref" => out.push(s.clone()),
                    _ => collect_refs(sub, out),
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|sub| collect_refs(sub, out)),
        _ => {}
    }
}

#[test]
fn v2_has_the_same_content() {
    let v2 = openapi().v2();
    let deployment = &v2["definitions"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        gvk_list(deployment),
        &vec![json!({ "group": "apps", "version": "v1", "kind": "Deployment" })]
    );
    // Field descriptions sit beside the reference, as in Kubernetes' v2 document.
    let spec_field = &deployment["properties"]["spec"];
    assert_eq!(
        spec_field["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(spec_field["description"].as_str().is_some());
    let spec = deref(v2, spec_field);
    let strategy = deref(v2, &spec["properties"]["strategy"]);
    assert!(strategy["description"].as_str().is_some());
    assert!(strategy["properties"]["rollingUpdate"].is_object());
    assert!(strategy["properties"]["type"].is_object());

    let patch = &v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    let params = patch["parameters"].as_array().expect("parameters");
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query" && p["type"] == "string")
    );
    let body = params.iter().find(|p| p["in"] == "body").expect("body");
    assert_eq!(
        body["schema"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
    );
    assert_eq!(patch["consumes"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        v2["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"],
        "string"
    );
    assert!(
        v2["paths"]
            .get("/api/v1/namespaces/{namespace}/pods/{name}")
            .is_some()
    );
}

#[test]
fn root_lists_group_versions_with_their_hashes() {
    let docs = openapi();
    let root = docs.v3_root()["paths"].as_object().expect("paths");
    assert_eq!(root.len(), docs.v3_paths().count());
    let apps = docs.v3_document("apis/apps/v1").expect("apps");
    assert_eq!(
        root["apis/apps/v1"]["serverRelativeURL"],
        format!("/openapi/v3/apis/apps/v1?hash={}", apps.hash())
    );
    assert!(root.contains_key("api/v1"));
    assert_eq!(apps.hash().len(), 32);
    let reparsed: Value = serde_json::from_slice(apps.json()).expect("valid JSON");
    assert_eq!(&reparsed, apps.value());
    assert_ne!(
        apps.hash(),
        docs.v3_document("api/v1").expect("core").hash()
    );
}

#[test]
fn building_is_deterministic_and_fast() {
    let resources = builtin();
    assert_eq!(resources.len(), 35);
    let mut best = Duration::MAX;
    let mut first: Option<OpenApi> = None;
    for _ in 0..3 {
        let start = Instant::now();
        let docs = OpenApi::new(&resources);
        best = best.min(start.elapsed());
        if let Some(first) = &first {
            assert_eq!(first.v2_document().hash(), docs.v2_document().hash());
            assert_eq!(
                first.v3_root_document().json(),
                docs.v3_root_document().json()
            );
        } else {
            first = Some(docs);
        }
    }
    let docs = first.expect("built");
    let v3_bytes: usize = docs
        .v3_paths()
        .filter_map(|p| docs.v3_document(p))
        .map(|d| d.json().len())
        .sum();
    eprintln!(
        "built documents for {} kinds in {best:?}: v2 {} bytes, v3 {} bytes in {} documents",
        resources.len(),
        docs.v2_document().json().len(),
        v3_bytes,
        docs.v3_paths().count()
    );
    assert!(best < Duration::from_secs(1), "{best:?}");
}

/// A kind outside k8s-openapi whose schemars output uses the full JSON Schema dialect.
struct Widget;

impl JsonSchema for Widget {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Widget".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "description": "A widget.",
            "type": "object",
            "properties": {
                "metadata": { "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" },
                "spec": { "$ref": "#/$defs/WidgetSpec", "description": "What the widget should be." },
                "size": { "type": ["integer", "null"], "format": "int32" },
                "mode": { "const": "fast" },
            },
            "$defs": {
                "WidgetSpec": {
                    "type": "object",
                    "description": "The spec of a widget.",
                    "properties": { "colour": { "type": "string", "description": "Its colour." } },
                },
            },
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

fn widget_schema(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>();
    generator.subschema_for::<Widget>()
}

#[test]
fn foreign_schemas_are_translated() {
    let widget = Resource {
        group: "example.com",
        version: "v1alpha1",
        kind: "Widget",
        plural: "widgets",
        namespaced: true,
        status: false,
        scale: false,
        schema: widget_schema,
    };
    let docs = OpenApi::new(&[widget, Resource::of::<core::ConfigMap>(false, false)]);
    let doc = docs
        .v3_group_version("apis/example.com/v1alpha1")
        .expect("widgets");
    assert_refs_resolve("widgets", doc);
    assert_refs_resolve("v2", docs.v2());
    let schemas = &doc["components"]["schemas"];
    let widget = &schemas["com.example.v1alpha1.Widget"];
    assert_eq!(
        gvk_list(widget),
        &vec![json!({ "group": "example.com", "version": "v1alpha1", "kind": "Widget" })]
    );
    assert_eq!(
        widget["properties"]["size"],
        json!({ "type": "integer", "format": "int32", "nullable": true })
    );
    assert_eq!(widget["properties"]["mode"], json!({ "enum": ["fast"] }));
    assert!(widget.get("$schema").is_none());
    let spec = deref(doc, &widget["properties"]["spec"]);
    assert_eq!(spec["properties"]["colour"]["description"], "Its colour.");
    assert!(schemas.get("com.example.v1alpha1.WidgetList").is_some());
    let patch =
        &doc["paths"]["/apis/example.com/v1alpha1/namespaces/{namespace}/widgets/{name}"]["patch"];
    assert_eq!(
        patch["operationId"],
        "patchExampleComV1alpha1NamespacedWidget"
    );
    // The widget has no scale subresource, so no document carries Scale.
    assert!(
        docs.v2()["definitions"]
            .get("io.k8s.api.autoscaling.v1.Scale")
            .is_none()
    );
}

#[test]
fn v2_protobuf_carries_the_document() {
    use crate::proto::tests::{named, one};
    let bytes = openapi().v2_protobuf();
    assert_eq!(one(bytes, 1), b"2.0");
    assert_eq!(one(one(bytes, 2), 1), b"Kubernetes");
    let definitions = one(bytes, 9);
    let deployment = named(definitions, 1, "io.k8s.api.apps.v1.Deployment");
    let extension = named(deployment, 31, "x-kubernetes-group-version-kind");
    let gvk: Value = serde_json::from_slice(one(extension, 2)).expect("JSON text");
    assert_eq!(
        gvk,
        json!([{ "group": "apps", "kind": "Deployment", "version": "v1" }])
    );
    let spec = named(one(deployment, 25), 1, "spec");
    assert_eq!(
        one(spec, 1),
        b"#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );

    let paths = one(bytes, 8);
    let object = named(
        paths,
        2,
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    );
    let patch = one(object, 8);
    assert_eq!(one(patch, 5), b"patchAppsV1NamespacedDeployment");
    let has_field_validation = crate::proto::tests::all(patch, 8).into_iter().any(|item| {
        let parameter = one(item, 1);
        let non_body = crate::proto::tests::all(parameter, 2);
        non_body
            .first()
            .is_some_and(|nb| one(one(nb, 3), 4) == b"fieldValidation")
    });
    assert!(has_field_validation);
}
