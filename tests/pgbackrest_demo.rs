//! `BACKEND=pgbackrest restore-desk demo`: the demo clusters created for
//! real, and SPEC §8's story told by real backups: az1 starts offline,
//! `legacy-crm`'s oldest moments are held in az1 only, `old-billing` is
//! deleted yet restorable, `orders-prod` restores from az2/az3.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use sqlx::Connection as _;

use common::TestDb;
use restore_desk::app::App;
use restore_desk::clock::SystemClock;
use restore_desk::domain::actor::{Actor, Role};
use restore_desk::domain::catalog::Zone;
use restore_desk::domain::cluster::Cluster;
use restore_desk::domain::validation::{ValidationCode, ValidationError};
use restore_desk::store::EventAction;
use restore_desk::store::{NewEvent, Scope};

struct Guard(std::path::PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        common::fleet::stop_servers(&self.0);
    }
}

async fn check(
    app: &App,
    cluster: &Cluster,
    target: chrono::DateTime<Utc>,
) -> Result<Zone, ValidationError> {
    common::fleet::check(&*app.backend, cluster, target, app.policy())
        .await
        .map(|plan| plan.zone)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_fleet_is_real_and_tells_the_spec_story() {
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let fleet_dir = root.path().join("fleet");
    let _guard = Guard(fleet_dir.clone());
    let db = TestDb::sqlite().await;
    let fleet_arg = fleet_dir.display().to_string();
    let settings = common::settings(
        &db,
        &[
            "--backend",
            "pgbackrest",
            "--fleet-dir",
            &fleet_arg,
            "--fleet-ports",
            "56140-56159",
            "--archive-timeout-seconds",
            "2",
        ],
    );
    let (app, fleet) = restore_desk::cli::build_with_fleet(settings, Arc::new(SystemClock))
        .await
        .unwrap();
    let fleet = fleet.expect("the pgbackrest fleet");
    assert!(
        restore_desk::demo::seed_fleet(&app, &fleet, "demo")
            .await
            .unwrap()
    );
    assert!(
        !restore_desk::demo::seed_fleet(&app, &fleet, "demo")
            .await
            .unwrap()
    );

    let clusters = app.store.clusters(Scope::Everything, true).await.unwrap();
    let named = |name: &str| clusters.iter().find(|c| c.name == name).unwrap().clone();
    assert_eq!(clusters.len(), 5);
    let orders = named("orders-prod");
    assert_eq!(orders.config.server_version, "15");

    // Real servers with their sample data, except the deleted one.
    let options = |c: &Cluster| {
        sqlx::postgres::PgConnectOptions::new()
            .host("127.0.0.1")
            .port(c.connection.port as u16)
            .username(&c.connection.user)
            .database(&c.connection.database)
    };
    let mut conn = sqlx::PgConnection::connect_with(&options(&orders))
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sample_rows")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 20_000);
    conn.close().await.unwrap();
    let billing = named("old-billing");
    assert!(billing.deleted_at.is_some());
    assert!(
        sqlx::PgConnection::connect_with(&options(&billing))
            .await
            .is_err()
    );

    // Wait for the first archived transactions past the backups.
    fleet.heartbeat().await;
    let started = Instant::now();
    let probe = Utc::now() - Duration::milliseconds(200);
    fleet.heartbeat().await;
    let zone = loop {
        match check(&app, &orders, probe).await {
            Ok(zone) => break zone,
            Err(_) if started.elapsed() < StdDuration::from_secs(60) => {
                fleet.heartbeat().await;
                tokio::time::sleep(StdDuration::from_millis(500)).await;
            }
            Err(e) => panic!("orders-prod never became restorable: {e:?}"),
        }
    };
    assert_ne!(zone, Zone::Az1, "az1 starts offline");

    // old-billing: restorable up to its deletion, not after.
    let deleted = billing.deleted_at.unwrap();
    let refused = check(&app, &billing, deleted + Duration::seconds(1))
        .await
        .unwrap_err();
    assert_eq!(refused.code, ValidationCode::TargetInFuture);
    let catalog = app.backend.catalog(&billing).await.unwrap();
    let last = catalog.log_end().unwrap();
    assert!(last <= deleted);
    assert!(
        check(&app, &billing, last - Duration::milliseconds(1))
            .await
            .is_ok()
    );

    // legacy-crm: moments before its az2/az3 backups are held in az1 only.
    let crm = named("legacy-crm");
    let catalog = app.backend.catalog(&crm).await.unwrap();
    let first = |zone: Zone| {
        catalog
            .snapshots
            .iter()
            .filter(|s| s.zones.contains(zone))
            .map(|s| s.finished_at)
            .min()
            .unwrap()
    };
    let (az1, az2) = (first(Zone::Az1), first(Zone::Az2));
    assert!(az1 < az2, "az1's backup comes first");
    let between = az1 + (az2 - az1) / 2;
    // Once the log past that moment is archived (a heartbeat ends a
    // transaction after it), only az1 could serve it.
    let started = Instant::now();
    let refused = loop {
        let refused = check(&app, &crm, between).await.unwrap_err();
        if refused.code != ValidationCode::TargetInFuture {
            break refused;
        }
        assert!(
            started.elapsed() < StdDuration::from_secs(60),
            "{refused:?}"
        );
        fleet.heartbeat().await;
        tokio::time::sleep(StdDuration::from_millis(500)).await;
    };
    assert_eq!(
        refused.code,
        ValidationCode::NoBackupInOnlineZone,
        "{refused:?}"
    );
    let admin = Actor::user(uuid::Uuid::new_v4().into(), Role::Admin);
    app.store
        .set_zone_online(
            "westeurope",
            Zone::Az1,
            true,
            NewEvent::admin(admin, EventAction::ZoneOnline, "az1 back", Utc::now()),
        )
        .await
        .unwrap();
    assert_eq!(check(&app, &crm, between).await, Ok(Zone::Az1));
}
