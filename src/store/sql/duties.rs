//! Leases on the periodic duties.

use super::*;

pub(super) async fn take_duty(
    store: &SqlStore,
    name: &str,
    owner: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> StoreResult<bool> {
    let held: Option<String> = sqlx::query_scalar(
        "INSERT INTO duty_leases (name, owner, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, \
           expires_at = excluded.expires_at \
         WHERE duty_leases.owner = excluded.owner OR duty_leases.expires_at <= $4 \
         RETURNING owner",
    )
    .bind(name)
    .bind(owner)
    .bind(now + ttl)
    .bind(now)
    .fetch_optional(&store.pool)
    .await?;
    Ok(held.is_some())
}

pub(super) async fn duty_holder(
    store: &SqlStore,
    name: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<String>> {
    let owner =
        sqlx::query_scalar("SELECT owner FROM duty_leases WHERE name = $1 AND expires_at > $2")
            .bind(name)
            .bind(now)
            .fetch_optional(&store.pool)
            .await?;
    Ok(owner)
}

pub(super) async fn release_duty(store: &SqlStore, name: &str, owner: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM duty_leases WHERE name = $1 AND owner = $2")
        .bind(name)
        .bind(owner)
        .execute(&store.pool)
        .await?;
    Ok(())
}
