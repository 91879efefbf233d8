//! The generic resource handlers: one implementation of every verb, for every kind.
//!
//! Writes follow Kubernetes' order: decode the body into the kind's canonical form (unknown
//! fields per `fieldValidation`) → fill server-owned metadata → admission → validation →
//! storage. Updates of every flavour (PUT, PATCH, `/status`, `/scale`) meet in [`write_update`],
//! which owns the spec/status split, `metadata.generation` and finalizer-driven deletion.
//!
//! One module per step: `read` (get, list, selectors), `body` (encodings, decoding,
//! shared validation), `create`, `update` (PUT, PATCH, status, scale, binding), `delete`,
//! `negotiation` (what the `Accept` header turns an answer into: the object, its
//! `PartialObjectMetadata`, a `Table`), `table` (server-side printing), `logs` (pods/log,
//! proxied to the node's kubelet).

mod apply;
mod body;
mod create;
mod delete;
mod logs;
mod negotiation;
mod read;
pub mod streaming;
mod table;
mod update;

use apply::*;
use body::*;
use create::*;
use delete::*;
use read::*;
use update::*;

pub(crate) use negotiation::{Target, include_object, negotiate, transform};
pub(crate) use read::Filter;
pub(crate) use table::{human_duration, table};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};
use skiff_apimachinery::patch;
use skiff_apimachinery::selector::{FieldSelector, LabelSelector};
use skiff_apimachinery::validation::{self, FieldError, FieldPath};

use crate::Server;
use crate::admission::Attributes;
use crate::encode::json_response;
use crate::error::{ApiError, ApiResult, Subject};
use crate::meta;
use crate::registry::{Column, Generation, Kind, ResourceInfo, Subresource};
use crate::request::RequestInfo;
use crate::storage::{Continue, subject};

/// How long a consistent list waits for the watch cache before reading the store instead.
pub(super) const CACHE_WAIT: Duration = Duration::from_millis(100);
/// How often a write that lost a race is retried when the request did not pin a version.
pub(super) const MAX_RETRIES: usize = 16;

/// One resource request being served.
pub(crate) struct Ctx<'a> {
    pub server: &'a Server,
    pub kind: &'a Arc<dyn Kind>,
    pub request: &'a RequestInfo,
    pub query: &'a HashMap<String, String>,
    pub headers: &'a HeaderMap,
    /// What the answer is turned into, as the `Accept` header asked.
    pub target: Target,
}

impl Ctx<'_> {
    pub fn info(&self) -> &ResourceInfo {
        self.kind.info()
    }

    pub fn ns(&self) -> Option<&str> {
        self.request.namespace.as_deref()
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn dry_run(&self) -> bool {
        self.param("dryRun") == Some("All")
    }

    fn subject<'b>(&'b self, name: &'b str) -> Subject<'b> {
        subject(self.info(), name)
    }

    fn kind_subject<'b>(&'b self, name: &'b str) -> Subject<'b> {
        Subject {
            group: self.info().group,
            resource: self.info().kind,
            name,
        }
    }
}

/// A successful answer: status code, body, and warnings for the `Warning` header.
pub(crate) struct Answer {
    code: StatusCode,
    body: Value,
    /// The body already encoded (a create's stored bytes, lists streamed from the watch
    /// cache's serialized objects); when set, `body` is unused.
    raw: Option<axum::body::Body>,
    warnings: Vec<String>,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Answer {
            code: StatusCode::OK,
            body,
            raw: None,
            warnings: Vec::new(),
        }
    }
}

/// Serves one resource request.
pub async fn serve(
    server: &Server,
    request: RequestInfo,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
    upgrade: streaming::Upgrade,
) -> Response {
    let Some(kind) = server
        .registry
        .lookup(&request.group, &request.version, &request.resource)
    else {
        return ApiError::not_found_path(&format!("/{}/{}", request.group, request.resource))
            .into_response();
    };
    if request.namespace.is_some() && !kind.info().namespaced {
        return ApiError::not_found_path(&request.resource).into_response();
    }
    let sub = request.subresource.as_deref();
    if let Some(sub) = sub {
        let known = kind.info().subresources.iter().any(|s| s.name() == sub);
        if !known {
            return ApiError::not_found_path(sub).into_response();
        }
    }
    // The objects and their status print as tables; a Scale or a Binding has no printer.
    let negotiated = negotiate(headers, matches!(sub, None | Some("status")));
    let ctx = Ctx {
        server,
        kind,
        request: &request,
        query,
        headers,
        target: negotiated.as_ref().map_or(Target::Object, |t| *t),
    };
    let streamed = matches!(
        sub,
        Some("log" | "exec" | "attach" | "portforward" | "proxy")
    );
    if let Err(err) = negotiated
        && !streamed
    {
        return err.into_response();
    }
    if request.verb == "watch" && sub.is_none() {
        return crate::watch::serve(&ctx).await;
    }
    // Logs stream from the node's kubelet, past the JSON answer handling.
    if request.verb == "get" && sub == Some("log") {
        return logs::serve_log(&ctx).await;
    }
    // exec, attach and port-forward: upgraded connections to the node's kubelet.
    if matches!(sub, Some("exec" | "attach" | "portforward"))
        && matches!(request.verb, "get" | "create")
    {
        return streaming::serve(&ctx, upgrade).await;
    }
    // nodes/proxy: the node's kubelet API, streamed back as it answers.
    if sub == Some("proxy") {
        return logs::serve_node_proxy(&ctx).await;
    }
    if matches!(request.verb, "create" | "update")
        && let Err(err) = check_encoding(&ctx)
    {
        return err.into_response();
    }
    let result = match (request.verb, sub) {
        ("get", None | Some("status" | "approval")) => get(&ctx).await,
        ("get", Some("scale")) => get(&ctx).await.map(|a| Answer::ok(scale_view(&a.body))),
        ("get", Some("ephemeralcontainers")) => get(&ctx).await,
        ("list", None) => list(&ctx).await,
        ("create", None) => create(&ctx, &body).await,
        ("create", Some("binding")) => bind(&ctx, &body).await,
        ("update", None) => put(&ctx, &body, Part::Main).await,
        ("update", Some("status" | "approval")) => put(&ctx, &body, Part::Status).await,
        ("update", Some("scale")) => put(&ctx, &body, Part::Scale).await,
        ("update", Some("ephemeralcontainers")) => {
            put(&ctx, &body, Part::EphemeralContainers).await
        }
        ("patch", None) => patch(&ctx, &body, Part::Main).await,
        ("patch", Some("status" | "approval")) => patch(&ctx, &body, Part::Status).await,
        ("patch", Some("scale")) => patch(&ctx, &body, Part::Scale).await,
        ("patch", Some("ephemeralcontainers")) => {
            patch(&ctx, &body, Part::EphemeralContainers).await
        }
        ("delete", None) => delete(&ctx, &body).await,
        ("deletecollection", None) => delete_collection(&ctx, &body).await,
        (verb, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb})"
        ))),
    };
    match result {
        Ok(answer) => respond(&ctx, answer),
        Err(err) => err.into_response(),
    }
}

fn respond(ctx: &Ctx<'_>, answer: Answer) -> Response {
    let mut response = match answer.raw {
        Some(raw) => crate::encode::bytes_response(answer.code, raw, "application/json"),
        None => match transform(
            ctx.kind.as_ref(),
            ctx.target,
            ctx.param("includeObject"),
            answer.body,
            true,
        ) {
            Ok(body) => json_response(answer.code, &body),
            Err(err) => return err.into_response(),
        },
    };
    for warning in warning_texts(&answer.warnings) {
        let text = format!("299 - {}", serde_json::Value::String(warning));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// Warnings a response carries at most, in characters, before they are cut (kube-apiserver's
/// warning recorder: a body with 100,000 unknown fields must not answer 100,000 headers).
const WARNINGS_TOTAL_CHARS: usize = 4 * 1024;
/// What each warning keeps once they are cut.
const WARNING_CUT_CHARS: usize = 256;

/// The warnings to send, as kube-apiserver's recorder sends them: each text once, all of them
/// whole while they fit in [`WARNINGS_TOTAL_CHARS`]; beyond that every one is cut to
/// [`WARNING_CUT_CHARS`] and they stop once the total is reached.
fn warning_texts(warnings: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<&String> = warnings
        .iter()
        .filter(|w| !w.is_empty() && seen.insert(*w))
        .collect();
    let total: usize = unique.iter().map(|w| w.chars().count()).sum();
    if total <= WARNINGS_TOTAL_CHARS {
        return unique.into_iter().cloned().collect();
    }
    let mut written = 0;
    let mut out = Vec::new();
    for warning in unique {
        if written >= WARNINGS_TOTAL_CHARS {
            break;
        }
        let cut: String = warning.chars().take(WARNING_CUT_CHARS).collect();
        written += cut.chars().count();
        out.push(cut);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_deduplicated_and_cut_like_kube_apiserver() {
        let few = vec![
            "a".to_owned(),
            "b".to_owned(),
            "a".to_owned(),
            String::new(),
        ];
        assert_eq!(warning_texts(&few), ["a", "b"]);
        // Whole while they fit.
        let fitting: Vec<String> = (0..4).map(|i| format!("{i}{}", "x".repeat(1000))).collect();
        assert_eq!(warning_texts(&fitting), fitting);
        // 100,000 distinct unknown fields: cut to 256 characters each, about 4 KiB in all.
        let many: Vec<String> = (0..100_000)
            .map(|i| format!("unknown field \"spec.f{i}{}\"", "y".repeat(300)))
            .collect();
        let sent = warning_texts(&many);
        assert_eq!(sent.len(), WARNINGS_TOTAL_CHARS.div_ceil(WARNING_CUT_CHARS));
        assert!(sent.iter().all(|w| w.chars().count() == WARNING_CUT_CHARS));
        assert!(sent[0].starts_with("unknown field \"spec.f0"));
    }
}
