//! The history format: JSON lines, each a decision request as the contract defines it
//! (with `occurred_at` always set), plus `label` when known and an optional free
//! `scenario` tag, in time order. The simulator writes it; training, backtests and
//! users' own exports read it.

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
    }
}
