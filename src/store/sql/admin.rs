//! Administration's writes: people, subscriptions, zones, clusters, the
//! fleet's hosts and the simulated fleet's faults. Each is applied inside a
//! commit, beside its audit event; a write that finds nothing to change
//! refuses the commit.

use super::*;

pub(super) async fn write_admin(
    tx: &mut Tx,
    write: &AdminWrite,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    match write {
        AdminWrite::CreateSubscription(s) => {
            sqlx::query(
                "INSERT INTO subscriptions (id, slug, name, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(s.id)
            .bind(&s.slug)
            .bind(&s.name)
            .bind(s.created_at)
            .execute(&mut **tx)
            .await?;
        }
        AdminWrite::CreateUser(u) => {
            sqlx::query(
                "INSERT INTO users (id, email, display_name, password_hash, role, \
                 subscription_id, time_zone, disabled, session_epoch, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(u.id)
            .bind(u.email.as_str())
            .bind(&u.display_name)
            .bind(&u.password_hash)
            .bind(u.role.as_str())
            .bind(u.subscription_id)
            .bind(&u.time_zone)
            .bind(u.disabled)
            .bind(u.session_epoch)
            .bind(u.created_at)
            .execute(&mut **tx)
            .await?;
        }
        AdminWrite::UpdateUser { id, update } => update_user(tx, *id, update).await?,
        AdminWrite::EnsureZone {
            region,
            zone,
            online,
        } => {
            sqlx::query(
                "INSERT INTO zones (region, zone, online, changed_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (region, zone) DO NOTHING",
            )
            .bind(region)
            .bind(zone.as_str())
            .bind(online)
            .bind(at)
            .execute(&mut **tx)
            .await?;
        }
        AdminWrite::SetZone {
            region,
            zone,
            online,
        } => {
            let done = sqlx::query(
                "UPDATE zones SET online = $1, changed_at = $2 WHERE region = $3 AND zone = $4",
            )
            .bind(online)
            .bind(at)
            .bind(region)
            .bind(zone.as_str())
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("the zone"));
            }
        }
        AdminWrite::InsertCluster(cluster) => fleet::insert_cluster_row(tx, cluster).await?,
        AdminWrite::DeleteCluster { id } => {
            let done = sqlx::query(
                "UPDATE clusters SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
            )
            .bind(at)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("a live cluster"));
            }
        }
        AdminWrite::AddFault(f) => {
            sqlx::query(
                "INSERT INTO sandbox_faults (id, kind, step, permanent, remaining, delay_ms, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(f.id)
            .bind(f.kind.as_str())
            .bind(f.step.as_str())
            .bind(f.permanent)
            .bind(f.remaining)
            .bind(f.delay_ms)
            .bind(f.created_at)
            .execute(&mut **tx)
            .await?;
        }
        AdminWrite::ClearFaults => {
            sqlx::query("DELETE FROM sandbox_faults")
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM sandbox_damaged_copies")
                .execute(&mut **tx)
                .await?;
        }
        AdminWrite::DamageSnapshot { snapshot_id, zone } => {
            let column = format!("in_{zone}");
            let held: Option<bool> = sqlx::query_scalar(&format!(
                "SELECT {column} FROM sandbox_snapshots WHERE id = $1"
            ))
            .bind(snapshot_id)
            .fetch_optional(&mut **tx)
            .await?;
            if held != Some(true) {
                return Err(StoreError::NotFound("a copy of that snapshot in that zone"));
            }
            sqlx::query(
                "INSERT INTO sandbox_damaged_copies (snapshot_id, zone) VALUES ($1, $2) \
                 ON CONFLICT (snapshot_id, zone) DO NOTHING",
            )
            .bind(snapshot_id)
            .bind(zone.as_str())
            .execute(&mut **tx)
            .await?;
        }
        AdminWrite::SetDrillSettings {
            cluster_id,
            settings,
        } => {
            let done = sqlx::query(
                "UPDATE clusters SET drill_interval_hours = $1, canary_query = $2 WHERE id = $3",
            )
            .bind(settings.interval_hours)
            .bind(settings.canary.as_ref().map(|c| c.as_str().to_string()))
            .bind(cluster_id)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("the cluster"));
            }
        }
        AdminWrite::CreateEndpoint(endpoint) => endpoints::insert_endpoint(tx, endpoint).await?,
        AdminWrite::ChangeEndpoint { id, change } => {
            endpoints::change_endpoint(tx, *id, change, at).await?
        }
        AdminWrite::PutFleetHost(host) => hosts::put_host_row(tx, host, at).await?,
        AdminWrite::RemoveFleetHost { name } => hosts::remove_host_row(tx, name).await?,
    }
    Ok(())
}

/// Writes exactly the fields an admin changed, without reading the row
/// first. Disabling the account or changing its password ends its sessions
/// (a new epoch) and its API tokens.
async fn update_user(tx: &mut Tx, id: UserId, u: &UserUpdate) -> StoreResult<()> {
    let ends_access = u.disabled == Some(true) || u.password_hash.is_some();
    let done = sqlx::query(
        "UPDATE users SET role = COALESCE($1, role), \
           subscription_id = CASE WHEN $2 THEN $3 ELSE subscription_id END, \
           disabled = COALESCE($4, disabled), \
           password_hash = COALESCE($5, password_hash), \
           time_zone = COALESCE($6, time_zone), \
           session_epoch = session_epoch + CASE WHEN $7 THEN 1 ELSE 0 END, \
           must_change_password = COALESCE($8, must_change_password) \
         WHERE id = $9",
    )
    .bind(u.role.map(Role::as_str))
    .bind(u.subscription_id.is_some())
    .bind(u.subscription_id.flatten())
    .bind(u.disabled)
    .bind(&u.password_hash)
    .bind(&u.time_zone)
    .bind(ends_access)
    .bind(u.must_change_password)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound("the user"));
    }
    if ends_access {
        sqlx::query("DELETE FROM api_tokens WHERE user_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
