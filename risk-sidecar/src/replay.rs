//! Replaying a labelled history through the sidecar's own parsing, velocity counters
//! (the in-memory store, same semantics as Redis) and feature code: the training table
//! is what serving would have computed, transaction by transaction.

use std::io::{BufRead, Write};
use std::sync::Arc;

use shared::{FEATURE_NAMES, HistoryRecord, Label};

use crate::decision::features::{FeatureContext, FeatureVector};
use crate::decision::input::{DecisionInput, InputError};
use crate::decision::pan::find_pan;
use crate::settings::Settings;
use crate::store::{MemoryStore, StoreLimits};

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
}

impl Replayer {
    pub fn new(settings: &Settings) -> Replayer {
        Replayer {
            store: Arc::new(MemoryStore::new(StoreLimits::from(&settings.redis))),
            features: FeatureContext::new(&settings.currency.rates, &settings.currency.reference),
            last_ms: i64::MIN,
        }
    }

    /// The features of one record, counting it first, as a live decision would.
    pub fn row(&mut self, record: &HistoryRecord, line: usize) -> Result<FeatureRow, ReplayError> {
        if record.request.occurred_at.is_none() {
            return Err(ReplayError::Record {
                line,
                problem: "occurred_at is required in a history".into(),
            });
        }
        // Validated as if "now" were far ahead: a replayed event is never in the future.
        let input = DecisionInput::try_from_request(record.request.clone(), REPLAY_NOW_MS)
            .map_err(|error| ReplayError::Input { line, error })?;
        if input.occurred_at_ms < self.last_ms {
            return Err(ReplayError::OutOfOrder { line });
        }
        self.last_ms = input.occurred_at_ms;
        let observed = self.store.observe(&self.features.observation(&input));
        Ok(FeatureRow {
            transaction_id: input.transaction_id.clone(),
            occurred_at_ms: input.occurred_at_ms,
            label: record.label,
            scenario: record.scenario.clone(),
            features: self.features.compute(&input, Some(&observed.snapshot)),
        })
    }

    /// Reads JSON lines, writes the table as CSV: `transaction_id, occurred_at_ms, label
    /// (1 fraud, 0 legitimate, empty unknown), scenario`, then every feature by name.
    pub fn run(&mut self, input: impl BufRead, output: impl Write) -> Result<usize, ReplayError> {
        let mut table = csv::Writer::from_writer(output);
        let mut header = vec!["transaction_id", "occurred_at_ms", "label", "scenario"];
        header.extend(FEATURE_NAMES);
        table.write_record(&header)?;
        let mut rows = 0;
        for (i, line) in input.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let record = parse_record(&line, i + 1)?;
            let row = self.row(&record, i + 1)?;
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
        }
        table.flush()?;
        Ok(rows)
    }
}

/// A line of a history, refused like a decision request if any value in it looks like a
/// full card number (a user's own export may carry one; it must go no further).
pub fn parse_record(line: &str, number: usize) -> Result<HistoryRecord, ReplayError> {
    let record = |problem: String| ReplayError::Record { line: number, problem };
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| record(e.to_string()))?;
    if let Some(field) = find_pan(&value) {
        return Err(ReplayError::Input {
            line: number,
            error: InputError::Pan { field },
        });
    }
    serde_json::from_value(value).map_err(|e| record(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::feature_index;

    fn line(tx: &str, at: &str, card: &str) -> String {
        format!(
            r#"{{"transaction_id":"{tx}","occurred_at":"{at}","amount":{{"value_minor":1000,"currency":"EUR"}},
               "customer":{{"id":"c1"}},"payment":{{"card_fingerprint":"{card}"}},"label":"fraud","scenario":"s"}}"#
        )
        .replace('\n', "")
    }

    fn replay(lines: &[String]) -> Result<String, ReplayError> {
        let settings = Settings::load_with(Default::default()).expect("defaults");
        let mut out = Vec::new();
        Replayer::new(&settings).run(lines.join("\n").as_bytes(), &mut out)?;
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    #[test]
    fn rows_carry_label_scenario_and_counts_that_include_the_transaction() {
        let lines = [
            line("a", "2026-01-05T10:00:00Z", "fp1"),
            line("b", "2026-01-05T10:00:10Z", "fp1"),
            line("c", "2026-01-05T10:00:20.5Z", "fp1"),
        ];
        let table = replay(&lines).expect("replays");
        let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split(',').collect()).collect();
        let col = 4 + feature_index("card_count_1m").expect("known");
        assert_eq!(rows[0][col], "card_count_1m");
        assert_eq!(rows.iter().skip(1).map(|r| r[col]).collect::<Vec<_>>(), ["1", "2", "3"]);
        assert_eq!(&rows[3][..4], ["c", "1767607220500", "1", "s"]);
    }

    #[test]
    fn a_bad_history_is_refused_with_its_line_number() {
        let out_of_order = [
            line("a", "2026-01-05T10:00:00Z", "fp"),
            line("b", "2026-01-05T09:00:00Z", "fp"),
        ];
        assert!(matches!(
            replay(&out_of_order),
            Err(ReplayError::OutOfOrder { line: 2 })
        ));
        let pan = [line("a", "2026-01-05T10:00:00Z", "4111111111111111")];
        assert!(matches!(
            replay(&pan),
            Err(ReplayError::Input {
                line: 1,
                error: InputError::Pan { .. }
            })
        ));
        let untimed = [line("a", "2026-01-05T10:00:00Z", "fp").replace(r#""occurred_at":"2026-01-05T10:00:00Z","#, "")];
        assert!(matches!(replay(&untimed), Err(ReplayError::Record { line: 1, .. })));
        assert!(matches!(
            replay(&["{".to_owned()]),
            Err(ReplayError::Record { line: 1, .. })
        ));
    }
}
