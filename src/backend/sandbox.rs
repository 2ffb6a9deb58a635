//! A simulated fleet, in-process and deterministic: the embedded default, so
//! a new user can click through the whole flow at once.
//!
//! Its catalog lives in the store (`sandbox_*` tables) so several processes
//! share one fleet. Each step takes `SANDBOX_STEP_MS` in ten ticks, reporting
//! progress; faults armed from the admin pages make a step fail or stall,
//! and taking a zone offline interrupts a snapshot restore from it.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use tokio_util::sync::CancellationToken;

use super::{Backend, BackupRound, FleetError, JobContext, Progress, StepError};
use crate::clock::Clock;
use crate::domain::catalog::{
    Catalog, LogSpan, RestorePlan, RetentionPolicy, Snapshot, Zone, ZoneSet,
};
use crate::domain::cluster::{Cluster, ClusterStatus, Connection};
use crate::domain::restore_job::JobState;
use crate::domain::transactions::{LogRead, LoggedTransaction, RelationFile, RelationName};
use crate::domain::verification::ObservedCluster;
use crate::store::{
    DynSandboxStore, DynStore, FaultKind, SandboxLogSpan, SandboxSnapshot, Scope, StoreError,
};

/// The archived log trails the present by this much: like a real archiver,
/// the last minute is not restorable yet.
pub const ARCHIVE_LAG: Duration = Duration::seconds(60);

/// Automatic backups are daily.
pub const BACKUP_INTERVAL: Duration = Duration::hours(24);

/// A simulated backup's size per GiB of the cluster's storage: a tenth used,
/// compressed by half.
pub const BACKUP_BYTES_PER_STORAGE_GIB: i64 = 52 * 1024 * 1024;

/// Simulated log written per second: a quiet cluster's.
pub const LOG_BYTES_PER_SECOND: i64 = 64;

use super::sandbox_log::{self, COMMIT_INTERVAL_SECS};

pub struct SandboxBackend {
    store: DynStore,
    /// The simulated catalog and faults.
    tables: DynSandboxStore,
    clock: Arc<dyn Clock>,
    step: StdDuration,
    policy: RetentionPolicy,
    /// The simulated restore host's disk for restores.
    disk_bytes: i64,
}

impl SandboxBackend {
    pub fn new(
        store: DynStore,
        tables: DynSandboxStore,
        clock: Arc<dyn Clock>,
        step: StdDuration,
        policy: RetentionPolicy,
        disk_bytes: i64,
    ) -> SandboxBackend {
        SandboxBackend {
            store,
            tables,
            clock,
            step,
            policy,
            disk_bytes,
        }
    }

    /// The last simulated commit at or before `t`.
    pub fn last_commit_before(t: DateTime<Utc>) -> DateTime<Utc> {
        let secs = t.timestamp();
        let floored = secs - secs.rem_euclid(COMMIT_INTERVAL_SECS);
        DateTime::from_timestamp(floored, 0).unwrap_or(t)
    }

    /// The host name a simulated cluster answers on.
    pub fn host_for(cluster_name: &str, region: &str) -> String {
        format!("{cluster_name}.{region}.sandbox.restore-desk.localhost")
    }

    fn store_failure(error: StoreError) -> StepError {
        StepError::retryable(
            "store_unavailable",
            format!("the desk's database failed: {error}"),
        )
    }

    async fn pause(
        &self,
        duration: StdDuration,
        cancel: &CancellationToken,
    ) -> Result<(), StepError> {
        // A zero pause must not wait for the timer wheel's next tick (1 ms).
        if duration.is_zero() {
            return if cancel.is_cancelled() {
                Err(StepError::Interrupted)
            } else {
                Ok(())
            };
        }
        tokio::select! {
            _ = tokio::time::sleep(duration) => Ok(()),
            _ = cancel.cancelled() => Err(StepError::Interrupted),
        }
    }

    /// One simulated step: an armed fault first, then the step's time in ten
    /// ticks. With `watch`, the zone the step reads from must stay online.
    async fn simulate(
        &self,
        step: JobState,
        detail: &str,
        watch: Option<(&str, Zone)>,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<(), StepError> {
        // Whether time passes in this step; if none does, the zone the step
        // reads from is as online as when the step was planned.
        let mut waits = !self.step.is_zero();
        if let Some(fault) = self
            .tables
            .take_fault(step.as_str())
            .await
            .map_err(Self::store_failure)?
        {
            match fault.kind {
                FaultKind::FailStep if fault.permanent => {
                    return Err(StepError::fatal(
                        "injected_failure",
                        format!("{} failed for good (injected fault)", step.label()),
                    ));
                }
                FaultKind::FailStep => {
                    return Err(StepError::retryable(
                        "injected_failure",
                        format!("{} failed (injected fault)", step.label()),
                    ));
                }
                FaultKind::SlowStep => {
                    progress.report(0.0, "waiting for a slow host");
                    let delay = StdDuration::from_millis(fault.delay_ms.max(0) as u64);
                    self.pause(delay, cancel).await?;
                    waits = true;
                }
            }
        }
        // Ten ticks of progress; a zero-length step (tests, benchmarks) is one.
        let ticks: u32 = if self.step.is_zero() { 1 } else { 10 };
        for tick in 1..=ticks {
            self.pause(self.step / ticks, cancel).await?;
            if let Some((region, zone)) = watch.filter(|_| waits) {
                let online = self
                    .store
                    .online_zones(region)
                    .await
                    .map_err(Self::store_failure)?;
                if !online.contains(zone) {
                    return Err(StepError::retryable(
                        "zone_offline",
                        format!("zone {zone} went offline while restoring from it"),
                    ));
                }
            }
            progress.report(f64::from(tick) / f64::from(ticks), detail);
        }
        Ok(())
    }

    async fn backup_cluster(
        &self,
        cluster: &Cluster,
        now: DateTime<Utc>,
        round: &mut BackupRound,
    ) -> Result<(), StoreError> {
        let snapshots = self.tables.snapshots(cluster.id).await?;
        if let Some(deleted) = cluster.deleted_at {
            // A deleted cluster's backups go once its grace period is over.
            if now > deleted + self.policy.deleted_grace && !snapshots.is_empty() {
                round.snapshots_expired += self
                    .tables
                    .expire(cluster.id, now + Duration::days(36500))
                    .await? as usize;
            }
            return Ok(());
        }
        let newest = snapshots.iter().map(|s| s.finished_at).max();
        if newest.is_none_or(|n| now - n >= BACKUP_INTERVAL) {
            let zones = self.store.online_zones(&cluster.region).await?;
            if !zones.is_empty() {
                self.tables
                    .add_snapshot(&SandboxSnapshot {
                        id: format!(
                            "auto-{}-{}",
                            cluster.id.uuid().simple(),
                            now.format("%Y%m%dT%H%M%S")
                        ),
                        cluster_id: cluster.id,
                        started_at: (now - Duration::minutes(10)).max(cluster.created_at),
                        finished_at: now,
                        zones,
                    })
                    .await?;
                round.snapshots_taken += 1;
            }
        }
        // Time-based retention keeps the newest snapshot older than the
        // cutoff: without it the oldest part of the window could not be restored.
        let cutoff = now - self.policy.retention;
        if let Some(keep) = snapshots
            .iter()
            .map(|s| s.finished_at)
            .filter(|f| *f <= cutoff)
            .max()
        {
            round.snapshots_expired += self.tables.expire(cluster.id, keep).await? as usize;
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for SandboxBackend {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn catalog(&self, cluster: &Cluster) -> Result<Catalog, FleetError> {
        let now = self.clock.now();
        let fail = FleetError::Store;
        let snapshots = self
            .tables
            .snapshots(cluster.id)
            .await
            .map_err(fail)?
            .into_iter()
            .filter(|s| s.finished_at <= now)
            .map(|s| Snapshot {
                id: s.id,
                started_at: s.started_at,
                finished_at: s.finished_at,
                zones: s.zones,
            })
            .collect();
        let archived_until = now - ARCHIVE_LAG;
        let log = self
            .tables
            .log_spans(cluster.id)
            .await
            .map_err(fail)?
            .into_iter()
            .filter_map(|s| {
                let mut to = s.ended_at.unwrap_or(archived_until).min(archived_until);
                if let Some(deleted) = cluster.deleted_at {
                    to = to.min(deleted);
                }
                (s.started_at <= to).then_some(LogSpan {
                    from: s.started_at,
                    to,
                    zones: s.zones,
                })
            })
            .collect();
        Ok(Catalog { snapshots, log })
    }

    async fn online_zones(&self, cluster: &Cluster) -> Result<ZoneSet, FleetError> {
        self.store
            .online_zones(&cluster.region)
            .await
            .map_err(FleetError::Store)
    }

    async fn provision(
        &self,
        job: &JobContext,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<Connection, StepError> {
        self.simulate(
            JobState::Provisioning,
            "allocating compute and storage",
            None,
            progress,
            cancel,
        )
        .await?;
        Ok(Connection {
            host: Self::host_for(&job.new_cluster_name, &job.source.region),
            port: job.source.connection.port,
            database: job.source.connection.database.clone(),
            user: job.source.connection.user.clone(),
        })
    }

    async fn restore_snapshot(
        &self,
        job: &JobContext,
        plan: &RestorePlan,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<(), StepError> {
        let detail = format!("copying snapshot {} from {}", plan.snapshot_id, plan.zone);
        self.simulate(
            JobState::RestoringSnapshot,
            &detail,
            Some((job.source.region.as_str(), plan.zone)),
            progress,
            cancel,
        )
        .await?;
        // A copy gone bad fails its checksum once it is read, as pgBackRest's
        // would: trying again reads the same bad copy.
        let damaged = self
            .tables
            .damaged_copies(&plan.snapshot_id)
            .await
            .map_err(Self::store_failure)?;
        if damaged.contains(plan.zone) {
            return Err(StepError::fatal(
                "backup_damaged",
                format!(
                    "snapshot {} in {} is damaged: a file of it failed its check while it was \
                     restored (simulated)",
                    plan.snapshot_id, plan.zone
                ),
            ));
        }
        Ok(())
    }

    async fn restore_work(
        &self,
        cluster: &Cluster,
        plan: &RestorePlan,
        target: DateTime<Utc>,
    ) -> Result<crate::domain::eta::Work, FleetError> {
        let replayed = (target - plan.snapshot_finished_at).num_seconds().max(0);
        Ok(crate::domain::eta::Work {
            backup_bytes: cluster
                .config
                .storage_gib
                .max(1)
                .saturating_mul(BACKUP_BYTES_PER_STORAGE_GIB),
            wal_bytes: replayed.saturating_mul(LOG_BYTES_PER_SECOND),
        })
    }

    async fn free_space(&self) -> Result<i64, FleetError> {
        Ok(self.disk_bytes)
    }

    async fn examine(
        &self,
        job: &JobContext,
        cancel: &CancellationToken,
    ) -> Result<Vec<crate::domain::verification::Check>, StepError> {
        self.pause(self.step / 4, cancel).await?;
        let mut checks = vec![crate::domain::verification::Check {
            name: "amcheck".into(),
            passed: true,
            detail: "every table and B-tree index checked: no corruption (simulated)".into(),
        }];
        if let Some(canary) = &job.canary {
            checks.push(crate::domain::verification::Check {
                name: "canary".into(),
                passed: true,
                detail: format!("{} is true (simulated)", canary.as_str()),
            });
        }
        Ok(checks)
    }

    async fn replay_log(
        &self,
        job: &JobContext,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, StepError> {
        let reached = Self::last_commit_before(job.target);
        let from = job
            .plan
            .as_ref()
            .map_or(reached, |p| p.snapshot_finished_at);
        let replay = super::ReplayProgress {
            inner: progress,
            from: from.min(reached),
            to: reached,
        };
        self.simulate(
            JobState::ReplayingLog,
            "replaying archived log",
            None,
            &replay,
            cancel,
        )
        .await?;
        Ok(Some(reached))
    }

    async fn inspect(
        &self,
        job: &JobContext,
        cancel: &CancellationToken,
    ) -> Result<ObservedCluster, StepError> {
        self.simulate(
            JobState::Verifying,
            "checking the new cluster",
            None,
            &super::NoProgress,
            cancel,
        )
        .await?;
        Ok(ObservedCluster {
            accepting_connections: true,
            // A copy kept for the customer to inspect stands paused in
            // recovery until it is accepted.
            in_recovery: job.inspect,
            last_replayed_commit: Some(Self::last_commit_before(job.target)),
            config: job.source.config.clone(),
        })
    }

    async fn finalize(
        &self,
        job: &JobContext,
        cancel: &CancellationToken,
    ) -> Result<Connection, StepError> {
        self.simulate(
            JobState::Finalizing,
            "opening the cluster for connections",
            None,
            &super::NoProgress,
            cancel,
        )
        .await?;
        // The new cluster is backed up like any other from now on.
        let now = self.clock.now();
        let spans = self
            .tables
            .log_spans(job.new_cluster_id)
            .await
            .map_err(Self::store_failure)?;
        if spans.is_empty() {
            self.tables
                .add_log_span(&SandboxLogSpan {
                    cluster_id: job.new_cluster_id,
                    started_at: now,
                    ended_at: None,
                    zones: ZoneSet::ALL,
                })
                .await
                .map_err(Self::store_failure)?;
        }
        Ok(Connection {
            host: Self::host_for(&job.new_cluster_name, &job.source.region),
            port: job.source.connection.port,
            database: job.source.connection.database.clone(),
            user: job.source.connection.user.clone(),
        })
    }

    async fn teardown(&self, _job: &JobContext) -> Result<(), StepError> {
        // A simulated cluster is only its record, which the engine removes
        // in the same transaction as the state change (its catalog rows go
        // with it).
        Ok(())
    }

    fn step_bound(&self, _step: JobState) -> StdDuration {
        // Three step lengths, and never less than ten seconds of slack.
        self.step * 3 + StdDuration::from_secs(10)
    }

    async fn transactions(
        &self,
        cluster: &Cluster,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<LogRead, FleetError> {
        if self.online_zones(cluster).await?.is_empty() {
            return Ok(LogRead::offline(to));
        }
        // Only what is archived: from the cluster's birth to a minute ago,
        // or to its deletion.
        let mut until = self.clock.now() - ARCHIVE_LAG;
        if let Some(deleted) = cluster.deleted_at {
            until = until.min(deleted);
        }
        let (from, to) = (from.max(cluster.created_at), to.min(until));
        if from > to {
            return Ok(LogRead {
                transactions: Vec::new(),
                through: to,
                ends: true,
                offline: false,
            });
        }
        let placed = self
            .tables
            .transactions(cluster.id)
            .await
            .map_err(FleetError::Store)?;
        Ok(LogRead {
            transactions: sandbox_log::log_between(cluster.id, &cluster.name, &placed, from, to),
            through: to,
            ends: to == until,
            offline: false,
        })
    }

    async fn transaction(
        &self,
        cluster: &Cluster,
        xid: u64,
    ) -> Result<Option<LoggedTransaction>, FleetError> {
        let Some(tick) = sandbox_log::tick_of(xid) else {
            return Ok(None);
        };
        // An id past any simulated commit names none (and must not overflow).
        let Some(at) = tick
            .checked_mul(COMMIT_INTERVAL_SECS)
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
        else {
            return Ok(None);
        };
        let read = self.transactions(cluster, at, at).await?;
        Ok(read.transactions.into_iter().find(|t| t.xid == xid))
    }

    async fn relation_names(
        &self,
        cluster: &Cluster,
    ) -> Result<Vec<(RelationFile, RelationName)>, FleetError> {
        if cluster.deleted_at.is_some() {
            return Ok(Vec::new());
        }
        let placed = self
            .tables
            .transactions(cluster.id)
            .await
            .map_err(FleetError::Store)?;
        let gone = sandbox_log::dropped_by(&placed, self.clock.now());
        Ok(sandbox_log::relations(&cluster.name)
            .into_iter()
            .filter(|(file, _)| !gone.contains(file))
            .collect())
    }

    async fn run_backups(&self, now: DateTime<Utc>) -> Result<BackupRound, FleetError> {
        let clusters = self
            .store
            .clusters(Scope::Everything, true)
            .await
            .map_err(|e| FleetError::Unreachable(e.to_string()))?;
        let mut round = BackupRound::default();
        for cluster in clusters.iter().filter(|c| c.status == ClusterStatus::Ready) {
            self.backup_cluster(cluster, now, &mut round)
                .await
                .map_err(|e| {
                    FleetError::Unreachable(format!("backing up {}: {e}", cluster.name))
                })?;
        }
        Ok(round)
    }
}
