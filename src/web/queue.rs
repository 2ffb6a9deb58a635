//! The staff queue's filters, as the pages and the API both take them.

use serde::Deserialize;

use crate::app::App;
use crate::domain::ids::UserId;
use crate::domain::sla::{self, Severity};
use crate::domain::ticket::TicketState;
use crate::store::{AssigneeFilter, Scope, TicketOrder, TicketQuery, TicketTally, User};
use crate::web::error::{AppError, AppResult};

/// The queue's filters, as in the query string.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueueQuery {
    /// Empty: open tickets; `all`; or one state.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub severity: String,
    /// Empty: anyone; `unassigned`; `mine`; or a user id.
    #[serde(default)]
    pub assignee: String,
    /// `1`: only tickets assigned to me (same as `assignee=mine`).
    #[serde(default)]
    pub mine: String,
    /// Empty: any; `breached`: first response past due; `due`: breached or
    /// due within the hour.
    #[serde(default)]
    pub response: String,
    /// Search words: a ticket number, a customer, a cluster, any text.
    #[serde(default)]
    pub q: String,
    /// The number of the last ticket of the previous page.
    #[serde(default)]
    pub after: Option<i64>,
}

/// The open states: everything that still needs someone.
pub fn open_states() -> Vec<TicketState> {
    TicketState::ALL
        .into_iter()
        .filter(|s| !s.is_terminal())
        .collect()
}

/// Which first-response clocks to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFilter {
    Any,
    /// Unanswered and past due.
    Breached,
    /// Breached, or due within `sla::response_soon`.
    Due,
}

/// The queue's filters, read and checked; search aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filters {
    /// Empty: every state.
    pub states: Vec<TicketState>,
    pub severity: Option<Severity>,
    pub assignee: AssigneeFilter,
    pub response: ResponseFilter,
}

impl Filters {
    /// Reads the query string's filters; unknown values are refused.
    pub fn read(user: &User, q: &QueueQuery) -> AppResult<Filters> {
        let states = match q.state.trim() {
            "" | "open" => open_states(),
            "all" => vec![],
            other => vec![
                other
                    .parse::<TicketState>()
                    .map_err(|e| AppError::invalid("state", e))?,
            ],
        };
        let severity = match q.severity.trim() {
            "" => None,
            other => {
                Some(Severity::parse_typed(other).map_err(|e| AppError::invalid("severity", e))?)
            }
        };
        let mine = matches!(q.mine.trim(), "1" | "true" | "on" | "yes");
        let assignee = match q.assignee.trim() {
            _ if mine => AssigneeFilter::User(user.id),
            "" | "anyone" => AssigneeFilter::Anyone,
            "unassigned" => AssigneeFilter::Unassigned,
            "mine" | "me" => AssigneeFilter::User(user.id),
            other => AssigneeFilter::User(
                other
                    .parse::<UserId>()
                    .map_err(|_| AppError::invalid("assignee", "Unknown assignee"))?,
            ),
        };
        let response = match q.response.trim() {
            "" | "any" => ResponseFilter::Any,
            "breached" => ResponseFilter::Breached,
            "due" => ResponseFilter::Due,
            _ => {
                return Err(AppError::invalid(
                    "response",
                    "Choose breached, due (within the hour) or leave it empty",
                ));
            }
        };
        Ok(Filters {
            states,
            severity,
            assignee,
            response,
        })
    }

    /// Whether the tickets of a tally pass these filters.
    pub fn admits(&self, tally: &TicketTally) -> bool {
        (self.states.is_empty() || self.states.contains(&tally.state))
            && self.severity.is_none_or(|s| s == tally.severity)
            && match self.assignee {
                AssigneeFilter::Anyone => true,
                AssigneeFilter::Unassigned => tally.assignee_id.is_none(),
                AssigneeFilter::User(id) => tally.assignee_id == Some(id),
            }
            && match self.response {
                ResponseFilter::Any => true,
                ResponseFilter::Breached => tally.response_breached,
                ResponseFilter::Due => tally.response_due_soon,
            }
    }

    /// How many tickets these filters admit.
    pub fn count(&self, tallies: &[TicketTally]) -> i64 {
        tallies
            .iter()
            .filter(|t| self.admits(t))
            .map(|t| t.count)
            .sum()
    }
}

/// The tallies the queue counts its filters from, at `now`.
pub async fn tallies(app: &App) -> AppResult<Vec<TicketTally>> {
    let now = app.now();
    Ok(app
        .store
        .ticket_tallies(now, now + sla::response_soon())
        .await?)
}

/// Turns the filters into a store query; unknown values are refused.
pub async fn queue_query(
    app: &App,
    user: &User,
    q: &QueueQuery,
    limit: i64,
) -> AppResult<TicketQuery> {
    let filters = Filters::read(user, q)?;
    let now = app.now();
    let response_due_before = match filters.response {
        ResponseFilter::Any => None,
        ResponseFilter::Breached => Some(now),
        ResponseFilter::Due => Some(now + sla::response_soon()),
    };
    let search = q.q.trim();
    if search.chars().count() > 200 {
        return Err(AppError::invalid("q", "Search for at most 200 characters"));
    }
    let after = match q.after {
        Some(number) => {
            let last = app
                .store
                .ticket_by_number(number, Scope::Everything)
                .await?
                .ok_or_else(|| AppError::invalid("after", "Unknown page cursor"))?;
            let due = sla::queue_due(
                last.first_response_due,
                last.first_response_at,
                !last.state.is_terminal(),
                last.deadline,
            );
            Some((due, last.severity, last.number))
        }
        None => None,
    };
    Ok(TicketQuery {
        scope: Scope::Everything,
        states: filters.states,
        severity: filters.severity,
        assignee: filters.assignee,
        response_due_before,
        search: (!search.is_empty()).then(|| search.to_string()),
        order: TicketOrder::Queue { after },
        limit,
    })
}
