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
        return parse_yaml(body);
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

/// How many nodes aliases may add to a YAML body. go-yaml, Kubernetes' YAML decoder, lets
/// aliases make up 99% of a document of up to 400,000 decoded nodes; as many here decode in a
/// fraction of a second, in less memory than the largest JSON body (1.5 million nodes of
/// `[0,0,...]`).
const YAML_ALIAS_NODES: usize = 400_000;

/// How deeply a YAML body may nest: serde-saphyr's default, below JSON's 127 because its decoder
/// takes about 4 KiB of stack a level (20 KiB in a debug build), and a worker thread has 2 MiB.
const YAML_MAX_DEPTH: usize = 64;

/// Parses a YAML body, decoded not much larger than the body: scalars of at most
/// [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES) bytes in all (the largest body's), and at most one
/// node per byte of the body plus [`YAML_ALIAS_NODES`]. Aliases may repeat parts of a body, as
/// Kubernetes allows, but a "billion laughs" of nested aliases, or a long string aliased many
/// times, is a 400 like kube-apiserver's "excessive aliasing". It nests at most
/// [`YAML_MAX_DEPTH`] levels.
pub(super) fn parse_yaml(body: &[u8]) -> ApiResult<Value> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_total_scalar_bytes = crate::MAX_BODY_BYTES;
    // Without aliases a document has about one node per byte at most.
    budget.max_nodes = body.len() + YAML_ALIAS_NODES;
    // A node is one event, a collection two (start and end).
    budget.max_events = 2 * budget.max_nodes + 8;
    // What anchors keep to replay is bounded alike.
    budget.max_recorded_anchor_bytes = crate::MAX_BODY_BYTES;
    budget.max_recorded_anchor_events = budget.max_nodes;
    budget.max_depth = YAML_MAX_DEPTH;
    // The budgets above bound what aliases cost; a ratio of aliases to anchors says nothing more.
    budget.enforce_alias_anchor_ratio = false;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    // Comments are not kept, and do not count as events.
    options.emit_comments = false;
    // The message quotes no input.
    options.with_snippet = false;
    let value: Value = serde_saphyr::from_slice_with_options(body, options).map_err(|e| {
        use serde_saphyr::{Error, budget::BudgetBreach};
        // A breach inside an alias's replay comes wrapped with the alias's location.
        let mut cause = &e;
        while let Error::AliasError { error, .. } | Error::WithSnippet { error, .. } = cause {
            cause = error;
        }
        let why = match cause {
            Error::Budget {
                breach: BudgetBreach::Depth { .. },
                ..
            } => format!("it nests deeper than {YAML_MAX_DEPTH} levels"),
            Error::Budget { .. }
            | Error::AliasReplayLimitExceeded { .. }
            | Error::AliasExpansionLimitExceeded { .. }
            | Error::AliasReplayStackDepthExceeded { .. } => {
                format!("document contains excessive aliasing ({e})")
            }
            _ => e.to_string(),
        };
        ApiError::bad_request(format!("the request body is not valid YAML: {why}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a YAML mapping",
        ));
    }
    Ok(value)
}

/// Parses a JSON body (serde_json refuses to nest deeper than
/// [`MAX_NESTING_DEPTH`](skiff_apimachinery::json::MAX_NESTING_DEPTH)).
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
    // In the stored form, so that comparing it with the stored object sees only real changes.
    Ok((crate::storage::canonical(&decoded.object), decoded.errors))
}

/// The ObjectMeta rules every kind shares.
pub(super) fn validate_meta(ctx: &Ctx<'_>, obj: &Value) -> Vec<FieldError> {
    let info = ctx.info();
    // Without managedFields: they are checked on their own, and copying them would cost more
    // than the rest of the check.
    let fields = obj["metadata"]
        .as_object()
        .map(crate::registry::without_managed_fields);
    let meta: ObjectMeta = fields
        .and_then(|m| serde_json::from_value(Value::Object(m)).ok())
        .unwrap_or_default();
    validation::validate_object_meta(
        &meta,
        info.namespaced,
        ctx.kind.name_rule(),
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
    let sub = ctx.request.subresource.as_deref();
    let sub = (ctx.info().subresources.iter()).find(|s| Some(s.name()) == sub);
    errors.extend(match sub {
        Some(sub) => ctx.kind.validate_subresource_update(*sub, obj, old),
        None => ctx.kind.validate_update(obj, old),
    });
    reject(ctx, obj, &errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_apimachinery::json::MAX_NESTING_DEPTH;

    fn yaml_error(body: &str) -> String {
        let err = parse_yaml(body.as_bytes()).unwrap_err();
        assert_eq!(
            (err.code, err.reason),
            (400, "BadRequest"),
            "{}",
            err.message
        );
        err.message
    }

    #[test]
    fn yaml_aliases_repeat_parts_of_a_body() {
        let value = parse_yaml(b"a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(value["b"], json!({"k": "v"}));
        // Well past the body's own size, still far from what the largest body could hold.
        let mut body = format!("a: &x {}\nl:\n", "y".repeat(1000));
        for _ in 0..200 {
            body.push_str("- *x\n");
        }
        let value = parse_yaml(body.as_bytes()).unwrap();
        assert_eq!(value["l"].as_array().unwrap().len(), 200);
    }

    #[test]
    fn yaml_billion_laughs_are_refused_quickly() {
        let started = std::time::Instant::now();
        // One long string aliased 99 times: 60 MB from 600 KB.
        let mut body = format!("a: &a {}\n", "x".repeat(600 << 10));
        for i in 0..99 {
            body.push_str(&format!("k{i}: *a\n"));
        }
        assert!(yaml_error(&body).contains("excessive aliasing"));
        // Nine levels of ten aliases each: ten billion strings from under a kilobyte.
        let mut body = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..10 {
            let below = vec![format!("*l{}", level - 1); 10].join(", ");
            body.push_str(&format!("l{level}: &l{level} [{below}]\n"));
        }
        assert!(yaml_error(&body).contains("excessive aliasing"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn deep_bodies_are_refused() {
        // The root mapping is one level.
        let json = |brackets: usize| {
            format!(
                r#"{{"a": {}0{}}}"#,
                "[".repeat(brackets),
                "]".repeat(brackets)
            )
        };
        let yaml =
            |brackets: usize| format!("a: {}0{}\n", "[".repeat(brackets), "]".repeat(brackets));
        assert!(parse_json(json(MAX_NESTING_DEPTH - 1).as_bytes()).is_ok());
        assert!(parse_json(json(MAX_NESTING_DEPTH).as_bytes()).is_err());
        assert!(parse_yaml(yaml(YAML_MAX_DEPTH - 1).as_bytes()).is_ok());
        assert!(yaml_error(&yaml(YAML_MAX_DEPTH)).contains("nests deeper than 64 levels"));
        // Far deeper is refused as early (the scanner stops flow collections first, at 255).
        assert!(yaml_error(&yaml(100_000)).contains("recursion limit exceeded"));
        let mut block = String::new();
        for level in 0..1000 {
            block.push_str(&format!("{}a:\n", " ".repeat(level)));
        }
        assert!(yaml_error(&block).contains("nests deeper"));
    }

    #[test]
    fn yaml_comments_cost_nothing() {
        let mut body = String::from("a: 1\n");
        for _ in 0..100_000 {
            body.push_str("#\n");
        }
        assert_eq!(parse_yaml(body.as_bytes()).unwrap(), json!({"a": 1}));
    }
}
