//! Persistence: one `Store` trait, implemented for SQLite (the embedded
//! default) and PostgreSQL (several instances sharing one database).
//!
//! Both implementations compile the same SQL from `sql.rs`; see `sqlite.rs`
//! and `postgres.rs` for what differs. Every state change goes through
//! `Store::commit`, which applies a `Commit` — the guarded state change and
//! all of its effects — in one transaction.

pub mod postgres;
pub mod records;
pub mod sqlite;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::domain::catalog::{Zone, ZoneSet};
use crate::domain::cluster::Cluster;
use crate::domain::ticket::TicketState;
use crate::domain::transactions::{LoggedTransaction, RelationFile, RelationName};

pub use records::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A guard failed: somebody else changed the row first. Nothing was written.
    #[error("{0} was changed by someone else in the meantime")]
    Conflict(&'static str),
    /// A write found nothing to change. Nothing was written.
    #[error("{0} does not exist")]
    NotFound(&'static str),
    /// A unique rule would be broken. Nothing was written.
    #[error("{0} already exists")]
    Duplicate(Unique),
    /// The database cannot be reached or is going away: nothing was
    /// written, and trying again once it is back will work.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database has no room to write: nothing was written.
    #[error("the database's storage is full: {0}")]
    StorageFull(String),
    #[error("{0}")]
    Database(sqlx::Error),
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
}

/// The unique rules callers react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    /// A live cluster or an open ticket already holds the new cluster's name.
    ClusterName,
    Email,
    SubscriptionSlug,
    /// A ticket has a restore job already.
    JobForTicket,
    OutboxDedupeKey,
    /// A ticket has its verdict already.
    Verdict,
    /// Another host serves this zone already.
    ZoneHost,
    /// Another cluster has this pgBackRest stanza already.
    Stanza,
    Other,
}

impl std::fmt::Display for Unique {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unique::ClusterName => "a cluster with this name",
            Unique::Email => "a user with this email",
            Unique::SubscriptionSlug => "a subscription with this name",
            Unique::JobForTicket => "a restore job for this ticket",
            Unique::OutboxDedupeKey => "this email",
            Unique::Verdict => "a verdict on this ticket",
            Unique::ZoneHost => "a host for this zone",
            Unique::Stanza => "a cluster with this pgBackRest stanza",
            Unique::Other => "this record",
        })
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    /// Unique violations become `Duplicate`, named by the rule they broke,
    /// whichever database reported them (PostgreSQL names the constraint,
    /// SQLite the columns).
    fn from(error: sqlx::Error) -> StoreError {
        use sqlx::Error as E;
        let db = match &error {
            E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => {
                return StoreError::Unavailable(error.to_string());
            }
            E::Database(db) => db,
            _ => return StoreError::Database(error),
        };
        let code = db.code().unwrap_or_default();
        if is_storage_full(&code) {
            return StoreError::StorageFull(db.message().to_string());
        }
        if is_unavailable(&code) {
            return StoreError::Unavailable(db.message().to_string());
        }
        if !db.is_unique_violation() {
            return StoreError::Database(error);
        }
        let text = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
        let rule = if text.contains("new_cluster_name")
            || text.contains("tickets_reserved_name")
            || text.contains("clusters_live_name")
            || text.contains("clusters.name")
        {
            Unique::ClusterName
        } else if text.contains("email") {
            Unique::Email
        } else if text.contains("slug") {
            Unique::SubscriptionSlug
        } else if text.contains("restore_jobs") && text.contains("ticket_id") {
            Unique::JobForTicket
        } else if text.contains("dedupe_key") {
            Unique::OutboxDedupeKey
        } else if text.contains("verdicts") {
            Unique::Verdict
        } else if text.contains("fleet_hosts_zone") || text.contains("fleet_hosts.zone") {
            Unique::ZoneHost
        } else if text.contains("stanza") {
            Unique::Stanza
        } else {
            Unique::Other
        };
        StoreError::Duplicate(rule)
    }
}

/// A full disk: PostgreSQL's `disk_full` (53100), SQLite's `SQLITE_FULL`
/// (13) and the write error SQLite reports when the file cannot grow
/// (`SQLITE_IOERR_WRITE`, 778).
fn is_storage_full(code: &str) -> bool {
    matches!(code, "53100" | "13" | "778")
}

/// PostgreSQL going away or refusing connections: a connection exception
/// (class 08), an administrator or crash shutdown, not accepting
/// connections yet, too many connections.
fn is_unavailable(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

impl StoreError {
    /// Whether the database itself is at fault (down, or full) rather than
    /// the request: callers answer 503 and may try again later.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::StorageFull(_)
        )
    }
}

/// The concrete connection pool behind a store, for the few libraries that
/// keep their own tables in the same database (the web sessions). Everything
/// else goes through the `Store` trait.
#[derive(Debug, Clone)]
pub enum PoolHandle {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// Which rows a reader may see. Customers see their subscription only;
/// the filter is part of every query, not a check after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Subscription(SubscriptionId),
    Everything,
}

impl Scope {
    pub fn subscription(self) -> Option<SubscriptionId> {
        match self {
            Scope::Subscription(id) => Some(id),
            Scope::Everything => None,
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn kind(&self) -> StoreKind;
    /// The pool itself, for the session store of the web desk.
    fn pool_handle(&self) -> PoolHandle;
    /// How many writes that can change what a page shows (commits, job
    /// claims, leases and progress, the fleet's backups) this process has
    /// made: a read remembered at one count is stale at the next.
    fn writes(&self) -> u64;
    /// Brings the schema up to date; refuses a schema newer than this build.
    async fn migrate(&self) -> Result<(), OpenError>;
    async fn ping(&self) -> StoreResult<()>;
    /// Proves the database takes writes now: one small write in a
    /// transaction of its own, keyed by `owner`. A store whose disk it can
    /// see (SQLite) also refuses with `StorageFull` when the disk is all but
    /// full: a small write may still fit in space the database holds while
    /// every real one fails.
    async fn probe_write(&self, owner: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// Commits in other processes that created work, if the database can
    /// tell (PostgreSQL can; SQLite serves one process).
    async fn wake_ups(&self) -> StoreResult<Option<WakeUps>>;
    /// True before anything was seeded: no subscription and no user.
    async fn is_empty(&self) -> StoreResult<bool>;

    // Subscriptions and users.
    async fn create_subscription(&self, subscription: &Subscription) -> StoreResult<()> {
        let write = AdminWrite::CreateSubscription(subscription.clone());
        self.commit(&Commit::admin(write, None, subscription.created_at))
            .await
            .map(drop)
    }
    async fn subscription(&self, id: SubscriptionId) -> StoreResult<Option<Subscription>>;
    async fn subscription_by_slug(&self, slug: &str) -> StoreResult<Option<Subscription>>;
    async fn subscriptions(&self) -> StoreResult<Vec<Subscription>>;
    async fn create_user(&self, user: &User, audit: Option<NewEvent>) -> StoreResult<()> {
        let write = AdminWrite::CreateUser(user.clone());
        self.commit(&Commit::admin(write, audit, user.created_at))
            .await
            .map(drop)
    }
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>>;
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// The display names of the users among `ids`, in one read.
    async fn display_names(&self, ids: &[UserId]) -> StoreResult<HashMap<UserId, String>>;
    async fn update_user(
        &self,
        id: UserId,
        update: &UserUpdate,
        audit: NewEvent,
    ) -> StoreResult<()> {
        let at = audit.at;
        let write = AdminWrite::UpdateUser {
            id,
            update: update.clone(),
        };
        match self.commit(&Commit::admin(write, Some(audit), at)).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound(_)) => Err(StoreError::Conflict("the user")),
            Err(other) => Err(other),
        }
    }
    /// Enabled users of one role, for notifications.
    async fn users_with_role(&self, role: crate::domain::actor::Role) -> StoreResult<Vec<User>>;
    async fn create_api_token(
        &self,
        token_hash: &str,
        user_id: UserId,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The enabled user holding an unexpired token.
    async fn user_for_api_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>>;
    async fn revoke_api_token(&self, token_hash: &str) -> StoreResult<()>;

    // What the desk knew of a cluster's relations, by file.
    /// Keeps `names` as seen at `at`; a file seen before under another name
    /// takes the new one.
    async fn remember_relations(
        &self,
        cluster_id: ClusterId,
        names: &[(RelationFile, RelationName)],
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn remembered_relations(
        &self,
        cluster_id: ClusterId,
    ) -> StoreResult<Vec<(RelationFile, RelationName)>>;

    // Zones and clusters.
    async fn zones(&self) -> StoreResult<Vec<ZoneStatus>>;
    /// How an admin said the cluster is drilled (defaults when unsaid).
    async fn drill_settings(&self, cluster_id: ClusterId) -> StoreResult<DrillSettings>;
    async fn online_zones(&self, region: &str) -> StoreResult<ZoneSet>;
    async fn ensure_zone(
        &self,
        region: &str,
        zone: Zone,
        online: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let write = AdminWrite::EnsureZone {
            region: region.to_string(),
            zone,
            online,
        };
        self.commit(&Commit::admin(write, None, at)).await.map(drop)
    }
    /// Sets a zone on- or offline with its audit event; false if unknown.
    async fn set_zone_online(
        &self,
        region: &str,
        zone: Zone,
        online: bool,
        audit: NewEvent,
    ) -> StoreResult<bool> {
        let at = audit.at;
        let write = AdminWrite::SetZone {
            region: region.to_string(),
            zone,
            online,
        };
        match self.commit(&Commit::admin(write, Some(audit), at)).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }
    async fn insert_cluster(&self, cluster: &Cluster) -> StoreResult<()> {
        let write = AdminWrite::InsertCluster(Box::new(cluster.clone()));
        self.commit(&Commit::admin(write, None, cluster.created_at))
            .await
            .map(drop)
    }
    async fn cluster(&self, id: ClusterId, scope: Scope) -> StoreResult<Option<Cluster>>;
    /// Clusters by name, deleted ones included when asked.
    async fn clusters(&self, scope: Scope, include_deleted: bool) -> StoreResult<Vec<Cluster>>;
    /// Is `name` held by a live cluster or reserved by an open ticket?
    async fn cluster_name_in_use(
        &self,
        subscription_id: SubscriptionId,
        resource_group: &str,
        name: &str,
    ) -> StoreResult<bool>;
    /// Marks a live cluster deleted at `at`; false if it was not live.
    async fn delete_cluster(
        &self,
        id: ClusterId,
        at: DateTime<Utc>,
        audit: NewEvent,
    ) -> StoreResult<bool> {
        let write = AdminWrite::DeleteCluster { id };
        match self.commit(&Commit::admin(write, Some(audit), at)).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Arms a fault of the simulated fleet, with its audit event.
    async fn sandbox_add_fault(&self, fault: &SandboxFault, audit: NewEvent) -> StoreResult<()> {
        let at = audit.at;
        let write = AdminWrite::AddFault(fault.clone());
        self.commit(&Commit::admin(write, Some(audit), at))
            .await
            .map(drop)
    }
    async fn sandbox_clear_faults(&self, audit: NewEvent) -> StoreResult<()> {
        let at = audit.at;
        self.commit(&Commit::admin(AdminWrite::ClearFaults, Some(audit), at))
            .await
            .map(drop)
    }

    // Tickets.
    async fn allocate_ticket_number(&self) -> StoreResult<i64>;
    async fn ticket(&self, id: TicketId, scope: Scope) -> StoreResult<Option<Ticket>>;
    async fn ticket_by_number(&self, number: i64, scope: Scope) -> StoreResult<Option<Ticket>>;
    async fn tickets(&self, query: &TicketQuery) -> StoreResult<Vec<Ticket>>;
    async fn count_tickets(&self, scope: Scope, states: &[TicketState]) -> StoreResult<i64>;
    /// Every ticket counted by state, severity, assignee and whether its
    /// first response is breached at `now` or due before `soon`.
    async fn ticket_tallies(
        &self,
        now: DateTime<Utc>,
        soon: DateTime<Utc>,
    ) -> StoreResult<Vec<TicketTally>>;
    async fn messages(
        &self,
        ticket_id: TicketId,
        include_internal: bool,
    ) -> StoreResult<Vec<Message>>;
    async fn ticket_events(&self, ticket_id: TicketId) -> StoreResult<Vec<Event>>;
    /// The audit log, newest first, before event id `before`.
    async fn audit_log(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<Event>>;
    /// Open tickets whose deadline falls before `before` and that have not
    /// been warned about yet.
    async fn tickets_nearing_deadline(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Ticket>>;
    /// Tickets whose paused copy waited for a decision until before
    /// `due_before`, the longest overdue first.
    async fn undecided_tickets(
        &self,
        due_before: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Ticket>>;
    /// Applies a change and all of its effects in one transaction.
    async fn commit(&self, commit: &Commit) -> StoreResult<Committed>;

    // Restore jobs.
    async fn job(&self, id: JobId) -> StoreResult<Option<RestoreJob>>;
    async fn job_for_ticket(&self, ticket_id: TicketId) -> StoreResult<Option<RestoreJob>>;
    async fn jobs(&self, active_only: bool, limit: i64) -> StoreResult<Vec<RestoreJob>>;
    /// The cluster's newest finished runs, restores and drills, with their
    /// state changes in order: what estimates learn from.
    async fn past_runs(&self, cluster_id: ClusterId, limit: i64)
    -> StoreResult<Vec<PastRunRecord>>;
    /// Drills, newest first: of one cluster, or of all.
    async fn drills(
        &self,
        cluster_id: Option<ClusterId>,
        limit: i64,
    ) -> StoreResult<Vec<DrillRecord>>;
    /// A drill holding a place on the worker's host that a due customer's
    /// restore needs (the host is full and the restore waits), if any.
    async fn drill_to_preempt(
        &self,
        place: &Placement,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RestoreJob>>;
    /// Jobs on a host last heard from before `lost_before` (never
    /// `alive`) that nobody holds at `now`: another host takes them over.
    async fn jobs_on_lost_hosts(
        &self,
        now: DateTime<Utc>,
        lost_before: DateTime<Utc>,
        alive: &str,
    ) -> StoreResult<Vec<RestoreJob>>;
    /// The `(job, run)`s whose files `host` keeps.
    async fn runs_on_host(&self, host: &str) -> StoreResult<Vec<(JobId, i64)>>;

    // The fleet's hosts.
    async fn fleet_hosts(&self) -> StoreResult<Vec<crate::domain::host::FleetHost>>;
    /// Adds a host or replaces the one of its name.
    async fn put_fleet_host(
        &self,
        host: &crate::domain::host::FleetHost,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let write = AdminWrite::PutFleetHost(host.clone());
        self.commit(&Commit::admin(write, None, now))
            .await
            .map(drop)
    }
    /// Removes a host; false when there was none. Refused with `Conflict`
    /// while a job that is not over is placed on it.
    async fn remove_fleet_host(&self, name: &str) -> StoreResult<bool> {
        let write = AdminWrite::RemoveFleetHost {
            name: name.to_string(),
        };
        // Nothing of a removal is dated: the commit's time is not written.
        match self.commit(&Commit::admin(write, None, Utc::now())).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }
    /// Records that a host's worker is alive, and its room.
    async fn host_heartbeat(&self, beat: &HostHeartbeat) -> StoreResult<()>;
    async fn host_heartbeats(&self) -> StoreResult<Vec<HostHeartbeat>>;
    /// When a worker took up the job's latest run.
    async fn job_started_at(&self, job_id: JobId) -> StoreResult<Option<DateTime<Utc>>>;
    /// Takes the lease of one due job nobody holds (or whose lease expired),
    /// bumping its fencing token, placing it on the worker's host: one
    /// placed there already, or a queued one while the host has room, a
    /// customer's restore before any drill.
    async fn claim_job(
        &self,
        worker: &str,
        place: &Placement,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<Option<RestoreJob>>;
    /// Extends a held lease and records progress. `None` means the lease is
    /// lost: the worker must stop. Otherwise the job's current state, which
    /// staff may have moved to `cancelling`.
    async fn renew_lease(
        &self,
        fence: &Fence,
        lease: Duration,
        progress: Option<&ProgressUpdate>,
    ) -> StoreResult<Option<crate::domain::restore_job::JobState>>;
    async fn release_lease(&self, fence: &Fence) -> StoreResult<()>;
    /// When the next queued or retrying job becomes due.
    async fn next_job_due(&self) -> StoreResult<Option<DateTime<Utc>>>;
    async fn set_job_stalled(&self, job_id: JobId, since: Option<DateTime<Utc>>)
    -> StoreResult<()>;

    /// Takes or renews the lease on a periodic duty; false while another
    /// owner holds it.
    async fn take_duty(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> StoreResult<bool>;

    /// Who holds the duty lease `name` at `now`, if anyone.
    async fn duty_holder(&self, name: &str, now: DateTime<Utc>) -> StoreResult<Option<String>>;
    /// Gives up a duty lease `owner` holds, so another process may take it
    /// at once; nothing happens if someone else holds it.
    async fn release_duty(&self, name: &str, owner: &str) -> StoreResult<()>;

    // Outbox.
    /// Claims due messages for sending, each under a new claim token.
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        claim_for: Duration,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>>;
    /// Settles the attempt made under `claim`, counting it; false if the
    /// claim was lost meanwhile.
    async fn settle_outbox(&self, id: Uuid, claim: i64, outcome: &Delivery) -> StoreResult<bool>;
    async fn outbox(&self, query: &OutboxQuery) -> StoreResult<Vec<OutboxMessage>>;
    async fn outbox_counts(&self) -> StoreResult<Vec<(String, i64)>>;
    /// Posts to one endpoint, newest first: its delivery log.
    async fn endpoint_deliveries(
        &self,
        endpoint_id: EndpointId,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>>;

    // Verdicts.
    async fn verdict(&self, ticket_id: TicketId) -> StoreResult<Option<Verdict>>;
    /// Verdicts given since `since`, newest first.
    async fn verdicts(&self, since: DateTime<Utc>, limit: i64) -> StoreResult<Vec<Verdict>>;
    /// Completed tickets whose customer has not said whether the data is
    /// right, most recently completed first.
    async fn unconfirmed_handovers(&self, limit: i64) -> StoreResult<Vec<Ticket>>;

    // Endpoints.
    /// The desk's secret `name`: `candidate` if none was kept yet (then
    /// kept), else the one kept first, whoever asks.
    async fn ensure_secret(&self, name: &str, candidate: &str) -> StoreResult<String>;
    async fn endpoint(&self, id: EndpointId) -> StoreResult<Option<Endpoint>>;
    async fn endpoints(&self, owner: EndpointOwner) -> StoreResult<Vec<Endpoint>>;
    /// Enabled endpoints that hear a ticket of `subscription`: its own and
    /// staff's.
    async fn endpoints_hearing(&self, subscription: SubscriptionId) -> StoreResult<Vec<Endpoint>>;

    /// Rows per state of `tickets` or `restore_jobs`.
    async fn state_counts(&self, table: &'static str) -> StoreResult<Vec<(String, i64)>>;
}

pub type DynStore = Arc<dyn Store>;

/// The simulated fleet's own tables: its backup catalog and the faults an
/// admin armed (armed and cleared through `Store::commit`, with their
/// audit events). Only the sandbox backend and its tests read them.
#[async_trait]
pub trait SandboxStore: Send + Sync + 'static {
    async fn snapshots(&self, cluster_id: ClusterId) -> StoreResult<Vec<SandboxSnapshot>>;
    async fn log_spans(&self, cluster_id: ClusterId) -> StoreResult<Vec<SandboxLogSpan>>;
    async fn add_snapshot(&self, snapshot: &SandboxSnapshot) -> StoreResult<()>;
    async fn add_log_span(&self, span: &SandboxLogSpan) -> StoreResult<()>;
    /// Removes snapshots finished before `before` and log that ended before it.
    async fn expire(&self, cluster_id: ClusterId, before: DateTime<Utc>) -> StoreResult<u64>;
    /// The faults still armed, oldest first.
    async fn faults(&self) -> StoreResult<Vec<SandboxFault>>;
    /// Uses up one firing of a fault for `step`, if any is armed.
    async fn take_fault(&self, step: &str) -> StoreResult<Option<SandboxFault>>;
    /// The zones whose copy of the snapshot went bad.
    async fn damaged_copies(&self, snapshot_id: &str) -> StoreResult<ZoneSet>;
    /// Puts a transaction into the simulated log (once per xid).
    async fn add_transaction(
        &self,
        cluster_id: ClusterId,
        transaction: &LoggedTransaction,
    ) -> StoreResult<()>;
    /// The transactions put into the cluster's simulated log, oldest first.
    async fn transactions(&self, cluster_id: ClusterId) -> StoreResult<Vec<LoggedTransaction>>;
}

pub type DynSandboxStore = Arc<dyn SandboxStore>;

/// Work that another process committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeUp {
    /// A restore job became runnable.
    Work,
    /// Emails were written to the outbox.
    Mail,
}

pub type WakeUps = tokio::sync::mpsc::UnboundedReceiver<WakeUp>;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "DATABASE_URL {0:?} is not a database URL: use sqlite://path/to/file.db or postgres://user@host:port/database"
    )]
    BadUrl(String),
    #[error("cannot open the database at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "the database at {url} has schema version {found}, newer than this restore-desk knows (up to {known}): upgrade restore-desk"
    )]
    SchemaTooNew { url: String, found: i64, known: i64 },
    #[error("migrating the database at {url} failed: {reason}")]
    Migration { url: String, reason: String },
}

/// Hides a password in a database URL, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// How long a caller waits for a PostgreSQL connection before hearing that
/// the database is unavailable.
pub const DEFAULT_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Opens the store the URL names, without migrating it.
pub async fn open(url: &str) -> Result<DynStore, OpenError> {
    Ok(open_with(url, DEFAULT_ACQUIRE_TIMEOUT).await?.0)
}

/// Opens the store and the simulated fleet's tables beside it, waiting at
/// most `acquire_timeout` for a pooled connection.
pub async fn open_with(
    url: &str,
    acquire_timeout: std::time::Duration,
) -> Result<(DynStore, DynSandboxStore), OpenError> {
    if url.starts_with("sqlite:") {
        let store = Arc::new(sqlite::SqliteStore::open(url).await?);
        Ok((store.clone(), store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = Arc::new(postgres::PostgresStore::open(url, acquire_timeout).await?);
        Ok((store.clone(), store))
    } else {
        Err(OpenError::BadUrl(redact_url(url)))
    }
}

/// Maps a migration failure to a one-line reason.
pub(crate) fn migration_error(
    url: &str,
    error: sqlx::migrate::MigrateError,
    known: i64,
) -> OpenError {
    use sqlx::migrate::MigrateError;
    match error {
        MigrateError::VersionMissing(found) => OpenError::SchemaTooNew {
            url: redact_url(url),
            found,
            known,
        },
        other => OpenError::Migration {
            url: redact_url(url),
            reason: other.to_string(),
        },
    }
}
