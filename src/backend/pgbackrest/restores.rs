//! A restore's directory: its recorded state, its connection, removing it, and the zone its log is replayed from.

use super::*;

impl PgBackRestBackend {
    pub(super) fn restore_owner(job: &JobContext) -> String {
        format!("restore {}-{}", job.job_id, job.run)
    }

    pub(super) fn read_state(home: &ClusterHome) -> Option<RestoreState> {
        let text = std::fs::read_to_string(home.state()).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub(super) fn write_state(
        &self,
        home: &ClusterHome,
        state: &RestoreState,
    ) -> Result<(), StepError> {
        let text = serde_json::to_string_pretty(state).expect("state serialises");
        write_file(&home.state(), &text, &self.user, 0o640)
            .map_err(io_step("recording the restore's state"))
    }

    pub(super) fn connection(job: &JobContext, port: u16) -> Connection {
        Connection {
            host: HOST.into(),
            port: i64::from(port),
            database: job.source.connection.database.clone(),
            user: job.source.connection.user.clone(),
        }
    }

    /// The run's state, or a fatal error when an earlier step never ran.
    pub(super) fn provisioned(
        &self,
        job: &JobContext,
    ) -> Result<(ClusterHome, RestoreState), StepError> {
        let home = self.layout.restore(job.job_id, job.run);
        let state = Self::read_state(&home).ok_or_else(|| {
            StepError::fatal(
                "not_provisioned",
                format!(
                    "the new cluster of run {} was never provisioned (no {})",
                    job.run,
                    home.state().display()
                ),
            )
        })?;
        Ok((home, state))
    }

    /// Removes everything one restore directory holds: a leftover restore
    /// process, its server, the registration of a finished cluster, the
    /// files, the port. Only paths under `restores/` are touched.
    pub(super) async fn remove_restore(
        &self,
        home: &ClusterHome,
        owner: &str,
        new_cluster_id: Option<ClusterId>,
    ) {
        stop_leftover(&home.restore_pid(), "pgbackrest").await;
        if let Err(error) = self.server(home, 0).stop(false).await {
            tracing::warn!(dir = %home.dir().display(), %error, "stopping a restored server");
        }
        if let Some(id) = new_cluster_id {
            let link = self.layout.cluster(id);
            if std::fs::read_link(link.dir()).is_ok_and(|target| target == home.dir()) {
                let _ = std::fs::remove_file(link.dir());
            }
        }
        if home.dir().exists()
            && let Err(error) = tokio::fs::remove_dir_all(home.dir()).await
        {
            tracing::warn!(dir = %home.dir().display(), %error, "removing a restore");
        }
        self.release_ports(owner);
    }

    /// Points the restored server's `restore_command` at a readable zone,
    /// preferring the planned one: the WAL is the same in every zone, so
    /// replay goes on from another when the planned zone went away.
    pub(super) async fn choose_wal_zone(
        &self,
        job: &JobContext,
        data: &Path,
    ) -> Result<Zone, StepError> {
        let planned = job.plan.as_ref().map(|p| p.zone);
        let readable = match self.info(job.source.id).await {
            Ok(info) => info.readable_zones(),
            Err(error) => {
                return Err(StepError::retryable(
                    "zone_unavailable",
                    format!("the source's repositories cannot be read: {error}"),
                ));
            }
        };
        let zone = planned
            .filter(|z| readable.contains(*z))
            .or_else(|| readable.iter().next())
            .ok_or_else(|| {
                StepError::retryable(
                    "zone_unavailable",
                    "no zone's repository can be read: the archived log is out of reach",
                )
            })?;
        let auto = data.join("postgresql.auto.conf");
        let text = std::fs::read_to_string(&auto)
            .map_err(io_step("reading the restored configuration"))?;
        let wanted = format!("--repo={}", zone.index() + 1);
        let rewritten: String = text
            .lines()
            .map(|line| {
                if line.trim_start().starts_with("restore_command") {
                    let mut out = line.to_string();
                    for n in 1..=3 {
                        out = out.replace(&format!("--repo={n}"), &wanted);
                    }
                    out
                } else {
                    line.to_string()
                }
            })
            .map(|line| line + "\n")
            .collect();
        if rewritten != text {
            if Some(zone) != planned {
                tracing::warn!(job = %job.job_id, %zone, "replaying the log from another zone");
            }
            write_file(&auto, &rewritten, &self.user, 0o600)
                .map_err(io_step("writing the restored configuration"))?;
        }
        Ok(zone)
    }
}
