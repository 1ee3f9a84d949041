//! The velocity counters in process memory, with the semantics of the Redis store:
//! the same counter bytes (`state`) that a Redis entity's journal folds to, the same
//! label views.
//!
//! Used when no Redis is configured (one sidecar, nothing else installed) and when a
//! history is replayed offline. Bounded like Redis: fixed-size counters per entity,
//! entities expire a TTL after their last event (in event time, so a replayed history
//! ages as live traffic did), and stored decisions are capped in number.

use std::collections::{BTreeSet, HashMap, VecDeque};

use parking_lot::Mutex;

use super::labels::{LabelSet, SetChange, VIEW_SLOTS, decline_changes, horizon, label_changes, stats_from_newest};
use super::state::{self, Layout};
use super::{
    EntityKind, EntityStats, KEY_TTL_MS, LabelStats, LabelUpdate, Observation, Observed, StoreLimits,
    TransactionEntities, VelocitySnapshot,
};

/// Stored decisions kept at most; the oldest go first.
const MAX_DECISIONS: usize = 200_000;
/// Expired entities are swept every this many observations.
const SWEEP_EVERY: u64 = 4096;

pub struct MemoryStore {
    inner: Mutex<Inner>,
    limits: StoreLimits,
}

#[derive(Default)]
struct Inner {
    entities: HashMap<(EntityKind, String), Entity>,
    decisions: HashMap<String, String>,
    decision_order: VecDeque<String>,
    /// The latest event time seen: the clock entities expire by.
    clock_ms: i64,
    observations: u64,
}

#[derive(Default)]
struct Entity {
    /// The counters, byte for byte as Redis holds them (empty until the first event).
    counters: Vec<u8>,
    fraud: TimedSet,
    labelled: TimedSet,
    declines: TimedSet,
    last_write_ms: i64,
}

/// A sorted set of members by time, as Redis keeps one: one time per member.
#[derive(Default)]
struct TimedSet {
    by_time: BTreeSet<(i64, String)>,
    times: HashMap<String, i64>,
}

// === impl MemoryStore ===

impl MemoryStore {
    pub fn new(limits: StoreLimits) -> MemoryStore {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            limits,
        }
    }

    pub fn observe(&self, o: &Observation<'_>) -> Observed {
        let mut inner = self.inner.lock();
        if let Some(record) = o.reservation {
            if let Some(existing) = inner.decisions.get(o.transaction_id) {
                // A retry: answered from the record, nothing counted (as velocity.lua).
                return Observed {
                    stored_decision: Some(existing.clone()),
                    ..Observed::default()
                };
            }
            inner.insert_decision(o.transaction_id, record);
        }
        inner.clock_ms = inner.clock_ms.max(o.at_ms);
        inner.observations += 1;
        if inner.observations.is_multiple_of(SWEEP_EVERY) {
            let horizon = inner.clock_ms - KEY_TTL_MS;
            inner.entities.retain(|_, e| e.last_write_ms >= horizon);
        }
        let mut snapshot = VelocitySnapshot::default();
        for (kind, id, linked) in o.entities() {
            let entity = inner.entities.entry((kind, id.to_owned())).or_default();
            let mut stats = if kind.counts_events() {
                entity.observe(o, kind, linked, &self.limits)
            } else {
                EntityStats::default()
            };
            stats.labels = o.labels.then(|| entity.label_stats(kind, o.at_ms));
            snapshot.set(kind, stats);
        }
        Observed {
            snapshot,
            stored_decision: None,
        }
    }

    pub fn store_decision(&self, transaction_id: &str, json: &str) -> Option<String> {
        let mut inner = self.inner.lock();
        if let Some(existing) = inner.decisions.get(transaction_id) {
            return Some(existing.clone());
        }
        inner.insert_decision(transaction_id, json);
        None
    }

    /// Replaces the reservation (or stores the decision when there was none).
    pub fn finish_decision(&self, transaction_id: &str, record: String) {
        let mut inner = self.inner.lock();
        match inner.decisions.get_mut(transaction_id) {
            Some(slot) => *slot = record,
            None => inner.insert_decision(transaction_id, &record),
        }
    }

    /// An entity's counters as stored (tests compare them with Redis's).
    #[cfg(test)]
    pub fn raw_counters(&self, kind: EntityKind, id: &str) -> Option<Vec<u8>> {
        let inner = self.inner.lock();
        inner
            .entities
            .get(&(kind, id.to_owned()))
            .map(|e| e.counters.clone())
            .filter(|c| !c.is_empty())
    }

    pub fn get_decision(&self, transaction_id: &str) -> Option<String> {
        self.inner.lock().decisions.get(transaction_id).cloned()
    }

    pub fn apply_label(&self, u: &LabelUpdate<'_>) {
        self.change_sets(u.transaction_id, &label_changes(u));
    }

    pub fn record_decline(&self, entities: &TransactionEntities<'_>, transaction_id: &str, at_ms: i64) {
        let changes = decline_changes(entities, at_ms);
        self.change_sets(transaction_id, &changes);
    }

    fn change_sets(&self, member: &str, changes: &[(EntityKind, &str, LabelSet, SetChange)]) {
        let mut inner = self.inner.lock();
        let cap = self.limits.max_events as usize;
        for (kind, id, set, change) in changes {
            let entity = inner.entities.entry((*kind, (*id).to_owned())).or_default();
            let target = match set {
                LabelSet::Fraud => &mut entity.fraud,
                LabelSet::Labelled => &mut entity.labelled,
                LabelSet::Declines => &mut entity.declines,
            };
            match change {
                SetChange::Add { score } => {
                    target.insert(member, *score);
                    target.trim(horizon(*set, *score), cap);
                    entity.last_write_ms = entity.last_write_ms.max(*score);
                }
                SetChange::Remove => {
                    target.remove(member);
                    target.trim(i64::MIN, cap);
                }
            }
        }
    }
}

// === impl Inner ===

impl Inner {
    fn insert_decision(&mut self, transaction_id: &str, record: &str) {
        if self.decision_order.len() >= MAX_DECISIONS
            && let Some(oldest) = self.decision_order.pop_front()
        {
            self.decisions.remove(&oldest);
        }
        self.decisions.insert(transaction_id.to_owned(), record.to_owned());
        self.decision_order.push_back(transaction_id.to_owned());
    }
}

// === impl Entity ===

impl Entity {
    fn observe(
        &mut self,
        o: &Observation<'_>,
        kind: EntityKind,
        linked: Option<&str>,
        limits: &StoreLimits,
    ) -> EntityStats {
        let layout = Layout::of(kind, limits.max_linked as usize);
        if !layout.holds(&self.counters) {
            self.counters = layout.empty();
        }
        let tx_hash = state::hash(o.transaction_id);
        let already_counted = state::seen(&self.counters, tx_hash);
        if !already_counted {
            self.last_write_ms = self.last_write_ms.max(o.at_ms);
            let event = state::Event {
                at_ms: o.at_ms,
                tx_hash,
                amount: o.amount_ref_minor,
                link_hash: linked.map(state::hash),
            };
            state::record(&mut self.counters, &layout, &event);
        }
        EntityStats {
            already_counted,
            ..state::read(&self.counters, &layout, o.at_ms)
        }
    }

    /// As velocity.lua reads the label view: each set's newest `VIEW_SLOTS` scores.
    fn label_stats(&self, kind: EntityKind, ts: i64) -> LabelStats {
        let newest = |set: &TimedSet, slots: usize| -> Vec<i64> {
            set.by_time.iter().rev().take(slots).map(|(t, _)| *t).collect()
        };
        let fraud = newest(&self.fraud, VIEW_SLOTS[0]);
        let labelled = newest(&self.labelled, VIEW_SLOTS[1]);
        let declines = newest(&self.declines, VIEW_SLOTS[2]);
        stats_from_newest([&fraud, &labelled, &declines], kind, ts)
    }
}

// === impl TimedSet ===

impl TimedSet {
    /// Adds the member, or moves it to the new time (ZADD).
    fn insert(&mut self, member: &str, at: i64) {
        if let Some(old) = self.times.insert(member.to_owned(), at) {
            self.by_time.remove(&(old, member.to_owned()));
        }
        self.by_time.insert((at, member.to_owned()));
    }

    fn remove(&mut self, member: &str) {
        if let Some(old) = self.times.remove(member) {
            self.by_time.remove(&(old, member.to_owned()));
        }
    }

    /// Members at or before `bound` go, then the oldest beyond `cap` (as
    /// ZREMRANGEBYSCORE and ZREMRANGEBYRANK).
    fn trim(&mut self, bound: i64, cap: usize) {
        while let Some((at, member)) = self.by_time.first().cloned() {
            if at > bound && self.by_time.len() <= cap {
                break;
            }
            self.by_time.pop_first();
            self.times.remove(&member);
        }
    }
}
