//! When a running or queued restore should be done, from the cluster's own
//! past restores and drills (see `domain::eta`).

use chrono::{DateTime, Utc};

use super::DeskError;
use crate::app::App;
use crate::domain::eta::{self, Estimate, PastRun};
use crate::domain::restore_job::{JobKind, JobState};
use crate::store::RestoreJob;

/// A restore's expected end and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eta {
    pub done_by: DateTime<Utc>,
    pub estimate: Estimate,
    /// Running past three times the estimate.
    pub overrun: bool,
    /// The step running now past three times its own estimate.
    pub step_overrun: bool,
}

/// How long a run of the cluster takes, scaled to `work` when known: from
/// its newest finished restores and drills.
pub async fn estimate(
    app: &App,
    cluster_id: crate::domain::ids::ClusterId,
    work: Option<eta::Work>,
) -> Result<Option<Estimate>, DeskError> {
    let past: Vec<PastRun> = app
        .store
        .past_runs(cluster_id, eta::SAMPLE as i64)
        .await?
        .into_iter()
        .map(|run| PastRun {
            drill: run.kind == JobKind::Drill,
            steps: eta::step_durations(&run.changes),
            work: run.work,
        })
        .collect();
    Ok(eta::estimate(&past, work))
}

/// `None` once the job rests, or while the cluster has no finished run to
/// learn from ("no estimate yet").
pub async fn of_job(app: &App, job: &RestoreJob) -> Result<Option<Eta>, DeskError> {
    // A paused copy waits for its customer: no estimate says when they decide.
    if job.state.is_terminal() || job.state.is_compensating() || job.state == JobState::Paused {
        return Ok(None);
    }
    let Some(estimate) = estimate(app, job.source_cluster_id, job.work).await? else {
        return Ok(None);
    };
    // A queued job starts now at the earliest.
    let started = app
        .store
        .job_started_at(job.id)
        .await?
        .unwrap_or_else(|| app.now());
    let now = app.now();
    Ok(Some(Eta {
        done_by: estimate.done_by(started),
        overrun: estimate.overrun(started, now),
        step_overrun: job.state.is_build_step()
            && estimate.step_overrun(job.state, job.step_started_at, now),
        estimate,
    }))
}
