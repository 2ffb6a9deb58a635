//! What happened around a moment, on a real fleet whose window spans about
//! 1 GB of archived WAL (256 MB with QUICK=1): the desk's first listing of
//! the transactions around a moment in the middle of it (the search of the
//! archive by commit time, each segment fetched with `archive-get` and
//! decoded with `pg_waldump`, names read from the source), against the
//! same segments fetched and decoded by hand in the same run; and a second
//! listing, from what the first decoded, against the first.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use sqlx::Connection as _;

use super::fleet;
use super::support::{BenchDb, Db, Figure, Target, quick, settings};
use restore_desk::backend::pgbackrest::PgBackRestBackend;
use restore_desk::clock::SystemClock;
use restore_desk::domain::actor::Role;
use restore_desk::domain::catalog::{Zone, ZoneSet};
use restore_desk::domain::ids::{SubscriptionId, UserId};
use restore_desk::store::{Subscription, User};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const FLEET_PORTS: &str = "56340-56359";
/// One commit's rows: about 10 MB of log.
const ROWS_PER_COMMIT: i64 = 10_000;

pub async fn run() -> Vec<Figure> {
    let commits: i64 = if quick() { 26 } else { 100 };
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = BenchDb::new(Db::Sqlite).await;
    let fleet_dir = root.path().join("fleet");
    let settings = settings(
        &db,
        &[
            "--backend",
            "pgbackrest",
            "--fleet-dir",
            &fleet_dir.display().to_string(),
            "--fleet-ports",
            FLEET_PORTS,
            "--archive-timeout-seconds",
            "2",
            "--backup-cipher-pass",
            "a passphrase only this benchmark uses",
        ],
    );
    let (app, fleet) = restore_desk::cli::build_with_fleet(settings, Arc::new(SystemClock))
        .await
        .expect("the desk on a pgbackrest fleet");
    let fleet: Arc<PgBackRestBackend> = fleet.expect("the pgbackrest fleet");
    let stop = StopServers(fleet_dir.clone());
    let now = Utc::now();
    let contoso = Subscription {
        id: SubscriptionId::new(),
        slug: "contoso".into(),
        name: "Contoso".into(),
        created_at: now,
    };
    app.store.create_subscription(&contoso).await.unwrap();
    let sam = User {
        id: UserId::new(),
        email: restore_desk::store::Email::parse("sam@support.example").unwrap(),
        display_name: "sam".into(),
        password_hash: "not used".into(),
        role: Role::Staff,
        subscription_id: None,
        time_zone: "UTC".into(),
        disabled: false,
        session_epoch: 0,
        must_change_password: false,
        created_at: now,
    };
    app.store.create_user(&sam, None).await.unwrap();
    for zone in Zone::ALL {
        app.store
            .ensure_zone("westeurope", zone, true, now)
            .await
            .unwrap();
    }
    let source = fleet::source_record(&fleet, contoso.id.uuid(), "orders-prod", 8, 512);
    app.store.insert_cluster(&source).await.unwrap();
    fleet.create_source(&source, ZoneSet::ALL).await.unwrap();

    // The log: many commits of some 10 MB each, spread over time.
    let mut conn = fleet::connect(&source.connection).await;
    sqlx::query("CREATE TABLE big (id bigint, pad text)")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut moments: Vec<DateTime<Utc>> = Vec::new();
    for batch in 0..commits {
        sqlx::query(
            "INSERT INTO big SELECT g, repeat(md5(g::text), 32) \
             FROM generate_series($1, $1 + $2 - 1) g",
        )
        .bind(batch * ROWS_PER_COMMIT)
        .bind(ROWS_PER_COMMIT)
        .execute(&mut conn)
        .await
        .unwrap();
        moments.push(Utc::now());
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    conn.close().await.unwrap();
    let last = *moments.last().unwrap();
    fleet::wait_restorable(&*app.backend, &source, last, app.policy(), |_| true).await;
    let middle = moments[moments.len() / 2];

    // Ours: the page around the moment the API serves, from cold.
    let started = Instant::now();
    let first = restore_desk::desk::transactions::around(&app, &sam, source.id, middle, 10, 10)
        .await
        .unwrap();
    let ours = started.elapsed().as_secs_f64();
    assert!(!first.transactions.is_empty(), "the page lists commits");
    let started = Instant::now();
    let again = restore_desk::desk::transactions::around(&app, &sam, source.id, middle, 10, 10)
        .await
        .unwrap();
    let cached = started.elapsed().as_secs_f64();
    assert_eq!(
        again.transactions.iter().map(|t| t.xid).collect::<Vec<_>>(),
        first.transactions.iter().map(|t| t.xid).collect::<Vec<_>>()
    );

    // By hand: the segments the desk decoded, each fetched and dumped the
    // way an operator would, one after the other as the desk does.
    let segments = fleet.decoded_segments(source.id);
    assert!(!segments.is_empty());
    let conf = fleet.cluster_home(source.id).join("pgbackrest.conf");
    let scratch = root.path().join("by-hand");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o777)).unwrap();
    let started = Instant::now();
    for segment in &segments {
        let file = scratch.join(segment);
        let got = as_postgres("pgbackrest", &scratch)
            .arg(format!("--config={}", conf.display()))
            .arg(format!("--stanza={}", source.id))
            .arg("--repo=1")
            .arg("archive-get")
            .arg(segment)
            .arg(&file)
            .output()
            .await
            .unwrap();
        assert!(got.status.success(), "archive-get {segment}: {got:?}");
        let dumped = as_postgres(Path::new(PG_BIN).join("pg_waldump"), &scratch)
            .arg(&file)
            .output()
            .await
            .unwrap();
        assert!(!dumped.stdout.is_empty(), "pg_waldump {segment}");
        let _ = std::fs::remove_file(&file);
    }
    let by_hand = started.elapsed().as_secs_f64();
    let log_mb = commits * ROWS_PER_COMMIT * 1_100 / 1_000_000;
    drop(stop);
    vec![
        Figure::new(
            format!(
                "transactions: around a moment, ~{log_mb} MB of log, vs {} segments by hand",
                segments.len()
            ),
            ours,
            by_hand,
            "s",
            Target::AtMost(1.2),
        ),
        Figure::new(
            "transactions: the same page again (decoded segments kept) vs first",
            cached,
            ours,
            "s",
            Target::None,
        ),
    ]
}

/// Stops every server of the fleet when dropped, a panic included.
struct StopServers(std::path::PathBuf);

impl Drop for StopServers {
    fn drop(&mut self) {
        fleet::stop_servers(&self.0);
    }
}

/// A command run as the fleet's user, without a shell, as the backend runs
/// its own.
fn as_postgres(program: impl AsRef<std::ffi::OsStr>, cwd: &Path) -> tokio::process::Command {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let fields: Vec<&str> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[0] == "postgres")
        .expect("the postgres OS user");
    let (uid, gid, home) = (
        fields[2].parse::<u32>().unwrap(),
        fields[3].parse::<u32>().unwrap(),
        fields[5].to_string(),
    );
    let mut command = tokio::process::Command::new(program);
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home)
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .uid(uid)
        .gid(gid);
    command
}
