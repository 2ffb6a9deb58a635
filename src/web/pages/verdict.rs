//! The one-click verdict page of the completed email: no sign-in, the
//! link's token is the requester's proof. It works until a verdict is
//! given, and answers "not found" to a link that is not the ticket's own.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::customer::VerdictForm;
use super::{Chrome, FormErrors, chrome, render};
use crate::app::App;
use crate::desk::verdicts::{Giver, give, ticket_of_link};
use crate::domain::ids::TicketId;
use crate::domain::verdict::VerdictRefusal;
use crate::web::auth::Visitor;
use crate::web::error::{AppError, AppResult};
use crate::web::{ValidForm, ValidPath, parse_id};

#[derive(Template)]
#[template(path = "verdict.html")]
struct VerdictPage {
    chrome: Chrome,
    reference: String,
    source_cluster: String,
    new_cluster_name: String,
    verdict_action: String,
    done: Option<&'static str>,
    errors: FormErrors,
}

async fn page(
    app: &App,
    visitor: &Visitor,
    ticket_id: TicketId,
    token: &str,
    status: StatusCode,
    done: Option<&'static str>,
    errors: FormErrors,
) -> AppResult<Response> {
    let ticket = ticket_of_link(app, ticket_id, token).await?;
    let source_cluster = app
        .cluster_name(ticket.cluster_id)
        .await?
        .unwrap_or_default();
    let reference = ticket.reference();
    let page = VerdictPage {
        chrome: chrome(
            &visitor.session,
            visitor.user.as_ref(),
            format!("{reference}: your verdict"),
            "verdict",
        )
        .await?,
        reference,
        source_cluster,
        new_cluster_name: ticket.new_cluster_name.clone(),
        verdict_action: format!("/verdict/{ticket_id}/{token}"),
        done,
        errors,
    };
    render(status, &page)
}

pub async fn show(
    State(app): State<App>,
    visitor: Visitor,
    ValidPath((id, token)): ValidPath<(String, String)>,
) -> AppResult<Response> {
    let id: TicketId = parse_id(&id)?;
    let ticket = ticket_of_link(&app, id, &token).await?;
    if app.store.verdict(ticket.id).await?.is_some() {
        let error = AppError::from(crate::desk::DeskError::Verdict(
            VerdictRefusal::AlreadyGiven,
        ));
        return page(
            &app,
            &visitor,
            id,
            &token,
            StatusCode::CONFLICT,
            None,
            FormErrors::from_error(&error),
        )
        .await;
    }
    page(
        &app,
        &visitor,
        id,
        &token,
        StatusCode::OK,
        None,
        FormErrors::default(),
    )
    .await
}

pub async fn submit(
    State(app): State<App>,
    visitor: Visitor,
    ValidPath((id, token)): ValidPath<(String, String)>,
    ValidForm(form): ValidForm<VerdictForm>,
) -> AppResult<Response> {
    let id: TicketId = parse_id(&id)?;
    match give(&app, id, Giver::Link(&token), &form.input()).await {
        Ok(v) => {
            let done = if v.data_right {
                "Your verdict is recorded. We are glad the restore did what you needed."
            } else {
                "The ticket is back with the engineer, who will answer on it. You will be emailed."
            };
            page(
                &app,
                &visitor,
                id,
                &token,
                StatusCode::OK,
                Some(done),
                FormErrors::default(),
            )
            .await
        }
        Err(error) => {
            let error = AppError::from(error);
            if error.status.as_u16() == 404 || error.status.is_server_error() {
                return Err(error);
            }
            page(
                &app,
                &visitor,
                id,
                &token,
                error.status,
                None,
                FormErrors::from_error(&error),
            )
            .await
        }
    }
}
