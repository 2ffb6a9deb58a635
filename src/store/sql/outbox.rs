//! The outbox: claims, settles and what admins see of it.

use super::*;

pub(super) const OUTBOX_COLUMNS: &str = "id, dedupe_key, ticket_id, kind, recipient, subject, text_body, \
    html_body, endpoint_id, status, attempts, claim, next_attempt_at, claimed_until, last_error, created_at, \
    sent_at";

pub(super) fn outbox_row(r: &DbRow) -> Result<OutboxMessage, sqlx::Error> {
    Ok(OutboxMessage {
        id: r.try_get("id")?,
        dedupe_key: r.try_get("dedupe_key")?,
        ticket_id: r.try_get("ticket_id")?,
        kind: r.try_get("kind")?,
        recipient: r.try_get("recipient")?,
        subject: r.try_get("subject")?,
        text_body: r.try_get("text_body")?,
        html_body: r.try_get("html_body")?,
        endpoint_id: r.try_get("endpoint_id")?,
        status: decode(r.try_get("status")?)?,
        attempts: r.try_get("attempts")?,
        claim: r.try_get("claim")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        claimed_until: r.try_get("claimed_until")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}

pub(super) async fn insert_outbox(
    tx: &mut Tx,
    c: &Commit,
    committed: &Committed,
) -> StoreResult<()> {
    if c.outbox.is_empty() {
        return Ok(());
    }
    let rows = c.outbox_rows(committed);
    let mut sql = QueryBuilder::<Db>::new(
        "INSERT INTO outbox (id, dedupe_key, ticket_id, kind, recipient, subject, text_body, \
         html_body, endpoint_id, status, attempts, claim, next_attempt_at, claimed_until, created_at) ",
    );
    sql.push_values(&rows, |mut row, m| {
        row.push_bind(m.id)
            .push_bind(&m.dedupe_key)
            .push_bind(m.ticket_id)
            .push_bind(&m.kind)
            .push_bind(&m.recipient)
            .push_bind(&m.subject)
            .push_bind(&m.text_body)
            .push_bind(&m.html_body)
            .push_bind(m.endpoint_id)
            .push_bind(m.status.as_str())
            .push_bind(m.attempts)
            .push_bind(m.claim)
            .push_bind(m.next_attempt_at)
            .push_bind(m.claimed_until)
            .push_bind(m.created_at);
    });
    sql.build().execute(&mut **tx).await?;
    Ok(())
}

pub(super) async fn claim_outbox(
    store: &SqlStore,
    now: DateTime<Utc>,
    claim_for: Duration,
    limit: i64,
) -> StoreResult<Vec<OutboxMessage>> {
    let rows = sqlx::query(&format!(
        // next_attempt_at is when a message is due: a pending one's next
        // try, or when a sender's claim on it runs out. One range on the
        // `outbox_due` index finds both.
        "UPDATE outbox SET status = 'sending', claim = claim + 1, claimed_until = $2, \
           next_attempt_at = $2 \
         WHERE id IN ( \
           SELECT id FROM outbox \
           WHERE status IN ('pending', 'sending') AND next_attempt_at <= $1 \
           ORDER BY next_attempt_at LIMIT $3{}) \
         RETURNING {OUTBOX_COLUMNS}",
        dialect::SKIP_LOCKED
    ))
    .bind(now)
    .bind(now + claim_for)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(outbox_row).collect::<Result<_, _>>()?)
}

pub(super) async fn settle_outbox(
    store: &SqlStore,
    id: Uuid,
    claim: i64,
    outcome: &Delivery,
) -> StoreResult<bool> {
    let (status, at, sent_at, error) = match outcome {
        Delivery::Sent { at } => (OutboxStatus::Sent, *at, Some(*at), None),
        Delivery::RetryAt { at, error } => (OutboxStatus::Pending, *at, None, Some(error)),
        Delivery::Failed { at, error } => (OutboxStatus::Failed, *at, None, Some(error)),
    };
    // The claim token fences the update: a sender whose claim expired
    // and was taken over cannot settle the newer claim. Every outcome
    // settled here followed a send, so it counts as an attempt.
    let done = sqlx::query(
        "UPDATE outbox SET status = $1, next_attempt_at = $2, sent_at = $3, \
         last_error = $4, claimed_until = NULL, attempts = attempts + 1 \
         WHERE id = $5 AND claim = $6 AND status = 'sending'",
    )
    .bind(status.as_str())
    .bind(at)
    .bind(sent_at)
    .bind(error)
    .bind(id)
    .bind(claim)
    .execute(&store.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn outbox(store: &SqlStore, q: &OutboxQuery) -> StoreResult<Vec<OutboxMessage>> {
    let rows = sqlx::query(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1 IS NULL OR status = $1) \
         AND ($2 IS NULL OR ticket_id = $2) ORDER BY created_at DESC, id LIMIT $3"
    ))
    .bind(q.status.map(OutboxStatus::as_str))
    .bind(q.ticket_id)
    .bind(q.limit.clamp(1, 1000))
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(outbox_row).collect::<Result<_, _>>()?)
}

pub(super) async fn outbox_counts(store: &SqlStore) -> StoreResult<Vec<(String, i64)>> {
    let rows =
        sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status ORDER BY status")
            .fetch_all(&store.pool)
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub(super) async fn state_counts(
    store: &SqlStore,
    table: &'static str,
) -> StoreResult<Vec<(String, i64)>> {
    // The table name is one of two constants, never user input.
    let table = match table {
        "restore_jobs" => "restore_jobs",
        _ => "tickets",
    };
    let rows = sqlx::query(&format!(
        "SELECT state, COUNT(*) AS n FROM {table} GROUP BY state ORDER BY state"
    ))
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub(super) async fn endpoint_deliveries(
    store: &SqlStore,
    endpoint_id: EndpointId,
    limit: i64,
) -> StoreResult<Vec<OutboxMessage>> {
    let rows = sqlx::query(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE endpoint_id = $1 \
         ORDER BY created_at DESC, id LIMIT $2"
    ))
    .bind(endpoint_id)
    .bind(limit.clamp(1, 1000))
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(outbox_row).collect::<Result<_, _>>()?)
}
