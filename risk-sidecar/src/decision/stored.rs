//! A stored decision: the fields a retry must repeat (amount, currency, customer, card),
//! then the response exactly as it was first sent, without the feature row (that goes
//! only to the request that asked for it).
//!
//! Layout: a JSON array of those four fields, a newline, the response JSON. A value
//! stored by an older build is the response alone; it is answered as before. While the
//! decision is being made the key holds a reservation: `?`, the decision id it will
//! store (so a request knows its own reservation), a space, and the four fields.

use super::input::DecisionInput;

/// The fields that make a payment the same payment, as the first line of the record.
pub fn payment_key(input: &DecisionInput) -> String {
    let currency = std::str::from_utf8(&input.currency).unwrap_or_default();
    serde_json::json!([input.amount_minor, currency, input.customer_id, input.card_fingerprint]).to_string()
}

pub fn encode(payment_key: &str, response_json: &str) -> String {
    format!("{payment_key}\n{response_json}")
}

/// The reservation a request holds while it decides `decision_id`.
pub fn pending(decision_id: &str, payment_key: &str) -> String {
    format!("?{decision_id} {payment_key}")
}

/// A reservation's payment key, if `record` is one.
pub fn pending_key(record: &str) -> Option<&str> {
    pending_parts(record).map(|(_, key)| key)
}

/// A reservation's decision id and payment key, if `record` is one.
pub fn pending_parts(record: &str) -> Option<(&str, &str)> {
    record.strip_prefix('?').and_then(|r| r.split_once(' '))
}

pub struct Stored<'a> {
    pub payment_key: Option<&'a str>,
    pub response_json: &'a str,
}

pub fn decode(record: &str) -> Stored<'_> {
    match record.split_once('\n') {
        Some((key, json)) if key.starts_with('[') => Stored {
            payment_key: Some(key),
            response_json: json,
        },
        _ => Stored {
            payment_key: None,
            response_json: record,
        },
    }
}

impl Stored<'_> {
    /// Whether a request with `payment_key` is a retry of this decision.
    pub fn same_payment(&self, payment_key: &str) -> bool {
        self.payment_key.is_none_or(|k| k == payment_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_old_ones_still_answer() {
        let key = r#"[4599,"EUR","cus_1","fp_a"]"#;
        let record = encode(key, r#"{"decision":"allow"}"#);
        let stored = decode(&record);
        assert_eq!(stored.response_json, r#"{"decision":"allow"}"#);
        assert!(stored.same_payment(key));
        assert!(!stored.same_payment(r#"[1,"EUR","cus_1","fp_a"]"#));
        let old = decode(r#"{"decision":"block"}"#);
        assert_eq!(old.response_json, r#"{"decision":"block"}"#);
        assert!(old.same_payment("anything"));
        assert_eq!(pending_key(&pending("dec_1", key)), Some(key));
        assert_eq!(pending_parts(&pending("dec_1", key)), Some(("dec_1", key)));
        assert_eq!(pending_key(&record), None);
    }
}
