//! Turning a transition's notices into outbox rows: who receives each one,
//! rendered in their time zone, keyed so it is written once.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::DeskError;
use crate::app::App;
use crate::domain::actor::Role;
use crate::domain::cluster::Connection;
use crate::domain::ticket::{Audience, Notice as NoticeSpec};
use crate::notify::compose::{Notice, compose};
use crate::store::{NewOutboxMessage, Ticket, User};

/// What a notice may say beyond the ticket itself.
#[derive(Debug, Clone, Default)]
pub struct Details<'a> {
    /// The person acting, when known: no need to look them up again.
    pub actor: Option<&'a User>,
    pub text: Option<&'a str>,
    pub actor_name: Option<&'a str>,
    pub connection: Option<&'a Connection>,
    pub restored_point: Option<DateTime<Utc>>,
    /// A starting restore's expected end.
    pub eta: Option<super::eta::Eta>,
}

async fn recipients(
    app: &App,
    ticket: &Ticket,
    audience: Audience,
    known: Option<&User>,
) -> Result<Vec<User>, DeskError> {
    let store = &app.store;
    let staff = || async {
        let staff = store.users_with_role(Role::Staff).await?;
        if staff.is_empty() {
            return store.users_with_role(Role::Admin).await;
        }
        Ok(staff)
    };
    let users = match audience {
        Audience::Requester => match known.filter(|u| u.id == ticket.requester_id) {
            Some(user) => vec![user.clone()],
            None => store.user(ticket.requester_id).await?.into_iter().collect(),
        },
        Audience::Assignee => match ticket.assignee_id {
            Some(id) => store.user(id).await?.into_iter().collect(),
            None => staff().await?,
        },
        Audience::AllStaff => staff().await?,
    };
    Ok(users.into_iter().filter(|u| !u.disabled).collect())
}

/// Renders `notices` about `ticket` (as it is after the change) for every
/// recipient, and posts them to every endpoint that asked for them. `cause` names the change: with the kind and the recipient it
/// forms the dedupe key, so one change never emails anyone twice.
pub async fn outbox_for(
    app: &App,
    ticket: &Ticket,
    source_cluster: &str,
    notices: &[NoticeSpec],
    details: &Details<'_>,
    cause: &str,
) -> Result<Vec<NewOutboxMessage>, DeskError> {
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    let now = app.now();
    for notice in notices {
        for user in recipients(app, ticket, notice.to, details.actor).await? {
            if !seen.insert((notice.kind, user.email.clone())) {
                continue;
            }
            let staff = user.role.works_tickets();
            // Customers read times in the zone they filed in; staff in their own.
            let zone_name = if staff {
                &user.time_zone
            } else {
                &ticket.time_zone
            };
            let time_zone = zone_name.parse::<Tz>().unwrap_or(Tz::UTC);
            let email = compose(&Notice {
                kind: notice.kind,
                ticket,
                source_cluster,
                recipient_name: &user.display_name,
                recipient_role: user.role,
                time_zone,
                link: app.ticket_link(ticket.id, staff),
                text: details.text,
                actor_name: details.actor_name,
                connection: details.connection,
                restored_point: details.restored_point,
                eta: details
                    .eta
                    .as_ref()
                    .map(|e| (e.done_by, e.estimate.basis())),
                verdict_link: (notice.kind == crate::domain::ticket::NoticeKind::RestoreCompleted
                    && user.id == ticket.requester_id)
                    .then(|| app.verdict_link(ticket.id)),
                now,
            })?;
            rows.push(NewOutboxMessage {
                id: Uuid::new_v4(),
                dedupe_key: format!("{cause}:{}:{}", notice.kind.as_str(), user.email),
                ticket_id: Some(ticket.id),
                kind: notice.kind.as_str().to_string(),
                recipient: user.email.to_string(),
                subject: email.subject,
                text_body: email.text,
                html_body: email.html,
                endpoint_id: None,
            });
        }
    }
    rows.extend(super::endpoints::posts_for(app, ticket, source_cluster, notices, cause).await?);
    Ok(rows)
}
