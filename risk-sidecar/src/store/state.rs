//! One entity's velocity counters as one fixed-size byte string, so a decision reads
//! and writes each entity with one `GET` and one `SET` whatever its history: the
//! layout below, written by `velocity.lua` in Redis and by [`record`] in memory (the
//! store suite checks the two produce the same bytes), read by [`read`] for both.
//!
//! Little-endian, sections in this order (`*` only for kinds that keep them):
//!
//! | section | slots | slot |
//! |---|---|---|
//! | header | 1 | first seen, i64 ms (0: none); 8 reserved bytes |
//! | ring times | `RING` | i64 ms, newest first (0: empty) |
//! | ring ids | `RING` | u32 CRC-32 of the transaction id, beside its time |
//! | tier 0, 1, 2 | `TIERS[t].slots` | i32 bucket number, u32 events |
//! | links* | `links` | u32 CRC-32 of the linked member, i64 last seen ms |
//! | sums* (tier 1, 2) | as the tier | i64 amount sum, u32 events with an amount |
//! | label view | `labels::VIEW_SLOTS` | i64 ms per slot, written by labels.lua only |
//!
//! An e-mail address keeps the label view alone.
//!
//! Counts over a window are exact while the ring reaches back past the window's start
//! (an entity with at most `RING` events in it: almost every shopper, card and
//! device); otherwise they come from the window's tier of buckets, which covers the
//! event's bucket and the ones before it up to the window's length (so 1h from
//! 5-minute buckets covers 55 to 60 minutes), and never less than the ring holds.
//! 1m has no tier: beyond the ring it reads `RING` (at least that many). Amount sums
//! are always bucketed: 24h by hours, 7d and 30d by days (UTC). A bucket slot holds
//! one bucket number at a time: a later bucket takes it over, an earlier event whose
//! slot holds a later bucket is too old for that tier and is left out of it.

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

const HEADER: usize = 16;
const TIER_SLOT: usize = 8;
const LINK_SLOT: usize = 12;
const SUM_SLOT: usize = 12;

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
    const fn tier(&self, t: usize) -> usize {
        let mut at = self.ring_ids() + 4 * RING;
        let mut i = 0;
        while i < t {
            at += TIERS[i].slots * TIER_SLOT;
            i += 1;
        }
        at
    }
    fn links_at(&self) -> usize {
        self.tier(TIERS.len())
    }
    fn sums_at(&self, t: usize) -> usize {
        let mut at = self.links_at() + self.links * LINK_SLOT;
        for tier in &TIERS[1..t] {
            at += tier.slots * SUM_SLOT;
        }
        at
    }
    /// Where the label view starts: after the counters.
    pub fn labels_at(&self) -> usize {
        match (self.counts, self.sums) {
            (false, _) => 0,
            (true, true) => self.sums_at(TIERS.len()),
            (true, false) => self.links_at() + self.links * LINK_SLOT,
        }
    }
    pub fn len(&self) -> usize {
        self.labels_at() + VIEW_LEN
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

/// A transaction id's or a member's 4-byte hash, as stored and as sent to the script.
pub fn hash(s: &str) -> u32 {
    crc32fast::hash(s.as_bytes())
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Whether the ring already holds this transaction (a retry): it is not counted again.
pub fn seen(state: &[u8], tx_hash: u32) -> bool {
    let at = HEADER + 8 * RING;
    (0..RING).any(|i| u32_at(state, at + 4 * i) == tx_hash && i64_at(state, HEADER + 8 * i) != 0)
}

/// Records one event (the caller has checked [`seen`]). The same steps as velocity.lua.
pub fn record(state: &mut [u8], layout: &Layout, e: &Event) {
    let ts = e.at_ms;
    let first = i64_at(state, 0);
    if first == 0 || ts < first {
        state[0..8].copy_from_slice(&ts.to_le_bytes());
    }
    // Ring: the first slot holding an older time (or empty) takes the event; the
    // rest move down one and the oldest falls off.
    if let Some(pos) = (0..RING).find(|&i| i64_at(state, HEADER + 8 * i) < ts) {
        let times = HEADER;
        let ids = layout.ring_ids();
        state.copy_within(times + 8 * pos..times + 8 * (RING - 1), times + 8 * (pos + 1));
        state.copy_within(ids + 4 * pos..ids + 4 * (RING - 1), ids + 4 * (pos + 1));
        state[times + 8 * pos..times + 8 * pos + 8].copy_from_slice(&ts.to_le_bytes());
        state[ids + 4 * pos..ids + 4 * pos + 4].copy_from_slice(&e.tx_hash.to_le_bytes());
    }
    for (t, tier) in TIERS.iter().enumerate() {
        let bucket = ts.div_euclid(tier.width_ms) as i32;
        let slot = bucket.rem_euclid(tier.slots as i32) as usize;
        let at = layout.tier(t) + slot * TIER_SLOT;
        let held = i32_at(state, at);
        let reset = held < bucket || u32_at(state, at + 4) == 0;
        if held > bucket && !reset {
            continue;
        }
        let count = if reset {
            1
        } else {
            u32_at(state, at + 4).saturating_add(1)
        };
        state[at..at + 4].copy_from_slice(&bucket.to_le_bytes());
        state[at + 4..at + 8].copy_from_slice(&count.to_le_bytes());
        if layout.sums && t > 0 {
            let s = layout.sums_at(t) + slot * SUM_SLOT;
            let (mut sum, mut n) = if reset {
                (0, 0)
            } else {
                (i64_at(state, s), u32_at(state, s + 8))
            };
            if let Some(a) = e.amount {
                sum += a;
                n += 1;
            }
            state[s..s + 8].copy_from_slice(&sum.to_le_bytes());
            state[s + 8..s + 12].copy_from_slice(&n.to_le_bytes());
        }
    }
    if let Some(h) = e.link_hash.filter(|_| layout.links > 0) {
        let base = layout.links_at();
        let slots = (0..layout.links).map(|i| {
            (
                i,
                u32_at(state, base + LINK_SLOT * i),
                i64_at(state, base + LINK_SLOT * i + 4),
            )
        });
        // The member's own slot, else an empty one, else the least recently seen.
        let mut pick: Option<(usize, i64)> = None;
        for (i, member, last) in slots {
            if member == h && last != 0 {
                pick = Some((i, last.max(ts)));
                break;
            }
            if pick.is_none_or(|(p, _)| last < i64_at(state, base + LINK_SLOT * p + 4)) {
                pick = Some((i, ts));
            }
        }
        if let Some((i, last)) = pick {
            let at = base + LINK_SLOT * i;
            state[at..at + 4].copy_from_slice(&h.to_le_bytes());
            state[at + 4..at + 12].copy_from_slice(&last.to_le_bytes());
        }
    }
}

/// The counters as a decision at `ts` sees them. `state` has the layout's length
/// (anything else reads as a new entity).
pub fn read(state: &[u8], layout: &Layout, ts: i64) -> EntityStats {
    let mut stats = EntityStats::default();
    if state.len() != layout.len() {
        return EntityStats {
            first_seen_ms: ts,
            ..stats
        };
    }
    let ring: Vec<i64> = (0..RING)
        .map(|i| i64_at(state, HEADER + 8 * i))
        .filter(|t| *t != 0)
        .collect();
    for (w, window) in WINDOWS_MS.iter().enumerate() {
        let bound = ts - window;
        let in_ring = ring.iter().filter(|t| **t > bound).count() as u32;
        let covered = ring.len() < RING || ring[RING - 1] <= bound;
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
    let first = i64_at(state, 0);
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
        assert_eq!(card.len(), 16 + 12 * RING + 8 * 66 + 12 * 16 + 12 * 54 + VIEW_LEN);
        assert_eq!(Layout::of(EntityKind::Ip, 16).len(), 16 + 12 * RING + 8 * 66 + VIEW_LEN);
        assert_eq!(Layout::of(EntityKind::Email, 16).len(), VIEW_LEN);
    }

    #[test]
    fn the_ring_counts_exactly_then_the_buckets_take_over() {
        let layout = Layout::of(EntityKind::Ip, 0);
        let mut state = vec![0; layout.len()];
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
    fn an_event_older_than_a_slots_bucket_is_left_out_of_that_tier() {
        let layout = Layout::of(EntityKind::Card, 4);
        let mut state = vec![0; layout.len()];
        record(&mut state, &layout, &event(T0, "a"));
        // 12 five-minute buckets later the slot belongs to a later bucket.
        record(&mut state, &layout, &event(T0 + 60 * 60_000, "b"));
        record(&mut state, &layout, &event(T0 + 1, "late"));
        let stats = read(&state, &layout, T0 + 60 * 60_000);
        assert_eq!(stats.counts[2], 3, "24h: the ring has all three");
        assert_eq!(stats.amount_n[0], 3, "the hour tier still holds T0's hour");
    }
}
