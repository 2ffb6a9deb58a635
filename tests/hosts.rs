//! The fleet's hosts as configuration, on both stores: admins put, replace
//! and remove hosts through the API and the admin page, each audited;
//! every refusal names its field and stores nothing; a zone has one host;
//! staff may read the list, customers nothing; a host with an unfinished
//! restore placed on it is kept. The real binary reads a fleet description
//! (`FLEET_CONFIG`) at start, and stops at start, storing nothing, when
//! the description is wrong.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::TestDb;
use common::web::{Api, TestApp, spawn_app};
use restore_desk::domain::host::{FleetHost, HostRole};
use restore_desk::store::{Event, EventAction};

fn zone_host(zone: &str) -> Value {
    json!({"role": "zone", "address": format!("{zone}.fleet.test"), "zone": zone,
           "data_root": "/var/lib/rd"})
}

fn restore_host(name: &str, limit: i64) -> Value {
    json!({"role": "restore", "address": format!("{name}.fleet.test"),
           "data_root": "/srv/restores", "max_restores": limit})
}

async fn put(api: &Api, name: &str, body: Value) -> (StatusCode, Value) {
    api.send(Method::PUT, &format!("/api/v1/hosts/{name}"), Some(body))
        .await
}

async fn delete(api: &Api, name: &str) -> (StatusCode, Value) {
    api.send(Method::DELETE, &format!("/api/v1/hosts/{name}"), None)
        .await
}

/// The hosts the API lists, by name.
async fn listed(api: &Api) -> Vec<Value> {
    let (status, body) = api.get("/api/v1/hosts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["hosts"].as_array().unwrap().clone()
}

fn names(hosts: &[Value]) -> Vec<&str> {
    hosts.iter().map(|h| h["name"].as_str().unwrap()).collect()
}

fn named<'a>(hosts: &'a [Value], name: &str) -> &'a Value {
    hosts
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("no host {name} in {hosts:?}"))
}

/// The audit trail's host events, oldest first.
async fn host_events(t: &TestApp) -> Vec<Event> {
    let mut events: Vec<Event> = t
        .app
        .store
        .audit_log(None, 500)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.action, EventAction::HostPut | EventAction::HostRemove))
        .collect();
    events.reverse();
    events
}

async fn the_api_puts_lists_replaces_and_removes_hosts(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    for zone in ["az1", "az2", "az3"] {
        let (status, host) = put(&ada, zone, zone_host(zone)).await;
        assert_eq!(status, StatusCode::OK, "{host}");
        assert_eq!(host["zone"], zone, "{host}");
    }
    let (status, r1) = put(&ada, "r1", restore_host("r1", 3)).await;
    assert_eq!(status, StatusCode::OK, "{r1}");
    assert_eq!(
        r1,
        json!({"name": "r1", "role": "restore", "address": "r1.fleet.test", "zone": null,
               "data_root": "/srv/restores", "max_restores": 3, "tls_port": 8432,
               "configured": true, "alive": false, "last_seen_at": null,
               "free_bytes": null, "restores_running": 0})
    );

    let hosts = listed(&ada).await;
    assert_eq!(names(&hosts), ["r1", "az1", "az2", "az3"]);
    assert!(hosts.iter().all(|h| h["configured"] == true));

    // Replaced whole: a field left out is gone, the port is the default.
    let (status, moved) = put(
        &ada,
        "az3",
        json!({"role": "zone", "address": "az3-new.fleet.test", "zone": "az3",
               "data_root": "/data", "tls_port": 9432}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let hosts = listed(&ada).await;
    assert_eq!(hosts.len(), 4);
    let az3 = named(&hosts, "az3");
    assert_eq!(
        (&az3["address"], &az3["tls_port"], &az3["data_root"]),
        (&json!("az3-new.fleet.test"), &json!(9432), &json!("/data"))
    );

    let (status, body) = delete(&ada, "r1").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(names(&listed(&ada).await), ["az1", "az2", "az3"]);
    let (status, body) = delete(&ada, "r1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");

    // Each change is in the audit trail, by ada.
    let events = host_events(&t).await;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "host_put",
            "host_put",
            "host_put",
            "host_put",
            "host_put",
            "host_remove"
        ]
    );
    assert!(
        events[3].detail.starts_with("added: restore host r1"),
        "{:?}",
        events[3]
    );
    assert!(
        events[4].detail.starts_with("replaced: zone host az3"),
        "{:?}",
        events[4]
    );
    let ada_id = restore_desk::store::UserId::from(
        uuid::Uuid::parse_str(ada.get("/api/v1/me").await.1["id"].as_str().unwrap()).unwrap(),
    );
    assert!(events.iter().all(|e| e.actor_id == Some(ada_id)));
    let (_, audit) = ada.get("/api/v1/audit").await;
    assert_eq!(audit[0]["action"], "host_remove", "{audit}");
}

async fn bad_hosts_are_refused_by_field_and_store_nothing(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let cases = [
        (
            "az1",
            json!({"role": "zone", "address": "10.0.0.1", "zone": "az1", "data_root": "/x"}),
            "address",
            "not an IP address",
        ),
        (
            "r1",
            json!({"role": "restore", "address": "r1.fleet.test", "zone": "az1",
                   "data_root": "/srv"}),
            "zone",
            "Only a zone host has a zone",
        ),
        (
            "r1",
            json!({"role": "restore", "address": "r1.fleet.test", "data_root": "/srv",
                   "max_restores": 0}),
            "max_restores",
            "1 to 64",
        ),
        (
            "p1",
            json!({"role": "printer", "address": "p1.fleet.test"}),
            "role",
            "source, zone or restore",
        ),
        (
            "az1",
            json!({"role": "zone", "address": "az1.fleet.test", "zone": "az9",
                   "data_root": "/x"}),
            "zone",
            "az1, az2 or az3",
        ),
        (
            "az1",
            json!({"role": "zone", "address": "az1.fleet.test", "zone": "az1"}),
            "data_root",
            "needs a data root",
        ),
        (
            "R%201",
            json!({"role": "source", "address": "s.fleet.test"}),
            "name",
            "lowercase letters",
        ),
        (
            "s1",
            json!({"role": "source", "address": "s.fleet.test", "tls_port": 70000}),
            "tls_port",
            "1 to 65535",
        ),
    ];
    for (name, body, field, words) in cases {
        let (status, answer) = put(&ada, name, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_input", "{answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{words:?} not in {message:?}");
    }
    assert!(t.app.store.fleet_hosts().await.unwrap().is_empty());
    assert!(host_events(&t).await.is_empty());

    // A zone has one host: a second for az1 is refused, naming the first.
    let (status, first) = put(&ada, "zone-a", zone_host("az1")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let stored = t.app.store.fleet_hosts().await.unwrap();
    let (status, answer) = put(&ada, "zone-b", zone_host("az1")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["field"], "zone", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Zone az1 is served by host zone-a"),
        "{message}"
    );
    assert_eq!(t.app.store.fleet_hosts().await.unwrap(), stored);
    assert_eq!(host_events(&t).await.len(), 1);
    // The host serving it may change its own place.
    let (status, answer) = put(
        &ada,
        "zone-a",
        json!({"role": "zone", "address": "zone-a2.fleet.test", "zone": "az1",
               "data_root": "/x"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn customers_see_nothing_and_staff_only_read(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let (status, _) = put(&ada, "r1", restore_host("r1", 2)).await;
    assert_eq!(status, StatusCode::OK);
    let before = t.app.store.fleet_hosts().await.unwrap();

    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let sam = Api::signed_in(&t.base, "sam@support.example").await;
    let (status, body) = alice.get("/api/v1/hosts").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = sam.get("/api/v1/hosts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hosts"][0]["name"], "r1");
    for api in [&alice, &sam] {
        let (status, body) = put(api, "r1", restore_host("r1", 9)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = put(api, "r2", restore_host("r2", 1)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = delete(api, "r1").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, _) = Api::new(&t.base).get("/api/v1/hosts").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.app.store.fleet_hosts().await.unwrap(), before);
    assert_eq!(host_events(&t).await.len(), 1);

    // The page is the admins'.
    for email in ["alice@contoso.example", "sam@support.example"] {
        let mut browser = t.browser();
        browser.sign_in(email).await;
        assert_eq!(
            browser.get("/admin/hosts").await.status(),
            StatusCode::FORBIDDEN
        );
        let refused = browser.post("/admin/hosts/r1/remove", &[]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(t.app.store.fleet_hosts().await.unwrap(), before);
}

async fn a_host_with_an_unfinished_restore_is_kept(postgres: bool) {
    let t = spawn_app(postgres, &["--host", "r1"]).await;
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let (status, _) = put(&ada, "r1", restore_host("r1", 2)).await;
    assert_eq!(status, StatusCode::OK);

    // A restore approved the usual way, taken up by a worker of r1 that
    // holds it still.
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let ticket = t.file_request(&alice, "orders-prod", "orders-on-r1").await;
    t.staff_acts(&ticket, &[("claim", json!({})), ("approve", json!({}))])
        .await;
    let placement = t.app.settings.placement();
    let job = t
        .app
        .store
        .claim_job("r1-worker", &placement, t.app.now(), Duration::minutes(5))
        .await
        .unwrap()
        .expect("the approved restore is taken up");
    assert_eq!(job.host.as_deref(), Some("r1"));

    let (status, body) = delete(&ada, "r1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "name", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("1 unfinished restore"), "{message}");
    assert_eq!(named(&listed(&ada).await, "r1")["restores_running"], 1);

    // The page says the same on the host's row, and keeps the host.
    let mut browser = t.browser();
    browser.sign_in("ada@admin.example").await;
    browser.page("/admin/hosts").await;
    let refused = browser.post("/admin/hosts/r1/remove", &[]).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(page.contains("id=\"remove-error-r1\""), "{page}");
    assert!(page.contains("1 unfinished restore placed on it"), "{page}");
    assert_eq!(t.app.store.fleet_hosts().await.unwrap().len(), 1);
    assert!(
        host_events(&t)
            .await
            .iter()
            .all(|e| e.action == EventAction::HostPut)
    );

    // Once the worker's hold ran out, r1 finishes the restore; then it may go.
    t.clock.advance(Duration::minutes(10));
    restore_desk::engine::drain(&t.app).await.unwrap();
    let (_, ticket) = alice.get(&format!("/api/v1/tickets/{ticket}")).await;
    assert_eq!(ticket["state"], "completed", "{ticket}");
    assert_eq!(named(&listed(&ada).await, "r1")["restores_running"], 0);
    let (status, body) = delete(&ada, "r1").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

async fn the_admin_page_lists_hosts_and_keeps_a_refused_form(postgres: bool) {
    let t = spawn_app(
        postgres,
        &["--host", "r1", "--sandbox-host-disk-gib", "512"],
    )
    .await;
    let mut ada = t.browser();
    ada.sign_in("ada@admin.example").await;
    let page = ada.page("/admin/hosts").await;
    assert!(page.contains("href=\"/admin/hosts\" aria-current=\"page\""));

    // Added through the form, as an admin types it.
    let stored = ada
        .post(
            "/admin/hosts",
            &[
                ("name", "r1"),
                ("role", "restore"),
                ("address", "r1.fleet.test"),
                ("zone", ""),
                ("data_root", "/srv/restores"),
                ("max_restores", "3"),
                ("tls_port", "8432"),
            ],
        )
        .await;
    let page = ada.follow(stored).await;
    assert!(page.contains("Host r1 is stored"), "{page}");
    let (status, _) = Api::signed_in(&t.base, "ada@admin.example")
        .await
        .send(Method::PUT, "/api/v1/hosts/az1", Some(zone_host("az1")))
        .await;
    assert_eq!(status, StatusCode::OK);

    // r1's worker reports; another host reported long ago and nobody
    // listed it.
    restore_desk::engine::hosts::beat(&t.app, "w")
        .await
        .unwrap();
    t.app
        .store
        .host_heartbeat(&restore_desk::store::HostHeartbeat {
            host: "old-box".into(),
            worker: "gone".into(),
            seen_at: t.app.now() - Duration::hours(2),
            free_bytes: Some(5 * 1024 * 1024 * 1024),
            max_restores: 1,
        })
        .await
        .unwrap();
    let page = ada.page("/admin/hosts").await;
    let row = |name: &str| {
        let start = page
            .find(&format!("<tr id=\"host-{name}\">"))
            .unwrap_or_else(|| panic!("no row for {name}: {page}"));
        let end = start + page[start..].find("</tr>").unwrap();
        page[start..end].to_string()
    };
    let r1 = row("r1");
    assert!(r1.contains(">alive</span>"), "{r1}");
    assert!(r1.contains("512.0 GB free"), "{r1}");
    assert!(r1.contains("3 at once"), "{r1}");
    // In ada's zone, UTC a tap away.
    assert!(
        r1.contains("<time datetime=\"2026-11-25T12:00:00Z\""),
        "{r1}"
    );
    assert!(r1.contains("title=\"2026-11-25 12:00:00 UTC\""), "{r1}");
    let az1 = row("az1");
    assert!(az1.contains(">not heard from</span>"), "{az1}");
    assert!(az1.contains("az1.fleet.test"), "{az1}");
    let old = row("old-box");
    assert!(old.contains(">lost</span>"), "{old}");
    assert!(old.contains("not configured"), "{old}");
    assert!(old.contains("5.0 GB free"), "{old}");
    assert!(!old.contains("/admin/hosts/old-box/remove"), "{old}");

    // A refusal is shown beside its field, with what was typed kept.
    let refused = ada
        .post(
            "/admin/hosts",
            &[
                ("name", "r2"),
                ("role", "restore"),
                ("address", "10.0.0.9"),
                ("zone", ""),
                ("data_root", "/srv/r2"),
                ("max_restores", "2"),
                ("tls_port", "8433"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("id=\"h-address-error\" role=\"alert\"><p>The address must be a DNS name"),
        "{page}"
    );
    assert!(
        page.contains("aria-describedby=\"h-address-error\""),
        "{page}"
    );
    for kept in [
        "name=\"name\" value=\"r2\"",
        "name=\"address\" value=\"10.0.0.9\"",
        "name=\"data_root\" value=\"/srv/r2\"",
        "value=\"2\"",
        "value=\"8433\"",
        "<option value=\"restore\" selected>",
    ] {
        assert!(page.contains(kept), "{kept} not kept: {page}");
    }
    // A second host for az1: refused beside the zone, naming az1's host.
    let refused = ada
        .post(
            "/admin/hosts",
            &[
                ("name", "az1b"),
                ("role", "zone"),
                ("address", "az1b.fleet.test"),
                ("zone", "az1"),
                ("data_root", "/x"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(page.contains("id=\"h-zone-error\""), "{page}");
    assert!(
        page.contains("Zone az1 is served by host az1 already"),
        "{page}"
    );
    assert!(page.contains("<option value=\"az1\" selected>"), "{page}");
    // Text is escaped, never markup.
    let refused = ada
        .post(
            "/admin/hosts",
            &[
                ("name", "<b>x</b>"),
                ("role", "source"),
                ("address", "s.fleet.test"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("value=\"&#60;b&#62;x&#60;/b&#62;\"")
            || page.contains("value=\"&lt;b&gt;x&lt;/b&gt;\""),
        "{page}"
    );
    assert!(!page.contains("<b>x</b>"));
    let mut hosts: Vec<String> = t
        .app
        .store
        .fleet_hosts()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.name)
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["az1", "r1"]);

    // Without the form's token nothing is stored or removed.
    for token in [None, Some("0123456789abcdef")] {
        let mut fields = vec![
            ("name", "r9"),
            ("role", "restore"),
            ("address", "r9.fleet.test"),
            ("data_root", "/srv"),
        ];
        fields.extend(token.map(|t| ("csrf", t)));
        let response = ada.post_raw("/admin/hosts", &fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let response = ada
            .post_raw("/admin/hosts/az1/remove", &fields[fields.len() - 1..])
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(t.app.store.fleet_hosts().await.unwrap().len(), 2);

    // Changed through the form the row's link fills, then removed.
    let page = ada.page("/admin/hosts?edit=az1").await;
    assert!(
        page.contains("name=\"address\" value=\"az1.fleet.test\""),
        "{page}"
    );
    assert!(page.contains("<option value=\"zone\" selected>"), "{page}");
    let removed = ada.post("/admin/hosts/az1/remove", &[]).await;
    let page = ada.follow(removed).await;
    assert!(page.contains("Host az1 is removed"), "{page}");
    assert!(!page.contains("<tr id=\"host-az1\">"));
    let missing = ada.post("/admin/hosts/az1/remove", &[]).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let actions: Vec<EventAction> = host_events(&t).await.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            EventAction::HostPut,
            EventAction::HostPut,
            EventAction::HostRemove
        ]
    );
}

/// The register form of the admin clusters page: only admins, only with
/// the form's token, shown once a source host is listed; a refusal keeps
/// what was typed, says why beside the field, and stores nothing.
async fn the_clusters_page_registers_only_for_admins_and_stores_nothing_refused(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let mut ada = t.browser();
    ada.sign_in("ada@admin.example").await;
    let page = ada.page("/admin/clusters").await;
    assert!(
        !page.contains("id=\"register-form\""),
        "no source host, no form"
    );
    assert!(
        page.contains("once the fleet lists a source host"),
        "{page}"
    );
    let api = Api::signed_in(&t.base, "ada@admin.example").await;
    let (status, _) = put(
        &api,
        "src",
        json!({"role": "source", "address": "src.fleet.test"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let page = ada.page("/admin/clusters").await;
    assert!(page.contains("id=\"register-form\""), "{page}");
    assert!(
        page.contains("<option value=\"src\""),
        "the source host is offered"
    );
    let before = t
        .app
        .store
        .clusters(restore_desk::store::Scope::Everything, true)
        .await
        .unwrap();
    let fields = [
        ("name", "orders-adopted"),
        ("subscription", "contoso"),
        ("resource_group", "rg-prod"),
        ("host", "src"),
        ("port", "5432"),
        ("stanza", "orders"),
        ("data_directory", "/srv/pg/orders"),
        ("database", "postgres"),
        ("user", "postgres"),
        ("tier", "GeneralPurpose"),
        ("vcores", "two"),
        ("storage_gib", "32"),
        ("node_count", "1"),
        ("server_version", "15"),
    ];
    // A number that is not one, beside its field, the rest kept.
    let refused = ada.post("/admin/clusters", &fields).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(page.contains("id=\"r-vcores-error\""), "{page}");
    assert!(
        page.contains("value=\"orders-adopted\""),
        "what was typed is kept"
    );
    // The simulated fleet adopts nothing from outside: said beside the host.
    let mut good = fields;
    good[10] = ("vcores", "2");
    let refused = ada.post("/admin/clusters", &good).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(page.contains("id=\"r-host-error\""), "{page}");
    assert!(page.contains("BACKEND=pgbackrest"), "{page}");
    // No token, or not an admin: refused before anything is read.
    let forged = ada.post_raw("/admin/clusters", &good).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    for email in ["alice@contoso.example", "sam@support.example"] {
        let mut browser = t.browser();
        browser.sign_in(email).await;
        let response = browser.post("/admin/clusters", &good).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{email}");
    }
    let after = t
        .app
        .store
        .clusters(restore_desk::store::Scope::Everything, true)
        .await
        .unwrap();
    assert_eq!(after.len(), before.len(), "nothing was stored");
}

// ------------------------------------------------------------ the binary

const BIN: &str = env!("CARGO_BIN_EXE_restore-desk");

const FLEET: &str = r#"
[[host]]
name = "az1"
role = "zone"
address = "az1.fleet.test"
zone = "az1"
data_root = "/var/lib/rd"

[[host]]
name = "az2"
role = "zone"
address = "az2.fleet.test"
zone = "az2"
data_root = "/var/lib/rd"

[[host]]
name = "az3"
role = "zone"
address = "az3.fleet.test"
zone = "az3"
data_root = "/var/lib/rd"
tls_port = 9432

[[host]]
name = "r1"
role = "restore"
address = "r1.fleet.test"
data_root = "/srv/restores"
max_restores = 3

[[host]]
name = "r2"
role = "restore"
address = "r2.fleet.test"
data_root = "/srv/restores"
max_restores = 2

[[host]]
name = "src"
role = "source"
address = "src.fleet.test"
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `restore-desk serve` on `db` with `FLEET_CONFIG` set to `fleet`.
fn serve(db: &TestDb, dir: &std::path::Path, fleet: &std::path::Path, port: u16) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("MAIL_DIR", dir.join("mail"))
        .env("DRILL_INTERVAL_HOURS", "0")
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("FLEET_CONFIG", fleet)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Kills the server when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn serves_until_healthy(mut command: Command, port: u16) {
    let _running = Running(command.spawn().unwrap());
    let deadline = Instant::now() + StdDuration::from_secs(60);
    loop {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
            assert_eq!(response.status(), StatusCode::OK);
            return;
        }
        assert!(Instant::now() < deadline, "the desk did not come up");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

fn one_line_failure(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "should fail: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("error: FLEET_CONFIG "), "{stderr}");
    lines[0].to_string()
}

async fn a_fleet_description_is_read_at_start(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(&fleet, FLEET).unwrap();
    let port = free_port();
    serves_until_healthy(serve(&db, dir.path(), &fleet, port), port).await;

    let store = db.store().await;
    let hosts = store.fleet_hosts().await.unwrap();
    let mut names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["az1", "az2", "az3", "r1", "r2", "src"]);
    let az3 = hosts.iter().find(|h| h.name == "az3").unwrap();
    assert_eq!(az3.tls_port, 9432);
    let events: Vec<Event> = store
        .audit_log(None, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == EventAction::HostPut)
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].actor_id, None);
    assert!(events[0].detail.contains(&fleet.display().to_string()));
    assert!(
        events[0]
            .detail
            .contains("added az1, az2, az3, r1, r2, src"),
        "{}",
        events[0].detail
    );

    // A host added by an admin stays when the desk starts again with the
    // same description, which changes nothing and records nothing; a
    // changed one replaces its host.
    let extra = FleetHost {
        name: "r3".into(),
        role: HostRole::Restore,
        address: "r3.fleet.test".into(),
        zone: None,
        data_root: Some("/srv".into()),
        max_restores: Some(1),
        tls_port: 8432,
    };
    store
        .put_fleet_host(&extra, chrono::Utc::now())
        .await
        .unwrap();
    let port = free_port();
    serves_until_healthy(serve(&db, dir.path(), &fleet, port), port).await;
    assert_eq!(store.fleet_hosts().await.unwrap().len(), 7);
    let count_puts = async || {
        store
            .audit_log(None, 50)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == EventAction::HostPut)
            .count()
    };
    assert_eq!(count_puts().await, 1);
    std::fs::write(
        &fleet,
        FLEET.replace("max_restores = 3", "max_restores = 4"),
    )
    .unwrap();
    let port = free_port();
    serves_until_healthy(serve(&db, dir.path(), &fleet, port), port).await;
    let r1 = store
        .fleet_hosts()
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.name == "r1")
        .unwrap();
    assert_eq!(r1.max_restores, Some(4));
    assert_eq!(count_puts().await, 2);
}

async fn a_wrong_fleet_description_stops_the_start(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.toml");
    let path = fleet.display().to_string();

    // An IP address where a DNS name belongs.
    std::fs::write(
        &fleet,
        FLEET.replace("address = \"az2.fleet.test\"", "address = \"10.0.0.2\""),
    )
    .unwrap();
    let output = serve(&db, dir.path(), &fleet, free_port())
        .output()
        .unwrap();
    let line = one_line_failure(&output);
    assert!(line.contains(&path), "{line}");
    assert!(line.contains("host \"az2\", address:"), "{line}");

    // A role nobody knows, and a field nobody knows.
    std::fs::write(
        &fleet,
        FLEET.replace("role = \"source\"", "role = \"printer\""),
    )
    .unwrap();
    let output = serve(&db, dir.path(), &fleet, free_port())
        .output()
        .unwrap();
    let line = one_line_failure(&output);
    assert!(
        line.contains("host \"src\", role: unknown host role"),
        "{line}"
    );
    std::fs::write(&fleet, FLEET.replace("tls_port = 9432", "tls_prot = 9432")).unwrap();
    let output = serve(&db, dir.path(), &fleet, free_port())
        .output()
        .unwrap();
    let line = one_line_failure(&output);
    assert!(line.contains("host \"az3\", tls_prot:"), "{line}");

    // A file that is not there.
    let output = serve(
        &db,
        dir.path(),
        &dir.path().join("nowhere.toml"),
        free_port(),
    )
    .output()
    .unwrap();
    let line = one_line_failure(&output);
    assert!(
        line.contains("nowhere.toml: the fleet description cannot be read: "),
        "{line}"
    );

    // Nothing was stored by any of them.
    let store = db.store().await;
    assert!(store.fleet_hosts().await.unwrap().is_empty());

    // A zone that a host the description does not name serves already.
    let elsewhere = FleetHost {
        name: "old-az1".into(),
        role: HostRole::Zone,
        address: "old.fleet.test".into(),
        zone: Some(restore_desk::domain::catalog::Zone::Az1),
        data_root: Some("/x".into()),
        max_restores: None,
        tls_port: 8432,
    };
    store
        .put_fleet_host(&elsewhere, chrono::Utc::now())
        .await
        .unwrap();
    std::fs::write(&fleet, FLEET).unwrap();
    let output = serve(&db, dir.path(), &fleet, free_port())
        .output()
        .unwrap();
    let line = one_line_failure(&output);
    assert!(
        line.contains("host \"az1\", zone: zone az1 is served by host old-az1"),
        "{line}"
    );
    assert_eq!(store.fleet_hosts().await.unwrap(), vec![elsewhere]);
}

crate::both_databases!(
    the_api_puts_lists_replaces_and_removes_hosts,
    bad_hosts_are_refused_by_field_and_store_nothing,
    customers_see_nothing_and_staff_only_read,
    a_host_with_an_unfinished_restore_is_kept,
    the_admin_page_lists_hosts_and_keeps_a_refused_form,
    the_clusters_page_registers_only_for_admins_and_stores_nothing_refused,
    a_fleet_description_is_read_at_start,
    a_wrong_fleet_description_stops_the_start,
);
