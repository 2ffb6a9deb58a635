//! Restore drills: scheduling them (and an admin's "now"), their settings,
//! what they found, and telling staff when one fails. A drill is a restore
//! job of its own kind: the engine runs it like any restore.

use std::collections::HashMap;

use askama::Template;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::DeskError;
use crate::app::App;
use crate::backend::FleetView;
use crate::domain::actor::{Actor, Role};
use crate::domain::catalog::{Zone, ZoneSet, plan_restore, restorable_window};
use crate::domain::cluster::{Cluster, ClusterStatus};
use crate::domain::drill::{self, CanaryQuery, DrillResult};
use crate::domain::ids::{ClusterId, JobId};
use crate::domain::restore_job::{JobKind, JobState};
use crate::notify::compose::in_zone_and_utc;
use crate::store::{
    AdminWrite, Commit, DrillRecord, DrillSettings, EventAction, JobWrite, NewEvent, NewJob,
    NewOutboxMessage, RestoreJob, Scope, User,
};

/// The longest interval an admin may set: a year.
pub const MAX_INTERVAL_HOURS: i64 = 24 * 366;

fn bad(field: &'static str, message: impl Into<String>) -> DeskError {
    DeskError::BadInput {
        field,
        message: message.into(),
    }
}

/// What a drill job found, once it rests: `None` while it runs, or when it
/// was cancelled (which tells nothing of the backups).
pub fn result_of(record: &DrillRecord) -> Option<DrillResult> {
    let job = &record.job;
    let passed = match job.state {
        JobState::Succeeded => true,
        JobState::Failed => false,
        _ => return None,
    };
    let zone = job.drill_zone.or(job.zone)?;
    let finished_at = job.finished_at.unwrap_or(job.updated_at);
    let failed_check = (!passed).then(|| failed_check(job));
    Some(DrillResult {
        zone,
        passed,
        started_at: record.started_at.unwrap_or(job.created_at),
        finished_at,
        failed_check,
        reason: (!passed).then(|| job.last_error.clone().unwrap_or_default()),
    })
}

/// The check a failed drill failed: the verification checks that failed,
/// by name, or the step it could not get through.
fn failed_check(job: &RestoreJob) -> String {
    let step = job.failed_step.map_or("restore", |s| s.as_str());
    if job.failed_step == Some(JobState::Verifying)
        && let Some(report) = &job.verification_report
    {
        let names: Vec<&str> = report.failures().iter().map(|c| c.name.as_str()).collect();
        if !names.is_empty() {
            return names.join(", ");
        }
    }
    drill::check_of_step(step).to_string()
}

/// A cluster's drills as staff and its customers read them.
#[derive(Debug, Clone, Default)]
pub struct ClusterDrills {
    /// Newest first.
    pub results: Vec<DrillResult>,
    /// A drill running or waiting now.
    pub active: Option<RestoreJob>,
}

impl ClusterDrills {
    pub fn last(&self) -> Option<&DrillResult> {
        self.results.first()
    }

    /// Zones whose latest drill failed: the cluster's restores are at risk.
    pub fn at_risk(&self) -> Vec<&DrillResult> {
        drill::at_risk(&self.results)
    }

    /// The newest result from `zone`, and up to `n` results from it,
    /// newest first (the trend).
    pub fn in_zone(&self, zone: Zone, n: usize) -> Vec<&DrillResult> {
        self.results
            .iter()
            .filter(|r| r.zone == zone)
            .take(n)
            .collect()
    }

    /// "restore from az2 failed at snapshot restore"
    pub fn risk_words(&self) -> Option<String> {
        let risk = self.at_risk();
        if risk.is_empty() {
            return None;
        }
        Some(
            risk.iter()
                .map(|r| {
                    format!(
                        "the restore test from {} failed ({})",
                        r.zone,
                        r.failed_check.as_deref().unwrap_or("restore")
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

/// Drills of every cluster, newest first, grouped by cluster.
pub async fn all(app: &App) -> Result<HashMap<ClusterId, ClusterDrills>, DeskError> {
    let mut out: HashMap<ClusterId, ClusterDrills> = HashMap::new();
    for record in app.store.drills(None, 2000).await? {
        let entry = out.entry(record.job.source_cluster_id).or_default();
        add(entry, record);
    }
    Ok(out)
}

/// One cluster's drills.
pub async fn of_cluster(app: &App, cluster_id: ClusterId) -> Result<ClusterDrills, DeskError> {
    let mut out = ClusterDrills::default();
    for record in app.store.drills(Some(cluster_id), 200).await? {
        add(&mut out, record);
    }
    Ok(out)
}

fn add(drills: &mut ClusterDrills, record: DrillRecord) {
    if let Some(result) = result_of(&record) {
        drills.results.push(result);
    } else if !record.job.state.is_terminal() && drills.active.is_none() {
        drills.active = Some(record.job);
    }
}

/// Why a drill cannot start now, in an admin's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoDrill {
    Deleted,
    NotReady,
    Running,
    NoZone,
}

impl NoDrill {
    pub fn message(&self, cluster: &Cluster) -> String {
        match self {
            NoDrill::Deleted => format!(
                "{} is deleted: its backups are no longer tested",
                cluster.name
            ),
            NoDrill::NotReady => format!("{} is still being built", cluster.name),
            NoDrill::Running => format!(
                "A restore test of {} is already running or waiting: it reports when done",
                cluster.name
            ),
            NoDrill::NoZone => format!(
                "No zone online holds a backup of {} that can be restored: nothing to test now",
                cluster.name
            ),
        }
    }
}

/// The drill to run next for `cluster`: the zone whose turn it is and a
/// random moment of that zone's window, or why none can run.
async fn next_drill(
    app: &App,
    cluster: &Cluster,
    drills: &ClusterDrills,
) -> Result<Result<(Zone, DateTime<Utc>), NoDrill>, DeskError> {
    if cluster.deleted_at.is_some() {
        return Ok(Err(NoDrill::Deleted));
    }
    if cluster.status != ClusterStatus::Ready {
        return Ok(Err(NoDrill::NotReady));
    }
    if drills.active.is_some() {
        return Ok(Err(NoDrill::Running));
    }
    let view = match FleetView::read(&*app.backend, cluster).await {
        Ok(view) => view,
        Err(error) => {
            tracing::warn!(cluster = %cluster.name, %error, "no drill: the catalog cannot be read");
            return Ok(Err(NoDrill::NoZone));
        }
    };
    let now = app.now();
    let policy = app.policy();
    let mut windows = HashMap::new();
    let mut candidates = ZoneSet::NONE;
    for zone in view.online.iter() {
        let held = view.catalog.held_in(ZoneSet::of(&[zone]));
        if let Some(window) = restorable_window(&held, &cluster.life(), &policy, now) {
            windows.insert(zone, (held, window));
            candidates = candidates.with(zone);
        }
    }
    let last: Vec<(Zone, DateTime<Utc>)> = drills
        .results
        .iter()
        .map(|r| (r.zone, r.started_at))
        .collect();
    let Some(zone) = drill::next_zone(candidates, &last) else {
        return Ok(Err(NoDrill::NoZone));
    };
    let (held, window) = &windows[&zone];
    // A moment with a snapshot and unbroken log in that zone, away from the
    // window's oldest edge (the part retention takes next).
    let only = ZoneSet::of(&[zone]);
    let mut target = window.latest;
    for _ in 0..8 {
        let fraction = 0.1 + 0.9 * rand::random::<f64>();
        let candidate = drill::target_in(window.earliest, window.latest, fraction);
        if plan_restore(held, candidate, only).is_ok() {
            target = candidate;
            break;
        }
    }
    Ok(Ok((zone, target)))
}

/// Queues a drill of `cluster` from `zone` to `target`, with its event.
async fn queue(
    app: &App,
    cluster: &Cluster,
    zone: Zone,
    target: DateTime<Utc>,
    actor: Actor,
    why: &str,
) -> Result<JobId, DeskError> {
    let now = app.now();
    let id = JobId::new();
    let mut commit = Commit::at(now);
    commit.job = Some(JobWrite::Create(NewJob {
        id,
        kind: JobKind::Drill,
        ticket_id: None,
        source_cluster_id: cluster.id,
        target_time: target,
        new_cluster_id: ClusterId::new(),
        drill_zone: Some(zone),
    }));
    commit.events.push(NewEvent {
        ticket_id: None,
        job_id: Some(id),
        actor,
        action: EventAction::DrillStart,
        from_state: None,
        to_state: Some(JobState::Queued.as_str().into()),
        detail: format!(
            "{} from {zone} to {} ({why})",
            cluster.name,
            target.format("%Y-%m-%d %H:%M:%S%.6f UTC")
        ),
        at: now,
    });
    app.commit(commit).await?;
    tracing::info!(cluster = %cluster.name, %zone, %target, why, "restore test queued");
    Ok(id)
}

/// The scheduler's round: a drill for every cluster whose interval has
/// passed since its last one. Returns how many were queued.
pub async fn schedule(app: &App) -> Result<usize, DeskError> {
    let mut all = all(app).await?;
    let mut queued = 0;
    for cluster in app.store.clusters(Scope::Everything, false).await? {
        let drills = all.remove(&cluster.id).unwrap_or_default();
        let settings = app.store.drill_settings(cluster.id).await?;
        let Some(interval) = app.settings.drill_interval(settings.interval_hours) else {
            continue;
        };
        let last = drills.results.first().map(|r| r.started_at);
        if !drill::due(last, interval, app.now()) {
            continue;
        }
        match next_drill(app, &cluster, &drills).await? {
            Ok((zone, target)) => {
                queue(app, &cluster, zone, target, Actor::SYSTEM, "scheduled").await?;
                queued += 1;
            }
            Err(reason) => {
                tracing::debug!(cluster = %cluster.name, ?reason, "no drill this round")
            }
        }
    }
    Ok(queued)
}

/// An admin starts a drill of `cluster_id` now.
pub async fn start_now(app: &App, admin: &User, cluster_id: ClusterId) -> Result<JobId, DeskError> {
    if admin.role != Role::Admin {
        return Err(DeskError::Refused(
            crate::domain::ticket::Refusal::Forbidden,
        ));
    }
    let cluster = app
        .store
        .cluster(cluster_id, Scope::Everything)
        .await?
        .ok_or(DeskError::NotFound)?;
    let drills = of_cluster(app, cluster.id).await?;
    match next_drill(app, &cluster, &drills).await? {
        Ok((zone, target)) => {
            queue(
                app,
                &cluster,
                zone,
                target,
                admin.actor(),
                &format!("started by {}", admin.email),
            )
            .await
        }
        Err(reason) => Err(bad("cluster", reason.message(&cluster))),
    }
}

/// An admin sets how a cluster is drilled: its own interval (none: the
/// desk's) and a canary query (none: no canary). Refused, changing
/// nothing, unless the interval is 1 hour to a year and the canary one
/// read-only SELECT.
pub async fn set_settings(
    app: &App,
    admin: &User,
    cluster_id: ClusterId,
    interval_hours: Option<i64>,
    canary: Option<&str>,
) -> Result<DrillSettings, DeskError> {
    if admin.role != Role::Admin {
        return Err(DeskError::Refused(
            crate::domain::ticket::Refusal::Forbidden,
        ));
    }
    let cluster = app
        .store
        .cluster(cluster_id, Scope::Everything)
        .await?
        .ok_or(DeskError::NotFound)?;
    if let Some(hours) = interval_hours
        && !(1..=MAX_INTERVAL_HOURS).contains(&hours)
    {
        return Err(bad(
            "interval_hours",
            format!("A drill interval is 1 to {MAX_INTERVAL_HOURS} hours"),
        ));
    }
    let canary = match canary.map(str::trim).filter(|c| !c.is_empty()) {
        Some(text) => Some(CanaryQuery::parse(text).map_err(|m| bad("canary", m))?),
        None => None,
    };
    let settings = DrillSettings {
        interval_hours,
        canary,
    };
    let now = app.now();
    let event = NewEvent::admin(
        admin.actor(),
        EventAction::DrillSettings,
        format!(
            "{}: {}; canary {}",
            cluster.name,
            app.settings.drill_interval(interval_hours).map_or(
                "no scheduled tests".to_string(),
                |d| format!("every {} hours", d.num_hours())
            ),
            settings
                .canary
                .as_ref()
                .map_or("none".to_string(), |c| format!("{:?}", c.as_str()))
        ),
        now,
    );
    let write = AdminWrite::SetDrillSettings {
        cluster_id: cluster.id,
        settings: settings.clone(),
    };
    app.commit(Commit::admin(write, Some(event), now)).await?;
    Ok(settings)
}

/// The email staff get when a drill fails.
#[derive(Template)]
#[template(path = "email/drill_failed.txt")]
struct FailedText<'a> {
    n: &'a FailedNotice<'a>,
}

#[derive(Template)]
#[template(path = "email/drill_failed.html")]
struct FailedHtml<'a> {
    n: &'a FailedNotice<'a>,
}

struct FailedNotice<'a> {
    recipient_name: &'a str,
    cluster: &'a str,
    zone: String,
    check: String,
    reason: String,
    target: String,
    host: String,
    link: String,
}

impl FailedNotice<'_> {
    fn subject(&self) -> String {
        format!(
            "Restore test of {} from {} failed: restores at risk",
            self.cluster, self.zone
        )
    }
}

/// The emails telling staff (or admins, where there are no staff) that a
/// drill failed: which check, which zone, and what happens next.
pub async fn failure_notices(
    app: &App,
    job: &RestoreJob,
    source: &Cluster,
) -> Result<Vec<NewOutboxMessage>, DeskError> {
    let mut staff = app.store.users_with_role(Role::Staff).await?;
    if staff.is_empty() {
        staff = app.store.users_with_role(Role::Admin).await?;
    }
    let check = failed_check(job);
    let zone = job
        .drill_zone
        .or(job.zone)
        .map_or("an unknown zone".to_string(), |z| z.to_string());
    let mut rows = Vec::new();
    for user in staff.iter().filter(|u| !u.disabled) {
        let time_zone = user.time_zone.parse::<Tz>().unwrap_or(Tz::UTC);
        let notice = FailedNotice {
            recipient_name: &user.display_name,
            cluster: &source.name,
            zone: zone.clone(),
            check: check.clone(),
            reason: job.last_error.clone().unwrap_or_default(),
            target: in_zone_and_utc(job.target_time, time_zone),
            host: job.host.clone().unwrap_or_else(|| "an unknown host".into()),
            link: format!("{}/staff/drills", app.settings.public_url()),
        };
        rows.push(NewOutboxMessage {
            id: Uuid::new_v4(),
            dedupe_key: format!("drill:{}:run{}:failed:{}", job.id, job.run, user.email),
            ticket_id: None,
            kind: "drill_failed".into(),
            recipient: user.email.to_string(),
            subject: notice.subject(),
            text_body: FailedText { n: &notice }.render()?,
            html_body: FailedHtml { n: &notice }.render()?,
            endpoint_id: None,
        });
    }
    Ok(rows)
}

/// A drill's end, counted where it ended: how long it took, by outcome.
pub fn record_metrics(job: &RestoreJob, source: &Cluster, passed: bool, now: DateTime<Utc>) {
    let outcome = if passed { "passed" } else { "failed" };
    let took = (now - job.created_at).max(Duration::zero());
    metrics::histogram!("restore_desk_drill_duration_seconds", "outcome" => outcome)
        .record(took.num_milliseconds() as f64 / 1000.0);
    metrics::counter!("restore_desk_drills_total", "outcome" => outcome).increment(1);
    tracing::info!(cluster = %source.name, zone = ?job.drill_zone, outcome, "restore test ended");
}

/// The newest passing drill of each cluster and zone, for the metrics page.
pub async fn last_passes(app: &App) -> Result<Vec<(String, Zone, DateTime<Utc>)>, DeskError> {
    let names: HashMap<ClusterId, String> = app
        .store
        .clusters(Scope::Everything, true)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let mut seen = HashMap::new();
    for (cluster_id, drills) in all(app).await? {
        for result in drills.results.iter().filter(|r| r.passed) {
            seen.entry((cluster_id, result.zone))
                .or_insert(result.finished_at);
        }
    }
    Ok(seen
        .into_iter()
        .filter_map(|((id, zone), at)| Some((names.get(&id)?.clone(), zone, at)))
        .collect())
}
