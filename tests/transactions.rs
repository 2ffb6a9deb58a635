//! What happened around a moment, on the simulated fleet: the demo's
//! orders-prod lost its orders table an hour before the demo began; the
//! list around that moment shows the DROP by the table's name among the
//! commits around it, pages on without gaps or repeats, and answers only
//! those who may see the cluster. Both stores.

mod common;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use common::web::{Api, spawn_app};
use restore_desk::demo::ORDERS_DROPPED_BEFORE;

fn times(page: &Value) -> Vec<DateTime<Utc>> {
    page["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["committed_at"].as_str().unwrap().parse().unwrap())
        .collect()
}

fn iso(t: DateTime<Utc>) -> String {
    url::form_urlencoded::byte_serialize(
        t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .as_bytes(),
    )
    .collect()
}

async fn the_dropped_table_is_named_among_the_commits_around_it(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let incident = common::t0() - ORDERS_DROPPED_BEFORE;
    let path = format!(
        "/api/v1/clusters/{orders}/transactions?around={}",
        iso(incident)
    );
    let (status, page) = alice.get(&format!("{path}&before=5&after=5")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let listed = page["transactions"].as_array().unwrap();
    assert_eq!(listed.len(), 10, "{page}");
    let at = times(&page);
    assert!(at.windows(2).all(|w| w[0] < w[1]), "in commit order");
    assert!(at[..5].iter().all(|t| *t < incident) && at[5..].iter().all(|t| *t >= incident));
    let drop = listed
        .iter()
        .find(|t| {
            t["ddl"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["kind"] == "DROP")
        })
        .expect("the DROP among them");
    assert_eq!(
        drop["ddl"][0]["relations"][0]["name"], "public.orders",
        "{drop}"
    );
    assert_eq!(drop["ddl"][0]["relations"][0]["known"], true);
    assert_eq!(
        drop["ddl"][0]["relations"].as_array().unwrap().len(),
        1,
        "its index stays behind it"
    );
    assert_eq!(drop["destructive"], true);
    assert!(drop["xid"].as_u64().unwrap() > 0);
    // The table took rows before the drop, and none after it.
    let drop_at: DateTime<Utc> = drop["committed_at"].as_str().unwrap().parse().unwrap();
    let touched = |t: &Value| {
        t["relations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "public.orders")
    };
    let (_, wide) = alice.get(&format!("{path}&before=200&after=200")).await;
    let wide = wide["transactions"].as_array().unwrap().clone();
    assert!(wide.iter().any(|t| touched(t) && parse(t) < drop_at));
    assert!(
        wide.iter()
            .filter(|t| parse(t) > drop_at)
            .all(|t| !touched(t))
    );

    // Paging on from `later` with nothing before: contiguous, no repeats.
    let later = page["later"].as_str().unwrap().to_string();
    let later: DateTime<Utc> = later.parse().unwrap();
    let (_, next) = alice
        .get(&format!(
            "/api/v1/clusters/{orders}/transactions?around={}&before=0&after=5",
            iso(later)
        ))
        .await;
    let next_times = times(&next);
    assert_eq!(next_times.len(), 5, "{next}");
    assert!(next_times[0] > *at.last().unwrap());
    let between: Vec<_> = wide
        .iter()
        .map(parse)
        .filter(|t| t > at.last().unwrap() && *t < next_times[0])
        .collect();
    assert!(between.is_empty(), "nothing skipped: {between:?}");
    // And back from `earlier`.
    let earlier: DateTime<Utc> = page["earlier"].as_str().unwrap().parse().unwrap();
    let (_, back) = alice
        .get(&format!(
            "/api/v1/clusters/{orders}/transactions?around={}&before=3&after=0",
            iso(earlier)
        ))
        .await;
    let back_times = times(&back);
    assert_eq!(back_times.len(), 3);
    assert!(*back_times.last().unwrap() < at[0]);

    // Who may ask, and what is refused.
    let bob = Api::signed_in(&t.base, "bob@fabrikam.example").await;
    let (status, body) = bob.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let sam = Api::signed_in(&t.base, "sam@support.example").await;
    let (status, _) = sam.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = Api::new(&t.base).get(&path).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = alice
        .get(&format!(
            "/api/v1/clusters/{orders}/transactions?around=yesterday"
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_timestamp");
    let (status, body) = alice.get(&format!("{path}&before=500")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "before");
    // Nothing after now: the page ends there.
    let (_, recent) = alice
        .get(&format!(
            "/api/v1/clusters/{orders}/transactions?around={}",
            iso(common::t0())
        ))
        .await;
    assert!(recent["later"].is_null(), "{recent}");
    assert!(times(&recent).iter().all(|t| *t <= common::t0()));
    assert_eq!(recent["zones_offline"], false);

    // With every zone offline nothing can be read: an empty page that
    // says so, not an error.
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    for zone in ["az2", "az3"] {
        let (status, body) = ada
            .post(
                &format!("/api/v1/zones/{zone}/offline"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, dark) = alice.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{dark}");
    assert_eq!(dark["zones_offline"], true);
    assert!(dark["transactions"].as_array().unwrap().is_empty());
    let mut page = t.browser();
    page.sign_in("alice@contoso.example").await;
    let html = page
        .page(&format!(
            "/clusters/{orders}/transactions?around={}",
            iso(incident)
        ))
        .await;
    assert!(html.contains("No zone that holds this cluster"), "{html}");
}

/// The page shows the same, and leads the customer to a request for just
/// before the DROP, already checked.
async fn the_page_leads_to_a_request_for_just_before_the_drop(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let orders = t.cluster_id("orders-prod").await;
    let incident = common::t0() - ORDERS_DROPPED_BEFORE;
    let path = format!("/clusters/{orders}/transactions?around={}", iso(incident));
    let mut alice = t.browser();
    alice.sign_in("alice@contoso.example").await;
    let html = alice.page(&path).await;
    assert!(html.contains("DROP public.orders"), "{html}");
    assert!(html.contains("tx-destructive"), "marked");
    assert!(html.contains("CET"), "in alice's zone: {html}");
    let at = html.find("DROP public.orders").unwrap();
    let link_at = html[at..].find("/requests/new?").unwrap() + at;
    let link: String = html[link_at..]
        .chars()
        .take_while(|c| *c != '"')
        .collect::<String>()
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let form = alice.page(&link).await;
    assert!(
        form.contains("data-state=\"ok\""),
        "checked at once: {form}"
    );
    // The drop committed on a whole second; just before it is a second
    // earlier, in alice's zone (CET, UTC+1).
    let drop_second = (incident.timestamp() / 7) * 7;
    let before = chrono::DateTime::from_timestamp(drop_second - 1, 0)
        .unwrap()
        .with_timezone(&chrono_tz::Europe::Amsterdam);
    assert!(
        form.contains(&format!("value=\"{}\"", before.format("%H:%M:%S"))),
        "{link}: {form}"
    );
    assert!(
        form.contains("<option value=\"Europe/Amsterdam\" selected"),
        "{form}"
    );
    // The link chooses the transaction itself: the restore stops exactly
    // before it, whatever else committed in that second.
    assert!(link.contains("&position=before"), "{link}");
    assert!(form.contains("id=\"transaction\" value=\""), "{form}");
    assert!(
        form.contains("Restorable: just before transaction"),
        "{form}"
    );
    // The same address answers JSON for the form's panel.
    let json: Value = alice
        .get_with_accept(&path, "application/json")
        .await
        .json()
        .await
        .unwrap();
    assert!(json["transactions"].as_array().unwrap().len() > 10);

    // Staff read it too, without the customer's links; another customer
    // finds nothing.
    let mut sam = t.browser();
    sam.sign_in("sam@support.example").await;
    let html = sam.page(&path).await;
    assert!(html.contains("DROP public.orders") && !html.contains("/requests/new?"));
    let mut bob = t.browser();
    bob.sign_in("bob@fabrikam.example").await;
    assert_eq!(bob.get(&path).await.status(), StatusCode::NOT_FOUND);
    let bad = alice
        .get(&format!("/clusters/{orders}/transactions?around=soon"))
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// A request targets just before (or after) the DROP's transaction: the
/// ticket keeps the transaction and its commit, the emails and pages name
/// both, and the restore stops exactly there. A transaction the log does
/// not hold is refused with nothing stored.
async fn a_request_targets_just_before_the_drop_by_its_transaction(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let incident = common::t0() - ORDERS_DROPPED_BEFORE;
    let (_, page) = alice
        .get(&format!(
            "/api/v1/clusters/{orders}/transactions?around={}&before=3&after=3",
            iso(incident)
        ))
        .await;
    let drop = page["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["destructive"] == true)
        .unwrap()
        .clone();
    let xid = drop["xid"].as_u64().unwrap();
    let committed = parse(&drop);
    let file = |transaction: serde_json::Value, name: &str| {
        serde_json::json!({"cluster_id": orders, "transaction": transaction, "time_zone": "Europe/Amsterdam",
               "new_cluster_name": name, "severity": "A", "description": "orders dropped"})
    };
    let before_count = ticket_count(&t).await;
    for (body, field, code) in [
        (
            file(
                serde_json::json!({"id": 5, "position": "before"}),
                "orders-x1",
            ),
            "transaction",
            "unknown_transaction",
        ),
        (
            file(
                serde_json::json!({"id": xid, "position": "sideways"}),
                "orders-x2",
            ),
            "transaction",
            "invalid_input",
        ),
    ] {
        let (status, answer) = alice.post("/api/v1/tickets", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let mut both = file(
        serde_json::json!({"id": xid, "position": "before"}),
        "orders-x3",
    );
    both["target_time"] = serde_json::json!("2026-11-25T10:00:00Z");
    let (status, answer) = alice.post("/api/v1/tickets", both).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let after_count = ticket_count(&t).await;
    assert_eq!(before_count, after_count, "nothing stored");

    let mut ids = Vec::new();
    for (position, name) in [
        ("before", "orders-before-drop"),
        ("after", "orders-after-drop"),
    ] {
        let (status, ticket) = alice
            .post(
                "/api/v1/tickets",
                file(serde_json::json!({"id": xid, "position": position}), name),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ticket}");
        assert_eq!(ticket["transaction"]["id"], xid);
        assert_eq!(ticket["transaction"]["position"], position);
        assert_eq!(parse_at(&ticket["transaction"]["committed_at"]), committed);
        let moment = parse_at(&ticket["target_time"]);
        if position == "before" {
            assert_eq!(moment, committed - chrono::Duration::microseconds(1));
        } else {
            assert_eq!(moment, committed);
        }
        ids.push(ticket["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ticket_count(&t).await, after_count + 2, "the count counts");
    // The customer's email and page name the transaction and its commit.
    let mail = t
        .app
        .store
        .outbox(&restore_desk::store::OutboxQuery {
            status: None,
            ticket_id: Some(ids[0].parse().unwrap()),
            limit: 10,
        })
        .await
        .unwrap();
    let received = mail.iter().find(|m| m.kind == "request_received").unwrap();
    assert!(
        received
            .text_body
            .contains(&format!("just before transaction {xid}, committed")),
        "{}",
        received.text_body
    );
    let mut browser = t.browser();
    browser.sign_in("alice@contoso.example").await;
    let html = browser.page(&format!("/tickets/{}", ids[0])).await;
    assert!(
        html.contains(&format!("just before transaction {xid}, committed")),
        "{html}"
    );

    // Restored: exactly before it, and exactly after it.
    for id in &ids {
        t.staff_acts(
            id,
            &[
                ("claim", serde_json::json!({})),
                ("approve", serde_json::json!({})),
            ],
        )
        .await;
    }
    restore_desk::engine::drain(&t.app).await.unwrap();
    for (id, position) in ids.iter().zip(["before", "after"]) {
        let job = t
            .app
            .store
            .job_for_ticket(id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            job.state.as_str(),
            "succeeded",
            "{position}: {:?}",
            job.last_error
        );
        let reached = job.reached_point.expect("the point reached");
        let report = job.verification_report.expect("verified");
        let point = report
            .checks
            .iter()
            .find(|c| c.name == "point in time")
            .unwrap();
        assert!(point.passed, "{}", point.detail);
        if position == "before" {
            assert!(reached < committed, "{reached} before {committed}");
            assert!(
                point.detail.contains("stopped just before transaction"),
                "{}",
                point.detail
            );
        } else {
            assert_eq!(reached, committed);
            assert!(
                point.detail.contains("stopped right after transaction"),
                "{}",
                point.detail
            );
        }
    }
}

/// Every ticket the desk holds.
async fn ticket_count(t: &common::web::TestApp) -> usize {
    t.app
        .store
        .tickets(&restore_desk::store::TicketQuery {
            scope: restore_desk::store::Scope::Everything,
            states: vec![],
            severity: None,
            assignee: restore_desk::store::AssigneeFilter::Anyone,
            response_due_before: None,
            search: None,
            order: restore_desk::store::TicketOrder::Newest { before: None },
            limit: 500,
        })
        .await
        .unwrap()
        .len()
}

fn parse_at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

fn parse(t: &Value) -> DateTime<Utc> {
    t["committed_at"].as_str().unwrap().parse().unwrap()
}

both_databases!(
    the_dropped_table_is_named_among_the_commits_around_it,
    the_page_leads_to_a_request_for_just_before_the_drop,
    a_request_targets_just_before_the_drop_by_its_transaction,
);
