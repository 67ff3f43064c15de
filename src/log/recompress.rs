//! Recompression of a produced batch into its topic's codec (`compression.type` other than
//! `producer`), as Kafka's `LogValidator` does.
//!
//! Batches are stored as they arrive unless a topic names a codec: that is Kafka's one case of
//! rewriting a producer's batch. The rewrite keeps everything a consumer or the producer state
//! sees (records, offsets deltas, timestamps, producer id, epoch and base sequence, the
//! transactional flag) and changes only the codec bits and the compressed bytes; the CRC is
//! recomputed. Followers and cluster links never recompress: they copy the leader's bytes.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::batch::{self, BatchHeader};
use super::error::{LogError, Result};

/// The batch in `codec`, or `None` when it already is (or is not one well-formed batch, which
/// the append then refuses with the reason).
pub fn recompress(batch: &[u8], codec: Compression) -> Result<Option<Bytes>> {
    let Ok(header) = batch::validate_single_batch(batch) else {
        return Ok(None);
    };
    if header.compression() == codec as i16 {
        return Ok(None);
    }
    let mut bytes = Bytes::copy_from_slice(batch);
    let set = RecordBatchDecoder::decode(&mut bytes)
        .map_err(|e| LogError::CorruptRecord(format!("batch does not decode: {e}")))?;
    let options = RecordEncodeOptions {
        version: 2,
        compression: codec,
    };
    let mut out = BytesMut::with_capacity(batch.len());
    RecordBatchEncoder::encode(&mut out, &set.records, &options)
        .map_err(|e| LogError::InvalidRecord(format!("batch cannot be recompressed: {e}")))?;
    let out = out.freeze();
    // One batch in, one batch out, or the producer's sequences would no longer match.
    let rewritten = BatchHeader::parse(&out)?;
    if rewritten.size() != out.len() as u64 || rewritten.records_count != header.records_count {
        return Err(LogError::InvalidRecord(
            "batch cannot be recompressed into one batch".into(),
        ));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{Record, TimestampType};

    fn batch(compression: Compression, sequence: i32, transactional: bool) -> Bytes {
        let records: Vec<Record> = (0..5)
            .map(|i| Record {
                transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: 42,
                producer_epoch: 3,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: sequence.wrapping_add(i as i32),
                timestamp: 1_000 + i,
                key: Some(Bytes::from(format!("k{i}"))),
                value: (i != 2).then(|| Bytes::from(vec![b'v'; 200])),
                headers: Default::default(),
            })
            .collect();
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut out,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        out.freeze()
    }

    #[test]
    fn every_codec_keeps_records_and_producer_fields() {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for from in codecs {
            for to in codecs {
                let original = batch(from, 7, true);
                let Some(out) = recompress(&original, to).unwrap() else {
                    assert_eq!(from, to, "{from:?} → {to:?} left alone");
                    continue;
                };
                let (before, after) = (
                    BatchHeader::parse(&original).unwrap(),
                    BatchHeader::parse(&out).unwrap(),
                );
                assert_eq!(after.attributes & 0x7, to as i16);
                assert_eq!(after.attributes & !0x7, before.attributes & !0x7);
                assert_eq!(
                    (after.producer_id, after.producer_epoch, after.base_sequence),
                    (42, 3, 7)
                );
                assert_eq!(
                    (
                        after.last_offset_delta,
                        after.records_count,
                        after.max_timestamp
                    ),
                    (
                        before.last_offset_delta,
                        before.records_count,
                        before.max_timestamp
                    )
                );
                batch::validate_single_batch(&out).expect("valid, CRC included");
                let decoded = RecordBatchDecoder::decode(&mut out.clone())
                    .unwrap()
                    .records;
                let expected = RecordBatchDecoder::decode(&mut original.clone())
                    .unwrap()
                    .records;
                assert_eq!(decoded, expected, "{from:?} → {to:?}");
            }
        }
    }

    #[test]
    fn a_batch_without_sequences_stays_one_batch() {
        let original = batch(Compression::None, -1, false);
        let out = recompress(&original, Compression::Zstd).unwrap().unwrap();
        let header = BatchHeader::parse(&out).unwrap();
        assert_eq!((header.base_sequence, header.records_count), (-1, 5));
    }

    #[test]
    fn a_corrupt_batch_is_left_to_the_append_to_refuse() {
        let mut bytes = batch(Compression::None, 0, false).to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(recompress(&bytes, Compression::Zstd).unwrap().is_none());
    }
}
