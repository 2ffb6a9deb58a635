//! The store's SQL, written once and compiled twice: as `sqlite::sql` with
//! `Db = Sqlite` and as `postgres::sql` with `Db = Postgres`. The parent
//! module supplies `Db`, `MIGRATOR`, `KIND` and the few `dialect` strings
//! that differ. Queries bind every value (`$1`, which both databases read)
//! and are checked at run time, since the compile-time macros know one
//! database only.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::types::Json;
use sqlx::{Pool, QueryBuilder, Row};
use uuid::Uuid;

use super::{Db, KIND, MIGRATOR, dialect, listen};
use crate::domain::actor::Role;
use crate::domain::catalog::{Zone, ZoneSet};
use crate::domain::cluster::{Cluster, ClusterConfig, Connection, RestoredFrom};
use crate::domain::restore_job::JobState;
use crate::domain::ticket::TicketState;
use crate::domain::validation::ValidationReport;
use crate::domain::verification::VerificationReport;
use crate::store::*;

type DbRow = <Db as sqlx::Database>::Row;
type Tx = sqlx::Transaction<'static, Db>;

pub struct SqlStore {
    pub(super) pool: Pool<Db>,
    pub(super) url: String,
}

// Single-statement writes (claims, heartbeats, counters) run without an
// explicit transaction: one statement is atomic in both databases, and in
// SQLite a writing statement takes the write lock before it reads.

impl SqlStore {
    /// The pool, for the session store and for tests.
    pub fn pool(&self) -> &Pool<Db> {
        &self.pool
    }

    async fn begin_write(&self) -> StoreResult<Tx> {
        Ok(self.pool.begin_with(dialect::BEGIN_WRITE).await?)
    }
}

fn decode<T: std::str::FromStr<Err = String>>(text: String) -> Result<T, sqlx::Error> {
    text.parse()
        .map_err(|e: String| sqlx::Error::Decode(e.into()))
}

fn zones_of(r: &DbRow) -> Result<ZoneSet, sqlx::Error> {
    let mut set = ZoneSet::NONE;
    for zone in Zone::ALL {
        if r.try_get::<bool, _>(format!("in_{zone}").as_str())? {
            set = set.with(zone);
        }
    }
    Ok(set)
}

const SUBSCRIPTION_COLUMNS: &str = "id, slug, name, created_at";

fn subscription_row(r: &DbRow) -> Result<Subscription, sqlx::Error> {
    Ok(Subscription {
        id: r.try_get("id")?,
        slug: r.try_get("slug")?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
    })
}

const USER_COLUMNS: &str = "id, email, display_name, password_hash, role, subscription_id, \
                            time_zone, disabled, session_epoch, created_at";

fn user_row(r: &DbRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        password_hash: r.try_get("password_hash")?,
        role: decode(r.try_get("role")?)?,
        subscription_id: r.try_get("subscription_id")?,
        time_zone: r.try_get("time_zone")?,
        disabled: r.try_get("disabled")?,
        session_epoch: r.try_get("session_epoch")?,
        created_at: r.try_get("created_at")?,
    })
}

const CLUSTER_COLUMNS: &str = "id, subscription_id, resource_group, region, name, tier, vcores, \
    storage_gib, node_count, high_availability, server_version, host, port, database_name, \
    db_user, status, created_at, deleted_at, restored_from_ticket_id, restored_point";

fn cluster_row(r: &DbRow) -> Result<Cluster, sqlx::Error> {
    let restored_ticket: Option<Uuid> = r.try_get("restored_from_ticket_id")?;
    let restored_point: Option<DateTime<Utc>> = r.try_get("restored_point")?;
    Ok(Cluster {
        id: r.try_get("id")?,
        subscription_id: r.try_get("subscription_id")?,
        resource_group: r.try_get("resource_group")?,
        region: r.try_get("region")?,
        name: r.try_get("name")?,
        config: ClusterConfig {
            tier: r.try_get("tier")?,
            vcores: r.try_get("vcores")?,
            storage_gib: r.try_get("storage_gib")?,
            node_count: r.try_get("node_count")?,
            high_availability: r.try_get("high_availability")?,
            server_version: r.try_get("server_version")?,
        },
        connection: Connection {
            host: r.try_get("host")?,
            port: r.try_get("port")?,
            database: r.try_get("database_name")?,
            user: r.try_get("db_user")?,
        },
        status: decode(r.try_get("status")?)?,
        created_at: r.try_get("created_at")?,
        deleted_at: r.try_get("deleted_at")?,
        restored_from: match (restored_ticket, restored_point) {
            (Some(ticket_id), Some(point_in_time)) => Some(RestoredFrom {
                ticket_id,
                point_in_time,
            }),
            _ => None,
        },
    })
}

const TICKET_COLUMNS: &str = "id, number, subscription_id, requester_id, cluster_id, \
    resource_group, target_time, time_zone, new_cluster_name, severity, description, state, \
    version, assignee_id, validation_report, rejection_reason, deadline, first_response_due, \
    first_response_at, deadline_warned_at, new_cluster_id, created_at, updated_at";

fn ticket_row(r: &DbRow) -> Result<Ticket, sqlx::Error> {
    Ok(Ticket {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        subscription_id: r.try_get("subscription_id")?,
        requester_id: r.try_get("requester_id")?,
        cluster_id: r.try_get("cluster_id")?,
        resource_group: r.try_get("resource_group")?,
        target_time: r.try_get("target_time")?,
        time_zone: r.try_get("time_zone")?,
        new_cluster_name: r.try_get("new_cluster_name")?,
        severity: decode(r.try_get("severity")?)?,
        description: r.try_get("description")?,
        state: decode(r.try_get("state")?)?,
        version: r.try_get("version")?,
        assignee_id: r.try_get("assignee_id")?,
        validation_report: r
            .try_get::<Json<ValidationReport>, _>("validation_report")?
            .0,
        rejection_reason: r.try_get("rejection_reason")?,
        deadline: r.try_get("deadline")?,
        first_response_due: r.try_get("first_response_due")?,
        first_response_at: r.try_get("first_response_at")?,
        deadline_warned_at: r.try_get("deadline_warned_at")?,
        new_cluster_id: r.try_get("new_cluster_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const MESSAGE_COLUMNS: &str = "id, ticket_id, author_id, author_role, visibility, body, created_at";

fn message_row(r: &DbRow) -> Result<Message, sqlx::Error> {
    Ok(Message {
        id: r.try_get("id")?,
        ticket_id: r.try_get("ticket_id")?,
        author_id: r.try_get("author_id")?,
        author_role: decode(r.try_get("author_role")?)?,
        visibility: decode(r.try_get("visibility")?)?,
        body: r.try_get("body")?,
        created_at: r.try_get("created_at")?,
    })
}

const EVENT_COLUMNS: &str =
    "id, ticket_id, job_id, actor_id, actor_role, action, from_state, to_state, detail, created_at";

fn event_row(r: &DbRow) -> Result<Event, sqlx::Error> {
    Ok(Event {
        id: r.try_get("id")?,
        ticket_id: r.try_get("ticket_id")?,
        job_id: r.try_get("job_id")?,
        actor_id: r.try_get("actor_id")?,
        actor_role: decode(r.try_get("actor_role")?)?,
        action: r.try_get("action")?,
        from_state: r.try_get("from_state")?,
        to_state: r.try_get("to_state")?,
        detail: r.try_get("detail")?,
        created_at: r.try_get("created_at")?,
    })
}

const JOB_COLUMNS: &str = "id, ticket_id, source_cluster_id, target_time, state, run, attempt, \
    run_after, new_cluster_id, snapshot_id, snapshot_finished_at, zone, progress, step_detail, lease_owner, \
    lease_token, lease_expires_at, last_error_code, last_error, step_started_at, progress_at, \
    stalled_since, reached_point, verification_report, created_at, updated_at, finished_at";

fn job_row(r: &DbRow) -> Result<RestoreJob, sqlx::Error> {
    let zone: Option<String> = r.try_get("zone")?;
    Ok(RestoreJob {
        id: r.try_get("id")?,
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
        verification_report: r
            .try_get::<Option<Json<VerificationReport>>, _>("verification_report")?
            .map(|j| j.0),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

const OUTBOX_COLUMNS: &str = "id, dedupe_key, ticket_id, kind, recipient, subject, text_body, \
    html_body, status, attempts, claim, next_attempt_at, claimed_until, last_error, created_at, \
    sent_at";

fn outbox_row(r: &DbRow) -> Result<OutboxMessage, sqlx::Error> {
    Ok(OutboxMessage {
        id: r.try_get("id")?,
        dedupe_key: r.try_get("dedupe_key")?,
        ticket_id: r.try_get("ticket_id")?,
        kind: r.try_get("kind")?,
        recipient: r.try_get("recipient")?,
        subject: r.try_get("subject")?,
        text_body: r.try_get("text_body")?,
        html_body: r.try_get("html_body")?,
        status: decode(r.try_get("status")?)?,
        attempts: r.try_get("attempts")?,
        claim: r.try_get("claim")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        claimed_until: r.try_get("claimed_until")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}

const FAULT_COLUMNS: &str = "id, kind, step, permanent, remaining, delay_ms, created_at";

fn fault_row(r: &DbRow) -> Result<SandboxFault, sqlx::Error> {
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

/// The predicate of the `tickets_reserved_name` partial index, written the
/// same way so the planners use the index to find a reserved name.
const TICKET_RESERVES_NAME: &str = "state NOT IN ('completed', 'rejected', 'cancelled')";

/// Events, messages and emails of one change go in one multi-row INSERT
/// each: one round trip, however many there are.
async fn insert_events(tx: &mut Tx, events: &[NewEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut sql = QueryBuilder::<Db>::new(
        "INSERT INTO events (ticket_id, job_id, actor_id, actor_role, action, from_state, \
         to_state, detail, created_at) ",
    );
    sql.push_values(events, |mut row, e| {
        row.push_bind(e.ticket_id)
            .push_bind(e.job_id)
            .push_bind(e.actor.user_id)
            .push_bind(e.actor.role.as_str())
            .push_bind(&e.action)
            .push_bind(&e.from_state)
            .push_bind(&e.to_state)
            .push_bind(&e.detail)
            .push_bind(e.at);
    });
    sql.build().execute(&mut **tx).await?;
    Ok(())
}

async fn insert_event(tx: &mut Tx, e: &NewEvent) -> StoreResult<()> {
    insert_events(tx, std::slice::from_ref(e)).await
}

/// Inserts a ticket, numbering it here when it has no number yet: in the
/// same transaction, so a refused filing leaves no gap. Returns the number.
async fn insert_ticket(tx: &mut Tx, t: &NewTicket, at: DateTime<Utc>) -> StoreResult<i64> {
    let number = match t.number {
        Some(number) => number,
        None => next_ticket_number(tx).await?,
    };
    sqlx::query(
        "INSERT INTO tickets (id, number, subscription_id, requester_id, cluster_id, \
         resource_group, target_time, time_zone, new_cluster_name, severity, description, \
         state, version, validation_report, deadline, first_response_due, created_at, \
         updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14, $15, $16, $16)",
    )
    .bind(t.id)
    .bind(number)
    .bind(t.subscription_id)
    .bind(t.requester_id)
    .bind(t.cluster_id)
    .bind(&t.resource_group)
    .bind(t.target_time)
    .bind(&t.time_zone)
    .bind(&t.new_cluster_name)
    .bind(t.severity.as_str())
    .bind(&t.description)
    .bind(t.state.as_str())
    .bind(Json(&t.validation_report))
    .bind(t.deadline)
    .bind(t.first_response_due)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(number)
}

async fn next_ticket_number(tx: &mut Tx) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "UPDATE counters SET value = value + 1 WHERE name = 'ticket_number' RETURNING value",
    )
    .fetch_one(&mut **tx)
    .await?)
}

async fn change_ticket(tx: &mut Tx, c: &TicketChange, at: DateTime<Utc>) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE tickets SET state = $1, version = version + 1, updated_at = $2, \
           assignee_id = COALESCE($3, assignee_id), \
           rejection_reason = COALESCE($4, rejection_reason), \
           first_response_at = CASE WHEN $5 THEN COALESCE(first_response_at, $2) \
                                    ELSE first_response_at END, \
           deadline_warned_at = CASE WHEN $6 THEN $2 ELSE deadline_warned_at END, \
           validation_report = COALESCE($7, validation_report), \
           new_cluster_id = COALESCE($8, new_cluster_id) \
         WHERE id = $9 AND state = $10 AND ($11 IS NULL OR version = $11)",
    )
    .bind(c.to.as_str())
    .bind(at)
    .bind(c.assign)
    .bind(&c.rejection_reason)
    .bind(c.record_first_response)
    .bind(c.mark_deadline_warned)
    .bind(c.validation_report.as_ref().map(Json))
    .bind(c.new_cluster_id)
    .bind(c.ticket_id)
    .bind(c.guard.state.as_str())
    .bind(c.guard.version)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict("the ticket"))
    }
}

async fn insert_job(tx: &mut Tx, j: &NewJob, at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO restore_jobs (id, ticket_id, source_cluster_id, target_time, state, run, \
         attempt, run_after, new_cluster_id, progress, step_detail, lease_token, \
         step_started_at, progress_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'queued', 1, 1, $5, $6, 0, '', 0, $5, $5, $5, $5)",
    )
    .bind(j.id)
    .bind(j.ticket_id)
    .bind(j.source_cluster_id)
    .bind(j.target_time)
    .bind(at)
    .bind(j.new_cluster_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the fields the domain decided, in one compare-and-set: zero rows
/// means the job moved on or the lease was lost, and nothing is written.
async fn change_job(tx: &mut Tx, c: &JobChange) -> StoreResult<()> {
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
            .push(", stalled_since = NULL");
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

async fn insert_cluster(tx: &mut Tx, c: &Cluster) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO clusters (id, subscription_id, resource_group, region, name, tier, vcores, \
         storage_gib, node_count, high_availability, server_version, host, port, \
         database_name, db_user, status, created_at, deleted_at, restored_from_ticket_id, \
         restored_point) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20)",
    )
    .bind(c.id)
    .bind(c.subscription_id)
    .bind(&c.resource_group)
    .bind(&c.region)
    .bind(&c.name)
    .bind(&c.config.tier)
    .bind(c.config.vcores)
    .bind(c.config.storage_gib)
    .bind(c.config.node_count)
    .bind(c.config.high_availability)
    .bind(&c.config.server_version)
    .bind(&c.connection.host)
    .bind(c.connection.port)
    .bind(&c.connection.database)
    .bind(&c.connection.user)
    .bind(c.status.as_str())
    .bind(c.created_at)
    .bind(c.deleted_at)
    .bind(c.restored_from.as_ref().map(|r| r.ticket_id))
    .bind(c.restored_from.as_ref().map(|r| r.point_in_time))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_cluster(tx: &mut Tx, write: &ClusterWrite) -> StoreResult<()> {
    match write {
        ClusterWrite::Insert(cluster) => insert_cluster(tx, cluster).await,
        ClusterWrite::MarkReady { id, connection } => {
            sqlx::query(
                "UPDATE clusters SET status = 'ready', host = $1, port = $2, database_name = $3, \
                 db_user = $4 WHERE id = $5",
            )
            .bind(&connection.host)
            .bind(connection.port)
            .bind(&connection.database)
            .bind(&connection.user)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }
        ClusterWrite::Remove(id) => {
            // Only a cluster still being built may disappear; a source or a
            // handed-over cluster is never removed by a restore.
            sqlx::query("DELETE FROM clusters WHERE id = $1 AND status = 'building'")
                .bind(id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    }
}

async fn insert_messages(
    tx: &mut Tx,
    messages: &[NewMessage],
    at: DateTime<Utc>,
) -> StoreResult<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let mut sql = QueryBuilder::<Db>::new(
        "INSERT INTO messages (id, ticket_id, author_id, author_role, visibility, body, \
         created_at) ",
    );
    sql.push_values(messages, |mut row, m| {
        row.push_bind(m.id)
            .push_bind(m.ticket_id)
            .push_bind(m.author.user_id)
            .push_bind(m.author.role.as_str())
            .push_bind(m.visibility.as_str())
            .push_bind(&m.body)
            .push_bind(at);
    });
    sql.build().execute(&mut **tx).await?;
    Ok(())
}

async fn insert_outbox(tx: &mut Tx, c: &Commit, committed: &Committed) -> StoreResult<()> {
    if c.outbox.is_empty() {
        return Ok(());
    }
    let rows = c.outbox_rows(committed);
    let mut sql = QueryBuilder::<Db>::new(
        "INSERT INTO outbox (id, dedupe_key, ticket_id, kind, recipient, subject, text_body, \
         html_body, status, attempts, claim, next_attempt_at, claimed_until, created_at) ",
    );
    sql.push_values(&rows, |mut row, m| {
        row.push_bind(m.id)
            .push_bind(&m.dedupe_key)
            .push_bind(m.ticket_id)
            .push_bind(&m.kind)
            .push_bind(&m.recipient)
            .push_bind(&m.subject)
            .push_bind(&m.text_body)
            .push_bind(&m.html_body)
            .push_bind(m.status.as_str())
            .push_bind(m.attempts)
            .push_bind(m.claim)
            .push_bind(m.next_attempt_at)
            .push_bind(m.claimed_until)
            .push_bind(m.created_at);
    });
    sql.build().execute(&mut **tx).await?;
    Ok(())
}

async fn apply_commit(tx: &mut Tx, c: &Commit) -> StoreResult<Committed> {
    let mut committed = Committed::default();
    match &c.ticket {
        Some(TicketWrite::Create(ticket)) => {
            let number = insert_ticket(tx, ticket, c.at).await?;
            committed.ticket_number = ticket.number.is_none().then_some(number);
        }
        Some(TicketWrite::Change(change)) => change_ticket(tx, change, c.at).await?,
        None => {}
    }
    match &c.job {
        Some(JobWrite::Create(job)) => insert_job(tx, job, c.at).await?,
        Some(JobWrite::Change(change)) => change_job(tx, change).await?,
        None => {}
    }
    if let Some(write) = &c.cluster {
        write_cluster(tx, write).await?;
    }
    insert_messages(tx, &c.messages, c.at).await?;
    insert_events(tx, &c.events).await?;
    insert_outbox(tx, c, &committed).await?;
    if let (Some(notify), true) = (dialect::NOTIFY_WORK, c.wakes_workers()) {
        sqlx::query(notify).execute(&mut **tx).await?;
    }
    if let (Some(notify), false) = (dialect::NOTIFY_MAIL, c.outbox.is_empty()) {
        sqlx::query(notify).execute(&mut **tx).await?;
    }
    Ok(committed)
}

#[async_trait]
impl Store for SqlStore {
    fn kind(&self) -> StoreKind {
        KIND
    }

    fn pool_handle(&self) -> PoolHandle {
        super::pool_handle(&self.pool)
    }

    async fn migrate(&self) -> Result<(), OpenError> {
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| migration_error(&self.url, e, known))
    }

    async fn wake_ups(&self) -> StoreResult<Option<WakeUps>> {
        listen(&self.pool).await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn probe_write(&self, owner: &str, now: DateTime<Utc>) -> StoreResult<()> {
        super::check_free_space(&self.url).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO readiness_probes (owner, checked_at) VALUES ($1, $2) \
             ON CONFLICT (owner) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .bind(owner)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        let subscriptions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions")
            .fetch_one(&self.pool)
            .await?;
        Ok(users == 0 && subscriptions == 0)
    }

    async fn create_subscription(&self, s: &Subscription) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO subscriptions (id, slug, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(s.id)
        .bind(&s.slug)
        .bind(&s.name)
        .bind(s.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn subscription(&self, id: Uuid) -> StoreResult<Option<Subscription>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(subscription_row).transpose()?)
    }

    async fn subscription_by_slug(&self, slug: &str) -> StoreResult<Option<Subscription>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE slug = $1"
        ))
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(subscription_row).transpose()?)
    }

    async fn subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        let rows = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions ORDER BY slug"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(subscription_row)
            .collect::<Result<_, _>>()?)
    }

    async fn create_user(&self, u: &User, audit: Option<NewEvent>) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, role, subscription_id, \
             time_zone, disabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(u.id)
        .bind(u.email.to_lowercase())
        .bind(&u.display_name)
        .bind(&u.password_hash)
        .bind(u.role.as_str())
        .bind(u.subscription_id)
        .bind(&u.time_zone)
        .bind(u.disabled)
        .bind(u.created_at)
        .execute(&mut *tx)
        .await?;
        if let Some(event) = &audit {
            insert_event(&mut tx, event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn user(&self, id: Uuid) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user_row).transpose()?)
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email.trim().to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user_row).transpose()?)
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY role, email"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(user_row).collect::<Result<_, _>>()?)
    }

    async fn display_names(&self, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, String>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut query = QueryBuilder::<Db>::new("SELECT id, display_name FROM users WHERE id IN (");
        let mut list = query.separated(", ");
        for id in &ids {
            list.push_bind(*id);
        }
        query.push(")");
        let rows: Vec<(Uuid, String)> = query.build_query_as().fetch_all(&self.pool).await?;
        Ok(rows.into_iter().collect())
    }

    async fn update_user(&self, id: Uuid, update: &UserUpdate, audit: NewEvent) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1{}",
            dialect::FOR_UPDATE
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(mut user) = row.as_ref().map(user_row).transpose()? else {
            tx.rollback().await?;
            return Err(StoreError::Conflict("the user"));
        };
        if let Some(role) = update.role {
            user.role = role;
        }
        if let Some(subscription_id) = update.subscription_id {
            user.subscription_id = subscription_id;
        }
        if let Some(disabled) = update.disabled {
            user.disabled = disabled;
        }
        if let Some(hash) = &update.password_hash {
            user.password_hash = hash.clone();
        }
        if update.disabled == Some(true) || update.password_hash.is_some() {
            user.session_epoch += 1;
        }
        if let Some(zone) = &update.time_zone {
            user.time_zone = zone.clone();
        }
        sqlx::query(
            "UPDATE users SET role = $1, subscription_id = $2, disabled = $3, \
             password_hash = $4, time_zone = $5, session_epoch = $6 WHERE id = $7",
        )
        .bind(user.role.as_str())
        .bind(user.subscription_id)
        .bind(user.disabled)
        .bind(&user.password_hash)
        .bind(&user.time_zone)
        .bind(user.session_epoch)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if user.disabled || update.password_hash.is_some() {
            // A disabled account's API tokens die with it, and a new
            // password ends every token issued under the old one.
            sqlx::query("DELETE FROM api_tokens WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        insert_event(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn users_with_role(&self, role: Role) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE role = $1 AND disabled = FALSE ORDER BY email"
        ))
        .bind(role.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(user_row).collect::<Result<_, _>>()?)
    }

    async fn create_api_token(
        &self,
        token_hash: &str,
        user_id: Uuid,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(created_at)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn user_for_api_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE disabled = FALSE AND id = ( \
               SELECT user_id FROM api_tokens WHERE token_hash = $1 AND expires_at > $2)"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user_row).transpose()?)
    }

    async fn revoke_api_token(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn zones(&self) -> StoreResult<Vec<ZoneStatus>> {
        let rows =
            sqlx::query("SELECT region, zone, online, changed_at FROM zones ORDER BY region, zone")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(ZoneStatus {
                    region: r.try_get("region")?,
                    zone: decode(r.try_get("zone")?)?,
                    online: r.try_get("online")?,
                    changed_at: r.try_get("changed_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn online_zones(&self, region: &str) -> StoreResult<ZoneSet> {
        let rows = sqlx::query("SELECT zone FROM zones WHERE region = $1 AND online = TRUE")
            .bind(region)
            .fetch_all(&self.pool)
            .await?;
        let mut set = ZoneSet::NONE;
        for row in rows {
            set = set.with(decode(row.try_get("zone")?)?);
        }
        Ok(set)
    }

    async fn ensure_zone(
        &self,
        region: &str,
        zone: Zone,
        online: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO zones (region, zone, online, changed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (region, zone) DO NOTHING",
        )
        .bind(region)
        .bind(zone.as_str())
        .bind(online)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_zone_online(
        &self,
        region: &str,
        zone: Zone,
        online: bool,
        audit: NewEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE zones SET online = $1, changed_at = $2 WHERE region = $3 AND zone = $4",
        )
        .bind(online)
        .bind(audit.at)
        .bind(region)
        .bind(zone.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_event(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_cluster(&self, cluster: &Cluster) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_cluster(&mut tx, cluster).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn cluster(&self, id: Uuid, scope: Scope) -> StoreResult<Option<Cluster>> {
        let row = sqlx::query(&format!(
            "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE id = $1 \
             AND ($2 IS NULL OR subscription_id = $2)"
        ))
        .bind(id)
        .bind(scope.subscription())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(cluster_row).transpose()?)
    }

    async fn clusters(&self, scope: Scope, include_deleted: bool) -> StoreResult<Vec<Cluster>> {
        let rows = sqlx::query(&format!(
            "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE ($1 IS NULL OR subscription_id = $1) \
             AND ($2 OR deleted_at IS NULL) ORDER BY name, created_at"
        ))
        .bind(scope.subscription())
        .bind(include_deleted)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(cluster_row).collect::<Result<_, _>>()?)
    }

    async fn cluster_name_in_use(
        &self,
        subscription_id: Uuid,
        resource_group: &str,
        name: &str,
    ) -> StoreResult<bool> {
        let in_use: bool = sqlx::query_scalar(&format!(
            "SELECT EXISTS (SELECT 1 FROM clusters WHERE subscription_id = $1 \
                AND resource_group = $2 AND name = $3 AND deleted_at IS NULL) \
             OR EXISTS (SELECT 1 FROM tickets WHERE subscription_id = $1 \
                AND resource_group = $2 AND new_cluster_name = $3 \
                AND {TICKET_RESERVES_NAME})"
        ))
        .bind(subscription_id)
        .bind(resource_group)
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        Ok(in_use)
    }

    async fn delete_cluster(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        audit: NewEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE clusters SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_event(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn sandbox_snapshots(&self, cluster_id: Uuid) -> StoreResult<Vec<SandboxSnapshot>> {
        let rows = sqlx::query(
            "SELECT id, cluster_id, started_at, finished_at, in_az1, in_az2, in_az3 \
             FROM sandbox_snapshots WHERE cluster_id = $1 ORDER BY finished_at",
        )
        .bind(cluster_id)
        .fetch_all(&self.pool)
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

    async fn sandbox_log_spans(&self, cluster_id: Uuid) -> StoreResult<Vec<SandboxLogSpan>> {
        let rows = sqlx::query(
            "SELECT cluster_id, started_at, ended_at, in_az1, in_az2, in_az3 \
             FROM sandbox_log_spans WHERE cluster_id = $1 ORDER BY started_at",
        )
        .bind(cluster_id)
        .fetch_all(&self.pool)
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

    async fn sandbox_add_snapshot(&self, s: &SandboxSnapshot) -> StoreResult<()> {
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sandbox_add_log_span(&self, s: &SandboxLogSpan) -> StoreResult<()> {
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sandbox_expire(&self, cluster_id: Uuid, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
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

    async fn sandbox_faults(&self) -> StoreResult<Vec<SandboxFault>> {
        let rows = sqlx::query(&format!(
            "SELECT {FAULT_COLUMNS} FROM sandbox_faults WHERE remaining > 0 ORDER BY created_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(fault_row).collect::<Result<_, _>>()?)
    }

    async fn sandbox_add_fault(&self, f: &SandboxFault, audit: NewEvent) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sandbox_faults (id, kind, step, permanent, remaining, delay_ms, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(f.id)
        .bind(f.kind.as_str())
        .bind(f.step.as_str())
        .bind(f.permanent)
        .bind(f.remaining)
        .bind(f.delay_ms)
        .bind(f.created_at)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sandbox_clear_faults(&self, audit: NewEvent) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sandbox_faults")
            .execute(&mut *tx)
            .await?;
        insert_event(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sandbox_take_fault(&self, step: &str) -> StoreResult<Option<SandboxFault>> {
        // Every step asks and faults are rare: look first, so that the usual
        // answer costs a read, not a write (on SQLite, a turn at the file's
        // one writer).
        let armed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sandbox_faults WHERE step = $1 AND remaining > 0)",
        )
        .bind(step)
        .fetch_one(&self.pool)
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
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(fault_row).transpose()?)
    }

    async fn allocate_ticket_number(&self) -> StoreResult<i64> {
        let number: i64 = sqlx::query_scalar(
            "UPDATE counters SET value = value + 1 WHERE name = 'ticket_number' RETURNING value",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(number)
    }

    async fn ticket(&self, id: Uuid, scope: Scope) -> StoreResult<Option<Ticket>> {
        let row = sqlx::query(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1 \
             AND ($2 IS NULL OR subscription_id = $2)"
        ))
        .bind(id)
        .bind(scope.subscription())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(ticket_row).transpose()?)
    }

    async fn ticket_by_number(&self, number: i64, scope: Scope) -> StoreResult<Option<Ticket>> {
        let row = sqlx::query(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE number = $1 \
             AND ($2 IS NULL OR subscription_id = $2)"
        ))
        .bind(number)
        .bind(scope.subscription())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(ticket_row).transpose()?)
    }

    async fn tickets(&self, q: &TicketQuery) -> StoreResult<Vec<Ticket>> {
        let mut sql =
            QueryBuilder::<Db>::new(format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE TRUE"));
        if let Some(subscription) = q.scope.subscription() {
            sql.push(" AND subscription_id = ").push_bind(subscription);
        }
        if !q.states.is_empty() {
            sql.push(" AND state IN (");
            let mut list = sql.separated(", ");
            for state in &q.states {
                list.push_bind(state.as_str());
            }
            list.push_unseparated(")");
        }
        if let Some(severity) = q.severity {
            sql.push(" AND severity = ").push_bind(severity.as_str());
        }
        match q.assignee {
            AssigneeFilter::Anyone => {}
            AssigneeFilter::Unassigned => {
                sql.push(" AND assignee_id IS NULL");
            }
            AssigneeFilter::User(id) => {
                sql.push(" AND assignee_id = ").push_bind(id);
            }
        }
        match &q.order {
            TicketOrder::Queue { after } => {
                if let Some((deadline, severity, number)) = after {
                    sql.push(" AND (deadline, severity, number) > (")
                        .push_bind(*deadline)
                        .push(", ")
                        .push_bind(severity.as_str())
                        .push(", ")
                        .push_bind(*number)
                        .push(")");
                }
                sql.push(" ORDER BY deadline, severity, number");
            }
            TicketOrder::Newest { before } => {
                if let Some(number) = before {
                    sql.push(" AND number < ").push_bind(*number);
                }
                sql.push(" ORDER BY number DESC");
            }
        }
        sql.push(" LIMIT ").push_bind(q.limit.clamp(1, 1000));
        let rows = sql.build().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(ticket_row).collect::<Result<_, _>>()?)
    }

    async fn count_tickets(&self, scope: Scope, states: &[TicketState]) -> StoreResult<i64> {
        let mut sql = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM tickets WHERE TRUE");
        if let Some(subscription) = scope.subscription() {
            sql.push(" AND subscription_id = ").push_bind(subscription);
        }
        if !states.is_empty() {
            sql.push(" AND state IN (");
            let mut list = sql.separated(", ");
            for state in states {
                list.push_bind(state.as_str());
            }
            list.push_unseparated(")");
        }
        let count: i64 = sql.build_query_scalar().fetch_one(&self.pool).await?;
        Ok(count)
    }

    async fn messages(&self, ticket_id: Uuid, include_internal: bool) -> StoreResult<Vec<Message>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE ticket_id = $1 \
             AND ($2 OR visibility = 'public') ORDER BY created_at, id"
        ))
        .bind(ticket_id)
        .bind(include_internal)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(message_row).collect::<Result<_, _>>()?)
    }

    async fn ticket_events(&self, ticket_id: Uuid) -> StoreResult<Vec<Event>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE ticket_id = $1 ORDER BY id"
        ))
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(event_row).collect::<Result<_, _>>()?)
    }

    async fn audit_log(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<Event>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE ($1 IS NULL OR id < $1) \
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(before)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(event_row).collect::<Result<_, _>>()?)
    }

    async fn tickets_nearing_deadline(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Ticket>> {
        let rows = sqlx::query(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE deadline < $1 \
             AND deadline_warned_at IS NULL \
             AND state IN ('submitted', 'triage', 'in_review', 'awaiting_customer', 'approved', \
                           'failed') \
             ORDER BY deadline LIMIT $2"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(ticket_row).collect::<Result<_, _>>()?)
    }

    async fn commit(&self, c: &Commit) -> StoreResult<Committed> {
        let mut tx = self.begin_write().await?;
        match apply_commit(&mut tx, c).await {
            Ok(committed) => {
                tx.commit().await?;
                Ok(committed)
            }
            Err(error) => {
                // Roll back now rather than on drop: a rollback left queued on
                // a pooled connection keeps PostgreSQL's row locks a moment
                // longer, and concurrent claims would skip the row.
                tx.rollback().await?;
                Err(error)
            }
        }
    }

    async fn job(&self, id: Uuid) -> StoreResult<Option<RestoreJob>> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM restore_jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(job_row).transpose()?)
    }

    async fn job_for_ticket(&self, ticket_id: Uuid) -> StoreResult<Option<RestoreJob>> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM restore_jobs WHERE ticket_id = $1"
        ))
        .bind(ticket_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(job_row).transpose()?)
    }

    async fn jobs(&self, active_only: bool, limit: i64) -> StoreResult<Vec<RestoreJob>> {
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
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(job_row).collect::<Result<_, _>>()?)
    }

    async fn claim_job(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<Option<RestoreJob>> {
        let row = sqlx::query(&format!(
            "UPDATE restore_jobs SET lease_owner = $1, lease_token = lease_token + 1, \
               lease_expires_at = $3, updated_at = $2 \
             WHERE id = ( \
               SELECT id FROM restore_jobs \
               WHERE state NOT IN ('succeeded', 'failed', 'cancelled') AND run_after <= $2 \
                 AND (lease_owner IS NULL OR lease_expires_at <= $2) \
               ORDER BY run_after LIMIT 1{}) \
             RETURNING {JOB_COLUMNS}",
            dialect::SKIP_LOCKED
        ))
        .bind(worker)
        .bind(now)
        .bind(now + lease)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(job_row).transpose()?)
    }

    async fn renew_lease(
        &self,
        fence: &Fence,
        lease: Duration,
        progress: Option<&ProgressUpdate>,
    ) -> StoreResult<Option<JobState>> {
        let state: Option<String> = sqlx::query_scalar(
            "UPDATE restore_jobs SET lease_expires_at = $1, updated_at = $2, \
               progress = COALESCE($3, progress), step_detail = COALESCE($4, step_detail), \
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
        .fetch_optional(&self.pool)
        .await?;
        Ok(state.map(decode).transpose()?)
    }

    async fn release_lease(&self, fence: &Fence) -> StoreResult<()> {
        sqlx::query(
            "UPDATE restore_jobs SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $1 AND lease_token = $2 AND lease_owner = $3",
        )
        .bind(fence.job_id)
        .bind(fence.token)
        .bind(&fence.owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn next_job_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let due: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN lease_expires_at IS NOT NULL AND lease_expires_at > run_after \
                             THEN lease_expires_at ELSE run_after END) \
             FROM restore_jobs WHERE state NOT IN ('succeeded', 'failed', 'cancelled')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(due)
    }

    async fn set_job_stalled(&self, job_id: Uuid, since: Option<DateTime<Utc>>) -> StoreResult<()> {
        sqlx::query("UPDATE restore_jobs SET stalled_since = $1 WHERE id = $2")
            .bind(since)
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn take_duty(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let held: Option<String> = sqlx::query_scalar(
            "INSERT INTO duty_leases (name, owner, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, \
               expires_at = excluded.expires_at \
             WHERE duty_leases.owner = excluded.owner OR duty_leases.expires_at <= $4 \
             RETURNING owner",
        )
        .bind(name)
        .bind(owner)
        .bind(now + ttl)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(held.is_some())
    }

    async fn duty_holder(&self, name: &str, now: DateTime<Utc>) -> StoreResult<Option<String>> {
        let owner =
            sqlx::query_scalar("SELECT owner FROM duty_leases WHERE name = $1 AND expires_at > $2")
                .bind(name)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
        Ok(owner)
    }

    async fn release_duty(&self, name: &str, owner: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM duty_leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        claim_for: Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let rows = sqlx::query(&format!(
            // next_attempt_at is when a message is due: a pending one's next
            // try, or when a sender's claim on it runs out. One range on the
            // `outbox_due` index finds both.
            "UPDATE outbox SET status = 'sending', claim = claim + 1, claimed_until = $2, \
               next_attempt_at = $2 \
             WHERE id IN ( \
               SELECT id FROM outbox \
               WHERE status IN ('pending', 'sending') AND next_attempt_at <= $1 \
               ORDER BY next_attempt_at LIMIT $3{}) \
             RETURNING {OUTBOX_COLUMNS}",
            dialect::SKIP_LOCKED
        ))
        .bind(now)
        .bind(now + claim_for)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(outbox_row).collect::<Result<_, _>>()?)
    }

    async fn settle_outbox(&self, id: Uuid, claim: i64, outcome: &Delivery) -> StoreResult<bool> {
        let (status, at, sent_at, error) = match outcome {
            Delivery::Sent { at } => (OutboxStatus::Sent, *at, Some(*at), None),
            Delivery::RetryAt { at, error } => (OutboxStatus::Pending, *at, None, Some(error)),
            Delivery::Failed { at, error } => (OutboxStatus::Failed, *at, None, Some(error)),
        };
        // The claim token fences the update: a sender whose claim expired
        // and was taken over cannot settle the newer claim. Every outcome
        // settled here followed a send, so it counts as an attempt.
        let done = sqlx::query(
            "UPDATE outbox SET status = $1, next_attempt_at = $2, sent_at = $3, \
             last_error = $4, claimed_until = NULL, attempts = attempts + 1 \
             WHERE id = $5 AND claim = $6 AND status = 'sending'",
        )
        .bind(status.as_str())
        .bind(at)
        .bind(sent_at)
        .bind(error)
        .bind(id)
        .bind(claim)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn outbox(&self, q: &OutboxQuery) -> StoreResult<Vec<OutboxMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1 IS NULL OR status = $1) \
             AND ($2 IS NULL OR ticket_id = $2) ORDER BY created_at DESC, id LIMIT $3"
        ))
        .bind(q.status.map(OutboxStatus::as_str))
        .bind(q.ticket_id)
        .bind(q.limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(outbox_row).collect::<Result<_, _>>()?)
    }

    async fn outbox_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn state_counts(&self, table: &'static str) -> StoreResult<Vec<(String, i64)>> {
        // The table name is one of two constants, never user input.
        let table = match table {
            "restore_jobs" => "restore_jobs",
            _ => "tickets",
        };
        let rows = sqlx::query(&format!(
            "SELECT state, COUNT(*) AS n FROM {table} GROUP BY state ORDER BY state"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}
