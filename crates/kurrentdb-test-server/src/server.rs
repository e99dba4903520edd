//! Starting and stopping the server.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::features::Features;
use crate::proto::event_store::client::server_features::server_features_server::ServerFeaturesServer;
use crate::proto::event_store::client::streams::streams_server::StreamsServer;
use crate::store::Store;
use crate::streams::Node;

/// A KurrentDB test server listening on 127.0.0.1.
#[derive(Debug)]
pub struct TestServer {
    port: u16,
    shutdown: CancellationToken,
    serving: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestServer {
    /// Starts on 127.0.0.1:`port` (0 picks one); keeps its log in `data` when given, else in memory.
    pub async fn start(port: u16, data: Option<PathBuf>) -> io::Result<Self> {
        let store = Store::open(data.as_deref())?;
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        let port = listener.local_addr()?.port();
        // Nagle's algorithm would hold back the small frames of a live subscription.
        let incoming =
            TcpIncoming::from_listener(listener, true, None).map_err(io::Error::other)?;

        let shutdown = CancellationToken::new();
        let node = Node::new(store, shutdown.clone());
        let serving = tokio::spawn(
            Server::builder()
                .add_service(StreamsServer::new(node))
                .add_service(ServerFeaturesServer::new(Features))
                .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned()),
        );
        Ok(TestServer {
            port,
            shutdown,
            serving,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connection string the eventstore client takes: "esdb://127.0.0.1:PORT?tls=false".
    pub fn url(&self) -> String {
        format!("esdb://127.0.0.1:{}?tls=false", self.port)
    }

    /// Stops listening and drops every connection and subscription; the data stays in `data`.
    pub async fn stop(mut self) {
        // Subscriptions and batch appends end with `Unavailable` on this
        // signal, which lets the graceful shutdown finish: it waits for them.
        self.shutdown.cancel();
        match (&mut self.serving).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("kurrentdb-test-server: serving failed: {e}"),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
}

impl Drop for TestServer {
    /// A server dropped without `stop` (a test that panicked) stops too, only
    /// without waiting for it.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
