//! The admin pages: people, clusters, zones and injected faults, the
//! notification outbox and the audit log. Every change goes through
//! `desk::admin`, which stores it with its audit event.

use std::collections::HashMap;

use crate::domain::ids::{ClusterId, SubscriptionId, TicketId};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::common::{parse_id, people, times_for};
use super::register::{FIELDS as REGISTER_FIELDS, RegisterForm, RegisterSection};
use super::{Chrome, FormErrors, chrome, flash, refused, render};
use crate::app::App;
use crate::desk::admin::{self as admin_ops, FaultRequest, NewUser, UserChange};
use crate::desk::read::cluster_backups;
use crate::domain::actor::Role;
use crate::domain::catalog::Zone;
use crate::domain::restore_job::JobState;
use crate::store::{OutboxQuery, OutboxStatus, SandboxFault, Scope, User, ZoneStatus};
use crate::web::auth::{AdminUser, Viewer};
use crate::web::error::{AppError, AppResult};
use crate::web::views::{Stamp, clip, role_label};
use crate::web::{ValidForm, ValidPath, ValidQuery};

pub async fn index() -> Redirect {
    Redirect::to("/admin/users")
}

// ---------------------------------------------------------------- users

pub struct UserRow {
    pub user: User,
    pub subscription: String,
    pub created: Stamp,
    pub me: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    chrome: Chrome,
    rows: Vec<UserRow>,
    subscriptions: Vec<String>,
    form: UserForm,
    errors: FormErrors,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub subscription: String,
    #[serde(default)]
    pub time_zone: String,
    #[serde(default)]
    pub password: String,
}

impl UsersPage {
    /// `(value, label, selected)` for a role list showing `current`.
    fn roles(&self, current: &str) -> Vec<(&'static str, &'static str, bool)> {
        Role::PEOPLE
            .into_iter()
            .map(|r| (r.as_str(), role_label(r), r.as_str() == current))
            .collect()
    }
}

async fn users_page(
    app: &App,
    viewer: &Viewer,
    form: UserForm,
    errors: FormErrors,
) -> AppResult<Response> {
    let times = times_for(app, &viewer.user);
    let subscriptions = app.store.subscriptions().await?;
    let slugs: HashMap<SubscriptionId, String> = subscriptions
        .iter()
        .map(|s| (s.id, s.slug.clone()))
        .collect();
    let rows = app
        .store
        .users()
        .await?
        .into_iter()
        .map(|u| UserRow {
            subscription: u
                .subscription_id
                .and_then(|id| slugs.get(&id).cloned())
                .unwrap_or_default(),
            created: times.stamp(u.created_at),
            me: u.id == viewer.user.id,
            user: u,
        })
        .collect();
    let page = UsersPage {
        chrome: chrome(&viewer.session, Some(&viewer.user), "Users", "users").await?,
        rows,
        subscriptions: subscriptions.into_iter().map(|s| s.slug).collect(),
        form,
        errors,
    };
    render(StatusCode::OK, &page)
}

pub async fn users(State(app): State<App>, AdminUser(viewer): AdminUser) -> AppResult<Response> {
    let form = UserForm {
        role: "customer".into(),
        time_zone: "UTC".into(),
        ..UserForm::default()
    };
    users_page(&app, &viewer, form, FormErrors::default()).await
}

pub async fn create_user(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidForm(form): ValidForm<UserForm>,
) -> AppResult<Response> {
    let new = NewUser {
        email: form.email.clone(),
        display_name: form.display_name.clone(),
        role: form.role.clone(),
        subscription: form.subscription.clone(),
        time_zone: form.time_zone.clone(),
        password: form.password.clone(),
    };
    match admin_ops::create_user(&app, &viewer.user, &new).await {
        Ok(user) => {
            flash(
                &viewer.session,
                format!("{} can now sign in as {}.", user.email, user.role),
            )
            .await?;
            Ok(Redirect::to("/admin/users").into_response())
        }
        Err(error) => {
            let mut form = form;
            form.password.clear();
            refused(error.into(), |errors| {
                users_page(&app, &viewer, form, errors)
            })
            .await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct UserChangeForm {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub subscription: Option<String>,
    /// `disable` or `enable`.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

pub async fn update_user(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidPath(id): ValidPath<String>,
    ValidForm(form): ValidForm<UserChangeForm>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let change = UserChange {
        role: form.role.filter(|r| !r.is_empty()),
        subscription: form.subscription,
        disabled: match form.state.as_deref() {
            Some("disable") => Some(true),
            Some("enable") => Some(false),
            _ => None,
        },
        time_zone: form.time_zone.filter(|z| !z.is_empty()),
        password: form.password.filter(|p| !p.is_empty()),
    };
    match admin_ops::update_user(&app, &viewer.user, id, &change).await {
        Ok(user) => {
            flash(&viewer.session, format!("{} is updated.", user.email)).await?;
            Ok(Redirect::to("/admin/users").into_response())
        }
        Err(error) => {
            refused(error.into(), |errors| {
                users_page(&app, &viewer, UserForm::default(), errors)
            })
            .await
        }
    }
}

// ---------------------------------------------------------------- clusters

pub struct ClusterRow {
    pub id: ClusterId,
    pub name: String,
    pub subscription: String,
    pub place: String,
    pub config: String,
    pub status: &'static str,
    pub created: Stamp,
    pub deleted: Option<Stamp>,
    pub window: Option<(Stamp, Stamp)>,
    pub restored_from: Option<TicketId>,
    /// Why its restores are at risk: a zone's latest restore test failed.
    pub risk: Option<String>,
    /// "passed 25 Nov 2026, 13:00 CET": its last restore test.
    pub last_test: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/clusters.html")]
struct ClustersPage {
    chrome: Chrome,
    rows: Vec<ClusterRow>,
    errors: FormErrors,
    /// The form to register an existing cluster, when the fleet lists a
    /// source host.
    register: Option<RegisterSection>,
}

impl ClustersPage {
    /// Refusals about no field of the registration form.
    fn other_errors(&self) -> Vec<String> {
        self.errors.other(&REGISTER_FIELDS)
    }
}

pub(super) async fn clusters_page(
    app: &App,
    viewer: &Viewer,
    errors: FormErrors,
    form: RegisterForm,
) -> AppResult<Response> {
    let times = times_for(app, &viewer.user);
    let slugs: HashMap<SubscriptionId, String> = app
        .store
        .subscriptions()
        .await?
        .into_iter()
        .map(|s| (s.id, s.slug))
        .collect();
    let mut drills = crate::desk::drills::all(app).await?;
    let mut rows = Vec::new();
    for c in app.store.clusters(Scope::Everything, true).await? {
        let tested = drills.remove(&c.id).unwrap_or_default();
        let window = match cluster_backups(app, &c).await {
            Ok(backups) => backups.window,
            Err(e) => {
                tracing::warn!(error = %e, cluster = %c.name, "catalog unavailable");
                None
            }
        };
        rows.push(ClusterRow {
            id: c.id,
            subscription: slugs.get(&c.subscription_id).cloned().unwrap_or_default(),
            place: format!("{} / {}", c.resource_group, c.region),
            config: format!(
                "{}, {} vCores, {} GiB, {} node{}{}, PostgreSQL {}",
                c.config.tier,
                c.config.vcores,
                c.config.storage_gib,
                c.config.node_count,
                if c.config.node_count == 1 { "" } else { "s" },
                if c.config.high_availability {
                    ", HA"
                } else {
                    ""
                },
                c.config.server_version
            ),
            status: c.status.as_str(),
            created: times.stamp(c.created_at),
            deleted: times.maybe(c.deleted_at),
            window: window.map(|w| (times.stamp(w.earliest), times.stamp(w.latest))),
            restored_from: c.restored_from.as_ref().map(|r| r.ticket_id),
            risk: tested.risk_words(),
            last_test: tested.last().map(|r| {
                let outcome = if r.passed { "passed" } else { "failed" };
                format!("{outcome} {}", times.stamp(r.finished_at).local)
            }),
            name: c.name,
        });
    }
    let page = ClustersPage {
        chrome: chrome(
            &viewer.session,
            Some(&viewer.user),
            "Clusters",
            "admin-clusters",
        )
        .await?,
        rows,
        errors,
        register: RegisterSection::of(app, form).await?,
    };
    render(StatusCode::OK, &page)
}

pub async fn clusters(State(app): State<App>, AdminUser(viewer): AdminUser) -> AppResult<Response> {
    clusters_page(
        &app,
        &viewer,
        FormErrors::default(),
        RegisterForm::default(),
    )
    .await
}

/// A destructive act's form: ticked to confirm, with the reason the audit
/// trail keeps.
#[derive(Debug, Default, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    pub confirm: String,
    #[serde(default)]
    pub reason: String,
}

impl ConfirmForm {
    /// Refused unless confirmed and explained.
    fn checked(&self, what: &str) -> AppResult<&str> {
        if self.confirm != "yes" {
            return Err(AppError::invalid(
                "confirm",
                format!("Tick the box to confirm that you want to {what}"),
            ));
        }
        if self.reason.trim().is_empty() {
            return Err(AppError::invalid(
                "reason",
                format!("Say why you {what}: the audit trail keeps it"),
            ));
        }
        Ok(self.reason.as_str())
    }
}

pub async fn delete_cluster(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidPath(id): ValidPath<String>,
    ValidForm(form): ValidForm<ConfirmForm>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let reason = match form.checked("delete this cluster") {
        Ok(reason) => reason,
        Err(error) => {
            return refused(error, |errors| {
                clusters_page(&app, &viewer, errors, RegisterForm::default())
            })
            .await;
        }
    };
    match admin_ops::delete_cluster(&app, &viewer.user, id, Some(reason)).await {
        Ok(()) => {
            flash(
                &viewer.session,
                "The cluster is marked deleted; it stays restorable for 7 days.",
            )
            .await?;
            Ok(Redirect::to("/admin/clusters").into_response())
        }
        Err(error) => {
            refused(error.into(), |errors| {
                clusters_page(&app, &viewer, errors, RegisterForm::default())
            })
            .await
        }
    }
}

// ---------------------------------------------------------------- zones and faults

pub struct ZoneRow {
    pub zone: ZoneStatus,
    pub changed: Stamp,
    /// Its host across hosts and whether it answered just now.
    pub reach: Option<(String, bool)>,
}

pub struct FaultRow {
    pub fault: SandboxFault,
    pub created: Stamp,
}

#[derive(Template)]
#[template(path = "admin/zones.html")]
struct ZonesPage {
    chrome: Chrome,
    zones: Vec<ZoneRow>,
    faults: Vec<FaultRow>,
    steps: Vec<(&'static str, &'static str)>,
    sandbox: bool,
    /// How long a zone host has to answer.
    answer_seconds: u64,
    errors: FormErrors,
}

impl ZonesPage {
    /// Whether the zones are hosts of their own.
    fn networked(&self) -> bool {
        self.zones.iter().any(|z| z.reach.is_some())
    }
}

async fn zones_page(app: &App, viewer: &Viewer, errors: FormErrors) -> AppResult<Response> {
    let times = times_for(app, &viewer.user);
    let reach = crate::desk::hosts::zone_reach(app).await?;
    let zones = app
        .store
        .zones()
        .await?
        .into_iter()
        .map(|z| ZoneRow {
            changed: times.stamp(z.changed_at),
            reach: reach
                .iter()
                .find(|r| r.zone == z.zone)
                .map(|r| (r.host.clone(), r.answering)),
            zone: z,
        })
        .collect();
    let faults = app
        .sandbox
        .faults()
        .await?
        .into_iter()
        .map(|f| FaultRow {
            created: times.stamp(f.created_at),
            fault: f,
        })
        .collect();
    let page = ZonesPage {
        chrome: chrome(
            &viewer.session,
            Some(&viewer.user),
            "Zones and faults",
            "zones",
        )
        .await?,
        zones,
        faults,
        steps: JobState::STEPS
            .into_iter()
            .map(|s| (s.as_str(), s.label()))
            .collect(),
        sandbox: app.backend.name() == "sandbox",
        answer_seconds: crate::domain::host::ZONE_ANSWER_SECONDS,
        errors,
    };
    render(StatusCode::OK, &page)
}

pub async fn zones(State(app): State<App>, AdminUser(viewer): AdminUser) -> AppResult<Response> {
    zones_page(&app, &viewer, FormErrors::default()).await
}

pub async fn set_zone(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidPath((region, zone, state)): ValidPath<(String, String, String)>,
    ValidForm(form): ValidForm<ConfirmForm>,
) -> AppResult<Response> {
    let zone: Zone = zone.parse().map_err(|_| AppError::not_found())?;
    let online = match state.as_str() {
        "online" => true,
        "offline" => false,
        _ => return Err(AppError::not_found()),
    };
    // Taking a zone offline stops restores from it: confirmed, with a reason.
    let reason = if online {
        Some(form.reason.as_str())
    } else {
        match form.checked("take this zone offline") {
            Ok(reason) => Some(reason),
            Err(error) => return refused(error, |errors| zones_page(&app, &viewer, errors)).await,
        }
    };
    match admin_ops::set_zone(&app, &viewer.user, &region, zone, online, reason).await {
        Ok(()) => {
            flash(
                &viewer.session,
                format!(
                    "{region}/{zone} is {}.",
                    if online { "online" } else { "offline" }
                ),
            )
            .await?;
            Ok(Redirect::to("/admin/zones").into_response())
        }
        Err(error) => refused(error.into(), |errors| zones_page(&app, &viewer, errors)).await,
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct FaultForm {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub step: String,
    #[serde(default)]
    pub permanent: Option<String>,
    #[serde(default)]
    pub times: String,
    #[serde(default)]
    pub delay_ms: String,
}

pub async fn add_fault(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidForm(form): ValidForm<FaultForm>,
) -> AppResult<Response> {
    let request = FaultRequest {
        kind: form.kind,
        step: form.step,
        permanent: form.permanent.is_some(),
        times: form.times.trim().parse().unwrap_or(0),
        delay_ms: form.delay_ms.trim().parse().unwrap_or(0),
    };
    match admin_ops::add_fault(&app, &viewer.user, &request).await {
        Ok(_) => {
            flash(&viewer.session, "The fault is armed.").await?;
            Ok(Redirect::to("/admin/zones").into_response())
        }
        Err(error) => refused(error.into(), |errors| zones_page(&app, &viewer, errors)).await,
    }
}

pub async fn clear_faults(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
) -> AppResult<Response> {
    admin_ops::clear_faults(&app, &viewer.user)
        .await
        .map_err(AppError::from)?;
    flash(&viewer.session, "All faults are cleared.").await?;
    Ok(Redirect::to("/admin/zones").into_response())
}

// ---------------------------------------------------------------- outbox

pub struct OutboxRow {
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub status: &'static str,
    pub attempts: i64,
    pub next_attempt: Stamp,
    pub last_error: Option<String>,
    pub created: Stamp,
    pub sent: Option<Stamp>,
    pub ticket_id: Option<TicketId>,
    pub text_body: String,
}

#[derive(Template)]
#[template(path = "admin/outbox.html")]
struct OutboxPage {
    chrome: Chrome,
    rows: Vec<OutboxRow>,
    counts: Vec<(String, i64)>,
    status: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct OutboxFilter {
    #[serde(default)]
    pub status: String,
}

pub async fn outbox(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidQuery(q): ValidQuery<OutboxFilter>,
) -> AppResult<Response> {
    let times = times_for(&app, &viewer.user);
    let status = match q.status.trim() {
        "" => None,
        other => Some(
            other
                .parse::<OutboxStatus>()
                .map_err(|e| AppError::invalid("status", e))?,
        ),
    };
    let rows = app
        .store
        .outbox(&OutboxQuery {
            status,
            ticket_id: None,
            limit: 200,
        })
        .await?
        .into_iter()
        .map(|m| OutboxRow {
            kind: m.kind,
            recipient: m.recipient,
            subject: m.subject,
            status: m.status.as_str(),
            attempts: m.attempts,
            next_attempt: times.stamp(m.next_attempt_at),
            last_error: m.last_error,
            created: times.stamp(m.created_at),
            sent: times.maybe(m.sent_at),
            ticket_id: m.ticket_id,
            text_body: m.text_body,
        })
        .collect();
    let page = OutboxPage {
        chrome: chrome(&viewer.session, Some(&viewer.user), "Outbox", "outbox").await?,
        rows,
        counts: app.store.outbox_counts().await?,
        status: q.status.trim().to_string(),
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- audit log

pub struct AuditRow {
    pub id: i64,
    pub at: Stamp,
    pub actor: String,
    pub action: String,
    pub change: Option<String>,
    pub detail: String,
    pub ticket: Option<(TicketId, String)>,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Chrome,
    rows: Vec<AuditRow>,
    older: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    pub before: Option<i64>,
}

const AUDIT_PAGE: i64 = 100;

pub async fn audit(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidQuery(q): ValidQuery<AuditQuery>,
) -> AppResult<Response> {
    let times = times_for(&app, &viewer.user);
    let events = app.store.audit_log(q.before, AUDIT_PAGE).await?;
    let older = (events.len() as i64 == AUDIT_PAGE)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    let names = people(&app, events.iter().filter_map(|e| e.actor_id).collect()).await?;
    let mut references: HashMap<TicketId, String> = HashMap::new();
    for id in events.iter().filter_map(|e| e.ticket_id) {
        if references.contains_key(&id) {
            continue;
        }
        if let Some(t) = app.store.ticket(id, Scope::Everything).await? {
            references.insert(id, t.reference());
        }
    }
    let rows = events
        .into_iter()
        .map(|e| AuditRow {
            id: e.id,
            at: times.stamp(e.created_at),
            actor: e
                .actor_id
                .and_then(|id| names.get(&id).cloned())
                .map(|n| format!("{n} ({})", e.actor_role))
                .unwrap_or_else(|| role_label(e.actor_role).to_string()),
            action: e.action.label().to_string(),
            change: match (&e.from_state, &e.to_state) {
                (Some(from), Some(to)) if from != to => Some(format!("{from} → {to}")),
                (None, Some(to)) => Some(format!("→ {to}")),
                _ => None,
            },
            detail: clip(&e.detail, 200),
            ticket: e
                .ticket_id
                .and_then(|id| references.get(&id).map(|r| (id, r.clone()))),
        })
        .collect();
    let page = AuditPage {
        chrome: chrome(&viewer.session, Some(&viewer.user), "Audit log", "audit").await?,
        rows,
        older,
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- ratings

#[derive(Template)]
#[template(path = "admin/ratings.html")]
struct RatingsPage {
    chrome: Chrome,
    by_engineer: Vec<crate::desk::verdicts::RatingRow>,
    by_month: Vec<crate::desk::verdicts::RatingRow>,
}

/// Customers' ratings by engineer and by month.
pub async fn ratings(State(app): State<App>, AdminUser(viewer): AdminUser) -> AppResult<Response> {
    let (by_engineer, by_month) = crate::desk::verdicts::ratings(&app, &viewer.user).await?;
    let page = RatingsPage {
        chrome: chrome(&viewer.session, Some(&viewer.user), "Ratings", "ratings").await?,
        by_engineer,
        by_month,
    };
    render(StatusCode::OK, &page)
}
