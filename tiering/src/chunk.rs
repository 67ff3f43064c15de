//! The remote format of one segment: its record batches grouped into chunks of a few MiB of
//! whole batches, each chunk an independent zstd frame, concatenated into one object. A chunk
//! index (first and next offset, max timestamp, byte range in the object) lets a reader fetch
//! one byte range and decompress one chunk.

use serde::{Deserialize, Serialize};

use crate::TieringError;

use strata_record::BatchHeader;
pub use strata_record::batches;

/// The batch at the start of `bytes`, if a whole one is there.
pub fn batch_at(bytes: &[u8]) -> Option<BatchHeader> {
    batches(bytes).next().map(|(_, header)| header)
}

/// Bytes of a batch, as an index into a buffer.
fn size_of(batch: &BatchHeader) -> usize {
    usize::try_from(batch.size()).unwrap_or(usize::MAX)
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
    let mut start: Option<(usize, BatchHeader)> = None;
    let mut end = 0;
    let mut max_timestamp = i64::MIN;
    let mut last_next = 0;
    let flush =
        |from: usize, to: usize, first: BatchHeader, next: u64, max_ts: i64, out: &mut Chunked| {
            let frame = compress(&segment[from..to], level)?;
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
            .is_none_or(|e| e.epoch != batch.partition_leader_epoch)
        {
            out.epochs.push(EpochStart {
                epoch: batch.partition_leader_epoch,
                start_offset: batch.base_offset,
            });
        }
        if let Some((from, first)) = start
            && position + size_of(&batch) - from > target
        {
            flush(from, position, first, last_next, max_timestamp, &mut out)?;
            start = None;
            max_timestamp = i64::MIN;
        }
        if start.is_none() {
            start = Some((position, batch));
        }
        max_timestamp = max_timestamp.max(batch.max_timestamp);
        last_next = batch.next_offset();
        end = position + size_of(&batch);
    }
    if let Some((from, first)) = start {
        flush(from, end, first, last_next, max_timestamp, &mut out)?;
    }
    out.raw_length = end as u64;
    Ok(out)
}

/// One zstd frame of `raw` at `level`, with zstd's content checksum: a damaged object fails
/// to decompress instead of yielding other bytes.
fn compress(raw: &[u8], level: i32) -> Result<Vec<u8>, TieringError> {
    let failed = |e: std::io::Error| TieringError::Format(format!("zstd: {e}"));
    let mut compressor = zstd::bulk::Compressor::new(level).map_err(failed)?;
    compressor.include_checksum(true).map_err(failed)?;
    compressor.compress(raw).map_err(failed)
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
    verify(out, chunk)
}

/// Checks that `raw` is the chunk `chunk` describes: whole batches with intact CRC-32Cs,
/// covering its offsets without gaps (tiered logs are never compacted). Every chunk is checked
/// when decompressed and when read back from the disk cache, so damaged remote data is never
/// served.
pub fn verify(raw: &[u8], chunk: &Chunk) -> Result<(), TieringError> {
    strata_record::verify_batches(raw, chunk.base_offset, chunk.next_offset)
        .map_err(|e| TieringError::Format(format!("chunk at offset {}: {e}", chunk.base_offset)))
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
        if batch.next_offset() <= offset {
            continue;
        }
        let start = *from.get_or_insert(position);
        let end = position + size_of(&batch);
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
    use strata_record::HEADER_SIZE;

    /// A batch of `count` offsets at `base`, with a valid header and CRC.
    pub(crate) fn batch(base: u64, count: u32, epoch: i32, ts: i64, payload: usize) -> Vec<u8> {
        strata_record::testing::batch(base, count, epoch, ts, payload, &[0, 1, 2, 3, 4, 5, 6])
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
    fn damaged_batches_in_a_chunk_are_errors() {
        let seg = segment(4, 1, 100);
        let chunked = build(&seg, 1 << 20, 3).unwrap();
        let chunk = &chunked.chunks[0];
        let mut raw = seg.clone();
        verify(&raw, chunk).unwrap();
        raw[HEADER_SIZE + 150] ^= 1;
        let message = verify(&raw, chunk).unwrap_err().to_string();
        assert!(message.contains("CRC"), "{message}");
        assert!(
            verify(&seg[..seg.len() - 1], chunk).is_err(),
            "a torn last batch"
        );
        let mut outside = chunk.clone();
        outside.next_offset = 2;
        assert!(verify(&seg, &outside).is_err(), "offsets past the chunk");
        let mut shifted = seg.clone();
        shifted[7] ^= 1; // the base offset of the first batch, outside its CRC
        assert!(verify(&shifted, chunk).is_err(), "a damaged base offset");
    }

    #[test]
    fn a_flipped_bit_in_a_frame_fails_its_checksum() {
        let seg = segment(4, 1, 100);
        let chunked = build(&seg, 1 << 20, 3).unwrap();
        let chunk = &chunked.chunks[0];
        let mut frame = chunked.object.clone();
        // A byte of the compressed body (past the frame header).
        frame[20] ^= 0x10;
        let mut raw = vec![0; chunk.raw_length as usize];
        assert!(decompress(&frame, chunk, &mut raw).is_err());
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
