//! A real headless Chromium, driven through ChromeDriver: a customer signs
//! in, files a request with a local time and zone and sees its UTC
//! equivalent; a bad target shows its message in the form; staff claim and
//! approve; the customer watches the progress bar advance to completed.
//! Screenshots of the main pages go to `test-artifacts/screenshots/`.

#[path = "common/chrome.rs"]
mod chrome;
mod common;

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{Value, json};

use chrome::*;
use common::web::spawn_app_with;
use restore_desk::domain::ticket::TicketState;
use restore_desk::store::Scope;

#[tokio::test]
async fn customer_files_staff_approve_and_the_restore_completes_in_a_browser() {
    let mut t = spawn_app_with(false, &[], |s| s.sandbox_step_ms = 900).await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let shots = Shots::new();
    let orders = t.cluster_id("orders-prod").await.to_string();

    // ---------------------------------------------------------------- customer
    client.goto(&format!("{}/login", t.base)).await.unwrap();
    shots.take(&client, "01-sign-in").await;
    sign_in(&client, &t, "alice@contoso.example").await;
    assert!(text_of(&client).await.contains("orders-prod"));
    shots.take(&client, "02-customer-clusters").await;

    click(&client, "nav a[href='/support']").await;
    until(
        &client,
        "Help + support",
        "return location.pathname === '/support'",
    )
    .await;
    shots.take(&client, "03-help-and-support").await;
    click(&client, "main a[href='/support/new']").await;
    until(
        &client,
        "the problem type",
        "return location.pathname === '/support/new'",
    )
    .await;
    client
        .find(Locator::Css("#cluster"))
        .await
        .unwrap()
        .select_by_value(&orders)
        .await
        .unwrap();
    click(&client, "main form button[type='submit']").await;
    until(
        &client,
        "the request form",
        "return !!document.getElementById('request-form')",
    )
    .await;

    // The zone list starts from the browser's zone, not the account's.
    let zone = client
        .find(Locator::Css("#time_zone"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(zone.as_deref(), Some(BROWSER_ZONE));

    // A target outside the retention: the live check says why …
    client
        .find(Locator::Css("#time_zone"))
        .await
        .unwrap()
        .select_by_value("Europe/Amsterdam")
        .await
        .unwrap();
    set_input(&client, "date", "2026-09-01").await;
    set_input(&client, "time", "10:00").await;
    let name = client
        .find(Locator::Css("#new_cluster_name"))
        .await
        .unwrap();
    name.clear().await.unwrap();
    name.send_keys("orders-browser").await.unwrap();
    until(
        &client,
        "the live refusal",
        "return document.getElementById('preview').innerText.includes('Backups are kept for 35 days')",
    )
    .await;
    // … and submitting shows the message in the form, by the field.
    click(&client, "button[value='file']").await;
    until(
        &client,
        "the refusal in the form",
        "return !!document.getElementById('when-error')",
    )
    .await;
    let error = client
        .find(Locator::Css("#when-error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(error.contains("Backups are kept for 35 days"), "{error}");
    assert_eq!(
        t.app
            .store
            .count_tickets(Scope::Everything, &[])
            .await
            .unwrap(),
        0
    );
    shots.take(&client, "04-request-form-refused").await;

    // A good local time: the UTC equivalent shows before submitting.
    set_input(&client, "date", "2026-11-24").await;
    set_input(&client, "time", "14:30").await;
    until(
        &client,
        "the UTC equivalent",
        "const p = document.getElementById('preview');
         return p.dataset.state === 'ok' && p.innerText.includes('2026-11-24 13:30:00 UTC')",
    )
    .await;
    client
        .find(Locator::Css("input[name='severity'][value='A']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Css("#description"))
        .await
        .unwrap()
        .send_keys("A migration dropped the orders table at 14:35.")
        .await
        .unwrap();
    shots.take(&client, "05-request-form-checked").await;
    click(&client, "button[value='file']").await;
    until(
        &client,
        "the ticket page",
        "return location.pathname.startsWith('/tickets/')",
    )
    .await;
    let page = text_of(&client).await;
    assert!(page.contains("RD-000001"), "{page}");
    assert!(page.contains("2026-11-24 13:30:00 UTC"), "{page}");
    shots.take(&client, "06-customer-ticket-filed").await;
    let ticket_url = client.current_url().await.unwrap().to_string();
    sign_out(&client).await;

    // ---------------------------------------------------------------- staff
    sign_in(&client, &t, "sam@support.example").await;
    assert!(text_of(&client).await.contains("RD-000001"));
    shots.take(&client, "07-staff-queue").await;
    click(&client, "table.queue a").await;
    until(
        &client,
        "the staff ticket",
        "return !!document.querySelector('.report')",
    )
    .await;
    shots.take(&client, "08-staff-ticket").await;
    click(&client, "form[action$='/claim'] button").await;
    until(
        &client,
        "the claim",
        "return document.body.innerText.includes('You claimed RD-000001')",
    )
    .await;
    client
        .find(Locator::Css("#note-body"))
        .await
        .unwrap()
        .send_keys("Customer confirmed by phone.")
        .await
        .unwrap();
    click(&client, "form[action$='/note'] button").await;
    until(
        &client,
        "the note",
        "return document.body.innerText.includes('Internal note saved')",
    )
    .await;
    click(&client, "form[action$='/approve'] button").await;
    until(
        &client,
        "the approval",
        "return document.body.innerText.includes('is approved')",
    )
    .await;
    shots.take(&client, "09-staff-ticket-approved").await;
    sign_out(&client).await;

    // ---------------------------------------------------------------- progress
    sign_in(&client, &t, "alice@contoso.example").await;
    client.goto(&ticket_url).await.unwrap();
    until(
        &client,
        "the progress bar",
        "return !!document.querySelector('progress')",
    )
    .await;
    assert!(
        !text_of(&client)
            .await
            .contains("Customer confirmed by phone")
    );
    // The restore starts while the customer watches.
    t.start_engine();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut mid_shot = false;
    loop {
        // Read "ready" before the bar: the page may update between the two
        // reads, and the bar read last is then the final one.
        let done = text_of(&client).await.contains("Your new cluster is ready");
        let value = client
            .execute(
                "const bar = document.querySelector('progress');
                 return bar ? bar.value : null",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_f64());
        if let Some(value) = value {
            if seen.last() != Some(&value) {
                seen.push(value);
            }
            if value > 20.0 && value < 90.0 && !mid_shot {
                shots.take(&client, "10-customer-restore-in-progress").await;
                mid_shot = true;
            }
        }
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restore did not complete on the page; progress seen: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(seen.last(), Some(&100.0), "progress seen: {seen:?}");
    assert!(
        seen.iter().any(|v| *v > 0.0 && *v < 100.0),
        "the bar moved through the steps: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "the bar only moves forward: {seen:?}"
    );
    let page = text_of(&client).await;
    assert!(page.contains("orders-browser.westeurope.sandbox.restore-desk.localhost"));
    shots.take(&client, "11-customer-restore-completed").await;
    let ticket = t
        .app
        .store
        .ticket_by_number(1, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ticket.state, TicketState::Completed);

    // ---------------------------------------------------------------- the rest, for the eye
    client
        .goto(&format!("{}/clusters/{orders}", t.base))
        .await
        .unwrap();
    shots.take(&client, "12-customer-cluster").await;
    client.goto(&format!("{}/tickets", t.base)).await.unwrap();
    shots.take(&client, "13-customer-requests").await;
    client.set_window_size(375, 800).await.unwrap();
    client.goto(&format!("{}/clusters", t.base)).await.unwrap();
    shots.take(&client, "14-phone-clusters").await;
    client
        .goto(&format!("{}/requests/new?cluster={orders}", t.base))
        .await
        .unwrap();
    shots.take(&client, "15-phone-request-form").await;
    client.goto(&ticket_url).await.unwrap();
    shots.take(&client, "16-phone-ticket").await;
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(overflow, Value::Bool(true), "the page fits a 375px screen");
    client.set_window_size(1280, 1000).await.unwrap();
    sign_out(&client).await;

    sign_in(&client, &t, "ada@admin.example").await;
    for (path, name) in [
        ("/admin/users", "17-admin-users"),
        ("/admin/clusters", "18-admin-clusters"),
        ("/admin/zones", "19-admin-zones"),
        ("/admin/outbox", "20-admin-outbox"),
        ("/admin/audit", "21-admin-audit"),
    ] {
        client.goto(&format!("{}{path}", t.base)).await.unwrap();
        shots.take(&client, name).await;
    }
    client.close().await.unwrap();
}

/// Chromium drops a tab in a URL, so `/%09/evil.example` reads to it as
/// `//evil.example`: signing in must still land on the desk.
#[tokio::test]
async fn signing_in_with_a_hostile_next_stays_on_the_desk() {
    let t = spawn_app_with(false, &[], |_| {}).await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let desk = url::Url::parse(&t.base).unwrap();
    for next in ["/%09/evil.example", "/%5C%5Cevil.example", "//evil.example"] {
        client
            .goto(&format!("{}/login?next={next}", t.base))
            .await
            .unwrap();
        client
            .find(Locator::Css("#email"))
            .await
            .unwrap()
            .send_keys("alice@contoso.example")
            .await
            .unwrap();
        client
            .find(Locator::Css("#password"))
            .await
            .unwrap()
            .send_keys(common::web::PASSWORD)
            .await
            .unwrap();
        click(&client, "form[action='/login'] button").await;
        until(
            &client,
            "a page after signing in",
            "return !location.pathname.startsWith('/login')",
        )
        .await;
        let landed = url::Url::parse(client.current_url().await.unwrap().as_str()).unwrap();
        assert_eq!(
            landed.origin(),
            desk.origin(),
            "next={next} led to {landed}"
        );
        sign_out(&client).await;
    }
    client.close().await.unwrap();
}

/// A customer adds a signed webhook (the secret shows once) and says a
/// finished restore's data is not right, in a real browser: the forms work
/// under the pages' Content-Security-Policy, and the ticket goes back to
/// its engineer.
#[tokio::test]
async fn a_customer_adds_a_webhook_and_gives_a_verdict_in_a_browser() {
    let t = spawn_app_with(false, &["--webhook-allow-http-loopback", "true"], |_| {}).await;
    let alice = common::web::Api::signed_in(&t.base, "alice@contoso.example").await;
    let id = t
        .file_request(&alice, "orders-prod", "verdict-in-browser")
        .await;
    t.staff_acts(&id, &[("claim", json!({})), ("approve", json!({}))])
        .await;
    restore_desk::engine::drain(&t.app).await.unwrap();

    let driver = start_driver().await;
    let client = browser(&driver).await;
    let shots = Shots::new();
    sign_in(&client, &t, "alice@contoso.example").await;
    client
        .goto(&format!("{}/account/endpoints", t.base))
        .await
        .unwrap();
    set_input(&client, "ep-url", "http://127.0.0.1:9/restore-desk").await;
    click(
        &client,
        "form[action='/account/endpoints'] button[type=submit]",
    )
    .await;
    until(
        &client,
        "the secret, shown once",
        "return document.body.innerText.includes('shown this once')",
    )
    .await;
    let secret = client
        .execute(
            "return document.querySelector('input[aria-label=\"Signing secret\"]').value",
            vec![],
        )
        .await
        .unwrap();
    assert!(secret.as_str().unwrap().starts_with("whsec_"), "{secret}");
    shots.take(&client, "customer-integrations").await;

    client
        .goto(&format!("{}/tickets/{id}", t.base))
        .await
        .unwrap();
    click(&client, "input[name=data_right][value=no]").await;
    client
        .find(Locator::Css("#verdict-comment"))
        .await
        .unwrap()
        .send_keys("The orders of 14:20 are missing")
        .await
        .unwrap();
    click(&client, "input[name=rating][value='3']").await;
    shots.take(&client, "customer-verdict").await;
    click(&client, "form.verdict-form button[type=submit]").await;
    until(
        &client,
        "the verdict's thanks",
        "return document.body.innerText.includes('back with the engineer')",
    )
    .await;
    let stored = t
        .app
        .store
        .ticket(id.parse().unwrap(), Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, TicketState::InReview);
    assert!(
        text_of(&client)
            .await
            .contains("You said the restored data is not right")
    );
    client.close().await.unwrap();
}

/// A reply half-written when the ticket changes state (the page reloads
/// itself to show the new state) is still there afterwards, and signing out
/// forgets it.
#[tokio::test]
async fn a_draft_reply_survives_a_state_change_of_its_ticket() {
    let t = spawn_app_with(false, &[], |_| {}).await;
    let alice = common::web::Api::signed_in(&t.base, "alice@contoso.example").await;
    let sam = common::web::Api::signed_in(&t.base, "sam@support.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let (_, ticket) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders, "target_time": "2026-11-24T10:00:00Z",
                   "new_cluster_name": "draft-kept", "severity": "B", "description": "drafts"}),
        )
        .await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let (status, _) = sam
        .post(&format!("/api/v1/tickets/{id}/claim"), json!({}))
        .await;
    assert!(status.is_success());

    let driver = start_driver().await;
    let client = browser(&driver).await;
    sign_in(&client, &t, "alice@contoso.example").await;
    client
        .goto(&format!("{}/tickets/{id}", t.base))
        .await
        .unwrap();
    let typed = "The orders table went missing around 14:35, I am still checking";
    client
        .find(Locator::Css("#reply-body"))
        .await
        .unwrap()
        .send_keys(typed)
        .await
        .unwrap();
    // The engineer asks something: the page follows the new state.
    let (status, body) = sam
        .post(
            &format!("/api/v1/tickets/{id}/request-info"),
            json!({"body": "Which schema?"}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    until(
        &client,
        "the page to show the engineer's question",
        "return document.body.innerText.includes('Which schema?')",
    )
    .await;
    let kept = client
        .execute("return document.getElementById('reply-body').value", vec![])
        .await
        .unwrap();
    assert_eq!(kept.as_str(), Some(typed), "the draft survived the reload");
    assert!(text_of(&client).await.contains("Your unsent text is back"));

    // Signed out and in again: the draft is gone with the session.
    sign_out(&client).await;
    sign_in(&client, &t, "alice@contoso.example").await;
    client
        .goto(&format!("{}/tickets/{id}", t.base))
        .await
        .unwrap();
    let after = client
        .execute("return document.getElementById('reply-body').value", vec![])
        .await
        .unwrap();
    assert_eq!(after.as_str(), Some(""));
    client.close().await.unwrap();
}

/// At phone size the request form's controls are at least 44 px tall to
/// tap, and the cluster's timeline, wider than the screen, opens scrolled
/// to its recent end. Screenshots of both at phone size.
#[tokio::test]
async fn at_phone_size_targets_are_tappable_and_the_timeline_opens_at_now() {
    let t = spawn_app_with(false, &[], |_| {}).await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let shots = Shots::new();
    sign_in(&client, &t, "alice@contoso.example").await;
    client.set_window_size(390, 844).await.unwrap();
    let orders = t.cluster_id("orders-prod").await;
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
    let small = client
        .execute(
            "const small = [];
             document.querySelectorAll('#request-form button, #request-form input:not([type=hidden]), #request-form select, .nav a, .choice').forEach(function (el) {
               const r = el.getBoundingClientRect();
               const box = el.closest('.choice') || el;
               const h = box.getBoundingClientRect().height;
               if (r.width > 0 && h < 44) small.push((el.id || el.name || el.textContent.trim()) + ': ' + h);
             });
             return small;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(small, json!([]), "targets under 44 px");
    let scrolled = client
        .execute(
            "const box = document.querySelector('.tl-scroll');
             return box ? [box.scrollWidth > box.clientWidth, box.scrollLeft] : null;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        scrolled[0],
        json!(true),
        "the timeline is wider than a phone: {scrolled}"
    );
    assert!(
        scrolled[1].as_f64().unwrap() > 0.0,
        "opened at its recent end: {scrolled}"
    );
    shots.take(&client, "phone-request-form").await;
    client
        .execute(
            "document.querySelector('.timeline').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(shots.dir.join("phone-timeline.png"), png).unwrap();
    client.close().await.unwrap();
}
