//! Server-side apply (`PATCH` with `application/apply-patch+yaml`) and the `managedFields` of
//! every write, as Kubernetes' handlers use its field manager:
//!
//! - every create, PUT and JSON/merge/strategic patch is an `Update` by the request's manager
//!   (`fieldManager`, else the user agent's first segment: Kubernetes' `prefixFromUserAgent`),
//!   recorded before admission, through the resource's subresource (`status`, `scale`, ...);
//! - an apply merges the applied configuration into the live object (or creates it), owning
//!   exactly the fields it applied; a field another manager owns is a 409 unless `force=true`;
//!   the result then takes the update path every PATCH takes (or a POST's create path);
//! - what the resource's strategy resets (the status through the main resource, everything but
//!   the status through `/status`) is never owned through it ([`reset_fields`], Kubernetes'
//!   `ResetFieldsStrategy`);
//! - a client's own `managedFields` are checked as `ValidateManagedFields` does, then used,
//!   reset (`[]`) or, when they do not decode, replaced by the stored ones.

use super::*;
use k8s_openapi::jiff::Timestamp;
use skiff_apimachinery::managed_fields::builtin::BuiltinSchema;
use skiff_apimachinery::managed_fields::fieldpath::{Path, Set};
use skiff_apimachinery::managed_fields::manager::{ApplyError, FieldManager};
use skiff_apimachinery::managed_fields::schema::Atom;

/// The content type of an apply patch.
pub(super) const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// Kubernetes' `FieldManagerMaxLength`.
const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// Kubernetes' `MaxSubresourceNameLength`.
const MAX_SUBRESOURCE_NAME_LENGTH: usize = 256;

/// Kubernetes' `prefixFromUserAgent`: the user agent up to its first `/`, without unprintable
/// characters, cut to [`FIELD_MANAGER_MAX_LENGTH`] bytes (`kubectl/v1.37.1 (linux/amd64) ...`
/// is `kubectl`).
pub(super) fn prefix_from_user_agent(user_agent: &str) -> String {
    let first = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in first.chars().filter(|c| is_print(*c)) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// Go's `unicode.IsPrint`, near enough: no control characters, and no space but ASCII's.
fn is_print(c: char) -> bool {
    !c.is_control() && (c == ' ' || !c.is_whitespace())
}

/// The manager a write is recorded under: `fieldManager`, else the user agent's prefix.
pub(super) fn manager(ctx: &Ctx<'_>) -> String {
    match ctx.param("fieldManager") {
        Some(manager) => manager.to_owned(),
        None => prefix_from_user_agent(
            ctx.headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
        ),
    }
}

/// Kubernetes' `ValidateFieldManager`.
fn field_manager_errors(manager: &str, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errors.push(FieldError::too_long(
            path,
            manager,
            FIELD_MANAGER_MAX_LENGTH,
        ));
    }
    for (i, c) in manager.chars().enumerate() {
        if !is_print(c) {
            errors.push(FieldError::invalid(
                path,
                manager,
                format!("invalid character {} (at position {i})", go_rune(c)),
            ));
        }
    }
    errors
}

/// Go's `%#U` of a rune: `U+0007`.
fn go_rune(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// Which write options a request carries (the kind of its 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Options {
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH of any type but apply.
    Patch,
    /// PATCH with an apply patch.
    Apply,
}

/// Kubernetes' `ValidateCreateOptions`, `ValidateUpdateOptions` and `ValidatePatchOptions`, as
/// far as field managers go: 422 on `CreateOptions.meta.k8s.io ""` (and so on).
pub(super) fn check_options(ctx: &Ctx<'_>, options: Options) -> ApiResult<()> {
    let manager = ctx.param("fieldManager").unwrap_or_default();
    let mut errors = Vec::new();
    match options {
        Options::Apply if manager.is_empty() => {
            errors.push(FieldError::required(
                "fieldManager",
                "is required for apply patch",
            ));
        }
        Options::Patch if ctx.query.contains_key("force") => {
            errors.push(FieldError::forbidden(
                "force",
                "may not be specified for non-apply patch",
            ));
        }
        _ => {}
    }
    errors.extend(field_manager_errors(manager, "fieldManager"));
    if errors.is_empty() {
        return Ok(());
    }
    let kind = match options {
        Options::Create => "CreateOptions",
        Options::Update => "UpdateOptions",
        Options::Patch | Options::Apply => "PatchOptions",
    };
    let subject = Subject {
        group: "meta.k8s.io",
        resource: kind,
        name: "",
    };
    let mut err = ApiError::invalid(subject, &errors);
    // Kubernetes names the options by their qualified kind.
    err.message = err
        .message
        .replacen(kind, &format!("{kind}.meta.k8s.io"), 1);
    Err(err)
}

/// Kubernetes' `ValidateManagedFields` on the `managedFields` a client sent: each entry's
/// operation, manager and subresource. Entries that are not objects are left to decoding.
pub(super) fn validate_managed_fields(obj: &Value) -> Vec<FieldError> {
    let Some(entries) = obj["metadata"]
        .get("managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    // A reset is no entry at all to Kubernetes' validation, which sees the result.
    if is_reset(entries) {
        return Vec::new();
    }
    let mut errors = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = |field: &str| format!("metadata.managedFields[{i}].{field}");
        let text = |field: &str| entry.get(field).and_then(Value::as_str).unwrap_or("");
        let operation = text("operation");
        if !matches!(operation, "Apply" | "Update") {
            errors.push(FieldError::invalid(
                at("operation"),
                operation,
                "must be `Apply` or `Update`",
            ));
        }
        let fields_type = text("fieldsType");
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            errors.push(FieldError::invalid(
                at("fieldsType"),
                fields_type,
                "must be `FieldsV1`",
            ));
        }
        errors.extend(field_manager_errors(text("manager"), &at("manager")));
        let subresource = text("subresource");
        if subresource.len() > MAX_SUBRESOURCE_NAME_LENGTH {
            errors.push(FieldError::too_long(
                at("subresource"),
                subresource,
                MAX_SUBRESOURCE_NAME_LENGTH,
            ));
        }
    }
    errors
}

/// The one field a subresource writes; the strategy keeps everything else as stored.
fn written_by(subresource: &str) -> Option<&'static [&'static str]> {
    match subresource {
        "status" => Some(&["status"]),
        "scale" => Some(&["spec", "replicas"]),
        // A CSR's approval writes its conditions only.
        "approval" => Some(&["status", "conditions"]),
        "ephemeralcontainers" => Some(&["spec", "ephemeralContainers"]),
        _ => None,
    }
}

/// What the resource's strategy resets on a write through `subresource` ("" for the main
/// resource), so that no one owns it through this write: the status for the main resource of a
/// kind with a status subresource; for a subresource, everything but the field it writes.
pub(super) fn reset_fields(info: &ResourceInfo, subresource: &str) -> Set {
    if subresource.is_empty() {
        if info.has(Subresource::Status) {
            return Set::from_paths([&Path::fields(&["status"])]);
        }
        return Set::new();
    }
    let Some(kept) = written_by(subresource) else {
        return Set::new();
    };
    let mut reset = Set::new();
    let mut type_name = BuiltinSchema::root_type(&info.api_version(), info.kind);
    let mut prefix: Vec<&str> = Vec::new();
    for step in kept {
        let Some(def) = type_name.and_then(BuiltinSchema::type_def) else {
            break;
        };
        for field in def.fields.iter().filter(|f| f.name != *step) {
            let mut path = prefix.clone();
            path.push(field.name);
            reset.insert(&Path::fields(&path).0);
        }
        type_name = match def.fields.iter().find(|f| f.name == *step).map(|f| f.atom) {
            Some(Atom::Struct { name, .. }) => Some(name),
            _ => None,
        };
        prefix.push(step);
    }
    reset
}

/// The field manager of the request's resource and subresource.
fn field_manager(ctx: &Ctx<'_>) -> FieldManager<'static> {
    let info = ctx.info();
    let subresource = ctx.request.subresource.as_deref().unwrap_or("");
    FieldManager::new(&BuiltinSchema, &info.api_version(), info.kind, subresource)
        .with_reset_fields(reset_fields(info, subresource))
}

/// What an empty object of the kind holds, as Go's zero value encodes it (`spec: {}`,
/// `status: {}`, nulls for pointers without `omitempty`): a create does not add those, as
/// Kubernetes' creater's new object has them.
fn new_object(info: &ResourceInfo) -> Value {
    let empty = json!({ "apiVersion": info.api_version(), "kind": info.kind, "metadata": {} });
    serde_json::from_slice(&skiff_protobuf::json::to_body(&empty)).unwrap_or(empty)
}

/// Records a non-apply write of `new` over `live` (`None`: a create) by the request's manager:
/// `new` with its `managedFields` (Kubernetes' `UpdateNoErrors`: when they cannot be computed,
/// the stored ones stay). The client's own `managedFields` must pass
/// [`validate_managed_fields`] first.
pub(super) fn track_update(ctx: &Ctx<'_>, live: Option<&Value>, new: Value) -> Value {
    let manager = manager(ctx);
    let fm = field_manager(ctx);
    let fm = match live {
        Some(_) => fm,
        None => fm.with_new_object(new_object(ctx.info())),
    };
    fm.update_no_errors(live, new, &manager, Timestamp::now())
}

/// Whether client `managedFields` ask for a reset: none, or one entry with nothing set.
fn is_reset(entries: &[Value]) -> bool {
    match entries {
        [] => true,
        [Value::Object(entry)] => entry.values().all(|v| v.is_null() || v == ""),
        _ => false,
    }
}

/// Carries a client's request to reset `managedFields` (`[]`, or one empty entry) through the
/// typed decoding, whose canonical form drops an empty list: Kubernetes tells an empty list
/// from none.
pub(super) fn keep_managed_fields_reset(sent: &Value, decoded: &mut Value) {
    let Some(Value::Array(entries)) = sent["metadata"].get("managedFields") else {
        return;
    };
    if is_reset(entries) {
        meta::set(
            decoded,
            "managedFields",
            Some(Value::Array(entries.clone())),
        );
    }
}

/// Rejects client `managedFields` Kubernetes rejects (422).
pub(super) fn check_managed_fields(ctx: &Ctx<'_>, obj: &Value) -> ApiResult<()> {
    let errors = validate_managed_fields(obj);
    reject(ctx, obj, &errors)
}

/// Reads an apply patch: YAML (JSON is YAML), a mapping.
fn parse_config(body: &[u8]) -> ApiResult<Value> {
    // Most clients (kube-rs, client-go's typed appliers) send JSON: read it as JSON first.
    let trimmed = body.trim_ascii_start();
    if trimmed.first() == Some(&b'{')
        && let Ok(value @ Value::Object(_)) = serde_json::from_slice::<Value>(trimmed)
    {
        return Ok(value);
    }
    parse_yaml(body)
}

/// `config` without the fields the kind does not have: those `canonical` (the config decoded
/// through the kind) lacks; at the top level only those named `unknown`, because conversion
/// consumes some fields the kind has (a Secret's `stringData`).
fn drop_unknown(config: &mut Value, canonical: &Value, unknown: &[String], top: bool) {
    match (config, canonical) {
        (Value::Object(given), Value::Object(known)) => {
            given.retain(|key, value| {
                value.is_null()
                    || known.contains_key(key)
                    || (top && !unknown.iter().any(|u| u == key))
            });
            for (key, value) in given.iter_mut() {
                if let Some(known) = known.get(key) {
                    drop_unknown(value, known, unknown, false);
                }
            }
        }
        (Value::Array(given), Value::Array(known)) => {
            for (value, known) in given.iter_mut().zip(known) {
                drop_unknown(value, known, unknown, false);
            }
        }
        _ => {}
    }
}

/// The configuration without unknown fields, per `fieldValidation` (Strict: 400; Warn: a
/// warning each; Ignore: silently), as every other write decodes.
fn known_fields(ctx: &Ctx<'_>, mut config: Value, warnings: &mut Vec<String>) -> ApiResult<Value> {
    let unknown = match ctx.kind.decode(&config) {
        Ok(decoded) if decoded.unknown_fields.is_empty() => return Ok(config),
        Ok(decoded) => decoded.unknown_fields,
        Err(_) => Vec::new(),
    };
    // The shared decoding says what fieldValidation makes of them (or why it fails).
    let (canonical, _) = decode(ctx, &config, false, warnings)?;
    drop_unknown(&mut config, &canonical, &unknown, true);
    Ok(config)
}

/// The `Scale` configuration of an apply to `/scale` as a configuration of the object: its
/// `spec.replicas`, the only field the subresource writes.
fn scale_config(ctx: &Ctx<'_>, config: &Value) -> ApiResult<Value> {
    let text = |field: &str| config.get(field).and_then(Value::as_str).unwrap_or("");
    if (text("apiVersion"), text("kind")) != ("autoscaling/v1", "Scale") {
        let (group, version) = text("apiVersion")
            .split_once('/')
            .unwrap_or(("", text("apiVersion")));
        return Err(ApiError::bad_request(format!(
            "invalid object type: {group}/{version}, Kind={}",
            text("kind")
        )));
    }
    let info = ctx.info();
    let mut parent = json!({
        "apiVersion": info.api_version(),
        "kind": info.kind,
        "metadata": config.get("metadata").cloned().unwrap_or(json!({})),
    });
    if let Some(replicas) = config.get("spec").and_then(|s| s.get("replicas")) {
        parent["spec"] = json!({ "replicas": replicas });
    }
    Ok(parent)
}

/// An apply's failure as the Status Kubernetes answers with.
fn apply_error(err: ApplyError) -> ApiError {
    match err {
        ApplyError::Conflicts(conflicts) => {
            let status = conflicts.to_status();
            ApiError {
                details: status.details.and_then(|d| serde_json::to_value(d).ok()),
                ..ApiError::new(409, "Conflict", status.message.unwrap_or_default())
            }
        }
        other => match other.http_status() {
            400 => ApiError::bad_request(other.to_string()),
            _ => ApiError::internal(other.to_string()),
        },
    }
}

/// Checks that the applied object is the one the URL names.
fn check_name(ctx: &Ctx<'_>, name: &str, obj: &Value) -> ApiResult<()> {
    let given = meta::name(obj).unwrap_or_default();
    if given != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({given}) does not match the name on the URL ({name})"
        )));
    }
    if let (Some(given), Some(ns)) = (meta::namespace(obj), ctx.ns())
        && given != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// The field manager's apply of `config` to `live` (`None`: nothing yet). The manager borrows
/// a schema that is not `Sync`, so it never lives across an await.
fn apply_to(
    ctx: &Ctx<'_>,
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
) -> ApiResult<Value> {
    let fm = field_manager(ctx);
    let fm = match live {
        Some(_) => fm,
        None => fm.with_new_object(new_object(ctx.info())),
    };
    fm.apply(live, config, manager, force, Timestamp::now())
        .map_err(apply_error)
}

/// `PATCH` with an apply patch, on the resource or a subresource (`part`).
pub(super) async fn apply(ctx: &Ctx<'_>, body: &[u8], part: Part) -> ApiResult<Answer> {
    let name = name_of(ctx)?;
    check_options(ctx, Options::Apply)?;
    let manager = manager(ctx);
    let force = ctx.param("force") == Some("true");
    let info = ctx.info();
    let mut warnings = Vec::new();
    let config = parse_config(body)?;
    let config = match part {
        Part::Scale => scale_config(ctx, &config)?,
        _ => {
            // The type is the field manager's to check, with Kubernetes' message.
            let same_type = config.get("apiVersion").and_then(Value::as_str)
                == Some(info.api_version().as_str())
                && config.get("kind").and_then(Value::as_str) == Some(info.kind);
            if same_type {
                known_fields(ctx, config, &mut warnings)?
            } else {
                config
            }
        }
    };
    for _ in 0..MAX_RETRIES {
        let current = match ctx.server.storage.get(info, ctx.ns(), name).await {
            Ok(current) => current,
            // An apply creates what does not exist yet, through the resource only.
            Err(err) if err.code == 404 && part == Part::Main => {
                let object = apply_to(ctx, None, &config, &manager, force)?;
                check_name(ctx, name, &object)?;
                return match create_object(ctx, object, warnings.clone(), Tracking::Applied).await {
                    Err(err) if err.reason == "AlreadyExists" => continue,
                    result => result,
                };
            }
            Err(err) => return Err(err),
        };
        let applied = apply_to(ctx, Some(&current), &config, &manager, force)?;
        check_name(ctx, name, &applied)?;
        let pinned =
            pinned_version(&config).filter(|p| Some(*p) != meta::resource_version(&current));
        if pinned.is_some() {
            return Err(ApiError::stale(ctx.subject(name)));
        }
        let (decoded, _) = decode(ctx, &applied, false, &mut Vec::new())?;
        let mut new = part.merge(info, &current, decoded);
        // The subresource's merge keeps the stored metadata; the ownership is the apply's.
        meta::set(
            &mut new,
            "managedFields",
            applied["metadata"].get("managedFields").cloned(),
        );
        match write_update(ctx, &current, new, Writer::Applied).await {
            Err(err) if err.reason == "Conflict" && pinned.is_none() => continue,
            Err(err) => return Err(err),
            Ok(stored) => return Ok(part.answer(stored, warnings.clone())),
        }
    }
    Err(ApiError::stale(ctx.subject(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managers_from_user_agents_as_kubernetes_derives_them() {
        let cases = [
            ("kubectl/v1.37.1 (linux/amd64) kubernetes/abc", "kubectl"),
            ("kube-controller-manager/v1.37.1", "kube-controller-manager"),
            ("", ""),
            ("no-slash", "no-slash"),
            ("a\u{7}b/1", "ab"),
        ];
        for (agent, want) in cases {
            assert_eq!(prefix_from_user_agent(agent), want, "{agent:?}");
        }
        let long = "m".repeat(200);
        assert_eq!(
            prefix_from_user_agent(&long).len(),
            FIELD_MANAGER_MAX_LENGTH
        );
        // Cut on a character boundary.
        let wide = "é".repeat(100);
        assert_eq!(prefix_from_user_agent(&wide), "é".repeat(64));
    }

    #[test]
    fn client_managed_fields_are_validated_as_kubernetes_does() {
        let obj = json!({"metadata": {"managedFields": [
            {"manager": "a", "operation": "Update", "fieldsType": "FieldsV1"},
            {"manager": "m".repeat(129), "operation": "Patch", "fieldsType": "FieldsV2",
             "subresource": "s".repeat(257)},
        ]}});
        let errors: Vec<String> = validate_managed_fields(&obj)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "metadata.managedFields[1].operation: Invalid value: \"Patch\": must be `Apply` or `Update`",
                "metadata.managedFields[1].fieldsType: Invalid value: \"FieldsV2\": must be `FieldsV1`",
                "metadata.managedFields[1].manager: Too long: may not be more than 128 bytes",
                "metadata.managedFields[1].subresource: Too long: may not be more than 256 bytes",
            ]
        );
    }
}
