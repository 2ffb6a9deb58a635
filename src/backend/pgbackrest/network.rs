//! The fleet across hosts: each zone's repository is a pgBackRest TLS
//! server of its own host, clusters run on source and restore hosts, and
//! every process of the desk reaches the zones with the fleet's client
//! certificate. One configuration file per host, written from the fleet
//! description in the desk's database:
//!
//! ```text
//! FLEET_DIR/host/pgbackrest.conf   this host's: the zones as repository
//!                                  hosts (or, on a zone host, its own
//!                                  repository), its TLS server, and the
//!                                  stanzas of the clusters it serves
//! ```
//!
//! Rendering is pure; `PgBackRestBackend` writes it when it changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::domain::catalog::Zone;
use crate::domain::host::{FleetHost, HostRole};
use crate::fleet::pki;

/// The client name a desk process that is no fleet host presents: zones
/// and restore hosts let it in beside the fleet's hosts.
pub const DESK_CLIENT: &str = "desk";

/// Timeouts of a read from a zone (the catalog): a dead zone costs about
/// four connection attempts of `io-timeout`, then the read gives up.
pub const INFO_TIMEOUTS: [&str; 2] = ["--io-timeout=1", "--protocol-timeout=5"];

/// Timeouts of a restore and of the log fetched for it: an established
/// session whose zone dies ends after `protocol-timeout`, not after
/// pgBackRest's default of half an hour.
pub const TRANSFER_TIMEOUTS: [&str; 2] = ["--io-timeout=2", "--protocol-timeout=30"];

/// This host's certificates, as `restore-desk fleet certs` issued them for
/// it (one host's folder of the fleet's certificate folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub dir: PathBuf,
}

impl TlsFiles {
    pub fn ca(&self) -> PathBuf {
        self.dir.join(pki::CA_CERT)
    }
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join(pki::CLIENT_CERT)
    }
    pub fn client_key(&self) -> PathBuf {
        self.dir.join(pki::CLIENT_KEY)
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join(pki::SERVER_CERT)
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join(pki::SERVER_KEY)
    }

    /// What is missing for a client, in words; `None` when all is there.
    pub fn missing(&self, server: bool) -> Option<String> {
        let mut needed = vec![self.ca(), self.client_cert(), self.client_key()];
        if server {
            needed.extend([self.server_cert(), self.server_key()]);
        }
        let absent: Vec<String> = needed
            .iter()
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        (!absent.is_empty()).then(|| {
            format!(
                "the fleet's certificates are missing ({}): issue them with `restore-desk fleet certs` \
                 and point FLEET_TLS_DIR at this host's folder",
                absent.join(", ")
            )
        })
    }
}

/// Where a zone's configuration lives on its host: others name it when
/// they open a session there.
pub fn host_conf_of(host: &FleetHost) -> Option<PathBuf> {
    host.data_root
        .as_deref()
        .map(|root| Path::new(root).join("host").join("pgbackrest.conf"))
}

/// A stanza this host serves: a cluster running here (restore host), or a
/// cluster running on another host that this zone backs up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaSection {
    pub stanza: String,
    pub pg_path: String,
    pub pg_port: i64,
    pub socket: Option<String>,
    /// Set on a zone host: the cluster's own host, over TLS.
    pub remote: Option<RemotePg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePg {
    pub address: String,
    pub tls_port: u16,
    /// The cluster's pgBackRest configuration on its host.
    pub config: String,
}

/// What one host's configuration is made of.
pub struct HostConf<'a> {
    pub root: &'a Path,
    pub hosts: &'a [FleetHost],
    /// This host; `None` for a desk process that is no fleet host.
    pub me: Option<&'a FleetHost>,
    pub tls: &'a TlsFiles,
    /// A zone host's repository passphrase (a secret: the file is 600).
    pub zone_pass: Option<String>,
    pub retention_days: i64,
    pub sections: &'a [StanzaSection],
}

/// The file, deterministic for the same inputs so it is only rewritten
/// (and the TLS server told) when something changed.
pub fn render(conf: &HostConf<'_>) -> String {
    let mut text = String::new();
    let name = conf.me.map_or(DESK_CLIENT, |h| h.name.as_str());
    let _ = writeln!(
        text,
        "# Written by restore-desk for host {name} of the fleet across hosts.\n\
         [global]\n\
         lock-path={}\n\
         log-path={}\n\
         spool-path={}\n\
         log-level-file=info\n\
         start-fast=y\n\
         compress-type=zst\n\
         process-max=2",
        conf.root.join("lock").display(),
        conf.root.join("log").display(),
        conf.root.join("spool").display(),
    );
    let zone_of_mine = conf
        .me
        .filter(|h| h.role == HostRole::Zone)
        .and_then(|h| h.zone);
    match zone_of_mine {
        Some(zone) => {
            let n = zone.index() + 1;
            let _ = writeln!(
                text,
                "repo{n}-type=posix\n\
                 repo{n}-path={}\n\
                 repo{n}-cipher-type=aes-256-cbc\n\
                 repo{n}-cipher-pass={}\n\
                 repo{n}-retention-full-type=time\n\
                 repo{n}-retention-full={}\n\
                 repo{n}-bundle=y",
                conf.root.join("repo").display(),
                conf.zone_pass.as_deref().unwrap_or_default(),
                conf.retention_days,
            );
        }
        None => {
            // Every zone as a repository host: reads and restores name one
            // with --repo; WAL is pushed to all of them.
            for zone in Zone::ALL {
                let Some(host) = conf.hosts.iter().find(|h| h.zone == Some(zone)) else {
                    continue;
                };
                let n = zone.index() + 1;
                let _ = writeln!(
                    text,
                    "repo{n}-host={}\n\
                     repo{n}-host-type=tls\n\
                     repo{n}-host-port={}\n\
                     repo{n}-host-ca-file={}\n\
                     repo{n}-host-cert-file={}\n\
                     repo{n}-host-key-file={}",
                    host.address,
                    host.tls_port,
                    conf.tls.ca().display(),
                    conf.tls.client_cert().display(),
                    conf.tls.client_key().display(),
                );
                if let Some(remote) = host_conf_of(host) {
                    let _ = writeln!(text, "repo{n}-host-config={}", remote.display());
                }
            }
        }
    }
    // A zone or restore host serves pgBackRest sessions: the zones' backups
    // reach restored clusters through it, restores reach the zones.
    if let Some(me) = conf
        .me
        .filter(|h| matches!(h.role, HostRole::Zone | HostRole::Restore))
    {
        let _ = writeln!(
            text,
            "tls-server-address=*\n\
             tls-server-port={}\n\
             tls-server-ca-file={}\n\
             tls-server-cert-file={}\n\
             tls-server-key-file={}",
            me.tls_port,
            conf.tls.ca().display(),
            conf.tls.server_cert().display(),
            conf.tls.server_key().display(),
        );
        let mut clients: Vec<&str> = conf.hosts.iter().map(|h| h.name.as_str()).collect();
        clients.push(DESK_CLIENT);
        clients.sort_unstable();
        clients.dedup();
        for client in clients {
            let _ = writeln!(text, "tls-server-auth={client}=*");
        }
    }
    // Pushing asynchronously lets the other zones keep receiving WAL while
    // one is unreachable, and a dead zone costs seconds, not minutes.
    text.push_str(
        "\n[global:archive-push]\n\
         archive-async=y\n\
         io-timeout=2\n\
         protocol-timeout=30\n",
    );
    for section in conf.sections {
        let _ = writeln!(text, "\n[{}]", section.stanza);
        if let Some(remote) = &section.remote {
            let _ = writeln!(
                text,
                "pg1-host={}\n\
                 pg1-host-type=tls\n\
                 pg1-host-port={}\n\
                 pg1-host-config={}\n\
                 pg1-host-ca-file={}\n\
                 pg1-host-cert-file={}\n\
                 pg1-host-key-file={}",
                remote.address,
                remote.tls_port,
                remote.config,
                conf.tls.ca().display(),
                conf.tls.client_cert().display(),
                conf.tls.client_key().display(),
            );
        }
        let _ = writeln!(
            text,
            "pg1-path={}\npg1-port={}",
            section.pg_path, section.pg_port
        );
        if let Some(socket) = &section.socket {
            let _ = writeln!(text, "pg1-socket-path={socket}");
        }
    }
    text
}

/// Removes raw control characters pgBackRest can leave inside the JSON of
/// `info` (a repository it could not decrypt quotes the bytes it read).
pub fn sanitize_json(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::host::DEFAULT_TLS_PORT;

    fn host(name: &str, role: HostRole, zone: Option<Zone>) -> FleetHost {
        FleetHost {
            name: name.into(),
            role,
            address: format!("{name}.fleet.test"),
            zone,
            data_root: Some(format!("/srv/{name}")),
            max_restores: None,
            tls_port: DEFAULT_TLS_PORT,
        }
    }

    fn fleet() -> Vec<FleetHost> {
        vec![
            host("az1", HostRole::Zone, Some(Zone::Az1)),
            host("az2", HostRole::Zone, Some(Zone::Az2)),
            host("az3", HostRole::Zone, Some(Zone::Az3)),
            host("r1", HostRole::Restore, None),
            host("src", HostRole::Source, None),
        ]
    }

    fn tls() -> TlsFiles {
        TlsFiles {
            dir: PathBuf::from("/etc/rd/tls"),
        }
    }

    #[test]
    fn a_restore_host_reaches_every_zone_and_serves_its_clusters() {
        let hosts = fleet();
        let sections = [StanzaSection {
            stanza: "c-1".into(),
            pg_path: "/srv/r1/restores/j-1/data".into(),
            pg_port: 55432,
            socket: Some("/srv/r1/restores/j-1/run".into()),
            remote: None,
        }];
        let text = render(&HostConf {
            root: Path::new("/srv/r1"),
            hosts: &hosts,
            me: hosts.iter().find(|h| h.name == "r1"),
            tls: &tls(),
            zone_pass: None,
            retention_days: 35,
            sections: &sections,
        });
        for n in 1..=3 {
            assert!(
                text.contains(&format!("repo{n}-host=az{n}.fleet.test\n")),
                "{text}"
            );
            assert!(text.contains(&format!(
                "repo{n}-host-config=/srv/az{n}/host/pgbackrest.conf\n"
            )));
        }
        assert!(text.contains("repo1-host-cert-file=/etc/rd/tls/client.crt\n"));
        assert!(!text.contains("cipher-pass"), "no passphrase leaves a zone");
        assert!(text.contains("tls-server-port=8432\n"));
        assert!(text.contains("tls-server-auth=az1=*\ntls-server-auth=az2=*\n"));
        assert!(text.contains("tls-server-auth=desk=*\n"));
        assert!(text.contains("\n[c-1]\npg1-path=/srv/r1/restores/j-1/data\npg1-port=55432\npg1-socket-path=/srv/r1/restores/j-1/run\n"));
        assert!(text.contains("[global:archive-push]\narchive-async=y\n"));
    }

    #[test]
    fn a_zone_host_keeps_its_own_repository_and_backs_up_over_tls() {
        let hosts = fleet();
        let sections = [StanzaSection {
            stanza: "orders".into(),
            pg_path: "/var/lib/postgresql/15/main".into(),
            pg_port: 5432,
            socket: None,
            remote: Some(RemotePg {
                address: "src.fleet.test".into(),
                tls_port: 8432,
                config: "/etc/pgbackrest/pgbackrest.conf".into(),
            }),
        }];
        let text = render(&HostConf {
            root: Path::new("/srv/az2"),
            hosts: &hosts,
            me: hosts.iter().find(|h| h.name == "az2"),
            tls: &tls(),
            zone_pass: Some("secret-2".into()),
            retention_days: 35,
            sections: &sections,
        });
        assert!(text.contains("repo2-path=/srv/az2/repo\n"), "{text}");
        assert!(text.contains("repo2-cipher-type=aes-256-cbc\nrepo2-cipher-pass=secret-2\n"));
        assert!(text.contains("repo2-retention-full-type=time\nrepo2-retention-full=35\n"));
        assert!(!text.contains("repo1"), "only its own zone: {text}");
        assert!(!text.contains("-host=az"));
        assert!(text.contains("pg1-host=src.fleet.test\npg1-host-type=tls\n"));
        assert!(text.contains("pg1-host-config=/etc/pgbackrest/pgbackrest.conf\n"));
        assert!(!text.contains("pg1-socket-path"));
    }

    #[test]
    fn a_desk_process_is_only_a_client() {
        let hosts = fleet();
        let text = render(&HostConf {
            root: Path::new("/srv/desk"),
            hosts: &hosts,
            me: None,
            tls: &tls(),
            zone_pass: None,
            retention_days: 35,
            sections: &[],
        });
        assert!(text.contains("repo3-host=az3.fleet.test\n"));
        assert!(!text.contains("tls-server"), "{text}");
        assert!(text.starts_with("# Written by restore-desk for host desk"));
    }

    #[test]
    fn control_bytes_in_info_output_are_blanked() {
        assert_eq!(
            sanitize_json("{\"m\":\"Salted__\u{1}\u{7f}x\"}\n"),
            "{\"m\":\"Salted__  x\"}\n"
        );
    }
}
