//! The restore engine against the sandbox fleet, driven to idle from the
//! test with an injected clock: no sleeps decide an outcome. Every test runs
//! on SQLite and on PostgreSQL.

mod common;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use common::{TestDb, demo_app, t0};
use restore_desk::app::App;
use restore_desk::clock::{Clock, ManualClock};
use restore_desk::desk::{FilingRequest, act, file_ticket};
use restore_desk::domain::catalog::Zone;
use restore_desk::domain::cluster::ClusterStatus;
use restore_desk::domain::restore_job::JobState;
use restore_desk::domain::sla::Severity;
use restore_desk::domain::ticket::{TicketCommand, TicketState};
use restore_desk::domain::validation::TargetInput;
use restore_desk::engine::{self, duties};
use restore_desk::store::EventAction;
use restore_desk::store::{
    Email, FaultKind, NewEvent, OutboxMessage, OutboxQuery, RestoreJob, SandboxFault, Scope,
    Ticket, User,
};

struct Desk {
    app: App,
    clock: ManualClock,
    alice: User,
    sam: User,
    ada: User,
}

impl Desk {
    async fn new(db: &TestDb) -> Desk {
        Desk::built(db, &[], |_, _| {}).await
    }

    /// A desk with more settings, its app adapted before use.
    async fn built(
        db: &TestDb,
        extra: &[&str],
        adapt: impl FnOnce(&mut App, &ManualClock),
    ) -> Desk {
        let clock = ManualClock::new(t0());
        let mut args = vec!["--max-attempts", "3"];
        args.extend_from_slice(extra);
        let mut app = demo_app(db, clock.clone(), &args).await;
        adapt(&mut app, &clock);
        let user = |email: &'static str| {
            let app = app.clone();
            async move {
                app.store
                    .user_by_email(&Email::parse(email).unwrap())
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        Desk {
            alice: user("alice@contoso.example").await,
            sam: user("sam@support.example").await,
            ada: user("ada@admin.example").await,
            app,
            clock,
        }
    }

    async fn cluster_id(&self, name: &str) -> Uuid {
        self.app
            .store
            .clusters(Scope::Everything, true)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name == name)
            .unwrap()
            .id
            .uuid()
    }

    /// Files a request for `target` on orders-prod and approves it.
    async fn approved(&self, target: DateTime<Utc>, name: &str) -> Ticket {
        let request = FilingRequest {
            transaction: None,
            cluster_id: Some(self.cluster_id("orders-prod").await.into()),
            target: TargetInput::Instant {
                target_time: target.to_rfc3339(),
                time_zone: Some("Europe/Amsterdam".into()),
            },
            new_cluster_name: name.into(),
            severity: Severity::A,
            description: "restore please".into(),
            inspect: false,
        };
        let ticket = file_ticket(&self.app, &self.alice, &request).await.unwrap();
        act(&self.app, &self.sam, ticket.id, TicketCommand::Claim, None)
            .await
            .unwrap();
        let ticket = act(
            &self.app,
            &self.sam,
            ticket.id,
            TicketCommand::Approve { inspect: false },
            None,
        )
        .await
        .unwrap();
        assert_eq!(ticket.state, TicketState::Approved);
        ticket
    }

    async fn ticket(&self, id: Uuid) -> Ticket {
        self.app
            .store
            .ticket(id.into(), Scope::Everything)
            .await
            .unwrap()
            .unwrap()
    }

    async fn job(&self, ticket: &Ticket) -> RestoreJob {
        self.app
            .store
            .job_for_ticket(ticket.id)
            .await
            .unwrap()
            .unwrap()
    }

    /// Runs the engine until idle, moving the clock past every backoff,
    /// until the job rests. Returns the job.
    async fn run_to_rest(&self, ticket: &Ticket) -> RestoreJob {
        for _ in 0..50 {
            engine::drain(&self.app).await.unwrap();
            let job = self.job(ticket).await;
            if job.state.is_terminal() {
                return job;
            }
            let wait = job.run_after - self.clock_now();
            self.clock.advance(wait.max(Duration::milliseconds(1)));
        }
        panic!("job did not come to rest");
    }

    fn clock_now(&self) -> DateTime<Utc> {
        use restore_desk::clock::Clock;
        self.clock.now()
    }

    async fn fault(
        &self,
        kind: FaultKind,
        step: JobState,
        permanent: bool,
        remaining: i64,
        delay_ms: i64,
    ) {
        let fault = SandboxFault {
            id: Uuid::new_v4(),
            kind,
            step,
            permanent,
            remaining,
            delay_ms,
            created_at: self.clock_now(),
        };
        let audit = NewEvent::admin(
            self.ada.actor(),
            EventAction::FaultAdd,
            step.as_str(),
            self.clock_now(),
        );
        self.app
            .store
            .sandbox_add_fault(&fault, audit)
            .await
            .unwrap();
    }

    async fn zone(&self, zone: Zone, online: bool) {
        let audit = NewEvent::admin(
            self.ada.actor(),
            EventAction::ZoneOffline,
            zone.as_str(),
            self.clock_now(),
        );
        assert!(
            self.app
                .store
                .set_zone_online("westeurope", zone, online, audit)
                .await
                .unwrap()
        );
    }

    async fn mail(&self, ticket: &Ticket) -> Vec<OutboxMessage> {
        self.app
            .store
            .outbox(&OutboxQuery {
                ticket_id: Some(ticket.id),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn actions(&self, ticket: &Ticket) -> Vec<String> {
        self.app
            .store
            .ticket_events(ticket.id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action.to_string())
            .collect()
    }
}

fn count(items: &[String], what: &str) -> usize {
    items.iter().filter(|i| i.as_str() == what).count()
}

fn sent_to(mail: &[OutboxMessage], kind: &str) -> Vec<String> {
    let mut to: Vec<String> = mail
        .iter()
        .filter(|m| m.kind == kind)
        .map(|m| m.recipient.clone())
        .collect();
    to.sort();
    to
}

async fn happy_path(db: TestDb) {
    let desk = Desk::new(&db).await;
    let target = t0() - Duration::hours(2);
    let ticket = desk.approved(target, "orders-restored").await;
    let job = desk.run_to_rest(&ticket).await;

    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.progress, 100);
    assert_eq!(job.zone, Some(Zone::Az2), "az1 is offline in the demo");
    let report = job.verification_report.clone().unwrap();
    assert!(report.passed(), "{report:?}");
    assert!(report.point_reached.unwrap() <= target);

    let ticket = desk.ticket(ticket.id.uuid()).await;
    assert_eq!(ticket.state, TicketState::Completed);
    assert_eq!(ticket.new_cluster_id, Some(job.new_cluster_id));
    let source = desk
        .app
        .store
        .cluster(ticket.cluster_id, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    let restored = desk
        .app
        .store
        .cluster(job.new_cluster_id, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restored.name, "orders-restored");
    assert_eq!(restored.status, ClusterStatus::Ready);
    assert_eq!(restored.config, source.config);
    assert_eq!(
        (
            restored.subscription_id,
            &restored.region,
            &restored.resource_group
        ),
        (
            source.subscription_id,
            &source.region,
            &source.resource_group
        )
    );
    let from = restored.restored_from.unwrap();
    assert_eq!((from.ticket_id, from.point_in_time), (ticket.id, target));

    let actions = desk.actions(&ticket).await;
    assert_eq!(count(&actions, "job_start"), 1);
    assert_eq!(count(&actions, "job_step_succeeded"), 5);
    assert_eq!(count(&actions, "job_succeeded"), 1);
    let mail = desk.mail(&ticket).await;
    assert_eq!(sent_to(&mail, "restore_started"), ["alice@contoso.example"]);
    assert_eq!(
        sent_to(&mail, "restore_completed"),
        ["alice@contoso.example"]
    );
    let done = mail.iter().find(|m| m.kind == "restore_completed").unwrap();
    assert!(
        done.text_body.contains(&restored.connection.host),
        "{}",
        done.text_body
    );
    // Nothing left to do.
    assert_eq!(engine::drain(&desk.app).await.unwrap(), 0);
}

async fn every_step_failing_once_is_retried(db: TestDb) {
    let desk = Desk::new(&db).await;
    for step in JobState::STEPS {
        desk.fault(FaultKind::FailStep, step, false, 1, 0).await;
    }
    let ticket = desk.approved(t0() - Duration::hours(3), "retried").await;
    engine::drain(&desk.app).await.unwrap();
    let waiting = desk.job(&ticket).await;
    assert_eq!(waiting.state, JobState::Provisioning);
    assert_eq!(waiting.attempt, 2);
    assert_eq!(waiting.last_error_code.as_deref(), Some("injected_failure"));
    assert_eq!(
        waiting.run_after,
        t0() + Duration::seconds(1),
        "backoff from RETRY_BASE_MS"
    );
    assert!(waiting.lease_owner.is_none(), "a waiting job is not held");

    let job = desk.run_to_rest(&ticket).await;
    assert_eq!(job.state, JobState::Succeeded);
    let events = desk.app.store.ticket_events(ticket.id).await.unwrap();
    let failed_in: Vec<_> = events
        .iter()
        .filter(|e| e.action == "job_step_failed")
        .map(|e| e.from_state.clone().unwrap())
        .collect();
    assert_eq!(
        failed_in,
        [
            "provisioning",
            "restoring_snapshot",
            "replaying_log",
            "verifying",
            "finalizing"
        ]
    );
    assert_eq!(
        desk.ticket(ticket.id.uuid()).await.state,
        TicketState::Completed
    );
    let mail = desk.mail(&ticket).await;
    assert_eq!(sent_to(&mail, "restore_started").len(), 1);
    assert_eq!(sent_to(&mail, "restore_completed").len(), 1);
}

async fn permanent_failure_compensates_and_staff_retry(db: TestDb) {
    let desk = Desk::new(&db).await;
    desk.fault(FaultKind::FailStep, JobState::ReplayingLog, true, 1, 0)
        .await;
    let ticket = desk.approved(t0() - Duration::hours(3), "doomed").await;
    let job = desk.run_to_rest(&ticket).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.last_error_code.as_deref(), Some("injected_failure"));
    // The half-built cluster is gone; the source is untouched.
    assert!(
        desk.app
            .store
            .cluster(job.new_cluster_id, Scope::Everything)
            .await
            .unwrap()
            .is_none()
    );
    let ticket = desk.ticket(ticket.id.uuid()).await;
    assert_eq!(ticket.state, TicketState::Failed);
    let actions = desk.actions(&ticket).await;
    assert_eq!(count(&actions, "job_compensation_done"), 1);
    assert_eq!(count(&actions, "job_failed"), 1);
    let mail = desk.mail(&ticket).await;
    assert_eq!(
        sent_to(&mail, "restore_failed"),
        ["alice@contoso.example", "sam@support.example"]
    );
    assert!(
        mail.iter()
            .find(|m| m.kind == "restore_failed")
            .unwrap()
            .text_body
            .contains("injected fault")
    );
    let ticket = act(&desk.app, &desk.sam, ticket.id, TicketCommand::Retry, None)
        .await
        .unwrap();
    assert_eq!(ticket.state, TicketState::Restoring);
    let second = desk.run_to_rest(&ticket).await;
    assert_eq!(second.state, JobState::Succeeded);
    assert_eq!(second.run, 2);
    assert_eq!(second.id, job.id, "one approval, one job");
    assert_ne!(second.new_cluster_id, job.new_cluster_id);
    assert_eq!(
        desk.ticket(ticket.id.uuid()).await.state,
        TicketState::Completed
    );
}

async fn retries_run_out(db: TestDb) {
    let desk = Desk::new(&db).await;
    desk.fault(FaultKind::FailStep, JobState::Verifying, false, 10, 0)
        .await;
    let ticket = desk.approved(t0() - Duration::hours(3), "flaky").await;
    let job = desk.run_to_rest(&ticket).await;
    assert_eq!(job.state, JobState::Failed);
    let actions = desk.actions(&ticket).await;
    assert_eq!(count(&actions, "job_step_failed"), 3, "MAX_ATTEMPTS is 3");
    assert_eq!(
        desk.ticket(ticket.id.uuid()).await.state,
        TicketState::Failed
    );
}

async fn staff_cancel_compensates(db: TestDb) {
    let desk = Desk::new(&db).await;
    desk.fault(FaultKind::FailStep, JobState::ReplayingLog, false, 1, 0)
        .await;
    let ticket = desk.approved(t0() - Duration::hours(3), "stopped").await;
    engine::drain(&desk.app).await.unwrap();
    let waiting = desk.job(&ticket).await;
    assert_eq!(waiting.state, JobState::ReplayingLog);
    assert!(
        desk.app
            .store
            .cluster(waiting.new_cluster_id, Scope::Everything)
            .await
            .unwrap()
            .is_some()
    );

    let cancel = TicketCommand::CancelRestore {
        reason: "customer asked by phone".into(),
    };
    let ticket = act(&desk.app, &desk.sam, ticket.id, cancel, None)
        .await
        .unwrap();
    assert_eq!(ticket.state, TicketState::Cancelled);
    assert_eq!(desk.job(&ticket).await.state, JobState::Cancelling);
    let job = desk.run_to_rest(&ticket).await;
    assert_eq!(job.state, JobState::Cancelled);
    assert!(
        desk.app
            .store
            .cluster(job.new_cluster_id, Scope::Everything)
            .await
            .unwrap()
            .is_none()
    );
    let mail = desk.mail(&ticket).await;
    assert_eq!(sent_to(&mail, "cancelled"), ["alice@contoso.example"]);
    assert!(sent_to(&mail, "restore_completed").is_empty());
    assert!(sent_to(&mail, "restore_failed").is_empty());

    // A customer's cancel before the job starts stops it at once.
    let queued = desk
        .approved(t0() - Duration::hours(4), "never-started")
        .await;
    act(
        &desk.app,
        &desk.alice,
        queued.id,
        TicketCommand::Cancel {
            reason: String::new(),
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(desk.job(&queued).await.state, JobState::Cancelled);
    assert_eq!(engine::drain(&desk.app).await.unwrap(), 0);
}

async fn zone_outage_before_restore(db: TestDb) {
    let desk = Desk::new(&db).await;
    desk.zone(Zone::Az2, false).await;
    let ticket = desk.approved(t0() - Duration::hours(3), "from-az3").await;
    let job = desk.run_to_rest(&ticket).await;
    assert_eq!(
        (job.state, job.zone),
        (JobState::Succeeded, Some(Zone::Az3))
    );

    // Every zone down after approval: retried, then failed with the code.
    let ticket = desk.approved(t0() - Duration::hours(4), "nowhere").await;
    desk.zone(Zone::Az3, false).await;
    let job = desk.run_to_rest(&ticket).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(
        job.last_error_code.as_deref(),
        Some("no_backup_in_online_zone")
    );
    let ticket = desk.ticket(ticket.id.uuid()).await;
    assert_eq!(ticket.state, TicketState::Failed);
    let mail = desk.mail(&ticket).await;
    let failed = mail
        .iter()
        .find(|m| m.kind == "restore_failed" && m.recipient.starts_with("alice"))
        .unwrap();
    assert!(failed.text_body.contains("offline"), "{}", failed.text_body);
}

async fn zone_outage_during_restore_fails_over(db: TestDb) {
    let desk = Desk::new(&db).await;
    // The snapshot restore stalls for a moment: long enough to pull its zone.
    desk.fault(
        FaultKind::SlowStep,
        JobState::RestoringSnapshot,
        false,
        1,
        1500,
    )
    .await;
    let ticket = desk.approved(t0() - Duration::hours(3), "failover").await;
    let app = desk.app.clone();
    let running = tokio::spawn(async move { engine::drain(&app).await.unwrap() });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !desk.app.sandbox.faults().await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow step never began"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    desk.zone(Zone::Az2, false).await;
    running.await.unwrap();
    let interrupted = desk.job(&ticket).await;
    assert_eq!(interrupted.state, JobState::RestoringSnapshot);
    assert_eq!(interrupted.last_error_code.as_deref(), Some("zone_offline"));
    let job = desk.run_to_rest(&ticket).await;
    assert_eq!(
        (job.state, job.zone),
        (JobState::Succeeded, Some(Zone::Az3))
    );
}

async fn target_leaving_the_window_while_queued_fails(db: TestDb) {
    let desk = Desk::new(&db).await;
    let target = t0() - Duration::days(35) + Duration::minutes(30);
    let ticket = desk.approved(target, "too-late").await;
    // The request waits an hour before a worker gets to it.
    desk.clock.advance(Duration::hours(1));
    let job = desk.run_to_rest(&ticket).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(
        job.last_error_code.as_deref(),
        Some("target_outside_retention")
    );
    let actions = desk.actions(&ticket).await;
    assert_eq!(
        count(&actions, "job_step_failed"),
        1,
        "not retried: it cannot help"
    );
    let ticket = desk.ticket(ticket.id.uuid()).await;
    assert_eq!(ticket.state, TicketState::Failed);
}

async fn deadlines_warn_staff_once(db: TestDb) {
    let desk = Desk::new(&db).await;
    let request = |target: DateTime<Utc>, name: &str| FilingRequest {
        transaction: None,
        cluster_id: None,
        target: TargetInput::Instant {
            target_time: target.to_rfc3339(),
            time_zone: None,
        },
        new_cluster_name: name.into(),
        severity: Severity::C,
        description: String::new(),
        inspect: false,
    };
    let orders = desk.cluster_id("orders-prod").await;
    let mut near = request(t0() - Duration::days(34) - Duration::hours(2), "near");
    near.cluster_id = Some(orders.into());
    let mut far = request(t0() - Duration::days(10), "far");
    far.cluster_id = Some(orders.into());
    let near = file_ticket(&desk.app, &desk.alice, &near).await.unwrap();
    file_ticket(&desk.app, &desk.alice, &far).await.unwrap();
    assert_eq!(duties::warn_deadlines(&desk.app).await.unwrap(), 1);
    assert_eq!(duties::warn_deadlines(&desk.app).await.unwrap(), 0);
    let mail = desk.mail(&near).await;
    assert_eq!(sent_to(&mail, "deadline_near"), ["sam@support.example"]);
    assert!(
        desk.ticket(near.id.uuid())
            .await
            .deadline_warned_at
            .is_some()
    );
}

async fn watchdog_flags_a_stalled_step(db: TestDb) {
    let desk = Desk::new(&db).await;
    desk.fault(FaultKind::SlowStep, JobState::ReplayingLog, false, 1, 1500)
        .await;
    let ticket = desk.approved(t0() - Duration::hours(3), "slow").await;
    let app = desk.app.clone();
    let running = tokio::spawn(async move { engine::drain(&app).await.unwrap() });
    while !desk.app.sandbox.faults().await.unwrap().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The sandbox's bound for a step is ten seconds at SANDBOX_STEP_MS=0.
    desk.clock.advance(Duration::seconds(11));
    assert_eq!(duties::watch_stalls(&desk.app).await.unwrap(), 1);
    let stalled = desk.job(&ticket).await;
    assert_eq!(stalled.state, JobState::ReplayingLog);
    assert!(stalled.stalled_since.is_some());
    assert_eq!(
        duties::watch_stalls(&desk.app).await.unwrap(),
        0,
        "flagged once"
    );
    running.await.unwrap();
    let job = desk.run_to_rest(&ticket).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert!(job.stalled_since.is_none());
}

async fn automatic_backups_and_expiry(db: TestDb) {
    let desk = Desk::new(&db).await;
    let orders = desk.cluster_id("orders-prod").await;
    let before = desk.app.sandbox.snapshots(orders.into()).await.unwrap();
    assert!(before.len() >= 60);
    let round = desk.app.backend.run_backups(t0()).await.unwrap();
    assert_eq!(round.snapshots_taken, 0, "the last daily backup is recent");
    assert!(round.snapshots_expired >= 20);
    let kept = desk.app.sandbox.snapshots(orders.into()).await.unwrap();
    let cutoff = t0() - Duration::days(35);
    assert_eq!(
        kept.iter().filter(|s| s.finished_at <= cutoff).count(),
        1,
        "one snapshot before the cutoff keeps the window whole"
    );
    let cluster = desk
        .app
        .store
        .cluster(orders.into(), Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    let catalog = desk.app.backend.catalog(&cluster).await.unwrap();
    let window = restore_desk::domain::catalog::restorable_window(
        &catalog,
        &cluster.life(),
        &desk.app.policy(),
        t0(),
    )
    .unwrap();
    assert_eq!(window.earliest, cutoff);

    desk.clock.advance(Duration::hours(16));
    let round = desk
        .app
        .backend
        .run_backups(t0() + Duration::hours(16))
        .await
        .unwrap();
    assert_eq!(
        round.snapshots_taken, 4,
        "every live cluster, not the deleted one"
    );
    let newest = desk
        .app
        .sandbox
        .snapshots(orders.into())
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(newest.finished_at, t0() + Duration::hours(16));
    assert!(
        !newest.zones.contains(Zone::Az1),
        "az1 is offline: no copy there"
    );
}

async fn a_stopping_process_hands_over_its_duties_at_once(db: TestDb) {
    let desk = Desk::new(&db).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut engine = engine::spawn(desk.app.clone(), shutdown.clone());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    // Wait until this process holds the duties.
    while desk
        .app
        .store
        .duty_holder(duties::DUTY, desk.clock.now())
        .await
        .unwrap()
        .is_none_or(|owner| owner != *desk.app.instance)
    {
        assert!(tokio::time::Instant::now() < deadline, "duties never taken");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    while engine.join_next().await.is_some() {}
    // The clock has not moved: only a release lets another process in now.
    assert_eq!(
        desk.app
            .store
            .duty_holder(duties::DUTY, desk.clock.now())
            .await
            .unwrap(),
        None
    );
    assert!(
        desk.app
            .store
            .take_duty(
                duties::DUTY,
                "next-process",
                desk.clock.now(),
                Duration::seconds(60)
            )
            .await
            .unwrap()
    );
}

/// A restore host slow to measure a restore's work: the start checks
/// outlast the lease, which its worker keeps meanwhile, so the job starts
/// instead of being taken from the worker mid-check over and over.
mod slow_room {
    use std::sync::Arc;

    use async_trait::async_trait;
    use chrono::{DateTime, Duration, Utc};
    use restore_desk::backend::*;
    use restore_desk::clock::ManualClock;
    use restore_desk::domain::catalog::{Catalog, RestorePlan, ZoneSet};
    use restore_desk::domain::cluster::{Cluster, Connection};
    use restore_desk::domain::transactions::{
        LogRead, LoggedTransaction, RelationFile, RelationName,
    };
    use restore_desk::domain::verification::{Check, ObservedCluster};
    use tokio_util::sync::CancellationToken;

    /// The simulated fleet, with a measure of a restore's work that takes real time
    /// while the desk's clock runs twice as fast.
    pub struct SlowRoom {
        pub inner: DynBackend,
        pub clock: ManualClock,
    }

    #[async_trait]
    impl Backend for SlowRoom {
        fn name(&self) -> &'static str {
            self.inner.name()
        }
        async fn catalog(&self, c: &Cluster) -> Result<Catalog, FleetError> {
            self.inner.catalog(c).await
        }
        async fn online_zones(&self, c: &Cluster) -> Result<ZoneSet, FleetError> {
            self.inner.online_zones(c).await
        }
        async fn provision(
            &self,
            j: &JobContext,
            p: &dyn Progress,
            c: &CancellationToken,
        ) -> Result<Connection, StepError> {
            self.inner.provision(j, p, c).await
        }
        async fn restore_snapshot(
            &self,
            j: &JobContext,
            plan: &RestorePlan,
            p: &dyn Progress,
            c: &CancellationToken,
        ) -> Result<(), StepError> {
            self.inner.restore_snapshot(j, plan, p, c).await
        }
        async fn replay_log(
            &self,
            j: &JobContext,
            p: &dyn Progress,
            c: &CancellationToken,
        ) -> Result<Option<DateTime<Utc>>, StepError> {
            self.inner.replay_log(j, p, c).await
        }
        async fn restore_work(
            &self,
            c: &Cluster,
            plan: &RestorePlan,
            target: DateTime<Utc>,
        ) -> Result<restore_desk::domain::eta::Work, FleetError> {
            // Four lease lengths of the desk's time in two of real time.
            for _ in 0..20 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                self.clock.advance(Duration::milliseconds(200));
            }
            self.inner.restore_work(c, plan, target).await
        }
        async fn free_space(&self) -> Result<i64, FleetError> {
            self.inner.free_space().await
        }
        async fn examine(
            &self,
            j: &JobContext,
            c: &CancellationToken,
        ) -> Result<Vec<Check>, StepError> {
            self.inner.examine(j, c).await
        }
        async fn inspect(
            &self,
            j: &JobContext,
            c: &CancellationToken,
        ) -> Result<ObservedCluster, StepError> {
            self.inner.inspect(j, c).await
        }
        async fn finalize(
            &self,
            j: &JobContext,
            c: &CancellationToken,
        ) -> Result<Connection, StepError> {
            self.inner.finalize(j, c).await
        }
        async fn teardown(&self, j: &JobContext) -> Result<(), StepError> {
            self.inner.teardown(j).await
        }
        async fn run_backups(&self, now: DateTime<Utc>) -> Result<BackupRound, FleetError> {
            self.inner.run_backups(now).await
        }
        async fn transactions(
            &self,
            c: &Cluster,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> Result<LogRead, FleetError> {
            self.inner.transactions(c, from, to).await
        }
        async fn transaction(
            &self,
            c: &Cluster,
            xid: u64,
        ) -> Result<Option<LoggedTransaction>, FleetError> {
            self.inner.transaction(c, xid).await
        }
        async fn relation_names(
            &self,
            c: &Cluster,
        ) -> Result<Vec<(RelationFile, RelationName)>, FleetError> {
            self.inner.relation_names(c).await
        }
    }

    pub fn wrap(app: &mut restore_desk::app::App, clock: ManualClock) {
        app.backend = Arc::new(SlowRoom {
            inner: app.backend.clone(),
            clock,
        });
    }
}

async fn a_slow_room_check_keeps_its_lease(db: TestDb) {
    let desk = Desk::built(&db, &["--lease-seconds", "1"], |app, clock| {
        slow_room::wrap(app, clock.clone())
    })
    .await;
    let ticket = desk.approved(t0() - Duration::hours(2), "slow-room").await;
    let job = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        desk.run_to_rest(&ticket),
    )
    .await
    .expect("the job started and came to rest");
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.last_error);
    let actions = desk.actions(&ticket).await;
    assert_eq!(count(&actions, "job_start"), 1, "{actions:?}");
}

crate::both_databases!(
    a_slow_room_check_keeps_its_lease,
    a_stopping_process_hands_over_its_duties_at_once,
    happy_path,
    every_step_failing_once_is_retried,
    permanent_failure_compensates_and_staff_retry,
    retries_run_out,
    staff_cancel_compensates,
    zone_outage_before_restore,
    zone_outage_during_restore_fails_over,
    target_leaving_the_window_while_queued_fails,
    deadlines_warn_staff_once,
    watchdog_flags_a_stalled_step,
    automatic_backups_and_expiry,
);
