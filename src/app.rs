//! The running application's shared parts, handed to handlers and workers.

use std::sync::Arc;

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use chrono::{DateTime, Utc};

use crate::backend::DynBackend;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::catalog::RetentionPolicy;
use crate::domain::ids::{ClusterId, TicketId};
use crate::notify::transport::Mailer;
use crate::store::{
    Commit, Committed, DynSandboxStore, DynStore, OutboxMessage, RestoreJob, StoreResult, Ticket,
};
use crate::token_cache::TokenCache;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    pub store: DynStore,
    /// The simulated fleet's tables, beside the store.
    pub sandbox: DynSandboxStore,
    pub backend: DynBackend,
    pub clock: Arc<dyn Clock>,
    pub mailer: Arc<dyn Mailer>,
    /// Wakes an idle worker of this process when a job became runnable here,
    /// so it need not wait for its next poll.
    pub work_ready: Arc<Notify>,
    /// Wakes the email relay when a commit wrote to the outbox.
    pub mail_ready: Arc<Notify>,
    /// The email relay of this process, when one runs: a commit hands it
    /// its emails, claimed in the same transaction, to send at once.
    pub local_relay: Arc<OnceLock<UnboundedSender<Vec<OutboxMessage>>>>,
    /// Cluster names by id. A cluster is never renamed and an id never
    /// reused, so a name once read stays true.
    pub cluster_names: Arc<RwLock<HashMap<ClusterId, String>>>,
    /// API tokens checked lately, trusted again for a moment.
    pub api_tokens: Arc<TokenCache>,
    /// Tickets and users read lately, trusted until this process writes.
    pub reads: Arc<crate::desk::read::ReadCaches>,
    /// The key endpoint secrets are derived from.
    pub secret_key: crate::notify::post::SecretKey,
    /// This process's name among the desk's processes: host, pid and a
    /// random suffix (worker names and duty leases start with it).
    pub instance: Arc<str>,
}

impl App {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn policy(&self) -> RetentionPolicy {
        self.settings.retention()
    }

    /// Commits a change with its effects, then wakes whoever has new work:
    /// a worker for a job, the relay for emails. With a relay in this
    /// process, the emails are written already claimed and handed to it, so
    /// they leave without waiting for a poll or a claim; should this process
    /// die first, the claim runs out and any relay sends them.
    pub async fn commit(&self, mut commit: Commit) -> StoreResult<Committed> {
        let relay = self.local_relay.get().filter(|_| !commit.outbox.is_empty());
        if relay.is_some() {
            commit.outbox_claimed_until = Some(commit.at + crate::notify::relay::CLAIM_FOR);
        }
        let committed = self.store.commit(&commit).await?;
        if commit.wakes_workers() {
            self.work_ready.notify_one();
        }
        match relay {
            Some(relay) if relay.send(commit.outbox_rows(&committed)).is_err() => {
                tracing::warn!("email relay stopped: its claim will lapse and the poll send them");
            }
            Some(_) => {}
            None if !commit.outbox.is_empty() => self.mail_ready.notify_one(),
            None => {}
        }
        Ok(committed)
    }

    /// A ticket's restore job. Before approval there is none to look for,
    /// unless the ticket was restored and reopened by its customer.
    pub async fn job_of(&self, ticket: &Ticket) -> StoreResult<Option<RestoreJob>> {
        if !ticket.state.may_have_job() && ticket.new_cluster_id.is_none() {
            return Ok(None);
        }
        self.store.job_for_ticket(ticket.id).await
    }

    /// A cluster's name, from memory after the first read.
    pub async fn cluster_name(&self, id: ClusterId) -> StoreResult<Option<String>> {
        if let Some(name) = self
            .cluster_names
            .read()
            .ok()
            .and_then(|n| n.get(&id).cloned())
        {
            return Ok(Some(name));
        }
        let name = self
            .store
            .cluster(id, crate::store::Scope::Everything)
            .await?
            .map(|c| c.name);
        if let (Some(name), Ok(mut names)) = (&name, self.cluster_names.write()) {
            names.insert(id, name.clone());
        }
        Ok(name)
    }

    /// The requester's one-click page for their verdict on a hand-over.
    pub fn verdict_link(&self, ticket_id: TicketId) -> String {
        format!(
            "{}/verdict/{ticket_id}/{}",
            self.settings.public_url(),
            self.secret_key.verdict_token(ticket_id)
        )
    }

    /// The ticket page a reader in `role` opens from an email.
    pub fn ticket_link(&self, ticket_id: TicketId, staff: bool) -> String {
        let base = self.settings.public_url();
        if staff {
            format!("{base}/staff/tickets/{ticket_id}")
        } else {
            format!("{base}/tickets/{ticket_id}")
        }
    }
}
