//! Restore Desk: a help desk for point-in-time restores of managed database
//! clusters. Customers file restore requests, support engineers review and
//! approve them, and a durable job engine restores the backups into a new
//! cluster.

pub mod clock;
/// Pure types and rules: lifecycles, the backup window, validation.
pub mod domain;
/// Persistence behind one trait, for SQLite and PostgreSQL.
pub mod store;
