//! The support engineer's desk: the queue by urgency with counts and search
//! (both stores), the window the online zones restore now, one clock on a
//! customer's ticket, an admin's password reset and a customer's reason to
//! cancel.

mod common;

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::web::{Api, spawn_app};

async fn file(
    t: &common::web::TestApp,
    api: &Api,
    cluster: &str,
    name: &str,
    severity: &str,
    description: &str,
) -> Value {
    let cluster = t.cluster_id(cluster).await;
    let (status, ticket) = api
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": cluster, "target_time": "2026-11-24T10:00:00Z",
                   "new_cluster_name": name, "severity": severity, "description": description}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    ticket
}

fn ids(page: &Value) -> Vec<String> {
    page["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

async fn the_queue_puts_what_is_due_first_on_top(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let bob = Api::signed_in(&t.base, "bob@fabrikam.example").await;
    // An A filed two hours ago: its first response (1 h) is breached.
    let urgent = file(
        &t,
        &alice,
        "orders-prod",
        "orders-urgent",
        "A",
        "orders table dropped",
    )
    .await;
    t.clock.advance(Duration::hours(2));
    // A C filed now: due the next business day.
    let fresh = file(
        &t,
        &bob,
        "inventory",
        "inventory-copy",
        "C",
        "a quiet question about 50%_off",
    )
    .await;
    let (urgent_id, fresh_id) = (
        urgent["id"].as_str().unwrap().to_string(),
        fresh["id"].as_str().unwrap().to_string(),
    );

    let sam = Api::signed_in(&t.base, "sam@support.example").await;
    let (status, queue) = sam.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    let order = ids(&queue);
    let at = |id: &str| order.iter().position(|x| x == id).unwrap();
    assert!(at(&urgent_id) < at(&fresh_id), "{order:?}");

    // The filter by clock: the breached A, not the fresh C.
    let (_, breached) = sam.get("/api/v1/tickets?response=breached").await;
    let breached = ids(&breached);
    assert!(breached.contains(&urgent_id) && !breached.contains(&fresh_id));
    let (status, refused) = sam.get("/api/v1/tickets?response=late").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");

    // Search by number, customer, cluster and text; wildcards are literal.
    let number = urgent["number"].as_str().unwrap().to_string();
    let digits = number
        .trim_start_matches("RD-")
        .trim_start_matches('0')
        .to_string();
    for (words, expect) in [
        (number.clone(), &urgent_id),
        (digits, &urgent_id),
        ("alice@contoso".to_string(), &urgent_id),
        ("INVENTORY".to_string(), &fresh_id),
        ("table dropped".to_string(), &urgent_id),
        ("50%_off".to_string(), &fresh_id),
    ] {
        let q: String = url::form_urlencoded::byte_serialize(words.as_bytes()).collect();
        let (status, found) = sam.get(&format!("/api/v1/tickets?state=all&q={q}")).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        let found = ids(&found);
        assert!(found.contains(expect), "{words}: {found:?}");
        let other = if expect == &urgent_id {
            &fresh_id
        } else {
            &urgent_id
        };
        assert!(!found.contains(other), "{words}: {found:?}");
    }
    let (_, none) = sam.get("/api/v1/tickets?state=all&q=50%25off").await;
    assert!(ids(&none).is_empty(), "% is not a wildcard: {none}");

    // The page: the breached A on top with its badge, counts per filter,
    // and the filters kept in the links.
    let mut page = t.browser();
    page.sign_in("sam@support.example").await;
    let html = page.page("/staff/tickets").await;
    let a = html.find(&format!("/staff/tickets/{urgent_id}")).unwrap();
    let c = html.find(&format!("/staff/tickets/{fresh_id}")).unwrap();
    assert!(a < c, "the breached A is above the fresh C");
    assert!(html.contains("Response breached"), "{html}");
    let (_, open) = sam.get("/api/v1/tickets?response=breached&limit=200").await;
    let breached_count = ids(&open).len();
    assert!(
        html.contains(&format!(
            "Response breached <span class=\"chip-count\">{breached_count}</span>"
        )),
        "{html}"
    );
    assert!(html.contains("href=\"/staff/tickets?response=breached\""));
    let filtered = page.page("/staff/tickets?q=inventory&severity=C").await;
    assert!(filtered.contains(&fresh_id) && !filtered.contains(&urgent_id));
    assert!(
        filtered.contains("value=\"inventory\""),
        "the search stays in the box"
    );
    assert!(
        filtered.contains("C — minimal impact ("),
        "counts beside the choices"
    );
    // Customers do not search the queue: their list is their own.
    let (_, mine) = bob.get("/api/v1/tickets?q=orders").await;
    assert_eq!(ids(&mine), vec![fresh_id.clone()]);
}

#[tokio::test]
async fn the_queue_puts_what_is_due_first_on_top_on_sqlite() {
    the_queue_puts_what_is_due_first_on_top(false).await;
}

#[tokio::test]
async fn the_queue_puts_what_is_due_first_on_top_on_postgres() {
    the_queue_puts_what_is_due_first_on_top(true).await;
}

#[tokio::test]
async fn an_offline_zone_narrows_the_window_and_the_refusal_says_from_when() {
    let t = spawn_app(false, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let legacy = t.cluster_id("legacy-crm").await;
    let (_, cluster) = alice.get(&format!("/api/v1/clusters/{legacy}")).await;
    let whole = cluster["restorable"]["earliest"]
        .as_str()
        .unwrap()
        .to_string();
    let now = cluster["restorable_now"]["earliest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        now > whole,
        "az1 offline holds the older backups: {cluster}"
    );

    let mut page = t.browser();
    page.sign_in("alice@contoso.example").await;
    let html = page.page(&format!("/clusters/{legacy}")).await;
    assert!(html.contains("Restorable now: any moment from"), "{html}");
    assert!(html.contains("when az1 is back"), "{html}");
    let check = format!(
        "/requests/preview?cluster_id={legacy}&date=2026-10-31&time=12:00&time_zone=Asia/Tokyo&new_cluster_name=crm-old"
    );
    let preview: Value = page.get(&check).await.json().await.unwrap();
    let message = preview["errors"][0]["message"].as_str().unwrap();
    assert_eq!(preview["errors"][0]["code"], "no_backup_in_online_zone");
    assert!(
        message.contains("from the zones online now, moments from"),
        "{message}"
    );
    assert!(
        message.contains("JST"),
        "in the zone the target was entered in: {message}"
    );
    assert!(
        preview["window_text"]
            .as_str()
            .unwrap()
            .contains("when az1 is back"),
        "{preview}"
    );
}

#[tokio::test]
async fn a_tokyo_customer_reads_tokyo_times_on_their_ticket() {
    let t = spawn_app(false, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let (status, ticket) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders, "local_time": "2026-11-24T19:00", "time_zone": "Asia/Tokyo",
                   "new_cluster_name": "orders-tokyo", "severity": "B", "description": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let id = ticket["id"].as_str().unwrap();
    let mut page = t.browser();
    page.sign_in("alice@contoso.example").await;
    let html = page.page(&format!("/tickets/{id}")).await;
    let times: Vec<&str> = html.split("<time ").skip(1).collect();
    assert!(times.len() >= 3, "{html}");
    for time in times {
        let shown = time.split('>').nth(1).unwrap().split('<').next().unwrap();
        assert!(
            shown.ends_with("JST"),
            "every time in Tokyo's zone: {shown}"
        );
        assert!(
            time.contains("title=\"") && time.contains("UTC\""),
            "UTC a tap away: {time}"
        );
    }
    assert!(html.contains("Times are in Asia/Tokyo"));
}

#[tokio::test]
async fn a_reset_password_must_be_changed_at_the_next_sign_in() {
    let t = spawn_app(false, &[]).await;
    let mut ada = t.browser();
    ada.sign_in("ada@admin.example").await;
    let (_, users) = Api::signed_in(&t.base, "ada@admin.example")
        .await
        .get("/api/v1/users")
        .await;
    let bob = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "bob@fabrikam.example")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    ada.page("/admin/users").await;
    let reset = ada
        .post(
            &format!("/admin/users/{bob}"),
            &[("password", "given by the admin 42")],
        )
        .await;
    assert_eq!(reset.status(), StatusCode::SEE_OTHER);

    // The API gives no token until it is changed.
    let (status, refused) = Api::new(&t.base)
        .post(
            "/api/v1/login",
            json!({"email": "bob@fabrikam.example", "password": "given by the admin 42"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "password_change_required");

    let mut page = t.browser();
    page.page("/login").await;
    let signed = page
        .post(
            "/login",
            &[
                ("email", "bob@fabrikam.example"),
                ("password", "given by the admin 42"),
            ],
        )
        .await;
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    let clusters = page.get("/clusters").await;
    assert_eq!(clusters.status(), StatusCode::SEE_OTHER);
    assert_eq!(clusters.headers()["location"], "/account/password");
    let form = page.page("/account/password").await;
    assert!(
        form.contains("An administrator reset your password"),
        "{form}"
    );
    // Bad input changes nothing.
    let mismatch = page
        .post(
            "/account/password",
            &[
                ("current", "given by the admin 42"),
                ("password", "my very own passphrase"),
                ("repeat", "my very own passphrasf"),
            ],
        )
        .await;
    assert!(
        mismatch
            .text()
            .await
            .unwrap()
            .contains("The two new passwords differ")
    );
    assert_eq!(page.get("/clusters").await.status(), StatusCode::SEE_OTHER);
    let done = page
        .post(
            "/account/password",
            &[
                ("current", "given by the admin 42"),
                ("password", "my very own passphrase"),
                ("repeat", "my very own passphrase"),
            ],
        )
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let home = page.follow(done).await;
    assert!(home.contains("Your password is changed."), "{home}");
    assert_eq!(page.get("/clusters").await.status(), StatusCode::OK);
    let (status, _) = Api::new(&t.base)
        .post(
            "/api/v1/login",
            json!({"email": "bob@fabrikam.example", "password": "my very own passphrase"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let audit = ada.page("/admin/audit").await;
    assert!(
        audit.contains("to be changed at the next sign-in"),
        "{audit}"
    );
}

#[tokio::test]
async fn a_customer_says_why_they_cancel_and_the_history_keeps_it() {
    let t = spawn_app(false, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let id = t.file_request(&alice, "orders-prod", "orders-copy").await;
    let mut page = t.browser();
    page.sign_in("alice@contoso.example").await;
    let path = format!("/tickets/{id}");
    let html = page.page(&path).await;
    assert!(html.contains("Why are you cancelling?"));
    let version = common::web::version_in(&html).unwrap().to_string();
    let cancelled = page
        .post(
            &format!("{path}/cancel"),
            &[
                ("version", &version),
                ("confirm", "yes"),
                ("reason", "found the rows in a <b>dump</b>"),
            ],
        )
        .await;
    let html = page.follow(cancelled).await;
    assert!(
        html.contains("Cancelled by the customer: found the rows in a &#60;b&#62;dump&#60;/b&#62;"),
        "{html}"
    );
    let sam = Api::signed_in(&t.base, "sam@support.example").await;
    let (_, events) = sam.get(&format!("/api/v1/tickets/{id}/events")).await;
    assert!(
        events
            .to_string()
            .contains("found the rows in a <b>dump</b>"),
        "{events}"
    );
}
