//! Create: server-owned metadata, one typed pass (defaults, preparation, validation),
//! admission, the kind's allocations (a service's ClusterIP/NodePort), storage.

use super::*;

pub(super) async fn create(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Answer> {
    check_options(ctx, Options::Create)?;
    let obj = parse_body(ctx, body)?;
    check_type_meta(ctx, &obj)?;
    create_object(ctx, obj, Vec::new(), Tracking::Update).await
}

/// How a create's `managedFields` come about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tracking {
    /// A POST: the creator's `Update` entry, computed here.
    Update,
    /// An apply that creates: the applier's entry is already on the object.
    Applied,
}

/// Creates `obj` (a POST's body, or what an apply makes of nothing) as Kubernetes' create
/// path does: server-owned metadata, defaults, preparation and validation, the field manager,
/// admission, allocations, storage.
pub(super) async fn create_object(
    ctx: &Ctx<'_>,
    mut obj: Value,
    mut warnings: Vec<String>,
    tracking: Tracking,
) -> ApiResult<Answer> {
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
    prepare_for_create(ctx.kind.as_ref(), &mut obj);
    // One typed pass: defaults, the kind's own preparation, and its validation.
    let (obj, mut errors) = decode(ctx, &obj, true, &mut warnings)?;
    // The creator owns what it sent and what defaulting filled, before admission.
    let mut obj = match tracking {
        Tracking::Update => {
            check_managed_fields(ctx, &obj)?;
            track_update(ctx, None, obj)
        }
        Tracking::Applied => obj,
    };
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
    let (stored, served) = if ctx.dry_run() {
        (obj, None)
    } else {
        let claimed = match ctx.kind.allocates() {
            true => ctx.server.allocator.allocate(&mut obj, None).await?,
            false => Vec::new(),
        };
        let created = (ctx.server.storage)
            .create_served(info, ctx.ns(), &name, obj)
            .await;
        if created.is_err() {
            ctx.server.allocator.undo(&claimed).await;
        }
        let created = created?;
        (created.object, created.served)
    };
    Ok(Answer {
        // The stored bytes answer a request for the object itself.
        raw: served
            .filter(|_| ctx.target == Target::Object)
            .map(axum::body::Body::from),
        code: StatusCode::CREATED,
        body: stored,
        warnings,
    })
}

/// Server-owned metadata and status of a new object.
pub(super) fn prepare_for_create(kind: &dyn Kind, obj: &mut Value) {
    let m = meta::metadata_mut(obj);
    m.insert("uid".into(), json!(meta::new_uid()));
    m.insert("creationTimestamp".into(), json!(meta::now()));
    // Only kinds whose strategy tracks a generation start one; others keep what was sent, as
    // Kubernetes' `BeforeCreate` leaves it.
    if let Generation::Tracked { .. } = kind.generation() {
        m.insert("generation".into(), json!(1));
    }
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        m.remove(field);
    }
    // The status of a kind with a status subresource is the controllers' to write, unless
    // the kind lets its creator set it.
    if kind.info().has(Subresource::Status)
        && !kind.creator_sets_status()
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    kind.prepare_body_for_create(obj);
}
