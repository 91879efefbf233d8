//! Static pods: pod manifests from a directory (the kubelet's `--pod-manifest-path`) and from
//! an HTTP URL (`--manifest-url`), the seed's "file path" and "HTTP endpoint" sources, kept as
//! mirror pods in the API under Kubernetes' naming and annotations.
//!
//! A manifest's pod is named `<name>-<node>`, bound to this node, and carries
//! `kubernetes.io/config.source`, `kubernetes.io/config.hash` and `kubernetes.io/config.mirror`
//! (the hash of the manifest as read). A changed manifest (another hash) replaces its mirror
//! pod; a removed one deletes it. The pod then runs like any pod bound to this node. A source
//! that cannot be read keeps the pods of its last good read ([`Reader`]): a failing or hostile
//! manifest server cannot make the node kill its static pods.
//! Difference from Kubernetes: the kubelet runs static pods from their mirror pods, so they
//! need the apiserver (Kubernetes runs them without one, to bootstrap a control plane).

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};

use crate::http_client::{self, Policy, Redirects, Scheme, Tls, Url};

/// Where static pods come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Every `*.yaml`, `*.yml` and `*.json` file of a directory (one pod each).
    Dir(PathBuf),
    /// One manifest served over plain HTTP (at most [`MAX_MANIFEST`]).
    Url(String),
}

impl Source {
    fn kind(&self) -> &'static str {
        match self {
            Source::Dir(_) => "file",
            Source::Url(_) => "http",
        }
    }
}

const SOURCE: &str = "kubernetes.io/config.source";
const HASH: &str = "kubernetes.io/config.hash";
const MIRROR: &str = "kubernetes.io/config.mirror";

/// One manifest as read: its text and where it came from.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub origin: String,
    pub source: &'static str,
    pub text: String,
}

/// Reads every manifest of `sources` once (a source that cannot be read is logged and
/// contributes nothing; [`Reader`] keeps its last good read instead).
pub async fn read(sources: &[Source]) -> Vec<Manifest> {
    let mut manifests = Vec::new();
    for source in sources {
        match read_source(source).await {
            Ok(read) => manifests.extend(read),
            Err(err) => tracing::warn!(%err, "reading static pods"),
        }
    }
    manifests
}

/// Reads the sources again and again, remembering each one's last good read: a source that
/// cannot be read (a URL that fails, answers too much or answers something that is no pod; a
/// directory gone) keeps the pods it had rather than deleting them, as Kubernetes' config
/// sources send no update on an error.
pub struct Reader {
    sources: Vec<Source>,
    last: Vec<Vec<Manifest>>,
}

impl Reader {
    pub fn new(sources: Vec<Source>) -> Reader {
        let last = vec![Vec::new(); sources.len()];
        Reader { sources, last }
    }

    /// Every source's manifests: as read now, or as last read where reading failed.
    pub async fn read(&mut self) -> Vec<Manifest> {
        for (source, last) in self.sources.iter().zip(&mut self.last) {
            match read_source(source).await {
                Ok(read) => *last = read,
                Err(err) => {
                    tracing::warn!(%err, kept = last.len(), "reading static pods: keeping the last read")
                }
            }
        }
        self.last.concat()
    }
}

/// One source's manifests, or why it cannot be read. A file that cannot be read is skipped
/// (the others of its directory still count); a URL's answer is one pod or an error.
async fn read_source(source: &Source) -> Result<Vec<Manifest>, String> {
    match source {
        Source::Dir(dir) => {
            let entries = std::fs::read_dir(dir)
                .map_err(|err| format!("static pod directory {}: {err}", dir.display()))?;
            let mut paths: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
                })
                .collect();
            paths.sort();
            let mut manifests = Vec::new();
            for path in paths {
                match std::fs::read_to_string(&path) {
                    Ok(text) => manifests.push(Manifest {
                        origin: path.display().to_string(),
                        source: source.kind(),
                        text,
                    }),
                    Err(err) => {
                        tracing::warn!(path = %path.display(), %err, "reading a static pod")
                    }
                }
            }
            Ok(manifests)
        }
        Source::Url(url) => {
            let text = http_get(url)
                .await
                .map_err(|err| format!("fetching static pods from {url}: {err:#}"))?;
            serde_saphyr::from_str::<Pod>(&text)
                .map_err(|err| format!("{url}: not a pod manifest: {err}"))?;
            Ok(vec![Manifest {
                origin: url.clone(),
                source: source.kind(),
                text,
            }])
        }
    }
}

/// The mirror pod of `manifest` on `node`, or why there is none.
pub fn mirror_pod(manifest: &Manifest, node: &str) -> Result<Pod, String> {
    let mut pod: Pod = serde_saphyr::from_str(&manifest.text)
        .map_err(|err| format!("{}: not a pod manifest: {err}", manifest.origin))?;
    let name = pod
        .metadata
        .name
        .clone()
        .ok_or_else(|| format!("{}: the pod has no name", manifest.origin))?;
    // A hash that stays the same across builds, or every upgrade would replace static pods.
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(manifest.text.as_bytes());
    hasher.update(node.as_bytes());
    let hash = format!("{:08x}", hasher.finalize());
    pod.metadata.name = Some(format!("{name}-{node}"));
    pod.metadata
        .namespace
        .get_or_insert_with(|| "default".to_owned());
    let annotations = pod.metadata.annotations.get_or_insert_default();
    annotations.insert(SOURCE.into(), manifest.source.into());
    annotations.insert(HASH.into(), hash.clone());
    annotations.insert(MIRROR.into(), hash);
    pod.metadata.resource_version = None;
    pod.metadata.uid = None;
    let spec = pod
        .spec
        .as_mut()
        .ok_or_else(|| format!("{}: the pod has no spec", manifest.origin))?;
    spec.node_name = Some(node.to_owned());
    pod.status = None;
    Ok(pod)
}

/// Makes this node's mirror pods exactly those of `manifests`: creates the missing, replaces
/// the changed (another hash), deletes those whose manifest is gone.
pub async fn sync(client: &Client, node: &str, manifests: &[Manifest]) -> anyhow::Result<()> {
    let mut desired: BTreeMap<(String, String), Pod> = BTreeMap::new();
    for manifest in manifests {
        match mirror_pod(manifest, node) {
            Ok(pod) => {
                let key = (pod.namespace().unwrap_or_default(), pod.name_any());
                desired.insert(key, pod);
            }
            Err(err) => tracing::warn!("{err}"),
        }
    }
    let all: Api<Pod> = Api::all(client.clone());
    let selector = format!("spec.nodeName={node}");
    let existing = all.list(&ListParams::default().fields(&selector)).await?;
    let mut present: BTreeMap<(String, String), String> = BTreeMap::new();
    for pod in existing {
        if let Some(hash) = pod.annotations().get(MIRROR) {
            present.insert(
                (pod.namespace().unwrap_or_default(), pod.name_any()),
                hash.clone(),
            );
        }
    }
    let now = DeleteParams::default().grace_period(0);
    for ((namespace, name), hash) in &present {
        let wanted = desired.get(&(namespace.clone(), name.clone()));
        if wanted.is_none_or(|pod| pod.annotations().get(MIRROR) != Some(hash)) {
            let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
            api.delete(name, &now).await?;
            tracing::info!(
                namespace,
                name,
                "static pod gone or changed: mirror pod deleted"
            );
        }
    }
    for ((namespace, name), pod) in desired {
        let current = present.get(&(namespace.clone(), name.clone()));
        if current == pod.annotations().get(MIRROR) {
            continue;
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        match api.create(&PostParams::default(), &pod).await {
            Ok(_) => tracing::info!(namespace, name, "static pod: mirror pod created"),
            // The old one is still being deleted: the next pass creates it.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Keeps the mirror pods in step with `sources`, every `period`, until dropped.
pub async fn run(client: Client, node: String, sources: Vec<Source>, period: std::time::Duration) {
    let mut reader = Reader::new(sources);
    loop {
        let manifests = reader.read().await;
        if let Err(err) = sync(&client, &node, &manifests).await {
            tracing::warn!(%err, "syncing static pods");
        }
        tokio::time::sleep(period).await;
    }
}

/// What a manifest URL's answer may hold at most: Kubernetes' `maxConfigLength` (10 MiB). A pod
/// is far smaller (the apiserver takes 3 MiB per request, etcd 1.5 MiB per object), so this only
/// bounds what a broken or hostile server makes the kubelet hold, every few seconds.
pub const MAX_MANIFEST: usize = 10 << 20;

/// Kubernetes' manifest URL client gives each fetch 10 s, redirects and body included.
const URL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The body of `url`'s 200 answer (`http://` only: a manifest decides what runs on the node,
/// and the kubelet has no trust store to check an HTTPS server with). Redirects are followed
/// as Go's client does; an answer over [`MAX_MANIFEST`] is refused, unread beyond that.
async fn http_get(url: &str) -> anyhow::Result<String> {
    let url = Url::parse(url)?;
    anyhow::ensure!(
        url.scheme == Scheme::Http,
        "only http:// manifest URLs are supported"
    );
    let policy = Policy {
        timeout: Some(URL_TIMEOUT),
        body_limit: MAX_MANIFEST,
        redirects: Redirects::AnyHost,
        tls: Tls::Refused,
    };
    let answer = http_client::get(url, http::HeaderMap::new(), &policy).await?;
    anyhow::ensure!(
        !answer.truncated,
        "{}: the manifest is larger than {} MiB",
        answer.url,
        MAX_MANIFEST >> 20
    );
    anyhow::ensure!(
        answer.status == http::StatusCode::OK,
        "{}: {}",
        answer.url,
        answer.status
    );
    Ok(String::from_utf8(answer.body.to_vec())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_client::testing::{Reply, TestServer, answer};

    fn manifest(text: &str) -> Manifest {
        Manifest {
            origin: "test.yaml".into(),
            source: "file",
            text: text.into(),
        }
    }

    #[test]
    fn mirror_pods_are_named_bound_and_hashed() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n";
        let pod = mirror_pod(&manifest(text), "n1").unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web-n1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(pod.spec.as_ref().unwrap().node_name.as_deref(), Some("n1"));
        let annotations = pod.metadata.annotations.unwrap();
        assert_eq!(annotations[SOURCE], "file");
        assert_eq!(annotations[HASH], annotations[MIRROR]);
        let changed = mirror_pod(&manifest(&text.replace("busybox", "nginx")), "n1").unwrap();
        assert_ne!(
            changed.metadata.annotations.unwrap()[MIRROR],
            annotations[MIRROR],
            "another manifest, another hash"
        );
        assert!(mirror_pod(&manifest("kind: Pod\nspec: {}\n"), "n1").is_err());
        assert!(mirror_pod(&manifest("not: [yaml"), "n1").is_err());
    }

    #[tokio::test]
    async fn manifest_urls_are_fetched_within_bounds() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n";
        let server = TestServer::start(None, move |head| {
            let path = head.split(' ').nth(1).unwrap_or_default();
            Reply::Close(match path {
                "/pod.yaml" => answer(200, &[], pod.as_bytes()),
                "/moved" => answer(302, &[("Location", "/pod.yaml")], b""),
                "/huge" => answer(200, &[], &vec![b'#'; MAX_MANIFEST + 1]),
                _ => answer(404, &[], b""),
            })
        })
        .await;
        let url = |path: &str| format!("http://127.0.0.1:{}{path}", server.port);
        assert_eq!(http_get(&url("/pod.yaml")).await.unwrap(), pod);
        assert_eq!(http_get(&url("/moved")).await.unwrap(), pod);
        // Not `unwrap_err`: a failure would print 10 MiB.
        let Err(err) = http_get(&url("/huge")).await else {
            panic!("a manifest over the limit was read");
        };
        let err = err.to_string();
        assert!(err.contains("larger than 10 MiB"), "{err}");
        let err = http_get(&url("/gone")).await.unwrap_err().to_string();
        assert!(err.contains("404"), "{err}");
        let err = http_get("https://127.0.0.1:1/pod.yaml").await.unwrap_err();
        assert!(err.to_string().contains("only http://"), "{err}");
        // Refused: no manifest, so no mirror pod comes of it.
        let manifests = read(&[Source::Url(url("/huge"))]).await;
        assert!(manifests.is_empty());
    }

    #[tokio::test]
    async fn a_source_that_fails_keeps_its_last_pods() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n";
        // The server answers the pod first, then an error, an oversized body, a body that is
        // no pod, and the pod again.
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = calls.clone();
        let server = TestServer::start(None, move |_| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Reply::Close(match n {
                0 | 4 => answer(200, &[], pod.as_bytes()),
                1 => answer(500, &[], b""),
                2 => answer(200, &[], &vec![b'#'; MAX_MANIFEST + 1]),
                _ => answer(200, &[], b"not: [a pod"),
            })
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("manifests");
        std::fs::create_dir(&files).unwrap();
        std::fs::write(files.join("a.yaml"), pod).unwrap();
        let url = format!("http://127.0.0.1:{}/pod.yaml", server.port);
        let mut reader = Reader::new(vec![Source::Dir(files.clone()), Source::Url(url)]);
        let origins = |manifests: Vec<Manifest>| -> Vec<String> {
            manifests.into_iter().map(|m| m.origin).collect()
        };
        let first = origins(reader.read().await);
        assert_eq!(first.len(), 2, "{first:?}");
        for _ in 0..3 {
            assert_eq!(
                origins(reader.read().await),
                first,
                "a failed read dropped pods"
            );
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
        // A directory gone keeps its pods too; a file removed from a readable one does not.
        std::fs::rename(&files, dir.path().join("elsewhere")).unwrap();
        assert_eq!(origins(reader.read().await), first);
        std::fs::create_dir(&files).unwrap();
        assert_eq!(
            origins(reader.read().await).len(),
            1,
            "a file removed from a readable directory takes its pod along"
        );
    }
}
