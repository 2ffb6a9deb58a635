//! Endpoints: customers register signed webhooks for their subscription,
//! admins register staff's webhooks and team chats. Each change is
//! committed with its audit event; each notice a ticket's change makes
//! becomes, beside its emails, one post per endpoint that asked for it,
//! in the same transaction.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::DeskError;
use crate::app::App;
use crate::domain::actor::{Actor, Role};
use crate::domain::endpoint::{
    Endpoint, EndpointKind, EventType, MAX_ENDPOINTS, check_addresses, parse_events, parse_url,
};
use crate::domain::ids::EndpointId;
use crate::domain::ticket::Notice;
use crate::notify::post::{PostContent, TicketFacts, body_for};
use crate::store::{
    AdminWrite, Commit, DynStore, EndpointChange, EndpointOwner, EventAction, NewEvent,
    NewOutboxMessage, OutboxMessage, StoreError, Ticket, User,
};

/// How long the secret before a rotation keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);

/// How long registration waits for the endpoint's host name to resolve.
const RESOLVE_WITHIN: StdDuration = StdDuration::from_secs(3);

/// An endpoint as someone asks for it.
#[derive(Debug, Clone, Default)]
pub struct NewEndpoint {
    /// `webhook`, `slack` or `teams`.
    pub kind: String,
    pub url: String,
    pub events: Vec<String>,
}

/// A registered endpoint and, for a signed one, its secret: shown this
/// once and never again.
#[derive(Debug, Clone)]
pub struct WithSecret {
    pub endpoint: Endpoint,
    pub secret: Option<String>,
}

fn bad(field: &'static str, message: impl Into<String>) -> DeskError {
    DeskError::BadInput {
        field,
        message: message.into(),
    }
}

/// Whose endpoints `user` manages: a customer their subscription's, an
/// admin staff's. Support engineers manage none.
pub fn owner_of(user: &User) -> Result<EndpointOwner, DeskError> {
    match (user.role, user.subscription_id) {
        (Role::Customer, Some(subscription)) => Ok(EndpointOwner::Subscription(subscription)),
        (Role::Admin, _) => Ok(EndpointOwner::Staff),
        _ => Err(DeskError::Refused(
            crate::domain::ticket::Refusal::Forbidden,
        )),
    }
}

fn belongs(endpoint: &Endpoint, owner: EndpointOwner) -> bool {
    match owner {
        EndpointOwner::Subscription(id) => endpoint.subscription_id == Some(id),
        EndpointOwner::Staff => endpoint.subscription_id.is_none(),
    }
}

/// The URL as logs, the audit trail and the outbox show it: a chat's URL
/// is its secret, so only its origin is kept.
pub fn shown_url(kind: EndpointKind, url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return String::new();
    };
    let origin = parsed.origin().ascii_serialization();
    match kind {
        EndpointKind::Webhook => format!("{origin}{}", parsed.path()),
        EndpointKind::Slack | EndpointKind::Teams => format!("{origin}/…"),
    }
}

pub async fn list(app: &App, user: &User) -> Result<Vec<Endpoint>, DeskError> {
    Ok(app.store.endpoints(owner_of(user)?).await?)
}

/// One of the caller's endpoints; another owner's answers "not found".
pub async fn get(app: &App, user: &User, id: EndpointId) -> Result<Endpoint, DeskError> {
    let owner = owner_of(user)?;
    match app.store.endpoint(id).await? {
        Some(endpoint) if belongs(&endpoint, owner) => Ok(endpoint),
        _ => Err(DeskError::NotFound),
    }
}

/// Checks what an endpoint's host resolves to, as every post will.
async fn check_host(app: &App, url: &url::Url) -> Result<(), DeskError> {
    if matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))) {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let resolved = tokio::time::timeout(
        RESOLVE_WITHIN,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    .map_err(|_| {
        bad(
            "url",
            format!(
                "{host} did not resolve within {} seconds",
                RESOLVE_WITHIN.as_secs()
            ),
        )
    })?
    .map_err(|e| bad("url", format!("{host} does not resolve: {e}")))?;
    let ips: Vec<IpAddr> = resolved.map(|a| a.ip()).collect();
    check_addresses(&ips, url, app.settings.url_policy()).map_err(|e| bad("url", e))
}

pub async fn register(app: &App, user: &User, new: &NewEndpoint) -> Result<WithSecret, DeskError> {
    let owner = owner_of(user)?;
    let for_staff = owner == EndpointOwner::Staff;
    let kind: EndpointKind = new
        .kind
        .trim()
        .parse()
        .map_err(|_| bad("kind", "Choose webhook, slack or teams"))?;
    if kind != EndpointKind::Webhook && !for_staff {
        return Err(bad(
            "kind",
            "Team chats are for staff, set up by an admin: register a signed webhook",
        ));
    }
    let url = parse_url(&new.url, app.settings.url_policy()).map_err(|e| bad("url", e))?;
    let events = parse_events(&new.events, for_staff).map_err(|e| bad("events", e))?;
    if app.store.endpoints(owner).await?.len() >= MAX_ENDPOINTS {
        return Err(bad(
            "url",
            format!("There are {MAX_ENDPOINTS} endpoints already: remove one first"),
        ));
    }
    check_host(app, &url).await?;
    let now = app.now();
    let endpoint = Endpoint {
        id: EndpointId::new(),
        subscription_id: match owner {
            EndpointOwner::Subscription(id) => Some(id),
            EndpointOwner::Staff => None,
        },
        owner_id: user.id,
        kind,
        url: url.to_string(),
        events,
        secret_version: 1,
        previous_secret_until: None,
        disabled_at: None,
        disabled_reason: None,
        created_at: now,
    };
    let audit = audit(
        user.actor(),
        EventAction::EndpointCreate,
        &endpoint,
        format!(
            "for {}",
            endpoint
                .events
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        now,
    );
    app.commit(Commit::admin(
        AdminWrite::CreateEndpoint(Box::new(endpoint.clone())),
        Some(audit),
        now,
    ))
    .await?;
    app.reads.listeners.clear();
    tracing::info!(endpoint = %endpoint.id, kind = %kind, by = %user.email, "endpoint registered");
    let secret = secret_of(app, &endpoint);
    Ok(WithSecret { endpoint, secret })
}

fn secret_of(app: &App, endpoint: &Endpoint) -> Option<String> {
    (endpoint.kind == EndpointKind::Webhook).then(|| {
        app.secret_key
            .endpoint_secret(endpoint.id, endpoint.secret_version)
    })
}

fn audit(
    actor: Actor,
    action: EventAction,
    endpoint: &Endpoint,
    more: String,
    at: DateTime<Utc>,
) -> NewEvent {
    let mut detail = format!(
        "{} {}",
        endpoint.kind,
        shown_url(endpoint.kind, &endpoint.url)
    );
    if !more.is_empty() {
        detail.push(' ');
        detail.push_str(&more);
    }
    NewEvent::admin(actor, action, detail, at)
}

async fn change(
    app: &App,
    user: &User,
    endpoint: &Endpoint,
    change: EndpointChange,
    action: EventAction,
    more: String,
) -> Result<(), DeskError> {
    let now = app.now();
    let audit = audit(user.actor(), action, endpoint, more, now);
    app.commit(Commit::admin(
        AdminWrite::ChangeEndpoint {
            id: endpoint.id,
            change,
        },
        Some(audit),
        now,
    ))
    .await?;
    app.reads.listeners.clear();
    Ok(())
}

/// A new secret, shown once; the one before keeps signing for
/// `ROTATION_OVERLAP`, so receivers can switch without missing a post.
pub async fn rotate(app: &App, user: &User, id: EndpointId) -> Result<WithSecret, DeskError> {
    let endpoint = get(app, user, id).await?;
    if endpoint.kind != EndpointKind::Webhook {
        return Err(bad(
            "kind",
            "A team chat's posts are not signed: its URL is its secret, so register a new URL instead",
        ));
    }
    let overlap_until = app.now() + ROTATION_OVERLAP;
    change(
        app,
        user,
        &endpoint,
        EndpointChange::Rotate { overlap_until },
        EventAction::EndpointRotate,
        format!(
            "the secret before signs too until {}",
            overlap_until.to_rfc3339()
        ),
    )
    .await?;
    let endpoint = get(app, user, id).await?;
    let secret = secret_of(app, &endpoint);
    Ok(WithSecret { endpoint, secret })
}

pub async fn set_enabled(
    app: &App,
    user: &User,
    id: EndpointId,
    enabled: bool,
) -> Result<Endpoint, DeskError> {
    let endpoint = get(app, user, id).await?;
    if endpoint.active() != enabled {
        let (write, action) = if enabled {
            (EndpointChange::Enable, EventAction::EndpointEnable)
        } else {
            (
                EndpointChange::Disable {
                    reason: format!("disabled by {}", user.display_name),
                },
                EventAction::EndpointDisable,
            )
        };
        change(app, user, &endpoint, write, action, String::new()).await?;
    }
    get(app, user, id).await
}

pub async fn remove(app: &App, user: &User, id: EndpointId) -> Result<(), DeskError> {
    let endpoint = get(app, user, id).await?;
    change(
        app,
        user,
        &endpoint,
        EndpointChange::Delete,
        EventAction::EndpointDelete,
        String::new(),
    )
    .await
}

/// The page an endpoint's owner manages it on.
fn endpoints_page(public_url: &str, endpoint: &Endpoint) -> String {
    match endpoint.subscription_id {
        Some(_) => format!("{public_url}/account/endpoints"),
        None => format!("{public_url}/admin/endpoints"),
    }
}

/// What a post says of `ticket`, with the link for `endpoint`'s readers.
fn ticket_facts<'a>(
    app: &App,
    ticket: &Ticket,
    reference: &'a str,
    source_cluster: &'a str,
    endpoint: &Endpoint,
) -> TicketFacts<'a> {
    TicketFacts {
        id: ticket.id.to_string(),
        reference,
        state: ticket.state.as_str(),
        severity: ticket.severity.as_str(),
        source_cluster,
        target_time: ticket.target_time,
        link: app.ticket_link(ticket.id, endpoint.subscription_id.is_none()),
    }
}

/// The outbox row of one post: `content` in `endpoint`'s format, under a
/// new event id.
fn post_row(
    endpoint: &Endpoint,
    event: EventType,
    ticket_id: Option<crate::domain::ids::TicketId>,
    dedupe_key: String,
    content: &PostContent,
    at: DateTime<Utc>,
) -> NewOutboxMessage {
    let id = Uuid::new_v4();
    NewOutboxMessage {
        id,
        dedupe_key,
        ticket_id,
        kind: event.as_str().into(),
        recipient: shown_url(endpoint.kind, &endpoint.url),
        subject: event.as_str().into(),
        text_body: body_for(endpoint.kind, id, at, content),
        html_body: String::new(),
        endpoint_id: Some(endpoint.id),
    }
}

/// Posts a test event to one endpoint, through the outbox like any other.
pub async fn send_test(app: &App, user: &User, id: EndpointId) -> Result<Uuid, DeskError> {
    let endpoint = get(app, user, id).await?;
    if !endpoint.active() {
        return Err(bad("endpoint", "The endpoint is disabled: enable it first"));
    }
    let now = app.now();
    let content = PostContent::test(endpoints_page(&app.settings.public_url(), &endpoint));
    let post = post_row(
        &endpoint,
        EventType::EndpointTest,
        None,
        format!("test:{}", Uuid::new_v4()),
        &content,
        now,
    );
    let post_id = post.id;
    let mut commit = Commit::at(now);
    commit.outbox.push(post);
    commit.events.push(audit(
        user.actor(),
        EventAction::EndpointTest,
        &endpoint,
        String::new(),
        now,
    ));
    app.commit(commit).await?;
    Ok(post_id)
}

/// An endpoint's delivery log, newest first.
pub async fn deliveries(
    app: &App,
    user: &User,
    id: EndpointId,
    limit: i64,
) -> Result<Vec<OutboxMessage>, DeskError> {
    let endpoint = get(app, user, id).await?;
    Ok(app.store.endpoint_deliveries(endpoint.id, limit).await?)
}

/// The enabled endpoints that hear `subscription`'s tickets, remembered
/// (see `ReadCaches::listeners`).
async fn hearing(
    app: &App,
    subscription: crate::domain::ids::SubscriptionId,
) -> Result<std::sync::Arc<Vec<Endpoint>>, DeskError> {
    let now = app.now();
    if let Some(endpoints) = app.reads.listeners.get(&subscription, 0, now) {
        return Ok(endpoints);
    }
    let read = std::sync::Arc::new(app.store.endpoints_hearing(subscription).await?);
    app.reads.listeners.put(subscription, read.clone(), 0, now);
    Ok(read)
}

/// One post per endpoint that hears `ticket` and asked for the event of a
/// notice. Keyed by cause, event and endpoint, so a change replayed never
/// posts twice.
pub async fn posts_for(
    app: &App,
    ticket: &Ticket,
    source_cluster: &str,
    notices: &[Notice],
    cause: &str,
) -> Result<Vec<NewOutboxMessage>, DeskError> {
    let events: Vec<EventType> = {
        let mut seen = HashSet::new();
        notices
            .iter()
            .filter_map(|n| EventType::of_notice(n.kind))
            .filter(|e| seen.insert(*e))
            .collect()
    };
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let endpoints = hearing(app, ticket.subscription_id).await?;
    if endpoints.is_empty() {
        return Ok(Vec::new());
    }
    let now = app.now();
    let reference = ticket.reference();
    let mut posts = Vec::new();
    for endpoint in endpoints.iter() {
        let staff = endpoint.subscription_id.is_none();
        let facts = ticket_facts(app, ticket, &reference, source_cluster, endpoint);
        for event in &events {
            if !endpoint.wants(*event) || (event.staff_only() && !staff) {
                continue;
            }
            posts.push(post_row(
                endpoint,
                *event,
                Some(ticket.id),
                format!("{cause}:{event}:{}", endpoint.id),
                &PostContent::about_ticket(*event, &facts),
                now,
            ));
        }
    }
    Ok(posts)
}

/// Disables an endpoint whose post was given up for good, and emails its
/// owner what happened and what to do. False when it was disabled or
/// removed already, or its owner can no longer be told.
pub async fn disable_failing(
    store: &DynStore,
    id: EndpointId,
    error: &str,
    at: DateTime<Utc>,
    public_url: &str,
) -> Result<bool, StoreError> {
    let Some(endpoint) = store.endpoint(id).await? else {
        return Ok(false);
    };
    if !endpoint.active() {
        return Ok(false);
    }
    let owner = store.user(endpoint.owner_id).await?;
    let shown = shown_url(endpoint.kind, &endpoint.url);
    let page = endpoints_page(public_url, &endpoint);
    let mut commit = Commit::admin(
        AdminWrite::ChangeEndpoint {
            id,
            change: EndpointChange::Disable {
                reason: format!("posts kept failing: {error}"),
            },
        },
        Some(audit(
            Actor::SYSTEM,
            EventAction::EndpointDisable,
            &endpoint,
            format!("after failing: {error}"),
            at,
        )),
        at,
    );
    if let Some(owner) = owner.filter(|o| !o.disabled) {
        let text = format!(
            "Hello {name},\n\n\
             Restore Desk could not deliver its notices to your endpoint {shown} \
             and has stopped posting to it.\n\n\
             What happened: {error}\n\n\
             What happens next: nothing is posted to it until it is enabled again. \
             Once the receiver answers, enable it on {page} and send a test event.\n",
            name = owner.display_name,
        );
        let html = format!(
            "<p>Hello {name},</p><p>Restore Desk could not deliver its notices to your endpoint \
             <code>{shown}</code> and has stopped posting to it.</p>\
             <p><strong>What happened:</strong> {error}</p>\
             <p><strong>What happens next:</strong> nothing is posted to it until it is enabled \
             again. Once the receiver answers, enable it on <a href=\"{page}\">{page}</a> and send \
             a test event.</p>",
            name = escape_html(&owner.display_name),
            shown = escape_html(&shown),
            error = escape_html(error),
            page = escape_html(&page),
        );
        commit.outbox.push(NewOutboxMessage {
            id: Uuid::new_v4(),
            dedupe_key: format!("endpoint-disabled:{id}:{}", at.timestamp_micros()),
            ticket_id: None,
            kind: "endpoint_disabled".into(),
            recipient: owner.email.to_string(),
            subject: format!("Restore Desk stopped posting to {shown}"),
            text_body: text,
            html_body: html,
            endpoint_id: None,
        });
    }
    match store.commit(&commit).await {
        Ok(_) => Ok(true),
        // Disabled by someone else meanwhile.
        Err(StoreError::NotFound(_)) => Ok(false),
        Err(error) => Err(error),
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Posts of a restore moving on to its next step, to the endpoints that
/// asked for `job.progress`. Nothing is read beyond the (remembered) list
/// of endpoints unless one asked.
pub async fn progress_posts(
    app: &App,
    job: &crate::store::RestoreJob,
    source: &crate::domain::cluster::Cluster,
    to: crate::domain::restore_job::JobState,
) -> Result<Vec<NewOutboxMessage>, DeskError> {
    let now = app.now();
    let endpoints = hearing(app, source.subscription_id).await?;
    let listening: Vec<&Endpoint> = endpoints
        .iter()
        .filter(|e| e.wants(EventType::JobProgress))
        .collect();
    if listening.is_empty() {
        return Ok(Vec::new());
    }
    let Some(ticket_id) = job.ticket_id else {
        return Ok(Vec::new());
    };
    let Some(ticket) = app
        .store
        .ticket(ticket_id, crate::store::Scope::Everything)
        .await?
    else {
        return Ok(Vec::new());
    };
    let reference = ticket.reference();
    let percent = i64::from(to.overall_progress(0.0));
    let mut posts = Vec::new();
    for endpoint in listening {
        let facts = ticket_facts(app, &ticket, &reference, &source.name, endpoint);
        posts.push(post_row(
            endpoint,
            EventType::JobProgress,
            Some(ticket.id),
            format!(
                "job:{}:run{}:{to}:progress:{}",
                job.id, job.run, endpoint.id
            ),
            &PostContent::progress(&facts, to.label(), to.as_str(), percent),
            now,
        ));
    }
    Ok(posts)
}
