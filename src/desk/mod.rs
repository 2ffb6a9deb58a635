//! Use cases: each loads the facts, asks the domain what a command does, and
//! commits the state change with all its effects in one transaction.
//! Handlers and workers call these; they never write state themselves.

pub mod admin;
pub mod clusters;
pub mod commands;
pub mod drills;
pub mod endpoints;
pub mod eta;
pub mod filing;
pub mod hosts;
pub mod notices;
pub mod read;
pub mod transactions;
pub mod verdicts;

use crate::backend::FleetError;
use crate::domain::actor::Role;
use crate::domain::restore_job::JobRefusal;
use crate::domain::ticket::Refusal;
use crate::domain::validation::ValidationError;
use crate::store::{Scope, StoreError, User};

pub use commands::{Redirect, act, change_target, redirect, validate_now};
pub use filing::{CheckedRequest, FilingRequest, check_request, file_ticket};

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// Not there, or not visible to this user: the same answer either way,
    /// so another subscription's tickets cannot even be probed.
    #[error("no such ticket")]
    NotFound,
    #[error("{0}")]
    Refused(Refusal),
    #[error("{0}")]
    JobRefused(JobRefusal),
    /// The request breaks the rules of SPEC §4; first error first.
    #[error("{}", .0.first().map(|e| e.message.as_str()).unwrap_or("invalid request"))]
    Invalid(Vec<ValidationError>),
    #[error("{message}")]
    BadInput {
        field: &'static str,
        message: String,
    },
    /// Somebody else changed the ticket since the caller looked at it.
    #[error("the ticket changed since you loaded it: reload it and try again")]
    Stale,
    #[error("the backup fleet cannot be reached: {0}")]
    Fleet(FleetError),
    #[error("{0}")]
    Store(StoreError),
    #[error("an email could not be rendered: {0}")]
    Template(String),
    #[error("{0}")]
    Verdict(crate::domain::verdict::VerdictRefusal),
}

impl From<StoreError> for DeskError {
    fn from(error: StoreError) -> DeskError {
        match error {
            StoreError::Conflict(_) => DeskError::Stale,
            other => DeskError::Store(other),
        }
    }
}

impl From<FleetError> for DeskError {
    fn from(error: FleetError) -> DeskError {
        match error {
            FleetError::Store(error) => error.into(),
            other => DeskError::Fleet(other),
        }
    }
}

impl From<askama::Error> for DeskError {
    fn from(error: askama::Error) -> DeskError {
        DeskError::Template(error.to_string())
    }
}

/// The rows a user may see.
pub fn scope_for(user: &User) -> Scope {
    match (user.role, user.subscription_id) {
        (Role::Customer, Some(subscription)) => Scope::Subscription(subscription),
        (Role::Customer, None) => Scope::Subscription(crate::domain::ids::SubscriptionId::nil()),
        _ => Scope::Everything,
    }
}
