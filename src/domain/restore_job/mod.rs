//! The restore-job lifecycle (SPEC §5) as one pure function.
//!
//! ```text
//! queued → provisioning → restoring_snapshot → replaying_log → verifying → finalizing → succeeded
//!   │         any step: retry with backoff up to a limit, then → failing → failed
//!   │         cancel (before finalizing): → cancelling → cancelled
//!   └─ wait (no room on the host yet) → queued
//! drills only: preempt (a customer's restore needs the host) → preempted → queued
//! inspect before hand-over: verifying → paused ─accept→ finalizing
//!                                       paused ─move forward→ replaying_log (the same copy)
//!                                       paused ─go back→ rewinding → queued (a new copy)
//! ```
//!
//! `failing`, `cancelling` and `preempted` are the compensation: a worker
//! removes the half-built cluster before the job rests or starts again.
//!
//! A job is a customer's restore (it follows a ticket and ends in a hand-over)
//! or a drill: the same steps from a zone chosen in turn, verified more
//! deeply, its last step tearing the copy down instead of handing it over.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::actor::{Actor, Role};
use super::ticket::TicketCommand;

mod record;
pub use record::{
    ApplyContext, Fence, JobChange, JobGuard, JobOutputs, JobPatch, RestoreJob, apply,
};

string_enum! {
    /// What a job is for.
    pub enum JobKind ("job kind") {
        /// A customer's restore, approved on a ticket.
        Restore = "restore",
        /// A scheduled restore test: verified, then torn down.
        Drill = "drill",
    }
}

string_enum! {
    /// Where a restore job is: its steps, then how it ended.
    #[derive(PartialOrd, Ord)]
    pub enum JobState ("job state") {
        Queued = "queued",
        Provisioning = "provisioning",
        RestoringSnapshot = "restoring_snapshot",
        ReplayingLog = "replaying_log",
        Verifying = "verifying",
        Finalizing = "finalizing",
        /// The copy stopped, paused and read-only, at the target: it waits
        /// for the customer's decision.
        Paused = "paused",
        Succeeded = "succeeded",
        Failing = "failing",
        Cancelling = "cancelling",
        /// A drill giving way to a customer's restore: its copy is removed,
        /// then it waits for room again.
        Preempted = "preempted",
        /// Going back to an earlier moment: the paused copy is removed
        /// before a new restore.
        Rewinding = "rewinding",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl JobState {
    /// The steps that build the new cluster, in order.
    pub const STEPS: [JobState; 5] = [
        JobState::Provisioning,
        JobState::RestoringSnapshot,
        JobState::ReplayingLog,
        JobState::Verifying,
        JobState::Finalizing,
    ];

    /// The step label shown with the progress bar.
    pub fn label(self) -> &'static str {
        match self {
            JobState::Queued => "Waiting to start",
            JobState::Provisioning => "Provisioning the new cluster",
            JobState::RestoringSnapshot => "Restoring the snapshot",
            JobState::ReplayingLog => "Replaying the log to the target time",
            JobState::Verifying => "Verifying the new cluster",
            JobState::Finalizing => "Handing over the new cluster",
            JobState::Paused => "Paused at the target: waiting for the customer's decision",
            JobState::Succeeded => "Restore complete",
            JobState::Failing => "Failed: removing the half-built cluster",
            JobState::Cancelling => "Cancelled: removing the half-built cluster",
            JobState::Preempted => "Giving way to a customer's restore",
            JobState::Rewinding => "Going back: removing the paused copy",
            JobState::Failed => "Restore failed",
            JobState::Cancelled => "Restore cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// A step that builds the new cluster.
    pub fn is_build_step(self) -> bool {
        JobState::STEPS.contains(&self)
    }

    /// The step label of a job of `kind`: a drill's last step removes its
    /// copy rather than handing it over.
    pub fn label_for(self, kind: JobKind) -> &'static str {
        match (kind, self) {
            (JobKind::Drill, JobState::Finalizing) => "Removing the test copy",
            (JobKind::Drill, JobState::Succeeded) => "Restore test passed",
            (JobKind::Drill, JobState::Failed) => "Restore test failed",
            (JobKind::Drill, JobState::Failing) => "Failed: removing the test copy",
            _ => self.label(),
        }
    }

    pub fn is_compensating(self) -> bool {
        matches!(
            self,
            JobState::Failing | JobState::Cancelling | JobState::Preempted | JobState::Rewinding
        )
    }

    /// Staff may cancel until the job starts handing the cluster over.
    pub fn may_cancel(self) -> bool {
        matches!(
            self,
            JobState::Queued
                | JobState::Provisioning
                | JobState::RestoringSnapshot
                | JobState::ReplayingLog
                | JobState::Verifying
                | JobState::Paused
                | JobState::Failing
                | JobState::Preempted
                | JobState::Rewinding
        )
    }

    /// The step after this one when it succeeds.
    pub fn next(self) -> Option<JobState> {
        match self {
            JobState::Provisioning => Some(JobState::RestoringSnapshot),
            JobState::RestoringSnapshot => Some(JobState::ReplayingLog),
            JobState::ReplayingLog => Some(JobState::Verifying),
            JobState::Verifying => Some(JobState::Finalizing),
            JobState::Finalizing => Some(JobState::Succeeded),
            _ => None,
        }
    }

    /// The share of the whole restore, in percent, this step covers:
    /// overall progress = start + (end − start) × step progress.
    pub fn progress_span(self) -> (u8, u8) {
        match self {
            JobState::Queued => (0, 0),
            JobState::Provisioning => (0, 10),
            JobState::RestoringSnapshot => (10, 60),
            JobState::ReplayingLog => (60, 85),
            JobState::Verifying => (85, 95),
            JobState::Finalizing => (95, 100),
            JobState::Paused => (95, 95),
            JobState::Succeeded => (100, 100),
            JobState::Failing
            | JobState::Cancelling
            | JobState::Preempted
            | JobState::Rewinding
            | JobState::Failed
            | JobState::Cancelled => (0, 0),
        }
    }

    /// Overall percent for `fraction` (0.0–1.0) of this step done.
    pub fn overall_progress(self, fraction: f64) -> u8 {
        let (start, end) = self.progress_span();
        let fraction = fraction.clamp(0.0, 1.0);
        (f64::from(start) + f64::from(end - start) * fraction).round() as u8
    }
}

/// Why a step did not finish, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFailure {
    /// Stable, machine-readable: a SPEC §4 code or a backend error code.
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCommand {
    /// A worker takes up a queued job.
    Start,
    StepSucceeded,
    StepFailed(StepFailure),
    Cancel,
    /// The half-built cluster is gone.
    CompensationDone,
    /// Staff try a failed restore again.
    Retry,
    /// Checked before it starts, the job cannot run on this host now (no
    /// room on its disk, no slot): it waits, for any host, and says why.
    Wait(StepFailure),
    /// A drill gives its host to a customer's restore.
    Preempt,
    /// The customer takes the paused copy: it is promoted and handed over.
    Accept,
    /// The paused copy replays on to a later moment.
    MoveForward {
        target: DateTime<Utc>,
    },
    /// The paused copy goes; a new restore reaches an earlier moment.
    GoBack {
        target: DateTime<Utc>,
    },
    /// The job's restore host stopped answering (its workers' leases ran
    /// out long ago): another host starts the run over, or finishes
    /// removing what it built.
    Rehost {
        host: String,
    },
}

impl JobCommand {
    pub fn name(&self) -> &'static str {
        match self {
            JobCommand::Start => "start",
            JobCommand::StepSucceeded => "step_succeeded",
            JobCommand::StepFailed(_) => "step_failed",
            JobCommand::Cancel => "cancel",
            JobCommand::CompensationDone => "compensation_done",
            JobCommand::Retry => "retry",
            JobCommand::Wait(_) => "wait",
            JobCommand::Preempt => "preempt",
            JobCommand::Accept => "accept",
            JobCommand::MoveForward { .. } => "move_forward",
            JobCommand::GoBack { .. } => "go_back",
            JobCommand::Rehost { .. } => "rehost",
        }
    }
}

/// Retries: exponential backoff from `base_delay`, capped at `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per build step, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long a job that cannot start on any host yet waits before it
    /// is checked again. Waiting costs no attempt.
    pub wait: Duration,
    /// How long a paused copy waits for the customer's decision.
    pub decision_window: Duration,
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, after `attempt` failed.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        let delay = self.base_delay * 2_i32.pow(doublings);
        delay.min(self.max_delay)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::seconds(2),
            max_delay: Duration::minutes(5),
            wait: Duration::seconds(15),
            decision_window: Duration::hours(24),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFacts {
    pub kind: JobKind,
    /// The copy stops paused at the target for the customer to inspect.
    pub inspect: bool,
    /// The attempt of the current step now ending, starting at 1.
    pub attempt: u32,
    pub now: DateTime<Utc>,
    pub policy: RetryPolicy,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEffect {
    /// A new step begins at its first attempt, now.
    BeginStep,
    /// Run the same step again from `at`, as attempt number `attempt`.
    RetryAt {
        at: DateTime<Utc>,
        attempt: u32,
    },
    RecordFailure(StepFailure),
    /// Staff retry: a fresh run with a fresh target cluster.
    NewRun,
    /// The ticket follows its job.
    Ticket(TicketCommand),
    /// The job gives up its restore host: another may take it.
    LeaveHost,
    /// A drill ended: staff hear of a failure, the cluster's record of
    /// restore tests takes the result.
    DrillEnded {
        passed: bool,
    },
    /// The job restores to this moment from now on.
    Retarget(DateTime<Utc>),
    /// Nobody holds the job while it waits for a person.
    Rest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTransition {
    pub to: JobState,
    pub effects: Vec<JobEffect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JobRefusal {
    #[error("your role may not do this to a restore job")]
    Forbidden,
    #[error("not possible while the restore job is {0}")]
    WrongState(JobState),
}

/// Decides what a command does to a job in `state`.
pub fn transition(
    state: JobState,
    command: &JobCommand,
    actor: &Actor,
    facts: &JobFacts,
) -> Result<JobTransition, JobRefusal> {
    use JobState as S;
    let role = actor.role;
    let system = role == Role::System;
    let staff_or_system = system || role.works_tickets();
    let go = |to: JobState, effects: Vec<JobEffect>| Ok(JobTransition { to, effects });
    let wrong_state = Err(JobRefusal::WrongState(state));
    let allow = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(JobRefusal::Forbidden)
        }
    };

    let drill = facts.kind == JobKind::Drill;
    // A customer's ticket follows its restore; a drill has none.
    let ticket = |command: TicketCommand| {
        if drill {
            vec![]
        } else {
            vec![JobEffect::Ticket(command)]
        }
    };
    match command {
        JobCommand::Start => {
            allow(system)?;
            match state {
                S::Queued => {
                    let mut effects = vec![JobEffect::BeginStep];
                    effects.extend(ticket(TicketCommand::JobStarted));
                    go(S::Provisioning, effects)
                }
                _ => wrong_state,
            }
        }
        JobCommand::StepSucceeded => {
            allow(system)?;
            match state.next() {
                Some(S::Succeeded) => {
                    let mut effects = vec![JobEffect::BeginStep];
                    if drill {
                        effects.push(JobEffect::DrillEnded { passed: true });
                    }
                    effects.extend(ticket(TicketCommand::JobSucceeded));
                    go(S::Succeeded, effects)
                }
                // Inspected before hand-over: the copy waits, paused.
                Some(S::Finalizing) if facts.inspect => go(
                    S::Paused,
                    vec![
                        JobEffect::BeginStep,
                        JobEffect::Rest,
                        JobEffect::Ticket(TicketCommand::JobPaused {
                            decide_by: facts.now + facts.policy.decision_window,
                        }),
                    ],
                ),
                Some(next) => go(next, vec![JobEffect::BeginStep]),
                None => wrong_state,
            }
        }
        JobCommand::StepFailed(failure) => {
            allow(system)?;
            let retry = JobEffect::RetryAt {
                at: facts.now + facts.policy.delay(facts.attempt),
                attempt: facts.attempt + 1,
            };
            let record = JobEffect::RecordFailure(failure.clone());
            if state.is_build_step() {
                if failure.retryable && facts.attempt < facts.policy.max_attempts {
                    go(state, vec![record, retry])
                } else {
                    go(S::Failing, vec![record, JobEffect::BeginStep])
                }
            } else if state.is_compensating() {
                // Removing a half-built cluster must eventually happen: it
                // retries without limit, at the capped delay, watched by the
                // stall watchdog.
                go(state, vec![record, retry])
            } else {
                wrong_state
            }
        }
        JobCommand::Cancel => {
            allow(staff_or_system)?;
            match state {
                S::Queued => go(S::Cancelled, vec![]),
                s if s.may_cancel() => go(S::Cancelling, vec![JobEffect::BeginStep]),
                _ => wrong_state,
            }
        }
        JobCommand::CompensationDone => {
            allow(system)?;
            match state {
                S::Failing => {
                    let reason = facts
                        .last_error
                        .clone()
                        .unwrap_or_else(|| "the restore failed".to_string());
                    let mut effects = Vec::new();
                    if drill {
                        effects.push(JobEffect::DrillEnded { passed: false });
                    }
                    effects.extend(ticket(TicketCommand::JobFailed { reason }));
                    go(S::Failed, effects)
                }
                S::Cancelling => go(S::Cancelled, vec![]),
                // A new restore to the earlier moment, from nothing.
                S::Rewinding => go(
                    S::Queued,
                    vec![
                        JobEffect::NewRun,
                        JobEffect::BeginStep,
                        JobEffect::LeaveHost,
                    ],
                ),
                // The drill starts over, from nothing, when there is room.
                S::Preempted => go(
                    S::Queued,
                    vec![
                        JobEffect::NewRun,
                        JobEffect::BeginStep,
                        JobEffect::LeaveHost,
                    ],
                ),
                _ => wrong_state,
            }
        }
        JobCommand::Retry => {
            allow(staff_or_system)?;
            match state {
                // A failed drill is a finding to keep: a new drill tests again.
                S::Failed if !drill => go(S::Queued, vec![JobEffect::NewRun, JobEffect::BeginStep]),
                _ => wrong_state,
            }
        }
        JobCommand::Wait(failure) => {
            allow(system)?;
            match state {
                S::Queued => go(
                    S::Queued,
                    vec![
                        JobEffect::RecordFailure(failure.clone()),
                        JobEffect::RetryAt {
                            at: facts.now + facts.policy.wait,
                            attempt: facts.attempt,
                        },
                        JobEffect::LeaveHost,
                    ],
                ),
                _ => wrong_state,
            }
        }
        JobCommand::Preempt => {
            allow(system)?;
            match state {
                s if drill && s.is_build_step() && s != S::Finalizing => {
                    go(S::Preempted, vec![JobEffect::BeginStep])
                }
                _ => wrong_state,
            }
        }
        // The customer's decisions reach the job through their ticket,
        // which authorised them: the job sees the system acting for them.
        JobCommand::Accept => {
            allow(system)?;
            match state {
                S::Paused => go(S::Finalizing, vec![JobEffect::BeginStep]),
                _ => wrong_state,
            }
        }
        JobCommand::MoveForward { target } => {
            allow(system)?;
            match state {
                S::Paused => go(
                    S::ReplayingLog,
                    vec![JobEffect::BeginStep, JobEffect::Retarget(*target)],
                ),
                _ => wrong_state,
            }
        }
        JobCommand::GoBack { target } => {
            allow(system)?;
            match state {
                S::Paused => go(
                    S::Rewinding,
                    vec![JobEffect::BeginStep, JobEffect::Retarget(*target)],
                ),
                _ => wrong_state,
            }
        }
        JobCommand::Rehost { host } => {
            allow(system)?;
            let lost = StepFailure {
                code: "host_lost".into(),
                message: format!(
                    "the restore host {host} stopped answering: the restore starts over on another host"
                ),
                retryable: true,
            };
            match state {
                // What was built there is out of reach: a new run, anywhere.
                s if s == S::Queued || s.is_build_step() => go(
                    S::Queued,
                    vec![
                        JobEffect::NewRun,
                        JobEffect::BeginStep,
                        JobEffect::LeaveHost,
                        JobEffect::RecordFailure(lost),
                    ],
                ),
                // Another host finishes the removal (of the record; the lost
                // host removes its files when it is back).
                s if s.is_compensating() => go(state, vec![JobEffect::LeaveHost]),
                _ => wrong_state,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn actor(role: Role) -> Actor {
        match role {
            Role::System => Actor::SYSTEM,
            other => Actor::user(Uuid::from_u128(7).into(), other),
        }
    }

    fn facts(attempt: u32) -> JobFacts {
        JobFacts {
            kind: JobKind::Restore,
            inspect: false,
            attempt,
            now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            policy: RetryPolicy::default(),
            last_error: Some("disk full".into()),
        }
    }

    fn failure(retryable: bool) -> StepFailure {
        StepFailure {
            code: "backend_error".into(),
            message: "boom".into(),
            retryable,
        }
    }

    fn command(name: &str) -> JobCommand {
        match name {
            "start" => JobCommand::Start,
            "step_succeeded" => JobCommand::StepSucceeded,
            "transient_failure" => JobCommand::StepFailed(failure(true)),
            "permanent_failure" => JobCommand::StepFailed(failure(false)),
            "cancel" => JobCommand::Cancel,
            "compensation_done" => JobCommand::CompensationDone,
            "retry" => JobCommand::Retry,
            "wait" => JobCommand::Wait(StepFailure {
                code: "insufficient_disk".into(),
                message: "no room".into(),
                retryable: true,
            }),
            "preempt" => JobCommand::Preempt,
            "accept" => JobCommand::Accept,
            "move_forward" => JobCommand::MoveForward {
                target: facts(1).now,
            },
            "go_back" => JobCommand::GoBack {
                target: facts(1).now,
            },
            "rehost" => JobCommand::Rehost { host: "r1".into() },
            other => panic!("no command {other}"),
        }
    }

    fn outcome(r: &Result<JobTransition, JobRefusal>) -> String {
        match r {
            Ok(t) => t.to.as_str().to_string(),
            Err(JobRefusal::Forbidden) => "forbidden".into(),
            Err(JobRefusal::WrongState(_)) => "wrong_state".into(),
        }
    }

    /// Every command × every state × every role of a customer's restore,
    /// on attempt 1 of 5.
    const TABLE: &str = "
    # command            state               customer   staff        admin        system
    start                queued              forbidden  forbidden    forbidden    provisioning
    start                provisioning        forbidden  forbidden    forbidden    wrong_state
    start                restoring_snapshot  forbidden  forbidden    forbidden    wrong_state
    start                replaying_log       forbidden  forbidden    forbidden    wrong_state
    start                verifying           forbidden  forbidden    forbidden    wrong_state
    start                finalizing          forbidden  forbidden    forbidden    wrong_state
    start                paused              forbidden  forbidden    forbidden    wrong_state
    start                succeeded           forbidden  forbidden    forbidden    wrong_state
    start                failing             forbidden  forbidden    forbidden    wrong_state
    start                cancelling          forbidden  forbidden    forbidden    wrong_state
    start                preempted           forbidden  forbidden    forbidden    wrong_state
    start                rewinding           forbidden  forbidden    forbidden    wrong_state
    start                failed              forbidden  forbidden    forbidden    wrong_state
    start                cancelled           forbidden  forbidden    forbidden    wrong_state
    step_succeeded       queued              forbidden  forbidden    forbidden    wrong_state
    step_succeeded       provisioning        forbidden  forbidden    forbidden    restoring_snapshot
    step_succeeded       restoring_snapshot  forbidden  forbidden    forbidden    replaying_log
    step_succeeded       replaying_log       forbidden  forbidden    forbidden    verifying
    step_succeeded       verifying           forbidden  forbidden    forbidden    finalizing
    step_succeeded       finalizing          forbidden  forbidden    forbidden    succeeded
    step_succeeded       paused              forbidden  forbidden    forbidden    wrong_state
    step_succeeded       succeeded           forbidden  forbidden    forbidden    wrong_state
    step_succeeded       failing             forbidden  forbidden    forbidden    wrong_state
    step_succeeded       cancelling          forbidden  forbidden    forbidden    wrong_state
    step_succeeded       preempted           forbidden  forbidden    forbidden    wrong_state
    step_succeeded       rewinding           forbidden  forbidden    forbidden    wrong_state
    step_succeeded       failed              forbidden  forbidden    forbidden    wrong_state
    step_succeeded       cancelled           forbidden  forbidden    forbidden    wrong_state
    transient_failure    queued              forbidden  forbidden    forbidden    wrong_state
    transient_failure    provisioning        forbidden  forbidden    forbidden    provisioning
    transient_failure    restoring_snapshot  forbidden  forbidden    forbidden    restoring_snapshot
    transient_failure    replaying_log       forbidden  forbidden    forbidden    replaying_log
    transient_failure    verifying           forbidden  forbidden    forbidden    verifying
    transient_failure    finalizing          forbidden  forbidden    forbidden    finalizing
    transient_failure    paused              forbidden  forbidden    forbidden    wrong_state
    transient_failure    succeeded           forbidden  forbidden    forbidden    wrong_state
    transient_failure    failing             forbidden  forbidden    forbidden    failing
    transient_failure    cancelling          forbidden  forbidden    forbidden    cancelling
    transient_failure    preempted           forbidden  forbidden    forbidden    preempted
    transient_failure    rewinding           forbidden  forbidden    forbidden    rewinding
    transient_failure    failed              forbidden  forbidden    forbidden    wrong_state
    transient_failure    cancelled           forbidden  forbidden    forbidden    wrong_state
    permanent_failure    queued              forbidden  forbidden    forbidden    wrong_state
    permanent_failure    provisioning        forbidden  forbidden    forbidden    failing
    permanent_failure    restoring_snapshot  forbidden  forbidden    forbidden    failing
    permanent_failure    replaying_log       forbidden  forbidden    forbidden    failing
    permanent_failure    verifying           forbidden  forbidden    forbidden    failing
    permanent_failure    finalizing          forbidden  forbidden    forbidden    failing
    permanent_failure    paused              forbidden  forbidden    forbidden    wrong_state
    permanent_failure    succeeded           forbidden  forbidden    forbidden    wrong_state
    permanent_failure    failing             forbidden  forbidden    forbidden    failing
    permanent_failure    cancelling          forbidden  forbidden    forbidden    cancelling
    permanent_failure    preempted           forbidden  forbidden    forbidden    preempted
    permanent_failure    rewinding           forbidden  forbidden    forbidden    rewinding
    permanent_failure    failed              forbidden  forbidden    forbidden    wrong_state
    permanent_failure    cancelled           forbidden  forbidden    forbidden    wrong_state
    cancel               queued              forbidden  cancelled    cancelled    cancelled
    cancel               provisioning        forbidden  cancelling   cancelling   cancelling
    cancel               restoring_snapshot  forbidden  cancelling   cancelling   cancelling
    cancel               replaying_log       forbidden  cancelling   cancelling   cancelling
    cancel               verifying           forbidden  cancelling   cancelling   cancelling
    cancel               finalizing          forbidden  wrong_state  wrong_state  wrong_state
    cancel               paused              forbidden  cancelling   cancelling   cancelling
    cancel               succeeded           forbidden  wrong_state  wrong_state  wrong_state
    cancel               failing             forbidden  cancelling   cancelling   cancelling
    cancel               cancelling          forbidden  wrong_state  wrong_state  wrong_state
    cancel               preempted           forbidden  cancelling   cancelling   cancelling
    cancel               rewinding           forbidden  cancelling   cancelling   cancelling
    cancel               failed              forbidden  wrong_state  wrong_state  wrong_state
    cancel               cancelled           forbidden  wrong_state  wrong_state  wrong_state
    compensation_done    queued              forbidden  forbidden    forbidden    wrong_state
    compensation_done    provisioning        forbidden  forbidden    forbidden    wrong_state
    compensation_done    restoring_snapshot  forbidden  forbidden    forbidden    wrong_state
    compensation_done    replaying_log       forbidden  forbidden    forbidden    wrong_state
    compensation_done    verifying           forbidden  forbidden    forbidden    wrong_state
    compensation_done    finalizing          forbidden  forbidden    forbidden    wrong_state
    compensation_done    paused              forbidden  forbidden    forbidden    wrong_state
    compensation_done    succeeded           forbidden  forbidden    forbidden    wrong_state
    compensation_done    failing             forbidden  forbidden    forbidden    failed
    compensation_done    cancelling          forbidden  forbidden    forbidden    cancelled
    compensation_done    preempted           forbidden  forbidden    forbidden    queued
    compensation_done    rewinding           forbidden  forbidden    forbidden    queued
    compensation_done    failed              forbidden  forbidden    forbidden    wrong_state
    compensation_done    cancelled           forbidden  forbidden    forbidden    wrong_state
    retry                queued              forbidden  wrong_state  wrong_state  wrong_state
    retry                provisioning        forbidden  wrong_state  wrong_state  wrong_state
    retry                restoring_snapshot  forbidden  wrong_state  wrong_state  wrong_state
    retry                replaying_log       forbidden  wrong_state  wrong_state  wrong_state
    retry                verifying           forbidden  wrong_state  wrong_state  wrong_state
    retry                finalizing          forbidden  wrong_state  wrong_state  wrong_state
    retry                paused              forbidden  wrong_state  wrong_state  wrong_state
    retry                succeeded           forbidden  wrong_state  wrong_state  wrong_state
    retry                failing             forbidden  wrong_state  wrong_state  wrong_state
    retry                cancelling          forbidden  wrong_state  wrong_state  wrong_state
    retry                preempted           forbidden  wrong_state  wrong_state  wrong_state
    retry                rewinding           forbidden  wrong_state  wrong_state  wrong_state
    retry                failed              forbidden  queued       queued       queued
    retry                cancelled           forbidden  wrong_state  wrong_state  wrong_state
    wait                 queued              forbidden  forbidden    forbidden    queued
    wait                 provisioning        forbidden  forbidden    forbidden    wrong_state
    wait                 restoring_snapshot  forbidden  forbidden    forbidden    wrong_state
    wait                 replaying_log       forbidden  forbidden    forbidden    wrong_state
    wait                 verifying           forbidden  forbidden    forbidden    wrong_state
    wait                 finalizing          forbidden  forbidden    forbidden    wrong_state
    wait                 paused              forbidden  forbidden    forbidden    wrong_state
    wait                 succeeded           forbidden  forbidden    forbidden    wrong_state
    wait                 failing             forbidden  forbidden    forbidden    wrong_state
    wait                 cancelling          forbidden  forbidden    forbidden    wrong_state
    wait                 preempted           forbidden  forbidden    forbidden    wrong_state
    wait                 rewinding           forbidden  forbidden    forbidden    wrong_state
    wait                 failed              forbidden  forbidden    forbidden    wrong_state
    wait                 cancelled           forbidden  forbidden    forbidden    wrong_state
    preempt              queued              forbidden  forbidden    forbidden    wrong_state
    preempt              provisioning        forbidden  forbidden    forbidden    wrong_state
    preempt              restoring_snapshot  forbidden  forbidden    forbidden    wrong_state
    preempt              replaying_log       forbidden  forbidden    forbidden    wrong_state
    preempt              verifying           forbidden  forbidden    forbidden    wrong_state
    preempt              finalizing          forbidden  forbidden    forbidden    wrong_state
    preempt              paused              forbidden  forbidden    forbidden    wrong_state
    preempt              succeeded           forbidden  forbidden    forbidden    wrong_state
    preempt              failing             forbidden  forbidden    forbidden    wrong_state
    preempt              cancelling          forbidden  forbidden    forbidden    wrong_state
    preempt              preempted           forbidden  forbidden    forbidden    wrong_state
    preempt              rewinding           forbidden  forbidden    forbidden    wrong_state
    preempt              failed              forbidden  forbidden    forbidden    wrong_state
    preempt              cancelled           forbidden  forbidden    forbidden    wrong_state
    accept               queued              forbidden  forbidden    forbidden    wrong_state
    accept               provisioning        forbidden  forbidden    forbidden    wrong_state
    accept               restoring_snapshot  forbidden  forbidden    forbidden    wrong_state
    accept               replaying_log       forbidden  forbidden    forbidden    wrong_state
    accept               verifying           forbidden  forbidden    forbidden    wrong_state
    accept               finalizing          forbidden  forbidden    forbidden    wrong_state
    accept               paused              forbidden  forbidden    forbidden    finalizing
    accept               succeeded           forbidden  forbidden    forbidden    wrong_state
    accept               failing             forbidden  forbidden    forbidden    wrong_state
    accept               cancelling          forbidden  forbidden    forbidden    wrong_state
    accept               preempted           forbidden  forbidden    forbidden    wrong_state
    accept               rewinding           forbidden  forbidden    forbidden    wrong_state
    accept               failed              forbidden  forbidden    forbidden    wrong_state
    accept               cancelled           forbidden  forbidden    forbidden    wrong_state
    move_forward         queued              forbidden  forbidden    forbidden    wrong_state
    move_forward         provisioning        forbidden  forbidden    forbidden    wrong_state
    move_forward         restoring_snapshot  forbidden  forbidden    forbidden    wrong_state
    move_forward         replaying_log       forbidden  forbidden    forbidden    wrong_state
    move_forward         verifying           forbidden  forbidden    forbidden    wrong_state
    move_forward         finalizing          forbidden  forbidden    forbidden    wrong_state
    move_forward         paused              forbidden  forbidden    forbidden    replaying_log
    move_forward         succeeded           forbidden  forbidden    forbidden    wrong_state
    move_forward         failing             forbidden  forbidden    forbidden    wrong_state
    move_forward         cancelling          forbidden  forbidden    forbidden    wrong_state
    move_forward         preempted           forbidden  forbidden    forbidden    wrong_state
    move_forward         rewinding           forbidden  forbidden    forbidden    wrong_state
    move_forward         failed              forbidden  forbidden    forbidden    wrong_state
    move_forward         cancelled           forbidden  forbidden    forbidden    wrong_state
    go_back              queued              forbidden  forbidden    forbidden    wrong_state
    go_back              provisioning        forbidden  forbidden    forbidden    wrong_state
    go_back              restoring_snapshot  forbidden  forbidden    forbidden    wrong_state
    go_back              replaying_log       forbidden  forbidden    forbidden    wrong_state
    go_back              verifying           forbidden  forbidden    forbidden    wrong_state
    go_back              finalizing          forbidden  forbidden    forbidden    wrong_state
    go_back              paused              forbidden  forbidden    forbidden    rewinding
    go_back              succeeded           forbidden  forbidden    forbidden    wrong_state
    go_back              failing             forbidden  forbidden    forbidden    wrong_state
    go_back              cancelling          forbidden  forbidden    forbidden    wrong_state
    go_back              preempted           forbidden  forbidden    forbidden    wrong_state
    go_back              rewinding           forbidden  forbidden    forbidden    wrong_state
    go_back              failed              forbidden  forbidden    forbidden    wrong_state
    go_back              cancelled           forbidden  forbidden    forbidden    wrong_state
    rehost               queued              forbidden  forbidden    forbidden    queued
    rehost               provisioning        forbidden  forbidden    forbidden    queued
    rehost               restoring_snapshot  forbidden  forbidden    forbidden    queued
    rehost               replaying_log       forbidden  forbidden    forbidden    queued
    rehost               verifying           forbidden  forbidden    forbidden    queued
    rehost               finalizing          forbidden  forbidden    forbidden    queued
    rehost               paused              forbidden  forbidden    forbidden    wrong_state
    rehost               succeeded           forbidden  forbidden    forbidden    wrong_state
    rehost               failing             forbidden  forbidden    forbidden    failing
    rehost               cancelling          forbidden  forbidden    forbidden    cancelling
    rehost               preempted           forbidden  forbidden    forbidden    preempted
    rehost               rewinding           forbidden  forbidden    forbidden    rewinding
    rehost               failed              forbidden  forbidden    forbidden    wrong_state
    rehost               cancelled           forbidden  forbidden    forbidden    wrong_state
    ";

    /// The same for a drill: no retry of a failed one (a new drill tests
    /// again), and it alone gives way to a customer's restore.
    const DRILL_TABLE: &str = "
    # command            state               customer   staff        admin        system
    start                queued              forbidden  forbidden    forbidden    provisioning
    start                provisioning        forbidden  forbidden    forbidden    wrong_state
    start                restoring_snapshot  forbidden  forbidden    forbidden    wrong_state
    start                replaying_log       forbidden  forbidden    forbidden    wrong_state
    start                verifying           forbidden  forbidden    forbidden    wrong_state
    start                finalizing          forbidden  forbidden    forbidden    wrong_state
    start                paused              forbidden  forbidden    forbidden    wrong_state
    start                succeeded           forbidden  forbidden    forbidden    wrong_state
    start                failing             forbidden  forbidden    forbidden    wrong_state
    start                cancelling          forbidden  forbidden    forbidden    wrong_state
    start                preempted           forbidden  forbidden    forbidden    wrong_state
    start                rewinding           forbidden  forbidden    forbidden    wrong_state
    start                failed              forbidden  forbidden    forbidden    wrong_state
    start                cancelled           forbidden  forbidden    forbidden    wrong_state
    step_succeeded       queued              forbidden  forbidden    forbidden    wrong_state
    step_succeeded       provisioning        forbidden  forbidden    forbidden    restoring_snapshot
    step_succeeded       restoring_snapshot  forbidden  forbidden    forbidden    replaying_log
    step_succeeded       replaying_log       forbidden  forbidden    forbidden    verifying
    step_succeeded       verifying           forbidden  forbidden    forbidden    finalizing
    step_succeeded       finalizing          forbidden  forbidden    forbidden    succeeded
    step_succeeded       paused              forbidden  forbidden    forbidden    wrong_state
    step_succeeded       succeeded           forbidden  forbidden    forbidden    wrong_state
    step_succeeded       failing             forbidden  forbidden    forbidden    wrong_state
    step_succeeded       cancelling          forbidden  forbidden    forbidden    wrong_state
    step_succeeded       preempted           forbidden  forbidden    forbidden    wrong_state
    step_succeeded       rewinding           forbidden  forbidden    forbidden    wrong_state
    step_succeeded       failed              forbidden  forbidden    forbidden    wrong_state
    step_succeeded       cancelled           forbidden  forbidden    forbidden    wrong_state
    transient_failure    queued              forbidden  forbidden    forbidden    wrong_state
    transient_failure    provisioning        forbidden  forbidden    forbidden    provisioning
    transient_failure    restoring_snapshot  forbidden  forbidden    forbidden    restoring_snapshot
    transient_failure    replaying_log       forbidden  forbidden    forbidden    replaying_log
    transient_failure    verifying           forbidden  forbidden    forbidden    verifying
    transient_failure    finalizing          forbidden  forbidden    forbidden    finalizing
    transient_failure    paused              forbidden  forbidden    forbidden    wrong_state
    transient_failure    succeeded           forbidden  forbidden    forbidden    wrong_state
    transient_failure    failing             forbidden  forbidden    forbidden    failing
    transient_failure    cancelling          forbidden  forbidden    forbidden    cancelling
    transient_failure    preempted           forbidden  forbidden    forbidden    preempted
    transient_failure    rewinding           forbidden  forbidden    forbidden    rewinding
    transient_failure    failed              forbidden  forbidden    forbidden    wrong_state
    transient_failure    cancelled           forbidden  forbidden    forbidden    wrong_state
    permanent_failure    queued              forbidden  forbidden    forbidden    wrong_state
    permanent_failure    provisioning        forbidden  forbidden    forbidden    failing
    permanent_failure    restoring_snapshot  forbidden  forbidden    forbidden    failing
    permanent_failure    replaying_log       forbidden  forbidden    forbidden    failing
    permanent_failure    verifying           forbidden  forbidden    forbidden    failing
    permanent_failure    finalizing          forbidden  forbidden    forbidden    failing
    permanent_failure    paused              forbidden  forbidden    forbidden    wrong_state
    permanent_failure    succeeded           forbidden  forbidden    forbidden    wrong_state
    permanent_failure    failing             forbidden  forbidden    forbidden    failing
    permanent_failure    cancelling          forbidden  forbidden    forbidden    cancelling
    permanent_failure    preempted           forbidden  forbidden    forbidden    preempted
    permanent_failure    rewinding           forbidden  forbidden    forbidden    rewinding
    permanent_failure    failed              forbidden  forbidden    forbidden    wrong_state
    permanent_failure    cancelled           forbidden  forbidden    forbidden    wrong_state
    cancel               queued              forbidden  cancelled    cancelled    cancelled
    cancel               provisioning        forbidden  cancelling   cancelling   cancelling
    cancel               restoring_snapshot  forbidden  cancelling   cancelling   cancelling
    cancel               replaying_log       forbidden  cancelling   cancelling   cancelling
    cancel               verifying           forbidden  cancelling   cancelling   cancelling
    cancel               finalizing          forbidden  wrong_state  wrong_state  wrong_state
    cancel               paused              forbidden  cancelling   cancelling   cancelling
    cancel               succeeded           forbidden  wrong_state  wrong_state  wrong_state
    cancel               failing             forbidden  cancelling   cancelling   cancelling
    cancel               cancelling          forbidden  wrong_state  wrong_state  wrong_state
    cancel               preempted           forbidden  cancelling   cancelling   cancelling
    cancel               rewinding           forbidden  cancelling   cancelling   cancelling
    cancel               failed              forbidden  wrong_state  wrong_state  wrong_state
    cancel               cancelled           forbidden  wrong_state  wrong_state  wrong_state
    compensation_done    queued              forbidden  forbidden    forbidden    wrong_state
    compensation_done    provisioning        forbidden  forbidden    forbidden    wrong_state
    compensation_done    restoring_snapshot  forbidden  forbidden    forbidden    wrong_state
    compensation_done    replaying_log       forbidden  forbidden    forbidden    wrong_state
    compensation_done    verifying           forbidden  forbidden    forbidden    wrong_state
    compensation_done    finalizing          forbidden  forbidden    forbidden    wrong_state
    compensation_done    paused              forbidden  forbidden    forbidden    wrong_state
    compensation_done    succeeded           forbidden  forbidden    forbidden    wrong_state
    compensation_done    failing             forbidden  forbidden    forbidden    failed
    compensation_done    cancelling          forbidden  forbidden    forbidden    cancelled
    compensation_done    preempted           forbidden  forbidden    forbidden    queued
    compensation_done    rewinding           forbidden  forbidden    forbidden    queued
    compensation_done    failed              forbidden  forbidden    forbidden    wrong_state
    compensation_done    cancelled           forbidden  forbidden    forbidden    wrong_state
    retry                queued              forbidden  wrong_state  wrong_state  wrong_state
    retry                provisioning        forbidden  wrong_state  wrong_state  wrong_state
    retry                restoring_snapshot  forbidden  wrong_state  wrong_state  wrong_state
    retry                replaying_log       forbidden  wrong_state  wrong_state  wrong_state
    retry                verifying           forbidden  wrong_state  wrong_state  wrong_state
    retry                finalizing          forbidden  wrong_state  wrong_state  wrong_state
    retry                paused              forbidden  wrong_state  wrong_state  wrong_state
    retry                succeeded           forbidden  wrong_state  wrong_state  wrong_state
    retry                failing             forbidden  wrong_state  wrong_state  wrong_state
    retry                cancelling          forbidden  wrong_state  wrong_state  wrong_state
    retry                preempted           forbidden  wrong_state  wrong_state  wrong_state
    retry                rewinding           forbidden  wrong_state  wrong_state  wrong_state
    retry                failed              forbidden  wrong_state  wrong_state  wrong_state
    retry                cancelled           forbidden  wrong_state  wrong_state  wrong_state
    wait                 queued              forbidden  forbidden    forbidden    queued
    wait                 provisioning        forbidden  forbidden    forbidden    wrong_state
    wait                 restoring_snapshot  forbidden  forbidden    forbidden    wrong_state
    wait                 replaying_log       forbidden  forbidden    forbidden    wrong_state
    wait                 verifying           forbidden  forbidden    forbidden    wrong_state
    wait                 finalizing          forbidden  forbidden    forbidden    wrong_state
    wait                 paused              forbidden  forbidden    forbidden    wrong_state
    wait                 succeeded           forbidden  forbidden    forbidden    wrong_state
    wait                 failing             forbidden  forbidden    forbidden    wrong_state
    wait                 cancelling          forbidden  forbidden    forbidden    wrong_state
    wait                 preempted           forbidden  forbidden    forbidden    wrong_state
    wait                 rewinding           forbidden  forbidden    forbidden    wrong_state
    wait                 failed              forbidden  forbidden    forbidden    wrong_state
    wait                 cancelled           forbidden  forbidden    forbidden    wrong_state
    preempt              queued              forbidden  forbidden    forbidden    wrong_state
    preempt              provisioning        forbidden  forbidden    forbidden    preempted
    preempt              restoring_snapshot  forbidden  forbidden    forbidden    preempted
    preempt              replaying_log       forbidden  forbidden    forbidden    preempted
    preempt              verifying           forbidden  forbidden    forbidden    preempted
    preempt              finalizing          forbidden  forbidden    forbidden    wrong_state
    preempt              paused              forbidden  forbidden    forbidden    wrong_state
    preempt              succeeded           forbidden  forbidden    forbidden    wrong_state
    preempt              failing             forbidden  forbidden    forbidden    wrong_state
    preempt              cancelling          forbidden  forbidden    forbidden    wrong_state
    preempt              preempted           forbidden  forbidden    forbidden    wrong_state
    preempt              rewinding           forbidden  forbidden    forbidden    wrong_state
    preempt              failed              forbidden  forbidden    forbidden    wrong_state
    preempt              cancelled           forbidden  forbidden    forbidden    wrong_state
    accept               queued              forbidden  forbidden    forbidden    wrong_state
    accept               provisioning        forbidden  forbidden    forbidden    wrong_state
    accept               restoring_snapshot  forbidden  forbidden    forbidden    wrong_state
    accept               replaying_log       forbidden  forbidden    forbidden    wrong_state
    accept               verifying           forbidden  forbidden    forbidden    wrong_state
    accept               finalizing          forbidden  forbidden    forbidden    wrong_state
    accept               paused              forbidden  forbidden    forbidden    finalizing
    accept               succeeded           forbidden  forbidden    forbidden    wrong_state
    accept               failing             forbidden  forbidden    forbidden    wrong_state
    accept               cancelling          forbidden  forbidden    forbidden    wrong_state
    accept               preempted           forbidden  forbidden    forbidden    wrong_state
    accept               rewinding           forbidden  forbidden    forbidden    wrong_state
    accept               failed              forbidden  forbidden    forbidden    wrong_state
    accept               cancelled           forbidden  forbidden    forbidden    wrong_state
    move_forward         queued              forbidden  forbidden    forbidden    wrong_state
    move_forward         provisioning        forbidden  forbidden    forbidden    wrong_state
    move_forward         restoring_snapshot  forbidden  forbidden    forbidden    wrong_state
    move_forward         replaying_log       forbidden  forbidden    forbidden    wrong_state
    move_forward         verifying           forbidden  forbidden    forbidden    wrong_state
    move_forward         finalizing          forbidden  forbidden    forbidden    wrong_state
    move_forward         paused              forbidden  forbidden    forbidden    replaying_log
    move_forward         succeeded           forbidden  forbidden    forbidden    wrong_state
    move_forward         failing             forbidden  forbidden    forbidden    wrong_state
    move_forward         cancelling          forbidden  forbidden    forbidden    wrong_state
    move_forward         preempted           forbidden  forbidden    forbidden    wrong_state
    move_forward         rewinding           forbidden  forbidden    forbidden    wrong_state
    move_forward         failed              forbidden  forbidden    forbidden    wrong_state
    move_forward         cancelled           forbidden  forbidden    forbidden    wrong_state
    go_back              queued              forbidden  forbidden    forbidden    wrong_state
    go_back              provisioning        forbidden  forbidden    forbidden    wrong_state
    go_back              restoring_snapshot  forbidden  forbidden    forbidden    wrong_state
    go_back              replaying_log       forbidden  forbidden    forbidden    wrong_state
    go_back              verifying           forbidden  forbidden    forbidden    wrong_state
    go_back              finalizing          forbidden  forbidden    forbidden    wrong_state
    go_back              paused              forbidden  forbidden    forbidden    rewinding
    go_back              succeeded           forbidden  forbidden    forbidden    wrong_state
    go_back              failing             forbidden  forbidden    forbidden    wrong_state
    go_back              cancelling          forbidden  forbidden    forbidden    wrong_state
    go_back              preempted           forbidden  forbidden    forbidden    wrong_state
    go_back              rewinding           forbidden  forbidden    forbidden    wrong_state
    go_back              failed              forbidden  forbidden    forbidden    wrong_state
    go_back              cancelled           forbidden  forbidden    forbidden    wrong_state
    rehost               queued              forbidden  forbidden    forbidden    queued
    rehost               provisioning        forbidden  forbidden    forbidden    queued
    rehost               restoring_snapshot  forbidden  forbidden    forbidden    queued
    rehost               replaying_log       forbidden  forbidden    forbidden    queued
    rehost               verifying           forbidden  forbidden    forbidden    queued
    rehost               finalizing          forbidden  forbidden    forbidden    queued
    rehost               paused              forbidden  forbidden    forbidden    wrong_state
    rehost               succeeded           forbidden  forbidden    forbidden    wrong_state
    rehost               failing             forbidden  forbidden    forbidden    failing
    rehost               cancelling          forbidden  forbidden    forbidden    cancelling
    rehost               preempted           forbidden  forbidden    forbidden    preempted
    rehost               rewinding           forbidden  forbidden    forbidden    rewinding
    rehost               failed              forbidden  forbidden    forbidden    wrong_state
    rehost               cancelled           forbidden  forbidden    forbidden    wrong_state
    ";

    #[test]
    fn every_state_command_and_role() {
        for (kind, table) in [(JobKind::Restore, TABLE), (JobKind::Drill, DRILL_TABLE)] {
            let mut seen = std::collections::HashSet::new();
            let mut failures = Vec::new();
            for line in table.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let cols: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(cols.len(), 6, "malformed row: {line}");
                let state: JobState = cols[1].parse().unwrap();
                let cmd = command(cols[0]);
                let facts = JobFacts { kind, ..facts(1) };
                for (role, expected) in Role::ALL.into_iter().zip(&cols[2..]) {
                    seen.insert((cols[0].to_string(), state, role));
                    let got = outcome(&transition(state, &cmd, &actor(role), &facts));
                    if got != *expected {
                        failures.push(format!(
                            "{kind} {line}\n    {role}: expected {expected}, got {got}"
                        ));
                    }
                }
            }
            assert!(failures.is_empty(), "{}", failures.join("\n"));
            assert_eq!(seen.len(), 13 * JobState::ALL.len() * Role::ALL.len());
        }
    }

    #[test]
    fn only_a_restore_moves_its_ticket_and_only_a_drill_reports_its_end() {
        let run = |kind, state, command: JobCommand| {
            transition(
                state,
                &command,
                &Actor::SYSTEM,
                &JobFacts { kind, ..facts(1) },
            )
            .unwrap()
            .effects
        };
        let tickets = |effects: &[JobEffect]| {
            effects
                .iter()
                .filter(|e| matches!(e, JobEffect::Ticket(_)))
                .count()
        };
        for (state, command) in [
            (JobState::Queued, JobCommand::Start),
            (JobState::Finalizing, JobCommand::StepSucceeded),
            (JobState::Failing, JobCommand::CompensationDone),
        ] {
            assert_eq!(tickets(&run(JobKind::Restore, state, command.clone())), 1);
            assert_eq!(tickets(&run(JobKind::Drill, state, command)), 0);
        }
        assert!(
            run(
                JobKind::Drill,
                JobState::Finalizing,
                JobCommand::StepSucceeded
            )
            .contains(&JobEffect::DrillEnded { passed: true })
        );
        assert!(
            run(
                JobKind::Drill,
                JobState::Failing,
                JobCommand::CompensationDone
            )
            .contains(&JobEffect::DrillEnded { passed: false })
        );
        assert!(
            !run(
                JobKind::Restore,
                JobState::Failing,
                JobCommand::CompensationDone
            )
            .iter()
            .any(|e| matches!(e, JobEffect::DrillEnded { .. }))
        );
        // A preempted drill starts over from nothing, on whichever host has room.
        assert_eq!(
            run(
                JobKind::Drill,
                JobState::Preempted,
                JobCommand::CompensationDone
            ),
            vec![
                JobEffect::NewRun,
                JobEffect::BeginStep,
                JobEffect::LeaveHost
            ]
        );
        // Waiting keeps the attempt: it is no failure of the job's.
        let waited = run(JobKind::Restore, JobState::Queued, command("wait"));
        assert!(waited.contains(&JobEffect::RetryAt {
            at: facts(1).now + RetryPolicy::default().wait,
            attempt: 1
        }));
        assert!(waited.contains(&JobEffect::LeaveHost));
    }

    #[test]
    fn an_inspected_restore_pauses_after_verifying_and_waits_for_its_customer() {
        let inspected = JobFacts {
            inspect: true,
            ..facts(1)
        };
        let t = transition(
            JobState::Verifying,
            &JobCommand::StepSucceeded,
            &Actor::SYSTEM,
            &inspected,
        )
        .unwrap();
        assert_eq!(t.to, JobState::Paused);
        assert!(t.effects.contains(&JobEffect::Rest), "nobody holds it");
        assert!(
            t.effects
                .contains(&JobEffect::Ticket(TicketCommand::JobPaused {
                    decide_by: inspected.now + RetryPolicy::default().decision_window
                }))
        );
        // Without inspection the copy is handed over straight away.
        let t = transition(
            JobState::Verifying,
            &JobCommand::StepSucceeded,
            &Actor::SYSTEM,
            &facts(1),
        )
        .unwrap();
        assert_eq!(t.to, JobState::Finalizing);
        // Moving on or back takes the new moment along.
        let later = facts(1).now + Duration::hours(1);
        let t = transition(
            JobState::Paused,
            &JobCommand::MoveForward { target: later },
            &Actor::SYSTEM,
            &inspected,
        )
        .unwrap();
        assert_eq!(t.to, JobState::ReplayingLog);
        assert!(t.effects.contains(&JobEffect::Retarget(later)));
        // A paused copy runs no step, so it cannot fail one.
        assert!(
            transition(
                JobState::Paused,
                &command("transient_failure"),
                &Actor::SYSTEM,
                &inspected
            )
            .is_err()
        );
    }

    #[test]
    fn transient_failures_back_off_then_give_up() {
        let policy = RetryPolicy::default();
        let mut delays = Vec::new();
        for attempt in 1..policy.max_attempts {
            let t = transition(
                JobState::ReplayingLog,
                &command("transient_failure"),
                &Actor::SYSTEM,
                &facts(attempt),
            )
            .unwrap();
            assert_eq!(t.to, JobState::ReplayingLog);
            let Some(JobEffect::RetryAt { at, attempt: next }) = t.effects.last().cloned() else {
                panic!("no retry: {t:?}");
            };
            assert_eq!(next, attempt + 1);
            delays.push((at - facts(attempt).now).num_seconds());
        }
        assert_eq!(delays, vec![2, 4, 8, 16]);
        let last = transition(
            JobState::ReplayingLog,
            &command("transient_failure"),
            &Actor::SYSTEM,
            &facts(policy.max_attempts),
        )
        .unwrap();
        assert_eq!(last.to, JobState::Failing);
    }

    #[test]
    fn backoff_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(40), policy.max_delay);
    }

    #[test]
    fn failed_job_tells_the_ticket_why() {
        let t = transition(
            JobState::Failing,
            &JobCommand::CompensationDone,
            &Actor::SYSTEM,
            &facts(1),
        )
        .unwrap();
        assert_eq!(
            t.effects,
            vec![JobEffect::Ticket(TicketCommand::JobFailed {
                reason: "disk full".into()
            })]
        );
    }

    #[test]
    fn progress_is_monotonic_across_steps() {
        let mut last = 0;
        for step in JobState::STEPS {
            for i in 0..=10 {
                let p = step.overall_progress(f64::from(i) / 10.0);
                assert!(p >= last, "{step} {i}: {p} < {last}");
                last = p;
            }
        }
        assert_eq!(last, 100);
    }
}
