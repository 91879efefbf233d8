//! Response negotiation, as kube-apiserver's `negotiation.NegotiateOutputMediaType` and
//! `transformResponseObject` do it: the `Accept` header picks a media type and, with its
//! `as`/`g`/`v` parameters, what the answer is turned into: `PartialObjectMetadata`,
//! `PartialObjectMetadataList` or a `Table` (`includeObject=None|Metadata|Object`). One
//! transform serves every kind, single objects, lists and each watch event; a `Status` passes
//! through unchanged. An `Accept` the server cannot satisfy is a 406 NotAcceptable before the
//! request runs; a target that does not fit the answer (a list asked for as one object's
//! metadata) is a 406 after it, as in Kubernetes.

use super::*;

/// The media types kube-apiserver serves for built-in kinds, in its order (the first is the
/// default). Every answer is written as JSON; the others are accepted so that clients listing
/// them first (protobuf, then JSON) keep working.
const MEDIA_TYPES: [(&str, &str); 3] = [
    ("application", "json"),
    ("application", "yaml"),
    ("application", "vnd.kubernetes.protobuf"),
];

/// The group of the types an answer can be turned into.
const META_GROUP: &str = "meta.k8s.io";

/// What an answer is turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The objects as they are.
    Object,
    /// One object's metadata (`meta.k8s.io/<version>` `PartialObjectMetadata`).
    PartialObjectMetadata(MetaVersion),
    /// A list's metadata, item by item.
    PartialObjectMetadataList(MetaVersion),
    /// Server-side printing.
    Table(MetaVersion),
}

/// The `meta.k8s.io` version a target is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetaVersion {
    V1,
    V1beta1,
}

impl MetaVersion {
    fn parse(version: &str) -> Option<MetaVersion> {
        match version {
            "v1" => Some(MetaVersion::V1),
            "v1beta1" => Some(MetaVersion::V1beta1),
            _ => None,
        }
    }

    /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`.
    pub fn api_version(self) -> &'static str {
        match self {
            MetaVersion::V1 => "meta.k8s.io/v1",
            MetaVersion::V1beta1 => "meta.k8s.io/v1beta1",
        }
    }
}

/// One clause of an `Accept` header (goautoneg's `Accept`).
#[derive(Debug)]
struct Clause<'a> {
    type_: &'a str,
    subtype: &'a str,
    q: f64,
    params: Vec<(&'a str, &'a str)>,
}

impl Clause<'_> {
    /// How closely the clause names a media type: 2 exactly, 1 as `type/*`, 0 as `*/*`.
    fn specificity(&self, (type_, subtype): (&str, &str)) -> Option<u8> {
        match (self.type_, self.subtype) {
            (t, s) if t == type_ && s == subtype => Some(2),
            (t, "*") if t == type_ => Some(1),
            ("*", "*") => Some(0),
            _ => None,
        }
    }
}

/// Parses an `Accept` header as goautoneg does: clauses without a valid media range are
/// skipped, an unparsable `q` is 0, and the clauses are ordered by quality, then with
/// wildcards last (a stable sort, so equal clauses keep the client's order).
fn parse_accept(header: &str) -> Vec<Clause<'_>> {
    let mut clauses = Vec::new();
    for part in header.split(',') {
        let mut pieces = part.trim_matches(' ').split(';');
        let range = pieces.next().unwrap_or("");
        let mut halves = range.split('/');
        let type_ = halves.next().unwrap_or("").trim_matches(' ');
        let subtype = match (halves.next(), halves.next()) {
            (None, _) if type_ == "*" => "*",
            (Some(subtype), None) => subtype.trim_matches(' '),
            _ => continue,
        };
        let mut clause = Clause {
            type_,
            subtype,
            q: 1.0,
            params: Vec::new(),
        };
        for param in pieces {
            let Some((token, value)) = param.split_once('=') else {
                continue;
            };
            let token = token.trim_matches(' ');
            if token == "q" {
                clause.q = value.parse().unwrap_or(0.0);
            } else {
                clause.params.push((token, value.trim_matches(' ')));
            }
        }
        clauses.push(clause);
    }
    clauses.sort_by(|a, b| {
        b.q.total_cmp(&a.q)
            .then((a.type_ == "*").cmp(&(b.type_ == "*")))
            .then((a.subtype == "*").cmp(&(b.subtype == "*")))
    });
    clauses
}

/// The target a clause asks for on a media type, or `None` if this endpoint cannot serve it
/// (Kubernetes' `acceptMediaTypeOptions` with the request scope's `AllowsMediaTypeTransform`).
fn clause_target(clause: &Clause<'_>, media: (&str, &str), tables: bool) -> Option<Target> {
    let (mut kind, mut group, mut version) = (None, None, None);
    for &(token, value) in &clause.params {
        match token {
            "as" => kind = Some(value),
            "g" => group = Some(value),
            "v" => version = Some(value),
            // Only JSON and protobuf have a watch framing.
            "stream" if !value.is_empty() && (value != "watch" || media.1 == "yaml") => {
                return None;
            }
            "sv" if !value.is_empty() && value != "v1" => return None,
            _ => {}
        }
    }
    if kind.is_none() && group.is_none() && version.is_none() {
        return Some(Target::Object);
    }
    if group != Some(META_GROUP) {
        return None;
    }
    let version = MetaVersion::parse(version.unwrap_or(""))?;
    match kind.unwrap_or("") {
        "PartialObjectMetadata" => Some(Target::PartialObjectMetadata(version)),
        "PartialObjectMetadataList" => Some(Target::PartialObjectMetadataList(version)),
        "Table" if tables && media.0 == "application" && matches!(media.1, "json" | "yaml") => {
            Some(Target::Table(version))
        }
        _ => None,
    }
}

/// The target the request's `Accept` header asks for; `tables` says whether this endpoint
/// prints tables. No header is the default; nothing acceptable is a 406.
pub(crate) fn negotiate(headers: &HeaderMap, tables: bool) -> ApiResult<Target> {
    let header = headers
        .get(header::ACCEPT)
        .map(|h| h.to_str().unwrap_or("\u{0}"))
        .unwrap_or("");
    if header.is_empty() {
        return Ok(Target::Object);
    }
    let clauses = parse_accept(header);
    // A media type is refused when its most specific clause has q=0.
    let refused: Vec<bool> = MEDIA_TYPES
        .iter()
        .map(|&media| {
            let mut best = (None, false);
            for clause in &clauses {
                let specificity = clause.specificity(media);
                if specificity > best.0 {
                    best = (specificity, clause.q <= 0.0);
                }
            }
            best.1
        })
        .collect();
    for clause in clauses.iter().filter(|c| c.q > 0.0) {
        for (i, &media) in MEDIA_TYPES.iter().enumerate() {
            if refused[i] || clause.specificity(media).is_none() {
                continue;
            }
            if let Some(target) = clause_target(clause, media, tables) {
                return Ok(target);
            }
        }
    }
    let served: Vec<String> = MEDIA_TYPES
        .iter()
        .map(|(t, s)| format!("{t}/{s}"))
        .collect();
    Err(not_acceptable(format!(
        "only the following media types are accepted: {}",
        served.join(", ")
    )))
}

fn not_acceptable(message: String) -> ApiError {
    ApiError::new(406, "NotAcceptable", message)
}

/// The Go type kube-apiserver names in its 406 messages (`*core.PodList`).
fn go_type(info: &ResourceInfo, list: bool) -> String {
    let package = match info.group {
        "" => "core",
        group => group.split('.').next().unwrap_or(group),
    };
    let suffix = if list { "List" } else { "" };
    format!("*{package}.{}{suffix}", info.kind)
}

/// `includeObject` for a Table (Kubernetes' `ValidateTableOptions`): `Metadata` when not given.
pub(crate) fn include_object(value: Option<&str>) -> ApiResult<&str> {
    match value.unwrap_or("") {
        "" => Ok("Metadata"),
        ok @ ("Metadata" | "None" | "Object") => Ok(ok),
        other => Err(ApiError::bad_request(format!(
            "Unable to convert to Table as requested: includeObject: Invalid value: \"{other}\": must be 'Metadata', 'Object', 'None', or empty"
        ))),
    }
}

/// One object's `PartialObjectMetadata`.
pub(crate) fn partial(version: MetaVersion, obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": version.api_version(),
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Turns an answer's body into `target`. `include` is the request's `includeObject` and
/// `headers` whether a Table carries its column definitions (a watch sends them once).
pub(crate) fn transform(
    kind: &dyn Kind,
    target: Target,
    include: Option<&str>,
    body: Value,
    headers: bool,
) -> ApiResult<Value> {
    let is_status = body["kind"] == "Status" && body["apiVersion"] == "v1";
    if target == Target::Object || is_status {
        return Ok(body);
    }
    let info = kind.info();
    let items = body.get("items").and_then(Value::as_array);
    match target {
        Target::Object => Ok(body),
        Target::PartialObjectMetadata(version) => match items {
            Some(_) => Err(not_acceptable(format!(
                "you requested PartialObjectMetadata, but the requested object is a list ({})",
                go_type(info, true)
            ))),
            None => Ok(partial(version, &body)),
        },
        Target::PartialObjectMetadataList(version) => {
            let Some(items) = items else {
                return Err(not_acceptable(format!(
                    "you requested PartialObjectMetadataList, but the requested object is not a list ({})",
                    go_type(info, false)
                )));
            };
            let mut metadata = serde_json::Map::new();
            for field in ["resourceVersion", "continue", "remainingItemCount"] {
                if let Some(value) = body["metadata"].get(field) {
                    metadata.insert(field.to_owned(), value.clone());
                }
            }
            let items: Vec<Value> = items.iter().map(|o| partial(version, o)).collect();
            Ok(json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": version.api_version(),
                "metadata": metadata,
                "items": items,
            }))
        }
        Target::Table(version) => {
            let include = include_object(include)?;
            let objects: Vec<&Value> = match items {
                Some(items) => items.iter().collect(),
                None => vec![&body],
            };
            Ok(table(
                kind,
                version,
                include,
                &objects,
                &body["metadata"],
                headers,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str, tables: bool) -> ApiResult<Target> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        negotiate(&headers, tables)
    }

    #[test]
    fn accept_headers_pick_the_target_kube_apiserver_picks() {
        use MetaVersion::*;
        use Target::*;
        let pom = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
        let cases: &[(&str, bool, Option<Target>)] = &[
            ("application/json", true, Some(Object)),
            ("*/*", true, Some(Object)),
            ("application/*", true, Some(Object)),
            ("application/yaml", true, Some(Object)),
            (pom, true, Some(PartialObjectMetadata(V1))),
            (
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1",
                true,
                Some(PartialObjectMetadataList(V1beta1)),
            ),
            // client-go's metadata client: protobuf first, then JSON, both as metadata.
            (
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json",
                true,
                Some(PartialObjectMetadata(V1)),
            ),
            // kubectl get: a Table, else the objects.
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
                true,
                Some(Table(V1)),
            ),
            // No table printer here: the next clause.
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                false,
                Some(Object),
            ),
            // Tables are JSON or YAML only.
            (
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json",
                true,
                Some(Object),
            ),
            // Quality orders the clauses.
            (
                &format!("application/json;q=0.5,{pom}"),
                true,
                Some(PartialObjectMetadata(V1)),
            ),
            // q=0 refuses a media type even when a wildcard would take it.
            ("application/json;q=0,*/*", true, Some(Object)),
            ("application/json;stream=watch", true, Some(Object)),
            // What the server cannot serve.
            ("application/json;q=0", true, None),
            ("text/html", true, None),
            ("application/json;as=Table;g=meta.k8s.io;v=v1", false, None),
            ("application/json;as=Foo;g=meta.k8s.io;v=v1", true, None),
            (
                "application/json;as=PartialObjectMetadata;g=other;v=v1",
                true,
                None,
            ),
            (
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v2",
                true,
                None,
            ),
            ("application/json;as=PartialObjectMetadata", true, None),
            ("application/yaml;stream=watch", true, None),
            ("application/json;stream=other", true, None),
        ];
        for (header, tables, want) in cases {
            match (accept(header, *tables), want) {
                (Ok(got), Some(want)) => assert_eq!(got, *want, "{header}"),
                (Err(err), None) => {
                    assert_eq!((err.code, err.reason), (406, "NotAcceptable"), "{header}");
                    assert_eq!(
                        err.message,
                        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
                    );
                }
                (got, want) => panic!("{header}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(negotiate(&HeaderMap::new(), true).unwrap(), Object);
    }

    #[test]
    fn include_object_is_validated_like_table_options() {
        assert_eq!(include_object(None).unwrap(), "Metadata");
        assert_eq!(include_object(Some("")).unwrap(), "Metadata");
        for ok in ["None", "Metadata", "Object"] {
            assert_eq!(include_object(Some(ok)).unwrap(), ok);
        }
        let err = include_object(Some("All")).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message
                .contains(r#"includeObject: Invalid value: "All""#)
        );
    }
}
