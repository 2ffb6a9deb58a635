//! Restore hosts coming and going: each worker process says it is alive
//! with its room, removes on start what a restore it no longer holds left
//! on its host, and the duties hand the restores of a host not heard from
//! for `HOST_LOST_SECONDS` to another.

use std::time::Duration as StdDuration;

use chrono::Duration;
use tokio_util::sync::CancellationToken;

use super::EngineError;
use crate::app::App;
use crate::desk::commands::system_job_commit;
use crate::domain::restore_job::{self, JobCommand};
use crate::store::{HostHeartbeat, StoreError};

/// How often a worker process says it is alive: often enough that a host
/// is missed only after several beats.
pub fn beat_period(app: &App) -> StdDuration {
    let lost = StdDuration::from_secs(app.settings.host_lost_seconds.max(5) as u64);
    (lost / 6).clamp(StdDuration::from_secs(1), StdDuration::from_secs(5))
}

/// Says this host is alive, with its free room and its limit (a process
/// that runs no restores says nothing).
pub async fn beat(app: &App, worker: &str) -> Result<(), EngineError> {
    if !app.backend.runs_restores().await {
        return Ok(());
    }
    let place = app.settings.placement();
    let free_bytes = app.backend.free_space().await.ok();
    app.store
        .host_heartbeat(&HostHeartbeat {
            host: place.host,
            worker: worker.to_string(),
            seen_at: app.now(),
            free_bytes,
            max_restores: place.max_restores,
        })
        .await?;
    Ok(())
}

/// Removes what restores this host no longer holds left on it: runs
/// another host took over while this one was away, runs that ended while
/// it was down. Returns how many were removed.
pub async fn remove_leftovers(app: &App) -> Result<usize, EngineError> {
    let host = app.settings.restore_host.clone();
    let keep = app.store.runs_on_host(&host).await?;
    match app.backend.remove_leftovers(&host, &keep).await {
        Ok(removed) => {
            if removed > 0 {
                tracing::info!(removed, %host, "removed what earlier restores left on this host");
            }
            Ok(removed)
        }
        Err(error) => {
            tracing::warn!(%error, %host, "leftovers of earlier restores could not be removed");
            Ok(0)
        }
    }
}

/// The presence loop of a worker process: leftovers first, then a beat
/// every `beat_period` until shutdown.
pub async fn run(app: App, worker: String, shutdown: CancellationToken) {
    if let Err(error) = beat(&app, &worker).await {
        tracing::warn!(%error, "saying this host is alive");
    }
    if let Err(error) = remove_leftovers(&app).await {
        tracing::warn!(%error, "looking for leftovers of earlier restores");
    }
    let period = beat_period(&app);
    while !shutdown.is_cancelled() {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(error) = beat(&app, &worker).await {
            tracing::warn!(%error, "saying this host is alive");
        }
    }
}

/// Starts over elsewhere every restore of a host not heard from for
/// `HOST_LOST_SECONDS`. Returns how many were taken over.
pub async fn take_over_lost_hosts(app: &App) -> Result<usize, EngineError> {
    let now = app.now();
    let lost_before = now - Duration::seconds(app.settings.host_lost_seconds);
    let mut moved = 0;
    // This process runs restores on its own host, so that one is alive.
    let own = &app.settings.restore_host;
    for job in app.store.jobs_on_lost_hosts(now, lost_before, own).await? {
        let Some(host) = job.host.clone() else {
            continue;
        };
        let command = JobCommand::Rehost { host: host.clone() };
        let detail = format!(
            "restore host {host} not heard from for {} s",
            app.settings.host_lost_seconds
        );
        let Some(mut commit) = system_job_commit(app, &job, &command, detail) else {
            continue;
        };
        // The record of the cluster the lost run was building goes with it
        // (its files stay out of reach until the host is back); a run being
        // removed removes it itself.
        if !job.is_drill()
            && (job.state.is_build_step() || job.state == restore_job::JobState::Queued)
        {
            commit.cluster = Some(crate::store::ClusterWrite::Remove(job.new_cluster_id));
        }
        match app.commit(commit).await {
            Ok(_) => {
                moved += 1;
                metrics::counter!("restore_desk_restores_taken_over_total").increment(1);
                tracing::warn!(job = %job.id, %host, state = %job.state, "restore host lost: another host takes the restore over");
            }
            // Its host came back and took it up meanwhile.
            Err(StoreError::Conflict(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    if moved > 0 {
        app.work_ready.notify_waiters();
    }
    Ok(moved)
}

/// A queued job no host has taken up this long after it was due gets a
/// reason staff see: no restore host runs, or none has room for it.
const UNPLACED_GRACE_SECONDS: i64 = 10;

/// Says why each due job no host took up waits, when the hosts' own
/// reports tell: none is alive, or none has room. Returns how many jobs
/// were given a new reason.
pub async fn explain_unplaced(app: &App) -> Result<usize, EngineError> {
    use crate::domain::capacity;
    let now = app.now();
    let lost_before = now - Duration::seconds(app.settings.host_lost_seconds);
    // This process runs restores on its own host, so that one is alive
    // whatever its last beat says.
    let own = &app.settings.restore_host;
    let runs_here = app.backend.runs_restores().await;
    let mut alive: Vec<HostHeartbeat> = app
        .store
        .host_heartbeats()
        .await?
        .into_iter()
        .filter(|h| h.seen_at > lost_before || (runs_here && h.host == *own))
        .collect();
    if runs_here && !alive.iter().any(|h| h.host == *own) {
        alive.push(HostHeartbeat {
            host: own.clone(),
            worker: String::new(),
            seen_at: now,
            free_bytes: app.backend.free_space().await.ok(),
            max_restores: app.settings.max_restores,
        });
    }
    let mut explained = 0;
    for job in app.store.jobs(true, 500).await? {
        if job.state != restore_job::JobState::Queued
            || job.host.is_some()
            || job.run_after > now - Duration::seconds(UNPLACED_GRACE_SECONDS)
        {
            continue;
        }
        let failure = if alive.is_empty() {
            restore_job::StepFailure {
                code: capacity::NO_RESTORE_HOST.into(),
                message: capacity::no_host_refusal(),
                retryable: true,
            }
        } else {
            let rooms: Option<Vec<(String, i64)>> = alive
                .iter()
                .map(|h| h.free_bytes.map(|free| (h.host.clone(), free)))
                .collect();
            match (job.work, rooms) {
                // With one host, its worker's own reason says it all.
                (Some(work), Some(rooms))
                    if rooms.len() > 1
                        && rooms
                            .iter()
                            .all(|(_, free)| *free < capacity::space_needed(work)) =>
                {
                    restore_job::StepFailure {
                        code: capacity::INSUFFICIENT_DISK.into(),
                        message: capacity::no_room_anywhere(
                            &rooms,
                            capacity::space_needed(work),
                            work,
                        ),
                        retryable: true,
                    }
                }
                _ => continue,
            }
        };
        if job.last_error.as_deref() == Some(failure.message.as_str()) {
            continue;
        }
        let command = JobCommand::Wait(failure.clone());
        let Some(commit) = system_job_commit(app, &job, &command, failure.message.clone()) else {
            continue;
        };
        match app.commit(commit).await {
            Ok(_) => {
                explained += 1;
                tracing::warn!(job = %job.id, code = %failure.code, "{}", failure.message);
            }
            Err(StoreError::Conflict(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Ok(explained)
}
