//! The sandbox gateway: a stand-in processor with its own tables (`sandbox_*`).
//!
//! Test numbers (any future expiry, any CVC), as processors' sandboxes do:
//! `4000 0000 0000 0002` is declined (`card_declined`), `4000 0000 0000 9995` declined
//! for `insufficient_funds`; every other valid number is approved.

use deadpool_postgres::Pool;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::{Authorisation, CardInput, CardToken, GatewayError, GatewayFuture, PaymentGateway};

const DECLINES: &[(&str, &str)] = &[
    ("4000000000000002", "card_declined"),
    ("4000000000009995", "insufficient_funds"),
];

pub struct SandboxGateway {
    pool: Pool,
    fingerprint_key: SecretString,
}

impl SandboxGateway {
    pub fn new(pool: Pool, fingerprint_key: SecretString) -> SandboxGateway {
        SandboxGateway { pool, fingerprint_key }
    }

    fn fingerprint(&self, number: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.fingerprint_key.expose_secret().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(number.as_bytes());
        format!("fp_{}", &hex::encode(mac.finalize().into_bytes())[..32])
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, GatewayError> {
        self.pool
            .get()
            .await
            .map_err(|e| GatewayError::Unavailable(anyhow::Error::new(e)))
    }

    /// Moves an authorisation from `authorised` to `to`, once per idempotency key.
    async fn settle(&self, kind: &'static str, key: &str, authorisation_id: &str) -> Result<(), GatewayError> {
        let to = match kind {
            "capture" => "captured",
            "void" => "voided",
            _ => "refunded",
        };
        let from = if kind == "refund" { "captured" } else { "authorised" };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable)?;
        let row = tx
            .query_opt(
                "select status, amount_minor from sandbox_authorisation where authorisation_id = $1 for update",
                &[&authorisation_id],
            )
            .await
            .map_err(unavailable)?
            .ok_or(GatewayError::UnknownAuthorisation)?;
        let (status, amount): (String, i64) = (row.get(0), row.get(1));
        let done = tx
            .query_opt(
                "select 1 from sandbox_operation where kind = $1 and idempotency_key = $2 and authorisation_id = $3",
                &[&kind, &key, &authorisation_id],
            )
            .await
            .map_err(unavailable)?;
        if done.is_some() {
            return Ok(()); // The same request again: the first answer stands.
        }
        if status != from {
            return Err(GatewayError::WrongState(status));
        }
        tx.execute(
            "insert into sandbox_operation (authorisation_id, kind, idempotency_key, amount_minor) values ($1, $2, $3, $4)",
            &[&authorisation_id, &kind, &key, &amount],
        )
        .await
        .map_err(unavailable)?;
        tx.execute(
            "update sandbox_authorisation set status = $2, updated_at = now() where authorisation_id = $1",
            &[&authorisation_id, &to],
        )
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        tracing::info!(kind, authorisation_id, "Sandbox gateway settled.");
        Ok(())
    }
}

fn unavailable(e: tokio_postgres::Error) -> GatewayError {
    GatewayError::Unavailable(anyhow::Error::new(e))
}

impl PaymentGateway for SandboxGateway {
    fn tokenise<'a>(&'a self, card: CardInput) -> GatewayFuture<'a, CardToken> {
        Box::pin(async move {
            let number = card.validate()?;
            let behaviour = DECLINES
                .iter()
                .find(|(n, _)| *n == number.expose())
                .map(|(_, code)| *code)
                .unwrap_or("approve");
            let token = CardToken {
                token: format!("tok_{}", ulid::Ulid::new().to_string().to_lowercase()),
                fingerprint: self.fingerprint(number.expose()),
                bin: number.bin().to_owned(),
                last4: number.last4().to_owned(),
            };
            drop(number);
            self.client()
                .await?
                .execute(
                    "insert into sandbox_card (token, fingerprint, bin, last4, behaviour) values ($1, $2, $3, $4, $5)",
                    &[&token.token, &token.fingerprint, &token.bin, &token.last4, &behaviour],
                )
                .await
                .map_err(unavailable)?;
            Ok(token)
        })
    }

    fn authorise<'a>(
        &'a self,
        idempotency_key: &'a str,
        token: &'a str,
        amount_minor: i64,
        currency: &'a str,
    ) -> GatewayFuture<'a, Authorisation> {
        Box::pin(async move {
            let client = self.client().await?;
            let behaviour: String = client
                .query_opt("select behaviour from sandbox_card where token = $1", &[&token])
                .await
                .map_err(unavailable)?
                .ok_or(GatewayError::InvalidCard("unknown card token"))?
                .get(0);
            let (status, decline) = match behaviour.as_str() {
                "approve" => ("authorised", None),
                code => ("declined", Some(code.to_owned())),
            };
            let id = format!("auth_{}", ulid::Ulid::new().to_string().to_lowercase());
            // The first request with this key decides; a retry reads its row back.
            client
                .execute(
                    "insert into sandbox_authorisation
                       (authorisation_id, idempotency_key, token, amount_minor, currency, status, decline_code)
                     values ($1, $2, $3, $4, $5, $6, $7) on conflict (idempotency_key) do nothing",
                    &[
                        &id,
                        &idempotency_key,
                        &token,
                        &amount_minor,
                        &currency,
                        &status,
                        &decline,
                    ],
                )
                .await
                .map_err(unavailable)?;
            let row = client
                .query_one(
                    "select authorisation_id, status, decline_code from sandbox_authorisation where idempotency_key = $1",
                    &[&idempotency_key],
                )
                .await
                .map_err(unavailable)?;
            Ok(match row.get::<_, Option<String>>(2) {
                Some(code) if row.get::<_, String>(1) == "declined" => Authorisation::Declined { code },
                _ => Authorisation::Approved {
                    authorisation_id: row.get(0),
                },
            })
        })
    }

    fn capture<'a>(&'a self, idempotency_key: &'a str, authorisation_id: &'a str) -> GatewayFuture<'a, ()> {
        Box::pin(self.settle("capture", idempotency_key, authorisation_id))
    }

    fn void<'a>(&'a self, idempotency_key: &'a str, authorisation_id: &'a str) -> GatewayFuture<'a, ()> {
        Box::pin(self.settle("void", idempotency_key, authorisation_id))
    }

    fn refund<'a>(&'a self, idempotency_key: &'a str, authorisation_id: &'a str) -> GatewayFuture<'a, ()> {
        Box::pin(self.settle("refund", idempotency_key, authorisation_id))
    }
}
