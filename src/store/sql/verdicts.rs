//! Verdicts: written in the commit that may reopen their ticket, read for
//! the ticket page, the staff queue and the admins' ratings.

use super::tickets::{TICKET_COLUMNS, ticket_row};
use super::*;

const VERDICT_COLUMNS: &str = "ticket_id, requester_id, engineer_id, data_right, comment, rating, \
    rating_comment, channel, given_at";

fn verdict_row(r: &DbRow) -> Result<Verdict, sqlx::Error> {
    Ok(Verdict {
        ticket_id: r.try_get("ticket_id")?,
        requester_id: r.try_get("requester_id")?,
        engineer_id: r.try_get("engineer_id")?,
        data_right: r.try_get("data_right")?,
        comment: r.try_get("comment")?,
        rating: r.try_get::<i32, _>("rating")?.into(),
        rating_comment: r.try_get("rating_comment")?,
        channel: decode(r.try_get("channel")?)?,
        given_at: r.try_get("given_at")?,
    })
}

pub(super) async fn insert_verdict(tx: &mut Tx, v: &Verdict) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO verdicts (ticket_id, requester_id, engineer_id, data_right, comment, \
         rating, rating_comment, channel, given_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(v.ticket_id)
    .bind(v.requester_id)
    .bind(v.engineer_id)
    .bind(v.data_right)
    .bind(&v.comment)
    .bind(i32::try_from(v.rating).unwrap_or(0))
    .bind(&v.rating_comment)
    .bind(v.channel.as_str())
    .bind(v.given_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn verdict(store: &SqlStore, ticket_id: TicketId) -> StoreResult<Option<Verdict>> {
    let row = sqlx::query(&format!(
        "SELECT {VERDICT_COLUMNS} FROM verdicts WHERE ticket_id = $1"
    ))
    .bind(ticket_id)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(verdict_row).transpose()?)
}

pub(super) async fn verdicts(
    store: &SqlStore,
    since: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<Verdict>> {
    let rows = sqlx::query(&format!(
        "SELECT {VERDICT_COLUMNS} FROM verdicts WHERE given_at >= $1 \
         ORDER BY given_at DESC LIMIT $2"
    ))
    .bind(since)
    .bind(limit.clamp(1, 100_000))
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(verdict_row).collect::<Result<_, _>>()?)
}

pub(super) async fn unconfirmed_handovers(
    store: &SqlStore,
    limit: i64,
) -> StoreResult<Vec<Ticket>> {
    let rows = sqlx::query(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets t WHERE state = 'completed' \
         AND NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.ticket_id = t.id) \
         ORDER BY updated_at DESC LIMIT $1"
    ))
    .bind(limit.clamp(1, 1000))
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(ticket_row).collect::<Result<_, _>>()?)
}
