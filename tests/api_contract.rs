//! The JSON API keeps its contract: the OpenAPI document it serves is
//! valid (openapi-spec-validator), and every answer is one it documents
//! (schemathesis fuzzing it as a customer and as an admin, on SQLite and
//! PostgreSQL), errors included: those no handler writes (a wrong method, a
//! body over the limit, a path that names nothing) and input no store could
//! keep. `bash .ci/run` installs both Python tools.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::web::{Api, TestApp, json_of, spawn_app};
use restore_desk::domain::catalog::Zone;
use restore_desk::store::{AdminWrite, Commit, Scope};

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
    // A local time so far ahead that its deadline overflowed (the
    // connection dropped without an answer).
    let (status, body) = alice
        .post(
            "/api/v1/tickets/check",
            json!({"cluster_id": orders, "local_time": "+262142-12-31T23:59",
                   "time_zone": "UTC", "new_cluster_name": "far-ahead", "severity": "B"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_timestamp");
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
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("control character (U+0000)")
    );
}

/// Runs `python3 -c <script> <args>`.
async fn python(script: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("python3 is needed for the API contract tests: {e}"))
}

fn printed(output: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const VALIDATE: &str = r#"
import json, sys
try:
    from openapi_spec_validator import validate
except ImportError:
    sys.exit("openapi-spec-validator is not installed: pip install openapi-spec-validator "
             "(bash .ci/run installs it)")
with open(sys.argv[1]) as document:
    validate(json.load(document))
"#;

/// The words a schema lists, as strings.
fn listed(doc: &Value, schema: &str) -> Vec<String> {
    doc["components"]["schemas"][schema]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema} lists no words"))
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

/// The served document is valid OpenAPI 3.1, and its enums are the
/// domain's own lists.
async fn the_document_is_valid_openapi(postgres: bool) {
    use restore_desk::domain::{restore_job::JobState, sla::Severity, ticket::TicketState};
    let t = spawn_app(postgres, &[]).await;
    let (status, doc) = Api::new(&t.base).get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&doc).unwrap()).unwrap();
    let output = python(VALIDATE, &[file.path().to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", printed(&output));

    let words = |all: &[&str]| all.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    assert_eq!(
        listed(&doc, "TicketState"),
        words(&TicketState::ALL.map(TicketState::as_str))
    );
    assert_eq!(
        listed(&doc, "JobState"),
        words(&JobState::ALL.map(JobState::as_str))
    );
    assert_eq!(
        listed(&doc, "Severity"),
        words(&Severity::ALL.map(Severity::as_str))
    );
    let codes = listed(&doc, "ErrorCode");
    for code in [
        "not_found",
        "rate_limited",
        "csrf",
        "method_not_allowed",
        "storage_full",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code} in {codes:?}");
    }
    // Every operation behind a token says it can answer 401.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("security").is_some() {
                assert!(
                    operation["responses"].get("401").is_some(),
                    "{method} {path} lacks its 401"
                );
            }
        }
    }
}

/// Tickets in several states, a finished restore and its new cluster, and
/// restore tests that passed, failed and wait, so the fuzzer meets real
/// things and not only unknown ids.
async fn some_work(t: &TestApp) {
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let sam = Api::signed_in(&t.base, "sam@support.example").await;
    let orders = t.cluster_id("orders-prod").await;
    let mut ids = Vec::new();
    // The restored one last: a customer's list starts with it, and links
    // from the list lead the fuzzer to its job.
    for name in ["fuzz-open", "fuzz-claimed", "fuzz-restored"] {
        let (status, ticket) = alice
            .post(
                "/api/v1/tickets",
                json!({"cluster_id": orders, "target_time": "2026-11-24T10:00:00Z",
                       "new_cluster_name": name, "severity": "B", "description": "fuzz"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ticket}");
        ids.push(ticket["id"].as_str().unwrap().to_string());
    }
    for (id, commands) in [
        (&ids[1], &["claim"][..]),
        (&ids[2], &["claim", "approve"][..]),
    ] {
        for command in commands {
            let (status, body) = sam
                .post(&format!("/api/v1/tickets/{id}/{command}"), json!({}))
                .await;
            assert_eq!(status, StatusCode::OK, "{command}: {body}");
        }
    }
    restore_desk::engine::drain(&t.app).await.unwrap();

    // Restore tests: one passed, one failed on a damaged copy (which
    // emails staff), one waiting.
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let start = format!("/api/v1/clusters/{orders}/drills");
    let (status, body) = ada.post(&start, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    restore_desk::engine::drain(&t.app).await.unwrap();
    t.clock.advance(chrono::Duration::hours(1));
    let cluster = restore_desk::store::ClusterId::from(orders);
    for snapshot in t.app.sandbox.snapshots(cluster).await.unwrap() {
        if snapshot.zones.contains(Zone::Az3) {
            let write = AdminWrite::DamageSnapshot {
                snapshot_id: snapshot.id,
                zone: Zone::Az3,
            };
            let commit = Commit::admin(write, None, t.app.now());
            t.app.store.commit(&commit).await.unwrap();
        }
    }
    let (status, body) = ada.post(&start, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    restore_desk::engine::drain(&t.app).await.unwrap();
    t.clock.advance(chrono::Duration::hours(1));
    let (status, body) = ada.post(&start, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, drills) = ada.get("/api/v1/drills").await;
    let passed: Vec<&Value> = drills
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["passed"])
        .collect();
    assert_eq!(passed, [&Value::Null, &json!(false), &json!(true)]);
}

/// Schemathesis against the served document, as a customer and as an admin:
/// every answer must be documented, in its documented type and shape.
async fn the_api_keeps_its_document(postgres: bool) {
    let version = tokio::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .await;
    assert!(
        version.is_ok_and(|v| v.status.success()),
        "schemathesis is not installed: pip install schemathesis (bash .ci/run installs it)"
    );
    let t = spawn_app(postgres, &[]).await;
    some_work(&t).await;
    let scratch = tempfile::tempdir().unwrap();
    // The customer first: the admin's run may change people, alice included.
    for email in ["alice@contoso.example", "ada@admin.example"] {
        let api = Api::signed_in(&t.base, email).await;
        let token = api.token.unwrap();
        let output = tokio::process::Command::new("schemathesis")
            // It keeps a cache of what it found where it runs: not in the tree.
            .current_dir(scratch.path())
            .arg("run")
            .arg(format!("{}/api/v1/openapi.json", t.base))
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_schema_conformance,response_headers_conformance,unsupported_method",
            ])
            .args(["--max-examples", "15"])
            // Signing out would revoke the token the whole run uses
            // (web_flow signs out).
            .args(["--exclude-path", "/api/v1/logout"])
            // Each run starts afresh, with no examples kept from before.
            .args(["--generation-database", "none"])
            .args(["--request-timeout", "20"])
            .arg("--no-color")
            .output()
            .await
            .expect("run schemathesis");
        assert!(
            output.status.success(),
            "schemathesis as {email} ({}):\n{}",
            if postgres { "PostgreSQL" } else { "SQLite" },
            printed(&output)
        );
    }
}

crate::both_databases!(
    input_the_routes_cannot_take_is_refused_alike,
    the_document_is_valid_openapi
);

// The fuzzer blocks a thread while the desk answers it on the other.
mod fuzzed {
    crate::both_databases!(multi_thread; the_api_keeps_its_document);
    use super::the_api_keeps_its_document;
}
