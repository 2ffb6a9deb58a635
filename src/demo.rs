//! The fixed demo data of SPEC §8, so anyone can script against a demo:
//! two subscriptions, four users, five clusters in rg-prod/westeurope with
//! real backup histories, and zone az1 offline.

use chrono::{DateTime, Duration, DurationRound, Utc};
use uuid::Uuid;

use crate::app::App;
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
    let mut subscriptions = Vec::new();
    for (slug, name) in [("contoso", "Contoso Ltd"), ("fabrikam", "Fabrikam Inc")] {
        let subscription = Subscription {
            id: Uuid::new_v4(),
            slug: slug.into(),
            name: name.into(),
            created_at: now - Duration::days(400),
        };
        store.create_subscription(&subscription).await?;
        subscriptions.push(subscription);
    }
    let subscription_id = |slug: &str| {
        subscriptions
            .iter()
            .find(|s| s.slug == slug)
            .map(|s| s.id)
            .expect("demo subscription")
    };
    let password_hash = password::hash(password).await?;
    for (email, name, role, subscription, time_zone) in USERS {
        store
            .create_user(
                &User {
                    id: Uuid::new_v4(),
                    email: email.into(),
                    display_name: name.into(),
                    password_hash: password_hash.clone(),
                    role,
                    subscription_id: subscription.map(subscription_id),
                    time_zone: time_zone.into(),
                    disabled: false,
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
    for spec in &CLUSTERS {
        let created_at = now - Duration::days(spec.age_days);
        let deleted_at = spec.deleted_days_ago.map(|d| now - Duration::days(d));
        let (tier, vcores, storage_gib, node_count, high_availability, server_version) =
            spec.config;
        let cluster = Cluster {
            id: Uuid::new_v4(),
            subscription_id: subscription_id(spec.subscription),
            resource_group: RESOURCE_GROUP.into(),
            region: REGION.into(),
            name: spec.name.into(),
            config: ClusterConfig {
                tier: tier.into(),
                vcores,
                storage_gib,
                node_count,
                high_availability,
                server_version: server_version.into(),
            },
            connection: Connection {
                host: crate::backend::sandbox::SandboxBackend::host_for(spec.name, REGION),
                port: 5432,
                database: spec.database.into(),
                user: format!("{}_app", spec.database),
            },
            status: ClusterStatus::Ready,
            created_at,
            deleted_at,
            restored_from: None,
        };
        store.insert_cluster(&cluster).await?;
        seed_backups(app, &cluster, spec, now).await?;
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
            app.store
                .sandbox_add_snapshot(&SandboxSnapshot {
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
    app.store
        .sandbox_add_log_span(&SandboxLogSpan {
            cluster_id: cluster.id,
            started_at: cluster.created_at,
            ended_at: cluster.deleted_at,
            zones: ZoneSet::ALL,
        })
        .await
}
