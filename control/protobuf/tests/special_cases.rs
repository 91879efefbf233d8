//! Bodies built field by field, for the cases kubectl's generators never produce: times, raw
//! documents, bytes, both forms of IntOrString, pointer zeros, inlined structs, malformed input.
//!
//! Field numbers are Kubernetes' (`protobuf:"..."` tags of k8s.io/api); the expected JSON is what
//! Go's `encoding/json` writes for the decoded struct.

use serde_json::{Value, json};
use skiff_protobuf::{DecodeError, decode, is_protobuf};

/// A protobuf message under construction (test-only encoder).
#[derive(Default, Clone)]
struct Msg(Vec<u8>);

impl Msg {
    fn new() -> Self {
        Msg::default()
    }

    fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, number: u32, wire: u8) {
        self.raw_varint(u64::from(number) << 3 | u64::from(wire));
    }

    /// A varint field; negative numbers are sign-extended, as Go encodes int32 and int64.
    fn int(mut self, number: u32, v: i64) -> Self {
        self.key(number, 0);
        self.raw_varint(v as u64);
        self
    }

    fn bytes(mut self, number: u32, b: &[u8]) -> Self {
        self.key(number, 2);
        self.raw_varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    fn str(self, number: u32, s: &str) -> Self {
        self.bytes(number, s.as_bytes())
    }

    fn msg(self, number: u32, m: Msg) -> Self {
        self.bytes(number, &m.0)
    }

    /// A map entry `{key = 1, value = 2}` of field `number`.
    fn entry(self, number: u32, key: &str, value: Msg) -> Self {
        self.msg(number, value.str(1, key))
    }
}

/// A map entry value that is a string.
fn sv(s: &str) -> Msg {
    Msg::new().str(2, s)
}

/// A map entry value that is a message.
fn mv(m: Msg) -> Msg {
    Msg::new().msg(2, m)
}

/// The full body: magic, then `runtime.Unknown{typeMeta, raw}`.
fn body(api_version: &str, kind: &str, raw: Msg) -> Vec<u8> {
    let type_meta = Msg::new().str(1, api_version).str(2, kind);
    let unknown = Msg::new().msg(1, type_meta).msg(2, raw);
    let mut out = b"k8s\0".to_vec();
    out.extend_from_slice(&unknown.0);
    out
}

fn quantity(s: &str) -> Msg {
    Msg::new().str(1, s)
}

fn int_or_string_int(v: i64) -> Msg {
    Msg::new().int(1, 0).int(2, v)
}

fn int_or_string_str(s: &str) -> Msg {
    Msg::new().int(1, 1).str(3, s)
}

fn time(seconds: i64, nanos: i64) -> Msg {
    Msg::new().int(1, seconds).int(2, nanos)
}

fn decoded(api_version: &str, kind: &str, raw: Msg) -> Value {
    decode(&body(api_version, kind, raw)).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

/// 2026-01-02T03:04:05Z.
const T: i64 = 1_767_323_045;

#[test]
fn configmap_with_data_binary_data_and_unknown_fields() {
    let cm = Msg::new()
        .msg(1, Msg::new().str(1, "cm").str(3, "default"))
        .entry(2, "a", sv("b"))
        .entry(2, "empty", sv(""))
        .entry(3, "bin", Msg::new().bytes(2, &[0xff, 0x00, 0x01]))
        // A field from a newer Kubernetes: skipped, as Go skips it.
        .str(999, "future");
    assert_eq!(
        decoded("v1", "ConfigMap", cm),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "default"},
            "data": {"a": "b", "empty": ""},
            "binaryData": {"bin": "/wAB"},
        })
    );
}

#[test]
fn secret_bytes_are_base64_and_pointer_false_is_kept() {
    let secret = Msg::new()
        .msg(1, Msg::new().str(1, "s"))
        .entry(2, "user", Msg::new().bytes(2, b"admin"))
        .entry(2, "blank", Msg::new().bytes(2, b""))
        .entry(2, "key", Msg::new().bytes(2, &[0xfb, 0xff]))
        .str(3, "Opaque")
        .int(5, 0);
    assert_eq!(
        decoded("v1", "Secret", secret),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s"},
            "data": {"user": "YWRtaW4=", "blank": "", "key": "+/8="},
            "type": "Opaque",
            "immutable": false,
        })
    );
}

#[test]
fn deployment_int_or_string_and_quantities() {
    let container = Msg::new().str(1, "web").str(2, "nginx").msg(
        8,
        Msg::new()
            .entry(1, "cpu", mv(quantity("500m")))
            .entry(1, "memory", mv(quantity("128Mi")))
            .entry(2, "cpu", mv(quantity("250m")))
            // A quantity entry without a value is Go's zero Quantity.
            .entry(2, "ephemeral-storage", Msg::new()),
    );
    let template = Msg::new()
        .msg(1, Msg::new().entry(11, "app", sv("web")))
        .msg(2, Msg::new().msg(2, container));
    let spec = Msg::new()
        .int(1, 3)
        .msg(2, Msg::new().entry(1, "app", sv("web")))
        .msg(3, template)
        .msg(
            4,
            Msg::new().str(1, "RollingUpdate").msg(
                2,
                Msg::new()
                    .msg(1, int_or_string_int(0))
                    .msg(2, int_or_string_str("25%")),
            ),
        )
        .int(5, 0);
    let deployment = Msg::new().msg(1, Msg::new().str(1, "web")).msg(2, spec);
    assert_eq!(
        decoded("apps/v1", "Deployment", deployment),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "web", "image": "nginx",
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "250m", "ephemeral-storage": "0"},
                        },
                    }]},
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
                },
            },
            // A non-pointer struct: Go always writes it, even empty.
            "status": {},
        })
    );
}

#[test]
fn service_target_port_as_int_and_as_string() {
    let spec = Msg::new()
        .msg(
            1,
            Msg::new()
                .str(1, "http")
                .str(2, "TCP")
                .int(3, 80)
                .msg(4, int_or_string_int(8080))
                // nodePort is a non-pointer int with omitempty: a zero means "unset".
                .int(5, 0),
        )
        .msg(
            1,
            Msg::new()
                .str(1, "https")
                .str(2, "TCP")
                .int(3, 443)
                .msg(4, int_or_string_str("https"))
                .int(5, 30443),
        )
        .entry(2, "app", sv("web"))
        .str(3, "")
        .str(4, "NodePort");
    let service = Msg::new().msg(1, Msg::new().str(1, "web")).msg(2, spec);
    assert_eq!(
        decoded("v1", "Service", service),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "https", "protocol": "TCP", "port": 443, "targetPort": "https",
                     "nodePort": 30443},
                ],
                "selector": {"app": "web"},
                "type": "NodePort",
            },
            "status": {"loadBalancer": {}},
        })
    );
}

#[test]
fn pod_inlined_structs_zero_values_and_creation_timestamp() {
    let volume = Msg::new().str(1, "config").msg(
        2,
        Msg::new().msg(19, Msg::new().msg(1, Msg::new().str(1, "cm")).int(3, 420)),
    );
    let env = Msg::new().str(1, "X").msg(
        3,
        Msg::new().msg(3, Msg::new().msg(1, Msg::new().str(1, "cm")).str(2, "a")),
    );
    let probe = Msg::new()
        .msg(
            1,
            Msg::new().msg(
                2,
                Msg::new()
                    .str(1, "/healthz")
                    .msg(2, int_or_string_str("http")),
            ),
        )
        .int(4, 5)
        .int(2, 0);
    let container = Msg::new()
        .str(1, "app")
        .str(2, "busybox")
        .msg(7, env)
        .msg(11, probe)
        .msg(8, Msg::new())
        .int(16, 0) // stdin: non-pointer false, left out
        .str(14, ""); // imagePullPolicy: non-pointer "", left out
    let spec = Msg::new()
        .msg(1, volume)
        .msg(2, container)
        .str(3, "") // restartPolicy "" is unset: defaulting must still see it missing
        .int(4, 0) // terminationGracePeriodSeconds: pointer, 0 means "kill now"
        .int(11, 0) // hostNetwork: non-pointer false
        .msg(14, Msg::new().int(2, 0).msg(4, Msg::new())) // runAsUser 0 is root, kept
        .int(21, 0); // automountServiceAccountToken: pointer false, kept
    let meta = Msg::new()
        .str(1, "p")
        .str(2, "")
        .str(3, "default")
        .int(7, 0)
        .msg(8, time(T, 999_999_999)) // Kubernetes drops the nanoseconds of a Time
        .entry(11, "app", sv("p"));
    let pod = Msg::new().msg(1, meta).msg(2, spec);
    assert_eq!(
        decoded("v1", "Pod", pod),
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "p", "namespace": "default",
                "creationTimestamp": "2026-01-02T03:04:05Z",
                "labels": {"app": "p"},
            },
            "spec": {
                "volumes": [{"name": "config", "configMap": {"name": "cm", "defaultMode": 420}}],
                "containers": [{
                    "name": "app", "image": "busybox",
                    "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a"}}}],
                    "resources": {},
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                }],
                "terminationGracePeriodSeconds": 0,
                "securityContext": {"runAsUser": 0},
                "automountServiceAccountToken": false,
            },
            "status": {},
        })
    );
}

#[test]
fn zero_creation_timestamp_is_left_out_and_epoch_is_not() {
    let zero = Msg::new().msg(1, Msg::new().str(1, "a").msg(8, Msg::new()));
    assert_eq!(
        decoded("v1", "Namespace", zero)["metadata"],
        json!({"name": "a"})
    );
    let epoch = Msg::new().msg(1, Msg::new().str(1, "a").msg(8, time(0, 0)));
    assert_eq!(
        decoded("v1", "Namespace", epoch)["metadata"]["creationTimestamp"],
        "1970-01-01T00:00:00Z"
    );
    // deletionTimestamp is a *Time: absent is left out.
    let deleting = Msg::new().msg(1, Msg::new().str(1, "a").msg(9, time(T, 0)));
    assert_eq!(
        decoded("v1", "Namespace", deleting)["metadata"],
        json!({"name": "a", "deletionTimestamp": "2026-01-02T03:04:05Z"})
    );
}

#[test]
fn micro_time_and_zero_times_in_events() {
    let event = Msg::new()
        .msg(1, Msg::new().str(1, "e"))
        .msg(2, time(T, 123_456_789))
        .str(7, "Started");
    assert_eq!(
        decoded("events.k8s.io/v1", "Event", event),
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"},
            "eventTime": "2026-01-02T03:04:05.123456Z",
            "reason": "Started",
            "regarding": {},
            "deprecatedSource": {},
            // Non-pointer Times without omitzero: Go writes the zero time as null.
            "deprecatedFirstTimestamp": null,
            "deprecatedLastTimestamp": null,
        })
    );
}

#[test]
fn raw_extension_and_fields_v1_hold_json() {
    let managed = Msg::new()
        .str(1, "kubectl")
        .str(2, "Update")
        .str(3, "apps/v1")
        .msg(4, time(T, 0))
        .str(6, "FieldsV1")
        .msg(7, Msg::new().bytes(1, br#"{"f:data":{".":{}}}"#));
    let revision = Msg::new()
        .msg(1, Msg::new().str(1, "rev").msg(17, managed))
        .msg(2, Msg::new().bytes(1, br#"{"spec":{"replicas":2}}"#))
        .int(3, 2);
    assert_eq!(
        decoded("apps/v1", "ControllerRevision", revision),
        json!({
            "apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {
                "name": "rev",
                "managedFields": [{
                    "manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
                    "time": "2026-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {".": {}}},
                }],
            },
            "data": {"spec": {"replicas": 2}},
            "revision": 2,
        })
    );
}

#[test]
fn raw_extension_may_hold_a_nested_protobuf_object() {
    let cm = body(
        "v1",
        "ConfigMap",
        Msg::new().msg(1, Msg::new().str(1, "inner")),
    );
    let revision = Msg::new()
        .msg(1, Msg::new().str(1, "rev"))
        .msg(2, Msg::new().bytes(1, &cm))
        .int(3, 1);
    assert_eq!(
        decoded("apps/v1", "ControllerRevision", revision)["data"],
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inner"}})
    );
}

#[test]
fn cronjob_pointer_zeros_survive() {
    let spec = Msg::new()
        .str(1, "*/5 * * * *")
        .int(4, 0) // suspend: false
        .msg(5, Msg::new())
        .int(6, 0) // successfulJobsHistoryLimit: 0
        .str(8, "Etc/UTC");
    let cronjob = Msg::new().msg(1, Msg::new().str(1, "cj")).msg(2, spec);
    let got = decoded("batch/v1", "CronJob", cronjob);
    assert_eq!(
        got["spec"],
        json!({
            "schedule": "*/5 * * * *",
            "suspend": false,
            "jobTemplate": {
                "metadata": {},
                // containers has no omitempty: a nil slice is null, as Go writes it.
                "spec": {"template": {"metadata": {}, "spec": {"containers": null}}},
            },
            "successfulJobsHistoryLimit": 0,
            "timeZone": "Etc/UTC",
        })
    );
}

#[test]
fn negative_int32_and_packed_repeated_int64() {
    let pc = Msg::new().msg(1, Msg::new().str(1, "low")).int(2, -5);
    assert_eq!(
        decoded("scheduling.k8s.io/v1", "PriorityClass", pc)["value"],
        -5
    );

    let mut packed = Msg::new();
    for v in [1u64, 2, 300] {
        packed.raw_varint(v);
    }
    let security = Msg::new().bytes(4, &packed.0).int(4, 4);
    let pod = Msg::new().msg(2, Msg::new().msg(14, security));
    assert_eq!(
        decoded("v1", "Pod", pod)["spec"]["securityContext"]["supplementalGroups"],
        json!([1, 2, 300, 4])
    );
}

#[test]
fn repeated_occurrences_of_a_message_field_merge() {
    // Protobuf merges two occurrences of a non-repeated message field.
    let cm = Msg::new()
        .msg(1, Msg::new().str(1, "cm"))
        .msg(1, Msg::new().str(3, "ns"));
    assert_eq!(
        decoded("v1", "ConfigMap", cm)["metadata"],
        json!({"name": "cm", "namespace": "ns"})
    );
}

#[test]
fn meta_kinds_are_found_under_every_group_version() {
    let opts = Msg::new().int(1, 0).str(4, "Foreground").str(5, "All");
    assert_eq!(
        decoded("apps/v1", "DeleteOptions", opts),
        json!({
            "apiVersion": "apps/v1", "kind": "DeleteOptions",
            "gracePeriodSeconds": 0, "propagationPolicy": "Foreground", "dryRun": ["All"],
        })
    );
}

#[test]
fn other_groups_resolve() {
    for (api_version, kind) in [
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("networking.k8s.io/v1", "Ingress"),
        ("policy/v1", "PodDisruptionBudget"),
        ("policy/v1", "Eviction"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("autoscaling/v1", "Scale"),
        ("storage.k8s.io/v1", "StorageClass"),
        ("coordination.k8s.io/v1", "Lease"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
        ("authentication.k8s.io/v1", "TokenRequest"),
        ("certificates.k8s.io/v1", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
        (
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
        ),
        ("resource.k8s.io/v1", "ResourceClaim"),
    ] {
        let got = decoded(api_version, kind, Msg::new().msg(1, Msg::new().str(1, "x")));
        assert_eq!(got["kind"], kind);
        assert_eq!(got["metadata"]["name"], "x", "{api_version} {kind}");
    }
}

#[test]
fn json_names_that_differ_from_protobuf_names() {
    // IngressClassParametersReference: protobuf "aPIGroup", JSON "apiGroup".
    let params = Msg::new()
        .str(1, "example.com")
        .str(2, "Params")
        .str(3, "p");
    let class = Msg::new()
        .msg(1, Msg::new().str(1, "c"))
        .msg(2, Msg::new().str(1, "example.com/ctrl").msg(2, params));
    assert_eq!(
        decoded("networking.k8s.io/v1", "IngressClass", class)["spec"]["parameters"],
        // scope is a *string without omitempty: Go writes nil as null.
        json!({"apiGroup": "example.com", "kind": "Params", "name": "p", "scope": null})
    );
}

#[test]
fn json_content_type_in_the_envelope() {
    let type_meta = Msg::new().str(1, "v1").str(2, "ConfigMap");
    let unknown = Msg::new()
        .msg(1, type_meta)
        .bytes(2, br#"{"metadata":{"name":"j"}}"#)
        .str(4, "application/json");
    let mut body = b"k8s\0".to_vec();
    body.extend_from_slice(&unknown.0);
    assert_eq!(
        decode(&body).unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}})
    );
}

fn error(body: &[u8]) -> DecodeError {
    match decode(body) {
        Ok(v) => panic!("decoded {v}"),
        Err(e) => e,
    }
}

#[test]
fn bad_magic() {
    for body in [&b""[..], b"k8s", br#"{"kind":"ConfigMap"}"#, b"k8s\x01rest"] {
        let e = error(body);
        assert!(matches!(e, DecodeError::BadMagic), "{e}");
        assert!(e.to_string().contains("magic"), "{e}");
    }
}

#[test]
fn unknown_kind_and_group() {
    for (api_version, kind) in [
        ("v1", "Frobnicator"),
        ("example.com/v1", "ConfigMap"),
        ("apps/v2", "Deployment"),
    ] {
        let e = error(&body(api_version, kind, Msg::new()));
        match &e {
            DecodeError::UnknownKind {
                api_version: v,
                kind: k,
            } => assert_eq!((v.as_str(), k.as_str()), (api_version, kind)),
            other => panic!("{other}"),
        }
        let text = e.to_string();
        assert!(text.contains(kind) && text.contains(api_version), "{text}");
    }
}

#[test]
fn missing_type_meta() {
    let unknown = Msg::new().msg(2, Msg::new());
    let mut body = b"k8s\0".to_vec();
    body.extend_from_slice(&unknown.0);
    assert!(matches!(error(&body), DecodeError::MissingTypeMeta));
}

#[test]
fn content_encoding_and_type_are_refused() {
    let type_meta = Msg::new().str(1, "v1").str(2, "ConfigMap");
    let gzip = Msg::new().msg(1, type_meta.clone()).str(3, "gzip");
    let mut body = b"k8s\0".to_vec();
    body.extend_from_slice(&gzip.0);
    assert!(matches!(
        error(&body),
        DecodeError::UnsupportedContentEncoding(e) if e == "gzip"
    ));
    let yaml = Msg::new().msg(1, type_meta).str(4, "application/yaml");
    let mut body = b"k8s\0".to_vec();
    body.extend_from_slice(&yaml.0);
    assert!(matches!(
        error(&body),
        DecodeError::UnsupportedContentType(_)
    ));
}

#[test]
fn malformed_protobuf() {
    // A truncated envelope.
    assert!(matches!(
        error(b"k8s\0\x0a\x05\x0a"),
        DecodeError::BadEnvelope(_)
    ));
    // An object whose length prefix runs past the end.
    let mut raw = Msg::new();
    raw.0.extend_from_slice(&[0x0a, 0x7f, 0x0a]);
    let e = error(&body("v1", "ConfigMap", raw));
    assert!(
        matches!(&e, DecodeError::Malformed { at, .. } if at.contains("core/v1.ConfigMap")),
        "{e}"
    );
    // A string field sent as a varint.
    let e = error(&body(
        "v1",
        "ConfigMap",
        Msg::new().msg(1, Msg::new().int(1, 7)),
    ));
    assert!(
        matches!(&e, DecodeError::Malformed { at, .. } if at.ends_with("ObjectMeta.name")),
        "{e}"
    );
    // An IntOrString of an impossible type.
    let port = Msg::new().int(1, 7);
    let svc = Msg::new().msg(2, Msg::new().msg(1, Msg::new().msg(4, port)));
    let e = error(&body("v1", "Service", svc));
    assert!(e.to_string().contains("IntOrString"), "{e}");
    // A RawExtension that is not JSON.
    let rev = Msg::new().msg(2, Msg::new().bytes(1, b"{not json"));
    let e = error(&body("apps/v1", "ControllerRevision", rev));
    assert!(e.to_string().contains("not JSON"), "{e}");
    // Field number 0 and groups.
    for bytes in [&[0x00u8, 0x01][..], &[0x0b]] {
        let mut raw = Msg::new();
        raw.0.extend_from_slice(bytes);
        assert!(matches!(
            error(&body("v1", "ConfigMap", raw)),
            DecodeError::Malformed { .. }
        ));
    }
}

#[test]
fn hostile_nesting_is_an_error_not_a_stack_overflow() {
    let mut inner = body("apps/v1", "ControllerRevision", Msg::new());
    for _ in 0..200 {
        let rev = Msg::new().msg(2, Msg::new().bytes(1, &inner));
        inner = body("apps/v1", "ControllerRevision", rev);
    }
    let e = error(&inner);
    assert!(e.to_string().contains("nest too deeply"), "{e}");
}

#[test]
fn content_type_detection() {
    assert!(is_protobuf("application/vnd.kubernetes.protobuf"));
    assert!(is_protobuf(
        "application/vnd.kubernetes.protobuf; charset=utf-8"
    ));
    assert!(is_protobuf(
        "Application/VND.Kubernetes.Protobuf;stream=watch"
    ));
    assert!(is_protobuf(" application/vnd.kubernetes.protobuf "));
    assert!(!is_protobuf("application/json"));
    assert!(!is_protobuf("application/vnd.kubernetes.protobuf+json"));
    assert!(!is_protobuf(""));
}
