//! Validation of the RBAC, networking, storage and admission-webhook kinds through the HTTP API,
//! as kube-apiserver answers it: a table of objects and the 422 causes each must get (field,
//! reason, message), updates that must be refused, valid objects accepted with their defaults,
//! and the printer columns the real kubectl shows for these kinds.

mod support;

use http::Method;
use serde_json::{Value, json};
use support::{Backend, Raw, TestServer};

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const WILDCARD: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

const ROLES: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles";
const CLUSTER_ROLES: &str = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
const ROLE_BINDINGS: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings";
const CLUSTER_ROLE_BINDINGS: &str = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";
const INGRESSES: &str = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";
const INGRESS_CLASSES: &str = "/apis/networking.k8s.io/v1/ingressclasses";
const NETWORK_POLICIES: &str = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies";
const STORAGE_CLASSES: &str = "/apis/storage.k8s.io/v1/storageclasses";
const PVS: &str = "/api/v1/persistentvolumes";
const PVCS: &str = "/api/v1/namespaces/default/persistentvolumeclaims";
const QUOTAS: &str = "/api/v1/namespaces/default/resourcequotas";
const VALIDATING: &str = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";
const MUTATING: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

/// One expected cause: field, reason, message.
type Cause = (&'static str, &'static str, String);

fn required(field: &'static str, detail: &str) -> Cause {
    let message = if detail.is_empty() {
        "Required value".to_owned()
    } else {
        format!("Required value: {detail}")
    };
    (field, "FieldValueRequired", message)
}

fn invalid(field: &'static str, value: &str, detail: &str) -> Cause {
    (
        field,
        "FieldValueInvalid",
        format!("Invalid value: {value}: {detail}"),
    )
}

fn unsupported(field: &'static str, value: &str, valid: &[&str]) -> Cause {
    let valid: Vec<String> = valid.iter().map(|v| format!("{v:?}")).collect();
    (
        field,
        "FieldValueNotSupported",
        format!(
            "Unsupported value: {value:?}: supported values: {}",
            valid.join(", ")
        ),
    )
}

fn forbidden(field: &'static str, detail: &str) -> Cause {
    (field, "FieldValueForbidden", format!("Forbidden: {detail}"))
}

fn duplicate(field: &'static str, value: &str) -> Cause {
    (
        field,
        "FieldValueDuplicate",
        format!("Duplicate value: {value:?}"),
    )
}

async fn send(client: &Raw, method: Method, path: &str, body: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(body).unwrap();
    client.send(method, path, "application/json", body).await
}

/// The causes of a 422 answer, sorted (the table lists them in Kubernetes' order, but what
/// matters is that each is there).
fn causes(response: &(u16, Value)) -> Vec<(String, String, String)> {
    let (code, body) = response;
    assert_eq!(*code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid", "{body}");
    let mut causes: Vec<(String, String, String)> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (s("field"), s("reason"), s("message"))
        })
        .collect();
    causes.sort();
    causes
}

fn sorted(expected: &[Cause]) -> Vec<(String, String, String)> {
    let mut expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(f, r, m)| ((*f).to_owned(), (*r).to_owned(), m.clone()))
        .collect();
    expected.sort();
    expected
}

fn object(api_version: &str, kind: &str, name: &str, rest: Value) -> Value {
    let mut obj = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
    for (key, value) in rest.as_object().unwrap() {
        obj[key] = value.clone();
    }
    obj
}

fn rbac(kind: &str, name: &str, rest: Value) -> Value {
    object("rbac.authorization.k8s.io/v1", kind, name, rest)
}

fn networking(kind: &str, name: &str, rest: Value) -> Value {
    object("networking.k8s.io/v1", kind, name, rest)
}

fn webhooks(kind: &str, name: &str, hooks: Value) -> Value {
    object(
        "admissionregistration.k8s.io/v1",
        kind,
        name,
        json!({ "webhooks": hooks }),
    )
}

async fn start(test: &str) -> (TestServer, Raw) {
    let server = TestServer::start(Backend::Embedded, test).await;
    let client = Raw::new(&server);
    (server, client)
}

/// Objects that must be refused, each with every cause Kubernetes gives.
fn invalid_objects() -> Vec<(&'static str, Value, Vec<Cause>)> {
    vec![
        (
            ROLES,
            rbac("Role", "empty-rule", json!({"rules": [{}]})),
            vec![
                required("rules[0].verbs", "verbs must contain at least one value"),
                required(
                    "rules[0].apiGroups",
                    "resource rules must supply at least one api group",
                ),
                required(
                    "rules[0].resources",
                    "resource rules must supply at least one resource",
                ),
            ],
        ),
        (
            ROLES,
            rbac(
                "Role",
                "urls",
                json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}),
            ),
            vec![invalid(
                "rules[0].nonResourceURLs",
                "[]string{\"/healthz\"}",
                "namespaced rules cannot apply to non-resource URLs",
            )],
        ),
        (
            CLUSTER_ROLES,
            rbac(
                "ClusterRole",
                "mixed",
                json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"], "resources": ["pods"]}],
                       "aggregationRule": {}}),
            ),
            vec![
                invalid(
                    "rules[0].nonResourceURLs",
                    "[]string{\"/healthz\"}",
                    "rules cannot apply to both regular resources and non-resource URLs",
                ),
                required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ),
            ],
        ),
        (
            ROLE_BINDINGS,
            rbac(
                "RoleBinding",
                "bad-ref",
                json!({"roleRef": {"apiGroup": "x", "kind": "Foo", "name": ""}}),
            ),
            vec![
                unsupported("roleRef.apiGroup", "x", &["rbac.authorization.k8s.io"]),
                unsupported("roleRef.kind", "Foo", &["Role", "ClusterRole"]),
                required("roleRef.name", ""),
            ],
        ),
        (
            CLUSTER_ROLE_BINDINGS,
            rbac(
                "ClusterRoleBinding",
                "bad-subjects",
                json!({
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "view"},
                    "subjects": [
                        {"kind": "ServiceAccount", "name": "robot"},
                        {"kind": "Robot", "name": "r2d2"},
                        {"kind": "Group", "name": "devs", "apiGroup": "foo"},
                        {"kind": "User", "name": ""},
                    ]
                }),
            ),
            vec![
                unsupported("roleRef.kind", "Role", &["ClusterRole"]),
                required("subjects[0].namespace", ""),
                unsupported(
                    "subjects[1].kind",
                    "Robot",
                    &["ServiceAccount", "User", "Group"],
                ),
                unsupported(
                    "subjects[2].apiGroup",
                    "foo",
                    &["rbac.authorization.k8s.io"],
                ),
                required("subjects[3].name", ""),
            ],
        ),
        (
            INGRESSES,
            networking("Ingress", "nothing", json!({"spec": {}})),
            vec![invalid(
                "spec",
                "[]networking.IngressRule(nil)",
                "either `defaultBackend` or `rules` must be specified",
            )],
        ),
        (
            INGRESSES,
            networking(
                "Ingress",
                "bad-rules",
                json!({"spec": {
                    "ingressClassName": "Bad Class",
                    "rules": [
                        {"host": "1.2.3.4", "http": {"paths": [
                            {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                            {"path": "foo", "pathType": "Prefix", "backend": {"service": {"name": "web"}}},
                            {"path": "/a", "pathType": "Regex", "backend": {"service": {"name": "Web", "port": {"name": "http", "number": 80}}}},
                            {"path": "/b/../c", "pathType": "Exact", "backend": {
                                "service": {"name": "web", "port": {"number": 80}},
                                "resource": {"kind": "Bucket", "name": "b"}}},
                        ]}},
                        {"host": "*.*.example.com", "http": {"paths": []}},
                    ],
                    "tls": [{"hosts": ["Bad_Host"], "secretName": "Not_Valid"}],
                }}),
            ),
            vec![
                invalid(
                    "spec.rules[0].host",
                    "\"1.2.3.4\"",
                    "must be a DNS name, not an IP address",
                ),
                required(
                    "spec.rules[0].http.paths[0].pathType",
                    "pathType must be specified",
                ),
                invalid(
                    "spec.rules[0].http.paths[1].path",
                    "\"foo\"",
                    "must be an absolute path",
                ),
                required(
                    "spec.rules[0].http.paths[1].backend",
                    "port name or number is required",
                ),
                unsupported(
                    "spec.rules[0].http.paths[2].pathType",
                    "Regex",
                    &["Exact", "ImplementationSpecific", "Prefix"],
                ),
                invalid(
                    "spec.rules[0].http.paths[2].backend.service.name",
                    "\"Web\"",
                    DNS1035,
                ),
                invalid(
                    "spec.rules[0].http.paths[2].backend",
                    "\"\"",
                    "cannot set both port name & port number",
                ),
                invalid(
                    "spec.rules[0].http.paths[3].path",
                    "\"/b/../c\"",
                    "must not contain '/../'",
                ),
                invalid(
                    "spec.rules[0].http.paths[3].backend",
                    "\"\"",
                    "cannot set both resource and service backends",
                ),
                invalid("spec.rules[1].host", "\"*.*.example.com\"", WILDCARD),
                required("spec.rules[1].http.paths", ""),
                invalid("spec.tls[0].hosts[0]", "\"Bad_Host\"", SUBDOMAIN),
                invalid("spec.tls[0].secretName", "\"Not_Valid\"", SUBDOMAIN),
                invalid("spec.ingressClassName", "\"Bad Class\"", SUBDOMAIN),
            ],
        ),
        (
            INGRESS_CLASSES,
            networking(
                "IngressClass",
                "bad-class",
                json!({"spec": {"controller": "nginx",
                    "parameters": {"kind": "", "name": "p", "scope": "Cluster", "namespace": "ns"}}}),
            ),
            vec![
                invalid(
                    "spec.controller",
                    "\"nginx\"",
                    "must be a domain-prefixed path (such as \"acme.io/foo\")",
                ),
                required("spec.parameters.kind", ""),
                forbidden(
                    "spec.parameters.namespace",
                    "`parameters.scope` is set to 'Cluster'",
                ),
            ],
        ),
        (
            NETWORK_POLICIES,
            networking(
                "NetworkPolicy",
                "bad-policy",
                json!({"spec": {
                    "podSelector": {},
                    "ingress": [{
                        "ports": [{"protocol": "ICMP", "port": 0}, {"port": "http", "endPort": 90}],
                        "from": [{}, {"ipBlock": {"cidr": "10.0.0.1/8", "except": ["11.0.0.0/16"]}, "podSelector": {}}],
                    }],
                    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["010.1.0.0/16"]}}]}],
                    "policyTypes": ["Ingress", "Sideways"],
                }}),
            ),
            vec![
                unsupported(
                    "spec.ingress[0].ports[0].protocol",
                    "ICMP",
                    &["TCP", "UDP", "SCTP"],
                ),
                invalid(
                    "spec.ingress[0].ports[0].port",
                    "0",
                    "must be between 1 and 65535, inclusive",
                ),
                invalid(
                    "spec.ingress[0].ports[1].endPort",
                    "90",
                    "may not be specified when `port` is non-numeric",
                ),
                required("spec.ingress[0].from[0]", "must specify a peer"),
                invalid(
                    "spec.ingress[0].from[1].ipBlock.cidr",
                    "\"10.0.0.1/8\"",
                    "must not have bits set beyond the prefix length",
                ),
                invalid(
                    "spec.ingress[0].from[1].ipBlock.except[0]",
                    "\"11.0.0.0/16\"",
                    "must be a strict subset of `cidr`",
                ),
                forbidden(
                    "spec.ingress[0].from[1]",
                    "may not specify both ipBlock and another peer",
                ),
                invalid(
                    "spec.egress[0].to[0].ipBlock.except[0]",
                    "\"010.1.0.0/16\"",
                    "must not have leading 0s in IP or prefix length",
                ),
                unsupported("spec.policyTypes[1]", "Sideways", &["Ingress", "Egress"]),
            ],
        ),
        (
            STORAGE_CLASSES,
            object(
                "storage.k8s.io/v1",
                "StorageClass",
                "bad-class",
                json!({
                    "provisioner": "",
                    "reclaimPolicy": "Recycle",
                    "volumeBindingMode": "Later",
                    "allowedTopologies": [{"matchLabelExpressions": [
                        {"key": "zone", "values": []},
                        {"key": "zone", "values": ["a", "a"]},
                    ]}],
                }),
            ),
            vec![
                required("provisioner", ""),
                unsupported("reclaimPolicy", "Recycle", &["Delete", "Retain"]),
                unsupported(
                    "volumeBindingMode",
                    "Later",
                    &["Immediate", "WaitForFirstConsumer"],
                ),
                required("allowedTopologies[0].matchLabelExpressions[0].values", ""),
                duplicate(
                    "allowedTopologies[0].matchLabelExpressions[1].values[1]",
                    "a",
                ),
                duplicate("allowedTopologies[0].matchLabelExpressions[1].key", "zone"),
            ],
        ),
        (
            PVS,
            object(
                "v1",
                "PersistentVolume",
                "two-sources",
                json!({"spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOncePod", "ReadWriteOnce", "Sometimes"],
                    "hostPath": {"path": "/data"},
                    "nfs": {"server": "nfs.example.com", "path": "/exports"},
                    "persistentVolumeReclaimPolicy": "Keep",
                    "storageClassName": "Fast",
                    "volumeMode": "Raw",
                }}),
            ),
            vec![
                unsupported(
                    "spec.accessModes",
                    "Sometimes",
                    &[
                        "ReadOnlyMany",
                        "ReadWriteMany",
                        "ReadWriteOnce",
                        "ReadWriteOncePod",
                    ],
                ),
                forbidden(
                    "spec.accessModes",
                    "may not use ReadWriteOncePod with other access modes",
                ),
                unsupported(
                    "spec.persistentVolumeReclaimPolicy",
                    "Keep",
                    &["Delete", "Recycle", "Retain"],
                ),
                forbidden("spec.nfs", "may not specify more than 1 volume type"),
                invalid("spec.storageClassName", "\"Fast\"", SUBDOMAIN),
                unsupported("spec.volumeMode", "Raw", &["Block", "Filesystem"]),
            ],
        ),
        (
            PVS,
            object(
                "v1",
                "PersistentVolume",
                "local",
                json!({"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "local": {"path": ""}}}),
            ),
            vec![
                required("spec.local.path", ""),
                required("spec.nodeAffinity", "Local volume requires node affinity"),
            ],
        ),
        (
            PVS,
            object(
                "v1",
                "PersistentVolume",
                "no-source",
                json!({"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "zone", "operator": "In"}, {"key": "rack", "operator": "Near", "values": ["1"]}]}]}}}}),
            ),
            vec![
                required("spec", "must specify a volume type"),
                required(
                    "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values",
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ),
                invalid(
                    "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[1].operator",
                    "\"Near\"",
                    "not a valid selector operator",
                ),
            ],
        ),
        (
            PVCS,
            object(
                "v1",
                "PersistentVolumeClaim",
                "bad-claim",
                json!({"spec": {"accessModes": [], "volumeMode": "Raw",
                    "resources": {"requests": {"storage": "1Gi"}},
                    "dataSource": {"kind": "Snapshot", "name": "s"}}}),
            ),
            vec![
                required("spec.accessModes", "at least 1 access mode is required"),
                unsupported("spec.volumeMode", "Raw", &["Block", "Filesystem"]),
                invalid(
                    "spec.dataSource",
                    "\"Snapshot\"",
                    "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
                ),
            ],
        ),
        (
            VALIDATING,
            webhooks(
                "ValidatingWebhookConfiguration",
                "bad-hooks",
                json!([
                    {"name": "hook", "clientConfig": {"url": "http://example.com/x?y=1"}, "sideEffects": "Some",
                     "admissionReviewVersions": ["v2"], "timeoutSeconds": 31, "failurePolicy": "Sometimes",
                     "rules": [{"operations": ["*", "CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["*", "pods"]}]},
                    {"name": "hook", "clientConfig": {}, "sideEffects": "None", "admissionReviewVersions": ["v1"]},
                    {"name": "svc.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1", "v1"],
                     "clientConfig": {"service": {"name": "hooks", "namespace": "", "path": "validate", "port": 0}}},
                ]),
            ),
            vec![
                invalid(
                    "webhooks[0].name",
                    "\"hook\"",
                    "should be a domain with at least three segments separated by dots",
                ),
                invalid(
                    "webhooks[0].rules[0].operations",
                    "[]string{\"*\", \"CREATE\"}",
                    "if '*' is present, must not specify other operations",
                ),
                invalid(
                    "webhooks[0].rules[0].resources",
                    "[]string{\"*\", \"pods\"}",
                    "if '*' is present, must not specify other resources without subresources",
                ),
                unsupported(
                    "webhooks[0].failurePolicy",
                    "Sometimes",
                    &["Fail", "Ignore"],
                ),
                unsupported("webhooks[0].sideEffects", "Some", &["None", "NoneOnDryRun"]),
                invalid(
                    "webhooks[0].timeoutSeconds",
                    "31",
                    "the timeout value must be between 1 and 30 seconds",
                ),
                invalid(
                    "webhooks[0].clientConfig.url",
                    "\"http\"",
                    "'https' is the only allowed URL scheme; desired format: https://host[/path]",
                ),
                invalid(
                    "webhooks[0].clientConfig.url",
                    "\"y=1\"",
                    "query parameters are not permitted in the URL",
                ),
                invalid(
                    "webhooks[0].admissionReviewVersions",
                    "[]string{\"v2\"}",
                    "must include at least one of v1, v1beta1",
                ),
                invalid(
                    "webhooks[1].name",
                    "\"hook\"",
                    "should be a domain with at least three segments separated by dots",
                ),
                required(
                    "webhooks[1].clientConfig",
                    "exactly one of url or service is required",
                ),
                duplicate("webhooks[1].name", "hook"),
                // Kubernetes reports a missing service namespace at `name` (its arguments are
                // swapped).
                required(
                    "webhooks[2].clientConfig.service.name",
                    "service name is required",
                ),
                invalid(
                    "webhooks[2].clientConfig.service.port",
                    "0",
                    "port is not valid: must be between 1 and 65535, inclusive",
                ),
                invalid(
                    "webhooks[2].clientConfig.service.path",
                    "\"validate\"",
                    "must start with a '/'",
                ),
                invalid(
                    "webhooks[2].admissionReviewVersions[1]",
                    "\"v1\"",
                    "duplicate version",
                ),
            ],
        ),
    ]
}

#[tokio::test]
async fn invalid_objects_get_kubernetes_causes_and_are_not_stored() {
    let (_server, client) = start("validation-invalid").await;
    for (path, body, expected) in invalid_objects() {
        let name = body["metadata"]["name"].as_str().unwrap().to_owned();
        let response = send(&client, Method::POST, path, &body).await;
        assert_eq!(causes(&response), sorted(&expected), "{path} {name}");
        let (code, _) = client
            .send(Method::GET, &format!("{path}/{name}"), "", Vec::new())
            .await;
        assert_eq!(code, 404, "{path} {name} was stored");
    }
}

/// Creates `body` at `path`, expecting success; returns the stored object.
async fn create(client: &Raw, path: &str, body: &Value) -> Value {
    let (code, stored) = send(client, Method::POST, path, body).await;
    assert_eq!(code, 201, "{path}: {stored}");
    stored
}

/// PUTs `change(stored)` back and returns the answer.
async fn update(
    client: &Raw,
    path: &str,
    stored: &Value,
    change: impl Fn(&mut Value),
) -> (u16, Value) {
    let mut new = stored.clone();
    change(&mut new);
    let name = stored["metadata"]["name"].as_str().unwrap();
    send(client, Method::PUT, &format!("{path}/{name}"), &new).await
}

#[tokio::test]
async fn updates_that_change_what_kubernetes_fixes_are_refused() {
    let (_server, client) = start("validation-updates").await;

    // A binding's role reference never changes.
    let binding = create(
        &client,
        ROLE_BINDINGS,
        &rbac(
            "RoleBinding",
            "readers",
            json!({"roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}]}),
        ),
    )
    .await;
    assert_eq!(binding["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(
        binding["subjects"][0]["apiGroup"],
        "rbac.authorization.k8s.io"
    );
    let response = update(&client, ROLE_BINDINGS, &binding, |b| {
        b["roleRef"]["name"] = json!("edit")
    })
    .await;
    assert_eq!(
        causes(&response),
        sorted(&[invalid(
            "roleRef",
            "rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}",
            "cannot change roleRef",
        )])
    );
    let response = update(&client, ROLE_BINDINGS, &binding, |b| {
        b["subjects"] = json!([{"kind": "ServiceAccount", "name": "robot"}])
    })
    .await;
    assert_eq!(response.0, 200, "subjects may change: {}", response.1);

    // An ingress class's controller.
    let class = create(
        &client,
        INGRESS_CLASSES,
        &networking(
            "IngressClass",
            "nginx",
            json!({"spec": {"controller": "example.com/nginx",
            "parameters": {"kind": "Config", "name": "c"}}}),
        ),
    )
    .await;
    assert_eq!(class["spec"]["parameters"]["scope"], "Cluster");
    let response = update(&client, INGRESS_CLASSES, &class, |c| {
        c["spec"]["controller"] = json!("example.com/other")
    })
    .await;
    assert_eq!(
        causes(&response),
        sorted(&[invalid(
            "spec.controller",
            "\"example.com/other\"",
            "field is immutable"
        )])
    );

    // A storage class's provisioner, parameters, reclaim policy and binding mode.
    let sc = create(
        &client,
        STORAGE_CLASSES,
        &object(
            "storage.k8s.io/v1",
            "StorageClass",
            "fast",
            json!({"provisioner": "example.com/disk",
            "parameters": {"type": "ssd"}}),
        ),
    )
    .await;
    assert_eq!(sc["reclaimPolicy"], "Delete");
    assert_eq!(sc["volumeBindingMode"], "Immediate");
    let response = update(&client, STORAGE_CLASSES, &sc, |s| {
        s["provisioner"] = json!("example.com/other");
        s["parameters"] = json!({"type": "hdd"});
        s["reclaimPolicy"] = json!("Retain");
        s["volumeBindingMode"] = json!("WaitForFirstConsumer");
    })
    .await;
    assert_eq!(
        causes(&response),
        sorted(&[
            forbidden("parameters", "updates to parameters are forbidden."),
            forbidden("provisioner", "updates to provisioner are forbidden."),
            forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."),
            invalid(
                "volumeBindingMode",
                "\"WaitForFirstConsumer\"",
                "field is immutable"
            ),
        ])
    );
    let response = update(&client, STORAGE_CLASSES, &sc, |s| {
        s["allowVolumeExpansion"] = json!(true)
    })
    .await;
    assert_eq!(
        response.0, 200,
        "expansion may be allowed later: {}",
        response.1
    );

    // A volume's source.
    let pv = create(
        &client,
        PVS,
        &object(
            "v1",
            "PersistentVolume",
            "data",
            json!({"spec": {"capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"}}}),
        ),
    )
    .await;
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    let response = update(&client, PVS, &pv, |p| {
        p["spec"]["hostPath"]["path"] = json!("/other")
    })
    .await;
    let got = causes(&response);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "spec.persistentvolumesource");
    assert_eq!(got[0].1, "FieldValueForbidden");
    assert!(
        got[0]
            .2
            .starts_with("Forbidden: spec.persistentvolumesource is immutable after creation\n"),
        "{got:?}"
    );
    let response = update(&client, PVS, &pv, |p| {
        p["spec"]["capacity"]["storage"] = json!("2Gi")
    })
    .await;
    assert_eq!(response.0, 200, "capacity may change: {}", response.1);

    // A pending claim's spec, except the volume name (once) and a class where it had none.
    let pvc = create(
        &client,
        PVCS,
        &object(
            "v1",
            "PersistentVolumeClaim",
            "claim",
            json!({"spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}}),
        ),
    )
    .await;
    let response = update(&client, PVCS, &pvc, |c| {
        c["spec"]["resources"]["requests"]["storage"] = json!("2Gi")
    })
    .await;
    let got = causes(&response);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str()),
        ("spec", "FieldValueForbidden")
    );
    assert!(
        got[0].2.starts_with("Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"),
        "{got:?}"
    );
    let response = update(&client, PVCS, &pvc, |c| {
        c["spec"]["volumeName"] = json!("data");
        c["spec"]["storageClassName"] = json!("fast");
    })
    .await;
    assert_eq!(
        response.0, 200,
        "volume name and class may be set: {}",
        response.1
    );
    let response = update(&client, PVCS, &response.1, |c| {
        c["spec"]["volumeName"] = json!("other")
    })
    .await;
    assert_eq!(
        causes(&response).len(),
        1,
        "the volume name is set only once"
    );

    // A mutating webhook configuration without side effects may not gain some.
    let hooks = create(
        &client,
        MUTATING,
        &webhooks("MutatingWebhookConfiguration", "defaults", json!([{
            "name": "defaults.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {"namespace": "default", "name": "hooks", "path": "/mutate"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        }])),
    )
    .await;
    let hook = &hooks["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["matchPolicy"], "Equivalent");
    assert_eq!(hook["timeoutSeconds"], 10);
    assert_eq!(hook["reinvocationPolicy"], "Never");
    assert_eq!(hook["namespaceSelector"], json!({}));
    assert_eq!(hook["clientConfig"]["service"]["port"], 443);
    assert_eq!(hook["rules"][0]["scope"], "*");
    let response = update(&client, MUTATING, &hooks, |h| {
        h["webhooks"][0]["sideEffects"] = json!("Some")
    })
    .await;
    assert_eq!(
        causes(&response),
        sorted(&[unsupported(
            "webhooks[0].sideEffects",
            "Some",
            &["None", "NoneOnDryRun"]
        )])
    );

    // A network policy keeps a stored CIDR it could no longer be created with; here the stored
    // one is valid, so the check of a new one still applies.
    let policy = create(
        &client,
        NETWORK_POLICIES,
        &networking(
            "NetworkPolicy",
            "allow",
            json!({"spec": {"podSelector": {},
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"port": 53}]}]}}),
        ),
    )
    .await;
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(policy["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
    let response = update(&client, NETWORK_POLICIES, &policy, |p| {
        p["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] = json!("10.0.0.1/8")
    })
    .await;
    assert_eq!(
        causes(&response),
        sorted(&[invalid(
            "spec.egress[0].to[0].ipBlock.cidr",
            "\"10.0.0.1/8\"",
            "must not have bits set beyond the prefix length",
        )])
    );
}

/// The rows kubectl prints, each split into its cells (kubectl pads cells with 3 spaces).
fn rows(output: &str) -> Vec<Vec<String>> {
    output
        .lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn kubectl_prints_these_kinds_as_kube_apiserver_does() {
    let (server, client) = start("validation-printing").await;
    let role = create(
        &client,
        ROLES,
        &rbac(
            "Role",
            "reader",
            json!({"rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}),
        ),
    )
    .await;
    create(
        &client,
        ROLE_BINDINGS,
        &rbac(
            "RoleBinding",
            "readers",
            json!({"roleRef": {"kind": "Role", "name": "reader"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                         {"kind": "Group", "name": "devs"},
                         {"kind": "ServiceAccount", "name": "robot", "namespace": "default"}]}),
        ),
    )
    .await;
    let cluster_role = create(
        &client,
        CLUSTER_ROLES,
        &rbac(
            "ClusterRole",
            "watcher",
            json!({"rules": [{"verbs": ["watch"], "nonResourceURLs": ["/metrics"]}]}),
        ),
    )
    .await;
    create(
        &client,
        CLUSTER_ROLE_BINDINGS,
        &rbac(
            "ClusterRoleBinding",
            "watchers",
            json!({"roleRef": {"kind": "ClusterRole", "name": "watcher"},
            "subjects": [{"kind": "Group", "name": "ops"}]}),
        ),
    )
    .await;
    let quota = create(
        &client,
        QUOTAS,
        &object(
            "v1",
            "ResourceQuota",
            "compute",
            json!({"spec": {"hard": {"pods": "10", "requests.cpu": "1", "limits.memory": "2Gi"}}}),
        ),
    )
    .await;
    // The quota controller's job: report what is tracked and used.
    let mut with_status = quota.clone();
    with_status["status"] = json!({
        "hard": {"pods": "10", "requests.cpu": "1", "limits.memory": "2Gi"},
        "used": {"requests.cpu": "500m", "limits.memory": "1024Mi"},
    });
    let (code, body) = send(
        &client,
        Method::PUT,
        &format!("{QUOTAS}/compute/status"),
        &with_status,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    create(
        &client,
        VALIDATING,
        &webhooks("ValidatingWebhookConfiguration", "checks", json!([
            {"name": "a.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
             "clientConfig": {"url": "https://hooks.example.com/a"}},
            {"name": "b.example.com", "sideEffects": "NoneOnDryRun", "admissionReviewVersions": ["v1"],
             "clientConfig": {"url": "https://hooks.example.com/b"}},
        ])),
    )
    .await;
    create(
        &client,
        STORAGE_CLASSES,
        &object("storage.k8s.io/v1", "StorageClass", "fast", json!({
            "metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "example.com/disk", "volumeBindingMode": "WaitForFirstConsumer"})),
    )
    .await;

    // kubectl apply (a strategic merge patch on the second apply) works for the new kinds.
    let manifest = |timeout: u32| {
        format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata:\n  name: applied\nwebhooks:\n- name: applied.example.com\n  sideEffects: None\n  admissionReviewVersions: [v1]\n  timeoutSeconds: {timeout}\n  clientConfig:\n    url: https://hooks.example.com/m\n"
        )
    };
    server.apply(&manifest(5)).await;
    server.apply(&manifest(7)).await;
    let applied = server
        .get_json(&["mutatingwebhookconfigurations", "applied"])
        .await;
    assert_eq!(applied["webhooks"][0]["timeoutSeconds"], 7, "{applied}");

    let created = role["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases: Vec<(Vec<&str>, Vec<&str>, Vec<String>)> = vec![
        (
            vec!["get", "roles"],
            vec!["NAME", "CREATED AT"],
            vec!["reader".into(), created],
        ),
        (
            vec!["get", "rolebindings", "-o", "wide"],
            vec!["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"],
            vec![
                "readers".into(),
                "Role/reader".into(),
                "*".into(),
                "alice, bob".into(),
                "devs".into(),
                "default/robot".into(),
            ],
        ),
        (
            vec!["get", "clusterrolebindings", "watchers", "-o", "wide"],
            vec!["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"],
            vec![
                "watchers".into(),
                "ClusterRole/watcher".into(),
                "*".into(),
                "ops".into(),
            ],
        ),
        (
            vec!["get", "clusterroles", "watcher"],
            vec!["NAME", "CREATED AT"],
            vec![
                "watcher".into(),
                cluster_role["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ],
        ),
        (
            vec!["get", "resourcequotas"],
            vec!["NAME", "AGE", "REQUEST", "LIMIT"],
            vec![
                "compute".into(),
                "*".into(),
                "pods: 0/10, requests.cpu: 500m/1".into(),
                "limits.memory: 1Gi/2Gi".into(),
            ],
        ),
        (
            vec!["get", "validatingwebhookconfigurations"],
            vec!["NAME", "WEBHOOKS", "AGE"],
            vec!["checks".into(), "2".into(), "*".into()],
        ),
        (
            vec!["get", "storageclasses"],
            vec![
                "NAME",
                "PROVISIONER",
                "RECLAIMPOLICY",
                "VOLUMEBINDINGMODE",
                "ALLOWVOLUMEEXPANSION",
                "AGE",
            ],
            vec![
                "fast (default)".into(),
                "example.com/disk".into(),
                "Delete".into(),
                "WaitForFirstConsumer".into(),
                "false".into(),
                "*".into(),
            ],
        ),
    ];
    for (args, header, row) in cases {
        let output = server.kubectl(&args).await;
        let table = rows(&output);
        assert_eq!(table.len(), 2, "kubectl {args:?}:\n{output}");
        assert_eq!(table[0], header, "kubectl {args:?}:\n{output}");
        assert_eq!(table[1].len(), row.len(), "kubectl {args:?}:\n{output}");
        for (cell, want) in table[1].iter().zip(&row) {
            // `*` stands for an age, which depends on the clock.
            if want == "*" {
                assert!(
                    cell.ends_with('s') || cell.ends_with('m'),
                    "age {cell:?} in\n{output}"
                );
            } else {
                assert_eq!(cell, want, "kubectl {args:?}:\n{output}");
            }
        }
    }
}
