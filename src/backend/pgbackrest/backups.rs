//! Automatic backups and retention expiry.

use super::*;

impl PgBackRestBackend {
    /// A full backup into each readable zone an admin has online whose
    /// newest backup is older than the interval (none for a deleted
    /// cluster), then `expire` by the time-based retention.
    pub(super) async fn backup_cluster(
        &self,
        cluster: &Cluster,
        now: DateTime<Utc>,
        round: &mut BackupRound,
    ) -> Result<(), FleetError> {
        let before = self.info(cluster).await?;
        if cluster.deleted_at.is_none() {
            let online = self
                .store
                .online_zones(&cluster.region)
                .await
                .map_err(|e| FleetError::Unreachable(e.to_string()))?;
            for repo in before
                .repos
                .iter()
                .filter(|r| r.readable && online.contains(r.zone))
            {
                let newest = repo.backups.iter().map(|b| b.stopped_at).max();
                if newest.is_none_or(|n| now - n >= self.config.backup_interval) {
                    self.backup(cluster.id, repo.zone).await?;
                    round.snapshots_taken += 1;
                }
            }
        }
        let home = self.layout.cluster(cluster.id);
        let mut expire = self.backrest(&home.backrest_conf(), &layout::stanza(cluster.id));
        expire.arg("expire");
        self.must_succeed(expire, StdDuration::from_secs(600))
            .await
            .map_err(fleet_error("expiring backups"))?;
        let after = self.info(cluster).await?;
        let labels = |i: &StanzaInfo| -> Vec<String> {
            i.repos
                .iter()
                .flat_map(|r| r.backups.iter().map(|b| b.label.clone()))
                .collect()
        };
        let kept = labels(&after);
        round.snapshots_expired += labels(&before).iter().filter(|l| !kept.contains(l)).count();
        Ok(())
    }
}
