//! Emails from templates: a plain-text and an HTML part for each notice of
//! SPEC §7, in the reader's time zone with UTC alongside.

use askama::Template;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::actor::Role;
use crate::domain::cluster::Connection;
use crate::domain::ticket::NoticeKind;
use crate::store::Ticket;

/// A rendered email, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Everything a notice may mention. Only what the reader may see goes in:
/// internal notes never do.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    pub kind: NoticeKind,
    pub ticket: &'a Ticket,
    pub source_cluster: &'a str,
    pub recipient_name: &'a str,
    pub recipient_role: Role,
    /// The zone the reader reads times in.
    pub time_zone: Tz,
    /// The ticket page, for the reader's role.
    pub link: String,
    /// The question asked, the reply, the rejection reason or the failure.
    pub text: Option<&'a str>,
    /// Who acted, when it matters to the reader.
    pub actor_name: Option<&'a str>,
    /// The new cluster's connection details, once restored.
    pub connection: Option<&'a Connection>,
    /// The exact point in time the new cluster holds.
    pub restored_point: Option<DateTime<Utc>>,
    /// The requester's one-click page to say whether the data is right.
    pub verdict_link: Option<String>,
    pub now: DateTime<Utc>,
    /// A starting restore's expected end and its basis.
    pub eta: Option<(DateTime<Utc>, String)>,
}

impl Notice<'_> {
    /// "It should be done by … (from 4 restores of this cluster, median
    /// 41 s)", or why no time can be given yet.
    pub fn eta_text(&self) -> String {
        match &self.eta {
            Some((done_by, basis)) => format!(
                "It should be done by {} ({basis}).",
                in_zone_and_utc(*done_by, self.time_zone)
            ),
            None => "This is the first restore of this cluster we can learn from, so there \
                     is no estimate of when it will be done yet."
                .into(),
        }
    }
}

/// `24 Nov 2026 14:30:00 CET (13:30:00 UTC)`.
pub fn in_zone_and_utc(t: DateTime<Utc>, zone: Tz) -> String {
    let utc = t.format("%d %b %Y %H:%M:%S UTC").to_string();
    if zone == Tz::UTC {
        return utc;
    }
    let local = t.with_timezone(&zone);
    format!(
        "{} ({} UTC)",
        local.format("%d %b %Y %H:%M:%S %Z"),
        t.format("%H:%M:%S")
    )
}

/// `24 Nov 2026 14:30:00.123456 CET (13:30:00.123456 UTC)`: a commit.
pub fn micros_in_zone_and_utc(t: DateTime<Utc>, zone: Tz) -> String {
    let utc = t.format("%d %b %Y %H:%M:%S%.6f UTC").to_string();
    if zone == Tz::UTC {
        return utc;
    }
    format!(
        "{} ({} UTC)",
        t.with_timezone(&zone).format("%d %b %Y %H:%M:%S%.6f %Z"),
        t.format("%H:%M:%S%.6f")
    )
}

/// `2 days 3 hours`, `45 minutes`, or `overdue by …`.
pub fn duration_words(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let delta = to - from;
    let (prefix, delta) = if delta < chrono::Duration::zero() {
        ("overdue by ", -delta)
    } else {
        ("", delta)
    };
    let minutes = delta.num_minutes();
    let text = match (minutes / 1440, minutes % 1440 / 60, minutes % 60) {
        (0, 0, m) => format!("{m} minute{}", if m == 1 { "" } else { "s" }),
        (0, h, _) => format!("{h} hour{}", if h == 1 { "" } else { "s" }),
        (d, h, _) => format!(
            "{d} day{} {h} hour{}",
            if d == 1 { "" } else { "s" },
            if h == 1 { "" } else { "s" }
        ),
    };
    format!("{prefix}{text}")
}

impl Notice<'_> {
    pub fn reference(&self) -> String {
        self.ticket.reference()
    }

    /// The target as the customer chose it: a moment, or just before or
    /// after a transaction with its commit time to the microsecond.
    pub fn target(&self) -> String {
        match self.ticket.transaction {
            Some(transaction) => {
                let commit = transaction.committed_at(self.ticket.target_time);
                format!(
                    "{}, committed {}",
                    transaction.describe(),
                    micros_in_zone_and_utc(commit, self.time_zone)
                )
            }
            None => in_zone_and_utc(self.ticket.target_time, self.time_zone),
        }
    }

    /// Until when the customer may decide about a paused copy.
    pub fn decision_due(&self) -> Option<String> {
        self.ticket
            .decision_due
            .map(|due| in_zone_and_utc(due, self.time_zone))
    }

    pub fn deadline(&self) -> String {
        in_zone_and_utc(self.ticket.deadline, self.time_zone)
    }

    pub fn time_left(&self) -> String {
        duration_words(self.now, self.ticket.deadline)
    }

    pub fn restored_point_text(&self) -> String {
        match self.restored_point {
            Some(point) => in_zone_and_utc(point, self.time_zone),
            None => in_zone_and_utc(self.ticket.target_time, self.time_zone),
        }
    }

    pub fn for_staff(&self) -> bool {
        self.recipient_role.works_tickets()
    }

    pub fn subject(&self) -> String {
        let r = self.reference();
        let t = self.ticket;
        match self.kind {
            NoticeKind::RequestReceived => format!("[{r}] We received your restore request"),
            NoticeKind::NewRequest => format!(
                "[{r}] New restore request, severity {}: {} to {}",
                t.severity,
                self.source_cluster,
                t.target_time.format("%d %b %H:%M UTC")
            ),
            NoticeKind::InformationRequested => format!("[{r}] We need more information"),
            NoticeKind::CustomerReplied => format!("[{r}] The customer replied"),
            NoticeKind::StaffReplied => format!("[{r}] New reply from support"),
            NoticeKind::Approved => format!("[{r}] Your restore request was approved"),
            NoticeKind::Rejected => format!("[{r}] Your restore request was declined"),
            NoticeKind::RestoreStarted => {
                format!("[{r}] Restore of {} started", self.source_cluster)
            }
            NoticeKind::RestoreCompleted => {
                format!("[{r}] Restore complete: {} is ready", t.new_cluster_name)
            }
            NoticeKind::RestoreFailed => format!("[{r}] Restore failed"),
            NoticeKind::Cancelled => format!("[{r}] Restore request cancelled"),
            NoticeKind::DeadlineNear => format!(
                "[{r}] Deadline in {}: restore of {} not done",
                self.time_left(),
                self.source_cluster
            ),
            NoticeKind::Reopened => {
                format!("[{r}] Reopened: the customer says the data is not right")
            }
            NoticeKind::TargetChanged => {
                format!("[{r}] The target is now {}", self.target())
            }
            NoticeKind::ReadyToInspect => {
                format!("[{r}] Your restored copy is ready to inspect")
            }
            NoticeKind::InspectionDecided => {
                format!("[{r}] The restored copy: {}", self.decision_words())
            }
        }
    }
}

impl Notice<'_> {
    /// What was decided about a paused copy, from the message it posted.
    pub fn decision_words(&self) -> &'static str {
        match self.text {
            Some(t) if t.contains("moved forward") => "moving forward",
            Some(t) if t.contains("went back") => "going back",
            Some(t) if t.contains("No decision") => "handed over without a decision",
            _ => "accepted",
        }
    }
}

macro_rules! email_template {
    ($text:ident, $html:ident, $text_path:literal, $html_path:literal) => {
        #[derive(Template)]
        #[template(path = $text_path)]
        struct $text<'a, 'n> {
            n: &'a Notice<'n>,
        }

        #[derive(Template)]
        #[template(path = $html_path)]
        struct $html<'a, 'n> {
            n: &'a Notice<'n>,
        }
    };
}

email_template!(
    ReceivedText,
    ReceivedHtml,
    "email/request_received.txt",
    "email/request_received.html"
);
email_template!(
    NewRequestText,
    NewRequestHtml,
    "email/new_request.txt",
    "email/new_request.html"
);
email_template!(
    InfoText,
    InfoHtml,
    "email/information_requested.txt",
    "email/information_requested.html"
);
email_template!(
    CustomerRepliedText,
    CustomerRepliedHtml,
    "email/customer_replied.txt",
    "email/customer_replied.html"
);
email_template!(
    StaffRepliedText,
    StaffRepliedHtml,
    "email/staff_replied.txt",
    "email/staff_replied.html"
);
email_template!(
    ApprovedText,
    ApprovedHtml,
    "email/approved.txt",
    "email/approved.html"
);
email_template!(
    RejectedText,
    RejectedHtml,
    "email/rejected.txt",
    "email/rejected.html"
);
email_template!(
    StartedText,
    StartedHtml,
    "email/restore_started.txt",
    "email/restore_started.html"
);
email_template!(
    CompletedText,
    CompletedHtml,
    "email/restore_completed.txt",
    "email/restore_completed.html"
);
email_template!(
    FailedText,
    FailedHtml,
    "email/restore_failed.txt",
    "email/restore_failed.html"
);
email_template!(
    CancelledText,
    CancelledHtml,
    "email/cancelled.txt",
    "email/cancelled.html"
);
email_template!(
    ReopenedText,
    ReopenedHtml,
    "email/reopened.txt",
    "email/reopened.html"
);
email_template!(
    TargetChangedText,
    TargetChangedHtml,
    "email/target_changed.txt",
    "email/target_changed.html"
);
email_template!(
    ReadyText,
    ReadyHtml,
    "email/ready_to_inspect.txt",
    "email/ready_to_inspect.html"
);
email_template!(
    DecidedText,
    DecidedHtml,
    "email/inspection_decided.txt",
    "email/inspection_decided.html"
);
email_template!(
    DeadlineText,
    DeadlineHtml,
    "email/deadline_near.txt",
    "email/deadline_near.html"
);

/// Renders one notice as an email.
pub fn compose(n: &Notice<'_>) -> Result<Email, askama::Error> {
    let (text, html) = match n.kind {
        NoticeKind::RequestReceived => (ReceivedText { n }.render()?, ReceivedHtml { n }.render()?),
        NoticeKind::NewRequest => (
            NewRequestText { n }.render()?,
            NewRequestHtml { n }.render()?,
        ),
        NoticeKind::InformationRequested => (InfoText { n }.render()?, InfoHtml { n }.render()?),
        NoticeKind::CustomerReplied => (
            CustomerRepliedText { n }.render()?,
            CustomerRepliedHtml { n }.render()?,
        ),
        NoticeKind::StaffReplied => (
            StaffRepliedText { n }.render()?,
            StaffRepliedHtml { n }.render()?,
        ),
        NoticeKind::Approved => (ApprovedText { n }.render()?, ApprovedHtml { n }.render()?),
        NoticeKind::Rejected => (RejectedText { n }.render()?, RejectedHtml { n }.render()?),
        NoticeKind::RestoreStarted => (StartedText { n }.render()?, StartedHtml { n }.render()?),
        NoticeKind::RestoreCompleted => {
            (CompletedText { n }.render()?, CompletedHtml { n }.render()?)
        }
        NoticeKind::RestoreFailed => (FailedText { n }.render()?, FailedHtml { n }.render()?),
        NoticeKind::Cancelled => (CancelledText { n }.render()?, CancelledHtml { n }.render()?),
        NoticeKind::DeadlineNear => (DeadlineText { n }.render()?, DeadlineHtml { n }.render()?),
        NoticeKind::Reopened => (ReopenedText { n }.render()?, ReopenedHtml { n }.render()?),
        NoticeKind::TargetChanged => (
            TargetChangedText { n }.render()?,
            TargetChangedHtml { n }.render()?,
        ),
        NoticeKind::ReadyToInspect => (ReadyText { n }.render()?, ReadyHtml { n }.render()?),
        NoticeKind::InspectionDecided => (DecidedText { n }.render()?, DecidedHtml { n }.render()?),
    };
    Ok(Email {
        subject: n.subject(),
        text,
        html,
    })
}
