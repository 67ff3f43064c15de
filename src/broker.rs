//! `StrataBroker`: a broker of the cluster behind the Kafka API, composed of parts with one
//! job each (Kafka's): the [`MetadataCache`] it follows from the controller quorum (see
//! [`crate::cluster`]), the [`ReplicaManager`] that hosts its partitions and serves produce
//! and fetch, the [`GroupCoordinatorService`], and the [`ClusterAdmin`] that sends topic and
//! config changes to the active controller. This type wires them together and answers the
//! API's [`Broker`] trait by delegating to them.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, RwLockReadGuard};

use bytes::Bytes;
use strata_api::broker::{
    Appended, ClusterInfo, ConfigEntry, ConfigOp, NewTopic, OffsetAndTimestamp, OffsetSpec,
    PartitionRead, TopicMetadata,
};
use strata_api::{Broker, BrokerError};
use strata_controller::MetadataImage;
use strata_controller::raft::admin::IsrChange;
use uuid::Uuid;

use crate::cluster::admin::ClusterAdmin;
pub use crate::cluster::admin::{MAX_PARTITIONS_PER_TOPIC, validate_topic_name};
use crate::config::BrokerConfig;
use crate::group::{GroupCoordinatorService, Groups};
use crate::log::LogError;
use crate::meta_properties::MetaProperties;
use crate::metadata_cache::{MetadataCache, live_node_on, topic_metadata};
use crate::remote_log_manager::RemoteLogManager;
use crate::replica_manager::ReplicaManager;
use strata_api::security::Session;
use strata_api::security::acl::{Acl, Operation, ResourceType};
use strata_api::security::scram::{ScramCredential, ScramMechanism};

/// The broker.
#[derive(Debug)]
pub struct StrataBroker {
    config: Arc<BrokerConfig>,
    /// This process start, as the controllers tell restarts apart.
    pub(crate) incarnation: Uuid,
    /// The identity the data directory had when the broker started.
    pub(crate) meta_properties: Option<MetaProperties>,
    metadata: Arc<MetadataCache>,
    replicas: Arc<ReplicaManager>,
    groups: GroupCoordinatorService,
    txns: crate::txn::TransactionCoordinatorService,
    admin: Arc<ClusterAdmin>,
    /// What `/v1/health` and `/v1/ready` report.
    health: crate::health::NodeHealth,
    /// The cluster links' mirror tasks on this broker.
    links: crate::cluster_link::LinkManager,
    /// `authorizer.class.name`: the ACLs' judge, when one is configured.
    authorizer: Option<crate::authorizer::Authorizer>,
}

impl StrataBroker {
    /// Prepares the data directory; partitions are opened once the broker has joined the
    /// cluster and knows which are its own ([`crate::cluster::join`]).
    pub fn open(
        config: BrokerConfig,
        controllers: Vec<String>,
        remote: Option<Arc<RemoteLogManager>>,
    ) -> Result<Self, LogError> {
        let config = Arc::new(config);
        let metadata = Arc::new(MetadataCache::default());
        let replicas = Arc::new(ReplicaManager::new(
            Arc::clone(&config),
            Arc::clone(&metadata),
            remote,
        )?);
        let meta_properties = MetaProperties::read(&config.data_dir)?;
        if let Some(props) = &meta_properties {
            props.check_node(&config.data_dir, config.node_id)?;
            if let Some(configured) = config
                .cluster_id
                .as_ref()
                .filter(|c| **c != props.cluster_id)
            {
                return Err(LogError::io(
                    &config.data_dir,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "data belongs to cluster {} but cluster.id is {configured}",
                            props.cluster_id
                        ),
                    ),
                ));
            }
        }
        if replicas.clean_start() {
            tracing::info!("opening data directory {}", config.data_dir.display());
        } else {
            tracing::info!(
                "opening data directory {} after an unclean shutdown: recovering the segments \
                 past the recovery checkpoint",
                config.data_dir.display()
            );
        }
        let admin = Arc::new(ClusterAdmin::new(
            Arc::clone(&config),
            controllers,
            Arc::clone(&metadata),
        ));
        let groups = GroupCoordinatorService::new(
            Groups::new(config.coordinator()),
            Arc::clone(&replicas),
            Arc::clone(&metadata),
            Arc::clone(&admin),
        );
        let txns = crate::txn::TransactionCoordinatorService::new(
            config.transactions,
            config.coordinator().offsets_partitions,
            Arc::clone(&replicas),
            Arc::clone(&metadata),
            Arc::clone(&admin),
        );
        let authorizer = config
            .authorizer
            .as_ref()
            .map(|c| crate::authorizer::Authorizer::new(c.clone()));
        Ok(Self {
            authorizer,
            config,
            incarnation: Uuid::new_v4(),
            meta_properties,
            metadata,
            replicas,
            groups,
            txns,
            admin,
            health: crate::health::NodeHealth::default(),
            links: crate::cluster_link::LinkManager::default(),
        })
    }

    /// The cluster links' mirror tasks on this broker.
    pub fn links(&self) -> &crate::cluster_link::LinkManager {
        &self.links
    }

    /// The node's health state.
    pub fn health(&self) -> &crate::health::NodeHealth {
        &self.health
    }

    /// The remote tier, if on.
    pub fn remote(&self) -> Option<&Arc<RemoteLogManager>> {
        self.replicas.remote()
    }

    /// The transaction coordinator.
    pub fn transactions(&self) -> &crate::txn::TransactionCoordinatorService {
        &self.txns
    }

    /// The group coordinator.
    pub fn coordinator(&self) -> &GroupCoordinatorService {
        &self.groups
    }

    /// The consumer groups.
    pub fn groups_state(&self) -> &Groups {
        self.groups.groups()
    }

    /// The partitions and their background work.
    pub fn replicas(&self) -> &ReplicaManager {
        &self.replicas
    }

    /// Topic, config and producer id changes through the quorum.
    pub fn admin(&self) -> &ClusterAdmin {
        &self.admin
    }

    /// The applied metadata.
    pub fn metadata(&self) -> &MetadataCache {
        &self.metadata
    }

    /// The broker's configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Asks the controller for the ISR changes of the partitions this broker leads (Kafka's
    /// ISR shrink and expansion): followers behind for longer than `replica.lag.time.max.ms`
    /// leave, caught-up ones join. Runs every few hundred milliseconds.
    pub async fn maintain_isr(&self) {
        let max_lag = self.config.replica_lag_time_max.as_millis() as i64;
        let mut proposed = Vec::new();
        {
            let image = self.metadata.image();
            for partition in self.replicas.all() {
                let Some((mut isr, leader_epoch, partition_epoch)) = partition.propose_isr(max_lag)
                else {
                    continue;
                };
                // The controller refuses a fenced broker joining (one stopping, say): leave
                // it out rather than ask again every tick.
                let current = partition.replica_set().isr.clone();
                isr.retain(|r| current.contains(r) || image.is_active(*r));
                if isr == current {
                    partition.isr_refused();
                    continue;
                }
                partition.replica_set().pending_isr = Some(isr.clone());
                tracing::info!(topic = %partition.topic, partition = partition.index, ?isr, "asking for a new ISR");
                let change = IsrChange {
                    broker_id: self.config.node_id,
                    topic_id: partition.topic_id,
                    partition: partition.index,
                    leader_epoch,
                    partition_epoch,
                    isr,
                };
                proposed.push((partition, (current.len(), change)));
            }
        }
        if proposed.is_empty() {
            return;
        }
        let (partitions, changes): (Vec<_>, Vec<_>) = proposed.into_iter().unzip();
        let sizes: Vec<(usize, usize)> = changes
            .iter()
            .map(|(before, change)| (*before, change.isr.len()))
            .collect();
        let changes = changes.into_iter().map(|(_, change)| change).collect();
        match self.admin.alter_partitions(changes).await {
            Ok(results) => {
                for ((partition, refused), (before, after)) in
                    partitions.iter().zip(results).zip(sizes)
                {
                    let Some(why) = refused else {
                        crate::metrics::BROKER.isr_changed(before, after);
                        continue;
                    };
                    tracing::warn!(topic = %partition.topic, partition = partition.index, "ISR change refused: {why}");
                    partition.isr_refused();
                }
            }
            Err(e) => {
                tracing::warn!(partitions = partitions.len(), "ISR changes not made: {e}");
                for partition in &partitions {
                    partition.isr_refused();
                }
            }
        }
    }

    /// The metadata image as this broker has applied it.
    pub fn image(&self) -> RwLockReadGuard<'_, MetadataImage> {
        self.metadata.image()
    }
}

impl Broker for StrataBroker {
    type Groups = GroupCoordinatorService;
    type Txns = crate::txn::TransactionCoordinatorService;

    fn txns(&self) -> &crate::txn::TransactionCoordinatorService {
        &self.txns
    }

    fn groups(&self) -> &GroupCoordinatorService {
        &self.groups
    }

    fn authorizer_enabled(&self) -> bool {
        self.authorizer.is_some()
    }

    fn authorize(
        &self,
        session: &Session,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        match &self.authorizer {
            Some(authorizer) => {
                authorizer.authorize(&self.image(), session, operation, resource_type, name)
            }
            None => true,
        }
    }

    fn may_write_some_topic(&self, session: &Session) -> bool {
        match &self.authorizer {
            Some(authorizer) => authorizer.may_write_some_topic(&self.image(), session),
            None => true,
        }
    }

    fn acls(&self) -> Vec<(Uuid, Acl)> {
        crate::authorizer::acls(&self.image())
    }

    fn create_acls(&self, acls: Vec<Acl>) -> impl Future<Output = Result<(), BrokerError>> + Send {
        let records = acls.iter().map(crate::authorizer::to_record).collect();
        let admin = Arc::clone(&self.admin);
        async move {
            admin
                .request(strata_controller::raft::admin::AdminRequest::CreateAcls(
                    records,
                ))
                .await
                .map(|_| ())
        }
    }

    fn delete_acls(&self, ids: Vec<Uuid>) -> impl Future<Output = Result<(), BrokerError>> + Send {
        let admin = Arc::clone(&self.admin);
        async move {
            admin
                .request(strata_controller::raft::admin::AdminRequest::DeleteAcls(
                    ids,
                ))
                .await
                .map(|_| ())
        }
    }

    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        crate::cluster::scram::credential(&self.image(), user, mechanism)
    }

    fn scram_users(&self) -> BTreeMap<String, Vec<(ScramMechanism, i32)>> {
        crate::cluster::scram::users(&self.image())
    }

    fn alter_scram(
        &self,
        updates: Vec<strata_api::broker::ScramUpdate>,
    ) -> impl Future<Output = Result<Vec<Option<String>>, BrokerError>> + Send {
        self.admin.alter_scram(updates)
    }

    fn cluster(&self, listener: &str) -> ClusterInfo {
        let image = self.image();
        let brokers = image
            .brokers
            .keys()
            .filter_map(|id| live_node_on(&image, *id, listener))
            .collect();
        let (host, port) = self
            .config
            .kafka_listeners
            .iter()
            .find(|l| l.name == listener)
            .map_or(&self.config.advertised, |l| &l.advertised);
        ClusterInfo {
            cluster_id: image.cluster_id.clone().unwrap_or_default(),
            node_id: self.config.node_id,
            host: host.clone(),
            port: *port as i32,
            // As in KRaft: clients send controller-bound requests to any live broker, which
            // forwards them to the quorum.
            controller_id: self.config.node_id,
            brokers,
        }
    }

    async fn topics(
        &self,
        names: Option<Vec<String>>,
        auto_create: bool,
    ) -> Vec<(String, Result<TopicMetadata, BrokerError>)> {
        {
            let Some(names) = names else {
                let image = self.image();
                return image
                    .topics
                    .values()
                    .map(|t| (t.name.clone(), Ok(topic_metadata(&image, t))))
                    .collect();
            };
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                let existing = {
                    let image = self.image();
                    image.topic(&name).map(|t| topic_metadata(&image, t))
                };
                let result = match existing {
                    Some(meta) => Ok(meta),
                    None if auto_create && self.config.auto_create_topics => {
                        let topic = NewTopic {
                            name: name.clone(),
                            partitions: None,
                            replication_factor: None,
                            assignments: BTreeMap::new(),
                            configs: BTreeMap::new(),
                        };
                        match self.admin.create_topic(topic, false).await {
                            Err(BrokerError::TopicAlreadyExists(_)) => {
                                let image = self.image();
                                image
                                    .topic(&name)
                                    .map(|t| topic_metadata(&image, t))
                                    .ok_or(BrokerError::LeaderNotAvailable)
                            }
                            other => other,
                        }
                    }
                    None => {
                        validate_topic_name(&name).and(Err(BrokerError::UnknownTopicOrPartition))
                    }
                };
                out.push((name, result));
            }
            out
        }
    }

    fn topic_name(&self, topic_id: Uuid) -> Option<String> {
        self.image().topics.get(&topic_id).map(|t| t.name.clone())
    }

    fn topic_id(&self, name: &str) -> Option<Uuid> {
        self.image().topic_ids.get(name).copied()
    }

    fn topic_names(&self) -> Vec<String> {
        self.image()
            .topics
            .values()
            .map(|t| t.name.clone())
            .collect()
    }

    fn quorum(
        &self,
    ) -> impl Future<Output = Result<strata_api::broker::QuorumInfo, BrokerError>> + Send {
        let admin = Arc::clone(&self.admin);
        async move { crate::cluster::quorum::describe(admin.controllers()).await }
    }

    fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        timeout: std::time::Duration,
    ) -> impl Future<Output = Result<i64, BrokerError>> + Send {
        self.replicas
            .delete_records(topic, partition, offset, timeout)
    }

    fn write_txn_marker(
        &self,
        topic: &str,
        partition: i32,
        marker: strata_api::broker::TxnMarker,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send {
        let appended = self.replicas.append_marker(
            topic,
            partition,
            marker.producer_id,
            marker.producer_epoch,
            strata_record::control::Marker {
                commit: marker.commit,
                coordinator_epoch: marker.coordinator_epoch,
            },
        );
        let waiting = appended.as_ref().ok().filter(|a| a.must_wait).map(|a| {
            self.replicas
                .wait_acked(topic, partition, a.next_offset, -1)
        });
        // Offsets committed in the transaction count (or go) once the marker is in.
        let groups = (topic == crate::group::OFFSETS_TOPIC).then(|| self.groups.groups());
        async move {
            appended?;
            if let Some(wait) = waiting {
                wait.await?;
            }
            if let Some(groups) = groups {
                groups.complete_txn(partition, marker.producer_id, marker.commit);
            }
            Ok(())
        }
    }

    fn producers(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<strata_api::broker::ProducerInfo>, BrokerError> {
        self.replicas.producers(topic, partition)
    }

    fn create_topic(
        &self,
        topic: NewTopic,
        validate_only: bool,
    ) -> impl Future<Output = Result<TopicMetadata, BrokerError>> + Send {
        self.admin.create_topic(topic, validate_only)
    }

    fn delete_topic(&self, name: String) -> impl Future<Output = Result<Uuid, BrokerError>> + Send {
        self.admin.delete_topic(name)
    }

    fn create_partitions(
        &self,
        name: String,
        count: i32,
        assignments: Vec<Vec<i32>>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send {
        self.admin
            .create_partitions(name, count, assignments, validate_only)
    }

    fn topic_configs(&self, name: &str) -> Result<Vec<ConfigEntry>, BrokerError> {
        self.admin.topic_configs(name)
    }

    fn fetch_max_bytes(&self) -> u64 {
        self.config.fetch_max_bytes
    }

    fn broker_configs(&self) -> Vec<ConfigEntry> {
        self.admin.broker_configs()
    }

    fn replace_topic_configs(
        &self,
        name: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send {
        self.admin
            .replace_topic_configs(name, configs, validate_only)
    }

    fn alter_topic_configs(
        &self,
        name: String,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send {
        self.admin.alter_topic_configs(name, ops, validate_only)
    }

    fn append(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
        guard: Option<u64>,
    ) -> Result<Appended, BrokerError> {
        self.replicas.append(topic, partition, records, acks, guard)
    }

    fn start_txn_verification(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
    ) -> Result<Option<u64>, BrokerError> {
        self.replicas
            .start_txn_verification(topic, partition, producer_id, epoch)
    }

    fn wait_acked(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        acks: i16,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send {
        self.replicas.wait_acked(topic, partition, offset, acks)
    }

    fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        limits: (u64, bool),
        check: (i32, Option<&Arc<strata_api::broker::FetchWaker>>),
        reader: (strata_api::broker::Reader, strata_api::broker::Isolation),
    ) -> Result<PartitionRead, BrokerError> {
        self.replicas
            .read(topic, partition, offset, limits, check, reader)
    }

    fn read_remote(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        limits: (u64, bool, strata_api::broker::Isolation),
        wait: std::time::Duration,
    ) -> impl Future<Output = Result<Option<(Vec<Bytes>, Option<Vec<(i64, i64)>>)>, BrokerError>> + Send
    {
        self.replicas
            .read_remote(topic, partition, offset, limits, wait)
    }

    fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
        isolation: strata_api::broker::Isolation,
    ) -> impl Future<Output = Result<OffsetAndTimestamp, BrokerError>> + Send {
        self.replicas.list_offset(topic, partition, spec, isolation)
    }

    fn leader_epoch(&self, topic: &str, partition: i32) -> Result<i32, BrokerError> {
        self.replicas.leader_epoch(topic, partition)
    }

    fn end_offset_for_epoch(
        &self,
        topic: &str,
        partition: i32,
        epoch: i32,
    ) -> Result<(i32, i64), BrokerError> {
        self.replicas.end_offset_for_epoch(topic, partition, epoch)
    }

    fn log_dir(&self) -> strata_api::broker::LogDir {
        self.replicas.log_dir()
    }

    fn alter_broker_configs(
        &self,
        resource: String,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send {
        self.admin
            .alter_broker_configs(resource, ops, validate_only)
    }

    fn preferred_read_replica(
        &self,
        topic: &str,
        partition: i32,
        client_rack: &str,
    ) -> Option<i32> {
        self.replicas
            .preferred_read_replica(topic, partition, client_rack)
    }

    fn reassign_partitions(
        &self,
        moves: Vec<(String, i32, Option<Vec<i32>>)>,
        allow_rf_change: bool,
    ) -> impl Future<Output = Result<strata_api::broker::PartitionResults, BrokerError>> + Send
    {
        self.admin.reassign_partitions(moves, allow_rf_change)
    }

    fn reassignments(&self) -> Vec<strata_api::broker::Reassignment> {
        self.admin.reassignments()
    }

    fn elect_leaders(
        &self,
        unclean: bool,
        partitions: Option<Vec<(String, i32)>>,
    ) -> impl Future<Output = Result<strata_api::broker::PartitionResults, BrokerError>> + Send
    {
        self.admin.elect_leaders(unclean, partitions)
    }

    fn init_producer_id(
        &self,
        existing: Option<(i64, i16)>,
    ) -> impl Future<Output = Result<(i64, i16), BrokerError>> + Send {
        self.admin.next_producer_id(existing)
    }
}
