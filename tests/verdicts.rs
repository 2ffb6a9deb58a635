//! The customer's verdict after hand-over: the completed email's link works
//! once, without signing in, and for nobody else; "not right" reopens the
//! ticket to its engineer with the comment; only the requester may give it,
//! once; admins see ratings by engineer and month. Both stores.

mod common;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::web::{Api, TestApp, spawn_app};
use restore_desk::store::{OutboxQuery, Scope};

/// A ticket of alice's, approved by sam and restored: handed over.
async fn handed_over(t: &TestApp, name: &str) -> String {
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let id = t.file_request(&alice, "orders-prod", name).await;
    t.staff_acts(&id, &[("claim", json!({})), ("approve", json!({}))])
        .await;
    restore_desk::engine::drain(&t.app).await.unwrap();
    let (_, ticket) = alice.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(ticket["state"], "completed", "{ticket}");
    id
}

/// The verdict link in alice's completed email.
async fn emailed_link(t: &TestApp, ticket_id: &str) -> String {
    let mail = t
        .app
        .store
        .outbox(&OutboxQuery {
            status: None,
            ticket_id: Some(ticket_id.parse().unwrap()),
            limit: 100,
        })
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.kind == "restore_completed" && m.recipient == "alice@contoso.example")
        .expect("the completed email");
    let at = mail.text_body.find("/verdict/").expect("a verdict link");
    let link: String = mail.text_body[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert!(mail.html_body.contains(&link), "the HTML part has it too");
    link
}

async fn the_verdict_link_works_once_and_for_nobody_else(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let id = handed_over(&t, "verdict-link").await;
    let other = handed_over(&t, "verdict-other").await;
    let link = emailed_link(&t, &id).await;
    let token = link.rsplit('/').next().unwrap().to_string();

    // Staff see the hand-over as not confirmed yet.
    let mut sam = t.browser();
    sam.sign_in("sam@support.example").await;
    let queue = sam.page("/staff/tickets").await;
    assert!(queue.contains("Handed over, not confirmed yet"), "{queue}");
    let reference = t
        .app
        .store
        .ticket(id.parse().unwrap(), Scope::Everything)
        .await
        .unwrap()
        .unwrap()
        .reference();
    assert!(queue.contains(&reference));

    // No sign-in needed; a link that is not the ticket's own is not found.
    let mut anyone = t.browser();
    let page = anyone.page(&link).await;
    assert!(page.contains("is the restored data right?"), "{page}");
    let mut forged = token.clone();
    forged.replace_range(0..1, if token.starts_with('0') { "1" } else { "0" });
    for wrong in [
        format!("/verdict/{id}/{forged}"),
        format!("/verdict/{other}/{token}"),
        format!("/verdict/{id}/short"),
    ] {
        assert_eq!(
            anyone.get(&wrong).await.status(),
            StatusCode::NOT_FOUND,
            "{wrong}"
        );
        let posted = anyone
            .post(&wrong, &[("data_right", "yes"), ("rating", "5")])
            .await;
        assert_eq!(posted.status(), StatusCode::NOT_FOUND, "{wrong}");
    }

    let done = anyone
        .post(
            &link,
            &[
                ("data_right", "yes"),
                ("rating", "4"),
                ("rating_comment", "quick and clear"),
            ],
        )
        .await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("Your verdict is recorded")
    );
    // Used: refused, on the page and when posted again.
    let again = anyone.get(&link).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again.text().await.unwrap().contains("given already"));
    let twice = anyone
        .post(
            &link,
            &[
                ("data_right", "no"),
                ("comment", "changed my mind"),
                ("rating", "1"),
            ],
        )
        .await;
    assert_eq!(twice.status(), StatusCode::CONFLICT);

    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let (status, verdict) = alice.get(&format!("/api/v1/tickets/{id}/verdict")).await;
    assert_eq!(status, StatusCode::OK, "{verdict}");
    assert_eq!(verdict["data_right"], true);
    assert_eq!(verdict["rating"], 4);
    assert_eq!(verdict["rating_comment"], "quick and clear");
    assert_eq!(verdict["channel"], "email_link");
    let bob = Api::signed_in(&t.base, "bob@fabrikam.example").await;
    let (status, _) = bob.get(&format!("/api/v1/tickets/{id}/verdict")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, ticket) = alice.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(
        ticket["state"], "completed",
        "a good verdict changes nothing"
    );

    let mut alice_page = t.browser();
    alice_page.sign_in("alice@contoso.example").await;
    let page = alice_page.page(&format!("/tickets/{id}")).await;
    assert!(
        page.contains("You confirmed the restored data is right"),
        "{page}"
    );
    // The other ticket still offers its form on the page.
    let page = alice_page.page(&format!("/tickets/{other}")).await;
    assert!(page.contains("How was the help?"), "{page}");
    let queue = sam.page("/staff/tickets").await;
    assert!(!queue.contains(&reference), "confirmed: off the list");
    let sam_api = Api::signed_in(&t.base, "sam@support.example").await;
    let (_, handovers) = sam_api.get("/api/v1/handovers").await;
    let listed: Vec<&str> = handovers
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [other.as_str()], "only the unconfirmed one");
}

async fn not_right_reopens_the_ticket_with_its_comment(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let id = handed_over(&t, "verdict-wrong").await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let sam = Api::signed_in(&t.base, "sam@support.example").await;
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let path = format!("/api/v1/tickets/{id}/verdict");

    // Another person of the same customer, staff and admins may not.
    let (status, body) = ada
        .post(
            "/api/v1/users",
            json!({"email": "carol@contoso.example", "name": "Carol", "role": "customer",
                   "subscription": "contoso", "time_zone": "UTC", "password": "long enough passphrase"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut carol = Api::new(&t.base);
    let (status, login) = carol
        .post(
            "/api/v1/login",
            json!({"email": "carol@contoso.example", "password": "long enough passphrase"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    carol.token = Some(login["token"].as_str().unwrap().to_string());
    for (who, api) in [("carol", &carol), ("sam", &sam), ("ada", &ada)] {
        let (status, body) = api
            .post(&path, json!({"data_right": true, "rating": 5}))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
    }

    // Bad input: a clear error, nothing stored.
    let cases: [(Value, &str); 4] = [
        (json!({"data_right": false, "rating": 2}), "comment"),
        (
            json!({"data_right": false, "comment": "  ", "rating": 2}),
            "comment",
        ),
        (
            json!({"data_right": false, "comment": "x".repeat(2001), "rating": 2}),
            "comment",
        ),
        (json!({"data_right": true, "rating": 0}), "rating"),
    ];
    for (body, field) in cases {
        let (status, answer) = alice.post(&path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, _) = alice.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing stored");

    let (status, verdict) = alice
        .post(
            &path,
            json!({"data_right": false, "comment": "the orders of 14:20 are missing", "rating": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{verdict}");
    assert_eq!(verdict["channel"], "desk");
    let (_, ticket) = alice.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(ticket["state"], "in_review", "{ticket}");
    let (_, messages) = sam.get(&format!("/api/v1/tickets/{id}/messages")).await;
    assert!(
        messages
            .to_string()
            .contains("the orders of 14:20 are missing"),
        "{messages}"
    );
    // Sam, its engineer, is told by email.
    let told = t
        .app
        .store
        .outbox(&OutboxQuery {
            status: None,
            ticket_id: Some(id.parse().unwrap()),
            limit: 100,
        })
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.kind == "reopened")
        .expect("the engineer's email");
    assert_eq!(told.recipient, "sam@support.example");
    assert!(told.text_body.contains("the orders of 14:20 are missing"));
    // Once only.
    let (status, again) = alice
        .post(&path, json!({"data_right": true, "rating": 5}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["error"]["code"], "verdict_given");

    // The staff page shows the verdict beside the restore it is about, and
    // offers to resolve the ticket.
    let mut sam_page = t.browser();
    sam_page.sign_in("sam@support.example").await;
    let page = sam_page.page(&format!("/staff/tickets/{id}")).await;
    assert!(
        page.contains("The data is <strong>not right</strong>: “the orders of 14:20 are missing”"),
        "{page}"
    );
    assert!(page.contains("/resolve"), "{page}");
    // The engineer answers and closes it again; it is never approved twice.
    let (status, refused) = sam
        .post(&format!("/api/v1/tickets/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "already_restored");
    let (status, _) = sam
        .post(&format!("/api/v1/tickets/{id}/reply"), json!({"body": "The 14:20 orders came after your target; file a new request for 14:25."}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, resolved) = sam
        .post(&format!("/api/v1/tickets/{id}/resolve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["state"], "completed");

    // Admins see it rated, by engineer and by month, on the page and the API.
    let (status, rated) = ada.get("/api/v1/ratings").await;
    assert_eq!(status, StatusCode::OK, "{rated}");
    assert_eq!(rated["by_engineer"][0]["label"], "Sam Okafor");
    assert_eq!(rated["by_engineer"][0]["verdicts"], 1);
    assert_eq!(rated["by_engineer"][0]["not_right"], 1);
    assert_eq!(rated["by_month"][0]["average"], 2.0);
    let mut ada_page = t.browser();
    ada_page.sign_in("ada@admin.example").await;
    let ratings = ada_page.page("/admin/ratings").await;
    assert!(ratings.contains("Sam"), "{ratings}");
    assert!(ratings.contains("2.0 / 5"), "{ratings}");
    assert!(ratings.contains(&t.clock_month()), "{ratings}");
}

trait Month {
    fn clock_month(&self) -> String;
}

impl Month for TestApp {
    fn clock_month(&self) -> String {
        use restore_desk::clock::Clock;
        self.clock.now().format("%Y-%m").to_string()
    }
}

both_databases!(
    multi_thread;
    the_verdict_link_works_once_and_for_nobody_else,
    not_right_reopens_the_ticket_with_its_comment,
);
