//! Strata: a Kafka-compatible, tiered-storage event streaming broker.
//!
//! This crate composes the broker: the local log (`log`), partitions and their durability
//! (`partition`, `replica_manager`), the cluster membership and metadata image (`cluster`, `meta_properties`), the [`strata_api::Broker`]
//! implementation (`broker`), configuration and the process lifecycle (`config`, `server`).

pub mod admin_api;
pub mod admin_client;
pub mod authorizer;
pub mod broker;
pub mod cli;
pub mod cluster;
pub mod cluster_link;
pub mod config;
pub mod dir_lock;
pub mod group;
pub mod health;
pub mod kafka_client;
pub mod log;
pub mod logging;
pub mod meta_properties;
pub mod metadata_cache;
pub mod metrics;
pub mod partition;
pub mod remote_log_manager;
pub mod replica_manager;
pub mod server;
pub mod txn;
