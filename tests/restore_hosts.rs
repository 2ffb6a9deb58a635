//! Restore hosts on the simulated fleet: a host lost mid-restore (its
//! worker process killed) hands the restore to another host, which
//! finishes it once; a job no host has room for waits with a reason that
//! names every host, shown on the staff ticket page, and a host known too
//! small leaves the job to one with room.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;

use common::TestDb;
use common::seeded::{demo_cluster, demo_user};
use common::web::{Browser, spawn_app_on};
use restore_desk::app::App;
use restore_desk::clock::SystemClock;
use restore_desk::desk::{FilingRequest, act, file_ticket};
use restore_desk::domain::restore_job::JobState;
use restore_desk::domain::sla::Severity;
use restore_desk::domain::ticket::{TicketCommand, TicketState};
use restore_desk::domain::validation::TargetInput;
use restore_desk::engine;
use restore_desk::store::{OutboxQuery, RestoreJob, Scope};

const BIN: &str = env!("CARGO_BIN_EXE_restore-desk");

/// A worker process on restore host `host`, killed when dropped.
struct HostWorker {
    child: Child,
    log: std::path::PathBuf,
}

impl HostWorker {
    fn start(db: &TestDb, dir: &std::path::Path, host: &str) -> HostWorker {
        let log = dir.join(format!("{host}.log"));
        let child = Command::new(BIN)
            .args(["worker", "--host", host])
            .current_dir(dir)
            .env("DATABASE_URL", &db.url)
            .env("MAIL_DIR", dir.join("mail"))
            .env("SANDBOX_STEP_MS", "1500")
            .env("WORKERS", "1")
            .env("LEASE_SECONDS", "2")
            .env("HOST_LOST_SECONDS", "5")
            .env("SCHEDULER_SECONDS", "1")
            .env("DRILL_INTERVAL_HOURS", "0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start worker");
        HostWorker { child, log }
    }

    fn kill_hard(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for HostWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn approve(app: &App, name: &str) -> restore_desk::domain::ids::TicketId {
    let alice = demo_user(&app.store, "alice@contoso.example").await;
    let sam = demo_user(&app.store, "sam@support.example").await;
    let orders = demo_cluster(&app.store, "orders-prod").await;
    let request = FilingRequest {
        transaction: None,
        cluster_id: Some(orders.id),
        target: TargetInput::Instant {
            target_time: (app.now() - Duration::hours(2)).to_rfc3339(),
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
    ticket.id
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
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

async fn job_of(app: &App, ticket: restore_desk::domain::ids::TicketId) -> RestoreJob {
    app.store.job_for_ticket(ticket).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_restore_on_a_lost_host_finishes_once_on_another() {
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(&db, &[]);
    settings.mail_dir = dir.path().join("mail");
    let app = restore_desk::cli::build(settings, Arc::new(SystemClock))
        .await
        .unwrap();
    restore_desk::demo::seed(&app, "demo").await.unwrap();
    let ticket = approve(&app, "orders-moved").await;

    let mut r1 = HostWorker::start(&db, dir.path(), "r1");
    let running = wait_for("r1 restoring", StdDuration::from_secs(30), async || {
        let job = job_of(&app, ticket).await;
        (job.state == JobState::RestoringSnapshot && job.lease_owner.is_some()).then_some(job)
    })
    .await;
    assert_eq!(running.host.as_deref(), Some("r1"));
    // r2 runs meanwhile; the restore stays r1's while r1 answers.
    let r2 = HostWorker::start(&db, dir.path(), "r2");
    tokio::time::sleep(StdDuration::from_millis(800)).await;
    assert_eq!(job_of(&app, ticket).await.host.as_deref(), Some("r1"));
    r1.kill_hard();
    let killed_at = Instant::now();

    let done = wait_for(
        "the restore on r2",
        StdDuration::from_secs(60),
        async || {
            let job = job_of(&app, ticket).await;
            job.state.is_terminal().then_some(job)
        },
    )
    .await;
    assert_eq!(done.state, JobState::Succeeded, "{}", r2.log());
    assert_eq!(done.host.as_deref(), Some("r2"));
    assert_eq!(done.run, running.run + 1, "a new run, from nothing");
    assert!(
        killed_at.elapsed() >= StdDuration::from_secs(5),
        "taken over only once r1 was silent for HOST_LOST_SECONDS"
    );
    let events = app.store.ticket_events(ticket).await.unwrap();
    let moved: Vec<_> = events.iter().filter(|e| e.action == "job_rehost").collect();
    assert_eq!(moved.len(), 1, "taken over once");
    assert!(moved[0].detail.contains("restore host r1 not heard from"));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "job_succeeded")
            .count(),
        1
    );
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
    assert_eq!(restored.len(), 1, "one new cluster");
    assert_eq!(restored[0].id, done.new_cluster_id);
    let mail = app
        .store
        .outbox(&OutboxQuery {
            ticket_id: Some(ticket),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        mail.iter()
            .filter(|m| m.kind == "restore_completed")
            .count(),
        1
    );
    assert_eq!(
        mail.iter().filter(|m| m.kind == "restore_started").count(),
        2,
        "the customer is told when it starts again on r2"
    );
    let ticket = app
        .store
        .ticket(ticket, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ticket.state, TicketState::Completed);
}

/// Another process's desk on the same database: its own restore host.
async fn host_app(db: &TestDb, clock: &restore_desk::clock::ManualClock, args: &[&str]) -> App {
    restore_desk::cli::build(common::settings(db, args), Arc::new(clock.clone()))
        .await
        .expect("build app")
}

async fn a_job_no_host_has_room_for_waits_with_every_host_named(db: TestDb) {
    let args = ["--host", "r1", "--sandbox-host-disk-gib", "1"];
    let desk = spawn_app_on(db, &args, |_| {}).await;
    let clock = desk.clock.clone();
    let db = TestDb::external(desk.app.settings.database_url.clone());
    let r1 = &desk.app;
    let r2 = host_app(
        &db,
        &clock,
        &["--host", "r2", "--sandbox-host-disk-gib", "1"],
    )
    .await;
    engine::hosts::beat(r1, "r1/0").await.unwrap();
    engine::hosts::beat(&r2, "r2/0").await.unwrap();
    let ticket = approve(r1, "orders-no-room").await;

    // r1 takes it up, finds no room and leaves it with what it needs.
    assert_eq!(engine::drain(r1).await.unwrap(), 1);
    let waiting = job_of(r1, ticket).await;
    assert_eq!(waiting.state, JobState::Queued);
    assert_eq!(waiting.host, None);
    let needs = waiting.work.expect("what it needs is kept");
    assert!(needs.backup_bytes > 1024 * 1024 * 1024);
    // Known too large for either host: neither takes it up again.
    clock.advance(Duration::seconds(30));
    assert_eq!(engine::drain(r1).await.unwrap(), 0);
    assert_eq!(engine::drain(&r2).await.unwrap(), 0);
    assert_eq!(
        job_of(r1, ticket).await.attempt,
        1,
        "waiting costs no attempt"
    );

    // The duties say why, naming both hosts.
    engine::hosts::beat(r1, "r1/0").await.unwrap();
    engine::hosts::beat(&r2, "r2/0").await.unwrap();
    assert_eq!(engine::hosts::explain_unplaced(r1).await.unwrap(), 1);
    let explained = job_of(r1, ticket).await;
    assert_eq!(
        explained.last_error_code.as_deref(),
        Some("insufficient_disk")
    );
    let reason = explained.last_error.clone().unwrap();
    assert!(
        reason.starts_with("No restore host has room: r1 has 1.0 GB free, r2 has 1.0 GB free"),
        "{reason}"
    );
    // Said once: the same reason again is no news.
    clock.advance(Duration::seconds(30));
    engine::hosts::beat(r1, "r1/0").await.unwrap();
    engine::hosts::beat(&r2, "r2/0").await.unwrap();
    assert_eq!(engine::hosts::explain_unplaced(r1).await.unwrap(), 0);

    // Staff see it on the ticket page, in their words.
    let mut sam = Browser::new(&desk.base);
    sam.sign_in("sam@support.example").await;
    let page = sam.page(&format!("/staff/tickets/{ticket}")).await;
    assert!(page.contains("<dt>Waiting</dt>"), "{page}");
    assert!(page.contains("No restore host has room: r1 has 1.0 GB free"));

    // A host with room takes it and runs it to the end.
    let r3 = host_app(&db, &clock, &["--host", "r3"]).await;
    clock.advance(Duration::seconds(30));
    assert!(engine::drain(&r3).await.unwrap() >= 1);
    let done = job_of(r1, ticket).await;
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.host.as_deref(), Some("r3"));
    let page = sam.page(&format!("/staff/tickets/{ticket}")).await;
    assert!(
        page.contains("<dt>Restore host</dt><dd class=\"mono\">r3</dd>"),
        "{page}"
    );
    assert!(!page.contains("<dt>Waiting</dt>"));
}

crate::both_databases!(a_job_no_host_has_room_for_waits_with_every_host_named);
