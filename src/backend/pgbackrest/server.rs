//! One PostgreSQL server of the fleet: started without a shell, watched
//! through its pid file and its log, stopped with `pg_ctl`, queried over
//! loopback.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio_util::sync::CancellationToken;

use super::layout::ClusterHome;
use super::process::{OsUser, run_quiet};
use super::sys;

/// The pid in `postmaster.pid`, if that process is a live postgres.
pub fn running_pid(data: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    let is_postgres = sys::command_line(pid).is_some_and(|cmd| cmd.contains("postgres"));
    (sys::alive(pid) && is_postgres).then_some(pid)
}

/// Why a server could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Io(String),
    /// The postmaster exited; the reason is the last error it logged.
    #[error("the server stopped: {0}")]
    Died(String),
    #[error("the server did not answer within {0} s")]
    TimedOut(u64),
    #[error("interrupted")]
    Cancelled,
}

pub struct Server<'a> {
    pub user: &'a OsUser,
    pub bin: &'a Path,
    pub home: &'a ClusterHome,
    pub port: u16,
}

impl Server<'_> {
    fn program(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    pub fn data(&self) -> PathBuf {
        self.home.data()
    }

    pub fn pid(&self) -> Option<i32> {
        running_pid(&self.data())
    }

    /// Starts the postmaster in the background unless one runs already.
    /// Its output goes to `server.log`, outside the data directory, so no
    /// restore ever carries a log over.
    pub fn start(&self) -> Result<(), ServerError> {
        if self.pid().is_some() {
            return Ok(());
        }
        let io = |e: std::io::Error| ServerError::Io(format!("starting the server: {e}"));
        let log_path = self.home.server_log();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io)?;
        self.user.own(&log_path).map_err(io)?;
        let err = log.try_clone().map_err(io)?;
        let mut command = self.user.command(self.program("postgres"), self.home.dir());
        command
            .arg("-D")
            .arg(self.data())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        // The postmaster outlives this call (and this process): the handle
        // is dropped, and tokio reaps the process should it exit first.
        command.spawn().map_err(io)?;
        Ok(())
    }

    /// Stops the server if one runs: `fast` lets it finish cleanly,
    /// otherwise it stops at once (for a directory about to be wiped).
    pub async fn stop(&self, fast: bool) -> Result<(), ServerError> {
        if self.pid().is_none() {
            return Ok(());
        }
        let mut command = self.user.command(self.program("pg_ctl"), self.home.dir());
        command
            .arg("stop")
            .arg("-D")
            .arg(self.data())
            .arg("-m")
            .arg(if fast { "fast" } else { "immediate" })
            .arg("-w")
            .arg("-t")
            .arg("60");
        let finished = run_quiet(command, Duration::from_secs(90))
            .await
            .map_err(|e| ServerError::Io(e.to_string()))?;
        if finished.success() || self.pid().is_none() {
            Ok(())
        } else {
            Err(ServerError::Io(format!(
                "pg_ctl stop failed: {}",
                finished.reason()
            )))
        }
    }

    pub fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .database("postgres")
            .application_name("restore-desk")
    }

    /// A connection, or why none could be made.
    pub async fn connect(&self) -> Result<PgConnection, String> {
        match tokio::time::timeout(
            Duration::from_secs(5),
            PgConnection::connect_with(&self.connect_options()),
        )
        .await
        {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("connecting timed out".into()),
        }
    }

    /// The last error the server logged: the reason it stopped.
    pub fn last_logged_error(&self) -> Option<String> {
        let log = std::fs::read_to_string(self.home.server_log()).ok()?;
        last_error_line(&log)
    }

    /// Polls until `ready` answers `Ok(Some(value))`, failing as soon as
    /// the postmaster is gone (with the reason from its log).
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        cancel: &CancellationToken,
        mut ready: impl AsyncFnMut(&mut PgConnection) -> Result<Option<T>, sqlx::Error>,
    ) -> Result<T, ServerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // A postmaster just spawned may not have written its pid file yet.
        let mut grace = 20;
        loop {
            if cancel.is_cancelled() {
                return Err(ServerError::Cancelled);
            }
            if self.pid().is_none() {
                if grace == 0 {
                    return Err(ServerError::Died(self.last_logged_error().unwrap_or_else(
                        || "no error was logged; see server.log".to_string(),
                    )));
                }
                grace -= 1;
            } else if let Ok(mut conn) = self.connect().await {
                let answer = ready(&mut conn).await;
                let _ = conn.close().await;
                if let Ok(Some(value)) = answer {
                    return Ok(value);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServerError::TimedOut(timeout.as_secs()));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = cancel.cancelled() => return Err(ServerError::Cancelled),
            }
        }
    }
}

/// The commit time recovery logged as its last replayed transaction
/// ("last completed transaction was at log time …"), for when the server
/// was restarted since and `pg_last_xact_replay_timestamp()` forgot it.
pub fn last_completed_transaction(log: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    const MARK: &str = "last completed transaction was at log time ";
    let line = log.lines().rfind(|l| l.contains(MARK))?;
    let stamp = line.split(MARK).nth(1)?.trim();
    chrono::DateTime::parse_from_str(&format!("{stamp}00"), "%Y-%m-%d %H:%M:%S%.f%z")
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The last FATAL or PANIC line of a server log that explains a stop.
/// Connection attempts refused during start-up and shutdown are logged as
/// FATAL too; they explain nothing and are skipped.
pub fn last_error_line(log: &str) -> Option<String> {
    const NOISE: [&str; 4] = [
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is not yet accepting connections",
        "terminating connection due to administrator command",
    ];
    log.lines()
        .rfind(|l| {
            (l.contains("FATAL:") || l.contains("PANIC:")) && !NOISE.iter().any(|n| l.contains(n))
        })
        .map(|l| {
            let at = l.find("FATAL:").or_else(|| l.find("PANIC:")).unwrap_or(0);
            l[at..].split_whitespace().collect::<Vec<_>>().join(" ")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_a_recovery_stopped_is_found_among_noise() {
        let log = "\
2026-11-25 13:12:13.927 UTC [5821] FATAL:  the database system is starting up
2026-11-25 13:12:14.087 UTC [5802] LOG:  restored log file \"00000001000000000000000B\" from archive
2026-11-25 13:12:14.100 UTC [5802] FATAL:  recovery ended before configured recovery target was reached
2026-11-25 13:12:14.101 UTC [5795] LOG:  startup process (PID 5802) exited with exit code 1
2026-11-25 13:12:14.102 UTC [5830] FATAL:  the database system is shutting down
";
        assert_eq!(
            last_error_line(log).as_deref(),
            Some("FATAL: recovery ended before configured recovery target was reached")
        );
        assert_eq!(
            last_error_line("LOG: database system is ready to accept connections"),
            None
        );
    }

    #[test]
    fn the_last_replayed_commit_is_read_back_from_the_log() {
        let log = "2026-11-25 13:12:14.087 UTC [5802] LOG:  last completed transaction was \
                   at log time 2026-11-25 13:12:07.06894+00\n";
        assert_eq!(
            last_completed_transaction(log).map(|t| t.to_rfc3339()),
            Some("2026-11-25T13:12:07.068940+00:00".to_string())
        );
        assert_eq!(last_completed_transaction("LOG: redo done"), None);
    }
}
