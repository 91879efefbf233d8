//! Turning schemars output into the schema dialects of OpenAPI 3.0 and Swagger 2.0.
//!
//! schemars emits JSON Schema (draft 2020-12 unless told otherwise): nested `$defs`, references
//! into them, `type` arrays with `"null"`, `const`, boolean schemas and so on. The generator in
//! this crate asks for `#/components/schemas/` references, and k8s-openapi's schemas are already
//! close to what Kubernetes publishes, but any other `JsonSchema` implementation may produce the
//! full dialect, so everything is first brought into one *canonical* form, which is OpenAPI 3.0:
//!
//! - references are `#/components/schemas/<name>`; nested `$defs`/`definitions` are hoisted;
//! - a reference with sibling keywords (typically a field's `description`) is wrapped as
//!   `allOf: [{$ref}]` next to the siblings, since OpenAPI 3.0 ignores siblings of `$ref`
//!   (this is also how Kubernetes publishes its v3 documents);
//! - `type: [T, "null"]` becomes `type: T, nullable: true`; `const` becomes a one-value `enum`;
//!   `examples` becomes `example`; boolean schemas become objects; numeric exclusive bounds
//!   become the boolean form.
//!
//! [`to_v2`] then derives the Swagger 2.0 form from the canonical one: `#/definitions/` references,
//! siblings back beside `$ref` (as Kubernetes' v2 document has them), and keywords Swagger 2.0
//! lacks (`nullable`, `oneOf`, `anyOf`, `not`) removed.

use std::collections::{BTreeSet, VecDeque};

use serde_json::{Map, Value};

/// Where the canonical (OpenAPI 3.0) form keeps its named schemas.
pub const V3_PREFIX: &str = "#/components/schemas/";
/// Where Swagger 2.0 keeps them.
pub const V2_PREFIX: &str = "#/definitions/";

/// Reference prefixes that name a definition, in any dialect schemars may produce.
const REF_PREFIXES: &[&str] = &[V3_PREFIX, V2_PREFIX, "#/$defs/"];

/// Keywords whose value is a map from names to subschemas.
const SCHEMA_MAPS: &[&str] = &["properties"];
/// Keywords whose value is one subschema.
const SCHEMA_ONE: &[&str] = &["additionalProperties", "items", "not"];
/// Keywords whose value is a list of subschemas.
const SCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf"];
/// Keywords of JSON Schema that neither OpenAPI 3.0 nor Swagger 2.0 has and that carry no
/// meaning worth translating.
const DROPPED: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$anchor",
    "$dynamicAnchor",
    "$dynamicRef",
    "$vocabulary",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
    "dependentRequired",
    "dependentSchemas",
    "propertyNames",
    "contains",
    "minContains",
    "maxContains",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "additionalItems",
    "patternProperties",
];

/// The definition name a reference points at, if it points at a named schema.
pub fn ref_name(reference: &str) -> Option<String> {
    REF_PREFIXES
        .iter()
        .find_map(|prefix| reference.strip_prefix(prefix))
        .map(decode_pointer_token)
}

/// Decodes one JSON-pointer token of a URI fragment: percent-escapes, then `~1` and `~0`.
fn decode_pointer_token(token: &str) -> String {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = token
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out)
        .replace("~1", "/")
        .replace("~0", "~")
}

/// Encodes a definition name as a JSON-pointer token.
pub fn encode_pointer_token(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Brings one schema (a definition or an inline schema) into canonical form. Nested
/// definitions found on the way are moved into `hoisted` (already canonical).
pub fn canonicalize(schema: &mut Value, hoisted: &mut Map<String, Value>) {
    match schema {
        Value::Bool(true) => *schema = Value::Object(Map::new()),
        Value::Bool(false) => *schema = serde_json::json!({ "not": {} }),
        Value::Object(object) => canonicalize_object(object, hoisted),
        _ => {}
    }
}

fn canonicalize_object(object: &mut Map<String, Value>, hoisted: &mut Map<String, Value>) {
    for key in ["$defs", "definitions"] {
        if let Some(Value::Object(defs)) = object.remove(key) {
            for (name, mut def) in defs {
                canonicalize(&mut def, hoisted);
                hoisted.entry(name).or_insert(def);
            }
        }
    }
    // Translate what has an equivalent before dropping the rest.
    if let Some(unevaluated) = object.remove("unevaluatedProperties")
        && !object.contains_key("additionalProperties")
    {
        object.insert("additionalProperties".into(), unevaluated);
    }
    if let Some(Value::Array(prefix)) = object.remove("prefixItems")
        && !object.contains_key("items")
    {
        // OpenAPI has no tuples: accept any item when positions had distinct schemas.
        let items = match <[Value; 1]>::try_from(prefix) {
            Ok([only]) => only,
            Err(_) => Value::Object(Map::new()),
        };
        object.insert("items".into(), items);
    }
    for key in DROPPED {
        object.remove(*key);
    }
    if let Some(value) = object.remove("const") {
        object.insert("enum".into(), Value::Array(vec![value]));
    }
    if let Some(examples) = object.remove("examples")
        && !object.contains_key("example")
        && let Some(first) = examples.as_array().and_then(|list| list.first())
    {
        object.insert("example".into(), first.clone());
    }
    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(limit) = object.get(exclusive).filter(|v| v.is_number()).cloned() {
            object.insert(bound.into(), limit);
            object.insert(exclusive.into(), Value::Bool(true));
        }
    }
    canonicalize_type(object);

    for key in SCHEMA_MAPS {
        if let Some(Value::Object(map)) = object.get_mut(*key) {
            for sub in map.values_mut() {
                canonicalize(sub, hoisted);
            }
        }
    }
    if let Some(Value::Array(tuple)) = object.get_mut("items") {
        // Draft-4 tuple form: same treatment as prefixItems.
        let items = match <[Value; 1]>::try_from(std::mem::take(tuple)) {
            Ok([only]) => only,
            Err(_) => Value::Object(Map::new()),
        };
        object.insert("items".into(), items);
    }
    for key in SCHEMA_ONE {
        match object.get_mut(*key) {
            // `additionalProperties: false` is valid in both dialects and means something.
            Some(Value::Bool(_)) if *key == "additionalProperties" => {}
            Some(sub) => canonicalize(sub, hoisted),
            None => {}
        }
    }
    for key in SCHEMA_LISTS {
        if let Some(Value::Array(list)) = object.get_mut(*key) {
            for sub in list.iter_mut() {
                canonicalize(sub, hoisted);
            }
        }
    }
    canonicalize_nullable_union(object);
    canonicalize_ref(object);
}

/// `type: [T, "null"]` → `type: T, nullable: true`; several non-null types cannot be said in
/// OpenAPI 3.0's `type`, so they become a `oneOf` of single types.
fn canonicalize_type(object: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = object.get("type") else {
        return;
    };
    let mut nullable = false;
    let mut kept: Vec<Value> = Vec::new();
    for ty in types {
        if ty.as_str() == Some("null") {
            nullable = true;
        } else {
            kept.push(ty.clone());
        }
    }
    object.remove("type");
    if nullable {
        object.insert("nullable".into(), Value::Bool(true));
    }
    match <[Value; 1]>::try_from(kept) {
        Ok([only]) => {
            object.insert("type".into(), only);
        }
        Err(kept) if kept.is_empty() => {}
        Err(kept) => {
            let choices = kept
                .into_iter()
                .map(|ty| serde_json::json!({ "type": ty }))
                .collect();
            object.insert("oneOf".into(), Value::Array(choices));
        }
    }
}

/// `anyOf`/`oneOf` of a schema and `{type: null}` (schemars' form for `Option<T>` of a
/// referenced `T`) → the schema, nullable.
fn canonicalize_nullable_union(object: &mut Map<String, Value>) {
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(list)) = object.get_mut(key) else {
            continue;
        };
        let before = list.len();
        list.retain(|sub| sub.get("type").and_then(Value::as_str) != Some("null"));
        if list.len() == before {
            continue;
        }
        object.insert("nullable".into(), Value::Bool(true));
        let Some(Value::Array(list)) = object.get_mut(key) else {
            continue;
        };
        if list.len() == 1 {
            let only = list.remove(0);
            object.remove(key);
            // A single reference is expressed the canonical way (allOf); anything else is merged.
            match only {
                Value::Object(only) if only.contains_key("$ref") => {
                    object.insert("allOf".into(), Value::Array(vec![Value::Object(only)]));
                }
                Value::Object(only) => {
                    for (k, v) in only {
                        object.entry(k).or_insert(v);
                    }
                }
                _ => {}
            }
        } else if list.is_empty() {
            object.remove(key);
        }
    }
}

/// Rewrites a `$ref` to the canonical prefix and wraps it into `allOf` when it has siblings.
fn canonicalize_ref(object: &mut Map<String, Value>) {
    let Some(Value::String(reference)) = object.get("$ref") else {
        return;
    };
    let reference = match ref_name(reference) {
        Some(name) => format!("{V3_PREFIX}{}", encode_pointer_token(&name)),
        None => reference.clone(),
    };
    if object.len() == 1 {
        object.insert("$ref".into(), Value::String(reference));
        return;
    }
    object.remove("$ref");
    let target = serde_json::json!({ "$ref": reference });
    match object.get_mut("allOf") {
        Some(Value::Array(list)) => list.insert(0, target),
        _ => {
            object.insert("allOf".into(), Value::Array(vec![target]));
        }
    }
}

/// The Swagger 2.0 form of a canonical schema.
pub fn to_v2(schema: &Value) -> Value {
    let mut schema = schema.clone();
    v2_in_place(&mut schema);
    schema
}

fn v2_in_place(schema: &mut Value) {
    let Value::Object(object) = schema else {
        return;
    };
    object.remove("nullable");
    object.remove("not");
    // Swagger 2.0 has no unions; an untyped schema (any value) is the honest approximation.
    object.remove("oneOf");
    object.remove("anyOf");
    if let Some(Value::String(reference)) = object.get_mut("$ref")
        && let Some(rest) = reference.strip_prefix(V3_PREFIX)
    {
        *reference = format!("{V2_PREFIX}{rest}");
    }
    for key in SCHEMA_MAPS {
        if let Some(Value::Object(map)) = object.get_mut(*key) {
            map.values_mut().for_each(v2_in_place);
        }
    }
    for key in ["additionalProperties", "items"] {
        if let Some(sub) = object.get_mut(key) {
            v2_in_place(sub);
        }
    }
    if let Some(Value::Array(list)) = object.get_mut("allOf") {
        list.iter_mut().for_each(v2_in_place);
        // `allOf: [{$ref}]` beside siblings → `$ref` beside siblings, as Kubernetes' v2 has it.
        if list.len() == 1 && list[0].get("$ref").is_some() && !object.contains_key("$ref") {
            let Some(Value::Array(mut list)) = object.remove("allOf") else {
                return;
            };
            if let Some(Value::Object(target)) = list.pop() {
                object.extend(target);
            }
        }
    }
}

/// Every definition name referenced from `value` (any `$ref` anywhere in it).
pub fn referenced_names(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(object) => {
            for (key, sub) in object {
                match (key.as_str(), sub) {
                    ("$ref", Value::String(reference)) => {
                        if let Some(name) = ref_name(reference) {
                            out.insert(name);
                        }
                    }
                    _ => referenced_names(sub, out),
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|sub| referenced_names(sub, out)),
        _ => {}
    }
}

/// The named schemas `roots` need, transitively, in `definitions`.
pub fn closure(roots: BTreeSet<String>, definitions: &Map<String, Value>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<String> = roots.into_iter().collect();
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = definitions.get(&name) {
            let mut next = BTreeSet::new();
            referenced_names(schema, &mut next);
            queue.extend(next.into_iter().filter(|n| !seen.contains(n)));
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn canon(mut value: Value) -> (Value, Map<String, Value>) {
        let mut hoisted = Map::new();
        canonicalize(&mut value, &mut hoisted);
        (value, hoisted)
    }

    #[test]
    fn draft_2020_12_output_becomes_openapi_3_0() {
        let (schema, hoisted) = canon(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "a": { "type": ["string", "null"], "examples": ["x"] },
                "b": { "$ref": "#/$defs/B", "description": "the b" },
                "c": { "anyOf": [{ "$ref": "#/$defs/B" }, { "type": "null" }] },
                "d": { "const": 3, "exclusiveMinimum": 1 },
                "e": true,
                "const": { "type": "string" },
            },
            "$defs": { "B": { "type": "integer", "minimum": 0 } },
        }));
        assert_eq!(
            schema,
            json!({
                "type": "object",
                "properties": {
                    "a": { "type": "string", "nullable": true, "example": "x" },
                    "b": {
                        "allOf": [{ "$ref": "#/components/schemas/B" }],
                        "description": "the b",
                    },
                    "c": { "allOf": [{ "$ref": "#/components/schemas/B" }], "nullable": true },
                    "d": { "enum": [3], "minimum": 1, "exclusiveMinimum": true },
                    "e": {},
                    "const": { "type": "string" },
                },
            })
        );
        assert_eq!(
            Value::Object(hoisted),
            json!({ "B": { "type": "integer", "minimum": 0 } })
        );
    }

    #[test]
    fn v2_puts_siblings_back_beside_the_ref() {
        let (schema, _) = canon(json!({
            "properties": {
                "b": { "$ref": "#/components/schemas/B", "description": "the b" },
                "c": { "$ref": "#/components/schemas/B" },
                "l": { "type": "array", "items": { "$ref": "#/components/schemas/B" } },
            },
        }));
        assert_eq!(
            to_v2(&schema),
            json!({
                "properties": {
                    "b": { "$ref": "#/definitions/B", "description": "the b" },
                    "c": { "$ref": "#/definitions/B" },
                    "l": { "type": "array", "items": { "$ref": "#/definitions/B" } },
                },
            })
        );
    }

    #[test]
    fn ref_names_are_decoded() {
        assert_eq!(ref_name("#/$defs/a~1b%3Cc%3E").as_deref(), Some("a/b<c>"));
        assert_eq!(
            ref_name("#/components/schemas/io.k8s.api.apps.v1.Deployment").as_deref(),
            Some("io.k8s.api.apps.v1.Deployment")
        );
        assert_eq!(ref_name("#/elsewhere/x"), None);
    }
}
