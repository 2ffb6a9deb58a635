//! The data plane: the one trait between the restore engine and the fleet it
//! restores. `sandbox` simulates a fleet in-process; `pgbackrest` drives real
//! PostgreSQL clusters and their pgBackRest repositories.
//!
//! Every step may be interrupted (a crash, a lost lease, a cancel) and run
//! again from the start: implementations make each one idempotent, keyed by
//! the job id and run.

pub mod pgbackrest;
pub mod sandbox;
pub mod sandbox_log;

use std::sync::Arc;

use crate::domain::ids::{ClusterId, JobId, TicketId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::domain::catalog::{Catalog, RestorePlan, RetentionPolicy, ZoneSet};
use crate::domain::cluster::{Cluster, Connection};
use crate::domain::restore_job::{JobState, StepFailure};
use crate::domain::transactions::{LogRead, LoggedTransaction, RelationFile, RelationName};
use crate::domain::validation::TargetContext;
use crate::domain::verification::ObservedCluster;

/// What a step needs to know about its job.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job_id: JobId,
    pub run: i64,
    pub kind: crate::domain::restore_job::JobKind,
    /// The ticket of a customer's restore; a drill has none.
    pub ticket_id: Option<TicketId>,
    pub source: Cluster,
    /// The moment to restore to; with `transaction`, the moment it stands
    /// for.
    pub target: DateTime<Utc>,
    /// Restore to just before or just after this transaction instead.
    pub transaction: Option<crate::domain::transactions::TransactionTarget>,
    pub new_cluster_id: ClusterId,
    pub new_cluster_name: String,
    /// Chosen when the snapshot restore starts; known from then on.
    pub plan: Option<RestorePlan>,
    /// A drill's canary query, run read-only on its copy.
    pub canary: Option<crate::domain::drill::CanaryQuery>,
    /// Stop paused and read-only at the target, for the customer to inspect,
    /// instead of promoting; the hand-over promotes.
    pub inspect: bool,
}

/// How a step ended short of success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Trying again later may work: a zone outage, a busy host.
    #[error("{message}")]
    Retryable { code: String, message: String },
    /// Trying again cannot help: the target left the window, a check failed.
    #[error("{message}")]
    Fatal { code: String, message: String },
    /// The worker asked the step to stop (cancel, lost lease, shutdown).
    #[error("interrupted")]
    Interrupted,
}

impl StepError {
    pub fn retryable(code: &str, message: impl Into<String>) -> StepError {
        StepError::Retryable {
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn fatal(code: &str, message: impl Into<String>) -> StepError {
        StepError::Fatal {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The failure to record, or `None` for an interruption.
    pub fn failure(&self) -> Option<StepFailure> {
        match self {
            StepError::Retryable { code, message } => Some(StepFailure {
                code: code.clone(),
                message: message.clone(),
                retryable: true,
            }),
            StepError::Fatal { code, message } => Some(StepFailure {
                code: code.clone(),
                message: message.clone(),
                retryable: false,
            }),
            StepError::Interrupted => None,
        }
    }
}

/// A failure to read from the fleet outside a job (catalog, zones, backups).
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The fleet — its hosts, repositories or tools — did not answer.
    #[error("{0}")]
    Unreachable(String),
    /// The desk's own database failed while reading what it keeps of the
    /// fleet (zone states; the sandbox's whole catalog).
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

/// Why a cluster that exists outside the desk cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdoptionRefusal {
    /// A zone that should hold its backups knows no such stanza.
    #[error("{0}")]
    UnknownStanza(String),
    /// A zone cannot be reached, or cannot read its backups.
    #[error("{0}")]
    Unreadable(String),
    /// This fleet adopts no clusters.
    #[error("{0}")]
    Unsupported(String),
}

/// Where a long step reports how far it got (0.0–1.0) and what it is doing.
pub trait Progress: Send + Sync {
    fn report(&self, fraction: f64, detail: &str);

    /// While the log is replayed: the commit time it has reached.
    fn replayed(&self, to: DateTime<Utc>) {
        let _ = to;
    }
}

/// The replay of the log reported as the commit time reached between the
/// snapshot's end and the target: a step's fraction becomes that moment.
pub struct ReplayProgress<'a> {
    pub inner: &'a dyn Progress,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl ReplayProgress<'_> {
    /// The fraction of the replay done once `reached` is replayed.
    pub fn fraction_at(&self, reached: DateTime<Utc>) -> f64 {
        let whole = (self.to - self.from).num_microseconds().unwrap_or(0);
        if whole <= 0 {
            return 1.0;
        }
        let done = (reached - self.from).num_microseconds().unwrap_or(0);
        (done as f64 / whole as f64).clamp(0.0, 1.0)
    }
}

impl Progress for ReplayProgress<'_> {
    fn report(&self, fraction: f64, detail: &str) {
        let fraction = fraction.clamp(0.0, 1.0);
        let span = (self.to - self.from).num_microseconds().unwrap_or(0).max(0) as f64;
        let reached = self.from + chrono::Duration::microseconds((span * fraction) as i64);
        self.inner.replayed(reached.min(self.to));
        self.inner.report(fraction, detail);
    }

    fn replayed(&self, to: DateTime<Utc>) {
        self.inner.replayed(to);
    }
}

/// Reports nowhere: for steps run outside a worker.
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&self, _fraction: f64, _detail: &str) {}
}

/// What the fleet says of a cluster's backups at one moment: its catalog
/// and the zones that can serve a restore. Every check of a target reads
/// this, then asks the domain.
pub struct FleetView {
    pub catalog: Catalog,
    pub online: ZoneSet,
}

impl FleetView {
    pub async fn read(backend: &dyn Backend, cluster: &Cluster) -> Result<FleetView, FleetError> {
        Ok(FleetView {
            catalog: backend.catalog(cluster).await?,
            online: backend.online_zones(cluster).await?,
        })
    }

    /// What a target of `cluster` is checked against, as of `now`.
    pub fn context<'a>(
        &'a self,
        cluster: &Cluster,
        policy: RetentionPolicy,
        now: DateTime<Utc>,
    ) -> TargetContext<'a> {
        TargetContext {
            catalog: &self.catalog,
            life: cluster.life(),
            online: self.online,
            policy,
            now,
            zone: chrono_tz::Tz::UTC,
        }
    }
}

/// What a round of automatic backups did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupRound {
    pub snapshots_taken: usize,
    pub snapshots_expired: usize,
}

#[async_trait]
pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;

    /// The cluster's backups as they are now.
    async fn catalog(&self, cluster: &Cluster) -> Result<Catalog, FleetError>;

    /// Zones of the cluster's region that can serve a restore right now.
    async fn online_zones(&self, cluster: &Cluster) -> Result<ZoneSet, FleetError>;

    /// Makes room for the new cluster and says where it will answer.
    async fn provision(
        &self,
        job: &JobContext,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<Connection, StepError>;

    /// Where the new cluster of a run lives in a fleet across hosts: its
    /// host, data directory and the stanza it is backed up under once
    /// handed over. `None` where the fleet keeps no such record.
    fn location_of(&self, job: &JobContext) -> Option<crate::domain::cluster::FleetLocation> {
        let _ = job;
        None
    }

    /// Lays down the chosen snapshot from the chosen zone.
    async fn restore_snapshot(
        &self,
        job: &JobContext,
        plan: &RestorePlan,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<(), StepError>;

    /// Replays the log to exactly the target time and promotes the cluster.
    /// Returns the commit time of the last transaction replayed, if any.
    async fn replay_log(
        &self,
        job: &JobContext,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, StepError>;

    /// What a restore of `cluster` from `plan` to `target` copies and
    /// replays: the backup's size and the log to replay, both in bytes
    /// (estimates where the fleet keeps no exact figure).
    async fn restore_work(
        &self,
        cluster: &Cluster,
        plan: &RestorePlan,
        target: DateTime<Utc>,
    ) -> Result<crate::domain::eta::Work, FleetError>;

    /// Reads the backups of a cluster about to be registered from `zones`:
    /// its earliest backup's start (`None` while it has none yet), or why
    /// it cannot be registered. Writes nothing anywhere.
    async fn adoptable(
        &self,
        location: &crate::domain::cluster::FleetLocation,
        zones: ZoneSet,
    ) -> Result<Option<DateTime<Utc>>, AdoptionRefusal> {
        let _ = (location, zones);
        Err(AdoptionRefusal::Unsupported(
            "The simulated fleet registers no clusters from outside: run the real fleet              (BACKEND=pgbackrest) across hosts"
                .into(),
        ))
    }

    /// Whether this process runs restores at all: across hosts only a
    /// restore host does.
    async fn runs_restores(&self) -> bool {
        true
    }

    /// Bytes free for restores on this process's restore host.
    async fn free_space(&self) -> Result<i64, FleetError>;

    /// A drill's deeper look at its copy, once verified: no corruption in
    /// any table or index, and its canary query true. Each finding is a
    /// check of the report; a check that could not run fails with why.
    async fn examine(
        &self,
        job: &JobContext,
        cancel: &CancellationToken,
    ) -> Result<Vec<crate::domain::verification::Check>, StepError>;

    /// Looks at the new cluster for verification.
    async fn inspect(
        &self,
        job: &JobContext,
        cancel: &CancellationToken,
    ) -> Result<ObservedCluster, StepError>;

    /// Opens the new cluster for use and returns where to connect.
    async fn finalize(
        &self,
        job: &JobContext,
        cancel: &CancellationToken,
    ) -> Result<Connection, StepError>;

    /// Removes whatever a run built. Harmless when nothing was built.
    async fn teardown(&self, job: &JobContext) -> Result<(), StepError>;

    /// Removes from `host` what restores left there that it no longer
    /// holds: every run not in `keep` (the host's unfinished runs and the
    /// clusters it handed over). Returns how many were removed.
    async fn remove_leftovers(
        &self,
        host: &str,
        keep: &[(JobId, i64)],
    ) -> Result<usize, FleetError> {
        let _ = (host, keep);
        Ok(0)
    }

    /// How long `step` may go without progress before the watchdog flags it.
    fn step_bound(&self, step: JobState) -> std::time::Duration {
        let _ = step;
        std::time::Duration::from_secs(15 * 60)
    }

    /// Automatic backups and retention expiry, run on a schedule.
    async fn run_backups(&self, now: DateTime<Utc>) -> Result<BackupRound, FleetError>;

    /// The transactions committed from `from` to `to` in the cluster's
    /// archived log, as an online zone holds it.
    async fn transactions(
        &self,
        cluster: &Cluster,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<LogRead, FleetError>;

    /// The committed transaction `xid` of the cluster's archived log, as an
    /// online zone holds it; `None` when it is not there (never committed,
    /// rolled back, or outside the log).
    async fn transaction(
        &self,
        cluster: &Cluster,
        xid: u64,
    ) -> Result<Option<LoggedTransaction>, FleetError>;

    /// The source's relations as its catalog names them now, read without
    /// writing anything. A deleted cluster has none to read.
    async fn relation_names(
        &self,
        cluster: &Cluster,
    ) -> Result<Vec<(RelationFile, RelationName)>, FleetError>;
}

pub type DynBackend = Arc<dyn Backend>;
