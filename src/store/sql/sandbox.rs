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

// Relation names are kept beside the simulated log's, though both fleets use
// them: the real one names what its archived log shows by file number.

pub(super) async fn remember_relations(
    store: &SqlStore,
    cluster_id: ClusterId,
    names: &[(RelationFile, RelationName)],
    at: DateTime<Utc>,
) -> StoreResult<()> {
    if names.is_empty() {
        return Ok(());
    }
    let mut tx = store.pool.begin().await?;
    // In slices: each row binds seven values, and SQLite takes at most
    // 32766 per statement.
    for chunk in names.chunks(1000) {
        let mut insert = QueryBuilder::<Db>::new(
            "INSERT INTO relation_names (cluster_id, database_oid, relfilenode, schema_name, \
             relation_name, is_table, seen_at) ",
        );
        insert.push_values(chunk, |mut row, (file, name)| {
            row.push_bind(cluster_id)
                .push_bind(i64::from(file.database))
                .push_bind(i64::from(file.relfilenode))
                .push_bind(&name.schema)
                .push_bind(&name.name)
                .push_bind(name.table)
                .push_bind(at);
        });
        insert.push(
            " ON CONFLICT (cluster_id, database_oid, relfilenode) DO UPDATE SET \
             schema_name = excluded.schema_name, relation_name = excluded.relation_name, \
             is_table = excluded.is_table, seen_at = excluded.seen_at",
        );
        insert.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn remembered_relations(
    store: &SqlStore,
    cluster_id: ClusterId,
) -> StoreResult<Vec<(RelationFile, RelationName)>> {
    let rows = sqlx::query(
        "SELECT database_oid, relfilenode, schema_name, relation_name, is_table \
         FROM relation_names WHERE cluster_id = $1 ORDER BY database_oid, relfilenode",
    )
    .bind(cluster_id)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let number = |column: &str| -> Result<u32, sqlx::Error> {
                let n: i64 = r.try_get(column)?;
                u32::try_from(n).map_err(|e| sqlx::Error::Decode(Box::new(e)))
            };
            Ok((
                RelationFile {
                    database: number("database_oid")?,
                    relfilenode: number("relfilenode")?,
                },
                RelationName {
                    schema: r.try_get("schema_name")?,
                    name: r.try_get("relation_name")?,
                    table: r.try_get("is_table")?,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub(super) async fn sandbox_add_transaction(
    store: &SqlStore,
    cluster_id: ClusterId,
    t: &LoggedTransaction,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sandbox_transactions (cluster_id, xid, committed_at, body) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (cluster_id, xid) DO NOTHING",
    )
    .bind(cluster_id)
    .bind(i64::try_from(t.xid).unwrap_or(i64::MAX))
    .bind(t.committed_at)
    .bind(Json(t))
    .execute(&store.pool)
    .await?;
    Ok(())
}

pub(super) async fn sandbox_transactions(
    store: &SqlStore,
    cluster_id: ClusterId,
) -> StoreResult<Vec<LoggedTransaction>> {
    let rows = sqlx::query(
        "SELECT body FROM sandbox_transactions WHERE cluster_id = $1 ORDER BY committed_at, xid",
    )
    .bind(cluster_id)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let Json(t): Json<LoggedTransaction> = r.try_get("body")?;
            Ok(t)
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub(super) async fn damaged_copies(store: &SqlStore, snapshot_id: &str) -> StoreResult<ZoneSet> {
    let zones: Vec<String> =
        sqlx::query_scalar("SELECT zone FROM sandbox_damaged_copies WHERE snapshot_id = $1")
            .bind(snapshot_id)
            .fetch_all(&store.pool)
            .await?;
    let mut set = ZoneSet::NONE;
    for zone in zones {
        set = set.with(decode(zone)?);
    }
    Ok(set)
}
