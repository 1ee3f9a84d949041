//! `risk_decision`: the decision each payment attempt acted on, from the sidecar or
//! from the fallback policy.

use deadpool_postgres::GenericClient;
use serde_json::json;

use super::risk::{RiskOutcome, RiskSource, Verdict};
use crate::error::ShopError;

/// The decision stored for this attempt, if any.
pub async fn outcome(client: &impl GenericClient, attempt_id: i64) -> Result<Option<Verdict>, ShopError> {
    let row = client
        .query_opt(
            "select outcome from risk_decision where payment_attempt_id = $1",
            &[&attempt_id],
        )
        .await?;
    row.map(|r| {
        let outcome: &str = r.get("outcome");
        Verdict::parse(outcome).ok_or_else(|| anyhow::anyhow!("unknown stored outcome {outcome:?}").into())
    })
    .transpose()
}

/// Stores the attempt's decision unless one is already there (the first one stands).
pub async fn insert(client: &impl GenericClient, attempt_id: i64, outcome: &RiskOutcome) -> Result<(), ShopError> {
    let response = outcome.response.as_ref();
    let (fallback, refused) = match outcome.source {
        RiskSource::Fallback(reason) => (Some(reason.as_str()), None),
        RiskSource::Refused(status) => (None, Some(i32::from(status))),
        RiskSource::Sidecar | RiskSource::Disabled => (None, None),
    };
    let reasons = response.map(|r| json!(r.reasons)).unwrap_or_else(|| json!([]));
    let degraded = response.map(|r| json!(r.degraded)).unwrap_or_else(|| json!([]));
    client
        .execute(
            "insert into risk_decision (payment_attempt_id, source, decision_id, outcome, score, reasons,
               model_version, policy_version, degraded, fallback_reason, refused_status, latency_us)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) on conflict do nothing",
            &[
                &attempt_id,
                &outcome.source.as_str(),
                &response.map(|r| r.decision_id.clone()),
                &outcome.verdict.as_str(),
                &response.map(|r| r.score),
                &reasons,
                &response.map(|r| r.model_version.clone()),
                &response.map(|r| r.policy_version.clone()),
                &degraded,
                &fallback,
                &refused,
                &(outcome.latency.as_micros() as i64),
            ],
        )
        .await?;
    Ok(())
}
