//! The Help + support entry that leads to the request form.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::super::{Chrome, chrome, render};
use super::request::{ClusterOption, cluster_options};
use crate::app::App;
use crate::desk::scope_for;
use crate::web::auth::CustomerUser;
use crate::web::error::AppResult;

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
