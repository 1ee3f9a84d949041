//! One entity's velocity counters as one fixed-size byte string, so a decision's Redis
//! work per entity does not grow with its history: the layout below, written by
//! [`record`] (the memory store's step; the Redis store folds its journal of events
//! with it, `journal.rs`) and read by [`read`] for both.
//!
//! Big-endian, sections in this order (`*` only for kinds that keep them):
//!
//! | section | slots | slot |
//! |---|---|---|
//! | header | 1 | first seen i64 ms (0: none), largest time evicted from the ring i64, events recorded u32, day of the last TTL refresh i32, layout version u32, link slots u32 |
//! | ring times | `RING` | i64 ms, in arrival order, slot = events recorded mod `RING` (0: empty) |
//! | ring ids | `RING` | u32 CRC-32 of the transaction id, beside its time |
//! | links* | `links` | u32 CRC-32 of the linked member, i64 last seen ms |
//! | tier 0, 1, 2 | `TIERS[t].slots` | i32 bucket number, u32 events |
//! | sums* (tier 1, 2) | as the tier | i64 amount sum, u32 events with an amount |
//! | label view | `labels::VIEW_SLOTS` | i64 ms per slot, written by labels.lua only |
//!
//! An e-mail address keeps the header and the label view alone.
//!
//! Counts over a window are exact while the ring holds every event after the window's
//! start: no event newer than the start has been evicted from it (an entity with at most
//! `RING` events in the window: almost every shopper, card and device). Otherwise they
//! come from the window's tier of buckets, which covers the event's bucket and the ones
//! before it up to the window's length (so 1h from 5-minute buckets covers 55 to 60
//! minutes), and never less than the ring holds. 1m has no tier: beyond the ring it
//! reads what the ring holds (at least `RING`). Amount sums are always bucketed: 24h by
//! hours, 7d and 30d by days (UTC). A bucket slot holds one bucket number at a time: a
//! later bucket takes it over, an earlier event whose slot holds a later bucket is too
//! old for that tier and is left out of it.

use super::labels::VIEW_LEN;
use super::{DAY_MS, EntityKind, EntityStats, HOUR_MS, WINDOWS_MS};

/// The newest events kept exactly per entity (with their ids, for retries).
pub const RING: usize = 20;

/// Buckets of one width, in a ring of slots (bucket number modulo the slots).
#[derive(Debug, Clone, Copy)]
pub struct Tier {
    pub width_ms: i64,
    pub slots: usize,
}

/// 5-minute buckets for 1h, hours for 24h, days for 7d and 30d.
pub const TIERS: [Tier; 3] = [
    Tier {
        width_ms: 5 * 60_000,
        slots: 12,
    },
    Tier {
        width_ms: HOUR_MS,
        slots: 24,
    },
    Tier {
        width_ms: DAY_MS,
        slots: 30,
    },
];

/// The tier each count window falls back to (`None`: 1m, ring only).
const WINDOW_TIER: [Option<usize>; 5] = [None, Some(0), Some(1), Some(2), Some(2)];
/// The tiers the amount sums over 24h, 7d and 30d come from.
const SUM_TIER: [usize; 3] = [1, 2, 2];

/// The layout's version, in the header: a string of another version reads as new.
pub const VERSION: u32 = 2;
const HEADER: usize = 32;
const TIER_SLOT: usize = 8;
const LINK_SLOT: usize = 12;
const SUM_SLOT: usize = 12;
/// Header fields.
const FIRST: usize = 0;
const EVICTED: usize = 8;
const RECORDED: usize = 16;
const TTL_DAY: usize = 20;
const VERSION_AT: usize = 24;
const LINKS_AT: usize = 28;

/// Where each section starts, for one kind of entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Counters kept at all (an e-mail address keeps only its label view).
    pub counts: bool,
    pub links: usize,
    pub sums: bool,
}

impl Layout {
    pub fn of(kind: EntityKind, link_slots: usize) -> Layout {
        Layout {
            counts: kind.counts_events(),
            links: if kind.keeps_links() { link_slots } else { 0 },
            sums: kind.wants_sums(),
        }
    }
    const fn ring_ids(&self) -> usize {
        HEADER + 8 * RING
    }
    pub const fn links_at(&self) -> usize {
        self.ring_ids() + 4 * RING
    }
    pub const fn tier(&self, t: usize) -> usize {
        let mut at = self.links_at() + self.links * LINK_SLOT;
        let mut i = 0;
        while i < t {
            at += TIERS[i].slots * TIER_SLOT;
            i += 1;
        }
        at
    }
    /// Header to the last tier: where the sums (or the label view) start.
    pub const fn read_len(&self) -> usize {
        self.tier(TIERS.len())
    }
    pub fn sums_at(&self, t: usize) -> usize {
        let mut at = self.read_len();
        for tier in &TIERS[1..t] {
            at += tier.slots * SUM_SLOT;
        }
        at
    }
    /// Where the label view starts: after the counters.
    pub fn labels_at(&self) -> usize {
        match (self.counts, self.sums) {
            (false, _) => HEADER,
            (true, true) => self.sums_at(TIERS.len()),
            (true, false) => self.read_len(),
        }
    }
    /// The string's length in bytes (never 0: there is always a header).
    pub fn size(&self) -> usize {
        self.labels_at() + VIEW_LEN
    }
    /// A string of this layout with nothing recorded.
    pub fn empty(&self) -> Vec<u8> {
        let mut state = vec![0; self.size()];
        state[VERSION_AT..VERSION_AT + 4].copy_from_slice(&VERSION.to_be_bytes());
        state[LINKS_AT..LINKS_AT + 4].copy_from_slice(&(self.links as u32).to_be_bytes());
        state
    }
    /// Whether `state` is a string of this layout.
    pub fn holds(&self, state: &[u8]) -> bool {
        state.len() == self.size()
            && u32_at(state, VERSION_AT) == VERSION
            && u32_at(state, LINKS_AT) as usize == self.links
    }
}

/// One event as the counters record it.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    pub at_ms: i64,
    pub tx_hash: u32,
    pub amount: Option<i64>,
    pub link_hash: Option<u32>,
}

/// The day number (UTC) an event refreshes its key's TTL on: velocity.lua sets the TTL
/// again only when this changes, which keeps `PEXPIRE` off most decisions.
pub fn ttl_day(at_ms: i64) -> i32 {
    at_ms.div_euclid(DAY_MS) as i32
}

/// A transaction id's or a member's 4-byte hash, as stored and journalled.
pub fn hash(s: &str) -> u32 {
    crc32fast::hash(s.as_bytes())
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Whether the ring already holds this transaction (a retry): it is not counted again.
pub fn seen(state: &[u8], tx_hash: u32) -> bool {
    if state.len() < HEADER + 12 * RING {
        return false;
    }
    let at = HEADER + 8 * RING;
    (0..RING).any(|i| u32_at(state, at + 4 * i) == tx_hash && i64_at(state, HEADER + 8 * i) != 0)
}

/// Records one event in a string of the layout (the caller knows it is not [`seen`]:
/// both stores check).
pub fn record(state: &mut [u8], layout: &Layout, e: &Event) {
    let ts = e.at_ms;
    let first = i64_at(state, FIRST);
    if first == 0 || ts < first {
        put_i64(state, FIRST, ts);
    }
    let recorded = u32_at(state, RECORDED);
    let slot = recorded as usize % RING;
    let evicted = i64_at(state, HEADER + 8 * slot);
    if evicted > i64_at(state, EVICTED) {
        put_i64(state, EVICTED, evicted);
    }
    put_u32(state, RECORDED, recorded.wrapping_add(1));
    put_i32(state, TTL_DAY, ttl_day(ts));
    put_i64(state, HEADER + 8 * slot, ts);
    put_u32(state, layout.ring_ids() + 4 * slot, e.tx_hash);
    if let Some(h) = e.link_hash.filter(|_| layout.links > 0) {
        let base = layout.links_at();
        // The member's own slot, else the first least recently seen (an empty one).
        let mut pick: Option<(usize, i64)> = None;
        let mut pick_last = 0;
        for i in 0..layout.links {
            let (member, last) = (
                u32_at(state, base + LINK_SLOT * i),
                i64_at(state, base + LINK_SLOT * i + 4),
            );
            if member == h && last != 0 {
                pick = Some((i, last.max(ts)));
                break;
            }
            if pick.is_none() || last < pick_last {
                pick = Some((i, ts));
                pick_last = last;
            }
        }
        if let Some((i, last)) = pick {
            put_u32(state, base + LINK_SLOT * i, h);
            put_i64(state, base + LINK_SLOT * i + 4, last);
        }
    }
    for (t, tier) in TIERS.iter().enumerate() {
        let bucket = ts.div_euclid(tier.width_ms) as i32;
        let slot = bucket.rem_euclid(tier.slots as i32) as usize;
        let at = layout.tier(t) + slot * TIER_SLOT;
        let (held, events) = (i32_at(state, at), u32_at(state, at + 4));
        let reset = held < bucket || events == 0;
        if !reset && held != bucket {
            continue;
        }
        put_i32(state, at, bucket);
        put_u32(state, at + 4, if reset { 1 } else { events.wrapping_add(1) });
        if layout.sums && t > 0 {
            let s = layout.sums_at(t) + slot * SUM_SLOT;
            let (mut sum, mut n) = if reset {
                (0, 0)
            } else {
                (i64_at(state, s), u32_at(state, s + 8))
            };
            if let Some(a) = e.amount {
                // Wrapping: a sum that overflows must not stop the counting.
                sum = sum.wrapping_add(a);
                n = n.wrapping_add(1);
            }
            put_i64(state, s, sum);
            put_u32(state, s + 8, n);
        }
    }
}

fn put_i64(b: &mut [u8], at: usize, v: i64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}
fn put_i32(b: &mut [u8], at: usize, v: i32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// The counters as a decision at `ts` sees them. A string not of the layout reads as a
/// new entity.
pub fn read(state: &[u8], layout: &Layout, ts: i64) -> EntityStats {
    let mut stats = EntityStats::default();
    if !layout.holds(state) {
        return EntityStats {
            first_seen_ms: ts,
            ..stats
        };
    }
    let evicted = i64_at(state, EVICTED);
    let ring = (0..RING).map(|i| i64_at(state, HEADER + 8 * i)).filter(|t| *t != 0);
    for (w, window) in WINDOWS_MS.iter().enumerate() {
        let bound = ts - window;
        let in_ring = ring.clone().filter(|t| *t > bound).count() as u32;
        // Exact while nothing after the window's start has left the ring.
        let covered = evicted <= bound;
        stats.counts[w] = match (covered, WINDOW_TIER[w]) {
            (true, _) | (false, None) => in_ring,
            (false, Some(t)) => in_ring.max(bucketed(state, layout, t, ts, *window).0),
        };
    }
    if layout.sums {
        for (i, t) in SUM_TIER.iter().enumerate() {
            let (_, sum, n) = bucketed(state, layout, *t, ts, WINDOWS_MS[i + 2]);
            stats.amount_sums[i] = sum;
            stats.amount_n[i] = n;
        }
    }
    let first = i64_at(state, FIRST);
    stats.first_seen_ms = if first == 0 { ts } else { first };
    let base = layout.links_at();
    stats.linked_24h = (0..layout.links)
        .filter(|i| i64_at(state, base + LINK_SLOT * i + 4) > ts - DAY_MS)
        .count() as u32;
    stats
}

/// Events, amount sum and events with an amount in the buckets of tier `t` that a
/// window of `window_ms` ending at `ts` covers: the event's bucket, the ones before it
/// up to the window's length, and any later ones.
fn bucketed(state: &[u8], layout: &Layout, t: usize, ts: i64, window_ms: i64) -> (u32, i64, u32) {
    let tier = TIERS[t];
    let oldest = (ts.div_euclid(tier.width_ms) - window_ms / tier.width_ms + 1) as i32;
    let (mut count, mut sum, mut n) = (0u32, 0i64, 0u32);
    for slot in 0..tier.slots {
        let at = layout.tier(t) + slot * TIER_SLOT;
        let events = u32_at(state, at + 4);
        if events == 0 || i32_at(state, at) < oldest {
            continue;
        }
        count = count.saturating_add(events);
        if layout.sums && t > 0 {
            let s = layout.sums_at(t) + slot * SUM_SLOT;
            sum += i64_at(state, s);
            n += u32_at(state, s + 8);
        }
    }
    (count, sum, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_000_000_000;

    fn event(at_ms: i64, tx: &str) -> Event {
        Event {
            at_ms,
            tx_hash: hash(tx),
            amount: Some(100),
            link_hash: None,
        }
    }

    #[test]
    fn the_layout_is_the_documented_size() {
        let card = Layout::of(EntityKind::Card, 16);
        assert_eq!(card.size(), 32 + 12 * RING + 12 * 16 + 8 * 66 + 12 * 54 + VIEW_LEN);
        assert_eq!(
            Layout::of(EntityKind::Ip, 16).size(),
            32 + 12 * RING + 8 * 66 + VIEW_LEN
        );
        assert_eq!(Layout::of(EntityKind::Email, 16).size(), 32 + VIEW_LEN);
    }

    #[test]
    fn the_ring_counts_exactly_then_the_buckets_take_over() {
        let layout = Layout::of(EntityKind::Ip, 0);
        let mut state = layout.empty();
        // 30 events a minute apart: the ring holds the newest 20.
        for i in 0..30 {
            record(&mut state, &layout, &event(T0 + i * 60_000, &format!("t{i}")));
        }
        let now = T0 + 29 * 60_000;
        let stats = read(&state, &layout, now);
        assert_eq!(stats.counts[0], 1, "1m: exact");
        // 1h: the ring holds 20 of the 30 in the hour, so the 5-minute buckets answer.
        assert_eq!(stats.counts[1], 30);
        assert!(
            seen(&state, hash("t29")) && !seen(&state, hash("t0")),
            "only the ring's ids"
        );
    }

    #[test]
    fn an_evicted_event_inside_the_window_sends_the_count_to_the_buckets() {
        let layout = Layout::of(EntityKind::Ip, 0);
        let mut state = layout.empty();
        // Arrival order is not time order: 19 new events, one from 10 days ago, then one
        // more that evicts the first (T0), still inside the hour.
        for i in 0..19 {
            record(&mut state, &layout, &event(T0 + i * 60_000, &format!("n{i}")));
        }
        record(&mut state, &layout, &event(T0 - 10 * DAY_MS, "old"));
        record(&mut state, &layout, &event(T0 + 20 * 60_000, "last"));
        let stats = read(&state, &layout, T0 + 20 * 60_000);
        assert_eq!(stats.counts[1], 20, "1h: T0's event left the ring but still counts");
        assert_eq!(stats.counts[4], 21, "30d: the old one too");
        assert!(!seen(&state, hash("n0")) && seen(&state, hash("old")));
    }

    #[test]
    fn an_event_older_than_a_slots_bucket_is_left_out_of_that_tier() {
        let layout = Layout::of(EntityKind::Card, 4);
        let mut state = layout.empty();
        record(&mut state, &layout, &event(T0, "a"));
        // 12 five-minute buckets later the slot belongs to a later bucket.
        record(&mut state, &layout, &event(T0 + 60 * 60_000, "b"));
        record(&mut state, &layout, &event(T0 + 1, "late"));
        let stats = read(&state, &layout, T0 + 60 * 60_000);
        assert_eq!(stats.counts[2], 3, "24h: the ring has all three");
        assert_eq!(stats.amount_n[0], 3, "the hour tier still holds T0's hour");
    }
}
