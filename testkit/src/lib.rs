//! Test support for the integration tests of the shop and the risk sidecar: a TCP proxy
//! that makes a real dependency (PostgreSQL, Redis, the sidecar) fail, polling, and
//! faithful local fakes of the outside services we do not run (the sandbox payment
//! gateway, also a binary for `make run`), and a Redis Cluster of the test's own. Only
//! ever a dev-dependency of the services.

pub mod deploy;
pub mod gateway;
pub mod logs;
pub mod monitoring;
pub mod redis_cluster;

pub use redis_cluster::RedisCluster;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy in front of a dependency that a test can cut (every connection dropped,
/// new ones refused), restore, or slow down: the dependency failing for real.
pub struct ChaosProxy {
    /// `127.0.0.1:<port>`: connect here instead of the upstream.
    pub address: String,
    cut: watch::Sender<bool>,
    delay_ms: Arc<AtomicU64>,
}

impl ChaosProxy {
    /// Proxies to `upstream` (`host:port`). Runs on a thread and runtime of its own, like
    /// a separate process: actix's `run()` can block the test's thread while its workers
    /// connect through the proxy.
    pub async fn start(upstream: &str) -> ChaosProxy {
        let upstream = upstream.to_owned();
        let (cut, cut_rx) = watch::channel(false);
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = Arc::clone(&delay_ms);
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
                let _ = address_tx.send(listener.local_addr().expect("addr").to_string());
                loop {
                    let Ok((inbound, _)) = listener.accept().await else {
                        return;
                    };
                    if *cut_rx.borrow() {
                        drop(inbound);
                        continue;
                    }
                    let Ok(outbound) = TcpStream::connect(&upstream).await else {
                        continue;
                    };
                    tokio::spawn(pipe(inbound, outbound, cut_rx.clone(), Arc::clone(&delay)));
                }
            });
        });
        let address = address_rx.recv().expect("proxy started");
        ChaosProxy { address, cut, delay_ms }
    }

    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }

    pub fn restore(&self) {
        let _ = self.cut.send(false);
    }

    /// Holds every chunk coming back from the upstream this long.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::Relaxed);
    }
}

async fn pipe(inbound: TcpStream, outbound: TcpStream, mut cut: watch::Receiver<bool>, delay: Arc<AtomicU64>) {
    let (mut ir, mut iw) = inbound.into_split();
    let (mut or, mut ow) = outbound.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = ir.read(&mut buf).await {
            if ow.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = or.read(&mut buf).await {
            let d = delay.load(Ordering::Relaxed);
            if d > 0 {
                tokio::time::sleep(Duration::from_millis(d)).await;
            }
            if iw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cut.wait_for(|c| *c) => {}
    }
}

/// Polls `check` every 50 ms until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
