//! Pure domain rules: types, lifecycles and the backup window. No I/O here.

#[macro_use]
pub mod vocabulary;

pub mod actor;
pub mod capacity;
pub mod catalog;
pub mod cluster;
pub mod drill;
pub mod email;
pub mod endpoint;
pub mod error_code;
pub mod eta;
pub mod event;
pub mod host;
pub mod ids;
pub mod restore_job;
pub mod sla;
pub mod text;
pub mod ticket;
pub mod transactions;
pub mod validation;
pub mod verdict;
pub mod verification;

use chrono::{DateTime, SubsecRound, Utc};

/// Times are kept to the microsecond: the precision both databases store, so
/// a time read back equals the time written.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}
