//! The fleet's hosts: which machine does what, as a fleet description names
//! them (`FLEET_CONFIG`, the admin pages, `/api/v1/hosts`). Pure: parsing
//! and checking only.

use serde::{Deserialize, Serialize};

use super::catalog::Zone;

string_enum! {
    /// What a host of the fleet is for.
    #[derive(utoipa::ToSchema)]
    pub enum HostRole ("host role") {
        /// Runs customers' clusters and their pgBackRest TLS server.
        Source = "source",
        /// Keeps one zone's pgBackRest repository and serves it over TLS.
        Zone = "zone",
        /// Runs restores and the clusters they make.
        Restore = "restore",
    }
}

/// The port pgBackRest's TLS server listens on unless told otherwise.
pub const DEFAULT_TLS_PORT: u16 = 8432;

/// How long a zone host has to accept a connection on its TLS port before
/// it counts as not answering: a catalog read skips it after this, and
/// the zones page says so.
pub const ZONE_ANSWER_SECONDS: u64 = 2;

/// A host of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetHost {
    /// Short and unique: `az1`, `r2`. Workers name their host with it.
    pub name: String,
    pub role: HostRole,
    /// The DNS name others reach it by; its certificate carries the same.
    pub address: String,
    /// A zone host's zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub zone: Option<Zone>,
    /// Where the desk's process on that host keeps its files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_root: Option<String>,
    /// A restore host's limit of restores at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restores: Option<i64>,
    #[serde(default = "default_tls_port")]
    pub tls_port: u16,
}

fn default_tls_port() -> u16 {
    DEFAULT_TLS_PORT
}

/// What is wrong with a host, by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProblem {
    pub field: &'static str,
    pub message: String,
}

fn problem(field: &'static str, message: impl Into<String>) -> HostProblem {
    HostProblem {
        field,
        message: message.into(),
    }
}

/// Letters, digits and `-`, not first: a name fit for files, certificates
/// and pgBackRest options.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A DNS name: labels of letters, digits and `-`. pgBackRest matches
/// certificates by name only, so an IP address will not do.
fn valid_dns_name(address: &str) -> bool {
    let labels: Vec<&str> = address.split('.').collect();
    address.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && !labels
            .last()
            .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
}

/// The longest data root a host may have.
pub const MAX_PATH: usize = 1024;

/// A path pgBackRest and PostgreSQL read unquoted: absolute, plain
/// characters, not too long.
pub fn valid_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= MAX_PATH
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
}

impl FleetHost {
    /// Every problem of this host on its own, first field first.
    pub fn problems(&self) -> Vec<HostProblem> {
        let mut found = Vec::new();
        if !valid_name(&self.name) {
            found.push(problem(
                "name",
                "A host name is 1 to 63 lowercase letters, digits and dashes, not starting with a dash",
            ));
        }
        if !valid_dns_name(&self.address) {
            found.push(problem(
                "address",
                "The address must be a DNS name (the name in the host's certificate), not an IP address",
            ));
        }
        match (self.role, self.zone) {
            (HostRole::Zone, None) => found.push(problem(
                "zone",
                "A zone host names its zone: az1, az2 or az3",
            )),
            (HostRole::Source | HostRole::Restore, Some(_)) => {
                found.push(problem("zone", "Only a zone host has a zone"))
            }
            _ => {}
        }
        if let Some(root) = &self.data_root
            && !valid_path(root)
        {
            found.push(problem(
                "data_root",
                format!(
                    "The data root is an absolute path of at most {MAX_PATH} letters, digits \
                     and / . _ - +"
                ),
            ));
        }
        if matches!(self.role, HostRole::Zone | HostRole::Restore) && self.data_root.is_none() {
            found.push(problem(
                "data_root",
                "A zone or restore host needs a data root: where its files live",
            ));
        }
        match (self.role, self.max_restores) {
            (HostRole::Restore, Some(n)) if !(1..=64).contains(&n) => found.push(problem(
                "max_restores",
                "A restore host runs 1 to 64 restores at once",
            )),
            (HostRole::Source | HostRole::Zone, Some(_)) => found.push(problem(
                "max_restores",
                "Only a restore host has a limit of restores",
            )),
            _ => {}
        }
        if self.tls_port == 0 {
            found.push(problem("tls_port", "The TLS port is 1 to 65535"));
        }
        found
    }
}

/// Problems of a whole fleet: each host's own, then clashes between them
/// (a name or a zone twice).
pub fn fleet_problems(hosts: &[FleetHost]) -> Vec<(String, HostProblem)> {
    let mut found = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        for p in host.problems() {
            found.push((host.name.clone(), p));
        }
        if hosts[..i].iter().any(|h| h.name == host.name) {
            found.push((
                host.name.clone(),
                problem("name", format!("The host name {} is used twice", host.name)),
            ));
        }
        if let Some(zone) = host.zone
            && hosts[..i].iter().any(|h| h.zone == Some(zone))
        {
            found.push((
                host.name.clone(),
                problem("zone", format!("Zone {zone} has two hosts; a zone has one")),
            ));
        }
    }
    found
}

/// A fleet description as `FLEET_CONFIG` holds it:
///
/// ```toml
/// [[host]]
/// name = "az1"
/// role = "zone"
/// address = "az1.fleet.example"
/// zone = "az1"
/// data_root = "/var/lib/restore-desk"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetDescription {
    #[serde(default, rename = "host")]
    pub hosts: Vec<FleetHost>,
}

/// The field of a `[[host]]` table a deserialisation error is about: the
/// one it names, else the first whose value is not of its kind.
fn field_at_fault(entry: &toml::Value, message: &str) -> String {
    for prefix in ["missing field `", "unknown field `"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(end) = rest.find('`')
        {
            return rest[..end].to_string();
        }
    }
    let fits = |key: &str, value: &toml::Value| -> bool {
        let value = value.clone();
        match key {
            "role" => value.try_into::<HostRole>().is_ok(),
            "zone" => value.try_into::<Zone>().is_ok(),
            "tls_port" => value.try_into::<u16>().is_ok(),
            "max_restores" => value.try_into::<i64>().is_ok(),
            _ => value.try_into::<String>().is_ok(),
        }
    };
    entry
        .as_table()
        .and_then(|table| table.iter().find(|(key, value)| !fits(key, value)))
        .map_or_else(|| "host".to_string(), |(key, _)| key.clone())
}

impl FleetDescription {
    /// Reads a description, refusing one with any problem, each named by
    /// host and field, on one line.
    pub fn parse(text: &str) -> Result<FleetDescription, String> {
        let unreadable = |why: String| format!("the fleet description does not read: {why}");
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .and_then(|span| text.get(..span.start))
                .map_or(1, |before| before.matches('\n').count() + 1);
            unreadable(format!("line {line}: {}", e.message().replace('\n', " ")))
        })?;
        if let Some(key) = table.keys().find(|k| *k != "host") {
            return Err(unreadable(format!(
                "unknown key {key:?}: a fleet description holds [[host]] tables only"
            )));
        }
        let entries: &[toml::Value] = match table.get("host") {
            None => &[],
            Some(toml::Value::Array(entries)) => entries,
            Some(_) => return Err(unreadable("`host` must be [[host]] tables".into())),
        };
        let mut hosts = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let host: FleetHost = entry.clone().try_into().map_err(|e: toml::de::Error| {
                let which = match entry.get("name").and_then(toml::Value::as_str) {
                    Some(name) => format!("host {name:?}"),
                    None => format!("host number {}", i + 1),
                };
                let message = e.message().replace('\n', " ");
                format!("{which}, {}: {message}", field_at_fault(entry, &message))
            })?;
            hosts.push(host);
        }
        let description = FleetDescription { hosts };
        let problems = fleet_problems(&description.hosts);
        if !problems.is_empty() {
            return Err(problems
                .iter()
                .map(|(host, p)| format!("host {host:?}, {}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; "));
        }
        Ok(description)
    }

    /// The host a zone's repository lives on.
    pub fn zone_host(&self, zone: Zone) -> Option<&FleetHost> {
        self.hosts.iter().find(|h| h.zone == Some(zone))
    }

    pub fn host(&self, name: &str) -> Option<&FleetHost> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// True when the zones are hosts of their own: the fleet spans hosts.
    pub fn spans_hosts(&self) -> bool {
        Zone::ALL.iter().all(|z| self.zone_host(*z).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLEET: &str = r#"
        [[host]]
        name = "az1"
        role = "zone"
        address = "az1.fleet.test"
        zone = "az1"
        data_root = "/var/lib/rd"

        [[host]]
        name = "az2"
        role = "zone"
        address = "az2.fleet.test"
        zone = "az2"
        data_root = "/var/lib/rd"

        [[host]]
        name = "az3"
        role = "zone"
        address = "az3.fleet.test"
        zone = "az3"
        data_root = "/var/lib/rd"
        tls_port = 9432

        [[host]]
        name = "r1"
        role = "restore"
        address = "r1.fleet.test"
        data_root = "/srv/restores"
        max_restores = 3

        [[host]]
        name = "src"
        role = "source"
        address = "src.fleet.test"
    "#;

    #[test]
    fn a_whole_fleet_reads_with_its_defaults() {
        let fleet = FleetDescription::parse(FLEET).unwrap();
        assert_eq!(fleet.hosts.len(), 5);
        assert!(fleet.spans_hosts());
        assert_eq!(fleet.zone_host(Zone::Az3).unwrap().tls_port, 9432);
        assert_eq!(
            fleet.zone_host(Zone::Az1).unwrap().tls_port,
            DEFAULT_TLS_PORT
        );
        let r1 = fleet.host("r1").unwrap();
        assert_eq!((r1.role, r1.max_restores), (HostRole::Restore, Some(3)));
        assert_eq!(fleet.host("src").unwrap().data_root, None);
    }

    #[test]
    fn every_problem_is_named_by_host_and_field() {
        let twice = format!(
            "{FLEET}\n[[host]]\nname = \"r1\"\nrole = \"restore\"\naddress = \"r9.fleet.test\"\ndata_root = \"/x\"\n"
        );
        let error = FleetDescription::parse(&twice).unwrap_err();
        assert!(
            error.contains("host \"r1\", name: The host name r1 is used twice"),
            "{error}"
        );

        let second_zone = format!(
            "{FLEET}\n[[host]]\nname = \"az1b\"\nrole = \"zone\"\nzone = \"az1\"\naddress = \"b.fleet.test\"\ndata_root = \"/x\"\n"
        );
        let error = FleetDescription::parse(&second_zone).unwrap_err();
        assert!(error.contains("Zone az1 has two hosts"), "{error}");

        let by_ip = "[[host]]\nname = \"az1\"\nrole = \"zone\"\nzone = \"az1\"\naddress = \"10.0.0.1\"\ndata_root = \"/x\"\n";
        let error = FleetDescription::parse(by_ip).unwrap_err();
        assert!(
            error.contains("address: The address must be a DNS name"),
            "{error}"
        );

        let unknown = "[[host]]\nname = \"a\"\nrole = \"printer\"\naddress = \"a.b\"\n";
        assert!(
            FleetDescription::parse(unknown)
                .unwrap_err()
                .contains("unknown host role")
        );

        let typo = "[[hosts]]\nname = \"a\"\n";
        assert!(FleetDescription::parse(typo).is_err());
    }

    #[test]
    fn what_does_not_read_is_named_by_host_and_field_on_one_line() {
        let error = |text: &str| FleetDescription::parse(text).unwrap_err();
        let role = error("[[host]]\nname = \"a\"\nrole = \"printer\"\naddress = \"a.b\"\n");
        assert!(
            role.starts_with("host \"a\", role: unknown host role"),
            "{role}"
        );
        let port = error(
            "[[host]]\nname = \"a\"\nrole = \"source\"\naddress = \"a.b\"\ntls_port = 70000\n",
        );
        assert!(port.starts_with("host \"a\", tls_port: "), "{port}");
        let missing = error("[[host]]\nname = \"a\"\nrole = \"source\"\n");
        assert!(missing.starts_with("host \"a\", address: "), "{missing}");
        let typo =
            error("[[host]]\nname = \"a\"\nrole = \"source\"\naddress = \"a.b\"\ntls_prot = 1\n");
        assert!(typo.starts_with("host \"a\", tls_prot: "), "{typo}");
        let nameless = error("[[host]]\nrole = \"source\"\naddress = \"a.b\"\n");
        assert!(nameless.starts_with("host number 1, name: "), "{nameless}");
        let syntax = error("[[host]]\nname = \"a\"\nrole = source\n");
        assert!(syntax.contains("line 3"), "{syntax}");
        for e in [role, port, missing, typo, nameless, syntax] {
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn each_role_has_its_own_fields() {
        let base = FleetHost {
            name: "r1".into(),
            role: HostRole::Restore,
            address: "r1.fleet.test".into(),
            zone: None,
            data_root: Some("/srv/r".into()),
            max_restores: Some(2),
            tls_port: DEFAULT_TLS_PORT,
        };
        assert!(base.problems().is_empty());
        let fields = |h: FleetHost| h.problems().iter().map(|p| p.field).collect::<Vec<_>>();
        assert_eq!(
            fields(FleetHost {
                zone: Some(Zone::Az1),
                ..base.clone()
            }),
            ["zone"]
        );
        assert_eq!(
            fields(FleetHost {
                max_restores: Some(0),
                ..base.clone()
            }),
            ["max_restores"]
        );
        assert_eq!(
            fields(FleetHost {
                data_root: None,
                ..base.clone()
            }),
            ["data_root"]
        );
        assert_eq!(
            fields(FleetHost {
                data_root: Some("relative/x".into()),
                ..base.clone()
            }),
            ["data_root"]
        );
        assert_eq!(
            fields(FleetHost {
                name: "R 1".into(),
                ..base.clone()
            }),
            ["name"]
        );
        assert_eq!(
            fields(FleetHost {
                role: HostRole::Zone,
                max_restores: None,
                ..base.clone()
            }),
            ["zone"]
        );
        assert_eq!(
            fields(FleetHost {
                role: HostRole::Source,
                data_root: None,
                ..base.clone()
            }),
            ["max_restores"]
        );
    }
}
