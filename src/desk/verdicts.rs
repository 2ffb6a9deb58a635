//! The customer's verdict on a hand-over, from the ticket page, the API or
//! the one-click link of the completed email: stored once with its event,
//! and when the data is not right, the ticket reopened to its engineer in
//! the same transaction.

use chrono::{DateTime, Duration, Utc};

use super::commands::{Checked, Issuer, Outcome, Situation, plan};
use super::{DeskError, scope_for};
use crate::app::App;
use crate::domain::actor::{Actor, Role};
use crate::domain::event::EventAction;
use crate::domain::ids::{TicketId, UserId};
use crate::domain::verdict::{
    Verdict, VerdictChannel, VerdictFacts, VerdictInput, VerdictRefusal, decide,
};
use crate::store::{Commit, NewEvent, Scope, StoreError, Ticket, Unique, User};

/// Who gives a verdict: a signed-in person, or whoever holds the emailed
/// link (which only the requester was sent).
#[derive(Debug, Clone, Copy)]
pub enum Giver<'a> {
    User(&'a User),
    Link(&'a str),
}

/// The ticket a verdict link names, if the token is its own; anything else
/// answers "not found", so links cannot be guessed or probed.
pub async fn ticket_of_link(
    app: &App,
    ticket_id: TicketId,
    token: &str,
) -> Result<Ticket, DeskError> {
    if !app.secret_key.verdict_token_matches(ticket_id, token) {
        return Err(DeskError::NotFound);
    }
    app.store
        .ticket(ticket_id, Scope::Everything)
        .await?
        .ok_or(DeskError::NotFound)
}

async fn ticket_for(app: &App, ticket_id: TicketId, giver: Giver<'_>) -> Result<Ticket, DeskError> {
    match giver {
        Giver::User(user) => app
            .store
            .ticket(ticket_id, scope_for(user))
            .await?
            .ok_or(DeskError::NotFound),
        Giver::Link(token) => ticket_of_link(app, ticket_id, token).await,
    }
}

/// Records the verdict and, for "not right", reopens the ticket.
pub async fn give(
    app: &App,
    ticket_id: TicketId,
    giver: Giver<'_>,
    input: &VerdictInput,
) -> Result<Verdict, DeskError> {
    let ticket = ticket_for(app, ticket_id, giver).await?;
    let by_requester = match giver {
        Giver::User(user) => user.role == Role::Customer && user.id == ticket.requester_id,
        Giver::Link(_) => true,
    };
    let already_given = app.store.verdict(ticket.id).await?.is_some();
    let decision = decide(
        VerdictFacts {
            state: ticket.state,
            by_requester,
            already_given,
        },
        input,
    )
    .map_err(DeskError::Verdict)?;
    let now = app.now();
    let verdict = Verdict {
        ticket_id: ticket.id,
        requester_id: ticket.requester_id,
        engineer_id: ticket.assignee_id,
        data_right: decision.data_right,
        comment: decision.comment.clone(),
        rating: decision.rating,
        rating_comment: decision.rating_comment.clone(),
        channel: match giver {
            Giver::User(_) => VerdictChannel::Desk,
            Giver::Link(_) => VerdictChannel::EmailLink,
        },
        given_at: now,
    };
    let requester_actor = Actor::user(ticket.requester_id, Role::Customer);
    let mut commit = Commit::at(now);
    commit.verdict = Some(verdict.clone());
    commit.events.push(NewEvent {
        ticket_id: Some(ticket.id),
        job_id: None,
        actor: requester_actor,
        action: EventAction::Verdict,
        from_state: None,
        to_state: None,
        detail: format!(
            "data {}, help rated {}/5",
            if verdict.data_right {
                "right"
            } else {
                "not right"
            },
            verdict.rating
        ),
        at: now,
    });
    if let Some(command) = &decision.ticket_command {
        let requester = match giver {
            Giver::User(user) => Some(user.clone()),
            Giver::Link(_) => app.store.user(ticket.requester_id).await?,
        };
        let cluster = app
            .store
            .cluster(ticket.cluster_id, Scope::Everything)
            .await?
            .ok_or(DeskError::NotFound)?;
        let job = app.store.job_for_ticket(ticket.id).await?;
        let issuer = Issuer {
            actor: requester_actor,
            name: requester.as_ref().map(|u| u.display_name.as_str()),
            user: requester.as_ref(),
            guard_version: true,
            cause: format!("verdict:{}", ticket.id),
        };
        let situation = Situation {
            ticket: &ticket,
            cluster: &cluster,
            job: job.as_ref(),
        };
        plan(
            app,
            &situation,
            command,
            &issuer,
            Checked::none(),
            &Outcome::default(),
            &mut commit,
        )
        .await?;
    }
    match app.commit(commit).await {
        Ok(_) => {}
        // Given a moment ago, by another tab or the link.
        Err(StoreError::Duplicate(Unique::Verdict)) => {
            return Err(DeskError::Verdict(VerdictRefusal::AlreadyGiven));
        }
        Err(error) => return Err(error.into()),
    }
    tracing::info!(ticket = %ticket.reference(), right = verdict.data_right, rating = verdict.rating, "verdict given");
    Ok(verdict)
}

/// A ticket's verdict, for those who may see the ticket.
pub async fn of_ticket(
    app: &App,
    user: &User,
    ticket_id: TicketId,
) -> Result<Option<Verdict>, DeskError> {
    app.store
        .ticket(ticket_id, scope_for(user))
        .await?
        .ok_or(DeskError::NotFound)?;
    Ok(app.store.verdict(ticket_id).await?)
}

/// Ratings over a group: how many, their average, how many said "not right".
#[derive(Debug, Clone, PartialEq)]
pub struct RatingRow {
    pub label: String,
    pub verdicts: usize,
    pub average: f64,
    pub not_right: usize,
}

fn rows(groups: std::collections::BTreeMap<String, Vec<&Verdict>>) -> Vec<RatingRow> {
    groups
        .into_iter()
        .map(|(label, vs)| RatingRow {
            label,
            verdicts: vs.len(),
            average: vs.iter().map(|v| v.rating as f64).sum::<f64>() / vs.len() as f64,
            not_right: vs.iter().filter(|v| !v.data_right).count(),
        })
        .collect()
}

/// Ratings of the last year, by engineer (named) and by month (newest first).
pub async fn ratings(
    app: &App,
    admin: &User,
) -> Result<(Vec<RatingRow>, Vec<RatingRow>), DeskError> {
    if admin.role != Role::Admin {
        return Err(DeskError::Refused(
            crate::domain::ticket::Refusal::Forbidden,
        ));
    }
    let since: DateTime<Utc> = app.now() - Duration::days(365);
    let verdicts = app.store.verdicts(since, 100_000).await?;
    let engineers: Vec<UserId> = verdicts.iter().filter_map(|v| v.engineer_id).collect();
    let names = app.store.display_names(&engineers).await?;
    let mut by_engineer = std::collections::BTreeMap::<String, Vec<&Verdict>>::new();
    let mut by_month = std::collections::BTreeMap::<String, Vec<&Verdict>>::new();
    for v in &verdicts {
        let engineer = v
            .engineer_id
            .and_then(|id| names.get(&id).cloned())
            .unwrap_or_else(|| "Nobody assigned".into());
        by_engineer.entry(engineer).or_default().push(v);
        by_month
            .entry(v.given_at.format("%Y-%m").to_string())
            .or_default()
            .push(v);
    }
    let mut months = rows(by_month);
    months.reverse();
    Ok((rows(by_engineer), months))
}
