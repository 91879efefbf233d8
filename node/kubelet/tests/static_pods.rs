//! Static pods against a real apiserver (no runtime needed): a manifest file becomes a mirror
//! pod bound to the node, a changed file replaces it, a removed file deletes it; a manifest
//! URL works the same way.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use skiff_apiserver::testing::ControlPlane;
use skiff_kubelet::static_pods::{self, Source};

const MANIFEST: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: static-web\n  namespace: kube-system\nspec:\n  containers:\n  - name: web\n    image: busybox:latest\n";

async fn sync(client: &kube::Client, sources: &[Source]) {
    let manifests = static_pods::read(sources).await;
    static_pods::sync(client, "node-s", &manifests)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_become_mirror_pods() {
    let dir = tempfile::tempdir().unwrap();
    let control = ControlPlane::start(dir.path(), None).await;
    let client = kube::Client::try_from(kube::Config::new(control.url.parse().unwrap())).unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let file = manifests.join("web.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    std::fs::write(manifests.join("notes.txt"), "not a manifest").unwrap();
    let sources = [Source::Dir(manifests.clone())];

    sync(&client, &sources).await;
    let mirror = pods.get("static-web-node-s").await.unwrap();
    assert_eq!(
        mirror.spec.as_ref().unwrap().node_name.as_deref(),
        Some("node-s")
    );
    let annotations = mirror.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["kubernetes.io/config.source"], "file");
    let first_uid = mirror.metadata.uid.clone();

    // Unchanged: nothing happens.
    sync(&client, &sources).await;
    assert_eq!(
        pods.get("static-web-node-s").await.unwrap().metadata.uid,
        first_uid
    );

    // Changed: the mirror pod is replaced by one of the new manifest (it may take a second
    // pass while the old one goes).
    std::fs::write(&file, MANIFEST.replace("busybox:latest", "nginx:latest")).unwrap();
    let mut replaced = None;
    for _ in 0..20 {
        sync(&client, &sources).await;
        if let Some(pod) = pods.get_opt("static-web-node-s").await.unwrap()
            && pod.metadata.uid != first_uid
        {
            replaced = Some(pod);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let replaced = replaced.expect("the mirror pod was replaced");
    assert_eq!(
        replaced.spec.unwrap().containers[0].image.as_deref(),
        Some("nginx:latest")
    );

    // Removed: the mirror pod goes.
    std::fs::remove_file(&file).unwrap();
    sync(&client, &sources).await;
    assert!(pods.get_opt("static-web-node-s").await.unwrap().is_none());

    // An HTTP source.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/pod.yaml", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let body = MANIFEST.replace("static-web", "from-url");
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    sync(&client, &[Source::Url(url)]).await;
    let from_url = pods.get("from-url-node-s").await.unwrap();
    assert_eq!(
        from_url.metadata.annotations.unwrap()["kubernetes.io/config.source"],
        "http"
    );
    control.stop().await;
}
