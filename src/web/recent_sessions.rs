//! Sessions read lately, kept in front of the session table.
//!
//! Every page a signed-in person opens loads their session; it changes only
//! when they sign in or out or send a form, and those writes pass through
//! here. A session another process ended (signing out there) may still be
//! found here for up to `READ_CACHE_MS`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Result, SessionStore};

use crate::read_cache::ReadCache;

#[derive(Clone)]
pub struct RecentSessions {
    cache: Arc<ReadCache<Id, Record>>,
}

impl std::fmt::Debug for RecentSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentSessions")
            .field("len", &self.cache.len())
            .finish()
    }
}

impl RecentSessions {
    pub fn new(ttl: std::time::Duration) -> RecentSessions {
        RecentSessions {
            cache: Arc::new(ReadCache::new(ttl)),
        }
    }
}

// The cache keys entries by session alone: the store's write count does not
// bear on sessions, whose own writes all come through `save` and `delete`.
const NO_WRITES: u64 = 0;

#[async_trait]
impl SessionStore for RecentSessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.save(record).await
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.cache
            .put(record.id, Arc::new(record.clone()), NO_WRITES, Utc::now());
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        Ok(self
            .cache
            .get(id, NO_WRITES, Utc::now())
            .filter(|record| record.expiry_date > OffsetDateTime::now_utc())
            .map(|record| (*record).clone()))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.cache.forget(id);
        Ok(())
    }
}
