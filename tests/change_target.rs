//! Correcting a request before approval: the assigned engineer moves the
//! target, or the customer does in answer to a question; the new target is
//! checked like a new request's, its deadline follows it, the audit trail
//! keeps both moments and the other side is emailed. Bad input, the wrong
//! person or the wrong moment changes nothing. Both stores.

mod common;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::web::{Api, TestApp, csrf_in, spawn_app, version_in};
use restore_desk::store::{OutboxMessage, OutboxQuery, Scope, Ticket};

async fn stored(t: &TestApp, id: &str) -> Ticket {
    t.app
        .store
        .ticket(id.parse().unwrap(), Scope::Everything)
        .await
        .unwrap()
        .unwrap()
}

async fn mail(t: &TestApp, id: &str) -> Vec<OutboxMessage> {
    t.app
        .store
        .outbox(&OutboxQuery {
            status: None,
            ticket_id: Some(id.parse().unwrap()),
            limit: 100,
        })
        .await
        .unwrap()
}

async fn events(api: &Api, id: &str) -> Vec<Value> {
    let (status, events) = api.get(&format!("/api/v1/tickets/{id}/events")).await;
    assert_eq!(status, StatusCode::OK, "{events}");
    events.as_array().unwrap().clone()
}

async fn the_engineer_moves_the_target_and_bad_input_changes_nothing(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let sam = Api::signed_in(&t.base, "sam@support.example").await;
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let bob = Api::signed_in(&t.base, "bob@fabrikam.example").await;
    let id = t.file_request(&alice, "orders-prod", "orders-moved").await;
    let path = format!("/api/v1/tickets/{id}/target");
    let good = json!({"local_time": "2026-11-24T09:30:15", "time_zone": "Europe/Amsterdam",
                      "reason": "The customer said on the phone it was half past nine"});

    // Before anyone claims it, and by anyone but the assigned engineer:
    // refused, nothing changes.
    let (status, body) = sam.post(&path, good.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "wrong_state");
    t.staff_acts(&id, &[("claim", json!({}))]).await;
    let before = stored(&t, &id).await;
    let emails_before = mail(&t, &id).await.len();
    let refusals: Vec<(&Api, Value, StatusCode, &str)> = vec![
        (&ada, good.clone(), StatusCode::CONFLICT, "not_assignee"),
        (&alice, good.clone(), StatusCode::CONFLICT, "wrong_state"),
        (&bob, good.clone(), StatusCode::NOT_FOUND, "not_found"),
        (
            &sam,
            json!({"target_time": "half past nine", "reason": "typo"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_timestamp",
        ),
        (
            &sam,
            json!({"target_time": "2026-11-24T09:30:00Z", "reason": "   "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            &sam,
            json!({"target_time": "2026-11-24T09:30:00Z", "reason": "x", "version": 1}),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            &sam,
            json!({"local_time": "2026-11-24T09:30", "time_zone": "Mars/Olympus", "reason": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_timestamp",
        ),
    ];
    for (api, body, expect, code) in refusals {
        let (status, answer) = api.post(&path, body.clone()).await;
        assert_eq!(status, expect, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        assert_eq!(stored(&t, &id).await, before, "{body} changed the ticket");
    }
    // A moment the backups no longer hold: the window's own code.
    let (status, answer) = sam
        .post(
            &path,
            json!({"target_time": "2026-09-01T10:00:00Z", "reason": "much earlier"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let code = answer["error"]["code"].as_str().unwrap();
    assert!(
        !["invalid_input", "invalid_timestamp"].contains(&code),
        "a window rule refused it: {answer}"
    );
    assert_eq!(stored(&t, &id).await, before);
    assert_eq!(mail(&t, &id).await.len(), emails_before, "no email");

    // The engineer moves it: checked, its deadline follows, both moments
    // in the history, the customer emailed with the new one.
    let (status, moved) = sam.post(&path, good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["target_time"], "2026-11-24T08:30:15Z");
    assert_eq!(moved["time_zone"], "Europe/Amsterdam");
    assert_eq!(moved["state"], "in_review");
    let after = stored(&t, &id).await;
    assert_eq!(
        after.deadline - after.target_time,
        before.deadline - before.target_time,
        "the deadline moves with the target"
    );
    assert_eq!(after.validation_report.target, after.target_time);
    assert!(after.validation_report.passed());
    let history = events(&sam, &id).await;
    let change = history
        .iter()
        .find(|e| e["action"] == "change_target")
        .expect("the change in the history");
    let detail = change["detail"].as_str().unwrap();
    assert!(
        detail.contains("2026-11-24T10:00:00Z") && detail.contains("2026-11-24T08:30:15Z"),
        "{detail}"
    );
    // The customer sees it too.
    assert!(
        events(&alice, &id)
            .await
            .iter()
            .any(|e| e["action"] == "change_target")
    );
    let told = mail(&t, &id).await;
    let email = told
        .iter()
        .find(|m| m.kind == "target_changed")
        .expect("the customer's email");
    assert_eq!(email.recipient, "alice@contoso.example");
    assert!(email.subject.contains("24 Nov 2026"), "{}", email.subject);
    assert!(
        email.text_body.contains("half past nine"),
        "{}",
        email.text_body
    );

    // Approval restores to the new moment; after it, the target stays.
    t.staff_acts(&id, &[("approve", json!({}))]).await;
    let job = t
        .app
        .store
        .job_for_ticket(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.target_time, after.target_time);
    let (status, answer) = sam
        .post(
            &path,
            json!({"target_time": "2026-11-24T07:00:00Z", "reason": "too late"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
}

async fn the_customer_corrects_it_in_answer_to_a_question(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let id = t.file_request(&alice, "orders-prod", "orders-answer").await;
    t.staff_acts(
        &id,
        &[
            ("claim", json!({})),
            (
                "request-info",
                json!({"body": "Are you sure about 10:00 UTC?"}),
            ),
        ],
    )
    .await;

    let mut page = t.browser();
    page.sign_in("alice@contoso.example").await;
    let html = page.page(&format!("/tickets/{id}")).await;
    assert!(html.contains("action=\"/tickets/"), "{html}");
    assert!(html.contains("id=\"target-form\""), "offered: {html}");
    let csrf = csrf_in(&html).unwrap();
    let version = version_in(&html).unwrap().to_string();
    let before = stored(&t, &id).await;

    // Refused on the page: what was typed stays, with the reason.
    let refused = page
        .post_raw(
            &format!("/tickets/{id}/target"),
            &[
                ("csrf", &csrf),
                ("version", &version),
                ("date", "2026-09-01"),
                ("time", "09:00"),
                ("time_zone", "Asia/Tokyo"),
                ("reason", "it was in September"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = refused.text().await.unwrap();
    assert!(body.contains("value=\"2026-09-01\""), "typed date kept");
    assert!(body.contains("it was in September"), "typed reason kept");
    assert!(body.contains("id=\"target-error\""), "{body}");
    assert_eq!(stored(&t, &id).await, before);

    // Accepted: back to the engineer, who is emailed.
    let done = page
        .post_raw(
            &format!("/tickets/{id}/target"),
            &[
                ("csrf", &csrf),
                ("version", &version),
                ("date", "2026-11-24"),
                ("time", "18:45"),
                ("time_zone", "Asia/Tokyo"),
                ("reason", "Right, it was 18:45 in Tokyo"),
            ],
        )
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let after = stored(&t, &id).await;
    assert_eq!(after.state.as_str(), "in_review");
    assert_eq!(after.target_time.to_rfc3339(), "2026-11-24T09:45:00+00:00");
    assert_eq!(after.time_zone, "Asia/Tokyo");
    let html = page.page(&format!("/tickets/{id}")).await;
    assert!(html.contains("back with your engineer"), "the flash");
    assert!(html.contains("24 Nov 2026, 18:45 JST"), "{html}");
    assert!(!html.contains("id=\"target-form\""), "no longer offered");
    let told = mail(&t, &id).await;
    let email = told
        .iter()
        .find(|m| m.kind == "target_changed")
        .expect("the engineer's email");
    assert_eq!(email.recipient, "sam@support.example");
    assert!(email.text_body.contains("in answer to your question"));

    // The engineer's page offers the same form and takes a correction too.
    let mut sam = t.browser();
    sam.sign_in("sam@support.example").await;
    let html = sam.page(&format!("/staff/tickets/{id}")).await;
    assert!(
        html.contains("value=\"2026-11-24\""),
        "starts at the target"
    );
    assert!(
        html.contains("value=\"18:45:00\""),
        "in the zone it was entered in"
    );
    let csrf = csrf_in(&html).unwrap();
    let version = version_in(&html).unwrap().to_string();
    let done = sam
        .post_raw(
            &format!("/staff/tickets/{id}/target"),
            &[
                ("csrf", &csrf),
                ("version", &version),
                ("date", "2026-11-24"),
                ("time", "18:40"),
                ("time_zone", "Asia/Tokyo"),
                ("reason", "Five minutes earlier, before the deploy"),
            ],
        )
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let html = sam.page(&format!("/staff/tickets/{id}")).await;
    assert!(html.contains("the customer is told"), "the flash");
    assert_eq!(
        stored(&t, &id).await.target_time.to_rfc3339(),
        "2026-11-24T09:40:00+00:00"
    );
}

both_databases!(
    the_engineer_moves_the_target_and_bad_input_changes_nothing,
    the_customer_corrects_it_in_answer_to_a_question,
);
