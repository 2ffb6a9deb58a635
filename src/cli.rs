//! The `restore-desk` command line: one binary for the web desk, the
//! workers, migrations, user management and the demo.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::backend::DynBackend;
use crate::backend::pgbackrest::PgBackRestBackend;
use crate::backend::sandbox::SandboxBackend;
use crate::clock::{Clock, SystemClock};
use crate::config::{BackendKind, LogFormat, Settings};
use crate::desk::DeskError;
use crate::desk::admin::{NewUser, Operator};
use crate::domain::actor::Role;
use crate::domain::host::FleetDescription;
use crate::store;
use crate::token_cache::TokenCache;
use crate::{demo, desk, engine, notify, web};

#[derive(Parser)]
#[command(
    name = "restore-desk",
    version,
    about = "A help desk for point-in-time restores of managed database clusters"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the web desk and run restore workers.
    Serve {
        /// The web desk only: no workers, duties or email relay in this
        /// process; run `restore-desk worker` processes beside it.
        #[arg(long)]
        web_only: bool,
    },
    /// Run restore workers and scheduled duties only (no web server).
    Worker,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Seed an empty database with the demo data, then serve it.
    Demo,
    /// Stop every PostgreSQL server of the pgbackrest fleet (they outlive
    /// the desk; `serve` starts them again).
    StopFleet,
    /// Manage people who sign in.
    #[command(subcommand)]
    User(UserCommand),
    /// Register clusters that run outside the desk.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Set up the fleet across hosts.
    #[command(subcommand)]
    Fleet(FleetCommand),
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Register an existing cluster of a source host: the desk reads its
    /// backups from the zones and never writes to it.
    Register(Box<RegisterArgs>),
}

#[derive(clap::Args)]
pub struct RegisterArgs {
    #[arg(long)]
    name: String,
    /// The subscription's short name.
    #[arg(long)]
    subscription: String,
    #[arg(long)]
    resource_group: String,
    #[arg(long)]
    region: Option<String>,
    /// The fleet's source host it runs on.
    #[arg(long = "source-host")]
    source_host: String,
    #[arg(long)]
    port: i64,
    #[arg(long)]
    stanza: String,
    #[arg(long)]
    data_directory: String,
    #[arg(long)]
    socket_directory: Option<String>,
    /// Its pgBackRest configuration on its host.
    #[arg(long)]
    backrest_config: Option<String>,
    #[arg(long)]
    database: String,
    #[arg(long = "db-user")]
    db_user: String,
    #[arg(long)]
    tier: String,
    #[arg(long)]
    vcores: i64,
    #[arg(long)]
    storage_gib: i64,
    #[arg(long, default_value_t = 1)]
    node_count: i64,
    #[arg(long)]
    high_availability: bool,
    #[arg(long)]
    server_version: String,
    /// A zone that holds its backups (repeat; all three when left out).
    #[arg(long = "zone")]
    zones: Vec<crate::domain::catalog::Zone>,
}

#[derive(Subcommand)]
pub enum FleetCommand {
    /// Issues the fleet's certificates once: a small CA and, for every host
    /// of the fleet description and for the desk's own processes, a server
    /// and a client certificate (`DIR/hosts/<name>/`, keys mode 600).
    /// Running it again issues only what is missing.
    Certs {
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user who can sign in.
    Create {
        #[arg(long)]
        email: String,
        /// How the person is named on pages and in emails.
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Customers only: the subscription's short name (created if new).
        #[arg(long)]
        subscription: Option<String>,
        /// IANA time zone the person reads times in.
        #[arg(long, default_value = "UTC")]
        time_zone: String,
        /// The password; prefer the environment variable over the flag.
        #[arg(long, env = "RESTORE_DESK_USER_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    match text.parse::<Role>()? {
        Role::System => Err("system is not a role a person can hold".into()),
        role => Ok(role),
    }
}

pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_sessions=warn,lettre=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Opens and migrates the store, and wires the fleet backend.
pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
    Ok(build_with_fleet(settings, clock).await?.0)
}

/// Like `build`, and hands out the real fleet too when `BACKEND=pgbackrest`,
/// for what only it does: create source clusters and start them.
pub async fn build_with_fleet(
    settings: Settings,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(App, Option<Arc<PgBackRestBackend>>)> {
    // Read before anything is opened: a wrong description stops the start
    // with nothing stored.
    let description = match &settings.fleet_config {
        Some(path) => Some((path.clone(), read_fleet_description(path)?)),
        None => None,
    };
    let (store, sandbox) =
        store::open_with(&settings.database_url, settings.db_acquire_timeout()).await?;
    store.migrate().await?;
    let (backend, fleet): (DynBackend, _) = match settings.backend {
        BackendKind::Sandbox => (
            Arc::new(SandboxBackend::new(
                store.clone(),
                sandbox.clone(),
                clock.clone(),
                Duration::from_millis(settings.sandbox_step_ms),
                settings.retention(),
                settings.sandbox_host_disk_gib.max(0) * 1024 * 1024 * 1024,
            )),
            None,
        ),
        BackendKind::Pgbackrest => {
            let fleet = Arc::new(PgBackRestBackend::open(settings.fleet(), store.clone()).await?);
            (fleet.clone(), Some(fleet))
        }
    };
    let mailer = notify::mailer(&settings).map_err(anyhow::Error::msg)?;
    let api_tokens = Arc::new(TokenCache::new(chrono::Duration::milliseconds(
        settings.api_token_cache_ms.max(0),
    )));
    let settings_read_cache = settings.read_cache();
    let secret_key = match &settings.secret_key {
        Some(key) if !key.trim().is_empty() => key.clone(),
        _ => {
            store
                .ensure_secret("endpoint_key", &crate::notify::post::SecretKey::generate())
                .await?
        }
    };
    let app = App {
        settings: Arc::new(settings),
        store,
        sandbox,
        backend,
        clock,
        mailer,
        work_ready: Arc::new(tokio::sync::Notify::new()),
        mail_ready: Arc::new(tokio::sync::Notify::new()),
        local_relay: Arc::default(),
        cluster_names: Arc::default(),
        api_tokens,
        reads: Arc::new(crate::desk::read::ReadCaches::new(settings_read_cache)),
        secret_key: crate::notify::post::SecretKey::new(&secret_key),
        instance: engine::process_name().into(),
    };
    if let Some((path, description)) = description {
        import_fleet_description(&app, &path, &description).await?;
    }
    Ok((app, fleet))
}

/// Reads and checks the fleet description `FLEET_CONFIG` names; an error
/// names the file, and the host and field at fault.
fn read_fleet_description(path: &std::path::Path) -> anyhow::Result<FleetDescription> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "FLEET_CONFIG {}: the fleet description cannot be read",
            path.display()
        )
    })?;
    FleetDescription::parse(&text)
        .map_err(|error| anyhow::anyhow!("FLEET_CONFIG {}: {error}", path.display()))
}

/// Stores the hosts of the fleet description, as the system.
async fn import_fleet_description(
    app: &App,
    path: &std::path::Path,
    description: &FleetDescription,
) -> anyhow::Result<()> {
    let source = path.display().to_string();
    let imported = desk::hosts::import(app, description, &source)
        .await
        .map_err(|error| match error {
            DeskError::BadInput { message, .. } => {
                anyhow::anyhow!("FLEET_CONFIG {source}: {message}")
            }
            other => anyhow::anyhow!("FLEET_CONFIG {source}: {other}"),
        })?;
    tracing::info!(
        file = %source,
        hosts = imported.hosts,
        added = imported.added.len(),
        replaced = imported.replaced.len(),
        "fleet description loaded"
    );
    Ok(())
}

/// Brings the real fleet up: its servers started again after a restart,
/// and the heartbeat that keeps idle sources restorable to the minute.
async fn start_fleet(
    fleet: &Arc<PgBackRestBackend>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    fleet.start_fleet().await?;
    fleet.spawn_heartbeat(stop.clone());
    fleet.spawn_host_role(stop);
    tracing::info!(fleet = %fleet.fleet_dir().display(), "pgbackrest fleet up");
    Ok(())
}

/// Fires on Ctrl-C or SIGTERM.
pub fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        fire.cancel();
    });
    token
}

/// The web desk, with workers and duties beside it.
async fn serve(app: App, with_engine: bool) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&app.settings.bind)
        .await
        .with_context(|| format!("cannot listen on {}", app.settings.bind))?;
    let shutdown = shutdown_signal();
    let mut engine = if with_engine {
        engine::spawn(app.clone(), shutdown.clone())
    } else {
        tokio::task::JoinSet::new()
    };
    tracing::info!(address = %listener.local_addr()?, backend = app.backend.name(), "serving");
    let served = web::serve(app, listener, shutdown.clone()).await;
    shutdown.cancel();
    while engine.join_next().await.is_some() {}
    served?;
    Ok(())
}

/// Workers and duties only, until a signal; then leases are released.
async fn work(app: App) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    tracing::info!(
        workers = app.settings.workers,
        backend = app.backend.name(),
        "working"
    );
    let mut engine = engine::spawn(app, shutdown);
    while engine.join_next().await.is_some() {}
    Ok(())
}

/// `user create`: the same rules, audit event and clock as an admin's
/// page, by the operator of the machine.
async fn create_user(app: &App, command: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Create {
        email,
        name,
        role,
        subscription,
        time_zone,
        password,
    } = command;
    match (role, &subscription) {
        (Role::Customer, None) => anyhow::bail!("a customer needs --subscription"),
        (Role::Staff | Role::Admin, Some(_)) => {
            anyhow::bail!("only customers belong to a subscription")
        }
        _ => {}
    }
    let new = NewUser {
        email,
        display_name: name.unwrap_or_default(),
        role: role.as_str().to_string(),
        subscription: subscription.unwrap_or_default(),
        time_zone,
        password,
    };
    let user = desk::admin::create_user_by(app, Operator::CommandLine, &new)
        .await
        .map_err(|error| match error {
            DeskError::BadInput { field, message } => anyhow::anyhow!("{field}: {message}"),
            other => anyhow::anyhow!(other),
        })?;
    println!("created {} {} ({})", user.role, user.email, user.id);
    Ok(())
}

/// `cluster register`: the same checks and audit event as the admin page.
async fn register_cluster(app: &App, args: RegisterArgs) -> anyhow::Result<()> {
    let registration = desk::clusters::Registration {
        name: args.name,
        subscription: args.subscription,
        resource_group: args.resource_group,
        region: args.region,
        host: args.source_host,
        port: args.port,
        stanza: args.stanza,
        data_directory: args.data_directory,
        socket_directory: args.socket_directory,
        backrest_config: args.backrest_config,
        database: args.database,
        user: args.db_user,
        tier: args.tier,
        vcores: args.vcores,
        storage_gib: args.storage_gib,
        node_count: args.node_count,
        high_availability: args.high_availability,
        server_version: args.server_version,
        zones: (!args.zones.is_empty()).then_some(args.zones),
    };
    let cluster = desk::clusters::register(app, Operator::CommandLine, &registration)
        .await
        .map_err(|error| match error {
            DeskError::BadInput { field, message } => anyhow::anyhow!("{field}: {message}"),
            other => anyhow::anyhow!(other),
        })?;
    println!("registered {} ({})", cluster.name, cluster.id);
    Ok(())
}

/// `fleet certs`: certificates for every host of the fleet description and
/// for the desk's processes, owned by the fleet's OS user.
async fn issue_certs(app: &App, out: &std::path::Path) -> anyhow::Result<()> {
    let hosts = app.store.fleet_hosts().await?;
    anyhow::ensure!(
        !hosts.is_empty(),
        "the fleet description lists no hosts: set FLEET_CONFIG or add hosts first"
    );
    let mut names: Vec<crate::fleet::pki::CertHost> = hosts
        .iter()
        .map(|h| crate::fleet::pki::CertHost {
            name: h.name.clone(),
            dns: h.address.clone(),
        })
        .collect();
    names.push(crate::fleet::pki::CertHost {
        name: crate::backend::pgbackrest::DESK_CLIENT.into(),
        dns: format!("{}.invalid", crate::backend::pgbackrest::DESK_CLIENT),
    });
    let owner = crate::backend::pgbackrest::os_user_ids(&app.settings.pg_os_user)
        .map_err(anyhow::Error::msg)?;
    crate::fleet::pki::issue(out, &names, Some(owner))?;
    for host in &names {
        println!(
            "{}: {}",
            host.name,
            crate::fleet::pki::host_dir(out, &host.name).display()
        );
    }
    Ok(())
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings;
    settings.validate().map_err(anyhow::Error::msg)?;
    let files = web::server::raise_open_file_limit();
    tracing::debug!(open_file_limit = ?files, "open-file limit");
    tracing::debug!(?settings, "settings");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Migrate => {
            let store = store::open(&settings.database_url).await?;
            store.migrate().await?;
            println!(
                "database schema of {} is up to date",
                store::redact_url(&settings.database_url)
            );
            Ok(())
        }
        Command::User(command) => {
            let app = build(settings, clock).await?;
            create_user(&app, command).await
        }
        Command::Cluster(ClusterCommand::Register(args)) => {
            let app = build(settings, clock).await?;
            register_cluster(&app, *args).await
        }
        Command::Fleet(FleetCommand::Certs { out }) => {
            let app = build(settings, clock).await?;
            issue_certs(&app, &out).await
        }
        Command::Serve { web_only } => {
            let (app, fleet) = build_with_fleet(settings, clock).await?;
            if let Some(fleet) = &fleet {
                start_fleet(fleet, CancellationToken::new()).await?;
            }
            serve(app, !web_only).await
        }
        Command::Worker => {
            let (app, fleet) = build_with_fleet(settings, clock).await?;
            if let Some(fleet) = &fleet {
                start_fleet(fleet, CancellationToken::new()).await?;
            }
            work(app).await
        }
        Command::StopFleet => {
            let (_, fleet) = build_with_fleet(settings, clock).await?;
            let fleet = fleet.context("stop-fleet needs BACKEND=pgbackrest")?;
            fleet.stop_fleet().await;
            println!("stopped the servers of {}", fleet.fleet_dir().display());
            Ok(())
        }
        Command::Demo => {
            let (app, fleet) = build_with_fleet(settings, clock).await?;
            let seeded = match &fleet {
                Some(fleet) => {
                    start_fleet(fleet, CancellationToken::new()).await?;
                    demo::seed_fleet(&app, fleet, &app.settings.demo_password).await?
                }
                None => demo::seed(&app, &app.settings.demo_password).await?,
            };
            print_demo_banner(&app, seeded);
            serve(app, true).await
        }
    }
}

fn print_demo_banner(app: &App, seeded: bool) {
    let s = &app.settings;
    println!();
    if seeded {
        println!(
            "Seeded the demo data into {}.",
            store::redact_url(&s.database_url)
        );
    } else {
        println!(
            "The database {} already holds data: serving it as it is.",
            store::redact_url(&s.database_url)
        );
    }
    println!("Restore Desk is running at {}", s.public_url());
    println!("Sign in with password {:?} as:", s.demo_password);
    for (email, _, role, subscription, _) in demo::USERS {
        let of = subscription.map(|s| format!(" ({s})")).unwrap_or_default();
        println!("  {:<9} {email}{of}", role.as_str());
    }
    match &s.smtp_url {
        Some(url) => println!("Emails go to {}", store::redact_url(url)),
        None => println!("Emails are written to {}/", s.mail_dir.display()),
    }
    println!("Stop with Ctrl-C.");
    println!();
}
