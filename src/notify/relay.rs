//! The outbox relay: claims due emails, sends them, and settles each
//! attempt. Transient failures retry with exponential backoff and jitter up
//! to a horizon; permanent ones fail at once and show on the admin page.
//! Each message carries a Message-ID made from its outbox id, so a crash
//! between the server's 250 and the settle costs at most a resend with the
//! same id.
//!
//! Every send is bounded by the transport's timeout, so a server that
//! accepts and never answers costs one retryable attempt, not the relay.
//! When the database fails just after a server accepted a message, the
//! relay keeps the outcome and settles it once the database is back,
//! instead of sending the message again when its claim runs out.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use rand::Rng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::post::Poster;
use super::transport::{Mailer, SendError};
use crate::app::App;
use crate::clock::Clock;
use crate::store::{Delivery, DynStore, OutboxMessage, StoreError};

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

/// Messages sent at the same time: each waits on its own SMTP exchange, so
/// a slow one does not hold up the next.
const IN_FLIGHT: usize = 8;

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

/// What the relay needs of the application: the outbox, the time, the
/// wake-up for new mail, the sender's address, the poster for endpoints,
/// the desk's address for links, and the shutdown grace.
#[derive(Clone)]
pub struct RelayContext {
    pub store: DynStore,
    pub clock: Arc<dyn Clock>,
    pub mail_ready: Arc<Notify>,
    pub mail_from: String,
    /// Where replies go; unset, the support address of MAIL_FROM's domain.
    pub mail_reply_to: Option<String>,
    pub poster: Arc<Poster>,
    pub public_url: String,
    pub shutdown_grace: StdDuration,
}

impl From<App> for RelayContext {
    fn from(app: App) -> RelayContext {
        RelayContext::from(&app)
    }
}

impl From<&App> for RelayContext {
    fn from(app: &App) -> RelayContext {
        RelayContext {
            store: app.store.clone(),
            clock: app.clock.clone(),
            mail_ready: app.mail_ready.clone(),
            mail_from: app.settings.mail_from.clone(),
            mail_reply_to: app.settings.mail_reply_to.clone(),
            poster: Arc::new(Poster::new(
                app.store.clone(),
                app.secret_key.clone(),
                app.settings.url_policy(),
                app.settings.webhook_timeout(),
            )),
            public_url: app.settings.public_url(),
            shutdown_grace: StdDuration::from_secs(app.settings.shutdown_grace_seconds),
        }
    }
}

pub struct Relay {
    context: RelayContext,
    mailer: Arc<dyn Mailer>,
    from: Mailbox,
    domain: String,
    policy: DeliveryPolicy,
    reply_to: Mailbox,
    /// Outcomes of sends this process made but could not record yet (the
    /// database failed right after): recorded, never sent again, when the
    /// database is back.
    unsettled: Mutex<HashMap<Uuid, Delivery>>,
    /// Messages this relay is sending now, each with the newer claim it took
    /// of it meanwhile, if its claim ran out under the send: the send under
    /// way records its outcome under that claim rather than a second send
    /// starting.
    sending: Mutex<HashMap<Uuid, Option<OutboxMessage>>>,
}

impl Relay {
    pub fn new(
        context: impl Into<RelayContext>,
        mailer: Arc<dyn Mailer>,
        policy: DeliveryPolicy,
    ) -> Result<Relay, String> {
        let context = context.into();
        let from: Mailbox = context
            .mail_from
            .parse()
            .map_err(|e| format!("MAIL_FROM {:?} is not an address: {e}", context.mail_from))?;
        let domain = from.email.domain().to_string();
        let reply_to: Mailbox = match &context.mail_reply_to {
            Some(text) => text
                .parse()
                .map_err(|e| format!("MAIL_REPLY_TO {text:?} is not an address: {e}"))?,
            None => format!("Restore Desk support <support@{domain}>")
                .parse()
                .map_err(|e| format!("no support address for {domain}: {e}"))?,
        };
        Ok(Relay {
            context,
            mailer,
            from,
            domain,
            policy,
            reply_to,
            unsettled: Mutex::new(HashMap::new()),
            sending: Mutex::new(HashMap::new()),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.context.clock.now()
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
            .reply_to(self.reply_to.clone())
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
        // This attempt is not counted in `message.attempts` yet.
        let attempts = message.attempts + 1;
        let jitter = rand::rng().random_range(0.5..1.0);
        let wait = self.policy.backoff(attempts);
        let wait = Duration::milliseconds((wait.num_milliseconds() as f64 * jitter) as i64);
        let next = now + wait;
        if next - message.created_at > self.policy.horizon {
            Delivery::Failed {
                at: now,
                error: format!(
                    "gave up after {attempts} attempts over {} hours: {error}",
                    self.policy.horizon.num_hours()
                ),
            }
        } else {
            Delivery::RetryAt { at: next, error }
        }
    }

    #[tracing::instrument(skip_all, fields(outbox = %message.id, kind = %message.kind, attempt = message.attempts + 1))]
    async fn deliver(&self, message: &OutboxMessage) -> Delivery {
        // A post to an endpoint is delivered like an email: same retries.
        let post = message.endpoint_id.is_some();
        let outcome = if post {
            self.context.poster.post(message, self.now()).await
        } else {
            match self.email(message) {
                Ok(email) => self.mailer.send(message.id, &email).await,
                Err(error) => Err(SendError::Permanent(error)),
            }
        };
        let now = self.now();
        let label = match &outcome {
            Ok(()) if post => "delivered",
            Ok(()) => "sent",
            Err(SendError::Permanent(_)) => "refused",
            Err(SendError::Transient(_)) => "deferred",
        };
        if post {
            metrics::counter!("restore_desk_post_attempts_total", "outcome" => label).increment(1);
        } else {
            metrics::counter!("restore_desk_email_attempts_total", "outcome" => label).increment(1);
        }
        let what = if post { "post" } else { "email" };
        match outcome {
            Ok(()) => {
                tracing::info!(to = %message.recipient, "{what} {label}");
                Delivery::Sent { at: now }
            }
            Err(SendError::Permanent(error)) => {
                tracing::error!(to = %message.recipient, %error, "{what} refused for good");
                Delivery::Failed { at: now, error }
            }
            Err(SendError::Transient(error)) => {
                tracing::warn!(to = %message.recipient, %error, "{what} not delivered yet");
                self.after_transient(message, error, now)
            }
        }
    }

    /// A post given up for good — at the horizon, after failing that long,
    /// or refused outright — disables its endpoint and tells its owner by
    /// email. An endpoint disabled or removed already is left as it is.
    async fn endpoint_gave_up(&self, message: &OutboxMessage, error: &str) {
        let Some(endpoint_id) = message.endpoint_id else {
            return;
        };
        let disabled = crate::desk::endpoints::disable_failing(
            &self.context.store,
            endpoint_id,
            error,
            self.now(),
            &self.context.public_url,
        )
        .await;
        match disabled {
            Ok(true) => {
                tracing::warn!(endpoint = %endpoint_id, "endpoint failing for the whole horizon: disabled, owner told");
                self.context.mail_ready.notify_one();
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(endpoint = %endpoint_id, %error, "cannot disable a failing endpoint");
            }
        }
    }

    /// Records the outcome of the attempt made under `message`'s claim. While
    /// the database is unavailable it tries again, backing off to a few
    /// seconds, for as long as this process runs: the message was handed
    /// over, and must not be sent again because its record failed.
    async fn settle(
        &self,
        message: &OutboxMessage,
        outcome: &Delivery,
    ) -> Result<bool, StoreError> {
        let mut wait = StdDuration::from_millis(50);
        let mut logged = false;
        loop {
            match self
                .context
                .store
                .settle_outbox(message.id, message.claim, outcome)
                .await
            {
                Ok(settled) => {
                    if settled {
                        self.forget_unsettled(message.id);
                    } else {
                        tracing::warn!(outbox = %message.id, "claim expired before the attempt was settled");
                    }
                    return Ok(settled);
                }
                Err(error) if error.is_outage() => {
                    if !logged {
                        tracing::warn!(outbox = %message.id, %error, "cannot record the email's delivery yet; retrying");
                        logged = true;
                        self.remember_unsettled(message.id, outcome);
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(StdDuration::from_secs(2));
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn remember_unsettled(&self, id: Uuid, outcome: &Delivery) {
        if let Ok(mut unsettled) = self.unsettled.lock() {
            unsettled.insert(id, outcome.clone());
        }
    }

    fn forget_unsettled(&self, id: Uuid) {
        if let Ok(mut unsettled) = self.unsettled.lock() {
            unsettled.remove(&id);
        }
    }

    /// Marks `message` as being sent here; false when it already is (under
    /// an older claim), in which case this newer claim is kept for that send
    /// to record its outcome under.
    fn begin_sending(&self, message: &OutboxMessage) -> bool {
        let Ok(mut sending) = self.sending.lock() else {
            return true;
        };
        match sending.get_mut(&message.id) {
            Some(newer) => {
                *newer = Some(message.clone());
                false
            }
            None => {
                sending.insert(message.id, None);
                true
            }
        }
    }

    /// The send of `id` is over: the newer claim taken meanwhile, if any.
    fn end_sending(&self, id: Uuid) -> Option<OutboxMessage> {
        self.sending.lock().ok()?.remove(&id).flatten()
    }

    /// The outcome of a send this process made and has not recorded yet.
    fn unsettled_outcome(&self, id: Uuid) -> Option<Delivery> {
        self.unsettled.lock().ok()?.get(&id).cloned()
    }

    /// Whether a new attempt may start under this claim: only while the
    /// claim has time enough left for the whole attempt.
    fn may_attempt(&self, message: &OutboxMessage) -> bool {
        message
            .claimed_until
            .is_some_and(|until| self.now() + SEND_BUDGET <= until)
    }

    /// Sends one claimed message, or records the outcome of an earlier send
    /// of it that could not be recorded then, and settles the attempt.
    /// False when the claim was too short to start an attempt.
    pub async fn deliver_one(&self, message: &OutboxMessage) -> Result<bool, StoreError> {
        if let Some(outcome) = self.unsettled_outcome(message.id) {
            self.settle(message, &outcome).await?;
            return Ok(true);
        }
        if !self.may_attempt(message) {
            return Ok(false);
        }
        // Taken up again while this relay still sends it: one send only.
        if !self.begin_sending(message) {
            return Ok(false);
        }
        let outcome = self.deliver(message).await;
        let mut settled = self.settle(message, &outcome).await;
        // The claim ran out under the send and this relay took it again:
        // the outcome is recorded under the newer claim.
        if let (Ok(false), Some(newer)) = (&settled, self.end_sending(message.id)) {
            settled = self.settle(&newer, &outcome).await;
        }
        let settled = settled?;
        if !settled {
            // Whoever claims it next here records this outcome, not a resend.
            self.remember_unsettled(message.id, &outcome);
        }
        if let Delivery::Failed { error, .. } = &outcome
            && settled
            && message.endpoint_id.is_some()
        {
            self.endpoint_gave_up(message, error).await;
        }
        Ok(true)
    }

    /// Sends claimed messages one by one and settles each attempt. A
    /// message whose claim is too close to running out is left alone: its
    /// claim lapses and a later round takes it again.
    pub async fn deliver_claimed(&self, messages: &[OutboxMessage]) -> Result<usize, StoreError> {
        let mut attempted = 0;
        for message in messages {
            if self.deliver_one(message).await? {
                attempted += 1;
            }
        }
        Ok(attempted)
    }

    async fn claim_due(&self) -> Result<Vec<OutboxMessage>, StoreError> {
        self.context
            .store
            .claim_outbox(self.now(), self.policy.claim_for, self.policy.batch)
            .await
    }

    /// Claims one batch of due messages and sends them. Returns how many
    /// were claimed.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let batch = self.claim_due().await?;
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

/// The relay's loop: send what commits hand over at once, and poll the
/// outbox for the rest (retries, other processes' mail, lapsed claims).
/// At most `IN_FLIGHT` messages are sent at a time, each bounded by the
/// transport's timeout. On shutdown, attempts under way get the shutdown
/// grace to finish and settle; what is left keeps its claim, which lapses
/// for another relay.
pub async fn run(
    relay: Relay,
    mut handed: Option<tokio::sync::mpsc::UnboundedReceiver<Vec<OutboxMessage>>>,
    shutdown: CancellationToken,
) {
    tracing::info!(to = %relay.mailer.describe(), "email relay started");
    let relay = Arc::new(relay);
    let mail_ready = relay.context.mail_ready.clone();
    let grace = relay.context.shutdown_grace;
    let mut sending = tokio::task::JoinSet::new();
    let mut waiting: VecDeque<OutboxMessage> = VecDeque::new();
    let poll = StdDuration::from_secs(1);
    let mut next_poll = tokio::time::Instant::now();
    while !shutdown.is_cancelled() {
        while sending.len() < IN_FLIGHT {
            let Some(message) = waiting.pop_front() else {
                break;
            };
            let relay = relay.clone();
            sending.spawn(async move {
                if let Err(error) = relay.deliver_one(&message).await {
                    tracing::error!(%error, outbox = %message.id, "email relay cannot settle an attempt");
                }
            });
        }
        if waiting.is_empty() && tokio::time::Instant::now() >= next_poll {
            match relay.claim_due().await {
                Ok(batch) if !batch.is_empty() => {
                    waiting.extend(batch);
                    continue;
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "email relay cannot read the outbox"),
            }
            next_poll = tokio::time::Instant::now() + poll;
        }
        let room = sending.len() < IN_FLIGHT;
        tokio::select! {
            batch = async { handed.as_mut()?.recv().await }, if handed.is_some() && room => {
                match batch {
                    Some(batch) => waiting.extend(batch),
                    None => handed = None,
                }
            }
            Some(_) = sending.join_next(), if !sending.is_empty() => {}
            _ = mail_ready.notified() => next_poll = tokio::time::Instant::now(),
            _ = tokio::time::sleep_until(next_poll), if waiting.is_empty() => {}
            _ = shutdown.cancelled() => {}
        }
    }
    let finishing = async { while sending.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, finishing).await.is_err() {
        tracing::warn!(
            left = sending.len(),
            "emails still being sent at the end of the shutdown grace: stopped; their claims lapse for another relay"
        );
        sending.abort_all();
        while sending.join_next().await.is_some() {}
    }
    tracing::info!("email relay stopped");
}
