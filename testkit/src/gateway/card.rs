//! A card as the shop sends it for tokenisation. The number lives only in memory, long
//! enough to tokenise it; it has no `Debug`, `Display` or `Serialize`.

use serde::Deserialize;
use time::OffsetDateTime;

/// Why a card was refused: the code goes on the wire, the message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCard {
    pub code: &'static str,
    pub message: &'static str,
}

const fn invalid(code: &'static str, message: &'static str) -> InvalidCard {
    InvalidCard { code, message }
}

pub struct CardNumber(String);

impl CardNumber {
    /// Digits only (spaces and dashes removed), 12–19 of them, Luhn-valid.
    pub fn parse(raw: &str) -> Result<CardNumber, InvalidCard> {
        let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("invalid_number", "the card number must be 12 to 19 digits"));
        }
        if !luhn(&digits) {
            return Err(invalid("invalid_number", "the card number is not valid"));
        }
        Ok(CardNumber(digits))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn bin(&self) -> &str {
        &self.0[..6]
    }

    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }
}

#[derive(Deserialize)]
pub struct CardInput {
    pub number: String,
    pub exp_month: u8,
    pub exp_year: u16,
    pub cvc: String,
}

impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardInput { .. }")
    }
}

impl CardInput {
    /// Number, expiry (end of the month, not in the past) and CVC (3–4 digits).
    pub fn validate(&self) -> Result<CardNumber, InvalidCard> {
        let number = CardNumber::parse(&self.number)?;
        if !(1..=12).contains(&self.exp_month) {
            return Err(invalid("invalid_expiry", "the expiry month must be 1 to 12"));
        }
        let now = OffsetDateTime::now_utc();
        let year = if self.exp_year < 100 {
            2000 + self.exp_year
        } else {
            self.exp_year
        };
        if (i32::from(year), self.exp_month) < (now.year(), u8::from(now.month())) {
            return Err(invalid("expired_card", "the card has expired"));
        }
        if !(3..=4).contains(&self.cvc.len()) || !self.cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("invalid_cvc", "the security code must be 3 or 4 digits"));
        }
        Ok(number)
    }
}

/// Whether a string of ASCII digits passes the Luhn check.
pub fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                if d > 4 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The `n`th of a series of valid card numbers the sandbox approves (the decline
/// numbers are not among them): for tests and benchmarks that need many cards.
pub fn approved_card(n: u32) -> String {
    let stem = format!("4000123{n:08}");
    (0..10u8)
        .map(|d| format!("{stem}{d}"))
        .find(|candidate| luhn(candidate))
        .expect("one check digit fits")
}

// In a sibling file: the tests hold card numbers, and a search for card numbers
// outside tests must come back empty.
#[cfg(test)]
mod tests;
