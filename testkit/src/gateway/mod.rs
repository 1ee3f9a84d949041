//! The sandbox payment gateway: a faithful local fake of a card processor, run as its
//! own process (`sandbox-gateway`, for `make run` and the browser test) or inside a
//! test (`SandboxGateway::start`). The shop reaches it only over HTTP, so its books and
//! its fingerprint key are out of the shop's reach, as a real gateway's are.
//!
//! Test numbers (any future expiry, any CVC), as processors' sandboxes have them:
//! `4000 0000 0000 0002` is declined (`card_declined`), `4000 0000 0000 9995` declined
//! for `insufficient_funds`; every other valid number is approved.
//!
//! API (JSON; every money-moving call takes an `Idempotency-Key` header, and the same
//! key again returns the first answer and moves nothing):
//! - `POST /v1/tokens` `{number, exp_month, exp_year, cvc}` → `201 {token, fingerprint,
//!   bin, last4}`; `422 {error: {code, message}}` for a card it refuses.
//! - `POST /v1/authorisations` `{token, amount_minor, currency}` → `200
//!   {authorisation_id, status: authorised | declined, decline_code}`.
//! - `POST /v1/authorisations/{id}/{capture | void | refund}` → `200 {authorisation_id,
//!   status}`; `404` unknown, `409 wrong_state`.
//! - `GET /v1/authorisations?idempotency_key=…` → the authorisation and its operations.
//! - `GET /v1/events?after=<sequence>` → `{events: [{sequence, kind, dispute}]}`: disputes
//!   opened, won and lost, oldest first (at most 100).
//! - Test hooks, playing the cardholder's bank: `POST /test/disputes {authorisation_id,
//!   reason}` opens a dispute on a captured payment (`201`); `POST
//!   /test/disputes/{id}/close {outcome: won | lost}` closes it.
//!
//! The books live in memory: a restarted sandbox is a fresh sandbox account.

mod card;
mod dispute;
mod server;

pub use card::{CardInput, CardNumber, InvalidCard, approved_card, luhn};
pub use dispute::{Dispute, Event};
pub use server::SandboxGateway;

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

const DECLINES: &[(&str, &str)] = &[
    ("4000000000000002", "card_declined"),
    ("4000000000009995", "insufficient_funds"),
];

#[derive(Debug, Clone, Serialize)]
pub struct Token {
    pub token: String,
    /// Stable for one card number (keyed by the gateway's own secret).
    pub fingerprint: String,
    pub bin: String,
    pub last4: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Authorisation {
    pub authorisation_id: String,
    pub idempotency_key: String,
    pub amount_minor: i64,
    pub currency: String,
    /// `authorised`, `declined`, `captured`, `voided`, `refunded`.
    pub status: String,
    pub decline_code: Option<String>,
    /// `(kind, idempotency key)` of every capture, void and refund, in order.
    pub operations: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Capture,
    Void,
    Refund,
}

impl Operation {
    pub fn parse(s: &str) -> Option<Operation> {
        Some(match s {
            "capture" => Operation::Capture,
            "void" => Operation::Void,
            "refund" => Operation::Refund,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Operation::Capture => "capture",
            Operation::Void => "void",
            Operation::Refund => "refund",
        }
    }

    /// The state it starts from and the one it leaves.
    fn moves(self) -> (&'static str, &'static str) {
        match self {
            Operation::Capture => ("authorised", "captured"),
            Operation::Void => ("authorised", "voided"),
            Operation::Refund => ("captured", "refunded"),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum BooksError {
    UnknownToken,
    UnknownAuthorisation,
    /// The authorisation is in this state, not the one the operation needs.
    WrongState(String),
}

struct Card {
    behaviour: &'static str,
}

#[derive(Default)]
struct Inner {
    cards: HashMap<String, Card>,
    authorisations: HashMap<String, Authorisation>,
    by_key: HashMap<String, String>,
    disputes: HashMap<String, Dispute>,
    events: Vec<Event>,
}

/// Each half-byte as a letter `a`–`p`: a fingerprint in hex holds a run of 13 or more
/// digits passing the Luhn check about once in 160 cards, which the risk sidecar rightly
/// refuses as a card number; real gateways' fingerprints are letters and digits mixed,
/// with such runs as rare as this encoding makes them (never).
pub fn letters(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0f])
        .map(|nibble| char::from(b'a' + nibble))
        .collect()
}

/// The inverse of [`letters`]; `None` for anything else.
pub fn from_letters(s: &str) -> Option<Vec<u8>> {
    let nibble = |c: u8| (b'a'..=b'p').contains(&c).then(|| c - b'a');
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2).map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?)).collect()
}

/// The gateway's books: cards by token, authorisations and their operations.
pub struct Books {
    fingerprint_key: Vec<u8>,
    inner: Mutex<Inner>,
}

impl Books {
    pub fn new(fingerprint_key: &[u8]) -> Books {
        Books {
            fingerprint_key: fingerprint_key.to_vec(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fingerprint(&self, number: &CardNumber) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.fingerprint_key).expect("HMAC takes a key of any length");
        mac.update(number.expose().as_bytes());
        format!("fp_{}", letters(&mac.finalize().into_bytes()[..16]))
    }

    pub fn tokenise(&self, card: &CardInput) -> Result<Token, InvalidCard> {
        let number = card.validate()?;
        let behaviour = DECLINES
            .iter()
            .find(|(n, _)| *n == number.expose())
            .map(|(_, code)| *code)
            .unwrap_or("approve");
        let token = Token {
            token: format!("tok_{}", ulid::Ulid::new().to_string().to_lowercase()),
            fingerprint: self.fingerprint(&number),
            bin: number.bin().to_owned(),
            last4: number.last4().to_owned(),
        };
        self.lock().cards.insert(token.token.clone(), Card { behaviour });
        Ok(token)
    }

    pub fn authorise(
        &self,
        key: &str,
        token: &str,
        amount_minor: i64,
        currency: &str,
    ) -> Result<Authorisation, BooksError> {
        let mut inner = self.lock();
        if let Some(id) = inner.by_key.get(key) {
            return Ok(inner.authorisations[id].clone());
        }
        let behaviour = inner.cards.get(token).ok_or(BooksError::UnknownToken)?.behaviour;
        let (status, decline_code) = match behaviour {
            "approve" => ("authorised", None),
            code => ("declined", Some(code.to_owned())),
        };
        let authorisation = Authorisation {
            authorisation_id: format!("auth_{}", ulid::Ulid::new().to_string().to_lowercase()),
            idempotency_key: key.to_owned(),
            amount_minor,
            currency: currency.to_owned(),
            status: status.to_owned(),
            decline_code,
            operations: Vec::new(),
        };
        inner
            .by_key
            .insert(key.to_owned(), authorisation.authorisation_id.clone());
        inner
            .authorisations
            .insert(authorisation.authorisation_id.clone(), authorisation.clone());
        Ok(authorisation)
    }

    /// Captures, voids or refunds the whole amount, once per idempotency key.
    pub fn settle(&self, operation: Operation, key: &str, authorisation_id: &str) -> Result<Authorisation, BooksError> {
        let mut inner = self.lock();
        let authorisation = inner
            .authorisations
            .get_mut(authorisation_id)
            .ok_or(BooksError::UnknownAuthorisation)?;
        let done = authorisation
            .operations
            .iter()
            .any(|(kind, k)| kind == operation.as_str() && k == key);
        if done {
            return Ok(authorisation.clone()); // The same request again: the first answer stands.
        }
        let (from, to) = operation.moves();
        if authorisation.status != from {
            return Err(BooksError::WrongState(authorisation.status.clone()));
        }
        authorisation.status = to.to_owned();
        authorisation
            .operations
            .push((operation.as_str().to_owned(), key.to_owned()));
        Ok(authorisation.clone())
    }

    /// The authorisation made with this idempotency key (`<order>:pay_1`), if any.
    pub fn authorisation(&self, key: &str) -> Option<Authorisation> {
        let inner = self.lock();
        inner.by_key.get(key).map(|id| inner.authorisations[id].clone())
    }

    /// How many operations of this kind the authorisation made with `key` has had.
    pub fn operations(&self, key: &str, kind: &str) -> usize {
        self.authorisation(key)
            .map_or(0, |a| a.operations.iter().filter(|(k, _)| k == kind).count())
    }
}
