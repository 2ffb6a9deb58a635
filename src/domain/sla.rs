//! Deadlines and response targets that order the staff queue (SPEC §4).

use chrono::{DateTime, Datelike, Duration, Utc, Weekday};

use super::catalog::{ClusterLife, RetentionPolicy};

string_enum! {
    /// How urgent the customer says the request is.
    #[derive(PartialOrd, Ord)]
    pub enum Severity ("severity") {
        /// Critical: production is down or losing data.
        A = "A",
        B = "B",
        C = "C",
    }
}

impl Severity {
    /// Reads what a person typed: the letter, in either case.
    pub fn parse_typed(text: &str) -> Result<Severity, String> {
        text.trim().to_uppercase().parse()
    }

    pub fn describe(self) -> &'static str {
        match self {
            Severity::A => "A — critical impact",
            Severity::B => "B — moderate impact",
            Severity::C => "C — minimal impact",
        }
    }
}

/// The moment the target falls out of the restorable window: after it the
/// request can no longer be honoured. For a deleted cluster, the end of its
/// grace period comes first if it is sooner.
pub fn deadline(
    target: DateTime<Utc>,
    life: &ClusterLife,
    policy: &RetentionPolicy,
) -> DateTime<Utc> {
    let by_retention = target + policy.retention;
    match life.deleted_at {
        Some(deleted) => by_retention.min(deleted + policy.deleted_grace),
        None => by_retention,
    }
}

/// When staff should first answer a new ticket: A within an hour, B within
/// four, C by the same time on the next business day (Monday to Friday, UTC).
pub fn first_response_due(created_at: DateTime<Utc>, severity: Severity) -> DateTime<Utc> {
    match severity {
        Severity::A => created_at + Duration::hours(1),
        Severity::B => created_at + Duration::hours(4),
        Severity::C => {
            let mut due = created_at + Duration::days(1);
            while matches!(due.weekday(), Weekday::Sat | Weekday::Sun) {
                due += Duration::days(1);
            }
            due
        }
    }
}

/// How long before its first response is due a ticket shows as "due soon".
pub fn response_soon() -> Duration {
    Duration::hours(1)
}

/// Where a ticket's first-response clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseClock {
    /// Answered in time.
    Met,
    /// Answered, but late.
    Missed,
    /// Unanswered and past due.
    Breached,
    /// Unanswered, due within [`response_soon`].
    DueSoon,
    /// Unanswered, with time left.
    Running,
    /// Closed without an answer: the clock stopped.
    Stopped,
}

impl ResponseClock {
    pub fn of(
        due: DateTime<Utc>,
        answered: Option<DateTime<Utc>>,
        open: bool,
        now: DateTime<Utc>,
    ) -> ResponseClock {
        match answered {
            Some(at) if at > due => ResponseClock::Missed,
            Some(_) => ResponseClock::Met,
            None if !open => ResponseClock::Stopped,
            None if now >= due => ResponseClock::Breached,
            None if now + response_soon() > due => ResponseClock::DueSoon,
            None => ResponseClock::Running,
        }
    }

    /// Whether the clock is still running.
    pub fn running(self) -> bool {
        matches!(
            self,
            ResponseClock::Breached | ResponseClock::DueSoon | ResponseClock::Running
        )
    }
}

/// What the queue sorts by: the clock that runs out first on a ticket —
/// its first response while that is unanswered and sooner, else the
/// deadline. The store's SQL mirrors this (`QUEUE_DUE`).
pub fn queue_due(
    first_response_due: DateTime<Utc>,
    first_response_at: Option<DateTime<Utc>>,
    open: bool,
    deadline: DateTime<Utc>,
) -> DateTime<Utc> {
    if open && first_response_at.is_none() && first_response_due < deadline {
        first_response_due
    } else {
        deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn deadline_is_target_plus_retention_or_end_of_grace() {
        let target = Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap();
        let policy = RetentionPolicy::default();
        let live = ClusterLife {
            created_at: target - Duration::days(60),
            deleted_at: None,
        };
        assert_eq!(
            deadline(target, &live, &policy),
            target + Duration::days(35)
        );
        let deleted = ClusterLife {
            deleted_at: Some(target + Duration::days(1)),
            ..live
        };
        assert_eq!(
            deadline(target, &deleted, &policy),
            target + Duration::days(8)
        );
    }

    #[test]
    fn business_day_skips_weekends() {
        let friday = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        assert_eq!(friday.weekday(), Weekday::Fri);
        let due = first_response_due(friday, Severity::C);
        assert_eq!(due, Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap());
        let saturday = friday + Duration::days(1);
        assert_eq!(
            first_response_due(saturday, Severity::C).weekday(),
            Weekday::Mon
        );
        assert_eq!(
            first_response_due(friday, Severity::A),
            friday + Duration::hours(1)
        );
        assert_eq!(
            first_response_due(friday, Severity::B),
            friday + Duration::hours(4)
        );
    }

    #[test]
    fn the_response_clock_reads_breached_soon_running_met_missed_and_stopped() {
        let due = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        let of = |answered, open, now| ResponseClock::of(due, answered, open, now);
        assert_eq!(of(None, true, due), ResponseClock::Breached);
        assert_eq!(
            of(None, true, due - Duration::minutes(59)),
            ResponseClock::DueSoon
        );
        assert_eq!(
            of(None, true, due - Duration::hours(2)),
            ResponseClock::Running
        );
        assert_eq!(
            of(None, false, due + Duration::hours(2)),
            ResponseClock::Stopped
        );
        assert_eq!(
            of(Some(due - Duration::minutes(1)), true, due),
            ResponseClock::Met
        );
        assert_eq!(
            of(Some(due + Duration::minutes(1)), true, due),
            ResponseClock::Missed
        );
    }

    #[test]
    fn the_queue_sorts_by_the_first_clock_to_run_out() {
        let due = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        let deadline = due + Duration::days(30);
        assert_eq!(queue_due(due, None, true, deadline), due);
        assert_eq!(queue_due(due, Some(due), true, deadline), deadline);
        assert_eq!(queue_due(due, None, false, deadline), deadline);
        // A target about to leave the window outranks the response clock.
        let soon = due - Duration::hours(1);
        assert_eq!(queue_due(due, None, true, soon), soon);
    }
}
