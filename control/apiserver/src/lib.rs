//! The skiff apiserver: the Kubernetes REST API over the cluster store.
//!
//! Every request goes through the same pipeline, one module per stage:
//! decode the path (`request`) → authenticate and authorize (`auth`) → for writes: decode the
//! body, admission (`admission`), validation and defaulting (`registry` strategies) → storage
//! (`storage`, reads and watches via the watch cache in `cache`) → encode (`encode`).
//! All resources are served by the same generic handlers (`handlers`, `watch`) from one
//! registry of kinds (`registry`).
#![deny(missing_docs)]

pub mod admission;
pub mod allocator;
pub mod apiservices;
pub mod auth;
pub mod cache;
pub mod component_statuses;
pub mod discovery;
pub mod encode;
pub mod error;
mod handlers;
pub mod kubeconfig;
pub mod kubelet_client;
pub mod meta;
pub mod namespaces;
pub mod registry;
pub mod request;
pub mod storage;
pub mod testing;
mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use skiff_store::Store;

use crate::admission::Admission;
use crate::auth::{AdminForEveryone, AlwaysAllow, Authenticator, Authorizer};
use crate::cache::Caches;
use crate::encode::{bytes_response, json_response};
use crate::error::ApiError;
use crate::registry::Registry;
use crate::request::Target;
use crate::storage::Storage;

/// Largest request body accepted (Kubernetes' limit).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Namespaces that always exist.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Everything a request handler needs.
pub struct Server {
    /// The kinds served.
    pub registry: Registry,
    /// Object persistence.
    pub storage: Storage,
    /// The watch cache.
    pub caches: Arc<Caches>,
    /// Who is asking.
    pub authenticator: Box<dyn Authenticator>,
    /// May they.
    pub authorizer: Box<dyn Authorizer>,
    /// Admission plugins.
    pub admission: Admission,
    /// The address clients reach this server at (for discovery).
    pub address: String,
    /// Service ClusterIPs and NodePorts.
    pub allocator: allocator::Allocator,
    /// Set when the server stops: long-running requests (watches) end so connections close.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// The OpenAPI documents, built on first use.
    openapi: std::sync::OnceLock<skiff_openapi::OpenApi>,
    /// Wakes the namespace finalizer when a namespace is marked for deletion.
    pub namespace_deleted: Arc<tokio::sync::Notify>,
    /// Where `componentstatuses` probes the scheduler and the controller manager.
    pub component_probes: component_statuses::Probes,
}

impl Server {
    /// A server over `store`, answering at `address`; starts the watch cache.
    pub fn new(store: Arc<dyn Store>, address: SocketAddr) -> Arc<Server> {
        Self::with_probes(store, address, component_statuses::Probes::default())
    }

    /// [`Server::new`] with the components' health checks at `component_probes`.
    pub fn with_probes(
        store: Arc<dyn Store>,
        address: SocketAddr,
        component_probes: component_statuses::Probes,
    ) -> Arc<Server> {
        let registry = registry::builtin();
        let storage = Storage::new(store.clone());
        let caches = Caches::start(store.clone(), &registry);
        let namespaces = registry
            .lookup("", "v1", "namespaces")
            .expect("namespaces are built in")
            .info()
            .clone();
        let server = Arc::new(Server {
            admission: Admission::defaults(storage.clone(), caches.clone(), namespaces),
            registry,
            storage,
            caches,
            authenticator: Box::new(AdminForEveryone),
            authorizer: Box::new(AlwaysAllow),
            address: address.to_string(),
            allocator: allocator::Allocator::new(store, allocator::AllocatorConfig::default()),
            stopping: tokio::sync::watch::channel(false).0,
            openapi: std::sync::OnceLock::new(),
            namespace_deleted: Arc::new(tokio::sync::Notify::new()),
            component_probes,
        });
        namespaces::start(&server);
        server
    }

    /// Creates the namespaces that always exist, if they do not yet.
    pub async fn bootstrap(&self) -> Result<(), ApiError> {
        let info = self
            .registry
            .lookup("", "v1", "namespaces")
            .expect("namespaces are built in")
            .info();
        for name in SYSTEM_NAMESPACES {
            let namespace = json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "uid": meta::new_uid(),
                    "creationTimestamp": meta::now(),
                    "labels": { "kubernetes.io/metadata.name": name },
                },
                "spec": { "finalizers": ["kubernetes"] },
                "status": { "phase": "Active" },
            });
            ignore_exists(self.storage.create(info, None, name, namespace).await)?;
        }
        apiservices::register(self).await?;
        // The `kubernetes` service, on the first address of the service range.
        self.allocator.reserve_api_service_ip().await?;
        let ip = self.allocator.api_service_ip().to_string();
        let port: u16 = self
            .address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(6443);
        let service = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes", "namespace": "default", "uid": meta::new_uid(),
                "creationTimestamp": meta::now(),
                "labels": { "component": "apiserver", "provider": "kubernetes" },
            },
            "spec": {
                "type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": port }],
                "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
            },
            "status": { "loadBalancer": {} },
        });
        let services = self
            .registry
            .lookup("", "v1", "services")
            .expect("services are built in")
            .info();
        ignore_exists(
            self.storage
                .create(services, Some("default"), "kubernetes", service)
                .await,
        )?;
        self.reconcile_api_endpoints(port).await
    }

    /// Points the `kubernetes` Service at this apiserver: its EndpointSlice and Endpoints (the
    /// apiserver's endpoint reconciler in Kubernetes), rewritten when the address changed. An
    /// unspecified listen address (0.0.0.0) advertises nothing.
    async fn reconcile_api_endpoints(&self, port: u16) -> Result<(), ApiError> {
        let Some(ip) = self
            .address
            .rsplit_once(':')
            .and_then(|(host, _)| host.parse::<std::net::Ipv4Addr>().ok())
            .filter(|ip| !ip.is_unspecified())
        else {
            return Ok(());
        };
        let labels = json!({ "kubernetes.io/service-name": "kubernetes" });
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": { "name": "kubernetes", "namespace": "default", "labels": labels },
            "addressType": "IPv4",
            "endpoints": [{ "addresses": [ip.to_string()], "conditions": { "ready": true } }],
            "ports": [{ "name": "https", "port": port, "protocol": "TCP" }],
        });
        let endpoints = json!({
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": { "name": "kubernetes", "namespace": "default" },
            "subsets": [{
                "addresses": [{ "ip": ip.to_string() }],
                "ports": [{ "name": "https", "port": port, "protocol": "TCP" }],
            }],
        });
        self.upsert(
            ("discovery.k8s.io", "v1", "endpointslices"),
            slice,
            &["endpoints", "ports"],
        )
        .await?;
        self.upsert(("", "v1", "endpoints"), endpoints, &["subsets"])
            .await
    }

    /// Creates `object` (in `default`), or rewrites it when its `fields` differ from the stored
    /// one's.
    async fn upsert(
        &self,
        (group, version, resource): (&str, &str, &str),
        mut object: serde_json::Value,
        fields: &[&str],
    ) -> Result<(), ApiError> {
        let info = self
            .registry
            .lookup(group, version, resource)
            .expect("a built-in resource")
            .info();
        let name = meta::name(&object).unwrap_or_default().to_owned();
        match self.storage.get(info, Some("default"), &name).await {
            Ok(stored) => {
                if fields.iter().all(|f| stored[*f] == object[*f]) {
                    return Ok(());
                }
                let revision = meta::resource_version(&stored).unwrap_or_default();
                object["metadata"] = stored["metadata"].clone();
                meta::set(&mut object, "resourceVersion", None);
                self.storage
                    .update(info, Some("default"), &name, object, revision)
                    .await?;
            }
            Err(err) if err.reason == "NotFound" => {
                let metadata = meta::metadata_mut(&mut object);
                metadata.insert("uid".into(), json!(meta::new_uid()));
                metadata.insert("creationTimestamp".into(), json!(meta::now()));
                ignore_exists(
                    self.storage
                        .create(info, Some("default"), &name, object)
                        .await,
                )?;
            }
            Err(err) => return Err(err),
        }
        Ok(())
    }

    /// The OpenAPI documents of every served kind.
    pub fn openapi(&self) -> &skiff_openapi::OpenApi {
        self.openapi.get_or_init(|| {
            let resources: Vec<_> = self.registry.all().map(|k| k.openapi()).collect();
            skiff_openapi::OpenApi::with_version(
                &resources,
                discovery::version()["gitVersion"]
                    .as_str()
                    .unwrap_or_default(),
            )
        })
    }

    /// The HTTP application.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .fallback(dispatch)
            .with_state(self.clone())
    }
}

/// Serves the API on `listener` until `shutdown` completes, then gives open requests (watches
/// stay open indefinitely) a few seconds to finish.
pub async fn serve(
    server: Arc<Server>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopping = server.stopping.clone();
    let serving = axum::serve(listener, server.router()).with_graceful_shutdown(async {
        let _ = stopped.await;
    });
    let mut serving = std::pin::pin!(serving.into_future());
    tokio::select! {
        result = &mut serving => return result,
        _ = shutdown => {}
    }
    let _ = stop.send(());
    stopping.send_replace(true);
    match tokio::time::timeout(std::time::Duration::from_secs(3), serving).await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}

/// Every request enters here: the pipeline's first stages, then the handler for its target.
async fn dispatch(State(server): State<Arc<Server>>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let query: HashMap<String, String> =
        parts.uri.query().map(url_decode_pairs).unwrap_or_default();
    let target = request::parse(&parts.method, parts.uri.path(), &query);
    let user = match server.authenticator.authenticate(&parts.headers) {
        Ok(user) => user,
        Err(err) => return err.into_response(),
    };
    match target {
        Target::Resource(info) => {
            if let Err(err) = server.authorizer.authorize(&user, &info) {
                return err.into_response();
            }
            // Computed per request, not a stored kind (kube-apiserver's own REST storage).
            if component_statuses::serves(&info) {
                return component_statuses::serve(&server, &info, &query, &parts.headers).await;
            }
            let body = match read_body(body).await {
                Ok(body) => body,
                Err(err) => return err.into_response(),
            };
            let upgrade = handlers::streaming::Upgrade {
                method: parts.method.clone(),
                raw_query: parts.uri.query().map(str::to_owned),
                on_upgrade: parts.extensions.remove::<hyper::upgrade::OnUpgrade>(),
            };
            handlers::serve(&server, info, &query, &parts.headers, body, upgrade).await
        }
        Target::CoreVersions | Target::Groups
            if discovery::wants_aggregated(accept(&parts.headers)) =>
        {
            let core = matches!(target, Target::CoreVersions);
            let body =
                skiff_protobuf::json::to_body(&discovery::aggregated(&server.registry, core));
            bytes_response(StatusCode::OK, body, discovery::AGGREGATED)
        }
        Target::CoreVersions => ok(&discovery::core_versions(&server.address)),
        Target::Groups => ok(&discovery::groups(&server.registry)),
        Target::Group(group) => discovery::group(&server.registry, &group)
            .map(|g| ok(&g))
            .unwrap_or_else(|| ApiError::not_found_path(parts.uri.path()).into_response()),
        Target::ResourceList { group, version } => {
            discovery::resources(&server.registry, &group, &version)
                .map(|r| ok(&r))
                .unwrap_or_else(|| ApiError::not_found_path(parts.uri.path()).into_response())
        }
        Target::Version => bytes_response(
            StatusCode::OK,
            discovery::version_body(),
            "application/json",
        ),
        Target::OpenApiV2 => {
            if accept(&parts.headers).contains(skiff_openapi::V2_PROTOBUF_MEDIA_TYPE) {
                bytes_response(
                    StatusCode::OK,
                    server.openapi().v2_protobuf().to_vec(),
                    "application/octet-stream",
                )
            } else {
                bytes_response(
                    StatusCode::OK,
                    server.openapi().v2_document().json().to_vec(),
                    "application/json",
                )
            }
        }
        Target::OpenApiV3(None) => bytes_response(
            StatusCode::OK,
            server.openapi().v3_root_document().json().to_vec(),
            "application/json",
        ),
        Target::OpenApiV3(Some(path)) => match server.openapi().v3_document(&path) {
            Some(doc) => bytes_response(StatusCode::OK, doc.json().to_vec(), "application/json"),
            None => ApiError::not_found_path(parts.uri.path()).into_response(),
        },
        Target::Health => (StatusCode::OK, "ok").into_response(),
        Target::Unknown => ApiError::not_found_path(parts.uri.path()).into_response(),
    }
}

fn accept(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .unwrap_or("")
}

/// Bootstrap objects may exist from an earlier start.
fn ignore_exists(result: Result<serde_json::Value, ApiError>) -> Result<(), ApiError> {
    match result {
        Err(err) if err.reason != "AlreadyExists" => Err(err),
        _ => Ok(()),
    }
}

/// Reads a request body of at most [`MAX_BODY_BYTES`]. A larger one is still read to its end
/// (up to a hard cap) before the 413 goes out, so the client gets the answer instead of a
/// connection reset in the middle of its upload.
async fn read_body(body: axum::body::Body) -> Result<bytes::Bytes, ApiError> {
    use futures::StreamExt;
    const DRAIN_CAP: usize = 64 << 20;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        seen += chunk.len();
        if seen <= MAX_BODY_BYTES {
            buf.extend_from_slice(&chunk);
        } else if seen > DRAIN_CAP {
            break;
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::too_large(MAX_BODY_BYTES));
    }
    Ok(buf.freeze())
}

fn ok(body: &serde_json::Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// Decodes `a=b&c=d` with percent-escapes and `+` as space.
fn url_decode_pairs(query: &str) -> HashMap<String, String> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let escaped = match bytes.get(i..i + 3) {
                Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| h * 16 + l),
                _ => None,
            };
            match (escaped, bytes[i]) {
                (Some(b), _) => {
                    out.push(b);
                    i += 3;
                }
                (None, b'+') => {
                    out.push(b' ');
                    i += 1;
                }
                (None, b) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_decoded() {
        let q = url_decode_pairs("labelSelector=tier+in+%28frontend%29&watch=true&x");
        assert_eq!(q["labelSelector"], "tier in (frontend)");
        assert_eq!(q["watch"], "true");
        assert_eq!(q["x"], "");
        assert_eq!(url_decode_pairs("a=%2")["a"], "%2");
    }
}
