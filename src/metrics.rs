//! Prometheus metrics. Counters and histograms are recorded where things
//! happen; gauges of what the database holds are read at scrape time, so
//! every process reports the same shared state.

use std::sync::OnceLock;

use metrics::gauge;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::app::App;
use crate::domain::restore_job::JobState;
use crate::domain::ticket::TicketState;
use crate::store::OutboxStatus;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Seconds, from a fast page to a long restore step.
const BUCKETS: [f64; 15] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 1800.0,
];

/// Installs the process-wide recorder on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .expect("bucket list is not empty");
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed (tests): keep a private one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// The metrics page: gauges refreshed from the store, then everything.
pub async fn render(app: &App) -> String {
    let recorder = handle();
    if let Ok(counts) = app.store.state_counts("tickets").await {
        for state in TicketState::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |c| c.1);
            gauge!("restore_desk_tickets", "state" => state.as_str()).set(n as f64);
        }
    }
    if let Ok(counts) = app.store.state_counts("restore_jobs").await {
        for state in JobState::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |c| c.1);
            gauge!("restore_desk_restore_jobs", "state" => state.as_str()).set(n as f64);
        }
    }
    if let Ok(counts) = app.store.outbox_counts().await {
        for status in OutboxStatus::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| s == status.as_str())
                .map_or(0, |c| c.1);
            gauge!("restore_desk_outbox_messages", "status" => status.as_str()).set(n as f64);
        }
    }
    // When each cluster's backups in each zone last restored as a test.
    if let Ok(passes) = crate::desk::drills::last_passes(app).await {
        for (cluster, zone, at) in passes {
            gauge!("restore_desk_drill_last_success_timestamp_seconds",
                "cluster" => cluster, "zone" => zone.as_str())
            .set(at.timestamp() as f64);
        }
    }
    recorder.render()
}
