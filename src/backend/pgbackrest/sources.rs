//! Source clusters: created, filled, backed up, started, stopped and kept restorable by a heartbeat.

use super::*;

impl PgBackRestBackend {
    /// The major version of the fleet's PostgreSQL, e.g. "15": what a
    /// source's record says, since every cluster runs these binaries.
    pub async fn server_major_version(&self) -> Result<String, FleetError> {
        let mut command = self
            .user
            .command(self.bin.join("postgres"), self.layout.root());
        command.arg("--version");
        let done = run_quiet(command, StdDuration::from_secs(30))
            .await
            .map_err(|e| FleetError::Unreachable(e.to_string()))?;
        // "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
        done.stdout
            .split(") ")
            .nth(1)
            .and_then(|v| v.split('.').next())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| {
                FleetError::Unreachable(format!("unexpected postgres --version: {}", done.stdout))
            })
    }

    /// Creates (or completes) the real cluster behind a desk record: initdb,
    /// archiving configuration, start, the record's database and role,
    /// stanza, check, and a first full backup in each zone of
    /// `first_backups` that has none yet. Safe to run again.
    pub async fn create_source(
        &self,
        cluster: &Cluster,
        first_backups: ZoneSet,
    ) -> Result<(), FleetError> {
        let fail =
            |e: String| FleetError::Unreachable(format!("creating cluster {}: {e}", cluster.name));
        let io = |e: std::io::Error| fail(e.to_string());
        let port = u16::try_from(cluster.connection.port)
            .ok()
            .filter(|p| self.config.ports.contains(p))
            .ok_or_else(|| {
                fail(format!(
                    "port {} is outside FLEET_PORTS",
                    cluster.connection.port
                ))
            })?;
        if !self
            .reserve_port(port, &format!("cluster {}", cluster.id))
            .map_err(io)?
        {
            return Err(fail(format!("port {port} is held by another cluster")));
        }
        let home = self.layout.cluster(cluster.id);
        make_dir(home.dir(), &self.user, 0o750).map_err(io)?;
        make_dir(&home.socket_dir(), &self.user, 0o700).map_err(io)?;
        let data = home.data();
        if !data.join("PG_VERSION").is_file() {
            if data.exists() {
                tokio::fs::remove_dir_all(&data).await.map_err(io)?;
            }
            let mut initdb = self.user.command(self.bin.join("initdb"), home.dir());
            initdb
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--auth-local=peer", "--auth-host=trust"])
                .args(["--encoding=UTF8", "--locale=C"]);
            let done = run_quiet(initdb, StdDuration::from_secs(120))
                .await
                .map_err(|e| fail(e.to_string()))?;
            if !done.success() {
                return Err(fail(format!("initdb failed: {}", done.reason())));
            }
        }
        let conf_path = data.join("postgresql.conf");
        let conf = std::fs::read_to_string(&conf_path).map_err(io)?;
        if !conf.contains(layout::CONF_MARKER) {
            let appended =
                conf + &layout::source_settings(&cluster.config, self.config.archive_timeout_secs);
            write_file(&conf_path, &appended, &self.user, 0o600).map_err(io)?;
        }
        let stanza = layout::stanza(cluster.id);
        write_file(
            &home.backrest_conf(),
            &layout::backrest_conf(
                &self.layout,
                &self.cipher_base,
                self.config.retention_days,
                &stanza,
                &home,
                port,
            ),
            &self.user,
            0o600,
        )
        .map_err(io)?;
        write_file(
            &data.join("fleet.conf"),
            &layout::fleet_conf(&home, port, Some((&home.backrest_conf(), &stanza))),
            &self.user,
            0o600,
        )
        .map_err(io)?;

        let server = self.server(&home, port);
        server.start().map_err(|e| fail(e.to_string()))?;
        server
            .wait_for(
                StdDuration::from_secs(60),
                &CancellationToken::new(),
                async |_| Ok(Some(())),
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        self.create_role_and_database(&server, &cluster.connection)
            .await
            .map_err(fail)?;

        for args in [vec!["stanza-create"], vec!["check"]] {
            let mut command = self.backrest(&home.backrest_conf(), &stanza);
            command.args(&args);
            self.must_succeed(command, StdDuration::from_secs(180))
                .await
                .map_err(fail)?;
        }
        let info = self.info(cluster).await?;
        for repo in info
            .repos
            .iter()
            .filter(|r| r.readable && r.backups.is_empty() && first_backups.contains(r.zone))
        {
            self.backup(cluster.id, repo.zone).await?;
        }
        tracing::info!(cluster = %cluster.name, port, "source cluster ready");
        Ok(())
    }

    pub(super) async fn create_role_and_database(
        &self,
        server: &Server<'_>,
        connection: &Connection,
    ) -> Result<(), String> {
        let ident_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if !ident_ok(&connection.user) || !ident_ok(&connection.database) {
            return Err(format!(
                "database {:?} and user {:?} must be lowercase letters, digits and _",
                connection.database, connection.user
            ));
        }
        let mut conn = server.connect().await?;
        let sql = |e: sqlx::Error| e.to_string();
        let role: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_roles WHERE rolname = $1")
            .bind(&connection.user)
            .fetch_optional(&mut conn)
            .await
            .map_err(sql)?;
        if role.is_none() && connection.user != "postgres" {
            sqlx::query(&format!("CREATE ROLE \"{}\" LOGIN", connection.user))
                .execute(&mut conn)
                .await
                .map_err(sql)?;
        }
        let db: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(&connection.database)
            .fetch_optional(&mut conn)
            .await
            .map_err(sql)?;
        if db.is_none() {
            sqlx::query(&format!(
                "CREATE DATABASE \"{}\" OWNER \"{}\"",
                connection.database, connection.user
            ))
            .execute(&mut conn)
            .await
            .map_err(sql)?;
        }
        let _ = conn.close().await;
        Ok(())
    }

    pub(super) async fn must_succeed(
        &self,
        command: tokio::process::Command,
        timeout: StdDuration,
    ) -> Result<Finished, String> {
        let program = format!("{:?}", command.as_std().get_args().last());
        let done = run_quiet(command, timeout)
            .await
            .map_err(|e| e.to_string())?;
        if done.success() {
            Ok(done)
        } else {
            Err(format!(
                "pgbackrest {program} failed with code {:?}: {}",
                done.code(),
                done.reason()
            ))
        }
    }

    pub(super) fn source_server<'a>(
        &'a self,
        home: &'a ClusterHome,
        cluster: &Cluster,
    ) -> Server<'a> {
        self.server(home, cluster.connection.port as u16)
    }

    /// Fills a source's database with `rows` rows of sample data (about
    /// 150 bytes each) in `sample_rows`, owned by the cluster's user.
    pub async fn load_sample_data(&self, cluster: &Cluster, rows: i64) -> Result<(), FleetError> {
        let home = self.layout.cluster(cluster.id);
        let server = self.source_server(&home, cluster);
        let fail = |e: sqlx::Error| FleetError::Unreachable(format!("loading sample data: {e}"));
        let options = server
            .connect_options()
            .database(&cluster.connection.database);
        let mut conn = sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(fail)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS sample_rows (\
               id bigserial PRIMARY KEY, \
               created_at timestamptz NOT NULL DEFAULT clock_timestamp(), \
               note text NOT NULL)",
        )
        .execute(&mut conn)
        .await
        .map_err(fail)?;
        sqlx::query(&format!(
            "ALTER TABLE sample_rows OWNER TO \"{}\"",
            cluster.connection.user
        ))
        .execute(&mut conn)
        .await
        .map_err(fail)?;
        sqlx::query(
            "INSERT INTO sample_rows (note) \
             SELECT repeat(md5(g::text), 4) FROM generate_series(1, $1) AS g",
        )
        .bind(rows)
        .execute(&mut conn)
        .await
        .map_err(fail)?;
        let _ = conn.close().await;
        Ok(())
    }

    /// Deletes a source the way the service does: its last WAL archived,
    /// its server stopped, its data and backups kept (restorable for the
    /// grace period after deletion).
    pub async fn retire_source(&self, cluster: &Cluster) -> Result<(), FleetError> {
        let home = self.layout.cluster(cluster.id);
        let server = self.source_server(&home, cluster);
        if server.pid().is_some() {
            self.heartbeat_one(&server)
                .await
                .map_err(FleetError::Unreachable)?;
            let mut conn = server.connect().await.map_err(FleetError::Unreachable)?;
            let fail =
                |e: sqlx::Error| FleetError::Unreachable(format!("archiving the last WAL: {e}"));
            let last: String = sqlx::query_scalar("SELECT pg_walfile_name(pg_switch_wal())")
                .fetch_one(&mut conn)
                .await
                .map_err(fail)?;
            let deadline = tokio::time::Instant::now() + StdDuration::from_secs(120);
            loop {
                let archived: Option<String> =
                    sqlx::query_scalar("SELECT last_archived_wal FROM pg_stat_archiver")
                        .fetch_one(&mut conn)
                        .await
                        .map_err(fail)?;
                if archived.is_some_and(|a| a >= last) {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(FleetError::Unreachable(format!(
                        "{last} was not archived within 120 s"
                    )));
                }
                tokio::time::sleep(StdDuration::from_millis(250)).await;
            }
            let _ = conn.close().await;
        }
        server
            .stop(true)
            .await
            .map_err(|e| FleetError::Unreachable(e.to_string()))
    }

    /// A full backup of a source cluster into one zone's repository.
    pub async fn backup(&self, cluster_id: ClusterId, zone: Zone) -> Result<(), FleetError> {
        let home = self.layout.cluster(cluster_id);
        let mut command = self.backrest(&home.backrest_conf(), &layout::stanza(cluster_id));
        command.arg(format!("--repo={}", zone.index() + 1));
        command.args(["--type=full", "backup"]);
        self.must_succeed(command, StdDuration::from_secs(3600))
            .await
            .map_err(fleet_error("backing up"))?;
        tracing::info!(cluster = %cluster_id, %zone, "full backup taken");
        Ok(())
    }

    /// Starts every cluster of the fleet that should run (after a restart
    /// of the machine or of the desk) and stops deleted ones.
    pub async fn start_fleet(&self) -> Result<(), FleetError> {
        let clusters = self
            .store
            .clusters(Scope::Everything, true)
            .await
            .map_err(|e| FleetError::Unreachable(e.to_string()))?;
        for cluster in clusters {
            let home = self.layout.cluster(cluster.id);
            if !home.data().join("PG_VERSION").is_file() {
                continue;
            }
            let server = self.server(&home, cluster.connection.port as u16);
            let outcome = if cluster.deleted_at.is_some() {
                server.stop(true).await
            } else {
                server.start()
            };
            if let Err(error) = outcome {
                tracing::warn!(cluster = %cluster.name, %error, "fleet start-up");
            }
        }
        Ok(())
    }

    /// Stops a cluster's server (e.g. once the cluster is deleted). Its
    /// backups stay for the grace period.
    pub async fn stop_cluster(&self, cluster: &Cluster) -> Result<(), FleetError> {
        let home = self.layout.cluster(cluster.id);
        self.server(&home, cluster.connection.port as u16)
            .stop(true)
            .await
            .map_err(|e| FleetError::Unreachable(e.to_string()))
    }

    /// Stops every server of the fleet, sources and restored ones.
    pub async fn stop_fleet(&self) {
        for dir in [self.layout.clusters(), self.layout.restores()] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let home = ClusterHome(entry.path());
                if let Err(error) = self.server(&home, 0).stop(true).await {
                    tracing::warn!(dir = %home.dir().display(), %error, "stopping a server");
                }
            }
        }
    }

    /// Ends an aborted transaction on every live source: it changes no
    /// data, yet its end is a WAL record with a time, which lets recovery
    /// stop at any moment up to it. Without one an idle cluster could only
    /// be restored up to its last real commit.
    pub async fn heartbeat(&self) {
        let Ok(clusters) = self.store.clusters(Scope::Everything, false).await else {
            return;
        };
        for cluster in clusters.iter().filter(|c| self.is_source(c.id)) {
            let home = self.layout.cluster(cluster.id);
            let server = self.server(&home, cluster.connection.port as u16);
            if server.pid().is_none() {
                continue;
            }
            if let Err(error) = self.heartbeat_one(&server).await {
                tracing::debug!(cluster = %cluster.name, %error, "heartbeat");
            }
        }
    }

    pub(super) async fn heartbeat_one(&self, server: &Server<'_>) -> Result<(), String> {
        let mut conn = server.connect().await?;
        let mut tx = conn.begin().await.map_err(|e| e.to_string())?;
        sqlx::query("SELECT pg_current_xact_id()")
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
        tx.rollback().await.map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        Ok(())
    }

    /// Beats every half `archive_timeout` until `stop` fires.
    pub fn spawn_heartbeat(
        self: &Arc<Self>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let fleet = self.clone();
        let period = StdDuration::from_secs((self.config.archive_timeout_secs / 2).max(1));
        tokio::spawn(async move {
            loop {
                fleet.heartbeat().await;
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = stop.cancelled() => return,
                }
            }
        })
    }
}
