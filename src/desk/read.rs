//! The read side: what pages and API answers show of the fleet, computed in
//! one place so every view of a cluster says the same thing.

use chrono::{DateTime, Utc};

use super::DeskError;
use crate::app::App;
use crate::backend::FleetView;
use crate::domain::catalog::{Window, restorable_window};
use crate::domain::cluster::Cluster;

/// A cluster's backups as of one moment: the catalog, the zones that can
/// serve a restore, and the restorable window they give.
pub struct ClusterBackups {
    pub view: FleetView,
    pub window: Option<Window>,
    pub now: DateTime<Utc>,
}

/// Reads a cluster's backups from the fleet and computes its window now.
pub async fn cluster_backups(app: &App, cluster: &Cluster) -> Result<ClusterBackups, DeskError> {
    let view = FleetView::read(&*app.backend, cluster).await?;
    let now = app.now();
    let window = restorable_window(&view.catalog, &cluster.life(), &app.policy(), now);
    Ok(ClusterBackups { view, window, now })
}
