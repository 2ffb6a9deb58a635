//! A restore job as stored, and what each transition writes to it. The
//! lifecycle decides the next state; `apply` decides every field that
//! changes with it, so the store only writes what it is given, guarded by a
//! compare-and-set on the state and the lease or run the decision was made on.

use crate::domain::ids::{ClusterId, JobId, TicketId};
use chrono::{DateTime, Utc};

use super::{JobEffect, JobKind, JobState, JobTransition};
use crate::domain::catalog::{RestorePlan, Zone};
use crate::domain::eta::Work;
use crate::domain::ticket::TicketCommand;
use crate::domain::verification::VerificationReport;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreJob {
    pub id: JobId,
    pub kind: JobKind,
    /// The ticket a customer's restore follows; a drill has none.
    pub ticket_id: Option<TicketId>,
    pub source_cluster_id: ClusterId,
    pub target_time: DateTime<Utc>,
    pub state: JobState,
    pub run: i64,
    pub attempt: i64,
    pub run_after: DateTime<Utc>,
    pub new_cluster_id: ClusterId,
    pub snapshot_id: Option<String>,
    pub snapshot_finished_at: Option<DateTime<Utc>>,
    pub zone: Option<Zone>,
    pub progress: i64,
    pub step_detail: String,
    pub lease_owner: Option<String>,
    pub lease_token: i64,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub last_error_code: Option<String>,
    pub last_error: Option<String>,
    pub step_started_at: DateTime<Utc>,
    pub progress_at: DateTime<Utc>,
    pub stalled_since: Option<DateTime<Utc>>,
    pub reached_point: Option<DateTime<Utc>>,
    /// While the log is replayed: the commit time reached so far.
    pub replayed_to: Option<DateTime<Utc>>,
    pub verification_report: Option<VerificationReport>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The restore host running this run, once a worker took it up.
    pub host: Option<String>,
    /// A drill restores from this zone only.
    pub drill_zone: Option<Zone>,
    /// What this run copies and replays, once known.
    pub work: Option<Work>,
    /// The step a failure that ended the run happened in.
    pub failed_step: Option<JobState>,
}

impl RestoreJob {
    pub fn is_drill(&self) -> bool {
        self.kind == JobKind::Drill
    }

    /// Where this run restores from, once the snapshot restore has chosen.
    pub fn plan(&self) -> Option<RestorePlan> {
        Some(RestorePlan {
            snapshot_id: self.snapshot_id.clone()?,
            snapshot_finished_at: self.snapshot_finished_at?,
            zone: self.zone?,
        })
    }

    /// The fence a worker holding this claim writes with.
    pub fn fence(&self, now: DateTime<Utc>) -> Fence {
        Fence {
            job_id: self.id,
            token: self.lease_token,
            owner: self.lease_owner.clone().unwrap_or_default(),
            now,
        }
    }
}

/// A worker's proof that it still holds a job: the token of its claim, and
/// the time it writes at (the lease must not have expired by then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub job_id: JobId,
    pub token: i64,
    pub owner: String,
    pub now: DateTime<Utc>,
}

/// What guards a job change, besides the state it was decided in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobGuard {
    /// A worker's write: it must hold the lease, unexpired.
    Lease(Fence),
    /// A person's command (cancel, retry): the job must still be in the run
    /// the person saw.
    State { run: i64 },
}

/// What a finished step learned, stored with its state change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOutputs {
    pub snapshot: Option<RestorePlan>,
    pub reached_point: Option<DateTime<Utc>>,
    pub verification_report: Option<VerificationReport>,
    pub progress: Option<i64>,
    pub step_detail: Option<String>,
    /// What the run copies and replays, learned before it starts.
    pub work: Option<Work>,
}

/// The fields one change writes. `None` leaves a field as it is; an inner
/// `None` clears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPatch {
    pub state: JobState,
    pub at: DateTime<Utc>,
    pub run: Option<i64>,
    pub attempt: Option<i64>,
    pub run_after: Option<DateTime<Utc>>,
    pub new_cluster_id: Option<ClusterId>,
    pub plan: Option<Option<RestorePlan>>,
    pub progress: Option<i64>,
    pub step_detail: Option<String>,
    /// A new step's clock: `step_started_at` and `progress_at` at this
    /// moment, and no stall.
    pub step_clock: Option<DateTime<Utc>>,
    /// `(code, message)` of the latest failure.
    pub error: Option<Option<(String, String)>>,
    pub reached_point: Option<Option<DateTime<Utc>>>,
    pub verification_report: Option<Option<VerificationReport>>,
    pub finished_at: Option<Option<DateTime<Utc>>>,
    /// Nobody holds the job after this change.
    pub release_lease: bool,
    /// No restore host holds the job after this change.
    pub leave_host: bool,
    pub work: Option<Option<Work>>,
    pub failed_step: Option<Option<JobState>>,
    /// A new moment to restore to (the customer moved forward or back).
    pub target_time: Option<DateTime<Utc>>,
}

impl JobPatch {
    /// A change of state alone, at `at`.
    pub fn to(state: JobState, at: DateTime<Utc>) -> JobPatch {
        JobPatch {
            state,
            at,
            run: None,
            attempt: None,
            run_after: None,
            new_cluster_id: None,
            plan: None,
            progress: None,
            step_detail: None,
            step_clock: None,
            error: None,
            reached_point: None,
            verification_report: None,
            finished_at: None,
            release_lease: false,
            leave_host: false,
            work: None,
            failed_step: None,
            target_time: None,
        }
    }

    /// The job as it is once this patch is written.
    pub fn applied_to(&self, job: &RestoreJob) -> RestoreJob {
        let mut after = job.clone();
        after.state = self.state;
        after.updated_at = self.at;
        if let Some(run) = self.run {
            after.run = run;
        }
        if let Some(attempt) = self.attempt {
            after.attempt = attempt;
        }
        if let Some(run_after) = self.run_after {
            after.run_after = run_after;
        }
        if let Some(id) = self.new_cluster_id {
            after.new_cluster_id = id;
        }
        if let Some(plan) = &self.plan {
            after.snapshot_id = plan.as_ref().map(|p| p.snapshot_id.clone());
            after.snapshot_finished_at = plan.as_ref().map(|p| p.snapshot_finished_at);
            after.zone = plan.as_ref().map(|p| p.zone);
        }
        if let Some(progress) = self.progress {
            after.progress = progress;
        }
        if let Some(detail) = &self.step_detail {
            after.step_detail = detail.clone();
        }
        if let Some(at) = self.step_clock {
            after.step_started_at = at;
            after.progress_at = at;
            after.stalled_since = None;
        }
        if let Some(error) = &self.error {
            after.last_error_code = error.as_ref().map(|(code, _)| code.clone());
            after.last_error = error.as_ref().map(|(_, message)| message.clone());
        }
        if let Some(point) = self.reached_point {
            after.reached_point = point;
        }
        if let Some(report) = &self.verification_report {
            after.verification_report = report.clone();
        }
        if let Some(finished) = self.finished_at {
            after.finished_at = finished;
        }
        if self.release_lease {
            after.lease_owner = None;
            after.lease_expires_at = None;
        }
        if self.leave_host {
            after.host = None;
        }
        if let Some(work) = self.work {
            after.work = work;
        }
        if let Some(step) = self.failed_step {
            after.failed_step = step;
        }
        if let Some(target) = self.target_time {
            after.target_time = target;
        }
        after
    }
}

/// One job state change, ready to commit: what to write, and what must
/// still hold for the write to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobChange {
    pub job_id: JobId,
    pub guard: JobGuard,
    pub from: JobState,
    pub patch: JobPatch,
}

/// What the change needs that the transition does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyContext {
    pub at: DateTime<Utc>,
    /// The new cluster of a fresh run, when staff retry.
    pub fresh_cluster_id: ClusterId,
}

/// Writes a transition into the job's fields: the change to commit, and
/// the commands its ticket must follow with.
pub fn apply(
    job: &RestoreJob,
    transition: &JobTransition,
    guard: JobGuard,
    outputs: JobOutputs,
    context: ApplyContext,
) -> (JobChange, Vec<TicketCommand>) {
    let to = transition.to;
    let at = context.at;
    let mut patch = JobPatch::to(to, at);
    let mut follow_ups = Vec::new();
    for effect in &transition.effects {
        match effect {
            JobEffect::NewRun => {
                patch.run = Some(job.run + 1);
                patch.new_cluster_id = Some(context.fresh_cluster_id);
                patch.plan = Some(None);
                patch.reached_point = Some(None);
                patch.verification_report = Some(None);
                patch.error = Some(None);
                patch.finished_at = Some(None);
                patch.leave_host = true;
                patch.work = Some(None);
                patch.failed_step = Some(None);
            }
            JobEffect::BeginStep => {
                patch.attempt = Some(1);
                patch.run_after = Some(at);
                patch.step_clock = Some(at);
                patch.step_detail = Some(String::new());
                if to.is_build_step()
                    || matches!(
                        to,
                        JobState::Succeeded | JobState::Queued | JobState::Paused
                    )
                {
                    patch.progress = Some(i64::from(to.progress_span().0));
                }
            }
            JobEffect::RetryAt { at: when, attempt } => {
                patch.run_after = Some(*when);
                patch.attempt = Some(i64::from(*attempt));
                // Nobody should hold a job while it waits out its backoff.
                patch.release_lease = true;
            }
            JobEffect::RecordFailure(failure) => {
                patch.error = Some(Some((failure.code.clone(), failure.message.clone())));
            }
            JobEffect::Ticket(command) => follow_ups.push(command.clone()),
            JobEffect::LeaveHost => {
                // Whoever claims it next decides where it runs.
                patch.leave_host = true;
                patch.release_lease = true;
            }
            // Told by the worker beside the change; nothing of the job's.
            JobEffect::DrillEnded { .. } => {}
            JobEffect::Retarget(target) => patch.target_time = Some(*target),
            // Waiting for a person: nobody holds the job meanwhile.
            JobEffect::Rest => patch.release_lease = true,
        }
    }
    // A run that fails for good remembers where.
    if to == JobState::Failing && job.state.is_build_step() {
        patch.failed_step = Some(Some(job.state));
    }
    if let Some(work) = outputs.work {
        patch.work = Some(Some(work));
    }
    if let Some(plan) = outputs.snapshot {
        patch.plan = Some(Some(plan));
    }
    if let Some(point) = outputs.reached_point {
        patch.reached_point = Some(Some(point));
    }
    if let Some(report) = outputs.verification_report {
        patch.verification_report = Some(Some(report));
    }
    if let Some(progress) = outputs.progress {
        patch.progress = Some(progress.clamp(0, 100));
    }
    if let Some(detail) = outputs.step_detail {
        patch.step_detail = Some(detail);
    }
    if to.is_terminal() {
        patch.finished_at = Some(Some(at));
        patch.release_lease = true;
    }
    let change = JobChange {
        job_id: job.id,
        guard,
        from: job.state,
        patch,
    };
    (change, follow_ups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::{Actor, Role};
    use crate::domain::restore_job::{JobCommand, JobFacts, RetryPolicy, StepFailure, transition};
    use chrono::TimeZone;
    use uuid::Uuid;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn job(state: JobState) -> RestoreJob {
        let t = now() - chrono::Duration::hours(1);
        RestoreJob {
            id: Uuid::from_u128(1).into(),
            kind: JobKind::Restore,
            ticket_id: Some(Uuid::from_u128(2).into()),
            source_cluster_id: Uuid::from_u128(3).into(),
            target_time: t,
            state,
            run: 1,
            attempt: 2,
            run_after: t,
            new_cluster_id: Uuid::from_u128(4).into(),
            snapshot_id: None,
            snapshot_finished_at: None,
            zone: None,
            progress: 42,
            step_detail: "copying".into(),
            lease_owner: Some("w".into()),
            lease_token: 7,
            lease_expires_at: Some(now()),
            last_error_code: None,
            last_error: None,
            step_started_at: t,
            progress_at: t,
            stalled_since: None,
            reached_point: None,
            replayed_to: None,
            verification_report: None,
            created_at: t,
            updated_at: t,
            finished_at: None,
            host: Some("local".into()),
            drill_zone: None,
            work: None,
            failed_step: None,
        }
    }

    /// The fields a patch writes, in a fixed order, `now` as `now`.
    fn describe(patch: &JobPatch) -> String {
        let when = |t: DateTime<Utc>| {
            if t == now() {
                "now".to_string()
            } else {
                format!("now+{}s", (t - now()).num_seconds())
            }
        };
        let mut out = vec![format!("to={}", patch.state)];
        if let Some(run) = patch.run {
            out.push(format!("run={run}"));
        }
        if let Some(attempt) = patch.attempt {
            out.push(format!("attempt={attempt}"));
        }
        if let Some(t) = patch.run_after {
            out.push(format!("run_after={}", when(t)));
        }
        if patch.new_cluster_id.is_some() {
            out.push("fresh_cluster".into());
        }
        if let Some(plan) = &patch.plan {
            out.push(
                if plan.is_some() {
                    "plan=set"
                } else {
                    "plan=cleared"
                }
                .into(),
            );
        }
        if let Some(progress) = patch.progress {
            out.push(format!("progress={progress}"));
        }
        if let Some(detail) = &patch.step_detail {
            out.push(format!("detail={detail:?}"));
        }
        if patch.step_clock.is_some() {
            out.push("step_clock".into());
        }
        if let Some(error) = &patch.error {
            out.push(match error {
                Some((code, _)) => format!("error={code}"),
                None => "error=cleared".into(),
            });
        }
        if patch.reached_point.is_some() {
            out.push("reached=cleared".into());
        }
        if patch.verification_report.is_some() {
            out.push("report=cleared".into());
        }
        if let Some(finished) = patch.finished_at {
            out.push(
                if finished.is_some() {
                    "finished"
                } else {
                    "unfinished"
                }
                .into(),
            );
        }
        if patch.release_lease {
            out.push("released".into());
        }
        if patch.leave_host {
            out.push("left_host".into());
        }
        if let Some(work) = patch.work {
            out.push(
                if work.is_some() {
                    "work=set"
                } else {
                    "work=cleared"
                }
                .into(),
            );
        }
        if let Some(step) = patch.failed_step {
            out.push(match step {
                Some(step) => format!("failed_in={step}"),
                None => "failed_in=cleared".into(),
            });
        }
        if let Some(t) = patch.target_time {
            out.push(format!("target={}", when(t)));
        }
        out.join(" ")
    }

    fn command(name: &str) -> (JobCommand, Actor) {
        let failure = |retryable| StepFailure {
            code: "boom".into(),
            message: "it broke".into(),
            retryable,
        };
        let staff = Actor::user(Uuid::from_u128(9).into(), Role::Staff);
        match name {
            "start" => (JobCommand::Start, Actor::SYSTEM),
            "step_succeeded" => (JobCommand::StepSucceeded, Actor::SYSTEM),
            "transient_failure" => (JobCommand::StepFailed(failure(true)), Actor::SYSTEM),
            "permanent_failure" => (JobCommand::StepFailed(failure(false)), Actor::SYSTEM),
            "cancel" => (JobCommand::Cancel, staff),
            "compensation_done" => (JobCommand::CompensationDone, Actor::SYSTEM),
            "retry" => (JobCommand::Retry, staff),
            "wait" => (JobCommand::Wait(failure(true)), Actor::SYSTEM),
            "preempt" => (JobCommand::Preempt, Actor::SYSTEM),
            "accept" => (JobCommand::Accept, Actor::SYSTEM),
            "move_forward" => (
                JobCommand::MoveForward {
                    target: now() + chrono::Duration::hours(1),
                },
                Actor::SYSTEM,
            ),
            "go_back" => (
                JobCommand::GoBack {
                    target: now() - chrono::Duration::hours(5),
                },
                Actor::SYSTEM,
            ),
            "rehost" => (JobCommand::Rehost { host: "r1".into() }, Actor::SYSTEM),
            other => panic!("no command {other}"),
        }
    }

    /// Every transition the lifecycle allows (attempt 2 of 5), and what it
    /// writes. A command not listed for a state is refused by `transition`.
    const TABLE: &str = r#"
    start              queued              to=provisioning attempt=1 run_after=now progress=0 detail="" step_clock
    step_succeeded     provisioning        to=restoring_snapshot attempt=1 run_after=now progress=10 detail="" step_clock
    step_succeeded     restoring_snapshot  to=replaying_log attempt=1 run_after=now progress=60 detail="" step_clock
    step_succeeded     replaying_log       to=verifying attempt=1 run_after=now progress=85 detail="" step_clock
    step_succeeded     verifying           to=finalizing attempt=1 run_after=now progress=95 detail="" step_clock
    step_succeeded     finalizing          to=succeeded attempt=1 run_after=now progress=100 detail="" step_clock finished released
    transient_failure  provisioning        to=provisioning attempt=3 run_after=now+4s error=boom released
    transient_failure  restoring_snapshot  to=restoring_snapshot attempt=3 run_after=now+4s error=boom released
    transient_failure  replaying_log       to=replaying_log attempt=3 run_after=now+4s error=boom released
    transient_failure  verifying           to=verifying attempt=3 run_after=now+4s error=boom released
    transient_failure  finalizing          to=finalizing attempt=3 run_after=now+4s error=boom released
    transient_failure  failing             to=failing attempt=3 run_after=now+4s error=boom released
    transient_failure  cancelling          to=cancelling attempt=3 run_after=now+4s error=boom released
    transient_failure  preempted           to=preempted attempt=3 run_after=now+4s error=boom released
    permanent_failure  provisioning        to=failing attempt=1 run_after=now detail="" step_clock error=boom failed_in=provisioning
    permanent_failure  restoring_snapshot  to=failing attempt=1 run_after=now detail="" step_clock error=boom failed_in=restoring_snapshot
    permanent_failure  replaying_log       to=failing attempt=1 run_after=now detail="" step_clock error=boom failed_in=replaying_log
    permanent_failure  verifying           to=failing attempt=1 run_after=now detail="" step_clock error=boom failed_in=verifying
    permanent_failure  finalizing          to=failing attempt=1 run_after=now detail="" step_clock error=boom failed_in=finalizing
    permanent_failure  failing             to=failing attempt=3 run_after=now+4s error=boom released
    permanent_failure  cancelling          to=cancelling attempt=3 run_after=now+4s error=boom released
    permanent_failure  preempted           to=preempted attempt=3 run_after=now+4s error=boom released
    cancel             queued              to=cancelled finished released
    cancel             provisioning        to=cancelling attempt=1 run_after=now detail="" step_clock
    cancel             restoring_snapshot  to=cancelling attempt=1 run_after=now detail="" step_clock
    cancel             replaying_log       to=cancelling attempt=1 run_after=now detail="" step_clock
    cancel             verifying           to=cancelling attempt=1 run_after=now detail="" step_clock
    cancel             failing             to=cancelling attempt=1 run_after=now detail="" step_clock
    cancel             preempted           to=cancelling attempt=1 run_after=now detail="" step_clock
    compensation_done  failing             to=failed finished released
    compensation_done  cancelling          to=cancelled finished released
    compensation_done  preempted           to=queued run=2 attempt=1 run_after=now fresh_cluster plan=cleared progress=0 detail="" step_clock error=cleared reached=cleared report=cleared unfinished released left_host work=cleared failed_in=cleared
    retry              failed              to=queued run=2 attempt=1 run_after=now fresh_cluster plan=cleared progress=0 detail="" step_clock error=cleared reached=cleared report=cleared unfinished left_host work=cleared failed_in=cleared
    wait               queued              to=queued attempt=2 run_after=now+15s error=boom released left_host
    transient_failure  rewinding           to=rewinding attempt=3 run_after=now+4s error=boom released
    permanent_failure  rewinding           to=rewinding attempt=3 run_after=now+4s error=boom released
    cancel             paused              to=cancelling attempt=1 run_after=now detail="" step_clock
    cancel             rewinding           to=cancelling attempt=1 run_after=now detail="" step_clock
    compensation_done  rewinding           to=queued run=2 attempt=1 run_after=now fresh_cluster plan=cleared progress=0 detail="" step_clock error=cleared reached=cleared report=cleared unfinished released left_host work=cleared failed_in=cleared
    accept             paused              to=finalizing attempt=1 run_after=now progress=95 detail="" step_clock
    move_forward       paused              to=replaying_log attempt=1 run_after=now progress=60 detail="" step_clock target=now+3600s
    go_back            paused              to=rewinding attempt=1 run_after=now detail="" step_clock target=now+-18000s
    rehost             queued              to=queued run=2 attempt=1 run_after=now fresh_cluster plan=cleared progress=0 detail="" step_clock error=host_lost reached=cleared report=cleared unfinished released left_host work=cleared failed_in=cleared
    rehost             provisioning        to=queued run=2 attempt=1 run_after=now fresh_cluster plan=cleared progress=0 detail="" step_clock error=host_lost reached=cleared report=cleared unfinished released left_host work=cleared failed_in=cleared
    rehost             restoring_snapshot  to=queued run=2 attempt=1 run_after=now fresh_cluster plan=cleared progress=0 detail="" step_clock error=host_lost reached=cleared report=cleared unfinished released left_host work=cleared failed_in=cleared
    rehost             replaying_log       to=queued run=2 attempt=1 run_after=now fresh_cluster plan=cleared progress=0 detail="" step_clock error=host_lost reached=cleared report=cleared unfinished released left_host work=cleared failed_in=cleared
    rehost             verifying           to=queued run=2 attempt=1 run_after=now fresh_cluster plan=cleared progress=0 detail="" step_clock error=host_lost reached=cleared report=cleared unfinished released left_host work=cleared failed_in=cleared
    rehost             finalizing          to=queued run=2 attempt=1 run_after=now fresh_cluster plan=cleared progress=0 detail="" step_clock error=host_lost reached=cleared report=cleared unfinished released left_host work=cleared failed_in=cleared
    rehost             failing             to=failing released left_host
    rehost             cancelling          to=cancelling released left_host
    rehost             preempted           to=preempted released left_host
    rehost             rewinding           to=rewinding released left_host
    "#;

    #[test]
    fn every_allowed_transition_writes_exactly_these_fields() {
        let facts = JobFacts {
            kind: JobKind::Restore,
            inspect: false,
            attempt: 2,
            now: now(),
            policy: RetryPolicy::default(),
            last_error: None,
        };
        let context = ApplyContext {
            at: now(),
            fresh_cluster_id: Uuid::from_u128(5).into(),
        };
        let mut expected = std::collections::HashMap::new();
        for line in TABLE.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut cols = line.split_whitespace();
            let (name, state) = (cols.next().unwrap(), cols.next().unwrap());
            let fields = cols.collect::<Vec<_>>().join(" ");
            expected.insert((name.to_string(), state.to_string()), fields);
        }
        let mut failures = Vec::new();
        let mut allowed = 0;
        for name in [
            "start",
            "step_succeeded",
            "transient_failure",
            "permanent_failure",
            "cancel",
            "compensation_done",
            "retry",
            "wait",
            "preempt",
            "accept",
            "move_forward",
            "go_back",
            "rehost",
        ] {
            for state in JobState::ALL {
                let (cmd, actor) = command(name);
                let key = (name.to_string(), state.as_str().to_string());
                let Ok(t) = transition(state, &cmd, &actor, &facts) else {
                    if expected.contains_key(&key) {
                        failures.push(format!("{name} {state}: refused but listed"));
                    }
                    continue;
                };
                allowed += 1;
                let (change, _) = apply(
                    &job(state),
                    &t,
                    JobGuard::State { run: 1 },
                    JobOutputs::default(),
                    context,
                );
                let got = describe(&change.patch);
                match expected.get(&key) {
                    Some(want) if *want == got => {}
                    Some(want) => {
                        failures.push(format!("{name} {state}:\n  want {want}\n  got  {got}"))
                    }
                    None => failures.push(format!("{name} {state}: allowed but not listed: {got}")),
                }
                assert_eq!(change.from, state);
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert_eq!(allowed, expected.len());
    }

    #[test]
    fn outputs_are_written_and_the_after_state_follows_the_patch() {
        let t = transition(
            JobState::RestoringSnapshot,
            &JobCommand::StepSucceeded,
            &Actor::SYSTEM,
            &JobFacts {
                kind: JobKind::Restore,
                inspect: false,
                attempt: 1,
                now: now(),
                policy: RetryPolicy::default(),
                last_error: None,
            },
        )
        .unwrap();
        let plan = RestorePlan {
            snapshot_id: "snap".into(),
            snapshot_finished_at: now(),
            zone: Zone::Az2,
        };
        let outputs = JobOutputs {
            snapshot: Some(plan.clone()),
            progress: Some(250),
            step_detail: Some("done copying".into()),
            ..JobOutputs::default()
        };
        let before = job(JobState::RestoringSnapshot);
        let (change, follow_ups) = apply(
            &before,
            &t,
            JobGuard::Lease(before.fence(now())),
            outputs,
            ApplyContext {
                at: now(),
                fresh_cluster_id: ClusterId::nil(),
            },
        );
        assert!(follow_ups.is_empty());
        let after = change.patch.applied_to(&before);
        assert_eq!(after.state, JobState::ReplayingLog);
        assert_eq!(after.plan(), Some(plan));
        assert_eq!(after.progress, 100, "clamped");
        assert_eq!(after.step_detail, "done copying");
        assert_eq!(after.attempt, 1);
        assert_eq!(after.lease_token, before.lease_token, "the claim stays");
        assert_eq!(after.lease_owner, before.lease_owner);
    }
}
