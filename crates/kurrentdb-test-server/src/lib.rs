#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Every gRPC handler answers `tonic::Status` by value, so the helpers that
// build its answers do too; boxing it only to unbox it at each call buys nothing.
#![allow(clippy::result_large_err)]
//! A KurrentDB (formerly EventStoreDB) test server for the `eventstore` 4
//! client: the `Streams` and `ServerFeatures` gRPC services of a single node,
//! generated from the client crate's own `.proto` files, over an in-memory log
//! that can persist to a data directory.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! let server = kurrentdb_test_server::TestServer::start(0, None).await?;
//! let settings: eventstore::ClientSettings = server.url().parse().unwrap();
//! let client = eventstore::Client::new(settings).unwrap();
//! # drop(client);
//! server.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! See the crate's README for what it implements and where it differs from a
//! real server.

mod batch;
mod convert;
mod errors;
mod features;
mod filter;
mod persistence;
mod read;
mod server;
mod store;
mod streams;
mod subscription;

pub use features::SERVER_VERSION;
pub use server::TestServer;

/// The protocol types generated from the `eventstore` crate's `.proto` files,
/// for tests that need a request the client cannot make (a filtered read of
/// `$all`, say) and send it with a plain tonic client.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    /// Packages under `event_store`.
    pub mod event_store {
        /// `event_store.client` and the services under it.
        pub mod client {
            include!(concat!(env!("OUT_DIR"), "/event_store.client.rs"));

            /// `event_store.client.streams`.
            pub mod streams {
                include!(concat!(env!("OUT_DIR"), "/event_store.client.streams.rs"));
            }

            /// `event_store.client.server_features`.
            pub mod server_features {
                include!(concat!(
                    env!("OUT_DIR"),
                    "/event_store.client.server_features.rs"
                ));
            }
        }
    }

    /// Packages under `google`.
    pub mod google {
        /// `google.rpc`: the status a batch append reports a failed write with.
        pub mod rpc {
            include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
        }
    }
}
