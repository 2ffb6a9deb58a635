//! The JSON shapes of the API (SPEC §8), and how they are read from the
//! store. What a customer may not see never enters their shape: internal
//! notes, the validation report's internals, staff-only job errors.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::ids::{ClusterId, EndpointId, JobId, SubscriptionId, TicketId, UserId};

use crate::app::App;
use crate::desk::drills::{ClusterDrills, result_of};
use crate::desk::read::cluster_backups;
use crate::desk::scope_for;
use crate::domain::catalog::Window;
use crate::domain::cluster::{Cluster, ClusterConfig, Connection, RestoredFrom};
use crate::domain::drill::DrillResult;
use crate::domain::restore_job::JobKind;
use crate::domain::ticket::Visibility;
use crate::domain::validation::ValidationReport;
use crate::domain::verification::VerificationReport;
use crate::store::{
    DrillRecord, DrillSettings, Endpoint, Event, Message, OutboxMessage, RestoreJob, SandboxFault,
    Ticket, User, ZoneStatus,
};
use crate::web::error::{AppResult, FieldError};

use super::words;

#[derive(Debug, Serialize, ToSchema)]
pub struct Restorable {
    pub earliest: DateTime<Utc>,
    pub latest: DateTime<Utc>,
}

impl From<Window> for Restorable {
    fn from(window: Window) -> Restorable {
        Restorable {
            earliest: window.earliest,
            latest: window.latest,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterOut {
    pub id: ClusterId,
    pub name: String,
    pub subscription_id: SubscriptionId,
    pub resource_group: String,
    pub region: String,
    pub config: ClusterConfig,
    #[schema(value_type = words::ClusterStatus)]
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// When it was deleted; it stays restorable for 7 days after.
    #[schema(required = true)]
    pub deleted_at: Option<DateTime<Utc>>,
    /// The restorable window with every zone counted, or null when nothing
    /// can be restored.
    #[schema(required = true)]
    pub restorable: Option<Restorable>,
    /// What the zones online now can restore: narrower than `restorable`
    /// while a zone holding older backups is offline.
    #[schema(required = true)]
    pub restorable_now: Option<Restorable>,
    /// How to connect: for the cluster's own customers. Staff and admins
    /// get null here; they see a restored cluster's connection on its
    /// ticket's page, to hand it over.
    #[schema(required = true)]
    pub connection: Option<Connection>,
    /// The ticket and moment a restored cluster came from; null for others.
    #[schema(required = true)]
    pub restored_from: Option<RestoredFrom>,
    /// The newest finished restore test (the cluster's backups restored
    /// from one zone into a copy, verified, then removed); null before the
    /// first.
    #[schema(required = true)]
    pub last_restore_test: Option<RestoreTestOut>,
    /// Staff only, left out for customers: the zones whose latest restore
    /// test failed, each with the check that failed and why; empty when
    /// every zone's latest passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_at_risk: Option<Vec<RiskOut>>,
}

/// A cluster's last restore test, as anyone who may see the cluster reads it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RestoreTestOut {
    pub passed: bool,
    pub finished_at: DateTime<Utc>,
    /// From a worker taking the test up to its end.
    pub duration_seconds: i64,
    /// The zone whose backup copy was restored.
    #[schema(value_type = words::Zone)]
    pub zone: &'static str,
}

/// A zone whose latest restore test failed: restores from it are at risk.
#[derive(Debug, Serialize, ToSchema)]
pub struct RiskOut {
    #[schema(value_type = words::Zone)]
    pub zone: &'static str,
    /// The check that failed, in words: `snapshot restore`, `log replay`,
    /// `verification` (or the names of the verification's failed checks),
    /// `teardown`, …
    pub failed_check: String,
    /// What it said.
    pub reason: String,
}

fn restore_test_out(result: &DrillResult) -> RestoreTestOut {
    RestoreTestOut {
        passed: result.passed,
        finished_at: result.finished_at,
        duration_seconds: result.duration().num_seconds().max(0),
        zone: result.zone.as_str(),
    }
}

fn risk_out(result: &DrillResult) -> RiskOut {
    RiskOut {
        zone: result.zone.as_str(),
        failed_check: result.failed_check.clone().unwrap_or_default(),
        reason: result.reason.clone().unwrap_or_default(),
    }
}

/// A cluster as `viewer` may see it: connection details go to its own
/// customers only, what its restore tests found to everyone, why its
/// restores are at risk to staff.
pub async fn cluster_out(
    app: &App,
    viewer: &User,
    cluster: Cluster,
    drills: &ClusterDrills,
) -> AppResult<ClusterOut> {
    let backups = cluster_backups(app, &cluster).await?;
    let window = backups.window;
    Ok(ClusterOut {
        restorable_now: backups.window_now.map(Restorable::from),
        id: cluster.id,
        name: cluster.name,
        subscription_id: cluster.subscription_id,
        resource_group: cluster.resource_group,
        region: cluster.region,
        config: cluster.config,
        status: cluster.status.as_str().into(),
        created_at: cluster.created_at,
        deleted_at: cluster.deleted_at,
        restorable: window.map(Restorable::from),
        connection: (viewer.subscription_id == Some(cluster.subscription_id))
            .then_some(cluster.connection),
        restored_from: cluster.restored_from,
        last_restore_test: drills.last().map(restore_test_out),
        restore_at_risk: viewer
            .role
            .works_tickets()
            .then(|| drills.at_risk().into_iter().map(risk_out).collect()),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobSummary {
    pub id: JobId,
    #[schema(value_type = words::JobState)]
    pub state: String,
    /// What the restore is doing, in words.
    pub step: String,
    /// 0–100.
    pub progress: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Person {
    pub id: UserId,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StaffPerson {
    pub id: UserId,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketOut {
    pub id: TicketId,
    /// `RD-000123`.
    pub number: String,
    #[schema(value_type = words::TicketState)]
    pub state: String,
    /// The state in words.
    pub state_label: String,
    pub cluster_id: ClusterId,
    pub cluster_name: String,
    /// UTC, RFC 3339. With a transaction target, the moment it stands
    /// for: a microsecond before its commit, or its commit.
    pub target_time: DateTime<Utc>,
    /// The IANA zone the customer entered the target in.
    pub time_zone: String,
    /// The transaction the restore stops just before or after; null for a
    /// target by time.
    #[schema(required = true)]
    pub transaction: Option<TargetTransactionOut>,
    pub new_cluster_name: String,
    #[schema(value_type = words::Severity)]
    pub severity: String,
    pub description: String,
    /// When the target leaves the restorable window.
    pub deadline: DateTime<Utc>,
    /// When support should first answer, by severity.
    pub first_response_due: DateTime<Utc>,
    /// When support first answered; null until then.
    #[schema(required = true)]
    pub first_response_at: Option<DateTime<Utc>>,
    /// The engineer working it; null while nobody has claimed it.
    #[schema(required = true)]
    pub assignee: Option<Person>,
    /// The cluster the restore creates, once it exists.
    #[schema(required = true)]
    pub new_cluster_id: Option<ClusterId>,
    /// Why it was rejected; null unless it was.
    #[schema(required = true)]
    pub rejection_reason: Option<String>,
    /// The restore job, once approved; null before.
    #[schema(required = true)]
    pub job: Option<JobSummary>,
    /// Send it back as `version` with a command to guard against acting on
    /// a stale view.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Staff only: who filed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester: Option<StaffPerson>,
    /// Staff only: the latest check of the target against the backup window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationOut>,
    /// The restored copy stops paused and read-only at the target for the
    /// customer to inspect before it is handed over.
    pub inspect: bool,
    /// While the copy waits for the customer's decision (state
    /// `awaiting_decision`): where to look at it and until when to decide;
    /// null otherwise.
    #[schema(required = true)]
    pub inspection: Option<InspectionOut>,
}

/// A paused copy waiting for its customer's decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct InspectionOut {
    /// Where the copy answers; it takes reads only until accepted.
    pub connection: Connection,
    pub read_only: bool,
    /// Past this moment the copy is handed over as it is.
    pub decide_by: DateTime<Utc>,
}

/// A check of a ticket's target against the cluster's backups.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationOut {
    pub checked_at: DateTime<Utc>,
    pub target: DateTime<Utc>,
    /// The restorable window then; null when nothing was restorable.
    #[schema(required = true)]
    pub window: Option<Restorable>,
    #[schema(value_type = Vec<words::Zone>)]
    pub online_zones: Vec<&'static str>,
    /// Where the restore would come from; null when the target was refused.
    #[schema(required = true)]
    pub plan: Option<PlanOut>,
    /// Why the target was refused, with its SPEC §4 code; null when it passed.
    #[schema(required = true)]
    pub error: Option<FieldError>,
    /// When the target leaves the restorable window.
    pub deadline: DateTime<Utc>,
}

/// The snapshot and zone a restore starts from.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanOut {
    pub snapshot_id: String,
    pub snapshot_finished_at: DateTime<Utc>,
    #[schema(value_type = words::Zone)]
    pub zone: &'static str,
}

pub fn validation_out(report: &ValidationReport) -> ValidationOut {
    ValidationOut {
        checked_at: report.checked_at,
        target: report.target,
        window: report.window.map(Restorable::from),
        online_zones: report.online_zones.iter().map(|z| z.as_str()).collect(),
        plan: report.plan.as_ref().map(|p| PlanOut {
            snapshot_id: p.snapshot_id.clone(),
            snapshot_finished_at: p.snapshot_finished_at,
            zone: p.zone.as_str(),
        }),
        error: report.error.as_ref().map(FieldError::from),
        deadline: report.deadline,
    }
}

/// Names for tickets: clusters and people, looked up once per answer. A
/// list loads every visible cluster's name up front; one ticket looks up
/// its own cluster when asked (`Names::default()`).
#[derive(Default)]
pub struct Names {
    clusters: HashMap<ClusterId, String>,
    people: HashMap<UserId, User>,
}

impl Names {
    pub async fn load(app: &App, viewer: &User) -> AppResult<Names> {
        let clusters = app
            .store
            .clusters(scope_for(viewer), true)
            .await?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect();
        Ok(Names {
            clusters,
            people: HashMap::new(),
        })
    }

    async fn cluster(&mut self, app: &App, id: ClusterId) -> AppResult<String> {
        if let Some(name) = self.clusters.get(&id) {
            return Ok(name.clone());
        }
        let name = app.cluster_name(id).await?.unwrap_or_default();
        self.clusters.insert(id, name.clone());
        Ok(name)
    }

    async fn person(&mut self, app: &App, id: UserId) -> AppResult<Option<User>> {
        if let Some(user) = self.people.get(&id) {
            return Ok(Some(user.clone()));
        }
        let user = app.store.user(id).await?;
        if let Some(user) = &user {
            self.people.insert(id, user.clone());
        }
        Ok(user)
    }
}

pub fn job_summary(job: &RestoreJob) -> JobSummary {
    JobSummary {
        id: job.id,
        state: job.state.as_str().into(),
        step: job.state.label().into(),
        progress: job.progress.clamp(0, 100),
    }
}

pub async fn ticket_out(
    app: &App,
    viewer: &User,
    names: &mut Names,
    ticket: Ticket,
) -> AppResult<TicketOut> {
    let job = app.job_of(&ticket).await?;
    let cluster_name = names.cluster(app, ticket.cluster_id).await?;
    let assignee = match ticket.assignee_id {
        Some(id) => names.person(app, id).await?,
        None => None,
    };
    let requester = if viewer.role.works_tickets() {
        names.person(app, ticket.requester_id).await?
    } else {
        None
    };
    let paused = crate::desk::read::paused_copy(app, &ticket, job.as_ref()).await?;
    Ok(ticket_out_of(
        viewer,
        ticket,
        job.as_ref(),
        cluster_name,
        assignee.as_ref(),
        requester.as_ref(),
        paused,
    ))
}

/// A ticket's head, as the API answers it.
pub fn ticket_head_out(viewer: &User, head: &crate::desk::read::TicketHead) -> TicketOut {
    ticket_out_of(
        viewer,
        head.ticket.clone(),
        head.job.as_ref(),
        head.cluster_name.clone(),
        head.assignee.as_ref(),
        head.requester.as_ref(),
        head.paused_copy.clone(),
    )
}

fn ticket_out_of(
    viewer: &User,
    ticket: Ticket,
    job: Option<&RestoreJob>,
    cluster_name: String,
    assignee: Option<&User>,
    requester: Option<&User>,
    paused_copy: Option<Connection>,
) -> TicketOut {
    let staff = viewer.role.works_tickets();
    let inspection = paused_copy
        .zip(ticket.decision_due)
        .map(|(connection, decide_by)| InspectionOut {
            connection,
            read_only: true,
            decide_by,
        });
    let assignee = assignee.map(|u| Person {
        id: u.id,
        name: u.display_name.clone(),
    });
    let requester = requester.filter(|_| staff).map(|u| StaffPerson {
        id: u.id,
        name: u.display_name.clone(),
        email: u.email.to_string(),
    });
    TicketOut {
        id: ticket.id,
        number: ticket.reference(),
        state: ticket.state.as_str().into(),
        state_label: ticket.state.label().into(),
        cluster_id: ticket.cluster_id,
        cluster_name,
        target_time: ticket.target_time,
        transaction: ticket.transaction.map(|t| TargetTransactionOut {
            id: t.xid,
            position: t.position.as_str().into(),
            committed_at: t.committed_at(ticket.target_time),
        }),
        time_zone: ticket.time_zone,
        new_cluster_name: ticket.new_cluster_name,
        severity: ticket.severity.as_str().into(),
        description: ticket.description,
        deadline: ticket.deadline,
        first_response_due: ticket.first_response_due,
        first_response_at: ticket.first_response_at,
        assignee,
        new_cluster_id: ticket.new_cluster_id,
        rejection_reason: ticket.rejection_reason,
        job: job.map(job_summary),
        version: ticket.version,
        created_at: ticket.created_at,
        updated_at: ticket.updated_at,
        requester,
        validation: staff.then(|| validation_out(&ticket.validation_report)),
        inspect: ticket.inspect,
        inspection,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketPage {
    pub tickets: Vec<TicketOut>,
    /// Pass as `after` (staff queue) or `before` (customers) for the next
    /// page; null on the last page.
    #[schema(required = true)]
    pub next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobOut {
    pub id: JobId,
    /// `restore` (a customer's, on a ticket) or `drill` (a restore test).
    pub kind: String,
    /// The ticket of a customer's restore; null for a drill.
    #[schema(required = true)]
    pub ticket_id: Option<TicketId>,
    #[schema(value_type = words::JobState)]
    pub state: String,
    /// What the restore is doing, in words.
    pub step: String,
    /// 0–100.
    pub progress: i64,
    /// What the current step is at, in words.
    pub detail: String,
    /// How many times the restore was started (a retry starts a new run).
    pub run: i64,
    /// Attempts of the current step.
    pub attempt: i64,
    pub target_time: DateTime<Utc>,
    /// The snapshot restored, once chosen.
    #[schema(required = true)]
    pub snapshot_id: Option<String>,
    /// The zone restored from, once chosen.
    #[schema(required = true, value_type = Option<words::Zone>)]
    pub zone: Option<String>,
    pub new_cluster_id: ClusterId,
    /// When the restore should be done, from this cluster's past
    /// restores; null once it rests, or before the cluster has any.
    #[schema(required = true)]
    pub eta: Option<EtaOut>,
    /// While the log is replayed: the commit time reached so far, against
    /// `target_time`; it never goes back.
    #[schema(required = true)]
    pub replayed_to: Option<DateTime<Utc>>,
    /// The exact point in time the new cluster holds, once verified.
    #[schema(required = true)]
    pub reached_point: Option<DateTime<Utc>>,
    /// What was checked once restored; null until verified.
    #[schema(required = true)]
    pub verification: Option<VerificationOut>,
    /// Staff only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Staff only: since when the current step made no progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled_since: Option<DateTime<Utc>>,
    /// Staff only: the restore host running it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When it succeeded, failed or was cancelled.
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
}

/// What verifying a restored cluster found.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationOut {
    pub checked_at: DateTime<Utc>,
    pub target: DateTime<Utc>,
    /// The last replayed commit; null if none was replayed after the snapshot.
    #[schema(required = true)]
    pub point_reached: Option<DateTime<Utc>>,
    pub checks: Vec<VerificationCheck>,
    /// The restored cluster's configuration against the source's.
    pub config: Vec<ConfigComparison>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationCheck {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigComparison {
    pub setting: String,
    pub source: String,
    pub restored: String,
}

fn verification_out(report: &VerificationReport) -> VerificationOut {
    VerificationOut {
        checked_at: report.checked_at,
        target: report.target,
        point_reached: report.point_reached,
        checks: report
            .checks
            .iter()
            .map(|c| VerificationCheck {
                name: c.name.clone(),
                passed: c.passed,
                detail: c.detail.clone(),
            })
            .collect(),
        config: report
            .config
            .iter()
            .map(|c| ConfigComparison {
                setting: c.setting.clone(),
                source: c.source.clone(),
                restored: c.restored.clone(),
            })
            .collect(),
    }
}

/// A restore test (a drill): a cluster's backups restored from one zone
/// into a copy no customer sees, verified, then removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct DrillOut {
    pub id: JobId,
    pub cluster_id: ClusterId,
    /// The cluster's name.
    pub cluster: String,
    /// The zone whose backup copy it restores.
    #[schema(required = true, value_type = Option<words::Zone>)]
    pub zone: Option<&'static str>,
    /// The restore host running it; null until a worker takes it up.
    #[schema(required = true)]
    pub host: Option<String>,
    #[schema(value_type = words::JobState)]
    pub state: String,
    /// What it is doing, or how it ended, in words.
    pub step: String,
    /// 0–100.
    pub progress: i64,
    /// The moment restored to: one inside that zone's restorable window.
    pub target_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// When a worker took it up; null while it waits.
    #[schema(required = true)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it passed, failed or was cancelled.
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    /// From `started_at` to `finished_at`; null until both are known.
    #[schema(required = true)]
    pub duration_seconds: Option<i64>,
    /// True when it passed, false when it failed; null while it waits or
    /// runs, and when it was cancelled (which says nothing of the backups).
    #[schema(required = true)]
    pub passed: Option<bool>,
    /// For a failed test: the check that failed, in words.
    #[schema(required = true)]
    pub failed_check: Option<String>,
    /// For a failed test: what the check said.
    #[schema(required = true)]
    pub reason: Option<String>,
    /// What verifying the copy checked, once it was verified; empty before.
    pub checks: Vec<VerificationCheck>,
}

/// A drill as the API shows it; `cluster` is its cluster's name.
pub fn drill_out(record: &DrillRecord, cluster: String) -> DrillOut {
    let job = &record.job;
    let result = result_of(record);
    let duration_seconds = match (&result, record.started_at, job.finished_at) {
        (Some(result), _, _) => Some(result.duration().num_seconds().max(0)),
        (None, Some(started), Some(finished)) => Some((finished - started).num_seconds().max(0)),
        _ => None,
    };
    DrillOut {
        id: job.id,
        cluster_id: job.source_cluster_id,
        cluster,
        zone: job.drill_zone.or(job.zone).map(|z| z.as_str()),
        host: job.host.clone(),
        state: job.state.as_str().into(),
        step: job.state.label_for(JobKind::Drill).into(),
        progress: job.progress.clamp(0, 100),
        target_time: job.target_time,
        created_at: job.created_at,
        started_at: record.started_at,
        finished_at: job.finished_at,
        duration_seconds,
        passed: result.as_ref().map(|r| r.passed),
        failed_check: result.as_ref().and_then(|r| r.failed_check.clone()),
        reason: result.and_then(|r| r.reason),
        checks: job
            .verification_report
            .as_ref()
            .map(|report| {
                report
                    .checks
                    .iter()
                    .map(|c| VerificationCheck {
                        name: c.name.clone(),
                        passed: c.passed,
                        detail: c.detail.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// How a cluster is tested.
#[derive(Debug, Serialize, ToSchema)]
pub struct DrillSettingsOut {
    /// The cluster's own interval between tests; null: the desk's.
    #[schema(required = true)]
    pub interval_hours: Option<i64>,
    /// A read-only SELECT each test's copy must answer true; null: none.
    #[schema(required = true)]
    pub canary: Option<String>,
    /// The interval that applies: the cluster's own, else the desk's
    /// `DRILL_INTERVAL_HOURS`; null when neither schedules tests.
    #[schema(required = true)]
    pub interval_hours_in_effect: Option<i64>,
}

pub fn drill_settings_out(app: &App, settings: DrillSettings) -> DrillSettingsOut {
    DrillSettingsOut {
        interval_hours_in_effect: app
            .settings
            .drill_interval(settings.interval_hours)
            .map(|d| d.num_hours()),
        interval_hours: settings.interval_hours,
        canary: settings.canary.map(|c| c.as_str().to_string()),
    }
}

/// How a cluster is to be tested; both fields replace what was set, and
/// one left out counts as null.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DrillSettingsIn {
    /// Hours between tests, 1 to 8784 (a year); null: the desk's interval.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 8784)]
    pub interval_hours: Option<i64>,
    /// One read-only SELECT (`WITH … SELECT` too) that each test's copy
    /// must answer true, e.g. `SELECT count(*) > 0 FROM orders`; null or
    /// empty: none.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub canary: Option<String>,
}

/// A restore's expected end.
#[derive(Debug, Serialize, ToSchema)]
pub struct EtaOut {
    pub done_by: DateTime<Utc>,
    /// The estimate's length in seconds.
    pub seconds: i64,
    /// What it comes from: "from 4 restores of this cluster, median 41 s".
    pub basis: String,
    /// Still running past three times the estimate, or the current step
    /// past three times its own.
    pub overrun: bool,
}

pub fn job_out(job: RestoreJob, staff: bool, eta: Option<crate::desk::eta::Eta>) -> JobOut {
    JobOut {
        eta: eta.map(|e| EtaOut {
            done_by: e.done_by,
            seconds: e.estimate.duration.num_seconds(),
            basis: e.estimate.basis(),
            overrun: e.overrun || e.step_overrun,
        }),
        id: job.id,
        kind: job.kind.as_str().into(),
        ticket_id: job.ticket_id,
        state: job.state.as_str().into(),
        step: job.state.label().into(),
        progress: job.progress.clamp(0, 100),
        detail: job.step_detail,
        run: job.run,
        attempt: job.attempt,
        target_time: job.target_time,
        snapshot_id: job.snapshot_id,
        zone: job.zone.map(|z| z.as_str().to_string()),
        new_cluster_id: job.new_cluster_id,
        reached_point: job.reached_point,
        replayed_to: job.replayed_to,
        verification: job.verification_report.as_ref().map(verification_out),
        last_error: if staff { job.last_error } else { None },
        stalled_since: if staff { job.stalled_since } else { None },
        host: if staff { job.host.clone() } else { None },
        created_at: job.created_at,
        updated_at: job.updated_at,
        finished_at: job.finished_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    pub id: Uuid,
    /// Null when the desk itself wrote it.
    #[schema(required = true)]
    pub author_id: Option<UserId>,
    #[schema(required = true)]
    pub author_name: Option<String>,
    #[schema(value_type = words::Role)]
    pub author_role: String,
    #[schema(value_type = words::Visibility)]
    pub visibility: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

pub async fn messages_out(
    app: &App,
    names: &mut Names,
    messages: Vec<Message>,
) -> AppResult<Vec<MessageOut>> {
    let mut out = Vec::new();
    for m in messages {
        let author_name = match m.author_id {
            Some(id) => names.person(app, id).await?.map(|u| u.display_name),
            None => None,
        };
        out.push(MessageOut {
            id: m.id,
            author_id: m.author_id,
            author_name,
            author_role: m.author_role.as_str().into(),
            visibility: m.visibility.as_str().into(),
            body: m.body,
            created_at: m.created_at,
        });
    }
    Ok(out)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    pub id: i64,
    /// What happened, e.g. `file`, `claim`, `approve`, `zone_offline`.
    #[schema(value_type = words::EventAction)]
    pub action: String,
    /// Null when the desk itself acted.
    #[schema(required = true)]
    pub actor_id: Option<UserId>,
    #[schema(value_type = words::Role)]
    pub actor_role: String,
    /// The state before; null when the event changed none, or created it.
    #[schema(required = true, value_type = Option<words::EventState>)]
    pub from_state: Option<String>,
    /// The state after; null when the event changed none.
    #[schema(required = true, value_type = Option<words::EventState>)]
    pub to_state: Option<String>,
    pub detail: String,
    #[schema(required = true)]
    pub job_id: Option<JobId>,
    #[schema(required = true)]
    pub ticket_id: Option<TicketId>,
    pub created_at: DateTime<Utc>,
}

pub fn event_out(e: Event) -> EventOut {
    EventOut {
        id: e.id,
        action: e.action.as_str().into(),
        actor_id: e.actor_id,
        actor_role: e.actor_role.as_str().into(),
        from_state: e.from_state,
        to_state: e.to_state,
        detail: e.detail,
        job_id: e.job_id,
        ticket_id: e.ticket_id,
        created_at: e.created_at,
    }
}

/// A ticket's events as a customer may read them: internal ones dropped,
/// staff-only details blanked.
pub fn events_for(viewer: &User, events: Vec<Event>) -> Vec<EventOut> {
    let staff = viewer.role.works_tickets();
    events
        .into_iter()
        .filter(|e| staff || e.action.customer_may_see())
        .map(|mut e| {
            if !staff && !e.action.detail_is_public() {
                e.detail.clear();
            }
            event_out(e)
        })
        .collect()
}

/// Whether a message may be shown to `viewer`.
pub fn visible_to(viewer: &User, message: &Message) -> bool {
    viewer.role.works_tickets() || message.visibility == Visibility::Public
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ZoneOut {
    pub region: String,
    #[schema(value_type = words::Zone)]
    pub zone: String,
    pub online: bool,
    pub changed_at: DateTime<Utc>,
}

pub fn zone_out(z: ZoneStatus) -> ZoneOut {
    ZoneOut {
        region: z.region,
        zone: z.zone.as_str().into(),
        online: z.online,
        changed_at: z.changed_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: UserId,
    pub email: String,
    pub name: String,
    #[schema(value_type = words::PersonRole)]
    pub role: String,
    /// A customer's subscription; null for staff and admins.
    #[schema(required = true)]
    pub subscription_id: Option<SubscriptionId>,
    /// The IANA zone times are shown in.
    pub time_zone: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

pub fn user_out(u: User) -> UserOut {
    UserOut {
        id: u.id,
        email: u.email.to_string(),
        name: u.display_name,
        role: u.role.as_str().into(),
        subscription_id: u.subscription_id,
        time_zone: u.time_zone,
        disabled: u.disabled,
        created_at: u.created_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FaultOut {
    pub id: Uuid,
    #[schema(value_type = words::FaultKind)]
    pub kind: String,
    #[schema(value_type = words::RestoreStep)]
    pub step: String,
    /// fail_step: retrying cannot help.
    pub permanent: bool,
    /// How many more times it fires.
    pub remaining: i64,
    /// slow_step: the delay.
    pub delay_ms: i64,
    pub created_at: DateTime<Utc>,
}

pub fn fault_out(f: SandboxFault) -> FaultOut {
    FaultOut {
        id: f.id,
        kind: f.kind.as_str().into(),
        step: f.step.as_str().into(),
        permanent: f.permanent,
        remaining: f.remaining,
        delay_ms: f.delay_ms,
        created_at: f.created_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxOut {
    pub id: Uuid,
    #[schema(required = true)]
    pub ticket_id: Option<TicketId>,
    #[schema(value_type = words::NoticeKind)]
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    #[schema(value_type = words::OutboxStatus)]
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    #[schema(required = true)]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub sent_at: Option<DateTime<Utc>>,
}

pub fn outbox_out(m: OutboxMessage) -> OutboxOut {
    OutboxOut {
        id: m.id,
        ticket_id: m.ticket_id,
        kind: m.kind,
        recipient: m.recipient,
        subject: m.subject,
        status: m.status.as_str().into(),
        attempts: m.attempts,
        next_attempt_at: m.next_attempt_at,
        last_error: m.last_error,
        created_at: m.created_at,
        sent_at: m.sent_at,
    }
}

/// An endpoint notices are posted to.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointOut {
    pub id: EndpointId,
    #[schema(value_type = words::EndpointKind)]
    pub kind: String,
    pub url: String,
    #[schema(value_type = Vec<words::EventType>)]
    pub events: Vec<String>,
    /// `subscription` (a customer's) or `staff` (an admin's).
    pub owner: String,
    pub enabled: bool,
    /// Bumped by each rotation.
    pub secret_version: i64,
    /// The secret before the last rotation signs too until then.
    #[schema(required = true)]
    pub previous_secret_until: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub disabled_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub fn endpoint_out(e: Endpoint) -> EndpointOut {
    EndpointOut {
        id: e.id,
        kind: e.kind.as_str().into(),
        url: e.url,
        events: e.events.iter().map(|e| e.as_str().to_string()).collect(),
        owner: if e.subscription_id.is_some() {
            "subscription".into()
        } else {
            "staff".into()
        },
        enabled: e.disabled_at.is_none(),
        secret_version: e.secret_version,
        previous_secret_until: e.previous_secret_until,
        disabled_at: e.disabled_at,
        disabled_reason: e.disabled_reason,
        created_at: e.created_at,
    }
}

/// An endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointSecretOut {
    pub endpoint: EndpointOut,
    /// The HMAC-SHA256 key of `Restore-Desk-Signature`; null for team chats,
    /// whose posts are not signed. It is never shown again.
    #[schema(required = true)]
    pub secret: Option<String>,
}

/// One post to an endpoint, as its delivery log shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// The event's id: `Restore-Desk-Event-Id`, the same at every attempt.
    pub id: Uuid,
    #[schema(value_type = words::EventType)]
    pub event: String,
    #[schema(required = true)]
    pub ticket_id: Option<TicketId>,
    #[schema(value_type = words::OutboxStatus)]
    pub status: String,
    pub attempts: i64,
    /// When the next attempt is due, while it is pending.
    pub next_attempt_at: DateTime<Utc>,
    /// The receiver's last answer or why it could not be reached, when the
    /// last attempt failed.
    #[schema(required = true)]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub delivered_at: Option<DateTime<Utc>>,
}

pub fn delivery_out(m: OutboxMessage) -> DeliveryOut {
    DeliveryOut {
        id: m.id,
        event: m.subject,
        ticket_id: m.ticket_id,
        status: m.status.as_str().into(),
        attempts: m.attempts,
        next_attempt_at: m.next_attempt_at,
        last_error: m.last_error,
        created_at: m.created_at,
        delivered_at: m.sent_at,
    }
}

/// The customer's verdict on a hand-over.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerdictOut {
    pub ticket_id: TicketId,
    pub data_right: bool,
    #[schema(required = true)]
    pub comment: Option<String>,
    /// 1 (poor) to 5 (excellent).
    pub rating: i64,
    #[schema(required = true)]
    pub rating_comment: Option<String>,
    /// `desk` (signed in) or `email_link` (the completed email's link).
    pub channel: String,
    pub given_at: DateTime<Utc>,
}

pub fn verdict_out(v: crate::domain::verdict::Verdict) -> VerdictOut {
    VerdictOut {
        ticket_id: v.ticket_id,
        data_right: v.data_right,
        comment: v.comment,
        rating: v.rating,
        rating_comment: v.rating_comment,
        channel: v.channel.as_str().into(),
        given_at: v.given_at,
    }
}

/// Customers' ratings over a group (an engineer, a month).
#[derive(Debug, Serialize, ToSchema)]
pub struct RatingOut {
    /// The engineer's name, or the month as `YYYY-MM`.
    pub label: String,
    pub verdicts: i64,
    /// Average of the 1–5 ratings.
    pub average: f64,
    /// How many said the restored data was not right.
    pub not_right: i64,
}

/// Ratings of the last twelve months.
#[derive(Debug, Serialize, ToSchema)]
pub struct RatingsOut {
    pub by_engineer: Vec<RatingOut>,
    /// Newest month first.
    pub by_month: Vec<RatingOut>,
}

pub fn rating_out(r: crate::desk::verdicts::RatingRow) -> RatingOut {
    RatingOut {
        label: r.label,
        verdicts: r.verdicts as i64,
        average: r.average,
        not_right: r.not_right as i64,
    }
}

/// A test event on its way.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestPostOut {
    /// The event's id, as the delivery log and the receiver see it.
    pub id: Uuid,
}

// ---------------------------------------------------------------- requests

#[derive(Debug, Deserialize, ToSchema)]
pub struct EndpointIn {
    #[schema(value_type = words::EndpointKind)]
    pub kind: String,
    /// HTTPS; a customer's endpoint must be on a public address.
    pub url: String,
    #[schema(value_type = Vec<words::EventType>)]
    pub events: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct VerdictIn {
    /// False reopens the ticket to its engineer with `comment`.
    pub data_right: bool,
    /// What is not right; needed when `data_right` is false.
    pub comment: Option<String>,
    /// 1 (poor) to 5 (excellent).
    pub rating: i64,
    pub rating_comment: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EndpointPatchIn {
    /// False stops posts (what waits fails); true posts again.
    pub enabled: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginIn {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginOut {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserOut,
}

/// A restore request. Give the target either as `target_time` (RFC 3339
/// with an offset) or as `local_time` plus `time_zone` (and `utc_offset`
/// when the local time happens twice).
#[derive(Debug, Deserialize, ToSchema)]
pub struct FileTicketIn {
    pub cluster_id: String,
    /// Instead of a time: restore to just before or just after this
    /// transaction of the archived log (`time_zone` is then only how
    /// times are read).
    #[serde(default)]
    pub transaction: Option<TransactionIn>,
    #[serde(default)]
    pub target_time: Option<String>,
    #[serde(default)]
    pub local_time: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub utc_offset: Option<String>,
    pub new_cluster_name: String,
    #[schema(value_type = words::Severity)]
    pub severity: String,
    #[serde(default)]
    pub description: String,
    /// Stop the restored copy paused and read-only at the target, to be
    /// inspected before it is handed over: accept it, move it forward or go
    /// back (`/tickets/{id}/accept`, `/move-forward`, `/go-back`).
    #[serde(default)]
    pub inspect: bool,
}

/// Where a paused copy goes next: `target_time` (RFC 3339 with an offset),
/// `local_time` plus `time_zone` (and `utc_offset` when the local time
/// happens twice), or a `transaction`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RedirectIn {
    #[serde(default)]
    pub transaction: Option<TransactionIn>,
    #[serde(default)]
    pub target_time: Option<String>,
    #[serde(default)]
    pub local_time: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// The ticket version the caller decided on; a newer one answers 409.
    #[serde(default)]
    pub version: Option<i64>,
}

/// A new target for a ticket, as when filing: `target_time` (RFC 3339 with
/// an offset) or `local_time` plus `time_zone` (and `utc_offset` when the
/// local time happens twice), and why it changes.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeTargetIn {
    /// Instead of a time: just before or just after this transaction.
    #[serde(default)]
    pub transaction: Option<TransactionIn>,
    #[serde(default)]
    pub target_time: Option<String>,
    #[serde(default)]
    pub local_time: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// Why the target changes: kept on the ticket and in the audit trail.
    pub reason: String,
    /// The ticket version the caller decided on; a newer one answers 409.
    #[serde(default)]
    pub version: Option<i64>,
}

/// The transaction a ticket's restore stops at.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetTransactionOut {
    pub id: u64,
    #[schema(value_type = words::TxPosition)]
    pub position: String,
    /// Its commit, to the microsecond.
    pub committed_at: DateTime<Utc>,
}

/// A transaction of the archived log as a target (see
/// `/api/v1/clusters/{id}/transactions`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TransactionIn {
    /// Its transaction id (`xid`).
    pub id: u64,
    /// `before`: everything committed before it, not it; `after`: it too.
    #[schema(value_type = words::TxPosition)]
    pub position: String,
}

/// The result of checking a request without filing it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckOut {
    /// The target in UTC.
    pub target_time: DateTime<Utc>,
    /// The IANA zone it was entered in.
    pub time_zone: String,
    /// The snapshot the restore would start from.
    pub snapshot_id: String,
    /// The zone it would be restored from.
    #[schema(value_type = words::Zone)]
    pub zone: String,
    /// When the target leaves the restorable window.
    pub deadline: DateTime<Utc>,
    #[schema(required = true)]
    pub restorable: Option<Restorable>,
}

/// The body of a ticket command; each command reads the fields it needs.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ActionIn {
    /// The ticket version the caller decided on; a newer one answers 409.
    #[serde(default)]
    pub version: Option<i64>,
    /// reply, note, request-info: the text.
    #[serde(default)]
    pub body: Option<String>,
    /// request-info: the question (same as `body`).
    #[serde(default)]
    pub message: Option<String>,
    /// reject, cancel-restore: why (required); cancel: why, if the customer says.
    #[serde(default)]
    pub reason: Option<String>,
    /// approve: the restored copy stops paused and read-only at the target
    /// for the customer to inspect before it is handed over.
    #[serde(default)]
    pub inspect: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUserIn {
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[schema(value_type = words::PersonRole)]
    pub role: String,
    /// Customers: the subscription's short name (created when new).
    #[serde(default)]
    pub subscription: String,
    #[serde(default)]
    pub time_zone: String,
    pub password: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UserPatchIn {
    #[serde(default)]
    #[schema(value_type = Option<words::PersonRole>)]
    pub role: Option<String>,
    #[serde(default)]
    pub subscription: Option<String>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct FaultIn {
    #[schema(value_type = words::FaultKind)]
    pub kind: String,
    #[schema(value_type = words::RestoreStep)]
    pub step: String,
    /// fail_step: retrying cannot help.
    #[serde(default)]
    pub permanent: bool,
    /// How many times it fires (default 1).
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 100)]
    pub times: i64,
    /// slow_step: the delay.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 3_600_000)]
    pub delay_ms: i64,
}

fn one() -> i64 {
    1
}

/// A relation a transaction touched, by name when the desk knows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TouchedRelation {
    /// `public.orders`, or `relation 16384` for one the desk never saw.
    pub name: String,
    /// False when only the relation's file number is known.
    pub known: bool,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

/// A relation's name, or its number when the desk never saw it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelationRef {
    pub name: String,
    pub known: bool,
}

/// A statement that changed relations' definitions.
#[derive(Debug, Serialize, ToSchema)]
pub struct DdlOut {
    /// `CREATE`, `DROP`, `TRUNCATE` or `ALTER`.
    #[schema(value_type = words::DdlKind)]
    pub kind: String,
    /// The relations it names; empty for an ALTER the log does not tie to one.
    pub relations: Vec<RelationRef>,
}

/// A committed transaction from the archived log.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionOut {
    /// The transaction id: what a target by transaction names.
    pub xid: u64,
    /// When it committed, to the microsecond.
    pub committed_at: DateTime<Utc>,
    pub relations: Vec<TouchedRelation>,
    pub ddl: Vec<DdlOut>,
    /// At least 1000 rows deleted from one relation.
    pub large_delete: bool,
    /// A DROP, a TRUNCATE or a large delete: what to look at first.
    pub destructive: bool,
}

/// What happened around a moment: the transactions committed nearest it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionsOut {
    pub cluster_id: Uuid,
    pub around: DateTime<Utc>,
    /// The stretch of log read for this page.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// In commit order.
    pub transactions: Vec<TransactionOut>,
    /// `around` for the page before this one; null at the log's start.
    #[schema(required = true)]
    pub earlier: Option<DateTime<Utc>>,
    /// `around` for the page after this one (with `before=0`); null at now.
    #[schema(required = true)]
    pub later: Option<DateTime<Utc>>,
    /// True when no zone that holds the cluster's log is online: nothing
    /// could be read, and the page is empty until one is back.
    pub zones_offline: bool,
}

impl From<&crate::desk::transactions::TransactionsAround> for TransactionsOut {
    fn from(page: &crate::desk::transactions::TransactionsAround) -> TransactionsOut {
        TransactionsOut {
            cluster_id: page.cluster.id.uuid(),
            around: page.around,
            from: page.from,
            to: page.to,
            transactions: page
                .transactions
                .iter()
                .map(|t| TransactionOut {
                    xid: t.xid,
                    committed_at: t.committed_at,
                    relations: t
                        .rows
                        .iter()
                        .map(|(named, rows)| TouchedRelation {
                            name: named.name.clone(),
                            known: named.known,
                            inserted: rows.inserted,
                            updated: rows.updated,
                            deleted: rows.deleted,
                        })
                        .collect(),
                    ddl: t
                        .ddl
                        .iter()
                        .map(|(kind, relations)| DdlOut {
                            kind: kind.as_str().to_string(),
                            relations: relations
                                .iter()
                                .map(|r| RelationRef {
                                    name: r.name.clone(),
                                    known: r.known,
                                })
                                .collect(),
                        })
                        .collect(),
                    large_delete: t.large_delete,
                    destructive: t.destructive,
                })
                .collect(),
            earlier: page.earlier,
            later: page.later,
            zones_offline: page.zones_offline,
        }
    }
}

/// A host of the fleet, as the fleet's list has it and as its workers last
/// reported.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostOut {
    pub name: String,
    #[schema(value_type = words::HostRole)]
    pub role: String,
    /// The DNS name others reach it by; null for a host only heard from.
    #[schema(required = true)]
    pub address: Option<String>,
    /// A zone host's zone.
    #[schema(required = true, value_type = Option<words::Zone>)]
    pub zone: Option<String>,
    /// Where the desk's process there keeps its files.
    #[schema(required = true)]
    pub data_root: Option<String>,
    /// A restore host's limit of restores at once.
    #[schema(required = true)]
    pub max_restores: Option<i64>,
    /// pgBackRest's TLS server there; null for a host only heard from.
    #[schema(required = true)]
    pub tls_port: Option<u16>,
    /// In the fleet's list (false: a restore host whose workers report but
    /// that nobody listed, such as the single machine's `local`).
    pub configured: bool,
    /// Its workers reported within `HOST_LOST_SECONDS`.
    pub alive: bool,
    /// When its workers last reported; null: never.
    #[schema(required = true)]
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Bytes free for restores there, as its workers last reported.
    #[schema(required = true)]
    pub free_bytes: Option<i64>,
    /// Restores and restore tests placed on it that are not over.
    pub restores_running: i64,
}

pub fn host_out(h: crate::desk::hosts::HostStatus) -> HostOut {
    HostOut {
        role: h.role().as_str().to_string(),
        max_restores: h.max_restores(),
        last_seen_at: h.last_seen_at(),
        free_bytes: h.free_bytes(),
        configured: h.configured(),
        alive: h.alive,
        restores_running: h.restores_running,
        address: h.config.as_ref().map(|c| c.address.clone()),
        zone: h
            .config
            .as_ref()
            .and_then(|c| c.zone)
            .map(|z| z.to_string()),
        data_root: h.config.as_ref().and_then(|c| c.data_root.clone()),
        tls_port: h.config.as_ref().map(|c| c.tls_port),
        name: h.name,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HostsOut {
    /// The listed hosts (by role, then name), then those only heard from.
    pub hosts: Vec<HostOut>,
}

/// A host of the fleet, its name taken from the path. It replaces the host
/// of that name whole: a field left out is none, `tls_port` left out is
/// 8432.
#[derive(Debug, Deserialize, ToSchema)]
pub struct HostIn {
    #[schema(value_type = words::HostRole)]
    pub role: String,
    /// The DNS name others reach it by, the name in its certificate; not an
    /// IP address.
    #[schema(max_length = 253)]
    pub address: String,
    /// A zone host's zone; null for the others.
    #[serde(default)]
    #[schema(value_type = Option<words::Zone>)]
    pub zone: Option<String>,
    /// An absolute path where the desk's process there keeps its files;
    /// a zone or restore host needs one.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub data_root: Option<String>,
    /// A restore host's limit of restores at once, 1 to 64; null for the
    /// others.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 64)]
    pub max_restores: Option<i64>,
    /// pgBackRest's TLS server there (default 8432).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 65535)]
    pub tls_port: Option<i64>,
}
