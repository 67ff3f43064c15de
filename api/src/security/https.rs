//! The admin API over TLS (ADMIN:SSL): a listener for `axum::serve` that yields connections
//! whose handshake has finished. Handshakes run in their own tasks, so a slow or silent client
//! delays no one else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

use super::TlsContext;
use crate::metrics::KAFKA;

/// Longest a client may take over its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the server to take them.
const BACKLOG: usize = 64;

/// TLS connections of the admin listener, handshakes done.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `listener` and runs each handshake with `tls`'s current certificates, until
    /// this listener is dropped.
    pub fn new(listener: TcpListener, tls: Arc<TlsContext>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(BACKLOG);
        tokio::spawn(async move {
            loop {
                let (socket, peer) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of descriptors, most likely: wait rather than spin.
                            tracing::warn!("admin listener: accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                    _ = tx.closed() => return,
                };
                let (tx, acceptor) = (tx.clone(), tls.acceptor());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                        Ok(Ok(stream)) => {
                            KAFKA.tls_handshake("ADMIN", "ok");
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => {
                            KAFKA.tls_handshake("ADMIN", "failed");
                            tracing::debug!(%peer, "admin API: TLS handshake failed: {e}");
                        }
                        Err(_) => KAFKA.tls_handshake("ADMIN", "timeout"),
                    }
                });
            }
        });
        Ok(Self { accepted, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accepting task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
