//! The audit trail's vocabulary: every kind of event, how it reads, and
//! whether the customer of a ticket may see it.

use super::restore_job::JobCommand;
use super::ticket::TicketCommand;

string_enum! {
    /// What an event records.
    pub enum EventAction ("event") {
        // A ticket's life.
        File = "file",
        AutoValidate = "auto_validate",
        Claim = "claim",
        RequestInfo = "request_info",
        Reply = "reply",
        Note = "note",
        Approve = "approve",
        Reject = "reject",
        Cancel = "cancel",
        CancelRestore = "cancel_restore",
        Retry = "retry",
        JobStarted = "job_started",
        JobSucceeded = "job_succeeded",
        JobFailed = "job_failed",
        WarnDeadline = "warn_deadline",
        Reopen = "reopen",
        Resolve = "resolve",
        /// The target moved before approval.
        ChangeTarget = "change_target",
        /// The customer's verdict on a hand-over: the data is right, and
        /// how they rate the help.
        Verdict = "verdict",
        /// The restored copy waits, paused, for the customer's decision.
        JobPaused = "job_paused",
        Accept = "accept",
        MoveForward = "move_forward",
        GoBack = "go_back",
        DecisionTimeout = "decision_timeout",
        // Its restore job's.
        JobStart = "job_start",
        JobStepSucceeded = "job_step_succeeded",
        JobStepFailed = "job_step_failed",
        JobCancel = "job_cancel",
        JobCompensationDone = "job_compensation_done",
        JobRetry = "job_retry",
        /// No restore host could take the job yet: it waits, and says why.
        JobWait = "job_wait",
        /// A drill gave its host to a customer's restore.
        JobPreempt = "job_preempt",
        JobAccept = "job_accept",
        JobMoveForward = "job_move_forward",
        JobGoBack = "job_go_back",
        /// The job's restore host was lost: another takes it over.
        JobRehost = "job_rehost",
        // Restore drills.
        DrillStart = "drill_start",
        DrillSettings = "drill_settings",
        // Administration.
        UserCreate = "user_create",
        UserUpdate = "user_update",
        ZoneOnline = "zone_online",
        ZoneOffline = "zone_offline",
        FaultAdd = "fault_add",
        FaultClear = "fault_clear",
        ClusterDelete = "cluster_delete",
        ClusterRegister = "cluster_register",
        EndpointCreate = "endpoint_create",
        EndpointRotate = "endpoint_rotate",
        EndpointDisable = "endpoint_disable",
        EndpointEnable = "endpoint_enable",
        EndpointDelete = "endpoint_delete",
        EndpointTest = "endpoint_test",
        /// A host of the fleet added or replaced (a page, the API, or
        /// `FLEET_CONFIG` at start).
        HostPut = "host_put",
        HostRemove = "host_remove",
    }
}

impl EventAction {
    /// The event of a ticket command.
    pub fn of_ticket(command: &TicketCommand) -> EventAction {
        match command {
            TicketCommand::AutoValidate => EventAction::AutoValidate,
            TicketCommand::Claim => EventAction::Claim,
            TicketCommand::RequestInfo { .. } => EventAction::RequestInfo,
            TicketCommand::Reply { .. } => EventAction::Reply,
            TicketCommand::Note { .. } => EventAction::Note,
            TicketCommand::Approve { .. } => EventAction::Approve,
            TicketCommand::Reject { .. } => EventAction::Reject,
            TicketCommand::Cancel { .. } => EventAction::Cancel,
            TicketCommand::CancelRestore { .. } => EventAction::CancelRestore,
            TicketCommand::Retry => EventAction::Retry,
            TicketCommand::JobStarted => EventAction::JobStarted,
            TicketCommand::JobSucceeded => EventAction::JobSucceeded,
            TicketCommand::JobFailed { .. } => EventAction::JobFailed,
            TicketCommand::WarnDeadline => EventAction::WarnDeadline,
            TicketCommand::Reopen { .. } => EventAction::Reopen,
            TicketCommand::Resolve => EventAction::Resolve,
            TicketCommand::ChangeTarget { .. } => EventAction::ChangeTarget,
            TicketCommand::JobPaused { .. } => EventAction::JobPaused,
            TicketCommand::Accept => EventAction::Accept,
            TicketCommand::MoveForward { .. } => EventAction::MoveForward,
            TicketCommand::GoBack { .. } => EventAction::GoBack,
            TicketCommand::DecisionTimeout => EventAction::DecisionTimeout,
        }
    }

    /// Every event a restore job command records: a job's own state
    /// changes, as opposed to its ticket's.
    pub const OF_JOBS: [EventAction; 12] = [
        EventAction::JobStart,
        EventAction::JobStepSucceeded,
        EventAction::JobStepFailed,
        EventAction::JobCancel,
        EventAction::JobCompensationDone,
        EventAction::JobRetry,
        EventAction::JobWait,
        EventAction::JobPreempt,
        EventAction::JobAccept,
        EventAction::JobMoveForward,
        EventAction::JobGoBack,
        EventAction::JobRehost,
    ];

    /// The event of a restore job command.
    pub fn of_job(command: &JobCommand) -> EventAction {
        match command {
            JobCommand::Start => EventAction::JobStart,
            JobCommand::StepSucceeded => EventAction::JobStepSucceeded,
            JobCommand::StepFailed(_) => EventAction::JobStepFailed,
            JobCommand::Cancel => EventAction::JobCancel,
            JobCommand::CompensationDone => EventAction::JobCompensationDone,
            JobCommand::Retry => EventAction::JobRetry,
            JobCommand::Wait(_) => EventAction::JobWait,
            JobCommand::Preempt => EventAction::JobPreempt,
            JobCommand::Accept => EventAction::JobAccept,
            JobCommand::MoveForward { .. } => EventAction::JobMoveForward,
            JobCommand::GoBack { .. } => EventAction::JobGoBack,
            JobCommand::Rehost { .. } => EventAction::JobRehost,
        }
    }

    /// How the event reads in a timeline or the audit log.
    pub fn label(self) -> &'static str {
        use EventAction as A;
        match self {
            A::File => "Request filed",
            A::AutoValidate => "Checked against the backup window",
            A::Claim => "Claimed",
            A::RequestInfo => "Information requested",
            A::Reply => "Reply posted",
            A::Note => "Internal note added",
            A::Approve => "Approved",
            A::Reject => "Rejected",
            A::Cancel => "Cancelled by the customer",
            A::CancelRestore => "Restore cancelled by support",
            A::Retry => "Restore retried",
            A::JobStarted => "Restore started",
            A::JobSucceeded => "Restore completed",
            A::JobFailed => "Restore failed",
            A::WarnDeadline => "Deadline warning sent",
            A::Reopen => "Reopened by the customer: the data is not right",
            A::Resolve => "Closed again by support",
            A::ChangeTarget => "Target changed",
            A::Verdict => "The customer confirmed the restored data",
            A::JobPaused => "Restored copy paused at the target for inspection",
            A::Accept => "The customer accepted the restored copy",
            A::MoveForward => "The customer moved the restored copy forward",
            A::GoBack => "The customer went back to an earlier moment",
            A::DecisionTimeout => "No decision in time: handed over as it is",
            A::JobStart => "Restore job picked up",
            A::JobStepSucceeded => "Restore step finished",
            A::JobStepFailed => "Restore step failed",
            A::JobCancel => "Restore job told to stop",
            A::JobCompensationDone => "Half-built cluster removed",
            A::JobRetry => "Restore job started again",
            A::JobWait => "Waiting for a restore host",
            A::JobPreempt => "Restore test gave way to a customer's restore",
            A::JobAccept => "Paused copy promoted for hand-over",
            A::JobMoveForward => "Paused copy replaying on",
            A::JobGoBack => "Paused copy removed for an earlier restore",
            A::JobRehost => "Restore host lost: taken over by another",
            A::DrillStart => "Restore test scheduled",
            A::DrillSettings => "Restore test settings changed",
            A::UserCreate => "User created",
            A::UserUpdate => "User changed",
            A::ZoneOnline => "Zone brought online",
            A::ZoneOffline => "Zone taken offline",
            A::FaultAdd => "Fault armed",
            A::FaultClear => "Faults cleared",
            A::ClusterDelete => "Cluster deleted",
            A::ClusterRegister => "Existing cluster registered",
            A::EndpointCreate => "Endpoint added",
            A::EndpointRotate => "Endpoint secret rotated",
            A::EndpointDisable => "Endpoint disabled",
            A::EndpointEnable => "Endpoint enabled",
            A::EndpointDelete => "Endpoint removed",
            A::EndpointTest => "Test event sent",
            A::HostPut => "Fleet host added or replaced",
            A::HostRemove => "Fleet host removed",
        }
    }

    /// Whether a customer who may see the event may also read its detail:
    /// who took the ticket, the reasons they were told. The rest of the
    /// details are meant for staff: a failed restore's is the internal
    /// error, which the customer's page puts in words of its own.
    pub fn detail_is_public(self) -> bool {
        use EventAction as A;
        matches!(
            self,
            A::File
                | A::Claim
                | A::Reject
                | A::CancelRestore
                | A::Reopen
                | A::Verdict
                | A::ChangeTarget
                | A::Accept
                | A::MoveForward
                | A::GoBack
                | A::DecisionTimeout
        )
    }

    /// Whether the customer of the ticket may see this event: internal
    /// notes and staff-only warnings stay out, even as a bare mention, and
    /// the restore's inner steps are the progress bar's business.
    pub fn customer_may_see(self) -> bool {
        use EventAction as A;
        !matches!(
            self,
            A::Note
                | A::WarnDeadline
                | A::JobStart
                | A::JobStepSucceeded
                | A::JobStepFailed
                | A::JobCompensationDone
                | A::JobWait
                | A::JobPreempt
                | A::JobAccept
                | A::JobMoveForward
                | A::JobGoBack
                | A::JobRehost
                | A::DrillStart
                | A::DrillSettings
                | A::UserCreate
                | A::UserUpdate
                | A::ZoneOnline
                | A::ZoneOffline
                | A::FaultAdd
                | A::FaultClear
                | A::ClusterDelete
                | A::ClusterRegister
                | A::EndpointCreate
                | A::EndpointRotate
                | A::EndpointDisable
                | A::EndpointEnable
                | A::EndpointDelete
                | A::EndpointTest
                | A::HostPut
                | A::HostRemove
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_its_event_named_after_it() {
        for action in EventAction::ALL {
            assert!(!action.label().is_empty());
        }
        assert_eq!(
            EventAction::of_ticket(&TicketCommand::Claim).as_str(),
            TicketCommand::Claim.name()
        );
        assert_eq!(EventAction::of_job(&JobCommand::Start), "job_start");
        let failure = crate::domain::restore_job::StepFailure {
            code: "x".into(),
            message: "x".into(),
            retryable: true,
        };
        for command in [
            JobCommand::Start,
            JobCommand::StepSucceeded,
            JobCommand::StepFailed(failure.clone()),
            JobCommand::Cancel,
            JobCommand::CompensationDone,
            JobCommand::Retry,
            JobCommand::Wait(failure),
            JobCommand::Preempt,
            JobCommand::Accept,
            JobCommand::MoveForward {
                target: chrono::Utc::now(),
            },
            JobCommand::GoBack {
                target: chrono::Utc::now(),
            },
            JobCommand::Rehost { host: "r1".into() },
        ] {
            assert!(EventAction::OF_JOBS.contains(&EventAction::of_job(&command)));
        }
    }

    /// What customers may never see on their ticket.
    #[test]
    fn private_events_stay_private() {
        let hidden: Vec<&str> = EventAction::ALL
            .into_iter()
            .filter(|a| !a.customer_may_see())
            .map(EventAction::as_str)
            .collect();
        for private in [
            "note",
            "warn_deadline",
            "job_step_failed",
            "user_update",
            "host_put",
            "host_remove",
        ] {
            assert!(hidden.contains(&private), "{private} shown to customers");
        }
        assert!(EventAction::Reply.customer_may_see());
        assert!(EventAction::JobFailed.customer_may_see());
    }
}
