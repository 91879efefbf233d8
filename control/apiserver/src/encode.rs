//! Response encoding: bodies with their `Content-Type`. (The `Table` form kubectl prints is
//! built in `handlers/table.rs`.)

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A JSON response.
pub fn json_response(code: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).expect("JSON values always serialize");
    bytes_response(code, bytes, "application/json")
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
