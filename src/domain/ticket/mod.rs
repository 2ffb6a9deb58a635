//! The ticket lifecycle (SPEC §3) as one pure function.
//!
//! ```text
//! submitted ─auto-validate→ triage ─claim→ in_review ─approve→ approved ─job starts→ restoring
//!                                          │  ▲                                     ├→ completed
//!                             request_info │  │ customer replies                    └→ failed ─retry→ restoring
//!                                          ▼  │
//!                                   awaiting_customer          in_review ─reject→ rejected
//! cancelled: by the customer before restoring; by staff while the restore can still stop
//! completed ─reopen (the customer: "the data is not right")→ in_review ─resolve→ completed
//! restoring ─job paused (inspect before hand-over)→ awaiting_decision
//!   awaiting_decision ─accept | move forward | go back | no decision in time→ restoring
//! ```
//!
//! `transition` decides; the caller applies the effects in one transaction
//! with the state change, guarded by the ticket's version.

use chrono::{DateTime, Utc};

use super::ids::UserId;

use super::actor::{Actor, Role};
use super::restore_job::JobState;
use super::transactions::TransactionTarget;
use super::validation::{ValidationCode, ValidationError};

mod record;
pub use record::{
    NewTicket, PENDING_REFERENCE, Recorded, Ticket, TicketChange, TicketDecision, TicketGuard,
    apply, ticket_reference,
};

string_enum! {
    /// Where a ticket is in its lifecycle.
    pub enum TicketState ("ticket state") {
        Submitted = "submitted",
        Triage = "triage",
        InReview = "in_review",
        AwaitingCustomer = "awaiting_customer",
        Approved = "approved",
        Restoring = "restoring",
        /// The restored copy waits, paused and read-only at the target,
        /// for the customer to accept it, move it forward or go back.
        AwaitingDecision = "awaiting_decision",
        Completed = "completed",
        Failed = "failed",
        Rejected = "rejected",
        Cancelled = "cancelled",
    }
}

impl TicketState {
    /// How the state reads on a page.
    pub fn label(self) -> &'static str {
        match self {
            TicketState::Submitted => "Submitted",
            TicketState::Triage => "Waiting for an engineer",
            TicketState::InReview => "In review",
            TicketState::AwaitingCustomer => "Waiting for the customer",
            TicketState::Approved => "Approved",
            TicketState::Restoring => "Restoring",
            TicketState::AwaitingDecision => "Waiting for the customer's decision",
            TicketState::Completed => "Completed",
            TicketState::Failed => "Restore failed",
            TicketState::Rejected => "Rejected",
            TicketState::Cancelled => "Cancelled",
        }
    }

    /// No command changes a terminal ticket's state any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TicketState::Completed | TicketState::Rejected | TicketState::Cancelled
        )
    }

    /// Whether the customer may still cancel: only before the restore starts.
    pub fn customer_may_cancel(self) -> bool {
        matches!(
            self,
            TicketState::Submitted
                | TicketState::Triage
                | TicketState::InReview
                | TicketState::AwaitingCustomer
                | TicketState::Approved
        )
    }

    /// Whether a restore job can exist: only from approval on (a cancelled
    /// ticket may have been approved first).
    pub fn may_have_job(self) -> bool {
        matches!(
            self,
            TicketState::Approved
                | TicketState::Restoring
                | TicketState::AwaitingDecision
                | TicketState::Completed
                | TicketState::Failed
                | TicketState::Cancelled
        )
    }

    /// States in which the target must still be restored before its deadline.
    pub fn deadline_matters(self) -> bool {
        matches!(
            self,
            TicketState::Submitted
                | TicketState::Triage
                | TicketState::InReview
                | TicketState::AwaitingCustomer
                | TicketState::Approved
                | TicketState::Failed
        )
    }
}

/// Everything that can happen to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketCommand {
    /// The filing's validation passed; the ticket joins the queue.
    AutoValidate,
    Claim,
    RequestInfo {
        message: String,
    },
    Reply {
        body: String,
    },
    Note {
        body: String,
    },
    /// `inspect`: the engineer asks that the customer inspect the copy
    /// before it is handed over (they may have asked so already).
    Approve {
        inspect: bool,
    },
    Reject {
        reason: String,
    },
    /// The customer withdraws the request, saying why if they will.
    Cancel {
        reason: String,
    },
    /// Staff stop the restore job.
    CancelRestore {
        reason: String,
    },
    Retry,
    JobStarted,
    JobSucceeded,
    JobFailed {
        reason: String,
    },
    WarnDeadline,
    /// The customer says the restored data is not right: the ticket goes
    /// back to its engineer with their comment.
    Reopen {
        comment: String,
    },
    /// Staff close a reopened ticket once they have answered it.
    Resolve,
    /// Before approval the target moves: the customer answering the
    /// engineer's question, or the assigned engineer. The desk checked the
    /// new target like a new request's (the facts' `target_check`).
    ChangeTarget {
        target: DateTime<Utc>,
        time_zone: String,
        /// Set when the new target is a transaction: `target` is the
        /// moment it stands for.
        transaction: Option<TransactionTarget>,
        reason: String,
    },
    /// The restored copy stopped, paused and read-only, at the target: the
    /// customer decides by `decide_by`.
    JobPaused {
        decide_by: DateTime<Utc>,
    },
    /// The customer takes the paused copy as it is: it is promoted and
    /// handed over.
    Accept,
    /// The customer wants a later moment: the same copy replays on to it.
    MoveForward {
        target: DateTime<Utc>,
        time_zone: String,
        transaction: Option<TransactionTarget>,
    },
    /// The customer wants an earlier moment: the paused copy goes and a new
    /// restore reaches it.
    GoBack {
        target: DateTime<Utc>,
        time_zone: String,
        transaction: Option<TransactionTarget>,
    },
    /// Nobody decided by the deadline: the copy is handed over as it is.
    DecisionTimeout,
}

impl TicketCommand {
    /// The command's name in events, the audit log and the API.
    pub fn name(&self) -> &'static str {
        match self {
            TicketCommand::AutoValidate => "auto_validate",
            TicketCommand::Claim => "claim",
            TicketCommand::RequestInfo { .. } => "request_info",
            TicketCommand::Reply { .. } => "reply",
            TicketCommand::Note { .. } => "note",
            TicketCommand::Approve { .. } => "approve",
            TicketCommand::Reject { .. } => "reject",
            TicketCommand::Cancel { .. } => "cancel",
            TicketCommand::CancelRestore { .. } => "cancel_restore",
            TicketCommand::Retry => "retry",
            TicketCommand::JobStarted => "job_started",
            TicketCommand::JobSucceeded => "job_succeeded",
            TicketCommand::JobFailed { .. } => "job_failed",
            TicketCommand::WarnDeadline => "warn_deadline",
            TicketCommand::Reopen { .. } => "reopen",
            TicketCommand::Resolve => "resolve",
            TicketCommand::ChangeTarget { .. } => "change_target",
            TicketCommand::JobPaused { .. } => "job_paused",
            TicketCommand::Accept => "accept",
            TicketCommand::MoveForward { .. } => "move_forward",
            TicketCommand::GoBack { .. } => "go_back",
            TicketCommand::DecisionTimeout => "decision_timeout",
        }
    }
}

/// The result of checking the target against the window just now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetCheck {
    NotChecked,
    Passed,
    Failed(ValidationError),
}

/// What the transition needs to know beyond the state, read by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub assignee: Option<UserId>,
    pub target_check: TargetCheck,
    pub job: Option<JobState>,
    pub deadline_warned: bool,
    /// The moment the ticket restores to now: a move forward must go past
    /// it, a step back before it.
    pub target: DateTime<Utc>,
}

string_enum! {
    /// Who may read a message.
    pub enum Visibility ("visibility") {
        Public = "public",
        /// Staff only: never on a customer's page, API answer or email.
        Internal = "internal",
    }
}

/// Who an email goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    /// The customer who filed the ticket.
    Requester,
    /// The assigned engineer, or every engineer while nobody is assigned.
    Assignee,
    AllStaff,
}

string_enum! {
    /// The emails of SPEC §7, plus the two conversation notices.
    pub enum NoticeKind ("notice") {
        RequestReceived = "request_received",
        NewRequest = "new_request",
        InformationRequested = "information_requested",
        CustomerReplied = "customer_replied",
        StaffReplied = "staff_replied",
        Approved = "approved",
        Rejected = "rejected",
        RestoreStarted = "restore_started",
        RestoreCompleted = "restore_completed",
        RestoreFailed = "restore_failed",
        Cancelled = "cancelled",
        DeadlineNear = "deadline_near",
        /// The customer said the restored data is not right.
        Reopened = "reopened",
        /// The target moved before approval.
        TargetChanged = "target_changed",
        /// The restored copy waits, read-only, for the customer's decision.
        ReadyToInspect = "ready_to_inspect",
        /// What was decided about a paused copy: accepted, moved forward,
        /// gone back, or handed over for want of a decision.
        InspectionDecided = "inspection_decided",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub to: Audience,
}

/// What the restore job should do because of a ticket command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobRequest {
    /// Approval: exactly one job per ticket.
    Create,
    Cancel,
    Retry,
    /// Promote the paused copy and hand it over.
    Accept,
    /// Replay the paused copy on to the ticket's new, later target.
    MoveForward,
    /// Remove the paused copy and restore again to the new, earlier target.
    GoBack,
}

/// Effects as data, applied by the caller in the state change's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketEffect {
    Assign(UserId),
    PostMessage {
        visibility: Visibility,
        body: String,
    },
    RecordRejection(String),
    /// Counts towards the first-response target if it is the first.
    RecordFirstResponse,
    MarkDeadlineWarned,
    /// The ticket restores to this moment now, read in this zone; its
    /// deadline and check are the new target's.
    SetTarget {
        target: DateTime<Utc>,
        time_zone: String,
        transaction: Option<TransactionTarget>,
    },
    Notify(Notice),
    Job(JobRequest),
    /// The restored copy is to be inspected before it is handed over.
    RequireInspection,
    /// Until when the customer may decide about a paused copy; none once
    /// they did.
    DecideBy(Option<DateTime<Utc>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub to: TicketState,
    pub effects: Vec<TicketEffect>,
}

/// Why a command was refused. Nothing changes on a refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("your role may not do this")]
    Forbidden,
    #[error("not possible while the ticket is {}", .0.label().to_lowercase())]
    WrongState(TicketState),
    #[error("only the assigned engineer may do this: claim the ticket first")]
    NotAssignee,
    #[error("the ticket is already assigned to you")]
    AlreadyAssigned,
    #[error("{message}")]
    BadText {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Invalid(ValidationError),
    #[error("the target was not checked against the backup window")]
    TargetNotChecked,
    #[error("the restore is finishing and can no longer be cancelled")]
    TooLateToCancel,
    #[error("the deadline warning was already sent")]
    AlreadyWarned,
    #[error("this ticket's restore was done already: a new restore needs a new request")]
    AlreadyRestored,
    /// A move forward to a moment not after the current target, or a step
    /// back to one not before it.
    #[error("{0}")]
    WrongDirection(ValidationError),
}

/// Longest message or note, in characters.
pub const MAX_MESSAGE_CHARS: usize = 10_000;
/// Longest reason for a rejection or a cancellation, in characters.
pub const MAX_REASON_CHARS: usize = 2_000;

/// Trims and bounds a text a person typed.
pub fn checked_text(field: &'static str, text: &str, max_chars: usize) -> Result<String, Refusal> {
    let text = text.trim();
    if let Some((_, c)) = super::text::forbidden_char(text) {
        return Err(Refusal::BadText {
            field,
            message: super::text::forbidden_char_message(field, c),
        });
    }
    if text.is_empty() {
        return Err(Refusal::BadText {
            field,
            message: format!("The {} cannot be empty", field.replace('_', " ")),
        });
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(Refusal::BadText {
            field,
            message: format!(
                "The {} is {chars} characters long; the limit is {max_chars}",
                field.replace('_', " ")
            ),
        });
    }
    Ok(text.to_string())
}

fn notify(kind: NoticeKind, to: Audience) -> TicketEffect {
    TicketEffect::Notify(Notice { kind, to })
}

fn allow(ok: bool) -> Result<(), Refusal> {
    if ok { Ok(()) } else { Err(Refusal::Forbidden) }
}

/// Decides what a command does to a ticket in `state`. Checks run in a fixed
/// order — role, state, assignment, input, facts — so refusals are predictable.
pub fn transition(
    state: TicketState,
    command: &TicketCommand,
    actor: &Actor,
    facts: &TicketFacts,
) -> Result<Transition, Refusal> {
    use TicketState as S;
    let role = actor.role;
    let staff = role.works_tickets();
    let system = role == Role::System;
    let is_assignee = facts.assignee.is_some() && facts.assignee == actor.user_id;
    let go = |to: TicketState, effects: Vec<TicketEffect>| Ok(Transition { to, effects });
    let wrong_state = Err(Refusal::WrongState(state));
    let must_be_assignee = || {
        if is_assignee {
            Ok(())
        } else {
            Err(Refusal::NotAssignee)
        }
    };

    match command {
        TicketCommand::AutoValidate => {
            allow(system)?;
            match state {
                S::Submitted => go(
                    S::Triage,
                    vec![
                        notify(NoticeKind::RequestReceived, Audience::Requester),
                        notify(NoticeKind::NewRequest, Audience::AllStaff),
                    ],
                ),
                _ => wrong_state,
            }
        }
        TicketCommand::Claim => {
            allow(staff)?;
            let me = actor.user_id.ok_or(Refusal::Forbidden)?;
            match state {
                S::Triage => go(S::InReview, vec![TicketEffect::Assign(me)]),
                S::InReview
                | S::AwaitingCustomer
                | S::Approved
                | S::Restoring
                | S::AwaitingDecision
                | S::Failed => {
                    if is_assignee {
                        Err(Refusal::AlreadyAssigned)
                    } else {
                        go(state, vec![TicketEffect::Assign(me)])
                    }
                }
                _ => wrong_state,
            }
        }
        TicketCommand::RequestInfo { message } => {
            allow(staff)?;
            if state != S::InReview {
                return wrong_state;
            }
            must_be_assignee()?;
            let body = checked_text("message", message, MAX_MESSAGE_CHARS)?;
            go(
                S::AwaitingCustomer,
                vec![
                    TicketEffect::PostMessage {
                        visibility: Visibility::Public,
                        body,
                    },
                    TicketEffect::RecordFirstResponse,
                    notify(NoticeKind::InformationRequested, Audience::Requester),
                ],
            )
        }
        TicketCommand::Reply { body } => {
            allow(!system)?;
            // A closed ticket's conversation is over: a new question is a
            // new request, so nobody is emailed about a finished one.
            if state.is_terminal() {
                return wrong_state;
            }
            let body = checked_text("message", body, MAX_MESSAGE_CHARS)?;
            let message = TicketEffect::PostMessage {
                visibility: Visibility::Public,
                body,
            };
            if role == Role::Customer {
                let to = if state == S::AwaitingCustomer {
                    S::InReview
                } else {
                    state
                };
                go(
                    to,
                    vec![
                        message,
                        notify(NoticeKind::CustomerReplied, Audience::Assignee),
                    ],
                )
            } else {
                go(
                    state,
                    vec![
                        message,
                        TicketEffect::RecordFirstResponse,
                        notify(NoticeKind::StaffReplied, Audience::Requester),
                    ],
                )
            }
        }
        TicketCommand::Note { body } => {
            allow(staff)?;
            let body = checked_text("note", body, MAX_MESSAGE_CHARS)?;
            go(
                state,
                vec![TicketEffect::PostMessage {
                    visibility: Visibility::Internal,
                    body,
                }],
            )
        }
        TicketCommand::Approve { inspect } => {
            allow(staff)?;
            if state != S::InReview {
                return wrong_state;
            }
            must_be_assignee()?;
            // A reopened ticket keeps its one job.
            if facts.job.is_some() {
                return Err(Refusal::AlreadyRestored);
            }
            match &facts.target_check {
                TargetCheck::Passed => {}
                TargetCheck::Failed(error) => return Err(Refusal::Invalid(error.clone())),
                TargetCheck::NotChecked => return Err(Refusal::TargetNotChecked),
            }
            let mut effects = Vec::new();
            if *inspect {
                effects.push(TicketEffect::RequireInspection);
            }
            effects.extend([
                TicketEffect::Job(JobRequest::Create),
                TicketEffect::RecordFirstResponse,
                notify(NoticeKind::Approved, Audience::Requester),
            ]);
            go(S::Approved, effects)
        }
        TicketCommand::Reject { reason } => {
            allow(staff)?;
            if !matches!(state, S::InReview | S::AwaitingCustomer) {
                return wrong_state;
            }
            must_be_assignee()?;
            let reason = checked_text("reason", reason, MAX_REASON_CHARS)?;
            go(
                S::Rejected,
                vec![
                    TicketEffect::RecordRejection(reason),
                    TicketEffect::RecordFirstResponse,
                    notify(NoticeKind::Rejected, Audience::Requester),
                ],
            )
        }
        TicketCommand::Cancel { reason } => {
            allow(role == Role::Customer)?;
            if !state.customer_may_cancel() {
                return wrong_state;
            }
            let mut effects = Vec::new();
            if state == S::Approved {
                effects.push(TicketEffect::Job(JobRequest::Cancel));
            }
            // A reason is asked for, not demanded: the customer may simply
            // no longer need the restore.
            if !reason.trim().is_empty() {
                let reason = checked_text("reason", reason, MAX_REASON_CHARS)?;
                effects.push(TicketEffect::PostMessage {
                    visibility: Visibility::Public,
                    body: format!("Cancelled by the customer: {reason}"),
                });
            }
            effects.push(notify(NoticeKind::Cancelled, Audience::Requester));
            if facts.assignee.is_some() {
                effects.push(notify(NoticeKind::Cancelled, Audience::Assignee));
            }
            go(S::Cancelled, effects)
        }
        TicketCommand::CancelRestore { reason } => {
            allow(staff)?;
            if !matches!(state, S::Approved | S::Restoring | S::AwaitingDecision) {
                return wrong_state;
            }
            let reason = checked_text("reason", reason, MAX_REASON_CHARS)?;
            if !facts.job.is_some_and(JobState::may_cancel) {
                return Err(Refusal::TooLateToCancel);
            }
            go(
                S::Cancelled,
                vec![
                    TicketEffect::Job(JobRequest::Cancel),
                    TicketEffect::PostMessage {
                        visibility: Visibility::Public,
                        body: format!("The restore was cancelled: {reason}"),
                    },
                    notify(NoticeKind::Cancelled, Audience::Requester),
                ],
            )
        }
        TicketCommand::Retry => {
            allow(staff)?;
            match state {
                S::Failed => go(S::Restoring, vec![TicketEffect::Job(JobRequest::Retry)]),
                _ => wrong_state,
            }
        }
        TicketCommand::JobStarted => {
            allow(system)?;
            match state {
                S::Approved | S::Restoring => go(
                    S::Restoring,
                    vec![notify(NoticeKind::RestoreStarted, Audience::Requester)],
                ),
                _ => wrong_state,
            }
        }
        TicketCommand::JobSucceeded => {
            allow(system)?;
            match state {
                S::Restoring => go(
                    S::Completed,
                    vec![notify(NoticeKind::RestoreCompleted, Audience::Requester)],
                ),
                _ => wrong_state,
            }
        }
        TicketCommand::JobFailed { .. } => {
            allow(system)?;
            match state {
                S::Restoring => go(
                    S::Failed,
                    vec![
                        notify(NoticeKind::RestoreFailed, Audience::Requester),
                        notify(NoticeKind::RestoreFailed, Audience::Assignee),
                    ],
                ),
                _ => wrong_state,
            }
        }
        TicketCommand::WarnDeadline => {
            allow(system)?;
            if !state.deadline_matters() {
                return wrong_state;
            }
            if facts.deadline_warned {
                return Err(Refusal::AlreadyWarned);
            }
            go(
                state,
                vec![
                    TicketEffect::MarkDeadlineWarned,
                    notify(NoticeKind::DeadlineNear, Audience::Assignee),
                ],
            )
        }
        TicketCommand::Reopen { comment } => {
            allow(role == Role::Customer)?;
            if state != S::Completed {
                return wrong_state;
            }
            let comment = checked_text("comment", comment, MAX_REASON_CHARS)?;
            go(
                S::InReview,
                vec![
                    TicketEffect::PostMessage {
                        visibility: Visibility::Public,
                        body: format!("The restored data is not right: {comment}"),
                    },
                    notify(NoticeKind::Reopened, Audience::Assignee),
                ],
            )
        }
        TicketCommand::Resolve => {
            allow(staff)?;
            if !matches!(state, S::InReview | S::AwaitingCustomer)
                || facts.job != Some(JobState::Succeeded)
            {
                return wrong_state;
            }
            must_be_assignee()?;
            go(S::Completed, vec![TicketEffect::RecordFirstResponse])
        }
        TicketCommand::ChangeTarget {
            target,
            time_zone,
            transaction,
            reason,
        } => {
            allow(role == Role::Customer || staff)?;
            // The customer corrects in answer to a question, so the
            // engineer checking the moment is never surprised by it; the
            // engineer may while the ticket is theirs to decide.
            let customer = role == Role::Customer;
            let open = if customer {
                state == S::AwaitingCustomer
            } else {
                matches!(state, S::InReview | S::AwaitingCustomer)
            };
            if !open {
                return wrong_state;
            }
            if !customer {
                must_be_assignee()?;
            }
            if facts.job.is_some() {
                return Err(Refusal::AlreadyRestored);
            }
            let reason = checked_text("reason", reason, MAX_REASON_CHARS)?;
            match &facts.target_check {
                TargetCheck::Passed => {}
                TargetCheck::Failed(error) => return Err(Refusal::Invalid(error.clone())),
                TargetCheck::NotChecked => return Err(Refusal::TargetNotChecked),
            }
            let mut effects = vec![
                TicketEffect::SetTarget {
                    target: *target,
                    time_zone: time_zone.clone(),
                    transaction: *transaction,
                },
                TicketEffect::PostMessage {
                    visibility: Visibility::Public,
                    body: format!("The target was changed: {reason}"),
                },
            ];
            if customer {
                effects.push(notify(NoticeKind::TargetChanged, Audience::Assignee));
                go(S::InReview, effects)
            } else {
                effects.push(TicketEffect::RecordFirstResponse);
                effects.push(notify(NoticeKind::TargetChanged, Audience::Requester));
                go(state, effects)
            }
        }
        TicketCommand::JobPaused { decide_by } => {
            allow(system)?;
            match state {
                S::Restoring => go(
                    S::AwaitingDecision,
                    vec![
                        TicketEffect::DecideBy(Some(*decide_by)),
                        notify(NoticeKind::ReadyToInspect, Audience::Requester),
                    ],
                ),
                _ => wrong_state,
            }
        }
        TicketCommand::Accept => {
            allow(role == Role::Customer)?;
            if state != S::AwaitingDecision {
                return wrong_state;
            }
            go(
                S::Restoring,
                vec![
                    TicketEffect::DecideBy(None),
                    TicketEffect::Job(JobRequest::Accept),
                    TicketEffect::PostMessage {
                        visibility: Visibility::Public,
                        body: "The customer accepted the restored copy: it is being handed over."
                            .into(),
                    },
                    notify(NoticeKind::InspectionDecided, Audience::Assignee),
                ],
            )
        }
        TicketCommand::MoveForward {
            target,
            time_zone,
            transaction,
        }
        | TicketCommand::GoBack {
            target,
            time_zone,
            transaction,
        } => {
            allow(role == Role::Customer)?;
            if state != S::AwaitingDecision {
                return wrong_state;
            }
            let forward = matches!(command, TicketCommand::MoveForward { .. });
            // The same copy only replays on; an earlier moment needs a new one.
            if forward && *target <= facts.target {
                return Err(Refusal::WrongDirection(ValidationError::new(
                    ValidationCode::TargetNotLater,
                    "target_time",
                    "Moving forward needs a moment after the one the copy holds now; \
                     for an earlier one, go back instead",
                )));
            }
            if !forward && *target >= facts.target {
                return Err(Refusal::WrongDirection(ValidationError::new(
                    ValidationCode::TargetNotEarlier,
                    "target_time",
                    "Going back needs a moment before the one the copy holds now; \
                     for a later one, move forward instead",
                )));
            }
            match &facts.target_check {
                TargetCheck::Passed => {}
                TargetCheck::Failed(error) => return Err(Refusal::Invalid(error.clone())),
                TargetCheck::NotChecked => return Err(Refusal::TargetNotChecked),
            }
            let (request, words) = if forward {
                (
                    JobRequest::MoveForward,
                    "The customer moved forward: the same copy replays on to the new target.",
                )
            } else {
                (
                    JobRequest::GoBack,
                    "The customer went back: the paused copy is removed and a new restore \
                     reaches the earlier target.",
                )
            };
            go(
                S::Restoring,
                vec![
                    TicketEffect::DecideBy(None),
                    TicketEffect::SetTarget {
                        target: *target,
                        time_zone: time_zone.clone(),
                        transaction: *transaction,
                    },
                    TicketEffect::Job(request),
                    TicketEffect::PostMessage {
                        visibility: Visibility::Public,
                        body: words.into(),
                    },
                    notify(NoticeKind::InspectionDecided, Audience::Requester),
                    notify(NoticeKind::InspectionDecided, Audience::Assignee),
                ],
            )
        }
        TicketCommand::DecisionTimeout => {
            allow(system)?;
            if state != S::AwaitingDecision {
                return wrong_state;
            }
            go(
                S::Restoring,
                vec![
                    TicketEffect::DecideBy(None),
                    TicketEffect::Job(JobRequest::Accept),
                    TicketEffect::PostMessage {
                        visibility: Visibility::Public,
                        body: "No decision came in time: the restored copy is handed over as \
                               it is (it can be deleted if it is not wanted)."
                            .into(),
                    },
                    notify(NoticeKind::InspectionDecided, Audience::Requester),
                    notify(NoticeKind::InspectionDecided, Audience::Assignee),
                ],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validation::ValidationCode;

    const CUSTOMER: UserId = UserId::from_uuid(uuid::Uuid::from_u128(1));
    const STAFF: UserId = UserId::from_uuid(uuid::Uuid::from_u128(2));
    const ADMIN: UserId = UserId::from_uuid(uuid::Uuid::from_u128(3));

    fn actor(role: Role) -> Actor {
        match role {
            Role::Customer => Actor::user(CUSTOMER, role),
            Role::Staff => Actor::user(STAFF, role),
            Role::Admin => Actor::user(ADMIN, role),
            Role::System => Actor::SYSTEM,
        }
    }

    /// The facts every table row runs with: from in_review on, `STAFF` is
    /// assigned; the job is where the ticket state says it is.
    fn facts(state: TicketState) -> TicketFacts {
        use TicketState as S;
        TicketFacts {
            assignee: (!matches!(state, S::Submitted | S::Triage)).then_some(STAFF),
            target_check: TargetCheck::Passed,
            job: match state {
                S::Approved => Some(JobState::Queued),
                S::Restoring => Some(JobState::ReplayingLog),
                S::Failed => Some(JobState::Failed),
                S::Completed => Some(JobState::Succeeded),
                S::AwaitingDecision => Some(JobState::Paused),
                _ => None,
            },
            deadline_warned: false,
            target: current_target(),
        }
    }

    /// The moment a table row's ticket restores to.
    fn current_target() -> DateTime<Utc> {
        use chrono::TimeZone;
        chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn command(name: &str) -> TicketCommand {
        let text = "some words".to_string();
        match name {
            "auto_validate" => TicketCommand::AutoValidate,
            "claim" => TicketCommand::Claim,
            "request_info" => TicketCommand::RequestInfo { message: text },
            "reply" => TicketCommand::Reply { body: text },
            "note" => TicketCommand::Note { body: text },
            "approve" => TicketCommand::Approve { inspect: false },
            "reject" => TicketCommand::Reject { reason: text },
            "cancel" => TicketCommand::Cancel { reason: text },
            "cancel_restore" => TicketCommand::CancelRestore { reason: text },
            "retry" => TicketCommand::Retry,
            "job_started" => TicketCommand::JobStarted,
            "job_succeeded" => TicketCommand::JobSucceeded,
            "job_failed" => TicketCommand::JobFailed { reason: text },
            "warn_deadline" => TicketCommand::WarnDeadline,
            "reopen" => TicketCommand::Reopen { comment: text },
            "resolve" => TicketCommand::Resolve,
            "change_target" => TicketCommand::ChangeTarget {
                target: chrono::Utc::now(),
                time_zone: "UTC".into(),
                transaction: None,
                reason: text,
            },
            "job_paused" => TicketCommand::JobPaused {
                decide_by: current_target() + chrono::Duration::hours(24),
            },
            "accept" => TicketCommand::Accept,
            "move_forward" => TicketCommand::MoveForward {
                target: current_target() + chrono::Duration::hours(1),
                time_zone: "UTC".into(),
                transaction: None,
            },
            "go_back" => TicketCommand::GoBack {
                target: current_target() - chrono::Duration::hours(1),
                time_zone: "UTC".into(),
                transaction: None,
            },
            "decision_timeout" => TicketCommand::DecisionTimeout,
            other => panic!("no command {other}"),
        }
    }

    fn outcome(result: &Result<Transition, Refusal>) -> String {
        match result {
            Ok(t) => t.to.as_str().to_string(),
            Err(Refusal::Forbidden) => "forbidden".into(),
            Err(Refusal::WrongState(_)) => "wrong_state".into(),
            Err(Refusal::NotAssignee) => "not_assignee".into(),
            Err(Refusal::AlreadyAssigned) => "already_assigned".into(),
            Err(Refusal::TooLateToCancel) => "too_late".into(),
            Err(Refusal::AlreadyWarned) => "already_warned".into(),
            Err(other) => format!("{other:?}"),
        }
    }

    /// Every command × every state × every role, the expected outcome written
    /// out: the new state, or why it is refused.
    const TABLE: &str = "
    # command        state              customer     staff             admin             system
    auto_validate    submitted          forbidden    forbidden         forbidden         triage
    auto_validate    triage             forbidden    forbidden         forbidden         wrong_state
    auto_validate    in_review          forbidden    forbidden         forbidden         wrong_state
    auto_validate    awaiting_customer  forbidden    forbidden         forbidden         wrong_state
    auto_validate    approved           forbidden    forbidden         forbidden         wrong_state
    auto_validate    restoring          forbidden    forbidden         forbidden         wrong_state
    auto_validate    awaiting_decision  forbidden    forbidden         forbidden         wrong_state
    auto_validate    completed          forbidden    forbidden         forbidden         wrong_state
    auto_validate    failed             forbidden    forbidden         forbidden         wrong_state
    auto_validate    rejected           forbidden    forbidden         forbidden         wrong_state
    auto_validate    cancelled          forbidden    forbidden         forbidden         wrong_state
    claim            submitted          forbidden    wrong_state       wrong_state       forbidden
    claim            triage             forbidden    in_review         in_review         forbidden
    claim            in_review          forbidden    already_assigned  in_review         forbidden
    claim            awaiting_customer  forbidden    already_assigned  awaiting_customer forbidden
    claim            approved           forbidden    already_assigned  approved          forbidden
    claim            restoring          forbidden    already_assigned  restoring         forbidden
    claim            awaiting_decision  forbidden    already_assigned  awaiting_decision forbidden
    claim            completed          forbidden    wrong_state       wrong_state       forbidden
    claim            failed             forbidden    already_assigned  failed            forbidden
    claim            rejected           forbidden    wrong_state       wrong_state       forbidden
    claim            cancelled          forbidden    wrong_state       wrong_state       forbidden
    request_info     submitted          forbidden    wrong_state       wrong_state       forbidden
    request_info     triage             forbidden    wrong_state       wrong_state       forbidden
    request_info     in_review          forbidden    awaiting_customer not_assignee      forbidden
    request_info     awaiting_customer  forbidden    wrong_state       wrong_state       forbidden
    request_info     approved           forbidden    wrong_state       wrong_state       forbidden
    request_info     restoring          forbidden    wrong_state       wrong_state       forbidden
    request_info     awaiting_decision  forbidden    wrong_state       wrong_state       forbidden
    request_info     completed          forbidden    wrong_state       wrong_state       forbidden
    request_info     failed             forbidden    wrong_state       wrong_state       forbidden
    request_info     rejected           forbidden    wrong_state       wrong_state       forbidden
    request_info     cancelled          forbidden    wrong_state       wrong_state       forbidden
    reply            submitted          submitted    submitted         submitted         forbidden
    reply            triage             triage       triage            triage            forbidden
    reply            in_review          in_review    in_review         in_review         forbidden
    reply            awaiting_customer  in_review    awaiting_customer awaiting_customer forbidden
    reply            approved           approved     approved          approved          forbidden
    reply            restoring          restoring    restoring         restoring         forbidden
    reply            awaiting_decision  awaiting_decision awaiting_decision awaiting_decision forbidden
    reply            completed          wrong_state  wrong_state       wrong_state       forbidden
    reply            failed             failed       failed            failed            forbidden
    reply            rejected           wrong_state  wrong_state       wrong_state       forbidden
    reply            cancelled          wrong_state  wrong_state       wrong_state       forbidden
    note             submitted          forbidden    submitted         submitted         forbidden
    note             triage             forbidden    triage            triage            forbidden
    note             in_review          forbidden    in_review         in_review         forbidden
    note             awaiting_customer  forbidden    awaiting_customer awaiting_customer forbidden
    note             approved           forbidden    approved          approved          forbidden
    note             restoring          forbidden    restoring         restoring         forbidden
    note             awaiting_decision  forbidden    awaiting_decision awaiting_decision forbidden
    note             completed          forbidden    completed         completed         forbidden
    note             failed             forbidden    failed            failed            forbidden
    note             rejected           forbidden    rejected          rejected          forbidden
    note             cancelled          forbidden    cancelled         cancelled         forbidden
    approve          submitted          forbidden    wrong_state       wrong_state       forbidden
    approve          triage             forbidden    wrong_state       wrong_state       forbidden
    approve          in_review          forbidden    approved          not_assignee      forbidden
    approve          awaiting_customer  forbidden    wrong_state       wrong_state       forbidden
    approve          approved           forbidden    wrong_state       wrong_state       forbidden
    approve          restoring          forbidden    wrong_state       wrong_state       forbidden
    approve          awaiting_decision  forbidden    wrong_state       wrong_state       forbidden
    approve          completed          forbidden    wrong_state       wrong_state       forbidden
    approve          failed             forbidden    wrong_state       wrong_state       forbidden
    approve          rejected           forbidden    wrong_state       wrong_state       forbidden
    approve          cancelled          forbidden    wrong_state       wrong_state       forbidden
    reject           submitted          forbidden    wrong_state       wrong_state       forbidden
    reject           triage             forbidden    wrong_state       wrong_state       forbidden
    reject           in_review          forbidden    rejected          not_assignee      forbidden
    reject           awaiting_customer  forbidden    rejected          not_assignee      forbidden
    reject           approved           forbidden    wrong_state       wrong_state       forbidden
    reject           restoring          forbidden    wrong_state       wrong_state       forbidden
    reject           awaiting_decision  forbidden    wrong_state       wrong_state       forbidden
    reject           completed          forbidden    wrong_state       wrong_state       forbidden
    reject           failed             forbidden    wrong_state       wrong_state       forbidden
    reject           rejected           forbidden    wrong_state       wrong_state       forbidden
    reject           cancelled          forbidden    wrong_state       wrong_state       forbidden
    cancel           submitted          cancelled    forbidden         forbidden         forbidden
    cancel           triage             cancelled    forbidden         forbidden         forbidden
    cancel           in_review          cancelled    forbidden         forbidden         forbidden
    cancel           awaiting_customer  cancelled    forbidden         forbidden         forbidden
    cancel           approved           cancelled    forbidden         forbidden         forbidden
    cancel           restoring          wrong_state  forbidden         forbidden         forbidden
    cancel           awaiting_decision  wrong_state  forbidden         forbidden         forbidden
    cancel           completed          wrong_state  forbidden         forbidden         forbidden
    cancel           failed             wrong_state  forbidden         forbidden         forbidden
    cancel           rejected           wrong_state  forbidden         forbidden         forbidden
    cancel           cancelled          wrong_state  forbidden         forbidden         forbidden
    cancel_restore   submitted          forbidden    wrong_state       wrong_state       forbidden
    cancel_restore   triage             forbidden    wrong_state       wrong_state       forbidden
    cancel_restore   in_review          forbidden    wrong_state       wrong_state       forbidden
    cancel_restore   awaiting_customer  forbidden    wrong_state       wrong_state       forbidden
    cancel_restore   approved           forbidden    cancelled         cancelled         forbidden
    cancel_restore   restoring          forbidden    cancelled         cancelled         forbidden
    cancel_restore   awaiting_decision  forbidden    cancelled         cancelled         forbidden
    cancel_restore   completed          forbidden    wrong_state       wrong_state       forbidden
    cancel_restore   failed             forbidden    wrong_state       wrong_state       forbidden
    cancel_restore   rejected           forbidden    wrong_state       wrong_state       forbidden
    cancel_restore   cancelled          forbidden    wrong_state       wrong_state       forbidden
    retry            submitted          forbidden    wrong_state       wrong_state       forbidden
    retry            triage             forbidden    wrong_state       wrong_state       forbidden
    retry            in_review          forbidden    wrong_state       wrong_state       forbidden
    retry            awaiting_customer  forbidden    wrong_state       wrong_state       forbidden
    retry            approved           forbidden    wrong_state       wrong_state       forbidden
    retry            restoring          forbidden    wrong_state       wrong_state       forbidden
    retry            awaiting_decision  forbidden    wrong_state       wrong_state       forbidden
    retry            completed          forbidden    wrong_state       wrong_state       forbidden
    retry            failed             forbidden    restoring         restoring         forbidden
    retry            rejected           forbidden    wrong_state       wrong_state       forbidden
    retry            cancelled          forbidden    wrong_state       wrong_state       forbidden
    job_started      submitted          forbidden    forbidden         forbidden         wrong_state
    job_started      triage             forbidden    forbidden         forbidden         wrong_state
    job_started      in_review          forbidden    forbidden         forbidden         wrong_state
    job_started      awaiting_customer  forbidden    forbidden         forbidden         wrong_state
    job_started      approved           forbidden    forbidden         forbidden         restoring
    job_started      restoring          forbidden    forbidden         forbidden         restoring
    job_started      awaiting_decision  forbidden    forbidden         forbidden         wrong_state
    job_started      completed          forbidden    forbidden         forbidden         wrong_state
    job_started      failed             forbidden    forbidden         forbidden         wrong_state
    job_started      rejected           forbidden    forbidden         forbidden         wrong_state
    job_started      cancelled          forbidden    forbidden         forbidden         wrong_state
    job_succeeded    submitted          forbidden    forbidden         forbidden         wrong_state
    job_succeeded    triage             forbidden    forbidden         forbidden         wrong_state
    job_succeeded    in_review          forbidden    forbidden         forbidden         wrong_state
    job_succeeded    awaiting_customer  forbidden    forbidden         forbidden         wrong_state
    job_succeeded    approved           forbidden    forbidden         forbidden         wrong_state
    job_succeeded    restoring          forbidden    forbidden         forbidden         completed
    job_succeeded    awaiting_decision  forbidden    forbidden         forbidden         wrong_state
    job_succeeded    completed          forbidden    forbidden         forbidden         wrong_state
    job_succeeded    failed             forbidden    forbidden         forbidden         wrong_state
    job_succeeded    rejected           forbidden    forbidden         forbidden         wrong_state
    job_succeeded    cancelled          forbidden    forbidden         forbidden         wrong_state
    job_failed       submitted          forbidden    forbidden         forbidden         wrong_state
    job_failed       triage             forbidden    forbidden         forbidden         wrong_state
    job_failed       in_review          forbidden    forbidden         forbidden         wrong_state
    job_failed       awaiting_customer  forbidden    forbidden         forbidden         wrong_state
    job_failed       approved           forbidden    forbidden         forbidden         wrong_state
    job_failed       restoring          forbidden    forbidden         forbidden         failed
    job_failed       awaiting_decision  forbidden    forbidden         forbidden         wrong_state
    job_failed       completed          forbidden    forbidden         forbidden         wrong_state
    job_failed       failed             forbidden    forbidden         forbidden         wrong_state
    job_failed       rejected           forbidden    forbidden         forbidden         wrong_state
    job_failed       cancelled          forbidden    forbidden         forbidden         wrong_state
    warn_deadline    submitted          forbidden    forbidden         forbidden         submitted
    warn_deadline    triage             forbidden    forbidden         forbidden         triage
    warn_deadline    in_review          forbidden    forbidden         forbidden         in_review
    warn_deadline    awaiting_customer  forbidden    forbidden         forbidden         awaiting_customer
    warn_deadline    approved           forbidden    forbidden         forbidden         approved
    warn_deadline    restoring          forbidden    forbidden         forbidden         wrong_state
    warn_deadline    awaiting_decision  forbidden    forbidden         forbidden         wrong_state
    warn_deadline    completed          forbidden    forbidden         forbidden         wrong_state
    warn_deadline    failed             forbidden    forbidden         forbidden         failed
    warn_deadline    rejected           forbidden    forbidden         forbidden         wrong_state
    warn_deadline    cancelled          forbidden    forbidden         forbidden         wrong_state
    reopen           submitted          wrong_state  forbidden         forbidden         forbidden
    reopen           triage             wrong_state  forbidden         forbidden         forbidden
    reopen           in_review          wrong_state  forbidden         forbidden         forbidden
    reopen           awaiting_customer  wrong_state  forbidden         forbidden         forbidden
    reopen           approved           wrong_state  forbidden         forbidden         forbidden
    reopen           restoring          wrong_state  forbidden         forbidden         forbidden
    reopen           awaiting_decision  wrong_state  forbidden         forbidden         forbidden
    reopen           completed          in_review    forbidden         forbidden         forbidden
    reopen           failed             wrong_state  forbidden         forbidden         forbidden
    reopen           rejected           wrong_state  forbidden         forbidden         forbidden
    reopen           cancelled          wrong_state  forbidden         forbidden         forbidden
    resolve          submitted          forbidden    wrong_state       wrong_state       forbidden
    resolve          triage             forbidden    wrong_state       wrong_state       forbidden
    resolve          in_review          forbidden    wrong_state       wrong_state       forbidden
    resolve          awaiting_customer  forbidden    wrong_state       wrong_state       forbidden
    resolve          approved           forbidden    wrong_state       wrong_state       forbidden
    resolve          restoring          forbidden    wrong_state       wrong_state       forbidden
    resolve          awaiting_decision  forbidden    wrong_state       wrong_state       forbidden
    resolve          completed          forbidden    wrong_state       wrong_state       forbidden
    resolve          failed             forbidden    wrong_state       wrong_state       forbidden
    resolve          rejected           forbidden    wrong_state       wrong_state       forbidden
    resolve          cancelled          forbidden    wrong_state       wrong_state       forbidden
    change_target    submitted          wrong_state  wrong_state       wrong_state       forbidden
    change_target    triage             wrong_state  wrong_state       wrong_state       forbidden
    change_target    in_review          wrong_state  in_review         not_assignee      forbidden
    change_target    awaiting_customer  in_review    awaiting_customer not_assignee      forbidden
    change_target    approved           wrong_state  wrong_state       wrong_state       forbidden
    change_target    restoring          wrong_state  wrong_state       wrong_state       forbidden
    change_target    awaiting_decision  wrong_state  wrong_state       wrong_state       forbidden
    change_target    completed          wrong_state  wrong_state       wrong_state       forbidden
    change_target    failed             wrong_state  wrong_state       wrong_state       forbidden
    change_target    rejected           wrong_state  wrong_state       wrong_state       forbidden
    change_target    cancelled          wrong_state  wrong_state       wrong_state       forbidden
    job_paused       submitted          forbidden    forbidden         forbidden         wrong_state
    job_paused       triage             forbidden    forbidden         forbidden         wrong_state
    job_paused       in_review          forbidden    forbidden         forbidden         wrong_state
    job_paused       awaiting_customer  forbidden    forbidden         forbidden         wrong_state
    job_paused       approved           forbidden    forbidden         forbidden         wrong_state
    job_paused       restoring          forbidden    forbidden         forbidden         awaiting_decision
    job_paused       awaiting_decision  forbidden    forbidden         forbidden         wrong_state
    job_paused       completed          forbidden    forbidden         forbidden         wrong_state
    job_paused       failed             forbidden    forbidden         forbidden         wrong_state
    job_paused       rejected           forbidden    forbidden         forbidden         wrong_state
    job_paused       cancelled          forbidden    forbidden         forbidden         wrong_state
    accept           submitted          wrong_state  forbidden         forbidden         forbidden
    accept           triage             wrong_state  forbidden         forbidden         forbidden
    accept           in_review          wrong_state  forbidden         forbidden         forbidden
    accept           awaiting_customer  wrong_state  forbidden         forbidden         forbidden
    accept           approved           wrong_state  forbidden         forbidden         forbidden
    accept           restoring          wrong_state  forbidden         forbidden         forbidden
    accept           awaiting_decision  restoring    forbidden         forbidden         forbidden
    accept           completed          wrong_state  forbidden         forbidden         forbidden
    accept           failed             wrong_state  forbidden         forbidden         forbidden
    accept           rejected           wrong_state  forbidden         forbidden         forbidden
    accept           cancelled          wrong_state  forbidden         forbidden         forbidden
    move_forward     submitted          wrong_state  forbidden         forbidden         forbidden
    move_forward     triage             wrong_state  forbidden         forbidden         forbidden
    move_forward     in_review          wrong_state  forbidden         forbidden         forbidden
    move_forward     awaiting_customer  wrong_state  forbidden         forbidden         forbidden
    move_forward     approved           wrong_state  forbidden         forbidden         forbidden
    move_forward     restoring          wrong_state  forbidden         forbidden         forbidden
    move_forward     awaiting_decision  restoring    forbidden         forbidden         forbidden
    move_forward     completed          wrong_state  forbidden         forbidden         forbidden
    move_forward     failed             wrong_state  forbidden         forbidden         forbidden
    move_forward     rejected           wrong_state  forbidden         forbidden         forbidden
    move_forward     cancelled          wrong_state  forbidden         forbidden         forbidden
    go_back          submitted          wrong_state  forbidden         forbidden         forbidden
    go_back          triage             wrong_state  forbidden         forbidden         forbidden
    go_back          in_review          wrong_state  forbidden         forbidden         forbidden
    go_back          awaiting_customer  wrong_state  forbidden         forbidden         forbidden
    go_back          approved           wrong_state  forbidden         forbidden         forbidden
    go_back          restoring          wrong_state  forbidden         forbidden         forbidden
    go_back          awaiting_decision  restoring    forbidden         forbidden         forbidden
    go_back          completed          wrong_state  forbidden         forbidden         forbidden
    go_back          failed             wrong_state  forbidden         forbidden         forbidden
    go_back          rejected           wrong_state  forbidden         forbidden         forbidden
    go_back          cancelled          wrong_state  forbidden         forbidden         forbidden
    decision_timeout submitted          forbidden    forbidden         forbidden         wrong_state
    decision_timeout triage             forbidden    forbidden         forbidden         wrong_state
    decision_timeout in_review          forbidden    forbidden         forbidden         wrong_state
    decision_timeout awaiting_customer  forbidden    forbidden         forbidden         wrong_state
    decision_timeout approved           forbidden    forbidden         forbidden         wrong_state
    decision_timeout restoring          forbidden    forbidden         forbidden         wrong_state
    decision_timeout awaiting_decision  forbidden    forbidden         forbidden         restoring
    decision_timeout completed          forbidden    forbidden         forbidden         wrong_state
    decision_timeout failed             forbidden    forbidden         forbidden         wrong_state
    decision_timeout rejected           forbidden    forbidden         forbidden         wrong_state
    decision_timeout cancelled          forbidden    forbidden         forbidden         wrong_state
    ";

    #[test]
    fn a_paused_copy_moves_forward_only_to_later_moments_and_back_only_to_earlier() {
        let facts = facts(TicketState::AwaitingDecision);
        let customer = actor(Role::Customer);
        let at = |hours: i64| current_target() + chrono::Duration::hours(hours);
        let forward = |target| TicketCommand::MoveForward {
            target,
            time_zone: "UTC".into(),
            transaction: None,
        };
        let back = |target| TicketCommand::GoBack {
            target,
            time_zone: "UTC".into(),
            transaction: None,
        };
        let code = |r: Result<Transition, Refusal>| match r {
            Err(Refusal::WrongDirection(e)) => e.code.as_str().to_string(),
            other => format!("{other:?}"),
        };
        let state = TicketState::AwaitingDecision;
        assert_eq!(
            code(transition(state, &forward(at(-1)), &customer, &facts)),
            "target_not_later"
        );
        assert_eq!(
            code(transition(state, &forward(at(0)), &customer, &facts)),
            "target_not_later"
        );
        assert_eq!(
            code(transition(state, &back(at(1)), &customer, &facts)),
            "target_not_earlier"
        );
        assert_eq!(
            code(transition(state, &back(at(0)), &customer, &facts)),
            "target_not_earlier"
        );
        // The right direction still needs the new moment to pass its check.
        let unchecked = TicketFacts {
            target_check: TargetCheck::NotChecked,
            ..facts.clone()
        };
        assert_eq!(
            transition(state, &forward(at(1)), &customer, &unchecked),
            Err(Refusal::TargetNotChecked)
        );
        assert!(transition(state, &forward(at(1)), &customer, &facts).is_ok());
        assert!(transition(state, &back(at(-1)), &customer, &facts).is_ok());
    }

    #[test]
    fn every_state_command_and_role() {
        let mut seen = std::collections::HashSet::new();
        let mut failures = Vec::new();
        for line in TABLE.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols.len(), 6, "malformed row: {line}");
            let state: TicketState = cols[1].parse().unwrap();
            let cmd = command(cols[0]);
            assert_eq!(cmd.name(), cols[0]);
            for (role, expected) in Role::ALL.into_iter().zip(&cols[2..]) {
                seen.insert((cols[0].to_string(), state, role));
                let got = outcome(&transition(state, &cmd, &actor(role), &facts(state)));
                if got != *expected {
                    failures.push(format!(
                        "{line}\n    {role}: expected {expected}, got {got}"
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        // The table is exhaustive: 17 commands × 10 states × 4 roles.
        assert_eq!(seen.len(), 22 * TicketState::ALL.len() * Role::ALL.len());
    }

    /// Reopened (the job succeeded, the ticket back in review): its
    /// engineer answers and resolves it; it is never approved again.
    #[test]
    fn a_reopened_ticket_goes_back_to_its_engineer_and_closes_again() {
        let reopened = TicketFacts {
            job: Some(JobState::Succeeded),
            ..facts(TicketState::InReview)
        };
        let t = transition(
            TicketState::Completed,
            &TicketCommand::Reopen {
                comment: "  orders from 14:20 are missing ".into(),
            },
            &actor(Role::Customer),
            &facts(TicketState::Completed),
        )
        .unwrap();
        assert_eq!(t.to, TicketState::InReview);
        assert!(t.effects.contains(&TicketEffect::PostMessage {
            visibility: Visibility::Public,
            body: "The restored data is not right: orders from 14:20 are missing".into(),
        }));
        assert!(
            t.effects
                .contains(&notify(NoticeKind::Reopened, Audience::Assignee))
        );
        let empty = transition(
            TicketState::Completed,
            &TicketCommand::Reopen {
                comment: " ".into(),
            },
            &actor(Role::Customer),
            &facts(TicketState::Completed),
        );
        assert!(matches!(
            empty,
            Err(Refusal::BadText {
                field: "comment",
                ..
            })
        ));
        for (state, role, expected) in [
            (TicketState::InReview, Role::Staff, "completed"),
            (TicketState::AwaitingCustomer, Role::Staff, "completed"),
            (TicketState::InReview, Role::Admin, "not_assignee"),
            (TicketState::InReview, Role::Customer, "forbidden"),
        ] {
            let got = transition(state, &TicketCommand::Resolve, &actor(role), &reopened);
            assert_eq!(outcome(&got), expected, "{state} {role}");
        }
        let again = transition(
            TicketState::InReview,
            &TicketCommand::Approve { inspect: false },
            &actor(Role::Staff),
            &reopened,
        );
        assert_eq!(again, Err(Refusal::AlreadyRestored));
    }

    #[test]
    fn approve_emits_one_job_and_tells_the_customer() {
        let t = transition(
            TicketState::InReview,
            &TicketCommand::Approve { inspect: false },
            &actor(Role::Staff),
            &facts(TicketState::InReview),
        )
        .unwrap();
        let jobs = t
            .effects
            .iter()
            .filter(|e| matches!(e, TicketEffect::Job(JobRequest::Create)))
            .count();
        assert_eq!(jobs, 1);
        assert!(
            t.effects
                .contains(&notify(NoticeKind::Approved, Audience::Requester))
        );
    }

    #[test]
    fn approve_refuses_a_target_that_left_the_window() {
        let mut f = facts(TicketState::InReview);
        let error =
            ValidationError::new(ValidationCode::TargetOutsideRetention, "target_time", "x");
        f.target_check = TargetCheck::Failed(error.clone());
        let r = transition(
            TicketState::InReview,
            &TicketCommand::Approve { inspect: false },
            &actor(Role::Staff),
            &f,
        );
        assert_eq!(r, Err(Refusal::Invalid(error)));
        f.target_check = TargetCheck::NotChecked;
        let r = transition(
            TicketState::InReview,
            &TicketCommand::Approve { inspect: false },
            &actor(Role::Staff),
            &f,
        );
        assert_eq!(r, Err(Refusal::TargetNotChecked));
    }

    #[test]
    fn notes_are_internal_and_notify_nobody() {
        let t = transition(
            TicketState::InReview,
            &command("note"),
            &actor(Role::Staff),
            &facts(TicketState::InReview),
        )
        .unwrap();
        assert_eq!(
            t.effects,
            vec![TicketEffect::PostMessage {
                visibility: Visibility::Internal,
                body: "some words".into()
            }]
        );
    }

    #[test]
    fn staff_cannot_cancel_a_finishing_restore() {
        let mut f = facts(TicketState::Restoring);
        f.job = Some(JobState::Finalizing);
        let r = transition(
            TicketState::Restoring,
            &command("cancel_restore"),
            &actor(Role::Staff),
            &f,
        );
        assert_eq!(r, Err(Refusal::TooLateToCancel));
    }

    #[test]
    fn a_customer_cancel_with_a_reason_posts_it_and_a_bad_one_is_refused() {
        let cancel = |reason: &str| {
            transition(
                TicketState::Triage,
                &TicketCommand::Cancel {
                    reason: reason.into(),
                },
                &actor(Role::Customer),
                &facts(TicketState::Triage),
            )
        };
        let t = cancel("  found a dump  ").unwrap();
        assert!(t.effects.contains(&TicketEffect::PostMessage {
            visibility: Visibility::Public,
            body: "Cancelled by the customer: found a dump".into(),
        }));
        assert!(matches!(
            cancel("bell\u{7}"),
            Err(Refusal::BadText {
                field: "reason",
                ..
            })
        ));
    }

    #[test]
    fn customer_cancel_of_an_approved_ticket_cancels_its_job() {
        let t = transition(
            TicketState::Approved,
            &TicketCommand::Cancel {
                reason: String::new(),
            },
            &actor(Role::Customer),
            &facts(TicketState::Approved),
        )
        .unwrap();
        assert!(t.effects.contains(&TicketEffect::Job(JobRequest::Cancel)));
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        let empty = TicketCommand::Reply { body: "   ".into() };
        let r = transition(
            TicketState::Triage,
            &empty,
            &actor(Role::Customer),
            &facts(TicketState::Triage),
        );
        assert!(matches!(
            r,
            Err(Refusal::BadText {
                field: "message",
                ..
            })
        ));
        let long = TicketCommand::Note {
            body: "x".repeat(MAX_MESSAGE_CHARS + 1),
        };
        let r = transition(
            TicketState::Triage,
            &long,
            &actor(Role::Staff),
            &facts(TicketState::Triage),
        );
        assert!(matches!(r, Err(Refusal::BadText { field: "note", .. })));
    }

    #[test]
    fn deadline_warning_is_sent_once() {
        let mut f = facts(TicketState::InReview);
        f.deadline_warned = true;
        let r = transition(
            TicketState::InReview,
            &TicketCommand::WarnDeadline,
            &Actor::SYSTEM,
            &f,
        );
        assert_eq!(r, Err(Refusal::AlreadyWarned));
    }
}
