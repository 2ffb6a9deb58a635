//! The running application's shared parts, handed to handlers and workers.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::backend::DynBackend;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::catalog::RetentionPolicy;
use crate::notify::transport::Mailer;
use crate::store::{Commit, DynStore, StoreResult};
use tokio::sync::Notify;

#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    pub store: DynStore,
    pub backend: DynBackend,
    pub clock: Arc<dyn Clock>,
    pub mailer: Arc<dyn Mailer>,
    /// Wakes an idle worker of this process when a job became runnable here,
    /// so it need not wait for its next poll.
    pub work_ready: Arc<Notify>,
    /// Wakes the email relay when a commit wrote to the outbox.
    pub mail_ready: Arc<Notify>,
}

impl App {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn policy(&self) -> RetentionPolicy {
        self.settings.retention()
    }

    /// Commits a change with its effects, then wakes whoever has new work:
    /// a worker for a job, the relay for emails.
    pub async fn commit(&self, commit: &Commit) -> StoreResult<()> {
        self.store.commit(commit).await?;
        if commit.job.is_some() {
            self.work_ready.notify_one();
        }
        if !commit.outbox.is_empty() {
            self.mail_ready.notify_one();
        }
        Ok(())
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
