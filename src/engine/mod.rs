//! The durable restore engine: workers that drive approved restores through
//! the job lifecycle, the periodic duties (automatic backups, expiry,
//! deadline warnings, the stall watchdog), and the email relay beside them.
//!
//! Several processes may share one PostgreSQL database: jobs are claimed
//! with leases, every write is fenced, and duties run where their lease is.

pub mod duties;
pub mod hosts;
pub mod worker;

use std::time::Duration as StdDuration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::desk::DeskError;
use crate::store::{StoreError, WakeUp};

use crate::notify::relay::{self, DeliveryPolicy, Relay};
pub use worker::Worker;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Desk(#[from] DeskError),
    /// Data that should not exist; logged, and the job left for later.
    #[error("{0}")]
    Inconsistent(String),
}

/// A name for this process's workers and duty leases: host, pid, and a
/// random suffix, so restarts never reuse one.
pub fn process_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    format!("{host}:{}:{suffix}", std::process::id())
}

/// Runs workers until nothing is due, for tests that drive the engine to
/// idle without sleeping. Returns how many claims it made.
pub async fn drain(app: &App) -> Result<usize, EngineError> {
    let worker = Worker::new(app.clone(), format!("{}/drain", process_name()));
    let never = CancellationToken::new();
    let mut claims = 0;
    while worker.run_next(&never).await? {
        claims += 1;
    }
    Ok(claims)
}

/// One worker's loop: claim, drive, repeat; idle until woken or polled.
async fn work(worker: Worker, app: App, shutdown: CancellationToken) {
    let poll = StdDuration::from_millis(500);
    // Heard from before it places any job: a host with jobs and no beat
    // could never be found lost.
    if let Err(error) = hosts::beat(&app, worker.id()).await {
        tracing::warn!(%error, "saying this host is alive");
    }
    while !shutdown.is_cancelled() {
        // Across hosts only a restore host's workers take up restores.
        if !app.backend.runs_restores().await {
            tokio::select! {
                _ = tokio::time::sleep(poll * 10) => {}
                _ = shutdown.cancelled() => {}
            }
            continue;
        }
        match worker.run_next(&shutdown).await {
            Ok(true) => continue,
            Ok(false) => {
                tokio::select! {
                    _ = app.work_ready.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
            Err(error) => {
                tracing::error!(worker = worker.id(), %error, "worker error; pausing");
                tokio::select! {
                    _ = tokio::time::sleep(StdDuration::from_secs(2)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
    }
    tracing::info!(worker = worker.id(), "worker stopped");
}

/// Starts `WORKERS` workers and the duties. When `shutdown` fires, workers
/// stop claiming, give a running step a grace period, and release their
/// leases; join the set to wait for that.
pub fn spawn(app: App, shutdown: CancellationToken) -> JoinSet<()> {
    let name = app.instance.to_string();
    let mut tasks = JoinSet::new();
    for n in 0..app.settings.workers {
        let worker = Worker::new(app.clone(), format!("{name}/{n}"));
        tasks.spawn(work(worker, app.clone(), shutdown.clone()));
    }
    match Relay::new(app.clone(), app.mailer.clone(), DeliveryPolicy::default()) {
        Ok(relay) => {
            let (sender, receiver) = relay::hand_off();
            // The first relay of an app takes the hand-offs; any other polls.
            let handed = app.local_relay.set(sender).is_ok().then_some(receiver);
            tasks.spawn(relay::run(relay, handed, shutdown.clone()));
        }
        Err(error) => tracing::error!(%error, "email relay not started"),
    }
    tasks.spawn(hosts::run(app.clone(), name.clone(), shutdown.clone()));
    tasks.spawn(relay_wake_ups(app.clone(), shutdown.clone()));
    tasks.spawn(duties::run(app, name, shutdown));
    tasks
}

/// Passes on other processes' commits to this process's workers and relay.
async fn relay_wake_ups(app: App, shutdown: CancellationToken) {
    let mut wake_ups = match app.store.wake_ups().await {
        Ok(Some(wake_ups)) => wake_ups,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, "no cross-process notifications; polling only");
            return;
        }
    };
    loop {
        tokio::select! {
            wake = wake_ups.recv() => match wake {
                Some(WakeUp::Work) => app.work_ready.notify_one(),
                Some(WakeUp::Mail) => app.mail_ready.notify_one(),
                None => return,
            },
            _ = shutdown.cancelled() => return,
        }
    }
}
