//! Parsing a request body into a [`DecisionInput`]: every rule of the contract,
//! each failure naming its field's dotted path. Nothing after this sees raw JSON.

use std::net::IpAddr;

use shared::{DecisionRequest, PaymentMethod};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::screen::screen;

use shared::limits::{MAX_AMOUNT_MINOR, MAX_ID_CHARS, MAX_ITEMS, MAX_METADATA_KEYS, MAX_USER_AGENT_CHARS};
pub(crate) const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("{0}")]
    InvalidJson(String),
    /// The offending value is deliberately not carried: it must never reach a log.
    #[error("a value looks like a full card number")]
    Pan { field: Option<String> },
    #[error("{message}")]
    Invalid { field: Option<String>, message: String },
}

/// A decision request that has passed every rule of the contract.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionInput {
    pub transaction_id: String,
    /// Event time, Unix milliseconds (the request's `occurred_at`, else now).
    pub occurred_at_ms: i64,
    pub amount_minor: i64,
    pub currency: [u8; 3],
    pub customer_id: String,
    /// Lower-cased domain of the e-mail address.
    pub email_domain: Option<String>,
    pub account_created_at_ms: Option<i64>,
    pub method: PaymentMethod,
    pub card_fingerprint: Option<String>,
    pub card_country: Option<[u8; 2]>,
    /// IPv4 address, or the /64 network of an IPv6 address (one subscriber's block).
    pub ip_key: Option<String>,
    pub device_id: Option<String>,
    pub shipping_country: Option<[u8; 2]>,
    pub billing_country: Option<[u8; 2]>,
    pub item_count: u32,
    pub distinct_skus: u32,
    /// What the decision log keeps beyond the features; nothing on the hot path reads it.
    pub record: RecordFields,
}

/// Request fields kept for the decision log (and a replay of it), moved out of the
/// request, not copied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordFields {
    /// The lower-cased address: hashed with a key before it is logged, never logged.
    pub email: Option<String>,
    pub bin: Option<String>,
    pub last4: Option<String>,
    /// The full address (`ip_key` is its /64 for IPv6).
    pub ip: Option<IpAddr>,
    pub items: Vec<shared::Item>,
    pub metadata: std::collections::BTreeMap<String, String>,
}

// === impl DecisionInput ===

impl DecisionInput {
    /// Parses a body (already known to be JSON by its content type) at wall-clock `now_ms`.
    pub fn parse(body: &[u8], now_ms: i64) -> Result<DecisionInput, InputError> {
        Self::try_from_request(parse_json(body)?, now_ms)
    }

    pub fn try_from_request(r: DecisionRequest, now_ms: i64) -> Result<DecisionInput, InputError> {
        let transaction_id = transaction_id(r.transaction_id)?;
        let occurred_at_ms = match &r.occurred_at {
            None => now_ms,
            Some(s) => {
                let t = rfc3339_ms(s, "occurred_at")?;
                if t > now_ms + MAX_FUTURE_MS {
                    return Err(invalid("occurred_at", "is more than 5 minutes in the future"));
                }
                t
            }
        };
        if !(0..=MAX_AMOUNT_MINOR).contains(&r.amount.value_minor) {
            return Err(invalid("amount.value_minor", "must be between 0 and 10^13"));
        }
        let currency = upper_code::<3>(&r.amount.currency, "amount.currency", "an ISO 4217 code")?;
        let customer_id = bounded_id(r.customer.id, "customer.id")?;
        let email_domain = r.customer.email.as_deref().map(email_domain).transpose()?;
        let account_created_at_ms = r
            .customer
            .account_created_at
            .as_deref()
            .map(|s| rfc3339_ms(s, "customer.account_created_at"))
            .transpose()?;

        let method = r.payment.method.unwrap_or_default();
        let card_fingerprint = match (method, r.payment.card_fingerprint) {
            (PaymentMethod::Card, None) => {
                return Err(invalid(
                    "payment.card_fingerprint",
                    "is required when payment.method is card",
                ));
            }
            (_, Some(fp)) => Some(bounded_id(fp, "payment.card_fingerprint")?),
            (_, None) => None,
        };
        if let Some(bin) = &r.payment.bin {
            digits(bin, 6..=8, "payment.bin")?;
        }
        if let Some(last4) = &r.payment.last4 {
            digits(last4, 4..=4, "payment.last4")?;
        }
        let card_country = country(r.payment.card_country.as_deref(), "payment.card_country")?;

        let device = r.device.unwrap_or_default();
        let ip_key = device.ip.as_deref().map(ip_key).transpose()?;
        let ip = device.ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok());
        let device_id = device.id.map(|id| bounded_id(id, "device.id")).transpose()?;
        if device
            .user_agent
            .as_ref()
            .is_some_and(|ua| ua.chars().count() > MAX_USER_AGENT_CHARS)
        {
            return Err(invalid("device.user_agent", "must be at most 512 characters"));
        }
        let shipping_country = country(r.shipping.and_then(|s| s.country).as_deref(), "shipping.country")?;
        let billing_country = country(r.billing.and_then(|s| s.country).as_deref(), "billing.country")?;

        if r.items.len() > MAX_ITEMS {
            return Err(invalid("items", "must have at most 100 entries"));
        }
        for (i, item) in r.items.iter().enumerate() {
            if item.sku.is_empty() || item.sku.chars().count() > MAX_ID_CHARS {
                return Err(invalid(&format!("items[{i}].sku"), "must be 1–128 characters"));
            }
            if !(0..=MAX_AMOUNT_MINOR).contains(&item.unit_price_minor) {
                return Err(invalid(
                    &format!("items[{i}].unit_price_minor"),
                    "must be between 0 and 10^13",
                ));
            }
        }
        if r.metadata.len() > MAX_METADATA_KEYS {
            return Err(invalid("metadata", "must have at most 20 keys"));
        }
        let item_count = r.items.iter().map(|i| i.quantity).fold(0u32, u32::saturating_add);
        let mut skus: Vec<&str> = r.items.iter().map(|i| i.sku.as_str()).collect();
        skus.sort_unstable();
        skus.dedup();

        Ok(DecisionInput {
            transaction_id,
            occurred_at_ms,
            amount_minor: r.amount.value_minor,
            currency,
            customer_id,
            email_domain,
            account_created_at_ms,
            method,
            card_fingerprint,
            card_country,
            ip_key,
            device_id,
            shipping_country,
            billing_country,
            item_count,
            distinct_skus: skus.len() as u32,
            record: RecordFields {
                email: r.customer.email.map(|e| e.to_lowercase()),
                bin: r.payment.bin,
                last4: r.payment.last4,
                ip,
                items: r.items,
                metadata: r.metadata,
            },
        })
    }

    pub fn currency_str(&self) -> &str {
        std::str::from_utf8(&self.currency).unwrap_or("???")
    }
}

/// A body into one of the contract's request types: JSON, an object, no value that
/// looks like a card number anywhere (checked before typed parsing, so a card number
/// never appears in a type error), then the type, a failure naming its field.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, InputError> {
    // UTF-8 checked once for the whole body: both passes then read it as text and skip
    // checking each string again.
    let body = std::str::from_utf8(body).map_err(|e| {
        let (before, _) = body.split_at(e.valid_up_to());
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
        not_json(line, column)
    })?;
    let found = screen(body).map_err(|e| not_json(e.line(), e.column()))?;
    if !found.object {
        return Err(InputError::InvalidJson("body must be a JSON object".to_owned()));
    }
    if let Some(field) = found.pan {
        return Err(InputError::Pan { field });
    }
    if let Some(field) = found.nul {
        // PostgreSQL cannot store U+0000 in text or jsonb: the decision log would refuse it.
        return Err(InputError::Invalid {
            message: format!(
                "{} must not contain the NUL character",
                if field.is_empty() { "a key" } else { &field }
            ),
            field: (!field.is_empty()).then_some(field),
        });
    }
    // Typed straight from the text: the screen has seen it whole and well formed.
    // Untracked first; only a body that fails is read again to learn the field's path
    // (tracking it cost every request a third of its parsing).
    if let Ok(typed) = serde_json::from_str(body) {
        return Ok(typed);
    }
    let mut de = serde_json::Deserializer::from_str(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let position = format!(" at line {} column {}", inner.line(), inner.column());
        let text = inner.to_string();
        let inner = text.strip_suffix(&position).unwrap_or(&text);
        InputError::Invalid {
            field: serde_field(&path, inner),
            message: expected(inner),
        }
    })
}

/// Line and column only: serde_json's text may quote the input.
fn not_json(line: usize, column: usize) -> InputError {
    InputError::InvalidJson(format!("body is not valid JSON (line {line}, column {column})"))
}

pub(crate) fn invalid(field: &str, message: &str) -> InputError {
    InputError::Invalid {
        field: Some(field.to_owned()),
        message: format!("{field} {message}"),
    }
}

/// serde_path_to_error reports a missing field at its parent; name the field itself.
fn serde_field(path: &str, message: &str) -> Option<String> {
    let parent = (path != ".").then_some(path);
    // A field missing, or given twice (read from the bytes, a repeat is seen, not
    // silently replaced by the last).
    let missing = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("duplicate field `"))
        .and_then(|m| m.split('`').next());
    match (parent, missing) {
        (Some(p), Some(m)) => Some(format!("{p}.{m}")),
        (None, Some(m)) => Some(m.to_owned()),
        (p, None) => p.map(str::to_owned),
    }
}

/// What was expected, in our words: serde's message quotes what was sent ("invalid
/// type: floating point `4242…`"), so only its category is read, and the expectation,
/// which comes from our own types ("expected a string", "expected one of `card`, …").
fn expected(serde_message: &str) -> String {
    // The last ", expected …" is serde's own, after anything quoted from the input.
    let expectation = serde_message.rsplit_once(", expected ").map(|(_, e)| e);
    let what = if serde_message.starts_with("missing field") {
        return "is required".to_owned();
    } else if serde_message.starts_with("duplicate field") {
        return "is given more than once".to_owned();
    } else if serde_message.starts_with("invalid type") {
        "has the wrong type"
    } else if serde_message.starts_with("unknown variant") {
        "is not one of the allowed values"
    } else if serde_message.starts_with("invalid value") {
        "is out of range"
    } else if serde_message.starts_with("invalid length") {
        "has the wrong length"
    } else {
        "is malformed"
    };
    match expectation {
        Some(e) if e.len() <= 120 => format!("{what}: expected {e}"),
        _ => what.to_owned(),
    }
}

pub(crate) fn transaction_id(id: String) -> Result<String, InputError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if id.is_empty() || id.len() > MAX_ID_CHARS || !id.chars().all(ok_char) {
        return Err(invalid(
            "transaction_id",
            "must be 1–128 characters of A-Z a-z 0-9 . _ : -",
        ));
    }
    Ok(id)
}

fn bounded_id(id: String, field: &str) -> Result<String, InputError> {
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
        return Err(invalid(field, "must be 1–128 characters"));
    }
    Ok(id)
}

pub(crate) fn rfc3339_ms(s: &str, field: &str) -> Result<i64, InputError> {
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| invalid(field, "must be an RFC 3339 timestamp"))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn upper_code<const N: usize>(s: &str, field: &str, what: &str) -> Result<[u8; N], InputError> {
    let bytes = s.as_bytes();
    if bytes.len() != N || !bytes.iter().all(u8::is_ascii_uppercase) {
        return Err(invalid(field, &format!("must be {what} ({N} upper-case letters)")));
    }
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

fn country(s: Option<&str>, field: &str) -> Result<Option<[u8; 2]>, InputError> {
    s.map(|s| upper_code::<2>(s, field, "an ISO 3166-1 alpha-2 code"))
        .transpose()
}

fn digits(s: &str, len: std::ops::RangeInclusive<usize>, field: &str) -> Result<(), InputError> {
    if !len.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        let (lo, hi) = (len.start(), len.end());
        let n = if lo == hi {
            format!("{lo}")
        } else {
            format!("{lo}–{hi}")
        };
        return Err(invalid(field, &format!("must be {n} digits")));
    }
    Ok(())
}

fn email_domain(email: &str) -> Result<String, InputError> {
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@') => {
            Ok(domain.to_ascii_lowercase())
        }
        _ => Err(invalid(
            "customer.email",
            "must contain exactly one @ between a name and a domain",
        )),
    }
}

/// The counters' key of an address: IPv4 as it is, IPv6 as its /64.
pub fn ip_key(s: &str) -> Result<String, InputError> {
    match s
        .parse::<IpAddr>()
        .map_err(|_| invalid("device.ip", "must be an IPv4 or IPv6 address"))?
    {
        IpAddr::V4(v4) => Ok(v4.to_string()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Ok(v4.to_string()),
            None => {
                let s = v6.segments();
                Ok(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
            }
        },
    }
}

#[cfg(test)]
mod tests;
