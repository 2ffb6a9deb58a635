//! How a request ends, as its customer reads it: a failed restore says
//! what happened and what happens next in plain words (never the internal
//! error), a cancelled one reads as cancelled (no frozen progress bar), a
//! completed one shows the verification report and where the password
//! comes from, and every closed one offers a follow-up request linked to
//! it. Both stores.

mod common;

use reqwest::StatusCode;
use serde_json::json;

use common::web::{Api, Browser, TestApp, spawn_app};

async fn alice_page(t: &TestApp, id: &str) -> (Browser, String) {
    let mut alice = t.browser();
    alice.sign_in("alice@contoso.example").await;
    let page = alice.page(&format!("/tickets/{id}")).await;
    (alice, page)
}

const BAR: &str = "aria-label=\"Restore progress\"";

async fn every_ending_says_what_happened_and_what_is_next(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let alice_api = Api::signed_in(&t.base, "alice@contoso.example").await;

    // Failed: verification fails for good.
    let (status, body) = ada
        .post(
            "/api/v1/faults",
            json!({"kind": "fail_step", "step": "verifying", "permanent": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let failed = t
        .file_request(&alice_api, "orders-prod", "ending-failed")
        .await;
    t.staff_acts(&failed, &[("claim", json!({})), ("approve", json!({}))])
        .await;
    restore_desk::engine::drain(&t.app).await.unwrap();
    let job = t
        .app
        .store
        .job_for_ticket(failed.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let internal = job.last_error.clone().expect("the internal error");
    let (mut alice, page) = alice_page(&t, &failed).await;
    assert!(page.contains("The restore did not finish"), "{page}");
    assert!(page.contains("What happens next:"), "{page}");
    assert!(
        page.contains("Sam Okafor has been told and can start it again"),
        "{page}"
    );
    assert!(
        !page.contains(&internal),
        "the internal error shows: {internal}"
    );
    assert!(!page.contains(BAR), "no progress bar on a failed restore");
    assert!(page.contains(&format!("follow_up={failed}")), "{page}");

    // Cancelled while approved: reads as cancelled, no bar.
    let (status, _) = ada
        .send(reqwest::Method::DELETE, "/api/v1/faults", None)
        .await;
    assert!(status.is_success());
    let cancelled = t
        .file_request(&alice_api, "orders-prod", "ending-cancelled")
        .await;
    t.staff_acts(
        &cancelled,
        &[
            ("claim", json!({})),
            ("approve", json!({})),
            (
                "cancel-restore",
                json!({"reason": "the customer asked on the phone"}),
            ),
        ],
    )
    .await;
    restore_desk::engine::drain(&t.app).await.unwrap();
    let page = alice.page(&format!("/tickets/{cancelled}")).await;
    assert!(page.contains("This request is cancelled"), "{page}");
    assert!(page.contains("stopped before it was handed over"), "{page}");
    assert!(!page.contains(BAR), "no frozen bar: {page}");

    // Completed: the verification report and where the password comes from.
    let completed = t
        .file_request(&alice_api, "orders-prod", "ending-completed")
        .await;
    t.staff_acts(&completed, &[("claim", json!({})), ("approve", json!({}))])
        .await;
    restore_desk::engine::drain(&t.app).await.unwrap();
    let page = alice.page(&format!("/tickets/{completed}")).await;
    assert!(page.contains("This request is complete"), "{page}");
    assert!(page.contains("Verification report"), "{page}");
    assert!(page.contains("every check passed"), "{page}");
    assert!(
        page.contains("Password: the same as on orders-prod"),
        "{page}"
    );

    // Rejected: the reason, and a follow-up linked to it.
    let rejected = t
        .file_request(&alice_api, "orders-prod", "ending-rejected")
        .await;
    t.staff_acts(
        &rejected,
        &[
            ("claim", json!({})),
            (
                "reject",
                json!({"reason": "That moment is before the incident."}),
            ),
        ],
    )
    .await;
    let page = alice.page(&format!("/tickets/{rejected}")).await;
    assert!(page.contains("This request was declined"), "{page}");
    assert!(
        page.contains("That moment is before the incident."),
        "{page}"
    );
    let orders = t.cluster_id("orders-prod").await;
    let link = format!("/requests/new?cluster={orders}&#38;follow_up={rejected}");
    assert!(page.contains(&link), "{page}");
    let form = alice
        .page(&format!(
            "/requests/new?cluster={orders}&follow_up={rejected}"
        ))
        .await;
    let reference = t
        .app
        .store
        .ticket(
            rejected.parse().unwrap(),
            restore_desk::store::Scope::Everything,
        )
        .await
        .unwrap()
        .unwrap()
        .reference();
    assert!(
        form.contains(&format!("Follow-up to {reference}")),
        "{form}"
    );
    // Every email says where replies go.
    restore_desk::notify::relay::Relay::new(
        t.app.clone(),
        t.app.mailer.clone(),
        restore_desk::notify::relay::DeliveryPolicy::default(),
    )
    .unwrap()
    .drain()
    .await
    .unwrap();
    let mails: Vec<String> = std::fs::read_dir(&t.app.settings.mail_dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(!mails.is_empty());
    for mail in &mails {
        let reply_to = mail
            .lines()
            .find(|l| l.starts_with("Reply-To: "))
            .unwrap_or_else(|| panic!("no Reply-To: {mail}"));
        assert!(
            reply_to.contains("<support@restore-desk.localhost>"),
            "{reply_to}"
        );
    }
    // Another customer's ticket is not followed up on.
    let mut bob = t.browser();
    bob.sign_in("bob@fabrikam.example").await;
    let inventory = t.cluster_id("inventory").await;
    let form = bob
        .page(&format!(
            "/requests/new?cluster={inventory}&follow_up={rejected}"
        ))
        .await;
    assert!(!form.contains(&reference), "{form}");
}

both_databases!(every_ending_says_what_happened_and_what_is_next);
