//! Per-caller rate limit: local load shedding against a runaway client.
//!
//! governor limits are per process; a limit across replicas would live in Redis.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::settings::LimitSettings;

/// Who is calling: the peer's address and, for a trusted peer, the caller it names.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub struct Caller<'a> {
    pub peer: Option<IpAddr>,
    pub name: Option<&'a str>,
}

pub struct CallerLimiter {
    /// Keyed by the caller's hash under this process's random key: nothing allocated per
    /// request, 8 bytes a key whatever a hostile header holds, and no caller can pick a
    /// value that lands in another's bucket.
    limiter: DefaultKeyedRateLimiter<u64>,
    keys: RandomState,
    clock: DefaultClock,
}

impl CallerLimiter {
    pub fn new(settings: &LimitSettings) -> CallerLimiter {
        let per_second = NonZeroU32::new(settings.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
        CallerLimiter {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            keys: RandomState::new(),
            clock: DefaultClock::default(),
        }
    }

    /// `Ok` to proceed, or how many whole seconds to wait (`Retry-After`).
    pub fn check(&self, caller: &Caller<'_>) -> Result<(), u64> {
        match self.limiter.check_key(&self.keys.hash_one(caller)) {
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

    fn limiter(burst: u32) -> CallerLimiter {
        CallerLimiter::new(&LimitSettings {
            per_second: 1,
            burst,
            trusted_callers: Vec::new(),
        })
    }

    fn named(name: &str) -> Caller<'_> {
        Caller {
            peer: Some(IpAddr::from([127, 0, 0, 1])),
            name: Some(name),
        }
    }

    #[test]
    fn a_caller_over_its_burst_waits_and_others_do_not() {
        let limiter = limiter(2);
        assert!(limiter.check(&named("a")).is_ok());
        assert!(limiter.check(&named("a")).is_ok());
        let retry_after = limiter
            .check(&named("a"))
            .expect_err("third call within the second is over the burst");
        assert_eq!(retry_after, 1);
        assert!(limiter.check(&named("b")).is_ok(), "callers are limited separately");
    }

    #[test]
    fn the_address_and_the_name_both_make_the_caller() {
        let limiter = limiter(1);
        let peer = Some(IpAddr::from([10, 0, 0, 7]));
        assert!(limiter.check(&Caller { peer, name: None }).is_ok());
        assert!(limiter.check(&Caller { peer, name: None }).is_err(), "the same address");
        assert!(
            limiter
                .check(&Caller {
                    peer,
                    name: Some("shop")
                })
                .is_ok(),
            "a name the peer gives is a caller of its own"
        );
        let long = "x".repeat(10_000);
        assert!(
            limiter
                .check(&Caller {
                    peer,
                    name: Some(&long)
                })
                .is_ok()
        );
        assert!(
            limiter
                .check(&Caller {
                    peer,
                    name: Some(&format!("{long}y"))
                })
                .is_ok(),
            "names are told apart whatever their length (the key is a hash: 8 bytes)"
        );
        assert!(
            limiter
                .check(&Caller {
                    peer,
                    name: Some(&long)
                })
                .is_err()
        );
    }
}
