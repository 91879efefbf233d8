//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) as Kubernetes JSON.
//!
//! kubectl and every client-go program send built-in kinds as protobuf (`kubectl create
//! configmap`, `kubectl run`, `kubectl expose`, ...) and do not retry with JSON when refused, while
//! skiff's apiserver works on JSON. [`decode`] turns such a body into exactly the JSON that the real
//! apiserver would have produced from it: the JSON Go's `encoding/json` writes for the Go struct
//! that the protobuf decodes into.
//!
//! That last point is why this crate is driven by a table generated from the Go types (see
//! `tools/`), not by `.proto` descriptors: protobuf cannot tell an unset field from a zero one,
//! Go's types can. Go sends a non-pointer field even when it is zero, and its JSON then leaves that
//! zero out (`omitempty`); a pointer is sent only when set, and its zero is meaningful (`replicas:
//! 0`, `automountServiceAccountToken: false`). Reading every zero as a value would fill objects
//! with `restartPolicy: ""` and `nodePort: 0` that defaulting then never replaces; dropping every
//! zero would lose the meaningful ones. The table also carries the few JSON names that differ
//! from the protobuf names and the embedded structs that JSON flattens (`Volume.volumeSource`,
//! `Probe.handler`, `ConfigMapKeySelector.localObjectReference`).
//!
//! The same table drives [`json`], which writes a JSON value as kube-apiserver writes the Go struct
//! (declaration order, `omitempty`, zero structs, Go's escaping), for response bodies.
//!
//! The table covers the API of the Kubernetes version it was generated from
//! ([`KUBERNETES_VERSION`]). Fields a newer client adds are skipped, as Go's decoder skips unknown
//! fields.
#![deny(missing_docs)]

mod decode;
mod gotime;
pub mod json;
#[rustfmt::skip]
mod schema;
mod schema_types;
mod wire;

use serde_json::Value;

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The Kubernetes version whose built-in kinds [`decode`] knows.
pub const KUBERNETES_VERSION: &str = schema::KUBERNETES_VERSION;

/// The 4 bytes that start every Kubernetes protobuf body: `k8s\0`.
pub(crate) const MAGIC: [u8; 4] = *b"k8s\0";

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body does not start with `k8s\0`.
    #[error(r#"not a Kubernetes protobuf body: it does not start with the magic bytes "k8s\0""#)]
    BadMagic,
    /// The `runtime.Unknown` envelope after the magic bytes is malformed.
    #[error("malformed protobuf envelope (runtime.Unknown): {0}")]
    BadEnvelope(String),
    /// The envelope names no apiVersion or no kind.
    #[error("the protobuf envelope does not name the object's apiVersion and kind")]
    MissingTypeMeta,
    /// No built-in kind has this apiVersion and kind.
    #[error(
        "no protobuf schema for kind {kind:?} in apiVersion {api_version:?} (protobuf is \
         understood for the built-in kinds of Kubernetes {KUBERNETES_VERSION})"
    )]
    UnknownKind {
        /// The envelope's apiVersion.
        api_version: String,
        /// The envelope's kind.
        kind: String,
    },
    /// The envelope's `contentEncoding` is set (Kubernetes never sets it).
    #[error("unsupported contentEncoding {0:?} in the protobuf envelope")]
    UnsupportedContentEncoding(String),
    /// The envelope's `contentType` is neither protobuf nor JSON.
    #[error("unsupported contentType {0:?} in the protobuf envelope")]
    UnsupportedContentType(String),
    /// The object's bytes do not fit its message type.
    #[error("malformed protobuf at {at}: {reason}")]
    Malformed {
        /// The Go type and field where decoding failed, such as `k8s.io/api/core/v1.PodSpec.containers`.
        at: String,
        /// What was wrong.
        reason: String,
    },
}

/// Decodes a Kubernetes protobuf body (magic `k8s\0`, then a `runtime.Unknown` whose `raw` holds
/// the object) into the object's Kubernetes JSON, with `apiVersion` and `kind` set from the
/// envelope.
///
/// The JSON is what Go's `encoding/json` writes for the decoded Go struct: unset and `omitempty`
/// zero fields are left out, `IntOrString` is a number or a string, quantities are strings, times
/// are RFC 3339, `[]byte` is base64, and `RawExtension`/`FieldsV1` hold their embedded JSON.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    decode::body(body)
}

/// Whether a `Content-Type` header value is the Kubernetes protobuf media type (parameters such as
/// `;stream=watch` and letter case are ignored).
pub fn is_protobuf(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case(CONTENT_TYPE)
}

/// The message for `apiVersion` and `kind`. The meta.k8s.io/v1 kinds (`DeleteOptions`, `Status`,
/// ...) are registered by Kubernetes in every group version, so they are found under any
/// apiVersion.
pub(crate) fn lookup(api_version: &str, kind: &str) -> Option<u16> {
    if let Ok(i) = schema::KINDS.binary_search_by(|(v, k, _)| (*v, *k).cmp(&(api_version, kind))) {
        return Some(schema::KINDS[i].2);
    }
    schema::META_KINDS
        .binary_search_by(|(k, _)| (*k).cmp(kind))
        .ok()
        .map(|i| schema::META_KINDS[i].1)
}
