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

fn parse(t: &Value) -> DateTime<Utc> {
    t["committed_at"].as_str().unwrap().parse().unwrap()
}

both_databases!(
    the_dropped_table_is_named_among_the_commits_around_it,
    the_page_leads_to_a_request_for_just_before_the_drop,
);
