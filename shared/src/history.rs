//! The history format: JSON lines, each a decision request as the contract defines it
//! (with `occurred_at` always set), plus `label` when known and an optional free
//! `scenario` tag, in time order. The simulator writes it; training, backtests,
//! `make export-history` (the decision log) and users' own exports read it.
//!
//! Optional, for training with labels as they arrived: `labelled_at` (when the label
//! became known), `label_source` (who said it, as in `POST /v1/feedback`) and
//! `outcomes` (what the gateway did, with times). A reader that does not know them
//! ignores them; a history without them is as before.

use serde::{Deserialize, Serialize};

use crate::DecisionRequest;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistoryRecord {
    #[serde(flatten)]
    pub request: DecisionRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// RFC 3339: when the label became known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labelled_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_source: Option<crate::LabelSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<HistoryOutcome>,
}

/// A payment outcome in a history, as `POST /v1/decisions/{id}/outcome` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistoryOutcome {
    pub status: crate::OutcomeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// RFC 3339.
    pub occurred_at: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Fraud,
    Legitimate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_a_request_with_two_more_fields() {
        let line = r#"{"transaction_id":"t1","occurred_at":"2026-01-05T10:00:00Z",
            "amount":{"value_minor":100,"currency":"EUR"},"customer":{"id":"c"},
            "payment":{"card_fingerprint":"fp"},"label":"fraud","scenario":"card_testing"}"#;
        let record: HistoryRecord = serde_json::from_str(line).expect("parses");
        assert_eq!(record.label, Some(Label::Fraud));
        assert_eq!(record.request.transaction_id, "t1");
        let unlabelled: HistoryRecord =
            serde_json::from_str(&serde_json::to_string(&record.request).expect("ser")).expect("parses");
        assert_eq!(unlabelled.label, None);
        assert!(unlabelled.outcomes.is_empty() && unlabelled.labelled_at.is_none());
    }

    #[test]
    fn labels_and_outcomes_with_their_times_round_trip() {
        let line = r#"{"transaction_id":"t1","occurred_at":"2026-01-05T10:00:00Z",
            "amount":{"value_minor":100,"currency":"EUR"},"customer":{"id":"c"},
            "payment":{"card_fingerprint":"fp"},"label":"fraud","labelled_at":"2026-02-01T00:00:00Z",
            "label_source":"chargeback","outcomes":[{"status":"declined","code":"card_declined",
            "occurred_at":"2026-01-05T10:00:01Z"}]}"#;
        let record: HistoryRecord = serde_json::from_str(line).expect("parses");
        assert_eq!(record.label_source, Some(crate::LabelSource::Chargeback));
        assert_eq!(record.outcomes[0].status, crate::OutcomeStatus::Declined);
        let again: HistoryRecord = serde_json::from_str(&serde_json::to_string(&record).expect("ser")).expect("parses");
        assert_eq!(again, record);
    }
}
