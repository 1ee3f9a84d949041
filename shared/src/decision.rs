//! `POST /v1/decisions`: the request and the response.
//!
//! The request type is deliberately loose (strings, options): the sidecar parses it into
//! domain types and reports a rule violation with the field's dotted path, which a
//! stricter serde type could not do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::reason::ReasonSource;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DecisionRequest {
    pub transaction_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    pub amount: Amount,
    pub customer: Customer,
    #[serde(default)]
    pub payment: Payment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<Region>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<Region>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Amount {
    pub value_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Customer {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_created_at: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Payment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<PaymentMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_country: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    #[default]
    Card,
    BankTransfer,
    Wallet,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Device {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Region {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Item {
    pub sku: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
}

/// What the payment code must do with the payment.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Capture.
    Allow,
    /// Ask the shopper for step-up verification before capture.
    Challenge,
    /// Do not capture.
    Block,
    /// A value a newer sidecar may send that this build does not know; treat it as
    /// `challenge` (the safe middle) rather than failing the payment.
    #[serde(other)]
    Unknown,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Challenge => "challenge",
            Decision::Block => "block",
            Decision::Unknown => "unknown",
        }
    }
}

/// An input that was unavailable for a decision.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Degraded {
    /// The velocity store did not answer within its budget; counters are unknown.
    VelocityUnavailable,
    /// The decision could not be stored for idempotent retries.
    IdempotencyUnavailable,
    #[serde(other)]
    Unknown,
}

impl Degraded {
    pub fn as_str(self) -> &'static str {
        match self {
            Degraded::VelocityUnavailable => "velocity_unavailable",
            Degraded::IdempotencyUnavailable => "idempotency_unavailable",
            Degraded::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reason {
    /// A code from [`crate::ReasonCode`], as its wire string (kept a string so an
    /// older client can read codes added later).
    pub code: String,
    pub message: String,
    pub source: ReasonSource,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DecisionResponse {
    pub decision_id: String,
    pub transaction_id: String,
    pub decision: Decision,
    pub score: f64,
    pub reasons: Vec<Reason>,
    pub model_version: String,
    pub policy_version: String,
    #[serde(default)]
    pub degraded: Vec<Degraded>,
    pub evaluated_in_us: u64,
    /// The model's input row by feature name (null: unknown), only when the request
    /// asked for it with `X-Risk-Features: true`: for parity checks and debugging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<std::collections::BTreeMap<String, Option<f64>>>,
}
