//! Step: step-up verification. A code is sent once; the shopper's right code captures,
//! too many wrong ones or an expired one void the authorisation.

use serde_json::json;

use shared::{Label, LabelSource};

use super::attempts::{self, Attempt};
use super::reports::Report;
use super::verification::{self, VerificationStatus};
use super::{Checkout, Order, OrderStatus, orders};
use crate::accounts::Identity;
use crate::error::ShopError;

#[derive(Debug)]
pub enum VerifyOutcome {
    Passed(Order),
    WrongCode {
        remaining: i32,
    },
    /// Too many wrong codes, or expired: the authorisation is voided.
    Failed(Order),
}

impl Checkout {
    /// Sends a code once and waits for the shopper; a code already decided moves on.
    pub(super) async fn challenge(&self, order: &Order, attempt: &Attempt) -> Result<(), ShopError> {
        let mut client = self.pool.get().await?;
        match verification::status(&client, order.order_id).await? {
            Some(VerificationStatus::Passed) => {
                return self.capture(order, attempt, json!({"verification": "passed"})).await;
            }
            Some(status @ (VerificationStatus::Failed | VerificationStatus::Expired)) => {
                let detail = json!({"reason": format!("verification_{}", status.as_str())});
                return self.void_and_reject(order, attempt, detail).await;
            }
            Some(VerificationStatus::Pending) => return Ok(()),
            None => {}
        }
        let code = verification::new_code();
        let tx = client.transaction().await?;
        let code_hash = verification::hash(&order.public_id, &code);
        if verification::create(&tx, order.order_id, &code_hash, self.code_ttl, self.max_attempts).await? {
            let email = crate::accounts::profile(&tx, order.account_id).await?.email;
            let minutes = self.code_ttl.as_secs().div_ceil(60);
            verification::send(
                &tx,
                &email,
                "Your verification code",
                &format!(
                    "Enter {code} at {}/orders/{}/verify to confirm your order. The code is valid for {minutes} minutes.",
                    self.public_url, order.public_id
                ),
            )
            .await?;
            orders::transition(
                &tx,
                order.order_id,
                &[OrderStatus::Pending],
                OrderStatus::AwaitingVerification,
                json!({"decision": "challenge"}),
            )
            .await?;
            crate::metrics::checkout_outcome("challenged");
        }
        tx.commit().await?;
        Ok(())
    }

    /// Checks a one-time code; the right one captures, too many wrong ones or an
    /// expired one void the authorisation.
    #[tracing::instrument(name = "Verify code", skip_all, fields(order = %public_id))]
    pub async fn verify(&self, identity: &Identity, public_id: &str, code: &str) -> Result<VerifyOutcome, ShopError> {
        let order = self.order_for(identity, public_id).await?;
        match order.status {
            OrderStatus::AwaitingVerification => {}
            OrderStatus::Paid => return Ok(VerifyOutcome::Passed(order)),
            _ => return Err(ShopError::InvalidState),
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let current = verification::lock(&tx, order.order_id).await?;
        let (new_status, wrong) = if current.status != VerificationStatus::Pending {
            (current.status, false)
        } else if current.expired {
            (VerificationStatus::Expired, false)
        } else if verification::matches(&order.public_id, code, &current.code_hash) {
            (VerificationStatus::Passed, false)
        } else if current.attempts + 1 >= current.max_attempts {
            (VerificationStatus::Failed, true)
        } else {
            (VerificationStatus::Pending, true)
        };
        verification::record_guess(&tx, order.order_id, new_status, wrong).await?;
        // What the challenge showed (an expired code shows nothing).
        let label = match new_status {
            VerificationStatus::Passed => Some((Label::Legitimate, LabelSource::ChallengePassed)),
            VerificationStatus::Failed => Some((Label::Fraud, LabelSource::ChallengeFailed)),
            VerificationStatus::Pending | VerificationStatus::Expired => None,
        };
        if let Some((label, source)) = label
            && current.status == VerificationStatus::Pending
        {
            let attempt = attempts::first(&tx, order.order_id, &order.public_id).await?;
            let report = Report::Label {
                label,
                source,
                reason: None,
            };
            self.report(&tx, &attempt.key, &report).await?;
        }
        tx.commit().await?;
        drop(client);
        crate::metrics::checkout_outcome(match new_status {
            VerificationStatus::Pending => {
                return Ok(VerifyOutcome::WrongCode {
                    remaining: current.max_attempts - current.attempts - 1,
                });
            }
            VerificationStatus::Passed => "verification_passed",
            VerificationStatus::Expired => "verification_expired",
            VerificationStatus::Failed => "verification_failed",
        });
        let order = self.advance(order).await?;
        Ok(match order.status {
            OrderStatus::Paid => VerifyOutcome::Passed(order),
            _ => VerifyOutcome::Failed(order),
        })
    }
}
