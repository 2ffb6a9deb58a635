//! Ports on the fleet's host, held by the cluster or restore that uses each.

use super::*;

impl PgBackRestBackend {
    pub(super) fn port_owner_path(&self, port: u16) -> PathBuf {
        self.layout.ports().join(port.to_string())
    }

    /// Holds `port` for `owner`; true if it is now (or was already) theirs.
    pub(super) fn reserve_port(&self, port: u16, owner: &str) -> std::io::Result<bool> {
        let path = self.port_owner_path(port);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                use std::io::Write;
                file.write_all(owner.as_bytes())?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok(std::fs::read_to_string(&path)? == owner)
            }
            Err(e) => Err(e),
        }
    }

    /// A port in FLEET_PORTS that nothing listens on and no cluster holds.
    pub(super) fn allocate_port(&self, owner: &str) -> Result<u16, String> {
        for port in self.config.ports.clone() {
            if std::fs::read_to_string(self.port_owner_path(port)).is_ok_and(|o| o == owner) {
                return Ok(port);
            }
        }
        for port in self.config.ports.clone() {
            if self.port_owner_path(port).exists()
                || std::net::TcpListener::bind((HOST, port)).is_err()
            {
                continue;
            }
            match self.reserve_port(port, owner) {
                Ok(true) => return Ok(port),
                Ok(false) => continue,
                Err(e) => return Err(format!("reserving port {port}: {e}")),
            }
        }
        Err(format!(
            "no free port left in FLEET_PORTS {}-{}",
            self.config.ports.start(),
            self.config.ports.end()
        ))
    }

    pub(super) fn release_ports(&self, owner: &str) {
        let Ok(entries) = std::fs::read_dir(self.layout.ports()) else {
            return;
        };
        for entry in entries.flatten() {
            if std::fs::read_to_string(entry.path()).is_ok_and(|o| o == owner) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// A free port for a new source cluster's record.
    pub fn allocate_source_port(&self, cluster_id: ClusterId) -> Result<u16, FleetError> {
        self.allocate_port(&format!("cluster {cluster_id}"))
            .map_err(FleetError::Unreachable)
    }
}
