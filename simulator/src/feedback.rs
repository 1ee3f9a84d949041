//! What became known after each simulated payment, with realistic delays: the gateway's
//! outcomes within seconds (authorised and captured, or declined: most card-testing
//! attempts and a few honest ones); for a few payments a one-time-code challenge,
//! passed by the honest customer and failed by the fraudster, labelled at once; for
//! fraud that got through, a chargeback label 1–60 days later with its dispute opened
//! a few days before. Every other payment is known for what it is only once the
//! chargeback window has closed (`settled_days`), with no source: nobody sends that
//! label, and it comes too late for any 30-day counter, as it would live.
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
            record.labelled_at = Some(rfc3339(at + i64::from(p.settled_days) * DAY));
            continue;
        }
        if rng.gen_bool(p.challenge_share) {
            let (label_at, source, last) = if fraud {
                (at + 90 * SECOND, LabelSource::ChallengeFailed, OutcomeStatus::Voided)
            } else {
                (at + 60 * SECOND, LabelSource::ChallengePassed, OutcomeStatus::Captured)
            };
            record.outcomes = vec![
                outcome(OutcomeStatus::Authorised, None, at + SECOND),
                outcome(last, None, label_at + SECOND),
            ];
            record.labelled_at = Some(rfc3339(label_at));
            record.label_source = Some(source);
            continue;
        }
        record.outcomes = vec![
            outcome(OutcomeStatus::Authorised, None, at + SECOND),
            outcome(OutcomeStatus::Captured, None, at + 2 * SECOND),
        ];
        record.labelled_at = Some(rfc3339(at + i64::from(p.settled_days) * DAY));
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
