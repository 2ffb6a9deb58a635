//! Database clusters of the managed service, as the desk sees them.

use super::ids::{ClusterId, SubscriptionId, TicketId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

string_enum! {
    /// Whether a cluster can be used yet. A restored cluster is `building`
    /// until its job hands it over.
    pub enum ClusterStatus ("cluster status") {
        Building = "building",
        Ready = "ready",
    }
}

/// Where a restored cluster came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RestoredFrom {
    pub ticket_id: TicketId,
    pub point_in_time: DateTime<Utc>,
}

/// Where a cluster of the fleet across hosts lives: the host it runs on,
/// its data directory there and its pgBackRest stanza in the zones. A
/// cluster of the single-machine fleet has none: the fleet folder says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetLocation {
    pub stanza: String,
    /// The fleet host's name.
    pub host: String,
    pub data_directory: String,
    /// Where its server's socket is, when not PostgreSQL's default.
    pub socket_directory: Option<String>,
    /// Its pgBackRest configuration on its host, as zones name it.
    pub backrest_config: String,
    /// Registered from outside the desk, at this moment.
    pub adopted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub id: ClusterId,
    pub subscription_id: SubscriptionId,
    pub resource_group: String,
    pub region: String,
    pub name: String,
    pub config: ClusterConfig,
    pub connection: Connection,
    pub status: ClusterStatus,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub restored_from: Option<RestoredFrom>,
    /// Set in the fleet across hosts.
    pub location: Option<FleetLocation>,
}

impl Cluster {
    pub fn life(&self) -> ClusterLife {
        ClusterLife {
            created_at: self.created_at,
            deleted_at: self.deleted_at,
        }
    }
}
