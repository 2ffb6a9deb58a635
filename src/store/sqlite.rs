//! SQLite: the embedded default. One file in WAL mode, so readers never wait
//! for the writer.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{OpenError, StoreKind, redact_url};

type Db = sqlx::Sqlite;
const KIND: StoreKind = StoreKind::Sqlite;
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Where SQLite's SQL differs from PostgreSQL's.
mod dialect {
    /// Write transactions take the write lock up front: two writers then
    /// queue on the busy timeout instead of one failing when it upgrades a
    /// read lock.
    pub const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
    /// Writers are serialized by the lock above, so a claim needs no row locks.
    pub const SKIP_LOCKED: &str = "";
    /// One process per SQLite file: its own notifications suffice.
    pub const NOTIFY_WORK: Option<&str> = None;
    pub const NOTIFY_MAIL: Option<&str> = None;
    /// `BEGIN IMMEDIATE` already serializes claims for every host.
    pub const HOST_LOCK: Option<&str> = None;
    /// SQLite changes a table's checks by rebuilding it, which a foreign
    /// key to it would refuse: migrations run with foreign keys off on
    /// their connection, and every key is checked before they are back on.
    pub const MIGRATE_FOREIGN_KEYS: Option<(&str, &str, &str)> = Some((
        "PRAGMA foreign_keys = OFF",
        "PRAGMA foreign_key_check",
        "PRAGMA foreign_keys = ON",
    ));
}

/// SQLite has no cross-process notifications.
async fn listen(_pool: &sqlx::SqlitePool) -> super::StoreResult<Option<super::WakeUps>> {
    Ok(None)
}

/// Below this much free space on the database's file system the store is
/// not ready: the next transaction of any size may not fit.
pub const MIN_FREE_BYTES: u64 = 2 * 1024 * 1024;

/// Refuses with `StorageFull` when the file system holding the database has
/// less than `MIN_FREE_BYTES` left for it.
async fn check_free_space(url: &str) -> super::StoreResult<()> {
    let Ok(options) = SqliteConnectOptions::from_str(url) else {
        return Ok(());
    };
    let file = options.get_filename().to_path_buf();
    let folder = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let free = tokio::task::spawn_blocking(move || crate::disk::free_bytes(&folder))
        .await
        .ok()
        .flatten();
    match free {
        Some(free) if free < MIN_FREE_BYTES => Err(super::StoreError::StorageFull(format!(
            "{free} bytes free where the database lives"
        ))),
        _ => Ok(()),
    }
}

fn pool_handle(pool: &sqlx::Pool<Db>) -> super::PoolHandle {
    super::PoolHandle::Sqlite(pool.clone())
}

// The same SQL compiled once per database: each copy sees its own `Db`
// and `dialect`.
#[allow(clippy::duplicate_mod)]
#[path = "sql/mod.rs"]
mod sql;

pub type SqliteStore = sql::SqlStore;

impl SqliteStore {
    pub async fn open(url: &str) -> Result<SqliteStore, OpenError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| OpenError::BadUrl(redact_url(url)))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(15))
            .foreign_keys(true)
            // Read pages through a memory map rather than a read() each,
            // and keep more of them per connection.
            .pragma("mmap_size", "268435456")
            .pragma("cache_size", "-8000");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A local file has no connection to lose: pinging it before
            // every query would only add a round trip to its worker thread.
            .test_before_acquire(false)
            // A connection whose COMMIT failed (a full disk) may be left
            // believing it is still inside a transaction, and would refuse
            // every later one: such a connection is closed, never reused.
            .after_release(|conn, _| {
                let clean = !sqlx::Connection::is_in_transaction(conn);
                Box::pin(async move { Ok(clean) })
            })
            .connect_with(options)
            .await
            .map_err(|e| OpenError::Unreachable {
                url: redact_url(url),
                reason: e.to_string(),
            })?;
        Ok(sql::SqlStore {
            pool,
            url: url.to_string(),
            writes: Default::default(),
        })
    }
}
