//! The server-rendered pages: sign-in, the customer portal, the staff
//! console and the admin pages. Every page works without JavaScript; a
//! little script in `static/` enhances the request form and the progress bar.

pub mod account;
pub mod admin;
pub mod common;
pub mod customer;
pub mod drills;
pub mod endpoints;
pub mod hosts;
pub mod register;
pub mod staff;
pub mod transactions;
pub mod verdict;

use askama::Template;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use tower_sessions::Session;

use super::auth::AuthSession;
use super::csrf;
use super::error::{AppError, AppResult, ErrorPage, FieldError};
use crate::domain::actor::Role;
use crate::store::User;

/// The person in the page header.
#[derive(Debug, Clone)]
pub struct NavUser {
    pub name: String,
    pub email: String,
    pub role: Role,
}

impl NavUser {
    pub fn is_customer(&self) -> bool {
        self.role == Role::Customer
    }
    pub fn works_tickets(&self) -> bool {
        self.role.works_tickets()
    }
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
    pub fn role_label(&self) -> &'static str {
        super::views::role_label(self.role)
    }
}

/// What the layout around every page needs.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    /// Which navigation entry is current.
    pub nav: &'static str,
    pub user: Option<NavUser>,
    pub csrf: String,
    /// A one-time confirmation from the previous action.
    pub flash: Option<String>,
}

impl Chrome {
    pub fn current(&self, nav: &str) -> &'static str {
        if self.nav == nav { "page" } else { "false" }
    }
}

const FLASH: &str = "flash";

pub async fn chrome(
    session: &Session,
    user: Option<&User>,
    title: impl Into<String>,
    nav: &'static str,
) -> AppResult<Chrome> {
    Ok(Chrome {
        title: title.into(),
        nav,
        user: user.map(|u| NavUser {
            name: u.display_name.clone(),
            email: u.email.to_string(),
            role: u.role,
        }),
        csrf: csrf::token(session).await?,
        flash: take_flash(session).await?,
    })
}

/// The flash, removed once shown. Only a session that holds one is changed:
/// removing marks a session changed, and a changed session is written back
/// to the database at the end of the request.
async fn take_flash(session: &Session) -> AppResult<Option<String>> {
    if session.get::<String>(FLASH).await?.is_none() {
        return Ok(None);
    }
    Ok(session.remove::<String>(FLASH).await?)
}

/// A confirmation shown once on the next page.
pub async fn flash(session: &Session, text: impl Into<String>) -> AppResult<()> {
    session.insert(FLASH, text.into()).await?;
    Ok(())
}

/// Renders a template with a status.
pub fn render(status: StatusCode, page: &impl Template) -> AppResult<Response> {
    Ok((status, Html(page.render()?)).into_response())
}

pub fn ok(page: &impl Template) -> AppResult<Response> {
    render(StatusCode::OK, page)
}

/// Field errors of a form, looked up by field name in templates.
#[derive(Debug, Clone, Default)]
pub struct FormErrors(pub Vec<FieldError>);

impl FormErrors {
    pub fn from_error(error: &AppError) -> FormErrors {
        FormErrors(error.field_errors())
    }

    pub fn any(&self) -> bool {
        !self.0.is_empty()
    }

    /// Messages about one of `fields`.
    pub fn on(&self, fields: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|e| e.field.as_deref().is_some_and(|f| fields.contains(&f)))
            .map(|e| e.message.clone())
            .collect()
    }

    /// Messages about no field a form shows.
    pub fn other(&self, shown: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|e| e.field.as_deref().is_none_or(|f| !shown.contains(&f)))
            .map(|e| e.message.clone())
            .collect()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate {
    chrome: Chrome,
    status: u16,
    heading: &'static str,
    message: String,
}

fn heading(status: StatusCode) -> &'static str {
    match status.as_u16() {
        403 => "Not allowed",
        404 => "Not found",
        409 => "That did not work",
        413 => "Too large",
        422 => "Please check what you entered",
        429 => "Slow down",
        503 => "Unavailable",
        s if s >= 500 => "Something went wrong",
        _ => "That did not work",
    }
}

/// Turns an `AppError` answered on a page into an HTML page with the same
/// status and message, inside the layout.
pub async fn error_pages(request: Request, next: Next) -> Response {
    let session = request.extensions().get::<Session>().cloned();
    let user = request
        .extensions()
        .get::<AuthSession>()
        .and_then(|a| a.user.clone())
        .map(|signed_in| signed_in.user);
    let response = next.run(request).await;
    let Some(ErrorPage(error)) = response.extensions().get::<ErrorPage>().cloned() else {
        return response;
    };
    let chrome = match &session {
        Some(session) => chrome(session, user.as_ref(), heading(error.status), "").await,
        None => Err(AppError::internal()),
    };
    let chrome = chrome.unwrap_or_else(|_| Chrome {
        title: heading(error.status).into(),
        nav: "",
        user: None,
        csrf: String::new(),
        flash: None,
    });
    let page = ErrorTemplate {
        chrome,
        status: error.status.as_u16(),
        heading: heading(error.status),
        message: error.message.clone(),
    };
    let mut html = match page.render() {
        Ok(html) => (error.status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the error page failed");
            (error.status, error.message).into_response()
        }
    };
    for name in [header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            html.headers_mut().insert(name, value.clone());
        }
    }
    html
}

/// An error page outside any session: for failures met before or after
/// the session layers (the session store itself failing).
pub fn sessionless_error_page(error: &AppError) -> Response {
    let page = ErrorTemplate {
        chrome: Chrome {
            title: heading(error.status).into(),
            nav: "",
            user: None,
            csrf: String::new(),
            flash: None,
        },
        status: error.status.as_u16(),
        heading: heading(error.status),
        message: error.message.clone(),
    };
    let mut response = match page.render() {
        Ok(html) => (error.status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the error page failed");
            (error.status, error.message.clone()).into_response()
        }
    };
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

/// Pages nobody routes to.
pub async fn not_found() -> AppError {
    AppError::not_found()
}

/// After a refused change: the page again with the message, or the error.
pub async fn refused<F, Fut>(error: AppError, again: F) -> AppResult<Response>
where
    F: FnOnce(FormErrors) -> Fut,
    Fut: std::future::Future<Output = AppResult<Response>>,
{
    if matches!(error.status.as_u16(), 403 | 404) || error.status.is_server_error() {
        return Err(error);
    }
    let status = error.status;
    let mut response = again(FormErrors::from_error(&error)).await?;
    *response.status_mut() = status;
    Ok(response)
}
