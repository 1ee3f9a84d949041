//! What became known after a decision: labels (`POST /v1/feedback`) and payment
//! outcomes (`POST /v1/decisions/{id}/outcome`), kept in the decision log's database.
//!
//! A label or an outcome is acknowledged only once committed: when PostgreSQL cannot
//! take it, the answer is 503 with `Retry-After`, never a 202 that is then lost. The
//! decision it names must be known: in the log, or still on its way there (spooled, or
//! in the velocity store and queued; a decision whose log row was dropped, counted in
//! `risk_decision_log_rows_dropped_total`, stays known this way). Only a decision in the
//! log is checked for `occurred_at` not being before the transaction.

pub mod input;
pub mod rows;

use std::time::Duration;

use shared::{FeedbackResponse, OutcomeResponse};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use self::input::{LabelInput, OutcomeInput};
use crate::decision_log::DecisionLog;
use crate::decision_log::rows::{LoggedDecision, find_decision};
use crate::error::ApiError;
use crate::store::VelocityStore;

/// How long a label waits for its decision to leave the writer's queue (the writer
/// flushes every `decision_log.flush_interval_ms`).
const WAIT_FOR_LOG: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(50);

/// Why a label or an outcome cannot be recorded now.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("no decision log is configured, so labels and outcomes cannot be kept")]
    NotConfigured,
    #[error("the decision log's database is unavailable")]
    Pool(#[source] deadpool_postgres::PoolError),
    #[error("the decision log's database is unavailable")]
    Postgres(#[source] tokio_postgres::Error),
    #[error("the velocity store cannot tell whether this transaction was decided")]
    Store(#[source] crate::store::StoreError),
}

pub async fn record_label(
    log: Option<&DecisionLog>,
    store: &VelocityStore,
    label: LabelInput,
) -> Result<FeedbackResponse, ApiError> {
    let log = log.ok_or(ApiError::LogUnavailable(Unavailable::NotConfigured))?;
    let (client, decision) = locate(log, store, &label.transaction_id).await?;
    not_before(decision.as_ref(), label.occurred_at_ms)?;
    let (recorded_at, new) = rows::insert_label(&**client, &label)
        .await
        .map_err(|e| ApiError::LogUnavailable(Unavailable::Postgres(e)))?;
    if new {
        crate::metrics::label_recorded(label.label, label.source);
    }
    Ok(FeedbackResponse {
        transaction_id: label.transaction_id,
        label: label.label,
        source: label.source,
        recorded_at: rfc3339(recorded_at),
    })
}

pub async fn record_outcome(
    log: Option<&DecisionLog>,
    store: &VelocityStore,
    outcome: OutcomeInput,
) -> Result<OutcomeResponse, ApiError> {
    let log = log.ok_or(ApiError::LogUnavailable(Unavailable::NotConfigured))?;
    let (client, decision) = locate(log, store, &outcome.transaction_id).await?;
    not_before(decision.as_ref(), outcome.occurred_at_ms)?;
    let (recorded_at, new) = rows::insert_outcome(&**client, &outcome)
        .await
        .map_err(|e| ApiError::LogUnavailable(Unavailable::Postgres(e)))?;
    if new {
        crate::metrics::outcome_recorded(outcome.status);
    }
    Ok(OutcomeResponse {
        transaction_id: outcome.transaction_id,
        status: outcome.status,
        recorded_at: rfc3339(recorded_at),
    })
}

/// A connection to record against, and the transaction's decision if it is in the log
/// (`None`: known, still on its way there). 404 when nothing knows the decision.
async fn locate(
    log: &DecisionLog,
    store: &VelocityStore,
    transaction_id: &str,
) -> Result<(deadpool_postgres::Object, Option<LoggedDecision>), ApiError> {
    let unavailable = ApiError::LogUnavailable;
    let client = log.pool.get().await.map_err(|e| unavailable(Unavailable::Pool(e)))?;
    let find = || async {
        find_decision(&**client, transaction_id)
            .await
            .map_err(|e| unavailable(Unavailable::Postgres(e)))
    };
    if let Some(found) = find().await? {
        return Ok((client, Some(found)));
    }
    if log.spooled.lock().contains(transaction_id) {
        return Ok((client, None));
    }
    match store.get_decision(transaction_id).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(ApiError::NotFound("no decision for this transaction id")),
        Err(e) => return Err(unavailable(Unavailable::Store(e))),
    }
    // Decided: give the writer a moment, so the time check can be made against the row.
    let deadline = tokio::time::Instant::now() + WAIT_FOR_LOG;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        if let Some(found) = find().await? {
            return Ok((client, Some(found)));
        }
    }
    Ok((client, None))
}

/// What became known about a transaction cannot have happened before it.
fn not_before(decision: Option<&LoggedDecision>, at_ms: i64) -> Result<(), ApiError> {
    if decision.is_some_and(|d| at_ms < d.occurred_at_ms) {
        return Err(ApiError::Validation {
            field: Some("occurred_at".to_owned()),
            message: "occurred_at is before the transaction".to_owned(),
        });
    }
    Ok(())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}
