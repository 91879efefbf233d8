//! API errors: every failure leaves the server as a `metav1.Status` with the HTTP code, reason
//! and message Kubernetes gives for the same failure, so clients (kubectl, client-go, kube-rs)
//! recognise it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use skiff_apimachinery::validation::FieldError;
use skiff_store::StoreError;

/// A failed request, as the `Status` the client receives.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason` (`NotFound`, `Invalid`, ...).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `Status.details`, when Kubernetes sends them.
    pub details: Option<Value>,
}

/// Who an error is about: resource (plural, with group) and name, for `Status.details`.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// API group ("" for core).
    pub group: &'a str,
    /// Resource (plural) for most errors, Kind for `Invalid`.
    pub resource: &'a str,
    /// Object name.
    pub name: &'a str,
}

impl<'a> Subject<'a> {
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_owned()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn details(&self) -> Value {
        json!({ "name": self.name, "group": self.group, "kind": self.resource })
    }
}

impl ApiError {
    /// An error with no details.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 for a URL that names no resource.
    pub fn not_found_path(path: &str) -> Self {
        let mut err = Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        err.details = Some(
            json!({ "causes": [{ "reason": "UnexpectedServerResponse", "message": format!("404 page not found: {path}") }] }),
        );
        err
    }

    /// 404 NotFound for an object.
    pub fn not_found(subject: Subject<'_>) -> Self {
        ApiError {
            details: Some(subject.details()),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{}\" not found", subject.qualified(), subject.name),
            )
        }
    }

    /// 409 AlreadyExists.
    pub fn already_exists(subject: Subject<'_>) -> Self {
        ApiError {
            details: Some(subject.details()),
            ..Self::new(
                409,
                "AlreadyExists",
                format!(
                    "{} \"{}\" already exists",
                    subject.qualified(),
                    subject.name
                ),
            )
        }
    }

    /// 409 Conflict: a stale resourceVersion or a failed precondition.
    pub fn conflict(subject: Subject<'_>, why: &str) -> Self {
        ApiError {
            details: Some(subject.details()),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": {why}",
                    subject.qualified(),
                    subject.name
                ),
            )
        }
    }

    /// The Conflict every stale update gets.
    pub fn stale(subject: Subject<'_>) -> Self {
        Self::conflict(
            subject,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid with one cause per field error. `subject.resource` is the Kind here, as in
    /// Kubernetes (`Deployment "web" is invalid: ...`).
    pub fn invalid(subject: Subject<'_>, errors: &[FieldError]) -> Self {
        let listed: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        let summary = match listed.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({ "reason": e.reason(), "message": e.message(), "field": e.field }))
            .collect();
        let name = subject.name;
        ApiError {
            details: Some(
                json!({ "name": name, "group": subject.group, "kind": subject.resource, "causes": causes }),
            ),
            ..Self::new(
                422,
                "Invalid",
                format!("{} \"{name}\" is invalid: {summary}", subject.resource),
            )
        }
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 410 Expired: a resourceVersion older than retained history.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// 413 RequestEntityTooLarge: a body over `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::request_entity_too_large(format!("limit is {limit}"))
    }

    /// 413 RequestEntityTooLarge with Kubernetes' prefix (`NewRequestEntityTooLargeError`).
    pub fn request_entity_too_large(message: impl std::fmt::Display) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: {message}"),
        )
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// 504 Timeout.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }

    /// Maps a store error for an object named by `subject`.
    pub fn from_store(err: StoreError, subject: Subject<'_>) -> Self {
        match err {
            StoreError::NotFound { .. } => Self::not_found(subject),
            StoreError::AlreadyExists { .. } => Self::already_exists(subject),
            StoreError::Conflict { .. } => Self::stale(subject),
            StoreError::Compacted {
                requested,
                compact_revision,
            } => Self::gone(format!(
                "too old resource version: {requested} ({compact_revision})"
            )),
            StoreError::FutureRevision { requested, current } => Self::timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            )),
            StoreError::ValueTooLarge { .. } => {
                Self::too_large(skiff_store::Limits::default().max_value_bytes)
            }
            StoreError::KeyTooLarge { .. }
            | StoreError::EmptyKey
            | StoreError::InvalidRange { .. } => Self::bad_request(err.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        crate::encode::json_response(code, &self.status())
    }
}

/// The result type of request handlers.
pub type ApiResult<T> = Result<T, ApiError>;
