//! The customer portal: clusters with their restorable windows, the Help +
//! support entry, the restore request form with its live check, my
//! requests, and the ticket page with messages, cancel and live progress.

mod clusters;
pub(crate) mod request;
mod support;
mod tickets;

pub use clusters::*;
pub use request::*;
pub use support::*;
pub use tickets::*;
