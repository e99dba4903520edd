#![forbid(unsafe_code)]
//! Runs the KurrentDB test server until SIGTERM or SIGINT, so that a whole
//! program can be pointed at it by hand.

use std::path::PathBuf;

use clap::Parser;
use kurrentdb_test_server::TestServer;
use tokio::signal::unix::{signal, SignalKind};

/// A KurrentDB (EventStoreDB) gRPC test server on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 2113)]
    port: u16,
    /// Keep the event log in this directory; without it, events live in memory only.
    #[arg(long)]
    data: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut terminate = signal(SignalKind::terminate())?;
    let server = TestServer::start(args.port, args.data).await?;
    println!("{}", server.url());

    tokio::select! {
        _ = terminate.recv() => {}
        result = tokio::signal::ctrl_c() => result?,
    }
    server.stop().await;
    Ok(())
}
