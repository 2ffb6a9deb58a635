//! Restore tests (drills) for staff: each live cluster's last result per
//! zone with its trend, whether its restores are at risk, the test running
//! now, and the recent tests. Admins also start a test now and set how a
//! cluster is tested; both go through `desk::drills`.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::common::{cluster_names, parse_id, times_for};
use super::{Chrome, FormErrors, chrome, flash, refused, render};
use crate::app::App;
use crate::desk::drills::{self, ClusterDrills};
use crate::domain::catalog::Zone;
use crate::domain::drill::DrillResult;
use crate::domain::eta;
use crate::domain::ids::{ClusterId, SubscriptionId};
use crate::domain::restore_job::{JobKind, JobState};
use crate::store::{DrillRecord, Scope};
use crate::web::auth::{AdminUser, StaffUser, Viewer};
use crate::web::error::{AppError, AppResult};
use crate::web::views::{Stamp, Times};
use crate::web::{ValidForm, ValidPath};

/// How many of a zone's latest results its trend shows.
const TREND: usize = 5;
/// How many tests the list of recent ones shows.
const RECENT: i64 = 30;

/// A finished test as a page shows it.
pub struct ResultView {
    pub passed: bool,
    pub finished: Stamp,
    /// "41 s"
    pub took: String,
    pub failed_check: Option<String>,
}

impl ResultView {
    fn of(result: &DrillResult, times: &Times) -> ResultView {
        ResultView {
            passed: result.passed,
            finished: times.stamp(result.finished_at),
            took: eta::words(result.duration()),
            failed_check: result.failed_check.clone(),
        }
    }

    /// "passed 25 Nov 2026, 13:00 CET": a trend mark's text alternative.
    pub fn words(&self) -> String {
        let outcome = if self.passed { "passed" } else { "failed" };
        format!("{outcome} {}", self.finished.local)
    }
}

/// One zone of a cluster: its latest result and the ones before it.
pub struct ZoneCell {
    pub zone: &'static str,
    /// Newest first; the first is the latest result.
    pub trend: Vec<ResultView>,
}

impl ZoneCell {
    pub fn last(&self) -> Option<&ResultView> {
        self.trend.first()
    }

    /// What the trend's marks are, for a screen reader.
    pub fn trend_label(&self) -> String {
        match self.trend.len() {
            1 => format!("The last test from {}", self.zone),
            n => format!("The last {n} tests from {}, newest first", self.zone),
        }
    }
}

/// The test running or waiting now.
pub struct RunningView {
    pub zone: String,
    pub step: &'static str,
    pub progress: i64,
}

/// The settings form of one cluster: what is stored, or what was typed and
/// why it was refused.
pub struct SettingsView {
    pub interval: String,
    pub canary: String,
    /// Opened: it holds a refusal.
    pub open: bool,
    pub interval_errors: Vec<String>,
    pub canary_errors: Vec<String>,
}

pub struct ClusterRow {
    pub id: ClusterId,
    pub name: String,
    pub subscription: String,
    /// "the restore test from az3 failed (snapshot restore)", while a
    /// zone's latest test failed.
    pub risk: Option<String>,
    pub zones: Vec<ZoneCell>,
    pub running: Option<RunningView>,
    /// Admins only.
    pub settings: Option<SettingsView>,
}

pub struct RecentRow {
    pub cluster: String,
    pub zone: String,
    pub host: String,
    pub target: Stamp,
    pub started: Option<Stamp>,
    pub took: Option<String>,
    /// `(badge class, words)`.
    pub outcome: (&'static str, &'static str),
    /// While it runs: its step and progress.
    pub running: Option<String>,
    pub failed_check: Option<String>,
    pub reason: Option<String>,
}

#[derive(Template)]
#[template(path = "staff/drills.html")]
struct DrillsPage {
    chrome: Chrome,
    rows: Vec<ClusterRow>,
    recent: Vec<RecentRow>,
    admin: bool,
    /// The zones, as the table's columns.
    zones: Vec<&'static str>,
    /// The desk's interval, for the placeholder of a cluster's own.
    /// The desk's interval in hours; none when it schedules no tests.
    default_interval: Option<i64>,
    zone: &'static str,
    /// Refusals that belong to no field of a form (a test that cannot start).
    other_errors: Vec<String>,
}

/// A settings form that was refused: shown again as typed, with why.
struct Typed {
    cluster_id: ClusterId,
    form: SettingsForm,
}

fn zone_cells(drills: &ClusterDrills, times: &Times) -> Vec<ZoneCell> {
    Zone::ALL
        .into_iter()
        .map(|zone| ZoneCell {
            zone: zone.as_str(),
            trend: drills
                .in_zone(zone, TREND)
                .into_iter()
                .map(|r| ResultView::of(r, times))
                .collect(),
        })
        .collect()
}

fn recent_row(record: &DrillRecord, cluster: String, times: &Times) -> RecentRow {
    let job = &record.job;
    let result = drills::result_of(record);
    let outcome = match (&result, job.state) {
        (Some(r), _) if r.passed => ("done", "passed"),
        (Some(_), _) => ("bad", "failed"),
        (None, JobState::Cancelled) => ("muted", "cancelled"),
        (None, JobState::Queued) => ("new", "waiting"),
        (None, JobState::Preempted) => ("waiting", "giving way"),
        (None, _) => ("active", "running"),
    };
    let took = match (&result, record.started_at, job.finished_at) {
        (Some(r), _, _) => Some(eta::words(r.duration())),
        (None, Some(started), Some(finished)) => Some(eta::words(finished - started)),
        _ => None,
    };
    RecentRow {
        cluster,
        zone: job
            .drill_zone
            .or(job.zone)
            .map_or_else(|| "—".to_string(), |z| z.to_string()),
        host: job.host.clone().unwrap_or_else(|| "—".into()),
        target: times.precise(job.target_time),
        started: times.maybe(record.started_at),
        took,
        outcome,
        running: (!job.state.is_terminal()).then(|| {
            format!(
                "{} · {}%",
                job.state.label_for(JobKind::Drill),
                job.progress.clamp(0, 100)
            )
        }),
        failed_check: result.as_ref().and_then(|r| r.failed_check.clone()),
        reason: result.and_then(|r| r.reason),
    }
}

async fn drills_page(
    app: &App,
    viewer: &Viewer,
    typed: Option<Typed>,
    errors: FormErrors,
) -> AppResult<Response> {
    let times = times_for(app, &viewer.user);
    let admin = viewer.user.role == crate::domain::actor::Role::Admin;
    let slugs: HashMap<SubscriptionId, String> = app
        .store
        .subscriptions()
        .await?
        .into_iter()
        .map(|s| (s.id, s.slug))
        .collect();
    let mut all = drills::all(app).await?;
    let mut rows = Vec::new();
    for cluster in app.store.clusters(Scope::Everything, false).await? {
        let tested = all.remove(&cluster.id).unwrap_or_default();
        let settings = if admin {
            let refused = typed.as_ref().filter(|t| t.cluster_id == cluster.id);
            Some(match refused {
                Some(t) => SettingsView {
                    interval: t.form.interval_hours.clone(),
                    canary: t.form.canary.clone(),
                    open: true,
                    interval_errors: errors.on(&["interval_hours"]),
                    canary_errors: errors.on(&["canary"]),
                },
                None => {
                    let stored = app.store.drill_settings(cluster.id).await?;
                    SettingsView {
                        interval: stored
                            .interval_hours
                            .map(|h| h.to_string())
                            .unwrap_or_default(),
                        canary: stored
                            .canary
                            .map(|c| c.as_str().to_string())
                            .unwrap_or_default(),
                        open: false,
                        interval_errors: Vec::new(),
                        canary_errors: Vec::new(),
                    }
                }
            })
        } else {
            None
        };
        rows.push(ClusterRow {
            id: cluster.id,
            subscription: slugs
                .get(&cluster.subscription_id)
                .cloned()
                .unwrap_or_default(),
            risk: tested.risk_words(),
            zones: zone_cells(&tested, &times),
            running: tested.active.as_ref().map(|job| RunningView {
                zone: job
                    .drill_zone
                    .or(job.zone)
                    .map_or_else(String::new, |z| z.to_string()),
                step: job.state.label_for(JobKind::Drill),
                progress: job.progress.clamp(0, 100),
            }),
            settings,
            name: cluster.name,
        });
    }
    let names = cluster_names(app, Scope::Everything).await?;
    let recent = app
        .store
        .drills(None, RECENT)
        .await?
        .iter()
        .map(|r| {
            let name = names.get(&r.job.source_cluster_id).cloned();
            recent_row(r, name.unwrap_or_default(), &times)
        })
        .collect();
    let page = DrillsPage {
        chrome: chrome(
            &viewer.session,
            Some(&viewer.user),
            "Restore tests",
            "drills",
        )
        .await?,
        rows,
        recent,
        admin,
        zones: Zone::ALL.map(Zone::as_str).to_vec(),
        default_interval: app.settings.drill_interval(None).map(|d| d.num_hours()),
        zone: times.zone_name(),
        other_errors: errors.other(&["interval_hours", "canary"]),
    };
    render(StatusCode::OK, &page)
}

/// `GET /staff/drills`.
pub async fn page(State(app): State<App>, StaffUser(viewer): StaffUser) -> AppResult<Response> {
    drills_page(&app, &viewer, None, FormErrors::default()).await
}

/// `POST /staff/drills/{cluster_id}/start`: admins test a cluster now.
pub async fn start(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    match drills::start_now(&app, &viewer.user, id).await {
        Ok(_) => {
            let name = app.cluster_name(id).await?.unwrap_or_default();
            flash(
                &viewer.session,
                format!("A restore test of {name} is queued; this page shows how it goes."),
            )
            .await?;
            Ok(Redirect::to("/staff/drills").into_response())
        }
        Err(error) => {
            refused(error.into(), |errors| {
                drills_page(&app, &viewer, None, errors)
            })
            .await
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SettingsForm {
    /// Empty: the desk's interval.
    #[serde(default)]
    pub interval_hours: String,
    /// Empty: no canary.
    #[serde(default)]
    pub canary: String,
}

/// `POST /admin/clusters/{id}/drill-settings`: admins set how a cluster is
/// tested; a refusal shows the form again as typed, with why.
pub async fn save_settings(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidPath(id): ValidPath<String>,
    ValidForm(form): ValidForm<SettingsForm>,
) -> AppResult<Response> {
    let id: ClusterId = parse_id(&id)?;
    let interval = match form.interval_hours.trim() {
        "" => Ok(None),
        text => text.parse::<i64>().map(Some).map_err(|_| {
            AppError::invalid(
                "interval_hours",
                format!(
                    "Give the interval in whole hours, 1 to {}, or leave it empty for the \
                     desk's",
                    drills::MAX_INTERVAL_HOURS
                ),
            )
        }),
    };
    let saved = match interval {
        Ok(hours) => drills::set_settings(&app, &viewer.user, id, hours, Some(&form.canary))
            .await
            .map_err(AppError::from),
        Err(error) => Err(error),
    };
    match saved {
        Ok(_) => {
            let name = app.cluster_name(id).await?.unwrap_or_default();
            flash(&viewer.session, format!("How {name} is tested is saved.")).await?;
            Ok(Redirect::to("/staff/drills").into_response())
        }
        Err(error) => {
            let typed = Typed {
                cluster_id: id,
                form,
            };
            refused(error, |errors| {
                drills_page(&app, &viewer, Some(typed), errors)
            })
            .await
        }
    }
}
