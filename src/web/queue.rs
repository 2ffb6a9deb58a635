//! The staff queue's filters, as the pages and the API both take them.

use serde::Deserialize;

use crate::app::App;
use crate::domain::ids::UserId;
use crate::domain::sla::Severity;
use crate::domain::ticket::TicketState;
use crate::store::{AssigneeFilter, Scope, TicketOrder, TicketQuery, User};
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

/// Turns the filters into a store query; unknown values are refused.
pub async fn queue_query(
    app: &App,
    user: &User,
    q: &QueueQuery,
    limit: i64,
) -> AppResult<TicketQuery> {
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
        other => Some(Severity::parse_typed(other).map_err(|e| AppError::invalid("severity", e))?),
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
    let after = match q.after {
        Some(number) => {
            let last = app
                .store
                .ticket_by_number(number, Scope::Everything)
                .await?
                .ok_or_else(|| AppError::invalid("after", "Unknown page cursor"))?;
            Some((last.deadline, last.severity, last.number))
        }
        None => None,
    };
    Ok(TicketQuery {
        scope: Scope::Everything,
        states,
        severity,
        assignee,
        order: TicketOrder::Queue { after },
        limit,
    })
}
