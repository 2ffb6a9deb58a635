//! The read side: what pages and API answers show of the fleet, computed in
//! one place so every view of a cluster says the same thing.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::DeskError;
use crate::app::App;
use crate::backend::FleetView;
use crate::domain::catalog::{Window, Zone, restorable_window};
use crate::domain::cluster::Cluster;
use crate::domain::ids::{ClusterId, TicketId, UserId};
use crate::domain::ticket::{TicketState, Visibility};
use crate::read_cache::ReadCache;
use crate::store::{Event, Message, RestoreJob, Scope, StoreError, Ticket, User};

/// A cluster's backups as of one moment: the catalog, the zones that can
/// serve a restore, and the restorable window they give.
pub struct ClusterBackups {
    pub view: Arc<FleetView>,
    /// Every zone counted, offline ones too: the window once all are back.
    pub window: Option<Window>,
    /// What the zones online now can restore.
    pub window_now: Option<Window>,
    pub now: DateTime<Utc>,
}

impl ClusterBackups {
    /// The zones of the cluster's region that cannot serve a restore now.
    pub fn offline_zones(&self) -> Vec<Zone> {
        Zone::ALL
            .into_iter()
            .filter(|z| !self.view.online.contains(*z))
            .collect()
    }

    /// The earlier start the offline zones would give back, when they
    /// narrow the window now.
    pub fn wider_when_back(&self) -> Option<DateTime<Utc>> {
        match (self.window, self.window_now) {
            (Some(whole), Some(now)) if whole.earliest < now.earliest => Some(whole.earliest),
            (Some(whole), None) => Some(whole.earliest),
            _ => None,
        }
    }
}

/// Reads a cluster's backups from the fleet (or what was read a moment ago,
/// with nothing written since) and computes its window now.
pub async fn cluster_backups(app: &App, cluster: &Cluster) -> Result<ClusterBackups, DeskError> {
    let now = app.now();
    let writes = app.store.writes();
    let view = app
        .reads
        .fleet_views
        .get_or_read(
            cluster.id,
            writes,
            now,
            FleetView::read(&*app.backend, cluster),
        )
        .await?;
    let window = restorable_window(&view.catalog, &cluster.life(), &app.policy(), now);
    let window_now = restorable_window(
        &view.catalog.held_in(view.online),
        &cluster.life(),
        &app.policy(),
        now,
    );
    Ok(ClusterBackups {
        view,
        window,
        window_now,
        now,
    })
}

/// What every view of a ticket shows: the ticket, its restore job, its
/// cluster's name and its people. The API's answer is this alone.
pub struct TicketHead {
    pub ticket: Ticket,
    pub job: Option<RestoreJob>,
    pub cluster_name: String,
    pub requester: Option<User>,
    pub assignee: Option<User>,
    /// While the restored copy waits, paused, for the customer's decision:
    /// where to look at it, read-only.
    pub paused_copy: Option<crate::domain::cluster::Connection>,
}

/// Everything a ticket's pages show of it: its head, its cluster and the new
/// one, the whole conversation and history, and the people they name.
pub struct TicketRecord {
    pub head: Arc<TicketHead>,
    pub cluster: Cluster,
    /// The cluster the restore made, once the ticket is completed.
    pub new_cluster: Option<Cluster>,
    /// Internal notes included: `messages_for` leaves them out for customers.
    pub messages: Vec<Message>,
    pub events: Vec<Event>,
    /// Display names of the authors, actors and the engineer.
    pub names: HashMap<UserId, String>,
    pub subscription_slug: String,
}

impl TicketRecord {
    /// The conversation as `internal` or not may see it.
    pub fn messages_for(&self, internal: bool) -> Vec<Message> {
        self.messages
            .iter()
            .filter(|m| internal || m.visibility == Visibility::Public)
            .cloned()
            .collect()
    }
}

/// The reads a page repeats, remembered for a moment (`READ_CACHE_MS`).
pub struct ReadCaches {
    pub heads: ReadCache<TicketId, TicketHead>,
    pub tickets: ReadCache<TicketId, TicketRecord>,
    pub users: ReadCache<UserId, Option<User>>,
    /// Catalogs and zones by cluster: for the real fleet, this is also how
    /// late a zone that stopped answering shows as offline.
    pub fleet_views: ReadCache<ClusterId, FleetView>,
    /// Clusters' timelines as drawn, by cluster, reader's zone and target:
    /// drawing one is most of a page that shows it.
    pub timelines: ReadCache<(ClusterId, &'static str, Option<DateTime<Utc>>), String>,
    /// Enabled endpoints that hear a subscription's tickets: trusted for the
    /// cache time whatever else this process writes (every change that
    /// posts is a write), and forgotten whenever this process changes an
    /// endpoint; another process's change shows at most that late.
    pub listeners:
        ReadCache<crate::domain::ids::SubscriptionId, Vec<crate::domain::endpoint::Endpoint>>,
}

impl ReadCaches {
    pub fn new(ttl: std::time::Duration) -> ReadCaches {
        ReadCaches {
            heads: ReadCache::new(ttl),
            tickets: ReadCache::new(ttl),
            users: ReadCache::new(ttl),
            fleet_views: ReadCache::new(ttl),
            timelines: ReadCache::new(ttl),
            listeners: ReadCache::new(ttl),
        }
    }
}

fn inside(scope: Scope, ticket: &Ticket) -> bool {
    scope
        .subscription()
        .is_none_or(|s| s == ticket.subscription_id)
}

/// A ticket's head, if the ticket is inside `scope`.
pub async fn ticket_head(
    app: &App,
    id: TicketId,
    scope: Scope,
) -> Result<Option<Arc<TicketHead>>, StoreError> {
    let head = app
        .reads
        .heads
        .get_or_read_some(id, app.store.writes(), app.now(), read_ticket_head(app, id))
        .await?;
    let Some(head) = head else {
        return Ok(None);
    };
    Ok(inside(scope, &head.ticket).then_some(head))
}

async fn read_ticket_head(app: &App, id: TicketId) -> Result<Option<TicketHead>, StoreError> {
    let store = &app.store;
    let Some(ticket) = store.ticket(id, Scope::Everything).await? else {
        return Ok(None);
    };
    let job = app.job_of(&ticket).await?;
    let cluster_name = app
        .cluster_name(ticket.cluster_id)
        .await?
        .unwrap_or_default();
    let requester = store.user(ticket.requester_id).await?;
    let assignee = match ticket.assignee_id {
        Some(id) => store.user(id).await?,
        None => None,
    };
    let paused_copy = paused_copy(app, &ticket, job.as_ref()).await?;
    Ok(Some(TicketHead {
        ticket,
        job,
        cluster_name,
        requester,
        assignee,
        paused_copy,
    }))
}

/// Where the paused copy of a ticket waiting for its customer's decision
/// answers, read-only.
pub async fn paused_copy(
    app: &App,
    ticket: &Ticket,
    job: Option<&RestoreJob>,
) -> Result<Option<crate::domain::cluster::Connection>, StoreError> {
    if ticket.state != TicketState::AwaitingDecision {
        return Ok(None);
    }
    let Some(job) = job else {
        return Ok(None);
    };
    Ok(app
        .store
        .cluster(job.new_cluster_id, Scope::Everything)
        .await?
        .map(|c| c.connection))
}

/// A ticket with all its pages show, if it is inside `scope`.
pub async fn ticket_record(
    app: &App,
    id: TicketId,
    scope: Scope,
) -> Result<Option<Arc<TicketRecord>>, StoreError> {
    let record = app
        .reads
        .tickets
        .get_or_read_some(
            id,
            app.store.writes(),
            app.now(),
            read_ticket_record(app, id),
        )
        .await?;
    let Some(record) = record else {
        return Ok(None);
    };
    Ok(inside(scope, &record.head.ticket).then_some(record))
}

async fn read_ticket_record(app: &App, id: TicketId) -> Result<Option<TicketRecord>, StoreError> {
    let store = &app.store;
    let Some(head) = ticket_head(app, id, Scope::Everything).await? else {
        return Ok(None);
    };
    let ticket = &head.ticket;
    let Some(cluster) = store.cluster(ticket.cluster_id, Scope::Everything).await? else {
        return Ok(None);
    };
    let new_cluster = match (ticket.new_cluster_id, ticket.state) {
        (Some(id), TicketState::Completed) => store.cluster(id, Scope::Everything).await?,
        _ => None,
    };
    let messages = store.messages(ticket.id, true).await?;
    let events = store.ticket_events(ticket.id).await?;
    let people: Vec<UserId> = messages
        .iter()
        .filter_map(|m| m.author_id)
        .chain(events.iter().filter_map(|e| e.actor_id))
        .chain(ticket.assignee_id)
        .collect();
    let names = store.display_names(&people).await?;
    let subscription_slug = store
        .subscription(ticket.subscription_id)
        .await?
        .map(|s| s.slug)
        .unwrap_or_default();
    Ok(Some(TicketRecord {
        head,
        cluster,
        new_cluster,
        messages,
        events,
        names,
        subscription_slug,
    }))
}

/// A user, remembered for a moment: every signed-in request checks its user.
pub async fn user(app: &App, id: UserId) -> Result<Option<User>, StoreError> {
    let user = app
        .reads
        .users
        .get_or_read(id, app.store.writes(), app.now(), app.store.user(id))
        .await?;
    Ok((*user).clone())
}
