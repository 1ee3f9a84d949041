//! Limits on log-in and sign-up (per process).
//!
//! Log-in: failures of one account from one address back off progressively (after
//! `free_failures`, each further attempt waits twice as long as the last, up to 15
//! minutes), so guessing one account from one address gets nowhere while its owner,
//! from another address, logs in as usual. One address is also limited across
//! accounts, and one account across all addresses by a ceiling well above what a
//! person types, which bounds a distributed guess without handing a stranger the
//! power to lock the owner out with five wrong passwords.
//!
//! Sign-up: per address, since every sign-up costs an argon2 hash.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ShopError;

const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Keys are bounded so an attacker cannot grow the maps with huge strings.
const MAX_KEY_CHARS: usize = 128;

#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_account_per_minute: u32,
    pub per_ip_per_minute: u32,
    pub free_failures: u32,
    pub signup_per_ip_per_minute: u32,
}

struct Failures {
    count: u32,
    not_before: Instant,
    last: Instant,
}

#[derive(Clone)]
pub struct LoginLimiter {
    per_account: Arc<DefaultKeyedRateLimiter<String>>,
    per_ip: Arc<DefaultKeyedRateLimiter<String>>,
    signup_per_ip: Arc<DefaultKeyedRateLimiter<String>>,
    failures: Arc<Mutex<HashMap<(String, String), Failures>>>,
    free_failures: u32,
}

fn quota(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

fn key(s: &str) -> String {
    s.chars().take(MAX_KEY_CHARS).collect()
}

fn refused(wait: Duration) -> ShopError {
    ShopError::RateLimited {
        retry_after_secs: wait.as_secs().max(1),
    }
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> LoginLimiter {
        LoginLimiter {
            per_account: Arc::new(RateLimiter::keyed(quota(limits.per_account_per_minute))),
            per_ip: Arc::new(RateLimiter::keyed(quota(limits.per_ip_per_minute))),
            signup_per_ip: Arc::new(RateLimiter::keyed(quota(limits.signup_per_ip_per_minute))),
            failures: Arc::new(Mutex::new(HashMap::new())),
            free_failures: limits.free_failures,
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Failures>> {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Before a password is checked: refuses while this account and address are backing
    /// off, then spends one attempt of the address's and the account's budgets.
    pub fn check(&self, account: &str, ip: &str) -> Result<(), ShopError> {
        let now = Instant::now();
        let pair = (key(account), key(ip));
        if let Some(f) = self.failures().get(&pair)
            && f.not_before > now
        {
            crate::metrics::login_attempt("rate_limited");
            return Err(refused(f.not_before - now));
        }
        let clock = DefaultClock::default();
        for (limiter, key) in [(&self.per_ip, &pair.1), (&self.per_account, &pair.0)] {
            if let Err(not_until) = limiter.check_key(key) {
                crate::metrics::login_attempt("rate_limited");
                return Err(refused(not_until.wait_time_from(clock.now())));
            }
        }
        Ok(())
    }

    /// A wrong password: past the free failures, the next attempt waits 1 s, 2 s, 4 s …
    pub fn failed(&self, account: &str, ip: &str) {
        let now = Instant::now();
        let mut failures = self.failures();
        let f = failures.entry((key(account), key(ip))).or_insert(Failures {
            count: 0,
            not_before: now,
            last: now,
        });
        f.count += 1;
        f.last = now;
        if f.count > self.free_failures {
            let over = f.count - self.free_failures - 1;
            let delay = Duration::from_secs(1u64 << over.min(20)).min(MAX_DELAY);
            f.not_before = now + delay;
        }
    }

    /// The right password clears the pair's failures.
    pub fn succeeded(&self, account: &str, ip: &str) {
        self.failures().remove(&(key(account), key(ip)));
    }

    /// Spends one sign-up of the address's budget.
    pub fn check_signup(&self, ip: &str) -> Result<(), ShopError> {
        let clock = DefaultClock::default();
        self.signup_per_ip
            .check_key(&key(ip))
            .map_err(|not_until| refused(not_until.wait_time_from(clock.now())))
    }

    /// Forgets idle keys; called periodically.
    pub fn retain_recent(&self) {
        self.per_account.retain_recent();
        self.per_ip.retain_recent();
        self.signup_per_ip.retain_recent();
        let now = Instant::now();
        self.failures()
            .retain(|_, f| f.not_before > now || now.duration_since(f.last) < MAX_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_account: u32, per_ip: u32) -> LoginLimiter {
        LoginLimiter::new(LoginLimits {
            per_account_per_minute: per_account,
            per_ip_per_minute: per_ip,
            free_failures: 5,
            signup_per_ip_per_minute: 2,
        })
    }

    #[test]
    fn failures_of_one_pair_back_off_and_leave_other_addresses_alone() {
        let limiter = limiter(100, 100);
        for i in 0..5 {
            assert!(limiter.check("ada@example.com", "10.0.0.1").is_ok(), "attempt {i}");
            limiter.failed("ada@example.com", "10.0.0.1");
        }
        assert!(
            limiter.check("ada@example.com", "10.0.0.1").is_ok(),
            "five failures are free"
        );
        limiter.failed("ada@example.com", "10.0.0.1");
        let refused = limiter.check("ada@example.com", "10.0.0.1").expect_err("backing off");
        assert!(matches!(refused, ShopError::RateLimited { retry_after_secs } if retry_after_secs >= 1));
        assert!(
            limiter.check("ada@example.com", "10.0.0.2").is_ok(),
            "the owner elsewhere"
        );
        limiter.succeeded("ada@example.com", "10.0.0.1");
        assert!(
            limiter.check("ada@example.com", "10.0.0.1").is_ok(),
            "cleared by a success"
        );
    }

    #[test]
    fn one_ip_is_limited_across_accounts_and_one_account_across_ips() {
        let limiter = limiter(100, 3);
        for i in 0..3 {
            assert!(limiter.check(&format!("user{i}@example.com"), "10.0.0.1").is_ok());
        }
        assert!(limiter.check("user9@example.com", "10.0.0.1").is_err());
        assert!(limiter.check("user9@example.com", "10.0.0.2").is_ok());

        let limiter = self::limiter(3, 100);
        for i in 0..3 {
            assert!(limiter.check("ada@example.com", &format!("10.0.1.{i}")).is_ok());
        }
        assert!(
            limiter.check("ada@example.com", "10.0.1.9").is_err(),
            "the account's ceiling"
        );
    }

    #[test]
    fn sign_ups_are_limited_per_address() {
        let limiter = limiter(100, 100);
        assert!(limiter.check_signup("10.0.0.1").is_ok());
        assert!(limiter.check_signup("10.0.0.1").is_ok());
        assert!(limiter.check_signup("10.0.0.1").is_err());
        assert!(limiter.check_signup("10.0.0.2").is_ok());
    }
}
