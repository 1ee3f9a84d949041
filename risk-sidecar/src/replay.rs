//! Replaying a labelled history through the sidecar's own parsing, velocity counters
//! (the in-memory store, same semantics as Redis) and feature code: the training table
//! is what serving would have computed, transaction by transaction. Labels and
//! declines reach the counters at their own times (`events`), as feedback would have.

pub mod events;

use std::io::{BufRead, Write};
use std::sync::Arc;

use shared::{FEATURE_NAMES, HistoryRecord, Label};

use crate::decision::features::{FeatureContext, FeatureVector};
use crate::decision::input::{DecisionInput, InputError};
use crate::decision::screen::screen;
use crate::settings::Settings;
use crate::store::{MemoryStore, StoreLimits};

use self::events::{DEFAULT_LABEL_DELAY_MS, Pending, decline_times};

const REPLAY_NOW_MS: i64 = i64::MAX / 4;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("line {line}: not a history record: {problem}")]
    Record { line: usize, problem: String },
    #[error("line {line}: refused by the decision API's rules: {error}")]
    Input { line: usize, error: InputError },
    #[error("line {line}: occurred_at goes back in time; a history must be in time order")]
    OutOfOrder { line: usize },
    #[error("failed to read or write")]
    Io(#[from] std::io::Error),
    #[error("failed to write the table")]
    Csv(#[from] csv::Error),
}

/// One row of the training table.
#[derive(Debug, Clone)]
pub struct FeatureRow {
    pub transaction_id: String,
    pub occurred_at_ms: i64,
    pub label: Option<Label>,
    pub scenario: Option<String>,
    pub features: FeatureVector,
}

pub struct Replayer {
    store: Arc<MemoryStore>,
    features: FeatureContext,
    last_ms: i64,
    pending: Pending,
    label_delay_ms: i64,
    rows: u64,
}

impl Replayer {
    pub fn new(settings: &Settings) -> Replayer {
        Replayer {
            store: Arc::new(MemoryStore::new(StoreLimits::from(&settings.redis))),
            features: FeatureContext::new(&settings.currency.rates, &settings.currency.reference),
            last_ms: i64::MIN,
            pending: Pending::default(),
            label_delay_ms: DEFAULT_LABEL_DELAY_MS,
            rows: 0,
        }
    }

    /// When a label without `labelled_at` becomes known, after its transaction.
    pub fn with_label_delay(mut self, delay_ms: i64) -> Replayer {
        self.label_delay_ms = delay_ms;
        self
    }

    /// The features of one record, counting it first, as a live decision would.
    pub fn row(&mut self, record: &HistoryRecord, line: usize) -> Result<FeatureRow, ReplayError> {
        let input = replayed_input(record, line)?;
        if input.occurred_at_ms < self.last_ms {
            return Err(ReplayError::OutOfOrder { line });
        }
        self.last_ms = input.occurred_at_ms;
        let (labelled_at, declines) = known_after(record, line)?;
        // What became known before this decision, then the decision.
        self.pending.play_until(&self.store, input.occurred_at_ms);
        let email_key = self.features.email_key(&input);
        let observed = self
            .store
            .observe(&self.features.observation(&input, email_key.as_deref()));
        let features = self.features.compute(&input, Some(&observed.snapshot));
        let entities = self.features.entities(&input, email_key.as_deref());
        self.pending
            .schedule(record, &input, &entities, labelled_at, &declines, self.label_delay_ms);
        self.rows += 1;
        if self.rows.is_multiple_of(100_000) {
            eprintln!(
                "risk-replay: {} labels and declines waiting for their time",
                self.pending.len()
            );
        }
        Ok(FeatureRow {
            transaction_id: input.transaction_id.clone(),
            occurred_at_ms: input.occurred_at_ms,
            label: record.label,
            scenario: record.scenario.clone(),
            features,
        })
    }

    /// Each record of a history (JSON lines) with its features, in order; blank lines
    /// are skipped, a bad one is an error naming its line.
    pub fn replay<'a>(
        &'a mut self,
        input: impl BufRead + 'a,
    ) -> impl Iterator<Item = Result<(HistoryRecord, FeatureRow), ReplayError>> + 'a {
        input.lines().enumerate().filter_map(move |(i, line)| {
            let line = match line {
                Ok(line) if line.trim().is_empty() => return None,
                Ok(line) => line,
                Err(e) => return Some(Err(e.into())),
            };
            Some(parse_record(&line, i + 1).and_then(|record| {
                let row = self.row(&record, i + 1)?;
                Ok((record, row))
            }))
        })
    }

    /// Reads JSON lines, writes the table as CSV: `transaction_id, occurred_at_ms, label
    /// (1 fraud, 0 legitimate, empty unknown), scenario`, then every feature by name.
    pub fn run(&mut self, input: impl BufRead, output: impl Write) -> Result<usize, ReplayError> {
        let mut table = csv::Writer::from_writer(output);
        let mut header = vec!["transaction_id", "occurred_at_ms", "label", "scenario"];
        header.extend(FEATURE_NAMES);
        table.write_record(&header)?;
        let mut rows = 0usize;
        for item in self.replay(input) {
            let (_, row) = item?;
            let label = match row.label {
                Some(Label::Fraud) => "1",
                Some(Label::Legitimate) => "0",
                None => "",
            };
            let mut fields = vec![
                row.transaction_id,
                row.occurred_at_ms.to_string(),
                label.to_owned(),
                row.scenario.unwrap_or_default(),
            ];
            fields.extend(row.features.0.iter().map(|v| v.to_string()));
            table.write_record(&fields)?;
            rows += 1;
            if rows.is_multiple_of(100_000) {
                eprintln!("risk-replay: {rows} rows");
            }
        }
        table.flush()?;
        Ok(rows)
    }
}

/// A history record as the decision it was: the request's rules, validated as if "now"
/// were far ahead (a replayed event is never in the future).
pub fn replayed_input(record: &HistoryRecord, line: usize) -> Result<DecisionInput, ReplayError> {
    if record.request.occurred_at.is_none() {
        return Err(ReplayError::Record {
            line,
            problem: "occurred_at is required in a history".into(),
        });
    }
    DecisionInput::try_from_request(record.request.clone(), REPLAY_NOW_MS)
        .map_err(|error| ReplayError::Input { line, error })
}

/// Counts a history into a velocity store (Redis after it lost its data), record by
/// record, as the live decisions did: the same parsing, observation and label and
/// decline events as training's replay (labels and declines at their times, all of
/// them by the end). A transaction already counted is not counted again, and labels
/// and declines are set, not added, so a rebuild over a partly filled store is safe.
/// Returns how many records were counted.
pub async fn rebuild_counters<E>(
    store: &crate::store::VelocityStore,
    features: &FeatureContext,
    records: impl futures::Stream<Item = Result<HistoryRecord, E>>,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<usize>
where
    E: std::error::Error + Send + Sync + 'static,
{
    use futures::TryStreamExt;
    futures::pin_mut!(records);
    let mut pending = Pending::default();
    let mut n = 0;
    while let Some(record) = records.try_next().await? {
        n += 1;
        let input = replayed_input(&record, n)?;
        let (labelled_at, declines) = known_after(&record, n)?;
        while let Some(due) = pending.next_before(input.occurred_at_ms) {
            due.apply(store).await?;
        }
        let email_key = features.email_key(&input);
        store
            .observe(&features.observation(&input, email_key.as_deref()))
            .await?;
        let entities = features.entities(&input, email_key.as_deref());
        pending.schedule(
            &record,
            &input,
            &entities,
            labelled_at,
            &declines,
            DEFAULT_LABEL_DELAY_MS,
        );
        progress(n);
    }
    while let Some(due) = pending.next_before(i64::MAX) {
        due.apply(store).await?;
    }
    Ok(n)
}

/// A record's `labelled_at` and decline times, as Unix milliseconds.
fn known_after(record: &HistoryRecord, line: usize) -> Result<(Option<i64>, Vec<i64>), ReplayError> {
    let problem = |problem: String| ReplayError::Record { line, problem };
    let labelled_at = record
        .labelled_at
        .as_deref()
        .map(|t| parse_ms(t).ok_or_else(|| problem(format!("labelled_at {t:?} is not RFC 3339"))))
        .transpose()?;
    let declines = decline_times(record, parse_ms).map_err(problem)?;
    Ok((labelled_at, declines))
}

fn parse_ms(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// A line of a history, refused like a decision request if any value in it looks like a
/// full card number (a user's own export may carry one; it must go no further).
fn parse_record(line: &str, number: usize) -> Result<HistoryRecord, ReplayError> {
    let record = |problem: String| ReplayError::Record { line: number, problem };
    let found = screen(line).map_err(|e| record(e.to_string()))?;
    if let Some(field) = found.pan {
        return Err(ReplayError::Input {
            line: number,
            error: InputError::Pan { field },
        });
    }
    serde_json::from_str(line).map_err(|e| record(e.to_string()))
}

#[cfg(test)]
mod tests;
