//! `componentstatuses` (core/v1 `ComponentStatus`, deprecated since v1.19): the health of the
//! control plane's own parts, computed on every request and never stored, as kube-apiserver's
//! `pkg/registry/core/componentstatus` REST storage (get and list only). Like that storage it
//! is not a generic store: the request pipeline routes the resource here, and only the
//! printing (a [`Kind`] that is never registered) is shared with the stored kinds.
//!
//! The components are Kubernetes' names: `scheduler` and `controller-manager`, probed at their
//! healthz URLs ([`Probes`]; HTTPS certificates are not verified, as kube-apiserver does not),
//! and `etcd-0`, the store behind this apiserver (embedded or etcd) answering a read.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::{ComponentCondition, ComponentStatus};
use serde_json::{Value, json};
use skiff_apimachinery::selector::{FieldSelector, LabelSelector};

use crate::Server;
use crate::encode::json_response;
use crate::error::{ApiError, Subject};
use crate::registry::{Column, Kind, ResourceInfo, Strategy, Typed};
use crate::request::RequestInfo;

/// How long one probe may take (kube-apiserver's `probeTimeOut`).
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// The most of a healthz answer kept as the message (Kubernetes' prober reads 10 KiB).
const MAX_BODY: usize = 10 * 1024;

/// The `Warning` every request of this deprecated API gets, as kube-apiserver sends it.
pub const DEPRECATION: &str = "v1 ComponentStatus is deprecated in v1.19+";

/// The verbs the resource serves.
pub const VERBS: &[&str] = &["get", "list"];

/// Where the components that are not this apiserver answer health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probes {
    /// The scheduler's healthz URL.
    pub scheduler: String,
    /// The controller manager's healthz URL.
    pub controller_manager: String,
}

impl Default for Probes {
    /// Kubernetes' secure ports on this machine: the scheduler on 10259, the controller
    /// manager on 10257.
    fn default() -> Self {
        Probes {
            scheduler: "https://127.0.0.1:10259/healthz".into(),
            controller_manager: "https://127.0.0.1:10257/healthz".into(),
        }
    }
}

/// The printer: NAME, STATUS, MESSAGE, ERROR (no AGE: the objects are made on the spot).
struct ComponentStatuses;

impl Strategy<ComponentStatus> for ComponentStatuses {
    fn columns(&self) -> &'static [Column] {
        const fn col(name: &'static str, description: &'static str) -> Column {
            Column {
                name,
                type_: "string",
                priority: 0,
                description,
            }
        }
        const {
            &[
                col("Name", "The component's name."),
                col("Status", "Status of the component conditions"),
                col("Message", "Message of the component conditions"),
                col("Error", "Error of the component conditions"),
            ]
        }
    }

    fn whole_row(&self) -> bool {
        true
    }

    fn cells(&self, cs: &ComponentStatus) -> Vec<Value> {
        let healthy = cs
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Healthy");
        let (status, message, error) = match healthy {
            None => ("Unknown", String::new(), String::new()),
            Some(c) => (
                if c.status == "True" {
                    "Healthy"
                } else {
                    "Unhealthy"
                },
                c.message.clone().unwrap_or_default(),
                c.error.clone().unwrap_or_default(),
            ),
        };
        vec![
            json!(cs.metadata.name.clone().unwrap_or_default()),
            json!(status),
            json!(message),
            json!(error),
        ]
    }
}

static KIND: LazyLock<Typed<ComponentStatus, ComponentStatuses>> =
    LazyLock::new(|| Typed::new(ComponentStatuses, &["cs"], &[], &[]));

/// What discovery says about the resource.
pub fn info() -> &'static ResourceInfo {
    KIND.info()
}

/// Whether a request is for this resource (which the generic handlers do not serve).
pub fn serves(request: &RequestInfo) -> bool {
    let info = info();
    request.group == info.group
        && request.version == info.version
        && request.resource == info.plural
}

/// The components, in the order kubectl users know them.
fn components(probes: &Probes) -> [(&'static str, Option<&str>); 3] {
    [
        ("scheduler", Some(probes.scheduler.as_str())),
        (
            "controller-manager",
            Some(probes.controller_manager.as_str()),
        ),
        ("etcd-0", None),
    ]
}

/// The outcome of one check: True/False/Unknown, the message and the error.
type Health = (&'static str, String, String);

/// Kubernetes' HTTP prober on `url`: a 2xx or 3xx answer is healthy with its body as the
/// message; anything else, including not reaching the server, is unhealthy with what happened
/// as the message, in Go's words (`Get "…": dial tcp …: connect: connection refused`).
async fn probe_http(url: &str) -> Health {
    match tokio::time::timeout(PROBE_TIMEOUT, get(url)).await {
        Ok(Ok((code, body))) if (200..400).contains(&code) => ("True", body, String::new()),
        Ok(Ok((code, _))) => (
            "False",
            format!("HTTP probe failed with statuscode: {code}"),
            String::new(),
        ),
        Ok(Err(err)) => ("False", format!("Get {url:?}: {err}"), String::new()),
        Err(_) => (
            "False",
            format!(
                "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ),
            String::new(),
        ),
    }
}

/// `GET url` over HTTP/1.1 (HTTPS without verifying the certificate); the status code and
/// the start of the body.
async fn get(url: &str) -> Result<(u16, String), String> {
    use http_body_util::BodyExt;
    let uri: axum::http::Uri = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        other => {
            return Err(format!(
                "unsupported protocol scheme {:?}",
                other.unwrap_or("")
            ));
        }
    };
    let host = uri.host().ok_or("no host in URL")?.trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = match host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{host}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    };
    let tcp = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(|err| dial_error(&authority, &err))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = axum::http::Request::get(path)
        .header(header::HOST, authority.as_str())
        .body(axum::body::Body::empty())
        .map_err(|e| e.to_string())?;
    let response = if https {
        let name =
            rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
        let tls = skiff_unverified_tls::connector()
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        let mut sender = skiff_upgrade_proxy::handshake(tls, &authority).await?;
        sender.send_request(request).await
    } else {
        let mut sender = skiff_upgrade_proxy::handshake(tcp, &authority).await?;
        sender.send_request(request).await
    }
    .map_err(|e| e.to_string())?;
    let code = response.status().as_u16();
    let body = http_body_util::Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// A connection error as Go's `net.Dial` words it.
fn dial_error(authority: &str, err: &std::io::Error) -> String {
    let what = match err.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_owned(),
        std::io::ErrorKind::TimedOut => "i/o timeout".to_owned(),
        _ => err.to_string(),
    };
    format!("dial tcp {authority}: {what}")
}

/// The store's health: it answers a read (what etcd's health check asks of a member).
async fn probe_store(server: &Server) -> Health {
    let read = server.storage.store.current_revision();
    match tokio::time::timeout(PROBE_TIMEOUT, read).await {
        Ok(Ok(_)) => ("True", "ok".into(), String::new()),
        Ok(Err(err)) => ("False", String::new(), err.to_string()),
        Err(_) => ("False", String::new(), "context deadline exceeded".into()),
    }
}

/// One component's status, checked now.
async fn status(server: &Server, name: &str, url: Option<&str>) -> Value {
    let (state, message, error) = match url {
        Some(url) => probe_http(url).await,
        None => probe_store(server).await,
    };
    let condition = ComponentCondition {
        type_: "Healthy".into(),
        status: state.into(),
        message: Some(message).filter(|m| !m.is_empty()),
        error: Some(error).filter(|e| !e.is_empty()),
    };
    let mut object = serde_json::to_value(ComponentStatus {
        conditions: Some(vec![condition]),
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
    })
    .expect("JSON values always serialize");
    object["kind"] = json!("ComponentStatus");
    object["apiVersion"] = json!("v1");
    object
}

/// Serves `get` and `list`; every other verb is refused, as on a storage without them.
pub async fn serve(
    server: &Server,
    request: &RequestInfo,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let mut response = match answer(server, request, query, headers).await {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(err) => err.into_response(),
    };
    let warning = format!("299 - {}", Value::String(DEPRECATION.into()));
    if let Ok(value) = HeaderValue::from_str(&warning) {
        response.headers_mut().append(header::WARNING, value);
    }
    response
}

async fn answer(
    server: &Server,
    request: &RequestInfo,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Value, ApiError> {
    let param = |name: &str| {
        query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    if request.namespace.is_some() {
        return Err(ApiError::not_found_path(&request.resource));
    }
    if let Some(sub) = &request.subresource {
        return Err(ApiError::not_found_path(sub));
    }
    if !VERBS.contains(&request.verb) {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            request.verb
        )));
    }
    let target = crate::handlers::negotiate(headers, true)?;
    let components = components(&server.component_probes);
    let body = match request.name.as_deref() {
        Some(name) => {
            let Some((name, url)) = components.iter().find(|(n, _)| *n == name) else {
                let info = info();
                return Err(ApiError::not_found(Subject {
                    group: info.group,
                    resource: info.plural,
                    name,
                }));
            };
            status(server, name, *url).await
        }
        None => {
            let labels = param("labelSelector")
                .map(LabelSelector::parse)
                .transpose()
                .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
            let fields = param("fieldSelector")
                .map(FieldSelector::parse)
                .transpose()
                .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
            // The checks run at once: a list takes as long as the slowest component.
            let items = futures::future::join_all(
                components
                    .iter()
                    .filter(|(name, _)| {
                        labels.as_ref().is_none_or(|l| l.matches(&BTreeMap::new()))
                            && fields.as_ref().is_none_or(|f| {
                                f.matches(|field| match field {
                                    "metadata.name" => Some((*name).to_owned()),
                                    "metadata.namespace" => Some(String::new()),
                                    _ => None,
                                })
                            })
                    })
                    .map(|(name, url)| status(server, name, *url)),
            )
            .await;
            json!({ "kind": "ComponentStatusList", "apiVersion": "v1", "metadata": {}, "items": items })
        }
    };
    let kind: &dyn Kind = &*KIND;
    crate::handlers::transform(kind, target, param("includeObject"), body, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_like_kubectl() {
        let row = |status: &str, message: &str, error: &str| {
            let cs: ComponentStatus = serde_json::from_value(json!({
                "metadata": { "name": "scheduler" },
                "conditions": [{ "type": "Healthy", "status": status, "message": message, "error": error }],
            }))
            .unwrap();
            ComponentStatuses.cells(&cs)
        };
        assert_eq!(
            row("True", "ok", ""),
            [json!("scheduler"), json!("Healthy"), json!("ok"), json!("")]
        );
        assert_eq!(row("False", "", "boom")[1], "Unhealthy");
        let none: ComponentStatus =
            serde_json::from_value(json!({ "metadata": { "name": "x" } })).unwrap();
        assert_eq!(ComponentStatuses.cells(&none)[1], "Unknown");
    }

    #[tokio::test]
    async fn a_component_that_is_down_is_unhealthy_with_the_dial_error() {
        // A port that was just free: nothing listens there.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("https://127.0.0.1:{port}/healthz");
        let (state, message, error) = probe_http(&url).await;
        assert_eq!(state, "False");
        assert_eq!(
            message,
            format!("Get \"{url}\": dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
        assert_eq!(error, "");
        let (state, message, _) = probe_http("ftp://127.0.0.1/healthz").await;
        assert_eq!(
            (state, message.as_str()),
            (
                "False",
                "Get \"ftp://127.0.0.1/healthz\": unsupported protocol scheme \"ftp\""
            )
        );
    }
}
