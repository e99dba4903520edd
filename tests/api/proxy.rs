//! A TCP proxy in front of moto that can cut connections: the SDK reaches moto through it,
//! and a test decides when AWS "goes away" mid-walk.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

/// A running proxy; connections pass until [`FaultProxy::cut_after`] runs out.
pub struct FaultProxy {
    pub url: String,
    // Connections still allowed; negative means unlimited.
    allowance: Arc<AtomicI64>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on a free port.
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let allowance = Arc::new(AtomicI64::new(-1));
        let gate = allowance.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let allowed = gate
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                        if n > 0 {
                            Some(n - 1)
                        } else {
                            None
                        }
                    })
                    .map_or_else(|n| n < 0, |_| true);
                if !allowed {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { url, allowance }
    }

    /// Lets `n` more connections through, then cuts every later one.
    pub fn cut_after(&self, n: i64) {
        self.allowance.store(n, Ordering::SeqCst);
    }

    /// Lets every connection through again.
    pub fn heal(&self) {
        self.allowance.store(-1, Ordering::SeqCst);
    }
}
