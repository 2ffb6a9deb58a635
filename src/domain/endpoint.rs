//! Endpoints: places notices are posted to besides email. A subscription's
//! signed webhooks get the events of its own tickets; staff's webhooks and
//! team chats (no subscription) get every ticket's. The rules for what an
//! endpoint may be and hear live here; sending lives in `notify::post`.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use url::Url;

use super::ids::{EndpointId, SubscriptionId, UserId};
use super::ticket::NoticeKind;

string_enum! {
    /// What an endpoint speaks: our signed JSON, or a chat's card format.
    #[derive(utoipa::ToSchema)]
    pub enum EndpointKind ("endpoint kind") {
        Webhook = "webhook",
        Slack = "slack",
        Teams = "teams",
    }
}

string_enum! {
    /// The events an endpoint can ask for.
    #[derive(utoipa::ToSchema, PartialOrd, Ord)]
    pub enum EventType ("event type") {
        TicketFiled = "ticket.filed",
        TicketInformationRequested = "ticket.information_requested",
        TicketMessage = "ticket.message",
        TicketApproved = "ticket.approved",
        TicketRejected = "ticket.rejected",
        TicketCancelled = "ticket.cancelled",
        TicketDeadlineNear = "ticket.deadline_near",
        TicketReopened = "ticket.reopened",
        /// The target moved before approval.
        TicketTargetChanged = "ticket.target_changed",
        JobStarted = "job.started",
        /// The restore moved on to its next step.
        JobProgress = "job.progress",
        JobSucceeded = "job.succeeded",
        JobFailed = "job.failed",
        /// The restored copy waits, paused and read-only, for the customer's
        /// decision.
        JobPaused = "job.paused",
        /// The customer accepted a paused copy, moved it forward or went
        /// back (or no decision came in time).
        TicketDecision = "ticket.decision",
        /// Sent only by "send a test event", whatever the endpoint asked for.
        EndpointTest = "endpoint.test",
    }
}

impl EventType {
    /// The event a notice of a ticket's change is, if any. Internal notes
    /// make no notice, so they never reach an endpoint.
    pub fn of_notice(kind: NoticeKind) -> Option<EventType> {
        Some(match kind {
            NoticeKind::RequestReceived | NoticeKind::NewRequest => EventType::TicketFiled,
            NoticeKind::InformationRequested => EventType::TicketInformationRequested,
            NoticeKind::CustomerReplied | NoticeKind::StaffReplied => EventType::TicketMessage,
            NoticeKind::Approved => EventType::TicketApproved,
            NoticeKind::Rejected => EventType::TicketRejected,
            NoticeKind::Cancelled => EventType::TicketCancelled,
            NoticeKind::DeadlineNear => EventType::TicketDeadlineNear,
            NoticeKind::Reopened => EventType::TicketReopened,
            NoticeKind::TargetChanged => EventType::TicketTargetChanged,
            NoticeKind::RestoreStarted => EventType::JobStarted,
            NoticeKind::RestoreCompleted => EventType::JobSucceeded,
            NoticeKind::RestoreFailed => EventType::JobFailed,
            NoticeKind::ReadyToInspect => EventType::JobPaused,
            NoticeKind::InspectionDecided => EventType::TicketDecision,
        })
    }

    /// Events about the desk's own work that customers' endpoints never get.
    pub fn staff_only(self) -> bool {
        matches!(self, EventType::TicketDeadlineNear)
    }

    /// What an endpoint may subscribe to.
    pub fn subscribable(self) -> bool {
        self != EventType::EndpointTest
    }
}

/// A registered endpoint. Its secret is derived, never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    /// `None`: staff's, configured by admins.
    pub subscription_id: Option<SubscriptionId>,
    /// Who registered it, told when it is disabled.
    pub owner_id: UserId,
    pub kind: EndpointKind,
    pub url: String,
    pub events: Vec<EventType>,
    /// Bumped by a rotation; the secret is derived from it.
    pub secret_version: i64,
    /// The version before the last rotation also signs until then.
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Endpoint {
    pub fn active(&self) -> bool {
        self.disabled_at.is_none()
    }

    pub fn wants(&self, event: EventType) -> bool {
        self.active() && self.events.contains(&event)
    }

    /// The secret versions that sign a post made at `now`: the current
    /// one, and during a rotation's overlap the one before.
    pub fn signing_versions(&self, now: DateTime<Utc>) -> Vec<i64> {
        let mut versions = vec![self.secret_version];
        if self.previous_secret_until.is_some_and(|until| now < until) && self.secret_version > 1 {
            versions.push(self.secret_version - 1);
        }
        versions
    }
}

/// Longest URL an endpoint may have.
pub const MAX_URL_LEN: usize = 2000;

/// Endpoints one subscription (or staff) may have.
pub const MAX_ENDPOINTS: usize = 10;

/// Which addresses an endpoint may point at, from the desk's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// `http://127.0.0.1:…` accepted: for a receiver on the desk's own machine.
    pub allow_http_loopback: bool,
    /// Private, loopback and link-local addresses accepted over HTTPS.
    pub allow_private: bool,
}

/// Reads an endpoint's URL: HTTPS (or plain HTTP to 127.0.0.1 when the
/// policy allows), a host, no credentials. Addresses a host name resolves
/// to are checked separately, by `check_addresses`, at registration and at
/// every post.
pub fn parse_url(text: &str, policy: UrlPolicy) -> Result<Url, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("Enter the endpoint's URL".into());
    }
    if text.len() > MAX_URL_LEN {
        return Err(format!("The URL is longer than {MAX_URL_LEN} characters"));
    }
    let url = Url::parse(text).map_err(|e| format!("This is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "Leave credentials out of the URL: the signature proves who sent a post".into(),
        );
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("The URL has no host")?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http_loopback && host == "127.0.0.1" => {}
        "http" => {
            return Err(
                "Use an https:// URL: notices carry customer data and must be encrypted in transit"
                    .into(),
            );
        }
        other => return Err(format!("Use an https:// URL, not {other}://")),
    }
    if let Some(ip) = literal_ip(&url) {
        check_addresses(&[ip], &url, policy)?;
    }
    Ok(url)
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Refuses addresses inside private networks, this machine or a link:
/// the desk must not be a way to reach its own network.
pub fn check_addresses(addresses: &[IpAddr], url: &Url, policy: UrlPolicy) -> Result<(), String> {
    if addresses.is_empty() {
        return Err("The endpoint's host has no address".into());
    }
    let loopback_http =
        policy.allow_http_loopback && url.scheme() == "http" && url.host_str() == Some("127.0.0.1");
    for ip in addresses {
        if loopback_http && *ip == IpAddr::from([127, 0, 0, 1]) {
            continue;
        }
        if is_internal(*ip) && !policy.allow_private {
            return Err(format!(
                "The endpoint's address {ip} is private, loopback or link-local: the desk posts only to public addresses"
            ));
        }
    }
    Ok(())
}

/// Private, loopback, link-local, shared, unspecified, multicast or
/// documentation addresses: nothing a public receiver has.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Reads the events an endpoint asks for: known, subscribable, and for a
/// subscription's endpoint none of staff's own.
pub fn parse_events(names: &[String], for_staff: bool) -> Result<Vec<EventType>, String> {
    let mut events = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let event: EventType = name.parse()?;
        if !event.subscribable() {
            return Err(format!("{event} is sent by \"send a test event\" only"));
        }
        if event.staff_only() && !for_staff {
            return Err(format!("{event} is for staff's endpoints only"));
        }
        if !events.contains(&event) {
            events.push(event);
        }
    }
    if events.is_empty() {
        return Err("Choose at least one event".into());
    }
    events.sort();
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: UrlPolicy = UrlPolicy {
        allow_http_loopback: false,
        allow_private: false,
    };

    #[test]
    fn urls_are_https_to_public_hosts() {
        let cases: &[(&str, UrlPolicy, bool)] = &[
            ("https://hooks.example.com/restore", STRICT, true),
            ("http://hooks.example.com/restore", STRICT, false),
            ("ftp://hooks.example.com/", STRICT, false),
            ("https://user:pw@hooks.example.com/", STRICT, false),
            ("https://10.1.2.3/hook", STRICT, false),
            ("https://192.168.0.10/hook", STRICT, false),
            ("https://169.254.169.254/latest", STRICT, false),
            ("https://127.0.0.1:9000/hook", STRICT, false),
            ("https://[::1]/hook", STRICT, false),
            ("https://[fe80::1]/hook", STRICT, false),
            ("https://[::ffff:10.0.0.1]/hook", STRICT, false),
            ("https://100.64.0.1/hook", STRICT, false),
            ("https://93.184.216.34/hook", STRICT, true),
            ("http://127.0.0.1:9000/hook", STRICT, false),
            (
                "http://127.0.0.1:9000/hook",
                UrlPolicy {
                    allow_http_loopback: true,
                    allow_private: false,
                },
                true,
            ),
            (
                "http://localhost:9000/hook",
                UrlPolicy {
                    allow_http_loopback: true,
                    allow_private: false,
                },
                false,
            ),
            (
                "https://10.1.2.3/hook",
                UrlPolicy {
                    allow_http_loopback: false,
                    allow_private: true,
                },
                true,
            ),
            ("", STRICT, false),
            ("not a url", STRICT, false),
        ];
        for (url, policy, accepted) in cases {
            assert_eq!(
                parse_url(url, *policy).is_ok(),
                *accepted,
                "{url} with {policy:?}: {:?}",
                parse_url(url, *policy)
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(parse_url(&long, STRICT).unwrap_err().contains("longer"));
    }

    #[test]
    fn resolved_addresses_are_checked_like_literal_ones() {
        let url = Url::parse("https://hooks.example.com/").unwrap();
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        let private: IpAddr = "10.0.0.7".parse().unwrap();
        assert!(check_addresses(&[public], &url, STRICT).is_ok());
        // One internal address among public ones is enough to refuse.
        assert!(check_addresses(&[public, private], &url, STRICT).is_err());
        assert!(check_addresses(&[], &url, STRICT).is_err());
    }

    #[test]
    fn every_notice_is_an_event_and_customers_hear_only_theirs() {
        for kind in NoticeKind::ALL {
            let event = EventType::of_notice(kind).expect("an event");
            assert!(event.subscribable());
        }
        assert_eq!(
            parse_events(
                &[
                    "job.failed".into(),
                    "ticket.filed".into(),
                    "job.failed".into()
                ],
                false
            ),
            Ok(vec![EventType::TicketFiled, EventType::JobFailed])
        );
        assert!(parse_events(&["ticket.deadline_near".into()], false).is_err());
        assert!(parse_events(&["ticket.deadline_near".into()], true).is_ok());
        assert!(parse_events(&["endpoint.test".into()], true).is_err());
        assert!(parse_events(&["ticket.nope".into()], true).is_err());
        assert!(parse_events(&[], true).is_err());
    }

    #[test]
    fn a_rotation_signs_with_both_secrets_until_the_overlap_ends() {
        let now = Utc::now();
        let mut endpoint = Endpoint {
            id: EndpointId::new(),
            subscription_id: None,
            owner_id: UserId::new(),
            kind: EndpointKind::Webhook,
            url: "https://hooks.example.com/".into(),
            events: vec![EventType::JobFailed],
            secret_version: 1,
            previous_secret_until: None,
            disabled_at: None,
            disabled_reason: None,
            created_at: now,
        };
        assert_eq!(endpoint.signing_versions(now), vec![1]);
        endpoint.secret_version = 2;
        endpoint.previous_secret_until = Some(now + chrono::Duration::hours(24));
        assert_eq!(endpoint.signing_versions(now), vec![2, 1]);
        assert_eq!(
            endpoint.signing_versions(now + chrono::Duration::hours(25)),
            vec![2]
        );
        assert!(endpoint.wants(EventType::JobFailed));
        assert!(!endpoint.wants(EventType::JobStarted));
        endpoint.disabled_at = Some(now);
        assert!(!endpoint.wants(EventType::JobFailed));
    }
}
