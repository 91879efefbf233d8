//! Request bodies: content types (JSON, YAML, Kubernetes protobuf), decoding into the kind's
//! canonical form with `fieldValidation`, and the validation every kind shares.

use super::*;

pub(super) fn content_type(headers: &HeaderMap) -> String {
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
pub(super) fn check_encoding(ctx: &Ctx<'_>) -> ApiResult<()> {
    match content_type(ctx.headers).as_str() {
        "" | "application/json" | "*/*" | "application/yaml" => Ok(()),
        ct if skiff_protobuf::is_protobuf(ct) => Ok(()),
        other if matches!(ctx.request.verb, "patch") && other.ends_with("+json") => Ok(()),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// Reads a create/update body as JSON, decoding protobuf first when that is what was sent.
pub(super) fn parse_body(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Value> {
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
pub(super) fn parse_json(body: &[u8]) -> ApiResult<Value> {
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
pub(super) fn check_type_meta(ctx: &Ctx<'_>, obj: &Value) -> ApiResult<()> {
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
pub(super) fn decode(
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
pub(super) fn name_rule(info: &ResourceInfo) -> fn(&str) -> Vec<String> {
    match (info.group, info.plural) {
        ("", "namespaces") => validation::is_dns1123_label,
        ("", "services") => validation::is_dns1035_label,
        ("rbac.authorization.k8s.io", _) => path_segment_name,
        _ => validation::is_dns1123_subdomain,
    }
}

/// Names that only need to be usable as one URL path segment (RBAC objects).
pub(super) fn path_segment_name(name: &str) -> Vec<String> {
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
pub(super) fn validate_meta(ctx: &Ctx<'_>, obj: &Value) -> Vec<FieldError> {
    let info = ctx.info();
    let meta: ObjectMeta = serde_json::from_value(obj["metadata"].clone()).unwrap_or_default();
    validation::validate_object_meta(
        &meta,
        info.namespaced,
        name_rule(info),
        &FieldPath::new("metadata"),
    )
}

/// 422 Invalid if there are errors; 400 BadRequest if one is a value Kubernetes' decoder
/// refuses (an unparsable quantity), as its decode error comes before validation.
pub(super) fn reject(ctx: &Ctx<'_>, obj: &Value, errors: &[FieldError]) -> ApiResult<()> {
    if errors.is_empty() {
        return Ok(());
    }
    if let Some(e) = validation::first_undecodable(errors) {
        let info = ctx.info();
        let message = validation::decode_error_message(info.kind, info.version, &e.detail);
        return Err(ApiError::bad_request(message));
    }
    let name = meta::name(obj)
        .or(meta::get(obj, "generateName"))
        .unwrap_or("");
    Err(ApiError::invalid(ctx.kind_subject(name), errors))
}

/// Validates an update of `old` to `obj`.
pub(super) fn validate_update(ctx: &Ctx<'_>, obj: &Value, old: &Value) -> ApiResult<()> {
    let mut errors = validate_meta(ctx, obj);
    errors.extend(ctx.kind.validate_update(obj, old));
    reject(ctx, obj, &errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbac_names_only_need_to_be_path_segments() {
        assert!(path_segment_name("system:controller:foo").is_empty());
        assert_eq!(path_segment_name("a/b"), ["may not contain '/'"]);
        assert_eq!(path_segment_name(".."), ["may not be '..'"]);
    }
}
