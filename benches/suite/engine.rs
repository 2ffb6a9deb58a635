//! Engine figures: no-op restore jobs drained per second by `restore-desk
//! worker` processes, against a hand-written loop that claims each job the
//! same way and commits the same durable writes (the six state changes with
//! their events, the ticket's two changes, the new cluster's record and the
//! two emails) with none of the engine around them; and the latency from a
//! job's commit to its first step, against one INSERT + COMMIT.

use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::support::{
    BIN, BenchDb, Db, Figure, Target, desk, percentile, quick, seed_jobs, wait_until,
};

pub async fn run() -> Vec<Figure> {
    let jobs = if quick() { 300 } else { 1500 };
    let mut figures = Vec::new();
    for db in [Db::Sqlite, Db::Postgres] {
        for processes in [1, 2] {
            let ours = ours_throughput(db, processes, jobs).await;
            let baseline = baseline_throughput(db, processes, jobs).await;
            figures.push(Figure::new(
                format!(
                    "engine: no-op jobs drained/s, {}, {processes} process(es)",
                    db.name()
                ),
                ours,
                baseline,
                "jobs/s",
                Target::AtLeast(0.7),
            ));
        }
        let (ours, baseline) = statements_per_job(db).await;
        figures.push(Figure::new(
            format!("engine: statements per no-op job, {}", db.name()),
            ours,
            baseline,
            "stmts",
            Target::AtMost(1.15),
        ));
        let (ours, baseline) = first_step_latency(db).await;
        figures.push(Figure::new(
            format!("engine: job commit -> first step p50, {}", db.name()),
            ours,
            baseline,
            "ms",
            Target::AtMost(3.0),
        ));
    }
    figures
}

struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One open connection for watching a run: a probe that connected anew on
/// every poll would load the database it measures (on PostgreSQL, a new
/// backend process each time).
enum Probe {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Probe {
    async fn open(url: &str) -> Probe {
        if url.starts_with("sqlite") {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .unwrap();
            Probe::Sqlite(pool)
        } else {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .unwrap();
            Probe::Postgres(pool)
        }
    }

    async fn done(&self) -> i64 {
        let sql = "SELECT COUNT(*) FROM restore_jobs WHERE state = 'succeeded'";
        match self {
            Probe::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
            Probe::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        }
    }

    async fn close(self) {
        match self {
            Probe::Sqlite(pool) => pool.close().await,
            Probe::Postgres(pool) => pool.close().await,
        }
    }
}

async fn count_done(url: &str) -> i64 {
    let probe = Probe::open(url).await;
    let done = probe.done().await;
    probe.close().await;
    done
}

/// Waits until all `jobs` succeeded, looking seldom to keep out of the way.
async fn wait_for_done(url: &str, jobs: i64) {
    let probe = Probe::open(url).await;
    wait_until(StdDuration::from_secs(900), async || {
        tokio::time::sleep(StdDuration::from_millis(200)).await;
        probe.done().await == jobs
    })
    .await;
    probe.close().await;
}

/// Seconds from the first job's start to the last job's success, from the
/// events the engine committed: process start-up is not counted.
async fn busy_seconds(url: &str) -> f64 {
    let sql = "SELECT MIN(created_at) AS first, MAX(created_at) AS last FROM events \
               WHERE action IN ('job_start', 'job_succeeded')";
    let (first, last): (DateTime<Utc>, DateTime<Utc>) = if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let row = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        row
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let row = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        row
    };
    (last - first).num_microseconds().unwrap() as f64 / 1e6
}

/// A fresh database holding `jobs` no-op jobs ready to run.
async fn with_jobs(db: Db, jobs: i64) -> BenchDb {
    let bench_db = BenchDb::new(db).await;
    let app = desk(&bench_db, &[]).await;
    seed_jobs(&app, 100_000, jobs).await;
    drop(app);
    bench_db
}

/// A `restore-desk worker` on `bench_db` with no-op steps, writing its
/// emails into `mail`, with no log unless asked.
fn worker(bench_db: &BenchDb, mail: &tempfile::TempDir) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("worker")
        .env("DATABASE_URL", &bench_db.url)
        .env("SANDBOX_STEP_MS", "0")
        .env("WORKERS", "2")
        .env("SCHEDULER_SECONDS", "3600")
        .env("DRILL_INTERVAL_HOURS", "0")
        // The figure is the engine's own cost, not a host's limit.
        .env("MAX_RESTORES", "64")
        .env("MAIL_DIR", mail.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

async fn ours_throughput(db: Db, processes: usize, jobs: i64) -> f64 {
    let bench_db = with_jobs(db, jobs).await;
    // The emails the jobs send go to files in memory: the figure is the
    // engine's, and creating thousands of files on a disk measures its file
    // system (a profile showed ext4's inode allocation in a fifth of the
    // worker's time). Delivery has a figure of its own.
    let mail = in_memory_dir();
    let workers = Workers(
        (0..processes)
            .map(|_| {
                worker(&bench_db, &mail)
                    .env("RUST_LOG", "error")
                    .spawn()
                    .expect("worker")
            })
            .collect(),
    );
    // The rate comes from the events' timestamps, so how often this looks
    // does not change it.
    wait_for_done(&bench_db.url, jobs).await;
    drop(workers);
    let seconds = busy_seconds(&bench_db.url).await;
    bench_db.drop_now().await;
    jobs as f64 / seconds
}

/// Statements per job: a worker process's, counted from its own statement
/// log (every statement while it drains the jobs: claims, steps, its emails
/// and their delivery, its polls), against the loop's, counted as it runs.
async fn statements_per_job(db: Db) -> (f64, f64) {
    let jobs = 200;
    let bench_db = with_jobs(db, jobs).await;
    let mail = in_memory_dir();
    let log = tempfile::NamedTempFile::new().unwrap();
    let worker = Workers(vec![
        worker(&bench_db, &mail)
            .env("RUST_LOG", "error,sqlx::query=debug")
            .env("LOG_FORMAT", "json")
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("worker"),
    ]);
    wait_for_done(&bench_db.url, jobs).await;
    // Its emails are delivered (and settled) a moment after the last job.
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    drop(worker);
    let statements: Vec<String> = std::fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .filter(|line| line.contains("\"sqlx::query\""))
        .map(str::to_string)
        .collect();
    let ours = statements.len();
    // For a profile of where the statements go: BENCH_STATEMENTS_DIR keeps
    // the worker's statement log.
    if let Ok(dir) = std::env::var("BENCH_STATEMENTS_DIR") {
        let file = format!("{dir}/statements-{}.jsonl", db.name());
        std::fs::write(&file, statements.join("\n")).unwrap();
    }
    bench_db.drop_now().await;

    let bench_db = with_jobs(db, jobs).await;
    super::support::count_statements(true);
    run_baseline(&bench_db, db, 1).await;
    let baseline = super::support::count_statements(false);
    assert_eq!(count_done(&bench_db.url).await, jobs);
    bench_db.drop_now().await;
    assert!(ours > 0, "the worker logged no statements");
    (ours as f64 / jobs as f64, baseline as f64 / jobs as f64)
}

/// The same durable writes, committed by a plain loop.
macro_rules! baseline_loop {
    ($name:ident, $pool:ty, $begin:expr, $skip_locked:expr) => {
        async fn $name(pool: $pool, worker: String, started: std::sync::Arc<std::sync::Mutex<Option<Instant>>>) {
            let steps = [
                ("queued", "provisioning", 0_i64),
                ("provisioning", "restoring_snapshot", 10),
                ("restoring_snapshot", "replaying_log", 60),
                ("replaying_log", "verifying", 85),
                ("verifying", "finalizing", 95),
                ("finalizing", "succeeded", 100),
            ];
            loop {
                let now = Utc::now();
                let claimed: Option<(Uuid, Uuid, i64, Uuid, Uuid)> = sqlx::query_as(&format!(
                    "UPDATE restore_jobs SET lease_owner = $1, lease_token = lease_token + 1, \
                       lease_expires_at = $3, updated_at = $2 \
                     WHERE id = (SELECT id FROM restore_jobs \
                       WHERE state NOT IN ('succeeded', 'failed', 'cancelled') AND run_after <= $2 \
                         AND (lease_owner IS NULL OR lease_expires_at <= $2) \
                       ORDER BY run_after LIMIT 1{}) \
                     RETURNING id, ticket_id, lease_token, new_cluster_id, source_cluster_id",
                    $skip_locked
                ))
                .bind(&worker)
                .bind(now)
                .bind(now + chrono::Duration::seconds(30))
                .fetch_optional(&pool)
                .await
                .unwrap();
                let Some((job, ticket, token, new_cluster, source)) = claimed else {
                    return;
                };
                started.lock().unwrap().get_or_insert_with(Instant::now);
                for (from, to, progress) in steps {
                    let now = Utc::now();
                    let mut tx = pool.begin_with($begin).await.unwrap();
                    let done = sqlx::query(
                        "UPDATE restore_jobs SET state = $1, attempt = 1, progress = $2, \
                           step_started_at = $3, progress_at = $3, updated_at = $3, \
                           finished_at = CASE WHEN $1 = 'succeeded' THEN $3 ELSE NULL END, \
                           lease_owner = CASE WHEN $1 = 'succeeded' THEN NULL ELSE lease_owner END \
                         WHERE id = $4 AND state = $5 AND lease_token = $6",
                    )
                    .bind(to)
                    .bind(progress)
                    .bind(now)
                    .bind(job)
                    .bind(from)
                    .bind(token)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    assert_eq!(done.rows_affected(), 1);
                    sqlx::query(
                        "INSERT INTO events (ticket_id, job_id, actor_role, action, from_state, \
                         to_state, detail, created_at) VALUES ($1, $2, 'system', 'job_step', $3, $4, '', $5)",
                    )
                    .bind(ticket)
                    .bind(job)
                    .bind(from)
                    .bind(to)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    let ticket_to = match to {
                        "provisioning" => Some(("approved", "restoring")),
                        "succeeded" => Some(("restoring", "completed")),
                        _ => None,
                    };
                    if let Some((ticket_from, ticket_to)) = ticket_to {
                        sqlx::query(
                            "UPDATE tickets SET state = $1, version = version + 1, updated_at = $2 \
                             WHERE id = $3 AND state = $4",
                        )
                        .bind(ticket_to)
                        .bind(now)
                        .bind(ticket)
                        .bind(ticket_from)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                        sqlx::query(
                            "INSERT INTO outbox (id, dedupe_key, ticket_id, kind, recipient, subject, \
                             text_body, html_body, status, attempts, next_attempt_at, created_at) \
                             VALUES ($1, $2, $3, 'notice', 'alice@contoso.example', 'subject', \
                             'text', '<p>html</p>', 'pending', 0, $4, $4)",
                        )
                        .bind(Uuid::new_v4())
                        .bind(format!("{job}:{to}"))
                        .bind(ticket)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    }
                    if to == "restoring_snapshot" {
                        sqlx::query(
                            "INSERT INTO clusters (id, subscription_id, resource_group, region, name, \
                             tier, vcores, storage_gib, node_count, high_availability, server_version, \
                             host, port, database_name, db_user, status, created_at, \
                             restored_from_ticket_id, restored_point) \
                             SELECT $1, subscription_id, resource_group, region, $2, tier, vcores, \
                             storage_gib, node_count, high_availability, server_version, host, port, \
                             database_name, db_user, 'building', $3, $4, $3 FROM clusters WHERE id = $5",
                        )
                        .bind(new_cluster)
                        .bind(format!("copy-{new_cluster}"))
                        .bind(now)
                        .bind(ticket)
                        .bind(source)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    }
                    if to == "succeeded" {
                        sqlx::query("UPDATE clusters SET status = 'ready' WHERE id = $1")
                            .bind(new_cluster)
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                    }
                    tx.commit().await.unwrap();
                }
            }
        }
    };
}

baseline_loop!(baseline_sqlite, sqlx::SqlitePool, "BEGIN IMMEDIATE", "");
baseline_loop!(
    baseline_postgres,
    sqlx::PgPool,
    "BEGIN",
    " FOR UPDATE SKIP LOCKED"
);

async fn baseline_throughput(db: Db, processes: usize, jobs: i64) -> f64 {
    let bench_db = with_jobs(db, jobs).await;
    let started = run_baseline(&bench_db, db, processes).await;
    let elapsed = started.expect("some job ran").elapsed();
    assert_eq!(count_done(&bench_db.url).await, jobs);
    bench_db.drop_now().await;
    jobs as f64 / elapsed.as_secs_f64()
}

/// Drains the jobs with the loop's tasks (two per process it stands for);
/// when the first job was claimed.
async fn run_baseline(bench_db: &BenchDb, db: Db, processes: usize) -> Option<Instant> {
    let tasks = processes * 2;
    let started = std::sync::Arc::new(std::sync::Mutex::new(None));
    let mut handles = Vec::new();
    match db {
        Db::Sqlite => {
            use std::str::FromStr;
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&bench_db.url)
                .unwrap()
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(StdDuration::from_secs(15));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await
                .unwrap();
            for i in 0..tasks {
                handles.push(tokio::spawn(baseline_sqlite(
                    pool.clone(),
                    format!("base/{i}"),
                    started.clone(),
                )));
            }
        }
        Db::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .connect(&bench_db.url)
                .await
                .unwrap();
            for i in 0..tasks {
                handles.push(tokio::spawn(baseline_postgres(
                    pool.clone(),
                    format!("base/{i}"),
                    started.clone(),
                )));
            }
        }
    }
    for handle in handles {
        handle.await.unwrap();
    }
    *started.lock().unwrap()
}

/// From a job's commit to its first step beginning in a running worker of
/// the same process (woken by the commit), against one INSERT + COMMIT.
async fn first_step_latency(db: Db) -> (f64, f64) {
    let samples = if quick() { 30 } else { 120 };
    let bench_db = BenchDb::new(db).await;
    let app = desk(&bench_db, &["--workers", "2"]).await;
    let shutdown = CancellationToken::new();
    let mut engine = restore_desk::engine::spawn(app.clone(), shutdown.clone());
    let mut ours = Vec::new();
    for i in 0..samples {
        seed_jobs(&app, 200_000 + i, 1).await;
        // From the moment the job's commit is done: the baseline is that commit.
        let committed = Utc::now();
        let (started, _) = wait_for_start(&app, 200_000 + i).await;
        let waited = (started - committed).num_microseconds().unwrap().max(0);
        ours.push(waited as f64 / 1000.0);
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    shutdown.cancel();
    while engine.join_next().await.is_some() {}

    let mut baseline = Vec::new();
    for _ in 0..samples {
        let at = Utc::now();
        let started = Instant::now();
        let mut commit = restore_desk::store::Commit::at(at);
        commit.events.push(restore_desk::store::NewEvent::admin(
            restore_desk::domain::actor::Actor::SYSTEM,
            restore_desk::store::EventAction::FaultClear,
            "",
            at,
        ));
        app.store.commit(&commit).await.unwrap();
        baseline.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    bench_db.drop_now().await;
    (percentile(&mut ours, 50.0), percentile(&mut baseline, 50.0))
}

/// (first step began, job committed) for the job of ticket `number`.
async fn wait_for_start(
    app: &restore_desk::app::App,
    number: i64,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let ticket = app
        .store
        .ticket_by_number(number, restore_desk::store::Scope::Everything)
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + StdDuration::from_secs(30);
    loop {
        let job = app.store.job_for_ticket(ticket.id).await.unwrap().unwrap();
        if job.state != restore_desk::domain::restore_job::JobState::Queued {
            let events = app.store.ticket_events(ticket.id).await.unwrap();
            let start = events
                .iter()
                .find(|e| e.action == "job_start")
                .map(|e| e.created_at)
                .unwrap();
            return (start, job.created_at);
        }
        assert!(Instant::now() < deadline, "job never started");
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    }
}

/// A temporary directory in RAM where the machine has one.
fn in_memory_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}
