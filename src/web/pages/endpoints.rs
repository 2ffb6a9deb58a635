//! The integrations pages: a customer's webhooks at `/account/endpoints`,
//! staff's webhooks and team chats at `/admin/endpoints`. A secret is shown
//! on the page that answers its creation or rotation, and never again (it
//! is not put in the session either).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::common::times_for;
use super::{Chrome, FormErrors, chrome, flash, refused, render};
use crate::app::App;
use crate::desk::endpoints::{self, NewEndpoint, shown_url};
use crate::domain::endpoint::{Endpoint, EndpointKind, EventType};
use crate::domain::ids::EndpointId;
use crate::store::{EndpointOwner, OutboxMessage};
use crate::web::auth::{AdminUser, CustomerUser, Viewer};
use crate::web::error::{AppError, AppResult};
use crate::web::parse_id;
use crate::web::views::Stamp;
use crate::web::{ValidForm, ValidPath};

/// Where a viewer's endpoints live.
fn base_of(viewer: &Viewer) -> &'static str {
    if viewer.user.role == crate::domain::actor::Role::Admin {
        "/admin/endpoints"
    } else {
        "/account/endpoints"
    }
}

pub struct EndpointRow {
    pub endpoint: Endpoint,
    pub shown_url: String,
    pub created: Stamp,
    pub disabled: Option<Stamp>,
    pub events: String,
}

/// An event a form offers, and whether it is ticked.
pub struct EventChoice {
    pub name: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "endpoints.html")]
struct EndpointsPage {
    chrome: Chrome,
    base: &'static str,
    staff: bool,
    rows: Vec<EndpointRow>,
    kinds: Vec<(&'static str, &'static str)>,
    choices: Vec<EventChoice>,
    url: String,
    /// A secret just made: for this endpoint, shown once.
    secret: Option<(String, String)>,
    errors: FormErrors,
}

fn choices(staff: bool, ticked: &[String]) -> Vec<EventChoice> {
    EventType::ALL
        .into_iter()
        .filter(|e| e.subscribable() && (staff || !e.staff_only()))
        .map(|e| EventChoice {
            name: e.as_str(),
            checked: ticked.is_empty() || ticked.iter().any(|t| t == e.as_str()),
        })
        .collect()
}

fn row(app: &App, viewer: &Viewer, endpoint: Endpoint) -> EndpointRow {
    let times = times_for(app, &viewer.user);
    EndpointRow {
        shown_url: shown_url(endpoint.kind, &endpoint.url),
        created: times.stamp(endpoint.created_at),
        disabled: endpoint.disabled_at.map(|t| times.stamp(t)),
        events: endpoint
            .events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        endpoint,
    }
}

struct Draft {
    url: String,
    events: Vec<String>,
}

async fn list_page(
    app: &App,
    viewer: &Viewer,
    status: StatusCode,
    draft: Draft,
    secret: Option<(String, String)>,
    errors: FormErrors,
) -> AppResult<Response> {
    let staff = endpoints::owner_of(&viewer.user).map_err(AppError::from)? == EndpointOwner::Staff;
    let rows = endpoints::list(app, &viewer.user)
        .await?
        .into_iter()
        .map(|e| row(app, viewer, e))
        .collect();
    let kinds = if staff {
        vec![
            (EndpointKind::Webhook.as_str(), "Signed webhook (JSON)"),
            (EndpointKind::Slack.as_str(), "Slack incoming webhook"),
            (EndpointKind::Teams.as_str(), "Microsoft Teams workflow"),
        ]
    } else {
        vec![(EndpointKind::Webhook.as_str(), "Signed webhook (JSON)")]
    };
    let page = EndpointsPage {
        chrome: chrome(
            &viewer.session,
            Some(&viewer.user),
            "Integrations",
            "endpoints",
        )
        .await?,
        base: base_of(viewer),
        staff,
        rows,
        kinds,
        choices: choices(staff, &draft.events),
        url: draft.url,
        secret,
        errors,
    };
    render(status, &page)
}

pub async fn customer_list(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
) -> AppResult<Response> {
    list(app, viewer).await
}

pub async fn admin_list(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
) -> AppResult<Response> {
    list(app, viewer).await
}

async fn list(app: App, viewer: Viewer) -> AppResult<Response> {
    let draft = Draft {
        url: String::new(),
        events: Vec::new(),
    };
    list_page(
        &app,
        &viewer,
        StatusCode::OK,
        draft,
        None,
        FormErrors::default(),
    )
    .await
}

/// The form's fields: `events` repeats, one per ticked box.
fn fields(form: &[(String, String)], name: &str) -> Vec<String> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

fn field(form: &[(String, String)], name: &str) -> String {
    fields(form, name).into_iter().next().unwrap_or_default()
}

pub async fn customer_create(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidForm(form): ValidForm<Vec<(String, String)>>,
) -> AppResult<Response> {
    create(app, viewer, form).await
}

pub async fn admin_create(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidForm(form): ValidForm<Vec<(String, String)>>,
) -> AppResult<Response> {
    create(app, viewer, form).await
}

async fn create(app: App, viewer: Viewer, form: Vec<(String, String)>) -> AppResult<Response> {
    let new = NewEndpoint {
        kind: field(&form, "kind"),
        url: field(&form, "url"),
        events: fields(&form, "events"),
    };
    match endpoints::register(&app, &viewer.user, &new).await {
        Ok(made) => {
            let secret = made
                .secret
                .map(|s| (shown_url(made.endpoint.kind, &made.endpoint.url), s));
            if secret.is_none() {
                flash(
                    &viewer.session,
                    format!(
                        "{} added.",
                        shown_url(made.endpoint.kind, &made.endpoint.url)
                    ),
                )
                .await?;
                return Ok(Redirect::to(base_of(&viewer)).into_response());
            }
            let draft = Draft {
                url: String::new(),
                events: Vec::new(),
            };
            list_page(
                &app,
                &viewer,
                StatusCode::CREATED,
                draft,
                secret,
                FormErrors::default(),
            )
            .await
        }
        Err(error) => {
            let draft = Draft {
                url: new.url,
                events: new.events,
            };
            refused(error.into(), |errors| {
                list_page(&app, &viewer, StatusCode::OK, draft, None, errors)
            })
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "endpoint.html")]
struct EndpointPage {
    chrome: Chrome,
    base: &'static str,
    row: EndpointRow,
    deliveries: Vec<DeliveryRow>,
}

pub struct DeliveryRow {
    pub post: OutboxMessage,
    pub created: Stamp,
    pub delivered: Option<Stamp>,
    pub next: Stamp,
}

pub async fn customer_show(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Response> {
    show(app, viewer, id).await
}

pub async fn admin_show(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Response> {
    show(app, viewer, id).await
}

async fn show(app: App, viewer: Viewer, id: String) -> AppResult<Response> {
    let id: EndpointId = parse_id(&id)?;
    let endpoint = endpoints::get(&app, &viewer.user, id).await?;
    let times = times_for(&app, &viewer.user);
    let deliveries = endpoints::deliveries(&app, &viewer.user, id, 50)
        .await?
        .into_iter()
        .map(|post| DeliveryRow {
            created: times.stamp(post.created_at),
            delivered: post.sent_at.map(|t| times.stamp(t)),
            next: times.stamp(post.next_attempt_at),
            post,
        })
        .collect();
    let page = EndpointPage {
        chrome: chrome(&viewer.session, Some(&viewer.user), "Endpoint", "endpoints").await?,
        base: base_of(&viewer),
        row: row(&app, &viewer, endpoint),
        deliveries,
    };
    render(StatusCode::OK, &page)
}

pub async fn customer_act(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidPath((id, action)): ValidPath<(String, String)>,
    ValidForm(form): ValidForm<Vec<(String, String)>>,
) -> AppResult<Response> {
    act(app, viewer, id, action, form).await
}

pub async fn admin_act(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidPath((id, action)): ValidPath<(String, String)>,
    ValidForm(form): ValidForm<Vec<(String, String)>>,
) -> AppResult<Response> {
    act(app, viewer, id, action, form).await
}

/// `test`, `enable`, `disable`, `rotate` or `delete` (which asks for its
/// confirmation box to be ticked).
async fn act(
    app: App,
    viewer: Viewer,
    id: String,
    action: String,
    form: Vec<(String, String)>,
) -> AppResult<Response> {
    let id: EndpointId = parse_id(&id)?;
    let user = &viewer.user;
    let base = base_of(&viewer);
    let back = format!("{base}/{id}");
    let message = match action.as_str() {
        "test" => {
            endpoints::send_test(&app, user, id).await?;
            "A test event is on its way: its delivery shows below.".to_string()
        }
        "enable" => {
            endpoints::set_enabled(&app, user, id, true).await?;
            "Enabled: new notices are posted to it again.".to_string()
        }
        "disable" => {
            endpoints::set_enabled(&app, user, id, false).await?;
            "Disabled: nothing is posted to it until it is enabled again.".to_string()
        }
        "delete" => {
            if field(&form, "confirm") != "yes" {
                return Err(AppError::invalid(
                    "confirm",
                    "Tick the box to confirm: the endpoint and its delivery log are removed for good",
                ));
            }
            endpoints::remove(&app, user, id).await?;
            flash(&viewer.session, "Endpoint removed.").await?;
            return Ok(Redirect::to(base).into_response());
        }
        "rotate" => {
            let rotated = endpoints::rotate(&app, user, id).await?;
            let secret = rotated
                .secret
                .map(|s| (shown_url(rotated.endpoint.kind, &rotated.endpoint.url), s));
            let draft = Draft {
                url: String::new(),
                events: Vec::new(),
            };
            return list_page(
                &app,
                &viewer,
                StatusCode::OK,
                draft,
                secret,
                FormErrors::default(),
            )
            .await;
        }
        _ => return Err(AppError::not_found()),
    };
    flash(&viewer.session, message).await?;
    Ok(Redirect::to(&back).into_response())
}
