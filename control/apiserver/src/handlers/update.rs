//! Updates of every flavour: PUT, PATCH (JSON, merge, strategic merge), `/status`, `/scale`,
//! and `/binding`. They meet in [`write_update`], which owns the spec/status split,
//! `metadata.generation` and finalizer-driven deletion.

use super::*;

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// Everything but the status (for kinds with a status subresource).
    Main,
    /// Only the status.
    Status,
    /// Only `spec.replicas`, through an `autoscaling/v1 Scale`.
    Scale,
    /// Only a pod's `spec.ephemeralContainers` (Kubernetes' `EphemeralContainersStrategy`
    /// keeps the rest, metadata included, as stored).
    EphemeralContainers,
}

/// The `Scale` view of a scalable object.
pub(super) fn scale_view(obj: &Value) -> Value {
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
    pub(super) fn answer(self, stored: Value, warnings: Vec<String>) -> Answer {
        let body = match self {
            Part::Scale => scale_view(&stored),
            Part::Main | Part::Status | Part::EphemeralContainers => stored,
        };
        Answer {
            warnings,
            ..Answer::ok(body)
        }
    }

    /// What a client sees (and patches) of `current`.
    fn view(self, current: &Value) -> Value {
        match self {
            Part::Main | Part::Status | Part::EphemeralContainers => current.clone(),
            Part::Scale => scale_view(current),
        }
    }

    /// Decodes a client's full replacement of the view.
    fn decode(self, ctx: &Ctx<'_>, view: &Value, warnings: &mut Vec<String>) -> ApiResult<Value> {
        match self {
            Part::Main | Part::Status | Part::EphemeralContainers => {
                decode(ctx, view, false, warnings).map(|(obj, _)| obj)
            }
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
    pub(super) fn merge(self, info: &ResourceInfo, current: &Value, new: Value) -> Value {
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
            Part::EphemeralContainers => {
                let mut merged = current.clone();
                match new["spec"].get("ephemeralContainers") {
                    Some(list) => merged["spec"]["ephemeralContainers"] = list.clone(),
                    None => {
                        if let Some(spec) = merged["spec"].as_object_mut() {
                            spec.remove("ephemeralContainers");
                        }
                    }
                }
                merged
            }
        }
    }
}

/// Who writes an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Writer {
    /// The kind's strategy (PUT, PATCH, `/status`, `/scale`): its generation rule applies.
    Strategy,
    /// A pod's binding, which Kubernetes writes straight to storage: no generation bump.
    Binding,
    /// A server-side apply: as [`Writer::Strategy`], its `managedFields` already computed.
    Applied,
}

/// Writes `new` (already merged onto `current`) as an update of `current`.
pub(super) async fn write_update(
    ctx: &Ctx<'_>,
    current: &Value,
    mut new: Value,
    writer: Writer,
) -> ApiResult<Value> {
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
    // What this path may not change goes back as stored (Kubernetes' `PrepareForUpdate`).
    let through = ctx.request.subresource.as_deref();
    let through = (info.subresources.iter().copied()).find(|s| Some(s.name()) == through);
    ctx.kind.prepare_for_update(through, &mut new, current);
    // Every write through the strategy is an update by its manager, recorded before
    // admission; an apply recorded its own.
    if writer == Writer::Strategy {
        check_managed_fields(ctx, &new)?;
        new = track_update(ctx, Some(current), new);
    }
    if writer != Writer::Binding && ctx.kind.generation().bumped(&new, current) {
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
    let claimed = match ctx.kind.allocates() {
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
        Ok(stored) if ctx.kind.allocates() => {
            ctx.server.allocator.release(current, Some(stored)).await
        }
        Err(_) => ctx.server.allocator.undo(&claimed).await,
        Ok(_) => {}
    }
    updated
}

/// Removes `current` from the store (if unchanged since read) and releases what it held.
pub(super) async fn remove(ctx: &Ctx<'_>, current: &Value) -> ApiResult<Value> {
    let info = ctx.info();
    let name = meta::name(current).unwrap_or_default();
    let revision = meta::resource_version(current).unwrap_or(0);
    let removed = ctx
        .server
        .storage
        .delete(info, ctx.ns(), name, revision)
        .await?;
    if ctx.kind.allocates() {
        ctx.server.allocator.release(current, None).await;
    }
    Ok(removed)
}

/// The resourceVersion a request pins, if any.
pub(super) fn pinned_version(obj: &Value) -> Option<i64> {
    meta::resource_version(obj)
}

pub(super) async fn put(ctx: &Ctx<'_>, body: &[u8], part: Part) -> ApiResult<Answer> {
    let name = name_of(ctx)?;
    check_options(ctx, Options::Update)?;
    let info = ctx.info();
    let mut warnings = Vec::new();
    let raw = parse_body(ctx, body)?;
    let mut view = part.decode(ctx, &raw, &mut warnings)?;
    keep_managed_fields_reset(&raw, &mut view);
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
        match write_update(ctx, &current, new, Writer::Strategy).await {
            Err(err) if err.reason == "Conflict" && pinned.is_none() => continue,
            Err(err) => return Err(err),
            Ok(stored) => return Ok(part.answer(stored, warnings)),
        }
    }
    Err(ApiError::stale(ctx.subject(name)))
}

pub(super) fn apply_patch(
    kind: &str,
    content_type: &str,
    view: &Value,
    patch_body: &[u8],
) -> ApiResult<Value> {
    let patch_doc: Value = serde_json::from_slice(patch_body)
        .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?;
    let invalid = |e: patch::PatchError| match e.http_status() {
        // Too many operations (kube-apiserver's maxJSONPatchOperations) or too much work.
        413 => ApiError::request_entity_too_large(e),
        _ => ApiError::new(
            422,
            "Invalid",
            format!("the patch could not be applied: {e}"),
        ),
    };
    // kube-apiserver's JSONPatchMaxCopyBytes is its request body limit, as here.
    let limits = patch::JsonPatchLimits {
        max_copy_bytes: crate::MAX_BODY_BYTES,
        ..patch::JsonPatchLimits::KUBERNETES
    };
    match content_type {
        "application/json-patch+json" => {
            patch::json_patch_with_limits(view, &patch_doc, &limits).map_err(invalid)
        }
        "application/merge-patch+json" => Ok(patch::merge_patch(view, &patch_doc)),
        "application/strategic-merge-patch+json" => {
            patch::strategic_merge_patch(view, &patch_doc, &patch::BuiltinSchema, kind)
                .map_err(invalid)
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

pub(super) async fn patch(ctx: &Ctx<'_>, body: &[u8], part: Part) -> ApiResult<Answer> {
    let name = name_of(ctx)?;
    let info = ctx.info();
    let content_type = content_type(ctx.headers);
    if content_type == APPLY_PATCH {
        return apply(ctx, body, part).await;
    }
    check_options(ctx, Options::Patch)?;
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
        let mut decoded = part.decode(ctx, &patched, &mut warnings)?;
        keep_managed_fields_reset(&patched, &mut decoded);
        if meta::name(&decoded).is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(
                "the patch may not change the object's name",
            ));
        }
        let new = part.merge(info, &current, decoded);
        match write_update(ctx, &current, new, Writer::Strategy).await {
            Err(err) if err.reason == "Conflict" => continue,
            Err(err) => return Err(err),
            Ok(stored) => return Ok(part.answer(stored, warnings)),
        }
    }
    Err(ApiError::stale(ctx.subject(name)))
}

/// `POST pods/<name>/binding`: assigns the pod to a node, once.
pub(super) async fn bind(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Answer> {
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
        match write_update(ctx, &current, new, Writer::Binding).await {
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
