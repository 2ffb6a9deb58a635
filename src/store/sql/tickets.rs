//! Tickets, their messages and events, and the audit log.

use super::*;

pub(super) const TICKET_COLUMNS: &str = "id, number, subscription_id, requester_id, cluster_id, \
    resource_group, target_time, time_zone, new_cluster_name, severity, description, state, \
    version, assignee_id, validation_report, rejection_reason, deadline, first_response_due, \
    first_response_at, deadline_warned_at, new_cluster_id, created_at, updated_at, target_xid, \
    target_position, inspect, decision_due";

/// The transaction a ticket targets, from its two columns.
fn transaction_of(r: &DbRow) -> Result<Option<TransactionTarget>, sqlx::Error> {
    let xid: Option<i64> = r.try_get("target_xid")?;
    let position: Option<String> = r.try_get("target_position")?;
    Ok(match (xid, position) {
        (Some(xid), Some(position)) => Some(TransactionTarget {
            xid: u64::try_from(xid).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            position: decode(position)?,
        }),
        _ => None,
    })
}

pub(super) fn ticket_row(r: &DbRow) -> Result<Ticket, sqlx::Error> {
    Ok(Ticket {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        subscription_id: r.try_get("subscription_id")?,
        requester_id: r.try_get("requester_id")?,
        cluster_id: r.try_get("cluster_id")?,
        resource_group: r.try_get("resource_group")?,
        target_time: r.try_get("target_time")?,
        transaction: transaction_of(r)?,
        time_zone: r.try_get("time_zone")?,
        new_cluster_name: r.try_get("new_cluster_name")?,
        severity: decode(r.try_get("severity")?)?,
        description: r.try_get("description")?,
        state: decode(r.try_get("state")?)?,
        version: r.try_get("version")?,
        assignee_id: r.try_get("assignee_id")?,
        validation_report: r
            .try_get::<Json<ValidationReport>, _>("validation_report")?
            .0,
        rejection_reason: r.try_get("rejection_reason")?,
        deadline: r.try_get("deadline")?,
        first_response_due: r.try_get("first_response_due")?,
        first_response_at: r.try_get("first_response_at")?,
        deadline_warned_at: r.try_get("deadline_warned_at")?,
        new_cluster_id: r.try_get("new_cluster_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        inspect: r.try_get("inspect")?,
        decision_due: r.try_get("decision_due")?,
    })
}

pub(super) const MESSAGE_COLUMNS: &str =
    "id, ticket_id, author_id, author_role, visibility, body, created_at";

pub(super) fn message_row(r: &DbRow) -> Result<Message, sqlx::Error> {
    Ok(Message {
        id: r.try_get("id")?,
        ticket_id: r.try_get("ticket_id")?,
        author_id: r.try_get("author_id")?,
        author_role: decode(r.try_get("author_role")?)?,
        visibility: decode(r.try_get("visibility")?)?,
        body: r.try_get("body")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(super) const EVENT_COLUMNS: &str =
    "id, ticket_id, job_id, actor_id, actor_role, action, from_state, to_state, detail, created_at";

pub(super) fn event_row(r: &DbRow) -> Result<Event, sqlx::Error> {
    Ok(Event {
        id: r.try_get("id")?,
        ticket_id: r.try_get("ticket_id")?,
        job_id: r.try_get("job_id")?,
        actor_id: r.try_get("actor_id")?,
        actor_role: decode(r.try_get("actor_role")?)?,
        action: decode(r.try_get("action")?)?,
        from_state: r.try_get("from_state")?,
        to_state: r.try_get("to_state")?,
        detail: r.try_get("detail")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Events, messages and emails of one change go in one multi-row INSERT
/// each: one round trip, however many there are.
pub(super) async fn insert_events(tx: &mut Tx, events: &[NewEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut sql = QueryBuilder::<Db>::new(
        "INSERT INTO events (ticket_id, job_id, actor_id, actor_role, action, from_state, \
         to_state, detail, created_at) ",
    );
    sql.push_values(events, |mut row, e| {
        row.push_bind(e.ticket_id)
            .push_bind(e.job_id)
            .push_bind(e.actor.user_id)
            .push_bind(e.actor.role.as_str())
            .push_bind(e.action.as_str())
            .push_bind(&e.from_state)
            .push_bind(&e.to_state)
            .push_bind(&e.detail)
            .push_bind(e.at);
    });
    sql.build().execute(&mut **tx).await?;
    Ok(())
}

/// Inserts a ticket, numbering it here when it has no number yet: in the
/// same transaction, so a refused filing leaves no gap. Returns the number.
pub(super) async fn insert_ticket(
    tx: &mut Tx,
    t: &NewTicket,
    at: DateTime<Utc>,
) -> StoreResult<i64> {
    let number = match t.number {
        Some(number) => number,
        None => next_ticket_number(tx).await?,
    };
    sqlx::query(
        "INSERT INTO tickets (id, number, subscription_id, requester_id, cluster_id, \
         resource_group, target_time, time_zone, new_cluster_name, severity, description, \
         state, version, validation_report, deadline, first_response_due, created_at, \
         updated_at, target_xid, target_position, inspect) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14, $15, $16, $16, \
         $17, $18, $19)",
    )
    .bind(t.id)
    .bind(number)
    .bind(t.subscription_id)
    .bind(t.requester_id)
    .bind(t.cluster_id)
    .bind(&t.resource_group)
    .bind(t.target_time)
    .bind(&t.time_zone)
    .bind(&t.new_cluster_name)
    .bind(t.severity.as_str())
    .bind(&t.description)
    .bind(t.state.as_str())
    .bind(Json(&t.validation_report))
    .bind(t.deadline)
    .bind(t.first_response_due)
    .bind(at)
    .bind(
        t.transaction
            .map(|x| i64::try_from(x.xid).unwrap_or(i64::MAX)),
    )
    .bind(t.transaction.map(|x| x.position.as_str()))
    .bind(t.inspect)
    .execute(&mut **tx)
    .await?;
    Ok(number)
}

pub(super) async fn next_ticket_number(tx: &mut Tx) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "UPDATE counters SET value = value + 1 WHERE name = 'ticket_number' RETURNING value",
    )
    .fetch_one(&mut **tx)
    .await?)
}

pub(super) async fn change_ticket(
    tx: &mut Tx,
    c: &TicketChange,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE tickets SET state = $1, version = version + 1, updated_at = $2, \
           assignee_id = COALESCE($3, assignee_id), \
           rejection_reason = COALESCE($4, rejection_reason), \
           first_response_at = CASE WHEN $5 THEN COALESCE(first_response_at, $2) \
                                    ELSE first_response_at END, \
           deadline_warned_at = CASE WHEN $6 THEN $2 WHEN $12 THEN NULL \
                                     ELSE deadline_warned_at END, \
           validation_report = COALESCE($7, validation_report), \
           new_cluster_id = COALESCE($8, new_cluster_id), \
           target_time = COALESCE($13, target_time), \
           time_zone = COALESCE($14, time_zone), \
           deadline = COALESCE($15, deadline), \
           target_xid = CASE WHEN $12 THEN $16 ELSE target_xid END, \
           target_position = CASE WHEN $12 THEN $17 ELSE target_position END, \
           inspect = inspect OR $18, \
           decision_due = CASE WHEN $19 THEN $20 ELSE decision_due END \
         WHERE id = $9 AND state = $10 AND ($11 IS NULL OR version = $11)",
    )
    .bind(c.to.as_str())
    .bind(at)
    .bind(c.assign)
    .bind(&c.rejection_reason)
    .bind(c.record_first_response)
    .bind(c.mark_deadline_warned)
    .bind(c.validation_report.as_ref().map(Json))
    .bind(c.new_cluster_id)
    .bind(c.ticket_id)
    .bind(c.guard.state.as_str())
    .bind(c.guard.version)
    .bind(c.retarget.is_some())
    .bind(c.retarget.as_ref().map(|r| r.target_time))
    .bind(c.retarget.as_ref().map(|r| r.time_zone.clone()))
    .bind(c.retarget.as_ref().map(|r| r.deadline))
    .bind(
        c.retarget
            .as_ref()
            .and_then(|r| r.transaction)
            .map(|x| i64::try_from(x.xid).unwrap_or(i64::MAX)),
    )
    .bind(
        c.retarget
            .as_ref()
            .and_then(|r| r.transaction)
            .map(|x| x.position.as_str()),
    )
    .bind(c.require_inspection)
    .bind(c.decide_by.is_some())
    .bind(c.decide_by.flatten())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict("the ticket"))
    }
}

pub(super) async fn insert_messages(
    tx: &mut Tx,
    messages: &[NewMessage],
    at: DateTime<Utc>,
) -> StoreResult<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let mut sql = QueryBuilder::<Db>::new(
        "INSERT INTO messages (id, ticket_id, author_id, author_role, visibility, body, \
         created_at) ",
    );
    sql.push_values(messages, |mut row, m| {
        row.push_bind(m.id)
            .push_bind(m.ticket_id)
            .push_bind(m.author.user_id)
            .push_bind(m.author.role.as_str())
            .push_bind(m.visibility.as_str())
            .push_bind(&m.body)
            .push_bind(at);
    });
    sql.build().execute(&mut **tx).await?;
    Ok(())
}

pub(super) async fn allocate_ticket_number(store: &SqlStore) -> StoreResult<i64> {
    let number: i64 = sqlx::query_scalar(
        "UPDATE counters SET value = value + 1 WHERE name = 'ticket_number' RETURNING value",
    )
    .fetch_one(&store.pool)
    .await?;
    Ok(number)
}

pub(super) async fn ticket(
    store: &SqlStore,
    id: TicketId,
    scope: Scope,
) -> StoreResult<Option<Ticket>> {
    let row = sqlx::query(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1 \
         AND ($2 IS NULL OR subscription_id = $2)"
    ))
    .bind(id)
    .bind(scope.subscription())
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(ticket_row).transpose()?)
}

pub(super) async fn ticket_by_number(
    store: &SqlStore,
    number: i64,
    scope: Scope,
) -> StoreResult<Option<Ticket>> {
    let row = sqlx::query(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE number = $1 \
         AND ($2 IS NULL OR subscription_id = $2)"
    ))
    .bind(number)
    .bind(scope.subscription())
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(ticket_row).transpose()?)
}

/// `sla::queue_due` in SQL: the first response's due time while the ticket
/// is open, unanswered and that comes first, else the deadline.
const QUEUE_DUE: &str = "(CASE WHEN first_response_at IS NULL \
    AND state NOT IN ('completed', 'rejected', 'cancelled') \
    AND first_response_due < deadline THEN first_response_due ELSE deadline END)";

/// Open and unanswered: the first-response clock is running.
const RESPONSE_RUNNING: &str =
    "first_response_at IS NULL AND state NOT IN ('completed', 'rejected', 'cancelled')";

/// `RD-12`, `rd 12` or `12`: the number a person types for a ticket.
fn typed_number(text: &str) -> Option<i64> {
    let t = text.trim();
    let digits = t
        .strip_prefix("RD")
        .or_else(|| t.strip_prefix("rd"))
        .or_else(|| t.strip_prefix("Rd"))
        .map(|rest| rest.trim_start_matches(['-', ' ', '#']))
        .unwrap_or_else(|| t.trim_start_matches('#'));
    digits.parse().ok()
}

/// A LIKE pattern that finds `text` anywhere, its own `%`, `_` and `\\`
/// taken literally.
fn contains_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn push_search(sql: &mut QueryBuilder<'_, Db>, words: &str) {
    let pattern = contains_pattern(words);
    sql.push(" AND (");
    if let Some(number) = typed_number(words) {
        sql.push("number = ").push_bind(number).push(" OR ");
    }
    for (i, column) in ["lower(description)", "lower(new_cluster_name)"]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push(column)
            .push(" LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\'");
    }
    sql.push(" OR cluster_id IN (SELECT id FROM clusters WHERE lower(name) LIKE ")
        .push_bind(pattern.clone())
        .push(" ESCAPE '\\')");
    sql.push(" OR requester_id IN (SELECT id FROM users WHERE lower(email) LIKE ")
        .push_bind(pattern.clone())
        .push(" ESCAPE '\\' OR lower(display_name) LIKE ")
        .push_bind(pattern.clone())
        .push(" ESCAPE '\\')");
    sql.push(" OR id IN (SELECT ticket_id FROM messages WHERE lower(body) LIKE ")
        .push_bind(pattern)
        .push(" ESCAPE '\\'))");
}

pub(super) async fn tickets(store: &SqlStore, q: &TicketQuery) -> StoreResult<Vec<Ticket>> {
    let mut sql =
        QueryBuilder::<Db>::new(format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE TRUE"));
    if let Some(subscription) = q.scope.subscription() {
        sql.push(" AND subscription_id = ").push_bind(subscription);
    }
    if !q.states.is_empty() {
        sql.push(" AND state IN (");
        let mut list = sql.separated(", ");
        for state in &q.states {
            list.push_bind(state.as_str());
        }
        list.push_unseparated(")");
    }
    if let Some(severity) = q.severity {
        sql.push(" AND severity = ").push_bind(severity.as_str());
    }
    match q.assignee {
        AssigneeFilter::Anyone => {}
        AssigneeFilter::Unassigned => {
            sql.push(" AND assignee_id IS NULL");
        }
        AssigneeFilter::User(id) => {
            sql.push(" AND assignee_id = ").push_bind(id);
        }
    }
    if let Some(before) = q.response_due_before {
        sql.push(" AND ")
            .push(RESPONSE_RUNNING)
            .push(" AND first_response_due < ")
            .push_bind(before);
    }
    if let Some(words) = q.search.as_deref().filter(|w| !w.trim().is_empty()) {
        push_search(&mut sql, words);
    }
    match &q.order {
        TicketOrder::Queue { after } => {
            if let Some((due, severity, number)) = after {
                sql.push(" AND (")
                    .push(QUEUE_DUE)
                    .push(", severity, number) > (")
                    .push_bind(*due)
                    .push(", ")
                    .push_bind(severity.as_str())
                    .push(", ")
                    .push_bind(*number)
                    .push(")");
            }
            sql.push(" ORDER BY ")
                .push(QUEUE_DUE)
                .push(", severity, number");
        }
        TicketOrder::Newest { before } => {
            if let Some(number) = before {
                sql.push(" AND number < ").push_bind(*number);
            }
            sql.push(" ORDER BY number DESC");
        }
    }
    sql.push(" LIMIT ").push_bind(q.limit.clamp(1, 1000));
    let rows = sql.build().fetch_all(&store.pool).await?;
    Ok(rows.iter().map(ticket_row).collect::<Result<_, _>>()?)
}

pub(super) async fn ticket_tallies(
    store: &SqlStore,
    now: DateTime<Utc>,
    soon: DateTime<Utc>,
) -> StoreResult<Vec<TicketTally>> {
    let rows = sqlx::query(&format!(
        "SELECT state, severity, assignee_id, \
           CASE WHEN {RESPONSE_RUNNING} AND first_response_due < $1 THEN 1 ELSE 0 END AS breached, \
           CASE WHEN {RESPONSE_RUNNING} AND first_response_due < $2 THEN 1 ELSE 0 END AS due_soon, \
           COUNT(*) AS n \
         FROM tickets GROUP BY state, severity, assignee_id, breached, due_soon"
    ))
    .bind(now)
    .bind(soon)
    .fetch_all(&store.pool)
    .await?;
    let tally = |r: &DbRow| -> Result<TicketTally, sqlx::Error> {
        let breached: i32 = r.try_get("breached")?;
        let due_soon: i32 = r.try_get("due_soon")?;
        Ok(TicketTally {
            state: decode(r.try_get("state")?)?,
            severity: decode(r.try_get("severity")?)?,
            assignee_id: r.try_get("assignee_id")?,
            response_breached: breached != 0,
            response_due_soon: due_soon != 0,
            count: r.try_get("n")?,
        })
    };
    Ok(rows.iter().map(tally).collect::<Result<_, _>>()?)
}

pub(super) async fn count_tickets(
    store: &SqlStore,
    scope: Scope,
    states: &[TicketState],
) -> StoreResult<i64> {
    let mut sql = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM tickets WHERE TRUE");
    if let Some(subscription) = scope.subscription() {
        sql.push(" AND subscription_id = ").push_bind(subscription);
    }
    if !states.is_empty() {
        sql.push(" AND state IN (");
        let mut list = sql.separated(", ");
        for state in states {
            list.push_bind(state.as_str());
        }
        list.push_unseparated(")");
    }
    let count: i64 = sql.build_query_scalar().fetch_one(&store.pool).await?;
    Ok(count)
}

pub(super) async fn messages(
    store: &SqlStore,
    ticket_id: TicketId,
    include_internal: bool,
) -> StoreResult<Vec<Message>> {
    let rows = sqlx::query(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE ticket_id = $1 \
         AND ($2 OR visibility = 'public') ORDER BY created_at, id"
    ))
    .bind(ticket_id)
    .bind(include_internal)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(message_row).collect::<Result<_, _>>()?)
}

pub(super) async fn ticket_events(
    store: &SqlStore,
    ticket_id: TicketId,
) -> StoreResult<Vec<Event>> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE ticket_id = $1 ORDER BY id"
    ))
    .bind(ticket_id)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(event_row).collect::<Result<_, _>>()?)
}

pub(super) async fn audit_log(
    store: &SqlStore,
    before: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<Event>> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE ($1 IS NULL OR id < $1) \
         ORDER BY id DESC LIMIT $2"
    ))
    .bind(before)
    .bind(limit.clamp(1, 1000))
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(event_row).collect::<Result<_, _>>()?)
}

pub(super) async fn tickets_nearing_deadline(
    store: &SqlStore,
    before: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<Ticket>> {
    let rows = sqlx::query(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE deadline < $1 \
         AND deadline_warned_at IS NULL \
         AND state IN ('submitted', 'triage', 'in_review', 'awaiting_customer', 'approved', \
                       'failed') \
         ORDER BY deadline LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(ticket_row).collect::<Result<_, _>>()?)
}

pub(super) async fn undecided_tickets(
    store: &SqlStore,
    due_before: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<Ticket>> {
    let rows = sqlx::query(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets \
         WHERE state = 'awaiting_decision' AND decision_due <= $1 \
         ORDER BY decision_due LIMIT $2"
    ))
    .bind(due_before)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(ticket_row).collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod search_tests {
    use super::*;

    #[test]
    fn a_typed_number_reads_with_or_without_its_prefix() {
        assert_eq!(typed_number("RD-12"), Some(12));
        assert_eq!(typed_number(" rd 7 "), Some(7));
        assert_eq!(typed_number("#40"), Some(40));
        assert_eq!(typed_number("40"), Some(40));
        assert_eq!(typed_number("orders"), None);
    }

    #[test]
    fn wildcards_in_search_words_are_taken_literally() {
        assert_eq!(contains_pattern(" 50%_off\\ "), "%50\\%\\_off\\\\%");
        assert_eq!(contains_pattern("Orders"), "%orders%");
    }
}
