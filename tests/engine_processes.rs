//! The engine as real processes sharing one PostgreSQL database: workers
//! killed mid-step, frozen past their lease, and racing each other for a
//! few thousand jobs. Every job must end once, none lost, nothing doubled.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use sqlx::Connection;
use uuid::Uuid;

use common::TestDb;
use common::seeded::{QueuedJobs, demo_cluster, demo_user};
use restore_desk::app::App;
use restore_desk::clock::SystemClock;
use restore_desk::desk::{FilingRequest, act, file_ticket};
use restore_desk::domain::restore_job::JobState;
use restore_desk::domain::sla::Severity;
use restore_desk::domain::ticket::{TicketCommand, TicketState};
use restore_desk::domain::validation::TargetInput;
use restore_desk::store::EventAction;
use restore_desk::store::{Email, FaultKind, NewEvent, RestoreJob, SandboxFault, Scope};

const BIN: &str = env!("CARGO_BIN_EXE_restore-desk");

/// A worker process, killed when dropped.
struct WorkerProcess {
    child: Child,
    log: std::path::PathBuf,
}

impl WorkerProcess {
    fn start(
        db: &TestDb,
        dir: &std::path::Path,
        name: &str,
        env: &[(&str, &str)],
    ) -> WorkerProcess {
        let log = dir.join(format!("{name}.log"));
        let mut command = Command::new(BIN);
        command
            .arg("worker")
            .current_dir(dir)
            .env("DATABASE_URL", &db.url)
            .env("MAIL_DIR", dir.join("mail"))
            .env("LEASE_SECONDS", "2")
            .env("SCHEDULER_SECONDS", "3600")
            .env("DRILL_INTERVAL_HOURS", "0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (key, value) in env {
            command.env(key, value);
        }
        WorkerProcess {
            child: command.spawn().expect("start worker"),
            log,
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn kill_hard(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The desk itself, in this process, for seeding and approving.
async fn desk(db: &TestDb, dir: &std::path::Path) -> App {
    let mut settings = common::settings(db, &[]);
    settings.mail_dir = dir.join("mail");
    let app = restore_desk::cli::build(settings, Arc::new(SystemClock))
        .await
        .unwrap();
    restore_desk::demo::seed(&app, "demo").await.unwrap();
    app
}

async fn approve(app: &App, name: &str) -> uuid::Uuid {
    let alice = demo_user(&app.store, "alice@contoso.example").await;
    let sam = demo_user(&app.store, "sam@support.example").await;
    let orders = demo_cluster(&app.store, "orders-prod").await;
    let request = FilingRequest {
        transaction: None,
        cluster_id: Some(orders.id),
        target: TargetInput::Instant {
            target_time: (Utc::now() - Duration::hours(2)).to_rfc3339(),
            time_zone: None,
        },
        new_cluster_name: name.into(),
        severity: Severity::A,
        description: String::new(),
        inspect: false,
    };
    let ticket = file_ticket(app, &alice, &request).await.unwrap();
    act(app, &sam, ticket.id, TicketCommand::Claim, None)
        .await
        .unwrap();
    act(
        app,
        &sam,
        ticket.id,
        TicketCommand::Approve { inspect: false },
        None,
    )
    .await
    .unwrap();
    ticket.id.uuid()
}

async fn wait_for<T>(
    what: &str,
    limit: StdDuration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(StdDuration::from_millis(40)).await;
    }
}

async fn job_of(app: &App, ticket: uuid::Uuid) -> RestoreJob {
    app.store
        .job_for_ticket(ticket.into())
        .await
        .unwrap()
        .unwrap()
}

fn count_actions(events: &[restore_desk::store::Event], action: &str) -> usize {
    events.iter().filter(|e| e.action == action).count()
}

#[tokio::test]
async fn sigkill_in_every_step_still_succeeds_exactly_once() {
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let app = desk(&db, dir.path()).await;
    let ticket = approve(&app, "survivor").await;
    let env = [("SANDBOX_STEP_MS", "1500"), ("WORKERS", "1")];
    let mut generation = 0;
    let mut worker = WorkerProcess::start(&db, dir.path(), "w0", &env);
    for step in JobState::STEPS {
        wait_for(
            &format!("step {step}"),
            StdDuration::from_secs(30),
            async || {
                let job = job_of(&app, ticket).await;
                (job.state == step && job.lease_owner.is_some()).then_some(())
            },
        )
        .await;
        // Halfway through the step's 1.5 s.
        tokio::time::sleep(StdDuration::from_millis(600)).await;
        let job = job_of(&app, ticket).await;
        assert_eq!(job.state, step, "the step should still be running");
        worker.kill_hard();
        generation += 1;
        worker = WorkerProcess::start(&db, dir.path(), &format!("w{generation}"), &env);
    }
    let job = wait_for("success", StdDuration::from_secs(60), async || {
        let job = job_of(&app, ticket).await;
        job.state.is_terminal().then_some(job)
    })
    .await;
    assert_eq!(job.state, JobState::Succeeded, "{}", worker.log());
    assert!(job.lease_token >= 6, "each kill forced a new claim");

    let restored: Vec<_> = app
        .store
        .clusters(Scope::Everything, true)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| {
            c.restored_from
                .as_ref()
                .is_some_and(|r| r.ticket_id == ticket)
        })
        .collect();
    assert_eq!(restored.len(), 1, "one new cluster per ticket");
    assert_eq!(restored[0].id, job.new_cluster_id);
    let events = app.store.ticket_events(ticket.into()).await.unwrap();
    assert_eq!(count_actions(&events, "job_start"), 1);
    assert_eq!(count_actions(&events, "job_step_succeeded"), 5);
    assert_eq!(count_actions(&events, "job_succeeded"), 1);
    let mail = app
        .store
        .outbox(&restore_desk::store::OutboxQuery {
            ticket_id: Some(ticket.into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = mail.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "restore_started").count(), 1);
    assert_eq!(
        kinds.iter().filter(|k| **k == "restore_completed").count(),
        1
    );
    let ticket = app
        .store
        .ticket(ticket.into(), Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ticket.state, TicketState::Completed);
}

#[tokio::test]
async fn a_worker_frozen_past_its_lease_cannot_commit() {
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let app = desk(&db, dir.path()).await;
    let fault = SandboxFault {
        id: Uuid::new_v4(),
        kind: FaultKind::SlowStep,
        step: JobState::RestoringSnapshot,
        permanent: false,
        remaining: 1,
        delay_ms: 3000,
        created_at: Utc::now(),
    };
    let ada = app
        .store
        .user_by_email(&Email::parse("ada@admin.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    app.store
        .sandbox_add_fault(
            &fault,
            NewEvent::admin(ada.actor(), EventAction::FaultAdd, "slow", Utc::now()),
        )
        .await
        .unwrap();
    let ticket = approve(&app, "frozen").await;
    let env = [("SANDBOX_STEP_MS", "300"), ("WORKERS", "1")];
    let stale = WorkerProcess::start(&db, dir.path(), "stale", &env);
    // The first worker is inside the slow snapshot restore…
    wait_for("the slow step", StdDuration::from_secs(30), async || {
        app.sandbox.faults().await.unwrap().is_empty().then_some(())
    })
    .await;
    let held = job_of(&app, ticket).await;
    assert_eq!(held.state, JobState::RestoringSnapshot);
    // …when it freezes, for longer than its lease.
    stale.signal("STOP");
    let fresh = WorkerProcess::start(&db, dir.path(), "fresh", &env);
    let done = wait_for(
        "the other worker to finish",
        StdDuration::from_secs(60),
        async || {
            let job = job_of(&app, ticket).await;
            job.state.is_terminal().then_some(job)
        },
    )
    .await;
    assert_eq!(done.state, JobState::Succeeded, "{}", fresh.log());
    assert!(done.lease_token > held.lease_token);
    // It wakes up, still mid-step, holding a dead lease.
    stale.signal("CONT");
    wait_for(
        "the stale worker to notice",
        StdDuration::from_secs(30),
        async || {
            let log = stale.log();
            (log.contains("lease lost") || log.contains("changed under this worker")).then_some(())
        },
    )
    .await;
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    let after = job_of(&app, ticket).await;
    assert_eq!(after, done, "the stale worker changed nothing");
    let events = app.store.ticket_events(ticket.into()).await.unwrap();
    let restored_snapshot_commits = events
        .iter()
        .filter(|e| {
            e.action == "job_step_succeeded"
                && e.from_state.as_deref() == Some("restoring_snapshot")
        })
        .count();
    assert_eq!(restored_snapshot_commits, 1);
    assert_eq!(count_actions(&events, "job_step_succeeded"), 5);
}

#[tokio::test]
async fn two_processes_share_thousands_of_jobs_exactly_once() {
    const JOBS: i64 = 2000;
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let app = desk(&db, dir.path()).await;
    // Approved tickets with queued jobs, written straight into the store.
    let jobs = QueuedJobs::on_orders_prod(&app.store).await;
    let mut stores = Vec::new();
    for chunk in 0..4 {
        let (store, jobs) = (app.store.clone(), jobs.clone());
        stores.push(tokio::spawn(async move {
            for i in (chunk..JOBS).step_by(4) {
                store.commit(&jobs.commit(10_000 + i)).await.unwrap();
            }
        }));
    }
    for s in stores {
        s.await.unwrap();
    }
    let env = [("SANDBOX_STEP_MS", "0"), ("WORKERS", "4")];
    let _a = WorkerProcess::start(&db, dir.path(), "a", &env);
    let _b = WorkerProcess::start(&db, dir.path(), "b", &env);

    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    wait_for("every job to finish", StdDuration::from_secs(600), async || {
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM restore_jobs WHERE state NOT IN ('succeeded', 'failed', 'cancelled')",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        (open == 0).then_some(())
    })
    .await;
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM restore_jobs GROUP BY state")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(states, vec![("succeeded".to_string(), JOBS)]);
    // Every transition committed exactly once per job.
    let per_job: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT action, COUNT(DISTINCT job_id), COUNT(*) FROM events \
         WHERE job_id IS NOT NULL GROUP BY action ORDER BY action",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let per_job: HashMap<String, (i64, i64)> = per_job
        .into_iter()
        .map(|(a, jobs, n)| (a, (jobs, n)))
        .collect();
    assert_eq!(per_job["job_start"], (JOBS, JOBS));
    assert_eq!(per_job["job_step_succeeded"], (JOBS, JOBS * 5));
    assert!(!per_job.contains_key("job_step_failed"), "{per_job:?}");
    let clusters: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT restored_from_ticket_id) FROM clusters WHERE restored_from_ticket_id IS NOT NULL",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let cluster_rows: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM clusters WHERE restored_from_ticket_id IS NOT NULL",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((clusters, cluster_rows), (JOBS, JOBS));
    // Both processes took part.
    for worker in [&_a, &_b] {
        assert!(worker.log().contains("job moved"), "{}", worker.log());
    }
}

#[tokio::test]
async fn a_stopping_worker_releases_its_lease_at_once() {
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let app = desk(&db, dir.path()).await;
    let ticket = approve(&app, "handed-on").await;
    let slow = [
        ("SANDBOX_STEP_MS", "20000"),
        ("WORKERS", "1"),
        ("LEASE_SECONDS", "60"),
        ("SHUTDOWN_GRACE_SECONDS", "1"),
    ];
    let mut stopping = WorkerProcess::start(&db, dir.path(), "stopping", &slow);
    wait_for("the first step", StdDuration::from_secs(30), async || {
        let job = job_of(&app, ticket).await;
        (job.state == JobState::Provisioning && job.lease_owner.is_some()).then_some(())
    })
    .await;
    stopping.signal("TERM");
    let started = Instant::now();
    let status = stopping.child.wait().unwrap();
    assert!(status.success(), "{}", stopping.log());
    assert!(started.elapsed() < StdDuration::from_secs(15));
    let job = job_of(&app, ticket).await;
    assert_eq!(
        job.state,
        JobState::Provisioning,
        "the interrupted step committed nothing"
    );
    assert_eq!(
        job.lease_owner, None,
        "the lease was released, not left to expire"
    );
    // Another worker takes over without waiting out the 60 s lease.
    let _next = WorkerProcess::start(
        &db,
        dir.path(),
        "next",
        &[("SANDBOX_STEP_MS", "50"), ("WORKERS", "1")],
    );
    let job = wait_for("the other worker", StdDuration::from_secs(20), async || {
        let job = job_of(&app, ticket).await;
        job.state.is_terminal().then_some(job)
    })
    .await;
    assert_eq!(job.state, JobState::Succeeded);
}
