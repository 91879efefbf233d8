//! `pods/exec`, `pods/attach` and `pods/portforward`: kubectl opens an upgrade request (SPDY or
//! WebSocket); the apiserver finds the pod's kubelet and forwards the request to its
//! `/exec/{namespace}/{pod}/{container}`, `/attach/...` or `/portForward/{namespace}/{pod}`
//! with the original query, and once the kubelet (really the container runtime's streaming
//! server behind it) switches protocols, the connections are spliced (`skiff_upgrade_proxy`).

use axum::http::Method;
use hyper::upgrade::OnUpgrade;

use super::logs::{KUBELET_TIMEOUT, Located, kubelet_error, locate};
use super::*;

/// What an upgrade request brings besides its headers.
pub struct Upgrade {
    /// GET (WebSocket) or POST (SPDY).
    pub method: Method,
    /// The query as sent (`command` repeats, so it is forwarded verbatim).
    pub raw_query: Option<String>,
    /// The client connection's pending upgrade.
    pub on_upgrade: Option<OnUpgrade>,
}

pub(super) async fn serve(ctx: &Ctx<'_>, upgrade: Upgrade) -> Response {
    match forward(ctx, upgrade).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn forward(ctx: &Ctx<'_>, upgrade: Upgrade) -> ApiResult<Response> {
    let sub = ctx.request.subresource.as_deref().unwrap_or_default();
    let namespace = ctx.ns().unwrap_or("default");
    let Located {
        name,
        container,
        node,
        host,
        port,
    } = locate(ctx, sub != "portforward").await?;
    let mut path = match sub {
        "exec" => format!("/exec/{namespace}/{name}/{container}"),
        "attach" => format!("/attach/{namespace}/{name}/{container}"),
        _ => format!("/portForward/{namespace}/{name}"),
    };
    if let Some(query) = upgrade.raw_query.as_deref().filter(|q| !q.is_empty()) {
        path.push('?');
        path.push_str(query);
    }
    let reach = |err: String| ApiError::internal(format!("{sub} on node {node}: {err}"));
    let (stream, authority) = crate::kubelet_client::connect(&host, port, KUBELET_TIMEOUT)
        .await
        .map_err(reach)?;
    let sender = skiff_upgrade_proxy::handshake(stream, &authority)
        .await
        .map_err(reach)?;
    let response = skiff_upgrade_proxy::forward(
        sender,
        upgrade.method,
        ctx.headers,
        upgrade.on_upgrade,
        &authority,
        &path,
        KUBELET_TIMEOUT,
    )
    .await
    .map_err(reach)?;
    let code = response.status();
    // 101 (switched) and the runtime's own refusals of a protocol go back as they are: a
    // client that asked for WebSocket falls back to SPDY on an upgrade failure.
    if code == StatusCode::SWITCHING_PROTOCOLS || code.is_client_error() && code != 404 {
        return Ok(response);
    }
    if !code.is_success() {
        return Err(kubelet_error(code, response.into_body()).await);
    }
    Ok(response)
}
