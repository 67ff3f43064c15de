//! The Kafka listeners: accept connections and serve each on its own task, within the
//! broker's connection limits (`max.connections`, `max.connections.per.ip`) and request
//! memory budget (`queued.max.request.bytes`), which all listeners share.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::broker::Broker;
use crate::connection;
use crate::frame::FrameLimits;
use crate::limits::ACCEPT_RETRY;
use crate::memory::RequestMemory;
use crate::metrics::KAFKA;
use crate::security::ListenerInfo;

/// Settings of the protocol server, by their Kafka names.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request frame accepted (`socket.request.max.bytes`).
    pub max_request_bytes: usize,
    /// Bytes of requests being received or queued, broker-wide (`queued.max.request.bytes`).
    pub queued_max_request_bytes: usize,
    /// Longest a request may take to arrive once its first byte has
    /// (`request.receive.timeout.ms`).
    pub request_receive_timeout: Duration,
    /// A connection with nothing received and nothing in flight for this long is closed
    /// (`connections.max.idle.ms`).
    pub connections_max_idle: Duration,
    /// Connections served at once; more wait in the accept queue (`max.connections`).
    pub max_connections: usize,
    /// Connections from one address; more are closed at once (`max.connections.per.ip`).
    pub max_connections_per_ip: usize,
    /// Longest a Fetch waits for remote data before answering without it
    /// (`remote.fetch.max.wait.ms`, KIP-1018).
    pub remote_fetch_max_wait: Duration,
    /// The broker's incremental fetch sessions (KIP-227), shared by every listener.
    pub fetch_sessions: std::sync::Arc<crate::fetch_session::FetchSessions>,
    /// Whether Metadata may create missing topics (`auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Whether a transactional batch that opens its producer's transaction on a partition is
    /// first verified with the coordinator (`transaction.partition.verification.enable`,
    /// KIP-890).
    pub txn_partition_verification: bool,
    /// Longest a TLS handshake may take (`ssl.handshake.timeout.ms`).
    pub tls_handshake_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: 100 * 1024 * 1024,
            queued_max_request_bytes: 512 * 1024 * 1024,
            request_receive_timeout: Duration::from_secs(30),
            connections_max_idle: Duration::from_secs(600),
            max_connections: i32::MAX as usize,
            max_connections_per_ip: i32::MAX as usize,
            remote_fetch_max_wait: Duration::from_millis(500),
            fetch_sessions: std::sync::Arc::default(),
            auto_create_topics: true,
            txn_partition_verification: true,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Open connections per peer address.
#[derive(Debug, Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// One counted connection of an address; uncounted when dropped.
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut table = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = table.entry(ip).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            table: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut table = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = table.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                table.remove(&self.ip);
            }
        }
    }
}

/// What every listener's connections share: the limits and the request memory budget.
struct Shared {
    config: ServerConfig,
    limits: FrameLimits,
    slots: Arc<Semaphore>,
    per_ip: Arc<PerIp>,
}

/// Accepts connections on every listener until `shutdown` turns true, then waits for every
/// connection to finish its in-flight requests.
pub async fn serve<B: Broker>(
    listeners: Vec<(TcpListener, Arc<ListenerInfo>)>,
    broker: Arc<B>,
    config: ServerConfig,
    shutdown: watch::Receiver<bool>,
) {
    let limits = FrameLimits {
        max_bytes: config.max_request_bytes,
        memory: RequestMemory::new(config.queued_max_request_bytes),
        receive_timeout: config.request_receive_timeout,
    };
    KAFKA.set_request_memory_limit(limits.memory.total_bytes());
    let shared = Arc::new(Shared {
        slots: Arc::new(Semaphore::new(
            config.max_connections.clamp(1, Semaphore::MAX_PERMITS),
        )),
        per_ip: Arc::new(PerIp::default()),
        config,
        limits,
    });
    let mut loops = JoinSet::new();
    for (listener, info) in listeners {
        if let Some(tls) = &info.tls {
            tokio::spawn(Arc::clone(tls).watch(shutdown.clone()));
        }
        loops.spawn(accept_loop(
            listener,
            info,
            Arc::clone(&broker),
            Arc::clone(&shared),
            shutdown.clone(),
        ));
    }
    while loops.join_next().await.is_some() {}
}

/// One listener's accept loop.
async fn accept_loop<B: Broker>(
    listener: TcpListener,
    info: Arc<ListenerInfo>,
    broker: Arc<B>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let Shared {
        config,
        limits,
        slots,
        per_ip,
    } = &*shared;
    let mut connections = JoinSet::new();
    let mut stop = shutdown.clone();
    loop {
        // At max.connections the listener stops accepting: new peers wait in the kernel's
        // accept queue until a connection closes, as in Kafka.
        let slot = tokio::select! {
            slot = Arc::clone(slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = stopped(&mut stop) => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(ip_slot) = per_ip.admit(peer.ip(), config.max_connections_per_ip) else {
                        tracing::info!(%peer, max = config.max_connections_per_ip, "refusing a connection over max.connections.per.ip");
                        KAFKA.connection_refused();
                        drop(stream);
                        continue;
                    };
                    tracing::debug!(%peer, listener = %info.name, "connection accepted");
                    let serving = connection::serve(
                        stream,
                        peer,
                        Arc::clone(&info),
                        Arc::clone(&broker),
                        config.clone(),
                        limits.clone(),
                        shutdown.clone(),
                    );
                    KAFKA.connection_opened();
                    connections.spawn(async move {
                        serving.await;
                        KAFKA.connection_closed();
                        drop((slot, ip_slot));
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Resolves once shutdown has begun (the `watch::Ref` of `wait_for` is not `Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
