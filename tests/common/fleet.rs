//! Helpers for tests against the real pgbackrest fleet.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use restore_desk::backend::pgbackrest::PgBackRestBackend;
use restore_desk::backend::{Backend, FleetView};
use restore_desk::domain::catalog::{RestorePlan, RetentionPolicy};
use restore_desk::domain::cluster::{Cluster, ClusterConfig, ClusterStatus, Connection};
use restore_desk::domain::validation::{ValidationError, check_target};
use uuid::Uuid;

/// A connection to a fleet cluster as `postgres` (trusted on loopback).
pub async fn connect(connection: &Connection) -> PgConnection {
    PgConnection::connect_with(
        &PgConnectOptions::new()
            .host("127.0.0.1")
            .port(connection.port as u16)
            .username("postgres")
            .database(&connection.database),
    )
    .await
    .unwrap_or_else(|e| panic!("connect to port {}: {e}", connection.port))
}

/// The ids in the `items` table that `rows_around_t1` writes.
pub async fn item_ids(connection: &Connection) -> Vec<i64> {
    let mut conn = connect(connection).await;
    let ids = sqlx::query_scalar("SELECT id FROM items ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    ids
}

/// Writes rows 1–3, notes T1 after their commit, writes rows 4–6.
pub async fn rows_around_t1(connection: &Connection) -> DateTime<Utc> {
    let mut conn = connect(connection).await;
    for sql in [
        "CREATE TABLE items (id bigint PRIMARY KEY, note text)",
        "INSERT INTO items SELECT g, 'before' FROM generate_series(1, 3) g",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t1 = restore_desk::domain::micros(Utc::now());
    tokio::time::sleep(Duration::from_millis(50)).await;
    sqlx::query("INSERT INTO items SELECT g, 'after' FROM generate_series(4, 6) g")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    t1
}

/// Command lines of the live processes that name `path`: a restore or a
/// server there.
pub fn processes_in(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|cmd| cmd.contains(&needle))
        .collect()
}

/// The entries of a folder, sorted; none if it does not exist.
pub fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

/// Makes a zone's repository unreadable (an outage) or readable again.
pub fn set_readable(repo: &Path, readable: bool) {
    let mode = if readable { 0o750 } else { 0o000 };
    std::fs::set_permissions(repo, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Stops every PostgreSQL server of a pgbackrest fleet folder, sources and
/// restored clusters alike: for Drop guards, so a failed test leaves none.
pub fn stop_servers(fleet_dir: &std::path::Path) {
    for parent in ["clusters", "restores"] {
        let Ok(entries) = std::fs::read_dir(fleet_dir.join(parent)) else {
            continue;
        };
        for entry in entries.flatten() {
            let data = entry.path().join("data");
            if data.join("postmaster.pid").exists() {
                let _ = std::process::Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg("/usr/lib/postgresql/15/bin/pg_ctl")
                    .args(["stop", "-m", "immediate", "-w", "-D"])
                    .arg(&data)
                    .current_dir("/")
                    .output();
            }
        }
    }
}

/// The record of a ready source cluster in rg-prod, westeurope, serving
/// database `orders` on a port the fleet hands out.
pub fn source_record(
    fleet: &PgBackRestBackend,
    subscription_id: Uuid,
    name: &str,
    vcores: i64,
    storage_gib: i64,
) -> Cluster {
    let id = Uuid::new_v4();
    Cluster {
        id: id.into(),
        subscription_id: subscription_id.into(),
        resource_group: "rg-prod".into(),
        region: "westeurope".into(),
        name: name.into(),
        config: ClusterConfig {
            tier: "GeneralPurpose".into(),
            vcores,
            storage_gib,
            node_count: 2,
            high_availability: true,
            server_version: "15".into(),
        },
        connection: Connection {
            host: "127.0.0.1".into(),
            port: i64::from(fleet.allocate_source_port(id.into()).unwrap()),
            database: "orders".into(),
            user: "orders_app".into(),
        },
        status: ClusterStatus::Ready,
        created_at: Utc::now(),
        deleted_at: None,
        restored_from: None,
        location: None,
    }
}

/// Whether `target` is restorable from `source` now, and from where.
pub async fn check(
    backend: &dyn Backend,
    source: &Cluster,
    target: DateTime<Utc>,
    policy: RetentionPolicy,
) -> Result<RestorePlan, ValidationError> {
    let view = FleetView::read(backend, source)
        .await
        .expect("the fleet's catalog");
    check_target(target, &view.context(source, policy, Utc::now()))
}

/// Polls until `target` is restorable from `source` (the log past it is
/// archived), for at most 90 s. A refusal `not_yet` does not accept fails
/// at once.
pub async fn wait_restorable(
    backend: &dyn Backend,
    source: &Cluster,
    target: DateTime<Utc>,
    policy: RetentionPolicy,
    not_yet: impl Fn(&ValidationError) -> bool,
) -> RestorePlan {
    let started = std::time::Instant::now();
    loop {
        match check(backend, source, target, policy).await {
            Ok(plan) => return plan,
            Err(e) if started.elapsed() < Duration::from_secs(90) => {
                assert!(not_yet(&e), "{e:?}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("{target} never became restorable: {e:?}"),
        }
    }
}
