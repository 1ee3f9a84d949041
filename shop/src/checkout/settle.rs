//! Step: capture or void the authorisation, and record the order's final state.

use shared::OutcomeStatus;

use super::attempts::{self, Attempt, AttemptStatus};
use super::reports::{self, Report};
use super::{Checkout, Order, OrderStatus, gateway_failure, orders};
use crate::error::ShopError;

impl Checkout {
    pub(super) async fn capture(
        &self,
        order: &Order,
        attempt: &Attempt,
        detail: serde_json::Value,
    ) -> Result<(), ShopError> {
        let authorisation = attempt.authorisation_id.as_deref().ok_or(ShopError::InvalidState)?;
        self.gateway
            .capture(&format!("{}:capture", attempt.key), authorisation)
            .await
            .map_err(gateway_failure)?;
        if self
            .finish(order, attempt, Some(AttemptStatus::Captured), OrderStatus::Paid, detail)
            .await?
        {
            crate::metrics::checkout_outcome("paid");
        }
        Ok(())
    }

    pub(super) async fn void_and_reject(
        &self,
        order: &Order,
        attempt: &Attempt,
        detail: serde_json::Value,
    ) -> Result<(), ShopError> {
        let authorisation = attempt.authorisation_id.as_deref().ok_or(ShopError::InvalidState)?;
        self.gateway
            .void(&format!("{}:void", attempt.key), authorisation)
            .await
            .map_err(gateway_failure)?;
        self.finish(
            order,
            attempt,
            Some(AttemptStatus::Voided),
            OrderStatus::Rejected,
            detail,
        )
        .await?;
        Ok(())
    }

    /// The sidecar blocked the payment: nothing to authorise, the order ends. (An
    /// attempt authorised before the decision, by an older build, is voided.)
    pub(super) async fn block(&self, order: &Order, attempt: &Attempt) -> Result<(), ShopError> {
        let detail = serde_json::json!({"reason": "blocked"});
        let moved = match attempt.status {
            AttemptStatus::Authorised => {
                self.void_and_reject(order, attempt, detail).await?;
                true
            }
            AttemptStatus::Started => {
                self.finish(
                    order,
                    attempt,
                    Some(AttemptStatus::Blocked),
                    OrderStatus::Rejected,
                    detail,
                )
                .await?
            }
            _ => self.finish(order, attempt, None, OrderStatus::Rejected, detail).await?,
        };
        if moved {
            crate::metrics::checkout_outcome("blocked");
        }
        Ok(())
    }

    /// The sidecar could not judge our request: keep the authorisation, capture
    /// nothing, and leave the order to a person.
    pub(super) async fn hold_for_review(&self, order: &Order) -> Result<(), ShopError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let moved = orders::transition(
            &tx,
            order.order_id,
            &[OrderStatus::Pending],
            OrderStatus::InReview,
            serde_json::json!({"decision": "review"}),
        )
        .await?;
        tx.commit().await?;
        if moved {
            crate::metrics::checkout_outcome("held_for_review");
        }
        Ok(())
    }

    /// Records the attempt's new status and the order's final state in one
    /// transaction; whether this call made the move.
    pub(super) async fn finish(
        &self,
        order: &Order,
        attempt: &Attempt,
        attempt_status: Option<AttemptStatus>,
        to: OrderStatus,
        detail: serde_json::Value,
    ) -> Result<bool, ShopError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if let Some(status) = attempt_status {
            attempts::set_status(&tx, attempt.id, status).await?;
        }
        let from = [OrderStatus::Pending, OrderStatus::AwaitingVerification];
        let moved = orders::transition(&tx, order.order_id, &from, to, detail).await?;
        let status = match (attempt_status, to) {
            (_, OrderStatus::Paid) => Some(OutcomeStatus::Captured),
            (Some(AttemptStatus::Voided), _) => Some(OutcomeStatus::Voided),
            _ => None,
        };
        if let Some(status) = status {
            self.report(&tx, &attempt.key, &Report::Outcome { status, code: None })
                .await?;
        }
        tx.commit().await?;
        Ok(moved)
    }
}

impl Checkout {
    /// Queues a report for the sidecar in the caller's transaction (none when risk
    /// checks are off: the sidecar decided nothing).
    pub(super) async fn report(
        &self,
        tx: &impl deadpool_postgres::GenericClient,
        transaction_id: &str,
        report: &Report,
    ) -> Result<(), ShopError> {
        if self.risk.enabled() {
            reports::enqueue(tx, transaction_id, report).await?;
        }
        Ok(())
    }
}
