//! The apiserver driven by kube-rs, the Rust ecosystem's client: typed `Api` calls, the
//! metadata-only calls (`get_metadata`, `list_metadata`, `metadata_watcher`), what `delete`
//! answers per kind, and the `watcher`/`reflector` machinery controllers are built on, across an
//! apiserver restart.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Config};
use serde_json::json;
use support::{Backend, TestServer};

fn client(server: &TestServer) -> Client {
    let url = format!("http://{}", server.address).parse().unwrap();
    Client::try_from(Config::new(url)).unwrap()
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "app": "kube-rs" } },
        "data": { "value": value },
    }))
    .unwrap()
}

async fn typed_api_calls(server: &TestServer) {
    let api: Api<ConfigMap> = Api::namespaced(client(server), "default");
    let created = api
        .create(&PostParams::default(), &config_map("one", "1"))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    let mut fetched = api.get("one").await.unwrap();
    assert_eq!(fetched.data.as_ref().unwrap()["value"], "1");

    fetched.data = Some([("value".to_owned(), "2".to_owned())].into());
    let replaced = api
        .replace("one", &PostParams::default(), &fetched)
        .await
        .unwrap();
    // Replacing with the old resourceVersion again is a conflict (409).
    let err = api
        .replace("one", &PostParams::default(), &fetched)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err:?}"
    );

    let patch = json!({ "metadata": { "labels": { "patched": "yes" } } });
    let patched = api
        .patch("one", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["patched"], "yes");
    assert_ne!(
        patched.metadata.resource_version,
        replaced.metadata.resource_version
    );

    api.create(&PostParams::default(), &config_map("two", "2"))
        .await
        .unwrap();
    let listed = api
        .list(&ListParams::default().labels("app=kube-rs"))
        .await
        .unwrap();
    let names: Vec<_> = listed
        .items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["one", "two"]);
    // Pagination.
    let page = api.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let token = page.metadata.continue_.clone().expect("a continue token");
    let rest = api
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .unwrap();
    assert!(
        rest.items
            .iter()
            .all(|c| c.metadata.name != page.items[0].metadata.name)
    );

    api.delete("two", &DeleteParams::default()).await.unwrap();
    let err = api.get("two").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );

    // deletecollection with a selector removes exactly the matching objects.
    for name in ["keep", "drop-1", "drop-2"] {
        let mut cm = config_map(name, "x");
        if name.starts_with("drop") {
            cm.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert("drop".into(), "yes".into());
        }
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("drop=yes"),
    )
    .await
    .unwrap();
    let names: Vec<_> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(names, ["keep", "one"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_api_calls_on_the_embedded_store() {
    let server = TestServer::start(Backend::Embedded, "kube_rs_typed").await;
    typed_api_calls(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_api_calls_on_etcd() {
    let server = TestServer::start(Backend::Etcd, "kube_rs_typed").await;
    typed_api_calls(&server).await;
    server.stop().await;
}

/// Waits until the reflector's store holds exactly `names`.
async fn wait_for(reader: &reflector::Store<ConfigMap>, names: &[&str]) {
    let want: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let have: BTreeSet<String> = reader
            .state()
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        if have == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reflector has {have:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reflectors_follow_changes_across_a_restart(backend: Backend, streaming: bool) {
    let server = TestServer::start(backend, "kube_rs_watch").await;
    let api: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    api.create(&PostParams::default(), &config_map("before", "1"))
        .await
        .unwrap();

    let config = if streaming {
        watcher::Config::default().streaming_lists()
    } else {
        watcher::Config::default()
    };
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api.clone(), config.labels("app=kube-rs")))
        .default_backoff()
        .applied_objects();
    // Errors while the apiserver is down come through the stream and are retried with backoff.
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while stream.next().await.is_some() {}
    });
    wait_for(&reader, &["before"]).await;
    api.create(&PostParams::default(), &config_map("live", "1"))
        .await
        .unwrap();
    wait_for(&reader, &["before", "live"]).await;

    let server = server.restart().await;
    let api: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    api.create(&PostParams::default(), &config_map("after", "1"))
        .await
        .unwrap();
    api.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&reader, &["live", "after"]).await;
    task.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_survives_an_apiserver_restart_embedded() {
    reflectors_follow_changes_across_a_restart(Backend::Embedded, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_survives_an_apiserver_restart_etcd() {
    reflectors_follow_changes_across_a_restart(Backend::Etcd, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_reflector_survives_an_apiserver_restart() {
    reflectors_follow_changes_across_a_restart(Backend::Embedded, true).await;
}

fn pod(name: &str, node: Option<&str>) -> Pod {
    let mut pod = json!({
        "metadata": { "name": name, "labels": { "app": "meta" } },
        "spec": { "containers": [{ "name": "c", "image": "busybox" }] },
    });
    if let Some(node) = node {
        pod["spec"]["nodeName"] = json!(node);
    }
    serde_json::from_value(pod).unwrap()
}

/// kube-rs' metadata-only API: what the garbage collector and metadata informers use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_calls_and_watchers_see_only_metadata() {
    let server = TestServer::start(Backend::Embedded, "kube_rs_metadata").await;
    let pods: Api<Pod> = Api::namespaced(client(&server), "default");
    for name in ["m1", "m2"] {
        pods.create(&PostParams::default(), &pod(name, None))
            .await
            .unwrap();
    }
    let one = pods.get_metadata("m1").await.unwrap();
    let types = one.types.expect("type fields");
    assert_eq!(
        (types.api_version.as_str(), types.kind.as_str()),
        ("meta.k8s.io/v1", "PartialObjectMetadata")
    );
    assert_eq!(one.metadata.name.as_deref(), Some("m1"));
    assert!(one.metadata.uid.is_some());

    let list = pods
        .list_metadata(&ListParams::default().labels("app=meta"))
        .await
        .unwrap();
    assert_eq!(list.types.kind, "PartialObjectMetadataList");
    let names: Vec<_> = list
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(names, ["m1", "m2"]);

    // The watcher lists, then watches, metadata only: kube-runtime's `metadata_watcher` and
    // the `watcher` over `Api<PartialObjectMeta<_>>` that replaces it.
    let config = || watcher::Config::default().labels("app=meta");
    #[allow(deprecated)]
    let old = kube::runtime::metadata_watcher(pods.clone(), config()).boxed();
    let metadata_pods: Api<PartialObjectMeta<Pod>> = Api::namespaced(client(&server), "default");
    let new = watcher(metadata_pods, config()).boxed();
    for (i, stream) in [old, new].into_iter().enumerate() {
        let mut stream = stream.applied_objects();
        let mut next = async || {
            let item = tokio::time::timeout(Duration::from_secs(30), stream.next())
                .await
                .expect("an event within 30 s")
                .expect("the stream goes on")
                .expect("no watch error");
            assert_eq!(
                item.types.as_ref().map(|t| t.kind.as_str()),
                Some("PartialObjectMetadata")
            );
            item.metadata.name.unwrap()
        };
        // Listed first: the two pods, and the one the previous watcher saw created.
        let mut want: BTreeSet<String> = ["m1".to_owned(), "m2".to_owned()].into();
        want.extend((0..i).map(|j| format!("live-{j}")));
        let mut seen = BTreeSet::new();
        for _ in 0..want.len() {
            seen.insert(next().await);
        }
        assert_eq!(seen, want);
        // Live events come as metadata too.
        let name = format!("live-{i}");
        pods.create(&PostParams::default(), &pod(&name, None))
            .await
            .unwrap();
        assert_eq!(next().await, name);
    }
    server.stop().await;
}

/// `Api::delete` gives the object (`Left`) where kube-apiserver returns it and a `Status`
/// (`Right`) where it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_answer_with_the_object_or_a_status_as_kubernetes_does() {
    let server = TestServer::start(Backend::Embedded, "kube_rs_delete").await;
    let services: Api<Service> = Api::namespaced(client(&server), "default");
    let service: Service = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": { "ports": [{ "port": 80 }] },
    }))
    .unwrap();
    let created = services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let deleted = services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("a Service delete answers with the Service");
    assert_eq!(deleted.metadata.uid, created.metadata.uid);
    assert!(deleted.spec.unwrap().cluster_ip.is_some());

    let config_maps: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    config_maps
        .create(&PostParams::default(), &config_map("gone", "1"))
        .await
        .unwrap();
    let status = config_maps
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap()
        .right()
        .expect("a ConfigMap delete answers with a Status");
    assert_eq!(
        status.status,
        Some(kube::core::response::StatusSummary::Success)
    );

    // A scheduled pod waits for its kubelet: the answer is the pod, marked.
    let pods: Api<Pod> = Api::namespaced(client(&server), "default");
    pods.create(&PostParams::default(), &pod("graceful", Some("node-a")))
        .await
        .unwrap();
    let marked = pods
        .delete("graceful", &DeleteParams::default().grace_period(20))
        .await
        .unwrap()
        .left()
        .expect("a pod being deleted is answered");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(20));
    assert!(pods.get("graceful").await.is_ok(), "still there");
    server.stop().await;
}
