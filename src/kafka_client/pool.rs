//! Connections to the other brokers of the cluster, by broker id: what a transaction
//! coordinator's markers and a partition leader's KIP-890 verifications go through. Calls to
//! one broker run side by side on up to [`MAX_PER_BROKER`] connections, so that one slow
//! answer (a coordinator waiting for a transaction's markers) holds up no other producer's; a
//! connection is reused once its call is answered, and dropped when the call fails or is
//! given up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::protocol::Request;
use tokio::sync::Semaphore;

use super::Client;
use crate::metadata_cache::{MetadataCache, live_node};

/// Calls in flight to one broker at once.
const MAX_PER_BROKER: usize = 8;

/// One broker's idle connections, and the permits of its calls.
struct Broker {
    idle: Vec<Client>,
    calls: Arc<Semaphore>,
}

/// Open connections to brokers, by id.
pub struct BrokerConnections {
    client_id: &'static str,
    timeout: Duration,
    brokers: Mutex<HashMap<i32, Broker>>,
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
            brokers: Mutex::default(),
        }
    }

    fn brokers(&self) -> MutexGuard<'_, HashMap<i32, Broker>> {
        self.brokers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `request` at `version` to broker `id`, found live in `metadata`.
    pub async fn call<R: Request>(
        &self,
        metadata: &MetadataCache,
        id: i32,
        version: i16,
        request: &R,
    ) -> anyhow::Result<R::Response> {
        let calls = {
            let mut brokers = self.brokers();
            let broker = brokers.entry(id).or_insert_with(|| Broker {
                idle: Vec::new(),
                calls: Arc::new(Semaphore::new(MAX_PER_BROKER)),
            });
            Arc::clone(&broker.calls)
        };
        let _permit = calls.acquire_owned().await?;
        let idle = self
            .brokers()
            .get_mut(&id)
            .and_then(|b| b.idle.pop())
            .filter(|c| !c.is_broken());
        let mut client = match idle {
            Some(client) => client,
            None => {
                let node = live_node(&metadata.image(), id)
                    .ok_or_else(|| anyhow::anyhow!("broker {id} is not live"))?;
                let addr = format!("{}:{}", node.host, node.port);
                Client::connect_as(&addr, self.client_id, self.timeout).await?
            }
        };
        // Cancelled here, the client is dropped with its half-done call: never reused.
        let answered = client.call(version, request).await;
        if answered.is_ok()
            && !client.is_broken()
            && let Some(broker) = self.brokers().get_mut(&id)
        {
            broker.idle.push(client);
        }
        answered
    }
}
