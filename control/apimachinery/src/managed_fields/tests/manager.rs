//! Apply and update with their managedFields, conflicts, forcing, pruning, shared ownership,
//! client-side-apply migration and the validation of managedFields clients send.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::TestSchema;
use crate::managed_fields::manager::{
    ApplyError, FieldManager, LAST_APPLIED_CONFIG_ANNOTATION, ManagedFieldsEntry, Operation,
    decode_managed_fields,
};

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

fn fm() -> FieldManager<'static> {
    FieldManager::new(&TestSchema, "apps/v1", "Deployment", "")
}

/// A Deployment configuration with these spec fields.
fn config(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

/// `(manager, operation, fieldsV1)` of each entry, in order.
fn entries(object: &Value) -> Vec<(String, &'static str, String)> {
    decode_managed_fields(object["metadata"].get("managedFields"))
        .unwrap()
        .into_iter()
        .map(|e| (e.manager, e.operation.as_str(), e.fields.to_json()))
        .collect()
}

fn entry(manager: &str, operation: &'static str, fields: &str) -> (String, &'static str, String) {
    (manager.to_string(), operation, fields.to_string())
}

fn apply(live: Option<&Value>, spec: Value, manager: &str) -> Value {
    fm().apply(live, &config(spec), manager, false, at(100))
        .unwrap_or_else(|e| panic!("{manager}: {e}"))
}

fn conflict_message(result: Result<Value, ApplyError>) -> String {
    match result {
        Err(ApplyError::Conflicts(c)) => c.message(),
        other => panic!("expected conflicts, got {other:?}"),
    }
}

#[test]
fn apply_create_records_the_appliers_fields() {
    let object = apply(None, json!({"replicas": 3}), "a");
    assert_eq!(object["spec"], json!({"replicas": 3}));
    let managed = &object["metadata"]["managedFields"];
    assert_eq!(
        managed,
        &json!([{"manager": "a", "operation": "Apply", "apiVersion": "apps/v1",
                 "time": "1970-01-01T00:01:40Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:spec": {"f:replicas": {}}}}])
    );
}

#[test]
fn conflicts_render_kubernetes_messages_and_causes() {
    let by_a = apply(None, json!({"replicas": 3, "paused": false}), "a");
    let one = fm().apply(
        Some(&by_a),
        &config(json!({"replicas": 5})),
        "b",
        false,
        at(200),
    );
    assert_eq!(
        conflict_message(one),
        r#"Apply failed with 1 conflict: conflict with "a": .spec.replicas"#
    );

    // An Update entry is named with its version.
    let updated = {
        let mut new = by_a.clone();
        new["spec"]["replicas"] = json!(4);
        new["spec"]["paused"] = json!(true);
        fm().update(Some(&by_a), &new, "kubectl-edit", at(150))
            .unwrap()
    };
    let two = fm().apply(
        Some(&updated),
        &config(json!({"replicas": 5, "paused": false})),
        "b",
        false,
        at(200),
    );
    let Err(ApplyError::Conflicts(conflicts)) = two else {
        panic!("expected conflicts");
    };
    assert_eq!(
        conflicts.message(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-edit\" using apps/v1:\n- .spec.paused\n- .spec.replicas"
    );
    let status = conflicts.to_status();
    assert_eq!(status.code, Some(409));
    assert_eq!(status.reason.as_deref(), Some("Conflict"));
    let causes = status.details.unwrap().causes.unwrap();
    let causes: Vec<(String, String, String)> = causes
        .into_iter()
        .map(|c| (c.reason.unwrap(), c.message.unwrap(), c.field.unwrap()))
        .collect();
    assert_eq!(
        causes,
        [
            (
                "FieldManagerConflict".into(),
                "conflict with \"kubectl-edit\" using apps/v1".into(),
                ".spec.paused".into()
            ),
            (
                "FieldManagerConflict".into(),
                "conflict with \"kubectl-edit\" using apps/v1".into(),
                ".spec.replicas".into()
            ),
        ]
    );
}

#[test]
fn conflicts_with_several_managers_are_grouped_by_manager() {
    let by_a = apply(None, json!({"replicas": 3}), "a");
    let by_b = apply(Some(&by_a), json!({"paused": true}), "b");
    let result = fm().apply(
        Some(&by_b),
        &config(json!({"replicas": 1, "paused": false})),
        "c",
        false,
        at(300),
    );
    assert_eq!(
        conflict_message(result),
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\nconflicts with \"b\":\n- .spec.paused"
    );
}

#[test]
fn forcing_moves_ownership() {
    let by_a = apply(None, json!({"replicas": 3, "paused": false}), "a");
    let forced = fm()
        .apply(
            Some(&by_a),
            &config(json!({"replicas": 5})),
            "b",
            true,
            at(200),
        )
        .unwrap();
    assert_eq!(forced["spec"], json!({"replicas": 5, "paused": false}));
    assert_eq!(
        entries(&forced),
        [
            entry("a", "Apply", r#"{"f:spec":{"f:paused":{}}}"#),
            entry("b", "Apply", r#"{"f:spec":{"f:replicas":{}}}"#),
        ]
    );
}

#[test]
fn applying_the_same_value_shares_ownership() {
    let by_a = apply(None, json!({"replicas": 3}), "a");
    let by_b = fm()
        .apply(
            Some(&by_a),
            &config(json!({"replicas": 3})),
            "b",
            false,
            at(200),
        )
        .unwrap();
    // Nothing changed, so the new entry has no time (and sorts as time zero), as in
    // Kubernetes.
    assert_eq!(
        entries(&by_b),
        [
            entry("b", "Apply", r#"{"f:spec":{"f:replicas":{}}}"#),
            entry("a", "Apply", r#"{"f:spec":{"f:replicas":{}}}"#),
        ]
    );
    let decoded = decode_managed_fields(by_b["metadata"].get("managedFields")).unwrap();
    assert_eq!(decoded[0].time, None);
    assert_eq!(decoded[1].time, Some(at(100)));
    assert_eq!(by_b["spec"], by_a["spec"]);
}

#[test]
fn fields_a_manager_stops_applying_are_removed_unless_shared() {
    let labels = |l: Value, spec: Value| {
        let mut c = config(spec);
        c["metadata"]["labels"] = l;
        c
    };
    let first = fm()
        .apply(
            None,
            &labels(json!({"a": "1", "b": "2"}), json!({"replicas": 1})),
            "a",
            false,
            at(100),
        )
        .unwrap();
    let shared = fm()
        .apply(
            Some(&first),
            &labels(json!({"b": "2"}), json!({})),
            "b",
            false,
            at(110),
        )
        .unwrap();

    // a drops both labels and replicas: b still owns label b, nobody else the rest.
    let mut c = config(json!({}));
    c["metadata"]["labels"] = json!({});
    let dropped = fm().apply(Some(&shared), &c, "a", false, at(120)).unwrap();
    assert_eq!(dropped["metadata"]["labels"], json!({"b": "2"}));
    assert_eq!(dropped.get("spec"), None, "spec: {dropped}");
    assert_eq!(
        entries(&dropped),
        [entry(
            "b",
            "Apply",
            r#"{"f:metadata":{"f:labels":{"f:b":{}}}}"#
        )]
    );
}

#[test]
fn associative_lists_by_multi_field_keys_prune_items() {
    let ports = |ps: Value| json!({"template": {"spec": {"containers": [{"name": "c", "image": "i", "ports": ps}]}}});
    let first = apply(
        None,
        ports(
            json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 80, "protocol": "UDP"}]),
        ),
        "a",
    );
    let second = apply(
        Some(&first),
        ports(json!([{"containerPort": 80, "protocol": "UDP", "name": "dns"}])),
        "a",
    );
    assert_eq!(
        second["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "protocol": "UDP", "name": "dns"}])
    );
    let (_, _, fields) = &entries(&second)[0];
    assert!(
        fields.contains(r#""k:{\"containerPort\":80,\"protocol\":\"UDP\"}":{".":{},"f:containerPort":{},"f:name":{},"f:protocol":{}}"#),
        "{fields}"
    );
    assert!(!fields.contains("TCP"), "{fields}");
}

#[test]
fn sets_and_atomic_values_through_apply() {
    let mut with_finalizers = config(json!({"selector": {"matchLabels": {"a": "1"}}}));
    with_finalizers["metadata"]["finalizers"] = json!(["x", "y"]);
    let first = fm()
        .apply(None, &with_finalizers, "a", false, at(100))
        .unwrap();
    let mut next = config(json!({"selector": {"matchLabels": {"b": "2"}}}));
    next["metadata"]["finalizers"] = json!(["y"]);
    let second = fm()
        .apply(Some(&first), &next, "a", false, at(110))
        .unwrap();
    assert_eq!(second["metadata"]["finalizers"], json!(["y"]));
    assert_eq!(
        second["spec"]["selector"],
        json!({"matchLabels": {"b": "2"}})
    );
    assert_eq!(
        entries(&second),
        [entry(
            "a",
            "Apply",
            r#"{"f:metadata":{"f:finalizers":{"v:\"y\"":{}}},"f:spec":{"f:selector":{}}}"#
        )]
    );
}

#[test]
fn updates_take_changed_fields_and_drop_removed_ones_from_every_set() {
    let by_a = apply(None, json!({"replicas": 3, "paused": false}), "a");
    let mut new = by_a.clone();
    new["spec"] = json!({"replicas": 4});
    let updated = fm()
        .update(Some(&by_a), &new, "kubectl-edit", at(200))
        .unwrap();
    assert_eq!(updated["spec"], json!({"replicas": 4}));
    assert_eq!(
        entries(&updated),
        [entry(
            "kubectl-edit",
            "Update",
            r#"{"f:spec":{"f:replicas":{}}}"#
        )],
        "a lost replicas (changed) and paused (removed)"
    );
    // The same writer again: its entry grows, its time moves on.
    let mut again = updated.clone();
    again["spec"]["paused"] = json!(true);
    let twice = fm()
        .update(Some(&updated), &again, "kubectl-edit", at(300))
        .unwrap();
    let decoded = decode_managed_fields(twice["metadata"].get("managedFields")).unwrap();
    assert_eq!(decoded.len(), 1);
    assert_eq!(
        decoded[0].fields.to_json(),
        r#"{"f:spec":{"f:paused":{},"f:replicas":{}}}"#
    );
    assert_eq!(decoded[0].time, Some(at(300)));
    // A write that changes nothing leaves the time alone.
    let same = fm()
        .update(Some(&twice), &twice, "kubectl-edit", at(400))
        .unwrap();
    let decoded = decode_managed_fields(same["metadata"].get("managedFields")).unwrap();
    assert_eq!(decoded[0].time, Some(at(300)));
}

#[test]
fn creates_are_tracked_and_untracked_objects_stay_untracked() {
    let created = fm()
        .update(
            None,
            &config(json!({"replicas": 1})),
            "kubectl-create",
            at(10),
        )
        .unwrap();
    // metadata.name, namespace, apiVersion and kind are never owned.
    assert_eq!(
        entries(&created),
        [entry(
            "kubectl-create",
            "Update",
            r#"{"f:spec":{".":{},"f:replicas":{}}}"#
        )]
    );

    let mut stored = config(json!({"replicas": 1}));
    stored["metadata"]["uid"] = json!("u1");
    let mut new = stored.clone();
    new["spec"]["replicas"] = json!(2);
    let updated = fm().update(Some(&stored), &new, "x", at(20)).unwrap();
    assert_eq!(updated["metadata"].get("managedFields"), None);
}

#[test]
fn the_first_apply_to_an_untracked_object_conflicts_with_before_first_apply() {
    let mut stored = config(json!({"replicas": 1}));
    stored["metadata"]["uid"] = json!("u1");
    let result = fm().apply(
        Some(&stored),
        &config(json!({"replicas": 2})),
        "a",
        false,
        at(30),
    );
    assert_eq!(
        conflict_message(result),
        r#"Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas"#
    );
    let same = fm()
        .apply(
            Some(&stored),
            &config(json!({"replicas": 1})),
            "a",
            false,
            at(30),
        )
        .unwrap();
    assert_eq!(
        entries(&same),
        [
            entry("a", "Apply", r#"{"f:spec":{"f:replicas":{}}}"#),
            // `.spec` is "added" because a create starts from `{}` (see with_new_object).
            entry(
                "before-first-apply",
                "Update",
                r#"{"f:spec":{".":{},"f:replicas":{}}}"#
            ),
        ]
    );
}

#[test]
fn entries_are_ordered_appliers_first_then_by_time() {
    let by_z = apply(None, json!({"replicas": 1}), "z");
    let mut new = by_z.clone();
    new["spec"]["paused"] = json!(true);
    let u1 = fm().update(Some(&by_z), &new, "late", at(500)).unwrap();
    let mut newer = u1.clone();
    newer["metadata"]["labels"] = json!({"a": "b"});
    let u2 = fm().update(Some(&u1), &newer, "early", at(50)).unwrap();
    let order: Vec<String> = entries(&u2).into_iter().map(|(m, _, _)| m).collect();
    assert_eq!(order, ["z", "early", "late"]);
}

#[test]
fn update_entries_beyond_ten_merge_into_ancient_changes() {
    let mut object = apply(None, json!({"replicas": 1}), "a");
    for i in 0..11 {
        let mut new = object.clone();
        new["metadata"]["labels"] = json!({ format!("l{i}"): "x" });
        let mut labels = object["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        labels.insert(format!("l{i}"), json!("x"));
        new["metadata"]["labels"] = Value::Object(labels);
        object = fm()
            .update(Some(&object), &new, &format!("w{i:02}"), at(1000 + i))
            .unwrap();
    }
    let managers: Vec<String> = entries(&object).into_iter().map(|(m, _, _)| m).collect();
    assert_eq!(managers.len(), 11, "{managers:?}");
    assert_eq!(managers[0], "a");
    assert!(
        managers.contains(&"ancient-changes".to_string()),
        "{managers:?}"
    );
    assert!(!managers.contains(&"w00".to_string()) && !managers.contains(&"w01".to_string()));
    let ancient = entries(&object)
        .into_iter()
        .find(|(m, _, _)| m == "ancient-changes")
        .unwrap();
    assert_eq!(
        ancient.2,
        r#"{"f:metadata":{"f:labels":{".":{},"f:l0":{},"f:l1":{}}}}"#
    );
}

#[test]
fn kubectl_moves_from_client_side_apply_without_conflicts() {
    let last = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},"spec":{"replicas":3}}"#;
    let mut stored = config(json!({"replicas": 3}));
    stored["metadata"]["uid"] = json!("u1");
    stored["metadata"]["annotations"] =
        json!({ LAST_APPLIED_CONFIG_ANNOTATION: format!("{last}\n") });
    stored["metadata"]["managedFields"] = json!([{
        "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1",
        "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
                     "f:spec": {"f:replicas": {}}}}]);

    let mut c = config(json!({"replicas": 5}));
    c["metadata"]["labels"] = json!({"app": "<web>"});
    // Another manager conflicts.
    assert!(
        fm().apply(Some(&stored), &c, "other", false, at(40))
            .is_err()
    );
    // kubectl owned replicas through its annotation: no conflict.
    let applied = fm()
        .apply(Some(&stored), &c, "kubectl", false, at(40))
        .unwrap();
    assert_eq!(applied["spec"]["replicas"], json!(5));
    assert_eq!(
        applied["metadata"]["annotations"][LAST_APPLIED_CONFIG_ANNOTATION],
        json!(
            "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"labels\":{\"app\":\"\\u003cweb\\u003e\"},\"name\":\"web\",\"namespace\":\"default\"},\"spec\":{\"replicas\":5}}\n"
        )
    );
    let managers: Vec<(String, &str)> = entries(&applied)
        .into_iter()
        .map(|(m, o, _)| (m, o))
        .collect();
    assert_eq!(
        managers,
        [
            ("kubectl".into(), "Apply"),
            ("kubectl-client-side-apply".into(), "Update")
        ]
    );
    assert_eq!(
        fm().last_applied_fields(&stored).unwrap().to_json(),
        r#"{"f:apiVersion":{},"f:kind":{},"f:metadata":{"f:name":{},"f:namespace":{}},"f:spec":{"f:replicas":{}}}"#
    );
}

#[test]
fn applies_that_kubernetes_refuses() {
    let mut with_managed = config(json!({}));
    with_managed["metadata"]["managedFields"] = json!([]);
    let mut wrong_kind = config(json!({}));
    wrong_kind["kind"] = json!("Pod");
    let mut bad_live = config(json!({}));
    bad_live["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Patch",
        "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {}}]);
    let cases = [
        (
            None,
            with_managed,
            "metadata.managedFields must be nil",
            400,
        ),
        (
            None,
            wrong_kind,
            "invalid object type: apps/v1, Kind=Pod",
            400,
        ),
        (
            None,
            config(json!({"foo": 1})),
            "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.foo: field not declared in schema",
            500,
        ),
        (
            Some(bad_live),
            config(json!({})),
            "failed to decode managed fields: operation must be `Apply` or `Update`",
            500,
        ),
    ];
    for (live, c, message, status) in cases {
        let err = fm()
            .apply(live.as_ref(), &c, "a", false, at(1))
            .unwrap_err();
        assert_eq!(err.to_string(), message);
        assert_eq!(err.http_status(), status, "{message}");
    }
}

#[test]
fn malformed_managed_fields_are_rejected() {
    let good = json!({"manager": "m", "operation": "Apply", "apiVersion": "v1",
                      "fieldsType": "FieldsV1", "fieldsV1": {"f:a": {}}});
    let with = |k: &str, v: Value| {
        let mut e = good.clone();
        e[k] = v;
        json!([e])
    };
    let cases = [
        (
            with("operation", json!("Patch")),
            "operation must be `Apply` or `Update`",
        ),
        (
            with("apiVersion", json!("")),
            "apiVersion must not be empty",
        ),
        (
            with("fieldsType", json!("")),
            "missing fieldsType in managed fields entry 0",
        ),
        (
            with("fieldsType", json!("FieldsV2")),
            "invalid fieldsType \"FieldsV2\" in managed fields entry 0",
        ),
        (
            with("fieldsV1", json!({"f:a": 1})),
            "error decoding versioned set from managed fields entry 0 (\"m\"): error decoding set: FieldsV1 at \"f:a\": expected an object, got a number",
        ),
        (
            with("time", json!("yesterday")),
            "managed fields entry 0: time \"yesterday\" is not an RFC 3339 time",
        ),
        (
            with("manager", json!(7)),
            "managed fields entry 0: manager must be a string, got a number",
        ),
        (
            json!({}),
            "metadata.managedFields must be a list of entries, got an object",
        ),
        (
            json!([1]),
            "managed fields entry 0: expected an object, got a number",
        ),
    ];
    for (managed_fields, message) in cases {
        let err = decode_managed_fields(Some(&managed_fields)).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    let decoded = decode_managed_fields(Some(&json!([good]))).unwrap();
    assert_eq!(
        decoded,
        [ManagedFieldsEntry {
            manager: "m".into(),
            operation: Operation::Apply,
            api_version: "v1".into(),
            time: None,
            fields: crate::managed_fields::fieldpath::Set::from_json(r#"{"f:a":{}}"#).unwrap(),
            subresource: String::new(),
        }]
    );
}

#[test]
fn client_managed_fields_are_used_reset_or_ignored() {
    let mut stored = apply(None, json!({"replicas": 1}), "a");
    stored["metadata"]["uid"] = json!("u1");
    let with_managed = |mf: Value| {
        let mut new = stored.clone();
        new["metadata"]["managedFields"] = mf;
        fm().update(Some(&stored), &new, "w", at(500)).unwrap()
    };
    // Undecodable: the live ones are kept.
    let kept = with_managed(json!([{"manager": "x", "operation": "Patch"}]));
    assert_eq!(entries(&kept), entries(&stored));
    // Reset: an empty list (or one empty entry) clears them, and an existing object stays
    // untracked.
    assert_eq!(
        with_managed(json!([])).pointer("/metadata/managedFields"),
        None
    );
    assert_eq!(
        with_managed(json!([{}])).pointer("/metadata/managedFields"),
        None
    );
    // Valid: they replace the live ones.
    let replaced = with_managed(json!([{"manager": "mine", "operation": "Update",
        "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]));
    assert_eq!(
        entries(&replaced),
        [entry("mine", "Update", r#"{"f:spec":{"f:replicas":{}}}"#)]
    );
}

#[test]
fn subresource_writes_are_their_own_managers() {
    let status = FieldManager::new(&TestSchema, "apps/v1", "Deployment", "status");
    let by_a = apply(None, json!({"replicas": 1}), "a");
    let mut new = by_a.clone();
    new["status"] = json!({"replicas": 1});
    let updated = status
        .update(Some(&by_a), &new, "controller", at(5))
        .unwrap();
    let decoded = decode_managed_fields(updated["metadata"].get("managedFields")).unwrap();
    assert_eq!(decoded[1].manager, "controller");
    assert_eq!(decoded[1].subresource, "status");
    assert_eq!(
        decoded[1].fields.to_json(),
        r#"{"f:status":{".":{},"f:replicas":{}}}"#
    );
    assert_eq!(
        decoded[1].to_value()["subresource"],
        json!("status"),
        "{}",
        decoded[1].to_value()
    );
    // A conflict with it names the subresource.
    let result = fm().apply(
        Some(&updated),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "status": {"replicas": 2}}),
        "b",
        false,
        at(6),
    );
    assert_eq!(
        conflict_message(result),
        r#"Apply failed with 1 conflict: conflict with "controller" with subresource "status" using apps/v1: .status.replicas"#
    );
}

/// Kubernetes' `ResetFieldsStrategy`: what a resource's strategy resets is never owned
/// through it, and changing it is no conflict.
#[test]
fn reset_fields_are_neither_owned_nor_conflicts() {
    use crate::managed_fields::fieldpath::{Path, Set};
    let reset = |paths: &[&[&str]]| {
        Set::from_paths(&paths.iter().map(|p| Path::fields(p)).collect::<Vec<_>>())
    };
    let main = || fm().with_reset_fields(reset(&[&["status"]]));
    let status = FieldManager::new(&TestSchema, "apps/v1", "Deployment", "status")
        .with_reset_fields(reset(&[&["spec"], &["metadata"]]));
    let by_a = main()
        .apply(
            None,
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                    "spec": {"replicas": 1}, "status": {"replicas": 7}}),
            "a",
            false,
            at(1),
        )
        .unwrap();
    assert_eq!(
        entries(&by_a),
        [entry("a", "Apply", r#"{"f:spec":{"f:replicas":{}}}"#)],
        "the applier does not own the status it sent"
    );
    // A controller writes the status; its spec changes are not its own.
    let mut new = by_a.clone();
    new["status"] = json!({"replicas": 1});
    new["spec"]["replicas"] = json!(9);
    let mut by_controller = status
        .update(Some(&by_a), &new, "controller", at(2))
        .unwrap();
    // ... and the status strategy keeps the stored spec.
    by_controller["spec"] = by_a["spec"].clone();
    assert_eq!(
        entries(&by_controller)[1],
        entry("controller", "Update", r#"{"f:status":{"f:replicas":{}}}"#)
    );
    assert_eq!(entries(&by_controller)[0], entries(&by_a)[0]);
    // Applying another status through the main resource conflicts with no one.
    let again = main()
        .apply(
            Some(&by_controller),
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                    "spec": {"replicas": 1}, "status": {"replicas": 3}}),
            "b",
            false,
            at(3),
        )
        .unwrap();
    let managers: Vec<String> = entries(&again).into_iter().map(|e| e.0).collect();
    assert_eq!(managers, ["a", "b", "controller"]);
}

#[test]
fn a_deployment_applies_through_the_builtin_table() {
    use crate::managed_fields::builtin::BuiltinSchema;
    let deployments = FieldManager::new(&BuiltinSchema, "apps/v1", "Deployment", "");
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}});
    let created = deployments
        .apply(None, &config, "kubectl", false, at(1))
        .unwrap();
    assert_eq!(
        entries(&created)[0].2,
        r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}}}}}}}}"#
    );
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(5);
    let scaled = deployments
        .update(Some(&created), &scaled, "hpa", at(2))
        .unwrap();
    let result = deployments.apply(Some(&scaled), &config, "kubectl", false, at(3));
    assert_eq!(
        conflict_message(result),
        r#"Apply failed with 1 conflict: conflict with "hpa" using apps/v1: .spec.replicas"#
    );
}

/// A write of a list as long as a request body allows stays quick (no walk is quadratic).
#[test]
fn long_lists_are_tracked_in_linear_time() {
    let finalizers: Vec<String> = (0..20_000).map(|i| format!("example.com/f{i}")).collect();
    let live = fm()
        .update(None, &config(json!({"replicas": 1})), "a", at(1))
        .unwrap();
    let mut new = live.clone();
    new["metadata"]["uid"] = json!("u");
    new["metadata"]["finalizers"] = json!(finalizers);
    let started = std::time::Instant::now();
    let updated = fm().update(Some(&live), &new, "b", at(2)).unwrap();
    let mut again = updated.clone();
    again["metadata"]["finalizers"][0] = json!("example.com/changed");
    fm().update(Some(&updated), &again, "c", at(3)).unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
