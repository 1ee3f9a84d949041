//! What became known after a decision: labels (`POST /v1/feedback`) and payment
//! outcomes (`POST /v1/decisions/{id}/outcome`), kept in the decision log's database.
//!
//! A label or an outcome is acknowledged only once committed: when PostgreSQL cannot
//! take it, the answer is 503 with `Retry-After`, never a 202 that is then lost. The
//! decision it names must be known: in the log, or still on its way there (spooled, or
//! in the velocity store and queued; a decision whose log row was dropped, counted in
//! `risk_decision_log_rows_dropped_total`, stays known this way). Only a decision in the
//! log is checked for `occurred_at` not being before the transaction.
//!
//! A label then sets the label counters of its transaction's entities (card, customer,
//! IP, device, e-mail) to the transaction's label as it now stands, and a decline
//! counts for them, from the entities the log row names. A label or a decline that is
//! kept but could not be counted answers 503 too: sent again, it is not recorded twice
//! and is counted then. Labels of one transaction are serialised (an advisory lock), so
//! the counters end at the label of highest precedence whatever the arrival order.

pub mod input;
pub mod rows;

use std::time::Duration;

use shared::{FeedbackResponse, OutcomeResponse, OutcomeStatus};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use self::input::{LabelInput, OutcomeInput};
use crate::decision_log::DecisionLog;
use crate::decision_log::rows::{LoggedDecision, find_decision};
use crate::error::ApiError;
use crate::store::{LabelUpdate, VelocityStore};

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
    #[error("recorded, but the velocity store could not count it yet: send it again")]
    NotCounted(#[source] crate::store::StoreError),
    #[error("recorded, but its decision is still on its way to the log, so it is not counted yet: send it again")]
    DecisionNotLogged,
}

pub async fn record_label(
    log: Option<&DecisionLog>,
    store: &VelocityStore,
    label: LabelInput,
) -> Result<FeedbackResponse, ApiError> {
    let log = log.ok_or(ApiError::LogUnavailable(Unavailable::NotConfigured))?;
    let (mut client, found) = locate(log, store, &label.transaction_id).await?;
    not_before(found.decision(), label.occurred_at_ms)?;
    let pg = |e| ApiError::LogUnavailable(Unavailable::Postgres(e));
    let tx = client.transaction().await.map_err(pg)?;
    rows::lock_transaction(&*tx, &label.transaction_id).await.map_err(pg)?;
    let (recorded_at, new) = rows::insert_label(&*tx, &label).await.map_err(pg)?;
    let standing = rows::transaction_label(&*tx, &label.transaction_id).await.map_err(pg)?;
    // Counted under the lock, so a concurrent label cannot overtake this one in Redis;
    // kept even when the counting fails (the client sends it again).
    let counted = match found.decision() {
        Some(d) => {
            let update = LabelUpdate {
                transaction_id: &label.transaction_id,
                occurred_at_ms: d.occurred_at_ms,
                entities: d.entities(),
                label: standing.unwrap_or(label.label),
            };
            store.apply_label(&update).await.map_err(Unavailable::NotCounted)
        }
        None => found.uncounted(),
    };
    tx.commit().await.map_err(pg)?;
    if new {
        crate::metrics::label_recorded(label.label, label.source);
    }
    counted.map_err(ApiError::LogUnavailable)?;
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
    let (client, found) = locate(log, store, &outcome.transaction_id).await?;
    not_before(found.decision(), outcome.occurred_at_ms)?;
    let recorded = rows::insert_outcome(&**client, &outcome)
        .await
        .map_err(|e| ApiError::LogUnavailable(Unavailable::Postgres(e)))?;
    if recorded.new {
        crate::metrics::outcome_recorded(outcome.status);
    }
    if outcome.status == OutcomeStatus::Declined {
        // At the first report's time, as the log keeps it (a repeat may say another
        // time, or none): counting it again changes nothing.
        let at_ms = (recorded.occurred_at.unix_timestamp_nanos() / 1_000_000) as i64;
        let counted = match found.decision() {
            Some(d) => store
                .record_decline(&d.entities(), &outcome.transaction_id, at_ms)
                .await
                .map_err(Unavailable::NotCounted),
            None => found.uncounted(),
        };
        counted.map_err(ApiError::LogUnavailable)?;
    }
    Ok(OutcomeResponse {
        transaction_id: outcome.transaction_id,
        status: outcome.status,
        recorded_at: rfc3339(recorded.recorded_at),
    })
}

/// Where a transaction's decision was found.
enum Found {
    Logged(LoggedDecision),
    /// In the spool: it reaches the log once PostgreSQL takes it.
    Spooled,
    /// Only in the velocity store: still queued, or its log row was dropped (counted
    /// in `risk_decision_log_rows_dropped_total`).
    Stored,
}

impl Found {
    fn decision(&self) -> Option<&LoggedDecision> {
        match self {
            Found::Logged(d) => Some(d),
            Found::Spooled | Found::Stored => None,
        }
    }

    /// Without a log row there are no entities to count for: the label or decline is
    /// kept and the client asked to send it again, once the row is there. (A decision
    /// whose row was dropped is answered so until its stored decision expires, then
    /// 404: a rare loss, counted in `risk_decision_log_rows_dropped_total`, that must
    /// not quietly leave the counters short.)
    fn uncounted(&self) -> Result<(), Unavailable> {
        crate::metrics::feedback_uncounted();
        Err(Unavailable::DecisionNotLogged)
    }
}

/// A connection to record against, and where the transaction's decision is. 404 when
/// nothing knows the decision.
async fn locate(
    log: &DecisionLog,
    store: &VelocityStore,
    transaction_id: &str,
) -> Result<(deadpool_postgres::Object, Found), ApiError> {
    let unavailable = ApiError::LogUnavailable;
    let client = log.pool.get().await.map_err(|e| unavailable(Unavailable::Pool(e)))?;
    let find = || async {
        find_decision(&**client, transaction_id)
            .await
            .map_err(|e| unavailable(Unavailable::Postgres(e)))
    };
    if let Some(found) = find().await? {
        return Ok((client, Found::Logged(found)));
    }
    if log.spooled.lock().contains(transaction_id) {
        return Ok((client, Found::Spooled));
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
            return Ok((client, Found::Logged(found)));
        }
    }
    Ok((client, Found::Stored))
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
