//! A request for a cluster that already has an open one: the form warns
//! the customer and links it; the staff page lists the same person's other
//! open requests. Both stores.

mod common;

use reqwest::StatusCode;
use serde_json::json;

use common::web::{Api, spawn_app};

async fn an_open_request_for_the_cluster_is_pointed_out(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let bob = Api::signed_in(&t.base, "bob@fabrikam.example").await;
    let first = t.file_request(&alice, "orders-prod", "orders-first").await;
    let bobs = t.file_request(&bob, "inventory", "inventory-copy").await;
    let orders = t.cluster_id("orders-prod").await;
    let analytics = t.cluster_id("analytics").await;

    let mut page = t.browser();
    page.sign_in("alice@contoso.example").await;
    let form = page.page(&format!("/requests/new?cluster={orders}")).await;
    assert!(form.contains("id=\"duplicate-warning\""), "{form}");
    assert!(
        form.contains("orders-prod already has an open request"),
        "{form}"
    );
    assert!(
        form.contains(&format!("href=\"/tickets/{first}\"")),
        "{form}"
    );
    assert!(form.contains("orders-first"));
    let other = page
        .page(&format!("/requests/new?cluster={analytics}"))
        .await;
    assert!(
        other.contains("id=\"duplicate-warning\" hidden"),
        "kept hidden for the live check: {other}"
    );
    // The live check names the open requests of the cluster chosen.
    let check = |cluster: String| {
        format!(
            "/requests/preview?cluster_id={cluster}&date=2026-11-24&time=10:00&time_zone=UTC&new_cluster_name=x-copy"
        )
    };
    let live: serde_json::Value = page
        .get(&check(orders.to_string()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        live["duplicates_text"], "orders-prod already has an open request:",
        "{live}"
    );
    assert_eq!(live["duplicates"][0]["id"], first.as_str(), "{live}");
    assert_eq!(live["duplicates"][0]["new_cluster_name"], "orders-first");
    let live: serde_json::Value = page
        .get(&check(analytics.to_string()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(live["duplicates"], serde_json::json!([]), "{live}");
    // A refused or checked form keeps the warning.
    let checked = page
        .post(
            "/requests",
            &[
                ("intent", "check"),
                ("cluster_id", &orders.to_string()),
                ("date", "2026-11-24"),
                ("time", "10:00"),
                ("time_zone", "UTC"),
                ("new_cluster_name", "orders-second"),
                ("severity", "B"),
            ],
        )
        .await;
    assert!(
        checked
            .text()
            .await
            .unwrap()
            .contains("orders-prod already has an open request")
    );

    // Staff see the same person's other open requests, and only theirs.
    let second = t.file_request(&alice, "analytics", "analytics-copy").await;
    let mut sam = t.browser();
    sam.sign_in("sam@support.example").await;
    let staff = sam.page(&format!("/staff/tickets/{second}")).await;
    assert!(staff.contains("has another open request"), "{staff}");
    assert!(
        staff.contains(&format!("href=\"/staff/tickets/{first}\"")),
        "{staff}"
    );
    assert!(
        !staff.contains(&bobs),
        "another customer's request is not theirs"
    );
    let alone = sam.page(&format!("/staff/tickets/{bobs}")).await;
    assert!(!alone.contains("id=\"other-open\""), "{alone}");

    // Once the first is closed, nothing is pointed out.
    let (status, _) = alice
        .post(&format!("/api/v1/tickets/{first}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let form = page.page(&format!("/requests/new?cluster={orders}")).await;
    assert!(form.contains("id=\"duplicate-warning\" hidden"), "{form}");
    assert!(!form.contains("orders-first"), "{form}");
    let staff = sam.page(&format!("/staff/tickets/{second}")).await;
    assert!(!staff.contains("id=\"other-open\""), "{staff}");
}

/// A deleted cluster's card and page state its last restorable moment.
async fn a_deleted_cluster_states_its_last_restorable_day(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let old = t
        .app
        .store
        .clusters(restore_desk::store::Scope::Everything, true)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "old-billing")
        .unwrap();
    let until = old.deleted_at.expect("deleted") + chrono::Duration::days(7);
    let iso = until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut alice = t.browser();
    alice.sign_in("alice@contoso.example").await;
    for path in ["/clusters".to_string(), format!("/clusters/{}", old.id)] {
        let page = alice.page(&path).await;
        assert!(page.contains("can be restored until"), "{path}: {page}");
        assert!(
            page.contains(&format!("datetime=\"{iso}\"")),
            "{path}: {page}"
        );
    }
    // A live cluster says nothing of the kind.
    let orders = t.cluster_id("orders-prod").await;
    let page = alice.page(&format!("/clusters/{orders}")).await;
    assert!(!page.contains("can be restored until"));
}

both_databases!(
    an_open_request_for_the_cluster_is_pointed_out,
    a_deleted_cluster_states_its_last_restorable_day,
);
