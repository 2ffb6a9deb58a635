//! Endpoints: registered in a commit beside their audit event, read by
//! owner, and by the commits whose notices they hear.

use super::*;

const ENDPOINT_COLUMNS: &str = "id, subscription_id, owner_id, kind, url, events, secret_version, \
    previous_secret_until, disabled_at, disabled_reason, created_at";

fn endpoint_row(r: &DbRow) -> Result<Endpoint, sqlx::Error> {
    let events: String = r.try_get("events")?;
    Ok(Endpoint {
        id: r.try_get("id")?,
        subscription_id: r.try_get("subscription_id")?,
        owner_id: r.try_get("owner_id")?,
        kind: decode(r.try_get("kind")?)?,
        url: r.try_get("url")?,
        events: events
            .split_whitespace()
            .map(|e| decode(e.to_string()))
            .collect::<Result<_, _>>()?,
        secret_version: r.try_get("secret_version")?,
        previous_secret_until: r.try_get("previous_secret_until")?,
        disabled_at: r.try_get("disabled_at")?,
        disabled_reason: r.try_get("disabled_reason")?,
        created_at: r.try_get("created_at")?,
    })
}

fn events_text(events: &[EventType]) -> String {
    events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) async fn insert_endpoint(tx: &mut Tx, e: &Endpoint) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO endpoints (id, subscription_id, owner_id, kind, url, events, \
         secret_version, previous_secret_until, disabled_at, disabled_reason, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(e.id)
    .bind(e.subscription_id)
    .bind(e.owner_id)
    .bind(e.kind.as_str())
    .bind(&e.url)
    .bind(events_text(&e.events))
    .bind(e.secret_version)
    .bind(e.previous_secret_until)
    .bind(e.disabled_at)
    .bind(&e.disabled_reason)
    .bind(e.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn change_endpoint(
    tx: &mut Tx,
    id: EndpointId,
    change: &EndpointChange,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let done = match change {
        EndpointChange::Rotate { overlap_until } => {
            sqlx::query(
                "UPDATE endpoints SET secret_version = secret_version + 1, \
                 previous_secret_until = $1 WHERE id = $2",
            )
            .bind(overlap_until)
            .bind(id)
            .execute(&mut **tx)
            .await?
        }
        EndpointChange::Disable { reason } => {
            let done = sqlx::query(
                "UPDATE endpoints SET disabled_at = $1, disabled_reason = $2 WHERE id = $3",
            )
            .bind(at)
            .bind(reason)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            // What waits is not posted; the log says why.
            sqlx::query(
                "UPDATE outbox SET status = 'failed', claimed_until = NULL, last_error = $1 \
                 WHERE endpoint_id = $2 AND status IN ('pending', 'sending')",
            )
            .bind(format!("not posted: the endpoint was disabled ({reason})"))
            .bind(id)
            .execute(&mut **tx)
            .await?;
            done
        }
        EndpointChange::Enable => {
            sqlx::query(
                "UPDATE endpoints SET disabled_at = NULL, disabled_reason = NULL WHERE id = $1",
            )
            .bind(id)
            .execute(&mut **tx)
            .await?
        }
        EndpointChange::Delete => {
            sqlx::query("DELETE FROM outbox WHERE endpoint_id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM endpoints WHERE id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?
        }
    };
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound("the endpoint"));
    }
    Ok(())
}

pub(super) async fn endpoint(store: &SqlStore, id: EndpointId) -> StoreResult<Option<Endpoint>> {
    let row = sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(endpoint_row).transpose()?)
}

pub(super) async fn endpoints(
    store: &SqlStore,
    owner: EndpointOwner,
) -> StoreResult<Vec<Endpoint>> {
    let subscription = match owner {
        EndpointOwner::Subscription(id) => Some(id),
        EndpointOwner::Staff => None,
    };
    let rows = sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints \
         WHERE ($1 IS NULL AND subscription_id IS NULL) OR subscription_id = $1 \
         ORDER BY created_at, id"
    ))
    .bind(subscription)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(endpoint_row).collect::<Result<_, _>>()?)
}

pub(super) async fn endpoints_hearing(
    store: &SqlStore,
    subscription: SubscriptionId,
) -> StoreResult<Vec<Endpoint>> {
    let rows = sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints \
         WHERE disabled_at IS NULL AND (subscription_id IS NULL OR subscription_id = $1) \
         ORDER BY created_at, id"
    ))
    .bind(subscription)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(endpoint_row).collect::<Result<_, _>>()?)
}

pub(super) async fn ensure_secret(
    store: &SqlStore,
    name: &str,
    candidate: &str,
) -> StoreResult<String> {
    sqlx::query(
        "INSERT INTO desk_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(candidate)
    .execute(&store.pool)
    .await?;
    let value = sqlx::query_scalar("SELECT value FROM desk_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(&store.pool)
        .await?;
    Ok(value)
}
