//! Connections to the other brokers of the cluster, by broker id, one request at a time per
//! broker: what a transaction coordinator's markers and a partition leader's KIP-890
//! verifications go through. A call that fails drops its connection; the next reconnects.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use kafka_protocol::protocol::Request;
use tokio::sync::Mutex;

use super::Client;
use crate::metadata_cache::{MetadataCache, live_node};

/// Open connections to brokers, by id.
pub struct BrokerConnections {
    client_id: &'static str,
    timeout: Duration,
    connections: Mutex<HashMap<i32, Client>>,
}

impl std::fmt::Debug for BrokerConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConnections")
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl BrokerConnections {
    /// Connections made as `client_id`, with `timeout` for connecting and each request.
    pub fn new(client_id: &'static str, timeout: Duration) -> Self {
        Self {
            client_id,
            timeout,
            connections: Mutex::default(),
        }
    }

    /// Sends `request` at `version` to broker `id`, found live in `metadata`.
    pub async fn call<R: Request>(
        &self,
        metadata: &MetadataCache,
        id: i32,
        version: i16,
        request: &R,
    ) -> anyhow::Result<R::Response> {
        let mut connections = self.connections.lock().await;
        // A call cancelled mid-way (its caller gave up) left its connection unusable.
        if connections.get(&id).is_some_and(Client::is_broken) {
            connections.remove(&id);
        }
        let client = match connections.entry(id) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(slot) => {
                let node = live_node(&metadata.image(), id)
                    .ok_or_else(|| anyhow::anyhow!("broker {id} is not live"))?;
                let addr = format!("{}:{}", node.host, node.port);
                slot.insert(Client::connect_as(&addr, self.client_id, self.timeout).await?)
            }
        };
        let answered = client.call(version, request).await;
        if answered.is_err() {
            connections.remove(&id);
        }
        answered
    }
}
