//! The pgbackrest backend against real PostgreSQL 15 and pgBackRest, driven
//! through the backend trait the way the restore engine drives it: a real
//! source cluster, a moment between two batches of rows, a restore to that
//! moment into a new cluster, zone outages, and steps cut short.
//!
//! Needs root (servers run as the `postgres` OS user), PostgreSQL 15 in
//! /usr/lib/postgresql/15/bin and pgbackrest on PATH; `.ci/run` installs them.

mod common;

use restore_desk::domain::ids::{ClusterId, JobId, SubscriptionId, TicketId};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use sqlx::Connection as _;
use tokio_util::sync::CancellationToken;

use common::{TestDb, fleet};
use restore_desk::backend::pgbackrest::{FleetConfig, PgBackRestBackend};
use restore_desk::backend::{Backend, FleetView, JobContext, NoProgress, Progress, StepError};
use restore_desk::domain::catalog::{RestorePlan, RetentionPolicy, Zone, ZoneSet};
use restore_desk::domain::cluster::Cluster;
use restore_desk::domain::validation::{ValidationCode, ValidationError, check_target};
use restore_desk::domain::verification::verify;
use restore_desk::store::{DynStore, Subscription};

const REGION: &str = "westeurope";
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A fleet in a temporary folder the `postgres` user can reach. Dropping it
/// stops every server it holds, even when the test failed.
struct TestFleet {
    root: tempfile::TempDir,
    backend: Arc<PgBackRestBackend>,
    store: DynStore,
    _db: TestDb,
}

impl TestFleet {
    async fn new(ports: std::ops::RangeInclusive<u16>) -> TestFleet {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = TestDb::sqlite().await;
        let store = db.store().await;
        for zone in Zone::ALL {
            store
                .ensure_zone(REGION, zone, true, Utc::now())
                .await
                .unwrap();
        }
        let config = FleetConfig {
            fleet_dir: root.path().join("fleet"),
            pg_bin_dir: PG_BIN.into(),
            os_user: "postgres".into(),
            cipher_pass: Some("a passphrase only these tests use".into()),
            retention_days: 35,
            archive_timeout_secs: 2,
            backup_interval: Duration::hours(24),
            ports,
            replay_timeout: StdDuration::from_secs(120),
            host: "local".into(),
            tls_dir: None,
        };
        let backend = Arc::new(
            PgBackRestBackend::open(config, store.clone())
                .await
                .expect("open fleet"),
        );
        TestFleet {
            root,
            backend,
            store,
            _db: db,
        }
    }

    /// A source cluster, real and backed up into every zone.
    async fn source(&self, name: &str) -> Cluster {
        let subscription = Subscription {
            id: SubscriptionId::new(),
            slug: format!("sub-{name}"),
            name: name.into(),
            created_at: Utc::now(),
        };
        self.store.create_subscription(&subscription).await.unwrap();
        let cluster = fleet::source_record(&self.backend, subscription.id.uuid(), name, 4, 128);
        self.store.insert_cluster(&cluster).await.unwrap();
        self.backend
            .create_source(&cluster, ZoneSet::ALL)
            .await
            .expect("create source cluster");
        cluster
    }

    fn restores(&self) -> Vec<PathBuf> {
        fleet::entries(&self.root.path().join("fleet/restores"))
    }

    fn set_zone_readable(&self, zone: Zone, readable: bool) {
        fleet::set_readable(&self.backend.repo_dir(zone), readable);
    }

    async fn check(
        &self,
        cluster: &Cluster,
        target: DateTime<Utc>,
    ) -> Result<RestorePlan, ValidationError> {
        fleet::check(&*self.backend, cluster, target, RetentionPolicy::default()).await
    }

    /// Polls until `target` is restorable (the log past it is archived).
    async fn wait_restorable(&self, cluster: &Cluster, target: DateTime<Utc>) -> RestorePlan {
        // Until a transaction after the target is archived the log ends
        // before it (or, just after the first backups, before any backup's
        // end).
        fleet::wait_restorable(
            &*self.backend,
            cluster,
            target,
            RetentionPolicy::default(),
            |e| {
                matches!(
                    e.code,
                    ValidationCode::TargetInFuture
                        | ValidationCode::TargetBeforeEarliestRestorePoint
                )
            },
        )
        .await
    }
}

impl Drop for TestFleet {
    fn drop(&mut self) {
        for zone in Zone::ALL {
            self.set_zone_readable(zone, true);
        }
        fleet::stop_servers(&self.root.path().join("fleet"));
    }
}

fn job(source: &Cluster, target: DateTime<Utc>, plan: &RestorePlan) -> JobContext {
    JobContext {
        transaction: None,
        job_id: JobId::new(),
        run: 1,
        kind: restore_desk::domain::restore_job::JobKind::Restore,
        ticket_id: Some(TicketId::new()),
        canary: None,
        inspect: false,
        source: source.clone(),
        target,
        new_cluster_id: ClusterId::new(),
        new_cluster_name: "orders-restored".into(),
        plan: Some(plan.clone()),
    }
}

/// Cancels its token at the first sign of files being restored.
struct CancelWhenCopying(CancellationToken);

/// Keeps every report of a step.
#[derive(Default)]
struct Said(std::sync::Mutex<Vec<(f64, String)>>);

impl Progress for Said {
    fn report(&self, fraction: f64, detail: &str) {
        self.0.lock().unwrap().push((fraction, detail.to_string()));
    }
}

impl Progress for CancelWhenCopying {
    fn report(&self, fraction: f64, _detail: &str) {
        if fraction > 0.0 {
            self.0.cancel();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_brings_back_exactly_the_rows_committed_before_the_target() {
    let fleet = TestFleet::new(56100..=56119).await;
    let source = fleet.source("orders-prod").await;
    let t1 = fleet::rows_around_t1(&source.connection).await;
    let plan = fleet.wait_restorable(&source, t1).await;
    let job = job(&source, t1, &plan);
    let none = CancellationToken::new();

    let connection = fleet
        .backend
        .provision(&job, &NoProgress, &none)
        .await
        .unwrap();
    assert_eq!(connection.host, "127.0.0.1");
    assert_ne!(connection.port, source.connection.port);
    // Provisioning again (a worker that died after it) finds the same port.
    let again = fleet
        .backend
        .provision(&job, &NoProgress, &none)
        .await
        .unwrap();
    assert_eq!(again, connection);

    // A restore a dead worker left running (here a stand-in that just
    // waits) is stopped before the step lays the snapshot down again.
    let dir = fleet.backend.restore_dir(job.job_id, job.run);
    let fake = fleet.root.path().join("pgbackrest");
    std::os::unix::fs::symlink("/bin/sleep", &fake).unwrap();
    let mut leftover = std::process::Command::new(&fake)
        .arg("300")
        .process_group(0)
        .spawn()
        .unwrap();
    std::fs::write(dir.join("restore.pid"), leftover.id().to_string()).unwrap();

    // Cut the snapshot restore short while files are being copied.
    let cancel = CancellationToken::new();
    let outcome = fleet
        .backend
        .restore_snapshot(&job, &plan, &CancelWhenCopying(cancel.clone()), &cancel)
        .await;
    assert_eq!(outcome, Err(StepError::Interrupted));
    // Killed, it is gone within moments (on a loaded machine, not at once).
    let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
    while leftover.try_wait().unwrap().is_none() {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", leftover.id()));
        assert!(
            std::time::Instant::now() < deadline,
            "the leftover restore was not stopped: {stat:?}, pid file there: {}",
            dir.join("restore.pid").exists()
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(
        fleet::processes_in(&dir),
        Vec::<String>::new(),
        "nothing runs on"
    );

    // The step runs again from the start and completes, leaving the
    // source's queue of WAL being pushed to the zones alone (a restore of
    // the same stanza empties the spool queue it is given).
    let source_queue = fleet
        .root
        .path()
        .join("fleet/spool/archive")
        .join(source.id.to_string());
    std::fs::create_dir_all(&source_queue).unwrap();
    let queued = source_queue.join("queued-by-the-source");
    std::fs::write(&queued, "").unwrap();
    let owned = std::process::Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(&source_queue)
        .status()
        .unwrap();
    assert!(owned.success());
    let said = Said::default();
    fleet
        .backend
        .restore_snapshot(&job, &plan, &said, &none)
        .await
        .unwrap();
    // While the snapshot is copied, progress is bytes copied of the total.
    let details = said.0.lock().unwrap().clone();
    assert!(
        details
            .iter()
            .any(|(_, d)| d.contains(" of ") && d.ends_with(" copied")),
        "{details:?}"
    );
    assert!(
        details.windows(2).all(|w| w[0].0 <= w[1].0),
        "never back: {details:?}"
    );
    assert_eq!(fleet.restores(), vec![dir.clone()], "one data directory");
    assert!(
        queued.exists(),
        "the restore emptied the source's spool queue"
    );

    // Replay cut short with the server half started, then the restore step
    // run again (a new worker after a crash): the server is stopped first.
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(StdDuration::from_millis(300)).await;
        stopper.cancel();
    });
    let _ = fleet.backend.replay_log(&job, &NoProgress, &cancel).await;
    fleet
        .backend
        .restore_snapshot(&job, &plan, &NoProgress, &none)
        .await
        .unwrap();
    assert_eq!(
        fleet::processes_in(&dir),
        Vec::<String>::new(),
        "no half-started server"
    );
    assert_eq!(fleet.restores(), vec![dir.clone()]);

    let replayed = fleet
        .backend
        .replay_log(&job, &NoProgress, &none)
        .await
        .unwrap();
    let replayed = replayed.expect("the rows' commit was replayed");
    assert!(
        replayed <= t1,
        "replayed {replayed} is after the target {t1}"
    );

    let observed = fleet.backend.inspect(&job, &none).await.unwrap();
    let report = verify(t1, None, &source.config, &observed, false, Utc::now());
    assert!(report.passed(), "{report:#?}");

    let handed_over = fleet.backend.finalize(&job, &none).await.unwrap();
    assert_eq!(handed_over, connection);
    let auto = std::fs::read_to_string(dir.join("data/postgresql.auto.conf")).unwrap();
    assert!(!auto.contains("recovery_target"), "{auto}");

    assert_eq!(fleet::item_ids(&connection).await, vec![1, 2, 3]);
    // A normal cluster now: it takes writes.
    let mut restored = fleet::connect(&connection).await;
    sqlx::query("INSERT INTO items VALUES (100, 'new')")
        .execute(&mut restored)
        .await
        .unwrap();
    restored.close().await.unwrap();

    assert_eq!(
        fleet::item_ids(&source.connection).await,
        vec![1, 2, 3, 4, 5, 6],
        "source untouched"
    );

    fleet.backend.teardown(&job).await.unwrap();
    assert_eq!(fleet.restores(), Vec::<PathBuf>::new());
    assert_eq!(fleet::processes_in(&dir), Vec::<String>::new());
    assert!(!fleet.backend.cluster_home(job.new_cluster_id).exists());
    // Harmless when nothing is left.
    fleet.backend.teardown(&job).await.unwrap();
    // The source still answers with all its rows.
    assert_eq!(fleet::item_ids(&source.connection).await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_outages_and_targets_past_the_archive() {
    let fleet = TestFleet::new(56120..=56139).await;
    let source = fleet.source("billing").await;
    let t1 = fleet::rows_around_t1(&source.connection).await;
    fleet.wait_restorable(&source, t1).await;

    // After the end of the archived log: refused before any restore.
    // Checked against the catalog just read: the archived log can grow
    // between two reads, and `end` would no longer be its end.
    let view = FleetView::read(&*fleet.backend, &source).await.unwrap();
    let end = view.catalog.log_end().expect("archived log");
    let ctx = view.context(&source, RetentionPolicy::default(), Utc::now());
    let refused = check_target(end + Duration::milliseconds(1), &ctx).unwrap_err();
    assert_eq!(refused.code, ValidationCode::TargetInFuture);

    // az1 unreadable: still restorable, from another zone.
    fleet.set_zone_readable(Zone::Az1, false);
    // Automatic backups: none due yet; a day later, one per readable zone.
    let round = fleet.backend.run_backups(Utc::now()).await.unwrap();
    assert_eq!(round.snapshots_taken, 0);
    let round = fleet
        .backend
        .run_backups(Utc::now() + Duration::hours(25))
        .await
        .unwrap();
    assert_eq!(round.snapshots_taken, 2, "az2 and az3");
    assert_eq!(round.snapshots_expired, 0);
    let online = fleet.backend.online_zones(&source).await.unwrap();
    assert_eq!(online, ZoneSet::of(&[Zone::Az2, Zone::Az3]));
    let plan = fleet.check(&source, t1).await.unwrap();
    assert_ne!(plan.zone, Zone::Az1);
    let job1 = job(&source, t1, &plan);
    let none = CancellationToken::new();
    let connection = fleet
        .backend
        .provision(&job1, &NoProgress, &none)
        .await
        .unwrap();
    fleet
        .backend
        .restore_snapshot(&job1, &plan, &NoProgress, &none)
        .await
        .unwrap();
    // The planned zone goes too before the log is replayed: the same WAL
    // comes from the last readable zone.
    fleet.set_zone_readable(plan.zone, false);
    fleet
        .backend
        .replay_log(&job1, &NoProgress, &none)
        .await
        .unwrap();
    fleet.set_zone_readable(plan.zone, true);
    let observed = fleet.backend.inspect(&job1, &none).await.unwrap();
    assert!(verify(t1, None, &source.config, &observed, false, Utc::now()).passed());
    assert_eq!(fleet::item_ids(&connection).await, vec![1, 2, 3]);
    fleet.backend.teardown(&job1).await.unwrap();

    // Every zone unreadable: the backups are known but out of reach.
    fleet.set_zone_readable(Zone::Az2, false);
    fleet.set_zone_readable(Zone::Az3, false);
    assert_eq!(
        fleet.backend.online_zones(&source).await.unwrap(),
        ZoneSet::NONE
    );
    let refused = fleet.check(&source, t1).await.unwrap_err();
    assert_eq!(
        refused.code,
        ValidationCode::NoBackupInOnlineZone,
        "{refused:?}"
    );
    let job2 = job(&source, t1, &plan);
    fleet
        .backend
        .provision(&job2, &NoProgress, &none)
        .await
        .unwrap();
    match fleet
        .backend
        .restore_snapshot(&job2, &plan, &NoProgress, &none)
        .await
    {
        Err(StepError::Retryable { code, message }) => {
            assert_eq!(code, "zone_unavailable");
            assert!(message.contains(plan.zone.as_str()), "{message}");
        }
        other => panic!("expected a retryable zone outage, got {other:?}"),
    }
    fleet.backend.teardown(&job2).await.unwrap();
    assert_eq!(fleet.restores(), Vec::<PathBuf>::new());
}

/// Among ordinary commits a table is dropped. Read from a zone's archived
/// log, the list shows the DROP by the table's name — known from before the
/// drop — with the commits on either side of it in commit order, each with
/// its rows, to the microsecond; a bulk delete is marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archived_log_shows_a_dropped_table_by_name_among_its_neighbours() {
    use restore_desk::desk::transactions::name_transaction;
    use restore_desk::domain::transactions::DdlKind;

    let fleet = TestFleet::new(56220..=56239).await;
    let source = fleet.source("orders-prod").await;
    let mut conn = fleet::connect(&source.connection).await;
    for sql in [
        "CREATE TABLE orders (id bigint PRIMARY KEY, note text)",
        "CREATE TABLE audit (id bigserial PRIMARY KEY, what text)",
        "INSERT INTO orders SELECT g, 'first' FROM generate_series(1, 5) g",
        "INSERT INTO orders SELECT g, 'second' FROM generate_series(6, 1205) g",
        "DELETE FROM orders WHERE id > 5",
        "INSERT INTO audit (what) VALUES ('just before')",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    // The desk reads the names while the table exists, as its backup
    // round does.
    let before_drop = fleet.backend.relation_names(&source).await.unwrap();
    assert!(
        before_drop
            .iter()
            .any(|(_, n)| n.table && n.qualified() == "public.orders"),
        "{before_drop:?}"
    );
    let started = Utc::now() - Duration::seconds(60);
    sqlx::query("DROP TABLE orders")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO audit (what) VALUES ('just after')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let after_drop = fleet.backend.relation_names(&source).await.unwrap();
    assert!(after_drop.iter().all(|(_, n)| n.name != "orders"));
    let names: std::collections::HashMap<_, _> =
        before_drop.into_iter().chain(after_drop).collect();

    // Once the log past the drop is archived, it is all there.
    let deadline = std::time::Instant::now() + StdDuration::from_secs(90);
    let read = loop {
        let read = fleet
            .backend
            .transactions(&source, started, Utc::now() + Duration::seconds(5))
            .await
            .unwrap();
        let named: Vec<_> = read
            .transactions
            .iter()
            .map(|t| name_transaction(t, &names))
            .collect();
        let drop_time = named
            .iter()
            .find(|t| t.ddl.iter().any(|(kind, _)| *kind == DdlKind::Drop))
            .map(|t| t.committed_at);
        let after = drop_time.is_some_and(|dropped| {
            named.iter().any(|t| {
                t.committed_at > dropped
                    && t.rows
                        .iter()
                        .any(|(r, c)| r.name == "public.audit" && c.inserted == 1)
            })
        });
        if after {
            break named;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the drop and the commit after it never reached the archive: {named:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(500)).await;
    };
    assert!(!read.is_empty());
    assert!(
        read.windows(2)
            .all(|w| w[0].committed_at <= w[1].committed_at),
        "in commit order"
    );
    let drop_at = read
        .iter()
        .position(|t| t.ddl.iter().any(|(kind, _)| *kind == DdlKind::Drop))
        .expect("the DROP");
    let drop = &read[drop_at];
    let dropped: Vec<&str> = drop
        .ddl
        .iter()
        .filter(|(kind, _)| *kind == DdlKind::Drop)
        .flat_map(|(_, relations)| relations.iter().map(|r| r.name.as_str()))
        .collect();
    assert_eq!(
        dropped,
        vec!["public.orders"],
        "by name, its index behind it: {drop:?}"
    );
    assert!(drop.destructive);
    assert_ne!(
        drop.committed_at.timestamp_subsec_micros(),
        0,
        "to the microsecond"
    );
    // Its neighbours, as they were written.
    let audit = |t: &restore_desk::desk::transactions::NamedTransaction| {
        t.rows
            .iter()
            .any(|(r, c)| r.name == "public.audit" && c.inserted == 1)
    };
    let just_before = read[..drop_at]
        .iter()
        .rev()
        .find(|t| audit(t))
        .expect("the commit before");
    let just_after = read[drop_at + 1..]
        .iter()
        .find(|t| audit(t))
        .expect("the commit after");
    assert!(
        just_before.committed_at < drop.committed_at && drop.committed_at < just_after.committed_at
    );
    let orders_rows = |t: &restore_desk::desk::transactions::NamedTransaction| {
        t.rows
            .iter()
            .find(|(r, _)| r.name == "public.orders")
            .map(|(_, c)| (c.inserted, c.updated, c.deleted))
    };
    assert!(read.iter().any(|t| orders_rows(t) == Some((5, 0, 0))));
    let bulk = read
        .iter()
        .find(|t| orders_rows(t) == Some((0, 0, 1200)))
        .expect("the bulk delete");
    assert!(bulk.large_delete && bulk.destructive);
    assert!(
        read.iter()
            .filter(|t| t.ddl.iter().any(|(k, _)| *k == DdlKind::Create))
            .count()
            >= 2,
        "both CREATE TABLEs"
    );
}
