//! The edges: REST for automation (GraphQL for frontends joins it here). Both stay thin:
//! they parse and check input into domain values, call the application service, and shape
//! its answers.

pub mod input;
pub mod rest;
