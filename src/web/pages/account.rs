//! Signing in and out, and where each role lands.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Chrome, FormErrors, chrome, flash, refused, render};
use crate::app::App;
use crate::desk::admin as admin_ops;
use crate::domain::actor::Role;
use crate::web::auth::{AnyUser, AuthSession, ClientAddr, Credentials, SignedIn, Visitor};
use crate::web::csrf;
use crate::web::error::{AppError, AppResult};
use crate::web::limits::Limits;
use crate::web::{ValidForm, ValidQuery};

/// Where a role starts.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Customer => "/clusters",
        _ => "/staff/tickets",
    }
}

pub async fn home(visitor: Visitor) -> Redirect {
    match visitor.user {
        Some(user) => Redirect::to(home_of(user.role)),
        None => Redirect::to("/login"),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Where `next` leads, if it stays on this site: it is resolved the way a
/// browser would (tabs and newlines dropped, backslashes read as slashes)
/// against the desk's own address, and only a path of that same origin is
/// kept. `/%09/evil.example`, `//evil.example`, `/\\evil.example` and
/// `https://…` all lead elsewhere and give nothing.
pub fn local_path(next: &str, public_url: &str) -> Option<String> {
    if !next.starts_with('/') {
        return None;
    }
    let base = url::Url::parse(&format!("{public_url}/")).ok()?;
    let target = base.join(next).ok()?;
    if target.origin() != base.origin() {
        return None;
    }
    let mut path = target.path().to_string();
    if let Some(query) = target.query() {
        path.push('?');
        path.push_str(query);
    }
    Some(path)
}

pub async fn login_page(
    State(app): State<App>,
    visitor: Visitor,
    ValidQuery(q): ValidQuery<NextQuery>,
) -> AppResult<Response> {
    let public_url = app.settings.public_url();
    if let Some(user) = &visitor.user {
        let to = local_path(&q.next, &public_url).unwrap_or_else(|| home_of(user.role).into());
        return Ok(Redirect::to(&to).into_response());
    }
    let page = LoginPage {
        chrome: chrome(&visitor.session, None, "Sign in", "login").await?,
        email: String::new(),
        next: local_path(&q.next, &public_url).unwrap_or_default(),
        error: None,
    };
    render(StatusCode::OK, &page)
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(app): State<App>,
    mut auth: AuthSession,
    visitor: Visitor,
    State(limits): State<Arc<Limits>>,
    ClientAddr(addr): ClientAddr,
    ValidForm(form): ValidForm<LoginForm>,
) -> AppResult<Response> {
    let public_url = app.settings.public_url();
    let again = |status: StatusCode, message: String| {
        let session = visitor.session.clone();
        let email = form.email.clone();
        let next = local_path(&form.next, &public_url).unwrap_or_default();
        async move {
            let page = LoginPage {
                chrome: chrome(&session, None, "Sign in", "login").await?,
                email,
                next,
                error: Some(message),
            };
            render(status, &page)
        }
    };
    if let Err(limited) = limits.sign_in(addr, &form.email) {
        let mut response = again(limited.status, limited.message).await?;
        if let Some(wait) = limited.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, wait.into());
        }
        return Ok(response);
    }
    let user = auth
        .authenticate(Credentials {
            email: form.email.clone(),
            password: form.password.clone(),
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "sign-in failed");
            AppError::internal()
        })?;
    let Some(user) = user else {
        limits.sign_in_failed(&form.email);
        tracing::info!(%addr, "sign-in refused");
        return again(
            StatusCode::UNAUTHORIZED,
            "That email and password do not match an active account.".into(),
        )
        .await;
    };
    // A new session id (against fixation) and a new form token. axum-login
    // renews the id only for a session nobody was signed in to; renewing it
    // here as well covers switching accounts.
    auth.login(&user).await.map_err(|e| {
        tracing::error!(error = %e, "storing the session failed");
        AppError::internal()
    })?;
    auth.session.cycle_id().await?;
    csrf::renew(&auth.session).await?;
    limits.signed_in(addr, &form.email);
    tracing::info!(user = %user.user.email, "signed in");
    let to = local_path(&form.next, &public_url).unwrap_or_else(|| home_of(user.user.role).into());
    Ok(Redirect::to(&to).into_response())
}

pub async fn logout(mut auth: AuthSession) -> AppResult<Response> {
    let who = auth.user.as_ref().map(|u| u.user.email.clone());
    auth.logout().await.map_err(|e| {
        tracing::error!(error = %e, "ending the session failed");
        AppError::internal()
    })?;
    if let Some(email) = who {
        tracing::info!(user = %email, "signed out");
    }
    flash(&auth.session, "You are signed out.").await?;
    Ok(Redirect::to("/login").into_response())
}

#[cfg(test)]
mod tests {
    use super::local_path;

    const SITE: &str = "https://desk.example";

    #[test]
    fn next_stays_on_the_site() {
        for (next, expected) in [
            ("/tickets", Some("/tickets")),
            ("/tickets/1?tab=history", Some("/tickets/1?tab=history")),
            ("/a/../staff", Some("/staff")),
            ("/%09/evil.example", Some("/%09/evil.example")),
            ("/\t/evil.example", None),
            ("//evil.example/x", None),
            ("/\\evil.example", None),
            ("/\n/evil.example", None),
            ("https://evil.example/", None),
            ("javascript:alert(1)", None),
            ("", None),
        ] {
            assert_eq!(local_path(next, SITE).as_deref(), expected, "{next:?}");
        }
    }
}

// ---------------------------------------------------------------- password

#[derive(Template)]
#[template(path = "account/password.html")]
struct PasswordPage {
    chrome: Chrome,
    /// An admin reset it: nothing else opens until it is changed.
    forced: bool,
    errors: FormErrors,
}

pub async fn password_page(AnyUser(viewer): AnyUser) -> AppResult<Response> {
    let page = PasswordPage {
        chrome: chrome(&viewer.session, Some(&viewer.user), "Password", "password").await?,
        forced: viewer.user.must_change_password,
        errors: FormErrors::default(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Debug, Default, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
}

pub async fn change_password(
    State(app): State<App>,
    mut auth: AuthSession,
    AnyUser(viewer): AnyUser,
    ValidForm(form): ValidForm<PasswordForm>,
) -> AppResult<Response> {
    let changed = admin_ops::change_password(
        &app,
        &viewer.user,
        &form.current,
        &form.password,
        &form.repeat,
    )
    .await;
    match changed {
        Ok(user) => {
            // The change ended every session of the account; this one
            // signs in again under the new password.
            let role = user.role;
            auth.login(&SignedIn::new(user)).await.map_err(|e| {
                tracing::error!(error = %e, "storing the session failed");
                AppError::internal()
            })?;
            csrf::renew(&auth.session).await?;
            flash(&auth.session, "Your password is changed.").await?;
            Ok(Redirect::to(home_of(role)).into_response())
        }
        Err(error) => {
            refused(error.into(), |errors| async move {
                let page = PasswordPage {
                    chrome: chrome(&viewer.session, Some(&viewer.user), "Password", "password")
                        .await?,
                    forced: viewer.user.must_change_password,
                    errors,
                };
                render(StatusCode::OK, &page)
            })
            .await
        }
    }
}
