//! The remote format of one segment: its record batches grouped into chunks of a few MiB of
//! whole batches, each chunk an independent zstd frame, concatenated into one object. A chunk
//! index (first and next offset, max timestamp, byte range in the object) lets a reader fetch
//! one byte range and decompress one chunk.

use serde::{Deserialize, Serialize};

use crate::TieringError;

/// Size of a record batch v2 header (Kafka's format; see the broker's `log::batch`).
const HEADER_SIZE: usize = 61;
/// Bytes before the batch payload that the length field does not count.
const LOG_OVERHEAD: usize = 12;

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The fields of a batch header the remote tier needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Offset after the last record.
    pub next_offset: u64,
    /// Bytes of the whole batch.
    pub size: usize,
    /// Leader epoch stamped on the batch.
    pub leader_epoch: i32,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
}

/// The batch at the start of `bytes`, if a whole one is there.
pub fn batch_at(bytes: &[u8]) -> Option<BatchSpan> {
    if bytes.len() < HEADER_SIZE {
        return None;
    }
    let length = be_i32(bytes, 8);
    let size = LOG_OVERHEAD.checked_add(usize::try_from(length).ok()?)?;
    if size < HEADER_SIZE || size > bytes.len() {
        return None;
    }
    let base_offset = u64::try_from(be_i64(bytes, 0)).ok()?;
    let last_delta = u64::try_from(be_i32(bytes, 23)).ok()?;
    Some(BatchSpan {
        base_offset,
        next_offset: base_offset + last_delta + 1,
        size,
        leader_epoch: be_i32(bytes, 12),
        max_timestamp: be_i64(bytes, 35),
    })
}

/// Iterates over the whole batches at the start of `bytes` with their positions.
pub fn batches(bytes: &[u8]) -> impl Iterator<Item = (usize, BatchSpan)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let batch = batch_at(&bytes[at..])?;
        let position = at;
        at += batch.size;
        Some((position, batch))
    })
}

/// One chunk of a remote segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// First offset in the chunk.
    pub base_offset: u64,
    /// Offset after its last record.
    pub next_offset: u64,
    /// Largest record timestamp in it.
    pub max_timestamp: i64,
    /// Where its zstd frame starts in the object.
    pub position: u64,
    /// Length of the frame.
    pub length: u64,
    /// Bytes of batches it decompresses to.
    pub raw_length: u64,
}

/// Where a leader epoch starts, within a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochStart {
    /// Leader epoch.
    pub epoch: i32,
    /// First offset written in it.
    pub start_offset: u64,
}

/// A segment turned into its remote form.
#[derive(Debug)]
pub struct Chunked {
    /// The object: concatenated zstd frames.
    pub object: Vec<u8>,
    /// Its chunks, in offset order.
    pub chunks: Vec<Chunk>,
    /// Leader epochs the segment covers.
    pub epochs: Vec<EpochStart>,
    /// Bytes of batches in the segment.
    pub raw_length: u64,
}

/// Splits a segment's bytes into chunks of about `target` bytes of whole batches (a batch
/// larger than `target` is a chunk of its own) and compresses each at `level`.
pub fn build(segment: &[u8], target: usize, level: i32) -> Result<Chunked, TieringError> {
    let mut out = Chunked {
        object: Vec::new(),
        chunks: Vec::new(),
        epochs: Vec::new(),
        raw_length: 0,
    };
    let mut start: Option<(usize, BatchSpan)> = None;
    let mut end = 0;
    let mut max_timestamp = i64::MIN;
    let mut last_next = 0;
    let flush =
        |from: usize, to: usize, first: BatchSpan, next: u64, max_ts: i64, out: &mut Chunked| {
            let frame = zstd::bulk::compress(&segment[from..to], level)
                .map_err(|e| TieringError::Format(format!("zstd: {e}")))?;
            out.chunks.push(Chunk {
                base_offset: first.base_offset,
                next_offset: next,
                max_timestamp: max_ts,
                position: out.object.len() as u64,
                length: frame.len() as u64,
                raw_length: (to - from) as u64,
            });
            out.object.extend_from_slice(&frame);
            Ok::<(), TieringError>(())
        };
    for (position, batch) in batches(segment) {
        if batch.base_offset < last_next {
            return Err(TieringError::Format(format!(
                "batch at {position} starts at offset {} before the previous end {last_next}",
                batch.base_offset
            )));
        }
        if out
            .epochs
            .last()
            .is_none_or(|e| e.epoch != batch.leader_epoch)
        {
            out.epochs.push(EpochStart {
                epoch: batch.leader_epoch,
                start_offset: batch.base_offset,
            });
        }
        if let Some((from, first)) = start
            && position + batch.size - from > target
        {
            flush(from, position, first, last_next, max_timestamp, &mut out)?;
            start = None;
            max_timestamp = i64::MIN;
        }
        if start.is_none() {
            start = Some((position, batch));
        }
        max_timestamp = max_timestamp.max(batch.max_timestamp);
        last_next = batch.next_offset;
        end = position + batch.size;
    }
    if let Some((from, first)) = start {
        flush(from, end, first, last_next, max_timestamp, &mut out)?;
    }
    out.raw_length = end as u64;
    Ok(out)
}

/// Decompresses one chunk's frame into `out`, which must be, and be filled to, exactly the
/// indexed length.
pub fn decompress(frame: &[u8], chunk: &Chunk, out: &mut [u8]) -> Result<(), TieringError> {
    let format =
        |e: String| TieringError::Format(format!("chunk at offset {}: {e}", chunk.base_offset));
    if out.len() as u64 != chunk.raw_length {
        return Err(format(format!(
            "{} bytes of room for {}",
            out.len(),
            chunk.raw_length
        )));
    }
    let written = zstd::bulk::Decompressor::new()
        .and_then(|mut d| d.decompress_to_buffer(frame, out))
        .map_err(|e| format(e.to_string()))?;
    if written as u64 != chunk.raw_length {
        return Err(format(format!(
            "decompressed to {written} bytes, the index says {}",
            chunk.raw_length
        )));
    }
    Ok(())
}

/// The byte range of `raw` (a decompressed chunk) from the batch holding `offset`, of whole
/// batches up to `max_bytes` (at least one batch if `min_one`).
pub fn slice_from(
    raw: &[u8],
    offset: u64,
    max_bytes: u64,
    min_one: bool,
) -> std::ops::Range<usize> {
    let mut from = None;
    let mut to = 0;
    for (position, batch) in batches(raw) {
        if batch.next_offset <= offset {
            continue;
        }
        let start = *from.get_or_insert(position);
        let end = position + batch.size;
        if (end - start) as u64 > max_bytes && !(min_one && to == 0) {
            break;
        }
        to = end;
    }
    match from {
        Some(start) if to > start => start..to,
        _ => 0..0,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fake batch of `count` offsets at `base` (only the header fields the tier reads).
    pub(crate) fn batch(base: u64, count: u32, epoch: i32, ts: i64, payload: usize) -> Vec<u8> {
        let size = HEADER_SIZE + payload;
        let mut b = vec![0u8; size];
        b[0..8].copy_from_slice(&(base as i64).to_be_bytes());
        b[8..12].copy_from_slice(&((size - LOG_OVERHEAD) as i32).to_be_bytes());
        b[12..16].copy_from_slice(&epoch.to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&((count - 1) as i32).to_be_bytes());
        b[35..43].copy_from_slice(&ts.to_be_bytes());
        for (n, byte) in b[HEADER_SIZE..].iter_mut().enumerate() {
            *byte = (n % 7) as u8;
        }
        b
    }

    pub(crate) fn segment(batches: usize, per_batch: u32, payload: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for n in 0..batches {
            let epoch = if n < batches / 2 { 0 } else { 3 };
            out.extend(batch(
                n as u64 * per_batch as u64,
                per_batch,
                epoch,
                1000 + n as i64,
                payload,
            ));
        }
        out
    }

    #[test]
    fn chunks_hold_whole_batches_and_round_trip() {
        let seg = segment(100, 10, 1000);
        let chunked = build(&seg, 8 * 1061, 3).unwrap();
        assert_eq!(chunked.chunks.len(), 13, "8 batches per chunk");
        assert_eq!(chunked.raw_length, seg.len() as u64);
        assert_eq!(
            chunked.epochs,
            vec![
                EpochStart {
                    epoch: 0,
                    start_offset: 0
                },
                EpochStart {
                    epoch: 3,
                    start_offset: 500
                }
            ]
        );
        let mut rebuilt = Vec::new();
        let mut expected_base = 0;
        for chunk in &chunked.chunks {
            assert_eq!(chunk.base_offset, expected_base);
            let frame =
                &chunked.object[chunk.position as usize..(chunk.position + chunk.length) as usize];
            let mut raw = vec![0; chunk.raw_length as usize];
            decompress(frame, chunk, &mut raw).unwrap();
            rebuilt.extend(raw);
            expected_base = chunk.next_offset;
        }
        assert_eq!(rebuilt, seg);
        assert_eq!(expected_base, 1000);
        assert!(
            chunked.object.len() < seg.len() / 5,
            "compressible payload compresses"
        );
    }

    #[test]
    fn slices_start_at_the_batch_holding_the_offset() {
        let seg = segment(10, 10, 100);
        let size = HEADER_SIZE + 100;
        assert_eq!(slice_from(&seg, 25, 10_000, false), 2 * size..10 * size);
        assert_eq!(
            slice_from(&seg, 25, 2 * size as u64, false),
            2 * size..4 * size
        );
        assert_eq!(slice_from(&seg, 25, 10, true), 2 * size..3 * size);
        assert_eq!(slice_from(&seg, 25, 10, false), 0..0);
        assert_eq!(slice_from(&seg, 100, 10_000, true), 0..0);
    }

    #[test]
    fn corrupt_frames_are_errors() {
        let seg = segment(4, 1, 100);
        let chunked = build(&seg, 1 << 20, 3).unwrap();
        let mut frame = chunked.object.clone();
        frame.truncate(frame.len() / 2);
        let mut raw = vec![0; chunked.chunks[0].raw_length as usize];
        assert!(decompress(&frame, &chunked.chunks[0], &mut raw).is_err());
    }
}
