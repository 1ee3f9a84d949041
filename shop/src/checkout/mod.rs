//! Checkout: place an order from the cart, ask the risk sidecar, then authorise and
//! capture, challenge or hold for review, or refuse without authorising.
//!
//! [`Checkout::advance`] is the one state machine; each step lives in its own file
//! (`place`, `authorise`, `decide`, `challenge`, `settle`, `reconcile`) and each table
//! has its storage functions (`orders`, `attempts`, `decisions`, `verification`). Each
//! step is idempotent (the gateway by key, the sidecar by transaction id, our rows by
//! unique keys and guarded state changes), so running it again after a double click,
//! a retry or a crash finishes the payment without charging twice.

mod attempts;
mod authorise;
mod challenge;
mod decide;
mod decisions;
mod deliver;
mod device;
mod disputes;
pub mod orders;
mod place;
mod reconcile;
mod reports;
pub mod risk;
mod settle;
pub mod verification;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use serde_json::json;

pub use attempts::AttemptStatus;
pub use challenge::VerifyOutcome;
pub use device::DeviceContext;
pub use orders::{Order, OrderStatus};
pub use reports::Report;
pub use risk::{Delivery, RiskClient, RiskOutcome, RiskSource, Verdict};
pub use verification::VerificationStatus;

use crate::accounts::Identity;
use crate::error::ShopError;
use crate::gateway::{CardInput, GatewayError, PaymentGateway};

#[derive(Debug)]
pub struct CheckoutRequest {
    /// One per checkout form (or API `Idempotency-Key`): a second submission finds the
    /// first order.
    pub checkout_key: String,
    pub card: CardInput,
    pub shipping_country: String,
    pub billing_country: String,
    pub device: DeviceContext,
}

#[derive(Clone)]
pub struct Checkout {
    pool: Pool,
    gateway: Arc<dyn PaymentGateway>,
    risk: RiskClient,
    code_ttl: Duration,
    max_attempts: i32,
    /// Where shoppers open the shop: the link in the code's mail.
    public_url: String,
}

// === impl Checkout ===

impl Checkout {
    pub fn new(
        pool: Pool,
        gateway: Arc<dyn PaymentGateway>,
        risk: RiskClient,
        code_ttl: Duration,
        max_attempts: i32,
        public_url: String,
    ) -> Checkout {
        Checkout {
            pool,
            gateway,
            risk,
            code_ttl,
            max_attempts,
            public_url,
        }
    }

    /// Takes the order as far as it can go now; returns it as it then stands. The
    /// sidecar decides first, so that every attempt is counted, declined cards too,
    /// and a blocked card is never authorised.
    #[tracing::instrument(name = "Advance order", skip_all, fields(order = %order.public_id))]
    pub async fn advance(&self, order: Order) -> Result<Order, ShopError> {
        if order.status.is_final() || order.status == OrderStatus::InReview {
            return Ok(order);
        }
        let client = self.pool.get().await?;
        let mut attempt = attempts::first(&client, order.order_id, &order.public_id).await?;
        drop(client);
        let verdict = self.decision(&order, &attempt).await?;
        if verdict == Verdict::Block {
            self.block(&order, &attempt).await?;
        } else {
            if attempt.status == AttemptStatus::Started {
                attempt = self.authorise(&order, attempt).await?;
            }
            match attempt.status {
                AttemptStatus::Authorised => match verdict {
                    Verdict::Allow => self.capture(&order, &attempt, json!({"decision": "allow"})).await?,
                    Verdict::Challenge => self.challenge(&order, &attempt).await?,
                    Verdict::Review => self.hold_for_review(&order).await?,
                    Verdict::Block => unreachable!("blocked above"),
                },
                // A crash came between the gateway's capture and our commit: record it now.
                AttemptStatus::Captured => {
                    self.finish(&order, &attempt, None, OrderStatus::Paid, json!({"recovered": true}))
                        .await?;
                }
                AttemptStatus::Started => return Err(ShopError::InvalidState),
                status @ (AttemptStatus::Declined | AttemptStatus::Voided | AttemptStatus::Blocked) => {
                    let reason = json!({"reason": status.as_str()});
                    self.finish(&order, &attempt, None, OrderStatus::Rejected, reason)
                        .await?;
                }
            }
        }
        let client = self.pool.get().await?;
        orders::by_public_id(&client, &order.public_id).await
    }

    /// An order of this account (another account's order is "not found").
    pub async fn order_for(&self, identity: &Identity, public_id: &str) -> Result<Order, ShopError> {
        let client = self.pool.get().await?;
        let order = orders::by_public_id(&client, public_id).await?;
        if order.account_id != identity.account_id {
            return Err(ShopError::NotFound);
        }
        Ok(order)
    }

    pub async fn orders_for(&self, identity: &Identity) -> Result<Vec<Order>, ShopError> {
        let client = self.pool.get().await?;
        orders::for_account(&client, identity.account_id).await
    }
}

fn gateway_failure(e: GatewayError) -> ShopError {
    match e {
        GatewayError::Unavailable(e) => ShopError::Unavailable(e.context("payment gateway")),
        other => ShopError::Internal(anyhow::Error::new(other).context("payment gateway")),
    }
}
