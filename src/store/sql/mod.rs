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
use crate::domain::cluster::{Cluster, ClusterConfig, Connection, FleetLocation, RestoredFrom};
use crate::domain::restore_job::JobState;
use crate::domain::ticket::TicketState;
use crate::domain::transactions::{
    LoggedTransaction, RelationFile, RelationName, TransactionTarget,
};
use crate::domain::validation::ValidationReport;
use crate::domain::verification::VerificationReport;
use crate::store::*;

mod admin;
mod duties;
mod endpoints;
mod fleet;
mod hosts;
mod jobs;
mod outbox;
mod people;
mod sandbox;
mod tickets;
mod verdicts;

use fleet::write_cluster;
use jobs::{change_job, insert_job};
use outbox::insert_outbox;
use tickets::{change_ticket, insert_events, insert_messages, insert_ticket};

type DbRow = <Db as sqlx::Database>::Row;

type Tx = sqlx::Transaction<'static, Db>;

pub struct SqlStore {
    pub(super) pool: Pool<Db>,
    pub(super) url: String,
    /// Writes that may change what a page shows, counted once each ended.
    pub(super) writes: std::sync::atomic::AtomicU64,
}

// Single-statement writes (claims, heartbeats, counters) run without an
// explicit transaction: one statement is atomic in both databases, and in
// SQLite a writing statement takes the write lock before it reads.

impl SqlStore {
    /// Counts a write that ended, committed or not, and passes its result on.
    fn wrote<T>(&self, result: T) -> T {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        result
    }

    /// The pool, for the session store and for tests.
    pub fn pool(&self) -> &Pool<Db> {
        &self.pool
    }

    async fn commit_now(&self, c: &Commit) -> StoreResult<Committed> {
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

    async fn begin_write(&self) -> StoreResult<Tx> {
        Ok(self.pool.begin_with(dialect::BEGIN_WRITE).await?)
    }
}

pub(super) fn decode<T: std::str::FromStr<Err = String>>(text: String) -> Result<T, sqlx::Error> {
    text.parse()
        .map_err(|e: String| sqlx::Error::Decode(e.into()))
}

pub(super) fn zones_of(r: &DbRow) -> Result<ZoneSet, sqlx::Error> {
    let mut set = ZoneSet::NONE;
    for zone in Zone::ALL {
        if r.try_get::<bool, _>(format!("in_{zone}").as_str())? {
            set = set.with(zone);
        }
    }
    Ok(set)
}

/// The predicate of the `tickets_reserved_name` partial index, written the
/// same way so the planners use the index to find a reserved name.
pub(super) const TICKET_RESERVES_NAME: &str = "state NOT IN ('completed', 'rejected', 'cancelled')";

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
    for write in &c.admin {
        admin::write_admin(tx, write, c.at).await?;
    }
    if let Some(verdict) = &c.verdict {
        verdicts::insert_verdict(tx, verdict).await?;
    }
    insert_messages(tx, &c.messages, c.at).await?;
    insert_events(tx, &c.events).await?;
    insert_outbox(tx, c, &committed).await?;
    if let (Some(notify), true) = (dialect::NOTIFY_WORK, c.wakes_workers()) {
        sqlx::query(notify).execute(&mut **tx).await?;
    }
    // Emails written already claimed by this process's relay are no other
    // relay's to send until that claim runs out: waking them would only
    // make each poll for nothing.
    let unclaimed_mail = !c.outbox.is_empty() && c.outbox_claimed_until.is_none();
    if let (Some(notify), true) = (dialect::NOTIFY_MAIL, unclaimed_mail) {
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

    fn writes(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Acquire)
    }

    async fn migrate(&self) -> Result<(), OpenError> {
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let failed = |reason: String| OpenError::Migration {
            url: redact_url(&self.url),
            reason,
        };
        let Some((off, check, on)) = dialect::MIGRATE_FOREIGN_KEYS else {
            return MIGRATOR
                .run(&self.pool)
                .await
                .map_err(|e| migration_error(&self.url, e, known));
        };
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| failed(e.to_string()))?;
        sqlx::query(off)
            .execute(&mut *conn)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let ran = MIGRATOR
            .run_direct(&mut *conn)
            .await
            .map_err(|e| migration_error(&self.url, e, known));
        let broken = sqlx::query(check).fetch_all(&mut *conn).await;
        // Back on whatever happened: the connection returns to the pool.
        let back_on = sqlx::query(on).execute(&mut *conn).await;
        ran?;
        match broken {
            Ok(rows) if rows.is_empty() => {}
            Ok(rows) => {
                return Err(failed(format!(
                    "{} rows break a foreign key after migrating",
                    rows.len()
                )));
            }
            Err(e) => return Err(failed(e.to_string())),
        }
        back_on.map_err(|e| failed(e.to_string()))?;
        Ok(())
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

    async fn subscription(&self, id: SubscriptionId) -> StoreResult<Option<Subscription>> {
        people::subscription(self, id).await
    }

    async fn subscription_by_slug(&self, slug: &str) -> StoreResult<Option<Subscription>> {
        people::subscription_by_slug(self, slug).await
    }

    async fn subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        people::subscriptions(self).await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        people::user(self, id).await
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        people::user_by_email(self, email).await
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        people::users(self).await
    }

    async fn display_names(&self, ids: &[UserId]) -> StoreResult<HashMap<UserId, String>> {
        people::display_names(self, ids).await
    }

    async fn users_with_role(&self, role: Role) -> StoreResult<Vec<User>> {
        people::users_with_role(self, role).await
    }

    async fn create_api_token(
        &self,
        token_hash: &str,
        user_id: UserId,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        people::create_api_token(self, token_hash, user_id, created_at, expires_at).await
    }

    async fn user_for_api_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        people::user_for_api_token(self, token_hash, now).await
    }

    async fn revoke_api_token(&self, token_hash: &str) -> StoreResult<()> {
        people::revoke_api_token(self, token_hash).await
    }

    async fn remember_relations(
        &self,
        cluster_id: ClusterId,
        names: &[(RelationFile, RelationName)],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.wrote(sandbox::remember_relations(self, cluster_id, names, at).await)
    }

    async fn remembered_relations(
        &self,
        cluster_id: ClusterId,
    ) -> StoreResult<Vec<(RelationFile, RelationName)>> {
        sandbox::remembered_relations(self, cluster_id).await
    }

    async fn zones(&self) -> StoreResult<Vec<ZoneStatus>> {
        fleet::zones(self).await
    }

    async fn drill_settings(&self, cluster_id: ClusterId) -> StoreResult<DrillSettings> {
        fleet::drill_settings(self, cluster_id).await
    }

    async fn online_zones(&self, region: &str) -> StoreResult<ZoneSet> {
        fleet::online_zones(self, region).await
    }

    async fn cluster(&self, id: ClusterId, scope: Scope) -> StoreResult<Option<Cluster>> {
        fleet::cluster(self, id, scope).await
    }

    async fn clusters(&self, scope: Scope, include_deleted: bool) -> StoreResult<Vec<Cluster>> {
        fleet::clusters(self, scope, include_deleted).await
    }

    async fn cluster_name_in_use(
        &self,
        subscription_id: SubscriptionId,
        resource_group: &str,
        name: &str,
    ) -> StoreResult<bool> {
        fleet::cluster_name_in_use(self, subscription_id, resource_group, name).await
    }

    async fn allocate_ticket_number(&self) -> StoreResult<i64> {
        tickets::allocate_ticket_number(self).await
    }

    async fn ticket(&self, id: TicketId, scope: Scope) -> StoreResult<Option<Ticket>> {
        tickets::ticket(self, id, scope).await
    }

    async fn ticket_by_number(&self, number: i64, scope: Scope) -> StoreResult<Option<Ticket>> {
        tickets::ticket_by_number(self, number, scope).await
    }

    async fn tickets(&self, q: &TicketQuery) -> StoreResult<Vec<Ticket>> {
        tickets::tickets(self, q).await
    }

    async fn count_tickets(&self, scope: Scope, states: &[TicketState]) -> StoreResult<i64> {
        tickets::count_tickets(self, scope, states).await
    }

    async fn ticket_tallies(
        &self,
        now: DateTime<Utc>,
        soon: DateTime<Utc>,
    ) -> StoreResult<Vec<TicketTally>> {
        tickets::ticket_tallies(self, now, soon).await
    }

    async fn messages(
        &self,
        ticket_id: TicketId,
        include_internal: bool,
    ) -> StoreResult<Vec<Message>> {
        tickets::messages(self, ticket_id, include_internal).await
    }

    async fn ticket_events(&self, ticket_id: TicketId) -> StoreResult<Vec<Event>> {
        tickets::ticket_events(self, ticket_id).await
    }

    async fn audit_log(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<Event>> {
        tickets::audit_log(self, before, limit).await
    }

    async fn tickets_nearing_deadline(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Ticket>> {
        tickets::tickets_nearing_deadline(self, before, limit).await
    }

    async fn undecided_tickets(
        &self,
        due_before: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Ticket>> {
        tickets::undecided_tickets(self, due_before, limit).await
    }

    async fn commit(&self, c: &Commit) -> StoreResult<Committed> {
        let result = self.commit_now(c).await;
        self.wrote(result)
    }

    async fn job(&self, id: JobId) -> StoreResult<Option<RestoreJob>> {
        jobs::job(self, id).await
    }

    async fn past_runs(
        &self,
        cluster_id: ClusterId,
        limit: i64,
    ) -> StoreResult<Vec<PastRunRecord>> {
        jobs::past_runs(self, cluster_id, limit).await
    }

    async fn drills(
        &self,
        cluster_id: Option<ClusterId>,
        limit: i64,
    ) -> StoreResult<Vec<DrillRecord>> {
        jobs::drills(self, cluster_id, limit).await
    }

    async fn drill_to_preempt(
        &self,
        place: &Placement,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RestoreJob>> {
        jobs::drill_to_preempt(self, place, now).await
    }

    async fn jobs_on_lost_hosts(
        &self,
        now: DateTime<Utc>,
        lost_before: DateTime<Utc>,
        alive: &str,
    ) -> StoreResult<Vec<RestoreJob>> {
        hosts::jobs_on_lost_hosts(self, now, lost_before, alive).await
    }

    async fn runs_on_host(&self, host: &str) -> StoreResult<Vec<(JobId, i64)>> {
        hosts::runs_on_host(self, host).await
    }

    async fn fleet_hosts(&self) -> StoreResult<Vec<crate::domain::host::FleetHost>> {
        hosts::fleet_hosts(self).await
    }

    async fn host_heartbeat(&self, beat: &HostHeartbeat) -> StoreResult<()> {
        hosts::host_heartbeat(self, beat).await
    }

    async fn host_heartbeats(&self) -> StoreResult<Vec<HostHeartbeat>> {
        hosts::host_heartbeats(self).await
    }

    async fn job_started_at(&self, job_id: JobId) -> StoreResult<Option<DateTime<Utc>>> {
        jobs::job_started_at(self, job_id).await
    }

    async fn job_for_ticket(&self, ticket_id: TicketId) -> StoreResult<Option<RestoreJob>> {
        jobs::job_for_ticket(self, ticket_id).await
    }

    async fn jobs(&self, active_only: bool, limit: i64) -> StoreResult<Vec<RestoreJob>> {
        jobs::jobs(self, active_only, limit).await
    }

    async fn claim_job(
        &self,
        worker: &str,
        place: &Placement,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<Option<RestoreJob>> {
        self.wrote(jobs::claim_job(self, worker, place, now, lease).await)
    }

    async fn renew_lease(
        &self,
        fence: &Fence,
        lease: Duration,
        progress: Option<&ProgressUpdate>,
    ) -> StoreResult<Option<JobState>> {
        self.wrote(jobs::renew_lease(self, fence, lease, progress).await)
    }

    async fn release_lease(&self, fence: &Fence) -> StoreResult<()> {
        self.wrote(jobs::release_lease(self, fence).await)
    }

    async fn next_job_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        jobs::next_job_due(self).await
    }

    async fn set_job_stalled(
        &self,
        job_id: JobId,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        self.wrote(jobs::set_job_stalled(self, job_id, since).await)
    }

    async fn take_duty(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> StoreResult<bool> {
        duties::take_duty(self, name, owner, now, ttl).await
    }

    async fn duty_holder(&self, name: &str, now: DateTime<Utc>) -> StoreResult<Option<String>> {
        duties::duty_holder(self, name, now).await
    }

    async fn release_duty(&self, name: &str, owner: &str) -> StoreResult<()> {
        duties::release_duty(self, name, owner).await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        claim_for: Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        outbox::claim_outbox(self, now, claim_for, limit).await
    }

    async fn settle_outbox(&self, id: Uuid, claim: i64, outcome: &Delivery) -> StoreResult<bool> {
        outbox::settle_outbox(self, id, claim, outcome).await
    }

    async fn outbox(&self, q: &OutboxQuery) -> StoreResult<Vec<OutboxMessage>> {
        outbox::outbox(self, q).await
    }

    async fn endpoint_deliveries(
        &self,
        endpoint_id: EndpointId,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        outbox::endpoint_deliveries(self, endpoint_id, limit).await
    }

    async fn verdict(&self, ticket_id: TicketId) -> StoreResult<Option<Verdict>> {
        verdicts::verdict(self, ticket_id).await
    }

    async fn verdicts(&self, since: DateTime<Utc>, limit: i64) -> StoreResult<Vec<Verdict>> {
        verdicts::verdicts(self, since, limit).await
    }

    async fn unconfirmed_handovers(&self, limit: i64) -> StoreResult<Vec<Ticket>> {
        verdicts::unconfirmed_handovers(self, limit).await
    }

    async fn ensure_secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
        endpoints::ensure_secret(self, name, candidate).await
    }

    async fn endpoint(&self, id: EndpointId) -> StoreResult<Option<Endpoint>> {
        endpoints::endpoint(self, id).await
    }

    async fn endpoints(&self, owner: EndpointOwner) -> StoreResult<Vec<Endpoint>> {
        endpoints::endpoints(self, owner).await
    }

    async fn endpoints_hearing(&self, subscription: SubscriptionId) -> StoreResult<Vec<Endpoint>> {
        endpoints::endpoints_hearing(self, subscription).await
    }

    async fn outbox_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        outbox::outbox_counts(self).await
    }

    async fn state_counts(&self, table: &'static str) -> StoreResult<Vec<(String, i64)>> {
        outbox::state_counts(self, table).await
    }
}

#[async_trait]
impl SandboxStore for SqlStore {
    async fn snapshots(&self, cluster_id: ClusterId) -> StoreResult<Vec<SandboxSnapshot>> {
        sandbox::sandbox_snapshots(self, cluster_id).await
    }

    async fn log_spans(&self, cluster_id: ClusterId) -> StoreResult<Vec<SandboxLogSpan>> {
        sandbox::sandbox_log_spans(self, cluster_id).await
    }

    async fn add_snapshot(&self, s: &SandboxSnapshot) -> StoreResult<()> {
        self.wrote(sandbox::sandbox_add_snapshot(self, s).await)
    }

    async fn add_log_span(&self, s: &SandboxLogSpan) -> StoreResult<()> {
        self.wrote(sandbox::sandbox_add_log_span(self, s).await)
    }

    async fn expire(&self, cluster_id: ClusterId, before: DateTime<Utc>) -> StoreResult<u64> {
        self.wrote(sandbox::sandbox_expire(self, cluster_id, before).await)
    }

    async fn faults(&self) -> StoreResult<Vec<SandboxFault>> {
        sandbox::sandbox_faults(self).await
    }

    async fn take_fault(&self, step: &str) -> StoreResult<Option<SandboxFault>> {
        sandbox::sandbox_take_fault(self, step).await
    }

    async fn damaged_copies(&self, snapshot_id: &str) -> StoreResult<ZoneSet> {
        sandbox::damaged_copies(self, snapshot_id).await
    }

    async fn add_transaction(
        &self,
        cluster_id: ClusterId,
        transaction: &LoggedTransaction,
    ) -> StoreResult<()> {
        self.wrote(sandbox::sandbox_add_transaction(self, cluster_id, transaction).await)
    }

    async fn transactions(&self, cluster_id: ClusterId) -> StoreResult<Vec<LoggedTransaction>> {
        sandbox::sandbox_transactions(self, cluster_id).await
    }
}
