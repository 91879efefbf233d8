//! Delete and deletecollection: preconditions, propagation policy finalizers, graceful
//! deletion and the rest the kind's strategy decides (a scheduled pod's grace period, a
//! namespace held by its finalizer).

use super::*;

pub(super) fn success(ctx: &Ctx<'_>, name: &str, uid: Option<&str>) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": { "name": name, "group": ctx.info().group, "kind": ctx.info().plural, "uid": uid },
    })
}

/// Delete options from the body (a `DeleteOptions`) and the query.
pub(super) struct DeleteOptions {
    grace_period: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    resource_version: Option<i64>,
}

pub(super) fn delete_options(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<DeleteOptions> {
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

pub(super) async fn delete(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Answer> {
    let name = name_of(ctx)?;
    let options = delete_options(ctx, body)?;
    delete_one(ctx, name, &options).await
}

/// Deletes one object, or marks it for deletion when finalizers or a grace period hold it.
pub(super) async fn delete_one(
    ctx: &Ctx<'_>,
    name: &str,
    options: &DeleteOptions,
) -> ApiResult<Answer> {
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
        let grace = ctx
            .kind
            .graceful_deletion_period(&current, options.grace_period);
        let revision = meta::resource_version(&current).unwrap_or(0);
        ctx.kind
            .validate_delete(name)
            .map_err(ApiError::forbidden)?;
        // A namespace is held by its `spec.finalizers` until its contents are gone.
        let held_by_spec = ctx.kind.finalized_by_spec(&current);
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
            ctx.kind.prepare_for_delete(&mut marked);
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
                // Most kinds answer with a Status once gone, some with the object.
                let body = if deleted_now && !ctx.kind.returns_deleted_object() {
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

pub(super) async fn delete_collection(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Answer> {
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
