//! Restore drills on the simulated fleet, on SQLite and on PostgreSQL: a
//! scheduled drill from each zone in turn passes and leaves nothing behind;
//! a damaged copy fails its zone's drill, naming the check and the zone,
//! emails staff and puts the cluster at risk while the other zones pass; a
//! customer's restore takes a host a drill holds at once, and the drill
//! passes later; a restore waits, with its reason, for disk room.

mod common;

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use common::{TestDb, demo_app, t0};
use restore_desk::app::App;
use restore_desk::clock::{Clock, ManualClock, SystemClock};
use restore_desk::desk::{FilingRequest, act, drills, file_ticket};
use restore_desk::domain::catalog::Zone;
use restore_desk::domain::ids::{ClusterId, JobId};
use restore_desk::domain::restore_job::{JobKind, JobState};
use restore_desk::domain::sla::Severity;
use restore_desk::domain::ticket::{TicketCommand, TicketState};
use restore_desk::domain::validation::TargetInput;
use restore_desk::engine;
use restore_desk::store::{
    AdminWrite, Commit, Email, EventAction, NewEvent, OutboxQuery, RestoreJob, Scope, User,
};

async fn user(app: &App, email: &str) -> User {
    app.store
        .user_by_email(&Email::parse(email).unwrap())
        .await
        .unwrap()
        .unwrap()
}

async fn cluster_id(app: &App, name: &str) -> ClusterId {
    app.store
        .clusters(Scope::Everything, true)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap()
        .id
}

async fn job(app: &App, id: JobId) -> RestoreJob {
    app.store.job(id).await.unwrap().unwrap()
}

async fn set_zone(app: &App, zone: Zone, online: bool) {
    let ada = user(app, "ada@admin.example").await;
    let audit = NewEvent::admin(
        ada.actor(),
        EventAction::ZoneOnline,
        zone.as_str(),
        app.now(),
    );
    assert!(
        app.store
            .set_zone_online("westeurope", zone, online, audit)
            .await
            .unwrap()
    );
}

/// Every drill job of the desk, oldest first.
async fn drill_jobs(app: &App) -> Vec<RestoreJob> {
    let mut jobs: Vec<RestoreJob> = app
        .store
        .drills(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.job)
        .collect();
    jobs.reverse();
    jobs
}

/// Drives the engine to idle, moving a manual clock past every backoff.
async fn drain_all(app: &App, clock: &ManualClock) {
    for _ in 0..30 {
        engine::drain(app).await.unwrap();
        let waiting = app
            .store
            .jobs(true, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.run_after)
            .max();
        match waiting {
            Some(at) => clock.advance((at - clock.now()).max(Duration::milliseconds(1))),
            None => return,
        }
    }
    panic!("jobs did not come to rest");
}

async fn scheduled_drills_take_turns_and_leave_nothing_behind(db: TestDb) {
    let clock = ManualClock::new(t0());
    let app = demo_app(&db, clock.clone(), &["--drill-interval-hours", "168"]).await;
    let clusters_before = app.store.clusters(Scope::Everything, true).await.unwrap();
    let queued = drills::schedule(&app).await.unwrap();
    // Every live cluster with backups; not old-billing, deleted.
    assert_eq!(queued, 4);
    assert_eq!(drills::schedule(&app).await.unwrap(), 0, "one at a time");
    drain_all(&app, &clock).await;

    let first = drill_jobs(&app).await;
    assert_eq!(first.len(), 4);
    for drill in &first {
        assert_eq!(drill.kind, JobKind::Drill);
        assert_eq!(drill.state, JobState::Succeeded, "{drill:?}");
        assert_eq!(drill.ticket_id, None);
        // az1 starts offline in the demo: the first turn goes to az2.
        assert_eq!(drill.drill_zone, Some(Zone::Az2));
        assert_eq!(drill.zone, Some(Zone::Az2), "restored from its own zone");
        let report = drill.verification_report.as_ref().unwrap();
        let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
        assert!(names.contains(&"amcheck"), "{names:?}");
        assert!(report.passed());
        assert_eq!(drill.host.as_deref(), Some("local"));
        assert!(
            drill.work.is_some(),
            "its work was measured before it began"
        );
    }
    // Nothing of the drills is left as a cluster.
    let clusters_after = app.store.clusters(Scope::Everything, true).await.unwrap();
    assert_eq!(clusters_before, clusters_after);
    // No email for a passing drill, and no ticket moved.
    let mail = app
        .store
        .outbox(&OutboxQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(mail.iter().all(|m| m.kind != "drill_failed"));

    // Not due again before the interval; then the next zone's turn.
    clock.advance(Duration::days(3));
    assert_eq!(drills::schedule(&app).await.unwrap(), 0);
    clock.advance(Duration::days(4));
    set_zone(&app, Zone::Az1, true).await;
    assert_eq!(drills::schedule(&app).await.unwrap(), 4);
    drain_all(&app, &clock).await;
    let second: Vec<RestoreJob> = drill_jobs(&app).await.into_iter().skip(4).collect();
    assert_eq!(second.len(), 4);
    for drill in &second {
        assert_eq!(drill.state, JobState::Succeeded);
        assert_eq!(
            drill.drill_zone,
            Some(Zone::Az1),
            "never drilled comes first"
        );
    }
    let orders = drills::of_cluster(&app, cluster_id(&app, "orders-prod").await)
        .await
        .unwrap();
    assert_eq!(orders.results.len(), 2);
    assert!(orders.at_risk().is_empty());
    assert_eq!(orders.last().unwrap().zone, Zone::Az1);
}

async fn a_damaged_copy_fails_its_zone_s_drill_and_puts_the_cluster_at_risk(db: TestDb) {
    let clock = ManualClock::new(t0());
    let app = demo_app(&db, clock.clone(), &[]).await;
    let ada = user(&app, "ada@admin.example").await;
    set_zone(&app, Zone::Az1, true).await;
    let orders = cluster_id(&app, "orders-prod").await;
    // Every copy of orders-prod in az2 goes bad: whichever the drill picks.
    for snapshot in app.sandbox.snapshots(orders).await.unwrap() {
        if snapshot.zones.contains(Zone::Az2) {
            let write = AdminWrite::DamageSnapshot {
                snapshot_id: snapshot.id.clone(),
                zone: Zone::Az2,
            };
            app.store
                .commit(&Commit::admin(write, None, clock.now()))
                .await
                .unwrap();
        }
    }
    // One drill per zone, in turn.
    let mut by_zone = Vec::new();
    for _ in 0..3 {
        let id = drills::start_now(&app, &ada, orders).await.unwrap();
        drain_all(&app, &clock).await;
        let done = job(&app, id).await;
        by_zone.push((done.drill_zone.unwrap(), done));
    }
    let zones: Vec<Zone> = by_zone.iter().map(|(z, _)| *z).collect();
    assert_eq!(zones, vec![Zone::Az1, Zone::Az2, Zone::Az3]);
    for (zone, drill) in &by_zone {
        let expected = if *zone == Zone::Az2 {
            JobState::Failed
        } else {
            JobState::Succeeded
        };
        assert_eq!(drill.state, expected, "{zone}: {drill:?}");
    }
    let failed = &by_zone[1].1;
    assert_eq!(failed.last_error_code.as_deref(), Some("backup_damaged"));
    assert_eq!(failed.failed_step, Some(JobState::RestoringSnapshot));

    let results = drills::of_cluster(&app, orders).await.unwrap();
    let risk = results.at_risk();
    assert_eq!(risk.len(), 1);
    assert_eq!(risk[0].zone, Zone::Az2);
    assert_eq!(risk[0].failed_check.as_deref(), Some("snapshot restore"));
    assert!(risk[0].reason.as_deref().unwrap().contains("az2"));
    let words = results.risk_words().unwrap();
    assert!(
        words.contains("az2") && words.contains("snapshot restore"),
        "{words}"
    );

    // Staff hear of it once, with the check and the zone.
    let mail: Vec<_> = app
        .store
        .outbox(&OutboxQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "drill_failed")
        .collect();
    assert_eq!(mail.len(), 1, "one staff member in the demo");
    assert_eq!(mail[0].recipient, "sam@support.example");
    assert!(mail[0].subject.contains("orders-prod") && mail[0].subject.contains("az2"));
    assert!(mail[0].text_body.contains("snapshot restore"));
    assert!(mail[0].text_body.contains("restore at risk"));

    // Nothing of the failed drill is left either.
    assert!(
        app.store
            .clusters(Scope::Everything, true)
            .await
            .unwrap()
            .iter()
            .all(|c| !c.name.starts_with("drill-"))
    );
    // A customer's restore from the other zones still works.
    let alice = user(&app, "alice@contoso.example").await;
    let sam = user(&app, "sam@support.example").await;
    let target = clock.now() - Duration::hours(2);
    let ticket = approved(&app, &alice, &sam, orders, target, "orders-after-drill").await;
    drain_all(&app, &clock).await;
    let restore = app.store.job_for_ticket(ticket).await.unwrap().unwrap();
    assert_eq!(restore.state, JobState::Succeeded, "{restore:?}");
}

async fn approved(
    app: &App,
    alice: &User,
    sam: &User,
    cluster: ClusterId,
    target: DateTime<Utc>,
    name: &str,
) -> restore_desk::domain::ids::TicketId {
    let request = FilingRequest {
        transaction: None,
        cluster_id: Some(cluster),
        target: TargetInput::Instant {
            target_time: target.to_rfc3339(),
            time_zone: Some("UTC".into()),
        },
        new_cluster_name: name.into(),
        severity: Severity::A,
        description: "restore please".into(),
        inspect: false,
    };
    let ticket = file_ticket(app, alice, &request).await.unwrap();
    act(app, sam, ticket.id, TicketCommand::Claim, None)
        .await
        .unwrap();
    let ticket = act(
        app,
        sam,
        ticket.id,
        TicketCommand::Approve { inspect: false },
        None,
    )
    .await
    .unwrap();
    assert_eq!(ticket.state, TicketState::Approved);
    ticket.id
}

async fn a_customer_s_restore_steps_past_a_damaged_copy(db: TestDb) {
    let clock = ManualClock::new(t0());
    let app = demo_app(&db, clock.clone(), &[]).await;
    set_zone(&app, Zone::Az1, true).await;
    let orders = cluster_id(&app, "orders-prod").await;
    // az1, the first zone a plan tries, holds only damaged copies.
    for snapshot in app.sandbox.snapshots(orders).await.unwrap() {
        if snapshot.zones.contains(Zone::Az1) {
            let write = AdminWrite::DamageSnapshot {
                snapshot_id: snapshot.id,
                zone: Zone::Az1,
            };
            app.store
                .commit(&Commit::admin(write, None, clock.now()))
                .await
                .unwrap();
        }
    }
    let alice = user(&app, "alice@contoso.example").await;
    let sam = user(&app, "sam@support.example").await;
    let target = clock.now() - Duration::hours(5);
    let ticket = approved(&app, &alice, &sam, orders, target, "orders-past-damage").await;
    drain_all(&app, &clock).await;
    let restore = app.store.job_for_ticket(ticket).await.unwrap().unwrap();
    assert_eq!(restore.state, JobState::Succeeded, "{restore:?}");
    assert_ne!(restore.zone, Some(Zone::Az1), "restored from a good copy");
    let events = app.store.ticket_events(ticket).await.unwrap();
    let failed: Vec<&str> = events
        .iter()
        .filter(|e| e.action == EventAction::JobStepFailed)
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].contains("in az1 is damaged"), "{failed:?}");
}

/// Polls `check` every 20 ms until it holds, for at most `within`.
async fn until<F, Fut>(within: StdDuration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited in vain: {what}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

async fn a_customer_s_restore_takes_the_place_of_a_drill_at_once(db: TestDb) {
    // One restore host with room for one restore, steps a person can watch.
    let app = restore_desk::cli::build(
        common::settings(
            &db,
            &[
                "--sandbox-step-ms",
                "400",
                "--max-restores",
                "1",
                "--workers",
                "2",
                "--scheduler-seconds",
                "3600",
            ],
        ),
        std::sync::Arc::new(SystemClock),
    )
    .await
    .unwrap();
    assert!(restore_desk::demo::seed(&app, "demo").await.unwrap());
    let ada = user(&app, "ada@admin.example").await;
    let alice = user(&app, "alice@contoso.example").await;
    let sam = user(&app, "sam@support.example").await;
    let orders = cluster_id(&app, "orders-prod").await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut tasks = engine::spawn(app.clone(), shutdown.clone());

    let drill = drills::start_now(&app, &ada, orders).await.unwrap();
    until(
        StdDuration::from_secs(20),
        "the drill copies its snapshot",
        || {
            let app = app.clone();
            async move { job(&app, drill).await.state >= JobState::RestoringSnapshot }
        },
    )
    .await;

    let target = app.now() - Duration::hours(3);
    let ticket = approved(&app, &alice, &sam, orders, target, "orders-now").await;
    let approved_at = std::time::Instant::now();
    let restore = || {
        let app = app.clone();
        async move { app.store.job_for_ticket(ticket).await.unwrap().unwrap() }
    };
    until(
        StdDuration::from_secs(10),
        "the customer's restore starts",
        || {
            let restore = restore();
            async move { restore.await.state >= JobState::Provisioning }
        },
    )
    .await;
    let started_after = approved_at.elapsed();
    // At once: within a couple of the workers' half-second polls, not after
    // the drill's remaining steps (2 s each here).
    assert!(
        started_after < StdDuration::from_secs(3),
        "the restore waited {started_after:?} for the drill"
    );
    let preempted = job(&app, drill).await;
    assert!(
        matches!(preempted.state, JobState::Preempted | JobState::Queued),
        "the drill gave way: {preempted:?}"
    );
    // The host never ran two restores at once.
    let running = app
        .store
        .jobs(true, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.host.is_some() && j.state.is_build_step())
        .count();
    assert_eq!(running, 1);

    until(
        StdDuration::from_secs(60),
        "the customer's restore completes",
        || {
            let restore = restore();
            async move { restore.await.state == JobState::Succeeded }
        },
    )
    .await;
    until(
        StdDuration::from_secs(60),
        "the drill runs again and passes",
        || {
            let app = app.clone();
            async move { job(&app, drill).await.state == JobState::Succeeded }
        },
    )
    .await;
    let passed = job(&app, drill).await;
    assert_eq!(passed.run, 2, "started over from nothing");
    let events = app.store.audit_log(None, 500).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.job_id == Some(drill) && e.action == EventAction::JobPreempt)
    );
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
}

async fn a_restore_waits_for_disk_room_with_its_reason(db: TestDb) {
    let clock = ManualClock::new(t0());
    // A host with 1 GiB for restores: orders-prod's backup is larger.
    let app = demo_app(&db, clock.clone(), &["--sandbox-host-disk-gib", "1"]).await;
    let alice = user(&app, "alice@contoso.example").await;
    let sam = user(&app, "sam@support.example").await;
    let orders = cluster_id(&app, "orders-prod").await;
    let clusters_before = app.store.clusters(Scope::Everything, true).await.unwrap();
    let target = clock.now() - Duration::hours(2);
    let ticket = approved(&app, &alice, &sam, orders, target, "orders-no-room").await;
    for _ in 0..3 {
        engine::drain(&app).await.unwrap();
        clock.advance(Duration::seconds(20));
    }
    let waiting = app.store.job_for_ticket(ticket).await.unwrap().unwrap();
    assert_eq!(waiting.state, JobState::Queued, "never started half-way");
    assert_eq!(
        waiting.last_error_code.as_deref(),
        Some("insufficient_disk")
    );
    let reason = waiting.last_error.clone().unwrap();
    assert!(reason.starts_with("local has 1.0 GB free"), "{reason}");
    assert!(reason.contains("starts as soon as"), "{reason}");
    assert_eq!(waiting.attempt, 1, "waiting costs no attempt");
    assert_eq!(waiting.host, None, "any host may take it");
    let ticket = app
        .store
        .ticket(ticket, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ticket.state, TicketState::Approved);
    assert_eq!(
        app.store.clusters(Scope::Everything, true).await.unwrap(),
        clusters_before,
        "no cluster record for a restore that did not start"
    );
}

crate::both_databases!(
    multi_thread;
    scheduled_drills_take_turns_and_leave_nothing_behind,
    a_damaged_copy_fails_its_zone_s_drill_and_puts_the_cluster_at_risk,
    a_restore_waits_for_disk_room_with_its_reason,
    a_customer_s_restore_steps_past_a_damaged_copy,
    a_customer_s_restore_takes_the_place_of_a_drill_at_once,
);
