//! The fleet's hosts and what their workers last said of themselves.

use super::*;
use crate::domain::host::{FleetHost, HostRole};

const HOST_COLUMNS: &str = "name, role, address, zone, data_root, max_restores, tls_port";

fn host_row(r: &DbRow) -> Result<FleetHost, sqlx::Error> {
    let zone: Option<String> = r.try_get("zone")?;
    let tls_port: i64 = r.try_get("tls_port")?;
    Ok(FleetHost {
        name: r.try_get("name")?,
        role: decode::<HostRole>(r.try_get("role")?)?,
        address: r.try_get("address")?,
        zone: zone.map(decode).transpose()?,
        data_root: r.try_get("data_root")?,
        max_restores: r.try_get("max_restores")?,
        tls_port: u16::try_from(tls_port).unwrap_or(crate::domain::host::DEFAULT_TLS_PORT),
    })
}

pub(super) async fn fleet_hosts(store: &SqlStore) -> StoreResult<Vec<FleetHost>> {
    let rows = sqlx::query(&format!(
        "SELECT {HOST_COLUMNS} FROM fleet_hosts ORDER BY role, name"
    ))
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(host_row).collect::<Result<_, _>>()?)
}

/// Adds the host or replaces the one of that name, inside a commit. A zone
/// another host already serves is refused: `Duplicate(Unique::ZoneHost)`.
pub(super) async fn put_host_row(
    tx: &mut Tx,
    host: &FleetHost,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO fleet_hosts (name, role, address, zone, data_root, max_restores, tls_port, \
           created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
         ON CONFLICT (name) DO UPDATE SET role = $2, address = $3, zone = $4, data_root = $5, \
           max_restores = $6, tls_port = $7, updated_at = $8",
    )
    .bind(&host.name)
    .bind(host.role.as_str())
    .bind(&host.address)
    .bind(host.zone.map(|z| z.as_str()))
    .bind(&host.data_root)
    .bind(host.max_restores)
    .bind(i64::from(host.tls_port))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes a host inside a commit, unless a job that is not over is placed
/// on it: `NotFound` when there is no such host, `Conflict` while one is.
pub(super) async fn remove_host_row(tx: &mut Tx, name: &str) -> StoreResult<()> {
    let done = sqlx::query(
        "DELETE FROM fleet_hosts WHERE name = $1 \
           AND NOT EXISTS (SELECT 1 FROM restore_jobs \
                           WHERE host = $1 AND state NOT IN ('succeeded', 'failed', 'cancelled'))",
    )
    .bind(name)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() > 0 {
        return Ok(());
    }
    let known: Option<String> = sqlx::query_scalar("SELECT name FROM fleet_hosts WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    match known {
        Some(_) => Err(StoreError::Conflict("the restores placed on the host")),
        None => Err(StoreError::NotFound("the host")),
    }
}

pub(super) async fn host_heartbeat(store: &SqlStore, beat: &HostHeartbeat) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO host_heartbeats (host, worker, seen_at, free_bytes, max_restores) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (host) DO UPDATE SET worker = $2, seen_at = $3, free_bytes = $4, \
           max_restores = $5",
    )
    .bind(&beat.host)
    .bind(&beat.worker)
    .bind(beat.seen_at)
    .bind(beat.free_bytes)
    .bind(beat.max_restores)
    .execute(&store.pool)
    .await?;
    Ok(())
}

pub(super) async fn host_heartbeats(store: &SqlStore) -> StoreResult<Vec<HostHeartbeat>> {
    let rows = sqlx::query(
        "SELECT host, worker, seen_at, free_bytes, max_restores FROM host_heartbeats ORDER BY host",
    )
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HostHeartbeat {
                host: r.try_get("host")?,
                worker: r.try_get("worker")?,
                seen_at: r.try_get("seen_at")?,
                free_bytes: r.try_get("free_bytes")?,
                max_restores: r.try_get("max_restores")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Jobs placed on a host last heard from before `lost_before` (never
/// `alive`, the caller's own), that nobody holds: what another host takes
/// over. A paused copy waits for its customer where it is.
pub(super) async fn jobs_on_lost_hosts(
    store: &SqlStore,
    now: DateTime<Utc>,
    lost_before: DateTime<Utc>,
    alive: &str,
) -> StoreResult<Vec<RestoreJob>> {
    let rows = sqlx::query(&format!(
        "SELECT {} FROM restore_jobs j \
         WHERE j.host IS NOT NULL \
           AND j.state NOT IN ('succeeded', 'failed', 'cancelled', 'paused') \
           AND (j.lease_expires_at IS NULL OR j.lease_expires_at <= $1) \
           AND j.host <> $3 \
           AND EXISTS (SELECT 1 FROM host_heartbeats h \
                       WHERE h.host = j.host AND h.seen_at <= $2) \
         ORDER BY j.created_at",
        super::jobs::JOB_COLUMNS
            .split(", ")
            .map(|c| format!("j.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(now)
    .bind(lost_before)
    .bind(alive)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows
        .iter()
        .map(super::jobs::job_row)
        .collect::<Result<_, _>>()?)
}

/// The runs whose files `host` must keep: its jobs that are not over, and
/// the restores it handed over (their clusters live there).
pub(super) async fn runs_on_host(store: &SqlStore, host: &str) -> StoreResult<Vec<(JobId, i64)>> {
    let rows: Vec<(JobId, i64)> = sqlx::query_as(
        "SELECT id, run FROM restore_jobs \
         WHERE host = $1 AND state NOT IN ('failed', 'cancelled')",
    )
    .bind(host)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows)
}
