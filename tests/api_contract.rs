//! The JSON API keeps its contract: every answer under `/api` is JSON in
//! the documented error shape, including those no handler writes (a wrong
//! method, a body over the limit, a path that names nothing).

mod common;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use common::web::{Api, TestApp, json_of, spawn_app};

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
