//! Filing a restore request: validated at once against the real catalog, so
//! the customer sees the answer before anything is stored.

use chrono::DateTime;
use chrono::Utc;

use super::notices::{self, Details};
use super::{DeskError, scope_for, validate_now};
use crate::app::App;
use crate::domain::actor::{Actor, Role};
use crate::domain::catalog::RestorePlan;
use crate::domain::cluster::Cluster;
use crate::domain::event::EventAction;
use crate::domain::ids::{ClusterId, TicketId};
use crate::domain::sla::{self, Severity};
use crate::domain::ticket::{
    self, TargetCheck, TicketCommand, TicketEffect, TicketFacts, TicketState,
};
use crate::domain::transactions::TransactionTarget;
use crate::domain::validation::{
    CLUSTER_FIELD, ClusterName, NAME_FIELD, TargetInput, TargetTime, ValidationCode,
    ValidationError, ValidationReport, parse_target,
};
use crate::store::{Commit, NewEvent, NewTicket, StoreError, Ticket, TicketWrite, Unique, User};

/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct FilingRequest {
    pub cluster_id: Option<ClusterId>,
    /// The moment; with `transaction`, only its zone counts (the zone the
    /// customer reads times in).
    pub target: TargetInput,
    /// Restore to just before or just after this transaction instead.
    pub transaction: Option<TransactionTarget>,
    pub new_cluster_name: String,
    pub severity: Severity,
    pub description: String,
    /// Stop the restored copy paused and read-only at the target for the
    /// customer to inspect before it is handed over.
    pub inspect: bool,
}

/// A request that passed every rule of SPEC §4.
#[derive(Debug, Clone)]
pub struct CheckedRequest {
    pub cluster: Cluster,
    /// With a transaction target, the moment it stands for.
    pub target: TargetTime,
    pub transaction: Option<TransactionTarget>,
    pub name: ClusterName,
    pub report: ValidationReport,
    pub plan: RestorePlan,
    pub deadline: DateTime<Utc>,
}

fn not_found() -> ValidationError {
    ValidationError::new(
        ValidationCode::ClusterNotFound,
        CLUSTER_FIELD,
        "Choose one of your subscription's clusters",
    )
}

/// Runs every rule of SPEC §4 and returns all refusals, field by field, or
/// the checked request. Writes nothing.
pub async fn check_request(
    app: &App,
    requester: &User,
    request: &FilingRequest,
) -> Result<CheckedRequest, DeskError> {
    if requester.role != Role::Customer {
        return Err(DeskError::Refused(ticket::Refusal::Forbidden));
    }
    if let Some((_, c)) = crate::domain::text::forbidden_char(&request.description) {
        return Err(DeskError::BadInput {
            field: "description",
            message: crate::domain::text::forbidden_char_message("description", c),
        });
    }
    if request.description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(DeskError::BadInput {
            field: "description",
            message: format!(
                "The description is {} characters long; the limit is {MAX_DESCRIPTION_CHARS}",
                request.description.chars().count()
            ),
        });
    }
    let mut errors = Vec::new();
    let cluster = match request.cluster_id {
        Some(id) => app.store.cluster(id, scope_for(requester)).await?,
        None => None,
    };
    if cluster.is_none() {
        errors.push(not_found());
    }
    let target = match (request.transaction, &cluster) {
        (None, _) => parse_target(&request.target),
        (Some(_), None) => Err(not_found()),
        (Some(transaction), Some(cluster)) => {
            moment_of_transaction(app, cluster, transaction, zone_of(&request.target)).await?
        }
    };
    let mut report = None;
    match (&cluster, &target) {
        (_, Err(error)) => errors.push(error.clone()),
        (Some(cluster), Ok(target)) => {
            let checked = validate_now(app, target.utc, cluster, target.time_zone).await?;
            if let Some(error) = &checked.error {
                errors.push(error.clone());
            }
            report = Some(checked);
        }
        (None, Ok(_)) => {}
    }
    let name = ClusterName::parse(&request.new_cluster_name);
    match (&name, &cluster) {
        (Err(error), _) => errors.push(error.clone()),
        (Ok(name), Some(cluster)) => {
            if app
                .store
                .cluster_name_in_use(
                    cluster.subscription_id,
                    &cluster.resource_group,
                    name.as_str(),
                )
                .await?
            {
                errors.push(name_taken(name, &cluster.resource_group));
            }
        }
        (Ok(_), None) => {}
    }
    if !errors.is_empty() {
        return Err(DeskError::Invalid(errors));
    }
    let (Some(cluster), Ok(target), Ok(name), Some(report)) = (cluster, target, name, report)
    else {
        return Err(DeskError::Invalid(vec![not_found()]));
    };
    let plan = report
        .plan
        .clone()
        .ok_or_else(|| DeskError::Invalid(vec![not_found()]))?;
    let deadline = sla::deadline(target.utc, &cluster.life(), &app.policy());
    Ok(CheckedRequest {
        cluster,
        target,
        transaction: request.transaction,
        name,
        report,
        plan,
        deadline,
    })
}

/// The zone a target's times are read in: the one given, else UTC.
fn zone_of(target: &TargetInput) -> chrono_tz::Tz {
    let name = match target {
        TargetInput::Instant { time_zone, .. } => time_zone.as_deref().unwrap_or(""),
        TargetInput::Local { time_zone, .. } => time_zone.as_str(),
    };
    name.trim().parse().unwrap_or(chrono_tz::Tz::UTC)
}

/// The moment a transaction target stands for, from the archived log; a
/// refusal when the log holds no such committed transaction.
pub async fn moment_of_transaction(
    app: &App,
    cluster: &Cluster,
    target: TransactionTarget,
    zone: chrono_tz::Tz,
) -> Result<Result<TargetTime, ValidationError>, DeskError> {
    Ok(match app.backend.transaction(cluster, target.xid).await? {
        Some(found) => Ok(TargetTime {
            utc: target.moment(found.committed_at),
            time_zone: zone,
        }),
        None => Err(ValidationError::new(
            ValidationCode::UnknownTransaction,
            TRANSACTION_FIELD,
            format!(
                "The archived log of {} holds no committed transaction {}: choose one from \
                 what happened around the moment (a rolled-back one restores nothing)",
                cluster.name, target.xid
            ),
        )),
    })
}

/// The field a transaction target is refused on.
pub const TRANSACTION_FIELD: &str = "transaction";

fn name_taken(name: &ClusterName, resource_group: &str) -> ValidationError {
    ValidationError::new(
        ValidationCode::ClusterNameTaken,
        NAME_FIELD,
        format!(
            "A cluster named {name} already exists in {resource_group}, or another open request \
             will create it: choose another name"
        ),
    )
}

/// Files a request: validates it, then stores the ticket, its events and the
/// emails to customer and staff in one transaction. Nothing is stored when
/// any rule fails.
pub async fn file_ticket(
    app: &App,
    requester: &User,
    request: &FilingRequest,
) -> Result<Ticket, DeskError> {
    let checked = check_request(app, requester, request).await?;
    let now = app.now();
    let facts = TicketFacts {
        assignee: None,
        target_check: TargetCheck::NotChecked,
        job: None,
        deadline_warned: false,
        target: checked.target.utc,
    };
    let validated = ticket::transition(
        TicketState::Submitted,
        &TicketCommand::AutoValidate,
        &Actor::SYSTEM,
        &facts,
    )
    .map_err(DeskError::Refused)?;
    let cluster = &checked.cluster;
    let new = NewTicket {
        id: TicketId::new(),
        number: None,
        subscription_id: cluster.subscription_id,
        requester_id: requester.id,
        cluster_id: cluster.id,
        resource_group: cluster.resource_group.clone(),
        target_time: checked.target.utc,
        time_zone: checked.target.time_zone.name().to_string(),
        transaction: checked.transaction,
        new_cluster_name: checked.name.to_string(),
        severity: request.severity,
        description: request.description.trim().to_string(),
        inspect: request.inspect,
        state: validated.to,
        validation_report: checked.report.clone(),
        deadline: checked.deadline,
        first_response_due: sla::first_response_due(now, request.severity),
    };
    // The emails describe the ticket as it will be stored; its number is
    // allocated in the commit, which puts it in their place.
    let mut ticket = new.as_ticket(now);
    let mut commit = Commit::at(now);
    let event = |actor: Actor,
                 action: EventAction,
                 from: Option<TicketState>,
                 to: TicketState,
                 detail: String| {
        NewEvent {
            ticket_id: Some(ticket.id),
            job_id: None,
            actor,
            action,
            from_state: from.map(|s| s.as_str().to_string()),
            to_state: Some(to.as_str().to_string()),
            detail,
            at: now,
        }
    };
    commit.events.push(event(
        requester.actor(),
        EventAction::File,
        None,
        TicketState::Submitted,
        format!("severity {}", request.severity),
    ));
    commit.events.push(event(
        Actor::SYSTEM,
        EventAction::AutoValidate,
        Some(TicketState::Submitted),
        validated.to,
        format!(
            "restorable from snapshot {} in {}",
            checked.plan.snapshot_id, checked.plan.zone
        ),
    ));
    let notices: Vec<_> = validated
        .effects
        .iter()
        .filter_map(|e| match e {
            TicketEffect::Notify(notice) => Some(*notice),
            _ => None,
        })
        .collect();
    commit.outbox = notices::outbox_for(
        app,
        &ticket,
        &cluster.name,
        &notices,
        &Details {
            actor: Some(requester),
            ..Details::default()
        },
        &format!("ticket:{}:filed", ticket.id),
    )
    .await?;
    commit.ticket = Some(TicketWrite::Create(new));
    match app.commit(commit).await {
        Ok(committed) => ticket.number = committed.ticket_number.unwrap_or_default(),
        // Another request took the name between the check and the commit.
        Err(StoreError::Duplicate(Unique::ClusterName)) => {
            return Err(DeskError::Invalid(vec![name_taken(
                &checked.name,
                &cluster.resource_group,
            )]));
        }
        Err(other) => return Err(other.into()),
    }
    metrics::counter!("restore_desk_tickets_filed_total").increment(1);
    tracing::info!(ticket = %ticket.reference(), cluster = %cluster.name, "restore request filed");
    // The ticket is exactly what was inserted: no need to read it back.
    Ok(ticket)
}
