//! TLS of the controller listener (`listener.security.protocol.map` CONTROLLER:SSL): every
//! node, voter or broker, presents a certificate its peers' CA signed, and nothing is read
//! from a connection before its handshake has proven that.

use std::io;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How long a controller connection's TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A controller connection's byte stream: TCP, or TLS over it.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// The TLS of this process's controller connections: as a server (voters) and as a client
/// (voters to each other, brokers to voters).
#[derive(Debug, Clone)]
pub struct ControllerTls {
    /// Accepts peers; must require client certificates.
    pub server: Arc<rustls::ServerConfig>,
    /// Connects to peers, with this node's certificate.
    pub client: Arc<rustls::ClientConfig>,
}

static TLS: RwLock<Option<ControllerTls>> = RwLock::new(None);

/// Makes controller connections TLS (plaintext when never called); called again with renewed
/// certificates, new connections use them and open ones keep theirs.
pub fn set(tls: ControllerTls) {
    *TLS.write().unwrap_or_else(|p| p.into_inner()) = Some(tls);
}

fn current() -> Option<ControllerTls> {
    TLS.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The server side of an accepted connection: the TLS handshake, when TLS is on.
pub(crate) async fn accept(tcp: TcpStream) -> io::Result<Box<dyn Stream>> {
    let Some(tls) = current() else {
        return Ok(Box::new(tcp));
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.server));
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    Ok(Box::new(stream))
}

/// The client side of a connection to `addr`: the TLS handshake, when TLS is on.
pub(crate) async fn connect(tcp: TcpStream, addr: &str) -> io::Result<Box<dyn Stream>> {
    let Some(tls) = current() else {
        return Ok(Box::new(tcp));
    };
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(host, _)| host)
        .trim_matches(['[', ']']);
    let name = rustls_pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.client));
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    Ok(Box::new(stream))
}
