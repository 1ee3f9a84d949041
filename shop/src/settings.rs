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
    pub secret: SecretString,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    pub cookie_secure: bool,
    pub login_per_account_per_minute: u32,
    pub login_per_ip_per_minute: u32,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
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
    pub fingerprint_secret: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DevSettings {
    pub mailbox: bool,
    pub demo_data: bool,
}

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
        let settings: Settings = servicekit::load_settings(BASE_FILE, ENV_PREFIX, &["server.trusted_proxies"], source)?;
        settings.validate()?;
        Ok(settings)
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
        if self.auth.secret.expose_secret().len() < 32 {
            return Err(invalid("auth.secret", "must be at least 32 bytes"));
        }
        if self.auth.access_ttl_secs == 0 || self.auth.refresh_ttl_secs <= self.auth.access_ttl_secs {
            return Err(invalid(
                "auth.refresh_ttl_secs",
                "must be longer than auth.access_ttl_secs",
            ));
        }
        if self.auth.login_per_account_per_minute == 0 || self.auth.login_per_ip_per_minute == 0 {
            return Err(invalid(
                "auth.login_per_account_per_minute",
                "limits must be at least 1",
            ));
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

    #[test]
    fn the_defaults_load() {
        let settings = with(&[]).expect("defaults are valid");
        assert_eq!(settings.risk.timeout_ms, 150);
        assert_eq!(settings.auth.access_ttl_secs, 900);
    }

    #[test]
    fn environment_overrides_apply_and_are_validated() {
        let settings = with(&[("SHOP__RISK__TIMEOUT_MS", "40")]).expect("valid");
        assert_eq!(settings.risk.timeout(), Duration::from_millis(40));
        for (key, value, named) in [
            ("SHOP__RISK__TIMEOUT_MS", "0", "risk.timeout_ms"),
            ("SHOP__AUTH__SECRET", "short", "auth.secret"),
            ("SHOP__DATABASE__URL", "mysql://nope", "database.url"),
            ("SHOP__DATABASE__POOL_SIZE", "0", "database.pool_size"),
        ] {
            let err = with(&[(key, value)]).expect_err(key);
            assert!(err.to_string().contains(named), "{key}: {err}");
        }
    }
}
