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
use crate::desk::commands::{Checked, Issuer, Outcome, Situation, job_change, job_facts, plan};
use crate::domain::actor::Actor;
use crate::domain::catalog::RestorePlan;
use crate::domain::cluster::{Cluster, ClusterStatus, Connection, RestoredFrom};
use crate::domain::event::EventAction;
use crate::domain::restore_job::{self, JobCommand, JobState};
use crate::domain::validation::{ValidationCode, check_target};
use crate::domain::verification::verify;
use crate::store::{
    ClusterWrite, Commit, Fence, JobGuard, JobOutputs, JobWrite, NewEvent, ProgressUpdate,
    RestoreJob, Scope, StoreError, Ticket, Unique,
};

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
        let Some(job) = self.app.store.claim_job(&self.id, now, lease).await? else {
            return Ok(false);
        };
        let span =
            tracing::info_span!("job", job = %job.id, ticket = %job.ticket_id, worker = %self.id);
        self.drive(job, shutdown).instrument(span).await?;
        Ok(true)
    }

    async fn drive(
        &self,
        mut job: RestoreJob,
        shutdown: &CancellationToken,
    ) -> Result<(), EngineError> {
        let token = job.lease_token;
        // What a step reads of the ticket and the source does not change
        // while the job runs: read it once.
        let (ticket, source) = self.load(&job).await?;
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
            let current = match self.step(&job, &ticket, &source, shutdown).await? {
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
        ticket: &Ticket,
        source: &Cluster,
        shutdown: &CancellationToken,
    ) -> Result<Next, EngineError> {
        if job.state == JobState::Queued {
            return self
                .commit(job, source, JobCommand::Start, StepDone::empty())
                .await;
        }
        let context = JobContext {
            job_id: job.id,
            run: job.run,
            ticket_id: job.ticket_id,
            source: source.clone(),
            target: job.target_time,
            transaction: ticket.transaction,
            new_cluster_id: job.new_cluster_id,
            new_cluster_name: ticket.new_cluster_name.clone(),
            plan: job.plan(),
        };
        let cancel = CancellationToken::new();
        let stop = CancellationToken::new();
        let progress = ProgressCell::default();
        let work = async {
            let end = self
                .execute(job, &context, ticket, &progress, &cancel)
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
                self.commit(job, source, command, done).await
            }
            (StepEnd::Failed(error, outputs), _) => {
                let failure = error.failure().expect("interruptions are handled above");
                tracing::warn!(code = %failure.code, retryable = failure.retryable, "step failed: {}", failure.message);
                let done = StepDone {
                    outputs,
                    cluster: None,
                    connection: None,
                };
                self.commit(job, source, JobCommand::StepFailed(failure), done)
                    .await
            }
        }
    }

    async fn load(&self, job: &RestoreJob) -> Result<(Ticket, Cluster), EngineError> {
        let store = &self.app.store;
        let ticket = store
            .ticket(job.ticket_id, Scope::Everything)
            .await?
            .ok_or_else(|| EngineError::Inconsistent(format!("job {} has no ticket", job.id)))?;
        let source = store
            .cluster(job.source_cluster_id, Scope::Everything)
            .await?
            .ok_or_else(|| {
                EngineError::Inconsistent(format!("job {} has no source cluster", job.id))
            })?;
        Ok((ticket, source))
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
        ticket: &Ticket,
        progress: &ProgressCell,
        cancel: &CancellationToken,
    ) -> StepEnd {
        let backend = &self.app.backend;
        let source = &context.source;
        let result: Result<StepDone, StepError> = match job.state {
            JobState::Provisioning => {
                backend
                    .provision(context, progress, cancel)
                    .await
                    .map(|connection| StepDone {
                        outputs: JobOutputs::default(),
                        cluster: Some(ClusterWrite::Insert(Box::new(Cluster {
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
                        }))),
                        connection: None,
                    })
            }
            JobState::RestoringSnapshot => match self.plan_restore(job, source).await {
                Ok(plan) => backend
                    .restore_snapshot(context, &plan, progress, cancel)
                    .await
                    .map(|()| StepDone {
                        outputs: JobOutputs {
                            snapshot: Some(plan),
                            step_detail: Some(String::new()),
                            ..JobOutputs::default()
                        },
                        cluster: None,
                        connection: None,
                    }),
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
                    let report = verify(
                        job.target_time,
                        ticket.transaction,
                        &source.config,
                        &observed,
                        self.app.now(),
                    );
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
                        }),
                        connection: Some(connection),
                    })
            }
            JobState::Failing | JobState::Cancelling => {
                backend.teardown(context).await.map(|()| StepDone {
                    outputs: JobOutputs::default(),
                    cluster: Some(ClusterWrite::Remove(job.new_cluster_id)),
                    connection: None,
                })
            }
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
        let view = FleetView::read(&*self.app.backend, source)
            .await
            .map_err(unavailable)?;
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
        source: &Cluster,
        command: JobCommand,
        done: StepDone,
    ) -> Result<Next, EngineError> {
        let app = &self.app;
        let now = app.now();
        let transition =
            restore_job::transition(job.state, &command, &Actor::SYSTEM, &job_facts(app, job))
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
            _ => String::new(),
        };
        commit.events.push(NewEvent {
            ticket_id: Some(job.ticket_id),
            job_id: Some(job.id),
            actor: Actor::SYSTEM,
            action: EventAction::of_job(&command),
            from_state: Some(job.state.as_str().into()),
            to_state: Some(transition.to.as_str().into()),
            detail,
            at: now,
        });
        if !follow_ups.is_empty() {
            // The ticket as it is now: the follow-up decides on its state.
            let ticket = app
                .store
                .ticket(job.ticket_id, Scope::Everything)
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
            let outcome = Outcome {
                eta,
                connection: done.connection.as_ref(),
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
                    cause: format!("job:{}:run{}:{}", job.id, job.run, follow_up.name()),
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
        // A step done and the next one begun: `job.progress` for the
        // endpoints that asked (the last step's end is `job.succeeded`).
        if command == JobCommand::StepSucceeded && transition.to.is_build_step() {
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
                    source,
                    JobCommand::StepFailed(failure.failure().expect("fatal")),
                    StepDone::empty(),
                ))
                .await
            }
            Err(other) => Err(other.into()),
        }
    }
}
