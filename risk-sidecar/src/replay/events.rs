//! What became known after each replayed transaction, waiting for its time: its label
//! (at `labelled_at`, or after the default delay) and its declines. Played into the
//! counters before the first later decision, as `POST /v1/feedback` and the outcome
//! endpoint would have updated them live.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use shared::{HistoryRecord, Label, OutcomeStatus};

use crate::decision::input::DecisionInput;
use crate::store::{DAY_MS, LabelUpdate, MemoryStore, TransactionEntities};

/// A label this long after its transaction can fall in no later decision's 30-day
/// window (windows are over transaction time), so it is not kept waiting.
const LABEL_REACH_MS: i64 = 30 * DAY_MS;

/// The default delay of a label without `labelled_at`.
pub const DEFAULT_LABEL_DELAY_MS: i64 = 7 * DAY_MS;

#[derive(Default)]
pub struct Pending {
    heap: BinaryHeap<Reverse<Event>>,
    seq: u64,
}

struct Event {
    at_ms: i64,
    /// Ties in time keep the history's order.
    seq: u64,
    transaction_id: String,
    entities: Entities,
    kind: EventKind,
}

enum EventKind {
    Label { label: Label, occurred_at_ms: i64 },
    Decline,
}

// Ordered by time, then by the history's order: `seq` is unique.
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at_ms, self.seq).cmp(&(other.at_ms, other.seq))
    }
}

/// The entities of a transaction, owned while its events wait.
struct Entities {
    card: Option<String>,
    customer: String,
    ip: Option<String>,
    device: Option<String>,
    email: Option<String>,
}

impl Entities {
    fn of(e: &TransactionEntities<'_>) -> Entities {
        Entities {
            card: e.card.map(str::to_owned),
            customer: e.customer.to_owned(),
            ip: e.ip.map(str::to_owned),
            device: e.device.map(str::to_owned),
            email: e.email.map(str::to_owned),
        }
    }

    fn borrow(&self) -> TransactionEntities<'_> {
        TransactionEntities {
            card: self.card.as_deref(),
            customer: &self.customer,
            ip: self.ip.as_deref(),
            device: self.device.as_deref(),
            email: self.email.as_deref(),
        }
    }
}

/// A record's time field, which has already passed the history's parsing.
pub type ParseTime = fn(&str) -> Option<i64>;

// === impl Pending ===

impl Pending {
    /// The next event before `now_ms`, oldest first.
    pub fn next_before(&mut self, now_ms: i64) -> Option<Due> {
        if self.heap.peek().is_some_and(|Reverse(e)| e.at_ms < now_ms) {
            self.heap.pop().map(|Reverse(event)| Due(event))
        } else {
            None
        }
    }

    /// Plays every event before `now_ms` into a memory store, oldest first.
    pub fn play_until(&mut self, store: &MemoryStore, now_ms: i64) {
        while let Some(due) = self.next_before(now_ms) {
            match due.label() {
                Some(update) => store.apply_label(&update),
                None => store.record_decline(&due.0.entities.borrow(), &due.0.transaction_id, due.0.at_ms),
            }
        }
    }

    /// Queues what the record says became known after it. Times that do not parse
    /// are refused by the caller first.
    pub fn schedule(
        &mut self,
        record: &HistoryRecord,
        input: &DecisionInput,
        entities: &TransactionEntities<'_>,
        labelled_at_ms: Option<i64>,
        decline_times_ms: &[i64],
        label_delay_ms: i64,
    ) {
        let at = input.occurred_at_ms;
        if let Some(label) = record.label {
            let known = labelled_at_ms.unwrap_or(at.saturating_add(label_delay_ms));
            if known < at.saturating_add(LABEL_REACH_MS) {
                self.push(
                    known.max(at),
                    input,
                    entities,
                    EventKind::Label {
                        label,
                        occurred_at_ms: at,
                    },
                );
            }
        }
        for &declined in decline_times_ms {
            self.push(declined.max(at), input, entities, EventKind::Decline);
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    fn push(&mut self, at_ms: i64, input: &DecisionInput, entities: &TransactionEntities<'_>, kind: EventKind) {
        self.seq += 1;
        self.heap.push(Reverse(Event {
            at_ms,
            seq: self.seq,
            transaction_id: input.transaction_id.clone(),
            entities: Entities::of(entities),
            kind,
        }));
    }
}

/// An event whose time has come.
pub struct Due(Event);

impl Due {
    /// The label update, or `None` for a decline.
    pub fn label(&self) -> Option<LabelUpdate<'_>> {
        match self.0.kind {
            EventKind::Label { label, occurred_at_ms } => Some(LabelUpdate {
                transaction_id: &self.0.transaction_id,
                occurred_at_ms,
                entities: self.0.entities.borrow(),
                label,
            }),
            EventKind::Decline => None,
        }
    }

    /// Applies it to any store (Redis when rebuilding the counters).
    pub async fn apply(&self, store: &crate::store::VelocityStore) -> Result<(), crate::store::StoreError> {
        match self.label() {
            Some(update) => store.apply_label(&update).await,
            None => {
                store
                    .record_decline(&self.0.entities.borrow(), &self.0.transaction_id, self.0.at_ms)
                    .await
            }
        }
    }
}

/// The times of a record's declines.
pub fn decline_times(record: &HistoryRecord, parse: ParseTime) -> Result<Vec<i64>, String> {
    record
        .outcomes
        .iter()
        .filter(|o| o.status == OutcomeStatus::Declined)
        .map(|o| {
            parse(&o.occurred_at).ok_or_else(|| format!("outcome occurred_at {:?} is not RFC 3339", o.occurred_at))
        })
        .collect()
}
