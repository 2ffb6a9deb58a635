//! A ticket as stored, and what a transition writes to it. `apply` turns
//! the lifecycle's decision into the change the store writes and the
//! ticket as it is afterwards — the one the emails describe.

use crate::domain::ids::{ClusterId, SubscriptionId, TicketId, UserId};
use chrono::{DateTime, Utc};

use super::{JobRequest, Notice, TicketCommand, TicketEffect, TicketState, Transition, Visibility};
use crate::domain::sla::Severity;
use crate::domain::transactions::TransactionTarget;
use crate::domain::validation::ValidationReport;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: TicketId,
    pub number: i64,
    pub subscription_id: SubscriptionId,
    pub requester_id: UserId,
    pub cluster_id: ClusterId,
    pub resource_group: String,
    pub target_time: DateTime<Utc>,
    pub time_zone: String,
    /// Set when the target is a transaction: `target_time` is the moment
    /// it stands for.
    pub transaction: Option<TransactionTarget>,
    pub new_cluster_name: String,
    pub severity: Severity,
    pub description: String,
    pub state: TicketState,
    pub version: i64,
    pub assignee_id: Option<UserId>,
    pub validation_report: ValidationReport,
    pub rejection_reason: Option<String>,
    pub deadline: DateTime<Utc>,
    pub first_response_due: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub deadline_warned_at: Option<DateTime<Utc>>,
    pub new_cluster_id: Option<ClusterId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The restored copy stops paused and read-only at the target for the
    /// customer to inspect before it is handed over.
    pub inspect: bool,
    /// While a paused copy waits: until when the customer may decide.
    pub decision_due: Option<DateTime<Utc>>,
}

/// `RD-000123`: the number people quote.
pub fn ticket_reference(number: i64) -> String {
    format!("RD-{number:06}")
}

/// Where a new ticket's reference stands in what is written before its
/// number exists: the number is allocated in the filing's own transaction,
/// which then puts the reference in its place. Control characters never
/// come from what people type, so no text of theirs can contain it.
pub const PENDING_REFERENCE: &str = "\u{1}RD-pending\u{1}";

impl Ticket {
    /// The reference, or `PENDING_REFERENCE` while the ticket is being
    /// filed and has no number yet.
    pub fn reference(&self) -> String {
        if self.number == 0 {
            PENDING_REFERENCE.to_string()
        } else {
            ticket_reference(self.number)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub id: TicketId,
    /// `None`: the store allocates the next number in the same transaction.
    pub number: Option<i64>,
    pub subscription_id: SubscriptionId,
    pub requester_id: UserId,
    pub cluster_id: ClusterId,
    pub resource_group: String,
    pub target_time: DateTime<Utc>,
    pub time_zone: String,
    pub transaction: Option<TransactionTarget>,
    pub new_cluster_name: String,
    pub severity: Severity,
    pub description: String,
    pub state: TicketState,
    pub validation_report: ValidationReport,
    pub deadline: DateTime<Utc>,
    pub first_response_due: DateTime<Utc>,
    /// The customer asked to inspect the restored copy before hand-over.
    pub inspect: bool,
}

impl NewTicket {
    /// The ticket this row becomes when inserted at `at` (number 0 until
    /// one is allocated).
    pub fn as_ticket(&self, at: DateTime<Utc>) -> Ticket {
        Ticket {
            id: self.id,
            number: self.number.unwrap_or(0),
            subscription_id: self.subscription_id,
            requester_id: self.requester_id,
            cluster_id: self.cluster_id,
            resource_group: self.resource_group.clone(),
            target_time: self.target_time,
            time_zone: self.time_zone.clone(),
            transaction: self.transaction,
            new_cluster_name: self.new_cluster_name.clone(),
            severity: self.severity,
            description: self.description.clone(),
            state: self.state,
            version: 1,
            assignee_id: None,
            validation_report: self.validation_report.clone(),
            rejection_reason: None,
            deadline: self.deadline,
            first_response_due: self.first_response_due,
            first_response_at: None,
            deadline_warned_at: None,
            new_cluster_id: None,
            created_at: at,
            updated_at: at,
            inspect: self.inspect,
            decision_due: None,
        }
    }
}

/// Guards for a ticket change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketGuard {
    pub state: TicketState,
    /// People's commands check the version they decided on; the engine's
    /// follow-ups check the state only, so a customer's reply does not make
    /// a finished restore step fail.
    pub version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketChange {
    pub ticket_id: TicketId,
    pub guard: TicketGuard,
    pub to: TicketState,
    pub assign: Option<UserId>,
    pub rejection_reason: Option<String>,
    pub record_first_response: bool,
    pub mark_deadline_warned: bool,
    pub validation_report: Option<ValidationReport>,
    pub new_cluster_id: Option<ClusterId>,
    /// A corrected target, with the deadline that follows from it.
    pub retarget: Option<Retarget>,
    /// The copy is to be inspected before hand-over (set, never unset).
    pub require_inspection: bool,
    /// A new decision deadline, or none once decided.
    pub decide_by: Option<Option<DateTime<Utc>>>,
}

/// The moment a ticket restores to, moved before approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retarget {
    pub target_time: DateTime<Utc>,
    pub time_zone: String,
    pub transaction: Option<TransactionTarget>,
    pub deadline: DateTime<Utc>,
}

impl TicketChange {
    pub fn new(ticket_id: TicketId, guard: TicketGuard, to: TicketState) -> TicketChange {
        TicketChange {
            ticket_id,
            guard,
            to,
            assign: None,
            rejection_reason: None,
            record_first_response: false,
            mark_deadline_warned: false,
            validation_report: None,
            new_cluster_id: None,
            retarget: None,
            require_inspection: false,
            decide_by: None,
        }
    }
}

impl TicketChange {
    /// The ticket once this change is written at `at`.
    pub fn applied_to(&self, ticket: &Ticket, at: DateTime<Utc>) -> Ticket {
        let mut after = ticket.clone();
        after.state = self.to;
        after.version += 1;
        after.updated_at = at;
        if let Some(user) = self.assign {
            after.assignee_id = Some(user);
        }
        if let Some(reason) = &self.rejection_reason {
            after.rejection_reason = Some(reason.clone());
        }
        if self.record_first_response && after.first_response_at.is_none() {
            after.first_response_at = Some(at);
        }
        if self.mark_deadline_warned {
            after.deadline_warned_at = Some(at);
        }
        if let Some(report) = &self.validation_report {
            after.validation_report = report.clone();
        }
        if let Some(id) = self.new_cluster_id {
            after.new_cluster_id = Some(id);
        }
        if let Some(moved) = &self.retarget {
            after.target_time = moved.target_time;
            after.time_zone = moved.time_zone.clone();
            after.transaction = moved.transaction;
            after.deadline = moved.deadline;
            // The new deadline gets its own warning.
            after.deadline_warned_at = None;
        }
        if self.require_inspection {
            after.inspect = true;
        }
        if let Some(due) = self.decide_by {
            after.decision_due = due;
        }
        after
    }
}

/// Everything a ticket command does, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketDecision {
    pub change: TicketChange,
    /// The ticket once the change is written.
    pub after: Ticket,
    /// Messages to post, public or internal.
    pub messages: Vec<(Visibility, String)>,
    pub notices: Vec<Notice>,
    /// The text the notices quote: a public message, a rejection reason or
    /// why the restore failed.
    pub notice_text: Option<String>,
    pub job: Option<JobRequest>,
}

/// Facts a change records that the transition does not decide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The latest check of the target against the backup window.
    pub validation_report: Option<ValidationReport>,
    /// The cluster the restore handed over.
    pub new_cluster_id: Option<ClusterId>,
}

/// Writes a transition into the ticket's fields. `guard_version` asks the
/// store to check the version the decision was made on (people's commands);
/// without it only the state is checked (the engine's follow-ups).
pub fn apply(
    ticket: &Ticket,
    command: &TicketCommand,
    transition: Transition,
    guard_version: bool,
    recorded: Recorded,
    at: DateTime<Utc>,
) -> TicketDecision {
    let mut change = TicketChange::new(
        ticket.id,
        TicketGuard {
            state: ticket.state,
            version: guard_version.then_some(ticket.version),
        },
        transition.to,
    );
    change.validation_report = recorded.validation_report;
    change.new_cluster_id = recorded.new_cluster_id;
    let mut decision = TicketDecision {
        after: ticket.clone(),
        messages: Vec::new(),
        notices: Vec::new(),
        notice_text: match command {
            TicketCommand::JobFailed { reason } => Some(reason.clone()),
            _ => None,
        },
        job: None,
        change,
    };
    for effect in transition.effects {
        match effect {
            TicketEffect::Assign(user) => decision.change.assign = Some(user),
            TicketEffect::PostMessage { visibility, body } => {
                if visibility == Visibility::Public {
                    decision.notice_text = Some(body.clone());
                }
                decision.messages.push((visibility, body));
            }
            TicketEffect::RecordRejection(reason) => {
                decision.notice_text = Some(reason.clone());
                decision.change.rejection_reason = Some(reason);
            }
            TicketEffect::RecordFirstResponse => decision.change.record_first_response = true,
            TicketEffect::MarkDeadlineWarned => decision.change.mark_deadline_warned = true,
            TicketEffect::SetTarget {
                target,
                time_zone,
                transaction,
            } => {
                let deadline = decision
                    .change
                    .validation_report
                    .as_ref()
                    .map_or(ticket.deadline, |report| report.deadline);
                decision.change.retarget = Some(Retarget {
                    target_time: target,
                    time_zone,
                    transaction,
                    deadline,
                });
            }
            TicketEffect::Notify(notice) => decision.notices.push(notice),
            TicketEffect::Job(request) => decision.job = Some(request),
            TicketEffect::RequireInspection => decision.change.require_inspection = true,
            TicketEffect::DecideBy(due) => decision.change.decide_by = Some(due),
        }
    }
    decision.after = decision.change.applied_to(ticket, at);
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::{Actor, Role};
    use crate::domain::restore_job::JobState;
    use crate::domain::ticket::{TargetCheck, TicketFacts, transition};
    use chrono::TimeZone;
    use uuid::Uuid;

    const STAFF: UserId = UserId::from_uuid(Uuid::from_u128(2));

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn report() -> ValidationReport {
        ValidationReport {
            checked_at: now(),
            target: now(),
            window: None,
            online_zones: crate::domain::catalog::ZoneSet::ALL,
            plan: None,
            error: None,
            deadline: now(),
        }
    }

    fn ticket(state: TicketState) -> Ticket {
        use TicketState as S;
        let t = now() - chrono::Duration::hours(2);
        NewTicket {
            id: Uuid::from_u128(10).into(),
            number: Some(7),
            subscription_id: Uuid::from_u128(11).into(),
            requester_id: Uuid::from_u128(1).into(),
            cluster_id: Uuid::from_u128(12).into(),
            resource_group: "rg".into(),
            target_time: t,
            time_zone: "UTC".into(),
            transaction: None,
            new_cluster_name: "copy".into(),
            severity: Severity::B,
            description: String::new(),
            state,
            validation_report: report(),
            deadline: t + chrono::Duration::days(35),
            first_response_due: t + chrono::Duration::hours(4),
            inspect: false,
        }
        .as_ticket(t)
        .with_assignee((!matches!(state, S::Submitted | S::Triage)).then_some(STAFF))
    }

    impl Ticket {
        fn with_assignee(mut self, assignee: Option<UserId>) -> Ticket {
            self.assignee_id = assignee;
            self
        }
    }

    fn facts(ticket: &Ticket) -> TicketFacts {
        use TicketState as S;
        TicketFacts {
            assignee: ticket.assignee_id,
            target_check: TargetCheck::Passed,
            job: match ticket.state {
                S::Approved => Some(JobState::Queued),
                S::Restoring => Some(JobState::ReplayingLog),
                S::Failed => Some(JobState::Failed),
                S::Completed => Some(JobState::Succeeded),
                S::AwaitingDecision => Some(JobState::Paused),
                _ => None,
            },
            deadline_warned: false,
            target: ticket.target_time,
        }
    }

    /// Each command with who gives it; `reply` twice, from either side.
    fn commands() -> Vec<(&'static str, TicketCommand, Actor)> {
        let text = || "some words".to_string();
        let staff = Actor::user(STAFF, Role::Staff);
        let customer = Actor::user(Uuid::from_u128(1).into(), Role::Customer);
        let system = Actor::SYSTEM;
        vec![
            ("auto_validate", TicketCommand::AutoValidate, system),
            (
                "claim",
                TicketCommand::Claim,
                Actor::user(Uuid::from_u128(3).into(), Role::Staff),
            ),
            (
                "request_info",
                TicketCommand::RequestInfo { message: text() },
                staff,
            ),
            (
                "reply_customer",
                TicketCommand::Reply { body: text() },
                customer,
            ),
            ("reply_staff", TicketCommand::Reply { body: text() }, staff),
            ("note", TicketCommand::Note { body: text() }, staff),
            ("approve", TicketCommand::Approve { inspect: false }, staff),
            (
                "approve_inspect",
                TicketCommand::Approve { inspect: true },
                staff,
            ),
            ("reject", TicketCommand::Reject { reason: text() }, staff),
            (
                "cancel",
                TicketCommand::Cancel {
                    reason: String::new(),
                },
                customer,
            ),
            (
                "cancel_restore",
                TicketCommand::CancelRestore { reason: text() },
                staff,
            ),
            ("retry", TicketCommand::Retry, staff),
            (
                "retarget_customer",
                TicketCommand::ChangeTarget {
                    target: now(),
                    time_zone: "Asia/Tokyo".into(),
                    transaction: None,
                    reason: text(),
                },
                customer,
            ),
            (
                "retarget_staff",
                TicketCommand::ChangeTarget {
                    target: now(),
                    time_zone: "UTC".into(),
                    transaction: None,
                    reason: text(),
                },
                staff,
            ),
            ("job_started", TicketCommand::JobStarted, system),
            ("job_succeeded", TicketCommand::JobSucceeded, system),
            (
                "job_failed",
                TicketCommand::JobFailed { reason: text() },
                system,
            ),
            ("warn_deadline", TicketCommand::WarnDeadline, system),
            (
                "reopen",
                TicketCommand::Reopen { comment: text() },
                customer,
            ),
            ("resolve", TicketCommand::Resolve, staff),
            (
                "job_paused",
                TicketCommand::JobPaused {
                    decide_by: now() + chrono::Duration::hours(24),
                },
                system,
            ),
            ("accept", TicketCommand::Accept, customer),
            (
                "move_forward",
                TicketCommand::MoveForward {
                    target: now(),
                    time_zone: "UTC".into(),
                    transaction: None,
                },
                customer,
            ),
            (
                "go_back",
                TicketCommand::GoBack {
                    target: now() - chrono::Duration::hours(6),
                    time_zone: "UTC".into(),
                    transaction: None,
                },
                customer,
            ),
            ("decision_timeout", TicketCommand::DecisionTimeout, system),
        ]
    }

    fn describe(decision: &TicketDecision, before: &Ticket) -> String {
        let c = &decision.change;
        let mut out = vec![format!("to={}", c.to)];
        if c.guard.version.is_some() {
            out.push("v".into());
        }
        if let Some(user) = c.assign {
            out.push(format!("assign={}", user.uuid().as_u128()));
        }
        if c.rejection_reason.is_some() {
            out.push("rejection".into());
        }
        if c.record_first_response {
            out.push("first_response".into());
        }
        if c.mark_deadline_warned {
            out.push("warned".into());
        }
        if c.validation_report.is_some() {
            out.push("report".into());
        }
        if c.new_cluster_id.is_some() {
            out.push("new_cluster".into());
        }
        if c.retarget.is_some() {
            out.push("retarget".into());
        }
        if c.require_inspection {
            out.push("inspect".into());
        }
        if let Some(due) = c.decide_by {
            out.push(
                if due.is_some() {
                    "decide_by=set"
                } else {
                    "decide_by=cleared"
                }
                .into(),
            );
        }
        for (visibility, _) in &decision.messages {
            out.push(format!("msg={}", visibility.as_str()));
        }
        for notice in &decision.notices {
            out.push(format!("mail={}>{:?}", notice.kind.as_str(), notice.to));
        }
        if decision.notice_text.is_some() {
            out.push("quotes".into());
        }
        if let Some(job) = decision.job {
            out.push(format!("job={job:?}"));
        }
        assert_eq!(decision.after.version, before.version + 1);
        assert_eq!(decision.after.state, c.to);
        out.join(" ")
    }

    /// Every command the lifecycle allows (by the role that gives it), and
    /// everything it writes. Not listed: refused by `transition`.
    const TABLE: &str = "
    retarget_customer awaiting_customer to=in_review v retarget msg=public mail=target_changed>Assignee quotes
    retarget_staff  in_review          to=in_review v first_response retarget msg=public mail=target_changed>Requester quotes
    retarget_staff  awaiting_customer  to=awaiting_customer v first_response retarget msg=public mail=target_changed>Requester quotes
    auto_validate   submitted          to=triage mail=request_received>Requester mail=new_request>AllStaff
    claim           triage             to=in_review v assign=3
    claim           in_review          to=in_review v assign=3
    claim           awaiting_customer  to=awaiting_customer v assign=3
    claim           approved           to=approved v assign=3
    claim           restoring          to=restoring v assign=3
    claim           failed             to=failed v assign=3
    request_info    in_review          to=awaiting_customer v first_response msg=public mail=information_requested>Requester quotes
    reply_customer  submitted          to=submitted v msg=public mail=customer_replied>Assignee quotes
    reply_customer  triage             to=triage v msg=public mail=customer_replied>Assignee quotes
    reply_customer  in_review          to=in_review v msg=public mail=customer_replied>Assignee quotes
    reply_customer  awaiting_customer  to=in_review v msg=public mail=customer_replied>Assignee quotes
    reply_customer  approved           to=approved v msg=public mail=customer_replied>Assignee quotes
    reply_customer  restoring          to=restoring v msg=public mail=customer_replied>Assignee quotes
    reply_customer  failed             to=failed v msg=public mail=customer_replied>Assignee quotes
    reply_staff     submitted          to=submitted v first_response msg=public mail=staff_replied>Requester quotes
    reply_staff     triage             to=triage v first_response msg=public mail=staff_replied>Requester quotes
    reply_staff     in_review          to=in_review v first_response msg=public mail=staff_replied>Requester quotes
    reply_staff     awaiting_customer  to=awaiting_customer v first_response msg=public mail=staff_replied>Requester quotes
    reply_staff     approved           to=approved v first_response msg=public mail=staff_replied>Requester quotes
    reply_staff     restoring          to=restoring v first_response msg=public mail=staff_replied>Requester quotes
    reply_staff     failed             to=failed v first_response msg=public mail=staff_replied>Requester quotes
    note            submitted          to=submitted v msg=internal
    note            triage             to=triage v msg=internal
    note            in_review          to=in_review v msg=internal
    note            awaiting_customer  to=awaiting_customer v msg=internal
    note            approved           to=approved v msg=internal
    note            restoring          to=restoring v msg=internal
    note            completed          to=completed v msg=internal
    note            failed             to=failed v msg=internal
    note            rejected           to=rejected v msg=internal
    note            cancelled          to=cancelled v msg=internal
    approve         in_review          to=approved v first_response mail=approved>Requester job=Create
    reject          in_review          to=rejected v rejection first_response mail=rejected>Requester quotes
    reject          awaiting_customer  to=rejected v rejection first_response mail=rejected>Requester quotes
    cancel          submitted          to=cancelled v mail=cancelled>Requester
    cancel          triage             to=cancelled v mail=cancelled>Requester
    cancel          in_review          to=cancelled v mail=cancelled>Requester mail=cancelled>Assignee
    cancel          awaiting_customer  to=cancelled v mail=cancelled>Requester mail=cancelled>Assignee
    cancel          approved           to=cancelled v mail=cancelled>Requester mail=cancelled>Assignee job=Cancel
    cancel_restore  approved           to=cancelled v msg=public mail=cancelled>Requester quotes job=Cancel
    cancel_restore  restoring          to=cancelled v msg=public mail=cancelled>Requester quotes job=Cancel
    retry           failed             to=restoring v job=Retry
    job_started     approved           to=restoring mail=restore_started>Requester
    job_started     restoring          to=restoring mail=restore_started>Requester
    job_succeeded   restoring          to=completed mail=restore_completed>Requester
    job_failed      restoring          to=failed mail=restore_failed>Requester mail=restore_failed>Assignee quotes
    warn_deadline   submitted          to=submitted warned mail=deadline_near>Assignee
    warn_deadline   triage             to=triage warned mail=deadline_near>Assignee
    warn_deadline   in_review          to=in_review warned mail=deadline_near>Assignee
    warn_deadline   awaiting_customer  to=awaiting_customer warned mail=deadline_near>Assignee
    warn_deadline   approved           to=approved warned mail=deadline_near>Assignee
    warn_deadline   failed             to=failed warned mail=deadline_near>Assignee
    reopen          completed          to=in_review v msg=public mail=reopened>Assignee quotes
    claim           awaiting_decision  to=awaiting_decision v assign=3
    reply_customer  awaiting_decision  to=awaiting_decision v msg=public mail=customer_replied>Assignee quotes
    reply_staff     awaiting_decision  to=awaiting_decision v first_response msg=public mail=staff_replied>Requester quotes
    note            awaiting_decision  to=awaiting_decision v msg=internal
    approve_inspect in_review          to=approved v first_response inspect mail=approved>Requester job=Create
    cancel_restore  awaiting_decision  to=cancelled v msg=public mail=cancelled>Requester quotes job=Cancel
    job_paused      restoring          to=awaiting_decision decide_by=set mail=ready_to_inspect>Requester
    accept          awaiting_decision  to=restoring v decide_by=cleared msg=public mail=inspection_decided>Assignee quotes job=Accept
    move_forward    awaiting_decision  to=restoring v retarget decide_by=cleared msg=public mail=inspection_decided>Requester mail=inspection_decided>Assignee quotes job=MoveForward
    go_back         awaiting_decision  to=restoring v retarget decide_by=cleared msg=public mail=inspection_decided>Requester mail=inspection_decided>Assignee quotes job=GoBack
    decision_timeout awaiting_decision  to=restoring decide_by=cleared msg=public mail=inspection_decided>Requester mail=inspection_decided>Assignee quotes job=Accept
    ";

    #[test]
    fn every_allowed_command_decides_exactly_this() {
        let mut expected = std::collections::HashMap::new();
        for line in TABLE.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut cols = line.split_whitespace();
            let key = (
                cols.next().unwrap().to_string(),
                cols.next().unwrap().to_string(),
            );
            expected.insert(key, cols.collect::<Vec<_>>().join(" "));
        }
        let mut failures = Vec::new();
        let mut allowed = 0;
        for (name, command, actor) in commands() {
            for state in TicketState::ALL {
                let before = ticket(state);
                let key = (name.to_string(), state.as_str().to_string());
                let Ok(t) = transition(state, &command, &actor, &facts(&before)) else {
                    if expected.contains_key(&key) {
                        failures.push(format!("{name} {state}: refused but listed"));
                    }
                    continue;
                };
                allowed += 1;
                let guard_version = actor.role != Role::System;
                let decision = apply(
                    &before,
                    &command,
                    t,
                    guard_version,
                    Recorded::default(),
                    now(),
                );
                let got = describe(&decision, &before);
                match expected.get(&key) {
                    Some(want) if *want == got => {}
                    Some(want) => {
                        failures.push(format!("{name} {state}:\n  want {want}\n  got  {got}"))
                    }
                    None => failures.push(format!("    {name:<15} {:<18} {got}", state.as_str())),
                }
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
        assert_eq!(allowed, expected.len());
    }

    /// A moved target brings its own deadline, from its check, and the old
    /// deadline's warning no longer counts.
    #[test]
    fn a_moved_target_takes_its_deadline_from_its_check() {
        let mut before = ticket(TicketState::InReview);
        before.deadline_warned_at = Some(now());
        let target = now() - chrono::Duration::hours(5);
        let command = TicketCommand::ChangeTarget {
            target,
            time_zone: "Asia/Tokyo".into(),
            transaction: None,
            reason: "the customer was sure".into(),
        };
        let t = transition(
            TicketState::InReview,
            &command,
            &Actor::user(STAFF, Role::Staff),
            &facts(&before),
        )
        .unwrap();
        let checked = ValidationReport {
            target,
            deadline: target + chrono::Duration::days(35),
            ..report()
        };
        let recorded = Recorded {
            validation_report: Some(checked.clone()),
            new_cluster_id: None,
        };
        let decision = apply(&before, &command, t, true, recorded, now());
        assert_eq!(decision.after.target_time, target);
        assert_eq!(decision.after.time_zone, "Asia/Tokyo");
        assert_eq!(decision.after.deadline, checked.deadline);
        assert_eq!(decision.after.validation_report, checked);
        assert_eq!(decision.after.deadline_warned_at, None);
        assert_eq!(decision.after.first_response_due, before.first_response_due);
    }

    #[test]
    fn the_ticket_after_a_change_is_the_one_the_store_will_hold() {
        let before = ticket(TicketState::InReview);
        let at = now();
        let decision = apply(
            &before,
            &TicketCommand::Reject {
                reason: "No backup that old".into(),
            },
            transition(
                TicketState::InReview,
                &TicketCommand::Reject {
                    reason: "No backup that old".into(),
                },
                &Actor::user(STAFF, Role::Staff),
                &facts(&before),
            )
            .unwrap(),
            true,
            Recorded {
                validation_report: Some(report()),
                new_cluster_id: None,
            },
            at,
        );
        let after = decision.after;
        assert_eq!(after.state, TicketState::Rejected);
        assert_eq!(
            after.rejection_reason.as_deref(),
            Some("No backup that old")
        );
        assert_eq!(after.first_response_at, Some(at));
        assert_eq!(after.updated_at, at);
        assert_eq!(decision.notice_text.as_deref(), Some("No backup that old"));
        assert_eq!(decision.change.guard.version, Some(before.version));
        // A first response already given is kept.
        let mut answered = before.clone();
        answered.first_response_at = Some(at - chrono::Duration::hours(1));
        let mut change = TicketChange::new(
            answered.id,
            decision.change.guard.clone(),
            TicketState::Rejected,
        );
        change.record_first_response = true;
        assert_eq!(
            change.applied_to(&answered, at).first_response_at,
            answered.first_response_at
        );
    }
}
