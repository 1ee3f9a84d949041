//! The velocity counters in process memory, with the semantics of `velocity.lua`.
//!
//! Used when no Redis is configured (one sidecar, nothing else installed) and when a
//! history is replayed offline. Bounded like Redis: events and linked members per
//! entity, entities expire a TTL after their last event (in event time, so a replayed
//! history ages as live traffic did), and stored decisions are capped in number.

use std::collections::{BTreeSet, HashMap, VecDeque};

use parking_lot::Mutex;

use super::{
    DAY_MS, EntityKind, EntityStats, KEY_TTL_MS, Observation, Observed, StoreLimits, VelocitySnapshot, WINDOWS_MS,
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
    events: BTreeSet<(i64, String)>,
    times: HashMap<String, i64>,
    amounts: HashMap<String, i64>,
    first_seen_ms: Option<i64>,
    linked: HashMap<String, i64>,
    last_write_ms: i64,
}

// === impl MemoryStore ===

impl MemoryStore {
    pub fn new(limits: StoreLimits) -> MemoryStore {
        MemoryStore { inner: Mutex::new(Inner::default()), limits }
    }

    pub fn observe(&self, o: &Observation<'_>) -> Observed {
        let mut inner = self.inner.lock();
        inner.clock_ms = inner.clock_ms.max(o.at_ms);
        inner.observations += 1;
        if inner.observations.is_multiple_of(SWEEP_EVERY) {
            let horizon = inner.clock_ms - KEY_TTL_MS;
            inner.entities.retain(|_, e| e.last_write_ms >= horizon);
        }
        let mut snapshot = VelocitySnapshot::default();
        for (kind, id, linked) in o.entities() {
            let entity = inner.entities.entry((kind, id.to_owned())).or_default();
            let stats = entity.observe(o, linked, kind.wants_sums(), &self.limits);
            match kind {
                EntityKind::Card => snapshot.card = Some(stats),
                EntityKind::Customer => snapshot.customer = stats,
                EntityKind::Ip => snapshot.ip = Some(stats),
                EntityKind::Device => snapshot.device = Some(stats),
            }
        }
        Observed { snapshot, stored_decision: inner.decisions.get(o.transaction_id).cloned() }
    }

    pub fn store_decision(&self, transaction_id: &str, json: &str) -> Option<String> {
        let mut inner = self.inner.lock();
        if let Some(existing) = inner.decisions.get(transaction_id) {
            return Some(existing.clone());
        }
        if inner.decision_order.len() >= MAX_DECISIONS
            && let Some(oldest) = inner.decision_order.pop_front()
        {
            inner.decisions.remove(&oldest);
        }
        inner.decisions.insert(transaction_id.to_owned(), json.to_owned());
        inner.decision_order.push_back(transaction_id.to_owned());
        None
    }

    pub fn get_decision(&self, transaction_id: &str) -> Option<String> {
        self.inner.lock().decisions.get(transaction_id).cloned()
    }
}

// === impl Entity ===

impl Entity {
    fn observe(&mut self, o: &Observation<'_>, linked: Option<&str>, sums: bool, limits: &StoreLimits) -> EntityStats {
        let ts = o.at_ms;
        let already_counted = self.times.contains_key(o.transaction_id);
        if !already_counted {
            self.last_write_ms = self.last_write_ms.max(ts);
            let tx = o.transaction_id.to_owned();
            self.events.insert((ts, tx.clone()));
            self.times.insert(tx.clone(), ts);
            if let Some(a) = o.amount_ref_minor {
                self.amounts.insert(tx, a);
            }
            if self.first_seen_ms.is_none_or(|f| ts < f) {
                self.first_seen_ms = Some(ts);
            }
            // Events before ts - 30d go, then the oldest beyond the cap.
            let horizon = ts - WINDOWS_MS[4];
            while let Some(oldest) = self.events.first().filter(|(t, _)| *t < horizon).cloned() {
                self.drop_event(&oldest);
            }
            while self.events.len() > limits.max_events as usize {
                let Some(oldest) = self.events.first().cloned() else { break };
                self.drop_event(&oldest);
            }
            if let Some(member) = linked {
                let seen = self.linked.entry(member.to_owned()).or_insert(ts);
                *seen = (*seen).max(ts);
                self.linked.retain(|_, t| *t >= ts - DAY_MS);
                while self.linked.len() > limits.max_linked as usize {
                    let Some(oldest) = self.linked.iter().min_by_key(|(m, t)| (**t, (*m).clone())).map(|(m, _)| m.clone())
                    else {
                        break;
                    };
                    self.linked.remove(&oldest);
                }
            }
        }

        let mut stats = EntityStats { already_counted, ..EntityStats::default() };
        for (i, w) in WINDOWS_MS.iter().enumerate() {
            stats.counts[i] = self.events.iter().rev().take_while(|(t, _)| *t > ts - w).count() as u32;
        }
        if sums {
            for (t, tx) in self.events.iter().rev().take_while(|(t, _)| *t > ts - WINDOWS_MS[4]) {
                let Some(a) = self.amounts.get(tx) else { continue };
                for w in 2..5 {
                    if *t > ts - WINDOWS_MS[w] {
                        stats.amount_sums[w - 2] += a;
                        stats.amount_n[w - 2] += 1;
                    }
                }
            }
        }
        stats.first_seen_ms = self.first_seen_ms.unwrap_or(ts);
        stats.linked_24h = self.linked.values().filter(|t| **t > ts - DAY_MS).count() as u32;
        stats
    }

    fn drop_event(&mut self, event: &(i64, String)) {
        self.events.remove(event);
        self.times.remove(&event.1);
        self.amounts.remove(&event.1);
    }
}
