//! orgsync keeps a cloud-security inventory in step with AWS Organizations: register an
//! organization once, and it keeps an audited listing of every member account (state, place
//! in the OU tree, tags) that frontends read over GraphQL and automation over REST.
//!
//! # Layout
//!
//! Each module uses only those listed below it, never one above (`scripts/module-graph.py`
//! checks that no two import each other):
//!
//! - [`startup`]: wiring the daemon: store, key, service, HTTP server, one shutdown signal.
//! - [`api`]: the REST and GraphQL edges, thin: they parse input, call [`app`], shape answers.
//! - [`app`]: the application service, one method per use case, shared by every edge.
//! - [`harvest`]: the harvest use case (one pass over an organization, reruns, locks) and the
//!   scheduler that starts passes, handed its collaborators by [`app`].
//! - [`commands`]: the command side: load an aggregate, decide, append, one or thousands.
//! - [`projections`]: the read tables, built from the event log by a checkpointed projector.
//! - [`store`]: the event log and the tables beside it, on SQLite or PostgreSQL.
//! - [`aws`]: the AWS calls as a trait, implemented on the AWS SDK for Rust.
//! - [`domain`]: the `Organization` and `Account` aggregates, their commands and events, the
//!   badge rules and validated values. Pure: nothing here touches AWS or the store.
//! - [`crypto`]: AES-SIV sealing of credentials and the external ID.
//! - [`config`], [`telemetry`], [`metrics`]: settings, logs and Prometheus metrics.
//!
//! The rules (R1–R18) and invariants (I1–I5) that comments and test names cite are written
//! out in `docs/RULES.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod aws;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod harvest;
pub mod metrics;
pub mod projections;
pub mod startup;
pub mod store;
pub mod telemetry;
