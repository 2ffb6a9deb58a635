//! The fleet across hosts: what the desk sets up so that zones, sources and restore hosts reach each other's pgBackRest servers.
pub mod pki;

use crate::domain::host::{FleetHost, ZONE_ANSWER_SECONDS};

/// Whether `host` accepts a connection on its TLS port within
/// `ZONE_ANSWER_SECONDS`: the network's word on whether it is there.
pub async fn answers(host: &FleetHost) -> bool {
    let connect = tokio::net::TcpStream::connect((host.address.as_str(), host.tls_port));
    let bound = std::time::Duration::from_secs(ZONE_ANSWER_SECONDS);
    matches!(tokio::time::timeout(bound, connect).await, Ok(Ok(_)))
}
