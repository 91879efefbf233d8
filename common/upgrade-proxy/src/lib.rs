//! Forwarding of HTTP/1.1 upgrade requests: `kubectl exec`, `attach` and `port-forward` open a
//! connection that switches to a stream protocol (SPDY/3.1 or WebSocket). The apiserver
//! forwards such a request to the pod's kubelet, and the kubelet to the container runtime's
//! streaming server; when the far end switches protocols, the two connections are spliced and
//! carry bytes both ways untouched, so kubectl and the runtime negotiate and speak the stream
//! protocol end to end (a failed negotiation, e.g. a WebSocket sub-protocol the runtime lacks,
//! comes back as the runtime's own answer, and kubectl falls back to SPDY).

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, header};
use hyper::client::conn::http1::SendRequest;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// A TCP connection to `authority` (`host:port`), within `timeout`.
pub async fn connect_tcp(
    authority: &str,
    timeout: Duration,
) -> Result<tokio::net::TcpStream, String> {
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(authority))
        .await
        .map_err(|_| format!("connecting to {authority}: timed out"))?
        .map_err(|err| format!("connecting to {authority}: {err}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// An HTTP/1.1 client over `stream` (plain or TLS); its connection runs in a task of its own,
/// as long as a request or an upgraded stream uses it.
pub async fn handshake<S>(stream: S, authority: &str) -> Result<SendRequest<Body>, String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| format!("talking to {authority}: {err}"))?;
    tokio::spawn(async move {
        if let Err(err) = connection.with_upgrades().await {
            tracing::debug!(%err, "upstream connection");
        }
    });
    Ok(sender)
}

/// Forwards `method` + `headers` to `path_and_query` over `sender` (a connection to
/// `authority`). A `101 Switching Protocols` answer goes back to the client, and once both
/// sides have switched, the client's connection (`client`, the request's pending upgrade) and
/// the far end's are spliced until either closes. Any other answer is returned as it is
/// (status, headers, streamed body). Err: no answer within `timeout`, or the far end switched
/// protocols for a client that never asked to (`client` is None).
pub async fn forward(
    mut sender: SendRequest<Body>,
    method: Method,
    headers: &HeaderMap,
    client: Option<OnUpgrade>,
    authority: &str,
    path_and_query: &str,
    timeout: Duration,
) -> Result<Response<Body>, String> {
    let target = format!("{authority}{path_and_query}");
    let mut request = Request::builder()
        .method(method.clone())
        .uri(path_and_query)
        .body(Body::empty())
        .map_err(|err| format!("{target}: {err}"))?;
    for (name, value) in headers {
        // The far end's own Host; no body is forwarded (none of these requests has one).
        if name != header::HOST && name != header::CONTENT_LENGTH {
            request.headers_mut().append(name, value.clone());
        }
    }
    request.headers_mut().insert(
        header::HOST,
        authority
            .parse()
            .map_err(|_| format!("{authority}: not a valid Host"))?,
    );
    let response = tokio::time::timeout(timeout, sender.send_request(request))
        .await
        .map_err(|_| format!("{method} {target}: timed out"))?
        .map_err(|err| format!("{method} {target}: {err}"))?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (parts, body) = response.into_parts();
        return Ok(Response::from_parts(parts, Body::new(body)));
    }
    let Some(client) = client else {
        return Err(format!(
            "{target} switched protocols for a request that did not ask to"
        ));
    };
    let mut answer = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    let answer = answer
        .body(Body::empty())
        .map_err(|err| format!("{target}: {err}"))?;
    tokio::spawn(async move {
        let upstream = match hyper::upgrade::on(response).await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(%err, "upgrade proxy: upstream did not switch");
                return;
            }
        };
        let downstream = match client.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(%err, "upgrade proxy: client did not switch");
                return;
            }
        };
        let (mut up, mut down) = (TokioIo::new(upstream), TokioIo::new(downstream));
        if let Err(err) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
            tracing::debug!(%err, "upgrade proxy: stream ended");
        }
    });
    Ok(answer)
}

/// `scheme://authority/path?query` → (authority, path?query), for the runtime's streaming URLs
/// (plain HTTP only).
pub fn split_http_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    match rest.find('/') {
        Some(slash) => Some((&rest[..slash], &rest[slash..])),
        None => Some((rest, "/")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_streaming_urls() {
        assert_eq!(
            split_http_url("http://127.0.0.1:4242/exec/abcd"),
            Some(("127.0.0.1:4242", "/exec/abcd"))
        );
        assert_eq!(split_http_url("http://[::1]:80"), Some(("[::1]:80", "/")));
        assert_eq!(split_http_url("https://x/y"), None);
    }
}
