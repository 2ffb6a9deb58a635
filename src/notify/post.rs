//! Posts to endpoints: the bodies (our signed JSON, Slack's Block Kit,
//! Teams' Adaptive Card), the signature scheme, and the HTTP client that
//! delivers an outbox row to its endpoint.
//!
//! ## The signature
//! Every post to a `webhook` endpoint carries
//! `Restore-Desk-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is
//! HMAC-SHA256, keyed with the endpoint's secret, of `<t>.<body>` (the
//! timestamp, a full stop, and the body's exact bytes). While a rotated
//! secret overlaps the one before, a second `v1=` signs with the old one.
//! A receiver recomputes the HMAC, compares it in constant time with any
//! `v1`, and refuses a timestamp more than five minutes from its clock.
//! `Restore-Desk-Event-Id` is the event's id, the same at every retry:
//! a receiver that saw it already answers 2xx and ignores it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use url::Url;

use super::transport::SendError;
use crate::domain::endpoint::{Endpoint, EndpointKind, EventType, UrlPolicy, check_addresses};
pub use crate::secret_key::SecretKey;
use crate::secret_key::hmac_hex;
use crate::store::{DynStore, OutboxMessage};

/// The header names of a signed post.
pub const SIGNATURE_HEADER: &str = "Restore-Desk-Signature";
pub const EVENT_ID_HEADER: &str = "Restore-Desk-Event-Id";
pub const EVENT_TYPE_HEADER: &str = "Restore-Desk-Event-Type";

/// How far a receiver should let a signature's timestamp be from its clock.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

/// The most of a receiver's answer kept in the delivery log.
const ANSWER_KEPT: usize = 200;

/// The signature header's value for `body` posted at `timestamp`.
pub fn signature_header(secrets: &[String], timestamp: i64, body: &str) -> String {
    let signed = format!("{timestamp}.{body}");
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&hmac_hex(secret.as_bytes(), signed.as_bytes()));
    }
    header
}

/// What a post says about a ticket, for every kind of endpoint.
#[derive(Debug, Clone)]
pub struct TicketFacts<'a> {
    pub id: String,
    pub reference: &'a str,
    pub state: &'a str,
    pub severity: &'a str,
    pub source_cluster: &'a str,
    pub target_time: DateTime<Utc>,
    /// The ticket's page for the endpoint's readers.
    pub link: String,
}

/// What one post says, before it is put in an endpoint's format.
#[derive(Debug, Clone, PartialEq)]
pub struct PostContent {
    pub event: EventType,
    /// One line a person reads: what happened to which request.
    pub headline: String,
    pub detail: String,
    /// Where a person reading it goes next.
    pub link: String,
    /// The signed body's `data`.
    pub data: Value,
}

impl PostContent {
    pub fn about_ticket(event: EventType, facts: &TicketFacts<'_>) -> PostContent {
        let what = match event {
            EventType::TicketFiled => "filed",
            EventType::TicketInformationRequested => "needs information from the customer",
            EventType::TicketMessage => "has a new reply",
            EventType::TicketApproved => "approved",
            EventType::TicketRejected => "rejected",
            EventType::TicketCancelled => "cancelled",
            EventType::TicketDeadlineNear => "is near its deadline",
            EventType::TicketReopened => "reopened: the customer says the data is not right",
            EventType::TicketTargetChanged => "has a new target",
            EventType::JobStarted => "restore started",
            EventType::JobProgress => "restore moved on",
            EventType::JobSucceeded => "restore completed",
            EventType::JobFailed => "restore failed",
            EventType::JobPaused => "restored copy paused for the customer's decision",
            EventType::TicketDecision => "the customer decided about the restored copy",
            EventType::EndpointTest => "test event",
        };
        PostContent {
            event,
            headline: format!(
                "{} {what}: {} to {}",
                facts.reference,
                facts.source_cluster,
                facts.target_time.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            detail: format!("Severity {} · {}", facts.severity, facts.state),
            link: facts.link.clone(),
            data: json!({
                "ticket": {
                    "id": facts.id,
                    "reference": facts.reference,
                    "state": facts.state,
                    "severity": facts.severity,
                    "source_cluster": facts.source_cluster,
                    "target_time": facts.target_time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "url": facts.link,
                }
            }),
        }
    }

    /// A restore moving on to `step` (its label) at `percent`.
    pub fn progress(facts: &TicketFacts<'_>, step: &str, state: &str, percent: i64) -> PostContent {
        let mut content = PostContent::about_ticket(EventType::JobProgress, facts);
        content.headline = format!("{}: {step} ({percent} %)", facts.reference);
        content.data["job"] = json!({ "state": state, "step": step, "progress": percent });
        content
    }

    /// What "send a test event" posts.
    pub fn test(link: String) -> PostContent {
        PostContent {
            event: EventType::EndpointTest,
            headline: "Test event from Restore Desk".into(),
            detail: "This endpoint receives the desk's notices.".into(),
            data: json!({ "message": "This endpoint receives the desk's notices.", "url": link }),
            link,
        }
    }
}

/// The body of a signed post.
pub fn event_body(id: uuid::Uuid, at: DateTime<Utc>, content: &PostContent) -> Value {
    json!({
        "id": id,
        "type": content.event.as_str(),
        "created_at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": content.data,
    })
}

/// A Slack incoming webhook's message: fallback text, a section, a context
/// line and a button.
pub fn slack_body(content: &PostContent) -> Value {
    json!({
        "text": content.headline,
        "blocks": [
            {
                "type": "section",
                "text": { "type": "mrkdwn", "text": format!("*{}*", slack_escape(&content.headline)) }
            },
            {
                "type": "context",
                "elements": [
                    { "type": "mrkdwn", "text": slack_escape(&content.detail) }
                ]
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": { "type": "plain_text", "text": "Open in Restore Desk" },
                        "url": content.link
                    }
                ]
            }
        ]
    })
}

/// Slack's mrkdwn reads `&`, `<` and `>` as markup.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Teams workflow webhook's message: one Adaptive Card with the headline
/// and a link.
pub fn teams_body(content: &PostContent) -> Value {
    json!({
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        { "type": "TextBlock", "text": content.headline, "weight": "Bolder", "wrap": true },
                        { "type": "TextBlock", "text": content.detail, "isSubtle": true, "wrap": true }
                    ],
                    "actions": [
                        { "type": "Action.OpenUrl", "title": "Open in Restore Desk", "url": content.link }
                    ]
                }
            }
        ]
    })
}

/// The exact body an endpoint of `kind` is posted.
pub fn body_for(
    kind: EndpointKind,
    id: uuid::Uuid,
    at: DateTime<Utc>,
    content: &PostContent,
) -> String {
    match kind {
        EndpointKind::Webhook => event_body(id, at, content),
        EndpointKind::Slack => slack_body(content),
        EndpointKind::Teams => teams_body(content),
    }
    .to_string()
}

/// Delivers outbox rows to their endpoints over HTTP(S).
pub struct Poster {
    store: DynStore,
    key: SecretKey,
    policy: UrlPolicy,
    /// The whole exchange — resolve, connect, send, answer — ends within this.
    timeout: StdDuration,
}

impl Poster {
    pub fn new(store: DynStore, key: SecretKey, policy: UrlPolicy, timeout: StdDuration) -> Poster {
        Poster {
            store,
            key,
            policy,
            timeout,
        }
    }

    /// Posts `message` to its endpoint. An endpoint removed, disabled, or
    /// pointing at an address it may not is a permanent failure; no answer
    /// in time, a refused connection and any answer but 2xx are transient.
    pub async fn post(&self, message: &OutboxMessage, now: DateTime<Utc>) -> Result<(), SendError> {
        let Some(endpoint_id) = message.endpoint_id else {
            return Err(SendError::Permanent("not a post to an endpoint".into()));
        };
        let endpoint = match self.store.endpoint(endpoint_id).await {
            Ok(Some(endpoint)) => endpoint,
            Ok(None) => return Err(SendError::Permanent("the endpoint was removed".into())),
            Err(error) => {
                return Err(SendError::Transient(format!(
                    "the endpoint cannot be read: {error}"
                )));
            }
        };
        if !endpoint.active() {
            return Err(SendError::Permanent(format!(
                "the endpoint is disabled: {}",
                endpoint
                    .disabled_reason
                    .as_deref()
                    .unwrap_or("by its owner")
            )));
        }
        match tokio::time::timeout(self.timeout, self.exchange(&endpoint, message, now)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(SendError::Transient(format!(
                "no answer within {} seconds",
                self.timeout.as_secs_f64()
            ))),
        }
    }

    async fn exchange(
        &self,
        endpoint: &Endpoint,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<(), SendError> {
        let url = crate::domain::endpoint::parse_url(&endpoint.url, self.policy)
            .map_err(SendError::Permanent)?;
        let address = self.resolve(&url).await?;
        // The address just checked is the one connected to: a name that
        // resolves differently a moment later cannot lead inside.
        let host = url.host_str().unwrap_or_default().to_string();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .resolve(&host, address)
            .user_agent(concat!("restore-desk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Transient(format!("no HTTP client: {e}")))?;
        let mut request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(message.text_body.clone());
        if endpoint.kind == EndpointKind::Webhook {
            let secrets: Vec<String> = endpoint
                .signing_versions(now)
                .into_iter()
                .map(|v| self.key.endpoint_secret(endpoint.id, v))
                .collect();
            request = request
                .header(
                    SIGNATURE_HEADER,
                    signature_header(&secrets, now.timestamp(), &message.text_body),
                )
                .header(EVENT_ID_HEADER, message.id.to_string())
                .header(EVENT_TYPE_HEADER, message.subject.as_str());
        }
        let response = request.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "no answer in time"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "the exchange failed"
            };
            SendError::Transient(format!("{what}: {}", error_chain(&e)))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let answer = response.text().await.unwrap_or_default();
        let answer: String = answer.chars().take(ANSWER_KEPT).collect();
        let answer = answer.trim();
        Err(SendError::Transient(if answer.is_empty() {
            format!("answered HTTP {}", status.as_u16())
        } else {
            format!("answered HTTP {}: {answer}", status.as_u16())
        }))
    }

    /// The address to connect to, checked against the policy.
    async fn resolve(&self, url: &Url) -> Result<SocketAddr, SendError> {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<SocketAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            _ => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| SendError::Transient(format!("{host} does not resolve: {e}")))?
                .collect(),
        };
        let ips: Vec<IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
        check_addresses(&ips, url, self.policy).map_err(SendError::Permanent)?;
        Ok(addresses[0])
    }
}

/// An error with its causes, which say what went wrong (refused, reset).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_and_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let header = signature_header(&["Jefe".into()], 0, "what do ya want for nothing?");
        let expected_over = hmac_hex(b"Jefe", b"0.what do ya want for nothing?");
        assert_eq!(header, format!("t=0,v1={expected_over}"));
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let two = signature_header(&["a".into(), "b".into()], 5, "{}");
        assert_eq!(two.matches(",v1=").count(), 2);
    }
}
