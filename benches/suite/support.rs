//! What every benchmark section shares: databases, the desk, percentiles
//! and the result table.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration as StdDuration;

use sqlx::Connection;
use uuid::Uuid;

use super::seeded::QueuedJobs;
use restore_desk::app::App;
use restore_desk::clock::SystemClock;

pub const BIN: &str = env!("CARGO_BIN_EXE_restore-desk");

pub fn quick() -> bool {
    std::env::var("QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Whether a ratio meets its target.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// ours / baseline must be at least this (throughput).
    AtLeast(f64),
    /// ours / baseline must be at most this (latency, cost).
    AtMost(f64),
    /// ours must be at most ratio × baseline + seconds.
    AtMostPlus(f64, f64),
    /// Reported, no target.
    None,
}

pub struct Figure {
    pub name: String,
    pub ours: f64,
    pub baseline: f64,
    pub unit: &'static str,
    pub target: Target,
}

impl Figure {
    pub fn new(
        name: impl Into<String>,
        ours: f64,
        baseline: f64,
        unit: &'static str,
        target: Target,
    ) -> Figure {
        Figure {
            name: name.into(),
            ours,
            baseline,
            unit,
            target,
        }
    }

    fn ratio(&self) -> f64 {
        if self.baseline == 0.0 {
            f64::NAN
        } else {
            self.ours / self.baseline
        }
    }

    fn verdict(&self) -> (&'static str, String) {
        let ratio = self.ratio();
        match self.target {
            Target::AtLeast(t) => (
                if ratio >= t { "met" } else { "MISSED" },
                format!(">= {t}x"),
            ),
            Target::AtMost(t) => (
                if ratio <= t { "met" } else { "MISSED" },
                format!("<= {t}x"),
            ),
            Target::AtMostPlus(t, plus) => (
                if self.ours <= t * self.baseline + plus {
                    "met"
                } else {
                    "MISSED"
                },
                format!("<= {t}x + {plus} s"),
            ),
            Target::None => ("", String::from("-")),
        }
    }
}

pub fn print_table(figures: &[Figure]) {
    println!();
    println!(
        "| {:<58} | {:>12} | {:>12} | {:>7} | {:<8} | {:<14} | {:<6} |",
        "figure", "ours", "baseline", "ratio", "unit", "target", ""
    );
    println!(
        "|{:-<60}|{:->14}|{:->14}|{:->9}|{:-<10}|{:-<16}|{:-<8}|",
        "", "", "", "", "", "", ""
    );
    for f in figures {
        let (verdict, target) = f.verdict();
        println!(
            "| {:<58} | {:>12.2} | {:>12.2} | {:>6.2}x | {:<8} | {:<14} | {:<6} |",
            f.name,
            f.ours,
            f.baseline,
            f.ratio(),
            f.unit,
            target,
            verdict
        );
    }
    println!();
}

pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    assert!(!samples.is_empty());
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((p / 100.0) * (samples.len() as f64 - 1.0)).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    pub fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "SQLite",
            Db::Postgres => "PostgreSQL",
        }
    }
}

fn pg_admin_url() -> String {
    std::env::var("BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database that lives for one measurement.
pub struct BenchDb {
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl BenchDb {
    pub async fn new(kind: Db) -> BenchDb {
        match kind {
            Db::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                BenchDb {
                    url,
                    pg_name: None,
                    _dir: Some(dir),
                }
            }
            Db::Postgres => {
                let name = format!("rd_bench_{}", Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&pg_admin_url())
                    .await
                    .expect("PostgreSQL for the benchmarks");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&pg_admin_url()).unwrap();
                url.set_path(&name);
                BenchDb {
                    url: url.to_string(),
                    pg_name: Some(name),
                    _dir: None,
                }
            }
        }
    }

    pub async fn drop_now(mut self) {
        if let Some(name) = self.pg_name.take()
            && let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }
}

/// Settings as the binary parses them, for this database.
pub fn settings(db: &BenchDb, args: &[&str]) -> restore_desk::config::Settings {
    use clap::Parser;
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        settings: restore_desk::config::Settings,
    }
    let mail_dir = std::env::temp_dir().join(format!("rd-bench-mail-{}", Uuid::new_v4().simple()));
    let mut all: Vec<String> = vec![
        "restore-desk".into(),
        "--database-url".into(),
        db.url.clone(),
        "--sandbox-step-ms".into(),
        "0".into(),
        "--mail-dir".into(),
        mail_dir.display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    Flags::parse_from(all).settings
}

/// The desk on `db`, migrated and seeded with the demo data.
pub async fn desk(db: &BenchDb, args: &[&str]) -> App {
    let app = restore_desk::cli::build(settings(db, args), Arc::new(SystemClock))
        .await
        .expect("build");
    restore_desk::demo::seed(&app, "demo").await.expect("seed");
    app
}

/// `count` approved tickets on orders-prod, each with a queued job, written
/// straight into the store: no-op work for the engine.
pub async fn seed_jobs(app: &App, first_number: i64, count: i64) {
    let jobs = QueuedJobs::on_orders_prod(&app.store).await;
    for number in first_number..first_number + count {
        // Through the app, as approvals commit: idle workers are woken.
        app.commit(jobs.commit(number)).await.unwrap();
    }
}

/// Polls `probe` until it answers, at most `limit`.
pub async fn wait_until(limit: StdDuration, mut probe: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !probe().await {
        assert!(std::time::Instant::now() < deadline, "benchmark timed out");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

/// Statements this process ran through sqlx while counting was on.
static STATEMENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Counts sqlx's statement events, and asks for them only while counting:
/// otherwise the loop's figures would pay for a log nobody reads.
pub struct StatementCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementCounter {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if metadata.target() == "sqlx::query" {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(
        &self,
        metadata: &tracing::Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        metadata.target() == "sqlx::query" && COUNTING.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        STATEMENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Starts counting from zero (`true`), or stops and answers the count.
pub fn count_statements(on: bool) -> u64 {
    use std::sync::atomic::Ordering;
    if on {
        STATEMENTS.store(0, Ordering::SeqCst);
    }
    COUNTING.store(on, Ordering::SeqCst);
    tracing::callsite::rebuild_interest_cache();
    STATEMENTS.load(Ordering::SeqCst)
}
