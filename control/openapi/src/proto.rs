//! The Swagger 2.0 document in protocol-buffer form.
//!
//! kubectl and client-go never ask for `/openapi/v2` as JSON: they send
//! `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and decode the body as
//! the `openapi.v2.Document` message of the gnostic project. This module writes that message
//! from the JSON document, covering what the documents of this crate contain (paths with their
//! operations, parameters and responses, schemas with their validation keywords and vendor
//! extensions, security definitions). Values that the message keeps as `Any` (vendor
//! extensions, `default`, `example`, `enum`) are stored in its `yaml` field as JSON text, which
//! is valid YAML.

use serde_json::{Map, Value};

/// The media type clients ask for.
pub const MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

fn varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn key(buf: &mut Vec<u8>, field: u32, wire: u32) {
    varint(buf, u64::from((field << 3) | wire));
}

fn bytes(buf: &mut Vec<u8>, field: u32, data: &[u8]) {
    key(buf, field, LEN);
    varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// A nested message, written by `write` into its own buffer to learn its length.
fn message(buf: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    write(&mut inner);
    bytes(buf, field, &inner);
}

fn string(buf: &mut Vec<u8>, field: u32, value: Option<&Value>) {
    if let Some(text) = value.and_then(Value::as_str)
        && !text.is_empty()
    {
        bytes(buf, field, text.as_bytes());
    }
}

fn strings(buf: &mut Vec<u8>, field: u32, value: Option<&Value>) {
    for text in value.and_then(Value::as_array).into_iter().flatten() {
        if let Some(text) = text.as_str() {
            bytes(buf, field, text.as_bytes());
        }
    }
}

fn boolean(buf: &mut Vec<u8>, field: u32, value: Option<&Value>) {
    if value.and_then(Value::as_bool) == Some(true) {
        key(buf, field, VARINT);
        buf.push(1);
    }
}

fn double(buf: &mut Vec<u8>, field: u32, value: Option<&Value>) {
    if let Some(number) = value.and_then(Value::as_f64) {
        key(buf, field, FIXED64);
        buf.extend_from_slice(&number.to_le_bytes());
    }
}

fn int64(buf: &mut Vec<u8>, field: u32, value: Option<&Value>) {
    if let Some(number) = value.and_then(Value::as_i64) {
        key(buf, field, VARINT);
        // Two's complement, as protobuf writes negative int64 values.
        varint(buf, number as u64);
    }
}

/// An `Any` message holding `value` as YAML (JSON text).
fn any(buf: &mut Vec<u8>, field: u32, value: &Value) {
    let text = serde_json::to_string(value).unwrap_or_default();
    message(buf, field, |m| bytes(m, 2, text.as_bytes()));
}

/// The `x-` keys of `object`, as repeated `NamedAny` in `field`.
fn vendor_extensions(buf: &mut Vec<u8>, field: u32, object: &Map<String, Value>) {
    for (name, value) in object.iter().filter(|(k, _)| k.starts_with("x-")) {
        message(buf, field, |m| {
            bytes(m, 1, name.as_bytes());
            any(m, 2, value);
        });
    }
}

fn entries(value: Option<&Value>) -> impl Iterator<Item = (&String, &Value)> {
    value.and_then(Value::as_object).into_iter().flatten()
}

/// Encodes a Swagger 2.0 document as an `openapi.v2.Document` message.
pub fn document(doc: &Value) -> Vec<u8> {
    let mut buf = Vec::new();
    string(&mut buf, 1, doc.get("swagger"));
    if let Some(info) = doc.get("info") {
        message(&mut buf, 2, |m| {
            string(m, 1, info.get("title"));
            string(m, 2, info.get("version"));
            string(m, 3, info.get("description"));
        });
    }
    string(&mut buf, 3, doc.get("host"));
    string(&mut buf, 4, doc.get("basePath"));
    strings(&mut buf, 5, doc.get("schemes"));
    strings(&mut buf, 6, doc.get("consumes"));
    strings(&mut buf, 7, doc.get("produces"));
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        message(&mut buf, 8, |m| {
            vendor_extensions(m, 1, paths);
            for (name, item) in paths.iter().filter(|(k, _)| k.starts_with('/')) {
                message(m, 2, |named| {
                    bytes(named, 1, name.as_bytes());
                    message(named, 2, |p| path_item(p, item));
                });
            }
        });
    }
    if let Some(definitions) = doc.get("definitions") {
        message(&mut buf, 9, |m| {
            for (name, schema) in entries(Some(definitions)) {
                message(m, 1, |named| {
                    bytes(named, 1, name.as_bytes());
                    message(named, 2, |s| self::schema(s, schema));
                });
            }
        });
    }
    for requirement in doc
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        message(&mut buf, 12, |m| security_requirement(m, requirement));
    }
    if let Some(definitions) = doc.get("securityDefinitions") {
        message(&mut buf, 13, |m| {
            for (name, scheme) in entries(Some(definitions)) {
                message(m, 1, |named| {
                    bytes(named, 1, name.as_bytes());
                    message(named, 2, |item| security_scheme(item, scheme));
                });
            }
        });
    }
    if let Some(object) = doc.as_object() {
        vendor_extensions(&mut buf, 16, object);
    }
    buf
}

fn security_requirement(buf: &mut Vec<u8>, requirement: &Value) {
    for (name, scopes) in entries(Some(requirement)) {
        message(buf, 1, |named| {
            bytes(named, 1, name.as_bytes());
            message(named, 2, |array| strings(array, 1, Some(scopes)));
        });
    }
}

fn security_scheme(buf: &mut Vec<u8>, scheme: &Value) {
    match scheme.get("type").and_then(Value::as_str) {
        Some("apiKey") => message(buf, 2, |m| {
            string(m, 1, scheme.get("type"));
            string(m, 2, scheme.get("name"));
            string(m, 3, scheme.get("in"));
            string(m, 4, scheme.get("description"));
        }),
        Some("basic") => message(buf, 1, |m| {
            string(m, 1, scheme.get("type"));
            string(m, 2, scheme.get("description"));
        }),
        // OAuth2 flows are never published by this crate.
        _ => {}
    }
}

fn path_item(buf: &mut Vec<u8>, item: &Value) {
    string(buf, 1, item.get("$ref"));
    for (method, field) in [
        ("get", 2),
        ("put", 3),
        ("post", 4),
        ("delete", 5),
        ("options", 6),
        ("head", 7),
        ("patch", 8),
    ] {
        if let Some(op) = item.get(method) {
            message(buf, field, |m| operation(m, op));
        }
    }
    for param in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        message(buf, 9, |m| parameters_item(m, param));
    }
    if let Some(object) = item.as_object() {
        vendor_extensions(buf, 10, object);
    }
}

fn operation(buf: &mut Vec<u8>, op: &Value) {
    strings(buf, 1, op.get("tags"));
    string(buf, 2, op.get("summary"));
    string(buf, 3, op.get("description"));
    string(buf, 5, op.get("operationId"));
    strings(buf, 6, op.get("produces"));
    strings(buf, 7, op.get("consumes"));
    for param in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        message(buf, 8, |m| parameters_item(m, param));
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        message(buf, 9, |m| {
            for (code, response) in responses.iter().filter(|(k, _)| !k.starts_with("x-")) {
                message(m, 1, |named| {
                    bytes(named, 1, code.as_bytes());
                    message(named, 2, |value| response_value(value, response));
                });
            }
            vendor_extensions(m, 2, responses);
        });
    }
    strings(buf, 10, op.get("schemes"));
    boolean(buf, 11, op.get("deprecated"));
    for requirement in op
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        message(buf, 12, |m| security_requirement(m, requirement));
    }
    if let Some(object) = op.as_object() {
        vendor_extensions(buf, 13, object);
    }
}

fn response_value(buf: &mut Vec<u8>, response: &Value) {
    if response.get("$ref").is_some() {
        message(buf, 2, |m| {
            string(m, 1, response.get("$ref"));
            string(m, 2, response.get("description"));
        });
        return;
    }
    message(buf, 1, |m| {
        string(m, 1, response.get("description"));
        if let Some(schema) = response.get("schema") {
            message(m, 2, |item| message(item, 1, |s| self::schema(s, schema)));
        }
        if let Some(object) = response.as_object() {
            vendor_extensions(m, 5, object);
        }
    });
}

fn parameters_item(buf: &mut Vec<u8>, param: &Value) {
    if param.get("$ref").is_some() {
        message(buf, 2, |m| {
            string(m, 1, param.get("$ref"));
            string(m, 2, param.get("description"));
        });
        return;
    }
    message(buf, 1, |parameter| {
        match param.get("in").and_then(Value::as_str) {
            Some("body") => message(parameter, 1, |m| {
                string(m, 1, param.get("description"));
                string(m, 2, param.get("name"));
                string(m, 3, param.get("in"));
                boolean(m, 4, param.get("required"));
                if let Some(schema) = param.get("schema") {
                    message(m, 5, |s| self::schema(s, schema));
                }
                if let Some(object) = param.as_object() {
                    vendor_extensions(m, 6, object);
                }
            }),
            location => message(parameter, 2, |non_body| {
                // Query and form parameters have `allowEmptyValue` at 5, shifting what follows.
                let (field, shifted) = match location {
                    Some("header") => (1, false),
                    Some("formData") => (2, true),
                    Some("query") => (3, true),
                    _ => (4, false),
                };
                message(non_body, field, |m| non_body_parameter(m, param, shifted));
            }),
        }
    });
}

fn non_body_parameter(buf: &mut Vec<u8>, param: &Value, shifted: bool) {
    boolean(buf, 1, param.get("required"));
    string(buf, 2, param.get("in"));
    string(buf, 3, param.get("description"));
    string(buf, 4, param.get("name"));
    let at = |n: u32| if shifted { n + 1 } else { n };
    if shifted {
        boolean(buf, 5, param.get("allowEmptyValue"));
    }
    string(buf, at(5), param.get("type"));
    string(buf, at(6), param.get("format"));
    string(buf, at(8), param.get("collectionFormat"));
    if let Some(default) = param.get("default") {
        any(buf, at(9), default);
    }
    double(buf, at(10), param.get("maximum"));
    boolean(buf, at(11), param.get("exclusiveMaximum"));
    double(buf, at(12), param.get("minimum"));
    boolean(buf, at(13), param.get("exclusiveMinimum"));
    int64(buf, at(14), param.get("maxLength"));
    int64(buf, at(15), param.get("minLength"));
    string(buf, at(16), param.get("pattern"));
    int64(buf, at(17), param.get("maxItems"));
    int64(buf, at(18), param.get("minItems"));
    boolean(buf, at(19), param.get("uniqueItems"));
    for value in param
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        any(buf, at(20), value);
    }
    double(buf, at(21), param.get("multipleOf"));
    if let Some(object) = param.as_object() {
        vendor_extensions(buf, at(22), object);
    }
}

fn schema(buf: &mut Vec<u8>, schema: &Value) {
    let Some(object) = schema.as_object() else {
        return;
    };
    let get = |k: &str| object.get(k);
    string(buf, 1, get("$ref"));
    string(buf, 2, get("format"));
    string(buf, 3, get("title"));
    string(buf, 4, get("description"));
    if let Some(default) = get("default") {
        any(buf, 5, default);
    }
    double(buf, 6, get("multipleOf"));
    double(buf, 7, get("maximum"));
    boolean(buf, 8, get("exclusiveMaximum"));
    double(buf, 9, get("minimum"));
    boolean(buf, 10, get("exclusiveMinimum"));
    int64(buf, 11, get("maxLength"));
    int64(buf, 12, get("minLength"));
    string(buf, 13, get("pattern"));
    int64(buf, 14, get("maxItems"));
    int64(buf, 15, get("minItems"));
    boolean(buf, 16, get("uniqueItems"));
    int64(buf, 17, get("maxProperties"));
    int64(buf, 18, get("minProperties"));
    strings(buf, 19, get("required"));
    for value in get("enum").and_then(Value::as_array).into_iter().flatten() {
        any(buf, 20, value);
    }
    match get("additionalProperties") {
        Some(Value::Bool(allowed)) => message(buf, 21, |m| {
            // A oneof member is written even when it holds the default value.
            key(m, 2, VARINT);
            m.push(u8::from(*allowed));
        }),
        Some(sub) => message(buf, 21, |m| message(m, 1, |s| self::schema(s, sub))),
        None => {}
    }
    match get("type") {
        Some(Value::String(ty)) => message(buf, 22, |m| bytes(m, 1, ty.as_bytes())),
        Some(types @ Value::Array(_)) => message(buf, 22, |m| strings(m, 1, Some(types))),
        _ => {}
    }
    match get("items") {
        Some(Value::Array(list)) => message(buf, 23, |m| {
            for sub in list {
                message(m, 1, |s| self::schema(s, sub));
            }
        }),
        Some(sub) => message(buf, 23, |m| message(m, 1, |s| self::schema(s, sub))),
        None => {}
    }
    for sub in get("allOf").and_then(Value::as_array).into_iter().flatten() {
        message(buf, 24, |s| self::schema(s, sub));
    }
    if let Some(properties) = get("properties").and_then(Value::as_object) {
        message(buf, 25, |m| {
            for (name, sub) in properties {
                message(m, 1, |named| {
                    bytes(named, 1, name.as_bytes());
                    message(named, 2, |s| self::schema(s, sub));
                });
            }
        });
    }
    string(buf, 26, get("discriminator"));
    boolean(buf, 27, get("readOnly"));
    if let Some(example) = get("example") {
        any(buf, 30, example);
    }
    vendor_extensions(buf, 31, object);
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    /// One decoded field: number and either a varint, 8 fixed bytes or a length-delimited run.
    #[derive(Debug, PartialEq)]
    pub enum Field<'a> {
        Varint(u32, u64),
        Fixed(u32, [u8; 8]),
        Bytes(u32, &'a [u8]),
    }

    fn read_varint(data: &[u8], at: &mut usize) -> u64 {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = data[*at];
            *at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return value;
            }
            shift += 7;
        }
    }

    /// Splits a message into its fields; panics on malformed input.
    pub fn fields(data: &[u8]) -> Vec<Field<'_>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let key = read_varint(data, &mut at);
            let field = u32::try_from(key >> 3).expect("field number");
            match (key & 7) as u32 {
                VARINT => out.push(Field::Varint(field, read_varint(data, &mut at))),
                FIXED64 => {
                    let bytes: [u8; 8] = data[at..at + 8].try_into().expect("8 bytes");
                    at += 8;
                    out.push(Field::Fixed(field, bytes));
                }
                LEN => {
                    let len = usize::try_from(read_varint(data, &mut at)).expect("length");
                    out.push(Field::Bytes(field, &data[at..at + len]));
                    at += len;
                }
                wire => panic!("unexpected wire type {wire}"),
            }
        }
        assert_eq!(at, data.len(), "message overruns its length");
        out
    }

    /// The length-delimited values of `field` in `data`.
    pub fn all(data: &[u8], field: u32) -> Vec<&[u8]> {
        fields(data)
            .into_iter()
            .filter_map(|f| match f {
                Field::Bytes(n, bytes) if n == field => Some(bytes),
                _ => None,
            })
            .collect()
    }

    /// The only length-delimited value of `field` in `data`.
    pub fn one(data: &[u8], field: u32) -> &[u8] {
        let found = all(data, field);
        assert_eq!(found.len(), 1, "field {field}");
        found[0]
    }

    /// The `value` of the `Named*` entry called `name` among the `field` entries of `data`.
    pub fn named<'a>(data: &'a [u8], field: u32, name: &str) -> &'a [u8] {
        all(data, field)
            .into_iter()
            .find(|entry| one(entry, 1) == name.as_bytes())
            .map(|entry| one(entry, 2))
            .unwrap_or_else(|| panic!("no entry {name}"))
    }

    #[test]
    fn varints_and_fields() {
        let mut buf = Vec::new();
        varint(&mut buf, 300);
        assert_eq!(buf, [0xac, 0x02]);
        let mut buf = Vec::new();
        int64(&mut buf, 3, Some(&json!(-1)));
        assert_eq!(buf.len(), 11);
        assert_eq!(fields(&buf), [Field::Varint(3, u64::MAX)]);
    }

    #[test]
    fn schemas_encode_their_keywords() {
        let encoded = {
            let mut buf = Vec::new();
            schema(
                &mut buf,
                &json!({
                    "description": "d",
                    "type": "object",
                    "required": ["a"],
                    "properties": { "a": { "$ref": "#/definitions/A", "description": "the a" } },
                    "additionalProperties": false,
                    "minimum": 1.5,
                    "x-kubernetes-group-version-kind": [{ "group": "", "kind": "K", "version": "v1" }],
                }),
            );
            buf
        };
        assert_eq!(one(&encoded, 4), b"d");
        assert_eq!(one(one(&encoded, 22), 1), b"object");
        assert_eq!(one(&encoded, 19), b"a");
        let a = named(one(&encoded, 25), 1, "a");
        assert_eq!(one(a, 1), b"#/definitions/A");
        assert_eq!(one(a, 4), b"the a");
        assert_eq!(fields(one(&encoded, 21)), [Field::Varint(2, 0)]);
        assert!(fields(&encoded).contains(&Field::Fixed(9, 1.5f64.to_le_bytes())));
        let extension = named(&encoded, 31, "x-kubernetes-group-version-kind");
        let yaml: Value = serde_json::from_slice(one(extension, 2)).expect("JSON");
        assert_eq!(yaml, json!([{ "group": "", "kind": "K", "version": "v1" }]));
    }
}
