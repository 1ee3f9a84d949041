//! Log-in attempt limits per account and per IP (governor keyed limiters, per process).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ShopError;

#[derive(Clone)]
pub struct LoginLimiter {
    per_account: Arc<DefaultKeyedRateLimiter<String>>,
    per_ip: Arc<DefaultKeyedRateLimiter<String>>,
}

impl LoginLimiter {
    pub fn new(per_account_per_minute: u32, per_ip_per_minute: u32) -> LoginLimiter {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        LoginLimiter {
            per_account: Arc::new(RateLimiter::keyed(quota(per_account_per_minute))),
            per_ip: Arc::new(RateLimiter::keyed(quota(per_ip_per_minute))),
        }
    }

    /// Spends one attempt of each budget; either one exhausted refuses.
    pub fn check(&self, account: &str, ip: &str) -> Result<(), ShopError> {
        let clock = DefaultClock::default();
        for (limiter, key) in [(&self.per_ip, ip), (&self.per_account, account)] {
            // Keys are bounded so an attacker cannot grow the map with huge strings.
            let key: String = key.chars().take(128).collect();
            if let Err(not_until) = limiter.check_key(&key) {
                crate::metrics::login_attempt("rate_limited");
                let wait: Duration = not_until.wait_time_from(clock.now());
                return Err(ShopError::RateLimited {
                    retry_after_secs: wait.as_secs().max(1),
                });
            }
        }
        Ok(())
    }

    /// Forgets idle keys; called periodically.
    pub fn retain_recent(&self) {
        self.per_account.retain_recent();
        self.per_ip.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_attempt_on_one_account_is_refused_but_another_account_is_not() {
        let limiter = LoginLimiter::new(5, 100);
        for i in 0..5 {
            assert!(
                limiter.check("ada@example.com", &format!("10.0.0.{i}")).is_ok(),
                "attempt {i}"
            );
        }
        let refused = limiter.check("ada@example.com", "10.0.0.9").expect_err("sixth");
        assert!(matches!(refused, ShopError::RateLimited { retry_after_secs } if retry_after_secs >= 1));
        assert!(limiter.check("bob@example.com", "10.0.0.9").is_ok());
    }

    #[test]
    fn one_ip_is_limited_across_accounts() {
        let limiter = LoginLimiter::new(100, 3);
        for i in 0..3 {
            assert!(limiter.check(&format!("user{i}@example.com"), "10.0.0.1").is_ok());
        }
        assert!(limiter.check("user9@example.com", "10.0.0.1").is_err());
        assert!(limiter.check("user9@example.com", "10.0.0.2").is_ok());
    }
}
