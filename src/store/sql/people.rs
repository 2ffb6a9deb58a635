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
                            time_zone, disabled, session_epoch, created_at";

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
        created_at: r.try_get("created_at")?,
    })
}

pub(super) async fn create_subscription(store: &SqlStore, s: &Subscription) -> StoreResult<()> {
    sqlx::query("INSERT INTO subscriptions (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(s.id)
        .bind(&s.slug)
        .bind(&s.name)
        .bind(s.created_at)
        .execute(&store.pool)
        .await?;
    Ok(())
}

pub(super) async fn subscription(store: &SqlStore, id: Uuid) -> StoreResult<Option<Subscription>> {
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

pub(super) async fn create_user(
    store: &SqlStore,
    u: &User,
    audit: Option<NewEvent>,
) -> StoreResult<()> {
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "INSERT INTO users (id, email, display_name, password_hash, role, subscription_id, \
         time_zone, disabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(u.id)
    .bind(u.email.to_lowercase())
    .bind(&u.display_name)
    .bind(&u.password_hash)
    .bind(u.role.as_str())
    .bind(u.subscription_id)
    .bind(&u.time_zone)
    .bind(u.disabled)
    .bind(u.created_at)
    .execute(&mut *tx)
    .await?;
    if let Some(event) = &audit {
        insert_event(&mut tx, event).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn user(store: &SqlStore, id: Uuid) -> StoreResult<Option<User>> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&store.pool)
        .await?;
    Ok(row.as_ref().map(user_row).transpose()?)
}

pub(super) async fn user_by_email(store: &SqlStore, email: &str) -> StoreResult<Option<User>> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
    ))
    .bind(email.trim().to_lowercase())
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
    ids: &[Uuid],
) -> StoreResult<HashMap<Uuid, String>> {
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
    let rows: Vec<(Uuid, String)> = query.build_query_as().fetch_all(&store.pool).await?;
    Ok(rows.into_iter().collect())
}

pub(super) async fn update_user(
    store: &SqlStore,
    id: Uuid,
    update: &UserUpdate,
    audit: NewEvent,
) -> StoreResult<()> {
    let mut tx = store.begin_write().await?;
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1{}",
        dialect::FOR_UPDATE
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(mut user) = row.as_ref().map(user_row).transpose()? else {
        tx.rollback().await?;
        return Err(StoreError::Conflict("the user"));
    };
    if let Some(role) = update.role {
        user.role = role;
    }
    if let Some(subscription_id) = update.subscription_id {
        user.subscription_id = subscription_id;
    }
    if let Some(disabled) = update.disabled {
        user.disabled = disabled;
    }
    if let Some(hash) = &update.password_hash {
        user.password_hash = hash.clone();
    }
    if update.disabled == Some(true) || update.password_hash.is_some() {
        user.session_epoch += 1;
    }
    if let Some(zone) = &update.time_zone {
        user.time_zone = zone.clone();
    }
    sqlx::query(
        "UPDATE users SET role = $1, subscription_id = $2, disabled = $3, \
         password_hash = $4, time_zone = $5, session_epoch = $6 WHERE id = $7",
    )
    .bind(user.role.as_str())
    .bind(user.subscription_id)
    .bind(user.disabled)
    .bind(&user.password_hash)
    .bind(&user.time_zone)
    .bind(user.session_epoch)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if user.disabled || update.password_hash.is_some() {
        // A disabled account's API tokens die with it, and a new
        // password ends every token issued under the old one.
        sqlx::query("DELETE FROM api_tokens WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    insert_event(&mut tx, &audit).await?;
    tx.commit().await?;
    Ok(())
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
    user_id: Uuid,
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
