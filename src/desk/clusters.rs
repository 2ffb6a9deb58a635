//! Registering a cluster that already exists on a source host of the fleet
//! across hosts: the desk reads its backups from the zones and never
//! writes to it. Refused, with nothing stored, when a field is wrong, its
//! stanza is unknown to the zones or its backups cannot be read there.

use serde::Deserialize;

use super::DeskError;
use super::admin::{Operator, resolve_region};
use crate::app::App;
use crate::backend::AdoptionRefusal;
use crate::domain::catalog::{Zone, ZoneSet};
use crate::domain::cluster::{Cluster, ClusterConfig, ClusterStatus, Connection, FleetLocation};
use crate::domain::event::EventAction;
use crate::domain::host::{HostRole, valid_path};
use crate::domain::ids::ClusterId;
use crate::domain::validation::ClusterName;
use crate::store::{AdminWrite, ClusterWrite, Commit, NewEvent, StoreError, Unique};

/// Where pgBackRest looks for its configuration unless told otherwise.
pub const DEFAULT_BACKREST_CONFIG: &str = "/etc/pgbackrest/pgbackrest.conf";

/// A cluster to register, as an admin describes it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The name customers see: 3–40 lowercase letters, digits and hyphens.
    pub name: String,
    /// The subscription's short name.
    pub subscription: String,
    pub resource_group: String,
    /// The region; a new one brings its three zones. May be left out when
    /// the desk has exactly one.
    #[serde(default)]
    pub region: Option<String>,
    /// The fleet host it runs on (a `source` host).
    pub host: String,
    pub port: i64,
    /// Its pgBackRest stanza, as the zones know it.
    pub stanza: String,
    pub data_directory: String,
    #[serde(default)]
    pub socket_directory: Option<String>,
    /// Its pgBackRest configuration on its host; `/etc/pgbackrest/pgbackrest.conf` when left out.
    #[serde(default)]
    pub backrest_config: Option<String>,
    pub database: String,
    pub user: String,
    pub tier: String,
    pub vcores: i64,
    pub storage_gib: i64,
    #[serde(default = "one")]
    pub node_count: i64,
    #[serde(default)]
    pub high_availability: bool,
    pub server_version: String,
    /// The zones that hold its backups; all three when left out.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub zones: Option<Vec<Zone>>,
}

fn one() -> i64 {
    1
}

fn bad(field: &'static str, message: impl Into<String>) -> DeskError {
    DeskError::BadInput {
        field,
        message: message.into(),
    }
}

/// An identifier pgBackRest and PostgreSQL take as is.
fn plain_word(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !text.starts_with(['-', '.'])
}

/// Every check of the fields on their own, first field first.
fn check_fields(r: &Registration) -> Result<ClusterName, DeskError> {
    let name = ClusterName::parse(&r.name).map_err(|e| bad("name", e.message))?;
    if !plain_word(r.resource_group.trim(), 90) {
        return Err(bad(
            "resource_group",
            "A resource group is 1 to 90 letters, digits, dots, dashes and underscores",
        ));
    }
    if !(1..=65535).contains(&r.port) {
        return Err(bad("port", "The port is 1 to 65535"));
    }
    if !plain_word(&r.stanza, 64) {
        return Err(bad(
            "stanza",
            "A stanza is 1 to 64 letters, digits, dots, dashes and underscores",
        ));
    }
    if !valid_path(&r.data_directory) {
        return Err(bad(
            "data_directory",
            "The data directory is an absolute path of letters, digits and / . _ - +",
        ));
    }
    if let Some(socket) = &r.socket_directory
        && !valid_path(socket)
    {
        return Err(bad(
            "socket_directory",
            "The socket directory is an absolute path of letters, digits and / . _ - +",
        ));
    }
    if let Some(config) = &r.backrest_config
        && !valid_path(config)
    {
        return Err(bad(
            "backrest_config",
            "The pgBackRest configuration is an absolute path of letters, digits and / . _ - +",
        ));
    }
    if !plain_word(&r.database, 63) {
        return Err(bad(
            "database",
            "A database name is 1 to 63 plain characters",
        ));
    }
    if !plain_word(&r.user, 63) {
        return Err(bad("user", "A user name is 1 to 63 plain characters"));
    }
    if !plain_word(r.tier.trim(), 40) {
        return Err(bad("tier", "Name the tier, such as GeneralPurpose"));
    }
    if !(1..=1024).contains(&r.vcores) {
        return Err(bad("vcores", "vCores are 1 to 1024"));
    }
    if !(1..=65536).contains(&r.storage_gib) {
        return Err(bad("storage_gib", "Storage is 1 to 65536 GiB"));
    }
    if !(1..=16).contains(&r.node_count) {
        return Err(bad("node_count", "A cluster has 1 to 16 nodes"));
    }
    if !(r.server_version.len() <= 8
        && !r.server_version.is_empty()
        && r.server_version.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad(
            "server_version",
            "The server version is PostgreSQL's major version, such as 15",
        ));
    }
    if r.zones.as_ref().is_some_and(|z| z.is_empty()) {
        return Err(bad(
            "zones",
            "Name at least one zone that holds its backups",
        ));
    }
    Ok(name)
}

/// Registers an existing cluster: checks every field, its host, that the
/// zones know its stanza and can read its backups, then stores it ready,
/// with an audit event. Nothing is stored on a refusal.
pub async fn register(
    app: &App,
    operator: Operator<'_>,
    registration: &Registration,
) -> Result<Cluster, DeskError> {
    if let Operator::Admin(user) = operator
        && user.role != crate::domain::actor::Role::Admin
    {
        return Err(DeskError::Refused(
            crate::domain::ticket::Refusal::Forbidden,
        ));
    }
    let name = check_fields(registration)?;
    let subscription = app
        .store
        .subscription_by_slug(registration.subscription.trim())
        .await?
        .ok_or_else(|| {
            bad(
                "subscription",
                format!("There is no subscription {:?}", registration.subscription),
            )
        })?;
    // A region of its own brings its three zones; none named is the
    // desk's one region.
    let region = match registration
        .region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        Some(region) if plain_word(region, 40) => region.to_string(),
        Some(_) => {
            return Err(bad(
                "region",
                "A region is 1 to 40 letters, digits, dots, dashes and underscores",
            ));
        }
        None => resolve_region(app, None).await?,
    };
    let hosts = app.store.fleet_hosts().await?;
    let source_host = match hosts.iter().find(|h| h.name == registration.host) {
        Some(host) if host.role == HostRole::Source => host,
        Some(host) => {
            return Err(bad(
                "host",
                format!("{} is a {} host, not a source host", host.name, host.role),
            ));
        }
        None => {
            return Err(bad(
                "host",
                format!(
                    "There is no host {:?} in the fleet: add it on the hosts page first",
                    registration.host
                ),
            ));
        }
    };
    let location = FleetLocation {
        stanza: registration.stanza.clone(),
        host: registration.host.clone(),
        data_directory: registration.data_directory.clone(),
        socket_directory: registration.socket_directory.clone(),
        backrest_config: registration
            .backrest_config
            .clone()
            .unwrap_or_else(|| DEFAULT_BACKREST_CONFIG.to_string()),
        adopted_at: Some(app.now()),
    };
    let zones = registration
        .zones
        .as_ref()
        .map_or(ZoneSet::ALL, |z| ZoneSet::of(z));
    let earliest = match app.backend.adoptable(&location, zones).await {
        Ok(earliest) => earliest,
        Err(AdoptionRefusal::UnknownStanza(message) | AdoptionRefusal::Unreadable(message)) => {
            return Err(bad("stanza", message));
        }
        Err(AdoptionRefusal::Unsupported(message)) => return Err(bad("host", message)),
    };
    let now = app.now();
    let cluster = Cluster {
        id: ClusterId::new(),
        subscription_id: subscription.id,
        resource_group: registration.resource_group.trim().to_string(),
        region,
        name: name.as_str().to_string(),
        config: ClusterConfig {
            tier: registration.tier.trim().to_string(),
            vcores: registration.vcores,
            storage_gib: registration.storage_gib,
            node_count: registration.node_count,
            high_availability: registration.high_availability,
            server_version: registration.server_version.clone(),
        },
        connection: Connection {
            host: source_host.address.clone(),
            port: registration.port,
            database: registration.database.clone(),
            user: registration.user.clone(),
        },
        status: ClusterStatus::Ready,
        // Its life as far as the zones remember it.
        created_at: earliest.unwrap_or(now).min(now),
        deleted_at: None,
        restored_from: None,
        location: Some(location),
    };
    let mut commit = Commit::at(now);
    commit.cluster = Some(ClusterWrite::Insert(Box::new(cluster.clone())));
    commit
        .admin
        .extend(Zone::ALL.map(|zone| AdminWrite::EnsureZone {
            region: cluster.region.clone(),
            zone,
            online: true,
        }));
    commit.events.push(NewEvent::admin(
        operator.actor(),
        EventAction::ClusterRegister,
        format!(
            "{} ({}) on {}, stanza {}",
            cluster.name, cluster.id, registration.host, registration.stanza
        ),
        now,
    ));
    match app.commit(commit).await {
        Ok(_) => {}
        Err(StoreError::Duplicate(Unique::ClusterName)) => {
            return Err(bad(
                "name",
                format!(
                    "A cluster named {} exists in {} already",
                    cluster.name, cluster.resource_group
                ),
            ));
        }
        Err(StoreError::Duplicate(Unique::Stanza)) => {
            return Err(bad(
                "stanza",
                format!(
                    "A cluster with stanza {} is registered already",
                    registration.stanza
                ),
            ));
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(cluster = %cluster.name, host = %registration.host, stanza = %registration.stanza, by = operator.name(), "cluster registered");
    Ok(cluster)
}
