//! Kubernetes JSON as kube-apiserver writes it: Go's `encoding/json` of the Go struct.
//!
//! kube-apiserver's JSON serializer (`k8s.io/apimachinery/pkg/runtime/serializer/json`) hands the
//! typed object to an `encoding/json` `Encoder`, so the bytes clients see follow Go's rules, not
//! the key order of whatever JSON the object came from:
//!
//! * fields in Go declaration order, embedded structs without a JSON name (`TypeMeta`,
//!   `Volume.volumeSource`) flattened in place;
//! * `omitempty` leaves out `""`, `0`, `false`, nil pointers and empty slices and maps, never a
//!   struct; `omitzero` leaves out zero values, structs included (`creationTimestamp`);
//! * any other field is always written: a missing struct as its zero value (`"status":{}`,
//!   `"status":{"loadBalancer":{}}`), a missing scalar as `""`/`0`/`false`, a nil slice, map or
//!   pointer as `null`, the zero `metav1.Time` as `null`;
//! * map keys sorted; strings escaped with `<`, `>`, `&`, U+2028 and U+2029 as `\u003c` etc.;
//! * an `Encoder` ends every document with `\n`.
//!
//! The encoder walks the Go type from the generated schema (`schema.rs`) over a
//! [`serde_json::Value`] and writes straight into a `Vec<u8>`.
//!
//! What the Go type cannot say is taken from the value:
//!
//! * The special types (`Time`, `MicroTime`, `Quantity`, `IntOrString`, `Duration`, `[]byte`,
//!   `FieldsV1`) are written as the value holds them: skiff keeps them in their Kubernetes JSON
//!   form already.
//! * A `runtime.RawExtension` (a watch event's `object`, a `metav1.List`'s or a Table row's
//!   `object`) holding an object of a known `apiVersion`/`kind` is written as that kind, as
//!   kube-apiserver encodes the embedded object with the same serializer; any other embedded
//!   document is written as a generic value.
//! * Keys that the Go type does not have are dropped: kube-apiserver decodes every request into
//!   the Go struct, which drops them, so they can never appear in its responses.
//! * A value whose JSON type does not fit the field (a number where Go has a string) is written
//!   as it is rather than lost; kube-apiserver would have refused it on the way in.
//! * Objects of kinds the schema does not know (custom resources) and values of `interface{}`
//!   fields are generic values: objects with their keys sorted. That is what kube-apiserver
//!   writes for them too: custom resources are `map[string]interface{}` in Go, and Go sorts map
//!   keys. (serde_json's `Map` is sorted, as skiff does not enable `preserve_order`.) Numbers are
//!   written as Go writes an `int64` or a `float64`.

use std::cmp::Ordering;
use std::sync::OnceLock;

use serde_json::{Map, Number, Value};

use crate::schema::{BY_NAME, KINDS, MESSAGES, META_KINDS};
use crate::schema_types::{Field, INLINE, Message, OMITEMPTY, OMITZERO, POINTER, Ty};

/// The Go package of `metav1`, whose kinds Kubernetes registers in every built-in group version.
const META: &str = "k8s.io/apimachinery/pkg/apis/meta/v1";

/// A Go struct type of the Kubernetes API, to encode a value as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoType(u16);

impl GoType {
    /// The Go type of a built-in kind, such as `("v1", "Pod")` or `("apps/v1", "DeploymentList")`.
    /// The `metav1` kinds (`Status`, `Table`, `PartialObjectMetadata`, `APIResourceList`, ...)
    /// are found under every built-in group version, `meta.k8s.io` and no apiVersion at all
    /// (kube-apiserver writes `/api`'s `APIVersions` with a kind only), but not under other
    /// groups: a custom resource may well be called `Status`.
    pub fn of_kind(api_version: &str, kind: &str) -> Option<GoType> {
        if let Ok(i) = KINDS.binary_search_by(|(v, k, _)| (*v, *k).cmp(&(api_version, kind))) {
            return Some(GoType(KINDS[i].2));
        }
        let builtin = api_version.is_empty() || api_version.starts_with("meta.k8s.io/") || {
            let at = KINDS.partition_point(|(v, _, _)| *v < api_version);
            KINDS.get(at).is_some_and(|(v, _, _)| *v == api_version)
        };
        if !builtin {
            return None;
        }
        META_KINDS
            .binary_search_by(|(k, _)| (*k).cmp(kind))
            .ok()
            .map(|i| GoType(META_KINDS[i].1))
    }

    /// A Go type by its full name, such as `k8s.io/api/core/v1.PodSpec`.
    pub fn named(name: &str) -> Option<GoType> {
        BY_NAME
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| GoType(BY_NAME[i].1))
    }

    /// A type of `metav1` (`k8s.io/apimachinery/pkg/apis/meta/v1`) by its short name, such as
    /// `WatchEvent`, `Status` or `TableRow`.
    pub fn meta(name: &str) -> Option<GoType> {
        GoType::named(&format!("{META}.{name}"))
    }

    /// The full Go type name.
    pub fn name(self) -> &'static str {
        self.message().name
    }

    fn message(self) -> &'static Message {
        &MESSAGES[usize::from(self.0)]
    }
}

/// A response body as kube-apiserver writes it: the object's JSON (see [`write_object`]) and `\n`.
pub fn to_body(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_object(&mut out, value);
    out.push(b'\n');
    out
}

/// Appends an object's JSON (no trailing newline): as the Go type of its `apiVersion` and `kind`
/// when the schema knows them, as a generic value otherwise.
pub fn write_object(out: &mut Vec<u8>, value: &Value) {
    match kind_of(value) {
        Some(ty) => write_as(out, ty, value),
        None => write_value(out, value),
    }
}

/// Appends the JSON of `value` read as the Go struct `ty` (no trailing newline): for a part of a
/// response, such as a list's item or a watch event (`GoType::meta("WatchEvent")`).
pub fn write_as(out: &mut Vec<u8>, ty: GoType, value: &Value) {
    match value {
        Value::Object(map) => write_message(out, ty.0, Some(map)),
        Value::Null => write_message(out, ty.0, None),
        other => write_value(out, other),
    }
}

/// Appends any JSON value as Go writes an `interface{}` holding it: objects with sorted keys.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// The Go type of an object's `apiVersion` and `kind`, if it is a built-in one.
fn kind_of(value: &Value) -> Option<GoType> {
    let api_version = match value.get("apiVersion") {
        None => "",
        Some(v) => v.as_str()?,
    };
    let kind = value.get("kind")?.as_str()?;
    GoType::of_kind(api_version, kind)
}

/// A struct's JSON fields with its inlined structs flattened in place (the order encoding/json
/// writes them in), and the same fields by JSON key, to match against a map's sorted keys.
struct View {
    fields: Vec<&'static Field>,
    by_key: Vec<u16>,
}

/// One [`View`] per message, built on first use.
fn views() -> &'static [View] {
    static VIEWS: OnceLock<Vec<View>> = OnceLock::new();
    VIEWS.get_or_init(|| {
        MESSAGES
            .iter()
            .map(|msg| {
                let mut fields = Vec::new();
                flatten(msg, &mut fields);
                let mut by_key: Vec<u16> = (0..fields.len() as u16).collect();
                by_key.sort_by_key(|&i| fields[usize::from(i)].json);
                View { fields, by_key }
            })
            .collect()
    })
}

fn flatten(msg: &'static Message, out: &mut Vec<&'static Field>) {
    for field in msg.fields {
        match field.ty {
            // The generator only inlines plain structs (never special types) and has checked that
            // no inlined key collides with another, so Go's rules for shadowed names never apply.
            Ty::Message(inner) if field.has(INLINE) => flatten(&MESSAGES[usize::from(inner)], out),
            _ if field.has(INLINE) => {}
            _ => out.push(field),
        }
    }
}

/// Up to this many fields, a struct's values are gathered on the stack.
const STACK_SLOTS: usize = 64;

fn write_message(out: &mut Vec<u8>, index: u16, map: Option<&Map<String, Value>>) {
    let view = &views()[usize::from(index)];
    let n = view.fields.len();
    let mut stack = [None; STACK_SLOTS];
    let mut heap;
    let slots: &mut [Option<&Value>] = if n <= STACK_SLOTS {
        &mut stack[..n]
    } else {
        heap = vec![None; n];
        &mut heap
    };
    if let Some(map) = map {
        match_keys(view, map, slots);
    }
    out.push(b'{');
    let mut first = true;
    for (field, &value) in view.fields.iter().zip(slots.iter()) {
        if omitted(field, value) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        // Field names are Go identifiers' JSON tags: plain ASCII, nothing to escape.
        out.push(b'"');
        out.extend_from_slice(field.json.as_bytes());
        out.extend_from_slice(b"\":");
        match value {
            Some(Value::Null) | None if field.has(POINTER) => out.extend_from_slice(b"null"),
            _ => write_typed(out, field.ty, value),
        }
    }
    out.push(b'}');
}

/// `a.cmp(b)`, deciding by the first bytes where they differ (most comparisons) without a call
/// to `memcmp`.
fn key_order(a: &str, b: &str) -> Ordering {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

/// Puts each of the map's values in the slot of its field: both are sorted by key, so one pass
/// over the two matches them. Keys the Go type does not have are dropped.
fn match_keys<'v>(view: &View, map: &'v Map<String, Value>, slots: &mut [Option<&'v Value>]) {
    let mut keys = map.iter().peekable();
    let mut fields = view.by_key.iter().peekable();
    while let (Some(&(key, value)), Some(&&i)) = (keys.peek(), fields.peek()) {
        match key_order(key, view.fields[usize::from(i)].json) {
            Ordering::Less => {
                keys.next();
            }
            Ordering::Greater => {
                fields.next();
            }
            Ordering::Equal => {
                slots[usize::from(i)] = Some(value);
                keys.next();
                fields.next();
            }
        }
    }
}

/// Whether `encoding/json` leaves the field out, given its value (`None`: absent).
fn omitted(field: &Field, value: Option<&Value>) -> bool {
    let omitempty = field.has(OMITEMPTY);
    let omitzero = field.has(OMITZERO);
    if !omitempty && !omitzero {
        return false;
    }
    let value = value.filter(|v| !v.is_null());
    if field.has(POINTER) {
        // A nil pointer is both empty and zero; a non-nil one is neither.
        return value.is_none();
    }
    match field.ty {
        Ty::Str | Ty::Bool | Ty::Int32 | Ty::Int64 => value.is_none_or(is_zero_scalar),
        // Slices and maps: nil is zero, and nil or empty is empty.
        Ty::Bytes => value.is_none_or(|v| omitempty && v.as_str() == Some("")),
        Ty::Repeated(_) | Ty::Wrapped(_) => {
            value.is_none_or(|v| omitempty && v.as_array().is_some_and(Vec::is_empty))
        }
        Ty::Map(_) => value.is_none_or(|v| omitempty && v.as_object().is_some_and(Map::is_empty)),
        Ty::Any => value.is_none(),
        // A struct is never empty; omitzero leaves out its zero value.
        _ => omitzero && value.is_none_or(|v| is_zero(field.ty, v)),
    }
}

fn is_zero_scalar(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0) || n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// Whether a present (non-null) value is its Go type's zero value, for `omitzero`.
fn is_zero(ty: Ty, v: &Value) -> bool {
    match ty {
        Ty::Str | Ty::Bool | Ty::Int32 | Ty::Int64 => is_zero_scalar(v),
        // A present slice or map is non-nil, so not zero; a present raw document neither.
        Ty::Bytes
        | Ty::Repeated(_)
        | Ty::Wrapped(_)
        | Ty::Map(_)
        | Ty::Any
        | Ty::RawExtension
        | Ty::FieldsV1 => false,
        // metav1.Time's IsZero: Go's zero time.
        Ty::Time | Ty::MicroTime => v
            .as_str()
            .is_some_and(|s| s.starts_with("0001-01-01T00:00:00")),
        Ty::Duration => v.as_str() == Some("0s"),
        Ty::Quantity => v.as_str().is_some_and(quantity_is_zero),
        Ty::IntOrString => v.as_i64() == Some(0),
        Ty::Message(i) => v
            .as_object()
            .is_some_and(|map| message_is_zero(&MESSAGES[usize::from(i)], map)),
    }
}

/// Whether every field of a struct is zero (Go's zero struct).
fn message_is_zero(msg: &Message, map: &Map<String, Value>) -> bool {
    msg.fields.iter().all(|field| match field.ty {
        Ty::Message(i) if field.has(INLINE) => message_is_zero(&MESSAGES[usize::from(i)], map),
        ty => match map.get(field.json) {
            None | Some(Value::Null) => true,
            Some(_) if field.has(POINTER) => false,
            Some(v) => is_zero(ty, v),
        },
    })
}

/// `Quantity.IsZero`: the number is zero whatever its suffix (`0`, `0m`, `0.0Gi`).
fn quantity_is_zero(s: &str) -> bool {
    let number = s.trim_start_matches(['+', '-']);
    let end = number
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(number.len());
    number[..end].bytes().all(|b| b == b'0' || b == b'.') && number[..end].contains('0')
}

/// A field's value as its Go type writes it; `None` or null is the type's zero value.
fn write_typed(out: &mut Vec<u8>, ty: Ty, value: Option<&Value>) {
    let value = value.filter(|v| !v.is_null());
    match (ty, value) {
        (Ty::Message(i), None) => write_message(out, i, None),
        (Ty::Message(i), Some(Value::Object(map))) => write_message(out, i, Some(map)),
        (Ty::Str, None) => out.extend_from_slice(b"\"\""),
        (Ty::Bool, None) => out.extend_from_slice(b"false"),
        (Ty::Int32 | Ty::Int64 | Ty::IntOrString, None) => out.push(b'0'),
        (Ty::Quantity, None) => out.extend_from_slice(b"\"0\""),
        // Quantity's UnmarshalJSON takes a bare number; its MarshalJSON always writes a string.
        (Ty::Quantity, Some(Value::Number(n))) => {
            out.push(b'"');
            write_number(out, n);
            out.push(b'"');
        }
        (Ty::Duration, None) => out.extend_from_slice(b"\"0s\""),
        (Ty::RawExtension, Some(v @ Value::Object(_))) => write_object(out, v),
        (Ty::Repeated(elem) | Ty::Wrapped(elem), Some(Value::Array(items))) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_typed(out, *elem, Some(item));
            }
            out.push(b']');
        }
        (Ty::Map(elem), Some(Value::Object(map))) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write_typed(out, *elem, Some(item));
            }
            out.push(b'}');
        }
        // Nil slices, maps, []byte, raw documents, interfaces; the zero Time.
        (_, None) => out.extend_from_slice(b"null"),
        // Scalars and special types as the value holds them; mismatched values as they are.
        (_, Some(v)) => write_value(out, v),
    }
}

/// Go's `strconv` form of an `int64` or `float64`, as `encoding/json` uses it.
fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(i) = n.as_i64() {
        write_integer(out, i.unsigned_abs(), i < 0);
    } else if let Some(u) = n.as_u64() {
        write_integer(out, u, false);
    } else if let Some(f) = n.as_f64() {
        write_float(out, f);
    }
}

fn write_integer(out: &mut Vec<u8>, mut v: u64, negative: bool) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// `encoding/json`'s float64: the shortest digits that round-trip, in `%f` form unless the
/// magnitude is below 1e-6 or at least 1e21, then `%e` form with a signed exponent of as few
/// digits as it needs (`1e-7`, `1e+21`).
fn write_float(out: &mut Vec<u8>, f: f64) {
    use std::io::Write as _;
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust's `{:e}` has the same shortest digits; Go signs positive exponents.
        let start = out.len();
        write!(out, "{f:e}").expect("writing to a Vec cannot fail");
        if let Some(e) = out[start..].iter().position(|&b| b == b'e') {
            let e = start + e;
            if out.get(e + 1) != Some(&b'-') {
                out.insert(e + 1, b'+');
            }
        }
    } else {
        write!(out, "{f}").expect("writing to a Vec cannot fail");
    }
}

/// What a byte needs in a Go JSON string: 0 nothing, `u` a `\u00XX` escape, `s` a UTF-8 lead
/// byte that may start U+2028/U+2029, anything else the letter after a backslash.
static ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    // encoding/json's HTML-safe escaping, on by default in json.Marshal and json.Encoder.
    table[b'<' as usize] = b'u';
    table[b'>' as usize] = b'u';
    table[b'&' as usize] = b'u';
    table[0xe2] = b's';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A string as `encoding/json` writes it.
fn write_string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        let escape = ESCAPES[usize::from(bytes[i])];
        if escape == 0 {
            i += 1;
            continue;
        }
        if escape == b's' {
            // U+2028 and U+2029 are E2 80 A8 and E2 80 A9: valid JSON, but not JavaScript.
            if bytes.get(i + 1) == Some(&0x80) && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) {
                out.extend_from_slice(&bytes[run..i]);
                out.extend_from_slice(if bytes[i + 2] == 0xa8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                run = i;
            } else {
                i += 1;
            }
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        if escape == b'u' {
            let b = bytes[i];
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.push(b'\\');
            out.push(escape);
        }
        i += 1;
        run = i;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// Go's `json.Compact`: `pretty` without the whitespace between tokens (what
/// `json.MarshalIndent` adds), strings left as they are. For comparing indented documents, such
/// as kubectl's `-o json`, with the compact bytes kube-apiserver writes.
pub fn compact(pretty: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pretty.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in pretty {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !b.is_ascii_whitespace() {
            in_string = b == b'"';
            out.push(b);
        }
    }
    out
}

/// The JSON of an object written by this module with `"resourceVersion":"<resource_version>"`
/// spliced into its top-level `metadata` where `ObjectMeta` declares it (after `uid`, before
/// `generation`), without decoding it: for objects stored without their resourceVersion (it is
/// the store's revision), served as kube-apiserver would. `None` if `encoded` has no top-level
/// `metadata` object or that already has a `resourceVersion`.
pub fn with_resource_version(encoded: &[u8], resource_version: &str) -> Option<Vec<u8>> {
    let object_meta = GoType::meta("ObjectMeta")?.message();
    let rv_at = object_meta
        .fields
        .iter()
        .position(|f| f.json == "resourceVersion")?;
    let later = &object_meta.fields[rv_at + 1..];
    let mut scan = Scanner::top_level_metadata(encoded)?;
    // Where the field goes: before the first key ObjectMeta declares after it, else before the
    // closing brace.
    let mut before_key = None;
    let mut any_key = false;
    let close = loop {
        if encoded.get(scan.at) == Some(&b'}') {
            break scan.at;
        }
        let key_at = scan.at;
        let key = scan.string()?;
        if key == b"resourceVersion" {
            return None;
        }
        any_key = true;
        if before_key.is_none() && later.iter().any(|f| f.json.as_bytes() == key) {
            before_key = Some(key_at);
        }
        scan.expect(b':')?;
        scan.skip_value()?;
        if encoded.get(scan.at) == Some(&b',') {
            scan.at += 1;
        } else if encoded.get(scan.at) != Some(&b'}') {
            return None;
        }
    };
    let mut field = Vec::with_capacity(20 + resource_version.len());
    field.extend_from_slice(b"\"resourceVersion\":");
    write_string(&mut field, resource_version);
    let mut out = Vec::with_capacity(encoded.len() + field.len() + 1);
    match before_key {
        Some(at) => {
            out.extend_from_slice(&encoded[..at]);
            out.extend_from_slice(&field);
            out.push(b',');
            out.extend_from_slice(&encoded[at..]);
        }
        None => {
            out.extend_from_slice(&encoded[..close]);
            if any_key {
                out.push(b',');
            }
            out.extend_from_slice(&field);
            out.extend_from_slice(&encoded[close..]);
        }
    }
    Some(out)
}

/// A minimal reader of compact JSON (what this module writes: no whitespace).
struct Scanner<'a> {
    json: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner just inside the `{` of the top-level `metadata` object of `json`.
    fn top_level_metadata(json: &'a [u8]) -> Option<Scanner<'a>> {
        let mut scan = Scanner { json, at: 0 };
        scan.expect(b'{')?;
        loop {
            let key = scan.string()?;
            scan.expect(b':')?;
            if key == b"metadata" {
                scan.expect(b'{')?;
                return Some(scan);
            }
            scan.skip_value()?;
            scan.expect(b',')?;
        }
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.json.get(self.at) == Some(&b)).then(|| self.at += 1)
    }

    /// A string's raw contents (escapes left as they are).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.at;
        while *self.json.get(self.at)? != b'"' {
            self.at += if self.json[self.at] == b'\\' { 2 } else { 1 };
        }
        self.at += 1;
        self.json.get(start..self.at - 1)
    }

    /// Moves past one value.
    fn skip_value(&mut self) -> Option<()> {
        match *self.json.get(self.at)? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match *self.json.get(self.at)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            // A number, true, false or null: up to what follows it.
            _ => {
                while !matches!(*self.json.get(self.at)?, b',' | b'}' | b']') {
                    self.at += 1;
                }
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn string(s: &str) -> String {
        let mut out = Vec::new();
        write_string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_go_does() {
        // (input, Go's encoding/json output)
        let cases = [
            ("plain", r#""plain""#),
            (
                "<a href=\"x\">&</a>",
                r#""\u003ca href=\"x\"\u003e\u0026\u003c/a\u003e""#,
            ),
            ("tab\tnl\ncr\rbs\\", r#""tab\tnl\ncr\rbs\\""#),
            ("\u{8}\u{c}\u{1}\u{1f}", r#""\b\f\u0001\u001f""#),
            ("line\u{2028}para\u{2029}", r#""line\u2028para\u2029""#),
            ("\u{7f}", "\"\u{7f}\""),
            // Other characters with the same lead byte are left alone.
            ("\u{2026}\u{20ac}é日本", "\"\u{2026}\u{20ac}é日本\""),
        ];
        for (input, want) in cases {
            assert_eq!(string(input), want, "{input:?}");
        }
    }

    #[test]
    fn numbers_are_written_as_go_does() {
        // (value, Go's strconv output as encoding/json uses it)
        let cases = [
            (json!(0), "0"),
            (json!(-42), "-42"),
            (json!(i64::MIN), "-9223372036854775808"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(1.5), "1.5"),
            (json!(1.0), "1"),
            (json!(0.1 + 0.2), "0.30000000000000004"),
            (json!(1e20), "100000000000000000000"),
            (json!(1e21), "1e+21"),
            (json!(1.5e300), "1.5e+300"),
            (json!(0.000001), "0.000001"),
            (json!(1.234e-7), "1.234e-7"),
            (json!(-2.5e-10), "-2.5e-10"),
        ];
        for (value, want) in cases {
            let mut out = Vec::new();
            write_value(&mut out, &value);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{value}");
        }
    }

    #[test]
    fn values_the_go_type_cannot_hold() {
        // (value, kube-apiserver's body)
        let cases = [
            // A key the Go type lacks is dropped, as decoding into the struct drops it.
            (
                json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c", "bogus": 1}, "extra": true}),
                r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"}}"#,
            ),
            // A value of the wrong JSON type is kept as it is.
            (
                json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": 5}}),
                r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":5}}"#,
            ),
            // A custom resource is a map[string]interface{}: sorted keys, nothing dropped.
            (
                json!({"kind": "Widget", "apiVersion": "example.com/v1", "spec": {"b": 1.5, "a": "<x>"}, "metadata": {"name": "w"}}),
                r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"a":"\u003cx\u003e","b":1.5}}"#,
            ),
            // A watch event of a custom resource: the RawExtension holds it as it is.
            (
                json!({"type": "ADDED", "object": {"kind": "Widget", "apiVersion": "example.com/v1", "metadata": {}}}),
                r#"{"type":"ADDED","object":{"apiVersion":"example.com/v1","kind":"Widget","metadata":{}}}"#,
            ),
            // Null for a non-pointer field is its zero value; for a pointer, nil: left out with
            // omitempty (replicas), written as null without (selector).
            (
                json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": null, "spec": {"replicas": null, "selector": null, "template": {"spec": null}}, "status": null}),
                r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{},"spec":{"selector":null,"template":{"metadata":{},"spec":{"containers":null}},"strategy":{}},"status":{}}"#,
            ),
        ];
        for (value, want) in cases {
            let body = match value.get("type") {
                Some(_) => {
                    let mut out = Vec::new();
                    write_as(&mut out, GoType::meta("WatchEvent").unwrap(), &value);
                    out.push(b'\n');
                    out
                }
                None => to_body(&value),
            };
            assert_eq!(
                String::from_utf8(body).unwrap(),
                format!("{want}\n"),
                "{value}"
            );
        }
    }

    #[test]
    fn quantity_zero() {
        for (q, zero) in [
            ("0", true),
            ("0m", true),
            ("-0.0Gi", true),
            ("1", false),
            ("0.5", false),
            ("10Mi", false),
            ("", false),
        ] {
            assert_eq!(quantity_is_zero(q), zero, "{q}");
        }
    }

    #[test]
    fn types_are_found_by_kind_and_name() {
        let pod = GoType::of_kind("v1", "Pod").unwrap();
        assert_eq!(pod.name(), "k8s.io/api/core/v1.Pod");
        assert_eq!(GoType::named("k8s.io/api/core/v1.Pod"), Some(pod));
        assert_eq!(
            GoType::meta("WatchEvent").map(GoType::name),
            Some("k8s.io/apimachinery/pkg/apis/meta/v1.WatchEvent")
        );
        let status = GoType::meta("Status").unwrap();
        // metav1 kinds under any built-in group version and meta.k8s.io, not a custom group.
        assert_eq!(GoType::of_kind("v1", "Status"), Some(status));
        assert_eq!(GoType::of_kind("apps/v1", "Status"), Some(status));
        assert_eq!(
            GoType::of_kind("meta.k8s.io/v1", "Table"),
            GoType::meta("Table")
        );
        assert_eq!(GoType::of_kind("example.com/v1", "Status"), None);
        assert_eq!(
            GoType::of_kind("", "APIVersions"),
            GoType::meta("APIVersions")
        );
        assert_eq!(GoType::of_kind("", "Pod"), None);
        assert_eq!(GoType::of_kind("v1", "Nonexistent"), None);
        assert_eq!(GoType::meta("Nonexistent"), None);
    }

    #[test]
    fn resource_version_goes_after_uid() {
        // (encoded object, where Go's ObjectMeta order puts resourceVersion)
        let cases = [
            (
                r#"{"kind":"Pod","metadata":{"name":"p","uid":"u","creationTimestamp":"t"},"spec":{}}"#,
                r#"{"kind":"Pod","metadata":{"name":"p","uid":"u","resourceVersion":"7","creationTimestamp":"t"},"spec":{}}"#,
            ),
            (
                r#"{"metadata":{"name":"p","labels":{"a":"b"}}}"#,
                r#"{"metadata":{"name":"p","resourceVersion":"7","labels":{"a":"b"}}}"#,
            ),
            (
                r#"{"metadata":{"name":"p"},"data":{"metadata":"{}"}}"#,
                r#"{"metadata":{"name":"p","resourceVersion":"7"},"data":{"metadata":"{}"}}"#,
            ),
            (
                r#"{"kind":"X","spec":{"metadata":{}},"metadata":{}}"#,
                r#"{"kind":"X","spec":{"metadata":{}},"metadata":{"resourceVersion":"7"}}"#,
            ),
            (
                r#"{"metadata":{"generation":2,"managedFields":[{"fieldsV1":{"f:metadata":{}}}]}}"#,
                r#"{"metadata":{"resourceVersion":"7","generation":2,"managedFields":[{"fieldsV1":{"f:metadata":{}}}]}}"#,
            ),
        ];
        for (encoded, want) in cases {
            let got = with_resource_version(encoded.as_bytes(), "7").unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), want);
        }
        for bad in [
            r#"{"metadata":{"resourceVersion":"1"}}"#,
            r#"{"metadata":5}"#,
            r#"{"spec":{"metadata":{}}}"#,
            r#"[1,2"#,
        ] {
            assert!(
                with_resource_version(bad.as_bytes(), "7").is_none(),
                "{bad}"
            );
        }
    }
}
