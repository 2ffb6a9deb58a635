//! The staff console: the queue ordered by deadline then severity, and the
//! ticket page with the validation report, the actions, internal notes and
//! the audit trail. Admins work tickets here too.

use std::collections::HashMap;

use crate::domain::ids::{ClusterId, TicketId, UserId};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::common;
use super::common::{
    ClusterCard, EventView, JobView, MessageView, TicketRow, cluster_card, cluster_names,
    event_views, message_views, parse_id, ticket_row, times_for,
};
use super::{Chrome, FormErrors, chrome, flash, refused, render};
use crate::app::App;
use crate::desk;
use crate::domain::sla::Severity;
use crate::domain::ticket::{self, TargetCheck, TicketCommand, TicketFacts, TicketState};
use crate::domain::verification::VerificationReport;
use crate::store::AssigneeFilter;
use crate::store::{RestoreJob, Scope, Ticket, User};
use crate::web::auth::{StaffUser, Viewer};
use crate::web::commands::staff_command;
use crate::web::error::{AppError, AppResult};
use crate::web::queue::{Filters, QueueQuery, ResponseFilter, open_states, queue_query};
use crate::web::views::{Stamp, Times, precise_in};
use crate::web::{ValidForm, ValidPath, ValidQuery};

// ---------------------------------------------------------------- the queue

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// A quick filter above the queue, with how many tickets it holds.
pub struct Chip {
    pub label: &'static str,
    pub href: String,
    pub count: i64,
    pub selected: bool,
    /// Red when it holds any: something is late.
    pub alarm: bool,
}

#[derive(Template)]
#[template(path = "staff/queue.html")]
struct QueuePage {
    chrome: Chrome,
    rows: Vec<TicketRow>,
    chips: Vec<Chip>,
    states: Vec<Choice>,
    severities: Vec<Choice>,
    assignees: Vec<Choice>,
    responses: Vec<Choice>,
    search: String,
    next: Option<String>,
    filtered: bool,
    zone: &'static str,
    /// Completed restores whose customer has not said the data is right.
    unconfirmed: Vec<Unconfirmed>,
    /// Why a cluster's restores are at risk, for the clusters whose latest
    /// restore test from some zone failed.
    at_risk: HashMap<ClusterId, String>,
}

impl QueuePage {
    /// Why the cluster's restores are at risk, if they are.
    fn risk(&self, cluster: &ClusterId) -> Option<&str> {
        self.at_risk.get(cluster).map(String::as_str)
    }
}

pub struct Unconfirmed {
    pub id: TicketId,
    pub reference: String,
    pub cluster: String,
    pub completed: Stamp,
}

const PAGE: i64 = 50;

/// The queue's address with `changes` applied to the filters of `q`; the
/// page cursor is dropped unless given again.
fn queue_href(q: &QueueQuery, changes: &[(&str, &str)]) -> String {
    let mine = matches!(q.mine.trim(), "1" | "true" | "on" | "yes");
    let assignee = if mine { "mine" } else { q.assignee.trim() };
    let mut pairs: Vec<(&str, String)> = vec![
        ("q", q.q.trim().to_string()),
        ("state", q.state.trim().to_string()),
        ("severity", q.severity.trim().to_string()),
        ("assignee", assignee.to_string()),
        ("response", q.response.trim().to_string()),
    ];
    for (key, value) in changes {
        match pairs.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value.to_string(),
            None => pairs.push((key, value.to_string())),
        }
    }
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        params.append_pair(k, v);
    }
    let query = params.finish();
    if query.is_empty() {
        "/staff/tickets".into()
    } else {
        format!("/staff/tickets?{query}")
    }
}

fn counted(label: &str, count: i64) -> String {
    format!("{label} ({count})")
}

pub async fn queue(
    State(app): State<App>,
    StaffUser(viewer): StaffUser,
    ValidQuery(q): ValidQuery<QueueQuery>,
) -> AppResult<Response> {
    let times = times_for(&app, &viewer.user);
    let query = queue_query(&app, &viewer.user, &q, PAGE + 1).await?;
    let filters = Filters::read(&viewer.user, &q)?;
    let tallies = crate::web::queue::tallies(&app).await?;
    let mut tickets = app.store.tickets(&query).await?;
    let more = tickets.len() as i64 > PAGE;
    tickets.truncate(PAGE as usize);
    let next = if more {
        tickets
            .last()
            .map(|t| queue_href(&q, &[("after", &t.number.to_string())]))
    } else {
        None
    };
    let clusters = cluster_names(&app, Scope::Everything).await?;
    let staff: Vec<User> = app
        .store
        .users()
        .await?
        .into_iter()
        .filter(|u| u.role.works_tickets())
        .collect();
    let names: HashMap<UserId, String> = staff
        .iter()
        .map(|u| (u.id, u.display_name.clone()))
        .collect();
    let jobs: HashMap<TicketId, RestoreJob> = app
        .store
        .jobs(true, 500)
        .await?
        .into_iter()
        .filter_map(|j| Some((j.ticket_id?, j)))
        .collect();
    let rows = tickets
        .into_iter()
        .map(|t| {
            let job = jobs.get(&t.id);
            ticket_row(t, &times, &clusters, &names, job)
        })
        .collect();

    // Each count is what choosing it would show, the other filters kept.
    let with_states = |states: Vec<TicketState>| {
        Filters {
            states,
            ..filters.clone()
        }
        .count(&tallies)
    };
    let state_now = q.state.trim();
    let mut states = vec![
        Choice {
            value: String::new(),
            label: counted("Open (all active)", with_states(open_states())),
            selected: state_now.is_empty() || state_now == "open",
        },
        Choice {
            value: "all".into(),
            label: counted("All, closed included", with_states(vec![])),
            selected: state_now == "all",
        },
    ];
    states.extend(TicketState::ALL.into_iter().map(|s| Choice {
        value: s.as_str().into(),
        label: counted(s.label(), with_states(vec![s])),
        selected: state_now == s.as_str(),
    }));
    let with_severity = |severity: Option<Severity>| {
        Filters {
            severity,
            ..filters.clone()
        }
        .count(&tallies)
    };
    let mut severities = vec![Choice {
        value: String::new(),
        label: counted("Any severity", with_severity(None)),
        selected: q.severity.is_empty(),
    }];
    severities.extend(Severity::ALL.into_iter().map(|s| Choice {
        value: s.as_str().into(),
        label: counted(s.describe(), with_severity(Some(s))),
        selected: q.severity.trim() == s.as_str(),
    }));
    let with_assignee = |assignee: AssigneeFilter| {
        Filters {
            assignee,
            ..filters.clone()
        }
        .count(&tallies)
    };
    let mine = matches!(q.mine.trim(), "1" | "true" | "on" | "yes");
    let assignee_now = if mine { "mine" } else { q.assignee.trim() };
    let mut assignees = vec![
        Choice {
            value: String::new(),
            label: counted("Anyone", with_assignee(AssigneeFilter::Anyone)),
            selected: assignee_now.is_empty(),
        },
        Choice {
            value: "unassigned".into(),
            label: counted("Unassigned", with_assignee(AssigneeFilter::Unassigned)),
            selected: assignee_now == "unassigned",
        },
        Choice {
            value: "mine".into(),
            label: counted("Me", with_assignee(AssigneeFilter::User(viewer.user.id))),
            selected: assignee_now == "mine",
        },
    ];
    assignees.extend(
        staff
            .iter()
            .filter(|u| u.id != viewer.user.id)
            .map(|u| Choice {
                value: u.id.to_string(),
                label: counted(&u.display_name, with_assignee(AssigneeFilter::User(u.id))),
                selected: assignee_now == u.id.to_string(),
            }),
    );
    let with_response = |response: ResponseFilter| {
        Filters {
            response,
            ..filters.clone()
        }
        .count(&tallies)
    };
    let response_now = q.response.trim();
    let responses = [
        ("", "Any", ResponseFilter::Any),
        (
            "due",
            "Breached or due within the hour",
            ResponseFilter::Due,
        ),
        ("breached", "Breached", ResponseFilter::Breached),
    ]
    .into_iter()
    .map(|(value, label, response)| Choice {
        value: value.into(),
        label: counted(label, with_response(response)),
        selected: response_now == value,
    })
    .collect();
    // The chips count open tickets whatever else is chosen: they are the
    // desk's alarms, one tap away.
    let open = Filters {
        states: open_states(),
        severity: None,
        assignee: AssigneeFilter::Anyone,
        response: ResponseFilter::Any,
    };
    let chip = |label, changes: &[(&str, &str)], only: Filters, selected, alarm| Chip {
        label,
        href: queue_href(&QueueQuery::default(), changes),
        count: only.count(&tallies),
        selected,
        alarm,
    };
    let chips = vec![
        chip(
            "Response breached",
            &[("response", "breached")],
            Filters {
                response: ResponseFilter::Breached,
                ..open.clone()
            },
            response_now == "breached",
            true,
        ),
        chip(
            "Due within the hour",
            &[("response", "due")],
            Filters {
                response: ResponseFilter::Due,
                ..open.clone()
            },
            response_now == "due",
            true,
        ),
        chip(
            "Unassigned",
            &[("assignee", "unassigned")],
            Filters {
                assignee: AssigneeFilter::Unassigned,
                ..open.clone()
            },
            assignee_now == "unassigned",
            false,
        ),
        chip(
            "Mine",
            &[("assignee", "mine")],
            Filters {
                assignee: AssigneeFilter::User(viewer.user.id),
                ..open.clone()
            },
            assignee_now == "mine",
            false,
        ),
    ];
    let filtered = !(q.state.is_empty()
        && q.severity.is_empty()
        && assignee_now.is_empty()
        && response_now.is_empty()
        && q.q.trim().is_empty());
    let unconfirmed = app
        .store
        .unconfirmed_handovers(20)
        .await?
        .into_iter()
        .map(|t| Unconfirmed {
            id: t.id,
            reference: t.reference(),
            cluster: clusters.get(&t.cluster_id).cloned().unwrap_or_default(),
            completed: times.stamp(t.updated_at),
        })
        .collect();
    let at_risk = desk::drills::all(&app)
        .await?
        .into_iter()
        .filter_map(|(id, drills)| Some((id, drills.risk_words()?)))
        .collect();
    let page = QueuePage {
        at_risk,
        unconfirmed,
        chrome: chrome(&viewer.session, Some(&viewer.user), "Queue", "queue").await?,
        rows,
        chips,
        states,
        severities,
        assignees,
        responses,
        search: q.q.trim().to_string(),
        next,
        filtered,
        zone: times.zone_name(),
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- the ticket page

pub struct ReportView {
    pub passed: bool,
    pub checked_at: Stamp,
    pub target: Stamp,
    pub window: Option<(Stamp, Stamp)>,
    pub online_zones: String,
    pub plan: Option<String>,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub deadline: Stamp,
}

/// What the signed-in engineer may do now, asked of the domain itself.
#[derive(Default)]
pub struct Allowed {
    pub claim: bool,
    pub request_info: bool,
    pub approve: bool,
    pub reject: bool,
    pub retry: bool,
    /// Close a ticket reopened by its customer.
    pub resolve: bool,
    pub cancel_restore: bool,
    pub reply: bool,
    pub note: bool,
    /// The ticket waits for its assignee, and that is someone else.
    pub someone_else: bool,
}

fn allowed(ticket: &Ticket, job: Option<&RestoreJob>, user: &User) -> Allowed {
    let facts = TicketFacts {
        assignee: ticket.assignee_id,
        target_check: TargetCheck::Passed,
        job: job.map(|j| j.state),
        deadline_warned: ticket.deadline_warned_at.is_some(),
        target: ticket.target_time,
    };
    let can = |command: TicketCommand| {
        ticket::transition(ticket.state, &command, &user.actor(), &facts).is_ok()
    };
    let text = || "x".to_string();
    Allowed {
        claim: can(TicketCommand::Claim),
        request_info: can(TicketCommand::RequestInfo { message: text() }),
        approve: can(TicketCommand::Approve { inspect: false }),
        reject: can(TicketCommand::Reject { reason: text() }),
        retry: can(TicketCommand::Retry),
        resolve: can(TicketCommand::Resolve),
        cancel_restore: can(TicketCommand::CancelRestore { reason: text() }),
        reply: can(TicketCommand::Reply { body: text() }) && !ticket.state.is_terminal(),
        note: can(TicketCommand::Note { body: text() }),
        someone_else: ticket.assignee_id.is_some_and(|a| a != user.id),
    }
}

#[derive(Template)]
#[template(path = "staff/ticket.html")]
struct StaffTicketPage {
    chrome: Chrome,
    row: TicketRow,
    target_as_entered: String,
    requester: Option<User>,
    subscription: String,
    card: ClusterCard,
    report: ReportView,
    job: Option<JobView>,
    /// The restored cluster, once handed over.
    new_cluster: Option<crate::domain::cluster::Cluster>,
    verification: Option<VerificationReport>,
    verification_checked: Option<Stamp>,
    messages: Vec<MessageView>,
    events: Vec<EventView>,
    can: Allowed,
    /// The action whose form failed, its errors and what was typed.
    failed: String,
    errors: FormErrors,
    typed: String,
    first_response_at: Option<Stamp>,
    zone: &'static str,
    /// The customer's verdict on the hand-over, once given.
    verdict: Option<crate::domain::verdict::Verdict>,
    /// The same person's other open requests.
    other_open: Vec<super::common::OpenRequest>,
    /// Moving the target, while the ticket is this engineer's to decide.
    retarget: Option<super::common::TargetFormView>,
    /// While the customer inspects a paused copy: until when they decide.
    decide_by: Option<Stamp>,
}

impl StaffTicketPage {
    fn typed_for(&self, action: &str) -> &str {
        if self.failed == action {
            &self.typed
        } else {
            ""
        }
    }

    /// Errors about the text of the form that failed, shown beside it.
    fn errors_for(&self, action: &str) -> Vec<String> {
        if self.failed == action {
            self.errors.on(&["message", "reason", "note"])
        } else {
            Vec::new()
        }
    }
}

fn report_view(ticket: &Ticket, times: &Times) -> ReportView {
    let r = &ticket.validation_report;
    ReportView {
        passed: r.passed(),
        checked_at: times.stamp(r.checked_at),
        target: times.stamp(r.target),
        window: r
            .window
            .map(|w| (times.stamp(w.earliest), times.stamp(w.latest))),
        online_zones: if r.online_zones.is_empty() {
            "none".into()
        } else {
            r.online_zones.to_string()
        },
        plan: r.plan.as_ref().map(|p| {
            format!(
                "snapshot {} (finished {}) from {}",
                p.snapshot_id,
                precise_in(p.snapshot_finished_at, times.zone),
                p.zone
            )
        }),
        error_code: r.error.as_ref().map(|e| e.code.as_str().to_string()),
        error: r.error.as_ref().map(|e| e.message.clone()),
        deadline: times.stamp(r.deadline),
    }
}

async fn staff_ticket_page(
    app: &App,
    viewer: &Viewer,
    id: TicketId,
    failed: &str,
    errors: FormErrors,
    typed: String,
) -> AppResult<StaffTicketPage> {
    let record = crate::desk::read::ticket_record(app, id, Scope::Everything)
        .await?
        .ok_or_else(AppError::not_found)?;
    let times = times_for(app, &viewer.user);
    let ticket = record.head.ticket.clone();
    let cluster = record.cluster.clone();
    let job = record.head.job.clone();
    let messages = record.messages_for(true);
    let events = record.events.clone();
    let requester = record.head.requester.clone();
    let subscription = record.subscription_slug.clone();
    let names = &record.names;
    let target_as_entered = common::target_as_entered(&ticket);
    let clusters = HashMap::from([(cluster.id, cluster.name.clone())]);
    let card = cluster_card(app, cluster, &times, Some(ticket.target_time)).await?;
    let verification = job.as_ref().and_then(|j| j.verification_report.clone());
    let new_cluster = record.new_cluster.clone();
    let handed_over = job
        .as_ref()
        .is_some_and(|j| j.state == crate::domain::restore_job::JobState::Succeeded);
    let verdict = if handed_over {
        app.store.verdict(ticket.id).await?
    } else {
        None
    };
    let (this, requester_id) = (ticket.id, ticket.requester_id);
    let other_open =
        super::common::open_requests(app, Scope::Subscription(ticket.subscription_id), |t| {
            t.requester_id == requester_id && t.id != this
        })
        .await?;
    let retarget = common::may_change_target(&ticket, job.as_ref(), &viewer.user).then(|| {
        common::TargetFormView::for_ticket(&ticket, format!("/staff/tickets/{}/target", ticket.id))
    });
    let decide_by = ticket
        .decision_due
        .filter(|_| ticket.state == crate::domain::ticket::TicketState::AwaitingDecision)
        .map(|due| times.stamp(due));
    Ok(StaffTicketPage {
        decide_by,
        retarget,
        verdict,
        other_open,
        chrome: chrome(
            &viewer.session,
            Some(&viewer.user),
            ticket.reference(),
            "queue",
        )
        .await?,
        can: allowed(&ticket, job.as_ref(), &viewer.user),
        report: report_view(&ticket, &times),
        job: match job.as_ref() {
            Some(j) => Some(common::job_view_with_eta(app, j, &times).await?),
            None => None,
        },
        new_cluster,
        verification_checked: verification.as_ref().map(|v| times.stamp(v.checked_at)),
        verification,
        first_response_at: times.maybe(ticket.first_response_at),
        row: ticket_row(ticket, &times, &clusters, names, job.as_ref()),
        target_as_entered,
        requester,
        subscription,
        card,
        messages: message_views(messages, names, &times),
        events: event_views(events, names, &times, false),
        failed: failed.to_string(),
        errors,
        typed,
        zone: times.zone_name(),
    })
}

pub async fn ticket(
    State(app): State<App>,
    StaffUser(viewer): StaffUser,
    ValidPath(id): ValidPath<String>,
) -> AppResult<Response> {
    let page = staff_ticket_page(
        &app,
        &viewer,
        parse_id(&id)?,
        "",
        FormErrors::default(),
        String::new(),
    )
    .await?;
    render(StatusCode::OK, &page)
}

#[derive(Debug, Default, Deserialize)]
pub struct StaffActionForm {
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub reason: String,
    /// `yes` when the engineer ticked the box a destructive act asks for.
    #[serde(default)]
    pub confirm: String,
    /// approve: `yes` when the customer is to inspect the copy first.
    #[serde(default)]
    pub inspect: String,
}

fn done_message(action: &str, ticket: &Ticket) -> String {
    let r = ticket.reference();
    match action {
        "claim" => format!("You claimed {r}."),
        "request-info" => format!("Your question was sent; {r} waits for the customer."),
        "approve" => format!("{r} is approved: the restore is queued."),
        "reject" => format!("{r} is rejected; the customer was told why."),
        "retry" => format!("The restore of {r} starts again."),
        "cancel-restore" => format!("The restore of {r} is being cancelled."),
        "reply" => "Your reply was sent to the customer.".into(),
        "note" => "Internal note saved. Customers never see it.".into(),
        _ => "Done.".into(),
    }
}

/// The assigned engineer moves the target before approving.
pub async fn change_target(
    State(app): State<App>,
    StaffUser(viewer): StaffUser,
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
                "The new target passed its check; the customer is told.",
            )
            .await?;
            Ok(Redirect::to(&format!("/staff/tickets/{}", ticket.id)).into_response())
        }
        Err(error) => {
            refused(error.into(), |errors| async move {
                let mut page = staff_ticket_page(
                    &app,
                    &viewer,
                    id,
                    "target",
                    FormErrors::default(),
                    String::new(),
                )
                .await?;
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

pub async fn act(
    State(app): State<App>,
    StaffUser(viewer): StaffUser,
    ValidPath((id, action)): ValidPath<(String, String)>,
    ValidForm(form): ValidForm<StaffActionForm>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let (command, typed) = staff_command(&action, &form.body, &form.reason, form.inspect == "yes")
        .ok_or_else(AppError::not_found)?;
    // Rejecting and stopping a restore cannot be undone: when the act is
    // open to this engineer, it needs its box ticked. Refusals of other
    // kinds (not theirs, wrong state) still come from the desk.
    if matches!(action.as_str(), "reject" | "cancel-restore")
        && form.confirm != "yes"
        && let Some(ticket) = app.store.ticket(id, Scope::Everything).await?
    {
        let job = app.job_of(&ticket).await?;
        let can = allowed(&ticket, job.as_ref(), &viewer.user);
        if (action == "reject" && can.reject) || (action == "cancel-restore" && can.cancel_restore)
        {
            let error =
                AppError::invalid("confirm", "Tick the box to confirm: this cannot be undone");
            let page = staff_ticket_page(
                &app,
                &viewer,
                id,
                &action,
                FormErrors::from_error(&error),
                typed,
            )
            .await?;
            return render(error.status, &page);
        }
    }
    match desk::act(&app, &viewer.user, id, command, form.version).await {
        Ok(ticket) => {
            flash(&viewer.session, done_message(&action, &ticket)).await?;
            Ok(Redirect::to(&format!("/staff/tickets/{}", ticket.id)).into_response())
        }
        Err(error) => {
            refused(error.into(), |errors| async {
                let page = staff_ticket_page(&app, &viewer, id, &action, errors, typed).await?;
                render(StatusCode::OK, &page)
            })
            .await
        }
    }
}
