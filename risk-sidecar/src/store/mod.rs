//! Velocity counters and stored decisions: Redis in production, the same semantics
//! in memory when no Redis is configured (and for replaying histories offline).

mod args;
mod journal;
mod labels;
mod memory;
mod nodes;
mod redis;
pub mod state;

use std::time::Duration;

pub use labels::{LabelStats, LabelUpdate, TransactionEntities};
pub use memory::MemoryStore;
pub use redis::RedisStore;

use crate::settings::RedisSettings;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// The count windows, shortest first: 1 minute, 1 hour, 24 hours, 7 days, 30 days.
pub const WINDOWS_MS: [i64; 5] = [60_000, 3_600_000, DAY_MS, 7 * DAY_MS, 30 * DAY_MS];
/// Keys outlive the longest window by a day, so a quiet entity still expires.
pub const KEY_TTL_MS: i64 = 31 * DAY_MS;
/// A reservation outlives any decision's making by far; if its decision is never
/// stored (the write lost), a retry after this is decided anew (and counted once: the
/// entities' rings know the transaction).
pub const RESERVATION_TTL_MS: i64 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("velocity store timed out")]
    Timeout,
    #[error("not connected to redis")]
    Disconnected,
    #[error("failed to communicate with redis")]
    Redis(#[from] fred::error::Error),
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
    /// Another request for the same transaction is still deciding it.
    #[error("the decision for this transaction is still being made")]
    Pending,
}

impl StoreError {
    /// The `error_kind` metric label.
    pub fn as_label(&self) -> &'static str {
        match self {
            StoreError::Timeout => "timeout",
            StoreError::Disconnected => "disconnected",
            StoreError::Redis(_) => "redis",
            StoreError::Protocol(_) => "protocol",
            StoreError::Pending => "pending",
        }
    }
}

/// The kinds of entity whose activity is counted. An e-mail address (keyed by its
/// hash) has label counters only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    Card,
    Customer,
    Ip,
    Device,
    Email,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Card => "card",
            EntityKind::Customer => "cus",
            EntityKind::Ip => "ip",
            EntityKind::Device => "dev",
            EntityKind::Email => "em",
        }
    }
    /// Amount sums are kept for cards and customers only.
    fn wants_sums(self) -> bool {
        matches!(self, EntityKind::Card | EntityKind::Customer)
    }
    /// Events, sums and links; an e-mail address has none.
    fn counts_events(self) -> bool {
        self != EntityKind::Email
    }
    /// Distinct linked members (customers of a card, cards of a customer or device).
    fn keeps_links(self) -> bool {
        matches!(self, EntityKind::Card | EntityKind::Customer | EntityKind::Device)
    }
    /// The share of labelled transactions that were fraud: devices and IPs.
    fn wants_share(self) -> bool {
        matches!(self, EntityKind::Ip | EntityKind::Device)
    }
    /// Declines are counted for all but the e-mail address.
    fn wants_declines(self) -> bool {
        self != EntityKind::Email
    }
}

/// One transaction as the counters see it.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub transaction_id: &'a str,
    pub at_ms: i64,
    /// Reference-currency minor units; `None` when the currency has no rate.
    pub amount_ref_minor: Option<i64>,
    pub card: Option<&'a str>,
    pub customer: &'a str,
    pub ip: Option<&'a str>,
    pub device: Option<&'a str>,
    /// The e-mail address's key (its hash), for its label counters.
    pub email: Option<&'a str>,
    /// Read the label and decline counters too (`features.label_counters`).
    pub labels: bool,
    /// Reserve the transaction id with this record (`stored::pending`) before counting:
    /// a request that finds a record there is a retry, counted nothing and answered
    /// from it. `None`: count without reserving (retries are then known by the ring).
    pub reservation: Option<&'a str>,
    /// When the decision's budget runs out: the store's own timeout is cut to it, so a
    /// decision sets one timer, not one for its budget and one for the batch (tokio wakes
    /// its IO driver each time a timer is set earlier than its next wake). `None`: the
    /// store's command timeout alone.
    pub deadline: Option<tokio::time::Instant>,
}

impl<'a> Observation<'a> {
    /// Each entity with the member its linked set records: a card links the customers
    /// using it; a customer and a device link the cards they use. The e-mail address
    /// only when its label counters are read.
    fn entities(&self) -> impl Iterator<Item = (EntityKind, &'a str, Option<&'a str>)> {
        [
            self.card.map(|c| (EntityKind::Card, c, Some(self.customer))),
            Some((EntityKind::Customer, self.customer, self.card)),
            self.ip.map(|ip| (EntityKind::Ip, ip, None)),
            self.device.map(|d| (EntityKind::Device, d, self.card)),
            self.email.filter(|_| self.labels).map(|e| (EntityKind::Email, e, None)),
        ]
        .into_iter()
        .flatten()
    }
}

/// What the counters say about one entity, the current transaction included.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EntityStats {
    pub counts: [u32; 5],
    /// Amount sums over 24h, 7d, 30d (reference minor units).
    pub amount_sums: [i64; 3],
    /// Events with a known amount over 24h, 7d, 30d: the denominators of the means.
    pub amount_n: [u32; 3],
    pub first_seen_ms: i64,
    /// Distinct linked cards or customers over 24h.
    pub linked_24h: u32,
    /// This transaction id had been counted before (a retry).
    pub already_counted: bool,
    /// Known fraud and declines; `None` when label counters are not read.
    pub labels: Option<LabelStats>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VelocitySnapshot {
    pub card: Option<EntityStats>,
    pub customer: EntityStats,
    pub ip: Option<EntityStats>,
    pub device: Option<EntityStats>,
    /// The e-mail address's label counters (its other counters are not kept).
    pub email: Option<LabelStats>,
}

impl VelocitySnapshot {
    fn set(&mut self, kind: EntityKind, stats: EntityStats) {
        match kind {
            EntityKind::Card => self.card = Some(stats),
            EntityKind::Customer => self.customer = stats,
            EntityKind::Ip => self.ip = Some(stats),
            EntityKind::Device => self.device = Some(stats),
            EntityKind::Email => self.email = stats.labels,
        }
    }
}

/// The answer to one observation: the counters, and the record already stored for
/// this transaction id (a decision, or a reservation still deciding) if it is a retry.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub snapshot: VelocitySnapshot,
    pub stored_decision: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    pub max_events: u32,
    pub max_linked: u32,
    pub decision_ttl: Duration,
}

impl From<&RedisSettings> for StoreLimits {
    fn from(s: &RedisSettings) -> Self {
        StoreLimits {
            max_events: s.max_events_per_key,
            max_linked: s.max_linked_per_key,
            decision_ttl: Duration::from_secs(s.decision_ttl_secs),
        }
    }
}

/// How the store is doing, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreState {
    InMemory,
    Connected,
    Disconnected,
}

impl StoreState {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreState::InMemory => "in_memory",
            StoreState::Connected => "connected",
            StoreState::Disconnected => "unavailable",
        }
    }
}

/// The store in use. An enum, not a trait object: two fixed implementations, no boxing
/// of futures on the hot path. A Redis store is one per actix worker (its connection
/// tasks run on that worker's thread); the memory store is one per process, shared.
pub enum VelocityStore {
    Redis(RedisStore),
    Memory(std::sync::Arc<MemoryStore>),
}

/// Builds each worker's store.
#[derive(Clone)]
pub enum StoreFactory {
    Redis { url: String, settings: RedisSettings },
    Memory(std::sync::Arc<MemoryStore>),
}

impl StoreFactory {
    pub async fn make(&self) -> Result<VelocityStore, StoreError> {
        match self {
            StoreFactory::Redis { url, settings } => {
                Ok(VelocityStore::Redis(RedisStore::connect(url, settings).await?))
            }
            StoreFactory::Memory(m) => Ok(VelocityStore::Memory(std::sync::Arc::clone(m))),
        }
    }
}

// === impl VelocityStore ===

impl VelocityStore {
    /// Counts the transaction (once per id) and reads every counter, in one round trip.
    pub async fn observe(&self, o: &Observation<'_>) -> Result<Observed, StoreError> {
        match self {
            VelocityStore::Redis(s) => s.observe(o).await,
            VelocityStore::Memory(s) => Ok(s.observe(o)),
        }
    }

    /// Replaces this request's reservation with its decision, without waiting for Redis
    /// to answer (a failure is counted in metrics; a retry then finds the reservation
    /// until it expires).
    pub fn finish_decision(&self, transaction_id: &str, record: String) {
        match self {
            VelocityStore::Redis(s) => s.finish_decision(transaction_id, record),
            VelocityStore::Memory(s) => s.finish_decision(transaction_id, record),
        }
    }

    /// Stores a decision unless one is stored already; returns the one that was there.
    pub async fn store_decision(&self, transaction_id: &str, json: &str) -> Result<Option<String>, StoreError> {
        match self {
            VelocityStore::Redis(s) => s.store_decision(transaction_id, json).await,
            VelocityStore::Memory(s) => Ok(s.store_decision(transaction_id, json)),
        }
    }

    pub async fn get_decision(&self, transaction_id: &str) -> Result<Option<String>, StoreError> {
        match self {
            VelocityStore::Redis(s) => s.get_decision(transaction_id).await,
            VelocityStore::Memory(s) => Ok(s.get_decision(transaction_id)),
        }
    }

    /// Sets a transaction's label in its entities' label counters (absolute, so
    /// applying it again changes nothing, and a superseding label moves them back).
    pub async fn apply_label(&self, update: &LabelUpdate<'_>) -> Result<(), StoreError> {
        match self {
            VelocityStore::Redis(s) => s.apply_label(update).await,
            VelocityStore::Memory(s) => {
                s.apply_label(update);
                Ok(())
            }
        }
    }

    /// Counts a declined payment for its card, customer, IP and device, at `at_ms`.
    pub async fn record_decline(
        &self,
        entities: &TransactionEntities<'_>,
        transaction_id: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        match self {
            VelocityStore::Redis(s) => s.record_decline(entities, transaction_id, at_ms).await,
            VelocityStore::Memory(s) => {
                s.record_decline(entities, transaction_id, at_ms);
                Ok(())
            }
        }
    }

    pub fn state(&self) -> StoreState {
        match self {
            VelocityStore::Redis(s) => s.state(),
            VelocityStore::Memory(_) => StoreState::InMemory,
        }
    }
}

#[cfg(test)]
mod tests;
