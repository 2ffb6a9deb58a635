//! A restore's directory: its recorded state, its connection, removing it, and the zone its log is replayed from.

use super::*;

/// The recovery target a job's copy stops at, as `postgresql.auto.conf`
/// settings: a transaction (just before it: not inclusive) or a moment.
pub(super) fn recovery_settings(job: &JobContext) -> Vec<(&'static str, String)> {
    match job.transaction {
        Some(transaction) => vec![
            ("recovery_target_xid", transaction.xid.to_string()),
            (
                "recovery_target_inclusive",
                (transaction.position != crate::domain::transactions::TxPosition::Before)
                    .to_string(),
            ),
        ],
        None => vec![("recovery_target_time", target_text(job.target))],
    }
}

/// The target in words a paused copy remembers it stopped at.
pub(super) fn recovery_target_of(job: &JobContext) -> String {
    recovery_settings(job)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a drill's canary on the copy: read-only, bounded, one true value.
/// A query that errors fails the check with the database's own message.
pub(super) async fn canary_check(
    server: &Server<'_>,
    database: &str,
    canary: &crate::domain::drill::CanaryQuery,
) -> crate::domain::verification::Check {
    let options = server.connect_options().database(database);
    let outcome = match tokio::time::timeout(
        StdDuration::from_secs(10),
        sqlx::PgConnection::connect_with(&options),
    )
    .await
    {
        Err(_) => Err("connecting timed out".to_string()),
        Ok(Err(error)) => Err(error.to_string()),
        Ok(Ok(mut conn)) => {
            let answer = run_canary(&mut conn, canary.as_str()).await;
            let _ = conn.close().await;
            answer
        }
    };
    let (passed, detail) = match outcome {
        Ok(Some(true)) => (true, format!("{} is true", canary.as_str())),
        Ok(Some(false)) => (false, format!("{} is false", canary.as_str())),
        Ok(None) => (false, format!("{} is NULL", canary.as_str())),
        Err(message) => (false, format!("{} failed: {message}", canary.as_str())),
    };
    crate::domain::verification::Check {
        name: "canary".into(),
        passed,
        detail,
    }
}

/// The canary's one value, inside a read-only transaction with a time
/// limit, rolled back whatever happens.
async fn run_canary(conn: &mut sqlx::PgConnection, sql: &str) -> Result<Option<bool>, String> {
    let said = |e: sqlx::Error| match e.as_database_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    };
    sqlx::query("BEGIN READ ONLY")
        .execute(&mut *conn)
        .await
        .map_err(said)?;
    let answer = async {
        sqlx::query("SET LOCAL statement_timeout = '60s'")
            .execute(&mut *conn)
            .await
            .map_err(said)?;
        let rows = sqlx::query(sql).fetch_all(&mut *conn).await.map_err(said)?;
        let Some(row) = rows.first() else {
            return Err("it returned no row; a canary returns one true or false value".into());
        };
        use sqlx::Row as _;
        row.try_get::<Option<bool>, _>(0)
            .map_err(|_| "it did not return true or false; a canary returns one boolean".into())
    }
    .await;
    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    answer
}

impl PgBackRestBackend {
    /// `pg_amcheck` over every database of a restored copy: heap and B-tree
    /// checks, the extension installed where missing (the copy is the
    /// drill's own). Corruption fails the check with what was found.
    pub(super) async fn amcheck(
        &self,
        home: &ClusterHome,
        port: u16,
    ) -> Result<crate::domain::verification::Check, StepError> {
        let mut command = self.user.command(self.bin.join("pg_amcheck"), home.dir());
        command
            .args(["--host=127.0.0.1", "--username=postgres"])
            .arg(format!("--port={port}"))
            .args(["--all", "--install-missing", "--no-password"]);
        let done = run_quiet(command, StdDuration::from_secs(3600))
            .await
            .map_err(|e| StepError::retryable("amcheck_failed", e.to_string()))?;
        let found: Vec<&str> = done
            .stdout
            .lines()
            .chain(done.stderr.lines())
            .filter(|l| !l.trim().is_empty())
            .take(5)
            .collect();
        Ok(match done.code() {
            Some(0) => crate::domain::verification::Check {
                name: "amcheck".into(),
                passed: true,
                detail: "every table and B-tree index of every database checked: no corruption"
                    .into(),
            },
            code => crate::domain::verification::Check {
                name: "amcheck".into(),
                passed: false,
                detail: format!(
                    "pg_amcheck {}: {}",
                    match code {
                        Some(2) => "found corruption".to_string(),
                        Some(n) => format!("exited with {n}"),
                        None => "was stopped".to_string(),
                    },
                    if found.is_empty() {
                        "it printed nothing".to_string()
                    } else {
                        found.join(" | ")
                    }
                ),
            },
        })
    }

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

    /// Removes every restore folder `host` made that is not one of `keep`:
    /// runs another host took over, runs that ended elsewhere. A folder of
    /// another host, or older than hosts, or registered as a cluster, stays.
    pub(super) async fn remove_restores_not_held(
        &self,
        host: &str,
        keep: &[(JobId, i64)],
    ) -> Result<usize, FleetError> {
        let entries = match std::fs::read_dir(self.layout.restores()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => {
                return Err(FleetError::Unreachable(format!(
                    "reading {}: {e}",
                    self.layout.restores().display()
                )));
            }
        };
        let registered: Vec<PathBuf> = std::fs::read_dir(self.layout.clusters())
            .map(|links| {
                links
                    .flatten()
                    .filter_map(|l| std::fs::read_link(l.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        let mut removed = 0;
        for entry in entries.flatten() {
            let home = ClusterHome(entry.path());
            let Some(state) = Self::read_state(&home) else {
                continue;
            };
            if state.host.as_deref() != Some(host)
                || keep.contains(&(state.job_id, state.run))
                || registered.iter().any(|target| target == home.dir())
            {
                continue;
            }
            tracing::info!(job = %state.job_id, run = state.run, dir = %home.dir().display(), "removing a restore this host no longer holds");
            let owner = format!("restore {}-{}", state.job_id, state.run);
            self.remove_restore(&home, &owner, None).await;
            if !home.dir().exists() {
                removed += 1;
            }
        }
        Ok(removed)
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
        let readable = match self.info(&job.source).await {
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
