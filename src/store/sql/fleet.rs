//! Zones and clusters.

use super::*;

pub(super) const CLUSTER_COLUMNS: &str = "id, subscription_id, resource_group, region, name, tier, vcores, \
    storage_gib, node_count, high_availability, server_version, host, port, database_name, \
    db_user, status, created_at, deleted_at, restored_from_ticket_id, restored_point, stanza, \
    fleet_host, data_directory, socket_directory, backrest_config, adopted_at";

pub(super) fn cluster_row(r: &DbRow) -> Result<Cluster, sqlx::Error> {
    let restored_ticket: Option<TicketId> = r.try_get("restored_from_ticket_id")?;
    let restored_point: Option<DateTime<Utc>> = r.try_get("restored_point")?;
    let stanza: Option<String> = r.try_get("stanza")?;
    let fleet_host: Option<String> = r.try_get("fleet_host")?;
    let data_directory: Option<String> = r.try_get("data_directory")?;
    let backrest_config: Option<String> = r.try_get("backrest_config")?;
    Ok(Cluster {
        id: r.try_get("id")?,
        subscription_id: r.try_get("subscription_id")?,
        resource_group: r.try_get("resource_group")?,
        region: r.try_get("region")?,
        name: r.try_get("name")?,
        config: ClusterConfig {
            tier: r.try_get("tier")?,
            vcores: r.try_get("vcores")?,
            storage_gib: r.try_get("storage_gib")?,
            node_count: r.try_get("node_count")?,
            high_availability: r.try_get("high_availability")?,
            server_version: r.try_get("server_version")?,
        },
        connection: Connection {
            host: r.try_get("host")?,
            port: r.try_get("port")?,
            database: r.try_get("database_name")?,
            user: r.try_get("db_user")?,
        },
        status: decode(r.try_get("status")?)?,
        created_at: r.try_get("created_at")?,
        deleted_at: r.try_get("deleted_at")?,
        restored_from: match (restored_ticket, restored_point) {
            (Some(ticket_id), Some(point_in_time)) => Some(RestoredFrom {
                ticket_id,
                point_in_time,
            }),
            _ => None,
        },
        location: match (stanza, fleet_host, data_directory, backrest_config) {
            (Some(stanza), Some(host), Some(data_directory), Some(backrest_config)) => {
                Some(FleetLocation {
                    stanza,
                    host,
                    data_directory,
                    socket_directory: r.try_get("socket_directory")?,
                    backrest_config,
                    adopted_at: r.try_get("adopted_at")?,
                })
            }
            _ => None,
        },
    })
}

pub(super) async fn insert_cluster_row(tx: &mut Tx, c: &Cluster) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO clusters (id, subscription_id, resource_group, region, name, tier, vcores, \
         storage_gib, node_count, high_availability, server_version, host, port, \
         database_name, db_user, status, created_at, deleted_at, restored_from_ticket_id, \
         restored_point, stanza, fleet_host, data_directory, socket_directory, backrest_config, \
         adopted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22, $23, $24, $25, $26)",
    )
    .bind(c.id)
    .bind(c.subscription_id)
    .bind(&c.resource_group)
    .bind(&c.region)
    .bind(&c.name)
    .bind(&c.config.tier)
    .bind(c.config.vcores)
    .bind(c.config.storage_gib)
    .bind(c.config.node_count)
    .bind(c.config.high_availability)
    .bind(&c.config.server_version)
    .bind(&c.connection.host)
    .bind(c.connection.port)
    .bind(&c.connection.database)
    .bind(&c.connection.user)
    .bind(c.status.as_str())
    .bind(c.created_at)
    .bind(c.deleted_at)
    .bind(c.restored_from.as_ref().map(|r| r.ticket_id))
    .bind(c.restored_from.as_ref().map(|r| r.point_in_time))
    .bind(c.location.as_ref().map(|l| l.stanza.as_str()))
    .bind(c.location.as_ref().map(|l| l.host.as_str()))
    .bind(c.location.as_ref().map(|l| l.data_directory.as_str()))
    .bind(
        c.location
            .as_ref()
            .and_then(|l| l.socket_directory.as_deref()),
    )
    .bind(c.location.as_ref().map(|l| l.backrest_config.as_str()))
    .bind(c.location.as_ref().and_then(|l| l.adopted_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn write_cluster(tx: &mut Tx, write: &ClusterWrite) -> StoreResult<()> {
    match write {
        ClusterWrite::Insert(cluster) => insert_cluster_row(tx, cluster).await,
        ClusterWrite::MarkReady {
            id,
            connection,
            restored_point,
        } => {
            sqlx::query(
                "UPDATE clusters SET status = 'ready', host = $1, port = $2, database_name = $3, \
                 db_user = $4, restored_point = $6 WHERE id = $5",
            )
            .bind(&connection.host)
            .bind(connection.port)
            .bind(&connection.database)
            .bind(&connection.user)
            .bind(id)
            .bind(restored_point)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }
        ClusterWrite::Remove(id) => {
            // Only a cluster still being built may disappear; a source or a
            // handed-over cluster is never removed by a restore.
            sqlx::query("DELETE FROM clusters WHERE id = $1 AND status = 'building'")
                .bind(id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    }
}

pub(super) async fn zones(store: &SqlStore) -> StoreResult<Vec<ZoneStatus>> {
    let rows =
        sqlx::query("SELECT region, zone, online, changed_at FROM zones ORDER BY region, zone")
            .fetch_all(&store.pool)
            .await?;
    rows.iter()
        .map(|r| {
            Ok(ZoneStatus {
                region: r.try_get("region")?,
                zone: decode(r.try_get("zone")?)?,
                online: r.try_get("online")?,
                changed_at: r.try_get("changed_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub(super) async fn online_zones(store: &SqlStore, region: &str) -> StoreResult<ZoneSet> {
    let rows = sqlx::query("SELECT zone FROM zones WHERE region = $1 AND online = TRUE")
        .bind(region)
        .fetch_all(&store.pool)
        .await?;
    let mut set = ZoneSet::NONE;
    for row in rows {
        set = set.with(decode(row.try_get("zone")?)?);
    }
    Ok(set)
}

pub(super) async fn cluster(
    store: &SqlStore,
    id: ClusterId,
    scope: Scope,
) -> StoreResult<Option<Cluster>> {
    let row = sqlx::query(&format!(
        "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE id = $1 \
         AND ($2 IS NULL OR subscription_id = $2)"
    ))
    .bind(id)
    .bind(scope.subscription())
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.as_ref().map(cluster_row).transpose()?)
}

pub(super) async fn clusters(
    store: &SqlStore,
    scope: Scope,
    include_deleted: bool,
) -> StoreResult<Vec<Cluster>> {
    let rows = sqlx::query(&format!(
        "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE ($1 IS NULL OR subscription_id = $1) \
         AND ($2 OR deleted_at IS NULL) ORDER BY name, created_at"
    ))
    .bind(scope.subscription())
    .bind(include_deleted)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.iter().map(cluster_row).collect::<Result<_, _>>()?)
}

pub(super) async fn cluster_name_in_use(
    store: &SqlStore,
    subscription_id: SubscriptionId,
    resource_group: &str,
    name: &str,
) -> StoreResult<bool> {
    let in_use: bool = sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM clusters WHERE subscription_id = $1 \
            AND resource_group = $2 AND name = $3 AND deleted_at IS NULL) \
         OR EXISTS (SELECT 1 FROM tickets WHERE subscription_id = $1 \
            AND resource_group = $2 AND new_cluster_name = $3 \
            AND {TICKET_RESERVES_NAME})"
    ))
    .bind(subscription_id)
    .bind(resource_group)
    .bind(name)
    .fetch_one(&store.pool)
    .await?;
    Ok(in_use)
}

pub(super) async fn drill_settings(
    store: &SqlStore,
    cluster_id: ClusterId,
) -> StoreResult<DrillSettings> {
    let row: Option<(Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT drill_interval_hours, canary_query FROM clusters WHERE id = $1")
            .bind(cluster_id)
            .fetch_optional(&store.pool)
            .await?;
    let Some((interval_hours, canary)) = row else {
        return Ok(DrillSettings::default());
    };
    Ok(DrillSettings {
        interval_hours,
        // Kept only after it was checked; a query that no longer reads as
        // one is dropped rather than run.
        canary: canary.and_then(|c| crate::domain::drill::CanaryQuery::parse(&c).ok()),
    })
}
