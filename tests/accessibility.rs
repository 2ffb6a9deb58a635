//! axe-core, injected into the pages in a real headless Chromium, finds no
//! violations on the desk's main pages: signing in, a customer's clusters,
//! cluster, request form and ticket, the staff queue, ticket and restore
//! tests, the admin pages and the password page — at desktop and phone size.

#[path = "common/chrome.rs"]
mod chrome;
mod common;

use serde_json::json;

use chrome::*;
use common::web::{Api, spawn_app};

/// Checks each path in turn; every page's violations, by page.
async fn violations_on(
    client: &fantoccini::Client,
    base: &str,
    axe: &str,
    paths: &[String],
) -> Vec<String> {
    let mut found = Vec::new();
    for path in paths {
        client.goto(&format!("{base}{path}")).await.unwrap();
        until(client, path, "return document.readyState === 'complete'").await;
        // The request form fills in what happened around its moment.
        if path.starts_with("/requests/new?") && path.contains("time=") {
            until(
                client,
                "the transactions beside the form",
                "return !!document.querySelector('#happened-list .tx')",
            )
            .await;
        }
        // What a disclosure hides is checked too: the confirmations and
        // the form that moves a target.
        client
            .execute(
                "document.querySelectorAll('details').forEach(function (d) { d.open = true; })",
                vec![],
            )
            .await
            .unwrap();
        for violation in accessibility_violations(client, axe).await {
            found.push(format!("{path}: {violation}"));
        }
    }
    found
}

#[tokio::test]
async fn the_main_pages_have_no_accessibility_violations() {
    let t = spawn_app(false, &[]).await;
    let axe = axe_source();
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let legacy = t.cluster_id("legacy-crm").await;
    let ticket = t.file_request(&alice, "orders-prod", "orders-axe").await;
    let (status, body) = alice
        .post(
            &format!("/api/v1/tickets/{ticket}/reply"),
            json!({"body": "The orders table went missing around 14:35."}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    // Waiting for the customer: both ticket pages offer to move the target.
    t.staff_acts(
        &ticket,
        &[
            ("claim", json!({})),
            ("request-info", json!({"body": "Was it 14:35 your time?"})),
        ],
    )
    .await;

    // A restore test that passed, for the drills page to show.
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let (status, body) = ada
        .post(&format!("/api/v1/clusters/{orders}/drills"), json!({}))
        .await;
    assert!(status.is_success(), "{body}");
    restore_desk::engine::drain(&t.app).await.unwrap();
    // Hosts for the hosts page: a zone host, a source host and this desk's
    // own, reporting.
    let (status, body) = ada
        .send(
            reqwest::Method::PUT,
            "/api/v1/hosts/az1",
            Some(
                json!({"role": "zone", "address": "az1.fleet.test", "zone": "az1",
                        "data_root": "/var/lib/rd"}),
            ),
        )
        .await;
    assert!(status.is_success(), "{body}");
    // A source host: the clusters page offers its register form.
    let (status, body) = ada
        .send(
            reqwest::Method::PUT,
            "/api/v1/hosts/src",
            Some(json!({"role": "source", "address": "src.fleet.test"})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    restore_desk::engine::hosts::beat(&t.app, "a11y")
        .await
        .unwrap();

    let driver = start_driver().await;
    let client = browser(&driver).await;
    let mut found = Vec::new();

    client.goto(&format!("{}/login", t.base)).await.unwrap();
    found.extend(violations_on(&client, &t.base, &axe, &["/login".to_string()]).await);

    let customer = [
        format!("/clusters/{orders}"),
        format!("/clusters/{legacy}"),
        format!("/requests/new?cluster={orders}&date=2026-11-25&time=11:00:00&time_zone=UTC"),
        format!("/clusters/{orders}/transactions?around=2026-11-25T11:00:00Z"),
        format!("/tickets/{ticket}"),
        "/".to_string(),
        "/clusters".to_string(),
        "/tickets".to_string(),
        "/account/endpoints".to_string(),
        "/account/password".to_string(),
    ];
    sign_in(&client, &t, "alice@contoso.example").await;
    found.extend(violations_on(&client, &t.base, &axe, &customer).await);
    client.set_window_size(390, 844).await.unwrap();
    found.extend(
        violations_on(&client, &t.base, &axe, &customer[..5])
            .await
            .into_iter()
            .map(|v| format!("phone {v}")),
    );
    client.set_window_size(1280, 1000).await.unwrap();
    sign_out(&client).await;

    sign_in(&client, &t, "sam@support.example").await;
    let staff = [
        "/staff/tickets".to_string(),
        "/staff/tickets?response=breached&q=orders".to_string(),
        format!("/staff/tickets/{ticket}"),
        "/staff/drills".to_string(),
    ];
    found.extend(violations_on(&client, &t.base, &axe, &staff).await);
    sign_out(&client).await;

    sign_in(&client, &t, "ada@admin.example").await;
    let admin = [
        "/admin/zones".to_string(),
        "/admin/hosts".to_string(),
        "/admin/clusters".to_string(),
        "/staff/drills".to_string(),
        "/admin/users".to_string(),
        "/admin".to_string(),
        "/admin/outbox".to_string(),
        "/admin/audit".to_string(),
        "/admin/endpoints".to_string(),
    ];
    found.extend(violations_on(&client, &t.base, &axe, &admin).await);
    client.close().await.unwrap();

    assert!(
        found.is_empty(),
        "axe-core found {} violations:\n{}",
        found.len(),
        found.join("\n")
    );
}
