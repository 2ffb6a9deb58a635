//! The whole customer → staff flow over HTTP, on SQLite and on PostgreSQL:
//! once through the HTML forms as people use them, once through the JSON API.

mod common;

use reqwest::StatusCode;
use serde_json::json;

use common::web::{Api, spawn_app, version_in};
use restore_desk::domain::ticket::TicketState;
use restore_desk::store::{OutboxQuery, Scope};

async fn ticket_state(app: &common::web::TestApp, number: i64) -> TicketState {
    app.app
        .store
        .ticket_by_number(number, Scope::Everything)
        .await
        .unwrap()
        .unwrap()
        .state
}

async fn html_flow(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let orders = t.cluster_id("orders-prod").await.to_string();

    // The customer's way in: Help + support → Create a support request → restore.
    let mut alice = t.browser();
    alice.sign_in("alice@contoso.example").await;
    let clusters = alice.page("/clusters").await;
    assert!(clusters.contains("orders-prod") && clusters.contains("<svg"));
    assert!(
        !clusters.contains("inventory"),
        "another subscription's cluster"
    );
    let support = alice.page("/support").await;
    assert!(support.contains("href=\"/support/new\""));
    let new = alice.page("/support/new").await;
    assert!(new.contains("Restore a cluster from a backup"));
    let form = alice
        .page(&format!("/requests/new?problem=restore&cluster={orders}"))
        .await;
    assert!(form.contains("name=\"time_zone\""));
    assert!(form.contains("<option value=\"Europe/Amsterdam\" selected>Europe/Amsterdam</option>"));

    // A target older than the retention: the form says why, and nothing is stored.
    let refused = alice
        .post(
            "/requests",
            &[
                ("cluster_id", &orders),
                ("date", "2026-10-01"),
                ("time", "10:00"),
                ("time_zone", "Europe/Amsterdam"),
                ("new_cluster_name", "orders-fix"),
                ("severity", "A"),
                ("description", "keep me"),
                ("intent", "file"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.unwrap();
    assert!(html.contains("Backups are kept for 35 days"), "{html}");
    assert!(html.contains(">keep me</textarea>"), "what was typed stays");
    assert_eq!(
        t.app
            .store
            .count_tickets(Scope::Everything, &[])
            .await
            .unwrap(),
        0
    );

    // Checking without filing shows the UTC equivalent.
    let checked = alice
        .post(
            "/requests",
            &[
                ("cluster_id", &orders),
                ("date", "2026-11-24"),
                ("time", "14:30"),
                ("time_zone", "Europe/Amsterdam"),
                ("new_cluster_name", "orders-fix"),
                ("severity", "A"),
                ("intent", "check"),
            ],
        )
        .await;
    assert_eq!(checked.status(), StatusCode::OK);
    let html = checked.text().await.unwrap();
    assert!(html.contains("2026-11-24 13:30:00 UTC"), "{html}");
    assert_eq!(
        t.app
            .store
            .count_tickets(Scope::Everything, &[])
            .await
            .unwrap(),
        0
    );

    // Filing.
    let filed = alice
        .post(
            "/requests",
            &[
                ("cluster_id", &orders),
                ("date", "2026-11-24"),
                ("time", "14:30"),
                ("time_zone", "Europe/Amsterdam"),
                ("new_cluster_name", "orders-fix"),
                ("severity", "A"),
                ("description", "A migration dropped the orders table."),
                ("intent", "file"),
            ],
        )
        .await;
    let page = alice.follow(filed).await;
    assert!(page.contains("RD-000001"));
    assert!(page.contains("Request RD-000001 is filed"));
    assert!(page.contains("2026-11-24 13:30:00 UTC"));
    assert!(page.contains("24 Nov 2026, 14:30:00 CET (Europe/Amsterdam)"));
    let ticket_path = {
        let ticket = t
            .app
            .store
            .ticket_by_number(1, Scope::Everything)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ticket.target_time.to_rfc3339(), "2026-11-24T13:30:00+00:00");
        ticket.id
    };
    let mine = alice.page("/tickets").await;
    assert!(mine.contains("RD-000001"));

    // Staff: the queue, claim, ask the customer.
    let mut sam = t.browser();
    sam.sign_in("sam@support.example").await;
    let queue = sam.page("/staff/tickets").await;
    assert!(queue.contains("RD-000001") && queue.contains("left"));
    let staff_path = format!("/staff/tickets/{ticket_path}");
    let page = sam.page(&staff_path).await;
    assert!(page.contains("Validation report") && page.contains("Restorable"));
    let version = version_in(&page).unwrap().to_string();
    let claimed = sam
        .post(&format!("{staff_path}/claim"), &[("version", &version)])
        .await;
    let page = sam.follow(claimed).await;
    assert!(page.contains("You claimed RD-000001"));
    assert_eq!(ticket_state(&t, 1).await, TicketState::InReview);

    let version = version_in(&page).unwrap().to_string();
    let asked = sam
        .post(
            &format!("{staff_path}/request-info"),
            &[
                ("version", &version),
                ("body", "Which schema was affected?"),
            ],
        )
        .await;
    let page = sam.follow(asked).await;
    assert_eq!(ticket_state(&t, 1).await, TicketState::AwaitingCustomer);

    // A stale form (the version before the question) fails cleanly.
    let stale = sam
        .post(
            &format!("{staff_path}/note"),
            &[("version", &version), ("body", "too late")],
        )
        .await;
    assert_eq!(stale.status(), StatusCode::CONFLICT);
    let _ = page;

    // The customer answers; the ticket goes back to review.
    let page = alice.page(&format!("/tickets/{ticket_path}")).await;
    assert!(page.contains("Which schema was affected?"));
    let version = version_in(&page).unwrap().to_string();
    let replied = alice
        .post(
            &format!("/tickets/{ticket_path}/reply"),
            &[("version", &version), ("body", "The public schema.")],
        )
        .await;
    alice.follow(replied).await;
    assert_eq!(ticket_state(&t, 1).await, TicketState::InReview);

    // An internal note, then approval.
    let page = sam.page(&staff_path).await;
    let version = version_in(&page).unwrap().to_string();
    let noted = sam
        .post(
            &format!("{staff_path}/note"),
            &[
                ("version", &version),
                ("body", "INTERNAL-ONLY: customer is on the enterprise plan"),
            ],
        )
        .await;
    let page = sam.follow(noted).await;
    assert!(page.contains("INTERNAL-ONLY"));
    let version = version_in(&page).unwrap().to_string();
    let approved = sam
        .post(&format!("{staff_path}/approve"), &[("version", &version)])
        .await;
    let page = sam.follow(approved).await;
    assert!(page.contains("is approved"));
    assert_eq!(ticket_state(&t, 1).await, TicketState::Approved);
    assert!(page.contains("<progress"));

    // The customer sees the restore queued, never the note.
    let page = alice.page(&format!("/tickets/{ticket_path}")).await;
    assert!(page.contains("<progress") && page.contains("Waiting to start"));
    assert!(!page.contains("INTERNAL-ONLY"));
    assert!(!page.contains("Internal note"));
    let progress = alice
        .get(&format!("/tickets/{ticket_path}/progress"))
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(progress["state"], "approved");
    assert_eq!(progress["job"]["progress"], 0);

    // The engine restores it; the customer's page hands over the new cluster.
    restore_desk::engine::drain(&t.app).await.unwrap();
    assert_eq!(ticket_state(&t, 1).await, TicketState::Completed);
    let page = alice.page(&format!("/tickets/{ticket_path}")).await;
    assert!(page.contains("Your new cluster is ready"), "{page}");
    assert!(page.contains("orders-fix.westeurope.sandbox.restore-desk.localhost"));
    assert!(page.contains("value=\"100\""));
    let progress = alice
        .get(&format!("/tickets/{ticket_path}/progress"))
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(progress["state"], "completed");
    assert_eq!(progress["job"]["progress"], 100);
    let page = sam.page(&staff_path).await;
    assert!(page.contains("Verification") && page.contains("passed"));
    assert!(page.contains("New cluster handed over"));

    // Emails went out at each step, and the staff actions are in the audit log.
    let mail = t
        .app
        .store
        .outbox(&OutboxQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<_> = mail.iter().map(|m| m.kind.as_str()).collect();
    for kind in [
        "request_received",
        "new_request",
        "information_requested",
        "customer_replied",
        "approved",
        "restore_started",
        "restore_completed",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing in {kinds:?}");
    }
    assert!(mail.iter().all(|m| !m.text_body.contains("INTERNAL-ONLY")));
    let events = t.app.store.ticket_events(ticket_path).await.unwrap();
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions[..7],
        [
            "file",
            "auto_validate",
            "claim",
            "request_info",
            "reply",
            "note",
            "approve",
        ]
    );
    assert!(actions.contains(&"job_started"));
    assert_eq!(actions.last(), Some(&"job_succeeded"));

    // A second request, cancelled by the customer before anyone acts.
    let filed = alice
        .post(
            "/requests",
            &[
                ("cluster_id", &orders),
                ("date", "2026-11-20"),
                ("time", "09:00:00"),
                ("time_zone", "America/New_York"),
                ("new_cluster_name", "orders-second"),
                ("severity", "C"),
                ("intent", "file"),
            ],
        )
        .await;
    let page = alice.follow(filed).await;
    assert!(page.contains("RD-000002"));
    let second = t
        .app
        .store
        .ticket_by_number(2, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.target_time.to_rfc3339(), "2026-11-20T14:00:00+00:00");
    let version = version_in(&page).unwrap().to_string();
    let unconfirmed = alice
        .post(
            &format!("/tickets/{}/cancel", second.id),
            &[("version", &version)],
        )
        .await;
    assert_eq!(unconfirmed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unconfirmed.text().await.unwrap().contains("Tick the box"));
    assert_ne!(ticket_state(&t, 2).await, TicketState::Cancelled);
    let cancelled = alice
        .post(
            &format!("/tickets/{}/cancel", second.id),
            &[("version", &version), ("confirm", "yes")],
        )
        .await;
    let page = alice.follow(cancelled).await;
    assert!(page.contains("The request is cancelled"));
    assert_eq!(ticket_state(&t, 2).await, TicketState::Cancelled);
}

/// Customers read their clusters' connections; staff and admins read none
/// in cluster lists and reads, by API or on their pages, and see a restored
/// cluster's only on its ticket's page, to hand it over.
async fn connections_only_where_a_ticket_needs_them(
    t: &common::web::TestApp,
    sam: &Api,
    ticket_id: &str,
    restored: &serde_json::Value,
) {
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let (_, own) = alice.get("/api/v1/clusters").await;
    for cluster in own.as_array().unwrap() {
        assert!(cluster["connection"]["host"].is_string(), "{cluster}");
    }
    assert!(restored["connection"]["host"].is_string(), "{restored}");
    let new_host = restored["connection"]["host"].as_str().unwrap();
    let source = t.cluster_id("orders-prod").await;
    let source_host = t
        .app
        .store
        .cluster(source.into(), Scope::Everything)
        .await
        .unwrap()
        .unwrap()
        .connection
        .host;

    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    for staff in [sam, &ada] {
        let (status, all) = staff.get("/api/v1/clusters").await;
        assert_eq!(status, StatusCode::OK);
        assert!(all.as_array().unwrap().len() > own.as_array().unwrap().len());
        for cluster in all.as_array().unwrap() {
            assert!(cluster["connection"].is_null(), "{cluster}");
        }
        for id in [source.to_string(), restored["id"].as_str().unwrap().into()] {
            let (status, one) = staff.get(&format!("/api/v1/clusters/{id}")).await;
            assert_eq!(status, StatusCode::OK);
            assert!(one["connection"].is_null(), "{one}");
        }
    }

    let mut sam_pages = t.browser();
    sam_pages.sign_in("sam@support.example").await;
    let queue = sam_pages.page("/staff/tickets?state=all").await;
    assert!(!queue.contains(&source_host) && !queue.contains(new_host));
    let ticket = sam_pages.page(&format!("/staff/tickets/{ticket_id}")).await;
    assert!(ticket.contains(new_host), "hand-over shows the new cluster");
    assert!(!ticket.contains(&source_host), "the source's connection");
    let mut ada_pages = t.browser();
    ada_pages.sign_in("ada@admin.example").await;
    let clusters = ada_pages.page("/admin/clusters").await;
    assert!(clusters.contains("orders-prod"));
    assert!(!clusters.contains(&source_host) && !clusters.contains(new_host));
}

async fn api_flow(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let sam = Api::signed_in(&t.base, "sam@support.example").await;

    let (status, clusters) = alice.get("/api/v1/clusters").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<_> = clusters
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"orders-prod") && !names.contains(&"inventory"));
    let orders = clusters
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "orders-prod")
        .unwrap()
        .clone();
    for key in [
        "id",
        "resource_group",
        "region",
        "config",
        "created_at",
        "deleted_at",
        "connection",
        "restored_from",
    ] {
        assert!(orders.get(key).is_some(), "cluster lacks {key}: {orders}");
    }
    assert!(orders["restorable"]["earliest"].is_string());
    let orders_id = orders["id"].as_str().unwrap().to_string();

    // Refusals carry the SPEC §4 code and store nothing.
    let (status, error) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders_id, "target_time": "2026-01-01T00:00:00Z",
                   "new_cluster_name": "orders-api", "severity": "B", "description": ""}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["code"], "target_outside_retention");
    assert_eq!(error["error"]["field"], "target_time");
    let (status, error) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders_id, "local_time": "2026-03-29T02:30",
                   "time_zone": "Europe/Amsterdam", "new_cluster_name": "orders-api",
                   "severity": "B"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["code"], "nonexistent_local_time");

    // Filing with a local time and zone.
    let (status, ticket) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders_id, "local_time": "2026-11-24T14:30",
                   "time_zone": "Europe/Amsterdam", "new_cluster_name": "orders-api",
                   "severity": "A", "description": "dropped a table"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    assert_eq!(ticket["number"], "RD-000001");
    assert_eq!(ticket["state"], "triage");
    assert_eq!(ticket["target_time"], "2026-11-24T13:30:00Z");
    assert_eq!(ticket["time_zone"], "Europe/Amsterdam");
    assert!(ticket["job"].is_null());
    assert!(
        ticket.get("validation").is_none(),
        "the report is for staff"
    );
    let id = ticket["id"].as_str().unwrap().to_string();

    // The queue, a claim, an internal note, approval.
    let (status, queue) = sam.get("/api/v1/tickets?severity=A").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queue["tickets"][0]["number"], "RD-000001");
    assert!(queue["tickets"][0]["validation"]["plan"].is_object());
    let (status, claimed) = sam
        .post(&format!("/api/v1/tickets/{id}/claim"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["assignee"]["name"], "Sam Okafor");
    let (status, mine) = sam.get("/api/v1/tickets?mine=true").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["tickets"].as_array().unwrap().len(), 1);
    let (status, _) = sam
        .post(
            &format!("/api/v1/tickets/{id}/note"),
            json!({"body": "INTERNAL-ONLY api note"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A stale version is refused with 409 `conflict`.
    let (status, error) = sam
        .post(
            &format!("/api/v1/tickets/{id}/approve"),
            json!({"version": claimed["version"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["error"]["code"], "conflict");
    let (status, approved) = sam
        .post(&format!("/api/v1/tickets/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["state"], "approved");
    let job_id = approved["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(approved["job"]["state"], "queued");
    assert_eq!(approved["job"]["progress"], 0);

    // The customer follows the job, sees the conversation without the note.
    let (status, job) = alice.get(&format!("/api/v1/jobs/{job_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["ticket_id"], id.as_str());
    assert_eq!(job["step"], "Waiting to start");
    let (_, messages) = alice.get(&format!("/api/v1/tickets/{id}/messages")).await;
    assert!(!messages.to_string().contains("INTERNAL-ONLY"));
    let (_, events) = alice.get(&format!("/api/v1/tickets/{id}/events")).await;
    let actions: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["file", "auto_validate", "claim", "approve"]);
    let (_, staff_messages) = sam.get(&format!("/api/v1/tickets/{id}/messages")).await;
    assert!(staff_messages.to_string().contains("INTERNAL-ONLY"));

    // The engine restores it: the job and the new cluster are there to read.
    restore_desk::engine::drain(&t.app).await.unwrap();
    let (_, job) = alice.get(&format!("/api/v1/jobs/{job_id}")).await;
    assert_eq!(job["state"], "succeeded");
    assert_eq!(job["progress"], 100);
    assert!(job["reached_point"].is_string());
    assert!(job.get("last_error").is_none(), "staff-only field");
    let (_, done) = alice.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(done["state"], "completed");
    let new_cluster = done["new_cluster_id"].as_str().unwrap();
    let (status, restored) = alice.get(&format!("/api/v1/clusters/{new_cluster}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(restored["name"], "orders-api");
    assert_eq!(restored["restored_from"]["ticket_id"], id.as_str());
    assert_eq!(restored["config"], orders["config"]);
    connections_only_where_a_ticket_needs_them(&t, &sam, &id, &restored).await;

    // A second request: rejected with a reason the customer reads.
    let (_, second) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders_id, "target_time": "2026-11-23T08:00:00+01:00",
                   "new_cluster_name": "orders-api-2", "severity": "C"}),
        )
        .await;
    let second_id = second["id"].as_str().unwrap().to_string();
    sam.post(&format!("/api/v1/tickets/{second_id}/claim"), json!({}))
        .await;
    let (status, error) = sam
        .post(&format!("/api/v1/tickets/{second_id}/reject"), json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "reason");
    let (status, rejected) = sam
        .post(
            &format!("/api/v1/tickets/{second_id}/reject"),
            json!({"reason": "A restore is already running for this cluster."}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rejected["state"], "rejected");
    let (_, seen) = alice.get(&format!("/api/v1/tickets/{second_id}")).await;
    assert_eq!(
        seen["rejection_reason"],
        "A restore is already running for this cluster."
    );

    // The customer's list: newest first.
    let (_, list) = alice.get("/api/v1/tickets").await;
    let numbers: Vec<_> = list["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["RD-000002", "RD-000001"]);

    // Signing out revokes the token.
    let (status, _) = alice.post("/api/v1/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, error) = alice.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["error"]["code"], "unauthenticated");
}

/// Admins drive the fleet from their pages: a fault makes a restore fail,
/// staff retry it, a zone comes back online, a person is added.
async fn admin_pages_and_a_retried_restore(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let mut ada = t.browser();
    ada.sign_in("ada@admin.example").await;
    ada.page("/admin/zones").await;
    let armed = ada
        .post(
            "/admin/faults",
            &[
                ("kind", "fail_step"),
                ("step", "verifying"),
                ("times", "1"),
                ("delay_ms", "0"),
                ("permanent", "1"),
            ],
        )
        .await;
    let page = ada.follow(armed).await;
    assert!(page.contains("The fault is armed") && page.contains("for good"));

    // A restore that fails at verification.
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let (_, ticket) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders, "target_time": "2026-11-24T10:00:00Z",
                   "new_cluster_name": "orders-retry", "severity": "A"}),
        )
        .await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let sam_api = Api::signed_in(&t.base, "sam@support.example").await;
    sam_api
        .post(&format!("/api/v1/tickets/{id}/claim"), json!({}))
        .await;
    let (status, _) = sam_api
        .post(&format!("/api/v1/tickets/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    restore_desk::engine::drain(&t.app).await.unwrap();
    assert_eq!(ticket_state(&t, 1).await, TicketState::Failed);

    // Staff see why, and retry from the ticket page.
    let mut sam = t.browser();
    sam.sign_in("sam@support.example").await;
    let path = format!("/staff/tickets/{id}");
    let page = sam.page(&path).await;
    assert!(page.contains("Retry the restore"));
    assert!(page.contains("injected fault"), "the last error shows");
    let queue = sam.page("/staff/tickets?state=failed").await;
    assert!(queue.contains("RD-000001"));
    let version = version_in(&page).unwrap().to_string();
    let retried = sam
        .post(&format!("{path}/retry"), &[("version", &version)])
        .await;
    let page = sam.follow(retried).await;
    assert!(page.contains("starts again"));
    restore_desk::engine::drain(&t.app).await.unwrap();
    assert_eq!(ticket_state(&t, 1).await, TicketState::Completed);

    // az1 is offline: legacy-crm's older backups are out of reach until an
    // admin brings it back.
    let legacy = t.cluster_id("legacy-crm").await;
    let mut customer = t.browser();
    customer.sign_in("alice@contoso.example").await;
    let check = format!(
        "/requests/preview?cluster_id={legacy}&date=2026-10-31&time=12:00&time_zone=UTC&new_cluster_name=crm-old"
    );
    let preview: serde_json::Value = customer.get(&check).await.json().await.unwrap();
    assert_eq!(preview["errors"][0]["code"], "no_backup_in_online_zone");
    let online = ada.post("/admin/zones/westeurope/az1/online", &[]).await;
    let page = ada.follow(online).await;
    assert!(page.contains("westeurope/az1 is online"));
    let preview: serde_json::Value = customer.get(&check).await.json().await.unwrap();
    assert_eq!(preview["ok"], true, "{preview}");

    // A new customer in a new subscription; a bad email stays in the form.
    ada.page("/admin/users").await;
    let refused = ada
        .post(
            "/admin/users",
            &[
                ("email", "not-an-email"),
                ("role", "customer"),
                ("subscription", "northwind"),
                ("time_zone", "UTC"),
                ("password", "long enough passphrase"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.unwrap();
    assert!(html.contains("Enter an email address") && html.contains("value=\"not-an-email\""));
    let created = ada
        .post(
            "/admin/users",
            &[
                ("email", "nina@northwind.example"),
                ("display_name", "Nina Nord"),
                ("role", "customer"),
                ("subscription", "northwind"),
                ("time_zone", "Europe/Oslo"),
                ("password", "long enough passphrase"),
            ],
        )
        .await;
    let page = ada.follow(created).await;
    assert!(page.contains("nina@northwind.example can now sign in"));
    let nina = Api::new(&t.base);
    let (status, _) = nina
        .post(
            "/api/v1/login",
            json!({"email": "nina@northwind.example", "password": "long enough passphrase"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Deleting a cluster; the outbox and the audit log show it all.
    let analytics = t.cluster_id("analytics").await;
    ada.page("/admin/clusters").await;
    let unconfirmed = ada
        .post(&format!("/admin/clusters/{analytics}/delete"), &[])
        .await;
    assert_eq!(unconfirmed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let deleted = ada
        .post(
            &format!("/admin/clusters/{analytics}/delete"),
            &[
                ("confirm", "yes"),
                ("reason", "decommissioned by the customer"),
            ],
        )
        .await;
    let page = ada.follow(deleted).await;
    assert!(page.contains("marked deleted"));
    let outbox = ada.page("/admin/outbox").await;
    assert!(outbox.contains("alice@contoso.example") && outbox.contains("RD-000001"));
    let audit = ada.page("/admin/audit").await;
    for label in [
        "Fault armed",
        "Zone brought online",
        "User created",
        "Cluster deleted",
        "decommissioned by the customer",
        "Restore retried",
        "Approved",
    ] {
        assert!(audit.contains(label), "{label} missing from the audit log");
    }
}

crate::both_databases!(html_flow, api_flow, admin_pages_and_a_retried_restore);
