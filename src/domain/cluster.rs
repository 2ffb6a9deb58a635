//! Database clusters of the managed service, as the desk sees them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::catalog::ClusterLife;

/// The shape a restore copies from the source to the new cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterConfig {
    pub tier: String,
    pub vcores: i64,
    pub storage_gib: i64,
    pub node_count: i64,
    pub high_availability: bool,
    pub server_version: String,
}

/// How a customer connects. Shown only to the cluster's own subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Connection {
    pub host: String,
    pub port: i64,
    pub database: String,
    pub user: String,
}

/// Whether a cluster can be used yet. A restored cluster is `building`
/// until its job hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterStatus {
    Building,
    Ready,
}

impl ClusterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::Building => "building",
            ClusterStatus::Ready => "ready",
        }
    }
}

impl std::str::FromStr for ClusterStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "building" => Ok(ClusterStatus::Building),
            "ready" => Ok(ClusterStatus::Ready),
            other => Err(format!("unknown cluster status {other:?}")),
        }
    }
}

/// Where a restored cluster came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RestoredFrom {
    pub ticket_id: Uuid,
    pub point_in_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub resource_group: String,
    pub region: String,
    pub name: String,
    pub config: ClusterConfig,
    pub connection: Connection,
    pub status: ClusterStatus,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub restored_from: Option<RestoredFrom>,
}

impl Cluster {
    pub fn life(&self) -> ClusterLife {
        ClusterLife {
            created_at: self.created_at,
            deleted_at: self.deleted_at,
        }
    }
}
