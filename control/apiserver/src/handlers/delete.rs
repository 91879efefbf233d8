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
    /// The deprecated `orphanDependents`: `true` orphans, `false` deletes in the background.
    orphan_dependents: Option<bool>,
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
    let query_orphan = ctx.param("orphanDependents").and_then(|o| o.parse().ok());
    Ok(DeleteOptions {
        grace_period: opts["gracePeriodSeconds"].as_i64().or(query_grace),
        propagation: opts["propagationPolicy"]
            .as_str()
            .or(ctx.param("propagationPolicy"))
            .map(str::to_owned),
        orphan_dependents: opts["orphanDependents"].as_bool().or(query_orphan),
        uid: opts["preconditions"]["uid"].as_str().map(str::to_owned),
        resource_version: opts["preconditions"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse().ok()),
    })
}

/// The garbage collector's finalizers.
const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

impl DeleteOptions {
    /// The object's finalizers once the options' propagation policy is applied (Kubernetes'
    /// `deletionFinalizersForGarbageCollection`): an explicit policy replaces the garbage
    /// collector's finalizers, none keeps them.
    fn finalizers(&self, current: Vec<String>) -> Vec<String> {
        let wanted = match (self.orphan_dependents, self.propagation.as_deref()) {
            (Some(true), _) | (None, Some("Orphan")) => Some(ORPHAN),
            (Some(false), _) | (None, Some("Background")) => None,
            (None, Some("Foreground")) => Some(FOREGROUND),
            _ => return current,
        };
        let mut finalizers: Vec<String> = current
            .iter()
            .filter(|f| *f != ORPHAN && *f != FOREGROUND)
            .cloned()
            .collect();
        finalizers.extend(wanted.map(str::to_owned));
        let same = |a: &[String], b: &[String]| {
            let set = |v: &[String]| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
            set(a) == set(b)
        };
        if same(&finalizers, &current) {
            current
        } else {
            finalizers
        }
    }
}

pub(super) async fn delete(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Answer> {
    let name = name_of(ctx)?;
    let options = delete_options(ctx, body)?;
    let (body, deleted) = delete_one(ctx, name, &options).await?;
    // Kubernetes answers 202 for a deletion that is only started only when the client asked
    // for the deprecated `orphanDependents: false`; every other answer is 200.
    let code = if !deleted && options.orphan_dependents == Some(false) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(Answer {
        code,
        ..Answer::ok(body)
    })
}

/// The answer once an object is gone (Kubernetes' `finalizeDelete`): the object for kinds
/// that return it, otherwise a Success Status naming it.
fn finalize_delete(ctx: &Ctx<'_>, name: &str, obj: Value) -> Value {
    if ctx.kind.returns_deleted_object() {
        obj
    } else {
        success(ctx, name, meta::get(&obj, "uid"))
    }
}

/// Deletes one object, or marks it for deletion when finalizers or a grace period hold it
/// (Kubernetes' `Store.Delete`). Returns the answer's body and whether the object is gone:
/// a deletion that is only started answers with the object as marked, whatever the kind.
pub(super) async fn delete_one(
    ctx: &Ctx<'_>,
    name: &str,
    options: &DeleteOptions,
) -> ApiResult<(Value, bool)> {
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
        ctx.kind
            .validate_delete(name)
            .map_err(ApiError::forbidden)?;
        let deleting = meta::is_deleting(&current);
        let current_grace = current["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .filter(|g| *g > 0);
        let grace = ctx
            .kind
            .graceful_deletion_period(&current, options.grace_period);
        // A graceful deletion under way is only ever shortened; asked again with as long a
        // period, nothing changes (Kubernetes' `BeforeDelete`: pending).
        if deleting && current_grace.is_some_and(|g| grace >= g) {
            return Ok((finalize_delete(ctx, name, current), false));
        }
        let finalizers = options.finalizers(meta::finalizers(&current));
        // A namespace is held by its `spec.finalizers` until its contents are gone.
        let held_by_spec = ctx.kind.finalized_by_spec(&current);
        let revision = meta::resource_version(&current).unwrap_or(0);
        if finalizers.is_empty() && grace == 0 && !held_by_spec {
            let removed = if ctx.dry_run() {
                Ok(current.clone())
            } else {
                remove(ctx, &current).await
            };
            match removed {
                Err(err) if err.reason == "Conflict" && options.resource_version.is_none() => {
                    continue;
                }
                Err(err) => return Err(err),
                Ok(obj) => return Ok((finalize_delete(ctx, name, obj), true)),
            }
        }
        // Held back by finalizers or a grace period: mark it, whoever holds it finishes.
        let mut marked = current.clone();
        if !deleting {
            // Controllers see that the object is going (Kubernetes bumps a generation that is
            // set when deletion starts).
            if let Some(generation) = current["metadata"]["generation"]
                .as_i64()
                .filter(|g| *g > 0)
            {
                meta::set(&mut marked, "generation", Some(json!(generation + 1)));
            }
        }
        let now = jiff::Timestamp::now();
        let now = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
        if grace > 0 || current_grace.is_some() {
            // A graceful deletion runs from now; a shortened one keeps its start.
            let start = current_grace
                .zip(meta::get(&current, "deletionTimestamp"))
                .and_then(|(g, ts)| {
                    let ts = ts.parse::<jiff::Timestamp>().ok()?;
                    Some(ts - jiff::SignedDuration::from_secs(g))
                });
            let deadline = start.unwrap_or(now) + jiff::SignedDuration::from_secs(grace);
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
        } else if !deleting {
            // Finalizers hold it: deleted from now, with no grace left (`markAsDeleting`).
            meta::set(
                &mut marked,
                "deletionTimestamp",
                Some(json!(now.to_string())),
            );
            meta::set(&mut marked, "deletionGracePeriodSeconds", Some(json!(0)));
        }
        meta::set(&mut marked, "finalizers", Some(json!(finalizers)));
        if finalizers.is_empty() && marked["metadata"].get("finalizers").is_some() {
            meta::set(&mut marked, "finalizers", None);
        }
        ctx.kind.prepare_for_delete(&mut marked);
        if marked == current {
            // Nothing to write (asked again while finalizers run); a namespace's finalizer is
            // still woken, as on every delete.
            if held_by_spec && !ctx.dry_run() {
                ctx.server.namespace_deleted.notify_one();
            }
            return Ok((current, false));
        }
        meta::set(&mut marked, "resourceVersion", None);
        let result = if ctx.dry_run() {
            Ok(marked)
        } else {
            ctx.server
                .storage
                .update(info, ctx.ns(), name, marked, revision)
                .await
        };
        match result {
            Err(err) if err.reason == "Conflict" && options.resource_version.is_none() => continue,
            Err(err) => return Err(err),
            Ok(obj) => {
                if held_by_spec && !ctx.dry_run() {
                    ctx.server.namespace_deleted.notify_one();
                }
                return Ok((obj, false));
            }
        }
    }
    Err(ApiError::stale(ctx.subject(name)))
}

/// Deletes every object the selectors match, one by one as a single delete would; answers
/// with the list as it was read (Kubernetes' `DeleteCollection`), of at most `limit` objects.
pub(super) async fn delete_collection(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Answer> {
    let options = delete_options(ctx, body)?;
    let filter = Filter::from_query(ctx)?;
    let limit: usize = match ctx.param("limit") {
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        None => 0,
    };
    let prefix = ctx.info().namespace_prefix(ctx.ns());
    let page = ctx.server.storage.page(&prefix, 0, None, None).await?;
    let mut listed: Vec<Value> = page
        .items
        .into_iter()
        .filter(|o| filter.matches(ctx.kind.as_ref(), o))
        .collect();
    if limit > 0 {
        listed.truncate(limit);
    }
    for obj in &listed {
        let name = meta::name(obj).unwrap_or_default();
        match delete_one(ctx, name, &options).await {
            Ok(_) => {}
            Err(err) if err.code == 404 => {}
            Err(err) => return Err(err),
        }
    }
    Ok(Answer::ok(list_body(
        ctx.info(),
        listed,
        page.revision,
        None,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_replaces_the_garbage_collectors_finalizers() {
        let options = |propagation: Option<&str>, orphan: Option<bool>| DeleteOptions {
            grace_period: None,
            propagation: propagation.map(str::to_owned),
            orphan_dependents: orphan,
            uid: None,
            resource_version: None,
        };
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        // (propagationPolicy, orphanDependents, finalizers before, after)
        type Case<'a> = (Option<&'a str>, Option<bool>, &'a [&'a str], &'a [&'a str]);
        let cases: &[Case] = &[
            (None, None, &["x", ORPHAN], &["x", ORPHAN]),
            (Some("Orphan"), None, &["x"], &["x", ORPHAN]),
            (Some("Foreground"), None, &[ORPHAN, "x"], &["x", FOREGROUND]),
            (Some("Background"), None, &[FOREGROUND, "x"], &["x"]),
            (Some("Background"), None, &[], &[]),
            // The deprecated field wins over the policy.
            (Some("Foreground"), Some(true), &[], &[ORPHAN]),
            (None, Some(false), &[ORPHAN], &[]),
            // Already as asked: kept in the object's order.
            (Some("Orphan"), None, &[ORPHAN, "x"], &[ORPHAN, "x"]),
        ];
        for (propagation, orphan, current, want) in cases {
            assert_eq!(
                options(*propagation, *orphan).finalizers(list(current)),
                list(want),
                "{propagation:?} {orphan:?} {current:?}"
            );
        }
    }
}
