//! The demo data read back, and approved restore work written straight into
//! the store: no-op jobs for the engine to drain.

use chrono::{DateTime, Duration, Utc};
use restore_desk::domain::ids::{ClusterId, JobId};
use uuid::Uuid;

use restore_desk::domain::catalog::ZoneSet;
use restore_desk::domain::cluster::Cluster;
use restore_desk::domain::sla::Severity;
use restore_desk::domain::ticket::TicketState;
use restore_desk::domain::validation::ValidationReport;
use restore_desk::store::{
    Commit, DynStore, Email, JobWrite, NewJob, NewTicket, Scope, TicketWrite, User,
};

/// A demo user, by email.
pub async fn demo_user(store: &DynStore, email: &str) -> User {
    store
        .user_by_email(&Email::parse(email).unwrap())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no demo user {email}"))
}

/// A demo cluster, by name.
pub async fn demo_cluster(store: &DynStore, name: &str) -> Cluster {
    store
        .clusters(Scope::Everything, false)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no demo cluster {name}"))
}

/// Alice's approved requests on orders-prod, an hour back, each with its
/// job queued.
#[derive(Clone)]
pub struct QueuedJobs {
    requester: User,
    source: Cluster,
    now: DateTime<Utc>,
    report: ValidationReport,
}

impl QueuedJobs {
    pub async fn on_orders_prod(store: &DynStore) -> QueuedJobs {
        let now = Utc::now();
        let target = now - Duration::hours(1);
        QueuedJobs {
            requester: demo_user(store, "alice@contoso.example").await,
            source: demo_cluster(store, "orders-prod").await,
            now,
            report: ValidationReport {
                checked_at: now,
                target,
                window: None,
                online_zones: ZoneSet::ALL,
                plan: None,
                error: None,
                deadline: target + Duration::days(35),
            },
        }
    }

    /// Ticket `number` and its queued job, in one commit.
    pub fn commit(&self, number: i64) -> Commit {
        let (now, target, source) = (self.now, self.report.target, &self.source);
        let id = Uuid::new_v4();
        let mut commit = Commit::at(now);
        commit.ticket = Some(TicketWrite::Create(NewTicket {
            transaction: None,
            id: id.into(),
            number: Some(number),
            subscription_id: source.subscription_id,
            requester_id: self.requester.id,
            cluster_id: source.id,
            resource_group: source.resource_group.clone(),
            target_time: target,
            time_zone: "UTC".into(),
            new_cluster_name: format!("noop-{number}"),
            severity: Severity::C,
            description: String::new(),
            state: TicketState::Approved,
            validation_report: self.report.clone(),
            deadline: self.report.deadline,
            first_response_due: now + Duration::days(1),
            inspect: false,
        }));
        commit.job = Some(JobWrite::Create(NewJob {
            kind: restore_desk::domain::restore_job::JobKind::Restore,
            drill_zone: None,
            id: JobId::new(),
            ticket_id: Some(id.into()),
            source_cluster_id: source.id,
            target_time: target,
            new_cluster_id: ClusterId::new(),
        }));
        commit
    }
}
