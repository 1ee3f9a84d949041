//! One-time codes for step-up verification, and the development mailbox that "sends" them.

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
            recipient: r.get(0),
            subject: r.get(1),
            body: r.get(2),
            created_at: r.get(3),
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
