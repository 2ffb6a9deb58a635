//! The outbox relay: claims due emails, sends them, and settles each
//! attempt. Transient failures retry with exponential backoff and jitter up
//! to a horizon; permanent ones fail at once and show on the admin page.
//! Each message carries a Message-ID made from its outbox id, so a crash
//! between the server's 250 and the settle costs at most a resend with the
//! same id.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::transport::{Mailer, SendError};
use crate::app::App;
use crate::store::{Delivery, OutboxMessage, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Wait after the first failed attempt; doubles per attempt.
    pub base: Duration,
    pub max: Duration,
    /// Give up once a message is this old.
    pub horizon: Duration,
    /// How long a sender's claim on a message lasts.
    pub claim_for: Duration,
    pub batch: i64,
}

/// How long a sender's claim on a message lasts.
pub const CLAIM_FOR: Duration = Duration::minutes(2);

/// Time one attempt may take (the SMTP timeout, and some): an attempt only
/// starts while its claim has at least this long to run, so no other relay
/// can take the message over while it is being sent.
pub const SEND_BUDGET: Duration = Duration::seconds(30);

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            base: Duration::seconds(30),
            max: Duration::hours(1),
            horizon: Duration::hours(24),
            claim_for: CLAIM_FOR,
            batch: 20,
        }
    }
}

impl DeliveryPolicy {
    /// The backoff after `attempts` failed attempts, before jitter.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let doublings = attempts.saturating_sub(1).clamp(0, 20) as i32;
        (self.base * 2_i32.pow(doublings as u32)).min(self.max)
    }
}

pub struct Relay {
    app: App,
    mailer: Arc<dyn Mailer>,
    from: Mailbox,
    domain: String,
    policy: DeliveryPolicy,
}

impl Relay {
    pub fn new(app: App, mailer: Arc<dyn Mailer>, policy: DeliveryPolicy) -> Result<Relay, String> {
        let from: Mailbox = app.settings.mail_from.parse().map_err(|e| {
            format!(
                "MAIL_FROM {:?} is not an address: {e}",
                app.settings.mail_from
            )
        })?;
        let domain = from.email.domain().to_string();
        Ok(Relay {
            app,
            mailer,
            from,
            domain,
            policy,
        })
    }

    /// The Message-ID of an outbox row: the same for every resend.
    pub fn message_id(&self, message: &OutboxMessage) -> String {
        format!("<{}@{}>", message.id, self.domain)
    }

    /// The email for an outbox row, as sent at every attempt.
    pub fn email(&self, message: &OutboxMessage) -> Result<Message, String> {
        let to: Mailbox = message
            .recipient
            .parse()
            .map_err(|e| format!("recipient {:?} is not an address: {e}", message.recipient))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .message_id(Some(self.message_id(message)))
            .date(message.created_at.into())
            .multipart(MultiPart::alternative_plain_html(
                message.text_body.clone(),
                message.html_body.clone(),
            ))
            .map_err(|e| format!("the email cannot be built: {e}"))
    }

    /// What to record after an attempt failed transiently.
    fn after_transient(
        &self,
        message: &OutboxMessage,
        error: String,
        now: DateTime<Utc>,
    ) -> Delivery {
        let jitter = rand::rng().random_range(0.5..1.0);
        let wait = self.policy.backoff(message.attempts);
        let wait = Duration::milliseconds((wait.num_milliseconds() as f64 * jitter) as i64);
        let next = now + wait;
        if next - message.created_at > self.policy.horizon {
            Delivery::Failed {
                at: now,
                error: format!(
                    "gave up after {} attempts over {} hours: {error}",
                    message.attempts,
                    self.policy.horizon.num_hours()
                ),
            }
        } else {
            Delivery::RetryAt { at: next, error }
        }
    }

    #[tracing::instrument(skip_all, fields(outbox = %message.id, kind = %message.kind, attempt = message.attempts))]
    async fn deliver(&self, message: &OutboxMessage) -> Delivery {
        let outcome = match self.email(message) {
            Ok(email) => self.mailer.send(message.id, &email).await,
            Err(error) => Err(SendError::Permanent(error)),
        };
        let now = self.app.now();
        let label = match &outcome {
            Ok(()) => "sent",
            Err(SendError::Permanent(_)) => "refused",
            Err(SendError::Transient(_)) => "deferred",
        };
        metrics::counter!("restore_desk_email_attempts_total", "outcome" => label).increment(1);
        match outcome {
            Ok(()) => {
                tracing::info!(to = %message.recipient, "email sent");
                Delivery::Sent { at: now }
            }
            Err(SendError::Permanent(error)) => {
                tracing::error!(to = %message.recipient, %error, "email refused for good");
                Delivery::Failed { at: now, error }
            }
            Err(SendError::Transient(error)) => {
                tracing::warn!(to = %message.recipient, %error, "email not sent yet");
                self.after_transient(message, error, now)
            }
        }
    }

    /// Sends claimed messages one by one and settles each attempt. A
    /// message whose claim is too close to running out is left alone: its
    /// claim lapses and a later round takes it again.
    pub async fn deliver_claimed(&self, messages: &[OutboxMessage]) -> Result<usize, StoreError> {
        let mut attempted = 0;
        for message in messages {
            let fresh = message
                .claimed_until
                .is_some_and(|until| self.app.now() + SEND_BUDGET <= until);
            if !fresh {
                continue;
            }
            let outcome = self.deliver(message).await;
            attempted += 1;
            if !self
                .app
                .store
                .settle_outbox(message.id, message.attempts, &outcome)
                .await?
            {
                tracing::warn!(outbox = %message.id, "claim expired before the attempt was settled");
            }
        }
        Ok(attempted)
    }

    /// Claims one batch of due messages and sends them. Returns how many
    /// were claimed.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let now = self.app.now();
        let batch = self
            .app
            .store
            .claim_outbox(now, self.policy.claim_for, self.policy.batch)
            .await?;
        self.deliver_claimed(&batch).await?;
        Ok(batch.len())
    }

    /// Sends until nothing is due: for tests and shutdown.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let sent = self.deliver_due().await?;
            if sent == 0 {
                return Ok(total);
            }
            total += sent;
        }
    }
}

/// A channel for this process's commits to hand their emails to its relay.
pub fn hand_off() -> (
    tokio::sync::mpsc::UnboundedSender<Vec<OutboxMessage>>,
    tokio::sync::mpsc::UnboundedReceiver<Vec<OutboxMessage>>,
) {
    tokio::sync::mpsc::unbounded_channel()
}

/// Hand-offs sent at the same time: each waits on its SMTP answer, so a slow
/// one does not hold up the next.
const IN_FLIGHT: usize = 8;

/// The relay's loop: send what commits hand over at once, and poll the
/// outbox for the rest (retries, other processes' mail, lapsed claims).
pub async fn run(
    relay: Relay,
    mut handed: Option<tokio::sync::mpsc::UnboundedReceiver<Vec<OutboxMessage>>>,
    shutdown: CancellationToken,
) {
    tracing::info!(to = %relay.mailer.describe(), "email relay started");
    let relay = std::sync::Arc::new(relay);
    let mut sending = tokio::task::JoinSet::new();
    let poll = StdDuration::from_secs(1);
    let mut next_poll = tokio::time::Instant::now();
    while !shutdown.is_cancelled() {
        if tokio::time::Instant::now() >= next_poll {
            match relay.deliver_due().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "email relay cannot read the outbox"),
            }
            next_poll = tokio::time::Instant::now() + poll;
        }
        let batch = tokio::select! {
            batch = async { handed.as_mut()?.recv().await }, if handed.is_some() => batch,
            Some(_) = sending.join_next(), if !sending.is_empty() => None,
            _ = relay.app.mail_ready.notified() => {
                next_poll = tokio::time::Instant::now();
                None
            }
            _ = tokio::time::sleep_until(next_poll) => None,
            _ = shutdown.cancelled() => None,
        };
        let Some(batch) = batch else { continue };
        while sending.len() >= IN_FLIGHT {
            sending.join_next().await;
        }
        let relay = relay.clone();
        sending.spawn(async move {
            if let Err(error) = relay.deliver_claimed(&batch).await {
                tracing::error!(%error, "email relay cannot settle an attempt");
            }
        });
    }
    // Attempts under way finish and settle; what is left keeps its claim.
    while sending.join_next().await.is_some() {}
}
