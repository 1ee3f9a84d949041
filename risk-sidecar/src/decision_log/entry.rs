//! One row of `risk.decisions`: built on the hot path by moving what the decision
//! already holds, serialised (and the e-mail hashed) on the writer's thread.
//!
//! The serialised form is both a spool record and an element of the JSON array the
//! batch insert reads with `jsonb_to_recordset`, so its keys are the column names.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use shared::{DecisionResponse, FEATURE_NAMES};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::decision::features::FeatureVector;
use crate::decision::input::DecisionInput;

/// The table's columns with their SQL types, in one place: the insert's column list and
/// its record definition are both built from it.
pub const COLUMNS: &[(&str, &str)] = &[
    ("decision_id", "text"),
    ("transaction_id", "text"),
    ("decided_at", "timestamptz"),
    ("occurred_at", "timestamptz"),
    ("decision", "text"),
    ("score", "double precision"),
    ("reasons", "jsonb"),
    ("features", "jsonb"),
    ("model_version", "text"),
    ("policy_version", "text"),
    ("degraded", "text[]"),
    ("customer_id", "text"),
    ("account_created_at", "timestamptz"),
    ("email_domain", "text"),
    ("email_hash", "text"),
    ("payment_method", "text"),
    ("card_fingerprint", "text"),
    ("card_bin", "text"),
    ("card_last4", "text"),
    ("card_country", "text"),
    ("ip", "inet"),
    ("device_id", "text"),
    ("shipping_country", "text"),
    ("billing_country", "text"),
    ("amount_minor", "bigint"),
    ("currency", "text"),
    ("items", "jsonb"),
    ("metadata", "jsonb"),
    ("inputs", "jsonb"),
    ("evaluated_in_us", "integer"),
];

/// A new decision on its way to the log.
pub struct LogEntry {
    pub response: DecisionResponse,
    pub features: FeatureVector,
    pub input: DecisionInput,
    /// The time in the decision id's ULID: the partition key.
    pub decided_at_ms: i64,
}

impl LogEntry {
    pub fn new(response: DecisionResponse, features: FeatureVector, input: DecisionInput) -> LogEntry {
        let decided_at_ms = decided_at_ms(&response.decision_id).unwrap_or_else(now_ms);
        LogEntry {
            response,
            features,
            input,
            decided_at_ms,
        }
    }

    /// The row as JSON. The address is hashed with the key here and goes no further.
    pub fn to_json(&self, email_key: &[u8]) -> Vec<u8> {
        let r = &self.response;
        let i = &self.input;
        let row = Row {
            decision_id: &r.decision_id,
            transaction_id: &r.transaction_id,
            decided_at: rfc3339(self.decided_at_ms),
            decided_at_ms: self.decided_at_ms,
            occurred_at: rfc3339(i.occurred_at_ms),
            decision: r.decision.as_str(),
            score: r.score,
            reasons: &r.reasons,
            features: Features(&self.features),
            model_version: &r.model_version,
            policy_version: &r.policy_version,
            degraded: r.degraded.iter().map(|d| d.as_str()).collect(),
            customer_id: &i.customer_id,
            account_created_at: i.account_created_at_ms.map(rfc3339),
            email_domain: i.email_domain.as_deref(),
            email_hash: i.record.email.as_deref().map(|e| email_hash(email_key, e)),
            payment_method: payment_method(i.method),
            card_fingerprint: i.card_fingerprint.as_deref(),
            card_bin: i.record.bin.as_deref(),
            card_last4: i.record.last4.as_deref(),
            card_country: country(&i.card_country),
            ip: i.record.ip.map(|ip| ip.to_string()),
            device_id: i.device_id.as_deref(),
            shipping_country: country(&i.shipping_country),
            billing_country: country(&i.billing_country),
            amount_minor: i.amount_minor,
            currency: i.currency_str(),
            items: &i.record.items,
            metadata: &i.record.metadata,
            inputs: serde_json::Map::new(),
            evaluated_in_us: r.evaluated_in_us,
        };
        // Serialising plain data into a Vec cannot fail.
        serde_json::to_vec(&row).unwrap_or_default()
    }
}

#[derive(Serialize)]
struct Row<'a> {
    decision_id: &'a str,
    transaction_id: &'a str,
    decided_at: String,
    /// Not a column: read back from the spool for the age metric.
    decided_at_ms: i64,
    occurred_at: String,
    decision: &'a str,
    score: f64,
    reasons: &'a [shared::Reason],
    features: Features<'a>,
    model_version: &'a str,
    policy_version: &'a str,
    degraded: Vec<&'a str>,
    customer_id: &'a str,
    account_created_at: Option<String>,
    email_domain: Option<&'a str>,
    email_hash: Option<String>,
    payment_method: &'a str,
    card_fingerprint: Option<&'a str>,
    card_bin: Option<&'a str>,
    card_last4: Option<&'a str>,
    card_country: Option<&'a str>,
    ip: Option<String>,
    device_id: Option<&'a str>,
    shipping_country: Option<&'a str>,
    billing_country: Option<&'a str>,
    amount_minor: i64,
    currency: &'a str,
    items: &'a [shared::Item],
    metadata: &'a std::collections::BTreeMap<String, String>,
    inputs: serde_json::Map<String, serde_json::Value>,
    evaluated_in_us: u64,
}

/// Feature name → value, null for unknown (NaN), as in the response's `features`.
struct Features<'a>(&'a FeatureVector);

impl Serialize for Features<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(FEATURE_NAMES.len()))?;
        for (name, v) in FEATURE_NAMES.iter().zip(self.0.0) {
            map.serialize_entry(name, &(!v.is_nan()).then_some(f64::from(v)))?;
        }
        map.end()
    }
}

/// What the writer needs back from a spooled record.
#[derive(serde::Deserialize)]
pub struct SpooledHead {
    pub transaction_id: String,
    pub decided_at_ms: i64,
}

/// HMAC-SHA256 of the lower-cased address, hex: equal addresses match across rows,
/// and no one without the key can test a guess.
pub fn email_hash(key: &[u8], email: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(email.to_lowercase().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn country(c: &Option<[u8; 2]>) -> Option<&str> {
    c.as_ref().and_then(|c| std::str::from_utf8(c).ok())
}

fn payment_method(m: shared::PaymentMethod) -> &'static str {
    match m {
        shared::PaymentMethod::Card => "card",
        shared::PaymentMethod::BankTransfer => "bank_transfer",
        shared::PaymentMethod::Wallet => "wallet",
    }
}

/// `dec_<ULID>` → the ULID's milliseconds.
pub fn decided_at_ms(decision_id: &str) -> Option<i64> {
    let ulid = ulid::Ulid::from_string(decision_id.strip_prefix("dec_")?).ok()?;
    i64::try_from(ulid.timestamp_ms()).ok()
}

pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_key_is_the_ulid_time() {
        let id = ulid::Ulid::from_parts(1_764_547_200_123, 42);
        assert_eq!(decided_at_ms(&format!("dec_{id}")), Some(1_764_547_200_123));
        assert_eq!(decided_at_ms("dec_nope"), None);
        assert_eq!(rfc3339(1_764_547_200_123), "2025-12-01T00:00:00.123Z");
    }

    #[test]
    fn the_email_hash_is_keyed_and_case_blind() {
        let a = email_hash(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1", "Ann@Example.com");
        assert_eq!(a, email_hash(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1", "ann@example.com"));
        assert_ne!(a, email_hash(b"k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2", "ann@example.com"));
        assert_eq!(a.len(), 64);
        assert!(!a.contains("ann"));
    }
}
