//! The customer portal: clusters with their restorable windows, the Help +
//! support entry, the restore request form with its live check, my
//! requests, and the ticket page with messages, cancel and live progress.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use crate::domain::ids::{ClusterId, TicketId};
use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::common;
use super::common::{
    ClusterCard, EventView, JobView, MessageView, TicketRow, cluster_card, cluster_names,
    event_views, fileable, job_view, message_views, parse_id, people, state_class, ticket_row,
    times_for,
};
use super::{Chrome, FormErrors, chrome, flash, render};
use crate::app::App;
use crate::desk::read::cluster_backups;
use crate::desk::{self, FilingRequest, scope_for};
use crate::domain::cluster::Cluster;
use crate::domain::sla::Severity;
use crate::domain::ticket::TicketCommand;
use crate::domain::validation::{
    TargetInput, TargetTime, fold_offsets, format_offset, parse_target,
};
use crate::store::{AssigneeFilter, TicketOrder, TicketQuery, User};
use crate::web::auth::{ClientAddr, CustomerUser};
use crate::web::error::{AppError, AppResult, ErrorCode, FieldError};
use crate::web::limits::Limits;
use crate::web::timeline;
use crate::web::views::{Stamp, precise_in, zone_of};
use crate::web::{ValidForm, ValidPath, ValidQuery};

// ---------------------------------------------------------------- clusters

#[derive(Template)]
#[template(path = "customer/clusters.html")]
struct ClustersPage {
    chrome: Chrome,
    cards: Vec<ClusterCard>,
    zone: &'static str,
}

pub async fn clusters(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
) -> AppResult<Response> {
    let times = times_for(&app, &viewer.user);
    let mut cards = Vec::new();
    for cluster in app.store.clusters(scope_for(&viewer.user), true).await? {
        if cluster.deleted_at.is_some() && !fileable(&app, &cluster) {
            continue;
        }
        cards.push(cluster_card(&app, cluster, &times, None).await?);
    }
    let page = ClustersPage {
        chrome: chrome(&viewer.session, Some(&viewer.user), "Clusters", "clusters").await?,
        cards,
        zone: times.zone_name(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Debug, Default, Deserialize)]
pub struct TargetQuery {
    #[serde(default)]
    target: String,
}

#[derive(Template)]
#[template(path = "customer/cluster.html")]
struct ClusterPage {
    chrome: Chrome,
    card: ClusterCard,
    fileable: bool,
    restored_from: Option<(TicketId, Stamp)>,
    tickets: Vec<TicketRow>,
    zone: &'static str,
}

pub async fn cluster(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidPath(id): ValidPath<String>,
    ValidQuery(q): ValidQuery<TargetQuery>,
) -> AppResult<Response> {
    let scope = scope_for(&viewer.user);
    let cluster = app
        .store
        .cluster(parse_id(&id)?, scope)
        .await?
        .ok_or_else(AppError::not_found)?;
    let times = times_for(&app, &viewer.user);
    let target = DateTime::parse_from_rfc3339(q.target.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc));
    let tickets = app
        .store
        .tickets(&TicketQuery {
            scope,
            states: vec![],
            severity: None,
            assignee: AssigneeFilter::Anyone,
            order: TicketOrder::Newest { before: None },
            limit: 200,
        })
        .await?;
    let names = HashMap::from([(cluster.id, cluster.name.clone())]);
    let rows = tickets
        .into_iter()
        .filter(|t| t.cluster_id == cluster.id)
        .take(20)
        .map(|t| ticket_row(t, &times, &names, &HashMap::new(), None))
        .collect();
    let restored_from = cluster
        .restored_from
        .as_ref()
        .map(|r| (r.ticket_id, times.stamp(r.point_in_time)));
    let page = ClusterPage {
        chrome: chrome(
            &viewer.session,
            Some(&viewer.user),
            cluster.name.clone(),
            "clusters",
        )
        .await?,
        fileable: fileable(&app, &cluster),
        card: cluster_card(&app, cluster, &times, target).await?,
        restored_from,
        tickets: rows,
        zone: times.zone_name(),
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- Help + support

#[derive(Template)]
#[template(path = "customer/support.html")]
struct SupportPage {
    chrome: Chrome,
    open: usize,
}

/// Help + support: where a customer starts a request.
pub async fn support(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
) -> AppResult<Response> {
    let open = app
        .store
        .count_tickets(
            scope_for(&viewer.user),
            &crate::domain::ticket::TicketState::ALL
                .into_iter()
                .filter(|s| !s.is_terminal())
                .collect::<Vec<_>>(),
        )
        .await?;
    let page = SupportPage {
        chrome: chrome(
            &viewer.session,
            Some(&viewer.user),
            "Help + support",
            "support",
        )
        .await?,
        open: usize::try_from(open).unwrap_or(0),
    };
    render(StatusCode::OK, &page)
}

/// The problem types the desk handles; restores are the one this desk works.
pub const RESTORE_PROBLEM: &str = "restore";

#[derive(Template)]
#[template(path = "customer/support_new.html")]
struct SupportNewPage {
    chrome: Chrome,
    clusters: Vec<ClusterOption>,
}

pub async fn support_new(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
) -> AppResult<Response> {
    let page = SupportNewPage {
        chrome: chrome(
            &viewer.session,
            Some(&viewer.user),
            "Create a support request",
            "support",
        )
        .await?,
        clusters: cluster_options(&app, &viewer.user, None).await?,
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- the request form

pub struct ClusterOption {
    pub id: String,
    pub label: String,
    pub selected: bool,
}

async fn fileable_clusters(app: &App, user: &User) -> AppResult<Vec<Cluster>> {
    Ok(app
        .store
        .clusters(scope_for(user), true)
        .await?
        .into_iter()
        .filter(|c| fileable(app, c))
        .collect())
}

async fn cluster_options(
    app: &App,
    user: &User,
    selected: Option<&str>,
) -> AppResult<Vec<ClusterOption>> {
    Ok(fileable_clusters(app, user)
        .await?
        .into_iter()
        .map(|c| ClusterOption {
            selected: selected == Some(c.id.to_string().as_str()),
            label: match c.deleted_at {
                Some(_) => format!("{} (deleted) — {} / {}", c.name, c.resource_group, c.region),
                None => format!("{} — {} / {}", c.name, c.resource_group, c.region),
            },
            id: c.id.to_string(),
        })
        .collect())
}

/// IANA zones for the time zone list: the canonical `Area/City` names and UTC.
static ZONES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut zones: Vec<&'static str> = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .filter(|name| {
            name.contains('/')
                && !name.starts_with("Etc/")
                && !name.starts_with("SystemV/")
                && !name.starts_with("US/")
                && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        })
        .collect();
    zones.push("UTC");
    zones.sort_unstable();
    zones
});

/// The request form as typed. Every field is text, so what the customer
/// typed comes back unchanged when something is refused.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    pub cluster_id: String,
    #[serde(default)]
    pub date: String,
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub time_zone: String,
    #[serde(default)]
    pub utc_offset: String,
    #[serde(default)]
    pub new_cluster_name: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub description: String,
    /// `check` only checks; anything else files.
    #[serde(default)]
    pub intent: String,
}

impl RequestForm {
    fn local_time(&self) -> String {
        let (date, time) = (self.date.trim(), self.time.trim());
        if date.is_empty() || time.is_empty() {
            String::new()
        } else {
            format!("{date}T{time}")
        }
    }

    fn severity(&self) -> Option<Severity> {
        Severity::parse_typed(&self.severity).ok()
    }

    fn filing(&self) -> FilingRequest {
        FilingRequest {
            cluster_id: self.cluster_id.parse().ok(),
            target: TargetInput::Local {
                local_time: self.local_time(),
                time_zone: self.time_zone.clone(),
                utc_offset: Some(self.utc_offset.clone()).filter(|o| !o.trim().is_empty()),
            },
            new_cluster_name: self.new_cluster_name.clone(),
            // An unknown severity is refused by `assess` before anything is filed.
            severity: self.severity().unwrap_or(Severity::C),
            description: self.description.clone(),
        }
    }
}

/// The answer of the live check, as the form and its script show it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Preview {
    pub ok: bool,
    /// The target in UTC, RFC 3339, once the date and time parse.
    pub utc: Option<String>,
    pub utc_text: Option<String>,
    pub local_text: Option<String>,
    pub plan_text: Option<String>,
    pub window_text: Option<String>,
    pub deadline_text: Option<String>,
    /// The two readings of a time that happens twice, e.g. `+02:00`, `+01:00`.
    pub fold_offsets: Vec<String>,
    pub errors: Vec<FieldError>,
    /// Where the target sits on the cluster's timeline.
    pub target_marker: Option<crate::web::timeline::Marker>,
}

/// What the check of a form found: the preview to show, and the refusal.
struct Assessment {
    preview: Preview,
    error: Option<AppError>,
}

/// Runs `desk::check_request` on what was typed and prepares what the
/// customer reads: the UTC equivalent, the plan, or every refusal.
async fn assess(app: &App, user: &User, form: &RequestForm) -> Assessment {
    let request = form.filing();
    let entered = zone_of(&form.time_zone);
    let reader = zone_of(&user.time_zone);
    let parsed: Option<TargetTime> = parse_target(&request.target).ok();
    let local_time = form.local_time();
    let mut preview = Preview {
        utc: parsed.map(|t| crate::web::views::iso(t.utc)),
        utc_text: parsed.map(|t| t.utc.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        local_text: parsed.map(|t| format!("{} ({})", precise_in(t.utc, entered), entered.name())),
        fold_offsets: form
            .time_zone
            .parse::<Tz>()
            .map(|tz| fold_offsets(&local_time, tz))
            .unwrap_or_default()
            .into_iter()
            .map(format_offset)
            .collect(),
        ..Preview::default()
    };
    let mut errors = Vec::new();
    if form.severity().is_none() {
        errors.push(FieldError {
            code: ErrorCode::InvalidInput,
            message: "Choose a severity: A, B or C".into(),
            field: Some("severity".into()),
        });
    }
    let error = match desk::check_request(app, user, &request).await {
        Ok(checked) => {
            preview.plan_text = Some(format!(
                "Restorable: from snapshot {} in {}, with the log replayed to the target",
                checked.plan.snapshot_id, checked.plan.zone
            ));
            preview.deadline_text = Some(format!(
                "This moment stays restorable until {}",
                precise_in(checked.deadline, reader)
            ));
            None
        }
        Err(e) => {
            let error = AppError::from(e);
            for mut e in error.field_errors() {
                if local_time.is_empty()
                    && matches!(e.field.as_deref(), Some("local_time" | "target_time"))
                {
                    e.message = "Enter the date and the time to restore to".into();
                }
                errors.push(e);
            }
            Some(error)
        }
    };
    preview.ok = errors.is_empty();
    preview.errors = errors;
    // The chosen cluster's window, and where the target falls on its timeline.
    if let Some(cluster_id) = request.cluster_id
        && let Ok(Some(cluster)) = app.store.cluster(cluster_id, scope_for(user)).await
        && let Ok(backups) = cluster_backups(app, &cluster).await
    {
        let (now, window) = (backups.now, backups.window);
        preview.target_marker =
            parsed.map(|t| timeline::target_marker(t.utc, window, now, &app.policy(), reader));
        preview.window_text = window.map(|w| {
            format!(
                "{} can be restored to a moment from {} to {}",
                cluster.name,
                precise_in(w.earliest, reader),
                precise_in(w.latest, reader)
            )
        });
    }
    Assessment { preview, error }
}

#[derive(Template)]
#[template(path = "customer/request_form.html")]
struct RequestPage {
    chrome: Chrome,
    form: RequestForm,
    clusters: Vec<ClusterOption>,
    zones: &'static [&'static str],
    errors: FormErrors,
    preview: Option<Preview>,
    card: Option<ClusterCard>,
    /// The time zone list follows the browser until the customer picks one.
    zone_from_browser: bool,
}

impl RequestPage {
    fn folds(&self) -> Vec<String> {
        self.preview
            .as_ref()
            .map(|p| p.fold_offsets.clone())
            .unwrap_or_default()
    }

    fn is_zone(&self, zone: &str) -> bool {
        self.form.time_zone == zone
    }

    fn severities(&self) -> Vec<(&'static str, &'static str, bool)> {
        Severity::ALL
            .into_iter()
            .map(|s| (s.as_str(), s.describe(), self.form.severity == s.as_str()))
            .collect()
    }
}

async fn request_page(
    app: &App,
    viewer: &crate::web::auth::Viewer,
    form: RequestForm,
    errors: FormErrors,
    preview: Option<Preview>,
    zone_from_browser: bool,
) -> AppResult<RequestPage> {
    let user = &viewer.user;
    let times = times_for(app, user);
    let target = preview
        .as_ref()
        .and_then(|p| p.utc.as_deref())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let card = match form.cluster_id.parse::<ClusterId>() {
        Ok(id) => match app.store.cluster(id, scope_for(user)).await? {
            Some(cluster) => Some(cluster_card(app, cluster, &times, target).await?),
            None => None,
        },
        Err(_) => None,
    };
    Ok(RequestPage {
        chrome: chrome(
            &viewer.session,
            Some(user),
            "Restore a cluster from a backup",
            "support",
        )
        .await?,
        clusters: cluster_options(app, user, Some(form.cluster_id.trim())).await?,
        zones: ZONES.as_slice(),
        errors,
        preview,
        card,
        zone_from_browser,
        form,
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct NewRequestQuery {
    #[serde(default)]
    cluster: String,
}

pub async fn new_request(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidQuery(q): ValidQuery<NewRequestQuery>,
) -> AppResult<Response> {
    let times = times_for(&app, &viewer.user);
    let clusters = fileable_clusters(&app, &viewer.user).await?;
    let chosen = clusters
        .iter()
        .find(|c| c.id.to_string() == q.cluster.trim());
    let local_now = times.now.with_timezone(&times.zone);
    let form = RequestForm {
        cluster_id: chosen.map(|c| c.id.to_string()).unwrap_or_default(),
        date: local_now.format("%Y-%m-%d").to_string(),
        time: String::new(),
        time_zone: times.zone_name().to_string(),
        new_cluster_name: chosen
            .map(|c| format!("{}-restored", c.name))
            .unwrap_or_default(),
        severity: "B".into(),
        ..RequestForm::default()
    };
    let page = request_page(&app, &viewer, form, FormErrors::default(), None, true).await?;
    render(StatusCode::OK, &page)
}

/// `POST /requests`: checks (`intent=check`) or files the request.
pub async fn file_request(
    State(app): State<App>,
    State(limits): State<Arc<Limits>>,
    CustomerUser(viewer): CustomerUser,
    ClientAddr(addr): ClientAddr,
    ValidForm(form): ValidForm<RequestForm>,
) -> AppResult<Response> {
    let checking = form.intent == "check";
    if !checking && let Err(limited) = limits.filing(viewer.user.id, addr) {
        let errors = FormErrors(vec![FieldError {
            code: limited.code,
            message: limited.message.clone(),
            field: None,
        }]);
        let page = request_page(&app, &viewer, form, errors, None, false).await?;
        let mut response = render(StatusCode::TOO_MANY_REQUESTS, &page)?;
        if let Some(wait) = limited.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, wait.into());
        }
        return Ok(response);
    }
    let assessment = assess(&app, &viewer.user, &form).await;
    if checking || !assessment.preview.ok {
        let status = if assessment.preview.ok {
            StatusCode::OK
        } else {
            assessment
                .error
                .as_ref()
                .map(|e| e.status)
                .filter(|s| s.is_server_error() || *s == StatusCode::FORBIDDEN)
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
        };
        let errors = FormErrors(assessment.preview.errors.clone());
        let page =
            request_page(&app, &viewer, form, errors, Some(assessment.preview), false).await?;
        return render(status, &page);
    }
    let request = form.filing();
    match desk::file_ticket(&app, &viewer.user, &request).await {
        Ok(ticket) => {
            flash(
                &viewer.session,
                format!(
                    "Request {} is filed. We emailed you a confirmation; an engineer will pick \
                     it up.",
                    ticket.reference()
                ),
            )
            .await?;
            Ok(Redirect::to(&format!("/tickets/{}", ticket.id)).into_response())
        }
        Err(error) => {
            // The window may have moved, or the name was taken, since the check.
            let error = AppError::from(error);
            if error.status.is_server_error() {
                return Err(error);
            }
            let status = error.status;
            let mut preview = assessment.preview;
            preview.ok = false;
            preview.errors = error.field_errors();
            let errors = FormErrors(preview.errors.clone());
            let page = request_page(&app, &viewer, form, errors, Some(preview), false).await?;
            render(status, &page)
        }
    }
}

/// `GET /requests/preview`: the live check behind the form's script. Writes
/// nothing; name errors wait until a name is typed.
pub async fn preview(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidQuery(form): ValidQuery<RequestForm>,
) -> AppResult<Json<Preview>> {
    let mut preview = assess(&app, &viewer.user, &form).await.preview;
    if form.new_cluster_name.trim().is_empty() {
        preview
            .errors
            .retain(|e| e.field.as_deref() != Some("new_cluster_name"));
    }
    preview
        .errors
        .retain(|e| e.field.as_deref() != Some("severity"));
    if form.cluster_id.trim().is_empty() {
        preview
            .errors
            .retain(|e| e.field.as_deref() != Some("cluster_id"));
    }
    preview.ok = preview.errors.is_empty() && preview.plan_text.is_some();
    Ok(Json(preview))
}

// ---------------------------------------------------------------- my requests

#[derive(Template)]
#[template(path = "customer/tickets.html")]
struct TicketsPage {
    chrome: Chrome,
    rows: Vec<TicketRow>,
    older: Option<i64>,
    zone: &'static str,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    before: Option<i64>,
}

const PAGE: usize = 25;

pub async fn tickets(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidQuery(q): ValidQuery<PageQuery>,
) -> AppResult<Response> {
    let scope = scope_for(&viewer.user);
    let times = times_for(&app, &viewer.user);
    let mut tickets = app
        .store
        .tickets(&TicketQuery {
            scope,
            states: vec![],
            severity: None,
            assignee: AssigneeFilter::Anyone,
            order: TicketOrder::Newest { before: q.before },
            limit: PAGE as i64 + 1,
        })
        .await?;
    let older = if tickets.len() > PAGE {
        tickets.truncate(PAGE);
        tickets.last().map(|t| t.number)
    } else {
        None
    };
    let clusters = cluster_names(&app, scope).await?;
    let names = people(&app, tickets.iter().filter_map(|t| t.assignee_id).collect()).await?;
    let mut rows = Vec::new();
    for ticket in tickets {
        let job = app.job_of(&ticket).await?;
        rows.push(ticket_row(ticket, &times, &clusters, &names, job.as_ref()));
    }
    let page = TicketsPage {
        chrome: chrome(
            &viewer.session,
            Some(&viewer.user),
            "My requests",
            "tickets",
        )
        .await?,
        rows,
        older,
        zone: times.zone_name(),
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- the ticket page

#[derive(Template)]
#[template(path = "customer/ticket.html")]
struct TicketPage {
    chrome: Chrome,
    row: TicketRow,
    target_as_entered: String,
    cluster: Cluster,
    job: Option<JobView>,
    new_cluster: Option<Cluster>,
    messages: Vec<MessageView>,
    events: Vec<EventView>,
    may_cancel: bool,
    may_reply: bool,
    errors: FormErrors,
    reply: String,
    zone: &'static str,
    state_class: &'static str,
}

async fn ticket_page(
    app: &App,
    viewer: &crate::web::auth::Viewer,
    id: TicketId,
    errors: FormErrors,
    reply: String,
) -> AppResult<TicketPage> {
    let scope = scope_for(&viewer.user);
    let ticket = app
        .store
        .ticket(id, scope)
        .await?
        .ok_or_else(AppError::not_found)?;
    let times = times_for(app, &viewer.user);
    let cluster = app
        .store
        .cluster(ticket.cluster_id, scope)
        .await?
        .ok_or_else(AppError::not_found)?;
    let job = app.job_of(&ticket).await?;
    let new_cluster = match (ticket.new_cluster_id, ticket.state) {
        (Some(id), crate::domain::ticket::TicketState::Completed) => {
            app.store.cluster(id, scope).await?
        }
        _ => None,
    };
    let messages = app.store.messages(ticket.id, false).await?;
    let events = app.store.ticket_events(ticket.id).await?;
    let names = common::ticket_people(app, &ticket, &messages, &events).await?;
    let target_as_entered = common::target_as_entered(&ticket);
    let clusters = HashMap::from([(cluster.id, cluster.name.clone())]);
    let reference = ticket.reference();
    let state = ticket.state;
    Ok(TicketPage {
        chrome: chrome(&viewer.session, Some(&viewer.user), reference, "tickets").await?,
        may_cancel: state.customer_may_cancel(),
        may_reply: !state.is_terminal(),
        job: job.as_ref().map(|j| job_view(j, &times)),
        row: ticket_row(ticket, &times, &clusters, &names, job.as_ref()),
        target_as_entered,
        cluster,
        new_cluster,
        messages: message_views(messages, &names, &times),
        events: event_views(events, &names, &times, true),
        errors,
        reply,
        zone: times.zone_name(),
        state_class: state_class(state),
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub body: String,
}

async fn customer_act(
    app: &App,
    viewer: &crate::web::auth::Viewer,
    id: TicketId,
    command: TicketCommand,
    version: Option<i64>,
    done: &str,
    typed: String,
) -> AppResult<Response> {
    match desk::act(app, &viewer.user, id, command, version).await {
        Ok(ticket) => {
            flash(&viewer.session, done).await?;
            Ok(Redirect::to(&format!("/tickets/{}", ticket.id)).into_response())
        }
        Err(error) => {
            let error = AppError::from(error);
            if matches!(error.status.as_u16(), 403 | 404) || error.status.is_server_error() {
                return Err(error);
            }
            let page = ticket_page(app, viewer, id, FormErrors::from_error(&error), typed).await?;
            render(error.status, &page)
        }
    }
}

pub async fn reply(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidPath(id): ValidPath<String>,
    ValidForm(form): ValidForm<ActionForm>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    customer_act(
        &app,
        &viewer,
        id,
        TicketCommand::Reply {
            body: form.body.clone(),
        },
        form.version,
        "Your reply was sent.",
        form.body,
    )
    .await
}

pub async fn cancel(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidPath(id): ValidPath<String>,
    ValidForm(form): ValidForm<ActionForm>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    customer_act(
        &app,
        &viewer,
        id,
        TicketCommand::Cancel,
        form.version,
        "The request is cancelled.",
        String::new(),
    )
    .await
}

/// Staff opening a customer link land on the staff view of the same ticket.
pub async fn ticket(
    State(app): State<App>,
    crate::web::auth::AnyUser(viewer): crate::web::auth::AnyUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Response> {
    if viewer.user.role.works_tickets() {
        return Ok(Redirect::to(&format!("/staff/tickets/{id}")).into_response());
    }
    let page = ticket_page(
        &app,
        &viewer,
        parse_id(&id)?,
        FormErrors::default(),
        String::new(),
    )
    .await?;
    render(StatusCode::OK, &page)
}
