//! The generic resource handlers: one implementation of every verb, for every kind.
//!
//! Writes follow Kubernetes' order: decode the body into the kind's canonical form (unknown
//! fields per `fieldValidation`) → fill server-owned metadata → admission → validation →
//! storage. Updates of every flavour (PUT, PATCH, `/status`, `/scale`) meet in [`write_update`],
//! which owns the spec/status split, `metadata.generation` and finalizer-driven deletion.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};
use skiff_apimachinery::patch;
use skiff_apimachinery::selector::{FieldSelector, LabelSelector};
use skiff_apimachinery::validation::{self, FieldError, FieldPath};

use crate::Server;
use crate::admission::Attributes;
use crate::encode::json_response;
use crate::error::{ApiError, ApiResult, Subject};
use crate::meta;
use crate::registry::{Column, Kind, ResourceInfo, Subresource};
use crate::request::RequestInfo;
use crate::storage::{Continue, subject};

/// How long a consistent list waits for the watch cache before reading the store instead.
const CACHE_WAIT: Duration = Duration::from_millis(100);
/// How often a write that lost a race is retried when the request did not pin a version.
const MAX_RETRIES: usize = 16;

/// One resource request being served.
pub(crate) struct Ctx<'a> {
    pub server: &'a Server,
    pub kind: &'a Arc<dyn Kind>,
    pub request: &'a RequestInfo,
    pub query: &'a HashMap<String, String>,
    pub headers: &'a HeaderMap,
}

impl Ctx<'_> {
    pub fn info(&self) -> &ResourceInfo {
        self.kind.info()
    }

    pub fn ns(&self) -> Option<&str> {
        self.request.namespace.as_deref()
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn dry_run(&self) -> bool {
        self.param("dryRun") == Some("All")
    }

    fn subject<'b>(&'b self, name: &'b str) -> Subject<'b> {
        subject(self.info(), name)
    }

    fn kind_subject<'b>(&'b self, name: &'b str) -> Subject<'b> {
        Subject {
            group: self.info().group,
            resource: self.info().kind,
            name,
        }
    }
}

/// A successful answer: status code, body, and warnings for the `Warning` header.
pub(crate) struct Answer {
    code: StatusCode,
    body: Value,
    /// The body already encoded (lists served from the watch cache's serialized objects);
    /// when set, `body` is unused.
    raw: Option<Vec<u8>>,
    warnings: Vec<String>,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Answer {
            code: StatusCode::OK,
            body,
            raw: None,
            warnings: Vec::new(),
        }
    }
}

/// Serves one resource request.
pub async fn serve(
    server: &Server,
    request: RequestInfo,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let Some(kind) = server
        .registry
        .lookup(&request.group, &request.version, &request.resource)
    else {
        return ApiError::not_found_path(&format!("/{}/{}", request.group, request.resource))
            .into_response();
    };
    if request.namespace.is_some() && !kind.info().namespaced {
        return ApiError::not_found_path(&request.resource).into_response();
    }
    let ctx = Ctx {
        server,
        kind,
        request: &request,
        query,
        headers,
    };
    let sub = request.subresource.as_deref();
    if let Some(sub) = sub {
        let known = kind.info().subresources.iter().any(|s| s.name() == sub);
        if !known {
            return ApiError::not_found_path(sub).into_response();
        }
    }
    if request.verb == "watch" && sub.is_none() {
        return crate::watch::serve(&ctx).await;
    }
    if matches!(request.verb, "create" | "update")
        && let Err(err) = check_encoding(&ctx)
    {
        return err.into_response();
    }
    let result = match (request.verb, sub) {
        ("get", None | Some("status")) => get(&ctx).await,
        ("get", Some("scale")) => get(&ctx).await.map(|a| Answer::ok(scale_view(&a.body))),
        ("get", Some("log")) => Err(ApiError::bad_request(
            "pod logs are served by the node agent, which is not running on this cluster yet",
        )),
        ("list", None) => list(&ctx).await,
        ("create", None) => create(&ctx, &body).await,
        ("create", Some("binding")) => bind(&ctx, &body).await,
        ("update", None) => put(&ctx, &body, Part::Main).await,
        ("update", Some("status")) => put(&ctx, &body, Part::Status).await,
        ("update", Some("scale")) => put(&ctx, &body, Part::Scale).await,
        ("patch", None) => patch(&ctx, &body, Part::Main).await,
        ("patch", Some("status")) => patch(&ctx, &body, Part::Status).await,
        ("patch", Some("scale")) => patch(&ctx, &body, Part::Scale).await,
        ("delete", None) => delete(&ctx, &body).await,
        ("deletecollection", None) => delete_collection(&ctx, &body).await,
        (verb, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb})"
        ))),
    };
    match result {
        Ok(answer) => respond(&ctx, answer),
        Err(err) => err.into_response(),
    }
}

fn respond(ctx: &Ctx<'_>, answer: Answer) -> Response {
    if let Some(raw) = answer.raw {
        let mut response = (answer.code, raw).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return response;
    }
    let body = if wants_table(ctx.headers)
        && matches!(ctx.request.verb, "get" | "list")
        && ctx.request.subresource.is_none()
    {
        to_table(ctx, &answer.body)
    } else {
        answer.body
    };
    let mut response = json_response(answer.code, &body);
    for warning in answer.warnings {
        let text = format!("299 - {}", serde_json::Value::String(warning));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

fn name_of<'a>(ctx: &'a Ctx<'_>) -> ApiResult<&'a str> {
    ctx.request
        .name
        .as_deref()
        .ok_or_else(|| ApiError::method_not_allowed("a name is required"))
}

async fn get(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    let name = name_of(ctx)?;
    let obj = ctx.server.storage.get(ctx.info(), ctx.ns(), name).await?;
    Ok(Answer::ok(obj))
}

/// Parsed `labelSelector` and `fieldSelector`.
pub(crate) struct Filter {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    pub fn from_query(ctx: &Ctx<'_>) -> ApiResult<Filter> {
        let labels = ctx
            .param("labelSelector")
            .map(LabelSelector::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = ctx
            .param("fieldSelector")
            .map(FieldSelector::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
        if let Some(fields) = &fields {
            for field in fields.fields() {
                let generic = matches!(field, "metadata.name" | "metadata.namespace");
                if !generic && !ctx.kind.field_labels().contains(&field) {
                    return Err(ApiError::bad_request(format!(
                        "field label not supported: {field}"
                    )));
                }
            }
        }
        Ok(Filter { labels, fields })
    }

    pub fn matches(&self, kind: &dyn Kind, obj: &Value) -> bool {
        if let Some(labels) = &self.labels
            && !labels.matches(&meta::labels(obj))
        {
            return false;
        }
        if let Some(fields) = &self.fields {
            return fields.matches(|field| match field {
                "metadata.name" => meta::name(obj).map(str::to_owned),
                "metadata.namespace" => meta::namespace(obj).map(str::to_owned),
                other => kind.field(obj, other),
            });
        }
        true
    }

    fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }
}

fn list_body(info: &ResourceInfo, items: Vec<Value>, revision: i64, next: Option<String>) -> Value {
    let mut metadata = json!({ "resourceVersion": revision.to_string() });
    if let Some(next) = next {
        metadata["continue"] = json!(next);
    }
    json!({
        "kind": info.list_kind(),
        "apiVersion": info.api_version(),
        "metadata": metadata,
        "items": items,
    })
}

async fn list(ctx: &Ctx<'_>) -> ApiResult<Answer> {
    let filter = Filter::from_query(ctx)?;
    let info = ctx.info();
    let prefix = info.namespace_prefix(ctx.ns());
    let limit: usize = match ctx.param("limit") {
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        None => 0,
    };
    let rv = ctx.param("resourceVersion");
    let exact = ctx.param("resourceVersionMatch") == Some("Exact");
    let requested: Option<i64> = match rv {
        Some(rv) => Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?,
        ),
        None => None,
    };
    let token = ctx
        .param("continue")
        .map(|t| Continue::decode(t, &prefix))
        .transpose()?;

    // Served by the store: continuations, exact revisions and paginated consistent lists.
    let from_store =
        token.is_some() || exact || (limit > 0 && requested.unwrap_or(0) == 0 && rv != Some("0"));
    if !from_store {
        let caches = &ctx.server.caches;
        let cache = caches
            .get(info.group, info.plural)
            .expect("every kind has a cache");
        let fresh = match requested {
            Some(0) => true,
            Some(at_least) => caches.wait_for(at_least, CACHE_WAIT).await,
            None => {
                let current = ctx
                    .server
                    .storage
                    .store
                    .current_revision()
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                caches.wait_for(current, CACHE_WAIT).await
            }
        };
        if fresh {
            let (objects, revision) = cache.list(&prefix, &caches.revision);
            let matching = objects
                .iter()
                .filter(|o| filter.matches(ctx.kind.as_ref(), o));
            if wants_table(ctx.headers) {
                let items = matching.map(|o| o.value.clone()).collect();
                return Ok(Answer::ok(list_body(info, items, revision, None)));
            }
            // Splice the cached JSON of each object into the list: no copy of the values and
            // no second serialization.
            let head = json!({
                "kind": info.list_kind(),
                "apiVersion": info.api_version(),
                "metadata": { "resourceVersion": revision.to_string() },
            });
            let mut raw = serde_json::to_vec(&head).expect("JSON values always serialize");
            raw.pop(); // the closing brace
            raw.extend_from_slice(br#","items":["#);
            for (i, object) in matching.enumerate() {
                if i > 0 {
                    raw.push(b',');
                }
                raw.extend_from_slice(&object.json);
            }
            raw.extend_from_slice(b"]}");
            return Ok(Answer {
                raw: Some(raw),
                ..Answer::ok(Value::Null)
            });
        }
    }
    let at = if exact || requested.is_some_and(|r| r > 0) && token.is_none() {
        requested
    } else {
        None
    };
    let mut items = Vec::new();
    let mut from = token;
    let mut revision = at;
    loop {
        let want = if limit == 0 { 0 } else { limit - items.len() };
        let page = ctx
            .server
            .storage
            .page(&prefix, want, from.as_ref(), revision)
            .await?;
        revision = Some(page.revision);
        items.extend(
            page.items
                .into_iter()
                .filter(|o| filter.matches(ctx.kind.as_ref(), o)),
        );
        from = page.next;
        if from.is_none() || (limit > 0 && items.len() >= limit) || filter.is_empty() {
            break;
        }
    }
    let next = from.map(|c| c.encode());
    Ok(Answer::ok(list_body(
        info,
        items,
        revision.unwrap_or(0),
        next,
    )))
}

// ---------------------------------------------------------------------------------------------
// Body decoding and validation
// ---------------------------------------------------------------------------------------------

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// Checks that a write's body is in an encoding the server reads: JSON, or Kubernetes protobuf
/// (what kubectl's typed clients send for `kubectl create ...`).
fn check_encoding(ctx: &Ctx<'_>) -> ApiResult<()> {
    match content_type(ctx.headers).as_str() {
        "" | "application/json" | "*/*" | "application/yaml" => Ok(()),
        ct if skiff_protobuf::is_protobuf(ct) => Ok(()),
        other if matches!(ctx.request.verb, "patch") && other.ends_with("+json") => Ok(()),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// Reads a create/update body as JSON, decoding protobuf first when that is what was sent.
fn parse_body(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Value> {
    let content_type = content_type(ctx.headers);
    if content_type == "application/yaml" {
        let value: Value = serde_saphyr::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid YAML: {e}"))
        })?;
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a YAML mapping",
            ));
        }
        return Ok(value);
    }
    if skiff_protobuf::is_protobuf(&content_type) {
        return skiff_protobuf::decode(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the request body is not valid Kubernetes protobuf: {e}"
            ))
        });
    }
    parse_json(body)
}

/// Parses a JSON body.
fn parse_json(body: &[u8]) -> ApiResult<Value> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

/// Decodes a body into the kind's canonical form, honouring `fieldValidation`.
/// Checks that a body's `apiVersion` and `kind`, when given, are the URL's.
fn check_type_meta(ctx: &Ctx<'_>, obj: &Value) -> ApiResult<()> {
    let info = ctx.info();
    let expected_version = info.api_version();
    if let Some(version) = obj.get("apiVersion").and_then(Value::as_str)
        && version != expected_version
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({version}) does not match the expected API version ({expected_version})"
        )));
    }
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && kind != info.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            info.kind
        )));
    }
    if obj
        .get("metadata")
        .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return Err(ApiError::bad_request(format!(
            "error decoding {} {expected_version}: metadata must be an object",
            info.kind
        )));
    }
    Ok(())
}

/// Decodes a body into the kind's canonical form, honouring `fieldValidation`. For a new
/// object (`new`), also prepares and validates it in the same pass; returns the errors found.
fn decode(
    ctx: &Ctx<'_>,
    obj: &Value,
    new: bool,
    warnings: &mut Vec<String>,
) -> ApiResult<(Value, Vec<FieldError>)> {
    check_type_meta(ctx, obj)?;
    let info = ctx.info();
    let decoded = if new {
        ctx.kind.decode_new(obj)
    } else {
        ctx.kind.decode(obj)
    };
    let decoded = decoded.map_err(|e| {
        ApiError::bad_request(format!(
            "error decoding {} {}: {e}",
            info.kind,
            info.api_version()
        ))
    })?;
    if !decoded.unknown_fields.is_empty() {
        let problems: Vec<String> = decoded
            .unknown_fields
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        match ctx.param("fieldValidation").unwrap_or("Warn") {
            "Strict" => {
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    problems.join(", ")
                )));
            }
            "Ignore" => {}
            _ => warnings.extend(problems),
        }
    }
    Ok((decoded.object, decoded.errors))
}

/// Which validator names of a resource must pass.
fn name_rule(info: &ResourceInfo) -> fn(&str) -> Vec<String> {
    match (info.group, info.plural) {
        ("", "namespaces") => validation::is_dns1123_label,
        ("", "services") => validation::is_dns1035_label,
        ("rbac.authorization.k8s.io", _) => path_segment_name,
        _ => validation::is_dns1123_subdomain,
    }
}

/// Names that only need to be usable as one URL path segment (RBAC objects).
fn path_segment_name(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name == "." || name == ".." {
        problems.push(format!("may not be '{name}'"));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            problems.push(format!("may not contain '{bad}'"));
        }
    }
    problems
}

/// The ObjectMeta rules every kind shares.
fn validate_meta(ctx: &Ctx<'_>, obj: &Value) -> Vec<FieldError> {
    let info = ctx.info();
    let meta: ObjectMeta = serde_json::from_value(obj["metadata"].clone()).unwrap_or_default();
    validation::validate_object_meta(
        &meta,
        info.namespaced,
        name_rule(info),
        &FieldPath::new("metadata"),
    )
}

/// 422 Invalid if there are errors.
fn reject(ctx: &Ctx<'_>, obj: &Value, errors: &[FieldError]) -> ApiResult<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let name = meta::name(obj)
        .or(meta::get(obj, "generateName"))
        .unwrap_or("");
    Err(ApiError::invalid(ctx.kind_subject(name), errors))
}

/// Validates an update of `old` to `obj`.
fn validate_update(ctx: &Ctx<'_>, obj: &Value, old: &Value) -> ApiResult<()> {
    let mut errors = validate_meta(ctx, obj);
    errors.extend(ctx.kind.validate_update(obj, old));
    reject(ctx, obj, &errors)
}

// ---------------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------------

async fn create(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Answer> {
    let mut warnings = Vec::new();
    let mut obj = parse_body(ctx, body)?;
    check_type_meta(ctx, &obj)?;
    let info = ctx.info();
    if info.namespaced {
        let ns = ctx.ns().map(str::to_owned).ok_or_else(|| {
            ApiError::bad_request("a namespace is required to create a namespaced object")
        })?;
        if let Some(given) = meta::namespace(&obj)
            && given != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta::set(&mut obj, "namespace", Some(json!(ns)));
    } else {
        meta::set(&mut obj, "namespace", None);
    }
    if meta::name(&obj).is_none()
        && let Some(prefix) = meta::get(&obj, "generateName").map(str::to_owned)
    {
        meta::set(
            &mut obj,
            "name",
            Some(json!(format!("{prefix}{}", meta::name_suffix()))),
        );
    }
    prepare_for_create(info, &mut obj);
    // One typed pass: defaults, the kind's own preparation, and its validation.
    let (mut obj, mut errors) = decode(ctx, &obj, true, &mut warnings)?;
    let attrs = Attributes {
        request: ctx.request,
        info,
        old: None,
    };
    ctx.server.admission.run(&attrs, &mut obj).await?;
    if !ctx.server.admission.mutating.is_empty() {
        // A mutating plugin may have changed what was validated.
        errors = ctx.kind.validate(&obj);
    }
    errors.extend(validate_meta(ctx, &obj));
    reject(ctx, &obj, &errors)?;
    let name = meta::name(&obj).unwrap_or_default().to_owned();
    let stored = if ctx.dry_run() {
        obj
    } else {
        let claimed = match is_service(info) {
            true => ctx.server.allocator.allocate(&mut obj, None).await?,
            false => Vec::new(),
        };
        let created = ctx.server.storage.create(info, ctx.ns(), &name, obj).await;
        if created.is_err() {
            ctx.server.allocator.undo(&claimed).await;
        }
        created?
    };
    Ok(Answer {
        raw: None,
        code: StatusCode::CREATED,
        body: stored,
        warnings,
    })
}

/// Server-owned metadata and status of a new object.
fn prepare_for_create(info: &ResourceInfo, obj: &mut Value) {
    let m = meta::metadata_mut(obj);
    m.insert("uid".into(), json!(meta::new_uid()));
    m.insert("creationTimestamp".into(), json!(meta::now()));
    m.insert("generation".into(), json!(1));
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        m.remove(field);
    }
    // The status of a kind with a status subresource is the controllers' to write, not the
    // creator's; nodes are the exception (the kubelet registers with a status).
    if info.has(Subresource::Status)
        && info.plural != "nodes"
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    if (info.group, info.plural) == ("", "namespaces") {
        prepare_namespace(obj);
    }
}

/// A new namespace is Active, finalized by `kubernetes`, and labelled with its name. This runs
/// on the request body before it is decoded, so it leaves wrongly-typed fields for the decoder
/// to reject rather than indexing into them.
fn prepare_namespace(obj: &mut Value) {
    let name = meta::name(obj).unwrap_or_default().to_owned();
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    map.insert("status".into(), json!({ "phase": "Active" }));
    let spec = map.entry("spec").or_insert_with(|| json!({}));
    if let Some(spec) = spec.as_object_mut() {
        spec.entry("finalizers")
            .or_insert_with(|| json!(["kubernetes"]));
    }
    let m = meta::metadata_mut(obj);
    if let Some(labels) = m
        .entry("labels")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
}

// ---------------------------------------------------------------------------------------------
// Updates: PUT, PATCH, /status, /scale
// ---------------------------------------------------------------------------------------------

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// Everything but the status (for kinds with a status subresource).
    Main,
    /// Only the status.
    Status,
    /// Only `spec.replicas`, through an `autoscaling/v1 Scale`.
    Scale,
}

/// The `Scale` view of a scalable object.
fn scale_view(obj: &Value) -> Value {
    let selector = obj["spec"]["selector"].clone();
    let selector = match selector
        .get("matchLabels")
        .or(selector.get("matchExpressions"))
    {
        Some(_) => serde_json::from_value(selector)
            .ok()
            .and_then(|s| LabelSelector::from_api(&s).ok())
            .map(|s| s.to_string())
            .unwrap_or_default(),
        // ReplicationControllers have a plain map selector.
        None => selector
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
    };
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": { "replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1) },
        "status": { "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector },
    })
}

impl Part {
    /// The answer to a successful write of this part: the stored object, or its Scale view.
    fn answer(self, stored: Value, warnings: Vec<String>) -> Answer {
        let body = match self {
            Part::Scale => scale_view(&stored),
            Part::Main | Part::Status => stored,
        };
        Answer {
            warnings,
            ..Answer::ok(body)
        }
    }

    /// What a client sees (and patches) of `current`.
    fn view(self, current: &Value) -> Value {
        match self {
            Part::Main | Part::Status => current.clone(),
            Part::Scale => scale_view(current),
        }
    }

    /// Decodes a client's full replacement of the view.
    fn decode(self, ctx: &Ctx<'_>, view: &Value, warnings: &mut Vec<String>) -> ApiResult<Value> {
        match self {
            Part::Main | Part::Status => decode(ctx, view, false, warnings).map(|(obj, _)| obj),
            Part::Scale => {
                if view
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k != "Scale")
                {
                    return Err(ApiError::bad_request(
                        "the body of a scale request must be a Scale",
                    ));
                }
                if view["spec"]["replicas"].as_i64().is_some_and(|r| r < 0) {
                    let errors = [FieldError::invalid(
                        "spec.replicas",
                        view["spec"]["replicas"].clone(),
                        "must be greater than or equal to 0",
                    )];
                    return Err(ApiError::invalid(
                        Subject {
                            group: "autoscaling",
                            resource: "Scale",
                            name: ctx.request.name.as_deref().unwrap_or(""),
                        },
                        &errors,
                    ));
                }
                Ok(view.clone())
            }
        }
    }

    /// The object after writing `new` (a decoded view) onto `current`.
    fn merge(self, info: &ResourceInfo, current: &Value, new: Value) -> Value {
        match self {
            Part::Main => {
                let mut new = new;
                if info.has(Subresource::Status) {
                    match current.get("status") {
                        Some(status) => new["status"] = status.clone(),
                        None => {
                            if let Some(map) = new.as_object_mut() {
                                map.remove("status");
                            }
                        }
                    }
                }
                new
            }
            Part::Status => {
                let mut merged = current.clone();
                match new.get("status") {
                    Some(status) => merged["status"] = status.clone(),
                    None => {
                        if let Some(map) = merged.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
                merged
            }
            Part::Scale => {
                let mut merged = current.clone();
                merged["spec"]["replicas"] = new["spec"]["replicas"].clone();
                merged
            }
        }
    }
}

/// Writes `new` (already merged onto `current`) as an update of `current`.
async fn write_update(ctx: &Ctx<'_>, current: &Value, mut new: Value) -> ApiResult<Value> {
    let info = ctx.info();
    // Server-owned metadata carries over whatever the client sent.
    let cm = current["metadata"].clone();
    {
        let m = meta::metadata_mut(&mut new);
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
        ] {
            match cm.get(field) {
                Some(v) => m.insert(field.to_owned(), v.clone()),
                None => m.remove(field),
            };
        }
        m.remove("resourceVersion");
    }
    if meta::spec_part(&new) != meta::spec_part(current) {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        meta::set(&mut new, "generation", Some(json!(generation)));
    }
    let attrs = Attributes {
        request: ctx.request,
        info,
        old: Some(current),
    };
    ctx.server.admission.run(&attrs, &mut new).await?;
    validate_update(ctx, &new, current)?;
    let revision = meta::resource_version(current).unwrap_or(0);
    let mut unchanged = current.clone();
    meta::set(&mut unchanged, "resourceVersion", None);
    if new == unchanged || ctx.dry_run() {
        if ctx.dry_run() {
            meta::set_resource_version(&mut new, revision);
            return Ok(new);
        }
        return Ok(current.clone());
    }
    let name = meta::name(current).unwrap_or_default();
    // The last finalizer of an object being deleted is gone: the deletion completes now.
    if meta::is_deleting(&new) && meta::finalizers(&new).is_empty() {
        return remove(ctx, current).await;
    }
    let claimed = match is_service(info) {
        true => {
            ctx.server
                .allocator
                .allocate(&mut new, Some(current))
                .await?
        }
        false => Vec::new(),
    };
    let updated = ctx
        .server
        .storage
        .update(info, ctx.ns(), name, new, revision)
        .await;
    match &updated {
        Ok(stored) if is_service(info) => ctx.server.allocator.release(current, Some(stored)).await,
        Err(_) => ctx.server.allocator.undo(&claimed).await,
        Ok(_) => {}
    }
    updated
}

fn is_service(info: &ResourceInfo) -> bool {
    (info.group, info.plural) == ("", "services")
}

/// Removes `current` from the store (if unchanged since read) and releases what it held.
async fn remove(ctx: &Ctx<'_>, current: &Value) -> ApiResult<Value> {
    let info = ctx.info();
    let name = meta::name(current).unwrap_or_default();
    let revision = meta::resource_version(current).unwrap_or(0);
    let removed = ctx
        .server
        .storage
        .delete(info, ctx.ns(), name, revision)
        .await?;
    if is_service(info) {
        ctx.server.allocator.release(current, None).await;
    }
    Ok(removed)
}

/// The resourceVersion a request pins, if any.
fn pinned_version(obj: &Value) -> Option<i64> {
    meta::resource_version(obj)
}

async fn put(ctx: &Ctx<'_>, body: &[u8], part: Part) -> ApiResult<Answer> {
    let name = name_of(ctx)?;
    let info = ctx.info();
    let mut warnings = Vec::new();
    let raw = parse_body(ctx, body)?;
    let view = part.decode(ctx, &raw, &mut warnings)?;
    if let Some(given) = meta::name(&view)
        && given != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({given}) does not match the name on the URL ({name})"
        )));
    }
    if let (Some(given), Some(ns)) = (meta::namespace(&view), ctx.ns())
        && given != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let pinned = pinned_version(&raw);
    for _ in 0..MAX_RETRIES {
        let current = ctx.server.storage.get(info, ctx.ns(), name).await?;
        if pinned.is_some_and(|p| Some(p) != meta::resource_version(&current)) {
            return Err(ApiError::stale(ctx.subject(name)));
        }
        let new = part.merge(info, &current, view.clone());
        match write_update(ctx, &current, new).await {
            Err(err) if err.reason == "Conflict" && pinned.is_none() => continue,
            Err(err) => return Err(err),
            Ok(stored) => return Ok(part.answer(stored, warnings)),
        }
    }
    Err(ApiError::stale(ctx.subject(name)))
}

fn apply_patch(
    kind: &str,
    content_type: &str,
    view: &Value,
    patch_body: &[u8],
) -> ApiResult<Value> {
    let patch_doc: Value = serde_json::from_slice(patch_body)
        .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?;
    let invalid = |e: patch::PatchError| {
        ApiError::new(
            422,
            "Invalid",
            format!("the patch could not be applied: {e}"),
        )
    };
    match content_type {
        "application/json-patch+json" => patch::json_patch(view, &patch_doc).map_err(invalid),
        "application/merge-patch+json" => Ok(patch::merge_patch(view, &patch_doc)),
        "application/strategic-merge-patch+json" => {
            patch::strategic_merge_patch(view, &patch_doc, &patch::BuiltinSchema, kind)
                .map_err(invalid)
        }
        "application/apply-patch+yaml" => Err(ApiError::unsupported_media_type(
            "application/apply-patch+yaml (server-side apply is not supported yet; use client-side kubectl apply)",
        )),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

async fn patch(ctx: &Ctx<'_>, body: &[u8], part: Part) -> ApiResult<Answer> {
    let name = name_of(ctx)?;
    let info = ctx.info();
    let content_type = content_type(ctx.headers);
    let view_kind = if part == Part::Scale {
        "Scale"
    } else {
        info.kind
    };
    for _ in 0..MAX_RETRIES {
        let current = ctx.server.storage.get(info, ctx.ns(), name).await?;
        let view = part.view(&current);
        let patched = apply_patch(view_kind, &content_type, &view, body)?;
        let pinned = pinned_version(&patched).filter(|p| Some(*p) != meta::resource_version(&view));
        if pinned.is_some() {
            return Err(ApiError::stale(ctx.subject(name)));
        }
        let mut warnings = Vec::new();
        let decoded = part.decode(ctx, &patched, &mut warnings)?;
        if meta::name(&decoded).is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(
                "the patch may not change the object's name",
            ));
        }
        let new = part.merge(info, &current, decoded);
        match write_update(ctx, &current, new).await {
            Err(err) if err.reason == "Conflict" => continue,
            Err(err) => return Err(err),
            Ok(stored) => return Ok(part.answer(stored, warnings)),
        }
    }
    Err(ApiError::stale(ctx.subject(name)))
}

/// `POST pods/<name>/binding`: assigns the pod to a node, once.
async fn bind(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Answer> {
    let name = name_of(ctx)?;
    let binding = parse_body(ctx, body)?;
    let node = binding["target"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                Subject {
                    group: "",
                    resource: "Binding",
                    name,
                },
                &[FieldError::required("target.name", "")],
            )
        })?
        .to_owned();
    for _ in 0..MAX_RETRIES {
        let current = ctx.server.storage.get(ctx.info(), ctx.ns(), name).await?;
        if meta::is_deleting(&current) {
            return Err(ApiError::conflict(
                ctx.subject(name),
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        if let Some(assigned) = current["spec"]["nodeName"]
            .as_str()
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict(
                ctx.subject(name),
                &format!("pod {name} is already assigned to node \"{assigned}\""),
            ));
        }
        let mut new = current.clone();
        new["spec"]["nodeName"] = json!(node);
        match write_update(ctx, &current, new).await {
            Err(err) if err.reason == "Conflict" => continue,
            Err(err) => return Err(err),
            Ok(_) => {
                return Ok(Answer {
                    raw: None,
                    code: StatusCode::CREATED,
                    body: success(ctx, name, None),
                    warnings: Vec::new(),
                });
            }
        }
    }
    Err(ApiError::stale(ctx.subject(name)))
}

// ---------------------------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------------------------

fn success(ctx: &Ctx<'_>, name: &str, uid: Option<&str>) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": { "name": name, "group": ctx.info().group, "kind": ctx.info().plural, "uid": uid },
    })
}

/// Delete options from the body (a `DeleteOptions`) and the query.
struct DeleteOptions {
    grace_period: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    resource_version: Option<i64>,
}

fn delete_options(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<DeleteOptions> {
    let opts = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_body(ctx, body)?
    };
    let query_grace = ctx.param("gracePeriodSeconds").and_then(|g| g.parse().ok());
    Ok(DeleteOptions {
        grace_period: opts["gracePeriodSeconds"].as_i64().or(query_grace),
        propagation: opts["propagationPolicy"]
            .as_str()
            .or(ctx.param("propagationPolicy"))
            .map(str::to_owned),
        uid: opts["preconditions"]["uid"].as_str().map(str::to_owned),
        resource_version: opts["preconditions"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse().ok()),
    })
}

async fn delete(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Answer> {
    let name = name_of(ctx)?;
    let options = delete_options(ctx, body)?;
    delete_one(ctx, name, &options).await
}

/// Deletes one object, or marks it for deletion when finalizers or a grace period hold it.
async fn delete_one(ctx: &Ctx<'_>, name: &str, options: &DeleteOptions) -> ApiResult<Answer> {
    let info = ctx.info();
    for _ in 0..MAX_RETRIES {
        let current = ctx.server.storage.get(info, ctx.ns(), name).await?;
        if let Some(uid) = &options.uid
            && meta::get(&current, "uid") != Some(uid.as_str())
        {
            return Err(ApiError::conflict(
                ctx.subject(name),
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta::get(&current, "uid").unwrap_or("")
                ),
            ));
        }
        if let Some(rv) = options.resource_version
            && Some(rv) != meta::resource_version(&current)
        {
            return Err(ApiError::conflict(
                ctx.subject(name),
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta::resource_version(&current).unwrap_or(0)
                ),
            ));
        }
        let mut marked = current.clone();
        let mut finalizers = meta::finalizers(&current);
        match options.propagation.as_deref() {
            Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                finalizers.push("orphan".into())
            }
            Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                finalizers.push("foregroundDeletion".into())
            }
            _ => {}
        }
        let grace = graceful_deletion_period(info, &current, options.grace_period);
        let revision = meta::resource_version(&current).unwrap_or(0);
        let is_namespace = (info.group, info.plural) == ("", "namespaces");
        if is_namespace && crate::namespaces::IMMORTAL.contains(&name) {
            return Err(ApiError::forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        // A namespace is held by its `spec.finalizers` until its contents are gone.
        let held_by_spec = is_namespace
            && current["spec"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
        let result = if finalizers.is_empty() && grace == 0 && !held_by_spec {
            if ctx.dry_run() {
                Ok(current.clone())
            } else {
                remove(ctx, &current).await
            }
        } else {
            // Held back by finalizers or a grace period: mark it, whoever holds it finishes.
            if !meta::is_deleting(&current) || grace > 0 {
                let deadline = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
                let deadline =
                    jiff::Timestamp::from_second(deadline.as_second()).unwrap_or(deadline);
                meta::set(
                    &mut marked,
                    "deletionTimestamp",
                    Some(json!(deadline.to_string())),
                );
                meta::set(
                    &mut marked,
                    "deletionGracePeriodSeconds",
                    Some(json!(grace)),
                );
            }
            meta::set(&mut marked, "finalizers", Some(json!(finalizers)));
            if is_namespace {
                marked["status"]["phase"] = json!("Terminating");
            }
            meta::set(&mut marked, "resourceVersion", None);
            if ctx.dry_run() {
                Ok(marked)
            } else {
                ctx.server
                    .storage
                    .update(info, ctx.ns(), name, marked, revision)
                    .await
            }
        };
        match result {
            Err(err) if err.reason == "Conflict" && options.resource_version.is_none() => continue,
            Err(err) => return Err(err),
            Ok(obj) => {
                let deleted_now = finalizers.is_empty() && grace == 0 && !held_by_spec;
                if held_by_spec && !ctx.dry_run() {
                    ctx.server.namespace_deleted.notify_one();
                }
                // Pods answer with the object; other kinds with a Status once gone.
                let body = if deleted_now && info.plural != "pods" {
                    success(ctx, name, meta::get(&obj, "uid"))
                } else {
                    obj
                };
                return Ok(Answer::ok(body));
            }
        }
    }
    Err(ApiError::stale(ctx.subject(name)))
}

/// Seconds a deletion waits for the owner of the object (the kubelet, for a scheduled pod).
fn graceful_deletion_period(info: &ResourceInfo, obj: &Value, requested: Option<i64>) -> i64 {
    if (info.group, info.plural) != ("", "pods") {
        return 0;
    }
    // An unscheduled pod has no kubelet to wait for.
    let scheduled = obj["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    if !scheduled {
        return 0;
    }
    let default = obj["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(30);
    let grace = requested.unwrap_or(default).max(0);
    // A pod already being deleted only ever shortens its grace period.
    match obj["metadata"]["deletionGracePeriodSeconds"].as_i64() {
        Some(current) => grace.min(current),
        None => grace,
    }
}

async fn delete_collection(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Answer> {
    let options = delete_options(ctx, body)?;
    let filter = Filter::from_query(ctx)?;
    let prefix = ctx.info().namespace_prefix(ctx.ns());
    let page = ctx.server.storage.page(&prefix, 0, None, None).await?;
    let mut deleted = Vec::new();
    for obj in page
        .items
        .iter()
        .filter(|o| filter.matches(ctx.kind.as_ref(), o))
    {
        let name = meta::name(obj).unwrap_or_default();
        match delete_one(ctx, name, &options).await {
            // The list holds objects (a single delete may answer with a Status instead).
            Ok(answer) if answer.body["kind"] == "Status" => deleted.push(obj.clone()),
            Ok(answer) => deleted.push(answer.body),
            Err(err) if err.code == 404 => {}
            Err(err) => return Err(err),
        }
    }
    Ok(Answer::ok(list_body(
        ctx.info(),
        deleted,
        page.revision,
        None,
    )))
}

// ---------------------------------------------------------------------------------------------
// Server-side printing
// ---------------------------------------------------------------------------------------------

pub(crate) fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.split(',').next().unwrap_or("").contains("as=Table"))
}

/// Kubernetes' short human durations (`5s`, `3m20s`, `2d4h`, `3y12d`).
pub(crate) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 && s % 60 != 0 => format!("{m}m{}s", s % 60),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 && m % 60 != 0 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 24 * 8 && h % 24 != 0 => format!("{d}d{}h", h % 24),
        _ if d < 365 * 2 => format!("{d}d"),
        _ if d / 365 < 8 && d % 365 != 0 => format!("{}y{}d", d / 365, d % 365),
        _ => format!("{}y", d / 365),
    }
}

fn age(obj: &Value) -> String {
    let created =
        meta::get(obj, "creationTimestamp").and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match created {
        Some(created) => human_duration(jiff::Timestamp::now().as_second() - created.as_second()),
        None => "<unknown>".into(),
    }
}

/// A `meta.k8s.io/v1 Table` of one object or a list.
pub(crate) fn to_table(ctx: &Ctx<'_>, body: &Value) -> Value {
    let objects: Vec<&Value> = match body.get("items").and_then(Value::as_array) {
        Some(items) => items.iter().collect(),
        None => vec![body],
    };
    let include = ctx.param("includeObject").unwrap_or("Metadata");
    table(
        ctx.kind.as_ref(),
        include,
        &objects,
        &body["metadata"],
        true,
    )
}

/// Rows for `objects`; with `headers`, the column definitions too.
pub(crate) fn table(
    kind: &dyn Kind,
    include: &str,
    objects: &[&Value],
    list_meta: &Value,
    headers: bool,
) -> Value {
    let columns = kind.columns();
    // kubectl shows columns in definition order, hiding priority > 0 unless `-o wide`, and
    // Kubernetes puts AGE after the default columns and before the wide ones.
    let (normal, wide): (Vec<usize>, Vec<usize>) =
        (0..columns.len()).partition(|&i| columns[i].priority == 0);
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let kind_cells = kind.cells(obj);
            let cell = |i: &usize| kind_cells.get(*i).cloned().unwrap_or(Value::Null);
            let mut cells = vec![json!(meta::name(obj).unwrap_or_default())];
            cells.extend(normal.iter().map(cell));
            cells.push(json!(age(obj)));
            cells.extend(wide.iter().map(cell));
            let object = match include {
                "None" => Value::Null,
                "Object" => (*obj).clone(),
                _ => json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"] }),
            };
            json!({ "cells": cells, "object": object })
        })
        .collect();
    let definition = |c: &Column| json!({ "name": c.name, "type": c.type_, "format": "", "description": c.description, "priority": c.priority });
    let mut definitions = vec![
        json!({ "name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0 }),
    ];
    definitions.extend(normal.iter().map(|&i| definition(&columns[i])));
    definitions.push(json!({ "name": "Age", "type": "string", "format": "", "description": "Time since the object was created.", "priority": 0 }));
    definitions.extend(wide.iter().map(|&i| definition(&columns[i])));
    let mut metadata = json!({});
    if let Some(rv) = list_meta.get("resourceVersion") {
        metadata["resourceVersion"] = rv.clone();
    }
    if let Some(next) = list_meta.get("continue") {
        metadata["continue"] = next.clone();
    }
    let mut table = json!({ "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "rows": rows });
    if headers {
        table["columnDefinitions"] = json!(definitions);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 3600, "3d1h"),
            (20 * 86400, "20d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
        ];
        for (seconds, text) in cases {
            assert_eq!(human_duration(seconds), text, "{seconds}s");
        }
    }

    #[test]
    fn rbac_names_only_need_to_be_path_segments() {
        assert!(path_segment_name("system:controller:foo").is_empty());
        assert_eq!(path_segment_name("a/b"), ["may not contain '/'"]);
        assert_eq!(path_segment_name(".."), ["may not be '..'"]);
    }
}
