//! `payment_attempt`: one row per payment attempt of an order. Its key is the
//! idempotency key of every gateway call and the risk decision's transaction id.

use deadpool_postgres::GenericClient;

use crate::error::ShopError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStatus {
    /// Created; the gateway has not answered an authorisation yet.
    Started,
    Authorised,
    Declined,
    Captured,
    Voided,
    /// The sidecar blocked the payment before any authorisation.
    Blocked,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Started => "started",
            AttemptStatus::Authorised => "authorised",
            AttemptStatus::Declined => "declined",
            AttemptStatus::Captured => "captured",
            AttemptStatus::Voided => "voided",
            AttemptStatus::Blocked => "blocked",
        }
    }

    fn parse(s: &str) -> Result<AttemptStatus, ShopError> {
        Ok(match s {
            "started" => AttemptStatus::Started,
            "authorised" => AttemptStatus::Authorised,
            "declined" => AttemptStatus::Declined,
            "captured" => AttemptStatus::Captured,
            "voided" => AttemptStatus::Voided,
            "blocked" => AttemptStatus::Blocked,
            other => return Err(anyhow::anyhow!("unknown payment attempt status {other:?}").into()),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: i64,
    /// `<order>:pay_<n>`.
    pub key: String,
    pub status: AttemptStatus,
    pub authorisation_id: Option<String>,
}

/// The order's first attempt, created if it does not exist yet.
pub async fn first(client: &impl GenericClient, order_id: i64, order_public_id: &str) -> Result<Attempt, ShopError> {
    let key = format!("{order_public_id}:pay_1");
    client
        .execute(
            "insert into payment_attempt (order_id, attempt, idempotency_key, status)
             values ($1, 1, $2, 'started') on conflict do nothing",
            &[&order_id, &key],
        )
        .await?;
    let row = client
        .query_one(
            "select payment_attempt_id, status, authorisation_id from payment_attempt where idempotency_key = $1",
            &[&key],
        )
        .await?;
    Ok(Attempt {
        id: row.get("payment_attempt_id"),
        key,
        status: AttemptStatus::parse(row.get("status"))?,
        authorisation_id: row.get("authorisation_id"),
    })
}

/// Records the gateway's answer to the authorisation, once.
pub async fn record_authorisation(
    client: &impl GenericClient,
    attempt_id: i64,
    status: AttemptStatus,
    authorisation_id: Option<&str>,
    decline_code: Option<&str>,
) -> Result<(), ShopError> {
    client
        .execute(
            "update payment_attempt set status = $2, authorisation_id = $3, decline_code = $4, updated_at = now()
              where payment_attempt_id = $1 and status = 'started'",
            &[&attempt_id, &status.as_str(), &authorisation_id, &decline_code],
        )
        .await?;
    Ok(())
}

pub async fn set_status(client: &impl GenericClient, attempt_id: i64, status: AttemptStatus) -> Result<(), ShopError> {
    client
        .execute(
            "update payment_attempt set status = $2, updated_at = now() where payment_attempt_id = $1",
            &[&attempt_id, &status.as_str()],
        )
        .await?;
    Ok(())
}
