//! The Kafka listener: accepts connections and serves each on its own task.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::Broker;
use crate::connection;

/// Settings of the protocol server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request frame accepted (`socket.request.max.bytes`).
    pub max_request_bytes: usize,
    /// Whether Metadata may create missing topics (`auto.create.topics.enable`).
    pub auto_create_topics: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: 100 * 1024 * 1024,
            auto_create_topics: true,
        }
    }
}

/// Accepts connections until `shutdown` turns true, then waits for every connection to finish
/// its in-flight requests.
pub async fn serve<B: Broker>(
    listener: TcpListener,
    broker: Arc<B>,
    config: ServerConfig,
    shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "connection accepted");
                    connections.spawn(connection::serve(stream, peer, Arc::clone(&broker), config.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}
