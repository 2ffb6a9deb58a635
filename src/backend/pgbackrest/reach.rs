//! How this process reaches a cluster's backups: the single-machine
//! fleet's own folders, or the zones of the fleet across hosts over TLS
//! with this host's configuration. Every read of a repository goes through
//! a `Reach`.

use std::time::Instant;

use super::network::{self, HostConf, RemotePg, StanzaSection, TlsFiles};
use super::*;
use crate::domain::host::{FleetHost, HostRole};

/// How long the fleet description read from the desk's database is
/// trusted before it is read again.
const HOSTS_FRESH_FOR: StdDuration = StdDuration::from_secs(5);

/// The configuration and stanza of one cluster's backups, as this process
/// reaches them.
#[derive(Debug, Clone)]
pub(super) struct Reach {
    pub conf: PathBuf,
    pub stanza: String,
    /// In the fleet across hosts: each zone is read on its own, with short
    /// timeouts, so a dead zone costs seconds.
    pub networked: bool,
}

impl Reach {
    /// `--repo=N` and, across hosts, the timeouts of a transfer.
    pub fn transfer_args(&self, zone: Zone) -> Vec<String> {
        let mut args = vec![format!("--repo={}", zone.index() + 1)];
        if self.networked {
            args.extend(network::TRANSFER_TIMEOUTS.map(String::from));
        }
        args
    }
}

/// What the last `host_conf` wrote, to write only on a change.
#[derive(Default)]
pub(super) struct HostConfState {
    pub hosts: Option<(Instant, Arc<Vec<FleetHost>>)>,
    pub written: Option<String>,
}

impl PgBackRestBackend {
    /// The fleet description, briefly cached.
    pub(super) async fn fleet_hosts(&self) -> Result<Arc<Vec<FleetHost>>, FleetError> {
        if let Some((at, hosts)) = &self.host_state.lock().expect("host state").hosts
            && at.elapsed() < HOSTS_FRESH_FOR
        {
            return Ok(hosts.clone());
        }
        let hosts = Arc::new(self.store.fleet_hosts().await?);
        self.host_state.lock().expect("host state").hosts = Some((Instant::now(), hosts.clone()));
        Ok(hosts)
    }

    /// This process's host in the fleet description, if it is one.
    pub(super) fn me<'a>(&self, hosts: &'a [FleetHost]) -> Option<&'a FleetHost> {
        hosts.iter().find(|h| h.name == self.config.host)
    }

    pub(super) fn tls(&self) -> TlsFiles {
        TlsFiles {
            dir: self
                .config
                .tls_dir
                .clone()
                .unwrap_or_else(|| self.layout.root().join("tls")),
        }
    }

    pub(super) fn host_conf_path(&self) -> PathBuf {
        self.layout.root().join("host").join("pgbackrest.conf")
    }

    /// The stanzas this host serves: on a zone host every cluster of the
    /// fleet across hosts still in its window (over TLS to its host), on a
    /// restore host the clusters running here.
    async fn sections(
        &self,
        hosts: &[FleetHost],
        me: Option<&FleetHost>,
    ) -> Result<Vec<StanzaSection>, FleetError> {
        let Some(me) = me.filter(|h| matches!(h.role, HostRole::Zone | HostRole::Restore)) else {
            return Ok(Vec::new());
        };
        let clusters = self.store.clusters(Scope::Everything, true).await?;
        let mut sections = Vec::new();
        for cluster in &clusters {
            let Some(location) = &cluster.location else {
                continue;
            };
            let section = StanzaSection {
                stanza: location.stanza.clone(),
                pg_path: location.data_directory.clone(),
                pg_port: cluster.connection.port,
                socket: location.socket_directory.clone(),
                remote: None,
            };
            match me.role {
                HostRole::Restore if location.host == me.name => sections.push(section),
                HostRole::Zone => {
                    let Some(host) = hosts.iter().find(|h| h.name == location.host) else {
                        continue;
                    };
                    sections.push(StanzaSection {
                        remote: Some(RemotePg {
                            address: host.address.clone(),
                            tls_port: host.tls_port,
                            config: location.backrest_config.clone(),
                        }),
                        ..section
                    });
                }
                _ => {}
            }
        }
        sections.sort_by(|a, b| a.stanza.cmp(&b.stanza));
        Ok(sections)
    }

    /// Writes this host's pgBackRest configuration when it changed, and
    /// returns its path and whether it changed. Holds a zone's passphrase:
    /// mode 600, the fleet user's.
    pub(super) async fn host_conf(&self) -> Result<(PathBuf, bool), FleetError> {
        let hosts = self.fleet_hosts().await?;
        let me = self.me(&hosts);
        let tls = self.tls();
        let serves = me.is_some_and(|h| matches!(h.role, HostRole::Zone | HostRole::Restore));
        if let Some(missing) = tls.missing(serves) {
            return Err(FleetError::Unreachable(missing));
        }
        let sections = self.sections(&hosts, me).await?;
        let zone_pass = me
            .filter(|h| h.role == HostRole::Zone)
            .and_then(|h| h.zone)
            .map(|zone| layout::zone_pass(&self.cipher_base, zone));
        let text = network::render(&HostConf {
            root: self.layout.root(),
            hosts: &hosts,
            me,
            tls: &tls,
            zone_pass,
            retention_days: self.config.retention_days,
            sections: &sections,
        });
        let path = self.host_conf_path();
        let changed = {
            let state = self.host_state.lock().expect("host state");
            state.written.as_deref() != Some(text.as_str()) || !path.is_file()
        };
        if changed {
            let io = |e: std::io::Error| {
                FleetError::Unreachable(format!("writing {}: {e}", path.display()))
            };
            make_dir(&self.layout.root().join("host"), &self.user, 0o750).map_err(io)?;
            write_file(&path, &text, &self.user, 0o600).map_err(io)?;
            self.host_state.lock().expect("host state").written = Some(text);
        }
        Ok((path, changed))
    }

    /// How this process reaches `cluster`'s backups; `None` for a cluster
    /// the fleet holds no backups of.
    pub(super) async fn reach(&self, cluster: &Cluster) -> Result<Option<Reach>, FleetError> {
        match &cluster.location {
            Some(location) => {
                let (conf, _) = self.host_conf().await?;
                Ok(Some(Reach {
                    conf,
                    stanza: location.stanza.clone(),
                    networked: true,
                }))
            }
            None if self.is_source(cluster.id) => Ok(Some(Reach {
                conf: self.layout.cluster(cluster.id).backrest_conf(),
                stanza: layout::stanza(cluster.id),
                networked: false,
            })),
            None => Ok(None),
        }
    }

    /// Like `reach`, failing for a cluster the fleet has no backups of.
    pub(super) async fn reach_or_fail(&self, cluster: &Cluster) -> Result<Reach, FleetError> {
        self.reach(cluster).await?.ok_or_else(|| {
            FleetError::Unreachable(format!(
                "{} has no repositories in this fleet",
                cluster.name
            ))
        })
    }

    /// `pgbackrest info` of one stanza: all repositories at once on one
    /// machine; across hosts each zone on its own, at once, each bounded,
    /// so a dead zone is reported unreadable within seconds.
    pub(super) async fn read_info(&self, reach: &Reach) -> Result<StanzaInfo, FleetError> {
        if !reach.networked {
            let mut command = self.backrest(&reach.conf, &reach.stanza);
            command.args(["--output=json", "info"]);
            let done = self
                .must_succeed(command, StdDuration::from_secs(60))
                .await
                .map_err(fleet_error("reading the backup catalog"))?;
            return parse_info(&done.stdout, &reach.stanza).map_err(FleetError::Unreachable);
        }
        let hosts = self.fleet_hosts().await?;
        let reads = Zone::ALL.map(|zone| {
            let host = hosts.iter().find(|h| h.zone == Some(zone));
            async move {
                let Some(host) = host else {
                    return unreadable(zone, format!("zone {zone} has no host in the fleet"));
                };
                // A host that does not even take a connection is skipped
                // at once: pgBackRest would try it four times.
                if !crate::fleet::answers(host).await {
                    return unreadable(
                        zone,
                        format!(
                            "zone {zone}'s host {} did not answer within {} s",
                            host.name,
                            crate::domain::host::ZONE_ANSWER_SECONDS
                        ),
                    );
                }
                let mut command = self.backrest(&reach.conf, &reach.stanza);
                command
                    .arg(format!("--repo={}", zone.index() + 1))
                    .args(network::INFO_TIMEOUTS)
                    .args(["--output=json", "info"]);
                // pgBackRest gives up on a dead zone after about four
                // connection attempts; this bounds whatever else may hang.
                match run_quiet(command, StdDuration::from_secs(8)).await {
                    Ok(done) if done.success() => {
                        match parse_info(&network::sanitize_json(&done.stdout), &reach.stanza) {
                            Ok(info) => info
                                .repos
                                .into_iter()
                                .find(|r| r.zone == zone)
                                .unwrap_or_else(|| {
                                    unreadable(zone, format!("zone {zone} did not answer"))
                                }),
                            Err(error) => unreadable(zone, error),
                        }
                    }
                    Ok(done) => unreadable(zone, done.reason()),
                    Err(error) => unreadable(zone, error.to_string()),
                }
            }
        });
        let repos = futures::future::join_all(reads).await;
        Ok(StanzaInfo { repos })
    }
}

fn unreadable(zone: Zone, status: String) -> info::Repo {
    info::Repo {
        zone,
        readable: false,
        status,
        backups: Vec::new(),
        wal: None,
    }
}

/// Marks what the desk appends to a copy's `postgresql.conf` across hosts.
const COPY_MARKER: &str = "# --- restore-desk: this copy's own settings ---";

/// Marks the line the desk puts first in a copy's `pg_hba.conf`.
const HBA_MARKER: &str = "# restore-desk: its checks of this copy, from this host";

impl PgBackRestBackend {
    /// Where the desk remembers what each zone last held of a cluster.
    pub(super) fn last_seen_path(&self, cluster: &Cluster) -> PathBuf {
        match &cluster.location {
            Some(location) => self
                .layout
                .root()
                .join("seen")
                .join(format!("{}.json", location.stanza)),
            None => self.layout.cluster(cluster.id).dir().join("last-seen.json"),
        }
    }

    /// Where a run's new cluster answers: this host, by the name others
    /// reach it by across hosts.
    pub(super) async fn connection_for(&self, job: &JobContext, port: u16) -> Connection {
        let mut connection = Self::connection(job, port);
        if job.source.location.is_some()
            && let Ok(hosts) = self.fleet_hosts().await
            && let Some(me) = self.me(&hosts)
        {
            connection.host = me.address.clone();
        }
        connection
    }

    /// A copy of a cluster of another host carries that host's settings:
    /// it gets this host's port and socket, listens on every address,
    /// takes the shape the desk recorded for the source, archives nothing
    /// yet, and lets the desk's checks in from this host.
    pub(super) fn adapt_copy(
        &self,
        home: &ClusterHome,
        job: &JobContext,
        port: u16,
    ) -> Result<(), StepError> {
        let conf_path = home.data().join("postgresql.conf");
        let conf =
            std::fs::read_to_string(&conf_path).map_err(io_step("reading the copy's settings"))?;
        if !conf.contains(COPY_MARKER) {
            let text = format!("{conf}\n{COPY_MARKER}\ninclude = 'fleet.conf'\n");
            write_file(&conf_path, &text, &self.user, 0o600)
                .map_err(io_step("writing the copy's settings"))?;
        }
        let shape = &job.source.config;
        let fleet = format!(
            "# Written by restore-desk for this copy only.\n\
             port = {port}\n\
             listen_addresses = '*'\n\
             unix_socket_directories = {}\n\
             archive_mode = off\n\
             archive_command = ''\n\
             restore_desk.tier = {}\n\
             restore_desk.vcores = {}\n\
             restore_desk.storage_gib = {}\n\
             restore_desk.node_count = {}\n\
             restore_desk.high_availability = {}\n",
            layout::pg_quote(&home.socket_dir().display().to_string()),
            layout::pg_quote(&shape.tier),
            layout::pg_quote(&shape.vcores.to_string()),
            layout::pg_quote(&shape.storage_gib.to_string()),
            layout::pg_quote(&shape.node_count.to_string()),
            layout::pg_quote(&shape.high_availability.to_string()),
        );
        write_file(&home.data().join("fleet.conf"), &fleet, &self.user, 0o600)
            .map_err(io_step("writing the copy's fleet.conf"))?;
        let hba_path = home.data().join("pg_hba.conf");
        let hba = std::fs::read_to_string(&hba_path).unwrap_or_default();
        if !hba.contains(HBA_MARKER) {
            let text = format!("{HBA_MARKER}\nhost all postgres 127.0.0.1/32 trust\n{hba}");
            write_file(&hba_path, &text, &self.user, 0o600)
                .map_err(io_step("writing the copy's pg_hba.conf"))?;
        }
        Ok(())
    }

    /// Across hosts, a handed-over copy is a cluster like any other: its
    /// WAL goes to every zone under its own stanza (the zones create the
    /// stanza and take its backups). Restarts it when that changed.
    pub(super) async fn archive_into_zones(
        &self,
        home: &ClusterHome,
        job: &JobContext,
        port: u16,
        cancel: &CancellationToken,
    ) -> Result<(), StepError> {
        let Some(location) = self.location_of_run(job) else {
            return Ok(());
        };
        let (conf, _) = self
            .host_conf()
            .await
            .map_err(|e| StepError::retryable("fleet_unreachable", e.to_string()))?;
        let path = home.data().join("fleet.conf");
        let text = std::fs::read_to_string(&path).map_err(io_step("reading fleet.conf"))?;
        let command = format!(
            "pgbackrest --config={} --stanza={} archive-push %p",
            conf.display(),
            location.stanza
        );
        let wanted = format!(
            "archive_mode = on\narchive_command = {}\n",
            layout::pg_quote(&command)
        );
        let without = |text: &str| -> String {
            text.lines()
                .filter(|l| {
                    let l = l.trim_start();
                    !l.starts_with("archive_mode") && !l.starts_with("archive_command")
                })
                .map(|l| format!("{l}\n"))
                .collect()
        };
        if !text.contains(&wanted) {
            write_file(
                &path,
                &format!("{}{wanted}", without(&text)),
                &self.user,
                0o600,
            )
            .map_err(io_step("writing fleet.conf"))?;
        }
        // The restore left `archive_mode = 'off'` in postgresql.auto.conf,
        // which wins over every other file.
        let auto = home.data().join("postgresql.auto.conf");
        let auto_text = std::fs::read_to_string(&auto).unwrap_or_default();
        let cleaned = without(&auto_text);
        if cleaned != auto_text {
            write_file(&auto, &cleaned, &self.user, 0o600)
                .map_err(io_step("writing postgresql.auto.conf"))?;
        }
        let server = self.server(home, port);
        let archiving = async |server: &server::Server<'_>| -> bool {
            let Ok(mut conn) = server.connect().await else {
                return false;
            };
            let mode: Result<String, _> =
                sqlx::query_scalar("SELECT current_setting('archive_mode')")
                    .fetch_one(&mut conn)
                    .await;
            let _ = conn.close().await;
            mode.is_ok_and(|m| m == "on")
        };
        if archiving(&server).await {
            return Ok(());
        }
        server
            .stop(true)
            .await
            .map_err(|e| server_step("restarting the new cluster to archive", e))?;
        server
            .start()
            .map_err(|e| server_step("restarting the new cluster to archive", e))?;
        server
            .wait_for(StdDuration::from_secs(60), cancel, async |conn| {
                let mode: String = sqlx::query_scalar("SELECT current_setting('archive_mode')")
                    .fetch_one(&mut *conn)
                    .await?;
                Ok((mode == "on").then_some(()))
            })
            .await
            .map_err(|e| server_step("restarting the new cluster to archive", e))?;
        Ok(())
    }

    /// Where a run's new cluster lives across hosts; `None` on one machine.
    pub(super) fn location_of_run(&self, job: &JobContext) -> Option<FleetLocation> {
        job.source.location.as_ref()?;
        let home = self.layout.restore(job.job_id, job.run);
        Some(FleetLocation {
            stanza: layout::stanza(job.new_cluster_id),
            host: self.config.host.clone(),
            data_directory: home.data().display().to_string(),
            socket_directory: Some(home.socket_dir().display().to_string()),
            backrest_config: self.host_conf_path().display().to_string(),
            adopted_at: None,
        })
    }
}

impl PgBackRestBackend {
    /// The zones' word on a cluster about to be registered: each of `zones`
    /// must know its stanza and read its backups.
    pub(super) async fn check_adoption(
        &self,
        location: &FleetLocation,
        zones: ZoneSet,
    ) -> Result<Option<DateTime<Utc>>, crate::backend::AdoptionRefusal> {
        use crate::backend::AdoptionRefusal;
        let (conf, _) = self
            .host_conf()
            .await
            .map_err(|e| AdoptionRefusal::Unreadable(e.to_string()))?;
        let reach = Reach {
            conf,
            stanza: location.stanza.clone(),
            networked: true,
        };
        let info = self
            .read_info(&reach)
            .await
            .map_err(|e| AdoptionRefusal::Unreadable(e.to_string()))?;
        let mut unknown = Vec::new();
        let mut unreadable = Vec::new();
        for zone in zones.iter() {
            match info.repo(zone) {
                Some(repo) if repo.readable => {}
                Some(repo) if repo.status.contains("missing stanza") => unknown.push(zone),
                Some(repo) => unreadable.push(format!("{zone}: {}", repo.status)),
                None => unreadable.push(format!("{zone}: no answer")),
            }
        }
        if !unknown.is_empty() {
            let names: Vec<String> = unknown.iter().map(|z| z.to_string()).collect();
            return Err(AdoptionRefusal::UnknownStanza(format!(
                "The stanza {} is unknown to {}: create it there (pgbackrest stanza-create on \
                 the cluster's host) and register again",
                location.stanza,
                names.join(", ")
            )));
        }
        if !unreadable.is_empty() {
            return Err(AdoptionRefusal::Unreadable(format!(
                "The backups of stanza {} cannot be read ({}): nothing was registered",
                location.stanza,
                unreadable.join("; ")
            )));
        }
        Ok(info
            .repos
            .iter()
            .flat_map(|r| r.backups.iter().map(|b| b.started_at))
            .min())
    }
}
