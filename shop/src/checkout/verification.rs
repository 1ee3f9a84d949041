//! One-time codes for step-up verification (`verification`), and the development
//! mailbox that "sends" them (`mailbox_message`).

use deadpool_postgres::GenericClient;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ShopError;

/// Six random digits.
pub fn new_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// Salted with the order so that equal codes of two orders hash differently.
pub fn hash(order_public_id: &str, code: &str) -> Vec<u8> {
    Sha256::digest(format!("{order_public_id}:{}", code.trim()).as_bytes()).to_vec()
}

pub fn matches(order_public_id: &str, code: &str, stored: &[u8]) -> bool {
    hash(order_public_id, code).ct_eq(stored).into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationStatus {
    Pending,
    Passed,
    /// Too many wrong codes.
    Failed,
    Expired,
}

impl VerificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::Pending => "pending",
            VerificationStatus::Passed => "passed",
            VerificationStatus::Failed => "failed",
            VerificationStatus::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Result<VerificationStatus, ShopError> {
        Ok(match s {
            "pending" => VerificationStatus::Pending,
            "passed" => VerificationStatus::Passed,
            "failed" => VerificationStatus::Failed,
            "expired" => VerificationStatus::Expired,
            other => return Err(anyhow::anyhow!("unknown verification status {other:?}").into()),
        })
    }
}

/// A code's row, read under lock while a shopper's guess is checked.
pub struct Verification {
    pub code_hash: Vec<u8>,
    pub expired: bool,
    pub attempts: i32,
    pub max_attempts: i32,
    pub status: VerificationStatus,
}

pub async fn status(client: &impl GenericClient, order_id: i64) -> Result<Option<VerificationStatus>, ShopError> {
    let row = client
        .query_opt("select status from verification where order_id = $1", &[&order_id])
        .await?;
    row.map(|r| VerificationStatus::parse(r.get("status"))).transpose()
}

/// Creates the order's code unless it has one; whether this call created it.
pub async fn create(
    client: &impl GenericClient,
    order_id: i64,
    code_hash: &[u8],
    ttl: std::time::Duration,
    max_attempts: i32,
) -> Result<bool, ShopError> {
    let created = client
        .execute(
            "insert into verification (order_id, code_hash, expires_at, max_attempts, status)
             values ($1, $2, now() + make_interval(secs => $3), $4, 'pending') on conflict do nothing",
            &[&order_id, &code_hash, &ttl.as_secs_f64(), &max_attempts],
        )
        .await?;
    Ok(created == 1)
}

/// The order's code, locked until the transaction ends.
pub async fn lock(client: &impl GenericClient, order_id: i64) -> Result<Verification, ShopError> {
    let row = client
        .query_one(
            "select code_hash, expires_at < now() as expired, attempts, max_attempts, status
               from verification where order_id = $1 for update",
            &[&order_id],
        )
        .await?;
    Ok(Verification {
        code_hash: row.get("code_hash"),
        expired: row.get("expired"),
        attempts: row.get("attempts"),
        max_attempts: row.get("max_attempts"),
        status: VerificationStatus::parse(row.get("status"))?,
    })
}

pub async fn record_guess(
    client: &impl GenericClient,
    order_id: i64,
    status: VerificationStatus,
    wrong: bool,
) -> Result<(), ShopError> {
    client
        .execute(
            "update verification set status = $2, attempts = attempts + $3 where order_id = $1",
            &[&order_id, &status.as_str(), &i32::from(wrong)],
        )
        .await?;
    Ok(())
}

/// Codes nobody entered in time.
pub async fn expire_overdue(client: &impl GenericClient) -> Result<u64, ShopError> {
    Ok(client
        .execute(
            "update verification set status = 'expired' where status = 'pending' and expires_at < now()",
            &[],
        )
        .await?)
}

#[derive(Debug, Clone)]
pub struct MailboxMessage {
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at: time::OffsetDateTime,
}

pub async fn send(client: &impl GenericClient, recipient: &str, subject: &str, body: &str) -> Result<(), ShopError> {
    client
        .execute(
            "insert into mailbox_message (recipient, subject, body) values ($1, $2, $3)",
            &[&recipient, &subject, &body],
        )
        .await?;
    Ok(())
}

/// The newest messages, optionally for one recipient.
pub async fn mailbox(client: &impl GenericClient, recipient: Option<&str>) -> Result<Vec<MailboxMessage>, ShopError> {
    let rows = client
        .query(
            "select recipient, subject, body, created_at from mailbox_message
              where $1::text is null or recipient = $1 order by mailbox_message_id desc limit 50",
            &[&recipient],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| MailboxMessage {
            recipient: r.get("recipient"),
            subject: r.get("subject"),
            body: r.get("body"),
            created_at: r.get("created_at"),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_match_only_their_order() {
        for _ in 0..100 {
            let code = new_code();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
        let stored = hash("ord_a", "123456");
        assert!(matches("ord_a", " 123456 ", &stored));
        assert!(!matches("ord_b", "123456", &stored));
        assert!(!matches("ord_a", "123457", &stored));
    }
}
