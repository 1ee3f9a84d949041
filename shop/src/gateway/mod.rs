//! The payment gateway interface, and its HTTP client.
//!
//! Every operation carries an idempotency key: calling it again with the same key
//! returns the first result and moves no money. That is what makes a double click, a
//! browser retry or a crash between capture and commit charge exactly once.
//!
//! The gateway is another service (here the sandbox, `testkit::gateway`): it keeps the
//! card data and the key of the card fingerprints, neither of which the shop can read.

mod http;

pub use http::HttpGateway;

use std::future::Future;
use std::pin::Pin;

use serde::Deserialize;

/// A card as typed into the checkout form, passed to the gateway to tokenise and then
/// dropped. No `Debug` output, `Display` or `Serialize` that could show the number.
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

/// What the shop keeps of a card: never the number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CardToken {
    pub token: String,
    /// The gateway's: stable for one card number across tokens, made with a key only
    /// the gateway holds. What velocity counters key on.
    pub fingerprint: String,
    pub bin: String,
    pub last4: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorisation {
    Approved { authorisation_id: String },
    Declined { code: String },
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The gateway refused the card; the message is ours, for the shopper.
    #[error("invalid card: {0}")]
    InvalidCard(&'static str),
    #[error("unknown authorisation")]
    UnknownAuthorisation,
    #[error("authorisation is {0}, not in a state for this")]
    WrongState(String),
    #[error("gateway unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("unexpected gateway answer")]
    Protocol(#[source] anyhow::Error),
}

pub type GatewayFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, GatewayError>> + Send + 'a>>;

/// A payment processor. Implementations must honour idempotency keys.
pub trait PaymentGateway: Send + Sync {
    /// Exchanges the card the shopper typed for a token; the number goes no further.
    fn tokenise<'a>(&'a self, card: CardInput) -> GatewayFuture<'a, CardToken>;
    fn authorise<'a>(
        &'a self,
        idempotency_key: &'a str,
        token: &'a str,
        amount_minor: i64,
        currency: &'a str,
    ) -> GatewayFuture<'a, Authorisation>;
    /// Captures the whole authorised amount.
    fn capture<'a>(&'a self, idempotency_key: &'a str, authorisation_id: &'a str) -> GatewayFuture<'a, ()>;
    fn void<'a>(&'a self, idempotency_key: &'a str, authorisation_id: &'a str) -> GatewayFuture<'a, ()>;
    fn refund<'a>(&'a self, idempotency_key: &'a str, authorisation_id: &'a str) -> GatewayFuture<'a, ()>;
    /// The gateway's events after `sequence` (disputes opened, won, lost), oldest first.
    fn events<'a>(&'a self, after: i64) -> GatewayFuture<'a, Vec<GatewayEvent>>;
}

/// One entry of the gateway's event feed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GatewayEvent {
    pub sequence: i64,
    /// `dispute.opened`, `dispute.won`, `dispute.lost`; others are skipped.
    pub kind: String,
    pub dispute: DisputeInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DisputeInfo {
    pub dispute_id: String,
    /// Our idempotency key of the authorisation: the payment attempt's key.
    pub idempotency_key: String,
    pub reason: String,
}
