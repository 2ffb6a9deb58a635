//! Shared test harness: fresh databases of both kinds.
#![allow(dead_code)]

pub mod fleet;
pub mod fleet_hosts;
pub mod fleet_net;
pub mod netns;
pub mod pg_server;
pub mod seeded;

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sqlx::Connection;
use uuid::Uuid;

use restore_desk::domain::actor::Role;
use restore_desk::domain::cluster::{Cluster, ClusterConfig, ClusterStatus, Connection as Conn};
use restore_desk::store::{self, ClusterId, DynStore, Subscription, SubscriptionId, User, UserId};

/// The PostgreSQL server tests create their databases on.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database that exists for one test: a SQLite file in a temporary
/// directory, or a fresh PostgreSQL database dropped afterwards.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("desk.db").display());
        TestDb {
            url,
            pg_name: None,
            _dir: Some(dir),
        }
    }

    /// A SQLite file at `path`, in a folder the caller owns.
    pub fn sqlite_at(path: &std::path::Path) -> TestDb {
        TestDb {
            url: format!("sqlite://{}", path.display()),
            pg_name: None,
            _dir: None,
        }
    }

    /// A database on a server the caller runs; nothing is dropped.
    pub fn external(url: String) -> TestDb {
        TestDb {
            url,
            pg_name: None,
            _dir: None,
        }
    }

    pub async fn postgres() -> TestDb {
        let name = format!("rd_test_{}", Uuid::new_v4().simple());
        let admin = pg_admin_url();
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin).expect("admin url");
        url.set_path(&name);
        TestDb {
            url: url.to_string(),
            pg_name: Some(name),
            _dir: None,
        }
    }

    pub async fn of_kind(postgres: bool) -> TestDb {
        if postgres {
            TestDb::postgres().await
        } else {
            TestDb::sqlite().await
        }
    }

    /// Opens and migrates the store.
    pub async fn store(&self) -> DynStore {
        let store = store::open(&self.url).await.expect("open store");
        store.migrate().await.expect("migrate");
        store
    }

    /// The store and the simulated fleet's tables, migrated.
    pub async fn stores(&self) -> (DynStore, store::DynSandboxStore) {
        let (store, sandbox) = store::open_with(&self.url, store::DEFAULT_ACQUIRE_TIMEOUT)
            .await
            .expect("open store");
        store.migrate().await.expect("migrate");
        (store, sandbox)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside async context: use a small runtime on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// What a test runs on when `both_databases!` runs it on each database:
/// a fresh database of that kind, or just whether it is PostgreSQL.
pub trait OnDatabase: Sized {
    async fn on(postgres: bool) -> Self;
}

impl OnDatabase for TestDb {
    async fn on(postgres: bool) -> TestDb {
        TestDb::of_kind(postgres).await
    }
}

impl OnDatabase for bool {
    async fn on(postgres: bool) -> bool {
        postgres
    }
}

/// Runs `test` on a fresh database of the kind asked for.
pub async fn on_database<T: OnDatabase, F: std::future::Future<Output = ()>>(
    postgres: bool,
    test: impl FnOnce(T) -> F,
) {
    test(T::on(postgres).await).await
}

/// Runs each `async fn name(db: TestDb)` (or `(postgres: bool)`) of the
/// file it is called in once on SQLite and once on PostgreSQL, as
/// `sqlite::name` and `postgres::name`. `multi_thread;` first gives them a
/// runtime of two threads (for tests that block one).
#[macro_export]
macro_rules! both_databases {
    (multi_thread; $($name:ident),* $(,)?) => {
        $crate::both_databases!(@each (flavor = "multi_thread", worker_threads = 2); $($name),*);
    };
    ($($name:ident),* $(,)?) => {
        $crate::both_databases!(@each (); $($name),*);
    };
    (@each $flavor:tt; $($name:ident),*) => {
        mod sqlite {
            $(
                #[tokio::test $flavor]
                async fn $name() {
                    $crate::common::on_database(false, super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test $flavor]
                async fn $name() {
                    $crate::common::on_database(true, super::$name).await
                }
            )*
        }
    };
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

/// Two subscriptions, a customer in each, a staff member and an admin, and
/// a cluster in each subscription.
pub struct Seed {
    pub contoso: Subscription,
    pub fabrikam: Subscription,
    pub alice: User,
    pub bob: User,
    pub sam: User,
    pub ada: User,
    pub orders: Cluster,
    pub inventory: Cluster,
}

pub fn user(email: &str, role: Role, subscription: Option<SubscriptionId>) -> User {
    User {
        id: UserId::new(),
        email: restore_desk::store::Email::parse(email).unwrap(),
        display_name: email.split('@').next().unwrap().to_string(),
        password_hash: "not-a-real-hash".to_string(),
        role,
        subscription_id: subscription,
        time_zone: "Europe/Amsterdam".to_string(),
        disabled: false,
        session_epoch: 0,
        must_change_password: false,
        created_at: t0(),
    }
}

pub fn cluster(subscription: SubscriptionId, name: &str) -> Cluster {
    Cluster {
        id: ClusterId::new(),
        subscription_id: subscription,
        resource_group: "rg-prod".into(),
        region: "westeurope".into(),
        name: name.into(),
        config: ClusterConfig {
            tier: "GeneralPurpose".into(),
            vcores: 4,
            storage_gib: 128,
            node_count: 2,
            high_availability: true,
            server_version: "15".into(),
        },
        connection: Conn {
            host: format!("{name}.westeurope.example"),
            port: 5432,
            database: "app".into(),
            user: "app".into(),
        },
        status: ClusterStatus::Ready,
        created_at: t0() - Duration::days(60),
        deleted_at: None,
        restored_from: None,
        location: None,
    }
}

pub async fn seed(store: &DynStore) -> Seed {
    let sub = |slug: &str| Subscription {
        id: SubscriptionId::new(),
        slug: slug.into(),
        name: slug.into(),
        created_at: t0(),
    };
    let contoso = sub("contoso");
    let fabrikam = sub("fabrikam");
    store.create_subscription(&contoso).await.unwrap();
    store.create_subscription(&fabrikam).await.unwrap();
    let alice = user("alice@contoso.example", Role::Customer, Some(contoso.id));
    let bob = user("bob@fabrikam.example", Role::Customer, Some(fabrikam.id));
    let sam = user("sam@support.example", Role::Staff, None);
    let ada = user("ada@admin.example", Role::Admin, None);
    for u in [&alice, &bob, &sam, &ada] {
        store.create_user(u, None).await.unwrap();
    }
    let orders = cluster(contoso.id, "orders-prod");
    let inventory = cluster(fabrikam.id, "inventory");
    store.insert_cluster(&orders).await.unwrap();
    store.insert_cluster(&inventory).await.unwrap();
    Seed {
        contoso,
        fabrikam,
        alice,
        bob,
        sam,
        ada,
        orders,
        inventory,
    }
}

pub mod web;

pub type Shared<T> = Arc<T>;

/// Settings as the binary would parse them, with `args` as flags.
pub fn settings(db: &TestDb, args: &[&str]) -> restore_desk::config::Settings {
    use clap::Parser;
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        settings: restore_desk::config::Settings,
    }
    let mail_dir = std::env::temp_dir()
        .join(format!("rd-mail-{}", Uuid::new_v4().simple()))
        .display()
        .to_string();
    // Test defaults, each unless the caller passes that flag itself.
    let defaults = [
        ("--database-url", db.url.clone()),
        ("--sandbox-step-ms", "0".to_string()),
        ("--retry-base-ms", "1000".to_string()),
        // Scheduled drills only where a test asks for them.
        ("--drill-interval-hours", "0".to_string()),
        ("--mail-dir", mail_dir),
    ];
    let mut all = vec!["restore-desk".to_string()];
    for (flag, value) in defaults {
        if !args.contains(&flag) {
            all.push(flag.to_string());
            all.push(value);
        }
    }
    all.extend(args.iter().map(|a| a.to_string()));
    Flags::parse_from(all).settings
}

/// An app on `db` whose time is `clock`, seeded with the demo data.
pub async fn demo_app(
    db: &TestDb,
    clock: restore_desk::clock::ManualClock,
    args: &[&str],
) -> restore_desk::app::App {
    let app = restore_desk::cli::build(settings(db, args), Arc::new(clock))
        .await
        .expect("build app");
    assert!(restore_desk::demo::seed(&app, "demo").await.expect("seed"));
    app
}
