//! Response encoding: bodies with their `Content-Type`, written as kube-apiserver writes them
//! (`skiff_protobuf::json`: Go's `encoding/json` of the Go type, then `\n`). (The `Table` form
//! kubectl prints is built in `handlers/table.rs`.)

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A JSON response: `body` as kube-apiserver's serializer writes the Go type of its
/// `apiVersion`/`kind` (a kind the schema does not know, such as a custom resource, with its keys
/// sorted, as Go writes a `map[string]interface{}`).
pub fn json_response(code: StatusCode, body: &Value) -> Response {
    bytes_response(
        code,
        skiff_protobuf::json::to_body(body),
        "application/json",
    )
}

/// A response of already-encoded bytes.
pub fn bytes_response(
    code: StatusCode,
    body: impl Into<axum::body::Body>,
    content_type: &'static str,
) -> Response {
    let mut response = (code, body.into()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
