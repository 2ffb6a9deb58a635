//! Reads that pages repeat, remembered for a moment.
//!
//! A ticket page is several queries, and a person watching it (or a script
//! polling it) asks for the same rows again and again while nothing changed.
//! An entry here is trusted only while this process has written nothing
//! since it was read — the store counts its own writes, and every write goes
//! through it — and for at most `ttl`, which bounds how late a write by
//! another process sharing the database shows. A read in this process after
//! its own write therefore always sees that write.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// More entries than any one process serves at once; past it, the stale
/// entries go, and all of them if that is not enough.
const CAPACITY: usize = 10_000;

struct Entry<V> {
    value: Arc<V>,
    /// The store's write count when the read began.
    writes: u64,
    read_at: Instant,
    /// The desk's clock then: a clock moved on (in tests, by hand) ends the
    /// entry like real time does.
    now: DateTime<Utc>,
}

pub struct ReadCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, Entry<V>>>,
}

impl<K: Eq + Hash + Clone, V> ReadCache<K, V> {
    /// A zero `ttl` remembers nothing: every read asks the database.
    pub fn new(ttl: Duration) -> ReadCache<K, V> {
        ReadCache {
            ttl,
            entries: Mutex::default(),
        }
    }

    fn fresh(&self, entry: &Entry<V>, writes: u64, now: DateTime<Utc>) -> bool {
        let clock_moved = now - entry.now;
        entry.writes == writes
            && entry.read_at.elapsed() < self.ttl
            && clock_moved >= chrono::Duration::zero()
            && clock_moved.to_std().is_ok_and(|moved| moved < self.ttl)
    }

    /// The value read for `key`, if nothing was written since and it is
    /// younger than `ttl`.
    pub fn get(&self, key: &K, writes: u64, now: DateTime<Utc>) -> Option<Arc<V>> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some(entry) if self.fresh(entry, writes, now) => Some(entry.value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers `value`, read for `key` by a read that began when the
    /// store's write count was `writes` (a write that landed during the read
    /// makes it stale at once).
    pub fn put(&self, key: K, value: Arc<V>, writes: u64, now: DateTime<Utc>) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, e| e.read_at.elapsed() < ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                value,
                writes,
                read_at: Instant::now(),
                now,
            },
        );
    }

    /// The value remembered for `key`, or what `read` answers, remembered.
    /// `writes` must be the store's count taken before `read` begins.
    pub async fn get_or_read<E>(
        &self,
        key: K,
        writes: u64,
        now: DateTime<Utc>,
        read: impl Future<Output = Result<V, E>>,
    ) -> Result<Arc<V>, E> {
        if let Some(value) = self.get(&key, writes, now) {
            return Ok(value);
        }
        let value = Arc::new(read.await?);
        self.put(key, value.clone(), writes, now);
        Ok(value)
    }

    /// As `get_or_read`, for a read that may find nothing: nothing is not
    /// remembered.
    pub async fn get_or_read_some<E>(
        &self,
        key: K,
        writes: u64,
        now: DateTime<Utc>,
        read: impl Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<Arc<V>>, E> {
        if let Some(value) = self.get(&key, writes, now) {
            return Ok(Some(value));
        }
        let Some(value) = read.await? else {
            return Ok(None);
        };
        let value = Arc::new(value);
        self.put(key, value.clone(), writes, now);
        Ok(Some(value))
    }

    /// Forgets what was read for `key`.
    pub fn forget(&self, key: &K) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::seconds(seconds)
    }

    #[test]
    fn an_entry_holds_until_this_process_writes() {
        let cache = ReadCache::new(Duration::from_secs(60));
        cache.put("ticket", Arc::new(1), 7, t(0));
        assert_eq!(cache.get(&"ticket", 7, t(0)).as_deref(), Some(&1));
        assert_eq!(cache.get(&"ticket", 8, t(0)), None);
        // Once found stale it is gone, whatever the count says later.
        assert_eq!(cache.get(&"ticket", 7, t(0)), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_read_overtaken_by_a_write_is_never_served() {
        let cache = ReadCache::new(Duration::from_secs(60));
        // The read began at count 3; a write landed (4) before it was put.
        cache.put("ticket", Arc::new("before the write"), 3, t(0));
        assert_eq!(cache.get(&"ticket", 4, t(0)), None);
    }

    #[test]
    fn the_clock_moving_past_ttl_or_back_ends_an_entry() {
        let cache = ReadCache::new(Duration::from_secs(2));
        cache.put("a", Arc::new(1), 0, t(100));
        assert!(cache.get(&"a", 0, t(101)).is_some());
        assert!(cache.get(&"a", 0, t(102)).is_none());
        cache.put("b", Arc::new(1), 0, t(100));
        assert!(cache.get(&"b", 0, t(99)).is_none());
    }

    #[test]
    fn real_time_past_ttl_ends_an_entry() {
        let cache = ReadCache::new(Duration::from_millis(30));
        cache.put("a", Arc::new(1), 0, t(0));
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get(&"a", 0, t(0)).is_none());
    }

    #[test]
    fn a_zero_ttl_remembers_nothing() {
        let cache = ReadCache::new(Duration::ZERO);
        cache.put("a", Arc::new(1), 0, t(0));
        assert!(cache.get(&"a", 0, t(0)).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn forgetting_drops_one_key() {
        let cache = ReadCache::new(Duration::from_secs(60));
        cache.put("a", Arc::new(1), 0, t(0));
        cache.put("b", Arc::new(2), 0, t(0));
        cache.forget(&"a");
        assert!(cache.get(&"a", 0, t(0)).is_none());
        assert!(cache.get(&"b", 0, t(0)).is_some());
    }
}
