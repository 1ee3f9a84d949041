//! argon2id hashing, off the async workers.

use std::sync::{Arc, LazyLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::error::ShopError;
use crate::telemetry::spawn_blocking_with_tracing;

const MIN_LEN: usize = 10;
const MAX_LEN: usize = 128;

/// A password as typed; never logged, never Debug-printed.
pub struct Password(SecretString);

impl Password {
    /// Sign-up rules (NIST 800-63B: length, not composition).
    pub fn new_for_sign_up(raw: String) -> Result<Password, ShopError> {
        let chars = raw.chars().count();
        if chars < MIN_LEN {
            return Err(ShopError::validation(
                "password",
                format!("use at least {MIN_LEN} characters"),
            ));
        }
        if chars > MAX_LEN {
            return Err(ShopError::validation(
                "password",
                format!("use at most {MAX_LEN} characters"),
            ));
        }
        Ok(Password(SecretString::from(raw)))
    }

    /// Log-in: any input is checked (an over-long one simply fails).
    pub fn given(raw: String) -> Password {
        Password(SecretString::from(raw))
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Arc<Params>,
    /// Each hash holds `memory_kib` of memory: at most this many at once, the rest
    /// wait (30 parallel sign-ups took the shop from 13 to 696 MB without it).
    permits: Arc<tokio::sync::Semaphore>,
}

impl PasswordHasher {
    pub fn new(memory_kib: u32, iterations: u32, max_concurrent: usize) -> anyhow::Result<PasswordHasher> {
        let params = Params::new(memory_kib, iterations, 1, None).map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
        Ok(PasswordHasher {
            params: Arc::new(params),
            permits: Arc::new(tokio::sync::Semaphore::new(max_concurrent.max(1))),
        })
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ShopError> {
        self.permits
            .acquire()
            .await
            .map_err(|e| ShopError::Internal(anyhow::Error::new(e).context("hashing permits closed")))
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, (*self.params).clone())
    }

    pub async fn hash(&self, password: Password) -> Result<String, ShopError> {
        let _permit = self.permit().await?;
        let argon2 = self.argon2();
        spawn_blocking_with_tracing(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2
                .hash_password(password.0.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2 hash: {e}"))
        })
        .await
        .map_err(|e| ShopError::Internal(e.into()))?
        .map_err(ShopError::Internal)
    }

    /// Verifies against `stored`, or against a dummy hash when there is no account, so
    /// that a missing account costs the same time as a wrong password.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> Result<bool, ShopError> {
        let _permit = self.permit().await?;
        let argon2 = self.argon2();
        let dummy = stored.is_none();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        spawn_blocking_with_tracing(move || {
            let parsed = PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            // The stored hash carries its own parameters; `argon2` only picks the algorithm.
            let ok = argon2
                .verify_password(password.0.expose_secret().as_bytes(), &parsed)
                .is_ok();
            Ok::<bool, anyhow::Error>(ok && !dummy)
        })
        .await
        .map_err(|e| ShopError::Internal(e.into()))?
        .map_err(ShopError::Internal)
    }
}

static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(b"no account has this password", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
});

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(64, 1, 2).expect("params")
    }

    #[tokio::test]
    async fn a_hash_is_argon2id_and_verifies_only_its_password() {
        let hasher = cheap();
        let hash = hasher
            .hash(Password::new_for_sign_up("correct horse battery".into()).expect("long enough"))
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(
            hasher
                .verify(Password::given("correct horse battery".into()), Some(hash.clone()))
                .await
                .expect("v")
        );
        assert!(
            !hasher
                .verify(Password::given("wrong horse battery".into()), Some(hash))
                .await
                .expect("v")
        );
    }

    #[tokio::test]
    async fn no_account_never_verifies() {
        let hasher = cheap();
        assert!(
            !hasher
                .verify(Password::given("no account has this password".into()), None)
                .await
                .expect("v")
        );
    }

    #[test]
    fn sign_up_passwords_have_a_length_rule() {
        assert!(Password::new_for_sign_up("short".into()).is_err());
        assert!(Password::new_for_sign_up("x".repeat(129)).is_err());
        assert!(Password::new_for_sign_up("long enough pass".into()).is_ok());
    }
}
