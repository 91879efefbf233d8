//! Field validation as the Kubernetes apiserver performs it, with the same error texts.
//!
//! Three layers live here:
//!
//! * [`FieldError`] and [`FieldPath`]: one problem with one field of an object, rendered the way
//!   Kubernetes renders a `StatusCause` (`Invalid value: "My_Name": a lowercase RFC 1123 ...`) and
//!   the way it joins many of them into the message of a 422 `Invalid` status
//!   ([`aggregate_message`], [`invalid_message`]).
//! * String validators (`is_*`) that return the list of problems with a value, each a sentence
//!   fragment such as `must be no more than 63 characters`. An empty list means the value is valid.
//!   The wording, including the regular expressions quoted in the messages, is Kubernetes'
//!   long-standing wording, because clients and users match on it. The checks themselves are
//!   written by hand: the patterns are small enough that no regex engine is needed.
//! * Object-level checks ([`validate_object_meta`], [`validate_labels`], ...) that turn those
//!   problems into [`FieldError`]s at the right field paths.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ManagedFieldsEntry, ObjectMeta, OwnerReference,
    StatusCause,
};
use serde_json::Value;

use crate::quantity::Quantity;

/// Maximum length in bytes of a DNS-1123 label (namespace names, many object names).
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Maximum length in bytes of a DNS-1123 subdomain (most object names).
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Maximum length in bytes of a DNS-1035 label (Service names).
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
/// Maximum length in bytes of the name part of a qualified name (label and annotation keys).
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// Maximum length in bytes of a label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Maximum length in bytes of a port name (an IANA service name).
pub const PORT_NAME_MAX_LENGTH: usize = 15;
/// Maximum total size in bytes of an object's annotations (keys plus values): 256 KiB.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 * 1024;
/// Maximum length in bytes of a managed-fields entry's subresource name.
pub const MAX_SUBRESOURCE_NAME_LENGTH: usize = 256;

/// Detail text for a field that may not change after creation.
pub const FIELD_IMMUTABLE_ERROR_MSG: &str = "field is immutable";
/// Detail text for a number that may not be negative.
pub const IS_NEGATIVE_ERROR_MSG: &str = "must be greater than or equal to 0";
/// Detail text for a number that must be positive.
pub const IS_NOT_POSITIVE_ERROR_MSG: &str = "must be greater than zero";

/// Finalizer asking the garbage collector to orphan an object's dependents.
pub const FINALIZER_ORPHAN_DEPENDENTS: &str = "orphan";
/// Finalizer asking the garbage collector to delete an object's dependents first.
pub const FINALIZER_DELETE_DEPENDENTS: &str = "foregroundDeletion";

// ---------------------------------------------------------------------------------------------
// Field paths
// ---------------------------------------------------------------------------------------------

/// The path of a field inside an object, printed the Kubernetes way:
/// `spec.template.spec.containers[0].image`, `metadata.labels[app]`.
///
/// Every builder method borrows `self` and returns a new path, so one base path can be extended
/// in several directions:
///
/// ```ignore
/// let meta = FieldPath::new("metadata");
/// assert_eq!(meta.child("labels").key("app").to_string(), "metadata.labels[app]");
/// assert_eq!(meta.child("ownerReferences").index(0).to_string(), "metadata.ownerReferences[0]");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(String);

impl FieldPath {
    /// A path starting at the field `name` (which may itself be dotted, e.g. `"spec.template"`).
    pub fn new(name: &str) -> Self {
        FieldPath(name.to_owned())
    }

    /// The empty path, for errors about the object as a whole or as a base to build on.
    pub fn root() -> Self {
        FieldPath(String::new())
    }

    /// Whether this is the empty path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path of the field `name` inside this one (`a` → `a.name`).
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            return FieldPath(name.to_owned());
        }
        let mut s = String::with_capacity(self.0.len() + 1 + name.len());
        s.push_str(&self.0);
        s.push('.');
        s.push_str(name);
        FieldPath(s)
    }

    /// The path of element `index` of this list (`a` → `a[3]`).
    pub fn index(&self, index: usize) -> Self {
        FieldPath(format!("{}[{index}]", self.0))
    }

    /// The path of the entry `key` of this map (`a` → `a[key]`).
    pub fn key(&self, key: &str) -> Self {
        FieldPath(format!("{}[{key}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for FieldPath {
    fn from(s: &str) -> Self {
        FieldPath::new(s)
    }
}

impl From<FieldPath> for String {
    fn from(p: FieldPath) -> Self {
        p.0
    }
}

// ---------------------------------------------------------------------------------------------
// Field errors
// ---------------------------------------------------------------------------------------------

/// What kind of problem a [`FieldError`] reports. Each kind maps to one Kubernetes
/// `StatusCause` reason ([`FieldErrorKind::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldErrorKind {
    /// A value that had to be looked up was not found.
    NotFound,
    /// A required value is missing (empty string, null, empty list).
    Required,
    /// A value that must be unique is repeated.
    Duplicate,
    /// A value is malformed.
    Invalid,
    /// A value is not one of an enumerated set.
    NotSupported,
    /// A well-formed value is not allowed in this situation.
    Forbidden,
    /// A value is longer than allowed; the value itself is never printed.
    TooLong,
    /// A list has more items than allowed.
    TooMany,
    /// Something went wrong that is not the client's fault.
    Internal,
    /// A value does not have the type the schema asks for.
    TypeInvalid,
    /// A value Kubernetes' decoder itself refuses (a quantity that does not parse). Such an
    /// object never reaches validation there: the request fails with 400 BadRequest
    /// ([`decode_error_message`]), not with a 422 cause.
    Undecodable,
}

impl FieldErrorKind {
    /// The `StatusCause.reason` Kubernetes uses for this kind, e.g. `FieldValueInvalid`.
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::NotFound => "FieldValueNotFound",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::Internal => "InternalError",
            FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorKind::Undecodable => "FieldValueInvalid",
        }
    }

    /// The words that open a message of this kind, e.g. `Invalid value`.
    pub fn title(self) -> &'static str {
        match self {
            FieldErrorKind::NotFound => "Not found",
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid | FieldErrorKind::Undecodable => {
                "Invalid value"
            }
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::Internal => "Internal error",
        }
    }

    /// Whether messages of this kind leave the offending value out.
    fn omits_value(self) -> bool {
        matches!(
            self,
            FieldErrorKind::Required
                | FieldErrorKind::Forbidden
                | FieldErrorKind::TooLong
                | FieldErrorKind::Internal
        )
    }
}

/// One problem with one field, like apimachinery's `field.Error`.
///
/// [`FieldError::message`] is the text of the `StatusCause.message`; `Display` prefixes the field
/// path (`metadata.name: Required value: name or generateName is required`), which is how each
/// error appears inside the message of a 422 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// What kind of problem this is.
    pub kind: FieldErrorKind,
    /// The path of the field, e.g. `metadata.labels`.
    pub field: String,
    /// The offending value; `None` when it is not to be shown.
    pub value: Option<Value>,
    /// The explanation, e.g. `must be no more than 63 characters`; may be empty.
    pub detail: String,
}

impl FieldError {
    /// A general constructor.
    pub fn new(
        kind: FieldErrorKind,
        field: impl fmt::Display,
        value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            kind,
            field: field.to_string(),
            value,
            detail: detail.into(),
        }
    }

    /// A required value is missing: `Required value[: <detail>]`.
    pub fn required(field: impl fmt::Display, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Required, field, None, detail)
    }

    /// A malformed value: `Invalid value: <value>[: <detail>]`.
    pub fn invalid(
        field: impl fmt::Display,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(FieldErrorKind::Invalid, field, Some(value.into()), detail)
    }

    /// A malformed value already rendered as Kubernetes prints it (Go's `%#v` of a struct, see
    /// [`go_struct`]): `Invalid value: <rendered>: <detail>`. The rendering lives in the detail,
    /// so [`FieldError::value`] is `None`.
    pub fn invalid_rendered(field: impl fmt::Display, rendered: &str, detail: &str) -> Self {
        Self::new(
            FieldErrorKind::Invalid,
            field,
            None,
            format!("{rendered}: {detail}"),
        )
    }

    /// A value outside an enumerated set:
    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported<S: AsRef<str>>(
        field: impl fmt::Display,
        value: impl Into<Value>,
        valid: &[S],
    ) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| quote(v.as_ref())).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(
            FieldErrorKind::NotSupported,
            field,
            Some(value.into()),
            detail,
        )
    }

    /// A repeated value that must be unique: `Duplicate value: <value>`.
    pub fn duplicate(field: impl fmt::Display, value: impl Into<Value>) -> Self {
        Self::new(FieldErrorKind::Duplicate, field, Some(value.into()), "")
    }

    /// A value longer than `max` bytes: `Too long: may not be more than <max> bytes`. The value is
    /// kept in the error but, as in Kubernetes, never printed.
    pub fn too_long(field: impl fmt::Display, value: impl Into<Value>, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        Self::new(
            FieldErrorKind::TooLong,
            field,
            Some(value.into()),
            format!("may not be more than {max} {unit}"),
        )
    }

    /// A list with more than `max` items: `Too many: <actual>: must have at most <max> items`
    /// (the count is left out when `actual` is `None`).
    pub fn too_many(field: impl fmt::Display, actual: Option<usize>, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::new(
            FieldErrorKind::TooMany,
            field,
            actual.map(Value::from),
            format!("must have at most {max} {unit}"),
        )
    }

    /// A well-formed value that is not allowed here: `Forbidden: <detail>`.
    pub fn forbidden(field: impl fmt::Display, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Forbidden, field, None, detail)
    }

    /// A value that was looked up and not found: `Not found: <value>`.
    pub fn not_found(field: impl fmt::Display, value: impl Into<Value>) -> Self {
        Self::new(FieldErrorKind::NotFound, field, Some(value.into()), "")
    }

    /// A failure that is not the client's fault: `Internal error: <detail>`.
    pub fn internal(field: impl fmt::Display, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Internal, field, None, detail)
    }

    /// A value of the wrong type: `Invalid value: <value>: <detail>`, with reason
    /// `FieldValueTypeInvalid`.
    pub fn type_invalid(
        field: impl fmt::Display,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(
            FieldErrorKind::TypeInvalid,
            field,
            Some(value.into()),
            detail,
        )
    }

    /// A value the decoder refuses: `detail` is the decoder's error (for a quantity, Kubernetes'
    /// `quantities must match the regular expression ...`).
    pub fn undecodable(
        field: impl fmt::Display,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(
            FieldErrorKind::Undecodable,
            field,
            Some(value.into()),
            detail,
        )
    }

    /// The `StatusCause.reason` for this error, e.g. `FieldValueRequired`.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The `StatusCause.message` for this error: the error without its field path, e.g.
    /// `Invalid value: "My_Name": a lowercase RFC 1123 subdomain must consist of ...`.
    pub fn message(&self) -> String {
        let mut s = self.kind.title().to_owned();
        if !self.kind.omits_value()
            && let Some(value) = &self.value
        {
            s.push_str(": ");
            s.push_str(&render_value(value));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// This error as a Kubernetes `StatusCause` (reason, message and field).
    pub fn to_status_cause(&self) -> StatusCause {
        StatusCause {
            field: Some(self.field.clone()),
            message: Some(self.message()),
            reason: Some(self.reason().to_owned()),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

impl std::error::Error for FieldError {}

/// The errors as Kubernetes joins them into one message: a single error alone, several inside
/// `[...]` separated by `, `, with repeats (same text) left out. Empty for no errors.
pub fn aggregate_message(errors: &[FieldError]) -> String {
    let mut seen = BTreeSet::new();
    let mut parts = Vec::new();
    for e in errors {
        let text = e.to_string();
        if seen.insert(text.clone()) {
            parts.push(text);
        }
    }
    match parts.len() {
        0 => String::new(),
        1 => parts.remove(0),
        _ => format!("[{}]", parts.join(", ")),
    }
}

/// The message of the 422 `Invalid` status Kubernetes returns for an object that failed
/// validation: `<Kind>[.<group>] "<name>" is invalid: <aggregate>`, e.g.
/// `Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or
/// equal to 0`.
pub fn invalid_message(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> String {
    let qualified_kind = if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    };
    let aggregate = aggregate_message(errors);
    if aggregate.is_empty() {
        format!("{qualified_kind} {} is invalid", quote(name))
    } else {
        format!("{qualified_kind} {} is invalid: {aggregate}", quote(name))
    }
}

/// The message of the 400 BadRequest for a body Kubernetes cannot decode into its kind
/// (`transformDecodeError`): `Pod in version "v1" cannot be handled as a Pod: <error>`. `version`
/// is the bare version (`v1` for `apps/v1` too).
pub fn decode_error_message(kind: &str, version: &str, error: &str) -> String {
    format!(
        "{kind} in version {} cannot be handled as a {kind}: {error}",
        quote(version)
    )
}

/// The first error that makes the whole request a decode error, if any.
pub fn first_undecodable(errors: &[FieldError]) -> Option<&FieldError> {
    errors
        .iter()
        .find(|e| e.kind == FieldErrorKind::Undecodable)
}

/// The `StatusCause`s for a list of errors, in order.
pub fn status_causes(errors: &[FieldError]) -> Vec<StatusCause> {
    errors.iter().map(FieldError::to_status_cause).collect()
}

/// Renders a value as Kubernetes prints a bad value: strings quoted Go-style, numbers and
/// booleans bare, null as `null`, lists of strings as Go prints a `[]string`, anything else as
/// compact JSON.
fn render_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let quoted: Vec<String> = items
                .iter()
                .map(|v| quote(v.as_str().unwrap_or_default()))
                .collect();
            format!("[]string{{{}}}", quoted.join(", "))
        }
        other => other.to_string(),
    }
}

/// Quotes a string the way Go's `%q` does: double quotes, backslash escapes for quotes,
/// backslashes and control characters, printable Unicode kept as is.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_go_unprintable(c) => {
                let n = c as u32;
                if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An approximation of "not printable" in Go's sense for non-ASCII characters: controls, spaces
/// other than U+0020, and the invisible format characters most likely to sneak into input.
fn is_go_unprintable(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

// ---------------------------------------------------------------------------------------------
// Message helpers
// ---------------------------------------------------------------------------------------------

/// `must be no more than <n> characters`.
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// The explanation of a failed pattern match: `<msg> (e.g. 'a',  or 'b', regex used for
/// validation is '<pattern>')`. The doubled space before each `or` is part of Kubernetes'
/// wording and kept for fidelity.
pub fn regex_error(msg: &str, pattern: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{pattern}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push('\'');
        s.push_str(example);
        s.push_str("', ");
    }
    s.push_str("regex used for validation is '");
    s.push_str(pattern);
    s.push_str("')");
    s
}

/// `must be non-empty`.
pub fn empty_error() -> String {
    "must be non-empty".to_owned()
}

/// `must be between <lo> and <hi>, inclusive`.
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

// ---------------------------------------------------------------------------------------------
// Character-level matchers (the patterns quoted in the messages, written by hand)
// ---------------------------------------------------------------------------------------------

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const C_IDENTIFIER_FMT: &str = "[A-Za-z_][A-Za-z0-9_]*";
const C_IDENTIFIER_ERR_MSG: &str = "a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric characters or '_'";
const ENV_VAR_NAME_FMT: &str = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const ENV_VAR_NAME_ERR_MSG: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit";
const RELAXED_ENV_VAR_NAME_ERR_MSG: &str = "a valid environment variable name must consist only of printable ASCII characters other than '='";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR_MSG: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const IP_ERR_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/// Non-empty, made of `inner` bytes, first byte `first`, last byte `last`.
fn matches_shape(
    value: &str,
    first: impl Fn(u8) -> bool,
    inner: impl Fn(u8) -> bool,
    last: impl Fn(u8) -> bool,
) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&f), Some(&l)) => first(f) && last(l) && bytes.iter().all(|&b| inner(b)),
        _ => false,
    }
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(value: &str) -> bool {
    matches_shape(
        value,
        is_lower_alnum,
        |b| is_lower_alnum(b) || b == b'-',
        is_lower_alnum,
    )
}

/// `label(\.label)*`
fn matches_dns1123_subdomain(value: &str) -> bool {
    value.split('.').all(matches_dns1123_label)
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1035_label(value: &str) -> bool {
    matches_shape(
        value,
        |b| b.is_ascii_lowercase(),
        |b| is_lower_alnum(b) || b == b'-',
        is_lower_alnum,
    )
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name_part(value: &str) -> bool {
    matches_shape(
        value,
        |b| b.is_ascii_alphanumeric(),
        |b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'),
        |b| b.is_ascii_alphanumeric(),
    )
}

// ---------------------------------------------------------------------------------------------
// String validators
// ---------------------------------------------------------------------------------------------

/// Checks a DNS label as RFC 1123 defines it (lower case, at most 63 bytes), the rule for
/// namespace names and many other object names.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            // A valid subdomain but not a label: the only difference left is the dots.
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Checks a DNS subdomain as RFC 1123 defines it (dot-separated lower-case labels, at most 253
/// bytes), the rule for most object names.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Checks a DNS label as RFC 1035 defines it (starts with a letter, at most 63 bytes), the rule
/// for Service names.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Checks a "qualified name": an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// bytes of alphanumerics, `-`, `_` and `.` that starts and ends with an alphanumeric. This is
/// the rule for label keys, annotation keys and finalizers.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Checks a label value: empty, or at most 63 bytes of alphanumerics, `-`, `_` and `.` starting
/// and ending with an alphanumeric.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !matches_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Checks a port number: 1 to 65535.
pub fn is_valid_port_num(port: i64) -> Vec<String> {
    is_in_range(port, 1, 65535)
}

/// Checks that `value` lies in `[min, max]`.
pub fn is_in_range(value: i64, min: i64, max: i64) -> Vec<String> {
    if (min..=max).contains(&value) {
        Vec::new()
    } else {
        vec![inclusive_range_error(min, max)]
    }
}

/// Checks a port name, an IANA service name: at most 15 bytes of `[-a-z0-9]`, at least one
/// letter, no leading, trailing or doubled hyphen.
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > PORT_NAME_MAX_LENGTH {
        errs.push(max_len_error(PORT_NAME_MAX_LENGTH));
    }
    if port.is_empty() || !port.bytes().all(|b| is_lower_alnum(b) || b == b'-') {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_owned(),
        );
    }
    if !port.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_owned());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_owned());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_owned());
    }
    errs
}

/// Checks a C identifier: a letter or `_`, then letters, digits or `_`.
pub fn is_c_identifier(value: &str) -> Vec<String> {
    let ok = matches_shape(
        value,
        |b| b.is_ascii_alphabetic() || b == b'_',
        |b| b.is_ascii_alphanumeric() || b == b'_',
        |b| b.is_ascii_alphanumeric() || b == b'_',
    );
    if ok {
        Vec::new()
    } else {
        vec![regex_error(
            C_IDENTIFIER_ERR_MSG,
            C_IDENTIFIER_FMT,
            &["my_name", "MY_NAME", "MyName"],
        )]
    }
}

/// Checks an environment variable name by the strict rule: letters, digits, `_`, `-` and `.`,
/// not starting with a digit, and not `.`, `..` or starting with `..`.
pub fn is_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let ok = matches_shape(
        value,
        |b| b.is_ascii_alphabetic() || matches!(b, b'-' | b'.' | b'_'),
        |b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'),
        |_| true,
    );
    if !ok {
        errs.push(regex_error(
            ENV_VAR_NAME_ERR_MSG,
            ENV_VAR_NAME_FMT,
            &["my.env-name", "MY_ENV.NAME", "MyEnvName1"],
        ));
    }
    errs.extend(chdir_prefix_errors(value));
    errs
}

/// Checks an environment variable name by the relaxed rule current Kubernetes applies to
/// containers' `env`: non-empty, printable ASCII other than `=`.
pub fn is_relaxed_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.is_empty() {
        errs.push(format!("environment variable name {}", empty_error()));
    }
    if value.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push(RELAXED_ENV_VAR_NAME_ERR_MSG.to_owned());
    }
    errs
}

/// Checks a key of a ConfigMap's or Secret's data: at most 253 bytes of alphanumerics, `-`, `_`
/// and `.`, and not `.`, `..` or starting with `..`.
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !ok {
        errs.push(regex_error(
            CONFIG_MAP_KEY_ERR_MSG,
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    errs.extend(chdir_prefix_errors(value));
    errs
}

fn chdir_prefix_errors(value: &str) -> Vec<String> {
    if value == "." {
        vec!["must not be '.'".to_owned()]
    } else if value == ".." {
        vec!["must not be '..'".to_owned()]
    } else if value.starts_with("..") {
        vec!["must not start with '..'".to_owned()]
    } else {
        Vec::new()
    }
}

/// Checks a name that becomes one segment of a URL path (the rule for RBAC role names and
/// similar): not `.` or `..`, and without `/` or `%`.
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    for banned in [".", ".."] {
        if name == banned {
            return vec![format!("may not be '{banned}'")];
        }
    }
    ["/", "%"]
        .iter()
        .filter(|bad| name.contains(*bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

/// Checks an IPv4 or IPv6 address in canonical text form, as current Kubernetes does for new
/// values: IPv4 octets with leading zeros and IPv4-mapped IPv6 addresses are refused.
pub fn is_valid_ip(value: &str) -> Vec<String> {
    match value.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
            vec!["must not be an IPv4-mapped IPv6 address".to_owned()]
        }
        Ok(_) => Vec::new(),
        Err(_) if is_ipv4_with_leading_zeros(value) => vec!["must not have leading 0s".to_owned()],
        Err(_) => vec![IP_ERR_MSG.to_owned()],
    }
}

/// Whether `value` is a dotted-quad IPv4 address that only fails to parse because some octet has
/// leading zeros (`010.1.1.1`), which older Kubernetes accepted.
fn is_ipv4_with_leading_zeros(value: &str) -> bool {
    let octets: Vec<&str> = value.split('.').collect();
    octets.len() == 4
        && octets.iter().all(|o| {
            !o.is_empty()
                && o.bytes().all(|b| b.is_ascii_digit())
                && o.parse::<u32>().is_ok_and(|n| n <= 255)
        })
        && octets.iter().any(|o| o.len() > 1 && o.starts_with('0'))
}

/// `a wildcard DNS-1123 subdomain ...`: a leading `*.` followed by a DNS-1123 subdomain, at most
/// 253 bytes in all (RFC 1034 section 4.3.3: `*.example.com`, not `*`, `*example.com` or
/// `a.*.com`). The rule for wildcard Ingress and TLS hosts.
pub fn is_wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let matches = value
        .strip_prefix("*.")
        .is_some_and(matches_dns1123_subdomain);
    if !matches {
        errs.push(regex_error(
            WILDCARD_DNS1123_SUBDOMAIN_ERR_MSG,
            WILDCARD_DNS1123_SUBDOMAIN_FMT,
            &["*.example.com"],
        ));
    }
    errs
}

const WILDCARD_DNS1123_SUBDOMAIN_FMT: &str =
    "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const WILDCARD_DNS1123_SUBDOMAIN_ERR_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character";
const CIDR_ERR_MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
const HTTP_PATH_FMT: &str = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+";

/// A CIDR as Go's `net.ParseCIDR` reads it: the address (IPv4 octets may carry leading zeros, as
/// `ParseCIDRSloppy` allows) and the prefix length. `None` if it does not parse at all.
struct SloppyCidr {
    addr: IpAddr,
    prefix: u8,
    /// Whether the text needed the sloppy reading (leading zeros in an octet or the length).
    leading_zeros: bool,
}

fn parse_cidr_sloppy(value: &str) -> Option<SloppyCidr> {
    let (ip, len) = value.split_once('/')?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix: u8 = len.parse().ok()?;
    let mut leading_zeros = len.len() > 1 && len.starts_with('0');
    let addr = match ip.parse::<IpAddr>() {
        Ok(addr) => addr,
        Err(_) if is_ipv4_with_leading_zeros(ip) => {
            leading_zeros = true;
            let octets: Vec<u8> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
            IpAddr::from([octets[0], octets[1], octets[2], octets[3]])
        }
        Err(_) => return None,
    };
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    (prefix <= bits).then_some(SloppyCidr {
        addr,
        prefix,
        leading_zeros,
    })
}

/// The network address of `addr/prefix` (the bits after the prefix cleared).
fn masked(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((u32::from(v4) & mask).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((u128::from(v6) & mask).to_be_bytes())
        }
    }
}

/// Checks a CIDR of a field that predates Kubernetes' strict IP rules
/// (`IsValidCIDRForLegacyField` with `StrictIPCIDRValidation`, as [`is_valid_ip`] is strict):
/// it must parse, have no leading zeros, no IPv4-mapped IPv6 address and no bits set after the
/// prefix length. Non-canonical IPv6 spellings are accepted.
pub fn is_valid_cidr(value: &str) -> Vec<String> {
    let Some(cidr) = parse_cidr_sloppy(value) else {
        return vec![CIDR_ERR_MSG.to_owned()];
    };
    if cidr.leading_zeros {
        return vec!["must not have leading 0s in IP or prefix length".to_owned()];
    }
    if let IpAddr::V6(v6) = cidr.addr
        && v6.to_ipv4_mapped().is_some()
    {
        return vec!["must not have an IPv4-mapped IPv6 address".to_owned()];
    }
    if masked(cidr.addr, cidr.prefix) != cidr.addr {
        return vec!["must not have bits set beyond the prefix length".to_owned()];
    }
    Vec::new()
}

/// Whether the CIDR `inner` is a strict subset of the CIDR `outer` (`ipBlock.except` within
/// `ipBlock.cidr`): inside it and with a longer prefix. `None` if either does not parse.
pub fn cidr_is_strict_subset(inner: &str, outer: &str) -> Option<bool> {
    let (inner, outer) = (parse_cidr_sloppy(inner)?, parse_cidr_sloppy(outer)?);
    if inner.addr.is_ipv4() != outer.addr.is_ipv4() {
        return Some(false);
    }
    let network = masked(outer.addr, outer.prefix);
    let contains = masked(masked(inner.addr, inner.prefix), outer.prefix) == network;
    Some(contains && outer.prefix < inner.prefix)
}

/// `IsDomainPrefixedPath`: `<DNS-1123 subdomain>/<HTTP path characters>` (`acme.io/foo`), the
/// rule for an IngressClass's controller. Errors are reported at `path`.
pub fn validate_domain_prefixed_path(value: &str, path: &FieldPath) -> Vec<FieldError> {
    if value.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let Some((host, rest)) = value
        .split_once('/')
        .filter(|(h, r)| !h.is_empty() && !r.is_empty())
    else {
        return vec![FieldError::invalid(
            path,
            value,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )];
    };
    let mut errs: Vec<FieldError> = is_dns1123_subdomain(host)
        .into_iter()
        .map(|msg| FieldError::invalid(path, host, msg))
        .collect();
    let http_path = rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&b));
    if !http_path {
        errs.push(FieldError::invalid(
            path,
            rest,
            regex_error("Invalid path", HTTP_PATH_FMT, &[]),
        ));
    }
    errs
}

/// `IsFullyQualifiedName`: a DNS-1123 subdomain of at least three labels (`hook.example.com`),
/// the rule for admission webhook names. Errors are reported at `path`.
pub fn validate_fully_qualified_name(name: &str, path: &FieldPath) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let errs = is_dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![FieldError::invalid(path, name, errs.join(","))];
    }
    if name.split('.').count() < 3 {
        return vec![FieldError::invalid(
            path,
            name,
            "should be a domain with at least three segments separated by dots",
        )];
    }
    Vec::new()
}

/// Go's `%#v` of a struct whose fields are all strings, as Kubernetes prints such a bad value
/// (`rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"view"}`); for
/// [`FieldError::invalid_rendered`].
pub fn go_struct(type_name: &str, fields: &[(&str, &str)]) -> String {
    let fields: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{name}:{}", quote(value)))
        .collect();
    format!("{type_name}{{{}}}", fields.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Object-level validation
// ---------------------------------------------------------------------------------------------

/// Validates the metadata of an object being created.
///
/// * `name` is required unless `generateName` is set (the apiserver then generates the name
///   before storing). A present name is checked with `name_validator`, e.g.
///   [`is_dns1123_subdomain`] for most kinds or [`is_dns1035_label`] for Services.
/// * `generateName` is checked with the same validator as if a random suffix followed it: a
///   trailing `-` is replaced by an alphanumeric before checking, so `web-` passes.
/// * `namespace` is required (and must be a DNS-1123 label) when `namespaced`, and forbidden
///   (`not allowed on this type`) otherwise.
/// * `generation` must not be negative; `labels`, `annotations`, `ownerReferences`, `finalizers`
///   and `managedFields` are checked as the functions of the same names do.
///
/// `path` is the path of the metadata itself, normally `FieldPath::new("metadata")`.
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    name_validator: fn(&str) -> Vec<String>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();

    let generate_name = meta.generate_name.as_deref().unwrap_or_default();
    if !generate_name.is_empty() {
        let masked = mask_trailing_dash(generate_name);
        for msg in name_validator(&masked) {
            errs.push(FieldError::invalid(
                path.child("generateName"),
                generate_name,
                msg,
            ));
        }
    }

    let name = meta.name.as_deref().unwrap_or_default();
    if name.is_empty() {
        if generate_name.is_empty() {
            errs.push(FieldError::required(
                path.child("name"),
                "name or generateName is required",
            ));
        }
    } else {
        for msg in name_validator(name) {
            errs.push(FieldError::invalid(path.child("name"), name, msg));
        }
    }

    let namespace = meta.namespace.as_deref().unwrap_or_default();
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(path.child("namespace"), ""));
        } else {
            for msg in is_dns1123_label(namespace) {
                errs.push(FieldError::invalid(path.child("namespace"), namespace, msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            path.child("namespace"),
            "not allowed on this type",
        ));
    }

    if let Some(generation) = meta.generation {
        errs.extend(validate_nonnegative(generation, &path.child("generation")));
    }
    errs.extend(validate_common_meta(meta, path));
    errs
}

/// Validates the metadata of an object being updated against the stored object's metadata.
///
/// Checks that `name`, `namespace`, `uid`, `creationTimestamp`, `deletionTimestamp` and
/// `deletionGracePeriodSeconds` did not change (`field is immutable`), that `generation` did not
/// go down (`must not be decremented`), that no finalizer is added to an object being deleted,
/// and the same label, annotation, owner-reference, finalizer and managed-fields rules as on
/// create.
///
/// As in Kubernetes, the caller is expected to have carried the system-set fields over from the
/// stored object first (an empty `uid` or `creationTimestamp` in the request takes the stored
/// value, a set `deletionTimestamp` is kept) and to handle `resourceVersion` preconditions itself.
pub fn validate_object_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();

    if old.deletion_timestamp.is_some() {
        let old_finalizers: BTreeSet<&str> = old
            .finalizers
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let added: BTreeSet<&str> = new
            .finalizers
            .iter()
            .flatten()
            .map(String::as_str)
            .filter(|f| !old_finalizers.contains(f))
            .collect();
        if !added.is_empty() {
            let list: Vec<Value> = added.into_iter().map(Value::from).collect();
            errs.push(FieldError::forbidden(
                path.child("finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    render_value(&Value::Array(list))
                ),
            ));
        }
    }

    let new_generation = new.generation.unwrap_or_default();
    if new_generation < old.generation.unwrap_or_default() {
        errs.push(FieldError::invalid(
            path.child("generation"),
            new_generation,
            "must not be decremented",
        ));
    }

    let e = &mut errs;
    e.extend(validate_immutable_field(
        &new.name,
        &old.name,
        &path.child("name"),
    ));
    e.extend(validate_immutable_field(
        &new.namespace,
        &old.namespace,
        &path.child("namespace"),
    ));
    e.extend(validate_immutable_field(
        &new.uid,
        &old.uid,
        &path.child("uid"),
    ));
    e.extend(validate_immutable_field(
        &new.creation_timestamp,
        &old.creation_timestamp,
        &path.child("creationTimestamp"),
    ));
    e.extend(validate_immutable_field(
        &new.deletion_timestamp,
        &old.deletion_timestamp,
        &path.child("deletionTimestamp"),
    ));
    e.extend(validate_immutable_field(
        &new.deletion_grace_period_seconds,
        &old.deletion_grace_period_seconds,
        &path.child("deletionGracePeriodSeconds"),
    ));

    errs.extend(validate_common_meta(new, path));
    errs
}

/// The checks create and update share.
fn validate_common_meta(meta: &ObjectMeta, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(labels) = &meta.labels {
        errs.extend(validate_labels(labels, &path.child("labels")));
    }
    if let Some(annotations) = &meta.annotations {
        errs.extend(validate_annotations(
            annotations,
            &path.child("annotations"),
        ));
    }
    if let Some(refs) = &meta.owner_references {
        errs.extend(validate_owner_references(
            refs,
            &path.child("ownerReferences"),
        ));
    }
    if let Some(finalizers) = &meta.finalizers {
        errs.extend(validate_finalizers(finalizers, &path.child("finalizers")));
    }
    if let Some(managed) = &meta.managed_fields {
        errs.extend(validate_managed_fields(
            managed,
            &path.child("managedFields"),
        ));
    }
    errs
}

/// Replaces a trailing `-` of a `generateName` prefix by an alphanumeric, standing in for the
/// random suffix the apiserver appends.
fn mask_trailing_dash(prefix: &str) -> String {
    match prefix.strip_suffix('-') {
        Some(rest) if !rest.is_empty() => format!("{rest}a"),
        _ => prefix.to_owned(),
    }
}

/// `Invalid value: <new>: field is immutable` when `new` differs from `old`.
pub fn validate_immutable_field<T: PartialEq + serde::Serialize>(
    new: &T,
    old: &T,
    path: &FieldPath,
) -> Vec<FieldError> {
    if new == old {
        return Vec::new();
    }
    let value = serde_json::to_value(new).unwrap_or(Value::Null);
    vec![FieldError::invalid(path, value, FIELD_IMMUTABLE_ERROR_MSG)]
}

/// `Invalid value: <value>: must be greater than or equal to 0` when `value` is negative.
pub fn validate_nonnegative(value: i64, path: &FieldPath) -> Vec<FieldError> {
    if value < 0 {
        vec![FieldError::invalid(path, value, IS_NEGATIVE_ERROR_MSG)]
    } else {
        Vec::new()
    }
}

/// Reads a quantity as Kubernetes decodes one (`UnmarshalJSON`); one that does not parse is an
/// [`Undecodable`](FieldErrorKind::Undecodable) error.
pub fn decode_quantity(quantity: &ApiQuantity, path: &FieldPath) -> Result<Quantity, FieldError> {
    Quantity::from_api(quantity)
        .map_err(|e| FieldError::undecodable(path, quantity.0.clone(), e.to_string()))
}

/// `Invalid value: "<q>": must be greater than or equal to 0` when `quantity` is negative
/// (`ValidateNonnegativeQuantity`).
pub fn validate_nonnegative_quantity(quantity: &Quantity, path: &FieldPath) -> Vec<FieldError> {
    if quantity.sign() < 0 {
        vec![FieldError::invalid(
            path,
            quantity.to_string(),
            IS_NEGATIVE_ERROR_MSG,
        )]
    } else {
        Vec::new()
    }
}

/// `Invalid value: "<q>": must be greater than zero` unless `quantity` is positive
/// (`ValidatePositiveQuantityValue`).
pub fn validate_positive_quantity(quantity: &Quantity, path: &FieldPath) -> Vec<FieldError> {
    if quantity.sign() <= 0 {
        vec![FieldError::invalid(
            path,
            quantity.to_string(),
            IS_NOT_POSITIVE_ERROR_MSG,
        )]
    } else {
        Vec::new()
    }
}

/// Validates labels: every key a qualified name, every value a valid label value. Errors are
/// reported at `path` itself (e.g. `metadata.labels`), with the key or value as the bad value.
pub fn validate_labels(labels: &BTreeMap<String, String>, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (key, value) in labels {
        errs.extend(validate_label_name(key, path));
        for msg in is_valid_label_value(value) {
            errs.push(FieldError::invalid(path, value.as_str(), msg));
        }
    }
    errs
}

/// Validates one label key (a qualified name), reporting at `path`.
pub fn validate_label_name(key: &str, path: &FieldPath) -> Vec<FieldError> {
    is_qualified_name(key)
        .into_iter()
        .map(|msg| FieldError::invalid(path, key, msg))
        .collect()
}

/// Validates annotations: every key a qualified name (compared in lower case, as annotation keys
/// are case-insensitive in this check), and keys plus values together at most 256 KiB
/// (`Too long: may not be more than 262144 bytes`).
pub fn validate_annotations(
    annotations: &BTreeMap<String, String>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (key, value) in annotations {
        for msg in is_qualified_name(&key.to_lowercase()) {
            errs.push(FieldError::invalid(path, key.as_str(), msg));
        }
        total = total.saturating_add(key.len()).saturating_add(value.len());
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
        errs.push(FieldError::too_long(
            path,
            "",
            TOTAL_ANNOTATION_SIZE_LIMIT_BYTES,
        ));
    }
    errs
}

/// Validates owner references: each needs an `apiVersion` with a version, a `kind`, a `name` and
/// a `uid`; `v1` `Event`s may not own anything; at most one reference may be the controller.
///
/// As in Kubernetes, the errors name the field under `path` without the reference's index
/// (`metadata.ownerReferences.uid: Invalid value: "": uid must not be empty`).
pub fn validate_owner_references(refs: &[OwnerReference], path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        errs.extend(validate_owner_reference(r, path));
        if r.controller == Some(true) {
            let this = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    serde_json::to_value(refs).unwrap_or(Value::Null),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"
                    ),
                )),
                None => first_controller = Some(this),
            }
        }
    }
    errs
}

fn validate_owner_reference(r: &OwnerReference, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (group, version) = split_api_version(&r.api_version);
    if version.is_empty() {
        errs.push(FieldError::invalid(
            path.child("apiVersion"),
            r.api_version.as_str(),
            "version must not be empty",
        ));
    }
    if r.kind.is_empty() {
        errs.push(FieldError::invalid(
            path.child("kind"),
            r.kind.as_str(),
            "kind must not be empty",
        ));
    }
    if r.name.is_empty() {
        errs.push(FieldError::invalid(
            path.child("name"),
            r.name.as_str(),
            "name must not be empty",
        ));
    }
    if r.uid.is_empty() {
        errs.push(FieldError::invalid(
            path.child("uid"),
            r.uid.as_str(),
            "uid must not be empty",
        ));
    }
    if group.is_empty() && version == "v1" && r.kind == "Event" {
        errs.push(FieldError::invalid(
            path,
            serde_json::to_value(r).unwrap_or(Value::Null),
            "/v1, Kind=Event is disallowed from being an owner",
        ));
    }
    errs
}

/// Splits `group/version` (or a bare `version` of the core group). A value with more than one
/// `/` is malformed and yields an empty group and version.
fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        None => ("", api_version),
        Some((group, version)) if !version.contains('/') => (group, version),
        Some(_) => ("", ""),
    }
}

/// Validates finalizers: each a qualified name, and not both `orphan` and `foregroundDeletion`.
/// Errors are reported at `path` itself (e.g. `metadata.finalizers`).
pub fn validate_finalizers(finalizers: &[String], path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in finalizers {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, f.as_str(), msg));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has(FINALIZER_ORPHAN_DEPENDENTS) && has(FINALIZER_DELETE_DEPENDENTS) {
        errs.push(FieldError::invalid(
            path,
            finalizers.to_vec(),
            format!(
                "finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set"
            ),
        ));
    }
    errs
}

/// Validates managed-fields entries: `operation` must be `Apply` or `Update`, `fieldsType` (when
/// set) `FieldsV1`, and `subresource` at most 256 bytes.
pub fn validate_managed_fields(
    entries: &[ManagedFieldsEntry],
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let p = path.index(i);
        let operation = entry.operation.as_deref().unwrap_or_default();
        if operation != "Apply" && operation != "Update" {
            errs.push(FieldError::invalid(
                p.child("operation"),
                operation,
                "must be `Apply` or `Update`",
            ));
        }
        let fields_type = entry.fields_type.as_deref().unwrap_or_default();
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            errs.push(FieldError::invalid(
                p.child("fieldsType"),
                fields_type,
                "must be `FieldsV1`",
            ));
        }
        let subresource = entry.subresource.as_deref().unwrap_or_default();
        if subresource.len() > MAX_SUBRESOURCE_NAME_LENGTH {
            errs.push(FieldError::too_long(
                p.child("subresource"),
                subresource,
                MAX_SUBRESOURCE_NAME_LENGTH,
            ));
        }
    }
    errs
}

/// Validates an API `LabelSelector` (as found in `spec.selector` of workloads): `matchLabels` as
/// labels, and each `matchExpressions[i]` with a known operator, values present for `In`/`NotIn`
/// and absent for `Exists`/`DoesNotExist`, a qualified-name key and valid label values.
pub fn validate_label_selector(selector: &LabelSelector, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(labels) = &selector.match_labels {
        errs.extend(validate_labels(labels, &path.child("matchLabels")));
    }
    for (i, req) in selector.match_expressions.iter().flatten().enumerate() {
        errs.extend(validate_label_selector_requirement(
            req,
            &path.child("matchExpressions").index(i),
        ));
    }
    errs
}

/// Validates one `matchExpressions` entry of an API `LabelSelector`.
pub fn validate_label_selector_requirement(
    req: &LabelSelectorRequirement,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(FieldError::required(
                    path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(FieldError::forbidden(
                    path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        other => errs.push(FieldError::invalid(
            path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    errs.extend(validate_label_name(&req.key, &path.child("key")));
    for (i, value) in values.iter().enumerate() {
        for msg in is_valid_label_value(value) {
            errs.push(FieldError::invalid(
                path.child("values").index(i),
                value.as_str(),
                msg,
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: (!name.is_empty()).then(|| name.to_owned()),
            namespace: namespace.map(str::to_owned),
            ..ObjectMeta::default()
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn field_path_rendering() {
        let meta = FieldPath::new("metadata");
        assert_eq!(
            meta.child("labels").key("app").as_str(),
            "metadata.labels[app]"
        );
        assert_eq!(
            FieldPath::new("spec")
                .child("template")
                .child("spec")
                .child("containers")
                .index(0)
                .child("image")
                .to_string(),
            "spec.template.spec.containers[0].image"
        );
        assert_eq!(FieldPath::root().child("name").as_str(), "name");
        assert_eq!(FieldPath::root().index(2).as_str(), "[2]");
        assert!(FieldPath::root().is_root());
        assert_eq!(String::from(FieldPath::from("a.b")), "a.b");
    }

    #[test]
    fn reasons() {
        let f = FieldPath::new("x");
        assert_eq!(FieldError::required(&f, "").reason(), "FieldValueRequired");
        assert_eq!(
            FieldError::invalid(&f, "v", "d").reason(),
            "FieldValueInvalid"
        );
        assert_eq!(
            FieldError::duplicate(&f, "v").reason(),
            "FieldValueDuplicate"
        );
        assert_eq!(
            FieldError::not_supported(&f, "v", &["a"]).reason(),
            "FieldValueNotSupported"
        );
        assert_eq!(
            FieldError::too_long(&f, "v", 3).reason(),
            "FieldValueTooLong"
        );
        assert_eq!(
            FieldError::too_many(&f, Some(4), 3).reason(),
            "FieldValueTooMany"
        );
        assert_eq!(
            FieldError::forbidden(&f, "no").reason(),
            "FieldValueForbidden"
        );
        assert_eq!(
            FieldError::not_found(&f, "v").reason(),
            "FieldValueNotFound"
        );
        assert_eq!(FieldError::internal(&f, "boom").reason(), "InternalError");
        assert_eq!(
            FieldError::type_invalid(&f, 1, "must be a string").reason(),
            "FieldValueTypeInvalid"
        );
    }

    #[test]
    fn messages() {
        let f = FieldPath::new("spec").child("x");
        assert_eq!(FieldError::required(&f, "").message(), "Required value");
        assert_eq!(
            FieldError::required(&f, "must be set").to_string(),
            "spec.x: Required value: must be set"
        );
        assert_eq!(
            FieldError::not_supported(&f, "x", &["a", "b"]).message(),
            r#"Unsupported value: "x": supported values: "a", "b""#
        );
        assert_eq!(
            FieldError::not_supported(&f, "x", &[] as &[&str]).message(),
            r#"Unsupported value: "x""#
        );
        assert_eq!(
            FieldError::duplicate(&f, "a").message(),
            r#"Duplicate value: "a""#
        );
        assert_eq!(
            FieldError::too_long(&f, "long", 10).message(),
            "Too long: may not be more than 10 bytes"
        );
        assert_eq!(
            FieldError::too_long(&f, "long", 1).message(),
            "Too long: may not be more than 1 byte"
        );
        assert_eq!(
            FieldError::too_many(&f, Some(5), 3).message(),
            "Too many: 5: must have at most 3 items"
        );
        assert_eq!(
            FieldError::too_many(&f, None, 1).message(),
            "Too many: must have at most 1 item"
        );
        assert_eq!(
            FieldError::forbidden(&f, "nope").message(),
            "Forbidden: nope"
        );
        assert_eq!(
            FieldError::invalid(&f, 70000, inclusive_range_error(1, 65535)).message(),
            "Invalid value: 70000: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            FieldError::invalid(&f, true, "bad").message(),
            "Invalid value: true: bad"
        );
        assert_eq!(
            FieldError::invalid(&f, Value::Null, "bad").message(),
            "Invalid value: null: bad"
        );
        assert_eq!(
            FieldError::invalid(&f, vec!["a".to_owned(), "b".to_owned()], "bad").message(),
            r#"Invalid value: []string{"a", "b"}: bad"#
        );
        assert_eq!(
            FieldError::invalid(&f, "a\"b\\c\n\u{1}", "bad").message(),
            r#"Invalid value: "a\"b\\c\n\x01": bad"#
        );
        assert_eq!(
            FieldError::invalid(&f, "héllo", "").message(),
            r#"Invalid value: "héllo""#
        );
        assert_eq!(
            FieldError::internal(&f, "boom").message(),
            "Internal error: boom"
        );
        let cause = FieldError::required(&f, "").to_status_cause();
        assert_eq!(cause.field.as_deref(), Some("spec.x"));
        assert_eq!(cause.message.as_deref(), Some("Required value"));
        assert_eq!(cause.reason.as_deref(), Some("FieldValueRequired"));
    }

    #[test]
    fn invalid_subdomain_name_message() {
        let errs = validate_object_meta(
            &meta("My_Name", Some("default")),
            true,
            is_dns1123_subdomain,
            &FieldPath::new("metadata"),
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.name");
        assert_eq!(errs[0].reason(), "FieldValueInvalid");
        assert_eq!(
            errs[0].message(),
            format!("Invalid value: \"My_Name\": {SUBDOMAIN_MSG}")
        );
        assert_eq!(
            invalid_message("", "ConfigMap", "My_Name", &errs),
            format!(
                "ConfigMap \"My_Name\" is invalid: metadata.name: Invalid value: \"My_Name\": {SUBDOMAIN_MSG}"
            )
        );
    }

    #[test]
    fn missing_name_message() {
        let errs = validate_object_meta(
            &meta("", Some("default")),
            true,
            is_dns1123_subdomain,
            &FieldPath::new("metadata"),
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
        assert_eq!(errs[0].reason(), "FieldValueRequired");
    }

    #[test]
    fn generate_name() {
        let path = FieldPath::new("metadata");
        let mut m = meta("", Some("ns"));
        m.generate_name = Some("web-".to_owned());
        assert!(validate_object_meta(&m, true, is_dns1123_subdomain, &path).is_empty());
        m.generate_name = Some("Web-".to_owned());
        let errs = validate_object_meta(&m, true, is_dns1123_subdomain, &path);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.generateName");
        assert_eq!(errs[0].value, Some(Value::from("Web-")));
        m.generate_name = Some("-".to_owned());
        assert_eq!(
            validate_object_meta(&m, true, is_dns1123_subdomain, &path).len(),
            1
        );
        // Service names: DNS-1035 labels.
        m.generate_name = Some("1svc-".to_owned());
        let errs = validate_object_meta(&m, true, is_dns1035_label, &path);
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn namespace_rules() {
        let path = FieldPath::new("metadata");
        let errs = validate_object_meta(&meta("a", None), true, is_dns1123_subdomain, &path);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].to_string(), "metadata.namespace: Required value");
        let errs = validate_object_meta(&meta("a", Some("x")), false, is_dns1123_subdomain, &path);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );
        let errs =
            validate_object_meta(&meta("a", Some("my.ns")), true, is_dns1123_subdomain, &path);
        assert_eq!(
            errs[0].to_string(),
            "metadata.namespace: Invalid value: \"my.ns\": must not contain dots"
        );
        let errs = validate_object_meta(&meta("a", Some("NS")), true, is_dns1123_subdomain, &path);
        assert_eq!(
            errs[0].to_string(),
            format!("metadata.namespace: Invalid value: \"NS\": {LABEL_MSG}")
        );
        assert!(
            validate_object_meta(&meta("node-1", None), false, is_dns1123_subdomain, &path)
                .is_empty()
        );
    }

    #[test]
    fn negative_generation() {
        let mut m = meta("a", Some("b"));
        m.generation = Some(-1);
        let errs =
            validate_object_meta(&m, true, is_dns1123_subdomain, &FieldPath::new("metadata"));
        assert_eq!(
            errs[0].to_string(),
            "metadata.generation: Invalid value: -1: must be greater than or equal to 0"
        );
    }

    #[test]
    fn dns1123_label() {
        for ok in ["a", "ab", "a-b", "0", "a1", "1-2", &"a".repeat(63)] {
            assert!(is_dns1123_label(ok).is_empty(), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a_b", "a b", "ä"] {
            assert_eq!(is_dns1123_label(bad), vec![LABEL_MSG.to_owned()], "{bad:?}");
        }
        assert_eq!(
            is_dns1123_label("a.b"),
            vec!["must not contain dots".to_owned()]
        );
        assert_eq!(
            is_dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters".to_owned()]
        );
    }

    #[test]
    fn dns1123_subdomain() {
        for ok in ["a", "a.b", "example.com", "a-1.b-2.c", &"a".repeat(253)] {
            assert!(is_dns1123_subdomain(ok).is_empty(), "{ok}");
        }
        for bad in ["", ".", "a.", ".a", "a..b", "A.b", "a_b", "-a.b", "a.b-"] {
            assert_eq!(
                is_dns1123_subdomain(bad),
                vec![SUBDOMAIN_MSG.to_owned()],
                "{bad:?}"
            );
        }
        assert_eq!(
            is_dns1123_subdomain(&"a".repeat(254)),
            vec!["must be no more than 253 characters".to_owned()]
        );
        assert_eq!(is_dns1123_subdomain(&"-".repeat(254)).len(), 2);
    }

    #[test]
    fn dns1035_label() {
        for ok in ["a", "a1", "a-b", "abc-123", &"a".repeat(63)] {
            assert!(is_dns1035_label(ok).is_empty(), "{ok}");
        }
        let msg = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
        for bad in ["", "1a", "-a", "a-", "A", "a.b"] {
            assert_eq!(is_dns1035_label(bad), vec![msg.to_owned()], "{bad:?}");
        }
        assert_eq!(is_dns1035_label(&"a".repeat(64)).len(), 1);
    }

    #[test]
    fn qualified_name() {
        for ok in [
            "app",
            "App",
            "a.b_c-d",
            "1",
            "example.com/MyName",
            "kubernetes.io/metadata.name",
            "app.kubernetes.io/name",
            &"a".repeat(63),
            &format!("{}/{}", "a".repeat(253), "b".repeat(63)),
        ] {
            assert!(is_qualified_name(ok).is_empty(), "{ok}");
        }
        assert_eq!(
            is_qualified_name(""),
            vec![
                "name part must be non-empty".to_owned(),
                NAME_PART_MSG.to_owned()
            ]
        );
        assert_eq!(is_qualified_name("-app"), vec![NAME_PART_MSG.to_owned()]);
        assert_eq!(is_qualified_name("a b"), vec![NAME_PART_MSG.to_owned()]);
        assert_eq!(
            is_qualified_name(&"a".repeat(64)),
            vec!["name part must be no more than 63 characters".to_owned()]
        );
        assert_eq!(
            is_qualified_name("/a"),
            vec!["prefix part must be non-empty".to_owned()]
        );
        assert_eq!(
            is_qualified_name("Example.com/a"),
            vec![format!("prefix part {SUBDOMAIN_MSG}")]
        );
        assert_eq!(is_qualified_name("a/b/c"), vec![
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_owned()
        ]);
    }

    #[test]
    fn bad_label_key_with_prefix_message() {
        let errs = validate_labels(
            &map(&[("Example.com/-app", "x")]),
            &FieldPath::new("metadata").child("labels"),
        );
        let texts: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            vec![
                format!(
                    "metadata.labels: Invalid value: \"Example.com/-app\": prefix part {SUBDOMAIN_MSG}"
                ),
                format!("metadata.labels: Invalid value: \"Example.com/-app\": {NAME_PART_MSG}"),
            ]
        );
    }

    #[test]
    fn label_values() {
        for ok in ["", "a", "A-b_c.d", "123", &"v".repeat(63)] {
            assert!(is_valid_label_value(ok).is_empty(), "{ok:?}");
        }
        for bad in ["-a", "a-", "a b", "a/b", "ü"] {
            assert_eq!(is_valid_label_value(bad), vec![LABEL_VALUE_MSG.to_owned()]);
        }
        let long = "v".repeat(64);
        let errs = validate_labels(
            &map(&[("app", &long)]),
            &FieldPath::new("metadata").child("labels"),
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            format!(
                "metadata.labels: Invalid value: \"{long}\": must be no more than 63 characters"
            )
        );
        assert_eq!(
            is_valid_label_value(&format!("-{long}")),
            vec![
                "must be no more than 63 characters".to_owned(),
                LABEL_VALUE_MSG.to_owned()
            ]
        );
    }

    #[test]
    fn annotations() {
        let path = FieldPath::new("metadata").child("annotations");
        assert!(
            validate_annotations(&map(&[("Example.COM/Some-Key", "anything at all")]), &path)
                .is_empty()
        );
        let errs = validate_annotations(&map(&[("a b", "")]), &path);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.annotations");
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES);
        let errs = validate_annotations(&map(&[("k", &big)]), &path);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
        assert_eq!(errs[0].reason(), "FieldValueTooLong");
        let exact = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES - 1);
        assert!(validate_annotations(&map(&[("k", &exact)]), &path).is_empty());
    }

    #[test]
    fn owner_references() {
        let path = FieldPath::new("metadata").child("ownerReferences");
        let good = OwnerReference {
            api_version: "apps/v1".to_owned(),
            kind: "ReplicaSet".to_owned(),
            name: "rs".to_owned(),
            uid: "1234".to_owned(),
            controller: Some(true),
            ..OwnerReference::default()
        };
        assert!(validate_owner_references(std::slice::from_ref(&good), &path).is_empty());
        let texts: Vec<String> = validate_owner_references(&[OwnerReference::default()], &path)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            texts,
            vec![
                "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty",
                "metadata.ownerReferences.kind: Invalid value: \"\": kind must not be empty",
                "metadata.ownerReferences.name: Invalid value: \"\": name must not be empty",
                "metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty",
            ]
        );
        let mut slash = good.clone();
        slash.api_version = "apps/".to_owned();
        assert_eq!(validate_owner_references(&[slash], &path).len(), 1);
        let mut second = good.clone();
        second.name = "rs2".to_owned();
        let errs = validate_owner_references(&[good.clone(), second], &path);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .detail
                .ends_with("references for ReplicaSet/rs and ReplicaSet/rs2")
        );
        let event = OwnerReference {
            api_version: "v1".to_owned(),
            kind: "Event".to_owned(),
            ..good
        };
        let errs = validate_owner_references(&[event], &path);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].detail,
            "/v1, Kind=Event is disallowed from being an owner"
        );
    }

    #[test]
    fn finalizers() {
        let path = FieldPath::new("metadata").child("finalizers");
        assert!(
            validate_finalizers(
                &["kubernetes".to_owned(), "example.com/cleanup".to_owned()],
                &path
            )
            .is_empty()
        );
        let errs = validate_finalizers(&["bad finalizer".to_owned()], &path);
        assert_eq!(
            errs[0].to_string(),
            format!("metadata.finalizers: Invalid value: \"bad finalizer\": {NAME_PART_MSG}")
        );
        let errs = validate_finalizers(
            &["orphan".to_owned(), "foregroundDeletion".to_owned()],
            &path,
        );
        assert_eq!(
            errs[0].to_string(),
            "metadata.finalizers: Invalid value: []string{\"orphan\", \"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be both set"
        );
    }

    #[test]
    fn managed_fields() {
        let path = FieldPath::new("metadata").child("managedFields");
        let ok = ManagedFieldsEntry {
            operation: Some("Apply".to_owned()),
            fields_type: Some("FieldsV1".to_owned()),
            ..ManagedFieldsEntry::default()
        };
        assert!(validate_managed_fields(std::slice::from_ref(&ok), &path).is_empty());
        let bad = ManagedFieldsEntry {
            operation: Some("Patch".to_owned()),
            fields_type: Some("FieldsV2".to_owned()),
            ..ManagedFieldsEntry::default()
        };
        let texts: Vec<String> = validate_managed_fields(&[ok, bad], &path)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            texts,
            vec![
                "metadata.managedFields[1].operation: Invalid value: \"Patch\": must be `Apply` or `Update`",
                "metadata.managedFields[1].fieldsType: Invalid value: \"FieldsV2\": must be `FieldsV1`",
            ]
        );
    }

    #[test]
    fn object_meta_collects_everything() {
        let mut m = meta("ok", Some("ns"));
        m.labels = Some(map(&[("a/b/c", "x")]));
        m.annotations = Some(map(&[("", "")]));
        m.finalizers = Some(vec!["-f".to_owned()]);
        let errs =
            validate_object_meta(&m, true, is_dns1123_subdomain, &FieldPath::new("metadata"));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "metadata.labels",
                "metadata.annotations",
                "metadata.annotations",
                "metadata.finalizers"
            ]
        );
    }

    #[test]
    fn object_meta_update() {
        let path = FieldPath::new("metadata");
        let mut old = meta("a", Some("ns"));
        old.uid = Some("u1".to_owned());
        old.generation = Some(3);
        let mut new = old.clone();
        assert!(validate_object_meta_update(&new, &old, &path).is_empty());
        new.name = Some("b".to_owned());
        new.generation = Some(2);
        let texts: Vec<String> = validate_object_meta_update(&new, &old, &path)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            texts,
            vec![
                "metadata.generation: Invalid value: 2: must not be decremented",
                "metadata.name: Invalid value: \"b\": field is immutable",
            ]
        );

        let mut deleting = meta("a", Some("ns"));
        deleting.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2024-01-01T00:00:00Z".parse().expect("timestamp"),
        ));
        deleting.finalizers = Some(vec!["a.io/x".to_owned()]);
        let mut update = deleting.clone();
        update.finalizers = Some(vec!["a.io/x".to_owned(), "b.io/y".to_owned()]);
        let errs = validate_object_meta_update(&update, &deleting, &path);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b.io/y\"}"
        );
        update.finalizers = Some(vec![]);
        assert!(validate_object_meta_update(&update, &deleting, &path).is_empty());
    }

    #[test]
    fn aggregate_and_invalid_message() {
        let a = FieldError::required("spec.a", "");
        let b = FieldError::invalid("spec.b", -1, IS_NEGATIVE_ERROR_MSG);
        assert_eq!(aggregate_message(&[]), "");
        assert_eq!(
            aggregate_message(std::slice::from_ref(&a)),
            "spec.a: Required value"
        );
        assert_eq!(
            aggregate_message(&[a.clone(), b.clone(), a.clone()]),
            "[spec.a: Required value, spec.b: Invalid value: -1: must be greater than or equal to 0]"
        );
        assert_eq!(
            invalid_message("apps", "Deployment", "web", &[b]),
            "Deployment.apps \"web\" is invalid: spec.b: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(invalid_message("", "Pod", "p", &[]), "Pod \"p\" is invalid");
        assert_eq!(status_causes(&[a]).len(), 1);
    }

    #[test]
    fn ports() {
        assert!(is_valid_port_num(1).is_empty());
        assert!(is_valid_port_num(65535).is_empty());
        assert_eq!(
            is_valid_port_num(0),
            vec!["must be between 1 and 65535, inclusive".to_owned()]
        );
        assert_eq!(is_valid_port_num(65536).len(), 1);
        for ok in ["http", "h2c", "a-b-c", "web-8080", "abcdefghijklmno"] {
            assert!(is_valid_port_name(ok).is_empty(), "{ok}");
        }
        assert_eq!(
            is_valid_port_name("abcdefghijklmnop"),
            vec!["must be no more than 15 characters".to_owned()]
        );
        assert_eq!(
            is_valid_port_name("HTTP"),
            vec![
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_owned(),
                "must contain at least one letter (a-z)".to_owned(),
            ]
        );
        assert_eq!(
            is_valid_port_name("8080"),
            vec!["must contain at least one letter (a-z)".to_owned()]
        );
        assert_eq!(
            is_valid_port_name("a--b"),
            vec!["must not contain consecutive hyphens".to_owned()]
        );
        assert_eq!(
            is_valid_port_name("-ab"),
            vec!["must not begin or end with a hyphen".to_owned()]
        );
        assert_eq!(is_valid_port_name("").len(), 2);
    }

    #[test]
    fn identifiers_and_env_names() {
        for ok in ["a", "_a", "A_1", "MyName"] {
            assert!(is_c_identifier(ok).is_empty(), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a.b"] {
            assert_eq!(is_c_identifier(bad).len(), 1, "{bad:?}");
        }
        assert_eq!(
            is_c_identifier("1a")[0],
            "a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric characters or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName', regex used for validation is '[A-Za-z_][A-Za-z0-9_]*')"
        );

        for ok in ["PATH", "my.env-name", "MY_ENV.NAME", "_x", "-x", ".x"] {
            assert!(is_env_var_name(ok).is_empty(), "{ok}");
        }
        assert_eq!(is_env_var_name("1A").len(), 1);
        assert_eq!(is_env_var_name("A=B").len(), 1);
        assert_eq!(is_env_var_name(".."), vec!["must not be '..'".to_owned()]);
        assert_eq!(
            is_env_var_name("..a"),
            vec!["must not start with '..'".to_owned()]
        );
        assert_eq!(is_env_var_name("."), vec!["must not be '.'".to_owned()]);

        assert!(is_relaxed_env_var_name("1 weird:name!").is_empty());
        assert_eq!(
            is_relaxed_env_var_name("A=B"),
            vec![RELAXED_ENV_VAR_NAME_ERR_MSG.to_owned()]
        );
        assert_eq!(is_relaxed_env_var_name("tab\t").len(), 1);
        assert_eq!(
            is_relaxed_env_var_name(""),
            vec!["environment variable name must be non-empty".to_owned()]
        );

        assert!(is_config_map_key("key.name").is_empty());
        assert!(is_config_map_key("KEY_NAME-1").is_empty());
        assert_eq!(is_config_map_key("a/b").len(), 1);
        assert_eq!(is_config_map_key(".."), vec!["must not be '..'".to_owned()]);
        assert_eq!(is_config_map_key("").len(), 1);

        assert!(is_valid_path_segment_name("admin").is_empty());
        assert_eq!(
            is_valid_path_segment_name(".."),
            vec!["may not be '..'".to_owned()]
        );
        assert_eq!(
            is_valid_path_segment_name("a/b%c"),
            vec![
                "may not contain '/'".to_owned(),
                "may not contain '%'".to_owned()
            ]
        );
    }

    #[test]
    fn ip_addresses() {
        for ok in [
            "10.9.8.7",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db8::ffff",
            "::1",
            "::",
        ] {
            assert!(is_valid_ip(ok).is_empty(), "{ok}");
        }
        for bad in [
            "",
            "1.2.3",
            "1.2.3.256",
            "abc",
            "1.2.3.4/24",
            "2001:db8::g",
            "fe80::1%eth0",
        ] {
            assert_eq!(is_valid_ip(bad), vec![IP_ERR_MSG.to_owned()], "{bad}");
        }
        assert_eq!(
            is_valid_ip("010.1.1.1"),
            vec!["must not have leading 0s".to_owned()]
        );
        assert_eq!(
            is_valid_ip("::ffff:1.2.3.4"),
            vec!["must not be an IPv4-mapped IPv6 address".to_owned()]
        );
    }

    #[test]
    fn api_label_selector_validation() {
        let path = FieldPath::new("spec").child("selector");
        let sel = LabelSelector {
            match_labels: Some(map(&[("app", "web")])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".to_owned(),
                    operator: "In".to_owned(),
                    values: None,
                },
                LabelSelectorRequirement {
                    key: "x".to_owned(),
                    operator: "Exists".to_owned(),
                    values: Some(vec!["a".to_owned()]),
                },
                LabelSelectorRequirement {
                    key: "bad key".to_owned(),
                    operator: "Equals".to_owned(),
                    values: Some(vec!["-v".to_owned()]),
                },
            ]),
        };
        let texts: Vec<String> = validate_label_selector(&sel, &path)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(texts, vec![
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'".to_owned(),
            "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'".to_owned(),
            "spec.selector.matchExpressions[2].operator: Invalid value: \"Equals\": not a valid selector operator".to_owned(),
            format!("spec.selector.matchExpressions[2].key: Invalid value: \"bad key\": {NAME_PART_MSG}"),
            format!("spec.selector.matchExpressions[2].values[0]: Invalid value: \"-v\": {LABEL_VALUE_MSG}"),
        ]);
    }

    #[test]
    fn immutable_field_helper() {
        let p = FieldPath::new("spec").child("selector");
        assert!(validate_immutable_field(&Some(1), &Some(1), &p).is_empty());
        assert_eq!(
            validate_immutable_field(&Some(2), &Some(1), &p)[0].to_string(),
            "spec.selector: Invalid value: 2: field is immutable"
        );
    }

    #[test]
    fn quantities_decode_or_fail_the_request() {
        let path = FieldPath::new("spec").child("limits").key("cpu");
        let ok = decode_quantity(&ApiQuantity("500m".into()), &path).unwrap();
        assert_eq!(ok.milli_value(), 500);
        let bad = decode_quantity(&ApiQuantity("abc".into()), &path).unwrap_err();
        assert_eq!(bad.kind, FieldErrorKind::Undecodable);
        assert_eq!(bad.field, "spec.limits[cpu]");
        let errors = [
            FieldError::required("spec.a", ""),
            bad.clone(),
            FieldError::undecodable("spec.b", "1i", "unable to parse quantity's suffix"),
        ];
        assert_eq!(first_undecodable(&errors), Some(&bad));
        assert_eq!(first_undecodable(&errors[..1]), None);
        assert_eq!(
            decode_error_message("Pod", "v1", &bad.detail),
            "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular \
             expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn quantity_signs() {
        let q = |t: &str| Quantity::parse(t).unwrap();
        let path = FieldPath::new("spec").child("requests").key("cpu");
        assert_eq!(
            validate_nonnegative_quantity(&q("-1"), &path)[0].to_string(),
            "spec.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0"
        );
        assert!(validate_nonnegative_quantity(&q("0"), &path).is_empty());
        assert_eq!(
            validate_positive_quantity(&q("0"), &path)[0].to_string(),
            "spec.requests[cpu]: Invalid value: \"0\": must be greater than zero"
        );
        assert_eq!(
            validate_positive_quantity(&q("-0.5"), &path)[0].to_string(),
            "spec.requests[cpu]: Invalid value: \"-500m\": must be greater than zero"
        );
        assert!(validate_positive_quantity(&q("1n"), &path).is_empty());
    }

    #[test]
    fn wildcard_subdomains() {
        assert!(is_wildcard_dns1123_subdomain("*.example.com").is_empty());
        for bad in ["*", "*example.com", "a.*.com", "*.*.com", "*.Example.com"] {
            assert_eq!(
                is_wildcard_dns1123_subdomain(bad),
                [
                    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                ],
                "{bad}"
            );
        }
    }

    #[test]
    fn cidrs_by_the_strict_legacy_rule() {
        let cases: &[(&str, &[&str])] = &[
            ("10.0.0.0/8", &[]),
            ("0.0.0.0/0", &[]),
            ("192.168.1.1/32", &[]),
            ("2001:db8::/64", &[]),
            ("2001:DB8::/64", &[]),
            (
                "10.0.0.1/8",
                &["must not have bits set beyond the prefix length"],
            ),
            (
                "010.0.0.0/8",
                &["must not have leading 0s in IP or prefix length"],
            ),
            (
                "10.0.0.0/08",
                &["must not have leading 0s in IP or prefix length"],
            ),
            (
                "::ffff:10.0.0.0/104",
                &["must not have an IPv4-mapped IPv6 address"],
            ),
            ("10.0.0.0/33", &[CIDR_ERR_MSG]),
            ("10.0.0.0", &[CIDR_ERR_MSG]),
            ("10.0.0.0/", &[CIDR_ERR_MSG]),
            ("nonsense/8", &[CIDR_ERR_MSG]),
        ];
        for (value, want) in cases {
            assert_eq!(is_valid_cidr(value), *want, "{value}");
        }
        assert_eq!(
            cidr_is_strict_subset("10.1.0.0/16", "10.0.0.0/8"),
            Some(true)
        );
        assert_eq!(
            cidr_is_strict_subset("10.0.0.0/8", "10.0.0.0/8"),
            Some(false)
        );
        assert_eq!(
            cidr_is_strict_subset("11.0.0.0/16", "10.0.0.0/8"),
            Some(false)
        );
        assert_eq!(cidr_is_strict_subset("x", "10.0.0.0/8"), None);
    }

    #[test]
    fn domain_prefixed_paths_and_fully_qualified_names() {
        let path = FieldPath::new("spec.controller");
        assert!(validate_domain_prefixed_path("example.com/ingress", &path).is_empty());
        let messages =
            |errs: Vec<FieldError>| errs.iter().map(|e| e.to_string()).collect::<Vec<_>>();
        assert_eq!(
            messages(validate_domain_prefixed_path("nginx", &path)),
            [
                "spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"
            ]
        );
        assert_eq!(
            messages(validate_domain_prefixed_path("example.com/a b", &path)),
            [
                "spec.controller: Invalid value: \"a b\": Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')"
            ]
        );
        let name = FieldPath::new("webhooks[0].name");
        assert!(validate_fully_qualified_name("hook.example.com", &name).is_empty());
        assert_eq!(
            messages(validate_fully_qualified_name("example.com", &name)),
            [
                "webhooks[0].name: Invalid value: \"example.com\": should be a domain with at least three segments separated by dots"
            ]
        );
        assert_eq!(
            messages(validate_fully_qualified_name("", &name)),
            ["webhooks[0].name: Required value"]
        );
    }

    #[test]
    fn go_structs_render_as_percent_hash_v() {
        let rendered = go_struct(
            "rbac.RoleRef",
            &[
                ("APIGroup", "rbac.authorization.k8s.io"),
                ("Kind", "Role"),
                ("Name", "view"),
            ],
        );
        let err = FieldError::invalid_rendered("roleRef", &rendered, "cannot change roleRef");
        assert_eq!(
            err.to_string(),
            "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"view\"}: cannot change roleRef"
        );
        assert_eq!(err.reason(), "FieldValueInvalid");
    }
}
