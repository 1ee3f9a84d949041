//! The outbox of reports to the risk sidecar: payment outcomes and labels, written in
//! the transaction of the change they report, sent until acknowledged.

use deadpool_postgres::GenericClient;
use shared::{Label, LabelSource, OutcomeStatus};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ShopError;

/// One fact about a payment attempt (the sidecar's transaction).
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Outcome {
        status: OutcomeStatus,
        code: Option<String>,
    },
    Label {
        label: Label,
        source: LabelSource,
        reason: Option<String>,
    },
}

impl Report {
    fn kind(&self) -> &'static str {
        match self {
            Report::Outcome { .. } => "outcome",
            Report::Label { .. } => "label",
        }
    }

    fn fact(&self) -> String {
        match self {
            Report::Outcome { status, .. } => format!("outcome:{}", status.as_str()),
            Report::Label { source, .. } => format!("label:{}", source.as_str()),
        }
    }

    /// The body as the contract has it, with the time the fact became true: a retry
    /// hours later still says when it happened.
    fn body(&self, transaction_id: &str, at: OffsetDateTime) -> serde_json::Value {
        let occurred_at = at.format(&Rfc3339).unwrap_or_default();
        match self {
            Report::Outcome { status, code } => {
                let mut body = serde_json::json!({"status": status.as_str(), "occurred_at": occurred_at});
                if let Some(code) = code {
                    body["code"] = code.as_str().into();
                }
                body
            }
            Report::Label { label, source, reason } => {
                let mut body = serde_json::json!({
                    "transaction_id": transaction_id,
                    "label": label.as_str(),
                    "source": source.as_str(),
                    "occurred_at": occurred_at,
                    "reported_by": "shop",
                });
                if let Some(reason) = reason {
                    body["reason"] = reason.as_str().into();
                }
                body
            }
        }
    }
}

/// Queues a report; the same fact again is a no-op.
pub async fn enqueue(client: &impl GenericClient, transaction_id: &str, report: &Report) -> Result<(), ShopError> {
    let body = report.body(transaction_id, OffsetDateTime::now_utc());
    client
        .execute(
            "insert into risk_report (transaction_id, kind, body, fact) values ($1, $2, $3, $4)
             on conflict (transaction_id, fact) do nothing",
            &[&transaction_id, &report.kind(), &body, &report.fact()],
        )
        .await?;
    Ok(())
}

/// A queued report, due now.
#[derive(Debug)]
pub struct Due {
    pub id: i64,
    pub transaction_id: String,
    pub path: String,
    pub body: serde_json::Value,
    pub attempts: i32,
}

/// Claims up to `limit` due reports for `lease_secs`: they are not due again for that
/// long, so another sender (or this one after a crash) takes them only once the lease
/// runs out. Committed at once; nothing is held open while the reports are sent.
pub async fn claim(client: &impl GenericClient, limit: i64, lease_secs: i64) -> Result<Vec<Due>, ShopError> {
    let rows = client
        .query(
            "update risk_report r set next_attempt_at = now() + make_interval(secs => $2)
               from (select risk_report_id from risk_report
                      where sent_at is null and given_up_at is null and next_attempt_at <= now()
                      order by risk_report_id limit $1 for update skip locked) due
              where r.risk_report_id = due.risk_report_id
             returning r.risk_report_id, r.transaction_id, r.kind, r.body, r.attempts",
            &[&limit, &(lease_secs as f64)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let transaction_id: String = r.get("transaction_id");
            let kind: String = r.get("kind");
            let path = match kind.as_str() {
                "outcome" => format!("/v1/decisions/{transaction_id}/outcome"),
                _ => "/v1/feedback".to_owned(),
            };
            Due {
                id: r.get("risk_report_id"),
                transaction_id,
                path,
                body: r.get("body"),
                attempts: r.get("attempts"),
            }
        })
        .collect())
}

pub async fn mark_sent(client: &impl GenericClient, id: i64, status: u16) -> Result<(), ShopError> {
    client
        .execute(
            "update risk_report set sent_at = now(), attempts = attempts + 1, last_status = $2 where risk_report_id = $1",
            &[&id, &i32::from(status)],
        )
        .await?;
    Ok(())
}

pub async fn give_up(client: &impl GenericClient, id: i64, status: u16) -> Result<(), ShopError> {
    client
        .execute(
            "update risk_report set given_up_at = now(), attempts = attempts + 1, last_status = $2
              where risk_report_id = $1",
            &[&id, &i32::from(status)],
        )
        .await?;
    Ok(())
}

/// Tries again after `delay_secs`; `status` 0 when no answer came.
pub async fn retry_later(client: &impl GenericClient, id: i64, status: u16, delay_secs: i64) -> Result<(), ShopError> {
    client
        .execute(
            "update risk_report set attempts = attempts + 1, last_status = nullif($2, 0),
                    next_attempt_at = now() + make_interval(secs => $3)
              where risk_report_id = $1",
            &[&id, &i32::from(status), &(delay_secs as f64)],
        )
        .await?;
    Ok(())
}
