//! When a running or queued restore should be done, from the cluster's own
//! past restores (see `domain::eta`).

use chrono::{DateTime, Utc};

use super::DeskError;
use crate::app::App;
use crate::domain::eta::{self, Estimate};
use crate::store::RestoreJob;

/// A restore's expected end and what it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eta {
    pub done_by: DateTime<Utc>,
    pub estimate: Estimate,
    /// Running past three times the estimate.
    pub overrun: bool,
}

/// `None` once the job rests, or while the cluster has no handed-over
/// restore to learn from ("no estimate yet").
pub async fn of_job(app: &App, job: &RestoreJob) -> Result<Option<Eta>, DeskError> {
    if job.state.is_terminal() || job.state.is_compensating() {
        return Ok(None);
    }
    let past = app
        .store
        .restore_durations(job.source_cluster_id, eta::SAMPLE as i64)
        .await?;
    let Some(estimate) = eta::estimate(&past) else {
        return Ok(None);
    };
    // A queued job starts now at the earliest.
    let started = app
        .store
        .job_started_at(job.id)
        .await?
        .unwrap_or_else(|| app.now());
    Ok(Some(Eta {
        done_by: estimate.done_by(started),
        overrun: estimate.overrun(started, app.now()),
        estimate,
    }))
}
