//! Periodic duties, run by whichever process holds the duty lease:
//! automatic backups and expiry on the fleet, deadline warnings to staff,
//! and the watchdog that flags stalled restore steps.

use std::time::Duration as StdDuration;

use chrono::Duration;
use tokio_util::sync::CancellationToken;

use super::EngineError;
use crate::app::App;
use crate::desk::DeskError;
use crate::desk::commands::{Checked, Issuer, Outcome, Situation, plan};
use crate::domain::actor::Actor;
use crate::domain::ticket::TicketCommand;
use crate::store::{Commit, Scope, StoreError};

/// The lease the scheduled duties run under.
pub const DUTY: &str = "scheduler";

/// Emails staff about open tickets whose deadline is within the margin,
/// once per ticket. Returns how many were warned.
pub async fn warn_deadlines(app: &App) -> Result<usize, EngineError> {
    let now = app.now();
    let margin = Duration::hours(app.settings.deadline_warning_hours);
    let mut warned = 0;
    for ticket in app
        .store
        .tickets_nearing_deadline(now + margin, 100)
        .await?
    {
        let Some(cluster) = app
            .store
            .cluster(ticket.cluster_id, Scope::Everything)
            .await?
        else {
            continue;
        };
        let job = app.store.job_for_ticket(ticket.id).await?;
        let mut commit = Commit::at(now);
        let issuer = Issuer {
            actor: Actor::SYSTEM,
            name: None,
            user: None,
            guard_version: true,
            cause: format!("ticket:{}:deadline", ticket.id),
        };
        let situation = Situation {
            ticket: &ticket,
            cluster: &cluster,
            job: job.as_ref(),
        };
        match plan(
            app,
            &situation,
            &TicketCommand::WarnDeadline,
            &issuer,
            Checked::none(),
            &Outcome::default(),
            &mut commit,
        )
        .await
        {
            Ok(_) => {}
            Err(DeskError::Refused(_)) => continue,
            Err(other) => return Err(other.into()),
        }
        match app.commit(commit).await {
            Ok(_) => {
                warned += 1;
                metrics::counter!("restore_desk_deadline_warnings_total").increment(1);
                tracing::warn!(ticket = %ticket.reference(), deadline = %ticket.deadline, "deadline near: staff warned");
            }
            // Somebody acted on the ticket meanwhile: the next round decides again.
            Err(StoreError::Conflict(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Ok(warned)
}

/// Hands over, as they are, the paused copies whose customer did not decide
/// in time (`INSPECT_HOURS`). Returns how many.
pub async fn hand_over_undecided(app: &App) -> Result<usize, EngineError> {
    let now = app.now();
    let mut handed = 0;
    for ticket in app.store.undecided_tickets(now, 100).await? {
        let Some(cluster) = app
            .store
            .cluster(ticket.cluster_id, Scope::Everything)
            .await?
        else {
            continue;
        };
        let job = app.store.job_for_ticket(ticket.id).await?;
        let mut commit = Commit::at(now);
        let issuer = Issuer {
            actor: Actor::SYSTEM,
            name: None,
            user: None,
            guard_version: true,
            cause: format!("ticket:{}:v{}:decision_timeout", ticket.id, ticket.version),
        };
        let situation = Situation {
            ticket: &ticket,
            cluster: &cluster,
            job: job.as_ref(),
        };
        match plan(
            app,
            &situation,
            &TicketCommand::DecisionTimeout,
            &issuer,
            Checked::none(),
            &Outcome::default(),
            &mut commit,
        )
        .await
        {
            Ok(_) => {}
            Err(DeskError::Refused(_) | DeskError::JobRefused(_)) => continue,
            Err(other) => return Err(other.into()),
        }
        match app.commit(commit).await {
            Ok(_) => {
                handed += 1;
                tracing::info!(ticket = %ticket.reference(), "no decision in time: handing the paused copy over");
            }
            // The customer decided meanwhile.
            Err(StoreError::Conflict(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Ok(handed)
}

/// Flags jobs whose step made no progress for longer than the backend's
/// bound for it, and clears the flag when progress resumes. Returns the
/// number of jobs newly flagged.
pub async fn watch_stalls(app: &App) -> Result<usize, EngineError> {
    let now = app.now();
    let mut flagged = 0;
    for job in app.store.jobs(true, 500).await? {
        if !job.state.is_build_step() && !job.state.is_compensating() {
            continue;
        }
        let bound =
            Duration::from_std(app.backend.step_bound(job.state)).unwrap_or(Duration::minutes(15));
        // Waiting out a retry's backoff is not a stall.
        let quiet_since = job.progress_at.max(job.run_after);
        let stalled = now - quiet_since > bound;
        match (stalled, job.stalled_since) {
            (true, None) => {
                app.store
                    .set_job_stalled(job.id, Some(quiet_since + bound))
                    .await?;
                flagged += 1;
                metrics::counter!("restore_desk_stalled_steps_total", "step" => job.state.as_str())
                    .increment(1);
                tracing::warn!(
                    job = %job.id, kind = %job.kind, state = %job.state,
                    quiet_for = %(now - quiet_since), "restore step stalled: no progress within its bound"
                );
            }
            (false, Some(_)) => app.store.set_job_stalled(job.id, None).await?,
            _ => {}
        }
    }
    Ok(flagged)
}

/// Restores whose step runs past three times that step's estimate (or the
/// whole past three times the whole's): counted in a gauge and logged; the
/// ticket pages and the job's API say so.
pub async fn watch_estimates(app: &App) -> Result<usize, EngineError> {
    let mut over = 0;
    for job in app.store.jobs(true, 500).await? {
        if let Ok(Some(eta)) = crate::desk::eta::of_job(app, &job).await
            && (eta.overrun || eta.step_overrun)
        {
            over += 1;
            tracing::warn!(
                job = %job.id, kind = %job.kind, state = %job.state,
                step_estimate = %eta.estimate.step(job.state).map(crate::domain::eta::words).unwrap_or_default(),
                estimate = %crate::domain::eta::words(eta.estimate.duration),
                "restore step running past three times its estimate"
            );
        }
    }
    metrics::gauge!("restore_desk_restores_over_estimate").set(over as f64);
    Ok(over)
}

/// One round of every duty, as the scheduler runs it.
pub async fn run_once(app: &App) -> Result<(), EngineError> {
    let now = app.now();
    match app.backend.run_backups(now).await {
        Ok(round) if round.snapshots_taken + round.snapshots_expired > 0 => {
            tracing::info!(
                taken = round.snapshots_taken,
                expired = round.snapshots_expired,
                "automatic backups"
            )
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "automatic backups failed"),
    }
    remember_relation_names(app).await?;
    match crate::desk::drills::schedule(app).await {
        Ok(0) => {}
        Ok(queued) => tracing::info!(queued, "restore tests scheduled"),
        Err(crate::desk::DeskError::Store(error)) => return Err(error.into()),
        Err(error) => tracing::warn!(%error, "scheduling restore tests"),
    }
    super::hosts::take_over_lost_hosts(app).await?;
    super::hosts::explain_unplaced(app).await?;
    warn_deadlines(app).await?;
    hand_over_undecided(app).await?;
    watch_stalls(app).await?;
    watch_estimates(app).await?;
    Ok(())
}

/// Keeps what each live cluster's catalog names by file, so that the log
/// of a table dropped later still reads by its name.
async fn remember_relation_names(app: &App) -> Result<(), EngineError> {
    for cluster in app
        .store
        .clusters(crate::store::Scope::Everything, false)
        .await?
    {
        match crate::desk::transactions::remember_names(app, &cluster).await {
            Ok(()) => {}
            Err(crate::desk::DeskError::Store(error)) => return Err(error.into()),
            Err(error) => {
                tracing::debug!(cluster = %cluster.name, %error, "reading relation names")
            }
        }
    }
    Ok(())
}

/// The scheduler loop. The watchdog looks every few seconds; backups and
/// deadlines every `SCHEDULER_SECONDS`.
pub async fn run(app: App, owner: String, shutdown: CancellationToken) {
    let period = StdDuration::from_secs(app.settings.scheduler_seconds.max(1));
    let tick = period.min(StdDuration::from_secs(5));
    let ttl = Duration::from_std(period * 3).unwrap_or(Duration::minutes(3));
    let mut last_round: Option<tokio::time::Instant> = None;
    while !shutdown.is_cancelled() {
        let result = async {
            if !app.store.take_duty(DUTY, &owner, app.now(), ttl).await? {
                return Ok::<(), EngineError>(());
            }
            if last_round.is_none_or(|at| at.elapsed() >= period) {
                last_round = Some(tokio::time::Instant::now());
                run_once(&app).await
            } else {
                super::hosts::take_over_lost_hosts(&app).await?;
                super::hosts::explain_unplaced(&app).await?;
                watch_stalls(&app).await.map(|_| ())
            }
        }
        .await;
        if let Err(error) = result {
            tracing::error!(%error, "scheduled duties failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.cancelled() => {}
        }
    }
    // Stopping on purpose: another process need not wait out the lease.
    match app.store.release_duty(DUTY, &owner).await {
        Ok(()) => tracing::info!("scheduled duties handed over"),
        Err(error) => {
            tracing::warn!(%error, "the duty lease could not be released; it runs out by itself")
        }
    }
}
