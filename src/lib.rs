//! Strata: a Kafka-compatible, tiered-storage event streaming broker.
//!
//! This crate composes the broker from its parts: the local log (`log`), the partition and
//! topic state (`broker`), and the wiring into the Kafka protocol server of `strata-api`.

pub mod log;
