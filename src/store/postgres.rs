//! PostgreSQL: for teams running several instances against one database.
//! Claims use `FOR UPDATE SKIP LOCKED` so workers never wait on each other.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

use super::{OpenError, StoreKind, redact_url};

type Db = sqlx::Postgres;
const KIND: StoreKind = StoreKind::Postgres;
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Where PostgreSQL's SQL differs from SQLite's.
mod dialect {
    pub const BEGIN_WRITE: &str = "BEGIN";
    /// Concurrent claimers skip rows another worker is claiming.
    pub const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";
    /// Sent inside the committing transaction, so listeners in other
    /// processes hear of new work exactly when it becomes visible.
    pub const NOTIFY_WORK: Option<&str> = Some("NOTIFY restore_desk_work");
    pub const NOTIFY_MAIL: Option<&str> = Some("NOTIFY restore_desk_mail");
    /// Claims for one restore host take turns, so two never both see its
    /// last place free; held until the claim commits.
    pub const HOST_LOCK: Option<&str> =
        Some("SELECT pg_advisory_xact_lock(hashtext('restore-host:' || $1))");
    /// PostgreSQL changes checks in place.
    pub const MIGRATE_FOREIGN_KEYS: Option<(&str, &str, &str)> = None;
}

/// Forwards the notifications of commits in any process to this one.
async fn listen(pool: &sqlx::PgPool) -> super::StoreResult<Option<super::WakeUps>> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener
        .listen_all(["restore_desk_work", "restore_desk_mail"])
        .await?;
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            // recv reconnects by itself after a lost connection.
            match listener.recv().await {
                Ok(note) => {
                    let wake = if note.channel() == "restore_desk_mail" {
                        super::WakeUp::Mail
                    } else {
                        super::WakeUp::Work
                    };
                    if sender.send(wake).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "notification listener failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(Some(receiver))
}

/// PostgreSQL's disk is the server's: a full one shows in the errors of
/// its writes.
async fn check_free_space(_url: &str) -> super::StoreResult<()> {
    Ok(())
}

fn pool_handle(pool: &sqlx::Pool<Db>) -> super::PoolHandle {
    super::PoolHandle::Postgres(pool.clone())
}

// The same SQL compiled once per database: each copy sees its own `Db`
// and `dialect`.
#[allow(clippy::duplicate_mod)]
#[path = "sql/mod.rs"]
mod sql;

pub type PostgresStore = sql::SqlStore;

impl PostgresStore {
    /// Opens a pool whose callers wait at most `acquire_timeout` for a
    /// connection: while the server is down they hear so that quickly.
    pub async fn open(url: &str, acquire_timeout: Duration) -> Result<PostgresStore, OpenError> {
        let options =
            PgConnectOptions::from_str(url).map_err(|_| OpenError::BadUrl(redact_url(url)))?;
        let unreachable = |reason: String| OpenError::Unreachable {
            url: redact_url(url),
            reason,
        };
        // One direct connection first: a pool would only report a timeout,
        // where this names the cause (refused, unknown database, bad password).
        let probe = tokio::time::timeout(
            Duration::from_secs(10),
            PgConnection::connect_with(&options),
        )
        .await
        .map_err(|_| unreachable("no answer within 10 seconds".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // No ping before every query: it would double the round trips.
            // A connection that died fails its next query once and is
            // dropped; the caller sees one error, not a hang.
            .test_before_acquire(false)
            .acquire_timeout(acquire_timeout)
            .after_release(|conn, _| {
                let clean = !sqlx::Connection::is_in_transaction(conn);
                Box::pin(async move { Ok(clean) })
            })
            .connect_with(options)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(sql::SqlStore {
            pool,
            url: url.to_string(),
            writes: Default::default(),
        })
    }
}
