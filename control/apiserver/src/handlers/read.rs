//! Reads: get and list (from the watch cache when it is fresh enough, else the store), and
//! the label/field selector filter shared with watches.

use super::*;
use std::convert::Infallible;

use crate::cache::Cached;

pub(super) fn name_of<'a>(ctx: &'a Ctx<'_>) -> ApiResult<&'a str> {
    ctx.request
        .name
        .as_deref()
        .ok_or_else(|| ApiError::method_not_allowed("a name is required"))
}

pub(super) async fn get(ctx: &Ctx<'_>) -> ApiResult<Answer> {
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

    /// [`Filter::matches`] for a cached object, which is decoded only when a selector has to
    /// look inside it (most lists and watches have none, and decoding every object of a list
    /// or every event of a watch would cost more than serving it).
    pub fn matches_cached(&self, kind: &dyn Kind, obj: &Cached) -> bool {
        self.is_empty() || self.matches(kind, obj.value())
    }

    fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }
}

pub(super) fn list_body(
    info: &ResourceInfo,
    items: Vec<Value>,
    revision: i64,
    next: Option<String>,
) -> Value {
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

/// A list's body with the cached JSON of each object spliced in: no copy of the values and no
/// second encoding. The head is encoded with an empty `items` (without it, Go writes
/// `"items":null`) and the objects go before its closing `]}`. `None` if `items` does not come
/// last (a list kind the encoder does not know, written with sorted keys).
///
/// The body is streamed in chunks of about [`LIST_CHUNK`] bytes rather than built whole, as
/// kube-apiserver streams its encoding: a list of 10,000 pods would otherwise take a fresh
/// 15 MB buffer per request.
fn splice_list(head: Vec<u8>, objects: Vec<Arc<Cached>>) -> axum::body::Body {
    let mut objects = objects.into_iter();
    let mut chunk = Some(head);
    let mut first = true;
    let chunks = std::iter::from_fn(move || {
        let mut out = chunk.take()?;
        for object in objects.by_ref() {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            out.extend_from_slice(&object.json);
            if out.len() >= LIST_CHUNK {
                chunk = Some(Vec::with_capacity(LIST_CHUNK + 4096));
                return Some(out);
            }
        }
        out.extend_from_slice(b"]}\n");
        Some(out)
    });
    let stream = futures::stream::iter(chunks.map(|c| Ok::<_, Infallible>(Bytes::from(c))));
    axum::body::Body::from_stream(stream)
}

/// [`splice_list`]'s head: the list's JSON up to the opening `[` of its items.
fn list_head(info: &ResourceInfo, revision: i64) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(128);
    skiff_protobuf::json::write_object(&mut head, &list_body(info, Vec::new(), revision, None));
    let open = head.strip_suffix(b"[]}")?.len() + 1;
    head.truncate(open);
    Some(head)
}

/// About how much of a list's body is written at a time.
const LIST_CHUNK: usize = 64 * 1024;

pub(super) async fn list(ctx: &Ctx<'_>) -> ApiResult<Answer> {
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
            let matching: Vec<Arc<Cached>> = objects
                .into_iter()
                .filter(|o| filter.matches_cached(ctx.kind.as_ref(), o))
                .collect();
            // An answer to transform is built as a value; the objects as they are are spliced.
            if ctx.target == Target::Object
                && let Some(head) = list_head(info, revision)
            {
                return Ok(Answer {
                    raw: Some(splice_list(head, matching)),
                    ..Answer::ok(Value::Null)
                });
            }
            let items = matching.iter().map(|o| o.value().clone()).collect();
            return Ok(Answer::ok(list_body(info, items, revision, None)));
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
