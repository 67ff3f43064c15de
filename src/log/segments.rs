//! `LogSegments`: the segments of one log, ordered by base offset. The last one is the active
//! segment, the one appends go to; a log always has one.

use std::collections::BTreeMap;

use super::segment::LogSegment;

/// The ordered segments of a log (Kafka's `LogSegments`).
#[derive(Debug, Default)]
pub struct LogSegments {
    by_base_offset: BTreeMap<u64, LogSegment>,
}

impl LogSegments {
    /// Adds (or replaces) the segment at its base offset.
    pub fn insert(&mut self, segment: LogSegment) {
        self.by_base_offset.insert(segment.base_offset(), segment);
    }

    /// Takes out the segment at `base_offset`.
    pub fn remove(&mut self, base_offset: u64) -> Option<LogSegment> {
        self.by_base_offset.remove(&base_offset)
    }

    /// The segment at `base_offset`.
    pub fn get(&self, base_offset: u64) -> Option<&LogSegment> {
        self.by_base_offset.get(&base_offset)
    }

    /// The segment at `base_offset`, to change it.
    pub fn get_mut(&mut self, base_offset: u64) -> Option<&mut LogSegment> {
        self.by_base_offset.get_mut(&base_offset)
    }

    /// The segment appends go to.
    pub fn active(&self) -> &LogSegment {
        self.by_base_offset
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    /// The segment appends go to, to change it.
    pub fn active_mut(&mut self) -> &mut LogSegment {
        self.by_base_offset
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    /// Base offset of the first segment.
    pub fn first_base_offset(&self) -> u64 {
        *self
            .by_base_offset
            .keys()
            .next()
            .expect("a log always has an active segment")
    }

    /// Every segment, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &LogSegment> + '_ {
        self.by_base_offset.values()
    }

    /// The segments before the active one, oldest first.
    pub fn closed(&self) -> impl Iterator<Item = &LogSegment> + '_ {
        self.by_base_offset
            .values()
            .take(self.by_base_offset.len().saturating_sub(1))
    }

    /// The segment that may hold `offset` (the last one starting at or below it), then the
    /// ones after it.
    pub fn from_offset(&self, offset: u64) -> impl Iterator<Item = &LogSegment> + '_ {
        self.by_base_offset
            .range(..=offset)
            .next_back()
            .map(|(_, s)| s)
            .into_iter()
            .chain(self.by_base_offset.range(offset + 1..).map(|(_, s)| s))
    }

    /// Base offsets, oldest first.
    pub fn base_offsets(&self) -> Vec<u64> {
        self.by_base_offset.keys().copied().collect()
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.by_base_offset.len()
    }

    /// Whether there are none (only while a log is being loaded).
    pub fn is_empty(&self) -> bool {
        self.by_base_offset.is_empty()
    }

    /// Bytes of all segments.
    pub fn size(&self) -> u64 {
        self.by_base_offset.values().map(LogSegment::size).sum()
    }

    /// Whether each segment ends at or before the next one starts (compaction leaves gaps).
    pub fn ordered(&self) -> bool {
        self.by_base_offset
            .values()
            .zip(self.by_base_offset.values().skip(1))
            .all(|(a, b)| a.next_offset() <= b.base_offset())
    }
}
