//! The decision log: every new decision into PostgreSQL (`risk.decisions`), off the
//! hot path and with nothing lost while the database is down.
//!
//! A decision hands its row to a bounded queue and goes on. A writer on a thread of its
//! own takes batches from the queue into PostgreSQL, or, while PostgreSQL is down or
//! slow, into the spool on local disk, and replays the spool in order once it is back.

pub mod entry;
pub mod export;
pub mod rows;
pub mod schema;
pub mod spool;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use secrecy::ExposeSecret;
use tokio::sync::{mpsc, oneshot, watch};

pub use self::entry::LogEntry;
use self::spool::{Spool, SpooledIds};
use crate::settings::DecisionLogSettings;

/// The writer's own connections: one writes, one is spare for upkeep.
const WRITER_POOL: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("decision_log.url is not a usable PostgreSQL URL")]
    Url(#[source] tokio_postgres::Error),
    #[error("failed to build the PostgreSQL pool")]
    Pool(#[source] servicekit::postgres::PoolError),
    #[error("failed to open the spool in {dir}")]
    Spool {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to apply the risk schema")]
    Schema(#[source] schema::SchemaError),
    #[error("failed to start the writer thread")]
    Thread(#[source] std::io::Error),
}

/// Where rows are going, for `/readyz` and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LogState {
    Writing = 0,
    Spooling = 1,
}

impl LogState {
    pub fn as_str(self) -> &'static str {
        match self {
            LogState::Writing => "writing",
            LogState::Spooling => "spooling",
        }
    }
}

/// Shared between the writer and readers of its state; also feeds the gauges.
#[derive(Default)]
pub struct LogStatus {
    state: AtomicU8,
    spool_bytes: AtomicU64,
    queue_depth: AtomicU64,
    /// Second of the last "queue full" line, so a flood logs once a second.
    full_logged_s: AtomicI64,
}

impl LogStatus {
    pub fn state(&self) -> LogState {
        if self.state.load(Ordering::Relaxed) == LogState::Spooling as u8 {
            LogState::Spooling
        } else {
            LogState::Writing
        }
    }
    fn set_state(&self, s: LogState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }
    pub fn spool_bytes(&self) -> u64 {
        self.spool_bytes.load(Ordering::Relaxed)
    }
    fn set_spool_bytes(&self, b: u64) {
        self.spool_bytes.store(b, Ordering::Relaxed);
        crate::metrics::log_spool_bytes(b);
    }
    pub fn queue_depth(&self) -> u64 {
        self.queue_depth.load(Ordering::Relaxed)
    }
    fn set_queue_depth(&self, d: usize) {
        self.queue_depth.store(d as u64, Ordering::Relaxed);
        crate::metrics::log_queue_depth(d);
    }
}

/// The handle decisions, feedback and shutdown use.
pub struct DecisionLog {
    tx: mpsc::Sender<LogEntry>,
    pub status: Arc<LogStatus>,
    /// Transaction ids whose decision waits in the spool.
    pub spooled: SpooledIds,
    /// For the feedback and outcome endpoints (the writer has its own).
    pub pool: Pool,
    shutdown: watch::Sender<bool>,
    done: parking_lot::Mutex<Option<oneshot::Receiver<()>>>,
}

impl DecisionLog {
    /// Opens the spool (a torn tail is cut off and reported), applies the migrations if
    /// PostgreSQL answers (if not, the writer does once it is back), and starts the writer.
    pub async fn start(settings: &DecisionLogSettings, url: &str) -> Result<DecisionLog, LogError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(LogError::Url)?;
        // UTC, as the partitions are; and DDL (partition upkeep) or an insert waiting
        // behind a lock gives up instead of stalling the writer or the endpoints.
        config
            .connect_timeout(settings.connect_timeout())
            .application_name("risk-sidecar")
            .options("-c timezone=UTC -c lock_timeout=5000");
        let pool = servicekit::postgres::pool(config.clone(), settings.pool_size, settings.connect_timeout())
            .map_err(LogError::Pool)?;
        let writer_pool =
            servicekit::postgres::pool(config, WRITER_POOL, settings.connect_timeout()).map_err(LogError::Pool)?;
        let spooled = SpooledIds::default();
        let (spool, recovered) = Spool::open(&settings.spool_dir, settings.spool_max_bytes, Arc::clone(&spooled))
            .map_err(|source| LogError::Spool {
                dir: settings.spool_dir.display().to_string(),
                source,
            })?;
        if recovered.torn_bytes > 0 {
            tracing::warn!(
                torn_bytes = recovered.torn_bytes,
                records = recovered.records,
                "Decision log: the spool ended in a torn record (a crash mid-write); it was cut off."
            );
        }
        if recovered.records > 0 {
            tracing::info!(
                records = recovered.records,
                "Decision log: spooled rows found; replaying them."
            );
        }
        let prepared = match pool.get().await {
            Ok(client) => {
                match tokio::time::timeout(writer::PREPARE_TIMEOUT, writer::prepare(client, settings)).await {
                    Ok(prepared) => {
                        prepared.map_err(LogError::Schema)?;
                        true
                    }
                    Err(_) => {
                        tracing::warn!("Decision log: migrations are waiting (another replica?); the writer retries.");
                        false
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Decision log: PostgreSQL unreachable at start-up; spooling until it answers.");
                false
            }
        };
        let status = Arc::new(LogStatus::default());
        status.set_state(if prepared {
            LogState::Writing
        } else {
            LogState::Spooling
        });
        status.set_spool_bytes(spool.len_bytes());
        let (tx, rx) = mpsc::channel(settings.queue_capacity);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (done_tx, done_rx) = oneshot::channel();
        let writer = writer::Writer {
            rx,
            shutdown: shutdown_rx,
            pool: writer_pool,
            spool,
            settings: settings.clone(),
            email_key: settings.email_hash_key.expose_secret().as_bytes().to_vec(),
            status: Arc::clone(&status),
            prepared,
            db_up: prepared,
            retry_at: Instant::now(),
            backoff: Duration::from_millis(250),
            known_days: Default::default(),
            maintained_at: prepared.then(Instant::now),
            spool_full: false,
        };
        std::thread::Builder::new()
            .name("decision-log".to_owned())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt.block_on(writer.run()),
                    Err(e) => tracing::error!(error = %e, "Decision log: writer runtime failed to start."),
                }
                let _ = done_tx.send(());
            })
            .map_err(LogError::Thread)?;
        Ok(DecisionLog {
            tx,
            status,
            spooled,
            pool,
            shutdown,
            done: parking_lot::Mutex::new(Some(done_rx)),
        })
    }

    /// Hands a new decision's row to the writer; never waits. A full queue (the disk
    /// stalls as well as the database) drops the row, counted and logged.
    pub fn record(&self, entry: LogEntry) {
        match self.tx.try_send(entry) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                crate::metrics::log_dropped("queue_full", 1);
                let now_s = entry::now_ms() / 1000;
                if self.status.full_logged_s.swap(now_s, Ordering::Relaxed) != now_s {
                    tracing::error!("Decision log: queue full; decisions go on but are not logged.");
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => crate::metrics::log_dropped("closed", 1),
        }
    }

    /// Queued rows to PostgreSQL or the spool, within `grace`.
    pub async fn close(&self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let done = self.done.lock().take();
        if let Some(done) = done
            && tokio::time::timeout(grace, done).await.is_err()
        {
            tracing::error!("Decision log: not drained within the grace period.");
        }
    }
}
