//! Step: send the queued reports to the risk sidecar, oldest first, until each is
//! acknowledged; a sidecar that is down or busy is tried again with backoff. Reports
//! are claimed under a lease and sent outside any transaction; a crash mid-round sends
//! the unfinished ones again when the lease runs out (the sidecar takes a repeat as
//! the same report).

use super::Checkout;
use super::reports;
use super::risk::Delivery;
use crate::error::ShopError;

/// Reports sent per round; the next round follows at once while any are left.
const BATCH: i64 = 50;
const MAX_BACKOFF_SECS: i64 = 600;
/// Longer than a round can take (50 reports, each at most the report timeout).
const LEASE_SECS: i64 = 300;

impl Checkout {
    /// One round; returns how many reports were handled.
    #[tracing::instrument(name = "Send risk reports", skip(self))]
    pub async fn send_reports(&self) -> Result<usize, ShopError> {
        let client = self.pool.get().await?;
        let mut due = reports::claim(&client, BATCH, LEASE_SECS).await?;
        due.sort_by_key(|r| r.id);
        for report in &due {
            let delivery = self.risk.report(&report.path, &report.body).await;
            crate::metrics::risk_report(delivery.as_str());
            match delivery {
                Delivery::Accepted(status) => reports::mark_sent(&client, report.id, status).await?,
                Delivery::Refused(status) => {
                    // 404: the sidecar never decided this attempt (it was down, or the
                    // fallback decided). Anything else is a bug in what we send.
                    if status == 404 {
                        tracing::info!(transaction_id = %report.transaction_id, "The sidecar knows no decision for this report; dropped.");
                    } else {
                        tracing::error!(status, transaction_id = %report.transaction_id, path = %report.path, "The sidecar refused a report.");
                    }
                    reports::give_up(&client, report.id, status).await?;
                }
                Delivery::Failed(status) => {
                    let delay = 1i64
                        .checked_shl(report.attempts.clamp(0, 20) as u32)
                        .unwrap_or(MAX_BACKOFF_SECS);
                    reports::retry_later(&client, report.id, status, delay.min(MAX_BACKOFF_SECS)).await?;
                }
            }
        }
        Ok(due.len())
    }
}
