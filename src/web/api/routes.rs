//! The API's handlers: authenticate, authorize, call the desk or read with
//! the caller's scope, answer JSON.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::doc::{FleetUnavailable, Forbidden, RateLimited};
use super::model::*;
use super::{ApiJson, OptionalJson, words};
use crate::app::App;
use crate::desk::admin::{self as admin_ops, FaultRequest, NewUser, UserChange};
use crate::desk::{self, FilingRequest, scope_for};
use crate::domain::catalog::Zone;
use crate::domain::ids::{ClusterId, TicketId};
use crate::domain::sla::Severity;
use crate::domain::validation::TargetInput;
use crate::store::{
    AssigneeFilter, DrillRecord, OutboxQuery, OutboxStatus, Scope, TicketOrder, TicketQuery,
};
use crate::web::auth::{ApiUser, ClientAddr, bearer, check_password, issue_token, token_hash};
use crate::web::commands::staff_command;
use crate::web::error::{AppError, AppResult, ErrorBody, ErrorCode};
use crate::web::limits::Limits;
use crate::web::parse_id;
use crate::web::queue::{QueueQuery, queue_query};
use crate::web::{ValidPath, ValidQuery};

// ---------------------------------------------------------------- session

/// Signs in and returns a bearer token.
#[utoipa::path(post, path = "/api/v1/login", tag = "session", request_body = LoginIn,
    responses(
        (status = 200, description = "Signed in: the token and whose it is", body = LoginOut),
        (status = 401, description = "No active account with that email and password (`invalid_credentials`)", body = ErrorBody),
        (status = 403, description = "An administrator reset the password: it must be changed in the browser first (`password_change_required`)", body = ErrorBody),
        (status = 429, response = RateLimited),
    ))]
pub async fn login(
    State(app): State<App>,
    State(limits): State<Arc<Limits>>,
    ClientAddr(addr): ClientAddr,
    ApiJson(body): ApiJson<LoginIn>,
) -> AppResult<Json<LoginOut>> {
    limits.sign_in(addr, &body.email)?;
    let user = check_password(&app.store, &body.email, &body.password)
        .await?
        .ok_or_else(|| {
            limits.sign_in_failed(&body.email);
            AppError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidCredentials,
                "That email and password do not match an active account",
            )
        })?;
    limits.signed_in(addr, &body.email);
    if user.must_change_password {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::PasswordChangeRequired,
            "An administrator reset this password: sign in to the desk in a browser and choose \
             a new one, then ask for a token again",
        ));
    }
    let (token, expires_at) = issue_token(&app, &user).await?;
    tracing::info!(user = %user.email, "API token issued");
    Ok(Json(LoginOut {
        token,
        expires_at,
        user: user_out(user),
    }))
}

/// Revokes the token the request carries.
#[utoipa::path(post, path = "/api/v1/logout", tag = "session", security(("bearer" = [])),
    responses((status = 204, description = "The token is revoked")))]
pub async fn logout(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    headers: HeaderMap,
) -> AppResult<StatusCode> {
    if let Some(token) = bearer(&headers) {
        let hash = token_hash(token);
        app.store.revoke_api_token(&hash).await?;
        app.api_tokens.forget(&hash);
    }
    tracing::info!(user = %user.email, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/api/v1/me", tag = "session", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = UserOut)))]
pub async fn me(ApiUser(user): ApiUser) -> Json<UserOut> {
    Json(user_out(user))
}

// ---------------------------------------------------------------- clusters

/// Clusters the caller may see (customers: their subscription's), each with
/// its restorable window now and its last restore test (for staff, also
/// why its restores are at risk).
#[utoipa::path(get, path = "/api/v1/clusters", tag = "clusters", security(("bearer" = [])),
    params(ClustersQuery),
    responses(
        (status = 200, description = "The clusters, each with its restorable window", body = Vec<ClusterOut>),
        (status = 503, response = FleetUnavailable),
    ))]
pub async fn clusters(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidQuery(q): ValidQuery<ClustersQuery>,
) -> AppResult<Json<Vec<ClusterOut>>> {
    let mut drills = desk::drills::all(&app).await?;
    let mut out = Vec::new();
    for cluster in app
        .store
        .clusters(scope_for(&user), q.include_deleted.unwrap_or(true))
        .await?
    {
        let tested = drills.remove(&cluster.id).unwrap_or_default();
        out.push(cluster_out(&app, &user, cluster, &tested).await?);
    }
    Ok(Json(out))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClustersQuery {
    /// Include deleted clusters (default true: they stay restorable for 7 days).
    pub include_deleted: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/clusters/{id}", tag = "clusters", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The cluster's id")),
    responses(
        (status = 200, description = "The cluster, with its restorable window", body = ClusterOut),
        (status = 503, response = FleetUnavailable),
    ))]
pub async fn cluster(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Json<ClusterOut>> {
    let cluster = app
        .store
        .cluster(parse_id(&id)?, scope_for(&user))
        .await?
        .ok_or_else(AppError::not_found)?;
    let drills = desk::drills::of_cluster(&app, cluster.id).await?;
    Ok(Json(cluster_out(&app, &user, cluster, &drills).await?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransactionsQuery {
    /// The moment to look around, RFC 3339 with an offset (default: now).
    pub around: Option<String>,
    /// How many transactions that committed before it, 0–200 (default 20).
    pub before: Option<usize>,
    /// How many at or after it, 0–200 (default 20).
    pub after: Option<usize>,
}

/// Reads `around` as a moment with an offset; `None` is now.
pub fn moment_of(around: Option<&str>, now: DateTime<Utc>) -> AppResult<DateTime<Utc>> {
    match around.map(str::trim).filter(|a| !a.is_empty()) {
        None => Ok(now),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::InvalidTimestamp,
                    format!("{text:?} is not a moment with an offset; use RFC 3339, e.g. 2026-11-24T14:30:00+01:00"),
                )
                .with_field("around")
            }),
    }
}

/// What happened around a moment: the committed transactions of the
/// cluster's archived log nearest it, what each touched (relations by name,
/// rows inserted, updated and deleted), DDL and large deletes marked. Pages
/// go back with `earlier` and on with `later`.
#[utoipa::path(get, path = "/api/v1/clusters/{id}/transactions", tag = "clusters", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The cluster's id"), TransactionsQuery),
    responses(
        (status = 200, description = "The transactions around the moment", body = TransactionsOut),
        (status = 404, description = "No such cluster, or not the caller's to see (`not_found`)", body = ErrorBody),
        (status = 422, description = "`around` is not a moment (`invalid_timestamp`) or a count \
            is out of range (`invalid_input`)", body = ErrorBody),
        (status = 503, response = FleetUnavailable),
    ))]
pub async fn cluster_transactions(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
    ValidQuery(q): ValidQuery<TransactionsQuery>,
) -> AppResult<Json<TransactionsOut>> {
    let id = parse_id(&id)?;
    let around = moment_of(q.around.as_deref(), app.now())?;
    let per_side = crate::desk::transactions::DEFAULT_PER_SIDE;
    let page = crate::desk::transactions::around(
        &app,
        &user,
        id,
        around,
        q.before.unwrap_or(per_side),
        q.after.unwrap_or(per_side),
    )
    .await?;
    Ok(Json(TransactionsOut::from(&page)))
}

/// Admins: registers a cluster that already runs on a source host of the
/// fleet across hosts. The desk reads its backups from the zones that hold
/// its stanza and never writes to it; a refusal stores nothing.
#[utoipa::path(post, path = "/api/v1/clusters", tag = "admin", security(("bearer" = [])),
    request_body = desk::clusters::Registration,
    responses(
        (status = 201, description = "Registered: the cluster, with the window its backups give", body = ClusterOut),
        (status = 403, response = Forbidden),
        (status = 422, description = "A field is wrong (`field` names it), the host is no source             host of the fleet, the stanza is unknown to the zones or its backups cannot be read             there (`field` is `stanza`), or the name is taken; `invalid_input`, nothing is             stored", body = ErrorBody),
    ))]
pub async fn register_cluster(
    State(app): State<App>,
    api: ApiUser,
    ApiJson(body): ApiJson<desk::clusters::Registration>,
) -> AppResult<(StatusCode, Json<ClusterOut>)> {
    let admin = api.admin()?;
    let cluster = desk::clusters::register(&app, admin_ops::Operator::Admin(admin), &body).await?;
    let out = cluster_out(&app, admin, cluster, &Default::default()).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Admins: marks a cluster deleted (it stays restorable for 7 days).
#[utoipa::path(delete, path = "/api/v1/clusters/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The cluster's id")),
    responses(
        (status = 204, description = "Marked deleted"),
        (status = 403, response = Forbidden),
        (status = 422, description = "The cluster is already deleted (`invalid_input`)", body = ErrorBody),
    ))]
pub async fn delete_cluster(
    State(app): State<App>,
    api: ApiUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<StatusCode> {
    let admin = api.admin()?;
    admin_ops::delete_cluster(&app, admin, parse_id(&id)?, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- restore tests

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DrillsQuery {
    /// Only this cluster's tests.
    pub cluster_id: Option<ClusterId>,
    /// How many, 1–500 (default 100).
    pub limit: Option<i64>,
}

/// Staff: restore tests (drills), newest first: what each restored, from
/// which zone, on which host, how long it took and whether it passed, with
/// the failed check and why, and the verification's checks.
#[utoipa::path(get, path = "/api/v1/drills", tag = "drills", security(("bearer" = [])),
    params(DrillsQuery),
    responses(
        (status = 200, description = "Restore tests, newest first", body = Vec<DrillOut>),
        (status = 403, response = Forbidden),
        (status = 404, description = "No cluster has that `cluster_id` (`not_found`)", body = ErrorBody),
    ))]
pub async fn drills(
    State(app): State<App>,
    api: ApiUser,
    ValidQuery(q): ValidQuery<DrillsQuery>,
) -> AppResult<Json<Vec<DrillOut>>> {
    api.staff()?;
    let names: std::collections::HashMap<ClusterId, String> = app
        .store
        .clusters(Scope::Everything, true)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    if let Some(id) = q.cluster_id
        && !names.contains_key(&id)
    {
        return Err(AppError::not_found());
    }
    let records = app
        .store
        .drills(q.cluster_id, q.limit.unwrap_or(100).clamp(1, 500))
        .await?;
    Ok(Json(
        records
            .iter()
            .map(|r| {
                let name = names.get(&r.job.source_cluster_id).cloned();
                drill_out(r, name.unwrap_or_default())
            })
            .collect(),
    ))
}

/// Admins: tests a cluster's backups now, from the zone whose turn it is,
/// to a random moment of that zone's window. The test copy is no cluster
/// of the customer's and is removed once verified.
#[utoipa::path(post, path = "/api/v1/clusters/{id}/drills", tag = "drills", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The cluster's id")),
    responses(
        (status = 201, description = "Queued: the restore test", body = DrillOut),
        (status = 403, response = Forbidden),
        (status = 422, description = "No test can start now (`invalid_input`, `field` is \
            `cluster`): one is running or waiting, the cluster is deleted or still being \
            built, or no online zone holds a backup of it", body = ErrorBody),
    ))]
pub async fn start_drill(
    State(app): State<App>,
    api: ApiUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Response> {
    let admin = api.admin()?;
    let job_id = desk::drills::start_now(&app, admin, parse_id(&id)?).await?;
    let job = app
        .store
        .job(job_id)
        .await?
        .ok_or_else(AppError::internal)?;
    let name = app
        .cluster_name(job.source_cluster_id)
        .await?
        .unwrap_or_default();
    let record = DrillRecord {
        job,
        started_at: None,
    };
    Ok((StatusCode::CREATED, Json(drill_out(&record, name))).into_response())
}

/// Admins: how a cluster is tested: its own interval (null: the desk's)
/// and its canary query.
#[utoipa::path(get, path = "/api/v1/clusters/{id}/drill-settings", tag = "drills", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The cluster's id")),
    responses(
        (status = 200, description = "The cluster's test settings", body = DrillSettingsOut),
        (status = 403, response = Forbidden),
    ))]
pub async fn drill_settings(
    State(app): State<App>,
    api: ApiUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Json<DrillSettingsOut>> {
    api.admin()?;
    let cluster = app
        .store
        .cluster(parse_id(&id)?, Scope::Everything)
        .await?
        .ok_or_else(AppError::not_found)?;
    let settings = app.store.drill_settings(cluster.id).await?;
    Ok(Json(drill_settings_out(&app, settings)))
}

/// Admins: sets how a cluster is tested. Both fields replace what was set;
/// a refusal stores nothing. Kept in the audit trail.
#[utoipa::path(put, path = "/api/v1/clusters/{id}/drill-settings", tag = "drills", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The cluster's id")),
    request_body = DrillSettingsIn,
    responses(
        (status = 200, description = "Stored: the cluster's test settings", body = DrillSettingsOut),
        (status = 403, response = Forbidden),
        (status = 422, description = "The interval is not 1 to 8784 hours (`field` is \
            `interval_hours`), or the canary is not one read-only SELECT (`field` is \
            `canary`); `invalid_input`, nothing is stored", body = ErrorBody),
    ))]
pub async fn set_drill_settings(
    State(app): State<App>,
    api: ApiUser,
    ValidPath(id): ValidPath<String>,
    ApiJson(body): ApiJson<DrillSettingsIn>,
) -> AppResult<Json<DrillSettingsOut>> {
    let admin = api.admin()?;
    let settings = desk::drills::set_settings(
        &app,
        admin,
        parse_id(&id)?,
        body.interval_hours,
        body.canary.as_deref(),
    )
    .await?;
    Ok(Json(drill_settings_out(&app, settings)))
}

// ---------------------------------------------------------------- tickets

/// A target as a moment with an offset, or a wall-clock time in a zone.
fn target_input(
    local_time: Option<String>,
    target_time: Option<String>,
    time_zone: Option<String>,
    utc_offset: Option<String>,
) -> AppResult<TargetInput> {
    match (local_time, target_time) {
        (Some(local_time), _) => Ok(TargetInput::Local {
            local_time,
            time_zone: time_zone.unwrap_or_default(),
            utc_offset,
        }),
        (None, Some(target_time)) => Ok(TargetInput::Instant {
            target_time,
            time_zone,
        }),
        (None, None) => Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidTimestamp,
            "Give target_time (RFC 3339 with an offset) or local_time and time_zone",
        )
        .with_field("target_time")),
    }
}

/// A target by transaction, read; with it no time may be given.
fn transaction_target(
    transaction: Option<&TransactionIn>,
    time_given: bool,
) -> AppResult<Option<crate::domain::transactions::TransactionTarget>> {
    let Some(given) = transaction else {
        return Ok(None);
    };
    if time_given {
        return Err(AppError::invalid(
            "transaction",
            "Give a time (target_time or local_time) or a transaction, not both",
        ));
    }
    let position = given.position.parse().map_err(|_| {
        AppError::invalid(
            "transaction",
            format!(
                "{:?} is not a position: use \"before\" or \"after\"",
                given.position
            ),
        )
    })?;
    Ok(Some(crate::domain::transactions::TransactionTarget {
        xid: given.id,
        position,
    }))
}

/// The target of a request: a transaction (its zone only for reading), or
/// a time.
fn target_or_transaction(
    transaction: Option<&TransactionIn>,
    local_time: Option<String>,
    target_time: Option<String>,
    time_zone: Option<String>,
    utc_offset: Option<String>,
) -> AppResult<(
    TargetInput,
    Option<crate::domain::transactions::TransactionTarget>,
)> {
    let chosen = transaction_target(transaction, local_time.is_some() || target_time.is_some())?;
    if chosen.is_some() {
        return Ok((
            TargetInput::Instant {
                target_time: String::new(),
                time_zone,
            },
            chosen,
        ));
    }
    Ok((
        target_input(local_time, target_time, time_zone, utc_offset)?,
        None,
    ))
}

fn filing_request(body: FileTicketIn) -> AppResult<FilingRequest> {
    let severity = Severity::parse_typed(&body.severity)
        .map_err(|e: String| AppError::invalid("severity", e))?;
    let (target, transaction) = target_or_transaction(
        body.transaction.as_ref(),
        body.local_time,
        body.target_time,
        body.time_zone,
        body.utc_offset,
    )?;
    Ok(FilingRequest {
        transaction,
        cluster_id: body.cluster_id.parse().ok(),
        target,
        new_cluster_name: body.new_cluster_name,
        severity,
        description: body.description,
        inspect: body.inspect,
    })
}

/// Customers: files a restore request. It is checked at once against the
/// cluster's real backups; a refusal stores nothing.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets", security(("bearer" = [])),
    request_body = FileTicketIn,
    responses(
        (status = 201, description = "Filed: the new ticket", body = TicketOut, links(
            ("ticket" = (operation_id = "ticket", parameters(("id" = "$response.body#/id")))),
            ("command" = (operation_id = "ticket_action", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 403, description = "Only customers file requests (`forbidden`)", body = ErrorBody),
        (status = 422, description = "A rule of SPEC §4 refused it, `code` says which, or a field \
            cannot be read (`invalid_input`); nothing is stored", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = FleetUnavailable),
    ))]
pub async fn file_ticket(
    State(app): State<App>,
    State(limits): State<Arc<Limits>>,
    ClientAddr(addr): ClientAddr,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<FileTicketIn>,
) -> AppResult<Response> {
    if user.role.works_tickets() {
        return Err(AppError::forbidden());
    }
    limits.filing(user.id, addr)?;
    let request = filing_request(body)?;
    let ticket = desk::file_ticket(&app, &user, &request).await?;
    let out = ticket_out(&app, &user, &mut Names::default(), ticket).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// Customers: checks a request like filing would, storing nothing.
#[utoipa::path(post, path = "/api/v1/tickets/check", tag = "tickets", security(("bearer" = [])),
    request_body = FileTicketIn,
    responses(
        (status = 200, description = "Filing it would be accepted: what it would restore", body = CheckOut),
        (status = 403, description = "Only customers file requests (`forbidden`)", body = ErrorBody),
        (status = 422, description = "A rule of SPEC §4 refused it, `code` says which, or a field \
            cannot be read (`invalid_input`)", body = ErrorBody),
        (status = 503, response = FleetUnavailable),
    ))]
pub async fn check_ticket(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<FileTicketIn>,
) -> AppResult<Json<CheckOut>> {
    let request = filing_request(body)?;
    let checked = desk::check_request(&app, &user, &request).await?;
    let window = desk::read::cluster_backups(&app, &checked.cluster)
        .await?
        .window;
    Ok(Json(CheckOut {
        target_time: checked.target.utc,
        time_zone: checked.target.time_zone.name().into(),
        snapshot_id: checked.plan.snapshot_id.clone(),
        zone: checked.plan.zone.as_str().into(),
        deadline: checked.deadline,
        restorable: window.map(Restorable::from),
    }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketsQuery {
    /// Staff: `open` (default), `all`, or one state.
    #[serde(default)]
    #[param(value_type = Option<words::TicketStateFilter>)]
    pub state: String,
    /// Staff: only this severity.
    #[serde(default)]
    #[param(value_type = Option<words::Severity>)]
    pub severity: String,
    /// Staff: `unassigned`, `mine`, or a user id.
    #[serde(default)]
    pub assignee: String,
    /// Staff: `true` for tickets assigned to the caller.
    pub mine: Option<bool>,
    /// Staff: only tickets whose first response is `breached` or `due`.
    #[serde(default)]
    #[param(value_type = Option<words::ResponseFilter>)]
    pub response: String,
    /// Staff: search by ticket number (`RD-12`), customer, cluster or text.
    #[serde(default)]
    pub q: String,
    /// Staff: the `next` of the previous page.
    pub after: Option<i64>,
    /// Customers: the `next` of the previous page.
    pub before: Option<i64>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
}

/// Customers: their subscription's tickets, newest first. Staff: the queue,
/// the first clock to run out first (an unanswered ticket's first response,
/// else its deadline), then severity, with filters and search.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", security(("bearer" = [])),
    params(TicketsQuery),
    responses((status = 200, description = "A page of tickets", body = TicketPage, links(
        ("first" = (operation_id = "ticket", parameters(("id" = "$response.body#/tickets/0/id")))),
        ("command" = (operation_id = "ticket_action",
            parameters(("id" = "$response.body#/tickets/0/id")))),
        ("first_job" = (operation_id = "job", parameters(("id" = "$response.body#/tickets/0/job/id")))),
    ))))]
pub async fn tickets(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidQuery(q): ValidQuery<TicketsQuery>,
) -> AppResult<Json<TicketPage>> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let query = if user.role.works_tickets() {
        let filters = QueueQuery {
            state: q.state.clone(),
            severity: q.severity.clone(),
            assignee: q.assignee.clone(),
            mine: if q.mine == Some(true) {
                "true".into()
            } else {
                String::new()
            },
            response: q.response.clone(),
            q: q.q.clone(),
            after: q.after,
        };
        queue_query(&app, &user, &filters, limit + 1).await?
    } else {
        TicketQuery {
            scope: scope_for(&user),
            states: vec![],
            severity: None,
            assignee: AssigneeFilter::Anyone,
            response_due_before: None,
            search: None,
            order: TicketOrder::Newest { before: q.before },
            limit: limit + 1,
        }
    };
    let mut tickets = app.store.tickets(&query).await?;
    let more = tickets.len() as i64 > limit;
    tickets.truncate(limit as usize);
    let next = more
        .then(|| tickets.last().map(|t| t.number.to_string()))
        .flatten();
    let mut names = Names::load(&app, &user).await?;
    let mut out = Vec::new();
    for ticket in tickets {
        out.push(ticket_out(&app, &user, &mut names, ticket).await?);
    }
    Ok(Json(TicketPage { tickets: out, next }))
}

async fn visible_ticket(
    app: &App,
    user: &crate::store::User,
    id: &str,
) -> AppResult<crate::store::Ticket> {
    app.store
        .ticket(parse_id(id)?, scope_for(user))
        .await?
        .ok_or_else(AppError::not_found)
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The ticket's id")),
    responses((status = 200, description = "The ticket", body = TicketOut, links(
        ("job" = (operation_id = "job", parameters(("id" = "$response.body#/job/id")))),
        ("events" = (operation_id = "ticket_events", parameters(("id" = "$response.body#/id")))),
        ("messages" = (operation_id = "ticket_messages", parameters(("id" = "$response.body#/id")))),
        ("command" = (operation_id = "ticket_action", parameters(("id" = "$response.body#/id")))),
        ("new_cluster" = (operation_id = "cluster",
            parameters(("id" = "$response.body#/new_cluster_id")))),
    ))))]
pub async fn ticket(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Json<TicketOut>> {
    let head = crate::desk::read::ticket_head(&app, parse_id(&id)?, scope_for(&user))
        .await?
        .ok_or_else(AppError::not_found)?;
    Ok(Json(ticket_head_out(&user, &head)))
}

/// A command on a ticket: `claim`, `approve` (inspect), `reject` (reason),
/// `request-info` (body), `reply` (body), `note` (body, staff, internal),
/// `cancel` (customers), `accept` (customers: take the paused copy as it
/// is), `retry`, `cancel-restore` (reason, staff).
/// Customers calling a staff command get 403 and nothing changes.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/{action}", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The ticket's id"),
        ("action" = words::TicketAction, Path)),
    request_body(content = Option<ActionIn>, description = "The fields the command needs; may be left out"),
    responses(
        (status = 200, description = "Done: the ticket as it is now", body = TicketOut, links(
            ("job" = (operation_id = "job", parameters(("id" = "$response.body#/job/id")))),
        )),
        (status = 403, description = "The caller's role may not give this command (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such ticket, not the caller's to see, or no such command (`not_found`)", body = ErrorBody),
        (status = 409, description = "Not possible as things stand: `wrong_state`, `not_assignee`, \
            `already_assigned`, `target_not_checked`, `too_late_to_cancel`, or `conflict` when \
            the ticket changed since `version`", body = ErrorBody),
        (status = 422, description = "A text the command needs is empty or too long \
            (`invalid_input`), or approving found the target no longer restorable (a SPEC §4 \
            code)", body = ErrorBody),
        (status = 503, response = FleetUnavailable),
    ))]
pub async fn ticket_action(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath((id, action)): ValidPath<(String, String)>,
    OptionalJson(body): OptionalJson<ActionIn>,
) -> AppResult<Json<TicketOut>> {
    let id = parse_id(&id)?;
    let text = body
        .body
        .clone()
        .or_else(|| body.message.clone())
        .unwrap_or_default();
    let reason = body.reason.clone().unwrap_or_default();
    let command = match action.as_str() {
        "cancel" => crate::domain::ticket::TicketCommand::Cancel {
            reason: reason.clone(),
        },
        // The customer takes the paused copy as it is.
        "accept" => crate::domain::ticket::TicketCommand::Accept,
        other => {
            staff_command(other, &text, &reason, body.inspect.unwrap_or(false))
                .ok_or_else(|| {
                    AppError::new(
                        StatusCode::NOT_FOUND,
                        ErrorCode::NotFound,
                        format!("There is no ticket command {other:?}"),
                    )
                })?
                .0
        }
    };
    let ticket = desk::act(&app, &user, id, command, body.version).await?;
    Ok(Json(
        ticket_out(&app, &user, &mut Names::default(), ticket).await?,
    ))
}

/// Moves a ticket's target before approval: the customer, answering the
/// engineer's question (the ticket goes back to them), or the assigned
/// engineer. The new target is checked like a new request's; a refusal
/// changes nothing. The audit trail keeps the old and the new target.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/target", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The ticket's id")),
    request_body = ChangeTargetIn,
    responses(
        (status = 200, description = "Moved: the ticket as it is now", body = TicketOut),
        (status = 403, description = "The caller's role may not change targets (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such ticket, or not the caller's to see (`not_found`)", body = ErrorBody),
        (status = 409, description = "Not possible as things stand: `wrong_state` (customers \
            change a target in answer to a question; engineers before approval), \
            `not_assignee`, `already_restored`, or `conflict` when the ticket changed since \
            `version`", body = ErrorBody),
        (status = 422, description = "The new target cannot be read or a rule of SPEC §4 \
            refuses it (`code` says which), or the reason is empty or too long \
            (`invalid_input`); nothing changes", body = ErrorBody),
        (status = 503, response = FleetUnavailable),
    ))]
pub async fn change_target(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
    ApiJson(body): ApiJson<ChangeTargetIn>,
) -> AppResult<Json<TicketOut>> {
    let id = parse_id(&id)?;
    let (target, transaction) = target_or_transaction(
        body.transaction.as_ref(),
        body.local_time,
        body.target_time,
        body.time_zone,
        body.utc_offset,
    )?;
    let ticket = desk::change_target(
        &app,
        &user,
        id,
        &target,
        transaction,
        &body.reason,
        body.version,
    )
    .await?;
    Ok(Json(
        ticket_out(&app, &user, &mut Names::default(), ticket).await?,
    ))
}

/// The customer moves a paused copy forward to a later moment or
/// transaction: the same copy replays on to it and pauses again, with no
/// new base restore. Checked like a new request's target, and it must be
/// after the moment the copy holds; a refusal changes nothing.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/move-forward", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The ticket's id")),
    request_body = RedirectIn,
    responses(
        (status = 200, description = "Moving on: the ticket as it is now", body = TicketOut),
        (status = 403, description = "Only the customer decides about a paused copy (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such ticket, or not the caller's to see (`not_found`)", body = ErrorBody),
        (status = 409, description = "No copy waits for a decision (`wrong_state`), or the \
            ticket changed since `version` (`conflict`)", body = ErrorBody),
        (status = 422, description = "The moment is not after the copy's (`target_not_later`), \
            cannot be read, or a rule of SPEC §4 refuses it (`unknown_transaction`, \
            `no_backup_in_online_zone`, …); nothing changes", body = ErrorBody),
        (status = 503, response = FleetUnavailable),
    ))]
pub async fn move_forward(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
    ApiJson(body): ApiJson<RedirectIn>,
) -> AppResult<Json<TicketOut>> {
    redirected(app, user, id, desk::Redirect::Forward, body).await
}

/// The customer goes back to an earlier moment or transaction: the paused
/// copy is removed and a new restore reaches it (then pauses in turn). It
/// must be before the moment the copy holds; a refusal changes nothing.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/go-back", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The ticket's id")),
    request_body = RedirectIn,
    responses(
        (status = 200, description = "Going back: the ticket as it is now", body = TicketOut),
        (status = 403, description = "Only the customer decides about a paused copy (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such ticket, or not the caller's to see (`not_found`)", body = ErrorBody),
        (status = 409, description = "No copy waits for a decision (`wrong_state`), or the \
            ticket changed since `version` (`conflict`)", body = ErrorBody),
        (status = 422, description = "The moment is not before the copy's \
            (`target_not_earlier`), cannot be read, or a rule of SPEC §4 refuses it; nothing \
            changes", body = ErrorBody),
        (status = 503, response = FleetUnavailable),
    ))]
pub async fn go_back(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
    ApiJson(body): ApiJson<RedirectIn>,
) -> AppResult<Json<TicketOut>> {
    redirected(app, user, id, desk::Redirect::Back, body).await
}

async fn redirected(
    app: App,
    user: crate::store::User,
    id: String,
    way: desk::Redirect,
    body: RedirectIn,
) -> AppResult<Json<TicketOut>> {
    let id = parse_id(&id)?;
    let (target, transaction) = target_or_transaction(
        body.transaction.as_ref(),
        body.local_time,
        body.target_time,
        body.time_zone,
        body.utc_offset,
    )?;
    let ticket = desk::redirect(&app, &user, id, way, &target, transaction, body.version).await?;
    Ok(Json(
        ticket_out(&app, &user, &mut Names::default(), ticket).await?,
    ))
}

/// The ticket's history. Customers do not see internal events.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/events", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The ticket's id")),
    responses((status = 200, description = "The ticket's history, oldest first", body = Vec<EventOut>)))]
pub async fn ticket_events(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Json<Vec<EventOut>>> {
    let ticket = visible_ticket(&app, &user, &id).await?;
    let events = app.store.ticket_events(ticket.id).await?;
    Ok(Json(events_for(&user, events)))
}

/// The conversation. Internal notes only for staff.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/messages", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The ticket's id")),
    responses((status = 200, description = "The conversation, oldest first", body = Vec<MessageOut>)))]
pub async fn ticket_messages(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Json<Vec<MessageOut>>> {
    let ticket = visible_ticket(&app, &user, &id).await?;
    let staff = user.role.works_tickets();
    let messages: Vec<_> = app
        .store
        .messages(ticket.id, staff)
        .await?
        .into_iter()
        .filter(|m| visible_to(&user, m))
        .collect();
    let mut names = Names::default();
    Ok(Json(messages_out(&app, &mut names, messages).await?))
}

/// A restore job, with its progress. Visible to whoever may see its ticket.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The restore job's id")),
    responses((status = 200, description = "The job", body = JobOut)))]
pub async fn job(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Json<JobOut>> {
    let job = app
        .store
        .job(parse_id(&id)?)
        .await?
        .ok_or_else(AppError::not_found)?;
    // The job is visible exactly when its ticket is; a drill, to staff.
    match job.ticket_id {
        Some(ticket_id) => {
            app.store
                .ticket(ticket_id, scope_for(&user))
                .await?
                .ok_or_else(AppError::not_found)?;
        }
        None if user.role.works_tickets() => {}
        None => return Err(AppError::not_found()),
    }
    let eta = crate::desk::eta::of_job(&app, &job).await?;
    Ok(Json(job_out(job, user.role.works_tickets(), eta)))
}

// ---------------------------------------------------------------- fleet

#[utoipa::path(get, path = "/api/v1/zones", tag = "fleet", security(("bearer" = [])),
    responses((status = 200, description = "Every zone of every region", body = Vec<ZoneOut>)))]
pub async fn zones(State(app): State<App>, _user: ApiUser) -> AppResult<Json<Vec<ZoneOut>>> {
    Ok(Json(
        app.store.zones().await?.into_iter().map(zone_out).collect(),
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegionQuery {
    /// The region; may be left out when there is only one.
    pub region: Option<String>,
}

/// Admins: takes a zone offline or brings it back online.
#[utoipa::path(post, path = "/api/v1/zones/{zone}/{state}", tag = "fleet", security(("bearer" = [])),
    params(("zone" = words::Zone, Path), ("state" = words::ZoneChange, Path), RegionQuery),
    responses(
        (status = 200, description = "Changed: every zone as it is now", body = Vec<ZoneOut>),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such zone, or no such change (`not_found`)", body = ErrorBody),
        (status = 422, description = "No such region, or several and none named (`invalid_input`)", body = ErrorBody),
    ))]
pub async fn set_zone(
    State(app): State<App>,
    api: ApiUser,
    ValidPath((zone, state)): ValidPath<(String, String)>,
    ValidQuery(q): ValidQuery<RegionQuery>,
) -> AppResult<Json<Vec<ZoneOut>>> {
    let admin = api.admin()?;
    let zone: Zone = zone.parse().map_err(|_| AppError::not_found())?;
    let online = match state.as_str() {
        "online" => true,
        "offline" => false,
        _ => return Err(AppError::not_found()),
    };
    let region = admin_ops::resolve_region(&app, q.region.as_deref()).await?;
    admin_ops::set_zone(&app, admin, &region, zone, online, None).await?;
    Ok(Json(
        app.store.zones().await?.into_iter().map(zone_out).collect(),
    ))
}

/// Admins: the faults armed in the simulated fleet.
#[utoipa::path(get, path = "/api/v1/faults", tag = "fleet", security(("bearer" = [])),
    responses(
        (status = 200, description = "The armed faults", body = Vec<FaultOut>),
        (status = 403, response = Forbidden),
    ))]
pub async fn faults(State(app): State<App>, api: ApiUser) -> AppResult<Json<Vec<FaultOut>>> {
    api.admin()?;
    Ok(Json(
        app.sandbox
            .faults()
            .await?
            .into_iter()
            .map(fault_out)
            .collect(),
    ))
}

/// Admins: arms a fault: a restore step fails or stalls.
#[utoipa::path(post, path = "/api/v1/faults", tag = "fleet", security(("bearer" = [])),
    request_body = FaultIn,
    responses(
        (status = 201, description = "Armed", body = FaultOut),
        (status = 403, response = Forbidden),
        (status = 422, description = "An unknown kind or step, or a count or delay out of range (`invalid_input`)", body = ErrorBody),
    ))]
pub async fn add_fault(
    State(app): State<App>,
    api: ApiUser,
    ApiJson(body): ApiJson<FaultIn>,
) -> AppResult<Response> {
    let admin = api.admin()?;
    let fault = admin_ops::add_fault(
        &app,
        admin,
        &FaultRequest {
            kind: body.kind,
            step: body.step,
            permanent: body.permanent,
            times: body.times,
            delay_ms: body.delay_ms,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(fault_out(fault))).into_response())
}

/// Admins: clears every armed fault.
#[utoipa::path(delete, path = "/api/v1/faults", tag = "fleet", security(("bearer" = [])),
    responses(
        (status = 204, description = "Every fault is cleared"),
        (status = 403, response = Forbidden),
    ))]
pub async fn clear_faults(State(app): State<App>, api: ApiUser) -> AppResult<StatusCode> {
    let admin = api.admin()?;
    admin_ops::clear_faults(&app, admin).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- hosts

/// Staff: the fleet's hosts, each with when its workers last reported,
/// its free room and the restores placed on it; hosts that report but
/// nobody listed (such as the single machine's `local`) come last, marked
/// not configured.
#[utoipa::path(get, path = "/api/v1/hosts", tag = "fleet", security(("bearer" = [])),
    responses(
        (status = 200, description = "The fleet's hosts", body = HostsOut),
        (status = 403, response = Forbidden),
    ))]
pub async fn hosts(State(app): State<App>, api: ApiUser) -> AppResult<Json<HostsOut>> {
    api.staff()?;
    let hosts = desk::hosts::list(&app).await?;
    Ok(Json(HostsOut {
        hosts: hosts.into_iter().map(host_out).collect(),
    }))
}

/// Admins: adds a host of that name to the fleet's list, or replaces it
/// whole. Kept in the audit trail; a refusal stores nothing.
#[utoipa::path(put, path = "/api/v1/hosts/{name}", tag = "fleet", security(("bearer" = [])),
    params(("name" = String, Path, description = "The host's name: lowercase letters, digits and dashes")),
    request_body = HostIn,
    responses(
        (status = 200, description = "Stored: the host as the list now has it", body = HostOut),
        (status = 403, response = Forbidden),
        (status = 422, description = "A field is refused, `field` says which \
            (`invalid_input`): a name or an address that is not one (an IP address is \
            not), an unknown role or zone, a zone on a host that is not a zone host or \
            none on one that is, a zone another host serves (`field` is `zone`, the \
            message names that host), a missing or relative data root, a limit of \
            restores out of 1 to 64 or on a host that runs none, a TLS port out of range. \
            Nothing is stored", body = ErrorBody),
    ))]
pub async fn put_host(
    State(app): State<App>,
    api: ApiUser,
    ValidPath(name): ValidPath<String>,
    ApiJson(body): ApiJson<HostIn>,
) -> AppResult<Json<HostOut>> {
    let admin = api.admin()?;
    let input = desk::hosts::HostInput {
        name,
        role: body.role,
        address: body.address,
        zone: body.zone,
        data_root: body.data_root,
        max_restores: body.max_restores,
        tls_port: body.tls_port,
    };
    let host = desk::hosts::put(&app, admin, &input).await?;
    let stored = desk::hosts::list(&app)
        .await?
        .into_iter()
        .find(|h| h.name == host.name)
        .ok_or_else(AppError::internal)?;
    Ok(Json(host_out(stored)))
}

/// Admins: removes a host from the fleet's list. Kept in the audit trail.
#[utoipa::path(delete, path = "/api/v1/hosts/{name}", tag = "fleet", security(("bearer" = [])),
    params(("name" = String, Path, description = "The host's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, response = Forbidden),
        (status = 404, description = "No host of that name is listed (`not_found`)", body = ErrorBody),
        (status = 422, description = "Restores or restore tests that are not over are \
            placed on the host (`invalid_input`, `field` is `name`, the message says how \
            many); nothing is removed", body = ErrorBody),
    ))]
pub async fn remove_host(
    State(app): State<App>,
    api: ApiUser,
    ValidPath(name): ValidPath<String>,
) -> AppResult<StatusCode> {
    let admin = api.admin()?;
    desk::hosts::remove(&app, admin, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- admin

#[utoipa::path(get, path = "/api/v1/users", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "Everyone with an account", body = Vec<UserOut>),
        (status = 403, response = Forbidden),
    ))]
pub async fn users(State(app): State<App>, api: ApiUser) -> AppResult<Json<Vec<UserOut>>> {
    api.admin()?;
    Ok(Json(
        app.store.users().await?.into_iter().map(user_out).collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "admin", security(("bearer" = [])),
    request_body = NewUserIn,
    responses(
        (status = 201, description = "Added", body = UserOut),
        (status = 403, response = Forbidden),
        (status = 422, description = "A field is refused, `field` says which (`invalid_input`)", body = ErrorBody),
    ))]
pub async fn create_user(
    State(app): State<App>,
    api: ApiUser,
    ApiJson(body): ApiJson<NewUserIn>,
) -> AppResult<Response> {
    let admin = api.admin()?;
    let user = admin_ops::create_user(
        &app,
        admin,
        &NewUser {
            email: body.email,
            display_name: body.name,
            role: body.role,
            subscription: body.subscription,
            time_zone: body.time_zone,
            password: body.password,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user_out(user))).into_response())
}

/// Admins: changes a role, disables or enables (which ends sessions and
/// revokes tokens), sets the time zone or a new password.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The person's id")), request_body = UserPatchIn,
    responses(
        (status = 200, description = "The person as they are now", body = UserOut),
        (status = 403, response = Forbidden),
        (status = 422, description = "A field is refused, `field` says which (`invalid_input`)", body = ErrorBody),
    ))]
pub async fn update_user(
    State(app): State<App>,
    api: ApiUser,
    ValidPath(id): ValidPath<String>,
    ApiJson(body): ApiJson<UserPatchIn>,
) -> AppResult<Json<UserOut>> {
    let admin = api.admin()?;
    let user = admin_ops::update_user(
        &app,
        admin,
        parse_id(&id)?,
        &UserChange {
            role: body.role,
            subscription: body.subscription,
            disabled: body.disabled,
            time_zone: body.time_zone,
            password: body.password,
        },
    )
    .await?;
    Ok(Json(user_out(user)))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxParams {
    /// Only emails in this status.
    #[param(value_type = Option<words::OutboxStatus>)]
    pub status: Option<String>,
    /// Only the emails about this ticket.
    pub ticket_id: Option<TicketId>,
    /// How many, 1–1000 (default 100).
    pub limit: Option<i64>,
}

/// Admins: the notification outbox, newest first.
#[utoipa::path(get, path = "/api/v1/outbox", tag = "admin", security(("bearer" = [])),
    params(OutboxParams),
    responses(
        (status = 200, description = "Emails, newest first", body = Vec<OutboxOut>),
        (status = 403, response = Forbidden),
    ))]
pub async fn outbox(
    State(app): State<App>,
    api: ApiUser,
    ValidQuery(q): ValidQuery<OutboxParams>,
) -> AppResult<Json<Vec<OutboxOut>>> {
    api.admin()?;
    let status = match q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.parse::<OutboxStatus>()
                .map_err(|e| AppError::invalid("status", e))?,
        ),
        None => None,
    };
    Ok(Json(
        app.store
            .outbox(&OutboxQuery {
                status,
                ticket_id: q.ticket_id,
                limit: q.limit.unwrap_or(100).clamp(1, 1000),
            })
            .await?
            .into_iter()
            .map(outbox_out)
            .collect(),
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Events older than this id.
    pub before: Option<i64>,
    /// How many, 1–1000 (default 100).
    pub limit: Option<i64>,
}

/// Admins: the audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", security(("bearer" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "Events, newest first", body = Vec<EventOut>),
        (status = 403, response = Forbidden),
    ))]
pub async fn audit(
    State(app): State<App>,
    api: ApiUser,
    ValidQuery(q): ValidQuery<AuditParams>,
) -> AppResult<Json<Vec<EventOut>>> {
    api.admin()?;
    Ok(Json(
        app.store
            .audit_log(q.before, q.limit.unwrap_or(100).clamp(1, 1000))
            .await?
            .into_iter()
            .map(event_out)
            .collect(),
    ))
}

// ---------------------------------------------------------------- endpoints

/// The caller's endpoints: a customer's subscription's, an admin's staff's.
#[utoipa::path(get, path = "/api/v1/endpoints", tag = "endpoints", security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoints, oldest first", body = Vec<EndpointOut>),
        (status = 403, response = Forbidden),
    ))]
pub async fn endpoints(
    State(app): State<App>,
    ApiUser(user): ApiUser,
) -> AppResult<Json<Vec<EndpointOut>>> {
    let list = desk::endpoints::list(&app, &user).await?;
    Ok(Json(list.into_iter().map(endpoint_out).collect()))
}

/// Registers an endpoint. Customers: signed webhooks on public HTTPS
/// addresses, for their subscription's tickets. Admins: staff's webhooks,
/// Slack or Teams chats, for every ticket. The secret is in this answer
/// only.
#[utoipa::path(post, path = "/api/v1/endpoints", tag = "endpoints", security(("bearer" = [])),
    request_body = EndpointIn,
    responses(
        (status = 201, description = "Registered, with its secret shown this once", body = EndpointSecretOut),
        (status = 403, response = Forbidden),
        (status = 422, description = "The kind, URL or events are refused, `field` says which (`invalid_input`)", body = ErrorBody),
    ))]
pub async fn create_endpoint(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ApiJson(body): ApiJson<EndpointIn>,
) -> AppResult<Response> {
    let registered = desk::endpoints::register(
        &app,
        &user,
        &desk::endpoints::NewEndpoint {
            kind: body.kind,
            url: body.url,
            events: body.events,
        },
    )
    .await?;
    let out = EndpointSecretOut {
        endpoint: endpoint_out(registered.endpoint),
        secret: registered.secret,
    };
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// One of the caller's endpoints.
#[utoipa::path(get, path = "/api/v1/endpoints/{id}", tag = "endpoints", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointOut),
        (status = 403, response = Forbidden),
    ))]
pub async fn endpoint(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Json<EndpointOut>> {
    let endpoint = desk::endpoints::get(&app, &user, parse_id(&id)?).await?;
    Ok(Json(endpoint_out(endpoint)))
}

/// Enables or disables an endpoint. Disabling fails what waits to be posted.
#[utoipa::path(patch, path = "/api/v1/endpoints/{id}", tag = "endpoints", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint's id")), request_body = EndpointPatchIn,
    responses(
        (status = 200, description = "The endpoint as it is now", body = EndpointOut),
        (status = 403, response = Forbidden),
    ))]
pub async fn update_endpoint(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
    ApiJson(body): ApiJson<EndpointPatchIn>,
) -> AppResult<Json<EndpointOut>> {
    let endpoint = desk::endpoints::set_enabled(&app, &user, parse_id(&id)?, body.enabled).await?;
    Ok(Json(endpoint_out(endpoint)))
}

/// Removes an endpoint and its delivery log.
#[utoipa::path(delete, path = "/api/v1/endpoints/{id}", tag = "endpoints", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, response = Forbidden),
    ))]
pub async fn delete_endpoint(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<StatusCode> {
    desk::endpoints::remove(&app, &user, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new secret for a signed webhook, shown this once. The secret before
/// keeps signing beside it for 24 hours.
#[utoipa::path(post, path = "/api/v1/endpoints/{id}/rotate", tag = "endpoints", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "Rotated, with the new secret", body = EndpointSecretOut),
        (status = 403, response = Forbidden),
        (status = 422, description = "A team chat has no secret to rotate (`invalid_input`)", body = ErrorBody),
    ))]
pub async fn rotate_endpoint(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Json<EndpointSecretOut>> {
    let rotated = desk::endpoints::rotate(&app, &user, parse_id(&id)?).await?;
    Ok(Json(EndpointSecretOut {
        endpoint: endpoint_out(rotated.endpoint),
        secret: rotated.secret,
    }))
}

/// Posts an `endpoint.test` event to the endpoint, through the outbox.
#[utoipa::path(post, path = "/api/v1/endpoints/{id}/test", tag = "endpoints", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses(
        (status = 202, description = "On its way: the delivery log shows how it went", body = TestPostOut),
        (status = 403, response = Forbidden),
        (status = 422, description = "The endpoint is disabled (`invalid_input`)", body = ErrorBody),
    ))]
pub async fn test_endpoint(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Response> {
    let id = desk::endpoints::send_test(&app, &user, parse_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(TestPostOut { id })).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesParams {
    /// How many, 1–1000 (default 100).
    pub limit: Option<i64>,
}

/// An endpoint's delivery log, newest first.
#[utoipa::path(get, path = "/api/v1/endpoints/{id}/deliveries", tag = "endpoints", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint's id"), DeliveriesParams),
    responses(
        (status = 200, description = "Posts to it, newest first", body = Vec<DeliveryOut>),
        (status = 403, response = Forbidden),
    ))]
pub async fn endpoint_deliveries(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
    ValidQuery(q): ValidQuery<DeliveriesParams>,
) -> AppResult<Json<Vec<DeliveryOut>>> {
    let log = desk::endpoints::deliveries(
        &app,
        &user,
        parse_id(&id)?,
        q.limit.unwrap_or(100).clamp(1, 1000),
    )
    .await?;
    Ok(Json(log.into_iter().map(delivery_out).collect()))
}

// ---------------------------------------------------------------- verdicts

/// The requester's verdict on a completed restore, once: the data is right
/// or not (which reopens the ticket to its engineer), and a 1–5 rating.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/verdict", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The ticket's id")), request_body = VerdictIn,
    responses(
        (status = 201, description = "Recorded", body = VerdictOut),
        (status = 403, description = "Only the person who filed the request may give it (`forbidden`)", body = ErrorBody),
        (status = 409, description = "Not handed over yet (`wrong_state`), or given already (`verdict_given`)", body = ErrorBody),
        (status = 422, description = "A field is refused, `field` says which (`invalid_input`)", body = ErrorBody),
    ))]
pub async fn give_verdict(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
    ApiJson(body): ApiJson<VerdictIn>,
) -> AppResult<Response> {
    let input = crate::domain::verdict::VerdictInput {
        data_right: body.data_right,
        comment: body.comment.unwrap_or_default(),
        rating: body.rating,
        rating_comment: body.rating_comment.unwrap_or_default(),
    };
    let verdict = desk::verdicts::give(
        &app,
        parse_id(&id)?,
        desk::verdicts::Giver::User(&user),
        &input,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(verdict_out(verdict))).into_response())
}

/// A ticket's verdict, if its customer gave one.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/verdict", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The ticket's id")),
    responses((status = 200, description = "The verdict", body = VerdictOut)))]
pub async fn ticket_verdict(
    State(app): State<App>,
    ApiUser(user): ApiUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Json<VerdictOut>> {
    let verdict = desk::verdicts::of_ticket(&app, &user, parse_id(&id)?)
        .await?
        .ok_or_else(|| {
            AppError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "No verdict yet: the customer has not said whether the data is right",
            )
        })?;
    Ok(Json(verdict_out(verdict)))
}

/// Admins: customers' ratings of the last twelve months, by engineer and by month.
#[utoipa::path(get, path = "/api/v1/ratings", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The ratings", body = RatingsOut),
        (status = 403, response = Forbidden),
    ))]
pub async fn ratings(State(app): State<App>, api: ApiUser) -> AppResult<Json<RatingsOut>> {
    let admin = api.admin()?;
    let (by_engineer, by_month) = desk::verdicts::ratings(&app, admin).await?;
    Ok(Json(RatingsOut {
        by_engineer: by_engineer.into_iter().map(rating_out).collect(),
        by_month: by_month.into_iter().map(rating_out).collect(),
    }))
}

/// Staff: completed restores whose customer has not said whether the data
/// is right, most recently completed first.
#[utoipa::path(get, path = "/api/v1/handovers", tag = "tickets", security(("bearer" = [])),
    responses(
        (status = 200, description = "Unconfirmed hand-overs", body = Vec<TicketOut>),
        (status = 403, response = Forbidden),
    ))]
pub async fn handovers(
    State(app): State<App>,
    ApiUser(user): ApiUser,
) -> AppResult<Json<Vec<TicketOut>>> {
    if !user.role.works_tickets() {
        return Err(AppError::forbidden());
    }
    let mut names = Names::load(&app, &user).await?;
    let mut out = Vec::new();
    for ticket in app.store.unconfirmed_handovers(100).await? {
        out.push(ticket_out(&app, &user, &mut names, ticket).await?);
    }
    Ok(Json(out))
}
