//! Inspect before hand-over, on the simulated fleet and both stores: a
//! request asks for its copy to stop paused and read-only at the target;
//! the customer looks, then accepts it, moves it forward on the same copy,
//! or goes back to an earlier moment with a new one — through the API, with
//! every wrong move refused and nothing changed. A copy nobody decides
//! about in time is handed over as it is.

mod common;

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::web::{Api, Browser, TestApp, spawn_app};
use restore_desk::domain::restore_job::JobState;
use restore_desk::engine::{self, duties};
use restore_desk::store::{OutboxQuery, Scope};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// Files `cluster` to `target` asking to inspect the copy, as alice;
/// sam claims and approves it. The ticket's id.
async fn approved_for_inspection(
    t: &TestApp,
    alice: &Api,
    cluster: &str,
    target: &str,
    name: &str,
) -> String {
    let cluster = t.cluster_id(cluster).await;
    let (status, ticket) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": cluster, "target_time": target, "new_cluster_name": name,
                   "severity": "A", "description": "check before use", "inspect": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    assert_eq!(ticket["inspect"], true);
    let id = ticket["id"].as_str().unwrap().to_string();
    t.staff_acts(&id, &[("claim", json!({})), ("approve", json!({}))])
        .await;
    id
}

/// Runs the engine until nothing is due (a paused copy waits for a person).
async fn drain(t: &TestApp) {
    engine::drain(&t.app).await.unwrap();
}

async fn ticket(api: &Api, id: &str) -> Value {
    let (status, ticket) = api.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    ticket
}

async fn job(t: &TestApp, id: &str) -> restore_desk::store::RestoreJob {
    t.app
        .store
        .job_for_ticket(id.parse::<uuid::Uuid>().unwrap().into())
        .await
        .unwrap()
        .unwrap()
}

async fn mail_kinds(t: &TestApp, id: &str, to: &str) -> Vec<String> {
    t.app
        .store
        .outbox(&OutboxQuery {
            ticket_id: Some(id.parse::<uuid::Uuid>().unwrap().into()),
            limit: 200,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.recipient == to)
        .map(|m| m.kind)
        .collect()
}

async fn paused_moves_forward_on_the_same_copy_then_is_accepted(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let id = approved_for_inspection(
        &t,
        &alice,
        "orders-prod",
        "2026-11-24T10:00:00Z",
        "orders-look",
    )
    .await;
    drain(&t).await;

    let paused = ticket(&alice, &id).await;
    assert_eq!(paused["state"], "awaiting_decision", "{paused}");
    let inspection = &paused["inspection"];
    assert_eq!(inspection["read_only"], true);
    assert!(
        inspection["connection"]["host"]
            .as_str()
            .unwrap()
            .starts_with("orders-look.")
    );
    let decide_by = at(inspection["decide_by"].as_str().unwrap());
    assert_eq!(decide_by, t.app.now() + Duration::hours(24));
    let first = job(&t, &id).await;
    assert_eq!(first.state, JobState::Paused);
    assert_eq!(first.lease_owner, None, "nobody holds a paused copy");
    assert!(first.verification_report.as_ref().unwrap().passed());
    assert!(
        mail_kinds(&t, &id, "alice@contoso.example")
            .await
            .contains(&"ready_to_inspect".to_string())
    );
    let ready = t
        .app
        .store
        .outbox(&OutboxQuery {
            ticket_id: Some(first.ticket_id.unwrap()),
            limit: 200,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.kind == "ready_to_inspect")
        .unwrap();
    assert!(
        ready.text_body.contains("paused and read-only"),
        "{}",
        ready.text_body
    );
    assert!(
        ready.text_body.contains("orders-look."),
        "the read-only connection"
    );
    assert!(ready.text_body.contains("it is handed over as it is"));

    // Later, on the same copy: one base restore, not two.
    let (status, moved) = alice
        .post(
            &format!("/api/v1/tickets/{id}/move-forward"),
            json!({"target_time": "2026-11-24T16:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["state"], "restoring");
    assert_eq!(moved["inspection"], Value::Null);
    let moving = job(&t, &id).await;
    assert_eq!(moving.state, JobState::ReplayingLog);
    assert_eq!(moving.target_time, at("2026-11-24T16:00:00Z"));
    drain(&t).await;
    let again = job(&t, &id).await;
    assert_eq!(again.state, JobState::Paused);
    assert_eq!(again.run, 1, "the same copy replayed on");
    assert_eq!(again.new_cluster_id, first.new_cluster_id);
    assert_eq!(
        again.snapshot_id, first.snapshot_id,
        "no new snapshot laid down"
    );
    assert!(again.reached_point.unwrap() > first.reached_point.unwrap());
    let paused = ticket(&alice, &id).await;
    assert_eq!(paused["state"], "awaiting_decision");
    assert_eq!(paused["target_time"], "2026-11-24T16:00:00Z");

    let (status, accepted) = alice
        .post(&format!("/api/v1/tickets/{id}/accept"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    drain(&t).await;
    let done = ticket(&alice, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
    let handed = job(&t, &id).await;
    assert_eq!(handed.state, JobState::Succeeded);
    assert_eq!(handed.run, 1);
    let cluster = t
        .app
        .store
        .cluster(handed.new_cluster_id, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cluster.restored_from.unwrap().point_in_time,
        at("2026-11-24T16:00:00Z")
    );
    let kinds = mail_kinds(&t, &id, "alice@contoso.example").await;
    for kind in [
        "ready_to_inspect",
        "inspection_decided",
        "restore_completed",
    ] {
        assert!(kinds.contains(&kind.to_string()), "{kind}: {kinds:?}");
    }
    assert_eq!(
        kinds.iter().filter(|k| *k == "ready_to_inspect").count(),
        2,
        "told each time the copy paused"
    );
    let sam_kinds = mail_kinds(&t, &id, "sam@support.example").await;
    assert!(
        sam_kinds.contains(&"inspection_decided".to_string()),
        "{sam_kinds:?}"
    );

    // Accepting twice changes nothing.
    let (status, twice) = alice
        .post(&format!("/api/v1/tickets/{id}/accept"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{twice}");
    assert_eq!(twice["error"]["code"], "wrong_state");
}

async fn going_back_removes_the_paused_copy_for_a_new_restore(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let id = approved_for_inspection(
        &t,
        &alice,
        "orders-prod",
        "2026-11-24T10:00:00Z",
        "orders-back",
    )
    .await;
    drain(&t).await;
    let first = job(&t, &id).await;
    assert_eq!(first.state, JobState::Paused);

    let (status, back) = alice
        .post(
            &format!("/api/v1/tickets/{id}/go-back"),
            json!({"local_time": "2026-11-23T09:00", "time_zone": "Europe/Amsterdam"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["target_time"], "2026-11-23T08:00:00Z");
    assert_eq!(back["time_zone"], "Europe/Amsterdam");
    drain(&t).await;
    let second = job(&t, &id).await;
    assert_eq!(second.state, JobState::Paused, "{second:?}");
    assert_eq!(second.run, 2, "a new restore");
    assert_ne!(second.new_cluster_id, first.new_cluster_id);
    assert!(second.reached_point.unwrap() <= at("2026-11-23T08:00:00Z"));
    assert!(
        t.app
            .store
            .cluster(first.new_cluster_id, Scope::Everything)
            .await
            .unwrap()
            .is_none(),
        "the paused copy is gone"
    );
    let (status, _) = alice
        .post(&format!("/api/v1/tickets/{id}/accept"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    drain(&t).await;
    assert_eq!(ticket(&alice, &id).await["state"], "completed");
}

/// Every wrong move is refused with its reason, and the ticket, its job and
/// the outbox stay as they were.
async fn wrong_moves_are_refused_and_change_nothing(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let bob = Api::signed_in(&t.base, "bob@fabrikam.example").await;
    let sam = Api::signed_in(&t.base, "sam@support.example").await;
    let id =
        approved_for_inspection(&t, &alice, "legacy-crm", "2026-11-24T10:00:00Z", "crm-look").await;
    drain(&t).await;
    let before = ticket(&alice, &id).await;
    assert_eq!(before["state"], "awaiting_decision");
    let job_before = job(&t, &id).await;
    let outbox = |t: &TestApp| {
        let app = t.app.clone();
        async move {
            app.store
                .outbox(&OutboxQuery {
                    limit: 500,
                    ..Default::default()
                })
                .await
                .unwrap()
                .len()
        }
    };
    let mail_before = outbox(&t).await;
    let path = |what: &str| format!("/api/v1/tickets/{id}/{what}");
    let cases: Vec<(&Api, String, Value, StatusCode, &str)> = vec![
        // Not later than the copy's moment, on the same copy.
        (
            &alice,
            path("move-forward"),
            json!({"target_time": "2026-11-24T09:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "target_not_later",
        ),
        (
            &alice,
            path("move-forward"),
            json!({"target_time": "2026-11-24T10:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "target_not_later",
        ),
        (
            &alice,
            path("go-back"),
            json!({"target_time": "2026-11-24T11:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "target_not_earlier",
        ),
        // No such transaction in the archived log.
        (
            &alice,
            path("move-forward"),
            json!({"transaction": {"id": 999_999_999_u64, "position": "before"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_transaction",
        ),
        // One past any commit the log could hold: refused, no panic.
        (
            &alice,
            path("move-forward"),
            json!({"transaction": {"id": 5_000_000_000_000_000_000_u64, "position": "after"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_transaction",
        ),
        // Outside the window.
        (
            &alice,
            path("move-forward"),
            json!({"target_time": "2027-01-01T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "target_in_future",
        ),
        (
            &alice,
            path("go-back"),
            json!({"target_time": "2026-09-01T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "target_outside_retention",
        ),
        // Held only in az1, which is offline.
        (
            &alice,
            path("go-back"),
            json!({"target_time": "2026-10-30T10:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_backup_in_online_zone",
        ),
        // Not theirs: another subscription's customer learns nothing.
        (
            &bob,
            path("accept"),
            json!({}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            &bob,
            path("move-forward"),
            json!({"target_time": "2026-11-24T16:00:00Z"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        // The customer decides, not staff.
        (
            &sam,
            path("accept"),
            json!({}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            &sam,
            path("go-back"),
            json!({"target_time": "2026-11-24T09:00:00Z"}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        // A stale view.
        (
            &alice,
            path("accept"),
            json!({"version": 1}),
            StatusCode::CONFLICT,
            "conflict",
        ),
    ];
    for (api, path, body, status, code) in cases {
        let (got, answer) = api.post(&path, body.clone()).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{path} {body}: {answer}"
        );
    }
    let after = ticket(&alice, &id).await;
    assert_eq!(after, before, "nothing changed");
    assert_eq!(job(&t, &id).await, job_before);
    assert_eq!(outbox(&t).await, mail_before, "nobody was emailed");

    // Nothing to decide about before the copy pauses, or without asking.
    let plain = t.file_request(&alice, "orders-prod", "orders-plain").await;
    let (status, refused) = alice
        .post(&format!("/api/v1/tickets/{plain}/accept"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "wrong_state");
}

async fn a_copy_nobody_decides_about_is_handed_over_as_it_is(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let id = approved_for_inspection(
        &t,
        &alice,
        "orders-prod",
        "2026-11-24T10:00:00Z",
        "orders-wait",
    )
    .await;
    drain(&t).await;
    assert_eq!(ticket(&alice, &id).await["state"], "awaiting_decision");
    // Not yet.
    t.clock.advance(Duration::hours(23));
    assert_eq!(duties::hand_over_undecided(&t.app).await.unwrap(), 0);
    t.clock.advance(Duration::hours(2));
    assert_eq!(duties::hand_over_undecided(&t.app).await.unwrap(), 1);
    assert_eq!(
        duties::hand_over_undecided(&t.app).await.unwrap(),
        0,
        "once"
    );
    drain(&t).await;
    let done = ticket(&alice, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
    let messages = t
        .app
        .store
        .messages(id.parse::<uuid::Uuid>().unwrap().into(), false)
        .await
        .unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m.body.contains("No decision came in time"))
    );
    let kinds = mail_kinds(&t, &id, "alice@contoso.example").await;
    assert!(
        kinds.contains(&"inspection_decided".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"restore_completed".to_string()),
        "{kinds:?}"
    );
}

/// The same through the pages: the request form's box, the engineer's
/// approval, the customer's decision panel with its refusals in place.
async fn the_pages_offer_the_decision_and_keep_refusals_beside_the_form(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let orders = t.cluster_id("orders-prod").await.to_string();
    let mut alice = Browser::new(&t.base);
    alice.sign_in("alice@contoso.example").await;
    let form = alice
        .page(&format!("/requests/new?problem=restore&cluster={orders}"))
        .await;
    assert!(form.contains("Let me look at the restored copy before it is handed over"));
    let filed = alice
        .post(
            "/requests",
            &[
                ("cluster_id", &orders),
                ("date", "2026-11-24"),
                ("time", "11:00"),
                ("time_zone", "Europe/Amsterdam"),
                ("new_cluster_name", "orders-page"),
                ("severity", "B"),
                ("description", "look first"),
                ("inspect", "yes"),
                ("intent", "file"),
            ],
        )
        .await;
    let page = alice.follow(filed).await;
    let id = t
        .app
        .store
        .tickets(&restore_desk::store::TicketQuery {
            scope: Scope::Everything,
            states: vec![],
            severity: None,
            assignee: restore_desk::store::AssigneeFilter::Anyone,
            response_due_before: None,
            search: None,
            order: restore_desk::store::TicketOrder::Newest { before: None },
            limit: 1,
        })
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(id.inspect, "the box was ticked: {page}");
    let id = id.id.to_string();
    // The engineer sees the customer asked already.
    let mut sam = Browser::new(&t.base);
    sam.sign_in("sam@support.example").await;
    sam.page(&format!("/staff/tickets/{id}")).await;
    let response = sam.post(&format!("/staff/tickets/{id}/claim"), &[]).await;
    let staff_page = sam.follow(response).await;
    assert!(staff_page.contains("(they asked to)"), "{staff_page}");
    let response = sam.post(&format!("/staff/tickets/{id}/approve"), &[]).await;
    sam.follow(response).await;
    drain(&t).await;

    let page = alice.page(&format!("/tickets/{id}")).await;
    assert!(
        page.contains("Your restored copy is ready to inspect"),
        "{page}"
    );
    assert!(page.contains("orders-page."), "the read-only connection");
    assert!(page.contains("Move forward to this moment"));
    let version = common::web::version_in(&page).unwrap().to_string();
    // An earlier moment to move forward to: refused beside the form.
    let refused = alice
        .post(
            &format!("/tickets/{id}/move-forward"),
            &[
                ("version", &version),
                ("date", "2026-11-24"),
                ("time", "09:00:00"),
                ("time_zone", "Europe/Amsterdam"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("Moving forward needs a moment after"),
        "{html}"
    );
    assert!(html.contains("value=\"09:00:00\""), "what was typed stays");
    assert_eq!(
        ticket(&Api::signed_in(&t.base, "alice@contoso.example").await, &id).await["state"],
        "awaiting_decision"
    );

    // Back an hour: a new restore, paused again, then accepted.
    let went = alice
        .post(
            &format!("/tickets/{id}/go-back"),
            &[
                ("version", &version),
                ("date", "2026-11-24"),
                ("time", "10:00:00"),
                ("time_zone", "Europe/Amsterdam"),
            ],
        )
        .await;
    let page = alice.follow(went).await;
    assert!(page.contains("Going back"), "{page}");
    drain(&t).await;
    let page = alice.page(&format!("/tickets/{id}")).await;
    assert!(
        page.contains("Your restored copy is ready to inspect"),
        "{page}"
    );
    let version = common::web::version_in(&page).unwrap().to_string();
    let accepted = alice
        .post(&format!("/tickets/{id}/accept"), &[("version", &version)])
        .await;
    let page = alice.follow(accepted).await;
    assert!(page.contains("Accepted"), "{page}");
    drain(&t).await;
    let page = alice.page(&format!("/tickets/{id}")).await;
    assert!(page.contains("Your new cluster is ready"), "{page}");
    let stored = job(&t, &id).await;
    assert_eq!((stored.state, stored.run), (JobState::Succeeded, 2));
    assert_eq!(stored.target_time, at("2026-11-24T09:00:00Z"));
}

mod sqlite {
    #[tokio::test]
    async fn the_pages_offer_the_decision_and_keep_refusals_beside_the_form() {
        super::the_pages_offer_the_decision_and_keep_refusals_beside_the_form(false).await
    }
    #[tokio::test]
    async fn paused_moves_forward_on_the_same_copy_then_is_accepted() {
        super::paused_moves_forward_on_the_same_copy_then_is_accepted(false).await
    }
    #[tokio::test]
    async fn going_back_removes_the_paused_copy_for_a_new_restore() {
        super::going_back_removes_the_paused_copy_for_a_new_restore(false).await
    }
    #[tokio::test]
    async fn wrong_moves_are_refused_and_change_nothing() {
        super::wrong_moves_are_refused_and_change_nothing(false).await
    }
    #[tokio::test]
    async fn a_copy_nobody_decides_about_is_handed_over_as_it_is() {
        super::a_copy_nobody_decides_about_is_handed_over_as_it_is(false).await
    }
}

mod postgres {
    #[tokio::test]
    async fn the_pages_offer_the_decision_and_keep_refusals_beside_the_form() {
        super::the_pages_offer_the_decision_and_keep_refusals_beside_the_form(true).await
    }
    #[tokio::test]
    async fn paused_moves_forward_on_the_same_copy_then_is_accepted() {
        super::paused_moves_forward_on_the_same_copy_then_is_accepted(true).await
    }
    #[tokio::test]
    async fn going_back_removes_the_paused_copy_for_a_new_restore() {
        super::going_back_removes_the_paused_copy_for_a_new_restore(true).await
    }
    #[tokio::test]
    async fn wrong_moves_are_refused_and_change_nothing() {
        super::wrong_moves_are_refused_and_change_nothing(true).await
    }
    #[tokio::test]
    async fn a_copy_nobody_decides_about_is_handed_over_as_it_is() {
        super::a_copy_nobody_decides_about_is_handed_over_as_it_is(true).await
    }
}
