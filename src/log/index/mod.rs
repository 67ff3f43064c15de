//! Memory-mapped sparse indexes of a segment, in Kafka's on-disk format.
//!
//! Both indexes are fixed-size big-endian entries in a file that is preallocated to
//! `segment.index.bytes` while its segment is active and trimmed to its entries when the segment
//! is closed (rolled or shut down cleanly). An index is only a hint: after an unclean shutdown the
//! indexes of recovered segments are rebuilt from the log, so they are never fsync'd on the
//! produce path.

mod entry_file;
pub mod offset_index;
pub mod time_index;
pub mod txn_index;

pub use offset_index::OffsetIndex;
pub use time_index::TimeIndex;
pub use txn_index::{AbortedTxn, TransactionIndex};
