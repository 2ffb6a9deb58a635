//! The desk meets the faults of the machine under it: a disk that fills up
//! under SQLite, a PostgreSQL server that goes away under load. Each time it
//! answers 503 with a code that says which, changes nothing, doubles no
//! email, and works again by itself once the fault is gone.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::pg_server::PgServer;
use common::web::{Api, Browser, TestApp, spawn_app_on};
use common::{TestDb, t0};
use restore_desk::store::{OutboxQuery, OutboxStatus};
use smtp::{Mode, TestSmtp};

/// A tmpfs of `megabytes`, mounted for one test and unmounted after it.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let path = std::env::temp_dir().join(format!("rd-disk-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("mount (this test runs as root)");
        assert!(status.success(), "mounting a tmpfs needs root");
        SmallDisk { path }
    }

    /// Writes a file until the disk refuses more.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        // What is left is smaller than a block: take it too.
        while file.write_all(&block[..512]).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn filing(orders: &str, n: usize) -> Value {
    json!({"cluster_id": orders, "local_time": "2026-11-24T14:30",
           "time_zone": "Europe/Amsterdam", "new_cluster_name": format!("copy-{n}"),
           "severity": "B", "description": "x".repeat(2000)})
}

async fn readyz(base: &str) -> StatusCode {
    reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .status()
}

async fn ticket_count(desk: &TestApp) -> usize {
    desk.app
        .store
        .tickets(&restore_desk::store::TicketQuery {
            scope: restore_desk::store::Scope::Everything,
            states: vec![],
            severity: None,
            assignee: restore_desk::store::AssigneeFilter::Anyone,
            response_due_before: None,
            search: None,
            order: restore_desk::store::TicketOrder::Newest { before: None },
            limit: 1000,
        })
        .await
        .unwrap()
        .len()
}

fn sqlite_integrity(path: &Path) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn a_full_disk_answers_503_and_writes_resume_once_space_is_freed() {
    let disk = SmallDisk::mount(24);
    let db_path = disk.path.join("desk.db");
    let desk = spawn_app_on(TestDb::sqlite_at(&db_path), &[], |_| {}).await;
    let orders = desk.cluster_id("orders-prod").await.to_string();
    let alice = Api::signed_in(&desk.base, "alice@contoso.example").await;
    let mut browser = Browser::new(&desk.base);
    browser.sign_in("alice@contoso.example").await;

    let (status, body) = alice.post("/api/v1/tickets", filing(&orders, 0)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let before = ticket_count(&desk).await;

    let filler = disk.fill();
    // The space SQLite already holds (log pages it reuses, and pages a
    // refused write's rollback frees) takes a few more writes; then every
    // write is refused: eight in a row, each with its clear code.
    let mut accepted = 0;
    let mut refused_in_a_row = 0;
    let mut n = 1;
    while refused_in_a_row < 8 {
        let (status, body) = alice.post("/api/v1/tickets", filing(&orders, n)).await;
        n += 1;
        match status {
            StatusCode::CREATED => {
                accepted += 1;
                refused_in_a_row = 0;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["error"]["code"], "storage_full", "{body}");
                refused_in_a_row += 1;
            }
            other => panic!("filing on a full disk answered {other}: {body}"),
        }
        assert!(n < 2000, "the full disk never refused every write");
    }
    assert_eq!(readyz(&desk.base).await, StatusCode::SERVICE_UNAVAILABLE);
    // Pages that must write (a form post with its session) say so too.
    let page = browser.get("/tickets").await;
    assert_ne!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);

    std::fs::remove_file(filler).unwrap();
    // No restart: the next writes work, on every pooled connection.
    let mut created = 0;
    for n in 100..116 {
        let (status, body) = alice.post("/api/v1/tickets", filing(&orders, n)).await;
        assert_eq!(status, StatusCode::CREATED, "after freeing space: {body}");
        created += 1;
    }
    assert_eq!(readyz(&desk.base).await, StatusCode::OK);
    let after = ticket_count(&desk).await;
    assert_eq!(after, before + accepted + created, "no half-written rows");
    drop(desk);
    assert_eq!(sqlite_integrity(&db_path), "ok");
}

#[tokio::test]
async fn a_postgres_outage_answers_503_at_once_and_doubles_no_email() {
    let server = PgServer::start();
    server.create_database("desk");
    let smtp = TestSmtp::started();
    // Slow enough that sends are under way when the server goes.
    smtp.set_mode(Mode::Slow(400));
    let url = smtp.url();
    let mut desk = spawn_app_on(
        TestDb::external(server.url("desk")),
        &["--smtp-url", &url],
        |_| {},
    )
    .await;
    desk.start_engine();
    let orders = desk.cluster_id("orders-prod").await.to_string();
    let alice = Arc::new(Api::signed_in(&desk.base, "alice@contoso.example").await);
    let mut browser = Browser::new(&desk.base);
    browser.sign_in("alice@contoso.example").await;

    // Load: four clients filing one request after another.
    let next = Arc::new(AtomicUsize::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (alice, next, stop, orders) =
            (alice.clone(), next.clone(), stop.clone(), orders.clone());
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.is_cancelled() {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let started = Instant::now();
                let (status, body) = alice.post("/api/v1/tickets", filing(&orders, n)).await;
                seen.push((status, body["error"]["code"].clone(), started.elapsed()));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    let down_since = Instant::now();

    // While it is down: 503 database_unavailable, quickly, pages and API.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    assert_eq!(readyz(&desk.base).await, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "readyz waited {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let page = browser.get("/tickets").await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a page waited {:?}",
        started.elapsed()
    );
    let text = page.text().await.unwrap();
    assert!(text.contains("Nothing was changed"), "{text}");
    tokio::time::sleep(Duration::from_millis(2500)).await;

    server.resume();
    let up_at = Instant::now();
    smtp.set_mode(Mode::Accept);
    // Back: filings succeed again within a few seconds, no restart.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n = next.fetch_add(1, Ordering::SeqCst);
        let (status, body) = alice.post("/api/v1/tickets", filing(&orders, n)).await;
        if status == StatusCode::CREATED {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(Instant::now() < deadline, "never recovered: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.cancel();
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.unwrap());
    }
    let down = down_since.elapsed() - up_at.elapsed();
    assert!(down >= Duration::from_secs(3));
    let refused = outcomes
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(refused > 0, "the load met the outage");
    for (status, code, took) in &outcomes {
        assert!(
            *status == StatusCode::CREATED || *status == StatusCode::SERVICE_UNAVAILABLE,
            "only 201 or 503 under an outage, got {status} {code}"
        );
        if *status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(code, "database_unavailable");
            assert!(*took < Duration::from_secs(3), "a refusal took {took:?}");
        }
    }

    // Every email the outbox holds goes out once — including those the
    // server accepted while the database was gone — even after every claim
    // of that time has run out.
    desk.clock.set(t0() + chrono::Duration::minutes(10));
    let store = desk.app.store.clone();
    let all_sent = || async {
        let outbox = store
            .outbox(&OutboxQuery {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        (!outbox.is_empty() && outbox.iter().all(|m| m.status == OutboxStatus::Sent))
            .then_some(outbox)
    };
    let outbox = common::web::eventually(Duration::from_secs(30), all_sent).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = smtp.received();
    let mut ids: Vec<String> = received.iter().map(|r| r.message_id()).collect();
    ids.sort();
    let total = ids.len();
    ids.dedup();
    assert_eq!(
        (total, ids.len()),
        (outbox.len(), outbox.len()),
        "each email exactly once"
    );
}
