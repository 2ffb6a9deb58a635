//! Filing against the demo fleet: what SPEC §8 promises about the demo
//! clusters, on both databases, and that a refused request stores nothing.

mod common;

use chrono::Duration;

use common::{TestDb, demo_app, t0};
use restore_desk::app::App;
use restore_desk::clock::ManualClock;
use restore_desk::desk::{DeskError, FilingRequest, file_ticket};
use restore_desk::domain::catalog::Zone;
use restore_desk::domain::sla::Severity;
use restore_desk::domain::ticket::TicketState;
use restore_desk::domain::validation::{TargetInput, ValidationCode};
use restore_desk::store::EventAction;
use restore_desk::store::{Email, NewEvent, OutboxQuery, Scope};

async fn cluster_id(app: &App, name: &str) -> uuid::Uuid {
    app.store
        .clusters(Scope::Everything, true)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap()
        .id
        .uuid()
}

fn request(
    cluster: uuid::Uuid,
    target: chrono::DateTime<chrono::Utc>,
    name: &str,
) -> FilingRequest {
    FilingRequest {
        transaction: None,
        cluster_id: Some(cluster.into()),
        target: TargetInput::Instant {
            target_time: target.to_rfc3339(),
            time_zone: Some("Europe/Amsterdam".into()),
        },
        new_cluster_name: name.into(),
        severity: Severity::A,
        description: "Someone ran DELETE without WHERE".into(),
        inspect: false,
    }
}

async fn demo_rules(db: TestDb) {
    let clock = ManualClock::new(t0());
    let app = demo_app(&db, clock.clone(), &[]).await;
    let alice = app
        .store
        .user_by_email(&Email::parse("alice@contoso.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    let bob = app
        .store
        .user_by_email(&Email::parse("bob@fabrikam.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    let now = t0();
    let cases = [
        ("orders-prod", now - Duration::days(25), None),
        ("orders-prod", now - Duration::hours(2), None),
        (
            "orders-prod",
            now - Duration::seconds(20),
            Some(ValidationCode::TargetInFuture),
        ),
        (
            "orders-prod",
            now - Duration::days(36),
            Some(ValidationCode::TargetOutsideRetention),
        ),
        (
            "legacy-crm",
            now - Duration::days(25),
            Some(ValidationCode::NoBackupInOnlineZone),
        ),
        ("legacy-crm", now - Duration::days(5), None),
        (
            "analytics",
            now - Duration::days(11),
            Some(ValidationCode::TargetBeforeEarliestRestorePoint),
        ),
        ("old-billing", now - Duration::days(4), None),
        (
            "old-billing",
            now - Duration::days(2),
            Some(ValidationCode::TargetInFuture),
        ),
        (
            "inventory",
            now - Duration::days(1),
            Some(ValidationCode::ClusterNotFound),
        ),
    ];
    let mut filed = 0;
    for (i, (cluster, target, expected)) in cases.into_iter().enumerate() {
        let id = cluster_id(&app, cluster).await;
        let result = file_ticket(&app, &alice, &request(id, target, &format!("copy-{i}"))).await;
        match (result, expected) {
            (Ok(ticket), None) => {
                filed += 1;
                assert_eq!(ticket.state, TicketState::Triage);
                assert_eq!(ticket.target_time, target);
                // The deadline: when the target leaves the window; for the
                // deleted cluster, the end of its 7-day grace comes first.
                let expected_deadline = match cluster {
                    "old-billing" => now - Duration::days(3) + Duration::days(7),
                    _ => target + Duration::days(35),
                };
                assert_eq!(ticket.deadline, expected_deadline, "{cluster}");
            }
            (Err(DeskError::Invalid(errors)), Some(code)) => {
                assert_eq!(errors[0].code, code, "{cluster} at {target}: {errors:?}");
            }
            (other, expected) => {
                panic!("{cluster} at {target}: expected {expected:?}, got {other:?}")
            }
        }
    }
    assert_eq!(filed, 4);
    // Bringing az1 back makes legacy-crm's older backups usable.
    let ada = app
        .store
        .user_by_email(&Email::parse("ada@admin.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    app.store
        .set_zone_online(
            "westeurope",
            Zone::Az1,
            true,
            NewEvent::admin(ada.actor(), EventAction::ZoneOnline, "az1", now),
        )
        .await
        .unwrap();
    let legacy = cluster_id(&app, "legacy-crm").await;
    file_ticket(
        &app,
        &alice,
        &request(legacy, now - Duration::days(25), "crm-back"),
    )
    .await
    .expect("az1 is back");
    // Bob sees only fabrikam.
    let inventory = cluster_id(&app, "inventory").await;
    file_ticket(
        &app,
        &bob,
        &request(inventory, now - Duration::days(1), "inv-copy"),
    )
    .await
    .expect("bob files for his own cluster");
}

async fn refused_requests_store_nothing_and_filed_ones_email(db: TestDb) {
    let clock = ManualClock::new(t0());
    let app = demo_app(&db, clock, &[]).await;
    let alice = app
        .store
        .user_by_email(&Email::parse("alice@contoso.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    let orders = cluster_id(&app, "orders-prod").await;
    let target = t0() - Duration::hours(3);
    let mut bad = request(orders, target, "Bad_Name");
    bad.target = TargetInput::Local {
        local_time: "2026-03-29T02:30".into(),
        time_zone: "Europe/Amsterdam".into(),
        utc_offset: None,
    };
    match file_ticket(&app, &alice, &bad).await {
        Err(DeskError::Invalid(errors)) => {
            let codes: Vec<_> = errors.iter().map(|e| e.code).collect();
            assert_eq!(
                codes,
                vec![
                    ValidationCode::NonexistentLocalTime,
                    ValidationCode::InvalidClusterName
                ]
            );
        }
        other => panic!("expected refusal, got {other:?}"),
    }
    let taken = request(orders, target, "analytics");
    assert!(matches!(
        file_ticket(&app, &alice, &taken).await,
        Err(DeskError::Invalid(e)) if e[0].code == ValidationCode::ClusterNameTaken
    ));
    let mut long = request(orders, target, "fine-name");
    long.description = "x".repeat(10_001);
    assert!(matches!(
        file_ticket(&app, &alice, &long).await,
        Err(DeskError::BadInput {
            field: "description",
            ..
        })
    ));
    assert_eq!(
        app.store
            .count_tickets(Scope::Everything, &[])
            .await
            .unwrap(),
        0
    );
    assert!(
        app.store
            .outbox(&OutboxQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    );

    let ticket = file_ticket(&app, &alice, &request(orders, target, "orders-restored"))
        .await
        .unwrap();
    assert_eq!(ticket.reference(), "RD-000001");
    let events = app.store.ticket_events(ticket.id).await.unwrap();
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["file", "auto_validate"]);
    let mail = app
        .store
        .outbox(&OutboxQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut to: Vec<_> = mail
        .iter()
        .map(|m| (m.kind.as_str(), m.recipient.as_str()))
        .collect();
    to.sort();
    assert_eq!(
        to,
        [
            ("new_request", "sam@support.example"),
            ("request_received", "alice@contoso.example")
        ]
    );
    let received = mail.iter().find(|m| m.kind == "request_received").unwrap();
    assert!(received.subject.contains("RD-000001"));
    // Alice filed in Amsterdam time: her email shows it, with UTC beside it.
    assert!(received.text_body.contains("CET"), "{}", received.text_body);
    assert!(received.text_body.contains("UTC"));
    // A second request for the same new name is refused while the first is open.
    assert!(matches!(
        file_ticket(&app, &alice, &request(orders, target, "orders-restored")).await,
        Err(DeskError::Invalid(e)) if e[0].code == ValidationCode::ClusterNameTaken
    ));
}

crate::both_databases!(
    demo_rules,
    refused_requests_store_nothing_and_filed_ones_email
);
