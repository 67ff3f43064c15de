//! strata-controller: the KRaft-style metadata quorum on openraft.
//!
//! It will hold every piece of cluster metadata (brokers, topics, partitions, configs) as
//! records of one replicated log applied to a `MetadataImage`, with snapshots so that standby
//! controllers are hot. Until it exists, a single node keeps topic metadata in
//! `strata::metadata`. It must never depend on the data plane (`src/`, `api/`, `tiering/`).
