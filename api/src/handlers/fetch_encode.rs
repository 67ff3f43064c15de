//! Encodes a Fetch response whose record bytes stay in files.
//!
//! kafka-protocol encodes records inline, and its primitive encoders are private, so the head is
//! encoded by the crate twice: once with each spliced partition's records null, once empty. The
//! two encodings differ exactly in those partitions' length fields (int32 -1 vs 0 before v12,
//! varint 0 vs 1 from v12, the flexible versions). Each such field is replaced by the real
//! length, followed by the file region; everything else is the crate's own encoding.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::FetchResponse;

use super::{Ctx, HandleError};
use crate::broker::{FileRegion, Records};
use crate::response::{Part, ResponseFrame};

/// First Fetch version with flexible (compact) encoding.
const FIRST_FLEXIBLE_VERSION: i16 = 12;

/// Encodes `response`; `regions` lists, in partition order, the records of each partition.
pub(super) fn encode(
    ctx: &EncodeCtx,
    mut response: FetchResponse,
    records: Vec<Option<Records>>,
) -> Result<ResponseFrame, HandleError> {
    crate::metrics::KAFKA.count_errors(ctx.key, &response);
    // File regions and records in memory (from the remote tier) are both spliced in, so that
    // neither is copied into the encoded head.
    let mut regions = Vec::with_capacity(records.len());
    let mut records = records.into_iter();
    for topic in &mut response.responses {
        for partition in &mut topic.partitions {
            partition.records = Some(Bytes::new());
            regions.push(match records.next().flatten() {
                Some(Records::File(region)) => Some(Spliced::File(region)),
                Some(Records::Memory(bytes)) => Some(Spliced::Bytes(bytes)),
                Some(Records::Remote) | None => None,
            });
        }
    }
    debug_assert!(records.next().is_none());
    let with_empty = ctx.encode(&response)?;
    if regions.iter().all(Option::is_none) {
        return Ok(ResponseFrame::bytes(with_empty.freeze()));
    }
    let mut region_iter = regions.iter();
    for topic in &mut response.responses {
        for partition in &mut topic.partitions {
            if region_iter.next().is_some_and(Option::is_some) {
                partition.records = None;
            }
        }
    }
    let with_null = ctx.encode(&response)?;
    let field_len = if ctx.version >= FIRST_FLEXIBLE_VERSION {
        1
    } else {
        4
    };
    let fields = differing_runs(&with_null, &with_empty);
    let spliced: Vec<&Spliced> = regions.iter().flatten().collect();
    if fields.len() != spliced.len() || fields.iter().any(|&(_, len)| len != field_len) {
        return Err(ctx.error(format!(
            "found {} record length fields for {} file regions",
            fields.len(),
            spliced.len()
        )));
    }
    let head = with_null.freeze();
    let mut parts = Vec::with_capacity(2 * spliced.len() + 1);
    let mut copied = 0;
    for (&(at, len), region) in fields.iter().zip(spliced) {
        let mut piece = BytesMut::from(&head[copied..at]);
        let records_len = region.len();
        if ctx.version >= FIRST_FLEXIBLE_VERSION {
            put_unsigned_varint(&mut piece, records_len + 1);
        } else {
            piece.put_i32(records_len as i32);
        }
        parts.push(Part::Bytes(piece.freeze()));
        match region {
            Spliced::File(region) => parts.push(Part::File(region.clone())),
            Spliced::Bytes(pieces) => parts.extend(pieces.iter().cloned().map(Part::Bytes)),
        }
        copied = at + len;
    }
    parts.push(Part::Bytes(head.slice(copied..)));
    Ok(ResponseFrame { parts })
}

/// Records spliced into the encoded head.
enum Spliced {
    /// Sent from the file with `sendfile`.
    File(FileRegion),
    /// Written from memory, in pieces.
    Bytes(Vec<Bytes>),
}

impl Spliced {
    fn len(&self) -> u64 {
        match self {
            Self::File(region) => region.len,
            Self::Bytes(pieces) => pieces.iter().map(|b| b.len() as u64).sum(),
        }
    }
}

/// What the encoder needs of the request.
pub(super) struct EncodeCtx {
    pub key: kafka_protocol::messages::ApiKey,
    pub version: i16,
    pub correlation_id: i32,
}

impl EncodeCtx {
    pub(super) fn from<B>(ctx: &Ctx<'_, B>) -> Self {
        Self {
            key: ctx.key,
            version: ctx.version,
            correlation_id: ctx.correlation_id,
        }
    }

    fn encode(&self, response: &FetchResponse) -> Result<BytesMut, HandleError> {
        super::encode_response(self.key, self.version, self.correlation_id, response)
    }

    fn error(&self, reason: String) -> HandleError {
        HandleError::Encode {
            key: self.key,
            version: self.version,
            reason,
        }
    }
}

/// `(start, len)` of each maximal run of positions where `a` and `b` differ.
fn differing_runs(a: &[u8], b: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (at, (x, y)) in a.iter().zip(b).enumerate() {
        match (x != y, start) {
            (true, None) => start = Some(at),
            (false, Some(s)) => {
                runs.push((s, at - s));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, a.len() - s));
    }
    runs
}

fn put_unsigned_varint(buf: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{ApiKey, ResponseHeader, TopicName};
    use kafka_protocol::protocol::{Decodable, StrBytes};

    use super::*;

    /// Splicing must produce byte-for-byte what the crate encodes with the records inline.
    #[test]
    fn spliced_frame_equals_inline_encoding() {
        let mut file = tempfile::tempfile().unwrap();
        let payload: Vec<u8> = (0..300u32).map(|n| (n * 7) as u8).collect();
        file.write_all(&payload).unwrap();
        let file = Arc::new(file);
        for version in 4..=17 {
            let partitions = |with: bool| {
                (0..3)
                    .map(|p| {
                        PartitionData::default()
                            .with_partition_index(p)
                            .with_high_watermark(1000 + p as i64)
                            .with_records(with.then(|| {
                                Bytes::copy_from_slice(
                                    &payload[p as usize * 10..p as usize * 10 + 100],
                                )
                            }))
                    })
                    .collect::<Vec<_>>()
            };
            let topic = |with: bool| {
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_static_str("t")))
                    .with_topic_id(uuid::Uuid::from_u128(7))
                    .with_partitions(partitions(with))
            };
            let inline = FetchResponse::default().with_responses(vec![topic(true), topic(true)]);
            let ctx = EncodeCtx {
                key: ApiKey::Fetch,
                version,
                correlation_id: 9,
            };
            let expected = ctx.encode(&inline).unwrap();

            // Partition 1 of each topic comes from memory (the remote tier), the others from
            // the file: both must encode exactly as the crate's inline encoding.
            let regions: Vec<Option<Records>> = (0..6)
                .map(|n| {
                    let p = n % 3;
                    Some(if p == 1 {
                        // Two pieces, as a read across two chunks gives.
                        let start = p as usize * 10;
                        Records::Memory(vec![
                            Bytes::copy_from_slice(&payload[start..start + 40]),
                            Bytes::copy_from_slice(&payload[start + 40..start + 100]),
                        ])
                    } else {
                        Records::File(FileRegion {
                            file: Arc::clone(&file),
                            position: p * 10,
                            len: 100,
                        })
                    })
                })
                .collect();
            let head = FetchResponse::default().with_responses(vec![topic(false), topic(false)]);
            let frame = encode(&ctx, head, regions).unwrap();
            let mut flat = Vec::new();
            for part in frame.parts {
                match part {
                    Part::Bytes(bytes) => flat.extend_from_slice(&bytes),
                    Part::File(region) => flat.extend_from_slice(
                        &payload[region.position as usize..(region.position + region.len) as usize],
                    ),
                }
            }
            assert_eq!(flat, expected.to_vec(), "version {version}");
            let mut decoded = Bytes::from(flat);
            ResponseHeader::decode(&mut decoded, if version >= 12 { 1 } else { 0 }).unwrap();
            let response = FetchResponse::decode(&mut decoded, version).unwrap();
            assert_eq!(
                response.responses[1].partitions[2]
                    .records
                    .as_ref()
                    .unwrap()
                    .len(),
                100
            );
        }
    }
}
