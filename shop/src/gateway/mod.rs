//! The payment gateway interface, and the sandbox gateway built in.
//!
//! Every operation carries an idempotency key: calling it again with the same key
//! returns the first result and moves no money. That is what makes a double click, a
//! browser retry or a crash between capture and commit charge exactly once.

mod card;
mod sandbox;

pub use card::{CardInput, CardNumber};
pub use sandbox::SandboxGateway;

use std::future::Future;
use std::pin::Pin;

/// What the shop keeps of a card: never the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardToken {
    pub token: String,
    /// Stable for one card number across tokens: what velocity counters key on.
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
    #[error("invalid card: {0}")]
    InvalidCard(&'static str),
    #[error("unknown authorisation")]
    UnknownAuthorisation,
    #[error("authorisation is {0}, not authorised")]
    WrongState(String),
    #[error("gateway unavailable")]
    Unavailable(#[source] anyhow::Error),
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
}
