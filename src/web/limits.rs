//! Rate limits on signing in and on filing (SPEC §9): per client address
//! and per account or user, `LOGIN_RATE_LIMIT` / `FILING_RATE_LIMIT` per
//! minute, `0` for none. Counters live in memory, per process.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use super::error::AppError;
use crate::config::Settings;

struct Limit<K: Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Limit<K> {
    fn per_minute(n: u32) -> Limit<K> {
        Limit {
            limiter: NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// `Err(seconds to wait)` when `key` is over its limit.
    fn check(&self, key: &K) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                + 1
        })
    }

    fn tidy(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
        }
    }
}

pub struct Limits {
    login_by_addr: Limit<IpAddr>,
    login_by_account: Limit<String>,
    filing_by_user: Limit<Uuid>,
    filing_by_addr: Limit<IpAddr>,
}

impl Limits {
    pub fn new(settings: &Settings) -> Limits {
        Limits {
            login_by_addr: Limit::per_minute(settings.login_rate_limit),
            login_by_account: Limit::per_minute(settings.login_rate_limit),
            filing_by_user: Limit::per_minute(settings.filing_rate_limit),
            filing_by_addr: Limit::per_minute(settings.filing_rate_limit),
        }
    }

    /// Counts one sign-in attempt from `addr` for `email`.
    pub fn sign_in(&self, addr: IpAddr, email: &str) -> Result<(), AppError> {
        let account = email.trim().to_lowercase();
        self.login_by_addr
            .check(&addr)
            .and_then(|()| self.login_by_account.check(&account))
            .map_err(|wait| {
                AppError::too_many(
                    format!("Too many sign-in attempts. Wait {wait} seconds before trying again."),
                    wait,
                )
            })
    }

    /// Counts one filing attempt by `user` from `addr`.
    pub fn filing(&self, user: Uuid, addr: IpAddr) -> Result<(), AppError> {
        self.filing_by_user
            .check(&user)
            .and_then(|()| self.filing_by_addr.check(&addr))
            .map_err(|wait| {
                AppError::too_many(
                    format!(
                        "You have filed too many requests in the last minute. Wait {wait} \
                         seconds and submit again."
                    ),
                    wait,
                )
            })
    }

    /// Forgets keys that are back under their limits.
    pub fn tidy(&self) {
        self.login_by_addr.tidy();
        self.login_by_account.tidy();
        self.filing_by_user.tidy();
        self.filing_by_addr.tidy();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_turns_a_limit_off_and_n_allows_n() {
        let off: Limit<u8> = Limit::per_minute(0);
        for _ in 0..1000 {
            assert!(off.check(&1).is_ok());
        }
        let three: Limit<u8> = Limit::per_minute(3);
        for _ in 0..3 {
            assert!(three.check(&1).is_ok());
        }
        let wait = three.check(&1).unwrap_err();
        assert!((1..=61).contains(&wait), "{wait}");
        assert!(three.check(&2).is_ok(), "keys are counted apart");
    }
}
