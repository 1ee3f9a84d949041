//! Storage functions of `risk.labels` and `risk.outcomes`; each takes the client or
//! transaction. Both are idempotent: the same label from the same source (the same
//! status) again keeps the first row and answers with its `recorded_at`.

use time::OffsetDateTime;
use tokio_postgres::GenericClient;

use super::input::{LabelInput, OutcomeInput};

fn at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Returns when the label was first recorded, and whether this call recorded it.
pub async fn insert_label(
    client: &impl GenericClient,
    l: &LabelInput,
) -> Result<(OffsetDateTime, bool), tokio_postgres::Error> {
    let inserted = client
        .query_opt(
            "insert into risk.labels (transaction_id, label, source, occurred_at, reason, reported_by) \
             values ($1, $2, $3, $4, $5, $6) on conflict do nothing returning recorded_at",
            &[
                &l.transaction_id,
                &l.label.as_str(),
                &l.source.as_str(),
                &at(l.occurred_at_ms),
                &l.reason,
                &l.reported_by,
            ],
        )
        .await?;
    if let Some(row) = inserted {
        return Ok((row.get(0), true));
    }
    // A repeat: the first row's time. (A concurrent first insert is committed by the
    // time the conflict is reported, so this statement's snapshot sees it.)
    let row = client
        .query_one(
            "select recorded_at from risk.labels where transaction_id = $1 and label = $2 and source = $3",
            &[&l.transaction_id, &l.label.as_str(), &l.source.as_str()],
        )
        .await?;
    Ok((row.get(0), false))
}

/// Serialises the labels of one transaction until the end of the database transaction.
pub async fn lock_transaction(client: &impl GenericClient, transaction_id: &str) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "select pg_advisory_xact_lock(hashtextextended('risk.labels:' || $1, 0))",
            &[&transaction_id],
        )
        .await?;
    Ok(())
}

/// The transaction's label as it stands: the one of highest precedence.
pub async fn transaction_label(
    client: &impl GenericClient,
    transaction_id: &str,
) -> Result<Option<shared::Label>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "select label from risk.transaction_labels where transaction_id = $1",
            &[&transaction_id],
        )
        .await?;
    Ok(row.and_then(|r| shared::Label::parse(r.get(0))))
}

/// An outcome as first recorded: a repeat keeps the first row, times included.
pub struct RecordedOutcome {
    pub recorded_at: OffsetDateTime,
    pub occurred_at: OffsetDateTime,
    /// This call recorded it.
    pub new: bool,
}

pub async fn insert_outcome(
    client: &impl GenericClient,
    o: &OutcomeInput,
) -> Result<RecordedOutcome, tokio_postgres::Error> {
    let inserted = client
        .query_opt(
            "insert into risk.outcomes (transaction_id, status, code, occurred_at) \
             values ($1, $2, $3, $4) on conflict do nothing returning recorded_at, occurred_at",
            &[&o.transaction_id, &o.status.as_str(), &o.code, &at(o.occurred_at_ms)],
        )
        .await?;
    if let Some(row) = inserted {
        return Ok(RecordedOutcome {
            recorded_at: row.get(0),
            occurred_at: row.get(1),
            new: true,
        });
    }
    let row = client
        .query_one(
            "select recorded_at, occurred_at from risk.outcomes where transaction_id = $1 and status = $2",
            &[&o.transaction_id, &o.status.as_str()],
        )
        .await?;
    Ok(RecordedOutcome {
        recorded_at: row.get(0),
        occurred_at: row.get(1),
        new: false,
    })
}
