//! Accounts: sign-up, log-in, rotating refresh tokens, roles.

mod email;
mod limiter;
mod password;
mod tokens;

pub use email::Email;
pub use limiter::{LoginLimiter, LoginLimits};
pub use password::{Password, PasswordHasher};
pub use tokens::{IssuedTokens, TokenIssuer, random_token_short};

use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};

use crate::error::{ShopError, is_unique_violation};

/// Who may do what. Staff roles are for the security console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Shopper,
    Analyst,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "shopper" => Some(Role::Shopper),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The authenticated caller, from a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account_id: i64,
    pub email: String,
    pub role: Role,
}

/// What the checkout tells the sidecar and the mail about an account.
#[derive(Debug, Clone)]
pub struct Profile {
    pub email: String,
    pub created_at: time::OffsetDateTime,
}

pub async fn profile(client: &impl deadpool_postgres::GenericClient, account_id: i64) -> Result<Profile, ShopError> {
    let row = client
        .query_one(
            "select email, created_at from account where account_id = $1",
            &[&account_id],
        )
        .await?;
    Ok(Profile {
        email: row.get("email"),
        created_at: row.get("created_at"),
    })
}

/// Sign-up, log-in and token rotation over the database.
#[derive(Clone)]
pub struct Accounts {
    pool: Pool,
    hasher: PasswordHasher,
    pub tokens: TokenIssuer,
    limiter: LoginLimiter,
}

// === impl Accounts ===

impl Accounts {
    pub fn new(pool: Pool, hasher: PasswordHasher, tokens: TokenIssuer, limiter: LoginLimiter) -> Accounts {
        Accounts {
            pool,
            hasher,
            tokens,
            limiter,
        }
    }

    /// Limited per address; a taken address is refused before the (costly) hash.
    #[tracing::instrument(name = "Sign up", skip_all)]
    pub async fn sign_up(&self, email: Email, password: Password, ip: &str) -> Result<Identity, ShopError> {
        self.limiter.check_signup(ip)?;
        let client = self.pool.get().await?;
        let taken = client
            .query_opt("select 1 from account where email = $1", &[&email.as_str()])
            .await?
            .is_some();
        drop(client);
        if taken {
            return Err(ShopError::EmailTaken);
        }
        let hash = self.hasher.hash(password).await?;
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "insert into account (email, password_hash) values ($1, $2) returning account_id, role",
                &[&email.as_str(), &hash],
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e, "account_email_key") {
                    ShopError::EmailTaken
                } else {
                    e.into()
                }
            })?;
        Ok(Identity {
            account_id: row.get(0),
            email: email.into_inner(),
            role: Role::parse(row.get(1)).unwrap_or(Role::Shopper),
        })
    }

    /// Checks the password (rate-limited per account and per IP); the same answer and
    /// about the same time whether or not the account exists.
    #[tracing::instrument(name = "Log in", skip_all)]
    pub async fn log_in(&self, email: &str, password: Password, ip: &str) -> Result<Identity, ShopError> {
        let email = email.trim().to_lowercase();
        self.limiter.check(&email, ip)?;
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "select account_id, password_hash, role from account where email = $1",
                &[&email],
            )
            .await?;
        drop(client);
        let stored = row.as_ref().map(|r| r.get::<_, String>(1));
        let valid = self.hasher.verify(password, stored).await?;
        match (row, valid) {
            (Some(row), true) => {
                self.limiter.succeeded(&email, ip);
                crate::metrics::login_attempt("ok");
                Ok(Identity {
                    account_id: row.get(0),
                    email,
                    role: Role::parse(row.get(2)).unwrap_or(Role::Shopper),
                })
            }
            _ => {
                self.limiter.failed(&email, ip);
                crate::metrics::login_attempt("bad_credentials");
                Err(ShopError::BadCredentials)
            }
        }
    }

    pub async fn issue(&self, identity: &Identity) -> Result<IssuedTokens, ShopError> {
        let client = self.pool.get().await?;
        self.tokens.issue(&client, identity, None).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<(Identity, IssuedTokens), ShopError> {
        let mut client = self.pool.get().await?;
        self.tokens.rotate(&mut client, refresh_token).await
    }

    pub async fn log_out(&self, refresh_token: &str) -> Result<(), ShopError> {
        let client = self.pool.get().await?;
        self.tokens.revoke_family(&client, refresh_token).await
    }

    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
    }
}
