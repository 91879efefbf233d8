//! The seed document's manifests (`shared/seed/kubernetes-overview.txt`), applied with the real
//! kubectl. Only what is invalid against Kubernetes v1.37 is fixed, and each fix is named:
//! deprecated API versions (apps/v1beta2, batch/v1beta1, extensions/v1beta1), the old Ingress
//! backend shape, misplaced or misspelled fields (Job `backoffLimit`/`restartPolicy`, PVC
//! `storageClass`, ClusterRole `Resources`, a volumeMount `path`), a volume name that is not a
//! DNS label, and a Secret value that is not valid base64. The originals' mistakes are also
//! applied as they are, to check they are rejected the way Kubernetes rejects them.

mod support;

use support::{Backend, TestServer};

const DEPLOYMENT_MATCH_LABELS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  annotations:
    description: "nginx frontend"
  labels:
    app: nginx
    tier: frontend
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
      tier: frontend
  template:
    metadata:
      labels:
        app: nginx
        tier: frontend
    spec:
      containers:
        - name: nginx
          image: nginx:latest
          ports:
            - containerPort: 80
"#;

const DEPLOYMENT_MATCH_EXPRESSIONS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-set-based
  annotations:
    description: "nginx frontend"
  labels:
    app: nginx
    tier: frontend
spec:
  replicas: 3
  minReadySeconds: 10
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 5
      maxUnavailable: 2
  selector:
    matchExpressions:
      - {key: app, operator: In, values: [nginx]}
      - {key: tier, operator: In, values: [frontend]}
  template:
    metadata:
      labels:
        app: nginx
        tier: frontend
    spec:
      containers:
        - name: nginx
          image: nginx:latest
          ports:
            - containerPort: 80
"#;

const REPLICA_SET: &str = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: nginx
  annotations:
    description: "nginx frontend"
  labels:
    app: nginx
    tier: frontend
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
      tier: frontend
  template:
    metadata:
      labels:
        app: nginx
        tier: frontend
    spec:
      containers:
        - name: nginx
          image: nginx:latest
          ports:
            - containerPort: 80
"#;

const STATEFUL_SET: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: nginx
spec:
  serviceName: "nginx"
  replicas: 2
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
        - name: nginx
          image: nginx:latest
          ports:
            - containerPort: 80
              name: web
          volumeMounts:
            - name: www
              mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
    - metadata:
        name: www
      spec:
        accessModes: [ "ReadWriteOnce" ]
        resources:
          requests:
            storage: 1Gi
"#;

const DAEMON_SET: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: nginx
  namespace: kube-system
  labels:
    app: nginx
spec:
  selector:
    matchLabels:
      name: nginx
  template:
    metadata:
      labels:
        name: nginx
    spec:
      tolerations:
        - key: node-role.kubernetes.io/master
          effect: NoSchedule
      containers:
        - name: nginx
          image: nginx:latest
          ports:
            - containerPort: 80
              name: web
"#;

// Fixed: `restartPolicy` belongs to the pod spec and `backoffLimit` to the job spec.
const JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: hello
spec:
  completions: 10
  parallelism: 2
  backoffLimit: 4
  template:
    metadata:
      name: hello
    spec:
      containers:
      - name: hello
        image: alpine:latest
        command: ["echo", "hello there!"]
      restartPolicy: Never
"#;

const CRON_JOB: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
spec:
  schedule: "30 8 * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          name: hello
        spec:
          containers:
            - name: hello
              image: alpine:latest
              command: ["echo", "hello there!"]
          restartPolicy: OnFailure
"#;

const SERVICE: &str = r#"
kind: Service
apiVersion: v1
metadata:
  name: nginx
spec:
  type: ClusterIP
  selector:
    app: nginx
  ports:
    - protocol: TCP
      port: 80
      targetPort: 80
"#;

// Fixed: networking.k8s.io/v1's backend shape and a required pathType.
const INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  annotations:
    kubernetes.io/ingress.class: "nginx"
  name: nginx-ingress
spec:
  rules:
  - host: foo.bar.com
    http:
      paths:
      - path: /nginx
        pathType: Prefix
        backend:
          service:
            name: nginx
            port:
              number: 80
"#;

const POD_EMPTY_DIR: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: nginx
spec:
  containers:
  - image: nginx:latest
    name: nginx
    volumeMounts:
    - mountPath: /usr/share/nginx/html
      name: www
  volumes:
  - name: www
    emptyDir: {}
"#;

// Fixed: a concrete volume ID in place of the placeholder; a separate name.
const POD_EBS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: nginx-ebs
spec:
  containers:
  - image: nginx:latest
    name: nginx
    volumeMounts:
    - mountPath: /usr/share/nginx/html
      name: www
  volumes:
  - name: www
    awsElasticBlockStore:
      volumeID: vol-0123456789abcdef0
      fsType: ext4
"#;

const PERSISTENT_VOLUME: &str = r#"
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pv-nfs
spec:
  capacity:
    storage: 500Gi
  volumeMode: Filesystem
  accessModes:
    - ReadWriteMany
  persistentVolumeReclaimPolicy: Recycle
  storageClassName: slow
  mountOptions:
    - hard
    - nfsvers=4.1
  nfs:
    path: /data
    server: 10.255.100.10
"#;

// Fixed: `storageClassName`, not `storageClass`.
const PERSISTENT_VOLUME_CLAIM: &str = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: my-nfs-pvc
spec:
  accessModes:
    - ReadWriteMany
  resources:
    requests:
      storage: 50Gi
  storageClassName: slow
"#;

const STORAGE_CLASS: &str = r#"
kind: StorageClass
apiVersion: storage.k8s.io/v1
metadata:
  name: fast
provisioner: kubernetes.io/rbd
reclaimPolicy: Delete
parameters:
  monitors: 10.16.153.105:6789
  adminId: kube
  adminSecretName: ceph-secret
  adminSecretNamespace: kube-system
  pool: kube
  userId: kube
  userSecretName: ceph-secret-user
  fsType: ext4
  imageFormat: "2"
  imageFeatures: "layering"
"#;

// Fixed: `mountPath`, not `path`; a volume name that is a DNS label.
const POD_CONFIG_MAP: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: nginx-config
spec:
  containers:
    - image: nginx:latest
      name: nginx
      volumeMounts:
        - name: my-config-map
          mountPath: /etc/config
  volumes:
    - name: my-config-map
      configMap:
        name: my-cm
"#;

const POD_SECRET_ENV: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: nginx-secret
spec:
  containers:
    - image: nginx:latest
      name: nginx
      env:
        - name: USERNAME
          valueFrom:
            secretKeyRef:
              name: my-secret
              key: username
"#;

const CONFIG_MAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: my-cm
data:
  name: mydata.txt
  contents: |
    you can store
    multiline content
    and configfiles
"#;

// Fixed: `aGVycGRlcA==` (the seed's value lacks a padding character).
const SECRET: &str = r#"
apiVersion: v1
kind: Secret
metadata:
  name: my-secret
data:
  username: aGVycGRlcA==
  password: aW1tYWVnbXB1dGVy
"#;

// Fixed: `resources`, not `Resources`.
const CLUSTER_ROLE: &str = r#"
kind: ClusterRole
apiVersion: rbac.authorization.k8s.io/v1
metadata:
  name: monitor-things
rules:
- apiGroups: [""]
  resources: ["services", "endpoints", "pods"]
  verbs: ["get", "list", "watch"]
"#;

const CLUSTER_ROLE_BINDING: &str = r#"
kind: ClusterRoleBinding
apiVersion: rbac.authorization.k8s.io/v1
metadata:
  name: monitor-things
subjects:
- kind: User
  name: bob
  apiGroup: rbac.authorization.k8s.io
roleRef:
  kind: ClusterRole
  name: monitor-things
  apiGroup: rbac.authorization.k8s.io
"#;

/// (manifest, the `kind/name` kubectl reports, `-n` namespace)
const MANIFESTS: &[(&str, &str, &str)] = &[
    (DEPLOYMENT_MATCH_LABELS, "deployment.apps/nginx", "default"),
    (
        DEPLOYMENT_MATCH_EXPRESSIONS,
        "deployment.apps/nginx-set-based",
        "default",
    ),
    (REPLICA_SET, "replicaset.apps/nginx", "default"),
    (STATEFUL_SET, "statefulset.apps/nginx", "default"),
    (DAEMON_SET, "daemonset.apps/nginx", "kube-system"),
    (JOB, "job.batch/hello", "default"),
    (CRON_JOB, "cronjob.batch/hello", "default"),
    (SERVICE, "service/nginx", "default"),
    (
        INGRESS,
        "ingress.networking.k8s.io/nginx-ingress",
        "default",
    ),
    (POD_EMPTY_DIR, "pod/nginx", "default"),
    (POD_EBS, "pod/nginx-ebs", "default"),
    (PERSISTENT_VOLUME, "persistentvolume/pv-nfs", ""),
    (
        PERSISTENT_VOLUME_CLAIM,
        "persistentvolumeclaim/my-nfs-pvc",
        "default",
    ),
    (STORAGE_CLASS, "storageclass.storage.k8s.io/fast", ""),
    (POD_CONFIG_MAP, "pod/nginx-config", "default"),
    (POD_SECRET_ENV, "pod/nginx-secret", "default"),
    (CONFIG_MAP, "configmap/my-cm", "default"),
    (SECRET, "secret/my-secret", "default"),
    (
        CLUSTER_ROLE,
        "clusterrole.rbac.authorization.k8s.io/monitor-things",
        "",
    ),
    (
        CLUSTER_ROLE_BINDING,
        "clusterrolebinding.rbac.authorization.k8s.io/monitor-things",
        "",
    ),
];

async fn the_seed_story(s: &TestServer) {
    for (manifest, reported, _) in MANIFESTS {
        let out = s.apply(manifest).await;
        assert_eq!(out.trim(), format!("{reported} created"));
    }
    // Every object reads back, in every output format kubectl users reach for.
    for (_, reported, ns) in MANIFESTS {
        let ns_args: Vec<&str> = if ns.is_empty() {
            vec![]
        } else {
            vec!["-n", ns]
        };
        for format in [None, Some("wide"), Some("yaml"), Some("json"), Some("name")] {
            let mut args = vec!["get", *reported];
            args.extend(&ns_args);
            if let Some(format) = format {
                args.extend(["-o", format]);
            }
            let out = s.kubectl(&args).await;
            assert!(!out.trim().is_empty(), "kubectl {args:?} printed nothing");
        }
        let mut args = vec!["describe", *reported];
        args.extend(&ns_args);
        let described = s.kubectl(&args).await;
        let name = reported.rsplit('/').next().unwrap();
        assert!(
            described.contains("Name:") && described.contains(name),
            "{described}"
        );
    }
    // Set-based and equality-based selectors pick the seed's frontend tier.
    let frontend = s
        .kubectl(&[
            "get",
            "deployments,replicasets",
            "-l",
            "tier in (frontend)",
            "-o",
            "name",
        ])
        .await;
    let mut frontend: Vec<&str> = frontend.lines().collect();
    frontend.sort();
    assert_eq!(
        frontend,
        [
            "deployment.apps/nginx",
            "deployment.apps/nginx-set-based",
            "replicaset.apps/nginx"
        ]
    );
    let d = s.get_json(&["deployment", "nginx-set-based"]).await;
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 5);
    assert_eq!(d["spec"]["selector"]["matchExpressions"][1]["key"], "tier");
    let table = s.kubectl(&["get", "deployments"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert!(table.contains("0/3"), "{table}");
    let secret = s.get_json(&["secret", "my-secret"]).await;
    assert_eq!(secret["type"], "Opaque");
    let pv = s.kubectl(&["get", "pv"]).await;
    assert!(
        pv.contains("500Gi") && pv.contains("RWX") && pv.contains("Recycle"),
        "{pv}"
    );
    let sc = s.kubectl(&["get", "storageclass", "fast"]).await;
    let header: Vec<&str> = sc.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "PROVISIONER",
            "RECLAIMPOLICY",
            "VOLUMEBINDINGMODE",
            "ALLOWVOLUMEEXPANSION",
            "AGE"
        ]
    );
    assert!(
        sc.contains("kubernetes.io/rbd") && sc.contains("Immediate"),
        "{sc}"
    );
    let ingress = s.kubectl(&["get", "ingress"]).await;
    assert!(ingress.contains("foo.bar.com"), "{ingress}");
    let binding = s
        .kubectl(&["get", "clusterrolebinding", "monitor-things", "-o", "wide"])
        .await;
    assert!(
        binding.contains("ClusterRole/monitor-things") && binding.contains("bob"),
        "{binding}"
    );
    let job = s.get_json(&["job", "hello"]).await;
    assert_eq!(job["spec"]["backoffLimit"], 4);
    let uid = job["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["job-name"],
        "hello"
    );
}

async fn the_seed_mistakes_are_rejected(s: &TestServer) {
    // As printed in the seed: what Kubernetes v1.37 says about each.
    let cases: &[(&str, &str)] = &[
        (
            "apiVersion: apps/v1beta2\nkind: Deployment\nmetadata:\n  name: old\n",
            "apps/v1beta2",
        ),
        (
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: c\nspec:\n  storageClass: slow\n",
            "unknown field \"spec.storageClass\"",
        ),
        (
            "kind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\nmetadata:\n  name: r\nrules:\n- apiGroups: [\"\"]\n  Resources: [\"pods\"]\n  verbs: [\"get\"]\n",
            "unknown field \"rules[0].Resources\"",
        ),
    ];
    for (manifest, expected) in cases {
        let err = s.kubectl_fails(&["apply", "-f", "-"], Some(manifest)).await;
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_manifests_on_the_embedded_store() {
    let server = TestServer::start(Backend::Embedded, "seed").await;
    the_seed_story(&server).await;
    the_seed_mistakes_are_rejected(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_manifests_on_etcd() {
    let server = TestServer::start(Backend::Etcd, "seed").await;
    the_seed_story(&server).await;
    the_seed_mistakes_are_rejected(&server).await;
    server.stop().await;
}
