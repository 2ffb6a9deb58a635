//! The words the API's fields take from the domain — states, severities,
//! roles, zones — as OpenAPI enums. Each list is read from the domain's own
//! (`TicketState::ALL` …, through `as_str`, as the handlers write them), so
//! the document cannot drift from the answers. These types only describe
//! fields: `#[schema(value_type = words::TicketState)]` on a `String`.

use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};

use crate::domain::actor::Role as DomainRole;
use crate::domain::catalog::Zone as DomainZone;
use crate::domain::cluster::ClusterStatus as DomainClusterStatus;
use crate::domain::endpoint::{EndpointKind as DomainEndpointKind, EventType as DomainEventType};
use crate::domain::host::HostRole as DomainHostRole;
use crate::domain::restore_job::JobState as DomainJobState;
use crate::domain::sla::Severity as DomainSeverity;
use crate::domain::ticket::{
    NoticeKind as DomainNoticeKind, TicketState as DomainTicketState,
    Visibility as DomainVisibility,
};
use crate::store::{FaultKind as DomainFaultKind, OutboxStatus as DomainOutboxStatus};

fn one_of<I, S>(description: &str, words: I) -> RefOr<Schema>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let words: Vec<String> = words.into_iter().map(Into::into).collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(words))
        .into()
}

/// Declares a schema-only type named like the words it lists.
macro_rules! words {
    ($(#[doc = $doc:literal])+ $name:ident = $words:expr) => {
        $(#[doc = $doc])+
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                one_of(concat!($($doc),+).trim(), $words)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

words!(
    /// Where a ticket is in its lifecycle.
    TicketState = DomainTicketState::ALL.map(DomainTicketState::as_str)
);

words!(
    /// Which tickets the staff queue shows: `open` (every state that still
    /// needs someone), `all`, or one ticket state.
    TicketStateFilter = ["open", "all"]
        .into_iter()
        .chain(DomainTicketState::ALL.map(DomainTicketState::as_str))
);

words!(
    /// Which first-response clocks the staff queue shows: `breached` (past
    /// due, unanswered) or `due` (breached or due within the hour).
    ResponseFilter = ["breached", "due"]
);

words!(
    /// What an event of the audit trail records.
    EventAction = crate::domain::event::EventAction::ALL.map(crate::domain::event::EventAction::as_str)
);

words!(
    /// Where a restore job is: its steps, then how it ended.
    JobState = DomainJobState::ALL.map(DomainJobState::as_str)
);

words!(
    /// What a host of the fleet is for: `source` runs customers' clusters,
    /// `zone` keeps one zone's pgBackRest repository, `restore` runs
    /// restores.
    HostRole = DomainHostRole::ALL.map(DomainHostRole::as_str)
);

words!(
    /// A restore step a fault can be armed on.
    RestoreStep = DomainJobState::STEPS.map(DomainJobState::as_str)
);

words!(
    /// How urgent the request is: `A` critical, `B` moderate, `C` minimal.
    Severity = DomainSeverity::ALL.map(DomainSeverity::as_str)
);

words!(
    /// Who acted: a person in their role, or the desk itself (`system`).
    Role = DomainRole::ALL.map(DomainRole::as_str)
);

words!(
    /// The role a person holds.
    PersonRole = DomainRole::PEOPLE.map(DomainRole::as_str)
);

words!(
    /// A statement that changed relations' definitions, as the log shows it.
    DdlKind = crate::domain::transactions::DdlKind::ALL.map(crate::domain::transactions::DdlKind::as_str)
);

words!(
    /// Which side of a transaction a restore stops at.
    TxPosition = crate::domain::transactions::TxPosition::ALL.map(crate::domain::transactions::TxPosition::as_str)
);

words!(
    /// An availability zone of a region.
    Zone = DomainZone::ALL.map(DomainZone::as_str)
);

words!(
    /// What a zone command does.
    ZoneChange = ["offline", "online"]
);

words!(
    /// `building` while a restore creates the cluster, then `ready`.
    ClusterStatus = [DomainClusterStatus::Building, DomainClusterStatus::Ready]
        .map(DomainClusterStatus::as_str)
);

words!(
    /// `public`, or `internal`: staff only, never shown to customers.
    Visibility = [DomainVisibility::Public, DomainVisibility::Internal].map(DomainVisibility::as_str)
);

words!(
    /// Where an email is on its way out.
    OutboxStatus = DomainOutboxStatus::ALL.map(DomainOutboxStatus::as_str)
);

words!(
    /// Which notification a message is: an email's notice, or the event a
    /// post to an endpoint carries.
    NoticeKind = DomainNoticeKind::ALL
        .map(DomainNoticeKind::as_str)
        .into_iter()
        .chain(DomainEventType::ALL.map(DomainEventType::as_str))
        .chain(["endpoint_disabled", "drill_failed"])
        .collect::<Vec<_>>()
);

words!(
    /// The events an endpoint can ask for; `endpoint.test` comes only from
    /// "send a test event", and `ticket.deadline_near` only to staff's.
    EventType = DomainEventType::ALL.map(DomainEventType::as_str)
);

words!(
    /// `webhook` (signed JSON), `slack` (Block Kit) or `teams` (Adaptive Card).
    EndpointKind = DomainEndpointKind::ALL.map(DomainEndpointKind::as_str)
);

words!(
    /// `fail_step` (the step fails) or `slow_step` (it stalls for `delay_ms`).
    FaultKind = [DomainFaultKind::FailStep, DomainFaultKind::SlowStep].map(DomainFaultKind::as_str)
);

words!(
    /// A command on a ticket. Staff: `claim`, `approve`, `reject` (reason),
    /// `request-info` (body), `note` (body, internal), `retry`,
    /// `cancel-restore` (reason). Customers: `cancel`. Both: `reply` (body).
    TicketAction = [
        "claim",
        "approve",
        "reject",
        "request-info",
        "reply",
        "note",
        "cancel",
        "accept",
        "retry",
        "resolve",
        "cancel-restore",
    ]
);

/// A state an event moved from or to: a ticket's or a restore job's.
pub struct EventState;

impl utoipa::PartialSchema for EventState {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(Ref::from_schema_name("TicketState"))
            .item(Ref::from_schema_name("JobState"))
            .description(Some(
                "A state an event moved from or to: a ticket's or a restore job's",
            ))
            .into()
    }
}

impl utoipa::ToSchema for EventState {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push(("TicketState".into(), TicketState::schema()));
        schemas.push(("JobState".into(), JobState::schema()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::commands::staff_command;

    #[test]
    fn every_listed_action_is_one_the_route_takes() {
        let RefOr::T(Schema::Object(actions)) = <TicketAction as utoipa::PartialSchema>::schema()
        else {
            panic!("an object schema");
        };
        for action in actions.enum_values.unwrap() {
            let action = action.as_str().unwrap();
            assert!(
                matches!(action, "cancel" | "accept")
                    || staff_command(action, "", "", false).is_some(),
                "{action}"
            );
        }
    }
}
