//! Protobuf → Kubernetes JSON, driven by the generated schema: each message becomes the JSON that
//! Go's `encoding/json` would write for the Go struct that Kubernetes decodes the message into.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use crate::DecodeError;
use crate::gotime;
use crate::schema::MESSAGES;
use crate::schema_types::{Field, INLINE, Message, OMITEMPTY, OMITZERO, POINTER, Ty};
use crate::wire::{Raw, Records, varint};

/// How deep messages may nest. Kubernetes' deepest kinds (a CronJob's pod template) stay far
/// below this; the limit only stops hostile bodies (nested `RawExtension`s) from exhausting the
/// stack.
const MAX_DEPTH: usize = 100;

/// Where a decoding error happened, for the error message.
fn malformed(at: impl Into<String>, reason: impl Into<String>) -> DecodeError {
    DecodeError::Malformed {
        at: at.into(),
        reason: reason.into(),
    }
}

struct Decoder {
    depth: usize,
}

/// Joins the payloads of all records of a message-typed field: protobuf merges repeated
/// occurrences of a non-repeated message field, which is the same as decoding their concatenation.
fn joined<'a>(at: &str, records: &[Raw<'a>]) -> Result<Cow<'a, [u8]>, DecodeError> {
    let mut parts = records.iter().map(|r| match r {
        Raw::Len(b) => Ok(*b),
        _ => Err(malformed(at, "a message field is not length-delimited")),
    });
    match records.len() {
        0 => Ok(Cow::Borrowed(&[])),
        1 => Ok(Cow::Borrowed(parts.next().expect("one record")?)),
        _ => {
            let mut all = Vec::new();
            for part in parts {
                all.extend_from_slice(part?);
            }
            Ok(Cow::Owned(all))
        }
    }
}

/// The last varint of a scalar field (protobuf: the last occurrence wins).
fn last_varint(at: &str, records: &[Raw<'_>]) -> Result<Option<u64>, DecodeError> {
    match records.last() {
        None => Ok(None),
        Some(Raw::Varint(v)) => Ok(Some(*v)),
        Some(_) => Err(malformed(at, "a numeric field is not a varint")),
    }
}

/// The last length-delimited payload of a string or bytes field.
fn last_bytes<'a>(at: &str, records: &[Raw<'a>]) -> Result<Option<&'a [u8]>, DecodeError> {
    match records.last() {
        None => Ok(None),
        Some(Raw::Len(b)) => Ok(Some(b)),
        Some(_) => Err(malformed(
            at,
            "a string or bytes field is not length-delimited",
        )),
    }
}

/// A varint read as Go does for the field's type (`int32` truncates the sign-extended value).
fn int_value(ty: Ty, v: u64) -> Value {
    match ty {
        Ty::Int32 => Value::from(i64::from(v as i64 as i32)),
        Ty::Bool => Value::Bool(v != 0),
        _ => Value::from(v as i64),
    }
}

/// Go strings may hold any bytes; `encoding/json` replaces invalid UTF-8 with U+FFFD.
fn string_value(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// Whether `v` is the zero value `omitempty` leaves out (for scalars and `[]byte`).
fn is_empty_scalar(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Null => true,
        _ => false,
    }
}

/// Collects the `(seconds, nanos)` of a `Time`/`MicroTime` message.
fn timestamp(at: &str, bytes: &[u8]) -> Result<(i64, i64), DecodeError> {
    let (mut seconds, mut nanos) = (0i64, 0i64);
    for record in Records::new(bytes) {
        match record.map_err(|e| malformed(at, e))? {
            (1, Raw::Varint(v)) => seconds = v as i64,
            (2, Raw::Varint(v)) => nanos = i64::from(v as i64 as i32),
            (1 | 2, _) => return Err(malformed(at, "a timestamp field is not a varint")),
            _ => {}
        }
    }
    Ok((seconds, nanos))
}

impl Decoder {
    fn message(&mut self, index: u16, bytes: &[u8]) -> Result<Map<String, Value>, DecodeError> {
        let msg = &MESSAGES[usize::from(index)];
        if self.depth >= MAX_DEPTH {
            return Err(malformed(msg.name, "messages nest too deeply"));
        }
        self.depth += 1;
        let result = self.fields(msg, bytes);
        self.depth -= 1;
        result
    }

    fn fields(&mut self, msg: &Message, bytes: &[u8]) -> Result<Map<String, Value>, DecodeError> {
        let mut slots: Vec<Vec<Raw<'_>>> = vec![Vec::new(); msg.fields.len()];
        for record in Records::new(bytes) {
            let (number, raw) = record.map_err(|e| malformed(msg.name, e))?;
            // Unknown fields (from a newer Kubernetes) are skipped, as Go's decoder does.
            if let Some(i) = msg.field_index(number) {
                slots[i].push(raw);
            }
        }
        let mut out = Map::new();
        for &i in msg.wire {
            let (field, records) = (&msg.fields[usize::from(i)], &slots[usize::from(i)]);
            let at = || format!("{}.{}", msg.name, field.json);
            let Some(value) = self.field(field, records, &at)? else {
                continue;
            };
            if field.has(INLINE) {
                if let Value::Object(inner) = value {
                    for (k, v) in inner {
                        // As in encoding/json, the outer struct's own fields win.
                        out.entry(k).or_insert(v);
                    }
                }
            } else {
                out.insert(field.json.to_owned(), value);
            }
        }
        Ok(out)
    }

    /// A field's JSON value, or `None` when Go's `encoding/json` leaves it out.
    fn field(
        &mut self,
        field: &Field,
        records: &[Raw<'_>],
        at: &dyn Fn() -> String,
    ) -> Result<Option<Value>, DecodeError> {
        let omitempty = field.has(OMITEMPTY);
        // What a nil pointer, slice or map becomes.
        let nil = || if omitempty { None } else { Some(Value::Null) };
        match field.ty {
            Ty::Repeated(elem) => {
                let items = self.repeated(*elem, records, at)?;
                Ok(if items.is_empty() {
                    nil()
                } else {
                    Some(Value::Array(items))
                })
            }
            Ty::Wrapped(elem) => {
                let bytes = joined(&at(), records)?;
                let items = self.wrapped(*elem, &bytes, at)?;
                Ok(if items.is_empty() {
                    nil()
                } else {
                    Some(Value::Array(items))
                })
            }
            Ty::Map(value_ty) => {
                let map = self.map(*value_ty, records, at)?;
                Ok(if map.is_empty() {
                    nil()
                } else {
                    Some(Value::Object(map))
                })
            }
            ty => {
                // A pointer is on the wire only when non-nil; `[]byte` only when non-nil too.
                if records.is_empty() && (field.has(POINTER) || matches!(ty, Ty::Bytes)) {
                    return Ok(nil());
                }
                let value = self.single(ty, records, at)?;
                let scalar = matches!(ty, Ty::Str | Ty::Bool | Ty::Int32 | Ty::Int64 | Ty::Bytes);
                if omitempty && scalar && !field.has(POINTER) && is_empty_scalar(&value) {
                    return Ok(None);
                }
                if field.has(OMITZERO) && value == self.single(ty, &[], at)? {
                    return Ok(None);
                }
                Ok(Some(value))
            }
        }
    }

    /// The JSON of a non-repeated value from its records; no records gives Go's zero value.
    fn single(
        &mut self,
        ty: Ty,
        records: &[Raw<'_>],
        at: &dyn Fn() -> String,
    ) -> Result<Value, DecodeError> {
        Ok(match ty {
            Ty::Str => {
                last_bytes(&at(), records)?.map_or(Value::String(String::new()), string_value)
            }
            Ty::Bool | Ty::Int32 | Ty::Int64 => {
                int_value(ty, last_varint(&at(), records)?.unwrap_or(0))
            }
            Ty::Bytes => Value::String(BASE64.encode(last_bytes(&at(), records)?.unwrap_or(&[]))),
            Ty::Repeated(elem) => Value::Array(self.repeated(*elem, records, at)?),
            Ty::Map(value_ty) => Value::Object(self.map(*value_ty, records, at)?),
            ty => {
                let bytes = joined(&at(), records)?;
                self.embedded(ty, &bytes, at)?
            }
        })
    }

    /// The JSON of a message-encoded value (a message or one of the special types).
    fn embedded(
        &mut self,
        ty: Ty,
        bytes: &[u8],
        at: &dyn Fn() -> String,
    ) -> Result<Value, DecodeError> {
        Ok(match ty {
            Ty::Message(index) => Value::Object(self.message(index, bytes)?),
            Ty::Time => {
                // Go: an empty message is the zero time (JSON null); otherwise
                // time.Unix(seconds, 0): Kubernetes drops the nanoseconds of a Time.
                if bytes.is_empty() {
                    return Ok(Value::Null);
                }
                let (seconds, _) = timestamp(&at(), bytes)?;
                if gotime::is_go_zero(seconds, 0) {
                    return Ok(Value::Null);
                }
                Value::String(
                    gotime::rfc3339_seconds(seconds)
                        .ok_or_else(|| malformed(at(), "time outside the years 0 to 9999"))?,
                )
            }
            Ty::MicroTime => {
                if bytes.is_empty() {
                    return Ok(Value::Null);
                }
                let (seconds, nanos) = timestamp(&at(), bytes)?;
                if gotime::is_go_zero(seconds, nanos) {
                    return Ok(Value::Null);
                }
                Value::String(
                    gotime::rfc3339_micros(seconds, nanos)
                        .ok_or_else(|| malformed(at(), "time outside the years 0 to 9999"))?,
                )
            }
            Ty::Duration => {
                let mut nanos = 0i64;
                for record in Records::new(bytes) {
                    match record.map_err(|e| malformed(at(), e))? {
                        (1, Raw::Varint(v)) => nanos = v as i64,
                        (1, _) => return Err(malformed(at(), "duration is not a varint")),
                        _ => {}
                    }
                }
                Value::String(gotime::go_duration(nanos))
            }
            Ty::Quantity => {
                let mut text = None;
                for record in Records::new(bytes) {
                    match record.map_err(|e| malformed(at(), e))? {
                        (1, Raw::Len(b)) => text = Some(b),
                        (1, _) => return Err(malformed(at(), "quantity is not a string")),
                        _ => {}
                    }
                }
                // Go clients send the canonical form (`Quantity.String()`); the zero Quantity
                // prints as "0".
                match text {
                    Some(b) if !b.is_empty() => string_value(b),
                    _ => Value::String("0".to_owned()),
                }
            }
            Ty::IntOrString => {
                let (mut kind, mut int, mut string) = (0u64, 0u64, Value::String(String::new()));
                for record in Records::new(bytes) {
                    match record.map_err(|e| malformed(at(), e))? {
                        (1, Raw::Varint(v)) => kind = v,
                        (2, Raw::Varint(v)) => int = v,
                        (3, Raw::Len(b)) => string = string_value(b),
                        (1..=3, _) => {
                            return Err(malformed(
                                at(),
                                "IntOrString field of the wrong wire type",
                            ));
                        }
                        _ => {}
                    }
                }
                match kind {
                    0 => int_value(Ty::Int32, int),
                    1 => string,
                    other => {
                        return Err(malformed(
                            at(),
                            format!("IntOrString of unknown type {other}"),
                        ));
                    }
                }
            }
            Ty::RawExtension | Ty::FieldsV1 => {
                let mut raw = None;
                for record in Records::new(bytes) {
                    match record.map_err(|e| malformed(at(), e))? {
                        (1, Raw::Len(b)) => raw = Some(b),
                        (1, _) => {
                            return Err(malformed(at(), "raw bytes are not length-delimited"));
                        }
                        _ => {}
                    }
                }
                match raw {
                    // Go renders a nil Raw as null.
                    None => Value::Null,
                    Some(raw) => self.raw_document(ty, raw, at)?,
                }
            }
            Ty::Str | Ty::Bool | Ty::Int32 | Ty::Int64 | Ty::Bytes => {
                unreachable!("scalars are not embedded messages")
            }
            Ty::Repeated(_) | Ty::Map(_) => unreachable!("handled by the caller"),
            Ty::Any => unreachable!("interface{{}} fields are not on the wire"),
            Ty::Wrapped(elem) => {
                let items = self.wrapped(*elem, bytes, at)?;
                if items.is_empty() {
                    Value::Null
                } else {
                    Value::Array(items)
                }
            }
        })
    }

    /// The document inside a `RawExtension` or `FieldsV1`: JSON, or (for a `RawExtension`) a
    /// nested Kubernetes protobuf object.
    fn raw_document(
        &mut self,
        ty: Ty,
        raw: &[u8],
        at: &dyn Fn() -> String,
    ) -> Result<Value, DecodeError> {
        if matches!(ty, Ty::RawExtension) && raw.starts_with(&crate::MAGIC) {
            if self.depth >= MAX_DEPTH {
                return Err(malformed(at(), "messages nest too deeply"));
            }
            self.depth += 1;
            let nested = self.envelope(raw);
            self.depth -= 1;
            return nested;
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(raw)
            .map_err(|e| malformed(at(), format!("embedded document is not JSON: {e}")))
    }

    /// The elements of a repeated field; numeric elements may be packed.
    fn repeated(
        &mut self,
        elem: Ty,
        records: &[Raw<'_>],
        at: &dyn Fn() -> String,
    ) -> Result<Vec<Value>, DecodeError> {
        let mut items = Vec::with_capacity(records.len());
        for record in records {
            match (elem, record) {
                (Ty::Bool | Ty::Int32 | Ty::Int64, Raw::Varint(v)) => {
                    items.push(int_value(elem, *v))
                }
                (Ty::Bool | Ty::Int32 | Ty::Int64, Raw::Len(packed)) => {
                    let mut buf = *packed;
                    while !buf.is_empty() {
                        let v = varint(&mut buf).map_err(|e| malformed(at(), e))?;
                        items.push(int_value(elem, v));
                    }
                }
                (Ty::Str, Raw::Len(b)) => items.push(string_value(b)),
                (Ty::Bytes, Raw::Len(b)) => items.push(Value::String(BASE64.encode(b))),
                (Ty::Str | Ty::Bytes | Ty::Bool | Ty::Int32 | Ty::Int64, _) => {
                    return Err(malformed(at(), "repeated element of the wrong wire type"));
                }
                (elem, Raw::Len(b)) => items.push(self.embedded(elem, b, at)?),
                (_, _) => return Err(malformed(at(), "repeated message is not length-delimited")),
            }
        }
        Ok(items)
    }

    /// The items of a named-slice wrapper message (`{ repeated T items = 1; }`).
    fn wrapped(
        &mut self,
        elem: Ty,
        bytes: &[u8],
        at: &dyn Fn() -> String,
    ) -> Result<Vec<Value>, DecodeError> {
        let mut records = Vec::new();
        for record in Records::new(bytes) {
            if let (1, raw) = record.map_err(|e| malformed(at(), e))? {
                records.push(raw);
            }
        }
        self.repeated(elem, &records, at)
    }

    /// A map field: each record is an entry message `{key = 1, value = 2}`.
    fn map(
        &mut self,
        value_ty: Ty,
        records: &[Raw<'_>],
        at: &dyn Fn() -> String,
    ) -> Result<Map<String, Value>, DecodeError> {
        let mut map = Map::new();
        for record in records {
            let Raw::Len(entry) = record else {
                return Err(malformed(at(), "map entry is not length-delimited"));
            };
            let mut key = None;
            let mut values = Vec::new();
            for part in Records::new(entry) {
                match part.map_err(|e| malformed(at(), e))? {
                    (1, Raw::Len(k)) => key = Some(k),
                    (1, _) => return Err(malformed(at(), "map key is not a string")),
                    (2, raw) => values.push(raw),
                    _ => {}
                }
            }
            let key = String::from_utf8_lossy(key.unwrap_or(&[])).into_owned();
            let value = self.single(value_ty, &values, at)?;
            map.insert(key, value);
        }
        Ok(map)
    }
}

/// Decodes a whole body: the magic prefix, the `runtime.Unknown` envelope, and the object.
pub(crate) fn body(body: &[u8]) -> Result<Value, DecodeError> {
    Decoder { depth: 0 }.envelope(body)
}

/// The fields of a `runtime.Unknown`.
#[derive(Default)]
struct Envelope<'a> {
    api_version: Cow<'a, str>,
    kind: Cow<'a, str>,
    raw: &'a [u8],
    content_encoding: Cow<'a, str>,
    content_type: Cow<'a, str>,
}

fn envelope_text(raw: Raw<'_>) -> Result<Cow<'_, str>, DecodeError> {
    match raw {
        Raw::Len(b) => Ok(String::from_utf8_lossy(b)),
        _ => Err(DecodeError::BadEnvelope(
            "a string field is not length-delimited".to_owned(),
        )),
    }
}

fn envelope_fields(bytes: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let bad = |e: &str| DecodeError::BadEnvelope(e.to_owned());
    let text = envelope_text;
    let mut env = Envelope::default();
    for record in Records::new(bytes) {
        match record.map_err(bad)? {
            (1, Raw::Len(type_meta)) => {
                for record in Records::new(type_meta) {
                    match record.map_err(bad)? {
                        (1, raw) => env.api_version = text(raw)?,
                        (2, raw) => env.kind = text(raw)?,
                        _ => {}
                    }
                }
            }
            (1, _) => return Err(bad("typeMeta is not length-delimited")),
            (2, Raw::Len(raw)) => env.raw = raw,
            (2, _) => return Err(bad("raw is not length-delimited")),
            (3, raw) => env.content_encoding = text(raw)?,
            (4, raw) => env.content_type = text(raw)?,
            _ => {}
        }
    }
    Ok(env)
}

impl Decoder {
    fn envelope(&mut self, body: &[u8]) -> Result<Value, DecodeError> {
        let bytes = body
            .strip_prefix(&crate::MAGIC)
            .ok_or(DecodeError::BadMagic)?;
        let env = envelope_fields(bytes)?;
        if !env.content_encoding.is_empty() {
            return Err(DecodeError::UnsupportedContentEncoding(
                env.content_encoding.into_owned(),
            ));
        }
        if env.api_version.is_empty() || env.kind.is_empty() {
            return Err(DecodeError::MissingTypeMeta);
        }
        let mut object = if env.content_type.is_empty() || crate::is_protobuf(&env.content_type) {
            let index = crate::lookup(&env.api_version, &env.kind).ok_or_else(|| {
                DecodeError::UnknownKind {
                    api_version: env.api_version.to_string(),
                    kind: env.kind.to_string(),
                }
            })?;
            self.message(index, env.raw)?
        } else if is_json(&env.content_type) {
            match serde_json::from_slice(env.raw) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(DecodeError::BadEnvelope("raw JSON is not an object".into())),
                Err(e) => return Err(DecodeError::BadEnvelope(format!("raw is not JSON: {e}"))),
            }
        } else {
            return Err(DecodeError::UnsupportedContentType(
                env.content_type.into_owned(),
            ));
        };
        object.insert(
            "apiVersion".to_owned(),
            Value::String(env.api_version.into_owned()),
        );
        object.insert("kind".to_owned(), Value::String(env.kind.into_owned()));
        Ok(Value::Object(object))
    }
}

/// Whether an envelope's `contentType` says `raw` is JSON.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}
