//! Endpoints end to end: a receiver written here, on 127.0.0.1, checks every
//! post's signature with the scheme the API documents (HMAC-SHA256 over
//! `<t>.<body>`, at most five minutes old) and counts event ids, while it
//! refuses connections, answers 500, hangs past the timeout, and at last
//! answers 200. Slack and Teams bodies are checked against those formats'
//! required fields. Both stores.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use common::web::{Api, TestApp, spawn_app};
use restore_desk::clock::Clock;
use restore_desk::notify::relay::{DeliveryPolicy, Relay};
use restore_desk::store::{
    AdminWrite, Commit, EndpointChange, EndpointId, NewOutboxMessage, OutboxQuery,
};

const ALLOW_LOOPBACK: &[&str] = &[
    "--webhook-allow-http-loopback",
    "true",
    "--webhook-timeout-seconds",
    "1",
];

// ------------------------------------------------------------ the receiver

/// What the receiver does with the next post.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Mode {
    Accept = 0,
    Fail = 1,
    Hang = 2,
}

/// One post as it arrived.
#[derive(Clone, Debug)]
struct Arrival {
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

#[derive(Clone)]
struct Receiver {
    mode: Arc<AtomicU8>,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    /// Event ids answered 2xx, with how often.
    accepted: Arc<Mutex<HashMap<String, usize>>>,
    /// Secrets that may sign, per path; `None`: the path's posts are unsigned.
    secrets: Arc<Mutex<HashMap<String, Vec<String>>>>,
    /// The desk's clock, which signatures are checked against.
    clock: restore_desk::clock::ManualClock,
    refused_signatures: Arc<Mutex<Vec<String>>>,
}

type HmacSha256 = Hmac<Sha256>;

/// The documented check, written from the API's description alone:
/// `t=<unix>,v1=<hex>[,v1=<hex>]`, HMAC-SHA256 of `<t>.<body>` with the
/// secret, constant-time compared, `t` within 300 s of now.
fn verify(header: &str, body: &str, secrets: &[&str], now: DateTime<Utc>) -> Result<(), String> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(hex::decode(sig).map_err(|e| e.to_string())?),
            _ => return Err(format!("unreadable part {part:?}")),
        }
    }
    let timestamp = timestamp.ok_or("no timestamp")?;
    if (now.timestamp() - timestamp).abs() > 300 {
        return Err(format!(
            "stale: signed at {timestamp}, now {}",
            now.timestamp()
        ));
    }
    for secret in secrets {
        for signature in &signatures {
            let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(format!("{timestamp}.{body}").as_bytes());
            if mac.verify_slice(signature).is_ok() {
                return Ok(());
            }
        }
    }
    Err("no signature matches".into())
}

async fn receive(
    State(receiver): State<Receiver>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (AxumStatus, String) {
    let body = String::from_utf8(body.to_vec()).unwrap();
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    receiver.arrivals.lock().unwrap().push(Arrival {
        path: path.clone(),
        headers: headers.clone(),
        body: body.clone(),
    });
    match Mode::from(receiver.mode.load(Ordering::SeqCst)) {
        Mode::Fail => return (AxumStatus::INTERNAL_SERVER_ERROR, "receiver is down".into()),
        Mode::Hang => {
            tokio::time::sleep(StdDuration::from_secs(30)).await;
            return (AxumStatus::OK, String::new());
        }
        Mode::Accept => {}
    }
    let secrets = receiver.secrets.lock().unwrap().get(&path).cloned();
    if let Some(secrets) = secrets {
        let header = headers
            .get("restore-desk-signature")
            .cloned()
            .unwrap_or_default();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        if let Err(why) = verify(&header, &body, &secrets, receiver.clock.now()) {
            receiver
                .refused_signatures
                .lock()
                .unwrap()
                .push(why.clone());
            return (AxumStatus::UNAUTHORIZED, why);
        }
    }
    let id = match headers.get("restore-desk-event-id") {
        Some(id) => id.clone(),
        // Chats have no event id header: the body is the identity.
        None => body.clone(),
    };
    *receiver.accepted.lock().unwrap().entry(id).or_default() += 1;
    (AxumStatus::OK, "ok".into())
}

impl From<u8> for Mode {
    fn from(value: u8) -> Mode {
        match value {
            0 => Mode::Accept,
            1 => Mode::Fail,
            _ => Mode::Hang,
        }
    }
}

impl Receiver {
    fn new(clock: restore_desk::clock::ManualClock) -> Receiver {
        Receiver {
            mode: Arc::new(AtomicU8::new(Mode::Accept as u8)),
            arrivals: Arc::default(),
            accepted: Arc::default(),
            secrets: Arc::default(),
            clock,
            refused_signatures: Arc::default(),
        }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Serves on `port` from now on.
    async fn listen(&self, port: u16) {
        let app = axum::Router::new()
            .route("/{path}", axum::routing::post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the receiver's port is free again");
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
    }

    fn arrivals(&self, path: &str) -> Vec<Arrival> {
        self.arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.path == path)
            .cloned()
            .collect()
    }
}

/// A port nothing listens on (yet): connections to it are refused.
fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

fn relay(t: &TestApp) -> Relay {
    Relay::new(
        t.app.clone(),
        t.app.mailer.clone(),
        DeliveryPolicy::default(),
    )
    .unwrap()
}

async fn register(api: &Api, kind: &str, url: &str, events: &[&str]) -> (String, Option<String>) {
    let (status, body) = api
        .post(
            "/api/v1/endpoints",
            json!({"kind": kind, "url": url, "events": events}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["endpoint"]["id"].as_str().unwrap().to_string(),
        body["secret"].as_str().map(str::to_string),
    )
}

async fn deliveries(api: &Api, id: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/api/v1/endpoints/{id}/deliveries")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

// ------------------------------------------------------------ the formats

/// Slack's Block Kit, the fields a message must have: fallback `text` or
/// `blocks`; every block a known `type`; a section's `text` an object with
/// `type` and `text`; a context's elements; a button's `text` plain_text
/// and its `url` at most 3000 characters.
fn check_slack(body: &Value) {
    assert!(
        body["text"].is_string() || body["blocks"].is_array(),
        "{body}"
    );
    let blocks = body["blocks"].as_array().expect("blocks");
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    for block in blocks {
        match block["type"].as_str().expect("a block type") {
            "section" => {
                let text = &block["text"];
                assert!(matches!(
                    text["type"].as_str(),
                    Some("mrkdwn" | "plain_text")
                ));
                let words = text["text"].as_str().unwrap();
                assert!(!words.is_empty() && words.len() <= 3000);
            }
            "context" => {
                let elements = block["elements"].as_array().unwrap();
                assert!(!elements.is_empty() && elements.len() <= 10);
                for e in elements {
                    assert!(matches!(
                        e["type"].as_str(),
                        Some("mrkdwn" | "plain_text" | "image")
                    ));
                }
            }
            "actions" => {
                for e in block["elements"].as_array().unwrap() {
                    assert_eq!(e["type"], "button");
                    assert_eq!(e["text"]["type"], "plain_text");
                    assert!(e["text"]["text"].as_str().unwrap().len() <= 75);
                    let url = e["url"].as_str().unwrap();
                    assert!(url.starts_with("http") && url.len() <= 3000);
                }
            }
            other => panic!("unexpected block {other}"),
        }
    }
}

/// A Teams workflow message: `type: message` with attachments, each an
/// Adaptive Card (`contentType`, `content.type`, `version`, `body` of
/// typed elements, actions with `type`, `title`, `url`).
fn check_teams(body: &Value) {
    assert_eq!(body["type"], "message");
    let attachments = body["attachments"].as_array().unwrap();
    assert!(!attachments.is_empty());
    for a in attachments {
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        let card = &a["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert!(card["version"].as_str().unwrap().starts_with("1."));
        assert!(
            card["$schema"]
                .as_str()
                .unwrap()
                .contains("adaptivecards.io")
        );
        for element in card["body"].as_array().unwrap() {
            assert_eq!(element["type"], "TextBlock");
            assert!(!element["text"].as_str().unwrap().is_empty());
        }
        for action in card["actions"].as_array().unwrap() {
            assert_eq!(action["type"], "Action.OpenUrl");
            assert!(action["title"].is_string());
            assert!(action["url"].as_str().unwrap().starts_with("http"));
        }
    }
}

// ------------------------------------------------------------ the tests

/// Every event reaches a webhook and two chats exactly once, across a
/// receiver that first refuses connections, then answers 500, then hangs
/// past the timeout; every signature checks out with the documented scheme.
async fn every_event_is_delivered_once_across_a_receiver_outage(postgres: bool) {
    let t = spawn_app(postgres, ALLOW_LOOPBACK).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let receiver = Receiver::new(t.clock.clone());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");

    let (hook, secret) = register(
        &alice,
        "webhook",
        &format!("{base}/hook"),
        &["ticket.filed", "ticket.cancelled"],
    )
    .await;
    let secret = secret.expect("a webhook's secret, shown once");
    receiver
        .secrets
        .lock()
        .unwrap()
        .insert("hook".into(), vec![secret]);
    let (slack, none) = register(&ada, "slack", &format!("{base}/slack"), &["ticket.filed"]).await;
    assert_eq!(none, None, "a chat has no secret");
    let (teams, _) = register(&ada, "teams", &format!("{base}/teams"), &["ticket.filed"]).await;
    // The secret is not shown again.
    let (_, shown) = alice.get(&format!("/api/v1/endpoints/{hook}")).await;
    assert!(shown.get("secret").is_none(), "{shown}");

    // Two filings and a cancellation: three events for the webhook, two
    // for each chat.
    let first = t.file_request(&alice, "orders-prod", "hooks-one").await;
    t.file_request(&alice, "orders-prod", "hooks-two").await;
    let (status, body) = alice
        .post(&format!("/api/v1/tickets/{first}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let relay = relay(&t);

    // Refused connections.
    relay.drain().await.unwrap();
    let log = deliveries(&alice, &hook).await;
    assert_eq!(log.len(), 3, "{log:?}");
    for post in &log {
        assert_eq!(post["status"], "pending", "{post}");
        assert_eq!(post["attempts"], 1);
        assert!(
            post["last_error"].as_str().unwrap().contains("connect"),
            "{post}"
        );
    }

    // 500s.
    receiver.set(Mode::Fail);
    receiver.listen(port).await;
    t.clock.advance(Duration::hours(2));
    relay.drain().await.unwrap();
    assert_eq!(receiver.arrivals("hook").len(), 3);
    for post in deliveries(&alice, &hook).await {
        assert_eq!(post["status"], "pending");
        assert!(
            post["last_error"].as_str().unwrap().contains("HTTP 500"),
            "{post}"
        );
    }

    // A hang past the timeout: each attempt ends at the timeout, unanswered.
    receiver.set(Mode::Hang);
    t.clock.advance(Duration::hours(2));
    relay.drain().await.unwrap();
    for post in deliveries(&alice, &hook).await {
        assert_eq!(post["status"], "pending");
        assert_eq!(post["attempts"], 3);
        assert!(
            post["last_error"].as_str().unwrap().contains("no answer"),
            "{post}"
        );
    }

    // Back: everything arrives, once.
    receiver.set(Mode::Accept);
    t.clock.advance(Duration::hours(2));
    relay.drain().await.unwrap();
    t.clock.advance(Duration::hours(2));
    relay.drain().await.unwrap();
    assert_eq!(
        receiver.refused_signatures.lock().unwrap().clone(),
        Vec::<String>::new()
    );
    let accepted = receiver.accepted.lock().unwrap().clone();
    let log = deliveries(&alice, &hook).await;
    assert_eq!(log.len(), 3);
    for post in &log {
        assert_eq!(post["status"], "sent", "{post}");
        assert_eq!(post["attempts"], 4);
        let id = post["id"].as_str().unwrap();
        assert_eq!(accepted.get(id), Some(&1), "event {id} accepted once");
    }
    let events: Vec<&str> = log.iter().map(|p| p["event"].as_str().unwrap()).collect();
    assert_eq!(
        events.iter().filter(|e| **e == "ticket.filed").count(),
        2,
        "{events:?}"
    );
    assert!(events.contains(&"ticket.cancelled"));
    // The body names the event, its id and the ticket, with the reference
    // filled in.
    let arrivals = receiver.arrivals("hook");
    let last = arrivals.last().unwrap();
    let body: Value = serde_json::from_str(&last.body).unwrap();
    assert_eq!(
        body["id"].as_str(),
        last.headers
            .get("restore-desk-event-id")
            .map(String::as_str)
    );
    assert!(
        body["data"]["ticket"]["reference"]
            .as_str()
            .unwrap()
            .starts_with("RD-")
    );
    assert!(!last.body.contains("pending"), "{}", last.body);

    for (chat, path, check) in [
        (&slack, "slack", check_slack as fn(&Value)),
        (&teams, "teams", check_teams),
    ] {
        let log = deliveries(&ada, chat).await;
        assert_eq!(log.len(), 2, "{path}: {log:?}");
        assert!(
            log.iter()
                .all(|p| p["status"] == "sent" && p["attempts"] == 4)
        );
        let delivered: Vec<Arrival> = receiver.arrivals(path);
        // Refused, 500, hang, then accepted: three times each.
        assert_eq!(delivered.len(), 2 * 3, "{path}");
        for arrival in &delivered {
            assert!(!arrival.headers.contains_key("restore-desk-signature"));
            check(&serde_json::from_str(&arrival.body).unwrap());
        }
        let bodies: Vec<String> = delivered.iter().map(|a| a.body.clone()).collect();
        for body in &bodies {
            assert!(body.contains("RD-"), "{body}");
            assert_eq!(accepted.get(body), Some(&1), "{path}: accepted once");
        }
    }
}

/// The receiver's check refuses what was not signed with the secret, what
/// was changed on the way, and what is replayed after five minutes; a
/// rotated secret signs beside the old one until the overlap ends.
async fn forged_stale_and_rotated_signatures(postgres: bool) {
    let t = spawn_app(postgres, ALLOW_LOOPBACK).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let receiver = Receiver::new(t.clock.clone());
    let port = free_port();
    receiver.listen(port).await;
    let (hook, secret) = register(
        &alice,
        "webhook",
        &format!("http://127.0.0.1:{port}/hook"),
        &["ticket.filed"],
    )
    .await;
    let secret = secret.unwrap();
    receiver
        .secrets
        .lock()
        .unwrap()
        .insert("hook".into(), vec![secret.clone()]);
    let (status, body) = alice
        .post(&format!("/api/v1/endpoints/{hook}/test"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    relay(&t).drain().await.unwrap();
    let posted = receiver.arrivals("hook").pop().expect("the test event");
    let body: Value = serde_json::from_str(&posted.body).unwrap();
    assert_eq!(body["type"], "endpoint.test");
    let header = posted.headers["restore-desk-signature"].clone();
    let now = t.clock.now();
    assert_eq!(
        verify(&header, &posted.body, &[secret.as_str()], now),
        Ok(())
    );
    // Forged: another secret, or the body changed.
    assert!(verify(&header, &posted.body, &["whsec_guess"], now).is_err());
    let altered = posted.body.replace("endpoint.test", "ticket.filed");
    assert!(verify(&header, &altered, &[secret.as_str()], now).is_err());
    // Stale: the same post replayed six minutes later.
    assert!(
        verify(
            &header,
            &posted.body,
            &[secret.as_str()],
            now + Duration::minutes(6)
        )
        .unwrap_err()
        .contains("stale")
    );

    // Rotation: both secrets sign during the overlap, then only the new.
    let (status, rotated) = alice
        .post(&format!("/api/v1/endpoints/{hook}/rotate"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert_eq!(rotated["endpoint"]["secret_version"], 2);
    alice
        .post(&format!("/api/v1/endpoints/{hook}/test"), json!({}))
        .await;
    relay(&t).drain().await.unwrap();
    let during = receiver.arrivals("hook").pop().unwrap();
    let header = &during.headers["restore-desk-signature"];
    assert_eq!(header.matches("v1=").count(), 2, "{header}");
    let now = t.clock.now();
    assert_eq!(
        verify(header, &during.body, &[secret.as_str()], now),
        Ok(())
    );
    assert_eq!(
        verify(header, &during.body, &[new_secret.as_str()], now),
        Ok(())
    );
    t.clock.advance(Duration::hours(25));
    alice
        .post(&format!("/api/v1/endpoints/{hook}/test"), json!({}))
        .await;
    relay(&t).drain().await.unwrap();
    let after = receiver.arrivals("hook").pop().unwrap();
    let header = &after.headers["restore-desk-signature"];
    let now = t.clock.now();
    assert_eq!(header.matches("v1=").count(), 1, "{header}");
    assert!(verify(header, &after.body, &[secret.as_str()], now).is_err());
    assert_eq!(
        verify(header, &after.body, &[new_secret.as_str()], now),
        Ok(())
    );
}

/// A commit that fails writes none of its posts.
async fn a_rollback_writes_no_delivery(postgres: bool) {
    let t = spawn_app(postgres, ALLOW_LOOPBACK).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let (hook, _) = register(
        &alice,
        "webhook",
        &format!("http://127.0.0.1:{}/hook", free_port()),
        &["ticket.filed"],
    )
    .await;
    let id: EndpointId = hook.parse().unwrap();
    let now = t.clock.now();
    let mut commit = Commit::admin(
        // Refused: no such endpoint, so the whole commit is.
        AdminWrite::ChangeEndpoint {
            id: EndpointId::new(),
            change: EndpointChange::Enable,
        },
        None,
        now,
    );
    commit.outbox.push(NewOutboxMessage {
        id: uuid::Uuid::new_v4(),
        dedupe_key: "rolled-back".into(),
        ticket_id: None,
        kind: "endpoint.test".into(),
        recipient: "http://127.0.0.1/hook".into(),
        subject: "endpoint.test".into(),
        text_body: "{}".into(),
        html_body: String::new(),
        endpoint_id: Some(id),
    });
    assert!(t.app.store.commit(&commit).await.is_err());
    assert_eq!(deliveries(&alice, &hook).await, Vec::<Value>::new());
    // A filing refused by validation posts nothing either.
    let orders = t.cluster_id("orders-prod").await;
    let (status, _) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders, "target_time": "2020-01-01T00:00:00Z",
                   "new_cluster_name": "too-old", "severity": "B", "description": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(deliveries(&alice, &hook).await, Vec::<Value>::new());
}

/// An endpoint whose posts fail for the whole day is disabled, its owner
/// is emailed what happened and what to do, and nothing more is posted.
async fn an_endpoint_failing_for_a_day_is_disabled_and_its_owner_told(postgres: bool) {
    let t = spawn_app(postgres, ALLOW_LOOPBACK).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let (hook, _) = register(
        &alice,
        "webhook",
        &format!("http://127.0.0.1:{}/hook", free_port()),
        &["ticket.filed"],
    )
    .await;
    t.file_request(&alice, "orders-prod", "hooks-down").await;
    let relay = relay(&t);
    for _ in 0..30 {
        relay.drain().await.unwrap();
        t.clock.advance(Duration::hours(1));
    }
    let (_, endpoint) = alice.get(&format!("/api/v1/endpoints/{hook}")).await;
    assert_eq!(endpoint["enabled"], false, "{endpoint}");
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("could not connect"),
        "{endpoint}"
    );
    let log = deliveries(&alice, &hook).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "failed");
    assert!(
        log[0]["last_error"].as_str().unwrap().contains("gave up"),
        "{:?}",
        log[0]
    );
    // Alice is told by email what happened and what to do, and the relay
    // sends it like any other.
    let told = t
        .app
        .store
        .outbox(&OutboxQuery {
            status: None,
            ticket_id: None,
            limit: 100,
        })
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.kind == "endpoint_disabled")
        .expect("the owner's email");
    assert_eq!(told.recipient, "alice@contoso.example");
    assert!(told.subject.contains("stopped posting"), "{}", told.subject);
    assert!(
        told.text_body.contains("could not connect"),
        "{}",
        told.text_body
    );
    assert!(
        told.text_body.contains("What happens next"),
        "{}",
        told.text_body
    );
    relay.drain().await.unwrap();
    let sent = std::fs::read_dir(&t.app.settings.mail_dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|m| m.contains("Subject: Restore Desk stopped posting"))
        .count();
    assert_eq!(sent, 1);
    // Disabled, it gets nothing new.
    t.file_request(&alice, "orders-prod", "hooks-after").await;
    assert_eq!(deliveries(&alice, &hook).await.len(), 1);
    // Enabled again, it does.
    let (status, body) = alice
        .send(
            Method::PATCH,
            &format!("/api/v1/endpoints/{hook}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["enabled"], true);
    t.file_request(&alice, "orders-prod", "hooks-again").await;
    assert_eq!(deliveries(&alice, &hook).await.len(), 2);
}

/// Bad endpoints are refused with the field and the reason, and nothing is
/// stored; each owner sees only theirs.
async fn bad_endpoints_are_refused_and_nothing_is_stored(postgres: bool) {
    let t = spawn_app(postgres, &[]).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let cases: &[(Value, &str, &str)] = &[
        (
            json!({"kind": "webhook", "url": "http://hooks.example.com/x", "events": ["ticket.filed"]}),
            "url",
            "https",
        ),
        // Plain HTTP to this machine only with the setting, which is off here.
        (
            json!({"kind": "webhook", "url": "http://127.0.0.1:9/x", "events": ["ticket.filed"]}),
            "url",
            "https",
        ),
        (
            json!({"kind": "webhook", "url": "https://10.0.0.8/x", "events": ["ticket.filed"]}),
            "url",
            "private",
        ),
        (
            json!({"kind": "webhook", "url": "https://169.254.169.254/latest", "events": ["ticket.filed"]}),
            "url",
            "link-local",
        ),
        (
            json!({"kind": "webhook", "url": "https://[::1]/x", "events": ["ticket.filed"]}),
            "url",
            "loopback",
        ),
        (
            json!({"kind": "webhook", "url": "https://localhost/x", "events": ["ticket.filed"]}),
            "url",
            "loopback",
        ),
        (
            json!({"kind": "webhook", "url": format!("https://example.com/{}", "a".repeat(2100)), "events": ["ticket.filed"]}),
            "url",
            "longer",
        ),
        (
            json!({"kind": "slack", "url": "https://93.184.216.34/x", "events": ["ticket.filed"]}),
            "kind",
            "staff",
        ),
        (
            json!({"kind": "pager", "url": "https://93.184.216.34/x", "events": ["ticket.filed"]}),
            "kind",
            "webhook",
        ),
        (
            json!({"kind": "webhook", "url": "https://93.184.216.34/x", "events": []}),
            "events",
            "at least one",
        ),
        (
            json!({"kind": "webhook", "url": "https://93.184.216.34/x", "events": ["ticket.nope"]}),
            "events",
            "unknown",
        ),
        (
            json!({"kind": "webhook", "url": "https://93.184.216.34/x", "events": ["ticket.deadline_near"]}),
            "events",
            "staff",
        ),
    ];
    for (body, field, words) in cases {
        let (status, answer) = alice.post("/api/v1/endpoints", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], *field, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{body}: {message}");
    }
    let (_, list) = alice.get("/api/v1/endpoints").await;
    assert_eq!(list, json!([]));

    // Support engineers manage no endpoints; another subscription's is not found.
    let sam = Api::signed_in(&t.base, "sam@support.example").await;
    let (status, _) = sam.get("/api/v1/endpoints").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = alice
        .post(
            "/api/v1/endpoints",
            json!({"kind": "webhook", "url": "https://93.184.216.34/hook", "events": ["job.failed"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["endpoint"]["id"].as_str().unwrap();
    let bob = Api::signed_in(&t.base, "bob@fabrikam.example").await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/endpoints/{id}")),
        (Method::GET, format!("/api/v1/endpoints/{id}/deliveries")),
        (Method::POST, format!("/api/v1/endpoints/{id}/test")),
        (Method::POST, format!("/api/v1/endpoints/{id}/rotate")),
        (Method::DELETE, format!("/api/v1/endpoints/{id}")),
    ] {
        let (status, _) = bob.send(method.clone(), &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (_, bobs) = bob.get("/api/v1/endpoints").await;
    assert_eq!(bobs, json!([]));
    // The audit trail keeps who registered what; admins read it.
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let (_, audit) = ada.get("/api/v1/audit").await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "endpoint_create"),
        "{audit}"
    );
    let (status, _) = alice
        .send(Method::DELETE, &format!("/api/v1/endpoints/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = alice.get("/api/v1/endpoints").await;
    assert_eq!(list, json!([]));
}

/// A restore posts `job.started`, a `job.progress` at each step it moves on
/// to, with a progress that never falls, and `job.succeeded`.
async fn a_restore_posts_its_steps(postgres: bool) {
    let t = spawn_app(postgres, ALLOW_LOOPBACK).await;
    let receiver = Receiver::new(t.clock.clone());
    let port = free_port();
    receiver.listen(port).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let sam = Api::signed_in(&t.base, "sam@support.example").await;
    let (_, secret) = register(
        &alice,
        "webhook",
        &format!("http://127.0.0.1:{port}/hook"),
        &["job.started", "job.progress", "job.succeeded"],
    )
    .await;
    receiver
        .secrets
        .lock()
        .unwrap()
        .insert("hook".into(), vec![secret.unwrap()]);
    let id = t.file_request(&alice, "orders-prod", "hooks-steps").await;
    for command in ["claim", "approve"] {
        let (status, body) = sam
            .post(&format!("/api/v1/tickets/{id}/{command}"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{command}: {body}");
    }
    restore_desk::engine::drain(&t.app).await.unwrap();
    relay(&t).drain().await.unwrap();
    assert_eq!(receiver.refused_signatures.lock().unwrap().len(), 0);
    let bodies: Vec<Value> = receiver
        .arrivals("hook")
        .iter()
        .map(|a| serde_json::from_str(&a.body).unwrap())
        .collect();
    let events: Vec<(String, Option<String>, Option<i64>)> = bodies
        .iter()
        .map(|b| {
            (
                b["type"].as_str().unwrap().to_string(),
                b["data"]["job"]["state"].as_str().map(str::to_string),
                b["data"]["job"]["progress"].as_i64(),
            )
        })
        .collect();
    // One post per step moved on to, and by progress they come in step
    // order: the progress they report rises with every step.
    let mut steps: Vec<(i64, &str)> = events
        .iter()
        .filter(|e| e.0 == "job.progress")
        .map(|e| (e.2.unwrap(), e.1.as_deref().unwrap()))
        .collect();
    steps.sort();
    let in_order: Vec<&str> = steps.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        in_order,
        [
            "restoring_snapshot",
            "replaying_log",
            "verifying",
            "finalizing"
        ],
        "{events:?}"
    );
    assert!(steps.windows(2).all(|w| w[0].0 < w[1].0), "{steps:?}");
    assert!(steps.iter().all(|(p, _)| (0..100).contains(p)), "{steps:?}");
    let kinds: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "job.started").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "job.succeeded").count(),
        1,
        "{kinds:?}"
    );
}

/// The integrations page: the secret shows once, the delivery log shows
/// what the receiver answered, removing asks for confirmation, and a
/// refusal keeps what was typed.
async fn the_integrations_pages(postgres: bool) {
    let t = spawn_app(postgres, ALLOW_LOOPBACK).await;
    let receiver = Receiver::new(t.clock.clone());
    let port = free_port();
    receiver.listen(port).await;
    let mut alice = t.browser();
    alice.sign_in("alice@contoso.example").await;
    let page = alice.page("/account/endpoints").await;
    assert!(page.contains("None yet"), "{page}");
    assert!(
        !page.contains("value=\"slack\""),
        "customers get no chat kinds"
    );

    // Refused: the field says why, the URL typed stays.
    let refused = alice
        .post(
            "/account/endpoints",
            &[
                ("kind", "webhook"),
                ("url", "http://hooks.example.com/x"),
                ("events", "ticket.filed"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.unwrap();
    assert!(html.contains("Use an https:// URL"), "{html}");
    assert!(
        html.contains("value=\"http://hooks.example.com/x\""),
        "{html}"
    );

    let url = format!("http://127.0.0.1:{port}/hook");
    let made = alice
        .post(
            "/account/endpoints",
            &[
                ("kind", "webhook"),
                ("url", &url),
                ("events", "ticket.filed"),
                ("events", "job.failed"),
            ],
        )
        .await;
    assert_eq!(made.status(), StatusCode::CREATED);
    let html = made.text().await.unwrap();
    let start = html.find("whsec_").expect("the secret, shown once");
    let secret: String = html[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let list = alice.page("/account/endpoints").await;
    assert!(!list.contains(&secret), "shown again");
    assert!(list.contains("ticket.filed, job.failed"), "{list}");
    let (_, endpoints) = Api::signed_in(&t.base, "alice@contoso.example")
        .await
        .get("/api/v1/endpoints")
        .await;
    let id = endpoints[0]["id"].as_str().unwrap().to_string();
    receiver
        .secrets
        .lock()
        .unwrap()
        .insert("hook".into(), vec![secret]);

    // A test event, delivered and logged.
    alice.page(&format!("/account/endpoints/{id}")).await;
    let sent = alice
        .post(&format!("/account/endpoints/{id}/test"), &[])
        .await;
    let detail = alice.follow(sent).await;
    assert!(detail.contains("A test event is on its way"), "{detail}");
    relay(&t).drain().await.unwrap();
    let detail = alice.page(&format!("/account/endpoints/{id}")).await;
    assert!(detail.contains("endpoint.test"), "{detail}");
    assert!(detail.contains("delivered"), "{detail}");
    assert_eq!(receiver.accepted.lock().unwrap().len(), 1);

    // Bob cannot see it; removing needs the box ticked.
    let mut bob = t.browser();
    bob.sign_in("bob@fabrikam.example").await;
    assert_eq!(
        bob.get(&format!("/account/endpoints/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let unconfirmed = alice
        .post(&format!("/account/endpoints/{id}/delete"), &[])
        .await;
    assert_eq!(unconfirmed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unconfirmed.text().await.unwrap().contains("Tick the box"));
    let removed = alice
        .post(
            &format!("/account/endpoints/{id}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    let list = alice.follow(removed).await;
    assert!(
        list.contains("Endpoint removed") && list.contains("None yet"),
        "{list}"
    );
}

both_databases!(
    multi_thread;
    every_event_is_delivered_once_across_a_receiver_outage,
    forged_stale_and_rotated_signatures,
    a_rollback_writes_no_delivery,
    an_endpoint_failing_for_a_day_is_disabled_and_its_owner_told,
    bad_endpoints_are_refused_and_nothing_is_stored,
    the_integrations_pages,
    a_restore_posts_its_steps,
);
