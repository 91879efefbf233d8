//! The apiserver's client side of the kubelet API: HTTPS without verifying the kubelet's
//! serving certificate, as Kubernetes does without `--kubelet-certificate-authority` (kubelets
//! make self-signed ones). The handshake's signatures are still checked, so the kubelet holds
//! the key of the certificate it presents.

/// A TLS connection to the kubelet API at `host`:`port` within `timeout`, and its authority
/// (`host:port`, IPv6 in brackets).
pub async fn connect(
    host: &str,
    port: u16,
    timeout: std::time::Duration,
) -> Result<
    (
        tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
        String,
    ),
    String,
> {
    let authority = match host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{host}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    };
    let stream = skiff_upgrade_proxy::connect_tcp(&authority, timeout).await?;
    let server_name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|err| format!("kubelet address {host:?}: {err}"))?;
    let stream = tokio::time::timeout(
        timeout,
        skiff_unverified_tls::connector().connect(server_name, stream),
    )
    .await
    .map_err(|_| format!("TLS handshake with {authority}: timed out"))?
    .map_err(|err| format!("TLS handshake with {authority}: {err}"))?;
    Ok((stream, authority))
}
