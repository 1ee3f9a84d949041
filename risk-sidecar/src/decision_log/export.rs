//! The decision log as a history (the format `make train` reads): each transaction's
//! first decision as its request, with the transaction's label, when it became known,
//! and its outcomes. Streamed from PostgreSQL in transaction-time order, so a log of
//! any length exports in bounded memory.
//!
//! What a history needs and the log does not keep in clear: the e-mail address. It is
//! written as `<its keyed hash>@<domain>` (64 hex digits, the longest local part an
//! address may have): the same address gives the same value, the domain is kept, the
//! address is not, and `make rebuild-counters` finds the key its label counters had.

use futures::{Stream, TryStreamExt};
use shared::{
    Amount, Customer, DecisionRequest, Device, HistoryOutcome, HistoryRecord, Item, Label, LabelSource, Payment,
    PaymentMethod, Region,
};
use tokio_postgres::Row;

use super::entry::rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("PostgreSQL failed during the export")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("a logged row is not a valid history record: {0}")]
    Row(String),
}

const SQL: &str = "
select * from (
  select distinct on (d.transaction_id)
         d.transaction_id,
         (extract(epoch from d.occurred_at) * 1000)::bigint as occurred_ms,
         (extract(epoch from d.account_created_at) * 1000)::bigint as account_created_ms,
         d.amount_minor, d.currency, d.customer_id, d.email_domain, d.email_hash, d.payment_method,
         d.card_fingerprint, d.card_bin, d.card_last4, d.card_country, host(d.ip) as ip, d.device_id,
         d.shipping_country, d.billing_country, d.items, d.metadata,
         l.label, l.source as label_source,
         -- When the sidecar learned it (a label may be back-dated): when serving counted it.
         (extract(epoch from greatest(l.occurred_at, l.recorded_at)) * 1000)::bigint as labelled_ms,
         (select coalesce(jsonb_agg(jsonb_build_object(
                    'status', o.status, 'code', o.code,
                    'occurred_ms', (extract(epoch from o.occurred_at) * 1000)::bigint)
                  order by o.occurred_at), '[]'::jsonb)
            from risk.outcomes o where o.transaction_id = d.transaction_id) as outcomes
    from risk.decisions d
    left join risk.transaction_labels l using (transaction_id)
   where d.decided_at >= to_timestamp($1::bigint / 1000.0) and d.decided_at < to_timestamp($2::bigint / 1000.0)
   order by d.transaction_id, d.decided_at
) first_decisions
order by occurred_ms, transaction_id";

/// The transactions decided in `[since_ms, until_ms)`, oldest first.
pub async fn history(
    client: &tokio_postgres::Client,
    since_ms: i64,
    until_ms: i64,
) -> Result<impl Stream<Item = Result<HistoryRecord, ExportError>> + '_, ExportError> {
    let rows = client.query_raw(SQL, [since_ms, until_ms]).await?;
    Ok(rows
        .map_err(ExportError::from)
        .and_then(|row| async move { record(&row) }))
}

fn record(row: &Row) -> Result<HistoryRecord, ExportError> {
    let bad = |what: &str| ExportError::Row(what.to_owned());
    let text = |name: &str| row.get::<_, Option<String>>(name);
    let method = match row.get::<_, String>("payment_method").as_str() {
        "card" => PaymentMethod::Card,
        "bank_transfer" => PaymentMethod::BankTransfer,
        "wallet" => PaymentMethod::Wallet,
        _ => return Err(bad("unknown payment_method")),
    };
    let email = match (text("email_hash"), text("email_domain")) {
        (Some(hash), Some(domain)) => Some(format!("{hash}@{domain}")),
        _ => None,
    };
    let items: Vec<Item> = serde_json::from_value(row.get("items")).map_err(|_| bad("items"))?;
    let metadata = serde_json::from_value(row.get("metadata")).map_err(|_| bad("metadata"))?;
    let region = |c: Option<String>| c.map(|country| Region { country: Some(country) });
    let device_id = text("device_id");
    let ip = text("ip");
    let label = text("label")
        .map(|l| Label::parse(&l).ok_or_else(|| bad("label")))
        .transpose()?;
    let label_source = text("label_source")
        .map(|s| LabelSource::parse(&s).ok_or_else(|| bad("label source")))
        .transpose()?;
    #[derive(serde::Deserialize)]
    struct Outcome {
        status: String,
        code: Option<String>,
        occurred_ms: i64,
    }
    let outcomes: Vec<Outcome> = serde_json::from_value(row.get("outcomes")).map_err(|_| bad("outcomes"))?;
    let outcomes = outcomes
        .into_iter()
        .map(|o| {
            Ok(HistoryOutcome {
                status: shared::OutcomeStatus::parse(&o.status).ok_or_else(|| bad("outcome status"))?,
                code: o.code,
                occurred_at: rfc3339(o.occurred_ms),
            })
        })
        .collect::<Result<Vec<_>, ExportError>>()?;
    Ok(HistoryRecord {
        request: DecisionRequest {
            transaction_id: row.get("transaction_id"),
            occurred_at: Some(rfc3339(row.get("occurred_ms"))),
            amount: Amount {
                value_minor: row.get("amount_minor"),
                currency: row.get("currency"),
            },
            customer: Customer {
                id: row.get("customer_id"),
                email,
                account_created_at: row.get::<_, Option<i64>>("account_created_ms").map(rfc3339),
            },
            payment: Payment {
                method: Some(method),
                card_fingerprint: text("card_fingerprint"),
                bin: text("card_bin"),
                last4: text("card_last4"),
                card_country: text("card_country"),
            },
            device: (device_id.is_some() || ip.is_some()).then_some(Device {
                ip,
                id: device_id,
                user_agent: None,
            }),
            shipping: region(text("shipping_country")),
            billing: region(text("billing_country")),
            items,
            metadata,
        },
        label,
        scenario: None,
        labelled_at: row.get::<_, Option<i64>>("labelled_ms").map(rfc3339),
        label_source,
        outcomes,
    })
}
