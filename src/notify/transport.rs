//! Where emails go: an SMTP server (production) or a folder of `.eml` files
//! (the embedded default).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use uuid::Uuid;

use crate::store::redact_url;

/// How a delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again: 4xx, refused connection, timeout.
    #[error("{0}")]
    Transient(String),
    /// Trying again cannot help: 5xx.
    #[error("{0}")]
    Permanent(String),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// Where mail goes, for logs (no secrets).
    fn describe(&self) -> String;
    /// Hands one message over; `id` is the outbox row's, stable across resends.
    async fn send(&self, id: Uuid, message: &Message) -> Result<(), SendError>;
}

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    url: String,
    /// The whole exchange — connect, greeting, every command, DATA — ends
    /// within this, answered or not.
    timeout: Duration,
}

impl SmtpMailer {
    /// `smtp://host:port` (plain, for a local relay), `smtp://…?tls=required`
    /// (STARTTLS) or `smtps://…` (TLS), with optional `user:pass@`.
    pub fn new(url: &str, timeout: Duration) -> Result<SmtpMailer, String> {
        // lettre bounds only the connect; the overall bound is ours.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("SMTP_URL {:?} is not usable: {e}", redact_url(url)))?
            .timeout(Some(timeout))
            .build();
        Ok(SmtpMailer {
            transport,
            url: redact_url(url),
            timeout,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    fn describe(&self) -> String {
        self.url.clone()
    }

    async fn send(&self, _id: Uuid, message: &Message) -> Result<(), SendError> {
        let exchange = tokio::time::timeout(self.timeout, self.transport.send(message.clone()));
        let Ok(answer) = exchange.await else {
            // Dropping the exchange drops its connection: a server that
            // stalls mid-way is never asked again on the same one.
            return Err(SendError::Transient(format!(
                "the mail server did not finish the exchange within {} seconds",
                self.timeout.as_secs_f64()
            )));
        };
        match answer {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => Err(SendError::Permanent(error.to_string())),
            Err(error) => Err(SendError::Transient(error.to_string())),
        }
    }
}

/// Writes `<outbox id>.eml` into a folder. A resend overwrites the same
/// file, so a message never appears twice.
pub struct FileMailer {
    dir: PathBuf,
}

impl FileMailer {
    pub fn new(dir: PathBuf) -> FileMailer {
        FileMailer { dir }
    }
}

#[async_trait]
impl Mailer for FileMailer {
    fn describe(&self) -> String {
        format!("files in {}", self.dir.display())
    }

    async fn send(&self, id: Uuid, message: &Message) -> Result<(), SendError> {
        let transient =
            |e: std::io::Error| SendError::Transient(format!("writing the email failed: {e}"));
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(transient)?;
        let path = self.dir.join(format!("{id}.eml"));
        let partial = self.dir.join(format!(".{id}.eml.partial"));
        tokio::fs::write(&partial, message.formatted())
            .await
            .map_err(transient)?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(transient)?;
        Ok(())
    }
}
