//! What a host of the fleet across hosts does beside restores, as its own
//! desk process sees to it: keeps its pgBackRest configuration and TLS
//! server up (zone and restore hosts), and on a zone host creates each
//! cluster's stanza, takes its backups on the desk's schedule, expires
//! them by the retention, and removes a deleted cluster's backups once its
//! grace is over.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::domain::catalog::RetentionPolicy;
use crate::domain::host::HostRole;

/// How often a host's role is seen to: its configuration, its server, its
/// zone's backups.
const ROUND: StdDuration = StdDuration::from_secs(5);

/// The TLS server this process runs for its host.
#[derive(Default)]
struct TlsServer {
    child: Option<tokio::process::Child>,
}

impl TlsServer {
    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl PgBackRestBackend {
    /// Whether this process runs restores: on one machine it does; across
    /// hosts only on a restore host.
    pub async fn runs_restores_here(&self) -> bool {
        match self.fleet_hosts().await {
            Ok(hosts) if hosts.is_empty() => true,
            Ok(hosts) => self.me(&hosts).is_some_and(|h| h.role == HostRole::Restore),
            // The desk's database does not answer: nothing can be claimed
            // anyway; say yes so the worker keeps trying.
            Err(_) => true,
        }
    }

    /// Runs this host's role every few seconds until `stop`, the TLS
    /// server stopped with it.
    pub fn spawn_host_role(
        self: &Arc<Self>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let fleet = self.clone();
        tokio::spawn(async move {
            let mut server = TlsServer::default();
            let backing_up = Arc::new(AtomicBool::new(false));
            loop {
                if let Err(error) = fleet.host_round(&mut server, &backing_up).await {
                    tracing::warn!(%error, "this host's part of the fleet");
                }
                tokio::select! {
                    _ = tokio::time::sleep(ROUND) => {}
                    _ = stop.cancelled() => break,
                }
            }
            if let Some(mut child) = server.child.take() {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        })
    }

    async fn host_round(
        self: &Arc<Self>,
        server: &mut TlsServer,
        backing_up: &Arc<AtomicBool>,
    ) -> Result<(), FleetError> {
        let hosts = self.fleet_hosts().await?;
        let Some(me) = self.me(&hosts).cloned() else {
            return Ok(());
        };
        if !matches!(me.role, HostRole::Zone | HostRole::Restore) {
            return Ok(());
        }
        for dir in ["lock", "log", "spool", "repo"] {
            make_dir(&self.layout.root().join(dir), &self.user, 0o750).map_err(|e| {
                FleetError::Unreachable(format!("preparing {}: {e}", self.layout.root().display()))
            })?;
        }
        let (conf, changed) = self.host_conf().await?;
        if !server.running() {
            let mut command = self.user.command("pgbackrest", self.layout.root());
            command
                .arg(format!("--config={}", conf.display()))
                .arg("server")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true);
            let child = command.spawn().map_err(|e| {
                FleetError::Unreachable(format!("starting the pgBackRest TLS server: {e}"))
            })?;
            tracing::info!(host = %me.name, port = me.tls_port, "pgBackRest TLS server started");
            server.child = Some(child);
        } else if changed && let Some(pid) = server.child.as_ref().and_then(|c| c.id()) {
            // It reads its configuration again on a hang-up.
            sys::kill(pid as i32, libc::SIGHUP);
            tracing::info!(host = %me.name, "pgBackRest TLS server told of a new configuration");
        }
        if me.role == HostRole::Restore {
            self.keep_copies(&me.name).await?;
        }
        if let (HostRole::Zone, Some(zone)) = (me.role, me.zone)
            && !backing_up.swap(true, Ordering::SeqCst)
        {
            // Backups take long: the configuration and the server are
            // seen to meanwhile.
            let fleet = self.clone();
            let flag = backing_up.clone();
            tokio::spawn(async move {
                if let Err(error) = fleet.zone_round(zone, &conf).await {
                    tracing::warn!(%zone, %error, "zone backups");
                }
                flag.store(false, Ordering::SeqCst);
            });
        }
        Ok(())
    }

    /// A restore host's copies handed over to their customers: a deleted
    /// one's server stopped (its backups stay in the zones for the grace),
    /// a live one's started again should it have stopped, as after the
    /// host restarted.
    async fn keep_copies(&self, me: &str) -> Result<(), FleetError> {
        let clusters = self.store.clusters(Scope::Everything, true).await?;
        for cluster in clusters {
            let Some(location) = &cluster.location else {
                continue;
            };
            if location.host != me
                || cluster.restored_from.is_none()
                || cluster.status != crate::domain::cluster::ClusterStatus::Ready
            {
                continue;
            }
            let Some(dir) = Path::new(&location.data_directory).parent() else {
                continue;
            };
            let home = ClusterHome(dir.to_path_buf());
            if !home.data().join("PG_VERSION").is_file() {
                continue;
            }
            let server = self.server(&home, cluster.connection.port as u16);
            let deleted = cluster.deleted_at.is_some();
            let outcome = match (deleted, server.pid().is_some()) {
                (true, true) => server.stop(true).await.map(|()| "stopped, deleted"),
                (false, false) => server.start().map(|()| "started again"),
                _ => continue,
            };
            match outcome {
                Ok(what) => tracing::info!(cluster = %cluster.name, "a handed-over copy {what}"),
                Err(error) => tracing::warn!(cluster = %cluster.name, %error, "keeping a copy"),
            }
        }
        Ok(())
    }

    /// One round of a zone host's backups: for each cluster of the fleet
    /// across hosts, its stanza created when missing, a full backup when
    /// the newest is older than the interval (while an admin has the zone
    /// online), retention applied; a deleted cluster past its grace has its
    /// backups removed from this zone.
    async fn zone_round(&self, zone: Zone, conf: &Path) -> Result<(), FleetError> {
        let now = Utc::now();
        let policy = RetentionPolicy::days(self.config.retention_days);
        let repo = format!("--repo={}", zone.index() + 1);
        let clusters = self.store.clusters(Scope::Everything, true).await?;
        for cluster in &clusters {
            let Some(location) = &cluster.location else {
                continue;
            };
            if cluster.status != crate::domain::cluster::ClusterStatus::Ready {
                continue;
            }
            let stanza = location.stanza.as_str();
            let info = {
                let mut command = self.backrest(conf, stanza);
                command.args([repo.as_str(), "--output=json", "info"]);
                match run_quiet(command, StdDuration::from_secs(60)).await {
                    Ok(done) => parse_info(&network::sanitize_json(&done.stdout), stanza)
                        .ok()
                        .and_then(|i| i.repos.into_iter().find(|r| r.zone == zone)),
                    Err(_) => None,
                }
            };
            let present = info.as_ref().is_some_and(|r| r.readable);
            if let Some(deleted) = cluster.deleted_at {
                if now > deleted + policy.deleted_grace && present {
                    self.remove_stanza(conf, stanza, &repo).await;
                    tracing::info!(cluster = %cluster.name, %zone, "a deleted cluster's backups removed after its grace");
                }
                continue;
            }
            if !present {
                // This host's configuration names its own repository only.
                let mut create = self.backrest(conf, stanza);
                create.arg("stanza-create");
                if let Err(error) = self.must_succeed(create, StdDuration::from_secs(300)).await {
                    tracing::warn!(cluster = %cluster.name, %zone, %error, "creating the stanza");
                    continue;
                }
                tracing::info!(cluster = %cluster.name, %zone, %stanza, "stanza created");
            }
            let online = self.store.online_zones(&cluster.region).await?;
            let newest = info
                .iter()
                .flat_map(|r| r.backups.iter().map(|b| b.stopped_at))
                .max();
            if online.contains(zone)
                && newest.is_none_or(|n| now - n >= self.config.backup_interval)
            {
                let mut backup = self.backrest(conf, stanza);
                backup.args([repo.as_str(), "--type=full", "backup"]);
                match self
                    .must_succeed(backup, StdDuration::from_secs(6 * 3600))
                    .await
                {
                    Ok(_) => tracing::info!(cluster = %cluster.name, %zone, "full backup taken"),
                    Err(error) => {
                        tracing::warn!(cluster = %cluster.name, %zone, %error, "backing up");
                        continue;
                    }
                }
            }
            let mut expire = self.backrest(conf, stanza);
            expire.args([repo.as_str(), "expire"]);
            if let Err(error) = self.must_succeed(expire, StdDuration::from_secs(600)).await {
                tracing::warn!(cluster = %cluster.name, %zone, %error, "expiring backups");
            }
        }
        Ok(())
    }

    /// `stop`, `stanza-delete --force`, `start`: pgBackRest removes a
    /// stanza only while it is stopped on this host.
    async fn remove_stanza(&self, conf: &Path, stanza: &str, repo: &str) {
        for args in [
            vec!["stop"],
            vec![repo, "--force", "stanza-delete"],
            vec!["start"],
        ] {
            let mut command = self.backrest(conf, stanza);
            command.args(&args);
            if let Err(error) = self
                .must_succeed(command, StdDuration::from_secs(300))
                .await
            {
                tracing::warn!(%stanza, %error, "removing a stanza");
            }
        }
    }
}
