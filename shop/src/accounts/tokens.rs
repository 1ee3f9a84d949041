//! Access tokens (JWT, HS256, short-lived) and rotating refresh tokens (random, stored
//! hashed, one family per log-in; reuse of a replaced token revokes the family).

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{Identity, Role};
use crate::error::ShopError;

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub email: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// A fresh pair: the access token for `Authorization: Bearer` (or the page cookie) and
/// the refresh token for its HttpOnly cookie.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub access_ttl: Duration,
    pub refresh_token: String,
    pub refresh_ttl: Duration,
}

#[derive(Clone)]
pub struct TokenIssuer {
    inner: Arc<Keys>,
}

struct Keys {
    issuer: String,
    audience: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

// === impl TokenIssuer ===

impl TokenIssuer {
    pub fn new(
        secret: &SecretString,
        issuer: &str,
        audience: &str,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> TokenIssuer {
        let secret = secret.expose_secret().as_bytes();
        TokenIssuer {
            inner: Arc::new(Keys {
                issuer: issuer.to_owned(),
                audience: audience.to_owned(),
                encoding: EncodingKey::from_secret(secret),
                decoding: DecodingKey::from_secret(secret),
                access_ttl,
                refresh_ttl,
            }),
        }
    }

    pub fn access_token(&self, identity: &Identity) -> Result<String, ShopError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = AccessClaims {
            sub: identity.account_id.to_string(),
            email: identity.email.clone(),
            role: identity.role,
            iss: self.inner.issuer.clone(),
            aud: self.inner.audience.clone(),
            iat: now,
            exp: now + self.inner.access_ttl.as_secs() as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.inner.encoding)
            .map_err(|e| ShopError::Internal(anyhow::Error::new(e).context("failed to sign an access token")))
    }

    /// A valid, unexpired token signed by us (no leeway: fifteen minutes means fifteen).
    pub fn verify_access(&self, token: &str) -> Option<Identity> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[&self.inner.issuer]);
        validation.set_audience(&[&self.inner.audience]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.inner.decoding, &validation).ok()?;
        Some(Identity {
            account_id: data.claims.sub.parse().ok()?,
            email: data.claims.email,
            role: data.claims.role,
        })
    }

    /// Issues a pair; `family` continues a rotation, `None` starts one (a log-in).
    pub async fn issue(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        identity: &Identity,
        family: Option<&str>,
    ) -> Result<IssuedTokens, ShopError> {
        let refresh_token = random_token();
        let family = family.map(str::to_owned).unwrap_or_else(random_token);
        let expires_at = OffsetDateTime::now_utc() + self.inner.refresh_ttl;
        client
            .execute(
                "insert into refresh_token (account_id, family, token_hash, expires_at) values ($1, $2, $3, $4)",
                &[&identity.account_id, &family, &hash(&refresh_token), &expires_at],
            )
            .await?;
        Ok(IssuedTokens {
            access_token: self.access_token(identity)?,
            access_ttl: self.inner.access_ttl,
            refresh_token,
            refresh_ttl: self.inner.refresh_ttl,
        })
    }

    /// Exchanges a refresh token for a new pair. A replaced or revoked token presented
    /// again revokes its whole family: whoever holds the newer token must log in again.
    #[tracing::instrument(name = "Rotate refresh token", skip_all)]
    pub async fn rotate(
        &self,
        client: &mut deadpool_postgres::Client,
        refresh_token: &str,
    ) -> Result<(Identity, IssuedTokens), ShopError> {
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "select t.refresh_token_id, t.family, t.expires_at < now(), t.replaced_at is not null,
                        t.revoked_at is not null, a.account_id, a.email, a.role,
                        t.replaced_at > now() - interval '10 seconds'
                   from refresh_token t join account a using (account_id)
                  where t.token_hash = $1
                  for update of t",
                &[&hash(refresh_token)],
            )
            .await?
            .ok_or(ShopError::Unauthenticated)?;
        let (id, family): (i64, String) = (row.get(0), row.get(1));
        let (expired, replaced, revoked): (bool, bool, bool) = (row.get(2), row.get(3), row.get(4));
        let recently_replaced = row.get::<_, Option<bool>>(8).unwrap_or(false);
        // Two page loads that carry the same expired access token race to rotate: the
        // loser finds the token replaced a moment ago. That is not theft; it is refused
        // without revoking anything (the browser already holds the winner's cookie).
        if replaced && !revoked && recently_replaced {
            return Err(ShopError::Unauthenticated);
        }
        if replaced && !revoked {
            tracing::warn!(family = %&family[..8], "Refresh token reused; revoking its family.");
            tx.execute(
                "update refresh_token set revoked_at = now() where family = $1 and revoked_at is null",
                &[&family],
            )
            .await?;
            tx.commit().await?;
            return Err(ShopError::Unauthenticated);
        }
        if expired || revoked || replaced {
            return Err(ShopError::Unauthenticated);
        }
        tx.execute(
            "update refresh_token set replaced_at = now() where refresh_token_id = $1",
            &[&id],
        )
        .await?;
        let identity = Identity {
            account_id: row.get(5),
            email: row.get(6),
            role: Role::parse(row.get(7)).unwrap_or(Role::Shopper),
        };
        let issued = self.issue(&tx, &identity, Some(&family)).await?;
        tx.commit().await?;
        Ok((identity, issued))
    }

    pub async fn revoke_family(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        refresh_token: &str,
    ) -> Result<(), ShopError> {
        client
            .execute(
                "update refresh_token set revoked_at = now()
                  where family = (select family from refresh_token where token_hash = $1) and revoked_at is null",
                &[&hash(refresh_token)],
            )
            .await?;
        Ok(())
    }
}

/// 256 random bits, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// 128 random bits, hex: ids for cookies (device, CSRF seed, anonymous cart).
pub fn random_token_short() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(ttl: Duration) -> TokenIssuer {
        TokenIssuer::new(
            &SecretString::from("k".repeat(32)),
            "shop",
            "shop",
            ttl,
            Duration::from_secs(3600),
        )
    }

    fn ada() -> Identity {
        Identity {
            account_id: 7,
            email: "ada@example.com".into(),
            role: Role::Shopper,
        }
    }

    #[test]
    fn an_access_token_round_trips_and_is_bound_to_its_key() {
        let token = issuer(Duration::from_secs(60)).access_token(&ada()).expect("sign");
        assert_eq!(issuer(Duration::from_secs(60)).verify_access(&token), Some(ada()));
        let other = TokenIssuer::new(
            &SecretString::from("x".repeat(32)),
            "shop",
            "shop",
            Duration::from_secs(60),
            Duration::from_secs(1),
        );
        assert_eq!(other.verify_access(&token), None, "another key must not verify");
        for (iss, aud) in [("other", "shop"), ("shop", "console")] {
            let elsewhere = TokenIssuer::new(
                &SecretString::from("k".repeat(32)),
                iss,
                aud,
                Duration::from_secs(60),
                Duration::from_secs(1),
            );
            let token = elsewhere.access_token(&ada()).expect("sign");
            assert_eq!(
                issuer(Duration::from_secs(60)).verify_access(&token),
                None,
                "a token of issuer {iss} for {aud}, same key"
            );
        }
        assert_eq!(
            issuer(Duration::from_secs(60)).verify_access(&format!("{token}x")),
            None
        );
    }

    #[test]
    fn an_expired_access_token_is_refused() {
        let token = issuer(Duration::ZERO).access_token(&ada()).expect("sign");
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(issuer(Duration::ZERO).verify_access(&token), None);
    }
}
