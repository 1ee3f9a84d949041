//! Parsing `POST /v1/feedback` and `POST /v1/decisions/{id}/outcome` bodies: the
//! contract's rules, each failure naming its field.

use shared::{FeedbackRequest, Label, LabelSource, OutcomeRequest, OutcomeStatus};

use crate::decision::input::{InputError, MAX_FUTURE_MS, invalid, parse_json, rfc3339_ms, transaction_id};

const MAX_REASON_CHARS: usize = 256;
const MAX_REPORTED_BY_CHARS: usize = 128;
const MAX_CODE_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct LabelInput {
    pub transaction_id: String,
    pub label: Label,
    pub source: LabelSource,
    /// When the label became known (the request's `occurred_at`, else now).
    pub occurred_at_ms: i64,
    pub reason: Option<String>,
    pub reported_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeInput {
    pub transaction_id: String,
    pub status: OutcomeStatus,
    pub code: Option<String>,
    pub occurred_at_ms: i64,
}

impl LabelInput {
    pub fn parse(body: &[u8], now_ms: i64) -> Result<LabelInput, InputError> {
        let r: FeedbackRequest = parse_json(body)?;
        let transaction_id = transaction_id(r.transaction_id)?;
        let label = Label::parse(&r.label).ok_or_else(|| invalid("label", "must be fraud or legitimate"))?;
        let source = LabelSource::parse(&r.source).ok_or_else(|| {
            invalid(
                "source",
                "must be one of chargeback, manual_review, customer_report, challenge_passed, challenge_failed",
            )
        })?;
        // The challenge sources say what the transaction was: a code entered right is a
        // legitimate shopper, a challenge failed is fraud.
        match (source, label) {
            (LabelSource::ChallengePassed, Label::Fraud) => {
                return Err(invalid("label", "must be legitimate when source is challenge_passed"));
            }
            (LabelSource::ChallengeFailed, Label::Legitimate) => {
                return Err(invalid("label", "must be fraud when source is challenge_failed"));
            }
            _ => {}
        }
        let occurred_at_ms = occurred_at(r.occurred_at.as_deref(), now_ms)?;
        let reason = bounded_text(r.reason, "reason", MAX_REASON_CHARS)?;
        let reported_by = bounded_text(r.reported_by, "reported_by", MAX_REPORTED_BY_CHARS)?;
        Ok(LabelInput {
            transaction_id,
            label,
            source,
            occurred_at_ms,
            reason,
            reported_by,
        })
    }
}

impl OutcomeInput {
    /// `path_id` is the `{transaction_id}` of the URL.
    pub fn parse(path_id: &str, body: &[u8], now_ms: i64) -> Result<OutcomeInput, InputError> {
        let transaction_id = transaction_id(path_id.to_owned())?;
        let r: OutcomeRequest = parse_json(body)?;
        let status = OutcomeStatus::parse(&r.status).ok_or_else(|| {
            invalid(
                "status",
                "must be one of authorised, declined, captured, voided, refunded, disputed",
            )
        })?;
        let code_ok = |c: &str| {
            !c.is_empty()
                && c.len() <= MAX_CODE_CHARS
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if r.code.as_deref().is_some_and(|c| !code_ok(c)) {
            return Err(invalid("code", "must be 1–64 characters of A-Z a-z 0-9 _ -"));
        }
        Ok(OutcomeInput {
            transaction_id,
            status,
            code: r.code,
            occurred_at_ms: occurred_at(r.occurred_at.as_deref(), now_ms)?,
        })
    }
}

fn occurred_at(s: Option<&str>, now_ms: i64) -> Result<i64, InputError> {
    let Some(s) = s else { return Ok(now_ms) };
    let t = rfc3339_ms(s, "occurred_at")?;
    if t > now_ms + MAX_FUTURE_MS {
        return Err(invalid("occurred_at", "is more than 5 minutes in the future"));
    }
    Ok(t)
}

fn bounded_text(s: Option<String>, field: &str, max: usize) -> Result<Option<String>, InputError> {
    match s {
        Some(s) if s.chars().count() > max => Err(invalid(field, &format!("must be at most {max} characters"))),
        Some(s) if s.chars().any(char::is_control) => Err(invalid(field, "must not contain control characters")),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_547_200_000;

    fn field_of(e: InputError) -> Option<String> {
        match e {
            InputError::Invalid { field, .. } | InputError::Pan { field } => field,
            InputError::InvalidJson(_) => None,
        }
    }

    #[test]
    fn a_label_parses_with_its_defaults() {
        let l = LabelInput::parse(
            br#"{"transaction_id":"t-1","label":"fraud","source":"chargeback","reason":"lost dispute"}"#,
            NOW,
        )
        .expect("valid");
        assert_eq!(l.label, Label::Fraud);
        assert_eq!(l.source, LabelSource::Chargeback);
        assert_eq!(l.occurred_at_ms, NOW);
        assert_eq!(l.reason.as_deref(), Some("lost dispute"));
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let cases: &[(&str, &str)] = &[
            (r#"{"label":"fraud","source":"chargeback"}"#, "transaction_id"),
            (
                r#"{"transaction_id":"t 1","label":"fraud","source":"chargeback"}"#,
                "transaction_id",
            ),
            (r#"{"transaction_id":"t","label":"bad","source":"chargeback"}"#, "label"),
            (r#"{"transaction_id":"t","label":"fraud","source":"rumour"}"#, "source"),
            (
                r#"{"transaction_id":"t","label":"fraud","source":"challenge_passed"}"#,
                "label",
            ),
            (
                r#"{"transaction_id":"t","label":"legitimate","source":"challenge_failed"}"#,
                "label",
            ),
            (
                r#"{"transaction_id":"t","label":"fraud","source":"chargeback","occurred_at":"yesterday"}"#,
                "occurred_at",
            ),
            (
                r#"{"transaction_id":"t","label":"fraud","source":"chargeback","occurred_at":"2099-01-01T00:00:00Z"}"#,
                "occurred_at",
            ),
            (
                r#"{"transaction_id":"t","label":"fraud","source":"chargeback","reported_by":7}"#,
                "reported_by",
            ),
        ];
        for (body, field) in cases {
            let err = LabelInput::parse(body.as_bytes(), NOW).expect_err(body);
            assert_eq!(field_of(err).as_deref(), Some(*field), "{body}");
        }
        let long = format!(
            r#"{{"transaction_id":"t","label":"fraud","source":"chargeback","reason":"{}"}}"#,
            "x".repeat(257)
        );
        assert_eq!(
            field_of(LabelInput::parse(long.as_bytes(), NOW).expect_err("long")).as_deref(),
            Some("reason")
        );
    }

    #[test]
    fn a_card_number_in_free_text_is_refused_and_not_quoted() {
        let body = br#"{"transaction_id":"t","label":"fraud","source":"manual_review","reason":"card 4111-1111-1111-1111 stolen"}"#;
        let err = LabelInput::parse(body, NOW).expect_err("pan");
        assert!(matches!(&err, InputError::Pan { field } if field.as_deref() == Some("reason")));
        assert!(!err.to_string().contains("4111"));
    }

    #[test]
    fn outcomes_check_status_and_code() {
        let o = OutcomeInput::parse("t-1", br#"{"status":"declined","code":"do_not_honor"}"#, NOW).expect("ok");
        assert_eq!(o.status, OutcomeStatus::Declined);
        assert_eq!(o.code.as_deref(), Some("do_not_honor"));
        for (id, body, field) in [
            ("t-1", r#"{"status":"lost"}"#, "status"),
            ("t-1", r#"{"status":"declined","code":"has space"}"#, "code"),
            ("t-1", r#"{}"#, "status"),
            ("t 1", r#"{"status":"captured"}"#, "transaction_id"),
        ] {
            let err = OutcomeInput::parse(id, body.as_bytes(), NOW).expect_err(body);
            assert_eq!(field_of(err).as_deref(), Some(field), "{body}");
        }
    }
}
