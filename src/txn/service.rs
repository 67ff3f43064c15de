//! `TransactionCoordinatorService`: the transaction coordinator as clients reach it. It
//! decides with the pure transitions of [`super::state`], writes each new state to the id's
//! `__transaction_state` partition and applies it once durable; one transition per id runs at
//! a time (another request meanwhile is told CONCURRENT_TRANSACTIONS, and retries).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use strata_api::broker::{BrokerError, BrokerNode, NewTopic};
use strata_api::txn::{TransactionCoordinator, TxnDescription};

use super::markers::{MarkerSender, MarkerSpec};
use super::records::{encode_key, encode_value};
use super::state::{self, EndDecision, InitDecision, TxnMetadata, TxnState};
use super::{TRANSACTION_STATE_TOPIC, TxnConfig};
use crate::cluster::admin::ClusterAdmin;
use crate::group::coordinator::{OFFSETS_TOPIC, encode_records, now_ms, partition_for};
use crate::kafka_client::pool::BrokerConnections;
use crate::metadata_cache::{MetadataCache, live_node};
use crate::replica_manager::ReplicaManager;

/// Longest AddPartitionsToTxn waits for the previous transaction's completion before it
/// answers CONCURRENT_TRANSACTIONS.
const COMPLETION_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// The same for a partition leader adding a version-2 producer's partition: the producer
/// cannot tell a retry apart from its batch being refused, so the leader waits longer (Kafka's
/// leader retries for up to a second too).
const COMPLETION_WAIT_TV2: std::time::Duration = std::time::Duration::from_secs(1);

/// Longest a KIP-890 verification may take on another broker; the producer retries after.
const VERIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest transactional id accepted: ids are record keys and log lines.
const MAX_ID_LEN: usize = 1024;

#[derive(Debug)]
struct Entry {
    /// `None` while its first InitProducerId is being written.
    meta: Option<TxnMetadata>,
    /// A transition is being written.
    busy: bool,
}

#[derive(Debug)]
struct Inner {
    config: TxnConfig,
    entries: Mutex<HashMap<String, Entry>>,
    /// The `__transaction_state` partitions loaded here, with the coordinator epoch of each.
    loaded: Mutex<BTreeMap<i32, i32>>,
    replicas: Arc<ReplicaManager>,
    metadata: Arc<MetadataCache>,
    admin: Arc<ClusterAdmin>,
    markers: MarkerSender,
    /// Connections to other brokers' coordinators, for KIP-890 verifications.
    verifier: BrokerConnections,
    /// Woken whenever an id's metadata changes.
    changed: tokio::sync::Notify,
    offsets_partitions: i32,
}

/// The transaction coordinator of this broker.
#[derive(Debug, Clone)]
pub struct TransactionCoordinatorService {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl TransactionCoordinatorService {
    /// A coordinator writing through `replicas`; `offsets_partitions` places groups'
    /// `__consumer_offsets` partitions (AddOffsetsToTxn).
    pub fn new(
        config: TxnConfig,
        offsets_partitions: i32,
        replicas: Arc<ReplicaManager>,
        metadata: Arc<MetadataCache>,
        admin: Arc<ClusterAdmin>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                entries: Mutex::default(),
                loaded: Mutex::default(),
                replicas,
                metadata,
                admin,
                markers: MarkerSender::default(),
                verifier: BrokerConnections::new("strata-txn-verifier", VERIFY_TIMEOUT),
                changed: tokio::sync::Notify::new(),
                offsets_partitions,
            }),
        }
    }

    /// Loads the ids of the `__transaction_state` partitions this broker has come to lead,
    /// finishing the transactions they left prepared, and forgets those of partitions it no
    /// longer leads. Blocking (it reads the log): called after the image is applied.
    pub fn sync_leadership(&self) -> Result<(), crate::log::LogError> {
        let inner = &self.inner;
        let hosted: Vec<_> = inner
            .replicas
            .all()
            .into_iter()
            .filter(|p| p.topic == TRANSACTION_STATE_TOPIC)
            .collect();
        let loaded: Vec<i32> = lock(&inner.loaded).keys().copied().collect();
        for index in loaded {
            if !hosted.iter().any(|p| p.index == index && p.is_leader()) {
                lock(&inner.loaded).remove(&index);
                let partitions = inner.config.partitions;
                lock(&inner.entries).retain(|id, _| partition_for(id, partitions) != index);
                tracing::info!(
                    partition = index,
                    "no longer coordinating this partition's transactions"
                );
            }
        }
        for partition in hosted {
            // Loaded in this leadership already; a new leader epoch (leadership lost and won
            // back) loads again, so that markers carry the new coordinator epoch.
            let current = lock(&inner.loaded).get(&partition.index).copied();
            if !partition.is_leader() || current == Some(partition.leader_epoch()) {
                continue;
            }
            let ids = super::load::load_partition(&partition)?;
            let prepared: Vec<String> = ids
                .iter()
                .filter(|(_, m)| {
                    matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
                })
                .map(|(id, _)| id.clone())
                .collect();
            let count = ids.len();
            {
                let mut entries = lock(&inner.entries);
                for (id, meta) in ids {
                    entries.insert(
                        id,
                        Entry {
                            meta: Some(meta),
                            busy: false,
                        },
                    );
                }
            }
            lock(&inner.loaded).insert(partition.index, partition.leader_epoch());
            if count > 0 {
                tracing::info!(
                    partition = partition.index,
                    ids = count,
                    prepared = prepared.len(),
                    "loaded transactional ids"
                );
            }
            for id in prepared {
                let inner = Arc::clone(inner);
                tokio::runtime::Handle::current().spawn(async move { inner.complete(id).await });
            }
        }
        Ok(())
    }

    /// Aborts the open transactions past their timeout, fencing their producers. Called
    /// every `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub async fn abort_timed_out(&self) {
        let now = now_ms();
        let expired: Vec<(String, TxnMetadata)> = {
            let mut entries = lock(&self.inner.entries);
            entries
                .iter_mut()
                .filter(|(_, e)| !e.busy)
                .filter_map(|(id, e)| {
                    let aborting = state::timed_out(e.meta.as_ref()?, now)?;
                    e.busy = true;
                    Some((id.clone(), aborting))
                })
                .collect()
        };
        for (id, aborting) in expired {
            tracing::info!(transactional_id = %id, producer_id = aborting.producer_id, "aborting a transaction past its timeout");
            let written = self.inner.apply(&id, aborting).await;
            if written.is_ok() {
                let inner = Arc::clone(&self.inner);
                tokio::spawn(async move { inner.complete(id).await });
            }
        }
        self.expire_ids(now).await;
    }

    /// Forgets the ids unused for `transactional.id.expiration.ms` with no transaction open
    /// (a tombstone in `__transaction_state`), as Kafka does.
    async fn expire_ids(&self, now: i64) {
        let limit = self.inner.config.id_expiration.as_millis() as i64;
        let idle: Vec<String> = {
            let mut entries = lock(&self.inner.entries);
            entries
                .iter_mut()
                .filter(|(_, e)| !e.busy)
                .filter(|(_, e)| {
                    e.meta.as_ref().is_some_and(|m| {
                        matches!(
                            m.state,
                            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                        ) && now - m.last_update_ms > limit
                    })
                })
                .map(|(id, e)| {
                    e.busy = true;
                    id.clone()
                })
                .collect()
        };
        for id in idle {
            let written = self.inner.write_tombstone(&id).await;
            let mut entries = lock(&self.inner.entries);
            match written {
                Ok(()) => {
                    entries.remove(&id);
                    tracing::info!(transactional_id = %id, "transactional id expired");
                }
                Err(_) => {
                    if let Some(entry) = entries.get_mut(&id) {
                        entry.busy = false;
                    }
                }
            }
        }
    }
}

impl Inner {
    fn partition_of(&self, id: &str) -> i32 {
        partition_for(id, self.config.partitions)
    }

    /// The coordinator epoch for `id`, if this broker coordinates it.
    fn coordinates(&self, id: &str) -> Result<i32, BrokerError> {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(BrokerError::InvalidRequest(format!(
                "a transactional id must have 1 to {MAX_ID_LEN} bytes"
            )));
        }
        let index = self.partition_of(id);
        self.replicas
            .leader_ref(TRANSACTION_STATE_TOPIC, index)
            .map_err(|_| BrokerError::NotCoordinator)?;
        lock(&self.loaded)
            .get(&index)
            .copied()
            .ok_or(BrokerError::CoordinatorLoadInProgress)
    }

    /// Takes `id` for a transition decided by `decide` from its current metadata: refused
    /// while another is in flight. On `Ok(Some)` the id stays taken until [`Self::apply`].
    fn decide<T>(
        &self,
        id: &str,
        decide: impl FnOnce(Option<&TxnMetadata>) -> Result<(T, bool), BrokerError>,
    ) -> Result<T, BrokerError> {
        let mut entries = lock(&self.entries);
        let entry = entries.entry(id.to_owned()).or_insert(Entry {
            meta: None,
            busy: false,
        });
        if entry.busy {
            return Err(BrokerError::ConcurrentTransactions);
        }
        let decided = decide(entry.meta.as_ref());
        match &decided {
            Ok((_, true)) => entry.busy = true,
            _ if entry.meta.is_none() => {
                entries.remove(id);
            }
            _ => {}
        }
        decided.map(|(value, _)| value)
    }

    /// Writes `meta` for a taken id and applies it once durable; the id is released either
    /// way.
    async fn apply(&self, id: &str, meta: TxnMetadata) -> Result<(), BrokerError> {
        let written = self.write(id, &meta).await;
        {
            let mut entries = lock(&self.entries);
            if let Some(entry) = entries.get_mut(id) {
                entry.busy = false;
                if written.is_ok() {
                    entry.meta = Some(meta);
                } else if entry.meta.is_none() {
                    entries.remove(id);
                }
            }
        }
        self.changed.notify_waiters();
        written
    }

    /// Releases a taken id without changing it.
    fn release(&self, id: &str) {
        let mut entries = lock(&self.entries);
        if let Some(entry) = entries.get_mut(id) {
            entry.busy = false;
            if entry.meta.is_none() {
                entries.remove(id);
            }
        }
    }

    async fn write(&self, id: &str, meta: &TxnMetadata) -> Result<(), BrokerError> {
        let index = self.partition_of(id);
        let batch = encode_records(&[(encode_key(id), Some(encode_value(meta)))])?;
        let appended = self
            .replicas
            .append(TRANSACTION_STATE_TOPIC, index, batch, -1, None)?;
        self.replicas
            .wait_acked(TRANSACTION_STATE_TOPIC, index, appended.next_offset, -1)
            .await
    }

    async fn write_tombstone(&self, id: &str) -> Result<(), BrokerError> {
        let index = self.partition_of(id);
        let batch = encode_records(&[(encode_key(id), None)])?;
        let appended = self
            .replicas
            .append(TRANSACTION_STATE_TOPIC, index, batch, -1, None)?;
        self.replicas
            .wait_acked(TRANSACTION_STATE_TOPIC, index, appended.next_offset, -1)
            .await
    }

    /// Writes the markers of `id`'s prepared transaction, then its Complete* state. Gives up
    /// when this broker stops coordinating it (the next coordinator resumes from the log).
    async fn complete(self: Arc<Self>, id: String) {
        let Some((prepared, coordinator_epoch)) = self.prepared(&id) else {
            return;
        };
        let spec = MarkerSpec {
            producer_id: prepared.producer_id,
            producer_epoch: prepared.producer_epoch,
            commit: prepared.state == TxnState::PrepareCommit,
            coordinator_epoch,
        };
        let index = self.partition_of(&id);
        let still = || lock(&self.loaded).get(&index) == Some(&coordinator_epoch);
        if !self
            .markers
            .write_all(&self.metadata, spec, &prepared.partitions, still)
            .await
        {
            return;
        }
        loop {
            if !still() {
                return;
            }
            let taken = self.decide(&id, |meta| match meta {
                Some(m) if m == &prepared => Ok((true, true)),
                _ => Ok((false, false)),
            });
            match taken {
                Ok(true) => {
                    let done = state::complete(&prepared, now_ms());
                    match self.apply(&id, done).await {
                        Ok(()) => return,
                        Err(e) => {
                            tracing::warn!(transactional_id = %id, "completing the transaction failed, retrying: {e}")
                        }
                    }
                }
                Ok(false) => return,
                Err(_) => {}
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The id's metadata if it is prepared to commit or abort, with the coordinator epoch.
    fn prepared(&self, id: &str) -> Option<(TxnMetadata, i32)> {
        let epoch = *lock(&self.loaded).get(&self.partition_of(id))?;
        let entries = lock(&self.entries);
        let meta = entries.get(id)?.meta.as_ref()?;
        matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
            .then(|| (meta.clone(), epoch))
    }

    /// Creates `__transaction_state` on first use, compacted, with its min ISR.
    async fn ensure_topic(&self) -> Result<(), BrokerError> {
        if self
            .metadata
            .image()
            .topic(TRANSACTION_STATE_TOPIC)
            .is_some()
        {
            return Ok(());
        }
        let live = {
            let image = self.metadata.image();
            image.brokers.values().filter(|b| !b.fenced).count()
        };
        let replication = self.config.replication_factor.min(live.max(1) as i16);
        let min_isr = self.config.min_isr.min(replication);
        let topic = NewTopic {
            name: TRANSACTION_STATE_TOPIC.to_owned(),
            partitions: Some(self.config.partitions),
            replication_factor: Some(replication),
            assignments: BTreeMap::new(),
            configs: BTreeMap::from([
                ("cleanup.policy".to_owned(), "compact".to_owned()),
                ("segment.bytes".to_owned(), (100 << 20).to_string()),
                ("min.insync.replicas".to_owned(), min_isr.to_string()),
            ]),
        };
        match self.admin.create_topic(topic, false).await {
            Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Checks that each partition exists.
    fn check_partitions(&self, partitions: &[(String, i32)]) -> Result<(), BrokerError> {
        let image = self.metadata.image();
        let all_known = partitions.iter().all(|(topic, index)| {
            image
                .topic(topic)
                .is_some_and(|t| t.partitions.contains_key(index))
        });
        if all_known {
            Ok(())
        } else {
            Err(BrokerError::UnknownTopicOrPartition)
        }
    }

    /// Adds partitions to the producer's transaction (checked to exist, unless they are a
    /// group's `__consumer_offsets` partition, which may be created after it is added).
    /// `tv2`: a partition leader adds them for a version-2 producer.
    async fn add(
        &self,
        id: &str,
        producer: (i64, i16),
        partitions: Vec<(String, i32)>,
        check: bool,
        tv2: bool,
    ) -> Result<(), BrokerError> {
        self.coordinates(id)?;
        if check {
            self.check_partitions(&partitions)?;
        }
        // The producer's next transaction usually starts while the last one's markers are
        // being written: rather than answer CONCURRENT_TRANSACTIONS at once (clients back off
        // 20 to 100 ms before retrying), wait a little for the completion.
        let wait = if tv2 {
            COMPLETION_WAIT_TV2
        } else {
            COMPLETION_WAIT
        };
        let deadline = tokio::time::Instant::now() + wait;
        let next = loop {
            // The id may have moved to another coordinator while this one waited.
            self.coordinates(id)?;
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = now_ms();
            let decided = self.decide(id, |meta| {
                let meta = meta.ok_or_else(|| {
                    BrokerError::InvalidProducerIdMapping(
                        "no producer for this transactional id".into(),
                    )
                })?;
                let next = state::add_partitions(meta, producer, &partitions, tv2, now)?;
                let write = next.is_some();
                Ok((next, write))
            });
            match decided {
                Err(BrokerError::ConcurrentTransactions)
                    if tokio::time::timeout_at(deadline, changed).await.is_ok() => {}
                decided => break decided?,
            }
        };
        match next {
            Some(next) => self.apply(id, next).await,
            None => Ok(()),
        }
    }
}

impl TransactionCoordinator for TransactionCoordinatorService {
    async fn find_coordinator(&self, transactional_id: String) -> Result<BrokerNode, BrokerError> {
        let inner = &self.inner;
        inner.ensure_topic().await?;
        let index = inner.partition_of(&transactional_id);
        let image = inner.metadata.image();
        let leader = image
            .topic(TRANSACTION_STATE_TOPIC)
            .and_then(|t| t.partitions.get(&index))
            .map_or(-1, |p| p.leader);
        live_node(&image, leader).ok_or(BrokerError::CoordinatorNotAvailable)
    }

    async fn init_producer_id(
        &self,
        transactional_id: String,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), BrokerError> {
        let inner = &self.inner;
        if timeout_ms <= 0 || timeout_ms > inner.config.max_timeout_ms {
            return Err(BrokerError::InvalidTransactionTimeout(format!(
                "transaction.timeout.ms={timeout_ms} is not within 1..={} (transaction.max.timeout.ms)",
                inner.config.max_timeout_ms
            )));
        }
        let id = transactional_id;
        inner.coordinates(&id)?;
        let now = now_ms();
        let (decision, previous) = inner.decide(&id, |meta| {
            let decision = state::init(meta, timeout_ms, expected, now)?;
            Ok(((decision, meta.cloned()), true))
        })?;
        match decision {
            InitDecision::NewProducerId => {
                let allocated = inner.admin.next_producer_id(None).await;
                let (producer_id, _) = match allocated {
                    Ok(found) => found,
                    Err(e) => {
                        inner.release(&id);
                        return Err(e);
                    }
                };
                let fresh = state::fresh(producer_id, previous.as_ref(), timeout_ms, now);
                inner.apply(&id, fresh).await?;
                Ok((producer_id, 0))
            }
            InitDecision::Ready(ready) => {
                let answer = (ready.producer_id, ready.producer_epoch);
                inner.apply(&id, ready).await?;
                Ok(answer)
            }
            InitDecision::AbortOngoing(aborting) => {
                inner.apply(&id, aborting).await?;
                let completing = Arc::clone(inner);
                tokio::spawn(async move { completing.complete(id).await });
                Err(BrokerError::ConcurrentTransactions)
            }
        }
    }

    async fn add_partitions(
        &self,
        transactional_id: String,
        producer: (i64, i16),
        partitions: Vec<(String, i32)>,
        tv2: bool,
    ) -> Result<(), BrokerError> {
        self.inner
            .add(&transactional_id, producer, partitions, true, tv2)
            .await
    }

    async fn add_offsets(
        &self,
        transactional_id: String,
        producer: (i64, i16),
        group_id: String,
    ) -> Result<(), BrokerError> {
        let index = partition_for(&group_id, self.inner.offsets_partitions);
        self.inner
            .add(
                &transactional_id,
                producer,
                vec![(OFFSETS_TOPIC.to_owned(), index)],
                false,
                false,
            )
            .await
    }

    async fn add_offsets_partition(
        &self,
        transactional_id: String,
        producer: (i64, i16),
        group_id: String,
    ) -> Result<(), BrokerError> {
        let index = partition_for(&group_id, self.inner.offsets_partitions);
        let partitions = vec![(OFFSETS_TOPIC.to_owned(), index)];
        let codes = self
            .verify_with_coordinator(transactional_id, producer, partitions, true)
            .await;
        // As the group coordinator answers TxnOffsetCommit: what the producer may retry is
        // told so in that API's terms (it knows no CONCURRENT_TRANSACTIONS there).
        match codes.as_deref().map(|c| c.first().copied().unwrap_or(0)) {
            Ok(0) => Ok(()),
            Ok(47 | 90) => Err(BrokerError::InvalidProducerEpoch(
                "the producer epoch is not its transactional id's current one".into(),
            )),
            Ok(49) => Err(BrokerError::InvalidProducerIdMapping(
                "the producer id is not its transactional id's".into(),
            )),
            Ok(51) => Err(BrokerError::CoordinatorLoadInProgress),
            Ok(code) => {
                tracing::debug!(code, "adding the offsets partition to a transaction failed");
                Err(BrokerError::CoordinatorNotAvailable)
            }
            Err(_) => Err(BrokerError::CoordinatorNotAvailable),
        }
    }

    async fn end_txn(
        &self,
        transactional_id: String,
        producer: (i64, i16),
        commit: bool,
        tv2: bool,
    ) -> Result<(i64, i16), BrokerError> {
        let inner = &self.inner;
        let id = transactional_id;
        inner.coordinates(&id)?;
        let now = now_ms();
        let decision = inner.decide(&id, |meta| {
            let meta = meta.ok_or_else(|| {
                BrokerError::InvalidProducerIdMapping(
                    "no producer for this transactional id".into(),
                )
            })?;
            let decision = state::end(meta, producer, commit, tv2, now)?;
            let write = matches!(decision, EndDecision::Prepare(_));
            Ok((decision, write))
        })?;
        match decision {
            EndDecision::Done(answer) => Ok(answer),
            EndDecision::Prepare(mut prepared) => {
                if prepared.next_producer_id == state::NEW_PRODUCER_ID {
                    // The epoch ran out: the producer continues under a new id.
                    match inner.admin.next_producer_id(None).await {
                        Ok((next, _)) => prepared.next_producer_id = next,
                        Err(e) => {
                            inner.release(&id);
                            return Err(e);
                        }
                    }
                }
                let answer = prepared.continues_as();
                inner.apply(&id, prepared).await?;
                let completing = Arc::clone(inner);
                tokio::spawn(async move { completing.complete(id).await });
                Ok(answer)
            }
        }
    }

    fn verify_partitions(
        &self,
        transactional_id: &str,
        producer: (i64, i16),
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, BrokerError> {
        self.inner.coordinates(transactional_id)?;
        let entries = lock(&self.inner.entries);
        let meta = entries.get(transactional_id).and_then(|e| e.meta.as_ref());
        state::verify(meta, producer, partitions)
    }

    async fn verify_with_coordinator(
        &self,
        transactional_id: String,
        producer: (i64, i16),
        partitions: Vec<(String, i32)>,
        add: bool,
    ) -> Result<Vec<i16>, BrokerError> {
        let inner = &self.inner;
        let index = inner.partition_of(&transactional_id);
        if inner
            .replicas
            .leader_ref(TRANSACTION_STATE_TOPIC, index)
            .is_ok()
        {
            if add {
                let count = partitions.len();
                let added = inner
                    .add(&transactional_id, producer, partitions, true, true)
                    .await;
                return Ok(vec![added.err().map_or(0, |e| e.code()); count]);
            }
            // The coordinator's refusal (a fenced producer, say) is its answer, as it is over
            // the wire: the leader tells the producer that, not "try again".
            let count = partitions.len();
            return Ok(self
                .verify_partitions(&transactional_id, producer, &partitions)
                .unwrap_or_else(|e| vec![e.code(); count]));
        }
        let coordinator = inner
            .metadata
            .image()
            .topic(TRANSACTION_STATE_TOPIC)
            .and_then(|t| t.partitions.get(&index))
            .map_or(-1, |p| p.leader);
        if coordinator < 0 {
            return Err(BrokerError::CoordinatorNotAvailable);
        }
        super::verify::ask(
            &inner.verifier,
            &inner.metadata,
            coordinator,
            &transactional_id,
            producer,
            &partitions,
            add,
        )
        .await
    }

    fn describe(&self, transactional_id: &str) -> Result<TxnDescription, BrokerError> {
        self.inner.coordinates(transactional_id)?;
        let entries = lock(&self.inner.entries);
        let meta = entries
            .get(transactional_id)
            .and_then(|e| e.meta.as_ref())
            .ok_or(BrokerError::TransactionalIdNotFound)?;
        Ok(description(transactional_id, meta))
    }

    fn list(&self) -> Vec<TxnDescription> {
        let entries = lock(&self.inner.entries);
        let mut listed: Vec<TxnDescription> = entries
            .iter()
            .filter_map(|(id, e)| Some(description(id, e.meta.as_ref()?)))
            .collect();
        listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        listed
    }
}

fn description(id: &str, meta: &TxnMetadata) -> TxnDescription {
    let partitions: BTreeSet<(String, i32)> = meta.partitions.clone();
    TxnDescription {
        transactional_id: id.to_owned(),
        state: meta.state.name(),
        timeout_ms: meta.timeout_ms,
        start_ms: meta.start_ms,
        producer_id: meta.producer_id,
        producer_epoch: meta.producer_epoch,
        partitions: partitions.into_iter().collect(),
    }
}
