//! Paths as Kubernetes prints them, `FieldsV1` bytes and set algebra.

use serde_json::json;

use crate::managed_fields::fieldpath::{FieldsV1Error, Path, PathElement, Set};

fn f(name: &str) -> PathElement {
    PathElement::field(name)
}

fn name_key(name: &str) -> PathElement {
    PathElement::key([("name", json!(name))])
}

fn port_key(port: i64, protocol: &str) -> PathElement {
    // Given out of order: keys sort by name.
    PathElement::key([
        ("protocol", json!(protocol)),
        ("containerPort", json!(port)),
    ])
}

fn p(elements: &[PathElement]) -> Path {
    Path(elements.to_vec())
}

fn set(paths: &[Path]) -> Set {
    Set::from_paths(paths)
}

/// A set from `FieldsV1` text (for readable expectations).
fn fields(text: &str) -> Set {
    Set::from_json(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn paths_print_as_kubernetes_prints_them() {
    let cases = [
        (p(&[f("spec"), f("replicas")]), ".spec.replicas"),
        (
            p(&[f("spec"), f("containers"), name_key("c"), f("image")]),
            r#".spec.containers[name="c"].image"#,
        ),
        (
            p(&[
                f("metadata"),
                f("finalizers"),
                PathElement::Value(json!("x")),
            ]),
            r#".metadata.finalizers[="x"]"#,
        ),
        (
            p(&[f("ports"), port_key(80, "TCP")]),
            r#".ports[containerPort=80,protocol="TCP"]"#,
        ),
        (p(&[f("args"), PathElement::Index(0)]), ".args[0]"),
        (p(&[f("v"), PathElement::Value(json!(1.5))]), ".v[=1.5]"),
        (p(&[f("v"), PathElement::Value(json!(true))]), ".v[=true]"),
        (
            p(&[f("v"), PathElement::Value(json!("quo\"te\n"))]),
            r#".v[="quo\"te\n"]"#,
        ),
        (Path::root(), ""),
    ];
    for (path, text) in cases {
        assert_eq!(path.to_string(), text);
    }
}

#[test]
fn fields_v1_bytes_are_kubernetes_bytes() {
    let cases: Vec<(&str, Set, &str)> = vec![
        (
            "leaves under struct fields",
            set(&[
                p(&[f("metadata"), f("labels"), f("app")]),
                p(&[f("spec"), f("replicas")]),
            ]),
            r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{}}}"#,
        ),
        (
            "a member that is also a parent writes \".\" first",
            set(&[p(&[f("spec")]), p(&[f("spec"), f("replicas")])]),
            r#"{"f:spec":{".":{},"f:replicas":{}}}"#,
        ),
        (
            "associative list items by key",
            set(&[
                p(&[f("containers"), name_key("c")]),
                p(&[f("containers"), name_key("c"), f("image")]),
                p(&[f("containers"), name_key("c"), f("name")]),
            ]),
            r#"{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:image":{},"f:name":{}}}}"#,
        ),
        (
            "multi-field keys sorted by name, ints compared as numbers",
            set(&[
                p(&[f("ports"), port_key(10, "TCP")]),
                p(&[f("ports"), port_key(9, "UDP")]),
            ]),
            r#"{"f:ports":{"k:{\"containerPort\":9,\"protocol\":\"UDP\"}":{},"k:{\"containerPort\":10,\"protocol\":\"TCP\"}":{}}}"#,
        ),
        (
            "set values",
            set(&[p(&[f("finalizers"), PathElement::Value(json!("x"))])]),
            r#"{"f:finalizers":{"v:\"x\"":{}}}"#,
        ),
        (
            "indices",
            set(&[p(&[f("args"), PathElement::Index(0)])]),
            r#"{"f:args":{"i:0":{}}}"#,
        ),
        (
            "fields before keys before values before indices",
            set(&[
                p(&[PathElement::Index(1)]),
                p(&[PathElement::Value(json!("v"))]),
                p(&[name_key("k")]),
                p(&[f("z")]),
            ]),
            r#"{"f:z":{},"k:{\"name\":\"k\"}":{},"v:\"v\"":{},"i:1":{}}"#,
        ),
        (
            "HTML characters escaped as Go escapes them",
            set(&[
                p(&[f("a<b&c>")]),
                p(&[f("l"), PathElement::Value(json!("<x>"))]),
            ]),
            r#"{"f:a\u003cb\u0026c\u003e":{},"f:l":{"v:\"\\u003cx\\u003e\"":{}}}"#,
        ),
        ("the empty set", Set::new(), "{}"),
    ];
    for (name, set, bytes) in cases {
        assert_eq!(set.to_json(), bytes, "{name}");
        let decoded = Set::from_json(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded, set, "{name}: round trip");
        assert_eq!(
            Set::from_value(&set.to_value()).unwrap(),
            set,
            "{name}: as a value"
        );
        let parsed: serde_json::Value = serde_json::from_str(bytes).unwrap();
        assert_eq!(
            set.to_value(),
            parsed,
            "{name}: the value is the bytes' value"
        );
    }
}

#[test]
fn fields_v1_decoding_is_lenient_where_kubernetes_is() {
    // Keys in any order, a top-level ".", null children and unknown element types.
    let decoded = fields(r#"{"z:future":{},".":{},"f:b":null,"f:a":{"f:c":{},".":{}}}"#);
    assert_eq!(
        decoded,
        set(&[p(&[f("a")]), p(&[f("a"), f("c")]), p(&[f("b")])])
    );
    assert_eq!(
        Set::from_value(&serde_json::Value::Null).unwrap(),
        Set::new()
    );
}

#[test]
fn malformed_fields_v1_names_what_is_wrong() {
    let cases = [
        ("[1]", "FieldsV1 at \"\": expected an object, got an array"),
        (
            r#"{"f:a":1}"#,
            "FieldsV1 at \"f:a\": expected an object, got a number",
        ),
        (
            r#"{"f:a":{"f:b":"x"}}"#,
            "FieldsV1 at \"f:b\": expected an object, got a string",
        ),
        (
            r#"{"x":{}}"#,
            "FieldsV1 key \"x\": key must be 2 characters long",
        ),
        (r#"{"fa":{}}"#, "FieldsV1 key \"fa\": missing colon"),
        (
            r#"{"k:[1]":{}}"#,
            "FieldsV1 key \"k:[1]\": the key is not a JSON object",
        ),
        (
            r#"{"i:one":{}}"#,
            "FieldsV1 key \"i:one\": \"one\" is not a list index",
        ),
    ];
    for (text, message) in cases {
        let err = Set::from_json(text).unwrap_err();
        assert_eq!(err.to_string(), message, "{text}");
    }
    assert!(matches!(
        Set::from_json(r#"{"v:{":{}}"#),
        Err(FieldsV1Error::Key { .. })
    ));
    assert!(matches!(Set::from_json("{"), Err(FieldsV1Error::Json(_))));
}

#[test]
fn set_algebra() {
    let ab = fields(r#"{"f:a":{},"f:b":{"f:x":{},"f:y":{}}}"#);
    let bc = fields(r#"{"f:b":{"f:y":{},"f:z":{}},"f:c":{}}"#);
    let cases = [
        (
            "union",
            ab.union(&bc),
            r#"{"f:a":{},"f:b":{"f:x":{},"f:y":{},"f:z":{}},"f:c":{}}"#,
        ),
        (
            "intersection",
            ab.intersection(&bc),
            r#"{"f:b":{"f:y":{}}}"#,
        ),
        (
            "difference",
            ab.difference(&bc),
            r#"{"f:a":{},"f:b":{"f:x":{}}}"#,
        ),
        (
            "a parent's removal leaves its children (difference)",
            fields(r#"{"f:b":{"f:x":{}}}"#).difference(&fields(r#"{"f:b":{}}"#)),
            r#"{"f:b":{"f:x":{}}}"#,
        ),
        (
            "but not in a recursive difference",
            fields(r#"{"f:b":{"f:x":{}},"f:c":{}}"#).recursive_difference(&fields(r#"{"f:b":{}}"#)),
            r#"{"f:c":{}}"#,
        ),
        (
            "leaves",
            fields(r#"{"f:a":{".":{},"f:b":{}},"f:c":{}}"#).leaves(),
            r#"{"f:a":{"f:b":{}},"f:c":{}}"#,
        ),
    ];
    for (name, got, want) in cases {
        assert_eq!(got.to_json(), want, "{name}");
    }
    assert!(ab.has(&[f("b"), f("x")]));
    assert!(!ab.has(&[f("b")]), "a parent is not a member");
    assert!(!ab.has(&[]));
    assert!(ab.intersection(&fields(r#"{"f:c":{}}"#)).is_empty());
    assert!(!ab.is_empty());
    assert_eq!(ab.len(), 3);
    assert_eq!(ab.with_prefix(&f("b")).to_json(), r#"{"f:x":{},"f:y":{}}"#);
}

#[test]
fn paths_iterate_members_then_children() {
    let s = fields(r#"{"f:a":{".":{},"f:b":{}},"f:c":{}}"#);
    let printed: Vec<String> = s.paths().iter().map(ToString::to_string).collect();
    assert_eq!(printed, [".a", ".c", ".a.b"]);
}

#[test]
fn decoding_refuses_what_nests_deeper_than_any_object() {
    let mut value = serde_json::Value::Object(Default::default());
    for _ in 0..200 {
        let mut outer = serde_json::Map::new();
        outer.insert("f:a".into(), value);
        value = serde_json::Value::Object(outer);
    }
    assert!(matches!(
        Set::from_value(&value),
        Err(FieldsV1Error::TooDeep { .. })
    ));
    crate::json::discard(value);
}
