//! Running PostgreSQL and pgBackRest programs as the fleet's OS user.
//!
//! Programs get an argument array, never a shell, and a clean environment:
//! the desk's own variables (database URL, cipher passphrase) stay out of
//! every child and out of `/proc/<pid>/environ`. Each child leads its own
//! process group, so a cancelled step can stop it together with the
//! helpers it forked.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::backend::StepError;

/// The OS account PostgreSQL and pgBackRest run as. PostgreSQL refuses root.
#[derive(Debug, Clone)]
pub struct OsUser {
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// Children need a switch of user: the desk runs as root.
    switch: bool,
}

impl OsUser {
    /// Looks the account up. The desk must run as root (and then switches
    /// to the account for every child) or as the account itself.
    pub fn lookup(name: &str) -> Result<OsUser, String> {
        let (uid, gid, home) = super::sys::user_by_name(name)?
            .ok_or_else(|| format!("the OS user {name:?} (PG_OS_USER) does not exist"))?;
        let me = super::sys::effective_uid();
        if uid == 0 {
            return Err(format!(
                "PG_OS_USER {name:?} is root, and PostgreSQL refuses to run as root"
            ));
        }
        if me != 0 && me != uid {
            return Err(format!(
                "the pgbackrest backend must run as root or as {name:?} (PG_OS_USER)"
            ));
        }
        Ok(OsUser {
            uid,
            gid,
            home: PathBuf::from(home),
            switch: me == 0,
        })
    }

    /// A command for `program` that runs as this user in `cwd`, with a
    /// minimal environment, in its own process group.
    pub fn command(&self, program: impl AsRef<OsStr>, cwd: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &self.home)
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .current_dir(cwd)
            .stdin(Stdio::null())
            .process_group(0);
        if self.switch {
            command.uid(self.uid).gid(self.gid);
        }
        command
    }

    /// Gives a file or directory the desk created to this user.
    pub fn own(&self, path: &Path) -> std::io::Result<()> {
        if self.switch {
            std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))?;
        }
        Ok(())
    }
}

/// How a finished program ended, with what it printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The last lines of stderr (else stdout): enough to say why, no more.
    pub fn reason(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = &lines[lines.len().saturating_sub(6)..];
        tail.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
    }
}

/// Why a program did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} did not finish within {seconds} s")]
    TimedOut { program: String, seconds: u64 },
    #[error("interrupted")]
    Cancelled,
    #[error("reading the output of {program}: {source}")]
    Io {
        program: String,
        source: std::io::Error,
    },
}

impl RunError {
    /// As a step failure: a missing program cannot be fixed by retrying.
    pub fn into_step(self) -> StepError {
        match self {
            RunError::Cancelled => StepError::Interrupted,
            RunError::Spawn { .. } => StepError::fatal("fleet_tool_missing", self.to_string()),
            RunError::TimedOut { .. } => StepError::retryable("fleet_timeout", self.to_string()),
            RunError::Io { .. } => StepError::retryable("fleet_io", self.to_string()),
        }
    }
}

fn program_name(command: &Command) -> String {
    let program = command.as_std().get_program();
    Path::new(program)
        .file_name()
        .unwrap_or(program)
        .to_string_lossy()
        .into_owned()
}

/// Stops a process and everything it forked (it leads its own group),
/// and waits (a few seconds at most) until none of them runs any more.
async fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid else {
        return;
    };
    let pgid = pid as i32;
    super::sys::kill_group(pgid, libc::SIGKILL);
    for _ in 0..250 {
        if !super::sys::group_alive(pgid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::warn!(pgid, "processes still run after being killed");
}

/// Runs a command to its end, handing each stdout line to `on_line` as it
/// comes. Cancelling or running out of time kills the whole process group.
pub async fn run(
    command: Command,
    timeout: Duration,
    cancel: &CancellationToken,
    on_line: impl FnMut(&str),
) -> Result<Finished, RunError> {
    run_tracked(command, timeout, cancel, None, on_line).await
}

/// Like `run`, and keeps the child's pid in `pid_file` while it runs, so
/// that whoever takes over after this process died can stop it.
pub async fn run_tracked(
    mut command: Command,
    timeout: Duration,
    cancel: &CancellationToken,
    pid_file: Option<&Path>,
    mut on_line: impl FnMut(&str),
) -> Result<Finished, RunError> {
    let program = program_name(&command);
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| RunError::Spawn {
        program: program.clone(),
        source,
    })?;
    let pid = child.id();
    if let (Some(path), Some(pid)) = (pid_file, pid) {
        std::fs::write(path, pid.to_string()).map_err(|source| RunError::Io {
            program: program.clone(),
            source,
        })?;
    }
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let name = program.clone();
    let work = async move {
        let io_error = |source| RunError::Io {
            program: name.clone(),
            source,
        };
        let mut err_text = String::new();
        let read_err = stderr.read_to_string(&mut err_text);
        let read_out = async {
            let mut lines = BufReader::new(stdout).lines();
            let mut out_text = String::new();
            while let Some(line) = lines.next_line().await? {
                on_line(&line);
                out_text.push_str(&line);
                out_text.push('\n');
            }
            Ok::<_, std::io::Error>(out_text)
        };
        let (out, err) = tokio::join!(read_out, read_err);
        let out = out.map_err(io_error)?;
        err.map_err(io_error)?;
        let status = child.wait().await.map_err(io_error)?;
        Ok::<_, RunError>(Finished {
            status,
            stdout: out,
            stderr: err_text,
        })
    };

    let outcome = tokio::select! {
        outcome = tokio::time::timeout(timeout, work) => match outcome {
            Ok(finished) => finished,
            Err(_) => {
                kill_group(pid).await;
                Err(RunError::TimedOut {
                    program,
                    seconds: timeout.as_secs(),
                })
            }
        },
        _ = cancel.cancelled() => {
            kill_group(pid).await;
            Err(RunError::Cancelled)
        }
    };
    if let Some(path) = pid_file {
        let _ = std::fs::remove_file(path);
    }
    outcome
}

/// Stops a program an earlier, dead worker left running, named by the pid
/// file it kept; `expect` must appear in its command line, so a reused
/// pid is left alone.
pub async fn stop_leftover(pid_file: &Path, expect: &str) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return;
    };
    if super::sys::alive(pid)
        && super::sys::command_line(pid).is_some_and(|cmd| cmd.contains(expect))
    {
        tracing::warn!(pid, "stopping a restore left running by an earlier attempt");
        super::sys::kill_group(pid, libc::SIGKILL);
        super::sys::kill(pid, libc::SIGKILL);
        for _ in 0..250 {
            if !super::sys::alive(pid) && !super::sys::group_alive(pid) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let _ = std::fs::remove_file(pid_file);
}

/// Runs a command that is not worth cancelling half-way (short, or one
/// that must not be left half done).
pub async fn run_quiet(command: Command, timeout: Duration) -> Result<Finished, RunError> {
    run(command, timeout, &CancellationToken::new(), |_| {}).await
}

/// Runs a command whose output is binary (a file read from a repository):
/// its exit status, its stdout as bytes and its stderr, within `timeout`.
pub async fn run_binary(
    mut command: Command,
    timeout: Duration,
) -> Result<(ExitStatus, Vec<u8>, String), RunError> {
    let program = program_name(&command);
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| RunError::Spawn {
        program: program.clone(),
        source,
    })?;
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let name = program.clone();
    let work = async move {
        let io_error = |source| RunError::Io {
            program: name.clone(),
            source,
        };
        let mut out = Vec::new();
        let mut err = String::new();
        let (read_out, read_err) = tokio::join!(
            stdout.read_to_end(&mut out),
            stderr.read_to_string(&mut err)
        );
        read_out.map_err(io_error)?;
        read_err.map_err(io_error)?;
        let status = child.wait().await.map_err(io_error)?;
        Ok::<_, RunError>((status, out, err))
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(done) => done,
        Err(_) => {
            kill_group(pid).await;
            Err(RunError::TimedOut {
                program,
                seconds: timeout.as_secs(),
            })
        }
    }
}
