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

/// Rejecting a request and stopping a restore ask their engineer to tick
/// the box; the reason they already ask for is kept.
async fn rejecting_and_stopping_a_restore_are_confirmed(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let sam_api = Api::signed_in(&t.base, "sam@support.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let mut ids = Vec::new();
    for name in ["confirm-reject", "confirm-stop"] {
        let (status, ticket) = alice
            .post(
                "/api/v1/tickets",
                serde_json::json!({"cluster_id": orders, "target_time": "2026-11-24T10:00:00Z",
                       "new_cluster_name": name, "severity": "B", "description": "confirm"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ticket}");
        let id = ticket["id"].as_str().unwrap().to_string();
        sam_api
            .post(
                &format!("/api/v1/tickets/{id}/claim"),
                serde_json::json!({}),
            )
            .await;
        ids.push(id);
    }
    sam_api
        .post(
            &format!("/api/v1/tickets/{}/approve", ids[1]),
            serde_json::json!({}),
        )
        .await;
    let mut sam = t.browser();
    sam.sign_in("sam@support.example").await;
    let state = |id: String| {
        let api = &sam_api;
        async move {
            let (_, ticket) = api.get(&format!("/api/v1/tickets/{id}")).await;
            ticket["state"].as_str().unwrap().to_string()
        }
    };
    for (id, action, before, after) in [
        (&ids[0], "reject", "in_review", "rejected"),
        (&ids[1], "cancel-restore", "approved", "cancelled"),
    ] {
        sam.page(&format!("/staff/tickets/{id}")).await;
        let path = format!("/staff/tickets/{id}/{action}");
        let refused = sam.post(&path, &[("reason", "the customer asked")]).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{action}"
        );
        let page = refused.text().await.unwrap();
        assert!(page.contains("Tick the box"), "{page}");
        assert!(
            page.contains("the customer asked"),
            "what was typed stays: {page}"
        );
        assert_eq!(state(id.clone()).await, before);
        let done = sam
            .post(
                &path,
                &[("reason", "the customer asked"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(done.status(), StatusCode::SEE_OTHER, "{action}");
        assert_eq!(state(id.clone()).await, after);
    }
}

both_databases!(
    destructive_acts_need_a_confirmation_and_a_reason,
    rejecting_and_stopping_a_restore_are_confirmed,
);
