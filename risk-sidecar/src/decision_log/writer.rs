//! The writer: one task on a thread of its own, the only reader of the queue and the
//! only user of the spool. Batches go to PostgreSQL while it answers; otherwise, and
//! while anything is still spooled (so order is kept), to the spool, which is replayed
//! in order once PostgreSQL is back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use time::Date;
use tokio::sync::{mpsc, watch};

use super::entry::{LogEntry, SpooledHead, now_ms};
use super::spool::{Record, Spool};
use super::{LogState, LogStatus, schema};
use crate::settings::DecisionLogSettings;

const IDLE_TICK: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Replay gives the queue a turn this often.
const REPLAY_SLICE: Duration = Duration::from_millis(200);
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);
/// Migrations and partition upkeep: longer than a batch, never unbounded.
pub(super) const PREPARE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("no connection to PostgreSQL")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("PostgreSQL refused the batch")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("failed to prepare the risk schema")]
    Schema(#[from] schema::SchemaError),
    #[error("PostgreSQL did not answer within decision_log.write_timeout_ms")]
    Timeout,
}

impl WriteError {
    /// PostgreSQL refused the data itself (a data exception or an integrity violation,
    /// SQLSTATE classes 22 and 23): sending the same row again cannot help, so it must
    /// not hold up the rows behind it.
    fn is_permanent(&self) -> bool {
        let WriteError::Postgres(e) = self else { return false };
        e.code()
            .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23"))
    }
}

pub(super) struct Writer {
    pub rx: mpsc::Receiver<LogEntry>,
    pub shutdown: watch::Receiver<bool>,
    pub pool: Pool,
    pub spool: Spool,
    pub settings: DecisionLogSettings,
    pub email_key: Vec<u8>,
    pub status: Arc<LogStatus>,
    pub prepared: bool,
    pub db_up: bool,
    pub retry_at: Instant,
    pub backoff: Duration,
    pub known_days: HashSet<Date>,
    pub maintained_at: Option<Instant>,
    pub spool_full: bool,
}

impl Writer {
    pub async fn run(mut self) {
        loop {
            let (batch, stop) = self.next_batch().await;
            if !batch.is_empty() {
                self.write(&batch).await;
            }
            if stop {
                break;
            }
            self.upkeep().await;
        }
        self.drain().await;
    }

    /// Waits for a first entry, then for more until the batch is full or
    /// `flush_interval` has passed since the first.
    async fn next_batch(&mut self) -> (Vec<LogEntry>, bool) {
        let mut batch = Vec::new();
        tokio::select! {
            biased;
            _ = self.shutdown.wait_for(|stop| *stop) => return (batch, true),
            got = self.rx.recv() => match got {
                Some(entry) => batch.push(entry),
                None => return (batch, true),
            },
            _ = tokio::time::sleep(IDLE_TICK) => return (batch, false),
        }
        let deadline = tokio::time::sleep(self.settings.flush_interval());
        tokio::pin!(deadline);
        while batch.len() < self.settings.batch_max {
            tokio::select! {
                biased;
                _ = self.shutdown.wait_for(|stop| *stop) => return (batch, true),
                got = self.rx.recv() => match got {
                    Some(entry) => batch.push(entry),
                    None => return (batch, true),
                },
                _ = &mut deadline => break,
            }
        }
        (batch, false)
    }

    async fn write(&mut self, batch: &[LogEntry]) {
        let payloads: Vec<Vec<u8>> = batch.iter().map(|e| e.to_json(&self.email_key)).collect();
        if self.spool.is_empty() && self.db_up {
            let rows: Vec<(i64, &[u8])> = batch
                .iter()
                .zip(&payloads)
                .map(|(e, p)| (e.decided_at_ms, p.as_slice()))
                .collect();
            let start = Instant::now();
            match self.insert_isolating(&rows).await {
                Ok(rejected) => {
                    crate::metrics::log_written("direct", rows.len() - rejected, start.elapsed());
                    return;
                }
                Err(e) => self.mark_down(&e),
            }
        }
        let records: Vec<Record<'_>> = batch
            .iter()
            .zip(&payloads)
            .map(|(e, p)| Record {
                transaction_id: &e.response.transaction_id,
                decided_at_ms: e.decided_at_ms,
                payload: p,
            })
            .collect();
        self.spool_records(&records);
    }

    fn spool_records(&mut self, records: &[Record<'_>]) {
        let written = match self.spool.append(records) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, path = %self.spool.path().display(), "Decision log: spool write failed; rows dropped.");
                crate::metrics::log_dropped("spool_error", records.len());
                return;
            }
        };
        crate::metrics::log_spooled(written);
        let dropped = records.len() - written;
        if dropped > 0 {
            crate::metrics::log_dropped("spool_full", dropped);
            if !self.spool_full {
                tracing::error!(
                    max_bytes = self.settings.spool_max_bytes,
                    path = %self.spool.path().display(),
                    "Decision log: spool full; new decisions are answered but not logged until PostgreSQL is back."
                );
            }
            self.spool_full = true;
        }
        self.status.set_spool_bytes(self.spool.len_bytes());
    }

    async fn insert(&mut self, rows: &[(i64, &[u8])]) -> Result<(), WriteError> {
        if !self.prepared {
            let connection = self.pool.get().await?;
            tokio::time::timeout(PREPARE_TIMEOUT, prepare(connection, &self.settings))
                .await
                .unwrap_or(Err(schema::SchemaError::Timeout))?;
            self.prepared = true;
        }
        let timeout = self.settings.write_timeout();
        let work = async {
            let client = self.pool.get().await?;
            let days: Vec<Date> = rows
                .iter()
                .map(|(ms, _)| schema::day_of(*ms))
                .filter(|d| !self.known_days.contains(d))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            if !days.is_empty() {
                schema::ensure_partitions(&**client, days.iter().copied()).await?;
                self.known_days.extend(days);
            }
            let payloads: Vec<&[u8]> = rows.iter().map(|(_, p)| *p).collect();
            super::rows::insert_rows(&**client, &payloads).await?;
            Ok(())
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or(Err(WriteError::Timeout))
    }

    /// Inserts the batch; if PostgreSQL refuses its data, row by row, setting aside (counted
    /// and logged by transaction id) each row it refuses. Returns how many were set aside;
    /// any other failure is PostgreSQL being unavailable.
    async fn insert_isolating(&mut self, rows: &[(i64, &[u8])]) -> Result<usize, WriteError> {
        match self.insert(rows).await {
            Err(e) if e.is_permanent() => {}
            other => return other.map(|()| 0),
        }
        let mut rejected = 0;
        for row in rows {
            match self.insert(std::slice::from_ref(row)).await {
                Ok(()) => {}
                Err(e) if e.is_permanent() => {
                    rejected += 1;
                    let head = serde_json::from_slice::<SpooledHead>(row.1).ok();
                    tracing::error!(
                        error = %format!("{e}: {}", source_text(&e)),
                        transaction_id = head.as_ref().map_or("?", |h| h.transaction_id.as_str()),
                        "Decision log: PostgreSQL refused a row; it is set aside, the rest are written."
                    );
                    crate::metrics::log_dropped("rejected", 1);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(rejected)
    }

    fn mark_down(&mut self, e: &WriteError) {
        crate::metrics::log_write_failure();
        if self.db_up {
            tracing::warn!(error = %format!("{e}: {}", source_text(e)), "Decision log: PostgreSQL unavailable; spooling to disk.");
            self.status.set_state(LogState::Spooling);
        }
        self.db_up = false;
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn mark_up(&mut self) {
        if !self.db_up {
            tracing::info!("Decision log: PostgreSQL is back; writing directly.");
        }
        self.db_up = true;
        self.spool_full = false;
        self.backoff = FIRST_BACKOFF;
        self.status.set_state(LogState::Writing);
    }

    async fn upkeep(&mut self) {
        let now = Instant::now();
        if now >= self.retry_at {
            if !self.spool.is_empty() {
                self.replay().await;
            } else if !self.db_up {
                match self.insert(&[]).await {
                    Ok(()) => self.mark_up(),
                    Err(e) => self.mark_down(&e),
                }
            }
        }
        if self.db_up && self.maintained_at.is_none_or(|at| at.elapsed() >= MAINTENANCE_EVERY) {
            self.maintain().await;
        }
        self.status.set_queue_depth(self.rx.len());
        self.status.set_spool_bytes(self.spool.len_bytes());
        let age_s = self
            .spool
            .oldest_ms()
            .map_or(0.0, |ms| (now_ms() - ms).max(0) as f64 / 1000.0);
        crate::metrics::log_oldest_unwritten(age_s);
    }

    /// Spooled rows into PostgreSQL in order, a slice of time at a time.
    async fn replay(&mut self) {
        let started = Instant::now();
        while !self.spool.is_empty() && started.elapsed() < REPLAY_SLICE {
            let chunk = match self.spool.peek(self.settings.batch_max) {
                Ok(chunk) if !chunk.is_empty() => chunk,
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, "Decision log: spool unreadable; replay paused.");
                    self.retry_at = Instant::now() + MAX_BACKOFF;
                    return;
                }
            };
            let rows: Vec<(i64, &[u8])> = chunk
                .iter()
                .map(|(payload, _)| {
                    let at =
                        serde_json::from_slice::<SpooledHead>(payload).map_or_else(|_| now_ms(), |h| h.decided_at_ms);
                    (at, payload.as_slice())
                })
                .collect();
            let end = chunk.last().map_or(0, |(_, next)| *next);
            let start = Instant::now();
            match self.insert_isolating(&rows).await {
                Ok(rejected) => {
                    crate::metrics::log_written("replayed", rows.len() - rejected, start.elapsed());
                    if let Err(e) = self.spool.advance(end) {
                        tracing::error!(error = %e, "Decision log: failed to mark spooled rows replayed.");
                    }
                }
                Err(e) => {
                    self.mark_down(&e);
                    return;
                }
            }
        }
        if self.spool.is_empty() {
            tracing::info!("Decision log: spool replayed.");
            self.mark_up();
        }
    }

    async fn maintain(&mut self) {
        let work = async {
            let client = self.pool.get().await?;
            let dropped = schema::maintain_partitions(
                &**client,
                now_ms(),
                self.settings.partitions_ahead_days,
                self.settings.retention_days,
            )
            .await?;
            Ok::<_, WriteError>(dropped)
        };
        let result = tokio::time::timeout(PREPARE_TIMEOUT, work)
            .await
            .unwrap_or(Err(WriteError::Timeout));
        match result {
            Ok(_) => self.maintained_at = Some(Instant::now()),
            Err(e) => tracing::warn!(error = %e, "Decision log: partition upkeep failed; retrying later."),
        }
    }

    /// SIGTERM: everything still queued goes to PostgreSQL or the spool.
    async fn drain(&mut self) {
        self.rx.close();
        let mut batch = Vec::new();
        while let Ok(entry) = self.rx.try_recv() {
            batch.push(entry);
            if batch.len() == self.settings.batch_max {
                self.write(&batch).await;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            self.write(&batch).await;
        }
        self.status.set_queue_depth(0);
        tracing::info!(spooled_bytes = self.spool.len_bytes(), "Decision log: drained.");
    }
}

/// Migrations and partitions: before the first write, and whenever the writer starts.
/// The connection is taken out of the pool: if this is cut short (a timeout), closing it
/// releases the migration lock, which a pooled connection would keep holding.
pub(super) async fn prepare(
    connection: deadpool_postgres::Object,
    settings: &DecisionLogSettings,
) -> Result<(), schema::SchemaError> {
    let mut client = deadpool_postgres::Object::take(connection);
    let client: &mut tokio_postgres::Client = &mut client;
    schema::migrate(client).await?;
    schema::maintain_partitions(
        client,
        now_ms(),
        settings.partitions_ahead_days,
        settings.retention_days,
    )
    .await?;
    Ok(())
}

fn source_text(e: &dyn std::error::Error) -> String {
    e.source().map(|s| s.to_string()).unwrap_or_default()
}
