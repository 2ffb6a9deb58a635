//! Restore drills: every cluster's backups restored on a schedule, from each
//! zone in turn, verified and torn down. Pure: which zone is next, which
//! moment, whether a canary query may be saved, and what a finished drill
//! says about its cluster.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::catalog::{Zone, ZoneSet};

/// The zone the next drill restores from: one never drilled first (in zone
/// order), else the one whose last drill is oldest, so every zone holding
/// the cluster's backups is exercised in turn.
pub fn next_zone(candidates: ZoneSet, last_drilled: &[(Zone, DateTime<Utc>)]) -> Option<Zone> {
    candidates.iter().min_by_key(|zone| {
        last_drilled
            .iter()
            .filter(|(z, _)| z == zone)
            .map(|(_, at)| *at)
            .max()
            .map_or((0, DateTime::<Utc>::MIN_UTC), |at| (1, at))
    })
}

/// A moment inside `[earliest, latest]`, `fraction` (0.0–1.0) of the way
/// along, to the microsecond.
pub fn target_in(earliest: DateTime<Utc>, latest: DateTime<Utc>, fraction: f64) -> DateTime<Utc> {
    let span = (latest - earliest).num_microseconds().unwrap_or(0).max(0);
    let offset = (span as f64 * fraction.clamp(0.0, 1.0)) as i64;
    super::micros(earliest + Duration::microseconds(offset.min(span)))
}

/// Whether a cluster is due a drill: none yet, or the last one started
/// longer ago than its interval.
pub fn due(last_started: Option<DateTime<Utc>>, interval: Duration, now: DateTime<Utc>) -> bool {
    last_started.is_none_or(|at| now - at >= interval)
}

/// A query an admin sets for a cluster, run read-only on each drill's copy:
/// it must answer one true value (e.g. `SELECT count(*) > 0 FROM orders`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CanaryQuery(String);

/// Words by which a statement that starts with SELECT or WITH could still
/// write: data-modifying `WITH` parts and `SELECT … INTO`. Commands such as
/// DROP cannot appear inside one statement that starts so; the copy runs
/// the canary in a read-only transaction besides.
const FORBIDDEN: [&str; 5] = ["insert", "update", "delete", "merge", "into"];

/// Functions that change state even inside a read-only transaction's rules
/// or reach outside the database.
const FORBIDDEN_CALLS: [&str; 8] = [
    "nextval",
    "setval",
    "pg_sleep",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "dblink",
    "lo_export",
];

/// The longest canary kept.
pub const CANARY_MAX_CHARS: usize = 2000;

impl CanaryQuery {
    /// Accepts one `SELECT` (a `WITH … SELECT` too) that reads only;
    /// refuses with what is wrong, in the admin's words.
    pub fn parse(raw: &str) -> Result<CanaryQuery, String> {
        let text = raw.trim();
        let text = text.strip_suffix(';').unwrap_or(text).trim_end();
        if text.is_empty() {
            return Err("Write a query, e.g. SELECT count(*) > 0 FROM orders".into());
        }
        if text.chars().count() > CANARY_MAX_CHARS {
            return Err(format!(
                "A canary query may be at most {CANARY_MAX_CHARS} characters"
            ));
        }
        let bare = code_only(text)?;
        if bare.contains(';') {
            return Err("A canary is one statement: remove the ';' between statements".into());
        }
        let words: Vec<String> = bare
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        match words.first().map(String::as_str) {
            Some("select") | Some("with") => {}
            _ => return Err("A canary query must be a SELECT".into()),
        }
        if !words.iter().any(|w| w == "select") {
            return Err("A canary query must be a SELECT".into());
        }
        if let Some(word) = words.iter().find(|w| FORBIDDEN.contains(&w.as_str())) {
            return Err(format!(
                "A canary query only reads: {} is not allowed in it",
                word.to_ascii_uppercase()
            ));
        }
        if let Some(word) = words.iter().find(|w| FORBIDDEN_CALLS.contains(&w.as_str())) {
            return Err(format!("A canary query may not call {word}"));
        }
        // `FOR UPDATE` / `FOR SHARE` lock rows: already refused as `update`;
        // `FOR SHARE` and `FOR KEY SHARE` are caught here.
        if words
            .windows(2)
            .any(|w| w[0] == "for" && (w[1] == "share" || w[1] == "key" || w[1] == "no"))
        {
            return Err("A canary query only reads: row locks (FOR SHARE) are not allowed".into());
        }
        Ok(CanaryQuery(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The query with its strings, quoted names and comments blanked out, so
/// that only SQL words remain to be read. Dollar quoting is refused: it can
/// hide a statement.
fn code_only(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                // Up to the closing quote; a doubled quote stays inside.
                let mut closed = false;
                while let Some(d) = chars.next() {
                    if d == c {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            continue;
                        }
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err("The query has a quote that is never closed".into());
                }
                out.push(' ');
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                out.push(' ');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                let mut closed = false;
                for d in chars.by_ref() {
                    if last == '*' && d == '/' {
                        closed = true;
                        break;
                    }
                    last = d;
                }
                if !closed {
                    return Err("The query has a comment that is never closed".into());
                }
                out.push(' ');
            }
            '$' => {
                return Err(
                    "Dollar-quoted strings and parameters are not allowed in a canary query".into(),
                );
            }
            c if c.is_control() && !c.is_whitespace() => {
                return Err("The query holds a control character".into());
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// What a finished drill found, as the drills page and the cluster's
/// "restore at risk" mark read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillResult {
    pub zone: Zone,
    pub passed: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// For a failed drill: the check that failed, in words ("snapshot
    /// restore", "amcheck", "canary", …) and what it said.
    pub failed_check: Option<String>,
    pub reason: Option<String>,
}

impl DrillResult {
    pub fn duration(&self) -> Duration {
        self.finished_at - self.started_at
    }
}

/// Why a cluster's restores are at risk: the zones whose latest drill
/// failed, each with that drill. Empty when every zone's latest passed.
pub fn at_risk(results: &[DrillResult]) -> Vec<&DrillResult> {
    let mut latest: Vec<&DrillResult> = Vec::new();
    for result in results {
        match latest.iter_mut().find(|r| r.zone == result.zone) {
            Some(seen) if seen.finished_at >= result.finished_at => {}
            Some(seen) => *seen = result,
            None => latest.push(result),
        }
    }
    latest.retain(|r| !r.passed);
    latest.sort_by_key(|r| r.zone);
    latest
}

/// The check a failed step stands for, in the words staff read.
pub fn check_of_step(step: &str) -> &'static str {
    match step {
        "provisioning" => "provisioning",
        "restoring_snapshot" => "snapshot restore",
        "replaying_log" => "log replay",
        "verifying" => "verification",
        "finalizing" => "teardown",
        _ => "restore",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn zones_take_turns() {
        let all = ZoneSet::ALL;
        assert_eq!(next_zone(all, &[]), Some(Zone::Az1));
        assert_eq!(next_zone(all, &[(Zone::Az1, t(1))]), Some(Zone::Az2));
        let drilled = [(Zone::Az1, t(5)), (Zone::Az2, t(2)), (Zone::Az3, t(3))];
        assert_eq!(next_zone(all, &drilled), Some(Zone::Az2));
        // Only zones that hold the backups and are online are candidates.
        assert_eq!(
            next_zone(ZoneSet::of(&[Zone::Az1, Zone::Az3]), &drilled),
            Some(Zone::Az3)
        );
        assert_eq!(next_zone(ZoneSet::NONE, &drilled), None);
        // The newest drill of a zone counts, not an older one.
        let again = [(Zone::Az1, t(1)), (Zone::Az1, t(9)), (Zone::Az2, t(4))];
        assert_eq!(
            next_zone(ZoneSet::of(&[Zone::Az1, Zone::Az2]), &again),
            Some(Zone::Az2)
        );
    }

    #[test]
    fn targets_fall_inside_the_window() {
        assert_eq!(target_in(t(1), t(3), 0.0), t(1));
        assert_eq!(target_in(t(1), t(3), 1.0), t(3));
        assert_eq!(target_in(t(1), t(3), 0.5), t(2));
        assert_eq!(target_in(t(1), t(3), 7.0), t(3));
        assert_eq!(
            target_in(t(3), t(1), 0.5),
            t(3),
            "an empty window gives its start"
        );
    }

    #[test]
    fn drills_fall_due_by_their_interval() {
        let week = Duration::days(7);
        assert!(due(None, week, t(1)));
        assert!(!due(Some(t(1)), week, t(5)));
        assert!(due(Some(t(1)), week, t(1) + week));
    }

    #[test]
    fn canaries_are_one_read_only_select() {
        for ok in [
            "SELECT count(*) > 0 FROM orders",
            "select exists (select 1 from orders where note = 'drop; delete')",
            "SELECT count(*) > 0 FROM \"Orders\";",
            "WITH recent AS (SELECT * FROM orders) SELECT count(*) > 0 FROM recent",
            "SELECT true -- the updated rows are fine\n",
        ] {
            assert!(CanaryQuery::parse(ok).is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("", "Write a query"),
            ("DELETE FROM orders", "must be a SELECT"),
            ("SELECT 1; DROP TABLE orders", "one statement"),
            ("SELECT * INTO copy FROM orders", "INTO"),
            ("SELECT * FROM orders FOR UPDATE", "UPDATE"),
            ("SELECT * FROM orders FOR SHARE", "row locks"),
            (
                "WITH gone AS (DELETE FROM orders RETURNING *) SELECT 1",
                "DELETE",
            ),
            ("SELECT nextval('orders_id_seq') > 0", "nextval"),
            ("SELECT $$x$$", "Dollar"),
            ("SELECT 'open", "never closed"),
            ("SELECT 1 /* open", "never closed"),
            ("VACUUM", "must be a SELECT"),
            ("EXPLAIN ANALYZE SELECT 1", "must be a SELECT"),
        ] {
            let refused = CanaryQuery::parse(bad).expect_err(bad);
            assert!(refused.contains(says), "{bad}: {refused}");
        }
        assert!(CanaryQuery::parse(&format!("SELECT '{}'", "x".repeat(3000))).is_err());
        assert_eq!(
            CanaryQuery::parse("  SELECT 1 ; ").unwrap().as_str(),
            "SELECT 1"
        );
    }

    #[test]
    fn a_cluster_is_at_risk_while_a_zone_s_latest_drill_failed() {
        let result = |zone, h, passed| DrillResult {
            zone,
            passed,
            started_at: t(h),
            finished_at: t(h) + Duration::seconds(40),
            failed_check: (!passed).then(|| "snapshot restore".to_string()),
            reason: None,
        };
        assert!(at_risk(&[]).is_empty());
        let az2_failed = [
            result(Zone::Az1, 1, true),
            result(Zone::Az2, 2, false),
            result(Zone::Az3, 3, true),
        ];
        let risk = at_risk(&az2_failed);
        assert_eq!(risk.len(), 1);
        assert_eq!(risk[0].zone, Zone::Az2);
        // A later pass from the same zone clears it; an earlier one does not.
        let mut mended = az2_failed.to_vec();
        mended.push(result(Zone::Az2, 4, true));
        assert!(at_risk(&mended).is_empty());
        let mut older = az2_failed.to_vec();
        older.push(result(Zone::Az2, 0, true));
        assert_eq!(at_risk(&older).len(), 1);
    }
}
