//! API tokens this process has checked lately, with their users.
//!
//! Checking a bearer token is a database read on every API call, as costly
//! as the read the call is for. A token checked within the last moment is
//! trusted again without asking. What ends a token in this process (sign-out,
//! an admin changing or disabling its user) forgets it here at once; another
//! process notices at its next check, at most one `ttl` later.

use crate::domain::ids::UserId;
use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::store::User;

/// More tokens than any one process serves at once; past it, the stale
/// entries go, and all of them if that is not enough.
const CAPACITY: usize = 10_000;

struct Checked {
    user: User,
    at: DateTime<Utc>,
}

pub struct TokenCache {
    ttl: Duration,
    checked: Mutex<HashMap<String, Checked>>,
}

impl TokenCache {
    /// A zero `ttl` remembers nothing: every call asks the database.
    pub fn new(ttl: Duration) -> TokenCache {
        TokenCache {
            ttl,
            checked: Mutex::default(),
        }
    }

    fn fresh(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        // A clock that went back is no reason to trust longer.
        at <= now && now - at < self.ttl
    }

    /// The user of a token checked less than `ttl` before `now`.
    pub fn get(&self, token_hash: &str, now: DateTime<Utc>) -> Option<User> {
        if self.ttl <= Duration::zero() {
            return None;
        }
        let mut checked = self.checked.lock().ok()?;
        match checked.get(token_hash) {
            Some(entry) if self.fresh(entry.at, now) => Some(entry.user.clone()),
            Some(_) => {
                checked.remove(token_hash);
                None
            }
            None => None,
        }
    }

    /// Remembers that the token was valid for `user` at `now`.
    pub fn put(&self, token_hash: &str, user: &User, now: DateTime<Utc>) {
        if self.ttl <= Duration::zero() {
            return;
        }
        let Ok(mut checked) = self.checked.lock() else {
            return;
        };
        if checked.len() >= CAPACITY {
            checked.retain(|_, entry| self.fresh(entry.at, now));
            if checked.len() >= CAPACITY {
                checked.clear();
            }
        }
        checked.insert(
            token_hash.to_string(),
            Checked {
                user: user.clone(),
                at: now,
            },
        );
    }

    /// Forgets a token that was revoked.
    pub fn forget(&self, token_hash: &str) {
        if let Ok(mut checked) = self.checked.lock() {
            checked.remove(token_hash);
        }
    }

    /// Forgets every token of a user whose account changed.
    pub fn forget_user(&self, user_id: UserId) {
        if let Ok(mut checked) = self.checked.lock() {
            checked.retain(|_, entry| entry.user.id != user_id);
        }
    }

    pub fn len(&self) -> usize {
        self.checked.lock().map_or(0, |c| c.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::Role;

    fn user(email: &str) -> User {
        User {
            id: UserId::new(),
            email: crate::domain::email::Email::parse(email).unwrap(),
            display_name: email.into(),
            password_hash: String::new(),
            role: Role::Customer,
            subscription_id: None,
            time_zone: "UTC".into(),
            disabled: false,
            session_epoch: 0,
            must_change_password: false,
            created_at: DateTime::UNIX_EPOCH,
        }
    }

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + Duration::seconds(seconds)
    }

    #[test]
    fn a_checked_token_is_trusted_for_ttl_and_no_longer() {
        let cache = TokenCache::new(Duration::seconds(2));
        let alice = user("alice@contoso.example");
        assert_eq!(cache.get("h1", t(100)), None);
        cache.put("h1", &alice, t(100));
        assert_eq!(cache.get("h1", t(100)), Some(alice.clone()));
        assert_eq!(cache.get("h1", t(101)), Some(alice));
        assert_eq!(cache.get("h1", t(102)), None);
        // A stale entry is dropped when it is found stale.
        assert!(cache.is_empty());
        assert_eq!(cache.get("other", t(100)), None);
    }

    #[test]
    fn a_clock_that_went_back_does_not_extend_trust() {
        let cache = TokenCache::new(Duration::seconds(2));
        cache.put("h1", &user("a@x.example"), t(100));
        assert_eq!(cache.get("h1", t(99)), None);
    }

    #[test]
    fn forgetting_by_token_and_by_user() {
        let cache = TokenCache::new(Duration::seconds(60));
        let alice = user("alice@contoso.example");
        let bob = user("bob@contoso.example");
        cache.put("alice-1", &alice, t(0));
        cache.put("alice-2", &alice, t(0));
        cache.put("bob-1", &bob, t(0));
        cache.forget("alice-1");
        assert_eq!(cache.get("alice-1", t(1)), None);
        assert_eq!(cache.get("alice-2", t(1)), Some(alice.clone()));
        cache.forget_user(alice.id);
        assert_eq!(cache.get("alice-2", t(1)), None);
        assert_eq!(cache.get("bob-1", t(1)), Some(bob));
    }

    #[test]
    fn a_zero_ttl_remembers_nothing() {
        let cache = TokenCache::new(Duration::zero());
        cache.put("h1", &user("a@x.example"), t(0));
        assert!(cache.is_empty());
        assert_eq!(cache.get("h1", t(0)), None);
    }

    #[test]
    fn it_stays_within_its_capacity() {
        let cache = TokenCache::new(Duration::seconds(5));
        let alice = user("alice@contoso.example");
        for n in 0..CAPACITY {
            cache.put(&format!("old-{n}"), &alice, t(0));
        }
        assert_eq!(cache.len(), CAPACITY);
        // Full of stale entries: they make room.
        cache.put("new", &alice, t(10));
        assert_eq!(cache.len(), 1);
        // Full of fresh ones: it starts again.
        for n in 0..CAPACITY {
            cache.put(&format!("fresh-{n}"), &alice, t(20));
        }
        assert_eq!(cache.len(), CAPACITY);
        cache.put("newest", &alice, t(20));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("newest", t(20)), Some(alice));
    }
}
