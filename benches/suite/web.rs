//! HTTP figures. The server (`restore-desk serve --web-only` on the demo
//! data, release build) runs pinned to CPU 0 and `wrk` to CPU 1, so load
//! generation does not steal from the server; PostgreSQL, when used, runs
//! where the kernel puts it.
//!
//! 1. Filing (`POST /api/v1/tickets`: validation against the catalog, the
//!    ticket, its events and its emails in one transaction) against a raw
//!    sqlx loop, pinned to the same CPU, committing the same rows in the same
//!    transactions.
//! 2. Reading a ticket, as JSON and as the customer's page, against
//!    `/healthz` of the same server under the same load.
//! 3. The staff queue, as page and as JSON, p99 with 100,000 tickets against
//!    the same with 1,000.
//! 7. The server's peak memory, idle and under the filing load.

use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::support::{BIN, BenchDb, Db, Figure, Target, quick};

/// Concurrent connections wrk keeps open.
const CONNECTIONS: &str = "8";

fn seconds() -> u64 {
    if quick() { 4 } else { 10 }
}

/// The desk serving on 127.0.0.1, killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    _mail: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub async fn start(db: &BenchDb) -> Server {
        Server::start_with(db, &[]).await
    }

    /// The desk with settings of its own on top of the suite's.
    pub async fn start_with(db: &BenchDb, settings: &[(&str, &str)]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The demo data first, then the web desk alone: the engine and the
        // relay would run in `worker` processes beside it, and the figures
        // are about the web desk's own work.
        drop(super::support::desk(db, &[]).await);
        let mail = tempfile::tempdir().unwrap();
        let mut command = Command::new("taskset");
        command.envs(settings.iter().copied());
        let child = command
            .args(["-c", "0", BIN, "serve", "--web-only"])
            .env("DATABASE_URL", &db.url)
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("LOGIN_RATE_LIMIT", "0")
            .env("FILING_RATE_LIMIT", "0")
            .env("SANDBOX_STEP_MS", "0")
            .env("RUST_LOG", "error")
            .env("MAIL_DIR", mail.path())
            .env("STATIC_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/static"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("taskset (util-linux) and the desk");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + StdDuration::from_secs(60);
        while reqwest::get(format!("{base}/healthz")).await.is_err() {
            assert!(Instant::now() < deadline, "the desk did not start");
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        Server {
            child,
            base,
            _mail: mail,
        }
    }

    /// Peak resident memory so far, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        // The child is taskset, which execs the desk: same pid.
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap();
        kib / 1024.0
    }

    pub async fn token(&self, email: &str) -> String {
        let response: Value = reqwest::Client::new()
            .post(format!("{}/api/v1/login", self.base))
            .json(&json!({"email": email, "password": "demo"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["token"].as_str().unwrap().to_string()
    }

    /// A signed-in session's cookie header, through the sign-in form.
    pub async fn cookie(&self, email: &str) -> String {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        let page = client
            .get(format!("{}/login", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_string();
        let signed_in = client
            .post(format!("{}/login", self.base))
            .form(&[("email", email), ("password", "demo"), ("csrf", &csrf)])
            .send()
            .await
            .unwrap();
        assert!(signed_in.status().is_success() || signed_in.status().is_redirection());
        let url = self.base.parse().unwrap();
        use reqwest::cookie::CookieStore;
        jar.cookies(&url).unwrap().to_str().unwrap().to_string()
    }

    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

pub struct WrkResult {
    pub requests_per_second: f64,
    pub p99_ms: f64,
}

/// `wrk` pinned to CPU 1 against `url`, with extra headers and a script.
pub fn wrk(url: &str, headers: &[String], script: Option<&str>, connections: &str) -> WrkResult {
    let mut command = Command::new("taskset");
    command.args(["-c", "1", "wrk", "-t1", "-c", connections, "--latency"]);
    command.arg(format!("-d{}s", seconds()));
    for header in headers {
        command.args(["-H", header]);
    }
    let script_file;
    if let Some(script) = script {
        script_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(script_file.path(), script).unwrap();
        command.args(["-s", script_file.path().to_str().unwrap()]);
    }
    command.arg(url);
    let output = command.output().expect("wrk (Debian package wrk)");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "wrk failed: {text}");
    assert!(
        !text.contains("Non-2xx or 3xx responses"),
        "errors under load, the figure would be meaningless:\n{text}"
    );
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rate in wrk output:\n{text}"));
    let p99 = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("99%"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(parse_latency)
        .unwrap_or_else(|| panic!("no p99 in wrk output:\n{text}"));
    WrkResult {
        requests_per_second: rps,
        p99_ms: p99,
    }
}

/// `512.00us`, `1.20ms`, `2.01s` → milliseconds.
fn parse_latency(text: &str) -> f64 {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().unwrap() * scale
}

async fn orders_prod(server: &Server, token: &str) -> String {
    let clusters = server.get_json("/api/v1/clusters", token).await;
    clusters
        .as_array()
        .or_else(|| clusters["clusters"].as_array())
        .unwrap()
        .iter()
        .find(|c| c["name"] == "orders-prod")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn filing_script(token: &str, cluster: &str) -> String {
    let target = (Utc::now() - Duration::hours(2)).to_rfc3339();
    format!(
        r#"
local counter = 0
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
request = function()
  counter = counter + 1
  local body = string.format(
    '{{"cluster_id":"{cluster}","target_time":"{target}","new_cluster_name":"load-%d-%d","severity":"C","description":"benchmark"}}',
    id or 0, counter)
  return wrk.format("POST", "/api/v1/tickets", {{
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer {token}",
  }}, body)
end
"#
    )
}

pub async fn run() -> Vec<Figure> {
    let mut figures = Vec::new();
    for db in [Db::Sqlite, Db::Postgres] {
        figures.extend(filing_and_reading(db).await);
        figures.extend(queue_at_scale(db).await);
    }
    figures
}

async fn filing_and_reading(db: Db) -> Vec<Figure> {
    let bench_db = BenchDb::new(db).await;
    let server = Server::start(&bench_db).await;
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    let idle_mib = server.peak_rss_mib();
    let token = server.token("alice@contoso.example").await;
    let cluster = orders_prod(&server, &token).await;

    // 1. Filing through the API.
    let filing = wrk(
        &server.base,
        &[],
        Some(&filing_script(&token, &cluster)),
        CONNECTIONS,
    );
    let loaded_mib = server.peak_rss_mib();
    let baseline = filing_baseline(&bench_db.url).await;
    let mut figures = vec![Figure::new(
        format!("web: POST /api/v1/tickets req/s, {}", db.name()),
        filing.requests_per_second,
        baseline,
        "req/s",
        Target::AtLeast(0.5),
    )];
    if db == Db::Sqlite {
        figures.push(Figure::new(
            "memory: serve peak RSS under filing load vs idle (SQLite)",
            loaded_mib,
            idle_mib,
            "MiB",
            Target::None,
        ));
    }

    // 2. Reading one ticket, as JSON and as the customer's and the engineer's page.
    let tickets = server.get_json("/api/v1/tickets", &token).await;
    let ticket = tickets
        .as_array()
        .or_else(|| tickets["tickets"].as_array())
        .unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hello = wrk(&format!("{}/healthz", server.base), &[], None, CONNECTIONS);
    let pages = read_pages(&server, &ticket, &token).await;
    let rows = [
        ("web: GET /api/v1/tickets/{id} vs /healthz", 0.3),
        ("web: customer ticket page vs /healthz", 0.25),
        ("web: staff ticket page vs /healthz", 0.25),
    ];
    for ((name, target), rate) in rows.into_iter().zip(pages) {
        figures.push(Figure::new(
            format!("{name}, {}", db.name()),
            rate,
            hello.requests_per_second,
            "req/s",
            Target::AtLeast(target),
        ));
    }
    drop(server);

    // The same reads with nothing remembered (READ_CACHE_MS=0): what a
    // ticket that changes between every two views costs.
    let server = Server::start_with(&bench_db, &[("READ_CACHE_MS", "0")]).await;
    let token = server.token("alice@contoso.example").await;
    let hello = wrk(&format!("{}/healthz", server.base), &[], None, CONNECTIONS);
    let pages = read_pages(&server, &ticket, &token).await;
    let rows = [
        "web: GET /api/v1/tickets/{id} vs /healthz, nothing remembered",
        "web: customer ticket page vs /healthz, nothing remembered",
        "web: staff ticket page vs /healthz, nothing remembered",
    ];
    for (name, rate) in rows.into_iter().zip(pages) {
        figures.push(Figure::new(
            format!("{name}, {}", db.name()),
            rate,
            hello.requests_per_second,
            "req/s",
            Target::None,
        ));
    }
    drop(server);
    bench_db.drop_now().await;
    figures
}

/// Requests per second reading one ticket: as JSON, as the customer's page
/// and as the engineer's page.
async fn read_pages(server: &Server, ticket: &str, token: &str) -> [f64; 3] {
    let api = wrk(
        &format!("{}/api/v1/tickets/{ticket}", server.base),
        &[format!("Authorization: Bearer {token}")],
        None,
        CONNECTIONS,
    );
    let customer = server.cookie("alice@contoso.example").await;
    let customer_page = wrk(
        &format!("{}/tickets/{ticket}", server.base),
        &[format!("Cookie: {customer}")],
        None,
        CONNECTIONS,
    );
    let engineer = server.cookie("sam@support.example").await;
    let staff_page = wrk(
        &format!("{}/staff/tickets/{ticket}", server.base),
        &[format!("Cookie: {engineer}")],
        None,
        CONNECTIONS,
    );
    // The figures are only about pages if the pages were what came back.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, cookie) in [
        (format!("/tickets/{ticket}"), &customer),
        (format!("/staff/tickets/{ticket}"), &engineer),
    ] {
        let page = no_redirects
            .get(format!("{}{path}", server.base))
            .header("cookie", cookie.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), reqwest::StatusCode::OK, "{path}");
    }
    [
        api.requests_per_second,
        customer_page.requests_per_second,
        staff_page.requests_per_second,
    ]
}

/// The raw loop of figure 1: as many concurrent tasks as wrk has
/// connections, each committing what one filing commits. It runs in a
/// child process pinned to CPU 0, like the server.
async fn filing_baseline(url: &str) -> f64 {
    let output = Command::new("taskset")
        .args(["-c", "0"])
        .arg(std::env::current_exe().unwrap())
        .env("BENCH_ROLE", "filing-baseline")
        .env("BENCH_URL", url)
        .env("BENCH_SECONDS", seconds().to_string())
        .env("BENCH_TASKS", CONNECTIONS)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "baseline failed: {text} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("baseline said {text:?}"))
}

/// The body of the filing baseline's child process: prints commits per second.
pub fn filing_baseline_child() {
    let url = std::env::var("BENCH_URL").unwrap();
    let seconds: u64 = std::env::var("BENCH_SECONDS").unwrap().parse().unwrap();
    let tasks: usize = std::env::var("BENCH_TASKS").unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let rate = runtime.block_on(async move {
        if url.starts_with("sqlite") {
            use std::str::FromStr;
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
                .unwrap()
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(StdDuration::from_secs(15));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await
                .unwrap();
            filing_loop_sqlite(pool, seconds, tasks).await
        } else {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .connect(&url)
                .await
                .unwrap();
            filing_loop_postgres(pool, seconds, tasks).await
        }
    });
    println!("{rate}");
}

macro_rules! filing_loop {
    ($name:ident, $pool:ty, $begin:expr) => {
        async fn $name(pool: $pool, seconds: u64, tasks: usize) -> f64 {
            // A ticket as filing writes it, to copy the references from.
            let template: (Uuid, Uuid, Uuid, String) = sqlx::query_as(
                "SELECT c.subscription_id, u.id, c.id, c.resource_group FROM clusters c, users u \
                 WHERE c.name = 'orders-prod' AND u.email = 'alice@contoso.example'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            let report = serde_json::to_string(&json!({
                "checked_at": Utc::now(), "target": Utc::now(),
                "window": {"earliest": Utc::now(), "latest": Utc::now()},
                "online_zones": ["az2", "az3"],
                "plan": {"snapshot_id": "orders-prod-20261124-0230", "snapshot_finished_at": Utc::now(), "zone": "az2"},
                "error": null, "deadline": Utc::now(),
            }))
            .unwrap();
            let text_body = "Hello Alice Martin,\n\nWe received your request.\n".repeat(12);
            let html_body = "<p>Hello Alice Martin,</p><p>We received your request.</p>".repeat(40);
            let deadline = Instant::now() + StdDuration::from_secs(seconds);
            let mut handles = Vec::new();
            for task in 0..tasks {
                let (pool, template, report) = (pool.clone(), template.clone(), report.clone());
                let (text_body, html_body) = (text_body.clone(), html_body.clone());
                handles.push(tokio::spawn(async move {
                    let mut done = 0_u64;
                    while Instant::now() < deadline {
                        let now = Utc::now();
                        let number: i64 = sqlx::query_scalar(
                            "UPDATE counters SET value = value + 1 WHERE name = 'ticket_number' RETURNING value",
                        )
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                        let id = Uuid::new_v4();
                        let mut tx = pool.begin_with($begin).await.unwrap();
                        sqlx::query(
                            "INSERT INTO tickets (id, number, subscription_id, requester_id, cluster_id, \
                             resource_group, target_time, time_zone, new_cluster_name, severity, \
                             description, state, version, validation_report, deadline, \
                             first_response_due, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, 'UTC', $8, 'C', 'benchmark', 'triage', \
                             1, $9, $10, $11, $12, $12)",
                        )
                        .bind(id)
                        .bind(number)
                        .bind(template.0)
                        .bind(template.1)
                        .bind(template.2)
                        .bind(&template.3)
                        .bind(now - Duration::hours(2))
                        .bind(format!("raw-{task}-{done}"))
                        .bind(sqlx::types::Json(serde_json::from_str::<Value>(&report).unwrap()))
                        .bind(now + Duration::days(35))
                        .bind(now + Duration::days(1))
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                        for (action, from, to) in [("file", None, "submitted"), ("auto_validate", Some("submitted"), "triage")] {
                            sqlx::query(
                                "INSERT INTO events (ticket_id, actor_role, action, from_state, to_state, \
                                 detail, created_at) VALUES ($1, 'system', $2, $3, $4, '', $5)",
                            )
                            .bind(id)
                            .bind(action)
                            .bind(from)
                            .bind(to)
                            .bind(now)
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                        }
                        for (kind, recipient) in [("request_received", "alice@contoso.example"), ("new_request", "sam@support.example")] {
                            sqlx::query(
                                "INSERT INTO outbox (id, dedupe_key, ticket_id, kind, recipient, subject, \
                                 text_body, html_body, status, attempts, next_attempt_at, created_at) \
                                 VALUES ($1, $2, $3, $4, $5, 'subject', $6, $7, 'pending', 0, $8, $8)",
                            )
                            .bind(Uuid::new_v4())
                            .bind(format!("ticket:{id}:filed:{kind}"))
                            .bind(id)
                            .bind(kind)
                            .bind(recipient)
                            .bind(&text_body)
                            .bind(&html_body)
                            .bind(now)
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                        }
                        tx.commit().await.unwrap();
                        done += 1;
                    }
                    done
                }));
            }
            let mut total = 0;
            for handle in handles {
                total += handle.await.unwrap();
            }
            total as f64 / seconds as f64
        }
    };
}

filing_loop!(filing_loop_sqlite, sqlx::SqlitePool, "BEGIN IMMEDIATE");
filing_loop!(filing_loop_postgres, sqlx::PgPool, "BEGIN");

/// Bulk tickets for the queue figure, cloned from one filed ticket with new
/// numbers, names, deadlines and a mix of states (40 % open).
async fn add_tickets(url: &str, from: i64, to: i64) {
    let states = "CASE n % 10 WHEN 0 THEN 'triage' WHEN 1 THEN 'in_review' \
                  WHEN 2 THEN 'awaiting_customer' WHEN 3 THEN 'failed' \
                  WHEN 4 THEN 'completed' WHEN 5 THEN 'completed' WHEN 6 THEN 'rejected' \
                  WHEN 7 THEN 'cancelled' WHEN 8 THEN 'completed' ELSE 'cancelled' END";
    let columns = "number, subscription_id, requester_id, cluster_id, resource_group, \
                   target_time, time_zone, new_cluster_name, severity, description, state, version, \
                   validation_report, deadline, first_response_due, created_at, updated_at";
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let sql = format!(
            "WITH RECURSIVE seq(n) AS (SELECT {from} UNION ALL SELECT n + 1 FROM seq WHERE n < {to}) \
             INSERT INTO tickets (id, {columns}) \
             SELECT randomblob(16), 1000000 + n, subscription_id, requester_id, cluster_id, \
               resource_group, target_time, time_zone, 'bulk-' || n, \
               CASE n % 3 WHEN 0 THEN 'A' WHEN 1 THEN 'B' ELSE 'C' END, description, {states}, 1, \
               validation_report, strftime('%Y-%m-%dT%H:%M:%S+00:00', deadline, '+' || (n % 86400) || ' seconds'), \
               first_response_due, created_at, updated_at \
             FROM seq, (SELECT * FROM tickets ORDER BY number LIMIT 1)"
        );
        sqlx::query(&sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let sql = format!(
            "INSERT INTO tickets (id, {columns}) \
             SELECT gen_random_uuid(), 1000000 + n, subscription_id, requester_id, cluster_id, \
               resource_group, target_time, time_zone, 'bulk-' || n, \
               CASE n % 3 WHEN 0 THEN 'A' WHEN 1 THEN 'B' ELSE 'C' END, description, {states}, 1, \
               validation_report, deadline + (n % 86400) * INTERVAL '1 second', \
               first_response_due, created_at, updated_at \
             FROM generate_series({from}, {to}) AS n, (SELECT * FROM tickets ORDER BY number LIMIT 1) t"
        );
        sqlx::query(&sql).execute(&pool).await.unwrap();
        sqlx::query("ANALYZE tickets").execute(&pool).await.unwrap();
        pool.close().await;
    }
}

async fn queue_latencies(server: &Server, token: &str, cookie: &str) -> (f64, f64) {
    let page = wrk(
        &format!("{}/staff/tickets", server.base),
        &[format!("Cookie: {cookie}")],
        None,
        "4",
    );
    let api = wrk(
        &format!("{}/api/v1/tickets", server.base),
        &[format!("Authorization: Bearer {token}")],
        None,
        "4",
    );
    (page.p99_ms, api.p99_ms)
}

async fn queue_at_scale(db: Db) -> Vec<Figure> {
    let bench_db = BenchDb::new(db).await;
    let server = Server::start(&bench_db).await;
    let alice = server.token("alice@contoso.example").await;
    let cluster = orders_prod(&server, &alice).await;
    let filed = reqwest::Client::new()
        .post(format!("{}/api/v1/tickets", server.base))
        .bearer_auth(&alice)
        .json(&json!({
            "cluster_id": cluster,
            "target_time": (Utc::now() - Duration::hours(3)).to_rfc3339(),
            "new_cluster_name": "queue-template",
            "severity": "B",
            "description": "template",
        }))
        .send()
        .await
        .unwrap();
    assert!(
        filed.status().is_success(),
        "{}",
        filed.text().await.unwrap()
    );
    let token = server.token("sam@support.example").await;
    let cookie = server.cookie("sam@support.example").await;

    add_tickets(&bench_db.url, 1, 999).await;
    let (page_small, api_small) = queue_latencies(&server, &token, &cookie).await;
    add_tickets(&bench_db.url, 1000, 99_999).await;
    let (page_large, api_large) = queue_latencies(&server, &token, &cookie).await;
    drop(server);
    bench_db.drop_now().await;
    vec![
        Figure::new(
            format!(
                "web: staff queue page p99, 100k vs 1k tickets, {}",
                db.name()
            ),
            page_large,
            page_small,
            "ms",
            Target::AtMost(2.0),
        ),
        Figure::new(
            format!(
                "web: GET /api/v1/tickets p99, 100k vs 1k tickets, {}",
                db.name()
            ),
            api_large,
            api_small,
            "ms",
            Target::AtMost(2.0),
        ),
    ]
}
