//! The kubelet API's streaming endpoints, which the apiserver forwards `pods/exec`,
//! `pods/attach` and `pods/portforward` to:
//! `/exec/{namespace}/{pod}/{container}?command=...&stdin=...&stdout=...&stderr=...&tty=...`,
//! `/attach/{namespace}/{pod}/{container}?...` and `/portForward/{namespace}/{pod}`.
//!
//! The kubelet finds the pod's running sandbox or container by its CRI labels, asks the runtime
//! for a streaming URL (CRI Exec, Attach, PortForward), and forwards the upgrade request there
//! (`skiff_upgrade_proxy`): kubectl and the runtime's streaming server then speak SPDY or
//! WebSocket to each other through the apiserver and the kubelet.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use skiff_cri::{Cri, v1};

use crate::runtime::{CONTAINER_NAME, POD_NAME, POD_NAMESPACE};

/// How long reaching the runtime's streaming server and its answer may take.
const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// The streaming routes, over the runtime `cri`.
pub fn router(cri: Cri) -> Router {
    Router::new()
        .route("/exec/{namespace}/{pod}/{container}", any(exec))
        .route("/attach/{namespace}/{pod}/{container}", any(attach))
        .route("/portForward/{namespace}/{pod}", any(port_forward))
        .with_state(cri)
}

/// What went wrong, as the plain-text answer the apiserver turns into a Status.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

/// The runtime failed: the kubelet's own error.
impl From<skiff_cri::Error> for Failure {
    fn from(err: skiff_cri::Error) -> Failure {
        Failure(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
    }
}

type Answer = Result<Response, Failure>;

/// The query's values for `key`, in order (`command` repeats, one argument each).
fn values<'a>(query: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    query
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A boolean query flag as kubectl and the apiserver send them ("true"/"1").
fn flag(query: &[(String, String)], key: &str) -> bool {
    values(query, key)
        .last()
        .is_some_and(|v| matches!(*v, "1" | "true" | "True"))
}

/// The running sandbox of pod `namespace/name`.
async fn sandbox_of(cri: &Cri, namespace: &str, name: &str) -> Result<String, Failure> {
    let filter = v1::PodSandboxFilter {
        label_selector: [
            (POD_NAMESPACE.to_owned(), namespace.to_owned()),
            (POD_NAME.to_owned(), name.to_owned()),
        ]
        .into(),
        state: Some(v1::PodSandboxStateValue {
            state: v1::PodSandboxState::SandboxReady.into(),
        }),
        ..Default::default()
    };
    let sandboxes = cri.list_pod_sandbox(Some(filter)).await?;
    sandboxes
        .into_iter()
        .max_by_key(|s| s.created_at)
        .map(|s| s.id)
        .ok_or_else(|| {
            Failure(
                StatusCode::NOT_FOUND,
                format!("pod {namespace}/{name} is not running on this node"),
            )
        })
}

/// The running container `container` of pod `namespace/name`.
async fn container_of(
    cri: &Cri,
    namespace: &str,
    name: &str,
    container: &str,
) -> Result<String, Failure> {
    let sandbox = sandbox_of(cri, namespace, name).await?;
    let filter = v1::ContainerFilter {
        pod_sandbox_id: sandbox,
        label_selector: [(CONTAINER_NAME.to_owned(), container.to_owned())].into(),
        state: Some(v1::ContainerStateValue {
            state: v1::ContainerState::ContainerRunning.into(),
        }),
        ..Default::default()
    };
    let containers = cri.list_containers(Some(filter)).await?;
    containers
        .into_iter()
        .max_by_key(|c| c.created_at)
        .map(|c| c.id)
        .ok_or_else(|| {
            Failure(
                StatusCode::BAD_REQUEST,
                format!("container {container} is not running in pod {namespace}/{name}"),
            )
        })
}

/// Forwards the upgrade request to the runtime's streaming `url`.
async fn forward(mut request: Request, url: Result<String, skiff_cri::Error>) -> Answer {
    let url = url?;
    let (authority, path) = skiff_upgrade_proxy::split_http_url(&url).ok_or_else(|| {
        Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the runtime's streaming URL {url:?} is not plain HTTP"),
        )
    })?;
    let client = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>();
    let stream = skiff_upgrade_proxy::connect_tcp(authority, STREAM_TIMEOUT)
        .await
        .map_err(|err| Failure(StatusCode::BAD_GATEWAY, err))?;
    let sender = skiff_upgrade_proxy::handshake(stream, authority)
        .await
        .map_err(|err| Failure(StatusCode::BAD_GATEWAY, err))?;
    skiff_upgrade_proxy::forward(
        sender,
        request.method().clone(),
        request.headers(),
        client,
        authority,
        path,
        STREAM_TIMEOUT,
    )
    .await
    .map_err(|err| Failure(StatusCode::BAD_GATEWAY, err))
}

/// The stdin/stdout/stderr/tty choice of an exec or attach request. kubectl asks for stdout
/// and stderr unless told otherwise; a request asking for no stream at all is refused, as the
/// kubelet does.
fn streams(query: &[(String, String)]) -> Result<(bool, bool, bool, bool), Failure> {
    let (stdin, stdout, stderr, tty) = (
        flag(query, "stdin") || flag(query, "input"),
        flag(query, "stdout") || flag(query, "output"),
        flag(query, "stderr") || flag(query, "error"),
        flag(query, "tty"),
    );
    if !(stdin || stdout || stderr) {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            "you must specify at least one of stdin, stdout, stderr".into(),
        ));
    }
    // With a terminal, stderr is merged into stdout.
    Ok((stdin, stdout, stderr && !tty, tty))
}

async fn exec(
    State(cri): State<Cri>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    request: Request,
) -> Answer {
    let cmd: Vec<String> = values(&query, "command")
        .into_iter()
        .map(str::to_owned)
        .collect();
    if cmd.is_empty() {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            "you must specify at least one command for the container".into(),
        ));
    }
    let (stdin, stdout, stderr, tty) = streams(&query)?;
    let container_id = container_of(&cri, &namespace, &pod, &container).await?;
    let url = cri
        .exec(v1::ExecRequest {
            container_id,
            cmd,
            tty,
            stdin,
            stdout,
            stderr,
        })
        .await;
    forward(request, url).await
}

async fn attach(
    State(cri): State<Cri>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    request: Request,
) -> Answer {
    let (stdin, stdout, stderr, tty) = streams(&query)?;
    let container_id = container_of(&cri, &namespace, &pod, &container).await?;
    let url = cri
        .attach(v1::AttachRequest {
            container_id,
            stdin,
            tty,
            stdout,
            stderr,
        })
        .await;
    forward(request, url).await
}

async fn port_forward(
    State(cri): State<Cri>,
    UrlPath((namespace, pod)): UrlPath<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    request: Request,
) -> Answer {
    // kubectl names the ports per stream (SPDY headers); a `ports` query is optional.
    let mut port = Vec::new();
    for value in values(&query, "ports").iter().flat_map(|v| v.split(',')) {
        match value.trim().parse::<u16>() {
            Ok(p) if p > 0 => port.push(i32::from(p)),
            _ => {
                return Err(Failure(
                    StatusCode::BAD_REQUEST,
                    format!("invalid port {value:?}"),
                ));
            }
        }
    }
    let pod_sandbox_id = sandbox_of(&cri, &namespace, &pod).await?;
    let url = cri
        .port_forward(v1::PortForwardRequest {
            pod_sandbox_id,
            port,
        })
        .await;
    forward(request, url).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query as the handlers get it (percent-decoded, `+` a space, repeats kept).
    fn query(text: &str) -> Vec<(String, String)> {
        let uri: axum::http::Uri = format!("/exec/ns/p/c?{text}").parse().unwrap();
        Query::<Vec<(String, String)>>::try_from_uri(&uri)
            .unwrap()
            .0
    }

    #[test]
    fn reads_kubectl_queries() {
        let q =
            query("command=sh&command=-c&command=echo%20a%2Bb+c&stdout=true&stderr=1&tty=false");
        assert_eq!(values(&q, "command"), ["sh", "-c", "echo a+b c"]);
        assert_eq!(
            streams(&q).ok().map(|s| (s.0, s.1, s.2, s.3)),
            Some((false, true, true, false))
        );
        let tty = query("command=sh&stdin=true&stdout=true&stderr=true&tty=true");
        assert_eq!(
            streams(&tty).ok().map(|s| (s.0, s.1, s.2, s.3)),
            Some((true, true, false, true))
        );
        assert!(streams(&query("command=sh")).is_err());
        assert_eq!(values(&query("v=100%"), "v"), ["100%"]);
        assert_eq!(values(&query("v=%zz"), "v"), ["%zz"]);
    }
}
