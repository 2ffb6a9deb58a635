//! Email through a real SMTP server on 127.0.0.1: the right notices to the
//! right people with the right content; nothing lost in an outage, nothing
//! doubled; permanent refusals fail visibly; rollbacks write no email.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use common::seeded::{demo_cluster, demo_user};
use common::{TestDb, demo_app, t0};
use restore_desk::app::App;
use restore_desk::clock::{Clock, ManualClock};
use restore_desk::desk::{DeskError, FilingRequest, act, file_ticket};
use restore_desk::domain::restore_job::JobState;
use restore_desk::domain::sla::Severity;
use restore_desk::domain::ticket::TicketCommand;
use restore_desk::domain::validation::TargetInput;
use restore_desk::engine::{self, duties};
use restore_desk::notify::relay::{DeliveryPolicy, Relay};
use restore_desk::store::EventAction;
use restore_desk::store::{
    Email, FaultKind, NewEvent, OutboxMessage, OutboxQuery, OutboxStatus, SandboxFault, Scope,
    Ticket, User,
};
use smtp::{Mode, Tarpit, TestSmtp};

struct Setup {
    app: App,
    clock: ManualClock,
    relay: Relay,
    alice: User,
    sam: User,
    ada: User,
}

async fn setup(db: &TestDb, smtp: &TestSmtp) -> Setup {
    let clock = ManualClock::new(t0());
    let url = smtp.url();
    let app = demo_app(db, clock.clone(), &["--smtp-url", &url]).await;
    setup_on(app, clock).await
}

async fn setup_on(app: App, clock: ManualClock) -> Setup {
    let relay = Relay::new(app.clone(), app.mailer.clone(), DeliveryPolicy::default()).unwrap();
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
    Setup {
        alice: user("alice@contoso.example").await,
        sam: user("sam@support.example").await,
        ada: user("ada@admin.example").await,
        app,
        clock,
        relay,
    }
}

impl Setup {
    async fn file(&self, target: DateTime<Utc>, name: &str) -> Ticket {
        let orders = demo_cluster(&self.app.store, "orders-prod").await;
        let request = FilingRequest {
            transaction: None,
            cluster_id: Some(orders.id),
            target: TargetInput::Local {
                local_time: target
                    .with_timezone(&chrono_tz::Europe::Amsterdam)
                    .format("%Y-%m-%dT%H:%M:%S")
                    .to_string(),
                time_zone: "Europe/Amsterdam".into(),
                utc_offset: None,
            },
            new_cluster_name: name.into(),
            severity: Severity::B,
            description: "The nightly job truncated orders".into(),
            inspect: false,
        };
        file_ticket(&self.app, &self.alice, &request).await.unwrap()
    }

    async fn staff(&self, ticket: &Ticket, command: TicketCommand) -> Ticket {
        act(&self.app, &self.sam, ticket.id, command, None)
            .await
            .unwrap()
    }

    async fn outbox(&self) -> Vec<OutboxMessage> {
        self.app
            .store
            .outbox(&OutboxQuery {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
    }
}

fn target() -> DateTime<Utc> {
    t0() - Duration::hours(5)
}

async fn each_lifecycle_event_emails_the_right_people(db: TestDb) {
    let smtp = TestSmtp::started();
    let s = setup(&db, &smtp).await;
    let secret_note = "internal: customer is on the legacy plan, check billing";

    // Filed → info requested → customer replies → note → approved → restored.
    let restored = s.file(target(), "orders-restored").await;
    s.staff(&restored, TicketCommand::Claim).await;
    s.staff(
        &restored,
        TicketCommand::RequestInfo {
            message: "Which tables matter most?".into(),
        },
    )
    .await;
    act(
        &s.app,
        &s.alice,
        restored.id,
        TicketCommand::Reply {
            body: "orders and order_lines".into(),
        },
        None,
    )
    .await
    .unwrap();
    s.staff(
        &restored,
        TicketCommand::Note {
            body: secret_note.into(),
        },
    )
    .await;
    s.staff(
        &restored,
        TicketCommand::Reply {
            body: "Thanks, restoring now.".into(),
        },
    )
    .await;
    s.staff(&restored, TicketCommand::Approve { inspect: false })
        .await;
    engine::drain(&s.app).await.unwrap();

    // Rejected.
    let rejected = s.file(target() - Duration::hours(1), "rejected-one").await;
    s.staff(&rejected, TicketCommand::Claim).await;
    s.staff(
        &rejected,
        TicketCommand::Reject {
            reason: "Duplicate of RD-000001".into(),
        },
    )
    .await;

    // Cancelled by the customer.
    let cancelled = s.file(target() - Duration::hours(2), "cancelled-one").await;
    act(
        &s.app,
        &s.alice,
        cancelled.id,
        TicketCommand::Cancel {
            reason: String::new(),
        },
        None,
    )
    .await
    .unwrap();

    // Failed for good.
    let fault = SandboxFault {
        id: Uuid::new_v4(),
        kind: FaultKind::FailStep,
        step: JobState::Verifying,
        permanent: true,
        remaining: 1,
        delay_ms: 0,
        created_at: t0(),
    };
    s.app
        .store
        .sandbox_add_fault(
            &fault,
            NewEvent::admin(s.ada.actor(), EventAction::FaultAdd, "", t0()),
        )
        .await
        .unwrap();
    let failed = s.file(target() - Duration::hours(3), "failed-one").await;
    s.staff(&failed, TicketCommand::Claim).await;
    s.staff(&failed, TicketCommand::Approve { inspect: false })
        .await;
    engine::drain(&s.app).await.unwrap();

    // Near its deadline.
    let near = s
        .file(
            t0() - Duration::days(34) - Duration::hours(1),
            "near-deadline",
        )
        .await;
    assert_eq!(duties::warn_deadlines(&s.app).await.unwrap(), 1);

    let attempted = s.relay.drain().await.unwrap();
    let outbox = s.outbox().await;
    assert_eq!(attempted, outbox.len());
    assert!(
        outbox.iter().all(|m| m.status == OutboxStatus::Sent),
        "{outbox:?}"
    );

    let mail = smtp.received();
    assert_eq!(mail.len(), outbox.len());
    let by_ticket = |ticket: &Ticket| -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = outbox
            .iter()
            .filter(|m| m.ticket_id == Some(ticket.id))
            .map(|m| (m.kind.clone(), m.recipient.clone()))
            .collect();
        found.sort();
        found
    };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v: Vec<_> = list
            .iter()
            .map(|(k, r)| (k.to_string(), r.to_string()))
            .collect();
        v.sort();
        v
    };
    const ALICE: &str = "alice@contoso.example";
    const SAM: &str = "sam@support.example";
    assert_eq!(
        by_ticket(&restored),
        pairs(&[
            ("request_received", ALICE),
            ("new_request", SAM),
            ("information_requested", ALICE),
            ("customer_replied", SAM),
            ("staff_replied", ALICE),
            ("approved", ALICE),
            ("restore_started", ALICE),
            ("restore_completed", ALICE),
        ])
    );
    assert_eq!(
        by_ticket(&rejected),
        pairs(&[
            ("request_received", ALICE),
            ("new_request", SAM),
            ("rejected", ALICE)
        ])
    );
    assert_eq!(
        by_ticket(&cancelled),
        pairs(&[
            ("request_received", ALICE),
            ("new_request", SAM),
            ("cancelled", ALICE)
        ])
    );
    assert_eq!(
        by_ticket(&failed),
        pairs(&[
            ("request_received", ALICE),
            ("new_request", SAM),
            ("approved", ALICE),
            ("restore_started", ALICE),
            ("restore_failed", ALICE),
            ("restore_failed", SAM),
        ])
    );
    assert_eq!(
        by_ticket(&near),
        pairs(&[
            ("request_received", ALICE),
            ("new_request", SAM),
            ("deadline_near", SAM)
        ])
    );

    // What the server received: the right envelope, ids and content.
    let sent: HashMap<String, &OutboxMessage> = outbox
        .iter()
        .map(|m| (format!("<{}@restore-desk.localhost>", m.id), m))
        .collect();
    for received in &mail {
        let row = sent
            .get(&received.message_id())
            .unwrap_or_else(|| panic!("unknown Message-ID {}", received.message_id()));
        assert_eq!(received.to, vec![row.recipient.clone()]);
        assert!(received.data.contains("multipart/alternative"));
        assert!(received.data.contains("text/plain") && received.data.contains("text/html"));
        let customer = row.recipient == ALICE;
        assert!(
            !(customer && received.data.contains("legacy plan")),
            "an internal note reached the customer"
        );
    }
    assert!(
        outbox
            .iter()
            .all(|m| !m.text_body.contains("legacy plan") && !m.html_body.contains("legacy plan"))
    );

    let find = |ticket: &Ticket, kind: &str, to: &str| {
        outbox
            .iter()
            .find(|m| m.ticket_id == Some(ticket.id) && m.kind == kind && m.recipient == to)
            .unwrap()
    };
    let info = find(&restored, "information_requested", ALICE);
    assert!(info.text_body.contains("Which tables matter most?"));
    assert!(
        info.text_body
            .contains(&format!("/tickets/{}", restored.id))
    );
    let replied = find(&restored, "customer_replied", SAM);
    assert!(replied.text_body.contains("orders and order_lines"));
    assert!(
        replied
            .text_body
            .contains(&format!("/staff/tickets/{}", restored.id))
    );
    let done = find(&restored, "restore_completed", ALICE);
    let new_cluster = s
        .app
        .store
        .cluster(
            s.app
                .store
                .ticket(restored.id, Scope::Everything)
                .await
                .unwrap()
                .unwrap()
                .new_cluster_id
                .unwrap(),
            Scope::Everything,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(done.subject.contains("orders-restored"));
    assert!(done.text_body.contains(&new_cluster.connection.host));
    assert!(
        done.text_body
            .contains(&new_cluster.connection.port.to_string())
    );
    // The exact point in time, in the customer's zone and in UTC.
    let local = target().with_timezone(&chrono_tz::Europe::Amsterdam);
    assert!(
        done.text_body
            .contains(&local.format("%d %b %Y %H:%M:%S %Z").to_string()),
        "{}",
        done.text_body
    );
    assert!(
        done.text_body
            .contains(&format!("{} UTC", target().format("%H:%M:%S")))
    );
    assert!(done.html_body.contains(&new_cluster.connection.host));
    let rejection = find(&rejected, "rejected", ALICE);
    assert!(rejection.text_body.contains("Duplicate of RD-000001"));
    let failure = find(&failed, "restore_failed", ALICE);
    assert!(failure.text_body.contains("injected fault"));
    let warning = find(&near, "deadline_near", SAM);
    assert!(warning.subject.contains("Deadline in"));
}

async fn an_outage_loses_nothing_and_doubles_nothing(db: TestDb) {
    let smtp = TestSmtp::reserve();
    let s = setup(&db, &smtp).await;
    let first = s.file(target(), "during-outage").await;
    s.staff(&first, TicketCommand::Claim).await;
    s.staff(&first, TicketCommand::Approve { inspect: false })
        .await;
    engine::drain(&s.app).await.unwrap();
    s.file(target() - Duration::hours(1), "also-during-outage")
        .await;

    // Nothing listens: every attempt is refused at the TCP level.
    let pending = s.outbox().await.len();
    assert!(pending >= 7);
    assert_eq!(s.relay.drain().await.unwrap(), pending);
    let after = s.outbox().await;
    assert!(
        after
            .iter()
            .all(|m| m.status == OutboxStatus::Pending && m.attempts == 1)
    );
    assert!(after.iter().all(|m| m.last_error.is_some()));
    assert!(smtp.received().is_empty());

    // The server is back but answers 451 for a while.
    smtp.start();
    smtp.set_mode(Mode::TemporaryFailure);
    s.clock.advance(Duration::seconds(31));
    assert_eq!(s.relay.drain().await.unwrap(), pending);
    let after = s.outbox().await;
    assert!(
        after
            .iter()
            .all(|m| m.status == OutboxStatus::Pending && m.attempts == 2)
    );
    assert!(
        after
            .iter()
            .all(|m| m.last_error.as_deref().unwrap_or("").contains("451"))
    );
    // Backoff: nothing is due a moment later.
    assert_eq!(s.relay.drain().await.unwrap(), 0);

    smtp.set_mode(Mode::Accept);
    s.clock.advance(Duration::seconds(61));
    assert_eq!(s.relay.drain().await.unwrap(), pending);
    let after = s.outbox().await;
    assert!(after.iter().all(|m| m.status == OutboxStatus::Sent));
    let mut ids: Vec<String> = smtp.received().iter().map(|r| r.message_id()).collect();
    ids.sort();
    let total = ids.len();
    ids.dedup();
    assert_eq!(
        (total, ids.len()),
        (pending, pending),
        "each message exactly once"
    );
    s.clock.advance(Duration::hours(2));
    assert_eq!(s.relay.drain().await.unwrap(), 0);
    assert_eq!(smtp.received().len(), pending);
}

async fn a_crash_after_the_server_accepted_resends_with_the_same_id(db: TestDb) {
    let smtp = TestSmtp::started();
    let s = setup(&db, &smtp).await;
    s.file(target(), "crashy").await;
    // A relay claims and sends, then dies before settling.
    let claimed = s
        .app
        .store
        .claim_outbox(s.clock.now(), Duration::minutes(2), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    for message in &claimed {
        let email = s.relay.email(message).unwrap();
        s.app.mailer.send(message.id, &email).await.unwrap();
    }
    assert_eq!(
        s.relay.drain().await.unwrap(),
        0,
        "the dead relay's claim still holds"
    );
    s.clock.advance(Duration::minutes(3));
    assert_eq!(s.relay.drain().await.unwrap(), 2);
    let received = smtp.received();
    assert_eq!(received.len(), 4);
    for message in &claimed {
        let id = format!("<{}@restore-desk.localhost>", message.id);
        assert_eq!(received.iter().filter(|r| r.message_id() == id).count(), 2);
    }
    // The dead relay's send was never recorded: one attempt counted.
    assert!(
        s.outbox()
            .await
            .iter()
            .all(|m| m.status == OutboxStatus::Sent && m.attempts == 1)
    );
}

async fn a_permanent_refusal_fails_once_and_stays_visible(db: TestDb) {
    let smtp = TestSmtp::started();
    smtp.set_mode(Mode::PermanentFailure);
    let s = setup(&db, &smtp).await;
    s.file(target(), "bounced").await;
    assert_eq!(s.relay.drain().await.unwrap(), 2);
    let failed = s
        .app
        .store
        .outbox(&OutboxQuery {
            status: Some(OutboxStatus::Failed),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|m| m.attempts == 1));
    assert!(failed[0].last_error.as_deref().unwrap().contains("550"));
    smtp.set_mode(Mode::Accept);
    s.clock.advance(Duration::days(2));
    assert_eq!(s.relay.drain().await.unwrap(), 0, "not retried forever");
    assert!(smtp.received().is_empty());
}

async fn transient_failures_give_up_at_the_horizon(db: TestDb) {
    let smtp = TestSmtp::reserve();
    let s = setup(&db, &smtp).await;
    s.file(target(), "never-delivered").await;
    let mut rounds = 0;
    loop {
        s.relay.drain().await.unwrap();
        let outbox = s.outbox().await;
        if outbox.iter().all(|m| m.status == OutboxStatus::Failed) {
            let error = outbox[0].last_error.clone().unwrap();
            assert!(error.starts_with("gave up after"), "{error}");
            break;
        }
        s.clock.advance(Duration::hours(1));
        rounds += 1;
        assert!(rounds < 40, "never gave up");
    }
    assert!(rounds >= 23, "kept trying for a day: {rounds}");
}

async fn a_rolled_back_change_writes_no_email(db: TestDb) {
    let smtp = TestSmtp::started();
    let s = setup(&db, &smtp).await;
    let ticket = s.file(target(), "racy").await;
    s.staff(&ticket, TicketCommand::Claim).await;
    let before = s.outbox().await.len();
    // A form loaded at version 1 is stale now: refused, nothing written.
    let stale = act(
        &s.app,
        &s.sam,
        ticket.id,
        TicketCommand::Approve { inspect: false },
        Some(1),
    )
    .await;
    assert!(matches!(stale, Err(DeskError::Stale)), "{stale:?}");
    assert_eq!(s.outbox().await.len(), before);
    // Two approvals at once: one commits, with exactly one "approved" email.
    let (a, b) = tokio::join!(
        act(
            &s.app,
            &s.sam,
            ticket.id,
            TicketCommand::Approve { inspect: false },
            Some(2)
        ),
        act(
            &s.app,
            &s.sam,
            ticket.id,
            TicketCommand::Approve { inspect: false },
            Some(2)
        ),
    );
    assert_eq!([a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(), 1);
    let approved = s
        .outbox()
        .await
        .into_iter()
        .filter(|m| m.kind == "approved")
        .count();
    assert_eq!(approved, 1);
    assert!(
        s.app
            .store
            .job_for_ticket(ticket.id)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn the_file_transport_writes_one_file_per_message() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let clock = ManualClock::new(t0());
    let mut settings = common::settings(&db, &[]);
    settings.mail_dir = mail_dir.clone();
    let app = restore_desk::cli::build(settings, std::sync::Arc::new(clock.clone()))
        .await
        .unwrap();
    restore_desk::demo::seed(&app, "demo").await.unwrap();
    let relay = Relay::new(app.clone(), app.mailer.clone(), DeliveryPolicy::default()).unwrap();
    let alice = demo_user(&app.store, "alice@contoso.example").await;
    let orders = demo_cluster(&app.store, "orders-prod").await;
    let request = FilingRequest {
        transaction: None,
        cluster_id: Some(orders.id),
        target: TargetInput::Instant {
            target_time: target().to_rfc3339(),
            time_zone: None,
        },
        new_cluster_name: "to-files".into(),
        severity: Severity::C,
        description: String::new(),
        inspect: false,
    };
    file_ticket(&app, &alice, &request).await.unwrap();
    assert_eq!(relay.drain().await.unwrap(), 2);
    let files: Vec<_> = std::fs::read_dir(&mail_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2);
    let outbox = app
        .store
        .outbox(&OutboxQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    for message in &outbox {
        let path = mail_dir.join(format!("{}.eml", message.id));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&format!(
            "Message-ID: <{}@restore-desk.localhost>",
            message.id
        )));
        assert!(text.contains(&format!("To: {}", message.recipient)));
    }
}

async fn this_process_relay_sends_at_once_and_a_dead_ones_mail_is_not_lost(db: TestDb) {
    let smtp = TestSmtp::started();
    let s = setup(&db, &smtp).await;
    let (handoff, mut handed) = restore_desk::notify::relay::hand_off();
    s.app.local_relay.set(handoff).unwrap();

    // The filing's emails are written already claimed and handed over.
    s.file(target(), "handed-over").await;
    let claimed = s.outbox().await;
    assert_eq!(claimed.len(), 2);
    for m in &claimed {
        // Claimed, but not attempted yet: attempts count sends.
        assert_eq!(
            (m.status, m.attempts, m.claim),
            (OutboxStatus::Sending, 0, 1)
        );
        assert_eq!(m.claimed_until, Some(t0() + Duration::minutes(2)));
    }
    assert_eq!(
        s.relay.drain().await.unwrap(),
        0,
        "nobody else may take them"
    );
    let batch = handed.recv().await.unwrap();
    assert_eq!(s.relay.deliver_claimed(&batch).await.unwrap(), 2);
    assert_eq!(smtp.received().len(), 2);
    assert!(
        s.outbox()
            .await
            .iter()
            .all(|m| m.status == OutboxStatus::Sent && m.attempts == 1)
    );

    // This time the process dies before its relay sends: the hand-off is lost.
    s.file(target() - Duration::hours(1), "orphaned").await;
    let lost = handed.recv().await.unwrap();
    assert_eq!(lost.len(), 2);
    // Too close to its end, a claim is not used for a new attempt.
    s.clock.advance(Duration::seconds(100));
    assert_eq!(s.relay.deliver_claimed(&lost).await.unwrap(), 0);
    assert_eq!(s.relay.drain().await.unwrap(), 0);
    // Once the claim lapses, any relay sends them, once.
    s.clock.advance(Duration::seconds(21));
    assert_eq!(s.relay.drain().await.unwrap(), 2);
    let received = smtp.received();
    assert_eq!(received.len(), 4);
    let mut ids: Vec<String> = received.iter().map(|r| r.message_id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    let outbox = s.outbox().await;
    assert!(outbox.iter().all(|m| m.status == OutboxStatus::Sent));
    // Two claims each, one send each: the lapsed claim is not an attempt.
    assert_eq!(outbox.iter().filter(|m| m.claim == 2).count(), 2);
    assert!(outbox.iter().all(|m| m.attempts == 1));
}

/// Waits, up to `limit`, for the outbox to satisfy `done`.
async fn until_outbox(
    s: &Setup,
    limit: std::time::Duration,
    what: &str,
    done: impl Fn(&[OutboxMessage]) -> bool,
) -> Vec<OutboxMessage> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let outbox = s.outbox().await;
        if done(&outbox) {
            return outbox;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {limit:?}: {outbox:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The relay loop of a serving process, with its hand-off, on `s`'s app.
fn run_relay(
    s: &Setup,
    shutdown: &tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let relay = Relay::new(
        s.app.clone(),
        s.app.mailer.clone(),
        DeliveryPolicy::default(),
    )
    .unwrap();
    let (handoff, handed) = restore_desk::notify::relay::hand_off();
    s.app.local_relay.set(handoff).unwrap();
    tokio::spawn(restore_desk::notify::relay::run(
        relay,
        Some(handed),
        shutdown.clone(),
    ))
}

async fn a_server_that_never_answers_costs_one_bounded_attempt(db: TestDb) {
    let smtp = TestSmtp::reserve();
    let tarpit = Tarpit::start(smtp.port).await;
    let clock = ManualClock::new(t0());
    let url = smtp.url();
    let app = demo_app(
        &db,
        clock.clone(),
        &["--smtp-url", &url, "--smtp-timeout-seconds", "1"],
    )
    .await;
    let s = setup_on(app, clock).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let relay = run_relay(&s, &shutdown);

    // Twelve emails: more than the relay sends at once, so a relay whose
    // sends never end would leave some unattempted for good.
    for n in 0..6 {
        s.file(target() - Duration::minutes(n), &format!("tarpit-{n}"))
            .await;
    }
    let stalled = until_outbox(
        &s,
        std::time::Duration::from_secs(20),
        "every email tried once",
        |o| {
            o.len() == 12
                && o.iter()
                    .all(|m| m.status == OutboxStatus::Pending && m.attempts == 1)
        },
    )
    .await;
    assert!(
        tarpit.connections() >= 12,
        "each attempt reached the server"
    );
    assert!(stalled.iter().all(|m| {
        m.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("did not finish the exchange within 1 seconds")
    }));

    // A healthy server takes the port; the backoff runs out.
    tarpit.stop().await;
    smtp.start();
    s.clock.advance(Duration::seconds(31));
    until_outbox(
        &s,
        std::time::Duration::from_secs(20),
        "every email sent",
        |o| o.iter().all(|m| m.status == OutboxStatus::Sent),
    )
    .await;
    let mut ids: Vec<String> = smtp.received().iter().map(|r| r.message_id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (smtp.received().len(), ids.len()),
        (12, 12),
        "each exactly once"
    );
    shutdown.cancel();
    relay.await.unwrap();
}

async fn stopping_while_a_send_hangs_takes_no_longer_than_the_grace(db: TestDb) {
    let smtp = TestSmtp::reserve();
    let tarpit = Tarpit::start(smtp.port).await;
    let clock = ManualClock::new(t0());
    let url = smtp.url();
    let app = demo_app(
        &db,
        clock.clone(),
        &[
            "--smtp-url",
            &url,
            "--smtp-timeout-seconds",
            "25",
            "--shutdown-grace-seconds",
            "1",
        ],
    )
    .await;
    let s = setup_on(app, clock).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let relay = run_relay(&s, &shutdown);
    s.file(target(), "hanging").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while tarpit.connections() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no send started");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), relay)
        .await
        .expect("the relay stops within its grace while sends hang")
        .unwrap();
    // The abandoned attempts keep their claims, which lapse for another relay.
    let outbox = s.outbox().await;
    assert!(
        outbox
            .iter()
            .all(|m| m.status == OutboxStatus::Sending && m.attempts == 0)
    );
    tarpit.stop().await;
}

/// A claim that runs out while this process is still sending under it (a
/// clock that jumps, a send outlasting its budget): the relay takes the
/// message up again, yet sends it once, and records the first send.
async fn a_claim_running_out_mid_send_does_not_send_twice(db: TestDb) {
    let smtp = TestSmtp::started();
    // Each send takes a while: the claims run out under it.
    smtp.set_mode(Mode::Slow(1500));
    let s = setup(&db, &smtp).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let relay = run_relay(&s, &shutdown);
    s.file(target(), "mid-send").await;
    // Both emails are on their way (handed to the relay at the commit):
    // the server is taking its time over them.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(smtp.received().is_empty(), "still being sent");
    // Every claim of the moment runs out; the relay polls again at once.
    s.clock.advance(Duration::minutes(10));
    s.app.mail_ready.notify_one();
    until_outbox(
        &s,
        std::time::Duration::from_secs(20),
        "every email sent",
        |o| o.len() == 2 && o.iter().all(|m| m.status == OutboxStatus::Sent),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let mut ids: Vec<String> = smtp.received().iter().map(|r| r.message_id()).collect();
    ids.sort();
    let total = ids.len();
    ids.dedup();
    assert_eq!((total, ids.len()), (2, 2), "each exactly once");
    shutdown.cancel();
    relay.await.unwrap();
}

crate::both_databases!(
    a_claim_running_out_mid_send_does_not_send_twice,
    each_lifecycle_event_emails_the_right_people,
    an_outage_loses_nothing_and_doubles_nothing,
    a_crash_after_the_server_accepted_resends_with_the_same_id,
    a_permanent_refusal_fails_once_and_stays_visible,
    transient_failures_give_up_at_the_horizon,
    a_rolled_back_change_writes_no_email,
    this_process_relay_sends_at_once_and_a_dead_ones_mail_is_not_lost,
    a_server_that_never_answers_costs_one_bounded_attempt,
    stopping_while_a_send_hangs_takes_no_longer_than_the_grace,
);
