//! A worker: claims a job with a lease, runs its current step against the
//! backend while heartbeating, and commits the step's outcome — fenced by
//! the lease token — together with the ticket's follow-up and its emails.
//!
//! Steps may run more than once (a crash, a lost lease); a step's outcome is
//! committed at most once.

use std::sync::Mutex;
use std::time::Duration as StdDuration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::EngineError;
use crate::app::App;
use crate::backend::{FleetView, JobContext, Progress, StepError};
use crate::desk::DeskError;
use crate::desk::commands::{
    Checked, Issuer, Outcome, Situation, job_change, job_facts, plan, system_job_commit,
};
use crate::domain::actor::Actor;
use crate::domain::catalog::RestorePlan;
use crate::domain::catalog::ZoneSet;
use crate::domain::cluster::{Cluster, ClusterStatus, Connection, RestoredFrom};
use crate::domain::event::EventAction;
use crate::domain::restore_job::{self, JobCommand, JobEffect, JobState, StepFailure};
use crate::domain::ticket::TicketCommand;
use crate::domain::validation::{ValidationCode, check_target};
use crate::domain::verification::{Check, verify};
use crate::store::{
    ClusterWrite, Commit, Fence, JobGuard, JobOutputs, JobWrite, NewEvent, ProgressUpdate,
    RestoreJob, Scope, StoreError, Ticket, Unique,
};

/// The code of a restore from a backup copy that is damaged.
const DAMAGED: &str = "backup_damaged";

/// The latest progress a running step reported, for the next heartbeat.
#[derive(Default)]
struct ProgressCell(Mutex<Latest>);

#[derive(Default)]
struct Latest {
    report: Option<(f64, String)>,
    replayed: Option<chrono::DateTime<chrono::Utc>>,
}

impl Progress for ProgressCell {
    fn report(&self, fraction: f64, detail: &str) {
        if let Ok(mut latest) = self.0.lock() {
            latest.report = Some((fraction, detail.to_string()));
        }
    }

    fn replayed(&self, to: chrono::DateTime<chrono::Utc>) {
        if let Ok(mut latest) = self.0.lock() {
            latest.replayed = Some(to);
        }
    }
}

impl ProgressCell {
    /// What was reported since the last heartbeat, with the replay point
    /// reached (kept: it only moves forward).
    fn take(&self) -> Option<(f64, String, Option<chrono::DateTime<chrono::Utc>>)> {
        let mut latest = self.0.lock().ok()?;
        let replayed = latest.replayed;
        latest
            .report
            .take()
            .map(|(fraction, detail)| (fraction, detail, replayed))
    }
}

/// Why a running step was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interruption {
    /// Another worker holds the job now: write nothing more.
    LeaseLost,
    /// Staff cancelled the job: compensate next.
    Cancelled,
    /// This process is stopping.
    Shutdown,
}

/// A step's result, ready to commit.
struct StepDone {
    outputs: JobOutputs,
    cluster: Option<ClusterWrite>,
    connection: Option<Connection>,
}

impl StepDone {
    fn empty() -> StepDone {
        StepDone {
            outputs: JobOutputs::default(),
            cluster: None,
            connection: None,
        }
    }
}

enum StepEnd {
    Done(StepDone),
    Failed(StepError, JobOutputs),
}

/// What a job's steps read of the desk, once per claim: it does not change
/// while the job runs.
struct Loaded {
    /// A customer's restore's ticket; a drill has none.
    ticket: Option<Ticket>,
    source: Cluster,
    /// A drill's canary query.
    canary: Option<crate::domain::drill::CanaryQuery>,
}

impl Loaded {
    /// Whether the copy stops paused for the customer to inspect.
    fn inspect(&self) -> bool {
        self.ticket.as_ref().is_some_and(|t| t.inspect)
    }

    /// The name the new cluster goes by: the customer's choice, or a
    /// drill's own, which no cluster record ever takes.
    fn new_cluster_name(&self, job: &RestoreJob) -> String {
        match &self.ticket {
            Some(ticket) => ticket.new_cluster_name.clone(),
            None => format!("drill-{}", &job.id.uuid().simple().to_string()[..8]),
        }
    }
}

/// What happened to the job after one step.
enum Next {
    /// Keep going with the job as this worker's commit left it.
    Committed(Box<RestoreJob>),
    /// Keep going, after reading the job again.
    Continue,
    /// Stop driving this job (terminal, waiting for a retry, lost, or shutdown).
    Stop,
}

pub struct Worker {
    app: App,
    id: String,
}

impl Worker {
    pub fn new(app: App, id: String) -> Worker {
        Worker { app, id }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Claims one due job and drives it as far as it can go now. False when
    /// there was nothing to claim.
    pub async fn run_next(&self, shutdown: &CancellationToken) -> Result<bool, EngineError> {
        let now = self.app.now();
        let lease = self.app.settings.lease();
        let mut place = self.app.settings.placement();
        place.free_bytes = self.app.backend.free_space().await.ok();
        let mut claimed = self
            .app
            .store
            .claim_job(&self.id, &place, now, lease)
            .await?;
        // A customer's restore waits for a host full of work: a drill there
        // gives way, and the restore takes its place at once.
        if claimed.is_none() && self.preempt_a_drill(&place).await? {
            claimed = self
                .app
                .store
                .claim_job(&self.id, &place, self.app.now(), lease)
                .await?;
        }
        let Some(job) = claimed else {
            return Ok(false);
        };
        let span = tracing::info_span!(
            "job", job = %job.id, kind = %job.kind,
            ticket = job.ticket_id.map(|t| t.to_string()).unwrap_or_default(),
            host = %place.host, worker = %self.id
        );
        self.drive(job, shutdown).instrument(span).await?;
        Ok(true)
    }

    /// Tells a drill on this host to give way to a customer's restore that
    /// is waiting for room. True when one did.
    async fn preempt_a_drill(&self, place: &crate::store::Placement) -> Result<bool, EngineError> {
        let app = &self.app;
        let Some(drill) = app.store.drill_to_preempt(place, app.now()).await? else {
            return Ok(false);
        };
        let detail = format!("a customer's restore needs {}", place.host);
        let Some(commit) = system_job_commit(app, &drill, &JobCommand::Preempt, detail) else {
            return Ok(false);
        };
        match app.commit(commit).await {
            Ok(_) => {
                metrics::counter!("restore_desk_drills_preempted_total").increment(1);
                tracing::info!(drill = %drill.id, host = %place.host, "a drill gave way to a customer's restore");
                Ok(true)
            }
            // It moved on by itself meanwhile: look again next round.
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    async fn drive(
        &self,
        mut job: RestoreJob,
        shutdown: &CancellationToken,
    ) -> Result<(), EngineError> {
        let token = job.lease_token;
        // What a step reads of the ticket and the source does not change
        // while the job runs: read it once.
        let loaded = self.load(&job).await?;
        loop {
            if job.state.is_terminal() || job.run_after > self.app.now() {
                return Ok(());
            }
            if shutdown.is_cancelled() {
                self.app
                    .store
                    .release_lease(&job.fence(self.app.now()))
                    .await?;
                return Ok(());
            }
            let current = match self.step(&job, &loaded, shutdown).await? {
                Next::Stop => return Ok(()),
                // The commit handed back the job as it left it.
                Next::Committed(job) => Some(*job),
                Next::Continue => self.app.store.job(job.id).await?,
            };
            match current {
                Some(reloaded)
                    if reloaded.lease_token == token
                        && reloaded.lease_owner.as_deref() == Some(self.id.as_str()) =>
                {
                    job = reloaded;
                }
                _ => return Ok(()),
            }
        }
    }

    /// Runs the job's current step and commits its outcome.
    #[tracing::instrument(skip_all, fields(state = %job.state, attempt = job.attempt))]
    async fn step(
        &self,
        job: &RestoreJob,
        loaded: &Loaded,
        shutdown: &CancellationToken,
    ) -> Result<Next, EngineError> {
        let source = &loaded.source;
        if job.state == JobState::Queued {
            // Nothing starts that this host cannot finish. The checks read
            // every zone, a dead one for its full bound: the lease is kept
            // meanwhile, or another worker would take the job mid-check.
            let (cancel, stop) = (CancellationToken::new(), CancellationToken::new());
            let checks = async {
                let checked = self.before_start(job, source).await;
                stop.cancel();
                checked
            };
            let idle = ProgressCell::default();
            let beat = self.heartbeat(job, &idle, &cancel, &stop, shutdown);
            let (checked, interruption) = tokio::join!(checks, beat);
            match interruption {
                None => {}
                Some(Interruption::Shutdown) => {
                    self.app
                        .store
                        .release_lease(&job.fence(self.app.now()))
                        .await?;
                    return Ok(Next::Stop);
                }
                Some(Interruption::LeaseLost) => return Ok(Next::Stop),
                Some(Interruption::Cancelled) => return Ok(Next::Continue),
            }
            let (command, work) = match checked {
                Ok(work) => (JobCommand::Start, work),
                Err((failure, work)) => {
                    tracing::info!(code = %failure.code, "waiting for room: {}", failure.message);
                    // What it needs stays with the job: a host with less
                    // room free leaves it for another.
                    (JobCommand::Wait(failure), work)
                }
            };
            let done = StepDone {
                outputs: JobOutputs {
                    work,
                    ..JobOutputs::default()
                },
                ..StepDone::empty()
            };
            return self.commit(job, loaded, command, done).await;
        }
        let context = JobContext {
            job_id: job.id,
            run: job.run,
            kind: job.kind,
            ticket_id: job.ticket_id,
            source: source.clone(),
            target: job.target_time,
            transaction: loaded.ticket.as_ref().and_then(|t| t.transaction),
            new_cluster_id: job.new_cluster_id,
            new_cluster_name: loaded.new_cluster_name(job),
            plan: job.plan(),
            canary: loaded.canary.clone(),
            inspect: loaded.inspect(),
        };
        let cancel = CancellationToken::new();
        let stop = CancellationToken::new();
        let progress = ProgressCell::default();
        let work = async {
            let end = self
                .execute(job, &context, loaded, &progress, &cancel)
                .await;
            stop.cancel();
            end
        };
        let beat = self.heartbeat(job, &progress, &cancel, &stop, shutdown);
        let started = std::time::Instant::now();
        let (end, interruption) = tokio::join!(work, beat);
        let outcome = match &end {
            StepEnd::Done(_) => "done",
            StepEnd::Failed(StepError::Interrupted, _) => "interrupted",
            StepEnd::Failed(_, _) => "failed",
        };
        metrics::histogram!("restore_desk_step_seconds", "step" => job.state.as_str(), "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());

        match (end, interruption) {
            (_, Some(Interruption::LeaseLost)) => {
                tracing::warn!("lease lost: another worker owns the job now");
                Ok(Next::Stop)
            }
            (StepEnd::Failed(StepError::Interrupted, _), Some(Interruption::Shutdown)) => {
                self.app
                    .store
                    .release_lease(&job.fence(self.app.now()))
                    .await?;
                Ok(Next::Stop)
            }
            (StepEnd::Failed(StepError::Interrupted, _), _) => Ok(Next::Continue),
            (StepEnd::Done(done), _) => {
                let command = if job.state.is_compensating() {
                    JobCommand::CompensationDone
                } else {
                    JobCommand::StepSucceeded
                };
                self.commit(job, loaded, command, done).await
            }
            (StepEnd::Failed(error, outputs), _) => {
                let failure = error.failure().expect("interruptions are handled above");
                tracing::warn!(code = %failure.code, retryable = failure.retryable, "step failed: {}", failure.message);
                let done = StepDone {
                    outputs,
                    cluster: None,
                    connection: None,
                };
                self.commit(job, loaded, JobCommand::StepFailed(failure), done)
                    .await
            }
        }
    }

    async fn load(&self, job: &RestoreJob) -> Result<Loaded, EngineError> {
        let store = &self.app.store;
        let ticket = match job.ticket_id {
            Some(id) => Some(store.ticket(id, Scope::Everything).await?.ok_or_else(|| {
                EngineError::Inconsistent(format!("job {} has no ticket", job.id))
            })?),
            None => None,
        };
        let source = store
            .cluster(job.source_cluster_id, Scope::Everything)
            .await?
            .ok_or_else(|| {
                EngineError::Inconsistent(format!("job {} has no source cluster", job.id))
            })?;
        let canary = if job.is_drill() {
            store.drill_settings(source.id).await?.canary
        } else {
            None
        };
        Ok(Loaded {
            ticket,
            source,
            canary,
        })
    }

    /// Before anything is built: the run must be able to finish before its
    /// target leaves the window, or the backup it needs expires under it.
    async fn in_time(&self, job: &RestoreJob) -> Result<(), StepError> {
        let Some(eta) = crate::desk::eta::of_job(&self.app, job)
            .await
            .ok()
            .flatten()
        else {
            return Ok(());
        };
        let closes = job.target_time + self.app.policy().retention;
        crate::domain::capacity::time_check(self.app.now(), eta.estimate.duration, closes).map_err(
            |message| StepError::fatal(crate::domain::capacity::TARGET_LEAVES_WINDOW, message),
        )
    }

    /// The checks before a job starts, shared by restores and drills: the
    /// host must have room on its disk for the backup, the log to replay
    /// and a margin. Returns what the run will copy and replay, when known;
    /// a refusal says why the job waits.
    async fn before_start(
        &self,
        job: &RestoreJob,
        source: &Cluster,
    ) -> Result<Option<crate::domain::eta::Work>, (StepFailure, Option<crate::domain::eta::Work>)>
    {
        let backend = &*self.app.backend;
        // Without a plan (the catalog unreadable, the target out of reach)
        // there is nothing to measure: the restore step itself says why.
        let Ok(plan) = self.plan_restore(job, source).await else {
            return Ok(None);
        };
        let work = match backend.restore_work(source, &plan, job.target_time).await {
            Ok(work) => work,
            Err(error) => {
                tracing::warn!(%error, "the restore's size is unknown; starting without the disk check");
                return Ok(None);
            }
        };
        let free = match backend.free_space().await {
            Ok(free) => free,
            Err(error) => {
                tracing::warn!(%error, "the host's free space is unknown; starting without the disk check");
                return Ok(Some(work));
            }
        };
        let needed = crate::domain::capacity::space_needed(work);
        if needed > free {
            let host = &self.app.settings.restore_host;
            return Err((
                StepFailure {
                    code: crate::domain::capacity::INSUFFICIENT_DISK.into(),
                    message: crate::domain::capacity::disk_refusal(host, needed, free, work),
                    retryable: true,
                },
                Some(work),
            ));
        }
        Ok(Some(work))
    }

    /// Renews the lease while the step runs, passing on its progress, and
    /// interrupts the step if the lease is lost, the job was cancelled, or
    /// the process stops (after a grace period for the step to finish).
    async fn heartbeat(
        &self,
        job: &RestoreJob,
        progress: &ProgressCell,
        cancel: &CancellationToken,
        stop: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> Option<Interruption> {
        let lease = self.app.settings.lease();
        let every = (lease / 3)
            .to_std()
            .unwrap_or(StdDuration::from_secs(1))
            .min(StdDuration::from_millis(500));
        let grace = StdDuration::from_secs(self.app.settings.shutdown_grace_seconds);
        let mut shutdown_at: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.cancelled(), if shutdown_at.is_none() => {
                    shutdown_at = Some(tokio::time::Instant::now() + grace);
                }
            }
            if shutdown_at.is_some_and(|at| tokio::time::Instant::now() >= at) {
                cancel.cancel();
                return Some(Interruption::Shutdown);
            }
            let now = self.app.now();
            let update = progress
                .take()
                .map(|(fraction, detail, replayed_to)| ProgressUpdate {
                    progress: i64::from(job.state.overall_progress(fraction)),
                    detail,
                    at: now,
                    replayed_to,
                });
            match self
                .app
                .store
                .renew_lease(&job.fence(now), lease, update.as_ref())
                .await
            {
                Ok(Some(state)) if state == job.state => {}
                Ok(Some(_)) => {
                    cancel.cancel();
                    return Some(Interruption::Cancelled);
                }
                Ok(None) => {
                    cancel.cancel();
                    return Some(Interruption::LeaseLost);
                }
                // A failed heartbeat is retried at the next beat; if the
                // lease runs out meanwhile, the commit will be refused.
                Err(error) => tracing::warn!(%error, "heartbeat failed"),
            }
        }
    }

    /// The work of one step against the backend.
    async fn execute(
        &self,
        job: &RestoreJob,
        context: &JobContext,
        loaded: &Loaded,
        progress: &ProgressCell,
        cancel: &CancellationToken,
    ) -> StepEnd {
        let backend = &self.app.backend;
        let source = &context.source;
        let result: Result<StepDone, StepError> = match job.state {
            JobState::Provisioning => match self.in_time(job).await {
                Err(error) => Err(error),
                Ok(()) => backend
                    .provision(context, progress, cancel)
                    .await
                    .map(|connection| StepDone {
                        outputs: JobOutputs::default(),
                        // A drill's copy is no cluster of the customer's: it
                        // gets no record, and leaves none behind.
                        cluster: loaded.ticket.as_ref().map(|ticket| {
                            ClusterWrite::Insert(Box::new(Cluster {
                                id: job.new_cluster_id,
                                subscription_id: source.subscription_id,
                                resource_group: source.resource_group.clone(),
                                region: source.region.clone(),
                                name: ticket.new_cluster_name.clone(),
                                config: source.config.clone(),
                                connection,
                                status: ClusterStatus::Building,
                                created_at: self.app.now(),
                                deleted_at: None,
                                restored_from: Some(RestoredFrom {
                                    ticket_id: ticket.id,
                                    point_in_time: job.target_time,
                                }),
                                location: backend.location_of(context),
                            }))
                        }),
                        connection: None,
                    }),
            },
            JobState::RestoringSnapshot => match self.plan_restore(job, source).await {
                Ok(plan) => match backend
                    .restore_snapshot(context, &plan, progress, cancel)
                    .await
                {
                    Ok(()) => Ok(StepDone {
                        outputs: JobOutputs {
                            snapshot: Some(plan),
                            step_detail: Some(String::new()),
                            ..JobOutputs::default()
                        },
                        cluster: None,
                        connection: None,
                    }),
                    // A customer's restore tries another zone's copy (the
                    // plan it failed with is kept, to be left out); a drill
                    // reports the damage, which is what it is for.
                    Err(StepError::Fatal { code, message })
                        if code == DAMAGED && !job.is_drill() =>
                    {
                        return StepEnd::Failed(
                            StepError::retryable(&code, message),
                            JobOutputs {
                                snapshot: Some(plan),
                                ..JobOutputs::default()
                            },
                        );
                    }
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            },
            JobState::ReplayingLog => {
                backend
                    .replay_log(context, progress, cancel)
                    .await
                    .map(|last_commit| StepDone {
                        outputs: JobOutputs {
                            reached_point: last_commit,
                            ..JobOutputs::default()
                        },
                        cluster: None,
                        connection: None,
                    })
            }
            JobState::Verifying => match backend.inspect(context, cancel).await {
                Ok(observed) => {
                    let mut report = verify(
                        job.target_time,
                        context.transaction,
                        &source.config,
                        &observed,
                        context.inspect,
                        self.app.now(),
                    );
                    // A drill looks deeper once the copy is verified.
                    if job.is_drill() && report.passed() {
                        match backend.examine(context, cancel).await {
                            Ok(checks) => report.checks.extend(checks),
                            Err(StepError::Interrupted) => {
                                return StepEnd::Failed(
                                    StepError::Interrupted,
                                    JobOutputs::default(),
                                );
                            }
                            Err(error) => report.checks.push(Check {
                                name: "examination".into(),
                                passed: false,
                                detail: error.to_string(),
                            }),
                        }
                    }
                    let outputs = JobOutputs {
                        verification_report: Some(report.clone()),
                        ..JobOutputs::default()
                    };
                    if report.passed() {
                        Ok(StepDone {
                            outputs,
                            cluster: None,
                            connection: None,
                        })
                    } else {
                        let failed: Vec<String> = report
                            .failures()
                            .iter()
                            .map(|c| format!("{}: {}", c.name, c.detail))
                            .collect();
                        return StepEnd::Failed(
                            StepError::fatal(
                                "verification_failed",
                                format!(
                                    "The new cluster failed verification ({})",
                                    failed.join("; ")
                                ),
                            ),
                            outputs,
                        );
                    }
                }
                Err(error) => Err(error),
            },
            // A drill's copy has served its purpose: it goes, like a
            // half-built cluster, and the drill passes once it is gone.
            JobState::Finalizing if job.is_drill() => {
                backend.teardown(context).await.map(|()| StepDone {
                    outputs: JobOutputs {
                        progress: Some(100),
                        ..JobOutputs::default()
                    },
                    ..StepDone::empty()
                })
            }
            JobState::Finalizing => {
                backend
                    .finalize(context, cancel)
                    .await
                    .map(|connection| StepDone {
                        outputs: JobOutputs {
                            progress: Some(100),
                            ..JobOutputs::default()
                        },
                        cluster: Some(ClusterWrite::MarkReady {
                            id: job.new_cluster_id,
                            connection: connection.clone(),
                            restored_point: job.target_time,
                        }),
                        connection: Some(connection),
                    })
            }
            JobState::Failing
            | JobState::Cancelling
            | JobState::Preempted
            | JobState::Rewinding => backend.teardown(context).await.map(|()| StepDone {
                outputs: JobOutputs::default(),
                cluster: (!job.is_drill()).then_some(ClusterWrite::Remove(job.new_cluster_id)),
                connection: None,
            }),
            other => Err(StepError::fatal(
                "not_a_step",
                format!("a job in state {other} has no step to run"),
            )),
        };
        match result {
            Ok(done) => StepEnd::Done(done),
            Err(error) => StepEnd::Failed(error, JobOutputs::default()),
        }
    }

    /// Right before restoring, the target is checked again against the
    /// catalog as it is now: the window slides every second, and zones come
    /// and go. The plan picks a zone that is online now.
    async fn plan_restore(
        &self,
        job: &RestoreJob,
        source: &Cluster,
    ) -> Result<RestorePlan, StepError> {
        let unavailable = |e: crate::backend::FleetError| {
            StepError::retryable(
                "fleet_unavailable",
                format!("the backup catalog cannot be read: {e}"),
            )
        };
        let mut view = FleetView::read(&*self.app.backend, source)
            .await
            .map_err(unavailable)?;
        // A drill tests one zone's copy: only that zone may serve it.
        if let Some(zone) = job.drill_zone {
            view.online = view.online.intersect(ZoneSet::of(&[zone]));
        }
        // The copy the last attempt found damaged is not tried again.
        if job.last_error_code.as_deref() == Some(DAMAGED)
            && let Some(zone) = job.zone
            && job.drill_zone.is_none()
        {
            view.online = view.online.without(zone);
        }
        let ctx = view.context(source, self.app.policy(), self.app.now());
        check_target(job.target_time, &ctx).map_err(|error| match error.code {
            // Zones come back: worth waiting for, up to the retry limit.
            ValidationCode::NoBackupInOnlineZone => {
                StepError::retryable(error.code.as_str(), error.message)
            }
            _ => StepError::fatal(
                error.code.as_str(),
                format!("The target can no longer be restored: {}", error.message),
            ),
        })
    }

    /// Commits a job transition with its outputs, its event and the ticket's
    /// follow-up, fenced by the lease.
    async fn commit(
        &self,
        job: &RestoreJob,
        loaded: &Loaded,
        command: JobCommand,
        done: StepDone,
    ) -> Result<Next, EngineError> {
        let app = &self.app;
        let source = &loaded.source;
        let now = app.now();
        let facts = restore_job::JobFacts {
            inspect: loaded.inspect(),
            ..job_facts(app, job)
        };
        let transition = restore_job::transition(job.state, &command, &Actor::SYSTEM, &facts)
            .map_err(|r| EngineError::Inconsistent(format!("job {}: {r}", job.id)))?;
        let fence: Fence = job.fence(now);
        let (change, follow_ups) =
            job_change(app, job, &transition, JobGuard::Lease(fence), done.outputs);
        let after = change.patch.applied_to(job);
        let mut commit = Commit::at(now);
        let is_provisioning_success = job.state == JobState::Provisioning && done.cluster.is_some();
        commit.cluster = done.cluster;
        let detail = match &command {
            JobCommand::StepFailed(failure) => format!(
                "attempt {} of {}: {}",
                job.attempt,
                app.settings.retry_policy().max_attempts,
                failure.message
            ),
            JobCommand::Wait(failure) => failure.message.clone(),
            _ => String::new(),
        };
        commit.events.push(NewEvent {
            ticket_id: job.ticket_id,
            job_id: Some(job.id),
            actor: Actor::SYSTEM,
            action: EventAction::of_job(&command),
            from_state: Some(job.state.as_str().into()),
            to_state: Some(transition.to.as_str().into()),
            detail,
            at: now,
        });
        if let (false, Some(ticket_id)) = (follow_ups.is_empty(), job.ticket_id) {
            // The ticket as it is now: the follow-up decides on its state.
            let ticket = app
                .store
                .ticket(ticket_id, Scope::Everything)
                .await?
                .ok_or_else(|| {
                    EngineError::Inconsistent(format!("job {} has no ticket", job.id))
                })?;
            // A starting restore's email says when it should be done.
            let eta = if command == JobCommand::Start {
                crate::desk::eta::of_job(app, job).await?
            } else {
                None
            };
            // A paused copy's email says where to look at it, read-only.
            let paused_at = if transition.to == JobState::Paused {
                app.store
                    .cluster(job.new_cluster_id, Scope::Everything)
                    .await?
                    .map(|c| c.connection)
            } else {
                None
            };
            let outcome = Outcome {
                eta,
                connection: done.connection.as_ref().or(paused_at.as_ref()),
                restored_point: Some(job.target_time),
                new_cluster_id: (transition.to == JobState::Succeeded)
                    .then_some(job.new_cluster_id),
            };
            for follow_up in follow_ups {
                let issuer = Issuer {
                    actor: Actor::SYSTEM,
                    name: None,
                    user: None,
                    guard_version: false,
                    // A copy pauses once per target it is moved to.
                    cause: match follow_up {
                        TicketCommand::JobPaused { .. } => format!(
                            "job:{}:run{}:{}:{}",
                            job.id,
                            job.run,
                            follow_up.name(),
                            job.target_time.timestamp_micros()
                        ),
                        _ => format!("job:{}:run{}:{}", job.id, job.run, follow_up.name()),
                    },
                };
                let situation = Situation {
                    ticket: &ticket,
                    cluster: source,
                    job: Some(job),
                };
                match plan(
                    app,
                    &situation,
                    &follow_up,
                    &issuer,
                    Checked::none(),
                    &outcome,
                    &mut commit,
                )
                .await
                {
                    Ok(_) => {}
                    // The ticket moved on by itself (e.g. cancelled): the job's
                    // own change still stands.
                    Err(DeskError::Refused(refusal)) => {
                        tracing::warn!(%refusal, follow_up = follow_up.name(), "ticket follow-up skipped")
                    }
                    Err(other) => return Err(other.into()),
                }
            }
        }
        // A drill's end: staff hear of a failure, with the check and the zone.
        for effect in &transition.effects {
            if let JobEffect::DrillEnded { passed } = effect {
                let ended = after.clone();
                if !passed {
                    commit
                        .outbox
                        .extend(crate::desk::drills::failure_notices(app, &ended, source).await?);
                }
                crate::desk::drills::record_metrics(&ended, source, *passed, now);
            }
        }
        // A step done and the next one begun: `job.progress` for the
        // endpoints that asked (the last step's end is `job.succeeded`).
        if command == JobCommand::StepSucceeded && transition.to.is_build_step() && !job.is_drill()
        {
            commit.outbox.extend(
                crate::desk::endpoints::progress_posts(app, job, source, transition.to).await?,
            );
        }
        commit.job = Some(JobWrite::Change(Box::new(change)));
        match app.commit(commit).await {
            Ok(_) => {
                metrics::counter!("restore_desk_job_transitions_total", "to" => transition.to.as_str())
                    .increment(1);
                tracing::info!(from = %job.state, to = %transition.to, "job moved");
                Ok(Next::Committed(Box::new(after)))
            }
            Err(StoreError::Conflict(_)) => {
                tracing::info!("job changed under this worker; re-reading it");
                Ok(Next::Continue)
            }
            Err(StoreError::Duplicate(Unique::ClusterName)) if is_provisioning_success => {
                let failure = StepError::fatal(
                    "cluster_name_taken",
                    "A cluster with the new cluster's name appeared meanwhile",
                );
                Box::pin(self.commit(
                    job,
                    loaded,
                    JobCommand::StepFailed(failure.failure().expect("fatal")),
                    StepDone::empty(),
                ))
                .await
            }
            Err(other) => Err(other.into()),
        }
    }
}
