//! Records: produce (batches built and compressed here, each partition's sent to its
//! leader) and fetch (one partition from an offset, decoded).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::{AdminClient, ClusterMetadata, check, text};

/// A record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecord {
    /// Its key.
    pub key: Option<Bytes>,
    /// Its value.
    pub value: Option<Bytes>,
    /// Its headers.
    pub headers: Vec<(String, Bytes)>,
    /// Its partition; by key (murmur2, as the Java client) or round robin when absent.
    pub partition: Option<i32>,
}

/// How records are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceOptions {
    /// `acks`: -1 (all), 0 or 1.
    pub acks: i16,
    /// The batches' codec.
    pub compression: Compression,
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (ms).
    pub timestamp: i64,
    /// Its key.
    pub key: Option<Bytes>,
    /// Its value.
    pub value: Option<Bytes>,
    /// Its headers.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Kafka's murmur2 (the Java client's default partitioner hashes keys with it).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client picks for `key` among `count`.
fn partition_for_key(key: &[u8], count: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % count.max(1)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl AdminClient {
    /// Produces `records` to `topic`: one batch per partition, sent to its leader. Returns
    /// the base offset and record count of each partition's batch (offset -1 with acks=0).
    pub async fn produce(
        &mut self,
        topic: &str,
        records: &[NewRecord],
        options: ProduceOptions,
        next_partition: &mut i32,
    ) -> anyhow::Result<BTreeMap<i32, (i64, usize)>> {
        let metadata = self.metadata(Some(&[topic.to_owned()])).await?;
        let count = metadata
            .topic(topic)
            .map_or(0, |t| t.partitions.len() as i32);
        if count == 0 {
            bail!("topic '{topic}' has no partitions");
        }
        let timestamp = now_ms();
        let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
        for r in records {
            let partition = match (r.partition, &r.key) {
                (Some(p), _) if (0..count).contains(&p) => p,
                (Some(p), _) => {
                    return Err(super::KafkaError::refusal(
                        3,
                        format!("topic '{topic}' has no partition {p} ({count} partitions)"),
                    ));
                }
                (None, Some(key)) => partition_for_key(key, count),
                (None, None) => {
                    *next_partition = (*next_partition + 1).rem_euclid(count);
                    *next_partition
                }
            };
            let batch = by_partition.entry(partition).or_default();
            batch.push(Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: batch.len() as i64,
                // The encoder keeps records in one batch while offset - sequence is constant;
                // the batch's base sequence is then the first record's: -1, not idempotent.
                sequence: batch.len() as i32 - 1,
                timestamp,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| (text(k), Some(v.clone())))
                    .collect::<IndexMap<_, _>>(),
            });
        }
        let mut out = BTreeMap::new();
        let leaders = Self::by_leader(&metadata, by_partition.keys().map(|p| (topic, *p)));
        for (addr, partitions) in leaders {
            let mut data = Vec::new();
            for (_, partition) in &partitions {
                let mut buf = BytesMut::new();
                let batch = &by_partition[partition];
                RecordBatchEncoder::encode(
                    &mut buf,
                    batch.iter(),
                    &RecordEncodeOptions {
                        version: 2,
                        compression: options.compression,
                    },
                )
                .context("encoding a record batch")?;
                data.push(
                    PartitionProduceData::default()
                        .with_index(*partition)
                        .with_records(Some(buf.freeze())),
                );
            }
            let request = ProduceRequest::default()
                .with_acks(options.acks)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(TopicName(text(topic)))
                        .with_partition_data(data),
                ]);
            if options.acks == 0 {
                self.send_only(&addr, 9, &request).await?;
                for (_, p) in &partitions {
                    out.insert(*p, (-1, by_partition[p].len()));
                }
                continue;
            }
            let response = self.call(&addr, 9, &request).await?;
            for t in &response.responses {
                for p in &t.partition_responses {
                    check(p.error_code, p.error_message.as_ref(), || {
                        format!("producing to {topic}-{}", p.index)
                    })?;
                    let n = by_partition.get(&p.index).map_or(0, Vec::len);
                    out.insert(p.index, (p.base_offset, n));
                }
            }
        }
        for p in by_partition.keys() {
            if !out.contains_key(p) {
                bail!("partition {topic}-{p} has no leader");
            }
        }
        Ok(out)
    }

    /// Sends a request that has no response (Produce with acks=0).
    async fn send_only<R: kafka_protocol::protocol::Request>(
        &mut self,
        addr: &str,
        version: i16,
        request: &R,
    ) -> anyhow::Result<()> {
        let result = self.broker(addr).await?.send(version, request).await;
        if result.is_err() {
            self.connections.remove(addr);
        }
        result
    }

    /// Reads `partitions` of `topic` (each from its offset), waiting up to `max_wait_ms` for
    /// records: one Fetch per leader, at most `max_bytes` per partition, decoded (records
    /// before a partition's offset are skipped). Each partition's records, high watermark, or
    /// the error its leader answered.
    pub async fn fetch(
        &mut self,
        metadata: &ClusterMetadata,
        topic: &str,
        partitions: &[(i32, i64)],
        (max_wait_ms, max_bytes): (i32, i32),
    ) -> anyhow::Result<Vec<Fetched>> {
        let offsets: BTreeMap<i32, i64> = partitions.iter().copied().collect();
        let leaders = Self::by_leader(metadata, partitions.iter().map(|(p, _)| (topic, *p)));
        let mut out = Vec::new();
        for (p, _) in partitions {
            if !leaders.values().flatten().any(|(_, q)| q == p) {
                out.push(Fetched {
                    partition: *p,
                    records: Vec::new(),
                    high_watermark: -1,
                    error: Some(format!("partition {topic}-{p} has no leader")),
                });
            }
        }
        for (addr, led) in leaders {
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(max_wait_ms)
                .with_min_bytes(1)
                .with_max_bytes(max_bytes.saturating_mul(led.len() as i32))
                .with_isolation_level(0)
                .with_session_epoch(-1)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(TopicName(text(topic)))
                        .with_partitions(
                            led.iter()
                                .map(|(_, p)| {
                                    FetchPartition::default()
                                        .with_partition(*p)
                                        .with_current_leader_epoch(-1)
                                        .with_fetch_offset(offsets[p])
                                        .with_last_fetched_epoch(-1)
                                        .with_log_start_offset(-1)
                                        .with_partition_max_bytes(max_bytes)
                                })
                                .collect(),
                        ),
                ]);
            let response = self.call(&addr, 12, &request).await?;
            check(response.error_code, None, || {
                format!("fetching from {addr}")
            })?;
            for t in response.responses {
                for p in t.partitions {
                    let offset = offsets.get(&p.partition_index).copied().unwrap_or(0);
                    let error = check(p.error_code, None, || {
                        format!("fetching {topic}-{} at offset {offset}", p.partition_index)
                    })
                    .err()
                    .map(|e| e.to_string());
                    out.push(Fetched {
                        partition: p.partition_index,
                        records: p
                            .records
                            .map(|r| decode(r, p.partition_index, offset))
                            .unwrap_or_default(),
                        high_watermark: p.high_watermark,
                        error,
                    });
                }
            }
        }
        out.sort_by_key(|f| f.partition);
        Ok(out)
    }
}

/// One partition's part of a fetch.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The partition.
    pub partition: i32,
    /// Its records from the offset asked for.
    pub records: Vec<FetchedRecord>,
    /// Its high watermark (-1 on error).
    pub high_watermark: i64,
    /// The error its leader answered, if any.
    pub error: Option<String>,
}

/// The records of `batches` at or after `offset`, control records left out.
fn decode(mut batches: Bytes, partition: i32, offset: i64) -> Vec<FetchedRecord> {
    let mut out = Vec::new();
    while !batches.is_empty() {
        // A batch cut off at the end of the response is not an error.
        let Ok(set) = RecordBatchDecoder::decode(&mut batches) else {
            break;
        };
        for r in set.records {
            if r.offset < offset || r.control {
                continue;
            }
            out.push(FetchedRecord {
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_land_where_the_java_client_puts_them() {
        // Values from Kafka's own UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }
}
