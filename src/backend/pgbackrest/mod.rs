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

mod backups;
mod catalog;
mod exit;
mod host_role;
mod info;
mod layout;
mod network;
mod ports;
mod process;
mod reach;
mod restores;
mod server;
mod sources;
mod steps;
mod sys;
mod transactions;
mod wal;

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
use crate::domain::cluster::{Cluster, ClusterConfig, Connection, FleetLocation};
use crate::domain::verification::ObservedCluster;
use crate::store::{DynStore, Scope};

pub use info::{SeenZone, StanzaInfo, last_transaction_end, parse_info};
pub use network::DESK_CLIENT;

/// The uid and gid of the fleet's OS user, for files made for it.
pub fn os_user_ids(name: &str) -> Result<(u32, u32), String> {
    let user = OsUser::lookup(name)?;
    Ok((user.uid, user.gid))
}
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
    /// The restore host this process's restores run on: several hosts may
    /// share one fleet folder, each minding its own restores.
    pub host: String,
    /// This host's certificates for the fleet across hosts (its folder of
    /// `restore-desk fleet certs`); `FLEET_DIR/tls` when unset.
    pub tls_dir: Option<PathBuf>,
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
            .field("host", &self.host)
            .field("tls_dir", &self.tls_dir)
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
    /// Set while the copy stands paused for inspection: the target it
    /// paused at, as recovery was told it.
    #[serde(default)]
    paused_at: Option<String>,
    /// The restore host that made it; `None` in folders older than hosts,
    /// which are never taken for leftovers.
    #[serde(default)]
    host: Option<String>,
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
    /// Archived segments decoded in full, by stanza and segment.
    digests: Mutex<HashMap<(String, String), Arc<wal::SegmentDigest>>>,
    /// The fleet description as last read, and this host's configuration
    /// as last written.
    host_state: Mutex<reach::HostConfState>,
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

/// `22.1MB`, `768KB`, `0B` in pgBackRest's words (powers of 1024).
fn bytes_of(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "B" => 1.0,
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number.trim().parse::<f64>().ok()? * scale)
}

/// The size of the file a `restore file … (768KB, 3.39%)` line copied.
fn restore_file_bytes(line: &str) -> Option<f64> {
    if !line.contains("restore file") {
        return None;
    }
    let (head, _) = line.rsplit_once("%)")?;
    let inside = head.rsplit_once('(')?.1;
    bytes_of(inside.split(", ").next()?.trim())
}

/// `8.1 MB`, `1.4 GB`.
fn size_words(bytes: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
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
            digests: Mutex::new(HashMap::new()),
            host_state: Mutex::new(reach::HostConfState::default()),
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

    #[test]
    fn each_file_line_says_how_many_bytes_it_copied() {
        let line = "2026-11-25 13:14:08.564 P01 DETAIL: restore file /srv/fleet/restores/x/data/base/5/1255 \
                    (768KB, 3.39%) checksum 8360536179843f66773723fc562442ebe12e1b00";
        assert_eq!(restore_file_bytes(line), Some(768.0 * 1024.0));
        assert_eq!(
            restore_file_bytes("P02 DETAIL: restore file /x/global/6244 (0B, 100.00%)"),
            Some(0.0)
        );
        assert_eq!(
            restore_file_bytes("P00   INFO: restore size = 22.1MB"),
            None
        );
        assert_eq!(bytes_of("1.5GB"), Some(1.5 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(size_words(22.1 * 1024.0 * 1024.0), "22.1 MB");
        assert_eq!(size_words(512.0), "512 B");
    }
}
