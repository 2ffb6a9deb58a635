//! Restore tests (drills) through the pages and the API, on both stores:
//! an admin starts one, the engine runs it to the end (no sleeping: the
//! test drains it), and the drills page, the API, the queue, the admin
//! clusters page and the customer's cluster page say what it found. A
//! damaged backup copy fails its zone's test and marks the cluster at risk
//! until a later test from that zone passes; staff are emailed. Bad
//! settings change nothing, and only admins start tests or set them.

mod common;

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::web::{Api, TestApp, spawn_app};
use restore_desk::domain::catalog::Zone;
use restore_desk::store::{AdminWrite, ClusterId, Commit, OutboxQuery};

/// Starts a test of `cluster` as ada, runs the engine to idle, and returns
/// the test as the API shows it afterwards. The clock moves on an hour
/// first, so every test has its own moment and zones take turns.
async fn drill(t: &TestApp, cluster: &str) -> Value {
    t.clock.advance(Duration::hours(1));
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let (status, queued) = ada
        .post(&format!("/api/v1/clusters/{cluster}/drills"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{queued}");
    assert_eq!(queued["state"], "queued", "{queued}");
    assert!(queued["passed"].is_null(), "{queued}");
    restore_desk::engine::drain(&t.app).await.unwrap();
    let (status, drills) = ada
        .get(&format!("/api/v1/drills?cluster_id={cluster}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{drills}");
    let done = drills[0].clone();
    assert_eq!(done["id"], queued["id"], "{drills}");
    assert_eq!(done["zone"], queued["zone"], "{drills}");
    done
}

/// The clusters the API lists to `api`, by id.
async fn cluster_ids(api: &Api) -> Vec<String> {
    let (status, clusters) = api.get("/api/v1/clusters").await;
    assert_eq!(status, StatusCode::OK, "{clusters}");
    let mut ids: Vec<String> = clusters
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// How many `drill_failed` emails went to `recipient`.
async fn failure_emails(t: &TestApp, recipient: &str) -> usize {
    t.app
        .store
        .outbox(&OutboxQuery {
            status: None,
            ticket_id: None,
            limit: 1000,
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "drill_failed" && m.recipient == recipient)
        .count()
}

async fn a_passing_drill_shows_on_the_pages_and_in_the_api(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let orders = t.cluster_id("orders-prod").await.to_string();
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let before = cluster_ids(&ada).await;

    // Before any test: nothing to say, and nothing at risk.
    let (_, cluster) = ada.get(&format!("/api/v1/clusters/{orders}")).await;
    assert!(cluster["last_restore_test"].is_null(), "{cluster}");
    assert_eq!(cluster["restore_at_risk"], json!([]), "{cluster}");
    let mut alice_page = t.browser();
    alice_page.sign_in("alice@contoso.example").await;
    let page = alice_page.page(&format!("/clusters/{orders}")).await;
    assert!(page.contains("No restore test yet."), "{page}");

    // az1 starts offline in the demo: the first test restores from az2.
    let passed = drill(&t, &orders).await;
    assert_eq!(passed["passed"], true, "{passed}");
    assert_eq!(passed["state"], "succeeded", "{passed}");
    assert_eq!(passed["zone"], "az2", "{passed}");
    assert_eq!(passed["cluster"], "orders-prod", "{passed}");
    assert!(passed["host"].is_string(), "{passed}");
    assert!(
        passed["duration_seconds"].as_i64().unwrap() >= 0,
        "{passed}"
    );
    assert!(passed["failed_check"].is_null() && passed["reason"].is_null());
    let checks = passed["checks"].as_array().unwrap();
    assert!(!checks.is_empty(), "the copy was verified: {passed}");
    assert!(checks.iter().all(|c| c["passed"] == true), "{passed}");

    // The test copy is no cluster: the same clusters as before.
    assert_eq!(cluster_ids(&ada).await, before);
    assert_eq!(
        cluster_ids(&alice).await.len(),
        4,
        "contoso's four clusters, no copy among them"
    );

    // The API: the last test for everyone who sees the cluster, the risk
    // for staff only.
    let (_, cluster) = ada.get(&format!("/api/v1/clusters/{orders}")).await;
    assert_eq!(cluster["last_restore_test"]["passed"], true, "{cluster}");
    assert_eq!(cluster["last_restore_test"]["zone"], "az2", "{cluster}");
    assert_eq!(
        cluster["last_restore_test"]["duration_seconds"],
        passed["duration_seconds"]
    );
    assert_eq!(cluster["restore_at_risk"], json!([]), "{cluster}");
    let (_, seen) = alice.get(&format!("/api/v1/clusters/{orders}")).await;
    assert_eq!(seen["last_restore_test"]["passed"], true, "{seen}");
    assert!(seen.get("restore_at_risk").is_none(), "{seen}");
    let (_, list) = alice.get("/api/v1/clusters").await;
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == orders.as_str())
        .unwrap();
    assert_eq!(listed["last_restore_test"]["zone"], "az2");

    // The drills page: the zone's result, when, how long, its trend.
    let mut sam = t.browser();
    sam.sign_in("sam@support.example").await;
    let page = sam.page("/staff/drills").await;
    assert!(page.contains("href=\"/staff/drills\" aria-current=\"page\""));
    let row = section(&page, &format!("id=\"cluster-{orders}\""), "</tr>");
    assert!(
        row.contains("orders-prod") && row.contains("contoso"),
        "{row}"
    );
    assert!(row.contains("<span class=\"badge badge-done\">passed</span>"));
    let took = format!(
        "took {}",
        restore_desk::domain::eta::words(Duration::seconds(
            passed["duration_seconds"].as_i64().unwrap()
        ))
    );
    assert!(row.contains(&took), "{row}");
    assert!(
        row.contains("<time datetime=\"2026-11-25T13:00:00Z\""),
        "{row}"
    );
    assert!(row.contains("The last test from az2"), "{row}");
    assert!(row.contains("✓") && row.contains("passed 25 Nov 2026, 13:00 GMT"));
    assert!(!row.contains("restore at risk"), "{row}");
    assert!(!page.contains("Test now"), "staff do not start tests");
    let recent = section(&page, "id=\"recent-title\"", "</table>");
    assert!(recent.contains("orders-prod") && recent.contains("az2"));
    assert!(recent.contains("passed"), "{recent}");

    let mut ada_page = t.browser();
    ada_page.sign_in("ada@admin.example").await;
    let page = ada_page.page("/staff/drills").await;
    assert!(page.contains(&format!("action=\"/staff/drills/{orders}/start\"")));
    assert!(page.contains(&format!(
        "action=\"/admin/clusters/{orders}/drill-settings\""
    )));
    // The harness schedules no tests of its own (DRILL_INTERVAL_HOURS=0).
    assert!(page.contains("placeholder=\"none (the desk's)\""), "{page}");

    // The customer's pages.
    let page = alice_page.page(&format!("/clusters/{orders}")).await;
    assert!(
        page.contains("Last restore test: passed <time datetime=\"2026-11-25T13:00:00Z\""),
        "{page}"
    );
    assert!(
        page.contains(&format!("just now</time>, {took}.")),
        "{page}"
    );
    t.clock.advance(Duration::days(3));
    let page = alice_page.page(&format!("/clusters/{orders}")).await;
    assert!(page.contains("3 days ago</time>"), "{page}");
    let page = alice_page.page("/clusters").await;
    assert!(page.contains("Last restore test: passed"), "{page}");
    assert!(page.contains("No restore test yet"), "the other clusters");

    // Customers see no tests beyond their own cluster's last one.
    let (status, body) = alice.get("/api/v1/drills").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(alice_page.get("/staff/drills").await.status(), 403);
}

/// The part of `html` from `start` to the first `end` after it.
fn section<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} is not on the page: {html}"));
    let rest = &html[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// Damages every copy `zone` holds of the cluster's snapshots, as a file
/// of a real backup going bad would.
async fn damage(t: &TestApp, cluster: &str, zone: Zone) {
    let id = ClusterId::from(uuid::Uuid::parse_str(cluster).unwrap());
    let snapshots = t.app.sandbox.snapshots(id).await.unwrap();
    let mut damaged = 0;
    for snapshot in snapshots.iter().filter(|s| s.zones.contains(zone)) {
        let write = AdminWrite::DamageSnapshot {
            snapshot_id: snapshot.id.clone(),
            zone,
        };
        t.app
            .store
            .commit(&Commit::admin(write, None, t.app.now()))
            .await
            .unwrap();
        damaged += 1;
    }
    assert!(damaged > 0, "{zone} holds none of the cluster's snapshots");
}

async fn a_damaged_copy_puts_the_cluster_at_risk_until_its_zone_passes(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let orders = t.cluster_id("orders-prod").await.to_string();
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    // A ticket on the cluster, for the queue to mark.
    let ticket = t.file_request(&alice, "orders-prod", "orders-risk").await;

    assert_eq!(drill(&t, &orders).await["zone"], "az2");
    damage(&t, &orders, Zone::Az3).await;
    let failed = drill(&t, &orders).await;
    assert_eq!(failed["zone"], "az3", "{failed}");
    assert_eq!(failed["passed"], false, "{failed}");
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["failed_check"], "snapshot restore", "{failed}");
    let reason = failed["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("damaged"), "{failed}");

    // Staff are told, by email.
    assert_eq!(failure_emails(&t, "sam@support.example").await, 1);

    // The API names the zone, the check and why, to staff.
    let (_, cluster) = ada.get(&format!("/api/v1/clusters/{orders}")).await;
    assert_eq!(
        cluster["restore_at_risk"],
        json!([{"zone": "az3", "failed_check": "snapshot restore", "reason": reason}]),
        "{cluster}"
    );
    assert_eq!(cluster["last_restore_test"]["passed"], false, "{cluster}");
    let (_, seen) = alice.get(&format!("/api/v1/clusters/{orders}")).await;
    assert!(seen.get("restore_at_risk").is_none(), "{seen}");
    assert_eq!(seen["last_restore_test"]["passed"], false, "{seen}");

    // The queue, the admin clusters page and the drills page say it in words.
    let words = "the restore test from az3 failed (snapshot restore)";
    let mut sam = t.browser();
    sam.sign_in("sam@support.example").await;
    let queue = sam.page("/staff/tickets").await;
    let row = section(&queue, &format!("/staff/tickets/{ticket}\""), "</tr>");
    assert!(row.contains("restore at risk"), "{row}");
    assert!(row.contains(&format!("title=\"{words}\"")), "{row}");
    assert!(
        row.contains(&format!("<span class=\"visually-hidden\">: {words}</span>")),
        "{row}"
    );
    let drills = sam.page("/staff/drills").await;
    let row = section(&drills, &format!("id=\"cluster-{orders}\""), "</tr>");
    assert!(
        row.contains("restore at risk") && row.contains(words),
        "{row}"
    );
    assert!(row.contains("<span class=\"badge badge-bad\">failed</span>"));
    assert!(row.contains("at snapshot restore"), "{row}");
    assert!(row.contains("✗") && row.contains("failed 25 Nov 2026, 14:00 GMT"));
    let recent = section(&drills, "id=\"recent-title\"", "</table>");
    assert!(recent.contains(&format!("at snapshot restore: {reason}")));

    let mut admin = t.browser();
    admin.sign_in("ada@admin.example").await;
    let clusters = admin.page("/admin/clusters").await;
    let row = section(&clusters, "<strong>orders-prod</strong>", "</tr>");
    assert!(
        row.contains("restore at risk") && row.contains(words),
        "{row}"
    );
    assert!(row.contains(&format!("href=\"/staff/drills#cluster-{orders}\"")));

    // The customer's page says the last test failed, not why.
    let mut customer = t.browser();
    customer.sign_in("alice@contoso.example").await;
    let page = customer.page(&format!("/clusters/{orders}")).await;
    assert!(page.contains("Last restore test: failed"), "{page}");
    assert!(!page.contains("damaged"), "{page}");

    // The copy is mended; az2's turn comes first, then az3 passes and
    // clears the mark.
    let (status, _) = ada
        .send(Method::DELETE, "/api/v1/faults", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(drill(&t, &orders).await["zone"], "az2");
    let still = sam.page("/staff/tickets").await;
    assert!(
        still.contains("restore at risk"),
        "az3's latest still failed"
    );
    let mended = drill(&t, &orders).await;
    assert_eq!(mended["zone"], "az3", "{mended}");
    assert_eq!(mended["passed"], true, "{mended}");
    let (_, cluster) = ada.get(&format!("/api/v1/clusters/{orders}")).await;
    assert_eq!(cluster["restore_at_risk"], json!([]), "{cluster}");
    for path in ["/staff/tickets", "/staff/drills"] {
        let page = sam.page(path).await;
        assert!(!page.contains("restore at risk"), "{path}: {page}");
    }
    let page = admin.page("/admin/clusters").await;
    assert!(!page.contains("restore at risk"), "{page}");
    // The failure stays in the history: az3's trend shows both.
    let drills = sam.page("/staff/drills").await;
    let row = section(&drills, &format!("id=\"cluster-{orders}\""), "</tr>");
    assert!(
        row.contains("The last 2 tests from az3, newest first"),
        "{row}"
    );
    assert_eq!(failure_emails(&t, "sam@support.example").await, 1);
}

async fn settings(api: &Api, cluster: &str) -> Value {
    let (status, body) = api
        .get(&format!("/api/v1/clusters/{cluster}/drill-settings"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn bad_settings_and_the_wrong_people_change_nothing(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let orders = t.cluster_id("orders-prod").await.to_string();
    let path = format!("/api/v1/clusters/{orders}/drill-settings");
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;

    assert_eq!(
        settings(&ada, &orders).await,
        json!({"interval_hours": null, "canary": null, "interval_hours_in_effect": null})
    );
    let good = json!({"interval_hours": 12, "canary": "SELECT count(*) > 0 FROM orders"});
    let (status, body) = ada.send(Method::PUT, &path, Some(good)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stored = json!({"interval_hours": 12, "canary": "SELECT count(*) > 0 FROM orders",
                        "interval_hours_in_effect": 12});
    assert_eq!(body, stored);

    // Refused, each naming its field; nothing stored.
    for (body, field, says) in [
        (
            json!({"canary": "DELETE FROM orders"}),
            "canary",
            "must be a SELECT",
        ),
        (
            json!({"canary": "SELECT 1; DROP TABLE x"}),
            "canary",
            "one statement",
        ),
        (
            json!({"interval_hours": 0}),
            "interval_hours",
            "1 to 8784 hours",
        ),
        (
            json!({"interval_hours": 9000, "canary": "SELECT true"}),
            "interval_hours",
            "1 to 8784 hours",
        ),
    ] {
        let (status, answer) = ada.send(Method::PUT, &path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_input", "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
        assert_eq!(settings(&ada, &orders).await, stored, "after {body}");
    }

    // The form: a refusal shows the page again with the error beside the
    // field and what was typed; nothing stored.
    let mut admin = t.browser();
    admin.sign_in("ada@admin.example").await;
    let page = admin.page("/staff/drills").await;
    assert!(
        page.contains("SELECT count(*) &#62; 0 FROM orders"),
        "{page}"
    );
    let form = format!("/admin/clusters/{orders}/drill-settings");
    for (fields, error_id, says) in [
        (
            [("interval_hours", "6"), ("canary", "DELETE FROM orders")],
            "cq-err",
            "A canary query must be a SELECT",
        ),
        (
            [
                ("interval_hours", "6"),
                ("canary", "SELECT 1; DROP TABLE x"),
            ],
            "cq-err",
            "A canary is one statement",
        ),
        (
            [("interval_hours", "often"), ("canary", "SELECT true")],
            "iv-err",
            "Give the interval in whole hours",
        ),
        (
            [("interval_hours", "0"), ("canary", "SELECT true")],
            "iv-err",
            "A drill interval is 1 to 8784 hours",
        ),
    ] {
        let response = admin.post(&form, &fields).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = response.text().await.unwrap();
        let error = section(&html, &format!("id=\"{error_id}-{orders}\""), "</div>");
        assert!(error.contains(says), "{fields:?}: {error}");
        let settings_form = section(&html, &format!("action=\"{form}\""), "</form>");
        let typed = fields[1].1.replace('>', "&#62;");
        assert!(settings_form.contains(&typed), "{settings_form}");
        assert!(settings_form.contains("aria-invalid=\"true\""));
        assert!(html.contains("<details open><summary>Settings…</summary>"));
        assert_eq!(settings(&ada, &orders).await, stored, "after {fields:?}");
    }
    // Saved, an empty interval is the desk's again.
    let response = admin
        .post(&form, &[("interval_hours", ""), ("canary", "SELECT true")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = admin.follow(response).await;
    assert!(
        page.contains("How orders-prod is tested is saved."),
        "{page}"
    );
    assert_eq!(
        settings(&ada, &orders).await,
        json!({"interval_hours": null, "canary": "SELECT true", "interval_hours_in_effect": null})
    );
    let stored = settings(&ada, &orders).await;

    // A test cannot start while one waits: 422 naming the cluster, on the
    // API and on the page.
    let (status, first) = ada
        .post(&format!("/api/v1/clusters/{orders}/drills"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = ada
        .post(&format!("/api/v1/clusters/{orders}/drills"), json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{again}");
    assert_eq!(again["error"]["field"], "cluster", "{again}");
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already running or waiting")
    );
    admin.page("/staff/drills").await;
    let response = admin
        .post(&format!("/staff/drills/{orders}/start"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("already running or waiting"), "{html}");
    assert!(
        html.contains("Testing from az2: Waiting to start"),
        "{html}"
    );

    // Staff and customers may neither start tests nor set them, by page
    // or API; only one test was queued, and the settings stay.
    for email in ["sam@support.example", "alice@contoso.example"] {
        let api = Api::signed_in(&t.base, email).await;
        for (method, route, body) in [
            (
                Method::POST,
                format!("/api/v1/clusters/{orders}/drills"),
                json!({}),
            ),
            (Method::GET, path.clone(), json!({})),
            (
                Method::PUT,
                path.clone(),
                json!({"interval_hours": 1, "canary": null}),
            ),
        ] {
            let (status, answer) = api.send(method.clone(), &route, Some(body)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{email} {method} {route}");
            assert_eq!(answer["error"]["code"], "forbidden", "{answer}");
        }
        let mut browser = t.browser();
        browser.sign_in(email).await;
        for (route, fields) in [
            (format!("/staff/drills/{orders}/start"), vec![]),
            (form.clone(), vec![("interval_hours", "1"), ("canary", "")]),
        ] {
            let response = browser.post(&route, &fields).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{email} {route}");
        }
    }
    let (_, drills) = ada.get("/api/v1/drills").await;
    assert_eq!(drills.as_array().unwrap().len(), 1, "{drills}");
    assert_eq!(settings(&ada, &orders).await, stored);
    let (status, drills) = Api::signed_in(&t.base, "sam@support.example")
        .await
        .get(&format!("/api/v1/drills?cluster_id={orders}"))
        .await;
    assert_eq!(status, StatusCode::OK, "staff read the tests: {drills}");
    let (status, _) = ada
        .get(&format!(
            "/api/v1/drills?cluster_id={}",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

crate::both_databases!(
    a_passing_drill_shows_on_the_pages_and_in_the_api,
    a_damaged_copy_puts_the_cluster_at_risk_until_its_zone_passes,
    bad_settings_and_the_wrong_people_change_nothing,
);
