//! What is known after decisions, as counters beside the velocity ones: per entity, the
//! transactions labelled fraud (`fr`), the labelled ones of either kind (`lb`, devices
//! and IPs: the denominator of the fraud share), and the declined payments (`dc`).
//! Sorted sets scored by transaction time (declines: by the decline's time), written
//! when a label or an outcome arrives (off the hot path, `labels.lua`), which also
//! rebuilds the entity's view: each set's newest scores, the last section of the
//! entity's counters (`state.rs`), so a decision reads it with the same GET. A count is
//! over the view, so it reads at most its slots (`VIEW_SLOTS`: at least that many when
//! it is full).

use shared::Label;

use super::{DAY_MS, EntityKind};

/// Members this far behind the newest one added can no longer fall in the window of
/// any decision that sees it (30 days, with a day's margin), and are removed. Relative
/// to the data, not the wall clock, so a history replayed over HTTP ages as offline.
pub const LABEL_HORIZON_MS: i64 = 31 * DAY_MS;
/// Declines are counted over 24 hours at most.
pub const DECLINE_HORIZON_MS: i64 = 2 * DAY_MS;

/// The view's slots per set (fraud, labelled, declines), newest first.
pub const VIEW_SLOTS: [usize; 3] = [8, 8, 16];
/// The view's bytes: an i64 per slot.
pub const VIEW_LEN: usize = 8 * (VIEW_SLOTS[0] + VIEW_SLOTS[1] + VIEW_SLOTS[2]);

/// Label stats from each set's newest scores (at most `VIEW_SLOTS` of each, as the
/// view holds them), for a decision at `ts`: windows (ts - window, +inf).
pub(super) fn stats_from_newest(newest: [&[i64]; 3], kind: EntityKind, ts: i64) -> LabelStats {
    let [_, h1, h24, d7, d30] = super::WINDOWS_MS.map(|w| ts - w);
    let after = |set: &[i64], bound: i64| set.iter().filter(|t| **t != 0 && **t > bound).count() as u32;
    let [fraud, labelled, declines] = newest;
    LabelStats {
        fraud: [after(fraud, d7), after(fraud, d30)],
        labelled_30d: if kind.wants_share() { after(labelled, d30) } else { 0 },
        declines: if kind.wants_declines() {
            [after(declines, h1), after(declines, h24)]
        } else {
            [0, 0]
        },
    }
}

/// Reads the view as labels.lua writes it; an empty or malformed one is no labels.
pub(super) fn read_view(view: &[u8], kind: EntityKind, ts: i64) -> LabelStats {
    let total: usize = VIEW_SLOTS.iter().sum();
    let scores: Vec<i64> = if view.len() == VIEW_LEN {
        view.chunks_exact(8)
            .map(|c| i64::from_be_bytes(c.try_into().expect("8 bytes")))
            .collect()
    } else {
        vec![0; total]
    };
    let (fraud, rest) = scores.split_at(VIEW_SLOTS[0]);
    let (labelled, declines) = rest.split_at(VIEW_SLOTS[1]);
    stats_from_newest([fraud, labelled, declines], kind, ts)
}

/// Known fraud and declines of one entity, as a decision sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelStats {
    /// Earlier transactions known to be fraud, over 7 and 30 days of transaction time.
    pub fraud: [u32; 2],
    /// Labelled transactions, fraud or legitimate, over 30 days (devices and IPs).
    pub labelled_30d: u32,
    /// Declined payments over 1 hour and 24 hours.
    pub declines: [u32; 2],
}

/// The counted entities of one transaction, as its log row or its request names them.
#[derive(Debug, Clone, Copy)]
pub struct TransactionEntities<'a> {
    pub card: Option<&'a str>,
    pub customer: &'a str,
    pub ip: Option<&'a str>,
    pub device: Option<&'a str>,
    /// The address's key: its hash, as in the decision log.
    pub email: Option<&'a str>,
}

impl<'a> TransactionEntities<'a> {
    pub(super) fn iter(&self) -> impl Iterator<Item = (EntityKind, &'a str)> {
        [
            self.card.map(|c| (EntityKind::Card, c)),
            Some((EntityKind::Customer, self.customer)),
            self.ip.map(|ip| (EntityKind::Ip, ip)),
            self.device.map(|d| (EntityKind::Device, d)),
            self.email.map(|e| (EntityKind::Email, e)),
        ]
        .into_iter()
        .flatten()
    }
}

/// A transaction's label, as it now stands (the one of highest precedence).
#[derive(Debug, Clone, Copy)]
pub struct LabelUpdate<'a> {
    pub transaction_id: &'a str,
    /// The transaction's time: windows are over transaction time.
    pub occurred_at_ms: i64,
    pub entities: TransactionEntities<'a>,
    pub label: Label,
}

/// One change to one sorted set: add the member at a score, or remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SetChange {
    Add { score: i64 },
    Remove,
}

/// Which set of an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum LabelSet {
    Fraud,
    Labelled,
    Declines,
}

impl LabelSet {
    /// The set's place in the view and in labels.lua's KEYS.
    pub(super) fn index(self) -> usize {
        match self {
            LabelSet::Fraud => 0,
            LabelSet::Labelled => 1,
            LabelSet::Declines => 2,
        }
    }
}

/// The set changes a label makes: fraud joins the fraud set, legitimate leaves it
/// (a superseded fraud label moves the counters back); both count as labelled.
pub(super) fn label_changes<'a>(u: &LabelUpdate<'a>) -> Vec<(EntityKind, &'a str, LabelSet, SetChange)> {
    let add = SetChange::Add {
        score: u.occurred_at_ms,
    };
    let fraud = match u.label {
        Label::Fraud => add,
        Label::Legitimate => SetChange::Remove,
    };
    let mut changes = Vec::new();
    for (kind, id) in u.entities.iter() {
        changes.push((kind, id, LabelSet::Fraud, fraud));
        if kind.wants_share() {
            changes.push((kind, id, LabelSet::Labelled, add));
        }
    }
    changes
}

/// The set changes a decline makes: it joins the decline set of each entity that
/// keeps one.
pub(super) fn decline_changes<'a>(
    entities: &TransactionEntities<'a>,
    at_ms: i64,
) -> Vec<(EntityKind, &'a str, LabelSet, SetChange)> {
    entities
        .iter()
        .filter(|(kind, _)| kind.wants_declines())
        .map(|(kind, id)| (kind, id, LabelSet::Declines, SetChange::Add { score: at_ms }))
        .collect()
}

/// The trim bound (members scored at or below it go) of a set after adding a member
/// at `score`.
pub(super) fn horizon(set: LabelSet, score: i64) -> i64 {
    match set {
        LabelSet::Fraud | LabelSet::Labelled => score - LABEL_HORIZON_MS,
        LabelSet::Declines => score - DECLINE_HORIZON_MS,
    }
}
