//! Who may do what: anonymous, customer A (alice, contoso), customer B (bob,
//! fabrikam), staff (sam) and admin (ada) against every page and API route.
//! Another subscription's things answer 404 and leak nothing; customers get
//! 403 on staff actions; a refused call never changes a ticket.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::web::{Api, Browser, TestApp, spawn_app};
use restore_desk::store::{Email, Scope, Ticket};

const ACTORS: [&str; 5] = ["anonymous", "alice", "bob", "sam", "ada"];
const EMAILS: [Option<&str>; 5] = [
    None,
    Some("alice@contoso.example"),
    Some("bob@fabrikam.example"),
    Some("sam@support.example"),
    Some("ada@admin.example"),
];
/// Written into alice's ticket: it must never show up where she is refused.
const SECRET: &str = "contoso-private-description-7f3a";

/// Expected status per actor, in `ACTORS` order; 0 skips that actor.
type Expect = [u16; 5];
/// A form post: path, fields, expected statuses.
type FormCase<'a> = (String, Vec<(&'a str, &'a str)>, Expect);

struct World {
    /// alice's ticket (contoso), in triage.
    ticket_a: Ticket,
    /// bob's ticket (fabrikam).
    ticket_b: Ticket,
    /// A contoso ticket approved by sam, with its job.
    job_id: String,
    cluster_a: String,
    cluster_b: String,
    sam_id: String,
    /// alice's webhook (contoso).
    endpoint_a: String,
}

async fn world(t: &TestApp) -> World {
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let bob = Api::signed_in(&t.base, "bob@fabrikam.example").await;
    let sam = Api::signed_in(&t.base, "sam@support.example").await;
    let cluster_a = t.cluster_id("orders-prod").await.to_string();
    let cluster_b = t.cluster_id("inventory").await.to_string();
    let file = |cluster: &str, name: &str, description: &str| {
        json!({"cluster_id": cluster, "target_time": "2026-11-24T10:00:00Z",
               "new_cluster_name": name, "severity": "B", "description": description})
    };
    let (status, a) = alice
        .post(
            "/api/v1/tickets",
            file(&cluster_a, "secret-restore-a", SECRET),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let (status, b) = bob
        .post(
            "/api/v1/tickets",
            file(&cluster_b, "inventory-copy", "bob's"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let (_, j) = alice
        .post(
            "/api/v1/tickets",
            file(&cluster_a, "orders-approved", "approved one"),
        )
        .await;
    let j_id = j["id"].as_str().unwrap();
    sam.post(&format!("/api/v1/tickets/{j_id}/claim"), json!({}))
        .await;
    let (status, approved) = sam
        .post(&format!("/api/v1/tickets/{j_id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    let (_, me) = sam.get("/api/v1/me").await;
    let (status, endpoint) = alice
        .post(
            "/api/v1/endpoints",
            json!({"kind": "webhook", "url": "https://93.184.216.34/hook", "events": ["job.failed"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let ticket = |v: &Value| uuid::Uuid::parse_str(v["id"].as_str().unwrap()).unwrap();
    World {
        ticket_a: t
            .app
            .store
            .ticket(ticket(&a).into(), Scope::Everything)
            .await
            .unwrap()
            .unwrap(),
        ticket_b: t
            .app
            .store
            .ticket(ticket(&b).into(), Scope::Everything)
            .await
            .unwrap()
            .unwrap(),
        job_id: approved["job"]["id"].as_str().unwrap().to_string(),
        cluster_a,
        cluster_b,
        sam_id: me["id"].as_str().unwrap().to_string(),
        endpoint_a: endpoint["endpoint"]["id"].as_str().unwrap().to_string(),
    }
}

async fn unchanged(t: &TestApp, before: &Ticket, what: &str) {
    let now = t
        .app
        .store
        .ticket(before.id, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&now, before, "{what} changed the ticket");
}

/// No restore test was started and the cluster's test settings are the
/// desk's: what refused callers asked for did not happen.
async fn untested(t: &TestApp, cluster: &str) {
    assert!(t.app.store.drills(None, 10).await.unwrap().is_empty());
    let id = uuid::Uuid::parse_str(cluster).unwrap().into();
    assert_eq!(
        t.app.store.drill_settings(id).await.unwrap(),
        Default::default()
    );
}

fn refused(status: u16) -> bool {
    matches!(status, 303 | 401 | 403 | 404)
}

async fn role_route_matrix(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let w = world(&t).await;
    let (a, b, job) = (w.ticket_a.id, w.ticket_b.id, &w.job_id);
    let ea = &w.endpoint_a;
    let (ca, cb) = (&w.cluster_a, &w.cluster_b);

    // ------------------------------------------------------------ pages
    let mut browsers: Vec<Browser> = Vec::new();
    for email in EMAILS {
        let mut browser = t.browser();
        match email {
            Some(email) => browser.sign_in(email).await,
            None => {
                browser.page("/login").await;
            }
        }
        browsers.push(browser);
    }
    let preview = format!(
        "/requests/preview?cluster_id={ca}&date=2026-11-24&time=10:00&time_zone=UTC&new_cluster_name=abc"
    );
    let page_gets: Vec<(String, Expect)> = vec![
        ("/".into(), [303, 303, 303, 303, 303]),
        ("/clusters".into(), [303, 200, 200, 403, 403]),
        (format!("/clusters/{ca}"), [303, 200, 404, 403, 403]),
        (format!("/clusters/{cb}"), [303, 404, 200, 403, 403]),
        ("/support".into(), [303, 200, 200, 403, 403]),
        ("/support/new".into(), [303, 200, 200, 403, 403]),
        (
            format!("/requests/new?cluster={ca}"),
            [303, 200, 200, 403, 403],
        ),
        (preview.clone(), [303, 200, 200, 403, 403]),
        ("/tickets".into(), [303, 200, 200, 403, 403]),
        // The queue's search reaches descriptions and notes: staff only.
        (format!("/tickets?q={SECRET}"), [303, 200, 200, 403, 403]),
        (
            format!("/staff/tickets?state=all&response=breached&q={SECRET}"),
            [303, 403, 403, 200, 200],
        ),
        ("/account/password".into(), [303, 200, 200, 200, 200]),
        // What happened on a cluster: its customer and staff, never another
        // subscription.
        (
            format!("/clusters/{ca}/transactions"),
            [303, 200, 404, 200, 200],
        ),
        (
            format!("/clusters/{cb}/transactions"),
            [303, 404, 200, 200, 200],
        ),
        (format!("/tickets/{a}"), [303, 200, 404, 303, 303]),
        (format!("/tickets/{b}"), [303, 404, 200, 303, 303]),
        (format!("/tickets/{a}/progress"), [303, 200, 404, 200, 200]),
        ("/staff/tickets".into(), [303, 403, 403, 200, 200]),
        (format!("/staff/tickets/{a}"), [303, 403, 403, 200, 200]),
        // Restore tests: staff and admins.
        ("/staff/drills".into(), [303, 403, 403, 200, 200]),
        ("/admin/users".into(), [303, 403, 403, 403, 200]),
        ("/admin/clusters".into(), [303, 403, 403, 403, 200]),
        ("/admin/zones".into(), [303, 403, 403, 403, 200]),
        ("/admin/hosts".into(), [303, 403, 403, 403, 200]),
        ("/admin/hosts?edit=nobody".into(), [303, 403, 403, 403, 404]),
        ("/admin/outbox".into(), [303, 403, 403, 403, 200]),
        ("/admin/audit".into(), [303, 403, 403, 403, 200]),
        ("/account/endpoints".into(), [303, 200, 200, 403, 403]),
        (
            format!("/account/endpoints/{ea}"),
            [303, 200, 404, 403, 403],
        ),
        ("/admin/endpoints".into(), [303, 403, 403, 403, 200]),
        ("/admin/ratings".into(), [303, 403, 403, 403, 200]),
        (format!("/admin/endpoints/{ea}"), [303, 403, 403, 403, 404]),
        ("/no/such/page".into(), [404, 404, 404, 404, 404]),
    ];
    for (path, expect) in &page_gets {
        for (i, browser) in browsers.iter_mut().enumerate() {
            let response = browser.get(path).await;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string());
            let body = response.text().await.unwrap();
            assert_eq!(status, expect[i], "{} GET {path}: {body}", ACTORS[i]);
            if status == 303 && i == 0 {
                assert!(
                    location.as_deref().unwrap_or("").starts_with("/login"),
                    "anonymous is sent to sign in from {path}"
                );
            }
            if refused(status) && path.contains(&a.to_string()) {
                assert!(!body.contains(SECRET), "{} saw alice's ticket", ACTORS[i]);
            }
        }
    }

    // The live check names open requests of the cluster only to its own
    // customer: bob checking alice's cluster learns nothing of hers.
    let of_alice: Value = browsers[1].get(&preview).await.json().await.unwrap();
    assert_eq!(
        of_alice["duplicates"][0]["new_cluster_name"],
        "orders-approved"
    );
    let of_bob: Value = browsers[2].get(&preview).await.json().await.unwrap();
    assert_eq!(of_bob["duplicates"], json!([]), "{of_bob}");
    assert!(of_bob["duplicates_text"].is_null(), "{of_bob}");

    // Refused page actions: the ticket stays as it was.
    let page_posts: Vec<FormCase> = vec![
        (
            format!("/tickets/{a}/reply"),
            vec![("body", "hi")],
            [303, 0, 404, 403, 403],
        ),
        (
            format!("/tickets/{a}/cancel"),
            vec![],
            [303, 0, 404, 403, 403],
        ),
        (
            format!("/staff/tickets/{a}/claim"),
            vec![],
            [303, 403, 403, 0, 0],
        ),
        (
            format!("/staff/tickets/{a}/approve"),
            vec![],
            [303, 403, 403, 0, 0],
        ),
        (
            format!("/staff/tickets/{a}/reject"),
            vec![("reason", "no")],
            [303, 403, 403, 0, 0],
        ),
        (
            format!("/staff/tickets/{a}/request-info"),
            vec![("body", "?")],
            [303, 403, 403, 0, 0],
        ),
        (
            format!("/staff/tickets/{a}/note"),
            vec![("body", "n")],
            [303, 403, 403, 0, 0],
        ),
        (
            format!("/staff/tickets/{a}/retry"),
            vec![],
            [303, 403, 403, 0, 0],
        ),
        (
            format!("/staff/tickets/{a}/cancel-restore"),
            vec![("reason", "r")],
            [303, 403, 403, 0, 0],
        ),
        (
            format!("/staff/tickets/{a}/frobnicate"),
            vec![],
            [303, 403, 403, 404, 404],
        ),
        (
            "/requests".into(),
            vec![
                ("cluster_id", ca.as_str()),
                ("date", "2026-11-24"),
                ("time", "10:00"),
                ("time_zone", "UTC"),
                ("new_cluster_name", "staff-filed"),
                ("severity", "A"),
            ],
            [303, 0, 0, 403, 403],
        ),
        (
            "/admin/users".into(),
            vec![
                ("email", "x@y.example"),
                ("role", "admin"),
                ("password", "long enough passphrase"),
            ],
            [303, 403, 403, 403, 0],
        ),
        (
            format!("/admin/users/{}", w.sam_id),
            vec![("state", "disable")],
            [303, 403, 403, 403, 0],
        ),
        (
            format!("/admin/users/{}", w.sam_id),
            vec![("password", "a reset nobody may do")],
            [303, 403, 403, 403, 0],
        ),
        // A wrong current password changes nobody's.
        (
            "/account/password".into(),
            vec![
                ("current", "not the password"),
                ("password", "a long new passphrase"),
                ("repeat", "a long new passphrase"),
            ],
            [303, 422, 422, 422, 422],
        ),
        (
            "/admin/zones/westeurope/az1/online".into(),
            vec![],
            [303, 403, 403, 403, 0],
        ),
        (
            "/admin/faults".into(),
            vec![
                ("kind", "fail_step"),
                ("step", "provisioning"),
                ("times", "1"),
            ],
            [303, 403, 403, 403, 0],
        ),
        (
            "/admin/faults/clear".into(),
            vec![],
            [303, 403, 403, 403, 0],
        ),
        // The fleet's hosts: admins only.
        (
            "/admin/hosts".into(),
            vec![
                ("name", "r9"),
                ("role", "restore"),
                ("address", "r9.fleet.test"),
                ("data_root", "/srv"),
            ],
            [303, 403, 403, 403, 0],
        ),
        (
            "/admin/hosts/r9/remove".into(),
            vec![],
            [303, 403, 403, 403, 0],
        ),
        (
            format!("/admin/clusters/{ca}/delete"),
            vec![],
            [303, 403, 403, 403, 0],
        ),
        // Starting a restore test and setting how a cluster is tested:
        // admins only.
        (
            format!("/staff/drills/{ca}/start"),
            vec![],
            [303, 403, 403, 403, 0],
        ),
        (
            format!("/admin/clusters/{ca}/drill-settings"),
            vec![("interval_hours", "1"), ("canary", "SELECT true")],
            [303, 403, 403, 403, 0],
        ),
        (
            format!("/tickets/{a}/target"),
            vec![
                ("date", "2026-11-24"),
                ("time", "09:00"),
                ("time_zone", "UTC"),
                ("reason", "earlier"),
            ],
            [303, 0, 404, 403, 403],
        ),
        (
            format!("/staff/tickets/{a}/target"),
            vec![
                ("date", "2026-11-24"),
                ("time", "09:00"),
                ("time_zone", "UTC"),
                ("reason", "earlier"),
            ],
            [303, 403, 403, 0, 0],
        ),
    ];
    for (path, fields, expect) in &page_posts {
        for (i, browser) in browsers.iter_mut().enumerate() {
            if expect[i] == 0 {
                continue;
            }
            let version = w.ticket_a.version.to_string();
            let mut all = fields.clone();
            all.push(("version", &version));
            let response = browser.post(path, &all).await;
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            assert_eq!(status, expect[i], "{} POST {path}: {body}", ACTORS[i]);
            assert!(!body.contains(SECRET), "{} POST {path} leaked", ACTORS[i]);
            unchanged(&t, &w.ticket_a, &format!("{} POST {path}", ACTORS[i])).await;
        }
    }
    // Nothing an unauthorised person posted landed anywhere.
    assert!(
        t.app
            .store
            .user_by_email(&Email::parse("x@y.example").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let zones = t.app.store.zones().await.unwrap();
    assert!(
        zones.iter().any(|z| !z.online),
        "az1 is still offline after refused calls"
    );
    assert!(t.app.sandbox.faults().await.unwrap().is_empty());
    assert!(t.app.store.fleet_hosts().await.unwrap().is_empty());
    untested(&t, ca).await;

    // ------------------------------------------------------------ API
    let mut apis = Vec::new();
    for email in EMAILS {
        apis.push(match email {
            Some(email) => Api::signed_in(&t.base, email).await,
            None => Api::new(&t.base),
        });
    }
    let api_reads: Vec<(String, Expect)> = vec![
        ("/api/v1/me".into(), [401, 200, 200, 200, 200]),
        ("/api/v1/clusters".into(), [401, 200, 200, 200, 200]),
        (format!("/api/v1/clusters/{ca}"), [401, 200, 404, 200, 200]),
        (format!("/api/v1/clusters/{cb}"), [401, 404, 200, 200, 200]),
        (
            format!("/api/v1/clusters/{ca}/transactions"),
            [401, 200, 404, 200, 200],
        ),
        ("/api/v1/tickets".into(), [401, 200, 200, 200, 200]),
        (
            format!("/api/v1/tickets?state=all&response=breached&q={SECRET}"),
            [401, 200, 200, 200, 200],
        ),
        // The clock filter is the queue's: a customer's list ignores it.
        (
            "/api/v1/tickets?response=late".into(),
            [401, 200, 200, 422, 422],
        ),
        (format!("/api/v1/tickets/{a}"), [401, 200, 404, 200, 200]),
        (format!("/api/v1/tickets/{b}"), [401, 404, 200, 200, 200]),
        (
            format!("/api/v1/tickets/{a}/events"),
            [401, 200, 404, 200, 200],
        ),
        (
            format!("/api/v1/tickets/{a}/messages"),
            [401, 200, 404, 200, 200],
        ),
        (format!("/api/v1/jobs/{job}"), [401, 200, 404, 200, 200]),
        ("/api/v1/zones".into(), [401, 200, 200, 200, 200]),
        // The fleet's hosts: staff and admins.
        ("/api/v1/hosts".into(), [401, 403, 403, 200, 200]),
        ("/api/v1/users".into(), [401, 403, 403, 403, 200]),
        ("/api/v1/faults".into(), [401, 403, 403, 403, 200]),
        ("/api/v1/outbox".into(), [401, 403, 403, 403, 200]),
        ("/api/v1/audit".into(), [401, 403, 403, 403, 200]),
        ("/api/v1/endpoints".into(), [401, 200, 200, 403, 200]),
        ("/api/v1/ratings".into(), [401, 403, 403, 403, 200]),
        ("/api/v1/handovers".into(), [401, 403, 403, 200, 200]),
        ("/api/v1/drills".into(), [401, 403, 403, 200, 200]),
        (
            format!("/api/v1/drills?cluster_id={ca}"),
            [401, 403, 403, 200, 200],
        ),
        (
            format!("/api/v1/clusters/{ca}/drill-settings"),
            [401, 403, 403, 403, 200],
        ),
        (format!("/api/v1/endpoints/{ea}"), [401, 200, 404, 403, 404]),
        // No verdict on a ticket in triage; bob cannot see it at all.
        (
            format!("/api/v1/tickets/{a}/verdict"),
            [401, 404, 404, 404, 404],
        ),
        (
            format!("/api/v1/endpoints/{ea}/deliveries"),
            [401, 200, 404, 403, 404],
        ),
        ("/api/v1/openapi.json".into(), [200, 200, 200, 200, 200]),
        ("/api/v1/nothing-here".into(), [404, 404, 404, 404, 404]),
    ];
    for (path, expect) in &api_reads {
        for (i, api) in apis.iter().enumerate() {
            let (status, body) = api.get(path).await;
            assert_eq!(
                status.as_u16(),
                expect[i],
                "{} GET {path}: {body}",
                ACTORS[i]
            );
            if status.as_u16() >= 400 {
                assert!(body["error"]["code"].is_string(), "error shape: {body}");
                assert!(!body.to_string().contains(SECRET));
            }
        }
    }
    // Customers see only their own subscription in lists.
    let (_, alice_tickets) = apis[1].get("/api/v1/tickets").await;
    assert!(!alice_tickets.to_string().contains("inventory-copy"));
    let (_, bob_tickets) = apis[2].get("/api/v1/tickets").await;
    assert!(!bob_tickets.to_string().contains(SECRET));
    // A customer's list ignores the queue's search and stays their own;
    // staff find alice's ticket by the words of its description.
    let search = format!("/api/v1/tickets?state=all&q={SECRET}");
    let (_, bob_found) = apis[2].get(&search).await;
    assert!(!bob_found.to_string().contains(SECRET), "{bob_found}");
    let (_, sam_found) = apis[3].get(&search).await;
    assert_eq!(
        sam_found["tickets"][0]["id"],
        json!(a.to_string()),
        "{sam_found}"
    );
    let (_, bob_clusters) = apis[2].get("/api/v1/clusters").await;
    assert!(!bob_clusters.to_string().contains("orders-prod"));

    let api_writes: Vec<(Method, String, Value, Expect)> = vec![
        // No copy waits for a decision: the customer is told so, staff may
        // never decide for them.
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/accept"),
            json!({}),
            [401, 409, 404, 403, 403],
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/move-forward"),
            json!({"target_time": "2026-11-24T11:00:00Z"}),
            [401, 409, 404, 403, 403],
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/go-back"),
            json!({"target_time": "2026-11-24T09:00:00Z"}),
            [401, 409, 404, 403, 403],
        ),
        // A ticket in triage: nobody may move its target yet.
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/target"),
            json!({"target_time": "2026-11-24T09:00:00Z", "reason": "earlier"}),
            [401, 409, 404, 409, 409],
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/verdict"),
            json!({"data_right": true, "rating": 5}),
            [401, 409, 404, 403, 403],
        ),
        (
            Method::POST,
            format!("/api/v1/endpoints/{ea}/test"),
            json!({}),
            [401, 0, 404, 403, 404],
        ),
        (
            Method::POST,
            format!("/api/v1/endpoints/{ea}/rotate"),
            json!({}),
            [401, 0, 404, 403, 404],
        ),
        (
            Method::PATCH,
            format!("/api/v1/endpoints/{ea}"),
            json!({"enabled": false}),
            [401, 0, 404, 403, 404],
        ),
        (
            Method::DELETE,
            format!("/api/v1/endpoints/{ea}"),
            json!({}),
            [401, 0, 404, 403, 404],
        ),
        (
            Method::POST,
            "/api/v1/endpoints".into(),
            json!({"kind": "slack", "url": "https://93.184.216.34/chat", "events": ["ticket.filed"]}),
            [401, 422, 422, 403, 0],
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/claim"),
            json!({}),
            [401, 403, 404, 0, 0],
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/approve"),
            json!({}),
            [401, 403, 404, 409, 409],
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/reject"),
            json!({"reason": "no"}),
            [401, 403, 404, 409, 409],
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/request-info"),
            json!({"body": "?"}),
            [401, 403, 404, 409, 409],
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/note"),
            json!({"body": "n"}),
            [401, 403, 404, 0, 0],
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/retry"),
            json!({}),
            [401, 403, 404, 409, 409],
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/cancel-restore"),
            json!({"reason": "r"}),
            [401, 403, 404, 409, 409],
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/reply"),
            json!({"body": "x"}),
            [401, 0, 404, 0, 0],
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/cancel"),
            json!({}),
            [401, 0, 404, 403, 403],
        ),
        (
            Method::POST,
            format!("/api/v1/tickets/{a}/frobnicate"),
            json!({}),
            [401, 404, 404, 404, 404],
        ),
        (
            Method::POST,
            "/api/v1/tickets".into(),
            json!({"cluster_id": ca, "target_time": "2026-11-24T10:00:00Z",
                   "new_cluster_name": "by-staff", "severity": "A"}),
            [401, 0, 0, 403, 403],
        ),
        (
            Method::POST,
            "/api/v1/tickets".into(),
            json!({"cluster_id": ca, "target_time": "2026-11-24T10:00:00Z",
                   "new_cluster_name": "bob-into-contoso", "severity": "A"}),
            [401, 0, 422, 0, 0],
        ),
        (
            Method::POST,
            "/api/v1/zones/az1/online".into(),
            json!({}),
            [401, 403, 403, 403, 0],
        ),
        (
            Method::POST,
            "/api/v1/users".into(),
            json!({"email": "z@z.example", "role": "admin", "password": "long enough passphrase"}),
            [401, 403, 403, 403, 0],
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{}", w.sam_id),
            json!({"disabled": true}),
            [401, 403, 403, 403, 0],
        ),
        (
            Method::POST,
            "/api/v1/faults".into(),
            json!({"kind": "fail_step", "step": "verifying"}),
            [401, 403, 403, 403, 0],
        ),
        (
            Method::DELETE,
            "/api/v1/faults".into(),
            json!({}),
            [401, 403, 403, 403, 0],
        ),
        (
            Method::DELETE,
            format!("/api/v1/clusters/{ca}"),
            json!({}),
            [401, 403, 403, 403, 0],
        ),
        (
            Method::POST,
            format!("/api/v1/clusters/{ca}/drills"),
            json!({}),
            [401, 403, 403, 403, 0],
        ),
        (
            Method::PUT,
            format!("/api/v1/clusters/{ca}/drill-settings"),
            json!({"interval_hours": 1, "canary": "SELECT true"}),
            [401, 403, 403, 403, 0],
        ),
        // Putting and removing the fleet's hosts: admins only.
        (
            Method::PUT,
            "/api/v1/hosts/r9".into(),
            json!({"role": "restore", "address": "r9.fleet.test", "data_root": "/srv"}),
            [401, 403, 403, 403, 0],
        ),
        (
            Method::DELETE,
            "/api/v1/hosts/r9".into(),
            json!({}),
            [401, 403, 403, 403, 404],
        ),
        // Registering an existing cluster: admins only; the simulated
        // fleet has no zones to vouch for it, and nothing is stored.
        (
            Method::POST,
            "/api/v1/clusters".into(),
            json!({"name": "adopted", "subscription": "contoso", "resource_group": "rg-prod",
                   "host": "src", "port": 5432, "stanza": "adopted", "data_directory": "/srv/pg",
                   "database": "app", "user": "app", "tier": "GeneralPurpose", "vcores": 2,
                   "storage_gib": 32, "server_version": "15"}),
            [401, 403, 403, 403, 422],
        ),
    ];
    for (method, path, body, expect) in &api_writes {
        for (i, api) in apis.iter().enumerate() {
            if expect[i] == 0 {
                continue;
            }
            let (status, answer) = api.send(method.clone(), path, Some(body.clone())).await;
            assert_eq!(
                status.as_u16(),
                expect[i],
                "{} {method} {path}: {answer}",
                ACTORS[i]
            );
            assert!(answer["error"]["code"].is_string(), "error shape: {answer}");
            assert!(!answer.to_string().contains(SECRET));
            unchanged(&t, &w.ticket_a, &format!("{} {method} {path}", ACTORS[i])).await;
            unchanged(&t, &w.ticket_b, &format!("{} {method} {path}", ACTORS[i])).await;
        }
    }
    // Bob's request into contoso's cluster was refused as cluster_not_found.
    let (_, answer) = apis[2]
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": ca, "target_time": "2026-11-24T10:00:00Z",
                   "new_cluster_name": "bob-into-contoso", "severity": "A"}),
        )
        .await;
    assert_eq!(answer["error"]["code"], "cluster_not_found");
    assert!(
        t.app
            .store
            .user_by_email(&Email::parse("z@z.example").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(t.app.sandbox.faults().await.unwrap().is_empty());
    assert!(t.app.store.fleet_hosts().await.unwrap().is_empty());
    untested(&t, ca).await;
    assert_eq!(
        t.app
            .store
            .count_tickets(Scope::Everything, &[])
            .await
            .unwrap(),
        3
    );

    // Admins do everything staff do, and their actions are audited.
    let ada = &apis[4];
    let (status, _) = ada
        .post(&format!("/api/v1/tickets/{a}/claim"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ada.post("/api/v1/zones/az1/online", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, audit) = ada.get("/api/v1/audit").await;
    let actions: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(&actions[..2], ["zone_online", "claim"]);
}

/// Every API route is in the OpenAPI document.
async fn openapi_covers_every_route(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let (status, doc) = Api::new(&t.base).get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let routes = [
        ("post", "/api/v1/login"),
        ("post", "/api/v1/logout"),
        ("get", "/api/v1/me"),
        ("get", "/api/v1/clusters"),
        ("post", "/api/v1/clusters"),
        ("get", "/api/v1/clusters/{id}"),
        ("delete", "/api/v1/clusters/{id}"),
        ("get", "/api/v1/clusters/{id}/transactions"),
        ("post", "/api/v1/clusters/{id}/drills"),
        ("get", "/api/v1/clusters/{id}/drill-settings"),
        ("put", "/api/v1/clusters/{id}/drill-settings"),
        ("get", "/api/v1/drills"),
        ("get", "/api/v1/tickets"),
        ("post", "/api/v1/tickets"),
        ("post", "/api/v1/tickets/check"),
        ("get", "/api/v1/tickets/{id}"),
        ("post", "/api/v1/tickets/{id}/{action}"),
        ("post", "/api/v1/tickets/{id}/target"),
        ("post", "/api/v1/tickets/{id}/move-forward"),
        ("post", "/api/v1/tickets/{id}/go-back"),
        ("get", "/api/v1/tickets/{id}/events"),
        ("get", "/api/v1/tickets/{id}/messages"),
        ("get", "/api/v1/jobs/{id}"),
        ("get", "/api/v1/zones"),
        ("post", "/api/v1/zones/{zone}/{state}"),
        ("get", "/api/v1/hosts"),
        ("put", "/api/v1/hosts/{name}"),
        ("delete", "/api/v1/hosts/{name}"),
        ("get", "/api/v1/users"),
        ("post", "/api/v1/users"),
        ("patch", "/api/v1/users/{id}"),
        ("get", "/api/v1/faults"),
        ("post", "/api/v1/faults"),
        ("delete", "/api/v1/faults"),
        ("get", "/api/v1/outbox"),
        ("get", "/api/v1/audit"),
        ("get", "/api/v1/tickets/{id}/verdict"),
        ("get", "/api/v1/ratings"),
        ("get", "/api/v1/handovers"),
        ("post", "/api/v1/tickets/{id}/verdict"),
        ("get", "/api/v1/endpoints"),
        ("post", "/api/v1/endpoints"),
        ("get", "/api/v1/endpoints/{id}"),
        ("patch", "/api/v1/endpoints/{id}"),
        ("delete", "/api/v1/endpoints/{id}"),
        ("post", "/api/v1/endpoints/{id}/rotate"),
        ("post", "/api/v1/endpoints/{id}/test"),
        ("get", "/api/v1/endpoints/{id}/deliveries"),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in routes {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    assert_eq!(
        paths
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum::<usize>(),
        routes.len(),
        "the document lists a route the test does not know"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn openapi_document_covers_every_route() {
    openapi_covers_every_route(false).await
}

/// The operational endpoints answer without signing in.
#[tokio::test]
async fn health_readiness_and_metrics() {
    let t = spawn_app(false, &[]).await;
    let mut anyone = t.browser();
    for path in ["/healthz", "/readyz"] {
        assert_eq!(anyone.get(path).await.status(), StatusCode::OK, "{path}");
    }
    anyone.get("/login").await;
    let metrics = anyone.get("/metrics").await;
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("restore_desk_tickets"), "{text}");
    assert!(
        text.contains(
            r#"restore_desk_http_requests_total{route="/healthz",method="GET",status="200"}"#
        ),
        "{text}"
    );
}

crate::both_databases!(role_route_matrix);
