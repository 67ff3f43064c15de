//! The admin HTTP API's cluster, topic, group and record routes
//! ([`strata_api::cluster_api`]) for this broker: the cluster's brokers and topics from the
//! metadata image, the quorum from its controllers, and everything else asked of the cluster
//! over the Kafka protocol ([`crate::admin_client`]) as any admin client would, so that
//! every node answers for the whole cluster. Remote tier sizes come from each partition
//! leader's `/v1/tiering`.

use std::collections::BTreeMap;
use std::time::Duration;

use strata_api::admin::{AdminState, TieringStatus};
use strata_api::cluster_api::ClusterApi;
use strata_api::model::*;
use strata_api::rest::AdminError;

use crate::admin_client::{AdminClient, KafkaError, NewTopicSpec, OffsetReset as Reset};
use crate::broker::StrataBroker;

/// Longest the quorum's status may take to come back.
const QUORUM_TIMEOUT: Duration = Duration::from_secs(3);
/// Records a record page holds by default, and at most.
const DEFAULT_RECORDS: usize = 50;
const MAX_RECORDS: usize = 500;
/// Bytes fetched per round of a record page.
const PAGE_FETCH_BYTES: i32 = 4 << 20;

/// An admin client error as an HTTP answer: what Kafka said maps to 400, 404 or 409; a
/// cluster that does not answer is 503.
fn from_client(e: anyhow::Error) -> AdminError {
    let message = format!("{e:#}");
    match e.downcast_ref::<KafkaError>() {
        Some(k) if k.is_not_found() => AdminError::not_found(message),
        Some(k) if k.is_conflict() => AdminError::conflict(message),
        Some(k) if k.is_bad_request() => AdminError::bad_request(message),
        _ => AdminError::unavailable(message),
    }
}

/// The offset ListOffsets gives one partition at `spec` (-1 latest, -2 earliest, or a time).
async fn offset_at(
    client: &mut AdminClient,
    metadata: &crate::admin_client::ClusterMetadata,
    key: &[(String, i32)],
    spec: i64,
) -> Result<i64, AdminError> {
    client
        .list_offsets(metadata, key, spec)
        .await
        .map_err(from_client)?
        .values()
        .next()
        .copied()
        .ok_or_else(|| AdminError::unavailable("the partition's leader did not answer"))
}

fn text(bytes: &Option<bytes::Bytes>) -> Option<String> {
    bytes
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

impl StrataBroker {
    /// An admin client of this broker's own cluster.
    fn cluster_client(&self) -> AdminClient {
        let (host, port) = &self.config().advertised;
        AdminClient::new(&format!("{host}:{port}"))
    }

    /// The remote tier's bytes of each partition of `topic`, from each leader's
    /// `/v1/tiering` (this broker's directly).
    async fn remote_sizes(&self, topic: &str) -> BTreeMap<i32, u64> {
        let leaders: Vec<(i32, Option<String>)> = {
            let image = self.image();
            let Some(t) = image.topics.values().find(|t| t.name == topic) else {
                return BTreeMap::new();
            };
            let mut ids: Vec<i32> = t.partitions.values().map(|p| p.leader).collect();
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter()
                .map(|id| (id, crate::metadata_cache::admin_endpoint(&image, id)))
                .collect()
        };
        let mut out = BTreeMap::new();
        for (id, admin) in leaders {
            let rows: Vec<TieringStatus> = if id == self.config().node_id {
                AdminState::tiering(self).await
            } else if let Some(addr) = admin {
                match crate::cli::http::request(&addr, "GET", "/v1/tiering", None).await {
                    Ok((200, body)) => serde_json::from_slice(&body).unwrap_or_default(),
                    _ => Vec::new(),
                }
            } else {
                Vec::new()
            };
            out.extend(
                rows.into_iter()
                    .filter(|r| r.topic == topic)
                    .map(|r| (r.partition, r.remote_bytes)),
            );
        }
        out
    }

    /// A broker's traffic counters (bytes in, bytes out, records in, records out), summed
    /// over topics from its `/metrics` (this broker's read directly).
    async fn traffic(&self, id: i32, admin: Option<&str>) -> Option<[u64; 4]> {
        let text = if id == self.config().node_id {
            // Only the traffic counters: this node's partitions need not be walked.
            let mut registry = prometheus_client::registry::Registry::with_prefix("strata");
            strata_api::metrics::KAFKA.register_traffic(&mut registry);
            strata_api::metrics::encode(&registry, false)
        } else {
            let asked = tokio::time::timeout(
                QUORUM_TIMEOUT,
                crate::cli::http::request(admin?, "GET", "/metrics", None),
            )
            .await;
            match asked {
                Ok(Ok((200, body))) => String::from_utf8(body).ok()?,
                _ => return None,
            }
        };
        let sum = |name: &str| -> u64 {
            text.lines()
                .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64
        };
        Some([
            sum("strata_topic_bytes_in_total"),
            sum("strata_topic_bytes_out_total"),
            sum("strata_topic_records_in_total"),
            sum("strata_topic_records_out_total"),
        ])
    }

    /// The quorum's voters and active controller, as the controllers tell.
    async fn quorum(&self) -> (Vec<ControllerView>, Option<i32>) {
        for addr in self.admin().controllers() {
            let asked = tokio::time::timeout(
                QUORUM_TIMEOUT,
                strata_controller::raft::client::status(addr),
            )
            .await;
            if let Ok(Ok(status)) = asked {
                let leader = status.leader.map(|l| l as i32);
                let voters = status
                    .voters
                    .iter()
                    .map(|v| ControllerView {
                        id: v.id as i32,
                        address: v.addr.clone(),
                        active: leader == Some(v.id as i32),
                    })
                    .collect();
                return (voters, leader);
            }
        }
        (Vec::new(), None)
    }
}

impl ClusterApi for StrataBroker {
    async fn cluster(&self) -> Result<ClusterView, AdminError> {
        let (controllers, active_controller) = self.quorum().await;
        let (mut brokers, cluster_id, topics, partitions, under_replicated, offline) = {
            let image = self.image();
            let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
            let mut replicas: BTreeMap<i32, usize> = BTreeMap::new();
            let (mut partitions, mut under_replicated, mut offline) = (0, 0, 0);
            for topic in image.topics.values() {
                for p in topic.partitions.values() {
                    partitions += 1;
                    *leaders.entry(p.leader).or_default() += 1;
                    for r in &p.replicas {
                        *replicas.entry(*r).or_default() += 1;
                    }
                    if p.isr.len() < p.replicas.len() {
                        under_replicated += 1;
                    }
                    if p.leader < 0 || !image.is_active(p.leader) {
                        offline += 1;
                    }
                }
            }
            let brokers: Vec<BrokerView> = image
                .brokers
                .values()
                .map(|b| {
                    let kafka = b.listeners.first();
                    BrokerView {
                        id: b.id,
                        host: kafka.map_or(String::new(), |e| e.host.clone()),
                        port: kafka.map_or(0, |e| e.port),
                        admin: crate::metadata_cache::admin_endpoint(&image, b.id),
                        rack: b.rack.clone(),
                        state: if image.is_active(b.id) {
                            "active"
                        } else {
                            "fenced"
                        }
                        .into(),
                        leaders: leaders.get(&b.id).copied().unwrap_or(0),
                        replicas: replicas.get(&b.id).copied().unwrap_or(0),
                        bytes_in: None,
                        bytes_out: None,
                        records_in: None,
                        records_out: None,
                    }
                })
                .collect();
            let cluster_id = image.cluster_id.clone().unwrap_or_default();
            (
                brokers,
                cluster_id,
                image.topics.len(),
                partitions,
                under_replicated,
                offline,
            )
        };
        // Fenced brokers are not asked: a dead one would hold the answer up.
        for b in brokers.iter_mut().filter(|b| b.state == "active") {
            if let Some(traffic) = self.traffic(b.id, b.admin.as_deref()).await {
                [b.bytes_in, b.bytes_out, b.records_in, b.records_out] = traffic.map(Some);
            }
        }
        Ok(ClusterView {
            cluster_id,
            node_id: self.config().node_id,
            active_controller,
            controllers,
            brokers,
            topics,
            partitions,
            under_replicated,
            offline,
        })
    }

    async fn list_topics(&self) -> Result<Vec<TopicSummary>, AdminError> {
        let image = self.image();
        let mut topics: Vec<TopicSummary> = image
            .topics
            .values()
            .map(|t| TopicSummary {
                name: t.name.clone(),
                partitions: t.partitions.len(),
                replication_factor: t.partitions.values().next().map_or(0, |p| p.replicas.len()),
                internal: t.name.starts_with("__"),
                under_replicated: t
                    .partitions
                    .values()
                    .filter(|p| p.isr.len() < p.replicas.len())
                    .count(),
                mirror_of: t.mirror.as_ref().map(|m| m.link.clone()),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    async fn create_topic(&self, topic: NewTopic) -> Result<TopicDetail, AdminError> {
        let spec = NewTopicSpec {
            name: topic.name.clone(),
            partitions: topic.partitions,
            replication_factor: topic.replication_factor,
            configs: topic.configs,
        };
        let mut client = self.cluster_client();
        client.create_topic(&spec).await.map_err(from_client)?;
        self.describe_topic(topic.name).await
    }

    async fn describe_topic(&self, name: String) -> Result<TopicDetail, AdminError> {
        let mut client = self.cluster_client();
        let mut topic = client.describe_topic(&name).await.map_err(from_client)?;
        topic.configs = client.topic_configs(&name).await.map_err(from_client)?;
        let remote = self.remote_sizes(&name).await;
        for p in &mut topic.partitions {
            p.remote_bytes = remote.get(&p.partition).copied();
        }
        Ok(topic)
    }

    async fn delete_topic(&self, name: String) -> Result<(), AdminError> {
        self.cluster_client()
            .delete_topic(&name)
            .await
            .map_err(from_client)
    }

    async fn topic_configs(&self, name: String) -> Result<Vec<TopicConfig>, AdminError> {
        self.cluster_client()
            .topic_configs(&name)
            .await
            .map_err(from_client)
    }

    async fn alter_topic_configs(
        &self,
        name: String,
        changes: ConfigChanges,
    ) -> Result<Vec<TopicConfig>, AdminError> {
        if changes.set.is_empty() && changes.delete.is_empty() {
            return Err(AdminError::bad_request(
                "nothing to change: give configs to set or to delete",
            ));
        }
        let mut client = self.cluster_client();
        client
            .alter_topic_configs(&name, &changes.set, &changes.delete)
            .await
            .map_err(from_client)?;
        client.topic_configs(&name).await.map_err(from_client)
    }

    async fn add_partitions(&self, name: String, count: i32) -> Result<TopicDetail, AdminError> {
        self.cluster_client()
            .add_partitions(&name, count)
            .await
            .map_err(from_client)?;
        self.describe_topic(name).await
    }

    async fn read_records(
        &self,
        name: String,
        query: RecordQuery,
    ) -> Result<RecordPage, AdminError> {
        let partition = query.partition.unwrap_or(0);
        let limit = query.limit.unwrap_or(DEFAULT_RECORDS).clamp(1, MAX_RECORDS);
        let mut client = self.cluster_client();
        let metadata = client
            .metadata(Some(std::slice::from_ref(&name)))
            .await
            .map_err(from_client)?;
        let known = metadata
            .topic(&name)
            .is_some_and(|t| t.partitions.iter().any(|p| p.partition == partition));
        if !known {
            return Err(AdminError::not_found(format!(
                "topic '{name}' has no partition {partition}"
            )));
        }
        let key = [(name.clone(), partition)];
        let start = offset_at(&mut client, &metadata, &key, -2).await?;
        let end = offset_at(&mut client, &metadata, &key, -1).await?;
        let from = match (query.offset, query.timestamp) {
            (Some(o), _) => o.clamp(start, end),
            (None, Some(ts)) => match offset_at(&mut client, &metadata, &key, ts).await? {
                at if at < 0 => end,
                at => at,
            },
            (None, None) => start,
        };
        let mut records = Vec::new();
        let mut next = from;
        while records.len() < limit && next < end {
            let fetched = client
                .fetch(
                    &metadata,
                    &name,
                    &[(partition, next)],
                    (0, PAGE_FETCH_BYTES),
                )
                .await
                .map_err(from_client)?;
            let Some(f) = fetched.into_iter().next() else {
                break;
            };
            if let Some(error) = f.error {
                return Err(AdminError::unavailable(error));
            }
            if f.records.is_empty() {
                break;
            }
            for r in f.records {
                if records.len() >= limit {
                    break;
                }
                next = r.offset + 1;
                let value_is_json = r
                    .value
                    .as_ref()
                    .is_some_and(|v| serde_json::from_slice::<serde_json::Value>(v).is_ok());
                records.push(RecordView {
                    partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    bytes: r.key.as_ref().map_or(0, |k| k.len())
                        + r.value.as_ref().map_or(0, |v| v.len()),
                    key: text(&r.key),
                    value: text(&r.value),
                    value_is_json,
                    headers: r
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), text(v)))
                        .collect(),
                });
            }
        }
        Ok(RecordPage {
            partition,
            from,
            next,
            log_start_offset: start,
            high_watermark: end,
            records,
        })
    }

    async fn list_groups(&self) -> Result<Vec<GroupSummary>, AdminError> {
        self.cluster_client()
            .list_groups()
            .await
            .map_err(from_client)
    }

    async fn describe_group(&self, group: String) -> Result<GroupDetail, AdminError> {
        self.cluster_client()
            .describe_group(&group)
            .await
            .map_err(from_client)
    }

    async fn reset_offsets(
        &self,
        group: String,
        reset: OffsetReset,
    ) -> Result<Vec<GroupOffset>, AdminError> {
        let value = || {
            reset.value.ok_or_else(|| {
                AdminError::bad_request(format!("\"to\": \"{}\" needs a \"value\"", reset.to))
            })
        };
        let to = match reset.to.as_str() {
            "earliest" => Reset::Earliest,
            "latest" => Reset::Latest,
            "offset" => Reset::Offset(value()?),
            "timestamp" => Reset::Timestamp(value()?),
            "shift" => Reset::ShiftBy(value()?),
            other => {
                return Err(AdminError::bad_request(format!(
                    "\"to\": \"{other}\": give earliest, latest, offset, timestamp or shift"
                )));
            }
        };
        if reset.partitions.is_some() && reset.topic.is_none() {
            return Err(AdminError::bad_request("\"partitions\" needs a \"topic\""));
        }
        self.cluster_client()
            .reset_offsets(
                &group,
                reset.topic.as_deref(),
                reset.partitions.as_deref(),
                to,
                reset.dry_run,
            )
            .await
            .map_err(from_client)
    }

    async fn delete_group(&self, group: String) -> Result<(), AdminError> {
        self.cluster_client()
            .delete_group(&group)
            .await
            .map_err(from_client)
    }
}
