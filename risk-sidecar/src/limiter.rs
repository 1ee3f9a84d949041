//! Per-caller rate limit: local load shedding against a runaway client.
//!
//! governor limits are per process; a limit across replicas would live in Redis.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::settings::LimitSettings;

/// Longer caller ids are cut, so a hostile header cannot grow the key table's memory.
const MAX_KEY_LEN: usize = 64;

pub struct CallerLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl CallerLimiter {
    pub fn new(settings: &LimitSettings) -> CallerLimiter {
        let per_second = NonZeroU32::new(settings.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
        CallerLimiter {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// `Ok` to proceed, or how many whole seconds to wait (`Retry-After`).
    pub fn check(&self, caller: &str) -> Result<(), u64> {
        let key = &caller[..caller.floor_char_boundary(MAX_KEY_LEN)];
        // A key lookup first: the common case allocates nothing new in the table.
        match self.limiter.check_key(&key.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
        }
    }

    /// Forgets callers that have been idle; run periodically.
    pub fn spawn_cleanup(self: &std::sync::Arc<Self>) {
        let this = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                this.limiter.retain_recent();
                this.limiter.shrink_to_fit();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_over_its_burst_waits_and_others_do_not() {
        let limiter = CallerLimiter::new(&LimitSettings {
            per_second: 1,
            burst: 2,
            trusted_callers: Vec::new(),
        });
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        let retry_after = limiter
            .check("a")
            .expect_err("third call within the second is over the burst");
        assert_eq!(retry_after, 1);
        assert!(limiter.check("b").is_ok(), "callers are limited separately");
    }

    #[test]
    fn long_caller_ids_share_their_prefix_key() {
        let limiter = CallerLimiter::new(&LimitSettings {
            per_second: 1,
            burst: 1,
            trusted_callers: Vec::new(),
        });
        let long = "x".repeat(200);
        assert!(limiter.check(&long).is_ok());
        assert!(
            limiter.check(&format!("{long}y")).is_err(),
            "cut to the same 64-byte key"
        );
    }
}
