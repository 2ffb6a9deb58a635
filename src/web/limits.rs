//! Rate limits on signing in and on filing (SPEC §9): per client address
//! and per account or user, `LOGIN_RATE_LIMIT` / `FILING_RATE_LIMIT` per
//! minute, `0` for none. Counters live in memory, per process.
//!
//! Sign-in is limited per address, and an account that keeps failing backs
//! off — but only for addresses it has not signed in from before: someone
//! else's guesses never lock a person out of their own account from where
//! they usually work, and a backoff always ends (at most
//! `LOGIN_BACKOFF_MAX_SECONDS` after the last guess it counted; attempts it
//! turned away are not counted).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::ids::UserId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

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

/// What sign-in remembers of one account: its failures since it last
/// signed in, and the addresses it signed in from.
#[derive(Debug, Default)]
struct AccountRecord {
    failures: u32,
    last_failure: Option<Instant>,
    known: HashMap<IpAddr, Instant>,
    touched: Option<Instant>,
}

/// Addresses remembered per account, and accounts remembered at all: a
/// bound, so sprayed guesses at made-up accounts cannot grow memory.
const KNOWN_PER_ACCOUNT: usize = 20;
const ACCOUNTS_REMEMBERED: usize = 100_000;
/// An address an account signed in from stays trusted this long.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// Failures of accounts and where they sign in from.
struct AccountBackoff {
    /// Failures in a row an account takes before it backs off.
    threshold: u32,
    max_wait: Duration,
    accounts: Mutex<HashMap<String, AccountRecord>>,
}

impl AccountBackoff {
    /// How long a new attempt from `addr` must wait, if at all.
    fn wait(&self, account: &str, addr: IpAddr, now: Instant) -> Option<Duration> {
        if self.threshold == 0 {
            return None;
        }
        let accounts = self.accounts.lock().ok()?;
        let record = accounts.get(account)?;
        if record
            .known
            .get(&addr)
            .is_some_and(|at| now.duration_since(*at) < KNOWN_FOR)
        {
            return None;
        }
        if record.failures < self.threshold {
            return None;
        }
        let doublings = (record.failures - self.threshold).min(20);
        let backoff = Duration::from_secs(1u64 << doublings).min(self.max_wait);
        let until = record.last_failure? + backoff;
        (until > now).then(|| until - now)
    }

    fn record(&self, account: &str, now: Instant, change: impl FnOnce(&mut AccountRecord)) {
        let Ok(mut accounts) = self.accounts.lock() else {
            return;
        };
        if accounts.len() >= ACCOUNTS_REMEMBERED && !accounts.contains_key(account) {
            // Forget the least recently touched to make room.
            if let Some(oldest) = accounts
                .iter()
                .min_by_key(|(_, r)| r.touched)
                .map(|(k, _)| k.clone())
            {
                accounts.remove(&oldest);
            }
        }
        let record = accounts.entry(account.to_string()).or_default();
        record.touched = Some(now);
        change(record);
    }

    fn failed(&self, account: &str, now: Instant) {
        self.record(account, now, |r| {
            r.failures = r.failures.saturating_add(1);
            r.last_failure = Some(now);
        });
    }

    fn succeeded(&self, account: &str, addr: IpAddr, now: Instant) {
        self.record(account, now, |r| {
            r.failures = 0;
            r.last_failure = None;
            r.known.insert(addr, now);
            if r.known.len() > KNOWN_PER_ACCOUNT
                && let Some(oldest) = r.known.iter().min_by_key(|(_, at)| **at).map(|(a, _)| *a)
            {
                r.known.remove(&oldest);
            }
        });
    }

    fn tidy(&self, now: Instant) {
        if let Ok(mut accounts) = self.accounts.lock() {
            accounts.retain(|_, r| {
                r.known.retain(|_, at| now.duration_since(*at) < KNOWN_FOR);
                let quiet = r
                    .touched
                    .is_none_or(|t| now.duration_since(t) > self.max_wait * 2);
                !(r.known.is_empty() && quiet)
            });
        }
    }
}

pub struct Limits {
    login_by_addr: Limit<IpAddr>,
    login_by_account: AccountBackoff,
    filing_by_user: Limit<UserId>,
    filing_by_addr: Limit<IpAddr>,
}

fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Limits {
    pub fn new(settings: &Settings) -> Limits {
        Limits {
            login_by_addr: Limit::per_minute(settings.login_rate_limit),
            login_by_account: AccountBackoff {
                threshold: settings.login_rate_limit,
                max_wait: Duration::from_secs(settings.login_backoff_max_seconds.max(1)),
                accounts: Mutex::new(HashMap::new()),
            },
            filing_by_user: Limit::per_minute(settings.filing_rate_limit),
            filing_by_addr: Limit::per_minute(settings.filing_rate_limit),
        }
    }

    /// Counts one sign-in attempt from `addr` for `email`: refused when the
    /// address is over its limit, or when the account backs off from an
    /// address it never signed in from.
    pub fn sign_in(&self, addr: IpAddr, email: &str) -> Result<(), AppError> {
        self.login_by_addr.check(&addr).map_err(|wait| {
            AppError::too_many(
                format!("Too many sign-in attempts. Wait {wait} seconds before trying again."),
                wait,
            )
        })?;
        if let Some(wait) = self
            .login_by_account
            .wait(&account_key(email), addr, Instant::now())
        {
            let seconds = wait.as_secs() + 1;
            return Err(AppError::too_many(
                format!(
                    "Too many sign-in attempts for this account from elsewhere. Wait {seconds} \
                     seconds before trying again, or sign in from a device you have used before."
                ),
                seconds,
            ));
        }
        Ok(())
    }

    /// The attempt's password was wrong.
    pub fn sign_in_failed(&self, email: &str) {
        self.login_by_account
            .failed(&account_key(email), Instant::now());
    }

    /// The attempt signed in: the account's failures are forgiven and the
    /// address is one it is known at.
    pub fn signed_in(&self, addr: IpAddr, email: &str) {
        self.login_by_account
            .succeeded(&account_key(email), addr, Instant::now());
    }

    /// Counts one filing attempt by `user` from `addr`.
    pub fn filing(&self, user: UserId, addr: IpAddr) -> Result<(), AppError> {
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
        self.login_by_account.tidy(Instant::now());
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

    #[test]
    fn an_account_backs_off_only_for_addresses_it_does_not_know() {
        let backoff = AccountBackoff {
            threshold: 3,
            max_wait: Duration::from_secs(60),
            accounts: Mutex::new(HashMap::new()),
        };
        let (home, attacker): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.9.9.9".parse().unwrap());
        let t0 = Instant::now();
        backoff.succeeded("alice", home, t0);
        for _ in 0..3 {
            assert_eq!(backoff.wait("alice", attacker, t0), None);
            backoff.failed("alice", t0);
        }
        // Three failures: strangers wait a second, doubling per failure.
        assert_eq!(
            backoff.wait("alice", attacker, t0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            backoff.wait("alice", home, t0),
            None,
            "home is never held back"
        );
        for _ in 0..10 {
            backoff.failed("alice", t0);
        }
        assert_eq!(
            backoff.wait("alice", attacker, t0),
            Some(Duration::from_secs(60)),
            "capped"
        );
        // Turned-away attempts are not counted: the wait ends.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(backoff.wait("alice", attacker, later), None);
        backoff.succeeded("alice", attacker, later);
        assert_eq!(
            backoff.wait("alice", "10.5.5.5".parse().unwrap(), later),
            None
        );
        let off = AccountBackoff {
            threshold: 0,
            max_wait: Duration::from_secs(60),
            accounts: Mutex::new(HashMap::new()),
        };
        for _ in 0..100 {
            off.failed("bob", t0);
        }
        assert_eq!(off.wait("bob", attacker, t0), None, "0 turns it off");
    }
}
