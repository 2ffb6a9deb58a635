//! Where everything of the real fleet lives under `FLEET_DIR`, and the
//! configuration files written there.
//!
//! ```text
//! FLEET_DIR/
//!   zones/az1 az2 az3            the three pgBackRest repositories (zones)
//!   lock/ log/ spool/ tmp/       pgBackRest's working folders, scratch space
//!   ports/<port>                 one file per TCP port the fleet holds
//!   clusters/<cluster id>/       a source cluster: data/, run/ (socket),
//!                                server.log, pgbackrest.conf (mode 600)
//!   clusters/<cluster id> -> ../restores/<job>-<run>   a restored cluster
//!   restores/<job id>-<run>/     a restore in progress: data/, run/,
//!                                server.log, restore.json
//! ```

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::ids::{ClusterId, JobId};

use super::process::OsUser;
use crate::domain::catalog::Zone;
use crate::domain::cluster::ClusterConfig;

/// The fleet's folders. Every path is absolute and safe to appear unquoted
/// in `archive_command`, which PostgreSQL runs through a shell.
#[derive(Clone)]
pub struct Layout {
    root: PathBuf,
}

impl fmt::Debug for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layout").field("root", &self.root).finish()
    }
}

/// Characters a fleet path may hold: no quoting needed anywhere.
fn shell_safe(path: &Path) -> bool {
    path.to_str().is_some_and(|s| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    })
}

impl Layout {
    /// Makes `root` absolute and checks it can appear in configuration.
    pub fn new(root: &Path) -> Result<Layout, String> {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| format!("cannot resolve FLEET_DIR: {e}"))?
                .join(root)
        };
        if !shell_safe(&root) {
            return Err(format!(
                "FLEET_DIR {} may only contain letters, digits and / . _ - +",
                root.display()
            ));
        }
        Ok(Layout { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn repo(&self, zone: Zone) -> PathBuf {
        self.root.join("zones").join(zone.as_str())
    }

    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn ports(&self) -> PathBuf {
        self.root.join("ports")
    }

    pub fn cluster(&self, id: ClusterId) -> ClusterHome {
        ClusterHome(self.root.join("clusters").join(id.to_string()))
    }

    pub fn restore(&self, job_id: JobId, run: i64) -> ClusterHome {
        ClusterHome(self.restores().join(format!("{job_id}-{run}")))
    }

    pub fn restores(&self) -> PathBuf {
        self.root.join("restores")
    }

    pub fn clusters(&self) -> PathBuf {
        self.root.join("clusters")
    }

    /// Creates the shared folders, owned by the fleet's OS user.
    pub fn prepare(&self, user: &OsUser) -> std::io::Result<()> {
        make_dir(&self.root, user, 0o755)?;
        make_dir(&self.root.join("zones"), user, 0o750)?;
        for zone in Zone::ALL {
            make_dir(&self.repo(zone), user, 0o750)?;
        }
        for dir in [
            "lock", "log", "spool", "tmp", "ports", "clusters", "restores",
        ] {
            make_dir(&self.root.join(dir), user, 0o750)?;
        }
        Ok(())
    }

    /// The passphrase base: from configuration, else generated once and
    /// kept in the fleet folder (mode 600).
    pub fn cipher_base(&self, configured: Option<&str>) -> std::io::Result<String> {
        if let Some(pass) = configured.filter(|p| !p.is_empty()) {
            return Ok(pass.to_string());
        }
        let path = self.root.join(".cipher-pass");
        match std::fs::read_to_string(&path) {
            Ok(pass) if !pass.trim().is_empty() => return Ok(pass.trim().to_string()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let pass = hex::encode(rand::random::<[u8; 32]>());
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(pass.as_bytes())?;
        Ok(pass)
    }
}

/// Creates a folder (and its parents) owned by the fleet's user.
pub fn make_dir(path: &Path, user: &OsUser, mode: u32) -> std::io::Result<()> {
    if !path.is_dir() {
        std::fs::create_dir_all(path)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    user.own(path)
}

/// Writes a file atomically (temporary file, then rename), owned by the
/// fleet's user with `mode`.
pub fn write_file(path: &Path, contents: &str, user: &OsUser, mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", Uuid::new_v4().simple()));
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
    }
    user.own(&tmp)?;
    std::fs::rename(&tmp, path)
}

/// The folder of one cluster, source or restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterHome(pub PathBuf);

impl ClusterHome {
    pub fn dir(&self) -> &Path {
        &self.0
    }
    pub fn data(&self) -> PathBuf {
        self.0.join("data")
    }
    pub fn socket_dir(&self) -> PathBuf {
        self.0.join("run")
    }
    pub fn server_log(&self) -> PathBuf {
        self.0.join("server.log")
    }
    pub fn backrest_conf(&self) -> PathBuf {
        self.0.join("pgbackrest.conf")
    }
    pub fn state(&self) -> PathBuf {
        self.0.join("restore.json")
    }
    /// The pid of a running `pgbackrest restore` into this folder.
    pub fn restore_pid(&self) -> PathBuf {
        self.0.join("restore.pid")
    }
    /// pgBackRest's spool folder for a restore into this folder. A restore
    /// empties its stanza's spool queue, and the source's stanza is the
    /// same: with the fleet's spool it would delete the WAL the running
    /// source is pushing asynchronously (and fail when a file lands there
    /// mid-delete).
    pub fn restore_spool(&self) -> PathBuf {
        self.0.join("spool")
    }
}

/// The stanza of a cluster: its id.
pub fn stanza(cluster_id: ClusterId) -> String {
    cluster_id.to_string()
}

/// A repository's passphrase, derived from the base so each zone has its own.
pub(super) fn zone_pass(base: &str, zone: Zone) -> String {
    let digest = Sha256::digest(format!("restore-desk/{zone}/{base}").as_bytes());
    hex::encode(digest)
}

/// Quotes a value for postgresql.conf.
pub fn pg_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `pgbackrest.conf` of one cluster: the three zones, encrypted, with
/// time-based retention, and the cluster's own stanza. Holds secrets:
/// written with mode 600.
pub fn backrest_conf(
    layout: &Layout,
    cipher_base: &str,
    retention_days: i64,
    stanza: &str,
    home: &ClusterHome,
    port: u16,
) -> String {
    let root = layout.root();
    let mut text = format!(
        "# Written by restore-desk: the fleet's three zones are three repositories.\n\
         [global]\n\
         lock-path={}\n\
         log-path={}\n\
         spool-path={}\n\
         start-fast=y\n\
         compress-type=zst\n\
         process-max=2\n\
         log-level-file=info\n",
        root.join("lock").display(),
        root.join("log").display(),
        root.join("spool").display(),
    );
    for zone in Zone::ALL {
        let n = zone.index() + 1;
        text.push_str(&format!(
            "repo{n}-type=posix\n\
             repo{n}-path={}\n\
             repo{n}-cipher-type=aes-256-cbc\n\
             repo{n}-cipher-pass={}\n\
             repo{n}-retention-full-type=time\n\
             repo{n}-retention-full={retention_days}\n",
            layout.repo(zone).display(),
            zone_pass(cipher_base, zone),
        ));
    }
    // Asynchronous pushing lets the other zones keep receiving WAL while one
    // is unreachable; synchronously they could get only one segment ahead.
    // Only for archive-push: restores keep fetching WAL synchronously, with
    // no spool queue shared between them.
    text.push_str("\n[global:archive-push]\narchive-async=y\n");
    text.push_str(&format!(
        "\n[{stanza}]\n\
         pg1-path={}\n\
         pg1-port={port}\n\
         pg1-socket-path={}\n\
         pg1-user=postgres\n",
        home.data().display(),
        home.socket_dir().display(),
    ));
    text
}

/// Marks the block this desk appends to a source's `postgresql.conf`.
pub const CONF_MARKER: &str = "# --- restore-desk ---";

/// What a source's `postgresql.conf` gets: the desk's record of the
/// cluster's shape (carried into every restore, where verification reads
/// it back), continuous archiving, UTC, and an include of `fleet.conf`.
pub fn source_settings(config: &ClusterConfig, archive_timeout_secs: u64) -> String {
    format!(
        "\n{CONF_MARKER}\n\
         # The desk's record of this cluster's shape; a restore carries it over.\n\
         restore_desk.tier = {}\n\
         restore_desk.vcores = {}\n\
         restore_desk.storage_gib = {}\n\
         restore_desk.node_count = {}\n\
         restore_desk.high_availability = {}\n\
         # Continuous archiving: a commit is archived within archive_timeout.\n\
         wal_level = replica\n\
         archive_mode = on\n\
         archive_timeout = {archive_timeout_secs}\n\
         timezone = 'UTC'\n\
         log_timezone = 'UTC'\n\
         logging_collector = off\n\
         # Where this cluster answers and archives to: its own, rewritten for\n\
         # every cluster, never carried over by a restore.\n\
         include = 'fleet.conf'\n",
        pg_quote(&config.tier),
        pg_quote(&config.vcores.to_string()),
        pg_quote(&config.storage_gib.to_string()),
        pg_quote(&config.node_count.to_string()),
        pg_quote(&config.high_availability.to_string()),
    )
}

/// `fleet.conf`: the port and socket of this cluster and, for a source,
/// where its WAL goes. `archive` is `None` for a restored cluster, which
/// must never push into the source's repositories.
pub fn fleet_conf(home: &ClusterHome, port: u16, archive: Option<(&Path, &str)>) -> String {
    let mut text = format!(
        "# Written by restore-desk for this cluster only.\n\
         port = {port}\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = {}\n",
        pg_quote(&home.socket_dir().display().to_string()),
    );
    match archive {
        Some((conf, stanza)) => text.push_str(&format!(
            "archive_command = {}\n",
            pg_quote(&format!(
                "pgbackrest --config={} --stanza={stanza} archive-push %p",
                conf.display()
            ))
        )),
        None => text.push_str("archive_mode = off\narchive_command = ''\n"),
    }
    text
}

/// `postgresql.auto.conf` recovering to a new target: the old target's
/// lines give way to `target` (already quoted settings, one per line);
/// `restore_command` and the action to take at the target stay.
pub fn with_recovery_target(auto_conf: &str, target: &[(&str, String)]) -> String {
    let mut text: String = auto_conf
        .lines()
        .filter(|line| {
            let key = line.split('=').next().unwrap_or("").trim();
            !(key.starts_with("recovery_target") && key != "recovery_target_action")
        })
        .map(|line| format!("{line}\n"))
        .collect();
    for (key, value) in target {
        text.push_str(&format!("{key} = {}\n", pg_quote(value)));
    }
    text
}

/// `postgresql.auto.conf` without the recovery settings pgBackRest wrote,
/// for a cluster that lives on after its restore.
pub fn without_recovery_settings(auto_conf: &str) -> String {
    auto_conf
        .lines()
        .filter(|line| {
            let key = line.split('=').next().unwrap_or("").trim();
            !(key.starts_with("recovery_target") || key == "restore_command")
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_settings_are_removed_and_the_rest_kept() {
        let auto = "# Do not edit this file manually!\n\
                    archive_mode = 'off'\n\
                    restore_command = 'pgbackrest archive-get %f \"%p\"'\n\
                    recovery_target_time = '2026-11-25 13:12:07.084470+00:00'\n\
                    recovery_target_action = 'promote'\n\
                    work_mem = '8MB'\n";
        let cleaned = without_recovery_settings(auto);
        assert!(!cleaned.contains("recovery_target"));
        assert!(!cleaned.contains("restore_command"));
        assert!(cleaned.contains("archive_mode = 'off'"));
        assert!(cleaned.contains("work_mem"));
    }

    #[test]
    fn a_new_recovery_target_replaces_the_old_one() {
        let auto = "restore_command = 'pgbackrest archive-get %f \"%p\"'\n\
                    recovery_target_time = '2026-11-25 13:12:07.084470+00:00'\n\
                    recovery_target_action = 'pause'\n";
        let moved = with_recovery_target(
            auto,
            &[
                ("recovery_target_xid", "1234".to_string()),
                ("recovery_target_inclusive", "false".to_string()),
            ],
        );
        assert!(!moved.contains("recovery_target_time"));
        assert!(moved.contains("recovery_target_action = 'pause'"));
        assert!(moved.contains("restore_command"));
        assert!(
            moved.ends_with("recovery_target_xid = '1234'\nrecovery_target_inclusive = 'false'\n")
        );
    }

    #[test]
    fn fleet_paths_must_be_shell_safe() {
        assert!(Layout::new(Path::new("/srv/fleet")).is_ok());
        assert!(Layout::new(Path::new("/srv/my fleet")).is_err());
        assert!(Layout::new(Path::new("/srv/fleet;rm")).is_err());
    }

    #[test]
    fn each_zone_has_its_own_passphrase_and_conf_holds_no_base() {
        let layout = Layout::new(Path::new("/srv/fleet")).unwrap();
        let home = layout.cluster(ClusterId::nil());
        let conf = backrest_conf(&layout, "base-secret", 35, "s", &home, 55001);
        assert!(!conf.contains("base-secret"));
        assert_ne!(zone_pass("b", Zone::Az1), zone_pass("b", Zone::Az2));
        assert!(conf.contains("repo3-cipher-type=aes-256-cbc"));
        assert!(conf.contains("repo1-retention-full=35"));
        assert!(conf.contains("pg1-port=55001"));
    }

    #[test]
    fn a_restored_cluster_never_archives() {
        let layout = Layout::new(Path::new("/srv/fleet")).unwrap();
        let home = layout.restore(JobId::nil(), 1);
        let conf = fleet_conf(&home, 55002, None);
        assert!(conf.contains("archive_mode = off"));
        assert!(conf.contains("port = 55002"));
    }
}
