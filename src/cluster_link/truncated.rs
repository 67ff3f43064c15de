//! What a mirror cuts off is kept: when its source's history went another way (a failback:
//! the old primary's writes after the cut; or an unclean election at the source), the records
//! above the divergence point are copied to `<topic>.strata-truncated` (same partition) before
//! the mirror truncates, so an operator can see and replay what was accepted there.

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};
use std::os::unix::fs::FileExt;
use strata_controller::raft::admin::{AdminRequest, NewTopic};

use super::source::{CLIENT_ID, SOURCE_TIMEOUT};
use crate::broker::StrataBroker;
use crate::kafka_client::Client;
use crate::metadata_cache::live_node;
use crate::partition::PartitionRef;

/// The side topic's name suffix.
pub const SUFFIX: &str = ".strata-truncated";
/// Records per produced batch (well under the default `max.message.bytes` for small records).
const RECORDS_PER_BATCH: usize = 500;

/// The records of `partition` from `from` to its log end, decoded (control records left out).
fn records_from(partition: &PartitionRef, from: u64) -> anyhow::Result<Vec<Record>> {
    let mut raw = Vec::new();
    let end = partition.log().log_end_offset();
    let mut at = from;
    while at < end {
        let Some(slice) = partition.log().read(at as i64, 8 << 20, end, true)? else {
            break;
        };
        let mut bytes = vec![0; slice.len as usize];
        slice.file.read_exact_at(&mut bytes, slice.position)?;
        let last = strata_record::batches(&bytes)
            .last()
            .map(|(_, h)| h.next_offset())
            .context("a read without a whole batch")?;
        raw.extend_from_slice(&bytes);
        at = last;
    }
    let mut buf = Bytes::from(raw);
    let mut out = Vec::new();
    while !buf.is_empty() {
        let set = RecordBatchDecoder::decode(&mut buf).context("decoding cut-off batches")?;
        out.extend(
            set.records
                .into_iter()
                .filter(|r| !r.control && r.offset >= from as i64),
        );
    }
    Ok(out)
}

/// Copies what `partition` holds from `from` on into its side topic; how many records.
pub(super) async fn save(
    broker: &StrataBroker,
    partition: &PartitionRef,
    from: u64,
) -> anyhow::Result<u64> {
    let records = records_from(partition, from)?;
    if records.is_empty() {
        return Ok(0);
    }
    let side = format!("{}{SUFFIX}", partition.topic);
    let count = {
        let image = broker.image();
        image
            .topic(&partition.topic)
            .map_or(1, |t| t.partitions.len())
    };
    if broker.image().topic(&side).is_none() {
        let replication_factor = super::replication_factor(broker);
        let created = broker
            .admin()
            .request(AdminRequest::CreateTopic(NewTopic {
                name: side.clone(),
                partitions: count,
                replication_factor,
                assignments: Vec::new(),
                configs: Default::default(),
                validate_only: false,
                topic_id: None,
            }))
            .await;
        if let Err(e) = created
            && broker.image().topic(&side).is_none()
        {
            bail!("creating {side}: {e}");
        }
    }
    let leader = {
        let image = broker.image();
        let leader = image
            .topic(&side)
            .and_then(|t| t.partitions.get(&partition.index))
            .map(|p| p.leader)
            .context("the side topic lacks the partition")?;
        live_node(&image, leader)
            .map(|n| format!("{}:{}", n.host, n.port))
            .context("the side topic's partition has no leader")?
    };
    let mut client = Client::connect_as(&leader, CLIENT_ID, SOURCE_TIMEOUT).await?;
    let total = records.len() as u64;
    for chunk in records.chunks(RECORDS_PER_BATCH) {
        let plain: Vec<Record> = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                // The encoder keeps records in one batch while offset - sequence is constant;
                // -1 is the base sequence of a batch without a producer id.
                sequence: i as i32 - 1,
                timestamp_type: r.timestamp_type,
                offset: i as i64,
                timestamp: r.timestamp,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r.headers.clone(),
                delete_horizon: false,
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &plain,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )?;
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(side.clone())))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition.index)
                            .with_records(Some(buf.freeze())),
                    ]),
            ]);
        let response = client.call(9, &request).await?;
        let code = response
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .map_or(-1, |p| p.error_code);
        if code != 0 {
            bail!("writing to {side} answered error code {code}");
        }
    }
    tracing::warn!(topic = %partition.topic, partition = partition.index, from, records = total, side = %side, "records cut off by the mirror kept in the side topic");
    Ok(total)
}
