//! The apiserver's client side of the kubelet API: HTTPS without verifying the kubelet's
//! serving certificate, as Kubernetes does without `--kubelet-certificate-authority` (kubelets
//! make self-signed ones). The handshake's signatures are still checked, so the kubelet holds
//! the key of the certificate it presents.

use std::sync::{Arc, OnceLock};

/// Accepts any kubelet serving certificate; checks that the kubelet holds its key.
#[derive(Debug)]
struct AnyKubeletCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyKubeletCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS client for kubelets (built once).
pub fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    static CONNECTOR: OnceLock<Result<tokio_rustls::TlsConnector, String>> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|err| err.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyKubeletCertificate(provider)))
                .with_no_client_auth();
            Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
        })
        .clone()
}

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
    let stream = tokio::time::timeout(timeout, tls_connector()?.connect(server_name, stream))
        .await
        .map_err(|_| format!("TLS handshake with {authority}: timed out"))?
        .map_err(|err| format!("TLS handshake with {authority}: {err}"))?;
    Ok((stream, authority))
}
