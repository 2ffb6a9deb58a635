//! Destructive acts on the admin pages — deleting a cluster, taking a zone
//! offline — ask for a confirmation and a reason; without both nothing
//! changes, and the audit trail keeps the reason. Both stores.

mod common;

use reqwest::StatusCode;
use serde_json::Value;

use common::web::{Api, spawn_app};

async fn destructive_acts_need_a_confirmation_and_a_reason(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let mut ada = t.browser();
    ada.sign_in("ada@admin.example").await;
    let api = Api::signed_in(&t.base, "ada@admin.example").await;
    let zone_online = |zones: &Value, zone: &str| {
        zones
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["zone"] == zone)
            .map(|z| z["online"] == true)
            .unwrap()
    };

    ada.page("/admin/zones").await;
    let path = "/admin/zones/westeurope/az2/offline";
    for (fields, field) in [
        (vec![], "Tick the box"),
        (vec![("reason", "maintenance")], "Tick the box"),
        (vec![("confirm", "yes")], "Say why"),
        (vec![("confirm", "yes"), ("reason", "  ")], "Say why"),
    ] {
        let refused = ada.post(path, &fields).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields:?}"
        );
        assert!(refused.text().await.unwrap().contains(field), "{fields:?}");
        let (_, zones) = api.get("/api/v1/zones").await;
        assert!(zone_online(&zones, "az2"), "nothing changed: {zones}");
    }
    let done = ada
        .post(
            path,
            &[("confirm", "yes"), ("reason", "storage maintenance in az2")],
        )
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let (_, zones) = api.get("/api/v1/zones").await;
    assert!(!zone_online(&zones, "az2"));
    // Bringing it back needs nothing more.
    let back = ada.post("/admin/zones/westeurope/az2/online", &[]).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);

    let analytics = t.cluster_id("analytics").await;
    ada.page("/admin/clusters").await;
    let refused = ada
        .post(
            &format!("/admin/clusters/{analytics}/delete"),
            &[("reason", "gone")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, cluster) = api.get(&format!("/api/v1/clusters/{analytics}")).await;
    assert!(cluster["deleted_at"].is_null(), "{cluster}");
    let deleted = ada
        .post(
            &format!("/admin/clusters/{analytics}/delete"),
            &[("confirm", "yes"), ("reason", "the customer retired it")],
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);

    let (_, audit) = api.get("/api/v1/audit").await;
    let details: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap_or_default())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.ends_with("storage maintenance in az2")),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.ends_with("the customer retired it")),
        "{details:?}"
    );
}

both_databases!(destructive_acts_need_a_confirmation_and_a_reason);
