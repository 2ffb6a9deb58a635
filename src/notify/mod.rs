//! Email: composing notices from templates, the transports, and the relay
//! that delivers the outbox.

pub mod compose;
pub mod post;
pub mod relay;
pub mod transport;

use std::sync::Arc;

use crate::config::Settings;
use transport::{FileMailer, Mailer, SmtpMailer};

/// SMTP when `SMTP_URL` is set, otherwise files in `MAIL_DIR`.
pub fn mailer(settings: &Settings) -> Result<Arc<dyn Mailer>, String> {
    Ok(match &settings.smtp_url {
        Some(url) => Arc::new(SmtpMailer::new(url, settings.smtp_timeout())?),
        None => Arc::new(FileMailer::new(settings.mail_dir.clone())),
    })
}
