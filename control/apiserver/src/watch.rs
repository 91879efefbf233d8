//! `?watch=true`: a stream of `{"type": ..., "object": ...}` lines served from the watch cache,
//! each a `metav1.WatchEvent` as kube-apiserver writes it. A bookmark's object is an empty object
//! of the watched kind (Go writes its zero fields: a Pod's `"spec":{"containers":null}`), with only
//! its resourceVersion (and the initial-events-end annotation) set.
//!
//! Selectors apply to transitions as Kubernetes defines them: an object that starts matching is
//! ADDED, one that stops matching is DELETED. With `sendInitialEvents=true` the current objects
//! come first, then a BOOKMARK annotated `k8s.io/initial-events-end` (what kube-rs' and
//! client-go's streaming lists wait for). Each event's object is turned into what the request's
//! `Accept` header negotiated (`PartialObjectMetadata`, a `Table` row), as a single answer is.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::cache::{CacheEvent, Cached, EventType};
use crate::error::{ApiError, ApiResult};
use crate::handlers::{Ctx, Filter, Target, include_object, transform};
use crate::registry::Kind;

/// Everything the stream task needs, owned.
struct WatchStream {
    kind: Arc<dyn Kind>,
    stopping: tokio::sync::watch::Receiver<bool>,
    filter: Filter,
    /// What each event's object is turned into.
    target: Target,
    /// `includeObject`, for tables.
    include: Option<String>,
    bookmarks: bool,
    initial_events_end: bool,
    timeout: Option<Duration>,
}

/// Serves a watch request.
pub async fn serve(ctx: &Ctx<'_>) -> Response {
    match start(ctx) {
        Ok(body) => crate::encode::bytes_response(StatusCode::OK, body, "application/json"),
        Err(err) => err.into_response(),
    }
}

fn start(ctx: &Ctx<'_>) -> ApiResult<Body> {
    let info = ctx.info();
    let filter = Filter::from_query(ctx)?;
    let initial = ctx.param("sendInitialEvents") == Some("true");
    let from = match ctx.param("resourceVersion") {
        _ if initial => None,
        None | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?,
        ),
    };
    let timeout = ctx
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let stream = WatchStream {
        kind: ctx.kind.clone(),
        stopping: ctx.server.stopping.subscribe(),
        filter,
        target: ctx.target,
        include: match ctx.target {
            Target::Table(_) => Some(include_object(ctx.param("includeObject"))?.to_owned()),
            _ => None,
        },
        bookmarks: ctx.param("allowWatchBookmarks") == Some("true"),
        initial_events_end: initial,
        timeout,
    };
    let caches = &ctx.server.caches;
    let cache = caches
        .get(info.group, info.plural)
        .expect("every kind has a cache");
    let prefix = info.namespace_prefix(ctx.ns());
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    match cache.subscribe(&prefix, from, &caches.revision) {
        Ok(subscription) => {
            tokio::spawn(stream.run(subscription, tx));
        }
        // Too old: Kubernetes answers a watch with an ERROR event, not an HTTP error.
        Err(err) => {
            let line = line("ERROR", &err.status());
            let _ = tx.try_send(Ok(line));
        }
    }
    Ok(Body::from_stream(ReceiverStream::new(rx)))
}

/// One watch event line as kube-apiserver writes it: a `metav1.WatchEvent` whose `object` holds
/// the object's encoding (`object_json`), then `\n`.
fn event_line(kind: &str, object_json: &[u8]) -> Bytes {
    let mut text = Vec::with_capacity(object_json.len() + 32);
    text.extend_from_slice(br#"{"type":""#);
    text.extend_from_slice(kind.as_bytes());
    text.extend_from_slice(br#"","object":"#);
    text.extend_from_slice(object_json);
    text.extend_from_slice(b"}\n");
    Bytes::from(text)
}

/// A watch event line of an object value (a transformed object, a bookmark, a Status).
fn line(kind: &str, object: &Value) -> Bytes {
    let mut json = Vec::with_capacity(256);
    skiff_protobuf::json::write_object(&mut json, object);
    event_line(kind, &json)
}

impl WatchStream {
    async fn run(
        mut self,
        subscription: crate::cache::Subscription,
        tx: mpsc::Sender<Result<Bytes, Infallible>>,
    ) {
        let deadline = self.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut first = true;
        for event in &subscription.replay {
            if let Some(bytes) = self.encode(event, &mut first)
                && tx.send(Ok(bytes)).await.is_err()
            {
                return;
            }
        }
        if self.initial_events_end {
            let info = self.kind.info();
            let bookmark = json!({
                "kind": info.kind,
                "apiVersion": info.api_version(),
                "metadata": {
                    "resourceVersion": subscription.revision.to_string(),
                    "annotations": { "k8s.io/initial-events-end": "true" },
                },
            });
            let bookmark = self.bookmark(bookmark);
            if tx.send(Ok(line("BOOKMARK", &bookmark))).await.is_err() {
                return;
            }
        }
        let mut live = subscription.live;
        let mut stopping = self.stopping.clone();
        loop {
            if *stopping.borrow_and_update() {
                return;
            }
            let sleep = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = live.recv() => {
                    // `None`: the cache cut this watcher off (too slow, or relisting); ending the
                    // stream makes the client re-watch from its last resourceVersion.
                    let Some(event) = event else { return };
                    if let Some(bytes) = self.encode(&event, &mut first)
                        && tx.send(Ok(bytes)).await.is_err()
                    {
                        return;
                    }
                }
                _ = sleep => return,
                _ = tx.closed() => return,
                _ = stopping.changed() => return,
            }
        }
    }

    /// The wire form of a cache event for this watcher, or `None` if it does not see it.
    fn encode(&mut self, event: &CacheEvent, first: &mut bool) -> Option<Bytes> {
        let kind = self.kind.as_ref();
        let matches = |obj: &Cached| self.filter.matches_cached(kind, obj);
        let (kind_str, object) = match event.kind {
            EventType::Bookmark => {
                if !self.bookmarks || matches!(self.target, Target::Table(_)) {
                    return None;
                }
                let info = kind.info();
                let object = json!({
                    "kind": info.kind,
                    "apiVersion": info.api_version(),
                    "metadata": { "resourceVersion": event.revision.to_string() },
                });
                return Some(line("BOOKMARK", &self.bookmark(object)));
            }
            EventType::Added => {
                if !matches(&event.object) {
                    return None;
                }
                ("ADDED", &event.object)
            }
            EventType::Deleted => {
                if !matches(&event.object) {
                    return None;
                }
                ("DELETED", &event.object)
            }
            EventType::Modified => {
                let now = matches(&event.object);
                let before = event.prev.as_ref().is_some_and(|p| matches(p));
                match (before, now) {
                    (true, true) => ("MODIFIED", &event.object),
                    (false, true) => ("ADDED", &event.object),
                    (true, false) => ("DELETED", &event.object),
                    (false, false) => return None,
                }
            }
        };
        match self.target {
            // The cached bytes, encoded once for every watcher.
            Target::Object => Some(event_line(kind_str, &object.json)),
            target => {
                // Kubernetes sends an object it cannot turn into the target as it is.
                let transformed = transform(
                    kind,
                    target,
                    self.include.as_deref(),
                    object.value().clone(),
                    *first,
                )
                .unwrap_or_else(|_| object.value().clone());
                *first = false;
                Some(line(kind_str, &transformed))
            }
        }
    }

    /// A bookmark's object as this watch's target shows it (a table watch sends none but the
    /// end of the initial events, as it is).
    fn bookmark(&self, object: Value) -> Value {
        match self.target {
            Target::PartialObjectMetadata(_) | Target::PartialObjectMetadataList(_) => {
                transform(self.kind.as_ref(), self.target, None, object.clone(), false)
                    .unwrap_or(object)
            }
            Target::Object | Target::Table(_) => object,
        }
    }
}
