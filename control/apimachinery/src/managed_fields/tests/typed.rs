//! Field sets, validation, merge, removal and comparison of typed values.

use serde_json::{Value, json};

use super::{TestSchema, deployment};
use crate::managed_fields::fieldpath::Set;
use crate::managed_fields::typed::{Duplicates, Typed};

fn fields(text: &str) -> Set {
    Set::from_json(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn field_set(v: &Value) -> String {
    deployment()
        .to_field_set(v, Duplicates::Reject)
        .unwrap_or_else(|e| panic!("{v}: {e}"))
        .to_json()
}

#[test]
fn field_sets_own_leaves_items_and_map_entries() {
    let cases = [
        (
            "struct fields only through their leaves",
            json!({"spec": {"replicas": 3, "paused": false}}),
            r#"{"f:spec":{"f:paused":{},"f:replicas":{}}}"#,
        ),
        ("an empty struct sets nothing", json!({"spec": {}}), "{}"),
        (
            "map entries are members",
            json!({"metadata": {"labels": {"app": "web"}}}),
            r#"{"f:metadata":{"f:labels":{"f:app":{}}}}"#,
        ),
        (
            "associative list items are members with their fields",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
            r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:image":{},"f:name":{}}}}}}}"#,
        ),
        (
            "multi-field keys",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [
                {"containerPort": 80, "protocol": "TCP"}]}]}}}}),
            r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}}}}}}}}"#,
        ),
        (
            "a key field the item omits is identified by its default",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [
                {"containerPort": 80}]}]}}}}),
            r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#,
        ),
        (
            "set items",
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            r#"{"f:metadata":{"f:finalizers":{"v:\"a\"":{},"v:\"b\"":{}}}}"#,
        ),
        (
            "atomic lists, structs and maps are leaves",
            json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {
                "nodeSelector": {"d": "e"}, "containers": [{"name": "c", "args": ["x"]}]}}}}),
            r#"{"f:spec":{"f:selector":{},"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:args":{},"f:name":{}}},"f:nodeSelector":{}}}}}"#,
        ),
        (
            "untyped objects field by field, untyped lists atomic",
            json!({"spec": {"extra": {"a": {"b": 1}, "l": [1, 2]}}}),
            r#"{"f:spec":{"f:extra":{"f:a":{".":{},"f:b":{}},"f:l":{}}}}"#,
        ),
    ];
    for (name, v, want) in cases {
        assert_eq!(field_set(&v), want, "{name}");
    }
}

#[test]
fn validation_errors_say_what_and_where() {
    let cases = [
        (
            "a string where an object is declared",
            json!({"spec": "x"}),
            ".spec: expected map, got &{x}",
        ),
        (
            "an unknown field",
            json!({"spec": {"foo": 1}}),
            ".spec.foo: field not declared in schema",
        ),
        (
            "a list where a scalar is declared",
            json!({"spec": {"replicas": [1]}}),
            ".spec.replicas: expected any scalar, got &{[1]}",
        ),
        (
            "an object where a list is declared",
            json!({"metadata": {"finalizers": {"a": 1}}}),
            ".metadata.finalizers: expected list, got &{map[a:1]}",
        ),
        (
            "a missing key field",
            json!({"spec": {"template": {"spec": {"containers": [{"image": "i"}]}}}}),
            r#".spec.template.spec.containers: element 0: associative list with keys has an element that omits key field "name" (and doesn't have default value)"#,
        ),
        (
            "a duplicate key",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}}),
            r#".spec.template.spec.containers: duplicate entries for key [name="a"]"#,
        ),
        (
            "an object in a set",
            json!({"metadata": {"finalizers": [{"a": 1}]}}),
            ".metadata.finalizers: element 0: associative list without keys has an element that's a map type",
        ),
        (
            "several errors",
            json!({"spec": {"foo": 1, "bar": 2}}),
            "errors:\n  .spec.bar: field not declared in schema\n  .spec.foo: field not declared in schema",
        ),
    ];
    for (name, v, want) in cases {
        let err = deployment().validate(&v, Duplicates::Reject).unwrap_err();
        assert_eq!(err.to_string(), want, "{name}");
    }
}

#[test]
fn duplicates_allowed_are_owned_as_a_whole() {
    let v = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "1"}, {"name": "a", "image": "2"}, {"name": "b", "image": "3"}]}}}});
    let set = deployment().to_field_set(&v, Duplicates::Allow).unwrap();
    assert_eq!(
        set.to_json(),
        r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"a\"}":{},"k:{\"name\":\"b\"}":{".":{},"f:image":{},"f:name":{}}}}}}}"#
    );
}

#[test]
fn validation_stops_at_the_nesting_limit() {
    let mut v = json!(1);
    for _ in 0..200 {
        v = json!({ "a": v });
    }
    let untyped = Typed::new(&TestSchema, crate::managed_fields::schema::Atom::Untyped);
    let err = untyped.validate(&v, Duplicates::Reject).unwrap_err();
    assert!(
        err.to_string().ends_with("nests deeper than 127 levels"),
        "{err}"
    );
}

fn containers(names: &[(&str, &str)]) -> Value {
    let items: Vec<Value> = names
        .iter()
        .map(|(n, i)| json!({"name": n, "image": i}))
        .collect();
    json!({"spec": {"template": {"spec": {"containers": items}}}})
}

#[test]
fn merge_lets_the_configuration_win_as_smd_merges() {
    let cases = [
        (
            "scalars: the configuration's value",
            json!({"spec": {"replicas": 1, "paused": true}}),
            json!({"spec": {"replicas": 3}}),
            json!({"spec": {"replicas": 3, "paused": true}}),
        ),
        (
            "granular maps merge per key",
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"labels": {"b": "3", "c": "4"}}}),
            json!({"metadata": {"labels": {"a": "1", "b": "3", "c": "4"}}}),
        ),
        (
            "associative lists merge by key; a new item goes before the configured item after it",
            containers(&[("a", "1"), ("b", "2")]),
            containers(&[("c", "3"), ("a", "9")]),
            containers(&[("c", "3"), ("a", "9"), ("b", "2")]),
        ),
        (
            "new items after every shared one go last",
            containers(&[("a", "1"), ("b", "2")]),
            containers(&[("a", "1"), ("c", "3")]),
            containers(&[("a", "1"), ("b", "2"), ("c", "3")]),
        ),
        (
            "shared items take the configuration's order, unmentioned ones keep their place",
            containers(&[("a", "1"), ("b", "2"), ("c", "3")]),
            containers(&[("c", "3"), ("a", "1")]),
            containers(&[("b", "2"), ("c", "3"), ("a", "1")]),
        ),
        (
            "items merge field by field",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1", "args": ["x"]}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "2"}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "2", "args": ["x"]}]}}}}),
        ),
        (
            "sets are unioned",
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"finalizers": ["c", "a"]}}),
            json!({"metadata": {"finalizers": ["c", "a", "b"]}}),
        ),
        (
            "atomic lists are replaced",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["x", "y"]}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["z"]}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["z"]}]}}}}),
        ),
        (
            "atomic structs are replaced",
            json!({"spec": {"selector": {"matchLabels": {"a": "1"}}}}),
            json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
            json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
        ),
        (
            "atomic maps are replaced",
            json!({"spec": {"template": {"spec": {"nodeSelector": {"a": "1"}}}}}),
            json!({"spec": {"template": {"spec": {"nodeSelector": {"b": "2"}}}}}),
            json!({"spec": {"template": {"spec": {"nodeSelector": {"b": "2"}}}}}),
        ),
        (
            "untyped objects merge, untyped lists are replaced",
            json!({"spec": {"extra": {"a": 1, "l": [1, 2]}}}),
            json!({"spec": {"extra": {"b": 2, "l": [3]}}}),
            json!({"spec": {"extra": {"a": 1, "b": 2, "l": [3]}}}),
        ),
        (
            "an item omitting a defaulted key merges with the live item that spells it",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [
                {"containerPort": 80, "protocol": "TCP", "name": "web"},
                {"containerPort": 80, "protocol": "UDP"}]}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [
                {"containerPort": 80, "name": "http"}]}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [
                {"containerPort": 80, "protocol": "TCP", "name": "http"},
                {"containerPort": 80, "protocol": "UDP"}]}]}}}}),
        ),
        (
            "a configured item replaces every live copy of a duplicated key",
            containers(&[("a", "1"), ("a", "2"), ("b", "3")]),
            containers(&[("a", "9")]),
            containers(&[("a", "9"), ("b", "3")]),
        ),
    ];
    for (name, live, config, want) in cases {
        assert_eq!(deployment().merge(&live, &config), want, "{name}");
    }
}

#[test]
fn removal_prunes_as_smd_does() {
    let cases = [
        (
            "a leaf",
            json!({"spec": {"replicas": 1, "paused": true}}),
            r#"{"f:spec":{"f:replicas":{}}}"#,
            json!({"spec": {"paused": true}}),
        ),
        (
            "a list item by key",
            containers(&[("a", "1"), ("b", "2")]),
            r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"a\"}":{}}}}}}"#,
            containers(&[("b", "2")]),
        ),
        (
            "a field inside an item",
            containers(&[("a", "1")]),
            r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"a\"}":{"f:image":{}}}}}}}"#,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}),
        ),
        (
            "a struct field as a whole",
            json!({"spec": {"replicas": 1}, "metadata": {"name": "x"}}),
            r#"{"f:spec":{}}"#,
            json!({"metadata": {"name": "x"}}),
        ),
        (
            "a list emptied by the removal becomes null",
            json!({"metadata": {"finalizers": ["a"]}}),
            r#"{"f:metadata":{"f:finalizers":{"v:\"a\"":{}}}}"#,
            json!({"metadata": {"finalizers": null}}),
        ),
        (
            "an object emptied by the removal becomes null",
            json!({"metadata": {"labels": {"a": "1"}, "name": "x"}}),
            r#"{"f:metadata":{"f:labels":{"f:a":{}}}}"#,
            json!({"metadata": {"labels": null, "name": "x"}}),
        ),
    ];
    for (name, v, remove, want) in cases {
        assert_eq!(
            deployment().remove_items(&v, &fields(remove)),
            want,
            "{name}"
        );
    }
    assert_eq!(
        deployment().drop_null_fields(&json!({"metadata": {"labels": null, "name": "x"}})),
        json!({"metadata": {"name": "x"}})
    );
}

#[test]
fn comparison_finds_added_modified_and_removed() {
    let cases = [
        (
            "scalars",
            json!({"spec": {"replicas": 1, "paused": true}}),
            json!({"spec": {"replicas": 2, "extra": 1}}),
            (
                r#"{"f:spec":{"f:extra":{}}}"#,
                r#"{"f:spec":{"f:replicas":{}}}"#,
                r#"{"f:spec":{"f:paused":{}}}"#,
            ),
        ),
        (
            "a new map is added as a whole and by entry",
            json!({"metadata": {"name": "x"}}),
            json!({"metadata": {"name": "x", "labels": {"a": "1"}}}),
            (
                r#"{"f:metadata":{"f:labels":{".":{},"f:a":{}}}}"#,
                "{}",
                "{}",
            ),
        ),
        (
            "list items by key",
            containers(&[("a", "1"), ("b", "2")]),
            containers(&[("b", "3"), ("c", "4")]),
            (
                r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:image":{},"f:name":{}}}}}}}"#,
                r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"b\"}":{"f:image":{}}}}}}}"#,
                r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"a\"}":{".":{},"f:image":{},"f:name":{}}}}}}}"#,
            ),
        ),
        (
            "1 and 1.0 are equal",
            json!({"spec": {"replicas": 1}}),
            json!({"spec": {"replicas": 1.0}}),
            ("{}", "{}", "{}"),
        ),
        (
            "atomic values compare whole",
            json!({"spec": {"selector": {"matchLabels": {"a": "1"}}}}),
            json!({"spec": {"selector": {"matchLabels": {"a": "2"}}}}),
            ("{}", r#"{"f:spec":{"f:selector":{}}}"#, "{}"),
        ),
    ];
    for (name, old, new, (added, modified, removed)) in cases {
        let c = deployment().compare(&old, &new);
        assert_eq!(c.added.to_json(), added, "{name}: added");
        assert_eq!(c.modified.to_json(), modified, "{name}: modified");
        assert_eq!(c.removed.to_json(), removed, "{name}: removed");
    }
}

#[test]
fn named_fields_become_members() {
    let set = fields(
        r#"{"f:metadata":{"f:labels":{"f:a":{}}},"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{"f:image":{}}}}}}}"#,
    );
    assert_eq!(
        deployment().ensure_named_fields_are_members(&set).to_json(),
        r#"{"f:metadata":{".":{},"f:labels":{".":{},"f:a":{}}},"f:spec":{".":{},"f:template":{".":{},"f:spec":{".":{},"f:containers":{".":{},"k:{\"name\":\"c\"}":{"f:image":{}}}}}}}"#
    );
}
