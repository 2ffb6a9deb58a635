//! Restores end to end on the real fleet: a customer files a ticket for a
//! moment between two batches of rows, staff approve it, the engine runs
//! it against PostgreSQL and pgBackRest. The new cluster holds exactly the
//! rows committed before that moment; the source is untouched. Then zone
//! outages, and a worker process killed while pgBackRest is restoring.
//!
//! Tickets are filed, claimed and approved through the JSON API of a desk
//! served on a real socket; the engine runs in the test (or, for the kill,
//! in `restore-desk worker` processes).

mod common;

use restore_desk::domain::ids::SubscriptionId;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use sqlx::Connection as _;

use common::web::{Api, PASSWORD};
use common::{TestDb, fleet};
use reqwest::StatusCode;
use restore_desk::app::App;
use restore_desk::backend::pgbackrest::PgBackRestBackend;
use restore_desk::clock::SystemClock;
use restore_desk::domain::actor::Role;
use restore_desk::domain::catalog::{Zone, ZoneSet};
use restore_desk::domain::cluster::{Cluster, ClusterStatus};
use restore_desk::domain::restore_job::JobState;
use restore_desk::domain::ticket::TicketState;
use restore_desk::domain::validation::ValidationCode;
use restore_desk::engine;
use restore_desk::store::{OutboxQuery, RestoreJob, Scope, Subscription, Ticket, User};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_restore-desk");
const CIPHER: &str = "a passphrase only these tests use";

/// A desk on the real fleet, with one source cluster, a customer and a
/// support engineer. Dropping it stops every server of the fleet.
struct World {
    root: tempfile::TempDir,
    db: TestDb,
    app: App,
    fleet: Arc<PgBackRestBackend>,
    alice: User,
    /// The customer and the support engineer, signed in to the API.
    customer: Api,
    staff: Api,
    source: Cluster,
    ports: String,
    stop_serving: CancellationToken,
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop_serving.cancel();
        for zone in Zone::ALL {
            fleet::set_readable(&self.fleet.repo_dir(zone), true);
        }
        fleet::stop_servers(&self.fleet_dir());
    }
}

impl World {
    async fn new(db: TestDb, ports: &str, sample_rows: i64) -> World {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let fleet_dir = root.path().join("fleet").display().to_string();
        let settings = common::settings(
            &db,
            &[
                "--backend",
                "pgbackrest",
                "--fleet-dir",
                &fleet_dir,
                "--fleet-ports",
                ports,
                "--archive-timeout-seconds",
                "2",
                "--backup-cipher-pass",
                CIPHER,
                "--max-attempts",
                "2",
            ],
        );
        let (app, fleet) = restore_desk::cli::build_with_fleet(settings, Arc::new(SystemClock))
            .await
            .unwrap();
        let fleet = fleet.expect("the pgbackrest fleet");
        let store = &app.store;
        let contoso = Subscription {
            id: SubscriptionId::new(),
            slug: "contoso".into(),
            name: "Contoso".into(),
            created_at: Utc::now(),
        };
        store.create_subscription(&contoso).await.unwrap();
        let password_hash = restore_desk::password::hash(PASSWORD).await.unwrap();
        let alice = User {
            password_hash: password_hash.clone(),
            ..common::user("alice@contoso.example", Role::Customer, Some(contoso.id))
        };
        let sam = User {
            password_hash,
            ..common::user("sam@support.example", Role::Staff, None)
        };
        store.create_user(&alice, None).await.unwrap();
        store.create_user(&sam, None).await.unwrap();
        for zone in Zone::ALL {
            store
                .ensure_zone("westeurope", zone, true, Utc::now())
                .await
                .unwrap();
        }
        let source = fleet::source_record(&fleet, contoso.id.uuid(), "orders-prod", 8, 512);
        store.insert_cluster(&source).await.unwrap();
        fleet.create_source(&source, ZoneSet::ALL).await.unwrap();
        if sample_rows > 0 {
            fleet.load_sample_data(&source, sample_rows).await.unwrap();
            for zone in Zone::ALL {
                fleet.backup(source.id, zone).await.unwrap();
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop_serving = CancellationToken::new();
        tokio::spawn(restore_desk::web::serve(
            app.clone(),
            listener,
            stop_serving.clone(),
        ));
        World {
            root,
            db,
            app,
            fleet,
            customer: Api::signed_in(&base, &alice.email).await,
            staff: Api::signed_in(&base, &sam.email).await,
            alice,
            source,
            ports: ports.to_string(),
            stop_serving,
        }
    }

    fn fleet_dir(&self) -> PathBuf {
        self.root.path().join("fleet")
    }

    fn restores(&self) -> Vec<PathBuf> {
        fleet::entries(&self.fleet_dir().join("restores"))
    }

    fn set_zone_readable(&self, zone: Zone, readable: bool) {
        fleet::set_readable(&self.fleet.repo_dir(zone), readable);
    }

    /// Polls until `target` is inside the source's restorable window.
    async fn wait_restorable(&self, target: DateTime<Utc>) {
        let backend = &*self.app.backend;
        fleet::wait_restorable(backend, &self.source, target, self.app.policy(), |_| true).await;
    }

    /// Files a restore request for `target` through the API, as the customer.
    async fn file(&self, target: DateTime<Utc>, name: &str) -> (StatusCode, Value) {
        self.customer
            .post(
                "/api/v1/tickets",
                json!({
                    "cluster_id": self.source.id,
                    "target_time": target.to_rfc3339(),
                    "time_zone": "Europe/Amsterdam",
                    "new_cluster_name": name,
                    "severity": "A",
                    "description": "someone ran DELETE without WHERE",
                }),
            )
            .await
    }

    /// Files a ticket for `target`; staff claim and approve it, all through
    /// the API.
    async fn approved(&self, target: DateTime<Utc>, name: &str) -> Ticket {
        let (status, ticket) = self.file(target, name).await;
        assert_eq!(status, StatusCode::CREATED, "{ticket}");
        let id = ticket["id"].as_str().unwrap().to_string();
        for action in ["claim", "approve"] {
            let (status, body) = self
                .staff
                .post(&format!("/api/v1/tickets/{id}/{action}"), json!({}))
                .await;
            assert_eq!(status, StatusCode::OK, "{action}: {body}");
        }
        let ticket = self
            .app
            .store
            .ticket(id.parse().unwrap(), Scope::Everything)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ticket.state, TicketState::Approved);
        ticket
    }

    async fn job(&self, ticket: &Ticket) -> RestoreJob {
        self.app
            .store
            .job_for_ticket(ticket.id)
            .await
            .unwrap()
            .unwrap()
    }

    async fn ticket(&self, ticket: &Ticket) -> Ticket {
        self.app
            .store
            .ticket(ticket.id, Scope::Everything)
            .await
            .unwrap()
            .unwrap()
    }

    /// Runs the engine in this process until the job rests.
    async fn run_to_rest(&self, ticket: &Ticket) -> RestoreJob {
        let started = Instant::now();
        loop {
            engine::drain(&self.app).await.unwrap();
            let job = self.job(ticket).await;
            if job.state.is_terminal() {
                return job;
            }
            assert!(
                started.elapsed() < StdDuration::from_secs(120),
                "the job did not finish: {job:?}"
            );
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
    }

    /// Email kinds the customer was sent about a ticket.
    async fn customer_mail(&self, ticket: &Ticket) -> Vec<String> {
        self.app
            .store
            .outbox(&OutboxQuery {
                ticket_id: Some(ticket.id),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.recipient == self.alice.email)
            .map(|m| m.kind)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_ticket_restores_exactly_the_rows_before_its_moment() {
    let world = World::new(TestDb::sqlite().await, "56160-56179", 0).await;
    let t1 = fleet::rows_around_t1(&world.source.connection).await;
    world.wait_restorable(t1).await;

    // A moment after the end of the archived log is refused at filing,
    // before pgBackRest is ever asked to restore anything.
    let catalog = world.app.backend.catalog(&world.source).await.unwrap();
    let past_the_log = catalog.log_end().unwrap() + chrono::Duration::milliseconds(1);
    let (status, error) = world.file(past_the_log, "too-late").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["code"], "target_in_future");
    assert!(world.restores().is_empty());

    let ticket = world.approved(t1, "orders-restored").await;
    let job = world.run_to_rest(&ticket).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.last_error);
    let report = job.verification_report.clone().unwrap();
    assert!(report.passed(), "{report:#?}");
    assert!(report.point_reached.unwrap() <= t1);

    // What the customer sees through the API.
    let (status, seen) = world
        .customer
        .get(&format!("/api/v1/tickets/{}", ticket.id))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["state"], "completed", "{seen}");
    assert_eq!(seen["job"]["state"], "succeeded");
    let ticket = world.ticket(&ticket).await;
    assert_eq!(ticket.state, TicketState::Completed);
    let restored = world
        .app
        .store
        .cluster(job.new_cluster_id, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restored.status, ClusterStatus::Ready);
    assert_ne!(restored.connection.port, world.source.connection.port);
    assert_eq!(fleet::item_ids(&restored.connection).await, vec![1, 2, 3]);
    assert_eq!(
        fleet::item_ids(&world.source.connection).await,
        vec![1, 2, 3, 4, 5, 6]
    );
    let mail = world.customer_mail(&ticket).await;
    assert!(mail.contains(&"restore_completed".to_string()), "{mail:?}");
    assert_eq!(world.restores().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_outages_fail_over_and_then_fail_clearly() {
    let world = World::new(TestDb::sqlite().await, "56180-56199", 0).await;
    let t1 = fleet::rows_around_t1(&world.source.connection).await;
    world.wait_restorable(t1).await;

    // az1's repository unreadable: the restore comes from another zone.
    world.set_zone_readable(Zone::Az1, false);
    let ticket = world.approved(t1, "from-another-zone").await;
    let job = world.run_to_rest(&ticket).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.last_error);
    assert_ne!(job.zone, Some(Zone::Az1));
    let restored = world
        .app
        .store
        .cluster(job.new_cluster_id, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fleet::item_ids(&restored.connection).await, vec![1, 2, 3]);

    // Approved while az2 and az3 were readable; all three are gone when
    // the engine gets to it.
    let ticket = world.approved(t1, "nowhere-to-restore-from").await;
    world.set_zone_readable(Zone::Az2, false);
    world.set_zone_readable(Zone::Az3, false);
    let job = world.run_to_rest(&ticket).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(
        job.last_error_code.as_deref(),
        Some(ValidationCode::NoBackupInOnlineZone.as_str())
    );
    let why = job.last_error.clone().unwrap_or_default();
    assert!(why.contains("offline"), "{why}");
    assert_eq!(world.ticket(&ticket).await.state, TicketState::Failed);
    let mail = world.customer_mail(&ticket).await;
    assert!(mail.contains(&"restore_failed".to_string()), "{mail:?}");
    // The failed job left nothing behind; the first restore stands.
    assert_eq!(world.restores().len(), 1);
}

/// A `restore-desk worker` process on the test's database and fleet.
struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

impl WorkerProcess {
    fn start(world: &World, name: &str) -> WorkerProcess {
        let log = world.root.path().join(format!("{name}.log"));
        let child = Command::new(BIN)
            .arg("worker")
            .current_dir(world.root.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &world.db.url)
            .env("BACKEND", "pgbackrest")
            .env("FLEET_DIR", world.fleet_dir())
            .env("FLEET_PORTS", &world.ports)
            .env("ARCHIVE_TIMEOUT_SECONDS", "2")
            .env("BACKUP_CIPHER_PASS", CIPHER)
            .env("MAIL_DIR", world.root.path().join("mail"))
            .env("WORKERS", "1")
            .env("LEASE_SECONDS", "2")
            .env("SCHEDULER_SECONDS", "3600")
            .env("DRILL_INTERVAL_HOURS", "0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start worker");
        WorkerProcess { child, log }
    }

    fn kill_hard(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_restoring_leaves_one_cluster_and_no_stray_server() {
    // Enough data (about 30 MB) for the restore to take a moment.
    let world = World::new(TestDb::postgres().await, "56200-56219", 200_000).await;
    let t1 = fleet::rows_around_t1(&world.source.connection).await;
    world.wait_restorable(t1).await;
    let ticket = world.approved(t1, "survivor").await;

    let mut first = WorkerProcess::start(&world, "w0");
    // Kill it the moment pgBackRest is laying the snapshot down.
    let started = Instant::now();
    let pid_file = loop {
        let found = world
            .restores()
            .into_iter()
            .map(|dir| dir.join("restore.pid"))
            .find(|p| p.exists());
        if let Some(found) = found {
            break found;
        }
        assert!(
            started.elapsed() < StdDuration::from_secs(60),
            "the restore never started: {}",
            first.log()
        );
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    };
    first.kill_hard();
    let job = world.job(&ticket).await;
    assert_eq!(job.state, JobState::RestoringSnapshot, "killed mid-restore");
    let dir = pid_file.parent().unwrap().to_path_buf();

    let second = WorkerProcess::start(&world, "w1");
    let started = Instant::now();
    let job = loop {
        let job = world.job(&ticket).await;
        if job.state.is_terminal() {
            break job;
        }
        assert!(
            started.elapsed() < StdDuration::from_secs(120),
            "not finished: {job:?}\n{}",
            second.log()
        );
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    };
    assert_eq!(job.state, JobState::Succeeded, "{}", second.log());
    assert!(job.lease_token >= 2, "the second worker took over");

    assert_eq!(world.restores(), vec![dir.clone()], "one data directory");
    let running: Vec<String> = fleet::processes_in(&dir);
    assert!(
        running.iter().all(|cmd| !cmd.contains("pgbackrest")),
        "no restore left running: {running:?}"
    );
    let servers = running
        .iter()
        .filter(|cmd| cmd.contains("postgres -D"))
        .count();
    assert_eq!(servers, 1, "exactly the new cluster's server: {running:?}");
    let restored = world
        .app
        .store
        .cluster(job.new_cluster_id, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fleet::item_ids(&restored.connection).await, vec![1, 2, 3]);
    assert_eq!(fleet::item_ids(&world.source.connection).await.len(), 6);
}

/// Someone drops the orders table right after a last row went in, within
/// the same millisecond. A ticket for just before the DROP's transaction
/// (chosen from what happened around the moment) restores the table with
/// every row committed before it, that last one included, and nothing
/// committed after it; the verification says it stopped exactly there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn just_before_a_drop_restores_every_row_committed_before_it() {
    use restore_desk::domain::transactions::DdlKind;
    let world = World::new(TestDb::sqlite().await, "56240-56259", 0).await;
    let mut conn = fleet::connect(&world.source.connection).await;
    sqlx::query("CREATE TABLE audit (id bigserial PRIMARY KEY, what text)")
        .execute(&mut conn)
        .await
        .unwrap();
    let names = |w: &World| {
        let (app, source) = (w.app.clone(), w.source.clone());
        async move {
            // As the scheduler's round does.
            restore_desk::desk::transactions::remember_names(&app, &source)
                .await
                .unwrap()
        }
    };
    // Until the last row and the drop commit within one millisecond: the
    // row commits without waiting for its flush (synchronous_commit off),
    // and the drop follows in the same round trip; a table with no index
    // or TOAST storage drops in well under a millisecond, yet now and then
    // the two straddle a millisecond's edge.
    let mut chosen = None;
    let mut previous_drop = 0;
    for attempt in 0..10 {
        for sql in [
            "CREATE TABLE orders (id bigint NOT NULL, amount integer NOT NULL)",
            "INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 3) g",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        names(&world).await;
        sqlx::raw_sql(
            "SET synchronous_commit = off; \
             BEGIN; INSERT INTO orders VALUES (4, 40); COMMIT; \
             DROP TABLE orders; \
             SET synchronous_commit = on",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(&format!(
            "INSERT INTO audit (what) VALUES ('after the drop {attempt}')"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        // What happened, once the log past this drop is archived.
        let deadline = Instant::now() + StdDuration::from_secs(60);
        let (drop, last_row) = loop {
            let (status, page) = world
                .customer
                .get(&format!(
                    "/api/v1/clusters/{}/transactions?before=10&after=0",
                    world.source.id
                ))
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let listed = page["transactions"].as_array().unwrap().clone();
            let drop_at = listed.iter().rposition(|t| {
                t["xid"].as_u64().unwrap() > previous_drop
                    && t["ddl"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|d| d["kind"] == DdlKind::Drop.as_str())
            });
            let after = drop_at.is_some_and(|at| {
                listed[at + 1..].iter().any(|t| {
                    t["relations"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r["name"] == "public.audit")
                })
            });
            if let (Some(at), true) = (drop_at, after) {
                break (listed[at].clone(), listed[at - 1].clone());
            }
            assert!(
                Instant::now() < deadline,
                "the drop never reached the archive: {page}"
            );
            tokio::time::sleep(StdDuration::from_millis(500)).await;
        };
        previous_drop = drop["xid"].as_u64().unwrap();
        assert_eq!(
            drop["ddl"][0]["relations"][0]["name"], "public.orders",
            "{drop}"
        );
        assert_eq!(
            last_row["relations"][0]["name"], "public.orders",
            "{last_row}"
        );
        let at = |t: &Value| {
            t["committed_at"]
                .as_str()
                .unwrap()
                .parse::<DateTime<Utc>>()
                .unwrap()
        };
        if at(&drop).timestamp_millis() == at(&last_row).timestamp_millis() {
            chosen = Some((drop["xid"].as_u64().unwrap(), at(&drop), attempt));
            break;
        }
    }
    conn.close().await.unwrap();
    let (xid, dropped_at, attempt) = chosen.expect("a last row within the drop's millisecond");

    let (status, ticket) = world
        .customer
        .post(
            "/api/v1/tickets",
            json!({
                "cluster_id": world.source.id,
                "transaction": {"id": xid, "position": "before"},
                "time_zone": "Europe/Amsterdam",
                "new_cluster_name": "orders-back",
                "severity": "A",
                "description": "the orders table was dropped",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    assert_eq!(
        ticket["transaction"]["committed_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        dropped_at
    );
    let id = ticket["id"].as_str().unwrap().to_string();
    for action in ["claim", "approve"] {
        let (status, body) = world
            .staff
            .post(&format!("/api/v1/tickets/{id}/{action}"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }
    let ticket = world
        .app
        .store
        .ticket(id.parse().unwrap(), Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    let job = world.run_to_rest(&ticket).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.last_error);
    let report = job.verification_report.clone().unwrap();
    assert!(report.passed(), "{report:#?}");
    let point = report
        .checks
        .iter()
        .find(|c| c.name == "point in time")
        .unwrap();
    assert!(
        point
            .detail
            .contains(&format!("stopped just before transaction {xid}")),
        "{}",
        point.detail
    );
    let restored = world
        .app
        .store
        .cluster(job.new_cluster_id, Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    let mut back = fleet::connect(&restored.connection).await;
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM orders ORDER BY id")
        .fetch_all(&mut back)
        .await
        .unwrap();
    assert_eq!(
        ids,
        vec![1, 2, 3, 4],
        "every row before the drop, the last one too"
    );
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit WHERE what = $1")
        .bind(format!("after the drop {attempt}"))
        .fetch_one(&mut back)
        .await
        .unwrap();
    assert_eq!(after, 0, "nothing committed after it");
    back.close().await.unwrap();
    // The source still has no orders table.
    let mut source = fleet::connect(&world.source.connection).await;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('public.orders') IS NOT NULL")
        .fetch_one(&mut source)
        .await
        .unwrap();
    assert!(!exists);
    source.close().await.unwrap();
}

/// An admin of the world's desk.
async fn admin(world: &World) -> User {
    let ada = common::user("ada@admin.example", Role::Admin, None);
    world.app.store.create_user(&ada, None).await.unwrap();
    ada
}

/// Runs the engine in this process until the job rests.
async fn run_job_to_rest(world: &World, id: restore_desk::domain::ids::JobId) -> RestoreJob {
    let started = Instant::now();
    loop {
        engine::drain(&world.app).await.unwrap();
        let job = world.app.store.job(id).await.unwrap().unwrap();
        if job.state.is_terminal() {
            return job;
        }
        assert!(
            started.elapsed() < StdDuration::from_secs(180),
            "the job did not finish: {job:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

/// A commit on the source, a second after its backups; a moment just
/// before it, which the log reaches once that commit is archived.
async fn after_a_commit(world: &World) -> DateTime<Utc> {
    tokio::time::sleep(StdDuration::from_millis(1200)).await;
    let mut conn = fleet::connect(&world.source.connection).await;
    let before = restore_desk::domain::micros(Utc::now());
    sqlx::query("CREATE TABLE IF NOT EXISTS ticks (at timestamptz DEFAULT now())")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    before
}

/// Polls until the log of every zone reaches `moment`.
async fn every_zone_reaches(world: &World, moment: DateTime<Utc>) {
    let started = Instant::now();
    loop {
        let catalog = world.app.backend.catalog(&world.source).await.unwrap();
        if Zone::ALL.into_iter().all(|z| {
            catalog
                .log_in(z)
                .last()
                .is_some_and(|(_, end)| *end >= moment)
        }) {
            return;
        }
        assert!(
            started.elapsed() < StdDuration::from_secs(90),
            "the zones' log never reached {moment}: {catalog:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(500)).await;
    }
}

/// Deletes one file of every backup zone `zone` holds of the world's
/// source, as a disk losing it would.
fn damage_backups(world: &World, zone: Zone) -> usize {
    let backups = world
        .fleet
        .repo_dir(zone)
        .join("backup")
        .join(world.source.id.to_string());
    let mut damaged = 0;
    for backup in fleet::entries(&backups) {
        let base = backup.join("pg_data").join("base");
        let Some(db) = fleet::entries(&base).into_iter().next() else {
            continue;
        };
        let victim = fleet::entries(&db)
            .into_iter()
            .filter(|f| f.is_file())
            .max_by_key(|f| f.metadata().unwrap().len())
            .unwrap();
        std::fs::remove_file(&victim).unwrap();
        damaged += 1;
    }
    damaged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_restore_from_each_zone_and_find_a_damaged_copy() {
    use restore_desk::desk::drills;
    let world = World::new(TestDb::postgres().await, "56260-56279", 0).await;
    fleet::rows_around_t1(&world.source.connection).await;
    // Each zone's backup was taken in turn: the log must pass the last one
    // before every zone can be restored from.
    every_zone_reaches(&world, after_a_commit(&world).await).await;
    let ada = admin(&world).await;
    let app = &world.app;
    // True at any moment of the window (a drill picks one at random).
    drills::set_settings(
        app,
        &ada,
        world.source.id,
        None,
        Some("SELECT count(*) > 0 FROM pg_namespace WHERE nspname = 'public'"),
    )
    .await
    .unwrap();
    assert!(damage_backups(&world, Zone::Az2) > 0);
    let clusters_before = app.store.clusters(Scope::Everything, true).await.unwrap();

    let mut ended = Vec::new();
    for _ in 0..3 {
        let id = drills::start_now(app, &ada, world.source.id).await.unwrap();
        ended.push(run_job_to_rest(&world, id).await);
    }
    let zones: Vec<Option<Zone>> = ended.iter().map(|j| j.drill_zone).collect();
    assert_eq!(
        zones,
        vec![Some(Zone::Az1), Some(Zone::Az2), Some(Zone::Az3)]
    );
    for passed in [&ended[0], &ended[2]] {
        assert_eq!(passed.state, JobState::Succeeded, "{:?}", passed.last_error);
        let report = passed.verification_report.as_ref().unwrap();
        let check = |name: &str| report.checks.iter().find(|c| c.name == name).unwrap();
        assert!(check("amcheck").passed, "{report:#?}");
        assert!(check("canary").passed, "{report:#?}");
        assert!(check("point in time").passed, "{report:#?}");
    }
    let failed = &ended[1];
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.last_error_code.as_deref(), Some("backup_damaged"));
    assert_eq!(failed.failed_step, Some(JobState::RestoringSnapshot));
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap()
            .contains("in az2 is damaged")
    );

    // Nothing left on the host: no folder, no server, no cluster record.
    assert!(world.restores().is_empty(), "{:?}", world.restores());
    assert!(fleet::processes_in(&world.fleet_dir().join("restores")).is_empty());
    assert_eq!(
        app.store.clusters(Scope::Everything, true).await.unwrap(),
        clusters_before
    );
    let results = drills::of_cluster(app, world.source.id).await.unwrap();
    let risk = results.at_risk();
    assert_eq!(risk.len(), 1);
    assert_eq!(risk[0].zone, Zone::Az2);
    assert_eq!(risk[0].failed_check.as_deref(), Some("snapshot restore"));
    let mail: Vec<_> = app
        .store
        .outbox(&OutboxQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "drill_failed")
        .collect();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].recipient, "sam@support.example");
    assert!(mail[0].text_body.contains("az2"));

    // A canary that errors fails the drill with the database's own words.
    drills::set_settings(
        app,
        &ada,
        world.source.id,
        None,
        Some("SELECT count(*) > 0 FROM no_such_table"),
    )
    .await
    .unwrap();
    let id = drills::start_now(app, &ada, world.source.id).await.unwrap();
    let canary = run_job_to_rest(&world, id).await;
    assert_eq!(canary.drill_zone, Some(Zone::Az1), "az1's turn again");
    assert_eq!(canary.state, JobState::Failed);
    assert_eq!(canary.failed_step, Some(JobState::Verifying));
    let report = canary.verification_report.as_ref().unwrap();
    let check = report.checks.iter().find(|c| c.name == "canary").unwrap();
    assert!(!check.passed);
    assert!(
        check
            .detail
            .contains("relation \"no_such_table\" does not exist"),
        "{}",
        check.detail
    );
    let results = drills::of_cluster(app, world.source.id).await.unwrap();
    let risk: Vec<(Zone, String)> = results
        .at_risk()
        .iter()
        .map(|r| (r.zone, r.failed_check.clone().unwrap()))
        .collect();
    assert_eq!(
        risk,
        vec![
            (Zone::Az1, "canary".to_string()),
            (Zone::Az2, "snapshot restore".to_string())
        ]
    );
    assert!(world.restores().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_progress_rises_and_a_second_restore_s_estimate_holds() {
    let world = World::new(TestDb::sqlite().await, "56280-56299", 0).await;
    // Well over 100 MB of log to replay past the backup.
    let mut conn = fleet::connect(&world.source.connection).await;
    sqlx::query("CREATE TABLE big (id bigint, pad text)")
        .execute(&mut conn)
        .await
        .unwrap();
    // In many commits: the replay point moves from commit to commit.
    for batch in 0..48 {
        sqlx::query(
            "INSERT INTO big SELECT g, repeat(md5(g::text), 32) \
             FROM generate_series($1, $1 + 4999) g",
        )
        .bind(batch * 5_000_i64)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    let t1 = restore_desk::domain::micros(Utc::now());
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    sqlx::query("INSERT INTO big VALUES (-1, 'after')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    world.wait_restorable(t1).await;

    let ticket = world.approved(t1, "big-restore").await;
    let job_id = world.job(&ticket).await.id;
    let app = world.app.clone();
    let engine_run = tokio::spawn(async move {
        loop {
            engine::drain(&app).await.unwrap();
            let job = app.store.job(job_id).await.unwrap().unwrap();
            if job.state.is_terminal() {
                return job;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
    });
    // What a customer's page would read while it runs.
    let mut seen: Vec<(i64, Option<DateTime<Utc>>, JobState)> = Vec::new();
    while !engine_run.is_finished() {
        let job = world.app.store.job(job_id).await.unwrap().unwrap();
        seen.push((job.progress, job.replayed_to, job.state));
        tokio::time::sleep(StdDuration::from_millis(40)).await;
    }
    let first = engine_run.await.unwrap();
    assert_eq!(first.state, JobState::Succeeded, "{:?}", first.last_error);
    let work = first.work.expect("the work was measured before it began");
    assert!(
        work.wal_bytes >= 100 * 1024 * 1024,
        "{} bytes of log",
        work.wal_bytes
    );
    for pair in seen.windows(2) {
        assert!(pair[1].0 >= pair[0].0, "the bar went back: {pair:?}");
    }
    let replayed: Vec<DateTime<Utc>> = seen
        .iter()
        .filter(|(_, _, state)| *state == JobState::ReplayingLog)
        .filter_map(|(_, at, _)| *at)
        .collect();
    for pair in replayed.windows(2) {
        assert!(pair[1] >= pair[0], "the replay point went back: {pair:?}");
    }
    let mut distinct = replayed.clone();
    distinct.dedup();
    assert!(
        distinct.len() >= 2 && distinct.iter().all(|t| *t <= t1),
        "the replay point rose towards the target: {distinct:?}"
    );

    // The second restore of the cluster is estimated from the first.
    let again = world.approved(t1, "big-restore-again").await;
    let second = world.run_to_rest(&again).await;
    assert_eq!(second.state, JobState::Succeeded, "{:?}", second.last_error);
    let runs = world
        .app
        .store
        .past_runs(world.source.id, 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    let took = |changes: &[(JobState, JobState, DateTime<Utc>)]| {
        restore_desk::domain::eta::step_durations(changes)
            .into_iter()
            .map(|(_, d)| d)
            .fold(chrono::Duration::zero(), |a, b| a + b)
    };
    let second_took = took(&runs[0].changes);
    // What the desk estimated as the second began: from the first alone,
    // scaled to the second's work.
    let before = restore_desk::domain::eta::estimate(
        &[restore_desk::domain::eta::PastRun {
            drill: false,
            steps: restore_desk::domain::eta::step_durations(&runs[1].changes),
            work: runs[1].work,
        }],
        second.work,
    )
    .unwrap();
    let ratio = before.duration.num_milliseconds() as f64 / second_took.num_milliseconds() as f64;
    assert!(
        (0.5..=2.0).contains(&ratio),
        "estimated {:?}, took {:?}",
        before.duration,
        second_took
    );
    // And the customer was told so when it started.
    let started = world
        .app
        .store
        .outbox(&OutboxQuery {
            ticket_id: Some(again.id),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.kind == "restore_started" && m.recipient == world.alice.email)
        .unwrap();
    assert!(
        started.text_body.contains("from 1 restore of this cluster"),
        "{}",
        started.text_body
    );
}

/// Files `target` asking to inspect the copy first; staff claim and
/// approve it. All through the API.
async fn approved_for_inspection(world: &World, target: DateTime<Utc>, name: &str) -> Ticket {
    let (status, ticket) = world
        .customer
        .post(
            "/api/v1/tickets",
            json!({
                "cluster_id": world.source.id,
                "target_time": target.to_rfc3339(),
                "new_cluster_name": name,
                "severity": "A",
                "description": "look before it is handed over",
                "inspect": true,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let id = ticket["id"].as_str().unwrap().to_string();
    for action in ["claim", "approve"] {
        let (status, body) = world
            .staff
            .post(&format!("/api/v1/tickets/{id}/{action}"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }
    world.ticket_by_id(&id).await
}

impl World {
    async fn ticket_by_id(&self, id: &str) -> Ticket {
        self.app
            .store
            .ticket(id.parse().unwrap(), Scope::Everything)
            .await
            .unwrap()
            .unwrap()
    }

    /// Runs the engine until the job's copy stands paused for the customer.
    async fn run_to_pause(&self, ticket: &Ticket) -> RestoreJob {
        let started = Instant::now();
        loop {
            engine::drain(&self.app).await.unwrap();
            let job = self.job(ticket).await;
            if job.state == JobState::Paused {
                return job;
            }
            assert!(
                !job.state.is_terminal(),
                "the job ended instead of pausing: {job:?}"
            );
            assert!(
                started.elapsed() < StdDuration::from_secs(120),
                "the job did not pause: {job:?}"
            );
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
    }

    /// The paused (or handed-over) copy's record.
    async fn copy_of(&self, job: &RestoreJob) -> Cluster {
        self.app
            .store
            .cluster(job.new_cluster_id, Scope::Everything)
            .await
            .unwrap()
            .unwrap()
    }

    /// How many times pgBackRest restored a backup of the source.
    fn base_restores(&self) -> usize {
        fleet::entries(&self.fleet_dir().join("log"))
            .iter()
            .filter(|f| f.to_string_lossy().ends_with("-restore.log"))
            .map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .matches("restore command begin")
                    .count()
            })
            .sum()
    }
}

/// Whether a write is refused on `connection`, and the database's words.
async fn write_refused(connection: &restore_desk::domain::cluster::Connection) -> Option<String> {
    let mut conn = fleet::connect(connection).await;
    let outcome = sqlx::query("INSERT INTO items VALUES (100, 'after the restore')")
        .execute(&mut conn)
        .await;
    conn.close().await.unwrap();
    outcome.err().map(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_copy_is_read_only_moves_forward_in_place_and_is_accepted() {
    let world = World::new(TestDb::sqlite().await, "56300-56319", 0).await;
    let t1 = fleet::rows_around_t1(&world.source.connection).await;
    // Rows 7–9 after T2.
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    let t2 = restore_desk::domain::micros(Utc::now());
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    let mut conn = fleet::connect(&world.source.connection).await;
    sqlx::query("INSERT INTO items SELECT g, 'later' FROM generate_series(7, 9) g")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    world.wait_restorable(t2).await;
    let before_restores = world.base_restores();

    // Paused at T1: the T1 rows, and no write.
    let ticket = approved_for_inspection(&world, t1, "orders-inspected").await;
    let paused = world.run_to_pause(&ticket).await;
    let copy = world.copy_of(&paused).await;
    assert_eq!(fleet::item_ids(&copy.connection).await, vec![1, 2, 3]);
    let refused = write_refused(&copy.connection)
        .await
        .expect("a paused copy is read-only");
    assert!(refused.contains("read-only"), "{refused}");
    assert_eq!(
        world.ticket(&ticket).await.state,
        TicketState::AwaitingDecision
    );
    let (_, seen) = world
        .customer
        .get(&format!("/api/v1/tickets/{}", ticket.id))
        .await;
    assert_eq!(
        seen["inspection"]["connection"]["port"],
        json!(copy.connection.port)
    );

    // Forward to T2 on the same copy: no second base restore.
    let (status, moved) = world
        .customer
        .post(
            &format!("/api/v1/tickets/{}/move-forward", ticket.id),
            json!({"target_time": t2.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let again = world.run_to_pause(&ticket).await;
    assert_eq!(again.run, 1);
    assert_eq!(again.new_cluster_id, paused.new_cluster_id);
    assert_eq!(
        fleet::item_ids(&copy.connection).await,
        vec![1, 2, 3, 4, 5, 6]
    );
    assert!(write_refused(&copy.connection).await.is_some());
    assert_eq!(
        world.base_restores() - before_restores,
        1,
        "one base restore, not two"
    );

    // Accepted: promoted, handed over, open for writes.
    let (status, accepted) = world
        .customer
        .post(&format!("/api/v1/tickets/{}/accept", ticket.id), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    let done = world.run_to_rest(&ticket).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.last_error);
    assert_eq!(world.ticket(&ticket).await.state, TicketState::Completed);
    let handed = world.copy_of(&done).await;
    assert_eq!(handed.status, ClusterStatus::Ready);
    assert_eq!(handed.restored_from.unwrap().point_in_time, t2);
    assert_eq!(
        fleet::item_ids(&handed.connection).await,
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        write_refused(&handed.connection).await,
        None,
        "it takes writes"
    );
    assert_eq!(
        fleet::item_ids(&world.source.connection).await,
        (1..=9).collect::<Vec<i64>>(),
        "the source is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn going_back_removes_the_paused_copy_and_restores_the_earlier_moment() {
    let world = World::new(TestDb::postgres().await, "56320-56339", 0).await;
    let t1 = fleet::rows_around_t1(&world.source.connection).await;
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    let t2 = restore_desk::domain::micros(Utc::now());
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    let mut conn = fleet::connect(&world.source.connection).await;
    sqlx::query("INSERT INTO items SELECT g, 'later' FROM generate_series(7, 9) g")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    world.wait_restorable(t2).await;

    let ticket = approved_for_inspection(&world, t2, "orders-back").await;
    let first = world.run_to_pause(&ticket).await;
    let first_dir = world.fleet.restore_dir(first.id, first.run);
    assert!(first_dir.exists());
    let copy = world.copy_of(&first).await;
    assert_eq!(
        fleet::item_ids(&copy.connection).await,
        vec![1, 2, 3, 4, 5, 6]
    );

    let (status, back) = world
        .customer
        .post(
            &format!("/api/v1/tickets/{}/go-back", ticket.id),
            json!({"target_time": t1.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    let second = world.run_to_pause(&ticket).await;
    assert_eq!(second.run, 2, "a new restore");
    assert!(!first_dir.exists(), "the paused copy is removed");
    assert!(fleet::processes_in(&first_dir).is_empty());
    assert!(
        world
            .app
            .store
            .cluster(first.new_cluster_id, Scope::Everything)
            .await
            .unwrap()
            .is_none()
    );
    let earlier = world.copy_of(&second).await;
    assert_eq!(fleet::item_ids(&earlier.connection).await, vec![1, 2, 3]);

    let (status, _) = world
        .customer
        .post(&format!("/api/v1/tickets/{}/accept", ticket.id), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let done = world.run_to_rest(&ticket).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.last_error);
    let handed = world.copy_of(&done).await;
    assert_eq!(fleet::item_ids(&handed.connection).await, vec![1, 2, 3]);
    assert_eq!(write_refused(&handed.connection).await, None);
}
