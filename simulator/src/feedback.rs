//! What became known after each simulated payment, with realistic delays: the gateway's
//! outcomes within seconds (authorised and captured, or declined: most card-testing
//! attempts and a few honest ones), and for fraud that got through, a chargeback label
//! 1–60 days later with its dispute opened a few days before. Fraud never charged back
//! (and every legitimate purchase) carries no `labelled_at`: training's replay gives it
//! the configured default delay.
//!
//! Drawn from a random stream of its own, so the traffic itself is the same as without
//! these annotations, byte for byte in every request.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shared::{HistoryOutcome, HistoryRecord, Label, LabelSource, OutcomeStatus};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::params::FeedbackParams;

const SECOND: i64 = 1000;
const DAY: i64 = 86_400_000;
/// Mixed into the seed: the annotations' stream, apart from the traffic's.
const STREAM: u64 = 0x6665_6564_6261_636b;

pub fn annotate(history: &mut [HistoryRecord], p: &FeedbackParams, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ STREAM);
    for record in history.iter_mut() {
        let Some(at) = record.request.occurred_at.as_deref().and_then(ms) else {
            continue;
        };
        let fraud = record.label == Some(Label::Fraud);
        let testing = record.scenario.as_deref() == Some("card_testing");
        let declined = if testing {
            rng.gen_bool(p.card_testing_decline_share)
        } else {
            rng.gen_bool(p.legit_decline_share)
        };
        let outcome = |status, code: Option<&str>, t: i64| HistoryOutcome {
            status,
            code: code.map(str::to_owned),
            occurred_at: rfc3339(t),
        };
        if declined {
            let code = if testing { "card_declined" } else { "insufficient_funds" };
            record.outcomes = vec![outcome(OutcomeStatus::Declined, Some(code), at + SECOND)];
            continue;
        }
        record.outcomes = vec![
            outcome(OutcomeStatus::Authorised, None, at + SECOND),
            outcome(OutcomeStatus::Captured, None, at + 2 * SECOND),
        ];
        if fraud && rng.gen_bool(p.chargeback_share) {
            let [lo, hi] = p.chargeback_days;
            let labelled = at + rng.gen_range(i64::from(lo) * DAY..=i64::from(hi) * DAY);
            let opened = (labelled - rng.gen_range(DAY..=5 * DAY)).max(at + 3 * SECOND);
            record
                .outcomes
                .push(outcome(OutcomeStatus::Disputed, Some("fraudulent"), opened));
            record.labelled_at = Some(rfc3339(labelled));
            record.label_source = Some(LabelSource::Chargeback);
        }
    }
}

fn ms(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}
