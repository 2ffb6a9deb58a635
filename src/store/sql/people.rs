//! Subscriptions, people and their API tokens.

use super::*;

pub(super) const SUBSCRIPTION_COLUMNS: &str = "id, slug, name, created_at";

pub(super) fn subscription_row(r: &DbRow) -> Result<Subscription, sqlx::Error> {
    Ok(Subscription {
        id: r.try_get("id")?,
        slug: r.try_get("slug")?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(super) const USER_COLUMNS: &str = "id, email, display_name, password_hash, role, subscription_id, \
                            time_zone, disabled, session_epoch, must_change_password, created_at";

pub(super) fn user_row(r: &DbRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        password_hash: r.try_get("password_hash")?,
        role: decode(r.try_get("role")?)?,
        subscription_id: r.try_get("subscription_id")?,
        time_zone: r.try_get("time_zone")?,
        disabled: r.try_get("disabled")?,
        session_epoch: r.try_get("session_epoch")?,
        must_change_password: r.try_get("must_change_password")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(super) async fn subscription(
    store: &SqlStore,
    id: SubscriptionId,
) -> StoreResult<Option<Subscription>> {
    let row = sqlx::query(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(subscription_row).transpose()?)
}

pub(super) async fn subscription_by_slug(
    store: &SqlStore,
    slug: &str,
) -> StoreResult<Option<Subscription>> {
    let row = sqlx::query(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE slug = $1"
    ))
    .bind(slug)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(subscription_row).transpose()?)
}

pub(super) async fn subscriptions(store: &SqlStore) -> StoreResult<Vec<Subscription>> {
    let rows = sqlx::query(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions ORDER BY slug"
    ))
    .fetch_all(&store.pool)
    .await?;
    Ok(rows
        .iter()
        .map(subscription_row)
        .collect::<Result<_, _>>()?)
}

pub(super) async fn user(store: &SqlStore, id: UserId) -> StoreResult<Option<User>> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&store.pool)
        .await?;
    Ok(row.as_ref().map(user_row).transpose()?)
}

pub(super) async fn user_by_email(store: &SqlStore, email: &Email) -> StoreResult<Option<User>> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
    ))
    .bind(email.as_str())
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(user_row).transpose()?)
}

pub(super) async fn users(store: &SqlStore) -> StoreResult<Vec<User>> {
    let rows = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users ORDER BY role, email"
    ))
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(user_row).collect::<Result<_, _>>()?)
}

pub(super) async fn display_names(
    store: &SqlStore,
    ids: &[UserId],
) -> StoreResult<HashMap<UserId, String>> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut query = QueryBuilder::<Db>::new("SELECT id, display_name FROM users WHERE id IN (");
    let mut list = query.separated(", ");
    for id in &ids {
        list.push_bind(*id);
    }
    query.push(")");
    let rows: Vec<(UserId, String)> = query.build_query_as().fetch_all(&store.pool).await?;
    Ok(rows.into_iter().collect())
}

pub(super) async fn users_with_role(store: &SqlStore, role: Role) -> StoreResult<Vec<User>> {
    let rows = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE role = $1 AND disabled = FALSE ORDER BY email"
    ))
    .bind(role.as_str())
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(user_row).collect::<Result<_, _>>()?)
}

pub(super) async fn create_api_token(
    store: &SqlStore,
    token_hash: &str,
    user_id: UserId,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, user_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(created_at)
    .bind(expires_at)
    .execute(&store.pool)
    .await?;
    Ok(())
}

pub(super) async fn user_for_api_token(
    store: &SqlStore,
    token_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<User>> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE disabled = FALSE AND id = ( \
           SELECT user_id FROM api_tokens WHERE token_hash = $1 AND expires_at > $2)"
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(user_row).transpose()?)
}

pub(super) async fn revoke_api_token(store: &SqlStore, token_hash: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1")
        .bind(token_hash)
        .execute(&store.pool)
        .await?;
    Ok(())
}
