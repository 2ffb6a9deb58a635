//! The real binary: `demo` starts and answers on both databases, and bad
//! configuration ends in one clear line and a non-zero exit.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_restore-desk");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn desk(database_url: &str, dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("MAIL_DIR", dir.join("mail"))
        .env("DRILL_INTERVAL_HOURS", "0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    command
}

/// Kills the child when dropped, so a failing test leaves no server behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_healthy(port: u16) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
            return response;
        }
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn demo_serves(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = desk(&db.url, dir.path())
        .arg("demo")
        .env("BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _running = Running(child);
    let health = wait_healthy(port).await;
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // The demo's data is really there.
    let store = db.store().await;
    let users = store.users().await.unwrap();
    assert_eq!(users.len(), 4);
    let clusters = store
        .clusters(restore_desk::store::Scope::Everything, true)
        .await
        .unwrap();
    let mut names: Vec<_> = clusters.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "analytics",
            "inventory",
            "legacy-crm",
            "old-billing",
            "orders-prod"
        ]
    );
}

#[tokio::test]
async fn demo_serves_on_a_fresh_sqlite_file() {
    demo_serves(&TestDb::sqlite().await).await;
}

#[tokio::test]
async fn migrate_then_demo_serves_on_postgres() {
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let migrated = desk(&db.url, dir.path()).arg("migrate").output().unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    demo_serves(&db).await;
}

fn assert_one_line_failure(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "should fail: {stderr}");
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(expected), "{expected:?} not in {stderr}");
}

#[test]
fn a_malformed_database_url_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = desk("mysql//nope", dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert_one_line_failure(&output, "is not a database URL");
}

#[test]
fn an_unreachable_database_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://desk:secret@127.0.0.1:{}/desk", free_port());
    let output = desk(&url, dir.path()).arg("serve").output().unwrap();
    assert_one_line_failure(&output, "Connection refused");
    // The password never shows.
    assert!(!String::from_utf8_lossy(&output.stderr).contains("secret"));
    let output = desk("sqlite:///no/such/dir/desk.db", dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert_one_line_failure(&output, "unable to open database file");
}

async fn a_newer_schema_is_refused(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let migrated = desk(&db.url, dir.path()).arg("migrate").output().unwrap();
    assert!(migrated.status.success());
    // A later release migrated this database further.
    let store = restore_desk::store::open(&db.url).await.unwrap();
    drop(store);
    let sql = "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
               execution_time) VALUES (9999, 'from the future', TRUE, X'00', 0)";
    if db.url.starts_with("sqlite") {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    } else {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(&sql.replace("X'00'", "'\\x00'::bytea"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for command in ["migrate", "serve"] {
        let output = desk(&db.url, dir.path()).arg(command).output().unwrap();
        assert_one_line_failure(
            &output,
            "schema version 9999, newer than this restore-desk knows",
        );
    }
}

#[test]
fn a_bad_setting_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = desk("sqlite://x.db", dir.path())
        .arg("migrate")
        .env("RETENTION_DAYS", "0")
        .output()
        .unwrap();
    assert_one_line_failure(&output, "RETENTION_DAYS must be between 1 and 3650");
}

#[tokio::test]
async fn user_create_adds_people_who_can_sign_in() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let created = desk(&db.url, dir.path())
        .args([
            "user",
            "create",
            "--email",
            "Carol@Contoso.example",
            "--role",
            "customer",
        ])
        .args([
            "--subscription",
            "contoso",
            "--name",
            "Carol",
            "--time-zone",
            "Europe/Paris",
        ])
        .env("RESTORE_DESK_USER_PASSWORD", "long enough passphrase")
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    assert!(
        String::from_utf8_lossy(&created.stdout).contains("created customer carol@contoso.example")
    );
    let staff = desk(&db.url, dir.path())
        .args([
            "user",
            "create",
            "--email",
            "dan@support.example",
            "--role",
            "staff",
        ])
        .env("RESTORE_DESK_USER_PASSWORD", "long enough passphrase")
        .output()
        .unwrap();
    assert!(staff.status.success(), "{staff:?}");

    let store = db.store().await;
    let carol = store
        .user_by_email(&restore_desk::store::Email::parse("carol@contoso.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(carol.role, restore_desk::domain::actor::Role::Customer);
    assert_eq!(carol.time_zone, "Europe/Paris");
    let contoso = store
        .subscription_by_slug("contoso")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(carol.subscription_id, Some(contoso.id));
    assert!(restore_desk::password::verify("long enough passphrase", &carol.password_hash).await);
    assert!(!carol.password_hash.contains("long enough passphrase"));

    for (args, expected) in [
        (
            vec!["--email", "eve@x.example", "--role", "customer"],
            "a customer needs --subscription",
        ),
        (
            vec!["--email", "dan@support.example", "--role", "staff"],
            "already exists",
        ),
        (
            vec!["--email", "sys@x.example", "--role", "system"],
            "system is not a role",
        ),
        (
            vec!["--email", "not-an-address", "--role", "staff"],
            "Enter an email address",
        ),
        (
            vec![
                "--email",
                "tz@x.example",
                "--role",
                "staff",
                "--time-zone",
                "Mars/Olympus",
            ],
            "not an IANA time zone",
        ),
    ] {
        let output = desk(&db.url, dir.path())
            .args(["user", "create"])
            .args(&args)
            .env("RESTORE_DESK_USER_PASSWORD", "long enough passphrase")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
        assert!(!stderr.contains("panicked"));
    }
    // The password rules of every other way in.
    for (password, expected) in [
        ("short", "at least 12 characters"),
        ("qwerty123456", "most common"),
    ] {
        let output = desk(&db.url, dir.path())
            .args([
                "user",
                "create",
                "--email",
                "weak@support.example",
                "--role",
                "staff",
            ])
            .env("RESTORE_DESK_USER_PASSWORD", password)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    }
    assert!(
        store
            .user_by_email(&restore_desk::store::Email::parse("weak@support.example").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    // Audited like an admin's change, at the desk's clock.
    let audit = store.audit_log(None, 10).await.unwrap();
    let created: Vec<_> = audit.iter().filter(|e| e.action == "user_create").collect();
    assert_eq!(created.len(), 2, "{audit:#?}");
    assert!(
        created
            .iter()
            .all(|e| e.detail.contains("(from the command line)"))
    );
    assert!(
        created
            .iter()
            .any(|e| e.detail.contains("carol@contoso.example"))
    );
}

crate::both_databases!(a_newer_schema_is_refused);
