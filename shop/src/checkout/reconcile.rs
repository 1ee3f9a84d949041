//! Step: finish what nobody is waiting for any more.

use std::time::Duration;

use super::{Checkout, orders, verification};
use crate::error::ShopError;

impl Checkout {
    /// Finishes orders left `pending` for longer than `older_than` (a crash, a
    /// gateway outage, a shopper who closed the tab mid-payment) and orders whose code
    /// expired unused: the same state machine, so a capture that happened before a
    /// crash is recorded, not repeated.
    #[tracing::instrument(name = "Reconcile stale orders", skip(self))]
    pub async fn reconcile(&self, older_than: Duration) -> Result<usize, ShopError> {
        let client = self.pool.get().await?;
        // A code nobody entered in time ends the wait too: the authorisation is a hold
        // on the shopper's money and must be voided, not left to lapse at the bank.
        verification::expire_overdue(&client).await?;
        let stale = orders::stale(&client, older_than).await?;
        drop(client);
        let mut finished = 0;
        for public_id in stale {
            let client = self.pool.get().await?;
            let order = orders::by_public_id(&client, &public_id).await?;
            drop(client);
            match self.advance(order).await {
                Ok(order) if order.status.is_final() => finished += 1,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "Order still pending."),
            }
        }
        if finished > 0 {
            tracing::info!(finished, "Reconciled stale orders.");
        }
        Ok(finished)
    }
}
