//! The real fleet: PostgreSQL clusters run as the `postgres` OS user,
//! archiving WAL and backed up by pgBackRest into three repositories, one
//! per zone, each encrypted with aes-256-cbc.
//!
//! A restore lays a backup down into a new data directory keyed by job id
//! and run (`restores/<job>-<run>/`), starts it on a port of its own and
//! waits for promotion. Every step can be cut short and run again: it
//! first clears what a dead attempt left behind (a running `pgbackrest
//! restore`, a half-started server) and never builds a second directory.
//! Nothing here writes to a source cluster's data or repositories during a
//! restore; the restored copy runs with archiving off.
//!
//! What a restore can reach comes from the repositories themselves:
//! `pgbackrest info` lists backups and archived WAL per repository, and the
//! newest archived transaction end is read from the newest WAL segment with
//! `pg_waldump` (see `info.rs`). Recovery to a time stops at the first
//! transaction ending after it, so the archive must hold one: a heartbeat
//! (an aborted transaction that changes nothing) keeps idle sources moving.

mod exit;
mod info;
mod layout;
mod process;
mod server;
mod sys;

use crate::domain::ids::{ClusterId, JobId};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Connection as _;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Backend, BackupRound, FleetError, JobContext, Progress, StepError};
use crate::domain::catalog::{Catalog, RestorePlan, Zone, ZoneSet};
use crate::domain::cluster::{Cluster, ClusterConfig, Connection};
use crate::domain::verification::ObservedCluster;
use crate::store::{DynStore, Scope};

pub use info::{SeenZone, StanzaInfo, last_transaction_end, parse_info};
use layout::{ClusterHome, Layout, make_dir, write_file};
use process::{Finished, OsUser, RunError, run_quiet, run_tracked, stop_leftover};
use server::{Server, ServerError};

/// The host every fleet cluster answers on.
pub const HOST: &str = "127.0.0.1";

/// How the real fleet is set up (from `Settings`).
#[derive(Clone)]
pub struct FleetConfig {
    pub fleet_dir: PathBuf,
    pub pg_bin_dir: PathBuf,
    pub os_user: String,
    /// Base of the repositories' passphrases; generated when unset.
    pub cipher_pass: Option<String>,
    pub retention_days: i64,
    /// PostgreSQL's `archive_timeout` on sources: how soon a commit is archived.
    pub archive_timeout_secs: u64,
    /// A full backup per repository when the newest is older than this.
    pub backup_interval: Duration,
    /// TCP ports the fleet's clusters may listen on.
    pub ports: RangeInclusive<u16>,
    /// How long a server may take to replay the log up to the target.
    pub replay_timeout: StdDuration,
}

impl fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetConfig")
            .field("fleet_dir", &self.fleet_dir)
            .field("pg_bin_dir", &self.pg_bin_dir)
            .field("os_user", &self.os_user)
            .field("cipher_pass", &self.cipher_pass.as_ref().map(|_| "***"))
            .field("retention_days", &self.retention_days)
            .field("archive_timeout_secs", &self.archive_timeout_secs)
            .field("backup_interval", &self.backup_interval)
            .field("ports", &self.ports)
            .field("replay_timeout", &self.replay_timeout)
            .finish()
    }
}

/// Newest transaction end per archived segment `(stanza, segment)`.
/// Archived segments never change, so a decoded answer holds for good.
type SegmentEnds = HashMap<(String, String), Option<DateTime<Utc>>>;

/// Decoded segments kept before the cache starts afresh (only the newest
/// few per cluster are ever asked for again).
const SEGMENT_CACHE_LIMIT: usize = 4096;

/// What a restore directory records, so a step run again finds its work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RestoreState {
    job_id: JobId,
    run: i64,
    source_cluster_id: ClusterId,
    new_cluster_id: ClusterId,
    port: u16,
    /// Set once the server was promoted: the last commit it replayed.
    /// PostgreSQL forgets it at the next restart, so it is kept here.
    #[serde(default)]
    promoted: bool,
    #[serde(default)]
    last_replayed_commit: Option<DateTime<Utc>>,
}

pub struct PgBackRestBackend {
    layout: Layout,
    user: OsUser,
    bin: PathBuf,
    /// Secret: never logged, never in an argument list.
    cipher_base: String,
    config: FleetConfig,
    store: DynStore,
    /// Newest transaction end per archived segment: see `SegmentEnds`.
    segment_ends: Mutex<SegmentEnds>,
}

impl fmt::Debug for PgBackRestBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgBackRestBackend")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn fleet_error(context: &str) -> impl Fn(String) -> FleetError + '_ {
    move |e| FleetError::Unreachable(format!("{context}: {e}"))
}

fn io_step(context: &'static str) -> impl Fn(std::io::Error) -> StepError {
    move |e| StepError::retryable("fleet_io", format!("{context}: {e}"))
}

fn server_step(step: &str, error: ServerError) -> StepError {
    match error {
        ServerError::Cancelled => StepError::Interrupted,
        ServerError::TimedOut(_) => {
            StepError::retryable("server_timeout", format!("{step}: {error}"))
        }
        other => StepError::retryable("server_failed", format!("{step}: {other}")),
    }
}

/// The time format pgBackRest and PostgreSQL both read without guessing a
/// zone: microseconds and an explicit UTC offset.
pub fn target_text(target: DateTime<Utc>) -> String {
    target.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
}

/// The percentage in a `restore file … (21.4MB, 12.49%) checksum …` line.
fn restore_percent(line: &str) -> Option<f64> {
    if !line.contains("restore file") {
        return None;
    }
    let (head, _) = line.rsplit_once("%)")?;
    let number = head.rsplit(", ").next()?;
    number.trim().parse::<f64>().ok()
}

impl PgBackRestBackend {
    /// Sets up the fleet folder (owned by the fleet's OS user) and checks
    /// the account. Starts nothing.
    pub async fn open(
        config: FleetConfig,
        store: DynStore,
    ) -> Result<PgBackRestBackend, FleetError> {
        let user = OsUser::lookup(&config.os_user).map_err(FleetError::Unreachable)?;
        let layout = Layout::new(&config.fleet_dir).map_err(FleetError::Unreachable)?;
        layout.prepare(&user).map_err(|e| {
            FleetError::Unreachable(format!("preparing {}: {e}", layout.root().display()))
        })?;
        // Every parent folder must let the fleet's user through.
        let mut probe = user.command("/usr/bin/test", Path::new("/"));
        probe.arg("-w").arg(layout.root());
        let reachable = run_quiet(probe, StdDuration::from_secs(10))
            .await
            .map_err(|e| FleetError::Unreachable(e.to_string()))?;
        if !reachable.success() {
            return Err(FleetError::Unreachable(format!(
                "FLEET_DIR {} cannot be reached by the OS user {}: every folder above it \
                 must be searchable by others (chmod o+x)",
                layout.root().display(),
                config.os_user
            )));
        }
        let cipher_base = layout
            .cipher_base(config.cipher_pass.as_deref())
            .map_err(|e| FleetError::Unreachable(format!("reading the fleet's passphrase: {e}")))?;
        Ok(PgBackRestBackend {
            layout,
            user,
            bin: config.pg_bin_dir.clone(),
            cipher_base,
            config,
            store,
            segment_ends: Mutex::new(HashMap::new()),
        })
    }

    pub fn fleet_dir(&self) -> &Path {
        self.layout.root()
    }

    /// Where a cluster of the fleet lives (sources and restored clusters).
    pub fn cluster_home(&self, id: ClusterId) -> PathBuf {
        self.layout.cluster(id).dir().to_path_buf()
    }

    /// The data directory of a job run's new cluster.
    pub fn restore_dir(&self, job_id: JobId, run: i64) -> PathBuf {
        self.layout.restore(job_id, run).dir().to_path_buf()
    }

    /// The repository folder of a zone.
    pub fn repo_dir(&self, zone: Zone) -> PathBuf {
        self.layout.repo(zone)
    }

    fn server<'a>(&'a self, home: &'a ClusterHome, port: u16) -> Server<'a> {
        Server {
            user: &self.user,
            bin: &self.bin,
            home,
            port,
        }
    }

    /// `pgbackrest --config=… --stanza=… <args>`, as the fleet's user.
    fn backrest(&self, conf: &Path, stanza: &str) -> tokio::process::Command {
        let mut command = self.user.command("pgbackrest", self.layout.root());
        command
            .arg(format!("--config={}", conf.display()))
            .arg(format!("--stanza={stanza}"));
        command
    }

    fn is_source(&self, id: ClusterId) -> bool {
        self.layout.cluster(id).backrest_conf().is_file()
    }

    // ----- ports -------------------------------------------------------------

    fn port_owner_path(&self, port: u16) -> PathBuf {
        self.layout.ports().join(port.to_string())
    }

    /// Holds `port` for `owner`; true if it is now (or was already) theirs.
    fn reserve_port(&self, port: u16, owner: &str) -> std::io::Result<bool> {
        let path = self.port_owner_path(port);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                use std::io::Write;
                file.write_all(owner.as_bytes())?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok(std::fs::read_to_string(&path)? == owner)
            }
            Err(e) => Err(e),
        }
    }

    /// A port in FLEET_PORTS that nothing listens on and no cluster holds.
    fn allocate_port(&self, owner: &str) -> Result<u16, String> {
        for port in self.config.ports.clone() {
            if std::fs::read_to_string(self.port_owner_path(port)).is_ok_and(|o| o == owner) {
                return Ok(port);
            }
        }
        for port in self.config.ports.clone() {
            if self.port_owner_path(port).exists()
                || std::net::TcpListener::bind((HOST, port)).is_err()
            {
                continue;
            }
            match self.reserve_port(port, owner) {
                Ok(true) => return Ok(port),
                Ok(false) => continue,
                Err(e) => return Err(format!("reserving port {port}: {e}")),
            }
        }
        Err(format!(
            "no free port left in FLEET_PORTS {}-{}",
            self.config.ports.start(),
            self.config.ports.end()
        ))
    }

    fn release_ports(&self, owner: &str) {
        let Ok(entries) = std::fs::read_dir(self.layout.ports()) else {
            return;
        };
        for entry in entries.flatten() {
            if std::fs::read_to_string(entry.path()).is_ok_and(|o| o == owner) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// A free port for a new source cluster's record.
    pub fn allocate_source_port(&self, cluster_id: ClusterId) -> Result<u16, FleetError> {
        self.allocate_port(&format!("cluster {cluster_id}"))
            .map_err(FleetError::Unreachable)
    }

    // ----- source clusters ---------------------------------------------------

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
                std::fs::remove_dir_all(&data).map_err(io)?;
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
        let info = self.info(cluster.id).await?;
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

    async fn create_role_and_database(
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

    async fn must_succeed(
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

    fn source_server<'a>(&'a self, home: &'a ClusterHome, cluster: &Cluster) -> Server<'a> {
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

    async fn heartbeat_one(&self, server: &Server<'_>) -> Result<(), String> {
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

    // ----- reading the repositories ------------------------------------------

    /// `pgbackrest info` for one cluster's stanza.
    pub async fn info(&self, cluster_id: ClusterId) -> Result<StanzaInfo, FleetError> {
        let home = self.layout.cluster(cluster_id);
        let stanza = layout::stanza(cluster_id);
        let mut command = self.backrest(&home.backrest_conf(), &stanza);
        command.args(["--output=json", "info"]);
        let done = self
            .must_succeed(command, StdDuration::from_secs(60))
            .await
            .map_err(fleet_error("reading the backup catalog"))?;
        parse_info(&done.stdout, &stanza).map_err(FleetError::Unreachable)
    }

    /// When the newest transaction recorded in `segment` ended, decoding
    /// the segment fetched from `zone` (cached: archived segments never change).
    async fn segment_end(
        &self,
        cluster_id: ClusterId,
        zone: Zone,
        segment: &str,
    ) -> Result<Option<DateTime<Utc>>, String> {
        let stanza = layout::stanza(cluster_id);
        let key = (stanza.clone(), segment.to_string());
        if let Some(known) = self.segment_ends.lock().expect("cache lock").get(&key) {
            return Ok(*known);
        }
        let scratch = self.layout.tmp().join(Uuid::new_v4().simple().to_string());
        make_dir(&scratch, &self.user, 0o700).map_err(|e| e.to_string())?;
        let file = scratch.join(segment);
        let outcome = async {
            let home = self.layout.cluster(cluster_id);
            let mut get = self.backrest(&home.backrest_conf(), &stanza);
            get.arg(format!("--repo={}", zone.index() + 1))
                .arg("archive-get")
                .arg(segment)
                .arg(&file);
            self.must_succeed(get, StdDuration::from_secs(60)).await?;
            let mut dump = self.user.command(self.bin.join("pg_waldump"), &scratch);
            dump.arg("--rmgr=Transaction").arg(&file);
            // pg_waldump complains past the segment's last record; what it
            // printed before that is complete.
            let done = run_quiet(dump, StdDuration::from_secs(60))
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(last_transaction_end(&done.stdout))
        }
        .await;
        let _ = std::fs::remove_dir_all(&scratch);
        let end = outcome?;
        let mut cache = self.segment_ends.lock().expect("cache lock");
        if cache.len() >= SEGMENT_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, end);
        Ok(end)
    }

    /// Per zone, the last moment recovery can stop at: just before the
    /// newest transaction end archived there. Looks back a few segments
    /// when the newest holds none (a switch with no transaction in it).
    async fn log_ends(
        &self,
        cluster_id: ClusterId,
        info: &StanzaInfo,
    ) -> BTreeMap<Zone, DateTime<Utc>> {
        const LOOK_BACK: usize = 8;
        let mut ends = BTreeMap::new();
        for (zone, newest) in info.newest_segments() {
            let oldest = info
                .repo(zone)
                .and_then(|r| r.wal.as_ref())
                .map(|(min, _)| min.clone())
                .unwrap_or_default();
            let mut segment = Some(newest);
            for _ in 0..LOOK_BACK {
                let Some(current) = segment.take().filter(|s| *s >= oldest) else {
                    break;
                };
                match self.segment_end(cluster_id, zone, &current).await {
                    Ok(Some(end)) => {
                        ends.insert(zone, end - Duration::microseconds(1));
                        break;
                    }
                    Ok(None) => segment = info::previous_segment(&current),
                    Err(error) => {
                        tracing::warn!(%zone, %error, "reading archived WAL");
                        break;
                    }
                }
            }
        }
        ends
    }

    // ----- restores ----------------------------------------------------------

    fn restore_owner(job: &JobContext) -> String {
        format!("restore {}-{}", job.job_id, job.run)
    }

    fn read_state(home: &ClusterHome) -> Option<RestoreState> {
        let text = std::fs::read_to_string(home.state()).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn write_state(&self, home: &ClusterHome, state: &RestoreState) -> Result<(), StepError> {
        let text = serde_json::to_string_pretty(state).expect("state serialises");
        write_file(&home.state(), &text, &self.user, 0o640)
            .map_err(io_step("recording the restore's state"))
    }

    fn connection(job: &JobContext, port: u16) -> Connection {
        Connection {
            host: HOST.into(),
            port: i64::from(port),
            database: job.source.connection.database.clone(),
            user: job.source.connection.user.clone(),
        }
    }

    /// The run's state, or a fatal error when an earlier step never ran.
    fn provisioned(&self, job: &JobContext) -> Result<(ClusterHome, RestoreState), StepError> {
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
    async fn remove_restore(
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
            && let Err(error) = std::fs::remove_dir_all(home.dir())
        {
            tracing::warn!(dir = %home.dir().display(), %error, "removing a restore");
        }
        self.release_ports(owner);
    }

    /// Points the restored server's `restore_command` at a readable zone,
    /// preferring the planned one: the WAL is the same in every zone, so
    /// replay goes on from another when the planned zone went away.
    async fn choose_wal_zone(&self, job: &JobContext, data: &Path) -> Result<Zone, StepError> {
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

#[async_trait]
impl Backend for PgBackRestBackend {
    fn name(&self) -> &'static str {
        "pgbackrest"
    }

    async fn catalog(&self, cluster: &Cluster) -> Result<Catalog, FleetError> {
        if !self.is_source(cluster.id) {
            return Ok(Catalog::default());
        }
        let mut info = self.info(cluster.id).await?;
        let mut ends = self.log_ends(cluster.id, &info).await;
        let seen_path = self.layout.cluster(cluster.id).dir().join("last-seen.json");
        let seen: BTreeMap<Zone, SeenZone> = std::fs::read_to_string(&seen_path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let now_seen = info.merge_last_seen(&seen, &mut ends);
        if now_seen != seen {
            let text = serde_json::to_string_pretty(&now_seen).expect("zones serialise");
            if let Err(error) = write_file(&seen_path, &text, &self.user, 0o640) {
                tracing::warn!(%error, "remembering what the zones hold");
            }
        }
        Ok(info.catalog(&ends))
    }

    async fn online_zones(&self, cluster: &Cluster) -> Result<ZoneSet, FleetError> {
        let admin = self
            .store
            .online_zones(&cluster.region)
            .await
            .map_err(FleetError::Store)?;
        if !self.is_source(cluster.id) {
            return Ok(ZoneSet::NONE);
        }
        Ok(admin.intersect(self.info(cluster.id).await?.readable_zones()))
    }

    #[tracing::instrument(skip_all, fields(job = %job.job_id, run = job.run))]
    async fn provision(
        &self,
        job: &JobContext,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<Connection, StepError> {
        if cancel.is_cancelled() {
            return Err(StepError::Interrupted);
        }
        if job.new_cluster_id == job.source.id {
            return Err(StepError::fatal(
                "bad_job",
                "the new cluster cannot be the source cluster",
            ));
        }
        let home = self.layout.restore(job.job_id, job.run);
        if let Some(state) = Self::read_state(&home) {
            return Ok(Self::connection(job, state.port));
        }
        // Earlier runs of this job were compensated; remove what is left.
        let prefix = format!("{}-", job.job_id);
        if let Ok(entries) = std::fs::read_dir(self.layout.restores()) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && entry.path() != home.dir() {
                    let owner = format!("restore {name}");
                    self.remove_restore(
                        &ClusterHome(entry.path()),
                        &owner,
                        Some(job.new_cluster_id),
                    )
                    .await;
                }
            }
        }
        progress.report(0.2, "reserving a port and a data directory");
        let owner = Self::restore_owner(job);
        let port = self
            .allocate_port(&owner)
            .map_err(|e| StepError::retryable("no_free_port", e))?;
        make_dir(home.dir(), &self.user, 0o750)
            .map_err(io_step("creating the restore directory"))?;
        self.write_state(
            &home,
            &RestoreState {
                job_id: job.job_id,
                run: job.run,
                source_cluster_id: job.source.id,
                new_cluster_id: job.new_cluster_id,
                port,
                promoted: false,
                last_replayed_commit: None,
            },
        )?;
        progress.report(1.0, "port and data directory reserved");
        Ok(Self::connection(job, port))
    }

    #[tracing::instrument(skip_all, fields(job = %job.job_id, run = job.run, snapshot = %plan.snapshot_id, zone = %plan.zone))]
    async fn restore_snapshot(
        &self,
        job: &JobContext,
        plan: &RestorePlan,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<(), StepError> {
        let (home, mut state) = self.provisioned(job)?;
        if !self.is_source(job.source.id) {
            return Err(StepError::fatal(
                "source_not_in_fleet",
                format!(
                    "cluster {} has no repositories in this fleet",
                    job.source.name
                ),
            ));
        }
        let online = self
            .store
            .online_zones(&job.source.region)
            .await
            .map_err(|e| StepError::retryable("store_unavailable", e.to_string()))?;
        if !online.contains(plan.zone) {
            return Err(StepError::retryable(
                "zone_offline",
                format!("zone {} is offline", plan.zone),
            ));
        }
        // Start from nothing: a restore an earlier attempt left running, a
        // server it started, its files.
        progress.report(0.0, "clearing the new cluster's directory");
        stop_leftover(&home.restore_pid(), "pgbackrest").await;
        self.server(&home, state.port)
            .stop(false)
            .await
            .map_err(|e| server_step("stopping a server left by an earlier attempt", e))?;
        if home.data().exists() {
            std::fs::remove_dir_all(home.data()).map_err(io_step("clearing the data directory"))?;
        }
        let _ = std::fs::remove_file(home.server_log());
        make_dir(&home.data(), &self.user, 0o700)
            .map_err(io_step("creating the data directory"))?;
        make_dir(&home.socket_dir(), &self.user, 0o700)
            .map_err(io_step("creating the socket directory"))?;
        if state.promoted {
            state.promoted = false;
            state.last_replayed_commit = None;
            self.write_state(&home, &state)?;
        }

        let source_home = self.layout.cluster(job.source.id);
        let mut command =
            self.backrest(&source_home.backrest_conf(), &layout::stanza(job.source.id));
        command
            .arg(format!("--repo={}", plan.zone.index() + 1))
            .arg(format!("--set={}", plan.snapshot_id))
            .arg("--type=time")
            .arg(format!("--target={}", target_text(job.target)))
            .arg("--target-action=promote")
            .arg("--archive-mode=off")
            .arg(format!("--pg1-path={}", home.data().display()))
            .arg("--log-level-console=detail")
            .arg("--log-level-stderr=warn")
            .arg("restore");
        let detail = format!("restoring snapshot {} from {}", plan.snapshot_id, plan.zone);
        progress.report(0.0, &detail);
        // Like the sandbox, give up when an admin takes the zone offline.
        let stop = cancel.child_token();
        let went_offline = std::sync::atomic::AtomicBool::new(false);
        let watch = async {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
                }
                if let Ok(online) = self.store.online_zones(&job.source.region).await
                    && !online.contains(plan.zone)
                {
                    went_offline.store(true, std::sync::atomic::Ordering::SeqCst);
                    stop.cancel();
                    return;
                }
            }
        };
        let mut last_reported = 0.0;
        let restore = async {
            let outcome = run_tracked(
                command,
                StdDuration::from_secs(6 * 3600),
                &stop,
                Some(&home.restore_pid()),
                |line| {
                    if let Some(percent) = restore_percent(line) {
                        let fraction = (percent / 100.0).clamp(0.0, 1.0);
                        if fraction - last_reported >= 0.01 || fraction >= 1.0 {
                            last_reported = fraction;
                            progress.report(fraction, &detail);
                        }
                    }
                },
            )
            .await;
            stop.cancel();
            outcome
        };
        let (outcome, ()) = tokio::join!(restore, watch);
        let finished = match outcome {
            Err(RunError::Cancelled) if went_offline.load(std::sync::atomic::Ordering::SeqCst) => {
                return Err(StepError::retryable(
                    "zone_offline",
                    format!("zone {} went offline while restoring from it", plan.zone),
                ));
            }
            other => other.map_err(RunError::into_step)?,
        };
        if !finished.success() {
            return Err(exit::restore_failure(
                finished.code(),
                plan.zone,
                &finished.reason(),
                &finished.stderr,
            ));
        }
        // The copy carries the source's fleet.conf (its port, its archive):
        // replace it before the copy ever starts.
        write_file(
            &home.data().join("fleet.conf"),
            &layout::fleet_conf(&home, state.port, None),
            &self.user,
            0o600,
        )
        .map_err(io_step("writing the new cluster's fleet.conf"))?;
        progress.report(1.0, &detail);
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(job = %job.job_id, run = job.run))]
    async fn replay_log(
        &self,
        job: &JobContext,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, StepError> {
        let (home, mut state) = self.provisioned(job)?;
        if state.promoted {
            return Ok(state.last_replayed_commit);
        }
        if !home.data().join("global/pg_control").is_file() {
            return Err(StepError::fatal(
                "snapshot_missing",
                "the snapshot was not laid down completely: restore it again",
            ));
        }
        let server = self.server(&home, state.port);
        let mut wal_zone = job.plan.as_ref().map(|p| p.zone);
        if server.pid().is_none() {
            wal_zone = Some(self.choose_wal_zone(job, &home.data()).await?);
            progress.report(0.05, "starting the new cluster");
            server
                .start()
                .map_err(|e| server_step("starting the new cluster", e))?;
        }
        progress.report(0.1, "replaying the archived log to the target time");
        let outcome = server
            .wait_for(self.config.replay_timeout, cancel, async |conn| {
                let (in_recovery, replayed): (bool, Option<DateTime<Utc>>) =
                    sqlx::query_as("SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()")
                        .fetch_one(&mut *conn)
                        .await?;
                Ok((!in_recovery).then_some(replayed))
            })
            .await;
        let replayed = match outcome {
            Ok(replayed) => replayed,
            Err(ServerError::Died(reason)) => {
                let target = target_text(job.target);
                // A zone lost mid-replay looks like the end of the archive:
                // PostgreSQL only sees restore_command fail.
                let lost = match (wal_zone, self.info(job.source.id).await) {
                    (Some(zone), Ok(info)) => {
                        (!info.readable_zones().contains(zone)).then_some(zone)
                    }
                    (Some(zone), Err(_)) => Some(zone),
                    (None, _) => None,
                };
                return Err(if let Some(zone) = lost {
                    StepError::retryable(
                        "zone_unavailable",
                        format!(
                            "zone {zone} became unreadable while replaying the log from it: {reason}"
                        ),
                    )
                } else if reason.contains("recovery ended before configured recovery target") {
                    StepError::fatal(
                        "target_not_reached",
                        format!("the archived log ends before {target}: {reason}"),
                    )
                } else if reason.contains("before consistent recovery point") {
                    StepError::fatal(
                        "target_before_snapshot",
                        format!("{target} is before the snapshot is consistent: {reason}"),
                    )
                } else {
                    StepError::retryable(
                        "server_failed",
                        format!("the new cluster stopped during recovery: {reason}"),
                    )
                });
            }
            Err(other) => return Err(server_step("replaying the log", other)),
        };
        // Restarted since its promotion, the server no longer says.
        let replayed = replayed.or_else(|| {
            let log = std::fs::read_to_string(home.server_log()).ok()?;
            server::last_completed_transaction(&log)
        });
        state.promoted = true;
        state.last_replayed_commit = replayed;
        self.write_state(&home, &state)?;
        progress.report(1.0, "promoted");
        Ok(replayed)
    }

    #[tracing::instrument(skip_all, fields(job = %job.job_id, run = job.run))]
    async fn inspect(
        &self,
        job: &JobContext,
        cancel: &CancellationToken,
    ) -> Result<ObservedCluster, StepError> {
        let (home, state) = self.provisioned(job)?;
        let server = self.server(&home, state.port);
        if server.pid().is_none() && state.promoted {
            server
                .start()
                .map_err(|e| server_step("starting the new cluster", e))?;
        }
        let observed = server
            .wait_for(StdDuration::from_secs(60), cancel, async |conn| {
                let row: (
                    bool,
                    String,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                ) = sqlx::query_as(
                    "SELECT pg_is_in_recovery(), current_setting('server_version_num'), \
                         current_setting('restore_desk.tier', true), \
                         current_setting('restore_desk.vcores', true), \
                         current_setting('restore_desk.storage_gib', true), \
                         current_setting('restore_desk.node_count', true), \
                         current_setting('restore_desk.high_availability', true)",
                )
                .fetch_one(&mut *conn)
                .await?;
                Ok(Some(row))
            })
            .await;
        let (in_recovery, version, tier, vcores, storage, nodes, ha) = match observed {
            Ok(row) => row,
            Err(ServerError::Cancelled) => return Err(StepError::Interrupted),
            Err(error) => {
                tracing::warn!(%error, "the new cluster does not answer");
                return Ok(ObservedCluster {
                    accepting_connections: false,
                    in_recovery: true,
                    last_replayed_commit: state.last_replayed_commit,
                    config: ClusterConfig {
                        tier: String::new(),
                        vcores: 0,
                        storage_gib: 0,
                        node_count: 0,
                        high_availability: false,
                        server_version: String::new(),
                    },
                });
            }
        };
        let number = |v: Option<String>| v.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let major = version
            .parse::<i64>()
            .map(|n| (n / 10000).to_string())
            .unwrap_or(version);
        Ok(ObservedCluster {
            accepting_connections: true,
            in_recovery,
            last_replayed_commit: state.last_replayed_commit,
            config: ClusterConfig {
                tier: tier.unwrap_or_default(),
                vcores: number(vcores),
                storage_gib: number(storage),
                node_count: number(nodes),
                high_availability: ha.as_deref() == Some("true"),
                server_version: major,
            },
        })
    }

    #[tracing::instrument(skip_all, fields(job = %job.job_id, run = job.run))]
    async fn finalize(
        &self,
        job: &JobContext,
        cancel: &CancellationToken,
    ) -> Result<Connection, StepError> {
        let (home, state) = self.provisioned(job)?;
        if !state.promoted {
            return Err(StepError::fatal(
                "not_promoted",
                "the new cluster never left recovery",
            ));
        }
        let auto = home.data().join("postgresql.auto.conf");
        let text =
            std::fs::read_to_string(&auto).map_err(io_step("reading postgresql.auto.conf"))?;
        let cleaned = layout::without_recovery_settings(&text);
        if cleaned != text {
            write_file(&auto, &cleaned, &self.user, 0o600)
                .map_err(io_step("writing postgresql.auto.conf"))?;
        }
        let server = self.server(&home, state.port);
        if server.pid().is_none() {
            server
                .start()
                .map_err(|e| server_step("starting the new cluster", e))?;
        }
        server
            .wait_for(StdDuration::from_secs(60), cancel, async |conn| {
                let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                    .fetch_one(&mut *conn)
                    .await?;
                Ok((!in_recovery).then_some(()))
            })
            .await
            .map_err(|e| server_step("opening the new cluster", e))?;
        // From now on the fleet knows the cluster by its id, like a source.
        let link = self.layout.cluster(job.new_cluster_id);
        if std::fs::symlink_metadata(link.dir()).is_err() {
            std::os::unix::fs::symlink(home.dir(), link.dir())
                .map_err(io_step("registering the new cluster"))?;
        }
        Ok(Self::connection(job, state.port))
    }

    #[tracing::instrument(skip_all, fields(job = %job.job_id, run = job.run))]
    async fn teardown(&self, job: &JobContext) -> Result<(), StepError> {
        let home = self.layout.restore(job.job_id, job.run);
        let new_cluster = (job.new_cluster_id != job.source.id).then_some(job.new_cluster_id);
        self.remove_restore(&home, &Self::restore_owner(job), new_cluster)
            .await;
        if home.dir().exists() {
            return Err(StepError::retryable(
                "teardown_incomplete",
                format!("{} could not be removed", home.dir().display()),
            ));
        }
        Ok(())
    }

    async fn run_backups(&self, now: DateTime<Utc>) -> Result<BackupRound, FleetError> {
        let clusters = self
            .store
            .clusters(Scope::Everything, true)
            .await
            .map_err(|e| FleetError::Unreachable(e.to_string()))?;
        let mut round = BackupRound::default();
        // One cluster's trouble does not hold the others' backups back.
        for cluster in clusters.iter().filter(|c| self.is_source(c.id)) {
            if let Err(error) = self.backup_cluster(cluster, now, &mut round).await {
                tracing::error!(cluster = %cluster.name, %error, "automatic backups");
            }
        }
        Ok(round)
    }
}

impl PgBackRestBackend {
    /// A full backup into each readable zone an admin has online whose
    /// newest backup is older than the interval (none for a deleted
    /// cluster), then `expire` by the time-based retention.
    async fn backup_cluster(
        &self,
        cluster: &Cluster,
        now: DateTime<Utc>,
        round: &mut BackupRound,
    ) -> Result<(), FleetError> {
        let before = self.info(cluster.id).await?;
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
        let after = self.info(cluster.id).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn targets_carry_microseconds_and_an_explicit_offset() {
        let t =
            Utc.with_ymd_and_hms(2026, 11, 25, 13, 12, 7).unwrap() + Duration::microseconds(84470);
        assert_eq!(target_text(t), "2026-11-25 13:12:07.084470+00:00");
    }

    #[test]
    fn restore_progress_comes_from_file_lines() {
        let line = "2026-11-25 13:14:08.564 P01 DETAIL: restore file /srv/fleet/restores/x/data/base/5/1255 \
                    (768KB, 3.39%) checksum 8360536179843f66773723fc562442ebe12e1b00";
        assert_eq!(restore_percent(line), Some(3.39));
        let empty = "P02 DETAIL: restore file /x/global/6244 (0B, 100.00%)";
        assert_eq!(restore_percent(empty), Some(100.0));
        assert_eq!(restore_percent("P00   INFO: restore size = 22.1MB"), None);
    }
}
