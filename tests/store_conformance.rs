//! One conformance suite, two databases: every test below runs against a
//! fresh SQLite file and a fresh PostgreSQL database. A difference in
//! behaviour between them is a bug.

mod common;

use chrono::Duration;
use restore_desk::domain::ids::{ClusterId, JobId, TicketId, UserId};
use uuid::Uuid;

use common::{Seed, TestDb, seed, t0};
use restore_desk::domain::actor::{Actor, Role};
use restore_desk::domain::catalog::{Zone, ZoneSet};
use restore_desk::domain::restore_job::JobState;
use restore_desk::domain::sla::{self, Severity};
use restore_desk::domain::ticket::{TicketState, Visibility};
use restore_desk::domain::validation::ValidationReport;
use restore_desk::store::Email;
use restore_desk::store::EventAction;
use restore_desk::store::*;

crate::both_databases!(
    migrating_twice_is_a_no_op,
    tickets_round_trip,
    a_filing_is_numbered_in_its_own_transaction,
    every_rust_state_is_accepted_by_the_database,
    a_transition_writes_state_events_messages_and_outbox_together,
    concurrent_changes_on_one_version_apply_once,
    a_failed_commit_leaves_nothing_behind,
    open_tickets_reserve_their_cluster_name,
    one_job_per_ticket,
    job_leases_fence_stale_workers,
    outbox_claims_and_settles_each_attempt_once,
    queue_is_ordered_by_the_first_clock_then_severity_in_keyset_pages,
    customers_see_only_their_subscription,
    internal_messages_are_filtered_out,
    sandbox_catalog_round_trips_and_expires,
    relation_names_and_placed_transactions_round_trip,
    users_tokens_and_zones,
    display_names_in_one_read,
    a_duty_has_one_holder_at_a_time,
    commits_with_new_work_notify_other_processes,
    the_pool_handle_is_the_stores_own_database,
    fleet_hosts_round_trip_with_one_host_per_zone,
    a_host_holding_an_unfinished_job_is_not_removed,
    a_silent_host_s_unheld_jobs_are_found_and_its_kept_runs_listed,
    a_host_with_too_little_room_leaves_a_job_to_another,
);

fn report(target: chrono::DateTime<chrono::Utc>) -> ValidationReport {
    ValidationReport {
        checked_at: t0(),
        target,
        window: None,
        online_zones: ZoneSet::ALL,
        plan: None,
        error: None,
        deadline: target + Duration::days(35),
    }
}

fn new_ticket(seed: &Seed, number: i64, state: TicketState, name: &str) -> NewTicket {
    let target = t0() - Duration::hours(number);
    NewTicket {
        transaction: None,
        id: TicketId::new(),
        number: Some(number),
        subscription_id: seed.contoso.id,
        requester_id: seed.alice.id,
        cluster_id: seed.orders.id,
        resource_group: "rg-prod".into(),
        target_time: target,
        time_zone: "Europe/Amsterdam".into(),
        new_cluster_name: name.into(),
        severity: Severity::B,
        description: "dropped a table".into(),
        state,
        validation_report: report(target),
        deadline: target + Duration::days(35),
        first_response_due: t0() + Duration::hours(4),
        inspect: false,
    }
}

async fn create(store: &DynStore, ticket: NewTicket) -> Ticket {
    let id = ticket.id;
    let mut commit = Commit::at(t0());
    commit.ticket = Some(TicketWrite::Create(ticket));
    store.commit(&commit).await.expect("create ticket");
    store.ticket(id, Scope::Everything).await.unwrap().unwrap()
}

fn event(ticket: &Ticket, actor: Actor, action: &str, to: TicketState) -> NewEvent {
    NewEvent {
        ticket_id: Some(ticket.id),
        job_id: None,
        actor,
        action: action.parse().expect("an event action"),
        from_state: Some(ticket.state.as_str().into()),
        to_state: Some(to.as_str().into()),
        detail: String::new(),
        at: t0(),
    }
}

fn outbox(ticket: &Ticket, key: &str) -> NewOutboxMessage {
    NewOutboxMessage {
        id: Uuid::new_v4(),
        dedupe_key: key.into(),
        ticket_id: Some(ticket.id),
        kind: "test".into(),
        recipient: "alice@contoso.example".into(),
        subject: format!("[{}] test", ticket.reference()),
        text_body: "text".into(),
        html_body: "<p>html</p>".into(),
        endpoint_id: None,
    }
}

fn claim_commit(ticket: &Ticket, seed: &Seed, version: i64) -> Commit {
    let mut change = TicketChange::new(
        ticket.id,
        TicketGuard {
            state: TicketState::Triage,
            version: Some(version),
        },
        TicketState::InReview,
    );
    change.assign = Some(seed.sam.id);
    let mut commit = Commit::at(t0() + Duration::minutes(5));
    commit.ticket = Some(TicketWrite::Change(change));
    commit.events.push(event(
        ticket,
        seed.sam.actor(),
        "claim",
        TicketState::InReview,
    ));
    commit
}

async fn migrating_twice_is_a_no_op(db: TestDb) {
    let store = db.store().await;
    store.migrate().await.expect("second migration");
    assert!(store.is_empty().await.unwrap());
    seed(&store).await;
    assert!(!store.is_empty().await.unwrap());
}

async fn a_filing_is_numbered_in_its_own_transaction(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let file = |name: &str| {
        let mut new = new_ticket(&seed, 1, TicketState::Triage, name);
        new.number = None;
        let mut commit = Commit::at(t0());
        let pending = new.as_ticket(t0());
        assert_eq!(pending.reference(), PENDING_REFERENCE);
        commit
            .outbox
            .push(outbox(&pending, &format!("filed:{name}")));
        commit.ticket = Some(TicketWrite::Create(new));
        commit
    };
    let first = store.commit(&file("first-copy")).await.unwrap();
    assert_eq!(first.ticket_number, Some(1));
    // Refused in its transaction (the name is held): no number is used up.
    assert!(matches!(
        store.commit(&file("first-copy")).await,
        Err(StoreError::Duplicate(Unique::ClusterName))
    ));
    let second = store.commit(&file("second-copy")).await.unwrap();
    assert_eq!(second.ticket_number, Some(2), "no gap");
    let subjects: Vec<String> = store
        .outbox(&OutboxQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert!(
        subjects.contains(&"[RD-000001] test".to_string()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&"[RD-000002] test".to_string()),
        "{subjects:?}"
    );
}

async fn tickets_round_trip(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let number = store.allocate_ticket_number().await.unwrap();
    assert_eq!(number, 1);
    assert_eq!(store.allocate_ticket_number().await.unwrap(), 2);
    let new = new_ticket(&seed, number, TicketState::Triage, "orders-restored");
    let ticket = create(&store, new.clone()).await;
    assert_eq!(Some(ticket.number), new.number);
    assert_eq!(ticket.reference(), "RD-000001");
    assert_eq!(ticket.target_time, new.target_time);
    assert_eq!(ticket.time_zone, new.time_zone);
    assert_eq!(ticket.validation_report, new.validation_report);
    assert_eq!(ticket.state, TicketState::Triage);
    assert_eq!(ticket.version, 1);
    assert_eq!(ticket.severity, Severity::B);
    assert_eq!(ticket.created_at, t0());
    let by_number = store
        .ticket_by_number(number, Scope::Subscription(seed.contoso.id))
        .await
        .unwrap();
    assert_eq!(by_number.as_ref(), Some(&ticket));
    let cluster = store
        .cluster(seed.orders.id, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cluster, seed.orders);
}

async fn every_rust_state_is_accepted_by_the_database(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    for (i, state) in TicketState::ALL.into_iter().enumerate() {
        let t = create(
            &store,
            new_ticket(&seed, 100 + i as i64, state, &format!("name-{i}")),
        )
        .await;
        assert_eq!(t.state, state);
    }
    // Walk one job through every job state.
    let ticket = create(
        &store,
        new_ticket(&seed, 1, TicketState::Approved, "walker"),
    )
    .await;
    let job_id = Uuid::new_v4();
    let mut commit = Commit::at(t0());
    commit.job = Some(JobWrite::Create(NewJob {
        kind: restore_desk::domain::restore_job::JobKind::Restore,
        drill_zone: None,
        id: job_id.into(),
        ticket_id: Some(ticket.id),
        source_cluster_id: seed.orders.id,
        target_time: ticket.target_time,
        new_cluster_id: ClusterId::new(),
    }));
    store.commit(&commit).await.unwrap();
    let mut from = JobState::Queued;
    for to in JobState::ALL.into_iter().skip(1) {
        let mut commit = Commit::at(t0());
        commit.job = Some(JobWrite::Change(Box::new(JobChange {
            job_id: job_id.into(),
            guard: JobGuard::State { run: 1 },
            from,
            patch: begin_step(to, t0()),
        })));
        store.commit(&commit).await.unwrap();
        assert_eq!(store.job(job_id.into()).await.unwrap().unwrap().state, to);
        from = to;
    }
    for role in Role::PEOPLE {
        let u = common::user(
            &format!("{role}@x.example"),
            role,
            (role == Role::Customer).then_some(seed.contoso.id),
        );
        store.create_user(&u, None).await.unwrap();
        assert_eq!(store.user(u.id).await.unwrap().unwrap().role, role);
    }
}

async fn a_transition_writes_state_events_messages_and_outbox_together(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let ticket = create(
        &store,
        new_ticket(&seed, 1, TicketState::Triage, "restored-1"),
    )
    .await;
    let mut commit = claim_commit(&ticket, &seed, 1);
    commit.messages.push(NewMessage {
        id: Uuid::new_v4(),
        ticket_id: ticket.id,
        author: seed.sam.actor(),
        visibility: Visibility::Public,
        body: "Looking at it now".into(),
    });
    commit.outbox.push(outbox(&ticket, "claim-1"));
    store.commit(&commit).await.unwrap();

    let after = store
        .ticket(ticket.id, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.state, TicketState::InReview);
    assert_eq!(after.version, 2);
    assert_eq!(after.assignee_id, Some(seed.sam.id));
    assert_eq!(after.updated_at, t0() + Duration::minutes(5));
    let events = store.ticket_events(ticket.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "claim");
    assert_eq!(events[0].actor_id, Some(seed.sam.id));
    assert_eq!(store.messages(ticket.id, false).await.unwrap().len(), 1);
    let mail = store
        .outbox(&OutboxQuery {
            ticket_id: Some(ticket.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].status, OutboxStatus::Pending);
}

async fn concurrent_changes_on_one_version_apply_once(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let ticket = create(
        &store,
        new_ticket(&seed, 1, TicketState::Triage, "restored-1"),
    )
    .await;
    let mut attempts = Vec::new();
    for i in 0..6 {
        let store = store.clone();
        let mut commit = claim_commit(&ticket, &seed, 1);
        commit.outbox.push(outbox(&ticket, &format!("claim-{i}")));
        attempts.push(tokio::spawn(async move { store.commit(&commit).await }));
    }
    let mut applied = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => applied += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(applied, 1);
    let after = store
        .ticket(ticket.id, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.version, 2);
    assert_eq!(store.ticket_events(ticket.id).await.unwrap().len(), 1);
    let mail = store
        .outbox(&OutboxQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(mail.len(), 1);
}

async fn a_failed_commit_leaves_nothing_behind(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let ticket = create(
        &store,
        new_ticket(&seed, 1, TicketState::Triage, "restored-1"),
    )
    .await;
    let mut first = Commit::at(t0());
    first.outbox.push(outbox(&ticket, "only-once"));
    store.commit(&first).await.unwrap();

    // The last write of this commit breaks a unique rule: all of it goes.
    let mut commit = claim_commit(&ticket, &seed, 1);
    commit.messages.push(NewMessage {
        id: Uuid::new_v4(),
        ticket_id: ticket.id,
        author: seed.sam.actor(),
        visibility: Visibility::Internal,
        body: "note".into(),
    });
    commit.outbox.push(outbox(&ticket, "only-once"));
    match store.commit(&commit).await {
        Err(StoreError::Duplicate(Unique::OutboxDedupeKey)) => {}
        other => panic!("expected a duplicate outbox key, got {other:?}"),
    }
    // A stale guard: the approval's job is not created either.
    let mut stale = Commit::at(t0());
    stale.ticket = Some(TicketWrite::Change(TicketChange::new(
        ticket.id,
        TicketGuard {
            state: TicketState::InReview,
            version: Some(1),
        },
        TicketState::Approved,
    )));
    stale.job = Some(JobWrite::Create(NewJob {
        kind: restore_desk::domain::restore_job::JobKind::Restore,
        drill_zone: None,
        id: JobId::new(),
        ticket_id: Some(ticket.id),
        source_cluster_id: seed.orders.id,
        target_time: ticket.target_time,
        new_cluster_id: ClusterId::new(),
    }));
    stale.outbox.push(outbox(&ticket, "approved"));
    assert!(matches!(
        store.commit(&stale).await,
        Err(StoreError::Conflict(_))
    ));

    let after = store
        .ticket(ticket.id, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, ticket);
    assert!(store.ticket_events(ticket.id).await.unwrap().is_empty());
    assert!(store.messages(ticket.id, true).await.unwrap().is_empty());
    assert!(store.job_for_ticket(ticket.id).await.unwrap().is_none());
    let mail = store
        .outbox(&OutboxQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(mail.len(), 1);
}

async fn open_tickets_reserve_their_cluster_name(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let first = create(
        &store,
        new_ticket(&seed, 1, TicketState::Triage, "orders-copy"),
    )
    .await;
    assert!(
        store
            .cluster_name_in_use(seed.contoso.id, "rg-prod", "orders-copy")
            .await
            .unwrap()
    );
    assert!(
        store
            .cluster_name_in_use(seed.contoso.id, "rg-prod", "orders-prod")
            .await
            .unwrap()
    );
    assert!(
        !store
            .cluster_name_in_use(seed.fabrikam.id, "rg-prod", "orders-copy")
            .await
            .unwrap()
    );
    let mut second = Commit::at(t0());
    second.ticket = Some(TicketWrite::Create(new_ticket(
        &seed,
        2,
        TicketState::Triage,
        "orders-copy",
    )));
    assert!(matches!(
        store.commit(&second).await,
        Err(StoreError::Duplicate(Unique::ClusterName))
    ));
    // Cancelling the first frees the name.
    let mut cancel = Commit::at(t0());
    cancel.ticket = Some(TicketWrite::Change(TicketChange::new(
        first.id,
        TicketGuard {
            state: TicketState::Triage,
            version: Some(1),
        },
        TicketState::Cancelled,
    )));
    store.commit(&cancel).await.unwrap();
    store.commit(&second).await.unwrap();
}

async fn one_job_per_ticket(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let ticket = create(&store, new_ticket(&seed, 1, TicketState::Approved, "copy")).await;
    let job = |id| {
        let mut commit = Commit::at(t0());
        commit.job = Some(JobWrite::Create(NewJob {
            kind: restore_desk::domain::restore_job::JobKind::Restore,
            drill_zone: None,
            id,
            ticket_id: Some(ticket.id),
            source_cluster_id: seed.orders.id,
            target_time: ticket.target_time,
            new_cluster_id: ClusterId::new(),
        }));
        commit
    };
    store.commit(&job(JobId::new())).await.unwrap();
    assert!(matches!(
        store.commit(&job(JobId::new())).await,
        Err(StoreError::Duplicate(Unique::JobForTicket))
    ));
}

/// What entering a step writes, as the domain decides it.
fn begin_step(to: JobState, at: chrono::DateTime<chrono::Utc>) -> JobPatch {
    JobPatch {
        attempt: Some(1),
        run_after: Some(at),
        step_clock: Some(at),
        step_detail: Some(String::new()),
        progress: Some(i64::from(to.progress_span().0)),
        finished_at: to.is_terminal().then_some(Some(at)),
        release_lease: to.is_terminal(),
        ..JobPatch::to(to, at)
    }
}

fn step(job_id: Uuid, fence: Fence, from: JobState, to: JobState) -> Commit {
    let mut commit = Commit::at(fence.now);
    let at = fence.now;
    commit.job = Some(JobWrite::Change(Box::new(JobChange {
        job_id: job_id.into(),
        guard: JobGuard::Lease(fence),
        from,
        patch: begin_step(to, at),
    })));
    commit
}

/// The one restore host of a test's workers, with room for two restores.
fn local() -> Placement {
    Placement {
        host: "local".into(),
        max_restores: 2,
        free_bytes: None,
    }
}

async fn job_leases_fence_stale_workers(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let ticket = create(&store, new_ticket(&seed, 1, TicketState::Approved, "copy")).await;
    let job_id = Uuid::new_v4();
    let mut commit = Commit::at(t0());
    commit.job = Some(JobWrite::Create(NewJob {
        kind: restore_desk::domain::restore_job::JobKind::Restore,
        drill_zone: None,
        id: job_id.into(),
        ticket_id: Some(ticket.id),
        source_cluster_id: seed.orders.id,
        target_time: ticket.target_time,
        new_cluster_id: ClusterId::new(),
    }));
    store.commit(&commit).await.unwrap();
    let lease = Duration::seconds(30);

    let w1 = store
        .claim_job("w1", &local(), t0(), lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((w1.lease_token, w1.lease_owner.as_deref()), (1, Some("w1")));
    assert!(
        store
            .claim_job("w2", &local(), t0(), lease)
            .await
            .unwrap()
            .is_none()
    );

    // w1 stops heartbeating; after its lease w2 takes the job over.
    let later = t0() + Duration::seconds(31);
    let w2 = store
        .claim_job("w2", &local(), later, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w2.lease_token, 2);

    let stale = step(
        job_id,
        w1.fence(later),
        JobState::Queued,
        JobState::Provisioning,
    );
    assert!(matches!(
        store.commit(&stale).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .renew_lease(&w1.fence(later), lease, None)
            .await
            .unwrap()
            .is_none()
    );
    let progress = ProgressUpdate {
        progress: 3,
        detail: "copying".into(),
        at: later,
        replayed_to: None,
    };
    assert_eq!(
        store
            .renew_lease(&w2.fence(later), lease, Some(&progress))
            .await
            .unwrap(),
        Some(JobState::Queued)
    );
    store
        .commit(&step(
            job_id,
            w2.fence(later),
            JobState::Queued,
            JobState::Provisioning,
        ))
        .await
        .unwrap();
    let job = store.job(job_id.into()).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Provisioning);
    assert_eq!(job.lease_token, 2);

    // A worker paused past its lease cannot commit even if nobody else
    // claimed the job meanwhile.
    let much_later = later + Duration::seconds(45);
    let paused = step(
        job_id,
        w2.fence(much_later),
        JobState::Provisioning,
        JobState::RestoringSnapshot,
    );
    assert!(matches!(
        store.commit(&paused).await,
        Err(StoreError::Conflict(_))
    ));

    // A retryable failure releases the lease and waits for its backoff.
    let w3 = store
        .claim_job("w3", &local(), much_later, lease)
        .await
        .unwrap()
        .unwrap();
    let mut retry = Commit::at(much_later);
    retry.job = Some(JobWrite::Change(Box::new(JobChange {
        job_id: job_id.into(),
        guard: JobGuard::Lease(w3.fence(much_later)),
        from: JobState::Provisioning,
        patch: JobPatch {
            run_after: Some(much_later + Duration::seconds(2)),
            attempt: Some(2),
            error: Some(Some(("zone_offline".into(), "az2 went away".into()))),
            release_lease: true,
            ..JobPatch::to(JobState::Provisioning, much_later)
        },
    })));
    store.commit(&retry).await.unwrap();
    let job = store.job(job_id.into()).await.unwrap().unwrap();
    assert_eq!(job.attempt, 2);
    assert_eq!(job.last_error_code.as_deref(), Some("zone_offline"));
    assert_eq!(job.lease_owner, None);
    assert_eq!(
        store.next_job_due().await.unwrap(),
        Some(much_later + Duration::seconds(2))
    );
    assert!(
        store
            .claim_job("w4", &local(), much_later + Duration::seconds(1), lease)
            .await
            .unwrap()
            .is_none()
    );
    let w4 = store
        .claim_job("w4", &local(), much_later + Duration::seconds(2), lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w4.lease_token, 4);
}

async fn outbox_claims_and_settles_each_attempt_once(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let ticket = create(&store, new_ticket(&seed, 1, TicketState::Triage, "copy")).await;
    let mut commit = Commit::at(t0());
    for key in ["a", "b", "c"] {
        commit.outbox.push(outbox(&ticket, key));
    }
    store.commit(&commit).await.unwrap();
    let claim = Duration::seconds(60);

    let batch = store.claim_outbox(t0(), claim, 10).await.unwrap();
    assert_eq!(batch.len(), 3);
    assert!(
        batch
            .iter()
            .all(|m| m.status == OutboxStatus::Sending && m.claim == 1 && m.attempts == 0)
    );
    assert!(
        store
            .claim_outbox(t0(), claim, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let by_key = |k: &str| batch.iter().find(|m| m.dedupe_key == k).unwrap().clone();
    let (a, b, c) = (by_key("a"), by_key("b"), by_key("c"));
    assert!(
        store
            .settle_outbox(a.id, 1, &Delivery::Sent { at: t0() })
            .await
            .unwrap()
    );
    assert!(
        store
            .settle_outbox(
                b.id,
                1,
                &Delivery::RetryAt {
                    at: t0() + Duration::seconds(60),
                    error: "421 try later".into()
                }
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .settle_outbox(
                c.id,
                1,
                &Delivery::Failed {
                    at: t0(),
                    error: "550 no such user".into()
                }
            )
            .await
            .unwrap()
    );
    // Settling the same attempt twice does nothing.
    assert!(
        !store
            .settle_outbox(a.id, 1, &Delivery::Sent { at: t0() })
            .await
            .unwrap()
    );
    let at = |s| t0() + Duration::seconds(s);
    assert!(
        store
            .claim_outbox(at(30), claim, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_outbox(at(61), claim, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id, again[0].claim, again[0].attempts),
        (b.id, 2, 1)
    );
    assert_eq!(again[0].last_error.as_deref(), Some("421 try later"));
    // The sender dies holding the claim: after it expires, another takes it.
    let taken_over = store.claim_outbox(at(122), claim, 10).await.unwrap();
    // Its claim lapsing is not an attempt: two claims later, one send.
    assert_eq!(
        (
            taken_over[0].id,
            taken_over[0].claim,
            taken_over[0].attempts
        ),
        (b.id, 3, 1)
    );
    assert!(
        !store
            .settle_outbox(b.id, 2, &Delivery::Sent { at: at(123) })
            .await
            .unwrap()
    );
    assert!(
        store
            .settle_outbox(b.id, 3, &Delivery::Sent { at: at(123) })
            .await
            .unwrap()
    );
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(
        counts,
        vec![("failed".to_string(), 1), ("sent".to_string(), 2)]
    );
    let failed = store
        .outbox(&OutboxQuery {
            status: Some(OutboxStatus::Failed),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed[0].last_error.as_deref(), Some("550 no such user"));
}

async fn queue_is_ordered_by_the_first_clock_then_severity_in_keyset_pages(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let mut expected = Vec::new();
    for i in 0..11_i64 {
        let mut t = new_ticket(&seed, i + 1, TicketState::Triage, &format!("copy-{i}"));
        t.deadline = t0() + Duration::days(i % 4);
        t.severity = [Severity::C, Severity::A, Severity::B][(i % 3) as usize];
        // Every other ticket's first response comes due before its
        // deadline (and some tie with another's deadline); the rest after.
        t.first_response_due = if i % 2 == 0 {
            t0() + Duration::days(i % 3)
        } else {
            t.deadline + Duration::days(1)
        };
        if i == 10 {
            t.state = TicketState::Completed;
        }
        let due = sla::queue_due(t.first_response_due, None, true, t.deadline);
        expected.push((due, t.severity, t.number.unwrap(), t.state));
        create(&store, t).await;
    }
    expected.retain(|e| e.3 == TicketState::Triage);
    expected.sort_by_key(|e| (e.0, e.1, e.2));
    let due_of = |t: &Ticket| {
        sla::queue_due(
            t.first_response_due,
            t.first_response_at,
            !t.state.is_terminal(),
            t.deadline,
        )
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .tickets(&TicketQuery {
                scope: Scope::Everything,
                states: vec![TicketState::Triage, TicketState::InReview],
                severity: None,
                assignee: AssigneeFilter::Anyone,
                response_due_before: None,
                search: None,
                order: TicketOrder::Queue { after },
                limit: 3,
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        let last = page.last().unwrap();
        after = Some((due_of(last), last.severity, last.number));
        seen.extend(
            page.iter()
                .map(|t| (due_of(t), t.severity, t.number, t.state)),
        );
    }
    assert_eq!(seen, expected);

    let only_a = store
        .tickets(&TicketQuery {
            scope: Scope::Everything,
            states: vec![],
            severity: Some(Severity::A),
            assignee: AssigneeFilter::Unassigned,
            response_due_before: None,
            search: None,
            order: TicketOrder::Newest { before: None },
            limit: 100,
        })
        .await
        .unwrap();
    assert!(only_a.iter().all(|t| t.severity == Severity::A));
    assert!(only_a.windows(2).all(|w| w[0].number > w[1].number));
    assert_eq!(only_a.len(), 4);
    assert_eq!(
        store
            .count_tickets(Scope::Everything, &[TicketState::Triage])
            .await
            .unwrap(),
        10
    );
}

async fn customers_see_only_their_subscription(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let ticket = create(&store, new_ticket(&seed, 1, TicketState::Triage, "copy")).await;
    let fabrikam = Scope::Subscription(seed.fabrikam.id);
    assert!(store.ticket(ticket.id, fabrikam).await.unwrap().is_none());
    assert!(store.ticket_by_number(1, fabrikam).await.unwrap().is_none());
    assert!(
        store
            .cluster(seed.orders.id, fabrikam)
            .await
            .unwrap()
            .is_none()
    );
    let theirs = store.clusters(fabrikam, false).await.unwrap();
    assert_eq!(theirs, vec![seed.inventory.clone()]);
    let listed = store
        .tickets(&TicketQuery {
            scope: fabrikam,
            states: vec![],
            severity: None,
            assignee: AssigneeFilter::Anyone,
            response_due_before: None,
            search: None,
            order: TicketOrder::Newest { before: None },
            limit: 100,
        })
        .await
        .unwrap();
    assert!(listed.is_empty());
    assert_eq!(
        store
            .count_tickets(Scope::Subscription(seed.contoso.id), &[])
            .await
            .unwrap(),
        1
    );
}

async fn internal_messages_are_filtered_out(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let ticket = create(&store, new_ticket(&seed, 1, TicketState::Triage, "copy")).await;
    let mut commit = Commit::at(t0());
    for (visibility, body) in [
        (Visibility::Public, "customer-visible"),
        (Visibility::Internal, "staff only"),
    ] {
        commit.messages.push(NewMessage {
            id: Uuid::new_v4(),
            ticket_id: ticket.id,
            author: seed.sam.actor(),
            visibility,
            body: body.into(),
        });
    }
    store.commit(&commit).await.unwrap();
    let public = store.messages(ticket.id, false).await.unwrap();
    assert_eq!(public.len(), 1);
    assert_eq!(public[0].body, "customer-visible");
    assert_eq!(store.messages(ticket.id, true).await.unwrap().len(), 2);
}

async fn sandbox_catalog_round_trips_and_expires(db: TestDb) {
    let (store, sandbox) = db.stores().await;
    let seed = seed(&store).await;
    let cluster = seed.orders.id;
    for day in 0..5 {
        sandbox
            .add_snapshot(&SandboxSnapshot {
                id: format!("snap-{day}"),
                cluster_id: cluster,
                started_at: t0() - Duration::days(5 - day),
                finished_at: t0() - Duration::days(5 - day) + Duration::minutes(10),
                zones: if day < 2 {
                    ZoneSet::of(&[Zone::Az1])
                } else {
                    ZoneSet::ALL
                },
            })
            .await
            .unwrap();
    }
    sandbox
        .add_log_span(&SandboxLogSpan {
            cluster_id: cluster,
            started_at: t0() - Duration::days(6),
            ended_at: None,
            zones: ZoneSet::ALL,
        })
        .await
        .unwrap();
    let snapshots = sandbox.snapshots(cluster).await.unwrap();
    assert_eq!(snapshots.len(), 5);
    assert_eq!(snapshots[0].zones, ZoneSet::of(&[Zone::Az1]));
    assert_eq!(snapshots[4].zones, ZoneSet::ALL);
    let removed = sandbox
        .expire(cluster, t0() - Duration::days(3))
        .await
        .unwrap();
    assert_eq!(removed, 2);
    let spans = sandbox.log_spans(cluster).await.unwrap();
    assert_eq!(spans[0].started_at, t0() - Duration::days(3));
    assert_eq!(spans[0].ended_at, None);

    let fault = SandboxFault {
        id: Uuid::new_v4(),
        kind: FaultKind::FailStep,
        step: JobState::ReplayingLog,
        permanent: false,
        remaining: 2,
        delay_ms: 0,
        created_at: t0(),
    };
    let audit = NewEvent::admin(
        seed.ada.actor(),
        EventAction::FaultAdd,
        "fail replaying_log",
        t0(),
    );
    store
        .sandbox_add_fault(&fault, audit.clone())
        .await
        .unwrap();
    assert!(sandbox.take_fault("verifying").await.unwrap().is_none());
    assert_eq!(
        sandbox
            .take_fault("replaying_log")
            .await
            .unwrap()
            .unwrap()
            .remaining,
        1
    );
    assert!(sandbox.take_fault("replaying_log").await.unwrap().is_some());
    assert!(sandbox.take_fault("replaying_log").await.unwrap().is_none());
    assert!(sandbox.faults().await.unwrap().is_empty());
}

async fn display_names_in_one_read(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    assert!(store.display_names(&[]).await.unwrap().is_empty());
    let unknown = Uuid::new_v4();
    let names = store
        .display_names(&[seed.alice.id, seed.sam.id, seed.alice.id, unknown.into()])
        .await
        .unwrap();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[&seed.alice.id], seed.alice.display_name);
    assert_eq!(names[&seed.sam.id], seed.sam.display_name);
    assert!(!names.contains_key(&UserId::from(unknown)));
}

async fn users_tokens_and_zones(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let found = store
        .user_by_email(&Email::parse("  Alice@Contoso.Example ").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, seed.alice.id);
    let duplicate = common::user(
        "ALICE@contoso.example",
        Role::Customer,
        Some(seed.contoso.id),
    );
    assert!(matches!(
        store.create_user(&duplicate, None).await,
        Err(StoreError::Duplicate(Unique::Email))
    ));
    store
        .create_api_token("hash-1", seed.alice.id, t0(), t0() + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .user_for_api_token("hash-1", t0())
            .await
            .unwrap()
            .map(|u| u.id),
        Some(seed.alice.id)
    );
    assert!(
        store
            .user_for_api_token("hash-1", t0() + Duration::hours(2))
            .await
            .unwrap()
            .is_none()
    );
    let audit = NewEvent::admin(seed.ada.actor(), EventAction::UserUpdate, "alice", t0());
    store
        .update_user(
            seed.alice.id,
            &UserUpdate {
                disabled: Some(true),
                ..Default::default()
            },
            audit,
        )
        .await
        .unwrap();
    assert!(
        store
            .user_for_api_token("hash-1", t0())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.users_with_role(Role::Staff).await.unwrap(),
        vec![seed.sam.clone()]
    );
    // A new password ends the tokens issued under the old one.
    store
        .create_api_token("hash-2", seed.bob.id, t0(), t0() + Duration::hours(1))
        .await
        .unwrap();
    let reset = NewEvent::admin(
        seed.ada.actor(),
        EventAction::UserUpdate,
        "bob: password reset",
        t0(),
    );
    store
        .update_user(
            seed.bob.id,
            &UserUpdate {
                password_hash: Some("another-hash".into()),
                ..Default::default()
            },
            reset,
        )
        .await
        .unwrap();
    assert!(
        store
            .user_for_api_token("hash-2", t0())
            .await
            .unwrap()
            .is_none()
    );

    for zone in Zone::ALL {
        store
            .ensure_zone("westeurope", zone, zone != Zone::Az1, t0())
            .await
            .unwrap();
    }
    assert_eq!(
        store.online_zones("westeurope").await.unwrap(),
        ZoneSet::of(&[Zone::Az2, Zone::Az3])
    );
    let audit = NewEvent::admin(
        seed.ada.actor(),
        EventAction::ZoneOnline,
        "westeurope/az1",
        t0(),
    );
    assert!(
        store
            .set_zone_online("westeurope", Zone::Az1, true, audit.clone())
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_zone_online("nowhere", Zone::Az1, true, audit)
            .await
            .unwrap()
    );
    assert_eq!(
        store.online_zones("westeurope").await.unwrap(),
        ZoneSet::ALL
    );
    let log = store.audit_log(None, 10).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["zone_online", "user_update", "user_update"]
    );
}

async fn a_duty_has_one_holder_at_a_time(db: TestDb) {
    let store = db.store().await;
    let ttl = Duration::seconds(60);
    let at = |s| t0() + Duration::seconds(s);
    assert!(store.take_duty("backups", "a", at(0), ttl).await.unwrap());
    assert!(!store.take_duty("backups", "b", at(10), ttl).await.unwrap());
    assert!(store.take_duty("backups", "a", at(20), ttl).await.unwrap());
    assert!(!store.take_duty("backups", "b", at(79), ttl).await.unwrap());
    assert!(store.take_duty("other", "b", at(79), ttl).await.unwrap());
    // a stopped renewing at 20: its lease ran out at 80.
    assert!(store.take_duty("backups", "b", at(80), ttl).await.unwrap());
    assert!(!store.take_duty("backups", "a", at(81), ttl).await.unwrap());
    // Only the holder releases, and then anyone takes it at once.
    store.release_duty("backups", "a").await.unwrap();
    assert!(!store.take_duty("backups", "a", at(82), ttl).await.unwrap());
    store.release_duty("backups", "b").await.unwrap();
    assert!(store.take_duty("backups", "a", at(83), ttl).await.unwrap());
}

async fn commits_with_new_work_notify_other_processes(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let Some(mut wake_ups) = store.wake_ups().await.unwrap() else {
        assert_eq!(store.kind(), StoreKind::Sqlite, "only SQLite goes without");
        return;
    };
    let ticket = create(&store, new_ticket(&seed, 1, TicketState::Approved, "copy")).await;
    let mut commit = Commit::at(t0());
    commit.job = Some(JobWrite::Create(NewJob {
        kind: restore_desk::domain::restore_job::JobKind::Restore,
        drill_zone: None,
        id: JobId::new(),
        ticket_id: Some(ticket.id),
        source_cluster_id: seed.orders.id,
        target_time: ticket.target_time,
        new_cluster_id: ClusterId::new(),
    }));
    store.commit(&commit).await.unwrap();
    let limit = std::time::Duration::from_secs(10);
    let next = tokio::time::timeout(limit, wake_ups.recv()).await.unwrap();
    assert_eq!(next, Some(WakeUp::Work));
    let mut mail = Commit::at(t0());
    mail.outbox.push(outbox(&ticket, "hello"));
    store.commit(&mail).await.unwrap();
    let next = tokio::time::timeout(limit, wake_ups.recv()).await.unwrap();
    assert_eq!(next, Some(WakeUp::Mail));
}

/// The session store shares the desk's database through `pool_handle`: it
/// must be the pool of the right kind, answering on the same data.
async fn the_pool_handle_is_the_stores_own_database(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let users: i64 = match (store.kind(), store.pool_handle()) {
        (StoreKind::Sqlite, PoolHandle::Sqlite(pool)) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
        (StoreKind::Postgres, PoolHandle::Postgres(pool)) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
        (kind, handle) => panic!("a {kind:?} store handed out {handle:?}"),
    };
    assert_eq!(users, 4);
    assert!(store.user(seed.alice.id).await.unwrap().is_some());
}

/// What the desk saw of a cluster's relations is kept by file, a file seen
/// again under a new name takes it; the simulated log's placed
/// transactions come back as written, once per xid, oldest first.
async fn relation_names_and_placed_transactions_round_trip(db: TestDb) {
    use restore_desk::domain::transactions::{
        Ddl, DdlKind, LoggedTransaction, RelationFile, RelationName, RowCounts,
    };
    let (store, sandbox) = db.stores().await;
    let seed = seed(&store).await;
    let file = |n: u32| RelationFile {
        database: 16390,
        relfilenode: n,
    };
    let name = |n: &str, table: bool| RelationName {
        schema: "public".into(),
        name: n.into(),
        table,
    };
    let cluster = seed.orders.id;
    store
        .remember_relations(
            cluster,
            &[
                (file(16400), name("orders", true)),
                (file(16401), name("orders_pkey", false)),
            ],
            t0(),
        )
        .await
        .unwrap();
    store
        .remember_relations(cluster, &[(file(16400), name("orders_old", true))], t0())
        .await
        .unwrap();
    store.remember_relations(cluster, &[], t0()).await.unwrap();
    let known = store.remembered_relations(cluster).await.unwrap();
    assert_eq!(
        known,
        vec![
            (file(16400), name("orders_old", true)),
            (file(16401), name("orders_pkey", false)),
        ]
    );
    assert!(
        store
            .remembered_relations(seed.inventory.id)
            .await
            .unwrap()
            .is_empty()
    );
    // The largest file number there is fits.
    store
        .remember_relations(cluster, &[(file(u32::MAX), name("last", true))], t0())
        .await
        .unwrap();
    assert_eq!(store.remembered_relations(cluster).await.unwrap().len(), 3);

    let placed = |xid: u64, minutes: i64| LoggedTransaction {
        xid,
        committed_at: t0() - Duration::minutes(minutes) + Duration::microseconds(123_456),
        rows: std::collections::BTreeMap::from([(
            file(16400),
            RowCounts {
                inserted: 1,
                updated: 2,
                deleted: 3,
            },
        )]),
        ddl: vec![Ddl {
            kind: DdlKind::Drop,
            relation: Some(file(16400)),
        }],
    };
    sandbox
        .add_transaction(cluster, &placed(20, 5))
        .await
        .unwrap();
    sandbox
        .add_transaction(cluster, &placed(10, 30))
        .await
        .unwrap();
    sandbox
        .add_transaction(cluster, &placed(10, 1))
        .await
        .unwrap();
    assert_eq!(
        sandbox.transactions(cluster).await.unwrap(),
        vec![placed(10, 30), placed(20, 5)],
        "oldest first, the first of an xid kept"
    );
    assert!(
        sandbox
            .transactions(seed.inventory.id)
            .await
            .unwrap()
            .is_empty()
    );
}

fn zone_host(name: &str, zone: Zone) -> restore_desk::domain::host::FleetHost {
    restore_desk::domain::host::FleetHost {
        name: name.into(),
        role: restore_desk::domain::host::HostRole::Zone,
        address: format!("{name}.fleet.test"),
        zone: Some(zone),
        data_root: Some("/var/lib/rd".into()),
        max_restores: None,
        tls_port: 8432,
    }
}

async fn fleet_hosts_round_trip_with_one_host_per_zone(db: TestDb) {
    let store = db.store().await;
    let az1 = zone_host("az1", Zone::Az1);
    store.put_fleet_host(&az1, t0()).await.unwrap();
    let restore = restore_desk::domain::host::FleetHost {
        name: "r1".into(),
        role: restore_desk::domain::host::HostRole::Restore,
        address: "r1.fleet.test".into(),
        zone: None,
        data_root: Some("/srv/restores".into()),
        max_restores: Some(3),
        tls_port: 9432,
    };
    store.put_fleet_host(&restore, t0()).await.unwrap();
    assert_eq!(
        store.fleet_hosts().await.unwrap(),
        vec![restore.clone(), az1.clone()]
    );

    // A second host for az1 is refused and changes nothing.
    let twin = zone_host("az1b", Zone::Az1);
    assert!(matches!(
        store.put_fleet_host(&twin, t0()).await,
        Err(StoreError::Duplicate(Unique::ZoneHost))
    ));
    assert_eq!(store.fleet_hosts().await.unwrap().len(), 2);

    // Put again by name: replaced.
    let moved = restore_desk::domain::host::FleetHost {
        address: "r1.other.test".into(),
        ..restore.clone()
    };
    store.put_fleet_host(&moved, t0()).await.unwrap();
    assert!(store.fleet_hosts().await.unwrap().contains(&moved));
    assert!(store.remove_fleet_host("r1").await.unwrap());
    assert!(!store.remove_fleet_host("r1").await.unwrap());
    assert_eq!(store.fleet_hosts().await.unwrap(), vec![az1]);
}

async fn placed_job(store: &DynStore, seed: &Seed, number: i64, host: &str) -> RestoreJob {
    let ticket = create(
        store,
        new_ticket(
            seed,
            number,
            TicketState::Approved,
            &format!("copy-{number}"),
        ),
    )
    .await;
    let job_id: JobId = Uuid::new_v4().into();
    let mut commit = Commit::at(t0());
    commit.job = Some(JobWrite::Create(NewJob {
        kind: restore_desk::domain::restore_job::JobKind::Restore,
        drill_zone: None,
        id: job_id,
        ticket_id: Some(ticket.id),
        source_cluster_id: seed.orders.id,
        target_time: ticket.target_time,
        new_cluster_id: ClusterId::new(),
    }));
    store.commit(&commit).await.unwrap();
    let place = Placement {
        host: host.into(),
        max_restores: 5,
        free_bytes: None,
    };
    let claimed = store
        .claim_job("w", &place, t0(), Duration::seconds(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, job_id);
    claimed
}

/// A host holding a job that is not over stays; another host's jobs do
/// not hold it.
async fn a_host_holding_an_unfinished_job_is_not_removed(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let restore = |name: &str| restore_desk::domain::host::FleetHost {
        name: name.into(),
        role: restore_desk::domain::host::HostRole::Restore,
        address: format!("{name}.fleet.test"),
        zone: None,
        data_root: Some("/srv/restores".into()),
        max_restores: Some(2),
        tls_port: 8432,
    };
    store.put_fleet_host(&restore("r1"), t0()).await.unwrap();
    store.put_fleet_host(&restore("r2"), t0()).await.unwrap();
    placed_job(&store, &seed, 1, "r1").await;
    assert!(matches!(
        store.remove_fleet_host("r1").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.remove_fleet_host("r2").await.unwrap());
    assert_eq!(store.fleet_hosts().await.unwrap(), vec![restore("r1")]);
}

fn beat(host: &str, at: chrono::DateTime<chrono::Utc>) -> HostHeartbeat {
    HostHeartbeat {
        host: host.into(),
        worker: format!("{host}/0"),
        seen_at: at,
        free_bytes: Some(1 << 30),
        max_restores: 2,
    }
}

async fn a_silent_host_s_unheld_jobs_are_found_and_its_kept_runs_listed(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let on_r1 = placed_job(&store, &seed, 1, "r1").await;
    let on_r2 = placed_job(&store, &seed, 2, "r2").await;
    store.host_heartbeat(&beat("r1", t0())).await.unwrap();
    store.host_heartbeat(&beat("r2", t0())).await.unwrap();
    assert_eq!(store.host_heartbeats().await.unwrap().len(), 2);

    let later = t0() + Duration::seconds(120);
    let lost_before = later - Duration::seconds(90);
    // Both leases have run out; r2 keeps beating, r1 fell silent.
    store.host_heartbeat(&beat("r2", later)).await.unwrap();
    let lost = store
        .jobs_on_lost_hosts(later, lost_before, "r9")
        .await
        .unwrap();
    assert_eq!(
        lost.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![on_r1.id]
    );
    // The caller's own host is never lost to itself.
    assert!(
        store
            .jobs_on_lost_hosts(later, lost_before, "r1")
            .await
            .unwrap()
            .is_empty()
    );
    // Held under a live lease: not taken from under its worker.
    assert!(
        store
            .jobs_on_lost_hosts(
                t0() + Duration::seconds(10),
                t0() + Duration::seconds(5),
                "r9"
            )
            .await
            .unwrap()
            .is_empty()
    );
    // A host never heard from at all is not taken for lost.
    let on_r3 = placed_job(&store, &seed, 3, "r3").await;
    assert!(
        !store
            .jobs_on_lost_hosts(later, lost_before, "r9")
            .await
            .unwrap()
            .iter()
            .any(|j| j.id == on_r3.id)
    );
    assert_eq!(
        store.runs_on_host("r2").await.unwrap(),
        vec![(on_r2.id, on_r2.run)]
    );
    assert!(store.runs_on_host("r7").await.unwrap().is_empty());
}

async fn a_host_with_too_little_room_leaves_a_job_to_another(db: TestDb) {
    let store = db.store().await;
    let seed = seed(&store).await;
    let job = placed_job(&store, &seed, 1, "small").await;
    // It waits, knowing it needs 3 GiB.
    let waited = {
        let (change, _) = restore_desk::domain::restore_job::apply(
            &job,
            &restore_desk::domain::restore_job::transition(
                job.state,
                &restore_desk::domain::restore_job::JobCommand::Wait(
                    restore_desk::domain::restore_job::StepFailure {
                        code: "insufficient_disk".into(),
                        message: "no room".into(),
                        retryable: true,
                    },
                ),
                &Actor::SYSTEM,
                &restore_desk::domain::restore_job::JobFacts {
                    kind: job.kind,
                    inspect: false,
                    attempt: job.attempt as u32,
                    now: t0(),
                    policy: Default::default(),
                    last_error: None,
                },
            )
            .unwrap(),
            JobGuard::Lease(job.fence(t0())),
            JobOutputs {
                work: Some(restore_desk::domain::eta::Work {
                    backup_bytes: 3 << 30,
                    wal_bytes: 0,
                }),
                ..JobOutputs::default()
            },
            restore_desk::domain::restore_job::ApplyContext {
                at: t0(),
                fresh_cluster_id: ClusterId::new(),
            },
        );
        change
    };
    let mut commit = Commit::at(t0());
    commit.job = Some(JobWrite::Change(Box::new(waited)));
    store.commit(&commit).await.unwrap();
    let due = t0() + Duration::minutes(1);
    let with_room = |free: i64, host: &str| Placement {
        host: host.into(),
        max_restores: 2,
        free_bytes: Some(free),
    };
    let lease = Duration::seconds(30);
    assert!(
        store
            .claim_job("w1", &with_room(1 << 30, "small"), due, lease)
            .await
            .unwrap()
            .is_none()
    );
    let taken = store
        .claim_job("w2", &with_room(8 << 30, "large"), due, lease)
        .await
        .unwrap()
        .expect("the host with room takes it");
    assert_eq!((taken.id, taken.host.as_deref()), (job.id, Some("large")));
}
