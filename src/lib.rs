//! Restore Desk: a help desk for point-in-time restores of managed database
//! clusters. Customers file restore requests, support engineers review and
//! approve them, and a durable job engine restores the backups into a new
//! cluster.

pub mod app;
pub mod backend;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod desk;
/// How much room a file system has left.
pub mod disk;
/// Pure types and rules: lifecycles, the backup window, validation.
pub mod domain;
pub mod engine;
/// The fleet across hosts: certificates for the pgBackRest servers of zones and hosts.
pub mod fleet;
pub mod metrics;
pub mod notify;
pub mod password;
pub mod read_cache;
pub mod secret_key;
/// Persistence behind one trait, for SQLite and PostgreSQL.
pub mod store;
pub mod token_cache;
pub mod web;
