//! Step: read the gateway's event feed and act on disputes. An opened dispute is
//! reported to the sidecar as the outcome `disputed`; a lost one as the label
//! `chargeback` (fraud), which is what the model learns from. The feed's position is
//! kept in the same transaction as what each event did, so none is acted on twice.

use deadpool_postgres::GenericClient;
use shared::{Label, LabelSource, OutcomeStatus};

use super::Checkout;
use super::reports::Report;
use crate::error::ShopError;
use crate::gateway::GatewayEvent;

impl Checkout {
    /// One pass over the events after the stored position; returns how many were read.
    #[tracing::instrument(name = "Sync gateway events", skip(self))]
    pub async fn sync_disputes(&self) -> Result<usize, ShopError> {
        let client = self.pool.get().await?;
        let after: i64 = client
            .query_one("select last_sequence from gateway_event_cursor", &[])
            .await?
            .get(0);
        drop(client);
        let events = self.gateway.events(after).await.map_err(super::gateway_failure)?;
        for event in &events {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            // Guarded by the position: a concurrent pass that got here first wins.
            let moved = tx
                .execute(
                    "update gateway_event_cursor set last_sequence = $1 where last_sequence < $1",
                    &[&event.sequence],
                )
                .await?;
            if moved == 1 {
                self.apply(&tx, event).await?;
            }
            tx.commit().await?;
        }
        Ok(events.len())
    }

    async fn apply(&self, tx: &impl GenericClient, event: &GatewayEvent) -> Result<(), ShopError> {
        let d = &event.dispute;
        let attempt = tx
            .query_opt(
                "select payment_attempt_id from payment_attempt where idempotency_key = $1",
                &[&d.idempotency_key],
            )
            .await?;
        let Some(attempt) = attempt else {
            tracing::warn!(dispute = %d.dispute_id, "A dispute on a payment this shop does not know; skipped.");
            return Ok(());
        };
        let attempt_id: i64 = attempt.get(0);
        let transaction_id = &d.idempotency_key;
        match event.kind.as_str() {
            "dispute.opened" => {
                tx.execute(
                    "insert into payment_dispute (dispute_id, payment_attempt_id, reason, status)
                     values ($1, $2, $3, 'open') on conflict do nothing",
                    &[&d.dispute_id, &attempt_id, &d.reason],
                )
                .await?;
                let report = Report::Outcome {
                    status: OutcomeStatus::Disputed,
                    code: Some(d.reason.clone()),
                };
                self.report(tx, transaction_id, &report).await?;
                crate::metrics::dispute("opened");
            }
            kind @ ("dispute.won" | "dispute.lost") => {
                let status = if kind == "dispute.won" { "won" } else { "lost" };
                tx.execute(
                    "update payment_dispute set status = $2, closed_at = now() where dispute_id = $1",
                    &[&d.dispute_id, &status],
                )
                .await?;
                if status == "lost" {
                    let report = Report::Label {
                        label: Label::Fraud,
                        source: LabelSource::Chargeback,
                        reason: Some(format!("dispute lost: {}", d.reason)),
                    };
                    self.report(tx, transaction_id, &report).await?;
                }
                crate::metrics::dispute(status);
            }
            other => tracing::debug!(kind = other, "Gateway event skipped."),
        }
        Ok(())
    }
}
