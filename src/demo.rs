//! The fixed demo data of SPEC §8, so anyone can script against a demo:
//! two subscriptions, four users, five clusters in rg-prod/westeurope with
//! real backup histories, and zone az1 offline.

use crate::domain::ids::{ClusterId, SubscriptionId, UserId};
use chrono::{DateTime, Duration, DurationRound, Utc};

use crate::app::App;
use crate::backend::FleetError;
use crate::backend::pgbackrest::{self, PgBackRestBackend};
use crate::domain::actor::Role;
use crate::domain::catalog::{Zone, ZoneSet};
use crate::domain::cluster::{Cluster, ClusterConfig, ClusterStatus, Connection};
use crate::password;
use crate::store::{SandboxLogSpan, SandboxSnapshot, StoreError, Subscription, User};

pub const REGION: &str = "westeurope";
pub const RESOURCE_GROUP: &str = "rg-prod";

/// The demo users: (email, display name, role, subscription slug, time zone).
pub const USERS: [(&str, &str, Role, Option<&str>, &str); 4] = [
    (
        "alice@contoso.example",
        "Alice Martin",
        Role::Customer,
        Some("contoso"),
        "Europe/Amsterdam",
    ),
    (
        "bob@fabrikam.example",
        "Bob Chen",
        Role::Customer,
        Some("fabrikam"),
        "America/New_York",
    ),
    (
        "sam@support.example",
        "Sam Okafor",
        Role::Staff,
        None,
        "Europe/London",
    ),
    ("ada@admin.example", "Ada Novak", Role::Admin, None, "UTC"),
];

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Password(#[from] password::PasswordError),
    #[error("{0}")]
    Fleet(#[from] FleetError),
}

struct DemoCluster {
    name: &'static str,
    subscription: &'static str,
    age_days: i64,
    deleted_days_ago: Option<i64>,
    /// Snapshots older than this many days were copied to az1 only.
    az1_only_after_days: Option<i64>,
    config: (&'static str, i64, i64, i64, bool, &'static str),
    database: &'static str,
}

const CLUSTERS: [DemoCluster; 5] = [
    DemoCluster {
        name: "orders-prod",
        subscription: "contoso",
        age_days: 60,
        deleted_days_ago: None,
        az1_only_after_days: None,
        config: ("GeneralPurpose", 8, 512, 2, true, "15"),
        database: "orders",
    },
    DemoCluster {
        name: "analytics",
        subscription: "contoso",
        age_days: 10,
        deleted_days_ago: None,
        az1_only_after_days: None,
        config: ("MemoryOptimized", 16, 1024, 1, false, "15"),
        database: "analytics",
    },
    DemoCluster {
        name: "legacy-crm",
        subscription: "contoso",
        age_days: 60,
        deleted_days_ago: None,
        az1_only_after_days: Some(20),
        config: ("Burstable", 2, 64, 1, false, "14"),
        database: "crm",
    },
    DemoCluster {
        name: "old-billing",
        subscription: "contoso",
        age_days: 90,
        deleted_days_ago: Some(3),
        az1_only_after_days: None,
        config: ("GeneralPurpose", 4, 256, 1, false, "15"),
        database: "billing",
    },
    DemoCluster {
        name: "inventory",
        subscription: "fabrikam",
        age_days: 45,
        deleted_days_ago: None,
        az1_only_after_days: None,
        config: ("GeneralPurpose", 4, 128, 2, true, "15"),
        database: "inventory",
    },
];

/// Seeds an empty database. Returns false, touching nothing, when it holds data.
pub async fn seed(app: &App, password: &str) -> Result<bool, DemoError> {
    let store = &app.store;
    if !store.is_empty().await? {
        return Ok(false);
    }
    let now = app.now();
    let subscriptions = subscriptions(now);
    seed_people(app, &subscriptions, password).await?;
    for spec in &CLUSTERS {
        let created_at = now - Duration::days(spec.age_days);
        let deleted_at = spec.deleted_days_ago.map(|d| now - Duration::days(d));
        let cluster = Cluster {
            created_at,
            deleted_at,
            ..spec.record(&subscriptions)
        };
        store.insert_cluster(&cluster).await?;
        seed_backups(app, &cluster, spec, now).await?;
        seed_log(app, &cluster, now).await?;
    }
    Ok(true)
}

/// How long before the demo starts someone dropped orders-prod's orders
/// table: the incident the demo's customer files about.
pub const ORDERS_DROPPED_BEFORE: Duration = Duration::hours(1);

/// The names the desk saw of each cluster's relations a day ago, and on
/// orders-prod a `DROP TABLE orders` an hour before now.
async fn seed_log(app: &App, cluster: &Cluster, now: DateTime<Utc>) -> Result<(), StoreError> {
    use crate::backend::sandbox_log;
    use crate::domain::transactions::{Ddl, DdlKind, LoggedTransaction};
    app.store
        .remember_relations(
            cluster.id,
            &sandbox_log::relations(&cluster.name),
            now - Duration::days(1),
        )
        .await?;
    if cluster.name != "orders-prod" {
        return Ok(());
    }
    let tick = sandbox_log::tick_at_or_before(now - ORDERS_DROPPED_BEFORE);
    let committed_at = DateTime::from_timestamp(tick * sandbox_log::COMMIT_INTERVAL_SECS, 0)
        .unwrap_or(now - ORDERS_DROPPED_BEFORE);
    let drop = LoggedTransaction {
        xid: sandbox_log::xid_at(tick),
        committed_at,
        rows: Default::default(),
        ddl: sandbox_log::table_files(&cluster.name, "orders")
            .into_iter()
            .map(|file| Ddl {
                kind: DdlKind::Drop,
                relation: Some(file),
            })
            .collect(),
    };
    app.sandbox.add_transaction(cluster.id, &drop).await
}

fn subscriptions(now: DateTime<Utc>) -> Vec<Subscription> {
    [("contoso", "Contoso Ltd"), ("fabrikam", "Fabrikam Inc")]
        .into_iter()
        .map(|(slug, name)| Subscription {
            id: SubscriptionId::new(),
            slug: slug.into(),
            name: name.into(),
            created_at: now - Duration::days(400),
        })
        .collect()
}

/// Stores the subscriptions, the users and the region's zones (az1 offline).
async fn seed_people(
    app: &App,
    subscriptions: &[Subscription],
    password: &str,
) -> Result<(), DemoError> {
    let store = &app.store;
    let now = app.now();
    for subscription in subscriptions {
        store.create_subscription(subscription).await?;
    }
    let password_hash = password::hash(password).await?;
    for (email, name, role, subscription, time_zone) in USERS {
        store
            .create_user(
                &User {
                    id: UserId::new(),
                    email: crate::domain::email::Email::parse(email).expect("a demo address"),
                    display_name: name.into(),
                    password_hash: password_hash.clone(),
                    role,
                    subscription_id: subscription.map(|slug| subscription_id(subscriptions, slug)),
                    time_zone: time_zone.into(),
                    disabled: false,
                    session_epoch: 0,
                    must_change_password: false,
                    created_at: now - Duration::days(300),
                },
                None,
            )
            .await?;
    }
    for zone in Zone::ALL {
        store
            .ensure_zone(REGION, zone, zone != Zone::Az1, now)
            .await?;
    }
    Ok(())
}

fn subscription_id(subscriptions: &[Subscription], slug: &str) -> SubscriptionId {
    subscriptions
        .iter()
        .find(|s| s.slug == slug)
        .map(|s| s.id)
        .expect("demo subscription")
}

impl DemoCluster {
    /// The desk's record of this demo cluster, as the sandbox shows it.
    fn record(&self, subscriptions: &[Subscription]) -> Cluster {
        let (tier, vcores, storage_gib, node_count, high_availability, server_version) =
            self.config;
        Cluster {
            id: ClusterId::new(),
            subscription_id: subscription_id(subscriptions, self.subscription),
            resource_group: RESOURCE_GROUP.into(),
            region: REGION.into(),
            name: self.name.into(),
            config: ClusterConfig {
                tier: tier.into(),
                vcores,
                storage_gib,
                node_count,
                high_availability,
                server_version: server_version.into(),
            },
            connection: Connection {
                host: crate::backend::sandbox::SandboxBackend::host_for(self.name, REGION),
                port: 5432,
                database: self.database.into(),
                user: format!("{}_app", self.database),
            },
            status: ClusterStatus::Ready,
            created_at: Utc::now(),
            deleted_at: None,
            restored_from: None,
            location: None,
        }
    }
}

/// Rows of sample data each real demo cluster gets: a few MB.
const SAMPLE_ROWS: i64 = 20_000;

/// Seeds an empty database for the real fleet: the same people, and the
/// demo clusters created for real, each with a few MB of sample data and
/// its first backups. Real backups cannot be weeks old, so every cluster
/// starts today; the SPEC's story is kept where reality allows it:
///
/// - `legacy-crm` is first backed up to `az1` only; its `az2`/`az3` backups
///   come after the sample data, so while `az1` is offline the moments
///   before them get `no_backup_in_online_zone`;
/// - `old-billing` is created, filled, then deleted: its server stops and
///   its backups stay, restorable for the grace period.
///
/// The desk's database is written only once every cluster exists, so a
/// failed creation can simply be run again.
pub async fn seed_fleet(
    app: &App,
    fleet: &PgBackRestBackend,
    password: &str,
) -> Result<bool, DemoError> {
    if !app.store.is_empty().await? {
        return Ok(false);
    }
    let subscriptions = subscriptions(app.now());
    let version = fleet.server_major_version().await?;
    let builds = CLUSTERS.iter().map(|spec| {
        let subscriptions = &subscriptions;
        let version = &version;
        async move {
            let mut cluster = spec.record(subscriptions);
            cluster.config.server_version = version.clone();
            cluster.connection = Connection {
                host: pgbackrest::HOST.into(),
                port: i64::from(fleet.allocate_source_port(cluster.id)?),
                ..cluster.connection
            };
            println!(
                "Creating {} on port {}…",
                spec.name, cluster.connection.port
            );
            let first_zones = if spec.az1_only_after_days.is_some() {
                ZoneSet::of(&[Zone::Az1])
            } else {
                ZoneSet::ALL
            };
            fleet.create_source(&cluster, first_zones).await?;
            fleet.load_sample_data(&cluster, SAMPLE_ROWS).await?;
            for zone in ZoneSet::ALL.iter().filter(|z| !first_zones.contains(*z)) {
                fleet.backup(cluster.id, zone).await?;
            }
            if spec.deleted_days_ago.is_some() {
                fleet.retire_source(&cluster).await?;
                cluster.deleted_at = Some(Utc::now());
            }
            Ok::<_, DemoError>(cluster)
        }
    });
    let clusters = futures::future::try_join_all(builds).await?;
    seed_people(app, &subscriptions, password).await?;
    for cluster in clusters {
        app.store.insert_cluster(&cluster).await?;
    }
    Ok(true)
}

/// Daily snapshots at 02:30 UTC from the cluster's first day, and archived
/// log from its creation on (to its deletion, for a deleted one).
async fn seed_backups(
    app: &App,
    cluster: &Cluster,
    spec: &DemoCluster,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let end = cluster.deleted_at.unwrap_or(now);
    let first_day = cluster
        .created_at
        .duration_trunc(Duration::days(1))
        .unwrap_or(cluster.created_at);
    let mut finished = first_day + Duration::hours(2) + Duration::minutes(30);
    while finished <= end {
        if finished > cluster.created_at {
            let age = now - finished;
            let zones = match spec.az1_only_after_days {
                Some(days) if age > Duration::days(days) => ZoneSet::of(&[Zone::Az1]),
                _ => ZoneSet::ALL,
            };
            app.sandbox
                .add_snapshot(&SandboxSnapshot {
                    id: format!("{}-{}", spec.name, finished.format("%Y%m%d-%H%M")),
                    cluster_id: cluster.id,
                    started_at: finished - Duration::minutes(25),
                    finished_at: finished,
                    zones,
                })
                .await?;
        }
        finished += Duration::days(1);
    }
    app.sandbox
        .add_log_span(&SandboxLogSpan {
            cluster_id: cluster.id,
            started_at: cluster.created_at,
            ended_at: cluster.deleted_at,
            zones: ZoneSet::ALL,
        })
        .await
}
