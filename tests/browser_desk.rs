//! The support desk in a real headless Chromium: the queue puts a breached
//! A above a fresh C and counts down by the desk's clock, not the device's;
//! a Tokyo customer reads Tokyo times on their ticket, UTC a tap away;
//! legacy-crm with az1 offline states the narrower window and the form's
//! check says from when; a failed and a cancelled restore read as such on
//! the page the customer has open; the open-request warning follows the
//! cluster chosen; every destructive act needs its confirmation ticked.

#[path = "common/chrome.rs"]
mod chrome;
mod common;

use std::time::Duration;

use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use chrome::*;
use common::web::{Api, TestApp, spawn_app, spawn_app_with};
use restore_desk::domain::ticket::TicketState;
use restore_desk::store::Scope;

async fn state_of(t: &TestApp, id: &str) -> TicketState {
    t.app
        .store
        .ticket(id.parse().unwrap(), Scope::Everything)
        .await
        .unwrap()
        .unwrap()
        .state
}

/// Runs `script` (with `args`) on the page and returns what it returns.
async fn eval(client: &Client, script: &str, args: Vec<Value>) -> Value {
    client.execute(script, args).await.unwrap()
}

#[tokio::test]
async fn the_queue_puts_a_breached_a_above_a_fresh_c_and_counts_by_the_desks_clock() {
    let t = spawn_app(false, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let bob = Api::signed_in(&t.base, "bob@fabrikam.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let inventory = t.cluster_id("inventory").await;
    let file = |cluster, name: &str, severity: &str| {
        json!({"cluster_id": cluster, "target_time": "2026-11-24T10:00:00Z",
               "new_cluster_name": name, "severity": severity, "description": "queue order"})
    };
    let (status, urgent) = alice
        .post("/api/v1/tickets", file(orders, "orders-urgent", "A"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{urgent}");
    // Two hours on, the A's first response (1 h) is an hour overdue.
    t.clock.advance(chrono::Duration::hours(2));
    let (status, fresh) = bob
        .post("/api/v1/tickets", file(inventory, "inventory-copy", "C"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fresh}");
    let (urgent, fresh) = (
        urgent["id"].as_str().unwrap().to_string(),
        fresh["id"].as_str().unwrap().to_string(),
    );

    let driver = start_driver().await;
    let client = browser(&driver).await;
    sign_in(&client, &t, "sam@support.example").await;
    client
        .goto(&format!("{}/staff/tickets", t.base))
        .await
        .unwrap();
    let rows = "return Array.from(document.querySelectorAll('tbody tr')).map(function (tr) {
                  const link = tr.querySelector('a[href^=\"/staff/tickets/\"]');
                  return [link ? link.getAttribute('href').split('/').pop() : '', tr.innerText];
                });";
    let listed = eval(&client, rows, vec![]).await;
    let listed: Vec<(String, String)> = serde_json::from_value(listed).unwrap();
    let at = |id: &str| listed.iter().position(|(row, _)| row == id).unwrap();
    assert!(at(&urgent) < at(&fresh), "the A first: {listed:?}");
    let (_, urgent_row) = &listed[at(&urgent)];
    let (_, fresh_row) = &listed[at(&fresh)];
    assert!(urgent_row.contains("Response breached"), "{urgent_row}");
    // The page's script has already redrawn the countdowns once: from the
    // desk's clock, an hour; from this machine's, days.
    assert!(urgent_row.contains("overdue by 1 hour"), "{urgent_row}");
    assert!(!fresh_row.contains("Response breached"), "{fresh_row}");
    let colour = eval(
        &client,
        "const id = arguments[0];
         const tr = Array.from(document.querySelectorAll('tbody tr')).find(function (tr) {
           return tr.innerHTML.includes(id);
         });
         return getComputedStyle(tr.querySelector('.badge-bad, .countdown.overdue')).color;",
        vec![json!(urgent)],
    )
    .await;
    assert_ne!(colour, json!("rgb(0, 0, 0)"), "breached reads in colour");

    // The chip filters to the breached one and stays in the URL.
    click(&client, "a.chip[href*='response=breached']").await;
    until(
        &client,
        "the breached filter",
        "return location.search.includes('response=breached')",
    )
    .await;
    let listed: Vec<(String, String)> =
        serde_json::from_value(eval(&client, rows, vec![]).await).unwrap();
    let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
    assert!(
        ids.contains(&urgent.as_str()) && !ids.contains(&fresh.as_str()),
        "{ids:?}"
    );

    // A search from the box: by cluster name.
    client
        .goto(&format!("{}/staff/tickets", t.base))
        .await
        .unwrap();
    client
        .find(Locator::Css("#f-q"))
        .await
        .unwrap()
        .send_keys("inventory\n")
        .await
        .unwrap();
    until(
        &client,
        "the search",
        "return location.search.includes('q=inventory')",
    )
    .await;
    let listed: Vec<(String, String)> =
        serde_json::from_value(eval(&client, rows, vec![]).await).unwrap();
    let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, vec![fresh.as_str()]);
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_tokyo_customer_sees_tokyo_times_everywhere_on_their_ticket() {
    let t = spawn_app(false, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let (status, ticket) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders, "local_time": "2026-11-24T19:00", "time_zone": "Asia/Tokyo",
                   "new_cluster_name": "orders-tokyo", "severity": "B", "description": "tokyo"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let id = ticket["id"].as_str().unwrap().to_string();
    t.clock.advance(chrono::Duration::minutes(20));
    t.staff_acts(
        &id,
        &[
            ("claim", json!({})),
            ("request-info", json!({"body": "Which schema?"})),
        ],
    )
    .await;

    let driver = start_driver().await;
    let client = browser(&driver).await;
    sign_in(&client, &t, "alice@contoso.example").await;
    client
        .goto(&format!("{}/tickets/{id}", t.base))
        .await
        .unwrap();
    let times = eval(
        &client,
        "return Array.from(document.querySelectorAll('main time')).map(function (t) {
           return [t.innerText, t.getAttribute('title') || ''];
         });",
        vec![],
    )
    .await;
    let times: Vec<(String, String)> = serde_json::from_value(times).unwrap();
    assert!(
        times.len() >= 4,
        "target, deadline, events, messages: {times:?}"
    );
    for (shown, utc) in &times {
        assert!(shown.ends_with("JST"), "in Tokyo's zone: {shown}");
        assert!(utc.ends_with("UTC"), "UTC a tap away: {utc}");
    }
    let text = text_of(&client).await;
    assert!(text.contains("24 Nov 2026, 19:00"), "the target as entered");
    assert!(!text.contains("CET"), "no other zone: {text}");

    // A tap shows the moment in UTC, another tap brings Tokyo back.
    click(&client, "main time.utc-toggle").await;
    let first = eval(
        &client,
        "return document.querySelector('main time.utc-toggle').innerText",
        vec![],
    )
    .await;
    assert_eq!(first.as_str(), Some(times[0].1.as_str()));
    click(&client, "main time.utc-toggle").await;
    let back = eval(
        &client,
        "return document.querySelector('main time.utc-toggle').innerText",
        vec![],
    )
    .await;
    assert_eq!(back.as_str(), Some(times[0].0.as_str()));
    client.close().await.unwrap();
}

#[tokio::test]
async fn legacy_crm_with_az1_offline_states_the_narrower_window_in_the_form() {
    let t = spawn_app(false, &[]).await;
    let legacy = t.cluster_id("legacy-crm").await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    sign_in(&client, &t, "alice@contoso.example").await;
    client
        .goto(&format!("{}/clusters/{legacy}", t.base))
        .await
        .unwrap();
    let text = text_of(&client).await;
    assert!(text.contains("Restorable now: any moment from"), "{text}");
    assert!(text.contains("when az1 is back"), "{text}");

    client
        .goto(&format!("{}/requests/new?cluster={legacy}", t.base))
        .await
        .unwrap();
    until(
        &client,
        "the request form",
        "return !!document.getElementById('request-form')",
    )
    .await;
    eval(
        &client,
        "const z = document.getElementById('time_zone'); z.value = 'Asia/Tokyo';
         z.dispatchEvent(new Event('change', {bubbles: true}));",
        vec![],
    )
    .await;
    set_input(&client, "date", "2026-10-31").await;
    set_input(&client, "time", "12:00").await;
    until(
        &client,
        "the check's refusal",
        "return document.getElementById('preview').getAttribute('data-state') === 'bad'",
    )
    .await;
    let check = eval(
        &client,
        "return document.getElementById('preview').innerText",
        vec![],
    )
    .await;
    let check = check.as_str().unwrap();
    assert!(
        check.contains("from the zones online now, moments from"),
        "{check}"
    );
    assert!(
        check.contains("JST"),
        "in the zone it was entered in: {check}"
    );
    assert!(check.contains("when az1 is back"), "{check}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_and_a_cancelled_restore_read_as_such_on_the_open_page() {
    let mut t = spawn_app_with(false, &[], |s| s.sandbox_step_ms = 900).await;
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let (status, body) = ada
        .post(
            "/api/v1/faults",
            json!({"kind": "fail_step", "step": "verifying", "permanent": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let failed = t
        .file_request(&alice, "orders-prod", "browser-failed")
        .await;
    let cancelled = t
        .file_request(&alice, "analytics", "browser-cancelled")
        .await;
    t.staff_acts(&failed, &[("claim", json!({})), ("approve", json!({}))])
        .await;

    let driver = start_driver().await;
    let client = browser(&driver).await;
    sign_in(&client, &t, "alice@contoso.example").await;
    client
        .goto(&format!("{}/tickets/{failed}", t.base))
        .await
        .unwrap();
    t.start_engine();
    until(
        &client,
        "the failure on the open page",
        "return document.body.innerText.includes('The restore did not finish')",
    )
    .await;
    let text = text_of(&client).await;
    assert!(text.contains("What happens next:"), "{text}");
    let bars = eval(
        &client,
        "return document.querySelectorAll('progress').length",
        vec![],
    )
    .await;
    assert_eq!(bars, json!(0), "no bar on a failed restore: {text}");
    assert_eq!(state_of(&t, &failed).await, TicketState::Failed);

    // Cancelled while it runs: the bar goes, "cancelled" comes.
    let (status, _) = ada
        .send(reqwest::Method::DELETE, "/api/v1/faults", None)
        .await;
    assert!(status.is_success());
    t.staff_acts(&cancelled, &[("claim", json!({})), ("approve", json!({}))])
        .await;
    client
        .goto(&format!("{}/tickets/{cancelled}", t.base))
        .await
        .unwrap();
    until(
        &client,
        "the restore's progress bar",
        "return !!document.querySelector('progress')",
    )
    .await;
    t.staff_acts(
        &cancelled,
        &[(
            "cancel-restore",
            json!({"reason": "the customer asked on the phone"}),
        )],
    )
    .await;
    until(
        &client,
        "the cancellation on the open page",
        "return document.body.innerText.includes('This request is cancelled')
            && !document.querySelector('progress')",
    )
    .await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn the_open_request_warning_follows_the_cluster_chosen() {
    let t = spawn_app(false, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let first = t.file_request(&alice, "orders-prod", "orders-first").await;
    let orders = t.cluster_id("orders-prod").await;
    let analytics = t.cluster_id("analytics").await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    sign_in(&client, &t, "alice@contoso.example").await;
    client
        .goto(&format!("{}/requests/new", t.base))
        .await
        .unwrap();
    until(
        &client,
        "the request form",
        "return !!document.getElementById('request-form')",
    )
    .await;
    let choose = |cluster: String| {
        let client = client.clone();
        async move {
            eval(
                &client,
                "const c = document.getElementById('cluster_id'); c.value = arguments[0];
                 c.dispatchEvent(new Event('change', {bubbles: true}));",
                vec![json!(cluster)],
            )
            .await;
        }
    };
    let hidden = "return document.getElementById('duplicate-warning').hidden";
    assert_eq!(eval(&client, hidden, vec![]).await, json!(true));
    choose(orders.to_string()).await;
    until(
        &client,
        "the warning for orders-prod",
        "return !document.getElementById('duplicate-warning').hidden",
    )
    .await;
    let warning = eval(
        &client,
        "const w = document.getElementById('duplicate-warning');
         return [w.innerText, w.querySelector('a').getAttribute('href')];",
        vec![],
    )
    .await;
    assert!(
        warning[0]
            .as_str()
            .unwrap()
            .contains("orders-prod already has an open request"),
        "{warning}"
    );
    assert_eq!(warning[1], json!(format!("/tickets/{first}")));
    choose(analytics.to_string()).await;
    until(
        &client,
        "the warning to go for analytics",
        "return document.getElementById('duplicate-warning').hidden",
    )
    .await;
    client.close().await.unwrap();
}

/// Clicks `form`'s submit button with its confirmation unticked: the
/// browser holds the form back, the page stays and nothing is sent.
async fn unticked_is_held_back(client: &Client, form: &str) {
    eval(client, "window.stayedOnPage = true", vec![]).await;
    click(client, &format!("{form} button[type=submit]")).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let held = eval(
        client,
        "const f = document.querySelector(arguments[0]);
         return [window.stayedOnPage === true, f.checkValidity(),
                 f.querySelector('input[name=confirm]').matches(':invalid')];",
        vec![json!(form)],
    )
    .await;
    assert_eq!(held, json!([true, false, true]), "{form}");
}

/// Ticks the confirmation, gives the reason and sends the form; waits for
/// the next page.
async fn confirm_and_send(client: &Client, form: &str, reason: &str) {
    eval(client, "window.stayedOnPage = true", vec![]).await;
    let reason_box = format!("{form} [name=reason]");
    client
        .find(Locator::Css(&reason_box))
        .await
        .unwrap()
        .send_keys(reason)
        .await
        .unwrap();
    click(client, &format!("{form} input[name=confirm]")).await;
    click(client, &format!("{form} button[type=submit]")).await;
    until(
        client,
        "the page after the act",
        "return window.stayedOnPage !== true && document.readyState === 'complete'",
    )
    .await;
}

#[tokio::test]
async fn each_destructive_act_needs_its_confirmation_ticked() {
    let t = spawn_app(false, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let to_cancel = t.file_request(&alice, "orders-prod", "by-customer").await;
    let to_reject = t.file_request(&alice, "orders-prod", "by-engineer").await;
    let to_stop = t.file_request(&alice, "analytics", "stop-restore").await;
    t.staff_acts(&to_reject, &[("claim", json!({}))]).await;
    t.staff_acts(&to_stop, &[("claim", json!({})), ("approve", json!({}))])
        .await;
    let driver = start_driver().await;
    let client = browser(&driver).await;

    // The customer cancels a request.
    sign_in(&client, &t, "alice@contoso.example").await;
    client
        .goto(&format!("{}/tickets/{to_cancel}", t.base))
        .await
        .unwrap();
    let form = format!("form[action='/tickets/{to_cancel}/cancel']");
    let before = state_of(&t, &to_cancel).await;
    unticked_is_held_back(&client, &form).await;
    assert_eq!(state_of(&t, &to_cancel).await, before);
    confirm_and_send(&client, &form, "found the rows in a dump").await;
    assert_eq!(state_of(&t, &to_cancel).await, TicketState::Cancelled);
    sign_out(&client).await;

    // The engineer rejects one and stops the restore of another.
    sign_in(&client, &t, "sam@support.example").await;
    for (id, action, reason, after) in [
        (
            &to_reject,
            "reject",
            "That moment is before the incident.",
            TicketState::Rejected,
        ),
        (
            &to_stop,
            "cancel-restore",
            "the customer asked on the phone",
            TicketState::Cancelled,
        ),
    ] {
        client
            .goto(&format!("{}/staff/tickets/{id}", t.base))
            .await
            .unwrap();
        let form = format!("form[action='/staff/tickets/{id}/{action}']");
        let before = state_of(&t, id).await;
        unticked_is_held_back(&client, &form).await;
        assert_eq!(state_of(&t, id).await, before, "{action}");
        confirm_and_send(&client, &form, reason).await;
        assert_eq!(state_of(&t, id).await, after, "{action}");
    }
    sign_out(&client).await;

    // The admin deletes a cluster and takes a zone offline.
    sign_in(&client, &t, "ada@admin.example").await;
    let inventory = t.cluster_id("inventory").await;
    client
        .goto(&format!("{}/admin/clusters", t.base))
        .await
        .unwrap();
    let form = format!("form[action='/admin/clusters/{inventory}/delete']");
    eval(
        &client,
        "document.querySelector(arguments[0]).closest('details').open = true",
        vec![json!(form)],
    )
    .await;
    // The reason is filled in: only the unticked box holds it back.
    client
        .find(Locator::Css(&format!("{form} [name=reason]")))
        .await
        .unwrap()
        .send_keys("retired")
        .await
        .unwrap();
    unticked_is_held_back(&client, &form).await;
    let (_, cluster) = ada.get(&format!("/api/v1/clusters/{inventory}")).await;
    assert!(cluster["deleted_at"].is_null(), "{cluster}");
    eval(
        &client,
        "document.querySelector(arguments[0] + ' [name=reason]').value = ''",
        vec![json!(form)],
    )
    .await;
    confirm_and_send(&client, &form, "the customer retired it").await;
    let (_, cluster) = ada.get(&format!("/api/v1/clusters/{inventory}")).await;
    assert!(!cluster["deleted_at"].is_null(), "{cluster}");

    client
        .goto(&format!("{}/admin/zones", t.base))
        .await
        .unwrap();
    let form = "form[action='/admin/zones/westeurope/az2/offline']";
    eval(
        &client,
        "document.querySelector(arguments[0]).closest('details').open = true",
        vec![json!(form)],
    )
    .await;
    unticked_is_held_back(&client, form).await;
    let az2_online = || async {
        let (_, zones) = ada.get("/api/v1/zones").await;
        zones
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["zone"] == "az2")
            .map(|z| z["online"] == true)
            .unwrap()
    };
    assert!(az2_online().await);
    confirm_and_send(&client, form, "storage maintenance in az2").await;
    assert!(!az2_online().await);

    // Each reason is in the audit trail.
    let (_, audit) = ada.get("/api/v1/audit").await;
    let audit = audit.to_string();
    for reason in ["the customer retired it", "storage maintenance in az2"] {
        assert!(audit.contains(reason), "{reason}: {audit}");
    }
    client.close().await.unwrap();
}

/// Beside the time picker, what happened around the moment: orders-prod's
/// DROP TABLE is marked among its neighbours, and a click on "Just before"
/// sets the target to the second before it, checked at once.
#[tokio::test]
async fn the_form_shows_what_happened_and_a_click_sets_the_target() {
    let t = spawn_app(false, &[]).await;
    let orders = t.cluster_id("orders-prod").await;
    let incident = common::t0() - restore_desk::demo::ORDERS_DROPPED_BEFORE;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let shots = Shots::new();
    sign_in(&client, &t, "alice@contoso.example").await;
    client
        .goto(&format!("{}/requests/new?cluster={orders}", t.base))
        .await
        .unwrap();
    until(
        &client,
        "the request form",
        "return !!document.getElementById('request-form')",
    )
    .await;
    eval(
        &client,
        "const z = document.getElementById('time_zone'); z.value = 'UTC';
         z.dispatchEvent(new Event('change', {bubbles: true}));",
        vec![],
    )
    .await;
    set_input(&client, "date", &incident.format("%Y-%m-%d").to_string()).await;
    set_input(&client, "time", &incident.format("%H:%M:%S").to_string()).await;
    until(
        &client,
        "the DROP among the transactions around the moment",
        "return Array.from(document.querySelectorAll('#happened-list .tx-destructive'))
           .some(d => d.innerText.includes('DROP public.orders'));",
    )
    .await;
    let around = eval(
        &client,
        "return Array.from(document.querySelectorAll('#happened-list .tx')).length",
        vec![],
    )
    .await;
    assert!(
        around.as_u64().unwrap() >= 10,
        "its neighbours too: {around}"
    );
    shots.take(&client, "request-form-what-happened").await;
    // The DROP's row: a large delete nearby is marked too.
    click_drop_before(&client, "#happened-list").await;
    let drop_second = incident.timestamp() / 7 * 7;
    let before = chrono::DateTime::from_timestamp(drop_second - 1, 0).unwrap();
    let expected = before.format("%H:%M:%S").to_string();
    until(
        &client,
        "the target set to just before the drop's transaction, and checked",
        &format!(
            "return document.getElementById('time').value === '{expected}'
               && document.getElementById('position').value === 'before'
               && document.getElementById('transaction').value !== ''
               && !document.getElementById('transaction-choice').hidden
               && document.getElementById('preview').innerText.includes('just before transaction')
               && document.getElementById('preview').getAttribute('data-state') === 'ok'"
        ),
    )
    .await;
    // "Use the time instead" drops it.
    click(&client, "#transaction-clear").await;
    until(
        &client,
        "the transaction dropped",
        "return document.getElementById('transaction').value === ''
           && document.getElementById('transaction-choice').hidden",
    )
    .await;
    // Without script the same is a page of links.
    let href = eval(
        &client,
        "return document.getElementById('happened-link').getAttribute('href')",
        vec![],
    )
    .await;
    assert!(
        href.as_str()
            .unwrap()
            .starts_with(&format!("/clusters/{orders}/transactions?around=")),
        "{href}"
    );
    client.close().await.unwrap();
}

/// Asked by the engineer, the customer corrects the target on the ticket
/// page to just before the DROP's transaction, picked from what happened
/// around the moment beside the form.
#[tokio::test]
async fn a_customer_corrects_the_target_to_a_transaction_on_the_ticket_page() {
    let t = spawn_app(false, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let id = t
        .file_request(&alice, "orders-prod", "orders-corrected")
        .await;
    t.staff_acts(
        &id,
        &[
            ("claim", json!({})),
            (
                "request-info",
                json!({"body": "Was it just before the orders table went?"}),
            ),
        ],
    )
    .await;
    let incident = common::t0() - restore_desk::demo::ORDERS_DROPPED_BEFORE;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    sign_in(&client, &t, "alice@contoso.example").await;
    client
        .goto(&format!("{}/tickets/{id}", t.base))
        .await
        .unwrap();
    eval(
        &client,
        "document.querySelector('#target-form').closest('details').open = true;
         const z = document.getElementById('target-zone'); z.value = 'UTC';",
        vec![],
    )
    .await;
    set_input(
        &client,
        "target-date",
        &incident.format("%Y-%m-%d").to_string(),
    )
    .await;
    set_input(
        &client,
        "target-time",
        &incident.format("%H:%M:%S").to_string(),
    )
    .await;
    until(
        &client,
        "the DROP beside the form",
        "return Array.from(document.querySelectorAll('#target-form .tx-destructive'))
           .some(d => d.innerText.includes('DROP public.orders'));",
    )
    .await;
    // The DROP's row: a large delete nearby is marked too.
    click_drop_before(&client, "#target-form").await;
    until(
        &client,
        "the transaction chosen",
        "return document.querySelector('#target-form [name=position]').value === 'before'
           && !document.querySelector('#target-form [data-transaction-choice]').hidden",
    )
    .await;
    client
        .find(Locator::Css("#target-reason"))
        .await
        .unwrap()
        .send_keys("Yes: just before the orders table was dropped")
        .await
        .unwrap();
    click(&client, "#target-form button[type=submit]").await;
    // The form itself says "just before transaction" once chosen: the
    // flash is what only the answer to the submit shows.
    until(
        &client,
        "the corrected ticket",
        "const f = document.querySelector('.flash');
         return !!f && f.innerText.includes('passed its check')
           && document.body.innerText.includes('just before transaction');",
    )
    .await;
    let stored = t
        .app
        .store
        .ticket(id.parse().unwrap(), Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    let chosen = stored.transaction.expect("a transaction target");
    assert_eq!(chosen.position.as_str(), "before");
    assert_eq!(stored.state, TicketState::InReview);
    let drop_second = incident.timestamp() / 7 * 7;
    assert_eq!(
        chosen.committed_at(stored.target_time).timestamp(),
        drop_second,
        "the DROP's commit"
    );
    client.close().await.unwrap();
}

/// A customer who asked to look first guessed a moment after the orders
/// table was dropped. On the paused copy's ticket page they read where to
/// look, then pick "Just before" the DROP from what happened around their
/// moment and go back to it; the new copy pauses there and they accept it.
#[tokio::test]
async fn a_paused_copy_goes_back_to_just_before_the_drop_picked_beside_the_form() {
    let t = spawn_app(false, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let incident = common::t0() - restore_desk::demo::ORDERS_DROPPED_BEFORE;
    let guessed = incident + chrono::Duration::minutes(5);
    let (status, ticket) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders, "target_time": guessed.to_rfc3339(),
                   "time_zone": "UTC", "new_cluster_name": "orders-looked",
                   "severity": "A", "description": "orders vanished", "inspect": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let id = ticket["id"].as_str().unwrap().to_string();
    t.staff_acts(&id, &[("claim", json!({})), ("approve", json!({}))])
        .await;
    restore_desk::engine::drain(&t.app).await.unwrap();
    assert_eq!(state_of(&t, &id).await, TicketState::AwaitingDecision);

    let driver = start_driver().await;
    let client = browser(&driver).await;
    let shots = Shots::new();
    sign_in(&client, &t, "alice@contoso.example").await;
    client
        .goto(&format!("{}/tickets/{id}", t.base))
        .await
        .unwrap();
    until(
        &client,
        "the paused copy's panel",
        "const d = document.querySelector('.decision');
         return !!d && d.innerText.includes('read-only') && d.innerText.includes('orders-looked.');",
    )
    .await;
    shots.take(&client, "ticket-paused-copy").await;
    // They remember it was a little earlier: the panel follows the moment.
    eval(
        &client,
        "document.querySelector('#target-form').closest('details').open = true;",
        vec![],
    )
    .await;
    set_input(
        &client,
        "target-time",
        &incident.format("%H:%M:%S").to_string(),
    )
    .await;
    until(
        &client,
        "the DROP beside the form",
        "return Array.from(document.querySelectorAll('#target-form .tx-destructive'))
           .some(d => d.innerText.includes('DROP public.orders'));",
    )
    .await;
    shots
        .take(&client, "ticket-paused-copy-what-happened")
        .await;
    // The DROP's row: a large delete nearby is marked too.
    click_drop_before(&client, "#target-form").await;
    until(
        &client,
        "just before the DROP's transaction chosen",
        "return document.querySelector('#target-form [name=position]').value === 'before'
           && !document.querySelector('#target-form [data-transaction-choice]').hidden",
    )
    .await;
    click(&client, "#target-form button[formaction$='/go-back']").await;
    until(
        &client,
        "the ticket going back",
        "const f = document.querySelector('.flash');
         return !!f && f.innerText.includes('Going back: this copy is removed');",
    )
    .await;
    restore_desk::engine::drain(&t.app).await.unwrap();
    let stored = t
        .app
        .store
        .ticket(id.parse().unwrap(), Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, TicketState::AwaitingDecision);
    let chosen = stored
        .transaction
        .unwrap_or_else(|| panic!("a transaction target: {stored:?}"));
    assert_eq!(chosen.position.as_str(), "before");
    assert!(stored.target_time < incident + chrono::Duration::seconds(7));
    client.refresh().await.unwrap();
    until(
        &client,
        "the new copy paused just before the drop",
        "const d = document.querySelector('.decision');
         return !!d && document.body.innerText.includes('just before transaction');",
    )
    .await;
    click(&client, "form[action$='/accept'] button[type=submit]").await;
    until(
        &client,
        "accepted",
        "const f = document.querySelector('.flash');
         return !!f && f.innerText.includes('Accepted: the copy is being handed over');",
    )
    .await;
    restore_desk::engine::drain(&t.app).await.unwrap();
    assert_eq!(state_of(&t, &id).await, TicketState::Completed);
    client.refresh().await.unwrap();
    until(
        &client,
        "the new cluster handed over",
        "return document.body.innerText.includes('Your new cluster is ready')",
    )
    .await;
    shots
        .take(&client, "ticket-accepted-after-going-back")
        .await;
    client.close().await.unwrap();
}

/// Clicks "Just before" on the DROP's row of the list under `scope`.
async fn click_drop_before(client: &Client, scope: &str) {
    let clicked = eval(
        client,
        "const row = Array.from(document.querySelectorAll(arguments[0] + ' .tx-destructive'))
           .find(d => d.innerText.includes('DROP public.orders'));
         if (!row) return false;
         row.querySelector('.tx-before').click();
         return true;",
        vec![json!(scope)],
    )
    .await;
    assert_eq!(clicked, json!(true), "the DROP's row is listed");
}
