//! Settings from flags and environment variables. Secrets never appear in
//! `Debug` output, so settings can be logged whole.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use chrono::Duration;
use clap::{Args, ValueEnum};

use crate::domain::catalog::RetentionPolicy;
use crate::domain::restore_job::RetryPolicy;
use crate::store::redact_url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// A simulated fleet inside the process: the embedded default.
    Sandbox,
    /// Real PostgreSQL clusters backed up by pgBackRest into three zones.
    Pgbackrest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Args)]
pub struct Settings {
    /// Where tickets live: sqlite://file.db (embedded) or postgres://… (several instances).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://restore-desk.db",
        global = true
    )]
    pub database_url: String,

    /// Address the web server listens on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: String,

    /// A request's headers must arrive within this many seconds of the
    /// connection being ready for them; idle keep-alive connections close
    /// after it too.
    #[arg(
        long,
        env = "HEADER_READ_TIMEOUT_SECONDS",
        default_value_t = 10,
        global = true
    )]
    pub header_read_timeout_seconds: u64,

    /// A connection on which nothing moves for this many seconds is closed,
    /// whatever it was doing.
    #[arg(
        long,
        env = "IDLE_TIMEOUT_SECONDS",
        default_value_t = 60,
        global = true
    )]
    pub idle_timeout_seconds: u64,

    /// Connections served at once; more wait until one closes. Defaults to
    /// what the open-file limit leaves room for, at most 10,000.
    #[arg(long, env = "MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,

    /// Longest a request waits for a PostgreSQL connection: while the
    /// database is down, requests answer 503 after this long.
    #[arg(
        long,
        env = "DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 1000,
        global = true
    )]
    pub db_acquire_timeout_ms: u64,

    /// The address people reach the desk at, for links in emails.
    /// Defaults to http://<BIND>.
    #[arg(long, env = "PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// The fleet restores run against.
    #[arg(
        long,
        env = "BACKEND",
        value_enum,
        default_value = "sandbox",
        global = true
    )]
    pub backend: BackendKind,

    /// How long backups are kept.
    #[arg(long, env = "RETENTION_DAYS", default_value_t = 35, global = true)]
    pub retention_days: i64,

    /// SMTP server for email, e.g. smtp://127.0.0.1:2525 or smtps://user:pass@host.
    /// When unset, emails are written to MAIL_DIR.
    #[arg(long, env = "SMTP_URL", global = true)]
    pub smtp_url: Option<String>,

    /// Longest an SMTP exchange (connect, each command, DATA) may take
    /// before the attempt counts as failed and is retried later.
    #[arg(
        long,
        env = "SMTP_TIMEOUT_SECONDS",
        default_value_t = 20,
        global = true
    )]
    pub smtp_timeout_seconds: u64,

    /// Folder of the file mail transport: one .eml file per message.
    #[arg(long, env = "MAIL_DIR", default_value = "mail", global = true)]
    pub mail_dir: PathBuf,

    /// Sender of every email.
    #[arg(
        long,
        env = "MAIL_FROM",
        default_value = "Restore Desk <desk@restore-desk.localhost>",
        global = true
    )]
    pub mail_from: String,

    /// Where replies to the desk's emails go: a support mailbox people
    /// watch. Unset: `support@` the domain of MAIL_FROM.
    #[arg(long, env = "MAIL_REPLY_TO", global = true)]
    pub mail_reply_to: Option<String>,

    /// The key endpoint secrets are derived from. Every process of one desk
    /// needs the same; unset, the desk keeps a key of its own in its
    /// database (fine for one machine; set it where backups of the database
    /// travel further than the desk does). Changing it changes every secret.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true, global = true)]
    pub secret_key: Option<String>,

    /// Longest a post to an endpoint (resolve, connect, send, answer) may
    /// take before the attempt counts as failed and is retried later.
    #[arg(
        long,
        env = "WEBHOOK_TIMEOUT_SECONDS",
        default_value_t = 10,
        global = true
    )]
    pub webhook_timeout_seconds: u64,

    /// Accept plain `http://127.0.0.1:…` endpoints: a receiver on this
    /// machine, for trials and tests. Everything else must be HTTPS.
    #[arg(
        long,
        env = "WEBHOOK_ALLOW_HTTP_LOOPBACK",
        default_value = "false",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set,
        global = true
    )]
    pub webhook_allow_http_loopback: bool,

    /// Accept endpoints on private, loopback and link-local addresses (an
    /// admin's choice for receivers inside their own network).
    #[arg(
        long,
        env = "WEBHOOK_ALLOW_PRIVATE",
        default_value = "false",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set,
        global = true
    )]
    pub webhook_allow_private: bool,

    /// How long each simulated restore step takes (sandbox backend).
    #[arg(long, env = "SANDBOX_STEP_MS", default_value_t = 3000, global = true)]
    pub sandbox_step_ms: u64,

    /// Sign-in attempts per minute, per address and per account (0: no limit).
    #[arg(long, env = "LOGIN_RATE_LIMIT", default_value_t = 10, global = true)]
    pub login_rate_limit: u32,

    /// Longest an account that keeps failing to sign in makes strangers
    /// wait (addresses it signed in from before never wait).
    #[arg(
        long,
        env = "LOGIN_BACKOFF_MAX_SECONDS",
        default_value_t = 900,
        global = true
    )]
    pub login_backoff_max_seconds: u64,

    /// Restore requests filed per minute, per user and per address (0: no limit).
    #[arg(long, env = "FILING_RATE_LIMIT", default_value_t = 10, global = true)]
    pub filing_rate_limit: u32,

    /// Restore jobs one process runs at once.
    #[arg(long, env = "WORKERS", default_value_t = 2, global = true)]
    pub workers: usize,

    /// The restore host this process's workers run restores on (`worker
    /// --host`): a job is placed on a host when a worker takes it up, and
    /// only that host's workers carry it on.
    #[arg(
        long = "host",
        env = "RESTORE_HOST",
        default_value = "local",
        global = true
    )]
    pub restore_host: String,

    /// A TOML fleet description (`[[host]]` tables) read at start: each host
    /// in it is added or replaced; hosts not in it are kept. A file that
    /// does not read, or names a host wrongly, stops the process at start.
    #[arg(long, env = "FLEET_CONFIG", global = true)]
    pub fleet_config: Option<PathBuf>,

    /// Restores (drills included) one restore host runs at once.
    #[arg(long, env = "MAX_RESTORES", default_value_t = 2, global = true)]
    pub max_restores: i64,

    /// A restore host whose workers have not been heard from for this long
    /// is lost: another host starts its restores over.
    #[arg(long, env = "HOST_LOST_SECONDS", default_value_t = 90, global = true)]
    pub host_lost_seconds: i64,

    /// How long a restored copy paused for the customer's inspection waits
    /// for their decision before it is handed over as it is.
    #[arg(long, env = "INSPECT_HOURS", default_value_t = 24, global = true)]
    pub inspect_hours: i64,

    /// Every cluster's backups are restored as a test this often (an admin
    /// may set another interval per cluster); 0 schedules none (admins can
    /// still start one).
    #[arg(
        long,
        env = "DRILL_INTERVAL_HOURS",
        default_value_t = 168,
        global = true
    )]
    pub drill_interval_hours: i64,

    /// The sandbox's restore host has this much disk for restores.
    #[arg(
        long,
        env = "SANDBOX_HOST_DISK_GIB",
        default_value_t = 2048,
        global = true
    )]
    pub sandbox_host_disk_gib: i64,

    /// How long a worker's claim on a job lasts without a heartbeat.
    #[arg(long, env = "LEASE_SECONDS", default_value_t = 30, global = true)]
    pub lease_seconds: i64,

    /// How long this process trusts an API token it has checked without
    /// asking the database again (0: ask on every call). Signing out or an
    /// admin's change to the account ends the token here at once, and in
    /// other processes within this time.
    #[arg(
        long,
        env = "API_TOKEN_CACHE_MS",
        default_value_t = 1000,
        global = true
    )]
    pub api_token_cache_ms: i64,

    /// How long a process trusts a ticket, session or user it read, while
    /// it has written nothing since: a write by another process shows at
    /// most this late (0: read every time).
    #[arg(long, env = "READ_CACHE_MS", default_value_t = 1000, global = true)]
    pub read_cache_ms: u64,

    /// Attempts per restore step before the job fails.
    #[arg(long, env = "MAX_ATTEMPTS", default_value_t = 5, global = true)]
    pub max_attempts: u32,

    /// First retry delay of a restore step; it doubles at each attempt.
    #[arg(long, env = "RETRY_BASE_MS", default_value_t = 2000, global = true)]
    pub retry_base_ms: i64,

    /// On shutdown, how long a running restore step may take to finish
    /// before it is interrupted and its lease released for another worker.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_SECONDS",
        default_value_t = 10,
        global = true
    )]
    pub shutdown_grace_seconds: u64,

    /// Staff are warned when an open ticket's deadline is this close.
    #[arg(
        long,
        env = "DEADLINE_WARNING_HOURS",
        default_value_t = 24,
        global = true
    )]
    pub deadline_warning_hours: i64,

    /// How often automatic backups, expiry and deadline checks run.
    #[arg(long, env = "SCHEDULER_SECONDS", default_value_t = 60, global = true)]
    pub scheduler_seconds: u64,

    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// Bearer token that opens `/metrics` from other hosts; without it only
    /// loopback may scrape.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true, global = true)]
    pub metrics_token: Option<String>,

    /// Password of the demo users.
    #[arg(long, env = "DEMO_PASSWORD", default_value = "demo", global = true)]
    pub demo_password: String,

    /// Working folder of the pgbackrest backend: clusters, repositories, logs.
    #[arg(long, env = "FLEET_DIR", default_value = "fleet", global = true)]
    pub fleet_dir: PathBuf,

    /// This host's certificates in the fleet across hosts: its folder of
    /// `restore-desk fleet certs` (CA, server and client certificate and
    /// key). `FLEET_DIR/tls` when unset.
    #[arg(long, env = "FLEET_TLS_DIR", global = true)]
    pub fleet_tls_dir: Option<PathBuf>,

    /// PostgreSQL server binaries for the pgbackrest backend.
    #[arg(
        long,
        env = "PG_BIN_DIR",
        default_value = "/usr/lib/postgresql/15/bin",
        global = true
    )]
    pub pg_bin_dir: PathBuf,

    /// OS user that runs PostgreSQL and pgBackRest (PostgreSQL refuses root).
    #[arg(long, env = "PG_OS_USER", default_value = "postgres", global = true)]
    pub pg_os_user: String,

    /// Passphrase base for the AES-256 repositories; one is generated and kept
    /// in FLEET_DIR when unset.
    #[arg(
        long,
        env = "BACKUP_CIPHER_PASS",
        hide_env_values = true,
        global = true
    )]
    pub backup_cipher_pass: Option<String>,

    /// Where the web desk's stylesheet and scripts are. Defaults to
    /// `./static`, else the source tree's.
    #[arg(long, env = "STATIC_DIR", global = true)]
    pub static_dir: Option<PathBuf>,

    /// TCP ports on 127.0.0.1 the pgbackrest fleet's clusters may use, e.g. 55400-55999.
    #[arg(long, env = "FLEET_PORTS", default_value = "55400-55999", value_parser = parse_port_range, global = true)]
    pub fleet_ports: RangeInclusive<u16>,

    /// PostgreSQL's archive_timeout on source clusters: a commit is archived,
    /// and so restorable, within about this many seconds.
    #[arg(
        long,
        env = "ARCHIVE_TIMEOUT_SECONDS",
        default_value_t = 20,
        global = true
    )]
    pub archive_timeout_seconds: u64,

    /// A full backup per zone when the newest one is older than this.
    #[arg(
        long,
        env = "BACKUP_INTERVAL_HOURS",
        default_value_t = 24,
        global = true
    )]
    pub backup_interval_hours: i64,
}

/// `55400-55999`: an inclusive range of unprivileged ports.
fn parse_port_range(text: &str) -> Result<RangeInclusive<u16>, String> {
    let (low, high) = text
        .split_once('-')
        .ok_or_else(|| format!("{text:?} is not a port range such as 55400-55999"))?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .map_err(|_| format!("{p:?} is not a port number"))
    };
    let (low, high) = (port(low)?, port(high)?);
    if low < 1024 || low > high {
        return Err(format!(
            "{text:?}: ports must be at least 1024 and the range not empty"
        ));
    }
    Ok(low..=high)
}

impl Settings {
    pub fn retention(&self) -> RetentionPolicy {
        RetentionPolicy::days(self.retention_days)
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            base_delay: Duration::milliseconds(self.retry_base_ms.max(0)),
            max_delay: Duration::minutes(5).max(Duration::milliseconds(self.retry_base_ms)),
            wait: RetryPolicy::default().wait,
            decision_window: Duration::hours(self.inspect_hours.max(1)),
        }
    }

    /// Where this process's workers place the jobs they take up.
    pub fn placement(&self) -> crate::store::Placement {
        crate::store::Placement {
            host: self.restore_host.clone(),
            max_restores: self.max_restores.max(1),
            free_bytes: None,
        }
    }

    /// The drill interval of a cluster: its own, or the desk's; none when
    /// neither schedules drills.
    pub fn drill_interval(&self, own_hours: Option<i64>) -> Option<Duration> {
        let hours = own_hours.unwrap_or(self.drill_interval_hours);
        (hours > 0).then(|| Duration::hours(hours))
    }

    /// The real fleet's setup, for the pgbackrest backend.
    pub fn fleet(&self) -> crate::backend::pgbackrest::FleetConfig {
        crate::backend::pgbackrest::FleetConfig {
            fleet_dir: self.fleet_dir.clone(),
            pg_bin_dir: self.pg_bin_dir.clone(),
            os_user: self.pg_os_user.clone(),
            cipher_pass: self.backup_cipher_pass.clone(),
            retention_days: self.retention_days,
            archive_timeout_secs: self.archive_timeout_seconds.max(1),
            backup_interval: Duration::hours(self.backup_interval_hours.max(1)),
            ports: self.fleet_ports.clone(),
            replay_timeout: std::time::Duration::from_secs(600),
            host: self.restore_host.clone(),
            tls_dir: self.fleet_tls_dir.clone(),
        }
    }

    /// Which addresses endpoints may have.
    pub fn url_policy(&self) -> crate::domain::endpoint::UrlPolicy {
        crate::domain::endpoint::UrlPolicy {
            allow_http_loopback: self.webhook_allow_http_loopback,
            allow_private: self.webhook_allow_private,
        }
    }

    /// A post's bound: at least a second, and inside the claim's send budget.
    pub fn webhook_timeout(&self) -> std::time::Duration {
        let budget = crate::notify::relay::SEND_BUDGET.num_seconds() as u64 - 5;
        std::time::Duration::from_secs(self.webhook_timeout_seconds.clamp(1, budget))
    }

    /// The SMTP exchange's bound: at least a second, and short enough that
    /// an attempt always ends inside its claim's send budget.
    pub fn smtp_timeout(&self) -> std::time::Duration {
        let budget = crate::notify::relay::SEND_BUDGET.num_seconds() as u64 - 5;
        std::time::Duration::from_secs(self.smtp_timeout_seconds.clamp(1, budget))
    }

    /// The connection limit: as set, or what the open-file limit leaves
    /// after room for the database, the fleet's pipes and the logs.
    pub fn max_connections(&self) -> usize {
        if let Some(n) = self.max_connections {
            return n.max(1);
        }
        let files = crate::web::server::open_file_limit().unwrap_or(1024) as usize;
        files.saturating_sub(256).clamp(64, 10_000)
    }

    pub fn db_acquire_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.db_acquire_timeout_ms.max(100))
    }

    pub fn lease(&self) -> Duration {
        Duration::seconds(self.lease_seconds.max(2))
    }

    pub fn public_url(&self) -> String {
        let url = match &self.public_url {
            Some(url) => url.clone(),
            None => format!("http://{}", self.bind),
        };
        url.trim_end_matches('/').to_string()
    }

    /// Cookies get the Secure flag when people reach the desk over HTTPS.
    /// How long remembered reads are trusted (`READ_CACHE_MS`).
    pub fn read_cache(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.read_cache_ms)
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url().starts_with("https://")
    }

    /// Checks values clap cannot: one clear line per problem.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=3650).contains(&self.retention_days) {
            return Err(format!(
                "RETENTION_DAYS must be between 1 and 3650, not {}",
                self.retention_days
            ));
        }
        if self.workers == 0 {
            return Err("WORKERS must be at least 1".into());
        }
        if self.max_restores < 1 {
            return Err("MAX_RESTORES must be at least 1".into());
        }
        if !(5..=86_400).contains(&self.host_lost_seconds) {
            return Err(format!(
                "HOST_LOST_SECONDS must be between 5 and 86400, not {}",
                self.host_lost_seconds
            ));
        }
        if self.drill_interval_hours < 0 {
            return Err("DRILL_INTERVAL_HOURS must be 0 (no scheduled drills) or more".into());
        }
        let host_ok = !self.restore_host.is_empty()
            && self.restore_host.len() <= 63
            && self
                .restore_host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !host_ok {
            return Err(format!(
                "RESTORE_HOST {:?} must be a host name: letters, digits, '-' and '.'",
                self.restore_host
            ));
        }
        if let Err(e) = self.mail_from.parse::<lettre::message::Mailbox>() {
            return Err(format!(
                "MAIL_FROM {:?} is not an address: {e}",
                self.mail_from
            ));
        }
        if let Some(url) = &self.smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            return Err(format!(
                "SMTP_URL {:?} must start with smtp:// or smtps://",
                redact_url(url)
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("bind", &self.bind)
            .field("db_acquire_timeout_ms", &self.db_acquire_timeout_ms)
            .field(
                "header_read_timeout_seconds",
                &self.header_read_timeout_seconds,
            )
            .field("idle_timeout_seconds", &self.idle_timeout_seconds)
            .field("max_connections", &self.max_connections)
            .field("public_url", &self.public_url())
            .field("backend", &self.backend)
            .field("retention_days", &self.retention_days)
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("smtp_timeout_seconds", &self.smtp_timeout_seconds)
            .field("mail_dir", &self.mail_dir)
            .field("mail_from", &self.mail_from)
            .field("sandbox_step_ms", &self.sandbox_step_ms)
            .field("login_rate_limit", &self.login_rate_limit)
            .field("login_backoff_max_seconds", &self.login_backoff_max_seconds)
            .field("filing_rate_limit", &self.filing_rate_limit)
            .field("workers", &self.workers)
            .field("restore_host", &self.restore_host)
            .field("max_restores", &self.max_restores)
            .field("host_lost_seconds", &self.host_lost_seconds)
            .field("fleet_tls_dir", &self.fleet_tls_dir)
            .field("fleet_config", &self.fleet_config)
            .field("drill_interval_hours", &self.drill_interval_hours)
            .field("inspect_hours", &self.inspect_hours)
            .field("sandbox_host_disk_gib", &self.sandbox_host_disk_gib)
            .field("lease_seconds", &self.lease_seconds)
            .field("max_attempts", &self.max_attempts)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("shutdown_grace_seconds", &self.shutdown_grace_seconds)
            .field("deadline_warning_hours", &self.deadline_warning_hours)
            .field("scheduler_seconds", &self.scheduler_seconds)
            .field("log_format", &self.log_format)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .field("demo_password", &"***")
            .field("fleet_dir", &self.fleet_dir)
            .field("pg_bin_dir", &self.pg_bin_dir)
            .field("pg_os_user", &self.pg_os_user)
            .field(
                "backup_cipher_pass",
                &self.backup_cipher_pass.as_ref().map(|_| "***"),
            )
            .field("static_dir", &self.static_dir)
            .field("fleet_ports", &self.fleet_ports)
            .field("archive_timeout_seconds", &self.archive_timeout_seconds)
            .field("backup_interval_hours", &self.backup_interval_hours)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    #[test]
    fn debug_output_hides_secrets() {
        let cli = Cli::parse_from([
            "x",
            "--database-url",
            "postgres://desk:hunter2@db.example/desk",
            "--smtp-url",
            "smtps://mailer:s3cret@mail.example",
            "--demo-password",
            "letmein",
            "--backup-cipher-pass",
            "aes-key-material",
            "--metrics-token",
            "scrape-secret",
        ]);
        let shown = format!("{:?}", cli.settings);
        for secret in [
            "hunter2",
            "s3cret",
            "letmein",
            "aes-key-material",
            "scrape-secret",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert!(shown.contains("db.example"));
    }
}
