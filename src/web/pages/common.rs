//! Views both the customer portal and the staff console show: clusters with
//! their timelines, tickets, messages, events and the job's progress.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;

use crate::domain::ids::{ClusterId, JobId, UserId};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::App;
use crate::desk::read::cluster_backups;
use crate::desk::scope_for;
use crate::domain::cluster::Cluster;
use crate::domain::sla::{self, ResponseClock};
use crate::domain::ticket::{TicketState, Visibility};
use crate::store::{Event, Message, RestoreJob, Scope, Ticket, User};
use crate::web::ValidPath;
use crate::web::auth::AnyUser;
use crate::web::error::{AppError, AppResult};
use crate::web::timeline::{self, TimelineHtml, TimelineInput};
use crate::web::views::{Countdown, Stamp, Times, role_label};

/// Parses an id from a path; anything else is simply not found.
pub use crate::web::parse_id;

/// A cluster with its backups drawn.
pub struct ClusterCard {
    pub cluster: Cluster,
    pub created: Stamp,
    pub deleted: Option<Stamp>,
    /// A deleted cluster's last restorable moment: the end of its grace.
    pub restorable_until: Option<Stamp>,
    /// Earliest and latest moments the zones online now can restore.
    pub window: Option<(Stamp, Stamp)>,
    /// The earlier start the offline zones give back once they return.
    pub wider_from: Option<Stamp>,
    /// The timeline as drawn (HTML this desk rendered and escaped).
    pub timeline: Arc<String>,
    pub offline_zones: String,
}

impl ClusterCard {
    pub fn restorable(&self) -> bool {
        self.window.is_some()
    }
}

pub async fn cluster_card(
    app: &App,
    cluster: Cluster,
    times: &Times,
    target: Option<DateTime<Utc>>,
) -> AppResult<ClusterCard> {
    // Counted before reading, so a write meanwhile makes the drawing stale.
    let writes = app.store.writes();
    let backups = cluster_backups(app, &cluster).await?;
    let (catalog, online, window) = (&backups.view.catalog, backups.view.online, backups.window);
    let key = (cluster.id, times.zone.name(), target);
    let draw = async {
        let id = format!("tl-{}", cluster.id.uuid().simple());
        let timeline = timeline::build(&TimelineInput {
            id: &id,
            cluster_name: &cluster.name,
            catalog,
            online,
            window,
            window_now: backups.window_now,
            deleted_at: cluster.deleted_at,
            target,
            policy: app.policy(),
            now: times.now,
            zone: times.zone,
        });
        TimelineHtml { t: &timeline }.render()
    };
    let timeline = app
        .reads
        .timelines
        .get_or_read(key, writes, times.now, draw)
        .await?;
    let offline: Vec<&str> = backups.offline_zones().iter().map(|z| z.as_str()).collect();
    Ok(ClusterCard {
        created: times.stamp(cluster.created_at),
        deleted: times.maybe(cluster.deleted_at),
        restorable_until: cluster
            .deleted_at
            .map(|d| times.stamp(d + app.policy().deleted_grace)),
        window: backups
            .window_now
            .map(|w| (times.stamp(w.earliest), times.stamp(w.latest))),
        wider_from: times.maybe(backups.wider_when_back()),
        timeline,
        offline_zones: offline.join(", "),
        cluster,
    })
}

pub fn fleet(error: crate::backend::FleetError) -> AppError {
    AppError::from(error)
}

/// Clusters a customer can still file for: live ones, and deleted ones in
/// their grace period.
pub fn fileable(app: &App, cluster: &Cluster) -> bool {
    !cluster.life().restore_expired(&app.policy(), app.now())
}

/// One row of a ticket list.
pub struct TicketRow {
    pub ticket: Ticket,
    pub reference: String,
    pub cluster_name: String,
    pub target: Stamp,
    /// "just before transaction 1234, committed 25 Nov 2026, 10:59:58.000000
    /// CET" when the target is a transaction.
    pub transaction: Option<String>,
    pub created: Stamp,
    pub deadline: Stamp,
    pub left: Countdown,
    pub first_response: Stamp,
    pub first_response_missed: bool,
    /// Where the first-response clock stands, and its countdown while it runs.
    pub response: ResponseClock,
    pub response_left: Countdown,
    /// Breached or due soon, as a badge: `(class, words)`.
    pub response_badge: Option<(&'static str, &'static str)>,
    pub assignee: Option<String>,
    pub job: Option<JobView>,
    pub state_class: &'static str,
}

pub fn state_class(state: TicketState) -> &'static str {
    match state {
        TicketState::Submitted | TicketState::Triage => "new",
        TicketState::InReview | TicketState::Approved => "active",
        TicketState::AwaitingCustomer => "waiting",
        TicketState::Restoring => "active",
        TicketState::AwaitingDecision => "waiting",
        TicketState::Completed => "done",
        TicketState::Failed | TicketState::Rejected => "bad",
        TicketState::Cancelled => "muted",
    }
}

pub fn ticket_row(
    ticket: Ticket,
    times: &Times,
    clusters: &HashMap<ClusterId, String>,
    names: &HashMap<UserId, String>,
    job: Option<&RestoreJob>,
) -> TicketRow {
    let response = ResponseClock::of(
        ticket.first_response_due,
        ticket.first_response_at,
        !ticket.state.is_terminal(),
        times.now,
    );
    let response_badge = match response {
        ResponseClock::Breached => Some(("bad", "Response breached")),
        ResponseClock::DueSoon => Some(("waiting", "Response due soon")),
        _ => None,
    };
    TicketRow {
        response,
        response_badge,
        response_left: times.until_within(ticket.first_response_due, sla::response_soon()),
        reference: ticket.reference(),
        cluster_name: clusters
            .get(&ticket.cluster_id)
            .cloned()
            .unwrap_or_else(|| "(unknown cluster)".into()),
        target: times.stamp(ticket.target_time),
        transaction: ticket.transaction.map(|t| {
            format!(
                "{}, committed {}",
                t.describe(),
                crate::web::views::micros_in(t.committed_at(ticket.target_time), times.zone).local
            )
        }),
        created: times.stamp(ticket.created_at),
        deadline: times.stamp(ticket.deadline),
        left: times.until(ticket.deadline),
        first_response: times.stamp(ticket.first_response_due),
        first_response_missed: matches!(response, ResponseClock::Missed | ResponseClock::Breached),
        assignee: ticket.assignee_id.and_then(|id| names.get(&id).cloned()),
        job: job.map(|j| job_view(j, times)),
        state_class: state_class(ticket.state),
        ticket,
    }
}

/// Cluster names by id, deleted ones included, within `scope`.
pub async fn cluster_names(app: &App, scope: Scope) -> AppResult<HashMap<ClusterId, String>> {
    Ok(app
        .store
        .clusters(scope, true)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect())
}

/// Display names of the given people.
pub async fn people(app: &App, ids: Vec<UserId>) -> AppResult<HashMap<UserId, String>> {
    Ok(app.store.display_names(&ids).await?)
}

/// Everyone a ticket page names: message authors, actors in its history,
/// and its engineer.
pub async fn ticket_people(
    app: &App,
    ticket: &Ticket,
    messages: &[Message],
    events: &[Event],
) -> AppResult<HashMap<UserId, String>> {
    let ids = messages
        .iter()
        .filter_map(|m| m.author_id)
        .chain(events.iter().filter_map(|e| e.actor_id))
        .chain(ticket.assignee_id)
        .collect();
    people(app, ids).await
}

/// The target as the customer typed it: in their zone, with its name.
pub fn target_as_entered(ticket: &Ticket) -> String {
    let entered = crate::web::views::zone_of(&ticket.time_zone);
    format!(
        "{} ({})",
        crate::web::views::precise_in(ticket.target_time, entered),
        entered.name()
    )
}

pub struct JobView {
    /// While the log is replayed: how far, against the target.
    pub replayed: Option<String>,
    /// "Should be done by 12:03 CET (from 4 restores of this cluster,
    /// median 41 s)", or that there is no estimate yet; none once it rests.
    pub eta: Option<String>,
    pub id: JobId,
    pub state: &'static str,
    pub step: &'static str,
    pub detail: String,
    pub progress: i64,
    pub terminal: bool,
    pub failed: bool,
    pub attempt: i64,
    pub run: i64,
    pub snapshot: Option<String>,
    pub zone: Option<&'static str>,
    pub last_error: Option<String>,
    /// Why a job nobody has taken up yet waits: no host runs, or none
    /// has room.
    pub waiting: Option<String>,
    /// The restore host running it.
    pub host: Option<String>,
    pub stalled_since: Option<Stamp>,
    pub reached_point: Option<Stamp>,
    pub updated: Stamp,
}

/// "Replayed up to 14:31:05 CET of 14:35:00 CET" while the log is replayed.
pub fn replayed_text(job: &RestoreJob, times: &Times) -> Option<String> {
    use crate::domain::restore_job::JobState;
    let reached = job
        .replayed_to
        .filter(|_| job.state == JobState::ReplayingLog)?;
    Some(format!(
        "Replayed up to {} of {}",
        times.precise(reached).local,
        times.precise(job.target_time).local
    ))
}

pub fn job_view(job: &RestoreJob, times: &Times) -> JobView {
    use crate::domain::restore_job::JobState;
    JobView {
        eta: None,
        replayed: replayed_text(job, times),
        id: job.id,
        state: job.state.as_str(),
        step: job.state.label(),
        detail: job.step_detail.clone(),
        progress: job.progress.clamp(0, 100),
        terminal: job.state.is_terminal(),
        failed: matches!(job.state, JobState::Failed | JobState::Failing),
        attempt: job.attempt,
        run: job.run,
        snapshot: job.snapshot_id.clone(),
        zone: job.zone.map(|z| z.as_str()),
        last_error: job.last_error.clone(),
        waiting: job
            .last_error
            .clone()
            .filter(|_| job.state == JobState::Queued && job.host.is_none())
            .filter(|_| {
                matches!(
                    job.last_error_code.as_deref(),
                    Some(
                        crate::domain::capacity::INSUFFICIENT_DISK
                            | crate::domain::capacity::NO_RESTORE_HOST
                    )
                )
            }),
        host: job.host.clone(),
        stalled_since: times.maybe(job.stalled_since),
        reached_point: job.reached_point.map(|t| times.precise(t)),
        updated: times.stamp(job.updated_at),
    }
}

pub struct MessageView {
    pub author: String,
    pub from_staff: bool,
    pub internal: bool,
    pub body: String,
    pub at: Stamp,
}

pub fn message_views(
    messages: Vec<Message>,
    names: &HashMap<UserId, String>,
    times: &Times,
) -> Vec<MessageView> {
    messages
        .into_iter()
        .map(|m| MessageView {
            author: m
                .author_id
                .and_then(|id| names.get(&id).cloned())
                .unwrap_or_else(|| role_label(m.author_role).to_string()),
            from_staff: m.author_role.works_tickets(),
            internal: m.visibility == Visibility::Internal,
            body: m.body,
            at: times.stamp(m.created_at),
        })
        .collect()
}

pub struct EventView {
    pub label: String,
    pub actor: String,
    /// `(from, to)` when the state changed.
    pub change: Option<(String, String)>,
    pub detail: String,
    pub at: Stamp,
}

impl EventView {
    pub fn to(&self) -> Option<&str> {
        self.change.as_ref().map(|(_, to)| to.as_str())
    }
}

fn state_words(state: &Option<String>) -> Option<String> {
    state.as_deref().map(|s| {
        if let Ok(state) = s.parse::<TicketState>() {
            state.label().to_string()
        } else if let Ok(step) = s.parse::<crate::domain::restore_job::JobState>() {
            step.label().to_string()
        } else {
            s.replace('_', " ")
        }
    })
}

pub fn event_views(
    events: Vec<Event>,
    names: &HashMap<UserId, String>,
    times: &Times,
    for_customer: bool,
) -> Vec<EventView> {
    events
        .into_iter()
        .filter(|e| !for_customer || e.action.customer_may_see())
        .map(|e| {
            let actor = e
                .actor_id
                .and_then(|id| names.get(&id).cloned())
                .map(|name| format!("{name} ({})", role_label(e.actor_role).to_lowercase()))
                .unwrap_or_else(|| role_label(e.actor_role).to_string());
            let detail = if for_customer && !e.action.detail_is_public() {
                String::new()
            } else {
                e.detail.clone()
            };
            EventView {
                label: e.action.label().to_string(),
                actor,
                change: if e.from_state != e.to_state {
                    state_words(&e.to_state).map(|to| {
                        (
                            state_words(&e.from_state).unwrap_or_else(|| "new".into()),
                            to,
                        )
                    })
                } else {
                    None
                },
                detail,
                at: times.stamp(e.created_at),
            }
        })
        .collect()
}

/// What the progress bar polls.
#[derive(Debug, Serialize)]
pub struct ProgressJson {
    pub state: String,
    pub state_label: String,
    pub version: i64,
    pub terminal: bool,
    pub job: Option<ProgressJob>,
}

#[derive(Debug, Serialize)]
pub struct ProgressJob {
    pub state: String,
    pub step: String,
    pub detail: String,
    pub progress: i64,
    /// "Replayed up to … of …", in the reader's zone.
    pub replayed: Option<String>,
}

/// `GET /tickets/{id}/progress`: the ticket's state and its job's progress,
/// for the live progress bar.
pub async fn progress(
    State(app): State<App>,
    AnyUser(viewer): AnyUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Json<ProgressJson>> {
    let id = parse_id(&id)?;
    let ticket = app
        .store
        .ticket(id, scope_for(&viewer.user))
        .await?
        .ok_or_else(AppError::not_found)?;
    let job = app.job_of(&ticket).await?;
    // The customer reads the ticket in the zone its target was entered in.
    let times = if viewer.user.role == crate::domain::actor::Role::Customer {
        Times::new(crate::web::views::zone_of(&ticket.time_zone), app.now())
    } else {
        times_for(&app, &viewer.user)
    };
    Ok(Json(ProgressJson {
        state: ticket.state.as_str().into(),
        state_label: ticket.state.label().into(),
        version: ticket.version,
        terminal: ticket.state.is_terminal(),
        job: job.map(|j| ProgressJob {
            replayed: replayed_text(&j, &times),
            state: j.state.as_str().into(),
            step: j.state.label().into(),
            detail: j.step_detail,
            progress: j.progress.clamp(0, 100),
        }),
    }))
}

/// A job's view with its expected end, in `times`' zone.
pub async fn job_view_with_eta(app: &App, job: &RestoreJob, times: &Times) -> AppResult<JobView> {
    let mut view = job_view(job, times);
    // A paused copy waits for a person, not for the fleet.
    let waiting_for_a_person = job.state == crate::domain::restore_job::JobState::Paused;
    if !job.state.is_terminal() && !job.state.is_compensating() && !waiting_for_a_person {
        view.eta = Some(match crate::desk::eta::of_job(app, job).await? {
            Some(eta) if eta.overrun || eta.step_overrun => format!(
                "Running past three times its estimate: it should have been done by {} ({})",
                times.precise(eta.done_by).local,
                eta.estimate.basis()
            ),
            Some(eta) => format!(
                "Should be done by {} ({})",
                times.precise(eta.done_by).local,
                eta.estimate.basis()
            ),
            None => "No estimate yet: this cluster has no finished restore to learn from".into(),
        });
    }
    Ok(view)
}

/// A cluster's last restore test as its customer reads it: "passed 3 days
/// ago, took 41 s", the moment in a `<time>` with UTC a tap away.
pub struct LastTestView {
    pub passed: bool,
    pub when: Stamp,
    /// "3 days ago", "just now".
    pub ago: String,
    pub took: String,
}

pub fn last_test_view(
    result: Option<&crate::domain::drill::DrillResult>,
    times: &Times,
) -> Option<LastTestView> {
    let result = result?;
    Some(LastTestView {
        passed: result.passed,
        when: times.stamp(result.finished_at),
        ago: crate::web::views::ago(result.finished_at, times.now),
        took: crate::domain::eta::words(result.duration()),
    })
}

/// The viewer's times.
pub fn times_for(app: &App, user: &User) -> Times {
    Times::for_user(user, app.now())
}

/// Another open request, as a warning or a list links to it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenRequest {
    pub id: crate::domain::ids::TicketId,
    pub reference: String,
    pub state: &'static str,
    pub new_cluster_name: String,
}

/// Open tickets inside `scope` that `keep` selects, newest first.
pub async fn open_requests(
    app: &App,
    scope: crate::store::Scope,
    keep: impl Fn(&crate::store::Ticket) -> bool,
) -> AppResult<Vec<OpenRequest>> {
    let tickets = app
        .store
        .tickets(&crate::store::TicketQuery {
            scope,
            states: crate::web::queue::open_states(),
            severity: None,
            assignee: crate::store::AssigneeFilter::Anyone,
            response_due_before: None,
            search: None,
            order: crate::store::TicketOrder::Newest { before: None },
            limit: 100,
        })
        .await?;
    Ok(tickets
        .into_iter()
        .filter(|t| keep(t))
        .map(|t| OpenRequest {
            id: t.id,
            reference: t.reference(),
            state: t.state.label(),
            new_cluster_name: t.new_cluster_name.clone(),
        })
        .collect())
}

/// Whether `user` may move the ticket's target now: the lifecycle decides,
/// as if the new target had passed its check.
pub fn may_change_target(ticket: &Ticket, job: Option<&RestoreJob>, user: &User) -> bool {
    use crate::domain::ticket::{self, TargetCheck, TicketCommand, TicketFacts};
    let facts = TicketFacts {
        assignee: ticket.assignee_id,
        target_check: TargetCheck::Passed,
        job: job.map(|j| j.state),
        deadline_warned: ticket.deadline_warned_at.is_some(),
        target: ticket.target_time,
    };
    let command = TicketCommand::ChangeTarget {
        target: ticket.target_time,
        time_zone: ticket.time_zone.clone(),
        transaction: None,
        reason: "x".into(),
    };
    ticket::transition(ticket.state, &command, &user.actor(), &facts).is_ok()
}

/// A form's date and time fields as one local time, empty until both are
/// given.
pub fn local_time_of(date: &str, time: &str) -> String {
    let (date, time) = (date.trim(), time.trim());
    if date.is_empty() || time.is_empty() {
        String::new()
    } else {
        format!("{date}T{time}")
    }
}

/// A form that moves a ticket's target before approval, as either ticket
/// page shows it: the date, time and zone to restore to, and why.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TargetForm {
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub date: String,
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub time_zone: String,
    #[serde(default)]
    pub utc_offset: String,
    #[serde(default)]
    pub reason: String,
    /// A transaction chosen from what happened around the moment.
    #[serde(default)]
    pub transaction: String,
    #[serde(default)]
    pub position: String,
}

impl TargetForm {
    /// The transaction chosen, when both of its fields were sent.
    pub fn transaction(&self) -> Option<crate::domain::transactions::TransactionTarget> {
        Some(crate::domain::transactions::TransactionTarget {
            xid: self.transaction.trim().parse().ok()?,
            position: self.position.trim().parse().ok()?,
        })
    }

    /// The new target as typed: a wall-clock time in the chosen zone.
    pub fn input(&self) -> crate::domain::validation::TargetInput {
        crate::domain::validation::TargetInput::Local {
            local_time: local_time_of(&self.date, &self.time),
            time_zone: self.time_zone.clone(),
            utc_offset: Some(self.utc_offset.trim().to_string()).filter(|o| !o.is_empty()),
        }
    }
}

/// The target form on a page: what it starts from, or what was typed and
/// why it was refused.
#[derive(Clone)]
pub struct TargetFormView {
    pub action: String,
    pub cluster_id: String,
    /// The ticket's target, for the page of what happened around it.
    pub around: String,
    pub transaction: String,
    pub position: String,
    pub date: String,
    pub time: String,
    pub zone: String,
    pub reason: String,
    pub errors: Vec<String>,
    pub zones: &'static [&'static str],
    /// A paused copy's customer moves it forward or back: `action` is the
    /// ticket's address, each button adds its way.
    pub decide: bool,
}

impl TargetFormView {
    /// Starts from the ticket's target, read in the zone it was entered in.
    pub fn for_ticket(ticket: &Ticket, action: String) -> TargetFormView {
        let zone = crate::web::views::zone_of(&ticket.time_zone);
        let local = ticket.target_time.with_timezone(&zone);
        TargetFormView {
            action,
            cluster_id: ticket.cluster_id.to_string(),
            around: crate::web::views::iso(ticket.target_time),
            transaction: ticket
                .transaction
                .map(|t| t.xid.to_string())
                .unwrap_or_default(),
            position: ticket
                .transaction
                .map(|t| t.position.as_str().to_string())
                .unwrap_or_default(),
            date: local.format("%Y-%m-%d").to_string(),
            time: local.format("%H:%M:%S").to_string(),
            zone: zone.name().to_string(),
            reason: String::new(),
            errors: Vec::new(),
            zones: super::customer::request::ZONES.as_slice(),
            decide: false,
        }
    }

    /// The paused copy's form: forward or back from the copy's moment.
    pub fn for_decision(ticket: &Ticket) -> TargetFormView {
        TargetFormView {
            decide: true,
            ..TargetFormView::for_ticket(ticket, format!("/tickets/{}", ticket.id))
        }
    }

    /// What was typed comes back with every reason it was refused.
    pub fn refused(mut self, typed: &TargetForm, errors: &super::FormErrors) -> TargetFormView {
        self.date = typed.date.clone();
        self.time = typed.time.clone();
        self.zone = typed.time_zone.clone();
        self.reason = typed.reason.clone();
        self.transaction = typed.transaction.clone();
        self.position = typed.position.clone();
        self.errors = errors.0.iter().map(|e| e.message.clone()).collect();
        self
    }
}
