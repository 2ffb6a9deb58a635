//! Restore jobs: reads, claims, leases and fenced changes.

use super::*;

pub(super) const JOB_COLUMNS: &str = "id, kind, ticket_id, source_cluster_id, target_time, state, run, attempt, \
    run_after, new_cluster_id, snapshot_id, snapshot_finished_at, zone, progress, step_detail, lease_owner, \
    lease_token, lease_expires_at, last_error_code, last_error, step_started_at, progress_at, \
    stalled_since, reached_point, verification_report, created_at, updated_at, finished_at, \
    replayed_to, host, drill_zone, backup_bytes, wal_bytes, failed_step";

/// States in which a job holds a place on its restore host, a paused copy
/// included. A job removing its copy (failing, cancelling, giving way,
/// going back) no longer counts: a drill that gives way frees its place at
/// once.
const OCCUPYING: &str =
    "('queued', 'provisioning', 'restoring_snapshot', 'replaying_log', 'verifying', 'finalizing')";

/// A customer's restore is due and no host has taken it yet.
const CUSTOMER_WAITING: &str = "EXISTS (SELECT 1 FROM restore_jobs c \
    WHERE c.kind = 'restore' AND c.host IS NULL AND c.state = 'queued' AND c.run_after <= $2)";

pub(super) fn job_row(r: &DbRow) -> Result<RestoreJob, sqlx::Error> {
    let zone: Option<String> = r.try_get("zone")?;
    let drill_zone: Option<String> = r.try_get("drill_zone")?;
    let failed_step: Option<String> = r.try_get("failed_step")?;
    let backup_bytes: Option<i64> = r.try_get("backup_bytes")?;
    let wal_bytes: Option<i64> = r.try_get("wal_bytes")?;
    Ok(RestoreJob {
        id: r.try_get("id")?,
        kind: decode(r.try_get("kind")?)?,
        ticket_id: r.try_get("ticket_id")?,
        source_cluster_id: r.try_get("source_cluster_id")?,
        target_time: r.try_get("target_time")?,
        state: decode(r.try_get("state")?)?,
        run: r.try_get("run")?,
        attempt: r.try_get("attempt")?,
        run_after: r.try_get("run_after")?,
        new_cluster_id: r.try_get("new_cluster_id")?,
        snapshot_id: r.try_get("snapshot_id")?,
        snapshot_finished_at: r.try_get("snapshot_finished_at")?,
        zone: zone.map(decode).transpose()?,
        progress: r.try_get("progress")?,
        step_detail: r.try_get("step_detail")?,
        lease_owner: r.try_get("lease_owner")?,
        lease_token: r.try_get("lease_token")?,
        lease_expires_at: r.try_get("lease_expires_at")?,
        last_error_code: r.try_get("last_error_code")?,
        last_error: r.try_get("last_error")?,
        step_started_at: r.try_get("step_started_at")?,
        progress_at: r.try_get("progress_at")?,
        stalled_since: r.try_get("stalled_since")?,
        reached_point: r.try_get("reached_point")?,
        replayed_to: r.try_get("replayed_to")?,
        verification_report: r
            .try_get::<Option<Json<VerificationReport>>, _>("verification_report")?
            .map(|j| j.0),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        finished_at: r.try_get("finished_at")?,
        host: r.try_get("host")?,
        drill_zone: drill_zone.map(decode).transpose()?,
        work: backup_bytes
            .zip(wal_bytes)
            .map(|(backup_bytes, wal_bytes)| crate::domain::eta::Work {
                backup_bytes,
                wal_bytes,
            }),
        failed_step: failed_step.map(decode).transpose()?,
    })
}

pub(super) async fn insert_job(tx: &mut Tx, j: &NewJob, at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO restore_jobs (id, kind, ticket_id, source_cluster_id, target_time, state, run, \
         attempt, run_after, new_cluster_id, progress, step_detail, lease_token, \
         step_started_at, progress_at, created_at, updated_at, drill_zone) \
         VALUES ($1, $7, $2, $3, $4, 'queued', 1, 1, $5, $6, 0, '', 0, $5, $5, $5, $5, $8)",
    )
    .bind(j.id)
    .bind(j.ticket_id)
    .bind(j.source_cluster_id)
    .bind(j.target_time)
    .bind(at)
    .bind(j.new_cluster_id)
    .bind(j.kind.as_str())
    .bind(j.drill_zone.map(|z| z.as_str()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the fields the domain decided, in one compare-and-set: zero rows
/// means the job moved on or the lease was lost, and nothing is written.
pub(super) async fn change_job(tx: &mut Tx, c: &JobChange) -> StoreResult<()> {
    let p = &c.patch;
    let mut sql = QueryBuilder::<Db>::new("UPDATE restore_jobs SET state = ");
    sql.push_bind(p.state.as_str());
    sql.push(", updated_at = ").push_bind(p.at);
    if let Some(run) = p.run {
        sql.push(", run = ").push_bind(run);
    }
    if let Some(attempt) = p.attempt {
        sql.push(", attempt = ").push_bind(attempt);
    }
    if let Some(run_after) = p.run_after {
        sql.push(", run_after = ").push_bind(run_after);
    }
    if let Some(id) = p.new_cluster_id {
        sql.push(", new_cluster_id = ").push_bind(id);
    }
    if let Some(plan) = &p.plan {
        sql.push(", snapshot_id = ")
            .push_bind(plan.as_ref().map(|p| p.snapshot_id.clone()))
            .push(", snapshot_finished_at = ")
            .push_bind(plan.as_ref().map(|p| p.snapshot_finished_at))
            .push(", zone = ")
            .push_bind(plan.as_ref().map(|p| p.zone.as_str()));
    }
    if let Some(progress) = p.progress {
        sql.push(", progress = ").push_bind(progress);
    }
    if let Some(detail) = &p.step_detail {
        sql.push(", step_detail = ").push_bind(detail.clone());
    }
    if let Some(at) = p.step_clock {
        sql.push(", step_started_at = ")
            .push_bind(at)
            .push(", progress_at = ")
            .push_bind(at)
            .push(", stalled_since = NULL, replayed_to = NULL");
    }
    if let Some(error) = &p.error {
        sql.push(", last_error_code = ")
            .push_bind(error.as_ref().map(|(code, _)| code.clone()))
            .push(", last_error = ")
            .push_bind(error.as_ref().map(|(_, message)| message.clone()));
    }
    if let Some(point) = p.reached_point {
        sql.push(", reached_point = ").push_bind(point);
    }
    if let Some(report) = &p.verification_report {
        sql.push(", verification_report = ")
            .push_bind(report.as_ref().map(|r| Json(r.clone())));
    }
    if let Some(finished) = p.finished_at {
        sql.push(", finished_at = ").push_bind(finished);
    }
    if p.release_lease {
        sql.push(", lease_owner = NULL, lease_expires_at = NULL");
    }
    if p.leave_host {
        sql.push(", host = NULL");
    }
    if let Some(work) = p.work {
        sql.push(", backup_bytes = ")
            .push_bind(work.map(|w| w.backup_bytes))
            .push(", wal_bytes = ")
            .push_bind(work.map(|w| w.wal_bytes));
    }
    if let Some(step) = p.failed_step {
        sql.push(", failed_step = ")
            .push_bind(step.map(|s| s.as_str()));
    }
    if let Some(target) = p.target_time {
        sql.push(", target_time = ").push_bind(target);
    }
    sql.push(" WHERE id = ")
        .push_bind(c.job_id)
        .push(" AND state = ")
        .push_bind(c.from.as_str());
    match &c.guard {
        JobGuard::Lease(fence) => {
            sql.push(" AND lease_token = ")
                .push_bind(fence.token)
                .push(" AND lease_owner = ")
                .push_bind(fence.owner.clone())
                .push(" AND lease_expires_at > ")
                .push_bind(fence.now);
        }
        JobGuard::State { run } => {
            sql.push(" AND run = ").push_bind(*run);
        }
    }
    let done = sql.build().execute(&mut **tx).await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict("the restore job"))
    }
}

pub(super) async fn job(store: &SqlStore, id: JobId) -> StoreResult<Option<RestoreJob>> {
    let row = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM restore_jobs WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(job_row).transpose()?)
}

pub(super) async fn job_for_ticket(
    store: &SqlStore,
    ticket_id: TicketId,
) -> StoreResult<Option<RestoreJob>> {
    let row = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM restore_jobs WHERE ticket_id = $1"
    ))
    .bind(ticket_id)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(job_row).transpose()?)
}

pub(super) async fn jobs(
    store: &SqlStore,
    active_only: bool,
    limit: i64,
) -> StoreResult<Vec<RestoreJob>> {
    // The active ones are few and indexed (`restore_jobs_runnable`);
    // finished ones are history.
    let filter = if active_only {
        "WHERE state NOT IN ('succeeded', 'failed', 'cancelled')"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM restore_jobs {filter} ORDER BY created_at DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(job_row).collect::<Result<_, _>>()?)
}

/// Takes one due job for `place.host`: a job already placed there, else a
/// queued one while the host has a place left — a customer's restore
/// before any drill, and a drill only while no customer's restore waits —
/// and not one already known to need more disk than the host has free.
pub(super) async fn claim_job(
    store: &SqlStore,
    worker: &str,
    place: &Placement,
    now: DateTime<Utc>,
    lease: Duration,
) -> StoreResult<Option<RestoreJob>> {
    let mut tx = store.begin_write().await?;
    // Two claims for one host count its places one after the other.
    if let Some(lock) = dialect::HOST_LOCK {
        sqlx::query(lock)
            .bind(&place.host)
            .execute(&mut *tx)
            .await?;
    }
    let row = sqlx::query(&format!(
        "UPDATE restore_jobs SET lease_owner = $1, lease_token = lease_token + 1, \
           lease_expires_at = $3, updated_at = $2, host = $4 \
         WHERE id = ( \
           SELECT j.id FROM restore_jobs j \
           WHERE j.state NOT IN ('succeeded', 'failed', 'cancelled', 'paused') AND j.run_after <= $2 \
             AND (j.lease_owner IS NULL OR j.lease_expires_at <= $2) \
             AND (j.host = $4 \
                  OR (j.host IS NULL AND j.state <> 'queued') \
                  OR (j.host IS NULL AND j.state = 'queued' \
                      AND (SELECT COUNT(*) FROM restore_jobs o \
                           WHERE o.host = $4 AND o.state IN {OCCUPYING}) < $5 \
                      AND (j.kind = 'restore' OR NOT {CUSTOMER_WAITING}) \
                      AND ($6 IS NULL OR j.backup_bytes IS NULL \
                           OR j.backup_bytes + COALESCE(j.wal_bytes, 0) <= $6))) \
           ORDER BY CASE WHEN j.host IS NOT NULL THEN 0 WHEN j.kind = 'restore' THEN 1 ELSE 2 END, \
                    j.run_after \
           LIMIT 1{}) \
         RETURNING {JOB_COLUMNS}",
        dialect::SKIP_LOCKED
    ))
    .bind(worker)
    .bind(now)
    .bind(now + lease)
    .bind(&place.host)
    .bind(place.max_restores)
    .bind(place.free_bytes)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row.as_ref().map(job_row).transpose()?)
}

/// A drill holding a place on `place.host` that a due customer's restore
/// needs: the host is full and a customer's restore waits. The newest such
/// drill, so the one with the least work done gives way.
pub(super) async fn drill_to_preempt(
    store: &SqlStore,
    place: &Placement,
    now: DateTime<Utc>,
) -> StoreResult<Option<RestoreJob>> {
    let row = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM restore_jobs \
         WHERE kind = 'drill' AND host = $1 \
           AND state IN ('provisioning', 'restoring_snapshot', 'replaying_log', 'verifying') \
           AND {CUSTOMER_WAITING} \
           AND (SELECT COUNT(*) FROM restore_jobs o \
                WHERE o.host = $1 AND o.state IN {OCCUPYING}) >= $3 \
         ORDER BY step_started_at DESC LIMIT 1"
    ))
    .bind(&place.host)
    .bind(now)
    .bind(place.max_restores)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(job_row).transpose()?)
}

pub(super) async fn renew_lease(
    store: &SqlStore,
    fence: &Fence,
    lease: Duration,
    progress: Option<&ProgressUpdate>,
) -> StoreResult<Option<JobState>> {
    let state: Option<String> = sqlx::query_scalar(
        // Progress only rises within a step: a report that lags another
        // (or a step tried again) leaves the bar where it was.
        "UPDATE restore_jobs SET lease_expires_at = $1, updated_at = $2, \
           progress = CASE WHEN $3 IS NULL OR $3 < progress THEN progress ELSE $3 END, \
           step_detail = COALESCE($4, step_detail), \
           replayed_to = CASE WHEN $9 IS NULL OR (replayed_to IS NOT NULL AND $9 < replayed_to) \
                              THEN replayed_to ELSE $9 END, \
           progress_at = CASE WHEN $5 THEN $2 ELSE progress_at END, \
           stalled_since = CASE WHEN $5 THEN NULL ELSE stalled_since END \
         WHERE id = $6 AND lease_token = $7 AND lease_owner = $8 AND lease_expires_at > $2 \
         RETURNING state",
    )
    .bind(fence.now + lease)
    .bind(fence.now)
    .bind(progress.map(|p| p.progress.clamp(0, 100)))
    .bind(progress.map(|p| p.detail.as_str()))
    .bind(progress.is_some())
    .bind(fence.job_id)
    .bind(fence.token)
    .bind(&fence.owner)
    .bind(progress.and_then(|p| p.replayed_to))
    .fetch_optional(&store.pool)
    .await?;
    Ok(state.map(decode).transpose()?)
}

pub(super) async fn release_lease(store: &SqlStore, fence: &Fence) -> StoreResult<()> {
    sqlx::query(
        "UPDATE restore_jobs SET lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $1 AND lease_token = $2 AND lease_owner = $3",
    )
    .bind(fence.job_id)
    .bind(fence.token)
    .bind(&fence.owner)
    .execute(&store.pool)
    .await?;
    Ok(())
}

pub(super) async fn next_job_due(store: &SqlStore) -> StoreResult<Option<DateTime<Utc>>> {
    let due: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT MIN(CASE WHEN lease_expires_at IS NOT NULL AND lease_expires_at > run_after \
                         THEN lease_expires_at ELSE run_after END) \
         FROM restore_jobs WHERE state NOT IN ('succeeded', 'failed', 'cancelled', 'paused')",
    )
    .fetch_one(&store.pool)
    .await?;
    Ok(due)
}

pub(super) async fn set_job_stalled(
    store: &SqlStore,
    job_id: JobId,
    since: Option<DateTime<Utc>>,
) -> StoreResult<()> {
    sqlx::query("UPDATE restore_jobs SET stalled_since = $1 WHERE id = $2")
        .bind(since)
        .bind(job_id)
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// The cluster's newest finished runs (restores and drills) with their
/// state changes, for the estimates.
pub(super) async fn past_runs(
    store: &SqlStore,
    cluster_id: ClusterId,
    limit: i64,
) -> StoreResult<Vec<PastRunRecord>> {
    let jobs: Vec<(JobId, String, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT id, kind, backup_bytes, wal_bytes FROM restore_jobs \
         WHERE source_cluster_id = $1 AND state = 'succeeded' AND finished_at IS NOT NULL \
         ORDER BY finished_at DESC LIMIT $2",
    )
    .bind(cluster_id)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    // A job's own state changes: its ticket's events carry its id too.
    let actions = EventAction::OF_JOBS
        .map(|a| format!("'{}'", a.as_str()))
        .join(", ");
    let mut sql = QueryBuilder::<Db>::new(format!(
        "SELECT job_id, from_state, to_state, created_at FROM events \
         WHERE action IN ({actions}) \
           AND from_state IS NOT NULL AND to_state IS NOT NULL AND job_id IN ("
    ));
    let mut ids = sql.separated(", ");
    for (id, ..) in &jobs {
        ids.push_bind(*id);
    }
    sql.push(") ORDER BY id");
    let changes: Vec<(JobId, String, String, DateTime<Utc>)> =
        sql.build_query_as().fetch_all(&store.pool).await?;
    let mut runs = Vec::with_capacity(jobs.len());
    for (id, kind, backup_bytes, wal_bytes) in jobs {
        let mut mine = Vec::new();
        for (job_id, from, to, at) in changes.iter().filter(|c| c.0 == id) {
            let _ = job_id;
            mine.push((decode(from.clone())?, decode(to.clone())?, *at));
        }
        runs.push(PastRunRecord {
            job_id: id,
            kind: decode(kind)?,
            work: backup_bytes
                .zip(wal_bytes)
                .map(|(backup_bytes, wal_bytes)| crate::domain::eta::Work {
                    backup_bytes,
                    wal_bytes,
                }),
            changes: mine,
        });
    }
    Ok(runs)
}

/// Finished drills, newest first: of one cluster, or of every cluster.
pub(super) async fn drills(
    store: &SqlStore,
    cluster_id: Option<ClusterId>,
    limit: i64,
) -> StoreResult<Vec<DrillRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS}, \
           (SELECT MAX(e.created_at) FROM events e \
            WHERE e.job_id = j.id AND e.action = 'job_start') AS started_at \
         FROM restore_jobs j \
         WHERE j.kind = 'drill' AND ($1 IS NULL OR j.source_cluster_id = $1) \
         ORDER BY j.created_at DESC LIMIT $2"
    ))
    .bind(cluster_id)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(DrillRecord {
            job: job_row(row)?,
            started_at: row.try_get("started_at")?,
        });
    }
    Ok(out)
}

pub(super) async fn job_started_at(
    store: &SqlStore,
    job_id: JobId,
) -> StoreResult<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "SELECT MAX(created_at) FROM events WHERE job_id = $1 AND action = 'job_start'",
    )
    .bind(job_id)
    .fetch_one(&store.pool)
    .await?)
}
