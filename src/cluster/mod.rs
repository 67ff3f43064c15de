//! A broker in the cluster: it registers with the controller quorum and heartbeats to keep its
//! lease, follows the committed metadata log into its image, and acts on the image (hosting
//! the replicas assigned to it, leading what it leads, applying configs, removing deleted
//! topics). Startup is Kafka's: register fenced, catch up with the metadata, open the local
//! partitions, then ask to be unfenced; shutdown asks to be fenced at once so that clients
//! move on without waiting for the lease to lapse.

pub mod admin;
pub mod configs;
pub mod moves;
pub mod quorum;
pub(crate) mod scram;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use strata_controller::raft::WriteRefusal;
use strata_controller::raft::active::{Heartbeat, HeartbeatAnswer};
use strata_controller::raft::admin::Invalid;
use strata_controller::raft::client::{self, ClientError};
use strata_controller::raft::follower::{FollowerUpdate, apply_update};
use strata_controller::{Change, Endpoint};
use tokio::sync::watch;

use crate::broker::StrataBroker;
use crate::meta_properties::MetaProperties;

/// How long one metadata fetch waits for news (a long poll).
const FETCH_WAIT: Duration = Duration::from_secs(5);
/// Pause after a failed call to the quorum.
const RETRY: Duration = Duration::from_millis(200);

impl StrataBroker {
    fn heartbeat_request(&self, want_fence: bool, want_shutdown: bool) -> Heartbeat {
        let config = self.config();
        Heartbeat {
            broker_id: config.node_id,
            incarnation: self.incarnation,
            rack: config.rack.clone(),
            // The inter-broker listener first: brokers reach each other on the first one.
            listeners: config
                .kafka_listeners
                .iter()
                .map(|l| Endpoint {
                    name: l.name.clone(),
                    host: l.advertised.0.clone(),
                    port: l.advertised.1,
                })
                .chain([Endpoint {
                    name: crate::metadata_cache::ADMIN_LISTENER.into(),
                    host: config.advertised.0.clone(),
                    port: config.admin_listener.port(),
                }])
                .collect(),
            cluster_id: self.meta_properties.as_ref().map(|m| m.cluster_id.clone()),
            want_fence,
            want_shutdown,
            metadata_offset: Some(self.image().offset),
        }
    }

    async fn heartbeat(
        &self,
        want_fence: bool,
        want_shutdown: bool,
    ) -> Result<HeartbeatAnswer, ClientError> {
        let answer = client::heartbeat(
            self.admin().controllers(),
            self.heartbeat_request(want_fence, want_shutdown),
        )
        .await;
        match &answer {
            Ok(answer) => self.health().heartbeat_answered(answer.fenced),
            Err(e) => self.health().heartbeat_failed(e.to_string()),
        }
        answer
    }

    /// Fetches and applies one update of the metadata log; acts on it.
    async fn follow_once(self: &Arc<Self>, wait: Duration) -> Result<(), ClientError> {
        let after = self.image().offset;
        let update = client::fetch_metadata(self.admin().controllers(), after, wait).await?;
        let (applied, offset) = self
            .metadata()
            .update(|image| (apply_update(image, update), image.offset));
        let partitions_moved = match &applied {
            FollowerUpdate::Replaced => true,
            FollowerUpdate::Changes(changes) => changes.iter().any(|c| {
                matches!(
                    c,
                    Change::PartitionCreated { .. } | Change::PartitionChanged { .. }
                )
            }),
        };
        let broker = Arc::clone(self);
        let acted = tokio::task::spawn_blocking(move || {
            match applied {
                FollowerUpdate::Replaced => broker.replicas().apply_all(false),
                FollowerUpdate::Changes(changes) => broker.replicas().apply_changes(&changes),
            }?;
            broker.coordinator().sync_leadership()?;
            broker.transactions().sync_leadership()
        })
        .await;
        match acted {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("acting on metadata failed: {e}"),
            Err(e) => tracing::error!("acting on metadata panicked: {e}"),
        }
        // Partitions this broker now leads see their remote tier before anyone waits on them.
        if partitions_moved {
            open_remote_logs(self).await;
        }
        self.metadata().publish_applied(offset);
        Ok(())
    }
}

/// Joins the cluster: registers, catches up with the metadata, opens this broker's partitions,
/// loads its consumer groups and waits to be unfenced. Gives up when `shutdown` turns true, or
/// at once when the quorum belongs to another cluster.
pub async fn join(
    broker: &Arc<StrataBroker>,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    let registered = loop {
        if *shutdown.borrow() {
            bail!("stopped before joining the cluster");
        }
        match broker.heartbeat(true, false).await {
            Ok(answer) => break answer,
            Err(ClientError::Refused(WriteRefusal::Invalid(Invalid::ClusterId(message)))) => {
                bail!("{message}")
            }
            Err(e) => {
                if last_report.elapsed() > Duration::from_secs(5) {
                    tracing::warn!(
                        waited_s = started.elapsed().as_secs(),
                        "cannot register with the controllers yet: {e}"
                    );
                    last_report = Instant::now();
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    if broker.meta_properties.is_none() {
        MetaProperties {
            cluster_id: registered.cluster_id.clone(),
            node_id: broker.config().node_id,
        }
        .write(&broker.config().data_dir)?;
    }
    tracing::info!(cluster_id = %registered.cluster_id, node = broker.config().node_id, "registered with the metadata quorum");
    while broker.image().offset < registered.metadata_offset {
        if let Err(e) = broker.follow_once(Duration::ZERO).await {
            tracing::warn!("fetching the metadata failed: {e}");
            tokio::time::sleep(RETRY).await;
        }
    }
    // The directory belonged to this cluster before: partitions it holds that the image does
    // not give this broker were deleted while it was away.
    let known_dir = broker.meta_properties.is_some();
    let opening = Arc::clone(broker);
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        opening.replicas().apply_all(known_dir)?;
        opening.coordinator().sync_leadership()?;
        opening.transactions().sync_leadership()?;
        Ok(())
    })
    .await??;
    let unfenced = loop {
        if *shutdown.borrow() {
            bail!("stopped before being unfenced");
        }
        match broker.heartbeat(false, false).await {
            Ok(answer) if !answer.fenced => break answer,
            Ok(_) => tokio::time::sleep(RETRY).await,
            Err(e) => {
                tracing::warn!("heartbeat failed: {e}");
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    // Unfencing gave this broker back the leadership of its partitions: apply it (and open
    // their remote tiers) before serving.
    while broker.image().offset < unfenced.metadata_offset {
        if let Err(e) = broker.follow_once(Duration::ZERO).await {
            tracing::warn!("fetching the metadata failed: {e}");
            tokio::time::sleep(RETRY).await;
        }
    }
    // Restored topics are placed like new ones, so only once this broker may hold them.
    if broker.config().remote.as_ref().is_some_and(|r| r.restore)
        && let Some(remote) = broker.remote()
    {
        let offset = broker.admin().restore_topics(remote).await?;
        while broker.image().offset < offset {
            if let Err(e) = broker.follow_once(Duration::ZERO).await {
                tracing::warn!("fetching the metadata failed: {e}");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
    tracing::info!(
        took_ms = started.elapsed().as_millis() as u64,
        partitions = broker.replicas().all().len(),
        "joined the cluster"
    );
    broker.health().set_joined();
    Ok(())
}

/// Loads the manifests of the tiered partitions this broker leads, so that the log start and
/// timestamp lookups cover the remote tier from the first request (and an empty disk
/// continues after it). A store that fails now is retried by the upload passes.
async fn open_remote_logs(broker: &Arc<StrataBroker>) {
    let Some(remote) = broker.remote().cloned() else {
        return;
    };
    let cluster_id = broker.image().cluster_id.clone().unwrap_or_default();
    for partition in broker.replicas().all() {
        if !(partition.is_leader() && partition.log().config().tiered()) {
            continue;
        }
        if remote
            .opened(&partition.topic, partition.index)
            .await
            .is_some_and(|r| {
                r.log.key().topic_id == partition.topic_id
                    && r.leader_epoch == partition.leader_epoch()
            })
        {
            continue;
        }
        if let Err(e) = remote.remote_for(&cluster_id, &partition).await {
            tracing::warn!(topic = %partition.topic, partition = partition.index, "remote log not loaded yet: {e}");
        }
    }
}

/// Heartbeats every `broker.heartbeat.interval.ms` until the task is stopped.
pub async fn heartbeat_loop(broker: Arc<StrataBroker>) {
    let mut ticks = tokio::time::interval(broker.config().heartbeat_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        match broker.heartbeat(false, false).await {
            Ok(answer) => {
                if failing {
                    tracing::info!("heartbeats answered again");
                    failing = false;
                }
                if answer.fenced {
                    tracing::warn!("the controller has this broker fenced");
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!("heartbeat failed: {e}");
                    failing = true;
                }
            }
        }
    }
}

/// Follows the metadata log until the task is stopped.
pub async fn follow_loop(broker: Arc<StrataBroker>) {
    loop {
        if let Err(e) = broker.follow_once(FETCH_WAIT).await {
            tracing::warn!("fetching the metadata failed: {e}");
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// Asks the controller to fence this broker now (a clean shutdown); best effort.
pub async fn leave(broker: &StrataBroker) {
    match tokio::time::timeout(Duration::from_secs(3), broker.heartbeat(false, true)).await {
        Ok(Ok(_)) => tracing::info!("fenced for shutdown"),
        Ok(Err(e)) => tracing::warn!("could not tell the controller about the shutdown: {e}"),
        Err(_) => tracing::warn!("the controller did not answer the shutdown heartbeat"),
    }
}

/// A single combined node in this process (controller on an ephemeral port, broker joined),
/// for unit tests that call the broker directly.
#[cfg(test)]
pub(crate) async fn single_node(
    config: crate::config::BrokerConfig,
) -> (Arc<StrataBroker>, strata_controller::raft::Controller) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let controller = crate::cli::cluster::start_controller(
        config.node_id as u64,
        listener,
        &config.data_dir.join(crate::server::CONTROLLER_DIR),
        Default::default(),
        Default::default(),
        None,
        false,
    )
    .await
    .unwrap();
    let broker = Arc::new(StrataBroker::open(config, vec![addr], None).unwrap());
    let (_stop, mut shutdown) = watch::channel(false);
    join(&broker, &mut shutdown).await.unwrap();
    tokio::spawn(follow_loop(Arc::clone(&broker)));
    (broker, controller)
}
