//! orgsync keeps a cloud-security inventory in step with AWS Organizations: register an
//! organization once, and it keeps an audited listing of every member account (state, place
//! in the OU tree, tags) that frontends read over GraphQL and automation over REST.
//!
//! # Layout
//!
//! - [`domain`]: the `Organization` and `Account` aggregates, their commands and events, and
//!   validated values. Pure: nothing here touches AWS or the store.
//! - [`app`]: the application service, one method per use case, shared by every edge.
//! - [`harvest`]: one pass over an organization, and the scheduler that starts passes.
//! - [`aws`]: the AWS calls as a trait, implemented on the AWS SDK for Rust.
//! - [`projections`]: the read tables, built from the event log by a checkpointed projector.
//! - [`store`]: the event log and connection pools, on SQLite or PostgreSQL.
//! - [`crypto`]: AES-SIV sealing of credentials and the external ID.
//! - [`api`]: REST (and GraphQL) edges.
//! - [`config`], [`telemetry`], [`metrics`], [`startup`]: settings, logs, Prometheus
//!   metrics and wiring the daemon.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod aws;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod harvest;
pub mod metrics;
pub mod projections;
pub mod startup;
pub mod store;
pub mod telemetry;
