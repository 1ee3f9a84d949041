//! The velocity counters in process memory, with the semantics of `velocity.lua`.
//!
//! Used when no Redis is configured (one sidecar, nothing else installed) and when a
//! history is replayed offline. Bounded like Redis: events and linked members per
//! entity, entities expire a TTL after their last event (in event time, so a replayed
//! history ages as live traffic did), and stored decisions are capped in number.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use parking_lot::Mutex;

use super::labels::{LabelSet, SetChange, decline_changes, horizon, label_changes};
use super::{
    DAY_MS, EntityKind, EntityStats, HOUR_MS, KEY_TTL_MS, LabelStats, LabelUpdate, Observation, Observed, StoreLimits,
    TransactionEntities, VelocitySnapshot, WINDOWS_MS,
};

/// The sum windows in whole hours: 24h, 7d, 30d.
const SUM_HOURS: [i64; 3] = [24, 168, 720];

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
    events: TimedSet,
    /// Per hour (ms / 3_600_000): amount sum and the number of events with an amount.
    hourly: BTreeMap<i64, (i64, u32)>,
    first_seen_ms: Option<i64>,
    linked: HashMap<String, i64>,
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
                entity.observe(o, linked, kind.wants_sums(), &self.limits)
            } else {
                EntityStats::default()
            };
            stats.labels = o.labels.then(|| entity.label_stats(kind, o.at_ms));
            snapshot.set(kind, stats);
        }
        Observed {
            snapshot,
            stored_decision: inner.decisions.get(o.transaction_id).cloned(),
        }
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

// === impl Entity ===

impl Entity {
    fn observe(&mut self, o: &Observation<'_>, linked: Option<&str>, sums: bool, limits: &StoreLimits) -> EntityStats {
        let ts = o.at_ms;
        let hour = ts.div_euclid(HOUR_MS);
        let already_counted = self.events.contains(o.transaction_id);
        if !already_counted {
            self.last_write_ms = self.last_write_ms.max(ts);
            self.events.insert(o.transaction_id, ts);
            // The oldest beyond the cap go; counts look at their window only, so events
            // older than 30 days need no deleting of their own (as in velocity.lua).
            self.events.trim(i64::MIN, limits.max_events as usize);
            if let (true, Some(a)) = (sums, o.amount_ref_minor) {
                let slot = self.hourly.entry(hour).or_default();
                slot.0 += a;
                slot.1 += 1;
            }
            if self.first_seen_ms.is_none_or(|f| ts < f) {
                self.first_seen_ms = Some(ts);
            }
            if let Some(member) = linked {
                let seen = self.linked.entry(member.to_owned()).or_insert(ts);
                *seen = (*seen).max(ts);
                while self.linked.len() > limits.max_linked as usize {
                    let Some(oldest) = self
                        .linked
                        .iter()
                        .min_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)))
                        .map(|(m, _)| m.clone())
                    else {
                        break;
                    };
                    self.linked.remove(&oldest);
                }
            }
            self.hourly.retain(|h, _| *h > hour - SUM_HOURS[2]);
        }

        let mut stats = EntityStats {
            already_counted,
            ..EntityStats::default()
        };
        for (i, w) in WINDOWS_MS.iter().enumerate() {
            stats.counts[i] = self.events.count_after(ts - w);
        }
        for (h, (sum, n)) in self.hourly.range(hour - SUM_HOURS[2] + 1..) {
            for (i, hours) in SUM_HOURS.iter().enumerate() {
                if *h > hour - hours {
                    stats.amount_sums[i] += sum;
                    stats.amount_n[i] += n;
                }
            }
        }
        stats.first_seen_ms = self.first_seen_ms.unwrap_or(ts);
        stats.linked_24h = self.linked.values().filter(|t| **t > ts - DAY_MS).count() as u32;
        // At most 30 days of hours, the oldest going first, after this decision's sums
        // (as in velocity.lua).
        while !already_counted && self.hourly.len() > SUM_HOURS[2] as usize {
            self.hourly.pop_first();
        }
        stats
    }

    /// As velocity.lua reads fr, lb and dc: fraud over 7d and 30d, labelled over 30d,
    /// declines over 1h and 24h, each window (ts - window, +inf).
    fn label_stats(&self, kind: EntityKind, ts: i64) -> LabelStats {
        let [_, h1, h24, d7, d30] = WINDOWS_MS.map(|w| ts - w);
        LabelStats {
            fraud: [self.fraud.count_after(d7), self.fraud.count_after(d30)],
            labelled_30d: if kind.wants_share() {
                self.labelled.count_after(d30)
            } else {
                0
            },
            declines: if kind.wants_declines() {
                [self.declines.count_after(h1), self.declines.count_after(h24)]
            } else {
                [0, 0]
            },
        }
    }
}

// === impl TimedSet ===

impl TimedSet {
    fn contains(&self, member: &str) -> bool {
        self.times.contains_key(member)
    }

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

    /// Members after `bound` (ZCOUNT key (bound +inf).
    fn count_after(&self, bound: i64) -> u32 {
        self.by_time.iter().rev().take_while(|(t, _)| *t > bound).count() as u32
    }
}
