//! Commands on an existing ticket, by people (claim, approve, reply, …) and
//! by the system (the job's progress, deadline warnings).

use crate::domain::ids::{ClusterId, JobId, TicketId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::notices::{self, Details};
use super::{DeskError, scope_for};
use crate::app::App;
use crate::backend::FleetView;
use crate::domain::actor::{Actor, Role};
use crate::domain::cluster::{Cluster, Connection};
use crate::domain::event::EventAction;
use crate::domain::restore_job::{self, ApplyContext, JobCommand, JobFacts, JobTransition};
use crate::domain::ticket::{
    self, JobRequest, Recorded, TargetCheck, TicketCommand, TicketFacts, TicketState,
};
use crate::domain::validation::{ValidationReport, validation_report};
use crate::store::{
    Commit, JobChange, JobGuard, JobOutputs, JobWrite, NewEvent, NewJob, NewMessage, RestoreJob,
    Scope, Ticket, TicketWrite, User,
};

/// Checks a target against the cluster's backups as they are now.
/// Refusals speak in `zone`: the one the customer entered the target in.
pub async fn validate_now(
    app: &App,
    target: DateTime<Utc>,
    cluster: &Cluster,
    zone: chrono_tz::Tz,
) -> Result<ValidationReport, DeskError> {
    let view = FleetView::read(&*app.backend, cluster).await?;
    Ok(validation_report(
        target,
        &view.context(cluster, app.policy(), app.now()).read_in(zone),
    ))
}

/// A ticket and what surrounds it, loaded by the caller.
pub struct Situation<'a> {
    pub ticket: &'a Ticket,
    pub cluster: &'a Cluster,
    pub job: Option<&'a RestoreJob>,
}

/// Who issues a command, and how their change is guarded.
pub struct Issuer<'a> {
    pub actor: Actor,
    pub name: Option<&'a str>,
    /// The person, when a person acts.
    pub user: Option<&'a User>,
    /// People decide on the version they saw; the engine's follow-ups only
    /// need the state to be unchanged.
    pub guard_version: bool,
    /// Names the change in the outbox dedupe keys.
    pub cause: String,
}

/// Facts for the notices of job outcomes.
#[derive(Debug, Default, Clone)]
pub struct Outcome<'a> {
    pub connection: Option<&'a Connection>,
    pub restored_point: Option<DateTime<Utc>>,
    pub new_cluster_id: Option<ClusterId>,
    /// When a starting restore should be done, and what says so.
    pub eta: Option<super::eta::Eta>,
}

/// The domain's change for a job transition, at this app's clock. Effects
/// that concern the ticket are returned for the caller to apply.
pub fn job_change(
    app: &App,
    job: &RestoreJob,
    transition: &JobTransition,
    guard: JobGuard,
    outputs: JobOutputs,
) -> (JobChange, Vec<TicketCommand>) {
    let context = ApplyContext {
        at: app.now(),
        fresh_cluster_id: ClusterId::new(),
    };
    restore_job::apply(job, transition, guard, outputs, context)
}

/// A job command the desk issues by itself, with no ticket to follow:
/// the transition, its change fenced by the job's run and its event, in
/// one commit at this app's clock (the caller may add to it). `None` when
/// the job's state refuses the command.
pub fn system_job_commit(
    app: &App,
    job: &RestoreJob,
    command: &JobCommand,
    detail: String,
) -> Option<Commit> {
    let transition =
        restore_job::transition(job.state, command, &Actor::SYSTEM, &job_facts(app, job)).ok()?;
    let (change, _) = job_change(
        app,
        job,
        &transition,
        JobGuard::State { run: job.run },
        JobOutputs::default(),
    );
    let mut commit = Commit::at(app.now());
    commit.events.push(NewEvent {
        ticket_id: job.ticket_id,
        job_id: Some(job.id),
        actor: Actor::SYSTEM,
        action: EventAction::of_job(command),
        from_state: Some(job.state.as_str().into()),
        to_state: Some(transition.to.as_str().into()),
        detail,
        at: commit.at,
    });
    commit.job = Some(JobWrite::Change(Box::new(change)));
    Some(commit)
}

pub fn job_facts(app: &App, job: &RestoreJob) -> JobFacts {
    JobFacts {
        kind: job.kind,
        // Read from the job's ticket by its callers when it matters; the
        // worker, which decides the step after verifying, sets it.
        inspect: false,
        attempt: u32::try_from(job.attempt).unwrap_or(1),
        now: app.now(),
        policy: app.settings.retry_policy(),
        last_error: job.last_error.clone(),
    }
}

/// The job write a ticket command's `JobRequest` becomes.
fn job_write(
    app: &App,
    situation: &Situation<'_>,
    request: JobRequest,
    target: DateTime<Utc>,
    actor: &Actor,
    commit: &mut Commit,
) -> Result<JobWrite, DeskError> {
    let ticket = situation.ticket;
    let command = match request {
        JobRequest::Create => {
            return Ok(JobWrite::Create(NewJob {
                id: JobId::new(),
                kind: crate::domain::restore_job::JobKind::Restore,
                ticket_id: Some(ticket.id),
                source_cluster_id: ticket.cluster_id,
                target_time: ticket.target_time,
                new_cluster_id: ClusterId::new(),
                drill_zone: None,
            }));
        }
        JobRequest::Cancel => JobCommand::Cancel,
        JobRequest::Retry => JobCommand::Retry,
        JobRequest::Accept => JobCommand::Accept,
        // The ticket's new target, which the same change writes.
        JobRequest::MoveForward => JobCommand::MoveForward { target },
        JobRequest::GoBack => JobCommand::GoBack { target },
    };
    let job = situation.job.ok_or(DeskError::Stale)?;
    // A customer's cancel or decision reaches the job through the ticket,
    // which already authorised it; the job sees the system acting for them.
    let job_actor = if actor.role == Role::Customer {
        Actor::SYSTEM
    } else {
        *actor
    };
    let transition = restore_job::transition(job.state, &command, &job_actor, &job_facts(app, job))
        .map_err(DeskError::JobRefused)?;
    let (change, _) = job_change(
        app,
        job,
        &transition,
        JobGuard::State { run: job.run },
        JobOutputs::default(),
    );
    commit.events.push(NewEvent {
        ticket_id: Some(ticket.id),
        job_id: Some(job.id),
        actor: *actor,
        action: EventAction::of_job(&command),
        from_state: Some(job.state.as_str().into()),
        to_state: Some(transition.to.as_str().into()),
        detail: String::new(),
        at: commit.at,
    });
    Ok(JobWrite::Change(Box::new(change)))
}

fn event_detail(command: &TicketCommand, issuer: &Issuer<'_>, ticket: &Ticket) -> String {
    match command {
        TicketCommand::Claim => format!("assigned to {}", issuer.name.unwrap_or("staff")),
        TicketCommand::RequestInfo { .. } => "asked the customer for information".into(),
        TicketCommand::Reply { .. } => "public reply".into(),
        TicketCommand::Note { .. } => "internal note".into(),
        TicketCommand::Approve { .. } => "target re-checked against the backup window".into(),
        TicketCommand::Reject { reason }
        | TicketCommand::CancelRestore { reason }
        | TicketCommand::Cancel { reason } => reason.trim().to_string(),
        TicketCommand::JobFailed { reason } => reason.clone(),
        TicketCommand::ChangeTarget {
            target, time_zone, ..
        } => format!(
            "from {} to {} ({time_zone})",
            ticket
                .target_time
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            target.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        ),
        TicketCommand::WarnDeadline => format!("deadline {}", ticket.deadline.to_rfc3339()),
        _ => String::new(),
    }
}

/// The check of the target a command was decided with, if it needed one.
#[derive(Debug, Clone)]
pub struct Checked {
    pub target: TargetCheck,
    pub report: Option<ValidationReport>,
}

impl Checked {
    /// No check: the command does not depend on the window.
    pub fn none() -> Checked {
        Checked {
            target: TargetCheck::NotChecked,
            report: None,
        }
    }
}

/// Decides `command` on the ticket and adds the state change and all its
/// effects — messages, the job, the event, the emails — to `commit`.
pub async fn plan(
    app: &App,
    situation: &Situation<'_>,
    command: &TicketCommand,
    issuer: &Issuer<'_>,
    checked: Checked,
    outcome: &Outcome<'_>,
    commit: &mut Commit,
) -> Result<TicketState, DeskError> {
    let ticket = situation.ticket;
    let facts = TicketFacts {
        assignee: ticket.assignee_id,
        target_check: checked.target,
        job: situation.job.map(|j| j.state),
        deadline_warned: ticket.deadline_warned_at.is_some(),
        target: ticket.target_time,
    };
    let transition = ticket::transition(ticket.state, command, &issuer.actor, &facts)
        .map_err(DeskError::Refused)?;
    let to = transition.to;
    let recorded = Recorded {
        validation_report: checked.report,
        new_cluster_id: outcome.new_cluster_id,
    };
    let decision = ticket::apply(
        ticket,
        command,
        transition,
        issuer.guard_version,
        recorded,
        commit.at,
    );
    for (visibility, body) in decision.messages {
        commit.messages.push(NewMessage {
            id: Uuid::new_v4(),
            ticket_id: ticket.id,
            author: issuer.actor,
            visibility,
            body,
        });
    }
    if let Some(request) = decision.job {
        let target = decision.after.target_time;
        commit.job = Some(job_write(
            app,
            situation,
            request,
            target,
            &issuer.actor,
            commit,
        )?);
    }
    commit.events.push(NewEvent {
        ticket_id: Some(ticket.id),
        job_id: situation.job.map(|j| j.id),
        actor: issuer.actor,
        action: EventAction::of_ticket(command),
        from_state: Some(ticket.state.as_str().into()),
        to_state: Some(to.as_str().into()),
        detail: event_detail(command, issuer, ticket),
        at: commit.at,
    });
    let details = Details {
        eta: outcome.eta.clone(),
        actor: issuer.user,
        text: decision.notice_text.as_deref(),
        actor_name: issuer.name,
        connection: outcome.connection,
        restored_point: outcome.restored_point,
    };
    let mail = notices::outbox_for(
        app,
        &decision.after,
        &situation.cluster.name,
        &decision.notices,
        &details,
        &issuer.cause,
    )
    .await?;
    commit.outbox.extend(mail);
    commit.ticket = Some(TicketWrite::Change(decision.change));
    Ok(to)
}

/// A person's command on a ticket: checked, planned and committed, or
/// refused with nothing changed. `expected_version` is the version the
/// person saw; a different one means someone else acted first.
pub async fn act(
    app: &App,
    user: &User,
    ticket_id: TicketId,
    command: TicketCommand,
    expected_version: Option<i64>,
) -> Result<Ticket, DeskError> {
    let ticket = app
        .store
        .ticket(ticket_id, scope_for(user))
        .await?
        .ok_or(DeskError::NotFound)?;
    if expected_version.is_some_and(|v| v != ticket.version) {
        return Err(DeskError::Stale);
    }
    let cluster = app
        .store
        .cluster(ticket.cluster_id, Scope::Everything)
        .await?
        .ok_or(DeskError::NotFound)?;
    let job = app.store.job_for_ticket(ticket.id).await?;
    // Approval re-checks the target: the window has slid since filing. A
    // new target is checked like a new request's.
    let to_check = match &command {
        TicketCommand::Approve { .. }
            if user.role.works_tickets() && ticket.state == TicketState::InReview =>
        {
            Some((ticket.target_time, ticket.time_zone.as_str()))
        }
        TicketCommand::ChangeTarget {
            target, time_zone, ..
        }
        | TicketCommand::MoveForward {
            target, time_zone, ..
        }
        | TicketCommand::GoBack {
            target, time_zone, ..
        } => Some((*target, time_zone.as_str())),
        _ => None,
    };
    let checked = match to_check {
        Some((target, zone)) => {
            let report = validate_now(
                app,
                target,
                &cluster,
                zone.parse().unwrap_or(chrono_tz::Tz::UTC),
            )
            .await?;
            let target = match &report.error {
                None => TargetCheck::Passed,
                Some(error) => TargetCheck::Failed(error.clone()),
            };
            Checked {
                target,
                report: Some(report),
            }
        }
        None => Checked::none(),
    };
    let mut commit = Commit::at(app.now());
    let issuer = Issuer {
        actor: user.actor(),
        name: Some(&user.display_name),
        user: Some(user),
        guard_version: true,
        cause: format!("ticket:{}:v{}", ticket.id, ticket.version),
    };
    let situation = Situation {
        ticket: &ticket,
        cluster: &cluster,
        job: job.as_ref(),
    };
    plan(
        app,
        &situation,
        &command,
        &issuer,
        checked,
        &Outcome::default(),
        &mut commit,
    )
    .await?;
    app.commit(commit).await?;
    metrics::counter!("restore_desk_ticket_commands_total", "command" => command.name())
        .increment(1);
    tracing::info!(ticket = %ticket.reference(), command = command.name(), actor = %user.email, "ticket command applied");
    app.store
        .ticket(ticket.id, Scope::Everything)
        .await?
        .ok_or(DeskError::NotFound)
}

/// Moves a ticket's target before approval. The new moment is read and
/// checked like a new request's; a refusal changes nothing.
pub async fn change_target(
    app: &App,
    user: &User,
    ticket_id: TicketId,
    target: &crate::domain::validation::TargetInput,
    transaction: Option<crate::domain::transactions::TransactionTarget>,
    reason: &str,
    expected_version: Option<i64>,
) -> Result<Ticket, DeskError> {
    let target = read_target(app, user, ticket_id, target, transaction).await?;
    let command = TicketCommand::ChangeTarget {
        target: target.utc,
        time_zone: target.time_zone.name().to_string(),
        transaction,
        reason: reason.to_string(),
    };
    act(app, user, ticket_id, command, expected_version).await
}

/// A new target as a person gave it: a moment read in its zone, or the
/// moment a transaction of the archived log stands for (refused when the
/// log holds no such transaction). Nothing is checked against the window
/// yet: the command's own check does that.
async fn read_target(
    app: &App,
    user: &User,
    ticket_id: TicketId,
    target: &crate::domain::validation::TargetInput,
    transaction: Option<crate::domain::transactions::TransactionTarget>,
) -> Result<crate::domain::validation::TargetTime, DeskError> {
    match transaction {
        None => crate::domain::validation::parse_target(target),
        Some(chosen) => {
            let ticket = app
                .store
                .ticket(ticket_id, scope_for(user))
                .await?
                .ok_or(DeskError::NotFound)?;
            let cluster = app
                .store
                .cluster(ticket.cluster_id, Scope::Everything)
                .await?
                .ok_or(DeskError::NotFound)?;
            let zone = ticket.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC);
            super::filing::moment_of_transaction(app, &cluster, chosen, zone).await?
        }
    }
    .map_err(|error| DeskError::Invalid(vec![error]))
}

/// Where a paused copy goes next, as the customer asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirect {
    /// The same copy replays on to a later moment.
    Forward,
    /// A new restore reaches an earlier moment.
    Back,
}

/// The customer moves a paused copy forward or back. The new target is
/// read and checked like a new request's; a refusal (a moment not after,
/// or not before, the copy's own; one outside the window or only in an
/// offline zone; an unknown transaction) changes nothing.
pub async fn redirect(
    app: &App,
    user: &User,
    ticket_id: TicketId,
    way: Redirect,
    target: &crate::domain::validation::TargetInput,
    transaction: Option<crate::domain::transactions::TransactionTarget>,
    expected_version: Option<i64>,
) -> Result<Ticket, DeskError> {
    let target = read_target(app, user, ticket_id, target, transaction).await?;
    let (target, time_zone) = (target.utc, target.time_zone.name().to_string());
    let command = match way {
        Redirect::Forward => TicketCommand::MoveForward {
            target,
            time_zone,
            transaction,
        },
        Redirect::Back => TicketCommand::GoBack {
            target,
            time_zone,
            transaction,
        },
    };
    act(app, user, ticket_id, command, expected_version).await
}
