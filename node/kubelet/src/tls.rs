//! HTTPS for the kubelet API: a self-signed serving certificate made at start (as the kubelet
//! does without `--tls-cert-file`), and a listener that hands axum TLS connections.
//!
//! The certificate is an ECDSA P-256 key (ring) in a minimal X.509 v3 certificate written in
//! DER by hand: subject and issuer `CN=<node>@<unix time>`, valid from an hour ago for a year,
//! the node's names and addresses as subjectAltNames, extKeyUsage serverAuth.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A TLS handshake slower than this is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no serving certificate could be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// ring could not generate or load the key.
    #[error("generating the serving key: {0}")]
    Key(String),
    /// rustls rejected the certificate or key.
    #[error("building the TLS config: {0}")]
    Config(#[from] rustls::Error),
}

/// A self-signed certificate and its PKCS#8 key, both DER.
pub struct SelfSigned {
    /// The certificate.
    pub cert: Vec<u8>,
    /// The private key (PKCS#8).
    pub key: Vec<u8>,
}

/// A self-signed serving certificate for `host` with `names` (DNS names or IP addresses) as
/// subjectAltNames.
pub fn self_signed(host: &str, names: &[String]) -> Result<SelfSigned, TlsError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|e| TlsError::Key(e.to_string()))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|e| TlsError::Key(e.to_string()))?;
    let now = jiff::Timestamp::now();
    let name = der::name(&format!("{host}@{}", now.as_second()));
    let not_before = now - jiff::SignedDuration::from_hours(1);
    let not_after = now + jiff::SignedDuration::from_hours(24 * 365);
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut serial).map_err(|e| TlsError::Key(e.to_string()))?;
    // Positive and without a leading zero byte.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let tbs = der::sequence(&[
        der::explicit(0, &der::integer(&[2])),
        der::integer(&serial),
        der::sequence(&[der::ECDSA_SHA256.to_vec()]),
        name.clone(),
        der::sequence(&[der::utc_time(not_before), der::utc_time(not_after)]),
        name,
        der::sequence(&[
            der::sequence(&[der::EC_PUBLIC_KEY.to_vec(), der::P256.to_vec()]),
            der::bit_string(key.public_key().as_ref()),
        ]),
        der::explicit(3, &der::sequence(&der::extensions(names))),
    ]);
    let signature = key
        .sign(&rng, &tbs)
        .map_err(|e| TlsError::Key(e.to_string()))?;
    let cert = der::sequence(&[
        tbs,
        der::sequence(&[der::ECDSA_SHA256.to_vec()]),
        der::bit_string(signature.as_ref()),
    ]);
    Ok(SelfSigned {
        cert,
        key: pkcs8.as_ref().to_vec(),
    })
}

/// A rustls server config serving `cert`.
pub fn server_config(cert: &SelfSigned) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.cert.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.clone())),
        )?;
    Ok(Arc::new(config))
}

/// TLS connections for `axum::serve`: TCP is accepted by a task that runs each handshake in a
/// task of its own, so a slow client never holds up the others. The tasks end with it.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Serves TLS with `config` on `listener`.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(%err, "accepting a kubelet API connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            ready,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task is gone only when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Just enough DER for a certificate.
mod der {
    use super::IpAddr;

    /// AlgorithmIdentifier content: ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
    pub const ECDSA_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    /// id-ecPublicKey (1.2.840.10045.2.1).
    pub const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// prime256v1 (1.2.840.10045.3.1.7).
    pub const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    const COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
    const SUBJECT_ALT_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x11];
    const EXT_KEY_USAGE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x25];
    const SERVER_AUTH: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    pub fn sequence(items: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &items.concat())
    }

    /// A non-negative INTEGER from big-endian bytes.
    pub fn integer(bytes: &[u8]) -> Vec<u8> {
        let mut content = bytes.to_vec();
        if content.first().is_some_and(|b| b & 0x80 != 0) {
            content.insert(0, 0);
        }
        tlv(0x02, &content)
    }

    pub fn bit_string(bytes: &[u8]) -> Vec<u8> {
        let mut content = vec![0];
        content.extend_from_slice(bytes);
        tlv(0x03, &content)
    }

    /// `[n] EXPLICIT`.
    pub fn explicit(n: u8, inner: &[u8]) -> Vec<u8> {
        tlv(0xa0 | n, inner)
    }

    pub fn utc_time(time: jiff::Timestamp) -> Vec<u8> {
        let text = time.strftime("%y%m%d%H%M%SZ").to_string();
        tlv(0x17, text.as_bytes())
    }

    /// A Name of one CN.
    pub fn name(common_name: &str) -> Vec<u8> {
        let attribute = sequence(&[COMMON_NAME.to_vec(), tlv(0x0c, common_name.as_bytes())]);
        sequence(&[tlv(0x31, &attribute)])
    }

    /// subjectAltName (DNS names and IP addresses) and extKeyUsage serverAuth.
    pub fn extensions(names: &[String]) -> Vec<Vec<u8>> {
        let general_names: Vec<Vec<u8>> = names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => tlv(0x87, &ip.octets()),
                Ok(IpAddr::V6(ip)) => tlv(0x87, &ip.octets()),
                Err(_) => tlv(0x82, name.as_bytes()),
            })
            .collect();
        let mut extensions = Vec::new();
        if !general_names.is_empty() {
            extensions.push(sequence(&[
                SUBJECT_ALT_NAME.to_vec(),
                tlv(0x04, &sequence(&general_names)),
            ]));
        }
        extensions.push(sequence(&[
            EXT_KEY_USAGE.to_vec(),
            tlv(0x04, &sequence(&[SERVER_AUTH.to_vec()])),
        ]));
        extensions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(der::tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        let long = der::tlv(0x04, &[0; 200]);
        assert_eq!(long[..3], [0x04, 0x81, 200]);
        let longer = der::tlv(0x04, &[0; 300]);
        assert_eq!(longer[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(der::integer(&[0x80]), [0x02, 2, 0, 0x80]);
    }

    /// Talks over a TLS pipe to a server with `cert`, from a client that trusts `cert` (as
    /// its own root) and checks `name` against its subjectAltNames.
    async fn round_trip(cert: &SelfSigned, name: &str) -> Result<Vec<u8>, std::io::Error> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let server = TlsAcceptor::from(server_config(cert).unwrap());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(cert.cert.clone())).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = tokio_rustls::TlsConnector::from(Arc::new(client));
        let (a, b) = tokio::io::duplex(64 * 1024);
        let serving = tokio::spawn(async move {
            let mut tls = server.accept(a).await?;
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await?;
            tls.write_all(b"pong").await?;
            tls.flush().await
        });
        let server_name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let mut tls = client.connect(server_name, b).await?;
        tls.write_all(b"ping").await?;
        tls.flush().await?;
        let mut buf = vec![0u8; 4];
        tls.read_exact(&mut buf).await?;
        serving.await.unwrap()?;
        Ok(buf)
    }

    /// A real handshake: rustls (webpki) parses the certificate, checks its signature with its
    /// own key and its subjectAltNames.
    #[tokio::test]
    async fn clients_can_verify_and_talk_to_it() {
        let cert = self_signed("node-a", &["node-a".into(), "127.0.0.1".into()]).unwrap();
        assert_eq!(round_trip(&cert, "127.0.0.1").await.unwrap(), b"pong");
        assert_eq!(round_trip(&cert, "node-a").await.unwrap(), b"pong");
        let err = round_trip(&cert, "10.9.9.9").await.unwrap_err();
        assert!(err.to_string().contains("certificate"), "{err}");
    }
}
