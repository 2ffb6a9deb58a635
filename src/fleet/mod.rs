//! The fleet across hosts: what the desk sets up so that zones, sources and restore hosts reach each other's pgBackRest servers.
pub mod pki;
