//! What the apiserver proxies to kubelets. `GET pods/{name}/log`: the apiserver finds the
//! pod's container and node, and proxies the node's kubelet API
//! (`/containerLogs/{namespace}/{pod}/{container}`), streaming its answer back (so
//! `kubectl logs -f` follows). `GET nodes/{name}/proxy/{path}`: any kubelet API path
//! (`/stats/summary`, `/pods`), as `kubectl get --raw` and metrics-server read them. The kubelet API is HTTPS; as in Kubernetes without
//! `--kubelet-certificate-authority`, its (self-signed) serving certificate is not verified,
//! though the handshake's signatures are.

use std::time::Duration;

use axum::body::Body;

use super::*;

/// How long connecting to a kubelet and waiting for its answer's head may take.
pub(super) const KUBELET_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this much of a kubelet's error body becomes the Status message.
const MAX_ERROR_BODY: usize = 4096;

/// The query parameters passed on to the kubelet (Kubernetes' PodLogOptions).
const FORWARDED: &[&str] = &[
    "follow",
    "previous",
    "timestamps",
    "tailLines",
    "limitBytes",
    "sinceSeconds",
    "sinceTime",
];

pub(super) async fn serve_log(ctx: &Ctx<'_>) -> Response {
    match proxy(ctx).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// Where a pod's kubelet serves it: the pod's name, the container (`with_container`: the
/// `container` parameter's, else the pod's only one), the node's name and its kubelet API's
/// `host:port`.
pub(super) struct Located {
    pub name: String,
    pub container: String,
    pub node: String,
    pub host: String,
    pub port: u16,
}

pub(super) async fn locate(ctx: &Ctx<'_>, with_container: bool) -> ApiResult<Located> {
    let name = name_of(ctx)?;
    let pod = ctx.server.storage.get(ctx.info(), ctx.ns(), name).await?;
    let container = if with_container {
        container_of(&pod, name, ctx.param("container"))?
    } else {
        String::new()
    };
    let node_name = pod["spec"]["nodeName"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("pod {name} does not have a host assigned"))
        })?;
    let nodes = ctx
        .server
        .registry
        .lookup("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes are not served"))?;
    let node = ctx
        .server
        .storage
        .get(nodes.info(), None, node_name)
        .await?;
    let (host, port) = kubelet_endpoint(&node).ok_or_else(|| {
        ApiError::bad_request(format!(
            "node {node_name} has no address and kubelet port to reach its kubelet"
        ))
    })?;
    Ok(Located {
        name: name.to_owned(),
        container,
        node: node_name.to_owned(),
        host,
        port,
    })
}

async fn proxy(ctx: &Ctx<'_>) -> ApiResult<Response> {
    let namespace = ctx.ns().unwrap_or("default");
    let Located {
        name,
        container,
        node: node_name,
        host,
        port,
    } = locate(ctx, true).await?;
    let mut path = format!("/containerLogs/{namespace}/{name}/{container}");
    let query: Vec<String> = FORWARDED
        .iter()
        .filter_map(|key| Some(format!("{key}={}", encode(ctx.param(key)?))))
        .collect();
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    let response = request_kubelet(&host, port, &path)
        .await
        .map_err(|err| ApiError::internal(format!("reading logs from node {node_name}: {err}")))?;
    let code = response.status();
    if !code.is_success() {
        return Err(kubelet_error(code, Body::new(response.into_body())).await);
    }
    Ok(crate::encode::bytes_response(
        StatusCode::OK,
        Body::new(response.into_body()),
        "text/plain",
    ))
}

/// `nodes/{name}/proxy/{path}`: GET `path` (with the request's query) on the node's kubelet
/// API, its answer passed back with its status and content type.
pub(super) async fn serve_node_proxy(ctx: &Ctx<'_>) -> Response {
    match node_proxy(ctx).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn node_proxy(ctx: &Ctx<'_>) -> ApiResult<Response> {
    if ctx.request.verb != "get" {
        return Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "only GET is proxied to the kubelet",
        ));
    }
    let node_name = name_of(ctx)?;
    let node = ctx.server.storage.get(ctx.info(), None, node_name).await?;
    let (host, port) = kubelet_endpoint(&node).ok_or_else(|| {
        ApiError::bad_request(format!("node {node_name} has no address and kubelet port"))
    })?;
    let mut path = ctx.request.proxy_path.clone().unwrap_or_else(|| "/".into());
    let mut query: Vec<String> = ctx
        .query
        .iter()
        .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
        .collect();
    query.sort();
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    let response = request_kubelet(&host, port, &path).await.map_err(|err| {
        ApiError::new(
            503,
            "ServiceUnavailable",
            format!("proxying to node {node_name}: {err}"),
        )
    })?;
    let code = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let mut answer = (code, Body::new(response.into_body())).into_response();
    if let Some(content_type) = content_type {
        answer
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    Ok(answer)
}

/// The container whose logs are wanted: the named one (an app, init or ephemeral container),
/// else the pod's only container.
fn container_of(pod: &Value, pod_name: &str, wanted: Option<&str>) -> ApiResult<String> {
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    };
    let containers = names("containers");
    if let Some(wanted) = wanted {
        let known = containers.iter().any(|c| c == wanted)
            || names("initContainers").iter().any(|c| c == wanted)
            || names("ephemeralContainers").iter().any(|c| c == wanted);
        if !known {
            return Err(ApiError::bad_request(format!(
                "container {wanted} is not valid for pod {pod_name}"
            )));
        }
        return Ok(wanted.to_owned());
    }
    match containers.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(ApiError::bad_request(format!(
            "pod {pod_name} has no containers"
        ))),
        several => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            several.join(" ")
        ))),
    }
}

/// The Node's kubelet address (its InternalIP, else its first address) and API port.
fn kubelet_endpoint(node: &Value) -> Option<(String, u16)> {
    let addresses = node["status"]["addresses"].as_array()?;
    let address = addresses
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .or_else(|| addresses.first())?["address"]
        .as_str()?
        .to_owned();
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64()?;
    let port = u16::try_from(port).ok().filter(|&p| p > 0)?;
    Some((address, port))
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `GET path` on the kubelet over HTTPS (HTTP/1.1); the answer's body streams from the
/// connection.
async fn request_kubelet(
    host: &str,
    port: u16,
    path: &str,
) -> Result<axum::http::Response<hyper::body::Incoming>, String> {
    let (stream, authority) = crate::kubelet_client::connect(host, port, KUBELET_TIMEOUT).await?;
    let mut sender = skiff_upgrade_proxy::handshake(stream, &authority).await?;
    let request = axum::http::Request::get(path)
        .header(header::HOST, authority.as_str())
        .body(Body::empty())
        .map_err(|err| err.to_string())?;
    tokio::time::timeout(KUBELET_TIMEOUT, sender.send_request(request))
        .await
        .map_err(|_| format!("GET https://{authority}{path}: timed out"))?
        .map_err(|err| format!("GET https://{authority}{path}: {err}"))
}

/// A kubelet's error answer as a Status carrying its message.
pub(super) async fn kubelet_error(code: StatusCode, body: Body) -> ApiError {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, MAX_ERROR_BODY);
    let text = match tokio::time::timeout(KUBELET_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        _ => String::new(),
    };
    let message = match text.trim() {
        "" => format!("the kubelet answered {code}"),
        text => text.to_owned(),
    };
    match code.as_u16() {
        404 => ApiError::new(404, "NotFound", message),
        400 => ApiError::bad_request(message),
        _ => ApiError::internal(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_container() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}],
                                  "initContainers": [{"name": "init"}]}});
        assert_eq!(container_of(&pod, "p", Some("b")).unwrap(), "b");
        assert_eq!(container_of(&pod, "p", Some("init")).unwrap(), "init");
        assert_eq!(
            container_of(&pod, "p", None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        assert_eq!(container_of(&pod, "p", Some("c")).unwrap_err().code, 400);
        let single = json!({"spec": {"containers": [{"name": "only"}]}});
        assert_eq!(container_of(&single, "p", None).unwrap(), "only");
    }

    #[test]
    fn finds_the_kubelet() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"},
                          {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        }});
        assert_eq!(kubelet_endpoint(&node), Some(("10.0.0.5".into(), 10250)));
        let no_port = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}});
        assert_eq!(kubelet_endpoint(&no_port), None);
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }
}
