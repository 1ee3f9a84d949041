//! `POST /v1/feedback` and `POST /v1/decisions/{transaction_id}/outcome`: what became
//! known about a transaction after its decision.
//!
//! Requests are loose (strings) for the same reason as the decision request: the
//! sidecar names the failing field. The enums below are what it parses them into.

use serde::{Deserialize, Serialize};

use crate::Label;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FeedbackRequest {
    pub transaction_id: String,
    pub label: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeedbackResponse {
    pub transaction_id: String,
    pub label: Label,
    pub source: LabelSource,
    /// RFC 3339: when the sidecar first recorded this label from this source.
    pub recorded_at: String,
}

/// Who said what a transaction was, in the contract's order of precedence (highest
/// first): a lost dispute outranks an analyst, who outranks the shopper's own report.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LabelSource {
    Chargeback,
    ManualReview,
    CustomerReport,
    ChallengeFailed,
    ChallengePassed,
}

impl LabelSource {
    pub const ALL: [LabelSource; 5] = [
        LabelSource::Chargeback,
        LabelSource::ManualReview,
        LabelSource::CustomerReport,
        LabelSource::ChallengeFailed,
        LabelSource::ChallengePassed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LabelSource::Chargeback => "chargeback",
            LabelSource::ManualReview => "manual_review",
            LabelSource::CustomerReport => "customer_report",
            LabelSource::ChallengeFailed => "challenge_failed",
            LabelSource::ChallengePassed => "challenge_passed",
        }
    }

    pub fn parse(s: &str) -> Option<LabelSource> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Higher wins; among equals the latest label wins.
    pub fn precedence(self) -> u8 {
        match self {
            LabelSource::Chargeback => 5,
            LabelSource::ManualReview => 4,
            LabelSource::CustomerReport => 3,
            LabelSource::ChallengeFailed => 2,
            LabelSource::ChallengePassed => 1,
        }
    }
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Fraud => "fraud",
            Label::Legitimate => "legitimate",
        }
    }

    pub fn parse(s: &str) -> Option<Label> {
        [Label::Fraud, Label::Legitimate].into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OutcomeRequest {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutcomeResponse {
    pub transaction_id: String,
    pub status: OutcomeStatus,
    pub recorded_at: String,
}

/// What the gateway did with the payment after the decision.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Authorised,
    Declined,
    Captured,
    Voided,
    Refunded,
    Disputed,
}

impl OutcomeStatus {
    pub const ALL: [OutcomeStatus; 6] = [
        OutcomeStatus::Authorised,
        OutcomeStatus::Declined,
        OutcomeStatus::Captured,
        OutcomeStatus::Voided,
        OutcomeStatus::Refunded,
        OutcomeStatus::Disputed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Authorised => "authorised",
            OutcomeStatus::Declined => "declined",
            OutcomeStatus::Captured => "captured",
            OutcomeStatus::Voided => "voided",
            OutcomeStatus::Refunded => "refunded",
            OutcomeStatus::Disputed => "disputed",
        }
    }

    pub fn parse(s: &str) -> Option<OutcomeStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_through_serde_and_parse() {
        for s in LabelSource::ALL {
            let json = serde_json::to_string(&s).expect("ser");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(LabelSource::parse(s.as_str()), Some(s));
        }
        for s in OutcomeStatus::ALL {
            let json = serde_json::to_string(&s).expect("ser");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(OutcomeStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(Label::parse("fraud"), Some(Label::Fraud));
        assert_eq!(Label::parse("Fraud"), None);
    }

    #[test]
    fn precedence_follows_the_contract() {
        let order: Vec<u8> = LabelSource::ALL.iter().map(|s| s.precedence()).collect();
        assert!(order.windows(2).all(|w| w[0] > w[1]), "{order:?}");
    }
}
