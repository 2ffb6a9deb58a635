//! The JSON API keeps its contract: every answer under `/api` is JSON in
//! the documented error shape, including those no handler writes (a wrong
//! method, a body over the limit, a path that names nothing).

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::web::{Api, TestApp, json_of, spawn_app};
use restore_desk::store::Scope;

/// Sends `method path` with a body and alice's token; returns the status,
/// the headers and the body read as JSON (a string when it is not JSON).
async fn raw(
    t: &TestApp,
    api: &Api,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = api
        .client
        .request(method, format!("{}{path}", t.base))
        .bearer_auth(api.token.as_deref().unwrap());
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let (status, value) = json_of(response).await;
    assert_eq!(content_type, "application/json", "{path}: {value}");
    (status, headers, value)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn refusals_no_handler_writes_are_json_errors() {
    let t = spawn_app(false, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;

    // A method the route does not take: 405, with the methods it does.
    for (method, path, allowed) in [
        (Method::DELETE, "/api/v1/login", "POST"),
        (Method::PUT, "/api/v1/tickets", "GET,HEAD,POST"),
        (Method::POST, "/api/v1/openapi.json", "GET,HEAD"),
        (Method::GET, "/api/v1/tickets/check", "POST"),
    ] {
        let (status, headers, body) = raw(&t, &alice, method.clone(), path, None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(code(&body), "method_not_allowed", "{body}");
        assert_eq!(headers["allow"], allowed, "{method} {path}");
    }

    // A body beyond the largest any route reads, refused before a handler.
    let huge = vec![b' '; 2 * 1024 * 1024];
    let (status, _, body) = raw(&t, &alice, Method::POST, "/api/v1/tickets", Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&body), "payload_too_large", "{body}");

    // Paths that name nothing: unknown routes, ids that are not UUIDs or
    // not even UTF-8.
    for path in [
        "/api",
        "/api/",
        "/api/v2/tickets",
        "/api/v1",
        "/api/v1/",
        "/api/v1/tickets/",
        "/api/v1/tickets/not-a-uuid",
        "/api/v1/tickets/%FF%FE",
        "/api/v1/clusters/%C0",
        "/api/v1/jobs/00000000-0000-0000-0000-000000000000",
        "/api/v1/tickets/00000000-0000-0000-0000-000000000000/events/extra",
    ] {
        let (status, _, body) = raw(&t, &alice, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(code(&body), "not_found", "{path}: {body}");
    }
    let (status, _, body) = raw(&t, &alice, Method::POST, "/api/v1/tickets/%FF/claim", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "not_found", "{body}");

    // Pages keep their pages.
    let mut browser = t.browser();
    let page = browser.get("/no/such/page").await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

async fn sam_api(t: &TestApp) -> Api {
    Api::signed_in(&t.base, "sam@support.example").await
}

/// Text the stores cannot both keep (PostgreSQL refuses NUL, SQLite would
/// store it) is refused where it comes in, the same on both; a body must
/// be an object, and a command's may be `null`; a query parameter is read
/// as the document types it.
async fn input_the_routes_cannot_take_is_refused_alike(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let anyone = Api::new(&t.base);
    let (status, body) = anyone
        .post(
            "/api/v1/login",
            json!({"email": "alice@contoso.example\u{0}", "password": "demo"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "email");

    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let filing = |description: &str| {
        json!({"cluster_id": orders, "target_time": "2026-11-24T10:00:00Z",
               "new_cluster_name": "nul-check", "severity": "B", "description": description})
    };
    let (status, body) = alice.post("/api/v1/tickets", filing("a\u{0}b")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "description");
    let (status, body) = alice.get("/api/v1/tickets?assignee=%00").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "assignee");
    let (status, body) = alice.post("/api/v1/tickets", json!([orders, "B"])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["field"].is_null(), "{body}");
    assert_eq!(
        t.app
            .store
            .count_tickets(Scope::Everything, &[])
            .await
            .unwrap(),
        0
    );

    // A query parameter is what the document types it as.
    let (status, body) = sam_api(&t).await.get("/api/v1/tickets?mine=AAA").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = sam_api(&t).await.get("/api/v1/tickets?mine=true").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A command's body may be left out or be `null`; text in it is checked.
    let (status, ticket) = alice.post("/api/v1/tickets", filing("fine")).await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let claim = format!("/api/v1/tickets/{}/claim", ticket["id"].as_str().unwrap());
    let sam = sam_api(&t).await;
    let (status, body) = sam.post(&claim, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let note = claim.replace("/claim", "/note");
    let (status, body) = sam.post(&note, json!({"body": "x\u{0}"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "body");

    // The sign-in form the same way, as a page.
    let mut browser = t.browser();
    browser.page("/login").await;
    let refused = browser
        .post(
            "/login",
            &[
                ("email", "alice@contoso.example\u{0}"),
                ("password", "demo"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.unwrap().contains("NUL character"));
}

#[tokio::test]
async fn input_the_routes_cannot_take_is_refused_alike_sqlite() {
    input_the_routes_cannot_take_is_refused_alike(false).await
}

#[tokio::test]
async fn input_the_routes_cannot_take_is_refused_alike_postgres() {
    input_the_routes_cannot_take_is_refused_alike(true).await
}
