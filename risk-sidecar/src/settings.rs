//! Typed settings: `configuration/base.yaml`, then `RISK__SECTION__KEY` environment overrides.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const BASE_FILE: &str = include_str!("../configuration/base.yaml");
const ENV_PREFIX: &str = "RISK";

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
    pub redis: RedisSettings,
    pub model: ModelSettings,
    pub policy: PolicySettings,
    pub decision: DecisionSettings,
    pub decision_log: DecisionLogSettings,
    pub limits: LimitSettings,
    pub currency: CurrencySettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub shutdown_grace_ms: u64,
    /// A request's head and body must have arrived within this.
    pub request_timeout_ms: u64,
    /// A second listener serving only /healthz, /readyz and /metrics (0: none), so the
    /// decision API can stay on loopback while probes and Prometheus reach the pod.
    pub ops_host: String,
    pub ops_port: u16,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    /// May carry a password, hence secret.
    pub url: SecretString,
    pub key_prefix: String,
    pub pool_size: usize,
    pub command_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub max_events_per_key: u32,
    pub max_linked_per_key: u32,
    pub decision_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelSettings {
    pub dir: PathBuf,
    /// Empty for none.
    pub shadow_dir: PathBuf,
    pub sessions: usize,
    pub ort_library: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PolicySettings {
    pub path: PathBuf,
    pub reload_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DecisionSettings {
    pub budget_ms: u64,
    /// At the HTTP edge, an `occurred_at` further back than this is refused (replay and
    /// training take any date).
    pub max_event_age_days: u32,
    /// Read the label and decline counters; off only to measure their cost.
    pub label_counters: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DecisionLogSettings {
    pub url: SecretString,
    pub pool_size: usize,
    pub connect_timeout_ms: u64,
    pub write_timeout_ms: u64,
    pub retention_days: u32,
    pub partitions_ahead_days: u32,
    pub queue_capacity: usize,
    pub batch_max: usize,
    pub flush_interval_ms: u64,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub email_hash_key: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    pub per_second: u32,
    pub burst: u32,
    /// Peers (addresses or CIDR ranges) whose `X-Client-Id` names the caller; any other
    /// caller is its address, whatever header it sends.
    #[serde(deserialize_with = "servicekit::list_setting")]
    pub trusted_callers: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CurrencySettings {
    pub reference: String,
    pub rates: BTreeMap<String, CurrencyRate>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct CurrencyRate {
    pub rate: f64,
    pub exponent: u8,
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
    /// mutate the environment). Keys as in the environment: `RISK__REDIS__URL`.
    pub fn load_with(overrides: HashMap<String, String>) -> Result<Settings, SettingsError> {
        Self::build(Some(overrides))
    }

    fn build(source: Option<HashMap<String, String>>) -> Result<Settings, SettingsError> {
        let settings: Settings = servicekit::load_settings(BASE_FILE, ENV_PREFIX, &["limits.trusted_callers"], source)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, problem: &str| SettingsError::Invalid {
            key,
            problem: problem.to_owned(),
        };
        if self.redis.pool_size == 0 {
            return Err(invalid("redis.pool_size", "must be at least 1"));
        }
        if self.redis.command_timeout_ms == 0 {
            return Err(invalid(
                "redis.command_timeout_ms",
                "must be at least 1 (0 would mean no timeout)",
            ));
        }
        if self.redis.max_events_per_key == 0 || self.redis.max_linked_per_key == 0 {
            return Err(invalid("redis.max_events_per_key", "bounds must be at least 1"));
        }
        if self.redis.max_linked_per_key > 64 {
            return Err(invalid(
                "redis.max_linked_per_key",
                "at most 64: each is a slot read on every decision",
            ));
        }
        if self.redis.key_prefix.is_empty() || self.redis.key_prefix.contains(['{', '}']) {
            return Err(invalid("redis.key_prefix", "must be non-empty and free of braces"));
        }
        let url = self.redis.url.expose_secret();
        let known_scheme = ["redis://", "rediss://", "redis-cluster://", "rediss-cluster://"]
            .iter()
            .any(|scheme| url.starts_with(scheme));
        if !url.is_empty() && (!known_scheme || fred::types::config::Config::from_url(url).is_err()) {
            return Err(invalid(
                "redis.url",
                "is not a redis://, rediss://, redis-cluster:// or rediss-cluster:// URL",
            ));
        }
        if self.decision.budget_ms == 0 {
            return Err(invalid("decision.budget_ms", "must be at least 1"));
        }
        self.decision_log.validate()?;
        if self.limits.per_second == 0 || self.limits.burst == 0 {
            return Err(invalid("limits.per_second", "limits must be at least 1"));
        }
        if self.policy.reload_interval_ms == 0 {
            return Err(invalid("policy.reload_interval_ms", "must be at least 1"));
        }
        match self.currency.rates.get(&self.currency.reference) {
            Some(r) if r.rate == 1.0 => {}
            _ => {
                return Err(invalid(
                    "currency.reference",
                    "must be listed in currency.rates with rate 1.0",
                ));
            }
        }
        for (code, rate) in &self.currency.rates {
            let well_formed = code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase());
            if !(well_formed && rate.rate.is_finite() && rate.rate > 0.0) || rate.exponent > 4 {
                return Err(SettingsError::Invalid {
                    key: "currency.rates",
                    problem: format!("{code}: needs an ISO 4217 code, a positive rate and an exponent of 0–4"),
                });
            }
        }
        Ok(())
    }

    /// The Redis URL, or `None` for the embedded in-memory store.
    pub fn redis_url(&self) -> Option<&str> {
        let url = self.redis.url.expose_secret();
        (!url.is_empty()).then_some(url)
    }
}

/// Shortest e-mail hash key: as long as the hash, or the hash is only as strong as the key.
const MIN_KEY_BYTES: usize = 32;

impl DecisionLogSettings {
    /// The PostgreSQL URL, or `None` when no log is kept.
    pub fn url(&self) -> Option<&str> {
        let url = self.url.expose_secret();
        (!url.is_empty()).then_some(url)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, problem: &str| SettingsError::Invalid {
            key,
            problem: problem.to_owned(),
        };
        let Some(url) = self.url() else { return Ok(()) };
        if url.parse::<tokio_postgres::Config>().is_err() {
            return Err(invalid("decision_log.url", "is not a PostgreSQL URL"));
        }
        if self.email_hash_key.expose_secret().len() < MIN_KEY_BYTES {
            return Err(invalid(
                "decision_log.email_hash_key",
                "must be at least 32 bytes when decision_log.url is set (none is shipped)",
            ));
        }
        if self.pool_size == 0 || self.queue_capacity == 0 || self.batch_max == 0 {
            return Err(invalid(
                "decision_log.queue_capacity",
                "pool_size, queue_capacity and batch_max must be at least 1",
            ));
        }
        if self.flush_interval_ms == 0 || self.write_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(invalid(
                "decision_log.flush_interval_ms",
                "intervals must be at least 1 ms",
            ));
        }
        if self.retention_days == 0 {
            return Err(invalid("decision_log.retention_days", "must be at least 1"));
        }
        if self.spool_dir.as_os_str().is_empty() {
            return Err(invalid("decision_log.spool_dir", "must name a directory"));
        }
        Ok(())
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }
}

impl ServerSettings {
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

impl RedisSettings {
    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

impl PolicySettings {
    pub fn reload_interval(&self) -> Duration {
        Duration::from_millis(self.reload_interval_ms)
    }
}

impl DecisionSettings {
    pub fn budget(&self) -> Duration {
        Duration::from_millis(self.budget_ms)
    }
}

impl ServerSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::load_with(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults_load_and_use_the_in_memory_store() {
        let s = with(&[]).expect("defaults are valid");
        assert_eq!(s.server.port, 8081);
        assert_eq!(s.redis_url(), None);
        assert_eq!(s.decision.budget_ms, 10);
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let s = with(&[
            ("RISK__REDIS__URL", "redis://127.0.0.1:6379"),
            ("RISK__SERVER__PORT", "9000"),
        ])
        .expect("valid");
        assert_eq!(s.redis_url(), Some("redis://127.0.0.1:6379"));
        assert_eq!(s.server.port, 9000);
    }

    #[test]
    fn a_list_variable_is_comma_separated_and_empty_means_none() {
        let s = with(&[("RISK__LIMITS__TRUSTED_CALLERS", "")]).expect("an empty list is valid");
        assert!(s.limits.trusted_callers.is_empty());
        let s = with(&[("RISK__LIMITS__TRUSTED_CALLERS", "10.0.0.0/8, 127.0.0.1/32")]).expect("two ranges");
        assert_eq!(s.limits.trusted_callers.len(), 2);
        let err = with(&[("RISK__LIMITS__TRUSTED_CALLERS", "10.0.0.0/8,nope")]).expect_err("a bad range");
        assert!(format!("{err:?}").contains("trusted_callers"), "{err:?}");
    }

    #[test]
    fn invalid_values_are_refused_with_the_key_named() {
        let cases = [
            (("RISK__REDIS__COMMAND_TIMEOUT_MS", "0"), "redis.command_timeout_ms"),
            (("RISK__REDIS__URL", "http://nope"), "redis.url"),
            (("RISK__DECISION__BUDGET_MS", "0"), "decision.budget_ms"),
            (("RISK__CURRENCY__REFERENCE", "XXX"), "currency.reference"),
            (("RISK__SERVER__PORT", "seventy"), "port"),
            (
                ("RISK__DECISION_LOG__URL", "postgres://postgres@127.0.0.1/risk"),
                "decision_log.email_hash_key",
            ),
        ];
        for ((key, value), expected) in cases {
            let err = with(&[(key, value)]).expect_err(key);
            let text = format!("{err}: {:?}", err);
            assert!(text.contains(expected), "{key}={value} gave {text}");
        }
    }
}
