//! The simulated fleet's catalog and faults.

use super::*;

pub(super) const FAULT_COLUMNS: &str = "id, kind, step, permanent, remaining, delay_ms, created_at";

pub(super) fn fault_row(r: &DbRow) -> Result<SandboxFault, sqlx::Error> {
    Ok(SandboxFault {
        id: r.try_get("id")?,
        kind: decode(r.try_get("kind")?)?,
        step: decode(r.try_get("step")?)?,
        permanent: r.try_get("permanent")?,
        remaining: r.try_get("remaining")?,
        delay_ms: r.try_get("delay_ms")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(super) async fn sandbox_snapshots(
    store: &SqlStore,
    cluster_id: ClusterId,
) -> StoreResult<Vec<SandboxSnapshot>> {
    let rows = sqlx::query(
        "SELECT id, cluster_id, started_at, finished_at, in_az1, in_az2, in_az3 \
         FROM sandbox_snapshots WHERE cluster_id = $1 ORDER BY finished_at",
    )
    .bind(cluster_id)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SandboxSnapshot {
                id: r.try_get("id")?,
                cluster_id: r.try_get("cluster_id")?,
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                zones: zones_of(r)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub(super) async fn sandbox_log_spans(
    store: &SqlStore,
    cluster_id: ClusterId,
) -> StoreResult<Vec<SandboxLogSpan>> {
    let rows = sqlx::query(
        "SELECT cluster_id, started_at, ended_at, in_az1, in_az2, in_az3 \
         FROM sandbox_log_spans WHERE cluster_id = $1 ORDER BY started_at",
    )
    .bind(cluster_id)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SandboxLogSpan {
                cluster_id: r.try_get("cluster_id")?,
                started_at: r.try_get("started_at")?,
                ended_at: r.try_get("ended_at")?,
                zones: zones_of(r)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub(super) async fn sandbox_add_snapshot(store: &SqlStore, s: &SandboxSnapshot) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sandbox_snapshots (id, cluster_id, started_at, finished_at, in_az1, \
         in_az2, in_az3) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&s.id)
    .bind(s.cluster_id)
    .bind(s.started_at)
    .bind(s.finished_at)
    .bind(s.zones.contains(Zone::Az1))
    .bind(s.zones.contains(Zone::Az2))
    .bind(s.zones.contains(Zone::Az3))
    .execute(&store.pool)
    .await?;
    Ok(())
}

pub(super) async fn sandbox_add_log_span(store: &SqlStore, s: &SandboxLogSpan) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sandbox_log_spans (cluster_id, started_at, ended_at, in_az1, in_az2, \
         in_az3) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(s.cluster_id)
    .bind(s.started_at)
    .bind(s.ended_at)
    .bind(s.zones.contains(Zone::Az1))
    .bind(s.zones.contains(Zone::Az2))
    .bind(s.zones.contains(Zone::Az3))
    .execute(&store.pool)
    .await?;
    Ok(())
}

pub(super) async fn sandbox_expire(
    store: &SqlStore,
    cluster_id: ClusterId,
    before: DateTime<Utc>,
) -> StoreResult<u64> {
    let mut tx = store.begin_write().await?;
    let snapshots =
        sqlx::query("DELETE FROM sandbox_snapshots WHERE cluster_id = $1 AND finished_at < $2")
            .bind(cluster_id)
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    sqlx::query(
        "DELETE FROM sandbox_log_spans WHERE cluster_id = $1 AND ended_at IS NOT NULL \
         AND ended_at < $2",
    )
    .bind(cluster_id)
    .bind(before)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE sandbox_log_spans SET started_at = $2 WHERE cluster_id = $1 \
         AND started_at < $2",
    )
    .bind(cluster_id)
    .bind(before)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(snapshots)
}

pub(super) async fn sandbox_faults(store: &SqlStore) -> StoreResult<Vec<SandboxFault>> {
    let rows = sqlx::query(&format!(
        "SELECT {FAULT_COLUMNS} FROM sandbox_faults WHERE remaining > 0 ORDER BY created_at"
    ))
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(fault_row).collect::<Result<_, _>>()?)
}

pub(super) async fn sandbox_take_fault(
    store: &SqlStore,
    step: &str,
) -> StoreResult<Option<SandboxFault>> {
    // Every step asks and faults are rare: look first, so that the usual
    // answer costs a read, not a write (on SQLite, a turn at the file's
    // one writer).
    let armed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sandbox_faults WHERE step = $1 AND remaining > 0)",
    )
    .bind(step)
    .fetch_one(&store.pool)
    .await?;
    if !armed {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "UPDATE sandbox_faults SET remaining = remaining - 1 WHERE id = ( \
           SELECT id FROM sandbox_faults WHERE step = $1 AND remaining > 0 \
           ORDER BY created_at LIMIT 1{}) \
         RETURNING {FAULT_COLUMNS}",
        dialect::SKIP_LOCKED
    ))
    .bind(step)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(fault_row).transpose()?)
}
