//! Rows as the rest of the program sees them, and the writes it asks for.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

pub use crate::domain::endpoint::{Endpoint, EndpointKind, EventType};
pub use crate::domain::ids::{ClusterId, EndpointId, JobId, SubscriptionId, TicketId, UserId};
pub use crate::domain::verdict::{Verdict, VerdictChannel};

use crate::domain::actor::{Actor, Role};
use crate::domain::catalog::{Zone, ZoneSet};
use crate::domain::cluster::{Cluster, Connection};
pub use crate::domain::email::Email;
pub use crate::domain::event::EventAction;
use crate::domain::restore_job::JobState;
pub use crate::domain::restore_job::{
    Fence, JobChange, JobGuard, JobOutputs, JobPatch, RestoreJob,
};
use crate::domain::sla::Severity;
pub use crate::domain::ticket::{
    NewTicket, PENDING_REFERENCE, Ticket, TicketChange, TicketGuard, ticket_reference,
};
use crate::domain::ticket::{TicketState, Visibility};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub subscription_id: Option<SubscriptionId>,
    pub time_zone: String,
    pub disabled: bool,
    /// Bumped whenever the account's sessions must end for good: when it
    /// is disabled, or its password changes.
    pub session_epoch: i64,
    /// An admin reset the password: the person chooses a new one first.
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("subscription_id", &self.subscription_id)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl User {
    pub fn actor(&self) -> Actor {
        Actor::user(self.id, self.role)
    }
}

/// An admin's change to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    pub role: Option<Role>,
    pub subscription_id: Option<Option<SubscriptionId>>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
    pub time_zone: Option<String>,
    pub must_change_password: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneStatus {
    pub region: String,
    pub zone: Zone,
    pub online: bool,
    pub changed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSnapshot {
    pub id: String,
    pub cluster_id: ClusterId,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub zones: ZoneSet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLogSpan {
    pub cluster_id: ClusterId,
    pub started_at: DateTime<Utc>,
    /// `None` while the log is still being archived.
    pub ended_at: Option<DateTime<Utc>>,
    pub zones: ZoneSet,
}

crate::string_enum! {
    /// What an armed fault does to the restore step it is armed on.
    pub enum FaultKind ("fault") {
        /// The step fails; `permanent` decides whether retrying can help.
        FailStep = "fail_step",
        /// The step takes `delay_ms` longer, making no progress meanwhile.
        SlowStep = "slow_step",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxFault {
    pub id: Uuid,
    pub kind: FaultKind,
    pub step: JobState,
    pub permanent: bool,
    /// How many more times it fires.
    pub remaining: i64,
    pub delay_ms: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: Uuid,
    pub ticket_id: TicketId,
    pub author_id: Option<UserId>,
    pub author_role: Role,
    pub visibility: Visibility,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub id: Uuid,
    pub ticket_id: TicketId,
    pub author: Actor,
    pub visibility: Visibility,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub id: i64,
    pub ticket_id: Option<TicketId>,
    pub job_id: Option<JobId>,
    pub actor_id: Option<UserId>,
    pub actor_role: Role,
    pub action: EventAction,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub ticket_id: Option<TicketId>,
    pub job_id: Option<JobId>,
    pub actor: Actor,
    pub action: EventAction,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub detail: String,
    pub at: DateTime<Utc>,
}

impl NewEvent {
    /// An admin action on something other than a ticket.
    pub fn admin(
        actor: Actor,
        action: EventAction,
        detail: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Self {
        NewEvent {
            ticket_id: None,
            job_id: None,
            actor,
            action,
            from_state: None,
            to_state: None,
            detail: detail.into(),
            at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub id: JobId,
    pub kind: crate::domain::restore_job::JobKind,
    /// A customer's restore follows this ticket; a drill has none.
    pub ticket_id: Option<TicketId>,
    pub source_cluster_id: ClusterId,
    pub target_time: DateTime<Utc>,
    pub new_cluster_id: ClusterId,
    /// A drill restores from this zone only.
    pub drill_zone: Option<crate::domain::catalog::Zone>,
}

/// How a cluster is drilled, when an admin said so: its own interval, and a
/// canary query each drill must find true.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrillSettings {
    pub interval_hours: Option<i64>,
    pub canary: Option<crate::domain::drill::CanaryQuery>,
}

/// Where a worker places the jobs it claims: its restore host, and how many
/// restores that host runs at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub host: String,
    pub max_restores: i64,
    /// Bytes free for restores on the host: a queued job known to need
    /// more is left for another host.
    pub free_bytes: Option<i64>,
}

/// What a host's worker last said of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostHeartbeat {
    pub host: String,
    pub worker: String,
    pub seen_at: DateTime<Utc>,
    /// Bytes free for restores there, when the host could tell.
    pub free_bytes: Option<i64>,
    pub max_restores: i64,
}

/// A finished run of a cluster as estimates read it: its kind, its work,
/// and its state changes in order, `(from, to, at)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastRunRecord {
    pub job_id: JobId,
    pub kind: crate::domain::restore_job::JobKind,
    pub work: Option<crate::domain::eta::Work>,
    pub changes: Vec<(
        crate::domain::restore_job::JobState,
        crate::domain::restore_job::JobState,
        DateTime<Utc>,
    )>,
}

/// A finished drill with when a worker took its last run up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillRecord {
    pub job: RestoreJob,
    pub started_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressUpdate {
    pub progress: i64,
    pub detail: String,
    pub at: DateTime<Utc>,
    /// While the log is replayed: the commit time reached.
    pub replayed_to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobWrite {
    Create(NewJob),
    Change(Box<JobChange>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketWrite {
    Create(NewTicket),
    Change(TicketChange),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterWrite {
    /// Provisioning: the new cluster's record, status `building`.
    Insert(Box<Cluster>),
    /// Handing over: ready, with where to connect.
    MarkReady {
        id: ClusterId,
        connection: Connection,
        /// The moment it holds: a copy moved forward before its hand-over
        /// holds a later one than it was made for.
        restored_point: DateTime<Utc>,
    },
    /// Compensation: a half-built cluster disappears.
    Remove(ClusterId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxMessage {
    pub id: Uuid,
    /// One email per cause and recipient, however often the cause is replayed.
    pub dedupe_key: String,
    pub ticket_id: Option<TicketId>,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// A post to this endpoint rather than an email: `recipient` is its
    /// URL, `subject` the event type and `text_body` the JSON body.
    pub endpoint_id: Option<EndpointId>,
}

/// Administration's writes, each committed with its audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminWrite {
    CreateSubscription(Subscription),
    CreateUser(User),
    UpdateUser {
        id: UserId,
        update: UserUpdate,
    },
    /// A zone's row, if it has none yet (seeding).
    EnsureZone {
        region: String,
        zone: Zone,
        online: bool,
    },
    /// Takes a zone offline or brings it back; refused if unknown.
    SetZone {
        region: String,
        zone: Zone,
        online: bool,
    },
    InsertCluster(Box<Cluster>),
    /// Marks a live cluster deleted at the commit's time; refused if it is
    /// unknown or deleted already.
    DeleteCluster {
        id: ClusterId,
    },
    /// A cluster's own drill interval and canary query; refused if the
    /// cluster is unknown.
    SetDrillSettings {
        cluster_id: ClusterId,
        settings: DrillSettings,
    },
    AddFault(SandboxFault),
    /// A backup copy of the simulated fleet goes bad (a test's doing, as a
    /// file of a real backup deleted or altered would be).
    DamageSnapshot {
        snapshot_id: String,
        zone: Zone,
    },
    ClearFaults,
    CreateEndpoint(Box<Endpoint>),
    /// Refused if the endpoint is unknown.
    ChangeEndpoint {
        id: EndpointId,
        change: EndpointChange,
    },
    /// Adds a host of the fleet or replaces the one of its name; refused
    /// (`Duplicate(ZoneHost)`) when another host serves its zone.
    PutFleetHost(crate::domain::host::FleetHost),
    /// Refused (`NotFound`) for an unknown host, and (`Conflict`) while a
    /// job that is not over is placed on it.
    RemoveFleetHost {
        name: String,
    },
}

/// What can happen to an endpoint after it is registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointChange {
    /// A new secret; the one before keeps signing until `overlap_until`.
    Rotate {
        overlap_until: DateTime<Utc>,
    },
    /// Posts stop; what is waiting to be posted fails with `reason`.
    Disable {
        reason: String,
    },
    Enable,
    /// Gone, with its delivery log.
    Delete,
}

/// Whose endpoints: a subscription's, or staff's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointOwner {
    Subscription(SubscriptionId),
    Staff,
}

/// What a commit made that its caller could not know before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// The number a new ticket was given.
    pub ticket_number: Option<i64>,
}

impl NewOutboxMessage {
    /// The message with a new ticket's reference in place of
    /// `PENDING_REFERENCE`, once the ticket has `number`.
    pub fn numbered(&self, number: Option<i64>) -> NewOutboxMessage {
        let Some(number) = number else {
            return self.clone();
        };
        let reference = ticket_reference(number);
        // A post's JSON body holds the placeholder escaped.
        let escaped = serde_json::to_string(PENDING_REFERENCE).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        NewOutboxMessage {
            subject: self.subject.replace(PENDING_REFERENCE, &reference),
            text_body: self
                .text_body
                .replace(PENDING_REFERENCE, &reference)
                .replace(escaped, &reference),
            html_body: self.html_body.replace(PENDING_REFERENCE, &reference),
            ..self.clone()
        }
    }
}

/// A state change and everything it causes. `Store::commit` applies all of
/// it in one transaction, or nothing if a guard fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub at: DateTime<Utc>,
    pub ticket: Option<TicketWrite>,
    pub job: Option<JobWrite>,
    pub cluster: Option<ClusterWrite>,
    pub messages: Vec<NewMessage>,
    pub events: Vec<NewEvent>,
    pub outbox: Vec<NewOutboxMessage>,
    pub admin: Vec<AdminWrite>,
    /// A customer's verdict on a hand-over; refused if one was given.
    pub verdict: Option<Verdict>,
    /// When set, the emails are written already claimed (first attempt under
    /// way) until this moment, by a process that sends them itself at once.
    pub outbox_claimed_until: Option<DateTime<Utc>>,
}

impl Commit {
    /// Whether the commit made work that any worker should pick up: a new
    /// job, or a job a person moved (cancel, retry). A worker's own step
    /// commits concern nobody else.
    pub fn wakes_workers(&self) -> bool {
        match &self.job {
            Some(JobWrite::Create(_)) => true,
            Some(JobWrite::Change(change)) => !matches!(change.guard, JobGuard::Lease(_)),
            None => false,
        }
    }

    /// One administrative write with its audit event.
    pub fn admin(write: AdminWrite, audit: Option<NewEvent>, at: DateTime<Utc>) -> Commit {
        let mut commit = Commit::at(at);
        commit.admin.push(write);
        commit.events.extend(audit);
        commit
    }

    pub fn at(at: DateTime<Utc>) -> Commit {
        Commit {
            at,
            ticket: None,
            job: None,
            cluster: None,
            messages: Vec::new(),
            events: Vec::new(),
            outbox: Vec::new(),
            admin: Vec::new(),
            verdict: None,
            outbox_claimed_until: None,
        }
    }

    /// The outbox rows this commit writes, as the store will hold them
    /// once `committed` says what was allocated.
    pub fn outbox_rows(&self, committed: &Committed) -> Vec<OutboxMessage> {
        let claimed = self.outbox_claimed_until;
        self.outbox
            .iter()
            .map(|m| m.numbered(committed.ticket_number))
            .map(|m| OutboxMessage {
                id: m.id,
                dedupe_key: m.dedupe_key,
                ticket_id: m.ticket_id,
                kind: m.kind,
                recipient: m.recipient,
                subject: m.subject,
                text_body: m.text_body,
                html_body: m.html_body,
                endpoint_id: m.endpoint_id,
                status: if claimed.is_some() {
                    OutboxStatus::Sending
                } else {
                    OutboxStatus::Pending
                },
                attempts: 0,
                claim: i64::from(claimed.is_some()),
                // A claimed message is due again when its claim runs out.
                next_attempt_at: claimed.unwrap_or(self.at),
                claimed_until: claimed,
                last_error: None,
                created_at: self.at,
                sent_at: None,
            })
            .collect()
    }
}

crate::string_enum! {
    /// Where an email is on its way out.
    pub enum OutboxStatus ("outbox status") {
        Pending = "pending",
        Sending = "sending",
        Sent = "sent",
        Failed = "failed",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: Uuid,
    pub dedupe_key: String,
    pub ticket_id: Option<TicketId>,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub endpoint_id: Option<EndpointId>,
    pub status: OutboxStatus,
    /// Delivery attempts made: sends that reached the transport.
    pub attempts: i64,
    /// The fencing token of the latest claim: a sender settles only the
    /// claim it holds.
    pub claim: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub claimed_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent { at: DateTime<Utc> },
    RetryAt { at: DateTime<Utc>, error: String },
    Failed { at: DateTime<Utc>, error: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxQuery {
    pub status: Option<OutboxStatus>,
    pub ticket_id: Option<TicketId>,
    pub limit: i64,
}

/// The order of a ticket list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketOrder {
    /// The staff queue: the first clock to run out first (the first
    /// response while unanswered, else the deadline: `sla::queue_due`), then
    /// severity. The cursor is the last row seen: `(due, severity, number)`.
    Queue {
        after: Option<(DateTime<Utc>, Severity, i64)>,
    },
    /// Newest first; the cursor is the last number seen.
    Newest { before: Option<i64> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeFilter {
    Anyone,
    Unassigned,
    User(UserId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketQuery {
    pub scope: super::Scope,
    /// Empty: every state.
    pub states: Vec<TicketState>,
    pub severity: Option<Severity>,
    pub assignee: AssigneeFilter,
    /// Only open, unanswered tickets whose first response is due before this.
    pub response_due_before: Option<DateTime<Utc>>,
    /// Words to find: a ticket number (`RD-12` or `12`), or text in the
    /// customer's name or email, the cluster's name, the new cluster's
    /// name, the description or a message.
    pub search: Option<String>,
    pub order: TicketOrder,
    pub limit: i64,
}

/// How many tickets share a state, severity, assignee and response clock:
/// the queue's counts per filter are sums of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketTally {
    pub state: TicketState,
    pub severity: Severity,
    pub assignee_id: Option<UserId>,
    /// Open and unanswered with its first response past due.
    pub response_breached: bool,
    /// Open and unanswered with its first response due before the `soon`
    /// asked for (breached ones included).
    pub response_due_soon: bool,
    pub count: i64,
}
