//! Validation of a restore request (SPEC §4): the target moment, as the
//! customer typed it, against the cluster's real catalog; and the new
//! cluster's name.
//!
//! It runs when the customer files, again at approval and again right before
//! the job restores: the window slides every second.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::catalog::{
    Catalog, ClusterLife, PlanError, RestorePlan, RetentionPolicy, Window, ZoneSet, plan_restore,
    restorable_window,
};
use super::{micros, sla};

string_enum! {
    /// The error codes of SPEC §4, stable for API clients.
    pub enum ValidationCode ("validation code") {
        InvalidTimestamp = "invalid_timestamp",
        NonexistentLocalTime = "nonexistent_local_time",
        AmbiguousLocalTime = "ambiguous_local_time",
        TargetInFuture = "target_in_future",
        TargetOutsideRetention = "target_outside_retention",
        TargetBeforeEarliestRestorePoint = "target_before_earliest_restore_point",
        NoBackupInOnlineZone = "no_backup_in_online_zone",
        InvalidClusterName = "invalid_cluster_name",
        ClusterNameTaken = "cluster_name_taken",
        ClusterNotFound = "cluster_not_found",
        /// The archived log holds no committed transaction of that id.
        UnknownTransaction = "unknown_transaction",
        /// Moving a paused copy forward to a moment not after its own.
        TargetNotLater = "target_not_later",
        /// Going back to a moment not before the paused copy's.
        TargetNotEarlier = "target_not_earlier",
    }
}

/// A refusal the customer can act on: which field, why, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub code: ValidationCode,
    pub message: String,
    pub field: String,
}

impl ValidationError {
    pub fn new(code: ValidationCode, field: &str, message: impl Into<String>) -> Self {
        ValidationError {
            code,
            message: message.into(),
            field: field.to_string(),
        }
    }
}

pub const TARGET_FIELD: &str = "target_time";
pub const NAME_FIELD: &str = "new_cluster_name";
pub const CLUSTER_FIELD: &str = "cluster_id";

/// The target moment as the customer gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetInput {
    /// RFC 3339 with an offset, e.g. `2026-11-24T14:30:00+01:00`. The zone,
    /// if given, is only how the customer likes to read times.
    Instant {
        target_time: String,
        #[serde(default)]
        time_zone: Option<String>,
    },
    /// A wall-clock time in an IANA zone, e.g. `2026-11-24T14:30` in
    /// `Europe/Amsterdam`. `utc_offset` picks one of the two readings of a
    /// time that happens twice when clocks go back.
    Local {
        local_time: String,
        time_zone: String,
        #[serde(default)]
        utc_offset: Option<String>,
    },
}

/// A parsed target: the UTC instant and the zone it was entered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetTime {
    pub utc: DateTime<Utc>,
    pub time_zone: Tz,
}

const LOCAL_FORMATS: [&str; 4] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
];

pub fn parse_time_zone(name: &str) -> Result<Tz, ValidationError> {
    name.trim().parse::<Tz>().map_err(|_| {
        ValidationError::new(
            ValidationCode::InvalidTimestamp,
            "time_zone",
            format!("{name:?} is not a known time zone; use an IANA name such as Europe/Amsterdam"),
        )
    })
}

/// `+01:00`, `-05:30`, `Z` or `+00:00`.
fn parse_offset(text: &str) -> Option<FixedOffset> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("z") {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "0"));
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if !(0..=23).contains(&hours) || !(0..=59).contains(&minutes) {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

pub fn format_offset(offset: FixedOffset) -> String {
    let secs = offset.local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.abs();
    format!("{sign}{:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

fn invalid_timestamp(field: &str, message: impl Into<String>) -> ValidationError {
    ValidationError::new(ValidationCode::InvalidTimestamp, field, message)
}

/// Parses what the customer typed into one UTC instant, refusing wall-clock
/// times that do not exist or exist twice in their zone.
pub fn parse_target(input: &TargetInput) -> Result<TargetTime, ValidationError> {
    match input {
        TargetInput::Instant {
            target_time,
            time_zone,
        } => {
            let parsed = DateTime::parse_from_rfc3339(target_time.trim()).map_err(|_| {
                invalid_timestamp(
                    TARGET_FIELD,
                    format!(
                        "{target_time:?} is not a timestamp with an offset; \
                         use RFC 3339, e.g. 2026-11-24T14:30:00+01:00"
                    ),
                )
            })?;
            let time_zone = match time_zone.as_deref().filter(|z| !z.trim().is_empty()) {
                Some(name) => parse_time_zone(name)?,
                None => Tz::UTC,
            };
            Ok(TargetTime {
                utc: micros(parsed.with_timezone(&Utc)),
                time_zone,
            })
        }
        TargetInput::Local {
            local_time,
            time_zone,
            utc_offset,
        } => {
            let zone = parse_time_zone(time_zone)?;
            // Four-digit years, as RFC 3339 has them: chrono would read
            // years past 9999, whose deadline cannot even be computed.
            let naive = LOCAL_FORMATS
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(local_time.trim(), f).ok())
                .filter(|naive| (0..=9999).contains(&naive.year()))
                .ok_or_else(|| {
                    invalid_timestamp(
                        "local_time",
                        format!("{local_time:?} is not a date and time; use e.g. 2026-11-24T14:30"),
                    )
                })?;
            let chosen = match utc_offset.as_deref().filter(|o| !o.trim().is_empty()) {
                None => None,
                Some(text) => Some(parse_offset(text).ok_or_else(|| {
                    invalid_timestamp(
                        "utc_offset",
                        format!("{text:?} is not a UTC offset such as +01:00"),
                    )
                })?),
            };
            let when = |dt: &DateTime<Tz>| dt.format("%H:%M on %-d %B %Y").to_string();
            let utc = match zone.from_local_datetime(&naive) {
                LocalResult::Single(dt) => {
                    if let Some(offset) = chosen
                        && offset != dt.offset().fix()
                    {
                        return Err(invalid_timestamp(
                            "utc_offset",
                            format!(
                                "{} in {zone} is at {}, not {}",
                                when(&dt),
                                format_offset(dt.offset().fix()),
                                format_offset(offset)
                            ),
                        ));
                    }
                    dt.with_timezone(&Utc)
                }
                LocalResult::Ambiguous(first, second) => {
                    match chosen.and_then(|o| {
                        [first, second]
                            .into_iter()
                            .find(|dt| dt.offset().fix() == o)
                    }) {
                        Some(dt) => dt.with_timezone(&Utc),
                        None => {
                            return Err(ValidationError::new(
                                ValidationCode::AmbiguousLocalTime,
                                "local_time",
                                format!(
                                    "{} happens twice in {zone}, at {} and at {}, because \
                                     clocks go back: choose which one",
                                    when(&first),
                                    format_offset(first.offset().fix()),
                                    format_offset(second.offset().fix())
                                ),
                            ));
                        }
                    }
                }
                LocalResult::None => {
                    return Err(ValidationError::new(
                        ValidationCode::NonexistentLocalTime,
                        "local_time",
                        format!(
                            "{} does not exist in {zone}: clocks jump forward there; \
                             pick a time outside the skipped hour",
                            naive.format("%H:%M on %-d %B %Y")
                        ),
                    ));
                }
            };
            Ok(TargetTime {
                utc: micros(utc),
                time_zone: zone,
            })
        }
    }
}

/// Both readings of a wall-clock time that happens twice, for the form to
/// offer as a choice. Empty unless the time is ambiguous.
pub fn fold_offsets(local_time: &str, zone: Tz) -> Vec<FixedOffset> {
    let Some(naive) = LOCAL_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(local_time.trim(), f).ok())
    else {
        return Vec::new();
    };
    match zone.from_local_datetime(&naive) {
        LocalResult::Ambiguous(a, b) => vec![a.offset().fix(), b.offset().fix()],
        _ => Vec::new(),
    }
}

use chrono::Offset;

/// A new cluster's name: 3–40 characters of lowercase letters, digits and
/// hyphens, starting with a letter. It becomes a host name label, so it may
/// not end with a hyphen either (RFC 1123).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClusterName(String);

impl ClusterName {
    pub fn parse(raw: &str) -> Result<ClusterName, ValidationError> {
        let name = raw.trim();
        let ok = (3..=40).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(ClusterName(name.to_string()))
        } else {
            Err(ValidationError::new(
                ValidationCode::InvalidClusterName,
                NAME_FIELD,
                "A cluster name has 3 to 40 characters: lowercase letters, digits and hyphens, \
                 starting with a letter and not ending with a hyphen",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClusterName {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ClusterName::parse(&value)
    }
}

impl From<ClusterName> for String {
    fn from(name: ClusterName) -> String {
        name.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything the target check needs to know about the cluster, read from
/// the fleet and the store by the caller.
#[derive(Debug, Clone, Copy)]
pub struct TargetContext<'a> {
    pub catalog: &'a Catalog,
    pub life: ClusterLife,
    pub online: ZoneSet,
    pub policy: RetentionPolicy,
    pub now: DateTime<Utc>,
    /// The zone the refusals speak in: the reader's.
    pub zone: Tz,
}

impl TargetContext<'_> {
    /// The same check, its refusals read in `zone`.
    pub fn read_in(self, zone: Tz) -> Self {
        TargetContext { zone, ..self }
    }

    /// A moment as a refusal states it: in the reader's zone, to the
    /// second, with UTC beside it.
    fn moment(&self, t: DateTime<Utc>) -> String {
        moment_text(t, self.zone)
    }
}

/// `3 Dec 2026, 14:35:00 JST (05:35:00 UTC)`, or the UTC alone when the
/// reader reads UTC.
pub fn moment_text(t: DateTime<Utc>, zone: Tz) -> String {
    let utc = t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    if zone == Tz::UTC {
        return utc;
    }
    let local = t.with_timezone(&zone);
    let same_day = local.date_naive() == t.date_naive();
    format!(
        "{} ({})",
        local.format("%-d %b %Y, %H:%M:%S %Z"),
        if same_day {
            t.format("%H:%M:%S UTC").to_string()
        } else {
            utc
        }
    )
}

/// Checks one target moment against the cluster's backups, in the order of
/// SPEC §4, and returns where the restore would come from.
pub fn check_target(
    target: DateTime<Utc>,
    ctx: &TargetContext<'_>,
) -> Result<RestorePlan, ValidationError> {
    let field = TARGET_FIELD;
    if ctx.life.restore_expired(&ctx.policy, ctx.now) {
        return Err(ValidationError::new(
            ValidationCode::ClusterNotFound,
            CLUSTER_FIELD,
            format!(
                "This cluster was deleted more than {} days ago and can no longer be restored",
                ctx.policy.deleted_grace.num_days()
            ),
        ));
    }
    if target > ctx.now {
        return Err(ValidationError::new(
            ValidationCode::TargetInFuture,
            field,
            format!(
                "{} is in the future; pick a moment that has already passed",
                ctx.moment(target)
            ),
        ));
    }
    let window = restorable_window(ctx.catalog, &ctx.life, &ctx.policy, ctx.now);
    let latest = window
        .map(|w| w.latest)
        .or_else(|| ctx.catalog.log_end().map(|end| end.min(ctx.now)));
    if let Some(latest) = latest
        && target > latest
    {
        let why = match ctx.life.deleted_at {
            Some(deleted) if deleted <= latest => "the cluster was deleted then",
            _ => "the log after it is not archived yet; try again in a minute",
        };
        return Err(ValidationError::new(
            ValidationCode::TargetInFuture,
            field,
            format!(
                "{} is after the latest restorable point, {} ({why})",
                ctx.moment(target),
                ctx.moment(latest)
            ),
        ));
    }
    let retention_edge = ctx.now - ctx.policy.retention;
    if target < retention_edge {
        return Err(ValidationError::new(
            ValidationCode::TargetOutsideRetention,
            field,
            format!(
                "Backups are kept for {} days: the earliest moment that can be restored now is {}",
                ctx.policy.retention.num_days(),
                ctx.moment(retention_edge)
            ),
        ));
    }
    let Some(window) = window else {
        return Err(ValidationError::new(
            ValidationCode::TargetBeforeEarliestRestorePoint,
            field,
            "This cluster has no completed backup with archived log yet, so no moment can be \
             restored",
        ));
    };
    if target < window.earliest {
        return Err(ValidationError::new(
            ValidationCode::TargetBeforeEarliestRestorePoint,
            field,
            format!(
                "{} is before this cluster's earliest restorable point, {}",
                ctx.moment(target),
                ctx.moment(window.earliest)
            ),
        ));
    }
    plan_restore(ctx.catalog, target, ctx.online).map_err(|e| {
        let message = match e {
            PlanError::OnlyInOfflineZones(zones) => {
                let verb = if zones.iter().count() == 1 {
                    "is"
                } else {
                    "are"
                };
                let online = restorable_window(
                    &ctx.catalog.held_in(ctx.online),
                    &ctx.life,
                    &ctx.policy,
                    ctx.now,
                );
                let from_when = match online {
                    Some(w) if w.earliest > target => format!(
                        "; from the zones online now, moments from {} can be restored",
                        ctx.moment(w.earliest)
                    ),
                    _ => String::new(),
                };
                format!(
                    "The backups that reach {} are held only in {zones}, which {verb} offline \
                     now{from_when}. This moment can be restored again when {zones} {verb} back.",
                    ctx.moment(target),
                )
            }
            PlanError::NoContinuousBackup => format!(
                "No backup with unbroken archived log reaches {}: the log has a gap there",
                ctx.moment(target)
            ),
        };
        ValidationError::new(ValidationCode::NoBackupInOnlineZone, field, message)
    })
}

/// What staff read on a ticket: the target checked against the window at one
/// moment, with the plan or the refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationReport {
    pub checked_at: DateTime<Utc>,
    pub target: DateTime<Utc>,
    pub window: Option<Window>,
    pub online_zones: ZoneSet,
    pub plan: Option<RestorePlan>,
    pub error: Option<ValidationError>,
    pub deadline: DateTime<Utc>,
}

impl ValidationReport {
    pub fn passed(&self) -> bool {
        self.error.is_none()
    }
}

pub fn validation_report(target: DateTime<Utc>, ctx: &TargetContext<'_>) -> ValidationReport {
    let outcome = check_target(target, ctx);
    ValidationReport {
        checked_at: ctx.now,
        target,
        window: restorable_window(ctx.catalog, &ctx.life, &ctx.policy, ctx.now),
        online_zones: ctx.online,
        plan: outcome.as_ref().ok().cloned(),
        error: outcome.err(),
        deadline: sla::deadline(target, &ctx.life, &ctx.policy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(local_time: &str, zone: &str, offset: Option<&str>) -> TargetInput {
        TargetInput::Local {
            local_time: local_time.into(),
            time_zone: zone.into(),
            utc_offset: offset.map(str::to_string),
        }
    }

    #[test]
    fn years_past_four_digits_are_not_timestamps() {
        for text in [
            "+262142-12-31T23:59",
            "10000-01-01T00:00",
            "-0001-01-01T00:00",
        ] {
            let error = parse_target(&local(text, "UTC", None)).unwrap_err();
            assert_eq!(error.code, ValidationCode::InvalidTimestamp, "{text}");
        }
        assert!(parse_target(&local("9999-12-31T23:59", "UTC", None)).is_ok());
    }

    #[test]
    fn local_time_converts_to_utc() {
        let t = parse_target(&local("2026-07-01T14:30", "Europe/Amsterdam", None)).unwrap();
        assert_eq!(t.utc.to_rfc3339(), "2026-07-01T12:30:00+00:00");
        assert_eq!(t.time_zone, Tz::Europe__Amsterdam);
    }

    #[test]
    fn dst_gap_and_fold() {
        let gap = parse_target(&local("2026-03-29T02:30", "Europe/Amsterdam", None));
        assert_eq!(gap.unwrap_err().code, ValidationCode::NonexistentLocalTime);
        let fold = parse_target(&local("2026-10-25T02:30", "Europe/Amsterdam", None));
        assert_eq!(fold.unwrap_err().code, ValidationCode::AmbiguousLocalTime);
        let first = parse_target(&local(
            "2026-10-25T02:30",
            "Europe/Amsterdam",
            Some("+02:00"),
        ));
        assert_eq!(first.unwrap().utc.to_rfc3339(), "2026-10-25T00:30:00+00:00");
        let second = parse_target(&local(
            "2026-10-25T02:30",
            "Europe/Amsterdam",
            Some("+01:00"),
        ));
        assert_eq!(
            second.unwrap().utc.to_rfc3339(),
            "2026-10-25T01:30:00+00:00"
        );
        assert_eq!(
            fold_offsets("2026-10-25T02:30", Tz::Europe__Amsterdam).len(),
            2
        );
    }

    #[test]
    fn rfc3339_needs_an_offset() {
        let ok = TargetInput::Instant {
            target_time: "2026-07-01T14:30:00.123456789+02:00".into(),
            time_zone: None,
        };
        assert_eq!(
            parse_target(&ok).unwrap().utc.to_rfc3339(),
            "2026-07-01T12:30:00.123456+00:00"
        );
        let bad = TargetInput::Instant {
            target_time: "2026-07-01T14:30:00".into(),
            time_zone: None,
        };
        assert_eq!(
            parse_target(&bad).unwrap_err().code,
            ValidationCode::InvalidTimestamp
        );
    }

    #[test]
    fn cluster_names() {
        for good in ["abc", "orders-restored-1", "a23", &"a".repeat(40)] {
            assert!(ClusterName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "1abc",
            "Abc",
            "ab_c",
            "abc-",
            "ab c",
            &"a".repeat(41),
            "-abc",
        ] {
            assert_eq!(
                ClusterName::parse(bad).unwrap_err().code,
                ValidationCode::InvalidClusterName,
                "{bad}"
            );
        }
    }

    #[test]
    fn input_json_shapes() {
        let a: TargetInput =
            serde_json::from_str(r#"{"target_time":"2026-01-01T00:00:00Z"}"#).unwrap();
        assert!(matches!(a, TargetInput::Instant { .. }));
        let b: TargetInput =
            serde_json::from_str(r#"{"local_time":"2026-01-01T00:00","time_zone":"UTC"}"#).unwrap();
        assert!(matches!(b, TargetInput::Local { .. }));
    }
}
