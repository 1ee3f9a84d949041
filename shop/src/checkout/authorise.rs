//! Step: ask the gateway to authorise (hold) the order's amount on the card.

use super::attempts::{self, Attempt, AttemptStatus};
use super::reports::Report;
use super::{Checkout, Order, gateway_failure};
use crate::error::ShopError;
use crate::gateway::Authorisation;
use shared::OutcomeStatus;

impl Checkout {
    pub(super) async fn authorise(&self, order: &Order, mut attempt: Attempt) -> Result<Attempt, ShopError> {
        let result = self
            .gateway
            .authorise(&attempt.key, &order.card_token, order.total_minor, &order.currency)
            .await
            .map_err(gateway_failure)?;
        let (status, authorisation_id, decline) = match result {
            Authorisation::Approved { authorisation_id } => (AttemptStatus::Authorised, Some(authorisation_id), None),
            Authorisation::Declined { code } => {
                crate::metrics::checkout_outcome("declined");
                (AttemptStatus::Declined, None, Some(code))
            }
        };
        let outcome = match &decline {
            None => Report::Outcome {
                status: OutcomeStatus::Authorised,
                code: None,
            },
            Some(code) => Report::Outcome {
                status: OutcomeStatus::Declined,
                code: Some(code.clone()),
            },
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        attempts::record_authorisation(&tx, attempt.id, status, authorisation_id.as_deref(), decline.as_deref())
            .await?;
        self.report(&tx, &attempt.key, &outcome).await?;
        tx.commit().await?;
        attempt.status = status;
        attempt.authorisation_id = authorisation_id;
        Ok(attempt)
    }
}
