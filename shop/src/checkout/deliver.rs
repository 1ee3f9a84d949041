//! Step: send the queued reports to the risk sidecar, oldest first, until each is
//! acknowledged; a sidecar that is down or busy is tried again with backoff.

use super::Checkout;
use super::reports;
use super::risk::Delivery;
use crate::error::ShopError;

/// Reports sent per round; the next round follows at once while any are left.
const BATCH: i64 = 50;
const MAX_BACKOFF_SECS: i64 = 600;

impl Checkout {
    /// One round; returns how many reports were handled.
    #[tracing::instrument(name = "Send risk reports", skip(self))]
    pub async fn send_reports(&self) -> Result<usize, ShopError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let due = reports::due(&tx, BATCH).await?;
        for report in &due {
            let delivery = self.risk.report(&report.path, &report.body).await;
            crate::metrics::risk_report(delivery.as_str());
            match delivery {
                Delivery::Accepted(status) => reports::mark_sent(&tx, report.id, status).await?,
                Delivery::Refused(status) => {
                    // 404: the sidecar never decided this attempt (it was down, or the
                    // fallback decided). Anything else is a bug in what we send.
                    if status == 404 {
                        tracing::info!(transaction_id = %report.transaction_id, "The sidecar knows no decision for this report; dropped.");
                    } else {
                        tracing::error!(status, transaction_id = %report.transaction_id, path = %report.path, "The sidecar refused a report.");
                    }
                    reports::give_up(&tx, report.id, status).await?;
                }
                Delivery::Failed(status) => {
                    let delay = 1i64
                        .checked_shl(report.attempts.clamp(0, 20) as u32)
                        .unwrap_or(MAX_BACKOFF_SECS);
                    reports::retry_later(&tx, report.id, status, delay.min(MAX_BACKOFF_SECS)).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(due.len())
    }
}
