//! Typed settings: `configuration/base.yaml`, then `SHOP__SECTION__KEY` environment overrides.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const BASE_FILE: &str = include_str!("../configuration/base.yaml");
const ENV_PREFIX: &str = "SHOP";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("failed to read settings")]
    Load(#[from] config::ConfigError),
    #[error("invalid setting {key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub risk: RiskSettings,
    pub verification: VerificationSettings,
    pub gateway: GatewaySettings,
    pub dev: DevSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub public_url: String,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` hops are believed.
    #[serde(deserialize_with = "servicekit::list_setting")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub pool_size: usize,
    pub connect_timeout_ms: u64,
    pub statement_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// HMAC key of access tokens. Empty: the development key, in development mode only.
    pub access_token_secret: SecretString,
    /// HMAC key of CSRF tokens and device cookies; separate from the token key.
    pub csrf_secret: SecretString,
    /// `iss` and `aud` of access tokens, checked on every token.
    pub token_issuer: String,
    pub token_audience: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    pub cookie_secure: bool,
    pub login_per_account_per_minute: u32,
    pub login_per_ip_per_minute: u32,
    pub login_free_failures: u32,
    pub signup_per_ip_per_minute: u32,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_max_concurrent: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RiskSettings {
    pub enabled: bool,
    pub url: String,
    pub timeout_ms: u64,
    pub fallback_challenge_from_minor: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VerificationSettings {
    pub code_ttl_secs: u64,
    pub max_attempts: i32,
    /// How often orders stuck in `pending` are looked for, and how old they must be.
    pub reconcile_interval_secs: u64,
    pub reconcile_after_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GatewaySettings {
    /// The payment gateway's API (the sandbox: `sandbox-gateway`).
    pub url: String,
    /// Sent as a bearer token when set.
    pub api_key: SecretString,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DevSettings {
    /// Development mode: development keys for empty secrets, and the mailbox page
    /// (`/dev/mailbox`) that shows every one-time code. Never on by default.
    pub enabled: bool,
    pub demo_data: bool,
}

/// Keys that stand in for empty secrets in development mode, and that are refused
/// anywhere else: they are in the repository, so anyone can sign with them.
const DEV_ACCESS_TOKEN_SECRET: &str = "dev-only-access-token-key-not-for-production";
const DEV_CSRF_SECRET: &str = "dev-only-csrf-key-not-for-production-000";
/// Secrets earlier builds shipped as defaults: refused outside development mode too.
const FORMERLY_SHIPPED: &[&str] = &["dev-only-secret-change-me-0123456789abcdef"];
const MIN_SECRET_BYTES: usize = 32;

pub use servicekit::LogFormat;

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
}

// === impl Settings ===

impl Settings {
    /// Defaults, then the process environment.
    pub fn load() -> Result<Settings, SettingsError> {
        Self::build(None)
    }

    /// Defaults, then `overrides` in place of the process environment (tests never
    /// mutate the environment). Keys as in the environment: `SHOP__DATABASE__URL`.
    pub fn load_with(overrides: HashMap<String, String>) -> Result<Settings, SettingsError> {
        Self::build(Some(overrides))
    }

    fn build(source: Option<HashMap<String, String>>) -> Result<Settings, SettingsError> {
        let mut settings: Settings =
            servicekit::load_settings(BASE_FILE, ENV_PREFIX, &["server.trusted_proxies"], source)?;
        settings.check_secrets()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Outside development mode every secret is set, long enough and none of the
    /// development keys; in development mode an empty one gets the development key.
    fn check_secrets(&mut self) -> Result<(), SettingsError> {
        let dev = self.dev.enabled;
        let auth = &mut self.auth;
        for (key, secret, dev_key) in [
            (
                "auth.access_token_secret",
                &mut auth.access_token_secret,
                DEV_ACCESS_TOKEN_SECRET,
            ),
            ("auth.csrf_secret", &mut auth.csrf_secret, DEV_CSRF_SECRET),
        ] {
            let value = secret.expose_secret();
            if dev && value.is_empty() {
                *secret = SecretString::from(dev_key);
                continue;
            }
            if value.len() < MIN_SECRET_BYTES {
                return Err(SettingsError::Invalid {
                    key,
                    problem: format!(
                        "must be at least {MIN_SECRET_BYTES} bytes (set SHOP__{})",
                        env_name(key)
                    ),
                });
            }
            let shipped =
                value == DEV_ACCESS_TOKEN_SECRET || value == DEV_CSRF_SECRET || FORMERLY_SHIPPED.contains(&value);
            if shipped && !dev {
                return Err(SettingsError::Invalid {
                    key,
                    problem: "is a development key from the repository; set a secret of your own".to_owned(),
                });
            }
        }
        if auth.access_token_secret.expose_secret() == auth.csrf_secret.expose_secret() && !dev {
            return Err(SettingsError::Invalid {
                key: "auth.csrf_secret",
                problem: "must differ from auth.access_token_secret".to_owned(),
            });
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, problem: &str| SettingsError::Invalid {
            key,
            problem: problem.to_owned(),
        };
        if self.database.pool_size == 0 {
            return Err(invalid("database.pool_size", "must be at least 1"));
        }
        if self
            .database
            .url
            .expose_secret()
            .parse::<tokio_postgres::Config>()
            .is_err()
        {
            return Err(invalid("database.url", "not a PostgreSQL connection URL"));
        }
        if self.auth.token_issuer.is_empty() || self.auth.token_audience.is_empty() {
            return Err(invalid("auth.token_issuer", "issuer and audience must be set"));
        }
        if self.auth.access_ttl_secs == 0 || self.auth.refresh_ttl_secs <= self.auth.access_ttl_secs {
            return Err(invalid(
                "auth.refresh_ttl_secs",
                "must be longer than auth.access_ttl_secs",
            ));
        }
        if self.auth.login_per_account_per_minute == 0
            || self.auth.login_per_ip_per_minute == 0
            || self.auth.signup_per_ip_per_minute == 0
            || self.auth.argon2_max_concurrent == 0
        {
            return Err(invalid(
                "auth.login_per_account_per_minute",
                "limits must be at least 1",
            ));
        }
        if reqwest::Url::parse(&self.gateway.url).is_err() {
            return Err(invalid("gateway.url", "not a URL"));
        }
        if self.gateway.timeout_ms == 0 {
            return Err(invalid("gateway.timeout_ms", "must be at least 1"));
        }
        if self.risk.timeout_ms == 0 {
            return Err(invalid("risk.timeout_ms", "must be at least 1"));
        }
        if self.risk.enabled && reqwest::Url::parse(&self.risk.url).is_err() {
            return Err(invalid("risk.url", "not a URL"));
        }
        if self.verification.max_attempts < 1 || self.verification.code_ttl_secs == 0 {
            return Err(invalid(
                "verification.max_attempts",
                "attempts and ttl must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `auth.csrf_secret` as its environment variable's tail: `AUTH__CSRF_SECRET`.
fn env_name(key: &str) -> String {
    key.replace('.', "__").to_uppercase()
}

impl DatabaseSettings {
    pub fn pg_config(&self) -> Result<tokio_postgres::Config, SettingsError> {
        let mut config: tokio_postgres::Config =
            self.url.expose_secret().parse().map_err(|_| SettingsError::Invalid {
                key: "database.url",
                problem: "not a PostgreSQL connection URL".to_owned(),
            })?;
        config
            .connect_timeout(self.connect_timeout())
            .application_name("shop")
            .options(format!("-c statement_timeout={}", self.statement_timeout_ms));
        Ok(config)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

impl RiskSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::load_with(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    const DEV: (&str, &str) = ("SHOP__DEV__ENABLED", "true");
    const TOKEN_KEY: (&str, &str) = (
        "SHOP__AUTH__ACCESS_TOKEN_SECRET",
        "0123456789abcdef0123456789abcdef-token",
    );
    const CSRF_KEY: (&str, &str) = ("SHOP__AUTH__CSRF_SECRET", "0123456789abcdef0123456789abcdef-csrf");

    #[test]
    fn outside_development_mode_the_shop_needs_secrets_of_its_own() {
        let missing = with(&[]).expect_err("no secrets set");
        assert!(missing.to_string().contains("auth.access_token_secret"), "{missing}");
        let no_csrf = with(&[TOKEN_KEY]).expect_err("no csrf key");
        assert!(no_csrf.to_string().contains("auth.csrf_secret"), "{no_csrf}");
        for shipped in [DEV_ACCESS_TOKEN_SECRET, FORMERLY_SHIPPED[0]] {
            let err = with(&[("SHOP__AUTH__ACCESS_TOKEN_SECRET", shipped), CSRF_KEY]).expect_err(shipped);
            assert!(err.to_string().contains("auth.access_token_secret"), "{err}");
        }
        let short = with(&[("SHOP__AUTH__ACCESS_TOKEN_SECRET", "short"), CSRF_KEY]).expect_err("short");
        assert!(short.to_string().contains("at least 32 bytes"), "{short}");
        let same = with(&[TOKEN_KEY, ("SHOP__AUTH__CSRF_SECRET", TOKEN_KEY.1)]).expect_err("same key twice");
        assert!(same.to_string().contains("auth.csrf_secret"), "{same}");
        let own = with(&[TOKEN_KEY, CSRF_KEY]).expect("secrets of its own");
        assert!(!own.dev.enabled, "development mode is never on by default");
    }

    #[test]
    fn development_mode_fills_in_development_keys() {
        let dev = with(&[DEV]).expect("development mode");
        assert_eq!(dev.auth.access_token_secret.expose_secret(), DEV_ACCESS_TOKEN_SECRET);
        assert_eq!(dev.auth.csrf_secret.expose_secret(), DEV_CSRF_SECRET);
    }

    #[test]
    fn the_defaults_load() {
        let settings = with(&[DEV]).expect("defaults are valid");
        assert_eq!(settings.risk.timeout_ms, 150);
        assert_eq!(settings.auth.access_ttl_secs, 900);
    }

    #[test]
    fn environment_overrides_apply_and_are_validated() {
        let settings = with(&[DEV, ("SHOP__RISK__TIMEOUT_MS", "40")]).expect("valid");
        assert_eq!(settings.risk.timeout(), Duration::from_millis(40));
        for (key, value, named) in [
            ("SHOP__RISK__TIMEOUT_MS", "0", "risk.timeout_ms"),
            ("SHOP__AUTH__ACCESS_TOKEN_SECRET", "short", "auth.access_token_secret"),
            ("SHOP__DATABASE__URL", "mysql://nope", "database.url"),
            ("SHOP__DATABASE__POOL_SIZE", "0", "database.pool_size"),
        ] {
            let err = with(&[DEV, (key, value)]).expect_err(key);
            assert!(err.to_string().contains(named), "{key}: {err}");
        }
    }
}
