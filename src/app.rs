//! The running application's shared parts, handed to handlers and workers.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::backend::DynBackend;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::catalog::RetentionPolicy;
use crate::store::DynStore;

#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    pub store: DynStore,
    pub backend: DynBackend,
    pub clock: Arc<dyn Clock>,
    /// Wakes this process's idle workers when a job became runnable here,
    /// so they need not wait for their next poll.
    pub work_ready: Arc<tokio::sync::Notify>,
}

impl App {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn policy(&self) -> RetentionPolicy {
        self.settings.retention()
    }

    /// The ticket page a reader in `role` opens from an email.
    pub fn ticket_link(&self, ticket_id: uuid::Uuid, staff: bool) -> String {
        let base = self.settings.public_url();
        if staff {
            format!("{base}/staff/tickets/{ticket_id}")
        } else {
            format!("{base}/tickets/{ticket_id}")
        }
    }
}
