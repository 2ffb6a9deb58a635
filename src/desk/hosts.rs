//! The fleet's hosts as configuration: what admins (the admin pages, the
//! API) and `FLEET_CONFIG` say each host is, joined with what its workers
//! last said of themselves. The rules of a host are `domain::host`'s; this
//! checks them against the hosts already stored and stores each change
//! with its audit event.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::DeskError;
use crate::app::App;
use crate::domain::actor::{Actor, Role};
use crate::domain::catalog::Zone;
use crate::domain::host::{DEFAULT_TLS_PORT, FleetDescription, FleetHost, HostRole};
use crate::domain::ticket::Refusal;
use crate::store::{
    AdminWrite, Commit, EventAction, HostHeartbeat, NewEvent, StoreError, Unique, User,
};

/// The most jobs that are not over read to count each host's: they are few.
const ACTIVE_JOBS: i64 = 10_000;

fn bad(field: &'static str, message: impl Into<String>) -> DeskError {
    DeskError::BadInput {
        field,
        message: message.into(),
    }
}

fn require_admin(user: &User) -> Result<(), DeskError> {
    if user.role == Role::Admin {
        Ok(())
    } else {
        Err(DeskError::Refused(Refusal::Forbidden))
    }
}

/// A host as the fleet's list has it and as its workers last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    pub name: String,
    /// What the fleet's list says of it; none for a host only heard from
    /// (the single machine's `local`, a worker started with a name nobody
    /// listed).
    pub config: Option<FleetHost>,
    /// What its workers last said; none for a host never heard from (zone
    /// and source hosts run no restore workers).
    pub heartbeat: Option<HostHeartbeat>,
    /// Heard from within `HOST_LOST_SECONDS`.
    pub alive: bool,
    /// Jobs that are not over placed on it, restore tests included.
    pub restores_running: i64,
}

impl HostStatus {
    pub fn configured(&self) -> bool {
        self.config.is_some()
    }

    /// Its role; a host only heard from runs restores, since only restore
    /// workers report.
    pub fn role(&self) -> HostRole {
        self.config.as_ref().map_or(HostRole::Restore, |c| c.role)
    }

    pub fn last_seen_at(&self) -> Option<DateTime<Utc>> {
        self.heartbeat.as_ref().map(|h| h.seen_at)
    }

    /// Bytes free for restores there, as its workers last said.
    pub fn free_bytes(&self) -> Option<i64> {
        self.heartbeat.as_ref().and_then(|h| h.free_bytes)
    }

    /// Its limit of restores at once: as listed, else as its workers said.
    pub fn max_restores(&self) -> Option<i64> {
        match &self.config {
            Some(config) => config.max_restores,
            None => self.heartbeat.as_ref().map(|h| h.max_restores),
        }
    }
}

/// How many jobs that are not over each host holds.
async fn placed_counts(app: &App) -> Result<HashMap<String, i64>, DeskError> {
    let mut counts = HashMap::new();
    for job in app.store.jobs(true, ACTIVE_JOBS).await? {
        if let Some(host) = job.host {
            *counts.entry(host).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// Every host of the fleet's list, then every host heard from that the list
/// does not name, each with its last report and what runs there.
pub async fn list(app: &App) -> Result<Vec<HostStatus>, DeskError> {
    let lost_before = app.now() - Duration::seconds(app.settings.host_lost_seconds);
    let mut beats: HashMap<String, HostHeartbeat> = app
        .store
        .host_heartbeats()
        .await?
        .into_iter()
        .map(|h| (h.host.clone(), h))
        .collect();
    let counts = placed_counts(app).await?;
    let status =
        |name: String, config: Option<FleetHost>, heartbeat: Option<HostHeartbeat>| HostStatus {
            alive: heartbeat.as_ref().is_some_and(|h| h.seen_at > lost_before),
            restores_running: counts.get(&name).copied().unwrap_or(0),
            name,
            config,
            heartbeat,
        };
    let mut out = Vec::new();
    for host in app.store.fleet_hosts().await? {
        let heartbeat = beats.remove(&host.name);
        out.push(status(host.name.clone(), Some(host), heartbeat));
    }
    let mut unlisted: Vec<HostHeartbeat> = beats.into_values().collect();
    unlisted.sort_by(|a, b| a.host.cmp(&b.host));
    for heartbeat in unlisted {
        out.push(status(heartbeat.host.clone(), None, Some(heartbeat)));
    }
    Ok(out)
}

/// A host as a form or a JSON body gives it: text, checked by `parse`.
#[derive(Debug, Clone, Default)]
pub struct HostInput {
    pub name: String,
    /// `source`, `zone` or `restore`.
    pub role: String,
    pub address: String,
    /// A zone host's zone; empty or none for the others.
    pub zone: Option<String>,
    /// Empty or none: no data root.
    pub data_root: Option<String>,
    pub max_restores: Option<i64>,
    /// None: pgBackRest's usual 8432.
    pub tls_port: Option<i64>,
}

fn given(text: &Option<String>) -> Option<String> {
    text.as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

impl HostInput {
    /// The host it describes, or the first thing wrong with it, by field.
    pub fn parse(&self) -> Result<FleetHost, DeskError> {
        let role = self
            .role
            .trim()
            .parse::<HostRole>()
            .map_err(|_| bad("role", "Choose the host's role: source, zone or restore"))?;
        let zone = match given(&self.zone) {
            Some(text) => Some(
                text.parse::<Zone>()
                    .map_err(|_| bad("zone", "Choose the zone: az1, az2 or az3"))?,
            ),
            None => None,
        };
        let tls_port = match self.tls_port {
            None => DEFAULT_TLS_PORT,
            Some(port) => u16::try_from(port)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("tls_port", "The TLS port is 1 to 65535"))?,
        };
        let host = FleetHost {
            name: self.name.trim().to_string(),
            role,
            address: self.address.trim().to_string(),
            zone,
            data_root: given(&self.data_root),
            max_restores: self.max_restores,
            tls_port,
        };
        match host.problems().into_iter().next() {
            Some(problem) => Err(bad(problem.field, problem.message)),
            None => Ok(host),
        }
    }
}

impl From<&FleetHost> for HostInput {
    fn from(host: &FleetHost) -> HostInput {
        HostInput {
            name: host.name.clone(),
            role: host.role.as_str().to_string(),
            address: host.address.clone(),
            zone: host.zone.map(|z| z.to_string()),
            data_root: host.data_root.clone(),
            max_restores: host.max_restores,
            tls_port: Some(i64::from(host.tls_port)),
        }
    }
}

/// The stored host other than `host` that serves `host`'s zone.
fn serving<'a>(stored: &'a [FleetHost], host: &FleetHost) -> Option<&'a FleetHost> {
    let zone = host.zone?;
    stored
        .iter()
        .find(|h| h.zone == Some(zone) && h.name != host.name)
}

fn zone_taken(zone: Zone, other: &FleetHost) -> String {
    format!(
        "Zone {zone} is served by host {} already, and a zone has one host: remove {} or \
         give it another zone first",
        other.name, other.name
    )
}

/// "restore host r1 at r1.fleet.example:8432, data root /srv/r, 3 restores
/// at once": a host in the audit trail's words.
pub fn describe(host: &FleetHost) -> String {
    let mut words = format!(
        "{} host {} at {}:{}",
        host.role, host.name, host.address, host.tls_port
    );
    if let Some(zone) = host.zone {
        words.push_str(&format!(", zone {zone}"));
    }
    if let Some(root) = &host.data_root {
        words.push_str(&format!(", data root {root}"));
    }
    if let Some(n) = host.max_restores {
        words.push_str(&format!(", {n} restores at once"));
    }
    words
}

/// An admin adds a host or replaces the one of its name. Refused, storing
/// nothing, when a field is wrong (the first, by field) or another host
/// serves its zone.
pub async fn put(app: &App, admin: &User, input: &HostInput) -> Result<FleetHost, DeskError> {
    require_admin(admin)?;
    let host = input.parse()?;
    let stored = app.store.fleet_hosts().await?;
    if let (Some(zone), Some(other)) = (host.zone, serving(&stored, &host)) {
        return Err(bad("zone", zone_taken(zone, other)));
    }
    let replaced = stored.iter().any(|h| h.name == host.name);
    let now = app.now();
    let event = NewEvent::admin(
        admin.actor(),
        EventAction::HostPut,
        format!(
            "{}: {}",
            if replaced { "replaced" } else { "added" },
            describe(&host)
        ),
        now,
    );
    let commit = Commit::admin(AdminWrite::PutFleetHost(host.clone()), Some(event), now);
    match app.commit(commit).await {
        Ok(_) => {}
        // Another admin gave the zone to a host a moment ago.
        Err(StoreError::Duplicate(Unique::ZoneHost)) => {
            let stored = app.store.fleet_hosts().await?;
            let message = match (host.zone, serving(&stored, &host)) {
                (Some(zone), Some(other)) => zone_taken(zone, other),
                _ => "Another host serves this zone already: a zone has one host".to_string(),
            };
            return Err(bad("zone", message));
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(host = %host.name, role = %host.role, replaced, by = %admin.email, "fleet host stored");
    Ok(host)
}

fn still_placed(name: &str, n: i64) -> DeskError {
    let n = n.max(1);
    let message = if n == 1 {
        format!(
            "Host {name} still has 1 unfinished restore placed on it: remove the host once \
             that restore has ended"
        )
    } else {
        format!(
            "Host {name} still has {n} unfinished restores placed on it: remove the host once \
             they have ended"
        )
    };
    bad("name", message)
}

/// An admin removes a host from the fleet's list. Refused while jobs that
/// are not over are placed on it (restore tests included): they would
/// lose the host they run on.
pub async fn remove(app: &App, admin: &User, name: &str) -> Result<FleetHost, DeskError> {
    require_admin(admin)?;
    let host = app
        .store
        .fleet_hosts()
        .await?
        .into_iter()
        .find(|h| h.name == name)
        .ok_or(DeskError::NotFound)?;
    let placed = placed_counts(app).await?.remove(name).unwrap_or(0);
    if placed > 0 {
        return Err(still_placed(name, placed));
    }
    let now = app.now();
    let event = NewEvent::admin(admin.actor(), EventAction::HostRemove, describe(&host), now);
    let write = AdminWrite::RemoveFleetHost {
        name: host.name.clone(),
    };
    match app.commit(Commit::admin(write, Some(event), now)).await {
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => return Err(DeskError::NotFound),
        // A worker placed a job there since the count above.
        Err(StoreError::Conflict(_)) => {
            let placed = placed_counts(app).await?.remove(name).unwrap_or(1);
            return Err(still_placed(name, placed));
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(host = %host.name, by = %admin.email, "fleet host removed");
    Ok(host)
}

/// What a fleet description changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    /// Hosts the description names.
    pub hosts: usize,
    pub added: Vec<String>,
    pub replaced: Vec<String>,
}

/// Stores every host of a fleet description (`FLEET_CONFIG`, read at
/// start): added, or replacing the host of its name; hosts it does not
/// name are kept. All of it in one commit with one audit event by the
/// system, or nothing when a host would take a zone a host it does not
/// name serves. Hosts stored as described already are left alone, so a
/// restart with the same file records nothing. `source` names the file.
pub async fn import(
    app: &App,
    description: &FleetDescription,
    source: &str,
) -> Result<Imported, DeskError> {
    let stored = app.store.fleet_hosts().await?;
    let unnamed: Vec<FleetHost> = stored
        .iter()
        .filter(|h| description.host(&h.name).is_none())
        .cloned()
        .collect();
    let mut imported = Imported {
        hosts: description.hosts.len(),
        ..Imported::default()
    };
    let now = app.now();
    let mut commit = Commit::at(now);
    for host in &description.hosts {
        if let (Some(zone), Some(other)) = (host.zone, serving(&unnamed, host)) {
            return Err(bad(
                "zone",
                format!(
                    "host {:?}, zone: zone {zone} is served by host {}, which the description \
                     does not name; a zone has one host",
                    host.name, other.name
                ),
            ));
        }
        match stored.iter().find(|h| h.name == host.name) {
            Some(same) if same == host => continue,
            Some(_) => imported.replaced.push(host.name.clone()),
            None => imported.added.push(host.name.clone()),
        }
        commit.admin.push(AdminWrite::PutFleetHost(host.clone()));
    }
    if commit.admin.is_empty() {
        return Ok(imported);
    }
    let mut said = Vec::new();
    if !imported.added.is_empty() {
        said.push(format!("added {}", imported.added.join(", ")));
    }
    if !imported.replaced.is_empty() {
        said.push(format!("replaced {}", imported.replaced.join(", ")));
    }
    commit.events.push(NewEvent::admin(
        Actor::SYSTEM,
        EventAction::HostPut,
        format!("from the fleet description {source}: {}", said.join("; ")),
        now,
    ));
    match app.commit(commit).await {
        Ok(_) => Ok(imported),
        // Hosts of the description that trade zones among themselves meet
        // one another half-way.
        Err(StoreError::Duplicate(Unique::ZoneHost)) => Err(bad(
            "zone",
            "two hosts would serve one zone while the description is stored: move a zone to \
             another host in two steps",
        )),
        Err(other) => Err(other.into()),
    }
}

/// A listed zone host as the network finds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneReach {
    pub zone: Zone,
    pub host: String,
    pub answering: bool,
}

/// Each listed zone host tried on its TLS port, all at once, each for at
/// most `domain::host::ZONE_ANSWER_SECONDS`. Empty when no zone host is listed (the
/// single machine's zones are folders).
pub async fn zone_reach(app: &App) -> Result<Vec<ZoneReach>, DeskError> {
    let hosts = app.store.fleet_hosts().await?;
    let tries = hosts
        .into_iter()
        .filter_map(|h| h.zone.filter(|_| h.role == HostRole::Zone).map(|z| (z, h)))
        .map(|(zone, host)| async move {
            let answering = crate::fleet::answers(&host).await;
            ZoneReach {
                zone,
                host: host.name,
                answering,
            }
        });
    let mut found = futures::future::join_all(tries).await;
    found.sort_by_key(|r| r.zone);
    Ok(found)
}
