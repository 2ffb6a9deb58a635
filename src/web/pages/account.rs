//! Signing in and out, and where each role lands.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Chrome, chrome, flash, render};
use crate::domain::actor::Role;
use crate::web::auth::{AuthSession, ClientAddr, Credentials, Visitor};
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

/// Only paths on this site: never `//elsewhere` or `https://…`.
fn local_path(next: &str) -> Option<&str> {
    (next.starts_with('/') && !next.starts_with("//") && !next.contains('\\')).then_some(next)
}

pub async fn login_page(
    visitor: Visitor,
    ValidQuery(q): ValidQuery<NextQuery>,
) -> AppResult<Response> {
    if let Some(user) = &visitor.user {
        let to = local_path(&q.next).unwrap_or(home_of(user.role));
        return Ok(Redirect::to(to).into_response());
    }
    let page = LoginPage {
        chrome: chrome(&visitor.session, None, "Sign in", "login").await?,
        email: String::new(),
        next: local_path(&q.next).unwrap_or_default().to_string(),
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
    mut auth: AuthSession,
    visitor: Visitor,
    State(limits): State<Arc<Limits>>,
    ClientAddr(addr): ClientAddr,
    ValidForm(form): ValidForm<LoginForm>,
) -> AppResult<Response> {
    let again = |status: StatusCode, message: String| {
        let session = visitor.session.clone();
        let email = form.email.clone();
        let next = local_path(&form.next).unwrap_or_default().to_string();
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
    tracing::info!(user = %user.user.email, "signed in");
    let to = local_path(&form.next).unwrap_or(home_of(user.user.role));
    Ok(Redirect::to(to).into_response())
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
