//! How the Redis store keeps an entity's counters: a block holding `state.rs`'s
//! fixed-size string, then a journal of the events appended since the block was last
//! written. A decision's script only appends its event's entry (an `APPEND` of
//! [`ENTRY_LEN`] bytes) and returns the string as it was; the sidecar folds the journal
//! into the block with `state::record`, the memory store's own step, and applies its own
//! event. Building the changed fields in Lua (a `BITFIELD` of up to 25 operations per
//! entity) was most of Redis's CPU per decision. Once a journal holds a multiple of
//! [`COMPACT_EVERY`] entries, the decision that made it so writes the folded block back
//! (`compact.lua`, not awaited), so what a decision reads stays bounded.
//!
//! | part | bytes |
//! |---|---|
//! | block (absent until the first compaction or label) | `c`, its length u32 (this frame included), generation u32, then the layout's string |
//! | entries, oldest first | `e`, time i64 ms, transaction hash u32, link hash u32, amount i64, flags u8 (1: amount known, 2: link), TTL day i32 |
//!
//! Big-endian. The generation changes whenever the block is replaced (a compaction, or a
//! label on an entity without a valid block); a compaction made from an older one is
//! refused, so nothing appended or labelled meanwhile is lost. An entry for a transaction
//! the ring already holds (a retry) is journalled like any other and skipped by the
//! fold, as the memory store skips it.

use std::borrow::Cow;

use super::state::{self, Event, Layout};

pub const BLOCK: u8 = b'c';
pub const ENTRY: u8 = b'e';
/// The block's frame: tag, length, generation.
pub const FRAME: usize = 9;
pub const ENTRY_LEN: usize = 30;
/// Entries a journal reaches before the decision that appended the last one folds it.
pub const COMPACT_EVERY: usize = 8;

const AMOUNT_KNOWN: u8 = 1;
const LINKED: u8 = 2;

/// One entity's string as the Redis store holds it.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    /// The block's generation (0: no block yet).
    pub generation: u32,
    /// The layout's string in the block, as stored (any layout).
    pub block: Option<&'a [u8]>,
    /// The entries, whole.
    pub entries: &'a [u8],
    /// Everything was in this format; if not, the string reads as a new entity's.
    pub valid: bool,
}

impl<'a> Stored<'a> {
    pub fn parse(raw: &'a [u8]) -> Stored<'a> {
        let mut stored = Stored {
            generation: 0,
            block: None,
            entries: &[],
            valid: false,
        };
        let mut rest = raw;
        if raw.first() == Some(&BLOCK) {
            if raw.len() < FRAME {
                return stored;
            }
            let len = u32_at(raw, 1) as usize;
            stored.generation = u32_at(raw, 5);
            if len < FRAME || len > raw.len() {
                return stored;
            }
            stored.block = Some(&raw[FRAME..len]);
            rest = &raw[len..];
        }
        if !rest.len().is_multiple_of(ENTRY_LEN) || rest.chunks_exact(ENTRY_LEN).any(|e| e[0] != ENTRY) {
            return stored;
        }
        stored.entries = rest;
        stored.valid = true;
        stored
    }

    pub fn entry_count(&self) -> usize {
        self.entries.len() / ENTRY_LEN
    }

    pub fn events(&self) -> impl Iterator<Item = Event> + 'a {
        self.entries.chunks_exact(ENTRY_LEN).map(decode)
    }

    /// The counters: the block's (an empty string when it is not of `layout`), with
    /// every journalled event not already in the ring applied in order. Borrowed when
    /// there is nothing to apply.
    pub fn fold(&self, layout: &Layout) -> Cow<'a, [u8]> {
        let mut counters = match self.block {
            Some(b) if self.valid && layout.holds(b) => Cow::Borrowed(b),
            _ => Cow::Owned(layout.empty()),
        };
        if self.valid {
            for e in self.events() {
                if !state::seen(&counters, e.tx_hash) {
                    state::record(counters.to_mut(), layout, &e);
                }
            }
        }
        counters
    }
}

/// An event as journalled.
pub fn entry(e: &Event) -> [u8; ENTRY_LEN] {
    let mut b = [0; ENTRY_LEN];
    b[0] = ENTRY;
    b[1..9].copy_from_slice(&e.at_ms.to_be_bytes());
    b[9..13].copy_from_slice(&e.tx_hash.to_be_bytes());
    b[13..17].copy_from_slice(&e.link_hash.unwrap_or(0).to_be_bytes());
    b[17..25].copy_from_slice(&e.amount.unwrap_or(0).to_be_bytes());
    b[25] = if e.amount.is_some() { AMOUNT_KNOWN } else { 0 } | if e.link_hash.is_some() { LINKED } else { 0 };
    b[26..30].copy_from_slice(&state::ttl_day(e.at_ms).to_be_bytes());
    b
}

fn decode(b: &[u8]) -> Event {
    let flags = b[25];
    Event {
        at_ms: i64::from_be_bytes(b[1..9].try_into().expect("8 bytes")),
        tx_hash: u32_at(b, 9),
        link_hash: (flags & LINKED != 0).then(|| u32_at(b, 13)),
        amount: (flags & AMOUNT_KNOWN != 0).then(|| i64::from_be_bytes(b[17..25].try_into().expect("8 bytes"))),
    }
}

/// Whether the decision that found `before` entries (and appended one) folds the journal.
pub fn compacts_after(before: usize) -> bool {
    (before + 1).is_multiple_of(COMPACT_EVERY)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EntityKind;

    const T0: i64 = 1_764_000_000_000;

    fn event(i: i64, amount: Option<i64>, link: Option<u32>) -> Event {
        Event {
            at_ms: T0 + i * 60_000,
            tx_hash: state::hash(&format!("t{i}")),
            amount,
            link_hash: link,
        }
    }

    #[test]
    fn an_entry_reads_back_as_the_event() {
        for e in [
            event(1, Some(-5), Some(0)),
            event(2, None, None),
            event(-3, Some(i64::MAX), Some(7)),
        ] {
            let raw = entry(&e);
            let stored = Stored::parse(&raw);
            assert!(stored.valid && stored.block.is_none());
            let back: Vec<Event> = stored.events().collect();
            assert_eq!(format!("{:?}", back), format!("{:?}", [e]));
        }
    }

    #[test]
    fn folding_the_journal_is_recording_each_event_once() {
        let layout = Layout::of(EntityKind::Card, 4);
        let events: Vec<Event> = (0..30).map(|i| event(i % 25, Some(i), Some(i as u32 % 6))).collect();
        let mut memory = layout.empty();
        let mut raw = Vec::new();
        for e in &events {
            if !state::seen(&memory, e.tx_hash) {
                state::record(&mut memory, &layout, e);
            }
            raw.extend_from_slice(&entry(e));
        }
        assert_eq!(
            Stored::parse(&raw).fold(&layout).as_ref(),
            memory.as_slice(),
            "retries skipped"
        );

        // Half of it folded into a block, the rest journalled after it.
        let (first, second) = raw.split_at(15 * ENTRY_LEN);
        let block = Stored::parse(first).fold(&layout);
        let mut framed = vec![BLOCK];
        framed.extend_from_slice(&((FRAME + block.len()) as u32).to_be_bytes());
        framed.extend_from_slice(&3u32.to_be_bytes());
        framed.extend_from_slice(&block);
        framed.extend_from_slice(second);
        let stored = Stored::parse(&framed);
        assert_eq!((stored.generation, stored.entry_count()), (3, 15));
        assert_eq!(stored.fold(&layout).as_ref(), memory.as_slice());
    }

    #[test]
    fn a_string_of_another_format_reads_as_new() {
        let layout = Layout::of(EntityKind::Ip, 0);
        let mut torn = entry(&event(1, None, None)).to_vec();
        torn.push(ENTRY);
        let old_format = layout.empty();
        let short_block = [BLOCK, 0, 0, 0, 99, 0, 0, 0, 1];
        for raw in [&torn[..], &old_format[..], &short_block[..]] {
            let stored = Stored::parse(raw);
            assert!(!stored.valid);
            assert_eq!(stored.fold(&layout).as_ref(), layout.empty().as_slice());
        }
    }

    #[test]
    fn the_journal_is_folded_at_each_multiple() {
        let at: Vec<usize> = (0..40).filter(|n| compacts_after(*n)).collect();
        assert_eq!(at, [7, 15, 23, 31, 39]);
    }
}
