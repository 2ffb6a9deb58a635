//! My requests, and the ticket page with messages, cancel and live progress.

use std::collections::HashMap;

use crate::domain::ids::TicketId;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::common;
use super::super::common::{
    EventView, JobView, MessageView, TicketRow, cluster_names, event_views, message_views,
    parse_id, people, state_class, ticket_row, times_for,
};
use super::super::{Chrome, FormErrors, chrome, flash, refused, render};
use crate::app::App;
use crate::desk::{self, scope_for};
use crate::domain::cluster::Cluster;
use crate::domain::ticket::TicketCommand;
use crate::store::{AssigneeFilter, TicketOrder, TicketQuery};
use crate::web::auth::CustomerUser;
use crate::web::error::{AppError, AppResult};
use crate::web::views::{Times, zone_of};
use crate::web::{ValidForm, ValidPath, ValidQuery};

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
            response_due_before: None,
            search: None,
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
    /// Moving the target, when the customer may now.
    retarget: Option<common::TargetFormView>,
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
    verdict: Option<crate::domain::verdict::Verdict>,
    may_give_verdict: bool,
    verdict_action: String,
    /// How the request ended, or stopped, in the customer's words.
    ending: Option<Ending>,
    /// The checks the completed restore passed, as the email mentions.
    verification: Option<crate::domain::verification::VerificationReport>,
    /// Where a follow-up request starts: the same cluster, linked.
    follow_up: Option<String>,
    /// A paused copy waiting for this customer's decision.
    decision: Option<DecisionView>,
}

/// What the customer decides about: the paused copy, where it answers,
/// until when, and the form to move it forward or back.
pub struct DecisionView {
    pub connection: crate::domain::cluster::Connection,
    pub decide_by: crate::web::views::Stamp,
    pub reached: Option<crate::web::views::Stamp>,
    pub form: common::TargetFormView,
}

/// What the customer reads when a request stopped or closed: what happened
/// and what happens next, never the internal error.
pub struct Ending {
    pub title: &'static str,
    pub happened: String,
    pub next: String,
}

/// The words a customer reads for a failed restore's error code.
fn failure_words(code: Option<&str>) -> &'static str {
    match code.unwrap_or_default() {
        "zone_unavailable" | "no_backup_in_online_zone" => {
            "The backups for the moment you chose were out of reach: the zones holding them did not answer."
        }
        "verification_failed" => {
            "The restored copy did not pass our checks, so it was not handed over to you."
        }
        "cluster_name_taken" => {
            "A cluster with the new cluster's name appeared while we were restoring."
        }
        "target_not_reached" | "replay_failed" => {
            "The restore could not replay the log up to the moment you chose."
        }
        _ => "Something went wrong on our side while restoring; your own cluster was not touched.",
    }
}

fn ending_of(
    ticket: &crate::store::Ticket,
    job: Option<&crate::store::RestoreJob>,
    engineer: Option<&str>,
    source: &str,
) -> Option<Ending> {
    use crate::domain::ticket::TicketState as S;
    let engineer = engineer.unwrap_or("The support engineer");
    match ticket.state {
        S::Failed => Some(Ending {
            title: "The restore did not finish",
            happened: failure_words(job.and_then(|j| j.last_error_code.as_deref())).to_string(),
            next: format!(
                "{engineer} has been told and can start it again; you will be emailed when it                  runs. To restore another moment instead, file a follow-up request."
            ),
        }),
        S::Cancelled => Some(Ending {
            title: "This request is cancelled",
            happened: if job.is_some() {
                format!(
                    "The restore was stopped before it was handed over; what it had built is                      removed. {source} was never touched."
                )
            } else {
                "It was withdrawn before any restore started.".to_string()
            },
            next: "Nothing more happens on it. To restore after all, file a follow-up request."
                .to_string(),
        }),
        S::Rejected => Some(Ending {
            title: "This request was declined",
            happened: ticket
                .rejection_reason
                .clone()
                .unwrap_or_else(|| "The engineer declined it.".to_string()),
            next: "Nothing more happens on it. If something changed, file a follow-up request."
                .to_string(),
        }),
        S::Completed => Some(Ending {
            title: "This request is complete",
            happened: format!(
                "The new cluster {} holds {source} as of the moment you chose.",
                ticket.new_cluster_name
            ),
            next: "Tell us below whether the data is right. For another moment, file a                    follow-up request."
                .to_string(),
        }),
        _ => None,
    }
}

async fn ticket_page(
    app: &App,
    viewer: &crate::web::auth::Viewer,
    id: TicketId,
    errors: FormErrors,
    reply: String,
) -> AppResult<TicketPage> {
    let record = crate::desk::read::ticket_record(app, id, scope_for(&viewer.user))
        .await?
        .ok_or_else(AppError::not_found)?;
    let ticket = record.head.ticket.clone();
    // One clock on a ticket: the zone the customer entered its target in.
    let times = Times::new(zone_of(&ticket.time_zone), app.now());
    let cluster = record.cluster.clone();
    let job = record.head.job.clone();
    let new_cluster = record.new_cluster.clone();
    let messages = record.messages_for(false);
    let events = record.events.clone();
    let names = &record.names;
    let target_as_entered = common::target_as_entered(&ticket);
    let clusters = HashMap::from([(cluster.id, cluster.name.clone())]);
    let reference = ticket.reference();
    let state = ticket.state;
    // Only a handed-over restore has a verdict to read.
    let handed_over = job
        .as_ref()
        .is_some_and(|j| j.state == crate::domain::restore_job::JobState::Succeeded);
    let verdict = if handed_over {
        app.store.verdict(ticket.id).await?
    } else {
        None
    };
    let may_give_verdict = verdict.is_none()
        && state == crate::domain::ticket::TicketState::Completed
        && ticket.requester_id == viewer.user.id;
    let verdict_action = format!("/tickets/{}/verdict", ticket.id);
    let engineer = ticket.assignee_id.and_then(|id| names.get(&id).cloned());
    let ending = ending_of(&ticket, job.as_ref(), engineer.as_deref(), &cluster.name);
    let verification = job
        .as_ref()
        .filter(|_| state == crate::domain::ticket::TicketState::Completed)
        .and_then(|j| j.verification_report.clone());
    let follow_up = (state.is_terminal() || state == crate::domain::ticket::TicketState::Failed)
        .then(|| {
            format!(
                "/requests/new?cluster={}&follow_up={}",
                cluster.id, ticket.id
            )
        });
    let retarget = common::may_change_target(&ticket, job.as_ref(), &viewer.user).then(|| {
        common::TargetFormView::for_ticket(&ticket, format!("/tickets/{}/target", ticket.id))
    });
    let decision = record
        .head
        .paused_copy
        .clone()
        .zip(ticket.decision_due)
        .map(|(connection, due)| DecisionView {
            connection,
            decide_by: times.stamp(due),
            reached: job
                .as_ref()
                .and_then(|j| j.reached_point)
                .map(|t| times.precise(t)),
            form: common::TargetFormView::for_decision(&ticket),
        });
    Ok(TicketPage {
        decision,
        retarget,
        ending,
        verification,
        follow_up,
        verdict,
        may_give_verdict,
        verdict_action,
        chrome: chrome(&viewer.session, Some(&viewer.user), reference, "tickets").await?,
        may_cancel: state.customer_may_cancel(),
        may_reply: !state.is_terminal(),
        job: match job.as_ref() {
            Some(j) => Some(common::job_view_with_eta(app, j, &times).await?),
            None => None,
        },
        row: ticket_row(ticket, &times, &clusters, names, job.as_ref()),
        target_as_entered,
        cluster,
        new_cluster,
        messages: message_views(messages, names, &times),
        events: event_views(events, names, &times, true),
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
    /// `yes` when the customer ticked the box cancelling asks for.
    #[serde(default)]
    pub confirm: String,
    /// Why they cancel, if they say.
    #[serde(default)]
    pub reason: String,
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
            refused(error.into(), |errors| async move {
                render(
                    StatusCode::OK,
                    &ticket_page(app, viewer, id, errors, typed).await?,
                )
            })
            .await
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
    // Cancelling cannot be undone: when it is open to them, it needs its
    // box ticked.
    if form.confirm != "yes"
        && let Some(ticket) = app.store.ticket(id, scope_for(&viewer.user)).await?
        && ticket.state.customer_may_cancel()
    {
        let error = AppError::invalid(
            "confirm",
            "Tick the box to confirm that you want to cancel this request",
        );
        let page = ticket_page(
            &app,
            &viewer,
            id,
            FormErrors::from_error(&error),
            String::new(),
        )
        .await?;
        return render(error.status, &page);
    }
    customer_act(
        &app,
        &viewer,
        id,
        TicketCommand::Cancel {
            reason: form.reason.clone(),
        },
        form.version,
        "The request is cancelled.",
        String::new(),
    )
    .await
}

/// The customer moves the target in answer to the engineer's question.
pub async fn change_target(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidPath(id): ValidPath<String>,
    ValidForm(form): ValidForm<common::TargetForm>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    match desk::change_target(
        &app,
        &viewer.user,
        id,
        &form.input(),
        form.transaction(),
        &form.reason,
        form.version,
    )
    .await
    {
        Ok(ticket) => {
            flash(
                &viewer.session,
                "The new target passed its check and is back with your engineer.",
            )
            .await?;
            Ok(Redirect::to(&format!("/tickets/{}", ticket.id)).into_response())
        }
        Err(error) => {
            refused(error.into(), |errors| async move {
                // Beside the form when it is still offered; at the top
                // when the ticket moved on meanwhile.
                let mut page =
                    ticket_page(&app, &viewer, id, FormErrors::default(), String::new()).await?;
                match page.retarget.take() {
                    Some(view) => page.retarget = Some(view.refused(&form, &errors)),
                    None => page.errors = errors,
                }
                render(StatusCode::OK, &page)
            })
            .await
        }
    }
}

/// The customer takes the paused copy as it is.
pub async fn accept(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidPath(id): ValidPath<String>,
    ValidForm(form): ValidForm<ActionForm>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    match desk::act(&app, &viewer.user, id, TicketCommand::Accept, form.version).await {
        Ok(ticket) => {
            flash(
                &viewer.session,
                "Accepted: the copy is being handed over as your new cluster. You will be emailed when it is ready.",
            )
            .await?;
            Ok(Redirect::to(&format!("/tickets/{}", ticket.id)).into_response())
        }
        Err(error) => {
            refused(error.into(), |errors| async move {
                let page = ticket_page(&app, &viewer, id, errors, String::new()).await?;
                render(StatusCode::OK, &page)
            })
            .await
        }
    }
}

/// The customer moves the paused copy forward to a later moment.
pub async fn move_forward(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidPath(id): ValidPath<String>,
    ValidForm(form): ValidForm<common::TargetForm>,
) -> AppResult<Response> {
    redirect_copy(app, viewer, id, desk::Redirect::Forward, form).await
}

/// The customer goes back to an earlier moment: a new restore.
pub async fn go_back(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidPath(id): ValidPath<String>,
    ValidForm(form): ValidForm<common::TargetForm>,
) -> AppResult<Response> {
    redirect_copy(app, viewer, id, desk::Redirect::Back, form).await
}

async fn redirect_copy(
    app: App,
    viewer: crate::web::auth::Viewer,
    id: String,
    way: desk::Redirect,
    form: common::TargetForm,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    match desk::redirect(
        &app,
        &viewer.user,
        id,
        way,
        &form.input(),
        form.transaction(),
        form.version,
    )
    .await
    {
        Ok(ticket) => {
            let said = match way {
                desk::Redirect::Forward => {
                    "Moving forward: the same copy replays on to your new moment and pauses there again. You will be emailed."
                }
                desk::Redirect::Back => {
                    "Going back: this copy is removed and a new restore reaches your earlier moment. You will be emailed."
                }
            };
            flash(&viewer.session, said).await?;
            Ok(Redirect::to(&format!("/tickets/{}", ticket.id)).into_response())
        }
        Err(error) => {
            refused(error.into(), |errors| async move {
                // Beside the form while the copy still waits; at the top
                // when it moved on meanwhile.
                let mut page =
                    ticket_page(&app, &viewer, id, FormErrors::default(), String::new()).await?;
                match page.decision.as_mut() {
                    Some(decision) => decision.form = decision.form.clone().refused(&form, &errors),
                    None => page.errors = errors,
                }
                render(StatusCode::OK, &page)
            })
            .await
        }
    }
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

/// The verdict form's fields, as the pages post them.
#[derive(Debug, Default, Deserialize)]
pub struct VerdictForm {
    #[serde(default)]
    pub data_right: String,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub rating: String,
    #[serde(default)]
    pub rating_comment: String,
}

impl VerdictForm {
    pub fn input(&self) -> crate::domain::verdict::VerdictInput {
        crate::domain::verdict::VerdictInput {
            data_right: self.data_right != "no",
            comment: self.comment.clone(),
            rating: self.rating.trim().parse().unwrap_or(0),
            rating_comment: self.rating_comment.clone(),
        }
    }
}

/// The requester's verdict from their ticket page.
pub async fn verdict(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidPath(id): ValidPath<String>,
    ValidForm(form): ValidForm<VerdictForm>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let giver = crate::desk::verdicts::Giver::User(&viewer.user);
    match crate::desk::verdicts::give(&app, id, giver, &form.input()).await {
        Ok(v) => {
            let done = if v.data_right {
                "Thank you: your verdict is recorded."
            } else {
                "Thank you: the ticket is back with the engineer, who will answer here."
            };
            flash(&viewer.session, done).await?;
            Ok(Redirect::to(&format!("/tickets/{id}")).into_response())
        }
        Err(error) => {
            refused(error.into(), |errors| async {
                render(
                    StatusCode::OK,
                    &ticket_page(&app, &viewer, id, errors, String::new()).await?,
                )
            })
            .await
        }
    }
}
