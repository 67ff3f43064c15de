//! strata-tiering: closed segments offloaded to object storage, read back transparently.
//!
//! It will upload closed segments as zstd chunks with a chunk index and a per-partition
//! manifest, serve remote reads, and apply retention in both tiers. It works on segment files
//! and an `ObjectStore` only: no networking, no knowledge of the Kafka protocol.
