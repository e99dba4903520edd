//! Integration tests: the real daemon on port 0, the real AWS SDK against moto, and every
//! store-touching test on SQLite and on PostgreSQL. Run them with `scripts/test`.

mod aws_stub;
mod badges;
mod bounds;
mod console;
mod events;
mod graphql;
mod helpers;
mod interfaces;
mod moto;
mod operations;
mod parity;
mod proxy;

mod harvest;
mod input;
mod recovery;
mod registration;
mod rules;
mod scale;
mod sockets;
mod tokens;
mod validation;

/// The daemon's own allocator (src/main.rs), so that the daemons these tests run in-process
/// are measured as `orgsync serve` runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
