//! The desk's defences over HTTP: CSRF tokens and cross-site refusals,
//! sessions that die at sign-out and when a user is disabled, escaping,
//! verbatim storage of hostile text, size limits, rate limits and headers.

mod common;

use reqwest::StatusCode;
use serde_json::json;

use common::web::{Api, Browser, TestApp, spawn_app, version_in};
use restore_desk::domain::ticket::TicketState;
use restore_desk::store::{Email, Scope, Ticket};

async fn file_for_alice(t: &TestApp, name: &str, description: &str) -> Ticket {
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let (status, body) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders, "target_time": "2026-11-24T10:00:00Z",
                   "new_cluster_name": name, "severity": "B", "description": description}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = uuid::Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
    t.app
        .store
        .ticket(id.into(), Scope::Everything)
        .await
        .unwrap()
        .unwrap()
}

async fn reload(t: &TestApp, ticket: &Ticket) -> Ticket {
    t.app
        .store
        .ticket(ticket.id, Scope::Everything)
        .await
        .unwrap()
        .unwrap()
}

async fn forms_without_the_right_csrf_token_are_refused(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let ticket = file_for_alice(&t, "csrf-target", "x").await;
    let mut sam = t.browser();
    sam.sign_in("sam@support.example").await;
    let path = format!("/staff/tickets/{}/claim", ticket.id);
    let version = ticket.version.to_string();

    let missing = sam.post_raw(&path, &[("version", &version)]).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let page = missing.text().await.unwrap();
    assert!(page.contains("This form has expired or did not come from this site"));

    let wrong = sam
        .post_raw(
            &path,
            &[("csrf", "0123456789abcdef"), ("version", &version)],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);

    // Another session's token does not work either.
    let mut ada = t.browser();
    ada.sign_in("ada@admin.example").await;
    let stolen = ada.csrf.clone();
    assert_ne!(stolen, sam.csrf);
    let foreign = sam
        .post_raw(&path, &[("csrf", &stolen), ("version", &version)])
        .await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);

    // The right token, sent cross-site, is refused too.
    let token = sam.csrf.clone();
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let response = sam
            .client
            .post(sam.url(&path))
            .header(header, value)
            .form(&[("csrf", token.as_str()), ("version", &version)])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{header}: {value}"
        );
    }
    assert_eq!(reload(&t, &ticket).await, ticket, "nothing changed");

    // Signing in needs the token as well.
    let mut stranger = t.browser();
    let response = stranger
        .post_raw(
            "/login",
            &[("email", "alice@contoso.example"), ("password", "demo")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // With the token, from the same origin, it works.
    let response = sam
        .client
        .post(sam.url(&path))
        .header("origin", t.base.as_str())
        .header("sec-fetch-site", "same-origin")
        .form(&[("csrf", token.as_str()), ("version", &version)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(reload(&t, &ticket).await.state, TicketState::InReview);
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("rd_session="))
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("rd_session=")
        .to_string()
}

async fn sessions_rotate_at_sign_in_and_die_at_sign_out(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let mut alice = t.browser();
    let login = alice.get("/login").await;
    let before = session_cookie(&login).expect("a session for the form token");
    assert!(before.contains("HttpOnly"), "{before}");
    assert!(before.contains("SameSite=Lax"), "{before}");
    let html = login.text().await.unwrap();
    alice.csrf = common::web::csrf_in(&html).unwrap();
    let signed_in = alice
        .post(
            "/login",
            &[("email", "alice@contoso.example"), ("password", "demo")],
        )
        .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let after = session_cookie(&signed_in).expect("a new session cookie at sign-in");
    assert_ne!(cookie_value(&before), cookie_value(&after), "id rotated");
    let cookie = format!("rd_session={}", cookie_value(&after));
    alice.page("/tickets").await;

    // Signing in as someone else from the same browser renews the id again,
    // and the old one is gone.
    let switched = alice
        .post(
            "/login",
            &[("email", "bob@fabrikam.example"), ("password", "demo")],
        )
        .await;
    assert_eq!(switched.status(), StatusCode::SEE_OTHER);
    let bobs = session_cookie(&switched).expect("a new session cookie");
    assert_ne!(cookie_value(&bobs), cookie_value(&after));
    let old = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/tickets", t.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.status(),
        StatusCode::SEE_OTHER,
        "alice's old id is dead"
    );
    let cookie = format!("rd_session={}", cookie_value(&bobs));
    let page = alice.page("/tickets").await;
    assert!(page.contains("Bob Chen"));
    let token = alice.csrf.clone();

    alice.sign_out().await;
    // Replaying the old cookie, by hand, with its old form token.
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = replay
        .get(format!("{}/tickets", t.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert!(
        page.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
    let post = replay
        .post(format!("{}/requests", t.base))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str()), ("intent", "check")])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::FORBIDDEN);
}

async fn disabling_a_user_ends_their_sessions_and_tokens(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let mut alice = t.browser();
    alice.sign_in("alice@contoso.example").await;
    let alice_api = Api::signed_in(&t.base, "alice@contoso.example").await;
    let (status, _) = alice_api.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK);

    let mut ada = t.browser();
    ada.sign_in("ada@admin.example").await;
    let users = ada.page("/admin/users").await;
    assert!(users.contains("alice@contoso.example"));
    let alice_id = t
        .app
        .store
        .user_by_email(&Email::parse("alice@contoso.example").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let disabled = ada
        .post(&format!("/admin/users/{alice_id}"), &[("state", "disable")])
        .await;
    let page = ada.follow(disabled).await;
    assert!(page.contains("alice@contoso.example is updated"));

    let response = alice.get("/tickets").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, _) = alice_api.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut again = t.browser();
    again.page("/login").await;
    let refused = again
        .post(
            "/login",
            &[("email", "alice@contoso.example"), ("password", "demo")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // The change is in the audit log.
    let audit = t.app.store.audit_log(None, 5).await.unwrap();
    assert_eq!(audit[0].action, "user_update");
    assert!(audit[0].detail.contains("disabled"));

    // Enabled again, Alice signs in anew: the sessions she had stay ended.
    let enabled = ada
        .post(&format!("/admin/users/{alice_id}"), &[("state", "enable")])
        .await;
    ada.follow(enabled).await;
    let response = alice.get("/tickets").await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "a session from before the account was disabled does not come back"
    );
    let (status, _) = alice_api.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut fresh = t.browser();
    fresh.sign_in("alice@contoso.example").await;
    assert_eq!(fresh.get("/tickets").await.status(), StatusCode::OK);
}

/// Two desk processes on one database with the settings `args`, and
/// Alice's one API token used on each: `here` on the first, `there` on the
/// second.
async fn alice_on_two_desks(
    postgres: bool,
    args: &[&str],
) -> (TestApp, restore_desk::app::App, Api, Api) {
    let t = spawn_app(postgres, args).await;
    let (other_base, other) = t.another_server().await;
    let here = Api::signed_in(&t.base, "alice@contoso.example").await;
    let mut there = Api::new(&other_base);
    there.token = here.token.clone();
    (t, other, here, there)
}

async fn a_revoked_token_ends_here_at_once_and_elsewhere_within_the_cache_time(postgres: bool) {
    let (t, _other, here, there) =
        alice_on_two_desks(postgres, &["--api-token-cache-ms", "1000"]).await;
    // Both desks check the token and remember it.
    assert_eq!(here.get("/api/v1/me").await.0, StatusCode::OK);
    assert_eq!(there.get("/api/v1/me").await.0, StatusCode::OK);

    let (status, _) = here.post("/api/v1/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The desk that revoked it refuses it at once.
    assert_eq!(here.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    // The other trusts what it checked for at most the cache time...
    assert_eq!(there.get("/api/v1/me").await.0, StatusCode::OK);
    // ...and then asks the database again.
    t.clock.advance(chrono::Duration::milliseconds(1000));
    let (status, body) = there.get("/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // An admin's change on one desk ends the cached tokens there at once.
    let bob = Api::signed_in(&t.base, "bob@fabrikam.example").await;
    assert_eq!(bob.get("/api/v1/me").await.0, StatusCode::OK);
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let bob_id = t
        .app
        .store
        .user_by_email(&Email::parse("bob@fabrikam.example").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let (status, body) = ada
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{bob_id}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(bob.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
}

async fn with_no_cache_time_every_call_asks_the_database(postgres: bool) {
    let (_t, other, here, there) =
        alice_on_two_desks(postgres, &["--api-token-cache-ms", "0"]).await;
    assert_eq!(there.get("/api/v1/me").await.0, StatusCode::OK);
    assert!(other.api_tokens.is_empty());
    let (status, _) = here.post("/api/v1/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(there.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
}

/// Alice's ticket, filed on `here`, read once on each desk.
/// Answers its path and version.
async fn a_ticket_read_on_two_desks(t: &TestApp, here: &Api, there: &Api) -> (String, i64) {
    let orders = t.cluster_id("orders-prod").await;
    let (status, ticket) = here
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders, "local_time": "2026-11-24T14:30",
                   "time_zone": "Europe/Amsterdam", "new_cluster_name": "orders-read",
                   "severity": "B"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let path = format!("/api/v1/tickets/{}", ticket["id"].as_str().unwrap());
    for desk in [here, there] {
        let (status, read) = desk.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{read}");
        assert_eq!(read["state"], "triage");
    }
    (path, ticket["version"].as_i64().unwrap())
}

async fn a_read_shows_this_desks_writes_at_once_and_anothers_within_the_cache_time(postgres: bool) {
    let (t, _other, here, there) = alice_on_two_desks(postgres, &["--read-cache-ms", "1000"]).await;
    let (path, version) = a_ticket_read_on_two_desks(&t, &here, &there).await;

    let (status, body) = here
        .post(&format!("{path}/cancel"), json!({ "version": version }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The desk that wrote reads its own write at once...
    assert_eq!(here.get(&path).await.1["state"], "cancelled");
    // ...the other trusts its read for at most the cache time...
    assert_eq!(there.get(&path).await.1["state"], "triage");
    // ...and then reads again.
    t.clock.advance(chrono::Duration::milliseconds(1000));
    assert_eq!(there.get(&path).await.1["state"], "cancelled");
}

async fn with_no_read_cache_time_every_read_asks_the_database(postgres: bool) {
    let (t, _other, here, there) = alice_on_two_desks(postgres, &["--read-cache-ms", "0"]).await;
    let (path, version) = a_ticket_read_on_two_desks(&t, &here, &there).await;
    let (status, body) = here
        .post(&format!("{path}/cancel"), json!({ "version": version }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(there.get(&path).await.1["state"], "cancelled");
}

/// `raw` appears on the page with its `<` and `>` as character references.
fn shows_escaped(html: &str, raw: &str) -> bool {
    [("&lt;", "&gt;"), ("&#60;", "&#62;"), ("&#x3c;", "&#x3e;")]
        .iter()
        .any(|(lt, gt)| html.contains(&raw.replace('<', lt).replace('>', gt)))
}

async fn user_text_is_escaped_and_sql_looking_text_is_stored_verbatim(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let hostile = "<script>alert('pwned')</script> '; DROP TABLE tickets; -- \" OR 1=1 --";
    let ticket = file_for_alice(&t, "escape-test", hostile).await;
    assert_eq!(ticket.description, hostile, "stored verbatim");

    let mut alice = t.browser();
    alice.sign_in("alice@contoso.example").await;
    let page = alice.page(&format!("/tickets/{}", ticket.id)).await;
    let version = version_in(&page).unwrap().to_string();
    let replied = alice
        .post(
            &format!("/tickets/{}/reply", ticket.id),
            &[
                ("version", &version),
                ("body", "<img src=x onerror=alert(1)>"),
            ],
        )
        .await;
    let page = alice.follow(replied).await;
    let mut sam = t.browser();
    sam.sign_in("sam@support.example").await;
    let staff_page = sam.page(&format!("/staff/tickets/{}", ticket.id)).await;
    for html in [&page, &staff_page] {
        assert!(!html.contains("<script>alert"), "unescaped script");
        assert!(!html.contains("<img src=x"), "unescaped img");
        assert!(shows_escaped(html, "<script>alert("), "description");
        assert!(shows_escaped(html, "<img src=x onerror=alert(1)>"), "reply");
    }
    // The tables are all there and the text reads back unchanged.
    let messages = t.app.store.messages(ticket.id, true).await.unwrap();
    assert_eq!(messages[0].body, "<img src=x onerror=alert(1)>");
    assert_eq!(
        t.app
            .store
            .count_tickets(Scope::Everything, &[])
            .await
            .unwrap(),
        1
    );
    // The same through the API: returned as data, not interpreted.
    let api = Api::signed_in(&t.base, "alice@contoso.example").await;
    let (_, body) = api.get(&format!("/api/v1/tickets/{}", ticket.id)).await;
    assert_eq!(body["description"], hostile);
    // A hostile email on the sign-in form comes back escaped.
    let mut stranger = t.browser();
    stranger.page("/login").await;
    let response = stranger
        .post(
            "/login",
            &[("email", "\"><script>x()</script>"), ("password", "nope")],
        )
        .await;
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script>x()"));
}

#[tokio::test]
async fn oversize_inputs_are_refused_with_a_clear_message() {
    let t = spawn_app(false, &[]).await;
    let orders = t.cluster_id("orders-prod").await.to_string();
    let mut alice = t.browser();
    alice.sign_in("alice@contoso.example").await;
    alice.page("/requests/new").await;
    let long = "x".repeat(10_001);
    let response = alice
        .post(
            "/requests",
            &[
                ("cluster_id", &orders),
                ("date", "2026-11-24"),
                ("time", "10:00"),
                ("time_zone", "UTC"),
                ("new_cluster_name", "too-long"),
                ("severity", "B"),
                ("description", &long),
                ("intent", "file"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("The description is 10001 characters long; the limit is 10000"),
        "{}",
        &html[..500]
    );

    // A reply over the limit.
    let ticket = file_for_alice(&t, "oversize", "fine").await;
    let page = alice.page(&format!("/tickets/{}", ticket.id)).await;
    let version = version_in(&page).unwrap().to_string();
    let response = alice
        .post(
            &format!("/tickets/{}/reply", ticket.id),
            &[("version", &version), ("body", &long)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("The message is 10001 characters long; the limit is 10000"));
    assert_eq!(reload(&t, &ticket).await, ticket);

    // A form body beyond what any field allows.
    let huge = "y".repeat(300 * 1024);
    let response = alice
        .post(
            &format!("/tickets/{}/reply", ticket.id),
            &[("version", &version), ("body", &huge)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.text().await.unwrap().contains("shorten the text"));

    // The API: the same rules, as JSON.
    let api = Api::signed_in(&t.base, "alice@contoso.example").await;
    let (status, body) = api
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders, "target_time": "2026-11-24T10:00:00Z",
                   "new_cluster_name": "too-long-api", "severity": "B", "description": long}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_input");
    assert_eq!(body["error"]["field"], "description");
    let (status, body) = api
        .post(
            &format!("/api/v1/tickets/{}/reply", ticket.id),
            json!({"body": huge}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "payload_too_large");
    let (status, body) = api
        .post(
            &format!("/api/v1/tickets/{}/reply", ticket.id),
            json!({"body": "   "}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "message");
    // Malformed JSON is an error in the same shape.
    let response = api
        .client
        .post(format!("{}/api/v1/tickets", t.base))
        .bearer_auth(api.token.as_deref().unwrap())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = common::web::json_of(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_input");
    assert_eq!(
        t.app
            .store
            .count_tickets(Scope::Everything, &[])
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_address_and_account() {
    let t = spawn_app(false, &["--login-rate-limit", "3"]).await;
    let mut browser = t.browser();
    browser.page("/login").await;
    for _ in 0..3 {
        let response = browser
            .post(
                "/login",
                &[("email", "alice@contoso.example"), ("password", "wrong")],
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = browser
        .post(
            "/login",
            &[("email", "alice@contoso.example"), ("password", "demo")],
        )
        .await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    assert!(
        limited
            .text()
            .await
            .unwrap()
            .contains("Too many sign-in attempts")
    );
    // The API shares the limit: same address.
    let response = Api::new(&t.base)
        .post(
            "/api/v1/login",
            json!({"email": "bob@fabrikam.example", "password": "demo"}),
        )
        .await;
    assert_eq!(response.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.1["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn someone_elses_guesses_never_lock_a_person_out() {
    let t = spawn_app(
        false,
        &[
            "--login-rate-limit",
            "3",
            "--login-backoff-max-seconds",
            "2",
        ],
    )
    .await;
    let at = |last: u8| Some(std::net::IpAddr::from([127, 0, 0, last]));
    let sign_in = |address| {
        let base = t.base.clone();
        async move {
            let mut browser = Browser::from_address(&base, address);
            browser.page("/login").await;
            browser
                .post(
                    "/login",
                    &[("email", "alice@contoso.example"), ("password", "demo")],
                )
                .await
        }
    };
    // Alice works from .1; guesses at her account come from .2 to .5,
    // each address under its own limit. After three, the account turns
    // strangers away for a while.
    assert_eq!(sign_in(at(1)).await.status(), StatusCode::SEE_OTHER);
    let mut turned_away = 0;
    for last in 2..=5 {
        let mut attacker = Browser::from_address(&t.base, at(last));
        attacker.page("/login").await;
        for _ in 0..2 {
            let wrong = attacker
                .post(
                    "/login",
                    &[("email", "alice@contoso.example"), ("password", "guess")],
                )
                .await;
            match wrong.status() {
                StatusCode::UNAUTHORIZED => {}
                StatusCode::TOO_MANY_REQUESTS => turned_away += 1,
                other => panic!("a guess answered {other}"),
            }
        }
    }
    assert!(turned_away >= 4, "the account backed off: {turned_away}");
    // One more guess once the first backoff (a second) is over: counted,
    // so strangers now wait two seconds.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut attacker = Browser::from_address(&t.base, at(6));
    attacker.page("/login").await;
    let wrong = attacker
        .post(
            "/login",
            &[("email", "alice@contoso.example"), ("password", "guess")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // A new place is held back, even with the right password...
    let held = sign_in(at(9)).await;
    assert_eq!(held.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(held.headers().contains_key("retry-after"));
    assert!(
        held.text()
            .await
            .unwrap()
            .contains("a device you have used before")
    );
    // ...while from where she signed in before her password works at once.
    assert_eq!(sign_in(at(1)).await.status(), StatusCode::SEE_OTHER);

    // Bob has signed in from nowhere yet: guessed at, he waits too, but
    // never for good.
    let bob = |address| {
        let base = t.base.clone();
        async move {
            let mut browser = Browser::from_address(&base, address);
            browser.page("/login").await;
            let password = if address == at(9) { "demo" } else { "guess" };
            browser
                .post(
                    "/login",
                    &[("email", "bob@fabrikam.example"), ("password", password)],
                )
                .await
                .status()
        }
    };
    for last in [2, 3, 4] {
        assert_eq!(bob(at(last)).await, StatusCode::UNAUTHORIZED);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(bob(at(5)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(bob(at(9)).await, StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(bob(at(9)).await, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn filing_is_rate_limited_per_user() {
    let t = spawn_app(false, &["--filing-rate-limit", "2"]).await;
    let orders = t.cluster_id("orders-prod").await;
    let api = Api::signed_in(&t.base, "alice@contoso.example").await;
    for i in 0..2 {
        let (status, body) = api
            .post(
                "/api/v1/tickets",
                json!({"cluster_id": orders, "target_time": "2026-11-24T10:00:00Z",
                       "new_cluster_name": format!("limited-{i}"), "severity": "C"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = api
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders, "target_time": "2026-11-24T10:00:00Z",
                   "new_cluster_name": "limited-3", "severity": "C"}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too many requests")
    );
    // The form says so too, keeping what was typed.
    let mut alice = t.browser();
    alice.sign_in("alice@contoso.example").await;
    alice.page("/requests/new").await;
    let response = alice
        .post(
            "/requests",
            &[
                ("cluster_id", &orders.to_string()),
                ("date", "2026-11-24"),
                ("time", "10:00"),
                ("time_zone", "UTC"),
                ("new_cluster_name", "limited-form"),
                ("severity", "C"),
                ("description", "typed text"),
                ("intent", "file"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let html = response.text().await.unwrap();
    assert!(html.contains("too many requests") && html.contains("typed text"));
    assert_eq!(
        t.app
            .store
            .count_tickets(Scope::Everything, &[])
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn security_headers_and_cookie_free_api() {
    let t = spawn_app(false, &[]).await;
    let mut alice = t.browser();
    alice.sign_in("alice@contoso.example").await;
    for path in [
        "/clusters",
        "/login",
        "/api/v1/openapi.json",
        "/static/app.css",
    ] {
        let response = alice.get(path).await;
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
    }
    let page = alice.get("/clusters").await;
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains(" style=\""), "no inline style");
    // The session cookie does not open the API.
    let response = alice.get("/api/v1/tickets").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Sign-in never redirects off the site.
    let mut visitor = t.browser();
    visitor.page("/login?next=https://evil.example/").await;
    let response = visitor
        .post(
            "/login",
            &[
                ("email", "alice@contoso.example"),
                ("password", "demo"),
                ("next", "//evil.example/x"),
            ],
        )
        .await;
    assert_eq!(response.headers()["location"], "/clusters");
    let _ = Browser::new(&t.base);
}

#[tokio::test]
async fn sign_in_never_leads_off_the_site() {
    let t = spawn_app(false, &[]).await;
    let base = url::Url::parse(&format!("{}/", t.base)).unwrap();
    let hostile = [
        "/%09/evil.example",
        "/%0A/evil.example",
        "/%0D%0A/evil.example",
        "//evil.example/x",
        "/%5Cevil.example",
        "https://evil.example/",
        "/%2F/evil.example",
    ];
    let lands_here = |location: &str| {
        let target = base.join(location).unwrap();
        assert_eq!(target.origin(), base.origin(), "{location} leaves the site");
    };
    for next in hostile {
        // Signed out: the form keeps only a local `next`, and never fails.
        let mut visitor = t.browser();
        let page = visitor.get(&format!("/login?next={next}")).await;
        assert_eq!(page.status(), StatusCode::OK, "GET /login?next={next}");
        visitor.page(&format!("/login?next={next}")).await;
        let decoded: String = url::form_urlencoded::parse(format!("n={next}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned();
        let response = visitor
            .post(
                "/login",
                &[
                    ("email", "alice@contoso.example"),
                    ("password", "demo"),
                    ("next", &decoded),
                ],
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "POST next={next:?}"
        );
        lands_here(response.headers()["location"].to_str().unwrap());
        // Signed in: the redirect straight away stays here too.
        let again = visitor.get(&format!("/login?next={next}")).await;
        assert_eq!(
            again.status(),
            StatusCode::SEE_OTHER,
            "GET next={next} signed in"
        );
        lands_here(again.headers()["location"].to_str().unwrap());
    }
    // A local next is honoured.
    let mut visitor = t.browser();
    visitor.page("/login?next=/tickets%3Fstate%3Dopen").await;
    let response = visitor
        .post(
            "/login",
            &[
                ("email", "alice@contoso.example"),
                ("password", "demo"),
                ("next", "/tickets?state=open"),
            ],
        )
        .await;
    assert_eq!(response.headers()["location"], "/tickets?state=open");
}

async fn control_characters_are_refused_in_every_text_and_store_nothing(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let ticket = file_for_alice(&t, "control-free", "before").await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let sam = Api::signed_in(&t.base, "sam@support.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let messages_before = t.app.store.messages(ticket.id, true).await.unwrap().len();

    // The JSON API: the field is named, whatever the store.
    for (who, path, body, field) in [
        (
            &alice,
            "/api/v1/tickets".to_string(),
            json!({"cluster_id": orders, "target_time": "2026-11-24T10:00:00Z",
                   "new_cluster_name": "nul-copy", "severity": "B",
                   "description": "dropped\u{0}orders"}),
            "description",
        ),
        (
            &alice,
            format!("/api/v1/tickets/{}/reply", ticket.id),
            json!({"body": "bell\u{7}"}),
            "body",
        ),
        (
            &sam,
            format!("/api/v1/tickets/{}/note", ticket.id),
            json!({"body": "escape \u{1b}[31m red"}),
            "body",
        ),
        (
            &alice,
            "/api/v1/tickets/check".to_string(),
            json!({"cluster_id": orders, "local_time": "2026-11-24T10:00\u{0}",
                   "time_zone": "Europe/Amsterdam", "new_cluster_name": "x", "severity": "B"}),
            "local_time",
        ),
    ] {
        let (status, error) = who.post(&path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {error}");
        assert_eq!(error["error"]["code"], "invalid_input", "{path}");
        assert_eq!(error["error"]["field"], field, "{path}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("control character")
        );
    }
    // Forms and query strings, the same.
    let mut browser = t.browser();
    browser.sign_in("alice@contoso.example").await;
    let page = browser.page(&format!("/tickets/{}", ticket.id)).await;
    let version = common::web::version_in(&page).unwrap().to_string();
    let refused = browser
        .post(
            &format!("/tickets/{}/reply", ticket.id),
            &[("version", &version), ("body", "a\0b")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("The body contains a control character")
    );
    let refused = browser.get("/tickets?state=open%00").await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut visitor = t.browser();
    visitor.page("/login").await;
    let refused = visitor
        .post(
            "/login",
            &[("email", "alice@contoso.example\0"), ("password", "demo")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Line breaks as browsers send them are text like any other.
    let kept = browser
        .post(
            &format!("/tickets/{}/reply", ticket.id),
            &[
                ("version", &version),
                ("body", "line one\r\nline two\ttabbed"),
            ],
        )
        .await;
    assert_eq!(kept.status(), StatusCode::SEE_OTHER);

    // Nothing of the refused ones was stored.
    let messages = t.app.store.messages(ticket.id, true).await.unwrap();
    assert_eq!(messages.len(), messages_before + 1);
    assert!(messages.iter().all(|m| !m.body.contains('\0')));
    let (_, tickets) = alice.get("/api/v1/tickets").await;
    assert_eq!(
        tickets["tickets"].as_array().map(Vec::len),
        Some(1),
        "{tickets}"
    );
}

// curl runs blocking in this thread: the desk serves on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_loopback_and_the_token_only() {
    let host = common::netns::Host::create("scraper");
    let t = common::web::spawn_app_at(common::TestDb::sqlite().await, &host.gateway, &[], |s| {
        s.metrics_token = Some("scrape-secret".into())
    })
    .await;
    let port = url::Url::parse(&t.base).unwrap().port().unwrap();
    let scrape = |token: Option<&str>| {
        let mut command = host.command("curl");
        command.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ]);
        if let Some(token) = token {
            command.args(["-H", &format!("authorization: Bearer {token}")]);
        }
        command.arg(format!("http://{}:{port}/metrics", host.gateway));
        let out = command.output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // From another host: only with the token.
    assert_eq!(scrape(None), "401");
    assert_eq!(scrape(Some("a-guess")), "401");
    assert_eq!(scrape(Some("scrape-secret")), "200");
    // On loopback no token is needed, as tests/web_matrix.rs scrapes.
}

#[tokio::test]
async fn https_desks_send_hsts_and_answers_are_not_cached() {
    let plain = spawn_app(false, &[]).await;
    let health = reqwest::get(format!("{}/healthz", plain.base))
        .await
        .unwrap();
    assert!(
        health.headers().get("strict-transport-security").is_none(),
        "not over http"
    );
    let alice = Api::signed_in(&plain.base, "alice@contoso.example").await;
    let response = alice
        .client
        .get(format!("{}/api/v1/clusters", plain.base))
        .bearer_auth(alice.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "API answers"
    );
    let mut browser = plain.browser();
    browser.sign_in("alice@contoso.example").await;
    for page in ["/clusters", "/tickets", "/support"] {
        assert_eq!(
            browser.get(page).await.headers()["cache-control"],
            "no-store",
            "{page}"
        );
    }

    let secure = common::web::spawn_app_with(false, &[], |s| {
        s.public_url = Some("https://desk.example".into())
    })
    .await;
    for path in ["/healthz", "/login", "/api/v1/openapi.json"] {
        let response = reqwest::get(format!("{}{path}", secure.base))
            .await
            .unwrap();
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000; includeSubDomains",
            "{path}"
        );
    }
}

async fn new_passwords_are_long_and_uncommon_on_every_way_in(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    for (password, expected) in [
        ("tiny", "at least 12 characters"),
        ("password1234", "most common"),
        ("zzzzzzzzzzzzzz", "repeats"),
    ] {
        let (status, error) = ada
            .post(
                "/api/v1/users",
                json!({"email": "pat@support.example", "role": "staff", "password": password}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{password}: {error}"
        );
        assert_eq!(error["error"]["field"], "password");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{error}"
        );
    }
    assert!(
        t.app
            .store
            .user_by_email(&Email::parse("pat@support.example").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    // A reset is held to the same rules.
    let alice = t
        .app
        .store
        .user_by_email(&Email::parse("alice@contoso.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (status, error) = ada
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{}", alice.id),
            Some(json!({"password": "iloveyou2024"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    // The admin page says so in the form.
    let mut page = t.browser();
    page.sign_in("ada@admin.example").await;
    page.page("/admin/users").await;
    let refused = page
        .post(
            "/admin/users",
            &[
                ("email", "pat@support.example"),
                ("role", "staff"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("at least 12 characters")
    );
    // A good one works; the demo's seeded password is untouched by the rules.
    let (status, _) = ada
        .post(
            "/api/v1/users",
            json!({"email": "pat@support.example", "role": "staff",
                   "password": "violet kettle harbour"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    Api::signed_in(&t.base, "alice@contoso.example").await;
}

crate::both_databases!(
    forms_without_the_right_csrf_token_are_refused,
    sessions_rotate_at_sign_in_and_die_at_sign_out,
    disabling_a_user_ends_their_sessions_and_tokens,
    a_revoked_token_ends_here_at_once_and_elsewhere_within_the_cache_time,
    with_no_cache_time_every_call_asks_the_database,
    a_read_shows_this_desks_writes_at_once_and_anothers_within_the_cache_time,
    with_no_read_cache_time_every_read_asks_the_database,
    user_text_is_escaped_and_sql_looking_text_is_stored_verbatim,
    control_characters_are_refused_in_every_text_and_store_nothing,
    new_passwords_are_long_and_uncommon_on_every_way_in
);
