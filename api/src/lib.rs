//! strata-api: what Kafka clients see of a Strata broker.
//!
//! The Kafka wire protocol server (framing, per-connection request pipeline, one handler per
//! Kafka API, zero-copy Fetch responses) on top of the `kafka-protocol` crate's codecs. It knows
//! no storage: handlers call the broker through the [`Broker`] trait, and every Kafka error code
//! is chosen here, from [`BrokerError`].

pub mod admin;
pub mod broker;
pub mod cluster_api;
pub mod connection;
pub mod console;
pub mod fetch_session;
pub mod frame;
pub mod group;
mod handlers;
pub mod limits;
pub mod links;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod request;
pub mod response;
pub mod rest;
pub mod security;
pub mod server;
pub mod transport;
pub mod txn;
pub mod versions;

pub use broker::{Broker, BrokerError};
pub use server::{ServerConfig, serve};
