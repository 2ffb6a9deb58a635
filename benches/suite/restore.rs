//! Restore figure: a real point-in-time restore with the pgbackrest
//! backend, from staff approving the ticket until the desk marks the new
//! cluster ready; against the same restore done by hand the way an operator
//! would script it: `pgbackrest restore` of the same backup set from the
//! same repository to the same target, `pg_ctl start -w`, then polling
//! `pg_is_in_recovery()` until the server promoted.
//!
//! One source cluster (PostgreSQL 15, three encrypted repositories, some
//! 90 MB of data directory, a full backup in each) lives in a temporary
//! fleet folder. Runs alternate which side goes first; between runs the
//! restored servers are stopped and dirty pages written out, so neither
//! side pays for the other's leftovers. Both sides are checked to hold
//! exactly the rows committed before the target.

use restore_desk::domain::ids::{SubscriptionId, UserId};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::Connection as _;
use uuid::Uuid;

use super::fleet;
use super::support::{BenchDb, Db, Figure, Target, quick, settings};
use restore_desk::app::App;
use restore_desk::backend::pgbackrest::{PgBackRestBackend, target_text};
use restore_desk::clock::SystemClock;
use restore_desk::desk::{FilingRequest, act, file_ticket};
use restore_desk::domain::actor::Role;
use restore_desk::domain::catalog::{RestorePlan, Zone, ZoneSet};
use restore_desk::domain::cluster::{Cluster, ClusterStatus};
use restore_desk::domain::restore_job::JobState;
use restore_desk::domain::sla::Severity;
use restore_desk::domain::ticket::TicketCommand;
use restore_desk::domain::validation::TargetInput;
use restore_desk::store::{RestoreJob, Scope, Subscription, User};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const OS_USER: &str = "postgres";
/// The fleet's clusters (the source and the desk's restores).
const FLEET_PORTS: &str = "56300-56319";
/// Ports for the restores done by hand, outside the fleet's range.
const HAND_PORTS: std::ops::RangeInclusive<u16> = 56320..=56339;
/// About 150 bytes a row: a data directory of some 90 MB to restore.
const SAMPLE_ROWS: i64 = 300_000;
/// How often the script by hand asks whether the server promoted.
const POLL: StdDuration = StdDuration::from_millis(100);

pub async fn run() -> Vec<Figure> {
    let runs = if quick() { 1 } else { 3 };
    let bench = Bench::new().await;
    let mut ours = Vec::new();
    let mut baseline = Vec::new();
    // The backup set, repository and target the engine restored.
    let mut plan: Option<(RestorePlan, DateTime<Utc>)> = None;
    for run in 0..runs {
        // The first run is the desk's: the baseline restores the backup
        // set the engine chose.
        let desk_first = run % 2 == 0;
        for side in [desk_first, !desk_first] {
            settle().await;
            if side {
                let (seconds, job) = bench.ours(run).await;
                let chosen = job.plan().expect("the job recorded its plan");
                match &plan {
                    None => plan = Some((chosen, job.target_time)),
                    Some((first, target)) => assert_eq!(
                        (&first.snapshot_id, first.zone, *target),
                        (&chosen.snapshot_id, chosen.zone, job.target_time),
                        "every run restores the same backup set to the same moment"
                    ),
                }
                ours.push(seconds);
            } else {
                let (plan, target) = plan.as_ref().expect("the desk ran first");
                baseline.push(bench.by_hand(run, plan, *target).await);
            }
        }
    }
    drop(bench);
    vec![Figure::new(
        "restore: approve -> cluster ready, pgBackRest (median)",
        median(&mut ours),
        median(&mut baseline),
        "s",
        Target::AtMostPlus(1.10, 5.0),
    )]
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

/// Stopped servers' dirty pages written out, so the next measurement does
/// not share the disk with the last one's write-back.
async fn settle() {
    let _ = tokio::process::Command::new("sync").status().await;
    tokio::time::sleep(StdDuration::from_millis(500)).await;
}

/// The fleet user's uid, gid and home, from the password file.
fn os_user() -> &'static (u32, u32, String) {
    static USER: std::sync::OnceLock<(u32, u32, String)> = std::sync::OnceLock::new();
    USER.get_or_init(|| {
        let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
        passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 5 && f[0] == OS_USER)
            .map(|f| {
                (
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                    f[5].to_string(),
                )
            })
            .unwrap_or_else(|| panic!("the OS user {OS_USER} is needed"))
    })
}

/// A command run as the fleet's user, without a shell, in a clean
/// environment (as the backend runs its own).
fn as_postgres(program: impl AsRef<std::ffi::OsStr>, cwd: &Path) -> tokio::process::Command {
    let (uid, gid, home) = os_user();
    let mut command = tokio::process::Command::new(program);
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home)
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .uid(*uid)
        .gid(*gid);
    command
}

/// Stops the server of `data` at once, if one runs there.
fn stop_server(data: &Path) {
    if data.join("postmaster.pid").exists() {
        let _ = std::process::Command::new(Path::new(PG_BIN).join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(data)
            .uid(os_user().0)
            .gid(os_user().1)
            .current_dir("/")
            .output();
    }
}

/// The desk on a real fleet with one source cluster and the moment T to
/// restore to. Dropping it stops every server it started.
struct Bench {
    app: App,
    fleet: Arc<PgBackRestBackend>,
    source: Cluster,
    alice: User,
    sam: User,
    target: DateTime<Utc>,
    _db: BenchDb,
    root: tempfile::TempDir,
}

impl Drop for Bench {
    fn drop(&mut self) {
        fleet::stop_servers(&self.root.path().join("fleet"));
        for entry in fleet::entries(&self.root.path().join("by-hand")) {
            stop_server(&entry.join("data"));
        }
    }
}

impl Bench {
    async fn new() -> Bench {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = BenchDb::new(Db::Sqlite).await;
        let fleet_dir = root.path().join("fleet").display().to_string();
        let settings = settings(
            &db,
            &[
                "--backend",
                "pgbackrest",
                "--fleet-dir",
                &fleet_dir,
                "--fleet-ports",
                FLEET_PORTS,
                "--pg-bin-dir",
                PG_BIN,
                "--pg-os-user",
                OS_USER,
                "--archive-timeout-seconds",
                "2",
                "--backup-cipher-pass",
                "a passphrase only this benchmark uses",
            ],
        );
        let (app, fleet) = restore_desk::cli::build_with_fleet(settings, Arc::new(SystemClock))
            .await
            .expect("the desk on a pgbackrest fleet");
        let fleet = fleet.expect("the pgbackrest fleet");
        let store = &app.store;
        let now = Utc::now();
        let contoso = Subscription {
            id: SubscriptionId::new(),
            slug: "contoso".into(),
            name: "Contoso".into(),
            created_at: now,
        };
        store.create_subscription(&contoso).await.unwrap();
        let person = |email: &str, role: Role, subscription: Option<Uuid>| User {
            id: UserId::new(),
            email: restore_desk::store::Email::parse(email).unwrap(),
            display_name: email.split('@').next().unwrap().into(),
            password_hash: "not used".into(),
            role,
            subscription_id: subscription.map(Into::into),
            time_zone: "UTC".into(),
            disabled: false,
            session_epoch: 0,
            must_change_password: false,
            created_at: now,
        };
        let alice = person(
            "alice@contoso.example",
            Role::Customer,
            Some(contoso.id.uuid()),
        );
        let sam = person("sam@support.example", Role::Staff, None);
        store.create_user(&alice, None).await.unwrap();
        store.create_user(&sam, None).await.unwrap();
        for zone in Zone::ALL {
            store
                .ensure_zone("westeurope", zone, true, now)
                .await
                .unwrap();
        }
        let source = fleet::source_record(&fleet, contoso.id.uuid(), "orders-prod", 8, 512);
        store.insert_cluster(&source).await.unwrap();
        let mut bench = Bench {
            app,
            fleet,
            source,
            alice,
            sam,
            target: now,
            _db: db,
            root,
        };
        // From here on a panic stops the servers.
        let (fleet, source) = (&bench.fleet, &bench.source);
        fleet.create_source(source, ZoneSet::NONE).await.unwrap();
        fleet.load_sample_data(source, SAMPLE_ROWS).await.unwrap();
        for zone in Zone::ALL {
            fleet.backup(source.id, zone).await.unwrap();
        }
        // Rows 1-3, then T, then rows 4-6: a restore to T holds 1-3.
        bench.target = fleet::rows_around_t1(&source.connection).await;
        bench.wait_restorable().await;
        bench
    }

    /// Polls until the target is inside the source's restorable window.
    async fn wait_restorable(&self) {
        let backend = &*self.app.backend;
        fleet::wait_restorable(
            backend,
            &self.source,
            self.target,
            self.app.policy(),
            |_| true,
        )
        .await;
    }

    /// Files a ticket for T as the customer, claims it as staff, then
    /// approves it and runs the engine until the job succeeded. Seconds
    /// from the approval (before the desk re-checks the target) to the
    /// commit that marks the new cluster ready (`finished_at`).
    async fn ours(&self, run: usize) -> (f64, RestoreJob) {
        let app = &self.app;
        let request = FilingRequest {
            transaction: None,
            cluster_id: Some(self.source.id),
            target: TargetInput::Instant {
                target_time: self.target.to_rfc3339_opts(SecondsFormat::Micros, true),
                time_zone: Some("UTC".into()),
            },
            new_cluster_name: format!("bench-copy-{run}"),
            severity: Severity::A,
            description: "benchmark restore".into(),
            inspect: false,
        };
        let ticket = file_ticket(app, &self.alice, &request)
            .await
            .expect("file the request");
        act(app, &self.sam, ticket.id, TicketCommand::Claim, None)
            .await
            .expect("claim");

        let approved_at = Utc::now();
        let started = Instant::now();
        act(
            app,
            &self.sam,
            ticket.id,
            TicketCommand::Approve { inspect: false },
            None,
        )
        .await
        .expect("approve");
        let job = loop {
            restore_desk::engine::drain(app).await.expect("engine");
            let job = app.store.job_for_ticket(ticket.id).await.unwrap().unwrap();
            if job.state.is_terminal() {
                break job;
            }
            // A step waiting out a retry's backoff.
            assert!(
                started.elapsed() < StdDuration::from_secs(300),
                "the restore did not finish: {job:?}"
            );
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        };
        let drained = started.elapsed().as_secs_f64();
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.last_error);
        let ready_at = job.finished_at.expect("a finished job has finished_at");
        let seconds = (ready_at - approved_at).num_microseconds().unwrap() as f64 / 1e6;

        // Where the time went, from the events the desk recorded.
        let events = app.store.ticket_events(ticket.id).await.unwrap();
        let mut parts = Vec::new();
        let mut since = approved_at;
        for event in &events {
            if event.created_at < approved_at {
                continue;
            }
            let label = match (&event.job_id, event.from_state.as_deref()) {
                (None, _) => event.action.to_string(),
                (Some(_), Some(from)) if event.action == "job_step_succeeded" => from.to_string(),
                (Some(_), Some(from)) => format!("{from} ({})", event.action),
                (Some(_), None) => event.action.to_string(),
            };
            let took = (event.created_at - since).num_microseconds().unwrap() as f64 / 1e6;
            parts.push(format!("{label} {took:.2}"));
            since = event.created_at;
        }
        eprintln!(
            "restore: desk run {}: {seconds:.2} s ({drained:.2} s until drain returned): {}",
            run + 1,
            parts.join(", ")
        );

        let restored = app
            .store
            .cluster(job.new_cluster_id, Scope::Everything)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(restored.status, ClusterStatus::Ready);
        assert_eq!(fleet::item_ids(&restored.connection).await, vec![1, 2, 3]);
        stop_server(&self.fleet.restore_dir(job.id, job.run).join("data"));
        (seconds, job)
    }

    /// The same restore by hand: the backup set, repository and target the
    /// engine restored (the same target text), a fresh data directory and a port of
    /// its own, archiving off; `pg_ctl start -w`; `pg_is_in_recovery()`
    /// polled until false. Seconds from creating the directory to the
    /// first answer of false.
    async fn by_hand(&self, run: usize, plan: &RestorePlan, target: DateTime<Utc>) -> f64 {
        let (uid, gid) = (os_user().0, os_user().1);
        let parent = self.root.path().join("by-hand");
        let dir = parent.join(format!("run-{run}"));
        std::fs::create_dir_all(&dir).unwrap();
        for path in [&parent, &dir] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o750)).unwrap();
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        }
        let _done = HandRestore(dir.clone());
        let data = dir.join("data");
        let sockets = dir.join("run");
        let log = dir.join("server.log");
        let port = HAND_PORTS
            .clone()
            .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .expect("a free port for the restore by hand");
        let conf = self
            .fleet
            .cluster_home(self.source.id)
            .join("pgbackrest.conf");

        let started = Instant::now();
        for path in [&data, &sockets] {
            std::fs::create_dir(path).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        }
        let mut restore = as_postgres("pgbackrest", &dir);
        restore
            .arg(format!("--config={}", conf.display()))
            .arg(format!("--stanza={}", self.source.id))
            .arg(format!("--repo={}", plan.zone.index() + 1))
            .arg(format!("--set={}", plan.snapshot_id))
            .arg("--type=time")
            .arg(format!("--target={}", target_text(target)))
            .arg("--target-action=promote")
            .arg("--archive-mode=off")
            .arg(format!("--pg1-path={}", data.display()))
            .arg("--log-level-console=detail")
            .arg("--log-level-stderr=warn")
            .arg("restore");
        let out = restore.output().await.expect("pgbackrest");
        assert!(
            out.status.success(),
            "pgbackrest restore: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let restored = started.elapsed().as_secs_f64();

        // The copy's own port and socket folder on the command line: its
        // configuration still names the source's.
        let mut start = as_postgres(Path::new(PG_BIN).join("pg_ctl"), &dir);
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(format!("-p {port} -k {}", sockets.display()))
            .args(["-w", "-t", "300", "start"]);
        let out = start.output().await.expect("pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let accepting = started.elapsed().as_secs_f64();

        let options = sqlx::postgres::PgConnectOptions::new()
            .host("127.0.0.1")
            .port(port)
            .username("postgres")
            .database("orders");
        let mut conn = sqlx::PgConnection::connect_with(&options)
            .await
            .expect("connect to the copy");
        loop {
            let in_recovery: bool = match sqlx::query_scalar("SELECT pg_is_in_recovery()")
                .fetch_one(&mut conn)
                .await
            {
                Ok(answer) => answer,
                Err(e) => panic!(
                    "the copy stopped answering ({e}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            };
            if !in_recovery {
                break;
            }
            assert!(
                started.elapsed() < StdDuration::from_secs(300),
                "the copy never promoted"
            );
            tokio::time::sleep(POLL).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "restore: by hand run {}: {seconds:.2} s: pgbackrest restore {restored:.2}, \
             pg_ctl start -w {:.2}, until promoted {:.2}",
            run + 1,
            accepting - restored,
            seconds - accepting
        );

        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM items ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(ids, vec![1, 2, 3], "the restore by hand reached T");
        let _ = conn.close().await;
        seconds
    }
}

/// A restore done by hand: its server stopped and its folder removed when
/// the run ends, or fails.
struct HandRestore(PathBuf);

impl Drop for HandRestore {
    fn drop(&mut self) {
        stop_server(&self.0.join("data"));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
