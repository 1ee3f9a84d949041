//! Storage functions of `risk.decisions`; each takes the client or transaction.

use std::sync::OnceLock;

use tokio_postgres::GenericClient;

use super::entry::COLUMNS;

/// One statement for a whole batch: the rows arrive as one JSON array, are read by
/// `jsonb_to_recordset`, and a row already there (a replay after a crash) is skipped.
fn insert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
        let record: Vec<String> = COLUMNS.iter().map(|(n, t)| format!("{n} {t}")).collect();
        format!(
            "insert into risk.decisions ({cols}) select {cols} from jsonb_to_recordset($1::text::jsonb) as r({record}) \
             on conflict do nothing",
            cols = names.join(", "),
            record = record.join(", "),
        )
    })
}

/// Inserts rows given as serialised JSON objects; returns how many were new.
pub async fn insert_rows(client: &impl GenericClient, rows: &[&[u8]]) -> Result<u64, tokio_postgres::Error> {
    let mut array = Vec::with_capacity(rows.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
    array.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            array.push(b',');
        }
        array.extend_from_slice(row);
    }
    array.push(b']');
    // The rows are our own serde_json output, so UTF-8; checked once, not copied.
    let text = String::from_utf8(array).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    client.execute(insert_sql(), &[&text.as_str()]).await
}

/// What a label or an outcome needs of its transaction's decision: its time and the
/// entities whose counters it changes.
#[derive(Debug, Clone)]
pub struct LoggedDecision {
    pub occurred_at_ms: i64,
    pub customer_id: String,
    pub card_fingerprint: Option<String>,
    /// As the counters key it: an IPv4 address, or an IPv6 address's /64.
    pub ip_key: Option<String>,
    pub device_id: Option<String>,
    pub email_hash: Option<String>,
}

impl LoggedDecision {
    pub fn entities(&self) -> crate::store::TransactionEntities<'_> {
        crate::store::TransactionEntities {
            card: self.card_fingerprint.as_deref(),
            customer: &self.customer_id,
            ip: self.ip_key.as_deref(),
            device: self.device_id.as_deref(),
            email: self.email_hash.as_deref(),
        }
    }
}

/// The transaction's first logged decision (a retry whose idempotency record was lost
/// can leave two).
pub async fn find_decision(
    client: &impl GenericClient,
    transaction_id: &str,
) -> Result<Option<LoggedDecision>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "select (extract(epoch from occurred_at) * 1000)::bigint as occurred_at_ms, customer_id, \
                    card_fingerprint, host(ip) as ip, device_id, email_hash \
               from risk.decisions where transaction_id = $1 order by decided_at limit 1",
            &[&transaction_id],
        )
        .await?;
    Ok(row.map(|r| LoggedDecision {
        occurred_at_ms: r.get("occurred_at_ms"),
        customer_id: r.get("customer_id"),
        card_fingerprint: r.get("card_fingerprint"),
        // Logged from a parsed address, so it parses back.
        ip_key: r
            .get::<_, Option<String>>("ip")
            .and_then(|ip| crate::decision::input::ip_key(&ip).ok()),
        device_id: r.get("device_id"),
        email_hash: r.get("email_hash"),
    }))
}
