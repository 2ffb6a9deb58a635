//! What pages show, prepared in Rust so templates only lay it out: times in
//! the reader's zone with UTC beside them, countdowns, labels.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::domain::actor::Role;
use crate::notify::compose::duration_words;
use crate::store::User;

/// A moment as a page shows it: `<time datetime=iso title=utc>local</time>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub iso: String,
    pub utc: String,
    pub local: String,
}

/// Time left until a deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Countdown {
    pub iso: String,
    pub text: String,
    pub overdue: bool,
    /// Less than `soon_seconds` left.
    pub urgent: bool,
    /// How close counts as urgent, for the page's live update.
    pub soon_seconds: i64,
    /// Seconds left when the page was made: the page counts down from
    /// this, not from the device's clock, which may be wrong.
    pub left_seconds: i64,
}

/// Formats times for one reader.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    pub zone: Tz,
    pub now: DateTime<Utc>,
}

pub fn zone_of(name: &str) -> Tz {
    name.parse::<Tz>().unwrap_or(Tz::UTC)
}

impl Times {
    pub fn new(zone: Tz, now: DateTime<Utc>) -> Times {
        Times { zone, now }
    }

    pub fn for_user(user: &User, now: DateTime<Utc>) -> Times {
        Times::new(zone_of(&user.time_zone), now)
    }

    pub fn stamp(&self, t: DateTime<Utc>) -> Stamp {
        stamp_in(t, self.zone)
    }

    /// To the second: for the exact point a restore reached.
    pub fn precise(&self, t: DateTime<Utc>) -> Stamp {
        Stamp {
            local: precise_in(t, self.zone),
            ..stamp_in(t, self.zone)
        }
    }

    pub fn maybe(&self, t: Option<DateTime<Utc>>) -> Option<Stamp> {
        t.map(|t| self.stamp(t))
    }

    /// Time left, urgent under a day: the deadline's clock.
    pub fn until(&self, deadline: DateTime<Utc>) -> Countdown {
        self.until_within(deadline, Duration::hours(24))
    }

    /// Time left, urgent under `soon`.
    pub fn until_within(&self, deadline: DateTime<Utc>, soon: Duration) -> Countdown {
        let left = deadline - self.now;
        Countdown {
            iso: iso(deadline),
            text: if left < Duration::zero() {
                duration_words(self.now, deadline)
            } else {
                format!("{} left", duration_words(self.now, deadline))
            },
            overdue: left < Duration::zero(),
            urgent: left < soon,
            soon_seconds: soon.num_seconds(),
            left_seconds: left.num_seconds(),
        }
    }

    pub fn zone_name(&self) -> &'static str {
        self.zone.name()
    }
}

pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A strftime pattern parsed once: a timeline draws hundreds of moments,
/// and parsing the pattern anew for each was most of a page's time.
struct Pattern(std::sync::LazyLock<Vec<chrono::format::Item<'static>>>);

macro_rules! pattern {
    ($name:ident, $text:literal) => {
        static $name: Pattern = Pattern(std::sync::LazyLock::new(|| {
            chrono::format::StrftimeItems::new($text)
                .parse_to_owned()
                .expect("a valid pattern")
        }));
    };
}

pattern!(UTC_STAMP, "%Y-%m-%d %H:%M:%S UTC");
pattern!(LOCAL_STAMP, "%-d %b %Y, %H:%M %Z");
pattern!(PRECISE, "%-d %b %Y, %H:%M:%S %Z");
pattern!(MICROS, "%-d %b %Y, %H:%M:%S%.6f %Z");
pattern!(UTC_MICROS, "%Y-%m-%d %H:%M:%S%.6f UTC");

impl Pattern {
    fn format<Z: chrono::TimeZone>(&self, t: &DateTime<Z>) -> String
    where
        Z::Offset: std::fmt::Display,
    {
        t.format_with_items(self.0.iter()).to_string()
    }
}

/// A moment in `zone`, UTC in the title.
pub fn stamp_in(t: DateTime<Utc>, zone: Tz) -> Stamp {
    Stamp {
        iso: iso(t),
        utc: UTC_STAMP.format(&t),
        local: local_in(t, zone),
    }
}

/// `2 Dec 2026, 13:00 CET`: a moment in `zone`, to the minute.
pub fn local_in(t: DateTime<Utc>, zone: Tz) -> String {
    LOCAL_STAMP.format(&t.with_timezone(&zone))
}

/// A commit's moment: to the microsecond, in `zone`, UTC in the title.
pub fn micros_in(t: DateTime<Utc>, zone: Tz) -> Stamp {
    Stamp {
        iso: t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        utc: UTC_MICROS.format(&t),
        local: MICROS.format(&t.with_timezone(&zone)),
    }
}

/// `13:00 CET` style, seconds when they matter.
pub fn precise_in(t: DateTime<Utc>, zone: Tz) -> String {
    PRECISE.format(&t.with_timezone(&zone))
}

/// `3 days ago`, `5 hours ago`, `1 minute ago`, `just now`: how long ago
/// `then` was, in its largest unit.
pub fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - then).num_minutes();
    let (n, unit) = match minutes {
        m if m < 1 => return "just now".into(),
        m if m < 60 => (m, "minute"),
        m if m < 1440 => (m / 60, "hour"),
        m => (m / 1440, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// `az1 is back`, `az1 and az2 are back`: when offline zones return.
pub fn zones_back(zones: &[&str]) -> String {
    let verb = if zones.len() == 1 { "is" } else { "are" };
    format!("{} {verb} back", zones.join(" and "))
}

pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Customer => "Customer",
        Role::Staff => "Support",
        Role::Admin => "Admin",
        Role::System => "Restore Desk",
    }
}

/// Shortens long text for tables.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn stamps_show_the_zone_and_keep_utc() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let s = stamp_in(t, Tz::Europe__Amsterdam);
        assert_eq!(s.local, "25 Nov 2026, 13:00 CET");
        assert_eq!(s.utc, "2026-11-25 12:00:00 UTC");
        assert_eq!(s.iso, "2026-11-25T12:00:00Z");
        let times = Times::new(Tz::UTC, t);
        assert!(times.until(t + Duration::hours(3)).urgent);
        assert_eq!(times.until(t + Duration::hours(3)).text, "3 hours left");
        assert!(times.until(t - Duration::hours(1)).overdue);
    }

    #[test]
    fn how_long_ago_reads_in_its_largest_unit() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        assert_eq!(ago(t, t + Duration::seconds(30)), "just now");
        assert_eq!(ago(t, t + Duration::minutes(1)), "1 minute ago");
        assert_eq!(ago(t, t + Duration::minutes(59)), "59 minutes ago");
        assert_eq!(ago(t, t + Duration::hours(5)), "5 hours ago");
        assert_eq!(
            ago(t, t + Duration::days(3) + Duration::hours(2)),
            "3 days ago"
        );
        assert_eq!(ago(t, t - Duration::hours(1)), "just now");
    }
}
