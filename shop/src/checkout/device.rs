//! What the shop knows of the shopper's browser, sent to the sidecar. Built here and
//! nowhere else, so every value the sidecar sees went through the same cleaning.
//!
//! The sidecar refuses a request with any value that breaks the contract or looks like
//! a card number, and a refused request is never a reason to allow a payment (the
//! order is held). Still, a shopper must not be able to push an order into review, or
//! past a rule, with a header: so the shop sends only values it issued (the signed
//! device cookie) or cleaned (an API client's `X-Device-Id`, the user agent).

use actix_web::HttpRequest;
use shared::limits::{MAX_ID_CHARS, MAX_USER_AGENT_CHARS};

/// A run of this many digits, separators between them allowed, may be a card number
/// (the shortest PAN has 13 digits).
const PAN_MIN_DIGITS: usize = 13;

#[derive(Debug, Clone, Default)]
pub struct DeviceContext {
    pub ip: Option<String>,
    pub device_id: Option<String>,
    pub user_agent: Option<String>,
}

impl DeviceContext {
    /// From a request: the client's IP, the device id (the page session's, or the API
    /// caller's after [`device_id`] checked it), and the cleaned user agent.
    pub fn from_request(
        req: &HttpRequest,
        trust: &crate::routes::ForwardedFor,
        device_id: Option<&str>,
    ) -> DeviceContext {
        DeviceContext {
            ip: crate::routes::client_ip(req, trust),
            device_id: device_id.and_then(self::device_id),
            user_agent: req
                .headers()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .and_then(user_agent),
        }
    }
}

/// A device id as the contract allows it (1 to 128 characters), from a small set of
/// characters, that cannot be a card number; otherwise none: the decision is asked
/// without it (the customer, card and IP are still counted).
pub fn device_id(raw: &str) -> Option<String> {
    let ok_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-');
    let ok =
        (1..=MAX_ID_CHARS).contains(&raw.len()) && raw.bytes().all(ok_char) && longest_digit_run(raw) < PAN_MIN_DIGITS;
    ok.then(|| raw.to_owned())
}

/// Printable ASCII only, every digit of a long digit run masked, at most the
/// contract's length; none if nothing is left.
pub fn user_agent(raw: &str) -> Option<String> {
    let printable: Vec<u8> = raw
        .bytes()
        .filter(|b| (0x20..0x7f).contains(b))
        .take(MAX_USER_AGENT_CHARS)
        .collect();
    let mut out = printable.clone();
    for (start, end) in digit_runs(&printable) {
        for b in &mut out[start..end] {
            if b.is_ascii_digit() {
                *b = b'#';
            }
        }
    }
    let out = String::from_utf8(out).ok()?.trim().to_owned();
    (!out.is_empty()).then_some(out)
}

/// Separators a card number is commonly written with.
fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'/' | b'_')
}

/// Byte ranges of runs of at least [`PAN_MIN_DIGITS`] digits, separators between them
/// allowed.
fn digit_runs(s: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if !s[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let (start, mut end, mut digits) = (i, i, 0);
        let mut j = i;
        while j < s.len() && (s[j].is_ascii_digit() || is_separator(s[j])) {
            if s[j].is_ascii_digit() {
                digits += 1;
                end = j + 1;
            }
            j += 1;
        }
        if digits >= PAN_MIN_DIGITS {
            runs.push((start, end));
        }
        i = j;
    }
    runs
}

fn longest_digit_run(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut longest = 0;
    let mut current = 0;
    for &b in bytes {
        if b.is_ascii_digit() {
            current += 1;
        } else if !is_separator(b) {
            current = 0;
        }
        longest = longest.max(current);
    }
    longest
}

// In a sibling file: the tests hold card numbers.
#[cfg(test)]
mod tests;
